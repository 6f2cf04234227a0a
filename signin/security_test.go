package signin_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/signin"
)

// heldExchange holds every code exchange until released, so a second
// sign-in with the same code arrives while the first is in flight.
type heldExchange struct {
	flashauth.GitHub
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *heldExchange) ExchangeCode(ctx context.Context, req flashauth.CodeExchange) (flashauth.GitHubToken, error) {
	h.once.Do(func() { close(h.entered) })
	<-h.release
	return h.GitHub.ExchangeCode(ctx, req)
}

// TestSignInConcurrentSameCodeOtherState: a caller presenting a code that
// is being exchanged for someone else, without that request's state, must
// not be handed its answer. Callers in one process share the exchange, so
// the binding has to be checked for them as for replays.
func TestSignInConcurrentSameCodeOtherState(t *testing.T) {
	held := &heldExchange{entered: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, envOptions{wrap: func(gh flashauth.GitHub) flashauth.GitHub {
		held.GitHub = gh
		return held
	}})
	ctx := context.Background()
	gu := octocat(e)
	code, state := e.login(t, gu.ID, "")
	_, otherState := e.login(t, gu.ID, "")

	var wg sync.WaitGroup
	var victimErr error
	wg.Go(func() { _, victimErr = e.svc.SignIn(ctx, signin.Request{Code: code, State: state}) })
	<-held.entered
	attackers := []signin.Request{
		{Code: code},
		{Code: code, State: otherState},
		{Code: code, State: state, RedirectURI: "https://evil.example.com/cb"},
		{Code: code, State: "bogus"},
	}
	errs := make([]error, len(attackers))
	var answered atomic.Int64
	for i, req := range attackers {
		wg.Go(func() {
			_, errs[i] = e.svc.SignIn(ctx, req)
			answered.Add(1)
		})
	}
	// Each attacker is refused at once or waits on the exchange in flight
	// (the victim waits in SignIn too); only then may the exchange end.
	testkit.WaitUntil(t, "every attacker answered or waiting on the exchange", func() bool {
		return int(answered.Load())+testkit.Parked("/signin.(*Service).SignIn(")-1 >= len(attackers)
	})
	close(held.release)
	wg.Wait()
	if victimErr != nil {
		t.Fatalf("victim: %v", victimErr)
	}
	for i, err := range errs {
		var fe *flashauth.Error
		if err == nil {
			t.Errorf("attacker %d got the victim's sign-in", i)
		} else if !errors.As(err, &fe) || fe.Code != flashauth.CodeInvalidState {
			t.Errorf("attacker %d: %v, want %s", i, err, flashauth.CodeInvalidState)
		}
	}
}

func TestRedirectURIAllowList(t *testing.T) {
	const evil = "https://app.example.com/auth/callback/../../open-redirect"
	e := newEnv(t, envOptions{allowedRedirectURIs: []string{callbackURL}})
	ctx := context.Background()
	gu := octocat(e)

	// An allowed redirect_uri, and none at all (GitHub's registered
	// callback), still sign in.
	code, state := e.login(t, gu.ID, callbackURL)
	e.principal(t, e.signIn(t, signin.Request{Code: code, State: state, RedirectURI: callbackURL}))
	code, state = e.login(t, gu.ID, "")
	e.principal(t, e.signIn(t, signin.Request{Code: code, State: state}))

	for _, bad := range []string{evil, "https://evil.example.com/cb", callbackURL + "/", callbackURL + "?x=1"} {
		_, err := e.svc.Authorize(ctx, signin.AuthorizeRequest{RedirectURI: bad})
		wantCode(t, err, flashauth.CodeInvalidRequest)
	}
	before := e.emu.Calls().TokenTotal
	code = e.loginWithoutState(t, gu.ID)
	_, err := e.svc.SignIn(ctx, signin.Request{Code: code, RedirectURI: evil})
	wantCode(t, err, flashauth.CodeRedirectURIMismatch)
	if n := e.emu.Calls().TokenTotal - before; n != 0 {
		t.Errorf("%d requests reached GitHub for a redirect_uri outside the list", n)
	}
	// The code was not spent.
	e.principal(t, e.signIn(t, signin.Request{Code: code}))
}

func TestRedirectURIAllowListMustHoldURLs(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, bad := range [][]string{{"/relative"}, {"https://app.example.com/cb#frag"}, {""}} {
		cfg := e.cfg
		cfg.AllowedRedirectURIs = bad
		_, err := signin.New(e.store, e.gh, e.sessions, e.ledger, cfg)
		if err == nil {
			t.Errorf("New accepted AllowedRedirectURIs %q", bad)
		}
	}
}

// anonymousUser answers GET /user without an id, as a broken or foreign
// GitHub implementation might.
type anonymousUser struct{ flashauth.GitHub }

func (a anonymousUser) User(ctx context.Context, token string) (flashauth.GitHubUser, error) {
	u, err := a.GitHub.User(ctx, token)
	u.ID = 0
	return u, err
}

// TestSignInRefusesUserWithoutID: users are keyed by GitHub id, so an id of
// 0 would fold every such account into one user.
func TestSignInRefusesUserWithoutID(t *testing.T) {
	e := newEnv(t, envOptions{wrap: func(gh flashauth.GitHub) flashauth.GitHub { return anonymousUser{gh} }})
	gu := octocat(e)
	_, err := e.svc.SignIn(context.Background(), signin.Request{Code: e.loginWithoutState(t, gu.ID)})
	wantCode(t, err, flashauth.CodeUpstreamBadResponse)
}
