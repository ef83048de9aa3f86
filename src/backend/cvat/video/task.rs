//! One video task, both ways: the video's frame labels → the task's annotations (and what to
//! record of them), and the task's annotations → labels per frame, for the frames that can
//! hold a change only.
//!
//! Frames. FiftyOne numbers a video's frames from 1; the task holds the frames its
//! [`FrameRange`] picks, numbered from 0. Downloaded tracks are expanded over the video's
//! own frames, as FiftyOne does: with `frame_step`, the frames between two task frames get
//! their interpolated labels too.
//!
//! Handed frames. A download names the frames it hands; each handed frame comes with every
//! label the task holds on it (so a label missing there was deleted), frames not handed are
//! unknown and stay as they are. Handed are: the frames of changed windows of tracks (see
//! [`super::window`]), every frame of a track that is gone or new, and every frame with a
//! per-frame shape or tag, now or at upload.

// Lists of frame ranges, often of one range.
#![allow(clippy::single_range_in_vec_init)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::convert::{Annotations, Downloaded, Track, from_cvat};
use super::super::labels::{INDEX_ATTR, LabelMap, has_index};
use super::frames::FrameRange;
use super::tracks::{Flatten, UploadedFrames, flatten, shape_index, video_to_cvat};
use super::window::{TrackPrint, changed};
use crate::backend::convert::{ConvertError, ImageSize};
use crate::backend::{DownloadedLabel, FrameSpan, SampleAnnotations, TrackKey, TrackSpans};
use crate::dataset::FrameNumber;
use crate::schema::ResolvedSchema;

/// A track as uploaded: its CVAT id, its field, index and class, its print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRecord {
    pub id: i64,
    /// The frame field (`None` in records written before it was kept: any field that
    /// uploaded the index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub index: i64,
    /// The class (`None` in records written before it was kept: every class carrying the
    /// index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub print: TrackPrint,
}

impl TrackRecord {
    /// The track its labels are.
    fn track(&self) -> TrackKey {
        TrackKey {
            index: self.index,
            class: self.class.clone(),
        }
    }
}

/// What the run's record keeps of a video task once its labels are up: the tracks the server
/// made of them (ids, indexes, prints) and what went up on each frame.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct VideoNotes {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<TrackRecord>,
    #[serde(default)]
    pub uploaded: UploadedFrames,
}

/// One video: its frame count and size, the frames its task holds.
#[derive(Debug, Clone, Copy)]
pub struct Video {
    pub frame_count: u64,
    pub size: ImageSize,
    pub range: FrameRange,
}

impl Video {
    fn task_size(&self) -> u64 {
        self.range.task_size(self.frame_count)
    }

    /// The video frame index (from 0) of task frame `f`.
    fn index(&self, f: u64) -> u64 {
        self.range.frame_number(f) - 1
    }

    /// One past the last video frame the task holds.
    fn end(&self) -> u64 {
        match self.task_size() {
            0 => 0,
            n => self.index(n - 1) + 1,
        }
    }

    /// A range of task frames as the video frames it decides: from just after the task
    /// frame before it to the task frame after it.
    fn video_range(&self, r: &Range<u64>) -> Range<u64> {
        let from = match r.start {
            0 => self.index(0),
            a => self.index(a - 1) + 1,
        };
        let to = if r.end >= self.task_size() {
            self.end()
        } else {
            self.index(r.end)
        };
        from..to
    }
}

/// What a video's upload sends and what it knows of it.
#[derive(Debug, Default)]
pub struct VideoUpload {
    pub annotations: Annotations,
    pub uploaded: UploadedFrames,
}

