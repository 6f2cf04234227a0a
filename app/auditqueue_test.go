package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
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

// Rows are stored in the order they were recorded, even when the queue is
// full and recorders wait for room: the trail's ids follow the events.
func TestAuditQueueKeepsOrder(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	q := newAuditQueue(db, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = q.Close() })
	const n = 3*auditQueueDepth + 17 // several full queues' worth
	for i := range n {
		if err := q.AppendAudit(context.Background(), flashauth.AuditEvent{Type: "order", RequestID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := q.ListAudit(t.Context(), 2*n)
	if err != nil || len(evs) != n {
		t.Fatalf("ListAudit: %d rows, %v; want %d", len(evs), err, n)
	}
	for i, e := range evs { // newest first
		if want := fmt.Sprint(n - 1 - i); e.RequestID != want {
			t.Fatalf("row %d from the newest is request %s, want %s: the trail is out of order", i, e.RequestID, want)
		}
	}
}

// A recorder waiting for room gives up with its context, and the queue
// still drains and closes; Close twice is harmless.
func TestAuditQueueFullHonoursContext(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	q := newAuditQueue(db, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// With the context already done, a full queue refuses at once; an
	// empty one may still take the row. Either way nothing hangs.
	for range 2 * auditQueueDepth {
		if err := q.AppendAudit(ctx, flashauth.AuditEvent{Type: "x"}); err != nil && err != context.Canceled {
			t.Fatalf("append: %v", err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err == nil {
		// the store is closed now; a second Close reports it, but must not panic
		t.Log("second Close returned nil")
	}
}

// TryAppendAudit queues a row when there is room, and refuses once the
// queue is closed (the recorder then appends to the store itself).
func TestAuditQueueTryAppend(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	q := newAuditQueue(db, slog.New(slog.DiscardHandler))
	if !q.TryAppendAudit(flashauth.AuditEvent{Type: "try", RequestID: "r1"}) {
		t.Fatal("an empty queue refused a row")
	}
	if evs, err := q.ListAudit(t.Context(), 10); err != nil || len(evs) != 1 || evs[0].RequestID != "r1" {
		t.Fatalf("ListAudit: %+v, %v; want the queued row", evs, err)
	}
	q.mu.Lock()
	q.closed = true // what Close does first
	q.mu.Unlock()
	if q.TryAppendAudit(flashauth.AuditEvent{Type: "try", RequestID: "r2"}) {
		t.Fatal("a closed queue took a row")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

// heldAuditStore is a real store whose first AppendAudits waits until
// release is closed, after telling entered; it records the size of every
// AppendAudits call.
type heldAuditStore struct {
	flashauth.Store
	entered, release chan struct{}
	mu               sync.Mutex
	calls            []int
}

func (s *heldAuditStore) AppendAudits(ctx context.Context, events []flashauth.AuditEvent) error {
	s.mu.Lock()
	s.calls = append(s.calls, len(events))
	first := len(s.calls) == 1
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return s.Store.AppendAudits(ctx, events)
}

// The rows that queued while a write was under way go to the store in one
// write, however many: the trail keeps up with a slow commit instead of
// making recorders wait for room one small batch at a time.
func TestAuditQueueWritesAllQueuedRowsAtOnce(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	store := &heldAuditStore{Store: db, entered: make(chan struct{}), release: make(chan struct{})}
	q := newAuditQueue(store, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = q.Close() })
	release := sync.OnceFunc(func() { close(store.release) })
	t.Cleanup(release) // before Close, which waits for the held write
	row := func(i int) flashauth.AuditEvent {
		return flashauth.AuditEvent{Type: "held", RequestID: fmt.Sprint(i)}
	}
	if err := q.AppendAudit(context.Background(), row(0)); err != nil {
		t.Fatal(err)
	}
	<-store.entered // the writer holds row 0 in a write that waits
	for i := 1; i <= auditQueueDepth; i++ {
		// A full queue's worth, with no room freed meanwhile; never
		// waiting, so a queue without the room fails instead of hanging.
		if !q.TryAppendAudit(row(i)) {
			t.Fatalf("row %d refused while one write was under way: the queue holds less than auditQueueDepth", i)
		}
	}
	release()
	evs, err := q.ListAudit(t.Context(), 2*auditQueueDepth)
	if err != nil || len(evs) != 1+auditQueueDepth {
		t.Fatalf("ListAudit: %d rows, %v; want %d", len(evs), err, 1+auditQueueDepth)
	}
	for i, e := range evs { // newest first
		if want := fmt.Sprint(auditQueueDepth - i); e.RequestID != want {
			t.Fatalf("row %d from the newest is request %s, want %s", i, e.RequestID, want)
		}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if want := []int{1, auditQueueDepth}; !slices.Equal(store.calls, want) {
		t.Fatalf("AppendAudits calls of %v rows, want %v: the rows queued during a write were not written together", store.calls, want)
	}
}
