package e2e

import (
	"net/http"
	"testing"

	"github.com/flashbacktech/flashauth/postgres"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// TestConcurrentMigrations starts four replicas at the same moment on an
// empty schema. Each applies the migrations at start-up under the advisory
// lock: all four become ready and every migration is recorded once.
func TestConcurrentMigrations(t *testing.T) {
	dbURL := pgtest.URL(t)
	b := newTestbed(t)
	rs := b.start(4, b.env(dbURL))
	for _, r := range rs {
		a, err := b.readyz(r.URL)
		if err != nil || a.Status != http.StatusOK {
			t.Fatalf("%s /readyz: %v %s", r.name, err, a.Body)
		}
	}

	var rows, distinct, highest int
	if err := queryRow(t, dbURL, `SELECT count(*), count(DISTINCT version), COALESCE(max(version), 0) FROM schema_migrations`,
		nil, &rows, &distinct, &highest); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if want := postgres.LatestMigration(); rows != want || distinct != want || highest != want {
		t.Fatalf("schema_migrations has %d rows, %d versions, highest %d; want each migration once, up to %d",
			rows, distinct, highest, want)
	}

	// The schema they agreed on works from every replica: each refreshes
	// the token the previous one issued.
	token := b.grant()
	for _, r := range rs {
		a := b.mustRefresh(r.URL, token)
		if a.Status != http.StatusOK {
			t.Fatalf("refresh at %s: %s %s", r.name, a, a.Body)
		}
		token = a.field("refreshToken")
	}
}
