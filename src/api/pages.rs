//! Server-rendered HTML for the browser side of SSO: the provider picker, the confirmation form,
//! the success page with setup snippets, the devices page and error pages. Plain HTML with inline
//! style and two fixed inline scripts (copy buttons and confirmations, wired by `data-`
//! attributes; the picker's self-submit) — nothing fetched from elsewhere, no inline event
//! handler. Every value that came from outside is escaped with [`esc`]. Every page is served
//! with [`CSP`]: only those two scripts run (by hash), and forms post only to the gateway.

use std::fmt::Write as _;

use crate::store::AgentTokenRecord;

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1d232a;line-height:1.45}\
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:1.6rem}\
pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9rem}\
pre{background:#f3f5f7;padding:.8rem;overflow-x:auto;border-radius:6px}\
.token{display:block;background:#fff8e1;border:1px solid #e0c36a;padding:.8rem;border-radius:6px;word-break:break-all}\
.err{border-left:4px solid #c62828;padding:.2rem .9rem;background:#fdecea}\
.ok{border-left:4px solid #2e7d32;padding:.2rem .9rem;background:#edf7ed}\
button,input[type=submit]{padding:.45rem .9rem;border-radius:5px;border:1px solid #888;background:#fff;cursor:pointer}\
input[type=text]{padding:.4rem;border:1px solid #999;border-radius:5px}\
table{border-collapse:collapse;width:100%;font-size:.9rem}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}\
.muted{color:#5f6b76;font-size:.9rem}";

/// Copy buttons (`data-copy="<element id>"`) and forms that ask first (`data-confirm="…"`);
/// at the end of every page.
const PAGE_SCRIPT: &str = "document.querySelectorAll('[data-copy]').forEach(function(b){b.addEventListener('click',function(){navigator.clipboard.writeText(document.getElementById(b.dataset.copy).innerText).then(function(){b.textContent='Copied'})})});document.querySelectorAll('form[data-confirm]').forEach(function(f){f.addEventListener('submit',function(e){if(!confirm(f.dataset.confirm)){e.preventDefault()}})});";

/// The picker's self-submit with a single provider.
const SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

/// `'sha256-…'` of an inline script (or style).
pub(crate) fn script_hash(script: &str) -> String {
    use base64::Engine as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// The Content-Security-Policy of every page: nothing loaded from anywhere, the page's own
/// style, only the two scripts above, forms posting to the gateway only, no framing, no `<base>`.
pub(crate) static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| csp("'self'"));

/// The picker's policy: its forms lead (by a redirect) to an identity provider, which
/// `form-action` also governs in browsers, so they may go to any http(s) origin.
pub(crate) static PICKER_CSP: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| csp("'self' https: http:"));

fn csp(form_action: &str) -> String {
    format!(
        "default-src 'none'; script-src {} {}; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
        script_hash(PAGE_SCRIPT),
        script_hash(SUBMIT_SCRIPT)
    )
}

/// A whole page.
pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"referrer\" content=\"same-origin\"><title>{} — portcullis</title><style>{STYLE}</style></head><body>{body}<script>{PAGE_SCRIPT}</script></body></html>",
        esc(title)
    )
}

/// An error page: what happened and what to do.
pub(crate) fn error(title: &str, detail: &str, next: &str) -> String {
    layout(
        title,
        &format!(
            "<h1>{}</h1><div class=\"err\"><p>{}</p></div><p>{}</p>",
            esc(title),
            esc(detail),
            esc(next)
        ),
    )
}

/// The provider picker. With one provider the page submits itself (a browser goes straight to
/// the provider; a link-preview bot that fetches the URL without running scripts does not use
/// the link up).
pub(crate) fn picker(providers: &[(&str, &str)], t: Option<&str>) -> String {
    let mut body = String::from("<h1>Log in to portcullis</h1><p>Choose how to log in:</p>");
    for (name, label) in providers {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/auth/login/{}\" style=\"margin:.5rem 0\">{}<input type=\"submit\" value=\"Continue with {}\"></form>",
            esc(name),
            t.map(|t| format!("<input type=\"hidden\" name=\"t\" value=\"{}\">", esc(t)))
                .unwrap_or_default(),
            esc(label)
        );
    }
    if providers.len() == 1 {
        let _ = write!(body, "<script>{SUBMIT_SCRIPT}</script>");
    }
    layout("Log in", &body)
}

/// The confirmation-code form.
pub(crate) fn confirm_form(who: &str, notice: Option<&str>) -> String {
    let notice = notice
        .map(|n| format!("<div class=\"err\"><p>{}</p></div>", esc(n)))
        .unwrap_or_default();
    layout(
        "Confirm your login",
        &format!(
            "<h1>Confirm your login</h1><p>You are logging in as <b>{}</b>.</p>\
             <p>The gateway printed a 6-digit confirmation code on its console. Enter it here:</p>{notice}\
             <form method=\"post\" action=\"/auth/confirm\"><input type=\"text\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" maxlength=\"6\" required autofocus> <input type=\"submit\" value=\"Confirm\"></form>",
            esc(who)
        ),
    )
}

/// What the success page shows.
pub(crate) struct Success<'a> {
    /// The user's label.
    pub(crate) who: &'a str,
    /// The token record.
    pub(crate) record: &'a AgentTokenRecord,
    /// The token, when new (shown once).
    pub(crate) token: Option<&'a str>,
    /// Session end, formatted.
    pub(crate) session_until: &'a str,
    /// Base URL for the snippets.
    pub(crate) public_url: &'a str,
    /// Anti-forgery value for the rename form.
    pub(crate) csrf: &'a str,
}

/// The page after a completed login.
pub(crate) fn success(s: &Success<'_>) -> String {
    let id = esc(&s.record.id);
    let name = esc(&s.record.name);
    let mut body = String::new();
    match s.token {
        None => {
            let _ = write!(
                body,
                "<h1>You are logged in again</h1><div class=\"ok\"><p>The agent token of <b>{name}</b> works again until {}. Nothing needs to change in your agent: it keeps using the same token.</p></div>",
                esc(s.session_until)
            );
        }
        Some(token) => {
            let base = format!("{}/v1", s.public_url);
            let _ = write!(
                body,
                "<h1>Your agent token</h1><p>Logged in as <b>{}</b>. This token is for one device: <b>{name}</b>. Its login session lasts until {}; after that your agent shows a link to log in again and the token keeps working.</p>\
                 <p><b>Copy it now — it is shown only once.</b> The gateway keeps only a hash of it.</p>\
                 <code class=\"token\" id=\"agent-token\">{}</code><p><button data-copy=\"agent-token\">Copy token</button></p>\
                 <h2>Name this device</h2><form method=\"post\" action=\"/auth/devices/{id}/rename\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"text\" name=\"name\" value=\"{name}\" maxlength=\"100\" required> <input type=\"submit\" value=\"Rename\"></form>",
                esc(s.who),
                esc(s.session_until),
                esc(token),
                esc(s.csrf)
            );
            body.push_str(&snippets(&esc(&base), &esc(s.public_url), &esc(token)));
        }
    }
    body.push_str("<p><a href=\"/auth/devices\">Manage your devices</a></p>");
    layout("Logged in", &body)
}

fn snippets(base: &str, root: &str, token: &str) -> String {
    let items: [(&str, String); 8] = [
        (
            "Cursor",
            format!(
                "Settings → Models → OpenAI API Key: paste the token, enable \"Override OpenAI Base URL\" and set it to\n{base}"
            ),
        ),
        (
            "Continue (~/.continue/config.yaml)",
            format!(
                "models:\n  - name: via portcullis\n    provider: openai\n    model: gpt-4o\n    apiBase: {base}\n    apiKey: {token}"
            ),
        ),
        (
            "Cline (VS Code)",
            format!("API Provider: OpenAI Compatible\nBase URL: {base}\nAPI Key: {token}"),
        ),
        (
            "Aider",
            format!(
                "export OPENAI_API_BASE={base}\nexport OPENAI_API_KEY={token}\naider --model openai/gpt-4o"
            ),
        ),
        (
            "OpenAI Python SDK",
            format!(
                "from openai import OpenAI\nclient = OpenAI(base_url=\"{base}\", api_key=\"{token}\")\nprint(client.chat.completions.create(model=\"gpt-4o\", messages=[{{\"role\": \"user\", \"content\": \"Hello\"}}]).choices[0].message.content)"
            ),
        ),
        (
            "OpenAI Node SDK",
            format!(
                "import OpenAI from 'openai';\nconst client = new OpenAI({{ baseURL: '{base}', apiKey: '{token}' }});"
            ),
        ),
        (
            "Anthropic clients (Claude Code, Anthropic SDKs)",
            format!("export ANTHROPIC_BASE_URL={root}\nexport ANTHROPIC_API_KEY={token}"),
        ),
        (
            "curl",
            format!(
                "curl {base}/chat/completions \\\n  -H \"Authorization: Bearer {token}\" \\\n  -H \"Content-Type: application/json\" \\\n  -d '{{\"model\": \"gpt-4o\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello\"}}]}}'"
            ),
        ),
    ];
    let mut out = String::from("<h2>Set up your agent</h2>");
    for (i, (title, text)) in items.iter().enumerate() {
        let _ = write!(
            out,
            "<h3>{title}</h3><pre id=\"snippet-{i}\">{text}</pre><button data-copy=\"snippet-{i}\">Copy</button>"
        );
    }
    out
}

/// One row of the devices page.
pub(crate) struct DeviceRow<'a> {
    /// The token.
    pub(crate) record: &'a AgentTokenRecord,
    /// Times, formatted: created, last used, session end.
    pub(crate) created: String,
    pub(crate) last_used: String,
    pub(crate) session: String,
}

