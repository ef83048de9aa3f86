//! The typed label model: FiftyOne's image label classes (and their video use as frame
//! fields), converted from and to their Extended JSON form. Conversions round-trip exactly:
//! key order and every key annoform does not model (custom attributes, `logits`, ...) are kept.

use serde_json::{Map, Value};

use super::ejson::{self, Binary, ObjectId};
use super::mask::{Mask, MaskError};

/// A JSON object with its key order.
pub type Object = Map<String, Value>;

/// A label whose JSON does not fit the model; `at` is a path such as `detections[2].label`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{at}: {msg}")]
pub struct LabelError {
    /// Where inside the label value.
    pub at: String,
    /// What is wrong.
    pub msg: String,
}

impl LabelError {
    fn new(at: impl Into<String>, msg: impl Into<String>) -> Self {
        LabelError {
            at: at.into(),
            msg: msg.into(),
        }
    }

    fn nest(self, prefix: &str) -> Self {
        let at = if self.at.is_empty() {
            prefix.to_owned()
        } else if self.at.starts_with('[') {
            format!("{prefix}{}", self.at)
        } else {
            format!("{prefix}.{}", self.at)
        };
        LabelError { at, msg: self.msg }
    }
}

/// The key holding the list of labels of a list class: `Detections` → `detections`.
pub fn label_list_key(cls: &str) -> Option<&'static str> {
    Some(match cls {
        "Classifications" => "classifications",
        "Detections" | "TemporalDetections" => "detections",
        "Polylines" => "polylines",
        "Keypoints" => "keypoints",
        _ => return None,
    })
}

/// The class of the items of a list class: `Detections` → `Detection`.
pub fn label_item_class(cls: &str) -> Option<&'static str> {
    Some(match cls {
        "Classifications" => "Classification",
        "Detections" => "Detection",
        "TemporalDetections" => "TemporalDetection",
        "Polylines" => "Polyline",
        "Keypoints" => "Keypoint",
        _ => return None,
    })
}

/// Whether a JSON value is a label (an object with a `_cls`, other than media metadata).
pub fn is_label_value(v: &Value) -> bool {
    v.get("_cls")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.ends_with("Metadata"))
}

/// The individual label objects inside a label value, without converting them: the items of
/// a list class, or the value itself. Non-label values give nothing.
pub fn label_objects(v: &Value) -> Vec<&Object> {
    v.as_object().map(label_objects_of).unwrap_or_default()
}

/// [`label_objects`] of a JSON object.
pub fn label_objects_of(obj: &Object) -> Vec<&Object> {
    let Some(cls) = obj.get("_cls").and_then(Value::as_str) else {
        return Vec::new();
    };
    match label_list_key(cls) {
        Some(key) => obj
            .get(key)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_object).collect())
            .unwrap_or_default(),
        None if cls.ends_with("Metadata") => Vec::new(),
        None => vec![obj],
    }
}

/// Fields every label class has: id, tags, label, index, the legacy `attributes` dict and
/// custom attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelBase {
    /// `_id`.
    pub id: Option<ObjectId>,
    /// `tags`.
    pub tags: Option<Vec<String>>,
    /// `label` (the class).
    pub label: Option<String>,
    /// `index` (the track id in videos).
    pub index: Option<i64>,
    /// The legacy `attributes` dict (`{name: {"_cls": "...Attribute", "value": ...}}`).
    pub attributes: Option<Object>,
    /// Custom attributes: every other key, in order (`occluded`, `keyframe`, `logits`, ...).
    pub extra: Object,
    /// The keys as read, so writing restores the original order.
    order: Vec<String>,
}

impl LabelBase {
    /// A base with a fresh id, empty tags and this label.
    pub fn new(label: impl Into<String>) -> Self {
        LabelBase {
            id: Some(ObjectId::new()),
            tags: Some(Vec::new()),
            label: Some(label.into()),
            ..Default::default()
        }
    }

    /// A custom attribute, falling back to the legacy `attributes` dict's `value`.
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.extra
            .get(name)
            .or_else(|| self.attributes.as_ref()?.get(name)?.get("value"))
    }
}

/// A class-specific part of a label: how its own keys read and write.
trait Kind: Default {
    const CLS: &'static str;
    const KEYS: &'static [&'static str];
    fn read(&mut self, key: &str, v: &Value) -> Result<(), LabelError>;
    fn write(&self, key: &str) -> Option<Value>;
}

