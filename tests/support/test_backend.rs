//! A test backend for annoform's engine tests: speaks annoform's custom-backend protocol
//! (JSON lines) and keeps its objects in a JSON file, so state survives across commands the
//! way a real server's does. Behaves like a server: objects get ids, names are not unique,
//! importing twice makes two tasks.
//!
//! Usage: `test-backend STORE.json`. Environment knobs:
//! - `TEST_BACKEND_LATENCY_MS`: sleep before each answer.
//! - `TEST_BACKEND_FAIL=method:N`: the N-th call of `method` (1-based, counted per process)
//!   answers an error without doing anything.
//! - `TEST_BACKEND_CRASH=method:N`: the N-th call of `method` is carried out and saved, then
//!   the calling process (annoform) is killed with SIGKILL before it hears the answer.
//! - `TEST_BACKEND_SCHEMA_IN_PLACE=false`: declare that schemas cannot change in place.
//! - `TEST_BACKEND_DROP=download:N`: the N-th `download` answer loses its annotations on the
//!   way (a page lost), while still listing the task's samples.
//! - `TEST_BACKEND_DROP_LABELS=create_task:N`: the N-th `create_task` keeps the media but
//!   none of the labels (a server that stopped between the two).
//!
//! Projects keep the `owner` they were created with (the run's identity) and report it.
//! A video's frame labels are held one object per label and frame, naming the frame; a
//! sample's `@frames` (set by a test) makes downloads hand only those frames.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, Write};

fn main() {
    let store_path = std::env::args()
        .nth(1)
        .expect("usage: test-backend STORE.json");
    let latency = std::env::var("TEST_BACKEND_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let trigger = |var: &str| -> Option<(String, u32)> {
        let v = std::env::var(var).ok()?;
        let (m, n) = v.split_once(':')?;
        Some((m.to_string(), n.parse().ok()?))
    };
    // A failure that passes (`transient`), and one that comes back on every try.
    let fail = trigger("TEST_BACKEND_FAIL");
    let refuse = trigger("TEST_BACKEND_REFUSE");
    let crash = trigger("TEST_BACKEND_CRASH");
    let drop = trigger("TEST_BACKEND_DROP");
    let drop_labels = trigger("TEST_BACKEND_DROP_LABELS");
    let mut calls: HashMap<String, u32> = HashMap::new();

    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let req: Value = serde_json::from_str(&line).expect("request is JSON");
        let id = req["id"].clone();
        let method = req["method"].as_str().unwrap_or_default().to_string();
        let n = calls.entry(method.clone()).or_insert(0);
        *n += 1;
        if latency > 0 {
            std::thread::sleep(std::time::Duration::from_millis(latency));
        }
        let answer = if fail.as_ref().is_some_and(|(m, k)| *m == method && *k == *n) {
            json!({"id": id, "error": {"message": format!("injected failure of {method} call {n}"), "transient": true}})
        } else if refuse.as_ref().is_some_and(|(m, _)| *m == method) {
            json!({"id": id, "error": {"message": format!("{method} refused: the schema is not accepted")}})
        } else {
            let mut store = load(&store_path);
            let mut params = req["params"].clone();
            if drop_labels
                .as_ref()
                .is_some_and(|(m, k)| *m == method && *k == *n)
            {
                for s in params["task"]["samples"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                {
                    s["labels"] = json!({});
                }
            }
            let mut result = handle(&mut store, &method, &params);
            save(&store_path, &store);
            if drop.as_ref().is_some_and(|(m, k)| *m == method && *k == *n)
                && let Ok(r) = &mut result
            {
                r["annotations"] = json!({});
            }
            match result {
                Ok(r) => json!({"id": id, "result": r}),
                Err(e) => json!({"id": id, "error": {"message": e}}),
            }
        };
        if crash
            .as_ref()
            .is_some_and(|(m, k)| *m == method && *k == *n)
        {
            kill_parent();
        }
        writeln!(stdout, "{answer}").expect("write answer");
        stdout.flush().expect("flush");
    }
}

