//! Direct tests of behaviour the recording implies, beyond replaying it verbatim.

use super::cvat_fake::{FakeCvat, media};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// A logged-in client of one fake.
struct Api {
    fake: FakeCvat,
    http: reqwest::Client,
    key: String,
}

impl Api {
    async fn login() -> Api {
        let fake = FakeCvat::start();
        let http = reqwest::Client::new();
        let r: Value = http
            .post(format!("{}/api/auth/login", fake.base_url()))
            .json(&json!({"username": super::ADMIN_USERNAME, "password": super::ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let key = r["key"].as_str().expect("key").to_string();
        assert_eq!(key.len(), 40);
        Api { fake, http, key }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.fake.base_url()))
            .header("authorization", format!("Token {}", self.key))
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut rb = self.req(method, path);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A task with its own `car` label, given PNGs uploaded in one multipart request.
    async fn task_with_images(&self, segment_size: u64, names: &[&str]) -> u64 {
        let labels = json!([{"name": "car", "type": "rectangle", "attributes": [
            {"name": "parked", "input_type": "checkbox", "mutable": true, "values": ["false"],
             "default_value": "false"},
            {"name": "make", "input_type": "text", "mutable": false, "values": [],
             "default_value": "n/a"}]}]);
        let (status, task) = self
            .call(
                reqwest::Method::POST,
                "/api/tasks",
                Some(json!({"name": "t", "segment_size": segment_size, "labels": labels})),
            )
            .await;
        assert_eq!(status, 201, "{task}");
        let id = task["id"].as_u64().expect("task id");
        let mut form = Form::new()
            .text("image_quality", "75")
            .text("sorting_method", "predefined");
        for (i, n) in names.iter().enumerate() {
            form = form.part(
                format!("client_files[{i}]"),
                Part::bytes(media::png(8 + i as u32, 6)).file_name(n.to_string()),
            );
        }
        let r = self
            .req(reqwest::Method::POST, &format!("/api/tasks/{id}/data"))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status().as_u16(), 202);
        id
    }
}

#[tokio::test]
async fn background_request_is_started_then_finished_and_unknown_ids_are_404() {
    let api = Api::login().await;
    let id = api.task_with_images(0, &["a.png", "b.png"]).await;
    let path = format!("/api/requests/create%3Atask-{id}");
    assert_eq!(api.get(&path).await["status"], "started");
    let done = api.get(&path).await;
    assert_eq!(done["status"], "finished");
    assert_eq!(done["operation"]["task_id"], id);
    let r = api
        .req(reqwest::Method::GET, "/api/requests/create:task-999")
        .send()
        .await
        .expect("poll");
    assert_eq!(r.status().as_u16(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn broken_image_fails_the_request_and_leaves_an_empty_task() {
    let api = Api::login().await;
    let (_, task) = api
        .call(
            reqwest::Method::POST,
            "/api/tasks",
            Some(json!({"name": "b", "labels": [{"name": "x"}]})),
        )
        .await;
    let id = task["id"].as_u64().unwrap();
    let form = Form::new().part(
        "client_files[0]",
        Part::bytes(b"not a png".to_vec()).file_name("bad.png"),
    );
    let r = api
        .req(reqwest::Method::POST, &format!("/api/tasks/{id}/data"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let path = format!("/api/requests/create:task-{id}");
    api.get(&path).await;
    let failed = api.get(&path).await;
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .starts_with("PIL.UnidentifiedImageError")
    );
    let task = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(
        (task["size"].clone(), task["jobs"]["count"].clone()),
        (json!(0), json!(0))
    );
}

#[tokio::test]
async fn jobs_are_segments_of_segment_size_listed_newest_first() {
    let api = Api::login().await;
    let id = api
        .task_with_images(2, &["a.png", "b.png", "c.png", "d.png", "e.png"])
        .await;
    let jobs = api.get(&format!("/api/jobs?task_id={id}&sort=id")).await;
    let ranges: Vec<(u64, u64)> = jobs["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["start_frame"].as_u64().unwrap(),
                j["stop_frame"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, vec![(0, 1), (2, 3), (4, 4)]);
    let newest_first = api
        .get(&format!("/api/jobs?task_id={id}&page_size=2"))
        .await;
    assert_eq!(newest_first["results"][0]["start_frame"], 4);
    assert!(newest_first["next"].as_str().unwrap().contains("page=2"));
    let meta = api.get(&format!("/api/tasks/{id}/data/meta")).await;
    assert_eq!(meta["frames"][1]["name"], "b.png");
    assert_eq!(meta["frames"][1]["width"], 9);
}

#[tokio::test]
async fn writes_echo_raw_values_and_reads_normalise_them() {
    let api = Api::login().await;
    let id = api.task_with_images(0, &["a.png"]).await;
    let labels = api.get(&format!("/api/labels?task_id={id}")).await;
    let car = &labels["results"][0];
    let (parked, make) = (&car["attributes"][0]["id"], &car["attributes"][1]["id"]);
    let shape = json!({"type": "rectangle", "frame": 0, "label_id": car["id"],
                       "points": [1, 2, 3, 4], "attributes": [{"spec_id": parked, "value": true}]});
    let (status, echo) = api
        .call(
            reqwest::Method::PUT,
            &format!("/api/tasks/{id}/annotations"),
            Some(json!({"version": 0, "tags": [], "shapes": [shape], "tracks": []})),
        )
        .await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["shapes"][0]["points"].to_string(), "[1,2,3,4]");
    assert_eq!(
        echo["shapes"][0]["attributes"],
        json!([{"spec_id": parked, "value": "True"}])
    );
    assert_eq!(echo["shapes"][0]["group"], Value::Null);
    let got = api.get(&format!("/api/tasks/{id}/annotations")).await;
    let s = &got["shapes"][0];
    assert_eq!(s["points"].to_string(), "[1.0,2.0,3.0,4.0]");
    assert_eq!(s["rotation"].to_string(), "0.0");
    assert_eq!(
        s["attributes"],
        json!([{"spec_id": parked, "value": "True"}, {"spec_id": make, "value": "n/a"}])
    );
    assert_eq!(got["version"], 0);
}

#[tokio::test]
async fn patch_actions_and_their_errors() {
    let api = Api::login().await;
    let id = api.task_with_images(0, &["a.png", "b.png"]).await;
    let labels = api.get(&format!("/api/labels?task_id={id}")).await;
    let label = labels["results"][0]["id"].clone();
    let path = format!("/api/tasks/{id}/annotations");
    let patch = |action: &str| format!("{path}?action={action}");
    let shape =
        json!({"type": "polygon", "frame": 1, "label_id": label, "points": [0, 0, 5, 0, 5, 5]});
    let body = |s: Value| json!({"version": 0, "tags": [], "shapes": [s], "tracks": []});
    let (_, created) = api
        .call(
            reqwest::Method::PATCH,
            &patch("create"),
            Some(body(shape.clone())),
        )
        .await;
    let sid = created["shapes"][0]["id"].clone();
    let (status, err) = api
        .call(
            reqwest::Method::PATCH,
            &patch("delete"),
            Some(body(json!({"id": sid}))),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        err["shapes"][0]["label_id"],
        json!(["This field is required."])
    );
    let (status, err) = api
        .call(reqwest::Method::PATCH, &path, Some(body(shape.clone())))
        .await;
    assert_eq!(
        (status, err),
        (
            400,
            json!(["Please specify a correct 'action' for the request"])
        )
    );
    let mut out_of_range = shape.clone();
    out_of_range["frame"] = json!(7);
    let (status, echo) = api
        .call(
            reqwest::Method::PATCH,
            &patch("create"),
            Some(body(out_of_range)),
        )
        .await;
    assert_eq!((status, echo["shapes"].clone()), (200, json!([])));
    let mut full = shape;
    full["id"] = sid;
    let (status, _) = api
        .call(reqwest::Method::PATCH, &patch("delete"), Some(body(full)))
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.get(&path).await["shapes"], json!([]));
}

#[tokio::test]
async fn auth_and_content_negotiation_errors() {
    let api = Api::login().await;
    let url = format!("{}/api/users/self", api.fake.base_url());
    let anonymous = api.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let r = api
        .req(reqwest::Method::GET, "/api/users/self")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 406);
    assert_eq!(r.headers()["content-type"], "application/vnd.cvat+json");
}

#[tokio::test]
async fn dropping_the_fake_stops_the_server() {
    let api = Api::login().await;
    let url = format!("{}/api/server/about", api.fake.base_url());
    let http = api.http.clone();
    drop(api);
    assert!(http.get(&url).send().await.is_err());
}

/// FiftyOne's `frame_start`/`frame_stop`/`frame_step` arrive as `start_frame`, `stop_frame`
/// and `frame_filter=step=N`: the task holds every Nth frame of the range, and the task's
/// meta tells the range in the video's frame numbers (what FiftyOne remaps frames with).
#[tokio::test]
async fn a_video_range_and_step_choose_the_task_frames() {
    let api = Api::login().await;
    let labels = json!([{"name": "car", "type": "rectangle", "attributes": []}]);
    let (status, task) = api
        .call(
            reqwest::Method::POST,
            "/api/tasks",
            Some(json!({"name": "v", "labels": labels})),
        )
        .await;
    assert_eq!(status, 201, "{task}");
    let id = task["id"].as_u64().unwrap();
    let form = Form::new()
        .text("image_quality", "75")
        .text("start_frame", "2")
        .text("stop_frame", "8")
        .text("frame_filter", "step=3")
        .part(
            "client_files[0]",
            Part::bytes(super::TINY_MP4.to_vec()).file_name("tiny.mp4"),
        );
    let r = api
        .req(reqwest::Method::POST, &format!("/api/tasks/{id}/data"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 202);
    let meta = api.get(&format!("/api/tasks/{id}/data/meta")).await;
    assert_eq!(meta["size"], 3, "frames 2, 5 and 8: {meta}");
    assert_eq!(meta["start_frame"], 2);
    assert_eq!(meta["stop_frame"], 8);
    assert_eq!(meta["frame_filter"], "step=3");
    assert_eq!(api.get(&format!("/api/tasks/{id}")).await["size"], 3);
}
