package session_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/session"
)

func TestListNewestFirstOwnOnly(t *testing.T) {
	e := newEnv(t, session.Config{})
	ctx := context.Background()
	alice := e.newUser(t, "alice@example.com")
	bob := e.newUser(t, "bob@example.com")
	var want []string
	for range 3 {
		want = append([]string{e.open(t, e.svc, alice).SessionID}, want...)
		e.open(t, e.svc, bob)
		e.clock.Advance(time.Second)
	}
	revoked := e.open(t, e.svc, alice)
	if _, err := e.svc.Logout(ctx, revoked.RefreshToken); err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Authenticate(ctx, e.open(t, e.svc, alice).AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	want = append([]string{p.SessionID}, want...)

	got, err := e.svc.List(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID)
		if s.UserID != alice.ID || s.Provider != "GITHUB" || s.IPAddress != "127.0.0.1" || string(s.DeviceInfo) != `{"os":"test"}` {
			t.Errorf("session %+v", s)
		}
	}
	if d := cmp.Diff(want, ids); d != "" {
		t.Errorf("session ids (-want +got):\n%s", d)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t, session.Config{})
	ctx := context.Background()
	alice := e.newUser(t, "alice@example.com")
	bob := e.newUser(t, "bob@example.com")
	aliceMain := e.open(t, e.svc, alice)
	aliceOther := e.open(t, e.svc, alice)
	bobs := e.open(t, e.svc, bob)
	p, err := e.svc.Authenticate(ctx, aliceMain.AccessToken)
	if err != nil {
		t.Fatal(err)
	}

	for name, id := range map[string]string{"another user's": bobs.SessionID, "unknown": "no-such-id", "empty": ""} {
		t.Run(name, func(t *testing.T) { wantCode(t, e.svc.Revoke(ctx, p, id), flashauth.CodeNotFound) })
	}
	if err := authErr(e.svc, bobs.AccessToken); err != nil {
		t.Fatalf("bob's session hurt: %v", err)
	}

	if err := e.svc.Revoke(ctx, p, aliceOther.SessionID); err != nil {
		t.Fatalf("Revoke own: %v", err)
	}
	wantCode(t, authErr(e.svc, aliceOther.AccessToken), flashauth.CodeAuthRequired)
	_, err = e.svc.Refresh(ctx, aliceOther.RefreshToken)
	wantCode(t, err, flashauth.CodeInvalidRefreshToken)
	if err := e.svc.Revoke(ctx, p, aliceOther.SessionID); err != nil {
		t.Errorf("revoking again: %v", err)
	}
	if err := authErr(e.svc, aliceMain.AccessToken); err != nil {
		t.Errorf("caller's own session hurt: %v", err)
	}
}
