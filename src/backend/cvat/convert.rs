//! FiftyOne label JSON ↔ CVAT annotation JSON (`{"version","tags","shapes","tracks"}`) for
//! image tasks, where a frame is one sample.
//!
//! Geometry. Boxes, polylines and keypoints are sent in pixels without rounding (CVAT stores
//! the floats it is given), so they come back within float error (1e-9 relative). Masks are
//! pixel-aligned: an instance's mask is placed at its box's top-left rounded to the nearest
//! pixel and the mask's own shape is the box size, so its box comes back as
//! `[left/W, top/H, mask_w/W, mask_h/H]`. A detection in an instances field without a mask is
//! sent as a filled mask of its rounded box. What comes back is what [`as_held`] computes from
//! the dataset's label, so the merge sees an untouched label as unchanged, exactly, whatever
//! its box and mask resolution.
//!
//! Objects that are not labels of their field (another shape type, a tag on a spatial field,
//! a label no field has, tracks, corrupt masks) are listed as misfits, never left out. Segmentation
//! masks are one mask shape per class, cropped to the class's pixels, and are rebuilt as an
//! image-sized `uint8` mask.
//!
//! Ids. Our label id travels in the `label_id` attribute, FiftyOne's `index` in `index`;
//! `DownloadedLabel.backend_id` is `shape:<id>` or `tag:<id>` (the first shape for labels
//! made of several shapes). A polyline with several sub-shapes is one CVAT shape per
//! sub-shape, regrouped by `label_id` in shape id order.
//!
//! Normalisation undone. Attribute values are strings on the wire: checkboxes `true`/`false`
//! (the server may answer `True`), numbers in decimal; they are read back by the schema's
//! attribute type. The defaults the server fills in for unset attributes (`""` for text,
//! `__undefined__` for select/radio without a schema default) are dropped again; a schema
//! default is kept, as it is what the attribute means when unset. Keypoints CVAT cannot
//! hold (NaN) are skipped and put back from the uploaded label when the other points are
//! still all there.

use std::collections::HashMap;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};

use super::labels::{
    FILLED_ATTR, INDEX_ATTR, LABEL_ID_ATTR, LabelMap, MappedLabel, NAN_ATTR, UNSET, VALUE_ATTR,
};
use super::labels::{attributes_of, scalar_string};
use super::rle;
use crate::backend::convert::geometry::{
    bounding_box, box_corners, box_from_corners, flag, is_present, point_list, points_json,
    refill_missing, relative_points, target_class, target_value, to_pixels,
};
use crate::backend::convert::mask::{BoxMask, class_values, classes_present, instance_box};
use crate::backend::convert::{ConvertError, ImageSize};
use crate::backend::{DownloadedLabel, Misfit};
use crate::dataset::ejson::{from_f64, oid_str};
use crate::dataset::mask::{Dtype, Mask};
use crate::manifest::{AttributeType, LabelType, Scalar};
use crate::schema::{ResolvedAttribute, ResolvedField, ResolvedSchema};

/// One attribute value of a shape, tag or track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeValue {
    pub spec_id: i64,
    /// Always a string on the wire; other JSON the server might echo is read as a string.
    #[serde(deserialize_with = "lenient_string")]
    pub value: String,
}

/// A string, or any other JSON scalar as its string (a JSON `true` comes back as `"True"`).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    })
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn manual() -> String {
    "manual".into()
}

/// A CVAT shape (also a tracked shape, which has no `label_id`, and a skeleton element).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(rename = "type")]
    pub shape_type: String,
    pub frame: u64,
    /// 0 for tracked shapes, which take their track's label (CVAT ids start at 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_id: i64,
    #[serde(default)]
    pub points: Vec<f64>,
    #[serde(default)]
    pub occluded: bool,
    #[serde(default)]
    pub outside: bool,
    #[serde(default)]
    pub z_order: i64,
    #[serde(default)]
    pub rotation: f64,
    #[serde(default)]
    pub group: Option<i64>,
    #[serde(default = "manual")]
    pub source: String,
    #[serde(default)]
    pub attributes: Vec<AttributeValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<Shape>,
    /// Tracked shapes only; CVAT 2.23.1 drops it (every tracked shape is a keyframe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyframe: Option<bool>,
    /// Not CVAT's: the track a frame of a downloaded track came from (see `video`), so its
    /// label is named `track:<id>` (one object over many frames) and keeps its keyframe mark.
    #[serde(skip)]
    pub track: Option<i64>,
}

/// A CVAT tag (a frame-level label).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub frame: u64,
    pub label_id: i64,
    #[serde(default)]
    pub group: Option<i64>,
    #[serde(default = "manual")]
    pub source: String,
    #[serde(default)]
    pub attributes: Vec<AttributeValue>,
}

/// A CVAT track (video): immutable attributes here, mutable ones on its shapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub frame: u64,
    pub label_id: i64,
    #[serde(default)]
    pub group: Option<i64>,
    #[serde(default = "manual")]
    pub source: String,
    #[serde(default)]
    pub attributes: Vec<AttributeValue>,
    #[serde(default)]
    pub shapes: Vec<Shape>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elements: Vec<Track>,
}

/// A task's or job's annotations, as PUT and GET carry them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Annotations {
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub shapes: Vec<Shape>,
    #[serde(default)]
    pub tracks: Vec<Track>,
}

/// What one frame's annotations gave: labels per field. Objects that are not labels of the
/// schema (another shape type, a label no field has, a bad RLE) are listed too, under the
/// field they were drawn for, as misfits: nothing the server holds is left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Downloaded {
    pub labels: IndexMap<String, Vec<DownloadedLabel>>,
}

impl Downloaded {
    /// The objects that do not fit their field.
    pub fn misfits(&self) -> Vec<&DownloadedLabel> {
        self.labels
            .values()
            .flatten()
            .filter(|d| d.misfit.is_some())
            .collect()
    }
}

/// The shape and tag fields a label's attributes set.
#[derive(Debug, Default)]
struct Carried {
    attributes: Vec<AttributeValue>,
    occluded: bool,
    group: Option<i64>,
}

/// Adds one field's labels on one frame to `out`. Scalars come as a one-element list
/// holding the value.
pub fn to_cvat(
    name: &str,
    field: &ResolvedField,
    labels: &[Value],
    frame: u64,
    size: ImageSize,
    map: &LabelMap,
    out: &mut Annotations,
) -> Result<(), ConvertError> {
    let err = |message: String| ConvertError {
        field: name.to_string(),
        message,
    };
    let spatial = !matches!(
        field.label_type,
        LabelType::Classification | LabelType::Classifications | LabelType::Scalar
    );
    if spatial && (size.width == 0 || size.height == 0) && !labels.is_empty() {
        return Err(err(format!("frame {frame}: image size unknown")));
    }
    for label in labels {
        if label.is_null() {
            continue;
        }
        if field.label_type == LabelType::Scalar {
            let mapped = map
                .label_of(name, "")
                .ok_or_else(|| err("no CVAT label for the field".into()))?;
            out.tags
                .push(scalar_tag(label, field, mapped, frame).map_err(err)?);
            continue;
        }
        let class = label.get("label").and_then(Value::as_str).unwrap_or("");
        if field.label_type == LabelType::Segmentation {
            segmentation_shapes(name, field, label, frame, map, out).map_err(err)?;
            continue;
        }
        let mapped = map
            .label_of(name, class)
            .ok_or_else(|| err(format!("class `{class}` has no CVAT label")))?;
        let carried = carry(field, class, label, mapped).map_err(err)?;
        let base = Shape {
            id: None,
            shape_type: String::new(),
            frame,
            label_id: mapped.id,
            points: Vec::new(),
            occluded: carried.occluded,
            outside: false,
            z_order: 0,
            rotation: 0.0,
            group: carried.group,
            source: manual(),
            attributes: carried.attributes,
            elements: Vec::new(),
            keyframe: None,
            track: None,
        };
        match field.label_type {
            LabelType::Classification | LabelType::Classifications => out.tags.push(Tag {
                id: None,
                frame,
                label_id: base.label_id,
                group: base.group,
                source: base.source,
                attributes: base.attributes,
            }),
            LabelType::Detections => out.shapes.push(rectangle(label, size, base).map_err(err)?),
            LabelType::Instances => out.shapes.push(instance(label, size, base).map_err(err)?),
            LabelType::Polylines | LabelType::Polygons => {
                let mut shapes = polylines(label, size, base).map_err(err)?;
                if field.label_type == LabelType::Polylines
                    && flag(label, "filled")
                    && let Some(id) = mapped.spec_ids.get(FILLED_ATTR)
                {
                    for s in &mut shapes {
                        s.attributes.push(AttributeValue {
                            spec_id: *id,
                            value: "true".into(),
                        });
                    }
                }
                out.shapes.extend(shapes);
            }
            LabelType::Keypoints => {
                let mut s = keypoints(label, size, base).map_err(err)?;
                if let Some(v) = nan_positions(label) {
                    s.attributes.push(AttributeValue {
                        spec_id: spec(mapped, NAN_ATTR).map_err(err)?,
                        value: v,
                    });
                }
                out.shapes.push(s);
            }
            LabelType::Segmentation | LabelType::Scalar => {}
        }
    }
    Ok(())
}

