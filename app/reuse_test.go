package app_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
)

// With FLASHAUTH_REUSE_REVOKES_SESSIONS, a rotated-out GitHub refresh token
// presented after the replay window also ends its owner's flashauth
// sessions; without it they live on. Either way it is audited.
func TestSuspectedReuseRevokesSessionsWhenConfigured(t *testing.T) {
	for _, revoke := range []bool{false, true} {
		t.Run(map[bool]string{false: "audit only", true: "revoke"}[revoke], func(t *testing.T) {
			h := apptest.New(t, func(c *app.Config) { c.ReuseRevokesSessions = revoke })
			l := h.SignIn(t, h.GitHubUser("victim").ID, "")
			if r := h.Refresh(l.GHRefresh, "Authorization", "Bearer "+l.JWT); r.Status != http.StatusOK {
				t.Fatalf("owner's refresh: %d %s", r.Status, r.Body)
			}
			h.Clock.Advance(61 * time.Second)
			// A stale copy of the rotated-out token comes back.
			apptest.WantError(t, h.Refresh(l.GHRefresh), http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)

			want := http.StatusOK
			if revoke {
				want = http.StatusUnauthorized
			}
			if r := h.ListTokens(l.JWT); r.Status != want {
				t.Fatalf("owner's access token after suspected reuse: %d, want %d", r.Status, want)
			}
			evs, err := h.App.Store.ListAudit(context.Background(), 20)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(evs, func(e flashauth.AuditEvent) bool {
				return e.Type == "reuse_detected" && e.Outcome == "suspected" && e.UserID == l.UserID()
			}) {
				t.Fatalf("no suspected-reuse audit event for the owner")
			}
		})
	}
}

// The suspected-reuse row names who presented the stale token: its client
// address, and its session when it carried a valid access token.
func TestSuspectedReuseAuditNamesTheRequest(t *testing.T) {
	h := apptest.New(t)
	l := h.SignIn(t, h.GitHubUser("stale").ID, "")
	apptest.NewToken(t, h.Refresh(l.GHRefresh, "Authorization", "Bearer "+l.JWT))
	h.Clock.Advance(61 * time.Second)
	apptest.WantError(t, h.Refresh(l.GHRefresh, "Authorization", "Bearer "+l.JWT, "X-Request-Id", "stale-copy-1"),
		http.StatusUnauthorized, flashauth.CodeInvalidRefreshToken)
	evs, err := h.App.Store.ListAudit(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range evs {
		if e.Type != "reuse_detected" {
			continue
		}
		found = true
		if e.IPAddress != "127.0.0.1" || e.SessionID != l.TokenID || e.RequestID != "stale-copy-1" || e.UserID != l.UserID() {
			t.Errorf("suspected-reuse row: ip %q session %q request %q user %q; want 127.0.0.1, %s, stale-copy-1, %s",
				e.IPAddress, e.SessionID, e.RequestID, e.UserID, l.TokenID, l.UserID())
		}
	}
	if !found {
		t.Fatal("no reuse_detected row")
	}
}
