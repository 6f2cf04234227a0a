package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/storesql"
)

const sessionColumns = `s.id, s.user_id, s.provider, s.device_info, s.ip_address, s.user_agent,
	s.created_at, s.last_used_at, s.expires_at, s.revoked_at`

// scanSession scans sessionColumns followed by extra destinations.
func scanSession(r rowScanner, extra ...any) (flashauth.Session, error) {
	return storesql.ScanSession(r.Scan, fromMS, extra...)
}

// CreateSession implements flashauth.SessionStore. The refresh token is
// recorded with the session's CreatedAt.
func (db *DB) CreateSession(ctx context.Context, s flashauth.Session, refreshHash []byte) error {
	return db.writeTx(ctx, "create session", func(ctx context.Context, tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, user_id, provider, device_info,
			ip_address, user_agent, created_at, last_used_at, expires_at, revoked_at, refresh_hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			s.ID, s.UserID, s.Provider, blob(s.DeviceInfo), s.IPAddress, s.UserAgent,
			ms(s.CreatedAt), ms(s.LastUsedAt), ms(s.ExpiresAt), ms(s.RevokedAt), refreshHash); err != nil {
			return err
		}
		return insertSessionToken(ctx, tx, refreshHash, s.ID, s.CreatedAt)
	})
}

// GetSession implements flashauth.SessionStore.
func (db *DB) GetSession(ctx context.Context, id string) (flashauth.Session, error) {
	s, err := scanSession(db.readRow(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE s.id = ?`, id))
	if err != nil {
		return flashauth.Session{}, db.fail("get session", err)
	}
	return s, nil
}

// FindSessionByRefresh implements flashauth.SessionStore.
func (db *DB) FindSessionByRefresh(ctx context.Context, refreshHash []byte) (flashauth.Session, bool, error) {
	var current bool
	s, err := scanSession(db.readRow(ctx, `SELECT `+sessionColumns+`, `+currentToken+`
		FROM session_refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.hash = ?`, refreshHash), &current)
	if err != nil {
		return flashauth.Session{}, false, db.fail("find session by refresh", err)
	}
	return s, current, nil
}

// currentToken is whether the token row t is its session s's current
// refresh token (migration 0005: sessions.refresh_hash).
const currentToken = `coalesce(s.refresh_hash = t.hash, 0)`

// The session refresh's statements, prepared once (stmts.go).
const (
	// qSessionTokenInsert inserts the token row of ?1 unless ledger_entries
	// holds an entry of its hash; qSessionTokenTake inserts it with that
	// entry, which qSessionTokenMoved then deletes there (sessionLedger).
	qSessionTokenInsert = `INSERT INTO session_refresh_tokens (hash, session_id, current, created_at)
			SELECT ?1, ?2, 0, ?3 WHERE NOT EXISTS (SELECT 1 FROM ledger_entries WHERE kind = ?4 AND key = ?1)`
	qSessionTokenTake = `INSERT INTO session_refresh_tokens (hash, session_id, current, created_at,
				` + tokenLedgerColumns + `)
			SELECT ?1, ?2, 0, ?3, claim_id, state, lease_until, sealed, expires_at, created_at
			FROM ledger_entries WHERE kind = ?4 AND key = ?1`
	qSessionTokenMoved = `DELETE FROM ledger_entries WHERE kind = ?4 AND key = ?1`
	qSessionRotate     = `UPDATE sessions SET refresh_hash = ?, last_used_at = ?, expires_at = ?
			WHERE id = ? AND refresh_hash = ? AND revoked_at IS NULL`
	qSessionTouch = `UPDATE sessions SET last_used_at = ? WHERE id = ?`
)

// insertSessionToken records hash as a refresh token of session id; the
// current one is sessions.refresh_hash. An entry of the hash's
// LedgerSessionRefresh ledger moves into the new row (sessionLedger keeps
// it there once the row exists).
func insertSessionToken(ctx context.Context, tx *wtx, hash []byte, id string, createdAt time.Time) error {
	args := []any{hash, id, ms(createdAt), flashauth.LedgerSessionRefresh}
	res, err := tx.exec(ctx, qSessionTokenInsert, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	// An entry of the hash came first (a verdict on it before it was
	// issued): the row takes it.
	for _, q := range []string{qSessionTokenTake, qSessionTokenMoved} {
		if _, err := tx.exec(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// rotateSession applies r in tx (CommitLedger): the compare-and-swap is the
// UPDATE of the session's current refresh hash, which only one of several
// concurrent rotations can win. ErrConflict when r.OldHash is not current
// or the session is revoked or unknown.
func rotateSession(ctx context.Context, tx *wtx, r *flashauth.SessionRotation) error {
	res, err := tx.exec(ctx, qSessionRotate, r.NewHash, ms(r.Now), ms(r.ExpiresAt), r.SessionID, r.OldHash)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return flashauth.ErrConflict
	}
	return insertSessionToken(ctx, tx, r.NewHash, r.SessionID, r.Now)
}

// TouchSession implements flashauth.SessionStore; ErrNotFound for an unknown id.
func (db *DB) TouchSession(ctx context.Context, id string, now time.Time) error {
	return db.writeTx(ctx, "touch session", func(ctx context.Context, tx *wtx) error {
		res, err := tx.exec(ctx, qSessionTouch, ms(now), id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}

// RevokeSession implements flashauth.SessionStore.
func (db *DB) RevokeSession(ctx context.Context, id string, now time.Time) error {
	return db.writeTx(ctx, "revoke session", func(ctx context.Context, tx *wtx) error {
		// Touching the row even when it is already revoked (keeping the
		// first RevokedAt) tells "unknown" from "already revoked" in one
		// statement.
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`,
			now.UnixMilli(), id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}

// RevokeUserSessions implements flashauth.SessionStore: it revokes the
// sessions that are active at now and counts them.
func (db *DB) RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int64, error) {
	var n int64
	err := db.writeTx(ctx, "revoke user sessions", func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?
			WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?`,
			now.UnixMilli(), userID, now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// ListSessions implements flashauth.SessionStore.
func (db *DB) ListSessions(ctx context.Context, userID string, now time.Time) ([]flashauth.Session, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions s
		WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ?
		ORDER BY s.created_at DESC, s.id DESC`, userID, now.UnixMilli())
	if err != nil {
		return nil, db.fail("list sessions", err)
	}
	defer rows.Close()
	var out []flashauth.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, db.fail("list sessions", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, db.fail("list sessions", err)
	}
	return out, nil
}

// mustAffect turns "no row matched" into ErrNotFound.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return flashauth.ErrNotFound
	}
	return nil
}
