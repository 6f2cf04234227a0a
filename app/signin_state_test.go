package app_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
)

// Someone who saw only the code posts it first, with a state of their own
// making or the owner's state and another redirect_uri. Each attempt is
// refused without spending the code or recording anything for it, so the
// owner's correct request that follows signs in (CONTRACT §3).
func TestSignInCodeSeenByOthersStaysTheOwners(t *testing.T) {
	h := newHarness(t)
	gu := h.githubUser("owner")
	completed := h.authorize(t, signinRedirect)
	if r := h.postSignIn(t, map[string]any{"code": h.approve(t, completed, gu.ID), "state": completed.Get("state"), "redirect_uri": signinRedirect}); r.Status != 200 {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	tests := []struct {
		name   string
		body   func(code, state string) map[string]any
		status int
		want   string
	}{
		{"made-up state", func(code, _ string) map[string]any {
			return map[string]any{"code": code, "state": "bogus"}
		}, 400, flashauth.CodeInvalidState},
		{"the state of a completed login", func(code, _ string) map[string]any {
			return map[string]any{"code": code, "state": completed.Get("state"), "redirect_uri": signinRedirect}
		}, 400, flashauth.CodeInvalidState},
		{"the owner's state with another redirect_uri", func(code, state string) map[string]any {
			return map[string]any{"code": code, "state": state, "redirect_uri": "http://localhost/elsewhere"}
		}, 400, flashauth.CodeRedirectURIMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := h.authorize(t, signinRedirect)
			code := h.approve(t, q, gu.ID)
			before := h.emu.Calls().TokenTotal
			for range 2 {
				wantError(t, h.postSignIn(t, tt.body(code, q.Get("state"))), tt.status, tt.want)
			}
			if n := h.emu.Calls().TokenTotal - before; n != 0 {
				t.Errorf("%d requests reached GitHub before the owner's", n)
			}
			// At once, not after the replay window: nothing was recorded.
			r := h.postSignIn(t, map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": signinRedirect,
				"deviceInfo": map[string]any{"os": "linux"}})
			if r.Status != 200 {
				t.Fatalf("the owner's sign-in: %d %s", r.Status, r.Body)
			}
			l := parseSignIn(t, r.Body)
			if r := h.do(http.MethodGet, "/token", "", nil, "Authorization", "Bearer "+l.JWT); r.Status != 200 {
				t.Errorf("GET /token with the owner's session: %d %s", r.Status, r.Body)
			}
		})
	}
}

// GET /auth/github/authorize?pkce=false: the Flashback TypeScript client's
// authenticate(code) sends {code, deviceInfo} and never the state, and signs
// in.
func TestSignInWithoutPKCEOverHTTP(t *testing.T) {
	h := newHarness(t)
	gu := h.githubUser("tsclient")
	r := h.do(http.MethodGet, "/auth/github/authorize?pkce=false&redirect_uri="+url.QueryEscape(signinRedirect), "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("authorize: %d %s", r.Status, r.Body)
	}
	m := r.json(t)
	u, err := url.Parse(m["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") == "" || q.Get("state") != m["state"] || q.Has("code_challenge") || q.Has("code_challenge_method") {
		t.Fatalf("authorize URL query %v: want a state and no PKCE challenge", q)
	}
	code := h.approve(t, q, gu.ID)
	r = h.postSignIn(t, map[string]any{"code": code, "deviceInfo": map[string]any{"platform": "web", "browser": "firefox"}})
	if r.Status != 200 {
		t.Fatalf("sign-in with {code, deviceInfo}: %d %s", r.Status, r.Body)
	}
	l := parseSignIn(t, r.Body)
	if l.JWT == "" || l.TokenID == "" || l.SessionRT == "" {
		t.Fatalf("authState without a session: %s", r.Body)
	}
	r = h.do(http.MethodGet, "/token", "", nil, "Authorization", "Bearer "+l.JWT)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"firefox"`) {
		t.Errorf("GET /token: %d %s", r.Status, r.Body)
	}

	for _, bad := range []string{"no", "0", "FALSE"} {
		wantError(t, h.do(http.MethodGet, "/auth/github/authorize?pkce="+bad, "", nil), 400, flashauth.CodeInvalidRequest)
	}
}

// With FLASHAUTH_SIGNIN_REQUIRE_PKCE a code without its state gets 400
// STATE_REQUIRED before anything is spent, and then signs in with its state.
func TestSignInRequirePKCEOverHTTP(t *testing.T) {
	h := newHarness(t, func(c *app.Config) { c.SignInRequirePKCE = true })
	gu := h.githubUser("pkce")
	wantError(t, h.do(http.MethodGet, "/auth/github/authorize?pkce=false", "", nil), 400, flashauth.CodeInvalidRequest)

	q := h.authorize(t, signinRedirect)
	code := h.approve(t, q, gu.ID)
	r := h.postSignIn(t, map[string]any{"code": code, "deviceInfo": map[string]any{"platform": "web"}})
	wantError(t, r, 400, flashauth.CodeStateRequired)
	if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, "PKCE") || !strings.Contains(msg, "/auth/github/authorize") {
		t.Errorf("message %q does not say the state of /auth/github/authorize is needed", msg)
	}
	if n := h.emu.Calls().TokenTotal; n != 0 {
		t.Errorf("%d requests reached GitHub", n)
	}
	if r := h.postSignIn(t, map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": signinRedirect}); r.Status != 200 {
		t.Fatalf("sign-in with the state: %d %s", r.Status, r.Body)
	}
}
