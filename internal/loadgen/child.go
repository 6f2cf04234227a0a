package loadgen

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/logging"
	"github.com/flashbacktech/flashauth/refresh"
)

// The servers a benchmark measures run in child processes - the running
// program re-executed with FLASHLOAD_CHILD naming the role - so that their
// CPU time and memory are theirs alone, not shared with the load generator.
const (
	envRole            = "FLASHLOAD_CHILD"
	envDatabaseURL     = "FLASHLOAD_CHILD_DATABASE_URL"
	envGitHubURL       = "FLASHLOAD_CHILD_GITHUB_URL"
	envClientID        = "FLASHLOAD_CHILD_CLIENT_ID"
	envClientSecret    = "FLASHLOAD_CHILD_CLIENT_SECRET"
	envSecretKey       = "FLASHLOAD_CHILD_SECRET_KEY"
	envAddr            = "FLASHLOAD_CHILD_ADDR"
	envUpstreamTimeout = "FLASHLOAD_CHILD_UPSTREAM_TIMEOUT"
	// EnvMaxRefreshes is flashauth's FLASHAUTH_MAX_REFRESHES in the
	// flashauth children (flashload -max-refreshes); unset, serve's default.
	EnvMaxRefreshes = "FLASHLOAD_CHILD_MAX_REFRESHES"
	// EnvCPUProfile names a directory: every child writes a CPU profile of
	// its whole life there, as ROLE-PID.pprof (flashload -cpuprofile-target).
	EnvCPUProfile = "FLASHLOAD_CHILD_CPUPROFILE"
	// EnvHeapProfile names a directory: every child writes a heap and a
	// goroutine profile there every second of its life, as
	// ROLE-PID-heap-N.pprof and ROLE-PID-goroutine-N.pprof
	// (flashload -heapprofile-target).
	EnvHeapProfile = "FLASHLOAD_CHILD_HEAPPROFILE"
)

// Child roles.
const (
	RoleEmulator  = "emulator"  // the GitHub emulator
	RoleFlashauth = "flashauth" // flashauth, wired by app.New and served by App.Serve, as `flashauth serve` does
	RoleCeiling   = "ceiling"   // the ceiling proxy
)

// ServeChildIfAsked serves a benchmark child's role and exits the process
// when this process was started as one; otherwise it returns at once. Call
// it first in main, and in TestMain of tests that start children.
func ServeChildIfAsked() {
	role := os.Getenv(envRole)
	if role == "" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile, err := startProfile(os.Getenv(EnvCPUProfile), role)
	if err == nil {
		stopSnapshots := startSnapshots(os.Getenv(EnvHeapProfile), role, time.Second)
		err = serveChild(ctx, role, os.Getenv, os.Stdout, os.Stderr)
		stopSnapshots()
		stopProfile()
	}
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "flashload %s child: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startProfile starts a CPU profile of this process into dir (nothing when
// dir is empty) and returns the function that ends it.
func startProfile(dir, role string) (func(), error) {
	if dir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(dir, role+"-"+strconv.Itoa(os.Getpid())+".pprof"))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// startSnapshots writes a heap and a goroutine profile of this process into
// dir every interval (nothing when dir is empty), numbered from 1, and
// returns the function that stops it. A snapshot that cannot be written is
// skipped: the profiles are a diagnosis, not the benchmark.
func startSnapshots(dir, role string, interval time.Duration) func() {
	if dir == "" {
		return func() {}
	}
	// Finer than the default 512 KiB, so that a few thousand connections'
	// buffers and stacks of small objects are told apart.
	runtime.MemProfileRate = 16 << 10
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-done:
				return
			case <-t.C:
			}
			writeMemClasses(filepath.Join(dir, fmt.Sprintf("%s-%d-mem-%d.txt", role, os.Getpid(), n)))
			for _, kind := range []string{"heap", "goroutine"} {
				name := fmt.Sprintf("%s-%d-%s-%d.pprof", role, os.Getpid(), kind, n)
				if f, err := os.Create(filepath.Join(dir, name)); err == nil {
					_ = pprof.Lookup(kind).WriteTo(f, 0)
					_ = f.Close()
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// writeMemClasses writes the runtime's memory classes (runtime/metrics
// /memory/classes/*, the bytes the Go runtime maps, by use) and the
// process's resident set to path, one "name value" a line.
func writeMemClasses(path string) {
	var samples []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") || d.Name == "/sched/goroutines:goroutines" || d.Name == "/gc/heap/goal:bytes" {
			samples = append(samples, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(samples)
	var b strings.Builder
	for _, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			fmt.Fprintf(&b, "%s %d\n", s.Name, s.Value.Uint64())
		}
	}
	if st, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(st), "\n") {
			if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
				b.WriteString(line + "\n")
			}
		}
	}
	_ = os.WriteFile(path, []byte(b.String()), 0o644)
}