const BASE_KEYS: [&str; 6] = ["_id", "_cls", "attributes", "tags", "label", "index"];

fn read_base(base: &mut LabelBase, key: &str, v: &Value) -> Result<(), LabelError> {
    match key {
        "_id" => {
            base.id =
                Some(ObjectId::from_ejson(v).ok_or_else(|| {
                    LabelError::new("_id", "expected {\"$oid\": <24 hex digits>}")
                })?)
        }
        "tags" => base.tags = Some(strings(v).map_err(|m| LabelError::new("tags", m))?),
        "label" => {
            base.label = Some(
                v.as_str()
                    .ok_or_else(|| LabelError::new("label", "expected a string"))?
                    .to_owned(),
            )
        }
        "index" => {
            base.index = Some(
                v.as_i64()
                    .ok_or_else(|| LabelError::new("index", "expected an integer"))?,
            )
        }
        "attributes" => {
            base.attributes = Some(
                v.as_object()
                    .ok_or_else(|| LabelError::new("attributes", "expected an object"))?
                    .clone(),
            )
        }
        _ => {}
    }
    Ok(())
}

fn write_base(base: &LabelBase, cls: &str, key: &str) -> Option<Value> {
    match key {
        "_id" => base.id.map(|i| i.to_ejson()),
        "_cls" => Some(Value::String(cls.to_owned())),
        "tags" => base.tags.as_ref().map(|t| Value::from(t.clone())),
        "label" => base.label.clone().map(Value::String),
        "index" => base.index.map(Value::from),
        "attributes" => base.attributes.clone().map(Value::Object),
        _ => None,
    }
}

fn strings(v: &Value) -> Result<Vec<String>, String> {
    v.as_array()
        .and_then(|a| {
            a.iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| "expected a list of strings".to_owned())
}

fn num(v: &Value, at: &str) -> Result<f64, LabelError> {
    ejson::as_f64(v).ok_or_else(|| LabelError::new(at, "expected a number"))
}

fn nums(v: &Value, at: &str) -> Result<Vec<f64>, LabelError> {
    let a = v
        .as_array()
        .ok_or_else(|| LabelError::new(at, "expected a list of numbers"))?;
    a.iter().map(|x| num(x, at)).collect()
}

fn point(v: &Value, at: &str) -> Result<[f64; 2], LabelError> {
    match nums(v, at)?.as_slice() {
        [x, y] => Ok([*x, *y]),
        _ => Err(LabelError::new(at, "expected a point [x, y]")),
    }
}

fn points(v: &Value, at: &str) -> Result<Vec<[f64; 2]>, LabelError> {
    let a = v
        .as_array()
        .ok_or_else(|| LabelError::new(at, "expected a list of points"))?;
    a.iter().map(|p| point(p, at)).collect()
}

fn f64s_json(xs: &[f64]) -> Value {
    Value::Array(xs.iter().map(|x| ejson::from_f64(*x)).collect())
}

fn points_json(ps: &[[f64; 2]]) -> Value {
    Value::Array(ps.iter().map(|p| f64s_json(p)).collect())
}

fn read_mask(v: &Value, at: &str) -> Result<Binary, LabelError> {
    Binary::from_ejson(v).map_err(|e| LabelError::new(at, e.to_string()))
}

fn read_bool(v: &Value, at: &str) -> Result<bool, LabelError> {
    v.as_bool()
        .ok_or_else(|| LabelError::new(at, "expected true or false"))
}

fn read_string(v: &Value, at: &str) -> Result<String, LabelError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| LabelError::new(at, "expected a string"))
}

/// Decodes one label object of class `K`.
fn decode<K: Kind>(v: &Value) -> Result<(LabelBase, K), LabelError> {
    let obj = v
        .as_object()
        .ok_or_else(|| LabelError::new("", "expected an object"))?;
    let mut base = LabelBase::default();
    let mut kind = K::default();
    for (key, val) in obj {
        base.order.push(key.clone());
        // An explicit null is kept verbatim (as a custom value) so it is written back.
        if val.is_null() {
            base.extra.insert(key.clone(), Value::Null);
            continue;
        }
        if key == "_cls" {
            let cls = val.as_str().unwrap_or_default();
            if cls != K::CLS {
                return Err(LabelError::new(
                    "_cls",
                    format!("expected {:?}, found {val}", K::CLS),
                ));
            }
        } else if BASE_KEYS.contains(&key.as_str()) {
            read_base(&mut base, key, val)?;
        } else if K::KEYS.contains(&key.as_str()) {
            kind.read(key, val)?;
        } else {
            base.extra.insert(key.clone(), val.clone());
        }
    }
    Ok((base, kind))
}

