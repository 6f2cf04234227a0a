// Package postgres is the PostgreSQL implementation of flashauth.Store, on
// pgx and its connection pool. Several replicas can share one database: every
// method is atomic on its own, migrations are applied once under an advisory
// lock, and a database that cannot be reached yields a STORE_UNAVAILABLE error
// quickly instead of a hanging request.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashbacktech/flashauth"
)

// Defaults of the options.
const (
	DefaultConnectTimeout   = 2 * time.Second
	DefaultOperationTimeout = 5 * time.Second
	// DefaultMigrateTimeout bounds applying migrations in Open, waiting
	// for another replica that holds the migration lock included.
	DefaultMigrateTimeout = 60 * time.Second
)

// DB is a flashauth.Store backed by PostgreSQL. It is safe for concurrent use.
type DB struct {
	pool      *pgxpool.Pool
	opTimeout time.Duration
	// The writers of the ledger's hot writes (group commit, batch.go).
	claims       *batcher[claimReq]
	completions  *batcher[completeReq]
	ledgerReads  *batcher[getLedgerReq]
	lineageReads *batcher[getLineageReq]
	// lineageLedgerReads are GetLineageLedger's (a refresh's one read).
	lineageLedgerReads *batcher[getLineageLedgerReq]
	// The audit rows waiting for a ledger write to carry them (riders.go).
	riders *auditRiders
}

var _ flashauth.Store = (*DB)(nil)

// Option configures Open.
type Option func(*options)

type options struct {
	maxConns       int32
	connectTimeout time.Duration
	opTimeout      time.Duration
}

// WithMaxConns bounds the pool (pgx's default: the larger of 4 and the
// number of CPUs).
func WithMaxConns(n int32) Option { return func(o *options) { o.maxConns = n } }

// WithConnectTimeout bounds establishing one connection. It overrides the
// URL's connect_timeout; without either, DefaultConnectTimeout applies.
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) { o.connectTimeout = d }
}

// WithOperationTimeout bounds every store call, waiting for a pooled
// connection included. A call that runs out of it fails with
// STORE_UNAVAILABLE. Default DefaultOperationTimeout.
func WithOperationTimeout(d time.Duration) Option {
	return func(o *options) { o.opTimeout = d }
}

// Open connects to the database at url ("postgres://user@host:5432/db?...")
// and applies the embedded migrations that are missing. Parameters of the
// URL the server understands, such as search_path or application_name, are
// sent at connection start-up, so a URL can pin the store to a schema.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	o := options{opTimeout: DefaultOperationTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the URL and so a password: keep it out.
		return nil, errors.New("postgres: invalid database URL")
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	switch {
	case o.connectTimeout > 0:
		cfg.ConnConfig.ConnectTimeout = o.connectTimeout
	case cfg.ConnConfig.ConnectTimeout == 0:
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "flashauth"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool, opTimeout: o.opTimeout}
	mctx, cancel := context.WithTimeout(ctx, DefaultMigrateTimeout)
	defer cancel()
	if err := db.mapErr(ctx, migrate(mctx, pool)); err != nil {
		pool.Close()
		return nil, err
	}
	db.riders = newAuditRiders()
	db.claims = newBatcher(db, db.riders, db.claimOne, db.claimMany)
	db.completions = newBatcher(db, db.riders, db.completeOne, db.completeMany)
	db.ledgerReads = newReadBatcher(db, db.getLedgerOne, db.getLedgerMany)
	db.lineageReads = newReadBatcher(db, db.getLineageOne, db.getLineageMany)
	db.lineageLedgerReads = newReadBatcher(db, db.getLineageLedgerOne, db.getLineageLedgerMany)
	return db, nil
}

// batchCtx bounds one batch of the writers (batch.go): the store's
// operation timeout, from no caller's context.
func (db *DB) batchCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), db.opTimeout)
}

// Close stops taking ledger writes, lets every one already queued commit,
// has the audit rows waiting for a carrier written alone, then closes every
// connection of the pool, waiting for those in use.
func (db *DB) Close() error {
	db.riders.close()
	db.claims.close()
	db.completions.close()
	db.ledgerReads.close()
	db.lineageReads.close()
	db.lineageLedgerReads.close()
	db.pool.Close()
	return nil
}

// Ping reports whether the store is ready: the database answers and commits
// a write. A server that only reads (default_transaction_read_only, a hot
// standby, a full disk) or does not answer within the operation timeout fails
// it with CodeStoreUnavailable.
func (db *DB) Ping(ctx context.Context) error {
	err := db.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO readiness (id, checks) VALUES (1, 1)
			ON CONFLICT (id) DO UPDATE SET checks = readiness.checks + 1`)
		return err
	})
	if err == nil || flashauth.ErrorCode(err) == flashauth.CodeStoreUnavailable || ctx.Err() != nil {
		return err
	}
	// Whatever refused the write, the store cannot serve.
	return errUnavailable(err)
}

// MigrationVersion returns the highest migration applied to the database,
// which may be newer than this binary's when another version migrated it.
func (db *DB) MigrationVersion(ctx context.Context) (int, error) {
	var v int
	err := db.do(ctx, func(ctx context.Context) error {
		return db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	})
	return v, err
}

// do runs fn under the store's operation timeout and maps its error.
func (db *DB) do(ctx context.Context, fn func(ctx context.Context) error) error {
	opCtx, cancel := context.WithTimeout(ctx, db.opTimeout)
	defer cancel()
	return db.mapErr(ctx, fn(opCtx))
}

// tx runs fn in a transaction under the operation timeout, committing when
// fn returns nil and rolling back otherwise.
func (db *DB) tx(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error {
	return db.do(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return fn(ctx, tx) })
	})
}
