//! Instances of JSON schemas, for two answers. In JSON mode, when a client asks for JSON output
//! of a given shape (Gemini's `responseMimeType: application/json` with `responseJsonSchema` or
//! `responseSchema`), the mock answers the smallest instance of that schema with every property,
//! so clients that parse the answer (Gemini CLI's model router) get what they asked for. A tool
//! call's arguments are an instance of the tool's parameter schema with its required properties
//! only, each string named after its property (`{"path": "path"}`), as a model would fill them.
//!
//! Covers what response schemas use: `type` (JSON Schema's lower case or Gemini's upper case, or
//! a list), `const`, `enum`, `anyOf`/`oneOf`/`allOf` (the first branch), `properties` (all of
//! them), `minItems`, `minLength`, `minimum`/`exclusiveMinimum`. `$ref` and anything deeper than
//! [`MAX_DEPTH`] become `null`.

use serde_json::{Map, Value};

use super::MOCK_TEXT;

/// How deep an instance may nest (a guard against self-referential schemas).
const MAX_DEPTH: usize = 32;

/// What an instance is built for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// JSON mode: every property, strings `mock`.
    JsonMode,
    /// Tool arguments: the required properties, strings named after their property.
    Arguments,
}

/// The JSON text answering a JSON-mode request: an instance of `schema`, or without one the
/// mock's text as a JSON string.
pub(crate) fn json_answer(schema: Option<&Value>) -> String {
    let value = schema.map_or_else(
        || Value::from(MOCK_TEXT),
        |s| instance(s, 0, Purpose::JsonMode, "mock"),
    );
    value.to_string()
}

/// Arguments for a tool whose parameters are `schema`: its required properties filled (an empty
/// object without a schema or when the schema is not an object's).
pub(crate) fn arguments(schema: Option<&Value>) -> Map<String, Value> {
    match schema.map(|s| instance(s, 0, Purpose::Arguments, "value")) {
        Some(Value::Object(args)) => args,
        _ => Map::new(),
    }
}

/// The smallest instance of `schema` for `purpose`; `name` is the property it fills.
fn instance(schema: &Value, depth: usize, purpose: Purpose, name: &str) -> Value {
    let instance = |sub: &Value, name: &str| instance(sub, depth + 1, purpose, name);
    let Some(s) = schema.as_object().filter(|_| depth < MAX_DEPTH) else {
        return Value::Null;
    };
    if let Some(v) = s.get("const") {
        return v.clone();
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = s.get(key).and_then(Value::as_array).and_then(|b| b.first()) {
            return instance(first, name);
        }
    }
    if s.contains_key("$ref") {
        return Value::Null;
    }
    match type_of(s).as_deref() {
        Some("object") => {
            let properties = s.get("properties").and_then(Value::as_object);
            let required = s.get("required").and_then(Value::as_array);
            let wanted = |name: &String| {
                purpose == Purpose::JsonMode
                    || required.is_some_and(|r| r.iter().any(|n| n.as_str() == Some(name)))
            };
            let fields: Map<String, Value> = properties
                .into_iter()
                .flatten()
                .filter(|(name, _)| wanted(name))
                .map(|(name, sub)| (name.clone(), instance(sub, name)))
                .collect();
            Value::Object(fields)
        }
        Some("array") => {
            let n = s.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let item = s.get("items").map_or(Value::Null, |i| instance(i, name));
            Value::Array((0..n).map(|_| item.clone()).collect())
        }
        Some("string") => {
            let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0);
            let mut text = match purpose {
                Purpose::JsonMode => String::from("mock"),
                Purpose::Arguments => name.to_owned(),
            };
            while (text.chars().count() as u64) < min {
                text.push('k');
            }
            Value::from(text)
        }
        Some("integer") => Value::from(lowest(s).ceil() as i64),
        Some("number") => Value::from(lowest(s)),
        Some("boolean") => Value::Bool(false),
        Some("null") => Value::Null,
        _ => Value::from(MOCK_TEXT),
    }
}

