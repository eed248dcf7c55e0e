//! The management API's extractors: axum's `Query`, `Path` and `Bytes`, refusing what they
//! cannot read (a repeated query parameter, a path segment that is not UTF-8, a body over
//! `server.max_body_bytes`) with the API's JSON problem and the rejection's status — 400, or
//! 413 for a body too large — where axum answers in plain text, outside the documented shape.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::management::problem;

/// The query string, deserialized.
pub(super) struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| problem(e.status(), &e.body_text()))
    }
}

/// The path parameters, deserialized.
pub(super) struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| problem(e.status(), &e.body_text()))
    }
}

/// The whole request body (the handler parses it and says what is wrong with it).
pub(super) struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| problem(e.status(), &e.body_text()))
    }
}
