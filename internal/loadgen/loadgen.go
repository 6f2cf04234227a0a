// Package loadgen is flashauth's load generator and benchmark engine. Run
// drives one target (flashauth, the ceiling proxy, or the GitHub emulator's
// token endpoint straight) with one scenario and measures throughput,
// latency, errors by error_code and upstream calls. Bench starts the
// targets as child processes and runs them side by side; cmd/flashload is
// the command line of both.
//
// It is bounded in time (Config.Duration) and in count (Config.MaxRequests),
// and refuses targets off the loopback interface unless AllowRemote is set:
// it is a tool for a development machine, not for someone else's service.
package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario is the shape of the workload.
type Scenario string

const (
	// ScenarioUnique: each worker refreshes its own GitHub lineage again
	// and again, presenting the token the previous answer rotated to. Every
	// request is one upstream call and one ledger commit: the write path.
	ScenarioUnique Scenario = "unique"
	// ScenarioHot: every worker races on a few lineages (HotTokens),
	// presenting whatever token each currently stands at. The first request
	// for a token refreshes it; the others join that refresh or replay its
	// committed result: the single-flight and replay paths. Exactly one
	// upstream call per rotation is the correct outcome.
	ScenarioHot Scenario = "hot"
	// ScenarioSession: each worker signs in once (not measured), then
	// rotates its flashauth session with POST /user/refresh again and again.
	ScenarioSession Scenario = "session"
	// ScenarioSignin: each request is a full sign-in: the emulator mints a
	// code (not measured), POST /auth/github exchanges it.
	ScenarioSignin Scenario = "signin"
)

// Scenarios lists every scenario.
var Scenarios = []Scenario{ScenarioUnique, ScenarioHot, ScenarioSession, ScenarioSignin}

// ParseScenario parses a scenario name.
func ParseScenario(s string) (Scenario, error) {
	if sc := Scenario(s); slices.Contains(Scenarios, sc) {
		return sc, nil
	}
	return "", fmt.Errorf("unknown scenario %q (want unique, hot, session or signin)", s)
}

// Limits and defaults of Config.
const (
	DefaultMaxRequests    = 1_000_000
	MaxDuration           = time.Hour
	DefaultRequestTimeout = 30 * time.Second
	MaxConcurrency        = 10_000
	DefaultHotTokens      = 4
)

