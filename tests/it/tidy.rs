//! The layout rules of ARCHITECTURE.md, checked on the source tree: every Rust file opens with a
//! `//!` saying what it is for, no file grows past 800 lines, SQL stays in `store`, the
//! providers' wire shapes stay at the edges, time is read only through the clock (latency
//! measurement with `Instant` excepted, in the files listed here), and little code is written
//! twice: at most 1 % of `src/`'s code lines and 3 % of `tests/`'s lie in a run of six that
//! occurs again somewhere in the repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Longest file, in lines.
const MAX_LINES: usize = 800;

/// Where the providers' JSON and SSE shapes (`crate::wire`) may be used.
const WIRE_USERS: &[&str] = &[
    "src/api",
    "src/wire",
    "src/translate",
    "src/upstream",
    "src/mock",
];

/// Files that may read `Instant::now` (they measure latency or drive I/O timers; no decision
/// about expiry, lockout, cooldown or quotas depends on it).
const INSTANT_USERS: &[&str] = &[
    "src/clock.rs",
    "src/api/access_log.rs",
    "src/api/health.rs",
    "src/upstream/h1.rs",
    "src/upstream/h2.rs",
    "src/server/watch.rs",
    "src/upstream/h1_tests.rs",
    "src/mock/stream_tests.rs",
    // The mock's paced stream pieces (a scripted upstream's schedule, not the gateway's).
    "src/mock/stream.rs",
    "src/state.rs",
    "src/bin/portcullis-bench",
];

/// Longest share of code lines in repeated runs, in per cent: `src/`, then `tests/`.
const MAX_DUPLICATED: [(&str, f64); 2] = [("src/", 1.0), ("tests/", 3.0)];

/// How many code lines make a run that counts as written twice.
const RUN: usize = 6;

/// The repository's `.rs` files below `dir`: what git tracks, so not `target/`, hidden
/// directories, npm's `node_modules` (git ignores them) or symbolic links.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if name != "target" && name != "node_modules" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if kind.is_file() && name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Every `.rs` file of the repository, as (path relative to the crate, text), sorted.
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            (rel, text)
        })
        .collect()
}

/// A line as the duplication count sees it: white space folded, or `None` for what does not
/// count (blank lines, comments, imports, lines of brackets and separators only).
fn normalised(line: &str) -> Option<String> {
    let s = line.trim();
    let thin = s.chars().all(|c| "[]{}();,".contains(c));
    let skipped = ["//", "use ", "pub use "].iter().any(|p| s.starts_with(p));
    (!thin && !skipped).then(|| {
        let mut folded = String::with_capacity(s.len());
        for word in s.split_whitespace() {
            if !folded.is_empty() {
                folded.push(' ');
            }
            folded.push_str(word);
        }
        folded
    })
}

/// One file's code lines: (line number from 1, normalised text).
type CodeLines = Vec<(usize, String)>;

/// Where code is written twice: per file, which of its code lines lie in a run of [`RUN`] code
/// lines that occurs more than once (in it or in another file), and each repeated run's places.
struct Duplicates {
    /// Per file (same order as given): its code lines and whether each is in a repeated run.
    files: Vec<(String, CodeLines, Vec<bool>)>,
    /// Every run that occurs more than once: its places as (file index, index of its first code line).
    repeated: Vec<Vec<(usize, usize)>>,
}

fn duplicates(sources: &[(String, String)]) -> Duplicates {
    let code: Vec<CodeLines> = sources
        .iter()
        .map(|(_, text)| {
            let lines = text.split('\n').enumerate();
            lines
                .filter_map(|(i, l)| Some((i + 1, normalised(l)?)))
                .collect()
        })
        .collect();
    // Each distinct line gets a number; a run is keyed by its lines' numbers.
    let mut numbers: HashMap<&str, u32> = HashMap::new();
    let mut places: HashMap<[u32; RUN], Vec<(usize, usize)>> = HashMap::new();
    for (f, lines) in code.iter().enumerate() {
        let numbered: Vec<u32> = lines
            .iter()
            .map(|(_, l)| {
                let next = numbers.len() as u32;
                *numbers.entry(l.as_str()).or_insert(next)
            })
            .collect();
        for (k, run) in numbered.windows(RUN).enumerate() {
            let key: [u32; RUN] = run.try_into().unwrap();
            places.entry(key).or_default().push((f, k));
        }
    }
    let mut marks: Vec<Vec<bool>> = code.iter().map(|l| vec![false; l.len()]).collect();
    let repeated: Vec<Vec<(usize, usize)>> = places.into_values().filter(|p| p.len() > 1).collect();
    for &(f, k) in repeated.iter().flatten() {
        marks[f][k..k + RUN].fill(true);
    }
    let files = sources
        .iter()
        .zip(code)
        .zip(marks)
        .map(|(((path, _), lines), marks)| (path.clone(), lines, marks))
        .collect();
    Duplicates { files, repeated }
}

