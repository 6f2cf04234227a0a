package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/seal"
)

// The hardening tests of issue 5: abuse, upstream faults, store failure,
// slow clients, CORS, TLS and a final scan for secrets. Every one runs the
// whole flashauth (real SQLite, real GitHub client) against the emulator.

// invalidRefresh is a request every limit counts but nothing beyond the
// decoder sees: an empty object answers 400.
func invalidRefresh(h *apptest.Harness, hdr ...string) apptest.Response {
	h.T.Helper()
	return h.Do(http.MethodPost, "/auth/github/refresh", "application/json", strings.NewReader(`{}`), hdr...)
}

func TestIPLimitTripsAndRecovers(t *testing.T) {
	// 60 a minute: one a second, bursts of burstOf(60) = 10.
	h := apptest.New(t, func(c *app.Config) { c.RateIPPerMinute = 60 })
	for i := range 10 {
		if r := invalidRefresh(h); r.Status != http.StatusBadRequest {
			t.Fatalf("request %d inside the burst: %d %s", i, r.Status, r.Body)
		}
	}
	r := invalidRefresh(h)
	apptest.WantError(t, r, http.StatusTooManyRequests, flashauth.CodeRateLimited)
	apptest.WantRetryAfter(t, r, "1")

	// The peer is not a trusted proxy: what it claims about itself changes
	// nothing.
	for _, hdr := range [][]string{
		{"X-Forwarded-For", "198.51.100.1"},
		{"Forwarded", "for=198.51.100.2"},
		{"X-Forwarded-For", "198.51.100.3", "Forwarded", "for=198.51.100.3"},
		{"X-Real-Ip", "198.51.100.4"},
	} {
		apptest.WantError(t, invalidRefresh(h, hdr...), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	}
	// Every endpoint counts; the operations probes do not.
	apptest.WantError(t, h.Do(http.MethodGet, "/no/such/path", "", nil), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := h.Do(http.MethodGet, p, "", nil); r.Status != http.StatusOK {
			t.Errorf("%s while rate limited: %d", p, r.Status)
		}
	}

	// One second refills one request.
	h.Clock.Advance(time.Second)
	if r := invalidRefresh(h); r.Status != http.StatusBadRequest {
		t.Fatalf("after 1s: %d %s", r.Status, r.Body)
	}
	apptest.WantError(t, invalidRefresh(h), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	// Ten seconds refill the burst, and no more.
	h.Clock.Advance(10 * time.Second)
	for i := range 10 {
		if r := invalidRefresh(h); r.Status != http.StatusBadRequest {
			t.Fatalf("request %d of the refilled burst: %d", i, r.Status)
		}
	}
	apptest.WantError(t, invalidRefresh(h), http.StatusTooManyRequests, flashauth.CodeRateLimited)
}

func TestIPLimitBehindTrustedProxy(t *testing.T) {
	h := apptest.New(t, func(c *app.Config) {
		c.RateIPPerMinute = 60
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	exhaust := func(hdr ...string) {
		t.Helper()
		for i := range 10 {
			if r := invalidRefresh(h, hdr...); r.Status != http.StatusBadRequest {
				t.Fatalf("%v: request %d inside the burst: %d", hdr, i, r.Status)
			}
		}
		apptest.WantError(t, invalidRefresh(h, hdr...), http.StatusTooManyRequests, flashauth.CodeRateLimited)
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
		r := invalidRefresh(h, tc.hdr...)
		if tc.limited {
			apptest.WantError(t, r, http.StatusTooManyRequests, flashauth.CodeRateLimited)
		} else if r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want its own bucket", tc.name, r.Status)
		}
	}
	// IPv6 clients share the bucket of their /64: 9 more from another
	// address of 2001:db8:1:2::/64 use up the burst the row above began.
	for i := range 9 {
		if r := invalidRefresh(h, "X-Forwarded-For", "2001:db8:1:2::99"); r.Status != http.StatusBadRequest {
			t.Fatalf("IPv6 request %d: %d", i, r.Status)
		}
	}
	apptest.WantError(t, invalidRefresh(h, "X-Forwarded-For", "2001:db8:1:2::abcd"), http.StatusTooManyRequests, flashauth.CodeRateLimited)
	if r := invalidRefresh(h, "X-Forwarded-For", "2001:db8:1:3::1"); r.Status != http.StatusBadRequest {
		t.Errorf("another /64 shares the bucket: %d", r.Status)
	}
	if !strings.Contains(h.Logs.String(), `"ip":"198.51.100.1"`) {
		t.Errorf("the access log does not show the forwarded client address")
	}
}

func TestHungGitHubAnswers503(t *testing.T) {
	h := apptest.NewSpied(t, func(c *app.Config) { c.UpstreamTimeout = 300 * time.Millisecond })
	g := h.Grant()
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultHang, Count: 1})
	r := h.Refresh(g.RefreshToken)
	apptest.WantError(t, r, http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	// The request may have reached GitHub, so it was not retried.
	apptest.WantRefreshes(t, h, 1)
	// Nothing was committed: once GitHub answers, the same token refreshes.
	apptest.NewToken(t, h.Refresh(g.RefreshToken))
	apptest.WantRefreshes(t, h, 2)
}

// A client that hangs up while GitHub is working does not abort the refresh:
// the rotated token is committed and replayed to the retry.
func TestClientDisconnectMidRefreshCommits(t *testing.T) {
	h := apptest.NewSpied(t)
	g := h.Grant()
	h.Emu.SetLatency(300 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.Srv.URL+"/auth/github/refresh",
			strings.NewReader(`{"refresh_token":"`+g.RefreshToken+`"}`))
		if err != nil {
			errc <- err
			return
		}
		req.Header.Set("Content-Type", "application/json")
		r, err := apptest.Send(h.Srv.Client(), req)
		if err == nil {
			err = fmt.Errorf("answered %d before the client hung up", r.Status)
		}
		errc <- err
	}()
	apptest.Eventually(t, "the refresh reaches GitHub", func() bool { return h.UpstreamRefreshes() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want context.Canceled", err)
	}
	apptest.Eventually(t, "the orphaned refresh is committed", func() bool {
		e, err := h.App.Store.GetLedger(context.Background(), flashauth.LedgerGitHubRefresh, seal.Hash(g.RefreshToken))
		return err == nil && e.State == flashauth.LedgerDone
	})
	h.Emu.SetLatency(0)
	rt := apptest.NewToken(t, h.Refresh(g.RefreshToken))
	apptest.WantRefreshes(t, h, 1)
	// The replayed token is the one GitHub issued.
	apptest.NewToken(t, h.Refresh(rt))
	apptest.WantRefreshes(t, h, 2)
}

// The store goes away under the running server: refreshes and /readyz answer
// 503, nothing half-done is left behind, and a restart on the same database
// recovers.
func TestStoreFailureMidRun(t *testing.T) {
	h := apptest.NewSpied(t)
	before := h.Grant()
	first := h.Refresh(before.RefreshToken)
	apptest.NewToken(t, first)
	g := h.Grant()

	if err := h.App.Store.Close(); err != nil {
		t.Fatal(err)
	}
	r := h.Refresh(g.RefreshToken)
	apptest.WantError(t, r, http.StatusServiceUnavailable, flashauth.CodeStoreUnavailable)
	apptest.WantRetryAfter(t, r, "1")
	apptest.WantError(t, h.Refresh(before.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeStoreUnavailable)
	apptest.WantError(t, h.Do(http.MethodGet, "/readyz", "", nil), http.StatusServiceUnavailable, flashauth.CodeStoreUnavailable)
	apptest.WantRefreshes(t, h, 1) // nothing was sent to GitHub without a claim

	h.Start() // a fresh process's worth of flashauth on the same database
	if r := h.Do(http.MethodGet, "/readyz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz after recovery: %d %s", r.Status, r.Body)
	}
	ctx := context.Background()
	if e, err := h.App.Store.GetLedger(ctx, flashauth.LedgerGitHubRefresh, seal.Hash(g.RefreshToken)); !errors.Is(err, flashauth.ErrNotFound) {
		t.Errorf("ledger entry of the failed refresh: %+v, %v; want none", e, err)
	}
	if l, err := h.App.Store.GetLineage(ctx, seal.Hash(g.RefreshToken)); !errors.Is(err, flashauth.ErrNotFound) {
		t.Errorf("lineage of the failed refresh: %+v, %v; want none", l, err)
	}
	apptest.NewToken(t, h.Refresh(g.RefreshToken))
	if again := h.Refresh(before.RefreshToken); again.Status != http.StatusOK || !bytes.Equal(again.Body, first.Body) {
		t.Errorf("the refresh committed before the failure no longer replays: %d", again.Status)
	}
	apptest.WantRefreshes(t, h, 2)
}

// The store dies while GitHub is rotating the token: the commit fails, but
// the answer is the only copy of the new token, so it is delivered rather
// than lost.
func TestStoreFailureDuringUpstreamCallDeliversToken(t *testing.T) {
	h := apptest.NewSpied(t)
	g := h.Grant()
	h.Emu.SetLatency(300 * time.Millisecond)
	done := make(chan apptest.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, h.Srv.URL+"/auth/github/refresh",
			strings.NewReader(`{"refresh_token":"`+g.RefreshToken+`"}`))
		req.Header.Set("Content-Type", "application/json")
		r, _ := apptest.Send(h.Srv.Client(), req) // a failure is a zero response, which newToken reports
		done <- r
	}()
	apptest.Eventually(t, "the refresh reaches GitHub", func() bool { return h.UpstreamRefreshes() == 1 })
	if err := h.App.Store.Close(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	h.SeeJSON(r.Body)
	rt := apptest.NewToken(t, r)
	if !strings.Contains(h.Logs.String(), "could not be committed") {
		t.Errorf("the lost commit was not logged")
	}
	h.Emu.SetLatency(0)
	h.Start()
	apptest.NewToken(t, h.Refresh(rt))
	apptest.WantRefreshes(t, h, 2)
}

func TestCORSAndSecurityHeaders(t *testing.T) {
	const allowed, other = "https://app.example.com", "https://evil.example.net"
	h := apptest.New(t, func(c *app.Config) { c.CORSOrigins = []string{allowed, "https://admin.example.com"} })
	g := h.Grant()
	answers := map[string]apptest.Response{}

	ok := h.Refresh(g.RefreshToken, "Origin", allowed)
	apptest.NewToken(t, ok)
	replay := h.Refresh(g.RefreshToken, "Origin", allowed)
	if replay.Status != http.StatusOK {
		t.Fatalf("replay: %d", replay.Status)
	}
	apptest.WantNoStore(t, "a refresh", ok)
	apptest.WantNoStore(t, "a replayed refresh", replay)
	answers["refresh"], answers["replay"] = ok, replay

	// The allowed origin: decorated answers, errors included, and preflights.
	answers["allowed error"] = invalidRefresh(h, "Origin", allowed)
	answers["allowed preflight"] = h.Do(http.MethodOptions, "/auth/github/refresh", "", nil,
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
	answers["other refresh"] = invalidRefresh(h, "Origin", other)
	answers["other preflight"] = h.Do(http.MethodOptions, "/auth/github/refresh", "", nil,
		"Origin", other, "Access-Control-Request-Method", "POST")
	answers["null origin"] = invalidRefresh(h, "Origin", "null")
	answers["origin suffix"] = invalidRefresh(h, "Origin", allowed+".evil.example.net")
	answers["no origin"] = invalidRefresh(h)
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
	answers["healthz"] = h.Do(http.MethodGet, "/healthz", "", nil)
	answers["readyz"] = h.Do(http.MethodGet, "/readyz", "", nil)
	answers["metrics"] = h.Do(http.MethodGet, "/metrics", "", nil)
	answers["not found"] = h.Do(http.MethodGet, "/nope", "", nil)
	answers["wrong method"] = h.Do(http.MethodGet, "/auth/github/refresh", "", nil)
	answers["too large"] = h.Do(http.MethodPost, "/auth/github/refresh", "application/json",
		strings.NewReader(`{"refresh_token":"`+strings.Repeat("a", 100<<10)+`"}`))
	for name, r := range answers {
		apptest.CheckSecurityHeaders(t, name, r.Header, false)
	}
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
	h := apptest.NewSpied(t, func(c *app.Config) {
		c.UpstreamTimeout = 300 * time.Millisecond
		c.BreakerFailures = 3
		c.BreakerCooldown = 5 * time.Second
		c.RateIPPerMinute = 600 // bursts of 100
		c.RateTokenPerMin = 6   // bursts of 5
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})

	// Sign-in and sessions: JWTs and session refresh tokens go by.
	u := h.GitHubUser("mallory")
	l := h.SignIn(t, u.ID, `{"os":"linux"}`)
	if r := h.ListTokens(l.JWT); r.Status != http.StatusOK {
		t.Fatalf("GET /token: %d %s", r.Status, r.Body)
	}
	rotated := h.SessionPost(t, "/user/refresh", "refresh_token", l.SessionRT)
	if rotated.Status != http.StatusOK {
		t.Fatalf("session refresh: %d %s", rotated.Status, rotated.Body)
	}
	h.Clock.Advance(11 * time.Second) // past the reuse interval
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refreshToken", l.SessionRT), http.StatusUnauthorized, flashauth.CodeRefreshTokenReused)
	apptest.WantError(t, h.SessionPost(t, "/user/refresh", "refresh_token", strings.Repeat("A", 43)), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)

	// GitHub refresh: success with a Bearer, replay, rejection and its replays.
	tok := apptest.NewToken(t, h.Refresh(l.GHRefresh, "Authorization", "Bearer "+l.JWT))
	if r := h.Refresh(l.GHRefresh); r.Status != http.StatusOK {
		t.Fatalf("replay: %d", r.Status)
	}
	bad := "ghr_" + strings.Repeat("Q", 76)
	h.See(bad)
	for range 6 { // the rejection, then its replays: they never trip the per-token limit
		apptest.WantError(t, h.Refresh(bad), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	}

	// Secrets where they do not belong: a foreign Bearer, the token in the
	// query string, in the path, in the request id, in an unknown field.
	stray := "ghu_" + strings.Repeat("S", 36)
	h.See(stray)
	tok = apptest.NewToken(t, h.Refresh(tok, "Authorization", "Bearer "+stray, "X-Request-Id", stray))
	h.Do(http.MethodPost, "/auth/github/refresh?refresh_token="+bad, "application/json", strings.NewReader(`{}`))
	h.Do(http.MethodGet, "/auth/github/refresh/"+bad, "", nil)
	h.Do(http.MethodPost, "/auth/github/refresh", "application/json",
		strings.NewReader(`{"refresh_token":"`+tok+` x","token":"`+stray+`"}`))
	h.Do(http.MethodPost, "/auth/github", "application/json", strings.NewReader(`{"code":"`+stray+`"}`))

	// Upstream trouble of every kind, then an open breaker.
	for _, f := range []githubemu.Fault{
		{Kind: githubemu.FaultServerError, Status: http.StatusInternalServerError, Count: 1},
		{Kind: githubemu.FaultRateLimitHTML, RetryAfter: 30 * time.Second, Count: 1},
		{Kind: githubemu.FaultHang, Count: 1},
	} {
		h.Emu.InjectFault(f)
		apptest.WantError(t, h.Refresh(tok), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	}
	r := h.Refresh(tok)
	apptest.WantError(t, r, http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
	if r.Header.Get("Retry-After") != "5" {
		t.Errorf("breaker not open after 3 failures: Retry-After %q", r.Header.Get("Retry-After"))
	}
	h.Clock.Advance(5 * time.Second)
	tok = apptest.NewToken(t, h.Refresh(tok)) // the probe closes it
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultTruncatedJSON, Count: 1})
	apptest.WantError(t, h.Refresh(tok), http.StatusBadGateway, flashauth.CodeUpstreamBadResponse)

	// One client floods from behind the proxy until it is limited.
	limited := false
	for range 110 {
		if invalidRefresh(h, "X-Forwarded-For", "198.51.100.66").Status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Errorf("the flood was never rate limited")
	}

	// Logout and revocation.
	l2 := h.SignIn(t, u.ID, "")
	if r := h.Do(http.MethodDelete, "/token/"+l.TokenID, "", nil, "Authorization", "Bearer "+l2.JWT); r.Status != http.StatusOK {
		t.Errorf("DELETE /token: %d %s", r.Status, r.Body)
	}
	if r := h.SessionPost(t, "/user/logout", "refresh_token", l2.SessionRT); r.Status != http.StatusOK {
		t.Errorf("logout: %d %s", r.Status, r.Body)
	}

	logs := h.Logs.String()
	if !strings.Contains(logs, `"request_id"`) || strings.Count(logs, "\n") < 100 {
		t.Fatalf("the scenario logged too little to be a meaningful scan (%d lines)", strings.Count(logs, "\n"))
	}
	for _, p := range []*regexp.Regexp{githubTokenPattern, jwtPattern} {
		if m := p.FindString(logs); m != "" {
			t.Errorf("the logs contain %s... (pattern %s)", m[:4], p)
		}
	}
	if strings.Contains(logs, apptest.ClientSecret) {
		t.Errorf("the logs contain the client secret")
	}
	// The database holds hashes and sealed blobs only.
	names, _ := filepath.Glob(h.DBPath() + "*")
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
	h := apptest.New(t)
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
			h.See(tc.id)
		}
		r := invalidRefresh(h, "X-Request-Id", tc.id)
		if got := r.Header.Get("X-Request-Id"); (got == tc.id) != tc.kept || got == "" {
			t.Errorf("X-Request-Id %.8q... answered as %.8q..., want kept=%v", tc.id, got, tc.kept)
		}
	}
	g := h.Grant()
	stray := "ghu_" + strings.Repeat("T", 36)
	h.See(stray)
	apptest.NewToken(t, h.Refresh(g.RefreshToken, "X-Request-Id", stray))
	events, err := h.App.Store.ListAudit(context.Background(), 10)
	if err != nil || len(events) == 0 {
		t.Fatalf("audit events: %d, %v; want the refresh", len(events), err)
	}
	// The refresh's row, wherever the audit queue stored it.
	i := slices.IndexFunc(events, func(e flashauth.AuditEvent) bool { return e.Type == "github_refresh" && e.Outcome == "ok" })
	if i < 0 {
		t.Fatalf("no github_refresh/ok audit event among %d", len(events))
	}
	if id := events[i].RequestID; id == stray || id == "" {
		t.Errorf("audit request id = %.8q..., want a generated one", id)
	}
}
