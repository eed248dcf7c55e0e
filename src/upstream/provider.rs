//! `Provider`: one backend with its own credential pool, and [`Provider::call`] — the one place a
//! request is sent with a credential. A call strips the client's credentials, picks a pool
//! credential, sends, classifies the answer, cools the credential down and fails over while
//! nothing has reached the client; it returns the first accepted answer with a [`Lease`] that
//! settles its usage. A call following up on a stored object names the credential that created
//! it ([`Call::prefer`], from the provider's [`ObjectOwners`]): that one is picked first while it
//! is usable, then the rules below apply as to any call.
//!
//! Failover rules (SECURITY.md, "One client cannot cool a pool down"): rate limits (429, an
//! account out of quota included) are the credential's and fail over fully. A server error or
//! timeout may be the request's own doing (a poisoned prompt): it is retried on one more
//! credential, not on all of them, so one client cannot cool the whole pool down — and it never
//! cools the last available credential (`ProviderPool::fail`). A refusal (401/402/403) may be the request's doing
//! too (a model or feature the key may not use): it is not believed from one request. The
//! request tries one more credential; if that one is accepted, the refused one is cooled down
//! (the credential was the difference); otherwise a credential cools down only once callers of
//! `STRIKES_TO_COOL` distinct principals were refused with no success in between. A model
//! lookup's refusal is the model's. Any other error status (400, 404, 413, …) is the request's:
//! the credential works, nothing is retried.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::owners::ObjectOwners;
use super::{Backend, Endpoint, HeaderLines, UpstreamError, UpstreamResponse, set_credential};
use crate::clock::SharedClock;
use crate::pool::{Credential, Failure, Lease, Pick, ProviderPool, Unavailable, Verdict};
use crate::secret::scrub::Scrubber;
use crate::wire::errors::error_facts;

/// Largest upstream error body read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A backend and the pool of credentials that pay for it (`None`: the backend is keyless).
#[derive(Debug)]
pub struct Provider {
    /// The backend: URLs, connection pool, protocol facts.
    pub backend: Arc<Backend>,
    pool: Option<Arc<ProviderPool>>,
    /// Which credential created the objects this backend keeps (stored responses, batches).
    objects: Arc<ObjectOwners>,
}

/// What to send: the client's request as received (credentials still in it).
pub struct Call<'a> {
    /// What to call.
    pub endpoint: Endpoint<'a>,
    /// The client's query string; only the allowed parameters go upstream.
    pub query: Option<&'a str>,
    /// The client's headers; only the allowed ones go upstream, never a credential.
    pub headers: HeaderMap,
    /// The body (`None`: none is sent).
    pub body: Option<Bytes>,
    /// The id of the pool credential to try first (the one that created the object this call
    /// follows up on), if it is available.
    pub prefer: Option<&'a str>,
}

/// Watches a call's attempts: the pipeline's one hook for the access log and wire capture.
pub trait Watch: Send {
    /// An attempt is about to be sent, with `credential` (`None`: keyless).
    fn sending(
        &mut self,
        credential: Option<&Arc<str>>,
        url: &reqwest::Url,
        headers: &HeaderLines,
        body: Option<&Bytes>,
    );
    /// The backend answered an attempt with `status` (its body not read yet).
    fn answered(&mut self, status: StatusCode);
    /// A failed attempt's answer, read whole (bounded).
    fn refused(&mut self, refusal: &Refusal);
    /// The call moves on to another credential.
    fn failing_over(&mut self);
    /// A fingerprint of the caller, telling refusals from different callers apart (asked only
    /// when a refusal must be attributed).
    fn caller(&self) -> u64;
}

/// An accepted answer: status and headers read, body still to come.
pub struct Answer {
    /// The upstream answer.
    pub response: UpstreamResponse,
    /// The credential that paid for it (`None`: keyless).
    pub lease: Option<Lease>,
}

/// Why a call produced no accepted answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request could not be built.
    #[error("cannot build the upstream request: {0}")]
    Prepare(UpstreamError),
    /// Every credential of the provider is cooling down, used up or expired.
    #[error("every credential of backend `{backend}` is unavailable")]
    Unavailable {
        /// Backend name.
        backend: Arc<str>,
        /// Why, and until when.
        why: Unavailable,
    },
    /// The last attempt failed in transport.
    #[error(transparent)]
    Transport(UpstreamError),
    /// The last attempt was answered with an error status.
    #[error("backend answered HTTP {}", .0.status)]
    Status(Refusal),
}

