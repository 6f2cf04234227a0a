package e2e

import (
	"bytes"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth/postgres/pgtest"
)

// stores are the databases the replica tests run on. PostgreSQL skips
// without FLASHAUTH_TEST_POSTGRES_URL; SQLite always runs, with every
// replica on one file, to show the protocol does not depend on the store.
var stores = []struct {
	name string
	url  func(tb testing.TB) string
}{
	{"postgres", pgtest.URL},
	{"sqlite", func(tb testing.TB) string { return "sqlite:" + filepath.Join(tb.TempDir(), "flashauth.db") }},
}

func TestReplicasRefreshExactlyOnce(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			b := newTestbed(t)
			rs := b.start(3, b.env(st.url(t)))
			t.Run("ConcurrentRefreshesOfOneToken", func(t *testing.T) { concurrentRefreshes(t, b, rs) })
			t.Run("RetryAtAnotherReplicaReplays", func(t *testing.T) { retryElsewhere(t, b, rs) })
		})
	}
}

// concurrentRefreshes sends 60 refreshes of one token, spread over the
// replicas, while GitHub takes 200ms to answer so that they overlap: one
// upstream call, 60 identical answers.
func concurrentRefreshes(t *testing.T, b *testbed, rs []*replica) {
	const n = 60
	token := b.grant()
	b.up.emu.SetLatency(200 * time.Millisecond)
	defer b.up.emu.SetLatency(0)

	type result struct {
		a       answer
		err     error
		replica int
		took    time.Duration
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			a, err := b.refresh(rs[i%len(rs)].URL, token)
			results[i] = result{a: a, err: err, replica: i % len(rs), took: time.Since(t0)}
		})
	}
	close(start)
	wg.Wait()

	for i, r := range results {
		if r.err != nil {
			t.Fatalf("request %d at %s: %v", i, rs[r.replica].name, r.err)
		}
		if r.a.Status != http.StatusOK {
			t.Fatalf("request %d at %s: %s %s", i, rs[r.replica].name, r.a, r.a.Body)
		}
		if !bytes.Equal(r.a.Body, results[0].a.Body) {
			t.Fatalf("request %d at %s answered a different body than request 0", i, rs[r.replica].name)
		}
	}
	if got := len(b.up.refreshesOf(token)); got != 1 {
		t.Fatalf("GitHub saw %d refreshes of the token, want exactly 1", got)
	}
	if got := b.up.emu.Calls().TokenRefresh; got != 1 {
		t.Fatalf("the emulator counted %d refresh calls, want exactly 1", got)
	}
	// Not a performance assertion: how long the waiters took shows what
	// polling costs (docs/deploy.md).
	for i, r := range rs {
		var took []time.Duration
		for _, res := range results {
			if res.replica == i {
				took = append(took, res.took)
			}
		}
		slices.Sort(took)
		t.Logf("%s: %d answers, fastest %s, slowest %s", r.name, len(took), took[0], took[len(took)-1])
	}

	// The rotated token is usable: nothing was lost.
	next := results[0].a.field("refreshToken")
	if next == "" || next == token {
		t.Fatalf("the answer carries no rotated refresh token")
	}
	if a := b.mustRefresh(rs[2].URL, next); a.Status != http.StatusOK {
		t.Fatalf("refresh of the rotated token: %s %s", a, a.Body)
	}
}

// retryElsewhere completes a refresh at A and retries it at C: C replays
// A's committed answer without asking GitHub.
func retryElsewhere(t *testing.T, b *testbed, rs []*replica) {
	token := b.grant()
	first := b.mustRefresh(rs[0].URL, token)
	if first.Status != http.StatusOK {
		t.Fatalf("refresh at %s: %s %s", rs[0].name, first, first.Body)
	}
	again := b.mustRefresh(rs[len(rs)-1].URL, token)
	if again.Status != http.StatusOK || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("retry at %s: %s, identical body %v", rs[len(rs)-1].name, again, bytes.Equal(again.Body, first.Body))
	}
	if got := len(b.up.refreshesOf(token)); got != 1 {
		t.Fatalf("GitHub saw %d refreshes of the token, want 1", got)
	}
}
