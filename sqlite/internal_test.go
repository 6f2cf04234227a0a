package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flashbacktech/flashauth"
)

func openInternal(t *testing.T, path string, opts ...Option) *DB {
	t.Helper()
	db, err := Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type pragmas struct {
	journal   string
	fk, sync  int
	busy      int
	queryOnly int
	// checkpoint is wal_autocheckpoint: 8000 on the writer, SQLite's
	// default 1000 on readers (which never commit).
	checkpoint int
}

func readPragmas(ctx context.Context, c *sql.Conn) (pragmas, error) {
	var p pragmas
	for _, q := range []struct {
		sql  string
		dest any
	}{
		{"PRAGMA journal_mode", &p.journal},
		{"PRAGMA foreign_keys", &p.fk},
		{"PRAGMA synchronous", &p.sync},
		{"PRAGMA busy_timeout", &p.busy},
		{"PRAGMA query_only", &p.queryOnly},
		{"PRAGMA wal_autocheckpoint", &p.checkpoint},
	} {
		if err := c.QueryRowContext(ctx, q.sql).Scan(q.dest); err != nil {
			return p, err
		}
	}
	return p, nil
}

// TestPragmasOnEveryConnection holds every connection of both pools at once,
// so each one is checked, not just the first.
func TestPragmasOnEveryConnection(t *testing.T) {
	const readers = 3
	tests := []struct {
		name     string
		opts     []Option
		wantSync int
	}{
		{"default NORMAL", nil, 1},
		{"full sync", []Option{WithFullSync()}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{WithReadConns(readers), WithBusyTimeout(1234 * time.Millisecond)}, tc.opts...)
			db := openInternal(t, filepath.Join(t.TempDir(), "p.db"), opts...)
			check := func(pool *sql.DB, n int, want pragmas) {
				t.Helper()
				var conns []*sql.Conn
				for range n {
					c, err := pool.Conn(t.Context())
					if err != nil {
						t.Fatal(err)
					}
					conns = append(conns, c)
				}
				for i, c := range conns {
					got, err := readPragmas(t.Context(), c)
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Errorf("connection %d: pragmas %+v, want %+v", i, got, want)
					}
					c.Close()
				}
			}
			want := pragmas{journal: "wal", fk: 1, sync: tc.wantSync, busy: 1234, checkpoint: 8000}
			check(db.write, 1, want)
			want.queryOnly, want.checkpoint = 1, 1000
			check(db.read, readers, want)
		})
	}
}

// TestWriterTakesLockAtBegin shows that write transactions are BEGIN
// IMMEDIATE: a transaction that has not written yet already keeps another
// process's writer out, which then reports the store unavailable (BUSY)
// rather than deadlocking later.
func TestWriterTakesLockAtBegin(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock.db")
	db := openInternal(t, path)
	other := openInternal(t, path, WithBusyTimeout(50*time.Millisecond))
	tx, err := db.write.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	err = other.PutLineage(t.Context(), flashauth.Lineage{TokenHash: make([]byte, 32)})
	if flashauth.ErrorCode(err) != flashauth.CodeStoreUnavailable {
		t.Fatalf("write while another handle holds BEGIN IMMEDIATE: %v, want %s", err, flashauth.CodeStoreUnavailable)
	}
	tx.Rollback()
	if err := other.PutLineage(t.Context(), flashauth.Lineage{TokenHash: make([]byte, 32)}); err != nil {
		t.Errorf("write after the lock was released: %v", err)
	}
}

// TestConcurrentOpenMigratesOnce opens one new file from several handles at
// once, as replicas starting together would.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "race.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := Open(context.Background(), path)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	db := openInternal(t, path)
	var n int
	if err := db.read.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != LatestVersion() {
		t.Errorf("schema_migrations has %d rows, want %d", n, LatestVersion())
	}
}

