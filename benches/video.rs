//! CVAT video figures: a 30-minute 30 fps video (54,000 frames) with 20 tracks visible on
//! every frame (1.08M frame labels), every 10th frame a keyframe.
//!
//! Up (`video::task::upload`): the frame labels become 20 CVAT tracks of keyframes, and the
//! tracks are recorded (`track_records`: id, index, print). Down (`video::task::download`):
//! the server's tracks, after annotators moved one keyframe in two tracks, deleted a track
//! and drew a new one over 300 frames, are compared with the records; only the frames a
//! change can reach are handed, with every label on them, expanded with CVAT's
//! interpolation. A deleted track hands every frame it was on (its labels there are
//! deleted); without records (every track new, as a download that cannot tell must treat
//! it) every frame is handed. Each step prints its time and
//! the memory it added at its peak (bytes allocated, counted by the global allocator).
//!
//! Then through the engine's merge (`RunMerger`, what `plan` and `apply` use) on a dataset
//! of that video (FiftyOne's directory format, loaded by the dataset store) with the run
//! record of the upload: each download is handed as CVAT's backend hands it (the changed
//! frames only) and merged; the plan's merge (counts) and apply's write into the dataset
//! print their time and the memory they added at their peak.
//!
//! Run: `cargo bench --bench video` (`ANNOFORM_BENCH_FRAMES` overrides the frame count).

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use annoform::backend::ImageSize;
use annoform::backend::cvat::convert::{Annotations, Shape, Track};
use annoform::backend::cvat::labels::{LabelMap, label_specs};
use annoform::backend::cvat::video::frames::FrameRange;
use annoform::backend::cvat::video::task::{
    TrackRecord, Video, VideoDownload, download, track_records, upload,
};
use annoform::dataset::FrameNumber;
use annoform::dataset::dir::Dataset;
use annoform::manifest::LabelType;
use annoform::manifest::LoadSpec;
use annoform::merge::run::RunMerger;
use annoform::merge::{label_digest, label_key};
use annoform::schema::{ResolvedField, ResolvedSchema};
use annoform::state::{FrameLabels, RunRecord, TaskRecord, UploadedLabel};
use indexmap::IndexMap;
use serde_json::{Value, json};

mod support;

/// The binary's allocator, counting the bytes live and their peak: RSS cannot show what a
/// step adds once an earlier step freed memory the allocator keeps.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Starts measuring a step: the bytes live now, with the peak reset to them.
fn start() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// What the step started at `live` added at its peak, in MiB.
fn added(live: usize) -> f64 {
    mib(PEAK.load(Ordering::Relaxed).saturating_sub(live))
}

const TRACKS: usize = 20;
const FIELD: &str = "frames.dets";
const KEY_EVERY: u64 = 10;
const SIZE: ImageSize = ImageSize {
    width: 1920,
    height: 1080,
};

