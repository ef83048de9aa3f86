//! FiftyOne label JSON ↔ Label Studio results, per the recipe's table (FiftyOne's own rules,
//! without its bugs).
//!
//! Ids. A result's `id` is our label id, so regions that annotators keep or edit keep it. A
//! label that needs several results (keypoints: one per point; polylines with several shapes;
//! segmentations: one brush per class) uses `<id>_<part>_<parts>`; a Classifications field
//! (one `choices` result for all its labels) uses `<id1>+<id2>+...` in label order. Results
//! drawn in the editor have other ids: they come back without `_id`, with the result id as
//! the backend id, for the engine's deterministic id derivation.
//!
//! Prediction results also carry an `annoform` object with what Label Studio has no place
//! for: the label's `index`, a polyline's `closed`/`filled`, and for brushes the original
//! mask and box, used only while the brush is unchanged (decoding a brush cannot give back a
//! box that was not pixel-aligned, and a box-sized mask of another resolution).

use super::rle;
use crate::backend::convert::geometry::{
    bounding_box, box_from_percent, box_to_percent, class_of, finite, from_percent, is_present,
    label_id, point_list, points_json, target_class, target_value, to_percent,
};
use crate::backend::convert::mask::{self, BoxMask, class_values, classes_present, instance_box};
use crate::backend::convert::{ConvertError, ImageSize};
use crate::backend::{DownloadedLabel, Misfit};
use crate::dataset::ejson::{ObjectId, as_f64, from_f64};
use crate::dataset::mask::{Dtype, Mask};
use crate::manifest::LabelType;
use crate::schema::ResolvedField;
use indexmap::IndexMap;
use serde_json::{Map, Value, json};

/// The width Label Studio's editor gives keypoints (percent of the image).
const KEYPOINT_WIDTH: f64 = 0.34;

/// The Label Studio result `type` of a label type.
pub fn result_type(t: LabelType) -> &'static str {
    match t {
        LabelType::Classification | LabelType::Classifications => "choices",
        LabelType::Detections => "rectanglelabels",
        LabelType::Instances | LabelType::Segmentation => "brushlabels",
        LabelType::Polylines | LabelType::Polygons => "polygonlabels",
        LabelType::Keypoints => "keypointlabels",
        LabelType::Scalar => "number",
    }
}

/// The id of part `i` of `n` results of one label.
fn part_id(id: &str, i: usize, n: usize) -> String {
    if n == 1 {
        id.to_string()
    } else {
        format!("{id}_{i}_{n}")
    }
}

/// Our label id and (part, parts) from a result id we wrote; `None` for editor-made ids.
fn parse_id(rid: &str) -> Option<(String, usize, usize)> {
    if ObjectId::parse(rid).is_ok() {
        return Some((rid.to_string(), 0, 1));
    }
    let mut it = rid.split('_');
    let (id, i, n) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || ObjectId::parse(id).is_err() {
        return None;
    }
    let (i, n): (usize, usize) = (i.parse().ok()?, n.parse().ok()?);
    (i < n).then(|| (id.to_string(), i, n))
}

/// One field's labels on one image as Label Studio results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Converted {
    pub results: Vec<Value>,
    /// Labels without any region (a keypoint whose points are all missing, an all-background
    /// mask): the editor cannot show them, so they are kept aside and come back unchanged.
    pub hidden: Vec<Value>,
}

/// Label Studio results for one field's labels on one image. Scalars come as a one-element
/// list holding the value.
pub fn to_results(
    field: &str,
    spec: &ResolvedField,
    labels: &[Value],
    size: ImageSize,
) -> Result<Converted, ConvertError> {
    let mut hidden = Vec::new();
    let mut results = Vec::new();
    for l in labels {
        let r = label_results(field, spec, std::slice::from_ref(l), size)?;
        if r.is_empty() && spec.label_type != LabelType::Scalar {
            hidden.push(l.clone());
        }
        results.extend(r);
    }
    if spec.label_type == LabelType::Classifications {
        // One result for all of them.
        results = label_results(field, spec, labels, size)?;
    }
    Ok(Converted { results, hidden })
}

/// Hidden labels (see `Converted`) as downloaded labels.
pub fn hidden_labels(hidden: &[Value]) -> Vec<DownloadedLabel> {
    hidden
        .iter()
        .filter_map(|l| Some(DownloadedLabel::new(label_id(l)?, l.clone())))
        .collect()
}

