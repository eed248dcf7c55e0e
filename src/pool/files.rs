//! The credential directory (`auth.credentials_dir`, default `auths/`): one JSON file per
//! credential, `{"provider", "type": "api_key"|"oauth", "token", "priority", "quota": {"limit"}}`.
//! `provider` may be left out when the file is named after it (`auths/claude.json`). The
//! directory is read again every second; when any file changed, every file is parsed again and
//! the pool rebuilt. A file that cannot be read or parsed is logged and skipped — the other files
//! keep working, and the error is listed by the management API until the file is fixed.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Spec;
use super::select::{CredentialKind, Source};
use crate::seal::Sealer;
use crate::secret::Secret;

/// Largest credential file read.
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// Most files read from the directory.
const MAX_FILES: usize = 10_000;

/// Associated data of secrets the gateway seals into credential files.
pub const FILE_CONTEXT: &str = "portcullis/credential-file";

#[derive(Deserialize)]
struct FileQuota {
    limit: u64,
}

/// One credential file. Unknown fields (the seed's `quota.used`, notes) are ignored.
#[derive(Deserialize)]
struct CredentialFile {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    token: Secret,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    quota: Option<FileQuota>,
    #[serde(default)]
    label: Option<String>,
    /// Expiry of an OAuth access token, ms since the epoch.
    #[serde(default)]
    expires_at: Option<u64>,
}

/// What one scan of the directory found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Fingerprint of every file's name and content.
    pub(super) fingerprint: [u8; 32],
    /// Files parsed into credentials.
    pub(super) specs: Vec<Spec>,
    /// Files skipped, and why.
    pub(super) errors: Vec<(String, String)>,
}

/// Reads every `*.json` file of `dir` (a missing directory is empty). `resolve` maps a provider
/// name to a configured backend.
pub(super) fn scan(
    dir: &Path,
    sealer: Option<&Sealer>,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Scan {
    let mut out = Scan::default();
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .take(MAX_FILES)
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    let mut hasher = blake3::Hasher::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        hasher.update(name.as_bytes());
        let content = match read_small(&path) {
            Ok(c) => c,
            Err(e) => {
                hasher.update(e.as_bytes());
                out.errors.push((name, e));
                continue;
            }
        };
        hasher.update(&(content.len() as u64).to_le_bytes());
        hasher.update(&content);
        match parse(&path, &content, sealer, resolve) {
            Ok(spec) => out.specs.push(spec),
            Err(e) => out.errors.push((name, e)),
        }
    }
    out.fingerprint = *hasher.finalize().as_bytes();
    out
}

fn read_small(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}

/// The id of a file's credential: `file-<name without .json>`, characters outside
/// `[A-Za-z0-9._-]` replaced by `_`.
pub(super) fn id_for(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = stem
        .chars()
        .take(58)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("file-{clean}")
}

/// A JSON error's message with the string value it quotes masked: serde names a value of the
/// wrong type (`invalid type: string "sk-…", expected struct CredentialFile`), and a file that
/// holds the key alone, quoted, would show it in the log and the management API's listing.
fn without_values(message: &str) -> String {
    match (message.find('"'), message.rfind('"')) {
        (Some(first), Some(last)) if first < last => {
            format!("{}\"…\"{}", &message[..first], &message[last + 1..])
        }
        _ => message.to_owned(),
    }
}

