//! Annotation backends: the trait every backend implements and the neutral shapes that cross
//! it. Labels cross in FiftyOne's own JSON form (relative coordinates, `_cls`, `_id` when the
//! backend carried our id back), so each adapter converts only at its own edge and the engine
//! and the merge never see backend formats.

pub mod base;
pub mod capabilities;
pub mod convert;
pub mod custom;
pub mod cvat;
pub mod darwin;
pub mod http;
pub mod labelstudio;
pub mod registry;
pub mod rendered;
pub mod settings;

pub use capabilities::{BackendKind, Capabilities};

use crate::dataset::FrameNumber;
use crate::dataset::video::VideoInfo;
use crate::manifest::LabelType;
use crate::schema::ResolvedSchema;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A backend failure, with the server/object context already in the message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{backend}: {message}")]
pub struct BackendError {
    pub backend: String,
    pub message: String,
    /// Whether trying again can help, and if not, what to change.
    pub cause: Cause,
}

/// Why a backend request failed, as far as what the user should do next goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The server could not be reached or failed for now (connection, timeout, interrupted
    /// answer, 429, 5xx): the same request may succeed later.
    Transient,
    /// The server refused the credentials (401, 403).
    Credentials,
    /// The server refused the request itself (another 4xx: a schema, a setting, a value).
    Refused,
    /// Anything else (an answer that cannot be understood, a setup error): trying again
    /// fails the same way.
    Other,
}

impl Cause {
    /// The cause of a failed HTTP request.
    pub fn of(e: &http::HttpError) -> Cause {
        if e.is_retryable() {
            return Cause::Transient;
        }
        match e.status() {
            Some(s)
                if s == reqwest::StatusCode::UNAUTHORIZED
                    || s == reqwest::StatusCode::FORBIDDEN =>
            {
                Cause::Credentials
            }
            Some(s) if s.is_client_error() => Cause::Refused,
            _ => Cause::Other,
        }
    }
}

impl BackendError {
    /// A failure of backend `backend` that trying again does not fix.
    pub fn new(backend: impl Into<String>, message: impl Into<String>) -> BackendError {
        BackendError {
            backend: backend.into(),
            message: message.into(),
            cause: Cause::Other,
        }
    }

    /// The same failure with its cause.
    pub fn because(mut self, cause: Cause) -> BackendError {
        self.cause = cause;
        self
    }
}

/// A project (or the backend's equivalent container) holding a run's tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteProject {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The run the project was made for, as stamped on it (`None`: made outside annoform,
    /// or before projects carried it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
}

/// The identity of the run a project was made for, stamped on the project where annotators
/// do not work with it (CVAT: its bug tracker field; Label Studio: its description), so that
/// a run adopts only what it made and another workspace's project is refused, not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The dataset's name in its workspace.
    pub dataset: String,
    /// The dataset's own id (FiftyOne's `_id` in `metadata.json`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_id: Option<String>,
    pub key: String,
    /// The run record's lineage.
    pub lineage: String,
}

/// What an owner stamp starts with.
const OWNER_TAG: &str = "annoform:run?";

impl Owner {
    /// The stamp written on a project: `annoform:run?dataset=…&dataset_id=…&key=…&lineage=…`.
    pub fn tag(&self) -> String {
        let mut parts = vec![("dataset", self.dataset.as_str())];
        parts.extend(self.dataset_id.as_deref().map(|id| ("dataset_id", id)));
        parts.push(("key", &self.key));
        parts.push(("lineage", &self.lineage));
        let query: Vec<String> = parts
            .iter()
            .map(|(k, v)| format!("{k}={}", http::percent_encode(v, http::Escape::Path)))
            .collect();
        format!("{OWNER_TAG}{}", query.join("&"))
    }

