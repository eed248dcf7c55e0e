//! The admin console (`/admin`, PRODUCT §9): server-rendered pages for the people who run the
//! gateway — devices (agent tokens), users, upstream credentials, virtual keys and signing keys.
//! Each action calls the same function the management API calls ([`super::admin_ops`], the
//! pool's own operations); pages are askama templates (`templates/console/`, escaped by
//! default, checked at compile time) and never show a secret, only the masked hints the API
//! shows.
//!
//! Sign-in is a local account's password, checked by the token server
//! ([`crate::identity::token_server::TokenServer::authenticate_user`]) in the same per-address
//! and per-account lockouts as every other credential, or — with SSO on — an SSO browser
//! session handed over at `POST /auth/admin` ([`sso_sign_in`]). Either way the user must be
//! listed in `admin.console.admins`. The console session is a random cookie
//! (`portcullis_admin`, `HttpOnly; SameSite=Strict; Path=/admin`, `Secure` when the public URL
//! is https) whose hash is a browser-session row in the store, so any instance behind a load
//! balancer knows it; it ends after `admin.console.session_lifetime` (the state's clock) or at
//! sign-out.
//!
//! The group's guard, [`require_console`], answers 404 while the console is off, refuses any
//! form a browser says comes from another site (`Sec-Fetch-Site`, else `Origin`/`Referer`
//! through [`super::sso_pages::from_own_origin`]), and puts the security headers on every answer
//! (a strict CSP without scripts, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
//! `Cache-Control: no-store`). Every form also carries an anti-forgery field derived from the
//! session cookie, compared in constant time ([`Admin::check_form`]).

mod activity;
mod pages;
mod views;

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use subtle::ConstantTimeEq as _;

use super::access_log::ClientIp;
use super::groups::{Routes, get, post};
use super::sso_pages;
use crate::identity::token_server::GrantError;
use crate::sso::Sso;
use crate::state::AppState;
use crate::store::{User, WebSession, hex};
use views::{ErrorPage, LoginPage};

const COOKIE: &str = "portcullis_admin";
const FORM_LIMIT: usize = 64 * 1024;
const STYLE: &str = include_str!("console/style.css");

/// Every console answer's policy: no scripts at all, styles only from the gateway.
pub(super) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `/admin` routes (the console group adds [`require_console`]).
pub(super) fn routes() -> Routes {
    let mut r: Routes = vec![
        ("/admin", get(home)),
        ("/admin/style.css", get(style)),
        ("/admin/login", get(login_page).post(login)),
        ("/admin/logout", post(logout)),
        // Any other page under /admin: the console's 404, not the model API's.
        ("/admin/{*rest}", get(no_such_page)),
    ];
    r.extend(pages::routes());
    r.extend(activity::routes());
    r
}

/// The SSO hand-over, served in the SSO pages group (its guard checks SSO is on and the form's
/// origin, and hands over the [`Sso`]).
pub(super) fn sso_routes() -> Routes {
    vec![("/auth/admin", post(sso_sign_in))]
}

/// The console group's guard: the console is on, a form (any method but GET or HEAD) comes
/// from the gateway's own pages, and every answer carries the security headers.
pub(super) async fn require_console(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let mut r = if !state.config().admin.console.enabled || state.web_store().is_none() {
        error_page(
            StatusCode::NOT_FOUND,
            "The admin console is not enabled",
            "Set admin.console.enabled and admin.console.admins in the gateway's configuration.",
        )
    } else if !matches!(*req.method(), Method::GET | Method::HEAD)
        && cross_site(&state.config().public_url(), req.headers())
    {
        tracing::info!(
            path = req.uri().path(),
            "admin console form from another site refused"
        );
        error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was sent from another site. Open the console on the gateway itself.",
        )
    } else {
        next.run(req).await
    };
    secure_headers(r.headers_mut());
    r
}

/// True when a browser says the request comes from another site
/// ([`sso_pages::from_own_origin`]: `Sec-Fetch-Site` when the browser sends it — the console's
/// `Referrer-Policy: no-referrer` makes browsers send `Origin: null` on its own forms —, else
/// `Origin`/`Referer`).
fn cross_site(public_url: &str, headers: &HeaderMap) -> bool {
    !sso_pages::from_own_origin(public_url, headers)
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A rendered page, or a 500 when the template fails.
fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => {
            let mut r = (status, body).into_response();
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "admin console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    page(status, &ErrorPage { title, detail })
}

fn store_failed(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "admin console: the store failed");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The store did not answer; see the gateway's log.",
    )
}

