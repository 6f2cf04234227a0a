package sqlite

import (
	"context"
	"database/sql"

	"github.com/flashbacktech/flashauth"
)

var _ flashauth.LineageLedgerReader = (*DB)(nil)

// qLineageLedger reads the lineage record of ?1 and the ledger entry
// (?2, ?1) of a kind kept in the ledger_entries table in one statement, hence from
// one snapshot: a one-row anchor left-joined to both tables by their
// primary keys, so the row is there whether or not either record is.
const qLineageLedger = `SELECT
		l.token_hash, l.parent_hash, l.user_id, l.replaced_by, l.created_at, l.rotated_at, l.expires_at,
		g.kind, g.key, g.claim_id, g.state, g.lease_until, g.sealed, g.expires_at, g.created_at
	FROM (SELECT ?1 AS h) AS q
	LEFT JOIN lineage AS l ON l.token_hash = q.h AND l.has_lineage = 1
	LEFT JOIN ledger_entries AS g ON g.kind = ?2 AND g.key = q.h`

// qTokenLineageLedger is qLineageLedger for LedgerGitHubRefresh, whose
// entries live in the lineage rows (migration 0004): the same columns from
// one row, each half NULL when the row does not hold it.
const qTokenLineageLedger = `SELECT
		iif(l.has_lineage = 1, l.token_hash, NULL), l.parent_hash, l.user_id, l.replaced_by,
		l.created_at, l.rotated_at, l.expires_at,
		iif(l.state IS NULL, NULL, ?2), iif(l.state IS NULL, NULL, l.token_hash),
		l.claim_id, l.state, l.lease_until, l.sealed, l.ledger_expires_at, l.ledger_created_at
	FROM (SELECT ?1 AS h) AS q
	LEFT JOIN lineage AS l ON l.token_hash = q.h`

// GetLineageLedger implements flashauth.LineageLedgerReader: what
// GetLineage(hash) and GetLedger(kind, hash) return, in one read.
func (db *DB) GetLineageLedger(ctx context.Context, kind string, hash []byte) (flashauth.LineageLedger, error) {
	var (
		r                            flashauth.LineageLedger
		userID, gKind, claimID       sql.NullString
		state                        sql.NullInt64
		lCreated, lRotated, lExpires sql.NullInt64
		gLease, gExpires, gCreated   sql.NullInt64
	)
	q := qLineageLedger
	if ledgerFor(kind) == &tokenLedger {
		q = qTokenLineageLedger
	}
	err := db.readRow(ctx, q, hash, kind).Scan(
		&r.Lineage.TokenHash, &r.Lineage.ParentHash, &userID, &r.Lineage.ReplacedBy, &lCreated, &lRotated, &lExpires,
		&gKind, &r.Entry.Key, &claimID, &state, &gLease, &r.Entry.Sealed, &gExpires, &gCreated)
	if err != nil {
		return flashauth.LineageLedger{}, db.fail("get lineage and ledger", err)
	}
	// A missing row scans as NULLs: nil hashes and blobs, and its other
	// fields are left zero, as LineageLedgerReader promises.
	if r.HasLineage = r.Lineage.TokenHash != nil; r.HasLineage {
		r.Lineage.UserID = userID.String
		r.Lineage.CreatedAt, r.Lineage.RotatedAt, r.Lineage.ExpiresAt = fromMS(lCreated), fromMS(lRotated), fromMS(lExpires)
	}
	if r.HasEntry = gKind.Valid; r.HasEntry {
		r.Entry.Kind, r.Entry.ClaimID, r.Entry.State = gKind.String, claimID.String, flashauth.LedgerState(state.Int64)
		r.Entry.LeaseUntil, r.Entry.ExpiresAt, r.Entry.CreatedAt = fromMS(gLease), fromMS(gExpires), fromMS(gCreated)
	}
	return r, nil
}
