package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/github"
	"github.com/flashbacktech/flashauth/githubemu"
)

// atDefaults runs the app with the settings serve uses when nothing is set
// (cmd/flashauth's TestConfigDefaults holds serve to the same constants);
// the harness's replay window (60s) and reuse interval (10s) are the
// defaults already.
func atDefaults(c *app.Config) {
	c.RateIPPerMinute, c.RateTokenPerMin, c.RateUserPerMin = app.DefaultRateIP, app.DefaultRateToken, app.DefaultRateUser
	c.BreakerFailures, c.BreakerCooldown = github.DefaultBreakerFailures, github.DefaultBreakerCooldown
	c.AuditRetention = app.DefaultAuditRetention
	c.MaxRefreshes = app.DefaultMaxRefreshes
}

// wantIdentical200s requires every answer to be 200 with the first one's body.
func wantIdentical200s(t *testing.T, statuses []int, bodies [][]byte) {
	t.Helper()
	for i := range statuses {
		if statuses[i] != http.StatusOK {
			t.Fatalf("caller %d: %d %s", i, statuses[i], bodies[i])
		}
		if !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("caller %d got another body than caller 0", i)
		}
	}
}

// Fifty tabs refreshing one token at once, at the default limits (a burst
// of 5 per token), all get the one answer; so does a retry inside the
// window. None of them is refused by the per-token limit, because only the
// one that calls GitHub spends it.
func TestDefaultLimitsRacingGitHubRefresh(t *testing.T) {
	h := apptest.New(t, atDefaults)
	g := h.Grant()
	body, _ := json.Marshal(map[string]string{"refresh_token": g.RefreshToken})
	statuses, bodies := h.ConcurrentPosts(t, "/auth/github/refresh", string(body), 50)
	wantIdentical200s(t, statuses, bodies)
	if n := h.Emu.Calls().TokenRefresh; n != 1 {
		t.Fatalf("upstream refreshes = %d, want 1", n)
	}
	h.Clock.Advance(30 * time.Second)
	for range 10 {
		if r := h.Refresh(g.RefreshToken); r.Status != http.StatusOK || !bytes.Equal(r.Body, bodies[0]) {
			t.Fatalf("retry inside the window: %d, same body %v", r.Status, bytes.Equal(r.Body, bodies[0]))
		}
	}
	if n := h.Emu.Calls().TokenRefresh; n != 1 {
		t.Fatalf("upstream refreshes = %d after the retries, want 1", n)
	}
}

// The same for twenty tabs refreshing one flashauth session at once.
func TestDefaultLimitsRacingSessionRefresh(t *testing.T) {
	h := apptest.New(t, atDefaults)
	l := h.SignIn(t, h.GitHubUser("tabs").ID, "")
	body, _ := json.Marshal(map[string]string{"refresh_token": l.SessionRT})
	statuses, bodies := h.ConcurrentPosts(t, "/user/refresh", string(body), 20)
	wantIdentical200s(t, statuses, bodies)
	h.Clock.Advance(5 * time.Second) // inside the reuse interval
	for range 10 {
		if r := h.SessionPost(t, "/user/refresh", "refreshToken", l.SessionRT); r.Status != http.StatusOK || !bytes.Equal(r.Body, bodies[0]) {
			t.Fatalf("retry inside the reuse interval: %d %s", r.Status, r.Body)
		}
	}
	var answer struct{ RefreshToken string }
	if err := json.Unmarshal(bodies[0], &answer); err != nil {
		t.Fatal(err)
	}
	if r := h.SessionPost(t, "/user/refresh", "refresh_token", answer.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("the answered refresh token does not refresh: %d %s", r.Status, r.Body)
	}
}

