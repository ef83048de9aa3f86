//! FiftyOne labels to and from Darwin JSON 2.0 annotations (`recipes/v7.md` 1.5-1.7), in
//! absolute pixels of the item's slot `0`.
//!
//! | field type | Darwin annotation | back |
//! |---|---|---|
//! | detections | `bounding_box {x,y,w,h}` | Detection |
//! | polygons | `polygon` (first shape `path`, the others `additional_paths`) | Polyline, closed and filled |
//! | polylines | closed: `polygon`; open with one shape: `line {path}` | Polyline (a line: open, unfilled) |
//! | keypoints | one `keypoint {x,y}` per point that is not NaN | Keypoint: the parts of one label regrouped by id |
//! | classification(s) | `tag {}` | Classification |
//!
//! Unlike darwin-fiftyone, an open polyline of several shapes is refused rather than dropped
//! and the points of a keypoint label come back as one label (its parts carry one label id).

use super::ids;
use crate::backend::convert::geometry::{self, Point};
use crate::backend::{DownloadedLabel, ImageSize, Misfit};
use crate::dataset::ejson::ObjectId;
use crate::manifest::LabelType;
use crate::schema::ResolvedField;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

/// The main annotation type of a Darwin class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    BoundingBox,
    Polygon,
    Line,
    Keypoint,
    Tag,
}

impl Kind {
    /// Darwin's name of the type (`/api/annotation_types`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BoundingBox => "bounding_box",
            Kind::Polygon => "polygon",
            Kind::Line => "line",
            Kind::Keypoint => "keypoint",
            Kind::Tag => "tag",
        }
    }

    /// The kind of an annotation (export form), by the data key it carries. A polygon also
    /// carries its bounding box, so `polygon` is looked at first.
    fn of(annotation: &Value) -> Option<Kind> {
        [
            Kind::Polygon,
            Kind::BoundingBox,
            Kind::Keypoint,
            Kind::Line,
            Kind::Tag,
        ]
        .into_iter()
        .find(|k| annotation.get(k.as_str()).is_some_and(|v| !v.is_null()))
    }

    /// The FiftyOne type an annotation of this kind converts to on its own.
    fn label_type(self) -> LabelType {
        match self {
            Kind::BoundingBox => LabelType::Detections,
            Kind::Polygon => LabelType::Polygons,
            Kind::Line => LabelType::Polylines,
            Kind::Keypoint => LabelType::Keypoints,
            Kind::Tag => LabelType::Classifications,
        }
    }
}

/// The class kinds a field of type `t` needs (`None`: Darwin has none for it).
pub fn kinds(t: LabelType) -> Option<&'static [Kind]> {
    Some(match t {
        LabelType::Detections => &[Kind::BoundingBox],
        LabelType::Polygons => &[Kind::Polygon],
        LabelType::Polylines => &[Kind::Polygon, Kind::Line],
        LabelType::Keypoints => &[Kind::Keypoint],
        LabelType::Classification | LabelType::Classifications => &[Kind::Tag],
        _ => return None,
    })
}

/// Whether an annotation of `kind` is a label of a `t` field.
fn fits(t: LabelType, kind: Kind) -> bool {
    kinds(t).is_some_and(|k| k.contains(&kind))
}

/// One annotation to import: its id, class and `data` (import form, `recipes/v7.md` 1.6).
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub id: String,
    pub class: String,
    pub kind: Kind,
    pub data: Value,
}

/// A relative point as Darwin's `{x, y}` in pixels.
fn xy(p: Point, size: ImageSize) -> Value {
    let px = geometry::to_pixels(&[p], size);
    json!({"x": px[0], "y": px[1]})
}

/// Relative points as a Darwin path.
fn path(points: &[Point], size: ImageSize) -> Value {
    Value::Array(
        geometry::to_pixels(points, size)
            .chunks_exact(2)
            .map(|c| json!({"x": c[0], "y": c[1]}))
            .collect(),
    )
}

