package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
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

// newClock returns the clock a test moves by hand.
func newClock() *testkit.Clock { return testkit.NewClock(time.UnixMilli(1764120000000)) }

const kind = flashauth.LedgerGitHubRefresh

func okOp(calls *atomic.Int64, payload string) ledger.Op {
	return func(ctx context.Context) (ledger.Outcome, error) {
		calls.Add(1)
		return ledger.Outcome{Payload: []byte(payload)}, nil
	}
}

func TestDoReplaysWithinWindow(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	l := ledger.New(db, ledger.Options{Clock: clk})
	var calls atomic.Int64
	ctx := context.Background()
	r1, err := l.Do(ctx, kind, "secret-1", time.Minute, okOp(&calls, "one"))
	if err != nil || string(r1.Payload) != "one" || r1.Replayed {
		t.Fatalf("first Do = %+v, %v", r1, err)
	}
	r2, err := l.Do(ctx, kind, "secret-1", time.Minute, okOp(&calls, "two"))
	if err != nil || string(r2.Payload) != "one" || !r2.Replayed {
		t.Fatalf("replay = %q replayed=%v, %v; want the committed payload", r2.Payload, r2.Replayed, err)
	}
	// The stored blob is sealed: neither the secret nor the payload in clear.
	e, err := db.GetLedger(ctx, kind, seal.Hash("secret-1"))
	if err != nil || len(e.Sealed) == 0 || bytes.Contains(e.Sealed, []byte("one")) || bytes.Contains(e.Sealed, []byte("secret-1")) {
		t.Fatalf("entry = %+v, %v; want a sealed blob without the payload or the secret", e, err)
	}
	// Another kind is another namespace.
	if r, _ := l.Do(ctx, flashauth.LedgerGitHubCode, "secret-1", time.Minute, okOp(&calls, "code")); string(r.Payload) != "code" {
		t.Fatalf("kinds share entries: %q", r.Payload)
	}
	clk.Advance(time.Minute)
	r3, err := l.Do(ctx, kind, "secret-1", time.Minute, okOp(&calls, "three"))
	if err != nil || string(r3.Payload) != "three" || r3.Replayed {
		t.Fatalf("after the window = %q replayed=%v, %v; want the op to run again", r3.Payload, r3.Replayed, err)
	}
	if calls.Load() != 3 {
		t.Fatalf("op ran %d times, want 3", calls.Load())
	}
}

// Of racing callers in one process, exactly one leads (runs the op and
// passes BeforeClaim, the per-token limit's gate); every other one joins
// it; a later caller replays and passes no gate.
func TestDoSingleFlightInProcess(t *testing.T) {
	db := sqlitetest.Open(t)
	var gates atomic.Int64
	l := ledger.New(db, ledger.Options{Clock: newClock(), BeforeClaim: func(_ context.Context, k string, key []byte) error {
		gates.Add(1)
		if k != kind || !bytes.Equal(key, seal.Hash("s")) {
			t.Errorf("BeforeClaim got kind %q and another key", k)
		}
		return nil
	}})
	var calls atomic.Int64
	release := make(chan struct{})
	op := func(ctx context.Context) (ledger.Outcome, error) {
		calls.Add(1)
		<-release
		return ledger.Outcome{Payload: []byte("p")}, nil
	}
	var wg sync.WaitGroup
	results := make([]ledger.Result, 50)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.Do(context.Background(), kind, "s", time.Minute, op)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	// Every caller is parked on the attempt in flight before it may end, so
	// each one but the leader must have joined it (none replays a commit).
	testkit.WaitUntil(t, "every caller parked in Do", func() bool { return testkit.Parked("/ledger.(*Ledger).Do(") >= len(results) })
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("op ran %d times, want 1", calls.Load())
	}
	joined := 0
	for i, r := range results {
		if string(r.Payload) != "p" || r.Replayed {
			t.Fatalf("caller %d got %q (replayed %v), want the shared attempt's payload", i, r.Payload, r.Replayed)
		}
		if r.Joined {
			joined++
		}
	}
	if joined != len(results)-1 {
		t.Fatalf("%d callers joined the attempt in flight, want %d", joined, len(results)-1)
	}
	results[0].Payload[0] = 'X' // callers own their copies
	if string(results[1].Payload) != "p" {
		t.Fatal("callers share one payload slice")
	}
	if n := l.InFlight(); n != 0 {
		t.Errorf("InFlight = %d after every caller returned, want 0", n)
	}
	if gates.Load() != 1 {
		t.Fatalf("BeforeClaim ran %d times, want once: for the leader's claim", gates.Load())
	}
	r, err := l.Do(context.Background(), kind, "s", time.Minute, op)
	if err != nil || !r.Replayed || r.Joined || gates.Load() != 1 || calls.Load() != 1 {
		t.Fatalf("later caller: replayed %v joined %v, %v, gates %d, runs %d; want a replay that passes no gate", r.Replayed, r.Joined, err, gates.Load(), calls.Load())
	}
}