// Someone who holds a user's GitHub refresh token but may not use it (a
// signed-in other user, under either policy) is refused before the ledger,
// however often they try: the owner is never locked out by the per-token
// limit.
func TestRejectedAttemptsDoNotLockOwnerOut(t *testing.T) {
	h := apptest.New(t, atDefaults)
	owner := h.SignIn(t, h.GitHubUser("owner").ID, "")
	other := h.SignIn(t, h.GitHubUser("other").ID, "")
	for range 20 {
		apptest.WantError(t, h.Refresh(owner.GHRefresh, "Authorization", "Bearer "+other.JWT), http.StatusForbidden, flashauth.CodeTokenOwnerMismatch)
	}
	if r := h.Refresh(owner.GHRefresh, "Authorization", "Bearer "+owner.JWT); r.Status != http.StatusOK {
		t.Fatalf("the owner's refresh after 20 refused attempts by another user: %d %s", r.Status, r.Body)
	}
	// A rejection GitHub gave is replayed, never re-asked, never limited.
	bogus := "ghr_" + strings.Repeat("B", 76)
	h.See(bogus)
	for range 20 {
		apptest.WantError(t, h.Refresh(bogus), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	}
	if n := h.Emu.Calls().TokenRefresh; n != 2 {
		t.Fatalf("upstream refreshes = %d, want 2 (the owner's, the bogus token's once)", n)
	}
	// The same for a token flashauth knows (issued at sign-in, never
	// rotated) that GitHub has since revoked: its rejection is committed
	// without touching the lineage, and every retry is still a replay.
	revoked := h.SignIn(t, h.GitHubUser("revoked").ID, "")
	h.Emu.RevokeGrant(revoked.GHRefresh)
	for range 20 {
		apptest.WantError(t, h.Refresh(revoked.GHRefresh), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	}
	if n := h.Emu.Calls().TokenRefresh; n != 3 {
		t.Fatalf("upstream refreshes = %d, want 3 (the revoked token's once)", n)
	}
}

// metricsText returns the body of GET /metrics.
func metricsText(t *testing.T, h *apptest.Harness) string {
	t.Helper()
	r := h.Do(http.MethodGet, "/metrics", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.Status)
	}
	return string(r.Body)
}

// metric returns the value of the sample name{labels} (labels as
// Prometheus writes them, sorted by name), or -1 when it is absent.
func metric(text, name, labels string) float64 {
	series := name
	if labels != "" {
		series += "{" + labels + "}"
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return f
		}
	}
	return -1
}

