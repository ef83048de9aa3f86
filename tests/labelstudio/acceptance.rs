//! Issue 5's acceptance on the real server: the demo dataset (24 generated images), annotators
//! simulated through the REST API exactly as the editor saves their work.

use super::faultproxy::{Action, FaultProxy, Rule, Target};
use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub(super) const DEMO_PROJECT: &str = "annoform/demo/demo";

/// The demo run's label schema; `restrictions` is added to every field.
pub(super) fn demo_schema(restrictions: &str) -> String {
    [
        ("ground_truth", "detections", "[car, person, bike]"),
        ("scene", "classification", "[street, park, parking]"),
        ("regions", "polygons", "[road, grass]"),
    ]
    .iter()
    .map(|(f, t, c)| format!("  {f}: {{type: {t}, classes: {c}{restrictions}}}\n"))
    .collect()
}

impl Ws {
    /// A workspace with a generated `n`-image demo dataset and the `demo` run, talking to
    /// `url`.
    pub(super) fn demo(dir: tempfile::TempDir, url: &str, token: &str, n: u32, schema: &str) -> Ws {
        let ws = Ws {
            dir,
            token: token.to_string(),
            dataset: "datasets/demo".into(),
            env: Vec::new(),
        };
        super::demo_gen::write_dataset(&ws.path().join("datasets/demo"), n, 160, 120)
            .expect("generate the demo dataset");
        std::fs::create_dir_all(ws.path().join("home")).unwrap();
        std::fs::create_dir_all(ws.path().join("manifests")).unwrap();
        std::fs::write(
            ws.path().join("annoform.toml"),
            format!(
                "default_backend = \"labelstudio\"\n[datasets.demo]\npath = \"datasets/demo\"\n[backends.labelstudio]\nurl = \"{url}\"\napi_key = \"${{env:LS_KEY}}\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            ws.path().join("manifests/run.yaml"),
            format!("apiVersion: annoform/v1\nkind: AnnotationRun\nkey: demo\ndataset: demo\nbackend: labelstudio\nload:\n  when: always\nlabel_schema:\n{schema}"),
        )
        .unwrap();
        ws
    }

    /// Run annoform expecting failure; its stderr.
    pub(super) fn fail(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run annoform");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "annoform {args:?} succeeded");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains(&self.token), "the token leaked: {stderr}");
        stderr
    }

    /// Every file under `sub` with its bytes (empty when `sub` does not exist).
    pub(super) fn snapshot(&self, sub: &str) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), out);
                } else {
                    out.insert(e.path(), std::fs::read(e.path()).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.path().join(sub), &mut out);
        out
    }
}

pub(super) fn oid(v: &Value) -> String {
    v["_id"]["$oid"].as_str().unwrap_or_default().to_string()
}

/// A random 10-character id, as the editor gives regions drawn by hand.
fn editor_id() -> String {
    let mut b = [0u8; 10];
    getrandom::fill(&mut b).unwrap();
    let abc = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    b.iter().map(|x| abc[(*x as usize) % 64] as char).collect()
}

/// A region drawn by hand in the editor.
fn manual(from: &str, kind: &str, value: Value) -> Value {
    json!({"id": editor_id(), "from_name": from, "to_name": "image", "type": kind,
        "original_width": 160, "original_height": 120, "image_rotation": 0,
        "origin": "manual", "value": value})
}

/// The labels the annotators touch, by sample index.
pub(super) struct Touched {
    moved_box: String,
    relabeled_box: String,
    deleted_box: String,
    relabeled_scene: String,
    deleted_scene: String,
    moved_polygon: String,
    deleted_polygon: String,
}

/// The first label id of `field` in `sample`.
fn first(sample: &Value, field: &str) -> String {
    let list = match field {
        "ground_truth" => &sample[field]["detections"],
        "regions" => &sample[field]["polylines"],
        _ => return oid(&sample[field]),
    };
    oid(&list[0])
}

