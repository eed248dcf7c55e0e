//! The personal-subscription connectors' credentials (PRODUCT §5, issue 23): what a Gemini CLI,
//! Codex CLI or Qwen Code login leaves on disk, read into a pool credential, and the account
//! facts each connector's requests need besides the token — [`Account`]: the ChatGPT account id
//! (Codex's `chatgpt-account-id` header), the Code Assist project (the Gemini CLI's envelope),
//! the Qwen resource URL (where that account's API lives). They ride in the credential's sealed
//! refresh state, so a refresh keeps them and every instance sees them.
//!
//! The files (their shapes are the CLIs' own):
//! - Gemini CLI `~/.gemini/oauth_creds.json`: `access_token`, `refresh_token`, `expiry_date`
//!   (ms), `id_token` (the e-mail, for the label);
//! - Codex CLI `$CODEX_HOME/auth.json` (`~/.codex/auth.json`): `tokens.{access_token,
//!   refresh_token, id_token, account_id}` — the access token is a JWT whose `exp` is its
//!   expiry; an `auth.json` holding only `OPENAI_API_KEY` is an API key, not a login;
//! - Qwen Code `~/.qwen/oauth_creds.json`: `access_token`, `refresh_token`, `expiry_date` (ms),
//!   `resource_url` (a host, or a URL);
//! - the Kiro IDE `~/.aws/sso/cache/kiro-auth-token.json`: `accessToken`, `refreshToken`,
//!   `expiresAt` (ISO 8601), `profileArn` (social logins), `clientIdHash` (Identity Center: the
//!   client registration `<clientIdHash>.json` beside it holds `clientId`, `clientSecret`).

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::device::{RefreshState, Tokens};
use crate::protocol::BackendKind;
use crate::secret::Secret;

/// What a connector's requests need of the account besides its token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Codex: the ChatGPT account (workspace) id, sent as `chatgpt-account-id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Gemini CLI: the Code Assist project the requests are billed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Qwen Code: the account's API base URL (`https://<resource_url>/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Kiro: the CodeWhisperer profile ARN (social and Identity Center logins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_arn: Option<String>,
    /// The login's e-mail, when the tokens say it (labels only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Account {
    /// True when it says nothing.
    pub fn is_empty(&self) -> bool {
        *self == Account::default()
    }

    /// Fills what `self` lacks from `older` (a refresh answer rarely repeats everything).
    pub fn or(self, older: &Account) -> Account {
        Account {
            account_id: self.account_id.or_else(|| older.account_id.clone()),
            project: self.project.or_else(|| older.project.clone()),
            base_url: self.base_url.or_else(|| older.base_url.clone()),
            profile_arn: self.profile_arn.or_else(|| older.profile_arn.clone()),
            email: self.email.or_else(|| older.email.clone()),
        }
    }
}

/// Which Code Assist project a `gemini_cli` backend's requests are billed to (the seed's
/// `gemini-oauth-free`, `-plan` and `-auto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// The free tier's project, which Google makes for the account (onboarding it when new).
    Free,
    /// The account's paid plan: the configured Google Cloud project (`project`).
    Plan,
    /// The free tier first; once its quota is spent (a 429), the paid plan's project, when one
    /// is configured: two credentials from one login, the free one tried first.
    #[default]
    Auto,
}

impl Tier {
    /// The tier a backend's name implies (`…-free`, `…-plan`), else `auto`.
    pub fn of_name(name: &str) -> Tier {
        if name.ends_with("-free") {
            Tier::Free
        } else if name.ends_with("-plan") {
            Tier::Plan
        } else {
            Tier::Auto
        }
    }
}

