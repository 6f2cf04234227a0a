package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

// PutOAuthState stores s; ErrConflict when its hash is taken.
func (db *DB) PutOAuthState(ctx context.Context, s flashauth.OAuthState) error {
	return db.do(ctx, func(ctx context.Context) error {
		_, err := db.pool.Exec(ctx, `
			INSERT INTO oauth_states (hash, verifier, redirect_uri, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`,
			s.Hash, s.Verifier, s.RedirectURI, tsArg(s.CreatedAt), tsArg(s.ExpiresAt))
		return conflict(err)
	})
}

// GetOAuthState returns the state without taking it; ErrNotFound when
// unknown or expired at now.
func (db *DB) GetOAuthState(ctx context.Context, hash []byte, now time.Time) (flashauth.OAuthState, error) {
	return db.oauthState(ctx, `SELECT hash, verifier, redirect_uri, created_at, expires_at
		FROM oauth_states WHERE hash = $1`, hash, now)
}

// TakeOAuthState deletes and returns the state. DELETE ... RETURNING hands a
// row to one caller only, however many race for it. An expired state is
// deleted too, and reported as not found.
func (db *DB) TakeOAuthState(ctx context.Context, hash []byte, now time.Time) (flashauth.OAuthState, error) {
	return db.oauthState(ctx, `DELETE FROM oauth_states WHERE hash = $1
		RETURNING hash, verifier, redirect_uri, created_at, expires_at`, hash, now)
}

// oauthState runs query, which yields one state row, and returns the state
// unless it expired at now (ErrNotFound, as for no row).
func (db *DB) oauthState(ctx context.Context, query string, hash []byte, now time.Time) (flashauth.OAuthState, error) {
	var (
		s                    flashauth.OAuthState
		createdAt, expiresAt pgtype.Timestamptz
	)
	err := db.do(ctx, func(ctx context.Context) error {
		return notFound(db.pool.QueryRow(ctx, query, hash).
			Scan(&s.Hash, &s.Verifier, &s.RedirectURI, &createdAt, &expiresAt))
	})
	if err != nil {
		return flashauth.OAuthState{}, err
	}
	s.CreatedAt, s.ExpiresAt = tsVal(createdAt), tsVal(expiresAt)
	if !s.ExpiresAt.After(now) {
		return flashauth.OAuthState{}, flashauth.ErrNotFound
	}
	return s, nil
}

// PurgeOAuthStates deletes states expired at now.
func (db *DB) PurgeOAuthStates(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.do(ctx, func(ctx context.Context) error {
		tag, err := db.pool.Exec(ctx,
			`DELETE FROM oauth_states WHERE expires_at IS NULL OR expires_at <= $1`, tsArg(now))
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