// Config describes a run. Zero values of the optional fields take defaults.
type Config struct {
	// Targets are base URLs of flashauth replicas (or of the ceiling proxy,
	// which answers the same API); requests rotate over them. With Direct,
	// base URLs of the GitHub emulator. Required.
	Targets []string
	// Direct makes the targets GitHub token endpoints: requests are
	// POST /login/oauth/access_token with the client credentials, as
	// flashauth itself sends them. Only ScenarioUnique.
	Direct bool
	// ClientID and ClientSecret are the GitHub App's credentials, needed
	// with Direct.
	ClientID, ClientSecret string
	// Emulator is the base URL of the GitHub emulator whose control API
	// mints grants and codes and counts upstream calls. Required.
	Emulator string
	// Label names the target in the report ("flashauth-sqlite", "ceiling").
	Label string
	// Scenario is the workload. Default ScenarioUnique.
	Scenario Scenario
	// Duration bounds the run; requests are not started after it. Required,
	// at most MaxDuration.
	Duration time.Duration
	// MaxRequests bounds the number of requests. Default DefaultMaxRequests.
	MaxRequests int
	// Concurrency is the number of workers, each with at most one request
	// in flight. Required, at most MaxConcurrency.
	Concurrency int
	// HotTokens is the number of lineages the hot scenario races on.
	// Default DefaultHotTokens.
	HotTokens int
	// RequestTimeout bounds one request. Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// AllowRemote permits targets and an emulator off the loopback interface.
	AllowRemote bool
	// Client sends the requests. Default: a client whose connection pool
	// fits Concurrency.
	Client *http.Client

	// stopOnTransportError makes a worker stop at its first request without
	// an HTTP answer, keeping the token it presented (the kill -9 count).
	stopOnTransportError bool
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
	if c.Scenario == "" {
		c.Scenario = ScenarioUnique
	}
	if _, err := ParseScenario(string(c.Scenario)); err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	if c.Direct && c.Scenario != ScenarioUnique {
		return fmt.Errorf("loadgen: scenario %s needs flashauth: straight to GitHub only unique makes sense", c.Scenario)
	}
	if c.Direct && c.ClientSecret == "" {
		return errors.New("loadgen: direct needs the client secret")
	}
	if c.HotTokens < 0 || c.HotTokens > 1000 {
		return fmt.Errorf("loadgen: hot tokens %d out of range [1, 1000]", c.HotTokens)
	}
	if c.HotTokens == 0 {
		c.HotTokens = DefaultHotTokens
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	for i, t := range c.Targets {
		c.Targets[i] = strings.TrimRight(t, "/")
	}
	c.Emulator = strings.TrimRight(c.Emulator, "/")
	if c.Client == nil {
		c.Client = NewClient(c.Concurrency * len(c.Targets))
	}
	return nil
}

// NewClient returns a client for loopback load: a keep-alive pool of conns
// connections, no proxy.
func NewClient(conns int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conns + 16
	tr.MaxIdleConnsPerHost = conns + 16
	tr.Proxy = nil // loopback traffic must not detour through a proxy
	return &http.Client{Transport: tr}
}

// Run generates load until cfg.Duration has passed, cfg.MaxRequests were
// sent or ctx is done, and reports what it saw. Each worker's setup (its
// first grant, its sign-in) happens before the clock starts. Requests in
// flight when the duration ends are awaited and counted; those cut short by
// ctx are not.
func Run(ctx context.Context, cfg Config) (Report, error) {
	rep, _, err := run(ctx, cfg)
	return rep, err
}

// run is Run, also returning each worker's result.
func run(ctx context.Context, cfg Config) (Report, []workerResult, error) {
	cfg.Targets = slices.Clone(cfg.Targets)
	if err := cfg.validate(); err != nil {
		return Report{}, nil, err
	}
	r := &runner{cfg: cfg}
	ws, err := r.setup(ctx)
	if err != nil {
		return Report{}, nil, err
	}
	before, upErr := r.upstreamCalls(ctx)

	start := time.Now()
	deadline := start.Add(cfg.Duration)
	results := make([]workerResult, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range cfg.Concurrency {
		wg.Go(func() { results[i] = r.work(ctx, ws[i], deadline) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Report{}, nil, err
	}

	rep := newReport(cfg, elapsed, results)
	rep.Minted = int(r.minted.Load())
	rep.Rotations = r.rotations.Load()
	rep.Upstream = -1
	if after, err := r.upstreamCalls(ctx); err == nil && upErr == nil {
		rep.Upstream = after - before
	}
	if rep.Requests == 0 && rep.FirstError != "" {
		return rep, results, fmt.Errorf("loadgen: no request completed: %s", rep.FirstError)
	}
	return rep, results, nil
}

type runner struct {
	cfg       Config
	sent      atomic.Int64 // request slots taken, bounded by MaxRequests
	minted    atomic.Int64
	rotations atomic.Int64
	lineages  []*lineage // the hot scenario's
}

// lineage is a GitHub refresh-token lineage the hot workers share.
type lineage struct {
	mu    sync.Mutex
	token string
}

func (l *lineage) current() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.token
}

// advance moves the lineage from presented to next and reports whether this
// call moved it: only the first of the answers for one token does.
func (l *lineage) advance(presented, next string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.token != presented || next == "" || next == presented {
		return false
	}
	l.token = next
	return true
}

// worker is one worker's identity and the token it carries between requests.
type worker struct {
	id    int
	login string
	token string // unique: its lineage's current token; session: its session refresh token
}

// setup mints what the workers start from, before the clock runs: a grant
// per unique worker, the hot lineages, a sign-in per session worker.
func (r *runner) setup(ctx context.Context) ([]*worker, error) {
	ws := make([]*worker, r.cfg.Concurrency)
	for i := range ws {
		ws[i] = &worker{id: i, login: "flashload-w" + strconv.Itoa(i)}
	}
	if r.cfg.Scenario == ScenarioHot {
		for range r.cfg.HotTokens {
			t, err := r.mint(ctx, "flashload-hot")
			if err != nil {
				return nil, err
			}
			r.lineages = append(r.lineages, &lineage{token: t})
		}
		return ws, nil
	}
	if r.cfg.Scenario == ScenarioSignin {
		return ws, nil
	}
	// Minting thousands of grants one by one takes long; all at once would
	// be a load test of its own.
	sem := make(chan struct{}, 32)
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = r.prepare(ctx, w)
		})
	}
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed > 0 {
		return nil, fmt.Errorf("setup of %d of %d workers failed, the first: %w", failed, len(ws), first)
	}
	return ws, nil
}

