//! Static client API keys. Keys are held only as keyed BLAKE3 digests (under a random key made
//! at startup), so a lookup hashes the presented value once and finds its name in a map: the
//! time taken does not depend on how much of a stored key the guess got right, and the process
//! keeps no key in plain form.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// One client API key: a bare string, or `{name, key}` / `{name, key_env}` so that logs can say
/// which key was used without showing it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ApiKeyConfig {
    /// Just the key.
    Plain(Secret),
    /// A named key, given directly or through an environment variable.
    Named {
        /// Name used in logs (`key=ci-bot`).
        #[serde(default)]
        name: Option<String>,
        /// The key.
        #[serde(default)]
        key: Option<Secret>,
        /// Environment variable holding the key (or `NAME_FILE`).
        #[serde(default)]
        key_env: Option<String>,
    },
}

/// The configured keys, by digest.
pub struct ApiKeySet {
    hash_key: [u8; 32],
    by_digest: HashMap<Digest, Arc<str>, BuildHasherDefault<DigestHasher>>,
}

/// A key's keyed digest. Its bits are unpredictable without the startup key, so the map uses
/// eight of them as the hash instead of hashing the digest again.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Digest([u8; 32]);

impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// The hasher of [`Digest`]s: the eight bytes it is given.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `Digest`; anything else still hashes, slowly.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl ApiKeySet {
    /// Builds the set from the normalised `auth.api_keys` (every entry named, with a key).
    pub fn from_config(keys: &[ApiKeyConfig]) -> std::io::Result<Self> {
        let hash_key = crate::secret::random_bytes::<32>()?;
        let mut set = Self {
            hash_key,
            by_digest: HashMap::default(),
        };
        for (i, entry) in keys.iter().enumerate() {
            let (name, key) = match entry {
                ApiKeyConfig::Named {
                    name, key: Some(k), ..
                } => (name.clone().unwrap_or_else(|| format!("key-{}", i + 1)), k),
                ApiKeyConfig::Plain(k) => (format!("key-{}", i + 1), k),
                ApiKeyConfig::Named { key: None, .. } => continue,
            };
            let digest = set.digest(key.expose());
            set.by_digest
                .entry(digest)
                .or_insert_with(|| Arc::from(name));
        }
        Ok(set)
    }

    fn digest(&self, value: &str) -> Digest {
        Digest(*blake3::keyed_hash(&self.hash_key, value.as_bytes()).as_bytes())
    }

    /// The name of the key equal to `presented`, if any.
    pub fn find(&self, presented: &str) -> Option<&Arc<str>> {
        if self.by_digest.is_empty() {
            return None;
        }
        self.by_digest.get(&self.digest(presented))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn finds_keys_by_value_and_names_them() {
        let set = ApiKeySet::from_config(&[
            ApiKeyConfig::Plain(Secret::new("k-one")),
            ApiKeyConfig::Named {
                name: Some("ci".into()),
                key: Some(Secret::new("k-two")),
                key_env: None,
            },
        ])
        .unwrap();
        assert_eq!(set.find("k-one").map(|n| &**n), Some("key-1"));
        assert_eq!(set.find("k-two").map(|n| &**n), Some("ci"));
        assert!(set.find("k-three").is_none());
        assert!(set.find("").is_none());
        assert_eq!(set.len(), 2);
    }
}
