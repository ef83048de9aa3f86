//! Manifests: the YAML files that declare annotation runs.

pub mod types;

pub use types::*;
