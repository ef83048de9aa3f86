//! Why the engine stopped: one typed variant per cause, and the one place that says what to
//! do about each (`hint`). Only a failure that may pass on its own is worth re-running;
//! the others say what to change.

use crate::backend::{self, BackendError, Cause};
use crate::dataset::FrameNumber;
use crate::merge;
use crate::plan::{Conflict, LabelFailure, OutsideLabel, OutsideSchema};
use crate::state::StateError;

/// Why the engine stopped.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("dataset: {0}")]
    Dataset(#[from] crate::dataset::dir::DatasetError),
    #[error("merge: {0}")]
    Merge(#[from] merge::run::MergeError),
    #[error("dataset: {0}")]
    Store(#[from] crate::dataset::store::StoreError),
    /// A destroy of a run that `lifecycle.prevent_destroy` protects (reported under the run's
    /// name, so the message does not repeat it).
    #[error("protected from destroy: {by}")]
    PreventDestroy {
        key: String,
        dataset: String,
        by: Protection,
    },
    /// A project found by the run's `project_name` was made for a run of another workspace.
    #[error(transparent)]
    ForeignProject(Box<ForeignProject>),
    /// The run's manifest does not resolve against its dataset (the problems were reported
    /// with their lines when the manifests were loaded).
    #[error("{0}")]
    Invalid(String),
    #[error("--target {target}: no run has this key")]
    UnknownTarget { target: String },
    #[error("dataset `{name}` is not declared in annoform.toml")]
    UndeclaredDataset { name: String },
    #[error("cannot load dataset `{name}`: {message}")]
    UnloadableDataset { name: String, message: String },
    #[error("{}unknown backend `{backend}`", run_prefix(run))]
    UnknownBackend {
        run: Option<String>,
        backend: String,
    },
    /// A backend setting that does not fit (a value, a `${env:…}` reference, a placement).
    #[error("{}{message}", run_prefix(run))]
    Settings {
        run: Option<String>,
        message: String,
    },
    #[error("run `{run}`: {message}")]
    View { run: String, message: String },
    #[error("run `{run}`: {}", problems.join("; "))]
    Schema { run: String, problems: Vec<String> },
    /// A run naming an existing project that lacks classes of labels it would upload.
    #[error(
        "run `{run}`: the existing project `{project}` ({id}) has no labels for classes {} of field `{field}` that the run would upload",
        quoted(classes)
    )]
    ProjectLacksClasses {
        run: String,
        project: String,
        id: String,
        field: String,
        classes: Vec<String>,
    },
    /// A task found by its name lacks samples of its batch (made by hand, or cut short).
    #[error("{at} lacks {lacking} of the {samples} sample(s) of its batch")]
    TaskLacksSamples {
        at: Box<TaskAt>,
        lacking: usize,
        samples: usize,
    },
    /// A task found by its name holds samples this run did not upload.
    #[error(
        "{at} holds sample {sample}, which this run did not upload ({count} such sample(s)): it was made for another run"
    )]
    TaskOfAnotherRun {
        at: Box<TaskAt>,
        sample: String,
        count: usize,
    },
    #[error("run `{run}`: the download the last plan kept cannot be read back")]
    KeptDownloadUnreadable { run: String },
    /// The backend's complete download missed samples it lists: nothing is merged.
    #[error("run `{run}` on {backend}: {source}")]
    IncompleteDownload {
        run: String,
        backend: String,
        source: Box<merge::run::MergeError>,
    },
    #[error(
        "run `{run}`: {} label(s) outside the schema (load.unexpected=error):\n  {}",
        labels.len(),
        labels.iter().map(outside_schema).collect::<Vec<_>>().join("\n  ")
    )]
    UnexpectedLabels {
        run: String,
        labels: Vec<OutsideSchema>,
    },
    #[error(
        "run `{run}`: {} label(s) changed both in the dataset since upload and in {backend}: {}",
        labels.len(),
        labels.iter().map(conflict).collect::<Vec<_>>().join(", ")
    )]
    Conflicts {
        run: String,
        backend: String,
        labels: Vec<Conflict>,
    },
    #[error(
        "run `{run}` (dataset `{dataset}`): labels no backend can take back unchanged:\n  {}",
        labels.join("\n  ")
    )]
    Unsendable {
        run: String,
        dataset: String,
        labels: Vec<String>,
    },
    /// A sample to upload is not as the plan saw it.
    #[error("sample {sample}: {problem}")]
    Sample { sample: String, problem: String },
    #[error("run `{run}`: cannot write the unexpected labels to {path}: {message}")]
    ReturnedUnwritable {
        run: String,
        path: String,
        message: String,
    },
    #[error("run `{run}`: {path} is not the JSON annoform wrote: {message}")]
    ReturnedUnreadable {
        run: String,
        path: String,
        message: String,
    },
    #[error("run `{run}` is already recorded; nothing to import")]
    AlreadyRecorded { run: String },
    #[error("{backend} has no project `{project}` to import")]
    NoProjectToImport { backend: String, project: String },
    #[error("project `{project}` has no tasks named `{prefix}NNNN`")]
    NoTasksToImport { project: String, prefix: String },
    /// `import --task-id/--project-id` asked of something it cannot import.
    #[error("{0}")]
    Import(ImportRefusal),
    /// Several runs failed to apply (the others were applied).
    #[error("{} runs failed: {}", .0.len(), .0.iter().map(|(k, e)| format!("run `{k}`: {e}")).collect::<Vec<_>>().join("; "))]
    RunsFailed(Vec<(String, EngineError)>),
}