func TestLoadMigrations(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		want    []int
		wantErr bool
	}{
		{"gap", fstest.MapFS{
			"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A"), "migrations/0010_c.sql": file("C"),
		}, nil, true},
		{"sorted", fstest.MapFS{
			"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A"), "migrations/0003_c.sql": file("C"),
		}, []int{1, 2, 3}, false},
		{"no number", fstest.MapFS{"migrations/init.sql": file("A")}, nil, true},
		{"zero", fstest.MapFS{"migrations/0000_a.sql": file("A")}, nil, true},
		{"duplicate", fstest.MapFS{"migrations/0001_a.sql": file("A"), "migrations/0001_b.sql": file("B")}, nil, true},
		{"empty", fstest.MapFS{}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.fs)
			if (err != nil) != tc.wantErr {
				t.Fatalf("loadMigrations: %v, want error %v", err, tc.wantErr)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if !tc.wantErr && !slices.Equal(got, tc.want) {
				t.Errorf("versions %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := loadMigrations(migrationFS); err != nil {
		t.Errorf("embedded migrations: %v", err)
	}
}

// TestFailMapping covers the classifications the conformance suite cannot
// reach through a healthy database.
func TestFailMapping(t *testing.T) {
	db := &DB{}
	tests := []struct {
		name        string
		err         error
		unavailable bool
		is          error
	}{
		{"no rows", sql.ErrNoRows, false, flashauth.ErrNotFound},
		{"conn done", sql.ErrConnDone, true, sql.ErrConnDone},
		{"deadline", context.DeadlineExceeded, true, context.DeadlineExceeded},
		{"canceled stays canceled", context.Canceled, false, context.Canceled},
		{"sentinel passes", flashauth.ErrClaimLost, false, flashauth.ErrClaimLost},
		{"other", errors.New("boom"), false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := db.fail("op", tc.err)
			if got := flashauth.ErrorCode(err) == flashauth.CodeStoreUnavailable; got != tc.unavailable {
				t.Errorf("unavailable = %v, want %v (%v)", got, tc.unavailable, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
		})
	}
	if db.fail("op", nil) != nil {
		t.Error("fail(nil) != nil")
	}
}

// A panic inside a write transaction must not leave the one writer
// connection inside an open transaction: every later write would wait for
// it for ever.
func TestWriteTxPanicReleasesWriter(t *testing.T) {
	db := openInternal(t, filepath.Join(t.TempDir(), "panic.db"))
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not propagate")
			}
		}()
		_ = db.writeTx(t.Context(), "panicking", func(ctx context.Context, tx *wtx) error {
			if _, err := tx.ExecContext(t.Context(), `INSERT INTO audit_events (time, type, outcome, user_id, session_id, ip_address, request_id, detail)
				VALUES (1, 'x', 'x', '', '', '', '', '')`); err != nil {
				t.Fatal(err)
			}
			panic("boom")
		})
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := db.AppendAudit(ctx, flashauth.AuditEvent{Type: "after", Outcome: "ok"}); err != nil {
		t.Fatalf("write after a panicking transaction: %v", err)
	}
	events, err := db.ListAudit(t.Context(), 10)
	if err != nil || len(events) != 1 || events[0].Type != "after" {
		t.Fatalf("events = %+v, %v; want only the later write (the panicking one rolled back)", events, err)
	}
}

// TestPingCommitsAWrite: Ping is a readiness check, so a store that answers
// reads but cannot commit a write must fail it, and a healthy one commits.
func TestPingCommitsAWrite(t *testing.T) {
	checks := func(t *testing.T, db *DB) int64 {
		t.Helper()
		var n int64
		if err := db.read.QueryRowContext(t.Context(), `SELECT checks FROM readiness`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Run("healthy", func(t *testing.T) {
		db := openInternal(t, filepath.Join(t.TempDir(), "ok.db"))
		before := checks(t, db)
		if err := db.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if after := checks(t, db); after != before+1 {
			t.Errorf("readiness checks %d after Ping, %d before: no write was committed", after, before)
		}
	})
	tests := []struct {
		name    string
		cripple func(t *testing.T, path string, db *DB)
	}{
		{"writer cannot write (SQLITE_READONLY)", func(t *testing.T, _ string, db *DB) {
			// The writer pool is one connection, so the pragma stays on it.
			if _, err := db.write.ExecContext(t.Context(), `PRAGMA query_only = ON`); err != nil {
				t.Fatal(err)
			}
		}},
		{"another process holds the write lock (stalled writer)", func(t *testing.T, path string, _ *DB) {
			other := openInternal(t, path)
			tx, err := other.write.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tx.Rollback() })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.db")
			db := openInternal(t, path, WithBusyTimeout(50*time.Millisecond))
			tc.cripple(t, path, db)
			// Reads still work: only the write shows the store is not ready.
			var n int
			if err := db.read.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := db.Ping(t.Context()); flashauth.ErrorCode(err) != flashauth.CodeStoreUnavailable {
				t.Errorf("Ping = %v, want %s", err, flashauth.CodeStoreUnavailable)
			}
		})
	}
}
