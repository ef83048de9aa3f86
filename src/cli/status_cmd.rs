//! `annoform status`: task status as the backends report it.

use super::session::{Session, engine_error};
use super::{CommandError, Context};
use crate::plan::engine::{Connection, Engine};

/// `status` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this run.
    pub key: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Ask each run's backend for the status of its tasks.
pub fn run(ctx: &Context, args: &Args) -> Result<(), CommandError> {
    let (config, store) = Session::store_only(ctx)?;
    // Runs in the manifests connect as their manifests say (their own url or credentials).
    let runs = crate::manifest::load::load(&[config.manifest_dir()], &config.root).runs;
    let mut engine = Engine::new(
        &config,
        &ctx.ui.env,
        store.as_ref(),
        crate::workspace::Datasets::new(&config),
    );
    let mut out = String::new();
    let mut json = Vec::new();
    let keys = store
        .list()
        .map_err(|e| CommandError::failed(e.to_string()))?;
    for (d, k) in keys
        .iter()
        .filter(|(_, k)| args.key.as_ref().is_none_or(|x| x == k))
    {
        let Some(r) = store
            .get(d, k)
            .map_err(|e| CommandError::failed(e.to_string()))?
        else {
            continue;
        };
        if r.cleaned_up || r.tasks.is_empty() {
            out.push_str(&format!("{d}/{k} ({}): no backend tasks\n", r.backend));
            continue;
        }
        let conn = Connection::of_run(&r, &runs);
        let status = engine.status(&r, &conn).map_err(engine_error)?;
        let links = engine.links(&r, &conn).map_err(engine_error)?;
        let done = status.iter().filter(|s| s.complete).count();
        out.push_str(&format!(
            "{d}/{k} ({}): {done}/{} task(s) complete\n",
            r.backend,
            r.tasks.len()
        ));
        if let Some(p) = &links.project {
            out.push_str(&format!("  project: {p}\n"));
        }
        for t in &r.tasks {
            let s = status.iter().find(|s| s.id == t.id);
            let shown = s.map_or("missing".to_string(), |s| s.status.clone());
            out.push_str(&format!("  {:<40} {:>8}  {shown}\n", t.name, t.id));
            if let Some(updated) = s.and_then(|s| s.updated.as_deref()) {
                out.push_str(&format!("  {:<40} {:>8}  last updated {updated}\n", "", ""));
            }
            if let Some((_, url)) = links.tasks.iter().find(|(name, _)| *name == t.name) {
                out.push_str(&format!("  {:<40} {:>8}  {url}\n", "", ""));
            }
        }
        json.push(
            serde_json::json!({"dataset": d, "key": k, "backend": r.backend,
            "project_url": links.project, "tasks": status}),
        );
    }
    if args.key.is_some() && out.is_empty() {
        return Err(CommandError::failed(format!(
            "no run `{}` in the state",
            args.key.as_deref().unwrap_or_default()
        )));
    }
    if args.json {
        return super::print(&(serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"));
    }
    super::print(if out.is_empty() {
        "No runs recorded.\n"
    } else {
        &out
    })
}
