//! Real identity-provider side for the SSO tests: `oidc-provider-mock` (PyPI, pinned in
//! tests/sdk/requirements.txt, installed by scripts/test into `.venv-test`) started on a free
//! port, a browser-like HTTP client that keeps cookies and follows no redirects, and a way to run
//! the official OpenAI Python SDK from the same venv.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The test venv (`PORTCULLIS_TEST_VENV`, default `.venv-test` in the repository), or `None`
/// outside CI when it is missing. Under `CI=true` a missing venv is a failure.
pub fn venv() -> Option<PathBuf> {
    let dir = std::env::var("PORTCULLIS_TEST_VENV").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test"),
        PathBuf::from,
    );
    if dir.join("bin/oidc-provider-mock").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the test venv with oidc-provider-mock is missing at {} (scripts/test creates it)",
        dir.display()
    );
    eprintln!(
        "skipping: no oidc-provider-mock in {} (run scripts/test once)",
        dir.display()
    );
    None
}

/// A running oidc-provider-mock; killed when dropped.
pub struct Idp {
    pub url: String,
    child: Child,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    /// Starts the IdP on a free port and waits for its "running on" line.
    pub fn start(venv: &std::path::Path) -> Idp {
        let mut child = Command::new(venv.join("bin/oidc-provider-mock"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start oidc-provider-mock");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("running on ").nth(1)
                    && let Some(t) = tx.take()
                {
                    let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = t.send(url);
                }
            }
        });
        let url = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("oidc-provider-mock did not start");
        Idp { url, child }
    }

    /// Sets the claims of user `sub`.
    pub async fn set_user(&self, sub: &str, claims: serde_json::Value) {
        let r = super::harness::client()
            .put(format!("{}/users/{sub}", self.url))
            .json(&claims)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

/// A browser: keeps cookies per name, never follows redirects, counts its requests.
#[derive(Clone, Default)]
pub struct Browser {
    cookies: Arc<Mutex<HashMap<String, String>>>,
    pub requests: Arc<Mutex<u32>>,
    /// Built on first use, then kept (with its connections): building one is slow.
    http: Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl Browser {
    fn client(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&self, r: &reqwest::Response) {
        *self.requests.lock().unwrap() += 1;
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            let mut jar = self.cookies.lock().unwrap();
            if v.is_empty() || attrs.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.try_get(url).await.unwrap()
    }

    /// `get`, with a failed connection as an error (a server that may have gone away).
    pub async fn try_get(&self, url: &str) -> reqwest::Result<reqwest::Response> {
        let r = self
            .client()
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await?;
        self.keep(&r);
        Ok(r)
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form_with(url, form, &[]).await
    }

    /// `post_form`, with a failed connection as an error.
    pub async fn try_post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Result<reqwest::Response> {
        self.try_post_form_with(url, form, &[]).await
    }

    /// `post_form` with extra request headers (`Origin`, `Referer`).
    pub async fn post_form_with(
        &self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        self.try_post_form_with(url, form, headers).await.unwrap()
    }

    async fn try_post_form_with(
        &self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Result<reqwest::Response> {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self.client().post(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        self.keep(&r);
        Ok(r)
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.lock().unwrap().contains_key(name)
    }
}

/// The `Location` of a redirect, made absolute against `base`.
pub fn location(r: &reqwest::Response, base: &str) -> String {
    assert!(
        r.status().is_redirection(),
        "expected a redirect, got {}",
        r.status()
    );
    let l = r.headers()["location"].to_str().unwrap();
    if l.starts_with('/') {
        format!("{base}{l}")
    } else {
        l.to_owned()
    }
}

/// Runs the official OpenAI Python SDK: one chat completion; returns (exit ok, stdout+stderr).
pub async fn openai_sdk_chat(venv: &std::path::Path, base_url: &str, key: &str) -> (bool, String) {
    let python = venv.join("bin/python");
    let script = "import sys\nfrom openai import OpenAI\nc = OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)\nr = c.chat.completions.create(model='openai:gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}])\nprint(r.choices[0].message.content)\n";
    let (base, key) = (base_url.to_owned(), key.to_owned());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(python)
            .args(["-c", script, &base, &key])
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

/// The first `http…` URL in `text`.
pub fn first_url(text: &str) -> String {
    let start = text.find("http").expect("no URL in the text");
    text[start..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}