/// An upstream error answer: status, headers and (at most 64 KiB of) body, as sent.
#[derive(Debug)]
pub struct Refusal {
    /// Upstream status.
    pub status: StatusCode,
    /// Upstream headers.
    pub headers: HeaderMap,
    /// Upstream body, unscrubbed: pass what is relayed from it through [`Refusal::scrub`].
    pub body: Bytes,
    /// `Retry-After` in seconds from the gateway's clock (an HTTP date converted), or Google's
    /// `RetryInfo` delay from the body.
    pub retry_after_secs: Option<u64>,
    /// The provider said the account behind the credential is out of quota
    /// (`insufficient_quota`): retrying soon will not help.
    pub quota_exhausted: bool,
    credential: Option<Arc<Scrubber>>,
    backend: Arc<Scrubber>,
}

impl Refusal {
    /// `text` (from the body) with the credential's and the backend's secrets masked.
    pub fn scrub(&self, text: String) -> String {
        let text = match &self.credential {
            Some(s) => s.scrub(&text).into_owned(),
            None => text,
        };
        self.backend.scrub(&text).into_owned()
    }

    /// The scrubbers of the credential that was refused and of the backend.
    pub fn scrubbers(&self) -> impl Iterator<Item = &Arc<Scrubber>> + Clone {
        self.credential.iter().chain(std::iter::once(&self.backend))
    }
}

/// The cooldown class of an upstream error status; `None` when the request, not the
/// credential, was at fault (400, 404, 413, …). A model lookup's refusal is the model's (a model
/// the key may not see).
fn failure_of(
    endpoint: Endpoint<'_>,
    status: u16,
    retry_after_secs: Option<u64>,
    quota_exhausted: bool,
) -> Option<Failure> {
    match status {
        // Kiro answers a spent plan quota with 402.
        402 | 429 if quota_exhausted => Some(Failure::QuotaExhausted),
        429 => Some(Failure::RateLimited { retry_after_secs }),
        401..=403 if matches!(endpoint, Endpoint::GetModel(_)) => None,
        401..=403 => Some(Failure::Rejected),
        408 | 500..=599 => Some(Failure::Server),
        _ => None,
    }
}

/// The upstream's `Retry-After` in seconds from `now` (seconds or an HTTP date).
fn retry_after_secs(headers: &HeaderMap, now: u64) -> Option<u64> {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| crate::wire::retry_after::seconds(v, now))
}

impl Provider {
    /// `backend`, paid for by `pool`.
    pub fn new(backend: Arc<Backend>, pool: Option<Arc<ProviderPool>>) -> Self {
        Self {
            backend,
            pool,
            objects: Arc::new(ObjectOwners::default()),
        }
    }

    /// Who created the objects this backend keeps, as far as this gateway saw.
    pub fn objects(&self) -> &Arc<ObjectOwners> {
        &self.objects
    }

    /// The backend's name.
    pub fn name(&self) -> &Arc<str> {
        &self.backend.name
    }

