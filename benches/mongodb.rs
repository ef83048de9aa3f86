//! The `mongodb` store on a real mongod (FiftyOne's own 6.0.5, started as the tests start it):
//! a FiftyOne dataset of 100k samples × 10 detections (1M labels), a run over all of it, a
//! download with 10 % of the labels relabelled (the first of every sample), merged through the
//! same `RunMerger` plan and apply use and written back through the store by label id with
//! compare-and-swap.
//!
//! The database is filled with the driver's `insert_many` (not FiftyOne: it would take
//! minutes), in the layout of `recipes/fiftyone-mongodb.md`. It prints the time to load the
//! dataset from the database and the memory it holds, the merge, and the write: label updates
//! per second (target ≥ 15,000/s; pymongo's `bulk_write` did ~16k/s on this machine) and the
//! memory the write added at its peak. Then it checks in the database that every edit landed
//! and nothing else changed, and that writing again sends nothing.
//!
//! Run: `cargo bench --bench mongodb` (`ANNOFORM_BENCH_SAMPLES` overrides 100k).

use annoform::dataset::mongodb::{self as store, Address, BeforeText};
use mongodb::bson::{Bson, DateTime, Document, doc, oid};
use mongodb::sync::Database;
use std::time::{Duration, Instant};

mod support;
use support::run::{PAGE, field, merge_all, record};
use support::{LABELS_PER_SAMPLE, Lcg};

#[path = "../tests/support/mongo.rs"]
mod mongo;

// The allocator of the annoform binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Samples per `insert_many` while filling the database.
const INSERT_BATCH: usize = 5000;

/// Extended JSON as a BSON document (ObjectIds, dates and numbers typed as FiftyOne's).
fn bson_doc(v: serde_json::Value) -> Document {
    match Bson::try_from(v).expect("generated documents convert") {
        Bson::Document(d) => d,
        other => panic!("not a document: {other:?}"),
    }
}

/// Fills `db` as FiftyOne would hold the synthetic dataset `bench` of `n` samples.
fn populate(db: &Database, n: usize) {
    db.collection::<Document>("config")
        .insert_one(doc! {"version": "1.22.1", "type": "fiftyone"})
        .run()
        .expect("insert config");
    let id = oid::ObjectId::new();
    let samples = format!("samples.{id}");
    let mut meta = bson_doc(support::dataset_meta());
    let now = DateTime::now();
    meta.insert("_id", id);
    meta.insert("slug", "bench");
    meta.insert("sample_collection_name", &samples);
    meta.insert("persistent", true);
    meta.insert("created_at", now);
    meta.insert("last_modified_at", now);
    db.collection::<Document>("datasets")
        .insert_one(meta)
        .run()
        .expect("insert dataset");
    let coll = db.collection::<Document>(&samples);
    let mut rng = Lcg(42);
    let mut batch = Vec::with_capacity(INSERT_BATCH);
    for i in 0..n {
        let mut s = bson_doc(support::sample(i, &mut rng));
        s.insert("_dataset_id", id);
        batch.push(s);
        if batch.len() == INSERT_BATCH || i + 1 == n {
            coll.insert_many(std::mem::take(&mut batch))
                .run()
                .expect("insert samples");
        }
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    let n = support::sample_count();
    let server = mongo::bench_server();
    let uri = server.uri();
    let database = server.database("bench");
    let db = server.client().database(&database);
    println!(
        "mongodb store: {} labels over {n} samples in FiftyOne's mongod 6.0.5, 10 % relabelled",
        n * LABELS_PER_SAMPLE
    );

    let t = Instant::now();
    populate(&db, n);
    println!(
        "  fill (insert_many of {INSERT_BATCH})  {:>6.2} s",
        secs(t.elapsed())
    );

    let at = Address {
        uri: &uri,
        uri_setting: "bench",
        database: &database,
        name: "bench",
    };
    let base = support::rss_mib();
    support::reset_peak_rss();
    let t = Instant::now();
    let (mut ds, mut live) =
        store::open(&at, std::path::Path::new("/"), None).expect("open dataset");
    println!(
        "  load                          {:>6.2} s  RSS +{:.0} MiB (peak +{:.0} MiB)",
        secs(t.elapsed()),
        support::rss_mib() - base,
        support::peak_rss_mib() - base
    );

    let r = record(&ds, &field());
    let (outcome, merging) = merge_all(&ds, &r, true);
    let edited = outcome.counts["ground_truth"].edited;
    assert_eq!(edited, n, "one label per sample relabelled");
    println!(
        "  merge (pages of {PAGE})          {:>6.2} s  {edited} labels edited",
        secs(merging)
    );

    let before_write = support::rss_mib();
    support::reset_peak_rss();
    let t = Instant::now();
    let touched: Vec<_> = outcome
        .writes
        .iter()
        .map(|w| (w.sample, w.field.clone()))
        .collect();
    let before = BeforeText::of(&ds, &touched);
    outcome.write(&mut ds).expect("write merge in memory");
    let in_memory = t.elapsed();
    let t = Instant::now();
    let written = live.write_texts(&ds, &before).expect("write to mongod");
    let to_db = t.elapsed();
    println!(
        "  write                         {:>6.2} s  {:.0} label updates/s  ({} statements, {} samples)  +{:.0} MiB at peak",
        secs(to_db),
        edited as f64 / secs(to_db),
        written.updates,
        written.samples,
        support::peak_rss_mib() - before_write
    );
    println!(
        "  (merge into memory first      {:>6.2} s; both: {:.0} label updates/s)",
        secs(in_memory),
        edited as f64 / secs(in_memory + to_db)
    );
    println!(
        "  peak RSS                      {:.0} MiB",
        support::peak_rss_mib()
    );

    check(&db, &live_collection(&db), n);
    let again = live
        .write_texts(&ds, &BeforeText::of(&ds, &touched))
        .expect("write again");
    assert_eq!(again.updates, 0, "a written merge writes nothing again");
    println!(
        "  checked: every edit in the database, nothing else changed, a second write sends nothing"
    );
}

/// The dataset's sample collection.
fn live_collection(db: &Database) -> String {
    db.collection::<Document>("datasets")
        .find_one(doc! {"name": "bench"})
        .run()
        .expect("read dataset")
        .and_then(|d| d.get_str("sample_collection_name").ok().map(str::to_string))
        .expect("the bench dataset")
}

/// The first label of every sample was relabelled (car ↔ person, anything else → car), its
/// id kept; the other nine are as generated; every sample carries the write's stamp.
fn check(db: &Database, samples: &str, n: usize) {
    let coll = db.collection::<Document>(samples);
    let count = |filter: Document| coll.count_documents(filter).run().expect("count");
    let was_car = n.div_ceil(4) as u64; // sample i's first label is CLASSES[i % 4]
    assert_eq!(
        count(doc! {"ground_truth.detections.0.label": "person"}),
        was_car
    );
    assert_eq!(
        count(doc! {"ground_truth.detections.0.label": "car"}),
        n as u64 - was_car
    );
    assert_eq!(
        count(doc! {"ground_truth.detections": {"$size": LABELS_PER_SAMPLE as i32}}),
        n as u64
    );
    assert_eq!(
        count(doc! {"ground_truth.detections.0._id": {"$type": "objectId"}}),
        n as u64
    );
    let generated = DateTime::parse_rfc3339_str("2026-11-22T02:28:50.402Z").expect("a date");
    assert_eq!(count(doc! {"last_modified_at": {"$lte": generated}}), 0);
}
