//! The deployment samples in `deploy/` — the systemd unit, its environment file and the
//! container recipe — checked against the binary so they cannot rot: their command lines pass
//! `check-config` (the same options as `serve`) with the effective settings they mean, every
//! variable they set changes the effective configuration, their paths and ports agree, the
//! environment file's placeholder sealing key is refused, and the container's health check
//! gets 200 from a running gateway (and fails once it stopped).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::harness::*;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `NAME=value` lines of an environment file, in order (comments and blank lines skipped).
fn env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=value: {l}"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// `deploy/portcullis.env` with a real sealing key in place of its placeholder.
fn usable_env() -> Vec<(String, String)> {
    let mut env = env_file(&read("deploy/portcullis.env"));
    for (k, v) in &mut env {
        if k == "PORTCULLIS_ENCRYPTION_KEY" {
            *v = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned();
        }
    }
    env
}

/// `portcullis check-config ARGS` with exactly `env`: (exit code, stdout, stderr).
fn check(args: &[String], env: &[(String, String)]) -> (i32, String, String) {
    let out = portcullis()
        .arg("check-config")
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks `args` with `env`, then that leaving out any one variable changes what
/// `check-config` says (a variable the binary ignores changes nothing); the effective settings.
fn accepted_and_every_variable_counts(
    args: &[String],
    env: &[(String, String)],
    what: &str,
) -> serde_norway::Value {
    let (code, out, err) = check(args, env);
    assert_eq!(code, 0, "{what}: check-config {args:?} refused: {err}");
    for (i, (name, _)) in env.iter().enumerate() {
        let mut fewer = env.to_vec();
        fewer.remove(i);
        let (c, o, _) = check(args, &fewer);
        assert!(
            c != 0 || o != out,
            "{what}: the binary ignores {name} (check-config says the same without it)"
        );
    }
    serde_norway::from_str(&out).unwrap()
}

/// The value of a unit's `Key=` line (the first one).
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    unit.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

fn s(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap().trim().to_owned(),
    }
}

#[test]
fn the_environment_file_names_only_variables_the_binary_reads_and_its_placeholder_key_is_refused() {
    let env = env_file(&read("deploy/portcullis.env"));
    let (code, _, err) = check(&[], &env);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`auth.encryption.key`"), "{err}");
    let settings = accepted_and_every_variable_counts(&[], &usable_env(), "deploy/portcullis.env");
    assert!(s(&settings["storage"]["database_url"]).starts_with("***"));
    assert!(s(&settings["storage"]["redis_url"]).starts_with("***"));
}

