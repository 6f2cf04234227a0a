package loadgen

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is what a run saw.
type Report struct {
	// Label names the target ("direct", "ceiling", "flashauth-sqlite").
	Label       string   `json:"label,omitempty"`
	Scenario    Scenario `json:"scenario"`
	Concurrency int      `json:"concurrency"`
	Targets     int      `json:"targets"`
	// UpstreamLatency is the latency the emulator added to every GitHub
	// call (set by Bench; 0 when unknown or none).
	UpstreamLatency time.Duration `json:"upstream_latency_ns"`
	// Requests is the number of answered or failed requests measured.
	Requests int `json:"requests"`
	// Statuses counts answers by "STATUS" or "STATUS ERROR_CODE", plus
	// "transport error" for requests that got no HTTP answer and "setup
	// error" for workers that stopped because they could not get a grant,
	// a code or a session (not requests: not in Requests or Errors).
	// Direct runs count GitHub's errors as "200 bad_refresh_token".
	Statuses map[string]int `json:"statuses"`
	// Errors is the number of requests that did not answer 200.
	Errors int `json:"errors"`
	// FirstError is the first transport or setup error seen, if any.
	FirstError string        `json:"first_error,omitempty"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	// Throughput is Requests per second of Elapsed.
	Throughput float64 `json:"throughput_rps"`
	// Latency percentiles (nearest rank) and maximum of every request.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Upstream is how many token requests of the scenario's kind (refresh;
	// code exchange for signin) the emulator counted during the measured
	// run, other clients of the emulator included; -1 when unknown.
	Upstream int64 `json:"upstream_calls"`
	// Rotations counts the lineage steps the run observed: each distinct
	// token presented and answered with its successor counts once (hot
	// workers share lineages, so many answers make one rotation); for
	// signin, each code exchanged. Exactly-once means Upstream == Rotations.
	Rotations int64 `json:"rotations"`
	// Minted is how many grants were minted from the emulator.
	Minted int `json:"minted"`
	// Server* are measured by Bench on a target it started as a child
	// process: CPU time (user+system) the server spent during the run, per
	// request, and its peak resident set size during the run. Zero when
	// unknown (a URL target, or not Linux).
	ServerCPU           time.Duration `json:"server_cpu_ns,omitempty"`
	ServerCPUPerRequest time.Duration `json:"server_cpu_per_request_ns,omitempty"`
	ServerPeakRSS       int64         `json:"server_peak_rss_bytes,omitempty"`
}

func newReport(cfg Config, elapsed time.Duration, results []workerResult) Report {
	rep := Report{Label: cfg.Label, Scenario: cfg.Scenario, Concurrency: cfg.Concurrency, Targets: len(cfg.Targets),
		Statuses: map[string]int{}, Elapsed: elapsed}
	var lat []time.Duration
	for _, w := range results {
		lat = append(lat, w.latencies...)
		for k, n := range w.statuses {
			rep.Statuses[k] += n
			if k != "200" && k != "setup error" {
				rep.Errors += n
			}
		}
		if rep.FirstError == "" {
			rep.FirstError = w.firstError
		}
	}
	rep.Requests = len(lat)
	if elapsed > 0 {
		rep.Throughput = float64(rep.Requests) / elapsed.Seconds()
	}
	slices.Sort(lat)
	rep.P50, rep.P90, rep.P99 = Percentile(lat, 50), Percentile(lat, 90), Percentile(lat, 99)
	if len(lat) > 0 {
		rep.Max = lat[len(lat)-1]
	}
	return rep
}

// Percentile returns the nearest-rank p-th percentile of sorted, or 0 when
// it is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// Nearest rank: the smallest value with at least p% of values at or
	// below it.
	rank := int(math.Ceil(float64(len(sorted)) * p / 100))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// WriteText writes the report for a person.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	label := r.Label
	if label == "" {
		label = "target"
	}
	fmt.Fprintf(&b, "%s: scenario %s, concurrency %d, %d target(s), upstream latency %s, %.2fs\n",
		label, r.Scenario, r.Concurrency, r.Targets, msInt(r.UpstreamLatency), r.Elapsed.Seconds())
	fmt.Fprintf(&b, "requests %d, errors %d\n", r.Requests, r.Errors)
	for _, k := range slices.Sorted(maps.Keys(r.Statuses)) {
		fmt.Fprintf(&b, "  %-32s %d\n", k, r.Statuses[k])
	}
	if r.FirstError != "" {
		fmt.Fprintf(&b, "first error: %s\n", r.FirstError)
	}
	fmt.Fprintf(&b, "throughput %.1f req/s\n", r.Throughput)
	fmt.Fprintf(&b, "latency p50 %s  p90 %s  p99 %s  max %s\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max))
	if r.Upstream >= 0 {
		fmt.Fprintf(&b, "upstream calls %d, rotations %d, grants minted %d\n", r.Upstream, r.Rotations, r.Minted)
	}
	if r.ServerCPU > 0 {
		fmt.Fprintf(&b, "server CPU %s (%s per request)\n", ms(r.ServerCPU), us(r.ServerCPUPerRequest))
	}
	if r.ServerPeakRSS > 0 {
		fmt.Fprintf(&b, "server peak RSS %.1f MB\n", float64(r.ServerPeakRSS)/(1<<20))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// msInt writes a latency setting: whole milliseconds.
func msInt(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func us(d time.Duration) string { return fmt.Sprintf("%.0fus", float64(d)/float64(time.Microsecond)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
