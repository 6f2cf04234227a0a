// Command flashload is flashauth's load generator and benchmark tool.
//
// Against servers already running (flashauth, and the GitHub emulator whose
// control API mints the grants and counts the upstream calls):
//
//	flashload -url http://127.0.0.1:8080 -emulator-url http://127.0.0.1:9090 -scenario unique -c 32 -duration 10s
//
// Or in-process: the emulator and each target start as child processes of
// flashload (so their CPU time and peak RSS are measured apart from the load
// generator) and run side by side - direct (the emulator's token endpoint
// called straight), ceiling (a lean proxy with no store), flashauth on
// SQLite, and on PostgreSQL when -database-url is given:
//
//	flashload -inproc -scenario unique -sweep 1,8,32,128 -svg chart.svg
//	flashload -suite -duration 5s -markdown     # the table of docs/benchmarks.md
//	flashload -kill9                            # refreshes lost in flight by kill -9
//
// Scenarios: unique, hot, session, signin (see docs/benchmarks.md). Every run
// stops by itself (-duration, -n) and loads only loopback addresses unless
// -allow-remote is given.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/internal/loadgen"
)

func main() {
	loadgen.ServeChildIfAsked()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "flashload:", err)
		os.Exit(1)
	}
}

type options struct {
	url, emulatorURL, clientID, clientSecret string
	direct, inproc, suite, kill9             bool
	targets, databaseURL                     string
	scenario                                 string
	concurrency                              int
	sweep                                    string
	duration, latency, timeout, killAfter    time.Duration
	killUpstreamTimeout                      time.Duration
	maxRequests, hotTokens, replicas, runs   int
	asJSON, markdown, allowRemote            bool
	svg, cpuProfileDir, heapProfileDir       string
	maxRefreshes                             string
	concurrencySet, latencySet               bool // -c, -upstream-latency were given
}