#[test]
fn the_systemd_unit_starts_serve_with_flags_the_binary_accepts() {
    let unit = read("deploy/portcullis.service");
    let exec: Vec<String> = unit_value(&unit, "ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(exec[..2], ["/usr/local/bin/portcullis", "serve"]);
    // The unit reads the installed YAML file; any valid file stands in for it here.
    let yaml = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(yaml.path(), "server: {}\n").unwrap();
    let config = exec.iter().position(|a| a == "--config").unwrap() + 1;
    assert_eq!(exec[config], "/etc/portcullis/portcullis.yaml");
    let mut args = exec[2..].to_vec();
    args[config - 2] = yaml.path().display().to_string();
    let settings = accepted_and_every_variable_counts(&args, &usable_env(), "the systemd unit");
    let state = format!("/var/lib/{}", unit_value(&unit, "StateDirectory"));
    assert_eq!(s(&settings["storage"]["data_dir"]), state);
    assert_eq!(unit_value(&unit, "WorkingDirectory"), state);
    assert_eq!(s(&settings["access_mode"]["mode"]), "multi_user");
    assert_eq!(s(&settings["server"]["host"]), "0.0.0.0");
    let env_path = unit_value(&unit, "EnvironmentFile");
    assert!(
        unit.contains(&format!("deploy/portcullis.env {env_path}")),
        "the unit's install steps do not put deploy/portcullis.env at {env_path}"
    );
}

#[test]
fn systemd_analyze_verifies_the_unit_when_present() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: the unit's syntax is not verified here");
        return;
    };
    assert!(out.status.success());
    // verify wants the executable to exist: the binary under test stands in for it.
    let unit = read("deploy/portcullis.service").replace(
        "/usr/local/bin/portcullis",
        env!("CARGO_BIN_EXE_portcullis"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}

/// The recipe's instructions: continuation lines joined, comments dropped, `ARG`s of the
/// stage kept as written.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let (op, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((op.to_owned(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// The container recipe, as the tests below read it.
struct Recipe {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<(String, String)>,
    health: Vec<String>,
    by_op: BTreeMap<String, Vec<String>>,
}

fn recipe() -> Recipe {
    let mut by_op: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (op, rest) in instructions(&read("deploy/Containerfile")) {
        by_op.entry(op).or_default().push(rest);
    }
    let json = |op: &str| -> Vec<String> {
        let all = &by_op[op];
        assert_eq!(all.len(), 1, "one {op}");
        serde_json::from_str(&all[0]).unwrap()
    };
    let health = &by_op["HEALTHCHECK"][0];
    let health: Vec<String> = serde_json::from_str(health.split_once("CMD ").unwrap().1).unwrap();
    let env = by_op["ENV"]
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Recipe {
        entrypoint: json("ENTRYPOINT"),
        cmd: json("CMD"),
        env,
        health,
        by_op,
    }
}

#[test]
fn the_container_recipe_starts_serve_with_flags_variables_and_a_port_that_agree() {
    let r = recipe();
    assert_eq!(r.entrypoint, ["/usr/local/bin/portcullis"]);
    let copied = r.by_op["COPY"]
        .iter()
        .any(|c| c.starts_with("--from=build") && c.ends_with(" /usr/local/bin/portcullis"));
    assert!(
        copied,
        "the runtime stage does not install the built binary"
    );
    assert_eq!(r.cmd[0], "serve");
    let mut env = usable_env();
    env.extend(r.env.iter().cloned());
    let settings = accepted_and_every_variable_counts(&r.cmd[1..], &env, "the container recipe");
    let port = s(&settings["server"]["port"]);
    assert_eq!(r.by_op["EXPOSE"], [port.as_str()]);
    assert!(
        r.health[2].contains(&format!("/dev/tcp/127.0.0.1/{port}")),
        "the health check does not call port {port}: {:?}",
        r.health
    );
    assert_eq!(s(&settings["server"]["host"]), "0.0.0.0");
    let data_dir = s(&settings["storage"]["data_dir"]);
    let workdir = &r.by_op["WORKDIR"];
    assert!(
        data_dir.starts_with(&workdir[workdir.len() - 1]),
        "{data_dir}"
    );
    assert_eq!(r.by_op["VOLUME"], [workdir[workdir.len() - 1].clone()]);
    assert!(
        r.by_op["USER"]
            .iter()
            .all(|u| !u.starts_with("0") && u != "root"),
        "the runtime stage runs as root"
    );
}

#[test]
fn the_container_health_check_gets_200_from_a_running_gateway_and_fails_once_it_stopped() {
    let r = recipe();
    let port = &r.cmd[r.cmd.iter().position(|a| a == "--port").unwrap() + 1];
    assert_eq!(r.health[..2], ["bash", "-c"]);
    let mut cmd = serve_json();
    // A backend nothing calls: the health check needs none, `serve` does.
    cmd.env("PORTCULLIS_API_KEYS", "deploy-test-client-key-0123456789")
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
    let served = spawn_served(cmd);
    let addr = served.listening["addr"].as_str().unwrap().to_owned();
    let real_port = addr.rsplit_once(':').unwrap().1;
    let script = r.health[2].replace(
        &format!("/dev/tcp/127.0.0.1/{port}"),
        &format!("/dev/tcp/127.0.0.1/{real_port}"),
    );
    let run = || Command::new("bash").args(["-c", &script]).status().unwrap();
    assert!(run().success(), "the health check failed against {addr}");
    let (stopped, log) = served.stop();
    assert!(stopped, "{log}");
    assert!(
        !run().success(),
        "the health check passed with nothing at {addr}"
    );
}
