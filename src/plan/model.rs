//! The plan as data: what `plan` computed and `apply` carries out. Renderers (text, JSON,
//! Markdown) are pure functions of it. The JSON form is a versioned contract (DESIGN §6).

use crate::dataset::{FieldPath, FrameNumber};
use crate::manifest::{LabelType, LoadWhen, Unexpected};
use crate::schema::ResolvedSchema;
use crate::schema::diff::SchemaChange;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The JSON format version of plans.
pub const FORMAT_VERSION: &str = "2";

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    pub runs: Vec<RunPlan>,
    pub summary: Summary,
    /// Whether applying the plan would change anything.
    pub changes: bool,
}

/// What happens to one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    pub key: String,
    pub dataset: String,
    pub backend: String,
    /// Empty: no change.
    pub actions: Vec<Action>,
    /// Samples in the run.
    pub samples: usize,
    /// Backend tasks of the run (after apply).
    pub tasks: usize,
    pub fields: IndexMap<FieldPath, FieldCounts>,
    pub rejected: Vec<Rejection>,
    /// The labels the merge edits, each with its properties before and after (the first
    /// 1000 samples with changes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<LabelEdit>,
    /// Labels outside the schema that the merge does not put in their field, each with what
    /// happens to it (`load.unexpected`).
    #[serde(default)]
    pub unexpected: Vec<UnexpectedLabel>,
    /// Backend objects changed outside annoform.
    pub drift: Vec<Drift>,
    /// What the actions do, step by step (shown with --verbose).
    pub details: Vec<Detail>,
    /// The merge waits for annotators (`load.when`): no action yet, shown so a reader knows
    /// why nothing is merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// How the label schema changes (`~ update`, or the `-/+ replace` a schema change needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_change: Option<SchemaChange>,
    /// The label schema the run uses, resolved (absent when the run is destroyed or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<ResolvedSchema>,
    /// Why the run could not be planned: nothing is done to it, the other runs go ahead, and
    /// the command exits 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What to do about `error`: what to change, or that re-running resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The labels `error` is about, when it names labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<LabelFailure>,
}

/// The kinds of action a run can need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Extend,
    Update,
    Replace,
    Merge,
    Destroy,
    Drift,
}

impl Action {
    /// Every action, in display order.
    pub const ALL: [Action; 7] = [
        Action::Create,
        Action::Extend,
        Action::Update,
        Action::Replace,
        Action::Merge,
        Action::Destroy,
        Action::Drift,
    ];

    /// The plan symbol (`+ ~ -/+ <= - !`).
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create | Action::Extend => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Merge => "<=",
            Action::Destroy => "-",
            Action::Drift => "!",
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Extend => "extend",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Merge => "merge",
            Action::Destroy => "destroy",
            Action::Drift => "drift",
        }
    }
}

/// Label counts of one field (DESIGN §6: a label counts once in `edited` however many of its
/// properties change, and once in `rejected` if any change is forbidden).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldCounts {
    pub upload: usize,
    pub added: usize,
    pub edited: usize,
    pub deleted: usize,
    pub rejected: usize,
    pub unchanged: usize,
    /// Downloaded labels outside the schema that do not go into the field (kept in a field
    /// named after their type, ignored or returned); each is itemised in `unexpected`.
    #[serde(default)]
    pub unexpected: usize,
    /// The applied edits by kind (a label edited in two ways counts in both; absent when
    /// nothing is edited).
    #[serde(default, skip_serializing_if = "EditKinds::is_empty")]
    pub edits: EditKinds,
}

/// Applied edits by kind of change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditKinds {
    pub label: usize,
    pub geometry: usize,
    pub index: usize,
    pub attributes: usize,
}

impl EditKinds {
    fn is_empty(&self) -> bool {
        *self == EditKinds::default()
    }

    /// Count one label's applied changes (`label`, `geometry`, `index`, `attribute:<name>`,
    /// `value`): each kind once.
    pub fn count(&mut self, applied: &[String]) {
        let has = |k: &str| applied.iter().any(|a| a == k);
        self.label += usize::from(has("label") || has("value"));
        self.geometry += usize::from(has("geometry"));
        self.index += usize::from(has("index"));
        self.attributes += usize::from(applied.iter().any(|a| a.starts_with("attribute:")));
    }

