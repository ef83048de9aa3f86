//! What a video task's upload sent, kept with the run's record: the label on each frame of
//! each track (its ids name the labels of frames CVAT only interpolates) and the frames of
//! per-frame shapes. Written compactly (a track's ids on consecutive frames as one string of
//! 24-hex-digit ids), since a video holds a label per track and frame.
//!
//! A track is an index and a class (CVAT makes one track of each): records written before
//! classes were kept have none, and their index stands for every class carrying it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::backend::TrackKey;
use crate::dataset::ejson::ObjectId;

/// A track's place in the record: its index and its class's position (`None`: any class).
type Slot = (i64, Option<u16>);

/// The labels uploaded on a video's frames, by (field, frame, track) and by id, and the
/// frames that held labels sent as per-frame shapes or tags. Kept small (12-byte ids, fields
/// and classes by position): a video holds a label per track and frame.
#[derive(Debug, Default)]
pub struct UploadedFrames {
    fields: Vec<String>,
    classes: Vec<String>,
    slots: HashMap<(u16, u64, Slot), ObjectId>,
    ids: HashMap<ObjectId, (u64, Option<Slot>)>,
    plain: BTreeSet<u64>,
    /// Labels with an index sent as shapes of their own: (field, frame, track).
    plain_tracks: BTreeSet<(String, u64, TrackKey)>,
    /// The frame fields whose `keyframe` marks the download imports (`None` in records
    /// written before it was kept: every field).
    keyframes: Option<BTreeSet<String>>,
}

/// The position of `name` in `names`, added when missing.
fn intern(names: &mut Vec<String>, name: &str) -> u16 {
    match names.iter().position(|n| n == name) {
        Some(i) => u16::try_from(i).unwrap_or(u16::MAX),
        None => {
            names.push(name.to_string());
            u16::try_from(names.len() - 1).unwrap_or(u16::MAX)
        }
    }
}

fn position(names: &[String], name: &str) -> Option<u16> {
    u16::try_from(names.iter().position(|n| n == name)?).ok()
}

impl UploadedFrames {
    /// Records a frame that held a label sent as a shape or tag of its own.
    pub fn add_plain_frame(&mut self, frame: u64) {
        self.plain.insert(frame);
    }

    /// Records a label of `track` in `field` sent as a shape of its own on `frame`.
    pub fn add_plain_track(&mut self, field: &str, frame: u64, track: TrackKey) {
        self.plain_tracks.insert((field.to_string(), frame, track));
    }

    /// The labels with an index sent as shapes of their own: (field, frame, track).
    pub fn plain_tracks(&self) -> impl Iterator<Item = &(String, u64, TrackKey)> + '_ {
        self.plain_tracks.iter()
    }

    /// Records the frame fields whose `keyframe` marks the download imports.
    pub fn set_keyframes(&mut self, fields: BTreeSet<String>) {
        self.keyframes = Some(fields);
    }

    /// Whether the download imports the `keyframe` marks of `field`.
    pub fn marks_keyframes(&self, field: &str) -> bool {
        self.keyframes.as_ref().is_none_or(|k| k.contains(field))
    }

    /// The frames that held labels sent as shapes or tags of their own.
    pub fn plain_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.plain.iter().copied()
    }

    /// Every index uploaded, per field.
    pub fn indexes(&self) -> HashMap<String, BTreeSet<i64>> {
        let mut out: HashMap<String, BTreeSet<i64>> = HashMap::new();
        for (field, _, (i, _)) in self.slots.keys() {
            let name = self.fields[usize::from(*field)].clone();
            out.entry(name).or_default().insert(*i);
        }
        out
    }

    /// Records a label uploaded in `field` on `frame`.
    pub fn add(&mut self, field: &str, frame: u64, label: &Value) {
        let Some(id) = label.get("_id").and_then(ObjectId::from_ejson) else {
            return;
        };
        let slot = label.get("index").and_then(Value::as_i64).map(|i| {
            let class = label.get("label").and_then(Value::as_str);
            (i, class.map(|c| intern(&mut self.classes, c)))
        });
        if let Some(slot) = slot {
            let f = intern(&mut self.fields, field);
            self.slots.insert((f, frame, slot), id);
        }
        self.ids.insert(id, (frame, slot));
    }

    fn key(&self, (index, class): Slot) -> TrackKey {
        let class = class.and_then(|c| self.classes.get(usize::from(c)).cloned());
        TrackKey { index, class }
    }

    /// The id of the label of `track` uploaded in `field` on `frame` (a record without
    /// classes: of its index).
    pub(super) fn at(&self, field: &str, frame: u64, track: &TrackKey) -> Option<String> {
        let f = position(&self.fields, field)?;
        let class = track
            .class
            .as_deref()
            .and_then(|c| position(&self.classes, c));
        let of = |slot: Slot| self.slots.get(&(f, frame, slot));
        class
            .and_then(|c| of((track.index, Some(c))))
            .or_else(|| of((track.index, None)))
            .map(ObjectId::to_string)
    }

    /// The uploaded label `id` names, when it was uploaded on `frame`: its track, if any.
    pub(super) fn on_frame(&self, id: &str, frame: u64) -> Option<Option<TrackKey>> {
        self.ids
            .get(&ObjectId::parse(id).ok()?)
            .filter(|(f, _)| *f == frame)
            .map(|(_, slot)| slot.map(|s| self.key(s)))
    }
}

