//! `annoform state unlock --force` and `annoform state migrate --to local|postgres`.

use super::session::{Session, lock, open_store_named};
use super::{CommandError, Context};
use crate::state::store::migration;
use std::time::Duration;

/// `state` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Remove the workspace lock left by an annoform that died.
    Unlock {
        /// Required: you have checked that no annoform is running.
        #[arg(long)]
        force: bool,
    },
    /// Copy every run record (serial and lineage kept) from the other store into this one.
    ///
    /// Reads the `[state]` settings of both stores (`path` for local; `url`, `schema`,
    /// `workspace` for postgres) and refuses when the target already holds other records.
    /// Set `[state] store` to the target afterwards.
    Migrate {
        /// The store to copy into; the records come from the other one.
        #[arg(long, value_enum)]
        to: StoreKind,
    },
}

/// A state store kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Local,
    Postgres,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Local => "local",
            StoreKind::Postgres => "postgres",
        }
    }

    fn other(self) -> StoreKind {
        match self {
            StoreKind::Local => StoreKind::Postgres,
            StoreKind::Postgres => StoreKind::Local,
        }
    }
}

/// How long `state migrate` waits for either store's lock.
const MIGRATE_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Run a `state` subcommand.
pub fn run(ctx: &Context, cmd: &StateCommand) -> Result<(), CommandError> {
    match cmd {
        StateCommand::Unlock { force } => unlock(ctx, *force),
        StateCommand::Migrate { to } => migrate(ctx, *to),
    }
}

fn unlock(ctx: &Context, force: bool) -> Result<(), CommandError> {
    if !force {
        return Err(CommandError::failed("refusing to unlock without --force")
            .hint("check that no annoform is running first"));
    }
    let (_, store) = Session::store_only(ctx)?;
    match store.force_unlock()? {
        Some(h) => super::print(&format!(
            "Removed the lock held by pid {} on {} ({}, since {}).\n",
            h.pid, h.host, h.command, h.since
        )),
        None => super::print("The workspace was not locked.\n"),
    }
}

fn migrate(ctx: &Context, to: StoreKind) -> Result<(), CommandError> {
    let config = ctx.config()?;
    let from = to.other();
    let source = open_store_named(&config, ctx, from.name())?;
    let target = open_store_named(&config, ctx, to.name())?;
    let _source_lock = lock(source.as_ref(), "state migrate", MIGRATE_LOCK_WAIT)?;
    let _target_lock = lock(target.as_ref(), "state migrate", MIGRATE_LOCK_WAIT)?;
    let missing = migration(source.as_ref(), target.as_ref())?;
    for record in &missing {
        target.import(record)?;
    }
    let mut out = format!(
        "Copied {} record(s) from {} to {}.\n",
        missing.len(),
        source.describe(),
        target.describe()
    );
    if config.state_store.value != to.name() {
        out.push_str(&format!(
            "Set `store = \"{}\"` in the [state] table of annoform.toml to use it.\n",
            to.name()
        ));
    }
    super::print(&out)
}
