// Package groupcommit gathers the calls of concurrent callers into batches
// for writer goroutines: the queue under both stores' group commit (SQLite's
// one writer, PostgreSQL's writers per kind of call). What a batch does with
// its calls - one transaction, a fallback per call - is the store's; this
// package only queues, batches, lets a caller leave while its call is still
// queued, and drains on Close.
package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrClosed is Do's answer once Close was called.
var ErrClosed = errors.New("groupcommit: closed")

// States of a queued call.
const (
	queued int32 = iota
	taken
	abandoned
)

type call[T any] struct {
	v     *T
	state atomic.Int32
	done  chan struct{}
}

// Queue feeds batches of *T to writer goroutines that call run with them.
type Queue[T any] struct {
	mu     sync.RWMutex // held for reading while enqueuing; Close takes it to close ch
	closed bool
	ch     chan *call[T]
	done   chan struct{} // closed when every writer has returned
	max    int
	run    func(batch []*T)
}

// New starts writers goroutines, each taking every call queued when it
// becomes free (at most max) and passing them to run. A batch is whatever
// queued while the previous one ran: a writer never waits on a clock to fill
// one, so a lone call costs what it would alone. When a writer finds a
// single call, it yields the processor once first (runtime.Gosched): callers
// runnable at that instant are usually about to queue too, and join it.
//
// run gets only the calls whose callers still wait, and must leave in each
// *T whatever its caller reads back; the callers are released when run
// returns.
func New[T any](writers, max int, run func(batch []*T)) *Queue[T] {
	q := &Queue[T]{
		ch: make(chan *call[T], 4*max), done: make(chan struct{}),
		max: max, run: run,
	}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(q.loop)
	}
	go func() { wg.Wait(); close(q.done) }()
	return q
}

// Do queues v and returns once the batch holding it has run (nil: v holds
// the results), ErrClosed after Close, or ctx's error if ctx ended while v
// was still queued (v then never runs). Once its batch has started, Do
// waits for it whatever ctx does: a store cannot stop a statement half way.
func (q *Queue[T]) Do(ctx context.Context, v *T) error {
	if err := ctx.Err(); err != nil {
		return err // the select below would pick at random
	}
	c := &call[T]{v: v, done: make(chan struct{})}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ErrClosed
	}
	select {
	case q.ch <- c:
		q.mu.RUnlock()
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		<-c.done
	}
	return nil
}

// Len is how many calls wait in the queue (tests line calls up with it).
func (q *Queue[T]) Len() int { return len(q.ch) }

// Closed reports whether Close was called.
func (q *Queue[T]) Closed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.closed
}

// Close stops taking calls, lets the writers run every call already queued,
// and returns when they have. It is idempotent.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.done
}

func (q *Queue[T]) loop() {
	batch := make([]*call[T], 0, q.max)
	live := make([]*T, 0, q.max)
	for c := range q.ch {
		batch = append(batch[:0], c)
		yielded := false
	gather:
		for len(batch) < q.max {
			select {
			case c, ok := <-q.ch:
				if !ok {
					break gather // run this batch; the range loop then ends
				}
				batch = append(batch, c)
			default:
				if len(batch) == 1 && !yielded {
					runtime.Gosched()
					yielded = true
					continue
				}
				break gather
			}
		}
		live = live[:0]
		n := 0
		for _, c := range batch {
			if c.state.CompareAndSwap(queued, taken) {
				live = append(live, c.v)
				batch[n] = c
				n++
			}
		}
		if n > 0 {
			q.run(live)
		}
		for _, c := range batch[:n] {
			close(c.done)
		}
		clear(batch)
		clear(live)
	}
}
