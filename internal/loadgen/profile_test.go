package loadgen

import (
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/app"
)

// A child asked for a CPU profile (-cpuprofile-target) writes one that
// go tool pprof can read: a gzip stream, named after its role and pid. No
// directory, no profile.
func TestStartProfile(t *testing.T) {
	stop, err := startProfile("", RoleFlashauth)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	dir := t.TempDir()
	stop, err = startProfile(dir, RoleFlashauth)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	b, err := os.ReadFile(filepath.Join(dir, RoleFlashauth+"-"+strconv.Itoa(os.Getpid())+".pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("profile of %d bytes is not gzip", len(b))
	}
	if _, err := startProfile(filepath.Join(dir, "missing"), RoleFlashauth); err == nil {
		t.Fatal("a profile into a missing directory started")
	}
}

// Children run with adaptivestackstart=0 ahead of the GODEBUG they inherit,
// so that a setting given explicitly still wins; the rest of the
// environment passes through, the child's own variables last.
func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"A=1", "GODEBUG=adaptivestackstart=1,madvdontneed=0", "B=2"}, []string{envRole + "=" + RoleCeiling})
	want := []string{"A=1", "B=2", "GODEBUG=adaptivestackstart=0,adaptivestackstart=1,madvdontneed=0", envRole + "=" + RoleCeiling}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
	got = childEnv([]string{"A=1"}, nil)
	if want := []string{"A=1", "GODEBUG=adaptivestackstart=0"}; !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
}

// The ceiling's upstream connections have the buffers of flashauth's GitHub
// client (github.newTransport), so that neither pays bytes the other does not.
func TestCeilingTransportBuffers(t *testing.T) {
	tr := NewCeiling("http://127.0.0.1:1", "id", "secret", 4).client.Transport.(*http.Transport)
	if tr.ReadBufferSize != 2<<10 || tr.WriteBufferSize != 1<<10 {
		t.Errorf("buffers %d / %d, want 2 KiB / 1 KiB", tr.ReadBufferSize, tr.WriteBufferSize)
	}
}

// A child asked for snapshots (-heapprofile-target) writes, every interval,
// a heap and a goroutine profile that go tool pprof can read and the
// runtime's memory classes as text; stopping ends them. No directory,
// nothing.
func TestStartSnapshots(t *testing.T) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	startSnapshots("", RoleCeiling, time.Millisecond)()
	dir := t.TempDir()
	stop := startSnapshots(dir, RoleCeiling, time.Millisecond)
	prefix := filepath.Join(dir, RoleCeiling+"-"+strconv.Itoa(os.Getpid()))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(prefix + "-goroutine-1.pprof"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot written")
		}
	}
	stop()
	for _, kind := range []string{"heap", "goroutine"} {
		b, err := os.ReadFile(prefix + "-" + kind + "-1.pprof")
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s profile of %d bytes is not gzip", kind, len(b))
		}
	}
	b, err := os.ReadFile(prefix + "-mem-1.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/memory/classes/heap/stacks:bytes ", "/memory/classes/total:bytes ", "/sched/goroutines:goroutines ", "VmRSS:"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("memory classes lack %q:\n%s", want, b)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := len(entries)
	time.Sleep(20 * time.Millisecond)
	if entries, _ := os.ReadDir(dir); len(entries) != n {
		t.Errorf("%d files after stop, then %d: snapshots went on", n, len(entries))
	}
}

// flashload -max-refreshes reaches the flashauth children as their
// FLASHAUTH_MAX_REFRESHES; unset, serve's default; not a whole number,
// refused.
func TestFlashauthConfigMaxRefreshes(t *testing.T) {
	env := map[string]string{envSecretKey: strings.Repeat("k", 32)}
	getenv := func(k string) string { return env[k] }
	c, err := flashauthConfig(getenv, "id", "secret")
	if err != nil || c.MaxRefreshes != app.DefaultMaxRefreshes {
		t.Errorf("unset: MaxRefreshes %d, %v; want %d", c.MaxRefreshes, err, app.DefaultMaxRefreshes)
	}
	env[EnvMaxRefreshes] = "384"
	if c, err := flashauthConfig(getenv, "id", "secret"); err != nil || c.MaxRefreshes != 384 {
		t.Errorf("384: MaxRefreshes %d, %v", c.MaxRefreshes, err)
	}
	for _, bad := range []string{"-1", "lots"} {
		env[EnvMaxRefreshes] = bad
		if _, err := flashauthConfig(getenv, "id", "secret"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