/// The self-service devices page.
pub(crate) fn devices(
    who: &str,
    rows: &[DeviceRow<'_>],
    csrf: &str,
    notice: Option<&str>,
) -> String {
    let mut body = format!(
        "<h1>Your devices</h1><p>Logged in as <b>{}</b>.</p>",
        esc(who)
    );
    if let Some(n) = notice {
        let _ = write!(body, "<div class=\"ok\"><p>{}</p></div>", esc(n));
    }
    if rows.is_empty() {
        body.push_str("<p>No devices yet.</p>");
    } else {
        body.push_str("<table><tr><th>Device</th><th>Token id</th><th>Created</th><th>Last used</th><th>Last address and agent</th><th>Session</th><th></th></tr>");
        for r in rows {
            let t = r.record;
            let id = esc(&t.id);
            let csrf = esc(csrf);
            let actions = if t.revoked_at.is_some() {
                "revoked".to_owned()
            } else {
                format!(
                    "<form method=\"post\" action=\"/auth/devices/{id}/rename\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"text\" name=\"name\" value=\"{}\" maxlength=\"100\" size=\"14\" required> <input type=\"submit\" value=\"Rename\"></form>\
                     <form method=\"post\" action=\"/auth/devices/{id}/revoke\" data-confirm=\"Revoke this token? The agent using it stops working.\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"submit\" value=\"Revoke\"></form>",
                    esc(&t.name)
                )
            };
            let _ = write!(
                body,
                "<tr><td>{}</td><td><code>{id}</code></td><td>{}</td><td>{}</td><td>{}<br><span class=\"muted\">{}</span></td><td>{}</td><td>{actions}</td></tr>",
                esc(&t.name),
                esc(&r.created),
                esc(&r.last_used),
                esc(t.last_ip.as_deref().unwrap_or("—")),
                esc(t.last_user_agent.as_deref().unwrap_or("")),
                esc(&r.session),
            );
        }
        body.push_str("</table>");
    }
    body.push_str("<form method=\"post\" action=\"/auth/logout\" style=\"margin-top:1.5rem\"><input type=\"submit\" value=\"Log out\"></form>");
    layout("Your devices", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_values_are_escaped() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let page = picker(&[("evil\"><script>", "<b>"), ("b", "B")], Some("t\"x"));
        assert!(
            !page.contains("evil\"><script>") && !page.contains("<b>"),
            "{page}"
        );
    }
}
