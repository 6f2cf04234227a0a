package client_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth/client"
)

// Every endpoint through the SDK against the real app and the emulator: the
// typed answers carry what the server sent, times converted from ms.
func TestEveryEndpoint(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	now := s.clock.Now()

	if err := s.c.Healthz(ctx); err != nil {
		t.Fatalf("Healthz: %v", err)
	}
	if err := s.c.Readyz(ctx); err != nil {
		t.Fatalf("Readyz: %v", err)
	}

	// Sign-in: authorize, approval at GitHub, POST /auth/github.
	az, err := s.c.Authorize(ctx, client.AuthorizeRequest{RedirectURI: testRedirect})
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	u, _ := url.Parse(az.URL)
	if q := u.Query(); q.Get("state") != az.State || az.State == "" || q.Get("redirect_uri") != testRedirect || q.Get("code_challenge_method") != "S256" {
		t.Fatalf("authorize URL %s does not carry state, redirect_uri and PKCE", u.Redacted())
	}
	octo := s.user("octo")
	code := s.approve(t, az.URL, octo.ID)
	res, err := s.c.SignIn(ctx, client.SignInRequest{Code: code, State: az.State, RedirectURI: testRedirect, DeviceInfo: json.RawMessage(`{"name":"laptop"}`)})
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	if res.User.Email != "octo@example.com" || res.User.Name != "The octo" || res.User.ImageURL == "" || res.Provider != "GITHUB" || res.Message == "" {
		t.Errorf("sign-in user/provider/message: %+v %q %q", res.User, res.Provider, res.Message)
	}
	if res.Session.ID == "" || res.Session.AccessToken == "" || res.Session.RefreshToken == "" ||
		!res.Session.AccessTokenExpiry.Equal(now.Add(time.Hour).Truncate(time.Second)) ||
		!res.Session.RefreshTokenExpiry.Equal(now.Add(30*24*time.Hour)) {
		t.Errorf("session of the sign-in: id %q, expiries %v %v", res.Session.ID, res.Session.AccessTokenExpiry, res.Session.RefreshTokenExpiry)
	}
	if !strings.HasPrefix(res.GitHub.AccessToken, "ghu_") || !strings.HasPrefix(res.GitHub.RefreshToken, "ghr_") ||
		!res.GitHub.Expiry.Equal(now.Add(githubAccessTTL)) {
		t.Errorf("GitHub pair of the sign-in: expiry %v", res.GitHub.Expiry)
	}

	// The JWKS holds the key that signed the access token.
	set, err := s.c.JWKS(ctx)
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	kid := jwtKid(t, res.Session.AccessToken)
	found := false
	for _, k := range set.Keys {
		if k.Kid == kid && k.Kty == "OKP" && k.Crv == "Ed25519" && k.X != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("JWKS %+v lacks the signing key %q", set.Keys, kid)
	}

	// The discovery document names the tokens' issuer and where the JWKS is.
	disc, err := s.c.Discovery(ctx)
	if err != nil {
		t.Fatalf("Discovery: %v", err)
	}
	if disc.Issuer != jwtClaim(t, res.Session.AccessToken, "iss") || disc.JWKSURI != s.c.BaseURL()+"/.well-known/jwks.json" ||
		len(disc.SigningAlgorithms) != 1 || disc.SigningAlgorithms[0] != "EdDSA" {
		t.Errorf("Discovery = %+v", disc)
	}

	// GET /token lists the session.
	list, err := s.c.Sessions(ctx, res.Session.AccessToken)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	want := []client.SessionInfo{{ID: res.Session.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour),
		DeviceInfo: json.RawMessage(`{"name":"laptop"}`), IPAddress: "127.0.0.1", UserAgent: "flashauth-go-client", Provider: "GITHUB", Current: true}}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("Sessions (-want +got):\n%s", diff)
	}

	// POST /auth/github/refresh rotates the GitHub pair.
	s.emu.ResetCalls()
	s.clock.Advance(time.Minute)
	gh, err := s.c.RefreshGitHub(ctx, client.RefreshGitHubRequest{RefreshToken: res.GitHub.RefreshToken, AccessToken: res.Session.AccessToken})
	if err != nil {
		t.Fatalf("RefreshGitHub: %v", err)
	}
	if gh.AccessToken == res.GitHub.AccessToken || gh.RefreshToken == res.GitHub.RefreshToken || gh.TokenType != "bearer" ||
		!gh.Expiry.Equal(s.clock.Now().Add(githubAccessTTL)) || !gh.RefreshTokenExpiry.Equal(s.clock.Now().Add(githubRefreshTTL)) {
		t.Errorf("RefreshGitHub answer: type %q expiries %v %v", gh.TokenType, gh.Expiry, gh.RefreshTokenExpiry)
	}
	if n := s.emu.Calls().TokenRefresh; n != 1 {
		t.Errorf("GitHub saw %d refreshes, want 1", n)
	}
	// The pair works at GitHub's API as an oauth2 token.
	if st := githubUserStatus(t, s, gh.OAuth2().AccessToken); st != http.StatusOK {
		t.Errorf("GET /user with the refreshed token: %d", st)
	}

	// POST /user/refresh rotates the session.
	sess, err := s.c.RefreshSession(ctx, res.Session.RefreshToken)
	if err != nil {
		t.Fatalf("RefreshSession: %v", err)
	}
	if sess.ID != res.Session.ID || sess.RefreshToken == res.Session.RefreshToken || sess.AccessToken == "" ||
		!sess.AccessTokenExpiry.Equal(s.clock.Now().Add(time.Hour)) || !sess.RefreshTokenExpiry.Equal(s.clock.Now().Add(30*24*time.Hour)) {
		t.Errorf("RefreshSession: id %q expiries %v %v", sess.ID, sess.AccessTokenExpiry, sess.RefreshTokenExpiry)
	}

	// DELETE /token/{id}: a second session, revoked from the first.
	other := s.signIn(t, octo.ID, "")
	if list, _ := s.c.Sessions(ctx, sess.AccessToken); len(list) != 2 || list[0].ID != other.Session.ID || list[0].Current || list[0].DeviceInfo != nil {
		t.Fatalf("two sessions, newest first, the other not current, without device info: %+v", list)
	}
	if err := s.c.RevokeSession(ctx, sess.AccessToken, other.Session.ID); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	if list, _ := s.c.Sessions(ctx, sess.AccessToken); len(list) != 1 || list[0].ID != sess.ID {
		t.Fatalf("after the revoke: %+v", list)
	}
	err = s.c.RevokeSession(ctx, sess.AccessToken, "no/such id")
	if e := asError(t, err); e.Status != http.StatusNotFound || e.Code != client.CodeNotFound {
		t.Errorf("revoking an unknown id: %v", err)
	}

	// POST /user/logout ends the session; its refresh token is dead.
	if err := s.c.Logout(ctx, sess.RefreshToken); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if err := s.c.Logout(ctx, sess.RefreshToken); err != nil {
		t.Errorf("a second logout: %v", err)
	}
	_, err = s.c.RefreshSession(ctx, sess.RefreshToken)
	if !client.IsReauthRequired(err) || client.Code(err) != client.CodeInvalidRefreshToken {
		t.Errorf("refreshing a logged-out session: %v", err)
	}
}