// Five tokens, each refreshed by five callers at once: five GitHub calls,
// and the metrics and the audit trail say five refreshes, twenty joined or
// replayed - not twenty-five refreshes.
func TestJoinedCallersAreNotCountedAsRefreshes(t *testing.T) {
	h := apptest.New(t, atDefaults)
	const tokens, callers = 5, 5
	var grants []githubemu.Grant
	for range tokens {
		grants = append(grants, h.Grant())
	}
	var wg sync.WaitGroup
	gun := make(chan struct{})
	var failed atomic.Int64
	for _, g := range grants {
		body, _ := json.Marshal(map[string]string{"refresh_token": g.RefreshToken})
		for range callers {
			wg.Go(func() {
				<-gun
				req, _ := http.NewRequest(http.MethodPost, h.Srv.URL+"/auth/github/refresh", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				r, err := apptest.Send(h.Srv.Client(), req)
				if err != nil || r.Status != http.StatusOK {
					failed.Add(1)
					return
				}
				h.SeeJSON(r.Body)
			})
		}
	}
	close(gun)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d refreshes failed", failed.Load())
	}
	if n := h.Emu.Calls().TokenRefresh; n != tokens {
		t.Fatalf("upstream refreshes = %d, want %d", n, tokens)
	}
	text := metricsText(t, h)
	ok := metric(text, "flashauth_github_refresh_total", `outcome="ok"`)
	shared := max(metric(text, "flashauth_github_refresh_total", `outcome="joined"`), 0) +
		max(metric(text, "flashauth_github_refresh_total", `outcome="replayed"`), 0)
	if ok != tokens || shared != tokens*(callers-1) {
		t.Errorf("flashauth_github_refresh_total: ok %v, joined+replayed %v; want %d and %d", ok, shared, tokens, tokens*(callers-1))
	}
	evs, err := h.App.Store.ListAudit(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	for _, e := range evs {
		if e.Type == "github_refresh" {
			outcomes[e.Outcome]++
		}
	}
	if outcomes["ok"] != tokens || outcomes["joined"]+outcomes["replayed"] != tokens*(callers-1) || len(outcomes) > 3 {
		t.Errorf("audit outcomes of github_refresh = %v; want ok %d, joined+replayed %d", outcomes, tokens, tokens*(callers-1))
	}
}

// The metrics an operator's dashboard needs are on /metrics with sane
// values: GitHub calls by endpoint and class with their latency, the
// breaker's state, store latency by operation, pending ledger operations.
// Every label value is lower-case.
// newGatedHarness is a harness whose GitHub token endpoint waits while
// *hold is set, so that a refresh can be caught in flight.
func newGatedHarness(t *testing.T, hold *atomic.Pointer[chan struct{}], opts ...apptest.Option) *apptest.Harness {
	var emu atomic.Pointer[githubemu.Emulator]
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ch := hold.Load(); ch != nil && r.URL.Path == githubemu.TokenPath {
			<-*ch
		}
		emu.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(gate.Close)
	h := apptest.New(t, append(opts, func(c *app.Config) { c.GitHubURL, c.GitHubAPIURL = gate.URL, gate.URL })...)
	emu.Store(h.Emu)
	return h
}

// refreshAsync posts a refresh of token and delivers its answer on the
// channel it returns.
func refreshAsync(h *apptest.Harness, token string) <-chan apptest.Response {
	done := make(chan apptest.Response, 1)
	go func() {
		body, _ := json.Marshal(map[string]string{"refresh_token": token})
		req, _ := http.NewRequest(http.MethodPost, h.Srv.URL+"/auth/github/refresh", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		r, _ := apptest.Send(h.Srv.Client(), req)
		done <- r
	}()
	return done
}

func TestDashboardMetrics(t *testing.T) {
	var hold atomic.Pointer[chan struct{}]
	h := newGatedHarness(t, &hold, atDefaults)

	h.SignIn(t, h.GitHubUser("dash").ID, "") // exchange, /user, /user/emails
	apptest.NewToken(t, h.Refresh(h.Grant().RefreshToken))
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: http.StatusBadGateway, Count: 1})
	apptest.WantError(t, h.Refresh(h.Grant().RefreshToken), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)

	release := make(chan struct{})
	hold.Store(&release)
	done := refreshAsync(h, h.Grant().RefreshToken)
	apptest.Eventually(t, "a pending ledger operation", func() bool {
		return metric(metricsText(t, h), "flashauth_ledger_pending", "") == 1
	})
	hold.Store(nil)
	close(release)
	r := <-done
	h.SeeJSON(r.Body)
	if r.Status != http.StatusOK {
		t.Fatalf("held refresh: %d %s", r.Status, r.Body)
	}

	text := metricsText(t, h)
	for _, want := range []struct {
		name, labels string
		value        float64
	}{
		{"flashauth_github_calls_total", `class="ok",endpoint="refresh"`, 2},
		{"flashauth_github_calls_total", `class="transient",endpoint="refresh"`, 1},
		{"flashauth_github_calls_total", `class="ok",endpoint="exchange"`, 1},
		{"flashauth_github_calls_total", `class="ok",endpoint="user"`, 1},
		{"flashauth_github_calls_total", `class="ok",endpoint="emails"`, 1},
		{"flashauth_github_call_duration_seconds_count", `class="ok",endpoint="refresh"`, 2},
		{"flashauth_github_call_duration_seconds_count", `class="ok",endpoint="exchange"`, 1},
		{"flashauth_github_breaker_state", `state="closed"`, 1},
		{"flashauth_github_breaker_state", `state="open"`, 0},
		{"flashauth_github_breaker_state", `state="half-open"`, 0},
		{"flashauth_ledger_pending", "", 0},
		{"flashauth_refreshes_waiting", "", 0},
		{"flashauth_github_refresh_total", `outcome="ok"`, 2},
		{"flashauth_github_refresh_total", `outcome="upstream_unavailable"`, 1},
		{"flashauth_http_requests_total", `method="post",route="/auth/github/refresh",status="200"`, 2},
	} {
		if got := metric(text, want.name, want.labels); got != want.value {
			t.Errorf("%s{%s} = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
	// Store latency: every operation a refresh makes was timed.
	for _, op := range []string{"get_lineage_ledger", "claim_ledger", "complete_ledger", "append_audits", "create_session"} {
		if n := metric(text, "flashauth_store_operation_duration_seconds_count", fmt.Sprintf(`operation=%q`, op)); n < 1 {
			t.Errorf("store operation %s: %v observations, want some", op, n)
		}
	}
	if n := metric(text, "flashauth_github_call_duration_seconds_sum", `class="ok",endpoint="refresh"`); !(n > 0) {
		t.Errorf("GitHub refresh latency sum = %v, want > 0", n)
	}
	upper := regexp.MustCompile(`="[^"]*[A-Z][^"]*"`)
	for _, line := range strings.Split(text, "\n") {
		// le="+Inf" is Prometheus's own bucket bound.
		if strings.HasPrefix(line, "flashauth_") && upper.MatchString(strings.ReplaceAll(line, `le="+Inf"`, "")) {
			t.Errorf("a label value is not lower-case: %s", line)
		}
	}
}

// The purge loop deletes audit events older than the retention and keeps
// the rest.
func TestAuditRetentionPurge(t *testing.T) {
	h := apptest.New(t, func(c *app.Config) { c.AuditRetention = 24 * time.Hour; c.PurgeInterval = 10 * time.Millisecond })
	ctx := context.Background()
	now := h.Clock.Now()
	for _, e := range []flashauth.AuditEvent{
		{Time: now.Add(-72 * time.Hour), Type: "signin", Outcome: "ok", RequestID: "old-1"},
		{Time: now.Add(-25 * time.Hour), Type: "signin", Outcome: "ok", RequestID: "old-2"},
		{Time: now.Add(-23 * time.Hour), Type: "signin", Outcome: "ok", RequestID: "recent"},
	} {
		if err := h.App.Store.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []string {
		evs, err := h.App.Store.ListAudit(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.RequestID)
		}
		return ids
	}
	serveCtx, stop := context.WithCancel(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- h.App.Serve(serveCtx, ln, h.Cfg) }()
	apptest.Eventually(t, "the purge loop deletes the events past the retention", func() bool {
		return len(left()) == 1
	})
	stop()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if got := left(); len(got) != 1 || got[0] != "recent" {
		t.Fatalf("audit events left = %v, want [recent]", got)
	}
}

// FLASHAUTH_MAX_REFRESHES reaches the HTTP layer: with a bound of 1, a
// refresh sent while another is at GitHub waits its turn (it is not yet a
// pending ledger operation), then both are answered.
func TestMaxRefreshesWaitTheirTurn(t *testing.T) {
	var hold atomic.Pointer[chan struct{}]
	h := newGatedHarness(t, &hold, func(c *app.Config) { c.MaxRefreshes = 1 })
	release := make(chan struct{})
	hold.Store(&release)
	var once sync.Once
	open := func() { once.Do(func() { hold.Store(nil); close(release) }) }
	t.Cleanup(open) // before the harness's: a failed check must not leave a refresh at GitHub
	first := refreshAsync(h, h.Grant().RefreshToken)
	apptest.Eventually(t, "the first refresh at GitHub", func() bool {
		return metric(metricsText(t, h), "flashauth_ledger_pending", "") == 1
	})
	second := refreshAsync(h, h.Grant().RefreshToken)
	apptest.Eventually(t, "the second refresh waiting its turn", func() bool {
		return metric(metricsText(t, h), "flashauth_refreshes_waiting", "") == 1
	})
	if n := metric(metricsText(t, h), "flashauth_ledger_pending", ""); n != 1 {
		t.Errorf("%v pending ledger operations while one refresh waits its turn, want 1", n)
	}
	open()
	for _, done := range []<-chan apptest.Response{first, second} {
		r := <-done
		h.SeeJSON(r.Body)
		apptest.NewToken(t, r)
	}
}
