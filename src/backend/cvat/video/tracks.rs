//! A video field's frame labels ↔ CVAT tracks, as FiftyOne does it.
//!
//! Up: labels sharing an `index` (per CVAT label, i.e. per class) become one track whose
//! shapes are the labels' frames; a gap ends the track with an `outside` shape and the next
//! frame starts it again, and a track ending before the task does gets a closing `outside`
//! shape. When any label of the field has `keyframe` set, only keyframes are sent (plus the
//! first frame of each stretch and the `outside` shapes), else every frame is a keyframe.
//! Immutable attributes (and the group) go on the track, mutable ones on each shape: CVAT
//! answers a mutable attribute on a track with a 400. Labels without an index, and labels
//! that are several shapes, stay per-frame shapes (their index, if any, travels in the
//! `index` attribute as for images).
//!
//! Down: each track expands with CVAT's interpolation ([`super::interpolate`]) to plain
//! shapes, one per visible frame, with the track's label, group and immutable attributes,
//! `keyframe` on keyframes. The index of a track is the one recorded for its id at upload (a
//! track relabelled in CVAT's UI loses every attribute but keeps its id), else the `index`
//! attribute of its shapes, else a new one after every index in use; a second track claiming
//! an index keeps none of it and gets a new one too. A frame's label is the one uploaded on
//! that frame with that index: an interpolated frame carries its keyframe's `label_id`
//! forward, which names another frame's label.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use indexmap::IndexMap;
use serde_json::Value;

use super::super::convert::{AttributeValue, Shape, Track, to_cvat};
use super::super::labels::{INDEX_ATTR, LABEL_ID_ATTR, LabelMap};
use super::interpolate;
pub use super::uploaded::UploadedFrames;
use crate::backend::TrackKey;
use crate::backend::convert::{ConvertError, ImageSize};
use crate::backend::cvat::convert::Annotations;
use crate::schema::ResolvedField;

/// Adds a video field's labels to `out`: `labels` holds (task frame, label), frames in
/// increasing order; `task_size` is the number of frames in the task.
pub fn video_to_cvat(
    name: &str,
    field: &ResolvedField,
    labels: &[(u64, &Value)],
    size: ImageSize,
    map: &LabelMap,
    task_size: u64,
    out: &mut Annotations,
) -> Result<(), ConvertError> {
    let only_keyframes = labels
        .iter()
        .any(|(_, l)| l.get("keyframe").and_then(Value::as_bool) == Some(true));
    let mut tracks: IndexMap<(i64, i64), Building> = IndexMap::new();
    for &(frame, label) in labels {
        {
            let mut one = Annotations::default();
            to_cvat(
                name,
                field,
                std::slice::from_ref(label),
                frame,
                size,
                map,
                &mut one,
            )?;
            let index = label.get("index").and_then(Value::as_i64);
            let keyframe = label.get("keyframe").and_then(Value::as_bool) == Some(true);
            match (
                index,
                one.shapes.pop(),
                one.shapes.is_empty() && one.tags.is_empty(),
            ) {
                (Some(i), Some(s), true) => {
                    let key = (s.label_id, i);
                    match tracks.get_mut(&key) {
                        // One shape per frame and track; a second one on a frame stays a
                        // shape.
                        Some(b) if b.last.frame == frame => out.shapes.push(s),
                        Some(b) => b.push(s, keyframe || !only_keyframes),
                        None => {
                            tracks.insert(key, Building::new(s, map));
                        }
                    }
                }
                (_, last, _) => {
                    out.tags.extend(one.tags);
                    out.shapes.extend(one.shapes);
                    out.shapes.extend(last);
                }
            }
        }
    }
    out.tracks
        .extend(tracks.into_values().map(|b| b.finish(task_size)));
    Ok(())
}

/// A track being built frame by frame: only the shapes it sends are kept, and the last
/// one (a gap or the end copies it as the `outside` shape, towards which CVAT moves the
/// last keyframe).
struct Building {
    track: Track,
    immutable: std::collections::HashSet<i64>,
    last: Shape,
}

