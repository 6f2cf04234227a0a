package postgres_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
	"github.com/flashbacktech/flashauth/storetest"
)

func TestConformance(t *testing.T) {
	// Creating the schema costs far more than emptying it, and the suite
	// opens a store per subtest, one at a time: they share one schema,
	// emptied before each.
	url := pgtest.URL(t)
	empty := ""
	storetest.Run(t, func(t *testing.T) flashauth.Store {
		db := open(t, url)
		if empty == "" {
			empty = emptyStatement(t, url)
		}
		admin(t, url, empty, nil)
		return db
	})
}

// emptyStatement returns one statement deleting every row of the store's
// tables in the schema of url. DELETE is much cheaper than TRUNCATE for
// small tables, and in one statement foreign keys are checked only once
// every table is empty, so the order does not matter.
func emptyStatement(t *testing.T, url string) string {
	t.Helper()
	var names []string
	admin(t, url, `SELECT array_agg(tablename::text) FROM pg_tables
		WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'`, nil, &names)
	if len(names) == 0 {
		t.Fatal("no tables in the store's schema")
	}
	ctes := make([]string, len(names))
	for i, n := range names {
		ctes[i] = fmt.Sprintf("d%d AS (DELETE FROM %s)", i, pgx.Identifier{n}.Sanitize())
	}
	return "WITH " + strings.Join(ctes, ", ") + " SELECT 1"
}
