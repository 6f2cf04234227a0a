package client_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/flashbacktech/flashauth/client"
)

// saver records every pair the source hands to save, in order, and can be
// told to fail.
type saver struct {
	mu    sync.Mutex
	saved []client.Token
	fail  error
}

func (s *saver) save(t client.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saved = append(s.saved, t)
	return s.fail
}

func (s *saver) list() []client.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]client.Token(nil), s.saved...)
}

// Many goroutines asking an expired source at once cause one request to
// flashauth and one refresh at GitHub; all get its token, which was saved once, before any got it.
func TestTokenSourceRefreshesOnceUnderConcurrency(t *testing.T) {
	s := newServer(t)
	initial := s.grant(t, "octo")
	initial.Expiry = s.clock.Now().Add(-time.Second)
	var sv saver
	ts := client.GitHubTokenSource(context.Background(), s.c, initial, sv.save, client.WithClock(s.clock.Now))
	// A slow GitHub keeps the refresh in flight while the callers pile up.
	s.emu.SetLatency(50 * time.Millisecond)
	s.emu.ResetCalls()

	const n = 64
	got := make([]*oauth2.Token, n)
	errs := make([]error, n)
	savedWhenGot := make([]int, n)
	var wg sync.WaitGroup
	gun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gun
			got[i], errs[i] = ts.Token()
			savedWhenGot[i] = len(sv.list())
		}()
	}
	close(gun)
	wg.Wait()

	// flashauth would coalesce concurrent refreshes itself: the source's
	// own single flight shows in the requests flashauth received.
	if c := s.requests("/auth/github/refresh"); c != 1 {
		t.Fatalf("flashauth received %d refreshes for %d concurrent callers, want 1", c, n)
	}
	if c := s.emu.Calls().TokenRefresh; c != 1 {
		t.Fatalf("GitHub saw %d refreshes, want 1", c)
	}
	saved := sv.list()
	if len(saved) != 1 {
		t.Fatalf("save called %d times, want 1", len(saved))
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if got[i].AccessToken != saved[0].AccessToken || got[i].AccessToken == initial.AccessToken || savedWhenGot[i] != 1 {
			t.Fatalf("caller %d got a token other than the saved one, or before it was saved", i)
		}
	}
	if !got[0].Expiry.Equal(saved[0].Expiry) || got[0].RefreshToken != saved[0].RefreshToken {
		t.Errorf("the oauth2 token is not the saved pair or not valid")
	}
}

