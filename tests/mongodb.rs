//! The `mongodb` dataset store against a real mongod (FiftyOne's own, one server for this
//! binary, a database per test) with datasets made and read back by real FiftyOne 1.22.1:
//! writes by label id with compare-and-swap on `last_modified_at`, field declarations that
//! FiftyOne loads, annoform's runs among FiftyOne's annotation runs, and the errors a new user
//! meets.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fs.rs"]
mod fs;
#[path = "support/mongo.rs"]
mod mongo;
#[path = "support/video_edits.rs"]
mod video_edits;

use annoform::dataset::change::{Changes, Edit, FieldChange, LabelEdits};
use annoform::dataset::ejson::ObjectId;
use annoform::dataset::fields::FieldType;
use annoform::dataset::mongodb::{self as store, Address, LiveError, MongoStore};
use annoform::dataset::working_set::WorkingSet;
use annoform::dataset::{FieldPath, FrameNumber};
use annoform::manifest::types::ViewStage;
use cli::{Workspace, repo};
use mongodb::bson::{Bson, Document, doc, oid};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::PathBuf;
use video_edits::{CAR_2, PERSON_2, PERSON_3};

const FIXTURE: &str = "tests/fixtures/fiftyone-1.22.1/image-all-label-types";

fn script() -> PathBuf {
    repo().join("tests/interop/fiftyone_live.py")
}

/// A new database holding FiftyOne's import of the all-label-types fixture as `name`.
fn fiftyone_dataset(prefix: &str, name: &str) -> String {
    let m = mongo::server();
    let db = m.database(prefix);
    let fixture = repo().join(FIXTURE);
    m.fiftyone(&db, &script(), &["create", name, fixture.to_str().unwrap()]);
    db
}

/// What a fresh FiftyOne process loads.
fn dump(db: &str, name: &str) -> Value {
    let out = mongo::server().fiftyone(db, &script(), &["dump", name]);
    serde_json::from_str(out.lines().last().unwrap_or_default()).expect("dump JSON")
}

/// Every sample's `last_modified_at`, straight from the database.
fn stamps(db: &str) -> Vec<(Bson, Bson)> {
    let client = mongo::server().client();
    let d = client.database(db);
    let mut out = Vec::new();
    for ds in d
        .collection::<Document>("datasets")
        .find(doc! {})
        .run()
        .unwrap()
    {
        let ds = ds.unwrap();
        let coll = ds.get_str("sample_collection_name").unwrap();
        for s in d.collection::<Document>(coll).find(doc! {}).run().unwrap() {
            let s = s.unwrap();
            out.push((
                s.get("_id").cloned().unwrap(),
                s.get("last_modified_at").cloned().unwrap(),
            ));
        }
        out.push((
            ds.get("_id").cloned().unwrap(),
            ds.get("last_modified_at").cloned().unwrap(),
        ));
    }
    out
}

fn oid(v: &Value) -> &str {
    v["_id"]["$oid"].as_str().expect("an _id")
}

/// Where FiftyOne's dataset `name` lives in the test server's database `database`.
fn address<'a>(uri: &'a str, database: &'a str, name: &'a str) -> Address<'a> {
    Address {
        uri,
        uri_setting: "FIFTYONE_DATABASE_URI",
        database,
        name,
    }
}