    /// The owner stamped somewhere in `text` (a line of a description, a bug tracker).
    pub fn find_in(text: &str) -> Option<Owner> {
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(OWNER_TAG))?;
        let mut fields: IndexMap<&str, String> = IndexMap::new();
        for pair in line.split('&') {
            let (k, v) = pair.split_once('=')?;
            fields.insert(k, percent_decode(v)?);
        }
        Some(Owner {
            dataset: fields.shift_remove("dataset")?,
            dataset_id: fields.shift_remove("dataset_id"),
            key: fields.shift_remove("key")?,
            lineage: fields.shift_remove("lineage")?,
        })
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run `{}` of dataset `{}`", self.key, self.dataset)?;
        if let Some(id) = &self.dataset_id {
            write!(f, " ({id})")?;
        }
        write!(f, ", record lineage {}", self.lineage)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
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
    /// The run it is made for, stamped on the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
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
    /// A video's frame count, frame size and frame rate (`None` for images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoInfo>,
    /// Sample field → labels in FiftyOne JSON (each with `_id`); scalars as a one-element
    /// list.
    pub labels: IndexMap<String, Vec<serde_json::Value>>,
    /// Frame field (`frames.<name>`) → its labels on the video's frames, by frame number
    /// (tracks are the labels sharing an `index` across frames).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub frame_labels: IndexMap<String, Vec<FrameLabel>>,
}

/// A label on one frame of a video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameLabel {
    pub frame: FrameNumber,
    /// The label in FiftyOne JSON (with `_id`).
    pub label: serde_json::Value,
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
    /// When the task (or any of its parts) last changed, as the backend reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
}

/// A downloaded label: FiftyOne JSON plus the backend object's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DownloadedLabel {
    /// The backend's id of the object (shape, region, track, ...).
    pub backend_id: String,
    /// The video frame the label is on (`None` for a sample field's label). A backend object
    /// that spans frames (a track) gives one label per frame, all with its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameNumber>,
    /// The label in FiftyOne JSON; `_id` is present when the backend carried our id. Null
    /// for an object that converts to no label (then `misfit` says why).
    pub label: serde_json::Value,
    /// Set when the object is not a label its field can hold (another label type, an object
    /// of no field of the run, one that cannot be converted): the merge handles it as
    /// `load.unexpected` says, never silently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfit: Option<Misfit>,
}

impl DownloadedLabel {
    /// A label that fits its field.
    pub fn new(backend_id: impl Into<String>, label: serde_json::Value) -> Self {
        DownloadedLabel {
            backend_id: backend_id.into(),
            frame: None,
            label,
            misfit: None,
        }
    }

    /// The same label on a video frame.
    pub fn on_frame(mut self, frame: FrameNumber) -> Self {
        self.frame = Some(frame);
        self
    }

    /// What identifies the label among the backend's: the object id, and the frame for a
    /// frame label (`<id>@<frame>`: a track is one object over many frames).
    pub fn backend_key(&self) -> std::borrow::Cow<'_, str> {
        match self.frame {
            Some(f) => format!("{}@{f}", self.backend_id).into(),
            None => self.backend_id.as_str().into(),
        }
    }
}

/// A label as the backend holds it after upload (what a download with no edit gives back),
/// given its field and image size; `None` when it does not convert. The merge compares a
/// dataset label with its download through it, so a round trip without edits changes
/// nothing even where the backend cannot hold the exact geometry (pixel-aligned masks).
pub type AsHeld =
    fn(&crate::schema::ResolvedField, &serde_json::Value, ImageSize) -> Option<serde_json::Value>;

pub use convert::ImageSize;

/// Why a downloaded object does not fit the field it is listed under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Misfit {
    /// The label type the object converts to (FiftyOne's type for `load.unexpected: keep`),
    /// `None` when it converts to no label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_type: Option<LabelType>,
    /// What the object is and why it does not fit, in the backend's terms.
    pub reason: String,
}

/// Annotations of some samples: sample id → what the backend holds for it.
pub type Annotations = IndexMap<String, SampleAnnotations>;

