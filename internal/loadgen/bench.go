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

// Label is how reports name a target served by replicas processes.
func Label(target string, replicas int) string {
	switch {
	case (target == TargetSQLite || target == TargetPostgres) && replicas > 1:
		return fmt.Sprintf("flashauth-%s-x%d", target, replicas)
	case target == TargetSQLite || target == TargetPostgres:
		return "flashauth-" + target
	}
	return target
}

// BenchConfig says which targets a Bench starts.
type BenchConfig struct {
	// Targets are the targets to start, of TargetDirect, TargetCeiling,
	// TargetSQLite and TargetPostgres.
	Targets []string
	// DatabaseURL is flashauth's PostgreSQL database (TargetPostgres). The
	// bench works in a schema of its own there, dropped by Close.
	DatabaseURL string
	// Dir holds the SQLite database; default a temporary directory,
	// removed by Close.
	Dir string
	// Replicas is the number of flashauth processes per store target,
	// sharing its database; requests rotate over them. Default 1.
	Replicas int
}

// Bench is a GitHub emulator and the targets in front of it, each in a
// child process (flashauth in Replicas of them), for side-by-side runs. The emulator runs apart from the
// targets, so a target's CPU time is its own work.
type Bench struct {
	Emulator *Child
	servers  map[string][]*Child
	targets  []string
	replicas int
	secret   string
	client   *http.Client
	tmp      string
	drop     func() // drops the PostgreSQL schema of the run
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
	if cfg.Replicas < 0 || cfg.Replicas > 16 {
		return nil, fmt.Errorf("loadgen: %d replicas out of range [1, 16]", cfg.Replicas)
	}
	b := &Bench{servers: map[string][]*Child{}, secret: randomSecret(20), client: NewClient(64),
		targets: slices.Clone(cfg.Targets), replicas: max(cfg.Replicas, 1)}
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
		switch t {
		case TargetDirect:
			continue
		case TargetCeiling:
			c, err := StartChild(ctx, RoleCeiling, up...)
			if err != nil {
				return err
			}
			b.servers[t] = []*Child{c}
		case TargetSQLite, TargetPostgres:
			db := cfg.DatabaseURL
			if t == TargetPostgres {
				if db, b.drop, err = freshSchema(ctx, db); err != nil {
					return err
				}
			}
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
			// Replicas share the database and so the secret key that seals
			// the signing keys in it.
			env := append(slices.Clone(up), envDatabaseURL+"="+db, envSecretKey+"="+randomSecret(32))
			for range b.replicas {
				c, err := StartChild(ctx, RoleFlashauth, env...)
				if err != nil {
					return err
				}
				b.servers[t] = append(b.servers[t], c)
			}
		}
	}
	return nil
}

// Targets returns the targets the bench started, in the order given.
func (b *Bench) Targets() []string { return slices.Clone(b.targets) }

// Close stops every child and removes the temporary directory.
func (b *Bench) Close() {
	for _, cs := range b.servers {
		for _, c := range cs {
			c.Stop()
		}
	}
	if b.Emulator != nil {
		b.Emulator.Stop()
	}
	if b.drop != nil {
		b.drop()
	}
	if b.tmp != "" {
		_ = os.RemoveAll(b.tmp)
	}
}

// Run runs cfg against target with the emulator adding latency to every
// GitHub call, and adds the server's CPU time and peak RSS to the report:
// the emulator's for direct, the sum over the replicas for flashauth.
// cfg's Targets, Emulator, Direct, credentials and Label are filled in.
func (b *Bench) Run(ctx context.Context, target string, latency time.Duration, cfg Config) (Report, error) {
	servers := b.servers[target]
	cfg.Emulator, cfg.Label = b.Emulator.URL, Label(target, len(servers))
	cfg.Targets = nil
	switch {
	case target == TargetDirect && slices.Contains(b.targets, TargetDirect):
		servers = []*Child{b.Emulator}
		cfg.Targets, cfg.Direct = []string{b.Emulator.URL}, true
		cfg.ClientID, cfg.ClientSecret = githubemu.DefaultClientID, b.secret
	case len(servers) > 0:
		for _, s := range servers {
			cfg.Targets = append(cfg.Targets, s.URL)
		}
	default:
		return Report{}, fmt.Errorf("loadgen: target %q was not started", target)
	}
	if err := SetLatency(ctx, b.client, b.Emulator.URL, latency.Milliseconds()); err != nil {
		return Report{}, fmt.Errorf("set the emulator's latency: %w", err)
	}
	for _, s := range servers {
		_ = s.ResetPeakRSS()
	}
	cpu0, cpuErr := totalCPU(servers)
	rep, err := Run(ctx, cfg)
	cpu1, cpuErr1 := totalCPU(servers)
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
	for _, s := range servers {
		if rss, err := s.PeakRSS(); err == nil {
			rep.ServerPeakRSS += rss
		}
	}
	return rep, nil
}

func totalCPU(cs []*Child) (time.Duration, error) {
	var sum time.Duration
	for _, c := range cs {
		d, err := c.CPU()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}
