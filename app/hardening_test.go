package app_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/seal"
)

// The hardening tests of issue 5: abuse, upstream faults, store failure,
// slow clients, CORS, TLS and a final scan for secrets. Every one runs the
// whole flashauth (real SQLite, real GitHub client) against the emulator.

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

// newSpiedHarness is newHarness with flashauth's token calls going through
// an upstreamSpy.
func newSpiedHarness(t *testing.T, opts ...option) *harness {
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
	h := newHarness(t, append(opts, func(c *app.Config) { c.GitHubURL, c.GitHubAPIURL = srv.URL, srv.URL })...)
	target.Lock()
	target.h = h.emu
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

// eventually polls cond until it holds, failing the test after 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// upstreamRefreshes is how many refresh requests reached the emulator.
func (h *harness) upstreamRefreshes() int64 { return h.emu.Calls().TokenRefresh }

func wantUpstream(t *testing.T, h *harness, want int64) {
	t.Helper()
	if got := h.upstreamRefreshes(); got != want {
		t.Fatalf("upstream refreshes = %d, want %d", got, want)
	}
}

func wantRetryAfter(t *testing.T, r response, want string) {
	t.Helper()
	if got := r.Header.Get("Retry-After"); got != want {
		t.Fatalf("Retry-After = %q, want %q", got, want)
	}
}

// newToken returns the refreshToken of a successful refresh answer.
func newToken(t *testing.T, r response) string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	rt, _ := r.json(t)["refreshToken"].(string)
	return rt
}

// invalidRefresh is a request every limit counts but nothing beyond the
// decoder sees: an empty object answers 400.
func (h *harness) invalidRefresh(hdr ...string) response {
	h.t.Helper()
	return h.do(http.MethodPost, "/auth/github/refresh", "application/json", strings.NewReader(`{}`), hdr...)
}

