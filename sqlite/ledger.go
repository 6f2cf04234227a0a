package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/flashbacktech/flashauth"
)

const ledgerColumns = `kind, key, claim_id, state, lease_until, sealed, expires_at, created_at`

// The ledger's statements, prepared once (stmts.go).
const (
	qLedgerSelect = `SELECT ` + ledgerColumns + ` FROM ledger WHERE kind = ? AND key = ?`
	// qLedgerClaim takes the entry when it is absent or dead, in one
	// statement. An entry is live (blocks new claims) while it is done and
	// its expires_at is after now, or pending and its lease_until is after
	// now; a missing time counts as passed. The upsert's WHERE is that
	// negated, so a live entry is left alone and nothing changes.
	qLedgerClaim = `INSERT INTO ledger (` + ledgerColumns + `)
			VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)` + ledgerReplaceDead
	// qLedgerCommit is qLedgerClaim for an entry done at once (CommitLedger).
	qLedgerCommit = `INSERT INTO ledger (` + ledgerColumns + `)
			VALUES (?, ?, ?, ?, NULL, ?, ?, ?)` + ledgerReplaceDead
	// ledgerReplaceDead ends an insert of a whole entry: a dead entry is
	// replaced by it, a live one left alone. Its arguments: the done state,
	// now, the pending state, now.
	ledgerReplaceDead = `
			ON CONFLICT (kind, key) DO UPDATE SET
				claim_id = excluded.claim_id, state = excluded.state,
				lease_until = excluded.lease_until, sealed = excluded.sealed,
				expires_at = excluded.expires_at, created_at = excluded.created_at
			WHERE NOT (
				(ledger.state = ? AND ledger.expires_at IS NOT NULL AND ledger.expires_at > ?) OR
				(ledger.state = ? AND ledger.lease_until IS NOT NULL AND ledger.lease_until > ?))`
	qLedgerComplete = `UPDATE ledger SET state = ?, sealed = ?, expires_at = ?
			WHERE kind = ? AND key = ? AND claim_id = ? AND state = ?`
	qLedgerRelease = `DELETE FROM ledger WHERE kind = ? AND key = ? AND claim_id = ? AND state = ?`
)

type rowScanner interface {
	Scan(dest ...any) error
}

func scanLedger(r rowScanner) (flashauth.LedgerEntry, error) {
	var (
		e                         flashauth.LedgerEntry
		lease, expires, createdAt sql.NullInt64
	)
	if err := r.Scan(&e.Kind, &e.Key, &e.ClaimID, &e.State, &lease, &e.Sealed, &expires, &createdAt); err != nil {
		return flashauth.LedgerEntry{}, err
	}
	e.LeaseUntil, e.ExpiresAt, e.CreatedAt = fromMS(lease), fromMS(expires), fromMS(createdAt)
	return e, nil
}

// ClaimLedger implements flashauth.LedgerStore. The write and, when it
// changed nothing, the read of the live entry share one BEGIN IMMEDIATE
// transaction, so no other writer, in this process or another, can slip in
// between "is there a live entry?" and "take it".
func (db *DB) ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, leaseUntil time.Time) (flashauth.LedgerEntry, bool, error) {
	var entry flashauth.LedgerEntry
	err := db.writeTx(ctx, "claim ledger", func(ctx context.Context, tx *wtx) error {
		// Now compares in whole milliseconds: for a stored millisecond m,
		// m > floor(now) exactly when the time m is after now.
		nowMS := now.UnixMilli()
		res, err := tx.exec(ctx, qLedgerClaim, kind, key, claimID, flashauth.LedgerPending, ms(leaseUntil), ms(now),
			flashauth.LedgerDone, nowMS, flashauth.LedgerPending, nowMS)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			// A live entry blocked the claim: report it.
			entry, err = scanLedger(tx.queryRow(ctx, qLedgerSelect, kind, key))
			return err
		}
		// Absent or dead: a fresh pending entry replaced whatever was there.
		entry = flashauth.LedgerEntry{
			Kind: kind, Key: bytes.Clone(key), ClaimID: claimID, State: flashauth.LedgerPending,
			LeaseUntil: leaseUntil, CreatedAt: now,
		}
		return nil
	})
	if err != nil {
		return flashauth.LedgerEntry{}, false, err
	}
	// Same precision as a later GetLedger returns.
	entry.LeaseUntil, entry.CreatedAt = roundMS(entry.LeaseUntil), roundMS(entry.CreatedAt)
	held := entry.State == flashauth.LedgerPending && entry.ClaimID == claimID
	return entry, held, nil
}

