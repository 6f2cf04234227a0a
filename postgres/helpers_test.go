package postgres_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// base is the tests' "now"; the store never reads the wall clock.
var base = time.UnixMilli(1764120000000).UTC()

// open opens a store on url and closes it when the test ends.
func open(t *testing.T, url string, opts ...postgres.Option) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), url, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// withParam returns rawURL with one more query parameter.
func withParam(t testing.TB, rawURL, key, value string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// schemaOf returns the schema a pgtest URL points at.
func schemaOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	s := u.Query().Get("search_path")
	if s == "" {
		t.Fatal("URL has no search_path")
	}
	return s
}

// admin runs sql on a connection of its own to rawURL and scans one row
// into dest (none for statements without a result).
func admin(t *testing.T, rawURL, sql string, args []any, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatalf("admin connect: %v", err)
	}
	defer conn.Close(ctx)
	if len(dest) == 0 {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("admin %q: %v", sql, err)
		}
		return
	}
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		t.Fatalf("admin %q: %v", sql, err)
	}
}

// count returns the number of rows of table in the schema of rawURL.
func count(t *testing.T, rawURL, table string) int {
	t.Helper()
	var n int
	admin(t, rawURL, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize(), nil, &n)
	return n
}

// wantUnavailable fails the test unless err is STORE_UNAVAILABLE.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, flashauth.CodeStoreUnavailable)
	}
	if code := flashauth.ErrorCode(err); code != flashauth.CodeStoreUnavailable {
		t.Fatalf("%s: code %s (%v), want %s", what, code, err, flashauth.CodeStoreUnavailable)
	}
	if ra := flashauth.RetryAfter(err); ra <= 0 {
		t.Errorf("%s: RetryAfter %v, want > 0", what, ra)
	}
}

// testURL returns a URL on a fresh schema (skipping without a server).
func testURL(t *testing.T) string {
	t.Helper()
	return pgtest.URL(t)
}
