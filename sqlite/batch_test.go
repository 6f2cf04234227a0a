package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// holdWriter occupies the writer with a body that waits for the returned
// release, so that writes issued meanwhile queue up and run as one batch.
func holdWriter(t *testing.T, db *DB) (release func()) {
	t.Helper()
	gate, started := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.writeTx(context.Background(), "hold", func(ctx context.Context, tx *wtx) error {
			close(started)
			<-gate
			return nil
		})
	}()
	<-started
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Errorf("holding write: %v", err)
		}
	}
}

// waitQueued waits until n writes are queued behind the held writer. It
// polls a state, not a clock: the test cannot pass early.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	for db.w.q.Len() < n {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// execSQL changes the schema behind the store's back, through a connection
// of its own (the test's poison: triggers that only fire for some rows).
func execSQL(t *testing.T, db *DB, stmts ...string) {
	t.Helper()
	raw, err := sql.Open("sqlite", dsn(db.Path(), options{busyTimeout: 5 * time.Second}, false))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range stmts {
		if _, err := raw.ExecContext(t.Context(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// claimKeys claims one ledger key per claim id and returns the keys.
func claimKeys(t *testing.T, db *DB, now time.Time, claimIDs []string) [][]byte {
	t.Helper()
	keys := make([][]byte, len(claimIDs))
	for i, id := range claimIDs {
		keys[i] = seal.Hash("secret of " + id)
		if _, held, err := db.ClaimLedger(t.Context(), flashauth.LedgerGitHubRefresh, keys[i], id, now, now.Add(time.Minute)); err != nil || !held {
			t.Fatalf("claim %s: held=%v, %v", id, held, err)
		}
	}
	return keys
}

// completeBatch completes every claim concurrently while the writer is held,
// so that all of them land in one batch, and returns each call's error and
// how many transactions committed after the held one.
func completeBatch(t *testing.T, db *DB, now time.Time, claimIDs []string, keys [][]byte) ([]error, int64) {
	t.Helper()
	release := holdWriter(t, db)
	before := db.w.batches.Load()
	errs := make([]error, len(claimIDs))
	var wg sync.WaitGroup
	for i, id := range claimIDs {
		wg.Go(func() {
			errs[i] = db.CompleteLedger(context.Background(), flashauth.LedgerGitHubRefresh, keys[i], id,
				[]byte("sealed "+id), now.Add(time.Minute), []flashauth.Lineage{{TokenHash: seal.Hash("lineage of " + id), CreatedAt: now}})
		})
	}
	waitQueued(t, db, len(claimIDs))
	release()
	wg.Wait()
	return errs, db.w.batches.Load() - before - 1
}

// checkOutcomes requires the poisoned claim to have failed and stay
// pending (never done: nothing a retry could replay), and every other
// claim to have succeeded and be done, with its lineage.
func checkOutcomes(t *testing.T, db *DB, claimIDs []string, keys [][]byte, errs []error, poisoned string) {
	t.Helper()
	for i, id := range claimIDs {
		e, err := db.GetLedger(t.Context(), flashauth.LedgerGitHubRefresh, keys[i])
		if err != nil {
			t.Fatalf("%s: get: %v", id, err)
		}
		_, lerr := db.GetLineage(t.Context(), seal.Hash("lineage of "+id))
		if id == poisoned {
			if errs[i] == nil || e.State != flashauth.LedgerPending || !errors.Is(lerr, flashauth.ErrNotFound) {
				t.Errorf("%s: err=%v state=%v lineage err=%v; want an error, the claim still pending, no lineage", id, errs[i], e.State, lerr)
			}
			continue
		}
		if errs[i] != nil || e.State != flashauth.LedgerDone || string(e.Sealed) != "sealed "+id || lerr != nil {
			t.Errorf("%s: err=%v state=%v sealed=%q lineage err=%v; want it committed", id, errs[i], e.State, e.Sealed, lerr)
		}
	}
}

func batchIDs(n int, poisoned string) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("claim-%02d", i)
	}
	ids[n/2] = poisoned
	return ids
}

// A write that fails inside a batch (here a trigger that aborts its
// statement) is rolled back to its savepoint and fails alone; the others in
// the same transaction commit.
func TestGroupCommitOneFailingWriteDoesNotFailTheBatch(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "batch.db"))
	execSQL(t, db, `CREATE TRIGGER poison BEFORE UPDATE ON lineage
		WHEN NEW.claim_id = 'poisoned' AND NEW.state = 2
		BEGIN SELECT RAISE(ABORT, 'poisoned write'); END`)
	now := time.UnixMilli(1764120000000)
	ids := batchIDs(12, "poisoned")
	keys := claimKeys(t, db, now, ids)
	errs, commits := completeBatch(t, db, now, ids, keys)
	checkOutcomes(t, db, ids, keys, errs, "poisoned")
	if commits != 1 {
		t.Errorf("%d transactions committed the %d queued writes, want 1", commits, len(ids))
	}
}

