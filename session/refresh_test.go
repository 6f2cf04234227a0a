package session_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/session"
)

func refresh(t *testing.T, svc *session.Service, tok string) session.Issued {
	t.Helper()
	iss, err := svc.Refresh(context.Background(), tok)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return iss
}

func TestRefreshRotates(t *testing.T) {
	e := newEnv(t, session.Config{})
	ctx := context.Background()
	u := e.newUser(t, "a@example.com")
	first := e.open(t, e.svc, u)

	e.clock.Advance(time.Hour)
	second := refresh(t, e.svc, first.RefreshToken)
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not issue new tokens")
	}
	if first.UserID != u.ID || second.UserID != u.ID {
		t.Errorf("issued for users %q, %q; want %q", first.UserID, second.UserID, u.ID)
	}
	if second.SessionID != first.SessionID {
		t.Errorf("session id changed: %s -> %s", first.SessionID, second.SessionID)
	}
	now := e.clock.Now()
	if !second.SessionExpiresAt.Equal(now.Add(session.DefaultRefreshTTL)) || !second.AccessExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("expiries %v %v", second.AccessExpiresAt, second.SessionExpiresAt)
	}
	p, err := e.svc.Authenticate(ctx, second.AccessToken)
	if err != nil || p.SessionID != first.SessionID || p.UserID != u.ID {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	sess, current, err := e.store.FindSessionByRefresh(ctx, seal.Hash(second.RefreshToken))
	if err != nil || !current || !sess.LastUsedAt.Equal(now) {
		t.Fatalf("new token: current %v, last used %v, err %v", current, sess.LastUsedAt, err)
	}
	third := refresh(t, e.svc, second.RefreshToken)
	if third.RefreshToken == second.RefreshToken {
		t.Fatal("second refresh did not rotate")
	}
}

// sameAnswer compares what callers are answered, not how they got it.
var sameAnswer = cmpopts.IgnoreFields(session.Issued{}, "Replayed", "Joined")

func TestRefreshConcurrentCallersGetOneAnswer(t *testing.T) {
	e := newEnv(t, session.Config{})
	replica := e.replica(t, session.Config{})
	u := e.newUser(t, "a@example.com")
	first := e.open(t, e.svc, u)

	const callers = 10
	got := make([]session.Issued, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		svc := e.svc
		if i%2 == 1 {
			svc = replica // another process on the same store
		}
		wg.Go(func() { got[i], errs[i] = svc.Refresh(context.Background(), first.RefreshToken) })
	}
	wg.Wait()
	rotated := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if d := cmp.Diff(got[0], got[i], sameAnswer); d != "" {
			t.Errorf("caller %d got another answer (-0 +%d):\n%s", i, i, d)
		}
		if !got[i].Replayed && !got[i].Joined {
			rotated++
		}
	}
	if rotated != 1 {
		t.Errorf("%d callers say they rotated the session, want 1 (the others joined or replayed)", rotated)
	}
	// Exactly one rotation: the answer's token is current and works.
	if _, current, err := e.store.FindSessionByRefresh(context.Background(), seal.Hash(got[0].RefreshToken)); err != nil || !current {
		t.Fatalf("answered token current=%v err=%v", current, err)
	}
	refresh(t, e.svc, got[0].RefreshToken)
}

func TestRefreshReplayWithinInterval(t *testing.T) {
	e := newEnv(t, session.Config{ReuseInterval: 10 * time.Second})
	replica := e.replica(t, session.Config{ReuseInterval: 10 * time.Second})
	u := e.newUser(t, "a@example.com")
	first := e.open(t, e.svc, u)

	answer := refresh(t, e.svc, first.RefreshToken)
	e.clock.Advance(9 * time.Second)
	for name, svc := range map[string]*session.Service{"same process": e.svc, "replica": replica} {
		again := refresh(t, svc, first.RefreshToken)
		if d := cmp.Diff(answer, again, sameAnswer); d != "" {
			t.Errorf("%s: replay differs (-want +got):\n%s", name, d)
		}
		if !again.Replayed || answer.Replayed || answer.Joined {
			t.Errorf("%s: first answer replayed=%v joined=%v, retry replayed=%v; want a rotation, then a replay", name, answer.Replayed, answer.Joined, again.Replayed)
		}
	}
	if _, err := e.svc.Authenticate(context.Background(), answer.AccessToken); err != nil {
		t.Errorf("session died on replay: %v", err)
	}
}

