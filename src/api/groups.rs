//! Route groups: every route the gateway serves belongs to exactly one [`Group`], and each group
//! carries its [`Guard`] and answers its own errors. [`router`] merges the groups into one
//! router; a route is added by adding it to a group, so it cannot be left without a guard by
//! forgetting a string in some list. Unknown paths belong to the model API group: they meet the
//! client-credential guard first (401, or the SSO sandbox answer), then 404.
//!
//! `auth.bypass_paths` (user configuration) is honoured as group membership: a model API route
//! whose whole path it covers is served in the `public` group instead. An entry that covers no
//! route at all, or only part of a route's paths (a prefix ending inside a `{parameter}`), is
//! reported once at startup ([`bypass_warnings`]) and ignored: unknown paths always need a
//! credential.

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::MethodRouter;
use http::{Method, StatusCode};

use super::auth_layer::caller_protocol;
use super::error::ApiError;
use super::objects;
use super::prometheus;
use super::{
    body_model_route, console, device_pages, docs, gemini, health, management, models, oauth_routes,
};
use super::{management_auths, management_keys, management_usage, sso_pages};
use crate::protocol::Operation;
use crate::state::AppState;
use crate::wire::errors::ErrorKind;

/// The routes of one group: path template and its handlers.
pub(crate) type Routes = Vec<(&'static str, Methods)>;

/// The handlers of one path by method, and the list of those methods, built together by
/// [`get`], [`post`], [`put`], [`patch`], [`delete`] and their chained forms — so the route
/// table says which methods it serves without a second list to keep (the test of the
/// management API's OpenAPI document compares it with the document). A GET also answers HEAD,
/// as axum's does; the list names only the GET.
#[derive(Clone)]
pub(crate) struct Methods {
    served: Vec<Method>,
    router: MethodRouter<AppState>,
    /// The POST is `api::body_model` for this operation: served without the router too.
    direct: Option<Operation>,
}

/// The free constructors (`get(handler)`) and the chained forms (`get(a).post(b)`) of
/// [`Methods`], one per method, each the axum function of the same name plus the record.
macro_rules! methods {
    ($($name:ident => $method:ident),* $(,)?) => {
        $(
            #[doc = concat!("A route answering ", stringify!($method), " with `handler`.")]
            pub(crate) fn $name<H, T>(handler: H) -> Methods
            where
                H: Handler<T, AppState>,
                T: 'static,
            {
                Methods {
                    served: vec![Method::$method],
                    router: axum::routing::$name(handler),
                    direct: None,
                }
            }
        )*
        // Not every method is chained onto another today (a GET always comes first).
        #[allow(dead_code)]
        impl Methods {
            $(
                #[doc = concat!("Also answers ", stringify!($method), " with `handler`.")]
                pub(crate) fn $name<H, T>(self, handler: H) -> Self
                where
                    H: Handler<T, AppState>,
                    T: 'static,
                {
                    self.merge($name(handler))
                }
            )*
        }
    };
}

methods!(get => GET, post => POST, put => PUT, patch => PATCH, delete => DELETE);

impl Methods {
    /// Both routes' methods on one path (a method in both is a programming error axum reports
    /// when the router is built).
    pub(crate) fn merge(mut self, other: Methods) -> Self {
        self.served.extend(other.served);
        self.router = self.router.merge(other.router);
        self.direct = self.direct.or(other.direct);
        self
    }

    /// Marks a POST route whose handler is `api::body_model` for `op` (see [`Direct`]).
    pub(crate) fn direct(mut self, op: Operation) -> Self {
        debug_assert_eq!(self.served, [Method::POST]);
        self.direct = Some(op);
        self
    }
}

/// The model API group's POST routes whose handler is `api::body_model` and whose path has no
/// parameter, by path: `server::App` serves them without the router — the same guard
/// (`auth_layer::guard`) and the same handler, called directly instead of through the router's
/// matching, its per-route service clones and boxed futures, and the extractors (about a tenth
/// of a proxied request's instructions; bench/PROFILE.md §11). A path `auth.bypass_paths` moves
/// to the public group is not here; every other method and path goes through the router.
#[derive(Clone, Default)]
pub struct Direct {
    posts: foldhash::HashMap<&'static str, Operation>,
}

impl Direct {
    /// The operation served at `path` by a POST, if it is one of these routes.
    pub fn post(&self, path: &str) -> Option<Operation> {
        self.posts.get(path).copied()
    }

    /// The paths, for tests.
    pub fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.posts.keys().copied()
    }
}