#[test]
fn merged_changes_are_written_by_label_id_and_a_concurrent_edit_is_a_conflict() {
    let db = fiftyone_dataset("cas", "quick");
    let m = mongo::server();
    let uri = m.uri();
    let at = address(&uri, &db, "quick");
    let MongoStore {
        mut ds, mut live, ..
    } = store::open(&at, &repo(), None).expect("open");
    let ids: Vec<ObjectId> = ds.samples().iter().map(|s| s.id()).collect();
    let (s0, s1) = (ids[0], ids[1]);
    let gt = FieldPath::sample("ground_truth");
    let fresh = FieldPath::sample("reviewed");
    // On both samples relabel the first box, drop the second, add one; sample 1 also gets a
    // new field, declared as FiftyOne declares it.
    let added = ObjectId::new();
    let mut changes = Changes {
        declare: vec![(fresh.clone(), FieldType::Label("Classification".into()))],
        fields: Vec::new(),
    };
    for s in [s0, s1] {
        let v = ds.sample_by_id(s).unwrap().get("ground_truth").cloned();
        let dets = v.unwrap()["detections"].as_array().unwrap().clone();
        let mut first = dets[0].clone();
        first["label"] = json!("bike");
        changes.fields.push(FieldChange {
            sample: s,
            frame: None,
            field: gt.clone(),
            edit: Edit::Labels(LabelEdits {
                key: "detections",
                set: vec![first],
                add: vec![
                    json!({"_id": {"$oid": added.to_string()}, "_cls": "Detection",
                    "attributes": {}, "tags": [], "label": "car",
                    "bounding_box": [0.0, 0.5, 0.25, 0.5], "confidence": 1.0}),
                ],
                remove: vec![ObjectId::parse(oid(&dets[1])).unwrap()],
            }),
        });
    }
    changes.fields.push(FieldChange {
        sample: s1,
        frame: None,
        field: fresh.clone(),
        edit: Edit::Whole(Some(json!({"_id": {"$oid": ObjectId::new().to_string()},
            "_cls": "Classification", "tags": [], "label": "ok"}))),
    });
    changes.apply(&mut ds).unwrap();
    let gt0 = dump(&db, "quick")["samples"][0]["ground_truth"]["detections"].clone();

    // FiftyOne changes sample 0 after annoform read it.
    m.fiftyone(&db, &script(), &["tag", "quick", &s0.to_string(), "busy"]);
    let stamp0 = stamps(&db);

    let err = live
        .write(&ds, &changes)
        .expect_err("sample 0 changed meanwhile");
    match &err {
        LiveError::Conflicts { samples, .. } => assert_eq!(samples, &vec![s0]),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(&s0.to_string()), "{err}");

    let after = dump(&db, "quick");
    let (a0, a1) = (&after["samples"][0], &after["samples"][1]);
    // Sample 0 is exactly as FiftyOne left it.
    assert_eq!(a0["tags"], json!(["train", "busy"]));
    assert_eq!(a0["ground_truth"]["detections"], gt0);
    assert_eq!(stamps(&db)[0], stamp0[0]);
    // Sample 1 has the merge: ids kept, the new label with its ObjectId, types exact.
    let dets = a1["ground_truth"]["detections"].as_array().unwrap();
    assert_eq!(dets.len(), 2, "{dets:#?}");
    assert_eq!(dets[0]["label"], "bike");
    assert_eq!(oid(&dets[1]), added.to_string());
    assert_eq!(a1["reviewed"]["label"], "ok");
    assert_eq!(
        after["schema"]["reviewed"],
        "EmbeddedDocumentField(Classification)"
    );
    let raw = m
        .client()
        .database(&db)
        .collection::<Document>(&format!("samples.{}", dump_id(&db)))
        .find_one(doc! {"_id": mongodb::bson::oid::ObjectId::parse_str(s1.to_string()).unwrap()})
        .run()
        .unwrap()
        .unwrap();
    let new = raw
        .get_document("ground_truth")
        .unwrap()
        .get_array("detections")
        .unwrap()[1]
        .as_document()
        .unwrap()
        .clone();
    assert!(matches!(new.get("_id"), Some(Bson::ObjectId(_))), "{new}");
    assert!(
        matches!(new.get("confidence"), Some(Bson::Double(_))),
        "{new}"
    );
    assert!(matches!(
        raw.get("last_modified_at"),
        Some(Bson::DateTime(_))
    ));

    // Nothing left to write: writing no change sends nothing, declares nothing again.
    let stamps_now = stamps(&db);
    let written = live.write(&ds, &Changes::default()).unwrap();
    assert_eq!(
        (written.samples, written.updates, written.declared),
        (0, 0, 0)
    );
    assert_eq!(stamps(&db), stamps_now);
}

/// The `_id` of the only dataset of `db`.
fn dump_id(db: &str) -> String {
    let d = mongo::server()
        .client()
        .database(db)
        .collection::<Document>("datasets")
        .find_one(doc! {})
        .run()
        .unwrap()
        .unwrap();
    d.get_object_id("_id").unwrap().to_hex()
}

/// A workspace whose dataset `live` is the FiftyOne dataset `name`, with one run on it.
fn workspace(name: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write(
        "annoform.toml",
        &format!(
            "default_backend = \"labelstudio\"\n[datasets.live]\nstore = \"mongodb\"\nname = \"{name}\"\n[backends.labelstudio]\nurl = \"http://127.0.0.1:9\"\n"
        ),
    );
    ws.write(
        "manifests/run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: live\nbackend: labelstudio\nlabel_schema:\n  ground_truth: {}\n",
    );
    ws
}

/// A server that answers every connection with an HTTP error, as a web server would.
fn not_mongodb() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    port
}

