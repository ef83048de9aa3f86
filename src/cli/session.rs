//! What the engine commands share: the validated manifests, the state store, the lock,
//! confirmation prompts and progress bars.

use super::{CommandError, Context};
use crate::config::Config;
use crate::manifest::load::{self, LoadedRun};
use crate::manifest::validate;
use crate::plan::engine::{EngineError, Progress};
use crate::state::local::LocalStore;
use crate::state::lock::{Lock, LockGuard};
use crate::workspace::Datasets;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

/// A workspace ready for the engine: config, valid manifests and the state store.
pub struct Session {
    pub config: Config,
    pub runs: Vec<LoadedRun>,
    pub store: LocalStore,
    /// The datasets validation loaded, handed on to the engine.
    pub datasets: Datasets,
}

impl Session {
    /// Load the config and the manifests; invalid manifests stop the command.
    pub fn open(ctx: &Context) -> Result<Session, CommandError> {
        let config = ctx.config()?;
        let loaded = load::load(&[config.manifest_dir()], &config.root);
        let mut datasets = Datasets::new(&config);
        let mut problems = loaded.problems;
        problems.extend(validate::validate(&loaded.runs, &config, &mut datasets));
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.position());
            ctx.ui.report(&problems);
            return Err(CommandError::invalid(format!(
                "the manifests are invalid ({} problem(s))",
                problems.len()
            ))
            .hint("run `annoform validate` for the full report"));
        }
        let store = LocalStore::new(config.root.join(&config.state_path.value));
        Ok(Session {
            runs: loaded.runs,
            store,
            config,
            datasets,
        })
    }

    /// The state store of a workspace, without reading manifests.
    pub fn store_only(ctx: &Context) -> Result<(Config, LocalStore), CommandError> {
        let config = ctx.config()?;
        let store = LocalStore::new(config.root.join(&config.state_path.value));
        Ok((config, store))
    }

    /// Take the workspace lock for a command that changes state.
    pub fn lock(&self, command: &str, wait: Duration) -> Result<LockGuard, CommandError> {
        lock(&self.config, command, wait)
    }
}

/// Take the workspace lock (`.annoform/lock` beside the state directory).
pub fn lock(config: &Config, command: &str, wait: Duration) -> Result<LockGuard, CommandError> {
    let path = crate::state::lock::default_path(&config.root.join(&config.state_path.value));
    let guard =
        Lock::acquire(&path, command, wait).map_err(|e| CommandError::failed(e.to_string()))?;
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
    let hint = match &e {
        EngineError::State(crate::state::StateError::Locked { .. }) => {
            Some("if no annoform is running, `annoform state unlock --force`")
        }
        EngineError::Backend(_) => {
            Some("nothing was lost: re-run the command to resume where it stopped")
        }
        _ => None,
    };
    let err = CommandError::failed(e.to_string());
    match hint {
        Some(h) => err.hint(h),
        None => err,
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
