-- The github_refresh ledger entry of a token moves into the token's lineage
-- row: one row, one b-tree and one index per GitHub refresh token hash.
--
-- Why: both were keyed by the token's hash, which lands on a random leaf of
-- an index. A refresh inserted two random index entries, the lineage of the
-- token it received (at its completion) and, at the next refresh, the
-- ledger claim on that same token: about 1.3 of the 4.3 WAL pages a
-- refresh wrote, and the read before the claim walked two indexes and two
-- tables. Now the claim updates the row the completion inserted, near the
-- tail of the table, and the read finds everything in one row.
--
-- A row whose has_lineage is 0 holds a ledger entry only (a token claimed
-- before flashauth recorded its lineage); a row whose state is NULL holds
-- lineage only. Other ledger kinds stay in the ledger table, renamed
-- ledger_entries: a flashauth of an older version on the same file would
-- otherwise go on claiming GitHub refresh tokens in a table this version no
-- longer reads (two GitHub calls for one token); without its table it fails
-- instead. ADD COLUMN rewrites no row: existing databases migrate in
-- constant time, plus the github_refresh ledger rows they hold.
ALTER TABLE lineage ADD COLUMN has_lineage INTEGER NOT NULL DEFAULT 1 CHECK (has_lineage IN (0, 1));
ALTER TABLE lineage ADD COLUMN claim_id TEXT;
ALTER TABLE lineage ADD COLUMN state INTEGER CHECK (state IS NULL OR state IN (1, 2));
ALTER TABLE lineage ADD COLUMN lease_until INTEGER;
ALTER TABLE lineage ADD COLUMN sealed BLOB;
ALTER TABLE lineage ADD COLUMN ledger_expires_at INTEGER;
ALTER TABLE lineage ADD COLUMN ledger_created_at INTEGER;

-- PurgeLedger finds dead entries by the time they die (a done entry's
-- expiry, a pending one's lease; a missing time counts as passed) without
-- reading every lineage row: lineage is kept for good, entries are not.
CREATE INDEX lineage_ledger_until ON lineage
	(ifnull(CASE WHEN state = 2 THEN ledger_expires_at ELSE lease_until END, 0))
	WHERE state IS NOT NULL;

INSERT INTO lineage (token_hash, has_lineage, claim_id, state, lease_until, sealed, ledger_expires_at, ledger_created_at)
	SELECT key, 0, claim_id, state, lease_until, sealed, expires_at, created_at
	FROM ledger WHERE kind = 'github_refresh'
	ON CONFLICT (token_hash) DO UPDATE SET
		claim_id = excluded.claim_id, state = excluded.state, lease_until = excluded.lease_until,
		sealed = excluded.sealed, ledger_expires_at = excluded.ledger_expires_at,
		ledger_created_at = excluded.ledger_created_at;
DELETE FROM ledger WHERE kind = 'github_refresh';
ALTER TABLE ledger RENAME TO ledger_entries;
