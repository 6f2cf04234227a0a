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
// answer waits for. Here AppendAudit hands the row to one writer goroutine
// and returns; the writer stores whatever has queued up in one transaction
// (AppendAudits), in the order the rows were recorded, so the trail's ids
// follow the order of events. Nobody waits for the write.
//
// A write takes every row queued while the previous one ran, however many:
// each write waits for a commit of the store's group commit, behind the
// ledger's writes (tens to hundreds of milliseconds under load), and a
// batch capped below what queues in that time held answers back (at 2,000
// clients with a 256-row cap, 8 requests in 10 waited for room, 90-180 ms
// each on average).
//
// Bounded: at most auditQueueDepth rows wait, and as many again are being
// written; beyond that AppendAudit waits for room (backpressure, never a
// drop, and never out of order), bounded by the caller's context.
// ListAudit, QueryAudit and Close first wait for the rows queued before
// them, so a reader sees every row recorded before it asked, and a shutdown
// loses none. What it gives up: a process killed (kill -9) right after
// answering can lose the rows not yet committed (at most two queues' worth);
// their log lines, written synchronously by audit.Recorder before the row,
// remain.
type auditQueue struct {
	flashauth.Store
	log *slog.Logger

	rows chan flashauth.AuditEvent
	stop chan struct{} // closed by Close: the writer drains and exits
	done chan struct{} // closed by the writer when it exits

	mu      sync.Mutex
	idle    *sync.Cond // signalled when pending drops to 0
	pending int        // rows queued or being written
	closed  bool
	once    sync.Once
}

// auditQueueDepth bounds the rows waiting to be written, and the rows of
// one write. At 2,000 clients with 100 ms upstream on 2 loaded cores, up to
// 1,150 rows queued during one write: with 1,024, a few percent of the
// recorders still waited for room (50 ms each); with 4,096 none did. A row
// is about 150 bytes plus its strings, under a megabyte for a full queue.
const auditQueueDepth = 4096

// auditStoreTimeout bounds one batch write, as audit.Recorder bounds its
// own append.
const auditStoreTimeout = 5 * time.Second

func newAuditQueue(store flashauth.Store, log *slog.Logger) *auditQueue {
	q := &auditQueue{
		Store: store, log: log,
		rows: make(chan flashauth.AuditEvent, auditQueueDepth),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	q.idle = sync.NewCond(&q.mu)
	go q.writer()
	return q
}

// AppendAudit queues e and returns nil; the store's error, if any, is
// logged. When the queue is full it waits for room, or for ctx.
func (q *auditQueue) AppendAudit(ctx context.Context, e flashauth.AuditEvent) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return q.Store.AppendAudit(ctx, e)
	}
	q.pending++
	q.mu.Unlock()
	select {
	case q.rows <- e:
		return nil
	case <-ctx.Done():
		q.written(1)
		return ctx.Err()
	}
}

// TryAppendAudit queues e when there is room (audit.Queue), and never waits.
func (q *auditQueue) TryAppendAudit(e flashauth.AuditEvent) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.pending++
	q.mu.Unlock()
	select {
	case q.rows <- e:
		return true
	default:
		q.written(1)
		return false
	}
}

// writer stores the queued rows, all that have queued up at a time, in
// order, until Close.
func (q *auditQueue) writer() {
	defer close(q.done)
	var batch []flashauth.AuditEvent // grows to the biggest batch seen
	for {
		select {
		case e := <-q.rows:
			batch = append(batch[:0], e)
		case <-q.stop:
			return
		}
		// The rows queued now, at most a full queue (the channel holds
		// no more): those arriving meanwhile wait for the next write.
		for n := len(q.rows); n > 0; n-- {
			batch = append(batch, <-q.rows)
		}
		q.write(batch)
	}
}

func (q *auditQueue) write(batch []flashauth.AuditEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), auditStoreTimeout)
	defer cancel()
	if err := q.Store.AppendAudits(ctx, batch); err != nil {
		for _, e := range batch {
			q.log.LogAttrs(ctx, slog.LevelError, "audit event not stored",
				slog.String("type", e.Type),
				slog.String("outcome", e.Outcome),
				slog.String("request_id", e.RequestID),
				slog.String("err", err.Error()),
			)
		}
	}
	q.written(len(batch))
}

func (q *auditQueue) written(n int) {
	q.mu.Lock()
	q.pending -= n
	if q.pending == 0 {
		q.idle.Broadcast()
	}
	q.mu.Unlock()
}

// flush waits until every row queued so far is written.
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

// QueryAudit returns the events f selects, including every row queued
// before the call.
func (q *auditQueue) QueryAudit(ctx context.Context, f flashauth.AuditFilter) ([]flashauth.AuditEvent, error) {
	q.flush()
	return q.Store.QueryAudit(ctx, f)
}

// Close stores the rows queued, stops the writer, then closes the store.
// Rows recorded after Close are written directly.
func (q *auditQueue) Close() error {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.flush()
	q.once.Do(func() { close(q.stop) })
	<-q.done
	return q.Store.Close()
}