// Two Ledgers on one store behave like two replicas: the second waits for
// the first's commit and replays it.
func TestDoAcrossInstancesWaitsForCommit(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	a := ledger.New(db, ledger.Options{Clock: clk, PollInterval: time.Millisecond})
	st := &refusedClaims{LedgerStore: db, refused: make(chan struct{}, 1)}
	b := ledger.New(st, ledger.Options{Clock: clk, PollInterval: time.Millisecond})
	var calls atomic.Int64
	inOp := make(chan struct{})
	release := make(chan struct{})
	go func() {
		_, _ = a.Do(context.Background(), kind, "s", time.Minute, func(ctx context.Context) (ledger.Outcome, error) {
			calls.Add(1)
			close(inOp)
			<-release
			return ledger.Outcome{Payload: []byte("from-a")}, nil
		})
	}()
	<-inOp
	done := make(chan ledger.Result)
	go func() {
		r, err := b.Do(context.Background(), kind, "s", time.Minute, okOp(&calls, "from-b"))
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	// b has seen a's pending claim; it answers nothing until a commits.
	<-st.refused
	<-st.refused
	select {
	case r := <-done:
		t.Fatalf("b answered %q while a held the claim", r.Payload)
	default:
	}
	close(release)
	r := <-done
	if string(r.Payload) != "from-a" || !r.Replayed || calls.Load() != 1 {
		t.Fatalf("b got %q replayed=%v, op calls %d; want a's committed payload", r.Payload, r.Replayed, calls.Load())
	}
}

// A claim whose holder died is taken over once its lease has passed.
func TestDoTakesOverAfterLease(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	ctx := context.Background()
	now := clk.Now()
	// A dead replica's claim.
	if _, ok, err := db.ClaimLedger(ctx, kind, seal.Hash("s"), "dead-replica", now, now.Add(10*time.Second)); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	// The lease passes only once Do has seen the live claim and started
	// waiting on it: the take-over is the waiter's, not a first claim.
	st := &refusedClaims{LedgerStore: db, refused: make(chan struct{}, 1)}
	l := ledger.New(st, ledger.Options{Clock: clk, Lease: 10 * time.Second, PollInterval: time.Millisecond, MaxPoll: time.Millisecond})
	var calls atomic.Int64
	go func() {
		<-st.refused
		clk.Advance(11 * time.Second)
	}()
	r, err := l.Do(ctx, kind, "s", time.Minute, okOp(&calls, "taken-over"))
	if err != nil || string(r.Payload) != "taken-over" || calls.Load() != 1 {
		t.Fatalf("Do = %q, %v, calls %d", r.Payload, err, calls.Load())
	}
	if st.n.Load() == 0 {
		t.Fatal("Do claimed at once; it never waited on the dead replica's claim")
	}
}

// A caller that stops waiting gets its context's error; the operation goes
// on and its outcome is committed for the retry.
func TestDoCallerCancelDoesNotAbortOp(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	var calls atomic.Int64
	release := make(chan struct{})
	finished := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	_, err := l.Do(ctx, kind, "s", time.Minute, func(opCtx context.Context) (ledger.Outcome, error) {
		defer close(finished)
		calls.Add(1)
		cancel() // the caller goes away while the op runs
		<-release
		if opCtx.Err() != nil {
			return ledger.Outcome{}, opCtx.Err()
		}
		return ledger.Outcome{Payload: []byte("kept")}, nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	close(release)
	<-finished
	// A retry either joins the attempt (still committing) or replays its
	// commit; once any caller has its answer the commit is done, so the
	// retry after it must replay.
	r, err := l.Do(context.Background(), kind, "s", time.Minute, okOp(&calls, "again"))
	if err != nil || string(r.Payload) != "kept" || calls.Load() != 1 {
		t.Fatalf("retry got %q, %v (calls %d), want the op's outcome", r.Payload, err, calls.Load())
	}
	r, err = l.Do(context.Background(), kind, "s", time.Minute, okOp(&calls, "again"))
	if err != nil || string(r.Payload) != "kept" || !r.Replayed || calls.Load() != 1 {
		t.Fatalf("second retry got %q replayed=%v, %v (calls %d), want the committed outcome", r.Payload, r.Replayed, err, calls.Load())
	}
}

// Only the operation runs on a goroutine of its own: the claim and the
// commit run on the goroutine of the caller that leads the attempt, which
// has a request's stack already, so that a request waiting on the store
// holds no second goroutine. A leader that went away leaves the commit to
// the operation's goroutine (TestDoCallerCancelDoesNotAbortOp).
func TestDoRunsOnlyTheOperationOnAGoroutineOfItsOwn(t *testing.T) {
	st := &stackOfWrites{LedgerStore: sqlitetest.Open(t)}
	l := ledger.New(st, ledger.Options{Clock: newClock()})
	var opStack string
	r, err := l.Do(context.Background(), kind, "s", time.Minute, func(context.Context) (ledger.Outcome, error) {
		opStack = string(debug.Stack())
		return ledger.Outcome{Payload: []byte("p")}, nil
	})
	if err != nil || string(r.Payload) != "p" {
		t.Fatalf("Do = %q, %v", r.Payload, err)
	}
	const caller = "ledger_test.TestDoRunsOnlyTheOperationOnAGoroutineOfItsOwn("
	if strings.Contains(opStack, caller) {
		t.Errorf("the operation ran on the caller's goroutine:\n%s", opStack)
	}
	for name, stack := range map[string]string{"claim": st.claim, "commit": st.complete} {
		if !strings.Contains(stack, caller) {
			t.Errorf("the %s ran on another goroutine than the caller's:\n%s", name, stack)
		}
	}
}

// A panic on the leader's own goroutine (here in BeforeClaim) goes up the
// leader's stack; a caller that joined the attempt gets an internal error
// instead of waiting forever.
func TestDoLeaderPanicReleasesJoinedCallers(t *testing.T) {
	var l *ledger.Ledger
	l = ledger.New(sqlitetest.Open(t), ledger.Options{Clock: newClock(), BeforeClaim: func(context.Context, string, []byte) error {
		testkit.WaitUntil(t, "the second caller parked on the attempt", func() bool { return testkit.Parked("/ledger.(*Ledger).do(") >= 1 })
		panic("boom")
	}})
	var calls atomic.Int64
	joined := make(chan error, 1)
	go func() {
		testkit.WaitUntil(t, "the leader in BeforeClaim", func() bool { return l.InFlight() == 1 })
		_, err := l.Do(context.Background(), kind, "s", time.Minute, okOp(&calls, "p"))
		joined <- err
	}()
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("leader recovered %v, want its panic", p)
			}
		}()
		_, _ = l.Do(context.Background(), kind, "s", time.Minute, okOp(&calls, "p"))
	}()
	testkit.WantCode(t, <-joined, flashauth.CodeInternal)
	if calls.Load() != 0 || l.InFlight() != 0 {
		t.Fatalf("op ran %d times, %d in flight; want none", calls.Load(), l.InFlight())
	}
}

