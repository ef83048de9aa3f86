//! A frame's labels of tracks the download does not hand (see
//! [`crate::backend::SampleAnnotations`]'s `@tracks`): they are set aside before the frame is
//! merged, so they are neither edited nor deleted nor counted, and put back where they were
//! in the frame's new value and baseline.

use super::super::{container, label_id, label_slice};
use crate::backend::{DownloadedLabel, HandedTracks};
use crate::dataset::ejson::ObjectId;
use crate::manifest::LabelType;
use crate::state::{LabelKey, UploadedLabel};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// A frame field's labels with the untouched ones set aside.
#[derive(Debug)]
pub(super) struct Untouched {
    /// The field's value without them.
    pub current: Option<Value>,
    /// The baseline without them.
    pub uploaded: Vec<UploadedLabel>,
    ids: HashSet<ObjectId>,
}

impl Untouched {
    /// Sets aside the labels of `current` whose track (index and class) `handed` does not
    /// cover (and that no downloaded label names: a label the backend moved to a handed track
    /// is handed); `None` when there is none.
    pub fn split(
        current: Option<&Value>,
        uploaded: &[UploadedLabel],
        downloaded: &[DownloadedLabel],
        handed: &HandedTracks,
        t: LabelType,
    ) -> Option<Untouched> {
        let key = container(t).1?;
        let named: HashSet<ObjectId> = downloaded
            .iter()
            .filter_map(|d| label_id(&d.label))
            .collect();
        let labels = label_slice(current, t);
        let ids: HashSet<ObjectId> = labels
            .iter()
            .filter(|l| {
                let index = l.get("index").and_then(Value::as_i64);
                let class = l.get("label").and_then(Value::as_str);
                index.is_some_and(|i| !handed.covers(i, class))
            })
            .filter_map(label_id)
            .filter(|id| !named.contains(id))
            .collect();
        if ids.is_empty() {
            return None;
        }
        let kept = |l: &&Value| label_id(l).is_none_or(|id| !ids.contains(&id));
        let rest: Vec<Value> = labels.iter().filter(kept).cloned().collect();
        let mut value = current.cloned()?;
        value[key] = Value::Array(rest);
        let uploaded = uploaded
            .iter()
            .filter(|u| !matches!(u.id, LabelKey::Id(id) if ids.contains(&id)))
            .cloned()
            .collect();
        Some(Untouched {
            current: Some(value),
            uploaded,
            ids,
        })
    }

    /// The frame's new baseline: `merged` (the handed labels' baseline) with the untouched
    /// labels' entries of `uploaded`; `uploaded` itself when nothing handed changed.
    pub fn baseline(
        &self,
        merged: Vec<UploadedLabel>,
        uploaded: &[UploadedLabel],
    ) -> Vec<UploadedLabel> {
        if merged == self.uploaded {
            return uploaded.to_vec();
        }
        let untouched = uploaded
            .iter()
            .filter(|u| matches!(u.id, LabelKey::Id(id) if self.ids.contains(&id)));
        merged.into_iter().chain(untouched.cloned()).collect()
    }

    /// The frame field's new value: `merged` (the handed labels' new value) with the
    /// untouched labels of `current` back in their places; new labels last, as merged.
    pub fn value(
        &self,
        merged: Option<Value>,
        current: Option<&Value>,
        t: LabelType,
    ) -> Option<Value> {
        let key = container(t).1?;
        let before = label_slice(current, t);
        let mut after: HashMap<ObjectId, Value> = HashMap::new();
        let mut new = Vec::new();
        for l in label_slice(merged.as_ref(), t) {
            match label_id(l).filter(|id| before.iter().any(|b| label_id(b) == Some(*id))) {
                Some(id) => {
                    after.insert(id, l.clone());
                }
                None => new.push(l.clone()),
            }
        }
        let mut labels: Vec<Value> = before
            .iter()
            .filter_map(|l| {
                let id = label_id(l)?;
                match self.ids.contains(&id) {
                    true => Some(l.clone()),
                    false => after.remove(&id),
                }
            })
            .collect();
        labels.extend(new);
        let mut value = merged.or_else(|| current.cloned())?;
        value[key] = Value::Array(labels);
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::TrackKey;
    use crate::merge::label_digest;
    use crate::schema::ResolvedField;
    use serde_json::json;

    fn det(n: u64, index: i64, x: f64) -> Value {
        json!({"_id": {"$oid": format!("{n:024x}")}, "_cls": "Detection", "label": "car",
            "index": index, "bounding_box": [x, 0.0, 0.1, 0.1]})
    }

    fn dets(labels: Vec<Value>) -> Value {
        json!({"_cls": "Detections", "detections": labels})
    }

    #[test]
    fn untouched_labels_stay_where_they_were_and_in_the_baseline() {
        let field = ResolvedField::new(LabelType::Detections, vec!["car".into()]);
        let t = LabelType::Detections;
        let labels = vec![det(1, 1, 0.1), det(2, 2, 0.2), det(3, 3, 0.3)];
        let current = dets(labels.clone());
        let uploaded: Vec<UploadedLabel> = labels
            .iter()
            .map(|l| UploadedLabel {
                id: LabelKey::Id(label_id(l).unwrap()),
                digest: label_digest(l, &field),
            })
            .collect();
        // Track 2 handed; track 3's label moved into it by the backend: handed too.
        let moved = DownloadedLabel::new("t", det(3, 2, 0.3));
        let handed = HandedTracks::from_iter([TrackKey::any_class(2)]);
        let u = Untouched::split(Some(&current), &uploaded, &[moved], &handed, t).unwrap();
        assert_eq!(
            label_slice(u.current.as_ref(), t),
            &[det(2, 2, 0.2), det(3, 3, 0.3)]
        );
        assert_eq!(u.uploaded, uploaded[1..].to_vec());
        assert_eq!(
            u.baseline(uploaded[1..].to_vec(), &uploaded),
            uploaded,
            "unchanged"
        );
        // Track 2's label edited, a new label added: track 1's stays first.
        let merged = dets(vec![det(2, 2, 0.25), det(3, 3, 0.3), det(4, 2, 0.5)]);
        let value = u.value(Some(merged), Some(&current), t).unwrap();
        let expected = dets(vec![
            det(1, 1, 0.1),
            det(2, 2, 0.25),
            det(3, 3, 0.3),
            det(4, 2, 0.5),
        ]);
        assert_eq!(value, expected);
        // Everything handed deleted: the untouched label is the field's value.
        let cleared = u.value(None, Some(&current), t).unwrap();
        assert_eq!(cleared, dets(vec![det(1, 1, 0.1)]));
        assert!(
            Untouched::split(
                Some(&current),
                &uploaded,
                &[],
                &[1, 2, 3].map(TrackKey::any_class).into_iter().collect(),
                t
            )
            .is_none()
        );
    }
}
