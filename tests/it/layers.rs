//! The import rules ARCHITECTURE.md states ("Imports run downward"), checked on the source: a
//! module that must not know another must not name it.

use std::path::{Path, PathBuf};

/// (files under this path, text they must not contain, why).
const RULES: &[(&str, &str, &str)] = &[
    (
        "src/oauth",
        "crate::admin",
        "the token server does not import the CLI",
    ),
    ("src/api", "crate::admin", "HTTP does not import the CLI"),
    ("src/auth", "crate::admin", "auth does not import the CLI"),
    (
        "src/admin",
        "crate::state",
        "the CLI opens the store itself",
    ),
    (
        "src/config",
        "crate::seal",
        "config checks key formats without seal",
    ),
    ("src/config/keys.rs", "load::", "keys does not import load"),
    (
        "src/api/management.rs",
        "management_auths",
        "the groups table merges them",
    ),
    ("src/auth", "crate::api", "auth knows no HTTP routes"),
    (
        "src/auth",
        "crate::state",
        "auth does not import the composition root",
    ),
    (
        "src/store",
        "crate::config",
        "the store knows no configuration",
    ),
    ("src/store", "axum", "the store knows no HTTP"),
    (
        "src/auth.rs",
        "bypass",
        "no path list skips authentication (api::groups)",
    ),
];

fn files(under: &Path, out: &mut Vec<PathBuf>) {
    if under.is_file() {
        out.push(under.to_owned());
        return;
    }
    let Ok(dir) = std::fs::read_dir(under) else {
        return;
    };
    for entry in dir.flatten() {
        files(&entry.path(), out);
    }
}

#[test]
fn imports_run_downward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    for (path, banned, why) in RULES {
        let mut found = Vec::new();
        // `src/x` covers `src/x.rs` and `src/x/…`.
        files(&root.join(path), &mut found);
        files(&root.join(format!("{path}.rs")), &mut found);
        assert!(!found.is_empty(), "{path}: nothing to check");
        for f in found
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        {
            let text = std::fs::read_to_string(f).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.contains(banned) && !line.trim_start().starts_with("//") {
                    broken.push(format!("{}:{}: `{banned}` ({why})", f.display(), n + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
