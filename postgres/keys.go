package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

// InsertSigningKey inserts k; ErrConflict when its Generation (or ID) is
// taken, i.e. another replica rotated first.
func (db *DB) InsertSigningKey(ctx context.Context, k flashauth.SigningKey) error {
	return db.do(ctx, func(ctx context.Context) error {
		_, err := db.pool.Exec(ctx, `
			INSERT INTO signing_keys (id, generation, algorithm, public_key, private_key, sealed,
				created_at, retire_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			k.ID, k.Generation, k.Algorithm, k.PublicKey, k.PrivateKey, k.Sealed,
			tsArg(k.CreatedAt), tsArg(k.RetireAt), tsArg(k.ExpiresAt))
		return conflict(err)
	})
}

// UpdateSigningKey replaces the private key, sealed flag, retirement and
// expiry of k.ID if its private key is still prev; ErrNotFound otherwise.
func (db *DB) UpdateSigningKey(ctx context.Context, k flashauth.SigningKey, prev []byte) error {
	return db.do(ctx, func(ctx context.Context) error {
		tag, err := db.pool.Exec(ctx, `
			UPDATE signing_keys SET private_key = $1, sealed = $2, retire_at = $3, expires_at = $4
			WHERE id = $5 AND private_key = $6`,
			k.PrivateKey, k.Sealed, tsArg(k.RetireAt), tsArg(k.ExpiresAt), k.ID, prev)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return flashauth.ErrNotFound
		}
		return nil
	})
}

// ListSigningKeys returns all keys, highest Generation first.
func (db *DB) ListSigningKeys(ctx context.Context) ([]flashauth.SigningKey, error) {
	var out []flashauth.SigningKey
	err := db.do(ctx, func(ctx context.Context) error {
		rows, err := db.pool.Query(ctx, `
			SELECT id, generation, algorithm, public_key, private_key, sealed, created_at, retire_at, expires_at
			FROM signing_keys ORDER BY generation DESC`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (flashauth.SigningKey, error) {
			var (
				k                              flashauth.SigningKey
				createdAt, retireAt, expiresAt pgtype.Timestamptz
			)
			err := row.Scan(&k.ID, &k.Generation, &k.Algorithm, &k.PublicKey, &k.PrivateKey, &k.Sealed,
				&createdAt, &retireAt, &expiresAt)
			k.CreatedAt, k.RetireAt, k.ExpiresAt = tsVal(createdAt), tsVal(retireAt), tsVal(expiresAt)
			return k, err
		})
		return err
	})
	return out, err
}

// DeleteSigningKeys deletes keys with ExpiresAt <= now. A key without an
// expiry is kept.
func (db *DB) DeleteSigningKeys(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.do(ctx, func(ctx context.Context) error {
		tag, err := db.pool.Exec(ctx, `DELETE FROM signing_keys WHERE expires_at <= $1`, tsArg(now))
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
