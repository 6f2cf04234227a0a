package sqlite

import (
	"context"
	"database/sql"
	"fmt"

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
		userID                       sql.NullString
		lCreated, lRotated, lExpires sql.NullInt64
		g                            nullLedger
	)
	q := qLineageLedger
	switch ledgerFor(kind) {
	case &tokenLedger:
		q = qTokenLineageLedger
	case &sessionLedger:
		q = qSessionLineageLedger
	}
	err := db.readRow(ctx, q, hash, kind).Scan(append([]any{
		&r.Lineage.TokenHash, &r.Lineage.ParentHash, &userID, &r.Lineage.ReplacedBy, &lCreated, &lRotated, &lExpires},
		g.dest(&r.Entry)...)...)
	if err != nil {
		return flashauth.LineageLedger{}, db.fail("get lineage and ledger", err)
	}
	// A missing row scans as NULLs: nil hashes and blobs, and its other
	// fields are left zero, as LineageLedgerReader promises.
	if r.HasLineage = r.Lineage.TokenHash != nil; r.HasLineage {
		r.Lineage.UserID = userID.String
		r.Lineage.CreatedAt, r.Lineage.RotatedAt, r.Lineage.ExpiresAt = fromMS(lCreated), fromMS(lRotated), fromMS(lExpires)
	}
	r.HasEntry = g.fill(&r.Entry)
	return r, nil
}

// nullLedger scans a left-joined ledger row (ledgerColumns), which may be
// all NULLs.
type nullLedger struct {
	kind, claimID             sql.NullString
	state                     sql.NullInt64
	lease, expires, createdAt sql.NullInt64
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
	e.Kind, e.ClaimID, e.State = g.kind.String, g.claimID.String, flashauth.LedgerState(g.state.Int64)
	e.LeaseUntil, e.ExpiresAt, e.CreatedAt = fromMS(g.lease), fromMS(g.expires), fromMS(g.createdAt)
	return true
}

// sessionEntry is the ledger entry (?2, q.h) of sessionLedger, for a
// statement that left-joins session_refresh_tokens AS t on q.h: the token
// row's entry when the row exists, else the ledger_entries row g, which
// sessionEntryJoin seeks only then (a NULL key seeks nothing).
const (
	sessionEntry = `coalesce(iif(t.state IS NULL, NULL, ?2), g.kind), coalesce(iif(t.state IS NULL, NULL, t.hash), g.key),
		coalesce(t.claim_id, g.claim_id), coalesce(t.state, g.state), coalesce(t.lease_until, g.lease_until),
		coalesce(t.sealed, g.sealed), coalesce(t.ledger_expires_at, g.expires_at), coalesce(t.ledger_created_at, g.created_at)`
	sessionEntryJoin = `
	LEFT JOIN ledger_entries AS g ON g.kind = ?2 AND g.key = iif(t.hash IS NULL, q.h, NULL)`
)

// qSessionLineageLedger is qLineageLedger for LedgerSessionRefresh.
const qSessionLineageLedger = `SELECT
		l.token_hash, l.parent_hash, l.user_id, l.replaced_by, l.created_at, l.rotated_at, l.expires_at,
		` + sessionEntry + `
	FROM (SELECT ?1 AS h) AS q
	LEFT JOIN lineage AS l ON l.token_hash = q.h AND l.has_lineage = 1
	LEFT JOIN session_refresh_tokens AS t ON t.hash = q.h` + sessionEntryJoin

// qSessionLedger reads the session of the refresh hash ?1, whether the hash
// is current, the session's user and the ledger entry (?2, ?1) of
// LedgerSessionRefresh (sessionLedger) in one statement: a one-row anchor
// left-joined to each by primary key, so the row is there whatever is
// missing. The NOT NULL columns of the session and the user read as zero
// values when their row is missing.
const qSessionLedger = `SELECT
		coalesce(s.id, ''), coalesce(s.user_id, ''), coalesce(s.provider, ''), s.device_info,
		coalesce(s.ip_address, ''), coalesce(s.user_agent, ''),
		s.created_at, s.last_used_at, s.expires_at, s.revoked_at, ` + currentToken + `,
		coalesce(u.id, ''), coalesce(u.github_id, 0), coalesce(u.login, ''), coalesce(u.email, ''),
		coalesce(u.name, ''), coalesce(u.image_url, ''), coalesce(u.org_id, ''), u.created_at, u.updated_at,
		` + sessionEntry + `
	FROM (SELECT ?1 AS h) AS q
	LEFT JOIN session_refresh_tokens AS t ON t.hash = q.h
	LEFT JOIN sessions AS s ON s.id = t.session_id
	LEFT JOIN users AS u ON u.id = s.user_id` + sessionEntryJoin

// GetSessionLedger implements flashauth.SessionStore, for the kind of a
// session refresh (LedgerSessionRefresh) only: an error for another, whose
// entries qSessionLedger does not read.
func (db *DB) GetSessionLedger(ctx context.Context, kind string, refreshHash []byte) (flashauth.SessionLedger, error) {
	var (
		r                  flashauth.SessionLedger
		err                error
		uCreated, uUpdated sql.NullInt64
		g                  nullLedger
	)
	if kind != flashauth.LedgerSessionRefresh {
		return flashauth.SessionLedger{}, fmt.Errorf("sqlite: get session and ledger: kind %q is not %q", kind, flashauth.LedgerSessionRefresh)
	}
	u := &r.User
	r.Session, err = scanSession(db.readRow(ctx, qSessionLedger, refreshHash, kind), append([]any{&r.Current,
		&u.ID, &u.GitHubID, &u.Login, &u.Email, &u.Name, &u.ImageURL, &u.OrgID, &uCreated, &uUpdated},
		g.dest(&r.Entry)...)...)
	if err != nil {
		return flashauth.SessionLedger{}, db.fail("get session and ledger", err)
	}
	r.HasSession, r.HasUser = r.Session.ID != "", u.ID != ""
	u.CreatedAt, u.UpdatedAt = fromMS(uCreated), fromMS(uUpdated)
	r.HasEntry = g.fill(&r.Entry)
	return r, nil
}
