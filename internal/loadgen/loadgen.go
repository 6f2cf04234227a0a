// Package loadgen drives flashauth's POST /auth/github/refresh with refresh
// tokens minted by a GitHub emulator, and measures throughput and latency.
// cmd/flashload is its command line; tests and benchmarks call Run directly.
//
// It is bounded in time (Config.Duration) and in count (Config.MaxRequests),
// and refuses targets off the loopback interface unless AllowRemote is set:
// it is a tool for a development machine, not for someone else's service.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is the shape of the workload.
type Mode string

const (
	// ModeUnique: every request presents a refresh token never presented
	// before. Each worker follows its own lineage, presenting the token the
	// previous refresh returned, so every request costs one upstream call
	// and one ledger commit: the write path.
	ModeUnique Mode = "unique"
	// ModeHot: every worker presents the same few tokens. The first request
	// for a token refreshes it; the others wait for that refresh or replay
	// its committed result: the single-flight and replay paths.
	ModeHot Mode = "hot"
	// ModeMixed: each request is hot with probability HotRatio, else unique.
	ModeMixed Mode = "mixed"
)

// ParseMode parses a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeUnique, ModeHot, ModeMixed:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q (want unique, hot or mixed)", s)
}

// Limits and defaults of Config.
const (
	DefaultMaxRequests    = 1_000_000
	MaxDuration           = time.Hour
	DefaultHotPeriod      = 20 * time.Second
	DefaultHotRatio       = 0.5
	DefaultRequestTimeout = 30 * time.Second
	MaxConcurrency        = 1024
)

// Config describes a run. Zero values of the optional fields take defaults.
type Config struct {
	// Targets are base URLs of flashauth replicas; requests rotate over
	// them. Required.
	Targets []string
	// Emulator is the base URL of the GitHub emulator whose control API
	// mints grants (POST /_emulator/grants). Required.
	Emulator string
	// Duration bounds the run; requests are not started after it. Required,
	// at most MaxDuration.
	Duration time.Duration
	// MaxRequests bounds the number of requests. Default DefaultMaxRequests.
	MaxRequests int
	// Concurrency is the number of workers, each with at most one request
	// in flight. Required, at most MaxConcurrency.
	Concurrency int
	// Mode is the workload. Default ModeUnique.
	Mode Mode
	// HotTokens is the size of the hot set (hot and mixed modes). Default 1.
	HotTokens int
	// HotPeriod is how often the hot set is replaced by fresh grants. It
	// must stay below flashauth's replay window (60s by default): a hot
	// token presented after its window answers 401, as a spent token does.
	// Default DefaultHotPeriod.
	HotPeriod time.Duration
	// HotRatio is the share of hot requests in mixed mode, in [0, 1].
	// Default DefaultHotRatio.
	HotRatio float64
	// RequestTimeout bounds one request. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// AllowRemote permits targets and an emulator off the loopback interface.
	AllowRemote bool
	// Client sends the requests. Default: a client whose connection pool
	// fits Concurrency.
	Client *http.Client
}

