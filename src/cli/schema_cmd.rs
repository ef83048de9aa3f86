//! `annoform schema`.

use super::CommandError;

pub const AFTER_HELP: &str = "\
Examples:
  annoform schema > schema/manifest.schema.json
  annoform schema --config

Editors use the manifest schema through a first line in each manifest:
  # yaml-language-server: $schema=../schema/manifest.schema.json";

/// `schema` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the schema of annoform.toml instead.
    #[arg(long)]
    pub config: bool,
}

/// Print the requested schema as pretty JSON.
pub fn run(args: &Args) -> Result<(), CommandError> {
    let schema = if args.config {
        crate::manifest::load::config_schema()
    } else {
        crate::manifest::load::published_schema()
    };
    super::print(&crate::manifest::load::schema_text(&schema))
}
