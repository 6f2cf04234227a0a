package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/flashbacktech/flashauth"
)

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation = "23505"
	codeAdminShutdown   = "57P01"
	codeCrashShutdown   = "57P02"
	codeCannotConnect   = "57P03"
	codeTooManyConns    = "53300"
	classConnection     = "08"
	// Transient server-side refusals: a statement or lock timeout an
	// operator set in the URL, a serialization failure, a deadlock victim.
	codeQueryCanceled    = "57014"
	codeLockNotAvailable = "55P03"
	codeSerialization    = "40001"
	codeDeadlockDetected = "40P01"
	// A write in a read-only transaction: default_transaction_read_only,
	// or a standby after a failover. Writes wait for a writable primary.
	codeReadOnlyTransaction = "25006"
)

// errUnavailable is what callers see when the database cannot be reached.
func errUnavailable(err error) error {
	return &flashauth.Error{
		Code:       flashauth.CodeStoreUnavailable,
		Message:    "The database is unavailable.",
		RetryAfter: time.Second,
		Err:        err,
	}
}

// mapErr turns a driver error into the store's vocabulary. ctx is the
// caller's context, before the store's own timeout was added: its end is the
// caller's business, while a store timeout means the database did not answer.
// Domain errors pass through untouched.
func (db *DB) mapErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var domain *flashauth.Error
	if errors.Is(err, flashauth.ErrNotFound) || errors.Is(err, flashauth.ErrConflict) ||
		errors.Is(err, flashauth.ErrClaimLost) || errors.As(err, &domain) {
		return err
	}
	if errors.Is(err, puddle.ErrClosedPool) {
		return errUnavailable(err)
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		if disconnected(pgErr.Code) {
			// The server is shutting down or restarting: every pooled
			// connection is likely dead too, so drop them all rather than
			// fail one call per stale connection.
			db.pool.Reset()
			return errUnavailable(err)
		}
		if pgErr.Code == codeTooManyConns || pgErr.Code == codeReadOnlyTransaction || strings.HasPrefix(pgErr.Code, classConnection) {
			return errUnavailable(err)
		}
		switch pgErr.Code {
		case codeQueryCanceled, codeLockNotAvailable, codeSerialization, codeDeadlockDetected:
			if ctx.Err() == nil {
				return errUnavailable(err) // the database refused for now; a retry may pass
			}
		}
		return fmt.Errorf("postgres: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errUnavailable(err)
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return errUnavailable(err)
	}
	if brokenConnection(err) {
		// The same as a server shutdown: other pooled connections are
		// probably broken as well.
		db.pool.Reset()
		return errUnavailable(err)
	}
	return fmt.Errorf("postgres: %w", err)
}

func disconnected(code string) bool {
	return code == codeAdminShutdown || code == codeCrashShutdown || code == codeCannotConnect
}

// brokenConnection reports whether err means an established connection
// broke under the call.
func brokenConnection(err error) bool {
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == codeUniqueViolation
}
