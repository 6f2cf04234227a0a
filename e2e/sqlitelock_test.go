//go:build linux

package e2e

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" driver of the reader process
)

// readerEnv, set in the environment of this test binary, makes it a one-shot
// SQLite client instead of a test run: it opens the database file it names,
// reads it and closes it, as a backup script would.
const readerEnv = "FLASHAUTH_E2E_SQLITE_READER"

func init() {
	if path := os.Getenv(readerEnv); path != "" {
		if err := runSQLiteReader(path); err != nil {
			fmt.Fprintln(os.Stderr, "sqlite reader:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// runSQLiteReader is the reader mode of the test binary.
func runSQLiteReader(path string) error {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: "_busy_timeout=5000"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ledger_entries`).Scan(&n); err != nil {
		db.Close()
		return fmt.Errorf("read: %w", err)
	}
	// Closing what it believes is the last connection to the file makes
	// SQLite checkpoint the WAL and delete -wal and -shm, unless it sees
	// another process's lock.
	return db.Close()
}

// readFromOtherProcesses opens, reads and closes the database from other
// processes: this test binary in reader mode (the SQLite flashauth links),
// and the sqlite3 command-line shell when it is installed (often an older
// SQLite, which trusts the database file's lock alone).
func readFromOtherProcesses(t *testing.T, path string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), readerEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reader process: %v\n%s", err, out)
	}
	if cli, err := exec.LookPath("sqlite3"); err == nil {
		if out, err := exec.Command(cli, path, "SELECT count(*) FROM ledger_entries;").CombinedOutput(); err != nil {
			t.Fatalf("sqlite3 shell: %v\n%s", err, out)
		}
	}
}

// sharedLockHolder returns the pid of a process holding a lock on the
// database file's SHARED byte range, the lock every open SQLite connection in
// WAL mode holds, or 0. It asks the kernel from this process, which holds no
// lock on the file.
func sharedLockHolder(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// SQLite's SHARED range: the PENDING byte at 0x40000000, RESERVED after
	// it, then 510 bytes of SHARED.
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0x40000002, Len: 510}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if lk.Type == syscall.F_UNLCK {
		return 0
	}
	return int(lk.Pid)
}

// A readiness probe must leave SQLite's locks alone. Closing any descriptor
// of a file drops every POSIX lock the process holds on it; after that,
// another process that opens, reads and closes the database believes it is
// the last user, checkpoints and deletes the WAL under the running service,
// and every refresh committed afterwards is lost on a kill -9: the restarted
// service calls GitHub again for tokens it already answered.
func TestReadyzKeepsSQLiteLocks(t *testing.T) {
	b := newTestbed(t)
	path := filepath.Join(t.TempDir(), "flashauth.db")
	env := b.env("sqlite:" + path)
	r := b.start(1, env)[0]
	pid := r.cmd.Process.Pid

	answers := map[string]answer{}
	refresh := func() {
		t.Helper()
		token := b.grant()
		a := b.mustRefresh(r.URL, token)
		if a.Status != 200 {
			t.Fatalf("refresh: %v", a)
		}
		answers[token] = a
	}
	readyz := func() {
		t.Helper()
		for range 3 {
			if a, err := b.readyz(r.URL); err != nil || a.Status != 200 {
				t.Fatalf("/readyz: %v %v", a, err)
			}
		}
		if got := sharedLockHolder(t, path); got != pid {
			t.Errorf("after /readyz the database file's lock is held by pid %d, want flashauth's %d", got, pid)
		}
	}

	refresh()
	readyz()
	readFromOtherProcesses(t, path)
	for range 5 {
		refresh()
	}
	readyz()
	readFromOtherProcesses(t, path)
	refresh()
	calls := b.up.emu.Calls().TokenRefresh

	r.kill()
	if !r.killedBySIGKILL() {
		t.Fatal("the replica did not die of SIGKILL")
	}
	r2 := b.start(1, env)[0]
	for token, want := range answers {
		got := b.mustRefresh(r2.URL, token)
		if got.Status != 200 || string(got.Body) != string(want.Body) {
			t.Errorf("after kill -9 and restart: %v, identical body %v; want the committed answer replayed", got, string(got.Body) == string(want.Body))
		}
	}
	if n := b.up.emu.Calls().TokenRefresh; n != calls {
		t.Errorf("GitHub refresh calls: %d after the restart, %d before; want no new call", n, calls)
	}
}
