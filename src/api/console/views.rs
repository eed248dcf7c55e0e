//! The console's pages as askama templates (`templates/console/`): each struct is one page, its
//! fields already formatted for people. Askama escapes every value for HTML, and a template that
//! names a missing field does not compile.

use askama::Template;

/// The bar every signed-in page starts with.
pub(super) struct Nav<'a> {
    /// Who is signed in.
    pub(super) who: &'a str,
    /// The anti-forgery field of the page's forms.
    pub(super) csrf: &'a str,
    /// Which page this is (`devices`, `users`, `credentials`, `keys`, `signing-keys`).
    pub(super) active: &'static str,
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "console/login.html")]
pub(super) struct LoginPage<'a> {
    /// Why the last attempt failed.
    pub(super) notice: Option<&'a str>,
    /// Offer the SSO hand-over.
    pub(super) sso: bool,
}

/// A refusal or failure.
#[derive(Template)]
#[template(path = "console/error.html")]
pub(super) struct ErrorPage<'a> {
    pub(super) title: &'a str,
    pub(super) detail: &'a str,
}

/// One agent token.
pub(super) struct DeviceRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) owner: String,
    pub(super) status: &'static str,
    pub(super) created: String,
    pub(super) last_used: String,
    pub(super) last_ip: String,
}

/// Devices (agent tokens): rename, revoke.
#[derive(Template)]
#[template(path = "console/devices.html")]
pub(super) struct DevicesPage<'a> {
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'static str>,
    pub(super) devices: Vec<DeviceRow>,
}

/// One user.
pub(super) struct UserRow {
    pub(super) id: String,
    pub(super) provider: String,
    pub(super) subject: String,
    pub(super) email: String,
    pub(super) name: String,
    pub(super) disabled: bool,
    pub(super) admin: bool,
    pub(super) created: String,
}

/// Users.
#[derive(Template)]
#[template(path = "console/users.html")]
pub(super) struct UsersPage<'a> {
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'static str>,
    pub(super) users: Vec<UserRow>,
}

/// One upstream credential (a masked hint, never the secret).
pub(super) struct CredentialRow {
    pub(super) id: String,
    pub(super) provider: String,
    pub(super) kind: &'static str,
    pub(super) source: &'static str,
    pub(super) hint: String,
    pub(super) label: String,
    pub(super) priority: i64,
    pub(super) status: &'static str,
    pub(super) cooldown_until: String,
    pub(super) quota: String,
    pub(super) requests: u64,
    pub(super) failures: u64,
    pub(super) last_used: String,
    pub(super) expires: String,
    /// Stored through the API (config and file credentials are changed where they are written).
    pub(super) removable: bool,
}

/// Upstream credentials: status, quota, cooldown; add, remove, refresh.
#[derive(Template)]
#[template(path = "console/credentials.html")]
pub(super) struct CredentialsPage<'a> {
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'static str>,
    pub(super) credentials: Vec<CredentialRow>,
    /// Credential files that could not be read: (source, error).
    pub(super) errors: Vec<(String, String)>,
    /// The providers a credential can be added to.
    pub(super) providers: Vec<String>,
}

/// One virtual key.
pub(super) struct KeyRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) owner: String,
    pub(super) status: &'static str,
    pub(super) rules: String,
    pub(super) created: String,
    pub(super) expires: String,
}

/// Virtual keys: revoke.
#[derive(Template)]
#[template(path = "console/keys.html")]
pub(super) struct KeysPage<'a> {
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'static str>,
    pub(super) keys: Vec<KeyRow>,
}

/// One signing key of the token server (its public half's id only).
pub(super) struct SigningKeyRow {
    pub(super) kid: String,
    pub(super) alg: String,
    pub(super) created: String,
    pub(super) state: String,
}

/// The token server's signing keys.
#[derive(Template)]
#[template(path = "console/signing_keys.html")]
pub(super) struct SigningKeysPage<'a> {
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'static str>,
    pub(super) keys: Vec<SigningKeyRow>,
}

/// One line of a chart.
pub(super) struct ChartSeries {
    /// `backend:model`.
    pub(super) label: String,
    pub(super) colour: &'static str,
    /// SVG polyline points (numbers only).
    pub(super) points: String,
    /// A marker at each minute with a value above zero (x, y).
    pub(super) dots: Vec<(String, String)>,
}

/// One chart of the activity page.
pub(super) struct Chart {
    pub(super) title: &'static str,
    /// The value at the top of the chart, with its unit.
    pub(super) top: String,
    /// Minutes from the first point to the last (the x axis).
    pub(super) span: usize,
    pub(super) series: Vec<ChartSeries>,
}

/// A backend and model's last hour.
#[derive(Default)]
pub(super) struct TotalRow {
    pub(super) backend: String,
    pub(super) model: String,
    pub(super) requests: u64,
    pub(super) errors: u64,
    pub(super) latency_sum: f64,
    pub(super) mean_latency: String,
    pub(super) input_tokens: u64,
    pub(super) output_tokens: u64,
}

/// One operator event.
pub(super) struct EventRow {
    pub(super) at: String,
    pub(super) kind: &'static str,
    pub(super) summary: String,
    pub(super) body: String,
}

/// The last hour's traffic and the recent operator events.
#[derive(Template)]
#[template(path = "console/activity.html")]
pub(super) struct ActivityPage<'a> {
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'static str>,
    /// Metrics are recorded (`metrics.enabled`); the charts are empty otherwise.
    pub(super) metrics_on: bool,
    pub(super) charts: Vec<Chart>,
    pub(super) totals: Vec<TotalRow>,
    pub(super) events: Vec<EventRow>,
}
