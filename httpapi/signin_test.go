package httpapi_test

// End-to-end tests of issue 3 (docs/api.md: sign-in, sessions and the ownership policy of
// the refresh) over HTTP: a real flashauth on SQLite in front of the GitHub emulator.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/githubemu"
)

func TestSignInWholeFlow(t *testing.T) {
	h := apptest.New(t)
	ctx := context.Background()
	gu := h.Emu.AddUser(githubemu.User{Login: "octocat", Name: "The Octocat", Company: "@github",
		AvatarURL: "https://avatars.example.com/u/583231", Email: "octocat@example.com"})
	start := h.Clock.Now()

	// 1. Where to send the user.
	r := h.Do(http.MethodGet, "/auth/github/authorize?redirect_uri="+url.QueryEscape(apptest.SignInRedirect), "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("authorize: %d %s", r.Status, r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("authorize Cache-Control = %q, want no-store", cc)
	}
	m := r.JSON(t)
	if diff := cmp.Diff([]string{"state", "success", "url"}, apptest.SortedKeys(m)); diff != "" {
		t.Errorf("authorize fields (-want +got):\n%s", diff)
	}
	state, _ := m["state"].(string)
	if m["success"] != true || len(state) != 43 {
		t.Fatalf("authorize answer: success %v, state of %d characters (want 256 bits, base64url)", m["success"], len(state))
	}
	u, err := url.Parse(m["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.Scheme+"://"+u.Host+u.Path, h.EmuSrv.URL+"/login/oauth/authorize"; got != want {
		t.Errorf("authorize URL = %s, want %s", got, want)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"client_id": apptest.ClientID, "redirect_uri": apptest.SignInRedirect, "state": state, "code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("authorize URL %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if c, err := base64.RawURLEncoding.DecodeString(q.Get("code_challenge")); err != nil || len(c) != sha256.Size {
		t.Errorf("code_challenge is not a base64url SHA-256: %q", q.Get("code_challenge"))
	}

	// 2. The user approves at "GitHub", which redirects with a code.
	code := h.Approve(t, q, gu.ID)

	// 3. The client posts the code (with fields flashauth does not use).
	r = h.PostSignIn(t, map[string]any{
		"code": code, "state": state, "redirect_uri": apptest.SignInRedirect,
		"deviceInfo": map[string]any{"os": "linux", "app": "cli"}, "activationUid": "act-1",
	}, "User-Agent", "flashback-cli/1.0")
	if r.Status != http.StatusOK {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	for k, want := range map[string]string{"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	top := r.JSON(t)
	if diff := cmp.Diff([]string{"authState", "message", "success"}, apptest.SortedKeys(top)); diff != "" {
		t.Errorf("top-level fields (-want +got):\n%s", diff)
	}
	if top["success"] != true || top["message"] != "Authentication successful" {
		t.Errorf("success/message = %v/%v", top["success"], top["message"])
	}
	l := apptest.ParseSignIn(t, r.Body)
	l.Code = code
	wantState := []string{"accessToken", "expiresAt", "provider", "refreshToken", "sessionExpiresAt",
		"sessionRefreshToken", "token", "tokenId", "user"}
	if diff := cmp.Diff(wantState, apptest.SortedKeys(l.AuthState)); diff != "" {
		t.Errorf("authState fields (-want +got):\n%s", diff)
	}
	wantUser := map[string]any{"email": "octocat@example.com", "name": "The Octocat", "imageUrl": "https://avatars.example.com/u/583231"}
	if diff := cmp.Diff(wantUser, l.AuthState["user"]); diff != "" {
		t.Errorf("authState.user (-want +got):\n%s", diff)
	}
	if l.AuthState["provider"] != "GITHUB" {
		t.Errorf("provider = %v", l.AuthState["provider"])
	}
	if !strings.HasPrefix(l.GHAccess, "ghu_") || !strings.HasPrefix(l.GHRefresh, "ghr_") {
		t.Errorf("GitHub tokens have prefixes %.4s / %.4s, want ghu_ / ghr_", l.GHAccess, l.GHRefresh)
	}
	if got, want := l.AuthState["expiresAt"], float64(start.Add(8*time.Hour).UnixMilli()); got != want {
		t.Errorf("expiresAt = %v, want %v (GitHub token expiry, ms)", got, want)
	}
	if got, want := l.AuthState["sessionExpiresAt"], float64(start.Add(30*24*time.Hour).UnixMilli()); got != want {
		t.Errorf("sessionExpiresAt = %v, want %v (ms)", got, want)
	}
	if l.TokenID == "" || len(l.SessionRT) != 43 || l.SessionRT == l.JWT || l.SessionRT == l.GHRefresh {
		t.Errorf("tokenId %q, sessionRefreshToken of %d characters (want 256 bits, base64url)", l.TokenID, len(l.SessionRT))
	}

	// The access token is an EdDSA JWT that the published key verifies.
	if l.Header["alg"] != "EdDSA" || l.Header["typ"] != "JWT" {
		t.Errorf("JWT header = %v, want alg EdDSA, typ JWT", l.Header)
	}
	kid, _ := l.Header["kid"].(string)
	keys := h.JWKS(t)
	i := slices.IndexFunc(keys, func(k apptest.PublishedKey) bool { return k.Kid == kid })
	if kid == "" || i < 0 {
		t.Fatalf("kid %q not in the JWKS %v", kid, apptest.JWKIDs(keys))
	}
	if k := keys[i]; k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" {
		t.Errorf("JWK = %+v, want an Ed25519 signing key", k)
	}
	pub, err := base64.RawURLEncoding.DecodeString(keys[i].X)
	parts := strings.Split(l.JWT, ".")
	sig, serr := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || serr != nil || len(pub) != ed25519.PublicKeySize ||
		!ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Errorf("the published key does not verify the access token")
	}

	// Its claims are the contract's.
	user, err := h.App.Store.GetUser(ctx, l.UserID())
	if err != nil {
		t.Fatalf("the JWT's sub is not a stored user: %v", err)
	}
	c := l.Claims
	if aud := c["aud"]; aud != "flashauth" && !cmp.Equal(aud, []any{"flashauth"}) {
		t.Errorf("aud = %v, want flashauth", aud)
	}
	wantClaims := map[string]any{
		"iss": "flashauth", "sub": user.ID, "userId": user.ID, "email": "octocat@example.com", "orgId": user.OrgID,
		"sid": l.TokenID, "type": "access", "iat": float64(start.Unix()), "exp": float64(start.Add(time.Hour).Unix()),
	}
	for k, want := range wantClaims {
		if c[k] != want {
			t.Errorf("claim %s = %v, want %v", k, c[k], want)
		}
	}
	if jti, _ := c["jti"].(string); jti == "" {
		t.Errorf("no jti")
	}
	if user.GitHubID != gu.ID || user.Login != "octocat" || user.OrgID == "" {
		t.Errorf("stored user = %+v", user)
	}
	if org, err := h.App.Store.GetOrganization(ctx, user.OrgID); err != nil || org.Name != "github" {
		t.Errorf("organization = %+v, %v; want github", org, err)
	}

	// Exactly one exchange, one /user and one /user/emails happened.
	if calls := h.Emu.Calls(); calls.TokenCode != 1 || calls.User != 1 || calls.Emails != 1 || calls.TokenRefresh != 0 {
		t.Errorf("upstream calls = %+v, want one exchange, one /user, one /user/emails", calls)
	}

	// The GitHub access token is real: the emulator's /user accepts it.
	req, _ := http.NewRequest(http.MethodGet, h.EmuSrv.URL+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+l.GHAccess)
	resp, err := h.EmuSrv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ghUser struct {
		ID int64 `json:"id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ghUser)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || ghUser.ID != gu.ID {
		t.Errorf("GitHub /user with the access token: %d, id %d, %v", resp.StatusCode, ghUser.ID, err)
	}

	// The session works.
	if r := h.ListTokens(l.JWT); r.Status != 200 {
		t.Errorf("GET /token with the new access token: %d %s", r.Status, r.Body)
	}
}

// ?redirect=1 sends the browser straight to GitHub; redirect_uri is optional.
func TestSignInAuthorizeRedirectAndNoRedirectURI(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("redirected")
	client := *h.Srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(h.Srv.URL + "/auth/github/authorize?redirect=1&redirect_uri=" + url.QueryEscape(apptest.SignInRedirect))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status = %d, want 302", resp.StatusCode)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != h.EmuSrv.URL+"/login/oauth/authorize" {
		t.Fatalf("Location = %q, want GitHub's authorize URL", resp.Header.Get("Location"))
	}
	q := loc.Query()
	h.See(q.Get("state"))
	if q.Get("client_id") != apptest.ClientID || q.Get("redirect_uri") != apptest.SignInRedirect || q.Get("state") == "" ||
		q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256" {
		t.Fatalf("Location query = %v", q)
	}
	code := h.Approve(t, q, gu.ID)
	if r := h.PostSignIn(t, map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": apptest.SignInRedirect}); r.Status != 200 {
		t.Fatalf("sign-in with the redirect's state: %d %s", r.Status, r.Body)
	}

	// Without redirect_uri, GitHub uses the registered callback; the
	// sign-in works without one too.
	r := h.Do(http.MethodGet, "/auth/github/authorize", "", nil)
	if r.Status != 200 {
		t.Fatalf("authorize without redirect_uri: %d %s", r.Status, r.Body)
	}
	m := r.JSON(t)
	u, _ := url.Parse(m["url"].(string))
	if u.Query().Has("redirect_uri") {
		t.Errorf("redirect_uri in the URL though none was given")
	}
	code = h.Approve(t, u.Query(), gu.ID)
	if r := h.PostSignIn(t, map[string]any{"code": code, "state": m["state"]}); r.Status != 200 {
		t.Fatalf("sign-in without redirect_uri: %d %s", r.Status, r.Body)
	}
}

func TestSignInStateRejected(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("stateful")
	post := func(t *testing.T, code, state, redirectURI string) apptest.Response {
		t.Helper()
		return h.PostSignIn(t, map[string]any{"code": code, "state": state, "redirect_uri": redirectURI})
	}
	// noExchange checks that f did not spend a code at GitHub.
	noExchange := func(t *testing.T, f func()) {
		t.Helper()
		before := h.Emu.Calls().TokenCode
		f()
		if after := h.Emu.Calls().TokenCode; after != before {
			t.Errorf("%d code exchanges upstream, want none", after-before)
		}
	}

	t.Run("reused", func(t *testing.T) {
		q := h.Authorize(t, apptest.SignInRedirect)
		if r := post(t, h.Approve(t, q, gu.ID), q.Get("state"), apptest.SignInRedirect); r.Status != 200 {
			t.Fatalf("first use: %d %s", r.Status, r.Body)
		}
		code := h.Approve(t, q, gu.ID) // a second code for the same login
		noExchange(t, func() {
			apptest.WantError(t, post(t, code, q.Get("state"), apptest.SignInRedirect), 400, flashauth.CodeInvalidState)
		})
	})
	t.Run("expired", func(t *testing.T) {
		q := h.Authorize(t, apptest.SignInRedirect)
		h.Clock.Advance(10*time.Minute + time.Second)
		code := h.Approve(t, q, gu.ID)
		noExchange(t, func() {
			apptest.WantError(t, post(t, code, q.Get("state"), apptest.SignInRedirect), 400, flashauth.CodeInvalidState)
		})
	})
	t.Run("just before expiry", func(t *testing.T) {
		q := h.Authorize(t, apptest.SignInRedirect)
		h.Clock.Advance(10*time.Minute - time.Second)
		if r := post(t, h.Approve(t, q, gu.ID), q.Get("state"), apptest.SignInRedirect); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		q := h.Authorize(t, apptest.SignInRedirect)
		code := h.Approve(t, q, gu.ID)
		unknown := apptest.B64URL(bytes.Repeat([]byte{7}, 32))
		noExchange(t, func() {
			apptest.WantError(t, post(t, code, unknown, apptest.SignInRedirect), 400, flashauth.CodeInvalidState)
		})
	})
	t.Run("another login's state", func(t *testing.T) {
		qa, qb := h.Authorize(t, apptest.SignInRedirect), h.Authorize(t, apptest.SignInRedirect)
		codeA := h.Approve(t, qa, gu.ID)
		// B's verifier does not match A's challenge: GitHub refuses the code.
		apptest.WantError(t, post(t, codeA, qb.Get("state"), apptest.SignInRedirect), 401, flashauth.CodeInvalidCode)
		// A state is used up only by a code GitHub accepts: login B still
		// completes, and so does A with a fresh code.
		if r := post(t, h.Approve(t, qb, gu.ID), qb.Get("state"), apptest.SignInRedirect); r.Status != 200 {
			t.Fatalf("login B: %d %s", r.Status, r.Body)
		}
		if r := post(t, h.Approve(t, qa, gu.ID), qa.Get("state"), apptest.SignInRedirect); r.Status != 200 {
			t.Fatalf("login A with a fresh code: %d %s", r.Status, r.Body)
		}
	})
	t.Run("redirect_uri differs from the login's", func(t *testing.T) {
		q := h.Authorize(t, apptest.SignInRedirect)
		code := h.Approve(t, q, gu.ID)
		noExchange(t, func() {
			apptest.WantError(t, post(t, code, q.Get("state"), "http://localhost/elsewhere"), 400, flashauth.CodeRedirectURIMismatch)
		})
	})
	t.Run("PKCE: a code of a login with a challenge needs its state", func(t *testing.T) {
		q := h.Authorize(t, apptest.SignInRedirect)
		code := h.Approve(t, q, gu.ID)
		// Without the state flashauth has no verifier, and GitHub refuses
		// (FLASHAUTH_SIGNIN_REQUIRE_PKCE refuses before: see
		// TestSignInRequirePKCEOverHTTP). The message says what is missing.
		r := h.PostSignIn(t, map[string]any{"code": code, "redirect_uri": apptest.SignInRedirect})
		apptest.WantError(t, r, 401, flashauth.CodeInvalidCode)
		if msg, _ := r.JSON(t)["message"].(string); !strings.Contains(msg, "state") {
			t.Errorf("message %q does not mention the state", msg)
		}
	})
}

func TestSignInFindsUserByGitHubID(t *testing.T) {
	h := apptest.New(t)
	ctx := context.Background()
	gu := h.Emu.AddUser(githubemu.User{Login: "mona", Emails: []githubemu.Email{{Email: "mona@old.example", Primary: true, Verified: true}}})
	first := h.SignIn(t, gu.ID, "")
	want := map[string]any{"email": "mona@old.example", "name": "mona", "imageUrl": gu.AvatarURL}
	if diff := cmp.Diff(want, first.AuthState["user"]); diff != "" {
		t.Errorf("first sign-in user (-want +got), name falls back to login, imageUrl is avatar_url:\n%s", diff)
	}

	// GitHub account renamed, new primary email, a name and a company now.
	h.Emu.AddUser(githubemu.User{ID: gu.ID, Login: "mona-renamed", Name: "Mona Lisa", Company: "@newco",
		Emails: []githubemu.Email{{Email: "mona@old.example", Verified: true}, {Email: "mona@new.example", Primary: true, Verified: true}}})
	second := h.SignIn(t, gu.ID, "")
	if second.UserID() != first.UserID() || second.Claims["userId"] != first.Claims["userId"] || second.Claims["orgId"] != first.Claims["orgId"] {
		t.Fatalf("second sign-in is user %v org %v, want the same user %v org %v",
			second.UserID(), second.Claims["orgId"], first.UserID(), first.Claims["orgId"])
	}
	want = map[string]any{"email": "mona@new.example", "name": "Mona Lisa", "imageUrl": gu.AvatarURL}
	if diff := cmp.Diff(want, second.AuthState["user"]); diff != "" {
		t.Errorf("second sign-in user (-want +got):\n%s", diff)
	}
	if second.Claims["email"] != "mona@new.example" {
		t.Errorf("email claim = %v", second.Claims["email"])
	}
	u, err := h.App.Store.GetUser(ctx, first.UserID())
	if err != nil || u.Login != "mona-renamed" || u.Email != "mona@new.example" || u.GitHubID != gu.ID {
		t.Errorf("stored user = %+v, %v", u, err)
	}
	// The organization was created on the first sign-in and is kept.
	if org, err := h.App.Store.GetOrganization(ctx, u.OrgID); err != nil || org.Name != "mona" {
		t.Errorf("organization = %+v, %v; want the first sign-in's (mona)", org, err)
	}
	// Both sessions belong to the one user.
	if r := h.ListTokens(second.JWT); r.Status != 200 || len(r.JSON(t)["tokens"].([]any)) != 2 {
		t.Errorf("sessions of the user: %d %s", r.Status, r.Body)
	}

	// Another GitHub account that takes over the old login is someone else.
	other := h.GitHubUser("mona")
	if other.ID == gu.ID {
		t.Fatal("the emulator reused the id")
	}
	if third := h.SignIn(t, other.ID, ""); third.UserID() == first.UserID() {
		t.Fatalf("a different GitHub id with the old login signed in as the same user")
	}
}

func TestSignInOrganizationNaming(t *testing.T) {
	h := apptest.New(t)
	rows := []struct{ name, login, company, want string }{
		{"company with @", "org-a", "@acme", "acme"},
		{"no company", "org-b", "", "org-b"},
		{"company without @", "org-c", "Acme Corp", "Acme Corp"},
		{"company is a bare @", "org-d", "@", "org-d"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			gu := h.Emu.AddUser(githubemu.User{Login: tc.login, Company: tc.company})
			l := h.SignIn(t, gu.ID, "")
			ctx := context.Background()
			u, err := h.App.Store.GetUser(ctx, l.UserID())
			if err != nil {
				t.Fatal(err)
			}
			org, err := h.App.Store.GetOrganization(ctx, u.OrgID)
			if err != nil || org.Name != tc.want {
				t.Fatalf("organization = %+v, %v; want name %q", org, err, tc.want)
			}
			if l.Claims["orgId"] != org.ID {
				t.Errorf("orgId claim = %v, want %s", l.Claims["orgId"], org.ID)
			}
		})
	}
}

func TestSignInUnverifiedEmail(t *testing.T) {
	h := apptest.New(t)
	rows := []struct {
		name   string
		emails []githubemu.Email
	}{
		{"only email unverified", []githubemu.Email{{Email: "a@example.com", Primary: true}}},
		{"primary unverified, another verified", []githubemu.Email{{Email: "p@example.com", Primary: true}, {Email: "v@example.com", Verified: true}}},
		{"verified but none primary", []githubemu.Email{{Email: "v@example.com", Verified: true}}},
		{"no email at all", []githubemu.Email{}},
	}
	for i, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			gu := h.Emu.AddUser(githubemu.User{Login: "unverified-" + string(rune('a'+i)), Emails: tc.emails})
			q := h.Authorize(t, apptest.SignInRedirect)
			code := h.Approve(t, q, gu.ID)
			r := h.PostSignIn(t, map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": apptest.SignInRedirect})
			apptest.WantError(t, r, 403, flashauth.CodeEmailNotVerified)
		})
	}
}

func TestSignInCodeReplay(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("replayer")

	t.Run("without state: INVALID_CODE after the window", func(t *testing.T) {
		code, err := h.Emu.CompleteLogin(githubemu.LoginParams{ClientID: apptest.ClientID, UserID: gu.ID})
		if err != nil {
			t.Fatal(err)
		}
		h.See(code)
		body := map[string]any{"code": code, "deviceInfo": map[string]string{"tab": "1"}}
		before := h.Emu.Calls()
		first := h.PostSignIn(t, body)
		if first.Status != 200 {
			t.Fatalf("first: %d %s", first.Status, first.Body)
		}
		h.Clock.Advance(59 * time.Second)
		again := h.PostSignIn(t, body)
		if again.Status != 200 || !bytes.Equal(again.Body, first.Body) {
			t.Fatalf("retry inside the window: %d, identical body %v", again.Status, bytes.Equal(again.Body, first.Body))
		}
		if c := h.Emu.Calls(); c.TokenCode-before.TokenCode != 1 || c.User-before.User != 1 || c.Emails-before.Emails != 1 {
			t.Fatalf("upstream calls after a replay = %+v (before %+v), want one of each", c, before)
		}
		// The replay opened no second session.
		l := apptest.ParseSignIn(t, first.Body)
		if r := h.ListTokens(l.JWT); r.Status != 200 || len(r.JSON(t)["tokens"].([]any)) != 1 {
			t.Fatalf("sessions after a replay: %d %s", r.Status, r.Body)
		}
		h.Clock.Advance(2 * time.Second)
		apptest.WantError(t, h.PostSignIn(t, body), 401, flashauth.CodeInvalidCode)
		if c := h.Emu.Calls().TokenCode - before.TokenCode; c != 2 {
			t.Fatalf("code exchanges = %d, want 2 (after the window GitHub is asked and says no)", c)
		}
		apptest.WantError(t, h.PostSignIn(t, body), 401, flashauth.CodeInvalidCode)
		if c := h.Emu.Calls().TokenCode - before.TokenCode; c != 2 {
			t.Fatalf("code exchanges = %d, want 2 (the rejection is replayed)", c)
		}
	})

	t.Run("with state: the state is spent after the window", func(t *testing.T) {
		q := h.Authorize(t, apptest.SignInRedirect)
		code := h.Approve(t, q, gu.ID)
		body := map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": apptest.SignInRedirect}
		before := h.Emu.Calls().TokenCode
		first := h.PostSignIn(t, body)
		again := h.PostSignIn(t, body)
		if first.Status != 200 || again.Status != 200 || !bytes.Equal(first.Body, again.Body) {
			t.Fatalf("first %d, retry %d, identical %v", first.Status, again.Status, bytes.Equal(first.Body, again.Body))
		}
		h.Clock.Advance(61 * time.Second)
		// The state was taken by the first attempt, so the late retry is
		// refused before the code could be spent a second time.
		apptest.WantError(t, h.PostSignIn(t, body), 400, flashauth.CodeInvalidState)
		if c := h.Emu.Calls().TokenCode - before; c != 1 {
			t.Fatalf("code exchanges = %d, want 1", c)
		}
	})
}

// A replay is for a retry of the same request. One that names another state
// (and another redirect_uri) is not a retry: its state is unknown, so
// docs/api.md says INVALID_STATE, not the first caller's session.
func TestSignInReplayBoundToState(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("bound")
	q := h.Authorize(t, apptest.SignInRedirect)
	code := h.Approve(t, q, gu.ID)
	if r := h.PostSignIn(t, map[string]any{"code": code, "state": q.Get("state"), "redirect_uri": apptest.SignInRedirect}); r.Status != 200 {
		t.Fatalf("sign-in: %d %s", r.Status, r.Body)
	}
	other := apptest.B64URL(bytes.Repeat([]byte{3}, 32))
	r := h.PostSignIn(t, map[string]any{"code": code, "state": other, "redirect_uri": "http://elsewhere.example/cb"})
	apptest.WantError(t, r, 400, flashauth.CodeInvalidState)
}

// Every forged, foreign or malformed credential on GET /token is 401
// AUTH_REQUIRED; the genuine token keeps working throughout.
func TestAccessTokenAttacks(t *testing.T) {
	h := apptest.New(t)
	l := h.SignIn(t, h.GitHubUser("victim").ID, "")
	other := h.SignIn(t, h.GitHubUser("attacker").ID, "")
	if r := h.ListTokens(l.JWT); r.Status != 200 {
		t.Fatalf("the genuine token: %d %s", r.Status, r.Body)
	}
	hdr, claims := l.Header, l.Claims
	kid := hdr["kid"].(string)
	var x string
	for _, k := range h.JWKS(t) {
		if k.Kid == kid {
			x = k.X
		}
	}
	pubRaw, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil || len(pubRaw) != ed25519.PublicKeySize {
		t.Fatalf("public key of kid %s: %v", kid, err)
	}
	_, strangerKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(l.JWT, ".")
	alter := func(kv ...any) string {
		return parts[0] + "." + apptest.JWTSegment(t, apptest.ClaimsWith(claims, kv...)) + "." + parts[2]
	}
	otherID := other.UserID()
	// A token of another flashauth deployment: its own keys and database.
	foreign := apptest.New(t)
	foreignJWT := foreign.SignIn(t, foreign.GitHubUser("victim").ID, "").JWT
	h.See(foreignJWT)

	rows := []struct{ name, auth string }{
		{"no Authorization", ""},
		{"Bearer and nothing", "Bearer "},
		{"Basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("user:password"))},
		{"the JWT without a scheme", l.JWT},
		{"garbage", "Bearer garbage"},
		{"three garbage segments", "Bearer a.b.c"},
		{"GitHub access token", "Bearer " + l.GHAccess},
		{"GitHub refresh token", "Bearer " + l.GHRefresh},
		{"session refresh token", "Bearer " + l.SessionRT},
		{"the OAuth code", "Bearer " + l.Code},
		{"alg none", "Bearer " + apptest.ForgeJWT(t, apptest.ClaimsWith(hdr, "alg", "none"), claims, nil)},
		{"alg none without kid", "Bearer " + apptest.ForgeJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, claims, nil)},
		{"alg none keeping the real signature", "Bearer " + apptest.JWTSegment(t, apptest.ClaimsWith(hdr, "alg", "none")) + "." + parts[1] + "." + parts[2]},
		{"HS256 keyed with the public key", "Bearer " + apptest.ForgeJWT(t, apptest.ClaimsWith(hdr, "alg", "HS256"), claims, apptest.HMACSigner(sha256.New, pubRaw))},
		{"HS256 keyed with the JWK's x", "Bearer " + apptest.ForgeJWT(t, apptest.ClaimsWith(hdr, "alg", "HS256"), claims, apptest.HMACSigner(sha256.New, []byte(x)))},
		{"HS512 keyed with the public key", "Bearer " + apptest.ForgeJWT(t, apptest.ClaimsWith(hdr, "alg", "HS512"), claims, apptest.HMACSigner(sha512.New, pubRaw))},
		{"unknown kid", "Bearer " + apptest.ForgeJWT(t, apptest.ClaimsWith(hdr, "kid", "no-such-key"), claims, apptest.EdSigner(strangerKey))},
		{"no kid", "Bearer " + apptest.ForgeJWT(t, apptest.ClaimsWith(hdr, "kid", nil), claims, apptest.EdSigner(strangerKey))},
		{"real kid, another key's signature", "Bearer " + apptest.ForgeJWT(t, hdr, claims, apptest.EdSigner(strangerKey))},
		{"another deployment's token", "Bearer " + foreignJWT},
		{"altered payload: another user", "Bearer " + alter("sub", otherID, "userId", otherID)},
		{"altered payload: later expiry", "Bearer " + alter("exp", claims["exp"].(float64)+86400)},
		{"altered payload: another session", "Bearer " + alter("sid", other.TokenID)},
		{"signature stripped", "Bearer " + parts[0] + "." + parts[1] + "."},
		{"signature truncated", "Bearer " + l.JWT[:len(l.JWT)-4]},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			var hdrs []string
			if tc.auth != "" {
				hdrs = []string{"Authorization", tc.auth}
				if tok := strings.TrimPrefix(tc.auth, "Bearer "); len(tok) > 20 {
					h.See(tok)
				}
			}
			apptest.WantError(t, h.Do(http.MethodGet, "/token", "", nil, hdrs...), 401, flashauth.CodeAuthRequired)
		})
	}
	if r := h.Do(http.MethodGet, "/token", "", nil, "Authorization", "bearer "+l.JWT); r.Status != 200 {
		t.Fatalf("the genuine token (scheme is case-insensitive) after the attacks: %d %s", r.Status, r.Body)
	}
}

// Expiry, issue time, issuer and audience, checked by replicas on the same
// database (same keys and sessions) whose clock or settings differ. A token
// with a future nbf cannot be forged without the private key, which the
// tests do not read; the session package's unit tests cover nbf.
func TestAccessTokenTimeIssuerAudience(t *testing.T) {
	h := apptest.New(t)
	l := h.SignIn(t, h.GitHubUser("timely").ID, "")
	rows := []struct {
		name   string
		offset time.Duration // the replica's clock minus the issuer's
		opts   []apptest.Option
		ok     bool
	}{
		{"a replica with the same settings", 0, nil, true},
		{"wrong issuer", 0, []apptest.Option{func(c *app.Config) { c.Issuer = "https://other.example" }}, false},
		{"wrong audience", 0, []apptest.Option{func(c *app.Config) { c.Audience = "other-audience" }}, false},
		{"issued 30s in the future: within leeway", -30 * time.Second, nil, true},
		{"not yet valid: issued 31s in the future", -31 * time.Second, nil, false},
		{"30s past expiry: within leeway", time.Hour + 30*time.Second, nil, true},
		{"expired", time.Hour + 31*time.Second, nil, false},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			p := h.Peer(t, h.ClockAt(tc.offset), tc.opts...)
			r := p.ListTokens(l.JWT)
			if tc.ok {
				if r.Status != 200 {
					t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
				}
				return
			}
			apptest.WantError(t, r, 401, flashauth.CodeAuthRequired)
		})
	}
	h.Clock.Advance(time.Hour + 31*time.Second)
	apptest.WantError(t, h.ListTokens(l.JWT), 401, flashauth.CodeAuthRequired)
}

func TestKeyRotationOverHTTP(t *testing.T) {
	h := apptest.New(t, func(c *app.Config) { c.KeyRotation = time.Hour; c.SessionAccessTTL = time.Hour })
	gu := h.GitHubUser("rotator")
	initial := apptest.JWKIDs(h.JWKS(t))
	if len(initial) != 1 {
		t.Fatalf("keys at start = %v, want one", initial)
	}
	k1 := initial[0]

	h.Clock.Advance(50 * time.Minute)
	a := h.SignIn(t, gu.ID, "")
	if a.Header["kid"] != k1 {
		t.Fatalf("kid = %v, want the first key %s", a.Header["kid"], k1)
	}
	h.Clock.Advance(11 * time.Minute) // the first key is retired: the next signature rotates
	b := h.SignIn(t, gu.ID, "")
	k2, _ := b.Header["kid"].(string)
	if k2 == "" || k2 == k1 {
		t.Fatalf("kid after the rotation = %q, want a new key (old %s)", k2, k1)
	}
	if got := apptest.JWKIDs(h.JWKS(t)); !slices.Equal(got, []string{k2, k1}) {
		t.Fatalf("JWKS = %v, want [new old]", got)
	}
	check := func(when string, tok string, ok bool) {
		t.Helper()
		r := h.ListTokens(tok)
		if ok && r.Status != 200 {
			t.Fatalf("%s: %d %s", when, r.Status, r.Body)
		}
		if !ok {
			apptest.WantError(t, r, 401, flashauth.CodeAuthRequired)
		}
	}
	check("old-key token after rotation", a.JWT, true)
	check("new-key token", b.JWT, true)

	// Keys live in the store: a restarted process verifies both.
	h.Start()
	check("old-key token after a restart", a.JWT, true)
	check("new-key token after a restart", b.JWT, true)

	h.Clock.Advance(49*time.Minute + 31*time.Second) // a expired (exp + leeway), b not
	check("old-key token after its expiry", a.JWT, false)
	check("new-key token", b.JWT, true)
	if got := apptest.JWKIDs(h.JWKS(t)); !slices.Equal(got, []string{k2, k1}) {
		t.Fatalf("JWKS = %v, want both until the old key's last token expired", got)
	}

	h.Clock.Advance(11 * time.Minute) // past the first key's expiry; the second is retired
	got := apptest.JWKIDs(h.JWKS(t))
	if slices.Contains(got, k1) || !slices.Contains(got, k2) || len(got) != 2 {
		t.Fatalf("JWKS = %v, want the old key gone, %s kept and its successor", got, k2)
	}
	c := h.SignIn(t, gu.ID, "")
	if k3 := c.Header["kid"]; k3 != got[0] || k3 == k2 {
		t.Fatalf("kid = %v, want the newest key %s", k3, got[0])
	}
	check("third-key token", c.JWT, true)
}

func TestSessionRefreshRotation(t *testing.T) {
	h := apptest.New(t)
	l := h.SignIn(t, h.GitHubUser("refresher").ID, "")
	now := h.Clock.Now()

	r1 := h.SessionPost(t, "/user/refresh", "refresh_token", l.SessionRT)
	if r1.Status != 200 {
		t.Fatalf("refresh: %d %s", r1.Status, r1.Body)
	}
	if cc := r1.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	m := r1.JSON(t)
	want := []string{"accessToken", "expiresAt", "refreshToken", "sessionExpiresAt", "success", "token", "tokenId"}
	if diff := cmp.Diff(want, apptest.SortedKeys(m)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	rt1, jwt1 := m["refreshToken"].(string), m["accessToken"].(string)
	if m["success"] != true || m["token"] != jwt1 || rt1 == l.SessionRT || len(rt1) != 43 || m["tokenId"] != l.TokenID {
		t.Errorf("answer: success %v, token==accessToken %v, rotated %v, tokenId %v (want %s)",
			m["success"], m["token"] == jwt1, rt1 != l.SessionRT, m["tokenId"], l.TokenID)
	}
	if m["expiresAt"] != float64(now.Add(time.Hour).UnixMilli()) || m["sessionExpiresAt"] != float64(now.Add(30*24*time.Hour).UnixMilli()) {
		t.Errorf("expiresAt %v, sessionExpiresAt %v (ms)", m["expiresAt"], m["sessionExpiresAt"])
	}
	if _, c := apptest.JWTParts(t, jwt1); c["sid"] != l.TokenID || c["sub"] != l.UserID() {
		t.Errorf("new access token claims sid %v sub %v", c["sid"], c["sub"])
	}
	if r := h.ListTokens(jwt1); r.Status != 200 {
		t.Errorf("new access token: %d", r.Status)
	}

	// The old token again, within the interval and in the other spelling:
	// the identical answer.
	h.Clock.Advance(9 * time.Second)
	again := h.SessionPost(t, "/user/refresh", "refreshToken", l.SessionRT)
	if again.Status != 200 || !bytes.Equal(again.Body, r1.Body) {
		t.Fatalf("old token within the interval: %d, identical %v", again.Status, bytes.Equal(again.Body, r1.Body))
	}
	// The camelCase spelling rotates too.
	r2 := h.SessionPost(t, "/user/refresh", "refreshToken", rt1)
	if r2.Status != 200 {
		t.Fatalf("refreshToken spelling: %d %s", r2.Status, r2.Body)
	}
	if rt2 := r2.JSON(t)["refreshToken"]; rt2 == rt1 || rt2 == l.SessionRT {
		t.Errorf("second rotation returned an old token")
	}
	// Rotation does not revoke the access tokens of the session.
	if r := h.ListTokens(l.JWT); r.Status != 200 {
		t.Errorf("first access token after rotations: %d", r.Status)
	}
}

func TestSessionRefreshConcurrentAndReuse(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("family")
	s1 := h.SignIn(t, gu.ID, `{"device":"one"}`)
	s2 := h.SignIn(t, gu.ID, `{"device":"two"}`)

	r1 := h.SessionPost(t, "/user/refresh", "refresh_token", s1.SessionRT)
	if r1.Status != 200 {
		t.Fatalf("refresh: %d %s", r1.Status, r1.Body)
	}
	rt1, jwt1 := r1.JSON(t)["refreshToken"].(string), r1.JSON(t)["token"].(string)

	// Ten tabs refresh with the same token at once: one rotation, one answer.
	statuses, bodies := h.ConcurrentPosts(t, "/user/refresh", `{"refresh_token":"`+rt1+`"}`, 10)
	for i := range statuses {
		if statuses[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("concurrent refresh %d: %d, identical %v", i, statuses[i], bytes.Equal(bodies[i], bodies[0]))
		}
	}
	var m2 map[string]any
	if err := json.Unmarshal(bodies[0], &m2); err != nil {
		t.Fatal(err)
	}
	rt2, jwt2 := m2["refreshToken"].(string), m2["token"].(string)
	if rt2 == rt1 {
		t.Fatal("concurrent refresh did not rotate")
	}

	// The first token presented after the reuse interval: someone holds a
	// copy, so the whole session dies.
	h.Clock.Advance(11 * time.Second)
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refresh_token", s1.SessionRT), 401, flashauth.CodeRefreshTokenReused)
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refresh_token", rt2), 401, flashauth.CodeInvalidRefreshToken)
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refreshToken", rt1), 401, flashauth.CodeInvalidRefreshToken)
	for i, tok := range []string{s1.JWT, jwt1, jwt2} {
		if r := h.ListTokens(tok); r.Status != 401 {
			t.Errorf("access token %d of the revoked session: %d, want 401", i, r.Status)
		}
	}
	// Only that session: the user's other one lives on.
	r := h.ListTokens(s2.JWT)
	if r.Status != 200 {
		t.Fatalf("other session: %d %s", r.Status, r.Body)
	}
	if toks := r.JSON(t)["tokens"].([]any); len(toks) != 1 || toks[0].(map[string]any)["id"] != s2.TokenID {
		t.Errorf("sessions listed = %v, want only the surviving one", toks)
	}
	if r := h.SessionPost(t, "/user/refresh", "refresh_token", s2.SessionRT); r.Status != 200 {
		t.Errorf("other session's refresh: %d %s", r.Status, r.Body)
	}
}

func TestLogout(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("leaver")
	l1 := h.SignIn(t, gu.ID, "")
	l2 := h.SignIn(t, gu.ID, "")
	stranger := h.SignIn(t, h.GitHubUser("stranger").ID, "")

	// A foreign Bearer is ignored on logout.
	r := h.SessionPost(t, "/user/logout", "refresh_token", l1.SessionRT, "Authorization", "Bearer "+stranger.JWT)
	if r.Status != 200 || string(bytes.TrimSpace(r.Body)) != `{"success":true}` {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	r = h.SessionPost(t, "/user/logout", "refreshToken", l1.SessionRT)
	if r.Status != 200 || string(bytes.TrimSpace(r.Body)) != `{"success":true}` {
		t.Fatalf("logout again: %d %s", r.Status, r.Body)
	}
	apptest.WantError(t, h.ListTokens(l1.JWT), 401, flashauth.CodeAuthRequired)
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refresh_token", l1.SessionRT), 401, flashauth.CodeInvalidRefreshToken)

	// The other session and the other user are untouched.
	if r := h.ListTokens(l2.JWT); r.Status != 200 || len(r.JSON(t)["tokens"].([]any)) != 1 {
		t.Fatalf("the user's other session: %d %s", r.Status, r.Body)
	}
	if r := h.ListTokens(stranger.JWT); r.Status != 200 {
		t.Fatalf("another user's session: %d", r.Status)
	}

	// Logging out with a rotated-out token ends the session too.
	rr := h.SessionPost(t, "/user/refresh", "refresh_token", l2.SessionRT)
	if rr.Status != 200 {
		t.Fatalf("refresh: %d", rr.Status)
	}
	if r := h.SessionPost(t, "/user/logout", "refresh_token", l2.SessionRT); r.Status != 200 {
		t.Fatalf("logout with a rotated-out token: %d %s", r.Status, r.Body)
	}
	// Within the reuse interval the old token would get the refresh's answer
	// again, but its session is gone: no dead tokens are handed out.
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refresh_token", l2.SessionRT), 401, flashauth.CodeInvalidRefreshToken)
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refresh_token", rr.JSON(t)["refreshToken"].(string)), 401, flashauth.CodeInvalidRefreshToken)
	apptest.WantError(t, h.ListTokens(rr.JSON(t)["token"].(string)), 401, flashauth.CodeAuthRequired)

	// A token that was never issued names no session.
	apptest.WantError(t, h.SessionPost(t, "/user/logout", "refresh_token", apptest.B64URL(bytes.Repeat([]byte{9}, 32))), 401, flashauth.CodeInvalidRefreshToken)
}

func TestListAndRevokeSessions(t *testing.T) {
	h := apptest.New(t)
	gu := h.GitHubUser("lister")
	t1 := h.Clock.Now()
	laptop := h.SignIn(t, gu.ID, `{"name":"laptop","os":"linux"}`, "User-Agent", "flashback-cli/1.0")
	h.Clock.Advance(time.Second)
	t2 := h.Clock.Now()
	phone := h.SignIn(t, gu.ID, `{"name":"phone"}`, "User-Agent", "FlashbackApp/2.0 (iOS)")
	stranger := h.SignIn(t, h.GitHubUser("lister-other").ID, "")

	list := func(t *testing.T, jwt string) []map[string]any {
		t.Helper()
		r := h.ListTokens(jwt)
		if r.Status != 200 {
			t.Fatalf("GET /token: %d %s", r.Status, r.Body)
		}
		var body struct {
			Success bool             `json:"success"`
			Tokens  []map[string]any `json:"tokens"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil || !body.Success {
			t.Fatalf("GET /token body %s: %v", r.Body, err)
		}
		return body.Tokens
	}
	want := []map[string]any{
		{"id": phone.TokenID, "createdAt": float64(t2.UnixMilli()), "lastUsedAt": float64(t2.UnixMilli()),
			"expiresAt": float64(t2.Add(30 * 24 * time.Hour).UnixMilli()), "deviceInfo": map[string]any{"name": "phone"},
			"ipAddress": "127.0.0.1", "userAgent": "FlashbackApp/2.0 (iOS)", "provider": "GITHUB", "current": true},
		{"id": laptop.TokenID, "createdAt": float64(t1.UnixMilli()), "lastUsedAt": float64(t1.UnixMilli()),
			"expiresAt": float64(t1.Add(30 * 24 * time.Hour).UnixMilli()), "deviceInfo": map[string]any{"name": "laptop", "os": "linux"},
			"ipAddress": "127.0.0.1", "userAgent": "flashback-cli/1.0", "provider": "GITHUB", "current": false},
	}
	if diff := cmp.Diff(want, list(t, phone.JWT)); diff != "" {
		t.Errorf("sessions seen from the phone, newest first (-want +got):\n%s", diff)
	}
	// "current" follows the caller.
	fromLaptop := list(t, laptop.JWT)
	if len(fromLaptop) != 2 || fromLaptop[0]["current"] != false || fromLaptop[1]["current"] != true {
		t.Errorf("seen from the laptop: %v", fromLaptop)
	}
	// Another user's sessions are never listed.
	if got := list(t, stranger.JWT); len(got) != 1 || got[0]["id"] != stranger.TokenID || got[0]["current"] != true {
		t.Errorf("stranger's list = %v", got)
	}

	del := func(jwt, id string) apptest.Response {
		return h.Do(http.MethodDelete, "/token/"+url.PathEscape(id), "", nil, "Authorization", "Bearer "+jwt)
	}
	apptest.WantError(t, del(phone.JWT, stranger.TokenID), 404, flashauth.CodeNotFound)
	apptest.WantError(t, del(phone.JWT, "00000000-0000-4000-8000-000000000000"), 404, flashauth.CodeNotFound)
	apptest.WantError(t, del(phone.JWT, strings.Repeat("a", 200)), 404, flashauth.CodeNotFound)
	apptest.WantError(t, h.Do(http.MethodDelete, "/token/"+laptop.TokenID, "", nil), 401, flashauth.CodeAuthRequired)
	if got := list(t, stranger.JWT); len(got) != 1 {
		t.Fatalf("the stranger's session after a foreign DELETE: %v", got)
	}

	r := del(phone.JWT, laptop.TokenID)
	if r.Status != 200 || string(bytes.TrimSpace(r.Body)) != `{"success":true}` {
		t.Fatalf("DELETE own session: %d %s", r.Status, r.Body)
	}
	if got := list(t, phone.JWT); len(got) != 1 || got[0]["id"] != phone.TokenID {
		t.Errorf("after DELETE: %v, want only the phone", got)
	}
	apptest.WantError(t, h.ListTokens(laptop.JWT), 401, flashauth.CodeAuthRequired)
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refresh_token", laptop.SessionRT), 401, flashauth.CodeInvalidRefreshToken)
}

func TestRefreshOwnershipCompat(t *testing.T) {
	h := apptest.New(t)
	owner := h.SignIn(t, h.GitHubUser("owner").ID, "")
	other := h.SignIn(t, h.GitHubUser("other").ID, "")
	upstream := func() int64 { return h.Emu.Calls().TokenRefresh }
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	// A valid JWT of another user: refused before GitHub is asked.
	apptest.WantError(t, h.Refresh(owner.GHRefresh, bearer(other.JWT)...), 403, flashauth.CodeTokenOwnerMismatch)
	if c := upstream(); c != 0 {
		t.Fatalf("upstream refreshes = %d after a mismatch, want 0", c)
	}
	// The stale non-JWT Bearer real clients send (the OAuth code itself) is ignored.
	r := h.Refresh(owner.GHRefresh, bearer(owner.Code)...)
	if r.Status != 200 {
		t.Fatalf("stale Bearer: %d %s", r.Status, r.Body)
	}
	rotated := r.JSON(t)["refreshToken"].(string)
	// The rotated token inherits its owner.
	apptest.WantError(t, h.Refresh(rotated, bearer(other.JWT)...), 403, flashauth.CodeTokenOwnerMismatch)
	if c := upstream(); c != 1 {
		t.Fatalf("upstream refreshes = %d, want 1", c)
	}
	r = h.Refresh(rotated, bearer(owner.JWT)...)
	if r.Status != 200 {
		t.Fatalf("owner's JWT: %d %s", r.Status, r.Body)
	}
	rotated = r.JSON(t)["refreshToken"].(string)
	// No Bearer at all is fine in compat.
	r = h.Refresh(rotated)
	if r.Status != 200 {
		t.Fatalf("no Bearer: %d %s", r.Status, r.Body)
	}
	rotated = r.JSON(t)["refreshToken"].(string)
	// Another user's JWT whose session ended is just an invalid Bearer: ignored.
	if lo := h.SessionPost(t, "/user/logout", "refresh_token", other.SessionRT); lo.Status != 200 {
		t.Fatalf("logout: %d", lo.Status)
	}
	if r := h.Refresh(rotated, bearer(other.JWT)...); r.Status != 200 {
		t.Fatalf("revoked foreign JWT: %d %s", r.Status, r.Body)
	}
	if c := upstream(); c != 4 {
		t.Fatalf("upstream refreshes = %d, want 4", c)
	}
}

func TestRefreshOwnershipSession(t *testing.T) {
	h := apptest.New(t, func(c *app.Config) { c.RefreshAuth = "session" })
	gu := h.GitHubUser("owner")
	owner := h.SignIn(t, gu.ID, "")
	other := h.SignIn(t, h.GitHubUser("other").ID, "")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

	apptest.WantError(t, h.Refresh(owner.GHRefresh), 401, flashauth.CodeAuthRequired)
	apptest.WantError(t, h.Refresh(owner.GHRefresh, bearer(owner.Code)...), 401, flashauth.CodeAuthRequired)
	apptest.WantError(t, h.Refresh(owner.GHRefresh, bearer(other.JWT)...), 403, flashauth.CodeTokenOwnerMismatch)
	if c := h.Emu.Calls().TokenRefresh; c != 0 {
		t.Fatalf("upstream refreshes = %d after refusals, want 0", c)
	}
	r := h.Refresh(owner.GHRefresh, bearer(owner.JWT)...)
	if r.Status != 200 {
		t.Fatalf("owner's JWT: %d %s", r.Status, r.Body)
	}
	if r := h.Refresh(r.JSON(t)["refreshToken"].(string), bearer(owner.JWT)...); r.Status != 200 {
		t.Fatalf("owner refreshing the rotated token: %d %s", r.Status, r.Body)
	}
	// A token flashauth never issued has no known owner: refused even to a
	// valid JWT of the GitHub account's own flashauth user.
	g, err := h.Emu.MintGrant(gu.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.See(g.AccessToken, g.RefreshToken)
	apptest.WantError(t, h.Refresh(g.RefreshToken, bearer(owner.JWT)...), 403, flashauth.CodeTokenOwnerMismatch)
	if c := h.Emu.Calls().TokenRefresh; c != 2 {
		t.Fatalf("upstream refreshes = %d, want 2", c)
	}
}

// Malformed requests to the sign-in and session endpoints: the right 4xx,
// never a 500, and nothing sent to GitHub.
func TestSessionEndpointsBadInput(t *testing.T) {
	h := apptest.New(t)
	const js = "application/json"
	type row struct {
		name, contentType, body string
		status                  int
		code                    string
	}
	common := func(field string) []row {
		f := `"` + field + `"`
		return []row{
			{"empty body", js, "", 400, flashauth.CodeInvalidRequest},
			{"array", js, `[{` + f + `:"abc"}]`, 400, flashauth.CodeInvalidRequest},
			{"JSON null", js, `null`, 400, flashauth.CodeInvalidRequest},
			{"JSON string", js, `"abc"`, 400, flashauth.CodeInvalidRequest},
			{"not JSON", js, field + `=abc`, 400, flashauth.CodeInvalidRequest},
			{"no field", js, `{}`, 400, flashauth.CodeInvalidRequest},
			{"number", js, `{` + f + `:12345}`, 400, flashauth.CodeInvalidRequest},
			{"null", js, `{` + f + `:null}`, 400, flashauth.CodeInvalidRequest},
			{"empty", js, `{` + f + `:""}`, 400, flashauth.CodeInvalidRequest},
			{"object", js, `{` + f + `:{"a":1}}`, 400, flashauth.CodeInvalidRequest},
			{"with a space", js, `{` + f + `:"ab cd"}`, 400, flashauth.CodeInvalidRequest},
			{"trailing garbage", js, `{` + f + `:"abc"} {}`, 400, flashauth.CodeInvalidRequest},
			{"text/plain", "text/plain", `{` + f + `:"abc"}`, 415, flashauth.CodeUnsupportedMediaType},
			{"form-encoded", "application/x-www-form-urlencoded", field + "=abc", 415, flashauth.CodeUnsupportedMediaType},
			{"no content type", "", `{` + f + `:"abc"}`, 415, flashauth.CodeUnsupportedMediaType},
			{"100 KB", js, `{` + f + `:"` + strings.Repeat("a", 100<<10) + `"}`, 413, flashauth.CodePayloadTooLarge},
		}
	}
	sessionRows := func(field string) []row {
		return append(common(field),
			row{"not one of our tokens", js, `{"` + field + `":"abc"}`, 401, flashauth.CodeInvalidRefreshToken},
			row{"other spelling of the wrong type", js, `{"refreshToken":1}`, 400, flashauth.CodeInvalidRequest},
		)
	}
	endpoints := []struct {
		path string
		rows []row
	}{
		{"/auth/github", append(common("code"),
			row{"state a number", js, `{"code":"abc","state":1}`, 400, flashauth.CodeInvalidRequest},
			row{"state with a space", js, `{"code":"abc","state":"ab cd"}`, 400, flashauth.CodeInvalidState},
			row{"redirect_uri relative", js, `{"code":"abc","redirect_uri":"/cb"}`, 400, flashauth.CodeInvalidRequest},
			row{"redirect_uri with a fragment", js, `{"code":"abc","redirect_uri":"http://localhost/cb#x"}`, 400, flashauth.CodeInvalidRequest},
			row{"redirect_uri an array", js, `{"code":"abc","redirect_uri":["http://localhost/cb"]}`, 400, flashauth.CodeInvalidRequest},
		)},
		{"/user/refresh", sessionRows("refresh_token")},
		{"/user/logout", sessionRows("refresh_token")},
	}
	for _, ep := range endpoints {
		for _, tc := range ep.rows {
			t.Run(ep.path+"/"+tc.name, func(t *testing.T) {
				apptest.WantError(t, h.Do(http.MethodPost, ep.path, tc.contentType, strings.NewReader(tc.body)), tc.status, tc.code)
			})
		}
	}
	apptest.WantError(t, h.Do(http.MethodGet, "/auth/github/authorize?redirect_uri=not-a-url", "", nil), 400, flashauth.CodeInvalidRequest)
	apptest.WantError(t, h.Do(http.MethodGet, "/auth/github", "", nil), 405, flashauth.CodeMethodNotAllowed)
	apptest.WantError(t, h.Do(http.MethodPost, "/token", js, strings.NewReader("{}")), 405, flashauth.CodeMethodNotAllowed)
	if c := h.Emu.Calls(); c != (githubemu.Counters{}) {
		t.Fatalf("upstream calls = %+v: bad input must never reach GitHub", c)
	}
}
