//! Annotation backends: the trait every backend implements and the neutral shapes that cross
//! it. Labels cross in FiftyOne's own JSON form (relative coordinates, `_cls`, `_id` when the
//! backend carried our id back), so each adapter converts only at its own edge and the engine
//! and the merge never see backend formats.

pub mod capabilities;
pub mod custom;
pub mod cvat;
pub mod http;
pub mod labelstudio;

pub use capabilities::{BackendKind, Capabilities};

use crate::schema::ResolvedSchema;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A backend failure, with the server/object context already in the message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct BackendError {
    pub backend: String,
    pub message: String,
}

/// A project (or the backend's equivalent container) holding a run's tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteProject {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A task as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteTask {
    pub id: String,
    pub name: String,
}

/// What to create a project with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectSpec {
    pub name: String,
    pub schema: ResolvedSchema,
    /// Non-secret backend settings from the manifest and workspace.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

/// One sample of a task, with its media and existing labels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSample {
    pub sample_id: String,
    /// Absolute media path.
    pub media: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// field → labels in FiftyOne JSON (each with `_id`); scalars as a one-element list.
    pub labels: IndexMap<String, Vec<serde_json::Value>>,
}

/// A task to create: a deterministic batch of samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Deterministic: run key + batch id, so an interrupted apply adopts rather than
    /// duplicates it.
    pub name: String,
    pub batch: u32,
    pub samples: Vec<TaskSample>,
}

/// A task's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub id: String,
    /// The backend's own word (`annotation`, `completed`, `3/10 labeled`...).
    pub status: String,
    pub complete: bool,
}

/// A downloaded label: FiftyOne JSON plus the backend object's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadedLabel {
    /// The backend's id of the object (shape, region, ...).
    pub backend_id: String,
    /// The label in FiftyOne JSON; `_id` is present when the backend carried our id.
    pub label: serde_json::Value,
}

/// Annotations of some samples: sample id → field → labels.
pub type Annotations = IndexMap<String, IndexMap<String, Vec<DownloadedLabel>>>;

/// Receives a download page by page. A page holds every label of its samples (a sample never
/// spans two pages), so the engine merges each page and drops it: memory follows the page
/// size, not the number of labels the backend holds.
pub type PageSink<'a> = dyn FnMut(Annotations) -> Result<(), BackendError> + 'a;

/// What a run's record knows about its project: the schema, the run's (non-secret) settings
/// and, per task, the sample of each frame in upload order. Backends that keep nothing of
/// annoform's on the server learn it here; the record stays the one source of truth.
#[derive(Debug, Clone, Copy)]
pub struct ProjectContext<'a> {
    pub schema: &'a ResolvedSchema,
    pub settings: &'a serde_json::Map<String, serde_json::Value>,
    /// The run's tasks, each with its samples in frame order.
    pub tasks: &'a [crate::state::TaskRecord],
}

/// A project that exists before the run, as [`Backend::existing_project`] reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingProject {
    pub project: RemoteProject,
    /// Its classes (label names) in the server's order, each with its visible attributes.
    pub classes: Vec<(String, IndexMap<String, crate::schema::ResolvedAttribute>)>,
}

/// What every backend implements. Calls are synchronous from the engine's point of view;
/// HTTP backends parallelise inside, within the shared HTTP policy.
pub trait Backend {
    /// What the backend supports.
    fn capabilities(&self) -> &Capabilities;
    /// The project called `name`, if it exists (adoption after a crash, or reuse by name).
    fn find_project(&mut self, name: &str) -> Result<Option<RemoteProject>, BackendError>;
    /// Create a project.
    fn create_project(&mut self, spec: &ProjectSpec) -> Result<RemoteProject, BackendError>;
    /// The project a new run would upload into although annoform did not create it for the
    /// run (CVAT: `project_id`, or a project found by `project_name`), with its classes and
    /// their attributes; `None` when the run gets a project of its own.
    fn existing_project(
        &mut self,
        _settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<ExistingProject>, BackendError> {
        Ok(None)
    }
    /// Tell the backend what the run's record knows about an existing project, before other
    /// calls about it (nothing is sent to the server).
    fn attach(&mut self, _project: &RemoteProject, _context: ProjectContext<'_>) {}
    /// Every task of a project (to adopt tasks created before a crash and to spot drift).
    fn list_tasks(&mut self, project: &RemoteProject) -> Result<Vec<RemoteTask>, BackendError>;
    /// Create a task with its media and existing labels.
    fn create_task(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
    ) -> Result<RemoteTask, BackendError>;
    /// Change the project's classes and attributes in place.
    fn update_schema(
        &mut self,
        project: &RemoteProject,
        schema: &ResolvedSchema,
    ) -> Result<(), BackendError>;
    /// The status of these tasks (missing tasks are simply absent).
    fn status(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Vec<TaskStatus>, BackendError>;
    /// The annotations of these tasks, handed to `sink` page by page; returns a cursor for the
    /// next download (`None` when the backend cannot tell what changed).
    ///
    /// With `since` (a cursor this backend returned before), the backend may hand only the
    /// samples whose annotations may have changed after it — more is fine, fewer is not — so
    /// a refresh with nothing new downloads next to nothing. Without it, every sample of the
    /// tasks is handed.
    fn download(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
        since: Option<&str>,
        sink: &mut PageSink<'_>,
    ) -> Result<Option<String>, BackendError>;
    /// Delete the project and everything in it.
    fn delete_project(&mut self, project: &RemoteProject) -> Result<(), BackendError>;
}
