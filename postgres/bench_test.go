//go:build linux

package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
	"github.com/flashbacktech/flashauth/seal"
)

// BenchmarkRefreshWrites: what one refresh of the unique scenario asks of
// the store, from 32 concurrent callers as under load: the read of lineage
// and ledger entry, the claim, the completion with two lineage upserts, and
// one audit row, appended in batches by one goroutine off the callers'
// path (as app's queue does). Each worker presents the token its previous
// refresh rotated to. An op is one refresh. pg-cpu-ns/op is the CPU of the
// database server's processes serving the store's connections (from /proc,
// Linux only); cpu-ns/op this process's.
func BenchmarkRefreshWrites(b *testing.B) {
	benchRefreshWrites(b, 32)
}

// BenchmarkRefreshWritesOne is BenchmarkRefreshWrites with one caller: each
// refresh waits for the store alone, as at one worker.
func BenchmarkRefreshWritesOne(b *testing.B) {
	benchRefreshWrites(b, 1)
}

func benchRefreshWrites(b *testing.B, workers int) {
	url := pgtest.URL(b)
	app := "bench" + strconv.FormatInt(time.Now().UnixNano(), 36)
	db, err := postgres.Open(context.Background(), withParam(b, url, "application_name", app))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	audits := make(chan flashauth.AuditEvent, 1024)
	var auditWG sync.WaitGroup
	auditWG.Go(func() {
		for e := range audits {
			batch := []flashauth.AuditEvent{e}
		more:
			for len(batch) < 256 {
				select {
				case e, ok := <-audits:
					if !ok {
						break more
					}
					batch = append(batch, e)
				default:
					break more
				}
			}
			if err := db.AppendAudits(ctx, batch); err != nil {
				b.Error(err)
			}
		}
	})

	var n atomic.Int64
	refresh := func(old []byte) []byte {
		i := n.Add(1)
		now := time.Now()
		key := seal.Hash(fmt.Sprint(app, " token ", i))
		if _, err := db.GetLineageLedger(ctx, flashauth.LedgerGitHubRefresh, old); err != nil {
			b.Fatal(err)
		}
		claimID := fmt.Sprint("c", i)
		if _, held, err := db.ClaimLedger(ctx, flashauth.LedgerGitHubRefresh, old, claimID, now, now.Add(time.Minute)); err != nil || !held {
			b.Fatal(held, err)
		}
		lin := []flashauth.Lineage{
			{TokenHash: old, UserID: "u", ReplacedBy: key, CreatedAt: now, RotatedAt: now},
			{TokenHash: key, ParentHash: old, UserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		}
		if err := db.CompleteLedger(ctx, flashauth.LedgerGitHubRefresh, old, claimID, make([]byte, 300), now.Add(time.Minute), lin); err != nil {
			b.Fatal(err)
		}
		audits <- flashauth.AuditEvent{Time: now, Type: "github_refresh", Outcome: "ok", UserID: "u", RequestID: "r"}
		return key
	}
	// Warm up: every connection the workers will use is open before the
	// clock starts, so that /proc shows them all.
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { refresh(seal.Hash(fmt.Sprint(app, " warm ", w))) })
	}
	wg.Wait()
	pids := backendPIDs(b, url, app)
	pg0 := procCPU(pids)
	cpu0, cpuOK := cpuTime()
	b.SetParallelism(max(1, workers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	if workers == 1 {
		old := seal.Hash(app + " worker")
		for range b.N {
			old = refresh(old)
		}
	} else {
		b.RunParallel(func(pb *testing.PB) {
			old := seal.Hash(fmt.Sprint(app, " worker ", n.Add(1)))
			for pb.Next() {
				old = refresh(old)
			}
		})
	}
	close(audits)
	auditWG.Wait()
	b.StopTimer()
	if cpu1, ok := cpuTime(); ok && cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	if pg1 := procCPU(backendPIDs(b, url, app)); pg1 > 0 {
		b.ReportMetric(float64(pg1-pg0)/float64(b.N), "pg-cpu-ns/op")
	}
}

// backendPIDs returns the server processes of the connections named app.
func backendPIDs(b *testing.B, url, app string) []int {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		b.Fatal(err)
	}
	return pids
}

// procCPU sums the user and system time of pids, from /proc; 0 where there
// is no /proc.
func procCPU(pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(fields) < 13 {
			continue
		}
		u, err1 := strconv.ParseInt(fields[11], 10, 64)
		st, err2 := strconv.ParseInt(fields[12], 10, 64)
		if errors.Join(err1, err2) == nil {
			ticks += u + st
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