/// A video's labels (field → (FiftyOne frame number, label), by frame) as its task's
/// annotations.
/// Frames the task does not hold are left out; existing tracks with a `frame_step` are
/// refused, as FiftyOne refuses them (their labels between the task's frames could not be
/// told apart from deleted ones).
pub fn upload(
    schema: &ResolvedSchema,
    fields: &IndexMap<String, Vec<(u64, &Value)>>,
    video: &Video,
    map: &LabelMap,
) -> Result<VideoUpload, ConvertError> {
    let mut out = VideoUpload::default();
    let mut keyframes = new_track_fields(schema);
    for (name, labels) in fields {
        let Some(field) = schema.fields.get(name.as_str()) else {
            continue;
        };
        let held: Vec<(u64, &Value)> = labels
            .iter()
            .filter_map(|(n, l)| Some((video.range.task_frame(*n, video.frame_count)?, *l)))
            .collect();
        if has_index(field.label_type) && held.iter().any(|(_, l)| marked_keyframe(l)) {
            keyframes.insert(name.clone());
        }
        let tracked = held
            .iter()
            .any(|(_, l)| l.get("index").is_some_and(Value::is_i64));
        if tracked && video.range.step > 1 {
            return Err(ConvertError {
                field: name.clone(),
                message: format!(
                    "cannot upload existing tracks with frame_step {} (FiftyOne refuses it too: \
                     edits between the uploaded frames could not be merged)",
                    video.range.step
                ),
            });
        }
        for (f, l) in &held {
            out.uploaded.add(name, video.index(*f), l);
        }
        let before = (out.annotations.shapes.len(), out.annotations.tags.len());
        video_to_cvat(
            name,
            field,
            &held,
            video.size,
            map,
            video.task_size(),
            &mut out.annotations,
        )?;
        let plain = out.annotations.shapes[before.0..]
            .iter()
            .map(|s| s.frame)
            .chain(out.annotations.tags[before.1..].iter().map(|t| t.frame));
        for f in plain.collect::<Vec<_>>() {
            out.uploaded.add_plain_frame(video.index(f));
        }
        for s in &out.annotations.shapes[before.0..] {
            if let Some((field, track)) = shape_index(s, map) {
                out.uploaded
                    .add_plain_track(&field, video.index(s.frame), track);
            }
        }
    }
    out.uploaded.set_keyframes(keyframes);
    Ok(out)
}

fn marked_keyframe(label: &Value) -> bool {
    label.get("keyframe").and_then(Value::as_bool) == Some(true)
}

/// The new track fields of `schema`: FiftyOne's loader always imports their `keyframe` marks,
/// as it does an existing field's when the labels it uploaded mark keyframes (only those went
/// up then); otherwise it never imports them.
fn new_track_fields(schema: &ResolvedSchema) -> BTreeSet<String> {
    schema
        .fields
        .iter()
        .filter(|(k, f)| k.is_frame() && has_index(f.label_type) && !f.existing)
        .map(|(k, _)| k.to_string())
        .collect()
}

/// A downloaded frame label's `keyframe` as FiftyOne's loader leaves it: where the marks are
/// imported, `true` on a keyframe and `null` elsewhere (FiftyOne sets `None` on every label it
/// merges; the merge writes it only over a mark the label had); else no `keyframe` at all.
fn keyframe_as_loaded(label: &mut Value, imported: bool) {
    let Some(o) = label.as_object_mut() else {
        return;
    };
    let key = o.get("keyframe").and_then(Value::as_bool) == Some(true);
    match imported {
        true => o.insert(
            "keyframe".into(),
            if key { Value::Bool(true) } else { Value::Null },
        ),
        false => o.remove("keyframe"),
    };
}

/// The tracks the server echoed for an upload, to record: id, index, print.
pub fn track_records(echo: &Annotations, map: &LabelMap) -> Vec<TrackRecord> {
    echo.tracks
        .iter()
        .filter_map(|t| {
            let spec = map.label(t.label_id)?.spec_ids.get(INDEX_ATTR)?;
            let index = t
                .shapes
                .iter()
                .flat_map(|s| &s.attributes)
                .find(|a| a.spec_id == *spec)?
                .value
                .parse()
                .ok()?;
            let mapped = map.label(t.label_id);
            Some(TrackRecord {
                id: t.id?,
                field: mapped.map(|m| m.field.clone()),
                index,
                class: mapped.map(|m| m.class.clone()),
                print: TrackPrint::of(t, map),
            })
        })
        .collect()
}