    /// Fold in another field's or sample's counts.
    pub fn add(&mut self, o: &EditKinds) {
        self.label += o.label;
        self.geometry += o.geometry;
        self.index += o.index;
        self.attributes += o.attributes;
    }

    /// `label 2, geometry 1` (kinds with a count only).
    pub fn describe(&self) -> String {
        [
            ("label", self.label),
            ("geometry", self.geometry),
            ("index", self.index),
            ("attributes", self.attributes),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// A change the restrictions forbid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub sample_id: String,
    /// The video frame of a frame field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameNumber>,
    pub label_id: String,
    pub field: String,
    /// What the backend changed.
    pub change: ChangeKind,
    /// The attribute, for an `attribute` change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Why the change is not applied.
    pub reason: Refusal,
}

/// The kinds of change to a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Add,
    Delete,
    Label,
    Geometry,
    Index,
    Attribute,
}

impl ChangeKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Add => "add",
            ChangeKind::Delete => "delete",
            ChangeKind::Label => "label",
            ChangeKind::Geometry => "geometry",
            ChangeKind::Index => "index",
            ChangeKind::Attribute => "attribute",
        }
    }
}

/// A field restriction (`restrictions:` in a manifest) that can forbid a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restriction {
    AllowAdditions,
    AllowDeletions,
    AllowLabelEdits,
    AllowIndexEdits,
    AllowSpatialEdits,
}

impl Restriction {
    /// The manifest key.
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::AllowAdditions => "allow_additions",
            Restriction::AllowDeletions => "allow_deletions",
            Restriction::AllowLabelEdits => "allow_label_edits",
            Restriction::AllowIndexEdits => "allow_index_edits",
            Restriction::AllowSpatialEdits => "allow_spatial_edits",
        }
    }
}

/// Why a change the backend holds is not merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// The field's restriction is false.
    Restricted { restriction: Restriction },
    /// The attribute is read-only.
    ReadOnly,
    /// The field holds a single label and already has one.
    FieldHoldsOne,
    /// A relabel to a class outside the schema (merged only with `load.unexpected: keep`).
    ClassNotInSchema,
    /// A label outside the schema that `load.unexpected` lists rather than merges.
    Unexpected { why: String, policy: Unexpected },
    /// An object the field cannot hold (`why`, in the backend's terms), or one it could hold
    /// as another label type were additions allowed.
    Unfit {
        why: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restriction: Option<Restriction>,
    },
}

/// A merge waiting for annotators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// Tasks complete.
    pub complete: usize,
    /// Tasks the merge waits for.
    pub tasks: usize,
    /// The run's `load.when`.
    pub when: LoadWhen,
    /// The first few tasks not complete, with the backend's word for how far they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<OpenTask>,
}

/// A task a merge waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTask {
    /// Its name (the backend's id when the record does not know it).
    pub task: String,
    /// The backend's own word: `annotation`, `3/10 labeled`….
    pub status: String,
}

/// Backend objects changed outside annoform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Drift {
    /// The run's project is gone: apply recreates it with every task.
    ProjectMissing {
        project: String,
        id: String,
        backend: String,
    },
    /// A task is gone: apply recreates it.
    TaskMissing { task: String, id: String },
    /// Samples gone from a task; their labels are kept.
    SamplesMissing {
        task: String,
        id: String,
        backend: String,
        /// How many are missing.
        missing: usize,
        /// The first few of them.
        samples: Vec<String>,
    },
}

