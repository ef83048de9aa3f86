//! What a video task's upload sent, kept with the run's record: the label on each frame of
//! each track (its ids name the labels of frames CVAT only interpolates) and the frames of
//! per-frame shapes. Written compactly (a track's ids on consecutive frames as one string of
//! 24-hex-digit ids), since a video holds a label per track and frame.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::dataset::ejson::ObjectId;

/// The labels uploaded on a video's frames, by (field, frame, index) and by id, and the
/// frames that held labels sent as per-frame shapes or tags. Kept small (12-byte ids, fields
/// by position): a video holds a label per track and frame.
#[derive(Debug, Default)]
pub struct UploadedFrames {
    fields: Vec<String>,
    slots: HashMap<(u16, u64, i64), ObjectId>,
    ids: HashMap<ObjectId, (u64, Option<i64>)>,
    plain: BTreeSet<u64>,
    /// Labels with an index sent as shapes of their own: (field, frame, index).
    plain_tracks: BTreeSet<(String, u64, i64)>,
    /// The frame fields whose `keyframe` marks the download imports (`None` in records
    /// written before it was kept: every field).
    keyframes: Option<BTreeSet<String>>,
}

impl UploadedFrames {
    /// Records a frame that held a label sent as a shape or tag of its own.
    pub fn add_plain_frame(&mut self, frame: u64) {
        self.plain.insert(frame);
    }

    /// Records a label with `index` in `field` sent as a shape of its own on `frame`.
    pub fn add_plain_track(&mut self, field: &str, frame: u64, index: i64) {
        self.plain_tracks.insert((field.to_string(), frame, index));
    }

    /// The labels with an index sent as shapes of their own: (field, frame, index).
    pub fn plain_tracks(&self) -> impl Iterator<Item = &(String, u64, i64)> + '_ {
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
        for (field, _, i) in self.slots.keys() {
            let name = self.fields[usize::from(*field)].clone();
            out.entry(name).or_default().insert(*i);
        }
        out
    }

    fn field(&self, name: &str) -> Option<u16> {
        let i = self.fields.iter().position(|f| f == name)?;
        u16::try_from(i).ok()
    }

    /// Records a label uploaded in `field` on `frame`.
    pub fn add(&mut self, field: &str, frame: u64, label: &Value) {
        let Some(id) = label.get("_id").and_then(ObjectId::from_ejson) else {
            return;
        };
        let index = label.get("index").and_then(Value::as_i64);
        if let Some(i) = index {
            let f = match self.field(field) {
                Some(f) => f,
                None => {
                    self.fields.push(field.to_string());
                    u16::try_from(self.fields.len() - 1).unwrap_or(u16::MAX)
                }
            };
            self.slots.insert((f, frame, i), id);
        }
        self.ids.insert(id, (frame, index));
    }

    /// The id of the label uploaded in `field` on `frame` with `index`.
    pub(super) fn at(&self, field: &str, frame: u64, index: i64) -> Option<String> {
        let f = self.field(field)?;
        self.slots.get(&(f, frame, index)).map(ObjectId::to_string)
    }

    /// The uploaded label `id` names, when it was uploaded on `frame`: its index.
    pub(super) fn on_frame(&self, id: &str, frame: u64) -> Option<Option<i64>> {
        self.ids
            .get(&ObjectId::parse(id).ok()?)
            .filter(|(f, _)| *f == frame)
            .map(|(_, i)| *i)
    }
}

/// The written form.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Written {
    /// Field → runs of one track on consecutive frames: (index, first frame, the ids of its
    /// labels, one per frame).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    tracks: IndexMap<String, Vec<(i64, u64, String)>>,
    /// Labels without an index: (frame, their ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    loose: Vec<(u64, String)>,
    /// The frames with per-frame shapes or tags, as (first, last) runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    plain: Vec<(u64, u64)>,
    /// Labels with an index sent as shapes of their own: (field, frame, index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    plain_tracks: Vec<(String, u64, i64)>,
    /// The frame fields whose `keyframe` marks are imported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyframes: Option<BTreeSet<String>>,
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
        let mut slots: Vec<(&(u16, u64, i64), &ObjectId)> = self.slots.iter().collect();
        slots.sort_by_key(|((f, frame, i), _)| (*f, *i, *frame));
        for ((f, frame, index), id) in slots {
            let runs = w
                .tracks
                .entry(self.fields[usize::from(*f)].clone())
                .or_default();
            match runs.last_mut() {
                Some((i, first, ids))
                    if i == index && *first + (ids.len() / 24) as u64 == *frame =>
                {
                    ids.push_str(&id.to_string());
                }
                _ => runs.push((*index, *frame, id.to_string())),
            }
        }
        let mut loose: BTreeMap<u64, Vec<ObjectId>> = BTreeMap::new();
        for (id, (frame, index)) in &self.ids {
            if index.is_none() {
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
        w.plain_tracks = self.plain_tracks.iter().cloned().collect();
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
            for (index, first, ids) in runs {
                for (frame, id) in (first..).zip(split(&ids).map_err(D::Error::custom)?) {
                    out.slots.insert((f, frame, index), id);
                    out.ids.insert(id, (frame, Some(index)));
                }
            }
        }
        for (frame, ids) in w.loose {
            for id in split(&ids).map_err(D::Error::custom)? {
                out.ids.insert(id, (frame, None));
            }
        }
        out.plain = w.plain.into_iter().flat_map(|(a, b)| a..=b).collect();
        out.plain_tracks = w.plain_tracks.into_iter().collect();
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
        up.add_plain_track("frames.a", 9, 2);
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
        assert_eq!(back.at("frames.a", 4, 1), Some(format!("{:024x}", 14)));
        assert_eq!(back.on_frame(&format!("{:024x}", 40), 3), Some(None));
        assert_eq!(back.on_frame(&format!("{:024x}", 20), 7), Some(Some(1)));
        assert_eq!(back.plain_frames().collect::<Vec<_>>(), vec![3, 4, 9]);
        let plain: Vec<_> = back.plain_tracks().cloned().collect();
        assert_eq!(plain, vec![("frames.a".to_string(), 9, 2)]);
        assert!(back.marks_keyframes("frames.a") && !back.marks_keyframes("frames.b"));
        let bad = json!({"tracks": {"frames.a": [[1, 0, "xyz"]]}});
        let err = serde_json::from_value::<UploadedFrames>(bad).unwrap_err();
        assert!(err.to_string().contains("24-hex-digit"), "{err}");
    }
}
