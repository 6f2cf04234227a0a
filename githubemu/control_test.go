package githubemu

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// control calls the control API and decodes its answer into out (if not nil).
func (te *testEmu) control(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, te.srv.URL+"/_emulator"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res := do(t, req)
	if out != nil && res.status == http.StatusOK {
		if err := json.Unmarshal([]byte(res.body), out); err != nil {
			t.Fatalf("%s %s: %v: %q", method, path, err, res.body)
		}
	}
	return res.status
}

func TestControlRoundTrip(t *testing.T) {
	te := newTestEmu(t, Config{})

	var u User
	if s := te.control(t, "POST", "/users", `{"id":42,"login":"octocat","name":"Octo","email":"o@example.com","company":"@github"}`, &u); s != 200 {
		t.Fatalf("users: %d", s)
	}
	want := User{ID: 42, Login: "octocat", Name: "Octo", Email: "o@example.com", Company: "@github",
		AvatarURL: "https://avatars.githubusercontent.com/u/42?v=4",
		Emails:    []Email{{Email: "o@example.com", Primary: true, Verified: true, Visibility: "public"}}}
	if d := cmp.Diff(want, u); d != "" {
		t.Fatalf("user (-want +got):\n%s", d)
	}
	var users []User
	if te.control(t, "GET", "/users", "", &users); len(users) != 1 || users[0].Login != "octocat" {
		t.Fatalf("users list %v", users)
	}

	// Grants by id and by an unknown login (which creates the user).
	var g GrantJSON
	if s := te.control(t, "POST", "/grants", `{"user_id":42}`, &g); s != 200 || g.Login != "octocat" || !accessRE.MatchString(g.AccessToken) ||
		!refreshRE.MatchString(g.RefreshToken) || g.ExpiresIn != 28800 || g.RefreshTokenExpiresIn != 15897600 {
		t.Fatalf("grant: %d %+v", s, g)
	}
	var g2 GrantJSON
	if s := te.control(t, "POST", "/grants", `{"login":"hubot"}`, &g2); s != 200 || g2.UserID == 0 || g2.Login != "hubot" {
		t.Fatalf("grant by login: %d %+v", s, g2)
	}
	if m := te.get(t, UserPath, g2.AccessToken).json(t); m["login"] != "hubot" {
		t.Fatalf("/user with control grant: %v", m)
	}
	te.refreshJSON(t, g.RefreshToken)

	// Login without a browser.
	var login struct {
		Code        string `json:"code"`
		RedirectURL string `json:"redirect_url"`
	}
	body := `{"login":"octocat","redirect_uri":"http://app.test/cb","state":"xyz","code_challenge":"` + S256Challenge(verifier) + `","code_challenge_method":"S256"}`
	if s := te.control(t, "POST", "/login", body, &login); s != 200 {
		t.Fatalf("login: %d", s)
	}
	if ru, _ := url.Parse(login.RedirectURL); ru.Query().Get("code") != login.Code || ru.Query().Get("state") != "xyz" {
		t.Fatalf("redirect_url %q", login.RedirectURL)
	}
	if m := te.postToken(t, "application/json", te.creds("code", login.Code, "code_verifier", verifier)).json(t); m["access_token"] == nil {
		t.Fatalf("exchange of control code: %v", m)
	}

	// Faults.
	if s := te.control(t, "POST", "/faults", `{"kind":"rate_limit_html","path":"/user","count":1,"retry_after_seconds":7}`, nil); s != 200 {
		t.Fatalf("faults: %d", s)
	}
	if res := te.get(t, UserPath, g2.AccessToken); res.status != 429 || res.header.Get("Retry-After") != "7" {
		t.Fatalf("faulted /user: %d %q", res.status, res.header.Get("Retry-After"))
	}
	te.control(t, "POST", "/faults", `{"kind":"server_error","path":"/user"}`, nil)
	te.control(t, "DELETE", "/faults", "", nil)
	if res := te.get(t, UserPath, g2.AccessToken); res.status != 200 {
		t.Fatalf("after DELETE /faults: %d", res.status)
	}

	// Latency.
	if s := te.control(t, "PUT", "/latency", `{"ms":5}`, nil); s != 200 {
		t.Fatalf("latency: %d", s)
	}
	te.mu.Lock()
	lat := te.latency
	te.mu.Unlock()
	if lat != 5*time.Millisecond {
		t.Fatalf("latency %v", lat)
	}

	// Revoke.
	var rv map[string]bool
	if te.control(t, "POST", "/revoke", `{"token":"`+g2.AccessToken+`"}`, &rv); !rv["revoked"] {
		t.Fatalf("revoke: %v", rv)
	}
	if res := te.get(t, UserPath, g2.AccessToken); res.status != 401 {
		t.Fatalf("revoked token: %d", res.status)
	}

	// Calls and reset.
	var c Counters
	te.control(t, "GET", "/calls", "", &c)
	if d := cmp.Diff(Counters{TokenRefresh: 1, TokenCode: 1, TokenTotal: 2, User: 4}, c); d != "" {
		t.Fatalf("calls (-want +got):\n%s", d)
	}
	te.control(t, "POST", "/reset-calls", "", &c)
	if c != (Counters{}) || te.Calls() != (Counters{}) {
		t.Fatalf("after reset: %+v", te.Calls())
	}
}

func TestControlErrors(t *testing.T) {
	te := newTestEmu(t, Config{})
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/users", `{not json`, 400},
		{"POST", "/grants", `{"user_id":999999}`, 404},
		{"POST", "/grants", `{}`, 400},
		{"POST", "/login", `{"login":"x","client_id":"Iv1.other"}`, 400},
		{"POST", "/login", `{"login":"x","code_challenge":"abc","code_challenge_method":"plain"}`, 400},
		{"POST", "/faults", `{"kind":"meltdown"}`, 400},
		{"POST", "/faults", `{"path":"/user"}`, 400},
		{"PUT", "/latency", `{"ms":-1}`, 400},
		{"PUT", "/latency", `{}`, 400},
		{"GET", "/nope", ``, 404},
		{"GET", "/faults", ``, 405},
	} {
		if s := te.control(t, tc.method, tc.path, tc.body, nil); s != tc.status {
			t.Errorf("%s %s %s: %d, want %d", tc.method, tc.path, tc.body, s, tc.status)
		}
	}
}
