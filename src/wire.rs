//! The JSON and SSE shapes of the three provider protocols, shared by the inbound edge (`api`)
//! and the outbound edge (`upstream`). Nothing outside those edges sees these shapes: the rest of
//! the crate works with domain values (`Usage`, `ErrorKind`, model ids).

pub mod errors;
pub mod event_stream;
pub mod json_edit;
pub mod json_scan;
pub mod json_valid;
pub mod lanes;
pub mod models;
pub mod objects;
pub mod retry_after;
pub mod sse;
pub mod synthetic;
pub mod usage;
