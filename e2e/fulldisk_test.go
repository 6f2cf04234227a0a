//go:build linux

package e2e

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// unlimited is RLIM_INFINITY.
const unlimited = ^uint64(0)

// setFileSizeLimit sets RLIMIT_FSIZE of process pid: the kernel then refuses
// (EFBIG) every write to a regular file beyond limit bytes, as a full disk
// refuses to grow a file. Go ignores the SIGXFSZ that comes with it.
func setFileSizeLimit(t *testing.T, pid int, limit uint64) {
	t.Helper()
	rl := syscall.Rlimit{Cur: limit, Max: unlimited}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(syscall.RLIMIT_FSIZE),
		uintptr(unsafe.Pointer(&rl)), 0, 0, 0); errno != 0 {
		t.Fatalf("prlimit: %v", errno)
	}
}

// A database that cannot be written (here the kernel refuses every write to
// the process's files, as on a full disk) makes /readyz 503, not only the
// writes; once writes pass again, it is ready again.
func TestReadyzReportsUnwritableStore(t *testing.T) {
	b := newTestbed(t)
	env := b.env("sqlite:" + filepath.Join(t.TempDir(), "flashauth.db"))
	r := b.start(1, env)[0]
	if a := b.mustRefresh(r.URL, b.grant()); a.Status != 200 {
		t.Fatalf("refresh: %v", a)
	}
	if a, err := b.readyz(r.URL); err != nil || a.Status != 200 {
		t.Fatalf("/readyz: %v %v", a, err)
	}

	setFileSizeLimit(t, r.cmd.Process.Pid, 0)
	if a := b.mustRefresh(r.URL, b.grant()); a.Status != 503 {
		t.Fatalf("refresh with the disk refusing writes: %v, want 503", a)
	}
	if a, err := b.readyz(r.URL); err != nil || a.Status != 503 || a.field("error_code") != "STORE_UNAVAILABLE" {
		t.Errorf("/readyz with the disk refusing writes: %v %v, want 503 STORE_UNAVAILABLE", a, err)
	}

	setFileSizeLimit(t, r.cmd.Process.Pid, unlimited)
	waitFor(t, "/readyz to recover", 10*time.Second, func() bool {
		a, err := b.readyz(r.URL)
		return err == nil && a.Status == 200
	})
	if a := b.mustRefresh(r.URL, b.grant()); a.Status != 200 {
		t.Errorf("refresh after the disk recovered: %v", a)
	}
}
