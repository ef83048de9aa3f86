//! CVAT video figures: a 30-minute 30 fps video (54,000 frames) with 20 tracks visible on
//! every frame (1.08M frame labels), every 10th frame a keyframe.
//!
//! Up: the frame labels become 20 CVAT tracks of keyframes (`tracks::video_to_cvat`), each
//! printed for the run record (`window::TrackPrint`). Down: the server's tracks, after
//! annotators moved one keyframe in two tracks, deleted a track and drew a new one over 300
//! frames, are compared with the prints and only the frames that can differ are expanded
//! with CVAT's interpolation and converted to labels; for comparison the same download is
//! expanded whole, as a download without the prints must do. Each step prints its time and
//! the memory it added (peak RSS reset before it).
//!
//! What this does not cover: the engine's plan and merge of those labels (the frame axis of
//! the dataset store and merge is another part of the work).
//!
//! Run: `cargo bench --bench video` (`ANNOFORM_BENCH_FRAMES` overrides the frame count).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use annoform::backend::ImageSize;
use annoform::backend::cvat::convert::{Annotations, Shape, Track, from_cvat};
use annoform::backend::cvat::labels::{LabelMap, label_specs};
use annoform::backend::cvat::video::tracks::{Flatten, UploadedFrames, flatten, video_to_cvat};
use annoform::backend::cvat::video::window::{TrackPrint, changed};
use annoform::manifest::LabelType;
use annoform::schema::{ResolvedField, ResolvedSchema};
use serde_json::{Value, json};

mod support;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRACKS: usize = 20;
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
        "dets".into(),
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
    let field = &schema.fields["dets"];
    println!(
        "video: {n} frames × {TRACKS} tracks = {} frame labels, keyframes every {KEY_EVERY}",
        n as usize * TRACKS
    );

    // The dataset's frames, as the upload reads them.
    let frames: Vec<(u64, Vec<Value>)> = (0..n)
        .map(|f| (f, (0..TRACKS).map(|t| label(t, f)).collect()))
        .collect();
    println!(
        "  frame labels in memory: RSS {:.0} MiB",
        support::rss_mib()
    );

    let before = support::rss_mib();
    support::reset_peak_rss();
    let t = Instant::now();
    let slices: Vec<(u64, &[Value])> = frames.iter().map(|(f, l)| (*f, l.as_slice())).collect();
    let mut up = Annotations::default();
    video_to_cvat("dets", field, &slices, SIZE, &map, n, &mut up).expect("convert");
    let prints: Vec<TrackPrint> = up.tracks.iter().map(|t| TrackPrint::of(t, &map)).collect();
    let mut uploaded = UploadedFrames::default();
    for (f, ls) in &frames {
        for l in ls {
            uploaded.add("dets", *f, l);
        }
    }
    let shapes: usize = up.tracks.iter().map(|t| t.shapes.len()).sum();
    println!(
        "  upload: {} tracks, {shapes} keyframes, prints and frame index in {:.2} s, +{:.0} MiB",
        up.tracks.len(),
        t.elapsed().as_secs_f64(),
        support::peak_rss_mib() - before
    );
    drop(slices);

    // What annotators did: one keyframe moved in tracks 1 and 2, track 3 deleted, a new
    // track of two keyframes 300 frames apart.
    let mut down = served(up.tracks.clone());
    for t in &mut down[1..3] {
        let mid = t.shapes.len() / 2;
        t.shapes[mid].points[0] += 5.0;
    }
    let deleted = down.remove(3);
    let key = |frame: u64, x: f64| -> Shape {
        serde_json::from_value(json!({"type": "rectangle", "frame": frame,
            "points": [x, 10.0, x + 50.0, 60.0]}))
        .expect("shape")
    };
    let mid = n / 2;
    down.push(Track {
        id: Some(999),
        frame: mid,
        label_id: up.tracks[0].label_id,
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
    let recorded: HashMap<i64, i64> = (0..TRACKS as i64).map(|i| (i + 1, i + 1)).collect();
    let printed: HashMap<i64, &TrackPrint> = (0..TRACKS as i64)
        .map(|i| (i + 1, &prints[i as usize]))
        .collect();
    let used = HashMap::new();
    let cx = Flatten {
        end_frame: n,
        map: &map,
        recorded: &recorded,
        uploaded: &uploaded,
        used: &used,
    };

    for (name, windowed) in [("changed frames", true), ("every frame", false)] {
        let before = support::rss_mib();
        support::reset_peak_rss();
        let t = Instant::now();
        let windows: Vec<Range<u64>> = down
            .iter()
            .flat_map(|tr| {
                let print = TrackPrint::of(tr, &map);
                let b = tr.id.and_then(|id| printed.get(&id).copied());
                changed(b, &print, n)
            })
            .collect();
        let only = windowed.then_some(windows.as_slice());
        let shapes = flatten(&down, &cx, only);
        let mut by_frame: std::collections::BTreeMap<u64, Vec<Shape>> = Default::default();
        for s in shapes {
            by_frame.entry(s.frame).or_default().push(s);
        }
        let mut labels = 0;
        for (f, shapes) in by_frame {
            let ann = Annotations {
                shapes,
                ..Annotations::default()
            };
            let got = from_cvat(&schema, &ann, f, SIZE, &map, &HashMap::new());
            labels += got.labels.values().map(Vec::len).sum::<usize>();
        }
        let deleted_frames = if windowed {
            deleted.shapes.first().map_or(0, |s| n - s.frame)
        } else {
            0
        };
        println!(
            "  download, {name:<14}: {labels:>8} labels (+{deleted_frames} frames of the deleted track) in {:.2} s, +{:.0} MiB",
            t.elapsed().as_secs_f64(),
            support::peak_rss_mib() - before
        );
    }
    println!("  peak RSS {:.0} MiB", support::peak_rss_mib());
}