// stackOfWrites records the goroutine stack of the last claim and commit.
type stackOfWrites struct {
	flashauth.LedgerStore
	claim, complete string
}

func (s *stackOfWrites) ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, leaseUntil time.Time) (flashauth.LedgerEntry, bool, error) {
	s.claim = string(debug.Stack())
	return s.LedgerStore.ClaimLedger(ctx, kind, key, claimID, now, leaseUntil)
}

func (s *stackOfWrites) CompleteLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, expiresAt time.Time, lineage []flashauth.Lineage) error {
	s.complete = string(debug.Stack())
	return s.LedgerStore.CompleteLedger(ctx, kind, key, claimID, sealed, expiresAt, lineage)
}

func TestDoErrorIsNotCached(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	boom := errors.New("transient")
	if _, err := l.Do(context.Background(), kind, "s", time.Minute, func(context.Context) (ledger.Outcome, error) {
		return ledger.Outcome{}, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, err := db.GetLedger(context.Background(), kind, seal.Hash("s")); !errors.Is(err, flashauth.ErrNotFound) {
		t.Fatalf("claim not released: %v", err)
	}
	var calls atomic.Int64
	if r, err := l.Do(context.Background(), kind, "s", time.Minute, okOp(&calls, "ok")); err != nil || string(r.Payload) != "ok" {
		t.Fatalf("after a transient error: %q %v", r.Payload, err)
	}
}

// When the commit fails the op's payload still comes back, with a
// CommitError, because it may be the only copy of a rotated token.
func TestDoCommitFailureReturnsPayload(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	r, err := l.Do(context.Background(), kind, "s", time.Minute, func(context.Context) (ledger.Outcome, error) {
		_ = db.Close() // the database goes away while GitHub answers
		return ledger.Outcome{Payload: []byte("only-copy")}, nil
	})
	if !ledger.IsCommitError(err) || string(r.Payload) != "only-copy" {
		t.Fatalf("Do = %q, %v; want the payload with a CommitError", r.Payload, err)
	}
	if flashauth.ErrorCode(err) != flashauth.CodeStoreUnavailable {
		t.Fatalf("code = %s, want STORE_UNAVAILABLE in the chain", flashauth.ErrorCode(err))
	}
}

func TestPurge(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	l := ledger.New(db, ledger.Options{Clock: clk})
	var calls atomic.Int64
	_, _ = l.Do(context.Background(), kind, "s", time.Minute, okOp(&calls, "x"))
	if n, err := l.Purge(context.Background()); err != nil || n != 0 {
		t.Fatalf("purge inside the window: %d %v", n, err)
	}
	clk.Advance(time.Minute)
	if n, err := l.Purge(context.Background()); err != nil || n != 1 {
		t.Fatalf("purge after the window: %d %v", n, err)
	}
}

// An operation runs on a context detached from the caller's, but never
// unbounded: past its lease another process may take the claim over and run
// it again, so the operation's context ends with the lease.
func TestDoBoundsOpByLease(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock(), Lease: 50 * time.Millisecond})
	op := func(ctx context.Context) (ledger.Outcome, error) {
		if _, ok := ctx.Deadline(); !ok {
			return ledger.Outcome{}, errors.New("operation context has no deadline")
		}
		select {
		case <-ctx.Done():
			return ledger.Outcome{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return ledger.Outcome{}, errors.New("operation outlived its lease")
		}
	}
	_, err := l.Do(context.Background(), kind, "s", time.Minute, op)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the lease's deadline", err)
	}
	if _, err := db.GetLedger(context.Background(), kind, seal.Hash("s")); !errors.Is(err, flashauth.ErrNotFound) {
		t.Fatalf("claim not released after the deadline: %v", err)
	}
}

