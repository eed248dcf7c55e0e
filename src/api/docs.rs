//! The gateway's OpenAPI documents and `GET /docs`. The management API's document (hand-written,
//! `management_openapi.json`) is served at `/v0/management/openapi.json` and `/openapi.json`,
//! behind the management key like the API it describes; the token server's
//! (`token_server_openapi.json`) at `/oauth/openapi.json`, public like its metadata. Tests compare
//! each with the routes really served.
//!
//! `/docs` renders both as one self-contained page, server-side, when the routes are built:
//! every operation with its method, path, summary, description, parameters, request body and
//! responses, schemas as nested lists (`$ref`s as links to the document's schema section).
//! Every text from a document is escaped ([`super::pages::esc`]); backticks become `<code>`.
//! The page has no script and loads nothing: its policy is `default-src 'none'` with its one
//! inline style allowed by hash.

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use serde_json::Value;
use std::fmt::Write as _;

use super::groups::{Routes, get};
use super::pages::{esc, script_hash};

/// The OpenAPI 3.1 document of the management API.
pub(crate) const MANAGEMENT: &str = include_str!("management_openapi.json");

/// The OpenAPI 3.1 document of the token server.
pub(crate) const TOKEN_SERVER: &str = include_str!("token_server_openapi.json");

/// The documents `/docs` shows: anchor prefix and text.
const DOCUMENTS: [(&str, &str); 2] = [("management", MANAGEMENT), ("token-server", TOKEN_SERVER)];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Deepest schema nesting shown; deeper parts read "…".
const MAX_DEPTH: usize = 8;

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d232a;line-height:1.45}\
h1{font-size:1.6rem}h2{font-size:1.3rem;margin-top:2.4rem;border-bottom:2px solid #ccd3da}h3{font-size:1.05rem;margin:0}\
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88rem;background:#f3f5f7;padding:0 .2rem;border-radius:3px}\
.op{border:1px solid #d5dbe1;border-radius:6px;padding:.7rem 1rem;margin:1rem 0}\
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:ui-monospace,monospace}\
.get{color:#1565c0}.post{color:#2e7d32}.put,.patch{color:#8d6e00}.delete{color:#c62828}\
table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.4rem 0}td,th{border-bottom:1px solid #e3e7eb;padding:.3rem .4rem;text-align:left;vertical-align:top}\
ul.s{margin:.2rem 0;padding-left:1.2rem}.muted{color:#5f6b76;font-size:.9rem}.req{color:#c62828;font-size:.8rem}";

/// The documents' routes: both paths of the management document and `/docs` (the caller puts
/// them behind the management key).
pub(super) fn routes() -> Routes {
    let page = Bytes::from(page());
    vec![
        ("/v0/management/openapi.json", get(management_document)),
        ("/openapi.json", get(management_document)),
        (
            "/docs",
            get(move || {
                let page = page.clone();
                async move { html(page) }
            }),
        ),
    ]
}

async fn management_document() -> Response {
    json_document(MANAGEMENT)
}

/// `GET /oauth/openapi.json`.
pub(super) async fn token_server_document() -> Response {
    json_document(TOKEN_SERVER)
}

fn json_document(text: &'static str) -> Response {
    ([(CONTENT_TYPE, "application/json")], text).into_response()
}

/// The page with its headers: a policy that allows nothing but its own style.
fn html(page: Bytes) -> Response {
    let csp = format!(
        "default-src 'none'; style-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        script_hash(STYLE)
    );
    let mut r = ([(CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(CONTENT_SECURITY_POLICY, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// The whole page: a contents list, then each document.
fn page() -> String {
    let docs: Vec<(&str, Result<Value, String>)> = DOCUMENTS
        .iter()
        .map(|(id, text)| (*id, serde_json::from_str(text).map_err(|e| e.to_string())))
        .collect();
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>portcullis API documents</title><style>{STYLE}</style></head><body><h1>portcullis API documents</h1><ul>"
    );
    for (id, doc) in &docs {
        let title = doc
            .as_ref()
            .ok()
            .and_then(|d| d["info"]["title"].as_str())
            .unwrap_or(id);
        let _ = write!(out, "<li><a href=\"#{id}\">{}</a>", esc(title));
    }
    out.push_str("</ul>");
    for (id, doc) in &docs {
        match doc {
            Ok(doc) => document(&mut out, id, doc),
            Err(e) => {
                let _ = write!(
                    out,
                    "<h2 id=\"{id}\">{id}</h2><p>This document cannot be read: {}</p>",
                    esc(e)
                );
            }
        }
    }
    out.push_str("</body></html>");
    out
}

/// Text from a document: escaped, with `code spans` shown as code.
fn prose(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_owned()
            }
        })
        .collect()
}

/// A value that may be a `$ref` to elsewhere in `doc`, resolved (one level).
fn resolved<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    v["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| doc.pointer(pointer))
        .unwrap_or(v)
}

fn document(out: &mut String, id: &str, doc: &Value) {
    let info = &doc["info"];
    let _ = write!(
        out,
        "<h2 id=\"{id}\">{} <span class=\"muted\">version {}</span></h2><p>{}</p>",
        esc(info["title"].as_str().unwrap_or(id)),
        esc(&plain(&info["version"])),
        prose(info["description"].as_str().unwrap_or(""))
    );
    let empty = serde_json::Map::new();
    for (path, item) in doc["paths"].as_object().unwrap_or(&empty) {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                operation(out, id, doc, path, method, item, op);
            }
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        out.push_str("<h3>Schemas</h3>");
        for (name, schema) in schemas {
            let _ = write!(
                out,
                "<div class=\"op\" id=\"{id}-schema-{}\"><h3><code>{}</code></h3>{}</div>",
                esc(name),
                esc(name),
                schema_html(id, schema, 0)
            );
        }
    }
}

/// A JSON value as short text (a string without its quotes).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn operation(
    out: &mut String,
    id: &str,
    doc: &Value,
    path: &str,
    method: &str,
    item: &Value,
    op: &Value,
) {
    let _ = write!(
        out,
        "<div class=\"op\" id=\"{id}-{method}-{}\"><h3><span class=\"m {method}\">{}</span> <code>{}</code></h3>",
        esc(path).replace(['/', '{', '}', '.'], "-"),
        method.to_uppercase(),
        esc(path)
    );
    for key in ["summary", "description"] {
        if let Some(text) = op[key].as_str() {
            let _ = write!(out, "<p>{}</p>", prose(text));
        }
    }
    let params: Vec<&Value> = [&item["parameters"], &op["parameters"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .map(|p| resolved(doc, p))
        .collect();
    if !params.is_empty() {
        out.push_str(
            "<table><tr><th>Parameter</th><th>In</th><th>Schema</th><th>Description</th></tr>",
        );
        for p in params {
            let _ = write!(
                out,
                "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(p["name"].as_str().unwrap_or("")),
                required(&p["required"]),
                esc(p["in"].as_str().unwrap_or("")),
                schema_html(id, &p["schema"], 0),
                prose(p["description"].as_str().unwrap_or(""))
            );
        }
        out.push_str("</table>");
    }
    let body = resolved(doc, &op["requestBody"]);
    if body.is_object() {
        let _ = write!(
            out,
            "<p><strong>Request body</strong>{}</p>",
            required(&body["required"])
        );
        content(out, id, body);
    }
    if let Some(responses) = op["responses"].as_object() {
        out.push_str("<table><tr><th>Status</th><th>Response</th></tr>");
        for (status, r) in responses {
            let r = resolved(doc, r);
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}",
                esc(status),
                prose(r["description"].as_str().unwrap_or(""))
            );
            content(out, id, r);
            out.push_str("</td></tr>");
        }
        out.push_str("</table>");
    }
    out.push_str("</div>");
}

fn required(flag: &Value) -> &'static str {
    if flag == true {
        " <span class=\"req\">required</span>"
    } else {
        ""
    }
}

/// A body's media types with their schemas.
fn content(out: &mut String, id: &str, body: &Value) {
    if let Some(types) = body["content"].as_object() {
        for (media, m) in types {
            let _ = write!(
                out,
                "<div><span class=\"muted\">{}</span> {}</div>",
                esc(media),
                schema_html(id, &m["schema"], 0)
            );
        }
    }
}

/// A schema as HTML: its type in words, and an object's properties as a nested list.
fn schema_html(id: &str, s: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return "…".to_owned();
    }
    if let Some(r) = s["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#{id}-schema-{}\">{}</a>", esc(name), esc(name));
    }
    let mut words: Vec<String> = Vec::new();
    match &s["type"] {
        Value::String(t) if t == "array" => {
            words.push(format!(
                "array of {}",
                schema_html(id, &s["items"], depth + 1)
            ));
        }
        Value::Null => {}
        t => {
            let t = match t.as_array() {
                Some(ts) => ts.iter().map(plain).collect::<Vec<_>>().join(" or "),
                None => plain(t),
            };
            words.push(esc(&t));
        }
    }
    for key in ["format", "pattern"] {
        if let Some(v) = s[key].as_str() {
            words.push(format!("{key} <code>{}</code>", esc(v)));
        }
    }
    for key in ["minimum", "maximum", "minLength", "maxLength", "default"] {
        if !s[key].is_null() {
            words.push(format!("{key} <code>{}</code>", esc(&s[key].to_string())));
        }
    }
    if !s["const"].is_null() {
        words.push(format!("<code>{}</code>", esc(&s["const"].to_string())));
    }
    if let Some(values) = s["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect();
        words.push(format!("one of {}", values.join(", ")));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = s[key].as_array() {
            let parts: Vec<String> = parts
                .iter()
                .map(|p| schema_html(id, p, depth + 1))
                .collect();
            let joint = if key == "allOf" { " and " } else { " or " };
            words.push(parts.join(joint));
        }
    }
    let mut out = words.join(", ");
    if let Some(d) = s["description"].as_str() {
        let _ = write!(out, " — {}", prose(d));
    }
    if let Some(props) = s["properties"].as_object() {
        let needed: Vec<&str> = s["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str("<ul class=\"s\">");
        for (name, p) in props {
            let _ = write!(
                out,
                "<li><code>{}</code>{}: {}</li>",
                esc(name),
                required(&Value::Bool(needed.contains(&name.as_str()))),
                schema_html(id, p, depth + 1)
            );
        }
        out.push_str("</ul>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_from_a_document_is_escaped_everywhere() {
        let doc = json!({
            "info": {"title": "<b>t</b>", "version": "1\"", "description": "`<code>` & <script>x</script>"},
            "paths": {"/p/{<i>}": {"get": {
                "summary": "<img src=x onerror=alert(1)>",
                "parameters": [{"name": "<n>", "in": "query", "description": "<d>", "schema": {"type": "string", "enum": ["<e>"], "pattern": "<x>"}}],
                "responses": {"200": {"description": "<r>", "content": {"text/<m>": {"schema": {"type": "object", "properties": {"<k>": {"const": "<c>"}}}}}}}
            }}},
            "components": {"schemas": {"<s>": {"$ref": "#/<q>\"/a"}}}
        });
        let mut out = String::new();
        document(&mut out, "t", &doc);
        for raw in [
            "<b>", "<script>", "<img", "<n>", "<d>", "<e>", "<x>", "<r>", "<m>", "<k>", "<c>",
            "<s>", "<i>", "<q>", "1\"",
        ] {
            assert!(!out.contains(raw), "{raw} is not escaped in {out}");
        }
        assert!(
            out.contains("<code>&lt;code&gt;</code> &amp; &lt;script&gt;"),
            "{out}"
        );
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"), "{out}");
    }

    #[test]
    fn both_documents_render_with_refs_as_links() {
        let page = page();
        assert!(!page.contains("This document cannot be read"));
        assert!(page.contains("href=\"#management-schema-Credential\""));
        assert!(page.contains("id=\"management-schema-Credential\""));
        assert!(page.contains("href=\"#token-server-schema-OAuthError\""));
    }
}
