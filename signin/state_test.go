package signin_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/signin"
)

// noLedgerEntry fails unless the code has no ledger entry: nothing was
// claimed, nothing committed, nothing replays.
func (e *env) noLedgerEntry(t *testing.T, code string) {
	t.Helper()
	if _, err := e.store.GetLedger(context.Background(), flashauth.LedgerGitHubCode, seal.Hash(code)); !errors.Is(err, flashauth.ErrNotFound) {
		t.Errorf("the code has a ledger entry (err %v): it was claimed", err)
	}
}

// A request that only saw the code, with a state it made up, an expired one,
// one of a login that already completed, or the right state with another
// redirect_uri, costs nothing: no ledger entry, no call to GitHub, and the
// owner's correct request afterwards signs in.
func TestSignInWrongStateCostsNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	gu := octocat(e)

	usedCode, usedState := e.login(t, gu.ID, "")
	e.signIn(t, signin.Request{Code: usedCode, State: usedState})
	expired, err := e.svc.Authorize(ctx, signin.AuthorizeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10*time.Minute + time.Second)

	tests := []struct {
		name        string
		state       string // "" uses the login's own state
		redirectURI string
		want        string
	}{
		{"made-up state", "bogus", "", flashauth.CodeInvalidState},
		{"expired state", expired.State, "", flashauth.CodeInvalidState},
		{"state of a completed login", usedState, "", flashauth.CodeInvalidState},
		{"state bound to another redirect_uri", "", "https://app.example.com/other", flashauth.CodeRedirectURIMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, state := e.login(t, gu.ID, callbackURL)
			attack := tt.state
			if attack == "" {
				attack = state
			}
			before := e.emu.Calls().TokenTotal
			for range 2 {
				_, err := e.svc.SignIn(ctx, signin.Request{Code: code, State: attack, RedirectURI: tt.redirectURI})
				wantCode(t, err, tt.want)
			}
			if n := e.emu.Calls().TokenTotal - before; n != 0 {
				t.Errorf("%d requests reached GitHub", n)
			}
			e.noLedgerEntry(t, code)
			e.principal(t, e.signIn(t, signin.Request{Code: code, State: state, RedirectURI: callbackURL}))
		})
	}
}