fn redirect(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

fn set_cookie(r: &mut Response, state: &AppState, value: &str, max_age_secs: i64) {
    let secure = if state.config().public_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let c = format!(
        "{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age_secs.max(0)
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(http::header::SET_COOKIE, v);
    }
}

/// The store row's key for a session cookie (a different derivation than SSO's sessions, so a
/// console cookie is never an SSO session and the reverse).
fn session_hash(cookie: &str) -> String {
    hex(&blake3::derive_key(
        "portcullis admin console session v1",
        cookie.as_bytes(),
    ))
}

/// The anti-forgery field of a session's forms.
fn csrf_of(cookie: &str) -> String {
    hex(&blake3::derive_key("portcullis admin console form v1", cookie.as_bytes())[..16])
}

/// A signed-in administrator.
pub(super) struct Admin {
    /// Who.
    pub(super) user: User,
    /// The anti-forgery field of their forms.
    pub(super) csrf: String,
}

impl Admin {
    /// The administrator behind the request's console cookie: a live session of an enabled
    /// user who is still listed in `admin.console.admins`; otherwise the way to the sign-in page.
    pub(super) async fn of(state: &AppState, headers: &HeaderMap) -> Result<Self, Response> {
        let store = state.web_store().ok_or_else(|| redirect("/admin/login"))?;
        let cookie = sso_pages::cookie(headers, COOKIE).ok_or_else(|| redirect("/admin/login"))?;
        let now = state.clock().now_millis() as i64;
        let session = match store.get_web_session(&session_hash(&cookie), now).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(redirect("/admin/login")),
            Err(e) => return Err(store_failed(&e)),
        };
        let user = match store.get_user(&session.user_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return Err(redirect("/admin/login")),
            Err(e) => return Err(store_failed(&e)),
        };
        if user.disabled || !is_admin(state, &user) {
            return Err(redirect("/admin/login"));
        }
        Ok(Self {
            user,
            csrf: csrf_of(&cookie),
        })
    }

    /// The administrator and the fields of a posted form, if its anti-forgery field is the
    /// session's (else 403).
    pub(super) async fn check_form(
        state: &AppState,
        req: Request,
    ) -> Result<(Self, HashMap<String, String>), Response> {
        let admin = Self::of(state, req.headers()).await?;
        let Some(form) = super::read_form(req, FORM_LIMIT).await else {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "Unreadable form",
                "The form could not be read.",
            ));
        };
        let sent = form.get("csrf").map_or(&b""[..], |s| s.as_bytes());
        if !bool::from(sent.ct_eq(admin.csrf.as_bytes())) {
            tracing::info!("admin console form without a valid anti-forgery field refused");
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form has expired or was not made by the console. Reload the page and try again.",
            ));
        }
        Ok((admin, form))
    }

    /// How the console names them.
    pub(super) fn label(&self) -> String {
        crate::sso::user_label(&self.user)
    }
}

fn is_admin(state: &AppState, u: &User) -> bool {
    state
        .config()
        .admin
        .console
        .is_admin(&u.provider, &u.subject, u.email.as_deref())
}

/// Opens a console session for `user`, ending the one `old` names, and answers with its cookie
/// and the way to the console.
async fn open_session(state: &AppState, user: &User, old: Option<String>) -> Response {
    let Some(store) = state.web_store() else {
        return redirect("/admin/login");
    };
    let now = state.clock().now_millis() as i64;
    if let Some(old) = old
        && let Err(e) = store.delete_web_session(&session_hash(&old)).await
    {
        return store_failed(&e);
    }
    let cookie = match crate::secret::random_bytes::<32>() {
        Ok(b) => hex(&b),
        Err(e) => return store_failed(&e),
    };
    let lifetime = state.config().admin.console.session_lifetime.0.as_millis() as i64;
    let row = WebSession {
        id_hash: session_hash(&cookie),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now.saturating_add(lifetime),
    };
    if let Err(e) = store.insert_web_session(&row).await {
        return store_failed(&e);
    }
    // Expired sessions (the console's and SSO's) go now; SSO's purge job only runs with SSO.
    if let Err(e) = store.purge_expired_sso(now).await {
        tracing::warn!(error = %e, "could not purge expired browser sessions");
    }
    tracing::info!(user = %user.id, "admin console sign-in");
    let mut r = redirect("/admin");
    set_cookie(&mut r, state, &cookie, lifetime / 1000);
    r
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match Admin::of(&state, &headers).await {
        Ok(_) => redirect("/admin/devices"),
        Err(r) => r,
    }
}

