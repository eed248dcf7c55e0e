//! Credential extraction and the gateway's token formats.
//!
//! Input: the first line is a request's query string, every further line a header `name: value`
//! (lines that are not a valid header are skipped). Properties:
//! - `identity::extract_credential` finds a credential only in `Authorization: Bearer`,
//!   `x-api-key`, `x-goog-api-key` or `?key=`, in that order: the value is non-empty, trimmed and
//!   part of what its source carried; no earlier source holds one; the request without that
//!   source's headers yields a later source or nothing; each source alone yields nothing when the
//!   whole request yields nothing; the other credential headers (`api-key`, `Authorization:
//!   Basic`, cookies) never yield one.
//! - The value presented again in each form (Bearer, `x-api-key`, `x-goog-api-key`, `?key=`)
//!   extracts to itself: parse → render → parse is the identity.
//! - Agent tokens and virtual keys (`identity/token_format.rs`): whatever parses reassembles to
//!   the same text; a token assembled from fuzz-made id and secret parses back to them;
//!   `id_from_argument` answers with a part of its argument. JWT shape checks
//!   (`looks_like_jwt`, `unverified_issuer`) never panic on any value.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::identity::token_format::{ID_LEN, SECRET_LEN, TokenFormat};
use portcullis::identity::{CredentialSource, extract_credential};
use portcullis_fuzz::{base62, first_line, lines};

const PRESENTED: [(&str, CredentialSource); 3] = [
    ("authorization", CredentialSource::Bearer),
    ("x-api-key", CredentialSource::XApiKey),
    ("x-goog-api-key", CredentialSource::XGoogApiKey),
];

const FORMATS: [TokenFormat; 2] = [
    portcullis::identity::agent_token::FORMAT,
    portcullis::identity::virtual_key::FORMAT,
];

fuzz_target!(|data: &[u8]| {
    let (query, rest) = first_line(data);
    let query = std::str::from_utf8(query).ok();
    let mut headers = HeaderMap::new();
    for line in lines(rest) {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    check_extraction(&headers, query);
    // Every value a client can present: header values (any bytes, read lossily) and the query's
    // decoded values (any UTF-8: `?key=` carries what a header cannot).
    let query_values = form_urlencoded::parse(query.unwrap_or("").as_bytes()).map(|(_, v)| v);
    let header_values = headers
        .values()
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    for text in header_values
        .chain(query_values)
        .chain(query.map(Into::into))
    {
        check_token_formats(&text);
    }
    check_assembled(data);
});

fn source_rank(source: CredentialSource) -> usize {
    match source {
        CredentialSource::Bearer => 0,
        CredentialSource::XApiKey => 1,
        CredentialSource::XGoogApiKey => 2,
        CredentialSource::QueryKey => 3,
    }
}

fn without(headers: &HeaderMap, names: &[&str]) -> HeaderMap {
    let mut h = headers.clone();
    for name in names {
        h.remove(*name);
    }
    h
}

fn check_extraction(headers: &HeaderMap, query: Option<&str>) {
    let found = extract_credential(headers, query);
    let only_others = without(headers, &PRESENTED.map(|(n, _)| n));
    assert!(
        extract_credential(&only_others, None).is_none(),
        "a header other than the presented-credential ones yielded a credential"
    );
    let Some(p) = found else {
        for (name, _) in PRESENTED {
            let mut alone = HeaderMap::new();
            for v in headers.get_all(name) {
                alone.append(name, v.clone());
            }
            assert!(extract_credential(&alone, None).is_none(), "{name} alone");
        }
        assert!(extract_credential(&HeaderMap::new(), query).is_none());
        return;
    };
    let value = p.value.expose();
    assert!(!value.is_empty() && value.trim() == value);
    let rank = source_rank(p.source);
    // Where it was found holds it.
    let carried: Vec<String> = match PRESENTED.get(rank) {
        Some((name, _)) => headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .into_iter()
            .collect(),
        None => form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .filter(|(k, _)| k == "key")
            .map(|(_, v)| v.into_owned())
            .collect(),
    };
    assert!(
        carried.iter().any(|c| c.contains(value)),
        "not from its source"
    );
    // Later sources do not change the answer; removing this one gives a later one or nothing.
    let earlier: Vec<&str> = PRESENTED[..rank.min(3)].iter().map(|(n, _)| *n).collect();
    let mut kept = HeaderMap::new();
    for name in earlier.iter().chain(PRESENTED.get(rank).map(|(n, _)| n)) {
        for v in headers.get_all(*name) {
            kept.append(*name, v.clone());
        }
    }
    let query_kept = if rank == 3 { query } else { None };
    let again =
        extract_credential(&kept, query_kept).map(|p| (p.value.expose().to_owned(), p.source));
    assert_eq!(
        again,
        Some((value.to_owned(), p.source)),
        "a later source changed it"
    );
    if let Some((name, _)) = PRESENTED.get(rank) {
        let rest = without(headers, &[name]);
        let next = extract_credential(&rest, query);
        assert!(
            next.is_none_or(|n| source_rank(n.source) > rank),
            "an earlier source"
        );
    }
    check_round_trip(value);
}

/// The value, presented again in each form, extracts to itself.
fn check_round_trip(value: &str) {
    let forms = [
        ("authorization", format!("Bearer {value}")),
        ("x-api-key", value.to_owned()),
        ("x-goog-api-key", value.to_owned()),
    ];
    for ((name, text), (_, source)) in forms.into_iter().zip(PRESENTED) {
        // Header values are read as visible ASCII (`to_str`): other values have no header form.
        let Some(v) = HeaderValue::from_str(&text)
            .ok()
            .filter(|v| v.to_str().is_ok())
        else {
            continue;
        };
        let mut h = HeaderMap::new();
        h.insert(name, v);
        let p = extract_credential(&h, None).map(|p| (p.value.expose().to_owned(), p.source));
        assert_eq!(p, Some((value.to_owned(), source)), "{name}");
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("key", value)
        .finish();
    let p = extract_credential(&HeaderMap::new(), Some(&query))
        .map(|p| (p.value.expose().to_owned(), p.source));
    assert_eq!(p, Some((value.to_owned(), CredentialSource::QueryKey)));
}

fn check_token_formats(text: &str) {
    for format in FORMATS {
        if let Some(t) = format.parse(text) {
            assert_eq!(format.assemble(t.id, t.secret).expose(), text);
        }
        if let Ok(id) = format.id_from_argument(text) {
            assert!(text.contains(id));
        }
        let _ = format.bare_id(text);
    }
    let _ = portcullis::identity::token_server::looks_like_jwt(text);
    let _ = portcullis::identity::external::unverified_issuer(text);
}

/// A token made of fuzz-chosen base62 id and secret parses back to them, and any one changed
/// character makes it unparseable.
fn check_assembled(data: &[u8]) {
    let id = base62(data, ID_LEN);
    let secret = base62(data.get(ID_LEN..).unwrap_or(data), SECRET_LEN);
    for format in FORMATS {
        let token = format.assemble(&id, &secret);
        let t = format.parse(token.expose());
        assert_eq!(t.map(|t| (t.id, t.secret)), Some((&*id, &*secret)));
        let at = data.first().map_or(0, |b| usize::from(*b)) % token.expose().len();
        let mut changed = token.expose().as_bytes().to_vec();
        changed[at] = if changed[at] == b'x' { b'y' } else { b'x' };
        if let Ok(changed) = String::from_utf8(changed) {
            assert!(
                format.parse(&changed).is_none(),
                "one character changed at {at}"
            );
        }
    }
}
