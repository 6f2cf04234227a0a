package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Request metrics carry the method and the route apart, lower-case, and a
// method the caller made up cannot mint new series.
func TestRequestMetricLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewServer(Config{Registry: reg})
	for _, m := range []string{http.MethodGet, "BREW", "PROPFIND", http.MethodDelete} {
		req := httptest.NewRequest(m, "http://flashauth.test/no/such/route", nil)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest(http.MethodGet, "http://flashauth.test/healthz", nil)
	h.ServeHTTP(httptest.NewRecorder(), req)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "flashauth_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, l.GetName()+"="+l.GetValue())
			}
			got[strings.Join(parts, ",")] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"method=get,route=unmatched,status=404":    1,
		"method=other,route=unmatched,status=404":  2,
		"method=delete,route=unmatched,status=404": 1,
		"method=get,route=/healthz,status=200":     1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("flashauth_http_requests_total{%s} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series = %v, want exactly %v", got, want)
	}
}
