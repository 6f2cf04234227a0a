package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/internal/loadgen"
)

// BenchmarkReplicaRefresh drives one real `flashauth serve` process per
// store with the load generator: b.N refreshes from 16 workers, in the
// unique scenario (every request a GitHub call and a ledger commit) and the
// hot one (workers racing on a few lineages: joins and replays). Compare the
// stores with
//
//	FLASHAUTH_TEST_POSTGRES_URL=... go test ./e2e -run '^$' -bench ReplicaRefresh -benchtime 3000x
func BenchmarkReplicaRefresh(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			bed := newTestbed(b)
			r := bed.start(1, bed.env(st.url(b)))[0]
			for _, mode := range []loadgen.Scenario{loadgen.ScenarioUnique, loadgen.ScenarioHot} {
				b.Run(string(mode), func(b *testing.B) {
					rep, err := loadgen.Run(b.Context(), loadgen.Config{
						Targets: []string{r.URL}, Emulator: bed.up.URL, Scenario: mode,
						Concurrency: 16, MaxRequests: b.N, Duration: 10 * time.Minute,
					})
					if err != nil {
						b.Fatal(err)
					}
					if rep.Errors > 0 {
						b.Fatalf("%d requests failed: %v", rep.Errors, rep.Statuses)
					}
					b.ReportMetric(rep.Throughput, "req/s")
					b.ReportMetric(float64(rep.P50)/float64(time.Millisecond), "p50-ms")
					b.ReportMetric(float64(rep.P99)/float64(time.Millisecond), "p99-ms")
				})
			}
		})
	}
}

// BenchmarkCrossReplicaWait measures what polling costs: replica A refreshes
// a token while GitHub takes 100ms; once A holds the claim, replicas B and C
// are asked for the same token and poll the store until A's commit. The
// metric lag-ms is how long after A's answer the later of B's and C's came:
// the price of polling instead of being notified (about half a poll
// interval, which backs off from 20ms to 500ms).
func BenchmarkCrossReplicaWait(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			bed := newTestbed(b)
			rs := bed.start(3, bed.env(st.url(b)))
			bed.up.emu.SetLatency(100 * time.Millisecond)
			var lag time.Duration
			for b.Loop() {
				token := bed.grant()
				var wg sync.WaitGroup
				var doneA time.Time
				wg.Go(func() {
					if a, err := bed.refresh(rs[0].URL, token); err != nil || a.Status != http.StatusOK {
						b.Errorf("%s: %s %v", rs[0].name, a, err)
					}
					doneA = time.Now()
				})
				bed.up.waitRefreshes(b, token, 1, 10*time.Second)
				var mu sync.Mutex
				var last time.Time
				for _, r := range rs[1:] {
					wg.Go(func() {
						if a, err := bed.refresh(r.URL, token); err != nil || a.Status != http.StatusOK {
							b.Errorf("%s: %s %v", r.name, a, err)
						}
						mu.Lock()
						if now := time.Now(); now.After(last) {
							last = now
						}
						mu.Unlock()
					})
				}
				wg.Wait()
				lag += last.Sub(doneA)
			}
			b.ReportMetric(float64(lag)/float64(b.N)/float64(time.Millisecond), "lag-ms")
		})
	}
}