#[test]
fn a_new_users_mistakes_get_one_clear_error_each_and_nothing_is_written() {
    let db = fiftyone_dataset("newuser", "quick");
    let m = mongo::server();
    let client = m.client();
    let other = m.database("other");
    client
        .database(&other)
        .collection::<Document>("stuff")
        .insert_one(doc! {"x": 1})
        .run()
        .unwrap();
    // The databases there are, but those other tests of this binary create meanwhile.
    let others = format!("_{}_", std::process::id());
    let databases = || {
        let mut d = client.list_database_names().run().unwrap();
        d.retain(|n| !n.contains(&others) || [&db, &other].contains(&n));
        d.sort();
        d
    };
    let (dbs0, stamps0) = (databases(), stamps(&db));
    let ws = workspace("quick");
    let http = format!("mongodb://127.0.0.1:{}", not_mongodb());
    // A password in the URI is never shown.
    let wrong_port = format!(
        "mongodb://annoform:s3cret-pw@127.0.0.1:{}",
        mongo::free_port()
    );
    let uri = m.uri();
    // (what the user got wrong, their environment, what the error must say)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let cases: [Case; 5] = [
        (
            "a URI without its scheme",
            vec![
                ("FIFTYONE_DATABASE_URI", "127.0.0.1:27017"),
                ("FIFTYONE_DATABASE_NAME", &db),
            ],
            &["FIFTYONE_DATABASE_URI: not a MongoDB URI"],
        ),
        (
            "a server that is not MongoDB",
            vec![
                ("FIFTYONE_DATABASE_URI", &http),
                ("FIFTYONE_DATABASE_NAME", &db),
            ],
            &[
                "cannot reach a MongoDB server at 127.0.0.1:",
                "is it a MongoDB server",
            ],
        ),
        (
            "nothing listening",
            vec![
                ("FIFTYONE_DATABASE_URI", &wrong_port),
                ("FIFTYONE_DATABASE_NAME", &db),
            ],
            &["cannot reach a MongoDB server at 127.0.0.1:"],
        ),
        (
            "a database that is not FiftyOne's",
            vec![
                ("FIFTYONE_DATABASE_URI", &uri),
                ("FIFTYONE_DATABASE_NAME", &other),
            ],
            &[
                "is not a FiftyOne database (it has no `config` document)",
                "FIFTYONE_DATABASE_NAME",
            ],
        ),
        (
            "a dataset name that does not exist",
            vec![
                ("FIFTYONE_DATABASE_URI", &uri),
                ("FIFTYONE_DATABASE_NAME", &db),
            ],
            &["no FiftyOne dataset named `quick2`", "(it has: quick)"],
        ),
    ];
    for (what, env, expected) in cases {
        let ws = if what.starts_with("a dataset name") {
            workspace("quick2")
        } else {
            workspace("quick")
        };
        let out = ws.run_with(&["validate"], &env);
        assert_eq!(out.code, 1, "{what}: {out:?}");
        // The message as one line (the terminal rendering wraps it).
        let said = out
            .stderr
            .replace('│', " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for e in expected {
            assert!(said.contains(e), "{what}: {e:?} missing: {out:?}");
        }
        assert!(
            !out.stderr.contains("s3cret-pw") && !out.stdout.contains("s3cret-pw"),
            "{what}: password shown"
        );
        assert_eq!(databases(), dbs0, "{what}: a database was created");
        assert_eq!(stamps(&db), stamps0, "{what}: something was written");
    }
    // Where the settings come from, the URI shown as a secret.
    let out = ws.run_with(&["config", "show"], &[("FIFTYONE_DATABASE_URI", &uri)]);
    assert!(
        out.stdout.contains("datasets.live.uri") && out.stdout.contains("(set)"),
        "{out:?}"
    );
    assert!(out.stdout.contains("env FIFTYONE_DATABASE_URI"), "{out:?}");
    assert!(
        out.stdout.contains("datasets.live.database") && out.stdout.contains("fiftyone"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("s3cret-pw"), "{out:?}");
}

/// The run documents of `db` (FiftyOne's `runs` collection) and the dataset's
/// `annotation_runs` map and `last_modified_at`, straight from the database.
fn run_docs(db: &str) -> (Vec<Document>, Document, Bson) {
    let d = mongo::server().client().database(db);
    let runs = d
        .collection::<Document>("runs")
        .find(doc! {})
        .sort(doc! {"key": 1})
        .run()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ds = d
        .collection::<Document>("datasets")
        .find_one(doc! {})
        .run()
        .unwrap()
        .unwrap();
    (
        runs,
        ds.get_document("annotation_runs").unwrap().clone(),
        ds.get("last_modified_at").cloned().unwrap(),
    )
}

/// A workspace whose dataset `name` is the live FiftyOne dataset `name`, sent to the test
/// backend by the run `manifest`.
fn live_workspace(name: &str, manifest: &str) -> Workspace {
    let ws = Workspace::empty();
    ws.write(
        "annoform.toml",
        &format!(
            "default_backend = \"fake\"\n[datasets.{name}]\nstore = \"mongodb\"\nname = \"{name}\"\n\
             [backends.fake]\ncommand = [\"{}\", \"{}\"]\n",
            fs::test_backend().display(),
            ws.path().join("backend.json").display()
        ),
    );
    ws.write("manifests/run.yaml", manifest);
    ws
}

/// A workspace on the FiftyOne dataset `quick`, with the run `review` over the first two
/// samples' `ground_truth`.
fn review_workspace() -> Workspace {
    live_workspace(
        "quick",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quick\n\
         view:\n  - limit: 2\nlabel_schema:\n  ground_truth:\n    classes: [car, person, bike]\n",
    )
}

/// A new database (named from `prefix`) holding FiftyOne's own import of the `video-tracks`
/// fixture as the dataset `traffic`.
fn traffic(m: &mongo::Mongo, prefix: &str) -> String {
    let db = m.database(prefix);
    let fixture = repo().join("tests/fixtures/fiftyone-1.22.1/video-tracks");
    m.fiftyone(
        &db,
        &script(),
        &["create", "traffic", fixture.to_str().unwrap()],
    );
    db
}

