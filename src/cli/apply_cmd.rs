//! `annoform apply` and `annoform destroy`.

use super::plan_cmd::{OutputArgs, print_plan};
use super::session::{Bars, Session, confirm, engine_error, failed_runs};
use super::{CommandError, Context};
use crate::manifest::load::LoadedRun;
use crate::plan::engine::{Connection, Engine, Goal, PlanFile};
use crate::plan::outcome::{Command, Outcome, RunOutcome};
use crate::plan::render::outcome;
use crate::state::StateStore;
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
into datasets stay. Runs with lifecycle.prevent_destroy are refused: the manifest decides when
it is present; a run whose manifest is gone keeps the flag of its last apply.

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
    /// Open the editor of each run applied (the first task, or the project) with the
    /// system's opener, as FiftyOne's `launch_editor` does.
    #[arg(long)]
    pub open: bool,
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
        session.store.as_ref(),
        session.datasets,
    );
    engine.set_failed(session.failed);
    engine.set_resolved(session.resolved);
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
        engine.keep_cursors(work).map_err(engine_error)?;
        eprintln!("{}", outcome::NOTHING_TO_APPLY);
        if args.output.json {
            super::print(&outcome::json(&Outcome {
                command: Command::Apply,
                runs: Vec::new(),
            }))?;
        }
        return failed_runs(&planned);
    }
    if !from_file {
        confirm(
            "Do you want to perform these actions?",
            args.change.auto_approve,
        )?;
    }
    let mut runs = engine.apply(work, &Bars::new()).map_err(engine_error)?;
    for run in runs.iter_mut().filter(|r| r.remains()) {
        add_links(session.store.as_ref(), &session.runs, &mut engine, run)?;
        if args.open
            && let Some(url) = run.links.as_ref().and_then(|l| l.editor())
        {
            open_url(url)?;
        }
    }
    let done = Outcome {
        command: Command::Apply,
        runs,
    };
    super::print(&if args.output.json {
        outcome::json(&done)
    } else {
        outcome::text(&done)
    })?;
    failed_runs(&planned)
}

/// Look up where an applied run lives in its backend's UI, and whether its manifest asks
/// for the editor. The run is applied: links that cannot be had are noted, not a failure.
fn add_links(
    store: &dyn StateStore,
    manifests: &[LoadedRun],
    engine: &mut Engine<'_>,
    run: &mut RunOutcome,
) -> Result<(), CommandError> {
    let Some(record) = store
        .get(&run.dataset, &run.key)
        .map_err(|e| CommandError::failed(e.to_string()))?
    else {
        return Ok(());
    };
    let conn = Connection::of_run(&record, manifests);
    match engine.links(&record, &conn) {
        Ok(l) => run.links = Some(l),
        Err(e) => run.links_error = Some(e.to_string()),
    }
    run.launch_editor = manifests
        .iter()
        .any(|r| r.run.dataset == run.dataset && r.run.key.0 == run.key && r.run.launch_editor);
    Ok(())
}

/// Open a URL with the platform's opener, without waiting for it.
fn open_url(url: &str) -> Result<(), CommandError> {
    let (program, args): (&str, &[&str]) = if cfg!(target_os = "macos") {
        ("open", &[])
    } else if cfg!(windows) {
        ("cmd", &["/C", "start", ""])
    } else {
        ("xdg-open", &[])
    };
    std::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| CommandError::failed(format!("cannot open {url} with `{program}`: {e}")))
}

/// Plan destruction, confirm and apply it.
pub fn destroy(ctx: &Context, args: &DestroyArgs) -> Result<(), CommandError> {
    let session = Session::open(ctx)?;
    let args = &args.change;
    let _lock = session.lock("destroy", Duration::from_secs(args.lock_timeout))?;
    let mut engine = Engine::new(
        &session.config,
        &ctx.ui.env,
        session.store.as_ref(),
        session.datasets,
    );
    engine.set_failed(session.failed);
    engine.set_resolved(session.resolved);
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
    let runs = engine.apply(work, &Bars::new()).map_err(engine_error)?;
    super::print(&outcome::text(&Outcome {
        command: Command::Destroy,
        runs,
    }))?;
    failed_runs(&planned)
}