fn parse(
    path: &Path,
    content: &[u8],
    sealer: Option<&Sealer>,
    resolve: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec, String> {
    let f: CredentialFile = serde_json::from_slice(content)
        .map_err(|e| format!("not a credential file: {}", without_values(&e.to_string())))?;
    let kind = match f.kind.as_deref() {
        None => CredentialKind::ApiKey,
        Some(k) => CredentialKind::parse(k)
            .ok_or_else(|| format!("`type` must be `api_key` or `oauth`, not `{k}`"))?,
    };
    let named = match &f.provider {
        Some(p) => p.clone(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let provider = resolve(&named).ok_or_else(|| match &f.provider {
        Some(p) => format!("provider `{p}` is not a configured backend"),
        None => {
            format!("no `provider` field, and the file name `{named}` is not a configured backend")
        }
    })?;
    let secret = match crate::seal::is_sealed(f.token.expose()) {
        true => {
            let plain = crate::seal::open(sealer, f.token.expose(), FILE_CONTEXT)
                .map_err(|e| format!("`token` cannot be opened: {e}"))?;
            Secret::new(String::from_utf8(plain).map_err(|_| "`token` is not text".to_owned())?)
        }
        false => f.token,
    };
    if secret.expose().trim().is_empty() {
        return Err("`token` is empty".to_owned());
    }
    let id = match f.id {
        Some(id) if super::valid_id(&id) => id,
        Some(id) => {
            return Err(format!(
                "id `{id}` may only use letters, digits, `-`, `_`, `.`"
            ));
        }
        None => id_for(path),
    };
    Ok(Spec {
        id,
        provider,
        kind,
        source: Source::File(path.to_path_buf()),
        label: f.label,
        secret,
        priority: f.priority.unwrap_or_else(super::default_priority),
        quota_limit: f.quota.map(|q| q.limit),
        expires_at: f.expires_at,
        account: None,
    })
}

/// Re-seals, under the current key, every sealed secret in the directory's files (values the
/// gateway wrote; plain values an operator wrote are left as they are). Each file is replaced
/// atomically. Returns how many files changed.
pub(super) fn reseal_dir(dir: &Path, sealer: Option<&Sealer>) -> Result<usize, String> {
    if !sealer.is_some_and(Sealer::seals) {
        return Err("rekey needs auth.encryption.key with sealing on".to_owned());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut changed = 0;
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.display().to_string();
        let Ok(content) = read_small(&path) else {
            continue;
        };
        let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&content) else {
            continue;
        };
        let mut touched = false;
        for field in ["token", "refresh_token"] {
            let Some(value) = doc.get(field).and_then(|v| v.as_str()) else {
                continue;
            };
            if !crate::seal::is_sealed(value) || !crate::seal::needs_reseal(sealer, value) {
                continue;
            }
            let plain = crate::seal::open(sealer, value, FILE_CONTEXT)
                .map_err(|e| format!("{name}: `{field}` cannot be opened: {e}"))?;
            let plain =
                String::from_utf8(plain).map_err(|_| format!("{name}: `{field}` is not text"))?;
            let resealed = crate::seal::seal_if_enabled(sealer, &plain, FILE_CONTEXT)
                .map_err(|e| format!("{name}: {e}"))?;
            doc[field] = serde_json::Value::String(resealed);
            touched = true;
        }
        if touched {
            write_atomically(&path, &doc).map_err(|e| format!("{name}: {e}"))?;
            changed += 1;
        }
    }
    Ok(changed)
}

/// Writes `doc` to `path` through a temporary file in the same directory (mode 0600), renamed
/// over the old file, so a reader never sees half a file.
pub(super) fn write_atomically(path: &Path, doc: &serde_json::Value) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(&serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(name: &str) -> Option<String> {
        match name {
            "openai" => Some("openai".to_owned()),
            "claude" | "anthropic" => Some("anthropic".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn files_parse_skip_and_fingerprint() {
        let dir = std::env::temp_dir().join(format!("pcl-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("claude.json"),
            r#"{"type":"api_key","token":"sk-ant-1234567890","priority":1,"quota":{"limit":1000,"used":5}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("second.json"),
            r#"{"provider":"openai","token":"sk-abcdefghijkl"}"#,
        )
        .unwrap();
        std::fs::write(dir.join("broken.json"), "{not json").unwrap();
        std::fs::write(dir.join("nobody.json"), r#"{"token":"x"}"#).unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let s = scan(&dir, None, &resolve);
        assert_eq!(s.specs.len(), 2);
        let claude = s.specs.iter().find(|c| c.id == "file-claude").unwrap();
        assert_eq!(claude.provider, "anthropic");
        assert_eq!(claude.priority, 1);
        assert_eq!(claude.quota_limit, Some(1000));
        let second = s.specs.iter().find(|c| c.id == "file-second").unwrap();
        assert_eq!(second.priority, 100);
        // Schemathesis finding: a file holding the key alone, quoted, is no credential file,
        // and the error listed (and logged) does not show the key.
        std::fs::write(dir.join("quoted.json"), r#""sk-quoted-0123456789abcdef""#).unwrap();
        let s = scan(&dir, None, &resolve);
        let names: Vec<&str> = s.errors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["broken.json", "nobody.json", "quoted.json"]);
        let quoted = &s.errors[2].1;
        assert!(!quoted.contains("sk-quoted"), "{quoted}");
        assert!(
            quoted.contains(r#"invalid type: string "…", expected struct CredentialFile"#),
            "{quoted}"
        );
        assert_eq!(scan(&dir, None, &resolve).fingerprint, s.fingerprint);
        std::fs::write(
            dir.join("second.json"),
            r#"{"provider":"openai","token":"sk-abcdefghijkm"}"#,
        )
        .unwrap();
        assert_ne!(scan(&dir, None, &resolve).fingerprint, s.fingerprint);
        assert!(scan(&dir.join("missing"), None, &resolve).specs.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn sealer(current: u8, previous: Option<u8>) -> Sealer {
        use base64::Engine as _;
        let b64 = |b: u8| Secret::new(base64::engine::general_purpose::STANDARD.encode([b; 32]));
        let cfg = crate::seal::EncryptionConfig {
            key: Some(b64(current)),
            key_env: None,
            enabled: None,
            previous_keys: previous.into_iter().map(b64).collect(),
            generated_in: None,
        };
        Sealer::from_config(&cfg).unwrap().unwrap()
    }

    #[test]
    fn sealed_file_tokens_open_and_rekey_reseals_them() {
        let dir = std::env::temp_dir().join(format!("pcl-reseal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let old = sealer(1, None);
        let token = "sk-ant-sealed-in-file-0123456789";
        let sealed = old.seal(token.as_bytes(), FILE_CONTEXT).unwrap();
        std::fs::write(
            dir.join("anthropic.json"),
            serde_json::json!({"provider": "anthropic", "token": sealed}).to_string(),
        )
        .unwrap();
        std::fs::write(
            dir.join("plain.json"),
            r#"{"provider":"openai","token":"sk-plain-0123456789"}"#,
        )
        .unwrap();
        let s = scan(&dir, Some(&old), &resolve);
        assert_eq!(s.specs.len(), 2);
        assert!(s.specs.iter().any(|c| c.secret.expose() == token));
        let new_only = sealer(2, None);
        let s = scan(&dir, Some(&new_only), &resolve);
        assert_eq!(
            s.specs.len(),
            1,
            "a value sealed under another key is refused"
        );
        assert!(s.errors[0].1.contains("sealed with key"), "{:?}", s.errors);

        let rotating = sealer(2, Some(1));
        assert_eq!(
            reseal_dir(&dir, Some(&rotating)).unwrap(),
            1,
            "only the sealed file"
        );
        let raw = std::fs::read_to_string(dir.join("anthropic.json")).unwrap();
        assert!(!raw.contains(token) && raw.contains("sealed.v1."));
        let s = scan(&dir, Some(&new_only), &resolve);
        assert_eq!(s.specs.len(), 2, "the new key alone opens it now");
        assert_eq!(
            std::fs::read_to_string(dir.join("plain.json")).unwrap(),
            r#"{"provider":"openai","token":"sk-plain-0123456789"}"#,
            "an operator's plain file is left alone"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