/// What a group's routes need before their handlers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Nothing: liveness, and model routes listed in `auth.bypass_paths`.
    Open,
    /// A client credential (`auth_layer::require_credential`): lockout, then API key, agent
    /// token or JWT; a refusal in the caller's protocol, or the SSO sandbox answer.
    ClientCredential,
    /// The management key from an allowed (loopback unless `management.allow_remote`) caller,
    /// in the shared lockout (`management::require_key`); refusals as JSON problems.
    ManagementKey,
    /// SSO browser pages: SSO on (else the "not enabled" page), and every request that is not
    /// a GET or HEAD sent from the gateway's own origin as the browser tells it
    /// (`sso_pages::require_sso_page`); then per page the login state, the session cookie and the
    /// anti-forgery field. Errors are HTML pages.
    BrowserPage,
    /// Device-login pages: a browser on the gateway's machine (loopback peer, no relaying
    /// header, loopback `Host`), a configured management key, single-user mode, and no request
    /// but a GET or HEAD from another origin (`device_pages::require_local_browser`); then per
    /// page the management key or the login's cookie. Errors are HTML pages.
    LocalBrowser,
    /// The admin console: `admin.console.enabled` (else a 404 page), no form from another site
    /// (`console::require_console`), and the console's security headers on every answer; then
    /// per page the console session and, on forms, its anti-forgery field. Errors are HTML pages.
    AdminConsole,
    /// The token server exists — a store is open — (`oauth_routes::require_token_server`, else
    /// an OAuth2 `invalid_request` 404); each grant then authenticates its caller (client
    /// secret, password, the client of an introspection) in its handler, in the lockout — the
    /// metadata, the key set and `/verify-token` are public by their nature. Errors are OAuth2
    /// error documents.
    Grant,
    /// Metrics on, and a loopback caller or — with `metrics.allow_remote` — the metrics key
    /// (`prometheus::require_scraper`, in the shared lockout); refusals as JSON problems.
    Scraper,
}

/// The audiences the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupName {
    /// Liveness and configured public model routes.
    Public,
    /// The model endpoints agents call (OpenAI, Anthropic, Gemini shapes), and unknown paths.
    ModelApi,
    /// SSO browser pages (`/auth/*`).
    Pages,
    /// Device-login browser pages (`/v0/oauth/*`).
    DeviceLogin,
    /// `/v0/management/*`, and the documents: `/openapi.json` (the management API's, as at
    /// `/v0/management/openapi.json`) and `/docs` (it and the token server's, rendered).
    Management,
    /// The OAuth2 token server and its documents.
    TokenServer,
    /// `/metrics`, for Prometheus.
    Metrics,
    /// The admin console (`/admin/*`).
    Console,
}

/// One group of routes behind one guard.
pub struct Group {
    /// Which audience.
    pub name: GroupName,
    /// What its routes need.
    pub guard: Guard,
    routes: Routes,
}