/// Encodes one label object: original keys in their order, then new typed keys, then new
/// custom attributes.
fn encode<K: Kind>(base: &LabelBase, kind: &K) -> Value {
    let known = |k: &str| BASE_KEYS.contains(&k) || K::KEYS.contains(&k);
    let typed = |k: &str| {
        if BASE_KEYS.contains(&k) {
            write_base(base, K::CLS, k)
        } else {
            kind.write(k)
        }
    };
    let mut out = Object::new();
    for key in &base.order {
        let v = if known(key) {
            typed(key).or_else(|| base.extra.get(key).cloned())
        } else {
            base.extra.get(key).cloned()
        };
        if let Some(v) = v {
            out.insert(key.clone(), v);
        }
    }
    for key in BASE_KEYS.iter().chain(K::KEYS) {
        if !out.contains_key(*key) {
            if let Some(v) = typed(key) {
                out.insert((*key).to_owned(), v);
            }
        }
    }
    for (k, v) in &base.extra {
        if !(out.contains_key(k) || known(k) && v.is_null()) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

macro_rules! label_struct {
    ($(#[$doc:meta])* $name:ident, $data:ident, $cls:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            /// Id, tags, label, index, attributes.
            pub base: LabelBase,
            /// The class-specific fields.
            pub data: $data,
        }

        impl $name {
            /// The `_cls` of this label class.
            pub const CLS: &'static str = $cls;

            /// Reads the label from its JSON object.
            pub fn from_json(v: &Value) -> Result<Self, LabelError> {
                let (base, data) = decode::<$data>(v)?;
                Ok($name { base, data })
            }

            /// Writes the label as its JSON object.
            pub fn to_json(&self) -> Value {
                encode(&self.base, &self.data)
            }
        }
    };
}

/// `Classification`-specific fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassificationData {
    /// `confidence`.
    pub confidence: Option<f64>,
}

impl Kind for ClassificationData {
    const CLS: &'static str = "Classification";
    const KEYS: &'static [&'static str] = &["confidence"];
    fn read(&mut self, key: &str, v: &Value) -> Result<(), LabelError> {
        if key == "confidence" {
            self.confidence = Some(num(v, key)?);
        }
        Ok(())
    }
    fn write(&self, key: &str) -> Option<Value> {
        match key {
            "confidence" => self.confidence.map(ejson::from_f64),
            _ => None,
        }
    }
}

/// `Detection`-specific fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectionData {
    /// `[x, y, w, h]` relative to the image, top-left origin.
    pub bounding_box: Option<[f64; 4]>,
    /// Instance mask over the box (zlib'd npy in a `$binary`); see [`Mask`].
    pub mask: Option<Binary>,
    /// Instance mask on disk.
    pub mask_path: Option<String>,
    /// `confidence`.
    pub confidence: Option<f64>,
}

impl Kind for DetectionData {
    const CLS: &'static str = "Detection";
    const KEYS: &'static [&'static str] = &["bounding_box", "mask", "mask_path", "confidence"];
    fn read(&mut self, key: &str, v: &Value) -> Result<(), LabelError> {
        match key {
            "bounding_box" => match nums(v, key)?.as_slice() {
                [x, y, w, h] => self.bounding_box = Some([*x, *y, *w, *h]),
                _ => return Err(LabelError::new(key, "expected [x, y, width, height]")),
            },
            "mask" => self.mask = Some(read_mask(v, key)?),
            "mask_path" => self.mask_path = Some(read_string(v, key)?),
            "confidence" => self.confidence = Some(num(v, key)?),
            _ => {}
        }
        Ok(())
    }
    fn write(&self, key: &str) -> Option<Value> {
        match key {
            "bounding_box" => self.bounding_box.map(|b| f64s_json(&b)),
            "mask" => self.mask.as_ref().map(Binary::to_ejson),
            "mask_path" => self.mask_path.clone().map(Value::String),
            "confidence" => self.confidence.map(ejson::from_f64),
            _ => None,
        }
    }
}