// prepare gives w a token to start from: a fresh grant (unique) or a
// session (session).
func (r *runner) prepare(ctx context.Context, w *worker) error {
	var err error
	switch r.cfg.Scenario {
	case ScenarioUnique:
		w.token, err = r.mint(ctx, w.login)
	case ScenarioSession:
		out := r.signIn(ctx, r.cfg.Targets[w.id%len(r.cfg.Targets)], w.login)
		if out.status != http.StatusOK || out.sessionToken == "" {
			return fmt.Errorf("loadgen: sign-in for the session scenario answered %s %s", out.key(), out.errText)
		}
		w.token = out.sessionToken
	}
	return err
}

// workerResult is what one worker saw; merged into the Report at the end.
type workerResult struct {
	latencies  []time.Duration
	statuses   map[string]int
	firstError string
	// last is the token the worker presented last and whether that
	// request got no HTTP answer: the kill -9 count needs both.
	last      string
	lastNoAns bool
}

func (r *runner) work(ctx context.Context, w *worker, deadline time.Time) workerResult {
	res := workerResult{statuses: map[string]int{}}
	rng := rand.New(rand.NewPCG(uint64(w.id), 0x666c6173686c6f61))
	for n := w.id; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
		if r.sent.Add(1) > int64(r.cfg.MaxRequests) {
			return res
		}
		if w.token == "" && (r.cfg.Scenario == ScenarioUnique || r.cfg.Scenario == ScenarioSession) {
			// The lineage or session broke (an error answer): start anew.
			if err := r.prepare(ctx, w); err != nil {
				res.note("setup error", err.Error())
				return res // the emulator or target is gone: nothing more to send
			}
		}
		target := r.cfg.Targets[n%len(r.cfg.Targets)]
		var lin *lineage
		presented := w.token
		switch r.cfg.Scenario {
		case ScenarioHot:
			lin = r.lineages[rng.IntN(len(r.lineages))]
			presented = lin.current()
		case ScenarioSignin:
			code, err := r.loginCode(ctx, w.login)
			if err != nil {
				res.note("setup error", err.Error())
				return res
			}
			presented = code
		}
		res.last = presented

		t0 := time.Now()
		var out outcome
		switch {
		case r.cfg.Direct:
			out = r.direct(ctx, target, presented)
		case r.cfg.Scenario == ScenarioSession:
			out = r.sessionRefresh(ctx, target, presented)
		case r.cfg.Scenario == ScenarioSignin:
			out = r.exchange(ctx, target, presented)
		default:
			out = r.refresh(ctx, target, presented)
		}
		lat := time.Since(t0)
		if ctx.Err() != nil {
			return res // cut short by the caller: not a measurement
		}
		res.latencies = append(res.latencies, lat)
		res.note(out.key(), out.errText)
		if out.status == 0 && r.cfg.stopOnTransportError {
			res.lastNoAns = true
			return res
		}
		r.follow(w, lin, presented, out)
	}
	return res
}

// follow moves the worker's lineage or session on after an answer.
func (r *runner) follow(w *worker, lin *lineage, presented string, out outcome) {
	ok := out.status == http.StatusOK && out.code == ""
	switch {
	case r.cfg.Scenario == ScenarioSignin:
		if ok {
			r.rotations.Add(1)
		}
	case lin != nil:
		if ok && lin.advance(presented, out.refreshToken) {
			r.rotations.Add(1)
		}
	case ok:
		w.token = out.refreshToken
		r.rotations.Add(1)
	case out.status == http.StatusServiceUnavailable || out.status == http.StatusTooManyRequests:
		// Nothing was spent: the same token is still good.
	default:
		w.token = "" // spent, rejected or unknown: start anew
	}
}

func (w *workerResult) note(key, errText string) {
	w.statuses[key]++
	if errText != "" && w.firstError == "" {
		w.firstError = errText
	}
}
