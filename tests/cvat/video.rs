//! Video tasks against the fake CVAT, through the video conversion (`backend::cvat::video`):
//! frame labels up as tracks, the server's own answers (ids, attributes carried forward and
//! filled with defaults, floats) read back, annotators' track edits made over the API as
//! CVAT's UI makes them. The record of an upload must see an untouched task as unchanged,
//! and each edit must hand exactly the frames it can change.

use std::collections::BTreeMap;

use annoform::backend::ImageSize;
use annoform::backend::cvat::convert::Annotations;
use annoform::backend::cvat::labels::{LabelMap, LabelSpec, label_specs};
use annoform::backend::cvat::video::frames::FrameRange;
use annoform::backend::cvat::video::task::{
    TrackRecord, Video, VideoDownload, download, track_records, upload,
};
use annoform::backend::cvat::video::tracks::UploadedFrames;
use annoform::manifest::{AttributeType, LabelType, Scalar};
use annoform::schema::{ResolvedAttribute, ResolvedField, ResolvedSchema};
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::Cvat;

const FIELD: &str = "frames.vehicles";
const TINY_MP4: &[u8] = include_bytes!("../fixtures/cvat/tiny.mp4");

fn schema() -> ResolvedSchema {
    let mut f = ResolvedField::new(LabelType::Detections, vec!["car".into(), "truck".into()]);
    let kind = ResolvedAttribute {
        attr_type: AttributeType::Select,
        values: vec![Scalar::Str("sedan".into()), Scalar::Str("van".into())],
        default: None,
        read_only: false,
        mutable: false,
    };
    let moving = ResolvedAttribute {
        attr_type: AttributeType::Checkbox,
        values: vec![],
        default: None,
        read_only: false,
        mutable: true,
    };
    f.attributes.insert("kind".into(), kind);
    f.attributes.insert("moving".into(), moving);
    let mut s = ResolvedSchema::default();
    s.fields.insert(FIELD.into(), f);
    s
}

fn oid(track: u64, frame: u64) -> Value {
    json!({"$oid": format!("{track:012x}{frame:012x}")})
}

/// tiny.mp4 is 64×48, 10 frames. Track 1 on frames 1-10 (keyframes 1 and 6), track 2 on
/// frames 3-7 (keyframe 3), a label without a track on frame 2.
fn labels() -> IndexMap<String, BTreeMap<u64, Vec<Value>>> {
    let mut frames: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for n in 1..=10u64 {
        let x = 0.05 + 0.02 * (n - 1) as f64;
        let mut l = json!({"_id": oid(1, n), "_cls": "Detection", "label": "car", "index": 1,
            "kind": "sedan", "moving": n > 5, "bounding_box": [x, 0.25, 0.25, 0.25]});
        if n == 1 || n == 6 {
            l["keyframe"] = json!(true);
        }
        frames.entry(n).or_default().push(l);
    }
    for n in 3..=7u64 {
        let mut l = json!({"_id": oid(2, n), "_cls": "Detection", "label": "truck", "index": 2,
            "kind": "van", "bounding_box": [0.5, 0.5, 0.25, 0.25]});
        if n == 3 {
            l["keyframe"] = json!(true);
        }
        frames.entry(n).or_default().push(l);
    }
    frames.entry(2).or_default().push(
        json!({"_id": oid(3, 2), "_cls": "Detection", "label": "car", "kind": "sedan",
            "bounding_box": [0.1, 0.1, 0.2, 0.2]}),
    );
    IndexMap::from([(FIELD.to_string(), frames)])
}

struct Uploaded {
    cvat: Cvat,
    task: u64,
    map: LabelMap,
    video: Video,
    records: Vec<TrackRecord>,
    frames: UploadedFrames,
}

