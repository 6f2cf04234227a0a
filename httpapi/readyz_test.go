package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/sqlite"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

// stalledStore is a real SQLite store whose Ping first blocks, ignoring its
// context, until released: a write stuck in the kernel on a stalled disk.
type stalledStore struct {
	flashauth.Store
	release  chan struct{}
	released atomic.Bool
	calls    atomic.Int32
}

func (s *stalledStore) Ping(ctx context.Context) error {
	s.calls.Add(1)
	<-s.release
	return s.Store.Ping(ctx)
}

func (s *stalledStore) unblock() {
	if !s.released.Swap(true) {
		close(s.release)
	}
}

func readyz(h http.Handler) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://flashauth.test/readyz", nil))
	return rec.Code
}

// /readyz answers 503 at its deadline while the store's check hangs, and
// probes arriving meanwhile share the one check in flight instead of piling
// up goroutines on the hung store.
func TestReadyzAnswersWhileTheStoreHangs(t *testing.T) {
	st := &stalledStore{Store: sqlitetest.Open(t), release: make(chan struct{})}
	// If /readyz waited for the store, the test would hang: unblock it
	// eventually, and fail answers that only came after.
	watchdog := time.AfterFunc(30*time.Second, st.unblock)
	defer watchdog.Stop()
	defer st.unblock()
	h := NewServer(Config{Store: st, ReadyTimeout: 100 * time.Millisecond})

	const probes = 20
	var wg sync.WaitGroup
	codes := make(chan int, 2*probes)
	for range probes {
		wg.Go(func() { codes <- readyz(h) })
	}
	wg.Wait()
	for range probes { // one after the other, the check still hanging
		codes <- readyz(h)
	}
	if st.released.Load() {
		t.Fatal("/readyz answered only once the store's check returned")
	}
	close(codes)
	for c := range codes {
		if c != http.StatusServiceUnavailable {
			t.Errorf("/readyz = %d while the store hangs, want 503", c)
		}
	}
	if n := st.calls.Load(); n != 1 {
		t.Errorf("%d store checks started for %d probes while one hung, want 1", n, 2*probes)
	}

	st.unblock()
	// The hung check ends; the next probe runs a fresh one.
	waitReady := time.Now().Add(30 * time.Second)
	for readyz(h) != http.StatusOK {
		if time.Now().After(waitReady) {
			t.Fatal("/readyz never recovered after the store answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := st.calls.Load(); n < 2 {
		t.Errorf("store checks %d, want a new one after recovery", n)
	}
}

// A store that reads but cannot write is not ready.
func TestReadyzNeedsAWritableStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flashauth.db")
	db, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if got := readyz(NewServer(Config{Store: db})); got != http.StatusOK {
		t.Errorf("/readyz of a writable store = %d, want 200", got)
	}
	db.Close()
	ro, err := sqlite.Open(t.Context(), path, sqlite.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := readyz(NewServer(Config{Store: ro})); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz of a read-only store = %d, want 503", got)
	}
}

// countingStore is a real SQLite store that counts its readiness checks.
type countingStore struct {
	flashauth.Store
	pings atomic.Int32
}

func (s *countingStore) Ping(ctx context.Context) error {
	s.pings.Add(1)
	return s.Store.Ping(ctx)
}

// /readyz is neither authenticated nor rate limited and every check commits
// a write, so a client looping on it must not turn each probe into a store
// write: a passed check answers the probes of the next second. A request
// that met an unavailable store makes the next probe check again.
func TestReadyzFloodCostsBoundedWrites(t *testing.T) {
	st := &countingStore{Store: sqlitetest.Open(t)}
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	h := NewServer(Config{Store: st, Clock: clock, Sessions: bearerSessions{}})

	for range 200 {
		if c := readyz(h); c != http.StatusOK {
			t.Fatalf("/readyz = %d, want 200", c)
		}
	}
	if n := st.pings.Load(); n != 1 {
		t.Errorf("%d store checks (writes) for 200 probes within a second, want 1", n)
	}

	clock.Advance(time.Second)
	readyz(h)
	if n := st.pings.Load(); n != 2 {
		t.Errorf("%d store checks after the passed check aged, want 2", n)
	}

	// A request that found the store unavailable: the next probe checks.
	req := httptest.NewRequest(http.MethodGet, "http://flashauth.test/token", nil)
	req.Header.Set("Authorization", "Bearer storedown")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /token with the store down = %d, want 503", rec.Code)
	}
	readyz(h)
	if n := st.pings.Load(); n != 3 {
		t.Errorf("%d store checks after a request met an unavailable store, want 3 (a fresh check)", n)
	}
}
