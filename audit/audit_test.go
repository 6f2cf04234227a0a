package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/internal/testkit"
	"github.com/flashbacktech/flashauth/sqlite/sqlitetest"
)

var now = time.UnixMilli(1764120000000).UTC()

// logSink collects JSON log lines.
type logSink struct{ testkit.SyncBuffer }

func (s *logSink) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, l)
		}
		out = append(out, m)
	}
	return out
}

func newLogger(s *logSink) *slog.Logger {
	return slog.New(slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestRecordStoresAndLogs(t *testing.T) {
	db := sqlitetest.Open(t)
	sink := &logSink{}
	r := audit.New(db, newLogger(sink), testkit.NewClock(now))
	events := []flashauth.AuditEvent{
		{Type: audit.TypeGitHubRefresh, Outcome: audit.OutcomeOK, UserID: "u1", IPAddress: "203.0.113.7", RequestID: "req-1"},
		{Type: audit.TypeSessionRefresh, Outcome: audit.OutcomeReplayed, UserID: "u1", SessionID: "s1", IPAddress: "2001:db8::1", RequestID: "req-2"},
		{Type: audit.TypeReuseDetected, Outcome: audit.OutcomeSuspected, UserID: "u2", RequestID: "req-3", Detail: "rotated-out token presented after the window"},
	}
	for _, e := range events {
		r.Record(context.Background(), e)
	}

	got, err := db.ListAudit(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]flashauth.AuditEvent, len(events))
	for i, e := range events {
		e.Time = now
		want[len(events)-1-i] = e // newest first
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(flashauth.AuditEvent{}, "ID"),
		cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("stored events (-want +got):\n%s", diff)
	}

	lines := sink.lines(t)
	if len(lines) != len(events) {
		t.Fatalf("%d log lines, want one per event: %v", len(lines), lines)
	}
	for i, l := range lines {
		e := events[i]
		wantFields := map[string]string{
			"msg": "audit", "type": e.Type, "outcome": e.Outcome, "user_id": e.UserID,
			"session_id": e.SessionID, "ip": e.IPAddress, "request_id": e.RequestID, "detail": e.Detail,
		}
		for k, v := range wantFields {
			if l[k] != v {
				t.Errorf("line %d: %s = %v, want %q", i, k, l[k], v)
			}
		}
	}
	if lines[0]["level"] != "INFO" || lines[2]["level"] != "WARN" {
		t.Errorf("levels = %v, %v; want INFO for a refresh, WARN for suspected reuse", lines[0]["level"], lines[2]["level"])
	}
}

func TestRecordKeepsCallerTime(t *testing.T) {
	db := sqlitetest.Open(t)
	r := audit.New(db, nil, testkit.NewClock(now))
	at := now.Add(-time.Hour)
	r.Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeRevoke, Outcome: audit.OutcomeOK, Time: at})
	got, err := db.ListAudit(context.Background(), 1)
	if err != nil || len(got) != 1 || !got[0].Time.Equal(at) {
		t.Fatalf("stored %+v, %v; want the caller's time %v", got, err, at)
	}
}

// The trail must not fail a request: a broken store is logged and Record
// returns normally, after the audit line itself was written.
func TestRecordStoreFailureIsLogged(t *testing.T) {
	db := sqlitetest.Open(t)
	sink := &logSink{}
	r := audit.New(db, newLogger(sink), testkit.NewClock(now))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	r.Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeSignIn, Outcome: audit.OutcomeOK, RequestID: "req-9"})
	lines := sink.lines(t)
	if len(lines) != 2 {
		t.Fatalf("log lines = %v, want the audit line and the store failure", lines)
	}
	if lines[0]["msg"] != "audit" {
		t.Errorf("first line = %v, want the audit line", lines[0])
	}
	if l := lines[1]; l["msg"] != "audit event not stored" || l["level"] != "ERROR" || l["request_id"] != "req-9" || l["type"] != audit.TypeSignIn {
		t.Errorf("failure line = %v", l)
	}
}

// A caller that went away still leaves its event: the refresh it made may
// have spent a token.
func TestRecordSurvivesCancelledContext(t *testing.T) {
	db := sqlitetest.Open(t)
	r := audit.New(db, nil, testkit.NewClock(now))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Record(ctx, flashauth.AuditEvent{Type: audit.TypeGitHubRefresh, Outcome: audit.OutcomeOK})
	if got, err := db.ListAudit(context.Background(), 10); err != nil || len(got) != 1 {
		t.Fatalf("stored %d events, %v; want 1", len(got), err)
	}
}

func TestRecordRedactsAndBounds(t *testing.T) {
	db := sqlitetest.Open(t)
	sink := &logSink{}
	r := audit.New(db, newLogger(sink), testkit.NewClock(now))
	tok := "ghr_" + strings.Repeat("k", 76)
	r.Record(context.Background(), flashauth.AuditEvent{
		Type:      audit.TypeGitHubRefresh,
		Outcome:   audit.OutcomeRejected,
		RequestID: strings.Repeat("r", 1000),
		UserID:    strings.Repeat("é", 100), // 200 bytes: the cut must not split a rune
		// Words, not one long run: redaction must not shorten what follows
		// the token, or the bound on Detail is never reached.
		Detail: "presented " + tok + strings.Repeat(" word", 400),
	})
	got, err := db.ListAudit(context.Background(), 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("ListAudit: %v %v", got, err)
	}
	e := got[0]
	if strings.Contains(e.Detail, tok) || strings.Contains(sink.String(), tok) {
		t.Errorf("token reached the trail: detail %q", e.Detail)
	}
	if len(e.Detail) != 512 || len(e.RequestID) != 128 {
		t.Errorf("fields not cut at their bounds: detail %d bytes (want 512), request id %d (want 128)", len(e.Detail), len(e.RequestID))
	}
	if e.UserID != strings.Repeat("é", 64) {
		t.Errorf("user id cut inside a rune: %q", e.UserID)
	}
}

