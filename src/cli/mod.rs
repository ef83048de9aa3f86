//! The command-line interface: argument definitions, dispatch and the error → exit code map.
//! Commands live one per file; domain modules never print.

mod apply_cmd;
mod completions_cmd;
mod config_cmd;
mod import_cmd;
mod init_cmd;
mod plan_cmd;
mod runs_cmd;
mod schema_cmd;
mod session;
mod show_cmd;
mod state_cmd;
mod status_cmd;
mod validate_cmd;

use crate::config::{Config, Env, Flags};
use crate::diag::{self, Problem};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const ABOUT: &str = "Declarative annotation runs for FiftyOne datasets: describe runs in YAML, \
plan them against CVAT, Label Studio or V7, and apply the plan.";

const AFTER_HELP: &str = "\
Examples:
  annoform init                     scaffold annoform.toml and manifests/
  annoform validate                 check every manifest under manifests/
  annoform plan                     what apply would do
  annoform apply                    do it (asks for `yes`; --auto-approve in CI)
  annoform status                   task progress on the backends
  annoform config show              every setting, its value and where it came from

Exit codes: 0 success, 1 error, 2 changes present (only plan --detailed-exitcode).
Documentation: docs/manifest.md (manifest reference), README.md.";

/// annoform's command line.
#[derive(Debug, Parser)]
#[command(name = "annoform", version, about = ABOUT, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// Run as if started in DIR (the workspace holding annoform.toml).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Manifest directory or file (default: `manifests` from annoform.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub manifests: Option<PathBuf>,
    /// Concurrent requests per backend (default 8).
    #[arg(long, global = true, value_name = "N")]
    pub parallelism: Option<usize>,
    /// When to colour output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

/// Colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    Always,
    Never,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a workspace: annoform.toml, manifests/, schema/ and .gitignore.
    #[command(after_help = init_cmd::AFTER_HELP)]
    Init(init_cmd::Args),
    /// Check manifests and annoform.toml; report every problem at once.
    #[command(after_help = validate_cmd::AFTER_HELP)]
    Validate(validate_cmd::Args),
    /// Show what apply would do: create, extend, update, replace, merge, destroy, drift.
    #[command(after_help = plan_cmd::AFTER_HELP)]
    Plan(plan_cmd::Args),
    /// Carry out the plan (or a saved plan file).
    #[command(after_help = apply_cmd::AFTER_HELP)]
    Apply(apply_cmd::Args),
    /// Show a saved plan, or the recorded runs.
    Show(show_cmd::Args),
    /// Delete runs' backend objects and forget their records (labels stay).
    #[command(after_help = apply_cmd::DESTROY_HELP)]
    Destroy(apply_cmd::DestroyArgs),
    /// Task status of recorded runs, as the backends report it.
    Status(status_cmd::Args),
    /// List, inspect, rename or forget run records.
    #[command(subcommand)]
    Runs(runs_cmd::RunsCommand),
    /// Adopt existing backend projects and tasks as runs.
    Import(import_cmd::Args),
    /// Manage the state store.
    #[command(subcommand)]
    State(state_cmd::StateCommand),
    /// Inspect the workspace configuration.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Print the manifest JSON Schema (or annoform.toml's, with --config).
    #[command(after_help = schema_cmd::AFTER_HELP)]
    Schema(schema_cmd::Args),
    /// Print the shell completion script for bash, zsh or fish.
    #[command(after_help = completions_cmd::COMPLETIONS_HELP)]
    Completions(completions_cmd::CompletionsArgs),
    /// Print the man page (or write every page with --out-dir).
    #[command(after_help = completions_cmd::MAN_HELP)]
    Man(completions_cmd::ManArgs),
}

/// What went wrong, which picks the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad command-line usage.
    Usage,
    /// Invalid manifests or configuration (already reported as problems).
    Invalid,
    /// Anything else that stopped the command.
    Failed,
}

/// A command's failure: a kind, a message and hints printed under it.
#[derive(Debug)]
pub struct CommandError {
    pub kind: ErrorKind,
    pub message: String,
    pub hints: Vec<String>,
}