// run parses args, generates the load and prints the report.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flashload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.url, "url", "", "flashauth base URL to load (several, comma-separated, are used in turn); needs -emulator-url")
	fs.StringVar(&o.emulatorURL, "emulator-url", "", "GitHub emulator base URL: its control API mints grants and codes and counts upstream calls")
	fs.BoolVar(&o.direct, "direct", false, "with -emulator-url: load the emulator's token endpoint straight (needs -client-secret or $GITHUB_CLIENT_SECRET)")
	fs.StringVar(&o.clientID, "client-id", githubemu.DefaultClientID, "GitHub App client id, for -direct")
	fs.StringVar(&o.clientSecret, "client-secret", "", "GitHub App client secret, for -direct (default $GITHUB_CLIENT_SECRET)")
	fs.BoolVar(&o.inproc, "inproc", false, "start the emulator and the -targets as child processes and load them side by side")
	fs.StringVar(&o.targets, "targets", "", "with -inproc: of direct, ceiling, sqlite, postgres (default direct,ceiling,sqlite, plus postgres with -database-url)")
	fs.IntVar(&o.replicas, "replicas", 1, "with -inproc: flashauth processes per store, sharing its database; requests rotate over them")
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL of the postgres target and of -kill9 (flashload works in a schema of its own there, dropped at the end)")
	fs.BoolVar(&o.suite, "suite", false, "run the table of docs/benchmarks.md (implies -inproc; -sweep, -scenario and -c are ignored)")
	fs.BoolVar(&o.kill9, "kill9", false, "measure the refreshes a kill -9 loses in flight: unique load on a flashauth child on SQLite, SIGKILL, restart, count dead lineages")
	fs.DurationVar(&o.killUpstreamTimeout, "kill-upstream-timeout", 10*time.Second, "with -kill9: flashauth's upstream timeout; the check after the restart waits out the dead process's claims, leased for it plus 5s")
	fs.IntVar(&o.runs, "runs", 1, "with -kill9: how many times to measure (the spread is wide; a median is printed)")
	fs.DurationVar(&o.killAfter, "kill-after", 3*time.Second, "with -kill9: how long the load runs before the kill")
	fs.StringVar(&o.scenario, "scenario", "unique", "workload: unique, hot, session or signin")
	fs.IntVar(&o.concurrency, "c", 16, "concurrent clients (workers), each with one request in flight")
	fs.StringVar(&o.sweep, "sweep", "", "comma-separated concurrencies to run in turn instead of -c, e.g. 1,8,32,128")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each run sends requests (at most 1h)")
	fs.IntVar(&o.maxRequests, "n", loadgen.DefaultMaxRequests, "stop each run after this many requests")
	fs.IntVar(&o.hotTokens, "hot-tokens", loadgen.DefaultHotTokens, "lineages the hot scenario races on")
	fs.DurationVar(&o.latency, "upstream-latency", 0, "latency the emulator adds to every GitHub call (set through its control API; with -emulator-url only when given)")
	fs.DurationVar(&o.timeout, "timeout", loadgen.DefaultRequestTimeout, "timeout of one request")
	fs.BoolVar(&o.asJSON, "json", false, "print the reports as JSON")
	fs.BoolVar(&o.markdown, "markdown", false, "print the reports as Markdown: targets side by side, then every figure")
	fs.StringVar(&o.svg, "svg", "", "write a chart of throughput and p99 against concurrency to this file")
	fs.StringVar(&o.cpuProfileDir, "cpuprofile-target", "", "with -inproc or -kill9: every child process (emulator, baselines, flashauth) writes a CPU profile of its life to this directory as ROLE-PID.pprof, for go tool pprof")
	fs.StringVar(&o.heapProfileDir, "heapprofile-target", "", "with -inproc or -kill9: every child process writes a heap and a goroutine profile to this directory every second, as ROLE-PID-heap-N.pprof and ROLE-PID-goroutine-N.pprof, for go tool pprof")
	fs.StringVar(&o.maxRefreshes, "max-refreshes", "", "with -inproc or -kill9: FLASHAUTH_MAX_REFRESHES of the flashauth children (default: serve's)")
	fs.BoolVar(&o.allowRemote, "allow-remote", false, "allow targets and an emulator off the loopback interface")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		o.concurrencySet = o.concurrencySet || f.Name == "c"
		o.latencySet = o.latencySet || f.Name == "upstream-latency"
	})
	if o.clientSecret == "" {
		o.clientSecret = getenv("GITHUB_CLIENT_SECRET")
	}
	for env, dir := range map[string]string{loadgen.EnvCPUProfile: o.cpuProfileDir, loadgen.EnvHeapProfile: o.heapProfileDir} {
		if dir == "" {
			continue
		}
		// The children inherit the environment.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.Setenv(env, dir); err != nil {
			return err
		}
	}
	if o.maxRefreshes != "" {
		if n, err := strconv.Atoi(o.maxRefreshes); err != nil || n < 0 {
			return fmt.Errorf("-max-refreshes: %q is not a whole number", o.maxRefreshes)
		}
		if err := os.Setenv(loadgen.EnvMaxRefreshes, o.maxRefreshes); err != nil {
			return err
		}
	}
	if o.kill9 {
		return runKill(ctx, o, stdout)
	}
	sc, err := loadgen.ParseScenario(o.scenario)
	if err != nil {
		return err
	}
	concurrencies := []int{o.concurrency}
	if o.sweep != "" {
		if concurrencies, err = parseInts(o.sweep); err != nil {
			return fmt.Errorf("-sweep: %w", err)
		}
	}
	for _, c := range concurrencies {
		if c < 1 || c > loadgen.MaxConcurrency {
			return fmt.Errorf("concurrency %d out of range [1, %d]", c, loadgen.MaxConcurrency)
		}
	}
	if o.duration <= 0 || o.duration > loadgen.MaxDuration {
		return fmt.Errorf("duration %s out of range (0, %s]", o.duration, loadgen.MaxDuration)
	}
	base := loadgen.Config{Duration: o.duration, MaxRequests: o.maxRequests, HotTokens: o.hotTokens,
		RequestTimeout: o.timeout, AllowRemote: o.allowRemote}

	var reports []loadgen.Report
	if o.inproc || o.suite {
		reports, err = runInproc(ctx, o, sc, concurrencies, base, stderr)
	} else {
		reports, err = runURL(ctx, o, sc, concurrencies, base)
	}
	if err != nil {
		return err
	}
	if len(reports) == 0 {
		return fmt.Errorf("no target can run the %s scenario (the baselines run only unique)", sc)
	}
	return output(o, reports, stdout)
}

