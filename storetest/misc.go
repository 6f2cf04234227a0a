package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/seal"
)

// testTimes checks that times keep millisecond precision, whatever their
// location, and that zero times stay zero.
func testTimes(t *testing.T, open func(*testing.T) flashauth.Store) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"zero", time.Time{}, time.Time{}},
		{"whole milliseconds", base, base},
		{"sub-millisecond part is dropped", base.Add(123*time.Millisecond + 456789), base.Add(123 * time.Millisecond)},
		{"other location", base.In(paris).Add(7 * time.Millisecond), base.Add(7 * time.Millisecond)},
		{"far future", time.Date(2200, 1, 2, 3, 4, 5, 6e6, time.UTC), time.Date(2200, 1, 2, 3, 4, 5, 6e6, time.UTC)},
	}
	st := open(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := seal.Hash("time-" + tc.name)
			in := flashauth.Lineage{TokenHash: h, CreatedAt: tc.in, RotatedAt: tc.in, ExpiresAt: tc.in}
			must(t, "PutLineage", st.PutLineage(t.Context(), in))
			got, err := st.GetLineage(t.Context(), h)
			must(t, "GetLineage", err)
			for _, v := range []time.Time{got.CreatedAt, got.RotatedAt, got.ExpiresAt} {
				if !v.Equal(tc.want) || v.IsZero() != tc.want.IsZero() {
					t.Errorf("stored %v, read back %v, want %v", tc.in, v, tc.want)
				}
			}
			e := flashauth.AuditEvent{Time: tc.in, Type: "time", Outcome: "ok", Detail: tc.name}
			must(t, "AppendAudit", st.AppendAudit(t.Context(), e))
			events, err := st.ListAudit(t.Context(), 1)
			must(t, "ListAudit", err)
			if len(events) != 1 || !events[0].Time.Equal(tc.want) || events[0].Time.IsZero() != tc.want.IsZero() {
				t.Errorf("case %d: audit time %v, want %v", i, events, tc.want)
			}
		})
	}
}

// testNotFound checks that every lookup of something that was never stored
// answers ErrNotFound.
func testNotFound(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"GetLedger", func() error { _, err := st.GetLedger(t.Context(), kind, seal.Hash("x")); return err }},
		{"GetLineage", func() error { _, err := st.GetLineage(t.Context(), seal.Hash("x")); return err }},
		{"GetUser", func() error { _, err := st.GetUser(t.Context(), "x"); return err }},
		{"GetOrganization", func() error { _, err := st.GetOrganization(t.Context(), "x"); return err }},
		{"GetSession", func() error { _, err := st.GetSession(t.Context(), "x"); return err }},
		{"FindSessionByRefresh", func() error { _, _, err := st.FindSessionByRefresh(t.Context(), seal.Hash("x")); return err }},
		{"TouchSession", func() error { return st.TouchSession(t.Context(), "x", base) }},
		{"RevokeSession", func() error { return st.RevokeSession(t.Context(), "x", base) }},
		{"TakeOAuthState", func() error { _, err := st.TakeOAuthState(t.Context(), seal.Hash("x"), base); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name, tc.call(), flashauth.ErrNotFound)
		})
	}
	n, err := st.RevokeUserSessions(t.Context(), "x", base)
	must(t, "RevokeUserSessions of an unknown user", err)
	if n != 0 {
		t.Errorf("RevokeUserSessions of an unknown user revoked %d", n)
	}
}

func testPing(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	must(t, "Ping", st.Ping(t.Context()))
}

// concurrently runs f(0), ..., f(n-1) at the same time and returns their
// results in order: the races the conformance suite holds a store to.
func concurrently[R any](n int, f func(i int) R) []R {
	results := make([]R, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = f(i) })
	}
	wg.Wait()
	return results
}
