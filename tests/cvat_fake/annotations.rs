//! Annotations of tasks and jobs: PUT (replace), PATCH `action=create|update|delete`, GET
//! and DELETE, with the real server's validation, echo and normalisation.
//!
//! Writes echo what was sent (raw points, attribute values turned into strings); reads
//! normalise (float points and rotation, every label attribute filled from its default,
//! tracked shapes carrying mutable attributes forward).

use super::http::{Req, Resp, SERVER_ERROR_HTML};
use super::model::{Annotations, Attr, Label, State, Stored};
use serde_json::{Map, Value, json};

const SHAPE_TYPES: &[&str] = &[
    "rectangle",
    "polygon",
    "polyline",
    "points",
    "ellipse",
    "cuboid",
    "mask",
    "skeleton",
];
const REQUIRED: &str = "This field is required.";

/// Which annotations a request addresses.
#[derive(Clone, Copy)]
pub enum Scope {
    Task(u64),
    Job(u64),
}

/// The three kinds of top-level annotation objects.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Tag,
    Shape,
    Track,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Tag, Kind::Shape, Kind::Track];

    fn key(self) -> &'static str {
        match self {
            Kind::Tag => "tags",
            Kind::Shape => "shapes",
            Kind::Track => "tracks",
        }
    }

    fn seq(self) -> &'static str {
        match self {
            Kind::Tag => "tag",
            Kind::Shape => "shape",
            Kind::Track => "track",
        }
    }
}

fn rows(a: &Annotations, k: Kind) -> &Vec<Stored> {
    match k {
        Kind::Tag => &a.tags,
        Kind::Shape => &a.shapes,
        Kind::Track => &a.tracks,
    }
}

fn rows_mut(a: &mut Annotations, k: Kind) -> &mut Vec<Stored> {
    match k {
        Kind::Tag => &mut a.tags,
        Kind::Shape => &mut a.shapes,
        Kind::Track => &mut a.tracks,
    }
}

/// Handles every method on `/api/tasks/{id}/annotations` and `/api/jobs/{id}/annotations`.
pub fn handle(state: &mut State, req: &Req, scope: Scope) -> Resp {
    let (task, job) = match scope {
        Scope::Task(t) if state.task(t).is_some() => (t, None),
        Scope::Task(_) => return Resp::not_found("Task"),
        Scope::Job(j) => match state.jobs.iter().find(|x| x.id == j) {
            Some(x) => (x.task, Some(j)),
            None => return Resp::not_found("Job"),
        },
    };
    match req.method.as_str() {
        "GET" => Resp::json(200, render(state, task, job)),
        "DELETE" => {
            let a = state.annotations.entry(task).or_default();
            let mut held = std::collections::BTreeSet::new();
            for k in Kind::ALL {
                rows_mut(a, k).retain(|r| {
                    let keep = job.is_some_and(|j| r.job != j);
                    if !keep {
                        held.insert(r.job);
                    }
                    keep
                });
            }
            // `JobAnnotation.delete()` moves the dates of a job that held anything.
            for j in held {
                state.touch_job(j);
            }
            Resp::empty(204)
        }
        "PUT" => write(state, req, task, job, None),
        "PATCH" => match req.q("action") {
            Some(a @ ("create" | "update" | "delete")) => {
                let a = a.to_string();
                write(state, req, task, job, Some(&a))
            }
            _ => Resp::list_error("Please specify a correct 'action' for the request"),
        },
        m => Resp::detail(405, &format!("Method \"{m}\" not allowed.")),
    }
}

