//! The kill suite for video runs: `annoform apply` of two videos (one task each) killed with
//! SIGKILL at every request that changes the server (held by the fault proxy before it is
//! forwarded, and after, with its answer kept back), then run again cleanly. After each: one
//! task per video, each with its four tracks once, the tracks' ids in the run record, an
//! empty plan, and the dataset as an uninterrupted run leaves it.

use super::faultproxy::FaultProxy;
use super::faults::via;
use super::faultsuite::{Tally, kill_points};
use super::video_run::{RUN, workspace};
use super::*;
use std::time::Instant;

const VIDEOS: u64 = 2;

fn scenario(cvat: &Cvat, proxy: &FaultProxy, n: usize) -> (Ws, String) {
    let ws = workspace(cvat, VIDEOS);
    via(&ws, cvat, &proxy.url);
    let key = format!("v{n}");
    let run = RUN.replace("key: tracks", &format!("key: {key}"));
    ws.manifest("run.yaml", &run);
    (ws, format!("annoform/ds/{key}"))
}

/// What is wrong with the run's tasks in CVAT and their record.
fn faults(cvat: &Cvat, ws: &Ws, project: &str, key: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    let Some(pid) = cvat.project(project) else {
        return vec![format!("no project {project}")];
    };
    let tasks = cvat.tasks(pid);
    let mut names: Vec<&str> = tasks.iter().filter_map(|t| t["name"].as_str()).collect();
    names.sort();
    names.dedup();
    if tasks.len() != VIDEOS as usize || names.len() != VIDEOS as usize {
        wrong.push(format!(
            "tasks {names:?} ({}), expected {VIDEOS}",
            tasks.len()
        ));
    }
    for t in &tasks {
        let held = cvat.annotations(t["id"].as_u64().unwrap());
        let tracks = held["tracks"].as_array().map_or(0, Vec::len);
        let shapes = held["shapes"].as_array().map_or(0, Vec::len);
        if (tracks, shapes) != (4, 0) {
            wrong.push(format!(
                "task {} holds {tracks} tracks, {shapes} shapes",
                t["name"]
            ));
        }
    }
    let record = ws.record(key);
    for t in record["tasks"].as_array().unwrap() {
        let recorded = t["notes"]["tracks"].as_array().map_or(0, Vec::len);
        if recorded != 4 {
            wrong.push(format!(
                "the record keeps {recorded} tracks of task {}",
                t["name"]
            ));
        }
    }
    wrong
}

#[test]
fn video_killed_at_every_step_of_the_create_then_rerun() {
    let t0 = Instant::now();
    let cvat = Cvat::start();
    let proxy = FaultProxy::start(cvat.url());
    let (reference, _) = scenario(&cvat, &proxy, 0);
    let logs = vec![proxy.log_of(|| {
        reference.apply();
    })];
    let frames = |ws: &Ws| std::fs::read(ws.path().join("datasets/ds/frames.json")).unwrap();
    let expected = frames(&reference);
    let changes = |m: &str, t: &str| m != "GET" && !t.starts_with("/api/auth/");
    let points = kill_points(&logs, changes);
    assert!(
        points.len() >= 2 * VIDEOS as usize,
        "a task and its labels per video: {}",
        points.len()
    );
    let mut wrong: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    for (n, point) in points.iter().enumerate() {
        let (ws, project) = scenario(&cvat, &proxy, n + 1);
        let at = point.describe();
        if let Err(e) = point.kill(&proxy, &mut ws.command(&["apply", "--auto-approve"])) {
            wrong.push(e);
            continue;
        }
        let before = wrong.len();
        let (ok, _, err) = ws.try_run(&["apply", "--auto-approve"]);
        if !ok {
            wrong.push(format!("{at}: the clean re-run failed: {err}"));
            continue;
        }
        let plan = ws.plan();
        if !actions(&plan).is_empty() {
            wrong.push(format!(
                "{at}: the plan after the re-run is {:?}",
                actions(&plan)
            ));
        }
        if frames(&ws) != expected {
            wrong.push(format!(
                "{at}: frames.json differs from the uninterrupted run's"
            ));
        }
        for w in faults(&cvat, &ws, &project, &format!("v{}", n + 1)) {
            wrong.push(format!("{at}: {w}"));
        }
        tally.record(&at, &wrong, before);
    }
    tally.report("CVAT fake, video", &points, &proxy, t0.elapsed());
    assert!(wrong.is_empty(), "{wrong:#?}");
}
