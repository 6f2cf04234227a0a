package apptest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/githubemu"
)

// upstreamSpy sits between flashauth and the emulator and fails the test
// when a refresh token that GitHub already accepted is sent to GitHub again:
// the one thing flashauth must never do, since the second use would answer
// bad_refresh_token and lose the rotated token.
type upstreamSpy struct {
	t      testing.TB
	target http.Handler

	mu    sync.Mutex
	spent map[[32]byte]bool
}

// NewSpied is New with flashauth's token calls going through
// an upstreamSpy.
func NewSpied(t *testing.T, opts ...Option) *Harness {
	t.Helper()
	spy := &upstreamSpy{t: t, spent: make(map[[32]byte]bool)}
	var target struct {
		sync.Mutex
		h http.Handler
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target.Lock()
		h := target.h
		target.Unlock()
		spy.serve(h, w, r)
	}))
	t.Cleanup(srv.Close) // runs after the harness released hung requests
	h := New(t, append(opts, func(c *app.Config) { c.GitHubURL, c.GitHubAPIURL = srv.URL, srv.URL })...)
	target.Lock()
	target.h = h.Emu
	target.Unlock()
	return h
}

func (s *upstreamSpy) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != githubemu.TokenPath || r.Method != http.MethodPost {
		next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "spy: cannot read the body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	tok := form.Get("refresh_token")
	if form.Get("grant_type") != "refresh_token" || tok == "" {
		next.ServeHTTP(w, r)
		return
	}
	key := sha256.Sum256([]byte(tok))
	s.mu.Lock()
	again := s.spent[key]
	s.mu.Unlock()
	if again {
		s.t.Errorf("a refresh token GitHub had already accepted was sent to GitHub again")
	}
	rec := &teeWriter{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	if rec.status == http.StatusOK && bytes.Contains(rec.body.Bytes(), []byte(`"access_token"`)) {
		s.mu.Lock()
		s.spent[key] = true
		s.mu.Unlock()
	}
}

// teeWriter keeps a copy of what it passes on.
type teeWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

// Eventually polls cond until it holds, failing the test after 5 s.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// UpstreamRefreshes is how many refresh requests reached the emulator.
func (h *Harness) UpstreamRefreshes() int64 { return h.Emu.Calls().TokenRefresh }

// WantRefreshes fails the test unless want refresh requests reached the
// emulator.
func WantRefreshes(t *testing.T, h *Harness, want int64) {
	t.Helper()
	if got := h.UpstreamRefreshes(); got != want {
		t.Fatalf("upstream refreshes = %d, want %d", got, want)
	}
}

// WantRetryAfter fails the test unless r's Retry-After is want.
func WantRetryAfter(t *testing.T, r Response, want string) {
	t.Helper()
	if got := r.Header.Get("Retry-After"); got != want {
		t.Fatalf("Retry-After = %q, want %q", got, want)
	}
}

// NewToken returns the refreshToken of a successful refresh answer.
func NewToken(t *testing.T, r Response) string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	rt, _ := r.JSON(t)["refreshToken"].(string)
	return rt
}

// CheckSecurityHeaders checks the headers every answer carries.
func CheckSecurityHeaders(t *testing.T, name string, hdr http.Header, overTLS bool) {
	t.Helper()
	for k, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	} {
		if got := hdr.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", name, k, got, want)
		}
	}
	if hdr.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id", name)
	}
	if hsts := hdr.Get("Strict-Transport-Security"); (hsts != "") != overTLS {
		t.Errorf("%s: Strict-Transport-Security = %q over TLS=%v", name, hsts, overTLS)
	}
}

// WantNoStore checks that an answer carrying tokens is not cacheable.
func WantNoStore(t *testing.T, name string, r Response) {
	t.Helper()
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Errorf("%s carries tokens but Cache-Control = %q, Pragma = %q", name,
			r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
	}
}
