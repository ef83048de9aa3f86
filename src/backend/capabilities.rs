//! What each backend can do, declared as data so validation and planning can use it before
//! (and without) talking to a server.

use crate::manifest::{AttributeType, LabelType};
use crate::schema::ResolvedAttribute;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The built-in backend implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cvat,
    Labelstudio,
    Darwin,
    /// An executable speaking annoform's JSON-lines protocol.
    Custom,
}

impl BackendKind {
    /// The built-in backends (every kind but custom ones), addressable by their names without
    /// configuration, in the registry's order.
    pub fn builtins() -> impl Iterator<Item = BackendKind> {
        super::registry::KINDS
            .iter()
            .map(|k| k.kind)
            .filter(|k| *k != BackendKind::Custom)
    }

    /// The backend's name in manifests and environment variables.
    pub fn as_str(self) -> &'static str {
        self.entry().name
    }

    /// A built-in backend by name.
    pub fn builtin(name: &str) -> Option<BackendKind> {
        Self::builtins().find(|k| k.as_str() == name)
    }

    /// What the backend supports.
    pub fn capabilities(self) -> &'static Capabilities {
        self.entry().capabilities
    }

    /// The widget this backend recommends for an existing attribute named `name` whose first
    /// value is `value` (FiftyOne's `recommend_attr_tool`; `Value::Null` for a name alone).
    pub fn recommend_attribute(self, name: &str, value: &serde_json::Value) -> ResolvedAttribute {
        use serde_json::Value;
        let caps = self.capabilities();
        let attr_type = match value {
            Value::Bool(_)
                if name == "occluded" && caps.supports_attribute_type(AttributeType::Occluded) =>
            {
                AttributeType::Occluded
            }
            Value::Number(n)
                if name == "group_id"
                    && n.is_i64()
                    && caps.supports_attribute_type(AttributeType::GroupId) =>
            {
                AttributeType::GroupId
            }
            Value::Bool(_) if caps.supports_attribute_type(AttributeType::Checkbox) => {
                AttributeType::Checkbox
            }
            _ => AttributeType::Text,
        };
        ResolvedAttribute {
            attr_type,
            values: Vec::new(),
            default: None,
            read_only: false,
            mutable: true,
        }
    }

    /// The JSON Schema of this backend's `backend_config` (and `[backends.<name>]` table).
    pub fn config_schema(self) -> serde_json::Value {
        serde_json::to_value((self.entry().config_schema)()).unwrap_or_default()
    }

    /// The names of the settings this backend takes (for environment variable lookup).
    pub fn setting_names(self) -> Vec<String> {
        self.config_schema()
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backend's declared capabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Label types it can annotate.
    pub label_types: Cow<'static, [LabelType]>,
    /// Attribute widgets it has (empty: no attributes at all).
    pub attribute_types: Cow<'static, [AttributeType]>,
    /// Whether it annotates videos (frame fields).
    pub video: bool,
    /// Whether scalar fields may hold strings (class lists); otherwise numbers only.
    pub string_scalars: bool,
    /// How many label fields one run may have.
    pub max_fields: Option<usize>,
    /// Whether the editor itself stops forbidden edits (otherwise only the merge does).
    pub editor_enforces_restrictions: bool,
    /// Whether classes and attributes can be added to an existing project in place.
    pub schema_update_in_place: bool,
}

impl Capabilities {
    /// Whether `t` is supported.
    pub fn supports_label_type(&self, t: LabelType) -> bool {
        self.label_types.contains(&t)
    }

    /// Whether attribute widget `t` is supported.
    pub fn supports_attribute_type(&self, t: AttributeType) -> bool {
        self.attribute_types.contains(&t)
    }
}

pub static CVAT: Capabilities = Capabilities {
    label_types: Cow::Borrowed(&LabelType::ALL),
    attribute_types: Cow::Borrowed(&AttributeType::ALL),
    video: true,
    string_scalars: true,
    max_fields: None,
    editor_enforces_restrictions: true,
    schema_update_in_place: true,
};

