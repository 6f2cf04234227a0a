package sqlite_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/sqlite"
)

// dbFiles returns the contents of the database file and its WAL and shared
// memory files, whichever exist.
func dbFiles(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestNoPlaintextSecrets writes what flashauth writes after a refresh and a
// login start, and checks that neither the secrets nor the sealed tokens
// appear in the files. A canary stored in clear proves the scan sees data.
func TestNoPlaintextSecrets(t *testing.T) {
	const (
		refreshToken = "ghr_PlaintextRefreshTokenThatMustNeverReachTheDisk0123456789"
		newAccess    = "ghu_PlaintextAccessTokenThatMustNeverReachTheDisk"
		stateValue   = "state_PlaintextOAuthStateValue"
		verifier     = "verifier_PlaintextPKCEVerifierValue"
		canary       = "canary-stored-in-clear-7f3a"
	)
	path := filepath.Join(t.TempDir(), "flashauth.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	key := seal.Hash(refreshToken)
	sealed, err := seal.Seal([]byte(refreshToken), "test", []byte(`{"token":"`+newAccess+`"}`), key)
	if err != nil {
		t.Fatal(err)
	}
	kind := flashauth.LedgerGitHubRefresh
	if _, _, err := db.ClaimLedger(t.Context(), kind, key, "c1", base, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	lineage := []flashauth.Lineage{{TokenHash: key, UserID: "u1", CreatedAt: base}}
	if err := db.CompleteLedger(t.Context(), kind, key, "c1", sealed, base.Add(time.Minute), lineage); err != nil {
		t.Fatal(err)
	}
	stateHash := seal.Hash(stateValue)
	sealedVerifier, err := seal.Seal([]byte(stateValue), "test", []byte(verifier), stateHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutOAuthState(t.Context(), flashauth.OAuthState{Hash: stateHash, Verifier: sealedVerifier, CreatedAt: base, ExpiresAt: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendAudit(t.Context(), flashauth.AuditEvent{Time: base, Type: "github_refresh", Outcome: "ok", Detail: canary}); err != nil {
		t.Fatal(err)
	}

	// While open (data in the WAL) and after Close (checkpointed).
	for _, when := range []string{"open", "closed"} {
		if when == "closed" {
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
		files := dbFiles(t, path)
		if !bytes.Contains(files, []byte(canary)) {
			t.Fatalf("%s: the canary is not in the files; the scan reads nothing", when)
		}
		for _, secret := range []string{refreshToken, newAccess, stateValue, verifier} {
			if bytes.Contains(files, []byte(secret)) {
				t.Errorf("%s: a secret is stored in clear (%.8s...)", when, secret)
			}
		}
	}
}

const crashChildEnv = "FLASHAUTH_SQLITE_CRASH_CHILD"

// TestCrashChild is the child process of TestCommitSurvivesKill: it commits
// a ledger outcome, says so, and waits to be killed with its connections
// open and the WAL not checkpointed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("child process of TestCommitSurvivesKill")
	}
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	key := seal.Hash("ghr_crash")
	if _, _, err := db.ClaimLedger(t.Context(), flashauth.LedgerGitHubRefresh, key, "c1", base, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteLedger(t.Context(), flashauth.LedgerGitHubRefresh, key, "c1", []byte("outcome"), base.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("committed\n")
	select {}
}

// TestCommitSurvivesKill checks the durability the ledger relies on: an
// outcome committed before the HTTP answer survives kill -9 of the process.
func TestCommitSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the child's word; it may print test chatter first.
	lines := bufio.NewScanner(out)
	var said []string
	for lines.Scan() && lines.Text() != "committed" {
		said = append(said, lines.Text())
	}
	if lines.Text() != "committed" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child exited without committing: %q", said)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()

	db := open(t, path)
	e, err := db.GetLedger(t.Context(), flashauth.LedgerGitHubRefresh, seal.Hash("ghr_crash"))
	if err != nil {
		t.Fatalf("GetLedger after kill: %v", err)
	}
	if e.State != flashauth.LedgerDone || string(e.Sealed) != "outcome" {
		t.Errorf("entry after kill: %+v", e)
	}
}
