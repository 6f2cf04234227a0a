package ledger_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

const localKind = flashauth.LedgerSessionRefresh

func localCall(secret string) ledger.Call {
	return ledger.Call{Kind: localKind, Secret: secret, Window: time.Minute, Local: true}
}

// Two processes run a Local operation on one secret at once: nothing keeps
// the second from running it too, but only one verdict commits, and the
// other process answers it, replayed.
func TestRunLocalCommitsOnceAcrossProcesses(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	var both sync.WaitGroup
	both.Add(2)
	answers := make([]verdict, 2)
	results := make([]ledger.Result, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, name := range []string{"a", "b"} {
		l := ledger.New(db, ledger.Options{Clock: clk})
		wg.Go(func() {
			answers[i], results[i], errs[i] = ledger.Run(context.Background(), l, localCall("s"),
				func(context.Context) (verdict, ledger.Writes, error) {
					both.Done()
					both.Wait() // both ran before either commits
					return verdict{Value: "from " + name}, ledger.Writes{}, nil
				})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || results[i].Lost != nil {
			t.Fatalf("process %d: %v (lost %v)", i, err, results[i].Lost)
		}
	}
	if answers[0] != answers[1] || results[0].Replayed == results[1].Replayed {
		t.Fatalf("answers %+v %+v, replayed %v %v; want one verdict, committed by one and replayed by the other",
			answers[0], answers[1], results[0].Replayed, results[1].Replayed)
	}
	again, res, err := ledger.Run(context.Background(), ledger.New(db, ledger.Options{Clock: clk}), localCall("s"),
		func(context.Context) (verdict, ledger.Writes, error) {
			t.Error("the operation ran again within the window")
			return verdict{}, ledger.Writes{}, nil
		})
	if err != nil || !res.Replayed || again != answers[0] {
		t.Fatalf("later caller: %+v %+v %v; want the committed verdict", again, res, err)
	}
}

// A process that still claims before its operation (an older version,
// during a rolling upgrade) holds the secret: a Local call waits for its
// outcome and replays it, and runs nothing itself.
func TestRunLocalWaitsForAClaim(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	claimer := ledger.New(db, ledger.Options{Clock: clk})
	local := ledger.New(db, ledger.Options{Clock: clk, PollInterval: time.Millisecond, MaxPoll: 5 * time.Millisecond})
	release := make(chan struct{})
	var running atomic.Bool
	claimed := make(chan error, 1)
	go func() {
		_, _, err := ledger.Run(context.Background(), claimer, ledger.Call{Kind: localKind, Secret: "s", Window: time.Minute},
			func(context.Context) (verdict, ledger.Writes, error) {
				running.Store(true)
				<-release
				return verdict{Value: "claimed"}, ledger.Writes{}, nil
			})
		claimed <- err
	}()
	testkit.WaitUntil(t, "the claim held", func() bool { return running.Load() })
	got := make(chan verdict, 1)
	go func() {
		v, res, err := ledger.Run(context.Background(), local, localCall("s"),
			func(context.Context) (verdict, ledger.Writes, error) {
				t.Error("the Local operation ran while another process held the claim")
				return verdict{Value: "local"}, ledger.Writes{}, nil
			})
		if err != nil || !res.Replayed {
			t.Errorf("Local call: %+v %v; want a replay", res, err)
		}
		got <- v
	}()
	testkit.WaitUntil(t, "the Local call polling", func() bool { return testkit.Parked("/ledger.(*Ledger).await(") >= 1 })
	close(release)
	if err := <-claimed; err != nil {
		t.Fatal(err)
	}
	if v := <-got; v.Value != "claimed" {
		t.Fatalf("Local call answered %+v, want the claimed process's verdict", v)
	}
}

// When a Local operation's writes no longer apply (another process rotated
// the session first), nothing is written and the operation runs again, on
// what is stored now; BeforeClaim is charged once.
func TestRunLocalRunsAgainWhenItsWritesNoLongerApply(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	ctx := context.Background()
	now := clk.Now()
	if _, _, err := db.UpsertGitHubUser(ctx, flashauth.User{ID: "u1", GitHubID: 1, CreatedAt: now},
		flashauth.Organization{ID: "o1", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateSession(ctx, flashauth.Session{ID: "s1", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		seal.Hash("current")); err != nil {
		t.Fatal(err)
	}
	var charged atomic.Int64
	l := ledger.New(db, ledger.Options{Clock: clk, BeforeClaim: func(context.Context, string, []byte) error {
		charged.Add(1)
		return nil
	}})
	runs := 0
	v, res, err := ledger.Run(ctx, l, localCall("stale"), func(context.Context) (verdict, ledger.Writes, error) {
		if runs++; runs == 1 {
			// Decided on a read that saw "stale" current.
			return verdict{Value: "rotated"}, ledger.Writes{Rotation: &flashauth.SessionRotation{
				SessionID: "s1", OldHash: seal.Hash("stale"), NewHash: seal.Hash("next"), Now: now, ExpiresAt: now.Add(time.Hour),
			}}, nil
		}
		return verdict{Code: flashauth.CodeRefreshTokenReused}, ledger.Writes{}, nil
	})
	if runs != 2 || charged.Load() != 1 {
		t.Fatalf("ran %d times, charged %d; want 2 and 1", runs, charged.Load())
	}
	if flashauth.ErrorCode(err) != flashauth.CodeRefreshTokenReused || v.Code != flashauth.CodeRefreshTokenReused || res.Replayed {
		t.Fatalf("Run = %+v %+v %v; want the second run's rejection", v, res, err)
	}
	if _, _, err := db.FindSessionByRefresh(ctx, seal.Hash("next")); !errors.Is(err, flashauth.ErrNotFound) {
		t.Fatalf("the conflicting rotation was written: %v", err)
	}
}

// A rotation commits only with a Local call: the claimed path's completion
// has no place for it, so it is refused rather than dropped.
func TestRunRotationNeedsLocal(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	_, res, err := ledger.Run(context.Background(), l, ledger.Call{Kind: localKind, Secret: "s", Window: time.Minute},
		func(context.Context) (verdict, ledger.Writes, error) {
			return verdict{Value: "v"}, ledger.Writes{Rotation: &flashauth.SessionRotation{SessionID: "s1"}}, nil
		})
	if err == nil || res.Payload != nil {
		t.Fatalf("Run = %+v, %v; want an error and no verdict", res, err)
	}
	if _, err := db.GetLedger(context.Background(), localKind, seal.Hash("s")); !errors.Is(err, flashauth.ErrNotFound) {
		t.Fatalf("entry after the refusal: %v; want none (the claim released)", err)
	}
}
