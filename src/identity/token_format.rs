//! The shape the gateway's issued secrets share: `<prefix><id>_<secret><check>` — agent tokens
//! (`sk-pcl-`, [`super::agent_token`]) and virtual keys (`sk-pvk-`, [`super::virtual_key`]).
//!
//! - `id`: 12 base62 characters, the public id (logs and listings show `<prefix><id>`), looked up
//!   in O(1).
//! - `secret`: 43 base62 characters (256 bits from the OS); only a hash of it is stored.
//! - `check`: 6 base62 characters of a BLAKE3 checksum over everything before it (prefix
//!   included, so a token of one kind never parses as the other), so typos and random strings
//!   are refused before any store or hash work.
//!
//! Each kind is a [`TokenFormat`] constant; the hashing of the secret is the kind's own.

use crate::secret::{Secret, random_bytes};

/// Length of the public id.
pub const ID_LEN: usize = 12;
/// Length of the secret part.
pub const SECRET_LEN: usize = 43;
/// Length of the checksum.
pub const CHECK_LEN: usize = 6;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// One kind of issued token: its prefix, and how people are told about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFormat {
    /// What every token of this kind starts with (`sk-pcl-`).
    pub prefix: &'static str,
    /// What people call it (`agent token`), for messages.
    pub kind: &'static str,
    /// The command that lists the ids (`portcullis tokens list`), for messages.
    pub list_command: &'static str,
}

/// The parts of a well-formed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    /// Public id.
    pub id: &'a str,
    /// The secret part.
    pub secret: &'a str,
}

/// A newly drawn token: its id, its secret, and the whole value (shown to the user once).
#[derive(Debug)]
pub struct FreshToken {
    /// Public id.
    pub id: String,
    /// The secret part (to hash for the store).
    pub secret: Secret,
    /// The whole token.
    pub token: Secret,
}

impl TokenFormat {
    /// The length of every well-formed token of this kind.
    pub const fn token_len(&self) -> usize {
        self.prefix.len() + ID_LEN + 1 + SECRET_LEN + CHECK_LEN
    }

    /// True when `value` claims to be of this kind (starts with the prefix), well-formed or not.
    pub fn claims(&self, value: &str) -> bool {
        value.starts_with(self.prefix)
    }

    /// Checks the shape and checksum; `None` for anything that is not a token of this kind.
    pub fn parse<'a>(&self, token: &'a str) -> Option<ParsedToken<'a>> {
        // ASCII first: the splits below are at byte offsets, which must be character boundaries.
        if token.len() != self.token_len() || !token.starts_with(self.prefix) || !token.is_ascii() {
            return None;
        }
        let body = &token[self.prefix.len()..];
        let (id, rest) = body.split_at(ID_LEN);
        let rest = rest.strip_prefix('_')?;
        let (secret, check) = rest.split_at(SECRET_LEN);
        let all_base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(all_base62(id) && all_base62(secret) && all_base62(check)) {
            return None;
        }
        let expected = checksum(&token[..token.len() - CHECK_LEN]);
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), check.as_bytes()).into();
        matches.then_some(ParsedToken { id, secret })
    }

    /// The token made of `id` and `secret`, with its checksum. Both must be base62 of the right
    /// length for the result to parse.
    pub fn assemble(&self, id: &str, secret: &str) -> Secret {
        let head = format!("{}{id}_{secret}", self.prefix);
        let check = checksum(&head);
        Secret::new(format!("{head}{check}"))
    }

    /// A new token: a random id and a random 256-bit secret.
    pub fn draw(&self) -> std::io::Result<FreshToken> {
        let id = random_base62(ID_LEN)?;
        let secret = Secret::new(random_base62(SECRET_LEN)?);
        let token = self.assemble(&id, secret.expose());
        Ok(FreshToken { id, secret, token })
    }

    /// How a token appears in logs and listings: `<prefix><id>`.
    pub fn display_id(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
    }

    /// `<prefix>abc` or `abc` → `abc`.
    pub fn bare_id<'a>(&self, id: &'a str) -> &'a str {
        id.trim().strip_prefix(self.prefix).unwrap_or(id.trim())
    }

    /// The id a command-line argument names: the whole token (checked, so a mistyped one is not
    /// read as an id), `<prefix><id>`, or `<id>`. The refusal never echoes the argument.
    pub fn id_from_argument<'a>(&self, arg: &'a str) -> Result<&'a str, String> {
        let arg = arg.trim();
        if let Some(token) = self.parse(arg) {
            return Ok(token.id);
        }
        if arg.contains('_') {
            return Err(format!(
                "that looks like a whole {kind} but is not one this gateway issued (a character is wrong or missing); give the {kind}'s id instead (`{list}` shows it)",
                kind = self.kind,
                list = self.list_command,
            ));
        }
        Ok(self.bare_id(arg))
    }
}

