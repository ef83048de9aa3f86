//! Label Studio's task JSON, decoded into what annoform reads of it and nothing more: a page
//! of 100 tasks with their annotations and predictions is mostly fields annoform never reads
//! (drafts, comments, users, storage links), which are skipped as they are parsed instead of
//! being built into maps first. Label results stay JSON: the conversions read them.

use super::convert;
use super::{MODEL_VERSION, field_from_meta};
use crate::backend::DownloadedLabel;
use crate::backend::convert::ImageSize;
use crate::schema::ResolvedField;
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One page of a task listing, as `GET /api/tasks` answers it.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub(super) struct Page<T> {
    /// `None`: the answer holds no task list (a fault, not an empty page).
    #[serde(default)]
    pub tasks: Option<Vec<T>>,
    /// The task count (of the project, or of the filter) as the server reported it.
    #[serde(default)]
    pub total: Option<u64>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page {
            tasks: None,
            total: None,
        }
    }
}

/// A task's id, for the checks every page goes through.
pub(super) trait TaskId {
    fn task_id(&self) -> Option<u64>;
}

impl TaskId for Value {
    fn task_id(&self) -> Option<u64> {
        self.get("id")?.as_u64()
    }
}

/// A task as a listing shows it (`include=` the listing fields).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct ListedTask {
    pub id: u64,
    #[serde(default)]
    pub data: TaskData,
    #[serde(default, deserialize_with = "lenient")]
    pub is_labeled: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    updated_at: Option<String>,
}

impl TaskId for ListedTask {
    fn task_id(&self) -> Option<u64> {
        Some(self.id)
    }
}

impl ListedTask {
    /// When the task last changed, normalised (see [`normalised_time`]).
    pub fn updated(&self) -> Option<String> {
        normalised_time(self.updated_at.as_deref()?)
    }
}

/// The part of a task's `data` annoform reads (the media URL and any other key are skipped).
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct TaskData {
    #[serde(default, deserialize_with = "lenient")]
    pub sample_id: Option<String>,
    /// The annoform batch the task belongs to.
    #[serde(default, deserialize_with = "lenient")]
    pub annoform_batch: Option<String>,
}

/// A task with its annotations and predictions (`fields=all`).
#[derive(Debug, Deserialize)]
pub(super) struct FullTask {
    pub id: u64,
    #[serde(default)]
    pub data: TaskData,
    #[serde(default, deserialize_with = "lenient")]
    meta: Option<TaskMeta>,
    /// `None`: the answer left them out, which says nothing of the labels. (The large
    /// parts are decoded strictly: a lenient decoding would buffer them first, and a task of
    /// ours whose annotations are not a list cannot be read anyway.)
    #[serde(default)]
    annotations: Option<Vec<Annotation>>,
    #[serde(default)]
    predictions: Option<Vec<Prediction>>,
    #[serde(default, deserialize_with = "lenient")]
    updated_at: Option<String>,
}

impl TaskId for FullTask {
    fn task_id(&self) -> Option<u64> {
        Some(self.id)
    }
}

#[derive(Debug, Default, Deserialize)]
struct TaskMeta {
    #[serde(default, deserialize_with = "lenient")]
    annoform: Option<AnnoformMeta>,
}

/// What annoform keeps in a task's meta: the field types, the labels Label Studio cannot
/// show, and the image size.
#[derive(Debug, Default, Deserialize)]
struct AnnoformMeta {
    #[serde(default, deserialize_with = "lenient")]
    fields: Option<serde_json::Map<String, Value>>,
    #[serde(default, deserialize_with = "lenient")]
    hidden: Option<serde_json::Map<String, Value>>,
    #[serde(default, deserialize_with = "lenient")]
    width: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    height: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Annotation {
    /// `None`: left out (unreadable, not empty).
    #[serde(default)]
    result: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "lenient")]
    updated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    was_cancelled: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct Prediction {
    #[serde(default, deserialize_with = "lenient")]
    model_version: Option<String>,
    #[serde(default)]
    result: Option<Vec<Value>>,
}

/// A value of the expected shape, or `None` for anything else (`null`, another type): a
/// task made outside annoform never fails a whole page, and a task of ours that lacks what
/// a download needs is unreadable (see [`FullTask::labels`]), never read as empty.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Value(T),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Either::<T>::deserialize(d)? {
        Either::Value(v) => Some(v),
        Either::Other(_) => None,
    })
}

/// A time as Label Studio writes it, normalised so that strings order as times do (Django
/// writes `2026-11-22T06:33:16.478748Z`, and drops the fraction when it is zero); `None` for
/// another time zone.
pub(super) fn normalised_time(s: &str) -> Option<String> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    (secs.len() == 19 && frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{secs}.{frac:0<9}Z"))
}

/// The field types a task's meta records.
pub(super) fn meta_fields(
    fields: &serde_json::Map<String, Value>,
) -> IndexMap<String, ResolvedField> {
    fields
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), field_from_meta(v)?)))
        .collect()
}

/// A sample's labels as a download hands them.
pub(super) type SampleLabels = (String, IndexMap<String, Vec<DownloadedLabel>>);

impl FullTask {
    /// When the task last changed, normalised (see [`normalised_time`]).
    pub fn updated(&self) -> Option<String> {
        normalised_time(self.updated_at.as_deref()?)
    }