/// A run's backend task: ``run `r`: task `t` (id) in cvat project `p` ``.
#[derive(Debug)]
pub struct TaskAt {
    pub run: String,
    pub task: String,
    pub id: String,
    pub backend: String,
    pub project: String,
}

impl std::fmt::Display for TaskAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run `{}`: task `{}` ({}) in {} project `{}`",
            self.run, self.task, self.id, self.backend, self.project
        )
    }
}

/// Why `import --task-id/--project-id` cannot import what it was given.
#[derive(Debug, thiserror::Error)]
pub enum ImportRefusal {
    #[error("the manifest of `{run}` uses backend `{manifest}`, not `{given}`")]
    OtherBackend {
        run: String,
        manifest: String,
        given: String,
    },
    #[error("--task-id/--project-id import CVAT tasks; `{backend}` is a {kind} backend")]
    NotCvat { backend: String, kind: String },
    #[error("give --task-id or --project-id")]
    NothingGiven,
    #[error("no tasks to import")]
    NoTasks,
    #[error("CVAT task {task} is in no project")]
    TaskInNoProject { task: String },
    #[error("CVAT task {task} is not in project {project}")]
    TasksOfManyProjects { task: String, project: String },
    #[error("cannot map frames to samples: {}{}", problems.join("; "), more_note(*more))]
    UnmappedFrames { problems: Vec<String>, more: usize },
}

/// What protects a run from destroy, with what to change to lift it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// `lifecycle.prevent_destroy: true` in the run's manifest (this file).
    Manifest(String),
    /// The run has no manifest any more, and its record remembers the flag from its last
    /// apply.
    Record,
}

impl std::fmt::Display for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Protection::Manifest(file) => write!(
                f,
                "{file} sets `lifecycle.prevent_destroy: true`; set it to false there to destroy it"
            ),
            Protection::Record => f.write_str(
                "its manifest is gone and its record keeps `lifecycle.prevent_destroy: true` from its last apply; to destroy it, put its manifest back with `prevent_destroy: false` (a manifest present is what counts) and destroy again",
            ),
        }
    }
}

/// A project found by a run's `project_name`, stamped with another workspace's run.
#[derive(Debug, thiserror::Error)]
#[error(
    "{backend} project `{project}` ({id}) belongs to {owner}, not to run `{key}` of dataset `{dataset}` of this workspace: give this run another project name (backend_config.project_name), or take the project over with `annoform import {key}` if it is really this run's"
)]
pub struct ForeignProject {
    pub backend: String,
    pub project: String,
    pub id: String,
    pub owner: backend::Owner,
    pub key: String,
    pub dataset: String,
}

/// The hint of a failure that may pass on its own.
pub const RESUME: &str = "nothing was lost: re-run the command to resume where it stopped";

impl EngineError {
    /// The labels the error is about, for the plan to carry beside its message.
    pub fn failure(&self) -> Option<LabelFailure> {
        match self {
            EngineError::UnexpectedLabels { labels, .. } => Some(LabelFailure::Unexpected {
                labels: labels.clone(),
            }),
            EngineError::Conflicts {
                backend, labels, ..
            } => Some(LabelFailure::Conflicts {
                backend: backend.clone(),
                labels: labels.clone(),
            }),
            _ => None,
        }
    }

