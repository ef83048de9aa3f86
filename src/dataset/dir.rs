//! The `dir` store: a directory in FiftyOne's `FiftyOneDataset` export format.
//!
//! Samples (and frames) are kept as ordered JSON objects, so everything annoform does not
//! model — `_rand`, dates, unknown keys and label classes, run records — is written back as
//! it was read. Typed access goes through [`Label`]. Saving writes only the files that
//! changed, each to a temporary file in the same directory that is fsynced and then renamed,
//! and only after every file has been written, so a failed save leaves the old files intact.

use std::borrow::Cow;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::ejson::{self, IdMap, ObjectId};
use super::field_path::{FieldPath, FrameNumber, Level};
use super::fields::{FieldType, declared_label_class};
use super::labels::{self, Label, LabelError, Object};
use super::media::{self, Dimensions};
use super::scan;
use super::video::{self, VideoInfo};

/// Why a dataset could not be loaded, changed or saved. Messages name the file and, where one
/// is involved, the sample.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The directory has no `metadata.json`.
    #[error("{}: not a FiftyOneDataset directory (metadata.json is missing)", dir.display())]
    MissingMetadata {
        /// The dataset directory.
        dir: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file is not valid JSON (or its top level has the wrong shape).
    #[error("{}: line {line}, column {column}: {msg}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What serde_json reported.
        msg: String,
    },
    /// A sample, frame or label has a value of the wrong type.
    #[error("{}: {doc}: {msg}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// `sample 6b02...` or `sample #3` when it has no valid id, or `frame ...`.
        doc: String,
        /// What is wrong, with the field path.
        msg: String,
    },
    /// Two samples (or frames) share an id.
    #[error("{}: duplicate {kind} id {id} (entries #{first} and #{second})", path.display())]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// `sample` or `frame`.
        kind: &'static str,
        /// The repeated id.
        id: ObjectId,
        /// 0-based position of the first occurrence.
        first: usize,
        /// 0-based position of the second occurrence.
        second: usize,
    },
    /// Two labels share an id.
    #[error("{}: sample {sample}: field {field}: label id {id} is already used by a label of sample {other}", path.display())]
    DuplicateLabelId {
        /// The file.
        path: PathBuf,
        /// The sample holding the second occurrence.
        sample: ObjectId,
        /// Its field.
        field: String,
        /// The repeated label id.
        id: ObjectId,
        /// The sample holding the first occurrence.
        other: ObjectId,
    },
    /// A frame points at a sample that does not exist.
    #[error("{}: frame {frame}: _sample_id {sample} is not a sample of this dataset", path.display())]
    OrphanFrame {
        /// frames.json.
        path: PathBuf,
        /// The frame id.
        frame: ObjectId,
        /// The missing sample id.
        sample: ObjectId,
    },
    /// A video has two frame documents with the same number.
    #[error("{}: sample {sample}: two frames numbered {frame_number}", path.display())]
    DuplicateFrame {
        /// frames.json.
        path: PathBuf,
        /// The video sample.
        sample: ObjectId,
        /// The repeated number.
        frame_number: FrameNumber,
    },
    /// A sample's media cannot be sized.
    #[error("sample {sample}: {source}")]
    Media {
        /// The sample.
        sample: ObjectId,
        /// The unreadable file and why.
        source: media::MediaError,
    },
    /// No sample has this id.
    #[error("no sample with id {0}")]
    UnknownSample(ObjectId),
    /// A field is declared with another type than the one being written.
    #[error("field {field} is declared as {declared}, cannot hold {found}")]
    FieldType {
        /// The field.
        field: String,
        /// Its declared label class or type.
        declared: String,
        /// What was being written.
        found: String,
    },
    /// A sample field whose type cannot be declared automatically.
    #[error("{}: sample {sample}: field {field} is not declared and its type cannot be inferred from {value}", path.display())]
    UndeclaredField {
        /// samples.json or frames.json.
        path: PathBuf,
        /// A sample having it.
        sample: ObjectId,
        /// The field.
        field: String,
        /// The value, trimmed.
        value: String,
    },
}

/// One sample or frame: an ordered JSON object with a valid `_id`.
///
/// Until it is first read, a document is only its span of the file's text: a large dataset
/// costs about its file size in memory, and unchanged documents are written back byte for
/// byte. Reading parses (and caches) it; an edit re-serializes it, because a parsed tree costs
/// about ten times its JSON text in memory.
#[derive(Debug, Clone)]
pub struct Document {
    id: ObjectId,
    body: Body,
}

#[derive(Clone)]
enum Body {
    /// JSON text, parsed on first use: a span of the file as read, or the re-serialized
    /// document after an edit (`edited`).
    Text {
        text: Arc<String>,
        span: Range<usize>,
        cache: OnceLock<Object>,
        edited: bool,
        /// The span spells `NaN`/`Infinity` as Python's `json` does: parsed through
        /// [`ejson::finite_json`], written back as read.
        nonfinite: bool,
    },
    /// Created or changed in memory.
    Owned(Object),
}

impl fmt::Debug for Body {
    // The text is the whole file: show the span, not the bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Text { span, cache, .. } => match cache.get() {
                Some(o) => f
                    .debug_struct("Text")
                    .field("span", span)
                    .field("parsed", o)
                    .finish(),
                None => f
                    .debug_struct("Text")
                    .field("span", span)
                    .finish_non_exhaustive(),
            },
            Body::Owned(o) => f.debug_tuple("Owned").field(o).finish(),
        }
    }
}

impl Body {
    /// The document's JSON as `write_docs` writes it.
    fn written(&self) -> Cow<'_, [u8]> {
        match self {
            Body::Text { text, span, .. } => Cow::Borrowed(text[span.clone()].as_bytes()),
            Body::Owned(o) => Cow::Owned(serde_json::to_vec(o).unwrap_or_default()),
        }
    }

    fn parse(text: &str, span: &Range<usize>, nonfinite: bool) -> Object {
        // The span was parsed and validated as an object at load; a failure here would be a
        // bug, and an empty object is the least harmful answer.
        serde_json::from_str(&json_text(text, span, nonfinite)).unwrap_or_default()
    }
}

/// A document's JSON as serde reads it (non-finite literals rewritten when it has any).
fn json_text<'t>(text: &'t str, span: &Range<usize>, nonfinite: bool) -> Cow<'t, str> {
    let doc = &text[span.clone()];
    match nonfinite.then(|| ejson::finite_json(doc)).flatten() {
        Some(f) => Cow::Owned(f.text),
        None => Cow::Borrowed(doc),
    }
}

/// A sample document.
pub type Sample = Document;
/// A frame document (video).
pub type Frame = Document;

