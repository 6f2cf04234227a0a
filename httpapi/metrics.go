package httpapi

import (
	"strconv"
	"strings"
	"sync"
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

	seriesMu sync.RWMutex
	series   map[seriesKey]*series
	// The refresh outcomes every request can have, resolved once.
	refreshOK, refreshJoined, refreshReplayed prometheus.Counter
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
	}
	reg.MustRegister(m.requests, m.duration, m.refreshes, m.rateLimited)
	m.series = make(map[seriesKey]*series)
	m.refreshOK = m.refreshes.WithLabelValues("ok")
	m.refreshJoined = m.refreshes.WithLabelValues("joined")
	m.refreshReplayed = m.refreshes.WithLabelValues("replayed")
	return m
}

// observe counts a request. route is the mux pattern ("POST /token") or
// "unmatched"; its method goes to its own label.
func (m *metrics) observe(route, method string, status int, d time.Duration) {
	// Every route, method and status met is resolved to its two series
	// once: label normalization and the vectors' hashing of label values
	// are not per-request work. The keys are as bounded as the labels:
	// route is a mux pattern or "unmatched", and only the methods as
	// clients send them (GET, post) are keys; any other spelling is
	// labelled afresh each time.
	k := seriesKey{route: route, method: method, status: status}
	cache := cachedMethod[method]
	if cache {
		m.seriesMu.RLock()
		o := m.series[k]
		m.seriesMu.RUnlock()
		if o != nil {
			o.observe(d)
			return
		}
	}
	if i := strings.IndexByte(route, ' '); i > 0 {
		method, route = route[:i], route[i+1:]
	}
	method, route = strings.ToLower(method), strings.ToLower(route) // "/token/{tokenid}"
	if !knownMethod[method] {
		method = "other" // the method is the caller's choice: bound the label's values
	}
	o := &series{
		requests: m.requests.WithLabelValues(method, route, strconv.Itoa(status)),
		duration: m.duration.WithLabelValues(method, route),
	}
	if cache {
		m.seriesMu.Lock()
		m.series[k] = o
		m.seriesMu.Unlock()
	}
	o.observe(d)
}

// seriesKey names the series a request is counted in, before the labels'
// normalization.
type seriesKey struct {
	route, method string
	status        int
}

// series are the resolved series of one seriesKey.
type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func (o *series) observe(d time.Duration) {
	o.requests.Inc()
	o.duration.Observe(d.Seconds())
}

var knownMethod = map[string]bool{
	"get": true, "head": true, "post": true, "put": true, "patch": true,
	"delete": true, "options": true, "connect": true, "trace": true,
}

// cachedMethod are the spellings of the known methods whose series observe
// keeps resolved.
var cachedMethod = func() map[string]bool {
	m := make(map[string]bool, 2*len(knownMethod))
	for k := range knownMethod {
		m[k], m[strings.ToUpper(k)] = true, true
	}
	return m
}()

// refreshOutcome counts a GitHub refresh request: how it was answered (ok
// when it did the work, joined, replayed) or its error code.
func (m *metrics) refreshOutcome(replayed, joined bool, err error) {
	switch {
	case err != nil:
		m.refreshes.WithLabelValues(strings.ToLower(flashauth.ErrorCode(err))).Inc()
	case replayed:
		m.refreshReplayed.Inc()
	case joined:
		m.refreshJoined.Inc()
	default:
		m.refreshOK.Inc()
	}
}

// limitedBy counts err against limit when it is a rate-limit refusal.
func (m *metrics) limitedBy(limit string, err error) {
	if flashauth.ErrorCode(err) == flashauth.CodeRateLimited {
		m.rateLimited.WithLabelValues(limit).Inc()
	}
}
