package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/flashbacktech/flashauth"
)

// unavailable wraps err as the domain's "database cannot be reached" error.
func unavailable(err error) error {
	return &flashauth.Error{
		Code:       flashauth.CodeStoreUnavailable,
		Message:    "The database is unavailable.",
		RetryAfter: time.Second,
		Err:        err,
	}
}

// fail maps an error of operation op to the store's error contract. Driver
// errors are classified by SQLite result code, never by message text.
// Domain sentinels (ErrNotFound, ErrConflict, ErrClaimLost) pass through.
func (db *DB) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var fe *flashauth.Error
	if errors.As(err, &fe) {
		return err
	}
	err = fmt.Errorf("sqlite: %s: %w", op, err)
	switch {
	case db.closed.Load(), errors.Is(err, sql.ErrConnDone):
		// database/sql's "database is closed" error is unexported, hence
		// the flag.
		return unavailable(err)
	case errors.Is(err, context.DeadlineExceeded):
		return unavailable(err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %w", flashauth.ErrNotFound, err)
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		// The file itself is gone or unreadable (Ping, Open).
		return unavailable(err)
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", flashauth.ErrConflict, err)
	}
	// Extended result codes carry the primary code in the low byte.
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB:
		return unavailable(err)
	}
	return err
}
