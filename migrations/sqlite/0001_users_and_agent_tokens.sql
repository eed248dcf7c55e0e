-- Users (from SSO or the admin CLI) and their per-device agent tokens.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    email         TEXT,
    display_name  TEXT,
    created_at    BIGINT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0,
    UNIQUE (provider, subject)
);

CREATE TABLE agent_tokens (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users (id),
    name                TEXT NOT NULL,
    secret_hash         TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT,
    last_ip             TEXT,
    last_user_agent     TEXT,
    session_expires_at  BIGINT,
    revoked_at          BIGINT
);
CREATE INDEX agent_tokens_user ON agent_tokens (user_id);

-- A counter bumped by every change that must reach running instances (revocations, renames).
CREATE TABLE store_revision (
    id        BIGINT PRIMARY KEY,
    revision  BIGINT NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 0);
