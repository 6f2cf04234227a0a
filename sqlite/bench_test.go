package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// The floor under flashauth's SQLite path: what modernc's SQLite costs per
// statement and per transaction on this machine, without HTTP, JSON or
// sealing. docs/benchmarks.md quotes them.
//
//	go test -run '^$' -bench . -benchtime 20000x ./sqlite

func benchDB(b *testing.B) *DB {
	b.Helper()
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkGetLineage: one prepared point read on the read pool (a hit).
func BenchmarkGetLineage(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	h := seal.Hash("lineage")
	if err := db.PutLineage(ctx, flashauth.Lineage{TokenHash: h, CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := db.GetLineage(ctx, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSelectOne: the cheapest statement there is, through
// database/sql and a prepared statement: the per-statement overhead alone.
func BenchmarkSelectOne(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	st, err := db.read.PrepareContext(ctx, `SELECT 1`)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var n int
	for b.Loop() {
		if err := st.QueryRowContext(ctx).Scan(&n); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimLedger: one claim, alone in its write transaction (BEGIN
// IMMEDIATE, a SELECT and an INSERT, COMMIT with its WAL append), as a
// request on an idle server pays it.
func BenchmarkClaimLedger(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	now := time.Now()
	i := 0
	for b.Loop() {
		i++
		if _, held, err := db.ClaimLedger(ctx, flashauth.LedgerGitHubRefresh, seal.Hash(fmt.Sprint("claim ", i)), "c", now, now.Add(time.Minute)); err != nil || !held {
			b.Fatal(held, err)
		}
	}
}

// BenchmarkEmptyWriteTx: a write transaction that writes nothing (BEGIN
// IMMEDIATE, COMMIT) through the writer goroutine: the fixed cost of a
// commit and of the hand-off to the writer.
func BenchmarkEmptyWriteTx(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	for b.Loop() {
		if err := db.writeTx(ctx, "bench", func(context.Context, *wtx) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefreshWrites: what one refresh of the unique scenario asks of
// the store, from 32 concurrent callers so that the writer group-commits
// them as under load: the ledger pre-read and the lineage read (read pool),
// the claim, the completion with two lineage upserts, and one audit row
// (the app queues audits and appends them in batches). Each worker
// presents the token its previous refresh rotated to. An op is one
// refresh; writes/commit is the mean batch size.
func BenchmarkRefreshWrites(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	var n atomic.Int64
	batches, items := db.w.batches.Load(), db.w.items.Load()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	cpu0, cpuOK := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each worker refreshes its own lineage: the token it presents is
		// the one its previous refresh rotated to (known after the first).
		old := seal.Hash(fmt.Sprint("worker ", n.Add(1)))
		for pb.Next() {
			i := n.Add(1)
			now := time.Now()
			key := seal.Hash(fmt.Sprint("token ", i))
			if _, err := db.GetLedger(ctx, flashauth.LedgerGitHubRefresh, key); !errors.Is(err, flashauth.ErrNotFound) {
				b.Fatal(err)
			}
			if _, err := db.GetLineage(ctx, old); err != nil && !errors.Is(err, flashauth.ErrNotFound) {
				b.Fatal(err)
			}
			claimID := fmt.Sprint("c", i)
			if _, held, err := db.ClaimLedger(ctx, flashauth.LedgerGitHubRefresh, key, claimID, now, now.Add(time.Minute)); err != nil || !held {
				b.Fatal(held, err)
			}
			lin := []flashauth.Lineage{
				{TokenHash: old, UserID: "u", ReplacedBy: key, CreatedAt: now, RotatedAt: now},
				{TokenHash: key, ParentHash: old, UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
			}
			if err := db.CompleteLedger(ctx, flashauth.LedgerGitHubRefresh, key, claimID, make([]byte, 200), now.Add(time.Minute), lin); err != nil {
				b.Fatal(err)
			}
			old = key
			if err := db.AppendAudits(ctx, []flashauth.AuditEvent{{Time: now, Type: "token.refresh", Outcome: "success", UserID: "u", RequestID: "r"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	if cpu1, ok := cpuTime(); ok && cpuOK {
		// Every goroutine of the process: the callers, the writer, SQLite.
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	if c := db.w.batches.Load() - batches; c > 0 {
		b.ReportMetric(float64(db.w.items.Load()-items)/float64(c), "writes/commit")
	}
}

// BenchmarkSessionRefreshWrites: what one session refresh asks of the
// store, from 32 concurrent callers (each rotating its own session, as the
// session scenario does): one read of the session, its user and the
// token's ledger entry, and the rotation committed with its verdict. An op
// is one refresh. (Before, it was three reads and three write
// transactions: the claim, the rotation, the completion.)
func BenchmarkSessionRefreshWrites(b *testing.B) {
	const kind = flashauth.LedgerSessionRefresh
	db := benchDB(b)
	ctx := context.Background()
	now := time.Now()
	if _, _, err := db.UpsertGitHubUser(ctx, flashauth.User{ID: "u", GitHubID: 1, CreatedAt: now},
		flashauth.Organization{ID: "o", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	cpu0, cpuOK := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprint("s", n.Add(1))
		old := seal.Hash("first of " + id)
		if err := db.CreateSession(ctx, flashauth.Session{ID: id, UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, old); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			i := n.Add(1)
			next, now := seal.Hash(fmt.Sprint("token ", i)), time.Now()
			r, err := db.GetSessionLedger(ctx, kind, old)
			if err != nil || !r.Current || !r.HasUser || r.HasEntry {
				b.Errorf("read: %+v %v", r, err)
				return
			}
			_, committed, err := db.CommitLedger(ctx, kind, old, fmt.Sprint("c", i), make([]byte, 400), now, now.Add(time.Minute),
				&flashauth.SessionRotation{SessionID: id, OldHash: old, NewHash: next, Now: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil || !committed {
				b.Errorf("commit: %v %v", committed, err)
				return
			}
			old = next
		}
	})
	b.StopTimer()
	if cpu1, ok := cpuTime(); ok && cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}