/// What an action does, one step of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    /// `+ create`: a new project with the run's samples.
    CreateProject {
        project: String,
        samples: usize,
        tasks: usize,
    },
    /// `- destroy`: the project and its tasks are deleted.
    DeleteProject { project: String, tasks: usize },
    /// `- destroy` of a run without backend objects.
    ForgetRun,
    /// The run was merged and its project cleaned up: nothing more to do.
    Finished,
    /// `~ update` of settings only the record keeps (view, load, lifecycle).
    SettingsChanged,
    /// `-/+ replace`: the run moves to another backend.
    BackendChanged { from: String, to: String },
    /// `~ update`: the label schema is updated in place.
    SchemaInPlace,
    /// `-/+ replace`: the backend cannot apply the schema change in place.
    SchemaRecreates { backend: String },
    /// `-/+ replace` drops annotations not merged yet.
    UnmergedDiscarded { tasks: usize },
    /// `+ extend`: new samples in new tasks.
    UploadNew { samples: usize, tasks: usize },
    /// `+ extend`: tasks an interrupted apply left with labels not all uploaded.
    FinishUploads { tasks: usize },
    /// A run naming a shared CVAT project whose classes differ from the manifest's.
    SharedProjectSchemaKept,
    /// Upload into an existing project, adding the run's classes to it.
    ExistingProjectExtended { project: String, id: String },
    /// Upload into an existing project whose labels are the run's classes.
    ExistingProjectClasses {
        project: String,
        id: String,
        classes: Vec<String>,
    },
    /// `<= merge` of a merge the dataset holds already but the record does not.
    RecordMerge,
    /// A backend object no sample of the run takes.
    NotMerged {
        backend: String,
        object: String,
        task: String,
        /// Where it is and why, in the backend's terms.
        reason: String,
    },
    /// Unexpected labels written to the returned-labels file.
    ReturnUnexpected { labels: usize, path: String },
    /// What the merge changes in one field of one sample.
    SampleChanges(SampleChanges),
    /// Samples with changes past those listed.
    MoreSamples { samples: usize },
    /// The project is deleted after the final merge (`load.cleanup`).
    Cleanup { project: String },
}

/// What the merge changes in one field of one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleChanges {
    pub sample_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameNumber>,
    pub field: String,
    pub changes: Vec<LabelChange>,
}

/// One label the merge adds, edits or deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LabelChange {
    Added {
        label_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<String>,
        /// A class outside the schema, kept (`load.unexpected: keep`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        outside_schema: bool,
    },
    Edited {
        label_id: String,
        /// `label`, `geometry`, `index`, `attribute:<name>`, `value`.
        applied: Vec<String>,
    },
    Deleted {
        label_id: String,
    },
}

/// A label the merge edits: what changes in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelEdit {
    pub sample_id: String,
    /// The video frame of a frame field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameNumber>,
    pub field: String,
    pub label_id: String,
    /// Each property that changes, in the label's order.
    pub changes: Vec<PropertyChange>,
}

/// One property of a label before and after the merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyChange {
    /// `label`, `bounding_box`, an attribute's name, … (`value` for a scalar field).
    pub property: String,
    /// Compact JSON, cut at [`PropertyChange::MAX_CHARS`] characters; absent when the label
    /// did not have the property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Absent when the merge removes the property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl PropertyChange {
    /// Values longer than this (masks, long polylines) are cut, with an ellipsis.
    pub const MAX_CHARS: usize = 120;

    /// The properties in which `before` and `after` differ (a label's `_id` aside; a
    /// non-object label, a scalar, is one property, `value`).
    pub fn between(before: &serde_json::Value, after: &serde_json::Value) -> Vec<PropertyChange> {
        let text = |v: Option<&serde_json::Value>| v.filter(|v| !v.is_null()).map(compact);
        let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
            return if before == after {
                Vec::new()
            } else {
                vec![PropertyChange {
                    property: "value".into(),
                    before: text(Some(before)),
                    after: text(Some(after)),
                }]
            };
        };
        b.keys()
            .chain(a.keys().filter(|k| !b.contains_key(*k)))
            .filter(|k| *k != "_id" && b.get(*k) != a.get(*k))
            .map(|k| PropertyChange {
                property: k.clone(),
                before: text(b.get(k)),
                after: text(a.get(k)),
            })
            .filter(|c| c.before != c.after)
            .collect()
    }
}

