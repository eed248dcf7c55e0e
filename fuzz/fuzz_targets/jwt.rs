//! JWT verification (`identity/token_server.rs`, `TokenServer::verify`) with a fixed key: the
//! gateway's token server with an HS256 secret, over a SQLite store (in the temporary directory) holding one
//! enabled user, its clock frozen.
//!
//! Input, by its first line:
//! - `signed`: the second line is the JOSE header (empty: `{"alg":"HS256","typ":"JWT"}`), the
//!   rest the payload, `$SUB` in it replaced by the user's id; both are signed with the server's
//!   secret. `verify` accepts the token only when it says what an issued token says: the server's
//!   issuer and audience, that user, a lifetime no longer than the server issues, not expired
//!   (30 s leeway), not issued or valid only in the future. A second `verify` (answered from the
//!   verified-token cache) and `verify_cached` agree with the first.
//! - `forged`: the same, signed with another secret: always refused.
//! - anything else: the whole input is the token (garbage, a `none` algorithm, EdDSA with an
//!   unknown `kid`…): always refused, never a panic. The shape checks `looks_like_jwt` and
//!   `external::unverified_issuer` run on it too.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use portcullis::clock::ManualClock;
use portcullis::identity::token_server::{Claims, TokenServer, TokenSettings};
use portcullis::secret::Secret;
use portcullis::store::{SqlStore, UserStore};
use portcullis_fuzz::first_line;

const SECRET: &str = "fuzz-hs256-secret-0123456789abcdef0123";
const OTHER_SECRET: &str = "another-secret-0123456789abcdef012345";
const ISSUER: &str = "https://gateway.test";
const AUDIENCE: &str = "portcullis";
const NOW_S: i64 = 1_700_000_000;
const LIFETIME_S: i64 = 3600;
const LEEWAY_S: i64 = 30;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    server: TokenServer,
    user: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (server, user) = runtime.block_on(async {
            let dir =
                std::env::temp_dir().join(format!("portcullis-fuzz-jwt-{}", std::process::id()));
            let store = Arc::new(SqlStore::open_sqlite(&dir).await.expect("a store"));
            let user = store
                .upsert_user("local", "fuzz", None, None, NOW_S * 1000)
                .await
                .expect("a user")
                .id;
            let clock = Arc::new(ManualClock::new(
                UNIX_EPOCH + Duration::from_secs(NOW_S as u64),
            ));
            let settings = TokenSettings {
                issuer: ISSUER.to_owned(),
                audience: AUDIENCE.to_owned(),
                lifetime: Duration::from_secs(LIFETIME_S as u64),
                hs256_secret: Some(Secret::new(SECRET)),
                brute_force: Default::default(),
                encryption: Default::default(),
            };
            let server = TokenServer::new(settings, store, clock, None).expect("a token server");
            (server, user)
        });
        Fixture {
            runtime,
            server,
            user,
        }
    })
}

/// `header.payload.signature`, HS256 under `secret`.
fn sign(header: &[u8], payload: &[u8], secret: &str) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = EncodingKey::from_secret(secret.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).expect("signs");
    format!("{message}.{signature}")
}

/// What an issued token says, as `verify` must require it.
fn acceptable(c: &Claims, user: &str) -> bool {
    let not_yet = c.nbf.is_some_and(|nbf| nbf > NOW_S + LEEWAY_S);
    c.iss == ISSUER
        && c.aud == AUDIENCE
        && c.sub == user
        && i128::from(c.exp) + i128::from(LEEWAY_S) > i128::from(NOW_S)
        && c.iat <= NOW_S + LEEWAY_S
        && !not_yet
        && i128::from(c.exp) - i128::from(c.iat) <= i128::from(LIFETIME_S + LEEWAY_S)
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (mode, rest) = first_line(data);
    let (token, genuine) = match mode {
        b"signed" | b"forged" => {
            let (header, payload) = first_line(rest);
            let header: &[u8] = if header.is_empty() {
                br#"{"alg":"HS256","typ":"JWT"}"#
            } else {
                header
            };
            let payload = String::from_utf8_lossy(payload).replace("$SUB", &f.user);
            let genuine = mode == b"signed";
            let secret = if genuine { SECRET } else { OTHER_SECRET };
            (sign(header, payload.as_bytes(), secret), genuine)
        }
        _ => (String::from_utf8_lossy(data).into_owned(), false),
    };
    let _ = portcullis::identity::token_server::looks_like_jwt(&token);
    let _ = portcullis::identity::external::unverified_issuer(&token);
    let first = f.runtime.block_on(f.server.verify(&token));
    match &first {
        Ok(c) => {
            assert!(
                genuine,
                "a token not signed with the server's secret was accepted"
            );
            assert!(
                acceptable(c, &f.user),
                "accepted a token no issued token looks like: {c:?}"
            );
        }
        Err(_) => {}
    }
    let second = f.runtime.block_on(f.server.verify(&token));
    assert_eq!(
        first.as_ref().ok().map(|c| &c.jti),
        second.as_ref().ok().map(|c| &c.jti),
        "the cached answer differs"
    );
    assert_eq!(first.is_ok(), second.is_ok(), "the cached answer differs");
    if let Some(c) = f.server.verify_cached(&token) {
        assert!(
            first.is_ok() && acceptable(&c, &f.user),
            "verify_cached accepted it"
        );
    }
});