/// Adds a sample's labels (field → labels, as in `TaskSample.labels`) on `frame`; fields
/// outside the schema are left out.
pub fn sample_to_cvat(
    schema: &ResolvedSchema,
    labels: &IndexMap<String, Vec<Value>>,
    frame: u64,
    size: ImageSize,
    map: &LabelMap,
    out: &mut Annotations,
) -> Result<(), ConvertError> {
    for (name, ls) in labels {
        if let Some(field) = schema.fields.get(name) {
            to_cvat(name, field, ls, frame, size, map, out)?;
        }
    }
    Ok(())
}

/// The CVAT string of an attribute value: the matching schema value's spelling for
/// select/radio, `true`/`false`, decimal numbers, strings as they are.
fn value_string(v: &Value, a: Option<&ResolvedAttribute>) -> String {
    if let Some(s) = a.and_then(|a| a.values.iter().find(|s| &scalar_json(s) == v)) {
        return scalar_string(s);
    }
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A schema scalar as JSON.
fn scalar_json(s: &Scalar) -> Value {
    match s {
        Scalar::Bool(b) => json!(b),
        Scalar::Int(i) => json!(i),
        Scalar::Float(f) => from_f64(*f),
        Scalar::Str(s) => json!(s),
    }
}

/// A scalar field's value as a tag.
fn scalar_tag(
    v: &Value,
    field: &ResolvedField,
    mapped: &MappedLabel,
    frame: u64,
) -> Result<Tag, String> {
    let spec_id = spec(mapped, VALUE_ATTR)?;
    let value = match v {
        Value::String(s) if field.classes.iter().any(|c| c == s) => s.clone(),
        other => value_string(other, None),
    };
    Ok(Tag {
        id: None,
        frame,
        label_id: mapped.id,
        group: None,
        source: manual(),
        attributes: vec![AttributeValue { spec_id, value }],
    })
}

/// The spec id of a label's attribute.
fn spec(mapped: &MappedLabel, name: &str) -> Result<i64, String> {
    mapped
        .spec_ids
        .get(name)
        .copied()
        .ok_or_else(|| format!("CVAT label {} has no attribute `{name}`", mapped.id))
}

/// The attributes, occluded flag and group a label carries to CVAT.
fn carry(
    field: &ResolvedField,
    class: &str,
    label: &Value,
    mapped: &MappedLabel,
) -> Result<Carried, String> {
    let mut c = Carried::default();
    for (name, a) in attributes_of(field, class) {
        let Some(v) = label.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        match a.attr_type {
            AttributeType::Occluded => c.occluded = v.as_bool().unwrap_or(false),
            AttributeType::GroupId => c.group = v.as_i64(),
            _ => c.attributes.push(AttributeValue {
                spec_id: spec(mapped, name)?,
                value: value_string(v, Some(a)),
            }),
        }
    }
    if let Some(id) = label.get("_id").and_then(oid_str) {
        c.attributes.push(AttributeValue {
            spec_id: spec(mapped, LABEL_ID_ATTR)?,
            value: id.to_string(),
        });
    }
    if let Some(i) = label.get("index").and_then(Value::as_i64) {
        c.attributes.push(AttributeValue {
            spec_id: spec(mapped, INDEX_ATTR)?,
            value: i.to_string(),
        });
    }
    Ok(c)
}

/// A detection as a rectangle (unrounded pixels); a `rotation` key (degrees) is CVAT's.
fn rectangle(label: &Value, size: ImageSize, mut s: Shape) -> Result<Shape, String> {
    let b = bounding_box(label).ok_or("invalid bounding_box")?;
    s.shape_type = "rectangle".into();
    s.points = box_corners(b, size).to_vec();
    // CVAT only takes 0–360.
    let rotation = label.get("rotation").and_then(Value::as_f64).unwrap_or(0.0);
    s.rotation = if rotation.is_finite() {
        rotation.rem_euclid(360.0)
    } else {
        0.0
    };
    Ok(s)
}

/// An instance as a mask shape at its box's rounded top-left.
fn instance(label: &Value, size: ImageSize, mut s: Shape) -> Result<Shape, String> {
    let boxed = instance_box(label, size)?;
    s.shape_type = "mask".into();
    s.points = rle::encode(&boxed).map_err(|e| e.to_string())?;
    Ok(s)
}

/// A label's geometry as CVAT holds it once uploaded (what a download with no edit gives
/// back): masks and boxes are pixel-aligned there, so an instance whose box is not, or whose
/// mask has another resolution than its box in pixels, comes back otherwise. The merge
/// compares a dataset label to its download through this, so such a label is unchanged when
/// nobody edited it. `None` when the label does not convert.
pub fn as_held(field: &ResolvedField, label: &Value, size: ImageSize) -> Option<Value> {
    let base = Shape {
        id: None,
        shape_type: String::new(),
        frame: 0,
        label_id: 0,
        points: Vec::new(),
        occluded: false,
        outside: false,
        z_order: 0,
        rotation: 0.0,
        group: None,
        source: manual(),
        attributes: Vec::new(),
        elements: Vec::new(),
        keyframe: None,
        track: None,
    };
    let mut held = label.as_object()?.clone();
    let mut g = Map::new();
    match field.label_type {
        LabelType::Detections => {
            rectangle_geometry(&rectangle(label, size, base).ok()?, size, &mut g).ok()?;
        }
        LabelType::Instances => {
            instance_geometry(&instance(label, size, base).ok()?, size, &mut g).ok()?;
        }
        LabelType::Polylines | LabelType::Polygons => {
            let shapes = polylines(label, size, base).ok()?;
            let points: Vec<Value> = shapes.iter().map(|s| shape_points(s, size)).collect();
            g.insert("points".into(), Value::Array(points));
        }
        LabelType::Keypoints => {
            let s = keypoints(label, size, base).ok()?;
            // CVAT holds no NaN point: the hidden attribute puts them back.
            let nan = nan_positions(label).and_then(|p| nan_template(&p));
            keypoint_geometry(&s, size, &HashMap::new(), nan, &mut g);
        }
        LabelType::Classification
        | LabelType::Classifications
        | LabelType::Segmentation
        | LabelType::Scalar => return None,
    }
    g.remove("_cls");
    held.extend(g);
    Some(Value::Object(held))
}

/// One polyline/polygon shape per sub-shape of a FiftyOne polyline.
fn polylines(label: &Value, size: ImageSize, base: Shape) -> Result<Vec<Shape>, String> {
    let shapes = label
        .get("points")
        .and_then(Value::as_array)
        .ok_or("invalid points")?;
    let closed = flag(label, "closed") || flag(label, "filled");
    let mut out = Vec::new();
    for sub in shapes {
        let pts = point_list(sub).ok_or("invalid points")?;
        let mut s = base.clone();
        s.shape_type = if closed { "polygon" } else { "polyline" }.into();
        s.points = to_pixels(&pts, size);
        out.push(s);
    }
    Ok(out)
}

/// Keypoints as one points shape, NaN points left out (CVAT only stores numbers).
fn keypoints(label: &Value, size: ImageSize, mut s: Shape) -> Result<Shape, String> {
    let pts = label
        .get("points")
        .and_then(point_list)
        .ok_or("invalid points")?;
    s.shape_type = "points".into();
    s.points = to_pixels(&pts, size);
    Ok(s)
}

/// `<count>:<i>,<j>,...` for keypoints with NaN points (`None` when all are numbers).
fn nan_positions(label: &Value) -> Option<String> {
    let pts = label.get("points").and_then(point_list)?;
    let nan: Vec<String> = pts
        .iter()
        .enumerate()
        .filter(|(_, p)| !is_present(**p))
        .map(|(i, _)| i.to_string())
        .collect();
    (!nan.is_empty()).then(|| format!("{}:{}", pts.len(), nan.join(",")))
}

/// Points with NaN where `nan_positions` says (0 elsewhere: only the positions matter).
fn nan_template(s: &str) -> Option<Vec<[f64; 2]>> {
    let (n, idx) = s.split_once(':')?;
    let n: usize = n.parse().ok()?;
    let mut pts = vec![[0.0, 0.0]; n];
    for i in idx.split(',') {
        let i: usize = i.parse().ok()?;
        *pts.get_mut(i)? = [f64::NAN, f64::NAN];
    }
    Some(pts)
}

/// A segmentation as one mask shape per class present, each cropped to its pixels.
fn segmentation_shapes(
    name: &str,
    field: &ResolvedField,
    label: &Value,
    frame: u64,
    map: &LabelMap,
    out: &mut Annotations,
) -> Result<(), String> {
    let m = label
        .get("mask")
        .filter(|v| !v.is_null())
        .ok_or("segmentation without an inline `mask` (load `mask_path` masks first)")?;
    let mask = Mask::from_ejson(m).map_err(|e| e.to_string())?;
    let (h, w) = crate::backend::convert::mask::hw(&mask)?;
    let values = class_values(&mask)?;
    for v in classes_present(&values) {
        let class = target_class(field, v);
        let mapped = map
            .label_of(name, &class)
            .ok_or_else(|| format!("class `{class}` has no CVAT label"))?;
        let carried = carry(field, &class, label, mapped)?;
        let boxed = BoxMask::tight(w, h, |i| values[i] == v).ok_or("empty class mask")?;
        out.shapes.push(Shape {
            id: None,
            shape_type: "mask".into(),
            frame,
            label_id: mapped.id,
            points: rle::encode(&boxed).map_err(|e| e.to_string())?,
            occluded: carried.occluded,
            outside: false,
            z_order: 0,
            rotation: 0.0,
            group: carried.group,
            source: manual(),
            attributes: carried.attributes,
            elements: Vec::new(),
            keyframe: None,
            track: None,
        });
    }
    Ok(())
}

/// A label being rebuilt from one or more CVAT objects.
struct Pending {
    backend_id: String,
    label: Map<String, Value>,
    /// Segmentation only: the image-sized mask painted so far.
    canvas: Option<Mask>,
    /// Set for an object its field cannot hold.
    misfit: Option<Misfit>,
}

impl Pending {
    fn label(backend_id: String, label: Map<String, Value>) -> Pending {
        Pending {
            backend_id,
            label,
            canvas: None,
            misfit: None,
        }
    }
}

/// Labels being rebuilt, per field, in the order their first object came.
#[derive(Default)]
struct Rebuild {
    fields: IndexMap<String, Vec<Pending>>,
    /// (field, our label id) → position, for labels made of several shapes.
    parts: HashMap<(String, String), usize>,
    /// The first field of the schema: where objects of no field are listed.
    first: String,
}

impl Rebuild {
    /// Lists an object its field cannot hold: `label` is what it converts to (empty when it
    /// converts to nothing), `label_type` that label's type.
    fn misfit(
        &mut self,
        field: &str,
        backend_id: String,
        label: Option<(Map<String, Value>, LabelType)>,
        reason: String,
    ) {
        let (label, label_type) = match label {
            Some((l, t)) => (l, Some(t)),
            None => (Map::new(), None),
        };
        let field = if field.is_empty() {
            self.first.clone()
        } else {
            field.to_string()
        };
        // The object's id is listed beside the reason.
        let reason = match reason.strip_prefix(&format!("{backend_id}: ")) {
            Some(r) => r.to_string(),
            None => reason,
        };
        push(
            self,
            &field,
            Pending {
                backend_id,
                label,
                canvas: None,
                misfit: Some(Misfit { label_type, reason }),
            },
        );
    }
}

/// The labels of one frame's annotations, per field. `uploaded` holds the labels we sent,
/// by id, to put back what CVAT cannot hold (NaN keypoints).
pub fn from_cvat(
    schema: &ResolvedSchema,
    ann: &Annotations,
    frame: u64,
    size: ImageSize,
    map: &LabelMap,
    uploaded: &HashMap<String, Value>,
) -> Downloaded {
    let mut rb = Rebuild {
        first: schema
            .fields
            .keys()
            .next()
            .map(ToString::to_string)
            .unwrap_or_default(),
        ..Rebuild::default()
    };
    if size.width == 0 || size.height == 0 {
        let ids = ann
            .tags
            .iter()
            .filter(|t| t.frame == frame)
            .map(|t| (t.label_id, backend_id("tag", t.id)))
            .chain(
                ann.shapes
                    .iter()
                    .filter(|s| s.frame == frame)
                    .map(|s| (s.label_id, backend_id("shape", s.id))),
            );
        for (label_id, what) in ids.collect::<Vec<_>>() {
            let field = map
                .label(label_id)
                .map(|m| m.field.clone())
                .unwrap_or_default();
            let reason = format!("{what}: frame {frame}: image size unknown");
            rb.misfit(&field, what, None, reason);
        }
        return finish(rb);
    }
    let mut tags: Vec<&Tag> = ann.tags.iter().filter(|t| t.frame == frame).collect();
    tags.sort_by_key(|t| t.id.unwrap_or(i64::MAX));
    for t in tags {
        tag_label(schema, t, map, &mut rb);
    }
    let mut shapes: Vec<&Shape> = ann.shapes.iter().filter(|s| s.frame == frame).collect();
    // Shapes come in no defined order; ids follow creation order, which keeps sub-shapes
    // and labels in the order we uploaded them.
    shapes.sort_by_key(|s| s.id.unwrap_or(i64::MAX));
    for s in shapes {
        shape_label(schema, s, size, map, uploaded, &mut rb);
    }
    for tr in ann.tracks.iter().filter(|tr| tr.frame == frame) {
        let what = backend_id("track", tr.id);
        let field = map
            .label(tr.label_id)
            .map(|m| m.field.clone())
            .unwrap_or_default();
        let reason = format!("{what}: tracks (video) are not supported yet");
        rb.misfit(&field, what, None, reason);
    }
    finish(rb)
}

/// A task's annotations split by frame, so each sample converts only its own objects.
pub fn by_frame(ann: Annotations) -> std::collections::BTreeMap<u64, Annotations> {
    let mut out: std::collections::BTreeMap<u64, Annotations> = Default::default();
    for t in ann.tags {
        out.entry(t.frame).or_default().tags.push(t);
    }
    for s in ann.shapes {
        out.entry(s.frame).or_default().shapes.push(s);
    }
    for tr in ann.tracks {
        out.entry(tr.frame).or_default().tracks.push(tr);
    }
    out
}

/// The backend ids (`kind:<id>`) of every object of these annotations.
pub fn object_ids(ann: &Annotations) -> Vec<String> {
    let tags = ann.tags.iter().map(|t| backend_id("tag", t.id));
    let shapes = ann.shapes.iter().map(|s| backend_id("shape", s.id));
    let tracks = ann.tracks.iter().map(|t| backend_id("track", t.id));
    tags.chain(shapes).chain(tracks).collect()
}

/// Uploaded labels by our id (the `uploaded` argument of `from_cvat`), from field → labels.
pub fn uploaded_by_id<'a>(
    labels: impl IntoIterator<Item = &'a Vec<Value>>,
) -> HashMap<String, Value> {
    labels
        .into_iter()
        .flatten()
        .filter_map(|l| Some((oid_str(l.get("_id")?)?.to_string(), l.clone())))
        .collect()
}

