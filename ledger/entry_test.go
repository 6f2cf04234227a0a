package ledger_test

import (
	"context"
	"encoding/json"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

// countedReads counts GetLedger.
type countedReads struct {
	flashauth.LedgerStore
	gets atomic.Int64
}

func (s *countedReads) GetLedger(ctx context.Context, kind string, key []byte) (flashauth.LedgerEntry, error) {
	s.gets.Add(1)
	return s.LedgerStore.GetLedger(ctx, kind, key)
}

// A ledger entry the caller already read (Call.Entry) is Run's replay
// lookup: Run reads nothing itself. A committed outcome in it replays
// without BeforeClaim; an absent or expired one leads to the claim, which
// still has the last word - an outcome committed after the caller's read
// is replayed, not run again.
func TestRunTakesTheEntryTheCallerRead(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	st := &countedReads{LedgerStore: db}
	var gates atomic.Int64
	l := ledger.New(st, ledger.Options{Clock: clk, BeforeClaim: func(context.Context, string, []byte) error {
		gates.Add(1)
		return nil
	}})
	var calls atomic.Int64
	run := func(secret string, entry *flashauth.LedgerEntry) (verdict, ledger.Result, error) {
		t.Helper()
		// The mark is taken before the read in real use; no attempt
		// ends in between here.
		return ledger.Run(t.Context(), l, ledger.Call{Kind: kind, Secret: secret, Hash: seal.Hash(secret), Window: time.Minute, Entry: entry, Mark: l.Mark(seal.Hash(secret))},
			func(context.Context) (verdict, ledger.Writes, error) {
				calls.Add(1)
				return verdict{Value: "ran " + secret}, ledger.Writes{}, nil
			})
	}
	read := func(secret string) *flashauth.LedgerEntry {
		t.Helper()
		e, err := db.GetLedger(t.Context(), kind, seal.Hash(secret))
		if err != nil {
			t.Fatal(err)
		}
		return &e
	}
	want := func(what string, v verdict, res ledger.Result, err error, value string, replayed bool, gets, gated, ran int64) {
		t.Helper()
		if err != nil || v.Value != value || res.Replayed != replayed || st.gets.Load() != gets || gates.Load() != gated || calls.Load() != ran {
			t.Fatalf("%s: %+v %+v %v, GetLedger %d, BeforeClaim %d, op %d; want %q replayed=%v, %d, %d, %d",
				what, v, res, err, st.gets.Load(), gates.Load(), calls.Load(), value, replayed, gets, gated, ran)
		}
	}

	// None there (a zero entry): claimed and run, no read of its own.
	v, res, err := run("s1", &flashauth.LedgerEntry{})
	want("absent", v, res, err, "ran s1", false, 0, 1, 1)
	// Committed: replayed from the entry handed over.
	v, res, err = run("s1", read("s1"))
	want("committed", v, res, err, "ran s1", true, 0, 1, 1)
	// Read before the commit (absent then): the claim finds the outcome
	// and replays it.
	v, res, err = run("s1", &flashauth.LedgerEntry{})
	want("committed after the read", v, res, err, "ran s1", true, 0, 2, 1)
	// Expired: run again.
	stale := read("s1")
	clk.Advance(time.Minute)
	v, res, err = run("s1", stale)
	want("expired", v, res, err, "ran s1", false, 0, 3, 2)
	// Without an entry, Run reads it itself.
	v, res, err = run("s1", nil)
	want("no entry handed over", v, res, err, "ran s1", true, 1, 3, 2)
	// An entry without a mark is not taken either.
	v, res, err = ledger.Run(t.Context(), l, ledger.Call{Kind: kind, Secret: "s1", Window: time.Minute, Entry: &flashauth.LedgerEntry{}},
		func(context.Context) (verdict, ledger.Writes, error) {
			return verdict{Value: "unmarked"}, ledger.Writes{}, nil
		})
	want("no mark", v, res, err, "ran s1", true, 2, 3, 2)
}

// A caller that read the entry while an attempt at its key was in flight
// in this process, and gets to Run after that attempt ended, would hold an
// entry older than the commit: Run reads it again (the mark says an
// attempt ended), so the caller is replayed the outcome - not charged
// BeforeClaim, as it would not have been had it joined the attempt.
func TestRunRereadsAnEntryReadBeforeAnAttemptEnded(t *testing.T) {
	db := sqlitetest.Open(t)
	st := &countedReads{LedgerStore: db}
	var gates atomic.Int64
	l := ledger.New(st, ledger.Options{Clock: newClock(), BeforeClaim: func(context.Context, string, []byte) error {
		gates.Add(1)
		return nil
	}})
	h := seal.Hash("s")
	call := ledger.Call{Kind: kind, Secret: "s", Hash: h, Window: time.Minute}
	release := make(chan struct{})
	var calls atomic.Int64
	op := func(context.Context) (verdict, ledger.Writes, error) {
		calls.Add(1)
		<-release
		return verdict{Value: "first"}, ledger.Writes{}, nil
	}
	first := make(chan error, 1)
	go func() {
		_, _, err := ledger.Run(context.Background(), l, call, op)
		first <- err
	}()
	testkit.WaitUntil(t, "the first attempt running", func() bool { return calls.Load() == 1 })

	// The second caller's mark and read happen while the attempt runs...
	late := call
	late.Mark = l.Mark(h)
	e, err := db.GetLedger(t.Context(), kind, h)
	if err != nil || e.State != flashauth.LedgerPending {
		t.Fatalf("entry during the attempt: %+v, %v; want it pending", e, err)
	}
	late.Entry = &e
	// ... and it gets to Run once the attempt has committed and ended.
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	v, res, err := ledger.Run(context.Background(), l, late, op)
	if err != nil || !res.Replayed || v.Value != "first" {
		t.Fatalf("late caller: %+v %+v %v; want the committed outcome replayed", v, res, err)
	}
	if gates.Load() != 1 || calls.Load() != 1 || st.gets.Load() != 2 {
		t.Fatalf("BeforeClaim %d, op %d, GetLedger %d; want 1, 1 and 2 (the first caller's and the late caller's own)",
			gates.Load(), calls.Load(), st.gets.Load())
	}
}

// box is a verdict's pointer: callers that shared one would see each
// other's changes.
type box struct {
	S string `json:"s"`
	N []int  `json:"n"`
}

type boxVerdict struct {
	Box *box `json:"box"`
}

func (boxVerdict) Err() error { return nil }

// answer is what one caller of Run got.
type answer[T ledger.Verdict] struct {
	v   T
	res ledger.Result
	err error
}

// leaderAndJoiner runs call twice at once: a leader whose op (made) waits
// until a second caller has joined its attempt, and that joiner; then a
// third caller, which replays the committed outcome. op must run once.
func leaderAndJoiner[T ledger.Verdict](t *testing.T, l *ledger.Ledger, call ledger.Call, made T) (a, j, r answer[T]) {
	t.Helper()
	release := make(chan struct{})
	var calls atomic.Int64
	op := func(context.Context) (T, ledger.Writes, error) {
		calls.Add(1)
		<-release
		return made, ledger.Writes{}, nil
	}
	leader, joiner := make(chan answer[T], 1), make(chan answer[T], 1)
	run := func(to chan<- answer[T]) {
		v, res, err := ledger.Run(context.Background(), l, call, op)
		to <- answer[T]{v, res, err}
	}
	go run(leader)
	testkit.WaitUntil(t, "the leader's op running", func() bool { return calls.Load() == 1 })
	go run(joiner)
	// Leader and joiner both parked in the attempt before it may end.
	testkit.WaitUntil(t, "the joiner parked", func() bool { return testkit.Parked("/ledger.(*Ledger).do(") >= 2 })
	close(release)
	a, j = <-leader, <-joiner
	replay := make(chan answer[T], 1)
	run(replay)
	r = <-replay
	if calls.Load() != 1 {
		t.Fatalf("op ran %d times, want 1", calls.Load())
	}
	if a.err != nil || a.res.Joined || a.res.Replayed {
		t.Fatalf("leader: %+v; want op's own verdict", a)
	}
	if j.err != nil || !j.res.Joined || r.err != nil || !r.res.Replayed {
		t.Fatalf("joiner %+v, replay %+v; want joined and replayed", j, r)
	}
	return a, j, r
}

// The caller whose op ran gets the very verdict op returned (no decode of
// its encoding); a caller that joined the attempt and one that replays it
// later decode their own copies of what was committed: equal to the
// leader's, sharing nothing with it or with each other.
func TestRunLeaderKeepsItsVerdictOthersDecodeTheirOwn(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	made := &box{S: "v", N: []int{1, 2, 3}}
	a, j, r := leaderAndJoiner(t, l, ledger.Call{Kind: kind, Secret: "s", Window: time.Minute}, boxVerdict{Box: made})
	if a.v.Box != made {
		t.Fatalf("leader: %+v; want op's own verdict", a)
	}
	want := box{S: "v", N: []int{1, 2, 3}}
	for name, got := range map[string]*box{"joiner": j.v.Box, "replay": r.v.Box} {
		if got == nil || !reflect.DeepEqual(*got, want) {
			t.Fatalf("%s: %+v, want %+v", name, got, want)
		}
	}
	if j.v.Box == made || r.v.Box == made || j.v.Box == r.v.Box {
		t.Fatal("callers share a verdict's pointer")
	}
	j.v.Box.N[0], r.v.Box.N[1] = 7, 8
	if !reflect.DeepEqual(*made, want) || j.v.Box.N[1] != 2 || r.v.Box.N[0] != 1 {
		t.Fatalf("callers share a verdict's slice: leader %v, joiner %v, replay %v", made.N, j.v.Box.N, r.v.Box.N)
	}
}

// decodes counts how often a copyVerdict was decoded from JSON.
var decodes atomic.Int64

// copyVerdict is a ledger.Copier.
type copyVerdict struct {
	Box *box `json:"box"`
}

func (copyVerdict) Err() error { return nil }

func (v copyVerdict) Copy() copyVerdict {
	b := *v.Box
	b.N = append([]int(nil), b.N...)
	return copyVerdict{Box: &b}
}

func (v *copyVerdict) UnmarshalJSON(b []byte) error {
	decodes.Add(1)
	type plain copyVerdict // without this method
	return json.Unmarshal(b, (*plain)(v))
}

// A caller that joins the attempt of a Copier verdict gets the Copy of the
// leader's verdict, decoding nothing; a replay still decodes what was
// committed.
func TestRunJoinerCopiesACopierVerdict(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	made := &box{S: "v", N: []int{1, 2, 3}}
	decodes.Store(0)
	a, j, r := leaderAndJoiner(t, l, ledger.Call{Kind: kind, Secret: "s", Window: time.Minute}, copyVerdict{Box: made})
	if a.v.Box != made {
		t.Fatalf("leader: %+v; want op's own verdict", a)
	}
	want := box{S: "v", N: []int{1, 2, 3}}
	if j.v.Box == nil || j.v.Box == made || !reflect.DeepEqual(*j.v.Box, want) || !reflect.DeepEqual(*r.v.Box, want) {
		t.Fatalf("joiner %+v, replay %+v; want equal copies of %+v", j.v.Box, r.v.Box, want)
	}
	if n := decodes.Load(); n != 1 {
		t.Fatalf("verdict decoded %d times, want 1 (the replay's)", n)
	}
}
