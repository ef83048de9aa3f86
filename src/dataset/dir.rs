//! The `dir` store: a directory in FiftyOne's `FiftyOneDataset` export format.
//!
//! Samples (and frames) are kept as ordered JSON objects, so everything annoform does not
//! model — `_rand`, dates, unknown keys and label classes, run records — is written back as
//! it was read. Typed access goes through [`Label`]. Saving writes only the files that
//! changed, each to a temporary file in the same directory that is fsynced and then renamed,
//! and only after every file has been written, so a failed save leaves the old files intact.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::ejson::{self, ObjectId};
use super::fields::{FieldType, declared_label_class};
use super::labels::{self, Label, LabelError, Object};
use super::media::{self, Dimensions};

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
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    id: ObjectId,
    obj: Object,
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

    /// The whole object, as stored.
    pub fn as_object(&self) -> &Object {
        &self.obj
    }

    /// A field's raw value (`None` when absent).
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.obj.get(field)
    }

    /// `filepath`.
    pub fn filepath(&self) -> Option<&str> {
        self.obj.get("filepath").and_then(Value::as_str)
    }

    /// `tags` (empty when absent).
    pub fn tags(&self) -> Vec<&str> {
        self.obj
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// `frame_number` of a frame.
    pub fn frame_number(&self) -> Option<u64> {
        self.obj.get("frame_number").and_then(Value::as_u64)
    }

    /// The label in `field`; `Ok(None)` when absent or null or not a label.
    pub fn label(&self, field: &str) -> Result<Option<Label>, LabelError> {
        match self.obj.get(field) {
            Some(v) if labels::is_label_value(v) => Label::from_json(v).map(Some),
            _ => Ok(None),
        }
    }

    /// The individual label objects of `field`, unconverted.
    pub fn label_objects(&self, field: &str) -> Vec<&Object> {
        self.obj
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
        self.obj.insert(field.to_owned(), value);
        if let Some(t) = self.obj.get_mut("last_modified_at") {
            *t = ejson::date_now();
        }
    }

    /// Removes the labels with these ids from `field` (list or single); returns how many.
    pub fn remove_labels(&mut self, field: &str, ids: &[ObjectId]) -> usize {
        let Some(v) = self.obj.get_mut(field) else {
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
                if v.get("_id")
                    .and_then(ObjectId::from_ejson)
                    .is_some_and(|i| ids.contains(&i))
                {
                    *v = Value::Null;
                    1
                } else {
                    0
                }
            }
        };
        if removed > 0 {
            if let Some(t) = self.obj.get_mut("last_modified_at") {
                *t = ejson::date_now();
            }
        }
        removed
    }
}

/// A dataset in a `dir` store.
#[derive(Debug)]
pub struct Dataset {
    root: PathBuf,
    metadata: Object,
    samples: Vec<Sample>,
    index: HashMap<ObjectId, usize>,
    /// Keys of samples.json besides `samples`, kept for the round trip.
    samples_rest: Vec<(String, Value)>,
    frames: Option<Vec<Frame>>,
    frames_rest: Vec<(String, Value)>,
    frames_by_sample: HashMap<ObjectId, Vec<usize>>,
    dirty_metadata: Cell<bool>,
    dirty_samples: Cell<bool>,
    dirty_frames: Cell<bool>,
}

const METADATA: &str = "metadata.json";
const SAMPLES: &str = "samples.json";
const FRAMES: &str = "frames.json";

impl Dataset {
    /// Reads a FiftyOneDataset directory (current or legacy format), validating ids and labels.
    pub fn load(path: impl AsRef<Path>) -> Result<Dataset, DatasetError> {
        let root = path.as_ref().to_owned();
        let meta_path = root.join(METADATA);
        if !meta_path.is_file() {
            return Err(DatasetError::MissingMetadata { dir: root });
        }
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
            index: HashMap::new(),
            samples_rest,
            frames: None,
            frames_rest,
            frames_by_sample: HashMap::new(),
            dirty_metadata: Cell::new(false),
            dirty_samples: Cell::new(false),
            dirty_frames: Cell::new(false),
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
        let mut ds = Dataset {
            root: root.as_ref().to_owned(),
            metadata,
            samples: Vec::new(),
            index: HashMap::new(),
            samples_rest: Vec::new(),
            frames: None,
            frames_rest: Vec::new(),
            frames_by_sample: HashMap::new(),
            dirty_metadata: Cell::new(true),
            dirty_samples: Cell::new(true),
            dirty_frames: Cell::new(frames.is_some()),
        };
        ds.adopt(samples, frames)?;
        Ok(ds)
    }