/// The written form.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Written {
    /// Field → runs of one track on consecutive frames: (index, first frame, the ids of its
    /// labels, one per frame, and the track's class — absent in older records).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    tracks: IndexMap<String, Vec<Run>>,
    /// Labels without an index: (frame, their ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    loose: Vec<(u64, String)>,
    /// The frames with per-frame shapes or tags, as (first, last) runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    plain: Vec<(u64, u64)>,
    /// Labels with an index sent as shapes of their own: (field, frame, index, and class —
    /// absent in older records).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    plain_tracks: Vec<PlainTrack>,
    /// The frame fields whose `keyframe` marks are imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyframes: Option<BTreeSet<String>>,
}

/// A run of one track's labels on consecutive frames, as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Run {
    Of(i64, u64, String, String),
    Any(i64, u64, String),
}

/// A label with an index sent as a shape of its own, as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum PlainTrack {
    Of(String, u64, i64, String),
    Any(String, u64, i64),
}

/// Ids one after another, 24 hex digits each.
fn joined(ids: impl Iterator<Item = ObjectId>) -> String {
    ids.map(|id| id.to_string()).collect()
}

fn split(ids: &str) -> Result<Vec<ObjectId>, String> {
    if !ids.is_ascii() || ids.len() % 24 != 0 {
        return Err(format!("`{ids}` is not a list of 24-hex-digit ids"));
    }
    (0..ids.len() / 24)
        .map(|i| ObjectId::parse(&ids[24 * i..24 * (i + 1)]).map_err(|e| e.to_string()))
        .collect()
}

impl Serialize for UploadedFrames {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut w = Written::default();
        let mut slots: Vec<(&(u16, u64, Slot), &ObjectId)> = self.slots.iter().collect();
        slots.sort_by_key(|((f, frame, slot), _)| (*f, *slot, *frame));
        // Field → runs of (slot, first frame, ids).
        let mut runs: IndexMap<u16, Vec<(Slot, u64, String)>> = IndexMap::new();
        for ((f, frame, slot), id) in slots {
            let runs = runs.entry(*f).or_default();
            match runs.last_mut() {
                Some((at, first, ids))
                    if at == slot && *first + (ids.len() / 24) as u64 == *frame =>
                {
                    ids.push_str(&id.to_string());
                }
                _ => runs.push((*slot, *frame, id.to_string())),
            }
        }
        for (f, rs) in runs {
            let written = rs
                .into_iter()
                .map(|(slot, first, ids)| match self.key(slot).class {
                    Some(c) => Run::Of(slot.0, first, ids, c),
                    None => Run::Any(slot.0, first, ids),
                });
            w.tracks
                .insert(self.fields[usize::from(f)].clone(), written.collect());
        }
        let mut loose: BTreeMap<u64, Vec<ObjectId>> = BTreeMap::new();
        for (id, (frame, slot)) in &self.ids {
            if slot.is_none() {
                loose.entry(*frame).or_default().push(*id);
            }
        }
        w.loose = loose
            .into_iter()
            .map(|(frame, mut ids)| {
                ids.sort();
                (frame, joined(ids.into_iter()))
            })
            .collect();
        for f in &self.plain {
            match w.plain.last_mut() {
                Some((_, last)) if *last + 1 == *f => *last = *f,
                _ => w.plain.push((*f, *f)),
            }
        }
        w.plain_tracks = self
            .plain_tracks
            .iter()
            .map(|(field, frame, t)| match &t.class {
                Some(c) => PlainTrack::Of(field.clone(), *frame, t.index, c.clone()),
                None => PlainTrack::Any(field.clone(), *frame, t.index),
            })
            .collect();
        w.keyframes = self.keyframes.clone();
        w.serialize(s)
    }
}

