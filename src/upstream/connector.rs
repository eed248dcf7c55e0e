//! What a personal-subscription connector's request needs of the credential that sends it
//! (issue 23): the Code Assist envelope around a Gemini CLI request — `{"model", "project",
//! "request"}`, the project being the login's —, the ChatGPT account id Codex's backend expects
//! (`chatgpt-account-id`), the Qwen account's own API host (its `resource_url`), and the Kiro
//! login's CodeWhisperer profile (`profileArn`, social and Identity Center logins). Applied by
//! [`super::Provider::call`] to each attempt, after the pick; the backend's fixed headers for
//! its kind are added once, when the backend is built ([`fixed_headers`]).

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::value::RawValue;

use super::url::endpoint_url;
use super::{Endpoint, HeaderLines};
use crate::pool::Account;
use crate::protocol::BackendKind;

/// The headers a connector's upstream expects on every request, unless configured otherwise.
pub(super) fn fixed_headers(kind: BackendKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        // What the Codex CLI sends: the Responses API beta and its originator.
        BackendKind::Codex => &[
            ("openai-beta", "responses=experimental"),
            ("originator", "codex_cli_rs"),
            ("accept", "text/event-stream"),
        ],
        // What the Kiro IDE sends: no training on the user's content.
        BackendKind::Kiro => &[("x-amzn-codewhisperer-optout", "true")],
        _ => &[],
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<&'a str>,
    request: &'a RawValue,
}

/// Shapes one attempt of a `kind` request for `account`: may replace the URL, add a header,
/// wrap the body. `Err` names what is wrong (an unusable account URL or body).
pub(super) fn shape(
    kind: BackendKind,
    account: Option<&Account>,
    endpoint: Endpoint<'_>,
    url: &mut Cow<'_, reqwest::Url>,
    headers: &mut HeaderLines,
    body: Option<Bytes>,
) -> Result<Option<Bytes>, String> {
    match kind {
        BackendKind::GeminiCli => {
            let (Endpoint::Op(_, model), Some(inner)) = (endpoint, &body) else {
                return Ok(body);
            };
            let request: &RawValue = serde_json::from_slice(inner)
                .map_err(|e| format!("the Code Assist request is not JSON: {e}"))?;
            let envelope = Envelope {
                model,
                project: account.and_then(|a| a.project.as_deref()),
                request,
            };
            serde_json::to_vec(&envelope)
                .map(|b| Some(Bytes::from(b)))
                .map_err(|e| e.to_string())
        }
        BackendKind::Codex => {
            if let Some(id) = account.and_then(|a| a.account_id.as_deref()) {
                let value = HeaderValue::from_str(id)
                    .map_err(|_| "the ChatGPT account id is not a header value".to_owned())?;
                headers.insert(HeaderName::from_static("chatgpt-account-id"), value);
            }
            Ok(body)
        }
        BackendKind::QwenCode => {
            if let Some(base) = account.and_then(|a| a.base_url.as_deref()) {
                let base = reqwest::Url::parse(base)
                    .map_err(|e| format!("the Qwen account's API URL `{base}`: {e}"))?;
                let query = url.query().map(str::to_owned);
                let url = url.to_mut();
                *url = endpoint_url(&base, kind, endpoint)?;
                url.set_query(query.as_deref());
            }
            Ok(body)
        }
        BackendKind::Kiro => {
            let (Some(arn), Some(inner)) = (account.and_then(|a| a.profile_arn.as_deref()), &body)
            else {
                return Ok(body);
            };
            let mut v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(inner)
                    .map_err(|e| format!("the Kiro request is not a JSON object: {e}"))?;
            v.insert("profileArn".into(), arn.into());
            serde_json::to_vec(&v)
                .map(|b| Some(Bytes::from(b)))
                .map_err(|e| e.to_string())
        }
        BackendKind::Openai | BackendKind::Anthropic | BackendKind::Gemini => Ok(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Operation;

    fn url(s: &str) -> Cow<'static, reqwest::Url> {
        Cow::Owned(reqwest::Url::parse(s).unwrap())
    }

    #[test]
    fn a_code_assist_request_is_enveloped_with_the_logins_project() {
        let account = Account {
            project: Some("proj-1".into()),
            ..Account::default()
        };
        let mut u = url("https://cloudcode-pa.googleapis.com/v1internal:generateContent");
        let body = shape(
            BackendKind::GeminiCli,
            Some(&account),
            Endpoint::Op(Operation::GenerateContent, "gemini-2.5-pro"),
            &mut u,
            &mut HeaderLines::default(),
            Some(Bytes::from_static(br#"{"contents":[]}"#)),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            &body[..],
            br#"{"model":"gemini-2.5-pro","project":"proj-1","request":{"contents":[]}}"#
        );
        let bare = shape(
            BackendKind::GeminiCli,
            None,
            Endpoint::Op(Operation::GenerateContent, "m"),
            &mut u,
            &mut HeaderLines::default(),
            Some(Bytes::from_static(b"{}")),
        )
        .unwrap()
        .unwrap();
        assert_eq!(&bare[..], br#"{"model":"m","request":{}}"#);
    }

    #[test]
    fn codex_gets_the_account_header_and_qwen_the_accounts_host() {
        let account = Account {
            account_id: Some("acc-9".into()),
            base_url: Some("https://portal.qwen.ai/v1".into()),
            ..Account::default()
        };
        let mut headers = HeaderLines::default();
        let mut u = url("https://chatgpt.com/backend-api/codex/responses");
        shape(
            BackendKind::Codex,
            Some(&account),
            Endpoint::Op(Operation::Responses, "gpt-5"),
            &mut u,
            &mut headers,
            None,
        )
        .unwrap();
        assert_eq!(
            headers.get(&HeaderName::from_static("chatgpt-account-id")),
            Some(&HeaderValue::from_static("acc-9"))
        );
        // The backend's own URL, borrowed: the account's replaces it in this attempt only.
        let fixed = reqwest::Url::parse(
            "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions?x=1",
        )
        .unwrap();
        let mut u = Cow::Borrowed(&fixed);
        shape(
            BackendKind::QwenCode,
            Some(&account),
            Endpoint::Op(Operation::ChatCompletions, "qwen3-coder-plus"),
            &mut u,
            &mut HeaderLines::default(),
            None,
        )
        .unwrap();
        assert_eq!(u.as_str(), "https://portal.qwen.ai/v1/chat/completions?x=1");
        assert_eq!(
            fixed.as_str(),
            "https://dashscope.aliyuncs.com/compatible-mode/v1/chat/completions?x=1"
        );
    }
}
