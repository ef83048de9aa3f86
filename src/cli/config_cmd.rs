//! `annoform config show`.

use super::{CommandError, Context};

/// `config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print every effective setting, its value and where it came from.
    ///
    /// Precedence, highest first: flags > ANNOFORM_* env > FIFTYONE_* env > annoform.toml >
    /// ~/.fiftyone/annotation_config.json (or $FIFTYONE_ANNOTATION_CONFIG_PATH) > defaults.
    /// Secrets are shown as (set), or (not set: $NAME) naming the variable to set, never their
    /// value. Each secret has one documented variable, ANNOFORM_<BACKEND>_<SETTING> (e.g.
    /// ANNOFORM_LABELSTUDIO_API_KEY); FIFTYONE_<BACKEND>_<SETTING> and ${env:NAME} references
    /// in annoform.toml also work.
    #[command(
        after_help = "Examples:\n  annoform config show\n  FIFTYONE_CVAT_URL=http://localhost:8080 annoform config show --json"
    )]
    Show {
        /// Print JSON: a list of {setting, value, source}.
        #[arg(long)]
        json: bool,
    },
}

/// Run a `config` subcommand.
pub fn run(ctx: &Context, cmd: &ConfigCommand) -> Result<(), CommandError> {
    let ConfigCommand::Show { json } = cmd;
    let config = ctx.config()?;
    let rows = config.settings();
    if *json {
        let list: Vec<_> = rows
            .iter()
            .map(|(k, v, s)| serde_json::json!({"setting": k, "value": v, "source": s}))
            .collect();
        let doc = serde_json::json!({"settings": list, "notes": config.notes});
        return super::print(&(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"));
    }
    let w0 = rows
        .iter()
        .map(|r| r.0.len())
        .max()
        .unwrap_or(0)
        .max("SETTING".len());
    let w1 = rows
        .iter()
        .map(|r| r.1.len())
        .max()
        .unwrap_or(0)
        .clamp("VALUE".len(), 48);
    let mut out = format!("{:w0$}  {:w1$}  SOURCE\n", "SETTING", "VALUE");
    for (k, v, s) in &rows {
        out.push_str(&format!("{k:w0$}  {v:w1$}  {s}\n"));
    }
    if !config.has_file {
        out.push_str(
            "\nnote: no annoform.toml here (pass -C DIR to point at a workspace); defaults apply\n",
        );
    }
    for n in &config.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    super::print(&out)
}
