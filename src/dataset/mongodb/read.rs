//! Reading a live dataset: its document, then its samples and frames streamed in FiftyOne's
//! (natural) order, each converted to the Extended JSON of FiftyOne's export format so the
//! engine sees the same documents as from a `dir` store.

use std::collections::BTreeSet;

use ::mongodb::bson::{Bson, Document, doc, oid};
use ::mongodb::options::Hint;
use ::mongodb::sync::Database;
use serde_json::Value;

use super::query::Query;
use super::{Address, Live, LiveError};
use crate::dataset::dir::Dataset;
use crate::dataset::ejson::{IdMap, IdSet, ObjectId};
use crate::dataset::labels::Object;
use crate::dataset::working_set::{FRAME_FIELDS, SAMPLE_FIELDS, WorkingSet};

/// How many dataset names an unknown-name error lists.
const KNOWN_SHOWN: i64 = 20;

/// Reads the dataset `at.name` (the `config` check has passed): the working set `set`, or
/// everything.
pub(super) fn load(
    db: Database,
    place: String,
    at: &Address<'_>,
    root: &std::path::Path,
    set: Option<&WorkingSet>,
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

    let mut live = Live {
        db,
        place,
        name,
        dataset_id,
        samples,
        seen: IdMap::default(),
        declared,
        selections: Vec::new(),
    };
    // The dataset's declarations alone answer which fields hold labels, for the views.
    let declarations = Dataset::from_texts(root, object(meta.clone()), Vec::new(), None)
        .map_err(|e| live.invalid(e.to_string()))?;
    let wanted = match set {
        Some(set) => live.wanted_samples(set, &declarations)?,
        None => None,
    };
    let sample_docs = read_docs(
        &live,
        &live.samples,
        wanted.as_ref().map(|ids| ("_id", ids)),
        set.and_then(|s| projection(s.fields.as_ref()?, &SAMPLE_FIELDS)),
        None,
        "reading samples",
    )?;
    let frame_docs = match (&frames, video) {
        (Some(coll), true) => Some(read_docs(
            &live,
            coll,
            wanted.as_ref().map(|ids| ("_sample_id", ids)),
            set.and_then(|s| projection(s.frame_fields.as_ref()?, &FRAME_FIELDS)),
            Some(doc! {"_sample_id": 1, "frame_number": 1}),
            "reading frames",
        )?),
        _ => None,
    };
    for d in &sample_docs {
        live.seen.insert(d.0, d.1.clone());
    }
    let texts = |docs: Vec<(ObjectId, Bson, String)>| docs.into_iter().map(|d| d.2).collect();
    let dataset = Dataset::from_texts(
        root,
        object(meta),
        texts(sample_docs),
        frame_docs.map(texts),
    )
    .map_err(|e| live.invalid(e.to_string()))?;
    Ok((dataset, live))
}

/// Above this many samples a read asks for every document and keeps the wanted ones, rather
/// than sending the server a list of ids that large.
const IDS_SENT: usize = 100_000;

impl Live {
    /// The samples the working set needs: those its views select (the leading stages the
    /// server answers) and those its records name; `None` when a view needs every sample.
    /// Each view's selection is kept for [`Live::select`].
    fn wanted_samples(
        &mut self,
        set: &WorkingSet,
        declarations: &Dataset,
    ) -> Result<Option<IdSet>, LiveError> {
        let mut wanted: IdSet = set.samples.iter().copied().collect();
        for stages in &set.views {
            let Some(selected) = self.select(stages, declarations)? else {
                return Ok(None);
            };
            wanted.extend(selected.ids.iter().copied());
            self.selections.push((stages.clone(), selected));
        }
        Ok(Some(wanted))
    }
}

/// Every field, or `{field: 1}` for each of `always` and `fields`.
fn projection(fields: &BTreeSet<String>, always: &[&str]) -> Option<Document> {
    let mut p = Document::new();
    for f in always
        .iter()
        .copied()
        .chain(fields.iter().map(String::as_str))
    {
        p.insert(f, 1);
    }
    Some(p)
}

/// The documents of `collection` (each id, `last_modified_at` and text), in natural order
/// (FiftyOne's) or `sort`; with `wanted`, only those whose `key` is one of the ids.
fn read_docs(
    live: &Live,
    collection: &str,
    wanted: Option<(&str, &IdSet)>,
    projection: Option<Document>,
    sort: Option<Document>,
    action: &'static str,
) -> Result<Vec<(ObjectId, Bson, String)>, LiveError> {
    let failed = live.failed(action);
    let filter = match wanted {
        Some((key, ids)) if ids.len() <= IDS_SENT => {
            let ids: Vec<oid::ObjectId> = ids.iter().map(|&id| id.into()).collect();
            doc! {key: {"$in": ids}}
        }
        _ => doc! {},
    };
    let sent = !filter.is_empty();
    let coll = live.db.collection::<Document>(collection);
    let mut find = coll.find(filter);
    if let Some(p) = projection {
        find = find.projection(p);
    }
    find = match sort {
        Some(sort) => find.sort(sort),
        // The `_id` index would return ids in their order, not the collection's.
        None if sent => find.hint(Hint::Keys(doc! {"$natural": 1})),
        None => find,
    };
    let mut out = Vec::new();
    for d in find.run().map_err(&failed)? {
        let d = d.map_err(&failed)?;
        let Ok(id) = d.get_object_id("_id").map(ObjectId::from) else {
            out.push((ObjectId::default(), Bson::Null, text(d)));
            continue;
        };
        if let Some((key, ids)) = wanted.filter(|_| !sent) {
            let of = d.get_object_id(key).map(ObjectId::from);
            if !of.is_ok_and(|of| ids.contains(&of)) {
                continue;
            }
        }
        let stamp = d.get("last_modified_at").cloned().unwrap_or(Bson::Null);
        out.push((id, stamp, text(d)));
    }
    Ok(out)
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
