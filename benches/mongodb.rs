//! The `mongodb` store on a real mongod (FiftyOne's own 6.0.5, started as the tests start it):
//! a FiftyOne dataset of 100k samples × 10 detections (1M labels) and two runs on it, each in a
//! database of its own: one over a 10 % view (`match_tags: val`, 10k samples, which the store
//! reads alone: its working set) and one over all of it. For each, a download with 10 % of the
//! run's labels relabelled (the first of every sample), merged through the same `RunMerger`
//! plan and apply use and written back through the store by label id with compare-and-swap.
//!
//! The database is filled with the driver's `insert_many` (not FiftyOne: it would take
//! minutes), in the layout of `recipes/fiftyone-mongodb.md`. It prints the time to load the
//! dataset from the database and the memory it holds, the merge, and the write: label updates
//! per second (target ≥ 15,000/s; pymongo's `bulk_write` did ~16k/s on this machine) and the
//! memory the write added at its peak. Then it checks in the database that every edit landed
//! and nothing else changed. The two runs' load time,
//! memory and write rate side by side show memory following the run, not the dataset.
//!
//! Run: `cargo bench --bench mongodb` (`ANNOFORM_BENCH_SAMPLES` overrides 100k).

use annoform::dataset::mongodb::{self as store, Address, MongoStore};
use annoform::dataset::working_set::WorkingSet;
use annoform::manifest::types::{MatchTags, OneOrMany, ViewStage};
use mongodb::bson::{Bson, DateTime, Document, doc, oid};
use mongodb::sync::Database;
use std::time::{Duration, Instant};

mod support;
use support::run::{PAGE, field, merge_all, record};
use support::{CLASSES, LABELS_PER_SAMPLE, Lcg};

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

/// The view of the 10 % run: the samples tagged `val` (every tenth).
const VIEW_TAG: &str = "val";

fn main() {
    let n = support::sample_count();
    println!(
        "mongodb store: {} labels over {n} samples in FiftyOne's mongod 6.0.5, 10 % of each run's labels relabelled",
        n * LABELS_PER_SAMPLE
    );
    // The smaller run first, so that its peak is not the larger one's.
    one_run(n, true);
    one_run(n, false);
}

/// Fills a new database with the dataset, then reads, merges and writes one run: over the
/// 10 % view (`view`) or over every sample.
fn one_run(n: usize, view: bool) {
    let server = mongo::bench_server();
    let uri = server.uri();
    let database = server.database("bench");
    let db = server.client().database(&database);
    println!(
        "run over {}",
        if view {
            "a 10 % view (match_tags: val)"
        } else {
            "every sample"
        }
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
    // The run's working set: its view's samples, its field.
    let set = view.then(|| {
        let mut set = WorkingSet::empty();
        set.views = vec![vec![ViewStage::MatchTags(MatchTags::Tags(OneOrMany::One(
            VIEW_TAG.into(),
        )))]];
        set.add_field(&"ground_truth".into());
        set
    });
    let base = support::rss_mib();
    support::reset_peak_rss();
    let t = Instant::now();
    let MongoStore {
        mut ds, mut live, ..
    } = store::open(&at, std::path::Path::new("/"), set.as_ref()).expect("open dataset");
    // From the RSS left by the fill (freed memory the allocator kept), not from zero.
    println!(
        "  load ({:>6} samples)          {:>6.2} s  RSS {base:.0} → {:.0} MiB (peak {:.0} MiB)",
        ds.len(),
        secs(t.elapsed()),
        support::rss_mib(),
        support::peak_rss_mib()
    );

    let r = record(&ds, &field());
    let (outcome, merging) = merge_all(&ds, &r, true);
    let edited = outcome.counts["ground_truth"].edited;
    assert_eq!(
        edited,
        ds.len(),
        "one label per sample of the run relabelled"
    );
    println!(
        "  merge (pages of {PAGE})          {:>6.2} s  {edited} labels edited",
        secs(merging)
    );

    let before_write = support::rss_mib();
    support::reset_peak_rss();
    let t = Instant::now();
    let changes = outcome.changes(&ds).expect("the merge's store operations");
    changes.apply(&mut ds).expect("write merge in memory");
    let in_memory = t.elapsed();
    let t = Instant::now();
    let written = live.write(&ds, &changes).expect("write to mongod");
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
        "  peak RSS (load to write)      {:.0} MiB",
        support::peak_rss_mib()
    );

    let in_run = |i: usize| !view || i % 10 == 0;
    check(&db, &live_collection(&db), n, in_run);
    println!("  checked: every edit in the database, nothing else changed");
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

/// The first label of every sample of the run (`in_run`) was relabelled (car ↔ person,
/// anything else → car), its id kept; the other labels and samples are as generated; every
/// sample of the run carries the write's stamp, and only those.
fn check(db: &Database, samples: &str, n: usize, in_run: impl Fn(usize) -> bool) {
    let coll = db.collection::<Document>(samples);
    let count = |filter: Document| coll.count_documents(filter).run().expect("count");
    let first = |i: usize| {
        let was = CLASSES[i % 4]; // sample i's first label
        match (in_run(i), was) {
            (false, _) => was,
            (true, "car") => "person",
            (true, _) => "car",
        }
    };
    for class in ["car", "person"] {
        let expected = (0..n).filter(|&i| first(i) == class).count() as u64;
        assert_eq!(
            count(doc! {"ground_truth.detections.0.label": class}),
            expected
        );
    }
    assert_eq!(
        count(doc! {"ground_truth.detections": {"$size": LABELS_PER_SAMPLE as i32}}),
        n as u64
    );
    assert_eq!(
        count(doc! {"ground_truth.detections.0._id": {"$type": "objectId"}}),
        n as u64
    );
    let generated = DateTime::parse_rfc3339_str("2026-11-22T02:28:50.402Z").expect("a date");
    let untouched = (0..n).filter(|&i| !in_run(i)).count() as u64;
    assert_eq!(
        count(doc! {"last_modified_at": {"$lte": generated}}),
        untouched
    );
}
