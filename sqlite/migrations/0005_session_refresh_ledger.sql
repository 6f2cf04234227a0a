-- A session's current refresh hash moves onto its sessions row, and the
-- session_refresh ledger entry of a refresh token into the token's row of
-- session_tokens, renamed session_refresh_tokens (as PostgreSQL names it).
--
-- Why: a session refresh read four tables (token, session, user, ledger
-- entry), each an index descent and a table descent, and its commit wrote
-- the entry into ledger_entries (a random leaf of its key index), checked
-- the session, cleared the old token's current flag and set the new one's
-- (the partial unique index session_tokens_current, twice) and updated
-- the session: five statements, and an insert into four b-trees. Now the
-- entry is written into the row of the presented token, inserted by the
-- previous rotation near the tail of the table; the rotation is one
-- conditional UPDATE of the session (its current hash, not revoked) and
-- the insert of the new token into two b-trees (the table and its key);
-- the read walks three tables.
--
-- An entry whose hash has no token row (a verdict on an unknown token)
-- stays in ledger_entries. The current column of the tokens is no longer
-- read or written (new rows hold 0): sessions.refresh_hash is the current
-- hash. Dropping the column would rewrite every token row; ADD COLUMN
-- rewrites none, and the backfill below rewrites each session row once.
-- The rename makes a flashauth of an older version on the same file fail
-- its session statements instead of rotating where this one no longer
-- looks (a rotated-out token would still read current there).
ALTER TABLE sessions ADD COLUMN refresh_hash BLOB CHECK (refresh_hash IS NULL OR length(refresh_hash) = 32);
UPDATE sessions SET refresh_hash = t.hash FROM session_tokens AS t
	WHERE t.session_id = sessions.id AND t.current = 1;
DROP INDEX session_tokens_current;

ALTER TABLE session_tokens ADD COLUMN claim_id TEXT;
ALTER TABLE session_tokens ADD COLUMN state INTEGER CHECK (state IS NULL OR state IN (1, 2));
ALTER TABLE session_tokens ADD COLUMN lease_until INTEGER;
ALTER TABLE session_tokens ADD COLUMN sealed BLOB;
ALTER TABLE session_tokens ADD COLUMN ledger_expires_at INTEGER;
ALTER TABLE session_tokens ADD COLUMN ledger_created_at INTEGER;

-- Both statements walk the (few, purged) entries and look the tokens up by
-- hash, rather than walk every token.
UPDATE session_tokens SET (claim_id, state, lease_until, sealed, ledger_expires_at, ledger_created_at) =
		(SELECT g.claim_id, g.state, g.lease_until, g.sealed, g.expires_at, g.created_at
			FROM ledger_entries AS g WHERE g.kind = 'session_refresh' AND g.key = session_tokens.hash)
	WHERE hash IN (SELECT key FROM ledger_entries WHERE kind = 'session_refresh');
DELETE FROM ledger_entries
	WHERE kind = 'session_refresh' AND EXISTS (SELECT 1 FROM session_tokens AS t WHERE t.hash = ledger_entries.key);

ALTER TABLE session_tokens RENAME TO session_refresh_tokens;

-- Nothing reads the tokens by session: the index on session_id cost every
-- rotation a random leaf for the sake of a cascading DELETE of a session,
-- which flashauth never runs (a session is revoked, not deleted; such a
-- DELETE would read the whole table).
DROP INDEX session_tokens_session;

-- PurgeLedger finds dead entries by the time they die, as lineage_ledger_until.
CREATE INDEX session_refresh_tokens_ledger_until ON session_refresh_tokens
	(ifnull(CASE WHEN state = 2 THEN ledger_expires_at ELSE lease_until END, 0))
	WHERE state IS NOT NULL;
