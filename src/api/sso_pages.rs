//! The browser routes of SSO (`/auth/*`, outside client authentication): login, the provider
//! callback, the confirmation code, the success page, the devices page and logout. Decisions are
//! made by [`crate::sso::Sso`]; this module reads forms and cookies and renders [`pages`].
//!
//! Every page is `Cache-Control: no-store`, `Referrer-Policy: same-origin` (the login link in the
//! address bar must not leak to the identity provider; `no-referrer` would also make browsers
//! send `Origin: null` on the page's own forms) and carries [`pages::CSP`]. Cookies are
//! `HttpOnly`, `SameSite=Lax`, scoped to `/auth`, and `Secure` when the public URL is https.
//! The group's guard, [`require_sso_page`], answers every path of the group while SSO is off
//! and refuses every form (any request but GET or HEAD) the browser says comes from another
//! origin — `SameSite=Lax` alone lets another port of the same host post them; the forms that
//! change a session's devices also carry an anti-forgery field, checked per page. Tokens are
//! never put in a URL: the success page is the body of the response that completes the login.

use std::collections::HashMap;
use std::sync::Arc;

use super::groups::{get, post};
use axum::Extension;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::access_log::ClientIp;
use super::pages::{self, DeviceRow, Success};
use crate::clock::iso8601;
use crate::sso::{CallbackOutcome, Completed, Grant, Sso, SsoError, user_label};
use crate::state::AppState;

const FLOW_COOKIE: &str = "portcullis_flow";
pub(super) const SESSION_COOKIE: &str = "portcullis_session";
const LOGIN_COOKIE: &str = "portcullis_login";
const FORM_LIMIT: usize = 16 * 1024;

/// The `/auth/*` routes.
pub(super) fn routes() -> super::groups::Routes {
    vec![
        ("/auth/login", get(login)),
        ("/auth/login/{provider}", post(start)),
        ("/auth/callback", get(callback)),
        ("/auth/confirm", get(confirm_page).post(confirm)),
        ("/auth/devices", get(devices)),
        ("/auth/devices/{id}/rename", post(rename)),
        ("/auth/devices/{id}/revoke", post(revoke)),
        ("/auth/logout", post(logout)),
    ]
}

/// The pages group's guard, for every path and method of the group: SSO is on (else the "not
/// enabled" page), and a request that is not a GET or HEAD comes from the gateway's own origin as
/// far as the browser says ([`foreign_origin`]). The handlers get the [`Sso`] as a request
/// extension; what depends on the page (login state, the session cookie, the anti-forgery field)
/// stays in them.
pub(super) async fn require_sso_page(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(sso) = state.sso().cloned() else {
        return not_enabled();
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(refusal) = foreign_origin(&sso, req.headers())
    {
        return refusal;
    }
    req.extensions_mut().insert(sso);
    next.run(req).await
}

/// An HTML response with the page headers.
pub(super) fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&pages::CSP) {
        h.insert(http::header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// The `scheme://authority` of `url`.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| &url[..scheme.len() + 3 + authority.len()])
}

/// True unless a browser says this request was sent from another origin than the gateway's.
/// A browser that sends `Sec-Fetch-Site` (set by the browser itself, out of a page's reach)
/// decides by it: only `same-origin` passes — this is what lets the admin console's forms,
/// whose `Referrer-Policy: no-referrer` makes browsers send `Origin: null`, reach the SSO
/// hand-over. Otherwise `Origin` (or, without it, `Referer`) must be `public_url`'s origin or
/// name the `Host` the request was sent to; `Origin: null` (a sandboxed or privacy-restricted
/// sender) is foreign. Without any of them the sender is not a browser acting for a visited
/// page, and passes. The admin console's guard uses it too.
pub(super) fn from_own_origin(public_url: &str, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes().eq_ignore_ascii_case(b"same-origin");
    }
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("null"));
    let origin = match text(http::header::ORIGIN) {
        Some(o) => o,
        None => match text(http::header::REFERER) {
            Some(r) => origin_of(r).unwrap_or("null"),
            None => return true,
        },
    };
    let authority = origin.split_once("://").map(|(_, a)| a);
    Some(origin) == origin_of(public_url)
        || (authority.is_some() && authority == text(http::header::HOST))
}

