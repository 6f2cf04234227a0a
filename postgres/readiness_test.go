package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// Ping is a readiness check: it commits a write, and a database that answers
// reads but refuses writes is not ready.
func TestPingCommitsAWrite(t *testing.T) {
	url := testURL(t)
	db := open(t, url)
	checks := func() int64 {
		t.Helper()
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		var n int64
		if err := conn.QueryRow(t.Context(), `SELECT checks FROM readiness`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := checks()
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if after := checks(); after != before+1 {
		t.Errorf("readiness checks %d after Ping, %d before: no write was committed", after, before)
	}

}

// A database that turns read-only under a running store (a failover to a
// standby, default_transaction_read_only set by an operator) still answers
// reads, and Ping reports it not ready.
func TestPingOfReadOnlyDatabase(t *testing.T) {
	base := pgtest.BaseURL(t)
	admin, err := pgx.Connect(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	name := fmt.Sprintf("flashauth_ro_%d", time.Now().UnixNano())
	if _, err := admin.Exec(t.Context(), `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	db := open(t, u.String())
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping while writable: %v", err)
	}

	if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+name+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	// New sessions pick the setting up: end the store's current ones.
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, name); err != nil {
		t.Fatal(err)
	}
	var readErr error
	for range 10 {
		if _, readErr = db.GetUser(t.Context(), "nobody"); errors.Is(readErr, flashauth.ErrNotFound) {
			break
		}
	}
	if !errors.Is(readErr, flashauth.ErrNotFound) {
		t.Fatalf("reads after reconnecting: %v, want ErrNotFound", readErr)
	}
	err = bounded(t, "Ping", db.Ping)
	wantUnavailable(t, "Ping of a read-only database", err)
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "25006" {
		t.Errorf("Ping failed with %v, want SQLSTATE 25006 (read-only transaction)", err)
	}
	wantUnavailable(t, "AppendAudit on a read-only database", db.AppendAudit(t.Context(), auditEvent("ro")))
}
