package githubemu

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-and-some-more"

func (te *testEmu) login(t *testing.T, p LoginParams) string {
	t.Helper()
	if p.ClientID == "" {
		p.ClientID = te.ClientID()
	}
	if p.UserID == 0 {
		p.UserID = te.AddUser(User{Login: "octocat"}).ID
	}
	code, err := te.CompleteLogin(p)
	if err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	return code
}

func TestCodeSingleUse(t *testing.T) {
	te := newTestEmu(t, Config{})
	code := te.login(t, LoginParams{})
	if len(code) != 20 {
		t.Fatalf("code length %d, want 20", len(code))
	}
	m := te.postToken(t, "application/json", te.creds("code", code)).json(t)
	access, _ := m["access_token"].(string)
	if !accessRE.MatchString(access) || !refreshRE.MatchString(m["refresh_token"].(string)) {
		t.Fatalf("exchange: %v", m)
	}
	if res := te.get(t, UserPath, access); res.status != 200 || res.json(t)["login"] != "octocat" {
		t.Fatalf("/user after exchange: %d %q", res.status, res.body)
	}
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("code", code)), ErrCodeBadVerificationCode)
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("grant_type", "authorization_code", "code", "0123456789abcdef0123")), ErrCodeBadVerificationCode)
	wantOAuthError(t, te.postToken(t, "application/json", te.creds()), ErrCodeBadVerificationCode)
	if c := te.Calls(); c.TokenCode != 4 || c.TokenTotal != 4 || c.User != 1 {
		t.Fatalf("calls = %+v", c)
	}
}

func TestCodeExpiry(t *testing.T) {
	te := newTestEmu(t, Config{CodeTTL: time.Minute})
	early := te.login(t, LoginParams{})
	late := te.login(t, LoginParams{})
	te.clock.Advance(time.Minute - time.Second)
	if m := te.postToken(t, "application/json", te.creds("code", early)).json(t); m["access_token"] == nil {
		t.Fatalf("code just before expiry: %v", m)
	}
	te.clock.Advance(time.Second)
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("code", late)), ErrCodeBadVerificationCode)
}

func TestPKCE(t *testing.T) {
	te := newTestEmu(t, Config{})
	challenge := S256Challenge(verifier)
	for _, tc := range []struct {
		name, verifier, want string
	}{
		{"right verifier", verifier, ""},
		{"wrong verifier", verifier[:len(verifier)-1] + "x", ErrCodeBadVerificationCode},
		{"missing verifier", "", ErrCodeBadVerificationCode},
		{"challenge as verifier", challenge, ErrCodeBadVerificationCode},
		{"too short", "abc", ErrCodeBadVerificationCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := te.login(t, LoginParams{CodeChallenge: challenge, CodeChallengeMethod: "S256"})
			res := te.postToken(t, "application/json", te.creds("code", code, "code_verifier", tc.verifier))
			if tc.want != "" {
				wantOAuthError(t, res, tc.want)
				// A failed attempt spent the code: the right verifier is too late.
				wantOAuthError(t, te.postToken(t, "application/json", te.creds("code", code, "code_verifier", verifier)), ErrCodeBadVerificationCode)
				return
			}
			if m := res.json(t); m["access_token"] == nil {
				t.Fatalf("exchange: %v", m)
			}
		})
	}
}

