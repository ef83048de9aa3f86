//! The local state store and the workspace lock, on a real file system.

use annoform::state::{
    Holder, LocalStore, Lock, RECORD_VERSION, RunRecord, StateError, UploadedLabel, force_unlock,
    new_lineage,
};
use serde_json::json;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

const NOW: &str = "2026-11-22T04:00:00Z";

fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path().join(".annoform/state"));
    (dir, store)
}

fn record(dataset: &str, key: &str) -> RunRecord {
    let mut r = RunRecord::new(dataset, key, "labelstudio", NOW, new_lineage());
    r.manifest_digest = "sha256:abc".into();
    r.backend_config
        .insert("url".into(), json!("http://127.0.0.1:8080"));
    r.samples = vec!["s1".into(), "s2".into()];
    r.uploaded.entry("ground_truth".into()).or_default().insert(
        "s1".into(),
        vec![UploadedLabel {
            id: "65f0c0ffee0000000000000a".parse().unwrap(),
            digest: "000102030405060708090a0b0c0d0e0f".parse().unwrap(),
        }],
    );
    r
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trip_preserves_the_record() {
    let (_dir, store) = store();
    let mut r = record("quickstart", "fix_gt");
    store.put(&mut r).expect("put");
    let back = store
        .get("quickstart", "fix_gt")
        .expect("get")
        .expect("exists");
    assert_eq!(back, r);
    assert_eq!(store.get("quickstart", "other").expect("get"), None);
    assert_eq!(store.get("nodataset", "fix_gt").expect("get"), None);
}

#[test]
fn files_are_pretty_json_with_stable_order_and_newline() {
    let (_dir, store) = store();
    let mut r = record("quickstart", "fix_gt");
    store.put(&mut r).expect("put");
    let path = store.root().join("quickstart/fix_gt.json");
    let text = fs::read_to_string(&path).expect("file at <root>/<dataset>/<key>.json");
    assert!(text.ends_with("}\n"), "trailing newline");
    assert!(text.starts_with("{\n  \"format_version\": 1,\n  \"dataset\": \"quickstart\","));
    // Saving the same content again writes byte-identical JSON apart from the serial.
    let mut again = r.clone();
    store.put(&mut again).expect("put");
    let text2 = fs::read_to_string(&path).expect("read");
    assert_eq!(
        text.replace("\"serial\": 1", "\"serial\": 2"),
        text2,
        "stable key order"
    );
}

#[test]
fn serial_bumps_on_every_put() {
    let (_dir, store) = store();
    let mut r = record("ds", "run");
    assert_eq!(r.serial, 0);
    store.put(&mut r).expect("first put");
    assert_eq!(r.serial, 1);
    store.put(&mut r).expect("second put");
    assert_eq!(r.serial, 2);
    let on_disk = store.get("ds", "run").expect("get").expect("exists");
    assert_eq!(on_disk.serial, 2);
    assert_eq!(on_disk.lineage, r.lineage);
}

#[test]
fn stale_serial_is_a_conflict() {
    let (_dir, store) = store();
    let mut r = record("ds", "run");
    store.put(&mut r).expect("put");
    let mut stale = r.clone();
    store.put(&mut r).expect("put"); // disk is at 2 now
    stale.samples.push("s3".into());
    let err = store.put(&mut stale).expect_err("stale write");
    match &err {
        StateError::Conflict {
            expected, found, ..
        } => assert_eq!((*expected, *found), (1, 2)),
        other => panic!("expected a conflict, got {other}"),
    }
    assert!(
        err.to_string().contains("expected serial 1, found 2"),
        "{err}"
    );
    // The refused write changed neither the record nor the file.
    assert_eq!(stale.serial, 1);
    let on_disk = store.get("ds", "run").expect("get").expect("exists");
    assert_eq!(on_disk.samples.len(), 2);
}

#[test]
fn creating_an_existing_record_is_a_conflict() {
    let (_dir, store) = store();
    store.put(&mut record("ds", "run")).expect("put");
    let err = store
        .put(&mut record("ds", "run"))
        .expect_err("second create");
    assert!(
        matches!(
            err,
            StateError::Conflict {
                expected: 0,
                found: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn atomic_replace_leaves_no_temporary_files() {
    let (_dir, store) = store();
    let mut r = record("ds", "run");
    for _ in 0..5 {
        store.put(&mut r).expect("put");
    }
    let mut other = record("ds", "other");
    store.put(&mut other).expect("put");
    assert_eq!(
        files_in(&store.root().join("ds")),
        vec!["other.json", "run.json"]
    );
}

#[test]
fn corrupt_file_error_names_the_file() {
    let (_dir, store) = store();
    let path = store.root().join("ds/run.json");
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");

    fs::write(&path, "{ not json").expect("write");
    let err = store.get("ds", "run").expect_err("corrupt").to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("corrupt state record"), "{err}");

    fs::write(&path, r#"{"format_version": 1, "dataset": "ds"}"#).expect("write");
    let err = store
        .get("ds", "run")
        .expect_err("missing fields")
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("missing field"), "{err}");

    fs::write(&path, r#"{"format_version": 99}"#).expect("write");
    let err = store.get("ds", "run").expect_err("unknown version");
    assert!(
        matches!(err, StateError::UnknownVersion { found: 99, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("reads version {RECORD_VERSION}")),
        "{msg}"
    );

    // A corrupt file also blocks a put rather than being silently overwritten.
    let err = store
        .put(&mut record("ds", "run"))
        .expect_err("put over corrupt");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_record_filed_under_the_wrong_key_is_corrupt() {
    let (_dir, store) = store();
    store.put(&mut record("ds", "a")).expect("put");
    fs::copy(
        store.root().join("ds/a.json"),
        store.root().join("ds/b.json"),
    )
    .expect("copy");
    let err = store.get("ds", "b").expect_err("misfiled").to_string();
    assert!(err.contains("b.json") && err.contains("ds/a"), "{err}");
}

#[test]
fn list_is_sorted_and_skips_foreign_files() {
    let (_dir, store) = store();
    assert_eq!(store.list().expect("empty list"), vec![]);
    for (d, k) in [("zoo", "b"), ("ant", "z"), ("zoo", "a")] {
        store.put(&mut record(d, k)).expect("put");
    }
    fs::write(store.root().join("zoo/notes.txt"), "x").expect("write");
    fs::write(store.root().join("zoo/.c.json.tmp-1"), "x").expect("write");
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        store.list().expect("list"),
        pairs(&[("ant", "z"), ("zoo", "a"), ("zoo", "b")])
    );
}

#[test]
fn rename_moves_the_record_and_refuses_to_clobber() {
    let (_dir, store) = store();
    let mut a = record("ds", "old");
    store.put(&mut a).expect("put");
    store.put(&mut record("ds", "taken")).expect("put");

    let err = store
        .rename("ds", "old", "taken")
        .expect_err("target exists");
    assert!(matches!(err, StateError::Exists { .. }), "{err}");
    assert!(
        store.get("ds", "old").expect("get").is_some(),
        "source kept"
    );

    store.rename("ds", "old", "new").expect("rename");
    assert_eq!(store.get("ds", "old").expect("get"), None);
    let moved = store.get("ds", "new").expect("get").expect("exists");
    assert_eq!(moved.key, "new");
    assert_eq!(moved.lineage, a.lineage);
    assert_eq!(moved.serial, a.serial + 1);
    assert_eq!(
        files_in(&store.root().join("ds")),
        vec!["new.json", "taken.json"]
    );

    let err = store.rename("ds", "missing", "x").expect_err("no source");
    assert!(matches!(err, StateError::NotFound { .. }), "{err}");
}

#[test]
fn delete_forgets_the_record() {
    let (_dir, store) = store();
    store.put(&mut record("ds", "run")).expect("put");
    assert!(store.delete("ds", "run").expect("delete"));
    assert_eq!(store.get("ds", "run").expect("get"), None);
    assert!(!store.delete("ds", "run").expect("second delete"));
    assert_eq!(store.list().expect("list"), vec![]);
    // Recreating after a delete starts a new history.
    let mut again = record("ds", "run");
    store.put(&mut again).expect("recreate");
    assert_eq!(again.serial, 1);
}

#[test]
fn secrets_are_refused_and_nothing_is_written() {
    let (_dir, store) = store();
    let mut r = record("ds", "run");
    r.backend_config.insert("api_key".into(), json!("hunter2"));
    let err = store.put(&mut r).expect_err("secret");
    let msg = err.to_string();
    assert!(matches!(err, StateError::Secret { .. }), "{msg}");
    assert!(msg.contains("backend_config.api_key"), "{msg}");
    assert!(
        !msg.contains("hunter2"),
        "the secret itself must not be echoed: {msg}"
    );

    let mut r = record("ds", "run");
    r.backend_config
        .insert("project_name".into(), json!("${env:CVAT_PASSWORD}"));
    assert!(matches!(store.put(&mut r), Err(StateError::Secret { .. })));
    assert_eq!(store.list().expect("list"), vec![]);
}

#[test]
fn held_lock_makes_a_second_acquire_fail_naming_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".annoform/lock");
    let guard = Lock::acquire(&path, "apply", Duration::from_millis(300)).expect("first");
    assert!(guard.took_over().is_none());

    let started = Instant::now();
    let err = Lock::acquire(&path, "plan", Duration::from_millis(300)).expect_err("held");
    assert!(started.elapsed() >= Duration::from_millis(300), "waited");
    let StateError::Locked { holder, .. } = &err else {
        panic!("expected Locked, got {err}");
    };
    assert_eq!(holder.as_ref(), Some(guard.holder()));
    let msg = err.to_string();
    for part in [
        format!("pid {}", std::process::id()),
        format!("host {}", guard.holder().host),
        "`annoform apply`".to_string(),
        guard.holder().since.clone(),
        "annoform state unlock --force".to_string(),
    ] {
        assert!(msg.contains(&part), "{part:?} missing from: {msg}");
    }
}

#[test]
fn lock_file_holds_holder_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lock");
    let guard = Lock::acquire(&path, "apply", Duration::ZERO).expect("acquire");
    let on_disk: Holder =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("holder json");
    assert_eq!(&on_disk, guard.holder());
    assert_eq!(on_disk.pid, std::process::id());
    assert_eq!(on_disk.command, "apply");
}

#[test]
fn waiting_acquire_gets_the_lock_once_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lock");
    let guard = Lock::acquire(&path, "apply", Duration::ZERO).expect("first");
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        drop(guard);
    });
    let second = Lock::acquire(&path, "plan", Duration::from_secs(5)).expect("after release");
    assert_eq!(second.holder().command, "plan");
    releaser.join().expect("thread");
}

