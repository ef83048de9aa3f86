//! `annoform completions` and `annoform man`: generated from the clap definitions, so they
//! never lag behind the commands.

use super::{Cli, CommandError};
use clap::CommandFactory;
use std::path::PathBuf;

/// Shells completions are generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `completions` arguments.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub const COMPLETIONS_HELP: &str = "\
Examples:
  annoform completions bash > ~/.local/share/bash-completion/completions/annoform
  annoform completions zsh > \"${fpath[1]}/_annoform\"
  annoform completions fish > ~/.config/fish/completions/annoform.fish";

/// `man` arguments.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write annoform.1 and one page per subcommand (annoform-plan.1, …) into DIR instead of
    /// printing annoform(1).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub const MAN_HELP: &str = "\
Examples:
  annoform man | man -l -
  annoform man --out-dir /usr/local/share/man/man1";

/// Print the completion script for a shell.
pub fn completions(args: &CompletionsArgs) -> Result<(), CommandError> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "annoform", &mut out);
    super::print(&String::from_utf8_lossy(&out))
}

/// Print annoform(1), or write every page into a directory.
pub fn man(args: &ManArgs) -> Result<(), CommandError> {
    let cmd = Cli::command();
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(cmd, dir))
            .map_err(|e| CommandError::failed(format!("cannot write {}: {e}", dir.display())))?;
        return super::print(&format!("Wrote the man pages to {}.\n", dir.display()));
    }
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .map_err(|e| CommandError::failed(format!("cannot render the man page: {e}")))?;
    super::print(&String::from_utf8_lossy(&out))
}
