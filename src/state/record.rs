//! Run records: what was created for a run and what was merged. Never holds secrets.

use crate::dataset::ejson::ObjectId;
use crate::dataset::{FieldPath, FrameNumber};
use crate::manifest::ViewStage;
use crate::plan::Rejection;
use crate::schema::ResolvedSchema;
use crate::state::error::{Result, StateError};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

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
    /// Digest of what `schema` was resolved from (the run as in its manifest, the backend
    /// kind, the dataset's content and the schema itself), kept once resolving them gave this
    /// schema and found every label of the view sendable: while a plan's inputs digest the
    /// same, it takes the schema as recorded instead of resolving and checking again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_from: Option<String>,
    /// Backend name (as in manifests) and its non-secret settings.
    pub backend: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub backend_config: serde_json::Map<String, serde_json::Value>,
    pub schema: ResolvedSchema,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub view: Vec<ViewStage>,
    /// Samples uploaded, in task order.
    pub samples: Vec<String>,
    /// Sample field → sample id → labels uploaded (id and content digest).
    #[serde(default)]
    pub uploaded: IndexMap<FieldPath, IndexMap<String, Vec<UploadedLabel>>>,
    /// Frame field → video sample id → frame number → labels uploaded on that frame (only
    /// frames that hold some).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub uploaded_frames: IndexMap<FieldPath, IndexMap<String, FrameLabels>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<BackendObject>,
    /// The lineage stamped on the project when another run of this workspace made it
    /// (`project_name` shared): destroy may delete it once nothing else is in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_maker: Option<String>,
    #[serde(default)]
    pub tasks: Vec<TaskRecord>,
    /// Batches whose task holds its media but whose labels may not all be uploaded yet: the
    /// label upload is a step of its own, saved apart, so the next apply finishes it
    /// (uploading what the backend lacks) and no merge reads such a task before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels_pending: Vec<u32>,
    /// Backend object id → our label id, for backends that cannot carry our ids.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub id_map: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeCheckpoint>,
    /// The backend's cursor once the run's tasks were up, before any merge: the first refresh
    /// asks only for what annotators changed since (after a merge, the merge's cursor counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_cursor: Option<String>,
    /// Remembered from the manifest so a run removed from the manifests is still protected.
    #[serde(default)]
    pub prevent_destroy: bool,
    /// The run created its project, rather than finding it in place (a Darwin dataset named
    /// by `dataset_slug` may be anyone's): only then does destroy delete it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub project_created: bool,
    /// The backend objects were deleted after the final merge (`load.cleanup`).
    #[serde(default)]
    pub cleaned_up: bool,
}

/// The labels of one video's frames, by frame number.
pub type FrameLabels = std::collections::BTreeMap<FrameNumber, Vec<UploadedLabel>>;

/// A label as uploaded (or as the backend held it at the last merge): 28 bytes, since a record
/// holds one per label of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedLabel {
    pub id: LabelKey,
    pub digest: Digest16,
}

/// A label's key within its field: its id, or `value` for a scalar field's one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LabelKey {
    Id(ObjectId),
    Value,
}

impl fmt::Display for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelKey::Id(id) => id.fmt(f),
            LabelKey::Value => f.write_str("value"),
        }
    }
}

impl FromStr for LabelKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "value" => Ok(LabelKey::Value),
            s => ObjectId::parse(s)
                .map(LabelKey::Id)
                .map_err(|e| format!("label key: {e}")),
        }
    }
}

/// The first 16 bytes of a SHA-256, written as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest16(pub [u8; 16]);

impl fmt::Display for Digest16 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Digest16 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest16 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("digest `{s}` is not 32 hex digits");
        if s.len() != 32 || !s.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Digest16(out))
    }
}

/// Serde as the Display/FromStr string.
macro_rules! serde_as_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_string!(LabelKey);
serde_as_string!(Digest16);

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
    /// What the backend asked to keep of the task once its labels were up (CVAT: the ids
    /// the server gave a video task's tracks, and what went up on each frame), handed back
    /// to it with the record ([`crate::backend::Backend::task_notes`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<serde_json::Value>,
}

