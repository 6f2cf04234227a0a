package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/sqlite"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
	"github.com/flashbacktech/flashauth/storetest"
)

var base = time.UnixMilli(1764120000000).UTC()

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) flashauth.Store { return sqlitetest.Open(t) })
}

func open(t *testing.T, path string, opts ...sqlite.Option) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// wantUnavailable fails unless err is the store's CodeStoreUnavailable error
// with a retry hint.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var fe *flashauth.Error
	if !errors.As(err, &fe) || fe.Code != flashauth.CodeStoreUnavailable || fe.RetryAfter <= 0 {
		t.Errorf("%s: got %v, want %s with RetryAfter", what, err, flashauth.CodeStoreUnavailable)
	}
}

func upsertUser(t *testing.T, st flashauth.Store, id string, githubID int64) {
	t.Helper()
	_, _, err := st.UpsertGitHubUser(t.Context(),
		flashauth.User{ID: id, GitHubID: githubID, Login: id, CreatedAt: base, UpdatedAt: base},
		flashauth.Organization{ID: "org-" + id, Name: id, CreatedAt: base})
	if err != nil {
		t.Fatalf("UpsertGitHubUser: %v", err)
	}
}

func TestOpenCreatesAndMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "..", "new.db")
	db := open(t, path)
	if want := filepath.Clean(path); db.Path() != want {
		t.Errorf("Path() = %q, want %q", db.Path(), want)
	}
	v, err := db.MigrationVersion(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v != sqlite.LatestVersion() || v < 1 {
		t.Errorf("MigrationVersion = %d, want %d", v, sqlite.LatestVersion())
	}
}

func TestReopenKeepsDataAndMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flashauth.db")
	first := time.UnixMilli(1700000000000)
	db, err := sqlite.Open(t.Context(), path, sqlite.WithClock(testkit.NewClock(first)))
	if err != nil {
		t.Fatal(err)
	}
	upsertUser(t, db, "u1", 42)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path, sqlite.WithClock(testkit.NewClock(first.Add(time.Hour))))
	u, err := db.GetUser(t.Context(), "u1")
	if err != nil || u.GitHubID != 42 {
		t.Fatalf("GetUser after reopen = %+v, %v", u, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var n, appliedAt int64
	if err := raw.QueryRow(`SELECT count(*), max(applied_at) FROM schema_migrations`).Scan(&n, &appliedAt); err != nil {
		t.Fatal(err)
	}
	if n != int64(sqlite.LatestVersion()) || appliedAt != first.UnixMilli() {
		t.Errorf("schema_migrations: %d rows, last applied at %d; want %d rows applied at the first open %d",
			n, appliedAt, sqlite.LatestVersion(), first.UnixMilli())
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	db := sqlitetest.Open(t)
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping before Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	wantUnavailable(t, "Ping", db.Ping(t.Context()))
	_, err := db.GetUser(t.Context(), "u1")
	wantUnavailable(t, "GetUser", err)
	_, _, err = db.ClaimLedger(t.Context(), flashauth.LedgerGitHubRefresh, make([]byte, 32), "c", base, base.Add(time.Second))
	wantUnavailable(t, "ClaimLedger", err)
	_, err = db.MigrationVersion(t.Context())
	wantUnavailable(t, "MigrationVersion", err)
}

func TestPingDetectsMissingFile(t *testing.T) {
	db := sqlitetest.Open(t)
	if err := os.Remove(db.Path()); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, "Ping after the file was removed", db.Ping(t.Context()))
	// A new file at the same path is not the database this process writes.
	if err := os.WriteFile(db.Path(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, "Ping after the file was replaced", db.Ping(t.Context()))
}

func TestPingDetectsUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	db := sqlitetest.Open(t)
	if err := os.Chmod(db.Path(), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(db.Path(), 0o600) })
	wantUnavailable(t, "Ping", db.Ping(t.Context()))
}

func TestDeadlineIsUnavailable(t *testing.T) {
	db := sqlitetest.Open(t)
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := db.GetUser(ctx, "u1")
	wantUnavailable(t, "GetUser", err)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cause lost: %v", err)
	}
	wantUnavailable(t, "PutLineage", db.PutLineage(ctx, flashauth.Lineage{TokenHash: make([]byte, 32)}))
}

