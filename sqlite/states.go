package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/flashbacktech/flashauth"
)

// PutOAuthState implements flashauth.StateStore; ErrConflict when the hash
// exists.
func (db *DB) PutOAuthState(ctx context.Context, s flashauth.OAuthState) error {
	return db.writeTx(ctx, "put oauth state", func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_states (hash, verifier, redirect_uri, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?)`, s.Hash, s.Verifier, s.RedirectURI, ms(s.CreatedAt), ms(s.ExpiresAt))
		return err
	})
}

// GetOAuthState implements flashauth.StateStore: a read, so a state that is
// checked before anything is spent costs no write.
func (db *DB) GetOAuthState(ctx context.Context, hash []byte, now time.Time) (flashauth.OAuthState, error) {
	var (
		s                flashauth.OAuthState
		created, expires sql.NullInt64
	)
	err := db.read.QueryRowContext(ctx, `SELECT hash, verifier, redirect_uri, created_at, expires_at
		FROM oauth_states WHERE hash = ?`, hash).Scan(&s.Hash, &s.Verifier, &s.RedirectURI, &created, &expires)
	if err != nil {
		return flashauth.OAuthState{}, db.fail("get oauth state", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
	if !s.ExpiresAt.After(now) {
		return flashauth.OAuthState{}, db.fail("get oauth state", flashauth.ErrNotFound)
	}
	return s, nil
}

// TakeOAuthState implements flashauth.StateStore. DELETE ... RETURNING makes
// the take exactly-once: of two concurrent takers only one gets the row. An
// expired state is deleted too, as it can never be used.
func (db *DB) TakeOAuthState(ctx context.Context, hash []byte, now time.Time) (flashauth.OAuthState, error) {
	var s flashauth.OAuthState
	err := db.writeTx(ctx, "take oauth state", func(ctx context.Context, tx *wtx) error {
		var created, expires sql.NullInt64
		if err := tx.QueryRowContext(ctx, `DELETE FROM oauth_states WHERE hash = ?
			RETURNING hash, verifier, redirect_uri, created_at, expires_at`, hash).
			Scan(&s.Hash, &s.Verifier, &s.RedirectURI, &created, &expires); err != nil {
			return err
		}
		s.CreatedAt, s.ExpiresAt = fromMS(created), fromMS(expires)
		return nil
	})
	if err != nil {
		return flashauth.OAuthState{}, err
	}
	// A state without an expiry counts as expired (the zero time is before
	// any now): a login must not stay open for ever.
	if !s.ExpiresAt.After(now) {
		return flashauth.OAuthState{}, db.fail("take oauth state", flashauth.ErrNotFound)
	}
	return s, nil
}

// PurgeOAuthStates implements flashauth.StateStore; states without an
// expiry are purged too.
func (db *DB) PurgeOAuthStates(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.writeTx(ctx, "purge oauth states", func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_states WHERE expires_at IS NULL OR expires_at <= ?`, now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
