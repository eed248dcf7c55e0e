//! What of a client's request goes upstream: headers by allow-list (never a credential or a
//! connection header, whatever the configuration), and of a query only the allowed parameters,
//! names decoded the way authentication decodes them.

use std::borrow::Cow;

use super::{Backend, Endpoint};
use crate::protocol::Operation;

/// Client headers forwarded upstream: what the providers' APIs and SDKs need to describe a
/// request (content negotiation, API version, feature betas, SDK telemetry, idempotency). Every
/// other client header is dropped — credentials, hop-by-hop headers, proxy headers, and headers
/// that choose the billed organisation or project — unless the backend's `forward_headers`
/// names it.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "user-agent",
    "anthropic-version",
    "anthropic-beta",
    "openai-beta",
    "idempotency-key",
    "x-goog-api-client",
];

/// Prefixes of forwarded client headers (the OpenAI and Anthropic SDKs' telemetry).
const FORWARDED_REQUEST_PREFIXES: &[&str] = &["x-stainless-"];

impl Backend {
    /// True when a client header called `name` (lower case) goes to this backend.
    pub(super) fn forwards(&self, name: &str) -> bool {
        if crate::net::never_forwarded(name) || name.starts_with("x-portcullis") {
            return false;
        }
        FORWARDED_REQUEST_HEADERS.contains(&name)
            || FORWARDED_REQUEST_PREFIXES
                .iter()
                .any(|p| name.starts_with(p))
            || self.forward_headers.iter().any(|h| h == name)
    }
}

/// Query parameters a client's Gemini request may pass upstream (`alt=sse` selects the stream
/// format); everything else — the credential ([`crate::secret::CREDENTIAL_QUERY_PARAM`]), billing
/// choices such as `userProject` or `quotaUser` — is dropped.
const FORWARDED_QUERY_PARAMS: &[&str] = &["alt", "$alt", "prettyPrint"];

/// The name of one `name=value` query pair, decoded the way [`crate::identity::extract_credential`]
/// reads names (form encoding: `%6Bey` and `k%65y` are `key`).
pub fn query_param_name(pair: &str) -> Cow<'_, str> {
    let name = pair.split_once('=').map_or(pair, |(n, _)| n);
    match form_urlencoded::parse(name.as_bytes()).next() {
        Some((n, _)) => Cow::Owned(n.into_owned()),
        None => Cow::Borrowed(""),
    }
}

/// Query parameters of the operations on stored objects that go upstream besides
/// [`FORWARDED_QUERY_PARAMS`]: paging, and what a stored response is read with. Every other
/// endpoint forwards none.
fn endpoint_query_params(endpoint: Endpoint<'_>) -> &'static [&'static str] {
    match endpoint {
        Endpoint::Op(Operation::ResponseRetrieve, _) => &[
            "include",
            "include[]",
            "stream",
            "starting_after",
            "include_obfuscation",
        ],
        Endpoint::Op(Operation::ResponseInputItems, _) => {
            &["after", "before", "limit", "order", "include", "include[]"]
        }
        Endpoint::Op(Operation::MessageBatchList, _) => &["after_id", "before_id", "limit"],
        _ => &[],
    }
}

/// The part of a client's query string that goes to `endpoint`: the allowed parameters (decoded
/// names compared), as the client wrote them. Only [`Provider::call`] applies it.
pub(crate) fn strip_credential_params(query: &str, endpoint: Endpoint<'_>) -> Option<String> {
    let extra = endpoint_query_params(endpoint);
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| {
            let name = query_param_name(p);
            !p.is_empty() && (FORWARDED_QUERY_PARAMS.contains(&&*name) || extra.contains(&&*name))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::never_forwarded;

    #[test]
    fn no_credential_name_is_ever_allowed_upstream() {
        assert!(!FORWARDED_QUERY_PARAMS.contains(&crate::secret::CREDENTIAL_QUERY_PARAM));
        for h in crate::secret::PRESENTED_CREDENTIAL_HEADERS {
            let h = h.as_str();
            assert!(never_forwarded(h), "{h}");
            assert!(!FORWARDED_REQUEST_HEADERS.contains(&h), "{h}");
        }
        assert!(never_forwarded("cookie") && never_forwarded("host"));
    }

    #[test]
    fn object_endpoints_forward_their_paging_and_nothing_else() {
        let list = Endpoint::Op(Operation::MessageBatchList, "");
        assert_eq!(
            strip_credential_params("limit=2&key=k&after_id=b&x=1", list).as_deref(),
            Some("limit=2&after_id=b")
        );
        let get = Endpoint::Op(Operation::ResponseRetrieve, "resp_1");
        assert_eq!(
            strip_credential_params("stream=true&include%5B%5D=a&%6Bey=k", get).as_deref(),
            Some("stream=true&include%5B%5D=a")
        );
        let chat = Endpoint::Op(Operation::ChatCompletions, "");
        assert_eq!(strip_credential_params("limit=2&stream=true", chat), None);
    }

    #[test]
    fn only_allowed_params_go_upstream_whatever_their_encoding() {
        let strip_credential_params =
            |q: &str| strip_credential_params(q, Endpoint::Op(Operation::GenerateContent, "m"));
        assert_eq!(
            strip_credential_params("alt=sse&key=abc").as_deref(),
            Some("alt=sse")
        );
        assert_eq!(strip_credential_params("key=abc"), None);
        for hidden in [
            "%6Bey=abc",
            "k%65y=abc",
            "key+=abc",
            "+key=abc",
            "key",
            "KEY=abc",
        ] {
            assert_eq!(
                strip_credential_params(&format!("{hidden}&alt=sse")).as_deref(),
                Some("alt=sse"),
                "{hidden}"
            );
        }
        assert_eq!(strip_credential_params("userProject=p&quotaUser=q"), None);
        assert_eq!(
            strip_credential_params("%61lt=sse").as_deref(),
            Some("%61lt=sse")
        );
    }
}
