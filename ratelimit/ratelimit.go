// Package ratelimit keeps one token bucket per key (client IP, token hash,
// user id) with bounded memory.
package ratelimit

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/flashbacktech/flashauth"
)

// Limiter is a set of token buckets, one per key. A nil *Limiter allows
// everything.
//
// Keys come from callers (addresses, hashes of presented tokens), so an
// abuser can mint as many as it likes. Buckets are therefore kept in a map
// plus a recency list: dropping idle buckets and evicting the least
// recently seen one when the bound is reached both cost O(1) per event,
// never a walk over every key under the lock.
type Limiter struct {
	rate  rate.Limit
	burst int
	clock flashauth.Clock
	max   int           // keys kept at most
	idle  time.Duration // a bucket unseen this long is full again

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	recency *list.List               // most recently seen at the front
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter allowing perMinute events per key per minute with
// bursts of burst. perMinute <= 0 returns nil: no limit.
func New(perMinute float64, burst int, clock flashauth.Clock) *Limiter {
	if perMinute <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	if clock == nil {
		clock = flashauth.SystemClock{}
	}
	r := rate.Limit(perMinute / 60)
	return &Limiter{
		rate:    r,
		burst:   burst,
		clock:   clock,
		max:     100_000,
		idle:    time.Duration(float64(burst)/float64(r)*float64(time.Second)) + time.Second,
		buckets: make(map[string]*list.Element),
		recency: list.New(),
	}
}

// Allow takes one event for key. When the bucket is empty it returns false
// and how long until the next event would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	var b *bucket
	if el, ok := l.buckets[key]; ok {
		b = el.Value.(*bucket)
		l.recency.MoveToFront(el)
	} else {
		if len(l.buckets) >= l.max {
			l.remove(l.recency.Back())
		}
		b = &bucket{key: key, lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = l.recency.PushFront(b)
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops the buckets idle long enough to be full again: forgetting
// them changes nothing. They sit at the back of the recency list.
func (l *Limiter) sweep(now time.Time) {
	for el := l.recency.Back(); el != nil; el = l.recency.Back() {
		if now.Sub(el.Value.(*bucket).seen) <= l.idle {
			return
		}
		l.remove(el)
	}
}

func (l *Limiter) remove(el *list.Element) {
	if el == nil {
		return
	}
	delete(l.buckets, el.Value.(*bucket).key)
	l.recency.Remove(el)
}

// Refused is the error of a request a limit refused: RATE_LIMITED, to be
// retried after wait.
func Refused(wait time.Duration) error {
	return &flashauth.Error{Code: flashauth.CodeRateLimited, Message: "Too many requests. Slow down.", RetryAfter: wait}
}
