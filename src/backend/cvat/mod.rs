//! CVAT backend: the pure parts, so the HTTP client only moves JSON.
//!
//! * `labels`: the project's `labels` spec from the resolved schema, and `LabelMap`, which
//!   maps the ids the server assigns (labels, attribute specs) back to field, class and
//!   attribute.
//! * `convert`: FiftyOne label JSON ↔ CVAT `{"tags","shapes","tracks"}` for image tasks
//!   (one frame per sample), undoing the server's normalisation on the way back.
//! * `rle`: CVAT's mask RLE and FiftyOne's box-sized instance masks.
//! * `client`: the HTTP backend itself, on the shared HTTP policy.

pub mod client;
pub mod convert;
pub mod cursor;
pub mod labels;
pub mod pages;
pub mod rle;
pub mod video;

pub use client::CvatBackend;
