//! The command line reads well: each subcommand's `--help` fits on a screen and lists only the
//! options that subcommand uses; `tokens revoke` takes the whole token; refusals say what to do.

use crate::harness::*;

/// Runs the binary; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = portcullis().args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

const SERVING: [&str; 6] = [
    "--port",
    "--api-keys",
    "--multi-user-mode",
    "--capture-file",
    "--sso-enabled",
    "--auth-max-failed-attempts",
];

#[test]
fn every_help_fits_on_one_screen() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["demo"],
        &["check-config"],
        &["migrate"],
        &["tokens"],
        &["tokens", "revoke"],
        &["tokens", "issue"],
        &["keys"],
        &["keys", "create"],
        &["keys", "update"],
        &["users", "add"],
        &["clients", "add"],
        &["signing-keys", "rotate"],
        &["auths", "add"],
        &["auths", "login"],
    ];
    for command in commands {
        let (code, help, err) = run(&[*command, &["--help"]].concat());
        assert_eq!(code, 0, "{command:?}: {err}");
        assert!(
            help.lines().count() <= 50,
            "{command:?}: {} lines\n{help}",
            help.lines().count()
        );
        assert!(
            help.contains("--config"),
            "{command:?}: every command takes --config"
        );
    }
}

#[test]
fn store_commands_list_only_their_own_options() {
    for command in [
        &["tokens", "revoke"][..],
        &["keys", "create"],
        &["users", "add"],
        &["auths", "list"],
        &["migrate"],
    ] {
        let help = run(&[command, &["--help"]].concat()).1;
        assert!(
            help.contains("--data-dir") && help.contains("--database-url"),
            "{help}"
        );
        for flag in SERVING {
            assert!(
                !help.contains(flag),
                "{command:?} --help lists {flag}:\n{help}"
            );
        }
    }
    let serve = run(&["serve", "--help"]).1;
    for flag in [
        "--port",
        "--api-keys",
        "--multi-user-mode",
        "--management-key",
        "--data-dir",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}");
    }
    // The rarely used flags are named in one closing line instead of a page each.
    assert!(serve.contains("--auth-brute-force-ttl") && !serve.contains("<SECONDS>"));
    assert!(
        !serve.contains("not built yet"),
        "help texts must be current"
    );
}

#[test]
fn serving_options_on_a_store_command_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (code, _, err) = run(&["--port", "9", "tokens", "list", "--data-dir", data]);
    assert_eq!(code, 2);
    assert!(err.contains("portcullis tokens --help"), "{err}");
    let (code, _, err) = run(&["tokens", "list", "--api-keys", "k", "--data-dir", data]);
    assert_eq!(
        code, 2,
        "clap refuses an option the subcommand does not have"
    );
    assert!(err.contains("--api-keys"), "{err}");
}

#[test]
fn tokens_revoke_takes_the_whole_token() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (code, out, err) = run(&[
        "tokens",
        "issue",
        "--user",
        "ci@example.com",
        "--data-dir",
        data,
    ]);
    assert_eq!(code, 0, "{err}");
    let token = out
        .split_whitespace()
        .find(|w| w.starts_with("sk-pcl-") && w.len() > 40)
        .unwrap();

    // Change the last character to one it is not, so the typo never equals the token.
    let last = if token.ends_with('0') { '1' } else { '0' };
    let typo = format!("{}{last}", &token[..token.len() - 1]);
    let (code, _, err) = run(&["tokens", "revoke", &typo, "--data-dir", data]);
    assert_ne!(code, 0);
    assert!(
        err.contains("tokens list") && !err.contains(&token[20..]),
        "{err}"
    );

    let (code, out, err) = run(&["tokens", "revoke", token, "--data-dir", data]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("revoked sk-pcl-") && !out.contains(&token[20..]),
        "{out}"
    );
    let (_, out, _) = run(&["tokens", "revoke", token, "--data-dir", data]);
    assert!(out.contains("already revoked"), "{out}");
}
