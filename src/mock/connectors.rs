//! Fakes of the personal-subscription connectors' upstreams (issue 23), built from their
//! documented protocols, on the mock's one port:
//!
//! - the token endpoints: Google's `POST /oauth2/token` (form; the refresh grant, and the
//!   browser login's code exchange for any `mock-code-…` with a PKCE verifier; the Gemini CLI's
//!   client id and secret required), OpenAI's `POST /oauth/token` (the code exchange as a form,
//!   the refresh as JSON; the Codex CLI's client; refresh tokens rotated: a used one is refused
//!   as reused), Qwen's
//!   `POST /api/v1/oauth2/device/code` and `POST /api/v1/oauth2/token` (RFC 8628 with PKCE —
//!   the first poll is pending, the next approves — and the refresh grant; the token answer
//!   names the account's API, `resource_url`, as `<this mock>/qwen`);
//! - the APIs: Code Assist (`/v1internal:loadCodeAssist`, `:onboardUser`, `:generateContent`,
//!   `:streamGenerateContent` — the envelope checked and unwrapped, the answer wrapped in
//!   `{"response": …}`; a request without a project is refused), the ChatGPT Codex backend
//!   (`/backend-api/codex/responses`: streams only, `store: false`, `instructions` required,
//!   sampling and length parameters refused, `chatgpt-account-id` matching the token's account)
//!   and the Qwen portal (`/qwen/v1/chat/completions`); each answers as the mock's own
//!   Gemini, Responses or Chat endpoint would; and Kiro's `POST /generateAssistantResponse`
//!   (the conversation checked, the answer in AWS event-stream frames, a social login's
//!   `profileArn` required) with its social refresh, `POST /refreshToken`;
//! - control: `POST /mock/oauth/revoke` (body: a refresh token, refused from then on) and
//!   `POST /mock/code-assist/exhaust-free` (the free tier's project answers 429
//!   `RESOURCE_EXHAUSTED` with a `RetryInfo` of 3600 s from then on), `POST /mock/kiro/exhaust`
//!   (Kiro answers 402 `MONTHLY_REQUEST_COUNT` from then on).
//!
//! Access tokens it issues are `mock-at-<expiry in Unix seconds>-<n>` (Codex: a JWT with `exp`
//! and the account); the APIs take any such token not yet expired, so a test writes a CLI file
//! holding an expired one to see the gateway refresh it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::errors::{Proto, error_response};
use super::{MockReq, MockStats};
use crate::clock::{Clock, SystemClock};

/// The Gemini CLI's public OAuth client (what the fake token endpoint requires).
const GOOGLE_CLIENT: (&str, &str) = (
    "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
    "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",
);
/// The Codex CLI's public OAuth client.
const CODEX_CLIENT: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
/// Qwen Code's public OAuth client.
const QWEN_CLIENT: &str = "f0304373b74a44d2b584a3fb70ca9e56";
/// The ChatGPT account of every Codex login the fake makes.
pub const CODEX_ACCOUNT: &str = "mock-chatgpt-account";
/// The project the fake onboards a free-tier Code Assist user to.
pub const FREE_PROJECT: &str = "mock-free-project";
/// The CodeWhisperer profile of the Kiro social logins the fake makes.
pub const KIRO_PROFILE_ARN: &str = "arn:aws:codewhisperer:us-east-1:123456789012:profile/MOCK";
/// How long the access tokens it issues live.
const TOKEN_SECS: u64 = 3600;

/// The fakes' state.
#[derive(Debug, Default)]
pub struct Fakes {
    state: std::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    issued: u64,
    refreshes: u64,
    revoked: HashSet<String>,
    /// Qwen device code → (PKCE challenge, polls so far).
    devices: HashMap<String, (String, u32)>,
    onboarded: bool,
    free_exhausted: bool,
    kiro_exhausted: bool,
}

impl Fakes {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s)
    }

    /// Refresh grants answered with new tokens, over every token endpoint.
    pub fn refreshes(&self) -> u64 {
        self.with(|s| s.refreshes)
    }
}

