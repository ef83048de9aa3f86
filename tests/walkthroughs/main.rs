//! Walkthroughs against a real Label Studio (and, for the GitOps recipe, a real PostgreSQL):
//! what a new user and a team's CI do, step by step, through the real CLI and scripts.
//!
//! `gitops`: the recipe of docs/gitops.md (examples/gitops) run as its CI would run it, pull
//! request by pull request.

mod gitops;

#[path = "../support/fs.rs"]
mod fs;
#[path = "../support/labelstudio.rs"]
mod labelstudio;
#[path = "../support/postgres.rs"]
mod pg;

use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
