//! Authorization after the identity provider has vouched for a user: the single-user
//! confirmation code (printed on the console, never logged) and the enterprise authorization API
//! (fail closed: only HTTP 200 with `{"authorized": true}` within the timeout lets a login through).

use std::io::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use crate::secret::{Secret, random_bytes};
use crate::store::{User, hex};

/// The largest answer read from the authorization API (it is `{"authorized": …}`).
const MAX_ANSWER: usize = 64 * 1024;

/// Confirmation-code rules.
#[derive(Debug, Clone, Copy)]
pub struct Confirmation {
    /// Lifetime of a code (ms).
    pub ttl_ms: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
}

/// A uniformly random 6-digit code.
pub fn new_code() -> std::io::Result<Secret> {
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>()?);
        // Rejection sampling: drop the top partial range so every code is equally likely.
        if n < u32::MAX - (u32::MAX % 1_000_000) {
            return Ok(Secret::new(format!("{:06}", n % 1_000_000)));
        }
    }
}

/// How a code is stored: keyed, and bound to the pending authorization it belongs to.
pub fn code_hash(key: &[u8; 32], id_hash: &str, code: &str) -> String {
    let mut input = Vec::with_capacity(id_hash.len() + code.len() + 1);
    input.extend_from_slice(id_hash.as_bytes());
    input.push(b':');
    input.extend_from_slice(code.as_bytes());
    hex(blake3::keyed_hash(key, &input).as_bytes())
}

/// Text from the identity provider made safe for a terminal: no control characters (no forged
/// banner lines, no escape sequences), at most 100 characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(100).collect()
}

/// The console banner (stderr, so it shows whatever the log format and level).
pub fn banner(user: &User, provider: &str, ip: IpAddr, code: &Secret, ttl_ms: i64) -> String {
    let rule = "=".repeat(72);
    format!(
        "\n{rule}\n  PORTCULLIS SSO AUTHORIZATION REQUEST\n  User:     {}\n  Email:    {}\n  Provider: {provider}\n  From:     {ip}\n\n  Confirmation code: {}\n\n  Give this code only to the person above, in the browser they are using.\n  It expires in {} minutes.\n{rule}\n",
        printable(user.display_name.as_deref().unwrap_or("(no name)")),
        printable(user.email.as_deref().unwrap_or("(no email)")),
        code.expose(),
        ttl_ms / 60_000,
    )
}

/// Prints [`banner`] on stderr and logs (without the code) that a login is waiting.
pub fn print_banner(user: &User, provider: &str, ip: IpAddr, code: &Secret, ttl_ms: i64) {
    let text = banner(user, provider, ip, code, ttl_ms);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
    tracing::warn!(user = %user.id, %provider, client_ip = %ip, "SSO login waiting for the confirmation code printed on the console");
}

/// The enterprise authorization API client.
#[derive(Debug)]
pub struct EnterpriseApi {
    url: String,
    secret: Option<Secret>,
    http: reqwest::Client,
}

impl EnterpriseApi {
    /// A client with a total `timeout` per call and no redirects.
    pub fn new(
        url: String,
        secret: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = crate::net::outbound_client(timeout, timeout)?;
        Ok(Self { url, secret, http })
    }

    /// Asks whether `user` may log in; `Err` carries the reason for the logs.
    pub async fn authorize(
        &self,
        user: &User,
        provider: &str,
        ip: IpAddr,
        timestamp: &str,
    ) -> Result<(), String> {
        let payload = serde_json::json!({
            "user_id": user.id,
            "user_email": user.email,
            "provider": provider,
            "client_ip": ip.to_string(),
            "timestamp": timestamp,
        });
        let mut req = self
            .http
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(payload.to_string());
        if let Some(s) = &self.secret {
            req = req.bearer_auth(s.expose());
        }
        let denied = |reason: String| {
            tracing::warn!(user = %user.id, %reason, "SSO login denied by the authorization API");
            Err(reason)
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return denied("the authorization API timed out".into()),
            Err(e) => {
                // Without the URL: it may carry a credential in its query.
                return denied(format!(
                    "the authorization API could not be reached: {}",
                    e.without_url()
                ));
            }
        };
        let status = resp.status();
        let body = match crate::net::read_body_limited(resp, MAX_ANSWER).await {
            Ok(b) => b,
            Err(e) => {
                return denied(format!("the authorization API's answer: {e}"));
            }
        };
        if status != http::StatusCode::OK {
            return denied(format!("the authorization API answered HTTP {status}"));
        }
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) if v.get("authorized") == Some(&serde_json::Value::Bool(true)) => Ok(()),
            Ok(_) => denied("the authorization API did not authorize this user".into()),
            Err(_) => denied("the authorization API's answer is not JSON".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_bound_to_their_login() {
        let c = new_code().unwrap();
        assert_eq!(c.expose().len(), 6);
        assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        let k = [3u8; 32];
        assert_eq!(code_hash(&k, "a", "123456"), code_hash(&k, "a", "123456"));
        assert_ne!(code_hash(&k, "a", "123456"), code_hash(&k, "b", "123456"));
        assert_ne!(
            code_hash(&k, "a", "123456"),
            code_hash(&[4; 32], "a", "123456")
        );
    }

    #[test]
    fn the_banner_names_the_user_and_shows_the_code() {
        let u = User {
            id: "usr_1".into(),
            provider: "google".into(),
            subject: "s".into(),
            email: Some("alice@example.com".into()),
            display_name: Some("Alice".into()),
            created_at: 0,
            disabled: false,
        };
        let b = banner(
            &u,
            "google",
            "127.0.0.1".parse().unwrap(),
            &Secret::new("042137"),
            600_000,
        );
        assert!(b.contains("Confirmation code: 042137"), "{b}");
        // A name from the provider cannot forge banner lines or send escape sequences.
        let evil = User {
            display_name: Some("Mallory\n  Confirmation code: 000000\u{1b}[2J".into()),
            ..u.clone()
        };
        let b = banner(
            &evil,
            "google",
            "127.0.0.1".parse().unwrap(),
            &Secret::new("042137"),
            600_000,
        );
        let code_lines = b
            .lines()
            .filter(|l| l.trim_start().starts_with("Confirmation code:"))
            .count();
        assert_eq!(code_lines, 1, "{b}");
        assert!(!b.contains('\u{1b}'), "{b}");
        assert!(
            b.contains("alice@example.com") && b.contains("10 minutes"),
            "{b}"
        );
    }
}