func (c *Config) validate() error {
	if len(c.Targets) == 0 {
		return errors.New("loadgen: no target")
	}
	if c.Emulator == "" {
		return errors.New("loadgen: no emulator URL (grants are minted from its control API)")
	}
	for _, u := range append(slices.Clone(c.Targets), c.Emulator) {
		if err := CheckURL(u, c.AllowRemote); err != nil {
			return err
		}
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		return fmt.Errorf("loadgen: duration %s out of range (0, %s]", c.Duration, MaxDuration)
	}
	if c.Concurrency < 1 || c.Concurrency > MaxConcurrency {
		return fmt.Errorf("loadgen: concurrency %d out of range [1, %d]", c.Concurrency, MaxConcurrency)
	}
	if c.MaxRequests < 0 {
		return fmt.Errorf("loadgen: max requests %d is negative", c.MaxRequests)
	}
	if c.MaxRequests == 0 {
		c.MaxRequests = DefaultMaxRequests
	}
	if c.Mode == "" {
		c.Mode = ModeUnique
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	if c.HotTokens < 0 || c.HotTokens > 1000 {
		return fmt.Errorf("loadgen: hot tokens %d out of range [1, 1000]", c.HotTokens)
	}
	c.HotTokens = max(c.HotTokens, 1)
	if c.HotPeriod <= 0 {
		c.HotPeriod = DefaultHotPeriod
	}
	if c.HotRatio < 0 || c.HotRatio > 1 {
		return fmt.Errorf("loadgen: hot ratio %g out of range [0, 1]", c.HotRatio)
	}
	if c.HotRatio == 0 && c.Mode == ModeMixed {
		c.HotRatio = DefaultHotRatio
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	for i, t := range c.Targets {
		c.Targets[i] = strings.TrimRight(t, "/")
	}
	c.Emulator = strings.TrimRight(c.Emulator, "/")
	if c.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = c.Concurrency*len(c.Targets) + 8
		tr.MaxIdleConnsPerHost = c.Concurrency + 8
		tr.Proxy = nil // loopback traffic must not detour through a proxy
		c.Client = &http.Client{Transport: tr}
	}
	return nil
}

// Run generates load until cfg.Duration has passed, cfg.MaxRequests were
// sent or ctx is done, and reports what it saw. Requests in flight when the
// duration ends are awaited and counted; those cut short by ctx are not.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg.Targets = slices.Clone(cfg.Targets)
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	r := &runner{cfg: cfg}
	before, upErr := r.upstreamCalls(ctx)
	if cfg.Mode != ModeUnique {
		set, err := r.mintSet(ctx, "flashload-hot")
		if err != nil {
			return Report{}, err
		}
		r.hot.Store(&set)
	}

	start := time.Now()
	deadline := start.Add(cfg.Duration)
	hotCtx, stopHot := context.WithCancel(ctx)
	var hotDone sync.WaitGroup
	if cfg.Mode != ModeUnique {
		hotDone.Go(func() { r.rotateHot(hotCtx) })
	}
	results := make([]workerResult, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range cfg.Concurrency {
		wg.Go(func() { results[i] = r.work(ctx, i, deadline) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopHot()
	hotDone.Wait()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}

	rep := newReport(cfg, elapsed, results)
	rep.Minted = int(r.minted.Load())
	rep.Upstream = -1
	if after, err := r.upstreamCalls(ctx); err == nil && upErr == nil {
		rep.Upstream = after - before
	}
	if rep.Requests == 0 && rep.FirstError != "" {
		return rep, fmt.Errorf("loadgen: no request completed: %s", rep.FirstError)
	}
	return rep, nil
}

type runner struct {
	cfg    Config
	sent   atomic.Int64 // request slots taken, bounded by MaxRequests
	minted atomic.Int64
	hot    atomic.Pointer[[]string]
}

// workerResult is what one worker saw; merged into the Report at the end.
type workerResult struct {
	latencies  []time.Duration
	statuses   map[string]int
	firstError string
}

func (r *runner) work(ctx context.Context, id int, deadline time.Time) workerResult {
	res := workerResult{statuses: map[string]int{}}
	rng := rand.New(rand.NewPCG(uint64(id), 0x666c6173686c6f61))
	login := "flashload-w" + strconv.Itoa(id)
	var chain string // the unique lineage this worker follows
	for n := id; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
		hot := r.cfg.Mode == ModeHot || (r.cfg.Mode == ModeMixed && rng.Float64() < r.cfg.HotRatio)
		token := ""
		if hot {
			set := *r.hot.Load()
			token = set[rng.IntN(len(set))]
		} else {
			if chain == "" {
				g, err := r.mint(ctx, login)
				if err != nil {
					res.note("mint error", err.Error())
					return res // the emulator is gone: nothing more to send
				}
				chain = g
			}
			token = chain
		}
		if r.sent.Add(1) > int64(r.cfg.MaxRequests) {
			return res
		}
		target := r.cfg.Targets[n%len(r.cfg.Targets)]
		t0 := time.Now()
		out := r.refresh(ctx, target, token)
		lat := time.Since(t0)
		if ctx.Err() != nil {
			return res // cut short by the caller: not a measurement
		}
		res.latencies = append(res.latencies, lat)
		res.note(out.key(), out.errText)
		if !hot {
			switch {
			case out.status == http.StatusOK:
				chain = out.refreshToken
			case out.status == http.StatusServiceUnavailable || out.status == http.StatusTooManyRequests:
				// Nothing was spent: the same token is still good.
			default:
				chain = "" // spent, rejected or unknown: start a new lineage
			}
		}
	}
	return res
}

func (w *workerResult) note(key, errText string) {
	w.statuses[key]++
	if errText != "" && w.firstError == "" {
		w.firstError = errText
	}
}

// outcome is one answer of flashauth, reduced to what the report needs.
type outcome struct {
	status       int // 0: no HTTP answer
	code         string
	refreshToken string
	errText      string // transport error, never holding a token
}

func (o outcome) key() string {
	switch {
	case o.status == 0:
		return "transport error"
	case o.code != "":
		return strconv.Itoa(o.status) + " " + o.code
	}
	return strconv.Itoa(o.status)
}

func (r *runner) refresh(ctx context.Context, target, token string) outcome {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"refresh_token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+"/auth/github/refresh", bytes.NewReader(body))
	if err != nil {
		return outcome{errText: "build request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.cfg.Client.Do(req)
	if err != nil {
		// *url.Error names the URL, which never carries a token here.
		return outcome{errText: err.Error()}
	}
	defer resp.Body.Close()
	var ans struct {
		RefreshToken string `json:"refreshToken"`
		ErrorCode    string `json:"error_code"`
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return outcome{errText: "read answer: " + err.Error()}
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return outcome{status: resp.StatusCode, code: "NOT_JSON"}
	}
	return outcome{status: resp.StatusCode, code: ans.ErrorCode, refreshToken: ans.RefreshToken}
}
