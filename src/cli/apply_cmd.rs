//! `annoform apply` and `annoform destroy`.

use super::plan_cmd::{OutputArgs, print_plan};
use super::session::{Bars, Session, confirm, engine_error, failed_runs};
use super::{CommandError, Context};
use crate::plan::engine::{Engine, Goal, PlanFile};
use std::path::PathBuf;
use std::time::Duration;

pub const AFTER_HELP: &str = "\
apply computes the plan, shows it and asks for `yes` (on a terminal; elsewhere pass
--auto-approve). Each step is saved to the run record before the next starts, so an interrupted
apply resumes where it stopped on the next run, adopting what it had already created.

Examples:
  annoform apply                         plan, confirm, apply
  annoform apply --auto-approve          in CI
  annoform apply plan.json               exactly a saved plan; refused if anything changed since
  annoform apply --target fix_gt";

pub const DESTROY_HELP: &str = "\
Deletes the backend projects/tasks of the runs and forgets their records. Labels already merged
into datasets stay. Runs with lifecycle.prevent_destroy are refused.

Examples:
  annoform destroy --target old_review
  annoform destroy --auto-approve";

/// What apply and destroy share.
#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    /// Only these runs (repeatable).
    #[arg(long = "target", value_name = "KEY")]
    pub targets: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// How long to wait for another annoform holding the workspace lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub lock_timeout: u64,
}

/// `apply` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved by `annoform plan --out`.
    pub plan_file: Option<PathBuf>,
    #[command(flatten)]
    pub change: ChangeArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `destroy` arguments.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub change: ChangeArgs,
}

/// Read a plan saved by `annoform plan --out` (relative to the workspace).
pub fn read_plan_file(
    root: &std::path::Path,
    path: &std::path::Path,
) -> Result<PlanFile, CommandError> {
    let path = root.join(path);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| CommandError::failed(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| CommandError::failed(format!("{} is not a plan file: {e}", path.display())))
}

/// Plan (or load a plan), confirm and apply.
pub fn run(ctx: &Context, args: &Args) -> Result<(), CommandError> {
    let session = Session::open(ctx)?;
    let _lock = session.lock("apply", Duration::from_secs(args.change.lock_timeout))?;
    let mut engine = Engine::new(
        &session.config,
        &ctx.ui.env,
        &session.store,
        session.datasets,
    );
    engine.set_failed(session.failed);
    let (work, from_file) = match &args.plan_file {
        None => (
            engine
                .plan(&session.runs, &args.change.targets, Goal::Converge)
                .map_err(engine_error)?,
            false,
        ),
        Some(path) => {
            let saved = read_plan_file(&session.config.root, path)?;
            let targets: Vec<String> = saved.guards.iter().map(|g| g.key.clone()).collect();
            let work = engine
                .plan(&session.runs, &targets, Goal::Converge)
                .map_err(engine_error)?;
            if work.plan_file() != saved {
                return Err(CommandError::failed(format!(
                    "the saved plan {} is stale: run records, manifests or backend annotations changed since it was made",
                    path.display()
                ))
                .hint("run `annoform plan --out FILE` again and review the new plan"));
            }
            (work, true)
        }
    };
    print_plan(ctx, &work, &args.output)?;
    let planned = work.plan.clone();
    if !work.plan.changes && work.runs.iter().all(|r| r.plan.actions.is_empty()) {
        eprintln!("Nothing to apply.");
        // A download may still need its checkpoint recorded.
        engine.apply(work, &Bars::new()).map_err(engine_error)?;
        return failed_runs(&planned);
    }
    if !from_file {
        confirm(
            "Do you want to perform these actions?",
            args.change.auto_approve,
        )?;
    }
    let done = engine.apply(work, &Bars::new()).map_err(engine_error)?;
    super::print(&format!("Apply complete: {} run(s) changed.\n", done.len()))?;
    failed_runs(&planned)
}

/// Plan destruction, confirm and apply it.
pub fn destroy(ctx: &Context, args: &DestroyArgs) -> Result<(), CommandError> {
    let session = Session::open(ctx)?;
    let args = &args.change;
    let _lock = session.lock("destroy", Duration::from_secs(args.lock_timeout))?;
    let mut engine = Engine::new(
        &session.config,
        &ctx.ui.env,
        &session.store,
        session.datasets,
    );
    engine.set_failed(session.failed);
    let work = engine
        .plan(&session.runs, &args.targets, Goal::Destroy)
        .map_err(engine_error)?;
    print_plan(
        ctx,
        &work,
        &OutputArgs {
            json: false,
            markdown: false,
            verbose: true,
        },
    )?;
    let planned = work.plan.clone();
    if !work.plan.changes {
        return failed_runs(&planned);
    }
    confirm(
        "Do you really want to destroy these runs?",
        args.auto_approve,
    )?;
    let done = engine.apply(work, &Bars::new()).map_err(engine_error)?;
    super::print(&format!(
        "Destroy complete: {} run(s) destroyed.\n",
        done.len()
    ))?;
    failed_runs(&planned)
}