#[test]
fn stale_lock_of_a_dead_process_is_taken_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lock");
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let dead_pid = child.id();
    child.wait().expect("wait");
    let dead = Holder {
        pid: dead_pid,
        ..Holder::current("apply")
    };
    fs::write(&path, serde_json::to_string(&dead).expect("json")).expect("write");
    assert!(dead.is_stale());

    let started = Instant::now();
    let guard = Lock::acquire(&path, "plan", Duration::from_secs(5)).expect("take over");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no waiting on a dead holder"
    );
    assert_eq!(guard.took_over(), Some(&dead));
    assert_eq!(
        Lock::holder(&path).expect("holder").as_ref(),
        Some(guard.holder())
    );
    assert_eq!(
        files_in(dir.path()),
        vec!["lock"],
        "no stale copy left behind"
    );
}

#[test]
fn a_lock_from_another_host_is_never_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lock");
    let remote = Holder {
        pid: u32::MAX - 1,
        host: "some-other-machine".into(),
        ..Holder::current("apply")
    };
    fs::write(&path, serde_json::to_string(&remote).expect("json")).expect("write");
    let err = Lock::acquire(&path, "plan", Duration::from_millis(100)).expect_err("held");
    assert!(err.to_string().contains("some-other-machine"), "{err}");
}

