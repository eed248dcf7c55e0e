//! The import rules ARCHITECTURE.md states ("Imports run downward"), checked on the source: a
//! module that must not know another must not name it, and the top-level modules of `src/`
//! import each other without a cycle — in particular none through `config`, which parses the
//! domain values of the modules below it and hands them their settings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// (files under this path, text they must not contain, why).
const RULES: &[(&str, &str, &str)] = &[
    (
        "src/identity",
        "crate::admin",
        "identity does not import the CLI",
    ),
    ("src/api", "crate::admin", "HTTP does not import the CLI"),
    (
        "src/admin",
        "crate::state",
        "the CLI opens the store itself",
    ),
    (
        "src/seal",
        "crate::config",
        "seal owns its section (EncryptionConfig); config re-exports it",
    ),
    (
        "src/pool",
        "crate::config",
        "the pool is built from PoolSettings and owns the values config parses for it",
    ),
    (
        "src/protocol.rs",
        "crate::config",
        "protocol owns BackendKind; config parses it",
    ),
    (
        "src/policy.rs",
        "crate::config",
        "policy owns AccessMode; config parses it",
    ),
    (
        "src/identity",
        "crate::config",
        "identity is built from AuthSettings and TokenSettings and owns the sections config parses for it",
    ),
    ("src/config/keys.rs", "load::", "keys does not import load"),
    (
        "src/api/management.rs",
        "management_auths",
        "the groups table merges them",
    ),
    (
        "src/identity",
        "crate::api",
        "identity knows no HTTP routes",
    ),
    (
        "src/identity",
        "crate::state",
        "identity does not import the composition root",
    ),
    (
        "src/store",
        "crate::config",
        "the store knows no configuration",
    ),
    ("src/store", "axum", "the store knows no HTTP"),
    (
        "src/identity.rs",
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

/// The top-level module a file of `src/` belongs to (`src/pool/select.rs` → `pool`).
fn unit_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Which top-level modules each one names (`crate::x`) outside comments and its test module,
/// with one place it does so.
fn import_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    files(&src, &mut found);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in found
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let rel = f.strip_prefix(&src).unwrap();
        // The binaries are not modules of the library.
        if rel.starts_with("bin") || rel == Path::new("main.rs") || rel == Path::new("lib.rs") {
            continue;
        }
        let unit = unit_of(rel);
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let edges = graph.entry(unit.clone()).or_default();
        for (n, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            if code == "#[cfg(test)]"
                && lines[n + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| l.trim_start().starts_with("mod "))
            {
                break;
            }
            if code.starts_with("//") {
                continue;
            }
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() && name != unit {
                    edges
                        .entry(name)
                        .or_insert_with(|| format!("src/{}:{}", rel.display(), n + 1));
                }
            }
        }
    }
    graph
}

/// Every module `from` reaches through imports.
fn reachable(graph: &BTreeMap<String, BTreeMap<String, String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(u) = todo.pop() {
        for v in graph.get(&u).into_iter().flat_map(|e| e.keys()) {
            if seen.insert(v.clone()) {
                todo.push(v.clone());
            }
        }
    }
    seen
}

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let graph = import_graph();
    assert!(
        graph.contains_key("config") && graph["config"].contains_key("pool"),
        "the graph is read: config names the pool's values"
    );
    let mut broken = Vec::new();
    for (unit, edges) in &graph {
        for (to, at) in edges {
            if reachable(&graph, to).contains(unit) {
                broken.push(format!(
                    "{unit} → {to} ({at}), and {to} leads back to {unit}"
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The files that may hold the whole `Store` union: the composition root, which hands each
/// subsystem its view, and the `auths` commands, whose `rekey` re-seals every aggregate.
const WHOLE_STORE_HOLDERS: &[&str] = &["src/state.rs", "src/admin/auths.rs", "src/store.rs"];

#[test]
fn consumers_hold_a_narrow_store_view_not_the_union() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    files(&root.join("src"), &mut found);
    let mut broken = Vec::new();
    for f in found
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if WHOLE_STORE_HOLDERS.contains(&rel.as_str()) || rel.starts_with("src/store/") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let whole = line.match_indices("dyn Store").any(|(i, m)| {
                !line[i + m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if whole && !line.trim_start().starts_with("//") {
                broken.push(format!("{rel}:{}: takes the whole `Store`", n + 1));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
