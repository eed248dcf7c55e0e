//! The reference proxies: nginx and HAProxy from the system's packages (`bench/run` installs
//! Debian's `nginx-light` and `haproxy` with apt-get when missing), each doing only a keep-alive
//! proxy pass to the mock plus the gateway's static bearer check. Their configurations are the
//! templates `bench/nginx.conf` and `bench/haproxy.cfg`, filled here; each instance runs in the
//! foreground in its own process group (so nginx's workers are metered with its master), with
//! its pid and logs under the suite's scratch directory, on a free loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{self, CLIENT_KEY, Proc};
use crate::suite::Who;

/// nginx worker processes and HAProxy threads (the gateway's tokio runtime has one worker per
/// core: 2 on the reference machine).
pub(crate) const WORKERS: usize = 2;

const NGINX_TEMPLATE: &str = include_str!("../../../bench/nginx.conf");
const HAPROXY_TEMPLATE: &str = include_str!("../../../bench/haproxy.cfg");

/// The name the TLS mock's certificate is checked against (SNI and verification).
pub(crate) const TLS_NAME: &str = "localhost";

/// Which reference proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    Nginx,
    Haproxy,
}

impl Peer {
    pub(crate) fn program(self) -> &'static str {
        match self {
            Peer::Nginx => "nginx",
            Peer::Haproxy => "haproxy",
        }
    }
}

/// The mock as seen by a proxy: plain HTTP, or HTTPS checked against `ca_file` with `alpn`.
#[derive(Clone, Debug)]
pub(crate) enum Upstream {
    Plain(SocketAddr),
    Tls {
        addr: SocketAddr,
        ca_file: PathBuf,
        /// The ALPN protocol HAProxy offers (`http/1.1` or `h2`; nginx speaks HTTP/1.1 only).
        alpn: &'static str,
    },
}