/// Annotators at work on samples 0-7 (the rest stay unannotated):
/// 0 moves a box, 1 relabels a box, 2 deletes a box, 3 draws a new box, 4 relabels the scene,
/// 5 deletes the scene and moves a polygon, 6 deletes a polygon and draws a new one, 7
/// submits the predictions unchanged. Samples 0 and 4 are annotated twice: a first
/// annotation with these changes, then a stale one deleting everything, then the first is
/// updated again, so it is the newest by `updated_at` but not by id.
pub(super) fn annotate(ls: &LabelStudio, project: u64, samples: &[Value]) -> Touched {
    let tasks = ls.tasks(project);
    let task_of = |i: usize| {
        tasks
            .iter()
            .find(|t| t["data"]["sample_id"] == oid(&samples[i]).as_str())
            .unwrap_or_else(|| panic!("no task for sample {i}"))
            .clone()
    };
    let touched = Touched {
        moved_box: first(&samples[0], "ground_truth"),
        relabeled_box: first(&samples[1], "ground_truth"),
        deleted_box: first(&samples[2], "ground_truth"),
        relabeled_scene: first(&samples[4], "scene"),
        deleted_scene: first(&samples[5], "scene"),
        moved_polygon: first(&samples[5], "regions"),
        deleted_polygon: first(&samples[6], "regions"),
    };
    for i in 0..8 {
        let task = task_of(i);
        let mut result: Vec<Value> = task["predictions"][0]["result"].as_array().unwrap().clone();
        let by_id = |r: &mut Vec<Value>, id: &str| -> usize {
            r.iter()
                .position(|x| x["id"] == id)
                .unwrap_or_else(|| panic!("no result {id}"))
        };
        match i {
            0 => {
                let k = by_id(&mut result, &touched.moved_box);
                let x = result[k]["value"]["x"].as_f64().unwrap();
                result[k]["value"]["x"] = json!(if x > 50.0 { x - 5.0 } else { x + 5.0 });
            }
            1 => {
                let k = by_id(&mut result, &touched.relabeled_box);
                let new = if result[k]["value"]["rectanglelabels"][0] == "car" {
                    "bike"
                } else {
                    "car"
                };
                result[k]["value"]["rectanglelabels"] = json!([new]);
            }
            2 => {
                let k = by_id(&mut result, &touched.deleted_box);
                result.remove(k);
            }
            3 => result.push(manual(
                "ground_truth",
                "rectanglelabels",
                json!({"x": 10.0, "y": 20.0, "width": 25.0, "height": 30.0, "rotation": 0,
                    "rectanglelabels": ["person"]}),
            )),
            4 => {
                let k = by_id(&mut result, &touched.relabeled_scene);
                let new = if result[k]["value"]["choices"][0] == "street" {
                    "park"
                } else {
                    "street"
                };
                result[k]["value"]["choices"] = json!([new]);
            }
            5 => {
                let k = by_id(&mut result, &touched.deleted_scene);
                result.remove(k);
                let k = by_id(&mut result, &touched.moved_polygon);
                let p = &mut result[k]["value"]["points"][0];
                p[1] = json!(p[1].as_f64().unwrap() + 2.5);
            }
            6 => {
                let k = by_id(&mut result, &touched.deleted_polygon);
                result.remove(k);
                result.push(manual(
                    "regions",
                    "polygonlabels",
                    json!({"points": [[5.0, 5.0], [30.0, 5.0], [30.0, 25.0], [5.0, 25.0]],
                        "closed": true, "polygonlabels": ["grass"]}),
                ));
            }
            _ => {}
        }
        let body = json!({"result": result, "was_cancelled": false, "ground_truth": false,
            "lead_time": 12.5});
        let a = ls.post(&format!("/api/tasks/{}/annotations", task["id"]), &body);
        if i == 0 || i == 4 {
            std::thread::sleep(Duration::from_millis(20));
            ls.post(
                &format!("/api/tasks/{}/annotations", task["id"]),
                &json!({"result": [], "was_cancelled": false, "ground_truth": false}),
            );
            std::thread::sleep(Duration::from_millis(20));
            let (status, v) = ls.request(
                reqwest::Method::PATCH,
                &format!("/api/annotations/{}", a["id"]),
                Some(&json!({"result": result})),
            );
            assert_eq!(status, 200, "PATCH annotation: {v}");
        }
    }
    touched
}