/// A project with the schema's labels, a task of tiny.mp4, the labels uploaded as the
/// backend uploads them (`action=create`), the tracks recorded from the echo.
fn uploaded() -> Uploaded {
    let cvat = Cvat::start();
    let s = schema();
    let p = cvat.send(
        reqwest::Method::POST,
        "/api/projects",
        &json!({"name": "video", "labels": label_specs(&s)}),
    );
    let project = p["id"].as_u64().unwrap();
    let task = cvat.make_task(project, "tiny", &[("tiny.mp4".into(), TINY_MP4.to_vec())]);
    let specs: Vec<LabelSpec> = serde_json::from_value(json!(cvat.labels(project))).unwrap();
    let map = LabelMap::new(&s, &specs).unwrap();
    let video = Video {
        frame_count: 10,
        size: ImageSize {
            width: 64,
            height: 48,
        },
        range: FrameRange::default(),
    };
    let owned = labels();
    let by_label: IndexMap<String, Vec<(u64, &Value)>> = owned
        .iter()
        .map(|(k, frames)| {
            let ls = frames
                .iter()
                .flat_map(|(n, ls)| ls.iter().map(|l| (*n, l)))
                .collect();
            (k.clone(), ls)
        })
        .collect();
    let up = upload(&s, &by_label, &video, &map).unwrap();
    let echo = cvat.send(
        reqwest::Method::PATCH,
        &format!("/api/tasks/{task}/annotations?action=create"),
        &serde_json::to_value(&up.annotations).unwrap(),
    );
    let echo: Annotations = serde_json::from_value(echo).unwrap();
    let records = track_records(&echo, &map);
    assert_eq!(records.len(), 2, "two tracks recorded: {echo:?}");
    Uploaded {
        cvat,
        task,
        map,
        video,
        records,
        frames: up.uploaded,
    }
}

impl Uploaded {
    fn download(&self) -> VideoDownload {
        let ann: Annotations = serde_json::from_value(self.cvat.annotations(self.task)).unwrap();
        download(
            &schema(),
            ann,
            &self.video,
            &self.map,
            &self.records,
            &self.frames,
        )
    }