/// `kind:<id>`.
fn backend_id(kind: &str, id: Option<i64>) -> String {
    format!("{kind}:{}", id.map(|i| i.to_string()).unwrap_or_default())
}

/// The downloaded labels of a finished rebuild.
fn finish(rb: Rebuild) -> Downloaded {
    let labels = rb
        .fields
        .into_iter()
        .map(|(field, pending)| {
            let labels = pending
                .into_iter()
                .map(|mut p| {
                    if let Some(canvas) = p.canvas.take() {
                        p.label.insert("mask".into(), canvas.to_ejson());
                    }
                    let label = match p.label.remove("_scalar") {
                        Some(v) => v,
                        None => Value::Object(p.label),
                    };
                    let label = match (&p.misfit, label) {
                        (Some(m), Value::Object(o)) if m.label_type.is_none() && o.is_empty() => {
                            Value::Null
                        }
                        (_, label) => label,
                    };
                    DownloadedLabel {
                        backend_id: p.backend_id,
                        frame: None,
                        label,
                        misfit: p.misfit,
                    }
                })
                .collect();
            (field, labels)
        })
        .collect();
    Downloaded { labels }
}

/// The schema label and field of a CVAT label id.
fn lookup<'a>(
    schema: &'a ResolvedSchema,
    map: &'a LabelMap,
    label_id: i64,
) -> Option<(&'a MappedLabel, &'a ResolvedField)> {
    let mapped = map.label(label_id)?;
    Some((mapped, schema.fields.get(&mapped.field)?))
}

/// A tag as a classification or a scalar value.
fn tag_label(schema: &ResolvedSchema, t: &Tag, map: &LabelMap, rb: &mut Rebuild) {
    let what = backend_id("tag", t.id);
    let other = outside(schema, map, t.label_id, "tag");
    let found = lookup(schema, map, t.label_id);
    let Some((mapped, field)) = found.or(other.as_ref().map(|(m, f)| (m, *f))) else {
        let reason = format!("{what}: CVAT label {} is not in the schema", t.label_id);
        let label = classification(&unknown_name(map, t.label_id));
        rb.misfit("", what, Some((label, LabelType::Classifications)), reason);
        return;
    };
    let mut label = Map::new();
    match field.label_type {
        LabelType::Scalar => {
            let value = t
                .attributes
                .iter()
                .find(|a| mapped.attributes.get(&a.spec_id).map(String::as_str) == Some(VALUE_ATTR))
                .and_then(|a| parse_scalar(&a.value, field));
            let Some(value) = value else {
                let reason = format!(
                    "{what}: a tag of scalar field `{}` without a value",
                    mapped.field
                );
                rb.misfit(&mapped.field, what, None, reason);
                return;
            };
            label.insert("_scalar".into(), value);
        }
        LabelType::Classification | LabelType::Classifications => {
            label.insert("_cls".into(), json!("Classification"));
            label.insert("label".into(), json!(mapped.class));
            read_attributes(field, mapped, &t.attributes, &mut label);
            set_group(field, &mapped.class, t.group, &mut label);
        }
        other => {
            let reason = format!(
                "{what}: a tag `{}` on {} field `{}`",
                mapped.class,
                other.as_str(),
                mapped.field
            );
            let mut label = classification(&mapped.class);
            read_attributes(field, mapped, &t.attributes, &mut label);
            let label = Some((label, LabelType::Classifications));
            rb.misfit(&mapped.field, what, label, reason);
            return;
        }
    }
    push(rb, &mapped.field, Pending::label(what, label));
}