#[test]
fn dropping_the_guard_releases_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lock");
    {
        let _guard = Lock::acquire(&path, "apply", Duration::ZERO).expect("acquire");
        assert!(path.exists());
    }
    assert!(!path.exists());
    Lock::acquire(&path, "apply", Duration::ZERO).expect("free again");
}

#[test]
fn force_unlock_removes_and_reports_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lock");
    assert_eq!(force_unlock(&path).expect("nothing to unlock"), None);

    let guard = Lock::acquire(&path, "apply", Duration::ZERO).expect("acquire");
    let held = force_unlock(&path).expect("unlock");
    assert_eq!(held.as_ref(), Some(guard.holder()));
    assert!(!path.exists());

    // Someone else locks after the forced unlock; the old guard must not release their lock.
    let other = Lock::acquire(&path, "plan", Duration::ZERO).expect("reacquire");
    drop(guard);
    assert!(path.exists(), "old guard left the new holder's lock alone");
    drop(other);
    assert!(!path.exists());
}

mod round_trip {
    use super::*;
    use annoform::state::{BackendObject, TaskRecord};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever a record holds (any text, including quotes, newlines and non-ASCII),
        /// the file gives it back exactly.
        #[test]
        fn any_record_survives_put_and_get(
            samples in proptest::collection::vec("[0-9a-f]{24}", 0..6),
            labels in proptest::collection::vec(("[0-9a-f]{24}|value", "[0-9a-f]{32}"), 0..6),
            id_map in proptest::collection::btree_map("[0-9]{1,6}", "[0-9a-f]{24}", 0..6),
            status in proptest::option::of("\\PC{0,16}"),
            project_name in "\\PC{0,20}",
            task_size in proptest::option::of(0u64..1_000_000),
        ) {
            let (_dir, store) = store();
            let mut r = record("ds", "run");
            r.samples = samples.clone();
            for (sample, (id, digest)) in samples.iter().zip(&labels) {
                r.uploaded.entry("f".into()).or_default().insert(
                    sample.clone(),
                    vec![UploadedLabel { id: id.parse().unwrap(), digest: digest.parse().unwrap() }],
                );
            }
            r.id_map = id_map.into_iter().collect();
            r.project = Some(BackendObject { id: "1".into(), name: project_name.replace('$', "") });
            r.tasks = vec![TaskRecord {
                id: "7".into(),
                name: "run-batch-0".into(),
                batch: 0,
                samples,
                status,
                notes: None,
            }];
            if let Some(n) = task_size {
                r.backend_config.insert("task_size".into(), json!(n));
            }
            store.put(&mut r).expect("put");
            let back = store.get("ds", "run").expect("get").expect("exists");
            prop_assert_eq!(back, r);
        }
    }
}

#[test]
fn temporary_files_of_killed_writers_are_removed_on_write() {
    let (_dir, store) = store();
    store.put(&mut record("ds", "a")).expect("put");
    // Above Linux's largest process id (2^22): no process has it.
    let dead = 4_194_400;
    let stale = store
        .root()
        .join(format!("ds/.a.json.annoform-{dead}-0011.tmp"));
    let live = store.root().join("ds/.a.json.annoform-1-0011.tmp");
    fs::write(&stale, "{").expect("write");
    fs::write(&live, "{").expect("write");
    store.put(&mut record("ds", "b")).expect("put");
    assert!(!stale.exists(), "a dead writer's file is removed");
    assert!(live.exists(), "a running writer's file is kept");
}
