//! Model lists: reading an upstream's list (OpenAI `data[].id`, Anthropic `data[].id`, Gemini
//! `models[].name`) and writing the gateway's merged list in the caller's protocol.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::protocol::Protocol;

/// One model as listed by an upstream, with the entry's original JSON kept so that fields we do
/// not know survive when the entry is passed on in the same protocol.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// Id as the client must send it (prefixed `backend:` for non-default backends).
    pub id: String,
    /// The upstream's own entry, if any (aliases have none).
    pub raw: Option<Value>,
}

/// Reads the model ids out of an upstream list response in `protocol`'s shape.
pub fn parse_model_list(protocol: Protocol, body: &[u8]) -> Option<Vec<(String, Value)>> {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        data: Vec<Value>,
        #[serde(default)]
        models: Vec<Value>,
    }
    let list: List = serde_json::from_slice(body).ok()?;
    let entries = match protocol {
        Protocol::OpenAi | Protocol::Anthropic => list.data,
        Protocol::Gemini => list.models,
    };
    Some(
        entries
            .into_iter()
            .filter_map(|e| {
                let id = match protocol {
                    Protocol::Gemini => e
                        .get("name")?
                        .as_str()?
                        .trim_start_matches("models/")
                        .to_owned(),
                    _ => e.get("id")?.as_str()?.to_owned(),
                };
                Some((id, e))
            })
            .collect(),
    )
}

/// Writes the merged list in `protocol`'s shape. Entries keep the upstream's fields, with the id
/// (or Gemini `name`) replaced by the id the client must use.
pub fn render_model_list(protocol: Protocol, entries: &[ModelEntry], created: u64) -> Value {
    let items = entries.iter().map(|e| render_model(protocol, e, created));
    match protocol {
        Protocol::OpenAi => json!({ "object": "list", "data": items.collect::<Vec<_>>() }),
        Protocol::Anthropic => {
            let first = entries.first().map(|e| e.id.clone());
            let last = entries.last().map(|e| e.id.clone());
            json!({ "data": items.collect::<Vec<_>>(), "has_more": false, "first_id": first, "last_id": last })
        }
        Protocol::Gemini => json!({ "models": items.collect::<Vec<_>>() }),
    }
}

/// One model's description in `protocol`'s shape: the upstream's fields when it speaks that
/// protocol (`raw`), else the gateway's own minimal description; the id (Gemini `name`) is the
/// one the client must use.
pub fn render_model(protocol: Protocol, e: &ModelEntry, created: u64) -> Value {
    let (key, id, fallback) = match protocol {
        Protocol::OpenAi => (
            "id",
            json!(e.id),
            json!({"object": "model", "created": created, "owned_by": "portcullis"}),
        ),
        Protocol::Anthropic => (
            "id",
            json!(e.id),
            json!({"type": "model", "display_name": e.id, "created_at": "1970-01-01T00:00:00Z"}),
        ),
        Protocol::Gemini => (
            "name",
            json!(format!("models/{}", e.id)),
            json!({"displayName": e.id, "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}),
        ),
    };
    let mut v = e.raw.clone().unwrap_or(fallback);
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_owned(), id);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_each_shape() {
        let oa = parse_model_list(
            Protocol::OpenAi,
            br#"{"object":"list","data":[{"id":"gpt","x":1}]}"#,
        )
        .unwrap();
        assert_eq!(oa[0].0, "gpt");
        let g =
            parse_model_list(Protocol::Gemini, br#"{"models":[{"name":"models/gem"}]}"#).unwrap();
        assert_eq!(g[0].0, "gem");

        let entries = vec![
            ModelEntry {
                id: "gpt".into(),
                raw: Some(oa[0].1.clone()),
            },
            ModelEntry {
                id: "fast".into(),
                raw: None,
            },
        ];
        let out = render_model_list(Protocol::OpenAi, &entries, 7);
        assert_eq!(out["data"][0]["x"], 1, "unknown fields survive");
        assert_eq!(out["data"][1]["id"], "fast");
        let gem = render_model_list(Protocol::Gemini, &entries, 7);
        assert_eq!(gem["models"][1]["name"], "models/fast");
        let an = render_model_list(Protocol::Anthropic, &entries, 7);
        assert_eq!(an["last_id"], "fast");
    }
}
