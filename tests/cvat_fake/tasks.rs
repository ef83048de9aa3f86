//! Tasks, data uploads (multipart, Upload-* headers, TUS), background requests, meta,
//! frames and jobs.

use super::http::{
    Req, Resp, SERVER_ERROR_HTML, json_logic_filter, multipart, paginate, sort_items,
};
use super::media::{self, Media};
use super::model::{BgRequest, Frame, Job, LabelOwner, State, Task, TaskData, Tus, Upload};
use super::projects::{create_label, patch_labels, validate_labels};
use base64::Engine;
use serde_json::{Map, Value, json};

/// Chunk sizes the real server chose for these tiny test media.
const IMAGE_CHUNK: u64 = 72;
const VIDEO_CHUNK: u64 = 36;
/// CVAT's default overlap for video tasks.
const VIDEO_OVERLAP: u64 = 5;
const TUS_MAX: &str = "26843545600";

/// `POST /api/tasks`.
pub fn create_task(state: &mut State, req: &Req, caller: u64) -> Resp {
    let body = req.json();
    let labels = body["labels"].as_array().cloned().unwrap_or_default();
    let project = body["project_id"].as_u64();
    match (project, labels.is_empty()) {
        (None, true) => return Resp::list_error("Label set or project_id must be present"),
        (Some(_), false) => {
            return Resp::list_error("Project must have only one of Label set or project_id");
        }
        _ => {}
    }
    if let Some(p) = project {
        if !state.projects.iter().any(|x| x.id == p) {
            return Resp::json(
                400,
                json!({"project_id": [format!("Invalid pk \"{p}\" - object does not exist.")]}),
            );
        }
    }
    if let Err(e) = validate_labels(&labels) {
        return e;
    }
    let id = state.seq.next("task");
    let stamp = state.now();
    let assignee = body["assignee_id"].as_u64();
    state.tasks.push(Task {
        id,
        name: body["name"].as_str().unwrap_or_default().into(),
        project,
        owner: caller,
        assignee,
        assignee_updated: assignee.map(|_| stamp.clone()),
        bug_tracker: body["bug_tracker"].as_str().unwrap_or_default().into(),
        subset: body["subset"].as_str().unwrap_or_default().into(),
        segment_size: body["segment_size"].as_u64().unwrap_or(0),
        overlap: body["overlap"].as_u64(),
        created: stamp.clone(),
        updated: stamp.clone(),
        data: None,
        uploads: vec![],
    });
    for l in &labels {
        create_label(state, LabelOwner::Task(id), None, l);
    }
    if let Some(p) = project {
        state.touch_project(p, &stamp);
    }
    let url = format!("{}/api/tasks/{id}", req.base);
    Resp::json(201, task_json(state, &req.base, id)).with("location", &url)
}

fn job_done(j: &Job) -> bool {
    j.stage == "acceptance" && j.state == "completed"
}

/// A task's status, from its jobs: `completed` once every job is accepted.
fn task_status(state: &State, id: u64) -> &'static str {
    let jobs = state.task_jobs(id);
    if !jobs.is_empty() && jobs.iter().all(|j| job_done(j)) {
        "completed"
    } else {
        "annotation"
    }
}

