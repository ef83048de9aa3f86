//! Which frames of a downloaded track can hold labels that differ from the upload, so a
//! download hands (and the merge holds) only those frames: memory follows what annotators
//! changed, not the length of the video.
//!
//! At upload each track is recorded as a [`TrackPrint`]: a digest of its header (label,
//! group, immutable attributes) and one per keyframe, of the keyframe as CVAT will show it
//! (points as floats, mutable attributes carried forward from earlier keyframes and filled
//! with their defaults, as the server's GET does). At download the same print of the
//! server's track is compared with it: a keyframe added, removed or changed affects the
//! frames from the keyframe before it to the keyframe after it (CVAT interpolates between
//! neighbours), a changed header or a track without a print every frame of the track.

// Lists of frame ranges, often of one range.
#![allow(clippy::single_range_in_vec_init)]

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::super::convert::{AttributeValue, Shape, Track};
use super::super::labels::LabelMap;
use crate::merge::digest16;
use crate::state::Digest16;

/// A track as uploaded (or downloaded), in digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackPrint {
    pub header: Digest16,
    /// (frame, digest) of each keyframe, by frame.
    pub keys: Vec<(u64, Digest16)>,
    /// The frame of the last keyframe when it is `outside` (the track ends there); `None`
    /// when the track runs to the end of the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends: Option<u64>,
}

