//! The token server's signing keys: Ed25519 (JWS `EdDSA`), made on first use and kept in the
//! store so every instance signs with the same key and verifies every other's tokens. The newest
//! unretired key signs; every key verifies (a rotated key keeps verifying the tokens it signed
//! until they expire). The JWKS document lists the public halves with their `kid`.

use std::collections::HashMap;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};

use crate::seal::{self, Sealer};
use crate::store::{SigningKeyRecord, SigningKeyStore, StoreError};

/// Keys loaded from the store.
pub struct KeySet {
    /// `kid` and key of the signing key.
    pub signing: (String, EncodingKey),
    /// Every verifying key by `kid`, with its retirement time (ms) if retired: a retired key
    /// verifies only tokens issued before it retired, and only until they can have expired.
    pub verifying: HashMap<String, (DecodingKey, Option<i64>)>,
    /// The JWKS document.
    pub jwks: Value,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("signing", &self.signing.0)
            .field("verifying", &self.verifying.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key is unusable, or a new one could not be made.
    #[error("signing key: {0}")]
    Key(String),
}

fn key_err(e: impl std::fmt::Display) -> KeyError {
    KeyError::Key(e.to_string())
}

/// A new Ed25519 key record; the private key sealed when a sealing key is configured.
pub fn generate(now: i64, sealer: Option<&Sealer>) -> Result<SigningKeyRecord, KeyError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(key_err)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(key_err)?;
    let public = pair.public_key().as_ref().to_vec();
    let kid = crate::store::hex(&blake3::hash(&public).as_bytes()[..8]);
    let private_key = match sealer.filter(|s| s.seals()) {
        Some(s) => s.seal(pkcs8.as_ref(), &context(&kid)).map_err(key_err)?,
        None => URL_SAFE_NO_PAD.encode(pkcs8.as_ref()),
    };
    Ok(SigningKeyRecord {
        kid,
        alg: "EdDSA".to_owned(),
        private_key,
        public_key: URL_SAFE_NO_PAD.encode(&public),
        created_at: now,
        retired_at: None,
    })
}

fn jwk_of(r: &SigningKeyRecord) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": r.public_key, "kid": r.kid, "alg": "EdDSA", "use": "sig"})
}

fn context(kid: &str) -> String {
    format!("signing_keys/{kid}")
}

/// Loads the keys, making the first one if there is none (or none unretired). Keys retired
/// longer ago than a token lifetime (`lifetime_ms`, plus a minute) no longer verify.
///
/// Instances starting together on an empty store each propose a key; the store keeps one (an
/// insert only while no key is unretired, atomic among them), and every instance reads back and
/// signs with the newest unretired key — the same one.
pub async fn load(
    store: &dyn SigningKeyStore,
    now: i64,
    sealer: Option<&Sealer>,
    lifetime_ms: i64,
) -> Result<KeySet, KeyError> {
    let mut records = store.list_signing_keys().await?;
    if records.iter().all(|r| r.retired_at.is_some()) {
        store
            .insert_signing_key_if_none(&generate(now, sealer)?)
            .await?;
        records = store.list_signing_keys().await?;
    }
    records.retain(|r| {
        r.retired_at
            .is_none_or(|at| at + lifetime_ms + 60_000 > now)
    });
    build(&records, sealer)
}

/// Checks that the current signing key, if there is one, opens with the configured sealing key
/// (a startup check: a wrong or missing key is an error now, not at the first token request).
pub async fn check(store: &dyn SigningKeyStore, sealer: Option<&Sealer>) -> Result<(), KeyError> {
    let records = store.list_signing_keys().await?;
    if records.iter().any(|r| r.retired_at.is_none()) {
        build(&records, sealer)?;
    }
    Ok(())
}

/// Makes a new signing key and retires the others (they keep verifying).
pub async fn rotate(
    store: &dyn SigningKeyStore,
    now: i64,
    sealer: Option<&Sealer>,
) -> Result<String, KeyError> {
    let new = generate(now, sealer)?;
    store.insert_signing_key(&new).await?;
    store.retire_signing_keys_except(&new.kid, now).await?;
    Ok(new.kid)
}

/// The PKCS#8 bytes of a stored private key (sealed or plain).
fn private_der(r: &SigningKeyRecord, sealer: Option<&Sealer>) -> Result<Vec<u8>, KeyError> {
    if seal::is_sealed(&r.private_key) {
        seal::open(sealer, &r.private_key, &context(&r.kid)).map_err(key_err)
    } else {
        URL_SAFE_NO_PAD.decode(&r.private_key).map_err(key_err)
    }
}

/// Re-seals every stored private key under the current key (`portcullis auths rekey`); returns
/// how many were rewritten.
pub async fn reseal_all(
    store: &dyn SigningKeyStore,
    sealer: Option<&Sealer>,
) -> Result<usize, KeyError> {
    let mut n = 0;
    for r in store.list_signing_keys().await? {
        if !seal::needs_reseal(sealer, &r.private_key) {
            continue;
        }
        let der = private_der(&r, sealer)?;
        let Some(s) = sealer else { continue };
        let sealed = s.seal(&der, &context(&r.kid)).map_err(key_err)?;
        if store.replace_private_key(&r.kid, &sealed).await? {
            n += 1;
        }
    }
    Ok(n)
}

fn build(records: &[SigningKeyRecord], sealer: Option<&Sealer>) -> Result<KeySet, KeyError> {
    let signer = records
        .iter()
        .find(|r| r.retired_at.is_none())
        .ok_or_else(|| key_err("no active signing key"))?;
    let der = private_der(signer, sealer)?;
    let signing = (signer.kid.clone(), EncodingKey::from_ed_der(&der));
    let mut verifying = HashMap::new();
    let mut keys = Vec::new();
    for r in records {
        let jwk_value = jwk_of(r);
        let jwk: Jwk = serde_json::from_value(jwk_value.clone()).map_err(key_err)?;
        verifying.insert(
            r.kid.clone(),
            (DecodingKey::from_jwk(&jwk).map_err(key_err)?, r.retired_at),
        );
        keys.push(jwk_value);
    }
    Ok(KeySet {
        signing,
        verifying,
        jwks: json!({ "keys": keys }),
    })
}
