package githubemu

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (te *testEmu) authorize(t *testing.T, method string, v url.Values) response {
	t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		req, _ = http.NewRequest(method, te.srv.URL+AuthorizePath+"?"+v.Encode(), nil)
	} else {
		req, _ = http.NewRequest(method, te.srv.URL+AuthorizePath, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

// location parses the redirect of a 302.
func location(t *testing.T, res response) *url.URL {
	t.Helper()
	if res.status != http.StatusFound {
		t.Fatalf("status %d, want 302: %q", res.status, res.body)
	}
	u, err := url.Parse(res.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestAuthorizePageEscapes(t *testing.T) {
	te := newTestEmu(t, Config{})
	te.AddUser(User{Login: "<script>alert(1)</script>", Name: `"quoted" & <b>`})
	te.AddUser(User{Login: "octocat"})
	res := te.authorize(t, http.MethodGet, url.Values{
		"client_id": {te.ClientID()}, "redirect_uri": {"http://app.test/cb"}, "state": {`"><script>x</script>`},
	})
	if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %q", res.status, res.header.Get("Content-Type"))
	}
	for _, bad := range []string{"<script>alert", "<script>x", `"quoted" & <b>`} {
		if strings.Contains(res.body, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&amp; &lt;b&gt;", "octocat", "Approve", `name="login"`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if c := te.Calls(); c.Authorize != 1 {
		t.Fatalf("calls = %+v", c)
	}
}

func TestAuthorizeSubmit(t *testing.T) {
	te := newTestEmu(t, Config{})
	u := te.AddUser(User{Login: "octocat"})
	challenge := S256Challenge(verifier)
	form := url.Values{
		"client_id": {te.ClientID()}, "redirect_uri": {"http://app.test/cb?keep=1"}, "state": {"st-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
		"user_id": {"1000"}, "action": {"approve"},
	}
	loc := location(t, te.authorize(t, http.MethodPost, form))
	q := loc.Query()
	if loc.Host != "app.test" || loc.Path != "/cb" || q.Get("keep") != "1" || q.Get("state") != "st-1" || len(q.Get("code")) != 20 {
		t.Fatalf("redirect %s", loc)
	}
	res := te.postToken(t, "application/json", te.creds("code", q.Get("code"), "redirect_uri", "http://app.test/cb?keep=1", "code_verifier", verifier))
	access, _ := res.json(t)["access_token"].(string)
	if m := te.get(t, UserPath, access).json(t); m["id"] != float64(u.ID) {
		t.Fatalf("signed in as %v, want %d", m["id"], u.ID)
	}

	// A new login creates the user.
	form.Set("login", "new-user")
	form.Del("code_challenge")
	form.Del("code_challenge_method")
	code := location(t, te.authorize(t, http.MethodPost, form)).Query().Get("code")
	access, _ = te.postToken(t, "application/json", te.creds("code", code)).json(t)["access_token"].(string)
	if m := te.get(t, UserPath, access).json(t); m["login"] != "new-user" {
		t.Fatalf("new user: %v", m)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	te := newTestEmu(t, Config{CallbackURL: "http://app.test/cb"})
	te.AddUser(User{Login: "octocat"})
	base := func(kv ...string) url.Values {
		v := url.Values{"client_id": {te.ClientID()}, "redirect_uri": {"http://app.test/cb"}, "state": {"s"}, "user_id": {"1000"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	for _, tc := range []struct {
		name, method string
		form         url.Values
		status       int
		redirectErr  string
	}{
		{"unknown client page", http.MethodGet, base("client_id", "Iv1.nope"), 404, ""},
		{"unknown client submit", http.MethodPost, base("client_id", "Iv1.nope"), 404, ""},
		{"redirect mismatch", http.MethodGet, base("redirect_uri", "http://evil.test/cb"), 302, ErrCodeRedirectURIMismatch},
		{"plain challenge", http.MethodGet, base("code_challenge", verifier, "code_challenge_method", "plain"), 400, ""},
		{"deny", http.MethodPost, base("action", "deny"), 302, "access_denied"},
		{"unknown user", http.MethodPost, base("user_id", "77"), 400, ""},
		{"no user", http.MethodPost, base("user_id", ""), 400, ""},
		{"invalid new login", http.MethodPost, base("login", "-bad--login-"), 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := te.authorize(t, tc.method, tc.form)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %q", res.status, tc.status, res.body)
			}
			if tc.redirectErr != "" {
				loc := location(t, res)
				if loc.Host != "app.test" || loc.Query().Get("error") != tc.redirectErr || loc.Query().Get("state") != "s" || loc.Query().Get("code") != "" {
					t.Fatalf("redirect %s", loc)
				}
			}
		})
	}
}

func TestAuthorizeUsesCallbackByDefault(t *testing.T) {
	te := newTestEmu(t, Config{CallbackURL: "http://app.test/cb"})
	te.AddUser(User{Login: "octocat"})
	loc := location(t, te.authorize(t, http.MethodPost, url.Values{"client_id": {te.ClientID()}, "user_id": {"1000"}}))
	if loc.Host != "app.test" || loc.Query().Get("code") == "" || loc.Query().Has("state") {
		t.Fatalf("redirect %s", loc)
	}
	// Without a callback or redirect_uri there is nowhere to go.
	te2 := newTestEmu(t, Config{})
	if res := te2.authorize(t, http.MethodGet, url.Values{"client_id": {te2.ClientID()}}); res.status != 400 {
		t.Fatalf("no redirect: %d", res.status)
	}
}
