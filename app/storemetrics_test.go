package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/sqlite"
)

// ctxStore records the context of every point read it serves.
type ctxStore struct {
	flashauth.Store // nil: only the methods below are called
	seen            []context.Context
}

func (s *ctxStore) see(ctx context.Context) { s.seen = append(s.seen, ctx) }

func (s *ctxStore) GetLineageLedger(ctx context.Context, _ string, _ []byte) (flashauth.LineageLedger, error) {
	s.see(ctx)
	return flashauth.LineageLedger{}, nil
}

func (s *ctxStore) GetLedger(ctx context.Context, _ string, _ []byte) (flashauth.LedgerEntry, error) {
	s.see(ctx)
	return flashauth.LedgerEntry{}, nil
}

func (s *ctxStore) GetSessionLedger(ctx context.Context, _ string, _ []byte) (flashauth.SessionLedger, error) {
	s.see(ctx)
	return flashauth.SessionLedger{}, nil
}

func (s *ctxStore) GetSession(ctx context.Context, _ string) (flashauth.Session, error) {
	s.see(ctx)
	return flashauth.Session{}, nil
}

// A local store's point reads run without their caller's cancellation
// (a cancellable context costs a SQLite read two watcher goroutines), with
// its values; a remote store's get the caller's context as it is.
func TestMeteredStorePointReadContext(t *testing.T) {
	info := flashauth.RequestInfo{ID: "req-1", IP: "192.0.2.1"}
	for _, local := range []bool{true, false} {
		fake := &ctxStore{}
		s, err := newMeteredStore(fake, prometheus.NewRegistry(), local)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(flashauth.WithRequestInfo(context.Background(), info))
		cancel() // the caller has gone
		_, _ = s.(flashauth.LineageLedgerReader).GetLineageLedger(ctx, flashauth.LedgerGitHubRefresh, []byte("h"))
		_, _ = s.GetLedger(ctx, flashauth.LedgerGitHubRefresh, []byte("h"))
		_, _ = s.GetSessionLedger(ctx, flashauth.LedgerSessionRefresh, []byte("h"))
		_, _ = s.GetSession(ctx, "s1")
		if len(fake.seen) != 4 {
			t.Fatalf("local=%v: %d reads reached the store, want 4", local, len(fake.seen))
		}
		for i, got := range fake.seen {
			if gotInfo := flashauth.RequestInfoFrom(got); gotInfo != info {
				t.Errorf("local=%v, read %d: request info %+v, want %+v", local, i, gotInfo, info)
			}
			switch {
			case local && (got.Done() != nil || got.Err() != nil):
				t.Errorf("local=%v, read %d: the read's context is cancellable (err %v)", local, i, got.Err())
			case !local && got != ctx:
				t.Errorf("local=%v, read %d: the read did not get the caller's context", local, i)
			}
		}
	}
}

// New's store chain: the services' store reads lineage and ledger in one
// round trip, and the auditor's store offers events to the queue without
// waiting (audit.Queue) - which the services' store, a wrapper, hides.
func TestStoresKeepTheQueueForTheAuditor(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "stores.db"))
	if err != nil {
		t.Fatal(err)
	}
	metered, err := newMeteredStore(db, prometheus.NewRegistry(), true)
	if err != nil {
		t.Fatal(err)
	}
	store, audits := stores(metered, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = store.Close() })
	if _, ok := store.(flashauth.LineageLedgerReader); !ok {
		t.Error("the services' store does not read lineage and ledger in one round trip")
	}
	if _, ok := flashauth.AuditStore(audits).(audit.Queue); !ok {
		t.Error("the auditor's store is not an audit.Queue: every event would wait on a timer")
	}
}
