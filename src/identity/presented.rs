//! The credential a request presents, found where clients put it (`Authorization: Bearer`,
//! `x-api-key`, `x-goog-api-key`, `?key=`) and held, unchecked and unprintable, for
//! [`super::Authenticator::authenticate`].

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

use super::{agent_token, token_server, virtual_key};
use crate::secret::Secret;

/// Where a credential was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `Authorization: Bearer …` (OpenAI clients).
    Bearer,
    /// `x-api-key` (Anthropic clients).
    XApiKey,
    /// `x-goog-api-key` (Gemini clients).
    XGoogApiKey,
    /// `?key=` (Gemini clients).
    QueryKey,
}

/// A credential as presented, before any check: borrowed from the request's header where it
/// was sent in one (the header's bytes stay in the request whatever is done here, so a copy
/// would only cost an allocation and its wipe), decoded into its own wiped buffer where it was
/// percent-encoded in the query.
#[derive(Debug)]
pub struct Presented<'a> {
    /// The raw value; never logged.
    pub value: PresentedValue<'a>,
    /// Where it came from.
    pub source: CredentialSource,
}

/// A presented credential's value: printed as `***`, never as itself. A decoded copy is a
/// [`Secret`] (trimmed, wiped on drop).
pub struct PresentedValue<'a>(Value<'a>);

enum Value<'a> {
    Borrowed(&'a str),
    Decoded(Secret),
}

impl<'a> PresentedValue<'a> {
    /// Wraps a value, trimmed of surrounding white space.
    pub fn new(value: impl Into<Cow<'a, str>>) -> Self {
        Self(match value.into() {
            Cow::Borrowed(v) => Value::Borrowed(v.trim()),
            Cow::Owned(v) => Value::Decoded(Secret::new(v)),
        })
    }

    /// The raw value. Call only where the value is compared or checked.
    pub fn expose(&self) -> &str {
        match &self.0 {
            Value::Borrowed(v) => v,
            Value::Decoded(secret) => secret.expose(),
        }
    }
}

impl std::fmt::Debug for PresentedValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresentedValue(***)")
    }
}

impl Presented<'_> {
    /// What kind of credential this looks like, by its shape alone (a metric label):
    /// `agent_token`, `virtual_key`, `jwt` or `api_key`.
    pub fn kind(&self) -> &'static str {
        let v = self.value.expose();
        if v.starts_with(agent_token::FORMAT.prefix) {
            "agent_token"
        } else if v.starts_with(virtual_key::FORMAT.prefix) {
            "virtual_key"
        } else if token_server::looks_like_jwt(v) {
            "jwt"
        } else {
            "api_key"
        }
    }
}

/// Finds the credential: `Authorization: Bearer`, then `x-api-key`, then `x-goog-api-key`, then
/// the `key` query parameter. Empty values count as absent.
pub fn extract_credential<'a>(
    headers: &'a HeaderMap,
    query: Option<&'a str>,
) -> Option<Presented<'a>> {
    let header = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    // In the order of `PRESENTED_CREDENTIAL_HEADERS`.
    const SOURCES: [CredentialSource; 3] = [
        CredentialSource::Bearer,
        CredentialSource::XApiKey,
        CredentialSource::XGoogApiKey,
    ];
    let found = crate::secret::PRESENTED_CREDENTIAL_HEADERS
        .iter()
        .zip(SOURCES)
        .find_map(|(name, source)| {
            let value = header(name)?;
            let value = match source {
                CredentialSource::Bearer => bearer_token(value)?,
                _ => value,
            };
            Some((PresentedValue::new(value), source))
        })
        .or_else(|| {
            form_urlencoded::parse(query?.as_bytes())
                .find(|(k, v)| k == crate::secret::CREDENTIAL_QUERY_PARAM && !v.trim().is_empty())
                .map(|(_, v)| (PresentedValue::new(v), CredentialSource::QueryKey))
        });
    found.map(|(value, source)| Presented { value, source })
}

/// The token of an `Authorization` value (trimmed): `Bearer`, in any case, one space, then the
/// token (trimmed, not empty). Read by position: no search for the space.
fn bearer_token(value: &str) -> Option<&str> {
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case("bearer") || value.as_bytes().get(6) != Some(&b' ') {
        return None;
    }
    Some(value.get(7..)?.trim()).filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_found_in_every_place_clients_put_them() {
        let mut h = HeaderMap::new();
        assert!(extract_credential(&h, None).is_none());
        assert_eq!(
            extract_credential(&h, Some("alt=sse&key=q%2Bk"))
                .unwrap()
                .value
                .expose(),
            "q+k"
        );
        h.insert("x-goog-api-key", "g".parse().unwrap());
        assert_eq!(
            extract_credential(&h, Some("key=q")).unwrap().source,
            CredentialSource::XGoogApiKey
        );
        h.insert("x-api-key", "a".parse().unwrap());
        assert_eq!(
            extract_credential(&h, None).unwrap().source,
            CredentialSource::XApiKey
        );
        h.insert("authorization", "Basic dXNlcg==".parse().unwrap());
        assert_eq!(
            extract_credential(&h, None).unwrap().source,
            CredentialSource::XApiKey,
            "only Bearer is a key"
        );
        h.insert("authorization", "bearer  b ".parse().unwrap());
        let p = extract_credential(&h, None).unwrap();
        assert_eq!(
            (p.value.expose(), p.source),
            ("b", CredentialSource::Bearer)
        );
    }

    #[test]
    fn a_presented_value_is_trimmed_and_never_printed() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", " sk-header-secret-1 ".parse().unwrap());
        let from_header = extract_credential(&h, None).unwrap();
        let none = HeaderMap::new();
        assert_eq!(from_header.value.expose(), "sk-header-secret-1");
        let from_query = extract_credential(&none, Some("key=%20sk-query%2Bsecret%20")).unwrap();
        assert_eq!(from_query.value.expose(), "sk-query+secret");
        for p in [&from_header, &from_query] {
            let shown = format!("{p:?}");
            assert!(!shown.contains("secret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        assert_eq!(PresentedValue::new(String::from("\tk\n")).expose(), "k");
    }

    #[test]
    fn a_bearer_token_is_the_scheme_one_space_and_a_trimmed_token() {
        for (value, want) in [
            ("Bearer k", Some("k")),
            ("BEARER k", Some("k")),
            ("bEaReR   k  ", Some("k")),
            ("Bearer sk-1 2", Some("sk-1 2")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearer    ", None),
            ("Bearer\tk", None),
            ("Bearerk", None),
            ("Bearerk x", None),
            ("Bear k", None),
            ("Basic k", None),
            ("Token Bearer k", None),
            ("Bëarer k", None),
        ] {
            assert_eq!(bearer_token(value), want, "{value:?}");
        }
    }
}