// serveChild listens, prints "listening on URL" and serves role until ctx
// is done.
func serveChild(ctx context.Context, role string, getenv func(string) string, stdout, stderr io.Writer) error {
	addr := getenv(envAddr)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	id, secret := getenv(envClientID), getenv(envClientSecret)
	if id == "" {
		id = githubemu.DefaultClientID
	}
	log := logging.New(stderr, "text", slog.LevelWarn)
	var h http.Handler
	var serve func(ln net.Listener) error
	switch role {
	case RoleEmulator:
		emu := githubemu.New(githubemu.Config{ClientID: id, ClientSecret: secret})
		defer emu.Close()
		h = emu
	case RoleCeiling:
		h = NewCeiling(getenv(envGitHubURL), id, secret, 1024)
	case RoleFlashauth:
		c, err := flashauthConfig(getenv, id, secret)
		if err != nil {
			return err
		}
		a, err := app.New(ctx, c, log, flashauth.SystemClock{})
		if err != nil {
			return err
		}
		defer a.Close()
		serve = func(ln net.Listener) error { return a.Serve(ctx, ln, c) }
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	if serve != nil {
		return serve(ln)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// flashauthConfig is `flashauth serve`'s configuration with its documented
// defaults, except that the rate limits are off: a load generator would
// trip them.
func flashauthConfig(getenv func(string) string, id, secret string) (app.Config, error) {
	upstream := 10 * time.Second
	if s := getenv(envUpstreamTimeout); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return app.Config{}, fmt.Errorf("%s: %q is not a positive duration", envUpstreamTimeout, s)
		}
		upstream = d
	}
	maxRefreshes := app.DefaultMaxRefreshes
	if s := getenv(EnvMaxRefreshes); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return app.Config{}, fmt.Errorf("%s: %q is not a whole number", EnvMaxRefreshes, s)
		}
		maxRefreshes = n
	}
	key := getenv(envSecretKey)
	if len(key) < 32 {
		return app.Config{}, fmt.Errorf("%s must hold at least 32 bytes", envSecretKey)
	}
	gh := getenv(envGitHubURL)
	return app.Config{
		DatabaseURL:      getenv(envDatabaseURL),
		ClientID:         id,
		ClientSecret:     secret,
		GitHubURL:        gh,
		GitHubAPIURL:     gh,
		ReplayWindow:     60 * time.Second,
		UpstreamTimeout:  upstream,
		RefreshAuth:      refresh.PolicyCompat,
		LogLevel:         "warn",
		LogFormat:        "text",
		BreakerFailures:  5,
		BreakerCooldown:  30 * time.Second,
		ShutdownTimeout:  30 * time.Second,
		SecretKey:        []byte(key),
		SessionAccessTTL: time.Hour,
		SessionTTL:       720 * time.Hour,
		ReuseInterval:    10 * time.Second,
		KeyRotation:      720 * time.Hour,
		Issuer:           "flashauth",
		Audience:         "flashauth",
		Version:          "flashload",
		MaxRefreshes:     maxRefreshes,
	}, nil
}

// Child is a server the benchmark started as a child process.
type Child struct {
	Role string
	URL  string

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has been waited for
	stderr *tail
}

// StartChild starts the running program as a child serving role, with the
// extra environment env ("KEY=value"), and waits until it listens.
func StartChild(ctx context.Context, role string, env ...string) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	cmd := exec.Command(exe)
	cmd.Env = childEnv(os.Environ(), append([]string{envRole + "=" + role}, env...))
	cmd.SysProcAttr = procAttr()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c := &Child{Role: role, cmd: cmd, done: make(chan struct{}), stderr: &tail{max: 4 << 10}}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	go func() { _ = cmd.Wait(); close(c.done) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line, ok := <-lines:
		if u, found := strings.CutPrefix(line, "listening on "); ok && found {
			c.URL = u
			return c, nil
		}
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	c.Kill()
	return nil, fmt.Errorf("%s child did not start: %s", role, strings.TrimSpace(c.stderr.String()))
}

// childGODEBUG is the runtime setting every child runs with, ahead of any
// GODEBUG it inherits (a setting given there wins): new goroutines start
// with the smallest stack (2 KiB) instead of the average stack the last
// collection scanned. A server at thousands of connections starts several
// goroutines per request, most of them shallow (the connection's
// background read, the upstream connection's two loops), and a few deep
// ones raise that average for all of them: at 2,000 clients it costs
// flashauth about 15 MiB of stacks, and the ceiling too. Every target gets
// it, so they stay comparable; docs/deploy.md recommends it for `flashauth
// serve`.
const childGODEBUG = "adaptivestackstart=0"

// childEnv is a child's environment: the parent's, with GODEBUG led by
// childGODEBUG, then extra ("KEY=value").
func childEnv(parent, extra []string) []string {
	env := make([]string, 0, len(parent)+len(extra)+1)
	godebug := "GODEBUG=" + childGODEBUG
	for _, kv := range parent {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			if v != "" {
				godebug += "," + v
			}
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, godebug), extra...)
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Stop asks the child to shut down (SIGTERM) and waits for it, killing it
// after 15 s.
func (c *Child) Stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.Kill()
	}
}

// Kill kills the child (SIGKILL) and waits until it is gone.
func (c *Child) Kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// Stderr returns the end of what the child wrote to stderr.
func (c *Child) Stderr() string { return c.stderr.String() }

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// CPU returns the user+system CPU time the child has used (Linux).
func (c *Child) CPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(c.Pid()) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable /proc stat times")
	}
	const hz = 100 // USER_HZ: 100 on every Linux architecture Go supports
	return time.Duration(utime+stime) * time.Second / hz, nil
}

// ResetPeakRSS starts a new peak resident set size measurement (Linux 4.0+).
func (c *Child) ResetPeakRSS() error {
	return os.WriteFile("/proc/"+strconv.Itoa(c.Pid())+"/clear_refs", []byte("5"), 0)
}

// PeakRSS returns the child's peak resident set size in bytes (VmHWM) since
// it started or since ResetPeakRSS (Linux).
func (c *Child) PeakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(c.Pid()) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// randomSecret returns n random bytes, hex encoded.
func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
