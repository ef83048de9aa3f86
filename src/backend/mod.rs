//! Annotation backends.

pub mod capabilities;
pub mod http;

pub use capabilities::{BackendKind, Capabilities};
