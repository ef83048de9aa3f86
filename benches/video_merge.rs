//! Video merge figures: a 30-minute 30 fps video (54,000 frames) with 20 tracks on every
//! frame (1.08M frame labels, every 10th frame a keyframe), merged through the same
//! `RunMerger` plan and apply use, and the same on a video a tenth as long.
//!
//! The download is what CVAT's download hands: two tracks moved over 20 frames each and a
//! new track drawn over 300 frames, so 340 frames are handed (`@frames`), and on them only
//! the changed tracks (`@tracks`, their 340 labels): the 19 or 20 other tracks on those frames
//! are not evidence and are set aside untouched, as after a real CVAT download. For each video it prints the
//! time to load the dataset, the merge time (what `plan` computes), the memory the merge
//! added at its peak (peak RSS reset before it), the time to write the merge into the dataset
//! (what `apply` does before saving), and checks that merging again changes nothing. Memory
//! must follow the handed frames, not the video's length: both videos should show the same.
//!
//! Run: `cargo bench --bench video_merge` (`ANNOFORM_BENCH_FRAMES` overrides 54,000).

use annoform::backend::{DownloadedLabel, FrameSpan, SampleAnnotations, TrackKey};
use annoform::dataset::FrameNumber;
use annoform::dataset::dir::Dataset;
use annoform::dataset::ejson::ObjectId;
use annoform::dataset::fields::FieldType;
use annoform::manifest::{LabelType, LoadSpec};
use annoform::merge::run::RunMerger;
use annoform::merge::{label_digest, label_key};
use annoform::schema::{ResolvedField, ResolvedSchema};
use annoform::state::{FrameLabels, RunRecord, TaskRecord, UploadedLabel};
use indexmap::IndexMap;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

mod support;

// The allocator of the annoform binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRACKS: u32 = 20;
const FIELD: &str = "frames.dets";
const SAMPLE: &str = "6b0253a82ba0e75ca6518020";

/// Track `t`'s label on frame `n` of a video of `frames` frames, shifted right by `dx`.
fn label(n: u32, t: u32, frames: u32, dx: f64) -> Value {
    let id = ObjectId::derive(&[b"l", &n.to_be_bytes(), &t.to_be_bytes()]);
    let x = 0.8 * f64::from(n) / f64::from(frames) + dx;
    json!({"_id": id.to_ejson(), "_cls": "Detection", "attributes": {}, "tags": [],
           "label": if t % 2 == 0 { "car" } else { "person" },
           "bounding_box": [x, 0.04 * f64::from(t), 0.1, 0.03],
           "index": t, "keyframe": n % 10 == 1})
}

/// A FiftyOneDataset of one video, its frames streamed to disk.
fn generate(dir: &Path, frames: u32) -> std::io::Result<()> {
    let fields = vec![FieldType::Label("Detections".into()).field_doc("dets")];
    let meta = json!({"name": "bench", "version": "1.22.1", "media_type": "video",
                      "sample_fields": [], "frame_fields": fields});
    std::fs::write(dir.join("metadata.json"), meta.to_string())?;
    let sample = json!({"samples": [{"_id": {"$oid": SAMPLE}, "filepath": "v.mp4", "tags": [],
        "_media_type": "video", "metadata": {"_cls": "VideoMetadata", "total_frame_count": frames,
        "frame_width": 1920, "frame_height": 1080, "frame_rate": 30.0}}]});
    std::fs::write(dir.join("samples.json"), sample.to_string())?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("frames.json"))?);
    out.write_all(b"{\"frames\": [")?;
    for n in 1..=frames {
        let dets: Vec<Value> = (1..=TRACKS).map(|t| label(n, t, frames, 0.0)).collect();
        let id = ObjectId::derive(&[b"f", &n.to_be_bytes()]);
        let doc = json!({"_id": id.to_ejson(), "frame_number": n,
            "dets": {"_cls": "Detections", "detections": dets}, "_sample_id": {"$oid": SAMPLE}});
        if n > 1 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut out, &doc)?;
    }
    out.write_all(b"]}")?;
    out.flush()
}

