package github

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashbacktech/flashauth"
)

// breakerMetrics are what an operator's dashboard shows of GitHub: every
// call by endpoint and class with its latency, and the breaker's state.
// Endpoints are the operations: refresh (token refresh), exchange (code
// exchange), user (GET /user), emails (GET /user/emails).
type breakerMetrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	state    []prometheus.Collector

	mu     sync.RWMutex
	series map[[2]string]*callSeries // by endpoint and class
}

func newBreakerMetrics(b *Breaker) *breakerMetrics {
	m := &breakerMetrics{
		series: make(map[[2]string]*callSeries),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashauth_github_calls_total",
			Help: "Calls to GitHub by endpoint (refresh, exchange, user, emails) and class " +
				"(ok, rejected, transient, config, bad_response; circuit_open: refused by the breaker, not sent).",
		}, []string{"endpoint", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flashauth_github_call_duration_seconds",
			Help:    "Latency of calls sent to GitHub, by endpoint and class.",
			Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint", "class"}),
	}
	for _, s := range []breakerState{stateClosed, stateOpen, stateHalfOpen} {
		name := s.String()
		m.state = append(m.state, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "flashauth_github_breaker_state",
			Help:        "1 for the GitHub circuit breaker's current state (closed, open, half-open), 0 for the others.",
			ConstLabels: prometheus.Labels{"state": name},
		}, func() float64 {
			if b.State() == name {
				return 1
			}
			return 0
		}))
	}
	return m
}

// Register registers the breaker's metrics (GitHub calls, their latency,
// the breaker state) with reg.
func (b *Breaker) Register(reg prometheus.Registerer) error {
	for _, c := range append([]prometheus.Collector{b.metrics.calls, b.metrics.duration}, b.metrics.state...) {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// observe counts one call to endpoint that ended with err after d. A call
// the breaker refused was not sent: it is counted, not timed.
func (m *breakerMetrics) observe(endpoint string, err error, d time.Duration) {
	class := classOf(err)
	s := m.seriesOf(endpoint, class)
	s.calls.Inc()
	if class != "circuit_open" {
		s.duration.Observe(d.Seconds())
	}
}

// callSeries are the resolved series of one endpoint and class.
type callSeries struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

// seriesOf resolves endpoint and class (both from short fixed lists) to
// their series once, rather than hashing the labels on every call.
// circuit_open has no duration series (nothing was sent), as before: a
// resolved series is exported even if never observed.
func (m *breakerMetrics) seriesOf(endpoint, class string) *callSeries {
	k := [2]string{endpoint, class}
	m.mu.RLock()
	s := m.series[k]
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.series[k]; s == nil {
		s = &callSeries{calls: m.calls.WithLabelValues(endpoint, class)}
		if class != "circuit_open" {
			s.duration = m.duration.WithLabelValues(endpoint, class)
		}
		m.series[k] = s
	}
	return s
}

func classOf(err error) string {
	var ue *flashauth.UpstreamError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrCircuitOpen):
		return "circuit_open"
	case errors.As(err, &ue):
		return ue.Kind.String()
	}
	return "unknown"
}
