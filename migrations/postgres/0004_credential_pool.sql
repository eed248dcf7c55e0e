-- The upstream credential pool: credentials added through the management API or a device-flow
-- login (secrets sealed when auth.encryption.key is set), quota limits set through the API for
-- any credential (whatever its source), and token usage per credential and quota period.
CREATE TABLE pool_credentials (
    id           TEXT PRIMARY KEY,
    provider     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    secret       TEXT NOT NULL,
    priority     BIGINT NOT NULL,
    quota_limit  BIGINT,
    label        TEXT,
    oauth        TEXT,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE pool_quota_limits (
    credential_id  TEXT PRIMARY KEY,
    quota_limit    BIGINT
);

CREATE TABLE pool_usage (
    credential_id  TEXT NOT NULL,
    period         TEXT NOT NULL,
    used           BIGINT NOT NULL,
    PRIMARY KEY (credential_id, period)
);
