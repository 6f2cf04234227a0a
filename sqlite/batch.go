package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"

	"github.com/flashbacktech/flashauth/internal/groupcommit"
)

// Group commit. Every write of the store is a transaction body (a func run
// inside BEGIN IMMEDIATE ... COMMIT). Instead of one transaction per call,
// one writer goroutine takes every body queued when it becomes free and runs
// them in one transaction, then commits once.
// A caller is answered only after the COMMIT of its batch returned: a write
// that returned nil is durable (as durable as the synchronous setting makes
// any commit), exactly as before.
//
// The writer never waits on a clock to fill a batch: a batch is whatever
// queued while the previous one ran, so a lone write costs what it always
// did, and under load N concurrent writes cost one BEGIN, one COMMIT and one
// WAL append instead of N of each. When it finds a single write queued, it
// yields the processor once (runtime.Gosched) before starting: requests that
// are runnable at that instant are usually about to write too, and join the
// commit. Under load that made most commits hold one write; with the yield,
// server CPU per refresh fell by a fifth (docs/benchmarks.md).
//
// Failures stay per call:
//   - the bodies run without savepoints (two statements per body saved on
//     every batch); when one fails (or panics), the transaction is rolled
//     back and the batch runs again with a savepoint per body, where the
//     failing body is rolled back to its savepoint and gets its error, and
//     the others go on (a body that panicked is not run again);
//   - when the transaction itself fails (the COMMIT, or a savepoint command:
//     an I/O error, a constraint checked at commit time), nothing of the
//     batch is stored, and every body is run again in a transaction of its
//     own, so one poisoned write fails alone. Bodies must therefore be
//     re-runnable: they set, never accumulate, what they report.
//
// Close stops taking new writes, lets the writer run everything already
// queued, and only then closes the database.

// maxBatch bounds one batch: a long transaction delays the first caller in
// it, and a failed batch is retried one by one.
const maxBatch = 256

// txFunc is a transaction body. Its ctx is the writer's, not the caller's:
// a caller's cancellation must not interrupt a statement (SQLite would roll
// back the whole batch's transaction). Callers stop waiting for bodies that
// have not started; see writeTx.
type txFunc func(ctx context.Context, tx *wtx) error

// wtx is a write transaction: the *sql.Tx plus the prepared statements of
// the writer connection, bound to it once per transaction.
type wtx struct {
	*sql.Tx
	db    *DB
	bound map[string]*sql.Stmt
}

// stmt returns the hot statement query bound to tx, or nil when query is not
// one of the statements prepared at Open.
func (tx *wtx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := tx.bound[query]; ok {
		return st
	}
	p := tx.db.prepared[query]
	if p == nil {
		return nil
	}
	st := tx.StmtContext(ctx, p)
	if tx.bound == nil {
		tx.bound = make(map[string]*sql.Stmt)
	}
	tx.bound[query] = st
	return st
}