func TestLoginChecks(t *testing.T) {
	te := newTestEmu(t, Config{CallbackURL: "http://app.test/cb"})
	id := te.AddUser(User{Login: "octocat"}).ID
	challenge := S256Challenge(verifier)
	for _, tc := range []struct {
		name string
		p    LoginParams
		want error
	}{
		{"ok", LoginParams{RedirectURI: "http://app.test/cb"}, nil},
		{"callback by default", LoginParams{}, nil},
		{"unknown client", LoginParams{ClientID: "Iv1.other"}, ErrUnknownClient},
		{"other redirect", LoginParams{RedirectURI: "http://evil.test/cb"}, ErrRedirectURIMismatch},
		{"relative redirect", LoginParams{RedirectURI: "/cb"}, ErrInvalidRedirectURI},
		{"plain challenge", LoginParams{CodeChallenge: verifier, CodeChallengeMethod: "plain"}, ErrInvalidChallenge},
		{"method missing", LoginParams{CodeChallenge: challenge}, ErrInvalidChallenge},
		{"challenge malformed", LoginParams{CodeChallenge: "abc", CodeChallengeMethod: "S256"}, ErrInvalidChallenge},
		{"unknown user", LoginParams{UserID: 42}, ErrUnknownUser},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.ClientID == "" {
				tc.p.ClientID = te.ClientID()
			}
			if tc.p.UserID == 0 {
				tc.p.UserID = id
			}
			_, err := te.CompleteLogin(tc.p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestRedirectURIMismatch(t *testing.T) {
	te := newTestEmu(t, Config{})
	for _, tc := range []struct {
		name, authorize, exchange, want string
	}{
		{"same", "http://app.test/cb", "http://app.test/cb", ""},
		{"omitted at exchange", "http://app.test/cb", "", ""},
		{"different path", "http://app.test/cb", "http://app.test/other", ErrCodeRedirectURIMismatch},
		{"different host", "http://app.test/cb", "http://evil.test/cb", ErrCodeRedirectURIMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := te.login(t, LoginParams{RedirectURI: tc.authorize})
			res := te.postToken(t, "application/json", te.creds("code", code, "redirect_uri", tc.exchange))
			if tc.want != "" {
				wantOAuthError(t, res, tc.want)
				return
			}
			if m := res.json(t); m["access_token"] == nil {
				t.Fatalf("exchange: %v", m)
			}
		})
	}

	t.Run("registered callback", func(t *testing.T) {
		te := newTestEmu(t, Config{CallbackURL: "http://app.test/cb"})
		code := te.login(t, LoginParams{})
		wantOAuthError(t, te.postToken(t, "application/json", te.creds("code", code, "redirect_uri", "http://app.test/cb/x")), ErrCodeRedirectURIMismatch)
	})

	// With LoopbackAnyPort, a registered loopback callback matches any port
	// of the same host and path (RFC 8252 section 7.3); without it, or for
	// another host, path or scheme, only the registered URL does.
	t.Run("loopback callback, any port", func(t *testing.T) {
		const registered = "http://127.0.0.1/callback"
		for _, tc := range []struct {
			redirect string
			anyPort  bool
			ok       bool
		}{
			{"http://127.0.0.1:49152/callback", true, true},
			{"http://127.0.0.1/callback", true, true},
			{"http://127.0.0.1:49152/callback", false, false},
			{"http://127.0.0.1:49152/other", true, false},
			{"http://127.0.0.1:49152/callback?x=1", true, false},
			{"https://127.0.0.1:49152/callback", true, false},
			{"http://127.0.0.2:49152/callback", true, false},
			{"http://localhost:49152/callback", true, false},
			{"http://evil.test:49152/callback", true, false},
			{"http://u@127.0.0.1:49152/callback", true, false},
		} {
			te := newTestEmu(t, Config{CallbackURL: "http://app.test/cb", MoreCallbackURLs: []string{registered}, LoopbackAnyPort: tc.anyPort})
			code, err := te.CompleteLogin(LoginParams{ClientID: te.ClientID(), UserID: te.AddUser(User{Login: "x"}).ID, RedirectURI: tc.redirect})
			if !tc.ok {
				if !errors.Is(err, ErrRedirectURIMismatch) && !errors.Is(err, ErrInvalidRedirectURI) {
					t.Errorf("%s (any port %v): %v, want a mismatch", tc.redirect, tc.anyPort, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", tc.redirect, err)
			}
			if m := te.postToken(t, "application/json", te.creds("code", code, "redirect_uri", tc.redirect)).json(t); m["access_token"] == nil {
				t.Fatalf("%s: exchange: %v", tc.redirect, m)
			}
		}
	})

	// A second registered callback works from authorize to exchange; a
	// code bound to one callback cannot be exchanged with the other.
	t.Run("more callbacks", func(t *testing.T) {
		te := newTestEmu(t, Config{CallbackURL: "http://app.test/cb", MoreCallbackURLs: []string{"http://demo.test/"}})
		code := te.login(t, LoginParams{RedirectURI: "http://demo.test/"})
		if m := te.postToken(t, "application/json", te.creds("code", code, "redirect_uri", "http://demo.test/")).json(t); m["access_token"] == nil {
			t.Fatalf("exchange: %v", m)
		}
		code = te.login(t, LoginParams{RedirectURI: "http://demo.test/"})
		wantOAuthError(t, te.postToken(t, "application/json", te.creds("code", code, "redirect_uri", "http://app.test/cb")), ErrCodeRedirectURIMismatch)
		if _, err := te.CompleteLogin(LoginParams{ClientID: te.ClientID(), UserID: te.AddUser(User{Login: "x"}).ID, RedirectURI: "http://demo.test/other"}); !errors.Is(err, ErrRedirectURIMismatch) {
			t.Fatalf("unregistered redirect: %v", err)
		}
	})
}

func TestUnverifiedEmail(t *testing.T) {
	noEmail := User{Login: "ghost", Emails: []Email{{Email: "ghost@example.com", Primary: true, Verified: false}}}
	t.Run("default issues the token", func(t *testing.T) {
		te := newTestEmu(t, Config{})
		code := te.login(t, LoginParams{UserID: te.AddUser(noEmail).ID})
		m := te.postToken(t, "application/json", te.creds("code", code)).json(t)
		if m["access_token"] == nil {
			t.Fatalf("exchange: %v", m)
		}
		res := te.get(t, EmailsPath, m["access_token"].(string))
		if res.status != 200 || !strings.Contains(res.body, `"verified":false`) {
			t.Fatalf("/user/emails: %d %q", res.status, res.body)
		}
	})
	t.Run("option refuses", func(t *testing.T) {
		te := newTestEmu(t, Config{RejectUnverifiedEmail: true})
		code := te.login(t, LoginParams{UserID: te.AddUser(noEmail).ID})
		wantOAuthError(t, te.postToken(t, "application/json", te.creds("code", code)), ErrCodeUnverifiedUserEmail)
	})
}

func TestRemovedUser(t *testing.T) {
	te := newTestEmu(t, Config{})
	u, g := te.mustGrant(t, "octocat")
	code := te.login(t, LoginParams{UserID: u.ID})
	te.RemoveUser(u.ID)
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("grant_type", "refresh_token", "refresh_token", g.RefreshToken)), ErrCodeBadRefreshToken)
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("code", code)), ErrCodeBadVerificationCode)
	if res := te.get(t, UserPath, g.AccessToken); res.status != 401 {
		t.Fatalf("/user of removed user: %d", res.status)
	}
}

