//! Secrets at rest: values the gateway writes to the store that must not be readable from a copy
//! of the database (today the token server's private signing keys; the credential pool's
//! secrets next) are sealed with ChaCha20-Poly1305 under `auth.encryption.key` (32 bytes,
//! base64), with a random 96-bit nonce per value and the row's identity as associated data.
//! A sealed value names the key id (the first bytes of the key's BLAKE3 hash), so a wrong or
//! missing key is reported as such — never used to produce garbage — and keys can be rotated.

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::secret::{Secret, random_bytes};

const PREFIX: &str = "sealed.v1.";

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The configured key is not 32 bytes of base64.
    #[error(
        "auth.encryption.key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)"
    )]
    BadKey,
    /// The value was sealed under another key.
    #[error("the value was sealed with key {found}; the configured key is {configured}")]
    WrongKey {
        /// Key id in the value.
        found: String,
        /// Key id of the configured key.
        configured: String,
    },
    /// The value is sealed and no key is configured.
    #[error("the value is sealed (key {0}) and no auth.encryption.key is configured")]
    NoKey(String),
    /// Tampered or truncated.
    #[error("the sealed value does not authenticate (altered, or sealed for another row)")]
    Corrupt,
    /// Randomness failed.
    #[error("no randomness for a nonce")]
    Random,
}

/// One key.
struct Key {
    id: String,
    key: LessSafeKey,
}

/// The configured sealing key, and earlier keys still accepted for opening (rotation).
pub struct Sealer {
    current: Key,
    previous: Vec<Key>,
    /// False when `auth.encryption.enabled: false`: values are opened but new ones stay plain.
    seal_new: bool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("id", &self.current.id)
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl Sealer {
    /// The sealer of `auth.encryption` (none without a key); `enabled: true` without a key, or
    /// a malformed key, is an error.
    pub fn from_config(cfg: &crate::config::EncryptionConfig) -> Result<Option<Self>, SealError> {
        let Some(key) = &cfg.key else {
            return match cfg.enabled {
                Some(true) => Err(SealError::BadKey),
                _ => Ok(None),
            };
        };
        let mut sealer = Self::from_base64(key)?;
        sealer.previous = cfg
            .previous_keys
            .iter()
            .map(|k| Self::from_base64(k).map(|s| s.current))
            .collect::<Result<_, _>>()?;
        sealer.seal_new = cfg.enabled != Some(false);
        Ok(Some(sealer))
    }

    /// True when new values are sealed (`auth.encryption.enabled` is not false).
    pub fn seals(&self) -> bool {
        self.seal_new
    }

    /// Id of the current key (the first bytes of its BLAKE3 hash, as hex).
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// The sealer of a base64 32-byte key.
    pub fn from_base64(key: &Secret) -> Result<Self, SealError> {
        let raw = STANDARD
            .decode(key.expose().trim())
            .or_else(|_| URL_SAFE_NO_PAD.decode(key.expose().trim()))
            .map_err(|_| SealError::BadKey)?;
        if raw.len() != 32 {
            return Err(SealError::BadKey);
        }
        let id = crate::store::hex(&blake3::hash(&raw).as_bytes()[..4]);
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &raw).map_err(|_| SealError::BadKey)?;
        Ok(Self {
            current: Key {
                id,
                key: LessSafeKey::new(unbound),
            },
            previous: Vec::new(),
            seal_new: true,
        })
    }

    /// Seals `plain` bound to `context` (e.g. `signing_keys/<kid>`).
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<String, SealError> {
        let nonce = random_bytes::<12>().map_err(|_| SealError::Random)?;
        let mut buf = plain.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .map_err(|_| SealError::Corrupt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!(
            "{PREFIX}{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(out)
        ))
    }
}

/// `plain` sealed for `context` when a sealer is configured and sealing is on, else as is.
pub fn seal_if_enabled(
    sealer: Option<&Sealer>,
    plain: &str,
    context: &str,
) -> Result<String, SealError> {
    match sealer {
        Some(s) if s.seal_new => s.seal(plain.as_bytes(), context),
        _ => Ok(plain.to_owned()),
    }
}

/// True when `stored` is sealed under another key than the current one (or not sealed while
/// sealing is on): `rekey` rewrites it.
pub fn needs_reseal(sealer: Option<&Sealer>, stored: &str) -> bool {
    match (sealer, stored.strip_prefix(PREFIX)) {
        (Some(s), Some(rest)) => !rest.starts_with(&format!("{}.", s.current.id)),
        (Some(s), None) => s.seal_new,
        (None, _) => false,
    }
}

/// True when `stored` is a sealed value.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Opens `stored` (sealed for `context`) with `sealer`; an unsealed value is returned as is.
pub fn open(sealer: Option<&Sealer>, stored: &str, context: &str) -> Result<Vec<u8>, SealError> {
    let Some(rest) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.as_bytes().to_vec());
    };
    let (id, body) = rest.split_once('.').ok_or(SealError::Corrupt)?;
    let sealer = sealer.ok_or_else(|| SealError::NoKey(id.to_owned()))?;
    let Some(key) = std::iter::once(&sealer.current)
        .chain(&sealer.previous)
        .find(|k| k.id == id)
    else {
        return Err(SealError::WrongKey {
            found: id.to_owned(),
            configured: sealer.current.id.clone(),
        });
    };
    let raw = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| SealError::Corrupt)?;
    if raw.len() < 12 + 16 {
        return Err(SealError::Corrupt);
    }
    let (nonce, ct) = raw.split_at(12);
    let mut nonce_bytes = [0u8; 12];
    nonce_bytes.copy_from_slice(nonce);
    let mut buf = ct.to_vec();
    let plain = key
        .key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(context.as_bytes()),
            &mut buf,
        )
        .map_err(|_| SealError::Corrupt)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Sealer {
        Sealer::from_base64(&Secret::new(STANDARD.encode([b; 32]))).unwrap()
    }

    #[test]
    fn seal_and_open_bound_to_their_row_and_key() {
        let k = key(1);
        let s = k.seal(b"private", "signing_keys/a").unwrap();
        assert!(is_sealed(&s) && !s.contains("private"));
        assert_eq!(open(Some(&k), &s, "signing_keys/a").unwrap(), b"private");
        assert_eq!(
            open(Some(&k), &s, "signing_keys/b"),
            Err(SealError::Corrupt)
        );
        assert!(matches!(
            open(Some(&key(2)), &s, "signing_keys/a"),
            Err(SealError::WrongKey { .. })
        ));
        assert!(matches!(
            open(None, &s, "signing_keys/a"),
            Err(SealError::NoKey(_))
        ));
        assert_eq!(open(None, "plain", "x").unwrap(), b"plain");
        let mut t = s.clone();
        t.pop();
        t.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            open(Some(&k), &t, "signing_keys/a"),
            Err(SealError::Corrupt)
        );
        assert_eq!(
            Sealer::from_base64(&Secret::new("c2hvcnQ=")).err(),
            Some(SealError::BadKey)
        );
    }
}
