// Package sqlite implements flashauth.Store on a SQLite database file, with
// the pure Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode with one writer and several readers:
// every write goes through a pool of exactly one connection whose
// transactions are BEGIN IMMEDIATE, so writers in this process queue in Go
// instead of failing with SQLITE_BUSY, and writers in other processes wait on
// the file lock (busy_timeout). Reads use a separate query_only pool and
// never block the writer. Concurrent writes are group-committed: one writer
// goroutine runs all that are queued in one transaction (see batch.go), and
// the hot statements are prepared once per connection (see stmts.go).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/flashbacktech/flashauth"
)

var _ flashauth.Store = (*DB)(nil)

// DB is a flashauth.Store backed by one SQLite file.
type DB struct {
	path   string
	write  *sql.DB // exactly one connection, BEGIN IMMEDIATE
	read   *sql.DB // query_only connections
	file   os.FileInfo
	closed atomic.Bool

	w        *writer
	ckpt     *checkpointer        // nil when read-only
	prepared map[string]*sql.Stmt // hot writes, on the writer connection
	reads    sync.Map             // query -> *sql.Stmt on the read pool
}

type options struct {
	busyTimeout time.Duration
	readConns   int
	fullSync    bool
	readOnly    bool
	clock       flashauth.Clock
}

// Option configures Open.
type Option func(*options)

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process before failing with SQLITE_BUSY. Default 5s.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// WithReadConns sets the size of the read pool. Default max(4, GOMAXPROCS).
func WithReadConns(n int) Option {
	return func(o *options) { o.readConns = n }
}

// WithFullSync makes every commit fsync the WAL (synchronous=FULL) so that a
// committed transaction also survives power loss or an OS crash, at the cost
// of one fsync per write. The default, synchronous=NORMAL, already keeps every
// commit across a crash or kill -9 of the process: the commit is in the WAL
// file (in the OS page cache) before the write returns; only the last
// commits before a power cut can be lost.
func WithFullSync() Option {
	return func(o *options) { o.fullSync = true }
}

// ReadOnly opens the database read-only (SQLite mode=ro): no migrations are
// applied (Open fails unless the schema is current) and every write fails
// with CodeStoreUnavailable. For inspection tools and replicas of a copy.
func ReadOnly() Option {
	return func(o *options) { o.readOnly = true }
}

// WithClock sets the clock that stamps schema_migrations.applied_at.
// Default flashauth.SystemClock.
func WithClock(c flashauth.Clock) Option {
	return func(o *options) { o.clock = c }
}

// Open opens (creating if needed) the database at path, sets it up and
// applies the embedded migrations. Errors reaching the file are *flashauth.Error
// with CodeStoreUnavailable.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	o := options{
		busyTimeout: 5 * time.Second,
		readConns:   max(4, runtime.GOMAXPROCS(0)),
		clock:       flashauth.SystemClock{},
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.readConns = max(o.readConns, 1)
	o.busyTimeout = max(o.busyTimeout, 0)
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: database path: %w", err)
	}
	db := &DB{path: abs}
	if db.write, err = sql.Open("sqlite", dsn(abs, o, false)); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// One writer: SQLite allows one write transaction at a time anyway, and a
	// queue in database/sql beats busy-waiting on the file lock.
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	if db.read, err = sql.Open("sqlite", dsn(abs, o, true)); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.read.SetMaxOpenConns(o.readConns)
	db.read.SetMaxIdleConns(o.readConns)
	db.startWriter()

	if err := db.setup(ctx, o); err != nil {
		db.closeWriter()
		db.closeStmts()
		db.write.Close()
		db.read.Close()
		return nil, err
	}
	if !o.readOnly {
		if err := db.startCheckpointer(o); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
	return db, nil
}