fn write(state: &mut State, req: &Req, task: u64, job: Option<u64>, action: Option<&str>) -> Resp {
    let body = req.json();
    if let Some(errors) = field_errors(&body) {
        return Resp::json(400, errors);
    }
    let t = state.task(task).expect("exists");
    let owner = state.task_label_owner(t);
    let labels: Vec<Label> = state.labels_of(owner).into_iter().cloned().collect();
    if let Err(msg) = check_labels(&body, &labels) {
        return Resp::list_error(&msg);
    }
    // Work on a copy so that a failed write leaves the data unchanged, as recorded.
    let mut next = state.annotations.get(&task).cloned().unwrap_or_default();
    let mut echo = json!({"version": 0, "tags": [], "shapes": [], "tracks": []});
    let mut incoming = vec![];
    for k in Kind::ALL {
        for obj in body[k.key()].as_array().into_iter().flatten() {
            let Some(target) = target_job(state, task, job, frame_of(k, obj)) else {
                continue; // frames outside the task are dropped silently
            };
            incoming.push((k, target, obj.clone()));
        }
    }
    // The jobs whose dates the write moves (cvat/apps/dataset_manager/task.py,
    // `JobAnnotation.create/update/delete/put`): every job given a non-empty part of the
    // request, even one naming ids it does not hold (delete) or changing nothing; for a PUT
    // also every job that held anything before, and none when a job held nothing and gets
    // nothing.
    let mut touched: std::collections::BTreeSet<u64> =
        incoming.iter().map(|(_, target, _)| *target).collect();
    if action.is_none() {
        if conflicting_ids(&next, &incoming) {
            return Resp::html(500, SERVER_ERROR_HTML);
        }
        for k in Kind::ALL {
            rows_mut(&mut next, k).retain(|r| {
                let keep = job.is_some_and(|j| r.job != j);
                if !keep {
                    touched.insert(r.job);
                }
                keep
            });
        }
    }
    for (k, target, obj) in incoming {
        let given = obj["id"].as_u64();
        let id = match (action, given) {
            (Some("create"), _) | (_, None) => state.seq.next(k.seq()),
            (_, Some(id)) => id,
        };
        // Built before the old row goes: an updated track keeps its shapes' ids.
        let mut body = build(state, k, &obj, id, &next);
        if matches!(action, Some("update" | "delete")) {
            rows_mut(&mut next, k).retain(|r| r.id != id);
        }
        if action == Some("delete") && k == Kind::Shape && obj.get("elements").is_none() {
            // The delete echo is the request re-serialised: no `elements` unless sent.
            body.as_object_mut().expect("object").remove("elements");
        }
        if action != Some("delete") {
            rows_mut(&mut next, k).push(Stored {
                id,
                job: target,
                body: body.clone(),
            });
        }
        echo[k.key()].as_array_mut().expect("array").push(body);
    }
    state.annotations.insert(task, next);
    for j in touched {
        state.touch_job(j);
    }
    Resp::json(200, echo)
}

fn frame_of(k: Kind, obj: &Value) -> u64 {
    match k {
        Kind::Track => obj["shapes"][0]["frame"]
            .as_u64()
            .or(obj["frame"].as_u64())
            .unwrap_or(0),
        _ => obj["frame"].as_u64().unwrap_or(0),
    }
}

/// The job a written object lands in: the addressed job, or the one holding its frame.
fn target_job(state: &State, task: u64, job: Option<u64>, frame: u64) -> Option<u64> {
    if let Some(j) = job {
        // Job-level writes do not check that the frame belongs to the job.
        return Some(j);
    }
    state
        .task_jobs(task)
        .into_iter()
        .find(|j| (j.start as u64..=j.stop as u64).contains(&frame))
        .map(|j| j.id)
}

/// A PUT that re-inserts an id still held by another job hits the real server's
/// IntegrityError (the jobs are rewritten one after another).
fn conflicting_ids(current: &Annotations, incoming: &[(Kind, u64, Value)]) -> bool {
    incoming.iter().any(|(k, target, obj)| {
        obj["id"].as_u64().is_some_and(|id| {
            rows(current, *k)
                .iter()
                .any(|r| r.id == id && r.job != *target)
        })
    })
}