    /// Validates raw documents and indexes them.
    fn adopt(
        &mut self,
        samples: Vec<Object>,
        frames: Option<Vec<Object>>,
    ) -> Result<(), DatasetError> {
        let samples_path = self.root.join(SAMPLES);
        let mut label_ids: HashMap<ObjectId, ObjectId> = HashMap::new();
        self.samples.reserve(samples.len());
        for (i, obj) in samples.into_iter().enumerate() {
            let doc = validate_doc(&samples_path, "sample", i, obj, &mut label_ids)?;
            if let Some(first) = self.index.insert(doc.id, i) {
                return Err(DatasetError::DuplicateId {
                    path: samples_path,
                    kind: "sample",
                    id: doc.id,
                    first,
                    second: i,
                });
            }
            self.samples.push(doc);
        }
        if let Some(frames) = frames {
            let frames_path = self.root.join(FRAMES);
            let mut seen = HashMap::new();
            let mut docs = Vec::with_capacity(frames.len());
            for (i, obj) in frames.into_iter().enumerate() {
                let sample = obj.get("_sample_id").and_then(ObjectId::from_ejson);
                let doc = validate_doc(&frames_path, "frame", i, obj, &mut label_ids)?;
                let Some(sample) = sample else {
                    return Err(DatasetError::Invalid {
                        path: frames_path,
                        doc: format!("frame {}", doc.id),
                        msg: "_sample_id: expected {\"$oid\": <24 hex digits>}".into(),
                    });
                };
                if !self.index.contains_key(&sample) {
                    return Err(DatasetError::OrphanFrame {
                        path: frames_path,
                        frame: doc.id,
                        sample,
                    });
                }
                if let Some(first) = seen.insert(doc.id, i) {
                    return Err(DatasetError::DuplicateId {
                        path: frames_path,
                        kind: "frame",
                        id: doc.id,
                        first,
                        second: i,
                    });
                }
                self.frames_by_sample.entry(sample).or_default().push(i);
                docs.push(doc);
            }
            for idx in self.frames_by_sample.values_mut() {
                idx.sort_by_key(|i| docs[*i].frame_number().unwrap_or(0));
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

    /// The sample with this id.
    pub fn sample_by_id(&self, id: ObjectId) -> Option<&Sample> {
        self.index.get(&id).map(|i| &self.samples[*i])
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
            (Some(frames), Some(idx)) => idx.iter().map(|i| &frames[*i]).collect(),
            _ => Vec::new(),
        }
    }

    /// Mutable access to one frame; marks frames.json for saving.
    pub fn frame_mut(&mut self, sample: ObjectId, frame_number: u64) -> Option<&mut Frame> {
        let idx = self.frames_by_sample.get(&sample)?;
        let frames = self.frames.as_mut()?;
        let i = *idx
            .iter()
            .find(|i| frames[**i].frame_number() == Some(frame_number))?;
        self.dirty_frames.set(true);
        Some(&mut frames[i])
    }

    /// The declaration of a sample field, or of a frame field written `frames.<name>`.
    fn declaration(&self, name: &str) -> Option<&Value> {
        let (key, field) = match name.strip_prefix("frames.") {
            Some(f) => ("frame_fields", f),
            None => ("sample_fields", name),
        };
        match self.metadata.get(key)? {
            Value::Array(docs) => docs
                .iter()
                .find(|d| d.get("name").and_then(Value::as_str) == Some(field)),
            Value::Object(map) => map.get(field),
            _ => None,
        }
    }

    /// Whether a sample field (or `frames.<name>` frame field) is declared or, for datasets
    /// that do not declare everything, present on some sample.
    pub fn field_exists(&self, name: &str) -> bool {
        if self.declaration(name).is_some()
            || matches!(name, "id" | "_id" | "filepath" | "tags" | "metadata")
        {
            return true;
        }
        match name.strip_prefix("frames.") {
            Some(f) => self.frames.iter().flatten().any(|d| d.obj.contains_key(f)),
            None => self.samples.iter().any(|s| s.obj.contains_key(name)),
        }
    }

    /// The label class of a field from its declaration (`Detections`), falling back to the
    /// first label found in the data.
    pub fn field_label_class(&self, name: &str) -> Option<String> {
        if let Some(decl) = self.declaration(name) {
            return declared_label_class(decl);
        }
        fn first<'a>(mut docs: impl Iterator<Item = &'a Document>, f: &str) -> Option<String> {
            docs.find_map(|d| {
                let v = d.obj.get(f)?;
                labels::is_label_value(v)
                    .then(|| v.get("_cls")?.as_str().map(str::to_owned))
                    .flatten()
            })
        }
        match name.strip_prefix("frames.") {
            Some(f) => first(self.frames.iter().flatten(), f),
            None => first(self.samples.iter(), name),
        }
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
        let s = self
            .sample_by_id(id)
            .ok_or(DatasetError::UnknownSample(id))?;
        if let Some(d) = media::from_metadata(s.get("metadata")) {
            return Ok(d);
        }
        let fp = s.filepath().ok_or_else(|| DatasetError::Invalid {
            path: self.root.join(SAMPLES),
            doc: format!("sample {id}"),
            msg: "filepath: missing".into(),
        })?;
        media::from_file(&self.media_path(fp))
            .map_err(|source| DatasetError::Media { sample: id, source })
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

    /// Declares a field (`frames.<name>` for a frame field) with FiftyOne's field doc; a field
    /// already declared with the same type is left alone, another type is an error.
    pub fn declare_field(&mut self, name: &str, ftype: &FieldType) -> Result<(), DatasetError> {
        if let Some(decl) = self.declaration(name) {
            let existing = declared_label_class(decl);
            return match (ftype, existing) {
                (FieldType::Label(want), Some(have)) if *want != have => {
                    Err(DatasetError::FieldType {
                        field: name.to_owned(),
                        declared: have,
                        found: want.clone(),
                    })
                }
                _ => Ok(()),
            };
        }
        let (key, field) = match name.strip_prefix("frames.") {
            Some(f) => ("frame_fields", f),
            None => ("sample_fields", name),
        };
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
            self.declare_field(field, &FieldType::Label(l.cls().to_owned()))?;
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
    fn undeclared_fields(&self) -> Result<Vec<(String, FieldType)>, DatasetError> {
        let mut todo: Vec<(String, FieldType)> = Vec::new();
        let mut scan = |docs: &[Document], prefix: &str, file: &str| -> Result<(), DatasetError> {
            for d in docs {
                for (k, v) in &d.obj {
                    // FiftyOne declares its private `_` fields itself; `id`/`frame_number` are
                    // built in.
                    if v.is_null()
                        || k.starts_with('_')
                        || k == "id"
                        || (!prefix.is_empty() && k == "frame_number")
                    {
                        continue;
                    }
                    let name = format!("{prefix}{k}");
                    if self.declaration(&name).is_some() || todo.iter().any(|(n, _)| *n == name) {
                        continue;
                    }
                    let t = FieldType::infer(v).ok_or_else(|| DatasetError::UndeclaredField {
                        path: self.root.join(file),
                        sample: d.id,
                        field: name.clone(),
                        value: trimmed(v),
                    })?;
                    todo.push((name, t));
                }
            }
            Ok(())
        };
        if self.metadata.contains_key("sample_fields") && self.dirty_samples.get() {
            scan(&self.samples, "", SAMPLES)?;
        }
        if let Some(frames) = &self.frames {
            if self.metadata.contains_key("frame_fields") && self.dirty_frames.get() {
                scan(frames, "frames.", FRAMES)?;
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
            index: HashMap::new(),
            samples_rest: Vec::new(),
            frames: None,
            frames_rest: Vec::new(),
            frames_by_sample: HashMap::new(),
            dirty_metadata: Cell::new(false),
            dirty_samples: Cell::new(false),
            dirty_frames: Cell::new(false),
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
                write_docs(w, "samples", &self.samples, &self.samples_rest)
            })?);
        }
        if let (Some(frames), true) = (&self.frames, self.dirty_frames.get()) {
            pending.push(PendingFile::write(&self.root.join(FRAMES), |w| {
                write_docs(w, "frames", frames, &self.frames_rest)
            })?);
        }
        if pending.is_empty() {
            return Ok(());
        }
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

fn open(path: &Path) -> Result<File, DatasetError> {
    File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_metadata(path: &Path) -> Result<Object, DatasetError> {
    let bytes = fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_owned(),
        source,
    })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| json_error(path, &e))?;
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

/// The documents under the key and the file's other top-level entries.
type Docs = (Vec<Object>, Vec<(String, Value)>);

/// Streams `{"<key>": [ {...}, ... ], ...}` without holding the file text in memory.
fn read_docs(path: &Path, key: &'static str) -> Result<Docs, DatasetError> {
    let file = open(path)?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(1 << 20, file));
    let out = TopLevel { key }
        .deserialize(&mut de)
        .map_err(|e| json_error(path, &e))?;
    de.end().map_err(|e| json_error(path, &e))?;
    match out.docs {
        Some(docs) => Ok((docs, out.rest)),
        None => Err(DatasetError::Json {
            path: path.to_owned(),
            line: 0,
            column: 0,
            msg: format!("missing the top-level \"{key}\" list"),
        }),
    }
}

struct TopLevel {
    key: &'static str,
}

struct TopOut {
    docs: Option<Vec<Object>>,
    rest: Vec<(String, Value)>,
}

impl<'de> DeserializeSeed<'de> for TopLevel {
    type Value = TopOut;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TopOut, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = TopOut;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with a \"{}\" list", self.key)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopOut, A::Error> {
        let mut out = TopOut {
            docs: None,
            rest: Vec::new(),
        };
        while let Some(k) = map.next_key::<String>()? {
            if k == self.key {
                out.docs = Some(map.next_value_seed(DocList { kind: self.key })?);
            } else {
                out.rest.push((k, map.next_value()?));
            }
        }
        Ok(out)
    }
}

