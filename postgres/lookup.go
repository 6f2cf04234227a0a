package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

var _ flashauth.LineageLedgerReader = (*DB)(nil)

// lineageLedgerQuery reads the lineage record of $1 and the ledger entry
// ($2, $1) in one statement, hence from one snapshot and in one round trip:
// a one-row anchor left-joined to both tables by their primary keys, so the
// row is there whether or not either record is.
const lineageLedgerQuery = `SELECT
		l.token_hash, l.parent_hash, l.user_id, l.replaced_by, l.created_at, l.rotated_at, l.expires_at,
		g.kind, g.key, g.claim_id, g.state, g.lease_until, g.sealed, g.expires_at, g.created_at
	FROM (SELECT $1::bytea AS h) AS q
	LEFT JOIN lineage AS l ON l.token_hash = q.h
	LEFT JOIN ledger AS g ON g.kind = $2 AND g.key = q.h`

// GetLineageLedger implements flashauth.LineageLedgerReader: what
// GetLineage(hash) and GetLedger(kind, hash) return, in one read.
func (db *DB) GetLineageLedger(ctx context.Context, kind string, hash []byte) (flashauth.LineageLedger, error) {
	var (
		r                            flashauth.LineageLedger
		userID, gKind, claimID       pgtype.Text
		state                        pgtype.Int2
		lCreated, lRotated, lExpires pgtype.Timestamptz
		gLease, gExpires, gCreated   pgtype.Timestamptz
	)
	err := db.do(ctx, func(ctx context.Context) error {
		return db.pool.QueryRow(ctx, lineageLedgerQuery, hash, kind).Scan(
			&r.Lineage.TokenHash, &r.Lineage.ParentHash, &userID, &r.Lineage.ReplacedBy, &lCreated, &lRotated, &lExpires,
			&gKind, &r.Entry.Key, &claimID, &state, &gLease, &r.Entry.Sealed, &gExpires, &gCreated)
	})
	if err != nil {
		return flashauth.LineageLedger{}, err
	}
	// A missing row scans as NULLs: nil hashes and blobs, and its other
	// fields are left zero, as LineageLedgerReader promises.
	if r.HasLineage = r.Lineage.TokenHash != nil; r.HasLineage {
		r.Lineage.UserID = userID.String
		r.Lineage.CreatedAt, r.Lineage.RotatedAt, r.Lineage.ExpiresAt = tsVal(lCreated), tsVal(lRotated), tsVal(lExpires)
	}
	if r.HasEntry = gKind.Valid; r.HasEntry {
		r.Entry.Kind, r.Entry.ClaimID, r.Entry.State = gKind.String, claimID.String, flashauth.LedgerState(state.Int16)
		r.Entry.LeaseUntil, r.Entry.ExpiresAt, r.Entry.CreatedAt = tsVal(gLease), tsVal(gExpires), tsVal(gCreated)
	}
	return r, nil
}