/// One connector backend, as the pool needs it: where its CLI keeps the login, and (Gemini
/// CLI) the Code Assist API and project.
#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    /// The backend's name (also its login's).
    pub backend: String,
    /// Its type.
    pub kind: BackendKind,
    /// The CLI's credentials file, imported at start and whenever it changes (`None`: off).
    pub file: Option<PathBuf>,
    /// The backend's base URL (Code Assist: where `loadCodeAssist` and `onboardUser` are).
    pub api_base: String,
    /// Gemini CLI: the paid plan's Google Cloud project.
    pub project: Option<String>,
    /// Gemini CLI: which project(s) pay.
    pub tier: Tier,
}

/// Why a CLI's credentials file could not be imported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not the CLI's credentials.
    #[error("{path} is not a {cli} credentials file: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Which CLI's file was expected.
        cli: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The backend is not a connector.
    #[error(
        "backend type `{0}` imports no CLI login (only gemini_cli, codex, qwen_code and kiro do)"
    )]
    NotAConnector(&'static str),
}

/// The CLI whose login a connector of `kind` reuses.
pub fn cli_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::GeminiCli => "Gemini CLI",
        BackendKind::Codex => "Codex CLI",
        BackendKind::QwenCode => "Qwen Code",
        BackendKind::Kiro => "Kiro IDE",
        _ => "API",
    }
}

/// Where the CLI keeps its login for a connector of `kind` (`home`: the user's home directory;
/// `codex_home`: `$CODEX_HOME`).
pub fn default_file(
    kind: BackendKind,
    home: Option<&Path>,
    codex_home: Option<&Path>,
) -> Option<PathBuf> {
    match kind {
        BackendKind::GeminiCli => home.map(|h| h.join(".gemini").join("oauth_creds.json")),
        BackendKind::Codex => codex_home
            .map(Path::to_path_buf)
            .or_else(|| home.map(|h| h.join(".codex")))
            .map(|d| d.join("auth.json")),
        BackendKind::QwenCode => home.map(|h| h.join(".qwen").join("oauth_creds.json")),
        BackendKind::Kiro => home.map(|h| {
            h.join(".aws")
                .join("sso")
                .join("cache")
                .join("kiro-auth-token.json")
        }),
        _ => None,
    }
}

/// The claims of a JWT's payload, unverified: the token is the provider's and is only passed
/// on; its expiry and account id are read for bookkeeping, never trusted for access.
pub fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The ChatGPT account id in an OpenAI id token (`https://api.openai.com/auth` claims).
pub fn chatgpt_account_id(id_token: &str) -> Option<String> {
    jwt_claims(id_token)?["https://api.openai.com/auth"]["chatgpt_account_id"]
        .as_str()
        .map(str::to_owned)
}

/// A Qwen `resource_url` (a host, or a URL) as the API base: `https://` added to a bare host,
/// `/v1` to a URL without it.
pub fn qwen_base_url(resource_url: &str) -> Option<String> {
    let r = resource_url.trim().trim_end_matches('/');
    if r.is_empty() {
        return None;
    }
    let url = if r.starts_with("http://") || r.starts_with("https://") {
        r.to_owned()
    } else {
        format!("https://{r}")
    };
    Some(if url.ends_with("/v1") {
        url
    } else {
        format!("{url}/v1")
    })
}

/// A Kiro Identity Center (or Builder ID) login's client registration: the file the Kiro IDE
/// keeps beside its token file, `<clientIdHash>.json` (`None` for a social login, which has no
/// `clientIdHash`, or a hash that is not a plain file name).
pub fn kiro_client_file(token_file: &Path, text: &str) -> Option<PathBuf> {
    let v: Value = serde_json::from_str(text).ok()?;
    let hash = v["clientIdHash"].as_str()?;
    let plain = !hash.is_empty()
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    plain.then(|| token_file.with_file_name(format!("{hash}.json")))
}

/// The client id and secret in a Kiro client registration file.
pub fn kiro_client(text: &str) -> Option<(String, String)> {
    let v: Value = serde_json::from_str(text).ok()?;
    Some((
        v["clientId"].as_str()?.to_owned(),
        v["clientSecret"].as_str()?.to_owned(),
    ))
}