/// A classification of `class`.
fn classification(class: &str) -> Map<String, Value> {
    let mut label = Map::new();
    label.insert("_cls".into(), json!("Classification"));
    label.insert("label".into(), json!(class));
    label
}

/// The name of a CVAT label, or its id when the server did not list it.
fn unknown_name(map: &LabelMap, label_id: i64) -> String {
    map.other_name(label_id)
        .map_or_else(|| format!("CVAT label {label_id}"), String::from)
}

/// A server label no field has (added in CVAT), as a class outside the schema of the first
/// field that can hold `kind` (a shape type, or `tag`): the merge then sees a label of an
/// unexpected class, as FiftyOne does.
fn outside<'a>(
    schema: &'a ResolvedSchema,
    map: &LabelMap,
    label_id: i64,
    kind: &str,
) -> Option<(MappedLabel, &'a ResolvedField)> {
    let name = map.other_name(label_id)?;
    let (field, f) = schema.fields.iter().find(|(_, f)| match kind {
        "tag" => matches!(
            f.label_type,
            LabelType::Classification | LabelType::Classifications
        ),
        shape => f.label_type != LabelType::Segmentation && fits(f.label_type, shape),
    })?;
    let mapped = MappedLabel {
        field: field.to_string(),
        class: name.to_string(),
        id: label_id,
        attributes: HashMap::new(),
        spec_ids: HashMap::new(),
        defaults: HashMap::new(),
        immutable: Default::default(),
    };
    Some((mapped, f))
}

/// Appends a rebuilt label to its field.
fn push(rb: &mut Rebuild, field: &str, p: Pending) {
    rb.fields.entry(field.to_string()).or_default().push(p);
}

/// A scalar field's value from its tag's `value` string.
fn parse_scalar(s: &str, field: &ResolvedField) -> Option<Value> {
    if !field.classes.is_empty() {
        return (s != UNSET).then(|| json!(s));
    }
    // Numbers before booleans: an integer field's 0 and 1 stay numbers.
    parse_text(s)
}

/// `true`/`false` in any case (the server answers a JSON `true` with `"True"`), `1`/`0`.
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Sets the label's schema attributes, `_id` and `index` from CVAT attribute values; the
/// server's fill-ins for unset attributes are dropped.
fn read_attributes(
    field: &ResolvedField,
    mapped: &MappedLabel,
    values: &[AttributeValue],
    label: &mut Map<String, Value>,
) {
    let schema_attrs: HashMap<&String, &ResolvedAttribute> =
        attributes_of(field, &mapped.class).collect();
    for av in values {
        let Some(name) = mapped.attributes.get(&av.spec_id) else {
            continue;
        };
        let value = match name.as_str() {
            LABEL_ID_ATTR => (!av.value.is_empty()).then(|| json!({"$oid": av.value})),
            INDEX_ATTR => av.value.parse::<i64>().ok().map(|i| json!(i)),
            _ => schema_attrs
                .get(name)
                .and_then(|a| parse_attribute(&av.value, a)),
        };
        let key = if name == LABEL_ID_ATTR {
            "_id"
        } else {
            name.as_str()
        };
        if let Some(v) = value {
            label.insert(key.to_string(), v);
        }
    }
}

/// A text attribute as FiftyOne reads one back from CVAT: an integer, a float, a boolean, or
/// the string; empty is "not set".
fn parse_text(s: &str) -> Option<Value> {
    if s.is_empty() || s == "None" {
        return None;
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(json!(i));
    }
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Some(from_f64(f));
    }
    Some(parse_bool(s).map_or_else(|| json!(s), Value::Bool))
}

/// An attribute value by the schema's type; `None` for "not set".
fn parse_attribute(s: &str, a: &ResolvedAttribute) -> Option<Value> {
    match a.attr_type {
        AttributeType::Text => parse_text(s),
        AttributeType::Checkbox => parse_bool(s).map(Value::Bool),
        AttributeType::Select | AttributeType::Radio => {
            if s == UNSET {
                return None;
            }
            let known = a.values.iter().find(|v| scalar_string(v) == s);
            Some(known.map_or_else(|| json!(s), scalar_json))
        }
        AttributeType::Occluded | AttributeType::GroupId => None,
    }
}

/// The group-id attributes from CVAT's `group` (0 and null mean no group).
fn set_group(
    field: &ResolvedField,
    class: &str,
    group: Option<i64>,
    label: &mut Map<String, Value>,
) {
    for (name, a) in attributes_of(field, class) {
        if a.attr_type == AttributeType::GroupId {
            if let Some(g) = group.filter(|g| *g != 0) {
                label.insert(name.clone(), json!(g));
            }
        }
    }
}

/// The occluded attributes from CVAT's `occluded`.
fn set_occluded(
    field: &ResolvedField,
    class: &str,
    occluded: bool,
    label: &mut Map<String, Value>,
) {
    for (name, a) in attributes_of(field, class) {
        if a.attr_type == AttributeType::Occluded {
            label.insert(name.clone(), json!(occluded));
        }
    }
}

/// Whether a shape type can hold a field's labels.
fn fits(t: LabelType, shape_type: &str) -> bool {
    match t {
        LabelType::Detections => shape_type == "rectangle",
        LabelType::Instances | LabelType::Segmentation => shape_type == "mask",
        LabelType::Polylines | LabelType::Polygons => {
            shape_type == "polyline" || shape_type == "polygon"
        }
        LabelType::Keypoints => shape_type == "points",
        LabelType::Classification | LabelType::Classifications | LabelType::Scalar => false,
    }
}

/// A shape as (part of) a label.
fn shape_label(
    schema: &ResolvedSchema,
    s: &Shape,
    size: ImageSize,
    map: &LabelMap,
    uploaded: &HashMap<String, Value>,
    rb: &mut Rebuild,
) {
    let what = match s.track {
        Some(t) => format!("track:{t}"),
        None => backend_id("shape", s.id),
    };
    let other = outside(schema, map, s.label_id, &s.shape_type);
    let found = lookup(schema, map, s.label_id);
    let Some((mapped, field)) = found.or(other.as_ref().map(|(m, f)| (m, *f))) else {
        let name = unknown_name(map, s.label_id);
        let reason = format!(
            "{what}: a {} of `{name}`, a label no field has",
            s.shape_type
        );
        let label = standalone(s, size, &name);
        rb.misfit("", what, label, reason);
        return;
    };
    let t = field.label_type;
    if !fits(t, &s.shape_type) {
        let reason = format!(
            "{what}: a {} `{}` in {} field `{}`",
            s.shape_type,
            mapped.class,
            t.as_str(),
            mapped.field
        );
        let label = standalone(s, size, &mapped.class).map(|(mut l, lt)| {
            read_attributes(field, mapped, &s.attributes, &mut l);
            (l, lt)
        });
        rb.misfit(&mapped.field, what, label, reason);
        return;
    }
    let mut label = Map::new();
    label.insert("label".into(), json!(mapped.class));
    read_attributes(field, mapped, &s.attributes, &mut label);
    if s.track.is_some() && s.keyframe == Some(true) {
        label.insert("keyframe".into(), json!(true));
    }
    set_occluded(field, &mapped.class, s.occluded, &mut label);
    set_group(field, &mapped.class, s.group, &mut label);
    let geometry = match t {
        LabelType::Detections => rectangle_geometry(s, size, &mut label),
        LabelType::Instances => instance_geometry(s, size, &mut label),
        LabelType::Keypoints => {
            let nan = mapped.spec_ids.get(NAN_ATTR).and_then(|sid| {
                s.attributes
                    .iter()
                    .find(|a| a.spec_id == *sid)
                    .and_then(|a| nan_template(&a.value))
            });
            keypoint_geometry(s, size, uploaded, nan, &mut label);
            Ok(())
        }
        LabelType::Polylines | LabelType::Polygons => {
            polyline_part(s, size, mapped, t, what, label, rb);
            return;
        }
        _ => {
            segmentation_part(s, size, mapped, field, what, label, rb);
            return;
        }
    };
    match geometry {
        Ok(()) => push(rb, &mapped.field, Pending::label(what, label)),
        Err(e) => {
            let reason = format!("{what}: {e}");
            rb.misfit(&mapped.field, what, None, reason);
        }
    }
}