impl Document {
    /// The `_id`.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// The whole object (parsed and cached on first use).
    pub fn as_object(&self) -> &Object {
        match &self.body {
            Body::Text {
                text,
                span,
                cache,
                nonfinite,
                ..
            } => cache.get_or_init(|| Body::parse(text, span, *nonfinite)),
            Body::Owned(o) => o,
        }
    }

    /// The whole object without caching it: borrowed when already parsed, else parsed for
    /// this call only (for passes over every sample that should not keep them all parsed).
    pub fn object(&self) -> Cow<'_, Object> {
        match &self.body {
            Body::Text {
                cache,
                text,
                span,
                nonfinite,
                ..
            } => match cache.get() {
                Some(o) => Cow::Borrowed(o),
                None => Cow::Owned(Body::parse(text, span, *nonfinite)),
            },
            Body::Owned(o) => Cow::Borrowed(o),
        }
    }

    /// Only the given top-level keys, without caching: the whole object when already parsed,
    /// else a partial parse that skips other values without building them (fast passes over
    /// every sample that read one or two fields).
    pub fn project(&self, keys: &[&str]) -> Cow<'_, Object> {
        self.project_with(&|k| keys.contains(&k))
    }

    /// The top-level entries whose keys pass `keep`, without caching (see [`Self::project`]).
    fn project_with(&self, keep: &dyn Fn(&str) -> bool) -> Cow<'_, Object> {
        self.project_parts(&|k| keep(k).then_some(Part::Whole))
    }

    /// Like [`Self::project`], with some fields parsed only in part: for a top-level key,
    /// `part` says whether to skip it (`None`), parse it whole, or parse it as a label value
    /// keeping its `_cls` and, in each label object, only the given keys. A
    /// value of another shape than a label value makes that field parse whole. Fields asked
    /// as [`Part::Text`] are left out (see [`Self::project_text`]).
    pub fn project_parts<'k>(&self, part: &dyn Fn(&str) -> Option<Part<'k>>) -> Cow<'_, Object> {
        self.project_text(part).0
    }

    /// Like [`Self::project_parts`], the fields `part` asks as [`Part::Text`] not parsed:
    /// their JSON text comes back beside the object. A document parsed already has no text
    /// to give: the object is then the whole document, and the list is empty.
    pub fn project_text<'k>(
        &self,
        part: &dyn Fn(&str) -> Option<Part<'k>>,
    ) -> (Cow<'_, Object>, Vec<(String, Cow<'_, str>)>) {
        match &self.body {
            Body::Text {
                text,
                span,
                cache,
                nonfinite,
                ..
            } if cache.get().is_none() => {
                let json = json_text(text, span, *nonfinite);
                let borrowed = match &json {
                    Cow::Borrowed(t) => Some(*t),
                    Cow::Owned(_) => None,
                };
                // Validated at load: skipping needs no second check. An empty object is the
                // least harmful answer to a bug.
                let mut out = Object::new();
                let mut texts = Vec::new();
                for (k, span) in scan::members(&json) {
                    let value = &json[span.clone()];
                    let v = match part(&k) {
                        None => continue,
                        Some(Part::Text) => {
                            let value = borrowed.map_or_else(
                                || Cow::Owned(value.to_owned()),
                                |t| Cow::Borrowed(&t[span]),
                            );
                            texts.push((k.into_owned(), value));
                            continue;
                        }
                        Some(Part::Whole) => serde_json::from_str(value).ok(),
                        Some(Part::Labels(keep)) => label_part(value, keep, true)
                            .or_else(|| serde_json::from_str(value).ok()),
                    };
                    out.insert(k.into_owned(), v.unwrap_or_default());
                }
                (Cow::Owned(out), texts)
            }
            _ => (Cow::Borrowed(self.as_object()), Vec::new()),
        }
    }

    /// Whether the document may hold the string `s`, as a key or a value anywhere (a cheap text
    /// pre-check; false means it certainly does not, true is all a parsed document says).
    pub fn may_contain_string(&self, s: &str) -> bool {
        match &self.body {
            // As in `may_have`: only plain strings are searched for verbatim.
            Body::Text {
                text, span, cache, ..
            } if cache.get().is_none()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                text[span.clone()].contains(&format!("\"{s}\""))
            }
            _ => true,
        }
    }

    /// Whether the document may have this top-level key (a cheap text pre-check; false means
    /// it certainly does not).
    fn may_have(&self, key: &str) -> bool {
        match &self.body {
            // Keys with other characters may be written with escapes (FiftyOne writes
            // non-ASCII as \uXXXX), so only plain keys are searched for verbatim.
            Body::Text {
                text, span, cache, ..
            } if cache.get().is_none()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                text[span.clone()].contains(&format!("\"{key}\""))
            }
            _ => self.as_object().contains_key(key),
        }
    }

    /// Whether the document was changed (or created) in memory.
    fn is_edited(&self) -> bool {
        match self.body {
            Body::Text { edited, .. } => edited,
            Body::Owned(_) => true,
        }
    }

    /// Applies a change to the parsed object, then keeps the result as compact JSON text.
    fn edit<R>(&mut self, f: impl FnOnce(&mut Object) -> R) -> R {
        let mut obj = match std::mem::replace(&mut self.body, Body::Owned(Object::new())) {
            Body::Text {
                text,
                span,
                cache,
                nonfinite,
                ..
            } => cache
                .into_inner()
                .unwrap_or_else(|| Body::parse(&text, &span, nonfinite)),
            Body::Owned(o) => o,
        };
        let r = f(&mut obj);
        self.body = match serde_json::to_string(&obj) {
            Ok(text) => Body::Text {
                span: 0..text.len(),
                text: Arc::new(text),
                cache: OnceLock::new(),
                edited: true,
                nonfinite: false,
            },
            // Unreachable for maps with string keys; keeping the tree is still correct.
            Err(_) => Body::Owned(obj),
        };
        r
    }

    /// A field's raw value (`None` when absent).
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.as_object().get(field)
    }

    /// `filepath`.
    pub fn filepath(&self) -> Option<&str> {
        self.as_object().get("filepath").and_then(Value::as_str)
    }

    /// `tags` (empty when absent).
    pub fn tags(&self) -> Vec<&str> {
        self.as_object()
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// `frame_number` of a frame.
    pub fn frame_number(&self) -> Option<FrameNumber> {
        self.as_object()
            .get("frame_number")
            .and_then(Value::as_u64)
            .and_then(FrameNumber::new)
    }

    /// The label in `field`; `Ok(None)` when absent or null or not a label.
    pub fn label(&self, field: &str) -> Result<Option<Label>, LabelError> {
        // Parses just this field and does not cache the document: merges read the labels of
        // many samples.
        match self.project(&[field]).get(field) {
            Some(v) if labels::is_label_value(v) => Label::from_json(v).map(Some),
            _ => Ok(None),
        }
    }

    /// The individual label objects of `field`, unconverted.
    pub fn label_objects(&self, field: &str) -> Vec<&Object> {
        self.as_object()
            .get(field)
            .map(labels::label_objects)
            .unwrap_or_default()
    }

    /// Sets (or, with `None`, clears to null as FiftyOne does) a label field. The field must be
    /// declared: use [`Dataset::set_label`], or let [`Dataset::save`] declare it.
    pub fn set_label(&mut self, field: &str, label: Option<&Label>) {
        self.set(field, label.map_or(Value::Null, Label::to_json));
    }

    /// Sets a field's raw value; `_id` cannot be changed and is ignored.
    pub fn set(&mut self, field: &str, value: Value) {
        if field == "_id" {
            return;
        }
        self.edit(|obj| {
            obj.insert(field.to_owned(), value);
            if let Some(t) = obj.get_mut("last_modified_at") {
                *t = ejson::date_now();
            }
        });
    }

    /// Removes the labels with these ids from `field` (list or single); returns how many.
    pub fn remove_labels(&mut self, field: &str, ids: &[ObjectId]) -> usize {
        if !self.may_have(field) {
            return 0;
        }
        // Only a document holding one of the ids is edited (and so re-serialized).
        let held = self.project(&[field]).get(field).is_some_and(|v| {
            labels::label_objects(v)
                .iter()
                .filter_map(|l| l.get("_id").and_then(ObjectId::from_ejson))
                .any(|i| ids.contains(&i))
        });
        if !held {
            return 0;
        }
        self.edit(|obj| remove_label_ids(obj, field, ids))
    }
}