func TestOpenUnreachablePath(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A path under a regular file cannot be created, even by root.
	_, err := sqlite.Open(t.Context(), filepath.Join(blocker, "flashauth.db"))
	wantUnavailable(t, "Open", err)
}

// writes lists one call of every kind of write, for the read-only tests.
func writes(st flashauth.Store) map[string]func(ctx context.Context) error {
	h := make([]byte, 32)
	return map[string]func(ctx context.Context) error{
		"ClaimLedger": func(ctx context.Context) error {
			_, _, err := st.ClaimLedger(ctx, flashauth.LedgerGitHubRefresh, h, "c", base, base.Add(time.Minute))
			return err
		},
		"PutLineage": func(ctx context.Context) error { return st.PutLineage(ctx, flashauth.Lineage{TokenHash: h}) },
		"UpsertGitHubUser": func(ctx context.Context) error {
			_, _, err := st.UpsertGitHubUser(ctx, flashauth.User{ID: "u9", GitHubID: 9}, flashauth.Organization{ID: "o9"})
			return err
		},
		"AppendAudit": func(ctx context.Context) error {
			return st.AppendAudit(ctx, flashauth.AuditEvent{Time: base, Type: "t", Outcome: "ok"})
		},
		"PurgeOAuthStates": func(ctx context.Context) error { _, err := st.PurgeOAuthStates(ctx, base); return err },
	}
}

func TestReadOnlyOption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flashauth.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	upsertUser(t, db, "u1", 1)
	db.Close()

	ro := open(t, path, sqlite.ReadOnly())
	if _, err := ro.GetUser(t.Context(), "u1"); err != nil {
		t.Fatalf("read on a read-only store: %v", err)
	}
	// Readiness needs a write: a store that cannot take one is not ready.
	wantUnavailable(t, "Ping", ro.Ping(t.Context()))
	for name, write := range writes(ro) {
		t.Run(name, func(t *testing.T) { wantUnavailable(t, name, write(t.Context())) })
	}
}

func TestReadOnlyOptionNeedsMigratedFile(t *testing.T) {
	_, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "absent.db"), sqlite.ReadOnly())
	if err == nil {
		t.Fatal("read-only Open of a missing file succeeded")
	}
}

func TestReadOnlyFiles(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes files whatever their mode; TestReadOnlyOption covers SQLITE_READONLY")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "flashauth.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700); os.Chmod(path, 0o600) })

	db, err = sqlite.Open(t.Context(), path)
	if err != nil {
		// Refusing to open is fine, as long as it says the store is unavailable.
		t.Logf("Open of a read-only file: %v", err)
		wantUnavailable(t, "Open", err)
		return
	}
	t.Cleanup(func() { db.Close() })
	for name, write := range writes(db) {
		t.Run(name, func(t *testing.T) { wantUnavailable(t, name, write(t.Context())) })
	}
}

// TestTwoHandlesOneFile stands for two processes sharing the database file:
// the claim is still exactly-once across them.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	handles := []*sqlite.DB{open(t, path), open(t, path)}
	key := make([]byte, 32)
	const perHandle = 10
	held := make(chan string, 2*perHandle)
	errs := make(chan error, 2*perHandle)
	done := make(chan struct{})
	for i := range 2 * perHandle {
		go func() {
			defer func() { done <- struct{}{} }()
			claimID := string(rune('a' + i))
			_, ok, err := handles[i%2].ClaimLedger(t.Context(), flashauth.LedgerGitHubRefresh, key, claimID, base, base.Add(time.Minute))
			if err != nil {
				errs <- err
			}
			if ok {
				held <- claimID
			}
		}()
	}
	for range 2 * perHandle {
		<-done
	}
	close(held)
	close(errs)
	for err := range errs {
		t.Errorf("ClaimLedger: %v", err)
	}
	var winners []string
	for id := range held {
		winners = append(winners, id)
	}
	if len(winners) != 1 {
		t.Fatalf("claims held: %q, want exactly one", winners)
	}
	for _, db := range handles {
		e, err := db.GetLedger(t.Context(), flashauth.LedgerGitHubRefresh, key)
		if err != nil || e.ClaimID != winners[0] {
			t.Errorf("GetLedger = %+v, %v; want the winner %q", e, err, winners[0])
		}
	}
}
