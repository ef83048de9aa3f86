use std::process::ExitCode;

fn main() -> ExitCode {
    annoform::cli::main()
}