impl TrackPrint {
    /// The print of `track` as the server will show it.
    pub fn of(track: &Track, map: &LabelMap) -> TrackPrint {
        let mapped = map.label(track.label_id);
        let default_of = |mutable: bool| -> BTreeMap<i64, String> {
            mapped
                .map(|m| {
                    m.attributes
                        .iter()
                        .filter(|(id, _)| m.immutable.contains(id) != mutable)
                        .filter_map(|(id, name)| Some((*id, m.defaults.get(name)?.clone())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let filled = |base: &BTreeMap<i64, String>, values: &[AttributeValue]| {
            let mut out = base.clone();
            out.extend(values.iter().map(|a| (a.spec_id, a.value.clone())));
            out
        };
        let header = digest16(&json!({
            "label": track.label_id,
            "group": track.group,
            "attributes": pairs(&filled(&default_of(false), &track.attributes)),
        }));
        let mut shapes: Vec<&Shape> = track.shapes.iter().collect();
        shapes.sort_by_key(|s| s.frame);
        let ends = shapes.last().filter(|s| s.outside).map(|s| s.frame);
        let mut carried = default_of(true);
        let mut keys: Vec<(u64, Digest16)> = Vec::with_capacity(shapes.len());
        for s in shapes {
            if keys.last().is_some_and(|(f, _)| *f == s.frame) {
                continue;
            }
            carried = filled(&carried, &s.attributes);
            let d = digest16(&json!({
                "type": s.shape_type,
                "points": s.points,
                "outside": s.outside,
                "occluded": s.occluded,
                "z_order": s.z_order,
                "rotation": s.rotation,
                "attributes": pairs(&carried),
            }));
            keys.push((s.frame, d));
        }
        TrackPrint { header, keys, ends }
    }

    /// The frames from the first keyframe to where the track ends (or `end`).
    fn whole(&self, end: u64) -> Vec<Range<u64>> {
        let to = self.ends.map_or(end, |e| e.min(end));
        match self.keys.first() {
            Some((first, _)) if *first < to => vec![*first..to],
            _ => Vec::new(),
        }
    }
}

fn pairs(m: &BTreeMap<i64, String>) -> Value {
    m.iter().map(|(k, v)| json!([k, v])).collect()
}

/// The frames (ranges, sorted, disjoint) of `after` whose labels may differ from `before`'s;
/// `end` is the task's size. Without `before` (a track drawn in CVAT) every frame.
pub fn changed(before: Option<&TrackPrint>, after: &TrackPrint, end: u64) -> Vec<Range<u64>> {
    let Some(before) = before else {
        return after.whole(end);
    };
    if before.header != after.header {
        return union(before.whole(end), after.whole(end));
    }
    let (b, a): (BTreeMap<u64, Digest16>, BTreeMap<u64, Digest16>) = (
        before.keys.iter().copied().collect(),
        after.keys.iter().copied().collect(),
    );
    let frames: BTreeSet<u64> = b.keys().chain(a.keys()).copied().collect();
    // Past the later end of two tracks that both end, neither shows anything.
    let end = match (before.ends, after.ends) {
        (Some(x), Some(y)) => end.min(x.max(y)),
        _ => end,
    };
    let mut out = Vec::new();
    for &f in frames.iter().filter(|f| b.get(f) != a.get(f)) {
        let from = frames.range(..f).next_back().map_or(f, |p| p + 1);
        let to = frames.range(f + 1..).next().copied().unwrap_or(end);
        if from < to.min(end) {
            out.push(from..to.min(end));
        }
    }
    union(out, Vec::new())
}

/// Sorted, merged ranges.
fn union(mut a: Vec<Range<u64>>, b: Vec<Range<u64>>) -> Vec<Range<u64>> {
    a.extend(b);
    a.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in a {
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
    use crate::backend::cvat::labels::tests::{attr, field, serve};
    use crate::backend::cvat::labels::{LabelMap, label_specs};
    use crate::manifest::{AttributeType, LabelType};
    use crate::schema::ResolvedSchema;

    fn map() -> LabelMap {
        let mut dets = field(LabelType::Detections, &["car"]);
        dets.attributes
            .insert("moving".into(), attr(AttributeType::Checkbox, vec![], None));
        let mut schema = ResolvedSchema::default();
        schema.fields.insert("dets".into(), dets);
        LabelMap::new(&schema, &serve(&label_specs(&schema))).unwrap()
    }

    fn track(keys: &[(u64, f64)]) -> Track {
        serde_json::from_value(json!({
            "frame": keys[0].0, "label_id": 100,
            "shapes": keys.iter().map(|(f, x)| json!({
                "type": "rectangle", "frame": f, "points": [x, 0, x + 1.0, 1]
            })).collect::<Vec<_>>()
        }))
        .unwrap()
    }

    #[test]
    fn an_untouched_track_changes_nothing_even_as_the_server_shows_it() {
        let m = map();
        let up = track(&[(0, 0.0), (10, 10.0), (20, 20.0)]);
        let mut down = up.clone();
        // The server fills the attribute's default in and gives ids.
        let moving = m.label(100).unwrap().spec_ids["moving"];
        for (i, s) in down.shapes.iter_mut().enumerate() {
            s.id = Some(i as i64);
            s.attributes.push(AttributeValue {
                spec_id: moving,
                value: "false".into(),
            });
        }
        let (b, a) = (TrackPrint::of(&up, &m), TrackPrint::of(&down, &m));
        assert!(changed(Some(&b), &a, 100).is_empty());
    }

    #[test]
    fn a_moved_keyframe_changes_the_frames_between_its_neighbours() {
        let m = map();
        let up = TrackPrint::of(&track(&[(0, 0.0), (10, 10.0), (20, 20.0)]), &m);
        let moved = TrackPrint::of(&track(&[(0, 0.0), (10, 12.0), (20, 20.0)]), &m);
        assert_eq!(changed(Some(&up), &moved, 100), vec![1..20]);
        let added = TrackPrint::of(&track(&[(0, 0.0), (10, 10.0), (15, 1.0), (20, 20.0)]), &m);
        assert_eq!(changed(Some(&up), &added, 100), vec![11..20]);
        let last = TrackPrint::of(&track(&[(0, 0.0), (10, 10.0), (20, 21.0)]), &m);
        assert_eq!(
            changed(Some(&up), &last, 100),
            vec![11..100],
            "held to the end"
        );
        assert_eq!(changed(None, &up, 100), vec![0..100]);
    }

    #[test]
    fn a_track_that_ends_changes_nothing_past_its_end() {
        let m = map();
        let mut drawn = track(&[(40, 0.0), (50, 5.0), (51, 5.0)]);
        drawn.shapes[2].outside = true;
        let drawn = TrackPrint::of(&drawn, &m);
        assert_eq!(changed(None, &drawn, 100), vec![40..51]);
        let mut longer = track(&[(40, 0.0), (50, 5.0), (60, 5.0)]);
        longer.shapes[2].outside = true;
        let longer = TrackPrint::of(&longer, &m);
        assert_eq!(changed(Some(&drawn), &longer, 100), vec![51..60]);
    }

    #[test]
    fn a_changed_attribute_is_a_change_and_carries_forward() {
        let m = map();
        let moving = m.label(100).unwrap().spec_ids["moving"];
        let up = track(&[(0, 0.0), (10, 10.0), (20, 20.0)]);
        let mut down = up.clone();
        down.shapes[1].attributes.push(AttributeValue {
            spec_id: moving,
            value: "true".into(),
        });
        let (b, a) = (TrackPrint::of(&up, &m), TrackPrint::of(&down, &m));
        assert_eq!(changed(Some(&b), &a, 100), vec![1..100]);
    }

    #[test]
    fn a_relabelled_track_changes_every_frame() {
        let m = map();
        let up = track(&[(0, 0.0), (10, 10.0)]);
        let mut down = up.clone();
        down.label_id = 7;
        let (b, a) = (TrackPrint::of(&up, &m), TrackPrint::of(&down, &m));
        assert_eq!(changed(Some(&b), &a, 30), vec![0..30]);
    }
}