/// What a download hands for one sample: field → labels (a frame field's labels each name
/// their frame) and, for a video, which frames are handed.
///
/// A handed sample is evidence, and for a video the evidence is per frame: every label the
/// backend holds on a handed frame is in the download, so an uploaded label missing from a
/// handed frame was deleted; frames not handed are unknown and stay as they are. A backend
/// that hands only the frames a change can reach (CVAT: the windows of changed tracks) lets
/// the merge read and keep only those frames, so memory follows the changed frames and not
/// the video's length. On the wire (custom backends, kept downloads) the frames are the key
/// `@frames`, inclusive spans `[[first, last], ...]`, beside the fields.
///
/// Evidence can be finer still, per track: with `@tracks` (frame field → track → spans), a
/// frame label carrying an `index` is evidence only on the frames its track's spans cover,
/// so a track nobody touched is not handed on the frames a changed track hands (CVAT gives
/// such a track back as its interpolation, which is not the dataset's labels). A track is an
/// `index` (`"3"`: every class carrying it) or an index and a class (`"3:car"`: CVAT keeps
/// one track per index and class). Labels without an `index` are evidence on every handed
/// frame.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleAnnotations {
    /// The video frames handed; `None`: all of them (and every label of an image).
    #[serde(rename = "@frames", default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<FrameSpan>>,
    /// The tracks handed on the handed frames; `None`: every label of a handed frame.
    #[serde(rename = "@tracks", default, skip_serializing_if = "Option::is_none")]
    pub tracks: Option<TrackSpans>,
    /// Field → labels.
    #[serde(flatten)]
    pub fields: IndexMap<String, Vec<DownloadedLabel>>,
}

impl SampleAnnotations {
    /// Every frame (and field) of the sample handed.
    pub fn whole(fields: IndexMap<String, Vec<DownloadedLabel>>) -> Self {
        SampleAnnotations {
            frames: None,
            tracks: None,
            fields,
        }
    }

    /// Only the frames of `spans` handed (of a video's frame fields).
    pub fn frames(fields: IndexMap<String, Vec<DownloadedLabel>>, spans: Vec<FrameSpan>) -> Self {
        SampleAnnotations {
            frames: Some(spans),
            tracks: None,
            fields,
        }
    }

    /// Only the tracks of `tracks` handed, on the handed frames they cover.
    pub fn with_tracks(self, tracks: TrackSpans) -> Self {
        SampleAnnotations {
            tracks: Some(tracks),
            ..self
        }
    }

    /// The tracks of frame field `field` handed on frame `f`; `None`: every label there.
    pub fn tracks_on(&self, field: &str, f: FrameNumber) -> Option<HandedTracks> {
        let tracks = self.tracks.as_ref()?;
        let handed = tracks.get(field).into_iter().flatten();
        let covering = handed.filter(|(_, spans)| spans.iter().any(|s| s.contains(f)));
        Some(HandedTracks(covering.map(|(k, _)| k.clone()).collect()))
    }

    /// Whether frame `f` is handed.
    pub fn hands(&self, f: FrameNumber) -> bool {
        self.frames
            .as_ref()
            .is_none_or(|spans| spans.iter().any(|s| s.contains(f)))
    }
}

impl From<IndexMap<String, Vec<DownloadedLabel>>> for SampleAnnotations {
    fn from(fields: IndexMap<String, Vec<DownloadedLabel>>) -> Self {
        SampleAnnotations::whole(fields)
    }
}

impl std::ops::Deref for SampleAnnotations {
    type Target = IndexMap<String, Vec<DownloadedLabel>>;
    fn deref(&self) -> &Self::Target {
        &self.fields
    }
}

impl std::ops::DerefMut for SampleAnnotations {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.fields
    }
}

/// Frame field → track → the frames it is handed on (see [`SampleAnnotations`]).
pub type TrackSpans = IndexMap<String, std::collections::BTreeMap<TrackKey, Vec<FrameSpan>>>;

/// A track of a frame field: the labels sharing an `index`, of one class or (`class: None`,
/// as written before classes were kept apart) of every class.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct TrackKey {
    pub index: i64,
    pub class: Option<String>,
}

impl TrackKey {
    /// The labels of `class` with `index`.
    pub fn new(index: i64, class: impl Into<String>) -> Self {
        TrackKey {
            index,
            class: Some(class.into()),
        }
    }

