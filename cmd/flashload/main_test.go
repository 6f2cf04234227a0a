package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth/internal/loadgen"
	"github.com/flashbacktech/flashauth/internal/loadgen/loadgentest"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

// TestMain lets -inproc start this test binary as its child servers.
func TestMain(m *testing.M) {
	loadgen.ServeChildIfAsked()
	os.Exit(m.Run())
}

func noEnv(string) string { return "" }

// runScanned is run, then a scan of everything it printed and its error for
// GitHub tokens and JWTs: flashload mints and rotates thousands of tokens
// and must report numbers, never one of them.
func runScanned(t *testing.T, args []string, getenv func(string) string, stdout, stderr *bytes.Buffer) error {
	t.Helper()
	err := run(t.Context(), args, getenv, stdout, stderr)
	all := stdout.String() + stderr.String()
	if err != nil {
		all += err.Error()
	}
	testkit.NoTokenShaped(t, "flashload's output", all)
	return err
}

func TestRunRejectsBadArguments(t *testing.T) {
	emu := []string{"-emulator-url", "http://127.0.0.1:9"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"remote target", append([]string{"-url", "http://192.0.2.1:8080"}, emu...), "loopback"},
		{"remote emulator", []string{"-url", "http://127.0.0.1:8080", "-emulator-url", "http://example.com"}, "loopback"},
		{"no emulator", []string{"-url", "http://127.0.0.1:8080"}, "-emulator-url"},
		{"no target", emu, "-url is required"},
		{"bad scenario", []string{"-scenario", "burst"}, "scenario"},
		{"zero duration", []string{"-duration", "0s"}, "duration"},
		{"huge concurrency", []string{"-c", "100000"}, "concurrency"},
		{"bad sweep", []string{"-sweep", "1,x"}, "-sweep"},
		{"zero in sweep", []string{"-sweep", "0,8"}, "concurrency"},
		{"inproc with a URL", []string{"-inproc", "-url", "http://127.0.0.1:8080"}, "do not apply"},
		{"inproc unknown target", []string{"-inproc", "-targets", "nginx"}, "unknown target"},
		{"inproc nothing to run", []string{"-inproc", "-targets", "ceiling", "-scenario", "hot", "-n", "1"}, "no target can run"},
		{"kill9 runs", []string{"-kill9", "-runs", "0"}, "-runs"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"unknown flag", []string{"-rps", "5"}, "rps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runScanned(t, tc.args, noEnv, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v, want an error mentioning %q", tc.args, err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed a report after an error: %q", out.String())
			}
		})
	}
}

func TestRunURLReportsJSON(t *testing.T) {
	target, emuURL, emu := loadgentest.Serve(t)
	var out, errOut bytes.Buffer
	args := []string{"-url", target, "-emulator-url", emuURL, "-n", "30", "-sweep", "1,3",
		"-scenario", "hot", "-upstream-latency", "1ms", "-json"}
	if err := runScanned(t, args, noEnv, &out, &errOut); err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	var reps []loadgen.Report
	if err := json.Unmarshal(out.Bytes(), &reps); err != nil {
		t.Fatalf("report is not JSON: %v: %q", err, out.String())
	}
	if len(reps) != 2 || reps[0].Concurrency != 1 || reps[1].Concurrency != 3 {
		t.Fatalf("want one report per concurrency of the sweep: %+v", reps)
	}
	var rotations int64
	for _, r := range reps {
		if r.Scenario != loadgen.ScenarioHot || r.Requests != 30 || r.Statuses["200"] != 30 || r.Upstream != r.Rotations {
			t.Errorf("report: %+v", r)
		}
		rotations += r.Rotations
	}
	if c := emu.Calls().TokenRefresh; c != rotations {
		t.Errorf("the emulator saw %d refreshes, the reports %d rotations", c, rotations)
	}
}

func TestRunDirect(t *testing.T) {
	_, emuURL, emu := loadgentest.Serve(t)
	var out, errOut bytes.Buffer
	args := []string{"-direct", "-emulator-url", emuURL, "-n", "10", "-c", "2"}
	if err := runScanned(t, args, func(k string) string {
		if k == "GITHUB_CLIENT_SECRET" {
			return emu.ClientSecret()
		}
		return ""
	}, &out, &errOut); err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "requests 10, errors 0") || emu.Calls().TokenRefresh != 10 {
		t.Fatalf("report: %s; %d upstream calls", out.String(), emu.Calls().TokenRefresh)
	}
}

func TestRunInprocChart(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "chart.svg")
	var out, errOut bytes.Buffer
	args := []string{"-inproc", "-targets", "ceiling,sqlite", "-sweep", "1,2", "-n", "10", "-svg", svg, "-markdown"}
	if err := runScanned(t, args, noEnv, &out, &errOut); err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	table := out.String()
	if n := strings.Count(table, "| unique |"); n != 4 {
		t.Errorf("want 4 rows (2 targets x 2 concurrencies), got %d:\n%s", n, table)
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("flashauth-sqlite")) {
		t.Fatalf("chart: %v %q", err, b)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []int
		want float64
	}{
		{[]int{7}, 7},
		{[]int{4, 8}, 6},
		{[]int{3, 4, 8}, 4},
		{[]int{4, 4, 8, 8}, 6},
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
		}
	}
}

func TestRunKill9JSON(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"-kill9", "-c", "2", "-kill-after", "200ms", "-kill-upstream-timeout", "1s", "-runs", "2", "-json"}
	if err := runScanned(t, args, noEnv, &out, &errOut); err != nil {
		t.Fatalf("run: %v (%s)", err, errOut.String())
	}
	var ks []loadgen.KillReport
	if err := json.Unmarshal(out.Bytes(), &ks); err != nil {
		t.Fatalf("not JSON: %v: %q", err, out.String())
	}
	if len(ks) != 2 {
		t.Fatalf("want one report per run: %+v", ks)
	}
	for _, k := range ks {
		if k.Workers != 2 || k.Alive+k.Dead != 2 || len(k.Other) != 0 {
			t.Errorf("report: %+v", k)
		}
	}
}
