//! Secrets at rest: values the gateway writes to the store that must not be readable from a copy
//! of the database (today the token server's private signing keys; the credential pool's
//! secrets next) are sealed with ChaCha20-Poly1305 under `auth.encryption.key` (32 bytes,
//! base64), with a random 96-bit nonce per value and the row's identity as associated data.
//! A sealed value names the key id (the first bytes of the key's BLAKE3 hash), so a wrong or
//! missing key is reported as such — never used to produce garbage — and keys can be rotated.

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use serde::{Deserialize, Serialize};

use crate::secret::{Secret, random_bytes};

const PREFIX: &str = "sealed.v1.";

/// `auth.encryption.*`: the key that seals secrets at rest (the token server's private keys).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// 32 bytes, base64 (`openssl rand -base64 32`); prefer `key_env`.
    pub key: Option<Secret>,
    /// Environment variable holding the key (or `NAME_FILE`).
    pub key_env: Option<String>,
    /// Seal new secrets (default: when a key is set). `true` without a key is a startup error.
    pub enabled: Option<bool>,
    /// Earlier keys, still accepted to open values sealed before a rotation
    /// (`portcullis auths rekey` re-seals everything under `key`).
    pub previous_keys: Vec<Secret>,
    /// Set when `key` is the data directory's generated key file (not configured).
    #[serde(skip)]
    pub generated_in: Option<std::path::PathBuf>,
}

/// Why a value could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The configured key is not 32 bytes of base64.
    #[error(
        "auth.encryption.key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)"
    )]
    BadKey,
    /// The value was sealed under another key.
    #[error("the value was sealed with key {found}; the configured key is {configured}{origin}")]
    WrongKey {
        /// Key id in the value.
        found: String,
        /// Key id of the configured key.
        configured: String,
        /// Where the configured key comes from, when it was not configured.
        origin: String,
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
    /// The data directory's key file cannot be read or written, or holds no valid key.
    #[error("{0}")]
    KeyFile(String),
}

/// One key.
struct Key {
    id: String,
    key: LessSafeKey,
}

/// The configured sealing key, and earlier keys still accepted for opening (rotation).
pub struct Sealer {
    current: Key,
    /// The generated key file `current` was read from, if it was not configured.
    generated_in: Option<std::path::PathBuf>,
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
    pub fn from_config(cfg: &EncryptionConfig) -> Result<Option<Self>, SealError> {
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
        sealer.generated_in = cfg.generated_in.clone();
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
        let raw = key.key_bytes().ok_or(SealError::BadKey)?;
        let id = crate::store::hex(&blake3::hash(&raw).as_bytes()[..4]);
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &raw).map_err(|_| SealError::BadKey)?;
        Ok(Self {
            current: Key {
                id,
                key: LessSafeKey::new(unbound),
            },
            previous: Vec::new(),
            generated_in: None,
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

/// The key generated in the data directory when no `auth.encryption.key` is configured.
pub const KEY_FILE: &str = "encryption.key";

/// Gives `auth.encryption` its default key, for the commands that open the store (`serve`, the
/// store commands). With the embedded SQLite store and no configured key, the key is
/// `<data-dir>/encryption.key`, generated (`0600`, in the `0700` directory) on first use, so
/// new secrets — signing keys, pool credentials, the SSO keys — are sealed by default and a copy
/// of the database alone reveals none of them. Values stored in clear earlier still open (and
/// `portcullis auths rekey` seals them). `auth.encryption.enabled: false` generates nothing (an
/// existing file is still used to open). With a configured key, an existing file's key is kept
/// as a previous key, so values sealed under it open until `rekey` moves them. With
/// `storage.database_url` nothing is generated — instances sharing a database must share the
/// key — and the missing key is a warning.
pub fn default_key(
    enc: &mut EncryptionConfig,
    data_dir: &std::path::Path,
    shared_database: bool,
) -> Result<(), SealError> {
    if shared_database {
        if enc.key.is_none() {
            tracing::warn!(
                "auth.encryption.key is not set: the token server's signing keys, pool \
                 credentials and SSO keys are stored IN CLEAR in the database; anyone who can \
                 read it can mint tokens and use the upstream keys. Set the same key on every \
                 instance (auth.encryption.key_env), then run `portcullis auths rekey`"
            );
        }
        return Ok(());
    }
    let path = data_dir.join(KEY_FILE);
    let from_file = read_key_file(&path)?;
    match (&enc.key, from_file) {
        (Some(configured), Some(file)) => {
            let known = std::iter::once(configured)
                .chain(&enc.previous_keys)
                .any(|k| k.expose().trim() == file.expose());
            if !known {
                enc.previous_keys.push(file);
            }
        }
        (Some(_), None) => {}
        (None, Some(file)) => {
            enc.key = Some(file);
            enc.generated_in = Some(path);
        }
        (None, None) if enc.enabled == Some(false) => {}
        (None, None) => {
            enc.key = Some(generate_key_file(data_dir, &path)?);
            enc.generated_in = Some(path.clone());
            tracing::info!(
                path = %path.display(),
                "generated the key that seals secrets in the store; back it up with the \
                 database (without it, sealed values cannot be opened)"
            );
        }
    }
    Ok(())
}

/// The key in `path`, if the file exists (narrowed to `0600` if it was wider).
fn read_key_file(path: &std::path::Path) -> Result<Option<Secret>, SealError> {
    let fail = |e: String| SealError::KeyFile(format!("{}: {e}", path.display()));
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e.to_string())),
    };
    crate::store::private::private_file(path).map_err(|e| fail(e.to_string()))?;
    let key = Secret::new(text.trim());
    Sealer::from_base64(&key)
        .map_err(|_| fail("not a key (32 bytes, base64); restore it from a backup".into()))?;
    Ok(Some(key))
}

