//! The command-line interface.

use std::process::ExitCode;

/// Parse the command line, run the command, map the outcome to an exit code.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
