//! The `postgres` state store against a real PostgreSQL (one server for this binary, a
//! database per test): the store contract, the lock, `state migrate` and the errors a new
//! user meets.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fs.rs"]
mod fs;
#[path = "support/postgres.rs"]
mod pg;

use annoform::state::postgres::{PostgresSettings, PostgresStore};
use annoform::state::{LocalStore, RunRecord, StateError, StateStore, UploadedLabel, new_lineage};
use cli::{Output, Workspace, repo};
use serde_json::json;
use std::time::{Duration, Instant};

fn settings(db: &str, schema: &str, workspace: &str) -> PostgresSettings {
    PostgresSettings {
        url: pg::server().admin_url(db),
        schema: schema.into(),
        workspace: workspace.into(),
    }
}

fn open(db: &str, schema: &str, workspace: &str) -> PostgresStore {
    PostgresStore::open(&settings(db, schema, workspace)).expect("open store")
}

fn record(dataset: &str, key: &str) -> RunRecord {
    let mut r = RunRecord::new(
        dataset,
        key,
        "labelstudio",
        "2026-11-22T04:00:00Z",
        new_lineage(),
    );
    r.backend_config
        .insert("url".into(), json!("http://127.0.0.1:8080"));
    r.samples = vec!["s2".into(), "s1".into()];
    // Keys out of sorted order: a store that reorders them (jsonb) would show here.
    for sample in ["s2", "s1"] {
        r.uploaded.entry("zeta".into()).or_default().insert(
            sample.into(),
            vec![UploadedLabel {
                id: "65f0c0ffee0000000000000a".parse().unwrap(),
                digest: "000102030405060708090a0b0c0d0e0f".parse().unwrap(),
            }],
        );
    }
    r.id_map
        .insert("9".into(), "65f0c0ffee0000000000000a".into());
    r.id_map
        .insert("10".into(), "65f0c0ffee0000000000000b".into());
    r
}