func TestRefreshReuseAfterIntervalRevokesFamily(t *testing.T) {
	e := newEnv(t, session.Config{ReuseInterval: 10 * time.Second})
	ctx := context.Background()
	u := e.newUser(t, "a@example.com")
	first := e.open(t, e.svc, u)
	second := refresh(t, e.svc, first.RefreshToken)
	e.clock.Advance(11 * time.Second)
	third := refresh(t, e.svc, second.RefreshToken) // the rightful holder goes on

	e.clock.Advance(time.Second)
	_, err := e.svc.Refresh(ctx, first.RefreshToken) // a stolen copy shows up
	wantCode(t, err, flashauth.CodeRefreshTokenReused)

	// The whole family is dead: every refresh token and access token.
	for name, tok := range map[string]string{"newest": third.RefreshToken, "middle": second.RefreshToken} {
		t.Run(name, func(t *testing.T) {
			_, err := e.svc.Refresh(ctx, tok)
			wantCode(t, err, flashauth.CodeInvalidRefreshToken)
		})
	}
	for name, tok := range map[string]string{"first": first.AccessToken, "second": second.AccessToken, "third": third.AccessToken} {
		if err := authErr(e.svc, tok); flashauth.ErrorCode(err) != flashauth.CodeAuthRequired {
			t.Errorf("%s access token: err %v, want AUTH_REQUIRED", name, err)
		}
	}
	sess, err := e.store.GetSession(ctx, first.SessionID)
	if err != nil || sess.RevokedAt.IsZero() {
		t.Fatalf("session not revoked: %+v, %v", sess, err)
	}
	events, err := e.store.ListAudit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events, func(ev flashauth.AuditEvent) bool {
		return ev.Type == audit.TypeReuseDetected && ev.Outcome == audit.OutcomeRevoked &&
			ev.SessionID == first.SessionID && ev.UserID == u.ID
	}) {
		t.Errorf("audit %+v, want a reuse_detected/revoked event for the session", events)
	}
}

func TestRefreshRejects(t *testing.T) {
	e := newEnv(t, session.Config{RefreshTTL: 24 * time.Hour})
	ctx := context.Background()
	u := e.newUser(t, "a@example.com")
	expiring := e.open(t, e.svc, u)
	revoked := e.open(t, e.svc, u)
	if _, err := e.svc.Logout(ctx, revoked.RefreshToken); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(24*time.Hour + time.Second)

	tests := []struct {
		name, token, code string
	}{
		{"empty", "", flashauth.CodeInvalidRequest},
		{"malformed", "ghr_notours", flashauth.CodeInvalidRefreshToken},
		{"never issued", randomToken(t), flashauth.CodeInvalidRefreshToken},
		{"expired session", expiring.RefreshToken, flashauth.CodeInvalidRefreshToken},
		{"revoked session", revoked.RefreshToken, flashauth.CodeInvalidRefreshToken},
		{"access token instead", expiring.AccessToken, flashauth.CodeInvalidRefreshToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Refresh(ctx, tt.token)
			wantCode(t, err, tt.code)
		})
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, session.Config{})
	ctx := context.Background()
	u := e.newUser(t, "a@example.com")
	first := e.open(t, e.svc, u)
	keep := e.open(t, e.svc, u)

	if sess, err := e.svc.Logout(ctx, first.RefreshToken); err != nil || sess.ID != first.SessionID || sess.UserID != u.ID {
		t.Fatalf("Logout = session %q of %q, %v; want %q of %q", sess.ID, sess.UserID, err, first.SessionID, u.ID)
	}
	wantCode(t, authErr(e.svc, first.AccessToken), flashauth.CodeAuthRequired)
	_, err := e.svc.Refresh(ctx, first.RefreshToken)
	wantCode(t, err, flashauth.CodeInvalidRefreshToken)
	if _, err := e.svc.Logout(ctx, first.RefreshToken); err != nil {
		t.Errorf("second Logout: %v", err)
	}
	if err := authErr(e.svc, keep.AccessToken); err != nil {
		t.Errorf("logout ended another session: %v", err)
	}

	// A rotated-out token still names its session.
	rotated := refresh(t, e.svc, keep.RefreshToken)
	if _, err := e.svc.Logout(ctx, keep.RefreshToken); err != nil {
		t.Fatalf("Logout with rotated-out token: %v", err)
	}
	wantCode(t, authErr(e.svc, rotated.AccessToken), flashauth.CodeAuthRequired)

	// A replay inside the reuse interval does not resurrect a logged-out
	// session's tokens.
	third := e.open(t, e.svc, u)
	refresh(t, e.svc, third.RefreshToken)
	if _, err := e.svc.Logout(ctx, third.RefreshToken); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Refresh(ctx, third.RefreshToken)
	wantCode(t, err, flashauth.CodeInvalidRefreshToken)

	wantCode(t, logoutErr(e, randomToken(t)), flashauth.CodeInvalidRefreshToken)
	wantCode(t, logoutErr(e, "x"), flashauth.CodeInvalidRefreshToken)
	wantCode(t, logoutErr(e, ""), flashauth.CodeInvalidRequest)
}

func logoutErr(e *env, token string) error {
	_, err := e.svc.Logout(context.Background(), token)
	return err
}