/// Removes labels by id from a field of `obj`; returns how many.
fn remove_label_ids(obj: &mut Object, field: &str, ids: &[ObjectId]) -> usize {
    let Some(v) = obj.get_mut(field) else {
        return 0;
    };
    let cls = v.get("_cls").and_then(Value::as_str).map(str::to_owned);
    let removed = match cls.as_deref().and_then(labels::label_list_key) {
        Some(key) => match v.get_mut(key).and_then(Value::as_array_mut) {
            Some(items) => {
                let before = items.len();
                items.retain(|l| {
                    !l.get("_id")
                        .and_then(ObjectId::from_ejson)
                        .is_some_and(|i| ids.contains(&i))
                });
                before - items.len()
            }
            None => 0,
        },
        None => {
            let hit = v
                .get("_id")
                .and_then(ObjectId::from_ejson)
                .is_some_and(|i| ids.contains(&i));
            if hit {
                *v = Value::Null;
            }
            usize::from(hit)
        }
    };
    if removed > 0 {
        if let Some(t) = obj.get_mut("last_modified_at") {
            *t = ejson::date_now();
        }
    }
    removed
}

/// A dataset in a `dir` store.
#[derive(Debug)]
pub struct Dataset {
    root: PathBuf,
    metadata: Object,
    samples: Vec<Sample>,
    index: IdMap<usize>,
    /// Keys of samples.json besides `samples`, kept for the round trip.
    samples_rest: Vec<(String, Value)>,
    frames: Option<Vec<Frame>>,
    frames_rest: Vec<(String, Value)>,
    /// Per video sample, its frames' positions in `frames` and their numbers, by number.
    frames_by_sample: IdMap<Vec<(FrameNumber, usize)>>,
    /// Frames were created in memory: frames.json is written in FiftyOne's order (samples
    /// in order, each sample's frames by number) rather than as read.
    frames_added: Flag,
    dirty_metadata: Flag,
    dirty_samples: Flag,
    dirty_frames: Flag,
}

/// A "file changed" flag; atomic so a `&Dataset` can be shared across threads.
#[derive(Debug, Default)]
struct Flag(AtomicBool);

impl Flag {
    fn new(v: bool) -> Self {
        Flag(AtomicBool::new(v))
    }
    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self, v: bool) {
        self.0.store(v, Ordering::Relaxed)
    }
}

const METADATA: &str = "metadata.json";
/// Fields FiftyOne declares on every dataset (and `frame_number` on frames).
const BUILTIN_FIELDS: [&str; 7] = [
    "id",
    "filepath",
    "tags",
    "metadata",
    "created_at",
    "last_modified_at",
    "frame_number",
];
const SAMPLES: &str = "samples.json";
const FRAMES: &str = "frames.json";

/// The metadata.json key declaring the fields of a level.
fn declarations_key(level: Level) -> &'static str {
    match level {
        Level::Sample => "sample_fields",
        Level::Frame => "frame_fields",
    }
}

impl Dataset {
    /// Reads a FiftyOneDataset directory (current or legacy format), validating ids and labels.
    pub fn load(path: impl AsRef<Path>) -> Result<Dataset, DatasetError> {
        let root = path.as_ref().to_owned();
        let meta_path = root.join(METADATA);
        if !meta_path.is_file() {
            return Err(DatasetError::MissingMetadata { dir: root });
        }
        crate::tempfiles::remove_stale(&root);
        let metadata = read_metadata(&meta_path)?;
        let samples_path = root.join(SAMPLES);
        let (samples, samples_rest) = read_docs(&samples_path, "samples")?;
        let frames_path = root.join(FRAMES);
        let (frames, frames_rest) = if frames_path.is_file() {
            let (f, rest) = read_docs(&frames_path, "frames")?;
            (Some(f), rest)
        } else {
            (None, Vec::new())
        };
        let mut ds = Dataset {
            root,
            metadata,
            samples: Vec::new(),
            index: IdMap::default(),
            samples_rest,
            frames: None,
            frames_rest,
            frames_by_sample: IdMap::default(),
            frames_added: Flag::new(false),
            dirty_metadata: Flag::new(false),
            dirty_samples: Flag::new(false),
            dirty_frames: Flag::new(false),
        };
        ds.adopt(samples, frames)?;
        Ok(ds)
    }

    /// A dataset made from documents in memory, to be written to `root` by [`Dataset::save`]
    /// (all files count as changed). Validated like a loaded one.
    pub fn from_docs(
        root: impl AsRef<Path>,
        metadata: Object,
        samples: Vec<Object>,
        frames: Option<Vec<Object>>,
    ) -> Result<Dataset, DatasetError> {
        let mut ds = Dataset::empty(root.as_ref(), metadata, true, frames.is_some());
        let owned = |docs: Vec<Object>| docs.into_iter().map(Body::Owned).collect::<Vec<_>>();
        ds.adopt(owned(samples), frames.map(owned))?;
        Ok(ds)
    }