/// Runs annoform in `ws` on the test server's database `db`; it must succeed.
fn annoform_ok(ws: &Workspace, db: &str, args: &[&str]) -> cli::Output {
    let uri = mongo::server().uri();
    let env = [
        ("FIFTYONE_DATABASE_URI", uri.as_str()),
        ("FIFTYONE_DATABASE_NAME", db),
    ];
    let out = ws.run_with(args, &env);
    assert_eq!(out.code, 0, "annoform {args:?}: {out:?}");
    out
}

/// annoform's run on a live dataset is one of FiftyOne's annotation runs, saved as FiftyOne
/// saves them (a `runs` document the dataset refers to by ObjectId): a fresh FiftyOne process
/// loads the dataset, lists the run next to one FiftyOne registered itself (which stays as it
/// was), shows its config and label schema, selects its samples, and answers `None` for its
/// results (FiftyOne's answer for a run without results). Re-applying with nothing to do
/// writes nothing; renaming and destroying the run change FiftyOne's list as FiftyOne's own
/// rename/delete do, leaving no document behind.
#[test]
fn fiftyone_lists_annoforms_run_on_a_live_dataset() {
    let db = fiftyone_dataset("runs", "quick");
    let m = mongo::server();
    m.fiftyone(&db, &script(), &["register", "quick", "fo_run"]);
    let fiftyone_runs = || -> Value {
        let out = m.fiftyone(&db, &script(), &["runs", "quick"]);
        serde_json::from_str(out.lines().last().unwrap_or_default()).expect("runs JSON")
    };
    let theirs = fiftyone_runs()["runs"]["fo_run"].clone();
    let (docs0, _, _) = run_docs(&db);
    assert_eq!(docs0.len(), 1);

    let ws = review_workspace();
    let annoform = |args: &[&str]| {
        annoform_ok(&ws, &db, args);
    };
    annoform(&["apply", "--auto-approve"]);

    let got = fiftyone_runs();
    let keys: Vec<&String> = got["runs"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["fo_run", "review"], "{got:#}");
    assert_eq!(got["runs"]["fo_run"], theirs, "FiftyOne's own run stays");
    let review = &got["runs"]["review"];
    let config = &review["config"];
    assert_eq!(config["type"], "annotation");
    assert_eq!(
        config["cls"],
        "fiftyone.utils.annotations.AnnotationBackendConfig"
    );
    assert_eq!(config["label_schema"]["ground_truth"]["type"], "detections");
    assert_eq!(
        config["label_schema"]["ground_truth"]["classes"],
        json!(["car", "person", "bike"])
    );
    let mut first: Vec<String> = dump(&db, "quick")["samples"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|s| oid(s).to_string())
        .collect();
    first.sort();
    assert_eq!(review["view"], json!(first));
    assert_eq!(review["results"], Value::Null);

    // In the database, as FiftyOne's save_run_info writes a run.
    let (docs, refs, stamp) = run_docs(&db);
    assert_eq!(docs.len(), 2);
    let ours = docs
        .iter()
        .find(|d| d.get_str("key") == Ok("review"))
        .unwrap();
    assert_eq!(refs.get("review"), ours.get("_id"));
    assert!(matches!(ours.get("_id"), Some(Bson::ObjectId(_))), "{ours}");
    assert_eq!(
        ours.get_object_id("_dataset_id").unwrap().to_hex(),
        dump_id(&db)
    );
    assert!(
        matches!(ours.get("timestamp"), Some(Bson::DateTime(_))),
        "{ours}"
    );
    assert_eq!(ours.get("results"), Some(&Bson::Null));
    assert!(
        docs.contains(&docs0[0]),
        "FiftyOne's run document is untouched"
    );

    // Nothing to do: nothing written.
    annoform(&["apply", "--auto-approve"]);
    assert_eq!(run_docs(&db), (docs.clone(), refs.clone(), stamp));

    annoform(&["runs", "rename", "review", "renamed"]);
    let got = fiftyone_runs();
    let keys: Vec<&String> = got["runs"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["fo_run", "renamed"], "{got:#}");
    assert_eq!(got["runs"]["renamed"]["view"], json!(first));

    std::fs::remove_file(ws.path().join("manifests/run.yaml")).unwrap();
    annoform(&["destroy", "--target", "renamed", "--auto-approve"]);
    let got = fiftyone_runs();
    let keys: Vec<&String> = got["runs"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["fo_run"], "{got:#}");
    assert_eq!(got["runs"]["fo_run"], theirs);
    let (docs, refs, _) = run_docs(&db);
    assert_eq!(docs, docs0, "only FiftyOne's run document is left");
    assert_eq!(refs.keys().collect::<Vec<_>>(), ["fo_run"]);
}

/// The labels of `field` on one frame of a dump, by id.
fn labels_by_id(frame: &Value, field: &str) -> serde_json::Map<String, Value> {
    frame[field]["detections"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| (oid(d).to_string(), d.clone()))
        .collect()
}

