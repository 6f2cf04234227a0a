package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Migrations are numbered files, migrations/NNNN_name.sql, applied in order.
// A released file is never edited: schema changes are new files.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations parses the embedded files once; a malformed name is a
// programming error caught by the package's tests.
var migrations = mustLoadMigrations(migrationFS)

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlite: migration %q: name must be NNNN_name.sql", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("sqlite: migration %q: versions must be 1, 2, 3... without gaps", ms[i].name)
		}
	}
	return ms, nil
}

// LatestVersion returns the schema version this binary migrates to.
func LatestVersion() int { return len(migrations) }

// migrate applies the pending migrations in one BEGIN IMMEDIATE transaction:
// several processes opening the same new file at once apply each migration
// once, and a failure leaves the schema as it was.
func (db *DB) migrate(ctx context.Context, now time.Time) error {
	return db.writeTx(ctx, "migrate", func(ctx context.Context, tx *wtx) error {
		return applyMigrations(ctx, tx.Tx, migrations, now)
	})
}

// applyMigrations applies those of ms that tx's database lacks.
func applyMigrations(ctx context.Context, tx *sql.Tx, ms []migration, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	for _, m := range ms[min(current, len(ms)):] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, now.UnixMilli()); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

// MigrationVersion returns the highest schema version applied to the
// database, for readiness checks (compare with LatestVersion).
func (db *DB) MigrationVersion(ctx context.Context) (int, error) {
	var v int
	err := db.read.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, db.fail("migration version", err)
	}
	return v, nil
}
