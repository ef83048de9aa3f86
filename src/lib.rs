//! annoform: declarative annotation runs (plan and apply) for FiftyOne-format datasets.

pub mod backend;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod diag;
pub mod escape;
pub mod manifest;
pub mod merge;
pub mod plan;
pub mod schema;
pub mod secret;
pub mod state;
pub mod tempfiles;
pub mod workspace;