/// What the last merge saw and did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeCheckpoint {
    /// Digest of the backend annotations merged.
    pub annotations_digest: String,
    pub merged_at: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
    /// The backend's cursor after this merge: the next refresh asks only for what changed
    /// since (absent when the backend cannot tell, or after a schema change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl RunRecord {
    /// A new, empty record (serial 0: not saved yet) created at `now` (RFC 3339).
    pub fn new(dataset: &str, key: &str, backend: &str, now: &str, lineage: String) -> RunRecord {
        RunRecord {
            format_version: RECORD_VERSION,
            dataset: dataset.to_string(),
            key: key.to_string(),
            serial: 0,
            lineage,
            created_at: now.to_string(),
            updated_at: now.to_string(),
            manifest_digest: String::new(),
            resolved_from: None,
            backend: backend.to_string(),
            backend_config: serde_json::Map::new(),
            schema: ResolvedSchema::default(),
            view: Vec::new(),
            samples: Vec::new(),
            uploaded: IndexMap::new(),
            uploaded_frames: IndexMap::new(),
            project: None,
            project_maker: None,
            tasks: Vec::new(),
            labels_pending: Vec::new(),
            id_map: IndexMap::new(),
            merge: None,
            created_cursor: None,
            prevent_destroy: false,
            project_created: false,
            cleaned_up: false,
        }
    }

    /// The cursor the next refresh starts from: the last merge's, else the one taken when
    /// the tasks were created (`None`: download everything).
    pub fn refresh_cursor(&self) -> Option<&str> {
        match &self.merge {
            Some(m) => m.cursor.as_deref(),
            None => self.created_cursor.as_deref(),
        }
    }

    /// Move the refresh cursor (where [`refresh_cursor`](RunRecord::refresh_cursor) reads it).
    pub fn set_refresh_cursor(&mut self, cursor: Option<String>) {
        match &mut self.merge {
            Some(m) => m.cursor = cursor,
            None => self.created_cursor = cursor,
        }
    }

    /// Marks the record as changed at `now` (RFC 3339); `put` leaves timestamps to callers
    /// so that a plan and its apply can share one clock reading.
    pub fn touch(&mut self, now: &str) {
        self.updated_at = now.to_string();
    }
}

/// Parses and checks a stored record; `place` names where it is kept, for errors.
pub fn from_json(text: &str, place: &str) -> Result<RunRecord> {
    let corrupt = |message: String| StateError::Corrupt {
        place: place.to_string(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    // The version is checked before the shape so a newer format reads as "upgrade", not
    // as a pile of field errors.
    match value.get("format_version").map(serde_json::Value::as_u64) {
        Some(Some(v)) if v == u64::from(RECORD_VERSION) => {}
        Some(Some(found)) => {
            return Err(StateError::UnknownVersion {
                place: place.to_string(),
                found,
                supported: RECORD_VERSION,
            });
        }
        _ => return Err(corrupt("no numeric `format_version`".to_string())),
    }
    serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))
}

/// A record as stored: pretty JSON with a trailing newline, fields in declaration order and
/// maps in their own order (so every store holds, and gives back, the same bytes).
pub fn to_json(record: &RunRecord, place: &str) -> Result<String> {
    serde_json::to_string_pretty(record)
        .map(|s| s + "\n")
        .map_err(|e| StateError::Corrupt {
            place: place.to_string(),
            message: format!("cannot serialise: {e}"),
        })
}

/// The current time as stored in records: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    crate::state::holder::rfc3339(std::time::SystemTime::now())
}

/// A fresh lineage id: 16 random hex characters.
pub fn new_lineage() -> String {
    let mut bytes = [0u8; 8];
    // The OS random source failing is not something a lineage id can recover from; fall
    // back to time and pid, which are still unique enough to tell records apart.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (nanos ^ (u64::from(std::process::id()) << 32)).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineages_are_16_hex_and_distinct() {
        let a = new_lineage();
        let b = new_lineage();
        assert_eq!(a.len(), 16);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn new_record_is_unsaved_and_current_version() {
        let r = RunRecord::new("ds", "k", "cvat", "2026-01-01T00:00:00Z", "ab".into());
        assert_eq!(r.serial, 0);
        assert_eq!(r.format_version, RECORD_VERSION);
        assert_eq!(r.created_at, r.updated_at);
        assert_eq!((r.dataset.as_str(), r.key.as_str()), ("ds", "k"));
    }
}