impl Building {
    fn new(first: Shape, map: &LabelMap) -> Building {
        let immutable = map
            .label(first.label_id)
            .map(|m| m.immutable.clone())
            .unwrap_or_default();
        let track = Track {
            id: None,
            frame: first.frame,
            label_id: first.label_id,
            group: first.group,
            source: first.source.clone(),
            attributes: first
                .attributes
                .iter()
                .filter(|a| immutable.contains(&a.spec_id))
                .cloned()
                .collect(),
            shapes: Vec::new(),
            elements: Vec::new(),
        };
        let mut b = Building {
            track,
            immutable,
            last: first.clone(),
        };
        b.send(&first, first.frame, false);
        b
    }

    /// Adds `s` as a tracked shape on `frame`.
    fn send(&mut self, s: &Shape, frame: u64, outside: bool) {
        let attributes = s
            .attributes
            .iter()
            .filter(|a| !self.immutable.contains(&a.spec_id))
            .cloned()
            .collect();
        self.track.shapes.push(Shape {
            id: None,
            frame,
            label_id: 0,
            group: None,
            outside,
            attributes,
            ..s.clone()
        });
    }

    /// The next frame's shape; `send`: it is sent (a keyframe, or every frame is).
    fn push(&mut self, s: Shape, send: bool) {
        let last = std::mem::replace(&mut self.last, s);
        // A gap ends the stretch with an outside shape; the next frame starts a new one.
        let starts = self.last.frame > last.frame + 1;
        if starts {
            self.send(&last, last.frame + 1, true);
        }
        if starts || send {
            let s = self.last.clone();
            self.send(&s, s.frame, false);
        }
    }

    /// The track, closed with an outside shape when it ends before the task does.
    fn finish(mut self, task_size: u64) -> Track {
        if self.last.frame + 1 < task_size {
            let last = self.last.clone();
            self.send(&last, last.frame + 1, true);
        }
        self.track
    }
}

/// What [`flatten`] needs besides the tracks.
pub struct Flatten<'a> {
    /// The task's size.
    pub end_frame: u64,
    pub map: &'a LabelMap,
    /// The track (index and class) recorded for each track id at upload.
    pub recorded: &'a HashMap<i64, TrackKey>,
    pub uploaded: &'a UploadedFrames,
    /// Indexes a new track must not take, per field (every index uploaded).
    pub used: &'a HashMap<String, BTreeSet<i64>>,
}

/// A task's tracks as [`flatten`] gives them.
#[derive(Debug, Default)]
pub struct Flat {
    /// The visible frames of the tracks as plain shapes (in track order, then frame).
    pub shapes: Vec<Shape>,
    /// Each track's field and the track (index and class) its labels take.
    pub indexes: Vec<(String, TrackKey)>,
}

/// The track of a shape's `index` attribute and its class, with its field.
pub fn shape_index(s: &Shape, map: &LabelMap) -> Option<(String, TrackKey)> {
    let mapped = map.label(s.label_id)?;
    let spec = mapped.spec_ids.get(INDEX_ATTR)?;
    let value = s.attributes.iter().find(|a| a.spec_id == *spec)?;
    let track = TrackKey::new(value.value.parse().ok()?, mapped.class.clone());
    Some((mapped.field.clone(), track))
}

