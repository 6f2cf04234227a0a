package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/flashbacktech/flashauth"
)

// errEmptyHash rejects a lineage record without its key before SQLite does,
// with a message that says what is wrong.
var errEmptyHash = errors.New("lineage token hash is empty")

const qLineagePut = `INSERT INTO lineage
		(token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (token_hash) DO UPDATE SET
			parent_hash = excluded.parent_hash, user_id = excluded.user_id,
			replaced_by = excluded.replaced_by, created_at = excluded.created_at,
			rotated_at = excluded.rotated_at, expires_at = excluded.expires_at,
			has_lineage = 1`

const qLineageGet = `SELECT token_hash, parent_hash, user_id, replaced_by,
		created_at, rotated_at, expires_at FROM lineage WHERE token_hash = ? AND has_lineage = 1`

func putLineage(ctx context.Context, tx *wtx, l flashauth.Lineage) error {
	if len(l.TokenHash) == 0 {
		return errEmptyHash
	}
	_, err := tx.exec(ctx, qLineagePut, l.TokenHash, blob(l.ParentHash), l.UserID, blob(l.ReplacedBy),
		ms(l.CreatedAt), ms(l.RotatedAt), ms(l.ExpiresAt))
	return err
}

// PutLineage implements flashauth.LineageStore.
func (db *DB) PutLineage(ctx context.Context, l flashauth.Lineage) error {
	return db.writeTx(ctx, "put lineage", func(ctx context.Context, tx *wtx) error {
		return putLineage(ctx, tx, l)
	})
}

// GetLineage implements flashauth.LineageStore.
func (db *DB) GetLineage(ctx context.Context, tokenHash []byte) (flashauth.Lineage, error) {
	var (
		l                         flashauth.Lineage
		created, rotated, expires sql.NullInt64
	)
	err := db.readRow(ctx, qLineageGet, tokenHash).
		Scan(&l.TokenHash, &l.ParentHash, &l.UserID, &l.ReplacedBy, &created, &rotated, &expires)
	if err != nil {
		return flashauth.Lineage{}, db.fail("get lineage", err)
	}
	l.CreatedAt, l.RotatedAt, l.ExpiresAt = fromMS(created), fromMS(rotated), fromMS(expires)
	return l, nil
}
