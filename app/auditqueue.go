package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/flashbacktech/flashauth"
)

// auditQueue takes audit rows off the answer path. Every refresh, sign-in
// and session refresh records one audit row; written synchronously it is a
// third write transaction (after the ledger's claim and commit) that the
// answer waits for. Here AppendAudit hands the row to a goroutine and
// returns: the row still goes to the store, where concurrent rows share the
// group commit of the ledger's writes (sqlite) or a pooled connection
// (postgres), but nobody waits for it.
//
// Bounded: at most auditQueueDepth rows are in flight; beyond that
// AppendAudit writes on the caller's time (backpressure, never a drop).
// ListAudit and Close first wait for the rows in flight, so a reader sees
// every row recorded before it asked, and a shutdown loses none. What it
// gives up: a process killed (kill -9) right after answering can lose the
// rows of the requests it was answering; their log lines, written
// synchronously by audit.Recorder before the row, remain.
type auditQueue struct {
	flashauth.Store
	log *slog.Logger

	mu      sync.Mutex
	idle    *sync.Cond // signalled when pending drops to 0
	pending int
}

// auditQueueDepth bounds the rows in flight (each is a goroutine of a few
// KiB until its batch commits).
const auditQueueDepth = 1024

// auditStoreTimeout bounds one queued append, as audit.Recorder bounds its
// own.
const auditStoreTimeout = 5 * time.Second

func newAuditQueue(store flashauth.Store, log *slog.Logger) *auditQueue {
	q := &auditQueue{Store: store, log: log}
	q.idle = sync.NewCond(&q.mu)
	return q
}

// AppendAudit queues e and returns nil; the store's error, if any, is
// logged. When the queue is full it appends synchronously.
func (q *auditQueue) AppendAudit(ctx context.Context, e flashauth.AuditEvent) error {
	q.mu.Lock()
	if q.pending >= auditQueueDepth {
		q.mu.Unlock()
		return q.Store.AppendAudit(ctx, e)
	}
	q.pending++
	q.mu.Unlock()
	go func() {
		defer q.done()
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditStoreTimeout)
		defer cancel()
		if err := q.Store.AppendAudit(actx, e); err != nil {
			q.log.LogAttrs(actx, slog.LevelError, "audit event not stored",
				slog.String("type", e.Type),
				slog.String("outcome", e.Outcome),
				slog.String("request_id", e.RequestID),
				slog.String("err", err.Error()),
			)
		}
	}()
	return nil
}

func (q *auditQueue) done() {
	q.mu.Lock()
	q.pending--
	if q.pending == 0 {
		q.idle.Broadcast()
	}
	q.mu.Unlock()
}

// flush waits until no row is in flight.
func (q *auditQueue) flush() {
	q.mu.Lock()
	for q.pending > 0 {
		q.idle.Wait()
	}
	q.mu.Unlock()
}

// ListAudit returns the trail including every row queued before the call.
func (q *auditQueue) ListAudit(ctx context.Context, limit int) ([]flashauth.AuditEvent, error) {
	q.flush()
	return q.Store.ListAudit(ctx, limit)
}

// Close stores the rows in flight, then closes the store.
func (q *auditQueue) Close() error {
	q.flush()
	return q.Store.Close()
}
