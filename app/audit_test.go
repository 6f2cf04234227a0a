package app_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
)

// auditTrail returns "type/outcome" of the stored audit trail, oldest first,
// and requires a request id on every event a request caused.
func auditTrail(t *testing.T, h *harness) []string {
	t.Helper()
	evs, err := h.app.Store.ListAudit(context.Background(), 100)
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
	return out
}

func TestAuditTrailOfGitHubRefresh(t *testing.T) {
	h := newHarness(t)
	g := h.grant()
	if r := h.refresh(g.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("refresh: %d", r.Status)
	}
	h.refresh(g.RefreshToken) // replay
	h.clock.Advance(61 * time.Second)
	wantError(t, h.refresh(g.RefreshToken), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)

	got := auditTrail(t, h)
	want := []string{"github_refresh/ok", "github_refresh/replayed", "reuse_detected/suspected", "github_refresh/rejected"}
	if !slices.Equal(got, want) {
		t.Fatalf("audit trail = %v, want %v", got, want)
	}
	evs, _ := h.app.Store.ListAudit(context.Background(), 10)
	for _, e := range evs {
		if e.IPAddress == "" && e.Type == "github_refresh" {
			t.Errorf("github_refresh event without client IP")
		}
	}
}

// With FLASHAUTH_REUSE_REVOKES_SESSIONS, a rotated-out GitHub refresh token
// presented after the replay window also ends its owner's flashauth
// sessions; without it they live on. Either way it is audited.
func TestSuspectedReuseRevokesSessionsWhenConfigured(t *testing.T) {
	for _, revoke := range []bool{false, true} {
		t.Run(map[bool]string{false: "audit only", true: "revoke"}[revoke], func(t *testing.T) {
			h := newHarness(t, func(c *app.Config) { c.ReuseRevokesSessions = revoke })
			l := h.signIn(t, h.githubUser("victim").ID, "")
			if r := h.refresh(l.GHRefresh, "Authorization", "Bearer "+l.JWT); r.Status != http.StatusOK {
				t.Fatalf("owner's refresh: %d %s", r.Status, r.Body)
			}
			h.clock.Advance(61 * time.Second)
			// A stale copy of the rotated-out token comes back.
			wantError(t, h.refresh(l.GHRefresh), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)

			want := http.StatusOK
			if revoke {
				want = http.StatusUnauthorized
			}
			if r := h.listTokens(l.JWT); r.Status != want {
				t.Fatalf("owner's access token after suspected reuse: %d, want %d", r.Status, want)
			}
			evs, err := h.app.Store.ListAudit(context.Background(), 20)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(evs, func(e flashauth.AuditEvent) bool {
				return e.Type == "reuse_detected" && e.Outcome == "suspected" && e.UserID == l.userID()
			}) {
				t.Fatalf("no suspected-reuse audit event for the owner")
			}
		})
	}
}

// The per-user limit of the session endpoints trips at its rate and
// recovers with time.
func TestUserLimitTripsAndRecovers(t *testing.T) {
	h := newHarness(t, func(c *app.Config) { c.RateUserPerMin = 6 }) // burst 5 (burstOf), then one per 10 s
	l := h.signIn(t, h.githubUser("busy").ID, "")
	for i := range 5 {
		if r := h.listTokens(l.JWT); r.Status != http.StatusOK {
			t.Fatalf("request %d inside the burst: %d", i, r.Status)
		}
	}
	r := h.listTokens(l.JWT)
	wantError(t, r, http.StatusTooManyRequests, flashauth.CodeRateLimited)
	if ra := r.Header.Get("Retry-After"); ra != "10" {
		t.Errorf("Retry-After = %q, want 10", ra)
	}
	other := h.signIn(t, h.githubUser("calm").ID, "")
	if r := h.listTokens(other.JWT); r.Status != http.StatusOK {
		t.Fatalf("another user shares the bucket: %d", r.Status)
	}
	h.clock.Advance(10 * time.Second)
	if r := h.listTokens(l.JWT); r.Status != http.StatusOK {
		t.Fatalf("not recovered: %d", r.Status)
	}
}

// With FLASHAUTH_REDIRECT_URIS set, sign-in only starts and completes for
// those redirect URIs.
func TestRedirectURIAllowList(t *testing.T) {
	h := newHarness(t, func(c *app.Config) { c.RedirectURIs = []string{signinRedirect} })
	wantError(t, h.do(http.MethodGet, "/auth/github/authorize?redirect_uri="+url.QueryEscape("https://evil.example/cb"), "", nil),
		http.StatusBadRequest, flashauth.CodeInvalidRequest)
	l := h.signIn(t, h.githubUser("allowed").ID, "")
	if l.JWT == "" {
		t.Fatal("sign-in with the allowed redirect_uri failed")
	}
	if c := h.emu.Calls().TokenCode; c != 1 {
		t.Fatalf("code exchanges = %d, want 1", c)
	}
}

// Sign-in, session refresh and logout are audited with who did them.
func TestAuditTrailOfSessions(t *testing.T) {
	h := newHarness(t)
	l := h.signIn(t, h.githubUser("audited").ID, "")
	if r := h.sessionPost(t, "/user/refresh", "refresh_token", l.SessionRT); r.Status != http.StatusOK {
		t.Fatalf("session refresh: %d", r.Status)
	}
	evs, err := h.app.Store.ListAudit(context.Background(), 20)
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
		if e.UserID != l.userID() || e.SessionID != l.TokenID || e.RequestID == "" || e.IPAddress == "" {
			t.Errorf("%s event = %+v, want user %s, session %s, request id and IP", k, e, l.userID(), l.TokenID)
		}
	}
}