/// (added, edited, deleted, rejected) of `field` in the first run of `plan`.
pub(super) fn counts(plan: &Value, field: &str) -> (u64, u64, u64, u64) {
    let c = &plan["runs"][0]["fields"][field];
    let n = |k: &str| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("{field}.{k}: {plan:#}"))
    };
    (n("added"), n("edited"), n("deleted"), n("rejected"))
}

/// The labels of `field` in `sample`, as (id, label) pairs.
pub(super) fn labels(sample: &Value, field: &str) -> Vec<Value> {
    match field {
        "ground_truth" => sample[field]["detections"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        "regions" => sample[field]["polylines"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        _ if sample[field].is_object() => vec![sample[field].clone()],
        _ => vec![],
    }
}

fn find<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|l| oid(l) == id)
}

fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Starts a server, a demo workspace and applies the run: (server, workspace, project id).
fn created(restrictions: &str) -> (LabelStudio, Ws, u64) {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let ws = Ws::demo(dir, &ls.url, &ls.token, 24, &demo_schema(restrictions));
    assert_eq!(run_actions(&ws.plan()), ["create"]);
    let t0 = Instant::now();
    ws.run(&["apply", "--auto-approve"]);
    eprintln!("apply (create, 24 images, uploads): {:?}", t0.elapsed());
    let pid = ls.project(DEMO_PROJECT).expect("project created");
    let projects = ls.get("/api/projects?page_size=100")["results"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(projects, 1, "one project");
    let tasks = ls.tasks(pid);
    assert_eq!(tasks.len(), 24);
    assert!(
        tasks
            .iter()
            .all(|t| !t["predictions"][0]["result"].as_array().unwrap().is_empty()),
        "every task carries its labels as predictions"
    );
    assert!(run_actions(&ws.plan()).is_empty(), "nothing annotated yet");
    (ls, ws, pid)
}

#[test]
fn full_loop_on_the_demo_dataset() {
    let (ls, ws, pid) = created("");
    let before = ws.samples();
    let t = annotate(&ls, pid, &before);

    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["merge"], "{plan:#}");
    assert_eq!(counts(&plan, "ground_truth"), (1, 2, 1, 0), "{plan:#}");
    assert_eq!(counts(&plan, "scene"), (0, 1, 1, 0), "{plan:#}");
    assert_eq!(counts(&plan, "regions"), (1, 1, 1, 0), "{plan:#}");

    let t0 = Instant::now();
    ws.run(&["apply", "--auto-approve"]);
    eprintln!("apply (merge, 24 images, 8 annotated): {:?}", t0.elapsed());
    let after = ws.samples();
    let gt = |i: usize, s: &[Value]| labels(&s[i], "ground_truth");

    // 0: moved by 5% of the width, same id and label.
    let (b, a) = (
        find(&gt(0, &before), &t.moved_box).unwrap().clone(),
        find(&gt(0, &after), &t.moved_box).cloned(),
    );
    let a = a.expect("the moved box keeps its id");
    let dx = a["bounding_box"][0].as_f64().unwrap() - b["bounding_box"][0].as_f64().unwrap();
    assert!((dx.abs() - 0.05).abs() < 1e-6, "{b} -> {a}");
    assert_eq!(a["label"], b["label"]);
    assert_eq!(gt(0, &after).len(), gt(0, &before).len());
    // 1: relabelled, same id and box.
    let (b, a) = (
        find(&gt(1, &before), &t.relabeled_box).unwrap().clone(),
        find(&gt(1, &after), &t.relabeled_box).unwrap().clone(),
    );
    assert_ne!(a["label"], b["label"]);
    assert_eq!(a["bounding_box"], b["bounding_box"]);
    // 2: one box fewer.
    assert!(find(&gt(2, &after), &t.deleted_box).is_none());
    assert_eq!(gt(2, &after).len(), gt(2, &before).len() - 1);
    // 3: a new box with a new ObjectId, at the drawn place.
    assert_eq!(gt(3, &after).len(), gt(3, &before).len() + 1);
    let new = gt(3, &after)
        .into_iter()
        .find(|l| find(&gt(3, &before), &oid(l)).is_none())
        .unwrap();
    assert!(is_object_id(&oid(&new)), "{new}");
    assert_eq!(new["label"], "person");
    assert_eq!(new["bounding_box"], json!([0.1, 0.2, 0.25, 0.3]));
    // 4: the scene relabelled (the newest annotation won, not the later-created empty one).
    assert_eq!(oid(&after[4]["scene"]), t.relabeled_scene);
    assert_ne!(after[4]["scene"]["label"], before[4]["scene"]["label"]);
    // 5: no scene; the polygon's first point moved down by 2.5% of the height.
    assert!(
        labels(&after[5], "scene").is_empty(),
        "{}",
        after[5]["scene"]
    );
    let (b, a) = (
        find(&labels(&before[5], "regions"), &t.moved_polygon)
            .unwrap()
            .clone(),
        find(&labels(&after[5], "regions"), &t.moved_polygon)
            .unwrap()
            .clone(),
    );
    let dy = a["points"][0][0][1].as_f64().unwrap() - b["points"][0][0][1].as_f64().unwrap();
    assert!((dy - 0.025).abs() < 1e-6, "{b} -> {a}");
    assert_eq!(a["label"], b["label"]);
    // 6: the polygon replaced by a new one.
    let regions6 = labels(&after[6], "regions");
    assert!(find(&regions6, &t.deleted_polygon).is_none());
    assert_eq!(regions6.len(), labels(&before[6], "regions").len());
    let new = regions6
        .iter()
        .find(|l| find(&labels(&before[6], "regions"), &oid(l)).is_none())
        .unwrap();
    assert!(is_object_id(&oid(new)));
    assert_eq!(new["label"], "grass");
    assert_eq!(new["closed"], true);
    // Everything else is exactly as before (sample 7 was submitted unchanged).
    for i in (7..24).chain([0, 1, 2, 3]) {
        for f in ["scene", "regions"] {
            assert_eq!(before[i][f], after[i][f], "sample {i} field {f}");
        }
    }
    for i in 4..24 {
        assert_eq!(
            before[i]["ground_truth"], after[i]["ground_truth"],
            "sample {i}"
        );
    }
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b["_id"], a["_id"]);
    }

    let plan = ws.plan();
    assert!(run_actions(&plan).is_empty(), "{plan:#}");
    let (data, state) = (ws.snapshot("datasets/demo"), ws.snapshot(".annoform/state"));
    ws.run(&["apply", "--auto-approve"]);
    assert!(
        data == ws.snapshot("datasets/demo"),
        "a second apply changed the dataset"
    );
    assert!(
        state == ws.snapshot(".annoform/state"),
        "a second apply changed the state"
    );

    // Later, one more task is annotated: the refresh downloads only that task (the others
    // have not changed since the merge), so only its labels are counted.
    let task = ls
        .tasks(pid)
        .into_iter()
        .find(|t| t["data"]["sample_id"] == oid(&after[9]).as_str())
        .unwrap();
    let mut result = task["predictions"][0]["result"].as_array().unwrap().clone();
    let k = result
        .iter()
        .position(|r| r["from_name"] == "ground_truth")
        .unwrap();
    let new = if result[k]["value"]["rectanglelabels"][0] == "car" {
        "bike"
    } else {
        "car"
    };
    result[k]["value"]["rectanglelabels"] = json!([new]);
    ls.post(
        &format!("/api/tasks/{}/annotations", task["id"]),
        &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
    );
    let plan = ws.plan();
    assert_eq!(run_actions(&plan), ["merge"], "{plan:#}");
    let gt = &plan["runs"][0]["fields"]["ground_truth"];
    assert_eq!(gt["edited"], 1, "{gt}");
    assert_eq!(
        gt["unchanged"].as_u64().unwrap() as usize,
        labels(&after[9], "ground_truth").len() - 1,
        "only the changed task is downloaded: {gt}"
    );
    ws.run(&["apply", "--auto-approve"]);
    assert_eq!(
        labels(&ws.samples()[9], "ground_truth").len(),
        labels(&after[9], "ground_truth").len()
    );
    assert!(run_actions(&ws.plan()).is_empty());

    ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(ls.project(DEMO_PROJECT), None);
}

