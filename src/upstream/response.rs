//! An upstream answer as the gateway reads it — status, headers, and the body chunk by chunk —
//! whichever client fetched it ([`super::h1`], [`super::h2`], or reqwest).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::StatusCode;
use http_body::Body as _;

use super::HeaderLines;
use super::UpstreamError;
use super::budget::Claim;
use super::h1::{H1Answer, H1Body};
use super::h2::H2Body;

/// Status and headers of an upstream answer, and its body still to be read.
pub struct UpstreamResponse {
    status: StatusCode,
    headers: HeaderLines,
    body: UpstreamBody,
}

/// The body of an upstream answer. Dropping it before its end abandons the answer (and, for
/// HTTP/1.1, closes the connection).
pub struct UpstreamBody {
    inner: Inner,
    backend: Arc<str>,
}

enum Inner {
    Reqwest(reqwest::Body),
    H1(H1Body),
    H2(H2Body),
}

impl UpstreamResponse {
    pub(crate) fn from_reqwest(backend: &Arc<str>, resp: reqwest::Response) -> Self {
        let (parts, body) = http::Response::from(resp).into_parts();
        Self {
            status: parts.status,
            headers: HeaderLines::from(parts.headers),
            body: UpstreamBody {
                inner: Inner::Reqwest(body),
                backend: backend.clone(),
            },
        }
    }

    pub(crate) fn from_h1(backend: &Arc<str>, answer: H1Answer) -> Self {
        Self {
            status: answer.status,
            headers: answer.headers,
            body: UpstreamBody {
                inner: Inner::H1(answer.body),
                backend: backend.clone(),
            },
        }
    }

    pub(crate) fn from_h2(backend: &Arc<str>, resp: http::Response<H2Body>) -> Self {
        let (parts, body) = resp.into_parts();
        Self {
            status: parts.status,
            headers: HeaderLines::from(parts.headers),
            body: UpstreamBody {
                inner: Inner::H2(body),
                backend: backend.clone(),
            },
        }
    }

    /// The upstream status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The upstream headers.
    pub fn headers(&self) -> &HeaderLines {
        &self.headers
    }

    /// The announced body length, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(&http::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// The next chunk of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        poll_fn(|cx| self.body.poll_chunk(cx)).await.transpose()
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes, UpstreamError> {
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    /// The whole body, or [`UpstreamError::TooLarge`] once it grows past `limit` bytes.
    pub async fn read_limited(self, limit: usize) -> Result<Bytes, UpstreamError> {
        self.read_whole(limit, None).await
    }

    /// [`Self::read_limited`], the memory it takes covered by `claim` on the process's budget
    /// for buffered answers ([`UpstreamError::NoRoom`] when the budget is spent).
    pub async fn read_claimed(
        self,
        limit: usize,
        claim: &mut Claim,
    ) -> Result<Bytes, UpstreamError> {
        self.read_whole(limit, Some(claim)).await
    }

    async fn read_whole(
        mut self,
        limit: usize,
        mut claim: Option<&mut Claim>,
    ) -> Result<Bytes, UpstreamError> {
        let mut cover = |bytes: usize, backend: &Arc<str>| {
            let room = claim.as_deref_mut().is_none_or(|c| c.cover(bytes));
            if room {
                Ok(())
            } else {
                Err(UpstreamError::NoRoom {
                    backend: backend.clone(),
                })
            }
        };
        let capacity = self
            .content_length()
            .map_or(8 * 1024, |n| usize::try_from(n).unwrap_or(limit).min(limit));
        cover(capacity, &self.body.backend)?;
        // Most answers arrive in one chunk: it is the body as it is, without a copy.
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        if first.len() > limit {
            return Err(UpstreamError::TooLarge {
                backend: self.body.backend.clone(),
                limit,
            });
        }
        cover(first.len(), &self.body.backend)?;
        let Some(second) = self.chunk().await? else {
            return Ok(first);
        };
        let mut buf = bytes::BytesMut::with_capacity(capacity.max(first.len()));
        buf.extend_from_slice(&first);
        let mut next = Some(second);
        while let Some(chunk) = next {
            if buf.len() + chunk.len() > limit {
                return Err(UpstreamError::TooLarge {
                    backend: self.body.backend.clone(),
                    limit,
                });
            }
            // What the buffer will allocate (it doubles when it grows), not just what it holds.
            let needed = buf.len() + chunk.len();
            if needed > buf.capacity() {
                cover(needed.max(buf.capacity() * 2), &self.body.backend)?;
            }
            buf.extend_from_slice(&chunk);
            cover(buf.capacity(), &self.body.backend)?;
            next = self.chunk().await?;
        }
        Ok(buf.freeze())
    }

    /// Moves the headers out (the status and body stay).
    pub(crate) fn take_headers(&mut self) -> HeaderLines {
        std::mem::take(&mut self.headers)
    }

    /// The body alone, to be relayed as it arrives.
    pub fn into_body(self) -> UpstreamBody {
        self.body
    }
}

impl UpstreamBody {
    /// The next chunk, `None` at the end; failures (including the idle-read timeout) are
    /// classified as [`UpstreamError`]s.
    pub fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, UpstreamError>>> {
        match &mut self.inner {
            Inner::H1(body) => body.poll_chunk(cx),
            Inner::H2(body) => body.poll_chunk(cx),
            Inner::Reqwest(body) => loop {
                return match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Ready(Some(Err(e))) => {
                        Poll::Ready(Some(Err(UpstreamError::from_reqwest(&self.backend, e))))
                    }
                    Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) if !data.is_empty() => Poll::Ready(Some(Ok(data))),
                        _ => continue,
                    },
                };
            },
        }
    }
}
