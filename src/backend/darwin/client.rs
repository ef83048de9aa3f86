//! The V7 Darwin REST calls annoform makes (`recipes/v7.md` 1.3), each one request under the
//! shared HTTP policy (429 and 5xx retried with backoff). Paths are under the host root.

use crate::backend::base;
use crate::backend::http::{HttpClient, HttpError};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

/// Items per `GET items` page.
const PAGE_SIZE: usize = 500;

/// A Darwin dataset as `GET /api/datasets` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Dataset {
    pub id: u64,
    pub slug: String,
}

/// An item as `GET items` lists it (the fields annoform reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub id: String,
    pub name: String,
    pub path: String,
    pub status: String,
    #[serde(default)]
    pub processing_status: Option<String>,
}

impl Item {
    /// Whether Darwin is still taking the item in (`uploading` or `processing`).
    pub fn in_progress(&self) -> bool {
        matches!(self.status.as_str(), "uploading" | "processing")
            || self
                .processing_status
                .as_deref()
                .is_some_and(|s| s == "processing")
    }

    /// Whether Darwin failed to take the item in.
    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "error" | "errored" | "failed")
    }
}

/// A team-wide annotation class (the fields annoform reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Class {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub annotation_types: Vec<String>,
    #[serde(default)]
    pub datasets: Vec<Value>,
}

impl Class {
    /// The class's main annotation type (its first type, Darwin lists it first).
    pub fn main_type(&self) -> Option<&str> {
        self.annotation_types.first().map(String::as_str)
    }

    /// Whether the class is attached to dataset `id`.
    pub fn in_dataset(&self, id: u64) -> bool {
        self.datasets
            .iter()
            .any(|d| d.get("id").and_then(Value::as_u64) == Some(id))
    }
}

/// An export (release) as `GET .../exports` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Export {
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub download_url: Option<String>,
}

/// What a registration answered: the items made, and those refused (an item already
/// there is refused with `ALREADY_EXISTS` and carries the existing item's id).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Registered {
    #[serde(default)]
    pub items: Vec<Value>,
    #[serde(default)]
    pub blocked_items: Vec<Value>,
}

/// The API of one Darwin host, as one team (the API key's).
pub struct Api {
    pub http: HttpClient,
}

