//! Configuration is input too: out-of-range values from the YAML file, the environment (the
//! generic `PORTCULLIS_*__*` names, the seed's `BRUTE_FORCE_*`, the ecosystem's `OPENAI_*`) and
//! the command line stop `serve` and `check-config` with exit code 2 and a message naming the
//! key and where its value came from — never a panic.

use std::io::Write;

use crate::harness::*;

/// One bad value: extra arguments, environment, YAML text (if any), and what the error must
/// name.
struct Case {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    yaml: Option<&'static str>,
    says: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        args: &[],
        env: &[("PORTCULLIS_METRICS__ALLOW_REMOTE", "true")],
        yaml: None,
        says: &[
            "`metrics.allow_remote`",
            "needs a key remote scrapers present",
        ],
    },
    Case {
        args: &[],
        env: &[],
        yaml: Some("metrics:\n  key: short\n"),
        says: &["`metrics.key`", "at least 16 characters", "YAML file"],
    },
    Case {
        args: &[],
        env: &[],
        yaml: Some("auth:\n  refresh:\n    check_interval: 1e30\n"),
        says: &["`auth.refresh.check_interval`", "too long", "YAML file"],
    },
    Case {
        args: &[],
        env: &[],
        yaml: Some("server:\n  shutdown_grace: 99999999999999999999d\n"),
        says: &["`server.shutdown_grace`", "too long", "YAML file"],
    },
    Case {
        args: &[],
        env: &[],
        yaml: Some("server:\n  port: 8080\n  port: 9090\n"),
        says: &["duplicate", "port", "line 2", "YAML file"],
    },
    Case {
        args: &[],
        env: &[(
            "PORTCULLIS_AUTH__REFRESH__CHECK_INTERVAL",
            "99999999999999999999999",
        )],
        yaml: None,
        says: &[
            "`auth.refresh.check_interval`",
            "environment variable PORTCULLIS_AUTH__REFRESH__CHECK_INTERVAL",
        ],
    },
    Case {
        args: &[],
        env: &[("PORTCULLIS_SERVER__PORT", "99999")],
        yaml: None,
        says: &[
            "`server.port`",
            "environment variable PORTCULLIS_SERVER__PORT",
        ],
    },
    Case {
        args: &[],
        env: &[("BRUTE_FORCE_MAX_BLOCK_SECONDS", "18446744073709551615")],
        yaml: None,
        says: &[
            "`auth.brute_force_protection.max_block_seconds`",
            "environment variable BRUTE_FORCE_MAX_BLOCK_SECONDS",
        ],
    },
    Case {
        args: &[],
        env: &[("BRUTE_FORCE_MAX_FAILED_ATTEMPTS", "99999999999")],
        yaml: None,
        says: &[
            "`auth.brute_force_protection.max_failed_attempts`",
            "environment variable BRUTE_FORCE_MAX_FAILED_ATTEMPTS",
        ],
    },
    Case {
        args: &[],
        env: &[("BRUTE_FORCE_BLOCK_MULTIPLIER", "0.5")],
        yaml: None,
        says: &[
            "`auth.brute_force_protection.block_multiplier`",
            "environment variable BRUTE_FORCE_BLOCK_MULTIPLIER",
        ],
    },
    Case {
        args: &[],
        env: &[("OPENAI_BASE_URL", "not-a-url")],
        yaml: None,
        says: &[
            "`backends.openai.base_url`",
            "environment variable OPENAI_BASE_URL",
        ],
    },
    Case {
        args: &["--auth-brute-force-ttl", "99999999999"],
        env: &[],
        yaml: None,
        says: &[
            "`auth.brute_force_protection.ttl_seconds`",
            "command line --auth-brute-force-ttl",
        ],
    },
    Case {
        args: &["--auth-brute-force-multiplier", "NaN"],
        env: &[],
        yaml: None,
        says: &[
            "`auth.brute_force_protection.block_multiplier`",
            "command line --auth-brute-force-multiplier",
        ],
    },
    Case {
        args: &["--auth-max-failed-attempts", "0"],
        env: &[],
        yaml: None,
        says: &[
            "`auth.brute_force_protection.max_failed_attempts`",
            "command line --auth-max-failed-attempts",
        ],
    },
    Case {
        args: &["--auth-max-failed-attempts", "4294967296"],
        env: &[],
        yaml: None,
        says: &["--auth-max-failed-attempts", "4294967296"],
    },
];

/// Runs `portcullis <command> <args…>` for `case` with a client key and a backend set; (exit
/// code, stderr).
fn run(command: &[&str], case: &Case) -> (Option<i32>, String) {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    let mut cmd = portcullis();
    cmd.args(command).args(case.args);
    if let Some(yaml) = case.yaml {
        file.write_all(yaml.as_bytes()).unwrap();
        cmd.arg("--config").arg(file.path());
    }
    cmd.env("PORTCULLIS_API_KEYS", "client-key-for-config-input-tests")
        .env("OPENAI_API_KEY", "sk-config-input")
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
    for (k, v) in case.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_values_stop_serve_and_check_config_with_the_key_and_its_source() {
    for command in [&["check-config"][..], &["serve", "--port", "0"][..]] {
        for case in CASES {
            let (code, err) = run(command, case);
            let what = format!("{command:?} {:?} {:?} {:?}", case.args, case.env, case.yaml);
            assert_eq!(code, Some(2), "{what}: {err}");
            assert!(!err.contains("panicked"), "{what}: {err}");
            for s in case.says {
                assert!(err.contains(s), "{what}: `{s}` missing from: {err}");
            }
        }
    }
}
