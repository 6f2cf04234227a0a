package postgres_test

import (
	"sync"
	"testing"

	"github.com/flashbacktech/flashauth/postgres"
)

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	url := testURL(t)
	const n = 8
	dbs := make([]*postgres.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(t.Context(), url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	latest := postgres.LatestMigration()
	if latest < 1 {
		t.Fatalf("LatestMigration = %d, want >= 1", latest)
	}
	for i, db := range dbs {
		v, err := db.MigrationVersion(t.Context())
		if err != nil {
			t.Fatalf("MigrationVersion %d: %v", i, err)
		}
		if v != latest {
			t.Errorf("MigrationVersion %d = %d, want %d", i, v, latest)
		}
	}
	if got := count(t, url, "schema_migrations"); got != latest {
		t.Errorf("schema_migrations has %d rows, want %d", got, latest)
	}
}

func TestReopenIsIdempotent(t *testing.T) {
	url := testURL(t)
	db := open(t, url)
	if err := db.AppendAudit(t.Context(), auditEvent("kept")); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	db.Close()

	db = open(t, url)
	events, err := db.ListAudit(t.Context(), 10)
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if len(events) != 1 || events[0].Detail != "kept" {
		t.Errorf("after reopen: events %+v, want the one written before", events)
	}
	if got, want := count(t, url, "schema_migrations"), postgres.LatestMigration(); got != want {
		t.Errorf("schema_migrations has %d rows, want %d", got, want)
	}
}

func TestSchemasAreIsolated(t *testing.T) {
	a, b := open(t, testURL(t)), open(t, testURL(t))
	if err := a.AppendAudit(t.Context(), auditEvent("in a")); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	events, err := b.ListAudit(t.Context(), 10)
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if len(events) != 0 {
		t.Errorf("schema b sees %d events of schema a", len(events))
	}
}