// A panicking operation must not take the process down (singleflight would
// re-panic it where no handler can recover it): it is an internal error, and
// the claim is released for the next caller.
func TestDoOpPanicIsAnError(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	_, err := l.Do(context.Background(), kind, "s", time.Minute, func(context.Context) (ledger.Outcome, error) {
		panic("ghr_must_not_leak")
	})
	if err == nil || flashauth.ErrorCode(err) != flashauth.CodeInternal {
		t.Fatalf("err = %v, want an internal error", err)
	}
	if strings.Contains(err.Error(), "ghr_must_not_leak") {
		t.Fatalf("the panic value leaked into the error: %v", err)
	}
	var calls atomic.Int64
	if r, err := l.Do(context.Background(), kind, "s", time.Minute, okOp(&calls, "ok")); err != nil || string(r.Payload) != "ok" {
		t.Fatalf("after a panic: %q %v; want the claim released", r.Payload, err)
	}
}

// A holder whose lease ran out while it was still talking upstream, and whose
// pending entry the purge loop deleted meanwhile, still commits its outcome
// when nobody else claimed the secret: it is the only copy of a rotated token
// and a retry must replay it.
func TestDoCommitsAfterPurgedLease(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	l := ledger.New(db, ledger.Options{Clock: clk, Lease: 10 * time.Second})
	ctx := context.Background()
	r, err := l.Do(ctx, kind, "s", time.Minute, func(context.Context) (ledger.Outcome, error) {
		clk.Advance(11 * time.Second)
		if n, err := l.Purge(ctx); err != nil || n != 1 {
			return ledger.Outcome{}, fmt.Errorf("purge of the expired claim: %d, %v", n, err)
		}
		return ledger.Outcome{Payload: []byte("late")}, nil
	})
	if err != nil || string(r.Payload) != "late" {
		t.Fatalf("Do = %q, %v; want the late outcome committed", r.Payload, err)
	}
	var calls atomic.Int64
	r, err = l.Do(ctx, kind, "s", time.Minute, okOp(&calls, "again"))
	if err != nil || string(r.Payload) != "late" || !r.Replayed || calls.Load() != 0 {
		t.Fatalf("retry = %q replayed=%v calls=%d, %v; want the late outcome replayed", r.Payload, r.Replayed, calls.Load(), err)
	}
}

