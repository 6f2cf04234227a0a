package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/storesql"
)

const sessionColumns = `sessions.id, sessions.user_id, sessions.provider, sessions.device_info,
	sessions.ip_address, sessions.user_agent, sessions.created_at, sessions.last_used_at,
	sessions.expires_at, sessions.revoked_at`

// scanSession scans sessionColumns followed by extra destinations.
func scanSession(row pgx.Row, extra ...any) (flashauth.Session, error) {
	return storesql.ScanSession(row.Scan, tsVal, extra...)
}

// CreateSession inserts s and records refreshHash as its first refresh token,
// in one statement.
func (db *DB) CreateSession(ctx context.Context, s flashauth.Session, refreshHash []byte) error {
	var deviceInfo json.RawMessage
	if len(s.DeviceInfo) > 0 {
		deviceInfo = s.DeviceInfo
	}
	return db.do(ctx, func(ctx context.Context) error {
		_, err := db.pool.Exec(ctx, `
			WITH s AS (
				INSERT INTO sessions (id, user_id, provider, device_info, ip_address, user_agent,
					refresh_hash, created_at, last_used_at, expires_at, revoked_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
				RETURNING id, created_at)
			INSERT INTO session_refresh_tokens (hash, session_id, issued_at)
			SELECT $7, id, created_at FROM s`,
			s.ID, s.UserID, s.Provider, deviceInfo, s.IPAddress, s.UserAgent, refreshHash,
			tsArg(s.CreatedAt), tsArg(s.LastUsedAt), tsArg(s.ExpiresAt), tsArg(s.RevokedAt))
		return conflict(err)
	})
}

// GetSession returns the session or ErrNotFound.
func (db *DB) GetSession(ctx context.Context, id string) (flashauth.Session, error) {
	var s flashauth.Session
	err := db.do(ctx, func(ctx context.Context) error {
		var err error
		s, err = scanSession(db.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
		return notFound(err)
	})
	return s, err
}

// FindSessionByRefresh returns the session refreshHash was issued to and
// whether it is still the current one.
func (db *DB) FindSessionByRefresh(ctx context.Context, refreshHash []byte) (flashauth.Session, bool, error) {
	var (
		s       flashauth.Session
		current bool
	)
	err := db.do(ctx, func(ctx context.Context) error {
		var err error
		s, err = scanSession(db.pool.QueryRow(ctx, `
			SELECT `+sessionColumns+`, sessions.refresh_hash = r.hash
			FROM session_refresh_tokens r JOIN sessions ON sessions.id = r.session_id
			WHERE r.hash = $1`, refreshHash), &current)
		return notFound(err)
	})
	if err != nil {
		return flashauth.Session{}, false, err
	}
	return s, current, nil
}

// TouchSession sets LastUsedAt; ErrNotFound for an unknown id.
func (db *DB) TouchSession(ctx context.Context, id string, now time.Time) error {
	return db.updateSession(ctx, `UPDATE sessions SET last_used_at = $2 WHERE id = $1`, id, now)
}

// RevokeSession sets RevokedAt unless already set; ErrNotFound for an
// unknown id.
func (db *DB) RevokeSession(ctx context.Context, id string, now time.Time) error {
	return db.updateSession(ctx, `UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, now)
}

func (db *DB) updateSession(ctx context.Context, sql, id string, now time.Time) error {
	return db.do(ctx, func(ctx context.Context) error {
		tag, err := db.pool.Exec(ctx, sql, id, tsArg(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return flashauth.ErrNotFound
		}
		return nil
	})
}

// activeAt is the condition of flashauth.Session.Active, with now in $2.
const activeAt = `revoked_at IS NULL AND expires_at > $2`

// RevokeUserSessions revokes the user's active sessions and returns how many.
func (db *DB) RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int64, error) {
	var n int64
	err := db.do(ctx, func(ctx context.Context) error {
		tag, err := db.pool.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND `+activeAt,
			userID, tsArg(now))
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// ListSessions returns the user's active sessions at now, newest first.
func (db *DB) ListSessions(ctx context.Context, userID string, now time.Time) ([]flashauth.Session, error) {
	var out []flashauth.Session
	err := db.do(ctx, func(ctx context.Context) error {
		rows, err := db.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
			WHERE user_id = $1 AND `+activeAt+`
			ORDER BY created_at DESC, id DESC`, userID, tsArg(now))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (flashauth.Session, error) {
			return scanSession(row)
		})
		return err
	})
	return out, err
}
