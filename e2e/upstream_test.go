package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
)

const (
	clientID     = "Iv1.e2eclient"
	clientSecret = "e2e-client-secret-0123456789abcdef"
)

// upstream is the GitHub the replicas talk to: the emulator, served over
// loopback, behind a recorder that notes when each refresh token arrives (so
// a test can count refreshes per token, not just in total) and that can
// lose GitHub's answer after GitHub acted on the request.
type upstream struct {
	emu *githubemu.Emulator
	URL string

	mu       sync.Mutex
	arrivals map[[32]byte][]time.Time // SHA-256 of a presented refresh token
	holds    int                      // answers still to be held back
	released chan struct{}
}

func newUpstream(tb testing.TB) *upstream {
	tb.Helper()
	u := &upstream{
		emu:      githubemu.New(githubemu.Config{ClientID: clientID, ClientSecret: clientSecret}),
		arrivals: map[[32]byte][]time.Time{},
		released: make(chan struct{}),
	}
	srv := httptest.NewServer(u)
	u.URL = srv.URL
	tb.Cleanup(func() {
		close(u.released)
		u.emu.Close() // release hung requests first, or srv.Close waits for them
		srv.Close()
	})
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != githubemu.TokenPath {
		u.emu.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	if form.Get("grant_type") != "refresh_token" {
		u.emu.ServeHTTP(w, r)
		return
	}
	u.mu.Lock()
	key := sha256.Sum256([]byte(form.Get("refresh_token")))
	u.arrivals[key] = append(u.arrivals[key], time.Now())
	hold := u.holds > 0
	if hold {
		u.holds--
	}
	u.mu.Unlock()
	if !hold {
		u.emu.ServeHTTP(w, r)
		return
	}
	// GitHub acts on the request (the token rotates), then its answer never
	// leaves: the caller sees nothing until it gives up or dies. The caller
	// may die at any moment now; GitHub finishes what it started.
	u.emu.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.WithoutCancel(r.Context())))
	select {
	case <-r.Context().Done():
	case <-u.released:
	}
}

// holdNextAnswer makes GitHub act on the next refresh but never answer it.
func (u *upstream) holdNextAnswer() {
	u.mu.Lock()
	u.holds++
	u.mu.Unlock()
}

// refreshesOf returns when each refresh of token reached GitHub.
func (u *upstream) refreshesOf(token string) []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.arrivals[sha256.Sum256([]byte(token))]...)
}

// waitRefreshes waits until n refreshes of token have reached GitHub.
func (u *upstream) waitRefreshes(tb testing.TB, token string, n int, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for len(u.refreshesOf(token)) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d refreshes of the token reached GitHub within %s, want %d", len(u.refreshesOf(token)), timeout, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// grant mints a token pair for a fresh user and returns its refresh token.
func (u *upstream) grant(tb testing.TB) string {
	tb.Helper()
	usr := u.emu.AddUser(githubemu.User{Login: "e2e"})
	g, err := u.emu.MintGrant(usr.ID)
	if err != nil {
		tb.Fatalf("MintGrant: %v", err)
	}
	return g.RefreshToken
}