/// The fakes' routes.
pub(super) fn routes() -> Router<Arc<MockStats>> {
    Router::new()
        .route("/oauth2/token", post(google_token))
        .route("/oauth/token", post(openai_token))
        .route("/api/v1/oauth2/device/code", post(qwen_device))
        .route("/api/v1/oauth2/token", post(qwen_token))
        .route("/mock/oauth/revoke", post(revoke))
        .route("/mock/code-assist/exhaust-free", post(exhaust_free))
        .route("/backend-api/codex/responses", post(codex))
        .route("/qwen/v1/chat/completions", post(qwen_chat))
        .route("/generateAssistantResponse", post(kiro))
        .route("/refreshToken", post(kiro_refresh))
        .route("/mock/kiro/exhaust", post(kiro_exhaust))
}

fn now_secs() -> u64 {
    SystemClock.now_millis() / 1000
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An unsigned JWT carrying `claims` (the gateway reads, never verifies, provider tokens): what
/// the fakes issue, and what tests write into a CLI's login file.
pub fn jwt(claims: &Value) -> String {
    format!(
        "{}.{}.mock",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// `(status, body)` as a JSON answer.
fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    answer(
        status,
        json!({"error": code, "error_description": description}),
    )
}

/// The bearer token's expiry, when it is one this fake issued (or a JWT with `exp`).
fn token_expiry(req: &MockReq) -> Option<u64> {
    let token = req
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    if let Some(rest) = token.strip_prefix("mock-at-") {
        return rest.split('-').next()?.parse().ok();
    }
    claims(token)?["exp"].as_u64()
}

/// A 401 in `proto`'s shape unless the request carries a live token of this fake.
fn refuse_token(req: &MockReq, proto: Proto) -> Option<Response> {
    let message = match token_expiry(req) {
        Some(exp) if exp > now_secs() => return None,
        Some(_) => "mock: the access token has expired",
        None => "mock: no valid access token",
    };
    Some(error_response(
        proto,
        StatusCode::UNAUTHORIZED,
        message,
        None,
    ))
}

/// A fresh access token of this fake.
fn issue(s: &mut State) -> String {
    s.issued += 1;
    format!("mock-at-{}-{}", now_secs() + TOKEN_SECS, s.issued)
}

async fn google_token(req: MockReq) -> Response {
    let f = form(&req.body);
    let get = |k: &str| f.get(k).map(String::as_str);
    if get("client_id") != Some(GOOGLE_CLIENT.0) || get("client_secret") != Some(GOOGLE_CLIENT.1) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    if get("grant_type") == Some("authorization_code") {
        // The browser login's code exchange (PKCE: a verifier must come with the code).
        if !get("code").is_some_and(|c| c.starts_with("mock-code-"))
            || get("code_verifier").is_none_or(str::is_empty)
            || get("redirect_uri").is_none()
        {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Malformed auth code.",
            );
        }
        return req.stats.fakes.with(|s| {
            s.issued += 1;
            let id = jwt(&json!({"email": "dev@example.com", "aud": GOOGLE_CLIENT.0}));
            answer(
                StatusCode::OK,
                json!({"access_token": issue(s), "expires_in": TOKEN_SECS - 1, "token_type": "Bearer",
                       "refresh_token": format!("mock-rt-google-{}", s.issued), "id_token": id}),
            )
        });
    }
    if get("grant_type") != Some("refresh_token") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "");
    }
    let rt = get("refresh_token").unwrap_or_default();
    req.stats.fakes.with(|s| {
        if rt.is_empty() || s.revoked.contains(rt) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "Token has been expired or revoked.",
            );
        }
        s.refreshes += 1;
        answer(
            StatusCode::OK,
            json!({"access_token": issue(s), "expires_in": TOKEN_SECS - 1, "token_type": "Bearer",
                   "scope": "https://www.googleapis.com/auth/cloud-platform"}),
        )
    })
}

/// A Codex login's tokens: JWTs carrying the account, a fresh refresh token.
fn codex_tokens(s: &mut State) -> Value {
    s.issued += 1;
    let auth = json!({"chatgpt_account_id": CODEX_ACCOUNT, "chatgpt_plan_type": "plus"});
    json!({
        "id_token": jwt(&json!({"email": "dev@example.com", "https://api.openai.com/auth": auth})),
        "access_token": jwt(&json!({"exp": now_secs() + TOKEN_SECS, "n": s.issued,
                                    "https://api.openai.com/auth": auth})),
        "refresh_token": format!("mock-rt-codex-{}", s.issued),
    })
}