/// A task as the API shows it; the data fields appear once data was attached.
pub fn task_json(state: &State, base: &str, id: u64) -> Value {
    let t = state.task(id).expect("task exists");
    let jobs = state.task_jobs(id);
    let completed = jobs.iter().filter(|j| job_done(j)).count();
    let validation = jobs.iter().filter(|j| j.stage == "validation").count();
    let status = task_status(state, id);
    let mode = match &t.data {
        Some(d) if d.size > 0 && d.video => "interpolation",
        Some(d) if d.size > 0 => "annotation",
        _ => "",
    };
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    put("url", json!(format!("{base}/api/tasks/{id}")));
    put("id", json!(id));
    put("name", json!(t.name));
    put("project_id", json!(t.project));
    put("mode", json!(mode));
    put("owner", state.user_brief(base, Some(t.owner)));
    put("assignee", state.user_brief(base, t.assignee));
    put("bug_tracker", json!(t.bug_tracker));
    put("created_date", json!(t.created));
    put("updated_date", json!(t.updated));
    put("overlap", json!(t.overlap));
    put("segment_size", json!(t.segment_size));
    put("status", json!(status));
    if let Some(d) = &t.data {
        let kind = if d.video { "video" } else { "imageset" };
        put("data_chunk_size", json!(d.chunk_size));
        put("data_compressed_chunk_type", json!(kind));
        put("guide_id", Value::Null);
        put("data_original_chunk_type", json!(kind));
        put("size", json!(d.size));
        put("image_quality", json!(d.image_quality));
        put("data", json!(id));
    } else {
        put("guide_id", Value::Null);
    }
    put("dimension", json!("2d"));
    put("subset", json!(t.subset));
    put("organization", Value::Null);
    put("target_storage", Value::Null);
    put("source_storage", Value::Null);
    put(
        "jobs",
        json!({"count": jobs.len(), "completed": completed, "validation": validation,
               "url": format!("{base}/api/jobs?task_id={id}")}),
    );
    put(
        "labels",
        json!({"url": format!("{base}/api/labels?task_id={id}")}),
    );
    put("assignee_updated_date", json!(t.assignee_updated));
    put("validation_mode", Value::Null);
    Value::Object(m)
}

/// `GET /api/tasks` with the recorded filters, `search`, JSON-logic `filter` and `sort`.
pub fn list_tasks(state: &State, req: &Req) -> Resp {
    let search = req.q("search").map(str::to_lowercase);
    let exact = |t: &Value, param: &str, field: &str| {
        req.q(param).is_none_or(|v| match &t[field] {
            Value::String(s) => s == v,
            other => other.as_u64().is_some_and(|n| v.parse() == Ok(n)),
        })
    };
    let mut items: Vec<Value> = state
        .tasks
        .iter()
        .map(|t| task_json(state, &req.base, t.id))
        .filter(|t| {
            exact(t, "name", "name")
                && exact(t, "project_id", "project_id")
                && exact(t, "subset", "subset")
                && exact(t, "tracker_link", "bug_tracker")
                && exact(t, "status", "status")
                && exact(t, "mode", "mode")
        })
        .filter(|t| {
            search.as_ref().is_none_or(|s| {
                [
                    &t["name"],
                    &t["owner"]["username"],
                    &t["status"],
                    &t["subset"],
                ]
                .iter()
                .any(|f| f.as_str().unwrap_or_default().to_lowercase().contains(s))
            })
        })
        .collect();
    sort_items(req, &mut items, true);
    match json_logic_filter(req, items, task_field) {
        Ok(items) => paginate(req, "tasks", items),
        Err(e) => e,
    }
}

fn task_field(t: &Value, name: &str) -> Option<Value> {
    match name {
        "name" | "project_id" | "subset" | "status" | "mode" | "dimension" | "id" => {
            Some(t[name].clone())
        }
        "tracker_link" => Some(t["bug_tracker"].clone()),
        "owner" | "assignee" => Some(t[name]["username"].clone()),
        _ => None,
    }
}

/// `GET|PATCH|DELETE /api/tasks/{id}` (PUT is not allowed).
pub fn one_task(state: &mut State, req: &Req, id: u64) -> Resp {
    if state.task(id).is_none() {
        return Resp::not_found("Task");
    }
    match req.method.as_str() {
        "GET" => Resp::json(200, task_json(state, &req.base, id)),
        "PATCH" => patch_task(state, req, id),
        "DELETE" => {
            delete_task(state, id);
            Resp::empty(204)
        }
        m => Resp::detail(405, &format!("Method \"{m}\" not allowed.")),
    }
}

