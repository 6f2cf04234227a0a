// Package ratelimit keeps one token bucket per key (client IP, token hash,
// user id) with bounded memory.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/flashbacktech/flashauth"
)

// Limiter is a set of token buckets, one per key. A nil *Limiter allows
// everything.
type Limiter struct {
	rate  rate.Limit
	burst int
	clock flashauth.Clock
	max   int // keys kept at most; idle keys are swept first

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
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
	return &Limiter{
		rate:    rate.Limit(perMinute / 60),
		burst:   burst,
		clock:   clock,
		max:     100_000,
		buckets: make(map[string]*bucket),
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
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets idle long enough to be full again, at most once a
// second, and everything idle when the map is over its bound.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Second && len(l.buckets) < l.max {
		return
	}
	l.swept = now
	full := time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) + time.Second
	for k, b := range l.buckets {
		if now.Sub(b.seen) > full || len(l.buckets) >= l.max {
			delete(l.buckets, k)
		}
	}
}