fn frame_count() -> u64 {
    std::env::var("ANNOFORM_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(54_000)
}

fn setup() -> (ResolvedSchema, LabelMap) {
    let mut schema = ResolvedSchema::default();
    schema.fields.insert(
        FIELD.into(),
        ResolvedField::new(LabelType::Detections, vec!["car".into()]),
    );
    let mut specs = label_specs(&schema);
    let mut next = 1000;
    for (i, l) in specs.iter_mut().enumerate() {
        l.id = Some(100 + i as i64);
        for a in &mut l.attributes {
            a.id = Some(next);
            next += 1;
        }
    }
    let map = LabelMap::new(&schema, &specs).expect("label map");
    (schema, map)
}

/// Track `t` on frame `f`: a box drifting right, linear between keyframes.
fn label(t: usize, f: u64) -> Value {
    let x = 0.01 * t as f64 + 0.5 * (f as f64 / 54_000.0);
    let mut l = json!({
        "_id": {"$oid": format!("{:08x}{:016x}", t, f)},
        "_cls": "Detection", "label": "car", "index": t as i64 + 1,
        "bounding_box": [x, 0.1, 0.05, 0.05],
    });
    if f % KEY_EVERY == 0 {
        l["keyframe"] = json!(true);
    }
    l
}

/// The server's answer: ids given, as GET returns the tracks.
fn served(mut tracks: Vec<Track>) -> Vec<Track> {
    let mut next = 1;
    for (i, t) in tracks.iter_mut().enumerate() {
        t.id = Some(i as i64 + 1);
        for s in &mut t.shapes {
            s.id = Some(next);
            next += 1;
        }
    }
    tracks
}

fn main() {
    let n = frame_count();
    let (schema, map) = setup();
    println!(
        "video: {n} frames × {TRACKS} tracks = {} frame labels, keyframes every {KEY_EVERY}",
        n as usize * TRACKS
    );
    let video = Video {
        frame_count: n,
        size: SIZE,
        range: FrameRange::default(),
    };

    // The dataset's frames, as the upload reads them (FiftyOne frame numbers from 1).
    let frames: BTreeMap<u64, Vec<Value>> = (0..n)
        .map(|f| (f + 1, (0..TRACKS).map(|t| label(t, f)).collect()))
        .collect();
    let labels: Vec<(u64, &Value)> = frames
        .iter()
        .flat_map(|(n, ls)| ls.iter().map(|l| (*n, l)))
        .collect();
    let fields = IndexMap::from([(FIELD.to_string(), labels)]);
    println!(
        "  frame labels in memory: {:.0} MiB allocated",
        mib(LIVE.load(Ordering::Relaxed))
    );

    let before = start();
    let t = Instant::now();
    let up = upload(&schema, &fields, &video, &map).expect("upload");
    let echo = Annotations {
        tracks: served(up.annotations.tracks.clone()),
        ..Annotations::default()
    };
    let records = track_records(&echo, &map);
    let keyframes: usize = echo.tracks.iter().map(|t| t.shapes.len()).sum();
    println!(
        "  upload: {} tracks, {keyframes} keyframes, recorded in {:.2} s, +{:.0} MiB",
        records.len(),
        t.elapsed().as_secs_f64(),
        added(before)
    );
    drop(fields);
    let dir = tempfile::tempdir().expect("temp dir");
    let t = Instant::now();
    write_dataset(dir.path(), &frames);
    let record = run_record(&schema, &frames);
    drop(frames);
    let mut ds = Dataset::load(dir.path()).expect("load the video dataset");
    println!(
        "  dataset written, loaded with the run record in {:.1} s: {:.0} MiB allocated",
        t.elapsed().as_secs_f64(),
        mib(LIVE.load(Ordering::Relaxed))
    );

    // What annotators did: one keyframe moved in tracks 1 and 2, a new track of two
    // keyframes 300 frames apart; then also track 3 (on every frame) deleted.
    let mut edited = echo.tracks;
    for t in &mut edited[1..3] {
        let mid = t.shapes.len() / 2;
        t.shapes[mid].points[0] += 5.0;
    }
    let key = |frame: u64, x: f64| -> Shape {
        serde_json::from_value(json!({"type": "rectangle", "frame": frame,
            "points": [x, 10.0, x + 50.0, 60.0]}))
        .expect("shape")
    };
    let mid = n / 2;
    edited.push(Track {
        id: Some(999),
        frame: mid,
        label_id: edited[0].label_id,
        group: None,
        source: "manual".into(),
        attributes: Vec::new(),
        shapes: vec![key(mid, 100.0), key(mid + 300, 400.0), {
            let mut s = key(mid + 301, 400.0);
            s.outside = true;
            s
        }],
        elements: Vec::new(),
    });
    let mut deleted = edited.clone();
    deleted.remove(3);

    let cases: [(&str, &[Track], &[TrackRecord]); 3] = [
        ("2 keyframes moved, 1 track drawn", &edited, &records),
        ("the same and a track deleted, no records", &deleted, &[]),
        ("the same and a track deleted", &deleted, &records),
    ];
    for (name, tracks, recorded) in cases {
        let ann = Annotations {
            tracks: tracks.to_vec(),
            ..Annotations::default()
        };
        let before = start();
        let t = Instant::now();
        let d = download(&schema, ann, &video, &map, recorded, &up.uploaded);
        let handed: u64 = d.handed.iter().map(|r| r.end - r.start).sum();
        let labels: usize = d
            .frames
            .values()
            .flat_map(|f| f.labels.values())
            .map(Vec::len)
            .sum();
        println!(
            "  download, {name:<33}: {handed:>6} frames handed, {labels:>8} labels in {:.2} s, +{:.0} MiB",
            t.elapsed().as_secs_f64(),
            added(before)
        );
        // The last case is also written into the dataset.
        let last = std::ptr::eq(tracks, &deleted[..]) && !recorded.is_empty();
        merge(&mut ds, &schema, &record, d, last);
    }
    println!("  peak RSS {:.0} MiB", support::peak_rss_mib());
}

const SAMPLE: &str = "6b0253a82ba0e75ca6518020";

/// The video as a FiftyOne dataset directory: the fixture's metadata (a video dataset with
/// a `dets` frame field), one sample with its video metadata, the frames.
fn write_dataset(dir: &std::path::Path, frames: &BTreeMap<u64, Vec<Value>>) {
    use std::io::Write;
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fiftyone-1.22.1/video-tracks"
    );
    std::fs::copy(
        format!("{fixture}/metadata.json"),
        dir.join("metadata.json"),
    )
    .expect("metadata");
    let n = frames.len();
    let sample = json!({"samples": [{"_id": {"$oid": SAMPLE}, "filepath": "data/long.mp4",
        "tags": [], "_media_type": "video",
        "metadata": {"_cls": "VideoMetadata", "frame_width": SIZE.width,
            "frame_height": SIZE.height, "frame_rate": 30.0, "total_frame_count": n,
            "duration": n as f64 / 30.0}}]});
    std::fs::write(dir.join("samples.json"), sample.to_string()).expect("samples.json");
    let file = std::fs::File::create(dir.join("frames.json")).expect("frames.json");
    let mut out = std::io::BufWriter::new(file);
    out.write_all(b"{\"frames\": [").expect("write");
    for (i, (number, labels)) in frames.iter().enumerate() {
        if i > 0 {
            out.write_all(b", ").expect("write");
        }
        let doc = json!({"_id": {"$oid": format!("6b0253a83026{number:012x}")},
            "frame_number": number, "dets": {"_cls": "Detections", "detections": labels},
            "_sample_id": {"$oid": SAMPLE}});
        serde_json::to_writer(&mut out, &doc).expect("write");
    }
    out.write_all(b"]}").expect("write");
    out.flush().expect("write");
}

