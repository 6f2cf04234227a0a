package sqlite

import (
	"context"
	"database/sql"

	"github.com/flashbacktech/flashauth"
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

// ListAudit implements flashauth.AuditStore. Newest first is insertion
// order reversed: ids only grow (AUTOINCREMENT never reuses one).
// A limit <= 0 returns no events.
func (db *DB) ListAudit(ctx context.Context, limit int) ([]flashauth.AuditEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, time, type, outcome, user_id, session_id,
		ip_address, request_id, detail FROM audit_events ORDER BY id DESC LIMIT ?`, limit)
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
