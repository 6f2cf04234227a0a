package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
)

// Someone who saw only the code posts it first, with a state of their own
// making or the owner's state and another redirect_uri. Each attempt is
// refused without spending the code or recording anything for it, so the
// owner's correct request that follows signs in (CONTRACT §3).
func TestSignInCodeSeenByOthersStaysTheOwners(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("owner")
	completed := h.Authorize(t, apptest.SignInRedirect)
	if r := h.PostSignIn(t, map[string]any{"code": h.Approve(t, completed, gu.ID), "state": completed.Get("state"), "redirect_uri": apptest.SignInRedirect}); r.Status != 200 {
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
			return map[string]any{"code": code, "state": completed.Get("state"), "redirect_uri": apptest.SignInRedirect}
		}, 400, flashauth.CodeInvalidState},
		{"the owner's state with another redirect_uri", func(code, state string) map[string]any {
			return map[string]any{"code": code, "state": state, "redirect_uri": "http://localhost/elsewhere"}
		}, 400, flashauth.CodeRedirectURIMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := h.Authorize(t, apptest.SignInRedirect)
			code := h.Approve(t, q, gu.ID)
			before := h.Emu.Calls().TokenTotal
			for range 2 {
				apptest.WantError(t, h.PostSignIn(t, tt.body(code, q.Get("state"))), tt.status, tt.want)
			}
			if n := h.Emu.Calls().TokenTotal - before; n != 0 {
				t.Errorf("%d requests reached GitHub before the owner's", n)
			}
			// At once, not after the replay window: nothing was recorded.
			r := h.PostSignIn(t, map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": apptest.SignInRedirect,
				"deviceInfo": map[string]any{"os": "linux"}})
			if r.Status != 200 {
				t.Fatalf("the owner's sign-in: %d %s", r.Status, r.Body)
			}
			l := apptest.ParseSignIn(t, r.Body)
			if r := h.Do(http.MethodGet, "/token", "", nil, "Authorization", "Bearer "+l.JWT); r.Status != 200 {
				t.Errorf("GET /token with the owner's session: %d %s", r.Status, r.Body)
			}
		})
	}
}

// GET /auth/github/authorize?pkce=false: the Flashback TypeScript client's
// authenticate(code) sends {code, deviceInfo} and never the state, and signs
// in.
func TestSignInWithoutPKCEOverHTTP(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("tsclient")
	r := h.Do(http.MethodGet, "/auth/github/authorize?pkce=false&redirect_uri="+url.QueryEscape(apptest.SignInRedirect), "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("authorize: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	u, err := url.Parse(m["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") == "" || q.Get("state") != m["state"] || q.Has("code_challenge") || q.Has("code_challenge_method") {
		t.Fatalf("authorize URL query %v: want a state and no PKCE challenge", q)
	}
	code := h.Approve(t, q, gu.ID)
	r = h.PostSignIn(t, map[string]any{"code": code, "deviceInfo": map[string]any{"platform": "web", "browser": "firefox"}})
	if r.Status != 200 {
		t.Fatalf("sign-in with {code, deviceInfo}: %d %s", r.Status, r.Body)
	}
	l := apptest.ParseSignIn(t, r.Body)
	if l.JWT == "" || l.TokenID == "" || l.SessionRT == "" {
		t.Fatalf("authState without a session: %s", r.Body)
	}
	r = h.Do(http.MethodGet, "/token", "", nil, "Authorization", "Bearer "+l.JWT)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"firefox"`) {
		t.Errorf("GET /token: %d %s", r.Status, r.Body)
	}

	for _, bad := range []string{"no", "0", "FALSE"} {
		apptest.WantError(t, h.Do(http.MethodGet, "/auth/github/authorize?pkce="+bad, "", nil), 400, flashauth.CodeInvalidRequest)
	}
}

// With FLASHAUTH_SIGNIN_REQUIRE_PKCE a code without its state gets 400
// STATE_REQUIRED before anything is spent, and then signs in with its state.
func TestSignInRequirePKCEOverHTTP(t *testing.T) {
	h := apptest.New(t, func(c *app.Config) { c.SignInRequirePKCE = true })
	gu := h.GitHubUser("pkce")
	apptest.WantError(t, h.Do(http.MethodGet, "/auth/github/authorize?pkce=false", "", nil), 400, flashauth.CodeInvalidRequest)

	q := h.Authorize(t, apptest.SignInRedirect)
	code := h.Approve(t, q, gu.ID)
	r := h.PostSignIn(t, map[string]any{"code": code, "deviceInfo": map[string]any{"platform": "web"}})
	apptest.WantError(t, r, 400, flashauth.CodeStateRequired)
	if msg, _ := r.JSON(t)["message"].(string); !strings.Contains(msg, "PKCE") || !strings.Contains(msg, "/auth/github/authorize") {
		t.Errorf("message %q does not say the state of /auth/github/authorize is needed", msg)
	}
	if n := h.Emu.Calls().TokenTotal; n != 0 {
		t.Errorf("%d requests reached GitHub", n)
	}
	if r := h.PostSignIn(t, map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": apptest.SignInRedirect}); r.Status != 200 {
		t.Fatalf("sign-in with the state: %d %s", r.Status, r.Body)
	}
}
