package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/sqlite"
)

// Queued audit rows are all stored: a reader sees every row recorded before
// it asked, and Close stores the rows still in flight before closing.
func TestAuditQueueLosesNoRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	q := newAuditQueue(db, slog.New(slog.DiscardHandler))
	const n = 64
	record := func(kind string) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if err := q.AppendAudit(context.Background(), flashauth.AuditEvent{Type: kind, Outcome: fmt.Sprint(i)}); err != nil {
					t.Errorf("append: %v", err)
				}
			})
		}
		wg.Wait()
	}
	record("first")
	if evs, err := q.ListAudit(t.Context(), 2*n); err != nil || len(evs) != n {
		t.Fatalf("ListAudit after %d appends: %d rows, %v", n, len(evs), err)
	}
	record("second")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if evs, err := db2.ListAudit(t.Context(), 4*n); err != nil || len(evs) != 2*n {
		t.Fatalf("after Close: %d rows, %v; want %d", len(evs), err, 2*n)
	}
}
