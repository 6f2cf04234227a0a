package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
)

func testAudit(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	var events []flashauth.AuditEvent
	for i := range 5 {
		e := flashauth.AuditEvent{
			Time: at(time.Duration(i) * time.Second), Type: audit.TypeGitHubRefresh, Outcome: audit.OutcomeOK,
			UserID: fmt.Sprintf("u%d", i), SessionID: fmt.Sprintf("s%d", i), IPAddress: "198.51.100.1",
			RequestID: fmt.Sprintf("req-%d", i), Detail: fmt.Sprintf("event %d", i),
		}
		must(t, "AppendAudit", st.AppendAudit(t.Context(), e))
		events = append(events, e)
	}
	// newestFirst returns the last n appended events, newest first, with
	// the ids the store assigned (taken from got, checked for order).
	newestFirst := func(n int, got []flashauth.AuditEvent) []flashauth.AuditEvent {
		var want []flashauth.AuditEvent
		for i := range min(n, len(events)) {
			e := events[len(events)-1-i]
			if i < len(got) {
				e.ID = got[i].ID
			}
			want = append(want, e)
		}
		return want
	}
	for _, limit := range []int{1, 3, 5, 10} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			got, err := st.ListAudit(t.Context(), limit)
			must(t, "ListAudit", err)
			diff(t, "events", newestFirst(limit, got), got)
			for i := range got {
				if got[i].ID <= 0 || (i > 0 && got[i].ID >= got[i-1].ID) {
					t.Errorf("event ids not assigned in increasing order: %d after %d", got[i].ID, got[max(i-1, 0)].ID)
				}
			}
		})
	}
}

// testAuditQuery: QueryAudit's filters combine with AND, Since is
// inclusive, and the answer is the newest matches first, cut at Limit.
func testAuditQuery(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	var events []flashauth.AuditEvent
	for i := range 6 {
		e := flashauth.AuditEvent{
			Time: at(time.Duration(i) * time.Minute), Type: audit.TypeSignIn, Outcome: audit.OutcomeOK,
			UserID: []string{"alice", "bob"}[i%2], RequestID: fmt.Sprintf("req-%d", i),
		}
		must(t, "AppendAudit", st.AppendAudit(t.Context(), e))
		events = append(events, e)
	}
	// An event recorded without a time matches no Since.
	must(t, "AppendAudit", st.AppendAudit(t.Context(), flashauth.AuditEvent{Type: audit.TypeRevoke, Outcome: audit.OutcomeOK, UserID: "alice", RequestID: "req-untimed"}))
	rows := []struct {
		name string
		f    flashauth.AuditFilter
		want []string // request ids, newest first
	}{
		{"no limit", flashauth.AuditFilter{UserID: "alice"}, nil},
		{"all", flashauth.AuditFilter{Limit: 10}, []string{"req-untimed", "req-5", "req-4", "req-3", "req-2", "req-1", "req-0"}},
		{"user", flashauth.AuditFilter{UserID: "alice", Limit: 10}, []string{"req-untimed", "req-4", "req-2", "req-0"}},
		{"user, limit", flashauth.AuditFilter{UserID: "bob", Limit: 2}, []string{"req-5", "req-3"}},
		{"since is inclusive", flashauth.AuditFilter{Since: at(3 * time.Minute), Limit: 10}, []string{"req-5", "req-4", "req-3"}},
		{"since between events", flashauth.AuditFilter{Since: at(3*time.Minute + time.Millisecond), Limit: 10}, []string{"req-5", "req-4"}},
		{"user and since", flashauth.AuditFilter{UserID: "alice", Since: at(time.Minute), Limit: 10}, []string{"req-4", "req-2"}},
		{"unknown user", flashauth.AuditFilter{UserID: "carol", Limit: 10}, nil},
		{"since after everything", flashauth.AuditFilter{Since: at(time.Hour), Limit: 10}, nil},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.QueryAudit(t.Context(), tc.f)
			must(t, "QueryAudit", err)
			var ids []string
			for _, e := range got {
				ids = append(ids, e.RequestID)
			}
			diff(t, "request ids", tc.want, ids)
		})
	}
	// The events come back whole.
	got, err := st.QueryAudit(t.Context(), flashauth.AuditFilter{UserID: "bob", Since: at(5 * time.Minute), Limit: 1})
	must(t, "QueryAudit", err)
	if len(got) == 1 {
		want := events[5]
		want.ID = got[0].ID
		diff(t, "event", []flashauth.AuditEvent{want}, got)
	} else {
		t.Errorf("QueryAudit returned %d events, want 1", len(got))
	}
}

