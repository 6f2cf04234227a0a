package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres"
	"github.com/flashbacktech/flashauth/seal"
)

// Audit rows ride on ledger writes (riders.go). The tests make the wait for
// a carrier unbounded, so that nothing but the test decides what carries
// the rows.

// appendAsync starts an AppendAudits and waits until it waits for a carrier.
func appendAsync(t *testing.T, db *postgres.DB, events ...flashauth.AuditEvent) <-chan error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- db.AppendAudits(context.Background(), events) }()
	for db.WaitingRiders() == 0 {
		time.Sleep(time.Millisecond)
	}
	return ch
}

// xmins returns the distinct transactions that wrote the audit rows and the
// ledger row of key.
func xmins(t *testing.T, url string, key []byte) int {
	t.Helper()
	var n int
	admin(t, url, `SELECT count(DISTINCT x) FROM (
		SELECT xmin::text AS x FROM audit_events
		UNION ALL SELECT xmin::text FROM ledger WHERE key = $1) t`, []any{key}, &n)
	return n
}

// The rows of an AppendAudits go in the transaction of the next claim or
// completion, and are stored when it commits.
func TestAuditRowsRideOnLedgerWrites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, db *postgres.DB, key []byte)
	}{
		{"claim", func(t *testing.T, db *postgres.DB, key []byte) {
			if _, held, err := db.ClaimLedger(t.Context(), kindRefresh, key, "c1", base, base.Add(time.Minute)); err != nil || !held {
				t.Fatalf("ClaimLedger: held %v, %v", held, err)
			}
		}},
		{"completion", func(t *testing.T, db *postgres.DB, key []byte) {
			lineage := []flashauth.Lineage{{TokenHash: seal.Hash("child"), ParentHash: key, CreatedAt: base}}
			if err := db.CompleteLedger(t.Context(), kindRefresh, key, "c1", []byte("sealed"), base.Add(time.Minute), lineage); err != nil {
				t.Fatalf("CompleteLedger: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := testURL(t)
			db := open(t, url)
			db.SetRideWait(time.Hour)
			key := seal.Hash("ride " + tc.name)
			if tc.name == "completion" {
				if _, _, err := db.ClaimLedger(t.Context(), kindRefresh, key, "c1", base, base.Add(time.Minute)); err != nil {
					t.Fatalf("ClaimLedger: %v", err)
				}
			}
			done := appendAsync(t, db, auditEvent("first"), auditEvent("second"))
			tc.write(t, db, key)
			if err := <-done; err != nil {
				t.Fatalf("AppendAudits: %v", err)
			}
			events, err := db.ListAudit(t.Context(), 10)
			if err != nil || len(events) != 2 || events[0].Detail != "second" || events[1].Detail != "first" {
				t.Fatalf("ListAudit: %+v, %v; want second, first", events, err)
			}
			if n := xmins(t, url, key); n != 1 {
				t.Errorf("the audit rows and the ledger row were written by %d transactions, want one", n)
			}
		})
	}
}

// When the transaction carrying audit rows is refused, neither fails for
// the other: the ledger write runs again without the rows, and the rows go
// alone.
func TestAuditRiderRefusalFailsAlone(t *testing.T) {
	t.Run("bad rows on a good claim", func(t *testing.T) {
		url := testURL(t)
		db := open(t, url)
		db.SetRideWait(time.Hour)
		bad := auditEvent("nul \x00 byte") // PostgreSQL text refuses NUL
		done := appendAsync(t, db, bad)
		key := seal.Hash("good claim")
		if _, held, err := db.ClaimLedger(t.Context(), kindRefresh, key, "c1", base, base.Add(time.Minute)); err != nil || !held {
			t.Fatalf("ClaimLedger carrying a bad audit row: held %v, %v; want held", held, err)
		}
		if err := <-done; err == nil {
			t.Errorf("AppendAudits of a bad row: nil error")
		}
		if n := count(t, url, "audit_events"); n != 0 {
			t.Errorf("%d audit rows stored, want 0", n)
		}
	})
	t.Run("good rows on a bad claim", func(t *testing.T) {
		url := testURL(t)
		db := open(t, url)
		db.SetRideWait(time.Hour)
		done := appendAsync(t, db, auditEvent("kept"))
		short := seal.Hash("bad claim")[:16] // violates the key's CHECK
		if _, held, err := db.ClaimLedger(t.Context(), kindRefresh, short, "c1", base, base.Add(time.Minute)); err == nil || held {
			t.Errorf("ClaimLedger of a short key: held %v, %v; want an error", held, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("AppendAudits: %v", err)
		}
		events, err := db.ListAudit(t.Context(), 10)
		if err != nil || len(events) != 1 || events[0].Detail != "kept" {
			t.Errorf("ListAudit: %+v, %v; want the row kept", events, err)
		}
	})
}

// Close has the rows still waiting for a carrier written before the pool
// closes.
func TestCloseWritesWaitingAuditRows(t *testing.T) {
	url := testURL(t)
	db := open(t, url)
	db.SetRideWait(time.Hour)
	done := appendAsync(t, db, auditEvent("at close"))
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("AppendAudits: %v", err)
	}
	if n := count(t, url, "audit_events"); n != 1 {
		t.Errorf("%d audit rows stored, want 1", n)
	}
}
