// Package sqlitetest gives other packages' tests a real SQLite store in one
// line.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/flashbacktech/flashauth/sqlite"
)

// Open opens a fresh database in a temporary directory of tb and closes it
// when the test ends.
func Open(tb testing.TB, opts ...sqlite.Option) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "flashauth.db"), opts...)
	if err != nil {
		tb.Fatalf("sqlitetest: open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("sqlitetest: close: %v", err)
		}
	})
	return db
}
