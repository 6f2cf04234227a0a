package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashbacktech/flashauth"
)

// Audit rows ride on ledger writes. Every refresh, sign-in and session
// refresh records an audit row after its answer (app's queue hands them to
// AppendAudits, off the answer path). Written alone, the rows are a
// transaction of their own: a round trip, and a commit whose WAL flush the
// next request's claim then queues behind - at one request at a time, one
// flush in three. Instead AppendAudits waits, briefly, for the next batch of
// claims or completions and has its rows inserted in that batch's
// transaction, whose commit they share. The next request's claim comes
// right after the answer, so at any load the wait is short; when none comes
// within rideWait (an idle store), or the store is closing, the rows go
// alone.
//
// A row that rides is stored exactly when the ledger write carrying it is:
// when that transaction is refused (a constraint, a deadlock), nothing of it
// is stored, and the rows go alone while the ledger calls run again without
// them (batcher.run), so neither fails for the other; when the outcome is
// unknown (the connection broke), the rows get that error, as they would
// have alone.

// rideWait bounds how long AppendAudits waits for a ledger write to carry
// its rows. Not on any answer path: it is how late an idle store writes an
// audit row, and what a reader of the trail (app's queue flushes before it
// reads) may wait for one.
const rideWait = 20 * time.Millisecond

// errRideRefused tells a rider that the transaction carrying it was
// refused: its rows are not stored and go alone.
var errRideRefused = errors.New("postgres: the ledger write carrying audit rows was refused")

// rider is one AppendAudits call waiting for a carrier.
type rider struct {
	events []flashauth.AuditEvent
	done   chan struct{} // closed once err is set
	err    error
}

// auditRiders is the audit rows waiting for a ledger write to carry them.
type auditRiders struct {
	mu      sync.Mutex
	waiting []*rider
	closed  bool
	closing chan struct{} // closed by close: riders stop waiting
	// inflight counts the rides not over, written alone included.
	inflight sync.WaitGroup
	wait     time.Duration // rideWait; tests set it before any ride
}

func newAuditRiders() *auditRiders {
	return &auditRiders{closing: make(chan struct{}), wait: rideWait}
}

// ride has events carried by the next ledger write, if one comes within
// rideWait, and returns the outcome; otherwise it writes them with alone.
func (a *auditRiders) ride(ctx context.Context, events []flashauth.AuditEvent, alone func() error) error {
	r := &rider{events: events, done: make(chan struct{})}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return alone()
	}
	a.waiting = append(a.waiting, r)
	a.inflight.Add(1)
	a.mu.Unlock()
	defer a.inflight.Done()
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
	case <-ctx.Done():
	case <-a.closing:
	}
	if a.leave(r) {
		return alone()
	}
	<-r.done // taken: wait for its carrier
	if errors.Is(r.err, errRideRefused) {
		return alone()
	}
	return r.err
}

// leave takes r off the waiting list and reports whether it was still on it
// (no batch has taken it).
func (a *auditRiders) leave(r *rider) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, w := range a.waiting {
		if w == r {
			a.waiting = append(a.waiting[:i], a.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// take returns the riders waiting now, to be carried by one batch, or nil.
// A nil *auditRiders has none.
func (a *auditRiders) take() *riders {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.waiting) == 0 {
		return nil
	}
	rs := &riders{list: a.waiting}
	a.waiting = nil
	return rs
}

// close stops the waits: the riders waiting write their rows alone, and so
// does every later AppendAudits. It returns once every ride is over. It is
// idempotent.
func (a *auditRiders) close() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.closing)
	}
	a.mu.Unlock()
	a.inflight.Wait()
}

// riders are the riders one batch carries.
type riders struct{ list []*rider }

// events are the riders' rows, rider after rider.
func (rs *riders) events() []flashauth.AuditEvent {
	var out []flashauth.AuditEvent
	for _, r := range rs.list {
		out = append(out, r.events...)
	}
	return out
}

// finish releases the riders with the outcome of the transaction that
// carried them: nil (stored), a refusal (they go alone) or another error.
func (rs *riders) finish(err error) {
	if rolledBack(err) {
		err = errRideRefused
	}
	for _, r := range rs.list {
		r.err = err
		close(r.done)
	}
}

// carrier sends a batch's statements with the rows of its riders (if any)
// queued after them, in its one transaction, and keeps the batch's results
// to tell afterwards how the transaction ended.
type carrier struct {
	pool *pgxpool.Pool
	rows *riders
	res  *closedResults
}

func (c *carrier) send(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if c.rows != nil {
		b.Queue(qAuditInsertMany, auditArgs(c.rows.events())...)
	}
	c.res = &closedResults{BatchResults: c.pool.SendBatch(ctx, b)}
	return c.res
}

// outcome is how the transaction that carried the rows ended: nil when it
// committed. A batch function closes its results before it returns;
// closing them again returns the same error.
func (c *carrier) outcome() error {
	if c.res == nil {
		return errRideRefused // never sent: nothing carried them
	}
	return c.res.Close()
}

// closedResults are a batch's results that remember how Close ended: the
// riders' statement comes last, and Close reads it and the commit.
type closedResults struct {
	pgx.BatchResults
	closed bool
	err    error
}

func (r *closedResults) Close() error {
	if !r.closed {
		r.closed, r.err = true, r.BatchResults.Close()
	}
	return r.err
}
