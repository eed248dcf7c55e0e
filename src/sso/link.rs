//! Login links: the `t` in `/auth/login?t=…` that a sandbox answer hands out.
//!
//! A link is self-contained and authenticated — `version | issued (ms) | nonce | bound token id`
//! followed by a 128-bit keyed BLAKE3 tag under a key every instance shares (kept in the store) —
//! so handing one out costs no store write, and a flood of unauthenticated requests cannot fill
//! the database. It is single-use: starting a login records the nonce, and a second start with the
//! same link is refused. It lives [`LINK_TTL_MS`].

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// How long a login link works: 10 minutes.
pub const LINK_TTL_MS: i64 = 10 * 60 * 1000;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 8 + NONCE_LEN;

/// What a valid link says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    /// Single-use id (the nonce, encoded).
    pub id: String,
    /// Issue time (ms).
    pub issued_at: i64,
    /// The agent token whose session lapsed, for a re-authentication link.
    pub bound_token_id: Option<String>,
}

impl LinkClaims {
    /// When the link stops working (ms).
    pub fn expires_at(&self) -> i64 {
        self.issued_at + LINK_TTL_MS
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link this gateway made (or altered).
    #[error("the login link is not valid")]
    Invalid,
    /// Older than [`LINK_TTL_MS`].
    #[error("the login link has expired")]
    Expired,
}

/// Makes a link issued at `now` (ms), optionally bound to an agent token.
pub fn mint(
    key: &[u8; 32],
    now: i64,
    nonce: [u8; NONCE_LEN],
    bound_token_id: Option<&str>,
) -> String {
    let mut payload = Vec::with_capacity(HEADER_LEN + 32 + TAG_LEN);
    payload.push(VERSION);
    payload.extend_from_slice(&now.to_be_bytes());
    payload.extend_from_slice(&nonce);
    if let Some(id) = bound_token_id {
        payload.extend_from_slice(id.as_bytes());
    }
    let tag = blake3::keyed_hash(key, &payload);
    payload.extend_from_slice(&tag.as_bytes()[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(payload)
}

/// Checks a link's tag and age at `now` (ms); does not consume it.
pub fn verify(key: &[u8; 32], link: &str, now: i64) -> Result<LinkClaims, LinkError> {
    if link.len() > 256 {
        return Err(LinkError::Invalid);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(link.trim())
        .map_err(|_| LinkError::Invalid)?;
    if raw.len() < HEADER_LEN + TAG_LEN || raw[0] != VERSION {
        return Err(LinkError::Invalid);
    }
    let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
    let expected = blake3::keyed_hash(key, payload);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &expected.as_bytes()[..TAG_LEN],
        tag,
    )) {
        return Err(LinkError::Invalid);
    }
    let mut issued = [0u8; 8];
    issued.copy_from_slice(&payload[1..9]);
    let issued_at = i64::from_be_bytes(issued);
    let bound = &payload[HEADER_LEN..];
    let bound_token_id = if bound.is_empty() {
        None
    } else {
        Some(
            std::str::from_utf8(bound)
                .map_err(|_| LinkError::Invalid)?
                .to_owned(),
        )
    };
    let claims = LinkClaims {
        id: URL_SAFE_NO_PAD.encode(&payload[9..HEADER_LEN]),
        issued_at,
        bound_token_id,
    };
    // A link from the future (clock skew between instances beyond a minute) is as bad as an old one.
    if now >= claims.expires_at() || issued_at > now + 60_000 {
        return Err(LinkError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn a_link_round_trips_and_expires() {
        let link = mint(&KEY, 1_000, [1; NONCE_LEN], Some("abc123"));
        assert!(link.len() < 80, "{link}");
        let c = verify(&KEY, &link, 2_000).unwrap();
        assert_eq!(c.bound_token_id.as_deref(), Some("abc123"));
        assert_eq!(c.issued_at, 1_000);
        assert_eq!(
            verify(&KEY, &link, 1_000 + LINK_TTL_MS),
            Err(LinkError::Expired)
        );
        let plain = mint(&KEY, 1_000, [2; NONCE_LEN], None);
        let p = verify(&KEY, &plain, 1_500).unwrap();
        assert_eq!(p.bound_token_id, None);
        assert_ne!(p.id, c.id);
    }

    #[test]
    fn altered_or_foreign_links_are_refused() {
        let link = mint(&KEY, 1_000, [1; NONCE_LEN], Some("abc123"));
        assert_eq!(verify(&[8; 32], &link, 2_000), Err(LinkError::Invalid));
        let mut raw = URL_SAFE_NO_PAD.decode(&link).unwrap();
        let last = raw.len() - TAG_LEN - 1;
        raw[last] ^= 1; // a different bound token id
        assert_eq!(
            verify(&KEY, &URL_SAFE_NO_PAD.encode(&raw), 2_000),
            Err(LinkError::Invalid)
        );
        for junk in ["", "x", "!!!!", &"A".repeat(300)] {
            assert_eq!(verify(&KEY, junk, 2_000), Err(LinkError::Invalid), "{junk}");
        }
    }
}
