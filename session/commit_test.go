package session_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/session"
	"github.com/flashbacktech/flashauth/sqlite"
)

// countingStore counts what a session refresh asks of the store: its reads
// and its write transactions (the audit trail aside).
type countingStore struct {
	flashauth.Store
	reads, writes, commits atomic.Int64
	// barrier, when set, holds each of the first GetSessionLedger calls
	// until all of them have read.
	barrier *sync.WaitGroup
	held    atomic.Int64
}

func (s *countingStore) GetSessionLedger(ctx context.Context, kind string, hash []byte) (flashauth.SessionLedger, error) {
	s.reads.Add(1)
	r, err := s.Store.GetSessionLedger(ctx, kind, hash)
	if s.barrier != nil && s.held.Add(1) <= 2 {
		s.barrier.Done()
		s.barrier.Wait()
	}
	return r, err
}

func (s *countingStore) GetLedger(ctx context.Context, kind string, key []byte) (flashauth.LedgerEntry, error) {
	s.reads.Add(1)
	return s.Store.GetLedger(ctx, kind, key)
}

func (s *countingStore) FindSessionByRefresh(ctx context.Context, h []byte) (flashauth.Session, bool, error) {
	s.reads.Add(1)
	return s.Store.FindSessionByRefresh(ctx, h)
}

func (s *countingStore) GetSession(ctx context.Context, id string) (flashauth.Session, error) {
	s.reads.Add(1)
	return s.Store.GetSession(ctx, id)
}

func (s *countingStore) GetUser(ctx context.Context, id string) (flashauth.User, error) {
	s.reads.Add(1)
	return s.Store.GetUser(ctx, id)
}

func (s *countingStore) CommitLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, now, expiresAt time.Time, r *flashauth.SessionRotation) (flashauth.LedgerEntry, bool, error) {
	s.writes.Add(1)
	e, committed, err := s.Store.CommitLedger(ctx, kind, key, claimID, sealed, now, expiresAt, r)
	if committed {
		s.commits.Add(1)
	}
	return e, committed, err
}

func (s *countingStore) ClaimLedger(ctx context.Context, kind string, key []byte, claimID string, now, lease time.Time) (flashauth.LedgerEntry, bool, error) {
	s.writes.Add(1)
	return s.Store.ClaimLedger(ctx, kind, key, claimID, now, lease)
}

func (s *countingStore) CompleteLedger(ctx context.Context, kind string, key []byte, claimID string, sealed []byte, expiresAt time.Time, lin []flashauth.Lineage) error {
	s.writes.Add(1)
	return s.Store.CompleteLedger(ctx, kind, key, claimID, sealed, expiresAt, lin)
}

func (s *countingStore) RevokeSession(ctx context.Context, id string, now time.Time) error {
	s.writes.Add(1)
	return s.Store.RevokeSession(ctx, id, now)
}