/// Field validation as the serializers did it; `None` when every object is well-formed.
fn field_errors(body: &Value) -> Option<Value> {
    let mut out = Map::new();
    for k in Kind::ALL {
        let errs: Vec<Value> = body[k.key()]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| match k {
                Kind::Tag => required(o, &["frame", "label_id"]),
                Kind::Shape => shape_errors(o, true),
                Kind::Track => track_errors(o),
            })
            .collect();
        if errs
            .iter()
            .any(|e| e.as_object().is_some_and(|m| !m.is_empty()))
        {
            out.insert(k.key().into(), json!(errs));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn required(o: &Value, fields: &[&str]) -> Value {
    let mut m = Map::new();
    for f in fields {
        if o.get(*f).is_none_or(Value::is_null) {
            m.insert((*f).into(), json!([REQUIRED]));
        }
    }
    Value::Object(m)
}

fn shape_errors(o: &Value, with_label: bool) -> Value {
    let fields: &[&str] = if with_label {
        &["type", "frame", "label_id"]
    } else {
        &["type", "frame"]
    };
    let mut m = required(o, fields).as_object().cloned().unwrap_or_default();
    if let Some(t) = o["type"].as_str() {
        if !SHAPE_TYPES.contains(&t) {
            m.insert(
                "type".into(),
                json!([format!("\"{t}\" is not a valid choice.")]),
            );
        }
    }
    if let Some(points) = o["points"].as_array() {
        let bad: Map<String, Value> = points
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_number())
            .map(|(i, _)| {
                (
                    i.to_string(),
                    json!("[ErrorDetail(string='Value must be a float or an integer', code='invalid')]"),
                )
            })
            .collect();
        if !bad.is_empty() {
            m.insert("points".into(), Value::Object(bad));
        }
    }
    if let Some(r) = o["rotation"].as_f64() {
        if r > 360.0 {
            m.insert(
                "rotation".into(),
                json!(["Ensure this value is less than or equal to 360."]),
            );
        } else if r < 0.0 {
            m.insert(
                "rotation".into(),
                json!(["Ensure this value is greater than or equal to 0."]),
            );
        }
    }
    Value::Object(m)
}

fn track_errors(o: &Value) -> Value {
    let mut m = required(o, &["frame", "label_id"])
        .as_object()
        .cloned()
        .unwrap_or_default();
    let shapes: Vec<Value> = o["shapes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| shape_errors(s, false))
        .collect();
    if shapes
        .iter()
        .any(|e| e.as_object().is_some_and(|m| !m.is_empty()))
    {
        m.insert("shapes".into(), json!(shapes));
    }
    Value::Object(m)
}

/// Label and spec ids must exist; tracks take immutable attributes, tracked shapes mutable.
fn check_labels(body: &Value, labels: &[Label]) -> Result<(), String> {
    for o in body["tags"].as_array().into_iter().flatten() {
        check_shape(o, labels)?;
    }
    for o in body["shapes"].as_array().into_iter().flatten() {
        check_shape(o, labels)?;
    }
    for o in body["tracks"].as_array().into_iter().flatten() {
        let l = find_label(o, labels)?;
        check_specs(o, l, Some(false))?;
        for s in o["shapes"].as_array().into_iter().flatten() {
            check_specs(s, l, Some(true))?;
        }
    }
    Ok(())
}

fn find_label<'a>(o: &Value, labels: &'a [Label]) -> Result<&'a Label, String> {
    let id = o["label_id"].as_u64().unwrap_or(0);
    labels
        .iter()
        .find(|l| l.id == id)
        .ok_or(format!("label_id `{id}` is invalid"))
}

fn check_specs(o: &Value, l: &Label, mutable: Option<bool>) -> Result<(), String> {
    for a in o["attributes"].as_array().into_iter().flatten() {
        let sid = a["spec_id"].as_u64().unwrap_or(0);
        let ok = l
            .attrs
            .iter()
            .any(|x| x.id == sid && mutable.is_none_or(|m| x.mutable == m));
        if !ok {
            return Err(format!("spec_id `{sid}` is invalid"));
        }
    }
    Ok(())
}

fn check_shape(o: &Value, labels: &[Label]) -> Result<(), String> {
    let l = find_label(o, labels)?;
    check_specs(o, l, None)?;
    for e in o["elements"].as_array().into_iter().flatten() {
        check_shape(e, labels)?;
    }
    Ok(())
}