fn checksum(text: &str) -> String {
    let digest = blake3::hash(text.as_bytes());
    let mut n = u64::from_le_bytes(digest.as_bytes()[..8].try_into().unwrap_or([0; 8]));
    let mut out = String::with_capacity(CHECK_LEN);
    for _ in 0..CHECK_LEN {
        out.push(BASE62[(n % 62) as usize] as char);
        n /= 62;
    }
    out
}

/// `n` uniformly random base62 characters.
fn random_base62(n: usize) -> std::io::Result<String> {
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for b in random_bytes::<64>()? {
            // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
            if b < 248 && out.len() < n {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: TokenFormat = TokenFormat {
        prefix: "sk-one-",
        kind: "one token",
        list_command: "portcullis ones list",
    };
    const TWO: TokenFormat = TokenFormat {
        prefix: "sk-two-",
        kind: "two token",
        list_command: "portcullis twos list",
    };

    #[test]
    fn drawn_tokens_parse_and_tampering_is_caught() {
        let f = ONE.draw().unwrap();
        let t = f.token.expose();
        assert_eq!(t.len(), ONE.token_len());
        let p = ONE.parse(t).unwrap();
        assert_eq!((p.id, p.secret), (f.id.as_str(), f.secret.expose()));
        // Any single changed character breaks the checksum or the shape.
        for i in ONE.prefix.len()..t.len() {
            let mut bytes = t.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(
                ONE.parse(&changed).is_none() || changed == t,
                "position {i}"
            );
        }
        for bad in [
            "",
            "sk-one-",
            "sk-proj-abc",
            &t[..t.len() - 1],
            &format!("{t}x"),
        ] {
            assert!(ONE.parse(bad).is_none(), "{bad}");
        }
        assert_ne!(ONE.draw().unwrap().token, f.token);
    }

    #[test]
    fn a_token_of_the_right_length_with_a_multibyte_character_is_refused_not_a_panic() {
        // Found by reading, confirmed by the `credentials` fuzz target: `?key=` carries any
        // UTF-8, and a character across the id's or the secret's end panicked in `split_at`.
        for at in [
            ONE.prefix.len() + ID_LEN - 1,
            ONE.token_len() - CHECK_LEN - 1,
        ] {
            let mut t = "a".repeat(ONE.token_len() - 1);
            t.replace_range(..ONE.prefix.len(), ONE.prefix);
            t.replace_range(at..at + 1, "é");
            assert_eq!(t.len(), ONE.token_len());
            assert!(ONE.parse(&t).is_none());
            assert!(ONE.id_from_argument(&t).is_ok());
        }
    }

    #[test]
    fn one_kind_never_parses_as_another() {
        let f = ONE.draw().unwrap();
        let other = format!("{}{}", TWO.prefix, &f.token.expose()[ONE.prefix.len()..]);
        assert!(
            TWO.parse(&other).is_none(),
            "the checksum covers the prefix"
        );
        assert!(
            TWO.parse(TWO.assemble(&f.id, f.secret.expose()).expose())
                .is_some()
        );
    }

    #[test]
    fn commands_accept_the_whole_token_or_its_id() {
        let f = ONE.draw().unwrap();
        let t = f.token.expose();
        assert_eq!(ONE.id_from_argument(t), Ok(f.id.as_str()));
        assert_eq!(ONE.id_from_argument(&format!(" {t}\n")), Ok(f.id.as_str()));
        assert_eq!(
            ONE.id_from_argument(&ONE.display_id(&f.id)),
            Ok(f.id.as_str())
        );
        assert_eq!(ONE.id_from_argument(&f.id), Ok(f.id.as_str()));
        let other = if t.ends_with('x') { 'y' } else { 'x' };
        let typo = format!("{}{other}", &t[..t.len() - 1]);
        let refused = ONE.id_from_argument(&typo).unwrap_err();
        assert!(
            refused.contains("ones list") && refused.contains("one token"),
            "{refused}"
        );
        assert!(
            !refused.contains(&f.id),
            "the refusal must not echo the token"
        );
        assert_eq!(ONE.bare_id(" sk-one-abc "), "abc");
        assert!(ONE.claims("sk-one-x") && !ONE.claims("sk-two-x"));
    }

    #[test]
    fn secrets_carry_256_bits() {
        // 43 base62 characters: 43 × log2(62) ≈ 256.03 bits.
        assert!(SECRET_LEN as f64 * 62f64.log2() >= 256.0);
    }
}
