package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

const ledgerColumns = `kind, key, claim_id, state, lease_until, sealed, expires_at, created_at`

// ledgerDead is the condition, on the row "ledger" and the time in the
// placeholder now, under which an entry may be replaced or purged. A missing
// time counts as passed.
func ledgerDead(now string) string {
	return `((ledger.state = 2 AND (ledger.expires_at IS NULL OR ledger.expires_at <= ` + now + `))
		OR (ledger.state = 1 AND (ledger.lease_until IS NULL OR ledger.lease_until <= ` + now + `)))`
}

func scanLedger(row pgx.Row) (flashauth.LedgerEntry, error) {
	var (
		e                                flashauth.LedgerEntry
		state                            int16
		leaseUntil, expiresAt, createdAt pgtype.Timestamptz
	)
	if err := row.Scan(&e.Kind, &e.Key, &e.ClaimID, &state, &leaseUntil, &e.Sealed, &expiresAt, &createdAt); err != nil {
		return flashauth.LedgerEntry{}, err
	}
	e.State = flashauth.LedgerState(state)
	e.LeaseUntil, e.ExpiresAt, e.CreatedAt = tsVal(leaseUntil), tsVal(expiresAt), tsVal(createdAt)
	return e, nil
}

// ClaimLedger makes (kind, key) a pending entry held by claimID unless a live
// entry exists.
//
// The upsert replaces a dead row and returns it, or returns nothing when the
// row is live. In that case ON CONFLICT has still locked the row it judged,
// so the SELECT that follows in the same transaction reads exactly that
// version: nobody can complete, release or purge it in between.
//
// Both statements go in one pipelined batch, which PostgreSQL runs as one
// implicit transaction (everything up to the batch's Sync): one round trip
// instead of four (BEGIN, upsert, SELECT, COMMIT).
func (db *DB) ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, leaseUntil time.Time) (flashauth.LedgerEntry, bool, error) {
	var e flashauth.LedgerEntry
	err := db.do(ctx, func(ctx context.Context) error {
		batch := &pgx.Batch{}
		batch.Queue(`
			INSERT INTO ledger (`+ledgerColumns+`)
			VALUES ($1, $2, $3, 1, $5, NULL, NULL, $4)
			ON CONFLICT (kind, key) DO UPDATE SET
				claim_id = EXCLUDED.claim_id, state = 1, lease_until = EXCLUDED.lease_until,
				sealed = NULL, expires_at = NULL, created_at = EXCLUDED.created_at
			WHERE `+ledgerDead("$4")+`
			RETURNING `+ledgerColumns,
			kind, key, claimID, tsArg(now), tsArg(leaseUntil))
		batch.Queue(`SELECT `+ledgerColumns+` FROM ledger WHERE kind = $1 AND key = $2`, kind, key)
		res := db.pool.SendBatch(ctx, batch)
		claimed, cerr := scanLedger(res.QueryRow())
		current, serr := scanLedger(res.QueryRow())
		if err := res.Close(); err != nil {
			return err
		}
		switch {
		case cerr == nil:
			e = claimed
		case !errors.Is(cerr, pgx.ErrNoRows):
			return cerr
		case errors.Is(serr, pgx.ErrNoRows):
			return errors.New("ledger: locked row vanished")
		case serr != nil:
			return serr
		default:
			e = current
		}
		return nil
	})
	if err != nil {
		return flashauth.LedgerEntry{}, false, err
	}
	// A caller that already holds a live claim still holds it.
	return e, e.State == flashauth.LedgerPending && e.ClaimID == claimID, nil
}

// CompleteLedger turns claimID's pending entry into a done one and upserts
// lineage, all in one transaction.
//
// One round trip: the UPDATE and the lineage upserts go in one pipelined
// batch, which PostgreSQL runs as one implicit transaction (see
// ClaimLedger), instead of BEGIN, batch, COMMIT. Each upsert runs only if
// the UPDATE made the entry done under claimID (a later statement of the
// same transaction sees it): a lost claim writes no lineage.
func (db *DB) CompleteLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, expiresAt time.Time, lineage []flashauth.Lineage) error {
	// Upserting in a fixed order keeps two completions that share lineage
	// rows from deadlocking.
	lineage = slices.Clone(lineage)
	slices.SortStableFunc(lineage, func(a, b flashauth.Lineage) int {
		return bytes.Compare(a.TokenHash, b.TokenHash)
	})
	return db.do(ctx, func(ctx context.Context) error {
		batch := &pgx.Batch{}
		batch.Queue(`UPDATE ledger SET state = 2, sealed = $4, expires_at = $5
			WHERE kind = $1 AND key = $2 AND claim_id = $3 AND state = 1`,
			kind, key, claimID, sealed, tsArg(expiresAt))
		for _, l := range lineage {
			batch.Queue(upsertLineageIfCompleted, append(lineageArgs(l), kind, key, claimID)...)
		}
		res := db.pool.SendBatch(ctx, batch)
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return fmt.Errorf("complete ledger: %w", err)
		}
		for range lineage {
			if _, err := res.Exec(); err != nil {
				res.Close()
				return fmt.Errorf("upsert lineage: %w", err)
			}
		}
		if err := res.Close(); err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return flashauth.ErrClaimLost
		}
		return nil
	})
}

// upsertLineageIfCompleted is upsertLineage, run only when the ledger entry
// ($8, $9) is done under claim $10.
const upsertLineageIfCompleted = `
	INSERT INTO lineage (token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at)
	SELECT $1::bytea, $2::bytea, $3::text, $4::bytea, $5::timestamptz, $6::timestamptz, $7::timestamptz
	WHERE EXISTS (SELECT 1 FROM ledger WHERE kind = $8 AND key = $9 AND claim_id = $10 AND state = 2)
	ON CONFLICT (token_hash) DO UPDATE SET
		parent_hash = EXCLUDED.parent_hash, user_id = EXCLUDED.user_id,
		replaced_by = EXCLUDED.replaced_by, created_at = EXCLUDED.created_at,
		rotated_at = EXCLUDED.rotated_at, expires_at = EXCLUDED.expires_at`

// ReleaseLedger deletes claimID's pending entry.
func (db *DB) ReleaseLedger(ctx context.Context, kind string, key []byte, claimID string) error {
	return db.do(ctx, func(ctx context.Context) error {
		_, err := db.pool.Exec(ctx,
			`DELETE FROM ledger WHERE kind = $1 AND key = $2 AND claim_id = $3 AND state = 1`,
			kind, key, claimID)
		return err
	})
}

// GetLedger returns the entry or ErrNotFound.
func (db *DB) GetLedger(ctx context.Context, kind string, key []byte) (flashauth.LedgerEntry, error) {
	var e flashauth.LedgerEntry
	err := db.do(ctx, func(ctx context.Context) error {
		var err error
		e, err = scanLedger(db.pool.QueryRow(ctx,
			`SELECT `+ledgerColumns+` FROM ledger WHERE kind = $1 AND key = $2`, kind, key))
		return notFound(err)
	})
	return e, err
}

// PurgeLedger deletes dead entries.
func (db *DB) PurgeLedger(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.do(ctx, func(ctx context.Context) error {
		tag, err := db.pool.Exec(ctx, `DELETE FROM ledger WHERE `+ledgerDead("$1"), tsArg(now))
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// notFound maps pgx's "no rows" to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return flashauth.ErrNotFound
	}
	return err
}
