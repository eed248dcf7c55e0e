//! The pipeline's one hook point: every wire-capture record of a model request — the request as
//! received, each attempt sent upstream, each refusal, the relayed answer or stream — and the
//! access-log facts of its upstream call pass through [`Hooks`]. Capture off costs one `None`
//! check per hook.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::access_log::RequestLog;
use super::context::Ctx;
use crate::capture::{CaptureScope, Direction};
use crate::upstream::routing::Route;
use crate::upstream::{HeaderLines, Refusal, Watch};

/// One request's log record and capture scope.
pub(crate) struct Hooks {
    pub(crate) log: RequestLog,
    capture: Option<CaptureScope>,
}

impl Ctx {
    /// Records the client's request as received.
    pub(crate) fn capture_inbound(&self, headers: &HeaderMap, body: &Bytes) {
        if let Some(c) = &self.capture {
            c.record(
                Direction::InboundRequest,
                Some(&self.target),
                None,
                Some(headers),
                body.clone(),
            );
        }
    }

    /// The hooks of this request's upstream call.
    pub(crate) fn hooks(&self) -> Hooks {
        Hooks {
            log: self.log.clone(),
            capture: self.capture.clone(),
        }
    }
}

impl Hooks {
    /// True when records are written (callers keep what only records need).
    pub(crate) fn capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// A stream begins.
    pub(crate) fn stream_start(&self, status: StatusCode, headers: &HeaderLines) {
        if let Some(c) = &self.capture {
            c.record(
                Direction::StreamStart,
                None,
                Some(status.as_u16()),
                Some(&headers.to_map()),
                Bytes::new(),
            );
        }
    }

    /// One chunk of a stream, as received.
    pub(crate) fn stream_chunk(&self, chunk: &Bytes) {
        if let Some(c) = &self.capture {
            c.record(Direction::StreamChunk, None, None, None, chunk.clone());
        }
    }

    /// The stream ended (`how`); later calls record nothing.
    pub(crate) fn stream_end(&mut self, how: &'static str) {
        if let Some(c) = self.capture.take() {
            c.record(
                Direction::StreamEnd,
                None,
                None,
                None,
                Bytes::from_static(how.as_bytes()),
            );
        }
    }

    /// A whole (non-streamed) answer, as received.
    pub(crate) fn answer(&self, status: StatusCode, headers: Option<&HeaderMap>, body: &Bytes) {
        if let Some(c) = &self.capture {
            c.record(
                Direction::InboundResponse,
                None,
                Some(status.as_u16()),
                headers,
                body.clone(),
            );
        }
    }
}

/// The hooks watching a provider call for `route`, on behalf of `ctx`'s caller.
pub(crate) struct Attempts<'a> {
    pub(crate) hooks: Hooks,
    pub(crate) ctx: &'a Ctx,
    pub(crate) route: &'a Route,
}

impl Watch for Attempts<'_> {
    fn sending(
        &mut self,
        credential: Option<&Arc<str>>,
        url: &reqwest::Url,
        headers: &HeaderLines,
        body: Option<&Bytes>,
    ) {
        if let Some(id) = credential {
            let id = id.clone();
            self.hooks.log.update(|r| r.credential = Some(id));
        }
        if let Some(c) = &mut self.hooks.capture {
            c.set_route(
                self.route.provider.name().clone(),
                &self.route.model,
                credential.cloned(),
            );
            c.record(
                Direction::OutboundRequest,
                Some(&crate::upstream::capture_url(url)),
                None,
                Some(&headers.to_map()),
                body.cloned().unwrap_or_default(),
            );
        }
    }

    fn answered(&mut self, status: StatusCode) {
        self.hooks
            .log
            .update(|r| r.upstream_status = Some(status.as_u16()));
    }

    fn refused(&mut self, refusal: &Refusal) {
        self.hooks
            .answer(refusal.status, Some(&refusal.headers), &refusal.body);
    }

    fn failing_over(&mut self) {
        self.hooks.log.update(|r| r.failovers += 1);
    }

    fn caller(&self) -> u64 {
        self.ctx.who()
    }
}