/// A shape as the label FiftyOne would read it as, whatever field it was drawn for: its
/// label type and the label (no attributes); `None` for shape types no label has.
fn standalone(s: &Shape, size: ImageSize, class: &str) -> Option<(Map<String, Value>, LabelType)> {
    let mut label = Map::new();
    label.insert("label".into(), json!(class));
    let t = match s.shape_type.as_str() {
        "rectangle" => {
            rectangle_geometry(s, size, &mut label).ok()?;
            LabelType::Detections
        }
        "mask" => {
            instance_geometry(s, size, &mut label).ok()?;
            LabelType::Instances
        }
        "polygon" | "polyline" => {
            let closed = s.shape_type == "polygon";
            label.insert("_cls".into(), json!("Polyline"));
            label.insert("points".into(), json!([shape_points(s, size)]));
            label.insert("closed".into(), json!(closed));
            label.insert("filled".into(), json!(closed));
            if closed {
                LabelType::Polygons
            } else {
                LabelType::Polylines
            }
        }
        "points" => {
            keypoint_geometry(s, size, &HashMap::new(), None, &mut label);
            LabelType::Keypoints
        }
        _ => return None,
    };
    Some((label, t))
}

/// A rectangle's box (and rotation, when there is one).
fn rectangle_geometry(
    s: &Shape,
    size: ImageSize,
    label: &mut Map<String, Value>,
) -> Result<(), String> {
    let corners: [f64; 4] = s.points[..]
        .try_into()
        .map_err(|_| format!("a rectangle needs 4 numbers, got {}", s.points.len()))?;
    label.insert("_cls".into(), json!("Detection"));
    label.insert(
        "bounding_box".into(),
        json!(box_from_corners(corners, size)),
    );
    if s.rotation != 0.0 {
        label.insert("rotation".into(), json!(s.rotation));
    }
    Ok(())
}

/// A mask shape's box and box-sized instance mask.
fn instance_geometry(
    s: &Shape,
    size: ImageSize,
    label: &mut Map<String, Value>,
) -> Result<(), String> {
    let m = rle::decode(&s.points).map_err(|e| e.to_string())?;
    label.insert("_cls".into(), json!("Detection"));
    label.insert("bounding_box".into(), json!(m.bounding_box(size)));
    label.insert("mask".into(), m.to_instance_mask().to_ejson());
    Ok(())
}

/// A points shape's keypoints, with the NaN points of the uploaded label put back when the
/// other points are all still there.
fn keypoint_geometry(
    s: &Shape,
    size: ImageSize,
    uploaded: &HashMap<String, Value>,
    nan: Option<Vec<[f64; 2]>>,
    label: &mut Map<String, Value>,
) {
    let pts = relative_points(&s.points, size);
    let before = label
        .get("_id")
        .and_then(oid_str)
        .and_then(|id| uploaded.get(id))
        .and_then(|l| l.get("points"))
        .and_then(point_list)
        .or(nan);
    let pts = match before {
        Some(b) => refill_missing(&b, pts.clone()).unwrap_or(pts),
        None => pts,
    };
    label.insert("_cls".into(), json!("Keypoint"));
    label.insert("points".into(), points_json(&pts));
}

/// The relative `[[x, y], ...]` of a shape's flat pixel points.
fn shape_points(s: &Shape, size: ImageSize) -> Value {
    json!(relative_points(&s.points, size))
}

/// A polyline/polygon shape: a new polyline, or another sub-shape of one already seen with
/// the same `label_id`.
fn polyline_part(
    s: &Shape,
    size: ImageSize,
    mapped: &MappedLabel,
    t: LabelType,
    what: String,
    mut label: Map<String, Value>,
    rb: &mut Rebuild,
) {
    let key = label
        .get("_id")
        .and_then(oid_str)
        .map(|id| (mapped.field.clone(), id.to_string()));
    if let Some(&i) = key.as_ref().and_then(|k| rb.parts.get(k)) {
        let existing = rb.fields.get_mut(&mapped.field).and_then(|v| v.get_mut(i));
        if let Some(Value::Array(subs)) = existing.and_then(|p| p.label.get_mut("points")) {
            subs.push(shape_points(s, size));
            return;
        }
    }
    let closed = s.shape_type == "polygon";
    label.insert("_cls".into(), json!("Polyline"));
    label.insert("points".into(), json!([shape_points(s, size)]));
    label.insert("closed".into(), json!(closed));
    let filled_attr = mapped.spec_ids.get(FILLED_ATTR).is_some_and(|id| {
        s.attributes
            .iter()
            .any(|a| a.spec_id == *id && a.value == "true")
    });
    label.insert(
        "filled".into(),
        json!(closed && (t == LabelType::Polygons || filled_attr)),
    );
    let at = rb.fields.get(&mapped.field).map_or(0, Vec::len);
    if let Some(k) = key {
        rb.parts.insert(k, at);
    }
    push(rb, &mapped.field, Pending::label(what, label));
}

