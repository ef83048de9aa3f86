//! Run records: what was created for a run and what was merged. Never holds secrets.

use crate::manifest::ViewStage;
use crate::plan::Rejection;
use crate::schema::ResolvedSchema;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The record format version.
pub const RECORD_VERSION: u32 = 1;

/// One run's record (one per dataset and key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format_version: u32,
    pub dataset: String,
    pub key: String,
    /// Bumped by every save; `apply PLANFILE` refuses a plan made at another serial.
    pub serial: u64,
    /// Random id fixed at creation; a record recreated under the same key has a new one.
    pub lineage: String,
    pub created_at: String,
    pub updated_at: String,
    /// Digest of the manifest document the run was last applied from.
    pub manifest_digest: String,
    /// Backend name (as in manifests) and its non-secret settings.
    pub backend: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub backend_config: serde_json::Map<String, serde_json::Value>,
    pub schema: ResolvedSchema,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub view: Vec<ViewStage>,
    /// Samples uploaded, in task order.
    pub samples: Vec<String>,
    /// field → sample id → labels uploaded (id and content digest).
    #[serde(default)]
    pub uploaded: IndexMap<String, IndexMap<String, Vec<UploadedLabel>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<BackendObject>,
    #[serde(default)]
    pub tasks: Vec<TaskRecord>,
    /// Backend object id → our label id, for backends that cannot carry our ids.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub id_map: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeCheckpoint>,
    /// Remembered from the manifest so a run removed from the manifests is still protected.
    #[serde(default)]
    pub prevent_destroy: bool,
    /// The backend objects were deleted after the final merge (`load.cleanup`).
    #[serde(default)]
    pub cleaned_up: bool,
}

/// A label as uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedLabel {
    pub id: String,
    pub digest: String,
}

/// A backend object annoform created or adopted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendObject {
    pub id: String,
    pub name: String,
}

/// One backend task: a deterministic batch of samples.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    /// Deterministic name: run key + batch id, so a crash before the record is saved is
    /// healed by adopting the task.
    pub name: String,
    pub batch: u32,
    pub samples: Vec<String>,
    /// Status as the backend last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// What the last merge saw and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeCheckpoint {
    /// Digest of the backend annotations merged.
    pub annotations_digest: String,
    pub merged_at: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
}
