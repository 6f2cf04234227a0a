package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

var _ flashauth.LineageLedgerReader = (*DB)(nil)

// lineageLedgerColumns are the lineage record l and the ledger entry g of
// one token, as scanLineageLedger reads them.
const lineageLedgerColumns = `
		l.token_hash, l.parent_hash, l.user_id, l.replaced_by, l.created_at, l.rotated_at, l.expires_at,
		g.kind, g.key, g.claim_id, g.state, g.lease_until, g.sealed, g.expires_at, g.created_at`

// lineageLedgerQuery reads the lineage record of $1 and the ledger entry
// ($2, $1) in one statement, hence from one snapshot and in one round trip:
// a one-row anchor left-joined to both tables by their primary keys, so the
// row is there whether or not either record is.
const lineageLedgerQuery = `SELECT ` + lineageLedgerColumns + `
	FROM (SELECT $1::bytea AS h) AS q
	LEFT JOIN lineage AS l ON l.token_hash = q.h
	LEFT JOIN ledger AS g ON g.kind = $2 AND g.key = q.h`

// lineageLedgerManyQuery is lineageLedgerQuery for arrays of hashes and
// kinds: one row per element, in their order. Each record is one lookup of
// its primary key (see selectManySQL).
const lineageLedgerManyQuery = `SELECT ` + lineageLedgerColumns + `
	FROM unnest($1::bytea[], $2::text[]) WITH ORDINALITY AS q(h, kind, ord)
	LEFT JOIN LATERAL (SELECT * FROM lineage WHERE token_hash = q.h OFFSET 0) AS l ON true
	LEFT JOIN LATERAL (SELECT * FROM ledger WHERE kind = q.kind AND key = q.h OFFSET 0) AS g ON true
	ORDER BY q.ord`

// GetLineageLedger implements flashauth.LineageLedgerReader: what
// GetLineage(hash) and GetLedger(kind, hash) return, in one read.
// Concurrent calls share one statement, as GetLedger's do (batch.go).
func (db *DB) GetLineageLedger(ctx context.Context, kind string, hash []byte) (flashauth.LineageLedger, error) {
	g := &getLineageLedgerReq{kind: kind, hash: hash}
	if err := db.do(ctx, func(ctx context.Context) error { return db.lineageLedgerReads.do(ctx, g) }); err != nil {
		return flashauth.LineageLedger{}, err
	}
	return g.got, nil
}

// getLineageLedgerReq is one GetLineageLedger call; got is its result.
type getLineageLedgerReq struct {
	kind string
	hash []byte
	got  flashauth.LineageLedger
}

func (db *DB) getLineageLedgerOne(ctx context.Context, g *getLineageLedgerReq) error {
	var err error
	g.got, err = scanLineageLedger(db.pool.QueryRow(ctx, lineageLedgerQuery, g.hash, g.kind))
	return err
}

var errLineageLedgerRows = errors.New("postgres: lineage and ledger read returned the wrong number of rows")

func (db *DB) getLineageLedgerMany(ctx context.Context, gs []*getLineageLedgerReq, _ []error) error {
	hashes, kinds := make([][]byte, len(gs)), make([]string, len(gs))
	for i, g := range gs {
		hashes[i], kinds[i] = g.hash, g.kind
	}
	rows, err := db.pool.Query(ctx, lineageLedgerManyQuery, hashes, kinds)
	if err != nil {
		return err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n == len(gs) {
			return errLineageLedgerRows
		}
		if gs[n].got, err = scanLineageLedger(rows); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != len(gs) {
		return errLineageLedgerRows
	}
	return nil
}

// scanLineageLedger reads the columns lineageLedgerColumns. A missing
// record scans as NULLs: nil hashes and blobs, and its other fields are left
// zero, as LineageLedgerReader promises.
func scanLineageLedger(row pgx.Row) (flashauth.LineageLedger, error) {
	var (
		r                            flashauth.LineageLedger
		userID, gKind, claimID       pgtype.Text
		state                        pgtype.Int2
		lCreated, lRotated, lExpires pgtype.Timestamptz
		gLease, gExpires, gCreated   pgtype.Timestamptz
	)
	if err := row.Scan(
		&r.Lineage.TokenHash, &r.Lineage.ParentHash, &userID, &r.Lineage.ReplacedBy, &lCreated, &lRotated, &lExpires,
		&gKind, &r.Entry.Key, &claimID, &state, &gLease, &r.Entry.Sealed, &gExpires, &gCreated); err != nil {
		return flashauth.LineageLedger{}, err
	}
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