/// A class's mask shape painted into the field's segmentation of the frame.
fn segmentation_part(
    s: &Shape,
    size: ImageSize,
    mapped: &MappedLabel,
    field: &ResolvedField,
    what: String,
    mut label: Map<String, Value>,
    rb: &mut Rebuild,
) {
    let (m, value) = match (rle::decode(&s.points), target_value(field, &mapped.class)) {
        (Ok(m), Some(v)) => (m, v),
        (Err(e), _) => return rb.misfit(&mapped.field, what.clone(), None, format!("{what}: {e}")),
        (Ok(_), None) => {
            let c = &mapped.class;
            let reason = format!("{what}: class `{c}` has no value in the mask targets");
            let label = standalone(s, size, c);
            return rb.misfit(&mapped.field, what, label, reason);
        }
    };
    let pending = rb.fields.entry(mapped.field.clone()).or_default();
    // The field's one segmentation (misfits listed in the field are not it).
    let at = match pending.iter().position(|p| p.canvas.is_some()) {
        Some(at) => {
            if let Some(id) = label.get("_id") {
                // Whichever class shape still carries our id identifies the segmentation.
                pending[at].label.entry("_id").or_insert_with(|| id.clone());
            }
            at
        }
        None => {
            label.remove("label");
            label.insert("_cls".into(), json!("Segmentation"));
            let (w, h) = (size.width as usize, size.height as usize);
            let canvas = Mask {
                shape: vec![h, w],
                dtype: Dtype::U8,
                data: vec![0; w * h],
            };
            pending.push(Pending {
                backend_id: what,
                label,
                canvas: Some(canvas),
                misfit: None,
            });
            pending.len() - 1
        }
    };
    if let Some(canvas) = pending[at].canvas.as_mut() {
        m.paint(&mut canvas.data, size, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cvat::labels::tests::{attr, field, serve};
    use crate::backend::cvat::labels::{LabelSpec, label_specs};
    use crate::dataset::ejson::as_f64;
    use proptest::prelude::*;

    const SIZE: ImageSize = ImageSize {
        width: 64,
        height: 48,
    };

    fn s(v: &str) -> Scalar {
        Scalar::Str(v.into())
    }

    /// Every label type, with every attribute type, and class names shared between fields.
    pub(super) fn schema() -> ResolvedSchema {
        let mut dets = field(LabelType::Detections, &["car", "bus"]);
        let make = vec![s("audi"), Scalar::Int(3), Scalar::Float(2.5)];
        dets.attributes
            .insert("make".into(), attr(AttributeType::Select, make, None));
        dets.attributes
            .insert("note".into(), attr(AttributeType::Text, vec![], None));
        dets.attributes
            .insert("moving".into(), attr(AttributeType::Checkbox, vec![], None));
        dets.attributes
            .insert("occ".into(), attr(AttributeType::Occluded, vec![], None));
        dets.attributes
            .insert("grp".into(), attr(AttributeType::GroupId, vec![], None));
        let doors = attr(
            AttributeType::Radio,
            vec![Scalar::Int(2), Scalar::Int(4)],
            Some(Scalar::Int(4)),
        );
        dets.class_attributes.insert(
            "car".into(),
            [("doors".to_string(), doors)].into_iter().collect(),
        );
        let mut seg = field(LabelType::Segmentation, &["sky", "road"]);
        seg.mask_targets = Some(
            [("1", "sky"), ("2", "road")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let mut cls = field(LabelType::Classification, &["cat", "dog"]);
        cls.attributes
            .insert("conf".into(), attr(AttributeType::Text, vec![], None));
        let mut out = ResolvedSchema::default();
        for (name, f) in [
            ("dets", dets),
            ("inst", field(LabelType::Instances, &["blob"])),
            ("lines", field(LabelType::Polylines, &["road"])),
            ("polys", field(LabelType::Polygons, &["car"])),
            ("kps", field(LabelType::Keypoints, &["person"])),
            ("seg", seg),
            ("cls", cls),
            ("multi", field(LabelType::Classifications, &["a", "b"])),
            ("num", field(LabelType::Scalar, &[])),
            ("pick", field(LabelType::Scalar, &["x", "y"])),
        ] {
            out.fields.insert(name.into(), f);
        }
        out
    }

    fn oid(n: u32) -> Value {
        json!({"$oid": format!("64b7f0c2a1b2c3d4e5f6{n:04x}")})
    }

    fn bool_mask(rows: &[&str]) -> Value {
        let data = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| u8::from(b == b'1')))
            .collect();
        Mask {
            shape: vec![rows.len(), rows[0].len()],
            dtype: Dtype::Bool,
            data,
        }
        .to_ejson()
    }

    fn seg_mask() -> Value {
        let (w, h) = (64, 48);
        let mut data = vec![0u8; w * h];
        for y in 0..10 {
            for x in 5..20 {
                data[y * w + x] = 1;
            }
        }
        data[30 * w + 40] = 2;
        data[31 * w + 42] = 2;
        Mask {
            shape: vec![h, w],
            dtype: Dtype::U8,
            data,
        }
        .to_ejson()
    }

    fn nan() -> Value {
        json!({"$numberDouble": "NaN"})
    }

    /// Labels per field, managed content only (what a round trip must keep).
    fn labels() -> IndexMap<String, Vec<Value>> {
        let mut m = IndexMap::new();
        m.insert("dets".into(), vec![
            json!({"_id": oid(1), "_cls": "Detection", "label": "car", "bounding_box": [0.1, 0.2, 0.3, 0.4],
                   "index": 3, "make": 2.5, "note": "hi", "moving": true, "occ": true, "grp": 7, "doors": 2}),
            json!({"_id": oid(2), "_cls": "Detection", "label": "bus", "bounding_box": [0.5, 0.5, 0.25, 0.125],
                   "moving": false, "occ": false, "make": 3}),
        ]);
        m.insert(
            "inst".into(),
            vec![json!({"_id": oid(3), "_cls": "Detection", "label": "blob",
            "bounding_box": [8.0 / 64.0, 6.0 / 48.0, 4.0 / 64.0, 3.0 / 48.0], "index": 1,
            "mask": bool_mask(&["0110", "1111", "1000"])})],
        );
        m.insert("lines".into(), vec![
            json!({"_id": oid(4), "_cls": "Polyline", "label": "road", "closed": false, "filled": false,
                   "points": [[[0.1, 0.1], [0.2, 0.3]], [[0.5, 0.5], [0.6, 0.7], [0.9, 0.1]]]}),
            json!({"_id": oid(5), "_cls": "Polyline", "label": "road", "closed": true, "filled": false,
                   "points": [[[0.1, 0.1], [0.2, 0.3], [0.3, 0.1]]]}),
        ]);
        m.insert(
            "polys".into(),
            vec![json!({"_id": oid(6), "_cls": "Polyline", "label": "car",
            "closed": true, "filled": true, "points": [[[0.1, 0.1], [0.2, 0.3], [0.3, 0.1]]]})],
        );
        m.insert(
            "kps".into(),
            vec![json!({"_id": oid(7), "_cls": "Keypoint", "label": "person",
            "points": [[0.1, 0.2], [nan(), nan()], [0.3, 0.4]], "index": 0})],
        );
        m.insert(
            "seg".into(),
            vec![json!({"_id": oid(8), "_cls": "Segmentation", "mask": seg_mask()})],
        );
        m.insert(
            "cls".into(),
            vec![json!({"_id": oid(9), "_cls": "Classification", "label": "cat", "conf": "high"})],
        );
        m.insert(
            "multi".into(),
            vec![
                json!({"_id": oid(10), "_cls": "Classification", "label": "a"}),
                json!({"_id": oid(11), "_cls": "Classification", "label": "b"}),
            ],
        );
        m.insert("num".into(), vec![json!(12.5)]);
        m.insert("pick".into(), vec![json!("x")]);
        m
    }

    /// What the server does between PUT and GET: ids in creation order, unset attributes
    /// filled with their defaults, `true` answered as `True`, answers in no particular order.
    fn server_round_trip(ann: &Annotations, served: &[LabelSpec]) -> Annotations {
        let fill = |label_id: i64, attrs: &mut Vec<AttributeValue>| {
            for a in attrs.iter_mut() {
                if a.value == "true" {
                    a.value = "True".into();
                }
            }
            let spec = served.iter().find(|l| l.id == Some(label_id));
            for a in spec.map(|l| l.attributes.as_slice()).unwrap_or_default() {
                let id = a.id.unwrap_or_default();
                if !attrs.iter().any(|v| v.spec_id == id) {
                    attrs.push(AttributeValue {
                        spec_id: id,
                        value: a.default_value.clone(),
                    });
                }
            }
        };
        let mut out = ann.clone();
        for (i, sh) in out.shapes.iter_mut().enumerate() {
            sh.id = Some(500 + i as i64);
            fill(sh.label_id, &mut sh.attributes);
        }
        for (i, t) in out.tags.iter_mut().enumerate() {
            t.id = Some(900 + i as i64);
            fill(t.label_id, &mut t.attributes);
        }
        out.shapes.reverse();
        out.tags.reverse();
        // Through JSON, as the client will read it.
        serde_json::from_value(serde_json::to_value(&out).unwrap()).unwrap()
    }

    /// Numbers equal within 1e-9 (NaN equals NaN, `$numberDouble` read as a number).
    fn close(a: &Value, b: &Value) -> bool {
        if let (Some(x), Some(y)) = (as_f64(a), as_f64(b)) {
            return (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-9;
        }
        match (a, b) {
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            _ => a == b,
        }
    }

    pub(super) fn round_trip(
        schema: &ResolvedSchema,
        labels: &IndexMap<String, Vec<Value>>,
    ) -> (Annotations, Downloaded) {
        let served = serve(&label_specs(schema));
        let map = LabelMap::new(schema, &served).unwrap();
        let mut ann = Annotations::default();
        sample_to_cvat(schema, labels, 0, SIZE, &map, &mut ann).unwrap();
        let back = server_round_trip(&ann, &served);
        let uploaded = uploaded_by_id(labels.values());
        let down = from_cvat(schema, &back, 0, SIZE, &map, &uploaded);
        (ann, down)
    }

    fn assert_same(labels: &IndexMap<String, Vec<Value>>, down: &Downloaded) {
        assert!(down.misfits().is_empty(), "{:?}", down.misfits());
        for (name, want) in labels {
            let got: Vec<&Value> = down
                .labels
                .get(name)
                .map(|v| v.iter().map(|d| &d.label).collect())
                .unwrap_or_default();
            assert_eq!(got.len(), want.len(), "{name}: {got:?}");
            for (g, w) in got.iter().zip(want) {
                assert!(close(g, w), "{name}:\n got  {g}\n want {w}");
            }
        }
    }

    #[test]
    fn every_label_type_round_trips() {
        let (ann, down) = round_trip(&schema(), &labels());
        assert_same(&labels(), &down);
        // Two sub-shapes of one polyline are two shapes; the segmentation is one per class.
        assert_eq!(ann.shapes.len(), 2 + 1 + 3 + 1 + 1 + 2);
        assert_eq!(ann.tags.len(), 1 + 2 + 2);
        let dets = &down.labels["dets"];
        assert!(dets[0].backend_id.starts_with("shape:"));
        assert!(down.labels["cls"][0].backend_id.starts_with("tag:"));
    }

    #[test]
    fn wire_values_are_strings_and_flags_are_shape_fields() {
        let schema = schema();
        let map = LabelMap::new(&schema, &serve(&label_specs(&schema))).unwrap();
        let mut ann = Annotations::default();
        to_cvat(
            "dets",
            &schema.fields["dets"],
            &labels()["dets"][..1],
            3,
            SIZE,
            &map,
            &mut ann,
        )
        .unwrap();
        let shape = serde_json::to_value(&ann.shapes[0]).unwrap();
        assert_eq!(shape["type"], "rectangle");
        assert_eq!(shape["frame"], 3);
        assert_eq!(shape["occluded"], true);
        assert_eq!(shape["group"], 7);
        let values: Vec<&str> = ann.shapes[0]
            .attributes
            .iter()
            .map(|a| a.value.as_str())
            .collect();
        assert_eq!(
            values,
            vec!["2.5", "hi", "true", "2", "64b7f0c2a1b2c3d4e5f60001", "3"]
        );
        let p = &ann.shapes[0].points;
        assert!((p[0] - 6.4).abs() < 1e-12 && (p[3] - 28.8).abs() < 1e-9);
    }

    #[test]
    fn server_defaults_are_dropped_and_schema_defaults_kept() {
        let schema = schema();
        let mut one = IndexMap::new();
        one.insert(
            "dets".to_string(),
            vec![json!({"_id": oid(1), "_cls": "Detection", "label": "car",
            "bounding_box": [0.1, 0.2, 0.3, 0.4], "moving": false, "occ": false})],
        );
        let (_, down) = round_trip(&schema, &one);
        let got = &down.labels["dets"][0].label;
        assert!(got.get("make").is_none() && got.get("note").is_none() && got.get("grp").is_none());
        // `doors` has a schema default: unset means 4.
        assert_eq!(got["doors"], 4);
    }

    #[test]
    fn keypoint_nans_travel_in_a_hidden_attribute() {
        let schema = schema();
        let served = serve(&label_specs(&schema));
        let map = LabelMap::new(&schema, &served).unwrap();
        let mut ann = Annotations::default();
        to_cvat(
            "kps",
            &schema.fields["kps"],
            &labels()["kps"],
            0,
            SIZE,
            &map,
            &mut ann,
        )
        .unwrap();
        assert_eq!(ann.shapes[0].points.len(), 4);
        // Without the uploaded label, the `nan_points` attribute puts the NaN point back.
        let down = from_cvat(&schema, &ann, 0, SIZE, &map, &HashMap::new());
        let pts = down.labels["kps"][0].label["points"].as_array().unwrap();
        assert_eq!(pts.len(), 3);
        // Once the annotator drops the attribute, only the points CVAT holds come back.
        let nan_spec = map.label(ann.shapes[0].label_id).unwrap().spec_ids[NAN_ATTR];
        ann.shapes[0].attributes.retain(|a| a.spec_id != nan_spec);
        let down = from_cvat(&schema, &ann, 0, SIZE, &map, &HashMap::new());
        assert_eq!(
            down.labels["kps"][0].label["points"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn an_instance_without_mask_is_a_filled_box() {
        let schema = schema();
        let map = LabelMap::new(&schema, &serve(&label_specs(&schema))).unwrap();
        let label =
            json!({"_cls": "Detection", "label": "blob", "bounding_box": [0.1, 0.1, 0.1, 0.1]});
        let mut ann = Annotations::default();
        to_cvat(
            "inst",
            &schema.fields["inst"],
            &[label],
            0,
            SIZE,
            &map,
            &mut ann,
        )
        .unwrap();
        // 6.4 x 4.8 pixels at (6.4, 4.8): rounded to a 6 x 5 box at (6, 5).
        assert_eq!(ann.shapes[0].points, vec![0., 30., 6., 5., 11., 9.]);
        let down = from_cvat(&schema, &ann, 0, SIZE, &map, &HashMap::new());
        let bbox = &down.labels["inst"][0].label["bounding_box"];
        assert!(close(
            bbox,
            &json!([6.0 / 64.0, 5.0 / 48.0, 6.0 / 64.0, 5.0 / 48.0])
        ));
    }

    #[test]
    fn objects_outside_the_schema_are_reported() {
        let schema = schema();
        let map = LabelMap::new(&schema, &serve(&label_specs(&schema))).unwrap();
        let bad: Annotations = serde_json::from_value(json!({"version": 0, "tags": [],
            "shapes": [{"id": 1, "type": "rectangle", "frame": 0, "label_id": 9999, "points": [0, 0, 1, 1]},
                       {"id": 2, "type": "polygon", "frame": 0, "label_id": 100, "points": [0, 0, 1, 1, 2, 2]},
                       {"id": 3, "type": "mask", "frame": 0, "label_id": 102, "points": [4, 0, 0, 2, 2]}],
            "tracks": []})).unwrap();
        let down = from_cvat(&schema, &bad, 0, SIZE, &map, &HashMap::new());
        let all: Vec<&DownloadedLabel> = down.labels.values().flatten().collect();
        assert_eq!(down.misfits(), all, "every object is listed, as a misfit");
        assert_eq!(all.len(), 3, "{all:?}");
    }

    /// The recorded five-image task: its labels, frame sizes and annotations as the server
    /// answered them.
    fn recorded(step: &str) -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/cvat/exchanges-2.23.1.jsonl"
        );
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["step"] == step)
            .map(|e| e["response_body"].clone())
            .unwrap()
    }

    fn recorded_schema() -> ResolvedSchema {
        let mut veh = field(LabelType::Detections, &["vehicle", "truck"]);
        veh.attributes.insert(
            "make".into(),
            attr(AttributeType::Select, vec![s("audi"), s("bmw")], None),
        );
        veh.attributes.insert(
            "motion".into(),
            attr(
                AttributeType::Radio,
                vec![s("moving"), s("parked")],
                Some(s("moving")),
            ),
        );
        veh.attributes.insert(
            "is_truck".into(),
            attr(AttributeType::Checkbox, vec![], None),
        );
        veh.attributes.insert(
            "notes".into(),
            attr(AttributeType::Text, vec![], Some(s("n/a"))),
        );
        veh.attributes
            .insert("occ".into(), attr(AttributeType::Occluded, vec![], None));
        veh.attributes
            .insert("grp".into(), attr(AttributeType::GroupId, vec![], None));
        let mut weather = field(LabelType::Classification, &["weather"]);
        weather.attributes.insert(
            "kind".into(),
            attr(
                AttributeType::Radio,
                vec![s("sunny"), s("rain")],
                Some(s("sunny")),
            ),
        );
        let mut out = ResolvedSchema::default();
        for (name, f) in [
            ("vehicles", veh),
            ("people", field(LabelType::Polygons, &["person"])),
            ("roads", field(LabelType::Polylines, &["road"])),
            ("kps", field(LabelType::Keypoints, &["keypoints"])),
            ("blobs", field(LabelType::Instances, &["blob"])),
            ("sky", weather),
        ] {
            out.fields.insert(name.into(), f);
        }
        out
    }

    #[test]
    fn converts_the_recorded_annotations() {
        let schema = recorded_schema();
        let served: Vec<LabelSpec> =
            serde_json::from_value(recorded("3.labels.list.after_patch")["results"].clone())
                .unwrap();
        let map = LabelMap::new(&schema, &served).unwrap();
        assert_eq!(
            map.attribute(119, 122),
            Some(("vehicles", "vehicle", "is_truck"))
        );
        let ann: Annotations =
            serde_json::from_value(recorded("5.annotations.get.after_put")).unwrap();
        let meta = recorded("4.tasks.data.meta");
        let size = |f: usize| ImageSize {
            width: meta["frames"][f]["width"].as_u64().unwrap() as u32,
            height: meta["frames"][f]["height"].as_u64().unwrap() as u32,
        };
        let f0 = from_cvat(&schema, &ann, 0, size(0), &map, &HashMap::new());
        assert!(f0.misfits().is_empty(), "{:?}", f0.misfits());
        let v = &f0.labels["vehicles"];
        assert_eq!(v[0].backend_id, "shape:105");
        assert!(
            close(
                &v[0].label,
                &json!({"_cls": "Detection", "label": "vehicle", "_id": {"$oid": "64b7f0c2a1b2c3d4e5f60718"},
            "bounding_box": [5.0 / 64.0, 5.0 / 48.0, 35.5 / 64.0, 25.25 / 48.0],
            "make": "audi", "motion": "parked", "is_truck": true, "notes": "n/a", "occ": false})
            ),
            "{}",
            v[0].label
        );
        // Filled-in defaults: `__undefined__` dropped, schema defaults kept; group 1 kept.
        assert!(
            close(
                &v[1].label,
                &json!({"_cls": "Detection", "label": "vehicle", "_id": {"$oid": "64b7f0c2a1b2c3d4e5f60719"},
            "bounding_box": [1.0 / 64.0, 1.0 / 48.0, 19.0 / 64.0, 19.0 / 48.0],
            "motion": "moving", "is_truck": false, "notes": "n/a", "occ": true, "grp": 1})
            ),
            "{}",
            v[1].label
        );
        assert_eq!(
            f0.labels["sky"][0].label,
            json!({"_cls": "Classification", "label": "weather", "kind": "rain"})
        );
        let f1 = from_cvat(&schema, &ann, 1, size(1), &map, &HashMap::new());
        assert_eq!(f1.labels["vehicles"][0].label["rotation"], 30.0);
        let poly = &f1.labels["people"][0].label;
        assert_eq!(
            (poly["closed"].clone(), poly["filled"].clone()),
            (json!(true), json!(true))
        );
        let f2 = from_cvat(&schema, &ann, 2, size(2), &map, &HashMap::new());
        assert_eq!(
            f2.labels["roads"][0].label["points"][0]
                .as_array()
                .map(Vec::len),
            Some(3)
        );
        let f3 = from_cvat(&schema, &ann, 3, size(3), &map, &HashMap::new());
        let blob = &f3.labels["blobs"][0].label;
        assert!(close(
            &blob["bounding_box"],
            &json!([10.0 / 120.0, 20.0 / 90.0, 6.0 / 120.0, 4.0 / 90.0])
        ));
        let mask = Mask::from_ejson(&blob["mask"]).unwrap();
        assert_eq!(mask.shape, vec![4, 6]);
        assert_eq!(
            f3.labels["kps"][0].label["points"].as_array().map(Vec::len),
            Some(3)
        );
        // Frame 4 holds an ellipse, a cuboid and a skeleton: no schema label for them.
        let f4 = from_cvat(&schema, &ann, 4, size(4), &map, &HashMap::new());
        let misfits = f4.misfits();
        assert_eq!(misfits.len(), 3, "{misfits:?}");
        assert_eq!(f4.labels.values().flatten().count(), 3);
        assert!(misfits.iter().all(|m| m.label.is_null()), "{misfits:?}");
        let frames = by_frame(ann.clone());
        assert_eq!(
            frames.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(
            from_cvat(&schema, &frames[&3], 3, size(3), &map, &HashMap::new()),
            f3
        );
    }

    /// Every annotation body of the recording (requests and 200 answers) fits the model, and
    /// writing it back keeps what the server sent.
    #[test]
    fn parses_every_recorded_annotation_body() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/cvat/exchanges-2.23.1.jsonl"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let mut seen = 0;
        for e in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            let is_annotations = e["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/annotations"));
            for body in [&e["request_body"], &e["response_body"]] {
                if !is_annotations || e["status"] != 200 || body.get("shapes").is_none() {
                    continue;
                }
                let ann: Annotations = serde_json::from_value(body.clone()).unwrap();
                let again = serde_json::to_value(&ann).unwrap();
                for (a, b) in ann.shapes.iter().zip(again["shapes"].as_array().unwrap()) {
                    assert_eq!(serde_json::from_value::<Shape>(b.clone()).unwrap(), *a);
                }
                seen += 1;
            }
        }
        assert!(seen >= 10, "{seen}");
        let video: Annotations =
            serde_json::from_value(recorded("6.video.annotations.get.after_update")).unwrap();
        let track = video.tracks.iter().find(|t| t.id == Some(11)).unwrap();
        assert_eq!(track.frame, 0);
        assert_eq!(
            track.shapes.iter().map(|s| s.frame).collect::<Vec<_>>(),
            vec![0, 4, 8]
        );
        assert!(track.shapes.iter().any(|s| s.outside));
        assert!(track.shapes.iter().all(|s| s.keyframe.is_none()));
    }

    fn unit() -> impl Strategy<Value = f64> {
        (0u32..1000).prop_map(|n| f64::from(n) / 997.0)
    }

    fn point() -> impl Strategy<Value = Value> {
        prop_oneof![
            4 => (unit(), unit()).prop_map(|(x, y)| json!([x, y])),
            1 => Just(json!([nan(), nan()])),
        ]
    }

    proptest! {
        #[test]
        fn random_objects_round_trip(
            boxes in proptest::collection::vec((unit(), unit(), unit(), unit(), 0i64..5, any::<bool>()), 0..5),
            kps in proptest::collection::vec(proptest::collection::vec(point(), 1..6), 0..3),
            lines in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec((unit(), unit()), 2..5), 1..3), 0..3),
            scalar in prop_oneof![Just(json!(7)), Just(json!(-1.25)), Just(json!(true)), Just(json!("free text"))],
            inst in proptest::collection::vec((0usize..60, 0usize..44, 1usize..9, 1usize..7, proptest::collection::vec(any::<bool>(), 48)), 0..3),
            seg in proptest::collection::vec((0usize..48, 0usize..64, 1u8..3), 0..20),
        ) {
            let mut ls = IndexMap::new();
            ls.insert("inst".to_string(), inst.iter().enumerate().map(|(i, (x, y, w, h, bits))| {
                let data = bits[..w * h].iter().map(|b| u8::from(*b)).collect();
                let mask = Mask { shape: vec![*h, *w], dtype: Dtype::Bool, data }.to_ejson();
                let bbox = [*x as f64 / 64.0, *y as f64 / 48.0, *w as f64 / 64.0, *h as f64 / 48.0];
                json!({"_id": oid(50 + i as u32), "_cls": "Detection", "label": "blob", "bounding_box": bbox, "mask": mask})
            }).collect());
            if !seg.is_empty() {
                let mut data = vec![0u8; 64 * 48];
                for (r, c, v) in &seg { data[r * 64 + c] = *v; }
                let mask = Mask { shape: vec![48, 64], dtype: Dtype::U8, data }.to_ejson();
                ls.insert("seg".to_string(), vec![json!({"_id": oid(60), "_cls": "Segmentation", "mask": mask})]);
            }
            let mut n = 100;
            let mut next = || { n += 1; oid(n) };
            ls.insert("dets".to_string(), boxes.iter().map(|(x, y, w, h, i, m)| json!({"_id": next(), "_cls": "Detection",
                "label": if *m { "car" } else { "bus" }, "bounding_box": [x, y, w, h], "index": i, "moving": m, "occ": !m})).map(|mut l| {
                // Cars have `doors`, whose schema default CVAT would fill in.
                if l["label"] == "car" { l["doors"] = json!(2); }
                l
            }).collect());
            ls.insert("kps".to_string(), kps.iter().map(|p| json!({"_id": next(), "_cls": "Keypoint", "label": "person", "points": p})).collect());
            ls.insert("lines".to_string(), lines.iter().map(|subs| {
                let pts: Vec<Vec<[f64; 2]>> = subs.iter().map(|s| s.iter().map(|(x, y)| [*x, *y]).collect()).collect();
                json!({"_id": next(), "_cls": "Polyline", "label": "road", "points": pts, "closed": false, "filled": false})
            }).collect());
            ls.insert("num".to_string(), vec![scalar]);
            let (_, down) = round_trip(&schema(), &ls);
            prop_assert!(down.misfits().is_empty());
            for (name, want) in &ls {
                let got: Vec<&Value> = down.labels.get(name).map(|v| v.iter().map(|d| &d.label).collect()).unwrap_or_default();
                prop_assert_eq!(got.len(), want.len());
                for (g, w) in got.iter().zip(want) {
                    prop_assert!(close(g, w), "{}: {} vs {}", name, g, w);
                }
            }
        }
    }
}