// Each expiry causes one rotation; save sees every pair in order, each
// rotated from the one before, and a valid token is served without a call.
func TestTokenSourceSavesEveryRotationInOrder(t *testing.T) {
	s := newServer(t)
	initial := s.grant(t, "octo")
	var sv saver
	ts := client.GitHubTokenSource(context.Background(), s.c, initial, sv.save, client.WithClock(s.clock.Now))
	s.emu.ResetCalls()

	var handed []client.Token
	for i := range 3 {
		tok, err := ts.GitHubToken(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := ts.GitHubToken(context.Background()); again != tok {
			t.Fatalf("round %d: a valid token was not served as is", i)
		}
		handed = append(handed, tok)
		s.clock.Advance(githubAccessTTL) // the token expires
	}
	if handed[0] != initial {
		t.Fatalf("the initial, valid token was refreshed")
	}
	saved := sv.list()
	if len(saved) != 2 || saved[0] != handed[1] || saved[1] != handed[2] {
		t.Fatalf("saved %d pairs, want the 2 rotated ones in the order handed out", len(saved))
	}
	prev := initial
	for i, p := range saved {
		if p.RefreshToken == prev.RefreshToken || p.AccessToken == prev.AccessToken {
			t.Errorf("rotation %d did not rotate", i)
		}
		prev = p
	}
	if c := s.emu.Calls().TokenRefresh; c != 2 {
		t.Errorf("GitHub saw %d refreshes, want 2", c)
	}
}

// EarlyRefresh decides how close to its expiry a token is refreshed.
func TestTokenSourceEarlyRefresh(t *testing.T) {
	for _, tc := range []struct {
		margin  time.Duration
		refresh bool
	}{{10 * time.Second, false}, {time.Minute, true}, {2 * time.Minute, true}} {
		s := newServer(t)
		initial := s.grant(t, "octo")
		initial.Expiry = s.clock.Now().Add(30 * time.Second)
		ts := client.GitHubTokenSource(context.Background(), s.c, initial, nil, client.WithClock(s.clock.Now), client.EarlyRefresh(tc.margin))
		tok, err := ts.GitHubToken(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if refreshed := tok.AccessToken != initial.AccessToken; refreshed != tc.refresh {
			t.Errorf("margin %v, 30s left: refreshed=%v, want %v", tc.margin, refreshed, tc.refresh)
		}
	}
}

// A dead refresh token is a typed error (ErrReauthRequired and *Error
// INVALID_REFRESH_TOKEN), remembered without asking again; nothing is saved.
func TestTokenSourceDeadRefreshToken(t *testing.T) {
	s := newServer(t)
	initial := s.grant(t, "octo")
	s.emu.RevokeGrant(initial.RefreshToken)
	initial.Expiry = s.clock.Now().Add(-time.Second)
	var sv saver
	ts := client.GitHubTokenSource(context.Background(), s.c, initial, sv.save, client.WithClock(s.clock.Now))
	s.emu.ResetCalls()

	for i := range 3 {
		_, err := ts.Token()
		if !errors.Is(err, client.ErrReauthRequired) || !client.IsReauthRequired(err) {
			t.Fatalf("call %d: %v does not match ErrReauthRequired", i, err)
		}
		if e := asError(t, err); e.Code != client.CodeInvalidRefreshToken || e.Status != http.StatusUnauthorized {
			t.Fatalf("call %d: %+v", i, e)
		}
	}
	if c := s.emu.Calls().TokenRefresh; c != 1 {
		t.Errorf("GitHub saw %d refreshes of a dead token, want 1", c)
	}
	if len(sv.list()) != 0 {
		t.Errorf("a failed refresh was saved")
	}

	// Without a refresh token, an expired token is a reauth at once.
	bare := client.GitHubTokenSource(context.Background(), s.c, client.Token{AccessToken: "ghu_x", Expiry: s.clock.Now()}, nil, client.WithClock(s.clock.Now))
	if _, err := bare.Token(); !errors.Is(err, client.ErrReauthRequired) {
		t.Errorf("no refresh token: %v", err)
	}
	if c := s.emu.Calls().TokenRefresh; c != 1 {
		t.Errorf("a source without refresh token called GitHub")
	}
}

// A transient failure is not remembered: the next call refreshes again.
func TestTokenSourceTransientFailureIsRetried(t *testing.T) {
	s := newServer(t)
	initial := s.grant(t, "octo")
	initial.Expiry = s.clock.Now()
	ts := client.GitHubTokenSource(context.Background(), s.c, initial, nil, client.WithClock(s.clock.Now))
	s.emu.InjectFault(githubFault503())
	_, err := ts.Token()
	if !client.IsRetryable(err) || client.IsReauthRequired(err) {
		t.Fatalf("GitHub down: %v", err)
	}
	s.emu.ClearFaults()
	if tok, err := ts.Token(); err != nil || tok.AccessToken == initial.AccessToken {
		t.Fatalf("after GitHub came back: %v", err)
	}
}

// When save fails, the callers get its error, the new pair is kept (not
// refreshed again) and saved again before it is handed out.
func TestTokenSourceSaveFailureKeepsThePair(t *testing.T) {
	s := newServer(t)
	initial := s.grant(t, "octo")
	initial.Expiry = s.clock.Now()
	diskFull := errors.New("disk full")
	sv := saver{fail: diskFull}
	ts := client.GitHubTokenSource(context.Background(), s.c, initial, sv.save, client.WithClock(s.clock.Now))
	s.emu.ResetCalls()

	if _, err := ts.Token(); !errors.Is(err, diskFull) {
		t.Fatalf("save failed, Token answered %v", err)
	}
	sv.mu.Lock()
	sv.fail = nil
	sv.mu.Unlock()
	tok, err := ts.GitHubToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := sv.list()
	if len(saved) != 2 || saved[0] != saved[1] || saved[1] != tok || tok.AccessToken == initial.AccessToken {
		t.Fatalf("want the same new pair offered to save twice and then handed out; saved %d", len(saved))
	}
	if c := s.emu.Calls().TokenRefresh; c != 1 {
		t.Errorf("GitHub saw %d refreshes, want 1: the unsaved pair must not be refreshed again", c)
	}
	if _, err := ts.GitHubToken(context.Background()); err != nil || len(sv.list()) != 2 {
		t.Errorf("a saved valid pair was saved again: %v", err)
	}
}

// A caller that gives up waiting does not cancel the refresh: the pair is
// still saved, and the next caller gets it without a second refresh.
func TestTokenSourceCallerGivesUp(t *testing.T) {
	s := newServer(t)
	initial := s.grant(t, "octo")
	initial.Expiry = s.clock.Now()
	var sv saver
	ts := client.GitHubTokenSource(context.Background(), s.c, initial, sv.save, client.WithClock(s.clock.Now))
	s.emu.ResetCalls()
	s.emu.SetLatency(100 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ts.GitHubToken(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller: %v", err)
	}
	tok, err := ts.GitHubToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if saved := sv.list(); len(saved) != 1 || saved[0] != tok || s.emu.Calls().TokenRefresh != 1 {
		t.Fatalf("saved %d, refreshes %d: want the one refresh's pair", len(saved), s.emu.Calls().TokenRefresh)
	}
}

// The source drives an oauth2 HTTP client: an expired token is refreshed
// before the request, which GitHub's API accepts.
func TestTokenSourceWithOAuth2Client(t *testing.T) {
	s := newServer(t)
	initial := s.grant(t, "octo")
	initial.Expiry = s.clock.Now()
	ts := client.GitHubTokenSource(context.Background(), s.c, initial, nil, client.WithClock(s.clock.Now))
	hc := oauth2.NewClient(context.Background(), ts)
	req, _ := http.NewRequest(http.MethodGet, githubBase(s)+"/user", nil)
	req.Header.Set("User-Agent", "sdk-test")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.emu.Calls().TokenRefresh != 1 {
		t.Fatalf("GET /user through oauth2: %d, refreshes %d", resp.StatusCode, s.emu.Calls().TokenRefresh)
	}
}

// WithSessionToken sends the flashauth access token, which the `session`
// policy requires.
func TestTokenSourceSessionPolicy(t *testing.T) {
	s := newServer(t, func(c *appConfig) { c.RefreshAuth = "session" })
	res := s.signIn(t, s.user("octo").ID, "")
	initial := res.GitHub
	initial.Expiry = s.clock.Now()

	without := client.GitHubTokenSource(context.Background(), s.c, initial, nil, client.WithClock(s.clock.Now))
	if _, err := without.Token(); client.Code(err) != client.CodeAuthRequired {
		t.Fatalf("session policy without a Bearer: %v", err)
	}
	with := client.GitHubTokenSource(context.Background(), s.c, initial, nil, client.WithClock(s.clock.Now),
		client.WithSessionToken(func(context.Context) (string, error) { return res.Session.AccessToken, nil }))
	if _, err := with.Token(); err != nil {
		t.Fatalf("session policy with the Bearer: %v", err)
	}
}
