package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flashbacktech/flashauth"
)

func (s *server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": "ok"})
	})
}

// DefaultReadyTimeout is how long /readyz waits for the store's check.
const DefaultReadyTimeout = 2 * time.Second

// handleReadyz reports whether the store answers and commits a write.
// Stores apply their migrations before they are handed to the server, so a
// store that answers is migrated. It answers within its timeout whatever the
// store does (a stalled disk can hang a write in the kernel, past any
// context): the check runs on its own goroutine, and at most one runs at a
// time, so probes of a hung store do not pile up.
func (s *server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.readyTimeout)
		defer cancel()
		if err := s.ready.check(ctx, s.Store, s.readyTimeout, s.Clock); err != nil {
			s.log.WarnContext(r.Context(), "readiness check failed", "request_id", requestID(r.Context()), "err", err)
			writeError(w, &flashauth.Error{Code: flashauth.CodeStoreUnavailable, Message: "The database is unavailable.", RetryAfter: time.Second, Err: err})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": "ready"})
	})
}

// readyFresh is how long a passed readiness check answers for later probes.
// Every check commits a write and /readyz is neither authenticated nor rate
// limited, so without it a client looping on /readyz would keep the store's
// writer (SQLite's one write lock) busy with probe writes, one after the
// other; with it, probes cost at most one write per readyFresh.
const readyFresh = time.Second

// readiness runs the store's readiness check, one at a time: a request that
// arrives while a check runs waits for that check's result, and one that
// arrives within readyFresh of a passed check gets that result. A request
// that found the store unavailable forgets the passed check (forget), so
// the next probe checks again.
type readiness struct {
	mu      sync.Mutex
	running *readyCheck // nil when no check runs
	okAt    time.Time   // when the last check passed; zero: none, or forgotten
}

// forget makes the next probe check the store again.
func (rd *readiness) forget() {
	rd.mu.Lock()
	rd.okAt = time.Time{}
	rd.mu.Unlock()
}

type readyCheck struct {
	done chan struct{}
	err  error // set before done is closed
}

// errReadyTimeout is the answer of a check that did not finish in time.
var errReadyTimeout = errors.New("the store did not answer the readiness check in time")

// check returns nil when a check passed within readyFresh, else the result
// of the running check, starting one (bounded by timeout) when none runs, or
// errReadyTimeout when ctx ends first.
func (rd *readiness) check(ctx context.Context, store Pinger, timeout time.Duration, clock flashauth.Clock) error {
	rd.mu.Lock()
	if !rd.okAt.IsZero() {
		if age := clock.Now().Sub(rd.okAt); age >= 0 && age < readyFresh {
			rd.mu.Unlock()
			return nil
		}
	}
	c := rd.running
	if c == nil {
		c = &readyCheck{done: make(chan struct{})}
		rd.running = c
		// Detached from this request: others may wait for the same check.
		pctx := context.WithoutCancel(ctx)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					c.err = fmt.Errorf("readiness check panicked: %v", p)
				}
				rd.mu.Lock()
				rd.running = nil
				if c.err == nil {
					rd.okAt = clock.Now()
				}
				rd.mu.Unlock()
				close(c.done)
			}()
			cctx, cancel := context.WithTimeout(pctx, timeout)
			defer cancel()
			c.err = store.Ping(cctx)
		}()
	}
	rd.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return errReadyTimeout
	}
}

func (s *server) handleMetrics() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})
}