impl Group {
    /// The path templates of the group's routes.
    pub fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes.iter().map(|(p, _)| *p)
    }

    /// Each route's path template with the methods it serves (HEAD implied by GET).
    pub fn routes(&self) -> impl Iterator<Item = (&'static str, &[Method])> + '_ {
        self.routes.iter().map(|(p, m)| (*p, m.served.as_slice()))
    }

    /// The group as a router: its routes, wrong methods answered behind the same guard, the
    /// guard as a layer, and — for the model API — the unknown-path answer behind it too.
    fn into_router(self, state: &AppState) -> Router<AppState> {
        let mut r = Router::new();
        let empty = self.routes.is_empty();
        for (path, methods) in self.routes {
            r = r.route(path, methods.router);
        }
        let r = r.method_not_allowed_fallback(method_not_allowed);
        match self.guard {
            // One group answers unknown paths (axum refuses to merge two fallbacks): the model
            // API's, behind its guard.
            Guard::ClientCredential => r.fallback(not_found).layer(from_fn_with_state(
                state.clone(),
                super::auth_layer::require_credential,
            )),
            Guard::ManagementKey if !empty => {
                r.route_layer(from_fn_with_state(state.clone(), management::require_key))
            }
            Guard::LocalBrowser if !empty => r.route_layer(from_fn_with_state(
                state.clone(),
                device_pages::require_local_browser,
            )),
            Guard::BrowserPage if !empty => r.route_layer(from_fn_with_state(
                state.clone(),
                sso_pages::require_sso_page,
            )),
            Guard::Grant if !empty => r.route_layer(from_fn_with_state(
                state.clone(),
                oauth_routes::require_token_server,
            )),
            Guard::Scraper if !empty => r.route_layer(from_fn_with_state(
                state.clone(),
                prometheus::require_scraper,
            )),
            Guard::AdminConsole if !empty => {
                r.route_layer(from_fn_with_state(state.clone(), console::require_console))
            }
            Guard::ManagementKey
            | Guard::LocalBrowser
            | Guard::BrowserPage
            | Guard::Grant
            | Guard::Scraper
            | Guard::AdminConsole
            | Guard::Open => r,
        }
    }
}

/// Every group, with the routes `state`'s configuration puts in it.
pub fn groups(state: &AppState) -> Vec<Group> {
    let (public_models, model_api): (Routes, Routes) = model_routes()
        .into_iter()
        .partition(|(path, _)| is_bypassed(&state.config().auth.bypass_paths, path));
    let mut public: Routes = vec![
        ("/health", get(health::health)),
        ("/internal/health", get(health::internal_health)),
    ];
    public.extend(public_models);
    let mut mgmt = management::routes();
    mgmt.extend(management_auths::routes());
    mgmt.extend(management_keys::routes());
    mgmt.extend(management_usage::routes());
    mgmt.extend(docs::routes());
    let mut pages = sso_pages::routes();
    pages.extend(console::sso_routes());
    vec![
        Group {
            name: GroupName::Public,
            guard: Guard::Open,
            routes: public,
        },
        Group {
            name: GroupName::ModelApi,
            guard: Guard::ClientCredential,
            routes: model_api,
        },
        Group {
            name: GroupName::Pages,
            guard: Guard::BrowserPage,
            routes: pages,
        },
        Group {
            name: GroupName::DeviceLogin,
            guard: Guard::LocalBrowser,
            routes: device_pages::routes(),
        },
        Group {
            name: GroupName::Management,
            guard: Guard::ManagementKey,
            routes: mgmt,
        },
        Group {
            name: GroupName::TokenServer,
            guard: Guard::Grant,
            routes: oauth_routes::routes(),
        },
        Group {
            name: GroupName::Metrics,
            guard: Guard::Scraper,
            routes: prometheus::routes(),
        },
        Group {
            name: GroupName::Console,
            guard: Guard::AdminConsole,
            routes: console::routes(),
        },
    ]
}

/// All routes: the groups merged, each behind its guard (without the layers every request
/// passes, which `server` wraps around this router once), and the routes of it `server` also
/// serves directly.
pub fn router(state: AppState) -> (Router, Direct) {
    let mut app = Router::new();
    let mut direct = Direct::default();
    for group in groups(&state) {
        if group.guard == Guard::ClientCredential {
            direct
                .posts
                .extend(group.routes.iter().filter_map(|(path, methods)| {
                    let op = methods.direct?;
                    (!path.contains('{')).then_some((*path, op))
                }));
        }
        app = app.merge(group.into_router(&state));
    }
    (app.with_state(state), direct)
}