func (db *DB) setup(ctx context.Context, o options) error {
	// The writer connection is opened first: it creates the file and turns
	// on WAL before any reader looks at it.
	if err := db.pingNew(ctx, o.busyTimeout); err != nil {
		return db.fail("open", err)
	}
	if o.readOnly {
		v, err := db.MigrationVersion(ctx)
		if err != nil {
			return err
		}
		if v < LatestVersion() {
			return fmt.Errorf("sqlite: read-only database at schema version %d, need %d", v, LatestVersion())
		}
	} else if err := db.migrate(ctx, o.clock.Now()); err != nil {
		return err
	}
	if err := db.prepareWrites(ctx); err != nil {
		return db.fail("prepare", err)
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		return db.fail("open", err)
	}
	db.file = fi
	return nil
}

// dsn builds the connection string. Every connection of a pool opens with it,
// so the pragmas hold on each one, including connections database/sql opens
// later to replace closed ones.
func dsn(path string, o options, reader bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(o.busyTimeout.Milliseconds(), 10))
	q.Set("_foreign_keys", "on")
	if o.fullSync {
		q.Set("_synchronous", "FULL")
	} else {
		// NORMAL in WAL mode: durable across process crashes, not power
		// loss; see WithFullSync.
		q.Set("_synchronous", "NORMAL")
	}
	if o.readOnly {
		q.Set("mode", "ro")
	} else {
		// A read-only connection cannot switch the file to WAL; a writable
		// one makes it WAL once and for good.
		q.Set("_journal_mode", "WAL")
	}
	if reader {
		q.Set("_query_only", "on")
	} else {
		q.Set("_txlock", "immediate")
		// Checkpoint the WAL every 8,000 pages (32 MiB) rather than
		// SQLite's 1,000: a checkpoint copies each page changed since the
		// last one once, and under load the same ledger and lineage pages
		// change again and again, so rarer checkpoints copy less per write.
		// Only the writer connection commits, so only it checkpoints.
		q.Add("_pragma", "wal_autocheckpoint(8000)")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close stops taking writes, lets every write already queued commit (they
// are answered as usual), and closes both pools. The last connection to
// close checkpoints the WAL into the database file.
func (db *DB) Close() error {
	if db.closed.Swap(true) {
		return nil
	}
	db.closeWriter()
	ckptErr := db.stopCheckpointer()
	db.closeStmts()
	return errors.Join(ckptErr, db.read.Close(), db.write.Close())
}

// Ping reports whether the store is ready: it is open, the file at Path is
// still the one opened (not deleted or replaced, which would leave this
// process writing to an unlinked file), a read runs, and a write commits (a
// full disk, a read-only file system or a write lock held elsewhere fail it).
//
// It never opens a descriptor of its own on the database file: closing any
// descriptor of a file drops every POSIX lock the process holds on it, and
// without its lock another SQLite process may checkpoint and delete the WAL
// under this one. os.Stat opens nothing.
func (db *DB) Ping(ctx context.Context) error {
	if db.closed.Load() {
		return unavailable(errors.New("sqlite: database is closed"))
	}
	fi, err := os.Stat(db.path)
	if err != nil {
		return db.fail("ping", err)
	}
	if !os.SameFile(fi, db.file) {
		return unavailable(fmt.Errorf("sqlite: ping: %s was replaced", db.path))
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return pingFailed(db.fail("ping", err))
	}
	err = db.writeTx(ctx, "ping", func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO readiness (id, checks) VALUES (1, 1)
			ON CONFLICT (id) DO UPDATE SET checks = readiness.checks + 1`)
		return err
	})
	return pingFailed(err)
}

// pingFailed makes any failure of Ping a CodeStoreUnavailable: whatever
// stopped the check (SQLITE_FULL, SQLITE_READONLY, SQLITE_BUSY, an I/O
// error), the store cannot serve.
func pingFailed(err error) error {
	if err == nil {
		return nil
	}
	var fe *flashauth.Error
	if errors.As(err, &fe) && fe.Code == flashauth.CodeStoreUnavailable {
		return err
	}
	return unavailable(err)
}

// pingNew opens the first writer connection. Switching a new file to WAL
// takes an exclusive lock that SQLite does not wait for with its busy
// handler, so when several processes start on a new file at once, all but
// one can see SQLITE_BUSY here: retry those for up to the busy timeout.
func (db *DB) pingNew(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		err := db.write.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}