async fn openai_token(req: MockReq) -> Response {
    // The browser login's code exchange is a form (the refresh is JSON).
    let f = form(&req.body);
    if f.get("grant_type").map(String::as_str) == Some("authorization_code") {
        let good = f.get("client_id").map(String::as_str) == Some(CODEX_CLIENT)
            && f.get("code").is_some_and(|c| c.starts_with("mock-code-"))
            && f.get("code_verifier").is_some_and(|v| !v.is_empty())
            && f.get("redirect_uri")
                .is_some_and(|r| r.ends_with("/auth/callback"));
        if !good {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "bad authorization code",
            );
        }
        return req
            .stats
            .fakes
            .with(|s| answer(StatusCode::OK, codex_tokens(s)));
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    if body["client_id"] != CODEX_CLIENT {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let rt = body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    req.stats.fakes.with(|s| {
        if body["grant_type"] != "refresh_token" || rt.is_empty() || !s.revoked.insert(rt) {
            // A refresh token works once (rotation): a second use is refused as reused.
            return answer(
                StatusCode::UNAUTHORIZED,
                json!({"error": {"message": "Your refresh token has already been used to generate a new access token. Please try signing in again.",
                                 "type": "invalid_request_error", "code": "refresh_token_reused"}}),
            );
        }
        s.refreshes += 1;
        answer(StatusCode::OK, codex_tokens(s))
    })
}

async fn qwen_device(req: MockReq) -> Response {
    let f = form(&req.body);
    let challenge = match (f.get("client_id"), f.get("code_challenge_method")) {
        (Some(c), Some(m)) if c == QWEN_CLIENT && m == "S256" => f.get("code_challenge").cloned(),
        _ => None,
    };
    let Some(challenge) = challenge else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and a S256 code_challenge are required",
        );
    };
    req.stats.fakes.with(|s| {
        s.issued += 1;
        let device = format!("mock-device-{}", s.issued);
        s.devices.insert(device.clone(), (challenge, 0));
        answer(
            StatusCode::OK,
            json!({"device_code": device, "user_code": "MOCK-QWEN",
                   "verification_uri": "https://chat.qwen.ai/authorize",
                   "verification_uri_complete": "https://chat.qwen.ai/authorize?user_code=MOCK-QWEN&client=qwen-code",
                   "expires_in": 600, "interval": 1}),
        )
    })
}

/// Qwen's token answer: the account's API is this mock's `/qwen`.
fn qwen_tokens(req: &MockReq, s: &mut State, refresh: Option<String>) -> Value {
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let access = issue(s);
    json!({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECS,
           "refresh_token": refresh.unwrap_or_else(|| format!("mock-rt-qwen-{}", s.issued)),
           "resource_url": format!("http://{host}/qwen")})
}

async fn qwen_token(req: MockReq) -> Response {
    let f = form(&req.body);
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if get("client_id") != QWEN_CLIENT {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let stats = req.stats.clone();
    stats.fakes.with(|s| match get("grant_type").as_str() {
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let device = get("device_code");
            let Some((challenge, polls)) = s.devices.get_mut(&device) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "expired_token",
                    "unknown device code",
                );
            };
            if crate::secret::pkce_challenge(&get("code_verifier")) != *challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            *polls += 1;
            if *polls == 1 {
                return oauth_error(StatusCode::BAD_REQUEST, "authorization_pending", "");
            }
            s.devices.remove(&device);
            answer(StatusCode::OK, qwen_tokens(&req, s, None))
        }
        "refresh_token" => {
            let rt = get("refresh_token");
            if rt.is_empty() || s.revoked.contains(&rt) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token expired or revoked",
                );
            }
            s.refreshes += 1;
            answer(StatusCode::OK, qwen_tokens(&req, s, Some(rt)))
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", ""),
    })
}

async fn revoke(req: MockReq) -> Response {
    let token = String::from_utf8_lossy(&req.body).trim().to_owned();
    req.stats.fakes.with(|s| s.revoked.insert(token));
    StatusCode::NO_CONTENT.into_response()
}

