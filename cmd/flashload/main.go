// Command flashload is flashauth's load generator. It mints GitHub grants
// from a GitHub emulator (`flashauth emulator`), refreshes them through one or
// more flashauth replicas, and reports throughput and latency:
//
//	flashload -target http://127.0.0.1:8080 -emulator http://127.0.0.1:9090 \
//	    -duration 10s -concurrency 16 -mode unique
//
// Modes: unique (every request a never-seen token: one GitHub call and one
// ledger commit each), hot (everyone presents the same few tokens: single-flight
// and replay), mixed (-hot-ratio of the requests hot). Targets and the emulator
// must be on loopback unless -allow-remote is given. flashauth's own rate
// limits (FLASHAUTH_RATE_IP) will answer 429 under load:
// set them to 0 on the server being measured.
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
	"strings"
	"syscall"
	"time"

	"github.com/flashbacktech/flashauth/e2e/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "flashload:", err)
		os.Exit(1)
	}
}

// run parses args, generates the load and prints the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flashload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("target", "http://127.0.0.1:8080", "flashauth base URL; several, comma-separated, are used in turn")
	emulator := fs.String("emulator", "http://127.0.0.1:9090", "GitHub emulator base URL (its control API mints the grants)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send requests (at most 1h)")
	concurrency := fs.Int("concurrency", 16, "number of workers, each with one request in flight")
	mode := fs.String("mode", "unique", "workload: unique, hot or mixed")
	maxRequests := fs.Int("max-requests", loadgen.DefaultMaxRequests, "stop after this many requests")
	hotTokens := fs.Int("hot-tokens", 1, "size of the hot token set (hot and mixed modes)")
	hotPeriod := fs.Duration("hot-period", loadgen.DefaultHotPeriod, "replace the hot set this often; keep it below flashauth's replay window")
	hotRatio := fs.Float64("hot-ratio", loadgen.DefaultHotRatio, "share of hot requests in mixed mode")
	timeout := fs.Duration("timeout", loadgen.DefaultRequestTimeout, "timeout of one request")
	allowRemote := fs.Bool("allow-remote", false, "allow targets and an emulator off the loopback interface")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	m, err := loadgen.ParseMode(*mode)
	if err != nil {
		return err
	}
	var targets []string
	for _, t := range strings.Split(*target, ",") {
		if t = strings.TrimSpace(t); t != "" {
			targets = append(targets, t)
		}
	}
	rep, err := loadgen.Run(ctx, loadgen.Config{
		Targets:        targets,
		Emulator:       *emulator,
		Duration:       *duration,
		MaxRequests:    *maxRequests,
		Concurrency:    *concurrency,
		Mode:           m,
		HotTokens:      *hotTokens,
		HotPeriod:      *hotPeriod,
		HotRatio:       *hotRatio,
		RequestTimeout: *timeout,
		AllowRemote:    *allowRemote,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout)
}
