package postgres

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"

	"github.com/flashbacktech/flashauth/internal/groupcommit"
)

// Group commit. The ledger's hot writes (ClaimLedger, CompleteLedger) are
// not sent by their callers: each kind has a few writer goroutines
// (writers); a writer takes every call queued when it becomes free and sends
// them together, as a few set-based statements (unnest of arrays) in one pipelined batch, which
// PostgreSQL runs as one implicit transaction: one round trip, one commit and
// one WAL flush for N calls instead of N of each. A caller is answered only
// after its batch committed. A lone call runs single-row statements, so an
// idle store costs what it did. The audit rows waiting for a carrier go in
// the batch's transaction too (riders.go).
//
// The writer never waits on a clock to fill a batch: a batch is whatever
// queued while the previous one ran (when it finds a single call, it yields
// the processor once first, so callers that are runnable right then join).
//
// Failures stay per call:
//   - when the batch's transaction fails with an error from the server (a
//     constraint one call violates, a deadlock), nothing of it is stored,
//     and every call is run again in a transaction of its own, so only the
//     culprit fails;
//   - when the database could not be reached, or the outcome is unknown (the
//     connection broke or the store's timeout ran out after the batch was
//     sent), every call of the batch gets that error, as each would have if
//     it had been sent alone.
//
// Across replicas nothing changes: each call's statements are the same
// conditional upserts and updates, only applied to many rows at once. Rows
// are locked in (kind, key) order, the same in every batch, so two
// replicas' batches never deadlock on each other.
//
// The hot reads (GetLedger, GetLineage, GetLineageLedger) go the same way, one statement per
// batch: a read needs no transaction, and the statement runs after every
// call in it began, so each caller reads what it would have read alone at
// that moment. A read made while no other of its kind is in flight runs on
// its caller's goroutine (batcher.do).
//
// Close stops taking calls, lets the writers run everything queued, and only
// then closes the pool.

// writers is how many batches of one kind may be in flight at once. One
// writer alone makes the biggest batches, but every call then waits for the
// batch ahead of it, commit included; two keep the database busy while each
// batch still holds several calls (measured at 32 concurrent refreshes: one
// writer was slower than no batching at all, two to four faster, eight
// back to no gain, with the CPU per refresh growing with the writers).
const writers = 2

// maxBatch bounds one batch: a long transaction delays the first caller in
// it, and a failed batch is retried one by one.
const maxBatch = 256

// pending is one queued call of type T (which carries its own results) and
// its error, set by the writer before the caller is released.
type pending[T any] struct {
	req *T
	err error
}

// sender sends a batch of statements, which PostgreSQL runs as one
// implicit transaction (everything up to the batch's Sync), and returns its
// results. A batch function sends its statements through the sender it is
// given: the writers of the ledger's writes hand it one that adds the audit
// rows riding on the batch (riders.go).
type sender func(ctx context.Context, b *pgx.Batch) pgx.BatchResults

// batcher is the writers of one kind of call, behind a groupcommit.Queue.
type batcher[T any] struct {
	q *groupcommit.Queue[pending[T]]
	// one runs req in a transaction of its own.
	one func(ctx context.Context, send sender, req *T) error
	// many runs reqs (two or more) in one transaction, setting their
	// results, and returns an error when the transaction failed as a whole
	// (the results are then void). errs[i] is reqs[i]'s own error.
	many func(ctx context.Context, send sender, reqs []*T, errs []error) error
	// newCtx bounds one batch (the store's operation timeout).
	newCtx func() (context.Context, context.CancelFunc)
	pool   *pgxpool.Pool
	// riders, when not nil, are the audit rows waiting for a ledger write
	// to carry them; each batch takes the rows waiting when it starts.
	riders *auditRiders
	// direct (reads): a call made while no other call of its kind is in
	// flight - queued or running, counted by inflight - runs on its
	// caller's goroutine (see do).
	direct   bool
	inflight atomic.Int64
	// batches counts the batches the writers ran, items the calls in them,
	// fallbacks the batches whose transaction failed as a whole and whose
	// calls then ran one by one (tests and benchmarks read them).
	batches, items, fallbacks atomic.Int64
}

