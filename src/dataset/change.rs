//! What a merge changes in a dataset, as store operations: fields declared, and per sample
//! (or video frame) field its labels set, added or removed by id, or its whole value.
//!
//! Both stores take the same operations: [`Changes::apply`] makes them in the in-memory
//! [`Dataset`] (the `dir` store then saves it), and the `mongodb` store sends them as update
//! statements addressed by label id (`$set` with arrayFilters, `$pull`, `$push`).

use std::collections::HashSet;

use serde_json::Value;

use super::dir::{Dataset, DatasetError, Part, Sample};
use super::ejson::ObjectId;
use super::fields::FieldType;
use super::scan;
use super::{FieldPath, FrameNumber};

/// A change of a dataset: the fields it declares, then the fields it writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// New sample or frame fields, declared before any sample carries them.
    pub declare: Vec<(FieldPath, FieldType)>,
    /// The fields written, at most one change per sample (frame) and field.
    pub fields: Vec<FieldChange>,
}

/// A change of one field of one sample, or of one frame of a video sample.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub sample: ObjectId,
    pub frame: Option<FrameNumber>,
    pub field: FieldPath,
    pub edit: Edit,
}

/// How a field changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// The labels of a label list field, by id; its other labels and keys stay as they are.
    Labels(LabelEdits),
    /// The whole value (`None` clears the field to null, as FiftyOne does).
    Whole(Option<Value>),
}

/// Changes to the labels of a label list field (`{"_cls": cls, key: [...]}`), by label id.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelEdits {
    /// The list's key (`detections`, `polylines`, ...).
    pub key: &'static str,
    /// Labels that replace the label of the same `_id`, in place.
    pub set: Vec<Value>,
    /// New labels, appended in this order.
    pub add: Vec<Value>,
    /// Ids of the labels removed.
    pub remove: Vec<ObjectId>,
}

impl LabelEdits {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// The field value `current` with these edits made; `None` when `current` is not a label
    /// list holding `key`.
    pub fn applied_to(&self, current: Value) -> Option<Value> {
        let mut value = current;
        let list = value.get_mut(self.key)?.as_array_mut()?;
        let removed: HashSet<ObjectId> = self.remove.iter().copied().collect();
        let mut set: Vec<(ObjectId, &Value)> = self
            .set
            .iter()
            .filter_map(|l| Some((label_id(l)?, l)))
            .collect();
        list.retain(|l| label_id(l).is_none_or(|id| !removed.contains(&id)));
        for l in list.iter_mut() {
            let Some(id) = label_id(l) else { continue };
            if let Some(i) = set.iter().position(|(s, _)| *s == id) {
                *l = set.swap_remove(i).1.clone();
            }
        }
        list.extend(self.add.iter().cloned());
        Some(value)
    }
}

/// A label's `_id`.
pub fn label_id(label: &Value) -> Option<ObjectId> {
    label.get("_id").and_then(ObjectId::from_ejson)
}

impl Edit {
    /// The field's value after this edit, from its value before (`None`: missing).
    pub fn value_from(&self, current: Option<Value>) -> Result<Value, String> {
        match self {
            Edit::Whole(v) => Ok(v.clone().unwrap_or(Value::Null)),
            Edit::Labels(e) => current
                .and_then(|c| e.applied_to(c))
                .ok_or_else(|| format!("it holds no list of `{}` to edit by label id", e.key)),
        }
    }
}

impl Changes {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.declare.is_empty() && self.fields.is_empty()
    }

    /// Makes the changes in the in-memory dataset (the caller stores it).
    pub fn apply(&self, ds: &mut Dataset) -> Result<(), DatasetError> {
        for (field, ftype) in &self.declare {
            ds.declare_field(field, ftype)?;
        }
        for c in &self.fields {
            let name = c.field.name();
            let sample = ds
                .sample_by_id(c.sample)
                .ok_or(DatasetError::UnknownSample(c.sample))?;
            let current: Option<Value> = match (&c.edit, c.frame) {
                (Edit::Whole(_), _) => None,
                (Edit::Labels(_), None) => sample.project(&[name]).into_owned().remove(name),
                (Edit::Labels(_), Some(f)) => ds
                    .frame(c.sample, f)
                    .and_then(|d| d.project(&[name]).into_owned().remove(name)),
            };
            let value = c
                .edit
                .value_from(current)
                .map_err(|msg| invalid(ds, c, msg))?;
            match c.frame {
                None => ds
                    .sample_mut(c.sample)
                    .ok_or(DatasetError::UnknownSample(c.sample))?
                    .set(name, value),
                Some(f) => ds.set_frame_field(c.sample, f, name, value)?,
            }
        }
        Ok(())
    }
}