/// A video run on a live dataset: FiftyOne imports its own export of a 6-frame video whose
/// frames 1–3 hold two tracks; annoform uploads the frame labels to the test backend, where
/// annotators relabel, delete and draw labels on frames (one FiftyOne has no document for) and
/// fill a new frame field. A fresh FiftyOne process reads every frame as annoform wrote it,
/// labels nobody touched with their ids and content, the new frame field declared; a frame
/// FiftyOne edits between annoform's read and its write is a conflict that keeps FiftyOne's
/// edit; a second apply writes nothing.
#[test]
fn a_video_merge_writes_frame_labels_by_id() {
    let m = mongo::server();
    let db = traffic(m, "video");
    let ws = live_workspace(
        "traffic",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: tracks\ndataset: traffic\n\
         label_schema:\n  frames.dets:\n    classes: [car, person, truck]\n\
         \x20 frames.qa:\n    type: detections\n    classes: [dog]\n",
    );
    let uri = m.uri();
    let env = [
        ("FIFTYONE_DATABASE_URI", uri.as_str()),
        ("FIFTYONE_DATABASE_NAME", db.as_str()),
    ];
    let annoform = |args: &[&str]| {
        let out = ws.run_with(args, &env);
        assert_eq!(out.code, 0, "annoform {args:?}: {out:?}");
    };
    let before = dump(&db, "traffic");
    annoform(&["apply", "--auto-approve"]);

    let sid = video_edits::annotate(&ws.path().join("backend.json"));
    annoform(&["apply", "--auto-approve"]);

    let fo = dump(&db, "traffic");
    assert_eq!(
        fo["frame_schema"]["qa"],
        "EmbeddedDocumentField(Detections)"
    );
    let fo_frames = fo["frames"][&sid].as_object().unwrap();
    let numbers: Vec<&str> = fo_frames.keys().map(String::as_str).collect();
    assert_eq!(numbers, ["1", "2", "3", "5"]);
    let was = &before["frames"][&sid];
    let f2 = labels_by_id(&fo_frames["2"], "dets");
    assert_eq!(f2[CAR_2]["label"], "truck");
    assert_eq!(f2[CAR_2]["keyframe"], true);
    assert_eq!(
        f2[PERSON_2],
        labels_by_id(&was["2"], "dets")[PERSON_2],
        "untouched"
    );
    let f3 = labels_by_id(&fo_frames["3"], "dets");
    assert!(!f3.contains_key(PERSON_3), "deleted");
    assert_eq!(f3.len(), 1);
    for field in ["dets", "weather", "frame_score", "_id", "created_at"] {
        assert_eq!(
            fo_frames["1"][field], was["1"][field],
            "frame 1 {field} is untouched, ids included"
        );
    }
    for n in ["2", "3"] {
        assert_eq!(fo_frames[n]["_id"], was[n]["_id"], "frame {n} keeps its id");
        assert_eq!(fo_frames[n]["weather"], was[n]["weather"]);
    }
    let drawn = labels_by_id(&fo_frames["5"], "dets");
    let (new_id, new) = drawn.iter().next().unwrap();
    assert!(ObjectId::parse(new_id).is_ok());
    assert_eq!((&new["label"], &new["index"]), (&json!("car"), &json!(1)));
    assert_eq!(fo_frames["5"]["frame_number"], 5);
    assert_eq!(fo_frames["5"]["_sample_id"], json!({"$oid": sid}));
    let qa = labels_by_id(&fo_frames["1"], "qa");
    assert_eq!(qa.len(), 1);
    assert!(ObjectId::parse(qa.keys().next().unwrap()).is_ok());
    assert_eq!(fo["samples"][0], before["samples"][0], "sample untouched");

    // Exact BSON, straight from the database.
    let raw = m
        .client()
        .database(&db)
        .collection::<Document>(&format!("frames.samples.{}", dump_id(&db)))
        .find_one(doc! {"frame_number": 5})
        .run()
        .unwrap()
        .unwrap();
    assert!(matches!(raw.get("_id"), Some(Bson::ObjectId(_))), "{raw}");
    assert!(
        matches!(raw.get("frame_number"), Some(Bson::Int32(5))),
        "{raw}"
    );
    assert!(
        matches!(raw.get("_sample_id"), Some(Bson::ObjectId(_))),
        "{raw}"
    );
    assert!(
        matches!(raw.get("last_modified_at"), Some(Bson::DateTime(_))),
        "{raw}"
    );
    let det = raw
        .get_document("dets")
        .unwrap()
        .get_array("detections")
        .unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    assert!(matches!(det.get("_id"), Some(Bson::ObjectId(_))), "{det}");
    assert!(matches!(det.get("index"), Some(Bson::Int32(1))), "{det}");

    // A second apply writes nothing.
    annoform(&["apply", "--auto-approve"]);
    assert_eq!(dump(&db, "traffic"), fo, "a second apply writes nothing");
}