struct DocList {
    kind: &'static str,
}

impl<'de> DeserializeSeed<'de> for DocList {
    type Value = Vec<Object>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Object>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for DocList {
    type Value = Vec<Object>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of {} objects", self.kind)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Object>, A::Error> {
        let mut docs = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element::<Value>()? {
            match v {
                Value::Object(o) => docs.push(o),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "{} #{}: expected an object, found {}",
                        self.kind.trim_end_matches('s'),
                        docs.len(),
                        trimmed(&other)
                    )));
                }
            }
        }
        Ok(docs)
    }
}

/// Checks a sample or frame: a valid `_id`, well-typed `filepath`/`tags`, labels that parse
/// and label ids unique across the dataset.
fn validate_doc(
    path: &Path,
    kind: &str,
    i: usize,
    obj: Object,
    label_ids: &mut HashMap<ObjectId, ObjectId>,
) -> Result<Document, DatasetError> {
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
    for (field, v) in &obj {
        if !labels::is_label_value(v) {
            continue;
        }
        Label::from_json(v).map_err(|e| invalid(name.clone(), label_error_msg(field, &e)))?;
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
    Ok(Document { id, obj })
}

/// `field.path: message` for a label error inside `field`.
fn label_error_msg(field: &str, e: &LabelError) -> String {
    if e.at.is_empty() {
        format!("{field}: {}", e.msg)
    } else {
        format!("{field}.{}: {}", e.at, e.msg)
    }
}

fn write_docs(
    w: &mut dyn Write,
    key: &str,
    docs: &[Document],
    rest: &[(String, Value)],
) -> io::Result<()> {
    write!(w, "{{\"{key}\": [")?;
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            w.write_all(b", ")?;
        }
        serde_json::to_writer(&mut *w, &d.obj)?;
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
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let tmp = dest.with_file_name(format!(".{name}.annoform-{}.tmp", std::process::id()));
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