/// A video task's download.
#[derive(Debug, Default)]
pub struct VideoDownload {
    /// FiftyOne frame number → labels, for the handed frames that hold any.
    pub frames: BTreeMap<u64, Downloaded>,
    /// The handed frames (FiftyOne frame numbers, sorted disjoint ranges).
    pub handed: Vec<Range<u64>>,
    /// Field → track (index and class) → its handed frames (FiftyOne frame numbers, sorted
    /// disjoint ranges): on its other handed frames a track is not handed.
    pub tracks: BTreeMap<String, BTreeMap<TrackKey, Vec<Range<u64>>>>,
}

impl VideoDownload {
    /// The video's sample as a download hands it: the frame labels of the handed frames
    /// (every frame field of `schema` present, empty when it holds none there) and those
    /// frames, the only ones that are evidence.
    pub fn into_sample(self, schema: &ResolvedSchema) -> SampleAnnotations {
        let mut fields: IndexMap<String, Vec<DownloadedLabel>> = schema
            .fields
            .keys()
            .filter(|k| k.is_frame())
            .map(|k| (k.to_string(), Vec::new()))
            .collect();
        for (n, labels) in self.frames {
            let Some(number) = FrameNumber::new(n) else {
                continue;
            };
            for (k, ls) in labels.labels {
                let ls = ls.into_iter().map(|l| l.on_frame(number));
                fields.entry(k).or_default().extend(ls);
            }
        }
        let tracks: TrackSpans = self
            .tracks
            .into_iter()
            .map(|(field, by_index)| {
                let by_index = by_index.into_iter().map(|(i, rs)| (i, spans(&rs)));
                (field, by_index.collect())
            })
            .collect();
        SampleAnnotations::frames(fields, spans(&self.handed)).with_tracks(tracks)
    }
}

/// FiftyOne frame number ranges as frame spans.
fn spans(ranges: &[Range<u64>]) -> Vec<FrameSpan> {
    ranges
        .iter()
        .filter_map(|r| {
            Some(FrameSpan::new(
                FrameNumber::new(r.start)?,
                FrameNumber::new(r.end - 1)?,
            ))
        })
        .collect()
}