// The emulator's default lifetimes, which flashauth passes on.
const (
	githubAccessTTL  = 8 * time.Hour
	githubRefreshTTL = 15897600 * time.Second
)

// Authorize passes ?pkce=false through when asked, and only then.
func TestAuthorizePKCEParameter(t *testing.T) {
	s := newServer(t)
	for _, disable := range []bool{false, true} {
		_, err := s.c.Authorize(context.Background(), client.AuthorizeRequest{RedirectURI: testRedirect, DisablePKCE: disable})
		if err != nil {
			t.Fatalf("Authorize(DisablePKCE=%v): %v", disable, err)
		}
		q, _ := url.ParseQuery(s.lastQuery("/auth/github/authorize"))
		if got := q.Has("pkce"); got != disable || (disable && q.Get("pkce") != "false") || q.Get("redirect_uri") != testRedirect {
			t.Errorf("DisablePKCE=%v sent query %q", disable, q.Encode())
		}
	}
}

// A base URL with a path prefix keeps it; bad base URLs are refused.
func TestNewBaseURL(t *testing.T) {
	for _, bad := range []string{"", "example.com", "ftp://x", "http://", "http://u:p@x", "http://x/?q=1"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	c, err := client.New("https://auth.example/prefix/")
	if err != nil || c.BaseURL() != "https://auth.example/prefix" {
		t.Errorf("New with a prefix: %v %q", err, c.BaseURL())
	}
}

func githubUserStatus(t *testing.T, s *server, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, githubBase(s)+"/user", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "sdk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// githubBase is the emulator's URL, read from an authorize URL.
func githubBase(s *server) string {
	az, err := s.c.Authorize(context.Background(), client.AuthorizeRequest{RedirectURI: testRedirect})
	if err != nil {
		panic(err)
	}
	u, _ := url.Parse(az.URL)
	return u.Scheme + "://" + u.Host
}

func jwtKid(t *testing.T, jwt string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	_ = json.Unmarshal(b, &h)
	return h.Kid
}

// asError returns err's *client.Error or fails.
func asError(t *testing.T, err error) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	return e
}

// jwtClaim returns a string claim of jwt's payload (not verified).
func jwtClaim(t *testing.T, jwt, name string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	v, _ := claims[name].(string)
	return v
}