// exec runs query in tx, through its prepared statement when it has one.
func (tx *wtx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := tx.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// queryRow runs query in tx, through its prepared statement when it has one.
func (tx *wtx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := tx.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

type writeReq struct {
	fn  txFunc
	res writeResult // set by the writer before the caller is released
}

type writeResult struct {
	err      error
	panicked any // re-raised on the caller's goroutine
}

// writer is the group-commit machinery of a DB: one writer goroutine behind
// a groupcommit.Queue.
type writer struct {
	q *groupcommit.Queue[writeReq]
	// batches counts committed batches, items the bodies in them (tests,
	// benchmarks and the background checkpoint read them).
	batches, items atomic.Int64
}

func (db *DB) startWriter() {
	db.w = &writer{}
	db.w.q = groupcommit.New(1, maxBatch, db.runBatch)
}

// writeTx runs fn in a BEGIN IMMEDIATE transaction on the writer, batched
// with other concurrent writes, and returns once that transaction committed
// (nil) or fn's work was rolled back (an error, mapped by fail). A panic in
// fn is rolled back and re-raised here. If ctx ends before fn started, fn
// never runs; once it started, writeTx waits for its batch (one transaction).
func (db *DB) writeTx(ctx context.Context, op string, fn txFunc) error {
	req := &writeReq{fn: fn}
	switch err := db.w.q.Do(ctx, req); {
	case errors.Is(err, groupcommit.ErrClosed):
		return db.fail(op, sql.ErrConnDone)
	case err != nil:
		return db.fail(op, err)
	}
	if req.res.panicked != nil {
		panic(req.res.panicked)
	}
	return db.fail(op, req.res.err)
}

// closeWriter stops new writes, waits until every queued one has run, and
// returns. It is idempotent.
func (db *DB) closeWriter() { db.w.q.Close() }

// runBatch runs the bodies of a batch (the writes whose callers still wait)
// and leaves each one's result in it.
func (db *DB) runBatch(live []*writeReq) {
	if len(live) == 1 {
		live[0].res = db.runOne(live[0].fn)
		return
	}
	results, err := db.runFast(live)
	if errors.Is(err, errBodyFailed) {
		// A body failed or panicked: the transaction was rolled back. Run
		// the batch again with a savepoint per body, so that the failure
		// stays its own; a body that panicked is not run again.
		results, err = db.runGroup(live, results)
	}
	if err != nil {
		// The transaction failed as a whole: nothing of it is stored. Run
		// every body again on its own, so that only the culprit fails. A
		// body that panicked is not run again.
		for i, r := range live {
			if results[i].panicked == nil {
				results[i] = db.runOne(r.fn)
			}
		}
	}
	for i, r := range live {
		r.res = results[i]
	}
}

// runOne runs fn in a transaction of its own.
func (db *DB) runOne(fn txFunc) writeResult {
	ctx := context.Background()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return writeResult{err: err}
	}
	t := &wtx{Tx: tx, db: db}
	res := call(ctx, t, fn)
	if res.err != nil || res.panicked != nil {
		_ = tx.Rollback()
		return res
	}
	if err := tx.Commit(); err != nil {
		db.rollbackFailedCommit()
		return writeResult{err: err}
	}
	db.w.batches.Add(1)
	db.w.items.Add(1)
	return res
}

// errBodyFailed tells runBatch that runFast stopped at a body that failed.
var errBodyFailed = errors.New("sqlite: a body of the batch failed")

// runFast runs the bodies of batch in one transaction without savepoints:
// nothing can be undone body by body, so at the first body that returns an
// error or panics, the whole transaction is rolled back and runFast returns
// errBodyFailed (with the panics recorded in the results); runBatch then
// runs the batch again in runGroup. Savepoints cost two statements per body
// on every batch; this costs a rerun only on the batches that need it.
// Any other error is the transaction's, as in runGroup.
func (db *DB) runFast(batch []*writeReq) ([]writeResult, error) {
	ctx := context.Background()
	results := make([]writeResult, len(batch))
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return results, err
	}
	t := &wtx{Tx: tx, db: db}
	for i, r := range batch {
		res := call(ctx, t, r.fn)
		if res.err != nil || res.panicked != nil {
			_ = tx.Rollback()
			if res.panicked != nil {
				results[i] = res
			}
			return results, errBodyFailed
		}
		results[i] = res
	}
	if err := tx.Commit(); err != nil {
		db.rollbackFailedCommit()
		return results, err
	}
	db.w.batches.Add(1)
	db.w.items.Add(int64(len(batch)))
	return results, nil
}

// runGroup runs the bodies of batch in one transaction, each in a
// savepoint, except those that already panicked in prev (their result is
// kept; they are not run again). It returns each body's result, and an
// error when the transaction failed as a whole (then none of it is stored,
// and the results of the bodies that did not panic are void).
func (db *DB) runGroup(batch []*writeReq, prev []writeResult) ([]writeResult, error) {
	ctx := context.Background()
	results := make([]writeResult, len(batch))
	for i := range prev {
		if prev[i].panicked != nil {
			results[i] = prev[i]
		}
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return results, err
	}
	t := &wtx{Tx: tx, db: db}
	for i, r := range batch {
		if results[i].panicked != nil {
			continue
		}
		if _, err := t.exec(ctx, `SAVEPOINT item`); err != nil {
			_ = tx.Rollback()
			return results, err
		}
		results[i] = call(ctx, t, r.fn)
		if results[i].err != nil || results[i].panicked != nil {
			if _, err := t.exec(ctx, `ROLLBACK TO item`); err != nil {
				_ = tx.Rollback()
				return results, err
			}
		}
		if _, err := t.exec(ctx, `RELEASE item`); err != nil {
			_ = tx.Rollback()
			return results, err
		}
	}
	if err := tx.Commit(); err != nil {
		db.rollbackFailedCommit()
		return results, err
	}
	db.w.batches.Add(1)
	db.w.items.Add(int64(len(batch)))
	return results, nil
}

// rollbackFailedCommit ends a transaction whose COMMIT failed. SQLite keeps
// the transaction open after some failed commits (a deferred constraint, a
// busy lock) while database/sql considers it finished and hands the one
// writer connection out again; every later BEGIN would then fail. "no
// transaction is active" is the expected answer otherwise.
func (db *DB) rollbackFailedCommit() {
	_, _ = db.write.ExecContext(context.Background(), `ROLLBACK`)
}

// call runs fn, turning a panic into a result that the caller re-raises.
func call(ctx context.Context, tx *wtx, fn txFunc) (res writeResult) {
	defer func() {
		if p := recover(); p != nil {
			res = writeResult{panicked: p}
		}
	}()
	return writeResult{err: fn(ctx, tx)}
}
