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
		userID                       pgtype.Text
		lCreated, lRotated, lExpires pgtype.Timestamptz
		g                            nullLedger
	)
	if err := row.Scan(append([]any{
		&r.Lineage.TokenHash, &r.Lineage.ParentHash, &userID, &r.Lineage.ReplacedBy, &lCreated, &lRotated, &lExpires},
		g.dest(&r.Entry)...)...); err != nil {
		return flashauth.LineageLedger{}, err
	}
	if r.HasLineage = r.Lineage.TokenHash != nil; r.HasLineage {
		r.Lineage.UserID = userID.String
		r.Lineage.CreatedAt, r.Lineage.RotatedAt, r.Lineage.ExpiresAt = tsVal(lCreated), tsVal(lRotated), tsVal(lExpires)
	}
	r.HasEntry = g.fill(&r.Entry)
	return r, nil
}

// sessionLedgerQuery reads the session of the refresh hash $1, whether the
// hash is current, the session's user and the ledger entry ($2, $1) in one
// statement: a one-row anchor left-joined to each by primary key, so the
// row is there whatever is missing. The NOT NULL columns of the session and
// the user read as zero values when their row is missing.
const sessionLedgerQuery = `SELECT
		coalesce(s.id, ''), coalesce(s.user_id, ''), coalesce(s.provider, ''), s.device_info,
		coalesce(s.ip_address, ''), coalesce(s.user_agent, ''),
		s.created_at, s.last_used_at, s.expires_at, s.revoked_at, coalesce(s.refresh_hash = r.hash, false),
		coalesce(u.id, ''), coalesce(u.github_id, 0), coalesce(u.login, ''), coalesce(u.email, ''),
		coalesce(u.name, ''), coalesce(u.image_url, ''), coalesce(u.org_id, ''), u.created_at, u.updated_at,
		g.kind, g.key, g.claim_id, g.state, g.lease_until, g.sealed, g.expires_at, g.created_at
	FROM (SELECT $1::bytea AS h) AS q
	LEFT JOIN session_refresh_tokens AS r ON r.hash = q.h
	LEFT JOIN sessions AS s ON s.id = r.session_id
	LEFT JOIN users AS u ON u.id = s.user_id
	LEFT JOIN ledger AS g ON g.kind = $2 AND g.key = q.h`

// GetSessionLedger implements flashauth.SessionStore.
func (db *DB) GetSessionLedger(ctx context.Context, kind string, refreshHash []byte) (flashauth.SessionLedger, error) {
	var (
		r                  flashauth.SessionLedger
		uCreated, uUpdated pgtype.Timestamptz
		g                  nullLedger
	)
	u := &r.User
	err := db.do(ctx, func(ctx context.Context) error {
		var err error
		r.Session, err = scanSession(db.pool.QueryRow(ctx, sessionLedgerQuery, refreshHash, kind), append([]any{&r.Current,
			&u.ID, &u.GitHubID, &u.Login, &u.Email, &u.Name, &u.ImageURL, &u.OrgID, &uCreated, &uUpdated},
			g.dest(&r.Entry)...)...)
		return err
	})
	if err != nil {
		return flashauth.SessionLedger{}, err
	}
	r.HasSession, r.HasUser = r.Session.ID != "", u.ID != ""
	u.CreatedAt, u.UpdatedAt = tsVal(uCreated), tsVal(uUpdated)
	r.HasEntry = g.fill(&r.Entry)
	return r, nil
}

// nullLedger scans a left-joined ledger row (ledgerColumns), which may be
// all NULLs.
type nullLedger struct {
	kind, claimID             pgtype.Text
	state                     pgtype.Int2
	lease, expires, createdAt pgtype.Timestamptz
}

// dest is the scan destinations of the row, e's Key and Sealed directly.
func (g *nullLedger) dest(e *flashauth.LedgerEntry) []any {
	return []any{&g.kind, &e.Key, &g.claimID, &g.state, &g.lease, &e.Sealed, &g.expires, &g.createdAt}
}

// fill sets the rest of e once scanned, and reports whether there was a
// row; without one, e stays zero (NULL blobs scan as nil).
func (g *nullLedger) fill(e *flashauth.LedgerEntry) bool {
	if !g.kind.Valid {
		return false
	}
	e.Kind, e.ClaimID, e.State = g.kind.String, g.claimID.String, flashauth.LedgerState(g.state.Int16)
	e.LeaseUntil, e.ExpiresAt, e.CreatedAt = tsVal(g.lease), tsVal(g.expires), tsVal(g.createdAt)
	return true
}