// CompleteLoginURL takes the login's parameters from the authorize URL: the
// code it returns is bound to that URL's PKCE challenge, and the URL's
// client_id and redirect_uri are checked like CompleteLogin's.
func TestCompleteLoginURL(t *testing.T) {
	te := newTestEmu(t, Config{CallbackURL: "http://app.test/cb"})
	u := te.AddUser(User{Login: "octocat"})
	authorize := func(clientID, redirect string) string {
		q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "state": {"st"},
			"code_challenge": {S256Challenge(verifier)}, "code_challenge_method": {"S256"}}
		return "https://github.example" + AuthorizePath + "?" + q.Encode()
	}
	code, err := te.CompleteLoginURL(authorize(te.ClientID(), "http://app.test/cb"), u.ID)
	if err != nil {
		t.Fatalf("CompleteLoginURL: %v", err)
	}
	wantOAuthError(t, te.postToken(t, "application/json", te.creds("code", code)), ErrCodeBadVerificationCode)
	code, err = te.CompleteLoginURL(authorize(te.ClientID(), "http://app.test/cb"), u.ID)
	if err != nil {
		t.Fatalf("CompleteLoginURL: %v", err)
	}
	if m := te.postToken(t, "application/json", te.creds("code", code, "code_verifier", verifier)).json(t); m["access_token"] == nil {
		t.Fatalf("exchange with the URL's verifier: %v", m)
	}
	if _, err := te.CompleteLoginURL(authorize("Iv1.other", "http://app.test/cb"), u.ID); !errors.Is(err, ErrUnknownClient) {
		t.Errorf("foreign client_id: err = %v, want ErrUnknownClient", err)
	}
	if _, err := te.CompleteLoginURL(authorize(te.ClientID(), "http://evil.test/cb"), u.ID); !errors.Is(err, ErrRedirectURIMismatch) {
		t.Errorf("foreign redirect_uri: err = %v, want ErrRedirectURIMismatch", err)
	}
	if _, err := te.CompleteLoginURL("http://[::1", u.ID); err == nil || strings.Contains(err.Error(), "::1") {
		t.Errorf("unparsable URL: err = %v, want an error that does not quote it", err)
	}
}