/// The task's annotations as labels on the frames that can hold a change: each track's
/// labels on the frames its change decides only (an untouched track is not handed, even on
/// frames another track hands), every label on the frames with per-frame shapes or tags.
pub fn download(
    schema: &ResolvedSchema,
    ann: Annotations,
    video: &Video,
    map: &LabelMap,
    records: &[TrackRecord],
    uploaded: &UploadedFrames,
) -> VideoDownload {
    let task_size = video.task_size();
    let by_id: HashMap<i64, &TrackRecord> = records.iter().map(|r| (r.id, r)).collect();
    let in_video = |rs: Vec<Range<u64>>| -> Vec<Range<u64>> {
        rs.iter().map(|r| video.video_range(r)).collect()
    };
    // Per track, the video frames its change decides.
    let windows: Vec<Vec<Range<u64>>> = ann
        .tracks
        .iter()
        .map(|t| {
            let before = t.id.and_then(|id| by_id.get(&id)).map(|r| &r.print);
            in_video(changed(before, &TrackPrint::of(t, map), task_size))
        })
        .collect();
    let mut tracks: BTreeMap<String, BTreeMap<TrackKey, Vec<Range<u64>>>> = BTreeMap::new();
    let mut hand = |field: &str, track: &TrackKey, rs: &[Range<u64>]| {
        if !rs.is_empty() {
            let at = tracks.entry(field.to_string()).or_default();
            at.entry(track.clone())
                .or_default()
                .extend(rs.iter().cloned());
        }
    };
    let present: BTreeSet<i64> = ann.tracks.iter().filter_map(|t| t.id).collect();
    let used = uploaded.indexes();
    for gone in records.iter().filter(|r| !present.contains(&r.id)) {
        let empty = TrackPrint {
            header: gone.print.header,
            keys: Vec::new(),
            ends: gone.print.ends,
        };
        let rs = in_video(changed(Some(&gone.print), &empty, task_size));
        let fields: Vec<&String> = match &gone.field {
            Some(f) => vec![f],
            None => used
                .iter()
                .filter(|(_, ixs)| ixs.contains(&gone.index))
                .map(|(f, _)| f)
                .collect(),
        };
        for f in fields {
            hand(f, &gone.track(), &rs);
        }
    }
    // Per-frame shapes and tags, now or at upload: their frames, and their indexes there.
    let plain: Vec<u64> = ann
        .shapes
        .iter()
        .map(|s| s.frame)
        .chain(ann.tags.iter().map(|t| t.frame))
        .map(|f| video.index(f))
        .chain(uploaded.plain_frames())
        .collect();
    for s in &ann.shapes {
        if let Some((field, track)) = shape_index(s, map) {
            let f = video.index(s.frame);
            hand(&field, &track, &[f..f + 1]);
        }
    }
    for (field, f, track) in uploaded.plain_tracks() {
        hand(field, track, &[*f..*f + 1]);
    }

    // The changed tracks' labels on their frames, in video frames.
    let mut frames: BTreeMap<u64, Annotations> = BTreeMap::new();
    let moved: Vec<Track> = ann
        .tracks
        .into_iter()
        .map(|mut t| {
            for s in &mut t.shapes {
                s.frame = video.index(s.frame);
            }
            t.frame = video.index(t.frame);
            t
        })
        .collect();
    let recorded: HashMap<i64, TrackKey> = records.iter().map(|r| (r.id, r.track())).collect();
    let cx = Flatten {
        end_frame: video.end(),
        map,
        recorded: &recorded,
        uploaded,
        used: &used,
    };
    let flat = flatten(&moved, &cx, Some(&windows));
    for ((field, track), rs) in flat.indexes.iter().zip(&windows) {
        hand(field, track, rs);
    }
    for s in flat.shapes {
        frames.entry(s.frame).or_default().shapes.push(s);
    }
    for mut s in ann.shapes {
        s.frame = video.index(s.frame);
        frames.entry(s.frame).or_default().shapes.push(s);
    }
    for mut t in ann.tags {
        t.frame = video.index(t.frame);
        frames.entry(t.frame).or_default().tags.push(t);
    }
    let frames = frames
        .into_iter()
        .map(|(f, a)| {
            let mut got = from_cvat(schema, &a, f, video.size, map, &HashMap::new());
            for (field, labels) in &mut got.labels {
                let frame_field = schema.fields.get_key_value(field.as_str());
                if frame_field.is_some_and(|(k, _)| k.is_frame()) {
                    let imported = uploaded.marks_keyframes(field);
                    for l in labels {
                        keyframe_as_loaded(&mut l.label, imported);
                    }
                }
            }
            (f + 1, got)
        })
        .collect();
    let handed = windows
        .into_iter()
        .flatten()
        .chain(tracks.values().flat_map(|t| t.values().flatten().cloned()))
        .chain(plain.into_iter().map(|f| f..f + 1))
        .collect();
    let numbered = |rs: Vec<Range<u64>>| -> Vec<Range<u64>> {
        merged(rs)
            .into_iter()
            .map(|r| r.start + 1..r.end + 1)
            .collect()
    };
    VideoDownload {
        frames,
        handed: numbered(handed),
        tracks: tracks
            .into_iter()
            .map(|(field, by_index)| {
                let by_index = by_index.into_iter().map(|(i, rs)| (i, numbered(rs)));
                (field, by_index.collect())
            })
            .collect(),
    }
}