/// Attribute values are stored as strings; JSON booleans take Python's spelling.
fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

fn attrs_echo(o: &Value) -> Value {
    o["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| json!({"spec_id": a["spec_id"], "value": value_string(&a["value"])}))
        .collect::<Vec<_>>()
        .into()
}

/// Rotation as echoed: a float when sent, the integer default when not.
fn rotation_echo(o: &Value) -> Value {
    match o["rotation"].as_f64() {
        Some(r) => json!(r),
        None => json!(0),
    }
}

/// The echo (and stored) form of one written object with its id.
fn build(state: &mut State, k: Kind, o: &Value, id: u64, current: &Annotations) -> Value {
    match k {
        Kind::Tag => json!({
            "id": id, "frame": o["frame"], "label_id": o["label_id"],
            "group": o.get("group").cloned().unwrap_or(Value::Null),
            "source": o.get("source").cloned().unwrap_or(json!("manual")),
            "attributes": attrs_echo(o),
        }),
        Kind::Shape => build_shape(state, o, id),
        Kind::Track => build_track(state, o, id, current),
    }
}

fn build_shape(state: &mut State, o: &Value, id: u64) -> Value {
    let elements: Vec<Value> = o["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let eid = e["id"].as_u64().unwrap_or_else(|| state.seq.next("shape"));
            let mut el = build_shape(state, e, eid);
            // Skeleton elements carry no `elements` of their own.
            el.as_object_mut().expect("object").remove("elements");
            el
        })
        .collect();
    json!({
        "type": o["type"],
        "occluded": o.get("occluded").cloned().unwrap_or(json!(false)),
        "outside": o.get("outside").cloned().unwrap_or(json!(false)),
        "z_order": o.get("z_order").cloned().unwrap_or(json!(0)),
        "rotation": rotation_echo(o),
        "points": o.get("points").cloned().unwrap_or(json!([])),
        "id": id, "frame": o["frame"], "label_id": o["label_id"],
        "group": o.get("group").cloned().unwrap_or(Value::Null),
        "source": o.get("source").cloned().unwrap_or(json!("manual")),
        "attributes": attrs_echo(o),
        "elements": elements,
    })
}

fn build_track(state: &mut State, o: &Value, id: u64, current: &Annotations) -> Value {
    let known: Vec<u64> = current
        .tracks
        .iter()
        .filter(|r| r.id == id)
        .flat_map(|r| r.body["shapes"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["id"].as_u64())
        .collect();
    let shapes: Vec<Value> = o["shapes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let sid = s["id"]
                .as_u64()
                .filter(|i| known.contains(i))
                .unwrap_or_else(|| state.seq.next("tracked_shape"));
            // `keyframe` is not a field of the server's tracked shape: dropped.
            json!({
                "type": s["type"],
                "occluded": s.get("occluded").cloned().unwrap_or(json!(false)),
                "outside": s.get("outside").cloned().unwrap_or(json!(false)),
                "z_order": s.get("z_order").cloned().unwrap_or(json!(0)),
                "rotation": rotation_echo(s),
                "points": s.get("points").cloned().unwrap_or(json!([])),
                "id": sid, "frame": s["frame"], "attributes": attrs_echo(s),
            })
        })
        .collect();
    // The track's frame is forced to its first shape's frame.
    let frame = shapes
        .first()
        .map(|s| s["frame"].clone())
        .unwrap_or(o["frame"].clone());
    json!({
        "id": id, "frame": frame, "label_id": o["label_id"],
        "group": o.get("group").cloned().unwrap_or(Value::Null),
        "source": o.get("source").cloned().unwrap_or(json!("manual")),
        "attributes": attrs_echo(o), "shapes": shapes, "elements": [],
    })
}