/// A video is written only if every one of its frames is as annoform read it: FiftyOne
/// relabels frame 3 after annoform read the dataset, so annoform's change to frame 2 of the
/// same video is not written and the video is reported; FiftyOne's edit stays. Read afresh
/// (as a re-plan does), the same change is written and FiftyOne's edit is kept beside it.
#[test]
fn a_video_whose_frames_changed_since_the_read_is_a_conflict() {
    let m = mongo::server();
    let db = traffic(m, "vconflict");
    let uri = m.uri();
    let at = address(&uri, &db, "traffic");
    let weather = FieldPath::frame("weather");
    let two = FrameNumber::new(2).unwrap();
    let cloudy = json!({"_id": {"$oid": ObjectId::new().to_string()}, "_cls": "Classification",
        "tags": [], "label": "cloudy"});
    let relabel = |ds: &mut annoform::dataset::dir::Dataset, sid: ObjectId| {
        let changes = Changes {
            declare: Vec::new(),
            fields: vec![FieldChange {
                sample: sid,
                frame: Some(two),
                field: weather.clone(),
                edit: Edit::Whole(Some(cloudy.clone())),
            }],
        };
        changes.apply(ds).unwrap();
        changes
    };
    let MongoStore {
        mut ds, mut live, ..
    } = store::open(&at, &repo(), None).expect("open");
    let sid = ds.samples()[0].id();
    let changes = relabel(&mut ds, sid);
    let was = dump(&db, "traffic")["frames"][sid.to_string()].clone();

    m.fiftyone(
        &db,
        &script(),
        &["frame", "traffic", &sid.to_string(), "3", "rainy"],
    );
    let err = live
        .write(&ds, &changes)
        .expect_err("frame 3 changed meanwhile");
    match &err {
        LiveError::Conflicts { samples, .. } => assert_eq!(samples, &vec![sid]),
        other => panic!("{other}"),
    }
    let frames = dump(&db, "traffic")["frames"][sid.to_string()].clone();
    assert_eq!(frames["2"], was["2"], "nothing of the video was written");
    assert_eq!(
        frames["3"]["weather"]["label"], "rainy",
        "FiftyOne's edit stays"
    );

    let MongoStore {
        mut ds, mut live, ..
    } = store::open(&at, &repo(), None).expect("open again");
    let changes = relabel(&mut ds, sid);
    let written = live
        .write(&ds, &changes)
        .expect("nothing changed since this read");
    assert_eq!((written.frames, written.updates), (1, 1));
    let frames = dump(&db, "traffic")["frames"][sid.to_string()].clone();
    assert_eq!(frames["2"]["weather"], cloudy);
    assert_eq!(frames["2"]["dets"], was["2"]["dets"]);
    assert_eq!(frames["3"]["weather"]["label"], "rainy");
}