// When another process took the claim over, the late holder must not
// overwrite it: its caller gets the payload with ErrClaimLost in the chain,
// and the taker's entry stays.
func TestDoLateHolderDoesNotOverwriteTaker(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	l := ledger.New(db, ledger.Options{Clock: clk, Lease: 10 * time.Second})
	ctx := context.Background()
	key := seal.Hash("s")
	r, err := l.Do(ctx, kind, "s", time.Minute, func(context.Context) (ledger.Outcome, error) {
		clk.Advance(11 * time.Second)
		now := clk.Now()
		if _, held, err := db.ClaimLedger(ctx, kind, key, "taker", now, now.Add(10*time.Second)); err != nil || !held {
			return ledger.Outcome{}, fmt.Errorf("takeover: %v %v", held, err)
		}
		return ledger.Outcome{Payload: []byte("late")}, nil
	})
	if !ledger.IsCommitError(err) || !errors.Is(err, flashauth.ErrClaimLost) || string(r.Payload) != "late" {
		t.Fatalf("Do = %q, %v; want the payload with a CommitError wrapping ErrClaimLost", r.Payload, err)
	}
	e, err := db.GetLedger(ctx, kind, key)
	if err != nil || e.ClaimID != "taker" || e.State != flashauth.LedgerPending {
		t.Fatalf("entry = %+v, %v; want the taker's claim untouched", e, err)
	}
}

func TestDoRefusesNonPositiveWindow(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{})
	var calls atomic.Int64
	if _, err := l.Do(context.Background(), kind, "s", 0, okOp(&calls, "x")); err == nil || calls.Load() != 0 {
		t.Fatalf("Do with a zero window: err=%v, op ran %d times", err, calls.Load())
	}
}

