-- A ledger row is written twice: the claim inserts it, the completion
-- rewrites it (state, sealed outcome, expiry). The two partial indexes the
-- purge used covered the very columns the completion changes, so every
-- completion was a non-HOT update: a new index entry in the primary key and
-- one in ledger_done_expiry, after the claim's own in ledger_pending_lease.
-- Without them, and with room left on each page for the completed version
-- of the rows claimed there, a completion can be a HOT update, which
-- touches no index. The purge, every 30 seconds, reads the table instead:
-- it holds only the entries of the last replay window and lease.
DROP INDEX ledger_pending_lease;
DROP INDEX ledger_done_expiry;
ALTER TABLE ledger SET (fillfactor = 50);
