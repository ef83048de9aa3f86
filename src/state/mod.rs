//! Run state: records and the stores that keep them.

pub mod record;

pub use record::*;
