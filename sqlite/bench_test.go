package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"

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
// them as under load: the one read of the lineage and the ledger entry
// (read pool), the claim, the completion with two lineage upserts, and one
// audit row (the app queues audits and appends them in batches). Each
// worker presents the token its previous refresh rotated to, as the
// ledger key. An op is one refresh; writes/commit is the mean batch size,
// pages/op the database pages the writer appended to the WAL per refresh
// (SQLite's own count, SQLITE_DBSTATUS_CACHE_WRITE: one WAL frame each).
func BenchmarkRefreshWrites(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	var n atomic.Int64
	report := meterWrites(b, db)
	b.RunParallel(func(pb *testing.PB) {
		// Each worker refreshes its own lineage: the token it presents is
		// the one its previous refresh rotated to (known after the first).
		old := seal.Hash(fmt.Sprint("worker ", n.Add(1)))
		for pb.Next() {
			i := n.Add(1)
			now := time.Now()
			next := seal.Hash(fmt.Sprint("token ", i))
			if ll, err := db.GetLineageLedger(ctx, flashauth.LedgerGitHubRefresh, old); err != nil || ll.HasEntry {
				b.Fatal(ll.HasEntry, err)
			}
			claimID := fmt.Sprint("c", i)
			if _, held, err := db.ClaimLedger(ctx, flashauth.LedgerGitHubRefresh, old, claimID, now, now.Add(time.Minute)); err != nil || !held {
				b.Fatal(held, err)
			}
			lin := []flashauth.Lineage{
				{TokenHash: old, UserID: "u", ReplacedBy: next, CreatedAt: now, RotatedAt: now},
				{TokenHash: next, ParentHash: old, UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
			}
			if err := db.CompleteLedger(ctx, flashauth.LedgerGitHubRefresh, old, claimID, make([]byte, 200), now.Add(time.Minute), lin); err != nil {
				b.Fatal(err)
			}
			old = next
			if err := db.AppendAudits(ctx, []flashauth.AuditEvent{{Time: now, Type: "token.refresh", Outcome: "success", UserID: "u", RequestID: "r"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	report()
}

// meterWrites sets b up as the write benchmarks run: 32 concurrent callers,
// allocations reported, the counters read now. report, called once the
// callers are done, stops the timer and reports per op the process's CPU
// time (every goroutine: the callers, the writer, SQLite), the writer's
// mean batch, the pages the writer wrote to the WAL and the pages the
// read pool fetched from the files.
func meterWrites(b *testing.B, db *DB) (report func()) {
	b.Helper()
	batches, items := db.w.batches.Load(), db.w.items.Load()
	pages0, misses0 := writerPages(b, db), readerMisses(b, db)
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	cpu0, cpuOK := cpuTime()
	b.ResetTimer()
	return func() {
		b.StopTimer()
		if cpu1, ok := cpuTime(); ok && cpuOK {
			b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
		}
		if c := db.w.batches.Load() - batches; c > 0 {
			b.ReportMetric(float64(db.w.items.Load()-items)/float64(c), "writes/commit")
		}
		b.ReportMetric(float64(writerPages(b, db)-pages0)/float64(b.N), "pages/op")
		b.ReportMetric(float64(readerMisses(b, db)-misses0)/float64(b.N), "read-misses/op")
	}
}

// writerPages returns how many pages the writer connection wrote so far
// (SQLITE_DBSTATUS_CACHE_WRITE; in WAL mode, one WAL frame per page and
// commit).
func writerPages(tb testing.TB, db *DB) int {
	tb.Helper()
	return dbStatus(tb, db.write, 1, sqlite.DBStatusCacheWrite)
}

// readerMisses returns how many pages the read pool's connections fetched
// from the files so far (SQLITE_DBSTATUS_CACHE_MISS: a pread each).
func readerMisses(tb testing.TB, db *DB) int {
	tb.Helper()
	return dbStatus(tb, db.read, db.read.Stats().OpenConnections, sqlite.DBStatusCacheMiss)
}

// dbStatus sums the counter op over n connections of pool, held at once so
// that each is a different one; the pool must be idle and hold at most n.
func dbStatus(tb testing.TB, pool *sql.DB, n int, op sqlite.DBStatusOp) int {
	tb.Helper()
	sum := 0
	for range n {
		c, err := pool.Conn(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		defer c.Close()
		if err := c.Raw(func(dc any) error {
			v, _, err := dc.(sqlite.DBStatus).Status(op, false)
			sum += v
			return err
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return sum
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
	report := meterWrites(b, db) // the sessions' creation included
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
	report()
}
