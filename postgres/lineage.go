package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

const upsertLineage = `
	INSERT INTO lineage (token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (token_hash) DO UPDATE SET
		parent_hash = EXCLUDED.parent_hash, user_id = EXCLUDED.user_id,
		replaced_by = EXCLUDED.replaced_by, created_at = EXCLUDED.created_at,
		rotated_at = EXCLUDED.rotated_at, expires_at = EXCLUDED.expires_at`

func lineageArgs(l flashauth.Lineage) []any {
	return []any{l.TokenHash, l.ParentHash, textArg(l.UserID), l.ReplacedBy,
		tsArg(l.CreatedAt), tsArg(l.RotatedAt), tsArg(l.ExpiresAt)}
}

// PutLineage inserts or replaces the record of l.TokenHash.
func (db *DB) PutLineage(ctx context.Context, l flashauth.Lineage) error {
	return db.do(ctx, func(ctx context.Context) error {
		_, err := db.pool.Exec(ctx, upsertLineage, lineageArgs(l)...)
		return err
	})
}

// GetLineage returns the record or ErrNotFound.
func (db *DB) GetLineage(ctx context.Context, tokenHash []byte) (flashauth.Lineage, error) {
	var (
		l                               flashauth.Lineage
		userID                          pgtype.Text
		createdAt, rotatedAt, expiresAt pgtype.Timestamptz
	)
	err := db.do(ctx, func(ctx context.Context) error {
		return notFound(db.pool.QueryRow(ctx, `
			SELECT token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at
			FROM lineage WHERE token_hash = $1`, tokenHash).
			Scan(&l.TokenHash, &l.ParentHash, &userID, &l.ReplacedBy, &createdAt, &rotatedAt, &expiresAt))
	})
	if err != nil {
		return flashauth.Lineage{}, err
	}
	l.UserID = userID.String
	l.CreatedAt, l.RotatedAt, l.ExpiresAt = tsVal(createdAt), tsVal(rotatedAt), tsVal(expiresAt)
	return l, nil
}