impl<'de> Deserialize<'de> for UploadedFrames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let w = Written::deserialize(d)?;
        let mut out = UploadedFrames::default();
        for (field, runs) in w.tracks {
            out.fields.push(field);
            let f = u16::try_from(out.fields.len() - 1).map_err(D::Error::custom)?;
            for run in runs {
                let (index, first, ids, class) = match run {
                    Run::Of(i, first, ids, c) => (i, first, ids, Some(c)),
                    Run::Any(i, first, ids) => (i, first, ids, None),
                };
                let slot = (index, class.map(|c| intern(&mut out.classes, &c)));
                for (frame, id) in (first..).zip(split(&ids).map_err(D::Error::custom)?) {
                    out.slots.insert((f, frame, slot), id);
                    out.ids.insert(id, (frame, Some(slot)));
                }
            }
        }
        for (frame, ids) in w.loose {
            for id in split(&ids).map_err(D::Error::custom)? {
                out.ids.insert(id, (frame, None));
            }
        }
        out.plain = w.plain.into_iter().flat_map(|(a, b)| a..=b).collect();
        out.plain_tracks = w
            .plain_tracks
            .into_iter()
            .map(|p| match p {
                PlainTrack::Of(field, frame, i, c) => (field, frame, TrackKey::new(i, c)),
                PlainTrack::Any(field, frame, i) => (field, frame, TrackKey::any_class(i)),
            })
            .collect();
        out.keyframes = w.keyframes;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oid(n: u64) -> Value {
        json!({"$oid": format!("{n:024x}")})
    }

    #[test]
    fn written_as_runs_and_read_back_the_same() {
        let mut up = UploadedFrames::default();
        for frame in 0..5 {
            up.add(
                "frames.a",
                frame,
                &json!({"_id": oid(10 + frame), "index": 1}),
            );
        }
        // A gap, then the same track again; another field; a label without an index.
        up.add("frames.a", 7, &json!({"_id": oid(20), "index": 1}));
        up.add("frames.b", 2, &json!({"_id": oid(30), "index": 4}));
        up.add("frames.a", 3, &json!({"_id": oid(40)}));
        up.add_plain_frame(3);
        up.add_plain_frame(4);
        up.add_plain_frame(9);
        up.add_plain_track("frames.a", 9, TrackKey::any_class(2));
        assert!(
            up.marks_keyframes("frames.b"),
            "records without the list: every field"
        );
        up.set_keyframes(BTreeSet::from(["frames.a".to_string()]));
        let v = serde_json::to_value(&up).unwrap();
        let a = v["tracks"]["frames.a"].as_array().unwrap();
        assert_eq!(a.len(), 2, "{v}");
        assert_eq!((&a[0][0], &a[0][1]), (&json!(1), &json!(0)));
        assert_eq!(a[0][2].as_str().unwrap().len(), 5 * 24);
        assert_eq!(v["plain"], json!([[3, 4], [9, 9]]));
        let back: UploadedFrames = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), v);
        assert_eq!(
            back.at("frames.a", 4, &TrackKey::new(1, "car")),
            Some(format!("{:024x}", 14)),
            "a record without classes: the index stands for every class"
        );
        assert_eq!(back.on_frame(&format!("{:024x}", 40), 3), Some(None));
        assert_eq!(
            back.on_frame(&format!("{:024x}", 20), 7),
            Some(Some(TrackKey::any_class(1)))
        );
        assert_eq!(back.plain_frames().collect::<Vec<_>>(), vec![3, 4, 9]);
        let plain: Vec<_> = back.plain_tracks().cloned().collect();
        assert_eq!(
            plain,
            vec![("frames.a".to_string(), 9, TrackKey::any_class(2))]
        );
        assert!(back.marks_keyframes("frames.a") && !back.marks_keyframes("frames.b"));
        let bad = json!({"tracks": {"frames.a": [[1, 0, "xyz"]]}});
        let err = serde_json::from_value::<UploadedFrames>(bad).unwrap_err();
        assert!(err.to_string().contains("24-hex-digit"), "{err}");
    }

    #[test]
    fn two_classes_sharing_an_index_are_two_tracks() {
        let mut up = UploadedFrames::default();
        for frame in 0..3 {
            up.add(
                "frames.a",
                frame,
                &json!({"_id": oid(10 + frame), "label": "car", "index": 1}),
            );
            up.add(
                "frames.a",
                frame,
                &json!({"_id": oid(20 + frame), "label": "truck", "index": 1}),
            );
        }
        up.add_plain_track("frames.a", 5, TrackKey::new(1, "truck"));
        let v = serde_json::to_value(&up).unwrap();
        let a = v["tracks"]["frames.a"].as_array().unwrap();
        assert_eq!(a.len(), 2, "one run per class: {v}");
        assert_eq!(a[0][3], "car");
        assert_eq!(a[1][3], "truck");
        assert_eq!(v["plain_tracks"], json!([["frames.a", 5, 1, "truck"]]));
        let back: UploadedFrames = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&back).unwrap(), v);
        let truck = TrackKey::new(1, "truck");
        assert_eq!(back.at("frames.a", 2, &truck), Some(format!("{:024x}", 22)));
        let car = TrackKey::new(1, "car");
        assert_eq!(back.at("frames.a", 2, &car), Some(format!("{:024x}", 12)));
        assert_eq!(back.at("frames.a", 2, &TrackKey::new(1, "bus")), None);
        assert_eq!(
            back.on_frame(&format!("{:024x}", 21), 1),
            Some(Some(truck.clone()))
        );
        let plain: Vec<_> = back.plain_tracks().cloned().collect();
        assert_eq!(plain, vec![("frames.a".to_string(), 5, truck)]);
    }
}
