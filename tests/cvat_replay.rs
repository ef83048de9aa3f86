//! Replays every exchange recorded from a real CVAT 2.23.1 against the in-repo fake and
//! compares status codes, content types and response shapes.
//!
//! Recorded ids are mapped to the fake's as they appear in responses (per kind: the real
//! server numbers labels, specs, shapes... separately) and substituted into later paths,
//! queries and bodies. Redacted credentials become the fake's; uploaded files, which the
//! recording only describes, are synthesised (PNGs of the size the server later reported).

#[path = "cvat_replay/behaviour.rs"]
mod behaviour;
mod cvat_fake;

use base64::Engine;
use cvat_fake::{ADMIN_PASSWORD, ADMIN_USERNAME, ANNOTATOR_PASSWORD, FakeCvat, media};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const RECORDING: &str = include_str!("fixtures/cvat/exchanges-2.23.1.jsonl");
const TINY_MP4: &[u8] = include_bytes!("fixtures/cvat/tiny.mp4");
const RECORDED_BASE: &str = "http://127.0.0.1:18080";

/// Exchanges whose request carried credentials that must not be the working ones.
const BAD_TOKEN_STEPS: &[&str] = &["1.auth.users_self.bad_token"];
/// Files the recording says could not be decoded (PIL.UnidentifiedImageError).
const BROKEN_FILES: &[&str] = &["broken.png"];
/// Exchanges that cannot be replayed, with the reason. Keep this empty if at all possible.
const SKIPPED: &[(u64, &str)] = &[];

/// Keys whose string values are server-chosen and so not compared.
const MASKED_STRINGS: &[&str] = &[
    "url",
    "next",
    "previous",
    "key",
    "rq_id",
    "svg",
    "color",
    "last_login",
    "date_joined",
];

#[derive(Default)]
struct Ids {
    /// (kind, recorded id) -> fake id.
    map: HashMap<(String, u64), u64>,
    /// Recorded TUS upload ids -> the fake's.
    uuids: HashMap<String, String>,
    admin_key: String,
}

impl Ids {
    fn get(&self, kind: &str, id: u64) -> u64 {
        *self.map.get(&(kind.to_string(), id)).unwrap_or(&id)
    }
}

/// The kind of object a JSON key leads into, given the enclosing kind.
fn child_kind(parent: &str, key: &str) -> &'static str {
    match (parent, key) {
        (_, "owner" | "assignee") => "user",
        ("label", "attributes") => "spec",
        ("label", "sublabels") | ("project" | "task", "labels") => "label",
        ("anno", "tags") => "tag",
        ("anno", "shapes") | ("shape", "elements") => "shape",
        ("anno", "tracks") | ("track", "elements") => "track",
        ("track", "shapes") => "tshape",
        (_, "operation") => "op",
        _ => "",
    }
}

/// The kind of id a scalar key holds inside an object of `kind`.
fn id_kind(kind: &str, key: &str) -> Option<String> {
    match key {
        "id" if !kind.is_empty() && kind != "op" && kind != "request" => Some(kind.into()),
        "project_id" => Some("project".into()),
        "task_id" => Some("task".into()),
        // A task's `data` id is the task's own number on the real server.
        "data" if kind == "task" => Some("task".into()),
        "job_id" => Some("job".into()),
        "label_id" | "parent_id" => Some("label".into()),
        "spec_id" => Some("spec".into()),
        "assignee_id" | "assignee" | "owner" => Some("user".into()),
        _ => None,
    }
}

fn root_kind(path: &str) -> &'static str {
    let seg: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
    match seg.as_slice() {
        [.., "annotations"] => "anno",
        [_, _, "data", ..] => "",
        ["users", ..] => "user",
        ["projects", ..] => "project",
        ["labels", ..] => "label",
        ["tasks", ..] => "task",
        ["jobs", ..] => "job",
        ["requests", ..] => "request",
        _ => "",
    }
}