/// Reads a CLI's credentials file `text` (from `path`, named in errors) for a connector of
/// `kind`; `login` is the login that refreshes it.
pub fn import(
    kind: BackendKind,
    path: &str,
    text: &str,
    login: &str,
) -> Result<Tokens, ImportError> {
    let cli = cli_name(kind);
    let invalid = |reason: &str| ImportError::Invalid {
        path: path.to_owned(),
        cli,
        reason: reason.to_owned(),
    };
    let v: Value = serde_json::from_str(text).map_err(|e| invalid(&format!("not JSON ({e})")))?;
    let text_of = |v: &Value, k: &str| {
        v[k].as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (access, refresh, expires_at, account) = match kind {
        BackendKind::GeminiCli | BackendKind::QwenCode => {
            let access = text_of(&v, "access_token").ok_or_else(|| invalid("no access_token"))?;
            let email = text_of(&v, "id_token")
                .and_then(|t| jwt_claims(&t))
                .and_then(|c| c["email"].as_str().map(str::to_owned));
            let base_url = match kind {
                BackendKind::QwenCode => {
                    text_of(&v, "resource_url").and_then(|r| qwen_base_url(&r))
                }
                _ => None,
            };
            (
                access,
                text_of(&v, "refresh_token"),
                v["expiry_date"].as_u64(),
                Account {
                    email,
                    base_url,
                    ..Account::default()
                },
            )
        }
        BackendKind::Codex => {
            let tokens = &v["tokens"];
            if !tokens.is_object() {
                return Err(invalid(if text_of(&v, "OPENAI_API_KEY").is_some() {
                    "it holds an API key, not a ChatGPT login: use an `openai` backend with that key"
                } else {
                    "no `tokens` (log in with `codex login`)"
                }));
            }
            let access =
                text_of(tokens, "access_token").ok_or_else(|| invalid("no tokens.access_token"))?;
            let id_token = text_of(tokens, "id_token");
            let claims = id_token.as_deref().and_then(jwt_claims);
            let account_id = text_of(tokens, "account_id")
                .or_else(|| id_token.as_deref().and_then(chatgpt_account_id));
            let expires_at = jwt_claims(&access)
                .and_then(|c| c["exp"].as_u64())
                .map(|s| s.saturating_mul(1000));
            (
                access,
                text_of(tokens, "refresh_token"),
                expires_at,
                Account {
                    account_id,
                    email: claims.and_then(|c| c["email"].as_str().map(str::to_owned)),
                    ..Account::default()
                },
            )
        }
        BackendKind::Kiro => {
            let access = text_of(&v, "accessToken").ok_or_else(|| invalid("no accessToken"))?;
            let expires_at = text_of(&v, "expiresAt").and_then(|t| crate::clock::parse_iso8601(&t));
            (
                access,
                text_of(&v, "refreshToken"),
                expires_at,
                Account {
                    profile_arn: text_of(&v, "profileArn"),
                    ..Account::default()
                },
            )
        }
        other => return Err(ImportError::NotAConnector(other.as_str())),
    };
    Ok(Tokens {
        access: Secret::new(access),
        expires_at,
        state: RefreshState {
            login: login.to_owned(),
            refresh_token: refresh,
            account,
            ..RefreshState::default()
        },
    })
}

/// The Code Assist request metadata the Gemini CLI sends (`loadCodeAssist`, `onboardUser`).
fn code_assist_metadata(project: Option<&str>) -> Value {
    let mut m = serde_json::json!({
        "ideType": "IDE_UNSPECIFIED",
        "platform": "PLATFORM_UNSPECIFIED",
        "pluginType": "GEMINI",
    });
    if let Some(p) = project {
        m["duetProject"] = Value::from(p);
    }
    m
}

/// Calls Code Assist method `method` with `access`; the answer's JSON, or why not.
async fn code_assist_call(
    http: &reqwest::Client,
    api_base: &str,
    method: &str,
    access: &Secret,
    body: &Value,
) -> Result<Value, String> {
    let url = format!("{}/v1internal:{method}", api_base.trim_end_matches('/'));
    let resp = http
        .post(&url)
        .bearer_auth(access.expose())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = crate::net::read_body_limited(resp, 64 * 1024)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|_| format!("{url} answered HTTP {status} without JSON"))?;
    if status >= 400 {
        let message = v["error"]["message"].as_str().unwrap_or("no message");
        return Err(format!("{method} answered HTTP {status}: {message}"));
    }
    Ok(v)
}

