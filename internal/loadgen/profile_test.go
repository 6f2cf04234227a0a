package loadgen

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
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