fn label_results(
    field: &str,
    spec: &ResolvedField,
    labels: &[Value],
    size: ImageSize,
) -> Result<Vec<Value>, ConvertError> {
    let err = |message: String| ConvertError {
        field: field.to_string(),
        message,
    };
    let t = spec.label_type;
    let base = |id: String, value: Value, extra: Map<String, Value>| {
        let mut r = json!({
            "id": id, "from_name": field, "to_name": "image", "type": result_type(t),
            "original_width": size.width, "original_height": size.height, "image_rotation": 0,
            "value": value,
        });
        if !extra.is_empty() {
            r["annoform"] = Value::Object(extra);
        }
        r
    };
    let index_extra = |label: &Value| {
        let mut m = Map::new();
        if let Some(i) = label.get("index").filter(|v| !v.is_null()) {
            m.insert("index".into(), i.clone());
        }
        m
    };
    let mut out = Vec::new();
    match t {
        LabelType::Scalar => {
            for v in labels {
                let Some(x) = as_f64(v).filter(|x| x.is_finite()) else {
                    if v.is_null() {
                        continue;
                    }
                    return Err(err(format!("scalar {v} is not a finite number")));
                };
                out.push(json!({"id": format!("{field}-value"), "from_name": field,
                    "to_name": "image", "type": "number", "value": {"number": x}}));
            }
        }
        LabelType::Classification => {
            for l in labels {
                let id = label_id(l).ok_or_else(|| err("a label has no `_id`".into()))?;
                out.push(base(id, json!({"choices": [class_of(l)]}), index_extra(l)));
            }
        }
        LabelType::Classifications => {
            if !labels.is_empty() {
                let ids = labels
                    .iter()
                    .map(|l| label_id(l).ok_or_else(|| err("a label has no `_id`".into())))
                    .collect::<Result<Vec<_>, _>>()?;
                let choices: Vec<String> = labels.iter().map(class_of).collect();
                out.push(base(
                    ids.join("+"),
                    json!({ "choices": choices }),
                    Map::new(),
                ));
            }
        }
        LabelType::Detections => {
            for l in labels {
                let id = label_id(l).ok_or_else(|| err("a label has no `_id`".into()))?;
                let [x, y, w, h] = bounding_box(l)
                    .map(box_to_percent)
                    .ok_or_else(|| err(format!("label {id} has no valid bounding_box")))?;
                let rotation = finite(l.get("rotation")).unwrap_or(0.0);
                out.push(base(
                    id,
                    json!({"x": x, "y": y, "width": w, "height": h,
                           "rotation": rotation, "rectanglelabels": [class_of(l)]}),
                    with_geometry(
                        index_extra(l),
                        l,
                        &["bounding_box", "rotation", "mask", "mask_path"],
                    ),
                ));
            }
        }
        LabelType::Instances => {
            for l in labels {
                let id = label_id(l).ok_or_else(|| err("a label has no `_id`".into()))?;
                let full = instance_box(l, size)
                    .map_err(|m| err(format!("label {id}: {m}")))?
                    .full(size);
                let mut extra = index_extra(l);
                let mut geometry = Map::new();
                for k in ["bounding_box", "mask"] {
                    if let Some(v) = l.get(k).filter(|v| !v.is_null()) {
                        geometry.insert(k.into(), v.clone());
                    }
                }
                extra.insert("geometry".into(), Value::Object(geometry));
                out.push(base(
                    id,
                    json!({"format": "rle", "rle": rle::encode_mask(&full), "brushlabels": [class_of(l)]}),
                    extra,
                ));
            }
        }
        LabelType::Segmentation => {
            for l in labels {
                let id = label_id(l).ok_or_else(|| err("a label has no `_id`".into()))?;
                let mask = match l.get("mask").filter(|v| !v.is_null()) {
                    Some(m) => Mask::from_ejson(m).map_err(|e| err(format!("label {id}: {e}")))?,
                    None if l.get("mask_path").is_some_and(|p| !p.is_null()) => {
                        return Err(err(format!(
                            "label {id}: segmentations stored as mask_path files are not supported yet"
                        )));
                    }
                    None => continue,
                };
                let (mh, mw) = mask::hw(&mask).map_err(|m| err(format!("label {id}: {m}")))?;
                if (mw, mh) != (size.width as usize, size.height as usize) {
                    return Err(err(format!(
                        "label {id}: mask is {mw}x{mh} but the image is {}x{}",
                        size.width, size.height
                    )));
                }
                let values = class_values(&mask).map_err(|m| err(format!("label {id}: {m}")))?;
                let classes = classes_present(&values);
                let n = classes.len();
                for (i, class) in classes.iter().enumerate() {
                    let bits: Vec<bool> = values.iter().map(|v| v == class).collect();
                    let mut extra = Map::new();
                    if i == 0 {
                        extra.insert("geometry".into(), json!({"mask": l["mask"].clone()}));
                    }
                    extra.insert("value".into(), json!(class));
                    out.push(base(
                        part_id(&id, i, n),
                        json!({"format": "rle", "rle": rle::encode_mask(&bits),
                               "brushlabels": [target_class(spec, *class)]}),
                        extra,
                    ));
                }
            }
        }
        LabelType::Polylines | LabelType::Polygons => {
            for l in labels {
                let id = label_id(l).ok_or_else(|| err("a label has no `_id`".into()))?;
                let shapes = l
                    .get("points")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let n = shapes.len();
                for (i, shape) in shapes.iter().enumerate() {
                    let pts: Vec<[f64; 2]> = point_list(shape)
                        .ok_or_else(|| err(format!("label {id}: invalid points")))?
                        .into_iter()
                        .map(to_percent)
                        .collect();
                    let mut extra = index_extra(l);
                    for k in ["closed", "filled"] {
                        if let Some(v) = l.get(k) {
                            extra.insert(k.into(), v.clone());
                        }
                    }
                    if i == 0 {
                        extra = with_geometry(extra, l, &["points"]);
                    }
                    out.push(base(
                        part_id(&id, i, n),
                        json!({"points": pts, "polygonlabels": [class_of(l)]}),
                        extra,
                    ));
                }
            }
        }
        LabelType::Keypoints => {
            for l in labels {
                let id = label_id(l).ok_or_else(|| err("a label has no `_id`".into()))?;
                let pts = l
                    .get("points")
                    .and_then(point_list)
                    .ok_or_else(|| err(format!("label {id}: invalid points")))?;
                let n = pts.len();
                for (i, p) in pts.iter().enumerate() {
                    // Missing points (NaN) have no region; their place is kept by the part index.
                    if !is_present(*p) {
                        continue;
                    }
                    let [x, y] = to_percent(*p);
                    out.push(base(
                        part_id(&id, i, n),
                        json!({"x": x, "y": y, "width": KEYPOINT_WIDTH,
                               "keypointlabels": [class_of(l)]}),
                        with_geometry(index_extra(l), l, &["points"]),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// `extra` plus the label's exact `keys` as `geometry`: an unchanged region gives them back
/// bit for bit (percent and back is not exact in floating point).
fn with_geometry(mut extra: Map<String, Value>, l: &Value, keys: &[&str]) -> Map<String, Value> {
    let g: Map<String, Value> = keys
        .iter()
        .filter_map(|k| {
            Some((
                (*k).to_string(),
                l.get(*k).filter(|v| !v.is_null())?.clone(),
            ))
        })
        .collect();
    extra.insert("geometry".into(), Value::Object(g));
    extra
}

/// Puts back the uploaded geometry of labels whose regions are exactly as uploaded.
fn restore_geometry(out: &mut [DownloadedLabel], mine: &[&Value], prior: &IndexMap<&str, &Value>) {
    let parts_of = |id: &str, rs: &mut dyn Iterator<Item = &Value>| -> Vec<(String, Value)> {
        let mut v: Vec<(String, Value)> = rs
            .filter_map(|r| {
                let rid = r.get("id")?.as_str()?;
                // Only where the region is counts: a relabelled region keeps its geometry.
                let mut value = r.get("value").cloned().unwrap_or_default();
                if let Some(o) = value.as_object_mut() {
                    o.retain(|k, _| !k.ends_with("labels"));
                }
                (parse_id(rid)?.0 == id).then(|| (rid.to_string(), value))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    for d in out.iter_mut() {
        let Some(id) = d
            .label
            .get("_id")
            .and_then(|i| i.get("$oid"))
            .and_then(Value::as_str)
            .map(String::from)
        else {
            continue;
        };
        let now = parts_of(&id, &mut mine.iter().copied());
        let then = parts_of(&id, &mut prior.values().copied());
        if now.is_empty() || now != then {
            continue;
        }
        let geometry = prior
            .iter()
            .filter(|(k, _)| parse_id(k).is_some_and(|p| p.0 == id))
            .find_map(|(_, r)| r.get("annoform")?.get("geometry")?.as_object().cloned());
        if let (Some(g), Some(label)) = (geometry, d.label.as_object_mut()) {
            label.extend(g);
        }
    }
}

/// The result's single label (`<type>[0]` or `choices[0]`).
fn result_label(r: &Value, key: &str) -> Option<String> {
    r.get("value")?
        .get(key)?
        .as_array()?
        .first()?
        .as_str()
        .map(String::from)
}

/// A label with `_id` when the result carried ours.
fn downloaded(
    backend_id: &str,
    our_id: Option<&str>,
    mut label: Map<String, Value>,
) -> DownloadedLabel {
    if let Some(id) = our_id {
        label.insert("_id".into(), json!({ "$oid": id }));
    }
    DownloadedLabel::new(backend_id, Value::Object(label))
}

/// The labels of one field in an annotation's results. `prior` holds the task's prediction
/// results (what we uploaded): our extras are read from there, by result id.
pub fn from_results(
    field: &str,
    spec: &ResolvedField,
    results: &[Value],
    prior: &[Value],
    size: ImageSize,
) -> Vec<DownloadedLabel> {
    let t = spec.label_type;
    let mine: Vec<&Value> = results
        .iter()
        .filter(|r| {
            r.get("from_name").and_then(Value::as_str) == Some(field)
                && r.get("type").and_then(Value::as_str) == Some(result_type(t))
        })
        .collect();
    let prior_by_id: IndexMap<&str, &Value> = prior
        .iter()
        .filter(|r| r.get("from_name").and_then(Value::as_str) == Some(field))
        .filter_map(|r| Some((r.get("id")?.as_str()?, r)))
        .collect();
    let rid = |r: &Value| {
        r.get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // Our extras: from the result itself (unedited copies of predictions) or the prediction.
    let extra = |r: &Value, key: &str| -> Option<Value> {
        r.get("annoform")
            .and_then(|a| a.get(key))
            .or_else(|| prior_by_id.get(rid(r).as_str())?.get("annoform")?.get(key))
            .cloned()
    };
    let with_index = |m: &mut Map<String, Value>, r: &Value| {
        if let Some(i) = extra(r, "index").filter(|v| !v.is_null()) {
            m.insert("index".into(), i);
        }
    };
    let (w, h) = (size.width as usize, size.height as usize);
    let mut out = Vec::new();
    match t {
        LabelType::Scalar => {
            if let Some(x) = mine
                .iter()
                .find_map(|r| finite(r.get("value")?.get("number")))
            {
                out.push(DownloadedLabel::new("value", from_f64(x)));
            }
        }
        LabelType::Classification => {
            // A single-label field: the first result with a choice.
            if let Some((r, label)) = mine
                .iter()
                .find_map(|r| Some((*r, result_label(r, "choices")?)))
            {
                let id = rid(r);
                let ours = ObjectId::parse(&id).is_ok().then_some(id.as_str());
                let mut m = Map::new();
                m.insert("_cls".into(), json!("Classification"));
                m.insert("label".into(), json!(label));
                with_index(&mut m, r);
                out.push(downloaded(&id, ours, m));
            }
        }
        LabelType::Classifications => {
            for r in &mine {
                let id = rid(r);
                let choices: Vec<String> = r
                    .get("value")
                    .and_then(|v| v.get("choices"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let ids: Vec<&str> = id.split('+').collect();
                let ours = ids.iter().all(|i| ObjectId::parse(i).is_ok());
                // Label → our id, from the uploaded choices (same order as the ids).
                let uploaded: Vec<String> = prior_by_id
                    .get(id.as_str())
                    .and_then(|p| p.get("value")?.get("choices")?.as_array().cloned())
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_else(|| {
                        if ids.len() == choices.len() {
                            choices.clone()
                        } else {
                            Vec::new()
                        }
                    });
                for label in choices {
                    let our = uploaded
                        .iter()
                        .position(|u| *u == label)
                        .filter(|&p| ours && p < ids.len())
                        .map(|p| ids[p]);
                    let mut m = Map::new();
                    m.insert("_cls".into(), json!("Classification"));
                    m.insert("label".into(), json!(label));
                    let backend_id = match our {
                        Some(o) => o.to_string(),
                        None => format!("{id}/{label}"),
                    };
                    out.push(downloaded(&backend_id, our, m));
                }
            }
        }
        LabelType::Detections => {
            for r in &mine {
                let v = &r["value"];
                let (Some(x), Some(y), Some(bw), Some(bh)) = (
                    finite(v.get("x")),
                    finite(v.get("y")),
                    finite(v.get("width")),
                    finite(v.get("height")),
                ) else {
                    continue;
                };
                let id = rid(r);
                let ours = ObjectId::parse(&id).is_ok().then_some(id.as_str());
                let mut m = Map::new();
                m.insert("_cls".into(), json!("Detection"));
                m.insert(
                    "label".into(),
                    json!(result_label(r, "rectanglelabels").unwrap_or_default()),
                );
                m.insert(
                    "bounding_box".into(),
                    json!(box_from_percent([x, y, bw, bh])),
                );
                if let Some(rot) = finite(v.get("rotation")).filter(|x| *x != 0.0) {
                    m.insert("rotation".into(), json!(rot));
                }
                with_index(&mut m, r);
                out.push(downloaded(&id, ours, m));
            }
        }
        LabelType::Instances => {
            for r in &mine {
                let id = rid(r);
                let ours = ObjectId::parse(&id).is_ok().then_some(id.as_str());
                let mut m = Map::new();
                m.insert("_cls".into(), json!("Detection"));
                m.insert(
                    "label".into(),
                    json!(result_label(r, "brushlabels").unwrap_or_default()),
                );
                let unchanged = prior_by_id.get(id.as_str()).is_some_and(|p| {
                    p.get("value").and_then(|v| v.get("rle"))
                        == r.get("value").and_then(|v| v.get("rle"))
                });
                match extra(r, "geometry").filter(|_| unchanged) {
                    Some(Value::Object(g)) => m.extend(g),
                    _ => {
                        let Some(bits) = brush_bits(r, w, h) else {
                            continue;
                        };
                        let Some(tight) = BoxMask::tight(w, h, |i| bits[i]) else {
                            continue;
                        };
                        m.insert("bounding_box".into(), json!(tight.bounding_box(size)));
                        m.insert("mask".into(), tight.to_instance_mask().to_ejson());
                    }
                }
                with_index(&mut m, r);
                out.push(downloaded(&id, ours, m));
            }
        }
        LabelType::Segmentation => {
            // Parts of one label are grouped by our id; editor-made brushes join the first
            // label (a segmentation field holds one mask).
            let mut groups: IndexMap<String, Vec<&Value>> = IndexMap::new();
            for r in &mine {
                let key = parse_id(&rid(r)).map_or_else(|| String::from("~editor"), |p| p.0);
                groups.entry(key).or_default().push(r);
            }
            if let Some(editor) = groups.shift_remove("~editor") {
                match groups.first_mut() {
                    Some((_, g)) => g.extend(editor),
                    None => {
                        groups.insert("~editor".into(), editor);
                    }
                }
            }
            if let Some((key, parts)) = groups.into_iter().next() {
                let ours = (key != "~editor").then_some(key.as_str());
                let backend_id = ours.map_or_else(|| rid(parts[0]), String::from);
                let prior_parts: Vec<&&Value> = prior_by_id
                    .iter()
                    .filter(|(k, _)| parse_id(k).is_some_and(|p| p.0 == key))
                    .map(|(_, v)| v)
                    .collect();
                let unchanged = prior_parts.len() == parts.len()
                    && parts.iter().all(|r| {
                        prior_by_id
                            .get(rid(r).as_str())
                            .is_some_and(|p| p.get("value") == r.get("value"))
                    });
                let stored = prior_parts
                    .iter()
                    .find_map(|p| p.get("annoform")?.get("geometry")?.get("mask").cloned());
                let mut m = Map::new();
                m.insert("_cls".into(), json!("Segmentation"));
                match stored.filter(|_| unchanged) {
                    Some(mask) => {
                        m.insert("mask".into(), mask);
                    }
                    None => {
                        let mut data = vec![0u8; w * h];
                        for r in &parts {
                            let value = result_label(r, "brushlabels")
                                .and_then(|l| target_value(spec, &l))
                                .map(u64::from)
                                .or_else(|| extra(r, "value").and_then(|v| v.as_u64()))
                                .unwrap_or(1)
                                .min(255) as u8;
                            if let Some(bits) = brush_bits(r, w, h) {
                                for (d, b) in data.iter_mut().zip(bits) {
                                    if b {
                                        *d = value;
                                    }
                                }
                            }
                        }
                        let mask = Mask {
                            shape: vec![h, w],
                            dtype: Dtype::U8,
                            data,
                        };
                        m.insert("mask".into(), mask.to_ejson());
                    }
                }
                out.push(downloaded(&backend_id, ours, m));
            }
        }
        LabelType::Polylines | LabelType::Polygons => {
            let mut groups: IndexMap<String, (Option<String>, Vec<&Value>)> = IndexMap::new();
            for r in &mine {
                let id = rid(r);
                match parse_id(&id) {
                    Some((our, _, _)) => groups
                        .entry(our.clone())
                        .or_insert((Some(our), Vec::new()))
                        .1
                        .push(r),
                    None => groups.entry(id).or_insert((None, Vec::new())).1.push(r),
                }
            }
            for (key, (ours, mut parts)) in groups {
                parts.sort_by_key(|r| parse_id(&rid(r)).map_or(0, |p| p.1));
                let shapes: Vec<Vec<[f64; 2]>> = parts
                    .iter()
                    .filter_map(|r| {
                        let pts = point_list(r.get("value")?.get("points")?)?;
                        Some(pts.into_iter().map(from_percent).collect())
                    })
                    .collect();
                if shapes.is_empty() {
                    continue;
                }
                let first = parts[0];
                let mut m = Map::new();
                m.insert("_cls".into(), json!("Polyline"));
                m.insert(
                    "label".into(),
                    json!(result_label(first, "polygonlabels").unwrap_or_default()),
                );
                m.insert("points".into(), json!(shapes));
                // Label Studio draws polygons: closed and filled unless we uploaded otherwise.
                for k in ["closed", "filled"] {
                    m.insert(k.into(), extra(first, k).unwrap_or(json!(true)));
                }
                with_index(&mut m, first);
                out.push(downloaded(&key, ours.as_deref(), m));
            }
        }
        LabelType::Keypoints => {
            // Ours: grouped by id, each point at its index. Editor-made: consecutive results
            // with the same label form one keypoint (FiftyOne's rule).
            let mut groups: Vec<(String, Option<String>, String, Vec<&Value>)> = Vec::new();
            for r in &mine {
                let id = rid(r);
                let label = result_label(r, "keypointlabels").unwrap_or_default();
                match parse_id(&id) {
                    Some((our, _, _)) => {
                        match groups.iter_mut().find(|g| g.1.as_deref() == Some(&our)) {
                            Some(g) => g.3.push(r),
                            None => groups.push((our.clone(), Some(our), label, vec![r])),
                        }
                    }
                    None => match groups.last_mut() {
                        Some(g) if g.1.is_none() && g.2 == label => g.3.push(r),
                        _ => groups.push((id, None, label, vec![r])),
                    },
                }
            }
            for (key, ours, label, parts) in groups {
                let n = parts
                    .iter()
                    .filter_map(|r| parse_id(&rid(r)).map(|p| p.2))
                    .max()
                    .unwrap_or(parts.len());
                let mut pts = vec![[f64::NAN, f64::NAN]; n.max(1)];
                for (k, r) in parts.iter().enumerate() {
                    let i = if ours.is_some() {
                        parse_id(&rid(r)).map_or(k, |p| p.1)
                    } else {
                        k
                    };
                    let v = &r["value"];
                    if let (Some(x), Some(y), Some(slot)) =
                        (finite(v.get("x")), finite(v.get("y")), pts.get_mut(i))
                    {
                        *slot = from_percent([x, y]);
                    }
                }
                let mut m = Map::new();
                m.insert("_cls".into(), json!("Keypoint"));
                m.insert("label".into(), json!(label));
                m.insert("points".into(), points_json(&pts));
                with_index(&mut m, parts[0]);
                out.push(downloaded(&key, ours.as_deref(), m));
            }
        }
    }
    restore_geometry(&mut out, &mine, &prior_by_id);
    out
}

/// The label type a result type stands for (FiftyOne's reading of it), if any.
fn natural_type(result_type: &str) -> Option<LabelType> {
    Some(match result_type {
        "rectanglelabels" | "rectangle" => LabelType::Detections,
        "polygonlabels" | "polygon" => LabelType::Polygons,
        "keypointlabels" | "keypoint" => LabelType::Keypoints,
        "brushlabels" | "brush" => LabelType::Instances,
        "choices" => LabelType::Classifications,
        "number" => LabelType::Scalar,
        _ => return None,
    })
}

/// The results of an annotation that are no label of the run's fields: a result of another
/// type under a field's name, or under a name no field has (the labeling config was edited).
/// Each is listed under its field (else the first field) as a misfit, with the label it
/// converts to, so the merge accounts for it as `load.unexpected` says.
pub fn misfits(
    fields: &IndexMap<String, ResolvedField>,
    results: &[Value],
    size: ImageSize,
) -> Vec<(String, DownloadedLabel)> {
    let mut out = Vec::new();
    for r in results {
        // Relations and other results that are no region of a control have no `from_name`.
        let Some(from) = r.get("from_name").and_then(Value::as_str) else {
            continue;
        };
        let ty = r.get("type").and_then(Value::as_str).unwrap_or_default();
        let own = fields.get(from);
        if own.is_some_and(|f| result_type(f.label_type) == ty) {
            continue;
        }
        let Some(field) = own
            .map(|_| from.to_string())
            .or_else(|| fields.keys().next().cloned())
        else {
            continue;
        };
        let natural = natural_type(ty);
        let reason = match own {
            Some(f) => format!(
                "a `{ty}` result in `{from}`, a {} field",
                f.label_type.as_str()
            ),
            None => format!("a `{ty}` result of `{from}`, which is no field of the run"),
        };
        let id = r.get("id").and_then(Value::as_str).unwrap_or_default();
        // Read as the label type it stands for, under a name of its own.
        let converted = natural.and_then(|t| {
            let mut alone = r.clone();
            alone["from_name"] = json!("~misfit");
            alone["type"] = json!(result_type(t));
            let spec = ResolvedField::new(t, Vec::new());
            from_results("~misfit", &spec, &[alone], &[], size)
                .into_iter()
                .next()
                .map(|d| (d.label, t))
        });
        let (label, label_type) = match converted {
            Some((mut label, t)) => {
                if let Some(o) = label.as_object_mut() {
                    o.remove("_id");
                }
                (label, Some(t))
            }
            None => (Value::Null, None),
        };
        out.push((
            field,
            DownloadedLabel {
                backend_id: id.to_string(),
                frame: None,
                label,
                misfit: Some(Misfit { label_type, reason }),
            },
        ));
    }
    out
}

fn brush_bits(r: &Value, w: usize, h: usize) -> Option<Vec<bool>> {
    let v = r.get("value")?;
    if v.get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f != "rle")
    {
        return None;
    }
    let bytes: Vec<u8> = v
        .get("rle")?
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect::<Option<_>>()?;
    rle::decode_mask(&bytes, w, h).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Restrictions;
    use proptest::prelude::*;

    const SIZE: ImageSize = ImageSize {
        width: 16,
        height: 12,
    };
    const CLASSES: [&str; 3] = ["car", "person", "bike"];

    fn spec(t: LabelType) -> ResolvedField {
        ResolvedField {
            label_type: t,
            existing: true,
            classes: CLASSES.iter().map(|c| c.to_string()).collect(),
            attributes: IndexMap::new(),
            class_attributes: IndexMap::new(),
            mask_targets: (t == LabelType::Segmentation).then(|| {
                [("1", "road"), ("2", "sky")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }),
            restrictions: Restrictions::default(),
        }
    }

    /// Numbers equal within 1e-9 (NaN equals NaN), everything else exactly.
    fn close(a: &Value, b: &Value) -> bool {
        match (as_f64(a), as_f64(b)) {
            (Some(x), Some(y))
                if !a.is_object() || !b.is_object() || a.get("$numberDouble").is_some() =>
            {
                (x.is_nan() && y.is_nan()) || (x - y).abs() < 1e-9
            }
            _ => match (a, b) {
                (Value::Array(x), Value::Array(y)) => {
                    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q))
                }
                (Value::Object(x), Value::Object(y)) => {
                    x.len() == y.len()
                        && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
                }
                _ => a == b,
            },
        }
    }

    /// The managed part: label, index, geometry (and `_id`).
    fn managed(t: LabelType, l: &Value) -> Value {
        if t == LabelType::Scalar {
            return l.clone();
        }
        let keys: &[&str] = match t {
            LabelType::Detections => &["bounding_box", "rotation"],
            LabelType::Instances => &["bounding_box", "mask"],
            LabelType::Polylines | LabelType::Polygons => &["points", "closed", "filled"],
            LabelType::Keypoints => &["points"],
            LabelType::Segmentation => &["mask"],
            _ => &[],
        };
        let mut m = Map::new();
        for k in ["_id", "label", "index"].iter().chain(keys) {
            if let Some(v) = l.get(*k).filter(|v| !v.is_null()) {
                m.insert((*k).to_string(), v.clone());
            }
        }
        Value::Object(m)
    }

    fn round_trip(t: LabelType, labels: &[Value], keep_extras: bool) -> Vec<Value> {
        let s = spec(t);
        let converted = to_results("f", &s, labels, SIZE).expect("to_results");
        let results = converted.results;
        let (results, prior) = if keep_extras {
            (results.clone(), results)
        } else {
            // What the editor makes of our results: our extras dropped, no prediction.
            let stripped = results
                .into_iter()
                .map(|mut r| {
                    r.as_object_mut().map(|o| o.remove("annoform"));
                    r
                })
                .collect();
            (stripped, Vec::new())
        };
        let mut back = from_results("f", &s, &results, &prior, SIZE);
        back.extend(hidden_labels(&converted.hidden));
        let order = |d: &DownloadedLabel| {
            labels
                .iter()
                .position(|l| l.get("_id").is_some() && l.get("_id") == d.label.get("_id"))
        };
        back.sort_by_key(order);
        back.iter().map(|d| managed(t, &d.label)).collect()
    }

    fn oid() -> impl Strategy<Value = Value> {
        "[0-9a-f]{24}".prop_map(|s| json!({ "$oid": s }))
    }
    fn class() -> impl Strategy<Value = String> {
        prop::sample::select(CLASSES.to_vec()).prop_map(String::from)
    }
    fn unit() -> impl Strategy<Value = f64> {
        0.0..1.0f64
    }
    fn index() -> impl Strategy<Value = Option<u32>> {
        prop::option::of(0..100u32)
    }
    fn with_index(mut l: Value, i: Option<u32>) -> Value {
        if let Some(i) = i {
            l["index"] = json!(i);
        }
        l
    }

    fn detection() -> impl Strategy<Value = Value> {
        (
            oid(),
            class(),
            [unit(), unit(), unit(), unit()],
            prop::option::of(1.0..359.0f64),
            index(),
        )
            .prop_map(|(id, label, bb, rot, i)| {
                let mut l =
                    json!({"_id": id, "_cls": "Detection", "label": label, "bounding_box": bb});
                if let Some(r) = rot {
                    l["rotation"] = json!(r);
                }
                with_index(l, i)
            })
    }

    /// Pixel-aligned boxes with masks whose tight box is the whole mask, so even a decode
    /// without our extras gives the box back.
    fn instance() -> impl Strategy<Value = Value> {
        (
            oid(),
            class(),
            0..14u32,
            0..10u32,
            1..3u32,
            1..3u32,
            index(),
        )
            .prop_flat_map(|(id, label, x, y, w, h, i)| {
                let (w, h) = (w.min(16 - x), h.min(12 - y));
                prop::collection::vec(any::<bool>(), (w * h) as usize).prop_map(move |mut bits| {
                    // Set the corners so the tight box is the whole mask.
                    let (wu, hu) = (w as usize, h as usize);
                    bits[0] = true;
                    bits[wu * hu - 1] = true;
                    bits[wu - 1] = true;
                    bits[wu * (hu - 1)] = true;
                    let mask = Mask {
                        shape: vec![hu, wu],
                        dtype: Dtype::Bool,
                        data: bits.iter().map(|b| u8::from(*b)).collect(),
                    };
                    let bb = [
                        x as f64 / 16.0,
                        y as f64 / 12.0,
                        w as f64 / 16.0,
                        h as f64 / 12.0,
                    ];
                    with_index(
                        json!({"_id": id.clone(), "_cls": "Detection", "label": label.clone(),
                               "bounding_box": bb, "mask": mask.to_ejson()}),
                        i,
                    )
                })
            })
    }

    fn polyline(t: LabelType) -> impl Strategy<Value = Value> {
        let shapes = prop::collection::vec(prop::collection::vec([unit(), unit()], 3..6), 1..3);
        (
            oid(),
            class(),
            shapes,
            any::<bool>(),
            any::<bool>(),
            index(),
        )
            .prop_map(move |(id, label, shapes, closed, filled, i)| {
                let (closed, filled) = if t == LabelType::Polygons {
                    (true, true)
                } else {
                    (closed, filled)
                };
                with_index(
                    json!({"_id": id, "_cls": "Polyline", "label": label, "points": shapes,
                           "closed": closed, "filled": filled}),
                    i,
                )
            })
    }

    fn keypoint() -> impl Strategy<Value = Value> {
        let point = prop_oneof![
            3 => [unit(), unit()].prop_map(|p| json!(p)),
            1 => Just(json!([{"$numberDouble": "NaN"}, {"$numberDouble": "NaN"}])),
        ];
        (oid(), class(), prop::collection::vec(point, 1..6), index()).prop_map(
            |(id, label, pts, i)| {
                with_index(
                    json!({"_id": id, "_cls": "Keypoint", "label": label, "points": pts}),
                    i,
                )
            },
        )
    }

    fn segmentation() -> impl Strategy<Value = Value> {
        (oid(), prop::collection::vec(0..3u8, 16 * 12)).prop_map(|(id, data)| {
            let mask = Mask {
                shape: vec![12, 16],
                dtype: Dtype::U8,
                data,
            };
            json!({"_id": id, "_cls": "Segmentation", "mask": mask.to_ejson()})
        })
    }

    fn check(t: LabelType, labels: &[Value], keep_extras: bool) -> Result<(), TestCaseError> {
        let want: Vec<Value> = labels.iter().map(|l| managed(t, l)).collect();
        let got = round_trip(t, labels, keep_extras);
        prop_assert!(
            got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| close(g, w)),
            "{t:?}\nwant {want:#?}\ngot  {got:#?}"
        );
        Ok(())
    }

    /// Upload, download with no edit, merge: nothing changes.
    fn merges_as_nothing(t: LabelType, labels: &[Value]) -> Result<(), TestCaseError> {
        use crate::merge::{FieldInput, field_value, label_digest, label_key, merge_field};
        let s = spec(t);
        let converted = to_results("f", &s, labels, SIZE).expect("to_results");
        let mut back = from_results("f", &s, &converted.results, &converted.results, SIZE);
        back.extend(hidden_labels(&converted.hidden));
        let current = field_value(labels.to_vec(), t);
        let baseline: Vec<crate::state::UploadedLabel> = labels
            .iter()
            .map(|l| crate::state::UploadedLabel {
                id: label_key(l, t).unwrap(),
                digest: label_digest(l, &s),
            })
            .collect();
        let out = merge_field(&FieldInput {
            field: "f",
            frame: None,
            schema: &s,
            sample_id: "5f0000000000000000000001",
            current: current.as_ref(),
            uploaded: &baseline,
            downloaded: &back,
            id_map: &IndexMap::new(),
            id_seed: b"seed",
            conflicts: crate::manifest::Conflicts::Error,
            unexpected: crate::manifest::Unexpected::Keep,
            as_held: None,
        });
        let c = out.counts;
        prop_assert_eq!(
            (c.added, c.edited, c.deleted, c.rejected),
            (0, 0, 0, 0),
            "{:?}: {:?}",
            t,
            out.changes
        );
        prop_assert!(out.new_value.is_none() && out.conflicts.is_empty());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn untouched_labels_merge_as_nothing(
            dets in prop::collection::vec(detection(), 0..4),
            insts in prop::collection::vec(instance(), 0..3),
            lines in prop::collection::vec(polyline(LabelType::Polylines), 0..3),
            polys in prop::collection::vec(polyline(LabelType::Polygons), 0..3),
            kps in prop::collection::vec(keypoint(), 0..3),
            seg in segmentation(),
            x in -1e12..1e12f64,
        ) {
            merges_as_nothing(LabelType::Detections, &dets)?;
            merges_as_nothing(LabelType::Instances, &insts)?;
            merges_as_nothing(LabelType::Polylines, &lines)?;
            merges_as_nothing(LabelType::Polygons, &polys)?;
            merges_as_nothing(LabelType::Keypoints, &kps)?;
            merges_as_nothing(LabelType::Segmentation, &[seg])?;
            merges_as_nothing(LabelType::Scalar, &[json!(x)])?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn detections(labels in prop::collection::vec(detection(), 0..5)) {
            check(LabelType::Detections, &labels, true)?;
            // Without our extras only the index is lost.
            let no_index: Vec<Value> = labels.iter().cloned().map(|mut l| { l.as_object_mut().map(|o| o.remove("index")); l }).collect();
            check(LabelType::Detections, &no_index, false)?;
        }

        #[test]
        fn instances(labels in prop::collection::vec(instance(), 0..4)) {
            check(LabelType::Instances, &labels, true)?;
            let no_index: Vec<Value> = labels.iter().cloned().map(|mut l| { l.as_object_mut().map(|o| o.remove("index")); l }).collect();
            check(LabelType::Instances, &no_index, false)?;
        }

        #[test]
        fn polylines(labels in prop::collection::vec(polyline(LabelType::Polylines), 0..4)) {
            check(LabelType::Polylines, &labels, true)?;
        }

        #[test]
        fn polygons(labels in prop::collection::vec(polyline(LabelType::Polygons), 0..4)) {
            check(LabelType::Polygons, &labels, true)?;
            let no_index: Vec<Value> = labels.iter().cloned().map(|mut l| { l.as_object_mut().map(|o| o.remove("index")); l }).collect();
            check(LabelType::Polygons, &no_index, false)?;
        }

        #[test]
        fn keypoints(labels in prop::collection::vec(keypoint(), 0..4)) {
            check(LabelType::Keypoints, &labels, true)?;
        }

        #[test]
        fn classification(id in oid(), label in class(), i in index()) {
            let l = with_index(json!({"_id": id, "_cls": "Classification", "label": label}), i);
            check(LabelType::Classification, &[l], true)?;
        }

        #[test]
        fn classifications(ids in prop::collection::vec(oid(), 1..4)) {
            let labels: Vec<Value> = ids.iter().zip(CLASSES).map(|(id, c)| json!({"_id": id, "_cls": "Classification", "label": c})).collect();
            check(LabelType::Classifications, &labels, true)?;
            check(LabelType::Classifications, &labels, false)?;
        }

        #[test]
        fn segmentations(l in segmentation()) {
            check(LabelType::Segmentation, std::slice::from_ref(&l), true)?;
            // Decoding the brushes alone rebuilds the same mask (unless it is all background).
            let mask = Mask::from_ejson(&l["mask"]).unwrap();
            if mask.data.iter().any(|v| *v != 0) {
                check(LabelType::Segmentation, &[l], false)?;
            }
        }

        #[test]
        fn scalars(x in -1e12..1e12f64) {
            check(LabelType::Scalar, &[json!(x)], true)?;
        }
    }

    #[test]
    fn editor_results_and_edits() {
        let s = spec(LabelType::Keypoints);
        // Editor-made keypoints: consecutive equal labels form one keypoint; no `_id`.
        let kp = |id: &str, label: &str, x: f64| {
            json!({"id": id, "from_name": "f", "type": "keypointlabels",
                   "value": {"x": x, "y": 50.0, "width": 0.34, "keypointlabels": [label]}})
        };
        let got = from_results(
            "f",
            &s,
            &[
                kp("a1", "car", 10.0),
                kp("a2", "car", 20.0),
                kp("b1", "bike", 30.0),
            ],
            &[],
            SIZE,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].backend_id, "a1");
        assert!(got[0].label.get("_id").is_none());
        assert_eq!(got[0].label["points"], json!([[0.1, 0.5], [0.2, 0.5]]));

        // Classifications: an unticked choice disappears, a new one has no id.
        let s = spec(LabelType::Classifications);
        let (a, b) = ("aaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb");
        let up = json!({"id": format!("{a}+{b}"), "from_name": "f", "type": "choices", "value": {"choices": ["car", "bike"]}});
        let mut edited = up.clone();
        edited["value"]["choices"] = json!(["bike", "person"]);
        let got = from_results("f", &s, &[edited], &[up], SIZE);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].label["_id"]["$oid"], b);
        assert_eq!(got[0].label["label"], "bike");
        assert!(got[1].label.get("_id").is_none());
        assert_eq!(got[1].backend_id, format!("{a}+{b}/person"));

        // Ids: ours, parts, editor-made.
        assert_eq!(parse_id(a), Some((a.to_string(), 0, 1)));
        assert_eq!(parse_id(&format!("{a}_2_3")), Some((a.to_string(), 2, 3)));
        assert_eq!(parse_id(&format!("{a}_3_3")), None);
        assert_eq!(parse_id("Xk2f9aQp1z"), None);
    }

    #[test]
    fn mask_path_segmentations_are_refused() {
        let l = json!({"_id": {"$oid": "aaaaaaaaaaaaaaaaaaaaaaaa"}, "_cls": "Segmentation", "mask_path": "x.png"});
        let e = to_results("seg", &spec(LabelType::Segmentation), &[l], SIZE).unwrap_err();
        assert!(e.to_string().contains("mask_path"), "{e}");
    }
}