/// The model endpoints, in the OpenAI, Anthropic and Gemini shapes. Where a path is shared
/// (`/v1/models…`, `/models…`) the handler answers in the caller's protocol
/// (`Protocol::of_headers`).
fn model_routes() -> Routes {
    use Operation::*;
    let object = objects::route;
    // The OpenAI routes also answer without the /v1 prefix, for clients whose base URL is the
    // bare host; so do the Gemini methods (litellm and aider send `/models/{m}:method` then).
    macro_rules! with_and_without_v1 {
        ($(($path:literal, $route:expr)),* $(,)?) => {
            vec![$((concat!("/v1", $path), $route), ($path, $route)),*]
        };
    }
    let mut routes: Routes = with_and_without_v1![
        ("/chat/completions", body_model_route(ChatCompletions)),
        ("/completions", body_model_route(Completions)),
        ("/responses", body_model_route(Responses)),
        (
            "/responses/input_tokens",
            body_model_route(ResponsesInputTokens)
        ),
        ("/responses/compact", body_model_route(ResponsesCompact)),
        (
            "/responses/{id}",
            object(ResponseRetrieve).merge(object(ResponseDelete))
        ),
        ("/responses/{id}/cancel", object(ResponseCancel)),
        ("/responses/{id}/input_items", object(ResponseInputItems)),
        ("/embeddings", body_model_route(Embeddings)),
        ("/moderations", body_model_route(Moderations)),
        ("/models", get(models::list_v1)),
        // google-genai 3.x calls Gemini methods under /v1; served like /v1beta (which is what
        // goes upstream).
        (
            "/models/{target}",
            get(models::get_v1).post(gemini::model_action)
        ),
    ];
    routes.extend([
        ("/v1/messages", body_model_route(Messages)),
        ("/v1/messages/count_tokens", body_model_route(CountTokens)),
        (
            "/v1/messages/batches",
            body_model_route(MessageBatchCreate).merge(object(MessageBatchList)),
        ),
        (
            "/v1/messages/batches/{id}",
            object(MessageBatchRetrieve).merge(object(MessageBatchDelete)),
        ),
        (
            "/v1/messages/batches/{id}/results",
            object(MessageBatchResults),
        ),
        (
            "/v1/messages/batches/{id}/cancel",
            object(MessageBatchCancel),
        ),
        ("/v1beta/models", get(gemini::list_models)),
        (
            "/v1beta/models/{target}",
            get(gemini::get_model).post(gemini::model_action),
        ),
    ]);
    routes
}

/// True when a `bypass_paths` entry covers every path of the route `template`: the exact
/// template (without parameters), or a prefix (`…*`) the template starts with before any
/// parameter.
fn covers(entry: &str, template: &str) -> bool {
    if entry.contains(['{', '}']) {
        return false;
    }
    match entry.strip_suffix('*') {
        Some(prefix) => template.starts_with(prefix),
        None => entry == template && !template.contains('{'),
    }
}

fn is_bypassed(bypass: &[String], template: &str) -> bool {
    bypass.iter().any(|e| covers(e, template))
}

/// What `auth.bypass_paths` cannot honour: entries that cover no route (a path the gateway does
/// not serve, or part of a parameterised route). Those paths need a credential like any
/// unknown path; the caller logs these once at startup.
pub fn bypass_warnings(state: &AppState) -> Vec<String> {
    let groups = groups(state);
    state
        .config()
        .auth
        .bypass_paths
        .iter()
        .enumerate()
        .filter(|(_, e)| !groups.iter().flat_map(Group::paths).any(|t| covers(e, t)))
        .map(|(i, e)| {
            format!(
                "auth.bypass_paths[{i}] `{e}` covers no whole route and is ignored: only model routes can be made public, by their exact path or a prefix ending in `*` before any parameter"
            )
        })
        .collect()
}

/// An unknown path: 404 in the caller's protocol ([`Protocol::of_request`]).
async fn not_found(req: Request) -> Response {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
    .into_response_for(caller_protocol(&req))
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::InvalidRequest,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
    .into_response_for(caller_protocol(&req))
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn bypass_entries_cover_whole_routes_only() {
        for (entry, template, want) in [
            ("/v1/models", "/v1/models", true),
            ("/v1/models", "/v1/models/{target}", false),
            ("/v1/models*", "/v1/models/{target}", true),
            ("/v1/models/*", "/v1/models/{target}", true),
            ("/v1/models/gpt-*", "/v1/models/{target}", false),
            ("/v1/models/{target}", "/v1/models/{target}", false),
            ("/v1/*", "/v1beta/models", false),
            ("/*", "/models", true),
            ("/healthz", "/health", false),
        ] {
            assert_eq!(covers(entry, template), want, "{entry} {template}");
        }
    }
}
