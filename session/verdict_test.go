package session_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/session"
)

// The caller that rotated keeps the verdict it committed (ledger.Run does
// not decode its own encoding for it); a replay decodes the committed
// bytes. Both hold the very same values - times included: on the system
// clock (local time, with a monotonic reading) the rotator's times are
// made what JSON gives back, UTC without a monotonic reading.
func TestRefreshRotatorAndReplayHoldEqualValues(t *testing.T) {
	st := openStore(t)
	clock := flashauth.SystemClock{}
	svc, err := session.New(st, ledger.New(st, ledger.Options{Clock: clock}), session.Config{Clock: clock, ReuseInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	u, _, err := st.UpsertGitHubUser(context.Background(),
		flashauth.User{ID: "user-verdict", GitHubID: 1 << 40, Login: "verdict", Email: "v@example.com", CreatedAt: now, UpdatedAt: now},
		flashauth.Organization{ID: "org-verdict", Name: "org", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := svc.Open(context.Background(), u, session.Meta{Provider: "GITHUB"})
	if err != nil {
		t.Fatal(err)
	}

	answer := refresh(t, svc, iss.RefreshToken)
	again := refresh(t, svc, iss.RefreshToken)
	if answer.Replayed || !again.Replayed {
		t.Fatalf("replayed %v then %v; want a rotation, then a replay", answer.Replayed, again.Replayed)
	}
	again.Replayed = false
	if !reflect.DeepEqual(answer, again) {
		t.Fatalf("the rotator's answer %#v\nis not the replay's %#v", answer, again)
	}
}