    /// A dataset made from documents as JSON text (as a database streams them), each kept as
    /// its text and parsed when read, like a loaded file's: it costs about its JSON size in
    /// memory, not the ten times a parsed tree does. Nothing is marked to be saved.
    pub fn from_texts(
        root: impl AsRef<Path>,
        metadata: Object,
        samples: Vec<String>,
        frames: Option<Vec<String>>,
    ) -> Result<Dataset, DatasetError> {
        let mut ds = Dataset::empty(root.as_ref(), metadata, false, false);
        let texts = |docs: Vec<String>| {
            docs.into_iter()
                .map(|t| Body::Text {
                    span: 0..t.len(),
                    text: Arc::new(t),
                    cache: OnceLock::new(),
                    edited: false,
                    nonfinite: false,
                })
                .collect::<Vec<_>>()
        };
        ds.adopt(texts(samples), frames.map(texts))?;
        Ok(ds)
    }

    /// A dataset with no documents yet; `dirty` marks its metadata and samples (and
    /// `dirty_frames` its frames) as to be saved.
    fn empty(root: &Path, metadata: Object, dirty: bool, dirty_frames: bool) -> Dataset {
        Dataset {
            root: root.to_owned(),
            metadata,
            samples: Vec::new(),
            index: IdMap::default(),
            samples_rest: Vec::new(),
            frames: None,
            frames_rest: Vec::new(),
            frames_by_sample: IdMap::default(),
            frames_added: Flag::new(false),
            dirty_metadata: Flag::new(dirty),
            dirty_samples: Flag::new(dirty),
            dirty_frames: Flag::new(dirty_frames),
        }
    }

    /// Validates raw documents and indexes them.
    fn adopt(&mut self, samples: Vec<Body>, frames: Option<Vec<Body>>) -> Result<(), DatasetError> {
        let samples_path = self.root.join(SAMPLES);
        // Datasets typically hold several labels per sample.
        let mut label_ids: IdMap<ObjectId> = IdMap::default();
        label_ids.reserve(samples.len() * 4);
        self.samples.reserve(samples.len());
        for (i, body) in samples.into_iter().enumerate() {
            let id = {
                let obj = checked_object(&samples_path, "sample", i, &body)?;
                validate_doc(&samples_path, "sample", i, &obj, &mut label_ids)?
            };
            if let Some(first) = self.index.insert(id, i) {
                return Err(DatasetError::DuplicateId {
                    path: samples_path,
                    kind: "sample",
                    id,
                    first,
                    second: i,
                });
            }
            self.samples.push(Document { id, body });
        }
        if let Some(frames) = frames {
            let frames_path = self.root.join(FRAMES);
            let mut seen = IdMap::default();
            let mut docs = Vec::with_capacity(frames.len());
            for (i, body) in frames.into_iter().enumerate() {
                let (id, sample, number) = {
                    let obj = checked_object(&frames_path, "frame", i, &body)?;
                    let id = validate_doc(&frames_path, "frame", i, &obj, &mut label_ids)?;
                    let sample = obj.get("_sample_id").and_then(ObjectId::from_ejson);
                    let number = obj.get("frame_number").and_then(Value::as_u64);
                    (id, sample, number.and_then(FrameNumber::new))
                };
                let Some(number) = number else {
                    return Err(DatasetError::Invalid {
                        path: frames_path,
                        doc: format!("frame {id}"),
                        msg: "frame_number: expected an integer from 1".into(),
                    });
                };
                let Some(sample) = sample else {
                    return Err(DatasetError::Invalid {
                        path: frames_path,
                        doc: format!("frame {id}"),
                        msg: "_sample_id: expected {\"$oid\": <24 hex digits>}".into(),
                    });
                };
                if !self.index.contains_key(&sample) {
                    return Err(DatasetError::OrphanFrame {
                        path: frames_path,
                        frame: id,
                        sample,
                    });
                }
                if let Some(first) = seen.insert(id, i) {
                    return Err(DatasetError::DuplicateId {
                        path: frames_path,
                        kind: "frame",
                        id,
                        first,
                        second: i,
                    });
                }
                self.frames_by_sample
                    .entry(sample)
                    .or_default()
                    .push((number, i));
                docs.push(Document { id, body });
            }
            for (sample, idx) in self.frames_by_sample.iter_mut() {
                idx.sort_unstable();
                if let Some(w) = idx.windows(2).find(|w| w[0].0 == w[1].0) {
                    return Err(DatasetError::DuplicateFrame {
                        path: frames_path,
                        sample: *sample,
                        frame_number: w[0].0,
                    });
                }
            }
            self.frames = Some(docs);
        }
        Ok(())
    }

    /// The dataset directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The dataset document (`metadata.json`).
    pub fn metadata(&self) -> &Object {
        &self.metadata
    }

    /// Mutable access to the dataset document (e.g. `annotation_runs`); marks metadata.json
    /// for saving.
    pub fn metadata_mut(&mut self) -> &mut Object {
        self.dirty_metadata.set(true);
        &mut self.metadata
    }

    /// `name`.
    pub fn name(&self) -> Option<&str> {
        self.metadata.get("name").and_then(Value::as_str)
    }

    /// `media_type` (`image` when unset).
    pub fn media_type(&self) -> &str {
        self.metadata
            .get("media_type")
            .and_then(Value::as_str)
            .unwrap_or("image")
    }

    /// Whether `metadata.json` uses the legacy format (`sample_fields` as a map of strings).
    pub fn is_legacy(&self) -> bool {
        self.metadata
            .get("sample_fields")
            .is_some_and(Value::is_object)
    }

    /// The samples, in file order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// A digest of the content as the store writes it: the metadata and every document
    /// (a loaded document as read, a changed one as it will be written). Equal digests mean
    /// the same documents; a dataset saved and loaded again keeps its digest.
    pub fn content_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        fn feed(h: &mut Sha256, part: &[u8]) {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let mut h = Sha256::new();
        feed(
            &mut h,
            &serde_json::to_vec(&self.metadata).unwrap_or_default(),
        );
        let files = [
            (Some(&self.samples), &self.samples_rest),
            (self.frames.as_ref(), &self.frames_rest),
        ];
        for (docs, rest) in files {
            for d in docs.into_iter().flatten() {
                feed(&mut h, &d.body.written());
            }
            feed(&mut h, &serde_json::to_vec(rest).unwrap_or_default());
        }
        crate::merge::first16(&h.finalize()).to_string()
    }

    /// The sample with this id.
    pub fn sample_by_id(&self, id: ObjectId) -> Option<&Sample> {
        self.index.get(&id).map(|i| &self.samples[*i])
    }