// A state completes one login: a second code of the same login (the user
// approved twice) is refused without being spent.
func TestSignInStateCompletesOneLogin(t *testing.T) {
	e := newEnv(t, envOptions{})
	gu := octocat(e)
	res, err := e.svc.Authorize(context.Background(), signin.AuthorizeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, second := e.approve(t, res, gu.ID), e.approve(t, res, gu.ID)
	e.signIn(t, signin.Request{Code: first, State: res.State})
	_, err = e.svc.SignIn(context.Background(), signin.Request{Code: second, State: res.State})
	wantCode(t, err, flashauth.CodeInvalidState)
	if n := e.emu.Calls().TokenCode; n != 1 {
		t.Errorf("%d code exchanges, want 1", n)
	}
	e.noLedgerEntry(t, second)
}

// The state is used up by the sign-in, yet a retry with the same code and
// state within the replay window gets its answer, even after the state
// itself has expired.
func TestSignInReplayOutlivesState(t *testing.T) {
	e := newEnv(t, envOptions{})
	gu := octocat(e)
	res, err := e.svc.Authorize(context.Background(), signin.AuthorizeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(9*time.Minute + 50*time.Second)
	req := signin.Request{Code: e.approve(t, res, gu.ID), State: res.State}
	first := e.signIn(t, req)
	e.clock.Advance(30 * time.Second) // the state would have expired by now
	if again := e.signIn(t, req); again.TokenID != first.TokenID {
		t.Errorf("retry opened session %s, want the replay of %s", again.TokenID, first.TokenID)
	}
	// Another state does not get the replay.
	_, err = e.svc.SignIn(context.Background(), signin.Request{Code: req.Code, State: "bogus"})
	wantCode(t, err, flashauth.CodeInvalidState)
}

// A state checked when the request arrived stays good for that request even
// if it expires while GitHub is answering.
func TestSignInStateExpiresDuringExchange(t *testing.T) {
	held := &heldExchange{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, envOptions{wrap: func(gh flashauth.GitHub) flashauth.GitHub {
		held.GitHub = gh
		return held
	}})
	gu := octocat(e)
	res, err := e.svc.Authorize(context.Background(), signin.AuthorizeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10*time.Minute - time.Second)
	code := e.approve(t, res, gu.ID)
	var wg sync.WaitGroup
	var signInErr error
	wg.Go(func() {
		_, signInErr = e.svc.SignIn(context.Background(), signin.Request{Code: code, State: res.State})
	})
	<-held.entered
	e.clock.Advance(2 * time.Second)
	close(held.release)
	wg.Wait()
	if signInErr != nil {
		t.Fatalf("SignIn: %v", signInErr)
	}
}

// ?pkce=false: the URL carries a state and no challenge, and the code signs
// in with the code alone, as the Flashback TypeScript client sends it. A
// client that does send the state back has it checked.
func TestSignInWithoutPKCE(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	gu := octocat(e)
	res, err := e.svc.Authorize(ctx, signin.AuthorizeRequest{RedirectURI: callbackURL, WithoutPKCE: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(res.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("state") != res.State || len(res.State) != 43 || q.Has("code_challenge") || q.Has("code_challenge_method") {
		t.Fatalf("authorize query %v", q)
	}
	e.principal(t, e.signIn(t, signin.Request{Code: e.approve(t, res, gu.ID), DeviceInfo: []byte(`{"os":"web"}`)}))

	res, err = e.svc.Authorize(ctx, signin.AuthorizeRequest{WithoutPKCE: true})
	if err != nil {
		t.Fatal(err)
	}
	code := e.approve(t, res, gu.ID)
	_, err = e.svc.SignIn(ctx, signin.Request{Code: code, State: "bogus"})
	wantCode(t, err, flashauth.CodeInvalidState)
	e.principal(t, e.signIn(t, signin.Request{Code: code, State: res.State}))
}

// With RequirePKCE, a code without its state is refused before anything is
// spent, and the same code then signs in with its state.
func TestSignInRequirePKCE(t *testing.T) {
	e := newEnv(t, envOptions{requirePKCE: true})
	ctx := context.Background()
	gu := octocat(e)

	_, err := e.svc.Authorize(ctx, signin.AuthorizeRequest{WithoutPKCE: true})
	wantCode(t, err, flashauth.CodeInvalidRequest)

	code, state := e.login(t, gu.ID, "")
	for _, c := range []string{code, e.loginWithoutState(t, gu.ID)} {
		_, err = e.svc.SignIn(ctx, signin.Request{Code: c})
		wantCode(t, err, flashauth.CodeStateRequired)
		if msg := flashauth.ErrorMessage(err); !strings.Contains(msg, "PKCE") || !strings.Contains(msg, "/auth/github/authorize") {
			t.Errorf("message %q does not say the state of /auth/github/authorize is needed", msg)
		}
		e.noLedgerEntry(t, c)
	}
	if n := e.emu.Calls().TokenTotal; n != 0 {
		t.Errorf("%d requests reached GitHub", n)
	}
	e.principal(t, e.signIn(t, signin.Request{Code: code, State: state}))
}

// Without RequirePKCE, flashauth cannot tell a PKCE-bound code sent without
// its state from a code of a login it did not start: it exchanges it, and
// GitHub (like the emulator) refuses it for the missing verifier and spends
// it. The answer says what was probably missing. This is the limit that
// RequirePKCE removes.
func TestSignInPKCECodeWithoutStateByDefault(t *testing.T) {
	e := newEnv(t, envOptions{})
	gu := octocat(e)
	code, state := e.login(t, gu.ID, "")
	_, err := e.svc.SignIn(context.Background(), signin.Request{Code: code})
	wantCode(t, err, flashauth.CodeInvalidCode)
	if msg := flashauth.ErrorMessage(err); !strings.Contains(msg, "send its state") {
		t.Errorf("message %q gives no hint about the state", msg)
	}
	// GitHub spent it: the state cannot save it any more.
	e.clock.Advance(61 * time.Second)
	_, err = e.svc.SignIn(context.Background(), signin.Request{Code: code, State: state})
	wantCode(t, err, flashauth.CodeInvalidCode)
}
