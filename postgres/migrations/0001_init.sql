-- The initial schema. Secrets are never stored: only SHA-256 digests
-- (32-byte bytea) and sealed blobs. Times are timestamptz with millisecond
-- precision, NULL for Go's zero time. Nothing token-like has a fixed width.
-- Constraints match the SQLite store's, so code tested on one holds on the
-- other.

-- The exactly-once ledger. state: 1 pending (claim_id holds it until
-- lease_until), 2 done (sealed replayable until expires_at).

CREATE TABLE ledger (
    kind        text        NOT NULL,
    key         bytea       NOT NULL CHECK (octet_length(key) = 32),
    claim_id    text        NOT NULL,
    state       smallint    NOT NULL CHECK (state IN (1, 2)),
    lease_until timestamptz,
    sealed      bytea,
    expires_at  timestamptz,
    created_at  timestamptz,
    PRIMARY KEY (kind, key)
);

-- PurgeLedger looks for dead entries of each state.
CREATE INDEX ledger_pending_lease ON ledger (lease_until) WHERE state = 1;
CREATE INDEX ledger_done_expiry ON ledger (expires_at) WHERE state = 2;

-- Lineage of the GitHub refresh tokens flashauth has seen. user_id has no
-- foreign key on purpose: lineage is written in the ledger's commit, after a
-- single-use token was spent upstream, and must not fail there.
CREATE TABLE lineage (
    token_hash  bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    parent_hash bytea CHECK (octet_length(parent_hash) = 32),
    user_id     text,
    replaced_by bytea CHECK (octet_length(replaced_by) = 32),
    created_at  timestamptz,
    rotated_at  timestamptz,
    expires_at  timestamptz
);

CREATE TABLE organizations (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz
);

CREATE TABLE users (
    id         text   PRIMARY KEY,
    github_id  bigint NOT NULL,
    login      text   NOT NULL,
    email      text   NOT NULL,
    name       text   NOT NULL,
    image_url  text   NOT NULL,
    org_id     text   NOT NULL REFERENCES organizations (id),
    created_at timestamptz,
    updated_at timestamptz
);

-- One user per GitHub account, however many sign-ins race.
CREATE UNIQUE INDEX users_github_id ON users (github_id);

CREATE TABLE sessions (
    id           text  PRIMARY KEY,
    user_id      text  NOT NULL REFERENCES users (id),
    provider     text  NOT NULL,
    device_info  json,
    ip_address   text  NOT NULL,
    user_agent   text  NOT NULL,
    -- The current refresh token; every one ever issued is in session_refresh_tokens.
    refresh_hash bytea NOT NULL,
    created_at   timestamptz,
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);

CREATE INDEX sessions_user ON sessions (user_id, created_at DESC);

-- Every refresh-token hash a session ever had, so a rotated-out token is
-- still recognised (reuse detection).
CREATE TABLE session_refresh_tokens (
    hash       bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
    session_id text  NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at  timestamptz
);

CREATE INDEX session_refresh_tokens_session ON session_refresh_tokens (session_id);

CREATE TABLE signing_keys (
    id          text    PRIMARY KEY,
    generation  bigint  NOT NULL,
    algorithm   text    NOT NULL,
    public_key  bytea   NOT NULL,
    private_key bytea   NOT NULL,
    sealed      boolean NOT NULL,
    created_at  timestamptz,
    retire_at   timestamptz,
    expires_at  timestamptz
);

-- Two replicas rotating at once: the second insert fails.
CREATE UNIQUE INDEX signing_keys_generation ON signing_keys (generation);

CREATE TABLE oauth_states (
    hash         bytea PRIMARY KEY CHECK (octet_length(hash) = 32),
    verifier     bytea,
    redirect_uri text  NOT NULL,
    created_at   timestamptz,
    expires_at   timestamptz
);

CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

CREATE TABLE audit_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz,
    event_type  text NOT NULL,
    outcome     text NOT NULL,
    user_id     text NOT NULL,
    session_id  text NOT NULL,
    ip_address  text NOT NULL,
    request_id  text NOT NULL,
    detail      text NOT NULL
);