func TestNilRecorderAndNilStore(t *testing.T) {
	var r *audit.Recorder
	r.Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeRevoke}) // must not panic

	sink := &logSink{}
	logOnly := audit.New(nil, newLogger(sink), nil)
	logOnly.Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeRevoke, Outcome: audit.OutcomeOK})
	lines := sink.lines(t)
	if len(lines) != 1 || lines[0]["type"] != audit.TypeRevoke {
		t.Fatalf("log-only recorder wrote %v", lines)
	}
	audit.New(nil, nil, nil).Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeRevoke})
}

func TestRecordConcurrent(t *testing.T) {
	db := sqlitetest.Open(t)
	r := audit.New(db, nil, testkit.NewClock(now))
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeGitHubRefresh, Outcome: audit.OutcomeOK, RequestID: "req-" + string(rune('a'+i%26))})
		}()
	}
	wg.Wait()
	if got, err := db.ListAudit(context.Background(), 2*n); err != nil || len(got) != n {
		t.Fatalf("stored %d events, %v; want %d", len(got), err, n)
	}
}

// The services take any flashauth.Auditor; Recorder is the one they get.
var _ flashauth.Auditor = (*audit.Recorder)(nil)

// Record takes the request id, client address and session the event leaves
// empty from the request the context belongs to; what the event names wins.
func TestRecordFillsRequestInfo(t *testing.T) {
	db := sqlitetest.Open(t)
	rec := audit.New(db, nil, testkit.NewClock(time.Unix(1_700_000_000, 0)))
	ctx := flashauth.WithRequestInfo(context.Background(), flashauth.RequestInfo{ID: "req-1", IP: "192.0.2.7", SessionID: "sess-ctx"})
	rec.Record(ctx, flashauth.AuditEvent{Type: audit.TypeGitHubRefresh, Outcome: audit.OutcomeOK, UserID: "u1"})
	rec.Record(ctx, flashauth.AuditEvent{Type: audit.TypeRevoke, Outcome: audit.OutcomeOK, UserID: "u1", SessionID: "sess-named"})
	rec.Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeRevoke, Outcome: audit.OutcomeOK, UserID: "admin"})
	got, err := db.ListAudit(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ Req, IP, Session string }
	var rows []row
	for _, e := range got {
		rows = append(rows, row{e.RequestID, e.IPAddress, e.SessionID})
	}
	want := []row{{"", "", ""}, {"req-1", "192.0.2.7", "sess-named"}, {"req-1", "192.0.2.7", "sess-ctx"}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (newest first) -want +got:\n%s", diff)
	}
	audit.Discard.Record(ctx, flashauth.AuditEvent{Type: audit.TypeSignIn}) // records nothing, and does not panic
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name             string
		err              error
		replayed, joined bool
		want             string
	}{
		{"did the work", nil, false, false, audit.OutcomeOK},
		{"joined", nil, false, true, audit.OutcomeJoined},
		{"replayed", nil, true, false, audit.OutcomeReplayed},
		{"error wins over how", flashauth.Errorf(flashauth.CodeInvalidRefreshToken, "x"), true, false, audit.OutcomeRejected},
		{"reused", flashauth.Errorf(flashauth.CodeRefreshTokenReused, "x"), false, false, audit.OutcomeReuseDetected},
		{"upstream", flashauth.Errorf(flashauth.CodeUpstreamUnavailable, "x"), false, false, audit.OutcomeUpstreamError},
		{"upstream credentials", flashauth.Errorf(flashauth.CodeUpstreamCredentials, "x"), false, false, audit.OutcomeUpstreamError},
		{"rate limited", flashauth.Errorf(flashauth.CodeRateLimited, "x"), false, true, audit.OutcomeRateLimited},
		{"store", flashauth.Errorf(flashauth.CodeStoreUnavailable, "x"), false, false, audit.OutcomeError},
		{"no code", errors.New("boom"), false, false, audit.OutcomeError},
		{"state", flashauth.Errorf(flashauth.CodeInvalidState, "x"), false, false, audit.OutcomeRejected},
	}
	for _, tc := range tests {
		if got := audit.Outcome(tc.err, tc.replayed, tc.joined); got != tc.want {
			t.Errorf("%s: Outcome = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// queueStore is an audit store with a queue in front (audit.Queue), which
// takes events while open is set.
type queueStore struct {
	flashauth.AuditStore
	mu             sync.Mutex
	open           bool
	queued, direct []string
}

func (q *queueStore) TryAppendAudit(e flashauth.AuditEvent) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.open {
		q.queued = append(q.queued, e.RequestID)
	}
	return q.open
}

func (q *queueStore) AppendAudit(_ context.Context, e flashauth.AuditEvent) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.direct = append(q.direct, e.RequestID)
	return nil
}

// An event goes to the queue when it takes it, else to the store, never
// both and never neither.
func TestRecordOffersTheQueueFirst(t *testing.T) {
	q := &queueStore{open: true}
	r := audit.New(q, nil, testkit.NewClock(now))
	r.Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeSignIn, Outcome: audit.OutcomeOK, RequestID: "queued"})
	q.open = false
	r.Record(context.Background(), flashauth.AuditEvent{Type: audit.TypeSignIn, Outcome: audit.OutcomeOK, RequestID: "refused"})
	if !cmp.Equal(q.queued, []string{"queued"}) || !cmp.Equal(q.direct, []string{"refused"}) {
		t.Fatalf("queued %v, appended %v; want [queued] and [refused]", q.queued, q.direct)
	}
}