// countedReplica is a Service over st counted, with a ledger of its own.
func (e *env) countedReplica(t *testing.T, counted *countingStore, cfg session.Config) *session.Service {
	t.Helper()
	cfg.Clock = e.clock
	l := ledger.New(counted, ledger.Options{Clock: e.clock, PollInterval: time.Millisecond, MaxPoll: 5 * time.Millisecond})
	svc, err := session.New(counted, l, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// A rotation is one read (the session, its user and the token's ledger
// entry) and one write transaction (the rotation with its sealed verdict);
// a replay within the reuse interval is the read alone.
func TestRefreshIsOneReadAndOneWrite(t *testing.T) {
	e := newEnv(t, session.Config{})
	counted := &countingStore{Store: e.store}
	svc := e.countedReplica(t, counted, session.Config{})
	first := e.open(t, e.svc, e.newUser(t, "a@example.com"))

	e.clock.Advance(time.Minute)
	answer := refresh(t, svc, first.RefreshToken)
	if r, w := counted.reads.Load(), counted.writes.Load(); r != 1 || w != 1 {
		t.Errorf("a rotation made %d reads and %d writes, want 1 and 1", r, w)
	}
	counted.reads.Store(0)
	counted.writes.Store(0)
	again := refresh(t, svc, first.RefreshToken)
	if !again.Replayed || !cmp.Equal(answer, again, sameAnswer) {
		t.Fatalf("retry = %+v, want the replay of %+v", again, answer)
	}
	if r, w := counted.reads.Load(), counted.writes.Load(); r != 1 || w != 0 {
		t.Errorf("a replay made %d reads and %d writes, want 1 and 0", r, w)
	}
}

// Two replicas both read the token current before either commits (no
// claim keeps the second out while the first rotates): both sign and try
// to commit, and the store lets exactly one rotation in. The other finds
// its verdict committed and answers it, identical.
func TestRefreshReplicasRacingOneTokenCommitOnce(t *testing.T) {
	e := newEnv(t, session.Config{})
	var both sync.WaitGroup
	both.Add(2)
	counted := &countingStore{Store: e.store, barrier: &both}
	a, b := e.countedReplica(t, counted, session.Config{}), e.countedReplica(t, counted, session.Config{})
	first := e.open(t, e.svc, e.newUser(t, "a@example.com"))

	var got [2]session.Issued
	var errs [2]error
	var wg sync.WaitGroup
	for i, svc := range []*session.Service{a, b} {
		wg.Go(func() { got[i], errs[i] = svc.Refresh(context.Background(), first.RefreshToken) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	if d := cmp.Diff(got[0], got[1], sameAnswer); d != "" {
		t.Fatalf("the replicas answered differently (-a +b):\n%s", d)
	}
	if got[0].Replayed == got[1].Replayed {
		t.Errorf("replayed: a %v, b %v; want one rotation and one replay", got[0].Replayed, got[1].Replayed)
	}
	if c, w := counted.commits.Load(), counted.writes.Load(); c != 1 || w != 2 {
		t.Errorf("%d commits of %d writes, want 1 of 2 (both tried)", c, w)
	}
	if _, current, err := e.store.FindSessionByRefresh(context.Background(), seal.Hash(got[0].RefreshToken)); err != nil || !current {
		t.Fatalf("the answered token: current %v, %v", current, err)
	}
	refresh(t, e.svc, got[0].RefreshToken)
}

// When the write that commits a rotation fails, nothing of it is stored:
// nobody is answered new tokens (they would be useless, and would not
// replay), and the presented token stays current for the retry.
func TestRefreshCommitFailureAnswersNobody(t *testing.T) {
	e := newEnv(t, session.Config{})
	db, ok := e.store.(*sqlite.DB)
	if !ok {
		t.Skip("injects the failure with a SQLite trigger")
	}
	replica := e.replica(t, session.Config{})
	first := e.open(t, e.svc, e.newUser(t, "a@example.com"))
	raw, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := raw.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	// Every write of a done ledger entry fails, inside its transaction: in
	// ledger_entries, or in the presented token's row, where SQLite keeps
	// a session refresh's entry (migration 0005).
	triggers := []struct{ table, op string }{
		{"ledger_entries", "INSERT"}, {"ledger_entries", "UPDATE"}, {"session_refresh_tokens", "UPDATE"},
	}
	for _, tr := range triggers {
		exec(fmt.Sprintf(`CREATE TRIGGER fail_%[1]s_%[2]s BEFORE %[2]s ON %[1]s WHEN NEW.state = 2
			BEGIN SELECT RAISE(ABORT, 'injected failure'); END`, tr.table, tr.op))
	}

	const callers = 6
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		svc := e.svc
		if i%2 == 1 {
			svc = replica
		}
		wg.Go(func() { _, errs[i] = svc.Refresh(context.Background(), first.RefreshToken) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || flashauth.ErrorCode(err) == flashauth.CodeRefreshTokenReused || flashauth.ErrorCode(err) == flashauth.CodeInvalidRefreshToken {
			t.Errorf("caller %d: %v, want the store's error", i, err)
		}
	}
	if _, current, err := e.store.FindSessionByRefresh(context.Background(), seal.Hash(first.RefreshToken)); err != nil || !current {
		t.Fatalf("the presented token after the failure: current %v, %v; want it current", current, err)
	}

	for _, tr := range triggers {
		exec(`DROP TRIGGER fail_` + tr.table + `_` + tr.op)
	}
	next := refresh(t, replica, first.RefreshToken)
	if next.Replayed {
		t.Fatal("the retry replayed something")
	}
	refresh(t, e.svc, next.RefreshToken)
}
