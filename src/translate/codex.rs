//! The Codex connector's dialect: the Responses API as ChatGPT's Codex backend takes it
//! (`/backend-api/codex/responses`, what the Codex CLI sends with its ChatGPT login). The body
//! is the Responses codec's, with the backend's rules applied: it always streams (a caller that
//! asked for one JSON answer gets the stream collected, [`super::collect`]), keeps nothing
//! (`store: false`), requires `instructions`, and refuses the sampling and length parameters
//! (`max_output_tokens`, `temperature`, `top_p`), which are dropped with a debug log. Answers
//! and stream events are the Responses API's (the backend's own `codex.*` events are skipped
//! by the Responses stream decoder like any unknown event).

use serde_json::json;

use super::TranslateError;
use super::fields::to_json;
use super::model::Request;

/// The instructions sent when the caller gave no system prompt: the backend refuses a request
/// without any.
pub const DEFAULT_INSTRUCTIONS: &str = "You are a helpful assistant.";

/// Parameters the Codex backend refuses ("Unsupported parameter").
const REFUSED: &[&str] = &["max_output_tokens", "temperature", "top_p"];

/// Writes `req` as a Codex backend `responses` body.
pub fn encode_request(req: &Request) -> Result<Vec<u8>, TranslateError> {
    let mut body = super::responses::request_body(req)?;
    for key in REFUSED {
        if body.remove(*key).is_some() {
            tracing::debug!(parameter = key, "dropped: the Codex backend refuses it");
        }
    }
    body.entry("instructions")
        .or_insert_with(|| json!(DEFAULT_INSTRUCTIONS));
    body.insert("stream".into(), json!(true));
    body.insert("store".into(), json!(false));
    Ok(to_json(&body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::model::{Message, Part, Role};

    fn request() -> Request {
        Request {
            model: "gpt-5-codex".into(),
            messages: vec![Message {
                role: Role::User,
                content: vec![Part::Text("hi".into())],
            }],
            max_tokens: Some(100),
            temperature: Some(0.2),
            top_p: Some(0.9),
            ..Default::default()
        }
    }

    #[test]
    fn the_body_streams_keeps_nothing_and_has_instructions() {
        let body: serde_json::Value =
            serde_json::from_slice(&encode_request(&request()).unwrap()).unwrap();
        assert_eq!(body["stream"], true);
        assert_eq!(body["store"], false);
        assert_eq!(body["instructions"], DEFAULT_INSTRUCTIONS);
        assert_eq!(body["model"], "gpt-5-codex");
        for key in REFUSED {
            assert!(body.get(*key).is_none(), "{key} kept");
        }
        assert_eq!(body["input"][0]["content"][0]["text"], "hi");
    }

    #[test]
    fn the_callers_system_prompt_is_the_instructions() {
        let mut req = request();
        req.system = vec!["Be terse.".into(), "Second block.".into()];
        let body: serde_json::Value =
            serde_json::from_slice(&encode_request(&req).unwrap()).unwrap();
        assert_eq!(body["instructions"], "Be terse.");
        assert_eq!(body["input"][0]["role"], "developer");
    }
}