#[test]
fn records_keep_serials_and_refuse_stale_writes() {
    let db = pg::server().database("records");
    let store = open(&db, "annoform", "team");
    let mut r = record("ds", "run");
    store.put(&mut r).expect("create");
    assert_eq!(r.serial, 1);
    assert_eq!(store.get("ds", "run").unwrap().as_ref(), Some(&r));
    let mut stale = r.clone();
    store.put(&mut r).expect("update");
    assert_eq!(r.serial, 2);
    let err = store.put(&mut stale).expect_err("stale");
    assert!(
        matches!(
            err,
            StateError::Conflict {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = store.put(&mut record("ds", "run")).expect_err("exists");
    assert!(
        matches!(err, StateError::Conflict { found: 2, .. }),
        "{err}"
    );

    store.put(&mut record("ds", "other")).unwrap();
    assert_eq!(
        store.list().unwrap(),
        vec![("ds".into(), "other".into()), ("ds".into(), "run".into())]
    );
    let err = store.rename("ds", "run", "other").expect_err("clobber");
    assert!(matches!(err, StateError::Exists { .. }), "{err}");
    store.rename("ds", "run", "renamed").unwrap();
    let renamed = store.get("ds", "renamed").unwrap().unwrap();
    assert_eq!((renamed.serial, &renamed.lineage), (3, &r.lineage));
    assert!(store.delete("ds", "renamed").unwrap());
    assert!(!store.delete("ds", "renamed").unwrap());

    // Another workspace of the same database sees none of it.
    assert_eq!(open(&db, "annoform", "laptop").list().unwrap(), vec![]);
}

#[test]
fn the_lock_waits_then_names_its_holder_and_is_per_schema_and_workspace() {
    let db = pg::server().database("locks");
    let store = open(&db, "annoform", "team");
    let held = store.lock("apply", Duration::ZERO).expect("first");
    assert_eq!(store.holder().unwrap().as_ref(), Some(held.holder()));

    let started = Instant::now();
    let err = match store.lock("apply", Duration::from_millis(500)) {
        Err(e) => e,
        Ok(_) => panic!("second lock taken"),
    };
    assert!(started.elapsed() >= Duration::from_millis(500), "waited");
    let msg = err.to_string();
    for part in [
        format!("pid {}", std::process::id()),
        "`annoform apply`".to_string(),
        held.holder().since.clone(),
        "workspace `team`".to_string(),
    ] {
        assert!(msg.contains(&part), "{part:?} missing from: {msg}");
    }
    // Neither another workspace nor the same workspace in another schema shares the lock
    // (the collision of hashicorp/terraform#33217).
    drop(
        open(&db, "annoform", "laptop")
            .lock("apply", Duration::ZERO)
            .expect("other workspace"),
    );
    drop(
        open(&db, "other", "team")
            .lock("apply", Duration::ZERO)
            .expect("other schema"),
    );
    drop(held);
    assert_eq!(store.holder().unwrap(), None);
    drop(store.lock("apply", Duration::ZERO).expect("released"));
}

/// A workspace whose state is in `db` (as workspace `team`), with the test backend.
fn workspace(db: &str, url: &str) -> Workspace {
    let ws = Workspace::empty()
        .env("ANNOFORM_NOW", "2026-01-01T00:00:00.000Z")
        .env("TEAM_DB", url);
    fs::copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
        &ws.path().join("datasets/quickstart"),
    );
    ws.write(
        "annoform.toml",
        &format!(
            "default_backend = \"fake\"\n[state]\nstore = \"postgres\"\nurl = \"${{env:TEAM_DB}}\"\nworkspace = \"team-{db}\"\n[datasets.quickstart]\npath = \"datasets/quickstart\"\n[backends.fake]\ncommand = [\"{}\", \"{}\"]\n",
            fs::test_backend().display(),
            ws.path().join("backend.json").display()
        ),
    );
    ws.write(
        "manifests/run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nlabel_field: ground_truth\n",
    );
    ws
}

fn ok(out: Output) -> Output {
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out
}

#[test]
fn migrate_round_trips_records_byte_for_byte() {
    let db = pg::server().database("migrate");
    let ws = workspace(&db, &pg::server().admin_url(&db));
    let local = LocalStore::new(ws.path().join(".annoform/state"));
    for key in ["a", "b"] {
        local.put(&mut record("quickstart", key)).unwrap();
    }
    let files = ["quickstart/a.json", "quickstart/b.json"];
    let read = |f: &str| std::fs::read(local.root().join(f)).unwrap();
    let before: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();

    let out = ok(ws.run(&["state", "migrate", "--to", "postgres"]));
    assert!(out.stdout.contains("Copied 2 record(s)"), "{}", out.stdout);
    std::fs::remove_dir_all(local.root()).unwrap();
    ok(ws.run(&["state", "migrate", "--to", "local"]));
    let after: Vec<Vec<u8>> = files.iter().map(|f| read(f)).collect();
    assert_eq!(before, after, "records changed on the way");

    // Copying again is a no-op; a target holding other records is refused untouched.
    assert!(
        ok(ws.run(&["state", "migrate", "--to", "postgres"]))
            .stdout
            .contains("Copied 0")
    );
    let mut changed = local.get("quickstart", "a").unwrap().unwrap();
    local.put(&mut changed).unwrap();
    let out = ws.run(&["state", "migrate", "--to", "postgres"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("quickstart/a"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was copied"), "{}", out.stderr);
}

#[test]
fn a_killed_apply_leaves_no_lock_behind() {
    let db = pg::server().database("kill");
    let ws = workspace(&db, &pg::server().admin_url(&db));
    let mut args = vec![
        "-C".to_string(),
        ws.path().display().to_string(),
        "apply".into(),
        "--auto-approve".into(),
    ];
    let mut apply = std::process::Command::new(env!("CARGO_BIN_EXE_annoform"));
    apply
        .env_clear()
        .env("HOME", ws.path().join("home"))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TEST_BACKEND_LATENCY_MS", "3000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in &ws.env {
        apply.env(k, v);
    }
    let mut child = apply.args(args.drain(..)).spawn().expect("start apply");
    let mut admin = pg::server().admin(&db);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = admin
            .query_opt("SELECT pid FROM annoform.annoform_locks", &[])
            .ok()
            .flatten()
            .is_some();
        if held {
            break;
        }
        assert!(Instant::now() < deadline, "apply never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().expect("kill -9");
    child.wait().unwrap();
    // The server frees the dead session's lock: no `unlock --force` needed.
    ok(ws.run(&["apply", "--auto-approve", "--lock-timeout", "10"]));
    let plan = ok(ws.run(&["plan", "--json"]));
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["changes"], json!(false), "{plan}");
}

/// A new user's mistakes: each one error naming what to fix, and never the password.
#[test]
fn a_new_users_mistakes_get_one_clear_error_each() {
    let server = pg::server();
    let db = server.database("newuser");
    let secret = "s3cret-Pw-91";
    let cases = [
        (
            server.url(pg::ADMIN, secret, &db),
            vec![
                "refused the credentials of user `admin`",
                "fix the user name or password",
            ],
        ),
        (
            format!(
                "postgres://admin:{secret}@127.0.0.1:{}/{db}",
                pg::free_port()
            ),
            vec![
                "cannot reach PostgreSQL at 127.0.0.1:",
                "check the host and port",
            ],
        ),
        (
            {
                let role = format!("newbie_{db}");
                server.role(&role, secret);
                server.url(&role, secret, &db)
            },
            vec![
                "may not create annoform's state tables",
                "GRANT CREATE ON DATABASE",
            ],
        ),
    ];
    for (url, expected) in cases {
        let ws = workspace(&db, &url);
        let out = ws.run(&["plan"]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        for part in expected {
            assert!(
                out.stderr.contains(part),
                "{part:?} missing from:\n{}",
                out.stderr
            );
        }
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "the password was printed:\n{}",
            out.stderr
        );
    }
}

/// Two clones of one repository (as two laptops) sharing one database and one backend.
fn two_clones(db: &str) -> (Workspace, Workspace) {
    let url = pg::server().admin_url(db);
    let a = workspace(db, &url);
    let b = workspace(db, &url);
    // One backend for both, as two laptops share one annotation server.
    let shared = a.path().join("backend.json").display().to_string();
    for ws in [&a, &b] {
        let toml = std::fs::read_to_string(ws.path().join("annoform.toml")).unwrap();
        let own = ws.path().join("backend.json").display().to_string();
        ws.write("annoform.toml", &toml.replace(&own, &shared));
    }
    (a, b)
}

#[test]
fn two_clones_share_one_state() {
    let db = pg::server().database("team");
    let (a, b) = two_clones(&db);
    ok(a.run(&["apply", "--auto-approve"]));
    let projects = || {
        let text = std::fs::read_to_string(a.path().join("backend.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["projects"].clone()
    };
    let created = projects();
    let out = ok(b.run(&["plan", "--json"]));
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["summary"]["create"], json!(0), "{plan}");
    // The other clone's apply creates nothing a second time.
    ok(b.run(&["apply", "--auto-approve"]));
    assert_eq!(projects(), created, "no second project or task");

    // A plan file made in one clone is stale once the other has applied a change.
    ok(a.run(&["plan", "--out", "a.plan"]));
    let store = open(&db, "annoform", &format!("team-{db}"));
    let mut r = store.get("quickstart", "review").unwrap().unwrap();
    store.put(&mut r).unwrap();
    let out = a.run(&["apply", "a.plan"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("stale"), "{}", out.stderr);

    // While one clone holds the lock, the other waits, then fails naming it.
    let held = store.lock("apply", Duration::ZERO).unwrap();
    let out = b.run(&["apply", "--auto-approve", "--lock-timeout", "1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let holder = held.holder().to_string();
    assert!(
        out.stderr
            .contains(&format!("the workspace is locked by {holder}")),
        "{}",
        out.stderr
    );
    // It said once, while waiting, whom it waits for.
    let note = format!("waiting for the state lock held by {holder}…");
    assert_eq!(
        out.stderr.lines().filter(|l| *l == note).count(),
        1,
        "{}",
        out.stderr
    );
}

/// TLS to a server whose certificate a private CA signed: refused until the URL names the
/// CA (`sslrootcert`), then used; the password never printed.
#[test]
fn tls_with_a_private_ca_is_trusted_through_sslrootcert() {
    let server = pg::tls_server();
    let db = server.database("tls");
    let ca = server.ca.as_ref().unwrap().display().to_string();
    let base = server.admin_url(&db);
    let cases = [
        (
            format!("{base}?sslmode=require"),
            Some("the server's TLS certificate is not trusted"),
        ),
        (
            format!("{base}?sslmode=require&sslrootcert={ca}.missing"),
            Some(".missing): cannot read it"),
        ),
        (format!("{base}?sslmode=verify-full&sslrootcert={ca}"), None),
    ];
    for (url, error) in cases {
        let out = workspace(&db, &url).run(&["plan"]);
        assert!(
            !out.stderr.contains(pg::ADMIN_PASSWORD) && !out.stdout.contains(pg::ADMIN_PASSWORD),
            "the password was printed:\n{}",
            out.stderr
        );
        match error {
            Some(part) => {
                assert_eq!(out.code, 1, "{url}: {}", out.stderr);
                assert!(
                    out.stderr.contains(part),
                    "{part:?} missing:\n{}",
                    out.stderr
                );
                assert!(out.stderr.contains("sslrootcert"), "{}", out.stderr);
            }
            None => assert_eq!(out.code, 0, "{}", out.stderr),
        }
    }
    // The store's sessions are encrypted.
    let store = PostgresStore::open(&PostgresSettings {
        url: format!("{base}?sslmode=require&sslrootcert={ca}"),
        schema: "annoform".into(),
        workspace: "tls".into(),
    })
    .expect("open over TLS");
    let _held = store.lock("apply", Duration::ZERO).unwrap();
    let row = server
        .admin(&db)
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_ssl s
             JOIN pg_stat_activity a ON a.pid = s.pid
             WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    let (all, encrypted): (i64, i64) = (row.get(0), row.get(1));
    assert!(all >= 2, "the store's and the lock's sessions: {all}");
    assert_eq!(encrypted, all, "every session of the store uses TLS");
}