func newBatcher[T any](db *DB, riders *auditRiders,
	one func(context.Context, sender, *T) error, many func(context.Context, sender, []*T, []error) error) *batcher[T] {
	b := &batcher[T]{one: one, many: many, newCtx: db.batchCtx, pool: db.pool, riders: riders}
	b.q = groupcommit.New(writers, maxBatch, b.run)
	return b
}

// newReadBatcher is a batcher of reads: their statements need no
// transaction, and carry no audit rows.
func newReadBatcher[T any](db *DB,
	one func(context.Context, *T) error, many func(context.Context, []*T, []error) error) *batcher[T] {
	b := newBatcher(db, nil,
		func(ctx context.Context, _ sender, req *T) error { return one(ctx, req) },
		func(ctx context.Context, _ sender, reqs []*T, errs []error) error { return many(ctx, reqs, errs) })
	b.direct = true
	return b
}

// do queues req and waits until its batch committed (nil; req holds the
// results) or failed (the error). If ctx ends while req is still queued, req
// never runs; once its batch started, do waits for it.
func (b *batcher[T]) do(ctx context.Context, req *T) error {
	if b.direct {
		defer b.inflight.Add(-1)
		if b.inflight.Add(1) == 1 && !b.q.Closed() {
			// Nothing to gather it with: rather than hand it to a reader
			// goroutine and wait to be woken (two wake-ups on the path of
			// a request at one worker), the caller runs it. A read needs
			// no transaction, so it may run beside a batch.
			return b.one(ctx, nil, req)
		}
	}
	p := &pending[T]{req: req}
	switch err := b.q.Do(ctx, p); {
	case errors.Is(err, groupcommit.ErrClosed):
		return puddle.ErrClosedPool
	case err != nil:
		return err
	}
	return p.err
}

// close stops new calls and waits until every queued one has run. It is
// idempotent.
func (b *batcher[T]) close() { b.q.Close() }

// run runs a batch (the calls whose callers still wait) and leaves each
// one's error in it. The audit rows waiting to ride go in its transaction.
func (b *batcher[T]) run(live []*pending[T]) {
	ctx, cancel := b.newCtx()
	defer cancel()
	b.batches.Add(1)
	b.items.Add(int64(len(live)))
	c := &carrier{pool: b.pool, rows: b.riders.take()}
	var err error
	if len(live) == 1 {
		// A lone call's error is its own (unless audit rows rode with
		// it and the transaction was refused: below).
		live[0].err = b.one(ctx, c.send, live[0].req)
	} else {
		reqs := make([]*T, len(live))
		for i, p := range live {
			reqs[i] = p.req
		}
		errs := make([]error, len(live))
		if err = b.many(ctx, c.send, reqs, errs); err == nil {
			for i, p := range live {
				p.err = errs[i]
			}
		}
	}
	if c.rows != nil {
		rerr := c.outcome()
		c.rows.finish(rerr)
		if rolledBack(rerr) {
			// The audit rows may be why nothing was stored: they are
			// written on their own (finish), and the calls run again
			// without them - a lone one too.
			err = rerr
		}
	}
	switch {
	case err == nil:
	case rolledBack(err):
		// Nothing of the batch is stored: run every call on its own, so
		// that only the culprit fails.
		b.fallbacks.Add(1)
		for _, p := range live {
			one, cancel := b.newCtx()
			p.err = b.one(one, b.pool.SendBatch, p.req)
			cancel()
		}
	default:
		for _, p := range live {
			p.err = err
		}
	}
}

// rolledBack reports whether err says for certain that a transaction
// committed nothing while the database is there to run its calls again: the
// server refused it (a constraint, a deadlock). A connection that failed -
// before sending (no connection could be had) or after (the outcome is
// unknown) - is the database's trouble, not one call's: each call gets the
// error, as it would have alone, instead of waiting for N more attempts.
func rolledBack(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && !disconnected(pgErr.Code) && !strings.HasPrefix(pgErr.Code, classConnection) &&
		pgErr.Code != codeTooManyConns
}
