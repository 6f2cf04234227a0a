package postgres

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/storesql"
)

const qAuditInsert = `
			INSERT INTO audit_events (occurred_at, event_type, outcome, user_id, session_id,
				ip_address, request_id, detail)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// AppendAudit records e; the store assigns its ID.
func (db *DB) AppendAudit(ctx context.Context, e flashauth.AuditEvent) error {
	return db.do(ctx, func(ctx context.Context) error {
		_, err := db.pool.Exec(ctx, qAuditInsert,
			tsArg(e.Time), e.Type, e.Outcome, e.UserID, e.SessionID, e.IPAddress, e.RequestID, e.Detail)
		return err
	})
}

// AppendAudits records events in one transaction, in order: one statement
// inserting the rows of arrays in the order given (WITH ORDINALITY), so the
// identity column numbers them in that order.
//
// The rows ride on a ledger write when one comes soon (auditRiders): the
// transaction is then that write's, and costs no commit of its own.
// Otherwise, or when the write carrying them failed, they go alone, in one
// round trip.
func (db *DB) AppendAudits(ctx context.Context, events []flashauth.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return db.do(ctx, func(ctx context.Context) error {
		return db.riders.ride(ctx, events, func() error {
			_, err := db.pool.Exec(ctx, qAuditInsertMany, auditArgs(events)...)
			return err
		})
	})
}

const qAuditInsertMany = `
	INSERT INTO audit_events (occurred_at, event_type, outcome, user_id, session_id,
		ip_address, request_id, detail)
	SELECT u.occurred_at, u.event_type, u.outcome, u.user_id, u.session_id,
		u.ip_address, u.request_id, u.detail
	FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
		$6::text[], $7::text[], $8::text[]) WITH ORDINALITY
		AS u(occurred_at, event_type, outcome, user_id, session_id, ip_address, request_id, detail, ord)
	ORDER BY u.ord`

// auditArgs are qAuditInsertMany's arguments for events.
func auditArgs(events []flashauth.AuditEvent) []any {
	n := len(events)
	at := make([]pgtype.Timestamptz, n)
	types, outcomes, users, sessions := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ips, requests, details := make([]string, n), make([]string, n), make([]string, n)
	for i, e := range events {
		at[i], types[i], outcomes[i], users[i], sessions[i] = tsArg(e.Time), e.Type, e.Outcome, e.UserID, e.SessionID
		ips[i], requests[i], details[i] = e.IPAddress, e.RequestID, e.Detail
	}
	return []any{at, types, outcomes, users, sessions, ips, requests, details}
}

// ListAudit returns up to limit events, newest (last appended) first.
func (db *DB) ListAudit(ctx context.Context, limit int) ([]flashauth.AuditEvent, error) {
	return db.QueryAudit(ctx, flashauth.AuditFilter{Limit: limit})
}

// auditDialect is how this store spells the audit query.
var auditDialect = storesql.AuditDialect{
	TimeColumn: "occurred_at", TypeColumn: "event_type",
	Placeholder: func(n int) string { return "$" + strconv.Itoa(n) },
	Time:        func(t time.Time) any { return tsArg(t) },
}

// QueryAudit returns the events f selects, newest (last appended) first.
func (db *DB) QueryAudit(ctx context.Context, f flashauth.AuditFilter) ([]flashauth.AuditEvent, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	q, args := auditDialect.AuditQuery(f)
	var out []flashauth.AuditEvent
	err := db.do(ctx, func(ctx context.Context) error {
		rows, err := db.pool.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (flashauth.AuditEvent, error) {
			var (
				e  flashauth.AuditEvent
				at pgtype.Timestamptz
			)
			err := row.Scan(&e.ID, &at, &e.Type, &e.Outcome, &e.UserID, &e.SessionID, &e.IPAddress, &e.RequestID, &e.Detail)
			e.Time = tsVal(at)
			return e, err
		})
		return err
	})
	return out, err
}

// PurgeAudit deletes up to limit events older than before (and events
// without a time), oldest first.
func (db *DB) PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := db.do(ctx, func(ctx context.Context) error {
		tag, err := db.pool.Exec(ctx, `DELETE FROM audit_events WHERE id IN (
			SELECT id FROM audit_events WHERE occurred_at IS NULL OR occurred_at < $1 ORDER BY id LIMIT $2)`, tsArg(before), limit)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