// Replay answers only from a committed, live outcome and never claims: a
// pending entry, an expired one or none at all give nothing, and leave the
// store as they found it.
func TestReplay(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	l := ledger.New(db, ledger.Options{Clock: clk})
	ctx := context.Background()

	if r, ok, err := l.Replay(ctx, kind, "secret-1"); ok || err != nil || r.Payload != nil {
		t.Fatalf("Replay of an unknown secret = %+v, %v, %v", r, ok, err)
	}
	if _, err := db.GetLedger(ctx, kind, seal.Hash("secret-1")); !errors.Is(err, flashauth.ErrNotFound) {
		t.Fatalf("Replay wrote an entry: %v", err)
	}

	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := l.Do(ctx, kind, "secret-1", time.Minute, func(context.Context) (ledger.Outcome, error) {
			close(entered)
			<-release
			return ledger.Outcome{Payload: []byte("one")}, nil
		})
		done <- err
	}()
	<-entered
	// A pending entry is waited for: the racing caller gets the holder's
	// answer once it is committed.
	waited := make(chan ledger.Result)
	go func() {
		r, ok, err := l.Replay(ctx, kind, "secret-1")
		if !ok || err != nil {
			t.Errorf("Replay of a pending entry = %v, %v; want its commit", ok, err)
		}
		waited <- r
	}()
	// Replay has seen the pending entry and is waiting on it.
	testkit.WaitUntil(t, "Replay waiting on the pending entry", func() bool { return testkit.Parked("/ledger.(*Ledger).Replay(") == 1 })
	select {
	case r := <-waited:
		t.Fatalf("Replay answered %q before the holder committed", r.Payload)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := <-waited; string(r.Payload) != "one" || !r.Replayed {
		t.Fatalf("Replay of a pending entry answered %+v, want the commit", r)
	}

	r, ok, err := l.Replay(ctx, kind, "secret-1")
	if !ok || err != nil || string(r.Payload) != "one" || !r.Replayed {
		t.Fatalf("Replay of a committed entry = %+v, %v, %v", r, ok, err)
	}
	clk.Advance(time.Minute)
	if _, ok, err := l.Replay(ctx, kind, "secret-1"); ok || err != nil {
		t.Fatalf("Replay after the window = %v, %v; want nothing", ok, err)
	}
}

// A BeforeClaim refusal is the answer, nothing is claimed or run, and the
// next caller tries afresh.
func TestDoBeforeClaimRefusalClaimsNothing(t *testing.T) {
	db := sqlitetest.Open(t)
	refuse := errors.New("slow down")
	var open atomic.Bool
	l := ledger.New(db, ledger.Options{Clock: newClock(), BeforeClaim: func(context.Context, string, []byte) error {
		if open.Load() {
			return nil
		}
		return refuse
	}})
	var calls atomic.Int64
	ctx := context.Background()
	if _, err := l.Do(ctx, kind, "s", time.Minute, okOp(&calls, "p")); !errors.Is(err, refuse) {
		t.Fatalf("Do = %v, want the BeforeClaim error", err)
	}
	if _, err := db.GetLedger(ctx, kind, seal.Hash("s")); !errors.Is(err, flashauth.ErrNotFound) || calls.Load() != 0 {
		t.Fatalf("after a refusal: entry lookup %v, op ran %d times; want no entry and no run", err, calls.Load())
	}
	open.Store(true)
	if r, err := l.Do(ctx, kind, "s", time.Minute, okOp(&calls, "p")); err != nil || string(r.Payload) != "p" || calls.Load() != 1 {
		t.Fatalf("after the gate opens: %q, %v, %d runs", r.Payload, err, calls.Load())
	}
}

// A pending entry whose operation fails is released: a Replay waiting on it
// then answers nothing, and never claims.
func TestReplayOfAReleasedEntry(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := l.Do(ctx, kind, "secret-2", time.Minute, func(context.Context) (ledger.Outcome, error) {
			close(entered)
			<-release
			return ledger.Outcome{}, errors.New("transient")
		})
		done <- err
	}()
	<-entered
	waited := make(chan bool)
	go func() {
		_, ok, err := l.Replay(ctx, kind, "secret-2")
		if err != nil {
			t.Error(err)
		}
		waited <- ok
	}()
	close(release)
	if err := <-done; err == nil {
		t.Fatal("Do of a failing op succeeded")
	}
	if ok := <-waited; ok {
		t.Fatal("Replay of a released entry answered")
	}
	if _, err := db.GetLedger(ctx, kind, seal.Hash("secret-2")); !errors.Is(err, flashauth.ErrNotFound) {
		t.Fatalf("an entry is left: %v", err)
	}
}

// refusedClaims signals each claim the store refuses (another holder's live
// entry).
type refusedClaims struct {
	flashauth.LedgerStore
	n       atomic.Int64
	refused chan struct{}
}

func (s *refusedClaims) ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, leaseUntil time.Time) (flashauth.LedgerEntry, bool, error) {
	e, held, err := s.LedgerStore.ClaimLedger(ctx, kind, key, claimID, now, leaseUntil)
	if err == nil && !held {
		s.n.Add(1)
		select {
		case s.refused <- struct{}{}:
		default:
		}
	}
	return e, held, err
}
