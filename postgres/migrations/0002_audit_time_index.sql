-- The purge loop deletes audit events older than the retention
-- (FLASHAUTH_AUDIT_RETENTION) by time.
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at);