pub static LABELSTUDIO: Capabilities = Capabilities {
    label_types: Cow::Borrowed(&LabelType::ALL),
    attribute_types: Cow::Borrowed(&[]),
    video: false,
    string_scalars: false,
    max_fields: None,
    editor_enforces_restrictions: false,
    schema_update_in_place: true,
};

pub static DARWIN: Capabilities = Capabilities {
    label_types: Cow::Borrowed(&[
        LabelType::Classification,
        LabelType::Classifications,
        LabelType::Detections,
        LabelType::Polylines,
        LabelType::Polygons,
        LabelType::Keypoints,
    ]),
    attribute_types: Cow::Borrowed(&[]),
    video: false,
    string_scalars: false,
    max_fields: Some(1),
    editor_enforces_restrictions: false,
    schema_update_in_place: false,
};

/// What a custom backend supports unless it says otherwise.
pub static CUSTOM: Capabilities = Capabilities {
    label_types: Cow::Borrowed(&LabelType::ALL),
    attribute_types: Cow::Borrowed(&AttributeType::ALL),
    video: true,
    string_scalars: true,
    max_fields: None,
    editor_enforces_restrictions: false,
    schema_update_in_place: false,
};

/// A secret: never written literally, always `${env:NAME}` (resolved at run time, never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SecretRef(
    #[schemars(regex(pattern = r"^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$"))] pub String,
);

/// A value that may be given once for all videos, per video in order, or per filepath.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PerVideo {
    All(u64),
    InOrder(Vec<u64>),
    ByFilepath(IndexMap<String, u64>),
}

/// `frame_step`'s schema: a [`PerVideo`] of steps of at least 1 (FiftyOne: "'frame_step'
/// must be >= 1"), or nothing.
fn per_video_step(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let step = serde_json::json!({"type": "integer", "format": "uint64", "minimum": 1});
    let schema = serde_json::json!({"anyOf": [
        step,
        {"type": "array", "items": step},
        {"type": "object", "additionalProperties": step},
        {"type": "null"},
    ]});
    schemars::Schema::try_from(schema).expect("an object is a schema")
}

/// One or several usernames / URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrList {
    One(String),
    List(Vec<String>),
}

/// CVAT settings (FiftyOne's `CVATBackendConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CvatConfig {
    /// Server URL (default https://app.cvat.ai).
    pub url: Option<String>,
    /// Username, as `${env:NAME}`.
    pub username: Option<SecretRef>,
    /// Password, as `${env:NAME}`.
    pub password: Option<SecretRef>,
    /// Access token, as `${env:NAME}` (instead of username/password).
    pub api_key: Option<SecretRef>,
    /// Email sent with the username and password at login (as FiftyOne sends it), as
    /// `${env:NAME}`.
    pub email: Option<SecretRef>,
    /// Extra HTTP headers; values as `${env:NAME}`.
    pub headers: Option<IndexMap<String, SecretRef>>,
    /// Organization slug sent as `X-Organization`.
    pub organization: Option<String>,
    /// Maximum images per task (several tasks per run). A video run makes one task per
    /// video whatever it says, as FiftyOne does.
    #[schemars(range(min = 1))]
    pub task_size: Option<u64>,
    /// Maximum images per job.
    #[schemars(range(min = 1))]
    pub segment_size: Option<u64>,
    /// JPEG quality of uploaded images, 0-100 (default 75).
    #[schemars(range(max = 100))]
    pub image_quality: Option<u64>,
    /// Let CVAT prepare chunks on the fly (default true).
    pub use_cache: Option<bool>,
    /// Upload video frames in ZIP chunks (default true).
    pub use_zip_chunks: Option<bool>,
    /// Frames per ZIP chunk.
    #[schemars(range(min = 1))]
    pub chunk_size: Option<u64>,
    /// Username(s) to assign tasks to (round-robin).
    pub task_assignee: Option<OneOrList>,
    /// Usernames to assign jobs to (round-robin).
    pub job_assignees: Option<Vec<String>>,
    /// Refused: CVAT 2.x has no job reviewers (FiftyOne: CVAT v1 servers only).
    pub job_reviewers: Option<Vec<String>>,
    /// Project to upload into: reused by name, created otherwise.
    pub project_name: Option<String>,
    /// Existing project to upload into.
    pub project_id: Option<u64>,
    /// With `project_id`, or a `project_name` that already exists: add the run's classes and
    /// attributes to that project. By default (false) the project's own labels are the run's
    /// schema and the manifest's classes and attributes are not used, as in FiftyOne.
    pub extend_project_schema: Option<bool>,
    /// Task name (a batch suffix is added when a run has several tasks).
    pub task_name: Option<String>,
    /// Attribute holding existing / receiving downloaded occluded values.
    pub occluded_attr: Option<String>,
    /// Attribute holding existing / receiving downloaded group ids.
    pub group_id_attr: Option<String>,
    /// Issue tracker URL(s) linked to the created tasks.
    pub issue_tracker: Option<OneOrList>,
    /// Video: first frame to upload.
    pub frame_start: Option<PerVideo>,
    /// Video: last frame to upload.
    pub frame_stop: Option<PerVideo>,
    /// Video: upload every Nth frame.
    #[serde(default)]
    #[schemars(schema_with = "per_video_step")]
    pub frame_step: Option<PerVideo>,
}

