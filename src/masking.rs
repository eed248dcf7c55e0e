//! The secrets logs and wire captures must never carry, as one live set: the configured ones
//! (client keys, the management key, the JWT and encryption keys, SSO and device-login client
//! secrets, credentials in backend URLs and headers) and the credential pool's current secrets —
//! those added through the management API, device logins and refreshes included, since the set
//! is rebuilt whenever the pool changes ([`SecretSource::generation`]).
//!
//! The composition root gives the fixed part (`config::Config::secrets` and each backend's
//! `configured_secrets`) and the pool as the live source. [`LiveSecrets::masker`] hands out the
//! current [`Masker`]; it replaces every secret with `***` in a line, and
//! [`Masker::mask_boundary`] masks one split across two stream chunks.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::secret::Secret;

/// What a masked secret becomes.
const MASK: &str = "***";

/// Shortest secret masked: a shorter one would mask ordinary text.
const MIN_LEN: usize = 6;

/// Where the secrets that change at run time come from (the credential pool).
pub trait SecretSource: Send + Sync {
    /// Changes whenever [`SecretSource::secrets`] may have.
    fn generation(&self) -> u64;
    /// The current secrets.
    fn secrets(&self) -> Vec<Secret>;
}

/// The pool's credentials are the live part of the set: it follows the pool's generation.
impl SecretSource for crate::pool::Pool {
    fn generation(&self) -> u64 {
        crate::pool::Pool::generation(self)
    }

    fn secrets(&self) -> Vec<Secret> {
        crate::pool::Pool::secrets(self)
    }
}

/// The fixed secrets and the live source, with the masker of the source's current generation.
pub struct LiveSecrets {
    fixed: Vec<Secret>,
    source: Option<Arc<dyn SecretSource>>,
    current: RwLock<(u64, Arc<Masker>)>,
}

impl std::fmt::Debug for LiveSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSecrets")
            .field("fixed", &self.fixed.len())
            .finish()
    }
}

impl LiveSecrets {
    /// `fixed` plus whatever `source` holds at the time of each use.
    pub fn new(fixed: Vec<Secret>, source: Option<Arc<dyn SecretSource>>) -> Self {
        let generation = source.as_ref().map_or(0, |s| s.generation());
        let masker = Arc::new(Masker::new(
            fixed
                .iter()
                .cloned()
                .chain(source.iter().flat_map(|s| s.secrets())),
        ));
        Self {
            fixed,
            source,
            current: RwLock::new((generation, masker)),
        }
    }

    /// The masker for the secrets as they are now.
    pub fn masker(&self) -> Arc<Masker> {
        let generation = self.source.as_ref().map_or(0, |s| s.generation());
        {
            let current = self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if current.0 == generation {
                return current.1.clone();
            }
        }
        let masker = Arc::new(Masker::new(
            self.fixed
                .iter()
                .cloned()
                .chain(self.source.iter().flat_map(|s| s.secrets())),
        ));
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (generation, masker.clone());
        masker
    }
}

/// Replaces known secrets in text.
#[derive(Debug, Default)]
pub struct Masker {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Vec<String>,
}

impl Masker {
    /// A masker for `secrets` (those shorter than 6 bytes are ignored).
    pub fn new(secrets: impl IntoIterator<Item = Secret>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(|s| s.expose().trim().to_owned())
            .filter(|s| s.len() >= MIN_LEN)
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// Masks every secret in `line`.
    pub fn mask(&self, line: &mut String) {
        if let Cow::Owned(masked) = self.mask_str(line) {
            *line = masked;
        }
    }

    /// `text` with every secret masked (borrowed when there is none).
    pub fn mask_str<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), MASK));
            }
        }
        out
    }

    /// Masks a secret that begins at the end of `prev` and ends at the start of `next` (two
    /// adjacent chunks of one stream), in both.
    pub fn mask_boundary(&self, prev: &mut Bytes, next: &mut Bytes) {
        for s in &self.secrets {
            let s = s.as_bytes();
            let tail_len = prev.len().min(s.len() - 1);
            let head_len = next.len().min(s.len() - 1);
            if tail_len == 0 || head_len == 0 {
                continue;
            }
            let mut joined = prev[prev.len() - tail_len..].to_vec();
            joined.extend_from_slice(&next[..head_len]);
            let found = memchr::memmem::find_iter(&joined, s)
                .find(|&at| at < tail_len && at + s.len() > tail_len);
            if let Some(at) = found {
                let cut = prev.len() - tail_len + at;
                let mut p = prev[..cut].to_vec();
                p.extend_from_slice(MASK.as_bytes());
                *prev = Bytes::from(p);
                let skip = at + s.len() - tail_len;
                let mut n = MASK.as_bytes().to_vec();
                n.extend_from_slice(&next[skip..]);
                *next = Bytes::from(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Source(AtomicU64, std::sync::Mutex<Vec<Secret>>);

    impl SecretSource for Source {
        fn generation(&self) -> u64 {
            self.0.load(Ordering::Acquire)
        }
        fn secrets(&self) -> Vec<Secret> {
            self.1.lock().unwrap().clone()
        }
    }

    #[test]
    fn secrets_added_at_run_time_are_masked_once_the_source_changes() {
        let source = Arc::new(Source(AtomicU64::new(1), Default::default()));
        let live = LiveSecrets::new(vec![Secret::new("fixed-secret-1")], Some(source.clone()));
        assert_eq!(live.masker().mask_str("a fixed-secret-1 b"), "a *** b");
        assert_eq!(
            live.masker().mask_str("sk-added-later-99"),
            "sk-added-later-99"
        );
        source
            .1
            .lock()
            .unwrap()
            .push(Secret::new("sk-added-later-99"));
        source.0.store(2, Ordering::Release);
        assert_eq!(live.masker().mask_str("x sk-added-later-99"), "x ***");
    }

    #[test]
    fn a_secret_split_across_two_chunks_is_masked_in_both() {
        let m = Masker::new([Secret::new("sk-upstreamEVILsecret0123456789abcd")]);
        let mut prev = Bytes::from_static(b"data: {\"x\":\"sk-upstrea");
        let mut next = Bytes::from_static(b"mEVILsecret0123456789abcd\"}\n\n");
        m.mask_boundary(&mut prev, &mut next);
        assert_eq!(&prev[..], b"data: {\"x\":\"***");
        assert_eq!(&next[..], b"***\"}\n\n");
        let mut a = Bytes::from_static(b"nothing");
        let mut b = Bytes::from_static(b" here");
        m.mask_boundary(&mut a, &mut b);
        assert_eq!((&a[..], &b[..]), (&b"nothing"[..], &b" here"[..]));
    }
}
