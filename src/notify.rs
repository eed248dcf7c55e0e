//! Operator notifications (PRODUCT §6): events a person at the machine should see — a client
//! locked out for failed authentication today; an OAuth credential needing re-login, an exhausted
//! quota or a waiting SSO confirmation code as those features land.
//!
//! Delivery goes through a [`Notifier`]. The desktop implementation speaks D-Bus directly to the
//! freedesktop notification service (`org.freedesktop.Notifications.Notify`) from a background
//! task, so the request path only hands over an event. When no session bus or notification
//! service is reachable, the gateway logs one warning and goes on: events are still logged,
//! nothing fails. Whether notifications are on at all is decided by the configuration
//! (`Config::notifications_enabled`: explicit setting, else on for a loopback bind).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use tokio::sync::mpsc;

/// Something the operator should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorEvent {
    /// A client address was locked out after repeated failed authentication.
    AuthBlocked {
        /// The address.
        ip: IpAddr,
        /// Seconds the block lasts.
        retry_after_secs: u64,
    },
    /// Single-user SSO: a login waits for the confirmation code printed on the console. The code
    /// is carried for in-process observers (tests); summaries and bodies never include it.
    LoginAwaitingConfirmation {
        /// Who logged in (email or name) and with which provider.
        user: String,
        /// Browser address.
        ip: String,
        /// The confirmation code.
        code: crate::secret::Secret,
    },
    /// An upstream credential's token quota ran out; it is skipped until the quota resets.
    QuotaExhausted {
        /// Credential id.
        credential: String,
        /// Backend it pays for.
        provider: String,
        /// When the quota resets (ISO 8601), if it does.
        resets_at: Option<String>,
    },
    /// An OAuth upstream credential expired and its refresh failed: someone must log in again.
    CredentialNeedsLogin {
        /// Credential id.
        credential: String,
        /// Backend it paid for.
        provider: String,
    },
}

impl OperatorEvent {
    /// The event's kind, a metric label (`auth_blocked`, `login_awaiting_confirmation`,
    /// `quota_exhausted`, `credential_needs_login`).
    pub fn kind(&self) -> &'static str {
        match self {
            OperatorEvent::AuthBlocked { .. } => "auth_blocked",
            OperatorEvent::LoginAwaitingConfirmation { .. } => "login_awaiting_confirmation",
            OperatorEvent::QuotaExhausted { .. } => "quota_exhausted",
            OperatorEvent::CredentialNeedsLogin { .. } => "credential_needs_login",
        }
    }

    /// One-line title.
    pub fn summary(&self) -> String {
        match self {
            OperatorEvent::AuthBlocked { .. } => "portcullis: client locked out".to_owned(),
            OperatorEvent::LoginAwaitingConfirmation { .. } => {
                "portcullis: SSO login waiting for confirmation".to_owned()
            }
            OperatorEvent::CredentialNeedsLogin { .. } => {
                "portcullis: upstream credential needs a new login".to_owned()
            }
            OperatorEvent::QuotaExhausted { .. } => {
                "portcullis: upstream credential quota used up".to_owned()
            }
        }
    }

    /// Longer text.
    pub fn body(&self) -> String {
        match self {
            OperatorEvent::AuthBlocked {
                ip,
                retry_after_secs,
            } => format!(
                "{ip} sent too many wrong API keys and is blocked for {retry_after_secs} s."
            ),
            OperatorEvent::LoginAwaitingConfirmation { user, ip, .. } => format!(
                "{user} logged in from {ip}; the confirmation code is on the gateway's console."
            ),
            OperatorEvent::QuotaExhausted {
                credential,
                provider,
                resets_at,
            } => match resets_at {
                Some(t) => format!(
                    "The quota of credential {credential} ({provider}) is used up; it is skipped until {t}."
                ),
                None => format!(
                    "The quota of credential {credential} ({provider}) is used up; raise its limit to use it again."
                ),
            },
            OperatorEvent::CredentialNeedsLogin {
                credential,
                provider,
            } => format!(
                "The OAuth credential {credential} of {provider} expired and could not be refreshed; log in again (portcullis auths login, or /v0/oauth/…)."
            ),
        }
    }
}

/// Delivers operator events. Implementations must not block.
pub trait Notifier: Send + Sync {
    /// Hands over one event.
    fn notify(&self, event: OperatorEvent);
}

/// Notifications off.
#[derive(Debug, Default)]
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&self, _event: OperatorEvent) {}
}

/// Keeps every event; for tests.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    events: Mutex<Vec<OperatorEvent>>,
}

impl RecordingNotifier {
    /// The events so far.
    pub fn events(&self) -> Vec<OperatorEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Notifier for RecordingNotifier {
    fn notify(&self, event: OperatorEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }
}

/// Desktop notifications over D-Bus, delivered by a background task.
#[derive(Debug)]
pub struct DesktopNotifier {
    tx: mpsc::Sender<OperatorEvent>,
}

impl DesktopNotifier {
    /// Starts the delivery task on the current tokio runtime. It connects to the session bus
    /// once; if that fails it logs a warning and from then on only logs events.
    pub fn start() -> Self {
        let (tx, mut rx) = mpsc::channel::<OperatorEvent>(64);
        tokio::spawn(async move {
            let connection = match zbus::Connection::session().await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "desktop notifications are on but no D-Bus session bus is reachable; operator events will only be logged"
                    );
                    None
                }
            };
            let mut service_missing_warned = false;
            while let Some(event) = rx.recv().await {
                tracing::info!(summary = %event.summary(), body = %event.body(), "operator event");
                let Some(conn) = &connection else { continue };
                if let Err(e) = send(conn, &event).await
                    && !service_missing_warned
                {
                    service_missing_warned = true;
                    tracing::warn!(error = %e, "the desktop notification service did not accept a notification; operator events will only be logged");
                }
            }
        });
        Self { tx }
    }
}

async fn send(conn: &zbus::Connection, event: &OperatorEvent) -> zbus::Result<()> {
    let hints: HashMap<&str, zbus::Variant<'_>> = HashMap::new();
    let actions: Vec<&str> = Vec::new();
    conn.call_method(
        Some("org.freedesktop.Notifications"),
        "/org/freedesktop/Notifications",
        Some("org.freedesktop.Notifications"),
        "Notify",
        &(
            "portcullis",
            0u32,
            "dialog-warning",
            event.summary(),
            event.body(),
            actions,
            hints,
            10_000i32,
        ),
    )
    .await
    .map(|_| ())
}

impl Notifier for DesktopNotifier {
    fn notify(&self, event: OperatorEvent) {
        if self.tx.try_send(event).is_err() {
            tracing::debug!("operator event dropped: the notification queue is full");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_well() {
        let e = OperatorEvent::AuthBlocked {
            ip: "192.0.2.7".parse().unwrap(),
            retry_after_secs: 30,
        };
        assert!(e.summary().contains("locked out"));
        assert_eq!(
            e.body(),
            "192.0.2.7 sent too many wrong API keys and is blocked for 30 s."
        );
        let r = RecordingNotifier::default();
        r.notify(e.clone());
        assert_eq!(r.events(), vec![e]);
    }
}