#[test]
fn restrictions_reject_and_keep_the_originals() {
    let restrictions =
        ", allow_deletions: false, allow_label_edits: false, allow_spatial_edits: false";
    let (ls, ws, pid) = created(restrictions);
    let before = ws.samples();
    let t = annotate(&ls, pid, &before);

    let plan = ws.plan();
    assert_eq!(counts(&plan, "ground_truth"), (1, 0, 0, 3), "{plan:#}");
    assert_eq!(counts(&plan, "scene"), (0, 0, 0, 2), "{plan:#}");
    assert_eq!(counts(&plan, "regions"), (1, 0, 0, 2), "{plan:#}");
    let s = |i: usize| oid(&before[i]);
    let expected: BTreeSet<(String, String, String, String)> = [
        (s(0), t.moved_box.clone(), "ground_truth", "geometry"),
        (s(1), t.relabeled_box.clone(), "ground_truth", "label"),
        (s(2), t.deleted_box.clone(), "ground_truth", "delete"),
        (s(4), t.relabeled_scene.clone(), "scene", "label"),
        (s(5), t.deleted_scene.clone(), "scene", "delete"),
        (s(5), t.moved_polygon.clone(), "regions", "geometry"),
        (s(6), t.deleted_polygon.clone(), "regions", "delete"),
    ]
    .into_iter()
    .map(|(a, b, c, d)| (a, b, c.to_string(), d.to_string()))
    .collect();
    let listed: BTreeSet<(String, String, String, String)> = plan["runs"][0]["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let g = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (g("sample_id"), g("label_id"), g("field"), g("change"))
        })
        .collect();
    assert_eq!(listed, expected, "{plan:#}");
    let text = ws.run(&["plan", "-v"]);
    for (sample, label, _, _) in &expected {
        assert!(
            text.contains(sample) && text.contains(label),
            "{label} not listed:\n{text}"
        );
    }

    ws.run(&["apply", "--auto-approve"]);
    let after = ws.samples();
    // The originals stay; only the two additions are merged.
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b["scene"], a["scene"], "sample {i}");
        for f in ["ground_truth", "regions"] {
            let (lb, la) = (labels(b, f), labels(a, f));
            let added = usize::from((i == 3 && f == "ground_truth") || (i == 6 && f == "regions"));
            assert_eq!(la.len(), lb.len() + added, "sample {i} {f}");
            assert_eq!(la[..lb.len()], lb[..], "sample {i} {f}: originals kept");
        }
    }
    ws.run(&["destroy", "--auto-approve"]);
}