#[cfg(test)]
mod untouched {
    //! Upload, download with no edit, merge: nothing changes, for every label type, however
    //! the boxes and masks sit on the pixel grid.

    use super::tests::{round_trip, schema};
    use super::*;
    use crate::merge::{FieldInput, field_value, label_digest, label_key, merge_field};
    use crate::state::UploadedLabel;
    use proptest::prelude::*;

    const SIZE: ImageSize = ImageSize {
        width: 64,
        height: 48,
    };

    fn oid(n: usize) -> Value {
        json!({ "$oid": format!("{n:024x}") })
    }

    fn unit() -> impl Strategy<Value = f64> {
        (0u32..1000).prop_map(|n| f64::from(n) / 1999.0)
    }

    /// A box-sized mask of any resolution: FiftyOne's masks need not match the box's pixels.
    fn mask() -> impl Strategy<Value = Value> {
        (1usize..7, 1usize..7)
            .prop_flat_map(|(h, w)| {
                (
                    Just((h, w)),
                    proptest::collection::vec(any::<bool>(), h * w),
                )
            })
            .prop_map(|((h, w), bits)| {
                let data = bits.into_iter().map(u8::from).collect();
                Mask {
                    shape: vec![h, w],
                    dtype: Dtype::Bool,
                    data,
                }
                .to_ejson()
            })
    }

