//! `annoform show`: a saved plan, or the runs the state holds.

use super::plan_cmd::OutputArgs;
use super::session::Session;
use super::{CommandError, Context};
use crate::plan::engine::Work;
use std::path::PathBuf;

/// `show` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved by `annoform plan --out`; without it, the recorded runs.
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Show a saved plan or the state.
pub fn run(ctx: &Context, args: &Args) -> Result<(), CommandError> {
    let (config, store) = Session::store_only(ctx)?;
    match &args.plan_file {
        Some(path) => {
            let saved = super::apply_cmd::read_plan_file(&config.root, path)?;
            super::plan_cmd::print_plan(
                ctx,
                &Work {
                    plan: saved.plan,
                    runs: Vec::new(),
                },
                &args.output,
            )
        }
        None => {
            let mut records = Vec::new();
            for (dataset, key) in store
                .list()
                .map_err(|e| CommandError::failed(e.to_string()))?
            {
                if let Some(r) = store
                    .get(&dataset, &key)
                    .map_err(|e| CommandError::failed(e.to_string()))?
                {
                    records.push(r);
                }
            }
            if args.output.json {
                return super::print(
                    &(serde_json::to_string_pretty(&records).unwrap_or_default() + "\n"),
                );
            }
            super::print(&super::runs_cmd::table(&records))
        }
    }
}