fn patch_task(state: &mut State, req: &Req, id: u64) -> Resp {
    let body = req.json();
    // segment_size and overlap are write-once; the server answers 403 for them.
    if body.get("segment_size").is_some() || body.get("overlap").is_some() {
        return Resp::detail(403, "Attempted to update an unknown field");
    }
    if let Some(labels) = body["labels"].as_array() {
        let owner = state.task_label_owner(state.task(id).expect("exists"));
        if let Err(e) = patch_labels(state, owner, labels) {
            return e;
        }
    }
    let stamp = state.now();
    let t = state.task_mut(id).expect("exists");
    let before = t.project;
    for (k, v) in body.as_object().into_iter().flatten() {
        match (k.as_str(), v) {
            ("name", Value::String(s)) => t.name = s.clone(),
            ("subset", Value::String(s)) => t.subset = s.clone(),
            ("bug_tracker", Value::String(s)) => t.bug_tracker = s.clone(),
            ("assignee_id", v) => {
                t.assignee = v.as_u64();
                t.assignee_updated = Some(stamp.clone());
            }
            ("project_id", v) => t.project = v.as_u64(),
            _ => {}
        }
    }
    t.updated = stamp.clone();
    // `TaskViewSet.perform_update` touches the project the task was in and the one it is in.
    let after = t.project;
    for p in before.into_iter().chain(after) {
        state.touch_project(p, &stamp);
    }
    Resp::json(200, task_json(state, &req.base, id))
}

/// Removes a task with its jobs, own labels, annotations and requests.
pub fn delete_task(state: &mut State, id: u64) {
    // signals.py `__delete_task_handler` touches the task's project.
    if let Some(p) = state.task(id).and_then(|t| t.project) {
        state.touch_project(p, &state.now());
    }
    state.tasks.retain(|t| t.id != id);
    state.jobs.retain(|j| j.task != id);
    state.labels.retain(|l| l.owner != LabelOwner::Task(id));
    state.annotations.remove(&id);
    state.requests.remove(&id);
    state.tus.retain(|_, u| u.task != id);
}

/// Parameters of a data upload, from multipart fields or a JSON body.
#[derive(Default)]
struct DataParams {
    image_quality: Option<u64>,
    chunk_size: Option<u64>,
    sorting: Option<String>,
    order: Option<Vec<String>>,
    /// Video only: `start_frame`, `stop_frame` and the step of `frame_filter` (`step=N`).
    start_frame: Option<u64>,
    stop_frame: Option<u64>,
    frame_filter: Option<String>,
}

impl DataParams {
    /// The step of a `step=N` frame filter (1 without one).
    fn step(&self) -> u64 {
        self.frame_filter
            .as_deref()
            .and_then(|f| f.split(',').find_map(|s| s.strip_prefix("step=")))
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1)
    }
}

fn params_from_parts(parts: &[super::http::Part]) -> DataParams {
    let mut p = DataParams::default();
    for part in parts.iter().filter(|p| p.filename.is_none()) {
        let v = String::from_utf8_lossy(&part.data).to_string();
        match part.name.as_str() {
            "image_quality" => p.image_quality = v.parse().ok(),
            "chunk_size" => p.chunk_size = v.parse().ok(),
            "sorting_method" => p.sorting = Some(v),
            "start_frame" => p.start_frame = v.parse().ok(),
            "stop_frame" => p.stop_frame = v.parse().ok(),
            "frame_filter" => p.frame_filter = Some(v),
            "upload_file_order" | "upload_file_order[]" => {
                p.order.get_or_insert_with(Vec::new).push(v)
            }
            _ => {}
        }
    }
    p
}

fn params_from_json(body: &Value) -> DataParams {
    DataParams {
        image_quality: body["image_quality"]
            .as_u64()
            .or_else(|| body["image_quality"].as_str().and_then(|s| s.parse().ok())),
        chunk_size: body["chunk_size"].as_u64(),
        sorting: body["sorting_method"].as_str().map(String::from),
        order: body["upload_file_order"].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        }),
        start_frame: body["start_frame"].as_u64(),
        stop_frame: body["stop_frame"].as_u64(),
        frame_filter: body["frame_filter"].as_str().map(String::from),
    }
}