    proptest! {
        #[test]
        fn an_untouched_label_merges_as_nothing(
            boxes in proptest::collection::vec((unit(), unit(), unit(), unit()), 0..4),
            instances in proptest::collection::vec((unit(), unit(), unit(), unit(), proptest::option::of(mask())), 0..4),
            points in proptest::collection::vec(proptest::collection::vec((unit(), unit()), 2..5), 0..3),
        ) {
            let bbox = |x: &f64, y: &f64, w: &f64, h: &f64| json!([x, y, w.max(0.02), h.max(0.02)]);
            let mut labels: IndexMap<String, Vec<Value>> = IndexMap::new();
            labels.insert("dets".into(), boxes.iter().enumerate().map(|(i, (x, y, w, h))| json!({
                "_id": oid(i + 1), "_cls": "Detection", "label": "bus", "bounding_box": bbox(x, y, w, h)})).collect());
            labels.insert("inst".into(), instances.iter().enumerate().map(|(i, (x, y, w, h, m))| {
                let mut l = json!({"_id": oid(i + 10), "_cls": "Detection", "label": "blob", "bounding_box": bbox(x, y, w, h)});
                if let Some(m) = m { l["mask"] = m.clone(); }
                l
            }).collect());
            let pts = |p: &Vec<(f64, f64)>| p.iter().map(|(x, y)| json!([x, y])).collect::<Vec<_>>();
            labels.insert("lines".into(), points.iter().enumerate().map(|(i, p)| json!({
                "_id": oid(i + 20), "_cls": "Polyline", "label": "road", "points": [pts(p)], "closed": false, "filled": false})).collect());
            labels.insert("kps".into(), points.iter().enumerate().map(|(i, p)| json!({
                "_id": oid(i + 30), "_cls": "Keypoint", "label": "person", "points": pts(p)})).collect());
            let schema = schema();
            let (_, down) = round_trip(&schema, &labels);
            prop_assert!(down.misfits().is_empty());
            for (name, uploaded) in &labels {
                let field = &schema.fields[name];
                let current = field_value(uploaded.clone(), field.label_type);
                let baseline: Vec<UploadedLabel> = uploaded.iter().map(|l| UploadedLabel {
                    id: label_key(l, field.label_type).unwrap(),
                    digest: label_digest(l, field),
                }).collect();
                let held = |l: &Value| as_held(field, l, SIZE);
                let input = FieldInput {
                    field: name,
                    frame: None,
                    schema: field,
                    sample_id: "5f0000000000000000000001",
                    current: current.as_ref(),
                    uploaded: &baseline,
                    downloaded: down.labels.get(name).map_or(&[][..], Vec::as_slice),
                    id_map: &IndexMap::new(),
                    id_seed: b"seed",
                    conflicts: crate::manifest::Conflicts::Error,
                    unexpected: crate::manifest::Unexpected::Keep,
                    as_held: Some(&held),
                };
                let out = merge_field(&input);
                let c = out.counts;
                prop_assert_eq!((c.added, c.edited, c.deleted, c.rejected), (0, 0, 0, 0), "{}: {:?}", name, out.changes);
                prop_assert!(out.new_value.is_none() && out.conflicts.is_empty(), "{}", name);
                // The next merge starts from what the backend holds: still nothing to do.
                let again = merge_field(&FieldInput { uploaded: &out.baseline, ..input });
                prop_assert!(again.new_value.is_none() && again.conflicts.is_empty(), "{}", name);
            }
        }
    }
}
