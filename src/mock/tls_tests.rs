//! The mock's test certificates: the CA verifies the leaf for every name it is made for, and
//! only for those; another run's CA does not; `ca.pem` is what a backend's `tls_ca_file` reads.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{ServerName, UnixTime};

use super::tls::{Alpn, LEAF_NAMES, TestCerts};

fn verifier(ca: &TestCerts) -> Arc<WebPkiServerVerifier> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.ca_der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap()
}

fn verifies(verifier: &WebPkiServerVerifier, certs: &TestCerts, name: &str) -> bool {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    verifier
        .verify_server_cert(&certs.leaf_der, &[], &name, &[], UnixTime::now())
        .is_ok()
}

#[test]
fn the_ca_verifies_the_leaf_for_its_names_only() {
    let certs = TestCerts::generate().unwrap();
    let v = verifier(&certs);
    for name in LEAF_NAMES {
        assert!(verifies(&v, &certs, name), "{name}");
    }
    for name in ["example.com", "127.0.0.2", "::2", "localhost.localdomain"] {
        assert!(!verifies(&v, &certs, name), "{name}");
    }
    let other = TestCerts::generate().unwrap();
    assert_ne!(other.ca_der, certs.ca_der, "every run makes a new CA");
    assert!(!verifies(&verifier(&other), &certs, "localhost"));
}

#[test]
fn ca_pem_is_written_into_a_created_directory_and_reads_as_a_trust_file() {
    let certs = TestCerts::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = certs.write_ca(&dir.path().join("a/b")).unwrap();
    assert_eq!(path, dir.path().join("a/b/ca.pem"));
    let read = crate::net::read_ca_file(&path).unwrap();
    assert_eq!(read, vec![certs.ca_der.clone()]);
    assert!(certs.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
}

#[test]
fn alpn_choices_parse_and_configure_the_server() {
    let certs = TestCerts::generate().unwrap();
    for (text, alpn, offered) in [
        ("h2", Alpn::H2, vec![&b"h2"[..]]),
        ("http1", Alpn::Http1, vec![&b"http/1.1"[..]]),
        ("both", Alpn::Both, vec![&b"h2"[..], &b"http/1.1"[..]]),
    ] {
        assert_eq!(text.parse::<Alpn>().unwrap(), alpn);
        let config = certs.server_config(alpn).unwrap();
        assert_eq!(config.alpn_protocols, offered);
    }
    assert!("h3".parse::<Alpn>().is_err());
    assert_eq!(Alpn::default(), Alpn::Both);
}
