//! `annoform plan`.

use super::session::{Session, engine_error};
use super::{CommandError, Context};
use crate::plan::engine::{Engine, Goal, Work};
use crate::plan::render::{json, markdown, text};
use std::path::PathBuf;

pub const AFTER_HELP: &str = "\
Symbols: + create/extend, ~ update in place, -/+ replace, <= merge annotations, - destroy,
! drift (backend objects changed outside annoform).

Examples:
  annoform plan                          what apply would do, for every run
  annoform plan --target fix_gt -v       one run, with per-sample detail
  annoform plan --out plan.json          save the plan; `annoform apply plan.json` applies exactly it
  annoform plan --json                   the versioned JSON contract, for CI
  annoform plan --markdown > comment.md  a pull-request comment
  annoform plan --comments-dir out       also the comments, one file each: out/1.md, out/2.md, …
  annoform plan --detailed-exitcode      exit 0: no changes, 2: changes, 1: error";

/// How a plan is shown.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Print the plan as JSON (format_version 2, described in docs/plan-json.md).
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the plan as Markdown for a pull-request comment (split under 65,000 characters).
    #[arg(long)]
    pub markdown: bool,
    /// Show every rejected change and the details of every run.
    #[arg(short, long)]
    pub verbose: bool,
}

/// `plan` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these runs (repeatable).
    #[arg(long = "target", value_name = "KEY")]
    pub targets: Vec<String>,
    /// Save the plan to FILE for `annoform apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when the plan has changes, 0 when it has none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also write the plan as pull-request comments into DIR, one Markdown file per comment
    /// (1.md, 2.md, …; each under 65,000 characters), for CI to post in order.
    #[arg(long, value_name = "DIR")]
    pub comments_dir: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Compute, print and optionally save the plan; returns whether it has changes.
pub fn run(ctx: &Context, args: &Args) -> Result<bool, CommandError> {
    let session = Session::open(ctx)?;
    let mut engine = Engine::new(
        &session.config,
        &ctx.ui.env,
        session.store.as_ref(),
        session.datasets,
    );
    engine.set_failed(session.failed);
    engine.set_resolved(session.resolved);
    engine.keep_downloads();
    let work = engine
        .plan(&session.runs, &args.targets, Goal::Converge)
        .map_err(engine_error)?;
    print_plan(ctx, &work, &args.output)?;
    warn_missing_secrets(&session.config, &work.plan);
    if let Some(path) = &args.out {
        let path = session.config.root.join(path);
        let text = serde_json::to_string_pretty(&work.plan_file()).unwrap_or_default() + "\n";
        std::fs::write(&path, text)
            .map_err(|e| CommandError::failed(format!("cannot write {}: {e}", path.display())))?;
        eprintln!(
            "Saved the plan to {}. To perform exactly these actions, run: annoform apply {}",
            path.display(),
            path.display()
        );
    }
    if let Some(dir) = &args.comments_dir {
        write_comments(&session.config.root.join(dir), &work.plan)?;
    }
    super::session::failed_runs(&work.plan)?;
    Ok(work.plan.changes)
}

/// The most a pull-request comment may hold (GitHub's limit is 65,536 characters).
const COMMENT_CHARS: usize = 65_000;

/// Write the plan's comments as `dir/1.md`, `dir/2.md`, …, removing numbered files a previous
/// plan left beyond them, so the directory holds exactly this plan's comments.
fn write_comments(
    dir: &std::path::Path,
    plan: &crate::plan::model::Plan,
) -> Result<(), CommandError> {
    let fail =
        |e: std::io::Error| CommandError::failed(format!("cannot write {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let comments = markdown::render(plan, COMMENT_CHARS);
    for (i, body) in comments.iter().enumerate() {
        std::fs::write(dir.join(format!("{}.md", i + 1)), body).map_err(fail)?;
    }
    for entry in std::fs::read_dir(dir).map_err(fail)?.flatten() {
        let name = entry.file_name();
        let stale = name
            .to_str()
            .and_then(|n| n.strip_suffix(".md"))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n > comments.len());
        if stale {
            std::fs::remove_file(entry.path()).map_err(fail)?;
        }
    }
    Ok(())
}

/// Warn (stderr) about each backend that runs with changes will use and whose secrets refer
/// to unset variables: the plan is computed without them, apply would fail on them.
fn warn_missing_secrets(config: &crate::config::Config, plan: &crate::plan::model::Plan) {
    let needed: std::collections::BTreeSet<&str> = plan
        .runs
        .iter()
        .filter(|r| !r.actions.is_empty())
        .map(|r| r.backend.as_str())
        .collect();
    for name in needed {
        let Some(missing) = config
            .backend(name)
            .map(|b| b.missing_secrets(name))
            .filter(|m| !m.is_empty())
        else {
            continue;
        };
        eprintln!(
            "warning: apply needs backend `{name}`, whose secrets are not set: {}",
            missing.join(", ")
        );
    }
}

/// Print a plan in the requested format.
pub fn print_plan(ctx: &Context, work: &Work, output: &OutputArgs) -> Result<(), CommandError> {
    if output.json {
        return super::print(&json::render(&work.plan));
    }
    if output.markdown {
        return super::print(&markdown::render(&work.plan, COMMENT_CHARS).join("\n\n---\n\n"));
    }
    let opts = text::TextOptions {
        color: ctx.ui.color,
        verbose: output.verbose,
        width: ctx.ui.width,
    };
    super::print(&text::render(&work.plan, &opts))
}
