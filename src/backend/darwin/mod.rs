//! The V7 Darwin backend (`recipes/v7.md`; SaaS only, tested against the in-repo fake that
//! replays it). What FiftyOne's `darwin` backend does, with its quirks fixed (docs/darwin.md).
//!
//! Mapping. A run's project is a Darwin dataset (`dataset_slug`), created when missing and
//! reused when present; only a dataset the run created is archived by destroy. A task (a batch
//! of samples) is a folder of items: sample `s` of task `t` is the item at path `/<t>/<s>`
//! named after its file, so items are matched to samples by sample id, never by file name.
//! Existing labels are imported with annotation ids derived from our label ids ([`ids`]).
//! Downloads read one Darwin JSON 2.0 export of the dataset (a few requests, where reading
//! each item's annotations costs one request per item under V7's 1000 requests/minute).

pub mod classes;
pub mod client;
pub mod convert;
pub mod export;
pub mod ids;
pub mod items;
pub mod zip;

use super::base::{self, HttpBackend};
use super::http::{HttpClient, HttpError, HttpPolicy};
use super::*;
use crate::backend::capabilities::DarwinConfig;
use crate::backend::settings::Settings;
use client::Api;
use std::collections::HashMap;
use std::time::Duration;

/// What the run's record says about the project in use.
#[derive(Debug, Clone, Default)]
struct Context {
    project: String,
    schema: ResolvedSchema,
    settings: DarwinConfig,
    tasks: Vec<String>,
    /// The run created the dataset (destroy archives it only then).
    created: bool,
}

/// A V7 Darwin host, as the API key's team.
pub struct DarwinBackend {
    api: Api,
    /// For signed upload URLs and export downloads: no Darwin credentials go there.
    plain: HttpClient,
    rt: tokio::runtime::Runtime,
    team: Option<String>,
    /// The workspace's settings of this backend, as opened.
    defaults: DarwinConfig,
    context: Context,
    /// Class ids by (name, kind), per dataset id.
    classes: HashMap<u64, HashMap<(String, convert::Kind), u64>>,
}

/// The item path of sample `sample` of task `task`.
pub fn item_path(task: &str, sample: &str) -> String {
    format!("/{}/{sample}", task.trim_matches('/'))
}

/// The (task, sample id) of an item path annoform made.
pub fn task_and_sample(path: &str) -> Option<(&str, &str)> {
    let (task, sample) = path.trim_start_matches('/').rsplit_once('/')?;
    (!task.is_empty() && !sample.is_empty()).then_some((task, sample))
}

impl DarwinBackend {
    /// A client for the host at `url` (its root, e.g. https://darwin.v7labs.com),
    /// authenticating with `api_key` (a secret: it only ever appears redacted).
    pub fn new(
        name: &str,
        url: &str,
        api_key: &str,
        policy: HttpPolicy,
        defaults: DarwinConfig,
    ) -> Result<Self, BackendError> {
        let err = |message: String| BackendError::new(name, message);
        if api_key.is_empty() {
            return Err(err(
                "no API key: set ANNOFORM_DARWIN_API_KEY (or api_key = \"${env:NAME}\")".into(),
            ));
        }
        let url = url.trim_end_matches('/');
        let http = HttpClient::new(name, url, policy.clone(), vec![api_key.to_string()])
            .and_then(|h| h.with_header("Authorization", &format!("ApiKey {api_key}"), true))
            .map_err(|e| err(e.to_string()))?;
        let plain = HttpClient::new(name, url, policy, vec![api_key.to_string()])
            .map_err(|e| err(e.to_string()))?;
        let rt = base::runtime(name)?;
        Ok(DarwinBackend {
            api: Api { http },
            plain,
            rt,
            team: None,
            context: Context {
                settings: defaults.clone(),
                ..Context::default()
            },
            defaults,
            classes: HashMap::new(),
        })
    }

    /// A run's settings, typed, with the workspace's waits where the run sets none.
    fn run_settings(
        &self,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<DarwinConfig, BackendError> {
        DarwinConfig::read(settings)
            .map(|c| c.with_waits_of(&self.defaults))
            .map_err(|e| self.error(format!("the run's settings: {e}")))
    }

    /// The API key's team (asked once).
    fn team(&mut self) -> Result<String, BackendError> {
        if let Some(t) = &self.team {
            return Ok(t.clone());
        }
        let team = self.run(self.api.team())?;
        self.team = Some(team.clone());
        Ok(team)
    }

    fn dataset_id(&self, project: &RemoteProject) -> Result<u64, BackendError> {
        project
            .id
            .parse()
            .map_err(|_| self.error(format!("`{}` is not a Darwin dataset id", project.id)))
    }

    fn remote(&self, d: &client::Dataset) -> RemoteProject {
        RemoteProject {
            id: d.id.to_string(),
            name: d.slug.clone(),
            url: Some(format!(
                "{}/datasets/{}/dataset-management",
                self.api.http.base_url(),
                d.id
            )),
            owner: None,
        }
    }

    /// The one field of the run (Darwin runs have one).
    fn field(&self) -> Result<(&str, &crate::schema::ResolvedField), BackendError> {
        self.context
            .schema
            .fields
            .iter()
            .next()
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| self.error("the run's schema has no field"))
    }
}

impl HttpBackend for DarwinBackend {
    fn http(&self) -> &HttpClient {
        &self.api.http
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    fn describe(&self, e: &HttpError) -> Option<String> {
        base::refused_key(
            e,
            "darwin",
            "an API key of your V7 team (Settings > API Keys)",
        )
    }
}

impl Backend for DarwinBackend {
    fn capabilities(&self) -> &Capabilities {
        BackendKind::Darwin.capabilities()
    }

