//! The TLS-upstream scenarios: a `portcullis-mock --tls` of their own (it writes the CA its
//! certificate chains to), the gateway checking it with `tls_ca_file` (over HTTP/1.1, or HTTP/2
//! with `http2_prior_knowledge: true`), and nginx and HAProxy proxying to the same mock over
//! TLS with verification on. The loader speaks plain HTTP, so there is no direct row: the
//! gateway is compared with nginx.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::peers::{self, Peer, Upstream};
use crate::procs::{self, GatewayLog, GatewaySetup};
use crate::scenario::{Scenario, TlsProto};
use crate::stats::Stats;
use crate::suite::{Options, Plan, Who, log, rounds, target};

/// The gateway's configuration for a TLS upstream at `addr` (the mock's certificate names
/// `127.0.0.1` as well as [`peers::TLS_NAME`]; an address spares a resolver's IPv6 attempt).
pub(crate) fn gateway_yaml(addr: SocketAddr, ca_file: &str, proto: TlsProto) -> String {
    let h2 = match proto {
        TlsProto::Http1 => "",
        TlsProto::H2 => "    http2_prior_knowledge: true\n",
    };
    format!(
        "backends:\n  openai:\n    type: openai\n    base_url: https://{addr}/v1\n    \
         forward_headers: [x-mock]\n    tls_ca_file: {ca_file}\n{h2}    credentials:\n      \
         - api_key: sk-bench-upstream\n        priority: 1\n"
    )
}

/// Runs `sc` over nginx, HAProxy and the gateway in front of a TLS mock.
pub(crate) async fn rounds_over_tls(
    proto: TlsProto,
    sc: &Scenario,
    opts: &Options,
    plan: &Plan,
    peer_bins: &[(Peer, PathBuf)],
) -> Result<Vec<(Who, Stats)>, String> {
    let dir = opts.out_dir.join(sc.id);
    let mock_dir = dir.join("mock");
    let alpn = match proto {
        TlsProto::Http1 => "http1",
        TlsProto::H2 => "both",
    };
    let mock = procs::start_tls_mock(&opts.bin_dir, &mock_dir, alpn)?;
    let ca = std::fs::canonicalize(mock_dir.join("ca.pem")).map_err(|e| {
        format!(
            "the TLS mock wrote no {}: {e}",
            mock_dir.join("ca.pem").display()
        )
    })?;
    let config = dir.join("gateway.yaml");
    let ca_text = ca.display().to_string();
    std::fs::write(&config, gateway_yaml(mock.addr, &ca_text, proto))
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let setup = GatewaySetup {
        args: vec!["--config".to_owned(), config.display().to_string()],
        ..GatewaySetup::static_key()
    };
    let gw = procs::start_gateway(&opts.bin_dir, mock.addr, GatewayLog::Quiet, &setup).await?;
    let up = Upstream::Tls {
        addr: mock.addr,
        ca_file: ca,
        alpn: match proto {
            TlsProto::Http1 => "http/1.1",
            TlsProto::H2 => "h2",
        },
    };
    let mut started = Vec::new();
    for (peer, p) in peers::start_all(peer_bins, &up, &dir).await {
        match p {
            Ok(p) => started.push((peers::who(peer, &up), p)),
            Err(e) => log(&format!(
                "{}: {} in front of the TLS mock: {e}",
                sc.id,
                peer.program()
            )),
        }
    }
    let mut targets: Vec<(Who, _)> = started
        .iter()
        .map(|(w, p)| (*w, target(p, &mock)))
        .collect();
    targets.push((Who::Portcullis, target(&gw, &mock)));
    rounds(&targets, sc, plan).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_yaml_names_the_ca_and_the_protocol() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8443));
        let y = gateway_yaml(addr, "/tmp/ca.pem", TlsProto::Http1);
        assert!(y.contains("base_url: https://127.0.0.1:8443/v1"), "{y}");
        assert!(y.contains("tls_ca_file: /tmp/ca.pem"), "{y}");
        assert!(!y.contains("http2_prior_knowledge"), "{y}");
        let y = gateway_yaml(addr, "/tmp/ca.pem", TlsProto::H2);
        assert!(
            y.contains("    http2_prior_knowledge: true\n    credentials:"),
            "{y}"
        );
    }
}
