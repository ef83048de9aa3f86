//! Annotation backends.

pub mod capabilities;

pub use capabilities::{BackendKind, Capabilities};
