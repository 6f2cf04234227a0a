package github

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashbacktech/flashauth"
)

// sample returns the value of the series name{labels} in reg (a histogram's
// sample count), and whether it exists.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// The breaker counts every call by endpoint and class, times those it sent,
// and shows its state.
func TestBreakerMetrics(t *testing.T) {
	b, stub, _ := newTestBreaker()
	reg := prometheus.NewRegistry()
	if err := b.Register(reg); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_ = refresh(ctx, b)
	if _, err := b.User(ctx, testAccess); err != nil {
		t.Fatal(err)
	}
	stub.set(upstream(flashauth.UpstreamRejected))
	_ = refresh(ctx, b)
	trip(t, b, stub) // three transient failures
	_ = refresh(ctx, b)
	if _, err := b.Emails(ctx, testAccess); err == nil {
		t.Fatal("an open breaker let /user/emails through")
	}
	for _, c := range []struct {
		endpoint, class string
		calls, timed    float64
	}{
		{"refresh", "ok", 1, 1}, {"user", "ok", 1, 1}, {"refresh", "rejected", 1, 1},
		{"refresh", "transient", 3, 3},
		// Refused by the open breaker: counted, not sent, not timed.
		{"refresh", "circuit_open", 1, 0}, {"emails", "circuit_open", 1, 0},
	} {
		labels := map[string]string{"endpoint": c.endpoint, "class": c.class}
		if got, _ := sample(t, reg, "flashauth_github_calls_total", labels); got != c.calls {
			t.Errorf("calls%v = %v, want %v", labels, got, c.calls)
		}
		if got, _ := sample(t, reg, "flashauth_github_call_duration_seconds", labels); got != c.timed {
			t.Errorf("latency observations%v = %v, want %v", labels, got, c.timed)
		}
	}
	for state, want := range map[string]float64{"closed": 0, "open": 1, "half-open": 0} {
		if got, ok := sample(t, reg, "flashauth_github_breaker_state", map[string]string{"state": state}); !ok || got != want {
			t.Errorf("breaker_state{state=%s} = %v (present %v), want %v", state, got, ok, want)
		}
	}
	if err := b.Register(reg); err == nil {
		t.Error("registering twice with one registry succeeded")
	}
}
