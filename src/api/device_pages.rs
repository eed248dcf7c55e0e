//! `/v0/oauth/<login>`: the browser side of a device-flow login (`copilot`, `kiro`, or any
//! `auth.device_login` entry). The page starts the login with a form POST, then shows the user
//! code and the verification link and reloads itself every few seconds until the gateway's
//! background poll reports the new credential (or why it failed). Local callers only (a
//! loopback peer and a loopback `Host`, so DNS rebinding cannot reach them), single-user mode
//! only (OAuth credentials are personal), and a POST from another origin is refused.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;

use super::management::local_caller;
use super::pages::{error, esc, layout};
use super::sso_pages::html;
use crate::pool::{FlowState, PoolError};
use crate::state::AppState;

/// The device-login routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v0/oauth/{login}", get(page).post(start))
        .route("/v0/oauth/{login}/flow/{id}", get(flow))
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
    if state.config().access_mode.mode == crate::config::AccessMode::MultiUser {
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

async fn page(State(state): State<AppState>, Path(login): Path<String>, req: Request) -> Response {
    if let Some(r) = refused(&state, &req) {
        return r;
    }
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
                 <form method=\"post\"><input type=\"submit\" value=\"Start the login\"></form>",
                esc(&login),
                esc(&login),
                esc(&l.backend)
            ),
        ),
    )
}

async fn start(State(state): State<AppState>, Path(login): Path<String>, req: Request) -> Response {
    if let Some(r) = refused(&state, &req) {
        return r;
    }
    // A page on another site must not start logins here.
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(origin) = req
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        && origin.split_once("://").map(|(_, h)| h) != Some(host)
    {
        return html(
            StatusCode::FORBIDDEN,
            error(
                "Refused",
                "The request came from another site.",
                "Open the page on the gateway itself.",
            ),
        );
    }
    if state.pool().login(&login).is_none() {
        return unknown(&state, &login);
    }
    match state.pool().start_login(&login).await {
        Ok((id, _)) => {
            let mut r = html(StatusCode::SEE_OTHER, String::new());
            if let Ok(v) = http::HeaderValue::from_str(&format!("/v0/oauth/{login}/flow/{id}")) {
                r.headers_mut().insert(http::header::LOCATION, v);
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
    if let Some(r) = refused(&state, &req) {
        return r;
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
                 <p>at <a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{}</a>, then approve the request.</p>\
                 <p class=\"muted\">This page checks again every few seconds; the code expires at {}.</p>",
                esc(&f.user_code),
                esc(&link),
                esc(&f.verification_uri),
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
