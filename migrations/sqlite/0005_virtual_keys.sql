-- Virtual keys (PRODUCT §7): issued API keys with an optional owner, expiry and rules. Only a hash
-- of the secret is stored; rules are the JSON of `rules::Rules`. Revocations and updates bump
-- store_revision so every instance drops its cached copy.
CREATE TABLE virtual_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    owner        TEXT REFERENCES users (id),
    secret_hash  TEXT NOT NULL,
    rules        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX virtual_keys_owner ON virtual_keys (owner);
