//! Label values a backend can take and give back unchanged. A coordinate that is not finite
//! or lies far outside the image (`[1e308, ...]`) overflows or is clipped on the way and comes
//! back different or not at all, which a later merge would read as the annotator's change;
//! such labels are refused before anything is uploaded.

use std::fmt;

use serde_json::Value;

use super::dir::Dataset;
use super::ejson::{self, ObjectId};
use super::labels::{self, Object};
use super::view::View;

/// Relative coordinates are accepted within `[-OUTSIDE, 1 + OUTSIDE]`: a box may stick out of
/// the image a little (backends clip or keep it), not by orders of magnitude.
const OUTSIDE: f64 = 1.0;
/// At most this many labels are named in one error.
pub const SHOWN: usize = 5;

/// A label a backend cannot round-trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsendable {
    pub sample: ObjectId,
    pub field: String,
    /// The label's `_id`, when it has one.
    pub label: Option<ObjectId>,
    pub problem: String,
}

impl fmt::Display for Unsendable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sample {}, field `{}`, ", self.sample, self.field)?;
        match self.label {
            Some(id) => write!(f, "label {id}")?,
            None => f.write_str("a label without id")?,
        }
        write!(f, ": {}", self.problem)
    }
}

/// The labels of `fields` in `samples` (as narrowed by the view's label filters) whose values
/// a backend cannot round-trip, at most `limit`.
pub fn unsendable_labels<'f>(
    ds: &Dataset,
    view: &View,
    samples: impl IntoIterator<Item = ObjectId>,
    fields: impl IntoIterator<Item = &'f str> + Clone,
    limit: usize,
) -> Vec<Unsendable> {
    let mut out = Vec::new();
    let names: Vec<&str> = fields.clone().into_iter().collect();
    for sample in samples {
        let Some(doc) = ds.sample_by_id(sample) else {
            continue;
        };
        // The run's fields, parsed for this pass only: caching every sample's parse would
        // keep the whole dataset parsed (about ten times its JSON) for the rest of the command.
        let doc = doc.project(&names);
        for field in fields.clone() {
            let Some(value) = doc.get(field) else {
                continue;
            };
            let keep = view.filtered.get(field).map(|f| f.get(&sample));
            for label in labels::label_objects(value) {
                let id = label.get("_id").and_then(ObjectId::from_ejson);
                let kept = match keep {
                    Some(ids) => id.is_some_and(|i| ids.is_some_and(|ids| ids.contains(&i))),
                    None => true,
                };
                if let Some(problem) = kept.then(|| label_problem(label)).flatten() {
                    out.push(Unsendable {
                        sample,
                        field: field.to_string(),
                        label: id,
                        problem,
                    });
                    if out.len() >= limit {
                        return out;
                    }
                }
            }
        }
    }
    out
}

/// Why a label's geometry cannot round-trip, if it cannot: coordinates that are not finite
/// (a keypoint's missing point, `[NaN, NaN]`, is allowed) or far outside the image.
pub fn label_problem(label: &Object) -> Option<String> {
    if let Some(bbox) = label.get("bounding_box").filter(|v| !v.is_null()) {
        let values = numbers(bbox);
        if let Some(bad) = values.iter().find(|x| !plausible(**x)) {
            return Some(format!("bounding_box {} has {}", shown(bbox), what(*bad)));
        }
    }
    if let Some(points) = label.get("points").filter(|v| !v.is_null()) {
        let keypoint = label.get("_cls").and_then(Value::as_str) == Some("Keypoint");
        let values = numbers(points);
        let bad = values
            .iter()
            .find(|x| !(plausible(**x) || keypoint && x.is_nan()));
        if let Some(bad) = bad {
            return Some(format!("points have {}", what(*bad)));
        }
    }
    None
}

/// Whether a relative coordinate survives the trip.
fn plausible(x: f64) -> bool {
    x.is_finite() && (-OUTSIDE..=1.0 + OUTSIDE).contains(&x)
}

fn what(x: f64) -> String {
    if x.is_finite() {
        format!("{x:e}, far outside the image (relative coordinates are within [0, 1])")
    } else {
        format!("{x}, which no backend stores")
    }
}

/// Every number in nested arrays (Extended JSON non-finite numbers included).
fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        other => ejson::as_f64(other).into_iter().collect(),
    }
}

fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(v: Value) -> Option<String> {
        label_problem(v.as_object().unwrap())
    }

    #[test]
    fn absurd_and_non_finite_geometry_is_refused() {
        assert_eq!(problem(json!({"bounding_box": [0.1, 0.2, 0.3, 0.4]})), None);
        assert_eq!(
            problem(json!({"bounding_box": [-0.1, 0.9, 0.3, 0.4]})),
            None
        );
        let p = problem(json!({"bounding_box": [1e308, 1e308, 1e308, 1e308]})).unwrap();
        assert!(p.contains("1e308") && p.contains("far outside"), "{p}");
        let p = problem(json!({"bounding_box": [0.1, {"$numberDouble": "NaN"}, 0.3, 0.4]}));
        assert!(p.unwrap().contains("NaN"));
        assert!(
            problem(json!({"bounding_box": [0.1, 0.1, {"$numberDouble": "Infinity"}, 0.1]}))
                .is_some()
        );
        // A keypoint's missing point is NaN by FiftyOne's convention; a polyline has none.
        let nan = json!({"$numberDouble": "NaN"});
        assert_eq!(
            problem(json!({"_cls": "Keypoint", "points": [[0.5, 0.5], [nan, nan]]})),
            None
        );
        assert!(
            problem(json!({"_cls": "Polyline", "points": [[[0.5, 0.5], [nan, 0.1]]]})).is_some()
        );
        assert!(problem(json!({"_cls": "Keypoint", "points": [[0.5, 40.0]]})).is_some());
        assert_eq!(problem(json!({"label": "cat", "confidence": 0.5})), None);
    }
}