fn kill_parent() {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    // The fourth field, after the parenthesised command name.
    let ppid = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().nth(1))
        .expect("ppid");
    let _ = std::process::Command::new("kill")
        .args(["-9", ppid])
        .status();
    std::process::exit(0);
}

fn load(path: &str) -> Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({"next_id": 1, "projects": [], "log": []}))
}

fn save(path: &str, store: &Value) {
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(store).expect("json")).expect("write store");
    std::fs::rename(&tmp, path).expect("rename store");
}

fn next_id(store: &mut Value) -> String {
    let id = store["next_id"].as_u64().unwrap_or(1);
    store["next_id"] = json!(id + 1);
    id.to_string()
}

fn project_mut<'a>(store: &'a mut Value, params: &Value) -> Result<&'a mut Value, String> {
    let id = params["project"]["id"]
        .as_str()
        .ok_or("no project id")?
        .to_string();
    store["projects"]
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["id"] == id.as_str()))
        .ok_or_else(|| format!("project {id} not found (HTTP 404)"))
}

fn handle(store: &mut Value, method: &str, params: &Value) -> Result<Value, String> {
    store["log"]
        .as_array_mut()
        .expect("log")
        .push(json!(method));
    match method {
        "capabilities" => {
            let in_place =
                std::env::var("TEST_BACKEND_SCHEMA_IN_PLACE").map_or(true, |v| v != "false");
            Ok(json!({
                "label_types": ["classification", "classifications", "detections", "instances", "polylines", "polygons", "keypoints", "segmentation", "scalar"],
                "attribute_types": ["text", "select", "radio", "checkbox", "occluded", "group_id"],
                "video": true, "string_scalars": true, "max_fields": null,
                "editor_enforces_restrictions": false, "schema_update_in_place": in_place
            }))
        }
        "find_project" => Ok(store["projects"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == params["name"]))
            .map(|p| json!({"id": p["id"], "name": p["name"], "owner": p["owner"]}))
            .unwrap_or(Value::Null)),
        "create_project" => {
            let id = next_id(store);
            let p = json!({"id": id, "name": params["name"], "schema": params["schema"],
                           "owner": params["owner"], "tasks": []});
            store["projects"].as_array_mut().expect("projects").push(p);
            Ok(json!({"id": id, "name": params["name"], "owner": params["owner"]}))
        }
        "upload_labels" => {
            let task_id = params["task"]["id"].clone();
            let samples = params["labels"]["samples"].clone();
            let p = project_mut(store, params)?;
            let t = p["tasks"]
                .as_array_mut()
                .expect("tasks")
                .iter_mut()
                .find(|t| t["id"] == task_id)
                .ok_or("no such task (HTTP 404)")?;
            let id = t["id"].as_str().unwrap_or_default().to_string();
            for s in samples.as_array().ok_or("no samples")? {
                let sid = s["sample_id"].as_str().ok_or("no sample id")?;
                for (field, labels) in s["labels"].as_object().ok_or("no labels")? {
                    let held = &mut t["annotations"][sid][field];
                    if held.is_null() {
                        *held = json!([]);
                    }
                    let list = held.as_array_mut().expect("labels");
                    for l in labels.as_array().ok_or("labels not a list")? {
                        let n = list.len() + 1;
                        list.push(json!({"backend_id": format!("{id}-{field}-{n}"), "label": l}));
                    }
                }
                for (field, labels) in s["frame_labels"].as_object().into_iter().flatten() {
                    let held = &mut t["annotations"][sid][field];
                    if held.is_null() {
                        *held = json!([]);
                    }
                    let list = held.as_array_mut().expect("labels");
                    for l in labels.as_array().ok_or("frame labels not a list")? {
                        let n = list.len() + 1;
                        list.push(json!({"backend_id": format!("{id}-{field}-{n}"), "frame": l["frame"], "label": l["label"]}));
                    }
                }
            }
            Ok(Value::Null)
        }
        "list_tasks" => {
            let p = project_mut(store, params)?;
            Ok(Value::Array(
                p["tasks"]
                    .as_array()
                    .expect("tasks")
                    .iter()
                    .map(|t| json!({"id": t["id"], "name": t["name"]}))
                    .collect(),
            ))
        }
        "create_task" => {
            let id = next_id(store);
            let task = &params["task"];
            let mut shape = 0;
            let mut annotations = serde_json::Map::new();
            for s in task["samples"].as_array().ok_or("no samples")? {
                let mut fields = serde_json::Map::new();
                for (field, labels) in s["labels"].as_object().ok_or("no labels")? {
                    // Annotators start from the uploaded labels, which keep our ids.
                    let list: Vec<Value> = labels
                        .as_array()
                        .ok_or("labels not a list")?
                        .iter()
                        .map(|l| {
                            shape += 1;
                            json!({"backend_id": format!("{id}-{shape}"), "label": l})
                        })
                        .collect();
                    fields.insert(field.clone(), Value::Array(list));
                }
                // A video's frame labels: one object per label and frame, naming its frame.
                for (field, labels) in s["frame_labels"].as_object().into_iter().flatten() {
                    let list: Vec<Value> = labels
                        .as_array()
                        .ok_or("frame labels not a list")?
                        .iter()
                        .map(|l| {
                            shape += 1;
                            json!({"backend_id": format!("{id}-{shape}"), "frame": l["frame"], "label": l["label"]})
                        })
                        .collect();
                    fields.insert(field.clone(), Value::Array(list));
                }
                annotations.insert(
                    s["sample_id"].as_str().ok_or("no sample id")?.to_string(),
                    Value::Object(fields),
                );
            }
            let t = json!({"id": id, "name": task["name"], "batch": task["batch"], "status": "annotation", "complete": false,
                           "samples": task["samples"].as_array().map(|a| a.iter().map(|s| s["sample_id"].clone()).collect::<Vec<_>>()),
                           "annotations": annotations});
            let p = project_mut(store, params)?;
            p["tasks"].as_array_mut().expect("tasks").push(t);
            Ok(json!({"id": id, "name": task["name"]}))
        }
        "update_schema" => {
            let p = project_mut(store, params)?;
            p["schema"] = params["schema"].clone();
            Ok(Value::Null)
        }
        "status" => {
            let wanted: Vec<&str> = params["tasks"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let p = project_mut(store, params)?;
            Ok(Value::Array(
                p["tasks"]
                    .as_array()
                    .expect("tasks")
                    .iter()
                    .filter(|t| wanted.contains(&t["id"].as_str().unwrap_or_default()))
                    .map(|t| json!({"id": t["id"], "status": t["status"], "complete": t["complete"]}))
                    .collect(),
            ))
        }
        "download" => {
            let wanted: Vec<&str> = params["tasks"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            // The cursor is the store's clock; tasks remember when annotators last changed them.
            let since: Option<u64> = params["since"].as_str().and_then(|s| s.parse().ok());
            let clock = store["clock"].as_u64().unwrap_or(0);
            let p = project_mut(store, params)?;
            let mut out = serde_json::Map::new();
            // Every sample the tasks hold, handed or not.
            let mut held = Vec::new();
            for t in p["tasks"].as_array().expect("tasks") {
                if !wanted.contains(&t["id"].as_str().unwrap_or_default()) {
                    continue;
                }
                let annotations = t["annotations"].as_object().expect("annotations");
                held.extend(annotations.keys().cloned());
                if since.is_none_or(|c| t["updated"].as_u64().unwrap_or(0) > c) {
                    for (sample, fields) in annotations {
                        out.insert(sample.clone(), fields.clone());
                    }
                }
            }
            let log = json!({"tasks": wanted, "since": params["since"], "samples": out.len()});
            match store["downloads"].as_array_mut() {
                Some(d) => d.push(log),
                None => store["downloads"] = json!([log]),
            }
            Ok(json!({"annotations": out, "cursor": clock.to_string(), "samples": held}))
        }
        "delete_project" => {
            let id = params["project"]["id"].clone();
            let ps = store["projects"].as_array_mut().expect("projects");
            let before = ps.len();
            ps.retain(|p| p["id"] != id);
            if ps.len() == before {
                return Err(format!("project {id} not found (HTTP 404)"));
            }
            Ok(Value::Null)
        }
        other => Err(format!("unknown method {other}")),
    }
}