// When the batch's COMMIT itself fails (here a deferred foreign key that one
// write violates, which SQLite checks only at COMMIT), no caller is told its
// write succeeded: the whole transaction is void, every write is run again
// on its own, the culprit fails and the others commit. The failed COMMIT
// leaves the writer usable.
func TestGroupCommitFailedCommitAnswersNobodyBeforeRetrying(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "batch.db"))
	execSQL(t, db,
		`CREATE TABLE poison_parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE poison_child (parent INTEGER REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		`CREATE TRIGGER poison AFTER UPDATE ON lineage
			WHEN NEW.claim_id = 'poisoned' AND NEW.state = 2
			BEGIN INSERT INTO poison_child VALUES (42); END`)
	now := time.UnixMilli(1764120000000)
	ids := batchIDs(12, "poisoned")
	keys := claimKeys(t, db, now, ids)
	errs, commits := completeBatch(t, db, now, ids, keys)
	checkOutcomes(t, db, ids, keys, errs, "poisoned")
	if want := int64(len(ids) - 1); commits != want {
		t.Errorf("%d transactions committed, want %d: the batch failed, then each write but the culprit alone", commits, want)
	}
	var se interface{ Code() int }
	if i := len(ids) / 2; !errors.As(errs[i], &se) {
		t.Errorf("poisoned write: %v; want the SQLite error of its commit", errs[i])
	}
	if err := db.AppendAudit(t.Context(), flashauth.AuditEvent{Type: "after", Outcome: "ok"}); err != nil {
		t.Fatalf("write after a failed commit: %v", err)
	}
}

// A panic in one body of a batch is rolled back and re-raised on its
// caller's goroutine; the other bodies of the batch commit.
func TestGroupCommitPanicFailsAlone(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "batch.db"))
	release := holdWriter(t, db)
	var wg sync.WaitGroup
	panicked := make(chan any, 1)
	wg.Go(func() {
		defer func() { panicked <- recover() }()
		_ = db.writeTx(context.Background(), "panicking", func(ctx context.Context, tx *wtx) error {
			if _, err := tx.exec(ctx, qAuditInsert, 1, "panicked", "x", "", "", "", "", ""); err != nil {
				return err
			}
			panic("boom")
		})
	})
	waitQueued(t, db, 1)
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() {
			errs[i] = db.AppendAudit(context.Background(), flashauth.AuditEvent{Type: "ok", Outcome: "ok"})
		})
	}
	waitQueued(t, db, 1+len(errs))
	release()
	wg.Wait()
	if p := <-panicked; p != "boom" {
		t.Fatalf("recovered %v, want the body's panic", p)
	}
	events, err := db.ListAudit(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Type != "ok" {
			t.Errorf("stored %q: the panicking body was not rolled back", e.Type)
		}
	}
	if len(events) != len(errs) {
		t.Errorf("%d events stored, want %d: %v", len(events), len(errs), errs)
	}
}

// Close drains: writes queued when Close is called commit and their callers
// get nil; writes after Close fail as unavailable.
func TestCloseFlushesQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "batch.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, db)
	errs := make([]error, 20)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			errs[i] = db.AppendAudit(context.Background(), flashauth.AuditEvent{Type: "queued", Outcome: fmt.Sprint(i)})
		})
	}
	waitQueued(t, db, len(errs))
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	for !db.closed.Load() {
		runtime.Gosched()
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("queued write %d: %v", i, err)
		}
	}
	if err := db.AppendAudit(t.Context(), flashauth.AuditEvent{Type: "late"}); flashauth.ErrorCode(err) != flashauth.CodeStoreUnavailable {
		t.Errorf("write after Close: %v, want STORE_UNAVAILABLE", err)
	}
	db2 := openInternal(t, path)
	events, err := db2.ListAudit(t.Context(), 100)
	if err != nil || len(events) != len(errs) {
		t.Fatalf("%d events after reopening, %v; want the %d queued before Close", len(events), err, len(errs))
	}
}

// A caller whose context ends while its write is still queued gets the
// context's error, and its write never runs.
func TestAbandonedQueuedWriteNeverRuns(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "batch.db"))
	release := holdWriter(t, db)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- db.AppendAudit(ctx, flashauth.AuditEvent{Type: "abandoned"}) }()
	waitQueued(t, db, 1)
	cancel()
	err := <-done
	release()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned write: %v, want context.Canceled", err)
	}
	if err := db.AppendAudit(t.Context(), flashauth.AuditEvent{Type: "after"}); err != nil {
		t.Fatal(err)
	}
	events, err := db.ListAudit(t.Context(), 10)
	if err != nil || len(events) != 1 || events[0].Type != "after" {
		t.Fatalf("events = %+v, %v; want only the later write", events, err)
	}
}

// A batch runs without savepoints until a body fails; then its transaction
// is rolled back and the batch runs again with a savepoint per body. The
// healthy writes before and after the failing one are committed exactly
// once (no duplicate rows from the first attempt), in one transaction, and
// the failing body gets its own error with its row rolled back.
func TestGroupCommitFastPathFallsBackOnFailure(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "batch.db"))
	release := holdWriter(t, db)
	before := db.w.batches.Load()
	refused := errors.New("refused")
	const n = 7
	errs := make([]error, n)
	runs := make([]atomic.Int32, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = db.writeTx(context.Background(), "test", func(ctx context.Context, tx *wtx) error {
				runs[i].Add(1)
				typ := fmt.Sprintf("write %d", i)
				if i == n/2 {
					typ = "failing"
				}
				if _, err := tx.exec(ctx, qAuditInsert, 1, typ, "ok", "", "", "", "", ""); err != nil {
					return err
				}
				if i == n/2 {
					return refused
				}
				return nil
			})
		})
		waitQueued(t, db, i+1) // queue in order: the failing body is in the middle
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if want := error(nil); i == n/2 {
			if !errors.Is(err, refused) {
				t.Errorf("failing write: %v, want its own error", err)
			}
		} else if err != want {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if r := runs[n-1].Load(); r != 1 {
		t.Errorf("the last body ran %d times, want once: the batch did not stop at the failure", r)
	}
	if r := runs[0].Load(); r != 2 {
		t.Errorf("the first body ran %d times, want twice (fast path, then with savepoints)", r)
	}
	if c := db.w.batches.Load() - before - 1; c != 1 {
		t.Errorf("%d transactions committed the batch, want 1", c)
	}
	events, err := db.ListAudit(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range events {
		seen[e.Type]++
	}
	for i := range n {
		typ, want := fmt.Sprintf("write %d", i), 1
		if i == n/2 {
			typ, want = "failing", 0
		}
		if seen[typ] != want {
			t.Errorf("%q stored %d times, want %d (all: %v)", typ, seen[typ], want, seen)
		}
	}
	if len(events) != n-1 {
		t.Errorf("%d events stored, want %d", len(events), n-1)
	}
}

// The claim decides liveness in SQL, in milliseconds, while callers pass a
// now with nanoseconds: an entry whose lease or expiry is half a
// millisecond after now still blocks, one at now or before does not.
func TestClaimLedgerLivenessBelowAMillisecond(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "claim.db"))
	ctx := t.Context()
	base := time.UnixMilli(1764120000000)
	half := 500 * time.Microsecond
	for i, tc := range []struct {
		done bool
		// until is the entry's lease (pending) or expiry (done), from base.
		until time.Duration
		now   time.Duration // the second claim's now, from base
		live  bool
	}{
		{false, time.Millisecond, half, true},
		{false, time.Millisecond, time.Millisecond, false},
		{false, time.Millisecond, time.Millisecond + half, false},
		{false, time.Millisecond, -half, true},
		{true, time.Millisecond, half, true},
		{true, time.Millisecond, time.Millisecond, false},
		{true, time.Millisecond, time.Millisecond + half, false},
		{true, time.Millisecond, -half, true},
	} {
		key := seal.Hash(fmt.Sprint("liveness ", i))
		if _, held, err := db.ClaimLedger(ctx, flashauth.LedgerGitHubRefresh, key, "first", base, base.Add(tc.until)); err != nil || !held {
			t.Fatalf("case %d: first claim: held=%v, %v", i, held, err)
		}
		if tc.done {
			if err := db.CompleteLedger(ctx, flashauth.LedgerGitHubRefresh, key, "first", []byte("sealed"), base.Add(tc.until), nil); err != nil {
				t.Fatalf("case %d: complete: %v", i, err)
			}
		}
		now := base.Add(tc.now)
		e, held, err := db.ClaimLedger(ctx, flashauth.LedgerGitHubRefresh, key, "second", now, now.Add(time.Minute))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if held == tc.live || (tc.live && e.ClaimID != "first") {
			t.Errorf("case %d (done=%v, until %v, now %v): second claim held=%v entry claim %q; want live=%v",
				i, tc.done, tc.until, tc.now, held, e.ClaimID, tc.live)
		}
	}
}
