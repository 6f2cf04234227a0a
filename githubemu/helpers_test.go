package githubemu

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/internal/testkit"
)

// testEmu is an emulator behind a loopback server.
type testEmu struct {
	*Emulator
	srv   *httptest.Server
	clock *testkit.Clock
}

func newTestEmu(t *testing.T, cfg Config) *testEmu {
	t.Helper()
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if cfg.Clock == nil {
		cfg.Clock = clock
	}
	e := New(cfg)
	srv := httptest.NewServer(e)
	// Close the emulator first so hung requests let the server close.
	t.Cleanup(srv.Close)
	t.Cleanup(e.Close)
	return &testEmu{Emulator: e, srv: srv, clock: clock}
}

// response is what a test reads of an answer.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

// postToken posts params as a form body to the token endpoint.
func (te *testEmu) postToken(t *testing.T, accept string, params url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, te.srv.URL+TokenPath, strings.NewReader(params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return do(t, req)
}

// creds returns the client credentials plus kv (pairs).
func (te *testEmu) creds(kv ...string) url.Values {
	v := url.Values{"client_id": {te.ClientID()}, "client_secret": {te.ClientSecret()}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// refreshJSON refreshes token and returns the JSON answer, requiring 200.
func (te *testEmu) refreshJSON(t *testing.T, token string) map[string]any {
	t.Helper()
	res := te.postToken(t, "application/json", te.creds("grant_type", "refresh_token", "refresh_token", token))
	if res.status != http.StatusOK {
		t.Fatalf("refresh: status %d, body %q", res.status, res.body)
	}
	return res.json(t)
}

// wantOAuthError requires an HTTP 200 JSON answer carrying code.
func wantOAuthError(t *testing.T, res response, code string) {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status %d, want 200 (OAuth errors are 200); body %q", res.status, res.body)
	}
	m := res.json(t)
	if m["error"] != code {
		t.Fatalf("error = %v, want %s; body %q", m["error"], code, res.body)
	}
	if m["error_description"] == "" || m["error_uri"] == "" || m["access_token"] != nil {
		t.Fatalf("incomplete error answer %q", res.body)
	}
}

// get sends GET path with a bearer token and a User-Agent.
func (te *testEmu) get(t *testing.T, path, token string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, te.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "githubemu-test")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// mustGrant mints a grant for a new user with login.
func (te *testEmu) mustGrant(t *testing.T, login string) (User, Grant) {
	t.Helper()
	u := te.AddUser(User{Login: login})
	g, err := te.MintGrant(u.ID)
	if err != nil {
		t.Fatalf("MintGrant: %v", err)
	}
	return u, g
}

// waitFor polls cond until it holds; the test's deadline bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if dl, ok := t.Deadline(); ok && time.Until(dl) < time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