    /// Where the sample is in dataset order.
    pub fn position(&self, id: ObjectId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// Mutable access to a sample; marks samples.json for saving.
    pub fn sample_mut(&mut self, id: ObjectId) -> Option<&mut Sample> {
        let i = *self.index.get(&id)?;
        self.dirty_samples.set(true);
        Some(&mut self.samples[i])
    }

    /// The frames of a video sample, by frame number (empty for images).
    pub fn frames(&self, sample: ObjectId) -> Vec<&Frame> {
        match (&self.frames, self.frames_by_sample.get(&sample)) {
            (Some(frames), Some(idx)) => idx.iter().map(|(_, i)| &frames[*i]).collect(),
            _ => Vec::new(),
        }
    }

    /// Every frame of every video, in file order (empty for images).
    pub fn all_frames(&self) -> &[Frame] {
        self.frames.as_deref().unwrap_or_default()
    }

    /// One frame of a video sample, if the dataset has a document for it (FiftyOne stores
    /// only frames that were ever given a field).
    pub fn frame(&self, sample: ObjectId, number: FrameNumber) -> Option<&Frame> {
        let idx = self.frames_by_sample.get(&sample)?;
        let at = idx.binary_search_by_key(&number, |(n, _)| *n).ok()?;
        Some(&self.frames.as_ref()?[idx[at].1])
    }

    /// Mutable access to one frame; marks frames.json for saving.
    pub fn frame_mut(&mut self, sample: ObjectId, number: FrameNumber) -> Option<&mut Frame> {
        let idx = self.frames_by_sample.get(&sample)?;
        let at = idx.binary_search_by_key(&number, |(n, _)| *n).ok()?;
        let i = idx[at].1;
        self.dirty_frames.set(true);
        Some(&mut self.frames.as_mut()?[i])
    }

    /// Sets a field of one frame of a video sample, creating the frame document when the
    /// dataset has none for it, as FiftyOne does: `_id`, `frame_number`, the field, then
    /// `_sample_id` (and `_dataset_id` when the sample has one), `created_at` and
    /// `last_modified_at`. The new frame's id is derived from the sample and the number, so
    /// writing the same merge twice gives the same file. An existing frame gets the field
    /// appended (a MongoDB `$set`).
    pub fn set_frame_field(
        &mut self,
        sample: ObjectId,
        number: FrameNumber,
        name: &str,
        value: Value,
    ) -> Result<(), DatasetError> {
        if let Some(f) = self.frame_mut(sample, number) {
            f.set(name, value);
            return Ok(());
        }
        let s = self
            .sample_by_id(sample)
            .ok_or(DatasetError::UnknownSample(sample))?;
        let dataset_id = s.get("_dataset_id").cloned();
        let id = ObjectId::derive(&[b"frame", &sample.bytes(), &number.get().to_be_bytes()]);
        let mut doc = Object::new();
        doc.insert("_id".into(), id.to_ejson());
        doc.insert("frame_number".into(), Value::from(number.get()));
        doc.insert(name.to_owned(), value);
        doc.insert("_sample_id".into(), sample.to_ejson());
        if let Some(d) = dataset_id {
            doc.insert("_dataset_id".into(), d);
        }
        let now = ejson::date_now();
        doc.insert("created_at".into(), now.clone());
        doc.insert("last_modified_at".into(), now);
        let frames = self.frames.get_or_insert_with(Vec::new);
        let i = frames.len();
        let mut created = Document {
            id,
            body: Body::Owned(Object::new()),
        };
        // Kept as compact text like any edited document (a parsed tree costs ten times it).
        created.edit(|o| *o = doc);
        frames.push(created);
        let idx = self.frames_by_sample.entry(sample).or_default();
        let at = idx.partition_point(|(n, _)| *n < number);
        idx.insert(at, (number, i));
        self.frames_added.set(true);
        self.dirty_frames.set(true);
        Ok(())
    }

    /// The declaration of a sample or frame field.
    fn declaration(&self, path: &FieldPath) -> Option<&Value> {
        let (key, field) = (declarations_key(path.level()), path.name());
        match self.metadata.get(key)? {
            Value::Array(docs) => docs
                .iter()
                .find(|d| d.get("name").and_then(Value::as_str) == Some(field)),
            Value::Object(map) => map.get(field),
            _ => None,
        }
    }

    /// Whether a sample or frame field is declared or, for datasets that do not declare
    /// everything, present on some sample (frame).
    pub fn field_exists(&self, path: &FieldPath) -> bool {
        let name = path.name();
        let builtin = match path.level() {
            Level::Sample => matches!(name, "id" | "_id" | "filepath" | "tags" | "metadata"),
            Level::Frame => matches!(name, "id" | "_id" | "frame_number"),
        };
        if builtin || self.declaration(path).is_some() {
            return true;
        }
        self.documents(path.level())
            .iter()
            .any(|d| d.may_have(name) && d.object().contains_key(name))
    }

    /// The documents holding fields of this level: samples, or every frame.
    fn documents(&self, level: Level) -> &[Document] {
        match level {
            Level::Sample => &self.samples,
            Level::Frame => self.all_frames(),
        }
    }

    /// The label class of a field the dataset's schema declares as a label field (no look at
    /// the samples, unlike [`Self::field_label_class`]).
    pub fn declared_label_class(&self, path: &FieldPath) -> Option<String> {
        self.declaration(path).and_then(declared_label_class)
    }

    /// The label class of a field from its declaration (`Detections`), falling back to the
    /// first label found in the data.
    pub fn field_label_class(&self, path: &FieldPath) -> Option<String> {
        if let Some(decl) = self.declaration(path) {
            return declared_label_class(decl);
        }
        let f = path.name();
        self.documents(path.level())
            .iter()
            .filter(|d| d.may_have(f))
            .find_map(|d| {
                let obj = d.object();
                let v = obj.get(f)?;
                labels::is_label_value(v)
                    .then(|| v.get("_cls")?.as_str().map(str::to_owned))
                    .flatten()
            })
    }

    /// A dataset-level setting, looked up at the top level (current format) or in `info`
    /// (legacy format).
    fn setting(&self, key: &str) -> Option<&Value> {
        self.metadata
            .get(key)
            .filter(|v| !v.is_null())
            .or_else(|| self.metadata.get("info")?.get(key))
    }

    /// The classes declared for a field (`classes[field]`), if any.
    pub fn classes(&self, field: &str) -> Option<Vec<String>> {
        string_list(self.setting("classes")?.get(field)?)
    }

    /// `default_classes`, if set.
    pub fn default_classes(&self) -> Option<Vec<String>> {
        string_list(self.setting("default_classes")?)
    }

    /// The mask targets of a field (pixel value → class), falling back to
    /// `default_mask_targets`.
    pub fn mask_targets(&self, field: &str) -> Option<Vec<(String, String)>> {
        let v = self
            .setting("mask_targets")
            .and_then(|m| m.get(field))
            .or_else(|| self.setting("default_mask_targets"))?;
        let targets: Vec<(String, String)> = v
            .as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        (!targets.is_empty()).then_some(targets)
    }

    /// Width and height of a sample's media: from its `metadata`, else from the file header.
    pub fn image_size(&self, id: ObjectId) -> Result<Dimensions, DatasetError> {
        self.media_info(id, media::from_metadata, media::from_file)
    }

    /// Frame count, frame size and frame rate of a video sample: from its `metadata`, else
    /// from the video file's headers; an error names the sample and the file.
    pub fn video_info(&self, id: ObjectId) -> Result<VideoInfo, DatasetError> {
        self.media_info(id, video::from_metadata, video::from_file)
    }

    /// What a sample's `metadata` says of its media, else what `from_file` reads in the file.
    fn media_info<T>(
        &self,
        id: ObjectId,
        from_metadata: impl FnOnce(Option<&Value>) -> Option<T>,
        from_file: impl FnOnce(&Path) -> Result<T, media::MediaError>,
    ) -> Result<T, DatasetError> {
        let s = self
            .sample_by_id(id)
            .ok_or(DatasetError::UnknownSample(id))?;
        // Two fields, parsed for this call only: a pass over every sample keeps none parsed.
        let fields = s.project(&["metadata", "filepath"]);
        if let Some(v) = from_metadata(fields.get("metadata")) {
            return Ok(v);
        }
        let fp = fields.get("filepath").and_then(Value::as_str);
        let fp = fp.ok_or_else(|| DatasetError::Invalid {
            path: self.root.join(SAMPLES),
            doc: format!("sample {id}"),
            msg: "filepath: missing".into(),
        })?;
        from_file(&self.media_path(fp)).map_err(|source| DatasetError::Media { sample: id, source })
    }

    /// Checks that every sample's media size is known (from `metadata` or a readable image
    /// header); the first failure names the sample and the file. Not done by `load`, which
    /// never touches media.
    pub fn check_media(&self) -> Result<(), DatasetError> {
        if self.media_type() != "image" {
            return Ok(());
        }
        self.samples
            .iter()
            .try_for_each(|s| self.image_size(s.id()).map(|_| ()))
    }

    /// A media path resolved against the dataset directory (exports store relative paths).
    pub fn media_path(&self, filepath: &str) -> PathBuf {
        let p = Path::new(filepath);
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.root.join(p)
        }
    }

