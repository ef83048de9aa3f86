//! `annoform import`: adopt existing backend objects as a run.

use super::session::{Session, engine_error};
use super::{CommandError, Context};
use crate::plan::engine::Engine;
use std::time::Duration;

/// `import` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run keys to import; each needs a manifest (which names the project).
    #[arg(required = true)]
    pub keys: Vec<String>,
}

/// Find each run's project and tasks on its backend and record them.
pub fn run(ctx: &Context, args: &Args) -> Result<(), CommandError> {
    let session = Session::open(ctx)?;
    let _lock = session.lock("import", Duration::from_secs(5))?;
    let mut engine = Engine::new(
        &session.config,
        &ctx.ui.env,
        &session.store,
        session.datasets,
    );
    for key in &args.keys {
        let loaded = session
            .runs
            .iter()
            .find(|r| r.run.key.0 == *key)
            .ok_or_else(|| {
                CommandError::failed(format!("no manifest declares run `{key}`"))
                    .hint("write its manifest first: it names the dataset, backend and project")
            })?;
        let r = engine.import(loaded).map_err(engine_error)?;
        super::print(&format!(
            "Imported `{key}`: project `{}`, {} task(s), {} sample(s).\n",
            r.project.as_ref().map_or("", |p| p.name.as_str()),
            r.tasks.len(),
            r.samples.len()
        ))?;
    }
    Ok(())
}