/// The project id in a `loadCodeAssist` answer or an `onboardUser` operation's result.
fn project_of(v: &Value) -> Option<String> {
    let p = &v["cloudaicompanionProject"];
    p.as_str()
        .or(p["id"].as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// How many times an unfinished onboarding is asked again, and how long apart.
const ONBOARD_POLLS: u32 = 6;
const ONBOARD_POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The Code Assist project of one tier for the login `access`, as the Gemini CLI finds it:
/// `loadCodeAssist` says the account's current tier and project; an account without one is
/// onboarded (`onboardUser`, a long-running operation asked again until done) to the free tier,
/// or to the plan's tier with `project`.
pub async fn code_assist_project(
    http: &reqwest::Client,
    api_base: &str,
    access: &Secret,
    paid: Option<&str>,
) -> Result<String, String> {
    let mut load = serde_json::json!({"metadata": code_assist_metadata(paid)});
    if let Some(p) = paid {
        load["cloudaicompanionProject"] = Value::from(p);
    }
    let loaded = code_assist_call(http, api_base, "loadCodeAssist", access, &load).await?;
    let current = loaded["currentTier"]["id"].as_str();
    if let Some(tier) = current {
        return match (paid, project_of(&loaded)) {
            (Some(p), _) => Ok(p.to_owned()),
            (None, Some(found)) => Ok(found),
            (None, None) => Err(format!(
                "the account is on Code Assist tier `{tier}`, which uses your own Google Cloud \
                 project: set `project` on the backend (or GOOGLE_CLOUD_PROJECT)"
            )),
        };
    }
    let tier = match paid {
        None => "free-tier".to_owned(),
        Some(_) => loaded["allowedTiers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["isDefault"].as_bool() == Some(true) && t["id"] != "free-tier")
            .and_then(|t| t["id"].as_str())
            .unwrap_or("standard-tier")
            .to_owned(),
    };
    let mut onboard = serde_json::json!({"tierId": tier, "metadata": code_assist_metadata(paid)});
    if let Some(p) = paid {
        onboard["cloudaicompanionProject"] = Value::from(p);
    }
    for attempt in 0..ONBOARD_POLLS {
        let op = code_assist_call(http, api_base, "onboardUser", access, &onboard).await?;
        if op["done"].as_bool() == Some(true) {
            return project_of(&op["response"])
                .or(paid.map(str::to_owned))
                .ok_or_else(|| "onboarding finished without a project".to_owned());
        }
        if attempt + 1 < ONBOARD_POLLS {
            tokio::time::sleep(ONBOARD_POLL_EVERY).await;
        }
    }
    Err(format!(
        "onboarding to Code Assist tier `{tier}` did not finish; try again later"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::connectors::jwt;

    #[test]
    fn a_gemini_cli_login_is_read() {
        let id = jwt(&serde_json::json!({"email": "dev@example.com"}));
        let text = format!(
            r#"{{"access_token":"ya29.a","refresh_token":"1//r","scope":"s","token_type":"Bearer","id_token":"{id}","expiry_date":1767225600000}}"#
        );
        let t = import(BackendKind::GeminiCli, "f", &text, "gemini").unwrap();
        assert_eq!(t.access.expose(), "ya29.a");
        assert_eq!(t.expires_at, Some(1_767_225_600_000));
        assert_eq!(t.state.refresh_token.as_deref(), Some("1//r"));
        assert_eq!(t.state.login, "gemini");
        assert_eq!(t.state.account.email.as_deref(), Some("dev@example.com"));
    }

    #[test]
    fn a_codex_login_gives_its_account_and_expiry() {
        let access = jwt(&serde_json::json!({"exp": 1_800_000_000u64}));
        let id = jwt(&serde_json::json!({"email": "a@b.c",
            "https://api.openai.com/auth": {"chatgpt_account_id": "acc-1"}}));
        let text = format!(
            r#"{{"OPENAI_API_KEY":null,"tokens":{{"id_token":"{id}","access_token":"{access}","refresh_token":"rt"}},"last_refresh":"2026-01-01T00:00:00Z"}}"#
        );
        let t = import(BackendKind::Codex, "f", &text, "codex").unwrap();
        assert_eq!(t.expires_at, Some(1_800_000_000_000));
        assert_eq!(t.state.account.account_id.as_deref(), Some("acc-1"));
        assert_eq!(t.state.account.email.as_deref(), Some("a@b.c"));
        // The file's own account_id wins over the id token's.
        let text = text.replace(
            r#""refresh_token":"rt""#,
            r#""refresh_token":"rt","account_id":"acc-2""#,
        );
        let t = import(BackendKind::Codex, "f", &text, "codex").unwrap();
        assert_eq!(t.state.account.account_id.as_deref(), Some("acc-2"));
    }

    #[test]
    fn a_qwen_login_gives_its_base_url() {
        let text = r#"{"access_token":"q","refresh_token":"r","token_type":"Bearer","resource_url":"portal.qwen.ai","expiry_date":5}"#;
        let t = import(BackendKind::QwenCode, "f", text, "qwen").unwrap();
        assert_eq!(
            t.state.account.base_url.as_deref(),
            Some("https://portal.qwen.ai/v1")
        );
        assert_eq!(
            qwen_base_url("http://127.0.0.1:9/qwen/v1/").as_deref(),
            Some("http://127.0.0.1:9/qwen/v1")
        );
        assert_eq!(qwen_base_url(" "), None);
    }

    #[test]
    fn what_is_not_a_login_is_refused_with_the_reason() {
        let e = import(
            BackendKind::Codex,
            "auth.json",
            r#"{"OPENAI_API_KEY":"sk-1"}"#,
            "c",
        );
        assert!(e.unwrap_err().to_string().contains("API key"));
        let e = import(BackendKind::Codex, "auth.json", "{}", "c").unwrap_err();
        assert!(e.to_string().contains("codex login"), "{e}");
        let e = import(BackendKind::GeminiCli, "x.json", "nope", "g").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.json is not a Gemini CLI credentials file: not JSON")
        );
        let e = import(
            BackendKind::QwenCode,
            "q.json",
            r#"{"refresh_token":"r"}"#,
            "q",
        )
        .unwrap_err();
        assert!(e.to_string().contains("no access_token"));
        assert!(matches!(
            import(BackendKind::Openai, "f", "{}", "x"),
            Err(ImportError::NotAConnector("openai"))
        ));
    }

    #[test]
    fn the_clis_files_are_where_the_clis_keep_them() {
        let home = Path::new("/home/u");
        assert_eq!(
            default_file(BackendKind::GeminiCli, Some(home), None).unwrap(),
            Path::new("/home/u/.gemini/oauth_creds.json")
        );
        assert_eq!(
            default_file(BackendKind::Codex, Some(home), Some(Path::new("/c"))).unwrap(),
            Path::new("/c/auth.json")
        );
        assert_eq!(
            default_file(BackendKind::Codex, Some(home), None).unwrap(),
            Path::new("/home/u/.codex/auth.json")
        );
        assert_eq!(default_file(BackendKind::Openai, Some(home), None), None);
    }
}