/// The Darwin annotations of one label of a `t` field, drawn on an image of `size`.
pub fn to_darwin(t: LabelType, label: &Value, size: ImageSize) -> Result<Vec<Outgoing>, String> {
    let id = crate::merge::label_id(label).ok_or("a label without an `_id`")?;
    let class = label
        .get("label")
        .and_then(Value::as_str)
        .ok_or("a label without a `label` (class)")?
        .to_string();
    let one = |kind: Kind, data: Value| {
        vec![Outgoing {
            id: ids::annotation_id(id, 0),
            class: class.clone(),
            kind,
            data,
        }]
    };
    let spatial = !matches!(t, LabelType::Classification | LabelType::Classifications);
    if spatial && !size.is_known() {
        return Err("the image size is unknown".into());
    }
    Ok(match t {
        LabelType::Classification | LabelType::Classifications => {
            one(Kind::Tag, json!({"tag": {}}))
        }
        LabelType::Detections => {
            let b = geometry::bounding_box(label)
                .ok_or("a detection without a 4-number `bounding_box`")?;
            let (w, h) = (f64::from(size.width), f64::from(size.height));
            one(
                Kind::BoundingBox,
                json!({"bounding_box": {"x": b[0] * w, "y": b[1] * h, "w": b[2] * w, "h": b[3] * h}}),
            )
        }
        LabelType::Polygons | LabelType::Polylines => {
            let shapes: Vec<Vec<[f64; 2]>> = label
                .get("points")
                .and_then(Value::as_array)
                .and_then(|s| s.iter().map(geometry::point_list).collect())
                .ok_or("a polyline without `points` shapes")?;
            if shapes.is_empty() || shapes.iter().any(Vec::is_empty) {
                return Err("a polyline with an empty shape".into());
            }
            let flag = |k: &str| geometry::flag(label, k);
            if t == LabelType::Polygons || flag("closed") || flag("filled") {
                let rest: Vec<Value> = shapes[1..].iter().map(|s| path(s, size)).collect();
                let mut polygon = json!({"path": path(&shapes[0], size)});
                if !rest.is_empty() {
                    polygon["additional_paths"] = Value::Array(rest);
                }
                one(Kind::Polygon, json!({ "polygon": polygon }))
            } else if shapes.len() == 1 {
                one(
                    Kind::Line,
                    json!({"line": {"path": path(&shapes[0], size)}}),
                )
            } else {
                return Err(format!(
                    "an open polyline of {} shapes: a Darwin line has one path (close it, or split it into one label per shape)",
                    shapes.len()
                ));
            }
        }
        LabelType::Keypoints => {
            let points = label
                .get("points")
                .and_then(geometry::point_list)
                .ok_or("a keypoint label without `points`")?;
            let out: Vec<Outgoing> = points
                .iter()
                .enumerate()
                .filter(|(_, p)| geometry::is_present(**p))
                .map(|(i, p)| Outgoing {
                    id: ids::annotation_id(id, i as u16),
                    class: class.clone(),
                    kind: Kind::Keypoint,
                    data: json!({ "keypoint": xy(*p, size) }),
                })
                .collect();
            if out.is_empty() {
                return Err("a keypoint label with no point that is a number".into());
            }
            out
        }
        other => return Err(format!("Darwin has no annotation type for {other} fields")),
    })
}