    /// The task's labels: the newest annotation (largest `updated_at`, cancelled ones
    /// skipped), or what we uploaded while nobody has annotated it. `None` when the task
    /// cannot tell (its annotations, predictions, field types or size are not in it).
    pub fn labels(self) -> Option<SampleLabels> {
        let sid = self.data.sample_id?;
        let meta = self.meta.and_then(|m| m.annoform).unwrap_or_default();
        // A task read without its annotations or predictions says nothing of its labels (not
        // that it has none): unreadable.
        let annotations = self.annotations?;
        // Which annotation is the newest, and whether it was skipped, is what decides the
        // labels (a skipped one holds no result): an annotation that does not say is
        // unreadable, never taken for a live one.
        if annotations
            .iter()
            .any(|a| a.updated_at.is_none() || a.was_cancelled.is_none())
        {
            return None;
        }
        let prior: Vec<Value> = match self
            .predictions?
            .into_iter()
            .find(|p| p.model_version.as_deref() == Some(MODEL_VERSION))
        {
            Some(p) => p.result?,
            None => Vec::new(),
        };
        let newest = annotations
            .into_iter()
            .filter(|a| a.was_cancelled != Some(true))
            .max_by(|a, b| {
                let k = |x: &Annotation| x.updated_at.clone().unwrap_or_default();
                k(a).cmp(&k(b))
            });
        let results: Vec<Value> = match newest {
            Some(a) => a.result?,
            None => prior.clone(),
        };
        // Results say their image size too; meta is the fallback for result-less tasks.
        let from_result = |k: &str| {
            results
                .iter()
                .find_map(|r| r.get(k).and_then(Value::as_u64))
        };
        let size = ImageSize {
            width: meta.width.or_else(|| from_result("original_width"))? as u32,
            height: meta.height.or_else(|| from_result("original_height"))? as u32,
        };
        // Without its field types a task says nothing of its labels (not that it has none).
        let types = meta.fields.as_ref().map(meta_fields).unwrap_or_default();
        if types.is_empty() {
            return None;
        }
        let misfits = convert::misfits(&types, &results, size);
        let mut fields: IndexMap<String, Vec<DownloadedLabel>> = types
            .into_iter()
            .map(|(name, f)| {
                let mut labels = convert::from_results(&name, &f, &results, &prior, size);
                if let Some(h) = meta
                    .hidden
                    .as_ref()
                    .and_then(|h| h.get(&name))
                    .and_then(Value::as_array)
                {
                    labels.extend(convert::hidden_labels(h));
                }
                (name, labels)
            })
            .collect();
        for (field, m) in misfits {
            fields.entry(field).or_default().push(m);
        }
        Some((sid, fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_times_order_as_strings() {
        let at = |s: &str| normalised_time(s);
        let whole = at("2026-11-22T06:33:16Z").unwrap();
        let later = at("2026-11-22T06:33:16.478748Z").unwrap();
        assert_eq!(later, "2026-11-22T06:33:16.478748000Z");
        assert!(whole < later, "{whole} < {later}");
        assert!(later < at("2026-11-22T06:33:17+00:00").unwrap());
        // Another time zone: no cursor (every download is then complete).
        assert_eq!(at("2026-11-22T07:33:16.1+01:00"), None);
    }

    #[test]
    fn a_task_read_without_its_annotations_is_unreadable_not_empty() {
        let sid = "6b02536263110a1e76c075f7";
        let task = json!({
            "id": 7, "data": {"sample_id": sid, "annoform_batch": "b", "image": "/x.png"},
            "meta": {"annoform": {"fields": {"gt": {"type": "detections"}}, "width": 64, "height": 48}},
            "annotations": [], "predictions": [], "drafts": [{"result": []}],
        });
        // Unreadable: not decoded (the page then fails), or decoded without what it needs.
        let read = |t: &Value| serde_json::from_value::<FullTask>(t.clone()).ok()?.labels();
        let (got, fields) = read(&task).expect("readable");
        assert_eq!(got, sid);
        assert!(fields["gt"].is_empty(), "{fields:?}");
        for (key, spoiled) in [
            ("annotations", Value::Null),
            ("predictions", Value::Null),
            ("predictions", json!({"result": []})),
            (
                "annotations",
                json!([{"updated_at": "2026-01-01T00:00:00Z"}]),
            ),
            (
                "annotations",
                json!([{"updated_at": "2026-01-01T00:00:00Z", "result": {}, "was_cancelled": false}]),
            ),
            (
                "annotations",
                json!([{"updated_at": "2026-01-01T00:00:00Z", "result": []}]),
            ),
            (
                "annotations",
                json!([{"result": [], "was_cancelled": false}]),
            ),
            ("meta", json!({"annoform": {"width": 64, "height": 48}})),
            ("data", json!({"sample_id": 12})),
        ] {
            let mut t = task.clone();
            t[key] = spoiled.clone();
            assert!(read(&t).is_none(), "{key}: {spoiled}");
        }
        // A task made outside annoform decodes (and is then left alone by its batch).
        let foreign: ListedTask = serde_json::from_value(
            json!({"id": 9, "data": {"image": "x", "sample_id": [1]}, "is_labeled": null}),
        )
        .unwrap();
        assert_eq!(
            (foreign.data.sample_id, foreign.data.annoform_batch),
            (None, None)
        );
    }
}
