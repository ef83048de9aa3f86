//! New-user trials: wrong credentials, a server that is not CVAT, hand-made changes.

use super::*;
use std::io::{Read, Write};

const SIMPLE: &str = "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: boxes\ndataset: ds\nview:\n  - limit: 2\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike]\nload:\n  when: complete\n";

#[test]
fn wrong_password_is_a_clear_error_without_the_secret() {
    let cvat = Cvat::start();
    let mut ws = Ws::new(&cvat, "datasets/quickstart", "");
    ws.manifest("run.yaml", SIMPLE);
    ws.password = "Not-The-Password-42".into();
    let (ok, stdout, stderr) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("refused the login")
            && stderr.contains("Unable to log in with provided credentials")
            && stderr.contains("ANNOFORM_CVAT_PASSWORD"),
        "{stderr}"
    );
    // try_run checked that the password shows nowhere.
}

/// A server that answers every request with an HTML page (a proxy's login page, the
/// wrong port).
fn html_server() -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let body = "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in</body></html>";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, handle)
}

#[test]
fn a_server_answering_html_is_a_clear_error() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, "datasets/quickstart", "");
    ws.manifest("run.yaml", SIMPLE);
    let (url, _server) = html_server();
    let toml = std::fs::read_to_string(ws.path().join("annoform.toml"))
        .unwrap()
        .replace(cvat.url(), &url);
    std::fs::write(ws.path().join("annoform.toml"), toml).unwrap();
    let (ok, _, stderr) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(!ok);
    assert!(
        stderr.contains("answered an HTML page where CVAT answers JSON") && stderr.contains(&url),
        "{stderr}"
    );
}

#[test]
fn a_task_deleted_by_hand_is_drift_and_is_recreated() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, "datasets/quickstart", "task_size = 1\n");
    ws.manifest("run.yaml", SIMPLE);
    ws.apply();
    let pid = cvat.project("annoform/ds/boxes").unwrap();
    let tasks = cvat.tasks(pid);
    assert_eq!(tasks.len(), 2);
    cvat.delete(&format!("/api/tasks/{}", tasks[1]["id"]));
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["drift"], "{plan:#}");
    let drift = &plan["runs"][0]["drift"][0];
    assert_eq!(
        (&drift["kind"], &drift["task"]),
        (
            &json!("task_missing"),
            &json!("annoform/ds/boxes/batch-0001")
        ),
        "{drift}"
    );
    // A task renamed in CVAT's UI is still ours (its bug tracker says so).
    cvat.send(
        reqwest::Method::PATCH,
        &format!("/api/tasks/{}", tasks[0]["id"]),
        &json!({"name": "renamed by a user"}),
    );
    let plan = ws.plan();
    assert_eq!(
        plan["runs"][0]["drift"].as_array().unwrap().len(),
        1,
        "{plan:#}"
    );
    ws.apply();
    let tasks = cvat.tasks(pid);
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[1]["name"], "annoform/ds/boxes/batch-0001");
    assert_eq!(
        tasks[1]["bug_tracker"],
        "annoform://annoform/ds/boxes/batch-0001"
    );
    assert_eq!(tasks[1]["size"], 1);
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
}

/// A job reopened (and edited) after its task was merged makes the next plan merge again,
/// once the task is complete again.
#[test]
fn a_job_reopened_after_merge_merges_again() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, "datasets/quickstart", "segment_size = 1\n");
    ws.manifest("run.yaml", SIMPLE);
    ws.apply();
    let pid = cvat.project("annoform/ds/boxes").unwrap();
    let tid = cvat.tasks(pid)[0]["id"].as_u64().unwrap();
    assert_eq!(cvat.jobs(tid).len(), 2);
    let status = ws.run(&["status"]);
    assert!(status.contains("0/2 job(s) completed"), "{status}");
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
    assert!(
        plan["runs"][0]["waiting"]["complete"] == 0 && plan["runs"][0]["waiting"]["tasks"] == 1,
        "{plan:#}"
    );
    let samples = ws.samples();
    let car = cvat.label(pid, "car");
    let f0 = cvat.frame_of(tid, oid(&samples[0]));
    cvat.edit(
        tid,
        "create",
        vec![json!({"type": "rectangle", "frame": f0, "label_id": car["id"], "points": [0, 0, 32, 24]})],
        vec![],
    );
    cvat.complete(tid);
    let status = ws.run(&["status"]);
    assert!(
        status.contains("completed, 2/2 job(s) completed"),
        "{status}"
    );
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "ground_truth"), [1, 0, 0, 0, 4]);
    ws.apply();
    assert!(actions(&ws.plan()).is_empty());

    // Reopen the first job and delete the box drawn there.
    let job = &cvat.jobs(tid)[0];
    cvat.send(
        reqwest::Method::PATCH,
        &format!("/api/jobs/{}", job["id"]),
        &json!({"stage": "annotation", "state": "in progress"}),
    );
    let ann = cvat.annotations(tid);
    let drawn = ann["shapes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["points"] == json!([0.0, 0.0, 32.0, 24.0]))
        .unwrap()
        .clone();
    cvat.edit(tid, "delete", vec![drawn], vec![]);
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "incomplete again: {plan:#}");
    cvat.complete(tid);
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "ground_truth"), [0, 0, 1, 0, 4]);
    ws.apply();
    assert_eq!(
        ws.samples()[0]["ground_truth"]["detections"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(actions(&ws.plan()).is_empty());
}

#[test]
fn an_api_key_and_organization_work_too() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, "datasets/quickstart", "");
    let toml = std::fs::read_to_string(ws.path().join("annoform.toml"))
        .unwrap()
        .replace(
            "username = \"${env:CVAT_USER}\"\npassword = \"${env:CVAT_PASS}\"\n",
            "api_key = \"${env:CVAT_KEY}\"\norganization = \"team\"\nheaders = { X-Proxy-Auth = \"${env:PROXY_AUTH}\" }\n",
        );
    std::fs::write(ws.path().join("annoform.toml"), toml).unwrap();
    ws.manifest("run.yaml", SIMPLE);
    let out = ws
        .command(&["apply", "--auto-approve"])
        .env("CVAT_KEY", &cvat.key)
        .env("PROXY_AUTH", "proxy-secret-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cvat.project("annoform/ds/boxes").is_some());
    // A wrong key: a clear error naming what to set, without the key.
    let out = ws
        .command(&["plan"])
        .env("CVAT_KEY", "0123456789abcdef0123456789abcdef01234567")
        .env("PROXY_AUTH", "proxy-secret-1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("refused the credentials")
            && !stderr.contains("0123456789abcdef")
            && !stderr.contains("proxy-secret-1"),
        "{stderr}"
    );
}

#[test]
fn media_cvat_cannot_read_fail_the_task_clearly() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, "datasets/quickstart", "");
    ws.manifest("run.yaml", SIMPLE);
    // The first image is not an image any more.
    let samples = ws.samples();
    let path = ws
        .path()
        .join("datasets/ds")
        .join(samples[0]["filepath"].as_str().unwrap());
    std::fs::write(&path, b"this is not a PNG").unwrap();
    let (ok, _, stderr) = ws.try_run(&["apply", "--auto-approve"]);
    assert!(!ok);
    assert!(
        stderr.contains("CVAT could not process the data") && stderr.contains("create:task-"),
        "{stderr}"
    );
    let pid = cvat.project("annoform/ds/boxes").unwrap();
    assert!(cvat.tasks(pid).is_empty(), "the broken task was removed");
}
