//! `annoform import`: adopt existing backend objects as a run.

use super::session::{Session, engine_error};
use super::{CommandError, Context};
use crate::plan::engine::Engine;
use crate::plan::engine::import_cvat::CvatImport;
use std::time::Duration;

/// `import` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run keys to import; each needs a manifest (which names the project).
    #[arg(required = true)]
    pub keys: Vec<String>,
    /// The backend to import from (must be the manifest's; CVAT for --task-id/--project-id).
    #[arg(long, value_name = "NAME")]
    pub backend: Option<String>,
    /// CVAT tasks made outside annoform to adopt as the run (repeatable).
    #[arg(long = "task-id", value_name = "N", num_args = 1.., conflicts_with = "project_id")]
    pub task_ids: Vec<u64>,
    /// A CVAT project whose tasks (made outside annoform) to adopt as the run.
    #[arg(long = "project-id", value_name = "N")]
    pub project_id: Option<u64>,
    /// JSON object mapping the tasks' frame file names to sample ids or filepaths, where
    /// file names differ (default: matched by file name).
    #[arg(long = "data-map", value_name = "FILE")]
    pub data_map: Option<std::path::PathBuf>,
}

/// Find each run's project and tasks on its backend and record them.
pub fn run(ctx: &Context, args: &Args) -> Result<(), CommandError> {
    let session = Session::open(ctx)?;
    let _lock = session.lock("import", Duration::from_secs(5))?;
    let mut engine = Engine::new(
        &session.config,
        &ctx.ui.env,
        session.store.as_ref(),
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
        let r = if args.task_ids.is_empty() && args.project_id.is_none() {
            engine.import(loaded)
        } else {
            engine.import_cvat(loaded, &cvat_import(args)?)
        }
        .map_err(engine_error)?;
        super::print(&format!(
            "Imported `{key}`: project `{}`, {} task(s), {} sample(s).\n",
            r.project.as_ref().map_or("", |p| p.name.as_str()),
            r.tasks.len(),
            r.samples.len()
        ))?;
    }
    Ok(())
}

/// What `--task-id`/`--project-id` import, with the data map read.
fn cvat_import(args: &Args) -> Result<CvatImport, CommandError> {
    let data_map = match &args.data_map {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CommandError::failed(format!("cannot read {}: {e}", path.display()))
            })?;
            Some(serde_json::from_str(&text).map_err(|e| {
                CommandError::failed(format!(
                    "{}: not a JSON object of file name → sample id or filepath: {e}",
                    path.display()
                ))
            })?)
        }
    };
    Ok(CvatImport {
        backend: args.backend.clone(),
        task_ids: args.task_ids.clone(),
        project_id: args.project_id,
        data_map,
    })
}
