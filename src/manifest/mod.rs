//! Manifests: the YAML files that declare annotation runs.

pub mod check;
pub mod fields;
pub mod load;
pub mod types;
pub mod validate;
pub mod yaml;

pub use types::*;
