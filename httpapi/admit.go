package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// admission bounds the requests that run the ledger (a GitHub refresh, a
// sign-in, a session refresh) at once; the others wait their turn in arrival
// order (Config.MaxRefreshes). A request waiting here has read its body and
// gone no deeper than its handler, about 3.7 KiB of frames on amd64 (the
// handlers keep the work after the wait in a function of their own, so that
// their frame stays small). The collector halves a parked goroutine's stack
// while it uses under a quarter of it, so a waiting request's stack comes
// back to 8 KiB; one inside the ledger - parked on the store's queue or on
// the GitHub call, 8-11 KiB deep - needs 16 KiB, and holds the upstream
// call's goroutine, connection and buffers besides. At thousands of concurrent clients on two
// cores most requests are queued behind the store anyway: they wait as
// long, on less memory.
type admission struct {
	sem     *semaphore.Weighted // nil: no limit
	waiting prometheus.Gauge
}

func newAdmission(n int, waiting prometheus.Gauge) admission {
	if n <= 0 {
		return admission{}
	}
	return admission{sem: semaphore.NewWeighted(int64(n)), waiting: waiting}
}

// admit waits for r's turn and returns the function that ends it, or false
// when r's client left first (nothing is answered then: nobody reads it).
func (a admission) admit(r *http.Request) (func(), bool) {
	if a.sem == nil {
		return func() {}, true
	}
	if !a.sem.TryAcquire(1) {
		a.waiting.Inc()
		err := a.sem.Acquire(r.Context(), 1)
		a.waiting.Dec()
		if err != nil {
			return nil, false
		}
	}
	return func() { a.sem.Release(1) }, true
}
