-- Local accounts for the OAuth2 token server: user passwords (users with provider 'local') and
-- service clients for the client-credentials grant. Only Argon2id hashes are stored.
CREATE TABLE user_passwords (
    user_id        TEXT PRIMARY KEY REFERENCES users (id),
    password_hash  TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE oauth_clients (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    disabled     BIGINT NOT NULL DEFAULT 0
);

-- The token server's signing keys (Ed25519). Retired keys stay to verify tokens issued before
-- their retirement until those expire.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT
);