/// `Polyline`-specific fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolylineData {
    /// A list of shapes, each a list of relative `[x, y]` points.
    pub points: Option<Vec<Vec<[f64; 2]>>>,
    /// Whether the shapes are closed.
    pub closed: Option<bool>,
    /// Whether the shapes are filled (polygons).
    pub filled: Option<bool>,
    /// `confidence`.
    pub confidence: Option<f64>,
}

impl Kind for PolylineData {
    const CLS: &'static str = "Polyline";
    const KEYS: &'static [&'static str] = &["points", "confidence", "closed", "filled"];
    fn read(&mut self, key: &str, v: &Value) -> Result<(), LabelError> {
        match key {
            "points" => {
                let shapes = v
                    .as_array()
                    .ok_or_else(|| LabelError::new(key, "expected a list of shapes"))?;
                self.points = Some(
                    shapes
                        .iter()
                        .map(|s| points(s, key))
                        .collect::<Result<_, _>>()?,
                );
            }
            "closed" => self.closed = Some(read_bool(v, key)?),
            "filled" => self.filled = Some(read_bool(v, key)?),
            "confidence" => self.confidence = Some(num(v, key)?),
            _ => {}
        }
        Ok(())
    }
    fn write(&self, key: &str) -> Option<Value> {
        match key {
            "points" => self
                .points
                .as_ref()
                .map(|s| Value::Array(s.iter().map(|p| points_json(p)).collect())),
            "closed" => self.closed.map(Value::Bool),
            "filled" => self.filled.map(Value::Bool),
            "confidence" => self.confidence.map(ejson::from_f64),
            _ => None,
        }
    }
}

/// `Keypoint`-specific fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeypointData {
    /// Relative `[x, y]` points; a missing point is `[NaN, NaN]`.
    pub points: Option<Vec<[f64; 2]>>,
    /// Per-point confidence (NaN for missing points).
    pub confidence: Option<Vec<f64>>,
}

impl Kind for KeypointData {
    const CLS: &'static str = "Keypoint";
    const KEYS: &'static [&'static str] = &["points", "confidence"];
    fn read(&mut self, key: &str, v: &Value) -> Result<(), LabelError> {
        match key {
            "points" => self.points = Some(points(v, key)?),
            "confidence" => self.confidence = Some(nums(v, key)?),
            _ => {}
        }
        Ok(())
    }
    fn write(&self, key: &str) -> Option<Value> {
        match key {
            "points" => self.points.as_deref().map(points_json),
            "confidence" => self.confidence.as_deref().map(f64s_json),
            _ => None,
        }
    }
}

/// `Segmentation`-specific fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentationData {
    /// Inline mask (zlib'd npy, uint8 HxW); see [`Mask`].
    pub mask: Option<Binary>,
    /// Mask image on disk, relative to the dataset directory or absolute.
    pub mask_path: Option<String>,
}

impl Kind for SegmentationData {
    const CLS: &'static str = "Segmentation";
    const KEYS: &'static [&'static str] = &["mask", "mask_path"];
    fn read(&mut self, key: &str, v: &Value) -> Result<(), LabelError> {
        match key {
            "mask" => self.mask = Some(read_mask(v, key)?),
            "mask_path" => self.mask_path = Some(read_string(v, key)?),
            _ => {}
        }
        Ok(())
    }
    fn write(&self, key: &str) -> Option<Value> {
        match key {
            "mask" => self.mask.as_ref().map(Binary::to_ejson),
            "mask_path" => self.mask_path.clone().map(Value::String),
            _ => None,
        }
    }
}

label_struct!(
    /// A class label for the whole image (or frame).
    Classification, ClassificationData, "Classification"
);
label_struct!(
    /// An object box, optionally with an instance mask.
    Detection, DetectionData, "Detection"
);
label_struct!(
    /// Polylines or polygons.
    Polyline, PolylineData, "Polyline"
);
label_struct!(
    /// A set of keypoints.
    Keypoint, KeypointData, "Keypoint"
);
label_struct!(
    /// A semantic segmentation mask.
    Segmentation, SegmentationData, "Segmentation"
);