/// Fills a configuration template: every `{{NAME}}` from `vars`; a line whose text starts with
/// `#if:FLAG ` (after indentation) is kept without the marker when `FLAG` is in `flags`, and
/// dropped otherwise. A placeholder left unfilled is an error (a template and the code that
/// fills it have drifted apart).
pub(crate) fn fill(
    template: &str,
    vars: &[(&str, &str)],
    flags: &[&str],
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    for line in template.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let line = match line.trim_start().strip_prefix("#if:") {
            Some(rest) => {
                let (flag, text) = rest.split_once(' ').unwrap_or((rest, ""));
                if !flags.contains(&flag) {
                    continue;
                }
                format!("{indent}{text}")
            }
            None => line.to_owned(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    if let Some(at) = out.find("{{") {
        let rest = &out[at..];
        let name = rest.split("}}").next().unwrap_or(rest);
        return Err(format!("template placeholder {name}}}}} left unfilled"));
    }
    Ok(out)
}

/// The configuration of `peer` listening on `port` in front of `up`, requiring `key`.
pub(crate) fn config(
    peer: Peer,
    port: u16,
    up: &Upstream,
    key: &str,
    prefix: &Path,
) -> Result<String, String> {
    let (addr, ca, alpn, flag) = match up {
        Upstream::Plain(a) => (*a, String::new(), "", "plain"),
        Upstream::Tls {
            addr,
            ca_file,
            alpn,
        } => (*addr, ca_file.display().to_string(), *alpn, "tls"),
    };
    let (port, upstream, workers) = (port.to_string(), addr.to_string(), WORKERS.to_string());
    let prefix = prefix.display().to_string();
    let vars = [
        ("PORT", port.as_str()),
        ("UPSTREAM", upstream.as_str()),
        ("KEY", key),
        ("PREFIX", prefix.as_str()),
        ("WORKERS", workers.as_str()),
        ("THREADS", workers.as_str()),
        ("CA_FILE", ca.as_str()),
        ("TLS_NAME", TLS_NAME),
        ("ALPN", alpn),
    ];
    let template = match peer {
        Peer::Nginx => NGINX_TEMPLATE,
        Peer::Haproxy => HAPROXY_TEMPLATE,
    };
    fill(template, &vars, &[flag])
}

/// Where `program` is installed (`PATH`, then `/usr/sbin`, where Debian puts both).
pub(crate) fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The first line of `BIN -v` shortened to the program and its version (`nginx/1.22.1`,
/// `HAProxy 2.6.12-1+deb12u4`), and the Debian package it came from when dpkg knows it.
pub(crate) fn version(bin: &Path) -> String {
    let Ok(out) = Command::new(bin).arg("-v").output() else {
        return "unknown version".to_owned();
    };
    // nginx prints its version on stderr, HAProxy on stdout.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let short = short_version(text.lines().next().unwrap_or(""));
    let path = bin.display().to_string();
    let owner = crate::report::sh("dpkg", &["-S", &path]);
    match owner.split_once(':') {
        Some((package, _)) if !package.contains(' ') => {
            let v = crate::report::sh("dpkg-query", &["-W", "-f=${Version}", package]);
            format!("{short} (Debian package `{package}` {v})")
        }
        _ => short,
    }
}

/// `nginx version: nginx/1.22.1` → `nginx/1.22.1`; `HAProxy version 2.6.12-1 2026/10/17 - …`
/// → `HAProxy 2.6.12-1`.
pub(crate) fn short_version(first_line: &str) -> String {
    let line = first_line.trim();
    if let Some(v) = line.strip_prefix("nginx version: ") {
        return v.to_owned();
    }
    if let Some(v) = line.strip_prefix("HAProxy version ") {
        return format!("HAProxy {}", v.split_whitespace().next().unwrap_or(""));
    }
    line.to_owned()
}

/// Starts `peer` (binary `bin`) in front of `up` with the configuration in `dir` (created).
pub(crate) async fn start(
    peer: Peer,
    bin: &Path,
    up: &Upstream,
    key: &str,
    dir: &Path,
) -> Result<Proc, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // nginx's workers run as `nobody` when the master is root: they must reach the prefix.
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = procs::free_port()?;
    let text = config(peer, port, up, key, &dir)?;
    let file = dir.join(match peer {
        Peer::Nginx => "nginx.conf",
        Peer::Haproxy => "haproxy.cfg",
    });
    std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut cmd = Command::new(bin);
    match peer {
        Peer::Nginx => {
            cmd.arg("-p").arg(&dir).arg("-e").arg(dir.join("error.log"));
            cmd.arg("-c").arg(&file);
        }
        Peer::Haproxy => {
            cmd.arg("-db").arg("-f").arg(&file);
        }
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = dir.join("stdout.log");
    let name = match peer {
        Peer::Nginx => "nginx",
        Peer::Haproxy => "HAProxy",
    };
    procs::start_server(name, cmd, addr, &log, "/health", Duration::from_secs(20)).await
}

/// For the report: each peer's version, or why it is not measured.
pub(crate) type PeerStatus = Vec<(Peer, Result<String, String>)>;

/// Which peers are installed (with their binary), and each one's status.
pub(crate) fn installed() -> (Vec<(Peer, PathBuf)>, PeerStatus) {
    let mut bins = Vec::new();
    let mut status = Vec::new();
    for peer in [Peer::Nginx, Peer::Haproxy] {
        match find(peer.program()) {
            Some(bin) => {
                status.push((peer, Ok(version(&bin))));
                bins.push((peer, bin));
            }
            None => status.push((
                peer,
                Err(format!(
                    "`{}` is not installed (`bench/run` installs it with apt-get when it can: see bench/out/apt.log)",
                    peer.program()
                )),
            )),
        }
    }
    (bins, status)
}

/// Who a peer is in the tables: HAProxy offering `h2` to a TLS upstream is a row of its own.
pub(crate) fn who(peer: Peer, up: &Upstream) -> Who {
    match (peer, up) {
        (Peer::Nginx, _) => Who::Nginx,
        (Peer::Haproxy, Upstream::Tls { alpn: "h2", .. }) => Who::HaproxyH2,
        (Peer::Haproxy, _) => Who::Haproxy,
    }
}

/// Starts every installed peer in front of `up`, each in `dir/<program>`; a peer that does not
/// start is reported as the error instead of a process.
pub(crate) async fn start_all(
    bins: &[(Peer, PathBuf)],
    up: &Upstream,
    dir: &Path,
) -> Vec<(Peer, Result<Proc, String>)> {
    let mut out = Vec::new();
    for (peer, bin) in bins {
        let d = dir.join(peer.program());
        let started = start(*peer, bin, up, CLIENT_KEY, &d).await;
        if let Err(e) = &started {
            crate::suite::log(&format!("{} did not start: {e}", peer.program()));
        }
        out.push((*peer, started));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_placeholders_and_keeps_only_flagged_lines() {
        let t = "a {{X}} b\n  #if:tls tls {{X}}\n  #if:plain plain\nend {{Y}}\n";
        let out = fill(t, &[("X", "1"), ("Y", "2")], &["tls"]);
        assert_eq!(out.as_deref(), Ok("a 1 b\n  tls 1\nend 2\n"));
        let out = fill(t, &[("X", "1"), ("Y", "2")], &["plain"]);
        assert_eq!(out.as_deref(), Ok("a 1 b\n  plain\nend 2\n"));
        let err = fill(t, &[("X", "1")], &[]);
        assert_eq!(
            err,
            Err("template placeholder {{Y}} left unfilled".to_owned())
        );
    }

    #[test]
    fn versions_are_shortened() {
        assert_eq!(short_version("nginx version: nginx/1.22.1"), "nginx/1.22.1");
        assert_eq!(
            short_version("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"),
            "HAProxy 2.6.12-1+deb12u4"
        );
        assert_eq!(short_version(" other 1.0 "), "other 1.0");
    }

    #[test]
    fn the_shipped_templates_fill_completely() {
        let prefix = Path::new("/tmp/p");
        let plain = Upstream::Plain(SocketAddr::from(([127, 0, 0, 1], 9000)));
        let tls = Upstream::Tls {
            addr: SocketAddr::from(([127, 0, 0, 1], 9443)),
            ca_file: PathBuf::from("/tmp/ca.pem"),
            alpn: "h2",
        };
        for peer in [Peer::Nginx, Peer::Haproxy] {
            let p = config(peer, 8080, &plain, "k-1", prefix);
            let p = p.unwrap_or_default();
            assert!(p.contains("127.0.0.1:9000"), "{p}");
            assert!(p.contains("Bearer k-1"), "{p}");
            assert!(!p.contains("#if:plain") && !p.contains("#if:tls"), "{p}");
            assert!(!p.contains("ca.pem"), "{p}");
            let t = config(peer, 8080, &tls, "k-1", prefix).unwrap_or_default();
            assert!(
                t.contains("127.0.0.1:9443") && t.contains("/tmp/ca.pem"),
                "{t}"
            );
        }
        let n = config(Peer::Nginx, 8080, &plain, "k", prefix).unwrap_or_default();
        assert!(n.contains("worker_processes 2;") && n.contains("proxy_pass http://mock;"));
        assert!(n.contains("access_log off;") && n.contains("pid /tmp/p/nginx.pid;"));
        let h = config(Peer::Haproxy, 8080, &tls, "k", prefix).unwrap_or_default();
        assert!(h.contains("nbthread 2") && h.contains("alpn h2") && h.contains("verify required"));
    }
}
