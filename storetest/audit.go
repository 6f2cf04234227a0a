package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
)

func testAudit(t *testing.T, open func(*testing.T) flashauth.Store) {
	st := open(t)
	var events []flashauth.AuditEvent
	for i := range 5 {
		e := flashauth.AuditEvent{
			Time: at(time.Duration(i) * time.Second), Type: "github_refresh", Outcome: "ok",
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
