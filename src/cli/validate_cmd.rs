//! `annoform validate`.

use super::{CommandError, Context};
use crate::diag::{self, Format};
use crate::manifest::{load, validate};
use std::path::PathBuf;

pub const AFTER_HELP: &str = "\
Every problem is reported at once, each with file:line:column, the offending line and a hint.

Examples:
  annoform validate
  annoform validate manifests/review.yaml manifests/extra/
  annoform validate --format short      one line per problem, for editors and grep
  annoform validate --format json       {\"valid\": bool, \"problems\": [...]}, for CI

Exit codes: 0 valid, 1 invalid (or unreadable).";

/// `validate` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories (default: the workspace's manifest directory).
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Validate the manifests and report.
pub fn run(ctx: &Context, args: &Args) -> Result<(), CommandError> {
    let config = ctx.config()?;
    // Like `git -C`, relative paths are relative to the workspace.
    let paths = if args.paths.is_empty() {
        vec![config.manifest_dir()]
    } else {
        args.paths.iter().map(|p| config.root.join(p)).collect()
    };
    let loaded = load::load(&paths, &config.root);
    let mut problems = loaded.problems;
    // Validation works offline: a store it cannot open (a database out of reach) only
    // means no recorded schemas to check against.
    let mut datasets = crate::workspace::Datasets::for_runs(&config, &loaded.runs);
    let recorded = super::session::open_store(&config, ctx)
        .map(|store| super::session::recorded_schemas(store.as_ref(), |r| datasets.add_record(r)))
        .unwrap_or_default();
    problems.extend(validate::validate_with(
        &loaded.runs,
        &config,
        &mut datasets,
        &recorded,
    ));
    problems.sort_by_key(|p| p.position());

    match args.format {
        Format::Json => super::print(&diag::render(&problems, Format::Json, false, ctx.ui.width))?,
        Format::Short => eprint!(
            "{}",
            diag::render(&problems, Format::Short, false, ctx.ui.width)
        ),
        Format::Human => ctx.ui.report(&problems),
    }
    if problems.is_empty() {
        if args.format != Format::Json {
            super::print(&format!(
                "{} run(s) in {} file(s) are valid\n",
                loaded.runs.len(),
                loaded.files
            ))?;
            if loaded.files == 0 && args.paths.is_empty() {
                eprintln!("{}", no_runs_note(&config));
            }
        }
        Ok(())
    } else {
        let files: std::collections::BTreeSet<_> = problems
            .iter()
            .filter_map(|p| p.position().map(|p| p.0))
            .collect();
        Err(CommandError::invalid(format!(
            "{} problem(s) in {} file(s)",
            problems.len(),
            files.len().max(1)
        )))
    }
}

/// What to do in a workspace with no manifests yet.
fn no_runs_note(config: &crate::config::Config) -> String {
    let example = super::init_cmd::EXAMPLE_NAME;
    if config.root.join(example).exists() {
        format!(
            "note: no runs yet: {example} is an example; follow the steps at its top to make it a run"
        )
    } else {
        format!(
            "note: no runs yet: a run is a `kind: AnnotationRun` document in a *.yaml file under {} (docs/manifest.md)",
            config.manifests.value.display()
        )
    }
}