fn files_from_parts(parts: Vec<super::http::Part>) -> Vec<Upload> {
    parts
        .into_iter()
        .filter_map(|p| {
            p.filename.map(|name| Upload {
                name,
                bytes: p.data,
            })
        })
        .collect()
}

/// `POST /api/tasks/{id}/data`: one multipart request, or the Upload-Start / -Multiple /
/// -Finish sequence; TUS creation when `Tus-Resumable` is sent.
pub fn post_data(state: &mut State, req: &Req, id: u64) -> Resp {
    if state.task(id).is_none() {
        return Resp::not_found("Task");
    }
    if req.header("tus-resumable").is_some() {
        return tus_create(state, req, id);
    }
    if state
        .task(id)
        .and_then(|t| t.data.as_ref())
        .is_some_and(|d| d.size > 0)
    {
        return Resp::json(400, json!("Adding more data is not supported"));
    }
    let flag = |h: &str| {
        req.header(h)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    if flag("upload-start") {
        return Resp::empty(202);
    }
    let (params, files) = if req.is_multipart() {
        let parts = multipart(req);
        (params_from_parts(&parts), files_from_parts(parts))
    } else {
        (params_from_json(&req.json()), vec![])
    };
    let task = state.task_mut(id).expect("exists");
    task.uploads.extend(files);
    if flag("upload-multiple") {
        return Resp::empty(200);
    }
    process_data(state, id, params)
}

fn process_data(state: &mut State, id: u64, params: DataParams) -> Resp {
    let task = state.task(id).expect("exists").clone();
    let mut files = task.uploads.clone();
    if let Some(order) = &params.order {
        if let Err(e) = check_order(&files, order) {
            return e;
        }
    }
    match (params.sorting.as_deref(), &params.order) {
        (Some("predefined"), Some(order)) => {
            files.sort_by_key(|f| order.iter().position(|n| *n == f.name))
        }
        (Some("predefined"), None) => {}
        // CVAT's default sorting is lexicographical.
        _ => files.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    let outcome = decode_all(id, &files);
    let quality = params.image_quality.unwrap_or(70);
    let stamp = state.now();
    let data = match &outcome {
        Ok((frames, video)) => TaskData {
            size: if *video {
                video_size(frames.first().map(|f| f.1).unwrap_or(0), &params)
            } else {
                frames.len() as u32
            },
            start_frame: if *video {
                params.start_frame.unwrap_or(0)
            } else {
                0
            },
            step: if *video { params.step() } else { 1 },
            image_quality: quality,
            chunk_size: Some(params.chunk_size.unwrap_or(if *video {
                VIDEO_CHUNK
            } else {
                IMAGE_CHUNK
            })),
            video: *video,
            frames: frames.iter().map(|f| f.0.clone()).collect(),
            updated: Some(stamp.clone()),
        },
        Err(_) => TaskData {
            size: 0,
            start_frame: 0,
            step: 1,
            image_quality: quality,
            chunk_size: None,
            video: false,
            frames: vec![],
            updated: None,
        },
    };
    let video = data.video;
    let size = data.size;
    let t = state.task_mut(id).expect("exists");
    t.data = Some(data);
    t.updated = stamp.clone();
    if outcome.is_ok() {
        if t.segment_size == 0 {
            t.segment_size = size as u64;
        }
        if t.overlap.is_none() {
            t.overlap = Some(if video { VIDEO_OVERLAP } else { 0 });
        }
        make_jobs(state, id);
    }
    let task = state.task(id).expect("exists");
    state.requests.insert(
        id,
        BgRequest {
            task: id,
            project: task.project,
            owner: task.owner,
            failure: outcome.err(),
            polls: 0,
            created: stamp,
            finished: state.now(),
        },
    );
    Resp::json(202, json!({ "rq_id": format!("create:task-{id}") }))
}

/// The frames of a video a task holds: every `step`th from `start_frame` to `stop_frame`
/// (inclusive, clamped to the video).
fn video_size(frames: u32, params: &DataParams) -> u32 {
    let last = u64::from(frames.saturating_sub(1));
    let start = params.start_frame.unwrap_or(0);
    let stop = params.stop_frame.unwrap_or(last).min(last);
    if frames == 0 || start > stop {
        return 0;
    }
    ((stop - start) / params.step() + 1) as u32
}

fn check_order(files: &[Upload], order: &[String]) -> Result<(), Resp> {
    let mut missing: Vec<&String> = order
        .iter()
        .filter(|n| !files.iter().any(|f| &f.name == *n))
        .collect();
    let mut extra: Vec<&String> = files
        .iter()
        .map(|f| &f.name)
        .filter(|n| !order.contains(n))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    missing.sort();
    extra.sort();
    let list: Vec<String> = missing
        .iter()
        .map(|n| format!("{n} (missing)"))
        .chain(extra.iter().map(|n| format!("{n} (extra)")))
        .collect();
    Err(Resp::list_error(&format!(
        "Uploaded files do not match the 'upload_file_order' field contents. Please check the uploaded data and the list of uploaded files. Mismatching files: {}",
        list.join(", ")
    )))
}

/// Decodes every file; frames with (frame, frame count) or the failure message.
type Decoded = (Vec<(Frame, u32)>, bool);

fn decode_all(task: u64, files: &[Upload]) -> Result<Decoded, String> {
    let mut frames = vec![];
    let mut video = false;
    for f in files {
        let frame = |width, height| Frame {
            name: f.name.clone(),
            width,
            height,
            bytes: f.bytes.clone(),
        };
        match media::probe(&f.name, &f.bytes) {
            Media::Image { width, height } => frames.push((frame(width, height), 1)),
            Media::Video {
                width,
                height,
                frames: n,
            } => {
                video = true;
                frames.push((frame(width, height), n));
            }
            Media::BrokenImage => {
                return Err(format!(
                    "PIL.UnidentifiedImageError: cannot identify image file '<cvat data dir>/{task}/raw/{}'\n",
                    f.name
                ));
            }
            Media::Other => {}
        }
    }
    if frames.is_empty() {
        return Err("ValueError: No media data found\n".into());
    }
    Ok((frames, video))
}

/// Splits the task's frames into jobs of `segment_size` (minus the overlap).
fn make_jobs(state: &mut State, id: u64) {
    let t = state.task(id).expect("exists").clone();
    let size = t.data.as_ref().map(|d| d.size).unwrap_or(0) as u64;
    let seg = t.segment_size.max(1);
    let overlap = t.overlap.unwrap_or(0);
    let step = if overlap < seg { seg - overlap } else { seg };
    let mut start = 0;
    while start < size {
        let stop = (start + seg).min(size) - 1;
        let jid = state.seq.next("job");
        let stamp = state.now();
        state.jobs.push(Job {
            id: jid,
            task: id,
            start: start as u32,
            stop: stop as u32,
            stage: "annotation".into(),
            state: "new".into(),
            assignee: None,
            assignee_updated: None,
            created: stamp.clone(),
            updated: stamp,
        });
        if stop + 1 >= size {
            break;
        }
        start += step;
    }
}

fn tus_headers(resp: Resp) -> Resp {
    resp.with("tus-resumable", "1.0.0")
        .with("tus-version", "1.0.0")
        .with("tus-extension", "")
        .with("tus-max-size", TUS_MAX)
}

fn tus_create(state: &mut State, req: &Req, id: u64) -> Resp {
    // Without Origin the real server crashed while building the Location.
    if req.header("origin").is_none() {
        return Resp::html(500, SERVER_ERROR_HTML);
    }
    let length: usize = req
        .header("upload-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let name = req
        .header("upload-metadata")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.trim().split_once(' '))
        .find(|(k, _)| *k == "filename")
        .and_then(|(_, v)| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .map(|b| String::from_utf8_lossy(&b).to_string())
        .unwrap_or_default();
    let key = state.new_key();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &key[0..8],
        &key[8..12],
        &key[12..16],
        &key[16..20],
        &key[20..32]
    );
    // The file joins the upload list at once: a later mismatch lists it as extra.
    let task = state.task_mut(id).expect("exists");
    task.uploads.push(Upload {
        name: name.clone(),
        bytes: vec![],
    });
    state.tus.insert(
        uuid.clone(),
        Tus {
            task: id,
            name: name.clone(),
            length,
            bytes: vec![],
        },
    );
    // Without the trailing slash the real Location lost its `data/` segment.
    let sub = if req.trailing_slash { "data/" } else { "" };
    let location = format!("{}/api/tasks/{id}/{sub}{uuid}", req.base);
    tus_headers(Resp::empty(201))
        .with("location", &location)
        .with("upload-filename", &name)
}

/// `PATCH|HEAD` on a TUS upload.
pub fn tus_chunk(state: &mut State, req: &Req, uuid: &str) -> Resp {
    let Some(up) = state.tus.get_mut(uuid) else {
        return tus_headers(Resp::empty(404));
    };
    let complete = up.bytes.len() >= up.length;
    if req.method == "HEAD" {
        if complete {
            return tus_headers(Resp::empty(404));
        }
        let (off, len) = (up.bytes.len().to_string(), up.length.to_string());
        return tus_headers(Resp::empty(200))
            .with("upload-offset", &off)
            .with("upload-length", &len);
    }
    let offset: Option<usize> = req.header("upload-offset").and_then(|v| v.parse().ok());
    if offset != Some(up.bytes.len()) || complete {
        return tus_headers(Resp::empty(409));
    }
    up.bytes.extend_from_slice(&req.body);
    let (off, name, task) = (up.bytes.len().to_string(), up.name.clone(), up.task);
    if up.bytes.len() >= up.length {
        let bytes = up.bytes.clone();
        if let Some(f) = state
            .task_mut(task)
            .and_then(|t| t.uploads.iter_mut().find(|f| f.name == name))
        {
            f.bytes = bytes;
        }
    }
    tus_headers(Resp::empty(204))
        .with("upload-offset", &off)
        .with("upload-filename", &name)
}

/// `GET /api/requests/<rq_id>`: `started` on the first poll, then the outcome.
pub fn request_status(state: &mut State, rq: &str) -> Resp {
    let task = rq
        .strip_prefix("create:task-")
        .and_then(|n| n.parse::<u64>().ok());
    let Some(r) = task.and_then(|t| state.requests.get_mut(&t)) else {
        return Resp::html(404, "There is no request with specified id");
    };
    r.polls += 1;
    let owner = r.owner;
    let r = r.clone();
    let username = state
        .user(owner)
        .map(|u| u.username.clone())
        .unwrap_or_default();
    let first = r.polls == 1;
    let (status, message, finished, expiry) = match (&r.failure, first) {
        (_, true) => ("started", String::new(), Value::Null, Value::Null),
        (None, false) => (
            "finished",
            String::new(),
            json!(r.finished),
            json!(state.later(500)),
        ),
        (Some(m), false) => (
            "failed",
            m.clone(),
            json!(r.finished),
            json!(state.later(2_592_000)),
        ),
    };
    Resp::json(
        200,
        json!({
            "status": status, "message": message, "id": rq,
            "operation": {"type": "create:task", "target": "task", "project_id": r.project,
                          "task_id": r.task, "job_id": null, "format": null, "function_id": null},
            "progress": 0.0, "created_date": r.created, "started_date": r.created,
            "finished_date": finished, "expiry_date": expiry,
            "owner": {"id": owner, "username": username}, "result_url": null, "result_id": null,
        }),
    )
}

/// `GET /api/tasks/{id}/data/meta` (job = None) or `/api/jobs/{id}/data/meta`.
pub fn meta(state: &State, task: u64, job: Option<&Job>) -> Resp {
    let Some(t) = state.task(task) else {
        return Resp::not_found("Task");
    };
    let empty = TaskData {
        size: 0,
        start_frame: 0,
        step: 1,
        image_quality: 70,
        chunk_size: None,
        video: false,
        frames: vec![],
        updated: None,
    };
    let d = t.data.as_ref().unwrap_or(&empty);
    let (start, stop) = match job {
        Some(j) => (j.start, j.stop),
        None => (0, d.size.saturating_sub(1)),
    };
    let frames: Vec<Value> = if d.video {
        d.frames.iter().map(frame_json).collect()
    } else {
        d.frames
            .iter()
            .skip(start as usize)
            .take(if d.size == 0 {
                0
            } else {
                (stop - start + 1) as usize
            })
            .map(frame_json)
            .collect()
    };
    let size = if d.size == 0 { 0 } else { stop - start + 1 };
    // A task's video range is told in the video's own frame numbers.
    let (start, stop, filter) = match job {
        None if d.video => (
            d.start_frame,
            d.start_frame + u64::from(d.size.saturating_sub(1)) * d.step,
            if d.step > 1 {
                format!("step={}", d.step)
            } else {
                String::new()
            },
        ),
        _ => (u64::from(start), u64::from(stop), String::new()),
    };
    Resp::json(
        200,
        json!({
            "chunks_updated_date": d.updated, "chunk_size": d.chunk_size, "size": size,
            "image_quality": d.image_quality, "start_frame": start, "stop_frame": stop,
            "frame_filter": filter, "frames": frames, "deleted_frames": [], "included_frames": null,
        }),
    )
}

fn frame_json(f: &Frame) -> Value {
    json!({"width": f.width, "height": f.height, "name": f.name, "related_files": 0,
           "has_related_context": false})
}

/// `GET /api/tasks/{id}/data?type=frame&number=N&quality=original|compressed`.
pub fn get_frame(state: &State, req: &Req, id: u64) -> Resp {
    let Some(t) = state.task(id) else {
        return Resp::not_found("Task");
    };
    let size = t.data.as_ref().map(|d| d.size).unwrap_or(0);
    let number: u32 = req.q("number").and_then(|n| n.parse().ok()).unwrap_or(0);
    if number >= size {
        return Resp::json(
            400,
            json!(format!(
                "Invalid frame '{number}'. The frame number should be in the [0, {size}] range"
            )),
        );
    }
    let d = t.data.as_ref().expect("size > 0");
    if d.video {
        let f = &d.frames[0];
        return Resp::bytes("image/png", media::png(f.width, f.height));
    }
    let f = &d.frames[number as usize];
    if req.q("quality") == Some("compressed") {
        // The fake does not re-encode; any small valid JPEG stands for the compressed frame.
        return Resp::bytes("image/jpeg", COMPRESSED_JPEG.to_vec());
    }
    Resp::bytes(media::content_type(&f.name), f.bytes.clone())
}

const COMPRESSED_JPEG: &[u8] = include_bytes!("../fixtures/cvat/compressed-frame.jpg");

/// A job as the API shows it.
pub fn job_json(state: &State, base: &str, j: &Job) -> Value {
    let t = state.task(j.task).expect("job's task");
    let d = t.data.as_ref();
    let kind = if d.is_some_and(|d| d.video) {
        "video"
    } else {
        "imageset"
    };
    let status = if job_done(j) {
        "completed".to_string()
    } else {
        j.stage.clone()
    };
    let bug_tracker = if t.bug_tracker.is_empty() {
        Value::Null
    } else {
        json!(t.bug_tracker)
    };
    json!({
        "url": format!("{base}/api/jobs/{}", j.id), "id": j.id, "task_id": j.task,
        "project_id": t.project, "assignee": state.user_brief(base, j.assignee),
        "guide_id": null, "dimension": "2d", "bug_tracker": bug_tracker, "status": status,
        "stage": j.stage, "state": j.state,
        "mode": if kind == "video" { "interpolation" } else { "annotation" },
        "frame_count": j.stop - j.start + 1, "start_frame": j.start, "stop_frame": j.stop,
        "data_chunk_size": d.and_then(|d| d.chunk_size),
        "data_compressed_chunk_type": kind, "data_original_chunk_type": kind,
        "created_date": j.created, "updated_date": j.updated,
        "issues": {"url": format!("{base}/api/issues?job_id={}", j.id), "count": 0},
        "labels": {"url": format!("{base}/api/labels?job_id={}", j.id)},
        "type": "annotation", "organization": null, "target_storage": null,
        "source_storage": null, "assignee_updated_date": j.assignee_updated,
    })
}

/// `GET /api/jobs` with `task_id`, `project_id`, `stage`, `state`, `assignee` and `sort`.
pub fn list_jobs(state: &State, req: &Req) -> Resp {
    let mut items: Vec<Value> = state
        .jobs
        .iter()
        .map(|j| job_json(state, &req.base, j))
        .filter(|j| {
            let eq = |p: &str, v: &Value| {
                req.q(p).is_none_or(|q| match v {
                    Value::String(s) => s == q,
                    other => other.as_u64().is_some_and(|n| q.parse() == Ok(n)),
                })
            };
            eq("task_id", &j["task_id"])
                && eq("project_id", &j["project_id"])
                && eq("stage", &j["stage"])
                && eq("state", &j["state"])
                && eq("assignee", &j["assignee"]["username"])
        })
        .collect();
    sort_items(req, &mut items, true);
    match json_logic_filter(req, items, |j, f| j.get(f).cloned()) {
        Ok(items) => paginate(req, "jobs", items),
        Err(e) => e,
    }
}

/// `GET|PATCH /api/jobs/{id}`.
pub fn one_job(state: &mut State, req: &Req, id: u64) -> Resp {
    let Some(pos) = state.jobs.iter().position(|j| j.id == id) else {
        return Resp::not_found("Job");
    };
    match req.method.as_str() {
        "GET" => Resp::json(200, job_json(state, &req.base, &state.jobs[pos])),
        "PATCH" => patch_job(state, req, pos),
        m => Resp::detail(405, &format!("Method \"{m}\" not allowed.")),
    }
}

fn patch_job(state: &mut State, req: &Req, pos: usize) -> Resp {
    let body = req.json();
    let mut errors = Map::new();
    let choice = |k: &str, allowed: &[&str], errors: &mut Map<String, Value>| {
        let v = body[k].as_str()?;
        if allowed.contains(&v) {
            Some(v.to_string())
        } else {
            errors.insert(k.into(), json!([format!("\"{v}\" is not a valid choice.")]));
            None
        }
    };
    let stage = choice(
        "stage",
        &["annotation", "validation", "acceptance"],
        &mut errors,
    );
    let st = choice(
        "state",
        &["new", "in progress", "rejected", "completed"],
        &mut errors,
    );
    if !errors.is_empty() {
        return Resp::json(400, Value::Object(errors));
    }
    let stamp = state.now();
    let status_before = task_status(state, state.jobs[pos].task);
    let j = &mut state.jobs[pos];
    if let Some(s) = stage {
        j.stage = s;
        // A stage change without a state starts the job over, as CVAT does.
        if st.is_none() {
            j.state = "new".into();
        }
    }
    if let Some(s) = st {
        j.state = s;
    }
    if let Some(a) = body.get("assignee") {
        // The stamp moves only when the assignee really changes (null over null did not).
        if j.assignee != a.as_u64() {
            j.assignee_updated = Some(stamp.clone());
        }
        j.assignee = a.as_u64();
    }
    j.updated = stamp.clone();
    let j = state.jobs[pos].clone();
    // signals.py `__save_job_handler`: the task's date moves only when its status does
    // (`save(update_fields=["status", "updated_date"])`); the project's never moves.
    if task_status(state, j.task) != status_before
        && let Some(t) = state.task_mut(j.task)
    {
        t.updated = stamp;
    }
    Resp::json(200, job_json(state, &req.base, &j))
}
