package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/githubemu"
)

// auditTrail returns "type/outcome" of the stored audit trail, sorted, and
// requires a request id on every event a request caused. Sorted, because
// the store's order is not the order of the requests: app's audit queue
// writes rows off the answer path, concurrently, so a row may be stored
// after the row of the request that followed it.
func auditTrail(t *testing.T, h *apptest.Harness) []string {
	t.Helper()
	evs, err := h.App.Store.ListAudit(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		if e.RequestID == "" && e.Type != "reuse_detected" {
			t.Errorf("audit event %s/%s has no request id", e.Type, e.Outcome)
		}
		out = append(out, e.Type+"/"+e.Outcome)
	}
	slices.Sort(out)
	return out
}

func TestAuditTrailOfGitHubRefresh(t *testing.T) {
	h := apptest.New(t)
	g := h.Grant()
	if r := h.Refresh(g.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("refresh: %d", r.Status)
	}
	h.Refresh(g.RefreshToken) // replay
	h.Clock.Advance(61 * time.Second)
	apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)

	got := auditTrail(t, h)
	want := []string{"github_refresh/ok", "github_refresh/replayed", "reuse_detected/suspected", "github_refresh/rejected"}
	if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("audit trail = %v, want %v", got, want)
	}
	evs, _ := h.App.Store.ListAudit(context.Background(), 10)
	for _, e := range evs {
		if e.IPAddress == "" && e.Type == "github_refresh" {
			t.Errorf("github_refresh event without client IP")
		}
	}
}

// The per-user limit of the session endpoints trips at its rate and
// recovers with time.
func TestUserLimitTripsAndRecovers(t *testing.T) {
	h := apptest.New(t, func(c *app.Config) { c.RateUserPerMin = 6 }) // burst 5 (burstOf), then one per 10 s
	l := h.SignIn(t, h.GitHubUser("busy").ID, "")
	for i := range 5 {
		if r := h.ListTokens(l.JWT); r.Status != http.StatusOK {
			t.Fatalf("request %d inside the burst: %d", i, r.Status)
		}
	}
	r := h.ListTokens(l.JWT)
	apptest.WantError(t, r, http.StatusTooManyRequests, flashauth.CodeRateLimited)
	if ra := r.Header.Get("Retry-After"); ra != "10" {
		t.Errorf("Retry-After = %q, want 10", ra)
	}
	other := h.SignIn(t, h.GitHubUser("calm").ID, "")
	if r := h.ListTokens(other.JWT); r.Status != http.StatusOK {
		t.Fatalf("another user shares the bucket: %d", r.Status)
	}
	h.Clock.Advance(10 * time.Second)
	if r := h.ListTokens(l.JWT); r.Status != http.StatusOK {
		t.Fatalf("not recovered: %d", r.Status)
	}
}

// With FLASHAUTH_REDIRECT_URIS set, sign-in only starts and completes for
// those redirect URIs.
func TestRedirectURIAllowList(t *testing.T) {
	h := apptest.New(t, func(c *app.Config) { c.RedirectURIs = []string{apptest.SignInRedirect} })
	apptest.WantError(t, h.Do(http.MethodGet, "/auth/github/authorize?redirect_uri="+url.QueryEscape("https://evil.example/cb"), "", nil),
		http.StatusBadRequest, flashauth.CodeInvalidRequest)
	l := h.SignIn(t, h.GitHubUser("allowed").ID, "")
	if l.JWT == "" {
		t.Fatal("sign-in with the allowed redirect_uri failed")
	}
	if c := h.Emu.Calls().TokenCode; c != 1 {
		t.Fatalf("code exchanges = %d, want 1", c)
	}
}

// Sign-in, session refresh and logout are audited with who did them.
func TestAuditTrailOfSessions(t *testing.T) {
	h := apptest.New(t)
	l := h.SignIn(t, h.GitHubUser("audited").ID, "")
	if r := h.SessionPost(t, "/user/refresh", "refresh_token", l.SessionRT); r.Status != http.StatusOK {
		t.Fatalf("session refresh: %d", r.Status)
	}
	evs, err := h.App.Store.ListAudit(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]flashauth.AuditEvent{}
	for _, e := range evs {
		seen[e.Type+"/"+e.Outcome] = e
	}
	for _, k := range []string{"signin/ok", "session_refresh/ok"} {
		e, ok := seen[k]
		if !ok {
			t.Fatalf("no %s audit event in %v", k, auditTrail(t, h))
		}
		if e.UserID != l.UserID() || e.SessionID != l.TokenID || e.RequestID == "" || e.IPAddress == "" {
			t.Errorf("%s event = %+v, want user %s, session %s, request id and IP", k, e, l.UserID(), l.TokenID)
		}
	}
}

// A refusal by the per-token limit (charged inside the ledger, so the
// refresh service sees it) is audited as rate_limited; a refusal by the
// per-IP limit, before any service runs, is counted in the metrics only.
func TestAuditTrailOfRateLimits(t *testing.T) {
	t.Run("per token", func(t *testing.T) {
		h := apptest.New(t, func(c *app.Config) { c.RateTokenPerMin = 6 }) // burst 5
		g := h.Grant()
		h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: http.StatusBadGateway}) // until cleared
		for range 5 {
			apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusServiceUnavailable, flashauth.CodeUpstreamUnavailable)
		}
		apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusTooManyRequests, flashauth.CodeRateLimited)
		got := auditTrail(t, h)
		want := slices.Repeat([]string{"github_refresh/upstream_error"}, 5)
		want = append(want, "github_refresh/rate_limited")
		if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Fatalf("audit trail = %v, want %v", got, want)
		}
	})
	t.Run("per IP", func(t *testing.T) {
		h := apptest.New(t, func(c *app.Config) { c.RateIPPerMinute = 6 }) // burst 5
		g := h.Grant()
		for range 5 {
			if r := h.Refresh(g.RefreshToken); r.Status != http.StatusOK {
				t.Fatalf("refresh inside the burst: %d %s", r.Status, r.Body)
			}
		}
		apptest.WantError(t, h.Refresh(g.RefreshToken), http.StatusTooManyRequests, flashauth.CodeRateLimited)
		got := auditTrail(t, h)
		want := append([]string{"github_refresh/ok"}, slices.Repeat([]string{"github_refresh/replayed"}, 4)...)
		if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Fatalf("audit trail = %v, want %v", got, want)
		}
	})
}