/// Sorted, merged ranges.
fn merged(mut v: Vec<Range<u64>>) -> Vec<Range<u64>> {
    v.retain(|r| r.start < r.end);
    v.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cvat::convert::Shape;
    use crate::backend::cvat::labels::label_specs;
    use crate::backend::cvat::labels::tests::{attr, field, serve};
    use crate::manifest::{AttributeType, LabelType, Scalar};
    use serde_json::json;

    const FIELD: &str = "frames.dets";

    /// `frames.dets`: cars and trucks with an immutable select `kind`.
    fn setup() -> (ResolvedSchema, LabelMap) {
        let mut dets = field(LabelType::Detections, &["car", "truck"]);
        let values = vec![Scalar::Str("sedan".into()), Scalar::Str("van".into())];
        let mut kind = attr(AttributeType::Select, values, None);
        kind.mutable = false;
        dets.attributes.insert("kind".into(), kind);
        let mut schema = ResolvedSchema::default();
        schema.fields.insert(FIELD.into(), dets);
        let map = LabelMap::new(&schema, &serve(&label_specs(&schema))).unwrap();
        (schema, map)
    }

    fn video(step: u64) -> Video {
        Video {
            frame_count: 60,
            size: ImageSize {
                width: 100,
                height: 100,
            },
            range: FrameRange {
                step,
                ..FrameRange::default()
            },
        }
    }

    fn id(track: i64, frame: u64) -> String {
        format!("{track:012x}{frame:012x}")
    }

    /// Tracks 1-3 on every frame, moving linearly, every 10th frame (1, 11, ...) a keyframe.
    fn labels() -> IndexMap<String, BTreeMap<u64, Vec<Value>>> {
        let frames = (1..=60)
            .map(|n| {
                let ls = (1..=3)
                    .map(|t| {
                        let mut l = json!({"_id": {"$oid": id(t, n)}, "_cls": "Detection",
                            "label": "car", "kind": "sedan", "index": t,
                            "bounding_box": [0.1 * t as f64 + 0.001 * n as f64, 0.2, 0.1, 0.1]});
                        if n % 10 == 1 {
                            l["keyframe"] = json!(true);
                        }
                        l
                    })
                    .collect();
                (n, ls)
            })
            .collect();
        IndexMap::from([(FIELD.to_string(), frames)])
    }

    /// The labels one by one with their frame numbers, as `upload` takes them.
    fn by_label(
        fields: &IndexMap<String, BTreeMap<u64, Vec<Value>>>,
    ) -> IndexMap<String, Vec<(u64, &Value)>> {
        fields
            .iter()
            .map(|(k, frames)| {
                let ls = frames
                    .iter()
                    .flat_map(|(n, ls)| ls.iter().map(|l| (*n, l)))
                    .collect();
                (k.clone(), ls)
            })
            .collect()
    }

    /// Uploads, lets the "server" give ids, and returns its tracks and what was recorded.
    fn uploaded(v: &Video) -> (Vec<Track>, Vec<TrackRecord>, UploadedFrames) {
        let (schema, map) = setup();
        let owned = labels();
        let up = upload(&schema, &by_label(&owned), v, &map).unwrap();
        let mut echo = up.annotations.clone();
        for (i, t) in echo.tracks.iter_mut().enumerate() {
            t.id = Some(10 + i as i64);
        }
        let records = track_records(&echo, &map);
        (echo.tracks, records, up.uploaded)
    }

    fn get(d: &VideoDownload, n: u64) -> Vec<Value> {
        d.frames
            .get(&n)
            .and_then(|f| f.labels.get(FIELD))
            .map(|ls| ls.iter().map(|l| l.label.clone()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_untouched_task_hands_no_frame() {
        let (schema, map) = setup();
        let v = video(1);
        let (tracks, records, up) = uploaded(&v);
        assert_eq!(records.len(), 3);
        assert_eq!(tracks[0].shapes.len(), 6, "the keyframes only, to the end");
        let ann = Annotations {
            tracks,
            ..Annotations::default()
        };
        let d = download(&schema, ann, &v, &map, &records, &up);
        assert!(d.handed.is_empty() && d.frames.is_empty(), "{:?}", d.handed);
    }

    #[test]
    fn edits_hand_the_frames_they_decide_with_every_label_on_them() {
        let (schema, map) = setup();
        let v = video(1);
        let (mut tracks, records, up) = uploaded(&v);
        // Track 1: the keyframe on frame 21 moved right.
        let k = tracks[0].shapes.iter_mut().find(|s| s.frame == 20).unwrap();
        k.points[0] += 10.0;
        k.points[2] += 10.0;
        // Track 2: deleted. Track 3: relabelled in CVAT's UI (every attribute cleared).
        tracks.remove(1);
        let truck = map.label_of(FIELD, "truck").unwrap().id;
        tracks[1].label_id = truck;
        tracks[1].attributes.clear();
        for s in &mut tracks[1].shapes {
            s.attributes.clear();
        }
        let ann = Annotations {
            tracks,
            ..Annotations::default()
        };
        let d = download(&schema, ann, &v, &map, &records, &up);
        assert_eq!(
            d.handed,
            vec![1..61],
            "the relabelled and the deleted track: every frame"
        );
        let at25 = get(&d, 25);
        assert_eq!(at25.len(), 2, "track 2 is gone: {at25:?}");
        let t1 = at25.iter().find(|l| l["index"] == 1).unwrap();
        assert_eq!(t1["_id"], json!({"$oid": id(1, 25)}));
        let x = t1["bounding_box"][0].as_f64().unwrap();
        assert!(
            (x - 0.185).abs() < 1e-9,
            "from the moved key (0.221) towards 0.131: {x}"
        );
        assert_eq!(t1["kind"], "sedan");
        let t3 = at25.iter().find(|l| l["index"] == 3).unwrap();
        assert_eq!(
            t3["_id"],
            json!({"$oid": id(3, 25)}),
            "kept through the track id"
        );
        assert_eq!(t3["label"], "truck");
        assert!(t3.get("kind").is_none());
        assert_eq!(get(&d, 21)[0]["keyframe"], true);
        assert_eq!(get(&d, 16)[0]["keyframe"], Value::Null);
    }

    /// The annotator drags the first track's keyframe at frame 20 by 10 pixels.
    fn move_keyframe_20(tracks: &mut [Track]) {
        let shape = tracks[0].shapes.iter_mut().find(|s| s.frame == 20).unwrap();
        shape.points[0] += 10.0;
    }

    /// `records` and `up` as written before classes were kept: no `class` on the tracks, runs
    /// of (index, first frame, ids).
    fn without_classes(
        records: &[TrackRecord],
        up: &UploadedFrames,
    ) -> (Vec<TrackRecord>, UploadedFrames) {
        let mut r = serde_json::to_value(records).unwrap();
        for t in r.as_array_mut().unwrap() {
            t.as_object_mut().unwrap().remove("class");
        }
        let mut u = serde_json::to_value(up).unwrap();
        for runs in u["tracks"].as_object_mut().unwrap().values_mut() {
            for run in runs.as_array_mut().unwrap() {
                run.as_array_mut().unwrap().truncate(3);
            }
        }
        (
            serde_json::from_value(r).unwrap(),
            serde_json::from_value(u).unwrap(),
        )
    }

    #[test]
    fn records_without_classes_hand_what_they_handed_before() {
        let (schema, map) = setup();
        let v = video(1);
        let (mut tracks, records, up) = uploaded(&v);
        let (old_records, old_up) = without_classes(&records, &up);
        assert!(old_records.iter().all(|r| r.class.is_none()));
        move_keyframe_20(&mut tracks);
        tracks.remove(1);
        let ann = Annotations {
            tracks,
            ..Annotations::default()
        };
        let new = download(&schema, ann.clone(), &v, &map, &records, &up);
        let old = download(&schema, ann, &v, &map, &old_records, &old_up);
        assert_eq!(old.handed, new.handed);
        assert_eq!(
            old.frames.keys().collect::<Vec<_>>(),
            new.frames.keys().collect::<Vec<_>>()
        );
        for n in [12, 25, 40] {
            assert_eq!(get(&old, n), get(&new, n), "frame {n}");
        }
        assert_eq!(get(&old, 25)[0]["_id"], json!({"$oid": id(1, 25)}));
        let dets = &old.tracks[FIELD];
        assert_eq!(
            dets.keys().cloned().collect::<Vec<_>>(),
            vec![TrackKey::new(1, "car"), TrackKey::any_class(2)],
            "the deleted track's old record stands for every class of its index"
        );
        assert_eq!(
            new.tracks[FIELD][&TrackKey::new(2, "car")],
            dets[&TrackKey::any_class(2)]
        );
    }

    #[test]
    fn a_moved_keyframe_hands_the_frames_between_its_neighbours_and_a_new_track_its_own() {
        let (schema, map) = setup();
        let v = video(1);
        let (mut tracks, records, up) = uploaded(&v);
        move_keyframe_20(&mut tracks);
        let key = |frame: u64, x: f64, outside: bool| -> Shape {
            serde_json::from_value(
                json!({"type": "rectangle", "frame": frame, "outside": outside,
                "points": [x, 10.0, x + 10.0, 20.0]}),
            )
            .unwrap()
        };
        let car = map.label_of(FIELD, "car").unwrap().id;
        tracks.push(Track {
            id: Some(99),
            frame: 40,
            label_id: car,
            group: None,
            source: "manual".into(),
            attributes: Vec::new(),
            shapes: vec![
                key(40, 0.0, false),
                key(50, 50.0, false),
                key(51, 50.0, true),
            ],
            elements: Vec::new(),
        });
        let ann = Annotations {
            tracks,
            ..Annotations::default()
        };
        let d = download(&schema, ann, &v, &map, &records, &up);
        assert_eq!(
            d.handed,
            vec![12..31, 41..52],
            "the new track ends at its outside key"
        );
        assert_eq!(get(&d, 5), Vec::<Value>::new(), "not handed");
        assert_eq!(
            get(&d, 25).len(),
            1,
            "only the moved track's label: {:?}",
            get(&d, 25)
        );
        let dets = &d.tracks[FIELD];
        let car = |i: i64| TrackKey::new(i, "car");
        assert_eq!(
            dets[&car(1)],
            vec![12..31],
            "track 1 on the moved key's frames"
        );
        assert_eq!(dets[&car(4)], vec![41..52], "the new track on its own");
        assert!(
            !dets.contains_key(&car(2)) && !dets.contains_key(&car(3)),
            "untouched: {dets:?}"
        );
        let new: Vec<Value> = (41..=52)
            .flat_map(|n| get(&d, n))
            .filter(|l| l["index"] == 4)
            .collect();
        assert_eq!(new.len(), 11, "frames 41-51, a new index after 1-3");
        assert!(new.iter().all(|l| l.get("_id").is_none()));
        let x = new[5]["bounding_box"][0].as_f64().unwrap();
        assert!((x - 0.25).abs() < 1e-9, "{x}");
    }

    #[test]
    fn frame_step_five_on_sixty_frames() {
        let (schema, map) = setup();
        let v = video(5);
        let owned = labels();
        let err = upload(&schema, &by_label(&owned), &v, &map).unwrap_err();
        assert!(err.message.contains("frame_step 5"), "{err}");
        // A new field: nothing uploaded; a track drawn on task frames 2 and 4 (video frames
        // 11 and 21) arrives on every video frame between, as FiftyOne interpolates it, with
        // `keyframe` on its keyframes only (FiftyOne always imports a new field's marks).
        let mut schema = schema;
        schema.fields.get_mut(FIELD).unwrap().existing = false;
        let none = IndexMap::new();
        let up = upload(&schema, &none, &v, &map).unwrap();
        let car = map.label_of(FIELD, "car").unwrap().id;
        let ann: Annotations = serde_json::from_value(json!({"tracks": [{
            "id": 7, "frame": 2, "label_id": car, "shapes": [
                {"type": "rectangle", "frame": 2, "points": [0, 0, 10, 10]},
                {"type": "rectangle", "frame": 4, "points": [10, 0, 20, 10]},
                {"type": "rectangle", "frame": 5, "points": [10, 0, 20, 10], "outside": true}]}]}))
        .unwrap();
        let d = download(&schema, ann, &v, &map, &[], &up.uploaded);
        let numbers: Vec<u64> = d.frames.keys().copied().collect();
        assert_eq!(numbers, (11..=25).collect::<Vec<_>>());
        let x = get(&d, 16)[0]["bounding_box"][0].as_f64().unwrap();
        assert!((x - 0.05).abs() < 1e-9, "{x}");
        assert_eq!(get(&d, 21)[0]["keyframe"], true);
    }
}
