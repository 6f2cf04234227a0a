package sqlite

import (
	"context"
	"database/sql"

	"github.com/flashbacktech/flashauth"
)

const userColumns = `id, github_id, login, email, name, image_url, org_id, created_at, updated_at`

func scanUser(r rowScanner) (flashauth.User, error) {
	var (
		u                flashauth.User
		created, updated sql.NullInt64
	)
	err := r.Scan(&u.ID, &u.GitHubID, &u.Login, &u.Email, &u.Name, &u.ImageURL, &u.OrgID, &created, &updated)
	u.CreatedAt, u.UpdatedAt = fromMS(created), fromMS(updated)
	return u, err
}

// UpsertGitHubUser implements flashauth.UserStore. The lookup and the insert
// share one BEGIN IMMEDIATE transaction, which serialises concurrent first
// sign-ins: the second one finds the first one's user and creates no
// organization. UNIQUE(github_id) backs this up.
func (db *DB) UpsertGitHubUser(ctx context.Context, u flashauth.User, org flashauth.Organization) (flashauth.User, bool, error) {
	var (
		out     flashauth.User
		created bool
	)
	err := db.writeTx(ctx, "upsert github user", func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET login = ?, email = ?, name = ?, image_url = ?, updated_at = ?
			WHERE github_id = ?`, u.Login, u.Email, u.Name, u.ImageURL, ms(u.UpdatedAt), u.GitHubID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 0 // the body may run again (batch.go)
		if created {
			if _, err := tx.ExecContext(ctx, `INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)`,
				org.ID, org.Name, ms(org.CreatedAt)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				u.ID, u.GitHubID, u.Login, u.Email, u.Name, u.ImageURL, org.ID, ms(u.CreatedAt), ms(u.UpdatedAt)); err != nil {
				return err
			}
		}
		out, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE github_id = ?`, u.GitHubID))
		return err
	})
	if err != nil {
		return flashauth.User{}, false, err
	}
	return out, created, nil
}

// GetUser implements flashauth.UserStore.
func (db *DB) GetUser(ctx context.Context, id string) (flashauth.User, error) {
	u, err := scanUser(db.readRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return flashauth.User{}, db.fail("get user", err)
	}
	return u, nil
}

// GetOrganization implements flashauth.UserStore.
func (db *DB) GetOrganization(ctx context.Context, id string) (flashauth.Organization, error) {
	var (
		o       flashauth.Organization
		created sql.NullInt64
	)
	err := db.read.QueryRowContext(ctx, `SELECT id, name, created_at FROM organizations WHERE id = ?`, id).
		Scan(&o.ID, &o.Name, &created)
	if err != nil {
		return flashauth.Organization{}, db.fail("get organization", err)
	}
	o.CreatedAt = fromMS(created)
	return o, nil
}
