package loadgen_test

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/loadgen"
	"github.com/flashbacktech/flashauth/internal/loadgen/loadgentest"
)

// TestMain lets the tests of Bench and KillCount start this test binary as
// their child servers.
func TestMain(m *testing.M) {
	loadgen.ServeChildIfAsked()
	os.Exit(m.Run())
}

// small bounds a test run by count; the duration is only a backstop.
func small(cfg loadgen.Config) loadgen.Config {
	cfg.Duration, cfg.MaxRequests = time.Minute, 40
	return cfg
}

func TestRunScenarios(t *testing.T) {
	target, emuURL, emu := loadgentest.Serve(t)
	// A little upstream latency makes the hot workers overlap.
	emu.SetLatency(2 * time.Millisecond)
	tests := []struct {
		scenario loadgen.Scenario
		// check holds the scenario's correctness facts.
		check func(r loadgen.Report) bool
	}{
		// Every unique request is one rotation and one refresh at GitHub.
		{loadgen.ScenarioUnique, func(r loadgen.Report) bool {
			return r.Upstream == int64(r.Requests) && r.Rotations == r.Upstream
		}},
		// However many workers race on a token, GitHub sees it once.
		{loadgen.ScenarioHot, func(r loadgen.Report) bool {
			return r.Rotations >= 1 && r.Upstream == r.Rotations && r.Rotations <= int64(r.Requests)
		}},
		// Session refreshes never call GitHub (the sign-ins happen before
		// the measured run).
		{loadgen.ScenarioSession, func(r loadgen.Report) bool {
			return r.Upstream == 0 && r.Rotations == int64(r.Requests)
		}},
		// Each sign-in exchanges one code.
		{loadgen.ScenarioSignin, func(r loadgen.Report) bool {
			return r.Upstream == int64(r.Requests) && r.Rotations == r.Upstream
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.scenario), func(t *testing.T) {
			rep, err := loadgen.Run(t.Context(), small(loadgen.Config{
				Targets: []string{target}, Emulator: emuURL, Scenario: tc.scenario, Concurrency: 6, HotTokens: 2,
			}))
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if rep.Requests != 40 || rep.Errors != 0 || rep.Statuses["200"] != rep.Requests {
				t.Fatalf("report: %+v", rep)
			}
			if !tc.check(rep) {
				t.Errorf("%s: upstream calls %d, rotations %d, requests %d", tc.scenario, rep.Upstream, rep.Rotations, rep.Requests)
			}
			if rep.P50 <= 0 || rep.P50 > rep.P90 || rep.P90 > rep.P99 || rep.P99 > rep.Max {
				t.Errorf("percentiles out of order: %+v", rep)
			}
			var out strings.Builder
			if err := rep.WriteText(&out); err != nil || !strings.Contains(out.String(), "throughput") {
				t.Errorf("WriteText: %v %q", err, out.String())
			}
		})
	}
}

func TestRunDirect(t *testing.T) {
	emu := githubemu.New(githubemu.Config{ClientSecret: "direct-secret"})
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); srv.Close() })
	rep, err := loadgen.Run(t.Context(), small(loadgen.Config{
		Targets: []string{srv.URL}, Emulator: srv.URL, Direct: true,
		ClientID: githubemu.DefaultClientID, ClientSecret: "direct-secret", Concurrency: 4,
	}))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Requests != 40 || rep.Errors != 0 || rep.Upstream != 40 || rep.Rotations != 40 {
		t.Fatalf("report: %+v", rep)
	}

	// A wrong secret is GitHub's error, counted by its code.
	rep, err = loadgen.Run(t.Context(), small(loadgen.Config{
		Targets: []string{srv.URL}, Emulator: srv.URL, Direct: true,
		ClientID: githubemu.DefaultClientID, ClientSecret: "wrong", Concurrency: 2,
	}))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Errors != rep.Requests || rep.Statuses["200 incorrect_client_credentials"] != rep.Requests || rep.Rotations != 0 {
		t.Fatalf("report: %+v", rep)
	}
}

// A worker that cannot sign in (here: the target is not flashauth) fails
// the run before the clock starts, with one error, not one per worker.
func TestRunSetupFails(t *testing.T) {
	emu := githubemu.New(githubemu.Config{})
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { emu.Close(); srv.Close() })
	_, err := loadgen.Run(t.Context(), small(loadgen.Config{
		Targets: []string{srv.URL}, Emulator: srv.URL, Scenario: loadgen.ScenarioSession, Concurrency: 3,
	}))
	if err == nil || !strings.Contains(err.Error(), "setup of 3 of 3 workers failed") || strings.Count(err.Error(), "sign-in") != 1 {
		t.Fatalf("Run: %v", err)
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
}

func TestRunCountsErrorsByCode(t *testing.T) {
	target, emuURL, emu := loadgentest.Serve(t)
	emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Status: 502})
	rep, err := loadgen.Run(t.Context(), loadgen.Config{
		Targets: []string{target}, Emulator: emuURL, Duration: time.Minute, MaxRequests: 20, Concurrency: 2,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Requests == 0 || rep.Statuses["503 UPSTREAM_UNAVAILABLE"] != rep.Requests || rep.Errors != rep.Requests || rep.Rotations != 0 {
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
		{"huge concurrency", func(c *loadgen.Config) { c.Concurrency = loadgen.MaxConcurrency + 1 }, "concurrency"},
		{"negative max", func(c *loadgen.Config) { c.MaxRequests = -1 }, "max requests"},
		{"bad scenario", func(c *loadgen.Config) { c.Scenario = "warm" }, "scenario"},
		{"direct hot", func(c *loadgen.Config) { c.Direct, c.ClientSecret, c.Scenario = true, "s", loadgen.ScenarioHot }, "only unique"},
		{"direct without secret", func(c *loadgen.Config) { c.Direct = true }, "client secret"},
		{"too many hot tokens", func(c *loadgen.Config) { c.HotTokens = 5000 }, "hot tokens"},
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

func TestParseScenario(t *testing.T) {
	for _, s := range loadgen.Scenarios {
		if got, err := loadgen.ParseScenario(string(s)); err != nil || got != s {
			t.Errorf("ParseScenario(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := loadgen.ParseScenario("mixed"); err == nil {
		t.Error("ParseScenario accepted an unknown scenario")
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
