//! annoform's CLI integration tests: one binary, each test in a hermetic environment
//! (cleared environment, temporary HOME, no colour, fixed width).

mod config_show;
mod engine;
#[path = "../support/fs.rs"]
mod fs;
mod fuzz;
mod gitops;
mod help;
mod newcomer;
mod schema;
#[path = "../support/cli.rs"]
mod support_cli;
mod validate;
mod video;

pub use support_cli::*;
