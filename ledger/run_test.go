package ledger_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/sqlite"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

// verdict is a test outcome: a value, or a committed rejection.
type verdict struct {
	Value string `json:"value,omitempty"`
	Code  string `json:"code,omitempty"`
}

func (v verdict) Err() error {
	if v.Code != "" {
		return flashauth.Errorf(v.Code, "rejected")
	}
	return nil
}

func TestRunCommitsAndReplaysVerdicts(t *testing.T) {
	db := sqlitetest.Open(t)
	l := ledger.New(db, ledger.Options{Clock: newClock()})
	var calls atomic.Int64
	run := func(secret string, v verdict, opErr error) (verdict, ledger.Result, error) {
		return ledger.Run(t.Context(), l, ledger.Call{Kind: kind, Secret: secret, Window: time.Minute},
			func(context.Context) (verdict, ledger.Writes, error) {
				calls.Add(1)
				return v, ledger.Writes{Lineage: []flashauth.Lineage{{TokenHash: seal.Hash("next of " + secret)}}}, opErr
			})
	}
	rows := []struct {
		name, secret string
		give         verdict
		opErr        error
		wantCode     string
		wantCommit   bool
	}{
		{"success", "s-ok", verdict{Value: "v"}, nil, "", true},
		{"committed rejection", "s-rejected", verdict{Code: flashauth.CodeInvalidRefreshToken}, nil, flashauth.CodeInvalidRefreshToken, true},
		{"transient error", "s-transient", verdict{}, flashauth.Errorf(flashauth.CodeUpstreamUnavailable, "later"), flashauth.CodeUpstreamUnavailable, false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			calls.Store(0)
			for i, wantReplayed := range []bool{false, r.wantCommit} {
				got, res, err := run(r.secret, r.give, r.opErr)
				if code := flashauth.ErrorCode(err); (err != nil || r.wantCode != "") && code != r.wantCode {
					t.Fatalf("call %d: err = %v, want code %q", i, err, r.wantCode)
				}
				if res.Replayed != wantReplayed || res.Lost != nil {
					t.Fatalf("call %d: replayed=%v lost=%v, want replayed=%v", i, res.Replayed, res.Lost, wantReplayed)
				}
				if r.wantCommit && got != r.give {
					t.Fatalf("call %d: verdict %+v, want %+v", i, got, r.give)
				}
			}
			if want := map[bool]int64{true: 1, false: 2}[r.wantCommit]; calls.Load() != want {
				t.Fatalf("op ran %d times, want %d", calls.Load(), want)
			}
			_, err := db.GetLineage(t.Context(), seal.Hash("next of "+r.secret))
			if r.wantCommit != (err == nil) {
				t.Fatalf("lineage committed = %v, want %v", err == nil, r.wantCommit)
			}
		})
	}
}

// poison makes SQLite refuse the COMMIT of any transaction that completes
// the ledger entry of secret: a deferred foreign key, checked at COMMIT,
// that a trigger violates. A real database failure, not a mock.
func poison(t *testing.T, db *sqlite.DB, secret string) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, s := range []string{
		`CREATE TABLE poison_parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE poison_child (parent INTEGER REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
		// github_refresh entries live in the lineage table (sqlite migration 0004).
		fmt.Sprintf(`CREATE TRIGGER poison AFTER UPDATE ON lineage
			WHEN NEW.token_hash = x'%x' AND NEW.state = 2
			BEGIN INSERT INTO poison_child VALUES (42); END`, seal.Hash(secret)),
	} {
		if _, err := raw.ExecContext(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
}

// Concurrent operations commit in shared batches (sqlite group commit).
// One of them cannot be committed: its caller is never told it was (it
// gets its verdict marked Lost, the only copy), and a later call runs the
// operation again instead of replaying anything. The others are committed,
// answered, and replay.
func TestRunUnderGroupCommitNeverAnswersAnUncommittedVerdictAsCommitted(t *testing.T) {
	db := sqlitetest.Open(t)
	clk := newClock()
	l := ledger.New(db, ledger.Options{Clock: clk, Lease: 10 * time.Second})
	const n = 16
	secret := func(i int) string { return fmt.Sprintf("secret-%02d", i) }
	const bad = 7
	poison(t, db, secret(bad))

	// Every op waits for all others, so their commits queue together.
	var arrived sync.WaitGroup
	arrived.Add(n)
	type answer struct {
		v   verdict
		res ledger.Result
		err error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, res, err := ledger.Run(context.Background(), l, ledger.Call{Kind: kind, Secret: secret(i), Window: time.Minute},
				func(context.Context) (verdict, ledger.Writes, error) {
					arrived.Done()
					arrived.Wait()
					return verdict{Value: "v" + secret(i)}, ledger.Writes{}, nil
				})
			answers[i] = answer{v, res, err}
		})
	}
	wg.Wait()
	for i, a := range answers {
		if a.err != nil || a.v.Value != "v"+secret(i) || a.res.Replayed {
			t.Fatalf("%s: %+v; want its own fresh verdict", secret(i), a)
		}
		if lost := a.res.Lost != nil; lost != (i == bad) {
			t.Fatalf("%s: lost = %v (%v), want %v", secret(i), lost, a.res.Lost, i == bad)
		}
	}
	if !ledger.IsCommitError(answers[bad].res.Lost) {
		t.Fatalf("lost = %v, want a CommitError", answers[bad].res.Lost)
	}
	// The failed claim blocks its secret until its lease has passed (the
	// op may have spent the secret); then the next caller runs the op.
	clk.Advance(11 * time.Second)
	for i := range n {
		var ran bool
		v, res, err := ledger.Run(context.Background(), l, ledger.Call{Kind: kind, Secret: secret(i), Window: time.Minute},
			func(context.Context) (verdict, ledger.Writes, error) {
				ran = true
				return verdict{Value: "again"}, ledger.Writes{}, nil
			})
		if i == bad {
			// Not replayed: the op runs again (and its commit fails again).
			if !ran || res.Replayed {
				t.Fatalf("%s after a failed commit: ran=%v replayed=%v", secret(i), ran, res.Replayed)
			}
			continue
		}
		if err != nil || ran || !res.Replayed || v.Value != "v"+secret(i) {
			t.Fatalf("%s: %+v %+v %v ran=%v; want its committed verdict replayed", secret(i), v, res, err, ran)
		}
	}
}
