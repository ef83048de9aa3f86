//! Reading a live dataset: its document, then its samples and frames streamed in FiftyOne's
//! (natural) order, each converted to the Extended JSON of FiftyOne's export format so the
//! engine sees the same documents as from a `dir` store.

use ::mongodb::bson::{Bson, Document, doc};
use ::mongodb::sync::Database;
use serde_json::Value;

use super::query::Query;
use super::{Address, Live, LiveError};
use crate::dataset::dir::Dataset;
use crate::dataset::ejson::{IdMap, ObjectId};
use crate::dataset::labels::Object;

/// How many dataset names an unknown-name error lists.
const KNOWN_SHOWN: i64 = 20;

/// Reads the dataset `at.name` (the `config` check has passed).
pub(super) fn load(
    db: Database,
    place: String,
    at: &Address<'_>,
    root: &std::path::Path,
) -> Result<(Dataset, Live), LiveError> {
    let name = at.name.to_string();
    let failed = |action: &'static str| {
        let (place, name) = (place.clone(), name.clone());
        move |e: ::mongodb::error::Error| LiveError::Database {
            place,
            name,
            action,
            reason: super::first_line(&e.to_string()),
        }
    };
    let datasets = db.collection::<Document>("datasets");
    let Some(meta) = datasets
        .find_one(doc! {"name": &name})
        .run()
        .map_err(failed("reading the `datasets` collection"))?
    else {
        let known = datasets
            .find(doc! {})
            .projection(doc! {"name": 1})
            .sort(doc! {"name": 1})
            .limit(KNOWN_SHOWN)
            .run()
            .map_err(failed("listing datasets"))?
            .filter_map(Result::ok)
            .filter_map(|d| d.get_str("name").ok().map(str::to_string))
            .collect();
        return Err(LiveError::UnknownDataset {
            place,
            database: at.database.to_string(),
            name,
            known,
        });
    };
    let invalid = |msg: String| LiveError::Invalid {
        place: place.clone(),
        name: name.clone(),
        msg,
    };
    let dataset_id = meta
        .get_object_id("_id")
        .map_err(|_| invalid("its `datasets` document has no ObjectId `_id`".into()))?;
    let samples = meta
        .get_str("sample_collection_name")
        .map_err(|_| invalid("its `datasets` document has no `sample_collection_name`".into()))?
        .to_string();
    let frames = meta
        .get_str("frame_collection_name")
        .ok()
        .map(str::to_string);
    let video = meta.get_str("media_type").is_ok_and(|t| t == "video");
    let declared = super::write::declared_names(&meta);

    let mut seen = IdMap::default();
    let mut sample_docs = Vec::new();
    let cursor = db
        .collection::<Document>(&samples)
        .find(doc! {})
        .run()
        .map_err(failed("reading samples"))?;
    for d in cursor {
        let d = d.map_err(failed("reading samples"))?;
        if let Ok(id) = d.get_object_id("_id") {
            seen.insert(
                ObjectId::from(id),
                d.get("last_modified_at").cloned().unwrap_or(Bson::Null),
            );
        }
        sample_docs.push(text(d));
    }
    let frame_docs = match (&frames, video) {
        (Some(coll), true) => Some(
            db.collection::<Document>(coll)
                .find(doc! {})
                .sort(doc! {"_sample_id": 1, "frame_number": 1})
                .run()
                .map_err(failed("reading frames"))?
                .map(|d| d.map(text))
                .collect::<Result<Vec<_>, _>>()
                .map_err(failed("reading frames"))?,
        ),
        _ => None,
    };
    let dataset = Dataset::from_texts(root, object(meta), sample_docs, frame_docs)
        .map_err(|e| invalid(e.to_string()))?;
    let live = Live {
        db,
        place,
        name,
        dataset_id,
        samples,
        seen,
        declared,
    };
    Ok((dataset, live))
}

/// A document as the JSON text FiftyOne's export writes (kept as text: a parsed tree costs
/// about ten times as much memory).
fn text(d: Document) -> String {
    Bson::Document(d).into_relaxed_extjson().to_string()
}

/// A document as FiftyOne's export writes it (relaxed Extended JSON: `$oid`, `$date`,
/// `$binary`, plain numbers).
fn object(d: Document) -> Object {
    match Bson::Document(d).into_relaxed_extjson() {
        Value::Object(o) => o,
        _ => unreachable!("a document converts to an object"),
    }
}

/// The ids of the samples `q`'s pipeline selects, in its order.
pub(super) fn select(live: &Live, q: &Query) -> Result<Vec<ObjectId>, LiveError> {
    let failed = |e: ::mongodb::error::Error| LiveError::Database {
        place: live.place.clone(),
        name: live.name.clone(),
        action: "selecting the view's samples",
        reason: super::first_line(&e.to_string()),
    };
    let mut pipeline = q.pipeline.clone();
    pipeline.push(doc! {"$project": {"_id": 1}});
    live.db
        .collection::<Document>(&live.samples)
        .aggregate(pipeline)
        .allow_disk_use(true)
        .run()
        .map_err(failed)?
        .map(|d| {
            let d = d.map_err(failed)?;
            Ok(d.get_object_id("_id").ok().map(ObjectId::from))
        })
        .filter_map(Result::transpose)
        .collect()
}
