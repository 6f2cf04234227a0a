package storesql

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flashbacktech/flashauth"
)

// The stores' behaviour is held by storetest; this pins the one thing a
// dialect changes: numbered placeholders count the arguments in order.
func TestAuditQueryPlaceholders(t *testing.T) {
	numbered := AuditDialect{TimeColumn: "occurred_at", TypeColumn: "event_type",
		Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
		Time:        func(t time.Time) any { return t.UnixMilli() }}
	since := time.UnixMilli(1764120000000)
	tests := []struct {
		name     string
		f        flashauth.AuditFilter
		wantQ    string
		wantArgs []any
	}{
		{"limit only", flashauth.AuditFilter{Limit: 5},
			"SELECT id, occurred_at, event_type, outcome, user_id, session_id, ip_address, request_id, detail FROM audit_events ORDER BY id DESC LIMIT $1",
			[]any{5}},
		{"user and since", flashauth.AuditFilter{UserID: "u1", Since: since, Limit: 5},
			"SELECT id, occurred_at, event_type, outcome, user_id, session_id, ip_address, request_id, detail FROM audit_events WHERE user_id = $1 AND occurred_at >= $2 ORDER BY id DESC LIMIT $3",
			[]any{"u1", int64(1764120000000), 5}},
		{"since only", flashauth.AuditFilter{Since: since, Limit: 2},
			"SELECT id, occurred_at, event_type, outcome, user_id, session_id, ip_address, request_id, detail FROM audit_events WHERE occurred_at >= $1 ORDER BY id DESC LIMIT $2",
			[]any{int64(1764120000000), 2}},
	}
	for _, tc := range tests {
		q, args := numbered.AuditQuery(tc.f)
		if q != tc.wantQ {
			t.Errorf("%s: query\n%s\nwant\n%s", tc.name, q, tc.wantQ)
		}
		if diff := cmp.Diff(tc.wantArgs, args); diff != "" {
			t.Errorf("%s: args -want +got:\n%s", tc.name, diff)
		}
	}
}