    /// Declares a sample or frame field with FiftyOne's field doc; a field already declared
    /// with the same type is left alone, another type is an error.
    pub fn declare_field(
        &mut self,
        path: &FieldPath,
        ftype: &FieldType,
    ) -> Result<(), DatasetError> {
        if let Some(decl) = self.declaration(path) {
            let existing = declared_label_class(decl);
            return match (ftype, existing) {
                (FieldType::Label(want), Some(have)) if *want != have => {
                    Err(DatasetError::FieldType {
                        field: path.to_string(),
                        declared: have,
                        found: want.clone(),
                    })
                }
                _ => Ok(()),
            };
        }
        let (key, field) = (declarations_key(path.level()), path.name());
        let legacy = self.is_legacy();
        let slot = self.metadata.entry(key).or_insert_with(|| {
            if legacy {
                Value::Object(Object::new())
            } else {
                Value::Array(Vec::new())
            }
        });
        match slot {
            Value::Object(map) => {
                map.insert(field.to_owned(), Value::String(ftype.legacy_string()));
            }
            Value::Array(docs) => docs.push(ftype.field_doc(field)),
            other => *other = Value::Array(vec![ftype.field_doc(field)]),
        }
        self.dirty_metadata.set(true);
        Ok(())
    }

    /// Sets a sample's label field, declaring the field when new.
    pub fn set_label(
        &mut self,
        sample: ObjectId,
        field: &str,
        label: Option<&Label>,
    ) -> Result<(), DatasetError> {
        if let Some(l) = label {
            let path = FieldPath::sample(field);
            self.declare_field(&path, &FieldType::Label(l.cls().to_owned()))?;
        }
        let s = self
            .sample_mut(sample)
            .ok_or(DatasetError::UnknownSample(sample))?;
        s.set_label(field, label);
        Ok(())
    }

    /// The fields that samples or frames carry but metadata.json does not declare, with their
    /// inferred types. Only datasets that declare fields at all need this (without
    /// `sample_fields` FiftyOne infers the schema on import).
    fn undeclared_fields(&self) -> Result<Vec<(FieldPath, FieldType)>, DatasetError> {
        let mut todo: Vec<(FieldPath, FieldType)> = Vec::new();
        let mut scan = |docs: &[Document], level: Level, file: &str| -> Result<(), DatasetError> {
            // Only documents changed in memory can carry fields the file did not declare.
            // FiftyOne declares its private `_` fields itself; `id`/`frame_number` are built in.
            let candidate = |k: &str| {
                !k.starts_with('_')
                    && !BUILTIN_FIELDS.contains(&k)
                    && self.declaration(&FieldPath::at(level, k)).is_none()
            };
            for d in docs.iter().filter(|d| d.is_edited()) {
                // Parses only undeclared fields, and does not cache the document.
                for (k, v) in d.project_with(&candidate).iter() {
                    let name = FieldPath::at(level, k);
                    if v.is_null() || !candidate(k) || todo.iter().any(|(n, _)| *n == name) {
                        continue;
                    }
                    let t = FieldType::infer(v).ok_or_else(|| DatasetError::UndeclaredField {
                        path: self.root.join(file),
                        sample: d.id,
                        field: name.to_string(),
                        value: trimmed(v),
                    })?;
                    todo.push((name, t));
                }
            }
            Ok(())
        };
        if self.metadata.contains_key("sample_fields") && self.dirty_samples.get() {
            scan(&self.samples, Level::Sample, SAMPLES)?;
        }
        if let Some(frames) = &self.frames {
            if self.metadata.contains_key("frame_fields") && self.dirty_frames.get() {
                scan(frames, Level::Frame, FRAMES)?;
            }
        }
        Ok(todo)
    }