    /// Every label with `index`, whatever its class.
    pub fn any_class(index: i64) -> Self {
        TrackKey { index, class: None }
    }
}

impl std::fmt::Display for TrackKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.class {
            Some(c) => write!(f, "{}:{c}", self.index),
            None => write!(f, "{}", self.index),
        }
    }
}

impl From<TrackKey> for String {
    fn from(k: TrackKey) -> Self {
        k.to_string()
    }
}

impl TryFrom<String> for TrackKey {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let (index, class) = match s.split_once(':') {
            Some((i, c)) => (i, Some(c.to_string())),
            None => (s.as_str(), None),
        };
        let index = index
            .parse()
            .map_err(|_| format!("`{s}` is not a track: `<index>` or `<index>:<class>`"))?;
        Ok(TrackKey { index, class })
    }
}

/// The tracks handed on one frame of a frame field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandedTracks(std::collections::BTreeSet<TrackKey>);

impl HandedTracks {
    /// Whether a label with `index` and `class` is handed.
    pub fn covers(&self, index: i64, class: Option<&str>) -> bool {
        self.0.contains(&TrackKey::any_class(index))
            || class.is_some_and(|c| self.0.contains(&TrackKey::new(index, c)))
    }
}

impl FromIterator<TrackKey> for HandedTracks {
    fn from_iter<I: IntoIterator<Item = TrackKey>>(it: I) -> Self {
        HandedTracks(it.into_iter().collect())
    }
}

/// Frames `first..=last` of a video (`[first, last]` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "[FrameNumber; 2]", into = "[FrameNumber; 2]")]
pub struct FrameSpan {
    pub first: FrameNumber,
    pub last: FrameNumber,
}

impl FrameSpan {
    /// Frames `first..=last`.
    pub fn new(first: FrameNumber, last: FrameNumber) -> Self {
        FrameSpan { first, last }
    }

    /// Whether `f` is one of its frames.
    pub fn contains(&self, f: FrameNumber) -> bool {
        self.first <= f && f <= self.last
    }
}

impl From<[FrameNumber; 2]> for FrameSpan {
    fn from([first, last]: [FrameNumber; 2]) -> Self {
        FrameSpan { first, last }
    }
}

impl From<FrameSpan> for [FrameNumber; 2] {
    fn from(s: FrameSpan) -> Self {
        [s.first, s.last]
    }
}

/// What a download found besides its pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Downloaded {
    /// The cursor for the next download (`None` when the backend cannot tell what changed).
    pub cursor: Option<String>,
    /// Every sample the downloaded tasks hold on the backend, handed or not, when the backend
    /// lists them apart from the pages (an incremental download hands only the changed
    /// ones). `None`: the samples a complete download handed are all the backend holds, and
    /// an incremental one says nothing of the others.
    pub held: Option<std::collections::HashSet<String>>,
    /// Objects the backend holds in the downloaded tasks that no sample of the run can take:
    /// the plan lists them, so none is dropped in silence.
    pub strays: Vec<Stray>,
}

/// An object no sample of the run can take (CVAT: one on a frame beyond its task's frames,
/// which job-level writes do not refuse): not merged, but listed in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// The backend task holding it.
    pub task: String,
    /// The backend's id of the object.
    pub backend_id: String,
    /// Where it is and why no sample takes it, in the backend's terms.
    pub reason: String,
}

/// Makes a sample's labels (`labels`, `frame_labels`) when a backend writes the sample out
/// (see [`Backend::create_task_filling`]).
pub type FillLabels<'a> = dyn FnMut(&mut TaskSample) -> Result<(), BackendError> + 'a;