/// Rewrites recorded ids in a request body to the fake's.
/// Passwords the recording holds redacted, and what the replay sends in their place.
const REDACTED_PASSWORDS: &[(&str, &str)] = &[
    ("<redacted:admin password>", ADMIN_PASSWORD),
    ("<redacted:annotator password>", ANNOTATOR_PASSWORD),
];

fn map_body(ids: &Ids, kind: &str, v: &Value) -> Value {
    match v {
        Value::String(s) => REDACTED_PASSWORDS
            .iter()
            .find(|(marker, _)| marker == s)
            .map_or_else(|| v.clone(), |(_, password)| json!(password)),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let mapped = match (id_kind(kind, k), x.as_u64()) {
                        (Some(ik), Some(n)) => json!(ids.get(&ik, n)),
                        _ => map_body(ids, child_kind(kind, k), x),
                    };
                    (k.clone(), mapped)
                })
                .collect(),
        ),
        Value::Array(a) => a.iter().map(|x| map_body(ids, kind, x)).collect(),
        other => other.clone(),
    }
}

/// Rewrites ids inside a JSON-logic filter: `[{"var": "project_id"}, 21]`.
fn map_filter(ids: &Ids, v: &Value) -> Value {
    match v {
        Value::Array(a) => {
            let var = a.first().and_then(|f| f["var"].as_str()).map(String::from);
            a.iter()
                .map(|x| match (&var, x.as_u64()) {
                    (Some(name), Some(n)) => match id_kind("", name) {
                        Some(k) => json!(ids.get(&k, n)),
                        None => x.clone(),
                    },
                    _ => map_filter(ids, x),
                })
                .collect()
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), map_filter(ids, x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn map_path(ids: &Ids, path: &str) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    let mut out = vec![];
    for (i, s) in segs.iter().enumerate() {
        let prev = if i > 0 { segs[i - 1] } else { "" };
        let kind = match prev {
            "users" => "user",
            "projects" => "project",
            "labels" => "label",
            "tasks" => "task",
            "jobs" => "job",
            _ => "",
        };
        let mapped = match (kind, s.parse::<u64>()) {
            (k, Ok(n)) if !k.is_empty() => ids.get(k, n).to_string(),
            _ if prev == "requests" => map_rq(ids, s),
            _ => ids.uuids.get(*s).cloned().unwrap_or_else(|| s.to_string()),
        };
        out.push(mapped);
    }
    out.join("/")
}

fn map_rq(ids: &Ids, rq: &str) -> String {
    for prefix in ["create%3Atask-", "create:task-"] {
        if let Some(n) = rq.strip_prefix(prefix).and_then(|n| n.parse::<u64>().ok()) {
            return format!("{prefix}{}", ids.get("task", n));
        }
    }
    rq.to_string()
}

fn map_query(ids: &Ids, q: &Map<String, Value>) -> Vec<(String, String)> {
    q.iter()
        .map(|(k, v)| {
            let s = v.as_str().unwrap_or_default().to_string();
            let mapped = match (id_kind("", k), s.parse::<u64>()) {
                (Some(kind), Ok(n)) => ids.get(&kind, n).to_string(),
                _ if k == "filter" => serde_json::from_str::<Value>(&s)
                    .map(|f| map_filter(ids, &f).to_string())
                    .unwrap_or(s),
                _ => s,
            };
            (k.clone(), mapped)
        })
        .collect()
}

/// Frame sizes by file name, from every recorded meta answer.
fn recorded_dims(exchanges: &[Value]) -> HashMap<String, (u32, u32)> {
    let mut dims = HashMap::new();
    for e in exchanges {
        for f in e["response_body"]["frames"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let name = f["name"].as_str().unwrap_or_default().to_string();
            let (w, h) = (
                f["width"].as_u64().unwrap_or(1),
                f["height"].as_u64().unwrap_or(1),
            );
            dims.insert(name, (w as u32, h as u32));
        }
    }
    dims
}

/// A stand-in for an uploaded file the recording only describes.
fn synth_file(dims: &HashMap<String, (u32, u32)>, name: &str, len: usize) -> Vec<u8> {
    if BROKEN_FILES.contains(&name) {
        return vec![b'x'; len];
    }
    if name.ends_with(".mp4") {
        return TINY_MP4.to_vec();
    }
    if !name.ends_with(".png") {
        return vec![b'n'; len];
    }
    let (w, h) = dims.get(name).copied().unwrap_or((64, 48));
    let mut png = media::png(w, h);
    // Bytes after IEND are ignored by decoders; padding keeps the recorded length.
    if png.len() < len {
        png.resize(len, 0);
    }
    png
}

fn multipart_body(dims: &HashMap<String, (u32, u32)>, parts: &[Value]) -> (String, Vec<u8>) {
    let boundary = "fakecvatreplayboundary0123456789";
    let mut body = vec![];
    for p in parts {
        body.extend(format!("--{boundary}\r\n").as_bytes());
        let field = p["field"].as_str().unwrap_or_default();
        match p["filename"].as_str() {
            Some(name) => {
                let ct = p["content_type"]
                    .as_str()
                    .unwrap_or("application/octet-stream");
                body.extend(
                    format!(
                        "Content-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                let len = p["bytes"].as_u64().unwrap_or(0) as usize;
                body.extend(synth_file(dims, name, len));
            }
            None => {
                body.extend(
                    format!("Content-Disposition: form-data; name=\"{field}\"\r\n\r\n").as_bytes(),
                );
                body.extend(p["value"].as_str().unwrap_or_default().as_bytes());
            }
        }
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Bytes of files being sent through TUS, by recorded upload id.
#[derive(Default)]
struct TusFiles {
    pending: HashMap<String, Vec<u8>>,
}

struct Outcome {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

async fn send(
    client: &reqwest::Client,
    fake: &FakeCvat,
    ids: &Ids,
    dims: &HashMap<String, (u32, u32)>,
    tus: &mut TusFiles,
    e: &Value,
) -> Outcome {
    let path = map_path(ids, e["path"].as_str().unwrap_or_default());
    let query = map_query(ids, e["query"].as_object().unwrap_or(&Map::new()));
    let method = reqwest::Method::from_bytes(e["method"].as_str().unwrap_or("GET").as_bytes())
        .expect("method");
    let mut rb = client
        .request(method, format!("{}{path}", fake.base_url()))
        .query(&query);
    let step = e["step"].as_str().unwrap_or_default();
    let mut upload_name = None;
    for (k, v) in e["request_headers"].as_object().into_iter().flatten() {
        let v = v.as_str().unwrap_or_default();
        let value = match (k.to_lowercase().as_str(), v) {
            ("authorization", "Token <redacted>") if BAD_TOKEN_STEPS.contains(&step) => {
                format!("Token {}", "0".repeat(40))
            }
            ("authorization", "Token <redacted>") => format!("Token {}", ids.admin_key),
            ("authorization", "Basic <redacted>") => {
                let raw = format!("{ADMIN_USERNAME}:{ADMIN_PASSWORD}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            ("origin", v) => v.replace(RECORDED_BASE, fake.base_url()),
            ("content-type", v) if v.starts_with("multipart/") => continue,
            ("upload-metadata", v) => {
                upload_name = v
                    .strip_prefix("filename ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).to_string());
                v.to_string()
            }
            (_, v) => v.to_string(),
        };
        rb = rb.header(k.as_str(), value);
    }
    let body = &e["request_body"];
    if let Some(parts) = body["multipart"].as_array() {
        let (ct, bytes) = multipart_body(dims, parts);
        rb = rb.header("content-type", ct).body(bytes);
    } else if body["binary"].as_bool() == Some(true) {
        let len = body["bytes"].as_u64().unwrap_or(0) as usize;
        let upload = e["path"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or("");
        let offset: usize = e["request_headers"]["Upload-Offset"]
            .as_str()
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let file = tus.pending.get(upload).cloned().unwrap_or_default();
        let chunk = file.get(offset..offset + len).map(<[u8]>::to_vec);
        rb = rb.body(chunk.unwrap_or_else(|| vec![0; len]));
    } else if !body.is_null() {
        rb = rb.body(map_body(ids, root_kind(&path), body).to_string());
    }
    let resp = rb.send().await.expect("request to the fake");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let out = Outcome {
        status,
        headers,
        body: resp.bytes().await.expect("body").to_vec(),
    };
    if let (Some(name), Some(len)) = (upload_name, e["request_headers"]["Upload-Length"].as_str()) {
        let len: usize = len.parse().unwrap_or(0);
        let recorded = e["response_headers"]["location"]
            .as_str()
            .unwrap_or_default();
        let id = recorded.rsplit('/').next().unwrap_or_default().to_string();
        tus.pending.insert(id, synth_file(dims, &name, len));
    }
    out
}

/// Compares a recorded JSON value with the fake's, learning id mappings on the way.
struct Cmp<'a> {
    ids: &'a mut Ids,
    diffs: Vec<String>,
}

impl Cmp<'_> {
    fn value(&mut self, path: &str, kind: &str, key: &str, rec: &Value, got: &Value) {
        match (rec, got) {
            (Value::Object(r), Value::Object(g)) => self.object(path, kind, r, g),
            (Value::Array(r), Value::Array(g)) => self.array(path, kind, key, r, g),
            (Value::String(r), Value::String(g)) => self.string(path, key, r, g),
            (Value::Number(r), Value::Number(g)) => {
                if r.is_f64() != g.is_f64() || r.as_f64() != g.as_f64() {
                    self.diffs.push(format!("{path}: recorded {r}, fake {g}"));
                }
            }
            (r, g) if r == g => {}
            (r, g) => self.diffs.push(format!("{path}: recorded {r}, fake {g}")),
        }
    }

    /// For an object whose id is not known yet: the unused fake object it differs least from.
    fn closest(
        &self,
        (path, kind, key): (&str, &str, &str),
        rv: &Value,
        g: &[Value],
        used: &[bool],
        fallback: usize,
    ) -> usize {
        if !rv.is_object() {
            return fallback;
        }
        let mut best = (usize::MAX, fallback);
        for (j, gv) in g.iter().enumerate().filter(|(j, _)| !used[*j]) {
            let mut scratch = Ids {
                map: self.ids.map.clone(),
                ..Ids::default()
            };
            let mut trial = Cmp {
                ids: &mut scratch,
                diffs: vec![],
            };
            trial.value(path, kind, key, rv, gv);
            if trial.diffs.len() < best.0 {
                best = (trial.diffs.len(), j);
            }
        }
        best.1
    }

    fn id(&mut self, path: &str, kind: &str, rec: u64, got: u64) {
        let key = (kind.to_string(), rec);
        match self.ids.map.get(&key) {
            Some(&want) if want != got => self.diffs.push(format!(
                "{path}: recorded {kind} {rec} is fake {want}, got {got}"
            )),
            Some(_) => {}
            None => {
                self.ids.map.insert(key, got);
            }
        }
    }

    fn string(&mut self, path: &str, key: &str, rec: &str, got: &str) {
        let masked = MASKED_STRINGS.contains(&key) || key.ends_with("_date") || key == "id";
        let digits = |s: &str| {
            s.chars()
                .filter(|c| !c.is_ascii_digit())
                .collect::<String>()
        };
        // Messages naming ids (`spec_id \`120\` is invalid`, `#99`, a data dir) name the fake's.
        let names_ids = key == "message" || rec.contains('`') || rec.contains('#');
        let same = masked || rec == got || (names_ids && digits(rec) == digits(got));
        if !same {
            self.diffs
                .push(format!("{path}: recorded {rec:?}, fake {got:?}"));
        }
    }

    fn object(&mut self, path: &str, kind: &str, r: &Map<String, Value>, g: &Map<String, Value>) {
        let rk: Vec<&String> = r.keys().collect();
        let gk: Vec<&String> = g.keys().collect();
        let missing: Vec<_> = rk.iter().filter(|k| !g.contains_key(**k)).collect();
        let extra: Vec<_> = gk.iter().filter(|k| !r.contains_key(**k)).collect();
        if !missing.is_empty() || !extra.is_empty() {
            self.diffs.push(format!(
                "{path}: keys missing in fake {missing:?}, extra in fake {extra:?}"
            ));
        }
        for (k, rv) in r {
            if let Some(gv) = g.get(k) {
                if let (Some(ik), Some(rn), Some(gn)) = (id_kind(kind, k), rv.as_u64(), gv.as_u64())
                {
                    self.id(&format!("{path}.{k}"), &ik, rn, gn);
                    continue;
                }
                let ck = child_kind(kind, k);
                let ck = if k == "results" { kind } else { ck };
                self.value(&format!("{path}.{k}"), ck, k, rv, gv);
            }
        }
    }

    fn array(&mut self, path: &str, kind: &str, key: &str, r: &[Value], g: &[Value]) {
        if r.len() != g.len() {
            self.diffs.push(format!(
                "{path}: recorded {} items, fake {}",
                r.len(),
                g.len()
            ));
            return;
        }
        // Objects with known ids (or spec ids) are matched by id: the server's order of
        // annotations, elements and attributes is not defined.
        let mut used = vec![false; g.len()];
        for (i, rv) in r.iter().enumerate() {
            let (field, id_of) = if rv.get("spec_id").is_some() {
                ("spec_id", "spec")
            } else {
                ("id", kind)
            };
            let known = rv[field]
                .as_u64()
                .filter(|_| !id_of.is_empty())
                .and_then(|id| self.ids.map.get(&(id_of.to_string(), id)).copied());
            let j = known
                .and_then(|want| g.iter().position(|gv| gv[field].as_u64() == Some(want)))
                .filter(|j| !used[*j])
                .unwrap_or_else(|| self.closest((path, kind, key), rv, g, &used, i));
            used[j] = true;
            self.value(&format!("{path}[{i}]"), kind, key, rv, &g[j]);
        }
    }
}

fn compare(ids: &mut Ids, e: &Value, got: &Outcome) -> Vec<String> {
    let mut diffs = vec![];
    let status = e["status"].as_u64().unwrap_or(0) as u16;
    if status != got.status {
        diffs.push(format!("status: recorded {status}, fake {}", got.status));
    }
    let rec_headers = e["response_headers"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in &rec_headers {
        match got.headers.get(k) {
            None => diffs.push(format!("header {k}: missing in fake")),
            Some(g) if k == "content-type" && g != v.as_str().unwrap_or_default() => {
                diffs.push(format!("header content-type: recorded {v}, fake {g}"))
            }
            Some(g) if k == "location" => learn_location(ids, v.as_str().unwrap_or_default(), g),
            _ => {}
        }
    }
    if rec_headers.get("content-type").is_none() && got.headers.contains_key("content-type") {
        diffs.push("header content-type: not recorded, but sent by the fake".into());
    }
    let rec = &e["response_body"];
    if rec.is_null() {
        if !got.body.is_empty() {
            diffs.push(format!(
                "body: recorded empty, fake sent {} bytes",
                got.body.len()
            ));
        }
    } else if rec["binary"].as_bool() == Some(true) {
        if got.body.is_empty() {
            diffs.push("body: recorded binary, fake sent nothing".into());
        }
    } else if let Some(text) = rec["text"]
        .as_str()
        .filter(|_| rec.get("content_type").is_some())
    {
        if String::from_utf8_lossy(&got.body) != text {
            diffs.push(format!("body: recorded text {text:?}"));
        }
    } else {
        match serde_json::from_slice::<Value>(&got.body) {
            Ok(g) => {
                let mut cmp = Cmp { ids, diffs: vec![] };
                let kind = root_kind(e["path"].as_str().unwrap_or_default());
                cmp.value("$", kind, "", rec, &g);
                diffs.extend(cmp.diffs);
                if e["step"] == "1.auth.login.ok" {
                    ids.admin_key = g["key"].as_str().unwrap_or_default().to_string();
                }
            }
            Err(_) => diffs.push(format!(
                "body: not JSON: {:?}",
                String::from_utf8_lossy(&got.body)
            )),
        }
    }
    diffs
}

fn learn_location(ids: &mut Ids, recorded: &str, got: &str) {
    let (r, g) = (
        recorded.rsplit('/').next().unwrap_or_default(),
        got.rsplit('/').next().unwrap_or_default(),
    );
    if r.contains('-') {
        ids.uuids.insert(r.to_string(), g.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_exchange_replays_against_the_fake() {
    let exchanges: Vec<Value> = RECORDING
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("exchange json"))
        .collect();
    let dims = recorded_dims(&exchanges);
    let fake = FakeCvat::start();
    let client = reqwest::Client::new();
    let mut ids = Ids::default();
    let mut tus = TusFiles::default();
    let (mut matched, mut failed, mut skipped) = (0, vec![], 0);
    for e in &exchanges {
        let seq = e["seq"].as_u64().unwrap_or(0);
        if SKIPPED.iter().any(|(s, _)| *s == seq) {
            skipped += 1;
            continue;
        }
        let got = send(&client, &fake, &ids, &dims, &mut tus, e).await;
        let diffs = compare(&mut ids, e, &got);
        if diffs.is_empty() {
            matched += 1;
        } else {
            failed.push((
                seq,
                e["step"].as_str().unwrap_or_default().to_string(),
                diffs,
            ));
        }
    }
    for (seq, step, diffs) in failed.iter().take(15) {
        eprintln!("--- #{seq} {step}");
        for d in diffs.iter().take(12) {
            eprintln!("    {d}");
        }
    }
    println!(
        "replayed {} exchanges: {matched} matched, {} mismatched, {skipped} skipped",
        exchanges.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} exchanges differ from the recording",
        failed.len()
    );
}

/// The recording is committed: it holds no working credential of the server it came from.
#[test]
fn the_recording_holds_no_credentials() {
    // Deliberately wrong, to record the refusal: not a secret.
    const NOT_SECRETS: &[&str] = &["wrong-password"];
    fn check(step: &str, key: &str, v: &Value, found: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| check(step, k, x, found)),
            Value::Array(a) => a.iter().for_each(|x| check(step, key, x, found)),
            Value::String(s) => {
                let k = key.to_lowercase();
                let secret_key = [
                    "password", "token", "secret", "key", "cookie", "session", "csrf",
                ]
                .iter()
                .any(|w| k.contains(w))
                    && k != "keyframe";
                let credential = ["Token ", "Bearer ", "Basic "]
                    .iter()
                    .any(|scheme| s.starts_with(scheme) && !s.ends_with("<redacted>"));
                if (secret_key && !s.starts_with("<redacted") && !NOT_SECRETS.contains(&s.as_str()))
                    || credential
                {
                    found.push(format!("{step}: {key}"));
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    for line in RECORDING.lines() {
        let e: Value = serde_json::from_str(line).expect("exchange");
        let step = e["step"].as_str().unwrap_or_default().to_string();
        for part in [
            "request_headers",
            "request_body",
            "response_headers",
            "response_body",
            "query",
        ] {
            check(&step, part, &e[part], &mut found);
        }
    }
    assert!(found.is_empty(), "credentials in the recording: {found:#?}");
    for password in [ADMIN_PASSWORD, ANNOTATOR_PASSWORD] {
        assert!(
            !RECORDING.contains(password),
            "the fake's own password is not the recording's"
        );
    }
}
