//! Plans: the diff of desired runs against records and backends, and its renderings.

pub mod engine;
pub mod model;
pub mod outcome;
pub mod render;

pub use model::*;
