//! `annoform runs`: list, inspect, rename and forget run records (never touching backends).

use super::session::{Session, engine_error, lock};
use super::{CommandError, Context};
use crate::plan::engine::Engine;
use crate::state::RunRecord;
use crate::state::StateStore;
use crate::workspace::Datasets;
use std::time::Duration;

/// `runs` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// One line per recorded run.
    List,
    /// A run's record as JSON, like FiftyOne's get_annotation_info (never contains secrets).
    Info {
        key: String,
        /// The dataset, when several have a run with this key.
        #[arg(long)]
        dataset: Option<String>,
        /// A readable summary instead: times, project, tasks, merges, label schema, settings.
        #[arg(long)]
        summary: bool,
    },
    /// Rename a run's key (like FiftyOne's rename_annotation_run); backends are untouched.
    Rename {
        old: String,
        new: String,
        #[arg(long)]
        dataset: Option<String>,
    },
    /// Forget a run's record (like delete_annotation_run); backend objects stay.
    Delete {
        key: String,
        #[arg(long)]
        dataset: Option<String>,
    },
}

fn err(e: impl std::fmt::Display) -> CommandError {
    CommandError::failed(e.to_string())
}

/// The single record with `key` (in `dataset` when given).
pub fn find(
    store: &dyn StateStore,
    key: &str,
    dataset: Option<&str>,
) -> Result<RunRecord, CommandError> {
    let matches: Vec<(String, String)> = store
        .list()
        .map_err(err)?
        .into_iter()
        .filter(|(d, k)| k == key && dataset.is_none_or(|x| x == d))
        .collect();
    match matches.as_slice() {
        [] => Err(CommandError::failed(format!("no run `{key}` in the state"))
            .hint("`annoform runs list` shows the recorded runs")),
        [(d, k)] => store
            .get(d, k)
            .map_err(err)?
            .ok_or_else(|| CommandError::failed(format!("no run `{key}`"))),
        many => Err(CommandError::failed(format!(
            "run `{key}` exists in several datasets: {}",
            many.iter()
                .map(|(d, _)| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .hint("pass --dataset NAME")),
    }
}

/// The runs as a table.
pub fn table(records: &[RunRecord]) -> String {
    if records.is_empty() {
        return "No runs recorded.\n".into();
    }
    let mut out = format!(
        "{:<24} {:<16} {:<12} {:>7} {:>5} {:>6}  {}\n",
        "KEY", "DATASET", "BACKEND", "SAMPLES", "TASKS", "SERIAL", "LAST MERGE"
    );
    for r in records {
        let merged = r.merge.as_ref().map_or("-", |m| m.merged_at.as_str());
        out.push_str(&format!(
            "{:<24} {:<16} {:<12} {:>7} {:>5} {:>6}  {}{}\n",
            r.key,
            r.dataset,
            r.backend,
            r.samples.len(),
            r.tasks.len(),
            r.serial,
            merged,
            if r.cleaned_up { " (cleaned up)" } else { "" }
        ));
    }
    out
}

/// A record as people read it: what FiftyOne's `get_annotation_info()` shows (key, times,
/// backend and its settings, label schema) and what annoform adds (project, tasks, merges).
pub fn info(r: &RunRecord) -> String {
    let mut out = format!(
        "key:        {}\ndataset:    {}\nbackend:    {}\ncreated:    {}\nupdated:    {}\n",
        r.key, r.dataset, r.backend, r.created_at, r.updated_at
    );
    if let Some(p) = &r.project {
        out.push_str(&format!("project:    {} ({})\n", p.name, p.id));
    }
    out.push_str(&format!(
        "samples:    {} in {} task(s)\n",
        r.samples.len(),
        r.tasks.len()
    ));
    out.push_str(&match &r.merge {
        Some(m) => format!(
            "last merge: {} ({} rejected change(s))\n",
            m.merged_at,
            m.rejected.len()
        ),
        None => "last merge: never\n".into(),
    });
    if r.cleaned_up {
        out.push_str("cleaned up: yes (the backend objects were deleted)\n");
    }
    out.push_str("label schema:\n");
    for (field, f) in &r.schema.fields {
        out.push_str(&format!(
            "  {field}: {}{}\n",
            f.label_type,
            if f.existing { " (existing field)" } else { "" }
        ));
        if !f.classes.is_empty() {
            out.push_str(&format!("    classes: {}\n", f.classes.join(", ")));
        }
        for (name, a) in &f.attributes {
            out.push_str(&format!(
                "    attribute {name}: {}\n",
                serde_json::to_string(a).unwrap_or_default()
            ));
        }
    }
    out.push_str("backend config:\n");
    for (k, v) in &r.backend_config {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    out
}

/// Bring the dataset's `annotation_runs` (what FiftyOne lists) in line with the records of
/// `keys`, as FiftyOne's rename/delete_annotation_run change them.
fn sync_dataset(
    config: &crate::config::Config,
    ctx: &Context,
    store: &dyn StateStore,
    dataset: &str,
    keys: &[&str],
) -> Result<(), CommandError> {
    // The runs are in the dataset's document: no sample is read.
    let datasets = Datasets::for_runs(config, &[]);
    let mut engine = Engine::new(config, &ctx.ui.env, store, datasets);
    for key in keys {
        engine
            .sync_annotation_run(dataset, key)
            .map_err(engine_error)?;
    }
    Ok(())
}

/// Run a `runs` subcommand.
pub fn run(ctx: &Context, cmd: &RunsCommand) -> Result<(), CommandError> {
    let (config, store) = Session::store_only(ctx)?;
    match cmd {
        RunsCommand::List => {
            let mut records = Vec::new();
            for (d, k) in store.list().map_err(err)? {
                records.extend(store.get(&d, &k).map_err(err)?);
            }
            super::print(&table(&records))
        }
        RunsCommand::Info {
            key,
            dataset,
            summary,
        } => {
            let r = find(store.as_ref(), key, dataset.as_deref())?;
            if *summary {
                return super::print(&info(&r));
            }
            super::print(&(serde_json::to_string_pretty(&r).unwrap_or_default() + "\n"))
        }
        RunsCommand::Rename { old, new, dataset } => {
            let _lock = lock(store.as_ref(), "runs rename", Duration::from_secs(5))?;
            let r = find(store.as_ref(), old, dataset.as_deref())?;
            store.rename(&r.dataset, old, new).map_err(err)?;
            sync_dataset(&config, ctx, store.as_ref(), &r.dataset, &[old, new])?;
            super::print(&format!(
                "Renamed run `{old}` to `{new}` in dataset `{}`; update its manifest's `key` to match.\n",
                r.dataset
            ))
        }
        RunsCommand::Delete { key, dataset } => {
            let _lock = lock(store.as_ref(), "runs delete", Duration::from_secs(5))?;
            let r = find(store.as_ref(), key, dataset.as_deref())?;
            store.delete(&r.dataset, key).map_err(err)?;
            sync_dataset(&config, ctx, store.as_ref(), &r.dataset, &[key])?;
            super::print(&format!(
                "Forgot run `{key}` of dataset `{}`; its backend objects were not touched.\n",
                r.dataset
            ))
        }
    }
}