/// A new random key written to `path` (`0600`). Written to a temporary file first and linked
/// into place, so a concurrent command never reads half a key, and the first one wins.
fn generate_key_file(dir: &std::path::Path, path: &std::path::Path) -> Result<Secret, SealError> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| SealError::KeyFile(format!("{}: {e}", path.display()));
    crate::store::private::private_dir(dir).map_err(fail)?;
    let raw = random_bytes::<32>().map_err(|_| SealError::Random)?;
    let key = STANDARD.encode(raw);
    let suffix = random_bytes::<8>().map_err(|_| SealError::Random)?;
    let tmp = dir.join(format!(".{KEY_FILE}.{}", crate::store::hex(&suffix)));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(format!("{key}\n").as_bytes())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Secret::new(key)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path)?
            .ok_or_else(|| SealError::KeyFile(format!("{}: vanished", path.display()))),
        Err(e) => Err(fail(e)),
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
            origin: match &sealer.generated_in {
                Some(p) => format!(
                    " (no auth.encryption.key is configured; this is the key generated in {}: \
                     restore the file that sealed the value, or configure its key)",
                    p.display()
                ),
                None => String::new(),
            },
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

    #[test]
    fn the_data_dir_key_is_generated_once_kept_as_previous_and_never_for_a_shared_database() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let file = dir.join(KEY_FILE);
        // Off: nothing generated.
        let mut c = EncryptionConfig {
            enabled: Some(false),
            ..Default::default()
        };
        default_key(&mut c, &dir, false).unwrap();
        assert!(c.key.is_none() && !file.exists());
        // Default: generated once, then read back.
        c.enabled = None;
        default_key(&mut c, &dir, false).unwrap();
        let generated = c.key.clone().unwrap();
        let mut again = EncryptionConfig::default();
        default_key(&mut again, &dir, false).unwrap();
        assert_eq!(again.key.unwrap().expose(), generated.expose());
        let sealed = seal_if_enabled(Sealer::from_config(&c).unwrap().as_ref(), "x", "t").unwrap();
        assert!(is_sealed(&sealed));
        // A configured key wins; the file's key still opens what it sealed.
        let mut configured = EncryptionConfig {
            key: Some(Secret::new(STANDARD.encode([9u8; 32]))),
            ..Default::default()
        };
        default_key(&mut configured, &dir, false).unwrap();
        let s = Sealer::from_config(&configured).unwrap();
        assert_eq!(open(s.as_ref(), &sealed, "t").unwrap(), b"x");
        assert!(needs_reseal(s.as_ref(), &sealed));
        // A shared database: no file.
        let other = tmp.path().join("other");
        let mut shared = EncryptionConfig::default();
        default_key(&mut shared, &other, true).unwrap();
        assert!(shared.key.is_none());
        assert!(!other.join(KEY_FILE).exists());
    }
}