fn invalid(ds: &Dataset, c: &FieldChange, msg: String) -> DatasetError {
    let doc = match c.frame {
        None => format!("sample {}", c.sample),
        Some(f) => format!("sample {} frame {f}", c.sample),
    };
    DatasetError::Invalid {
        path: ds.root().join("samples.json"),
        doc,
        msg: format!("field `{}`: {msg}", c.field),
    }
}

/// The labels a sample's field holds now, when it is a label list of class `cls` under `key`
/// whose labels all have an id.
#[derive(Debug, PartialEq)]
pub struct Held {
    /// The labels' ids, in order.
    pub ids: Vec<ObjectId>,
    /// Whether a label keeps its mask in a file (`mask_path`).
    pub mask_files: bool,
}

impl Held {
    /// What field `name` of `sample` holds, read from its JSON text without parsing the
    /// labels when the sample is still text; `None` when it is missing, null, not a `cls`
    /// list, or a label has no id.
    pub fn of(sample: &Sample, name: &str, cls: &str, key: &str) -> Option<Held> {
        let (object, mut texts) = sample.project_text(&|k| (k == name).then_some(Part::Text));
        match texts.pop() {
            Some((_, text)) => Held::of_text(&text, cls, key),
            None => Held::of_value(object.get(name)?, cls, key),
        }
    }

    fn of_text(text: &str, cls: &str, key: &str) -> Option<Held> {
        let members: Vec<_> = scan::members(text).collect();
        let get = |k: &str| {
            let (_, span) = members.iter().find(|(m, _)| m == k)?;
            Some(&text[span.clone()])
        };
        if serde_json::from_str::<&str>(get("_cls")?).ok()? != cls {
            return None;
        }
        let list = get(key)?;
        if !list.starts_with('[') {
            return None;
        }
        let mut held = Held {
            ids: Vec::new(),
            mask_files: false,
        };
        for span in scan::items(list) {
            let label = &list[span];
            let (_, id) = scan::members(label).find(|(k, _)| k == "_id")?;
            let id = serde_json::from_str::<Value>(&label[id]).ok()?;
            held.ids.push(ObjectId::from_ejson(&id)?);
            held.mask_files |= label.contains("\"mask_path\"");
        }
        Some(held)
    }

    fn of_value(value: &Value, cls: &str, key: &str) -> Option<Held> {
        if value.get("_cls")?.as_str()? != cls {
            return None;
        }
        let list = value.get(key)?.as_array()?;
        Some(Held {
            ids: list.iter().map(label_id).collect::<Option<_>>()?,
            mask_files: list.iter().any(|l| l.get("mask_path").is_some()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn det(id: ObjectId, label: &str) -> Value {
        json!({"_id": {"$oid": id.to_string()}, "_cls": "Detection", "label": label})
    }

    #[test]
    fn label_edits_replace_remove_and_append_by_id_keeping_the_rest() {
        let ids: Vec<ObjectId> = (0..4).map(|_| ObjectId::new()).collect();
        let current = json!({"_cls": "Detections", "detections": [
            det(ids[0], "car"), det(ids[1], "person"), det(ids[2], "dog")], "extra": 1});
        let edits = LabelEdits {
            key: "detections",
            set: vec![det(ids[2], "cat")],
            add: vec![det(ids[3], "bike")],
            remove: vec![ids[1]],
        };
        assert_eq!(
            edits.applied_to(current.clone()).unwrap(),
            json!({"_cls": "Detections", "detections": [
                det(ids[0], "car"), det(ids[2], "cat"), det(ids[3], "bike")], "extra": 1})
        );
        assert!(edits.applied_to(json!(null)).is_none());
        assert!(Edit::Labels(edits).value_from(None).is_err());
        assert_eq!(Edit::Whole(None).value_from(Some(current)), Ok(Value::Null));
    }

    #[test]
    fn held_labels_are_read_from_text_or_value_alike() {
        let ids: Vec<ObjectId> = (0..2).map(|_| ObjectId::new()).collect();
        let mut on_disk = det(ids[1], "dog");
        on_disk["mask_path"] = json!("/masks/a.png");
        let v = json!({"_cls": "Detections", "detections": [det(ids[0], "car"), on_disk]});
        let want = Held {
            ids: ids.clone(),
            mask_files: true,
        };
        assert_eq!(
            Held::of_text(&v.to_string(), "Detections", "detections").as_ref(),
            Some(&want)
        );
        assert_eq!(Held::of_value(&v, "Detections", "detections"), Some(want));
        for other in [
            json!({"_cls": "Polylines", "polylines": []}),
            json!({"_cls": "Detections", "detections": [{"label": "no id"}]}),
            json!(null),
        ] {
            assert_eq!(
                Held::of_text(&other.to_string(), "Detections", "detections"),
                None
            );
            assert_eq!(Held::of_value(&other, "Detections", "detections"), None);
        }
    }
}
