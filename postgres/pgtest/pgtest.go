// Package pgtest gives tests a PostgreSQL store of their own. Tests that use
// it run only when FLASHAUTH_TEST_POSTGRES_URL points at a server, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable, and skip
// otherwise (fail, when CI is set). Each call creates a fresh schema, dropped when the test ends,
// so tests may run in parallel against one database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/flashbacktech/flashauth/postgres"
)

// EnvURL names the environment variable holding the test server's URL.
const EnvURL = "FLASHAUTH_TEST_POSTGRES_URL"

// BaseURL returns the URL of the test server, or skips the test when
// EnvURL is not set.
func BaseURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		// CI (CI set, to anything but a false value) must run these
		// tests: there a missing URL is a failure, not a skip.
		if ci, err := strconv.ParseBool(os.Getenv("CI")); ci || (err != nil && os.Getenv("CI") != "") {
			tb.Fatalf("CI is set but %s is not: start PostgreSQL and set it (.ci/run does)", EnvURL)
		}
		tb.Skipf("%s is not set; skipping PostgreSQL test", EnvURL)
	}
	return base
}

// URL creates a fresh schema, registers its removal with tb.Cleanup, and
// returns a URL whose connections use that schema. It is for tests that hand
// the URL to something else, such as a real flashauth process.
func URL(tb testing.TB) string {
	tb.Helper()
	base := BaseURL(tb)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		tb.Fatalf("%s must be a postgres:// URL", EnvURL)
	}
	schema := "flashauth_test_" + randomHex(tb)
	exec(tb, base, `CREATE SCHEMA `+schema)
	tb.Cleanup(func() { dropSchema(tb, base, schema) })

	// Unknown URL parameters are sent to the server as run-time settings.
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a store in a fresh schema, closed and dropped when the test
// ends.
func Open(tb testing.TB, opts ...postgres.Option) *postgres.DB {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, URL(tb), opts...)
	if err != nil {
		tb.Fatalf("postgres.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// dropSchema drops schema and everything in it. A test may end while a
// backend of a process it killed, or of a store still closing, holds locks
// in that schema; DROP ... CASCADE then can lose a deadlock against it
// (SQLSTATE 40P01), which PostgreSQL resolves by aborting the drop. The
// drop is retried a few times; any other error fails the test at once.
func dropSchema(tb testing.TB, base, schema string) {
	tb.Helper()
	sql := `DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`
	for attempt := 1; ; attempt++ {
		err := tryExec(base, sql)
		var pgErr *pgconn.PgError
		if err == nil {
			return
		}
		if attempt < 5 && errors.As(err, &pgErr) && pgErr.Code == "40P01" {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
			continue
		}
		tb.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// tryExec runs one statement on a connection of its own.
func tryExec(base, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// exec runs one statement on a connection of its own.
func exec(tb testing.TB, base, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("pgtest: %s: %v", sql, err)
	}
}

func randomHex(tb testing.TB) string {
	tb.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatalf("pgtest: random: %v", err)
	}
	return hex.EncodeToString(b[:])
}
