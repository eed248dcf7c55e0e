//! The gateway side of the SSO tests: a provider entry with only what a test sets, and a gateway
//! with SSO on whose port is bound first (SSO needs its public URL before the state exists), on
//! a test clock, with operator events recorded (the confirmation codes).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use portcullis::clock::ManualClock;
use portcullis::config::{Config, SsoProviderConfig, SsoProviderKind};
use portcullis::notify::{OperatorEvent, RecordingNotifier};
use portcullis::secret::Secret;
use portcullis::state::AppState;
use portcullis::store::Store;

use crate::harness::*;

/// Where the SSO gateways' clocks start, in seconds since the epoch.
pub const START: u64 = 1_800_000_000;

/// A provider of `kind` known to it as `client_id` with `secret`; nothing else set.
pub fn provider(kind: SsoProviderKind, client_id: &str, secret: &str) -> SsoProviderConfig {
    SsoProviderConfig {
        kind,
        display_name: None,
        issuer: None,
        discovery_url: None,
        client_id: client_id.into(),
        client_secret: Some(Secret::new(secret)),
        client_secret_env: None,
        scopes: vec![],
        authorize_url: None,
        token_url: None,
        api_url: None,
        allowed_domains: vec![],
    }
}

/// A running gateway with SSO on; stops when `stop` drops.
pub struct SsoGateway {
    pub mock: Mock,
    /// The gateway's address, also its SSO public URL (unless the test set another).
    pub url: String,
    pub clock: ManualClock,
    pub recorder: Arc<RecordingNotifier>,
    pub stop: tokio::sync::oneshot::Sender<()>,
}

/// Starts a gateway with client authentication and SSO on, `providers`, and `store`; `tweak`
/// changes the configuration last.
pub async fn start_sso_gateway<'a>(
    store: Arc<dyn Store>,
    providers: impl IntoIterator<Item = (&'a str, SsoProviderConfig)>,
    tweak: impl FnOnce(&mut Config),
) -> SsoGateway {
    let mock = start_mock().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = config_for(&mock);
    config.auth.disable_auth = false;
    config.sso.enabled = true;
    config.sso.public_url = Some(url.clone());
    for (name, p) in providers {
        config.sso.providers.insert(name.to_owned(), p);
    }
    tweak(&mut config);
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(START));
    let recorder = Arc::new(RecordingNotifier::default());
    let state = AppState::with_parts(
        config,
        Arc::new(clock.clone()),
        recorder.clone(),
        Some(store),
    )
    .unwrap();
    SsoGateway {
        mock,
        url,
        clock,
        recorder,
        stop: serve_on(listener, state),
    }
}

/// The confirmation code of the latest login awaiting one.
pub fn last_code(recorder: &RecordingNotifier) -> String {
    recorder
        .events()
        .iter()
        .rev()
        .find_map(|e| match e {
            OperatorEvent::LoginAwaitingConfirmation { code, .. } => Some(code.expose().to_owned()),
            _ => None,
        })
        .expect("no confirmation code was issued")
}