/// The visible frames of a task's tracks as plain shapes, ready for `from_cvat`; with
/// `only` (one list per track), just the frames in that track's ranges (see `window`).
pub fn flatten(tracks: &[Track], cx: &Flatten<'_>, only: Option<&[Vec<Range<u64>>]>) -> Flat {
    let Flatten {
        end_frame,
        map,
        recorded,
        uploaded,
        used,
    } = *cx;
    let field_of = |t: &Track| {
        map.label(t.label_id)
            .map(|m| m.field.clone())
            .unwrap_or_default()
    };
    let class_of = |t: &Track| map.label(t.label_id).map(|m| m.class.clone());
    let spec = |t: &Track, name: &str| map.label(t.label_id)?.spec_ids.get(name).copied();
    let value = |s: &Shape, spec_id: Option<i64>| {
        s.attributes
            .iter()
            .find(|a| Some(a.spec_id) == spec_id)
            .map(|a| a.value.clone())
    };
    // Where each track came from: the track of the uploaded labels its keyframes name (on
    // their own frames), else the one recorded for its id, else the index its shapes carry.
    let source: Vec<Option<TrackKey>> = tracks
        .iter()
        .map(|t| {
            let named = t.shapes.iter().find_map(|s| {
                let id = value(s, spec(t, LABEL_ID_ATTR))?;
                uploaded.on_frame(&id, s.frame)?
            });
            let carried = || {
                let index = t
                    .shapes
                    .iter()
                    .find_map(|s| value(s, spec(t, INDEX_ATTR))?.parse().ok())?;
                Some(TrackKey {
                    index,
                    class: class_of(t),
                })
            };
            named
                .or_else(|| t.id.and_then(|id| recorded.get(&id).cloned()))
                .or_else(carried)
        })
        .collect();
    // The index each track keeps (CVAT keeps one track per index and class): the recorded one
    // for its id, else its source's, first come first served; the others get new ones, after
    // every index in use in the field.
    let mut taken: HashMap<String, BTreeSet<TrackKey>> = HashMap::new();
    let mut index: Vec<Option<i64>> = vec![None; tracks.len()];
    for by_id in [true, false] {
        for (i, t) in tracks.iter().enumerate() {
            if index[i].is_some() {
                continue;
            }
            let claim = if by_id {
                t.id.and_then(|id| recorded.get(&id)).map(|k| k.index)
            } else {
                source[i].as_ref().map(|k| k.index)
            };
            let key = |ix: i64| TrackKey {
                index: ix,
                class: class_of(t),
            };
            if let Some(ix) = claim
                && taken.entry(field_of(t)).or_default().insert(key(ix))
            {
                index[i] = Some(ix);
            }
        }
    }
    let mut out = Flat::default();
    for (i, t) in tracks.iter().enumerate() {
        let field = field_of(t);
        let ix = index[i].unwrap_or_else(|| {
            let set = taken.entry(field.clone()).or_default();
            let before = used.get(&field).and_then(|u| u.last());
            let next = set
                .last()
                .map(|k| &k.index)
                .max(before)
                .map_or(1, |m| m + 1);
            set.insert(TrackKey {
                index: next,
                class: class_of(t),
            });
            next
        });
        let track = TrackKey {
            index: ix,
            class: class_of(t),
        };
        out.indexes.push((field.clone(), track));
        let (id_spec, ix_spec) = (spec(t, LABEL_ID_ATTR), spec(t, INDEX_ATTR));
        let windows = only.map(|o| o.get(i).map_or(&[][..], Vec::as_slice));
        let wanted = |f: u64| windows.is_none_or(|o| o.iter().any(|r| r.contains(&f)));
        for mut s in interpolate::expand(&t.shapes, end_frame) {
            if !wanted(s.frame) {
                continue;
            }
            let named = value(&s, id_spec)
                .filter(|id| s.keyframe == Some(true) && uploaded.on_frame(id, s.frame).is_some());
            let id = named.or_else(|| {
                let src = source[i].as_ref()?;
                uploaded.at(&field, s.frame, src)
            });
            s.attributes
                .retain(|a| Some(a.spec_id) != id_spec && Some(a.spec_id) != ix_spec);
            if let Some(spec_id) = ix_spec {
                s.attributes.push(AttributeValue {
                    spec_id,
                    value: ix.to_string(),
                });
            }
            if let (Some(spec_id), Some(value)) = (id_spec, id) {
                s.attributes.push(AttributeValue { spec_id, value });
            }
            s.attributes.extend(t.attributes.iter().cloned());
            s.label_id = t.label_id;
            s.group = t.group;
            s.source = t.source.clone();
            s.track = Some(t.id.unwrap_or_default());
            out.shapes.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cvat::convert::from_cvat;
    use crate::backend::cvat::labels::label_specs;
    use crate::backend::cvat::labels::tests::{attr, field, serve};
    use crate::manifest::{AttributeType, LabelType};
    use crate::schema::ResolvedSchema;
    use serde_json::json;

    const SIZE: ImageSize = ImageSize {
        width: 100,
        height: 100,
    };

    /// `frames.dets`: vehicles with an immutable `kind` and a mutable `moving`.
    fn setup() -> (ResolvedSchema, LabelMap) {
        let mut dets = field(LabelType::Detections, &["vehicle"]);
        let mut kind = attr(AttributeType::Text, vec![], None);
        kind.mutable = false;
        dets.attributes.insert("kind".into(), kind);
        dets.attributes
            .insert("moving".into(), attr(AttributeType::Checkbox, vec![], None));
        let mut schema = ResolvedSchema::default();
        schema.fields.insert("dets".into(), dets);
        let map = LabelMap::new(&schema, &serve(&label_specs(&schema))).unwrap();
        (schema, map)
    }

    fn oid(n: u64) -> String {
        format!("{n:024x}")
    }

    fn det(id: u64, index: i64, x: f64, keyframe: bool) -> Value {
        let mut l = json!({"_id": {"$oid": oid(id)}, "_cls": "Detection", "label": "vehicle",
            "bounding_box": [x, 0.1, 0.2, 0.2], "index": index, "kind": "truck",
            "moving": true});
        if keyframe {
            l["keyframe"] = json!(true);
        }
        l
    }

    fn spec(map: &LabelMap, name: &str) -> i64 {
        map.label_of("dets", "vehicle").unwrap().spec_ids[name]
    }

    /// Frames 0..=9 of one track moving 0.01 a frame, keyframes every 3rd, then frame 12.
    fn frames() -> Vec<(u64, Vec<Value>)> {
        (0..10)
            .map(|f| (f, vec![det(f + 1, 1, 0.1 + 0.01 * f as f64, f % 3 == 0)]))
            .chain([(12, vec![det(13, 1, 0.3, true)])])
            .collect()
    }

    fn upload(frames: &[(u64, Vec<Value>)], map: &LabelMap, task_size: u64) -> Annotations {
        let (schema, _) = setup();
        let slices: Vec<(u64, &Value)> = frames
            .iter()
            .flat_map(|(f, ls)| ls.iter().map(|l| (*f, l)))
            .collect();
        let mut out = Annotations::default();
        video_to_cvat(
            "dets",
            &schema.fields["dets"],
            &slices,
            SIZE,
            map,
            task_size,
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn keyframes_up_immutable_attributes_on_the_track_outside_on_gaps_and_at_the_end() {
        let (_, map) = setup();
        let out = upload(&frames(), &map, 20);
        assert!(out.shapes.is_empty());
        let [t] = out.tracks.as_slice() else {
            panic!("one track: {out:?}")
        };
        let frames: Vec<(u64, bool)> = t.shapes.iter().map(|s| (s.frame, s.outside)).collect();
        assert_eq!(
            frames,
            [
                (0, false),
                (3, false),
                (6, false),
                (9, false),
                (10, true),
                (12, false),
                (13, true)
            ]
        );
        let kind = spec(&map, "kind");
        assert_eq!(
            t.attributes.iter().map(|a| a.spec_id).collect::<Vec<_>>(),
            vec![kind]
        );
        assert!(
            t.shapes
                .iter()
                .all(|s| s.label_id == 0 && s.group.is_none())
        );
        assert!(
            t.shapes
                .iter()
                .all(|s| s.attributes.iter().all(|a| a.spec_id != kind))
        );
        assert!(
            t.shapes[0]
                .attributes
                .iter()
                .any(|a| a.spec_id == spec(&map, "moving"))
        );
    }

    #[test]
    fn without_keyframe_marks_every_frame_is_sent_and_no_index_means_shapes() {
        let (_, map) = setup();
        let mut fs = frames();
        for (_, ls) in &mut fs {
            ls[0].as_object_mut().unwrap().remove("keyframe");
        }
        fs[0].1.push(
            json!({"_id": {"$oid": oid(99)}, "_cls": "Detection", "label": "vehicle",
            "bounding_box": [0.5, 0.5, 0.1, 0.1]}),
        );
        let out = upload(&fs, &map, 13);
        assert_eq!(out.shapes.len(), 1);
        assert_eq!(
            out.tracks[0].shapes.len(),
            12,
            "11 frames, one gap, no closing shape"
        );
    }

    /// The server's answer to a PUT of `up`, as GET returns it: ids assigned, mutable
    /// attributes carried forward.
    fn served(mut up: Annotations) -> Vec<Track> {
        for (i, t) in up.tracks.iter_mut().enumerate() {
            t.id = Some(500 + i as i64);
            t.frame = t.shapes[0].frame;
            for (j, s) in t.shapes.iter_mut().enumerate() {
                s.id = Some(700 + j as i64);
            }
        }
        up.tracks
    }

    fn down(tracks: &[Track], recorded: &HashMap<i64, TrackKey>, end: u64) -> Vec<Value> {
        let (schema, map) = setup();
        let mut uploaded = UploadedFrames::default();
        for (f, ls) in frames() {
            for l in &ls {
                uploaded.add("dets", f, l);
            }
        }
        let used = HashMap::new();
        let cx = Flatten {
            end_frame: end,
            map: &map,
            recorded,
            uploaded: &uploaded,
            used: &used,
        };
        let shapes = flatten(tracks, &cx, None).shapes;
        let ann = Annotations {
            shapes,
            ..Annotations::default()
        };
        (0..end)
            .flat_map(|f| {
                let got = from_cvat(&schema, &ann, f, SIZE, &map, &HashMap::new());
                got.labels
                    .get("dets")
                    .into_iter()
                    .flatten()
                    .map(|d| {
                        let mut l = d.label.clone();
                        l["backend"] = json!(d.backend_id);
                        l["frame"] = json!(f);
                        l
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn an_untouched_track_comes_back_label_for_label() {
        let (_, map) = setup();
        let tracks = served(upload(&frames(), &map, 20));
        let labels = down(&tracks, &HashMap::new(), 20);
        assert_eq!(labels.len(), 11, "frames 0-9 and 12");
        for (l, (f, sent)) in labels.iter().zip(frames()) {
            let sent = &sent[0];
            assert_eq!(l["frame"], f);
            assert_eq!(l["_id"], sent["_id"], "frame {f}");
            assert_eq!(l["index"], 1);
            assert_eq!(l["kind"], "truck");
            assert_eq!(l.get("keyframe"), sent.get("keyframe"), "frame {f}");
            let (x, y) = (
                l["bounding_box"][0].as_f64().unwrap(),
                sent["bounding_box"][0].as_f64().unwrap(),
            );
            assert!((x - y).abs() < 1e-9, "frame {f}: {x} vs {y}");
        }
        assert_eq!(labels[4]["backend"], "track:500");
    }

    #[test]
    fn a_relabelled_track_keeps_its_index_and_label_ids_through_its_recorded_id() {
        let (_, map) = setup();
        let mut tracks = served(upload(&frames(), &map, 20));
        for s in &mut tracks[0].shapes {
            s.attributes.clear();
        }
        tracks[0].attributes.clear();
        let recorded = HashMap::from([(500, TrackKey::new(1, "vehicle"))]);
        let labels = down(&tracks, &recorded, 20);
        assert!(labels.iter().all(|l| l["index"] == 1));
        assert_eq!(labels[5]["_id"], json!({"$oid": oid(6)}));
        // Without the record, FiftyOne's loss: no label ids (every label deleted, re-added).
        let lost = down(&tracks, &HashMap::new(), 20);
        assert!(lost.iter().all(|l| l.get("_id").is_none()));
    }

    #[test]
    fn a_split_track_gives_its_second_part_a_new_index_and_keeps_the_label_ids() {
        let (_, map) = setup();
        let whole = served(upload(&frames(), &map, 20)).remove(0);
        let (mut a, mut b) = (whole.clone(), whole);
        a.id = Some(600);
        a.shapes.retain(|s| s.frame <= 3);
        a.shapes.push(Shape {
            frame: 4,
            outside: true,
            ..a.shapes[1].clone()
        });
        b.id = Some(601);
        b.shapes.retain(|s| s.frame >= 6);
        let labels = down(
            &[a, b],
            &HashMap::from([(500, TrackKey::new(1, "vehicle"))]),
            20,
        );
        let at = |f: u64| labels.iter().find(|l| l["frame"] == f).unwrap();
        assert_eq!(at(2)["index"], 1);
        assert_eq!(at(7)["index"], 2);
        assert_eq!(
            at(7)["_id"],
            json!({"$oid": oid(8)}),
            "the label moved tracks"
        );
        assert!(labels.iter().all(|l| l["frame"] != 4 && l["frame"] != 5));
    }
}
