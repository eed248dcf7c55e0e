//! Model routing: which backend serves a model name, and under which upstream model name.
//!
//! Order: `backend:model` naming a configured backend; a configured alias; the default backend
//! (`--default-backend`) when it speaks the caller's protocol; the first backend (by name) that
//! speaks the caller's protocol; the only backend. A name with a `:` whose prefix is not a
//! configured backend is refused (a typo in a backend name must not silently go to the default
//! backend): names that contain `:` themselves, like Ollama's `llama3:8b`, are written with their
//! backend in front (`ollama:llama3:8b`) or given an alias.
//!
//! A route names a [`Provider`] (the backend with its own credential pool), so the caller calls
//! it directly; the caller's [`Grant`] (from `crate::policy`) decides whether it may.

use std::collections::HashMap;
use std::sync::Arc;

use super::owners::Owner;
use super::{Backends, Provider};
use crate::config::RoutingConfig;
use crate::policy::Grant;
use crate::pool::ProviderPool;
use crate::protocol::{Operation, Protocol, ResponsesApi};
use crate::translate::Dialect;

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Route {
    /// The backend and its credentials.
    pub provider: Arc<Provider>,
    /// The model name to send upstream (shared with the request's record: no copy per request).
    pub model: Arc<str>,
    /// True when `model` differs from what the client sent (the body must be rewritten).
    pub rewritten: bool,
}

impl Route {
    /// How a `protocol` caller's `op` reaches this route's backend: `None` as it is
    /// (passthrough), `Some((caller's dialect, backend's dialect))` through translation, or
    /// refused when the backend speaks another protocol and `op` is not translated.
    /// `requested` is the model as the caller named it (for the error).
    pub fn dialects(
        &self,
        requested: &str,
        protocol: Protocol,
        op: Operation,
    ) -> Result<Option<(Dialect, Dialect)>, RouteError> {
        let backend = &self.provider.backend;
        if backend.kind == protocol.native_backend() {
            let chat_only = op == Operation::Responses
                && backend.responses_api == ResponsesApi::ChatCompletions;
            return Ok(chat_only.then_some((Dialect::Responses, Dialect::Chat)));
        }
        match Dialect::of_operation(op) {
            Some(caller) => Ok(Some((caller, Dialect::of_backend(backend.kind)))),
            None => Err(RouteError::NoTranslation {
                model: requested.to_owned(),
                backend: backend.name.to_string(),
                kind: backend.kind.as_str(),
                operation: format!("{} {}", protocol.name(), op.name()),
            }),
        }
    }
}

/// Why no route was found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// The request names no model and no default model is configured.
    #[error(
        "the request names no model and no default model is configured (use --default-backend backend:model)"
    )]
    NoModel,
    /// `backend:` with nothing after it.
    #[error("model `{0}` names a backend but no model after the `:`")]
    EmptyModel(String),
    /// `prefix:model` where `prefix` is not a configured backend.
    #[error(
        "model `{model}` names backend `{backend}`, which is not configured (configured backends: {backends}); model names that contain `:` must start with their backend, e.g. `ollama:llama3:8b`"
    )]
    UnknownBackend {
        /// Requested model.
        model: String,
        /// The unknown prefix.
        backend: String,
        /// Configured backend names.
        backends: String,
    },
    /// No backend can serve the model for this protocol.
    #[error(
        "no backend serves model `{model}` for {protocol} clients: name one with `backend:model` (configured backends: {backends})"
    )]
    NoBackend {
        /// Requested model.
        model: String,
        /// Caller's protocol name.
        protocol: &'static str,
        /// Configured backend names.
        backends: String,
    },
    /// The backend a request without a model names (`x-portcullis-backend`) is not configured.
    #[error(
        "backend `{backend}` named by x-portcullis-backend is not configured (configured backends: {backends})"
    )]
    UnknownNamedBackend {
        /// The name given.
        backend: String,
        /// Configured backend names.
        backends: String,
    },
    /// A request without a model, and no backend speaks the caller's protocol.
    #[error(
        "the request names no model and no backend speaks the {protocol} API: name one with the x-portcullis-backend header (configured backends: {backends})"
    )]
    NoDefaultBackend {
        /// Caller's protocol name.
        protocol: &'static str,
        /// Configured backend names.
        backends: String,
    },
    /// The caller's grant does not allow the backend or the model.
    #[error("model `{model}` of backend `{backend}` is not allowed for this caller")]
    NotGranted {
        /// Backend name.
        backend: String,
        /// Upstream model name.
        model: String,
    },
    /// The backend is an OAuth (personal-subscription) connector, refused in multi-user mode.
    #[error(
        "backend `{0}` is not available in multi-user mode: OAuth connectors are blocked in production deployments"
    )]
    NotInMultiUser(String),
    /// The backend speaks another protocol and the operation is not one translation serves.
    #[error(
        "model `{model}` is served by backend `{backend}` ({kind} API), and {operation} requests are not translated between protocols (only chat completions, the Responses API, Anthropic messages and Gemini generateContent are): call it through its own API"
    )]
    NoTranslation {
        /// Requested model.
        model: String,
        /// Backend name.
        backend: String,
        /// Backend type.
        kind: &'static str,
        /// What the caller asked for (`OpenAI embeddings`, …).
        operation: String,
    },
}