// CommitLedger implements flashauth.LedgerStore: the entry is written
// first, by the claim's upsert, so that a live entry stops the call before
// anything else is; the rotation's conflict then rolls the entry back with
// it (the body fails, see batch.go).
func (db *DB) CommitLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, now, expiresAt time.Time, rotation *flashauth.SessionRotation) (flashauth.LedgerEntry, bool, error) {
	var (
		entry     flashauth.LedgerEntry
		committed bool
	)
	err := db.writeTx(ctx, "commit ledger", func(ctx context.Context, tx *wtx) error {
		nowMS := now.UnixMilli()
		res, err := tx.exec(ctx, qLedgerCommit, kind, key, claimID, flashauth.LedgerDone, sealed, ms(expiresAt), ms(now),
			flashauth.LedgerDone, nowMS, flashauth.LedgerPending, nowMS)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if committed = n > 0; !committed {
			entry, err = scanLedger(tx.queryRow(ctx, qLedgerSelect, kind, key))
			return err
		}
		if rotation != nil {
			err := rotateSession(ctx, tx, rotation.SessionID, rotation.OldHash, rotation.NewHash, rotation.Now, rotation.ExpiresAt)
			if errors.Is(err, sql.ErrNoRows) {
				return flashauth.ErrConflict // an unknown session
			}
			if err != nil {
				return err
			}
		}
		entry = flashauth.LedgerEntry{
			Kind: kind, Key: bytes.Clone(key), ClaimID: claimID, State: flashauth.LedgerDone,
			Sealed: bytes.Clone(sealed), ExpiresAt: expiresAt, CreatedAt: now,
		}
		return nil
	})
	if err != nil {
		return flashauth.LedgerEntry{}, false, err
	}
	entry.ExpiresAt, entry.CreatedAt = roundMS(entry.ExpiresAt), roundMS(entry.CreatedAt)
	return entry, committed, nil
}

// roundMS returns t as it reads back from the store.
func roundMS(t time.Time) time.Time {
	return fromMS(sql.NullInt64{Int64: t.UnixMilli(), Valid: !t.IsZero()})
}

// CompleteLedger implements flashauth.LedgerStore.
func (db *DB) CompleteLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, expiresAt time.Time, lineage []flashauth.Lineage) error {
	return db.writeTx(ctx, "complete ledger", func(ctx context.Context, tx *wtx) error {
		res, err := tx.exec(ctx, qLedgerComplete, flashauth.LedgerDone, sealed, ms(expiresAt), kind, key, claimID, flashauth.LedgerPending)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return flashauth.ErrClaimLost
		}
		for _, l := range lineage {
			if err := putLineage(ctx, tx, l); err != nil {
				return fmt.Errorf("lineage: %w", err)
			}
		}
		return nil
	})
}

// ReleaseLedger implements flashauth.LedgerStore.
func (db *DB) ReleaseLedger(ctx context.Context, kind string, key []byte, claimID string) error {
	return db.writeTx(ctx, "release ledger", func(ctx context.Context, tx *wtx) error {
		_, err := tx.exec(ctx, qLedgerRelease, kind, key, claimID, flashauth.LedgerPending)
		return err
	})
}

// GetLedger implements flashauth.LedgerStore.
func (db *DB) GetLedger(ctx context.Context, kind string, key []byte) (flashauth.LedgerEntry, error) {
	e, err := scanLedger(db.readRow(ctx, qLedgerSelect, kind, key))
	if err != nil {
		return flashauth.LedgerEntry{}, db.fail("get ledger", err)
	}
	return e, nil
}

// PurgeLedger implements flashauth.LedgerStore. A missing time counts as
// passed, as in qLedgerClaim: such a row could never be replayed or held.
func (db *DB) PurgeLedger(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.writeTx(ctx, "purge ledger", func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM ledger
			WHERE (state = ? AND (expires_at IS NULL OR expires_at <= ?))
			   OR (state = ? AND (lease_until IS NULL OR lease_until <= ?))`,
			flashauth.LedgerDone, now.UnixMilli(), flashauth.LedgerPending, now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