    /// Writes the changed files back atomically. Fields that samples gained without a
    /// declaration are declared in the written metadata.json (FiftyOne cannot load them
    /// otherwise). On any error nothing is replaced.
    pub fn save(&self) -> Result<(), DatasetError> {
        let todo = self.undeclared_fields()?;
        if todo.is_empty() {
            return self.write_changed(&self.metadata);
        }
        let mut with_decls = Dataset {
            root: self.root.clone(),
            metadata: self.metadata.clone(),
            samples: Vec::new(),
            index: IdMap::default(),
            samples_rest: Vec::new(),
            frames: None,
            frames_rest: Vec::new(),
            frames_by_sample: IdMap::default(),
            frames_added: Flag::new(false),
            dirty_metadata: Flag::new(false),
            dirty_samples: Flag::new(false),
            dirty_frames: Flag::new(false),
        };
        for (name, t) in &todo {
            with_decls.declare_field(name, t)?;
        }
        self.dirty_metadata.set(true);
        self.write_changed(&with_decls.metadata)
    }

    /// Writes every file into another directory (which becomes this dataset's directory), e.g.
    /// for a working copy. Media and `fields/` files are not copied.
    pub fn save_as(&mut self, dir: impl AsRef<Path>) -> Result<(), DatasetError> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|source| DatasetError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let old = std::mem::replace(&mut self.root, dir.to_owned());
        self.dirty_metadata.set(true);
        self.dirty_samples.set(true);
        self.dirty_frames.set(self.frames.is_some());
        let res = self.save();
        if res.is_err() {
            self.root = old;
        }
        res
    }

    fn write_changed(&self, metadata: &Object) -> Result<(), DatasetError> {
        let mut pending: Vec<PendingFile> = Vec::new();
        let any = self.dirty_metadata.get() || self.dirty_samples.get() || self.dirty_frames.get();
        if any && !self.root.is_dir() {
            fs::create_dir_all(&self.root).map_err(|source| DatasetError::Io {
                path: self.root.clone(),
                source,
            })?;
        }
        if self.dirty_metadata.get() {
            pending.push(PendingFile::write(&self.root.join(METADATA), |w| {
                serde_json::to_writer(&mut *w, metadata).map_err(io::Error::from)
            })?);
        }
        if self.dirty_samples.get() {
            pending.push(PendingFile::write(&self.root.join(SAMPLES), |w| {
                write_docs(w, "samples", self.samples.iter(), &self.samples_rest)
            })?);
        }
        if let (Some(frames), true) = (&self.frames, self.dirty_frames.get()) {
            pending.push(PendingFile::write(&self.root.join(FRAMES), |w| {
                if self.frames_added.get() {
                    // FiftyOne exports frames sample by sample, each by frame number.
                    let ordered = self.samples.iter().flat_map(|s| {
                        self.frames_by_sample
                            .get(&s.id)
                            .into_iter()
                            .flatten()
                            .map(|(_, i)| &frames[*i])
                    });
                    write_docs(w, "frames", ordered, &self.frames_rest)
                } else {
                    write_docs(w, "frames", frames.iter(), &self.frames_rest)
                }
            })?);
        }
        if pending.is_empty() {
            return Ok(());
        }
        crate::tempfiles::remove_stale(&self.root);
        // Every file is complete and on disk before any replaces its original.
        for p in &mut pending {
            p.commit()?;
        }
        if let Ok(d) = File::open(&self.root) {
            // Persist the renames; not all filesystems support fsync on directories.
            let _ = d.sync_all();
        }
        self.dirty_metadata.set(false);
        self.dirty_samples.set(false);
        self.dirty_frames.set(false);
        Ok(())
    }
}

fn trimmed(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s,
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|s| s.as_str().map(str::to_owned))
        .collect()
}

fn json_error(path: &Path, e: &serde_json::Error) -> DatasetError {
    DatasetError::Json {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        msg: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

fn read_metadata(path: &Path) -> Result<Object, DatasetError> {
    let bytes = fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let finite = ejson::finite_json(&text);
    let json = finite.as_ref().map_or(&*text, |f| f.text.as_str());
    let v: Value = serde_json::from_str(json).map_err(|e| json_error(path, &e))?;
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(DatasetError::Json {
            path: path.to_owned(),
            line: 1,
            column: 1,
            msg: "expected a JSON object".into(),
        }),
    }
}

/// Documents of a samples.json / frames.json file.
type DocsFile = (Vec<Body>, Vec<(String, Value)>);

/// Reads `{"<key>": [ {...}, ... ], ...}`: one pass finds each document's span (no tree is
/// built); documents are parsed one at a time for validation, and later on demand.
fn read_docs(path: &Path, key: &'static str) -> Result<DocsFile, DatasetError> {
    let bytes = fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
        let column = upto.len() - upto.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
        DatasetError::Json {
            path: path.to_owned(),
            line,
            column,
            msg: "invalid UTF-8".into(),
        }
    })?;
    // Python's `json` spells NaN and infinities bare; FiftyOne reads them. Spans are found in
    // the rewritten text and mapped back, so documents are written back as read.
    let finite = ejson::finite_json(&text);
    let parsed = finite.as_ref().map_or(text.as_str(), |f| f.text.as_str());
    let (spans, rest) = {
        let mut de = serde_json::Deserializer::from_str(parsed);
        let out = TopLevel { key }
            .deserialize(&mut de)
            .map_err(|e| json_error(path, &e))?;
        de.end().map_err(|e| json_error(path, &e))?;
        let Some(raws) = out.docs else {
            return Err(DatasetError::Json {
                path: path.to_owned(),
                line: 0,
                column: 0,
                msg: format!("missing the top-level \"{key}\" list"),
            });
        };
        let base = parsed.as_ptr() as usize;
        let spans: Vec<(Range<usize>, bool)> = raws
            .iter()
            .map(|r| {
                let start = r.get().as_ptr() as usize - base;
                let end = start + r.get().len();
                match &finite {
                    Some(f) => {
                        let span = f.original(start)..f.original(end);
                        let nonfinite = span.len() != end - start;
                        (span, nonfinite)
                    }
                    None => (start..end, false),
                }
            })
            .collect();
        (spans, out.rest)
    };
    let text = Arc::new(text);
    let bodies = spans
        .into_iter()
        .map(|(span, nonfinite)| Body::Text {
            edited: false,
            nonfinite,
            text: Arc::clone(&text),
            span,
            cache: OnceLock::new(),
        })
        .collect();
    Ok((bodies, rest))
}

struct TopLevel {
    key: &'static str,
}

struct TopOut<'de> {
    docs: Option<Vec<&'de RawValue>>,
    rest: Vec<(String, Value)>,
}

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = TopOut<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TopOut<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = TopOut<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with a \"{}\" list", self.key)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopOut<'de>, A::Error> {
        let mut out = TopOut {
            docs: None,
            rest: Vec::new(),
        };
        while let Some(k) = map.next_key::<String>()? {
            if k == self.key {
                out.docs = Some(map.next_value()?);
            } else {
                out.rest.push((k, map.next_value()?));
            }
        }
        Ok(out)
    }
}

