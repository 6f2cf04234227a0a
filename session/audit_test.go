package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/session"
)

// The session service records its own audit rows: every refresh (with how
// it was answered, or why not), a logout and a revocation, each under the
// request its context carries.
func TestSessionAuditRows(t *testing.T) {
	e := newEnv(t, session.Config{ReuseInterval: 10 * time.Second})
	ctx := flashauth.WithRequestInfo(context.Background(), flashauth.RequestInfo{ID: "req-7", IP: "198.51.100.4"})
	u := e.newUser(t, "audit@example.com")
	first := e.open(t, e.svc, u)
	second := refresh(t, e.svc, first.RefreshToken)
	if _, err := e.svc.Refresh(ctx, first.RefreshToken); err != nil { // a retry within the interval
		t.Fatal(err)
	}
	if _, err := e.svc.Refresh(ctx, "not-a-session-token"); flashauth.ErrorCode(err) != flashauth.CodeInvalidRefreshToken {
		t.Fatalf("unknown token: %v", err)
	}
	other := e.open(t, e.svc, u)
	if err := e.svc.Revoke(ctx, session.Principal{UserID: u.ID, SessionID: second.SessionID}, other.SessionID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Logout(ctx, second.RefreshToken); err != nil {
		t.Fatal(err)
	}

	evs, err := e.store.ListAudit(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Type, Outcome, User, Session, Request string }
	var got []row
	for i := len(evs) - 1; i >= 0; i-- {
		ev := evs[i]
		got = append(got, row{ev.Type, ev.Outcome, ev.UserID, ev.SessionID, ev.RequestID})
	}
	want := []row{
		{"session_refresh", "ok", u.ID, first.SessionID, ""}, // refresh() runs without request info
		{"session_refresh", "replayed", u.ID, first.SessionID, "req-7"},
		{"session_refresh", "rejected", "", "", "req-7"},
		{"revoke", "ok", u.ID, other.SessionID, "req-7"},
		{"revoke", "logout", u.ID, second.SessionID, "req-7"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit rows (oldest first) -want +got:\n%s", diff)
	}
}
