//! Operator notifications: the auto-detection rule, a missing desktop session (a warning, never a
//! failure), and real delivery over D-Bus — a private `dbus-daemon` and a stand-in notification
//! service that records the `org.freedesktop.Notifications.Notify` calls the gateway makes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::Duration;

use futures_util::StreamExt;

use crate::harness::*;

const KEYS: (&str, &str) = ("PORTCULLIS_API_KEYS", "notify-test-key-0123456789");

/// Starts `serve` with `args`, sends five distinct wrong keys, and returns stderr up to the
/// request after.
async fn lockout_with(args: &[&str], env: &[(&str, &str)]) -> String {
    let mock = start_mock().await;
    let mut cmd = portcullis();
    cmd.args(["serve", "--port", "0", "--log-format", "json"])
        .args(args)
        .env(KEYS.0, KEYS.1)
        .env("OPENAI_BASE_URL", format!("http://{}/v1", mock.addr))
        .envs(env.iter().copied());
    let mut served = spawn_served(cmd);
    let addr = served.url.trim_start_matches("http://").to_owned();
    for i in 0..5 {
        let resp = client()
            .post(format!("http://{addr}/v1/chat/completions"))
            .header("authorization", format!("Bearer wrong-{i}"))
            .json(&chat("m", false))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let resp = client()
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "still serving");
    // Read until the access line of the health request, and (the event is logged by a background
    // task) until the operator event if one is coming.
    let mut health_seen = false;
    while let Some(line) = served.next_line(Duration::from_secs(if health_seen { 3 } else { 20 })) {
        health_seen |= line.contains("\"path\":\"/health\"");
        if health_seen
            && (served.seen.contains("operator event") || args.contains(&"--disable-notifications"))
        {
            break;
        }
    }
    assert!(health_seen, "{}", served.seen);
    served.seen.clone()
}

#[tokio::test]
async fn notifications_without_a_desktop_session_are_a_warning_not_a_failure() {
    // The test process has no D-Bus session bus (the environment is cleared).
    let log = lockout_with(&[], &[]).await;
    assert!(log.contains("no D-Bus session bus is reachable"), "{log}");
    assert!(
        log.contains("\"message\":\"operator event\"") && log.contains("client locked out"),
        "{log}"
    );

    let log = lockout_with(&["--disable-notifications"], &[]).await;
    assert!(!log.contains("D-Bus"), "{log}");
    assert!(!log.contains("operator event"), "{log}");
}

/// A private session bus; killed on drop.
fn start_bus(dir: &std::path::Path) -> Option<(ChildGuard, String)> {
    if std::process::Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "dbus-daemon is missing (CI installs it: .ci/run)"
        );
        eprintln!("skipping: dbus-daemon is not installed");
        return None;
    }
    let mut child = ChildGuard(
        std::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", dir.join("bus").display()))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Some((child, line.trim().to_owned()))
}

type NotifyArgs = (
    String,
    u32,
    String,
    String,
    String,
    Vec<String>,
    HashMap<String, zbus::OwnedVariant>,
    i32,
);

#[tokio::test]
async fn notifications_reach_the_desktop_notification_service_over_dbus() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_bus, address)) = start_bus(dir.path()) else {
        return;
    };
    // A stand-in for the desktop's notification daemon.
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .unwrap();
    conn.request_name("org.freedesktop.Notifications")
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<NotifyArgs>();
    let server = conn.clone();
    tokio::spawn(async move {
        let mut stream = zbus::MessageStream::from(&server);
        while let Some(Ok(msg)) = stream.next().await {
            let header = msg.header();
            if header.member().map(|m| m.as_str()) == Some("Notify") {
                if let Ok(args) = msg.body().deserialize::<NotifyArgs>() {
                    let _ = tx.send(args);
                }
                let _ = server.reply(&header, &(7u32,)).await;
            }
        }
    });

    let log = lockout_with(&[], &[("DBUS_SESSION_BUS_ADDRESS", address.as_str())]).await;
    assert!(!log.contains("no D-Bus session bus"), "{log}");
    let (app, _, _, summary, body, _, _, timeout) =
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(app, "portcullis");
    assert_eq!(summary, "portcullis: client locked out");
    assert!(
        body.contains("127.0.0.1") && body.contains("30 s"),
        "{body}"
    );
    assert!(timeout > 0);
}
