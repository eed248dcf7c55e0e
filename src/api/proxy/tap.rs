//! The relay of an upstream stream ([`StreamTap`]): each chunk scrubbed, watched for usage (SSE
//! `data:` lines, or a translated stream's own events), translated when the caller speaks
//! another dialect, and forwarded as it arrives; a mid-stream failure becomes the caller's
//! protocol's error event; the answer's settlement runs once, when the stream ends, breaks or
//! is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

use super::Remember;
use crate::api::hooks::Hooks;
use crate::api::metering::Settlement;
use crate::protocol::{Operation, Protocol};
use crate::secret::scrub::StreamScrub;
use crate::translate::StreamTranslator;
use crate::upstream::{UpstreamBody, UpstreamError};
use crate::wire::errors::{ErrorKind, stream_error_event};
use crate::wire::objects::created_object_id;
use crate::wire::sse::DataLineScanner;
use crate::wire::usage::{Usage, may_carry_usage, parse_usage};

/// Relays an upstream stream unchanged, watching SSE `data:` lines for usage, and turning a
/// mid-stream failure into the protocol's error event so the client never sees a silent cut.
pub(super) struct StreamTap {
    pub(super) inner: UpstreamBody,
    /// Keeps the gateway's secrets out of the relayed stream.
    pub(super) scrub: Option<StreamScrub>,
    /// Bytes the scrub held back, released before the stream's end or error event.
    pub(super) held_out: Option<Bytes>,
    pub(super) scanner: Option<DataLineScanner>,
    /// Re-expresses the (scrubbed) upstream events in the caller's dialect.
    pub(super) translator: Option<StreamTranslator>,
    pub(super) usage: Usage,
    /// The usage seen is deducted from the credential's quota.
    pub(super) spends: bool,
    /// Until the stream names the object it creates (`response.created`).
    pub(super) remember: Option<Remember>,
    pub(super) hooks: Hooks,
    /// The caller's protocol and operation: the shape of the error event.
    pub(super) shape: (Protocol, Option<Operation>),
    pub(super) backend: std::sync::Arc<str>,
    pub(super) finished: bool,
    /// The credential's lease and the caller's admission, settled when the stream ends.
    pub(super) settlement: Settlement,
    /// Counted in flight until the stream is dropped.
    pub(super) _in_flight: crate::telemetry::StreamGuard,
}

impl Stream for StreamTap {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(b) = this.held_out.take() {
            return Poll::Ready(Some(Ok(b)));
        }
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            match this.inner.poll_chunk(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.hooks.stream_chunk(&chunk);
                    this.scan(&chunk);
                    let out = match &mut this.scrub {
                        Some(s) => s.feed(chunk),
                        None => chunk,
                    };
                    let out = this.translate(out);
                    if this
                        .translator
                        .as_ref()
                        .is_some_and(StreamTranslator::failed)
                    {
                        // The upstream reported a failure in its stream: the caller's error
                        // event is written, nothing follows it.
                        this.finished = true;
                        this.settle();
                        this.hooks
                            .log
                            .update(|r| r.stream_error = Some("upstream_error_event"));
                        this.hooks.stream_end("upstream_error_event");
                        return Poll::Ready(Some(Ok(out)));
                    }
                    if out.is_empty() {
                        // All of it held back (it may begin a secret): wait for more.
                        continue;
                    }
                    return Poll::Ready(Some(Ok(out)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.finished = true;
                    let (kind, status, note, message) = match &e {
                        UpstreamError::Timeout { .. } => (
                            ErrorKind::Timeout,
                            504,
                            "upstream_idle_timeout",
                            format!(
                                "backend `{}` stopped sending mid-stream (idle timeout)",
                                this.backend
                            ),
                        ),
                        _ => (
                            ErrorKind::Upstream,
                            502,
                            "upstream_stream_broken",
                            format!(
                                "the stream from backend `{}` broke off before it was complete",
                                this.backend
                            ),
                        ),
                    };
                    tracing::warn!(backend = %this.backend, error = %e, "upstream stream failed");
                    this.settlement.broke();
                    this.settle();
                    this.hooks.log.update(|r| r.stream_error = Some(note));
                    this.hooks.stream_end(note);
                    let (protocol, operation) = this.shape;
                    let event = stream_error_event(protocol, operation, kind, status, &message);
                    let held = this.release_held();
                    let held = held.map(|h| this.translate(h)).filter(|h| !h.is_empty());
                    return Poll::Ready(Some(Ok(match held {
                        Some(held) => {
                            this.held_out = Some(event);
                            held
                        }
                        None => event,
                    })));
                }
                Poll::Ready(None) => {
                    this.finished = true;
                    this.settle();
                    this.hooks.stream_end("completed");
                    let held = this.release_held();
                    let Some(t) = &mut this.translator else {
                        return Poll::Ready(held.map(Ok));
                    };
                    let mut out = held.map(|h| t.feed(&h)).unwrap_or_default();
                    out.extend(t.finish());
                    return Poll::Ready((!out.is_empty()).then(|| Ok(Bytes::from(out))));
                }
            }
        }
    }
}

impl StreamTap {
    /// Watches SSE `data:` lines for usage.
    fn scan(&mut self, chunk: &[u8]) {
        let Some(scanner) = &mut self.scanner else {
            return;
        };
        let mut found = None;
        let remember = &mut self.remember;
        scanner.feed(chunk, |data| {
            if let Some(r) = remember.as_ref()
                && let Some(id) = created_object_id(data)
            {
                r.object(&id);
                *remember = None;
            }
            if may_carry_usage(data)
                && let Some(u) = parse_usage(data)
            {
                found.get_or_insert_with(Usage::default).merge(u);
            }
        });
        if let Some(u) = found {
            self.usage.merge(u);
            let usage = self.usage;
            self.hooks.log.update(|r| r.usage = usage);
        }
    }

    /// The caller's bytes for (scrubbed) upstream bytes: the same bytes in passthrough.
    fn translate(&mut self, out: Bytes) -> Bytes {
        match &mut self.translator {
            Some(t) => Bytes::from(t.feed(&out)),
            None => out,
        }
    }

    /// What the scrub still holds at the end (it was no secret after all).
    fn release_held(&mut self) -> Option<Bytes> {
        self.scrub
            .as_mut()
            .map(StreamScrub::finish)
            .filter(|b| !b.is_empty())
    }

    /// Settles the usage seen so far: the credential's quota, the caller's limits (once).
    fn settle(&mut self) {
        // A stream the SSE tap cannot read (Kiro's frames) reports its usage in its events.
        if self.usage.is_empty()
            && let Some(u) = self.translator.as_ref().and_then(StreamTranslator::usage)
        {
            self.usage = u.into();
            let usage = self.usage;
            self.hooks.log.update(|r| r.usage = usage);
        }
        self.settlement.settle(&self.usage, self.spends);
    }
}

impl Drop for StreamTap {
    fn drop(&mut self) {
        self.settle();
        self.hooks.stream_end("client_disconnected");
    }
}