/// The schema's type in lower case: `type` itself, the first non-null entry of a `type` list, or
/// `object` when only `properties` says so.
fn type_of(s: &Map<String, Value>) -> Option<String> {
    match s.get("type") {
        Some(Value::String(t)) => Some(t.to_ascii_lowercase()),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .find(|t| t != "null"),
        _ => s.contains_key("properties").then(|| "object".to_owned()),
    }
}

/// The number to answer: `minimum`, just above `exclusiveMinimum`, else 1 (schemas often leave
/// a count or a 1–100 score unbounded and only the prose says so), or `maximum` when that is
/// below 1.
fn lowest(s: &Map<String, Value>) -> f64 {
    let get = |k| s.get(k).and_then(Value::as_f64);
    match (get("minimum"), get("exclusiveMinimum"), get("maximum")) {
        (Some(min), _, _) => min,
        (None, Some(min), _) => min + 1.0,
        (None, None, Some(max)) if max < 1.0 => max,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gemini_cli_router_schema() {
        // The score's 1–100 range is only in its description.
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "complexity_reasoning": {"type": "STRING"},
                "complexity_score": {"type": "INTEGER", "description": "Complexity score from 1-100."},
                "bounded": {"type": "integer", "minimum": 5, "maximum": 100},
                "negative": {"type": "number", "maximum": -0.5},
            },
            "required": ["complexity_reasoning", "complexity_score"],
        });
        let v: Value = serde_json::from_str(&json_answer(Some(&schema))).unwrap();
        let expected = json!({
            "complexity_reasoning": "mock",
            "complexity_score": 1,
            "bounded": 5,
            "negative": -0.5,
        });
        assert_eq!(v, expected);
    }

    #[test]
    fn gemini_upper_case_types_enums_arrays_and_unions() {
        let schema = json!({
            "type": "OBJECT",
            "properties": {
                "kind": {"type": "STRING", "enum": ["a", "b"]},
                "tags": {"type": "ARRAY", "items": {"type": "STRING", "minLength": 6}, "minItems": 2},
                "ok": {"type": "BOOLEAN"},
                "either": {"anyOf": [{"type": "number", "exclusiveMinimum": 2.5}, {"type": "string"}]},
                "maybe": {"type": ["null", "integer"], "maximum": -3},
                "fixed": {"const": {"x": 1}},
                "loop": {"$ref": "#"},
            },
        });
        let v: Value = serde_json::from_str(&json_answer(Some(&schema))).unwrap();
        assert_eq!(
            v,
            json!({
                "kind": "a",
                "tags": ["mockkk", "mockkk"],
                "ok": false,
                "either": 3.5,
                "maybe": -3,
                "fixed": {"x": 1},
                "loop": null,
            })
        );
    }

    #[test]
    fn tool_arguments_fill_required_properties_named_after_them() {
        let schema = json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "lines": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "limit": {"type": "integer", "minimum": 10},
                "nested": {"type": "object", "properties": {"a": {"type": "string"}, "b": {}}, "required": ["a"]},
                "optional": {"type": "string"},
            },
            "required": ["path", "lines", "limit", "nested"],
        });
        let args = Value::Object(arguments(Some(&schema)));
        let expected =
            json!({"path": "path", "lines": ["lines"], "limit": 10, "nested": {"a": "a"}});
        assert_eq!(args, expected);
        assert!(arguments(None).is_empty());
        assert!(arguments(Some(&json!({"type": "string"}))).is_empty());
    }

    #[test]
    fn no_schema_is_the_text_as_a_json_string_and_depth_is_bounded() {
        assert_eq!(
            serde_json::from_str::<Value>(&json_answer(None)).unwrap(),
            json!(MOCK_TEXT)
        );
        let mut deep = json!({"type": "string"});
        for _ in 0..100 {
            deep = json!({"type": "object", "properties": {"a": deep}});
        }
        let text = json_answer(Some(&deep));
        assert!(text.contains("null") && !text.contains("mock"), "{text}");
    }
}