/// `task` with every sample's labels made by `fill`.
pub fn filled(task: &TaskSpec, fill: &mut FillLabels<'_>) -> Result<TaskSpec, BackendError> {
    let mut full = task.clone();
    for s in &mut full.samples {
        fill(s)?;
    }
    Ok(full)
}

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
    /// Whether the run created the project (rather than finding it in place): only then may
    /// a backend whose projects are shared datasets (Darwin) delete it.
    pub created: bool,
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
    /// How a label looks once the backend holds it, for backends that cannot give a label
    /// back exactly as uploaded (see [`AsHeld`]); `None` when every label comes back exact.
    fn as_held(&self) -> Option<AsHeld> {
        None
    }
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
    /// calls about it (nothing is sent to the server). A record the backend cannot use (its
    /// settings do not fit) is an error here, not at a later call.
    fn attach(
        &mut self,
        _project: &RemoteProject,
        _context: ProjectContext<'_>,
    ) -> Result<(), BackendError> {
        Ok(())
    }
    /// Every task of a project (to adopt tasks created before a crash and to spot drift).
    fn list_tasks(&mut self, project: &RemoteProject) -> Result<Vec<RemoteTask>, BackendError>;
    /// Which of these tasks (ids), absent from the project's listing, are really gone. A
    /// task is drift to recreate only once the backend confirms it missing, so a listing
    /// that lost tasks on the way never duplicates them. Backends whose listing is verified
    /// complete already trust it.
    fn confirm_missing(
        &mut self,
        _project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Vec<String>, BackendError> {
        Ok(tasks.to_vec())
    }
    /// Create a task with its media, and with its existing labels when
    /// [`labels_with_media`](Backend::labels_with_media) says so. A task of this name left
    /// with part of its media by an interrupted call is completed, never duplicated.
    fn create_task(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
    ) -> Result<RemoteTask, BackendError>;
    /// [`create_task`](Backend::create_task) for a backend whose labels go up with the
    /// media, from samples without their labels: `fill` makes a sample's labels when the
    /// backend writes it out, once for each sample written (a sample the task already holds
    /// may not be). A backend that writes samples one at a time holds one sample's labels,
    /// not the batch's; by default the whole batch is filled first.
    fn create_task_filling(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
        fill: &mut FillLabels<'_>,
    ) -> Result<RemoteTask, BackendError> {
        let full = filled(task, fill)?;
        self.create_task(project, &full)
    }
    /// Whether `create_task` uploads the labels in the same step as the media. When not,
    /// annoform records the task once its media is up, then calls `upload_labels`.
    fn labels_with_media(&self) -> bool {
        true
    }
    /// Add these labels to a task (annoform leaves out those the task already holds, so
    /// nothing is duplicated).
    fn upload_labels(
        &mut self,
        _project: &RemoteProject,
        task: &RemoteTask,
        _labels: &TaskSpec,
    ) -> Result<(), BackendError> {
        Err(BackendError::new(
            String::new(),
            format!(
                "task `{}` lacks labels annoform uploaded, and this backend cannot add labels to an existing task; delete the task in the backend and apply again",
                task.name
            ),
        ))
    }
    /// The backend ids the labels of `task` go up under, for backends that make them from our
    /// label ids (Darwin derives its annotation ids from them): backend id → our label id,
    /// recorded in the run's id map. Empty for backends whose servers choose the ids.
    fn label_ids(&self, _task: &TaskSpec) -> Vec<(String, String)> {
        Vec::new()
    }
    /// What the run's record keeps of a task once its label step is done (`labels`: the
    /// batch's samples with every label, whether or not any went up in this process), handed
    /// back with the task's record through [`attach`](Backend::attach); `None`: nothing.
    /// CVAT keeps the ids the server gave a video task's tracks, so a track relabelled in its
    /// UI (which clears the track's attributes) is still known.
    fn task_notes(
        &mut self,
        _project: &RemoteProject,
        _task: &RemoteTask,
        _labels: &TaskSpec,
    ) -> Result<Option<serde_json::Value>, BackendError> {
        Ok(None)
    }
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
    /// The annotations of these tasks, handed to `sink` page by page; returns the cursor for
    /// the next download and the samples the tasks hold.
    ///
    /// With `since` (a cursor this backend returned before), the backend may hand only the
    /// samples whose annotations may have changed after it — more is fine, fewer is not — so
    /// a refresh with nothing new downloads next to nothing. Without it, every sample of the
    /// tasks is handed.
    ///
    /// A handed sample is evidence: its labels are all the backend holds for it, so a label
    /// absent from it was deleted. Everything else is unknown, never empty: the download is
    /// verified complete against what the server itself announces (totals, listings, the ids
    /// asked for), and a short, missing or inconsistent answer is retried and then an error —
    /// never the end of the download.
    fn download(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
        since: Option<&str>,
        sink: &mut PageSink<'_>,
    ) -> Result<Downloaded, BackendError>;
    /// The cursor a run's first refresh starts from, taken once its tasks (`tasks`, ids) are
    /// up with their labels: a [`download`](Backend::download) since it hands every sample
    /// annotators changed after annoform's own writes, so the first refresh does not download
    /// every task. `None`: the backend cannot tell, and the first refresh downloads everything.
    fn cursor(
        &mut self,
        _project: &RemoteProject,
        _tasks: &[String],
    ) -> Result<Option<String>, BackendError> {
        Ok(None)
    }
    /// Whether nothing a refresh looks at changed since `cursor` (a cursor this backend
    /// returned): no annotation written, no task added, changed or removed, the project still
    /// there. Backends that can answer it in one request let a no-op plan cost one request per
    /// project; `false` (the default) means "look".
    fn unchanged_since(
        &mut self,
        _project: &RemoteProject,
        _cursor: &str,
    ) -> Result<bool, BackendError> {
        Ok(false)
    }
    /// Delete the project and everything in it.
    fn delete_project(&mut self, project: &RemoteProject) -> Result<(), BackendError>;
    /// Where people open a project in the backend's UI.
    fn project_url(&self, project: &RemoteProject) -> Option<String> {
        project.url.clone()
    }
    /// Where people open one of a project's tasks in the backend's UI.
    fn task_url(&self, _project: &RemoteProject, _task: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_http_failures_are_transient() {
        use http::{Endpoint, HttpError};
        let endpoint = || {
            Box::new(Endpoint {
                server: "labelstudio".into(),
                base_url: "http://127.0.0.1:1".into(),
                method: reqwest::Method::POST,
                path: "/api/projects".into(),
            })
        };
        let status = |code: u16| HttpError::Status {
            endpoint: endpoint(),
            status: reqwest::StatusCode::from_u16(code).unwrap(),
            body: String::new(),
            retry_after: None,
            attempts: 1,
        };
        assert_eq!(Cause::of(&status(401)), Cause::Credentials);
        assert_eq!(Cause::of(&status(403)), Cause::Credentials);
        assert_eq!(Cause::of(&status(400)), Cause::Refused);
        assert_eq!(Cause::of(&status(429)), Cause::Transient);
        assert_eq!(Cause::of(&status(502)), Cause::Transient);
        let timeout = HttpError::Timeout {
            endpoint: endpoint(),
            after: std::time::Duration::from_secs(1),
            attempts: 3,
        };
        assert_eq!(Cause::of(&timeout), Cause::Transient);
        let decode = HttpError::Decode {
            endpoint: endpoint(),
            message: "expected value".into(),
            body: "<html>".into(),
        };
        assert_eq!(Cause::of(&decode), Cause::Other);
    }

    #[test]
    fn owner_stamps_read_back_from_any_line() {
        let o = Owner {
            dataset: "my data&set=1".into(),
            dataset_id: Some("6b02536163110a1e76c075f6".into()),
            key: "review".into(),
            lineage: "0123456789abcdef".into(),
        };
        let tag = o.tag();
        assert!(
            tag.starts_with("annoform:run?dataset=my%20data%26set%3D1&"),
            "{tag}"
        );
        assert_eq!(Owner::find_in(&tag), Some(o.clone()));
        let description = format!("Managed by annoform.\n\n{tag}\n");
        assert_eq!(Owner::find_in(&description), Some(o.clone()));
        let without_id = Owner {
            dataset_id: None,
            ..o
        };
        assert_eq!(Owner::find_in(&without_id.tag()), Some(without_id));
        assert_eq!(Owner::find_in("annoform://review/batch-0000"), None);
        assert_eq!(Owner::find_in("annoform:run?dataset=a&key=b"), None);
        assert_eq!(Owner::find_in(""), None);
    }
}
