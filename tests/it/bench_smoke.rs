//! The benchmark driver's smoke mode (`portcullis-bench smoke`): it starts the mock and the
//! gateway, runs a fraction of a second of non-streaming and streaming load against each, and
//! prints one JSON line per run. Asserts only that it ran and the numbers are sane — never how
//! fast anything was.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[test]
fn bench_smoke_runs_and_reports_sane_numbers() {
    let bench = env!("CARGO_BIN_EXE_portcullis-bench");
    let bin_dir = Path::new(bench).parent().unwrap();
    let out = Command::new(bench)
        .args(["smoke", "--bin-dir"])
        .arg(bin_dir)
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let runs: Vec<&Value> = lines
        .iter()
        .filter(|v| v["kind"] != "rss" && v["kind"] != "attack-flood")
        .collect();
    // chat, stream, translated, stream-translated, translated-agent (direct and portcullis
    // each), attack-valid ×2.
    assert_eq!(runs.len(), 12, "{stdout}");
    for run in runs {
        assert!(run["ok"].as_u64().unwrap() > 0, "{run}");
        assert_eq!(run["errors"].as_u64(), Some(0), "{run}");
        let p50 = run["p50_ms"].as_f64().unwrap();
        let p99 = run["p99_ms"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= p99, "{run}");
        if run["kind"] == "stream" || run["kind"] == "stream-translated" {
            assert_eq!(run["chunks"], serde_json::json!([8, 8]), "{run}");
        }
    }
    // The attack driver ran: the flood of unknown agent tokens was refused and cost no Argon2.
    let flood = lines.iter().find(|v| v["kind"] == "attack-flood").unwrap();
    assert_eq!(flood["ok"].as_u64(), Some(0), "{flood}");
    assert_eq!(flood["argon2_during_flood"].as_u64(), Some(0), "{flood}");
    assert!(
        flood["statuses"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k == "401" || k == "429"),
        "{flood}"
    );
    let rss = lines.iter().find(|v| v["kind"] == "rss").unwrap();
    assert!(rss["kib"].as_u64().unwrap() > 0, "{rss}");
}