/// The view stages MongoDB answers select, on the server, exactly the samples (in the same
/// order) that real FiftyOne's view gives and that the in-memory evaluation gives; the stages
/// it cannot answer run in memory on what it selected.
#[test]
fn views_pushed_down_select_what_fiftyone_and_the_in_memory_evaluation_select() {
    use annoform::dataset::view;
    use annoform::manifest::types::ViewStage;

    let m = mongo::server();
    let db = m.database("views");
    let made = m.fiftyone(&db, &script(), &["varied", "varied", "24"]);
    let made: Value = serde_json::from_str(made.lines().last().unwrap()).unwrap();
    let id = |i: usize| made["ids"][i].as_str().unwrap().to_string();
    // (view, how many leading stages the server answers, what it agrees with)
    use Agrees::{Both, Memory, TiesCut};
    let views = [
        (json!([{"match_tags": "a"}]), 1, Both),
        (json!([{"match_tags": ["b", "c"]}]), 1, Both),
        (json!([{"exists": "score"}]), 1, Both),
        (
            json!([{"exists": {"field": "score", "bool": false}}]),
            1,
            Both,
        ),
        (json!([{"exists": {"field": "gt", "bool": false}}]), 1, Both),
        (
            json!([{"match_tags": {"tags": ["a", "c"], "all": true}}]),
            1,
            Both,
        ),
        (
            json!([{"match_tags": {"tags": ["a", "c"], "bool": false}}]),
            1,
            Both,
        ),
        (
            json!([{"match_tags": {"tags": ["a", "c"], "bool": false, "all": true}}]),
            1,
            Both,
        ),
        (json!([{"exists": "gt"}]), 1, Both),
        (json!([{"exists": "gt.detections.label"}]), 1, Both),
        (json!([{"select": [id(5), id(2), id(9), id(5)]}]), 1, Both),
        (json!([{"sort_by": "name"}]), 1, Both),
        (
            json!([{"sort_by": {"expr": "score", "reverse": true}}]),
            1,
            Both,
        ),
        // Ties: in the order the server read them, the dataset's.
        (json!([{"sort_by": "n"}]), 1, Both),
        (
            json!([{"match_tags": "a"}, {"skip": 1}, {"limit": 3}]),
            3,
            Both,
        ),
        (
            json!([{"exists": "score"}, {"sort_by": {"expr": "name", "reverse": true}}, {"limit": 5}]),
            3,
            Both,
        ),
        // Ties cut by a limit: MongoDB's top-k sort does not keep them in dataset order.
        (
            json!([{"exists": "score"}, {"sort_by": {"expr": "n", "reverse": true}}, {"limit": 5}]),
            3,
            TiesCut,
        ),
        (json!([{"limit": 0}]), 1, Both),
        (
            json!([{"select": [id(1), id(3), id(4)]}, {"sort_by": "name"}, {"skip": 1}]),
            3,
            Both,
        ),
        // Partly in memory.
        (
            json!([{"match_tags": "b"}, {"take": {"size": 3, "seed": 1}}]),
            1,
            Memory,
        ),
        (
            json!([{"exists": "gt"}, {"sort_by": {"expr": "count(gt)", "reverse": true}}, {"limit": 4}]),
            1,
            Memory,
        ),
        (
            json!([{"limit": 20}, {"match_labels": {"fields": "gt", "where": "label == 'bus'"}}, {"skip": 1}]),
            3,
            Memory,
        ),
        // annoform's `where` translated (NaN, null and missing values as in memory).
        (
            json!([{"match_labels": {"fields": "gt", "where": "confidence > 0.3"}}]),
            1,
            Memory,
        ),
        (
            json!([{"match_labels": {"fields": "gt", "where": "confidence < 1 || confidence == null"}}]),
            1,
            Memory,
        ),
        (
            json!([{"match_labels": {"fields": "gt", "where": "!('x' in tags) && label in ['car']"}}]),
            1,
            Memory,
        ),
        (
            json!([{"match_labels": {"fields": "gt", "where": "exists(confidence) && label >= 'c'"}}, {"sort_by": "name"}]),
            2,
            Memory,
        ),
        (
            json!([{"match_labels": {"fields": "gt", "where": "confidence * 2 > 0.5"}}, {"limit": 2}]),
            0,
            Memory,
        ),
    ];
    let in_fiftyone: Vec<Value> = views
        .iter()
        .filter(|(_, _, agrees)| *agrees != Memory)
        .map(|(v, _, _)| v.clone())
        .collect();
    let out = m.fiftyone(
        &db,
        &script(),
        &["views", "varied", &Value::from(in_fiftyone).to_string()],
    );
    let fiftyone: Vec<Value> = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let mut fiftyone = fiftyone.into_iter();

    let uri = m.uri();
    let at = address(&uri, &db, "varied");
    let MongoStore { ds, live, .. } = store::open(&at, &repo(), None).expect("open");
    let mut non_empty = 0;
    for (v, pushed, agrees) in &views {
        let stages: Vec<ViewStage> = serde_json::from_value(v.clone()).unwrap();
        let selected = live.select(&stages, &ds).expect("select");
        assert_eq!(selected.as_ref().map_or(0, |s| s.stages), *pushed, "{v}");
        let on_server = view::apply_from(&stages, &ds, selected).unwrap().sample_ids;
        let mut in_memory = view::apply(&stages, &ds).unwrap().sample_ids;
        if *agrees == TiesCut {
            // Here the same samples are cut, in another order.
            let mut sorted = on_server.clone();
            sorted.sort();
            in_memory.sort();
            assert_eq!(sorted, in_memory, "{v}");
        } else {
            assert_eq!(on_server, in_memory, "{v}");
        }
        let ids: Vec<String> = on_server.iter().map(ToString::to_string).collect();
        if *agrees != Memory {
            let fo = fiftyone.next().unwrap();
            assert_eq!(fo["len"], ids.len(), "{v}");
            assert_eq!(fo["ids"], json!(ids), "{v}");
        }
        non_empty += usize::from(!ids.is_empty());
    }
    assert!(non_empty >= views.len() - 1, "only limit 0 selects nothing");
}

/// What a pushed-down view's selection is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agrees {
    /// FiftyOne's view and the in-memory evaluation: the same samples in the same order.
    Both,
    /// FiftyOne's exactly; the in-memory evaluation's samples in another order.
    TiesCut,
    /// The in-memory evaluation's (FiftyOne has not every stage: `take`, expressions).
    Memory,
}

/// Every sample document of `db`'s one dataset, as BSON bytes, in natural order.
fn sample_bytes(db: &str) -> Vec<(oid::ObjectId, Vec<u8>)> {
    let d = mongo::server().client().database(db);
    let ds = d
        .collection::<Document>("datasets")
        .find_one(doc! {})
        .run()
        .unwrap()
        .unwrap();
    let coll = ds.get_str("sample_collection_name").unwrap();
    d.collection::<Document>(coll)
        .find(doc! {})
        .run()
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            (
                s.get_object_id("_id").unwrap(),
                mongodb::bson::to_vec(&s).unwrap(),
            )
        })
        .collect()
}