    /// What to do about it: one hint, or one per distinct hint of several failed runs.
    pub fn hints(&self) -> Vec<String> {
        match self {
            EngineError::RunsFailed(failed) => {
                let mut out: Vec<String> = Vec::new();
                for h in failed.iter().flat_map(|(_, e)| e.hints()) {
                    if !out.contains(&h) {
                        out.push(h);
                    }
                }
                out
            }
            e => e.hint().into_iter().collect(),
        }
    }

    /// What to do about it; `None` when the message says it already.
    pub fn hint(&self) -> Option<String> {
        let s = |t: &str| Some(t.to_string());
        match self {
            EngineError::Backend(b) => Some(backend_hint(b)),
            EngineError::State(e) => state_hint(e),
            EngineError::Dataset(_)
            | EngineError::Store(_)
            | EngineError::UnloadableDataset { .. } => s(
                "check the dataset's export at the path annoform.toml gives it (`annoform config show` lists it)",
            ),
            EngineError::Merge(_) | EngineError::Sample { .. } => {
                s("the dataset changed since the plan: run `annoform plan` again")
            }
            // Their messages say what to change.
            EngineError::PreventDestroy { .. }
            | EngineError::ForeignProject(_)
            | EngineError::RunsFailed(_) => None,
            // Reported above with its lines when the manifests were loaded.
            EngineError::Invalid(_) => None,
            EngineError::View { .. } | EngineError::Schema { .. } => {
                s("fix the run's manifest (`annoform validate` lists each problem with its line)")
            }
            EngineError::UnknownTarget { .. } => s(
                "`--target` takes a run's `key`: `annoform runs list` shows the recorded runs, the manifests the others",
            ),
            EngineError::UndeclaredDataset { name } => Some(format!(
                "declare it in annoform.toml: `[datasets.{name}]` with `path = \"…\"`"
            )),
            EngineError::UnknownBackend { .. } => s(
                "declare it under `[backends.NAME]` in annoform.toml, or name a declared one in the manifest's `backend:`",
            ),
            EngineError::Settings { .. } => s(
                "fix the setting in the manifest's `backend_config` or in annoform.toml (`annoform config show` lists each setting and where it comes from)",
            ),
            EngineError::ProjectLacksClasses { .. } => s(
                "add the classes to the project, or set `backend_config.extend_project_schema: true` to let annoform add them",
            ),
            EngineError::TaskLacksSamples { at, .. } => Some(format!(
                "delete the task in {} and apply again: annoform recreates it whole",
                at.backend
            )),
            EngineError::TaskOfAnotherRun { .. } => s(
                "give this run another project (backend_config.project_name), or delete that task",
            ),
            EngineError::KeptDownloadUnreadable { .. } => {
                s("nothing was lost: run `annoform plan` again (it downloads the annotations anew)")
            }
            EngineError::IncompleteDownload { .. } => s(RESUME),
            EngineError::UnexpectedLabels { .. } => s(
                "add their classes to the schema, or set `load.unexpected` to `keep`, `ignore`, `return` or `report`",
            ),
            EngineError::Conflicts { .. } => {
                s("set `load.conflicts` to `backend` or `dataset` to choose a side")
            }
            EngineError::Unsendable { .. } => {
                s("fix the labels, or leave those samples out of the run's `view`")
            }
            EngineError::ReturnedUnwritable { .. } => {
                s("make the workspace's .annoform/unexpected/ writable, then re-run")
            }
            EngineError::ReturnedUnreadable { .. } => {
                s("move the file aside (annoform writes a new one), then re-run")
            }
            EngineError::AlreadyRecorded { run } => Some(format!(
                "`annoform runs info {run}` shows its record; `annoform plan` picks it up"
            )),
            EngineError::NoProjectToImport { .. } | EngineError::NoTasksToImport { .. } => s(
                "import adopts what annoform would have created: check the run's `key`, `dataset` and backend_config.project_name",
            ),
            EngineError::Import(r) => Some(import_hint(r).to_string()),
        }
    }
}

