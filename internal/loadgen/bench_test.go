package loadgen_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/internal/loadgen"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// TestBench starts every target as a child process (this test binary, see
// TestMain) and runs each scenario on the targets that can run it, at
// small size.
func TestBench(t *testing.T) {
	cfg := loadgen.BenchConfig{Targets: []string{loadgen.TargetDirect, loadgen.TargetCeiling, loadgen.TargetSQLite}}
	if os.Getenv(pgtest.EnvURL) != "" {
		cfg.Targets, cfg.DatabaseURL = append(cfg.Targets, loadgen.TargetPostgres), pgtest.URL(t)
	}
	b, err := loadgen.StartBench(t.Context(), cfg)
	if err != nil {
		t.Fatalf("StartBench: %v", err)
	}
	t.Cleanup(b.Close)
	steps := []loadgen.Step{
		{Scenario: loadgen.ScenarioUnique, Concurrency: 1},
		{Scenario: loadgen.ScenarioUnique, Concurrency: 4, Latency: 5 * time.Millisecond},
		{Scenario: loadgen.ScenarioHot, Concurrency: 8},
		{Scenario: loadgen.ScenarioSession, Concurrency: 2},
		{Scenario: loadgen.ScenarioSignin, Concurrency: 2},
	}
	var progress bytes.Buffer
	reports, err := loadgen.RunSteps(t.Context(), b, steps, loadgen.Config{Duration: time.Minute, MaxRequests: 24}, &progress)
	if err != nil {
		t.Fatalf("RunSteps: %v", err)
	}
	// The baselines run unique only (two steps each), flashauth all five.
	stores := len(cfg.Targets) - 2
	if want := 2*2 + 5*stores; len(reports) != want {
		t.Fatalf("%d reports, want %d:\n%s", len(reports), want, progress.String())
	}
	for _, r := range reports {
		if r.Requests != 24 || r.Errors != 0 {
			t.Errorf("%s %s: %d requests, errors %v", r.Label, r.Scenario, r.Requests, r.Statuses)
		}
		wantUp := r.Rotations
		if r.Scenario == loadgen.ScenarioSession {
			wantUp = 0
		}
		if r.Upstream != wantUp || (r.Scenario != loadgen.ScenarioHot && r.Rotations != 24) {
			t.Errorf("%s %s: upstream calls %d, rotations %d", r.Label, r.Scenario, r.Upstream, r.Rotations)
		}
		if runtime.GOOS == "linux" && r.ServerPeakRSS <= 0 {
			t.Errorf("%s: no peak RSS measured", r.Label)
		}
		if r.Concurrency == 4 && r.UpstreamLatency != 5*time.Millisecond {
			t.Errorf("%s: upstream latency %s not reported", r.Label, r.UpstreamLatency)
		}
	}
	if _, err := b.Run(t.Context(), "nonesuch", 0, loadgen.Config{}); err == nil {
		t.Error("Run on a target that was not started succeeded")
	}

	var md strings.Builder
	if err := loadgen.WriteMarkdown(&md, reports); err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"| direct |", "| ceiling |", "| flashauth-sqlite |"} {
		if !strings.Contains(md.String(), label) {
			t.Errorf("table lacks %q:\n%s", label, md.String())
		}
	}

	var side strings.Builder
	if err := loadgen.WriteSideBySide(&side, reports); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"| unique, 1 clients, 0 ms upstream |", "| unique, 4 clients, 5 ms upstream |", "| signin, 2 clients, 0 ms upstream |"} {
		if !strings.Contains(side.String(), row) {
			t.Errorf("side-by-side table lacks %q:\n%s", row, side.String())
		}
	}
	if n := strings.Count(side.String(), "\n"); n != 2+len(steps) {
		t.Errorf("side-by-side table has %d lines, want a header, a rule and %d steps:\n%s", n, len(steps), side.String())
	}

	// The chart of the unique runs at 0 ms: well-formed SVG with a line
	// per target in each of its two panels.
	var svg bytes.Buffer
	if err := loadgen.WriteChart(&svg, reports, loadgen.ScenarioUnique, 0); err != nil {
		t.Fatal(err)
	}
	if lines := countElements(t, svg.Bytes(), "polyline"); lines != 2*len(cfg.Targets) {
		t.Errorf("%d lines in the chart, want %d", lines, 2*len(cfg.Targets))
	}
	if err := loadgen.WriteChart(io.Discard, reports, loadgen.ScenarioUnique, time.Hour); err == nil {
		t.Error("a chart without data was drawn")
	}
}

// TestBenchReplicas runs flashauth as two processes on one SQLite file:
// still one upstream call per rotation, and the label says so.
func TestBenchReplicas(t *testing.T) {
	b, err := loadgen.StartBench(t.Context(), loadgen.BenchConfig{Targets: []string{loadgen.TargetSQLite}, Replicas: 2})
	if err != nil {
		t.Fatalf("StartBench: %v", err)
	}
	t.Cleanup(b.Close)
	steps := []loadgen.Step{{Scenario: loadgen.ScenarioUnique, Concurrency: 4}, {Scenario: loadgen.ScenarioHot, Concurrency: 8}}
	reports, err := loadgen.RunSteps(t.Context(), b, steps, loadgen.Config{Duration: time.Minute, MaxRequests: 24}, nil)
	if err != nil {
		t.Fatalf("RunSteps: %v", err)
	}
	for _, r := range reports {
		if r.Label != "flashauth-sqlite-x2" || r.Targets != 2 || r.Errors != 0 || r.Rotations < 1 || r.Upstream != r.Rotations {
			t.Errorf("report: %+v", r)
		}
	}
}

func TestStartBenchRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  loadgen.BenchConfig
		want string
	}{
		{"nothing", loadgen.BenchConfig{}, "no bench target"},
		{"unknown", loadgen.BenchConfig{Targets: []string{"nginx"}}, "unknown target"},
		{"postgres without URL", loadgen.BenchConfig{Targets: []string{loadgen.TargetPostgres}}, "postgres://"},
		{"too many replicas", loadgen.BenchConfig{Targets: []string{loadgen.TargetSQLite}, Replicas: 100}, "replicas"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := loadgen.StartBench(t.Context(), tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("StartBench: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestKillCount kills a flashauth child under load and checks the count
// adds up: every worker was cut by the kill, and each lineage is found alive
// or dead after the restart - never anything else.
func TestKillCount(t *testing.T) {
	stores := map[string]string{"sqlite": ""}
	if os.Getenv(pgtest.EnvURL) != "" {
		stores["postgres"] = pgtest.URL(t)
	}
	for name, db := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k, err := loadgen.KillCount(t.Context(), loadgen.KillConfig{
				Workers: 4, KillAfter: 300 * time.Millisecond, UpstreamTimeout: time.Second, DatabaseURL: db,
			})
			if err != nil {
				t.Fatalf("KillCount: %v", err)
			}
			if k.Workers != 4 || k.Cut != 4 || k.Alive+k.Dead != 4 || len(k.Other) != 0 || k.Requests == 0 {
				t.Fatalf("report: %+v", k)
			}
			var out strings.Builder
			if err := k.WriteText(&out); err != nil || !strings.Contains(out.String(), "dead") {
				t.Errorf("WriteText: %v %q", err, out.String())
			}
		})
	}
}

func countElements(t *testing.T, doc []byte, name string) int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	n := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			n++
		}
	}
}
