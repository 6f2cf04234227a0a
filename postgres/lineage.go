package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

// lineageUpdateSet is every upsert's update of an existing record: all of
// it, from the proposed row.
const lineageUpdateSet = `
		parent_hash = EXCLUDED.parent_hash, user_id = EXCLUDED.user_id,
		replaced_by = EXCLUDED.replaced_by, created_at = EXCLUDED.created_at,
		rotated_at = EXCLUDED.rotated_at, expires_at = EXCLUDED.expires_at`

const upsertLineage = `
	INSERT INTO lineage (` + lineageColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (token_hash) DO UPDATE SET ` + lineageUpdateSet

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

// GetLineage returns the record or ErrNotFound. Concurrent calls share one
// statement, as GetLedger's do.
func (db *DB) GetLineage(ctx context.Context, tokenHash []byte) (flashauth.Lineage, error) {
	g := &getLineageReq{hash: tokenHash}
	if err := db.do(ctx, func(ctx context.Context) error { return db.lineageReads.do(ctx, g) }); err != nil {
		return flashauth.Lineage{}, err
	}
	return g.lineage, nil
}

// getLineageReq is one GetLineage call; lineage is its result.
type getLineageReq struct {
	hash    []byte
	lineage flashauth.Lineage
}

const lineageColumns = `token_hash, parent_hash, user_id, replaced_by, created_at, rotated_at, expires_at`

func scanLineage(row pgx.Row) (flashauth.Lineage, error) {
	var (
		l                               flashauth.Lineage
		userID                          pgtype.Text
		createdAt, rotatedAt, expiresAt pgtype.Timestamptz
	)
	if err := row.Scan(&l.TokenHash, &l.ParentHash, &userID, &l.ReplacedBy, &createdAt, &rotatedAt, &expiresAt); err != nil {
		return flashauth.Lineage{}, err
	}
	l.UserID = userID.String
	l.CreatedAt, l.RotatedAt, l.ExpiresAt = tsVal(createdAt), tsVal(rotatedAt), tsVal(expiresAt)
	return l, nil
}

func (db *DB) getLineageOne(ctx context.Context, g *getLineageReq) error {
	var err error
	g.lineage, err = scanLineage(db.pool.QueryRow(ctx,
		`SELECT `+lineageColumns+` FROM lineage WHERE token_hash = $1`, g.hash))
	return notFound(err)
}

// getLineageMany reads the records of gs in one statement; as
// selectManySQL, each hash is one lookup of the primary key.
func (db *DB) getLineageMany(ctx context.Context, gs []*getLineageReq, errs []error) error {
	hashes := make([][]byte, len(gs))
	for i, g := range gs {
		hashes[i] = g.hash
	}
	rows, err := db.pool.Query(ctx, `SELECT l.* FROM unnest($1::bytea[]) AS u(hash)
		CROSS JOIN LATERAL (SELECT `+lineageColumns+` FROM lineage WHERE token_hash = u.hash OFFSET 0) l`, hashes)
	if err != nil {
		return err
	}
	got := make(map[string]flashauth.Lineage, len(gs))
	for rows.Next() {
		l, err := scanLineage(rows)
		if err != nil {
			rows.Close()
			return err
		}
		got[string(l.TokenHash)] = l
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i, g := range gs {
		l, ok := got[string(g.hash)]
		if !ok {
			errs[i] = flashauth.ErrNotFound
			continue
		}
		g.lineage = l
	}
	return nil
}