/// A run reads only its working set: the samples its view selects, with only the fields it
/// uses. Values annoform cannot parse (a label whose box is not a box) in a field the run
/// does not use, and in the run's own field on samples outside its view, are never read: plan,
/// apply and the merge succeed, those documents stay byte for byte as they were, and the
/// merged samples keep their other fields. A second apply writes nothing. Reading the whole
/// dataset fails on the same values (what the run avoided).
#[test]
fn a_run_reads_only_its_samples_and_fields_and_leaves_the_rest_untouched() {
    let db = fiftyone_dataset("working_set", "quick");
    let m = mongo::server();
    let d = m.client().database(&db);
    let meta = d
        .collection::<Document>("datasets")
        .find_one(doc! {})
        .run()
        .unwrap()
        .unwrap();
    let samples = d.collection::<Document>(meta.get_str("sample_collection_name").unwrap());
    let bad = doc! {"_cls": "Detection", "_id": oid::ObjectId::new(), "label": "car", "bounding_box": "not a box"};
    samples
        .update_many(doc! {}, doc! {"$set": {"junk": bad.clone()}})
        .run()
        .unwrap();
    let ids: Vec<oid::ObjectId> = sample_bytes(&db).iter().map(|s| s.0).collect();
    assert_eq!(ids.len(), 5);
    let (view, rest) = ids.split_at(2);
    samples
        .update_many(
            doc! {"_id": {"$in": rest}},
            doc! {"$set": {"ground_truth.detections.0.bounding_box": "not a box"}},
        )
        .run()
        .unwrap();
    let before = sample_bytes(&db);

    let ws = review_workspace();
    let uri = m.uri();
    let annoform = |args: &[&str]| annoform_ok(&ws, &db, args);
    annoform(&["apply", "--auto-approve"]);
    assert_eq!(sample_bytes(&db), before, "uploading wrote nothing");

    // Annotators relabel the first box of each sample.
    let path = ws.path().join("backend.json");
    let mut backend: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    backend["clock"] = json!(backend["clock"].as_u64().unwrap_or(0) + 1);
    let clock = backend["clock"].clone();
    for p in backend["projects"].as_array_mut().unwrap() {
        for t in p["tasks"].as_array_mut().unwrap() {
            t["updated"] = clock.clone();
            t["status"] = json!("completed");
            t["complete"] = json!(true);
            for fields in t["annotations"].as_object_mut().unwrap().values_mut() {
                fields["ground_truth"][0]["label"]["label"] = json!("bike");
            }
        }
    }
    std::fs::write(&path, backend.to_string()).unwrap();
    annoform(&["apply", "--auto-approve"]);

    let after = sample_bytes(&db);
    for ((id, was), (_, now)) in before.iter().zip(&after) {
        if rest.contains(id) {
            assert_eq!(was, now, "sample {id} outside the view is untouched");
            continue;
        }
        let (was, now): (Document, Document) = (
            mongodb::bson::from_slice(was).unwrap(),
            mongodb::bson::from_slice(now).unwrap(),
        );
        let labels: Vec<&str> = now
            .get_document("ground_truth")
            .unwrap()
            .get_array("detections")
            .unwrap()
            .iter()
            .map(|l| l.as_document().unwrap().get_str("label").unwrap())
            .collect();
        assert_eq!(
            labels.iter().filter(|l| **l == "bike").count(),
            1,
            "sample {id} merged: {labels:?}"
        );
        // As bytes: NaN (in `kps`) is not equal to itself.
        let bytes = |v: Option<&Bson>| mongodb::bson::to_vec(&doc! {"v": v.cloned()}).unwrap();
        for (k, v) in &was {
            if !["ground_truth", "last_modified_at"].contains(&k.as_str()) {
                assert_eq!(bytes(now.get(k)), bytes(Some(v)), "sample {id}: `{k}` kept");
            }
        }
        assert_eq!(now.get_document("junk").unwrap(), &bad);
    }
    assert!(view.iter().all(|id| !rest.contains(id)));

    // Nothing left to do: nothing written.
    let out = annoform(&["apply", "--auto-approve"]);
    assert_eq!(sample_bytes(&db), after, "{out:?}");

    // What the run avoided: the whole dataset does not read.
    let at = address(&uri, &db, "quick");
    let Err(err) = store::open(&at, &repo(), None) else {
        panic!("the whole dataset has unreadable labels");
    };
    assert!(err.to_string().contains("bounding_box"), "{err}");
}

/// A video run reads only its samples' frames, with only its frame fields: the frames of a
/// video outside the view are not read, and a frame field no run uses is left out of the
/// frames read.
#[test]
fn a_video_run_reads_only_its_videos_frames_and_frame_fields() {
    let m = mongo::server();
    let db = traffic(m, "video_set");
    let uri = m.uri();
    let at = address(&uri, &db, "traffic");
    let open = |view: Vec<ViewStage>| {
        let mut set = WorkingSet::empty();
        set.views = vec![view];
        set.add_field(&FieldPath::frame("dets"));
        let MongoStore { ds, .. } = store::open(&at, &repo(), Some(&set)).expect("open");
        ds
    };

    let ds = open(Vec::new());
    assert_eq!(ds.len(), 1);
    let frames = ds.all_frames();
    assert_eq!(frames.len(), 3);
    for f in frames {
        let keys: Vec<&String> = f.as_object().keys().collect();
        assert!(f.get("dets").is_some(), "{keys:?}");
        assert!(
            f.get("weather").is_none() && f.get("frame_score").is_none(),
            "frame fields the run does not use are not read: {keys:?}"
        );
    }
    let Ok(whole) = store::open(&at, &repo(), None) else {
        panic!("the whole dataset opens");
    };
    assert!(
        whole
            .ds
            .all_frames()
            .iter()
            .all(|f| f.get("weather").is_some())
    );

    let ds = open(vec![ViewStage::Limit(0)]);
    assert_eq!(
        (ds.len(), ds.all_frames().len()),
        (0, 0),
        "no video, no frame"
    );
}
