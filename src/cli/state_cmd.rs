//! `annoform state unlock --force`.

use super::session::Session;
use super::{CommandError, Context};

/// `state` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum StateCommand {
    /// Remove the workspace lock left by an annoform that died.
    Unlock {
        /// Required: you have checked that no annoform is running.
        #[arg(long)]
        force: bool,
    },
}

/// Run a `state` subcommand.
pub fn run(ctx: &Context, cmd: &StateCommand) -> Result<(), CommandError> {
    let StateCommand::Unlock { force } = cmd;
    if !force {
        return Err(CommandError::failed("refusing to unlock without --force")
            .hint("check that no annoform is running first"));
    }
    let (config, _) = Session::store_only(ctx)?;
    let path = crate::state::lock::default_path(&config.root.join(&config.state_path.value));
    match crate::state::lock::force_unlock(&path)
        .map_err(|e| CommandError::failed(e.to_string()))?
    {
        Some(h) => super::print(&format!(
            "Removed the lock held by pid {} on {} ({}, since {}).\n",
            h.pid, h.host, h.command, h.since
        )),
        None => super::print("The workspace was not locked.\n"),
    }
}
