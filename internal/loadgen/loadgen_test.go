package loadgen_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/internal/loadgen"
	"github.com/flashbacktech/flashauth/internal/loadgen/loadgentest"
	"github.com/flashbacktech/flashauth/githubemu"
)

func TestRunModes(t *testing.T) {
	target, emuURL, _ := loadgentest.Serve(t)
	tests := []struct {
		mode      loadgen.Mode
		hotTokens int
		// upstream reports whether the upstream count fits the mode.
		upstream func(rep loadgen.Report) bool
	}{
		// Every unique request is one refresh at GitHub.
		{loadgen.ModeUnique, 0, func(r loadgen.Report) bool { return r.Upstream == int64(r.Requests) }},
		// Within the replay window a hot token is refreshed once.
		{loadgen.ModeHot, 2, func(r loadgen.Report) bool { return r.Upstream >= 1 && r.Upstream <= 2 }},
		{loadgen.ModeMixed, 1, func(r loadgen.Report) bool {
			return r.Upstream >= 1 && r.Upstream < int64(r.Requests)
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			rep, err := loadgen.Run(t.Context(), loadgen.Config{
				Targets: []string{target}, Emulator: emuURL, Mode: tc.mode,
				Duration: 300 * time.Millisecond, Concurrency: 4, HotTokens: tc.hotTokens,
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if rep.Requests < 4 || rep.Errors != 0 || rep.Statuses["200"] != rep.Requests {
				t.Fatalf("report: %+v", rep)
			}
			if !tc.upstream(rep) {
				t.Errorf("upstream refreshes %d do not fit mode %s with %d requests", rep.Upstream, tc.mode, rep.Requests)
			}
			if rep.P50 <= 0 || rep.P50 > rep.P90 || rep.P90 > rep.P99 || rep.P99 > rep.Max {
				t.Errorf("percentiles out of order: %+v", rep)
			}
			if rep.Throughput <= 0 {
				t.Errorf("throughput %v", rep.Throughput)
			}
			var out strings.Builder
			if err := rep.WriteText(&out); err != nil || !strings.Contains(out.String(), "throughput") {
				t.Errorf("WriteText: %v %q", err, out.String())
			}
		})
	}
}

func TestRunStopsAtMaxRequests(t *testing.T) {
	target, emuURL, emu := loadgentest.Serve(t)
	rep, err := loadgen.Run(t.Context(), loadgen.Config{
		Targets: []string{target, target}, Emulator: emuURL,
		Duration: time.Minute, MaxRequests: 7, Concurrency: 3,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Requests != 7 || rep.Statuses["200"] != 7 || emu.Calls().TokenRefresh != 7 {
		t.Fatalf("want exactly 7 refreshes, got report %+v and %d upstream", rep, emu.Calls().TokenRefresh)
	}
	if rep.Elapsed > 30*time.Second {
		t.Fatalf("the count bound did not end the run: %s", rep.Elapsed)
	}
}

func TestRunCountsErrorsByCode(t *testing.T) {
	target, emuURL, emu := loadgentest.Serve(t)
	emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: 502})
	rep, err := loadgen.Run(t.Context(), loadgen.Config{
		Targets: []string{target}, Emulator: emuURL, Duration: 200 * time.Millisecond, Concurrency: 2,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Requests == 0 || rep.Statuses["503 UPSTREAM_UNAVAILABLE"] != rep.Requests || rep.Errors != rep.Requests {
		t.Fatalf("report: %+v", rep)
	}
}

func TestRunCancelled(t *testing.T) {
	target, emuURL, _ := loadgentest.Serve(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := loadgen.Run(ctx, loadgen.Config{
		Targets: []string{target}, Emulator: emuURL, Duration: time.Second, Concurrency: 1,
	}); err == nil {
		t.Fatal("Run with a cancelled context succeeded")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	ok := loadgen.Config{Targets: []string{"http://127.0.0.1:1"}, Emulator: "http://127.0.0.1:2",
		Duration: time.Second, Concurrency: 1}
	tests := []struct {
		name string
		edit func(*loadgen.Config)
		want string
	}{
		{"no target", func(c *loadgen.Config) { c.Targets = nil }, "no target"},
		{"no emulator", func(c *loadgen.Config) { c.Emulator = "" }, "emulator"},
		{"remote target", func(c *loadgen.Config) { c.Targets = []string{"http://example.com"} }, "loopback"},
		{"remote emulator", func(c *loadgen.Config) { c.Emulator = "http://10.0.0.1:9090" }, "loopback"},
		{"not a URL", func(c *loadgen.Config) { c.Targets = []string{"127.0.0.1:8080"} }, "http(s)"},
		{"zero duration", func(c *loadgen.Config) { c.Duration = 0 }, "duration"},
		{"long duration", func(c *loadgen.Config) { c.Duration = 2 * time.Hour }, "duration"},
		{"zero concurrency", func(c *loadgen.Config) { c.Concurrency = 0 }, "concurrency"},
		{"negative max", func(c *loadgen.Config) { c.MaxRequests = -1 }, "max requests"},
		{"bad mode", func(c *loadgen.Config) { c.Mode = "warm" }, "mode"},
		{"bad ratio", func(c *loadgen.Config) { c.Mode, c.HotRatio = loadgen.ModeMixed, 1.5 }, "ratio"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := loadgen.Run(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url         string
		allowRemote bool
		ok          bool
	}{
		{"http://127.0.0.1:8080", false, true},
		{"http://127.9.9.9:8080", false, true},
		{"http://localhost:8080/", false, true},
		{"https://[::1]:8443", false, true},
		{"http://10.1.2.3:8080", false, false},
		{"http://example.com", false, false},
		{"http://example.com", true, true},
		{"ftp://127.0.0.1", true, false},
		{"127.0.0.1:8080", false, false},
	}
	for _, tc := range tests {
		err := loadgen.CheckURL(tc.url, tc.allowRemote)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", tc.url, tc.allowRemote, err, tc.ok)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
		{ms(hundred...), 90, 90 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := loadgen.Percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.sorted, tc.p, got, tc.want)
		}
	}
}
