package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres"
	"github.com/flashbacktech/flashauth/seal"
)

// Group commit (batch.go): concurrent claims and completions share one
// transaction. The tests line calls up into one batch deterministically: a
// first call is held inside the database on a row lock that the test owns,
// the writer waits for it, and the calls made meanwhile queue up behind it
// and run together once the lock is released.

const kindRefresh = flashauth.LedgerGitHubRefresh

// batchStore opens a store whose connections are recognisable in
// pg_stat_activity, and returns it with its URL and application name.
func batchStore(t *testing.T) (db *postgres.DB, url, app string) {
	t.Helper()
	url = testURL(t)
	app = schemaOf(t, url)
	// Enough connections for the calls the tests hold on locks, one per
	// reader or writer and one per read on its caller.
	return open(t, withParam(t, url, "application_name", app), postgres.WithMaxConns(16)), url, app
}

// lockingTx begins a transaction on a connection of the test's own, to
// take locks in that releaseOnce(t, ctx, conn, tx) frees.
func lockingTx(t *testing.T, url string) (context.Context, *pgx.Conn, pgx.Tx) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("lock connect: %v", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	return ctx, conn, tx
}

// rowLock holds a lock on one ledger row from a connection of the test's
// own until release is called.
func rowLock(t *testing.T, url string, key []byte) (release func()) {
	t.Helper()
	ctx, conn, tx := lockingTx(t, url)
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM ledger WHERE kind = $1 AND key = $2 FOR UPDATE) l`,
		kindRefresh, key).Scan(&n); err != nil || n != 1 {
		t.Fatalf("lock row: %d rows, %v", n, err)
	}
	return releaseOnce(t, ctx, conn, tx)
}

// waitLockWaits waits until n connections of app wait for a lock. It polls
// a state, not a clock: it cannot return early.
func waitLockWaits(t *testing.T, url, app string, n int) {
	t.Helper()
	for {
		var got int
		admin(t, url, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
			[]any{app}, &got)
		if got == n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitQueued waits until claims and completions calls are queued.
func waitQueued(t *testing.T, db *postgres.DB, claims, completions int) {
	t.Helper()
	for {
		c, d := db.Queued()
		if c == claims && d == completions {
			return
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

type claimResult struct {
	entry flashauth.LedgerEntry
	held  bool
	err   error
}

// claimAsync starts a ClaimLedger and returns the channel of its result.
func claimAsync(db *postgres.DB, key []byte, claimID string) <-chan claimResult {
	ch := make(chan claimResult, 1)
	go func() {
		e, held, err := db.ClaimLedger(context.Background(), kindRefresh, key, claimID, base, base.Add(time.Minute))
		ch <- claimResult{e, held, err}
	}()
	return ch
}

// outcome is what a call started by async returned.
type outcome[T any] struct {
	v   T
	err error
}

// async runs f on a goroutine of its own and returns the channel of its
// outcome.
func async[T any](f func(context.Context) (T, error)) <-chan outcome[T] {
	ch := make(chan outcome[T], 1)
	go func() {
		v, err := f(context.Background())
		ch <- outcome[T]{v, err}
	}()
	return ch
}

// completeAsync starts a CompleteLedger and returns the channel of its error.
func completeAsync(db *postgres.DB, key []byte, claimID string, lineage ...flashauth.Lineage) <-chan error {
	ch := make(chan error, 1)
	go func() {
		ch <- db.CompleteLedger(context.Background(), kindRefresh, key, claimID, []byte("sealed "+claimID), base.Add(time.Minute), lineage)
	}()
	return ch
}

// holdClaims occupies every claim writer: each runs a claim of a row the
// test locked. release frees the rows and returns once those claims did.
func holdClaims(t *testing.T, db *postgres.DB, url, app string) (release func()) {
	t.Helper()
	return holdWriters(t, db, url, app, "claim",
		func(key []byte, i int) <-chan claimResult { return claimAsync(db, key, fmt.Sprint("blocked", i)) },
		func() int64 { n, _ := db.Batches(); return n },
		func() int { n, _ := db.Queued(); return n },
		func(r claimResult) error { return r.err })
}

// holdCompletions occupies every completion writer the same way, each with
// the completion of its own held claim.
func holdCompletions(t *testing.T, db *postgres.DB, url, app string) (release func()) {
	t.Helper()
	return holdWriters(t, db, url, app, "completion",
		func(key []byte, _ int) <-chan error { return completeAsync(db, key, "holder") },
		func() int64 { _, n := db.Batches(); return n },
		func() int { _, n := db.Queued(); return n },
		func(err error) error { return err })
}

// holdWriters occupies every writer of one kind (what): per writer, it
// claims a row, locks it, and starts one call on it with start, one at a
// time so that each lands in a batch (and a writer) of its own, as batches
// (the kind's batch count) shows. release frees the rows one by one, the
// next only once the writer freed before it took every call queued
// (queued, the kind's queue length, is 0), so that the queue goes to one
// writer as one batch rather than to writers draining it at once; it
// returns once the held calls did, failing the test on a result failed
// does not accept.
func holdWriters[R any](t *testing.T, db *postgres.DB, url, app, what string,
	start func(key []byte, i int) <-chan R, batches func() int64, queued func() int, failed func(R) error) (release func()) {
	t.Helper()
	var (
		unlocks []func()
		chans   []<-chan R
	)
	for i := range postgres.Writers {
		key := seal.Hash(fmt.Sprint("held ", what, " ", i, " ", t.Name()))
		if _, _, err := db.ClaimLedger(t.Context(), kindRefresh, key, "holder", base, base.Add(time.Minute)); err != nil {
			t.Fatalf("ClaimLedger: %v", err)
		}
		unlocks = append(unlocks, rowLock(t, url, key))
		before := batches()
		chans = append(chans, start(key, i))
		waitLockWaits(t, url, app, i+1)
		if after := batches(); after != before+1 {
			t.Fatalf("%s batches %d -> %d, want the held %s to be one", what, before, after, what)
		}
	}
	return func() {
		for i, unlock := range unlocks {
			unlock()
			if i < len(unlocks)-1 {
				for queued() > 0 {
					runtime.Gosched()
					time.Sleep(time.Millisecond)
				}
			}
		}
		for _, ch := range chans {
			if err := failed(<-ch); err != nil {
				t.Fatalf("held %s: %v", what, err)
			}
		}
	}
}

func keys(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = seal.Hash(fmt.Sprint(prefix, i))
	}
	return out
}

// A batch's callers are answered only once its transaction committed: while
// the batch waits inside the database, nobody in it has an answer.
func TestBatchAnswersAfterCommit(t *testing.T) {
	db, url, app := batchStore(t)
	ks := keys("answer", 8)
	// The batch will also claim a row the test keeps locked: it stalls
	// inside its transaction, before the commit.
	stall := seal.Hash("stall")
	if _, _, err := db.ClaimLedger(t.Context(), kindRefresh, stall, "owner", base, base.Add(time.Minute)); err != nil {
		t.Fatalf("ClaimLedger: %v", err)
	}
	releaseStall := rowLock(t, url, stall)

	releaseHold := holdClaims(t, db, url, app)
	var chans []<-chan claimResult
	for i, k := range ks {
		chans = append(chans, claimAsync(db, k, fmt.Sprint("c", i)))
	}
	chans = append(chans, claimAsync(db, stall, "late"))
	waitQueued(t, db, len(chans), 0)
	before, _ := db.Batches()
	releaseHold()
	// The writer takes the queue as one batch, which stalls on the lock.
	waitLockWaits(t, url, app, 1)
	if after, _ := db.Batches(); after != before+1 {
		t.Fatalf("claim batches %d -> %d, want the queue as one batch", before, after)
	}
	for i, ch := range chans {
		select {
		case r := <-ch:
			t.Fatalf("caller %d answered (%+v) while its batch was not committed", i, r)
		default:
		}
	}
	var rows int
	admin(t, url, `SELECT count(*) FROM ledger WHERE claim_id LIKE 'c%'`, nil, &rows)
	if rows != 0 {
		t.Fatalf("%d claims of the open batch visible to others, want 0", rows)
	}

	releaseStall()
	for i, ch := range chans {
		r := <-ch
		if r.err != nil {
			t.Fatalf("caller %d: %v", i, r.err)
		}
		if i < len(ks) && !r.held {
			t.Errorf("caller %d does not hold its fresh key", i)
		}
		if i == len(ks) && (r.held || r.entry.ClaimID != "owner") {
			t.Errorf("claim of a live entry: held %v, claim %q, want the owner's", r.held, r.entry.ClaimID)
		}
	}
	admin(t, url, `SELECT count(*) FROM ledger WHERE claim_id LIKE 'c%'`, nil, &rows)
	if rows != len(ks) {
		t.Fatalf("%d claims stored after the commit, want %d", rows, len(ks))
	}
}

// One call that fails does not fail the others of its batch: neither a
// statement error (a CHECK violation) nor a commit that fails (a deferred
// constraint trigger refusing one row at COMMIT, after every statement
// succeeded). The failing call gets an error and stores nothing.
func TestBatchOneFailureFailsAlone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		badKey []byte
		setup  string
	}{
		{"statement error", seal.Hash("bad")[:16], ""},
		{"commit error", seal.Hash("bad"), `
			CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF NEW.claim_id = 'bad' THEN RAISE EXCEPTION 'poisoned claim'; END IF;
				RETURN NULL;
			END $$;
			CREATE CONSTRAINT TRIGGER refuse_poison AFTER INSERT OR UPDATE ON ledger
				DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_poison();`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, url, app := batchStore(t)
			if tc.setup != "" {
				admin(t, url, tc.setup, nil)
			}
			ks := keys("good", 6)
			release := holdClaims(t, db, url, app)
			var chans []<-chan claimResult
			for i, k := range ks {
				chans = append(chans, claimAsync(db, k, fmt.Sprint("c", i)))
			}
			bad := claimAsync(db, tc.badKey, "bad")
			waitQueued(t, db, len(ks)+1, 0)
			before, _ := db.Batches()
			release()
			if r := <-bad; r.err == nil || r.held {
				t.Errorf("bad claim: held %v, err %v, want an error", r.held, r.err)
			}
			for i, ch := range chans {
				if r := <-ch; r.err != nil || !r.held {
					t.Errorf("good claim %d: held %v, err %v", i, r.held, r.err)
				}
			}
			if after, _ := db.Batches(); after != before+1 {
				t.Errorf("claim batches %d -> %d, want one", before, after)
			}
			if fb, _ := db.Fallbacks(); fb != 1 {
				t.Errorf("%d batches fell back to one by one, want 1", fb)
			}
			var rows int
			admin(t, url, `SELECT count(*) FROM ledger WHERE claim_id LIKE 'c%'`, nil, &rows)
			if rows != len(ks) {
				t.Errorf("%d good claims stored, want %d", rows, len(ks))
			}
			admin(t, url, `SELECT count(*) FROM ledger WHERE claim_id = 'bad'`, nil, &rows)
			if rows != 0 {
				t.Errorf("the bad claim was stored")
			}
		})
	}
}

// A completion whose lineage violates a constraint fails alone; the other
// completions of its batch commit with their lineage.
func TestBatchCompletionFailsAlone(t *testing.T) {
	db, url, app := batchStore(t)
	ks := keys("complete", 5)
	for i, k := range ks {
		if _, held, err := db.ClaimLedger(t.Context(), kindRefresh, k, fmt.Sprint("c", i), base, base.Add(time.Minute)); err != nil || !held {
			t.Fatalf("ClaimLedger %d: held %v, %v", i, held, err)
		}
	}
	release := holdCompletions(t, db, url, app)
	var chans []<-chan error
	for i, k := range ks {
		l := flashauth.Lineage{TokenHash: seal.Hash(fmt.Sprint("child", i)), ParentHash: k, UserID: "u", CreatedAt: base}
		if i == 2 {
			l.TokenHash = nil // NOT NULL violation
		}
		chans = append(chans, completeAsync(db, k, fmt.Sprint("c", i), l))
	}
	waitQueued(t, db, 0, len(ks))
	_, before := db.Batches()
	release()
	defer func() {
		if _, after := db.Batches(); after != before+1 {
			t.Errorf("completion batches %d -> %d, want one", before, after)
		}
		if _, fb := db.Fallbacks(); fb != 1 {
			t.Errorf("%d completion batches fell back to one by one, want 1", fb)
		}
	}()
	for i, ch := range chans {
		err := <-ch
		e, gerr := db.GetLedger(t.Context(), kindRefresh, ks[i])
		if gerr != nil {
			t.Fatalf("GetLedger %d: %v", i, gerr)
		}
		_, lerr := db.GetLineage(t.Context(), seal.Hash(fmt.Sprint("child", i)))
		if i == 2 {
			if err == nil || e.State != flashauth.LedgerPending || !errors.Is(lerr, flashauth.ErrNotFound) {
				t.Errorf("bad completion: err %v, state %d, lineage %v; want an error, pending, no lineage", err, e.State, lerr)
			}
			continue
		}
		if err != nil || e.State != flashauth.LedgerDone || string(e.Sealed) != fmt.Sprint("sealed c", i) || lerr != nil {
			t.Errorf("completion %d: err %v, state %d, sealed %q, lineage %v", i, err, e.State, e.Sealed, lerr)
		}
	}
}

// Calls on one key in one batch behave as the same calls one after the
// other, in the order they were queued.
func TestBatchDuplicateKeysAreSequential(t *testing.T) {
	db, url, app := batchStore(t)
	key, other := seal.Hash("dup"), seal.Hash("dup other")

	release := holdClaims(t, db, url, app)
	// Queued one at a time, so the queue's order is known.
	ids := []string{"first", "second", "first", "third"}
	var chans []<-chan claimResult
	for i, id := range ids {
		chans = append(chans, claimAsync(db, key, id))
		waitQueued(t, db, i+1, 0)
	}
	chans = append(chans, claimAsync(db, other, "alone"))
	waitQueued(t, db, len(ids)+1, 0)
	before, _ := db.Batches()
	release()
	wantHeld := []bool{true, false, true, false, true}
	for i, ch := range chans {
		r := <-ch
		if r.err != nil {
			t.Fatalf("claim %d: %v", i, r.err)
		}
		want := "first"
		if i == len(ids) {
			want = "alone"
		}
		if r.held != wantHeld[i] || r.entry.ClaimID != want || r.entry.State != flashauth.LedgerPending {
			t.Errorf("claim %d: held %v, entry %q state %d; want held %v, %q pending", i, r.held, r.entry.ClaimID, r.entry.State, wantHeld[i], want)
		}
	}
	if after, _ := db.Batches(); after != before+1 {
		t.Errorf("claim batches %d -> %d, want one", before, after)
	}
	if fb, _ := db.Fallbacks(); fb != 0 {
		t.Errorf("%d claim batches failed and fell back, want none: duplicates need no retry", fb)
	}

	// Two completions of the same claim: the first completes; the second
	// finds it done (ErrClaimLost) and, exactly as a second call alone
	// would, still upserts its lineage, after the first's. A completion by
	// a claim that does not hold the entry changes nothing.
	lin := func(user string) flashauth.Lineage {
		return flashauth.Lineage{TokenHash: seal.Hash("dup child"), ParentHash: key, UserID: user, CreatedAt: base}
	}
	releaseC := holdCompletions(t, db, url, app)
	var errs []<-chan error
	for i, c := range []struct {
		id   string
		user string
	}{{"first", "u1"}, {"first", "u2"}, {"second", "u3"}} {
		errs = append(errs, completeAsync(db, key, c.id, lin(c.user)))
		waitQueued(t, db, 0, i+1)
	}
	_, beforeC := db.Batches()
	releaseC()
	if err := <-errs[0]; err != nil {
		t.Errorf("first completion: %v", err)
	}
	for i := 1; i < 3; i++ {
		if err := <-errs[i]; !errors.Is(err, flashauth.ErrClaimLost) {
			t.Errorf("completion %d: %v, want ErrClaimLost", i, err)
		}
	}
	if _, afterC := db.Batches(); afterC != beforeC+1 {
		t.Errorf("completion batches %d -> %d, want one", beforeC, afterC)
	}
	if _, fb := db.Fallbacks(); fb != 0 {
		t.Errorf("%d completion batches failed and fell back, want none", fb)
	}
	e, err := db.GetLedger(t.Context(), kindRefresh, key)
	if err != nil || e.State != flashauth.LedgerDone || string(e.Sealed) != "sealed first" {
		t.Errorf("entry: %+v, %v; want done by the first completion", e, err)
	}
	l, err := db.GetLineage(t.Context(), seal.Hash("dup child"))
	if err != nil || l.UserID != "u2" {
		t.Errorf("lineage: %+v, %v; want the second upsert's (u2)", l, err)
	}
}

// Close lets every queued call commit before it closes the pool; calls after
// it are refused as unavailable.
func TestCloseFlushesQueuedBatch(t *testing.T) {
	db, url, app := batchStore(t)
	ks := keys("flush", 6)
	release := holdClaims(t, db, url, app)
	var chans []<-chan claimResult
	for i, k := range ks {
		chans = append(chans, claimAsync(db, k, fmt.Sprint("c", i)))
	}
	waitQueued(t, db, len(ks), 0)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	for !db.ClaimsClosed() {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	_, _, err := db.ClaimLedger(t.Context(), kindRefresh, seal.Hash("after close"), "late", base, base.Add(time.Minute))
	wantUnavailable(t, "ClaimLedger after Close", err)
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i, ch := range chans {
		if r := <-ch; r.err != nil || !r.held {
			t.Errorf("queued claim %d: held %v, err %v", i, r.held, r.err)
		}
	}
	var rows int
	admin(t, url, `SELECT count(*) FROM ledger WHERE claim_id LIKE 'c%'`, nil, &rows)
	if rows != len(ks) {
		t.Errorf("%d queued claims stored, want %d", rows, len(ks))
	}
}

// PurgeLedger does not wait for a dead row that another transaction has
// locked (a claim replacing it, possibly in a batch that locks many rows in
// key order): it purges the others and leaves that one to the next purge.
func TestPurgeSkipsLockedRows(t *testing.T) {
	db, url, _ := batchStore(t)
	ks := keys("dead", 3)
	for i, k := range ks {
		// Leases that are over by "now" below: dead entries.
		if _, _, err := db.ClaimLedger(t.Context(), kindRefresh, k, fmt.Sprint("c", i), base, base.Add(time.Second)); err != nil {
			t.Fatalf("ClaimLedger: %v", err)
		}
	}
	release := rowLock(t, url, ks[1])
	n, err := db.PurgeLedger(t.Context(), base.Add(time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("PurgeLedger with a locked dead row: %d, %v; want the 2 unlocked ones", n, err)
	}
	release()
	n, err = db.PurgeLedger(t.Context(), base.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("PurgeLedger after the lock: %d, %v; want the last one", n, err)
	}
}

// tableLock holds an ACCESS EXCLUSIVE lock on table, which stalls every
// read of it, until release is called.
func tableLock(t *testing.T, url, table string) (release func()) {
	t.Helper()
	ctx, conn, tx := lockingTx(t, url)
	if _, err := tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{table}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatalf("lock table: %v", err)
	}
	return releaseOnce(t, ctx, conn, tx)
}

// Concurrent GetLedger and GetLineage calls share one statement, and each
// gets its own row, or ErrNotFound, exactly as alone.
func TestBatchReads(t *testing.T) {
	db, url, app := batchStore(t)
	ks := keys("read", 3)
	for i, k := range ks {
		if _, _, err := db.ClaimLedger(t.Context(), kindRefresh, k, fmt.Sprint("c", i), base, base.Add(time.Minute)); err != nil {
			t.Fatalf("ClaimLedger: %v", err)
		}
		l := flashauth.Lineage{TokenHash: k, UserID: fmt.Sprint("u", i), CreatedAt: base}
		if err := db.PutLineage(t.Context(), l); err != nil {
			t.Fatalf("PutLineage: %v", err)
		}
	}
	missing := seal.Hash("missing")
	want := []struct {
		key []byte
		id  int // -1: not found
	}{{ks[0], 0}, {ks[1], 1}, {missing, -1}, {ks[2], 2}, {ks[1], 1}}

	type ledgerResult = outcome[flashauth.LedgerEntry]
	type lineageResult = outcome[flashauth.Lineage]
	getLedger := func(key []byte) <-chan ledgerResult {
		return async(func(ctx context.Context) (flashauth.LedgerEntry, error) { return db.GetLedger(ctx, kindRefresh, key) })
	}
	getLineage := func(hash []byte) <-chan lineageResult {
		return async(func(ctx context.Context) (flashauth.Lineage, error) { return db.GetLineage(ctx, hash) })
	}

	// Every reader of each table stalls on a table lock, one call each;
	// the calls made meanwhile queue up behind them.
	releaseLedger := tableLock(t, url, "ledger")
	releaseLineage := tableLock(t, url, "lineage")
	var heldLedger []<-chan ledgerResult
	var heldLineage []<-chan lineageResult
	// The first read of each kind runs on its caller (no other is in
	// flight); the next ones each occupy a reader.
	for i := range postgres.Writers + 1 {
		heldLedger = append(heldLedger, getLedger(ks[0]))
		waitLockWaits(t, url, app, 2*i+1)
		heldLineage = append(heldLineage, getLineage(ks[0]))
		waitLockWaits(t, url, app, 2*i+2)
	}
	var ledgerChans []<-chan ledgerResult
	var lineageChans []<-chan lineageResult
	for _, w := range want {
		ledgerChans = append(ledgerChans, getLedger(w.key))
		lineageChans = append(lineageChans, getLineage(w.key))
	}
	for {
		a, b := db.QueuedReads()
		if a == len(want) && b == len(want) {
			break
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	beforeLedger, beforeLineage := db.ReadBatches()
	releaseLedger()
	releaseLineage()
	for i := range postgres.Writers + 1 {
		if r := <-heldLedger[i]; r.err != nil {
			t.Fatalf("held GetLedger: %v", r.err)
		}
		if r := <-heldLineage[i]; r.err != nil {
			t.Fatalf("held GetLineage: %v", r.err)
		}
	}
	for i, w := range want {
		lr, nr := <-ledgerChans[i], <-lineageChans[i]
		if w.id < 0 {
			if !errors.Is(lr.err, flashauth.ErrNotFound) || !errors.Is(nr.err, flashauth.ErrNotFound) {
				t.Errorf("read %d of a missing key: %v, %v; want ErrNotFound", i, lr.err, nr.err)
			}
			continue
		}
		if lr.err != nil || lr.v.ClaimID != fmt.Sprint("c", w.id) || string(lr.v.Key) != string(w.key) {
			t.Errorf("GetLedger %d: %+v, %v; want claim c%d", i, lr.v, lr.err, w.id)
		}
		if nr.err != nil || nr.v.UserID != fmt.Sprint("u", w.id) || string(nr.v.TokenHash) != string(w.key) {
			t.Errorf("GetLineage %d: %+v, %v; want user u%d", i, nr.v, nr.err, w.id)
		}
	}
	// The readers freed by one lock release drain the queue at once, so it
	// may go out in up to one batch per reader; one read per batch would
	// be len(want).
	afterLedger, afterLineage := db.ReadBatches()
	if n, m := afterLedger-beforeLedger, afterLineage-beforeLineage; n < 1 || n > postgres.Writers || m < 1 || m > postgres.Writers {
		t.Errorf("read batches %d -> %d and %d -> %d, want 1 to %d each for %d reads", beforeLedger, afterLedger, beforeLineage, afterLineage, postgres.Writers, len(want))
	}
}

// A batch is run again call by call only when the server refused it; when
// the database is out of reach or the outcome is unknown, every call gets
// the error at once (N more attempts would only make each wait longer).
func TestBatchRetriesOnlyRefusals(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "23514"}, true}, // check violation
		{&pgconn.PgError{Code: "40P01"}, true}, // deadlock victim
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "23502"}), true},
		{&pgconn.PgError{Code: "57P01"}, false}, // admin shutdown
		{&pgconn.PgError{Code: "08006"}, false}, // connection failure
		{&pgconn.PgError{Code: "53300"}, false}, // too many connections
		{context.DeadlineExceeded, false},
		{&pgconn.ConnectError{}, false},
		{errors.New("broken pipe"), false},
	} {
		if got := postgres.RolledBack(tc.err); got != tc.want {
			t.Errorf("RolledBack(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// releaseOnce returns a func that commits tx (ending the locks it holds) and
// closes conn, once, whether the test calls it or its cleanup does.
func releaseOnce(t *testing.T, ctx context.Context, conn *pgx.Conn, tx pgx.Tx) func() {
	t.Helper()
	var once sync.Once
	release := func() {
		once.Do(func() {
			if err := tx.Commit(ctx); err != nil {
				t.Errorf("release lock: %v", err)
			}
			conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// Concurrent GetLineageLedger calls share one statement, and each gets what
// it would have alone: both records, either, or neither.
func TestBatchLineageLedgerReads(t *testing.T) {
	db, url, app := batchStore(t)
	ks := keys("both", 3)
	for i, k := range ks {
		if i != 1 { // the second has lineage only
			if _, _, err := db.ClaimLedger(t.Context(), kindRefresh, k, fmt.Sprint("c", i), base, base.Add(time.Minute)); err != nil {
				t.Fatalf("ClaimLedger: %v", err)
			}
		}
		if i != 2 { // the third has an entry only
			if err := db.PutLineage(t.Context(), flashauth.Lineage{TokenHash: k, UserID: fmt.Sprint("u", i), CreatedAt: base}); err != nil {
				t.Fatalf("PutLineage: %v", err)
			}
		}
	}
	want := [][]byte{ks[0], ks[1], seal.Hash("missing"), ks[2], ks[0]}
	alone := make([]flashauth.LineageLedger, len(want))
	for i, k := range want {
		var err error
		if alone[i], err = db.GetLineageLedger(t.Context(), kindRefresh, k); err != nil {
			t.Fatalf("GetLineageLedger alone: %v", err)
		}
	}

	type result = outcome[flashauth.LineageLedger]
	get := func(key []byte) <-chan result {
		return async(func(ctx context.Context) (flashauth.LineageLedger, error) {
			return db.GetLineageLedger(ctx, kindRefresh, key)
		})
	}
	release := tableLock(t, url, "lineage")
	var held []<-chan result
	for i := range postgres.Writers + 1 { // the first on its caller, as above
		held = append(held, get(ks[0]))
		waitLockWaits(t, url, app, i+1)
	}
	var chans []<-chan result
	for _, k := range want {
		chans = append(chans, get(k))
	}
	for db.QueuedLineageLedgerReads() != len(want) {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	before := db.LineageLedgerBatches()
	release()
	for _, ch := range held {
		if r := <-ch; r.err != nil {
			t.Fatalf("held GetLineageLedger: %v", r.err)
		}
	}
	for i, ch := range chans {
		r := <-ch
		if r.err != nil {
			t.Errorf("GetLineageLedger %d: %v", i, r.err)
			continue
		}
		if diff := cmp.Diff(alone[i], r.v); diff != "" {
			t.Errorf("GetLineageLedger %d in a batch differs from alone (-alone +batch):\n%s", i, diff)
		}
	}
	// As in TestBatchReads: the readers freed at once may split the queue.
	if n := db.LineageLedgerBatches() - before; n < 1 || n > postgres.Writers {
		t.Errorf("%d batches for %d reads, want 1 to %d", n, len(want), postgres.Writers)
	}
}

// A read made while no other read of its kind is in flight runs on its
// caller's goroutine: it is no batch.
func TestLoneReadRunsDirectly(t *testing.T) {
	db, _, _ := batchStore(t)
	key := seal.Hash("lone")
	ledger, lineage := db.ReadBatches()
	both := db.LineageLedgerBatches()
	if _, err := db.GetLedger(t.Context(), kindRefresh, key); !errors.Is(err, flashauth.ErrNotFound) {
		t.Fatalf("GetLedger: %v", err)
	}
	if _, err := db.GetLineage(t.Context(), key); !errors.Is(err, flashauth.ErrNotFound) {
		t.Fatalf("GetLineage: %v", err)
	}
	if _, err := db.GetLineageLedger(t.Context(), kindRefresh, key); err != nil {
		t.Fatalf("GetLineageLedger: %v", err)
	}
	l2, n2 := db.ReadBatches()
	if b2 := db.LineageLedgerBatches(); l2 != ledger || n2 != lineage || b2 != both {
		t.Errorf("read batches %d/%d/%d -> %d/%d/%d, want none", ledger, lineage, both, l2, n2, b2)
	}
}
