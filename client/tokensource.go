package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// DefaultEarlyRefresh is how long before its expiry a GitHub access token is
// refreshed by default.
const DefaultEarlyRefresh = time.Minute

// TokenSourceOption configures GitHubTokenSource.
type TokenSourceOption func(*TokenSource)

// EarlyRefresh refreshes tokens d before they expire (default
// DefaultEarlyRefresh), so a token handed out stays valid for the request
// it is used for.
func EarlyRefresh(d time.Duration) TokenSourceOption {
	return func(s *TokenSource) {
		if d >= 0 {
			s.margin = d
		}
	}
}

// WithClock makes the source read the time from now (default time.Now).
func WithClock(now func() time.Time) TokenSourceOption {
	return func(s *TokenSource) {
		if now != nil {
			s.now = now
		}
	}
}

// WithSessionToken makes every refresh carry a flashauth access token as
// Bearer, as the server's `session` ownership policy requires: f returns it
// ("" for none). An error of f fails the refresh.
func WithSessionToken(f func(ctx context.Context) (string, error)) TokenSourceOption {
	return func(s *TokenSource) { s.bearer = f }
}

// TokenSource hands out a valid GitHub access token, refreshing it through
// flashauth before it expires. It implements oauth2.TokenSource and is safe
// for concurrent use: however many goroutines ask at once, one refresh runs
// and they all get its result.
//
// Every rotated pair is passed to the save function before any caller gets
// the new access token: GitHub refresh tokens are single-use, so a pair that
// is not persisted is lost when the process ends. If save fails, the callers
// waiting on that refresh get its error, but the source keeps the new pair
// in memory (the old one is dead) and calls save again with it before
// handing it out the next time a token is asked for.
//
// When GitHub no longer accepts the refresh token (expired, revoked, already
// used elsewhere), the error matches ErrReauthRequired and *Error
// (INVALID_REFRESH_TOKEN); the source remembers it and answers the same
// error from then on without calling flashauth again.
type TokenSource struct {
	c      *Client
	ctx    context.Context
	save   func(Token) error
	margin time.Duration
	now    func() time.Time
	bearer func(context.Context) (string, error)

	mu       sync.Mutex
	tok      Token
	unsaved  bool  // tok is a rotated pair that save has not accepted yet
	dead     error // sticky: the refresh token is dead
	inflight *flight
}

// flight is one refresh (or save retry) that callers wait for.
type flight struct {
	done chan struct{}
	tok  Token
	err  error
}

// GitHubTokenSource returns a TokenSource that starts from initial (as
// loaded from where save stores pairs) and refreshes through c. ctx is used
// for the refreshes, as oauth2.Config.TokenSource uses its context: a
// refresh runs to its end under ctx even when the caller that started it
// gives up, so a rotated pair is never dropped halfway. save may be nil when
// the caller keeps no copy (the pair then lives only in memory).
func GitHubTokenSource(ctx context.Context, c *Client, initial Token, save func(Token) error, opts ...TokenSourceOption) *TokenSource {
	if ctx == nil {
		ctx = context.Background()
	}
	s := &TokenSource{c: c, ctx: ctx, save: save, margin: DefaultEarlyRefresh, now: time.Now, tok: initial}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Token returns a valid GitHub access token as an *oauth2.Token
// (oauth2.TokenSource).
func (s *TokenSource) Token() (*oauth2.Token, error) {
	t, err := s.GitHubToken(s.ctx)
	if err != nil {
		return nil, err
	}
	return t.OAuth2(), nil
}

// GitHubToken returns a valid token pair, refreshing it first when it
// expires within the early-refresh margin. ctx bounds only this caller's
// wait; the refresh itself runs under the source's context.
func (s *TokenSource) GitHubToken(ctx context.Context) (Token, error) {
	s.mu.Lock()
	if s.dead != nil {
		err := s.dead
		s.mu.Unlock()
		return Token{}, err
	}
	if !s.unsaved && s.valid(s.tok) {
		t := s.tok
		s.mu.Unlock()
		return t, nil
	}
	f := s.inflight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		s.inflight = f
		go s.run(f, s.tok, s.unsaved)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return Token{}, ctx.Err()
	}
}

// valid reports whether t can be handed out now.
func (s *TokenSource) valid(t Token) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || s.now().Add(s.margin).Before(t.Expiry))
}

// run refreshes cur (unless it is a valid pair that only needs saving),
// saves the result and completes f. Only one run is in flight at a time, so
// pairs reach save in the order they were rotated.
func (s *TokenSource) run(f *flight, cur Token, unsaved bool) {
	next, err := cur, error(nil)
	rotated := unsaved
	if !unsaved || !s.valid(cur) {
		next, err = s.refresh(cur)
		rotated = err == nil
	}
	var saveErr error
	if rotated && s.save != nil {
		saveErr = s.save(next)
	}

	s.mu.Lock()
	switch {
	case err != nil:
		if errors.Is(err, ErrReauthRequired) {
			s.dead = err
		}
		f.err = err
	case saveErr != nil:
		s.tok, s.unsaved = next, true
		f.err = fmt.Errorf("flashauth: saving the refreshed GitHub token failed (the source keeps it and saves it again on the next call): %w", saveErr)
	default:
		s.tok, s.unsaved = next, false
		f.tok = next
	}
	s.inflight = nil
	s.mu.Unlock()
	close(f.done)
}

// refresh rotates cur's refresh token through flashauth.
func (s *TokenSource) refresh(cur Token) (Token, error) {
	if cur.RefreshToken == "" {
		return Token{}, fmt.Errorf("the GitHub access token expired and there is no refresh token: %w", ErrReauthRequired)
	}
	req := RefreshGitHubRequest{RefreshToken: cur.RefreshToken}
	if s.bearer != nil {
		b, err := s.bearer(s.ctx)
		if err != nil {
			return Token{}, fmt.Errorf("flashauth: session token for the refresh: %w", err)
		}
		req.AccessToken = b
	}
	next, err := s.c.RefreshGitHub(s.ctx, req)
	if err != nil {
		return Token{}, err
	}
	if next.RefreshToken == "" {
		// GitHub did not rotate: the presented token stays the one to use.
		next.RefreshToken = cur.RefreshToken
		next.RefreshTokenExpiry = cur.RefreshTokenExpiry
	}
	return next, nil
}

var _ oauth2.TokenSource = (*TokenSource)(nil)
