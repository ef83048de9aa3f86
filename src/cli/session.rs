//! What the engine commands share: the validated manifests, the state store, the lock,
//! confirmation prompts and progress bars.

use super::{CommandError, Context};
use crate::config::Config;
use crate::diag::Problem;
use crate::manifest::load::{self, LoadedRun};
use crate::manifest::validate;
use crate::plan::engine::{EngineError, Progress, state_hint};
use crate::schema::{Recorded, RecordedSchemas};
use crate::state::{HeldLock, StateError, StateStore};
use crate::workspace::Datasets;
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// A workspace ready for the engine: config, valid manifests and the state store.
pub struct Session {
    pub config: Config,
    pub runs: Vec<LoadedRun>,
    pub store: Box<dyn StateStore>,
    /// The datasets validation loaded, handed on to the engine.
    pub datasets: Datasets,
    /// Runs (dataset, key) whose manifests do not resolve against their datasets, with why.
    pub failed: HashMap<(String, String), String>,
    /// What validation resolved, handed on to the engine.
    pub resolved: HashMap<(String, String), validate::Resolved>,
}

/// The schemas recorded for the runs of a state store (unreadable records are left to the
/// commands that read them); `see` is shown each record.
pub fn recorded_schemas(
    store: &dyn StateStore,
    mut see: impl FnMut(&crate::state::RunRecord),
) -> RecordedSchemas {
    store
        .list()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(dataset, key)| {
            let r = store.get(&dataset, &key).ok()??;
            see(&r);
            let recorded = Recorded {
                schema: r.schema,
                resolved_from: r.resolved_from,
            };
            Some(((dataset, key), recorded))
        })
        .collect()
}

/// Report the runs a plan could not plan; an error (exit 1) when there are any.
pub fn failed_runs(plan: &crate::plan::model::Plan) -> Result<(), CommandError> {
    let failed: Vec<_> = plan.failed().collect();
    if failed.is_empty() {
        return Ok(());
    }
    for r in &failed {
        eprintln!(
            "error: run `{}` (dataset `{}`) was not planned: {}",
            r.key,
            r.dataset,
            r.error.as_deref().unwrap_or_default()
        );
        if let Some(h) = &r.hint {
            eprintln!("hint: {}", crate::escape::controls(h));
        }
    }
    Err(CommandError::failed(format!(
        "{} run(s) could not be planned; the others were",
        failed.len()
    )))
}

impl Session {
    /// Load the config and the manifests; invalid manifests stop the command.
    pub fn open(ctx: &Context) -> Result<Session, CommandError> {
        let config = ctx.config()?;
        let loaded = load::load(&[config.manifest_dir()], &config.root);
        // The command reads of each dataset what its runs and their records need.
        let mut datasets = Datasets::for_runs(&config, &loaded.runs);
        let store = open_store(&config, ctx)?;
        let recorded = recorded_schemas(store.as_ref(), |r| datasets.add_record(r));
        let v = validate::validate_split(&loaded.runs, &config, &mut datasets, &recorded);
        let mut problems = loaded.problems;
        problems.extend(v.problems);
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.position());
            ctx.ui.report(&problems);
            // The report above is the whole of `annoform validate`'s: no hint to run it.
            return Err(CommandError::invalid(format!(
                "the manifests are invalid ({} problem(s))",
                problems.len()
            )));
        }
        // A run that does not resolve against its dataset stops only itself.
        let mut per_run: Vec<Problem> = v.per_run.iter().map(|(_, p)| p.clone()).collect();
        per_run.sort_by_key(|p| p.position());
        ctx.ui.report(&per_run);
        let mut failed: HashMap<(String, String), String> = HashMap::new();
        for (run, p) in v.per_run {
            let e = failed.entry(run).or_default();
            if !e.is_empty() {
                e.push_str("; ");
            }
            e.push_str(&p.message);
        }
        Ok(Session {
            runs: loaded.runs,
            store,
            config,
            datasets,
            failed,
            resolved: v.resolved,
        })
    }

    /// The state store of a workspace, without reading manifests.
    pub fn store_only(ctx: &Context) -> Result<(Config, Box<dyn StateStore>), CommandError> {
        let config = ctx.config()?;
        let store = open_store(&config, ctx)?;
        Ok((config, store))
    }

    /// Take the workspace lock for a command that changes state.
    pub fn lock(&self, command: &str, wait: Duration) -> Result<Box<dyn HeldLock>, CommandError> {
        lock(self.store.as_ref(), command, wait)
    }
}

/// Open the state store the workspace config names.
pub fn open_store(config: &Config, ctx: &Context) -> Result<Box<dyn StateStore>, CommandError> {
    open_store_named(config, ctx, &config.state_store.value)
}

/// Open the state store `store` (`local` or `postgres`) with the workspace's settings.
pub fn open_store_named(
    config: &Config,
    ctx: &Context,
    store: &str,
) -> Result<Box<dyn StateStore>, CommandError> {
    let settings = config.store_settings(store, &ctx.ui.env)?;
    Ok(crate::state::store::open(&settings)?)
}

/// Take the workspace lock of a state store.
pub fn lock(
    store: &dyn StateStore,
    command: &str,
    wait: Duration,
) -> Result<Box<dyn HeldLock>, CommandError> {
    let guard = store.lock_with(command, wait, &mut |holder| match holder {
        Some(h) => eprintln!("waiting for the state lock held by {h}…"),
        None => eprintln!("waiting for the state lock (its holder is being recorded)…"),
    })?;
    if let Some(h) = guard.took_over() {
        eprintln!(
            "note: took over a stale lock left by pid {} ({})",
            h.pid, h.command
        );
    }
    Ok(guard)
}

/// Engine errors become command errors with a hint where one helps.
pub fn engine_error(e: EngineError) -> CommandError {
    CommandError::from(e)
}

impl From<EngineError> for CommandError {
    /// Only a failure that may pass on its own is worth re-running; the others say what to
    /// change.
    fn from(e: EngineError) -> CommandError {
        e.hints()
            .into_iter()
            .fold(CommandError::failed(e.to_string()), CommandError::hint)
    }
}

impl From<StateError> for CommandError {
    fn from(e: StateError) -> CommandError {
        let hint = state_hint(&e);
        let err = CommandError::failed(e.to_string());
        match hint {
            Some(h) => err.hint(h),
            None => err,
        }
    }
}

/// Ask for `yes` on the terminal; without a terminal, refuse (never guess).
pub fn confirm(question: &str, auto_approve: bool) -> Result<(), CommandError> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CommandError::failed("no terminal to ask for confirmation")
            .hint("pass --auto-approve to apply without a prompt"));
    }
    eprint!("{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CommandError::failed(format!("cannot read the answer: {e}")))?;
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(CommandError::failed("cancelled: nothing was changed"))
    }
}

/// Progress bars on stderr, shown only on a terminal.
pub struct Bars {
    bar: indicatif::ProgressBar,
}

impl Bars {
    /// Bars that draw only when stderr is a terminal.
    pub fn new() -> Bars {
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        Bars { bar }
    }
}

impl Progress for Bars {
    fn start(&self, what: &str, total: u64) {
        self.bar.reset();
        self.bar.set_length(total);
        self.bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:>12} [{bar:30}] {pos}/{len} samples ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_message(what.to_string());
    }

    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