#[test]
fn killed_after_the_task_import_then_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    let ws = Ws::demo(dir, &proxy.url, &ls.token, 24, &demo_schema(""));
    // The task import, not the file upload (which goes to the same path, uncommitted).
    let import = proxy.rule(Rule::new(
        "POST",
        Target::regex(r"/import\?return_task_ids"),
        Action::HoldAnswer,
    ));
    let mut child = ws
        .command(&["apply", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn annoform apply");
    // Label Studio has imported the tasks; annoform waits for the answer. Kill it there.
    let held = import.wait_held(Duration::from_secs(120));
    if !held {
        let _ = child.kill();
    }
    assert!(held, "no import seen");
    assert_eq!(ls.tasks(ls.project(DEMO_PROJECT).unwrap()).len(), 24);
    child.kill().expect("kill annoform by its pid");
    child.wait().unwrap();
    proxy.clear();
    let pid = ls.project(DEMO_PROJECT).unwrap();

    // The record never learnt of the tasks: the re-run adopts them instead of importing again.
    // The killed process's lock is taken over (its pid is gone).
    let out = ws.run(&["apply", "--auto-approve"]);
    assert!(out.contains("Apply complete"), "{out}");
    assert_eq!(ls.project(DEMO_PROJECT), Some(pid));
    assert_eq!(ls.tasks(pid).len(), 24, "no duplicate tasks");
    let plan = ws.plan();
    assert!(run_actions(&plan).is_empty(), "{plan:#}");
    ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(ls.project(DEMO_PROJECT), None);
}

#[test]
fn misbehaving_servers() {
    // A closed port: a clear error, nothing written.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}");
    let ws = Ws::demo(
        tempfile::tempdir().unwrap(),
        &down,
        "sometoken",
        24,
        &demo_schema(""),
    );
    let data = ws.snapshot("datasets/demo");
    let err = ws.fail(&["apply", "--auto-approve"]);
    assert!(err.contains(&down), "names the server: {err}");
    assert!(data == ws.snapshot("datasets/demo"), "dataset untouched");
    let state = ws.snapshot(".annoform/state");
    assert!(
        state.keys().all(|p| !p.to_string_lossy().contains("runs")),
        "no run recorded: {:?}",
        state.keys().collect::<Vec<_>>()
    );
    let listed = ws.run(&["runs", "list"]);
    assert!(!listed.contains("demo"), "{listed}");

    // A wrong token: one clear error naming the server and what to set.
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let ws = Ws::demo(
        dir,
        &ls.url,
        "0123456789abcdef0123456789abcdef01234567",
        24,
        &demo_schema(""),
    );
    let err = ws.fail(&["apply", "--auto-approve"]);
    assert!(err.contains(&ls.url), "names the server: {err}");
    assert!(
        err.contains("api_key") && err.contains("ANNOFORM_LABELSTUDIO_API_KEY"),
        "says what to set: {err}"
    );
    assert!(
        !err.contains("re-run the command") && err.contains("refused the credentials"),
        "a refused key is not worth a re-run: {err}"
    );
    assert_eq!(ls.project(DEMO_PROJECT), None);

    // A 500 on a page of the download is retried.
    let proxy = FaultProxy::start(&ls.url);
    let ws = Ws::demo(
        tempfile::tempdir().unwrap(),
        &proxy.url,
        &ls.token,
        24,
        &demo_schema(""),
    );
    ws.run(&["apply", "--auto-approve"]);
    let pid = ls.project(DEMO_PROJECT).unwrap();
    annotate(&ls, pid, &ws.samples());
    let tasks_list = Target::regex(r"^/api/tasks(\?|$)");
    let tasks_gets = proxy.rule(Rule::count("GET", tasks_list.clone()));
    // One plain listing answers the task list and their status; one more brings annotations.
    let before = tasks_gets.matched();
    ws.plan();
    assert_eq!(
        tasks_gets.matched() - before,
        2,
        "a plan lists the project's tasks twice"
    );
    let gets = tasks_gets.matched();
    let failing = proxy.rule(Rule::new(
        "GET",
        tasks_list.clone(),
        Action::Status(500, r#"{"detail":"injected"}"#.into()),
    ));
    let plan = ws.plan();
    assert_eq!(failing.fired(), 1, "the 500 was served");
    assert!(tasks_gets.matched() >= gets + 2, "and the page asked again");
    assert_eq!(counts(&plan, "ground_truth"), (1, 2, 1, 0), "{plan:#}");
    proxy.rule(Rule::new(
        "GET",
        tasks_list,
        Action::Status(500, r#"{"detail":"injected"}"#.into()),
    ));
    ws.run(&["apply", "--auto-approve"]);
    assert!(run_actions(&ws.plan()).is_empty());
    ws.run(&["destroy", "--auto-approve"]);
}

#[test]
fn the_committed_demo_dataset_is_the_generators_output() {
    let dir = tempfile::tempdir().unwrap();
    super::demo_gen::write_dataset(dir.path(), 24, 160, 120).unwrap();
    let ds = annoform::dataset::dir::Dataset::load(repo().join("datasets/demo")).expect("loads");
    assert_eq!(ds.len(), 24);
    ds.check_media().expect("every image is there");
    for f in ["ground_truth", "scene", "regions"] {
        assert!(ds.field_exists(&f.into()), "{f} declared");
    }
    for file in [
        "metadata.json",
        "samples.json",
        "data/000000.png",
        "data/000023.png",
    ] {
        assert!(
            std::fs::read(dir.path().join(file)).unwrap()
                == std::fs::read(repo().join("datasets/demo").join(file)).unwrap(),
            "{file} differs: regenerate with `cargo run --example make-demo-dataset -- datasets/demo`"
        );
    }
}