/// A 403 page when a browser says this form was posted from another origin than the gateway's
/// ([`from_own_origin`]).
fn foreign_origin(sso: &Sso, headers: &HeaderMap) -> Option<Response> {
    if from_own_origin(sso.public_url(), headers) {
        return None;
    }
    let origin = headers
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info!(origin, "SSO form posted from another origin refused");
    Some(html(
        StatusCode::FORBIDDEN,
        pages::error(
            "Refused",
            "This form was sent from another site.",
            "Open the page on the gateway itself and try again.",
        ),
    ))
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = html(status, String::new());
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

fn set_cookie(r: &mut Response, sso: &Sso, name: &str, value: &str, max_age_secs: i64) {
    set_cookie_at(r, sso, name, value, max_age_secs, "/auth");
}

fn set_cookie_at(
    r: &mut Response,
    sso: &Sso,
    name: &str,
    value: &str,
    max_age_secs: i64,
    path: &str,
) {
    let secure = if sso.public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let c = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age_secs.max(0)
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(http::header::SET_COOKIE, v);
    }
}

pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

fn not_enabled() -> Response {
    html(
        StatusCode::NOT_FOUND,
        pages::error(
            "SSO is not enabled",
            "This gateway does not offer browser login.",
            "Ask the operator for an API key, or to enable SSO (sso.enabled with a provider).",
        ),
    )
}

/// The page for a failed step.
fn failure_page(e: &SsoError) -> Response {
    let again = "Make a new request from your agent: its answer contains a fresh login link.";
    let (status, title, detail, next) = match e {
        SsoError::LinkInvalid => (
            StatusCode::BAD_REQUEST,
            "Invalid login link",
            "This login link was not made by this gateway or was changed.",
            again,
        ),
        SsoError::LinkExpired => (
            StatusCode::GONE,
            "Login link expired",
            "Login links work for 10 minutes.",
            again,
        ),
        SsoError::LinkUsed => (
            StatusCode::GONE,
            "Login link already used",
            "Each login link works once.",
            again,
        ),
        SsoError::UnknownProvider => (
            StatusCode::NOT_FOUND,
            "Unknown identity provider",
            "No identity provider of that name is configured.",
            "Go back to the login page and pick one of the listed providers.",
        ),
        SsoError::OtherBrowser => (
            StatusCode::BAD_REQUEST,
            "Login started in another browser",
            "This login was started in a different browser (or its cookie was blocked), so it cannot be finished here.",
            "Open the login link in the browser you log in with, and allow cookies for this site.",
        ),
        SsoError::UnknownState => (
            StatusCode::BAD_REQUEST,
            "Login not recognised",
            "This answer from the identity provider does not match a login in progress (it may have been used already or be older than 10 minutes).",
            again,
        ),
        SsoError::ProviderReported(_) => (
            StatusCode::BAD_REQUEST,
            "The identity provider did not log you in",
            "The identity provider reported an error or the login was cancelled.",
            again,
        ),
        SsoError::Provider(crate::sso::provider::ProviderError::NotAllowed(_)) => (
            StatusCode::FORBIDDEN,
            "Account not allowed",
            "This account's email domain is not allowed on this gateway.",
            "Log in with an account of an allowed domain, or ask the operator.",
        ),
        SsoError::Provider(_) => (
            StatusCode::BAD_GATEWAY,
            "Login could not be completed",
            "The gateway could not verify the login with the identity provider.",
            "Try again; if it keeps failing, the operator can find the reason in the gateway's log.",
        ),
        SsoError::Denied(_) => (
            StatusCode::FORBIDDEN,
            "Access denied",
            "Your organisation's authorization service did not approve this login.",
            "Ask your administrator for access.",
        ),
        SsoError::UserDisabled => (
            StatusCode::FORBIDDEN,
            "Account disabled",
            "This account is disabled on this gateway.",
            "Ask the operator to enable it.",
        ),
        SsoError::NoPending => (
            StatusCode::BAD_REQUEST,
            "No login waiting for confirmation",
            "There is no login waiting for a confirmation code in this browser.",
            again,
        ),
        SsoError::WrongCode { .. } => (
            StatusCode::BAD_REQUEST,
            "Incorrect code",
            "The confirmation code is not correct.",
            "Try again.",
        ),
        SsoError::CodeExhausted => (
            StatusCode::FORBIDDEN,
            "Too many incorrect codes",
            "The login was abandoned after too many incorrect confirmation codes.",
            again,
        ),
        SsoError::CodeExpired => (
            StatusCode::GONE,
            "Confirmation code expired",
            "The confirmation code is no longer valid.",
            again,
        ),
        SsoError::Blocked { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many failed attempts from your address.",
            "Wait a while and try again.",
        ),
        SsoError::Store(_) | SsoError::Internal(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The gateway could not complete this step.",
            "Try again shortly.",
        ),
    };
    match e {
        SsoError::Store(_)
        | SsoError::Internal(_)
        | SsoError::Provider(_)
        | SsoError::Denied(_) => {
            tracing::warn!(error = %e, "SSO step failed")
        }
        _ => tracing::info!(error = %e, "SSO step refused"),
    }
    let mut r = html(status, pages::error(title, detail, next));
    if let SsoError::Blocked { retry_after_secs } = e {
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            HeaderValue::from(*retry_after_secs),
        );
    }
    r
}

