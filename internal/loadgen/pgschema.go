package loadgen

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// freshSchema creates a schema of its own in the PostgreSQL database raw
// names and returns a URL whose connections use it, and a function that
// drops it. Every run then starts from empty tables, and its signing keys
// are sealed under its own secret key without meeting an earlier run's.
func freshSchema(ctx context.Context, raw string) (string, func(), error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("loadgen: the database URL must be postgres://")
	}
	// pgx sends unknown parameters to the server as settings: the pool's
	// are the pool's, not the server's.
	admin := *u
	q := admin.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	admin.RawQuery = q.Encode()
	schema := "flashload_" + randomSecret(6)
	if err := execSQL(ctx, admin.String(), "CREATE SCHEMA "+schema); err != nil {
		return "", nil, fmt.Errorf("loadgen: create a schema for the run: %w", err)
	}
	q = u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = execSQL(ctx, admin.String(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	}
	return u.String(), drop, nil
}

// execSQL runs one statement on a connection of its own.
func execSQL(ctx context.Context, dsn, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