// runURL loads servers that are already running.
func runURL(ctx context.Context, o options, sc loadgen.Scenario, concurrencies []int, base loadgen.Config) ([]loadgen.Report, error) {
	if o.emulatorURL == "" {
		return nil, errors.New("-emulator-url is required (or -inproc)")
	}
	if err := loadgen.CheckURL(o.emulatorURL, o.allowRemote); err != nil {
		return nil, err
	}
	base.Emulator = o.emulatorURL
	switch {
	case o.direct:
		base.Targets, base.Direct, base.Label = []string{o.emulatorURL}, true, loadgen.TargetDirect
		base.ClientID, base.ClientSecret = o.clientID, o.clientSecret
	case o.url == "":
		return nil, errors.New("-url is required (or -direct, or -inproc)")
	default:
		for _, t := range strings.Split(o.url, ",") {
			if t = strings.TrimSpace(t); t != "" {
				base.Targets = append(base.Targets, t)
			}
		}
		base.Label = "flashauth"
	}
	base.Scenario = sc
	for _, t := range base.Targets {
		if err := loadgen.CheckURL(t, o.allowRemote); err != nil {
			return nil, err
		}
	}
	// The emulator keeps whatever latency it has unless told otherwise.
	if o.latencySet {
		if err := loadgen.SetLatency(ctx, loadgen.NewClient(1), o.emulatorURL, o.latency.Milliseconds()); err != nil {
			return nil, fmt.Errorf("set the emulator's latency: %w", err)
		}
	}
	var out []loadgen.Report
	for _, c := range concurrencies {
		if err := loadgen.RaiseFileLimit(uint64(c*len(base.Targets) + 256)); err != nil {
			return nil, err
		}
		cfg := base
		cfg.Concurrency = c
		rep, err := loadgen.Run(ctx, cfg)
		if err != nil {
			return nil, err
		}
		rep.UpstreamLatency = o.latency
		out = append(out, rep)
	}
	return out, nil
}

// runInproc starts the bench's children and runs the steps on them.
func runInproc(ctx context.Context, o options, sc loadgen.Scenario, concurrencies []int, base loadgen.Config, stderr io.Writer) ([]loadgen.Report, error) {
	if o.url != "" || o.emulatorURL != "" {
		return nil, errors.New("-inproc starts its own servers: -url and -emulator-url do not apply")
	}
	targets := []string{loadgen.TargetDirect, loadgen.TargetCeiling, loadgen.TargetSQLite}
	if o.databaseURL != "" {
		targets = append(targets, loadgen.TargetPostgres)
	}
	if o.targets != "" {
		targets = nil
		for _, t := range strings.Split(o.targets, ",") {
			if t = strings.TrimSpace(t); t != "" {
				targets = append(targets, t)
			}
		}
	}
	steps := loadgen.Suite()
	if !o.suite {
		steps = nil
		for _, c := range concurrencies {
			steps = append(steps, loadgen.Step{Scenario: sc, Concurrency: c, Latency: o.latency})
		}
	}
	if err := loadgen.RaiseFileLimit(256); err != nil {
		return nil, err
	}
	b, err := loadgen.StartBench(ctx, loadgen.BenchConfig{Targets: targets, DatabaseURL: o.databaseURL, Replicas: o.replicas})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return loadgen.RunSteps(ctx, b, steps, base, stderr)
}

// runKill is -kill9.
func runKill(ctx context.Context, o options, stdout io.Writer) error {
	c := o.concurrency
	if !o.concurrencySet {
		c = 24 // the figure of issue 9: 24 workers rotating on SQLite
	}
	if o.runs < 1 || o.runs > 100 {
		return fmt.Errorf("-runs %d out of range [1, 100]", o.runs)
	}
	var ks []loadgen.KillReport
	for range o.runs {
		k, err := loadgen.KillCount(ctx, loadgen.KillConfig{Workers: c, KillAfter: o.killAfter, Latency: o.latency,
			UpstreamTimeout: o.killUpstreamTimeout, DatabaseURL: o.databaseURL})
		if err != nil {
			return err
		}
		ks = append(ks, k)
		if !o.asJSON {
			if err := k.WriteText(stdout); err != nil {
				return err
			}
		}
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ks)
	}
	if len(ks) > 1 {
		dead := make([]int, len(ks))
		for i, k := range ks {
			dead[i] = k.Dead
		}
		slices.Sort(dead)
		_, err := fmt.Fprintf(stdout, "dead lineages over %d runs: %v, median %g\n", len(ks), dead, median(dead))
		return err
	}
	return nil
}

func median(sorted []int) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return float64(sorted[n/2])
	}
	return float64(sorted[n/2-1]+sorted[n/2]) / 2
}

// output prints the reports and writes the chart.
func output(o options, reports []loadgen.Report, stdout io.Writer) error {
	if o.svg != "" {
		f, err := os.Create(o.svg)
		if err != nil {
			return err
		}
		sc, lat := reports[0].Scenario, reports[0].UpstreamLatency
		err = loadgen.WriteChart(f, reports, sc, lat)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("-svg: %w", err)
		}
	}
	switch {
	case o.asJSON:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	case o.markdown:
		if err := loadgen.WriteSideBySide(stdout, reports); err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		return loadgen.WriteMarkdown(stdout, reports)
	}
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := r.WriteText(stdout); err != nil {
			return err
		}
	}
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}