impl CommandError {
    /// A failure with a message.
    pub fn failed(message: impl Into<String>) -> CommandError {
        CommandError {
            kind: ErrorKind::Failed,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// Problems were reported; the message is the summary line.
    pub fn invalid(message: impl Into<String>) -> CommandError {
        CommandError {
            kind: ErrorKind::Invalid,
            message: message.into(),
            hints: Vec::new(),
        }
    }

    /// Add a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> CommandError {
        self.hints.push(hint.into());
        self
    }

    fn exit_code(&self) -> ExitCode {
        // 2 is reserved for `plan --detailed-exitcode` ("changes present").
        ExitCode::from(1)
    }
}

/// Terminal facts every command needs to print.
pub struct Ui {
    pub color: bool,
    pub width: usize,
    pub env: Env,
}

impl Ui {
    fn new(choice: ColorChoice, env: Env) -> Ui {
        let no_color = env.var("NO_COLOR").is_some();
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => !no_color && std::io::stderr().is_terminal(),
        };
        let width = env
            .var("COLUMNS")
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        Ui { color, width, env }
    }

    /// Print problems to stderr in the human format.
    pub fn report(&self, problems: &[Problem]) {
        eprint!(
            "{}",
            diag::render(problems, diag::Format::Human, self.color, self.width)
        );
    }
}

/// Shared context: the parsed globals and the resolved workspace.
pub struct Context {
    pub cli_dir: PathBuf,
    pub flags: Flags,
    pub ui: Ui,
}

impl Context {
    /// Load the workspace configuration, reporting its problems.
    pub fn config(&self) -> Result<Config, CommandError> {
        Config::load(&self.cli_dir, &self.flags, &self.ui.env).map_err(|problems| {
            self.ui.report(&problems);
            CommandError::invalid(format!(
                "{} is invalid ({} problem(s))",
                crate::config::FILE_NAME,
                problems.len()
            ))
        })
    }
}

/// Parse the command line, run the command, map the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(1),
            };
        }
    };
    let ui = Ui::new(cli.color, Env::from_process());
    let ctx = Context {
        cli_dir: cli.dir.clone().unwrap_or_else(|| PathBuf::from(".")),
        flags: Flags {
            manifests: cli.manifests.clone(),
            parallelism: cli.parallelism,
        },
        ui,
    };
    let result = match cli.command {
        Command::Init(args) => init_cmd::run(&ctx, &args),
        Command::Validate(args) => validate_cmd::run(&ctx, &args),
        Command::Plan(args) => match plan_cmd::run(&ctx, &args) {
            Ok(true) if args.detailed_exitcode => return ExitCode::from(2),
            other => other.map(|_| ()),
        },
        Command::Apply(args) => apply_cmd::run(&ctx, &args),
        Command::Show(args) => show_cmd::run(&ctx, &args),
        Command::Destroy(args) => apply_cmd::destroy(&ctx, &args),
        Command::Status(args) => status_cmd::run(&ctx, &args),
        Command::Runs(cmd) => runs_cmd::run(&ctx, &cmd),
        Command::Import(args) => import_cmd::run(&ctx, &args),
        Command::State(cmd) => state_cmd::run(&ctx, &cmd),
        Command::Config(cmd) => config_cmd::run(&ctx, &cmd),
        Command::Schema(args) => schema_cmd::run(&args),
        Command::Completions(args) => completions_cmd::completions(&args),
        Command::Man(args) => completions_cmd::man(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            // Messages may quote a server's answer: no terminal control gets through.
            let _ = writeln!(err, "error: {}", crate::escape::controls(&e.message));
            for h in &e.hints {
                let _ = writeln!(err, "hint: {}", crate::escape::controls(h));
            }
            e.exit_code()
        }
    }
}

/// Write to stdout, treating a closed pipe (`annoform schema | head`) as success.
pub fn print(text: &str) -> Result<(), CommandError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CommandError::failed(format!("cannot write output: {e}"))),
    }
}
