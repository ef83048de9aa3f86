//! Incremental refresh: the cursor starts at create, a refresh downloads only the tasks whose
//! jobs were written since, a no-op plan is one request per project, and the fake moves
//! `updated_date` as CVAT 2.23.1 does (docs/cvat.md, "What moves `updated_date`").

use super::*;

/// Four tasks of one sample each, merged whenever anything changed.
const RUN: &str = "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: boxes\ndataset: ds\nview:\n  - limit: 4\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike]\nload:\n  when: always\n";

/// A workspace with [`RUN`] applied (created, its boxes uploaded), the project id and its
/// tasks' ids; the server's clock then moves on ten minutes, past the cursor's margin, as
/// annotators come to the tasks later.
fn created(cvat: &Cvat) -> (Ws, u64, Vec<u64>) {
    let ws = Ws::new(cvat, "datasets/quickstart", "task_size = 1\n");
    ws.manifest("run.yaml", RUN);
    ws.apply();
    cvat.fake.advance_clock(std::time::Duration::from_secs(600));
    let pid = cvat.project("annoform/ds/boxes").unwrap();
    let tasks: Vec<u64> = cvat
        .tasks(pid)
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();
    assert_eq!(tasks.len(), 4);
    (ws, pid, tasks)
}

/// The requests a command made, logins left out (one per process, not per project).
fn requests_of(cvat: &Cvat, run: impl FnOnce()) -> Vec<String> {
    cvat.fake.take_requests();
    run();
    cvat.fake
        .take_requests()
        .into_iter()
        .filter(|r| !r.starts_with("POST /api/auth/login"))
        .collect()
}

/// Draw a new box in a task, as the UI saves one.
fn draw_box(cvat: &Cvat, pid: u64, task: u64) -> Value {
    let label = cvat.label(pid, "car");
    cvat.edit(
        task,
        "create",
        vec![
            json!({"type": "rectangle", "frame": 0, "label_id": label["id"],
            "points": [1.0, 1.0, 5.0, 5.0], "occluded": false, "z_order": 0, "rotation": 0.0,
            "attributes": [], "source": "manual"}),
        ],
        vec![],
    )["shapes"][0]
        .clone()
}

fn annotation_reads(requests: &[String]) -> Vec<&String> {
    requests
        .iter()
        .filter(|r| r.starts_with("GET /api/tasks/") && r.ends_with("/annotations"))
        .collect()
}

