package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"time"

	"github.com/flashbacktech/flashauth"
)

// InsertSigningKey implements flashauth.KeyStore. UNIQUE(generation) makes
// the replica that rotates second get ErrConflict.
func (db *DB) InsertSigningKey(ctx context.Context, k flashauth.SigningKey) error {
	return db.writeTx(ctx, "insert signing key", func(ctx context.Context, tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (id, generation, algorithm, public_key,
			private_key, sealed, created_at, retire_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Generation, k.Algorithm, k.PublicKey, k.PrivateKey, boolInt(k.Sealed),
			ms(k.CreatedAt), ms(k.RetireAt), ms(k.ExpiresAt))
		return err
	})
}

// UpdateSigningKey implements flashauth.KeyStore.
func (db *DB) UpdateSigningKey(ctx context.Context, k flashauth.SigningKey, prev []byte) error {
	return db.writeTx(ctx, "update signing key", func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE signing_keys SET private_key = ?, sealed = ?, retire_at = ?,
			expires_at = ? WHERE id = ? AND private_key = ?`,
			k.PrivateKey, boolInt(k.Sealed), ms(k.RetireAt), ms(k.ExpiresAt), k.ID, prev)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return cmp.Or(err, flashauth.ErrNotFound)
		}
		return nil
	})
}

// ListSigningKeys implements flashauth.KeyStore.
func (db *DB) ListSigningKeys(ctx context.Context) ([]flashauth.SigningKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, generation, algorithm, public_key, private_key,
		sealed, created_at, retire_at, expires_at FROM signing_keys ORDER BY generation DESC`)
	if err != nil {
		return nil, db.fail("list signing keys", err)
	}
	defer rows.Close()
	var out []flashauth.SigningKey
	for rows.Next() {
		var (
			k                        flashauth.SigningKey
			created, retire, expires sql.NullInt64
		)
		if err := rows.Scan(&k.ID, &k.Generation, &k.Algorithm, &k.PublicKey, &k.PrivateKey,
			&k.Sealed, &created, &retire, &expires); err != nil {
			return nil, db.fail("list signing keys", err)
		}
		k.CreatedAt, k.RetireAt, k.ExpiresAt = fromMS(created), fromMS(retire), fromMS(expires)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, db.fail("list signing keys", err)
	}
	return out, nil
}

// DeleteSigningKeys implements flashauth.KeyStore. A key without ExpiresAt
// never expires.
func (db *DB) DeleteSigningKeys(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.writeTx(ctx, "delete signing keys", func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE expires_at <= ?`, now.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