/// An import annotation's data in the export form (the polygon's `path` and
/// `additional_paths` become `paths`, with the bounding box Darwin derives).
pub fn exported(data: &Value) -> Map<String, Value> {
    let mut out = data.as_object().cloned().unwrap_or_default();
    if let Some(p) = out.remove("polygon") {
        let mut paths = vec![p.get("path").cloned().unwrap_or(json!([]))];
        paths.extend(
            p.get("additional_paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        let xs = |k: &str| -> Vec<f64> {
            paths
                .iter()
                .flat_map(|p| p.as_array().into_iter().flatten())
                .filter_map(|pt| pt.get(k).and_then(Value::as_f64))
                .collect()
        };
        let (x, y) = (xs("x"), xs("y"));
        let lo = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.insert(
            "bounding_box".into(),
            json!({"x": lo(&x), "y": lo(&y), "w": hi(&x) - lo(&x), "h": hi(&y) - lo(&y)}),
        );
        out.insert("polygon".into(), json!({ "paths": paths }));
    }
    out
}

/// Darwin's `{x, y}` pixels as a relative point.
fn relative(p: &Value, size: ImageSize) -> Option<Point> {
    let c = |k: &str| p.get(k).and_then(Value::as_f64).filter(|v| v.is_finite());
    Some(geometry::relative(c("x")?, c("y")?, size))
}

/// A Darwin path as relative points (FiftyOne JSON).
fn rel_path(p: &Value, size: ImageSize) -> Option<Value> {
    let pts: Option<Vec<Point>> = p.as_array()?.iter().map(|pt| relative(pt, size)).collect();
    Some(geometry::points_json(&pts?))
}

/// The FiftyOne label (without `_id`) an annotation of `kind` converts to.
fn label_of(kind: Kind, a: &Value, size: Option<ImageSize>) -> Result<Value, String> {
    let class = a.get("name").and_then(Value::as_str).unwrap_or_default();
    if kind == Kind::Tag {
        return Ok(json!({"_cls": "Classification", "label": class}));
    }
    let size = size
        .filter(|s| s.is_known())
        .ok_or("its item's image size is unknown")?;
    let bad = || format!("its `{}` is not valid Darwin JSON", kind.as_str());
    let g = &a[kind.as_str()];
    Ok(match kind {
        Kind::BoundingBox => {
            // Darwin keeps `w`, `h` as sizes (not far corners): each scales on its own.
            let n = |k: &str| g.get(k).and_then(Value::as_f64).ok_or_else(bad);
            let [x, y] = geometry::relative(n("x")?, n("y")?, size);
            let [w, h] = geometry::relative(n("w")?, n("h")?, size);
            json!({"_cls": "Detection", "label": class, "bounding_box": [x, y, w, h]})
        }
        Kind::Polygon => {
            let paths = g
                .get("paths")
                .and_then(Value::as_array)
                .and_then(|p| {
                    p.iter()
                        .map(|p| rel_path(p, size))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(bad)?;
            json!({"_cls": "Polyline", "label": class, "points": paths, "closed": true, "filled": true})
        }
        Kind::Line => {
            let path = g
                .get("path")
                .and_then(|p| rel_path(p, size))
                .ok_or_else(bad)?;
            json!({"_cls": "Polyline", "label": class, "points": [path], "closed": false, "filled": false})
        }
        Kind::Keypoint => {
            let p = relative(g, size).ok_or_else(bad)?;
            json!({"_cls": "Keypoint", "label": class, "points": geometry::points_json(&[p])})
        }
        Kind::Tag => unreachable!("handled above"),
    })
}

fn with_id(mut label: Value, id: ObjectId) -> Value {
    if let Some(o) = label.as_object_mut() {
        o.insert("_id".into(), id.to_ejson());
    }
    label
}

/// The labels of a `t` field in one item's annotations (export form), the image being
/// `size`. Annotations annoform uploaded carry our label id back; the others are new. An
/// annotation of another kind, or one that does not convert, is a misfit.
pub fn from_darwin(
    t: LabelType,
    annotations: &[Value],
    size: Option<ImageSize>,
) -> Vec<DownloadedLabel> {
    let mut out = Vec::new();
    // Our keypoint labels, regrouped by label id.
    let mut keypoints: IndexMap<ObjectId, KeypointParts> = IndexMap::new();
    for a in annotations {
        let backend_id = a
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(kind) = Kind::of(a) else {
            let keys: Vec<&str> = a
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .map(String::as_str)
                .filter(|k| !matches!(*k, "id" | "name" | "slot_names" | "properties"))
                .collect();
            out.push(misfit(
                backend_id,
                None,
                Value::Null,
                format!(
                    "a Darwin annotation of kind `{}`, which annoform does not read",
                    keys.join(", ")
                ),
            ));
            continue;
        };
        let label = match label_of(kind, a, size) {
            Ok(l) => l,
            Err(why) => {
                let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
                out.push(misfit(
                    backend_id,
                    Some(kind.label_type()),
                    Value::Null,
                    format!("Darwin {} `{name}` cannot be read: {why}", kind.as_str()),
                ));
                continue;
            }
        };
        if !fits(t, kind) {
            out.push(misfit(
                backend_id,
                Some(kind.label_type()),
                label,
                format!("a Darwin {} is not a label of a {t} field", kind.as_str()),
            ));
            continue;
        }
        match (ids::label_of(&backend_id), kind) {
            (Some((oid, part)), Kind::Keypoint) => {
                let entry = keypoints.entry(oid).or_insert_with(|| KeypointParts {
                    backend_id: backend_id.clone(),
                    label: label.clone(),
                    points: Vec::new(),
                });
                if let Some(p) =
                    geometry::point_list(&label["points"]).and_then(|p| p.first().copied())
                {
                    entry.points.push((part, p));
                }
            }
            (Some((oid, _)), _) => out.push(DownloadedLabel::new(backend_id, with_id(label, oid))),
            (None, _) => out.push(DownloadedLabel::new(backend_id, label)),
        }
    }
    for (oid, mut k) in keypoints {
        k.points.sort_by_key(|(i, _)| *i);
        let n = k.points.last().map_or(0, |(i, _)| usize::from(*i) + 1);
        let mut points = vec![[f64::NAN, f64::NAN]; n];
        for (i, p) in k.points {
            points[usize::from(i)] = p;
        }
        k.label["points"] = geometry::points_json(&points);
        out.push(DownloadedLabel::new(k.backend_id, with_id(k.label, oid)));
    }
    out
}

/// The points of one of our keypoint labels found so far, as Darwin holds them apart.
struct KeypointParts {
    /// The first part's annotation id.
    backend_id: String,
    /// The label as its first part converts.
    label: Value,
    /// (part number, point).
    points: Vec<(u16, Point)>,
}

fn misfit(
    backend_id: String,
    label_type: Option<LabelType>,
    label: Value,
    reason: String,
) -> DownloadedLabel {
    DownloadedLabel {
        backend_id,
        frame: None,
        label,
        misfit: Some(Misfit { label_type, reason }),
    }
}

/// A label as Darwin gives it back after an upload without edits (see
/// [`crate::backend::AsHeld`]): through Darwin JSON and back.
pub fn as_held(field: &ResolvedField, label: &Value, size: ImageSize) -> Option<Value> {
    let t = field.label_type;
    let sent = to_darwin(t, label, size).ok()?;
    let back: Vec<Value> = sent
        .iter()
        .map(|o| {
            let mut a = exported(&o.data);
            a.insert("id".into(), json!(o.id));
            a.insert("name".into(), json!(o.class));
            Value::Object(a)
        })
        .collect();
    from_darwin(t, &back, Some(size))
        .into_iter()
        .next()
        .map(|d| d.label)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: ImageSize = ImageSize {
        width: 160,
        height: 120,
    };

    fn round_trip(t: LabelType, label: Value) -> Vec<DownloadedLabel> {
        let sent = to_darwin(t, &label, SIZE).unwrap();
        let back: Vec<Value> = sent
            .iter()
            .map(|o| {
                let mut a = exported(&o.data);
                a.insert("id".into(), json!(o.id));
                a.insert("name".into(), json!(o.class));
                Value::Object(a)
            })
            .collect();
        from_darwin(t, &back, Some(SIZE))
    }

    fn oid() -> Value {
        json!({"$oid": "6b0000000dec000000000002"})
    }

    #[test]
    fn boxes_polygons_lines_tags_come_back_with_our_ids() {
        let d = round_trip(
            LabelType::Detections,
            json!({"_id": oid(), "_cls": "Detection", "label": "car", "bounding_box": [0.25, 0.5, 0.125, 0.25]}),
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label["bounding_box"], json!([0.25, 0.5, 0.125, 0.25]));
        assert_eq!(d[0].label["_id"], oid());
        assert_eq!(d[0].backend_id, "6b000000-0dec-8000-a000-0000020000af");

        let poly = json!({"_id": oid(), "_cls": "Polyline", "label": "road", "closed": true, "filled": true,
            "points": [[[0.25, 0.5], [0.5, 0.5], [0.5, 0.75]], [[0.3, 0.55], [0.4, 0.6], [0.35, 0.7]]]});
        let d = round_trip(LabelType::Polygons, poly.clone());
        assert_eq!(d[0].label["points"][0], poly["points"][0]);
        assert_eq!(d[0].label["points"].as_array().unwrap().len(), 2);

        let line = json!({"_id": oid(), "_cls": "Polyline", "label": "lane", "closed": false, "filled": false,
            "points": [[[0.25, 0.5], [0.5, 0.5]]]});
        let d = round_trip(LabelType::Polylines, line.clone());
        assert_eq!(d[0].label["points"], line["points"]);
        assert_eq!(d[0].label["closed"], json!(false));

        let two = json!({"_id": oid(), "label": "lane", "points": [[[0.1, 0.1], [0.2, 0.2]], [[0.3, 0.3], [0.4, 0.4]]]});
        assert!(
            to_darwin(LabelType::Polylines, &two, SIZE)
                .unwrap_err()
                .contains("2 shapes")
        );

        let d = round_trip(
            LabelType::Classification,
            json!({"_id": oid(), "_cls": "Classification", "label": "park"}),
        );
        assert_eq!(
            d[0].label,
            json!({"_cls": "Classification", "label": "park", "_id": oid()})
        );
    }

    #[test]
    fn keypoints_go_up_per_point_and_come_back_as_one_label() {
        let kp = json!({"_id": oid(), "_cls": "Keypoint", "label": "person",
            "points": [[0.25, 0.5], [{"$numberDouble": "NaN"}, {"$numberDouble": "NaN"}], [0.5, 0.75]]});
        let sent = to_darwin(LabelType::Keypoints, &kp, SIZE).unwrap();
        assert_eq!(sent.len(), 2);
        let d = round_trip(LabelType::Keypoints, kp.clone());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label["points"], kp["points"]);
    }

    #[test]
    fn other_kinds_and_unknown_sizes_are_misfits_not_drops() {
        let anns = [
            json!({"id": "57d49f01-8e1c-4b5a-9a63-0d8a4f0c21af", "name": "car", "bounding_box": {"x": 16, "y": 12, "w": 32, "h": 24}}),
            json!({"id": "a", "name": "sun", "ellipse": {"center": {"x": 1, "y": 2}}}),
            json!({"id": "b", "name": "sunny", "tag": {}}),
        ];
        let d = from_darwin(LabelType::Detections, &anns, Some(SIZE));
        assert_eq!(d.len(), 3);
        assert!(d[0].misfit.is_none());
        assert_eq!(d[0].label["bounding_box"], json!([0.1, 0.1, 0.2, 0.2]));
        assert!(d[0].label.get("_id").is_none());
        assert!(d[1].misfit.as_ref().unwrap().reason.contains("ellipse"));
        assert_eq!(
            d[2].misfit.as_ref().unwrap().label_type,
            Some(LabelType::Classifications)
        );
        let d = from_darwin(LabelType::Detections, &anns[..1], None);
        assert!(
            d[0].misfit
                .as_ref()
                .unwrap()
                .reason
                .contains("size is unknown")
        );
    }
}