#[test]
fn the_first_refresh_downloads_only_tasks_edited_since_create() {
    let cvat = Cvat::start();
    let (ws, pid, tasks) = created(&cvat);
    assert!(
        ws.record("boxes")["created_cursor"].is_string(),
        "{:#}",
        ws.record("boxes")
    );
    draw_box(&cvat, pid, tasks[2]);
    let mut plan = Value::Null;
    let requests = requests_of(&cvat, || plan = ws.plan());
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "ground_truth")[0], 1, "{plan:#}");
    assert_eq!(
        annotation_reads(&requests),
        [&format!("GET /api/tasks/{}/annotations", tasks[2])],
        "{requests:#?}"
    );
    ws.apply();
    let boxes: usize = ws
        .samples()
        .iter()
        .map(|s| {
            s["ground_truth"]["detections"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert!(boxes > 0);
}

#[test]
fn a_no_op_plan_is_one_request_per_project() {
    let cvat = Cvat::start();
    let (ws, pid, tasks) = created(&cvat);
    // Right after create, and after a merge.
    let mut plan = Value::Null;
    let requests = requests_of(&cvat, || plan = ws.plan());
    assert_eq!(actions(&plan), Vec::<String>::new(), "{plan:#}");
    assert_eq!(requests, [format!("GET /api/projects/{pid}")]);
    draw_box(&cvat, pid, tasks[0]);
    ws.apply();
    let requests = requests_of(&cvat, || plan = ws.plan());
    assert_eq!(actions(&plan), Vec::<String>::new(), "{plan:#}");
    assert_eq!(requests, [format!("GET /api/projects/{pid}")]);
    // A job's state changes nothing a merge reads and moves no project date.
    cvat.complete(tasks[1]);
    let requests = requests_of(&cvat, || plan = ws.plan());
    assert_eq!(requests, [format!("GET /api/projects/{pid}")]);
}

#[test]
fn an_undone_edit_is_refreshed_once_then_the_cursor_is_kept() {
    let cvat = Cvat::start();
    let (ws, pid, tasks) = created(&cvat);
    let shape = draw_box(&cvat, pid, tasks[3]);
    cvat.edit(tasks[3], "delete", vec![shape], vec![]);
    let mut plan = Value::Null;
    let requests = requests_of(&cvat, || plan = ws.plan());
    assert_eq!(actions(&plan), Vec::<String>::new(), "{plan:#}");
    assert_eq!(annotation_reads(&requests).len(), 1, "{requests:#?}");
    // Nothing to apply, but the cursor moves past the undone edit.
    ws.apply();
    let requests = requests_of(&cvat, || plan = ws.plan());
    assert_eq!(requests, [format!("GET /api/projects/{pid}")]);
}

#[test]
fn a_task_deleted_after_create_is_still_drift() {
    let cvat = Cvat::start();
    let (ws, _pid, tasks) = created(&cvat);
    cvat.delete(&format!("/api/tasks/{}", tasks[1]));
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["drift"], "{plan:#}");
}

#[test]
fn objects_on_frames_past_the_task_are_listed_not_dropped() {
    let cvat = Cvat::start();
    let (ws, pid, tasks) = created(&cvat);
    // Job-level writes do not check the frame (recorded); frame 7 of a one-frame task.
    let job = cvat.jobs(tasks[0])[0]["id"].as_u64().unwrap();
    let label = cvat.label(pid, "person");
    let echo = cvat.send(
        reqwest::Method::PATCH,
        &format!("/api/jobs/{job}/annotations?action=create"),
        &json!({"version": 0, "tags": [], "tracks": [], "shapes": [{"type": "rectangle",
            "frame": 7, "label_id": label["id"], "points": [1.0, 1.0, 4.0, 4.0]}]}),
    );
    let id = echo["shapes"][0]["id"].as_u64().unwrap();
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    let details = plan["runs"][0]["details"].to_string();
    assert!(
        details.contains(&format!("shape:{id}"))
            && details.contains("frame 7, past the task's 1 frame(s)"),
        "{plan:#}"
    );
    // Reported once: after the apply, the same stray does not keep the run dirty.
    ws.apply();
    assert_eq!(actions(&ws.plan()), Vec::<String>::new());
}

/// The fake moves `updated_date` where CVAT 2.23.1's source does.
#[test]
fn the_fake_moves_dates_as_cvat_does() {
    let cvat = Cvat::start();
    let (_ws, pid, tasks) = created(&cvat);
    let dates = || {
        let p = cvat.get(&format!("/api/projects/{pid}"))["updated_date"].clone();
        let t = cvat.get(&format!("/api/tasks/{}", tasks[0]))["updated_date"].clone();
        let j = cvat.jobs(tasks[0])[0]["updated_date"].clone();
        (p, t, j)
    };
    let put_nothing = || {
        cvat.send(
            reqwest::Method::PUT,
            &format!("/api/tasks/{}/annotations", tasks[0]),
            &json!({"version": 0, "tags": [], "shapes": [], "tracks": []}),
        )
    };
    // A PUT that empties a task moves its dates; one of nothing over nothing moves none.
    let uploaded = dates();
    put_nothing();
    let before = dates();
    assert!(before.0 != uploaded.0 && before.2 != uploaded.2);
    put_nothing();
    assert_eq!(dates(), before);
    // An annotation write moves the job, the task and the project.
    let shape = draw_box(&cvat, pid, tasks[0]);
    let after = dates();
    assert!(after.0 != before.0 && after.1 != before.1 && after.2 != before.2);
    assert!(after.0 == after.1 && after.1 == after.2, "{after:?}");
    // A delete naming an id no job holds still moves them (CVAT touches on the request).
    let mut ghost = shape.clone();
    ghost["id"] = json!(99_999_999);
    cvat.edit(tasks[0], "delete", vec![ghost], vec![]);
    let ghosted = dates();
    assert!(ghosted.0 != after.0 && ghosted.2 != after.2);
    // A job's state moves the job, the task only when its status changes, never the project.
    cvat.complete(tasks[0]);
    let completed = dates();
    assert_eq!(completed.0, ghosted.0);
    assert!(completed.1 != ghosted.1 && completed.2 != ghosted.2);
    // The listing filters on the date.
    let filter = format!(r#"{{">":[{{"var":"updated_date"}},{}]}}"#, completed.2);
    let newer = cvat.results(&format!(
        "/api/jobs?project_id={pid}&filter={}",
        cvat_fake::http::enc(&filter)
    ));
    assert!(newer.is_empty(), "{newer:#?}");
}

#[test]
fn a_no_op_plan_of_two_runs_is_one_request_each() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, "datasets/quickstart", "task_size = 1\n");
    ws.manifest("run.yaml", RUN);
    ws.manifest("other.yaml", &RUN.replace("key: boxes", "key: others"));
    ws.apply();
    let mut expected = ["boxes", "others"].map(|key| {
        format!(
            "GET /api/projects/{}",
            cvat.project(&format!("annoform/ds/{key}")).unwrap()
        )
    });
    expected.sort();
    let mut plan = Value::Null;
    let mut requests = requests_of(&cvat, || plan = ws.plan());
    requests.sort();
    assert_eq!(actions(&plan), Vec::<String>::new(), "{plan:#}");
    assert_eq!(requests, expected, "{plan:#}");
}
