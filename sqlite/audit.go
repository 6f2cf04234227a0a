package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/internal/storesql"
)

const qAuditInsert = `INSERT INTO audit_events (time, type, outcome, user_id, session_id,
			ip_address, request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

// AppendAudit implements flashauth.AuditStore; the store assigns the ID.
func (db *DB) AppendAudit(ctx context.Context, e flashauth.AuditEvent) error {
	return db.writeTx(ctx, "append audit", func(ctx context.Context, tx *wtx) error {
		_, err := tx.exec(ctx, qAuditInsert, ms(e.Time), e.Type, e.Outcome, e.UserID, e.SessionID, e.IPAddress, e.RequestID, e.Detail)
		return err
	})
}

// AppendAudits implements flashauth.AuditStore: one transaction, in order.
func (db *DB) AppendAudits(ctx context.Context, events []flashauth.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return db.writeTx(ctx, "append audit", func(ctx context.Context, tx *wtx) error {
		for _, e := range events {
			if _, err := tx.exec(ctx, qAuditInsert, ms(e.Time), e.Type, e.Outcome, e.UserID, e.SessionID, e.IPAddress, e.RequestID, e.Detail); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListAudit implements flashauth.AuditStore: the newest limit events.
func (db *DB) ListAudit(ctx context.Context, limit int) ([]flashauth.AuditEvent, error) {
	return db.QueryAudit(ctx, flashauth.AuditFilter{Limit: limit})
}

// auditDialect is how this store spells the audit query.
var auditDialect = storesql.AuditDialect{
	TimeColumn: "time", TypeColumn: "type",
	Placeholder: func(int) string { return "?" },
	Time:        ms,
}

// QueryAudit implements flashauth.AuditStore. Newest first is insertion
// order reversed: ids only grow (AUTOINCREMENT never reuses one).
// A limit <= 0 returns no events.
func (db *DB) QueryAudit(ctx context.Context, f flashauth.AuditFilter) ([]flashauth.AuditEvent, error) {
	if f.Limit <= 0 {
		return nil, nil
	}
	q, args := auditDialect.AuditQuery(f)
	rows, err := db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, db.fail("list audit", err)
	}
	defer rows.Close()
	var out []flashauth.AuditEvent
	for rows.Next() {
		var (
			e  flashauth.AuditEvent
			at sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &at, &e.Type, &e.Outcome, &e.UserID, &e.SessionID,
			&e.IPAddress, &e.RequestID, &e.Detail); err != nil {
			return nil, db.fail("list audit", err)
		}
		e.Time = fromMS(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, db.fail("list audit", err)
	}
	return out, nil
}

// PurgeAudit implements flashauth.AuditStore: it deletes up to limit events
// older than before (and events without a time), oldest first.
func (db *DB) PurgeAudit(ctx context.Context, before time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := db.writeTx(ctx, "purge audit", func(ctx context.Context, tx *wtx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE id IN (
			SELECT id FROM audit_events WHERE time IS NULL OR time < ? ORDER BY id LIMIT ?)`, before.UnixMilli(), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