impl Detection {
    /// Decodes the inline instance mask, if any.
    pub fn decode_mask(&self) -> Option<Result<Mask, MaskError>> {
        self.data
            .mask
            .as_ref()
            .map(|b| Mask::from_zlib_npy(&b.bytes))
    }
}

impl Segmentation {
    /// Decodes the inline mask, if any.
    pub fn decode_mask(&self) -> Option<Result<Mask, MaskError>> {
        self.data
            .mask
            .as_ref()
            .map(|b| Mask::from_zlib_npy(&b.bytes))
    }
}

/// A list label (`Detections`, ...): its items plus the container's other keys (`logits`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelList<T> {
    /// The labels.
    pub items: Vec<T>,
    /// Other keys of the container, in order.
    pub extra: Object,
    order: Vec<String>,
}

impl<T> LabelList<T> {
    /// A list of these labels.
    pub fn new(items: Vec<T>) -> Self {
        LabelList {
            items,
            extra: Object::new(),
            order: Vec::new(),
        }
    }

    fn decode(
        v: &Value,
        cls: &str,
        key: &str,
        item: impl Fn(&Value) -> Result<T, LabelError>,
    ) -> Result<Self, LabelError> {
        let obj = v
            .as_object()
            .ok_or_else(|| LabelError::new("", "expected an object"))?;
        let mut list = LabelList::new(Vec::new());
        for (k, val) in obj {
            list.order.push(k.clone());
            if k == "_cls" {
                if val.as_str() != Some(cls) {
                    return Err(LabelError::new(
                        "_cls",
                        format!("expected {cls:?}, found {val}"),
                    ));
                }
            } else if k == key && !val.is_null() {
                let arr = val
                    .as_array()
                    .ok_or_else(|| LabelError::new(key, "expected a list of labels"))?;
                for (i, it) in arr.iter().enumerate() {
                    list.items
                        .push(item(it).map_err(|e| e.nest(&format!("{key}[{i}]")))?);
                }
            } else {
                list.extra.insert(k.clone(), val.clone());
            }
        }
        Ok(list)
    }

