package signin_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/signin"
)

func octocat(e *env) githubemu.User {
	return e.emu.AddUser(githubemu.User{
		Login: "octocat", Name: "The Octocat", Company: "@acme",
		AvatarURL: "https://avatars.example.com/u/1",
		Emails: []githubemu.Email{
			{Email: "old@example.com", Verified: true},
			{Email: "octo@example.com", Primary: true, Verified: true, Visibility: "public"},
		},
	})
}

func TestAuthorizeURL(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	res, err := e.svc.Authorize(ctx, signin.AuthorizeRequest{RedirectURI: callbackURL})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(res.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(u.Path, githubemu.AuthorizePath) {
		t.Errorf("path %q", u.Path)
	}
	q := u.Query()
	if q.Get("client_id") != e.emu.ClientID() || q.Get("redirect_uri") != callbackURL || q.Get("state") != res.State ||
		q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || len(res.State) != 43 {
		t.Errorf("authorize query %v, state %q", q, res.State)
	}
	again, err := e.svc.Authorize(ctx, signin.AuthorizeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	u2, _ := url.Parse(again.URL)
	if again.State == res.State || u2.Query().Get("code_challenge") == q.Get("code_challenge") {
		t.Error("state or challenge repeated")
	}
	if u2.Query().Has("redirect_uri") {
		t.Error("empty redirect_uri sent")
	}
	st, err := e.store.TakeOAuthState(ctx, seal.Hash(res.State), e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.RedirectURI != callbackURL || !st.ExpiresAt.Equal(e.clock.Now().Add(10*time.Minute)) ||
		strings.Contains(string(st.Verifier), "S256") || len(st.Verifier) < 43 {
		t.Errorf("stored state %+v", st)
	}
	for _, bad := range []string{"not a url", "/relative", "https://app.example.com/cb#frag"} {
		_, err := e.svc.Authorize(ctx, signin.AuthorizeRequest{RedirectURI: bad})
		wantCode(t, err, flashauth.CodeInvalidRequest)
	}
}

func TestSignInWithPKCE(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	gu := octocat(e)
	code, state := e.login(t, gu.ID, callbackURL)
	now := e.clock.Now()
	st := e.signIn(t, signin.Request{Code: code, State: state, DeviceInfo: json.RawMessage(`{"os":"linux"}`), IPAddress: "10.0.0.1", UserAgent: "cli"})

	if d := cmp.Diff(signin.User{Email: "octo@example.com", Name: "The Octocat", ImageURL: gu.AvatarURL}, st.User); d != "" {
		t.Errorf("user (-want +got):\n%s", d)
	}
	if !strings.HasPrefix(st.AccessToken, "ghu_") || !strings.HasPrefix(st.RefreshToken, "ghr_") || st.Provider != "GITHUB" {
		t.Errorf("tokens %q %q provider %q", st.AccessToken[:4], st.RefreshToken[:4], st.Provider)
	}
	if st.ExpiresAt != now.Add(githubemu.DefaultAccessTokenTTL).UnixMilli() || st.SessionExpiresAt != now.Add(30*24*time.Hour).UnixMilli() {
		t.Errorf("expiresAt %d sessionExpiresAt %d", st.ExpiresAt, st.SessionExpiresAt)
	}

	p := e.principal(t, st)
	if p.SessionID != st.TokenID || p.Email != "octo@example.com" {
		t.Errorf("principal %+v, tokenId %s", p, st.TokenID)
	}
	user, err := e.store.GetUser(ctx, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if user.GitHubID != gu.ID || user.Login != "octocat" || user.OrgID != p.OrgID {
		t.Errorf("stored user %+v", user)
	}
	org, err := e.store.GetOrganization(ctx, user.OrgID)
	if err != nil || org.Name != "acme" {
		t.Errorf("organization %+v, %v", org, err)
	}
	sess, err := e.store.GetSession(ctx, st.TokenID)
	if err != nil || sess.Provider != "GITHUB" || sess.IPAddress != "10.0.0.1" || sess.UserAgent != "cli" || string(sess.DeviceInfo) != `{"os":"linux"}` {
		t.Errorf("session %+v, %v", sess, err)
	}

	// The GitHub refresh token's lineage is this user's.
	lin, err := e.store.GetLineage(ctx, seal.Hash(st.RefreshToken))
	if err != nil {
		t.Fatalf("lineage: %v", err)
	}
	if lin.UserID != user.ID || lin.ParentHash != nil || !lin.ExpiresAt.Equal(now.Add(githubemu.DefaultRefreshTokenTTL)) {
		t.Errorf("lineage %+v", lin)
	}
	// And the flashauth session goes on with its refresh token.
	if _, err := e.sessions.Refresh(ctx, st.SessionRefreshToken); err != nil {
		t.Errorf("session refresh: %v", err)
	}
}

func TestAuthStateJSON(t *testing.T) {
	b, err := json.Marshal(signin.AuthState{User: signin.User{Email: "e", Name: "n", ImageURL: "i"},
		Token: "t", AccessToken: "a", RefreshToken: "r", ExpiresAt: 1, Provider: "GITHUB",
		SessionRefreshToken: "s", TokenID: "id", SessionExpiresAt: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"user":{"email":"e","name":"n","imageUrl":"i"},"token":"t","accessToken":"a","refreshToken":"r",` +
		`"expiresAt":1,"provider":"GITHUB","sessionRefreshToken":"s","tokenId":"id","sessionExpiresAt":2}`
	if string(b) != want {
		t.Errorf("json\n got %s\nwant %s", b, want)
	}
}

func TestSignInState(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	gu := octocat(e)

	// Reused: a second login presenting a state already spent.
	code, state := e.login(t, gu.ID, "")
	e.signIn(t, signin.Request{Code: code, State: state})
	reusedCode, _ := e.login(t, gu.ID, "")

	// Expired: approved after the state's ten minutes.
	res, err := e.svc.Authorize(ctx, signin.AuthorizeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10*time.Minute + time.Second)
	expiredCode := e.approve(t, res, gu.ID)

	unknownCode, _ := e.login(t, gu.ID, "")

	tests := []struct{ name, code, state string }{
		{"reused", reusedCode, state},
		{"expired", expiredCode, res.State},
		{"unknown", unknownCode, "never-issued-state"},
		{"malformed", unknownCode, "has spaces in it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.SignIn(ctx, signin.Request{Code: tt.code, State: tt.state})
			wantCode(t, err, flashauth.CodeInvalidState)
		})
	}
}

func TestSignInWrongStateForCode(t *testing.T) {
	e := newEnv(t, envOptions{})
	gu := octocat(e)
	code, _ := e.login(t, gu.ID, "")
	_, otherState := e.login(t, gu.ID, "")
	// Another login's state brings the wrong PKCE verifier: GitHub refuses.
	_, err := e.svc.SignIn(context.Background(), signin.Request{Code: code, State: otherState})
	wantCode(t, err, flashauth.CodeInvalidCode)
}

func TestSignInReplay(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	gu := octocat(e)
	code, state := e.login(t, gu.ID, "")

	const callers = 5
	got := make([]signin.AuthState, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { got[i], errs[i] = e.svc.SignIn(ctx, signin.Request{Code: code, State: state}) })
	}
	wg.Wait()
	// Callers are told how they got their answer, beside it.
	sameAnswer := cmpopts.IgnoreFields(signin.AuthState{}, "Replayed", "Joined")
	exchanged := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if d := cmp.Diff(got[0], got[i], sameAnswer); d != "" {
			t.Errorf("caller %d answer differs:\n%s", i, d)
		}
		if !got[i].Replayed && !got[i].Joined {
			exchanged++
		}
	}
	if exchanged != 1 {
		t.Errorf("%d callers say they exchanged the code, want 1 (the others joined or replayed)", exchanged)
	}
	e.clock.Advance(59 * time.Second)
	replay := e.signIn(t, signin.Request{Code: code, State: state})
	if d := cmp.Diff(got[0], replay, sameAnswer); d != "" || !replay.Replayed {
		t.Errorf("replay differs (replayed=%v):\n%s", replay.Replayed, d)
	}
	if n := e.emu.Calls().TokenCode; n != 1 {
		t.Errorf("%d code exchanges, want 1", n)
	}

	// After the window the code is GitHub's again, and it is spent.
	e.clock.Advance(2 * time.Second)
	_, err := e.svc.SignIn(ctx, signin.Request{Code: code})
	wantCode(t, err, flashauth.CodeInvalidCode)
	// A rejection replays too, without asking GitHub again.
	_, err = e.svc.SignIn(ctx, signin.Request{Code: code})
	wantCode(t, err, flashauth.CodeInvalidCode)
	if n := e.emu.Calls().TokenCode; n != 2 {
		t.Errorf("%d code exchanges, want 2", n)
	}
}

func TestSignInFindsUserByGitHubID(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	gu := octocat(e)
	first := e.principal(t, e.signIn(t, signin.Request{Code: e.loginWithoutState(t, gu.ID)}))

	// The account is renamed and changes its email, company and avatar.
	gu = e.emu.AddUser(githubemu.User{
		ID: gu.ID, Login: "octo-renamed", Name: "", Company: "Other Inc",
		AvatarURL: "https://avatars.example.com/u/1?v=2",
		Emails:    []githubemu.Email{{Email: "new@example.com", Primary: true, Verified: true}},
	})
	st := e.signIn(t, signin.Request{Code: e.loginWithoutState(t, gu.ID)})
	second := e.principal(t, st)
	if second.UserID != first.UserID || second.OrgID != first.OrgID || second.SessionID == first.SessionID {
		t.Fatalf("first %+v second %+v", first, second)
	}
	want := signin.User{Email: "new@example.com", Name: "octo-renamed", ImageURL: gu.AvatarURL}
	if d := cmp.Diff(want, st.User); d != "" {
		t.Errorf("user (-want +got):\n%s", d)
	}
	u, err := e.store.GetUser(ctx, first.UserID)
	if err != nil || u.Login != "octo-renamed" || u.Email != "new@example.com" || u.Name != "octo-renamed" {
		t.Errorf("stored user %+v, %v", u, err)
	}
	org, err := e.store.GetOrganization(ctx, u.OrgID)
	if err != nil || org.Name != "acme" {
		t.Errorf("organization renamed: %+v, %v", org, err)
	}
}

func TestSignInOrganizationName(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	tests := []struct{ login, company, want string }{
		{"alice", "@acme", "acme"},
		{"bob", "Acme Corp", "Acme Corp"},
		{"carol", "", "carol"},
		{"dave", " @ ", "dave"},
	}
	for _, tt := range tests {
		t.Run(tt.login, func(t *testing.T) {
			gu := e.emu.AddUser(githubemu.User{Login: tt.login, Company: tt.company})
			p := e.principal(t, e.signIn(t, signin.Request{Code: e.loginWithoutState(t, gu.ID)}))
			org, err := e.store.GetOrganization(ctx, p.OrgID)
			if err != nil || org.Name != tt.want {
				t.Errorf("organization %+v, %v; want name %q", org, err, tt.want)
			}
		})
	}
}

func TestSignInEmailNotVerified(t *testing.T) {
	for _, reject := range []bool{false, true} {
		t.Run(map[bool]string{false: "checked by flashauth", true: "refused by github"}[reject], func(t *testing.T) {
			e := newEnv(t, envOptions{emu: githubemu.Config{RejectUnverifiedEmail: reject}})
			gu := e.emu.AddUser(githubemu.User{Login: "unverified", Emails: []githubemu.Email{
				{Email: "primary@example.com", Primary: true},
				{Email: "other@example.com", Verified: true},
			}})
			code := e.loginWithoutState(t, gu.ID)
			for range 2 { // the second answer is the replay
				_, err := e.svc.SignIn(context.Background(), signin.Request{Code: code})
				wantCode(t, err, flashauth.CodeEmailNotVerified)
			}
			if n := e.emu.Calls().TokenCode; n != 1 {
				t.Errorf("%d code exchanges, want 1", n)
			}
		})
	}
}

func TestSignInClassicOAuthToken(t *testing.T) {
	expiring := false
	e := newEnv(t, envOptions{emu: githubemu.Config{ExpiringTokens: &expiring}})
	gu := octocat(e)
	st := e.signIn(t, signin.Request{Code: e.loginWithoutState(t, gu.ID)})
	if !strings.HasPrefix(st.AccessToken, "gho_") || st.RefreshToken != "" || st.ExpiresAt != 0 {
		t.Errorf("access %q refresh %q expiresAt %d", st.AccessToken[:4], st.RefreshToken, st.ExpiresAt)
	}
	e.principal(t, st)
}

func TestSignInRedirectURIMismatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	gu := octocat(e)
	ctx := context.Background()

	// Told by GitHub.
	_, err := e.svc.SignIn(ctx, signin.Request{Code: e.loginWithoutState(t, gu.ID), RedirectURI: "https://evil.example.com/cb"})
	wantCode(t, err, flashauth.CodeRedirectURIMismatch)

	// Seen by flashauth: the login was started for another redirect_uri.
	code, state := e.login(t, gu.ID, callbackURL)
	_, err = e.svc.SignIn(ctx, signin.Request{Code: code, State: state, RedirectURI: "https://evil.example.com/cb"})
	wantCode(t, err, flashauth.CodeRedirectURIMismatch)
}

func TestSignInInvalidRequest(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name string
		req  signin.Request
	}{
		{"no code", signin.Request{}},
		{"code with space", signin.Request{Code: "a b"}},
		{"code with control character", signin.Request{Code: "a\x00b"}},
		{"oversized code", signin.Request{Code: strings.Repeat("c", 4097)}},
		{"relative redirect_uri", signin.Request{Code: "c", RedirectURI: "/cb"}},
		{"deviceInfo not JSON", signin.Request{Code: "c", DeviceInfo: json.RawMessage("{")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.SignIn(context.Background(), tt.req)
			wantCode(t, err, flashauth.CodeInvalidRequest)
		})
	}
	if n := e.emu.Calls().TokenTotal; n != 0 {
		t.Errorf("%d requests reached GitHub", n)
	}
}