impl Api {
    /// `GET`, as JSON.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, HttpError> {
        base::call_json(&self.http, Method::GET, path, query, None::<&Value>).await
    }

    /// A request with a JSON body, as JSON.
    pub async fn send(&self, method: Method, path: &str, body: &Value) -> Result<Value, HttpError> {
        base::call_json(&self.http, method, path, &[], Some(body)).await
    }

    /// The team the API key belongs to.
    pub async fn team(&self) -> Result<String, HttpError> {
        let v = self.get("/api/users/token_info", &[]).await?;
        v["selected_team"]["slug"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| {
                self.http.incomplete(
                    &Method::GET,
                    "/api/users/token_info",
                    "no `selected_team.slug` in the answer",
                )
            })
    }

    /// The team's datasets.
    pub async fn datasets(&self) -> Result<Vec<Dataset>, HttpError> {
        let v = self.get("/api/datasets", &[]).await?;
        serde_json::from_value(v).map_err(|e| {
            self.http
                .incomplete(&Method::GET, "/api/datasets", &e.to_string())
        })
    }

    /// Creates dataset `name` (its slug is the name, when the name is a slug).
    pub async fn create_dataset(&self, name: &str) -> Result<Dataset, HttpError> {
        let v = self
            .send(Method::POST, "/api/datasets", &json!({ "name": name }))
            .await?;
        serde_json::from_value(v).map_err(|e| {
            self.http
                .incomplete(&Method::POST, "/api/datasets", &e.to_string())
        })
    }

    /// Archives a dataset (Darwin's soft delete).
    pub async fn archive_dataset(&self, id: &str) -> Result<(), HttpError> {
        self.send(
            Method::PUT,
            &format!("/api/datasets/{id}/archive"),
            &json!({}),
        )
        .await
        .map(drop)
    }

    /// Every item of a dataset, whose path starts with one of `paths` when given.
    pub async fn items(
        &self,
        team: &str,
        dataset: u64,
        paths: &[String],
    ) -> Result<Vec<Item>, HttpError> {
        let path = format!("/api/v2/teams/{team}/items");
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![
                ("dataset_ids[]", dataset.to_string()),
                ("page[size]", PAGE_SIZE.to_string()),
            ];
            query.extend(paths.iter().map(|p| ("item_paths[]", p.clone())));
            if let Some(c) = &cursor {
                query.push(("page[from]", c.clone()));
            }
            let v = self.get(&path, &query).await?;
            let items: Vec<Item> = serde_json::from_value(v["items"].clone())
                .map_err(|e| self.http.incomplete(&Method::GET, &path, &e.to_string()))?;
            out.extend(items);
            cursor = match &v["page"]["next"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            if cursor.is_none() {
                return Ok(out);
            }
        }
    }

    /// Registers items whose files are uploaded next.
    pub async fn register_upload(
        &self,
        team: &str,
        slug: &str,
        items: Vec<Value>,
    ) -> Result<Registered, HttpError> {
        let path = format!("/api/v2/teams/{team}/items/register_upload");
        let body =
            json!({"items": items, "options": {"handle_as_slices": false}, "dataset_slug": slug});
        self.registered(&path, &body).await
    }

    /// Registers items whose files are in an external storage already.
    pub async fn register_existing(
        &self,
        team: &str,
        slug: &str,
        storage: &str,
        items: Vec<Value>,
    ) -> Result<Registered, HttpError> {
        let path = format!("/api/v2/teams/{team}/items/register_existing");
        let body = json!({"items": items, "dataset_slug": slug, "storage_slug": storage});
        self.registered(&path, &body).await
    }

    async fn registered(&self, path: &str, body: &Value) -> Result<Registered, HttpError> {
        let v = self.send(Method::POST, path, body).await?;
        serde_json::from_value(v)
            .map_err(|e| self.http.incomplete(&Method::POST, path, &e.to_string()))
    }

    /// Where to `PUT` an upload's bytes.
    pub async fn sign(&self, team: &str, upload: &str) -> Result<String, HttpError> {
        let path = format!("/api/v2/teams/{team}/items/uploads/{upload}/sign");
        let v = self.get(&path, &[]).await?;
        v["upload_url"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| self.http.incomplete(&Method::GET, &path, "no `upload_url`"))
    }

    /// Tells Darwin an upload's bytes are in place.
    pub async fn confirm(&self, team: &str, upload: &str) -> Result<(), HttpError> {
        let path = format!("/api/v2/teams/{team}/items/uploads/{upload}/confirm");
        self.send(Method::POST, &path, &json!({})).await.map(drop)
    }

    /// Imports annotations into an item (appending: `overwrite` is the string `"false"`).
    pub async fn import(
        &self,
        team: &str,
        item: &str,
        annotations: &[Value],
    ) -> Result<(), HttpError> {
        let path = format!("/api/v2/teams/{team}/items/{item}/import");
        let body = json!({"annotations": annotations, "overwrite": "false"});
        self.send(Method::POST, &path, &body).await.map(drop)
    }

    /// Archives items of a dataset.
    pub async fn archive_items(
        &self,
        team: &str,
        dataset: u64,
        ids: &[String],
    ) -> Result<(), HttpError> {
        let path = format!("/api/v2/teams/{team}/items/archive");
        let body = json!({"filters": {"dataset_ids": [dataset], "item_ids": ids}});
        self.send(Method::POST, &path, &body).await.map(drop)
    }

    /// The team's annotation classes.
    pub async fn classes(&self, team: &str) -> Result<Vec<Class>, HttpError> {
        let path = format!("/api/teams/{team}/annotation_classes");
        let v = self.get(&path, &[("include_tags", "true".into())]).await?;
        serde_json::from_value(v["annotation_classes"].clone())
            .map_err(|e| self.http.incomplete(&Method::GET, &path, &e.to_string()))
    }

    /// Annotation type ids by name.
    pub async fn annotation_types(&self) -> Result<Vec<(String, u64)>, HttpError> {
        let v = self.get("/api/annotation_types", &[]).await?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["name"].as_str()?.to_string(), t["id"].as_u64()?)))
            .collect())
    }

    /// Creates a class of main type `type_id` in dataset `dataset`.
    pub async fn create_class(
        &self,
        dataset: u64,
        name: &str,
        type_id: u64,
    ) -> Result<Class, HttpError> {
        let body = json!({"dataset_id": dataset, "name": name, "metadata": {"_color": "auto"},
            "annotation_type_ids": [type_id], "datasets": [{"id": dataset}]});
        let v = self
            .send(Method::POST, "/api/annotation_classes", &body)
            .await?;
        serde_json::from_value(v).map_err(|e| {
            self.http
                .incomplete(&Method::POST, "/api/annotation_classes", &e.to_string())
        })
    }

    /// Attaches a team class to one more dataset (its full dataset list is sent).
    pub async fn attach_class(&self, class: &Class, dataset: u64) -> Result<(), HttpError> {
        let mut datasets = class.datasets.clone();
        datasets.push(json!({ "id": dataset }));
        let body = json!({"datasets": datasets, "id": class.id});
        self.send(
            Method::PUT,
            &format!("/api/annotation_classes/{}", class.id),
            &body,
        )
        .await
        .map(drop)
    }

    /// Starts an export of a dataset in Darwin JSON 2.0.
    pub async fn start_export(&self, team: &str, slug: &str, name: &str) -> Result<(), HttpError> {
        let path = format!("/api/v2/teams/{team}/datasets/{slug}/exports");
        let body = json!({"name": name, "format": "darwin_json_2", "include_authorship": false,
            "include_export_token": false, "annotation_filters": {},
            "filters": {"not_statuses": ["archived", "error"]}});
        self.send(Method::POST, &path, &body).await.map(drop)
    }

    /// The dataset's exports.
    pub async fn exports(&self, team: &str, slug: &str) -> Result<Vec<Export>, HttpError> {
        let path = format!("/api/v2/teams/{team}/datasets/{slug}/exports");
        let v = self.get(&path, &[]).await?;
        serde_json::from_value(v)
            .map_err(|e| self.http.incomplete(&Method::GET, &path, &e.to_string()))
    }
}