/// Resolves model names to routes.
#[derive(Debug, Clone, Default)]
pub struct ModelRouter {
    backends: Backends,
    /// One per backend, in the same order.
    providers: Vec<Arc<Provider>>,
    aliases: HashMap<String, (Arc<Provider>, Arc<str>)>,
    default: Option<(Arc<Provider>, Option<Arc<str>>)>,
    /// Backends left out because of the access mode (requests naming them get a clear error).
    withheld: Vec<String>,
}

impl ModelRouter {
    /// Builds the router, each backend paid for by `pool(name)`; configuration was validated,
    /// so unknown names are skipped.
    pub fn new(
        backends: Backends,
        routing: &RoutingConfig,
        pool: impl Fn(&str) -> Option<Arc<ProviderPool>>,
    ) -> Self {
        let providers: Vec<Arc<Provider>> = backends
            .iter()
            .map(|b| Arc::new(Provider::new(b.clone(), pool(&b.name))))
            .collect();
        let find = |name: &str| providers.iter().find(|p| &**p.name() == name);
        let aliases = routing
            .aliases
            .iter()
            .filter_map(|(alias, target)| {
                let (b, m) = target.split_once(':')?;
                Some((alias.clone(), (find(b)?.clone(), Arc::from(m))))
            })
            .collect();
        let default = routing.default_backend.as_deref().and_then(|d| {
            let (b, m) = match d.split_once(':') {
                Some((b, m)) => (b, Some(Arc::<str>::from(m)).filter(|m| !m.is_empty())),
                None => (d, None),
            };
            Some((find(b)?.clone(), m))
        });
        Self {
            backends,
            providers,
            aliases,
            default,
            withheld: Vec::new(),
        }
    }

    /// Records backends that exist in the configuration but are withheld by the access mode.
    pub fn with_withheld(mut self, names: Vec<String>) -> Self {
        self.withheld = names;
        self
    }

