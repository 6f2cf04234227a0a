package github

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flashbacktech/flashauth"
)

// ErrCircuitOpen is the cause of the Transient error a Breaker returns
// without calling GitHub.
var ErrCircuitOpen = errors.New("circuit breaker open")

// Breaker defaults.
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// BreakerConfig configures a Breaker. Zero values take the defaults.
type BreakerConfig struct {
	// Failures is how many consecutive Transient failures open the circuit.
	// Default DefaultBreakerFailures.
	Failures int
	// Cooldown is how long the circuit stays open before one probe call is
	// let through. Default DefaultBreakerCooldown.
	Cooldown time.Duration
	// Clock tells the time. Default flashauth.SystemClock.
	Clock flashauth.Clock
}

// Breaker is a circuit breaker around a flashauth.GitHub. While GitHub keeps
// failing (timeouts, 5xx, rate limits) it stops sending calls for a cooldown,
// so that callers get a fast "try again later" instead of waiting for a
// timeout each, and GitHub gets room to recover.
//
// Only Transient failures count. A verdict (Rejected, Config, BadResponse)
// proves GitHub answered and counts like a success. A call whose caller
// cancelled it, or whose context expired, counts for nothing either way: the
// caller gave up, GitHub did not necessarily fail.
//
// States: closed (calls pass) -> open after Failures consecutive failures
// (calls fail fast with ErrCircuitOpen and RetryAfter = remaining cooldown,
// at least 1s) -> half-open when the cooldown has passed (exactly one probe
// call passes, the others fail fast) -> closed when the probe succeeds, open
// again when it fails. It is safe for concurrent use.
type Breaker struct {
	inner    flashauth.GitHub
	failures int
	cooldown time.Duration
	clock    flashauth.Clock
	metrics  *breakerMetrics

	mu          sync.Mutex
	state       breakerState
	generation  uint64 // bumped on every state change
	consecutive int    // Transient failures in a row, while closed
	openUntil   time.Time
	probing     bool // half-open: the probe is in flight
}

var _ flashauth.GitHub = (*Breaker)(nil)

type breakerState int

const (
	stateClosed breakerState = iota
	stateOpen
	stateHalfOpen
)

func (s breakerState) String() string {
	switch s {
	case stateOpen:
		return "open"
	case stateHalfOpen:
		return "half-open"
	}
	return "closed"
}

// NewBreaker wraps inner.
func NewBreaker(inner flashauth.GitHub, cfg BreakerConfig) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = DefaultBreakerFailures
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultBreakerCooldown
	}
	if cfg.Clock == nil {
		cfg.Clock = flashauth.SystemClock{}
	}
	b := &Breaker{inner: inner, failures: cfg.Failures, cooldown: cfg.Cooldown, clock: cfg.Clock}
	b.metrics = newBreakerMetrics(b)
	return b
}

// State returns "closed", "open" or "half-open". An open circuit whose
// cooldown has passed reports "half-open": the next call will probe.
func (b *Breaker) State() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == stateOpen && !b.clock.Now().Before(b.openUntil) {
		return stateHalfOpen.String()
	}
	return b.state.String()
}

// RefreshToken calls inner.RefreshToken unless the circuit is open.
func (b *Breaker) RefreshToken(ctx context.Context, refreshToken string) (flashauth.GitHubToken, error) {
	return guard(b, ctx, opRefresh, func() (flashauth.GitHubToken, error) {
		return b.inner.RefreshToken(ctx, refreshToken)
	})
}

// ExchangeCode calls inner.ExchangeCode unless the circuit is open.
func (b *Breaker) ExchangeCode(ctx context.Context, req flashauth.CodeExchange) (flashauth.GitHubToken, error) {
	return guard(b, ctx, opExchange, func() (flashauth.GitHubToken, error) {
		return b.inner.ExchangeCode(ctx, req)
	})
}

