package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
)

const userColumns = `id, github_id, login, email, name, image_url, org_id, created_at, updated_at`

func scanUser(row pgx.Row) (flashauth.User, error) {
	var (
		u                    flashauth.User
		createdAt, updatedAt pgtype.Timestamptz
	)
	if err := row.Scan(&u.ID, &u.GitHubID, &u.Login, &u.Email, &u.Name, &u.ImageURL, &u.OrgID, &createdAt, &updatedAt); err != nil {
		return flashauth.User{}, err
	}
	u.CreatedAt, u.UpdatedAt = tsVal(createdAt), tsVal(updatedAt)
	return u, nil
}

// errLostRace: a concurrent first sign-in of the same GitHub user committed
// between our look-up and our insert.
var errLostRace = errors.New("lost the race to create the user")

// upsertAttempts bounds the retries after losing the creation race. One retry
// always suffices unless the winner's row is deleted in between.
const upsertAttempts = 3

// UpsertGitHubUser updates the user with u.GitHubID, or creates it and its
// organization.
//
// Creation inserts the organization, then the user with ON CONFLICT DO
// NOTHING, in one transaction. When a concurrent sign-in wins (nothing
// inserted), the transaction rolls back, taking our organization with it, and
// the next attempt finds the winner's row and updates it.
func (db *DB) UpsertGitHubUser(ctx context.Context, u flashauth.User, org flashauth.Organization) (flashauth.User, bool, error) {
	for range upsertAttempts {
		var (
			out     flashauth.User
			created bool
		)
		err := db.tx(ctx, func(ctx context.Context, tx pgx.Tx) error {
			var err error
			out, err = scanUser(tx.QueryRow(ctx, `
				UPDATE users SET login = $2, email = $3, name = $4, image_url = $5, updated_at = $6
				WHERE github_id = $1
				RETURNING `+userColumns,
				u.GitHubID, u.Login, u.Email, u.Name, u.ImageURL, tsArg(u.UpdatedAt)))
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)`,
				org.ID, org.Name, tsArg(org.CreatedAt)); err != nil {
				return conflict(err)
			}
			out, err = scanUser(tx.QueryRow(ctx, `
				INSERT INTO users (`+userColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (github_id) DO NOTHING
				RETURNING `+userColumns,
				u.ID, u.GitHubID, u.Login, u.Email, u.Name, u.ImageURL, org.ID, tsArg(u.CreatedAt), tsArg(u.UpdatedAt)))
			if errors.Is(err, pgx.ErrNoRows) {
				return errLostRace
			}
			created = err == nil
			return conflict(err)
		})
		if errors.Is(err, errLostRace) {
			continue
		}
		if err != nil {
			return flashauth.User{}, false, err
		}
		return out, created, nil
	}
	return flashauth.User{}, false, fmt.Errorf("postgres: upsert GitHub user: %w", errLostRace)
}

// GetUser returns the user or ErrNotFound.
func (db *DB) GetUser(ctx context.Context, id string) (flashauth.User, error) {
	var u flashauth.User
	err := db.do(ctx, func(ctx context.Context) error {
		var err error
		u, err = scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
		return notFound(err)
	})
	return u, err
}

// GetOrganization returns the organization or ErrNotFound.
func (db *DB) GetOrganization(ctx context.Context, id string) (flashauth.Organization, error) {
	var (
		o         flashauth.Organization
		createdAt pgtype.Timestamptz
	)
	err := db.do(ctx, func(ctx context.Context) error {
		return notFound(db.pool.QueryRow(ctx,
			`SELECT id, name, created_at FROM organizations WHERE id = $1`, id).
			Scan(&o.ID, &o.Name, &createdAt))
	})
	if err != nil {
		return flashauth.Organization{}, err
	}
	o.CreatedAt = tsVal(createdAt)
	return o, nil
}

// conflict maps a unique violation to ErrConflict, keeping the cause.
func conflict(err error) error {
	if isUniqueViolation(err) {
		return fmt.Errorf("%w: %w", flashauth.ErrConflict, err)
	}
	return err
}
