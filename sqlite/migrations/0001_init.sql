-- flashauth schema, version 1.
--
-- Secrets are never stored: only SHA-256 hashes (32-byte BLOBs) and sealed
-- blobs. Times are INTEGER milliseconds since the Unix epoch (UTC), NULL when
-- unset. Text columns have no width: GitHub tokens and ids grow.
-- STRICT tables make SQLite enforce the declared column types.

-- The exactly-once ledger. state: 1 pending (claim_id holds it until
-- lease_until), 2 done (sealed replayable until expires_at).
CREATE TABLE ledger (
	kind        TEXT    NOT NULL,
	key         BLOB    NOT NULL CHECK (length(key) = 32),
	claim_id    TEXT    NOT NULL,
	state       INTEGER NOT NULL CHECK (state IN (1, 2)),
	lease_until INTEGER,
	sealed      BLOB,
	expires_at  INTEGER,
	created_at  INTEGER,
	PRIMARY KEY (kind, key)
) STRICT;

-- Lineage of the GitHub refresh tokens flashauth has seen. user_id has no
-- foreign key on purpose: lineage is written in the ledger's commit, after a
-- single-use token was spent upstream, and must not fail there.
CREATE TABLE lineage (
	token_hash  BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
	parent_hash BLOB    CHECK (parent_hash IS NULL OR length(parent_hash) = 32),
	user_id     TEXT    NOT NULL DEFAULT '',
	replaced_by BLOB    CHECK (replaced_by IS NULL OR length(replaced_by) = 32),
	created_at  INTEGER,
	rotated_at  INTEGER,
	expires_at  INTEGER
) STRICT;

CREATE TABLE organizations (
	id         TEXT    NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	created_at INTEGER
) STRICT;

CREATE TABLE users (
	id         TEXT    NOT NULL PRIMARY KEY,
	github_id  INTEGER NOT NULL UNIQUE,
	login      TEXT    NOT NULL,
	email      TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	image_url  TEXT    NOT NULL,
	org_id     TEXT    NOT NULL REFERENCES organizations (id),
	created_at INTEGER,
	updated_at INTEGER
) STRICT;

CREATE TABLE sessions (
	id           TEXT    NOT NULL PRIMARY KEY,
	user_id      TEXT    NOT NULL REFERENCES users (id),
	provider     TEXT    NOT NULL,
	device_info  BLOB,
	ip_address   TEXT    NOT NULL,
	user_agent   TEXT    NOT NULL,
	created_at   INTEGER,
	last_used_at INTEGER,
	expires_at   INTEGER,
	revoked_at   INTEGER
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id, created_at);

-- Every refresh-token hash a session ever had, so a rotated-out token is
-- still recognised (reuse detection).
CREATE TABLE session_tokens (
	hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
	session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	current    INTEGER NOT NULL CHECK (current IN (0, 1)),
	created_at INTEGER
) STRICT;

CREATE INDEX session_tokens_session ON session_tokens (session_id);
-- At most one current refresh token per session.
CREATE UNIQUE INDEX session_tokens_current ON session_tokens (session_id) WHERE current = 1;

CREATE TABLE signing_keys (
	id          TEXT    NOT NULL PRIMARY KEY,
	generation  INTEGER NOT NULL UNIQUE,
	algorithm   TEXT    NOT NULL,
	public_key  BLOB    NOT NULL,
	private_key BLOB    NOT NULL,
	sealed      INTEGER NOT NULL CHECK (sealed IN (0, 1)),
	created_at  INTEGER,
	retire_at   INTEGER,
	expires_at  INTEGER
) STRICT;

CREATE TABLE oauth_states (
	hash         BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
	verifier     BLOB    NOT NULL,
	redirect_uri TEXT    NOT NULL,
	created_at   INTEGER,
	expires_at   INTEGER
) STRICT;

CREATE INDEX oauth_states_expires ON oauth_states (expires_at);

CREATE TABLE audit_events (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	time       INTEGER,
	type       TEXT    NOT NULL,
	outcome    TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	ip_address TEXT    NOT NULL,
	request_id TEXT    NOT NULL,
	detail     TEXT    NOT NULL
) STRICT;
