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

/// The configured sealing key.
pub struct Sealer {
    id: String,
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("id", &self.id).finish()
    }
}

impl Sealer {
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
            id,
            key: LessSafeKey::new(unbound),
        })
    }

    /// Seals `plain` bound to `context` (e.g. `signing_keys/<kid>`).
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<String, SealError> {
        let nonce = random_bytes::<12>().map_err(|_| SealError::Random)?;
        let mut buf = plain.to_vec();
        self.key
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
            self.id,
            URL_SAFE_NO_PAD.encode(out)
        ))
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
    if id != sealer.id {
        return Err(SealError::WrongKey {
            found: id.to_owned(),
            configured: sealer.id.clone(),
        });
    }
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
    let plain = sealer
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
