package loadgen

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Step is one row group of a suite: a scenario at a concurrency and an
// upstream latency, run against each of its targets in turn.
type Step struct {
	Scenario    Scenario
	Concurrency int
	Latency     time.Duration
	// Targets the step runs against; a target the bench did not start is
	// skipped. Nil: every target that can run the scenario.
	Targets []string
}

// Sweep is the unique scenario at each concurrency, 0 ms upstream, on every
// target: the data of the chart.
func Sweep(concurrencies []int) []Step {
	var steps []Step
	for _, c := range concurrencies {
		steps = append(steps, Step{Scenario: ScenarioUnique, Concurrency: c})
	}
	return steps
}

// DefaultSweep is the concurrencies of the suite's chart.
var DefaultSweep = []int{1, 8, 32, 128}

// Suite is the table of docs/benchmarks.md: the sweep, hot, session,
// signin, and 2,000 clients with 100 ms upstream. The servers run through
// all steps, and a Go process keeps some of the memory it grew for a step,
// so the biggest step comes last: every step's peak RSS is its own.
func Suite() []Step {
	return append(Sweep(DefaultSweep),
		Step{Scenario: ScenarioHot, Concurrency: 32},
		Step{Scenario: ScenarioSession, Concurrency: 32},
		Step{Scenario: ScenarioSignin, Concurrency: 8},
		Step{Scenario: ScenarioUnique, Concurrency: 2000, Latency: 100 * time.Millisecond},
	)
}

// runs reports whether target can run scenario: the baselines only run
// unique - GitHub and the ceiling have no replay for the hot workers that
// present a token after its answer, and no sessions or sign-in of ours.
func runs(target string, s Scenario) bool {
	return s == ScenarioUnique || (target != TargetDirect && target != TargetCeiling)
}

// RunSteps runs every step on every target of b that can run it, with
// base's duration, request bound and hot tokens, printing each report's
// one-line summary to progress. It stops at the first failed run.
func RunSteps(ctx context.Context, b *Bench, steps []Step, base Config, progress io.Writer) ([]Report, error) {
	var out []Report
	for _, st := range steps {
		targets := st.Targets
		if targets == nil {
			targets = b.Targets()
		}
		for _, t := range targets {
			if !slices.Contains(b.Targets(), t) || !runs(t, st.Scenario) {
				continue
			}
			if err := RaiseFileLimit(uint64(2*st.Concurrency + 256)); err != nil {
				return out, err
			}
			cfg := base
			cfg.Scenario, cfg.Concurrency = st.Scenario, st.Concurrency
			rep, err := b.Run(ctx, t, st.Latency, cfg)
			if err != nil {
				return out, err
			}
			out = append(out, rep)
			if progress != nil {
				fmt.Fprintln(progress, rep.Summary())
			}
		}
	}
	return out, nil
}

// Summary is the report on one line.
func (r Report) Summary() string {
	return fmt.Sprintf("%-18s %-7s c=%-4d up=%-6s %8.0f req/s  p50 %s p99 %s  errors %d  upstream %d rotations %d  cpu/req %s  rss %.0f MB",
		r.Label, r.Scenario, r.Concurrency, msInt(r.UpstreamLatency), r.Throughput, ms(r.P50), ms(r.P99),
		r.Errors, r.Upstream, r.Rotations, us(r.ServerCPUPerRequest), float64(r.ServerPeakRSS)/(1<<20))
}

// WriteMarkdown writes reports as the table of docs/benchmarks.md. The
// ratio column compares throughput with the ceiling's at the same
// concurrency and latency (its unique run, for scenarios it cannot run).
func WriteMarkdown(w io.Writer, reports []Report) error {
	var b strings.Builder
	b.WriteString("| scenario | clients | upstream | target | req/s | x ceiling | p50 | p90 | p99 | max | errors | upstream calls / rotations | server CPU / req | server peak RSS |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		ratio := "-"
		if c, ok := ceilingOf(reports, r); ok && c.Throughput > 0 && r.Label != TargetCeiling {
			ratio = fmt.Sprintf("%.2f", r.Throughput/c.Throughput)
		}
		errs := fmt.Sprint(r.Errors)
		if r.Errors > 0 {
			var codes []string
			for k, n := range r.Statuses {
				if k != "200" {
					codes = append(codes, fmt.Sprintf("%s: %d", k, n))
				}
			}
			slices.Sort(codes)
			errs += " (" + strings.Join(codes, ", ") + ")"
		}
		cpu, rss := "-", "-"
		if r.ServerCPUPerRequest > 0 {
			cpu = us(r.ServerCPUPerRequest)
		}
		if r.ServerPeakRSS > 0 {
			rss = fmt.Sprintf("%.0f MB", float64(r.ServerPeakRSS)/(1<<20))
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %d / %d | %s | %s |\n",
			r.Scenario, r.Concurrency, msInt(r.UpstreamLatency), r.Label, r.Throughput, ratio,
			ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), errs, r.Upstream, r.Rotations, cpu, rss)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSideBySide writes one row per step and one column per target:
// throughput (with its ratio to the ceiling), p50 and p99.
func WriteSideBySide(w io.Writer, reports []Report) error {
	type step struct {
		s       Scenario
		c       int
		latency time.Duration
	}
	var steps []step
	var labels []string
	for _, r := range reports {
		if st := (step{r.Scenario, r.Concurrency, r.UpstreamLatency}); !slices.Contains(steps, st) {
			steps = append(steps, st)
		}
		if !slices.Contains(labels, r.Label) {
			labels = append(labels, r.Label)
		}
	}
	var b strings.Builder
	b.WriteString("| scenario |")
	for _, l := range labels {
		b.WriteString(" " + l + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(labels)) + "\n")
	for _, st := range steps {
		fmt.Fprintf(&b, "| %s, %d clients, %s upstream |", st.s, st.c, msInt(st.latency))
		for _, l := range labels {
			i := slices.IndexFunc(reports, func(r Report) bool {
				return r.Label == l && r.Scenario == st.s && r.Concurrency == st.c && r.UpstreamLatency == st.latency
			})
			if i < 0 {
				b.WriteString(" - |")
				continue
			}
			r := reports[i]
			fmt.Fprintf(&b, " %.0f req/s", r.Throughput)
			if c, ok := ceilingOf(reports, r); ok && c.Throughput > 0 && r.Label != TargetCeiling {
				fmt.Fprintf(&b, " (%.2fx)", r.Throughput/c.Throughput)
			}
			fmt.Fprintf(&b, "<br>p50 %s, p99 %s", ms(r.P50), ms(r.P99))
			if r.Errors > 0 {
				fmt.Fprintf(&b, "<br>**%d errors**", r.Errors)
			}
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ceilingOf finds the ceiling's report to compare r with.
func ceilingOf(reports []Report, r Report) (Report, bool) {
	var fallback *Report
	for i, c := range reports {
		if c.Label != TargetCeiling || c.Concurrency != r.Concurrency || c.UpstreamLatency != r.UpstreamLatency {
			continue
		}
		if c.Scenario == r.Scenario {
			return c, true
		}
		if c.Scenario == ScenarioUnique {
			fallback = &reports[i]
		}
	}
	if fallback != nil {
		return *fallback, true
	}
	return Report{}, false
}
