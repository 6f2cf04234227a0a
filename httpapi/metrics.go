package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashbacktech/flashauth"
)

type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	refreshes   *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashauth_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flashauth_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashauth_github_refresh_total", Help: "GitHub refreshes by outcome (ok, replayed, or the error code).",
		}, []string{"outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashauth_rate_limited_total", Help: "Requests refused by a rate limit, by limit.",
		}, []string{"limit"}),
	}
	reg.MustRegister(m.requests, m.duration, m.refreshes, m.rateLimited)
	return m
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) refreshOutcome(replayed bool, err error) {
	switch {
	case err != nil:
		m.refreshes.WithLabelValues(flashauth.ErrorCode(err)).Inc()
	case replayed:
		m.refreshes.WithLabelValues("replayed").Inc()
	default:
		m.refreshes.WithLabelValues("ok").Inc()
	}
}