#[derive(serde::Deserialize)]
struct LinkQuery {
    t: Option<String>,
}

/// `GET /auth/login[?t=…]`: checks the link and shows the provider choice. It never uses the
/// link up (a GET may come from a link preview); the POST that leaves for the provider does.
async fn login(Extension(sso): Extension<Arc<Sso>>, Query(q): Query<LinkQuery>) -> Response {
    let t = q.t.as_deref().filter(|t| !t.is_empty());
    if let Some(t) = t
        && let Err(e) = sso.check_link(t).await
    {
        return failure_page(&e);
    }
    let providers: Vec<(&str, &str)> = sso.providers().collect();
    let mut r = html(StatusCode::OK, pages::picker(&providers, t));
    if let Ok(v) = HeaderValue::from_str(&pages::PICKER_CSP) {
        r.headers_mut()
            .insert(http::header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// `POST /auth/login/{provider}` (form `t`): leaves for the provider with a cookie that binds the
/// login to this browser.
async fn start(
    Extension(sso): Extension<Arc<Sso>>,
    Path(provider): Path<String>,
    req: Request,
) -> Response {
    let sso: &Sso = &sso;
    let ip = ClientIp::of(&req);
    let f = super::read_form(req, FORM_LIMIT).await.unwrap_or_default();
    match sso
        .start(&provider, f.get("t").map(String::as_str), ip)
        .await
    {
        Ok((url, browser)) => {
            let mut r = redirect(StatusCode::SEE_OTHER, &url);
            set_cookie_at(
                &mut r,
                sso,
                LOGIN_COOKIE,
                browser.expose(),
                600,
                "/auth/callback",
            );
            r
        }
        Err(e) => failure_page(&e),
    }
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    Extension(sso): Extension<Arc<Sso>>,
    Query(q): Query<CallbackQuery>,
    req: Request,
) -> Response {
    let sso: &Sso = &sso;
    let ip = ClientIp::of(&req);
    let browser = cookie(req.headers(), LOGIN_COOKIE);
    let mut r = match sso
        .callback(
            q.code.as_deref(),
            q.state.as_deref(),
            q.error.as_deref(),
            browser.as_deref(),
            ip,
        )
        .await
    {
        Ok(CallbackOutcome::NeedsConfirmation { flow_cookie, .. }) => {
            let mut r = redirect(StatusCode::SEE_OTHER, "/auth/confirm");
            let ttl = sso.confirmation_ttl_secs() + 60;
            set_cookie(&mut r, sso, FLOW_COOKIE, flow_cookie.expose(), ttl);
            r
        }
        Ok(CallbackOutcome::Completed(done)) => completed(&state, sso, *done).await,
        Err(e) => failure_page(&e),
    };
    set_cookie_at(&mut r, sso, LOGIN_COOKIE, "", 0, "/auth/callback");
    r
}

async fn confirm_page(Extension(sso): Extension<Arc<Sso>>, headers: HeaderMap) -> Response {
    let Some(flow) = cookie(&headers, FLOW_COOKIE) else {
        return failure_page(&SsoError::NoPending);
    };
    match sso.pending(&flow).await {
        Ok(p) => {
            let who = match sso.store().get_user(&p.user_id).await {
                Ok(Some(u)) => user_label(&u),
                _ => p.user_id.clone(),
            };
            html(StatusCode::OK, pages::confirm_form(&who, None))
        }
        Err(e) => failure_page(&e),
    }
}

async fn confirm(
    State(state): State<AppState>,
    Extension(sso): Extension<Arc<Sso>>,
    req: Request,
) -> Response {
    let sso: &Sso = &sso;
    let ip = ClientIp::of(&req);
    let flow = cookie(req.headers(), FLOW_COOKIE);
    let f = super::read_form(req, FORM_LIMIT).await.unwrap_or_default();
    let Some(flow) = flow else {
        return failure_page(&SsoError::NoPending);
    };
    let code = f.get("code").map(String::as_str).unwrap_or("");
    match sso.confirm(&flow, code, ip).await {
        Ok(done) => {
            let mut r = completed(&state, sso, done).await;
            set_cookie(&mut r, sso, FLOW_COOKIE, "", 0);
            r
        }
        Err(SsoError::WrongCode { attempts_left }) => {
            let who = match sso.pending(&flow).await {
                Ok(p) => match sso.store().get_user(&p.user_id).await {
                    Ok(Some(u)) => user_label(&u),
                    _ => p.user_id,
                },
                Err(_) => String::new(),
            };
            let notice = format!(
                "Incorrect code. {attempts_left} attempt{} remaining.",
                if attempts_left == 1 { "" } else { "s" }
            );
            html(
                StatusCode::BAD_REQUEST,
                pages::confirm_form(&who, Some(&notice)),
            )
        }
        Err(e) => failure_page(&e),
    }
}

/// The success page, with the session cookie.
async fn completed(state: &AppState, sso: &Sso, done: Completed) -> Response {
    let csrf = match sso.csrf_token(done.session_cookie.expose()).await {
        Ok(c) => c,
        Err(e) => return failure_page(&e),
    };
    let who = user_label(&done.user);
    let until = iso8601(done.session_expires_at.max(0) as u64);
    let public_url = state.config().public_url();
    let (record, token) = match &done.grant {
        Grant::NewToken { token, record } => (record, Some(token.expose())),
        Grant::Renewed { record } => (record, None),
    };
    let page = pages::success(&Success {
        who: &who,
        record,
        token,
        session_until: &until,
        public_url: &public_url,
        csrf: &csrf,
    });
    let mut r = html(StatusCode::OK, page);
    let max_age = (done.session_expires_at - state.clock().now_millis() as i64) / 1000;
    set_cookie(
        &mut r,
        sso,
        SESSION_COOKIE,
        done.session_cookie.expose(),
        max_age,
    );
    r
}

/// The logged-in user of the devices page, or the page to show instead.
async fn session(sso: &Sso, headers: &HeaderMap) -> Result<(crate::store::User, String), Response> {
    let Some(c) = cookie(headers, SESSION_COOKIE) else {
        return Err(login_needed());
    };
    match sso.session_user(&c).await {
        Ok(Some(u)) => Ok((u, c)),
        Ok(None) => Err(login_needed()),
        Err(e) => Err(failure_page(&e)),
    }
}

fn login_needed() -> Response {
    html(
        StatusCode::UNAUTHORIZED,
        pages::layout(
            "Log in",
            "<h1>Log in to see your devices</h1><p><a href=\"/auth/login\">Log in</a> — this also issues a token for a new device; you can revoke it on the next page.</p>",
        ),
    )
}

async fn devices(Extension(sso): Extension<Arc<Sso>>, headers: HeaderMap) -> Response {
    let sso: &Sso = &sso;
    let (user, cookie_value) = match session(sso, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    render_devices(sso, &user, &cookie_value, None).await
}

async fn render_devices(
    sso: &Sso,
    user: &crate::store::User,
    cookie_value: &str,
    notice: Option<&str>,
) -> Response {
    let (tokens, csrf) = match (
        sso.store().list_tokens(Some(&user.id)).await,
        sso.csrf_token(cookie_value).await,
    ) {
        (Ok(t), Ok(c)) => (t, c),
        (Err(e), _) => return failure_page(&SsoError::Store(e)),
        (_, Err(e)) => return failure_page(&e),
    };
    let fmt = |ms: Option<i64>| ms.map_or("never".to_owned(), |m| iso8601(m.max(0) as u64));
    let rows: Vec<DeviceRow<'_>> = tokens
        .iter()
        .map(|t| DeviceRow {
            record: t,
            created: fmt(Some(t.created_at)),
            last_used: fmt(t.last_used_at),
            session: t.session_expires_at.map_or("no limit".to_owned(), |m| {
                format!("until {}", iso8601(m.max(0) as u64))
            }),
        })
        .collect();
    html(
        StatusCode::OK,
        pages::devices(&user_label(user), &rows, &csrf, notice),
    )
}

/// Checks the session, the anti-forgery field and that the token is the user's.
async fn owned_token(
    sso: &Sso,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
    id: &str,
) -> Result<(crate::store::User, String), Response> {
    let (user, c) = session(sso, headers).await?;
    let expected = sso.csrf_token(&c).await.map_err(|e| failure_page(&e))?;
    let given = f.get("csrf").map(String::as_str).unwrap_or("");
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        expected.as_bytes(),
    )) {
        return Err(html(
            StatusCode::FORBIDDEN,
            pages::error(
                "Form expired",
                "This form is not valid for your current session.",
                "Reload the devices page and try again.",
            ),
        ));
    }
    match sso.store().get_token(id).await {
        Ok(Some(t)) if t.user_id == user.id => Ok((user, c)),
        Ok(_) => Err(html(
            StatusCode::NOT_FOUND,
            pages::error(
                "No such device",
                "You have no device with that token id.",
                "Go back to the devices page.",
            ),
        )),
        Err(e) => Err(failure_page(&SsoError::Store(e))),
    }
}

async fn rename(
    Extension(sso): Extension<Arc<Sso>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let sso: &Sso = &sso;
    let headers = req.headers().clone();
    let f = super::read_form(req, FORM_LIMIT).await.unwrap_or_default();
    let (user, c) = match owned_token(sso, &headers, &f, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let name = f.get("name").map(|n| n.trim()).unwrap_or("");
    if name.is_empty() || name.chars().count() > 100 {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(
                "Invalid name",
                "A device name must have 1 to 100 characters.",
                "Go back and try again.",
            ),
        );
    }
    if let Err(e) = sso.store().rename_token(&id, name).await {
        return failure_page(&SsoError::Store(e));
    }
    render_devices(sso, &user, &c, Some(&format!("Renamed to {name}."))).await
}

async fn revoke(
    State(state): State<AppState>,
    Extension(sso): Extension<Arc<Sso>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let sso: &Sso = &sso;
    let headers = req.headers().clone();
    let f = super::read_form(req, FORM_LIMIT).await.unwrap_or_default();
    let (user, c) = match owned_token(sso, &headers, &f, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = state.clock().now_millis() as i64;
    if let Err(e) = sso.store().revoke_token(&id, now).await {
        return failure_page(&SsoError::Store(e));
    }
    if let Some(v) = state.auth().tokens() {
        v.clear_cache();
    }
    tracing::info!(user = %user.id, token = %crate::identity::agent_token::display_id(&id), "agent token revoked from the devices page");
    render_devices(
        sso,
        &user,
        &c,
        Some("Token revoked: the agent using it is refused from its next request."),
    )
    .await
}

async fn logout(Extension(sso): Extension<Arc<Sso>>, headers: HeaderMap) -> Response {
    let sso: &Sso = &sso;
    if let Some(c) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = sso.logout(&c).await
    {
        return failure_page(&e);
    }
    let mut r = html(
        StatusCode::OK,
        pages::layout(
            "Logged out",
            "<h1>Logged out</h1><p>Your devices keep working; only this browser session ended.</p>",
        ),
    );
    set_cookie(&mut r, sso, SESSION_COOKIE, "", 0);
    r
}
