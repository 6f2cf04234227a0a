package github

import (
	"errors"
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
}

func newBreakerMetrics(b *Breaker) *breakerMetrics {
	m := &breakerMetrics{
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
	m.calls.WithLabelValues(endpoint, class).Inc()
	if class != "circuit_open" {
		m.duration.WithLabelValues(endpoint, class).Observe(d.Seconds())
	}
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
