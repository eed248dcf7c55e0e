//! `Secret`: the one type that holds a credential (client key, upstream key, token, encryption key).
//!
//! Its `Debug` and `Display` print a mask, it never serialises its value, and its memory is wiped on
//! drop. Reading the value needs an explicit [`Secret::expose`], which makes every use easy to find.

pub mod scrub;

use std::fmt;

use serde::{Deserialize, Deserializer};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// The headers a client presents its credential in, in the order authentication reads them
/// (`identity::extract_credential`: `Authorization: Bearer`, `x-api-key`, `x-goog-api-key`).
/// Names, not strings: a lookup by name skips parsing one per request.
pub const PRESENTED_CREDENTIAL_HEADERS: [http::HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::HeaderName::from_static("x-api-key"),
    http::HeaderName::from_static("x-goog-api-key"),
];

/// Other headers that carry a credential: never forwarded upstream, masked in captures.
const OTHER_CREDENTIAL_HEADERS: [&str; 4] =
    ["api-key", "proxy-authorization", "cookie", "set-cookie"];

/// The query parameter a client may present its credential in (Gemini's `?key=`).
pub const CREDENTIAL_QUERY_PARAM: &str = "key";

/// True for a (lower-case) header name that carries a credential — the one list behind
/// extraction, stripping before a request goes upstream, and capture masking.
pub fn is_credential_header(name: &str) -> bool {
    PRESENTED_CREDENTIAL_HEADERS
        .iter()
        .any(|h| h.as_str() == name)
        || OTHER_CREDENTIAL_HEADERS.contains(&name)
}

/// A credential value that cannot be printed by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    /// The value as a 32-byte key written in base64 (standard, or URL-safe without padding), if
    /// it is one: the form of `auth.encryption.key` (`seal`) and the rule config validation checks.
    pub fn key_bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let text = self.expose().trim();
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .ok()
            .filter(|raw| raw.len() == 32)
    }

    /// Wraps a value. Leading and trailing whitespace (a newline from a `*_FILE`) is removed.
    pub fn new(value: impl Into<String>) -> Self {
        let mut s: String = value.into();
        let trimmed = s.trim();
        if trimmed.len() != s.len() {
            let owned = trimmed.to_owned();
            s.zeroize();
            s = owned;
        }
        Self(s.into_boxed_str())
    }

    /// The raw value. Call only where the value is put on the wire or compared.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A masked hint safe for logs and API responses: a well-known public prefix ([`KNOWN_PREFIXES`])
    /// and at most an eighth of the rest, never more than 4 characters, from its end — e.g.
    /// `sk-ant-…x9f2` for a 39-character Anthropic key, `sk-…cd` for a 20-character one. Values
    /// shorter than 16 characters show nothing but the mask (not even their length).
    pub fn hint(&self) -> String {
        let v = &*self.0;
        let chars = v.chars().count();
        if chars < 16 {
            return "…".to_owned();
        }
        let prefix = KNOWN_PREFIXES
            .iter()
            .find(|p| v.starts_with(**p))
            .copied()
            .unwrap_or("");
        let rest = chars - prefix.chars().count();
        let tail: String = v.chars().skip(chars - (rest / 8).min(4)).collect();
        format!("{prefix}…{tail}")
    }

    /// Constant-time comparison with a presented credential.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl serde::Serialize for Secret {
    /// Serialises as a mask: configuration dumps (`check-config`) never reveal the value.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("*** ({})", self.hint()))
    }
}

/// Prefixes that name a credential's kind and are the same for everyone's: a hint shows them.
/// Longest first where one extends another.
pub const KNOWN_PREFIXES: &[&str] = &[
    "sk-ant-api03-",
    "sk-ant-oat01-",
    "sk-ant-",
    "sk-proj-",
    "sk-svcacct-",
    "sk-pcl-",
    "sk-or-v1-",
    "sk-",
    "AIza",
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "xai-",
    "pcl_",
];

/// `base64url(SHA-256(verifier))`, the PKCE S256 challenge (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| std::io::Error::other(format!("no OS randomness: {e}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_serialize_never_show_the_value() {
        let s = Secret::new("sk-ant-abcdefghijklmnop-x9f2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert!(!json.contains("abcdefghijklmnop"), "{json}");
        assert_eq!(s.hint(), "sk-ant-…f2");
    }

    #[test]
    fn hints_show_a_known_prefix_and_at_most_an_eighth_of_the_rest() {
        // Issue 14: 11 of 12 characters of a short secret were shown.
        for (value, hint) in [
            ("abcdefghijkl", "…"),
            ("sk-abcdefghijk", "…"),
            ("abcdefghijklmnop", "…op"),
            ("sk-abcdefghijklm", "sk-…m"),
            ("unknownprefix-0123456789abcdefghij", "…ghij"),
            (
                "sk-ant-api03-0123456789abcdefghijklmnopqrstuvwxyz",
                "sk-ant-api03-…wxyz",
            ),
            ("AIzaSyA-0123456789abcdefghijklmnopqrst", "AIza…qrst"),
            ("ghp_0123456789abcdefghij", "ghp_…ij"),
        ] {
            let h = Secret::new(value).hint();
            assert_eq!(h, hint, "{value}");
            let shown = h.chars().count() - 1;
            let prefix = hint.split('…').next().unwrap_or("").len();
            assert!((shown - prefix) * 8 <= value.len() - prefix, "{value}: {h}");
        }
    }

    #[test]
    fn short_values_show_only_the_mask_and_whitespace_is_trimmed() {
        let s = Secret::new("  short\n");
        assert_eq!(s.expose(), "short");
        assert_eq!(s.hint(), "…");
    }

    #[test]
    fn matches_compares_whole_values() {
        let s = Secret::new("k1-secret");
        assert!(s.matches("k1-secret"));
        assert!(!s.matches("k1-secre"));
        assert!(!s.matches("k1-secret2"));
        assert!(!s.matches(""));
    }
}
