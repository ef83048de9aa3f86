//! Team state against a real Label Studio: two clones of one repository (two laptops) keep
//! their run records and lock in one PostgreSQL database (`[state] store = "postgres"`) and
//! share one Label Studio. What one applies the other sees: its plan creates nothing, its
//! apply duplicates no project or task, a plan file made before the other's change is
//! refused as stale, and a held lock makes the other wait, saying so once, then fail
//! naming the holder.

use super::pg;
use super::*;
use annoform::state::StateStore;
use annoform::state::postgres::{PostgresSettings, PostgresStore};
use std::process::Output;
use std::time::Duration;

/// The workspace name both clones keep their state under.
const TEAM: &str = "team";

/// A clone of the repository on this laptop: the fixture, Label Studio, the team database.
fn clone(ls: &LabelStudio) -> Ws {
    let dir = tempfile::tempdir().unwrap();
    Ws::new(
        dir,
        ls,
        &format!(
            "[state]\nstore = \"postgres\"\nurl = \"${{env:TEAM_DB}}\"\nworkspace = \"{TEAM}\"\n"
        ),
    )
}

/// `annoform args` in `ws` with the team database's URL in the environment.
fn team_command(ws: &Ws, db: &str, args: &[&str]) -> Command {
    let mut c = ws.command(args);
    c.env("TEAM_DB", pg::server().admin_url(db));
    c
}

fn team_run(ws: &Ws, db: &str, args: &[&str]) -> Output {
    team_command(ws, db, args).output().expect("run annoform")
}

/// Its stdout; panics unless it exits 0.
fn team_ok(ws: &Ws, db: &str, args: &[&str]) -> String {
    let out = team_run(ws, db, args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "annoform {args:?} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stderr.contains(pg::ADMIN_PASSWORD), "the password leaked");
    stdout
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The team's store, as a third party (the test) sees it.
fn store(db: &str) -> PostgresStore {
    PostgresStore::open(&PostgresSettings {
        url: pg::server().admin_url(db),
        schema: "annoform".into(),
        workspace: TEAM.into(),
    })
    .expect("open the team store")
}

/// How many times `stderr` says it waits for `holder`.
fn waiting_notes(stderr: &str, holder: &annoform::state::Holder) -> usize {
    let note = format!("waiting for the state lock held by {holder}…");
    stderr.lines().filter(|l| *l == note).count()
}

#[test]
fn two_clones_share_one_state_and_one_label_studio() {
    let media = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(media.path());
    let db = pg::server().database("lsteam");
    let (a, b) = (clone(&ls), clone(&ls));
    let team = store(&db);

    // Both apply at once while a third party holds the lock: both wait (saying so once,
    // naming it), then one creates the project and the other finds it made.
    let held = team.lock("apply", Duration::ZERO).expect("take the lock");
    let holder = held.holder().clone();
    let (tx, waiting) = std::sync::mpsc::channel();
    let start = |ws: &Ws| {
        let mut child = team_command(
            ws,
            &db,
            &["apply", "--auto-approve", "--lock-timeout", "300"],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start apply");
        // Its stderr, read as it comes: the first waiting note is passed on at once.
        let stderr = child.stderr.take().unwrap();
        let tx = tx.clone();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let line = line.unwrap_or_default();
                if line.starts_with("waiting for the state lock") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        (child, reader)
    };
    let applies = [("a", start(&a)), ("b", start(&b))];
    // Let go once both wait.
    for _ in 0..2 {
        waiting
            .recv_timeout(Duration::from_secs(120))
            .expect("both applies wait for the lock");
    }
    drop(held);
    for (name, (mut child, reader)) in applies {
        let status = child.wait().unwrap();
        let stderr = reader.join().unwrap();
        assert!(status.success(), "apply in {name} failed:\n{stderr}");
        assert_eq!(waiting_notes(&stderr, &holder), 1, "{name}:\n{stderr}");
        assert!(!stderr.contains(pg::ADMIN_PASSWORD), "the password leaked");
    }
    let pid = ls.project(PROJECT).expect("project created");
    let projects = ls.get("/api/projects?page_size=100")["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["title"] == PROJECT)
        .count();
    assert_eq!(projects, 1, "one project, not one per clone");
    let tasks = ls.tasks(pid).len();
    assert_eq!(tasks, 5, "each sample's task once");

    // Either clone's plan now creates nothing, and applying again duplicates nothing.
    for ws in [&a, &b] {
        let plan: Value = serde_json::from_str(&team_ok(ws, &db, &["plan", "--json"])).unwrap();
        assert_eq!(plan["summary"]["create"], json!(0), "{plan:#}");
        assert!(run_actions(&plan).is_empty(), "{plan:#}");
    }
    team_ok(&b, &db, &["apply", "--auto-approve"]);
    assert_eq!(ls.tasks(pid).len(), 5, "no task duplicated");

    // An annotator relabels a box; `a` plans the merge, `b` applies it first: `a`'s plan file
    // is stale.
    let task = &ls.tasks(pid)[0];
    let mut result: Vec<Value> = task["predictions"][0]["result"].as_array().unwrap().clone();
    let box_ = result
        .iter_mut()
        .find(|r| r["type"] == "rectanglelabels")
        .expect("a box");
    box_["value"]["rectanglelabels"] = json!(["bike"]);
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
    );
    team_ok(&a, &db, &["plan", "--out", "a.plan"]);
    team_ok(&b, &db, &["apply", "--auto-approve"]);
    let out = team_run(&a, &db, &["apply", "a.plan"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stale"), "{stderr}");
    assert_eq!(ls.tasks(pid).len(), 5);

    // A lock held past the other's timeout: it waits, then fails naming the holder.
    let held = team.lock("apply", Duration::ZERO).expect("take the lock");
    let out = team_run(&b, &db, &["apply", "--auto-approve", "--lock-timeout", "1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(waiting_notes(&stderr, held.holder()), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("the workspace is locked by {}", held.holder())),
        "{stderr}"
    );
}