    fn as_held(&self) -> Option<AsHeld> {
        Some(convert::as_held)
    }

    fn find_project(&mut self, name: &str) -> Result<Option<RemoteProject>, BackendError> {
        let datasets = self.run(self.api.datasets())?;
        Ok(datasets
            .iter()
            .find(|d| d.slug == name)
            .map(|d| self.remote(d)))
    }

    fn create_project(&mut self, spec: &ProjectSpec) -> Result<RemoteProject, BackendError> {
        let created = match self.rt.block_on(self.api.create_dataset(&spec.name)) {
            Ok(d) => d,
            Err(e) if e.status() == Some(reqwest::StatusCode::UNPROCESSABLE_ENTITY) => {
                return Err(self
                    .error(format!(
                        "dataset slug `{}` is taken by a dataset this API key's team cannot use \
                         ({e}): choose another `dataset_slug` in the run's backend_config",
                        spec.name
                    ))
                    .because(Cause::Refused));
            }
            Err(e) => return Err(self.http_error(e)),
        };
        let project = self.remote(&created);
        self.context = Context {
            project: project.id.clone(),
            schema: spec.schema.clone(),
            settings: self.run_settings(&spec.config)?,
            tasks: Vec::new(),
            created: true,
        };
        self.ensure_classes(&project, &[])?;
        Ok(project)
    }

    fn attach(
        &mut self,
        project: &RemoteProject,
        context: ProjectContext<'_>,
    ) -> Result<(), BackendError> {
        self.context = Context {
            project: project.id.clone(),
            schema: context.schema.clone(),
            settings: self.run_settings(context.settings)?,
            tasks: context.tasks.iter().map(|t| t.name.clone()).collect(),
            created: context.created,
        };
        Ok(())
    }

    fn list_tasks(&mut self, project: &RemoteProject) -> Result<Vec<RemoteTask>, BackendError> {
        let items = self.dataset_items(project)?;
        let mut names: Vec<String> = items
            .iter()
            .filter_map(|i| task_and_sample(&i.path).map(|(t, _)| t.to_string()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|n| RemoteTask {
                id: n.clone(),
                name: n,
            })
            .collect())
    }

    fn create_task(
        &mut self,
        project: &RemoteProject,
        task: &TaskSpec,
    ) -> Result<RemoteTask, BackendError> {
        self.add_items(project, task)?;
        Ok(RemoteTask {
            id: task.name.clone(),
            name: task.name.clone(),
        })
    }

    fn labels_with_media(&self) -> bool {
        false
    }

    fn upload_labels(
        &mut self,
        project: &RemoteProject,
        task: &RemoteTask,
        labels: &TaskSpec,
    ) -> Result<(), BackendError> {
        self.import_labels(project, task, labels)
    }

    fn label_ids(&self, task: &TaskSpec) -> Vec<(String, String)> {
        let Ok((field, f)) = self.field() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in &task.samples {
            // Unknown: only tags convert (a spatial label's upload says what is missing).
            let size = ImageSize::of_sample(s).unwrap_or(ImageSize {
                width: 0,
                height: 0,
            });
            for l in s.labels.get(field).into_iter().flatten() {
                let (Some(id), Ok(annotations)) = (
                    crate::merge::label_id(l),
                    convert::to_darwin(f.label_type, l, size),
                ) else {
                    continue; // not uploadable: its upload says why
                };
                out.extend(annotations.into_iter().map(|a| (a.id, id.to_string())));
            }
        }
        out
    }

    fn update_schema(
        &mut self,
        project: &RemoteProject,
        schema: &ResolvedSchema,
    ) -> Result<(), BackendError> {
        self.context.schema = schema.clone();
        self.ensure_classes(project, &[]).map(drop)
    }

    fn status(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
    ) -> Result<Vec<TaskStatus>, BackendError> {
        let items = self.dataset_items(project)?;
        let mut out = Vec::new();
        for t in tasks {
            let mine: Vec<&client::Item> = items
                .iter()
                .filter(|i| task_and_sample(&i.path).is_some_and(|(task, _)| task == t))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let done = mine.iter().filter(|i| i.status == "complete").count();
            out.push(TaskStatus {
                id: t.clone(),
                status: format!("{done}/{} complete", mine.len()),
                complete: done == mine.len(),
                updated: None,
            });
        }
        Ok(out)
    }

    fn download(
        &mut self,
        project: &RemoteProject,
        tasks: &[String],
        _since: Option<&str>,
        sink: &mut PageSink<'_>,
    ) -> Result<Downloaded, BackendError> {
        self.download_export(project, tasks, sink)
    }

    fn delete_project(&mut self, project: &RemoteProject) -> Result<(), BackendError> {
        if self.context.created && self.context.project == project.id {
            return self.run(self.api.archive_dataset(&project.id));
        }
        // A dataset the run found in place stays; the run's own items are archived.
        let team = self.team()?;
        let dataset = self.dataset_id(project)?;
        let tasks = self.context.tasks.clone();
        let ids: Vec<String> = self
            .dataset_items(project)?
            .into_iter()
            .filter(|i| task_and_sample(&i.path).is_some_and(|(t, _)| tasks.iter().any(|n| n == t)))
            .map(|i| i.id)
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        self.run(self.api.archive_items(&team, dataset, &ids))
    }

    fn project_url(&self, project: &RemoteProject) -> Option<String> {
        Some(format!(
            "{}/datasets/{}/dataset-management",
            self.api.http.base_url(),
            project.id
        ))
    }
}
