-- One row that the readiness check (Ping) rewrites in a committed write
-- transaction: a database that answers reads but cannot write (full disk,
-- read-only file system, a lock held elsewhere) is not ready.
CREATE TABLE readiness (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	checks     INTEGER NOT NULL
) STRICT;
INSERT INTO readiness (id, checks) VALUES (1, 0);
