package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
)

// Target names of a Bench.
const (
	TargetDirect   = "direct"   // the emulator's token endpoint, called straight
	TargetCeiling  = "ceiling"  // the ceiling proxy (no store)
	TargetSQLite   = "sqlite"   // flashauth on SQLite in a temporary directory
	TargetPostgres = "postgres" // flashauth on BenchConfig.DatabaseURL
)

// Label is how reports name a target.
func Label(target string) string {
	switch target {
	case TargetSQLite, TargetPostgres:
		return "flashauth-" + target
	}
	return target
}

// BenchConfig says which targets a Bench starts.
type BenchConfig struct {
	// Targets are the targets to start, of TargetDirect, TargetCeiling,
	// TargetSQLite and TargetPostgres.
	Targets []string
	// DatabaseURL is flashauth's PostgreSQL database (TargetPostgres).
	DatabaseURL string
	// Dir holds the SQLite database; default a temporary directory,
	// removed by Close.
	Dir string
}

// Bench is a GitHub emulator and the targets in front of it, each in a
// child process, for side-by-side runs. The emulator runs apart from the
// targets, so a target's CPU time is its own work.
type Bench struct {
	Emulator *Child
	servers  map[string]*Child
	targets  []string
	secret   string
	client   *http.Client
	tmp      string
}

// StartBench starts the emulator and the targets.
func StartBench(ctx context.Context, cfg BenchConfig) (*Bench, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("loadgen: no bench target")
	}
	for _, t := range cfg.Targets {
		if !slices.Contains([]string{TargetDirect, TargetCeiling, TargetSQLite, TargetPostgres}, t) {
			return nil, fmt.Errorf("loadgen: unknown target %q (want direct, ceiling, sqlite or postgres)", t)
		}
		if t == TargetPostgres && !strings.HasPrefix(cfg.DatabaseURL, "postgres") {
			return nil, errors.New("loadgen: the postgres target needs a postgres:// database URL")
		}
	}
	b := &Bench{servers: map[string]*Child{}, secret: randomSecret(20), client: NewClient(64), targets: slices.Clone(cfg.Targets)}
	if err := b.start(ctx, cfg); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Bench) start(ctx context.Context, cfg BenchConfig) (err error) {
	creds := []string{envClientID + "=" + githubemu.DefaultClientID, envClientSecret + "=" + b.secret}
	if b.Emulator, err = StartChild(ctx, RoleEmulator, creds...); err != nil {
		return err
	}
	up := append(slices.Clone(creds), envGitHubURL+"="+b.Emulator.URL)
	for _, t := range cfg.Targets {
		var c *Child
		switch t {
		case TargetDirect:
			continue
		case TargetCeiling:
			c, err = StartChild(ctx, RoleCeiling, up...)
		case TargetSQLite, TargetPostgres:
			db := cfg.DatabaseURL
			if t == TargetSQLite {
				dir := cfg.Dir
				if dir == "" {
					if b.tmp, err = os.MkdirTemp("", "flashload-*"); err != nil {
						return err
					}
					dir = b.tmp
				}
				db = "sqlite:" + filepath.Join(dir, "flashauth.db")
			}
			c, err = StartChild(ctx, RoleFlashauth, append(slices.Clone(up),
				envDatabaseURL+"="+db, envSecretKey+"="+randomSecret(32))...)
		}
		if err != nil {
			return err
		}
		b.servers[t] = c
	}
	return nil
}

// Targets returns the targets the bench started, in the order given.
func (b *Bench) Targets() []string { return slices.Clone(b.targets) }

// Close stops every child and removes the temporary directory.
func (b *Bench) Close() {
	for _, c := range b.servers {
		c.Stop()
	}
	if b.Emulator != nil {
		b.Emulator.Stop()
	}
	if b.tmp != "" {
		_ = os.RemoveAll(b.tmp)
	}
}

// Run runs cfg against target with the emulator adding latency to every
// GitHub call, and adds the server's CPU time and peak RSS to the report:
// the emulator's for direct. cfg's Targets, Emulator, Direct, credentials
// and Label are filled in.
func (b *Bench) Run(ctx context.Context, target string, latency time.Duration, cfg Config) (Report, error) {
	server := b.servers[target]
	cfg.Emulator, cfg.Label = b.Emulator.URL, Label(target)
	switch {
	case target == TargetDirect && slices.Contains(b.targets, TargetDirect):
		server = b.Emulator
		cfg.Targets, cfg.Direct = []string{b.Emulator.URL}, true
		cfg.ClientID, cfg.ClientSecret = githubemu.DefaultClientID, b.secret
	case server != nil:
		cfg.Targets = []string{server.URL}
	default:
		return Report{}, fmt.Errorf("loadgen: target %q was not started", target)
	}
	if err := SetLatency(ctx, b.client, b.Emulator.URL, latency.Milliseconds()); err != nil {
		return Report{}, fmt.Errorf("set the emulator's latency: %w", err)
	}
	_ = server.ResetPeakRSS()
	cpu0, cpuErr := server.CPU()
	rep, err := Run(ctx, cfg)
	cpu1, cpuErr1 := server.CPU()
	rep.UpstreamLatency = latency
	if err != nil {
		return rep, fmt.Errorf("%s: %w", cfg.Label, err)
	}
	if cpuErr == nil && cpuErr1 == nil {
		rep.ServerCPU = cpu1 - cpu0
		if rep.Requests > 0 {
			rep.ServerCPUPerRequest = rep.ServerCPU / time.Duration(rep.Requests)
		}
	}
	if rss, err := server.PeakRSS(); err == nil {
		rep.ServerPeakRSS = rss
	}
	return rep, nil
}