/// How much of a top-level value [`Document::project_parts`] parses.
#[derive(Clone, Copy)]
pub enum Part<'k> {
    /// All of it.
    Whole,
    /// A label value: its `_cls` and, in each label, only the given keys.
    Labels(&'k [String]),
    /// Not parsed: its JSON text (see [`Document::project_text`]).
    Text,
}

/// The label value in `text` (`top`: a field's value, with its `_cls`, whose list of labels
/// is projected too; else one label of a list) with only the kept keys; null stays null.
/// `None` for a value of another shape.
fn label_part(text: &str, keep: &[String], top: bool) -> Option<Value> {
    match text.as_bytes().first() {
        Some(b'n') => return Some(Value::Null),
        Some(b'{') => {}
        _ => return None,
    }
    let is_list_key = |k: &str| {
        ["Classifications", "Detections", "Polylines", "Keypoints"]
            .into_iter()
            .any(|cls| labels::label_list_key(cls) == Some(k))
    };
    let mut out = Object::new();
    for (k, span) in scan::members(text) {
        let value = &text[span];
        if (top && k == "_cls") || keep.iter().any(|x| *x == k) {
            out.insert(k.into_owned(), serde_json::from_str(value).ok()?);
        } else if top && is_list_key(&k) {
            if !value.starts_with('[') {
                return None;
            }
            let items = scan::items(value)
                .map(|s| label_part(&value[s], keep, false))
                .collect::<Option<Vec<_>>>()?;
            out.insert(k.into_owned(), Value::Array(items));
        }
    }
    Some(Value::Object(out))
}

/// A document's object, parsed for validation (borrowed when already an object).
fn checked_object<'a>(
    path: &Path,
    kind: &str,
    i: usize,
    body: &'a Body,
) -> Result<Cow<'a, Object>, DatasetError> {
    match body {
        Body::Owned(o) => Ok(Cow::Borrowed(o)),
        Body::Text {
            text,
            span,
            nonfinite,
            ..
        } => match serde_json::from_str::<Value>(&json_text(text, span, *nonfinite)) {
            Ok(Value::Object(o)) => Ok(Cow::Owned(o)),
            Ok(other) => Err(DatasetError::Invalid {
                path: path.to_owned(),
                doc: format!("{kind} #{i}"),
                msg: format!("expected an object, found {}", trimmed(&other)),
            }),
            // Positions would be relative to the document, so name the document instead.
            Err(e) => Err(DatasetError::Invalid {
                path: path.to_owned(),
                doc: format!("{kind} #{i}"),
                msg: e.to_string(),
            }),
        },
    }
}

/// Checks a sample or frame: a valid `_id`, well-typed `filepath`/`tags`, labels that parse
/// and label ids unique across the dataset.
fn validate_doc(
    path: &Path,
    kind: &str,
    i: usize,
    obj: &Object,
    label_ids: &mut IdMap<ObjectId>,
) -> Result<ObjectId, DatasetError> {
    let invalid = |doc: String, msg: String| DatasetError::Invalid {
        path: path.to_owned(),
        doc,
        msg,
    };
    let id = obj
        .get("_id")
        .and_then(ObjectId::from_ejson)
        .ok_or_else(|| {
            invalid(
                format!("{kind} #{i}"),
                "_id: expected {\"$oid\": <24 hex digits>}".into(),
            )
        })?;
    let name = format!("{kind} {id}");
    if kind == "sample" {
        match obj.get("filepath") {
            Some(Value::String(_)) => {}
            Some(v) => {
                return Err(invalid(
                    name,
                    format!("filepath: expected a string, found {}", trimmed(v)),
                ));
            }
            None => return Err(invalid(name, "filepath: missing".into())),
        }
    }
    if let Some(t) = obj.get("tags") {
        if !t.is_null() && string_list(t).is_none() {
            return Err(invalid(
                name,
                format!("tags: expected a list of strings, found {}", trimmed(t)),
            ));
        }
    }
    for (field, v) in obj {
        if !labels::is_label_value(v) {
            continue;
        }
        Label::validate(v).map_err(|e| invalid(name.clone(), label_error_msg(field, &e)))?;
        for l in labels::label_objects(v) {
            let Some(lid) = l.get("_id").and_then(ObjectId::from_ejson) else {
                continue;
            };
            if let Some(other) = label_ids.insert(lid, id) {
                return Err(DatasetError::DuplicateLabelId {
                    path: path.to_owned(),
                    sample: id,
                    field: field.clone(),
                    id: lid,
                    other,
                });
            }
        }
    }
    Ok(id)
}

/// `field.path: message` for a label error inside `field`.
fn label_error_msg(field: &str, e: &LabelError) -> String {
    if e.at.is_empty() {
        format!("{field}: {}", e.msg)
    } else {
        format!("{field}.{}: {}", e.at, e.msg)
    }
}

fn write_docs<'d>(
    w: &mut dyn Write,
    key: &str,
    docs: impl Iterator<Item = &'d Document>,
    rest: &[(String, Value)],
) -> io::Result<()> {
    write!(w, "{{\"{key}\": [")?;
    for (i, d) in docs.enumerate() {
        if i > 0 {
            // FiftyOne streams samples with a bare comma between them.
            w.write_all(b",")?;
        }
        w.write_all(&d.body.written())?;
    }
    w.write_all(b"]")?;
    for (k, v) in rest {
        write!(w, ", {}: ", Value::String(k.clone()))?;
        serde_json::to_writer(&mut *w, v)?;
    }
    w.write_all(b"}")
}

/// A file written next to its destination, renamed over it on commit, removed if dropped
/// uncommitted.
struct PendingFile {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl PendingFile {
    fn write(
        dest: &Path,
        body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<PendingFile, DatasetError> {
        let tmp = crate::tempfiles::temp_path(dest, None);
        let io_err = |source| DatasetError::Io {
            path: tmp.clone(),
            source,
        };
        let file = File::create(&tmp).map_err(io_err)?;
        // From here on the temporary file is removed on any failure (Drop).
        let pending = PendingFile {
            tmp: tmp.clone(),
            dest: dest.to_owned(),
            done: false,
        };
        let mut w = BufWriter::with_capacity(1 << 20, file);
        body(&mut w).map_err(io_err)?;
        let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
        file.sync_all().map_err(io_err)?;
        Ok(pending)
    }

    fn commit(&mut self) -> Result<(), DatasetError> {
        fs::rename(&self.tmp, &self.dest).map_err(|source| DatasetError::Io {
            path: self.dest.clone(),
            source,
        })?;
        self.done = true;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