    /// The task's track of `index` as the server holds it.
    fn track(&self, index: i64) -> Value {
        let id = self.records.iter().find(|r| r.index == index).unwrap().id;
        self.cvat.annotations(self.task)["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap()
    }

    fn update_track(&self, track: Value) {
        self.cvat.send(
            reqwest::Method::PATCH,
            &format!("/api/tasks/{}/annotations?action=update", self.task),
            &json!({"version": 0, "tags": [], "shapes": [], "tracks": [track]}),
        );
    }
}

fn at(d: &VideoDownload, n: u64) -> Vec<Value> {
    d.frames
        .get(&n)
        .and_then(|f| f.labels.get(FIELD))
        .map(|ls| ls.iter().map(|l| l.label.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn video_an_untouched_task_hands_only_the_frame_of_its_per_frame_shape() {
    let u = uploaded();
    let track = u.track(1);
    let frames: Vec<u64> = track["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["frame"].as_u64().unwrap())
        .collect();
    assert_eq!(
        frames,
        vec![0, 5],
        "keyframes only; the track runs to the end"
    );
    let kind = track["attributes"].as_array().unwrap();
    assert_eq!(
        kind.len(),
        1,
        "the immutable attribute on the track: {track}"
    );
    let d = u.download();
    assert_eq!(
        d.handed,
        vec![2..3],
        "the server's answer matches the upload's print"
    );
    let labels = at(&d, 2);
    assert_eq!(
        labels.len(),
        1,
        "the untouched track is not handed: {labels:?}"
    );
    assert!(
        labels
            .iter()
            .any(|l| l["_id"] == oid(3, 2) && l.get("index").is_none())
    );
    assert!(d.tracks.is_empty(), "{:?}", d.tracks);
}

#[test]
fn video_a_moved_keyframe_hands_the_frames_between_its_neighbours() {
    let u = uploaded();
    let mut track = u.track(1);
    // Frame 6's keyframe moved 8 px right (the UI sends the whole track).
    let key = track["shapes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["frame"] == 5)
        .unwrap();
    let x = key["points"][0].as_f64().unwrap();
    key["points"][0] = json!(x + 8.0);
    key["points"][2] = json!(key["points"][2].as_f64().unwrap() + 8.0);
    u.update_track(track);
    let d = u.download();
    assert_eq!(
        d.handed,
        vec![2..11],
        "frames 2-10: after keyframe 1, to the end"
    );
    let l8 = at(&d, 8);
    let t1 = l8.iter().find(|l| l["index"] == 1).unwrap();
    assert_eq!(
        t1["_id"],
        oid(1, 8),
        "an interpolated frame keeps its label"
    );
    assert_eq!(t1["moving"], true, "carried forward from keyframe 6");
    assert_eq!(t1["kind"], "sedan");
    let got = t1["bounding_box"][0].as_f64().unwrap();
    assert!((got - (0.15 + 8.0 / 64.0)).abs() < 1e-9, "{got}");
    let l4 = at(&d, 4);
    let t1 = l4.iter().find(|l| l["index"] == 1).unwrap();
    let got = t1["bounding_box"][0].as_f64().unwrap();
    assert!(
        (got - (0.11 + 8.0 / 64.0 * 3.0 / 5.0)).abs() < 1e-9,
        "{got}"
    );
    assert!(
        l4.iter().all(|l| l["index"] == 1),
        "track 2 untouched, not handed: {l4:?}"
    );
    assert_eq!(
        d.tracks[FIELD].keys().collect::<Vec<_>>(),
        vec![&annoform::backend::TrackKey::new(1, "car")]
    );
    assert_eq!(at(&d, 6)[0]["keyframe"], true);
}

#[test]
fn video_a_relabelled_track_keeps_its_index_and_label_ids() {
    let u = uploaded();
    let mut track = u.track(2);
    let car = u.map.label_of(FIELD, "car").unwrap().id;
    // CVAT's UI changes the label and clears every attribute of the track.
    track["label_id"] = json!(car);
    track["attributes"] = json!([]);
    for s in track["shapes"].as_array_mut().unwrap() {
        s["attributes"] = json!([]);
    }
    u.update_track(track);
    let d = u.download();
    assert_eq!(
        d.handed,
        vec![2..8],
        "the track's frames 3-7, the shape's frame 2"
    );
    for n in 3..=7 {
        let l = at(&d, n);
        let t2 = l.iter().find(|l| l["index"] == 2).unwrap();
        assert_eq!(t2["_id"], oid(2, n));
        assert_eq!(t2["label"], "car");
    }
}

#[test]
fn video_a_deleted_track_hands_its_frames_empty_of_it() {
    let u = uploaded();
    let track = u.track(2);
    u.cvat.send(
        reqwest::Method::PATCH,
        &format!("/api/tasks/{}/annotations?action=delete", u.task),
        &json!({"version": 0, "tags": [], "shapes": [], "tracks": [track]}),
    );
    let d = u.download();
    assert_eq!(
        d.handed,
        vec![2..8],
        "the track's frames 3-7, the shape's frame 2"
    );
    for n in 3..=7 {
        assert!(at(&d, n).iter().all(|l| l["index"] == 1), "frame {n}");
    }
}

/// The backend itself against the fake, as the engine drives it.
fn backend(cvat: &Cvat) -> annoform::backend::cvat::CvatBackend {
    use annoform::backend::cvat::client::Connection;
    let conn = Connection {
        url: cvat.url().to_string(),
        username: Some(super::ADMIN_USERNAME.into()),
        password: Some(super::ADMIN_PASSWORD.into()),
        email: None,
        api_key: None,
        headers: Vec::new(),
        organization: None,
    };
    annoform::backend::cvat::CvatBackend::new("cvat", &conn, Default::default(), Default::default())
        .expect("log in to the fake")
}

fn video_task(name: &str, batch: u32, media: &[&std::path::Path]) -> annoform::backend::TaskSpec {
    let samples: Vec<Value> = media
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({"sample_id": format!("{:024x}", i + 1), "media": m.to_str().unwrap(),
                "width": 64, "height": 48, "labels": {}})
        })
        .collect();
    serde_json::from_value(json!({"name": name, "batch": batch, "samples": samples})).unwrap()
}

#[test]
fn video_tasks_hold_the_frames_of_frame_start_stop_step_one_video_each_and_are_adopted() {
    use annoform::backend::{Backend, ProjectSpec};
    let cvat = Cvat::start();
    let mut b = backend(&cvat);
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one.mp4"), dir.path().join("two.mp4"));
    std::fs::write(&one, TINY_MP4).unwrap();
    std::fs::write(&two, TINY_MP4).unwrap();
    let config = json!({"frame_start": [1, 0], "frame_step": 5,
        "frame_stop": {two.to_str().unwrap(): 4}});
    let spec = ProjectSpec {
        name: "video-ranges".into(),
        schema: schema(),
        config: config.as_object().unwrap().clone(),
        owner: None,
    };
    let project = b.create_project(&spec).unwrap();
    let meta = |task: &annoform::backend::RemoteTask| {
        cvat.get(&format!("/api/tasks/{}/data/meta", task.id))
    };
    let t1 = b
        .create_task(&project, &video_task("v-0", 0, &[&one]))
        .unwrap();
    let m = meta(&t1);
    assert_eq!(
        (m["size"].as_u64(), m["start_frame"].as_u64()),
        (Some(2), Some(1)),
        "{m}"
    );
    assert_eq!(m["frame_filter"], "step=5", "frames 1 and 6 of 0-9");
    let t2 = b
        .create_task(&project, &video_task("v-1", 1, &[&two]))
        .unwrap();
    let m = meta(&t2);
    assert_eq!(
        (m["size"].as_u64(), m["stop_frame"].as_u64()),
        (Some(1), Some(0)),
        "{m}"
    );
    // A re-run after a crash right after the task was made adopts it: no second task.
    let again = b
        .create_task(&project, &video_task("v-0", 0, &[&one]))
        .unwrap();
    assert_eq!(again.id, t1.id);
    let pid: u64 = project.id.parse().unwrap();
    assert_eq!(cvat.tasks(pid).len(), 2);
    let err = b
        .create_task(&project, &video_task("v-2", 2, &[&one, &two]))
        .unwrap_err();
    assert!(err.message.contains("one video per task"), "{err}");
}

/// tiny.mp4 as one task sample with the labels of `labels()` on its frames.
fn labelled_video(path: &std::path::Path) -> annoform::backend::TaskSpec {
    let frame_labels: Vec<Value> = labels()[FIELD]
        .iter()
        .flat_map(|(n, ls)| ls.iter().map(move |l| json!({"frame": n, "label": l})))
        .collect();
    let sample = json!({"sample_id": format!("{:024x}", 1), "media": path.to_str().unwrap(),
        "width": 64, "height": 48,
        "video": {"frames": 10, "width": 64, "height": 48, "frame_rate": 5.0},
        "labels": {}, "frame_labels": {FIELD: frame_labels}});
    serde_json::from_value(json!({"name": "video/v-0000", "batch": 0, "samples": [sample]}))
        .unwrap()
}

/// Labels by frame number.
type ByFrame = BTreeMap<u32, Vec<Value>>;

/// The one sample of a download: its handed frames (first, last), and its labels by frame
/// number.
fn downloaded(
    b: &mut dyn annoform::backend::Backend,
    project: &annoform::backend::RemoteProject,
    task: &str,
) -> (Vec<(u32, u32)>, ByFrame) {
    let mut pages = Vec::new();
    b.download(project, &[task.to_string()], None, &mut |p| {
        pages.push(p);
        Ok(())
    })
    .unwrap();
    assert_eq!(pages.len(), 1, "one page: {pages:?}");
    let sample = &pages[0][&format!("{:024x}", 1)];
    let mut out: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
    for l in &sample[FIELD] {
        assert_eq!(l.misfit, None, "{l:?}");
        out.entry(l.frame.expect("a frame label").get())
            .or_default()
            .push(l.label.clone());
    }
    let spans = sample
        .frames
        .as_ref()
        .expect("a video hands some frames only");
    let handed = spans
        .iter()
        .map(|f| (f.first.get(), f.last.get()))
        .collect();
    (handed, out)
}

#[test]
fn video_the_backend_uploads_tracks_records_them_and_downloads_the_changed_frames() {
    use annoform::backend::{Backend, ProjectContext, ProjectSpec};
    use annoform::state::TaskRecord;
    let cvat = Cvat::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.mp4");
    std::fs::write(&path, TINY_MP4).unwrap();
    let spec = labelled_video(&path);
    let mut b = backend(&cvat);
    let ps = ProjectSpec {
        name: "video".into(),
        schema: schema(),
        config: Default::default(),
        owner: None,
    };
    let project = b.create_project(&ps).unwrap();
    let task = b.create_task(&project, &spec).unwrap();
    b.upload_labels(&project, &task, &spec).unwrap();
    let notes = b
        .task_notes(&project, &task, &spec)
        .unwrap()
        .expect("notes of a video task");
    assert_eq!(notes["tracks"].as_array().unwrap().len(), 2, "{notes}");
    let tid: u64 = task.id.parse().unwrap();
    let held = cvat.annotations(tid);
    assert_eq!(
        (
            held["tracks"].as_array().unwrap().len(),
            held["shapes"].as_array().unwrap().len()
        ),
        (2, 1),
        "two tracks and the per-frame shape: {held}"
    );
    // Uploading again (an apply killed before its record was saved) sends nothing twice.
    b.upload_labels(&project, &task, &spec).unwrap();
    assert_eq!(cvat.annotations(tid), held);
    assert_eq!(
        b.task_notes(&project, &task, &spec).unwrap().unwrap(),
        notes
    );

    // Another process knows the task from its record only.
    let record = TaskRecord {
        id: task.id.clone(),
        name: task.name.clone(),
        batch: 0,
        samples: vec![format!("{:024x}", 1)],
        status: None,
        notes: Some(notes),
    };
    let attach = |b: &mut annoform::backend::cvat::CvatBackend| {
        let tasks = [record.clone()];
        let cx = ProjectContext {
            schema: &ps.schema,
            settings: &ps.config,
            tasks: &tasks,
            created: true,
        };
        b.attach(&project, cx).expect("attach");
    };
    let mut fresh = backend(&cvat);
    attach(&mut fresh);
    let (handed, untouched) = downloaded(&mut fresh, &project, &task.id);
    assert_eq!(handed, vec![(2, 2)]);
    assert_eq!(
        untouched.keys().copied().collect::<Vec<_>>(),
        vec![2],
        "only the frame of the per-frame shape: {untouched:?}"
    );

    // An annotator relabels track 2 (CVAT's UI clears its attributes, label_id included)
    // and deletes track 1.
    let pid: u64 = project.id.parse().unwrap();
    let specs: Vec<LabelSpec> = serde_json::from_value(json!(cvat.labels(pid))).unwrap();
    let map = LabelMap::new(&schema(), &specs).unwrap();
    let id_of = |index: i64| {
        let tracks = record.notes.as_ref().unwrap()["tracks"]
            .as_array()
            .unwrap()
            .clone();
        tracks.iter().find(|t| t["index"] == index).unwrap()["id"].clone()
    };
    let track_of = |index: i64| {
        let id = id_of(index);
        cvat.annotations(tid)["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap()
    };
    let mut two = track_of(2);
    two["label_id"] = json!(map.label_of(FIELD, "car").unwrap().id);
    two["attributes"] = json!([]);
    for s in two["shapes"].as_array_mut().unwrap() {
        s["attributes"] = json!([]);
    }
    let send = |action: &str, track: Value| {
        cvat.send(
            reqwest::Method::PATCH,
            &format!("/api/tasks/{tid}/annotations?action={action}"),
            &json!({"version": 0, "tags": [], "shapes": [], "tracks": [track]}),
        );
    };
    send("update", two);
    send("delete", track_of(1));
    let mut fresh = backend(&cvat);
    attach(&mut fresh);
    let (handed, got) = downloaded(&mut fresh, &project, &task.id);
    assert_eq!(
        handed,
        vec![(1, 10)],
        "track 1's frames 1-10 (deleted: handed without it), track 2's, the shape's"
    );
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (2..=7).collect::<Vec<_>>(),
        "track 2's frames, the shape's; track 1 is gone: {got:?}"
    );
    for n in 3..=7u32 {
        let ls = &got[&n];
        assert_eq!(ls.len(), 1, "frame {n}: track 1 is gone: {ls:?}");
        assert_eq!(
            ls[0]["_id"],
            oid(2, u64::from(n)),
            "frame {n} keeps its label"
        );
        assert_eq!(
            (&ls[0]["index"], &ls[0]["label"]),
            (&json!(2), &json!("car"))
        );
    }
}
