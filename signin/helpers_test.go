package signin_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/github"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/session"
	"github.com/flashbacktech/flashauth/signin"
	"github.com/flashbacktech/flashauth/sqlite"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

const callbackURL = "https://app.example.com/auth/callback"

// env is flashauth's sign-in wired to the real GitHub client, which talks
// to the emulator over loopback HTTP.
type env struct {
	clock    *testkit.Clock
	store    *sqlite.DB
	emu      *githubemu.Emulator
	sessions *session.Service
	svc      *signin.Service
	gh       flashauth.GitHub
	ledger   *ledger.Ledger
	cfg      signin.Config
}

type envOptions struct {
	emu          githubemu.Config
	clientSecret string // overrides the emulator's, to provoke credential errors
	// wrap, when set, wraps the GitHub client (to hold or observe calls).
	wrap func(flashauth.GitHub) flashauth.GitHub
	// allowedRedirectURIs is signin.Config.AllowedRedirectURIs.
	allowedRedirectURIs []string
	// requirePKCE is signin.Config.RequirePKCE.
	requirePKCE bool
}

func newEnv(t *testing.T, opt envOptions) *env {
	t.Helper()
	clock := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	opt.emu.Clock = clock
	if opt.emu.CallbackURL == "" {
		opt.emu.CallbackURL = callbackURL
	}
	emu := githubemu.New(opt.emu)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	t.Cleanup(emu.Close)
	secret := emu.ClientSecret()
	if opt.clientSecret != "" {
		secret = opt.clientSecret
	}
	gh, err := github.New(github.Config{
		ClientID: emu.ClientID(), ClientSecret: secret,
		BaseURL: srv.URL, APIURL: srv.URL, Timeout: 5 * time.Second, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	var client flashauth.GitHub = gh
	if opt.wrap != nil {
		client = opt.wrap(gh)
	}
	store := sqlitetest.Open(t)
	l := ledger.New(store, ledger.Options{Clock: clock, PollInterval: time.Millisecond, MaxPoll: 5 * time.Millisecond})
	sessions, err := session.New(store, l, session.Config{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	cfg := signin.Config{
		ClientID:            emu.ClientID(),
		AuthorizeURL:        srv.URL + githubemu.AuthorizePath,
		AllowedRedirectURIs: opt.allowedRedirectURIs,
		RequirePKCE:         opt.requirePKCE,
		RetryBackoff:        time.Millisecond,
		Clock:               clock,
	}
	svc, err := signin.New(store, client, sessions, l, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{clock: clock, store: store, emu: emu, sessions: sessions, svc: svc, gh: client, ledger: l, cfg: cfg}
}

// login starts a login with Authorize and approves it on the emulator as
// the GitHub user userID would, returning the code and the state.
func (e *env) login(t *testing.T, userID int64, redirectURI string) (code, state string) {
	t.Helper()
	res, err := e.svc.Authorize(context.Background(), signin.AuthorizeRequest{RedirectURI: redirectURI})
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	return e.approve(t, res, userID), res.State
}

func (e *env) approve(t *testing.T, res signin.AuthorizeResult, userID int64) string {
	t.Helper()
	code, err := e.emu.CompleteLoginURL(res.URL, userID)
	if err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	return code
}

// loginWithoutState gets a code the way clients that talk to GitHub
// themselves do: no state and no PKCE known to flashauth.
func (e *env) loginWithoutState(t *testing.T, userID int64) string {
	t.Helper()
	code, err := e.emu.CompleteLogin(githubemu.LoginParams{ClientID: e.emu.ClientID(), UserID: userID})
	if err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	return code
}

func (e *env) signIn(t *testing.T, req signin.Request) signin.AuthState {
	t.Helper()
	st, err := e.svc.SignIn(context.Background(), req)
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	return st
}

// principal authenticates the access token of st.
func (e *env) principal(t *testing.T, st signin.AuthState) session.Principal {
	t.Helper()
	p, err := e.sessions.Authenticate(context.Background(), st.Token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return p
}

// wantCode fails unless err is a *flashauth.Error with code.
var wantCode = testkit.WantCode