    /// The backends this router knows.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// One provider per backend, in name order.
    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// The provider of backend `name`.
    fn provider(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| &**p.name() == name)
    }

    /// Aliases as `(alias, provider, model)`.
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &Arc<Provider>, &str)> {
        self.aliases.iter().map(|(a, (b, m))| (a.as_str(), b, &**m))
    }

    /// The backend plain model names go to for `protocol` clients.
    pub fn default_for(&self, protocol: Protocol) -> Option<&Arc<Provider>> {
        let native = protocol.native_backend();
        match &self.default {
            Some((p, _)) if p.backend.kind == native => Some(p),
            _ => self
                .providers
                .iter()
                .find(|p| p.backend.kind == native)
                .or(self.default.as_ref().map(|(p, _)| p))
                .or_else(|| {
                    (self.providers.len() == 1)
                        .then(|| self.providers.first())
                        .flatten()
                }),
        }
    }

    /// Resolves `requested` for a `protocol` client allowed `grant`, checking the backend can
    /// serve it.
    pub fn resolve(
        &self,
        requested: &str,
        protocol: Protocol,
        grant: &Grant,
    ) -> Result<Route, RouteError> {
        let route = self.lookup(requested, protocol)?;
        let backend = &route.provider.backend;
        if !grant.allows(&backend.name, &route.model) {
            return Err(RouteError::NotGranted {
                backend: backend.name.to_string(),
                model: route.model.to_string(),
            });
        }
        Ok(route)
    }

    /// The provider of a request that names no model (a stored object's id, a batch, a
    /// moderation without `model`): backend `named` (the `x-portcullis-backend` header), else the
    /// backend plain model names go to for `protocol` clients. Refused like [`Self::resolve`]
    /// when the grant does not allow it or it speaks another protocol.
    pub fn resolve_backend(
        &self,
        named: Option<&str>,
        protocol: Protocol,
        grant: &Grant,
    ) -> Result<Arc<Provider>, RouteError> {
        let provider = match named {
            Some(name) if self.withheld.iter().any(|w| w == name) => {
                return Err(RouteError::NotInMultiUser(name.to_owned()));
            }
            Some(name) => self
                .provider(name)
                .ok_or_else(|| RouteError::UnknownNamedBackend {
                    backend: name.to_owned(),
                    backends: self.backend_names(),
                })?,
            None => self
                .default_for(protocol)
                .ok_or_else(|| RouteError::NoDefaultBackend {
                    protocol: protocol.name(),
                    backends: self.backend_names(),
                })?,
        };
        self.admit(provider, "", protocol, grant)?;
        Ok(provider.clone())
    }

    /// The provider (of a backend speaking `protocol`) that remembers who created object `id`
    /// at `now`, and its owner.
    pub fn object_owner(
        &self,
        id: &str,
        protocol: Protocol,
        now: u64,
    ) -> Option<(Arc<Provider>, Owner)> {
        let native = protocol.native_backend();
        self.providers
            .iter()
            .filter(|p| p.backend.kind == native)
            .find_map(|p| Some((p.clone(), p.objects().owner(id, now)?)))
    }

    /// Refuses `provider` for a `protocol` client allowed `grant` (`model` as requested, empty
    /// when the request names none).
    fn admit(
        &self,
        provider: &Provider,
        model: &str,
        protocol: Protocol,
        grant: &Grant,
    ) -> Result<(), RouteError> {
        let backend = &provider.backend;
        let allowed = if model.is_empty() {
            grant.allows_backend(&backend.name)
        } else {
            grant.allows(&backend.name, model)
        };
        if !allowed {
            return Err(RouteError::NotGranted {
                backend: backend.name.to_string(),
                model: if model.is_empty() { "*" } else { model }.to_owned(),
            });
        }
        if backend.kind != protocol.native_backend() {
            return Err(RouteError::NoTranslation {
                model: if model.is_empty() { "(none)" } else { model }.to_owned(),
                backend: backend.name.to_string(),
                kind: backend.kind.as_str(),
                operation: format!("{} requests without a model", protocol.name()),
            });
        }
        Ok(())
    }

    fn backend_names(&self) -> String {
        self.backends
            .iter()
            .map(|b| b.name.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn lookup(&self, requested: &str, protocol: Protocol) -> Result<Route, RouteError> {
        if requested.is_empty() {
            return match &self.default {
                Some((p, Some(m))) => Ok(Route {
                    provider: p.clone(),
                    model: m.clone(),
                    rewritten: true,
                }),
                _ => Err(RouteError::NoModel),
            };
        }
        // A byte loop: a model name is a few dozen bytes, shorter than a `str` search takes to
        // set up.
        let prefixed = requested
            .bytes()
            .position(|b| b == b':')
            .map(|at| (&requested[..at], &requested[at + 1..]));
        if let Some((prefix, _)) = prefixed
            && self.withheld.iter().any(|w| w == prefix)
        {
            return Err(RouteError::NotInMultiUser(prefix.to_owned()));
        }
        if let Some((prefix, rest)) = prefixed
            && let Some(p) = self.provider(prefix)
        {
            if rest.is_empty() {
                return Err(RouteError::EmptyModel(requested.to_owned()));
            }
            return Ok(Route {
                provider: p.clone(),
                model: Arc::from(rest),
                rewritten: true,
            });
        }
        if let Some((p, m)) = self.aliases.get(requested) {
            return Ok(Route {
                provider: p.clone(),
                model: m.clone(),
                rewritten: **m != *requested,
            });
        }
        if let Some((prefix, _)) = prefixed {
            return Err(RouteError::UnknownBackend {
                model: requested.to_owned(),
                backend: prefix.to_owned(),
                backends: self.backend_names(),
            });
        }
        match self.default_for(protocol) {
            Some(p) => Ok(Route {
                provider: p.clone(),
                model: Arc::from(requested),
                rewritten: false,
            }),
            None => Err(RouteError::NoBackend {
                model: requested.to_owned(),
                protocol: protocol.name(),
                backends: self.backend_names(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, BackendKind, Config};

    fn router(backends: &[(&str, BackendKind)], routing: RoutingConfig) -> ModelRouter {
        let mut config = Config::default();
        for (name, kind) in backends {
            config.backends.insert(
                (*name).to_owned(),
                BackendConfig {
                    base_url: Some("http://127.0.0.1:9".into()),
                    ..BackendConfig::of_kind(*kind)
                },
            );
        }
        let b = Backends::from_config(&config.backends).unwrap();
        ModelRouter::new(b, &routing, |_| None)
    }

    fn check(
        r: &ModelRouter,
        model: &str,
        p: Protocol,
    ) -> Result<(String, String, bool), RouteError> {
        r.resolve(model, p, &Grant::ALL).map(|x| {
            (
                x.provider.name().to_string(),
                x.model.to_string(),
                x.rewritten,
            )
        })
    }

    #[test]
    fn routes_by_prefix_alias_and_default() {
        let mut routing = RoutingConfig::default();
        routing
            .aliases
            .insert("fast".into(), "groq:llama-3.1-8b".into());
        routing.default_backend = Some("openai:gpt-4o".into());
        let r = router(
            &[
                ("openai", BackendKind::Openai),
                ("groq", BackendKind::Openai),
                ("anthropic", BackendKind::Anthropic),
            ],
            routing,
        );
        let o = Protocol::OpenAi;
        assert_eq!(
            check(&r, "groq:mixtral", o),
            Ok(("groq".into(), "mixtral".into(), true))
        );
        assert_eq!(
            check(&r, "fast", o),
            Ok(("groq".into(), "llama-3.1-8b".into(), true))
        );
        assert_eq!(
            check(&r, "gpt-4o-mini", o),
            Ok(("openai".into(), "gpt-4o-mini".into(), false))
        );
        assert_eq!(
            check(&r, "", o),
            Ok(("openai".into(), "gpt-4o".into(), true))
        );
        assert_eq!(
            check(&r, "groq:llama3:8b", o),
            Ok(("groq".into(), "llama3:8b".into(), true))
        );
        assert!(matches!(
            check(&r, "llama3:8b", o),
            Err(RouteError::UnknownBackend { .. })
        ));
        // The default is an OpenAI backend, so Anthropic clients go to the Anthropic backend.
        assert_eq!(
            check(&r, "claude-sonnet-4-5", Protocol::Anthropic),
            Ok(("anthropic".into(), "claude-sonnet-4-5".into(), false))
        );
        assert_eq!(
            check(&r, "openai:", o),
            Err(RouteError::EmptyModel("openai:".into()))
        );
    }

    #[test]
    fn refuses_what_cannot_be_served() {
        let r = router(&[("openai", BackendKind::Openai)], RoutingConfig::default());
        assert!(matches!(
            check(&r, "", Protocol::OpenAi),
            Err(RouteError::NoModel)
        ));
        // The only backend serves every protocol's generation requests, translated; other
        // operations are refused with the reason.
        let route = r
            .resolve("claude", Protocol::Anthropic, &Grant::ALL)
            .unwrap();
        assert_eq!(
            route.dialects("claude", Protocol::Anthropic, Operation::Messages),
            Ok(Some((Dialect::Anthropic, Dialect::Chat)))
        );
        let refused = route
            .dialects("claude", Protocol::Anthropic, Operation::CountTokens)
            .unwrap_err();
        assert!(matches!(refused, RouteError::NoTranslation { .. }));
        assert!(
            refused
                .to_string()
                .contains("Anthropic count_tokens requests are not translated")
        );
        assert_eq!(
            route.dialects("claude", Protocol::OpenAi, Operation::Embeddings),
            Ok(None)
        );
        let two = router(
            &[("a", BackendKind::Anthropic), ("g", BackendKind::Gemini)],
            RoutingConfig::default(),
        );
        assert!(matches!(
            check(&two, "gpt", Protocol::OpenAi),
            Err(RouteError::NoBackend { .. })
        ));
    }

    #[test]
    fn refuses_what_the_grant_does_not_allow() {
        use crate::policy::Grant;
        let mut routing = RoutingConfig::default();
        routing.aliases.insert("fast".into(), "groq:llama".into());
        let r = router(
            &[
                ("openai", BackendKind::Openai),
                ("groq", BackendKind::Openai),
            ],
            routing,
        );
        let grant = Grant::with_rules(
            serde_json::from_value(
                serde_json::json!({"backends": ["openai"], "models": ["gpt-4o"]}),
            )
            .unwrap(),
        );
        let o = Protocol::OpenAi;
        assert!(r.resolve("openai:gpt-4o", o, &grant).is_ok());
        for refused in ["groq:llama", "fast", "openai:gpt-5"] {
            let e = r.resolve(refused, o, &grant).unwrap_err();
            assert!(
                matches!(e, RouteError::NotGranted { .. }),
                "{refused}: {e:?}"
            );
        }
    }
}
