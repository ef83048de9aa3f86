//! Projects and labels: label sets with attribute specs, skeleton sublabels, label patches.

use super::http::{Req, Resp, json_logic_filter, paginate};
use super::model::{Attr, Label, LabelOwner, Project, State};
use serde_json::{Map, Value, json};

const INPUT_TYPES: &[&str] = &["select", "radio", "checkbox", "number", "text"];

/// Checks a label list as the serializer did: field errors first, then uniqueness.
pub fn validate_labels(labels: &[Value]) -> Result<(), Resp> {
    let mut any = false;
    let errors: Vec<Value> = labels
        .iter()
        .map(|l| {
            let attrs: Vec<Value> = l["attributes"]
                .as_array()
                .map(|a| a.iter().map(attr_field_errors).collect())
                .unwrap_or_default();
            if attrs
                .iter()
                .any(|e| e.as_object().is_some_and(|m| !m.is_empty()))
            {
                any = true;
                json!({ "attributes": attrs })
            } else {
                json!({})
            }
        })
        .collect();
    if any {
        return Err(Resp::json(400, json!({ "labels": errors })));
    }
    let mut names: Vec<&str> = labels.iter().filter_map(|l| l["name"].as_str()).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Resp::list_error("All label names must be unique"));
    }
    for l in labels {
        let mut seen: Vec<&str> = vec![];
        for a in l["attributes"].as_array().into_iter().flatten() {
            let n = a["name"].as_str().unwrap_or_default();
            if seen.contains(&n) {
                return Err(Resp::list_error(&format!(
                    "Duplicate attribute with name '{n}' exists"
                )));
            }
            seen.push(n);
        }
    }
    Ok(())
}

fn attr_field_errors(a: &Value) -> Value {
    let mut m = Map::new();
    let it = a["input_type"].as_str().unwrap_or_default();
    if !INPUT_TYPES.contains(&it) {
        m.insert(
            "input_type".into(),
            json!([format!("\"{it}\" is not a valid choice.")]),
        );
    }
    if a.get("values").is_none() {
        m.insert("values".into(), json!(["This field is required."]));
    }
    Value::Object(m)
}

fn new_attr(state: &mut State, a: &Value) -> Attr {
    attr_from(state.seq.next("attr"), a)
}

/// An attribute spec from its request form, with the given id.
fn attr_from(id: u64, a: &Value) -> Attr {
    let mut values: Vec<String> = a["values"]
        .as_array()
        .map(|v| v.iter().map(value_string).collect())
        .unwrap_or_default();
    if values.is_empty() {
        values.push(String::new());
    }
    Attr {
        id,
        name: a["name"].as_str().unwrap_or_default().into(),
        mutable: a["mutable"].as_bool().unwrap_or(false),
        input_type: a["input_type"].as_str().unwrap_or_default().into(),
        default_value: a["default_value"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| values[0].clone()),
        values,
    }
}

fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Creates a label (and its sublabels) from its request form.
pub fn create_label(state: &mut State, owner: LabelOwner, parent: Option<u64>, l: &Value) -> u64 {
    let id = state.seq.next("label");
    let color = match l["color"].as_str() {
        Some(c) if !c.is_empty() => c.to_string(),
        _ => state.next_color(),
    };
    let attrs = l["attributes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| new_attr(state, a))
        .collect();
    state.labels.push(Label {
        id,
        name: l["name"].as_str().unwrap_or_default().into(),
        color,
        kind: l["type"].as_str().unwrap_or("any").into(),
        attrs,
        owner,
        parent,
        svg: None,
    });
    let mut svg = l["svg"].as_str().unwrap_or_default().to_string();
    for sub in l["sublabels"].as_array().into_iter().flatten() {
        let sid = create_label(state, owner, Some(id), sub);
        // The server swaps element names for ids in the skeleton's svg.
        let name = sub["name"].as_str().unwrap_or_default();
        svg = svg.replace(
            &format!("data-label-name=\"{name}\""),
            &format!("data-label-id=\"{sid}\""),
        );
    }
    if l.get("svg").is_some() {
        if let Some(lab) = state.labels.iter_mut().find(|x| x.id == id) {
            lab.svg = Some(svg);
        }
    }
    id
}

fn attr_json(a: &Attr) -> Value {
    json!({
        "id": a.id, "name": a.name, "mutable": a.mutable, "input_type": a.input_type,
        "default_value": a.default_value, "values": a.values,
    })
}

/// A top-level label as `/api/labels` shows it.
pub fn label_json(state: &State, l: &Label) -> Value {
    let subs: Vec<Value> = state
        .labels
        .iter()
        .filter(|s| s.parent == Some(l.id))
        .map(|s| {
            json!({
                "id": s.id, "name": s.name, "color": s.color,
                "attributes": s.attrs.iter().map(attr_json).collect::<Vec<_>>(),
                "type": s.kind, "has_parent": true,
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert("id".into(), json!(l.id));
    m.insert("name".into(), json!(l.name));
    m.insert("color".into(), json!(l.color));
    m.insert(
        "attributes".into(),
        l.attrs.iter().map(attr_json).collect::<Vec<_>>().into(),
    );
    m.insert("type".into(), json!(l.kind));
    m.insert("sublabels".into(), json!(subs));
    match l.owner {
        LabelOwner::Project(p) => m.insert("project_id".into(), json!(p)),
        LabelOwner::Task(t) => m.insert("task_id".into(), json!(t)),
    };
    m.insert("parent_id".into(), json!(l.parent));
    m.insert("has_parent".into(), json!(l.parent.is_some()));
    if let Some(svg) = &l.svg {
        m.insert("svg".into(), json!(svg));
    }
    Value::Object(m)
}

/// `GET /api/labels?project_id=|task_id=|job_id=` (top-level labels only, by id).
pub fn list_labels(state: &State, req: &Req) -> Resp {
    let owner = if let Some(p) = req.q("project_id") {
        Some(LabelOwner::Project(p.parse().unwrap_or(0)))
    } else {
        let task = match (req.q("task_id"), req.q("job_id")) {
            (Some(t), _) => t.parse().ok(),
            (None, Some(j)) => {
                let j: u64 = j.parse().unwrap_or(0);
                state.jobs.iter().find(|x| x.id == j).map(|x| x.task)
            }
            _ => None,
        };
        task.and_then(|t| state.task(t))
            .map(|t| state.task_label_owner(t))
    };
    let parent: Option<u64> = req.q("parent_id").and_then(|p| p.parse().ok());
    let items = state
        .labels
        .iter()
        .filter(|l| owner.is_none_or(|o| l.owner == o))
        .filter(|l| l.parent.is_none() && parent.is_none())
        .map(|l| label_json(state, l))
        .collect();
    paginate(req, "labels", items)
}

/// `GET /api/labels/{id}`.
pub fn get_label(state: &State, id: u64) -> Resp {
    match state.labels.iter().find(|l| l.id == id) {
        Some(l) => Resp::json(200, label_json(state, l)),
        None => Resp::not_found("Label"),
    }
}

/// Applies a `labels` patch (create, update by id, delete by id) to a label set.
pub fn patch_labels(state: &mut State, owner: LabelOwner, labels: &[Value]) -> Result<(), Resp> {
    for l in labels {
        if let Some(id) = l["id"].as_u64() {
            if !state.labels.iter().any(|x| x.id == id && x.owner == owner) {
                return Err(Resp::detail(
                    404,
                    &format!("Not found label with id #{id} to change"),
                ));
            }
        }
    }
    let fresh: Vec<Value> = labels
        .iter()
        .filter(|l| l.get("id").is_none())
        .cloned()
        .collect();
    validate_labels(&fresh)?;
    for l in labels {
        match l["id"].as_u64() {
            None => {
                create_label(state, owner, None, l);
            }
            Some(id) if l["deleted"].as_bool() == Some(true) => {
                state.labels.retain(|x| x.id != id && x.parent != Some(id));
            }
            Some(id) => update_label(state, id, l),
        }
    }
    Ok(())
}

fn update_label(state: &mut State, id: u64, l: &Value) {
    // A patch that leaves out the colour gets a new automatic one, as recorded.
    let color = match l["color"].as_str() {
        Some(c) => c.to_string(),
        None => state.next_color(),
    };
    let mut new_attrs = vec![];
    let existing: Vec<Attr> = state
        .labels
        .iter()
        .find(|x| x.id == id)
        .map(|x| x.attrs.clone())
        .unwrap_or_default();
    let mut attrs = existing;
    for a in l["attributes"].as_array().into_iter().flatten() {
        let name = a["name"].as_str().unwrap_or_default();
        let known = a["id"]
            .as_u64()
            .and_then(|aid| attrs.iter().position(|x| x.id == aid))
            .or_else(|| attrs.iter().position(|x| x.name == name));
        match known {
            Some(i) => {
                attrs[i] = attr_from(attrs[i].id, a);
            }
            None => new_attrs.push(a.clone()),
        }
    }
    for a in &new_attrs {
        let attr = new_attr(state, a);
        attrs.push(attr);
    }
    if let Some(lab) = state.labels.iter_mut().find(|x| x.id == id) {
        lab.color = color;
        lab.attrs = attrs;
        if let Some(n) = l["name"].as_str() {
            lab.name = n.into();
        }
        if let Some(t) = l["type"].as_str() {
            lab.kind = t.into();
        }
    }
}

fn project_json(state: &State, base: &str, p: &Project) -> Value {
    let tasks: Vec<_> = state
        .tasks
        .iter()
        .filter(|t| t.project == Some(p.id))
        .collect();
    let mut subsets: Vec<&str> = tasks
        .iter()
        .map(|t| t.subset.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    subsets.sort();
    subsets.dedup();
    json!({
        "url": format!("{base}/api/projects/{}", p.id), "id": p.id, "name": p.name,
        "owner": state.user_brief(base, Some(p.owner)), "assignee": null, "guide_id": null,
        "bug_tracker": p.bug_tracker, "created_date": p.created, "updated_date": p.updated,
        "status": "annotation", "dimension": null, "organization": null,
        "target_storage": null, "source_storage": null,
        "tasks": {"count": tasks.len(), "url": format!("{base}/api/tasks?project_id={}", p.id)},
        "labels": {"url": format!("{base}/api/labels?project_id={}", p.id)},
        "assignee_updated_date": null, "task_subsets": subsets,
    })
}

/// `POST /api/projects`.
pub fn create_project(state: &mut State, req: &Req, caller: u64) -> Resp {
    let body = req.json();
    let labels = body["labels"].as_array().cloned().unwrap_or_default();
    if let Err(e) = validate_labels(&labels) {
        return e;
    }
    let id = state.seq.next("project");
    let stamp = state.now();
    state.projects.push(Project {
        id,
        name: body["name"].as_str().unwrap_or_default().into(),
        bug_tracker: body["bug_tracker"].as_str().unwrap_or_default().into(),
        owner: caller,
        created: stamp.clone(),
        updated: stamp,
    });
    for l in &labels {
        create_label(state, LabelOwner::Project(id), None, l);
    }
    let p = state.projects.last().expect("just pushed").clone();
    let url = format!("{}/api/projects/{id}", req.base);
    Resp::json(201, project_json(state, &req.base, &p)).with("location", &url)
}

/// `GET /api/projects` with `name` (exact), `search` (substring) and `filter`.
pub fn list_projects(state: &State, req: &Req) -> Resp {
    let search = req.q("search").map(str::to_lowercase);
    let mut items: Vec<Value> = state
        .projects
        .iter()
        .map(|p| project_json(state, &req.base, p))
        .filter(|p| req.q("name").is_none_or(|n| p["name"] == n))
        .filter(|p| {
            search.as_ref().is_none_or(|s| {
                [&p["name"], &p["owner"]["username"], &p["status"]]
                    .iter()
                    .any(|f| f.as_str().unwrap_or_default().to_lowercase().contains(s))
            })
        })
        .collect();
    items.reverse();
    match json_logic_filter(req, items, project_field) {
        Ok(items) => paginate(req, "projects", items),
        Err(e) => e,
    }
}

fn project_field(p: &Value, name: &str) -> Option<Value> {
    match name {
        "name" | "status" | "id" | "dimension" => Some(p[name].clone()),
        "owner" => Some(p["owner"]["username"].clone()),
        "assignee" => Some(p["assignee"]["username"].clone()),
        _ => None,
    }
}

/// `GET|PATCH|DELETE /api/projects/{id}`.
pub fn one_project(state: &mut State, req: &Req, id: u64) -> Resp {
    let Some(pos) = state.projects.iter().position(|p| p.id == id) else {
        return Resp::not_found("Project");
    };
    match req.method.as_str() {
        "GET" => {
            let p = state.projects[pos].clone();
            Resp::json(200, project_json(state, &req.base, &p))
        }
        "PATCH" => {
            let body = req.json();
            if let Some(labels) = body["labels"].as_array() {
                if let Err(e) = patch_labels(state, LabelOwner::Project(id), labels) {
                    return e;
                }
            }
            let stamp = state.now();
            let p = &mut state.projects[pos];
            if let Some(n) = body["name"].as_str() {
                p.name = n.into();
            }
            p.updated = stamp;
            let p = p.clone();
            Resp::json(200, project_json(state, &req.base, &p))
        }
        "DELETE" => {
            state.projects.remove(pos);
            state.labels.retain(|l| l.owner != LabelOwner::Project(id));
            let tasks: Vec<u64> = state
                .tasks
                .iter()
                .filter(|t| t.project == Some(id))
                .map(|t| t.id)
                .collect();
            for t in tasks {
                super::tasks::delete_task(state, t);
            }
            Resp::empty(204)
        }
        m => Resp::detail(405, &format!("Method \"{m}\" not allowed.")),
    }
}