/// The GET form of a task's (or one job's) annotations: by job, then by id.
fn render(state: &State, task: u64, job: Option<u64>) -> Value {
    let empty = Annotations::default();
    let a = state.annotations.get(&task).unwrap_or(&empty);
    let t = state.task(task).expect("exists");
    let labels: Vec<&Label> = state.labels_of(state.task_label_owner(t));
    let mut out = json!({"version": 0});
    for k in Kind::ALL {
        let mut list: Vec<&Stored> = rows(a, k)
            .iter()
            .filter(|r| job.is_none_or(|j| r.job == j))
            .collect();
        list.sort_by_key(|r| (r.job, r.id));
        let items: Vec<Value> = list
            .iter()
            .map(|r| match k {
                Kind::Tag => tag_get(&r.body, &labels),
                Kind::Shape => shape_get(&r.body, &labels),
                Kind::Track => track_get(&r.body, &labels),
            })
            .collect();
        out[k.key()] = json!(items);
    }
    out
}

fn label_attrs<'a>(labels: &[&'a Label], o: &Value) -> Vec<&'a Attr> {
    let id = o["label_id"].as_u64().unwrap_or(0);
    labels
        .iter()
        .find(|l| l.id == id)
        .map(|l| l.attrs.iter().collect())
        .unwrap_or_default()
}

/// Stored attributes first, then every other spec of `specs` with its fallback value.
fn filled(o: &Value, specs: &[&Attr], fallback: impl Fn(&Attr) -> String) -> Value {
    let mut out: Vec<Value> = o["attributes"].as_array().cloned().unwrap_or_default();
    for s in specs {
        if !out.iter().any(|a| a["spec_id"].as_u64() == Some(s.id)) {
            out.push(json!({"spec_id": s.id, "value": fallback(s)}));
        }
    }
    out.into()
}

fn floats(v: &Value) -> Value {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| json!(p.as_f64().unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .into()
}

fn tag_get(b: &Value, labels: &[&Label]) -> Value {
    let specs = label_attrs(labels, b);
    json!({
        "id": b["id"], "label_id": b["label_id"], "frame": b["frame"], "group": b["group"],
        "source": b["source"], "attributes": filled(b, &specs, |s| s.default_value.clone()),
    })
}

fn shape_get(b: &Value, labels: &[&Label]) -> Value {
    let specs = label_attrs(labels, b);
    let mut out = json!({
        "id": b["id"], "label_id": b["label_id"], "type": b["type"], "frame": b["frame"],
        "group": b["group"], "source": b["source"], "occluded": b["occluded"],
        "outside": b["outside"], "z_order": b["z_order"],
        "rotation": b["rotation"].as_f64().unwrap_or(0.0), "points": floats(&b["points"]),
        "attributes": filled(b, &specs, |s| s.default_value.clone()),
    });
    if let Some(elements) = b["elements"].as_array() {
        out["elements"] = elements.iter().map(|e| shape_get(e, labels)).collect();
    }
    out
}

fn track_get(b: &Value, labels: &[&Label]) -> Value {
    let specs = label_attrs(labels, b);
    let immutable: Vec<&Attr> = specs.iter().copied().filter(|s| !s.mutable).collect();
    let mutable: Vec<&Attr> = specs.iter().copied().filter(|s| s.mutable).collect();
    let mut carried: Map<String, Value> = Map::new();
    let shapes: Vec<Value> = b["shapes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            // Mutable attributes carry forward from the last keyframe that set them.
            let attrs = filled(s, &mutable, |a| {
                carried
                    .get(&a.id.to_string())
                    .and_then(Value::as_str)
                    .map(String::from)
                    .unwrap_or_else(|| a.default_value.clone())
            });
            for a in attrs.as_array().into_iter().flatten() {
                carried.insert(a["spec_id"].to_string(), a["value"].clone());
            }
            json!({
                "id": s["id"], "type": s["type"], "frame": s["frame"],
                "occluded": s["occluded"], "outside": s["outside"], "z_order": s["z_order"],
                "rotation": s["rotation"].as_f64().unwrap_or(0.0), "points": floats(&s["points"]),
                "attributes": attrs,
            })
        })
        .collect();
    json!({
        "id": b["id"], "label_id": b["label_id"], "frame": b["frame"], "group": b["group"],
        "source": b["source"], "shapes": shapes,
        "attributes": filled(b, &immutable, |s| s.default_value.clone()), "elements": [],
    })
}