impl Duplicates {
    /// (repeated code lines, code lines) of the files under `dir`.
    fn share(&self, dir: &str) -> (usize, usize) {
        let under = self.files.iter().filter(|(p, ..)| p.starts_with(dir));
        under.fold((0, 0), |(d, t), (_, lines, marks)| {
            (d + marks.iter().filter(|m| **m).count(), t + lines.len())
        })
    }

    /// What to fold under `dir`: the files with the most repeated lines, then each repeated run
    /// (a place in `dir`, where else it stands, its first line).
    fn report(&self, dir: &str) -> String {
        let mut worst: Vec<(usize, &str)> = self
            .files
            .iter()
            .filter(|(p, ..)| p.starts_with(dir))
            .map(|(p, _, m)| (m.iter().filter(|m| **m).count(), p.as_str()))
            .filter(|(n, _)| *n > 0)
            .collect();
        worst.sort_by(|a, b| b.cmp(a));
        let mut out: Vec<String> = worst
            .iter()
            .take(10)
            .map(|(n, p)| format!("  {n:4} repeated lines in {p}"))
            .collect();
        // Overlapping repeated runs are one stretch: shown where it starts, with its length.
        let starts: std::collections::HashSet<(usize, usize)> =
            self.repeated.iter().flatten().copied().collect();
        let place = |&(f, k): &(usize, usize)| {
            let (path, lines, _) = &self.files[f];
            (path.as_str(), lines[k].0, lines[k].1.as_str())
        };
        let mut runs: Vec<String> = self
            .repeated
            .iter()
            .filter(|p| p.iter().any(|&(f, _)| self.files[f].0.starts_with(dir)))
            .filter(|p| {
                !p.iter()
                    .all(|&(f, k)| k > 0 && starts.contains(&(f, k - 1)))
            })
            .map(|p| {
                let mut at: Vec<(&str, usize, &str)> = p.iter().map(place).collect();
                at.sort();
                let (f, k) = p.iter().copied().min().unwrap_or_default();
                let more = (1..).take_while(|j| starts.contains(&(f, k + j))).count();
                let first = at[0].2;
                let at: Vec<String> = at.iter().map(|(p, l, _)| format!("{p}:{l}")).collect();
                format!(
                    "  {} ({} code lines): `{first}`",
                    at.join(" = "),
                    RUN + more
                )
            })
            .collect();
        runs.sort();
        out.push("repeated stretches (where each stands, its first line):".to_owned());
        out.extend(runs.into_iter().take(40));
        out.join("\n")
    }
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
        .filter(|(path, _)| path.starts_with("src/") || path.starts_with("tests/"))
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

#[test]
fn little_code_is_written_twice() {
    let found = duplicates(&sources());
    let mut over = Vec::new();
    for (dir, max) in MAX_DUPLICATED {
        let (repeated, total) = found.share(dir);
        let share = 100.0 * repeated as f64 / total.max(1) as f64;
        eprintln!("{dir}: {repeated}/{total} = {share:.2}% of code lines in repeated runs");
        if share > max {
            over.push(format!(
                "{dir}: {share:.2}% of its code lines ({repeated}/{total}) are in runs of {RUN} \
                 written again (at most {max}%); fold them into a shared function or a table:\n{}",
                found.report(dir)
            ));
        }
    }
    assert!(over.is_empty(), "{}", over.join("\n"));
}

#[test]
fn the_duplication_count_sees_runs_through_blank_lines_comments_and_brackets() {
    let body = "let a = 1;\nlet b = 2;\n\n// a comment\nlet c = 3;\n{\nlet d = 4;\n}\nlet e = 5;\nlet  f = 6;\n";
    let files = [
        (
            "src/one.rs".to_owned(),
            format!("//! one\n{body}fn one() {{}}\n"),
        ),
        (
            "src/two.rs".to_owned(),
            format!("//! two\nuse x;\n{}", body.replace("  ", " ")),
        ),
        (
            "tests/three.rs".to_owned(),
            "//! three\nlet a = 1;\nlet b = 2;\n".to_owned(),
        ),
    ];
    let found = duplicates(&files);
    // Six code lines in each of `src/`'s files repeat (the comment, blank, `{`, `}` and `use`
    // lines do not count, white space is folded); `one`'s last line and `three` do not.
    assert_eq!(found.share("src/"), (12, 13));
    assert_eq!(found.share("tests/"), (0, 2));
    let report = found.report("src/");
    assert!(
        report.contains("6 repeated lines in src/two.rs"),
        "{report}"
    );
    assert!(
        report.contains("src/one.rs:2 = src/two.rs:3 (6 code lines): `let a = 1;`"),
        "{report}"
    );
}
