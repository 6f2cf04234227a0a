package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flashbacktech/flashauth/githubemu"
)

// KillConfig configures KillCount.
type KillConfig struct {
	// Workers rotate their own lineages (the unique scenario). Default 24.
	Workers int
	// KillAfter is how long the load runs before flashauth is killed.
	// Default 3s.
	KillAfter time.Duration
	// Latency is added by the emulator to every GitHub call.
	Latency time.Duration
	// UpstreamTimeout is flashauth's; a claim left by the killed process
	// is leased for it plus 5 s, which the check after the restart waits
	// out. Default 10s, as `flashauth serve`.
	UpstreamTimeout time.Duration
	// DatabaseURL is flashauth's store: a PostgreSQL URL (the count works
	// in a schema of its own there, dropped at the end), or default SQLite
	// in a temporary directory.
	DatabaseURL string
}

// KillReport is what a kill -9 under load cost.
type KillReport struct {
	Workers int `json:"workers"`
	// Requests answered before the kill.
	Requests int `json:"requests_before_kill"`
	// Cut is how many workers' last request got no answer: in flight when
	// the process died, or sent just after and refused.
	Cut int `json:"cut"`
	// Refused is how many of those never reached the server (connection
	// refused): their tokens cannot have been spent.
	Refused int `json:"refused"`
	// Alive lineages: the last presented token, sent to the restarted
	// flashauth, replays or refreshes (200).
	Alive int `json:"alive"`
	// Dead lineages: it answers INVALID_REFRESH_TOKEN - GitHub rotated it
	// but the result was never committed, so the user must sign in again.
	Dead int `json:"dead"`
	// Other answers of the check, by status and error_code.
	Other map[string]int `json:"other,omitempty"`
}

// WriteText writes the report for a person.
func (k KillReport) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "kill -9 under load: %d workers, %d refreshes answered before the kill\n"+
		"  requests cut by the kill: %d (%d of them refused, never reached the server)\n"+
		"  after the restart: %d lineages alive, %d dead (GitHub rotated, never committed: sign in again)\n",
		k.Workers, k.Requests, k.Cut, k.Refused, k.Alive, k.Dead)
	if err == nil && len(k.Other) > 0 {
		_, err = fmt.Fprintf(w, "  other answers: %v\n", k.Other)
	}
	return err
}

// KillCount measures how many refreshes a kill -9 loses in flight: it runs
// the unique scenario against a flashauth child, SIGKILLs it mid-run,
// restarts it on the same database, and presents each worker's last token
// again. A lineage whose last token neither replays nor refreshes is dead.
func KillCount(ctx context.Context, cfg KillConfig) (KillReport, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 24
	}
	if cfg.KillAfter <= 0 {
		cfg.KillAfter = 3 * time.Second
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 10 * time.Second
	}
	tmp, err := os.MkdirTemp("", "flashload-kill-*")
	if err != nil {
		return KillReport{}, err
	}
	defer os.RemoveAll(tmp)
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = "sqlite:" + filepath.Join(tmp, "flashauth.db")
	} else {
		var drop func()
		if cfg.DatabaseURL, drop, err = freshSchema(ctx, cfg.DatabaseURL); err != nil {
			return KillReport{}, err
		}
		defer drop()
	}
	secret := randomSecret(20)
	creds := []string{envClientID + "=" + githubemu.DefaultClientID, envClientSecret + "=" + secret}
	emu, err := StartChild(ctx, RoleEmulator, creds...)
	if err != nil {
		return KillReport{}, err
	}
	defer emu.Stop()
	client := NewClient(cfg.Workers)
	if err := SetLatency(ctx, client, emu.URL, cfg.Latency.Milliseconds()); err != nil {
		return KillReport{}, err
	}
	env := append(creds, envGitHubURL+"="+emu.URL, envDatabaseURL+"="+cfg.DatabaseURL,
		envSecretKey+"="+randomSecret(32), envUpstreamTimeout+"="+cfg.UpstreamTimeout.String())
	fa, err := StartChild(ctx, RoleFlashauth, env...)
	if err != nil {
		return KillReport{}, err
	}

	type result struct {
		rep     Report
		workers []workerResult
		err     error
	}
	done := make(chan result, 1)
	go func() {
		rep, ws, err := run(ctx, Config{
			Targets: []string{fa.URL}, Emulator: emu.URL, Scenario: ScenarioUnique,
			Concurrency: cfg.Workers, Duration: cfg.KillAfter + time.Minute, Client: client,
			stopOnTransportError: true,
		})
		done <- result{rep, ws, err}
	}()
	select {
	case <-time.After(cfg.KillAfter):
	case <-ctx.Done():
	}
	fa.Kill()
	res := <-done
	if res.err != nil {
		return KillReport{}, fmt.Errorf("load before the kill: %w", res.err)
	}
	if err := ctx.Err(); err != nil {
		return KillReport{}, err
	}
	fa, err = StartChild(ctx, RoleFlashauth, env...)
	if err != nil {
		return KillReport{}, fmt.Errorf("restart: %w", err)
	}
	defer fa.Stop()

	k := KillReport{Workers: cfg.Workers, Requests: res.rep.Requests - res.rep.Statuses["transport error"], Other: map[string]int{}}
	r := &runner{cfg: Config{Client: client, RequestTimeout: DefaultRequestTimeout}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, w := range res.workers {
		if w.lastNoAns {
			k.Cut++
			if strings.Contains(w.firstError, "connection refused") {
				k.Refused++
			}
		}
		if w.last == "" {
			continue
		}
		wg.Go(func() {
			out := r.check(ctx, fa.URL, w.last)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case out.status == http.StatusOK:
				k.Alive++
			case out.status == http.StatusUnauthorized && out.code == "INVALID_REFRESH_TOKEN":
				k.Dead++
			default:
				k.Other[out.key()]++
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return KillReport{}, err
	}
	if len(k.Other) == 0 {
		k.Other = nil
	}
	return k, nil
}

// check presents token to the restarted flashauth until it answers
// something other than "try again": a claim the killed process left is
// honoured until its lease runs out.
func (r *runner) check(ctx context.Context, target, token string) outcome {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out := r.refresh(ctx, target, token)
		retry := out.status == 0 || out.status == http.StatusServiceUnavailable || out.status == http.StatusConflict
		if !retry || time.Now().After(deadline) || ctx.Err() != nil {
			return out
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return outcome{errText: errors.New("cancelled").Error()}
		}
	}
}