    /// Sends `call` with the provider's credentials, failing over by the module's rules.
    #[allow(clippy::manual_async_fn)] // an `async fn` would hold its arguments twice (bench/PROFILE.md §19)
    pub fn call(
        &self,
        call: Call<'_>,
        clock: &SharedClock,
        watch: &mut dyn Watch,
    ) -> impl Future<Output = Result<Answer, CallError>> {
        async move {
            let backend = &self.backend;
            let query = call
                .query
                .and_then(|q| super::strip_credential_params(q, call.endpoint));
            let (url, headers) = backend
                .prepare(call.endpoint, query.as_deref(), call.headers)
                .map_err(CallError::Prepare)?;
            let pool = self.pool.as_ref();
            let mut template = Some((url, headers));
            let mut tried: Vec<Arc<str>> = Vec::new();
            let mut last: Option<CallError> = None;
            let mut doubtful_seen = false;
            let mut suspect: Option<Arc<Credential>> = None;
            loop {
                let now = clock.now_millis();
                // The credential that created the object a call follows up on is asked for first.
                let prefer = call.prefer.filter(|_| tried.is_empty());
                let credential = match pool
                    .map_or(Pick::Keyless, |p| p.pick_preferring(now, &tried, prefer))
                {
                    Pick::Use(c) => Some(c),
                    Pick::Keyless => None,
                    Pick::Unavailable(why) => {
                        return Err(last.unwrap_or_else(|| {
                            tracing::warn!(backend = %backend.name, retry_after_secs = why.retry_after_secs, "every credential is unavailable");
                            CallError::Unavailable {
                                backend: backend.name.clone(),
                                why,
                            }
                        }));
                    }
                };
                // Another credential may follow this one only if the pool has one left to try: only
                // then is the request template copied.
                let may_retry =
                    credential.is_some() && pool.is_some_and(|p| p.len() > tried.len() + 1);
                let (url, mut headers) = match (may_retry, template.take()) {
                    (true, Some(t)) => {
                        let copy = t.clone();
                        template = Some(t);
                        copy
                    }
                    (_, Some(t)) => t,
                    (_, None) => {
                        return Err(last.unwrap_or_else(|| {
                            CallError::Prepare(UpstreamError::Setup {
                                backend: backend.name.to_string(),
                                message: "no attempt left".to_owned(),
                            })
                        }));
                    }
                };
                set_credential(&mut headers, credential.as_deref().map(Credential::header));
                let mut url = url;
                let account = credential.as_ref().and_then(|c| c.account.as_deref());
                let body = super::connector::shape(
                    backend.kind,
                    account,
                    call.endpoint,
                    &mut url,
                    &mut headers,
                    call.body.clone(),
                )
                .map_err(|message| {
                    CallError::Prepare(UpstreamError::Setup {
                        backend: backend.name.to_string(),
                        message,
                    })
                })?;
                if let (Some(c), Some(p)) = (&credential, pool) {
                    p.started(c, now);
                }
                watch.sending(
                    credential.as_ref().map(|c| &c.id),
                    &url,
                    &headers,
                    body.as_ref(),
                );
                let sent = backend.send_prepared(call.endpoint.method(), url, headers, body);
                let (err, failure) = match sent.await {
                    Err(e) => {
                        tracing::warn!(backend = %backend.name, credential = credential.as_ref().map(|c| &*c.id), error = %e, "upstream request failed");
                        if let (Some(c), Some(p)) = (&credential, pool) {
                            p.answered(c, 1);
                        }
                        (CallError::Transport(e), Some(Failure::Transport))
                    }
                    Ok(mut upstream) => {
                        let status = upstream.status();
                        watch.answered(status);
                        if let (Some(c), Some(p)) = (&credential, pool) {
                            p.answered(c, status.as_u16());
                        }
                        if status.is_success() {
                            if let (Some(s), Some(p)) = (suspect.take(), pool) {
                                let until = p.fail(&s, Failure::Rejected, now);
                                tracing::warn!(backend = %backend.name, credential = %s.id, cooldown_ms = until.saturating_sub(now), "credential refused where another was accepted: cooling down");
                            }
                            let lease = match (credential, pool) {
                                (Some(c), Some(p)) => Some(p.lease(c, clock)),
                                _ => None,
                            };
                            return Ok(Answer {
                                response: upstream,
                                lease,
                            });
                        }
                        let headers = upstream.take_headers().to_map();
                        let body = upstream
                            .read_limited(MAX_ERROR_BODY)
                            .await
                            .unwrap_or_default();
                        let facts = error_facts(&body);
                        let retry_after_secs =
                            retry_after_secs(&headers, now).or(facts.retry_delay_secs);
                        let failure = failure_of(
                            call.endpoint,
                            status.as_u16(),
                            retry_after_secs,
                            facts.quota_exhausted,
                        );
                        let refusal = Refusal {
                            status,
                            headers,
                            body,
                            retry_after_secs,
                            quota_exhausted: facts.quota_exhausted,
                            credential: credential.as_ref().map(|c| c.scrubber.clone()),
                            backend: backend.scrubber().clone(),
                        };
                        tracing::warn!(backend = %backend.name, upstream_status = status.as_u16(), credential = credential.as_ref().map(|c| &*c.id), "upstream refused the attempt");
                        watch.refused(&refusal);
                        (CallError::Status(refusal), failure)
                    }
                };
                backend.stats.count_error(failure);
                let (Some(c), Some(p)) = (credential, pool) else {
                    return Err(err);
                };
                match p.judge(&c, failure, || watch.caller(), now) {
                    Verdict::Acquitted => return Err(err),
                    Verdict::Doubted => {
                        tracing::warn!(backend = %backend.name, credential = %c.id, "credential refused: not cooled down on one caller's request");
                        if suspect.is_none() {
                            suspect = Some(c.clone());
                        }
                    }
                    Verdict::Cooling(until) if until > now => {
                        tracing::warn!(backend = %backend.name, credential = %c.id, cooldown_ms = until - now, "credential cooling down");
                    }
                    Verdict::Cooling(_) => {
                        tracing::warn!(backend = %backend.name, credential = %c.id, "credential kept in service (cooling is off, or the failure says nothing about it and no other credential is available)");
                    }
                }
                let doubtful = matches!(
                    failure,
                    Some(Failure::Server | Failure::Transport | Failure::Rejected)
                );
                if !may_retry || (doubtful && doubtful_seen) {
                    return Err(err);
                }
                doubtful_seen |= doubtful;
                tried.push(c.id.clone());
                watch.failing_over();
                last = Some(err);
            }
        }
    }
}