/// The record of the run that uploaded the video: one task, every frame label's baseline.
fn run_record(schema: &ResolvedSchema, frames: &BTreeMap<u64, Vec<Value>>) -> RunRecord {
    let mut r = RunRecord::new("bench", "video", "cvat", "now", "lineage".into());
    r.schema = schema.clone();
    let field = &schema.fields[FIELD];
    let mut uploaded = FrameLabels::new();
    for (n, labels) in frames {
        let keys = labels.iter().map(|l| UploadedLabel {
            id: label_key(l, LabelType::Detections).expect("labels have ids"),
            digest: label_digest(l, field),
        });
        uploaded.insert(FrameNumber::new(*n).expect("from 1"), keys.collect());
    }
    r.uploaded_frames
        .entry(FIELD.into())
        .or_default()
        .insert(SAMPLE.into(), uploaded);
    r.samples = vec![SAMPLE.into()];
    r.tasks.push(TaskRecord {
        id: "1".into(),
        name: "bench/video/0000".into(),
        batch: 0,
        samples: vec![SAMPLE.into()],
        status: None,
        notes: None,
    });
    r
}

/// The download merged as plan counts it, then (`write`) written as apply does.
fn merge(ds: &mut Dataset, schema: &ResolvedSchema, r: &RunRecord, d: VideoDownload, write: bool) {
    let page = IndexMap::from([(SAMPLE.to_string(), d.into_sample(schema))]);
    let before = start();
    let t = Instant::now();
    let mut merger = RunMerger::new(ds, r, &LoadSpec::default(), &["1".to_string()], true);
    merger.page(page).expect("merge page");
    let outcome = merger.finish(None).expect("finish");
    let c = &outcome.counts[FIELD];
    println!(
        "    merge (plan): {:.2} s, +{:.0} MiB; +{} ~{} -{} ={}",
        t.elapsed().as_secs_f64(),
        added(before),
        c.added,
        c.edited,
        c.deleted,
        c.unchanged
    );
    if write {
        let before = start();
        let t = Instant::now();
        outcome.write(ds).expect("write");
        println!(
            "    write (apply): {} writes in {:.2} s, +{:.0} MiB",
            outcome.writes.len(),
            t.elapsed().as_secs_f64(),
            added(before)
        );
    }
}
