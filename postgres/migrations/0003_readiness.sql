-- One row that the readiness check (Ping) rewrites in a committed write
-- transaction: a database that answers reads but cannot write (a read-only
-- transaction default, a standby, a full disk) is not ready.
CREATE TABLE readiness (
    id     integer PRIMARY KEY CHECK (id = 1),
    checks bigint  NOT NULL
);
INSERT INTO readiness (id, checks) VALUES (1, 0);