fn import_hint(r: &ImportRefusal) -> &'static str {
    match r {
        ImportRefusal::OtherBackend { .. } => {
            "pass the manifest's backend to --backend, or change the manifest's `backend:`"
        }
        ImportRefusal::NotCvat { .. } => {
            "import other backends' projects by the run's project name: `annoform import KEY`"
        }
        ImportRefusal::NothingGiven => {
            "name the CVAT tasks (--task-id N, repeated) or a project (--project-id N)"
        }
        ImportRefusal::NoTasks => "check the ids in CVAT: the tasks or the project hold none",
        ImportRefusal::TaskInNoProject { .. } => {
            "move the task into a project in CVAT (annoform keeps a run's labels in its project)"
        }
        ImportRefusal::TasksOfManyProjects { .. } => "import the tasks of one project at a time",
        ImportRefusal::UnmappedFrames { .. } => {
            "the frames must be the dataset's media files: import tasks made from this dataset"
        }
    }
}

/// What to do after a backend failure, by its cause.
pub fn backend_hint(e: &BackendError) -> String {
    match e.cause {
        Cause::Transient => RESUME.to_string(),
        Cause::Credentials => format!(
            "the server refused the credentials: fix the secrets of backend `{}` (`annoform config show` lists them and where each comes from), then re-run",
            e.backend
        ),
        Cause::Refused => "the backend refused the request: change what the error names (the manifest or the backend's settings), then `annoform plan`".to_string(),
        Cause::Other => "re-running alone fails the same way: check the backend's settings with `annoform config show` (is `url` the right server?)".to_string(),
    }
}

/// What to do after a state failure, where the message alone does not say.
pub fn state_hint(e: &StateError) -> Option<String> {
    match e {
        StateError::Locked { .. } => {
            Some("if no annoform is running, `annoform state unlock --force`".to_string())
        }
        StateError::Unreachable { .. } | StateError::Credentials { .. } => Some(
            "`annoform config show` lists the state settings and where each comes from".to_string(),
        ),
        _ => None,
    }
}

/// `run `key`: ` before a message about a run, nothing otherwise.
fn run_prefix(run: &Option<String>) -> String {
    run.as_ref()
        .map(|r| format!("run `{r}`: "))
        .unwrap_or_default()
}

/// Where a label is: `sample <id>`, and ` frame <n>` for a frame field's label.
fn sample_at(sample_id: &str, frame: Option<FrameNumber>) -> String {
    match frame {
        Some(f) => format!("sample {sample_id} frame {f}"),
        None => format!("sample {sample_id}"),
    }
}

/// ``sample s gt 17 (polylines `car`): why`` or
/// ``sample s gt label l: relabelled to class `zebra`, which is not in the schema``.
fn outside_schema(l: &OutsideSchema) -> String {
    let at = sample_at(&l.sample_id, l.frame);
    let field = &l.field;
    match &l.label {
        OutsideLabel::Unexpected {
            backend_id,
            label_type,
            class,
            reason,
        } => {
            let class = class
                .as_ref()
                .map(|c| format!(" `{c}`"))
                .unwrap_or_default();
            format!(
                "{at} {field} {backend_id} ({}{class}): {reason}",
                label_type.as_str()
            )
        }
        OutsideLabel::Relabelled { label_id, class } => format!(
            "{at} {field} label {label_id}: relabelled to class `{class}`, which is not in the schema"
        ),
    }
}

/// `ground_truth label l (sample s)`, with ` frame <n>` for a frame field's label.
fn conflict(c: &Conflict) -> String {
    format!(
        "{} label {} ({})",
        c.field,
        c.label_id,
        sample_at(&c.sample_id, c.frame)
    )
}

/// `` `a`, `b` ``.
fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn more_note(more: usize) -> String {
    if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_say_re_run() {
        let transient = EngineError::Backend(BackendError {
            cause: Cause::Transient,
            ..BackendError::new("ls", "connection reset")
        });
        assert_eq!(transient.hint().as_deref(), Some(RESUME));
        let incomplete = EngineError::IncompleteDownload {
            run: "r".into(),
            backend: "ls".into(),
            source: Box::new(merge::run::MergeError::Incomplete(vec!["s".into()])),
        };
        assert_eq!(incomplete.hint().as_deref(), Some(RESUME));
        let refused = EngineError::Backend(BackendError {
            cause: Cause::Refused,
            ..BackendError::new("ls", "400")
        });
        let conflicts = EngineError::Conflicts {
            run: "r".into(),
            backend: "ls".into(),
            labels: vec![Conflict {
                sample_id: "s".into(),
                frame: None,
                field: "f".into(),
                label_id: "l".into(),
            }],
        };
        for e in [refused, conflicts] {
            let hint = e.hint().unwrap();
            assert!(!hint.contains("re-run the command"), "{e}: {hint}");
        }
    }
}
