-- SSO: secrets shared by every instance, used login links, OAuth login flows in progress,
-- authorizations waiting for a confirmation code, and browser sessions of the devices page.
CREATE TABLE gateway_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE sso_used_login_links (
    id          TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE sso_login_flows (
    state_hash      TEXT PRIMARY KEY,
    browser_hash    TEXT NOT NULL,
    provider        TEXT NOT NULL,
    pkce_verifier   TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    bound_token_id  TEXT,
    client_ip       TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

CREATE TABLE sso_pending_authorizations (
    id_hash         TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id),
    provider        TEXT NOT NULL,
    bound_token_id  TEXT,
    code_hash       TEXT NOT NULL,
    attempts_left   BIGINT NOT NULL,
    client_ip       TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

CREATE TABLE sso_web_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sso_web_sessions_user ON sso_web_sessions (user_id);