// User calls inner.User unless the circuit is open.
func (b *Breaker) User(ctx context.Context, accessToken string) (flashauth.GitHubUser, error) {
	return guard(b, ctx, opUser, func() (flashauth.GitHubUser, error) {
		return b.inner.User(ctx, accessToken)
	})
}

// Emails calls inner.Emails unless the circuit is open.
func (b *Breaker) Emails(ctx context.Context, accessToken string) ([]flashauth.GitHubEmail, error) {
	return guard(b, ctx, opEmails, func() ([]flashauth.GitHubEmail, error) {
		return b.inner.Emails(ctx, accessToken)
	})
}

// ticket is a call's admission: the generation it was admitted in, and
// whether it is the half-open probe.
type ticket struct {
	generation uint64
	probe      bool
}

// guard runs call if the circuit admits it and records its class.
func guard[T any](b *Breaker, ctx context.Context, op string, call func() (T, error)) (T, error) {
	t, err := b.admit(op)
	if err != nil {
		b.metrics.observe(op, err, 0)
		var zero T
		return zero, err
	}
	start := time.Now()
	finished := false
	defer func() {
		if !finished { // call panicked: free the probe slot, count nothing
			b.record(t, classNeutral)
		}
	}()
	v, err := call()
	finished = true
	b.metrics.observe(op, err, time.Since(start))
	b.record(t, classify(ctx, err))
	return v, err
}

// admit lets a call through or returns the fail-fast error.
func (b *Breaker) admit(op string) (ticket, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	switch b.state {
	case stateOpen:
		if now.Before(b.openUntil) {
			return ticket{}, circuitOpen(op, b.openUntil.Sub(now))
		}
		b.setState(stateHalfOpen)
		fallthrough
	case stateHalfOpen:
		if b.probing {
			return ticket{}, circuitOpen(op, 0)
		}
		b.probing = true
		return ticket{generation: b.generation, probe: true}, nil
	}
	return ticket{generation: b.generation}, nil
}

func circuitOpen(op string, remaining time.Duration) error {
	return &flashauth.UpstreamError{
		Kind:       flashauth.UpstreamTransient,
		Op:         op,
		RetryAfter: max(remaining, time.Second),
		Err:        ErrCircuitOpen,
	}
}

// class is what a call's result says about GitHub's health.
type class int

const (
	classNeutral class = iota // says nothing (caller gave up)
	classHealthy              // GitHub answered
	classFailure              // GitHub failed transiently
)

// classify says what a call's result tells of GitHub's health. Errors that
// are not UpstreamErrors break the flashauth.GitHub contract; they count as
// failures, so that a broken inner client cannot keep the circuit closed.
func classify(ctx context.Context, err error) class {
	var ue *flashauth.UpstreamError
	switch {
	case err == nil:
		return classHealthy
	case errors.As(err, &ue) && ue.Kind != flashauth.UpstreamTransient:
		return classHealthy
	case ctx.Err() != nil, errors.Is(err, ErrCircuitOpen):
		return classNeutral
	}
	return classFailure
}

// record applies a call's class. Classes of calls admitted before the
// last state change are stale and ignored: a slow success from before the
// circuit opened must not close it, and a slow failure must not re-open it.
func (b *Breaker) record(t ticket, c class) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.generation != b.generation {
		return
	}
	switch c {
	case classNeutral:
		if t.probe {
			b.probing = false // let the next call probe
		}
	case classHealthy:
		if t.probe {
			b.setState(stateClosed)
		}
		b.consecutive = 0
	case classFailure:
		b.consecutive++
		if t.probe || b.consecutive >= b.failures {
			b.setState(stateOpen)
			b.openUntil = b.clock.Now().Add(b.cooldown)
		}
	}
}

// setState moves to s and starts a new generation.
func (b *Breaker) setState(s breakerState) {
	b.state = s
	b.generation++
	b.consecutive = 0
	b.probing = false
}
