// Package storesql is the SQL the two stores (sqlite, postgres) share: the
// audit trail's query and the scan of a session row. The dialects differ
// in placeholders, column names and how a nullable time comes back, so
// those are parameters; the logic lives here once.
package storesql

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth"
)

// AuditDialect is how one store spells the audit_events table.
type AuditDialect struct {
	// TimeColumn and TypeColumn name the columns of AuditEvent.Time and
	// AuditEvent.Type (the other columns are named alike in both stores).
	TimeColumn, TypeColumn string
	// Placeholder is the n-th (1-based) bind parameter: "$n" or "?".
	Placeholder func(n int) string
	// Time is the bind value of a time compared with TimeColumn.
	Time func(time.Time) any
}

// AuditQuery is the SELECT of the events f selects, newest (highest id)
// first, and its arguments; f.Limit must be positive. Its columns are
// id, time, type, outcome, user_id, session_id, ip_address, request_id,
// detail, in that order.
func (d AuditDialect) AuditQuery(f flashauth.AuditFilter) (string, []any) {
	var where []string
	var args []any
	bind := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+d.Placeholder(len(args)))
	}
	if f.UserID != "" {
		bind("user_id = ", f.UserID)
	}
	if !f.Since.IsZero() {
		bind(d.TimeColumn+" >= ", d.Time(f.Since))
	}
	q := "SELECT id, " + d.TimeColumn + ", " + d.TypeColumn +
		", outcome, user_id, session_id, ip_address, request_id, detail FROM audit_events"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	return q + " ORDER BY id DESC LIMIT " + d.Placeholder(len(args)), args
}

// ScanSession scans a session row - id, user_id, provider, device_info,
// ip_address, user_agent, created_at, last_used_at, expires_at,
// revoked_at, in that order - followed by extra destinations. T is the
// driver's type of a nullable time column and toTime converts it.
func ScanSession[T any](scan func(dest ...any) error, toTime func(T) time.Time, extra ...any) (flashauth.Session, error) {
	var (
		s                                   flashauth.Session
		device                              []byte
		created, lastUsed, expires, revoked T
	)
	dest := append([]any{&s.ID, &s.UserID, &s.Provider, &device, &s.IPAddress, &s.UserAgent,
		&created, &lastUsed, &expires, &revoked}, extra...)
	if err := scan(dest...); err != nil {
		return flashauth.Session{}, err
	}
	if device != nil {
		s.DeviceInfo = json.RawMessage(device)
	}
	s.CreatedAt, s.LastUsedAt = toTime(created), toTime(lastUsed)
	s.ExpiresAt, s.RevokedAt = toTime(expires), toTime(revoked)
	return s, nil
}
