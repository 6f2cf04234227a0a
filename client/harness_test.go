package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/client"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/logging"
)

const (
	testClientID     = "Iv1.sdkclient"
	testClientSecret = "sdk-client-secret-0123456789abcdef"
	testRedirect     = "http://127.0.0.1:1/callback"
)

// server is a whole flashauth (real SQLite in a temporary directory, the
// real GitHub client) in front of the emulator, sharing one clock, and a
// client for it.
type server struct {
	clock *testkit.Clock
	emu   *githubemu.Emulator
	srv   *httptest.Server
	c     *client.Client
	logs  *testkit.SyncBuffer

	mu      sync.Mutex
	queries map[string][]string // raw query of every request, by path
}

func newServer(t testing.TB, opts ...func(*app.Config)) *server {
	t.Helper()
	s := &server{clock: testkit.NewClock(time.UnixMilli(1764120000000)), logs: &testkit.SyncBuffer{}, queries: map[string][]string{}}
	// Registered first, so it runs last, once flashauth has stopped: what
	// the SDK's calls made flashauth log holds no token.
	t.Cleanup(func() { testkit.NoTokenShaped(t, "flashauth's logs", s.logs.String()) })
	s.emu = githubemu.New(githubemu.Config{ClientID: testClientID, ClientSecret: testClientSecret, Clock: s.clock})
	emuSrv := httptest.NewServer(s.emu)
	t.Cleanup(func() { s.emu.Close(); emuSrv.Close() })
	cfg := app.Config{
		DatabaseURL:      "sqlite:" + filepath.Join(t.TempDir(), "flashauth.db"),
		ClientID:         testClientID,
		ClientSecret:     testClientSecret,
		GitHubURL:        emuSrv.URL,
		GitHubAPIURL:     emuSrv.URL,
		ReplayWindow:     60 * time.Second,
		UpstreamTimeout:  2 * time.Second,
		RefreshAuth:      "compat",
		BreakerFailures:  1000,
		BreakerCooldown:  time.Second,
		ShutdownTimeout:  5 * time.Second,
		SessionAccessTTL: time.Hour,
		SessionTTL:       30 * 24 * time.Hour,
		ReuseInterval:    10 * time.Second,
		KeyRotation:      30 * 24 * time.Hour,
		SecretKey:        []byte(strings.Repeat("k", 32)),
		Version:          "test",
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := app.New(context.Background(), cfg, logging.New(s.logs, "json", 0), s.clock)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	// The recorder shows what the SDK put on the wire.
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.queries[r.URL.Path] = append(s.queries[r.URL.Path], r.URL.RawQuery)
		s.mu.Unlock()
		a.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { s.srv.Close(); a.Close() })
	s.c, err = client.New(s.srv.URL, client.WithHTTPClient(s.srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// user adds a GitHub user with a verified primary email.
func (s *server) user(login string) githubemu.User {
	return s.emu.AddUser(githubemu.User{Login: login, Name: "The " + login,
		Emails: []githubemu.Email{{Email: login + "@example.com", Primary: true, Verified: true}}})
}

// grant mints a GitHub token pair for a new user login.
func (s *server) grant(t testing.TB, login string) client.Token {
	t.Helper()
	g, err := s.emu.MintGrant(s.user(login).ID)
	if err != nil {
		t.Fatal(err)
	}
	return client.Token{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken, TokenType: "bearer",
		Expiry: s.clock.Now().Add(g.ExpiresIn), RefreshTokenExpiry: s.clock.Now().Add(g.RefreshTokenExpiresIn)}
}

// signIn runs a whole sign-in through the SDK for the GitHub user id, the
// approval done at the emulator.
func (s *server) signIn(t testing.TB, id int64, deviceInfo string) client.SignInResult {
	t.Helper()
	ctx := context.Background()
	az, err := s.c.Authorize(ctx, client.AuthorizeRequest{RedirectURI: testRedirect})
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	code := s.approve(t, az.URL, id)
	res, err := s.c.SignIn(ctx, client.SignInRequest{Code: code, State: az.State, RedirectURI: testRedirect, DeviceInfo: []byte(deviceInfo)})
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	return res
}

// approve completes the login the authorize URL raw starts, as the GitHub
// user id, and returns the code.
func (s *server) approve(t testing.TB, raw string, id int64) string {
	t.Helper()
	code, err := s.emu.CompleteLoginURL(raw, id)
	if err != nil {
		t.Fatalf("CompleteLogin: %v", err)
	}
	return code
}

// lastQuery is the raw query of the last request to path.
func (s *server) lastQuery(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queries[path]
	if len(q) == 0 {
		return ""
	}
	return q[len(q)-1]
}

type appConfig = app.Config

func githubFault503() githubemu.Fault {
	return githubemu.Fault{Kind: githubemu.FaultServerError, Status: http.StatusServiceUnavailable}
}

// requests counts the requests flashauth received on path.
func (s *server) requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queries[path])
}