    fn encode(&self, cls: &str, key: &str, item: impl Fn(&T) -> Value) -> Value {
        let items = || Value::Array(self.items.iter().map(&item).collect());
        let mut out = Object::new();
        for k in &self.order {
            if k == "_cls" {
                out.insert(k.clone(), Value::String(cls.to_owned()));
            } else if k == key {
                out.insert(k.clone(), items());
            } else if let Some(v) = self.extra.get(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        if !out.contains_key("_cls") {
            out.insert("_cls".into(), Value::String(cls.to_owned()));
        }
        if !out.contains_key(key) {
            out.insert(key.to_owned(), items());
        }
        for (k, v) in &self.extra {
            if !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }
}

/// Any label value a sample (or frame) field holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// `Classification`.
    Classification(Classification),
    /// `Classifications`.
    Classifications(LabelList<Classification>),
    /// `Detection`.
    Detection(Detection),
    /// `Detections`.
    Detections(LabelList<Detection>),
    /// `Polyline`.
    Polyline(Polyline),
    /// `Polylines`.
    Polylines(LabelList<Polyline>),
    /// `Keypoint`.
    Keypoint(Keypoint),
    /// `Keypoints`.
    Keypoints(LabelList<Keypoint>),
    /// `Segmentation`.
    Segmentation(Segmentation),
    /// A label class annoform does not model (`Heatmap`, `GeoLocation`, ...), kept verbatim.
    Other(Object),
}

/// A single label of any modelled class, for code that handles items of every list class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LabelRef<'a> {
    /// A classification.
    Classification(&'a Classification),
    /// A detection.
    Detection(&'a Detection),
    /// A polyline.
    Polyline(&'a Polyline),
    /// A keypoint set.
    Keypoint(&'a Keypoint),
    /// A segmentation.
    Segmentation(&'a Segmentation),
}

impl LabelRef<'_> {
    /// The common fields.
    pub fn base(&self) -> &LabelBase {
        match self {
            LabelRef::Classification(l) => &l.base,
            LabelRef::Detection(l) => &l.base,
            LabelRef::Polyline(l) => &l.base,
            LabelRef::Keypoint(l) => &l.base,
            LabelRef::Segmentation(l) => &l.base,
        }
    }
}

impl Label {
    /// Reads a label value; the class comes from `_cls`.
    pub fn from_json(v: &Value) -> Result<Label, LabelError> {
        let obj = v
            .as_object()
            .ok_or_else(|| LabelError::new("", "expected a label object"))?;
        let cls = obj
            .get("_cls")
            .and_then(Value::as_str)
            .ok_or_else(|| LabelError::new("_cls", "missing label class"))?;
        Ok(match cls {
            "Classification" => Label::Classification(Classification::from_json(v)?),
            "Detection" => Label::Detection(Detection::from_json(v)?),
            "Polyline" => Label::Polyline(Polyline::from_json(v)?),
            "Keypoint" => Label::Keypoint(Keypoint::from_json(v)?),
            "Segmentation" => Label::Segmentation(Segmentation::from_json(v)?),
            "Classifications" => Label::Classifications(LabelList::decode(
                v,
                cls,
                "classifications",
                Classification::from_json,
            )?),
            "Detections" => Label::Detections(LabelList::decode(
                v,
                cls,
                "detections",
                Detection::from_json,
            )?),
            "Polylines" => {
                Label::Polylines(LabelList::decode(v, cls, "polylines", Polyline::from_json)?)
            }
            "Keypoints" => {
                Label::Keypoints(LabelList::decode(v, cls, "keypoints", Keypoint::from_json)?)
            }
            _ => Label::Other(obj.clone()),
        })
    }

    /// Writes the label value.
    pub fn to_json(&self) -> Value {
        match self {
            Label::Classification(l) => l.to_json(),
            Label::Detection(l) => l.to_json(),
            Label::Polyline(l) => l.to_json(),
            Label::Keypoint(l) => l.to_json(),
            Label::Segmentation(l) => l.to_json(),
            Label::Classifications(l) => l.encode(
                "Classifications",
                "classifications",
                Classification::to_json,
            ),
            Label::Detections(l) => l.encode("Detections", "detections", Detection::to_json),
            Label::Polylines(l) => l.encode("Polylines", "polylines", Polyline::to_json),
            Label::Keypoints(l) => l.encode("Keypoints", "keypoints", Keypoint::to_json),
            Label::Other(o) => Value::Object(o.clone()),
        }
    }

    /// The `_cls`.
    pub fn cls(&self) -> &str {
        match self {
            Label::Classification(_) => "Classification",
            Label::Classifications(_) => "Classifications",
            Label::Detection(_) => "Detection",
            Label::Detections(_) => "Detections",
            Label::Polyline(_) => "Polyline",
            Label::Polylines(_) => "Polylines",
            Label::Keypoint(_) => "Keypoint",
            Label::Keypoints(_) => "Keypoints",
            Label::Segmentation(_) => "Segmentation",
            Label::Other(o) => o.get("_cls").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The individual labels (one for single classes, the items for list classes; none for
    /// unmodelled classes).
    pub fn items(&self) -> Vec<LabelRef<'_>> {
        match self {
            Label::Classification(l) => vec![LabelRef::Classification(l)],
            Label::Detection(l) => vec![LabelRef::Detection(l)],
            Label::Polyline(l) => vec![LabelRef::Polyline(l)],
            Label::Keypoint(l) => vec![LabelRef::Keypoint(l)],
            Label::Segmentation(l) => vec![LabelRef::Segmentation(l)],
            Label::Classifications(l) => l.items.iter().map(LabelRef::Classification).collect(),
            Label::Detections(l) => l.items.iter().map(LabelRef::Detection).collect(),
            Label::Polylines(l) => l.items.iter().map(LabelRef::Polyline).collect(),
            Label::Keypoints(l) => l.items.iter().map(LabelRef::Keypoint).collect(),
            Label::Other(_) => Vec::new(),
        }
    }

    /// The ids of the individual labels.
    pub fn label_ids(&self) -> Vec<ObjectId> {
        match self {
            Label::Other(o) => label_objects(&Value::Object(o.clone()))
                .into_iter()
                .filter_map(|l| l.get("_id").and_then(ObjectId::from_ejson))
                .collect(),
            _ => self.items().iter().filter_map(|l| l.base().id).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fixture_samples() -> Vec<Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fiftyone-1.22.1/image-all-label-types/samples.json"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["samples"].as_array().unwrap().clone()
    }

    /// Serialized text equality, so key order counts.
    fn same_text(a: &Value, b: &Value) {
        assert_eq!(
            serde_json::to_string(a).unwrap(),
            serde_json::to_string(b).unwrap()
        );
    }

    #[test]
    fn every_fixture_label_round_trips_exactly() {
        let mut seen = std::collections::BTreeSet::new();
        for s in fixture_samples() {
            for (k, v) in s.as_object().unwrap() {
                if !is_label_value(v) {
                    continue;
                }
                let l = Label::from_json(v).unwrap_or_else(|e| panic!("{k}: {e}"));
                assert!(!matches!(l, Label::Other(_)), "{k} is modelled");
                seen.insert(l.cls().to_owned());
                same_text(&l.to_json(), v);
            }
        }
        let want = [
            "Classification",
            "Classifications",
            "Detections",
            "Keypoints",
            "Polylines",
            "Segmentation",
        ];
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn typed_access_to_fixture_labels() {
        let s = &fixture_samples()[0];
        let Label::Detections(d) = Label::from_json(&s["ground_truth"]).unwrap() else {
            panic!()
        };
        assert_eq!(d.items[0].base.label.as_deref(), Some("car"));
        assert_eq!(d.items[0].data.bounding_box, Some([0.1, 0.2, 0.3, 0.4]));
        assert_eq!(d.items[0].base.extra.get("occluded"), Some(&json!(true)));
        assert_eq!(
            d.items[0].base.tags.as_deref(),
            Some(&["checked".to_owned()][..])
        );
        assert_eq!(d.items[1].base.index, Some(3));
        let mask = d.items[1].decode_mask().unwrap().unwrap();
        assert_eq!(mask.dtype, crate::dataset::mask::Dtype::Bool);
        let Label::Keypoints(k) = Label::from_json(&s["kps"]).unwrap() else {
            panic!()
        };
        let pts = k.items[0].data.points.as_ref().unwrap();
        assert!(pts[2][0].is_nan() && pts[2][1].is_nan());
        assert!(k.items[0].data.confidence.as_ref().unwrap()[2].is_nan());
        let Label::Segmentation(seg) = Label::from_json(&s["seg_path"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            seg.data.mask_path.as_deref(),
            Some("fields/seg_path/seg0.png")
        );
    }

    #[test]
    fn edits_keep_order_and_new_keys_go_last() {
        let v = json!({"_id": {"$oid": "6b02535c63110a1e76c075c0"}, "_cls": "Detection", "attributes": {},
                       "tags": [], "label": "car", "bounding_box": [0.1, 0.2, 0.3, 0.4], "occluded": true});
        let mut d = Detection::from_json(&v).unwrap();
        d.base.label = Some("bus".into());
        d.data.confidence = Some(0.5);
        d.base.extra.insert("color".into(), json!("red"));
        let out = serde_json::to_string(&d.to_json()).unwrap();
        assert_eq!(
            out,
            r#"{"_id":{"$oid":"6b02535c63110a1e76c075c0"},"_cls":"Detection","attributes":{},"tags":[],"label":"bus","bounding_box":[0.1,0.2,0.3,0.4],"occluded":true,"confidence":0.5,"color":"red"}"#
        );
    }

    #[test]
    fn new_label_json_shape() {
        let mut d = Detection {
            base: LabelBase::new("car"),
            ..Default::default()
        };
        d.data.bounding_box = Some([0.0, 0.5, 0.25, 0.25]);
        let v = Label::Detections(LabelList::new(vec![d])).to_json();
        assert_eq!(v["_cls"], "Detections");
        assert_eq!(v["detections"][0]["_cls"], "Detection");
        assert_eq!(v["detections"][0]["label"], "car");
        assert!(ObjectId::from_ejson(&v["detections"][0]["_id"]).is_some());
    }

    #[test]
    fn explicit_nulls_round_trip() {
        let v = json!({"_cls": "Classification", "label": "a", "confidence": null, "logits": null});
        same_text(&Label::from_json(&v).unwrap().to_json(), &v);
    }

    #[test]
    fn unknown_classes_are_kept() {
        let v = json!({"_cls": "Heatmap", "map": {"x": 1}, "range": [0, 1]});
        let l = Label::from_json(&v).unwrap();
        assert!(matches!(l, Label::Other(_)));
        same_text(&l.to_json(), &v);
    }

    #[test]
    fn wrong_types_name_the_path() {
        let v = json!({"_cls": "Detections", "detections": [{"_cls": "Detection", "label": "a"},
                      {"_cls": "Detection", "bounding_box": [0.1, "x", 0.2, 0.3]}]});
        let e = Label::from_json(&v).unwrap_err();
        assert_eq!(e.at, "detections[1].bounding_box");
        let e = Label::from_json(&json!({"_cls": "Classification", "label": 3})).unwrap_err();
        assert_eq!(e.to_string(), "label: expected a string");
        let e = Label::from_json(&json!({"_cls": "Detections", "detections": {}})).unwrap_err();
        assert_eq!(e.at, "detections");
    }

    #[test]
    fn list_keys() {
        assert_eq!(label_list_key("Detections"), Some("detections"));
        assert_eq!(label_list_key("Classifications"), Some("classifications"));
        assert_eq!(label_list_key("Polylines"), Some("polylines"));
        assert_eq!(label_list_key("Keypoints"), Some("keypoints"));
        assert_eq!(label_list_key("Detection"), None);
    }

    fn arb_f64() -> impl Strategy<Value = f64> {
        // Integral floats print as `1.0`, which reads back as the same float; NaN exercises
        // the `$numberDouble` path.
        prop_oneof![4 => -1e6f64..1e6, 1 => Just(f64::NAN), 1 => Just(1.0)]
    }

    fn arb_attr() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,6}".prop_map(Value::from),
            Just(Value::Null),
        ]
    }

    fn arb_detection() -> impl Strategy<Value = Value> {
        (
            proptest::option::of("[a-z]{1,5}"),
            proptest::option::of(proptest::array::uniform4(-1e3f64..1e3)),
            proptest::option::of(0.0f64..1.0),
            proptest::option::of(any::<i64>()),
            proptest::collection::vec(("x_[a-z]{1,5}", arb_attr()), 0..4),
            any::<bool>(),
        )
            .prop_map(|(label, bb, conf, index, attrs, id_first)| {
                let mut o = Object::new();
                if id_first {
                    o.insert("_id".into(), ObjectId::derive(&[b"x"]).to_ejson());
                }
                o.insert("_cls".into(), "Detection".into());
                for (k, v) in attrs {
                    o.insert(k, v);
                }
                if let Some(l) = label {
                    o.insert("label".into(), l.into());
                }
                if let Some(b) = bb {
                    o.insert("bounding_box".into(), f64s_json(&b));
                }
                if let Some(c) = conf {
                    o.insert("confidence".into(), ejson::from_f64(c));
                }
                if let Some(i) = index {
                    o.insert("index".into(), i.into());
                }
                Value::Object(o)
            })
    }

    proptest! {
        #[test]
        fn detections_round_trip(dets in proptest::collection::vec(arb_detection(), 0..5), logits in any::<bool>()) {
            let mut o = Object::new();
            if logits { o.insert("logits".into(), json!([0.5])); }
            o.insert("_cls".into(), "Detections".into());
            o.insert("detections".into(), Value::Array(dets));
            let v = Value::Object(o);
            let l = Label::from_json(&v).unwrap();
            prop_assert_eq!(serde_json::to_string(&l.to_json()).unwrap(), serde_json::to_string(&v).unwrap());
        }

        #[test]
        fn keypoints_round_trip(pts in proptest::collection::vec((arb_f64(), arb_f64()), 0..6)) {
            let points: Vec<[f64; 2]> = pts.iter().map(|(x, y)| [*x, *y]).collect();
            let conf: Vec<f64> = pts.iter().map(|(x, _)| *x).collect();
            let v = json!({"_cls": "Keypoints", "keypoints": [
                {"_id": {"$oid": "6b02535c63110a1e76c075c5"}, "_cls": "Keypoint", "label": "k",
                 "points": points_json(&points), "confidence": f64s_json(&conf)}]});
            let l = Label::from_json(&v).unwrap();
            prop_assert_eq!(serde_json::to_string(&l.to_json()).unwrap(), serde_json::to_string(&v).unwrap());
        }
    }
}