func TestIPLimitTripsAndRecovers(t *testing.T) {
	// 60 a minute: one a second, bursts of burstOf(60) = 10.
	h := newHarness(t, func(c *app.Config) { c.RateIPPerMinute = 60 })
	for i := range 10 {
		if r := h.invalidRefresh(); r.Status != http.StatusBadRequest {
			t.Fatalf("request %d inside the burst: %d %s", i, r.Status, r.Body)
		}
	}
	r := h.invalidRefresh()
	wantError(t, r, http.StatusTooManyRequests, flashauth.CodeRateLimited)
	wantRetryAfter(t, r, "1")

	// The peer is not a trusted proxy: what it claims about itself changes
	// nothing.
	for _, hdr := range [][]string{
		{"X-Forwarded-For", "198.51.100.1"},
		{"Forwarded", "for=198.51.100.2"},
		{"X-Forwarded-For", "198.51.100.3", "Forwarded", "for=198.51.100.3"},
		{"X-Real-Ip", "198.51.100.4"},
	} {
		wantError(t, h.invalidRefresh(hdr...), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	}
	// Every endpoint counts; the operations probes do not.
	wantError(t, h.do(http.MethodGet, "/no/such/path", "", nil), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := h.do(http.MethodGet, p, "", nil); r.Status != http.StatusOK {
			t.Errorf("%s while rate limited: %d", p, r.Status)
		}
	}

	// One second refills one request.
	h.clock.Advance(time.Second)
	if r := h.invalidRefresh(); r.Status != http.StatusBadRequest {
		t.Fatalf("after 1s: %d %s", r.Status, r.Body)
	}
	wantError(t, h.invalidRefresh(), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	// Ten seconds refill the burst, and no more.
	h.clock.Advance(10 * time.Second)
	for i := range 10 {
		if r := h.invalidRefresh(); r.Status != http.StatusBadRequest {
			t.Fatalf("request %d of the refilled burst: %d", i, r.Status)
		}
	}
	wantError(t, h.invalidRefresh(), http.StatusTooManyRequests, flashauth.CodeRateLimited)
}

func TestIPLimitBehindTrustedProxy(t *testing.T) {
	h := newHarness(t, func(c *app.Config) {
		c.RateIPPerMinute = 60
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	exhaust := func(hdr ...string) {
		t.Helper()
		for i := range 10 {
			if r := h.invalidRefresh(hdr...); r.Status != http.StatusBadRequest {
				t.Fatalf("%v: request %d inside the burst: %d", hdr, i, r.Status)
			}
		}
		wantError(t, h.invalidRefresh(hdr...), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	}
	exhaust("X-Forwarded-For", "198.51.100.1")

	rows := []struct {
		name    string
		hdr     []string
		limited bool
	}{
		{"same client through Forwarded", []string{"Forwarded", "for=198.51.100.1;proto=https"}, true},
		{"client prepends a made-up address", []string{"X-Forwarded-For", "203.0.113.50, 198.51.100.1"}, true},
		{"client adds a made-up Forwarded", []string{"X-Forwarded-For", "198.51.100.1", "Forwarded", "for=203.0.113.51"}, false},
		{"another client, X-Forwarded-For", []string{"X-Forwarded-For", "198.51.100.2"}, false},
		{"another client, Forwarded IPv6", []string{"Forwarded", `for="[2001:db8:1:2::1]:4711"`}, false},
		{"the proxy itself", nil, false},
	}
	for _, tc := range rows {
		r := h.invalidRefresh(tc.hdr...)
		if tc.limited {
			wantError(t, r, http.StatusTooManyRequests, flashauth.CodeRateLimited)
		} else if r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want its own bucket", tc.name, r.Status)
		}
	}
	// IPv6 clients share the bucket of their /64: 9 more from another
	// address of 2001:db8:1:2::/64 use up the burst the row above began.
	for i := range 9 {
		if r := h.invalidRefresh("X-Forwarded-For", "2001:db8:1:2::99"); r.Status != http.StatusBadRequest {
			t.Fatalf("IPv6 request %d: %d", i, r.Status)
		}
	}
	wantError(t, h.invalidRefresh("X-Forwarded-For", "2001:db8:1:2::abcd"), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	if r := h.invalidRefresh("X-Forwarded-For", "2001:db8:1:3::1"); r.Status != http.StatusBadRequest {
		t.Errorf("another /64 shares the bucket: %d", r.Status)
	}
	if !strings.Contains(h.logs.String(), `"ip":"198.51.100.1"`) {
		t.Errorf("the access log does not show the forwarded client address")
	}
}

// The per-token limit stops one token from hammering GitHub while its
// attempts fail, leaves other tokens alone, and recovers. Replays of a
// committed answer (here a rejection) cost GitHub nothing and never spend
// it.
func TestTokenLimitTripsAndRecovers(t *testing.T) {
	// 6 a minute: one every 10 s, bursts of 5.
	h := newSpiedHarness(t, func(c *app.Config) { c.RateTokenPerMin = 6 })
	bad := "ghr_" + strings.Repeat("Z", 76)
	h.see(bad)
	for range 20 {
		wantError(t, h.refresh(bad), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	}
	wantUpstream(t, h, 1) // the rejection is replayed

	// GitHub failing: every retry of g is an attempt of its own.
	g := h.grant()
	h.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: http.StatusBadGateway}) // until cleared
	for range 5 {
		wantError(t, h.refresh(g.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	}
	r := h.refresh(g.RefreshToken)
	wantError(t, r, http.StatusTooManyRequests, flashauth.CodeRateLimited)
	wantRetryAfter(t, r, "10")
	wantUpstream(t, h, 6)
	h.emu.ClearFaults()
	newToken(t, h.refresh(h.grant().RefreshToken)) // another token has its own bucket
	wantError(t, h.refresh(g.RefreshToken), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	h.clock.Advance(10 * time.Second)
	newToken(t, h.refresh(g.RefreshToken))
	wantUpstream(t, h, 8)
}

func TestBreakerOpensFailsFastHalfOpensCloses(t *testing.T) {
	h := newSpiedHarness(t, func(c *app.Config) {
		c.BreakerFailures = 3
		c.BreakerCooldown = 10 * time.Second
	})
	g := h.grant()
	h.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: http.StatusBadGateway}) // until cleared
	for i := range 3 {
		wantError(t, h.refresh(g.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
		wantUpstream(t, h, int64(i+1))
	}

	// Open: fail fast, GitHub is not called, Retry-After counts down.
	r := h.refresh(g.RefreshToken)
	wantError(t, r, http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	wantRetryAfter(t, r, "10")
	h.clock.Advance(4 * time.Second)
	wantRetryAfter(t, h.refresh(g.RefreshToken), "6")
	wantUpstream(t, h, 3)

	// Half-open after the cooldown: one probe reaches GitHub; it fails, so
	// the circuit opens again for a whole cooldown.
	h.clock.Advance(6 * time.Second)
	wantError(t, h.refresh(g.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	wantUpstream(t, h, 4)
	r = h.refresh(g.RefreshToken)
	wantError(t, r, http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	wantRetryAfter(t, r, "10")
	wantUpstream(t, h, 4)

	// GitHub recovers: the next probe succeeds and closes the circuit. The
	// token survived every failure, since none of them consumed it.
	h.emu.ClearFaults()
	h.clock.Advance(10 * time.Second)
	rt := newToken(t, h.refresh(g.RefreshToken))
	wantUpstream(t, h, 5)
	newToken(t, h.refresh(rt))
	wantUpstream(t, h, 6)
}

func TestHungGitHubAnswers503(t *testing.T) {
	h := newSpiedHarness(t, func(c *app.Config) { c.UpstreamTimeout = 300 * time.Millisecond })
	g := h.grant()
	h.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultHang, Count: 1})
	r := h.refresh(g.RefreshToken)
	wantError(t, r, http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	// The request may have reached GitHub, so it was not retried.
	wantUpstream(t, h, 1)
	// Nothing was committed: once GitHub answers, the same token refreshes.
	newToken(t, h.refresh(g.RefreshToken))
	wantUpstream(t, h, 2)
}

// A client that hangs up while GitHub is working does not abort the refresh:
// the rotated token is committed and replayed to the retry.
func TestClientDisconnectMidRefreshCommits(t *testing.T) {
	h := newSpiedHarness(t)
	g := h.grant()
	h.emu.SetLatency(300 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/auth/github/refresh",
			strings.NewReader(`{"refresh_token":"`+g.RefreshToken+`"}`))
		if err != nil {
			errc <- err
			return
		}
		req.Header.Set("Content-Type", "application/json")
		r, err := send(h.srv.Client(), req)
		if err == nil {
			err = fmt.Errorf("answered %d before the client hung up", r.Status)
		}
		errc <- err
	}()
	eventually(t, "the refresh reaches GitHub", func() bool { return h.upstreamRefreshes() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context.Canceled", err)
	}
	eventually(t, "the orphaned refresh is committed", func() bool {
		e, err := h.app.Store.GetLedger(context.Background(), flashauth.LedgerGitHubRefresh, seal.Hash(g.RefreshToken))
		return err == nil && e.State == flashauth.LedgerDone
	})
	h.emu.SetLatency(0)
	rt := newToken(t, h.refresh(g.RefreshToken))
	wantUpstream(t, h, 1)
	// The replayed token is the one GitHub issued.
	newToken(t, h.refresh(rt))
	wantUpstream(t, h, 2)
}

// The store goes away under the running server: refreshes and /readyz answer
// 503, nothing half-done is left behind, and a restart on the same database
// recovers.
func TestStoreFailureMidRun(t *testing.T) {
	h := newSpiedHarness(t)
	before := h.grant()
	first := h.refresh(before.RefreshToken)
	newToken(t, first)
	g := h.grant()

	if err := h.app.Store.Close(); err != nil {
		t.Fatal(err)
	}
	r := h.refresh(g.RefreshToken)
	wantError(t, r, http.StatusServiceUnavailable, flashauth.CodeStoreUnavailable)
	wantRetryAfter(t, r, "1")
	wantError(t, h.refresh(before.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeStoreUnavailable)
	wantError(t, h.do(http.MethodGet, "/readyz", "", nil), http.StatusServiceUnavailable, flashauth.CodeStoreUnavailable)
	wantUpstream(t, h, 1) // nothing was sent to GitHub without a claim

	h.start() // a fresh process's worth of flashauth on the same database
	if r := h.do(http.MethodGet, "/readyz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz after recovery: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	if e, err := h.app.Store.GetLedger(ctx, flashauth.LedgerGitHubRefresh, seal.Hash(g.RefreshToken)); !errors.Is(err, flashauth.ErrNotFound) {
		t.Errorf("ledger entry of the failed refresh: %+v, %v; want none", e, err)
	}
	if l, err := h.app.Store.GetLineage(ctx, seal.Hash(g.RefreshToken)); !errors.Is(err, flashauth.ErrNotFound) {
		t.Errorf("lineage of the failed refresh: %+v, %v; want none", l, err)
	}
	newToken(t, h.refresh(g.RefreshToken))
	if again := h.refresh(before.RefreshToken); again.Status != http.StatusOK || !bytes.Equal(again.Body, first.Body) {
		t.Errorf("the refresh committed before the failure no longer replays: %d", again.Status)
	}
	wantUpstream(t, h, 2)
}

// The store dies while GitHub is rotating the token: the commit fails, but
// the answer is the only copy of the new token, so it is delivered rather
// than lost.
func TestStoreFailureDuringUpstreamCallDeliversToken(t *testing.T) {
	h := newSpiedHarness(t)
	g := h.grant()
	h.emu.SetLatency(300 * time.Millisecond)
	done := make(chan response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/auth/github/refresh",
			strings.NewReader(`{"refresh_token":"`+g.RefreshToken+`"}`))
		req.Header.Set("Content-Type", "application/json")
		r, _ := send(h.srv.Client(), req) // a failure is a zero response, which newToken reports
		done <- r
	}()
	eventually(t, "the refresh reaches GitHub", func() bool { return h.upstreamRefreshes() == 1 })
	if err := h.app.Store.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	h.seeJSON(r.Body)
	rt := newToken(t, r)
	if !strings.Contains(h.logs.String(), "could not be committed") {
		t.Errorf("the lost commit was not logged")
	}
	h.emu.SetLatency(0)
	h.start()
	newToken(t, h.refresh(rt))
	wantUpstream(t, h, 2)
}

// serveOnLoopback runs h's app with a real http.Server (app.Serve, with cfg's
// timeouts and TLS) on a loopback port and returns its address.
func serveOnLoopback(t *testing.T, h *harness, cfg app.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.app.Serve(ctx, ln, cfg) }()
	t.Cleanup(func() { // before the harness closes the app
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// postToken posts a refresh of token to base with client, outside the
// harness's httptest server.
func postToken(t *testing.T, h *harness, client *http.Client, base, token string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/auth/github/refresh", strings.NewReader(`{"refresh_token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	r, err := send(client, req)
	if err != nil {
		t.Fatalf("POST %s: %v", base, err)
	}
	h.seeJSON(r.Body)
	return r
}

// dripResult is how a slow client's connection ended.
type dripResult struct {
	answer   string // what the server sent before hanging up
	readErr  error  // nil (EOF) or a reset when the server hung up
	finished bool   // every slow byte was sent before that: the server waited
}

// drip connects to addr, sends head at once, then slow one byte every 25 ms,
// and reads until the server hangs up (or 10 s pass).
func drip(t *testing.T, addr, head, slow string) <-chan dripResult {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	wrote := make(chan bool, 1)
	go func() {
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(slow); i++ {
			select {
			case <-stop:
				wrote <- false
				return
			case <-tick.C:
			}
			if _, err := conn.Write([]byte{slow[i]}); err != nil {
				wrote <- false
				return
			}
		}
		wrote <- true
	}()
	out := make(chan dripResult, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn)
		close(stop)
		out <- dripResult{answer: string(b), readErr: err, finished: <-wrote}
	}()
	return out
}

// Slowloris: clients that send their headers or their body a byte at a time
// are cut off by the server's timeouts, while a normal client is served.
func TestSlowClientsCutOff(t *testing.T) {
	h := newHarness(t, func(c *app.Config) {
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.ReadTimeout = 300 * time.Millisecond
	})
	addr := serveOnLoopback(t, h, h.cfg)
	slow := strings.Repeat("a", 200) // 5 s at 25 ms a byte
	var slowHeaders, slowBodies []<-chan dripResult
	for range 4 {
		slowHeaders = append(slowHeaders, drip(t, addr,
			"GET /healthz HTTP/1.1\r\nHost: flashauth\r\nX-Slow: ", slow))
		slowBodies = append(slowBodies, drip(t, addr,
			"POST /auth/github/refresh HTTP/1.1\r\nHost: flashauth\r\nContent-Type: application/json\r\n"+
				"Content-Length: "+strconv.Itoa(len(slow))+"\r\n\r\n", slow))
	}

	// Meanwhile a normal client refreshes a chain of tokens.
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	tok := h.grant().RefreshToken
	for range 3 {
		tok = newToken(t, postToken(t, h, client, "http://"+addr, tok))
	}

	check := func(kind string, chans []<-chan dripResult) {
		t.Helper()
		for i, c := range chans {
			res := <-c
			if errors.Is(res.readErr, os.ErrDeadlineExceeded) || res.finished {
				t.Errorf("%s client %d was not cut off (read: %v, sent everything: %v)", kind, i, res.readErr, res.finished)
			}
			if strings.HasPrefix(res.answer, "HTTP/1.1 2") {
				t.Errorf("%s client %d was served: %.40q", kind, i, res.answer)
			}
		}
	}
	check("slow-header", slowHeaders)
	check("slow-body", slowBodies)
	wantUpstream(t, h, 3)
}

// checkSecurityHeaders checks the headers every answer carries.
func checkSecurityHeaders(t *testing.T, name string, hdr http.Header, overTLS bool) {
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

func wantNoStore(t *testing.T, name string, r response) {
	t.Helper()
	if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
		t.Errorf("%s carries tokens but Cache-Control = %q, Pragma = %q", name,
			r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
	}
}

func TestCORSAndSecurityHeaders(t *testing.T) {
	const allowed, other = "https://app.example.com", "https://evil.example.net"
	h := newHarness(t, func(c *app.Config) { c.CORSOrigins = []string{allowed, "https://admin.example.com"} })
	g := h.grant()
	answers := map[string]response{}

	ok := h.refresh(g.RefreshToken, "Origin", allowed)
	newToken(t, ok)
	replay := h.refresh(g.RefreshToken, "Origin", allowed)
	if replay.Status != http.StatusOK {
		t.Fatalf("replay: %d", replay.Status)
	}
	wantNoStore(t, "a refresh", ok)
	wantNoStore(t, "a replayed refresh", replay)
	answers["refresh"], answers["replay"] = ok, replay

	// The allowed origin: decorated answers, errors included, and preflights.
	answers["allowed error"] = h.invalidRefresh("Origin", allowed)
	answers["allowed preflight"] = h.do(http.MethodOptions, "/auth/github/refresh", "", nil,
		"Origin", allowed, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type, authorization")
	for _, name := range []string{"refresh", "replay", "allowed error", "allowed preflight"} {
		r := answers[name]
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("%s: Access-Control-Allow-Origin = %q, want %q", name, got, allowed)
		}
		if !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Errorf("%s: Retry-After not exposed to scripts", name)
		}
	}
	pf := answers["allowed preflight"]
	if pf.Status != http.StatusOK || !strings.Contains(pf.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(pf.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(pf.Header.Get("Access-Control-Allow-Headers"), "Content-Type") ||
		pf.Header.Get("Access-Control-Max-Age") == "" {
		t.Errorf("preflight of the allowed origin: %d %v", pf.Status, pf.Header)
	}

	// Any other origin, or none: no CORS header at all.
	answers["other refresh"] = h.invalidRefresh("Origin", other)
	answers["other preflight"] = h.do(http.MethodOptions, "/auth/github/refresh", "", nil,
		"Origin", other, "Access-Control-Request-Method", "POST")
	answers["null origin"] = h.invalidRefresh("Origin", "null")
	answers["origin suffix"] = h.invalidRefresh("Origin", allowed+".evil.example.net")
	answers["no origin"] = h.invalidRefresh()
	for _, name := range []string{"other refresh", "other preflight", "null origin", "origin suffix", "no origin"} {
		r := answers[name]
		for k := range r.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %s = %q", name, k, r.Header.Get(k))
			}
		}
		if !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("%s: no Vary: Origin; a shared cache could mix origins", name)
		}
	}
	if s := answers["other preflight"].Status; s == http.StatusOK {
		t.Errorf("preflight of another origin answered 200")
	}

	// Security headers on every answer, whatever produced it.
	answers["healthz"] = h.do(http.MethodGet, "/healthz", "", nil)
	answers["readyz"] = h.do(http.MethodGet, "/readyz", "", nil)
	answers["metrics"] = h.do(http.MethodGet, "/metrics", "", nil)
	answers["not found"] = h.do(http.MethodGet, "/nope", "", nil)
	answers["wrong method"] = h.do(http.MethodGet, "/auth/github/refresh", "", nil)
	answers["too large"] = h.do(http.MethodPost, "/auth/github/refresh", "application/json",
		strings.NewReader(`{"refresh_token":"`+strings.Repeat("a", 100<<10)+`"}`))
	for name, r := range answers {
		checkSecurityHeaders(t, name, r.Header, false)
	}
}

// writeSelfSignedCert writes a certificate for 127.0.0.1 and its key to
// files and returns them with a pool that trusts the certificate.
func writeSelfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flashauth test"},
		NotBefore:             time.Now().Add(-time.Hour), // TLS checks wall time
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestRefreshOverTLS(t *testing.T) {
	h := newHarness(t)
	certFile, keyFile, pool := writeSelfSignedCert(t)
	cfg := h.cfg
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	addr := serveOnLoopback(t, h, cfg)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	t.Cleanup(client.CloseIdleConnections)
	g := h.grant()
	r := postToken(t, h, client, "https://"+addr, g.RefreshToken)
	rt := newToken(t, r)
	if r.TLS == nil || !r.TLS.HandshakeComplete {
		t.Fatalf("answer did not come over TLS")
	}
	checkSecurityHeaders(t, "refresh over TLS", r.Header, true)
	wantNoStore(t, "refresh over TLS", r)
	newToken(t, postToken(t, h, client, "https://"+addr, rt))
	wantUpstream(t, h, 2)

	// Plain HTTP on the TLS port gets nowhere near a token.
	plain := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(plain.CloseIdleConnections)
	if resp, err := plain.Post("http://"+addr+"/auth/github/refresh", "application/json",
		strings.NewReader(`{"refresh_token":"`+rt+`"}`)); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS port answered 200")
		}
	}
	wantUpstream(t, h, 2)
}

// Patterns no log line may contain: a GitHub user or refresh token (the
// prefix followed by any token character), and anything shaped like a JWT.
var (
	githubTokenPattern = regexp.MustCompile(`gh[ur]_[A-Za-z0-9]`)
	jwtPattern         = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
)

// TestNoSecretsAfterMixedAbuse runs a bit of everything - success, replay,
// rejection, reuse, upstream failures, an open breaker, rate limits, secrets
// sent where they do not belong, sign-in and sessions - and then scans the
// combined logs by pattern, beyond the harness's scan for each secret it saw.
func TestNoSecretsAfterMixedAbuse(t *testing.T) {
	h := newSpiedHarness(t, func(c *app.Config) {
		c.UpstreamTimeout = 300 * time.Millisecond
		c.BreakerFailures = 3
		c.BreakerCooldown = 5 * time.Second
		c.RateIPPerMinute = 600 // bursts of 100
		c.RateTokenPerMin = 6   // bursts of 5
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})

	// Sign-in and sessions: JWTs and session refresh tokens go by.
	u := h.githubUser("mallory")
	l := h.signIn(t, u.ID, `{"os":"linux"}`)
	if r := h.listTokens(l.JWT); r.Status != http.StatusOK {
		t.Fatalf("GET /token: %d %s", r.Status, r.Body)
	}
	rotated := h.sessionPost(t, "/user/refresh", "refresh_token", l.SessionRT)
	if rotated.Status != http.StatusOK {
		t.Fatalf("session refresh: %d %s", rotated.Status, rotated.Body)
	}
	h.clock.Advance(11 * time.Second) // past the reuse interval
	wantError(t, h.sessionPost(t, "/user/refresh", "refreshToken", l.SessionRT), http.StatusUnauthorized, flashauth.CodeRefreshTokenReused)
	wantError(t, h.sessionPost(t, "/user/refresh", "refresh_token", strings.Repeat("A", 43)), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)

	// GitHub refresh: success with a Bearer, replay, rejection and its replays.
	tok := newToken(t, h.refresh(l.GHRefresh, "Authorization", "Bearer "+l.JWT))
	if r := h.refresh(l.GHRefresh); r.Status != http.StatusOK {
		t.Fatalf("replay: %d", r.Status)
	}
	bad := "ghr_" + strings.Repeat("Q", 76)
	h.see(bad)
	for range 6 { // the rejection, then its replays: they never trip the per-token limit
		wantError(t, h.refresh(bad), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	}

	// Secrets where they do not belong: a foreign Bearer, the token in the
	// query string, in the path, in the request id, in an unknown field.
	stray := "ghu_" + strings.Repeat("S", 36)
	h.see(stray)
	tok = newToken(t, h.refresh(tok, "Authorization", "Bearer "+stray, "X-Request-Id", stray))
	h.do(http.MethodPost, "/auth/github/refresh?refresh_token="+bad, "application/json", strings.NewReader(`{}`))
	h.do(http.MethodGet, "/auth/github/refresh/"+bad, "", nil)
	h.do(http.MethodPost, "/auth/github/refresh", "application/json",
		strings.NewReader(`{"refresh_token":"`+tok+` x","token":"`+stray+`"}`))
	h.do(http.MethodPost, "/auth/github", "application/json", strings.NewReader(`{"code":"`+stray+`"}`))

	// Upstream trouble of every kind, then an open breaker.
	for _, f := range []githubemu.Fault{
		{Kind: githubemu.FaultServerError, Status: http.StatusInternalServerError, Count: 1},
		{Kind: githubemu.FaultRateLimitHTML, RetryAfter: 30 * time.Second, Count: 1},
		{Kind: githubemu.FaultHang, Count: 1},
	} {
		h.emu.InjectFault(f)
		wantError(t, h.refresh(tok), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	}
	r := h.refresh(tok)
	wantError(t, r, http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	if r.Header.Get("Retry-After") != "5" {
		t.Errorf("breaker not open after 3 failures: Retry-After %q", r.Header.Get("Retry-After"))
	}
	h.clock.Advance(5 * time.Second)
	tok = newToken(t, h.refresh(tok)) // the probe closes it
	h.emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultTruncatedJSON, Count: 1})
	wantError(t, h.refresh(tok), http.StatusBadGateway, flashauth.CodeUpstreamBadResponse)

	// One client floods from behind the proxy until it is limited.
	limited := false
	for range 110 {
		if h.invalidRefresh("X-Forwarded-For", "198.51.100.66").Status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Errorf("the flood was never rate limited")
	}

	// Logout and revocation.
	l2 := h.signIn(t, u.ID, "")
	if r := h.do(http.MethodDelete, "/token/"+l.TokenID, "", nil, "Authorization", "Bearer "+l2.JWT); r.Status != http.StatusOK {
		t.Errorf("DELETE /token: %d %s", r.Status, r.Body)
	}
	if r := h.sessionPost(t, "/user/logout", "refresh_token", l2.SessionRT); r.Status != http.StatusOK {
		t.Errorf("logout: %d %s", r.Status, r.Body)
	}

	logs := h.logs.String()
	if !strings.Contains(logs, `"request_id"`) || strings.Count(logs, "\n") < 100 {
		t.Fatalf("the scenario logged too little to be a meaningful scan (%d lines)", strings.Count(logs, "\n"))
	}
	for _, p := range []*regexp.Regexp{githubTokenPattern, jwtPattern} {
		if m := p.FindString(logs); m != "" {
			t.Errorf("the logs contain %s... (pattern %s)", m[:4], p)
		}
	}
	if strings.Contains(logs, testClientSecret) {
		t.Errorf("the logs contain the client secret")
	}
	// The database holds hashes and sealed blobs only.
	names, _ := filepath.Glob(h.dbPath() + "*")
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []*regexp.Regexp{regexp.MustCompile(`gh[ur]_[A-Za-z0-9]{20}`), jwtPattern} {
			if p.Match(b) {
				t.Errorf("database file %s matches %s", n, p)
			}
		}
	}
}

// X-Request-Id is echoed, logged and stored in the audit table, which no
// log redactor guards: a caller's id that looks like a secret is replaced.
func TestRequestIDCannotCarrySecrets(t *testing.T) {
	h := newHarness(t)
	rows := []struct {
		id   string
		kept bool
	}{
		{"abc-123", true},
		{"9f1c2b3a-1d2e-4f5a-8b9c-0a1b2c3d4e5f", true}, // a UUID
		{strings.Repeat("0123456789abcdef", 2), true},  // 32 hex digits, nginx's $request_id
		{"ghu_" + strings.Repeat("S", 36), false},
		{"ghr_" + strings.Repeat("R", 76), false},
		{"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl", false},
		{strings.Repeat("Zm9vYmFy", 6), false}, // a long opaque run
	}
	for _, tc := range rows {
		if !tc.kept {
			h.see(tc.id)
		}
		r := h.invalidRefresh("X-Request-Id", tc.id)
		if got := r.Header.Get("X-Request-Id"); (got == tc.id) != tc.kept || got == "" {
			t.Errorf("X-Request-Id %.8q... answered as %.8q..., want kept=%v", tc.id, got, tc.kept)
		}
	}
	g := h.grant()
	stray := "ghu_" + strings.Repeat("T", 36)
	h.see(stray)
	newToken(t, h.refresh(g.RefreshToken, "X-Request-Id", stray))
	events, err := h.app.Store.ListAudit(context.Background(), 10)
	if err != nil || len(events) == 0 {
		t.Fatalf("audit events: %d, %v; want the refresh", len(events), err)
	}
	if id := events[0].RequestID; id == stray || id == "" {
		t.Errorf("audit request id = %.8q..., want a generated one", id)
	}
}
