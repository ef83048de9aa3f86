//! CVAT's answers as typed structs, decoded straight from the response (no
//! `serde_json::Value` tree per page): list pages and the objects annoform reads from them,
//! with only the fields it uses (serde skips the rest while parsing).

use serde::Deserialize;

/// One page of a list endpoint (`?page_size=all` answers everything in one).
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    /// How many objects the whole list holds.
    pub count: Option<u64>,
    /// The next page's absolute URL, if the server paged anyway.
    pub next: Option<String>,
    /// Absent only in an answer that is not a page at all (the caller says so).
    pub results: Option<Vec<T>>,
}

/// A project, as `GET /api/projects[/{id}]` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    /// Where annoform stamps the run a project was made for.
    #[serde(default)]
    pub bug_tracker: Option<String>,
    /// Moves with every annotation write in any of its jobs, and when a task of it is
    /// created, changed or deleted (docs/cvat.md, "What moves `updated_date`").
    #[serde(default)]
    pub updated_date: String,
}

/// A task, as `GET /api/tasks[/{id}]` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub project_id: Option<u64>,
    /// Frames of its data; 0 (or absent) until data was attached.
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub bug_tracker: Option<String>,
}

impl Task {
    /// Whether data is attached (a task an upload never finished has none).
    pub fn has_frames(&self) -> bool {
        self.size.unwrap_or(0) > 0
    }
}

/// A job, as `GET /api/jobs` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: u64,
    pub task_id: u64,
    #[serde(default)]
    pub start_frame: u64,
    #[serde(default)]
    pub stop_frame: u64,
    #[serde(default)]
    pub stage: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub assignee: Option<UserBrief>,
    /// Moves with every annotation write in the job and with its own changes (stage, state,
    /// assignee).
    #[serde(default)]
    pub updated_date: String,
    #[serde(default)]
    pub created_date: String,
    /// `annotation` or `ground_truth`; a ground-truth job does not count towards completion.
    #[serde(default, rename = "type")]
    pub job_type: Option<String>,
}

impl Job {
    /// Whether annotation of the job is finished: accepted and completed (recipe rule 9).
    pub fn done(&self) -> bool {
        self.stage == "acceptance" && self.state == "completed"
    }

    /// Whether the job counts towards its task's completion.
    pub fn counts(&self) -> bool {
        self.job_type.as_deref() != Some("ground_truth")
    }
}

/// A user as embedded in other objects, and as `GET /api/users` lists them.
#[derive(Debug, Clone, Deserialize)]
pub struct UserBrief {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub username: String,
}

/// `GET /api/tasks/{id}/data/meta`: the task's frames in frame order.
#[derive(Debug, Clone, Deserialize)]
pub struct DataMeta {
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub frames: Vec<FrameMeta>,
    /// A video task's range, in the video's frame indices (from 0, inclusive).
    #[serde(default)]
    pub start_frame: u64,
    #[serde(default)]
    pub stop_frame: u64,
    /// `step=N` when the task holds every Nth frame.
    #[serde(default)]
    pub frame_filter: Option<String>,
}

/// One frame of a task's data.
#[derive(Debug, Clone, Deserialize)]
pub struct FrameMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_answers_decode() {
        // Trimmed from the 2.23.1 recording (`4.jobs.list.page1`, `3.projects.get`).
        let jobs: Page<Job> = serde_json::from_str(
            r#"{"count":3,"next":"http://h/api/jobs?page=2&page_size=2&task_id=47","previous":null,
            "results":[{"url":"u","id":47,"task_id":47,"project_id":21,"assignee":null,
            "stage":"annotation","state":"new","start_frame":4,"stop_frame":4,"type":"annotation",
            "created_date":"2026-11-22T03:08:31.98Z","updated_date":"2026-11-22T03:08:37.65Z"}]}"#,
        )
        .unwrap();
        assert_eq!(jobs.count, Some(3));
        let j = &jobs.results.unwrap()[0];
        assert_eq!(
            (j.id, j.task_id, j.start_frame, j.stop_frame),
            (47, 47, 4, 4)
        );
        assert!(!j.done() && j.counts());
        let p: Project = serde_json::from_str(
            r#"{"url":"u","id":21,"name":"p","bug_tracker":"","updated_date":"2026-11-22T03:08:27Z","tasks":{"count":0}}"#,
        )
        .unwrap();
        assert_eq!(p.updated_date, "2026-11-22T03:08:27Z");
        let not_a_page: Page<Job> = serde_json::from_str(r#"{"detail":"x"}"#).unwrap();
        assert!(not_a_page.results.is_none());
    }
}
