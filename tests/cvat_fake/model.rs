//! In-memory state of the fake CVAT server: users, projects, labels, tasks, jobs, requests.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The admin account every fresh fake starts with (the recording logged in as it).
pub const ADMIN_USERNAME: &str = "admin";
/// The admin's password (the recording's own is redacted; the replay sends this one).
pub const ADMIN_PASSWORD: &str = "fake-admin-pass-1";
/// The password annotator accounts are registered with in tests and the replay.
pub const ANNOTATOR_PASSWORD: &str = "fake-annotator-pass-1";

/// Colours the real server picked for labels sent without one, in the order it picked them.
const AUTO_COLORS: &[&str] = &[
    "#c06060", "#20e0e0", "#9df326", "#66be96", "#804080", "#fa7376", "#fd3ed5", "#b66aa0",
    "#6102c8", "#7a1d90", "#ba9109", "#2eceda", "#10a0c0", "#906080", "#6080c0", "#406040",
];

/// A registered user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password: String,
    pub key: String,
    pub admin: bool,
    pub date_joined: String,
    pub last_login: Option<String>,
}

/// An attribute spec of a label.
#[derive(Clone, Debug)]
pub struct Attr {
    pub id: u64,
    pub name: String,
    pub mutable: bool,
    pub input_type: String,
    pub default_value: String,
    pub values: Vec<String>,
}

/// Who owns a label set: a project or a task without a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelOwner {
    Project(u64),
    Task(u64),
}

/// A label (top-level or a skeleton's sublabel).
#[derive(Clone, Debug)]
pub struct Label {
    pub id: u64,
    pub name: String,
    pub color: String,
    pub kind: String,
    pub attrs: Vec<Attr>,
    pub owner: LabelOwner,
    pub parent: Option<u64>,
    pub svg: Option<String>,
}

/// A project.
#[derive(Clone, Debug)]
pub struct Project {
    pub id: u64,
    pub name: String,
    pub bug_tracker: String,
    pub owner: u64,
    pub created: String,
    pub updated: String,
}

/// One decoded frame (or, for a video, the whole file) of a task's data.
#[derive(Clone, Debug)]
pub struct Frame {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// A task's attached data, present once an upload was processed (even if it failed).
#[derive(Clone, Debug)]
pub struct TaskData {
    pub size: u32,
    /// Video: the first frame of the video the task holds, and the step between its frames.
    pub start_frame: u64,
    pub step: u64,
    pub image_quality: u64,
    pub chunk_size: Option<u64>,
    pub video: bool,
    pub frames: Vec<Frame>,
    pub updated: Option<String>,
}

/// A file received for a task but not processed yet.
#[derive(Clone, Debug)]
pub struct Upload {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// A TUS upload in progress.
#[derive(Clone, Debug)]
pub struct Tus {
    pub task: u64,
    pub name: String,
    pub length: usize,
    pub bytes: Vec<u8>,
}

/// A task.
#[derive(Clone, Debug)]
pub struct Task {
    pub id: u64,
    pub name: String,
    pub project: Option<u64>,
    pub owner: u64,
    pub assignee: Option<u64>,
    pub assignee_updated: Option<String>,
    pub bug_tracker: String,
    pub subset: String,
    pub segment_size: u64,
    pub overlap: Option<u64>,
    pub created: String,
    pub updated: String,
    pub data: Option<TaskData>,
    pub uploads: Vec<Upload>,
}

/// A job: one segment of a task's frames.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: u64,
    pub task: u64,
    pub start: u32,
    pub stop: u32,
    pub stage: String,
    pub state: String,
    pub assignee: Option<u64>,
    pub assignee_updated: Option<String>,
    pub created: String,
    pub updated: String,
}

/// A background request (`create:task-<id>`).
#[derive(Clone, Debug)]
pub struct BgRequest {
    pub task: u64,
    pub project: Option<u64>,
    pub owner: u64,
    pub failure: Option<String>,
    pub polls: u32,
    pub created: String,
    pub finished: String,
}

/// One stored annotation object (tag, shape or track) with the job that owns it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub id: u64,
    pub job: u64,
    pub body: Value,
}

/// A task's annotations.
#[derive(Clone, Debug, Default)]
pub struct Annotations {
    pub tags: Vec<Stored>,
    pub shapes: Vec<Stored>,
    pub tracks: Vec<Stored>,
}

/// Id sequences, one per kind, as in the real server.
#[derive(Clone, Debug, Default)]
pub struct Sequences {
    counters: BTreeMap<&'static str, u64>,
}

impl Sequences {
    /// The next id of `kind`; every kind starts at 1.
    pub fn next(&mut self, kind: &'static str) -> u64 {
        let n = self.counters.entry(kind).or_insert(0);
        *n += 1;
        *n
    }
}

