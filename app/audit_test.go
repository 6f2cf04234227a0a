package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
)

// auditTypes returns "type/outcome" of the stored audit trail, oldest first.
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
	if len(got) != len(want) {
		t.Fatalf("audit trail = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("audit trail = %v, want %v", got, want)
		}
	}
	evs, _ := h.app.Store.ListAudit(context.Background(), 10)
	for _, e := range evs {
		if e.IPAddress == "" && e.Type == "github_refresh" {
			t.Errorf("github_refresh event without client IP")
		}
	}
}
