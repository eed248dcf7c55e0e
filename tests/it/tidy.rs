//! The layout rules of ARCHITECTURE.md, checked on the source tree: every Rust file opens with a
//! `//!` saying what it is for, no file grows past 800 lines, SQL stays in `store`, the
//! providers' wire shapes stay at the edges, and time is read only through the clock (latency
//! measurement with `Instant` excepted, in the files listed here).

use std::path::{Path, PathBuf};

/// Longest file, in lines.
const MAX_LINES: usize = 800;

/// Where the providers' JSON and SSE shapes (`crate::wire`) may be used.
const WIRE_USERS: &[&str] = &["src/api", "src/wire", "src/upstream", "src/mock"];

/// Files that may read `Instant::now` (they measure latency or drive I/O timers; no decision
/// about expiry, lockout, cooldown or quotas depends on it).
const INSTANT_USERS: &[&str] = &[
    "src/clock.rs",
    "src/api/access_log.rs",
    "src/upstream/h1.rs",
    "src/upstream/h1_tests.rs",
    "src/mock/stream_tests.rs",
    "src/state.rs",
    "src/bin/portcullis-bench",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `.rs` file under `src/` and `tests/`, as (path relative to the crate, text).
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Lines that are code (not comments), for the usage rules.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

/// What `text` (the file at `path`) breaks of the rules.
fn violations(path: &str, text: &str) -> Vec<String> {
    let mut broken = Vec::new();
    if !text.starts_with("//!") {
        broken.push(format!(
            "{path}: does not open with a `//!` saying what it is for"
        ));
    }
    let lines = text.lines().count();
    if lines > MAX_LINES {
        broken.push(format!("{path}: {lines} lines (split past {MAX_LINES})"));
    }
    if !path.starts_with("src/") {
        return broken;
    }
    for (n, line) in code_lines(text) {
        if line.contains("sqlx") && !path.starts_with("src/store") {
            broken.push(format!("{path}:{n}: SQL (sqlx) outside `store`"));
        }
        if line.contains("crate::wire") && !WIRE_USERS.iter().any(|w| path.starts_with(w)) {
            broken.push(format!(
                "{path}:{n}: provider wire shapes outside the edges"
            ));
        }
        if line.contains("SystemTime::now") && path != "src/clock.rs" {
            broken.push(format!(
                "{path}:{n}: wall-clock time read outside the clock"
            ));
        }
        if line.contains("Instant::now") && !INSTANT_USERS.iter().any(|u| path.starts_with(u)) {
            broken.push(format!(
                "{path}:{n}: `Instant::now` outside the files that measure latency (decisions read the Clock)"
            ));
        }
    }
    broken
}

#[test]
fn the_source_tree_keeps_its_layout_rules() {
    let broken: Vec<String> = sources()
        .iter()
        .flat_map(|(path, text)| violations(path, text))
        .collect();
    assert!(
        broken.is_empty(),
        "layout rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn each_rule_flags_a_file_written_to_break_it() {
    let long = format!("//! x\n{}", "fn f() {}\n".repeat(MAX_LINES));
    let cases = [
        ("src/a.rs", "fn main() {}\n".to_owned(), "`//!`"),
        ("src/a.rs", long, "lines"),
        ("src/pool.rs", "//! x\nuse sqlx::Row;\n".to_owned(), "sqlx"),
        (
            "src/pool.rs",
            "//! x\nuse crate::wire::usage::Usage;\n".to_owned(),
            "wire",
        ),
        (
            "src/pool.rs",
            "//! x\nlet t = SystemTime::now();\n".to_owned(),
            "wall-clock",
        ),
        (
            "src/identity/jwks.rs",
            "//! x\nlet t = Instant::now();\n".to_owned(),
            "Instant",
        ),
    ];
    for (path, text, expected) in cases {
        let found = violations(path, &text);
        assert!(
            found.iter().any(|v| v.contains(expected)),
            "{path} {expected}: {found:?}"
        );
    }
    for (path, text) in [
        ("src/store/sql.rs", "//! x\nuse sqlx::Row;\n"),
        (
            "src/api/proxy.rs",
            "//! x\nuse crate::wire::usage::Usage;\n",
        ),
        ("src/clock.rs", "//! x\nlet t = SystemTime::now();\n"),
        ("src/pool.rs", "//! x\n// SystemTime::now in a comment\n"),
    ] {
        assert_eq!(violations(path, text), Vec::<String>::new(), "{path}");
    }
}