async fn no_such_page() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such page",
        "The console has no page at this address.",
    )
}

async fn style() -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLE,
    )
        .into_response()
}

fn login_form(state: &AppState, status: StatusCode, notice: Option<&str>) -> Response {
    page(
        status,
        &LoginPage {
            notice,
            sso: state.sso().is_some(),
        },
    )
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match Admin::of(&state, &headers).await {
        Ok(_) => redirect("/admin/devices"),
        Err(_) => login_form(&state, StatusCode::OK, None),
    }
}

/// `POST /admin/login` (form `username`, `password`).
async fn login(State(state): State<AppState>, req: Request) -> Response {
    let Some(oauth) = state.oauth().cloned() else {
        return login_form(&state, StatusCode::NOT_FOUND, Some("No store is open."));
    };
    let ip = ClientIp::of(&req);
    let old = sso_pages::cookie(req.headers(), COOKIE);
    let form = super::read_form(req, FORM_LIMIT).await.unwrap_or_default();
    let field = |n: &str| form.get(n).map_or("", String::as_str);
    let user = match oauth
        .authenticate_user(field("username").trim(), field("password"), ip)
        .await
    {
        Ok(u) => u,
        Err(GrantError::Blocked { retry_after_secs }) => {
            let mut r = login_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many failed attempts. Wait a while and try again."),
            );
            r.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs),
            );
            return r;
        }
        Err(GrantError::InvalidRequest(m)) => {
            return login_form(&state, StatusCode::BAD_REQUEST, Some(m));
        }
        Err(GrantError::Unavailable(e)) => return store_failed(&e),
        Err(_) => {
            return login_form(
                &state,
                StatusCode::UNAUTHORIZED,
                Some("Wrong username or password."),
            );
        }
    };
    if !is_admin(&state, &user) {
        tracing::info!(user = %user.id, "admin console sign-in refused: not listed in admin.console.admins");
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            Some("This account is not an administrator of this gateway."),
        );
    }
    open_session(&state, &user, old).await
}

/// `POST /admin/logout`: ends the session (the form carries the anti-forgery field).
async fn logout(State(state): State<AppState>, req: Request) -> Response {
    let cookie = sso_pages::cookie(req.headers(), COOKIE);
    if let Err(r) = Admin::check_form(&state, req).await {
        return r;
    }
    if let (Some(store), Some(c)) = (state.web_store(), cookie)
        && let Err(e) = store.delete_web_session(&session_hash(&c)).await
    {
        return store_failed(&e);
    }
    let mut r = redirect("/admin/login");
    set_cookie(&mut r, &state, "", 0);
    r
}

/// `POST /auth/admin`: the SSO hand-over. A browser logged in through SSO (its `/auth` session
/// cookie) whose user is listed in `admin.console.admins` gets a console session; one not
/// logged in is sent to the SSO login first.
async fn sso_sign_in(
    State(state): State<AppState>,
    Extension(sso): Extension<Arc<Sso>>,
    headers: HeaderMap,
) -> Response {
    let mut r = if !state.config().admin.console.enabled {
        error_page(
            StatusCode::NOT_FOUND,
            "The admin console is not enabled",
            "Set admin.console.enabled and admin.console.admins in the gateway's configuration.",
        )
    } else {
        match sso_user(&sso, &headers).await {
            Ok(None) => redirect("/auth/login"),
            Ok(Some(u)) if is_admin(&state, &u) => {
                open_session(&state, &u, sso_pages::cookie(&headers, COOKIE)).await
            }
            Ok(Some(u)) => {
                tracing::info!(user = %u.id, "admin console SSO sign-in refused: not listed in admin.console.admins");
                error_page(
                    StatusCode::FORBIDDEN,
                    "Not an administrator",
                    "Your account is not an administrator of this gateway.",
                )
            }
            Err(e) => store_failed(&e),
        }
    };
    secure_headers(r.headers_mut());
    r
}

async fn sso_user(sso: &Sso, headers: &HeaderMap) -> Result<Option<User>, crate::sso::SsoError> {
    match sso_pages::cookie(headers, sso_pages::SESSION_COOKIE) {
        Some(c) => sso.session_user(&c).await,
        None => Ok(None),
    }
}