/// A value as compact JSON, cut at [`PropertyChange::MAX_CHARS`] characters.
fn compact(v: &serde_json::Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(PropertyChange::MAX_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// A downloaded label outside the run's schema (a class or a label type the field does not
/// have) that does not go into its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnexpectedLabel {
    pub sample_id: String,
    /// The video frame of a frame field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameNumber>,
    /// The run's field it was drawn for.
    pub field: String,
    /// The backend's id of the object.
    pub backend_id: String,
    /// Its label type and class, e.g. ``polylines `car` ``.
    pub label: String,
    /// Why it does not fit.
    pub reason: String,
    pub action: UnexpectedAction,
    /// The field a kept label goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
}

/// Labels that stop a run's merge: nothing of it is merged until they are settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LabelFailure {
    /// Labels outside the schema, with `load.unexpected: error`.
    Unexpected { labels: Vec<OutsideSchema> },
    /// Labels changed both in the dataset since upload and in the backend, with
    /// `load.conflicts: error`.
    Conflicts {
        backend: String,
        labels: Vec<Conflict>,
    },
}

/// A label the backend returned outside the run's schema, which `load.unexpected: error`
/// refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutsideSchema {
    pub sample_id: String,
    /// The video frame of a frame field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameNumber>,
    /// The run's field it was drawn for.
    pub field: String,
    #[serde(flatten)]
    pub label: OutsideLabel,
}

/// How a label is outside the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutsideLabel {
    /// A label the field cannot take: a new one of a class the schema does not list, or an
    /// object of another label type.
    Unexpected {
        /// The backend's id of the object.
        backend_id: String,
        label_type: LabelType,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<String>,
        /// Why it does not fit (the backend's words for an object of another type).
        reason: String,
    },
    /// A label of the field relabelled in the backend to a class the schema does not list.
    Relabelled { label_id: String, class: String },
}

/// A label changed both in the dataset since upload and in the backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub sample_id: String,
    /// The video frame of a frame field's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameNumber>,
    pub field: String,
    pub label_id: String,
}

/// What the merge does with an unexpected label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnexpectedAction {
    /// Written to `dest` (`load.unexpected: keep`).
    Kept,
    /// Left out of the dataset (`load.unexpected: ignore`).
    Ignored,
    /// Left out of the dataset and written to the run's unexpected-labels file
    /// (`load.unexpected: return`).
    Returned,
}

impl UnexpectedAction {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnexpectedAction::Kept => "kept",
            UnexpectedAction::Ignored => "ignored",
            UnexpectedAction::Returned => "returned",
        }
    }
}

/// Runs per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub extend: usize,
    pub update: usize,
    pub replace: usize,
    pub merge: usize,
    pub destroy: usize,
    pub drift: usize,
}

impl Summary {
    /// Count the actions of `runs`.
    pub fn of(runs: &[RunPlan]) -> Summary {
        let mut s = Summary::default();
        for a in runs.iter().flat_map(|r| &r.actions) {
            *match a {
                Action::Create => &mut s.create,
                Action::Extend => &mut s.extend,
                Action::Update => &mut s.update,
                Action::Replace => &mut s.replace,
                Action::Merge => &mut s.merge,
                Action::Destroy => &mut s.destroy,
                Action::Drift => &mut s.drift,
            } += 1;
        }
        s
    }

    /// The count of one action.
    pub fn get(&self, a: Action) -> usize {
        match a {
            Action::Create => self.create,
            Action::Extend => self.extend,
            Action::Update => self.update,
            Action::Replace => self.replace,
            Action::Merge => self.merge,
            Action::Destroy => self.destroy,
            Action::Drift => self.drift,
        }
    }
}

impl Plan {
    /// The runs that could not be planned.
    pub fn failed(&self) -> impl Iterator<Item = &RunPlan> {
        self.runs.iter().filter(|r| r.error.is_some())
    }

    /// A plan of these runs, with summary and `changes` derived.
    pub fn new(runs: Vec<RunPlan>) -> Plan {
        let summary = Summary::of(&runs);
        let changes = runs.iter().any(|r| !r.actions.is_empty());
        Plan {
            format_version: FORMAT_VERSION.to_string(),
            runs,
            summary,
            changes,
        }
    }
}
