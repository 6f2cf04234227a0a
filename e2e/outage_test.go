package e2e

import (
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// Phases of the outage test.
const (
	phaseBefore   int32 = iota // the database is reachable
	phaseCut                   // every connection is cut, new ones refused
	phaseRecovery              // reachable again, replicas not yet ready
	phaseAfter                 // every replica's /readyz answered 200 again
)

// attempt is one refresh of the load loop.
type attempt struct {
	token        string
	phase        int32 // when the request was sent
	endPhase     int32 // when its answer came
	status       int
	code         string
	retryAfter   string
	refreshToken string
	err          error
}

// TestStoreOutageUnderLoad cuts PostgreSQL away from two replicas, through a
// TCP proxy, while a load loop refreshes distinct tokens. While the database
// is away: 503 STORE_UNAVAILABLE with Retry-After, /readyz 503, never an
// upstream error. Afterwards: 200s by themselves. And no rotation lost or
// duplicated: every token is refreshed at GitHub at most once, every refresh
// that answered 200 handed out a working token, and every token that got a
// 503 was left intact and refreshes when retried.
func TestStoreOutageUnderLoad(t *testing.T) {
	dbURL := pgtest.URL(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	b := newTestbed(t)
	rs := b.start(2, b.env(proxy.url(t, dbURL), "FLASHAUTH_UPSTREAM_TIMEOUT", "1s"))

	// GitHub takes a while, so some refreshes are there when the cut comes:
	// their commit fails, and they must still answer the rotated token.
	b.up.emu.SetLatency(30 * time.Millisecond)
	var phase atomic.Int32
	load := startLoad(b, rs, &phase)
	waitFor(t, "20 refreshes before the cut", 15*time.Second, func() bool { return load.ok(phaseBefore) >= 20 })

	phase.Store(phaseCut)
	cutAt := time.Now()
	if n := proxy.cut(); n == 0 {
		t.Fatal("no database connection to cut")
	}
	for _, r := range rs {
		waitFor(t, r.name+" /readyz 503 during the cut", 10*time.Second, func() bool {
			a, err := b.readyz(r.URL)
			if err != nil || a.Status != http.StatusServiceUnavailable {
				return false
			}
			if a.field("error_code") != flashauth.CodeStoreUnavailable || a.Header.Get("Retry-After") == "" {
				t.Fatalf("%s /readyz during the cut: %s, Retry-After %q", r.name, a, a.Header.Get("Retry-After"))
			}
			return true
		})
	}
	time.Sleep(time.Until(cutAt.Add(2 * time.Second)))
	phase.Store(phaseRecovery)
	proxy.restore()
	for _, r := range rs {
		waitFor(t, r.name+" /readyz 200 after the cut", 15*time.Second, func() bool {
			a, err := b.readyz(r.URL)
			return err == nil && a.Status == http.StatusOK
		})
	}
	phase.Store(phaseAfter)
	waitFor(t, "20 refreshes after recovery", 15*time.Second, func() bool { return load.ok(phaseAfter) >= 20 })
	attempts := load.stop()
	b.up.emu.SetLatency(0)

	// What the clients saw.
	counts := map[int32]map[string]int{}
	var unavailable []attempt
	for _, a := range attempts {
		if counts[a.phase] == nil {
			counts[a.phase] = map[string]int{}
		}
		key := http.StatusText(a.status) + " " + a.code
		if a.err != nil {
			key = "transport error"
		}
		counts[a.phase][key]++
		switch {
		case a.err != nil:
			t.Errorf("phase %d: a replica did not answer: %v", a.phase, a.err)
		case a.status == http.StatusOK:
		case a.status == http.StatusServiceUnavailable && a.code == flashauth.CodeStoreUnavailable:
			if a.retryAfter == "" {
				t.Errorf("phase %d: 503 STORE_UNAVAILABLE without Retry-After", a.phase)
			}
			if a.endPhase == phaseBefore || a.phase == phaseAfter {
				t.Errorf("phase %d: 503 STORE_UNAVAILABLE while the database was reachable and the replicas ready", a.phase)
			}
			unavailable = append(unavailable, a)
		default:
			t.Errorf("phase %d: answer %d %s, want 200 or 503 STORE_UNAVAILABLE", a.phase, a.status, a.code)
		}
	}
	t.Logf("answers by phase (before, cut, recovery, after): %v", counts)
	straddled := 0
	for _, a := range attempts {
		if a.phase == phaseBefore && a.endPhase != phaseBefore && a.status == http.StatusOK {
			straddled++
		}
	}
	t.Logf("%d refreshes were at GitHub when the database went away and answered 200", straddled)
	if counts[phaseCut]["Service Unavailable "+flashauth.CodeStoreUnavailable] == 0 {
		t.Fatal("no request answered 503 STORE_UNAVAILABLE during the cut: the test did not test anything")
	}
	if t.Failed() {
		return
	}

	// Nothing half-written: a token that got a 503 was not spent, and a
	// retry refreshes it (after at most a lease, should the claim's commit
	// have reached the database while its answer did not).
	retryStart := time.Now()
	retried := parallel(unavailable, func(a attempt) attempt {
		ans, err := b.refresh(rs[0].URL, a.token)
		a.status, a.code, a.refreshToken, a.err = ans.Status, ans.field("error_code"), ans.field("refreshToken"), err
		return a
	})
	t.Logf("recovery took %s; the retries of the 503s %s", retryStart.Sub(cutAt), time.Since(retryStart))
	var done []attempt
	for _, a := range attempts {
		if a.status == http.StatusOK {
			done = append(done, a)
		}
	}
	for _, a := range retried {
		if a.err != nil || a.status != http.StatusOK {
			t.Errorf("retry of a token that got 503: %v %d %s", a.err, a.status, a.code)
			continue
		}
		done = append(done, a)
	}
	if t.Failed() {
		return
	}

	// No duplicated rotation: each token reached GitHub exactly once. No
	// lost rotation: each token handed out refreshes in turn.
	for _, a := range done {
		if n := len(b.up.refreshesOf(a.token)); n != 1 {
			t.Errorf("a token was refreshed %d times at GitHub, want 1", n)
		}
	}
	next := parallel(done, func(a attempt) attempt {
		ans, err := b.refresh(rs[1].URL, a.refreshToken)
		return attempt{token: a.refreshToken, status: ans.Status, code: ans.field("error_code"), err: err}
	})
	for _, a := range next {
		if a.err != nil || a.status != http.StatusOK {
			t.Errorf("refresh of a token handed out by the load: %v %d %s", a.err, a.status, a.code)
		}
	}
	t.Logf("%d tokens refreshed, %d of them after a 503; every rotated token refreshed again", len(done), len(retried))
}

// loadLoop refreshes fresh tokens from a few workers, alternating replicas,
// until stopped or maxAttempts have been sent.
type loadLoop struct {
	stopc chan struct{}
	wg    sync.WaitGroup

	mu       sync.Mutex
	attempts []attempt
}

const (
	loadWorkers = 4
	maxAttempts = 4000
)

func startLoad(b *testbed, rs []*replica, phase *atomic.Int32) *loadLoop {
	l := &loadLoop{stopc: make(chan struct{})}
	var sent atomic.Int64
	for w := range loadWorkers {
		l.wg.Go(func() {
			for i := w; sent.Add(1) <= maxAttempts; i++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				a := attempt{token: b.grant(), phase: phase.Load()}
				ans, err := b.refresh(rs[i%len(rs)].URL, a.token)
				a.endPhase = phase.Load()
				a.err, a.status, a.code = err, ans.Status, ans.field("error_code")
				a.retryAfter, a.refreshToken = ans.Header.Get("Retry-After"), ans.field("refreshToken")
				l.mu.Lock()
				l.attempts = append(l.attempts, a)
				l.mu.Unlock()
				time.Sleep(20 * time.Millisecond) // a steady trickle, not a flood
			}
		})
	}
	return l
}

// ok counts the 200s of requests sent in phase p.
func (l *loadLoop) ok(p int32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.attempts {
		if a.phase == p && a.status == http.StatusOK {
			n++
		}
	}
	return n
}

// stop ends the loop and returns every attempt.
func (l *loadLoop) stop() []attempt {
	close(l.stopc)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.attempts
}

// parallel applies fn to each item with a few goroutines.
func parallel(items []attempt, fn func(attempt) attempt) []attempt {
	out := make([]attempt, len(items))
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(items); i = int(next.Add(1)) - 1 {
				out[i] = fn(items[i])
			}
		})
	}
	wg.Wait()
	return out
}
