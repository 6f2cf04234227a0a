package loadgen

import (
	"os"
	"path/filepath"
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