/// The record of a run that uploaded every frame's labels in one task.
fn record(field: &ResolvedField, frames: u32) -> RunRecord {
    let mut r = RunRecord::new("bench", "tracks", "bench", "now", "lineage".into());
    r.schema = ResolvedSchema {
        fields: IndexMap::from([(FIELD.into(), field.clone())]),
    };
    let mut video = FrameLabels::new();
    for n in 1..=frames {
        let labels = (1..=TRACKS)
            .map(|t| {
                let l = label(n, t, frames, 0.0);
                UploadedLabel {
                    id: label_key(&l, LabelType::Detections).expect("labels have ids"),
                    digest: label_digest(&l, field),
                }
            })
            .collect();
        video.insert(FrameNumber::new(n.into()).expect("from 1"), labels);
    }
    r.uploaded_frames
        .insert(FIELD.into(), IndexMap::from([(SAMPLE.to_string(), video)]));
    r.samples.push(SAMPLE.into());
    r.tasks.push(TaskRecord {
        id: "1".into(),
        name: "batch-0000".into(),
        batch: 0,
        samples: vec![SAMPLE.into()],
        status: None,
        notes: None,
    });
    r
}

/// What CVAT hands: tracks 3 and 7 moved on 20 frames each, a new track over 300 frames;
/// each track handed on its own frames only, with its own labels there.
fn download(frames: u32) -> (IndexMap<String, SampleAnnotations>, usize) {
    let f = |n: u32| FrameNumber::new(n.into()).expect("from 1");
    let third = frames / 3;
    let drawn = frames / 2;
    let new = TRACKS + 1;
    let handed = [
        (3, third + 1, 20),
        (7, 2 * third + 1, 20),
        (new, drawn, 300),
    ];
    let mut labels = Vec::new();
    let mut tracks = BTreeMap::new();
    for (t, from, len) in handed {
        let span = FrameSpan::new(f(from), f(from + len - 1));
        tracks.insert(TrackKey::any_class(i64::from(t)), vec![span]);
        for n in from..from + len {
            let l = if t == new {
                json!({"_cls": "Detection", "label": "car", "index": new,
                       "bounding_box": [0.5, 0.9, 0.05, 0.05], "keyframe": n == drawn})
            } else {
                label(n, t, frames, 0.01)
            };
            labels.push(DownloadedLabel::new(format!("track-{t}"), l).on_frame(f(n)));
        }
    }
    let n = labels.len();
    let mut spans: Vec<FrameSpan> = tracks.values().flatten().copied().collect();
    spans.sort_by_key(|s| s.first);
    let fields = IndexMap::from([(FIELD.to_string(), labels)]);
    let sample = SampleAnnotations::frames(fields, spans)
        .with_tracks(IndexMap::from([(FIELD.to_string(), tracks)]));
    (IndexMap::from([(SAMPLE.to_string(), sample)]), n)
}

fn main() {
    let longest: u32 = std::env::var("ANNOFORM_BENCH_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(54_000);
    let field = ResolvedField::new(LabelType::Detections, vec!["car".into(), "person".into()]);
    println!("video merge: {TRACKS} tracks on every frame, 340 frames handed");
    for frames in [longest / 10, longest] {
        let dir = tempfile::tempdir().expect("temp dir");
        generate(dir.path(), frames).expect("generate dataset");
        let t = Instant::now();
        let mut ds = Dataset::load(dir.path()).expect("load dataset");
        let load = t.elapsed();
        let mut r = record(&field, frames);
        let tasks = vec!["1".to_string()];
        let (page, handed) = download(frames);
        let before = support::rss_mib();
        support::reset_peak_rss();
        let t = Instant::now();
        let mut merger = RunMerger::new(&ds, &r, &LoadSpec::default(), &tasks, true);
        merger.page(page.clone()).expect("merge");
        let mut outcome = merger.finish(None).expect("finish");
        let merge = t.elapsed();
        let added = support::peak_rss_mib() - before;
        let c = outcome.counts[FIELD];
        assert_eq!((c.added, c.edited), (300, 40), "{c:?}");
        let t = Instant::now();
        outcome.write(&mut ds).expect("write merge");
        outcome.record(&mut r);
        let write = t.elapsed();
        println!(
            "  {frames:>6} frames ({:>8} labels): load {:>6.2} s  merge {:>6.3} s ({handed} labels handed)  +{added:.0} MiB  write {:.3} s  counts +{} ~{} ={}",
            frames * TRACKS,
            load.as_secs_f64(),
            merge.as_secs_f64(),
            write.as_secs_f64(),
            c.added,
            c.edited,
            c.unchanged
        );
        let mut again = RunMerger::new(&ds, &r, &LoadSpec::default(), &tasks, true);
        again.page(page).expect("merge again");
        let again = again.finish(None).expect("finish again");
        assert!(
            !again.changes_anything(),
            "a merged download merges as nothing"
        );
    }
    println!("  peak RSS {:.0} MiB", support::peak_rss_mib());
}
