//! `/v0/oauth/<login>`: the browser side of a device-flow login (`copilot`, `kiro`, or any
//! `auth.device_login` entry). The page starts the login with a form POST carrying the
//! management key, then shows the user code and the verification link and reloads itself every
//! few seconds until the gateway's background poll reports the new credential (or why it
//! failed).
//!
//! Adding a credential to the pool is an administrator's act, so starting a login needs the
//! management key (`management.key`; form field `management_key`, or `X-Management-Key` /
//! `Authorization: Bearer`), with wrong keys counted in the lockout shared with the management
//! API and client keys; without a management key configured the pages are off (`portcullis
//! auths login <name>` works without them). Locality alone is not enough: a reverse proxy on the
//! same host (nginx's bare `proxy_pass`) makes every remote caller look local. The page that
//! follows a login answers only the browser that started it (a cookie bound to the flow id by a
//! key derived from the management key) or a caller presenting the key, since its user code is
//! what lets someone attach *their* account to the login. Also: local callers only (a loopback
//! peer with no relaying header and a loopback `Host`, so DNS rebinding cannot reach them),
//! single-user mode only (OAuth credentials are personal), and no POST from another origin —
//! these four are the route group's guard, [`require_local_browser`] — and only `https:` (or
//! loopback `http:`) verification links are rendered as links.

use super::groups::get;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

use super::access_log::ClientIp;
use super::management::{KeyCheck, check_key, local_caller, presented_key};
use super::pages::{error, esc, layout};
use super::sso_pages::html;
use crate::pool::{FlowState, PoolError};
use crate::state::AppState;

/// The device-login routes.
pub(super) fn routes() -> super::groups::Routes {
    vec![
        ("/v0/oauth/{login}", get(page).post(start)),
        ("/v0/oauth/{login}/flow/{id}", get(flow)),
    ]
}

/// True when `Host` names this machine's loopback (`127.0.0.1`, `[::1]`, `localhost`, any
/// port): a page reached through another name — DNS rebinding — is refused.
fn loopback_host(req: &Request) -> bool {
    let Some(host) = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The device-login group's guard: [`refused`] and [`cross_site`] answer before any of its
/// handlers runs.
pub(super) async fn require_local_browser(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match refused(&state, &req).or_else(|| cross_site(&req)) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    }
}

/// A 403 page for a request other than GET or HEAD whose `Origin` names another host than the
/// one it was sent to: a page on another site must not start logins here.
fn cross_site(req: &Request) -> Option<Response> {
    if matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        return None;
    }
    let text = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin = text(http::header::ORIGIN)?;
    if origin.split_once("://").map(|(_, h)| h) == Some(text(http::header::HOST).unwrap_or("")) {
        return None;
    }
    Some(html(
        StatusCode::FORBIDDEN,
        error(
            "Refused",
            "The request came from another site.",
            "Open the page on the gateway itself.",
        ),
    ))
}

/// Why a caller may not use the pages, if it may not. Adding a credential to the pool is an
/// administrator's act without a key here, so the pages answer only a browser on the gateway's
/// own machine (loopback peer, no forwarding proxy, a loopback `Host`), whatever
/// `management.allow_remote` says.
fn refused(state: &AppState, req: &Request) -> Option<Response> {
    if !local_caller(req) || !loopback_host(req) {
        return Some(html(
            StatusCode::FORBIDDEN,
            error(
                "Not available from here",
                "Device logins answer only browsers on the gateway's own machine.",
                "Open this page on the machine that runs the gateway, at http://127.0.0.1:<port>/ or http://localhost:<port>/ (or use `portcullis auths login` there).",
            ),
        ));
    }
    if state.config().management.key.is_none() {
        return Some(html(
            StatusCode::FORBIDDEN,
            error(
                "Device logins need the management key",
                "Adding a credential from the browser needs the management key, and none is configured.",
                "Set management.key (or PORTCULLIS_MANAGEMENT_KEY), or run `portcullis auths login <name>` on this machine.",
            ),
        ));
    }
    if !state.config().access_mode.mode.allows_personal_oauth() {
        return Some(html(
            StatusCode::FORBIDDEN,
            error(
                "Not available in multi-user mode",
                "OAuth (personal subscription) credentials are refused in multi-user mode.",
                "Add an API key through the management API instead.",
            ),
        ));
    }
    None
}

fn unknown(state: &AppState, login: &str) -> Response {
    let names = state.pool().login_names().join(", ");
    html(
        StatusCode::NOT_FOUND,
        error(
            "No such login",
            &format!("`{login}` is not a configured device login."),
            &format!(
                "Configured: {}. Add one under auth.device_login.",
                if names.is_empty() { "none" } else { &names }
            ),
        ),
    )
}