/// Everything the fake server knows.
#[derive(Debug, Default)]
pub struct State {
    pub seq: Sequences,
    pub users: Vec<User>,
    pub projects: Vec<Project>,
    pub labels: Vec<Label>,
    pub tasks: Vec<Task>,
    pub jobs: Vec<Job>,
    pub requests: BTreeMap<u64, BgRequest>,
    pub annotations: BTreeMap<u64, Annotations>,
    pub tus: BTreeMap<String, Tus>,
    /// Requests to refuse (a test's fault): method, path pattern (`*` for one segment),
    /// how many more times.
    pub refusals: Vec<(String, String, u32)>,
    /// Every request answered, as `METHOD /api/path` (no query), for tests that count them.
    pub log: Vec<String>,
    /// How far the server's clock runs ahead of the machine's: a test's way to let time pass
    /// (annotators coming back later) without waiting.
    pub clock: std::time::Duration,
    colors: usize,
    keys: u64,
}

impl State {
    /// A fresh state with only the admin user.
    pub fn new() -> Self {
        let mut s = State::default();
        let id = s.seq.next("user");
        let key = s.new_key();
        s.users.push(User {
            id,
            username: ADMIN_USERNAME.into(),
            email: "admin@localhost.localdomain".into(),
            first_name: String::new(),
            last_name: String::new(),
            password: ADMIN_PASSWORD.into(),
            key,
            admin: true,
            date_joined: s.now(),
            last_login: None,
        });
        s
    }

    /// A new 40-hex token, distinct for every call.
    pub fn new_key(&mut self) -> String {
        self.keys += 1;
        let digest = Sha256::digest(format!("fake-cvat-key-{}", self.keys));
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()[..40]
            .to_string()
    }

    /// The next automatic label colour.
    pub fn next_color(&mut self) -> String {
        let c = AUTO_COLORS[self.colors % AUTO_COLORS.len()];
        self.colors += 1;
        c.to_string()
    }

    /// The user with this id.
    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    /// The task with this id.
    pub fn task(&self, id: u64) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// The task with this id, mutably.
    pub fn task_mut(&mut self, id: u64) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }

    /// The jobs of a task, by id.
    pub fn task_jobs(&self, task: u64) -> Vec<&Job> {
        self.jobs.iter().filter(|j| j.task == task).collect()
    }

    /// Move `updated_date` as an annotation write that changed job `job` does in CVAT 2.23.1
    /// (`JobAnnotation._set_updated_date`, cvat/apps/dataset_manager/task.py): the job, its
    /// task and the task's project, in one transaction.
    pub fn touch_job(&mut self, job: u64) {
        let stamp = self.now();
        let Some(j) = self.jobs.iter_mut().find(|j| j.id == job) else {
            return;
        };
        j.updated = stamp.clone();
        let task = j.task;
        if let Some(t) = self.task_mut(task) {
            t.updated = stamp.clone();
            if let Some(p) = t.project {
                self.touch_project(p, &stamp);
            }
        }
    }

    /// Move a project's `updated_date` to `stamp`, as `Project.touch()` does when a task of it
    /// is created, changed or deleted (cvat/apps/engine/views.py `TaskViewSet.perform_create`
    /// and `perform_update`, signals.py `__delete_task_handler`).
    pub fn touch_project(&mut self, project: u64, stamp: &str) {
        if let Some(p) = self.projects.iter_mut().find(|p| p.id == project) {
            p.updated = stamp.to_string();
        }
    }

    /// The server's current time in its format (`2026-11-22T03:08:27.898701Z`).
    pub fn now(&self) -> String {
        self.later(0)
    }

    /// The server's time `secs` seconds from now, in its format.
    pub fn later(&self, secs: u64) -> String {
        let t = std::time::SystemTime::now() + self.clock + std::time::Duration::from_secs(secs);
        humantime::format_rfc3339_micros(t).to_string()
    }

    /// The label set a task uses: its project's if it has one.
    pub fn task_label_owner(&self, task: &Task) -> LabelOwner {
        match task.project {
            Some(p) => LabelOwner::Project(p),
            None => LabelOwner::Task(task.id),
        }
    }

    /// All labels (sublabels included) of a label set.
    pub fn labels_of(&self, owner: LabelOwner) -> Vec<&Label> {
        self.labels.iter().filter(|l| l.owner == owner).collect()
    }

    /// A user as the short object embedded in other objects.
    pub fn user_brief(&self, base: &str, id: Option<u64>) -> Value {
        match id.and_then(|id| self.user(id)) {
            Some(u) => json!({
                "url": format!("{base}/api/users/{}", u.id),
                "id": u.id,
                "username": u.username,
                "first_name": u.first_name,
                "last_name": u.last_name,
            }),
            None => Value::Null,
        }
    }
}
