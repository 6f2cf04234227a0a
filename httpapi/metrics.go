package httpapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashbacktech/flashauth"
)

// Label values are lower-case throughout: methods as promhttp writes them,
// outcomes and error codes lower-cased.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	refreshes   *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	waiting     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashauth_http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flashauth_http_request_duration_seconds", Help: "HTTP request latency by method and route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashauth_github_refresh_total",
			Help: "GitHub refresh requests by outcome: ok (this request refreshed at GitHub), joined (it shared a refresh in flight), " +
				"replayed (it got a committed outcome back), or the lower-cased error code.",
		}, []string{"outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashauth_rate_limited_total", Help: "Requests refused by a rate limit, by limit (ip, token, user).",
		}, []string{"limit"}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flashauth_refreshes_waiting",
			Help: "Refreshes, sign-ins and session refreshes waiting their turn (FLASHAUTH_MAX_REFRESHES).",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.refreshes, m.rateLimited, m.waiting)
	return m
}

// observe counts a request. route is the mux pattern ("POST /token") or
// "unmatched"; its method goes to its own label.
func (m *metrics) observe(route, method string, status int, d time.Duration) {
	if i := strings.IndexByte(route, ' '); i > 0 {
		method, route = route[:i], route[i+1:]
	}
	method, route = strings.ToLower(method), strings.ToLower(route) // "/token/{tokenid}"
	if !knownMethod[method] {
		method = "other" // the method is the caller's choice: bound the label's values
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

var knownMethod = map[string]bool{
	"get": true, "head": true, "post": true, "put": true, "patch": true,
	"delete": true, "options": true, "connect": true, "trace": true,
}

// refreshOutcome counts a GitHub refresh request: how it was answered (ok
// when it did the work, joined, replayed) or its error code.
func (m *metrics) refreshOutcome(replayed, joined bool, err error) {
	how := "ok"
	switch {
	case err != nil:
		how = strings.ToLower(flashauth.ErrorCode(err))
	case replayed:
		how = "replayed"
	case joined:
		how = "joined"
	}
	m.refreshes.WithLabelValues(how).Inc()
}

// limitedBy counts err against limit when it is a rate-limit refusal.
func (m *metrics) limitedBy(limit string, err error) {
	if flashauth.ErrorCode(err) == flashauth.CodeRateLimited {
		m.rateLimited.WithLabelValues(limit).Inc()
	}
}