async fn page(State(state): State<AppState>, Path(login): Path<String>) -> Response {
    let Some(l) = state.pool().login(&login) else {
        return unknown(&state, &login);
    };
    html(
        StatusCode::OK,
        layout(
            &format!("Log in: {login}"),
            &format!(
                "<h1>Add a {} credential</h1><p>The gateway asks {} for a one-time code; you enter it on the provider's page, \
                 and the credential joins the pool of backend <code>{}</code>.</p>\
                 <form method=\"post\"><p><label>Management key <input type=\"password\" name=\"management_key\" \
                 autocomplete=\"current-password\" required></label></p>\
                 <input type=\"submit\" value=\"Start the login\"></form>",
                esc(&login),
                esc(&login),
                esc(&l.backend)
            ),
        ),
    )
}

async fn start(State(state): State<AppState>, Path(login): Path<String>, req: Request) -> Response {
    if state.pool().login(&login).is_none() {
        return unknown(&state, &login);
    }
    let ip = ClientIp::of(&req);
    let header_key = presented_key(req.headers()).map(str::to_owned);
    let form = axum::body::to_bytes(req.into_body(), FORM_MAX)
        .await
        .unwrap_or_default();
    let form_key = form_urlencoded::parse(&form)
        .find(|(k, _)| k == "management_key")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    if let Some(refusal) =
        key_refusal(check_key(&state, ip, header_key.as_deref().or(form_key.as_deref())).await)
    {
        return refusal;
    }
    match state.pool().start_login(&login).await {
        Ok((id, _)) => {
            let path = format!("/v0/oauth/{login}/flow/{id}");
            let mut r = html(StatusCode::SEE_OTHER, String::new());
            if let Ok(v) = http::HeaderValue::from_str(&path) {
                r.headers_mut().insert(http::header::LOCATION, v);
            }
            if let Some(mac) = flow_mac(&state, &id)
                && let Ok(v) = http::HeaderValue::from_str(&format!(
                    "{FLOW_COOKIE}={mac}; Path={path}; Max-Age=3600; HttpOnly; SameSite=Strict"
                ))
            {
                r.headers_mut().insert(http::header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            let detail = match &e {
                PoolError::Store(_) | PoolError::Seal { .. } => {
                    tracing::error!(error = %e, "device login could not start");
                    "the gateway's store is unavailable; see its log".to_owned()
                }
                other => other.to_string(),
            };
            html(
                StatusCode::BAD_GATEWAY,
                error(
                    "The login could not start",
                    &detail,
                    "Try again in a moment.",
                ),
            )
        }
    }
}

async fn flow(
    State(state): State<AppState>,
    Path((login, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    if !started_here(&state, &req, &id) {
        let presented = presented_key(req.headers());
        if let Some(refusal) = key_refusal(check_key(&state, ClientIp::of(&req), presented).await) {
            return match presented {
                Some(_) => refusal,
                None => html(
                    StatusCode::FORBIDDEN,
                    error(
                        "Not your login",
                        "This login was started from another browser.",
                        "Follow it in the browser that started it, or start a new one.",
                    ),
                ),
            };
        }
    }
    let json = req.uri().query().is_some_and(|q| q.contains("format=json"));
    let Some(f) = state.pool().flow(&id).filter(|f| f.login == login) else {
        return html(
            StatusCode::NOT_FOUND,
            error(
                "No such login",
                "This login is unknown or too old.",
                "Start a new one.",
            ),
        );
    };
    if json {
        let (status, credential, message) = match &f.state {
            FlowState::Pending => ("pending", None, None),
            FlowState::Done(c) => ("done", Some(c.clone()), None),
            FlowState::Failed(m) => ("failed", None, Some(m.clone())),
        };
        return axum::Json(serde_json::json!({
            "login": f.login, "status": status, "credential": credential, "error": message,
            "user_code": f.user_code, "verification_uri": f.verification_uri,
            "verification_uri_complete": f.verification_uri_complete,
            "expires_at": crate::clock::iso8601(f.expires_at),
        }))
        .into_response();
    }
    let body = match &f.state {
        FlowState::Pending => {
            let link = f
                .verification_uri_complete
                .clone()
                .unwrap_or_else(|| f.verification_uri.clone());
            format!(
                "<meta http-equiv=\"refresh\" content=\"3\"><h1>Enter this code</h1>\
                 <p class=\"token\" style=\"font-size:1.6rem;letter-spacing:.15rem\">{}</p>\
                 <p>at {}, then approve the request.</p>\
                 <p class=\"muted\">This page checks again every few seconds; the code expires at {}.</p>",
                esc(&f.user_code),
                verification_link(&link, &f.verification_uri),
                esc(&crate::clock::iso8601(f.expires_at))
            )
        }
        FlowState::Done(c) => format!(
            "<h1>Credential added</h1><div class=\"ok\"><p>The {} login is done: credential <code>{}</code> is in the pool \
             and is refreshed before it expires.</p></div>",
            esc(&f.login),
            esc(c)
        ),
        FlowState::Failed(m) => format!(
            "<h1>The login failed</h1><div class=\"err\"><p>{}</p></div><p><a href=\"/v0/oauth/{}\">Start again</a></p>",
            esc(m),
            esc(&f.login)
        ),
    };
    html(
        StatusCode::OK,
        layout(&format!("Log in: {}", f.login), &body),
    )
}

/// Largest start form read (it carries one field).
const FORM_MAX: usize = 8 * 1024;
/// The cookie that lets the starting browser follow its login.
const FLOW_COOKIE: &str = "pcl_device_flow";

/// The value of the follow cookie for flow `id`: a keyed BLAKE3 tag under a key derived from
/// the management key (none without one). Nothing to store; a changed key ends old cookies.
fn flow_mac(state: &AppState, id: &str) -> Option<String> {
    let key = state.config().management.key.as_ref()?;
    let k = blake3::derive_key(
        "portcullis device-login follow cookie v1",
        key.expose().as_bytes(),
    );
    Some(blake3::keyed_hash(&k, id.as_bytes()).to_hex().to_string())
}

/// True when the request carries the follow cookie of flow `id`.
fn started_here(state: &AppState, req: &Request, id: &str) -> bool {
    let Some(want) = flow_mac(state, id) else {
        return false;
    };
    req.headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(FLOW_COOKIE)?.strip_prefix('='))
        .any(|v| subtle::ConstantTimeEq::ct_eq(v.as_bytes(), want.as_bytes()).into())
}

/// The page for a management key that was not accepted (`None` when it was).
fn key_refusal(check: KeyCheck) -> Option<Response> {
    let (status, title, detail) = match check {
        KeyCheck::Accepted => return None,
        KeyCheck::NotConfigured => (
            StatusCode::FORBIDDEN,
            "Device logins need the management key",
            "No management key is configured.",
        ),
        KeyCheck::Blocked(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts",
            "This address is locked out for a while after wrong keys.",
        ),
        KeyCheck::Wrong => (
            StatusCode::UNAUTHORIZED,
            "Wrong management key",
            "The management key is not right.",
        ),
        KeyCheck::Missing => (
            StatusCode::UNAUTHORIZED,
            "The management key is needed",
            "Starting a device login needs the gateway's management key.",
        ),
    };
    let mut r = html(
        status,
        error(
            title,
            detail,
            "Enter the management key (management.key) on the login page, or run `portcullis auths login <name>` on this machine.",
        ),
    );
    if let KeyCheck::Blocked(secs) = check {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    Some(r)
}

/// The provider's verification page as a link — only for an `https:` URL, or `http:` to a
/// loopback host (a test server); anything else (`javascript:`, `data:`, …) from a hostile
/// provider is shown as text, never as a link on the gateway's own origin.
fn verification_link(link: &str, shown: &str) -> String {
    let safe = |u: &str| {
        reqwest::Url::parse(u).is_ok_and(|u| match u.scheme() {
            "https" => u.host().is_some(),
            "http" => u.host_str().is_some_and(crate::net::is_loopback_host),
            _ => false,
        })
    };
    match (safe(link), safe(shown)) {
        (true, _) => format!(
            "<a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{}</a>",
            esc(link),
            esc(shown)
        ),
        (false, true) => format!(
            "<a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{}</a>",
            esc(shown),
            esc(shown)
        ),
        (false, false) => format!("<code>{}</code>", esc(shown)),
    }
}

#[cfg(test)]
mod tests {
    use super::verification_link;

    #[test]
    fn only_https_and_loopback_http_become_links() {
        for (link, shown, want) in [
            (
                "https://github.com/login/device?code=1",
                "https://github.com/login/device",
                "href=\"https://github.com/login/device?code=1\"",
            ),
            (
                "http://127.0.0.1:9/device",
                "http://127.0.0.1:9/device",
                "href=\"http://127.0.0.1:9/device\"",
            ),
            (
                "javascript:alert(1)",
                "https://ok.example/device",
                "href=\"https://ok.example/device\"",
            ),
        ] {
            assert!(verification_link(link, shown).contains(want), "{link}");
        }
        for (link, shown) in [
            ("javascript:alert(document.cookie)", "javascript:alert(1)"),
            ("JaVaScRiPt:alert(1)", "data:text/html,<script>x</script>"),
            ("http://evil.example/device", "vbscript:x"),
            ("ftp://files.example/device", "file:///etc/passwd"),
        ] {
            let html = verification_link(link, shown);
            assert!(!html.contains("href"), "{link}: {html}");
            assert!(!html.contains("<script>"), "{html}");
        }
    }
}