async fn exhaust_free(req: MockReq) -> Response {
    req.stats.fakes.with(|s| s.free_exhausted = true);
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /v1internal:<method>` (reached through the mock's fallback: the method is part of the
/// path's one segment).
pub(super) async fn code_assist(req: MockReq) -> Response {
    let method = req.path.trim_start_matches('/').to_owned();
    match code_assist_inner(&method, req).await {
        Ok(r) | Err(r) => r,
    }
}

async fn code_assist_inner(method: &str, req: MockReq) -> Result<Response, Response> {
    let google = |status, msg: &str| error_response(Proto::Google, status, msg, None);
    let Some(method) = method.strip_prefix("v1internal:") else {
        return Err(google(StatusCode::NOT_FOUND, "mock: unknown path"));
    };
    if let Some(refused) = refuse_token(&req, Proto::Google) {
        return Err(refused);
    }
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|_| google(StatusCode::BAD_REQUEST, "mock: the body is not JSON"))?;
    let fakes = &req.stats.fakes;
    match method {
        "loadCodeAssist" => Ok(answer(
            StatusCode::OK,
            match body["cloudaicompanionProject"].as_str() {
                Some(p) => {
                    json!({"currentTier": {"id": "standard-tier"}, "cloudaicompanionProject": p})
                }
                None if fakes.with(|s| s.onboarded) => {
                    json!({"currentTier": {"id": "free-tier"}, "cloudaicompanionProject": FREE_PROJECT})
                }
                None => json!({"allowedTiers": [{"id": "free-tier", "isDefault": true},
                                                  {"id": "standard-tier"}]}),
            },
        )),
        "onboardUser" => {
            let free = body["tierId"] == "free-tier";
            if free {
                fakes.with(|s| s.onboarded = true);
            }
            let project = if free {
                FREE_PROJECT
            } else {
                body["cloudaicompanionProject"].as_str().unwrap_or_default()
            };
            Ok(answer(
                StatusCode::OK,
                json!({"name": "operations/mock", "done": true,
                       "response": {"cloudaicompanionProject": {"id": project, "name": project}}}),
            ))
        }
        "generateContent" | "streamGenerateContent" => {
            let (Some(model), Some(project), Some(inner)) = (
                body["model"].as_str(),
                body["project"].as_str(),
                body.get("request"),
            ) else {
                return Err(google(
                    StatusCode::FORBIDDEN,
                    "mock: a Code Assist request needs model, project and request",
                ));
            };
            if project == FREE_PROJECT && fakes.with(|s| s.free_exhausted) {
                let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                    "message": "mock: the free tier's quota is spent",
                    "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3600s"}]}});
                return Err(answer(StatusCode::TOO_MANY_REQUESTS, body));
            }
            let rest = format!("{model}:{method}");
            let inner_req = MockReq {
                stats: req.stats.clone(),
                seq: req.seq,
                method: req.method.clone(),
                path: format!("/v1beta/models/{rest}"),
                query: req.query.clone(),
                headers: req.headers.clone(),
                body: Bytes::from(inner.to_string()),
            };
            let resp = super::gemini::model_action(Path(rest), inner_req).await;
            Ok(wrap_response(resp).await)
        }
        _ => Err(google(
            StatusCode::NOT_FOUND,
            "mock: unknown Code Assist method",
        )),
    }
}

/// A Gemini answer in the Code Assist envelope: a JSON body whole, a stream line by line.
async fn wrap_response(resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    if !parts.status.is_success() {
        return Response::from_parts(parts, body);
    }
    let sse = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if sse {
        use futures_util::StreamExt;
        let stream = body.into_data_stream().map(|chunk| {
            chunk.map(|c| {
                let text = String::from_utf8_lossy(&c);
                let mut out = String::with_capacity(text.len() + 16);
                for line in text.split_inclusive('\n') {
                    match line.strip_prefix("data: ") {
                        Some(data) => {
                            let (json, end) = data.split_at(data.trim_end().len());
                            out.push_str(&format!("data: {{\"response\":{json}}}{end}"));
                        }
                        None => out.push_str(line),
                    }
                }
                Bytes::from(out)
            })
        });
        let mut parts = parts;
        parts.headers.remove(http::header::CONTENT_LENGTH);
        return Response::from_parts(parts, axum::body::Body::from_stream(stream));
    }
    let bytes = axum::body::to_bytes(body, super::MAX_BODY)
        .await
        .unwrap_or_default();
    let inner: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    answer(
        parts.status,
        json!({"response": inner, "traceId": "mock-trace"}),
    )
}

/// `POST /backend-api/codex/responses`.
async fn codex(req: MockReq) -> Response {
    match refuse_codex(&req) {
        None => super::responses::create(req).await,
        Some(r) => r,
    }
}

/// What the Codex backend refuses of `req`, if anything.
fn refuse_codex(req: &MockReq) -> Option<Response> {
    if let Some(refused) = refuse_token(req, Proto::OpenAi) {
        return Some(refused);
    }
    let bad = |msg: &str| Some(answer(StatusCode::BAD_REQUEST, json!({"detail": msg})));
    let token_account = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(claims)
        .and_then(|c| {
            c["https://api.openai.com/auth"]["chatgpt_account_id"]
                .as_str()
                .map(str::to_owned)
        });
    let header_account = req
        .headers
        .get("chatgpt-account-id")
        .and_then(|v| v.to_str().ok());
    if token_account.as_deref() != header_account {
        return Some(answer(
            StatusCode::FORBIDDEN,
            json!({"detail": "mock: chatgpt-account-id does not match the token's account"}),
        ));
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    if body["stream"] != true {
        return bad("Stream must be set to true");
    }
    if body["store"] != false {
        return bad("Store must be set to false");
    }
    if !body["instructions"].is_string() {
        return bad("Instructions are required");
    }
    for key in ["max_output_tokens", "temperature", "top_p"] {
        if body.get(key).is_some() {
            return bad(&format!("Unsupported parameter: {key}"));
        }
    }
    None
}

/// `POST /qwen/v1/chat/completions`.
async fn qwen_chat(req: MockReq) -> Response {
    match refuse_token(&req, Proto::OpenAi) {
        None => super::openai::chat_completions(req).await,
        Some(r) => r,
    }
}

async fn kiro_exhaust(req: MockReq) -> Response {
    req.stats.fakes.with(|s| s.kiro_exhausted = true);
    StatusCode::NO_CONTENT.into_response()
}

/// Kiro's social refresh: `{"refreshToken"}` → new tokens with the login's profile.
async fn kiro_refresh(req: MockReq) -> Response {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let rt = body["refreshToken"].as_str().unwrap_or_default().to_owned();
    req.stats.fakes.with(|s| {
        if rt.is_empty() || s.revoked.contains(&rt) {
            return answer(
                StatusCode::UNAUTHORIZED,
                json!({"message": "Invalid refresh token provided"}),
            );
        }
        s.refreshes += 1;
        answer(
            StatusCode::OK,
            json!({"accessToken": issue(s), "refreshToken": rt, "profileArn": KIRO_PROFILE_ARN,
                   "expiresIn": TOKEN_SECS}),
        )
    })
}

/// `POST /generateAssistantResponse`: the answer text in `assistantResponseEvent` frames, then
/// the token usage.
async fn kiro(req: MockReq) -> Response {
    let plain = |status: StatusCode, message: &str| {
        answer(
            status,
            json!({"message": message, "__type": "ValidationException"}),
        )
    };
    if token_expiry(&req).is_none_or(|exp| exp <= now_secs()) {
        return answer(
            StatusCode::FORBIDDEN,
            json!({"message": "The bearer token included in the request is invalid."}),
        );
    }
    if req.stats.fakes.with(|s| s.kiro_exhausted) {
        return answer(
            StatusCode::PAYMENT_REQUIRED,
            json!({"message": "You have reached the limit.", "reason": "MONTHLY_REQUEST_COUNT"}),
        );
    }
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let state = &body["conversationState"];
    let current = &state["currentMessage"]["userInputMessage"];
    if state["chatTriggerType"] != "MANUAL"
        || !state["conversationId"].is_string()
        || current["content"].as_str().is_none_or(str::is_empty)
        || !current["modelId"].is_string()
    {
        return plain(StatusCode::BAD_REQUEST, "Improperly formed request.");
    }
    if body
        .get("profileArn")
        .is_some_and(|p| p != KIRO_PROFILE_ARN)
    {
        return plain(StatusCode::FORBIDDEN, "mock: unknown profileArn");
    }
    let half = super::MOCK_TEXT.len() / 2;
    let frames = [
        crate::wire::event_stream::event(
            "assistantResponseEvent",
            json!({"content": &super::MOCK_TEXT[..half]})
                .to_string()
                .as_bytes(),
        ),
        crate::wire::event_stream::event(
            "assistantResponseEvent",
            json!({"content": &super::MOCK_TEXT[half..]})
                .to_string()
                .as_bytes(),
        ),
        crate::wire::event_stream::event(
            "metadataEvent",
            json!({"tokenUsage": {"uncachedInputTokens": 5, "outputTokens": 4, "totalTokens": 9}})
                .to_string()
                .as_bytes(),
        ),
    ];
    let chunks = frames
        .into_iter()
        .map(|f| Ok::<_, std::io::Error>(Bytes::from(f)));
    let mut resp =
        axum::body::Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    resp
}