/// Label Studio settings (FiftyOne's `LabelStudioBackendConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelStudioConfig {
    /// Server URL (default http://localhost:8080).
    pub url: Option<String>,
    /// Legacy token or personal access token, as `${env:NAME}`.
    pub api_key: Option<SecretRef>,
    /// Project title (default `annoform/<dataset>/<key>`).
    pub project_name: Option<String>,
    /// The server's local-files document root: media under it are served, not uploaded.
    pub local_files_root: Option<String>,
}

/// V7 Darwin settings (FiftyOne's `DarwinBackendConfig`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DarwinConfig {
    /// The V7 host's root URL (default https://darwin.v7labs.com).
    pub url: Option<String>,
    /// API key, as `${env:NAME}`.
    pub api_key: Option<SecretRef>,
    /// The Darwin dataset to use, or create when missing (default: the run key, lower case,
    /// spaces as `-`). Only a dataset the run created is archived by destroy.
    pub dataset_slug: Option<String>,
    /// Slug of a Darwin external storage holding the media: items are registered from it
    /// (storage key = the media path without `scheme://bucket/`), not uploaded.
    pub external_storage: Option<String>,
    /// Seconds to wait for uploaded items to be processed (default 600).
    #[schemars(range(min = 0))]
    pub processing_timeout: Option<f64>,
    /// Seconds to wait for a download's export to complete (default 600).
    #[schemars(range(min = 0))]
    pub export_timeout: Option<f64>,
}

/// A custom backend: an executable speaking annoform's JSON-lines protocol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomConfig {
    /// The program and its arguments.
    pub command: Option<Vec<String>>,
    /// Server URL passed to the program.
    pub url: Option<String>,
    /// API key passed to the program, as `${env:NAME}`.
    pub api_key: Option<SecretRef>,
    /// Maximum samples per task (several tasks per run).
    #[schemars(range(min = 1))]
    pub task_size: Option<u64>,
    /// Project name (default `annoform/<dataset>/<key>`).
    pub project_name: Option<String>,
    /// Free-form settings passed to the program.
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Setting names whose values are secrets.
pub const SECRET_SETTINGS: [&str; 5] = ["username", "password", "api_key", "headers", "email"];

/// Whether a setting name holds a secret.
pub fn is_secret_setting(name: &str) -> bool {
    SECRET_SETTINGS.contains(&name) || name.ends_with("token")
}