func testPurgeAudit(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	// Events at 0s..5s, and one without a time.
	for i := range 6 {
		must(t, "AppendAudit", st.AppendAudit(t.Context(), flashauth.AuditEvent{
			Time: at(time.Duration(i) * time.Second), Type: audit.TypeGitHubRefresh, Outcome: audit.OutcomeOK, RequestID: fmt.Sprintf("req-%d", i),
		}))
	}
	must(t, "AppendAudit", st.AppendAudit(t.Context(), flashauth.AuditEvent{Type: audit.TypeSignIn, Outcome: audit.OutcomeOK, RequestID: "req-no-time"}))
	left := func() []string {
		t.Helper()
		got, err := st.ListAudit(t.Context(), 100)
		must(t, "ListAudit", err)
		var ids []string
		for _, e := range got {
			ids = append(ids, e.RequestID)
		}
		return ids
	}
	for _, step := range []struct {
		name   string
		before time.Duration
		limit  int
		want   int64
		left   []string // newest first
	}{
		{"no limit deletes nothing", 10 * time.Second, 0, 0, []string{"req-no-time", "req-5", "req-4", "req-3", "req-2", "req-1", "req-0"}},
		{"nothing older than the first", 0, 10, 1, []string{"req-5", "req-4", "req-3", "req-2", "req-1", "req-0"}},
		{"the limit bounds a call, oldest first", 4 * time.Second, 2, 2, []string{"req-5", "req-4", "req-3", "req-2"}},
		{"strictly older than before", 4 * time.Second, 10, 2, []string{"req-5", "req-4"}},
		{"the rest", time.Hour, 10, 2, nil},
	} {
		n, err := st.PurgeAudit(t.Context(), at(step.before), step.limit)
		must(t, "PurgeAudit", err)
		if n != step.want {
			t.Errorf("%s: PurgeAudit deleted %d, want %d", step.name, n, step.want)
		}
		diff(t, step.name, step.left, left())
	}
}

// testAppendAudits: a batch is stored whole, in slice order (ids grow in
// that order), after what was appended before it; an empty batch is a no-op.
func testAppendAudits(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	must(t, "AppendAudit", st.AppendAudit(t.Context(), flashauth.AuditEvent{Type: "signin", Outcome: "ok", RequestID: "req-first"}))
	must(t, "AppendAudits (empty)", st.AppendAudits(t.Context(), nil))
	var batch []flashauth.AuditEvent
	for i := range 50 {
		batch = append(batch, flashauth.AuditEvent{
			// Times out of order: the store keeps the batch's order, not
			// the events' times.
			Time: at(time.Duration(50-i) * time.Second), Type: audit.TypeGitHubRefresh, Outcome: audit.OutcomeOK,
			UserID: fmt.Sprintf("u%d", i), RequestID: fmt.Sprintf("req-%02d", i),
		})
	}
	must(t, "AppendAudits", st.AppendAudits(t.Context(), batch))
	got, err := st.ListAudit(t.Context(), 100)
	must(t, "ListAudit", err)
	if len(got) != 51 {
		t.Fatalf("ListAudit returned %d events, want 51", len(got))
	}
	var ids []string
	for i := len(got) - 1; i >= 0; i-- { // oldest first
		ids = append(ids, got[i].RequestID)
	}
	want := []string{"req-first"}
	for i := range 50 {
		want = append(want, fmt.Sprintf("req-%02d", i))
	}
	diff(t, "request ids, oldest first", want, ids)
	for i := 1; i < len(got); i++ {
		if got[i].ID >= got[i-1].ID {
			t.Fatalf("ids not increasing in append order: %d after %d", got[i-1].ID, got[i].ID)
		}
	}
	want0 := batch[49]
	want0.ID = got[0].ID
	diff(t, "the last event, whole", want0, got[0])
}
