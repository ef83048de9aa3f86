//! The CVAT refresh cursor, built on what moves `updated_date` in CVAT 2.23.1
//! (docs/cvat.md, "What moves `updated_date`"): every annotation write (PUT, PATCH
//! create/update/delete, DELETE) moves the written job's, its task's and its project's date in
//! one transaction, and creating, changing or deleting a task moves its project's.
//!
//! A cursor holds:
//! * `project`: the project's `updated_date` when the cursor was taken. While the project
//!   still shows exactly that value, no annotation was written and no task came or went: a
//!   no-op refresh is one `GET /api/projects/{id}`. An equality, so no clock is compared.
//!   Absent when the cursor must not short-cut (an edit was seen while the run was created).
//! * `jobs_after`: the jobs to download next are those with `updated_date` after it, less
//!   [`MARGIN`] (a write stamps its job before it commits, so one in flight when the cursor
//!   was taken lands with an earlier date).
//! * `seen`: the jobs inside that margin as they were when the cursor was taken (id → date).
//!   One still showing the same date was not written since, so the margin costs no download;
//!   a write in flight gives its job a new date, which no longer matches.
//!
//! All are the server's own stamps, compared with each other: the client's clock never enters.

use super::pages::{Job, Project};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

/// How far before `jobs_after` the incremental listing looks. A write stamps its job before
/// it touches the project and commits (longer when it waits on another write's row locks),
/// and app servers' clocks differ a little: a minute covers both with room to spare.
pub const MARGIN: Duration = Duration::from_secs(60);

/// What a CVAT cursor string starts with (other backends' cursors never parse as one).
const PREFIX: &str = "cvat1;";

/// A CVAT refresh cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The project's `updated_date` it was taken at, when a no-op can be told from it.
    pub project: Option<String>,
    /// Jobs updated after this (less [`MARGIN`]) may hold changes.
    pub jobs_after: String,
    /// Jobs dated inside the margin when the cursor was taken: job id → `updated_date`.
    pub seen: BTreeMap<u64, String>,
}

/// A server time (`2026-11-22T03:08:27.898701Z`).
fn time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

impl Cursor {
    /// The cursor after a download that read the project as `now` before anything else and
    /// listed `jobs` (at least those dated inside the margin before `now`).
    pub fn after_download(now: &Project, jobs: &[Job]) -> Cursor {
        Cursor::at(
            now.updated_date.clone(),
            Some(now.updated_date.clone()),
            jobs,
        )
    }

    /// The cursor a run's first refresh starts from, taken once its tasks are up: `now` is
    /// the project as it is, `jobs` all of its jobs, `stamps` the date of each task's jobs
    /// right after annoform's own last write to it. A job of the run dated later than that
    /// was edited meanwhile, and one of a task annoform did not write in this process (an
    /// interrupted apply's) may have been: the cursor goes back to that write (or to the
    /// job's creation) and cannot tell a no-op, so the first refresh downloads them. A task
    /// of the run without jobs is gone: the first refresh must see that too.
    pub fn at_create(
        now: &Project,
        jobs: &[Job],
        tasks: &[String],
        stamps: &HashMap<String, String>,
    ) -> Cursor {
        let run: HashSet<&str> = tasks.iter().map(String::as_str).collect();
        let mut after = time(&now.updated_date);
        let mut exact = after.is_some();
        let mut present: HashSet<String> = HashSet::new();
        let mut unchanged: Vec<Job> = Vec::new();
        for j in jobs {
            let task = j.task_id.to_string();
            if !run.contains(task.as_str()) {
                continue;
            }
            let since = match stamps.get(&task) {
                Some(s) if time(&j.updated_date).is_some_and(|d| Some(d) <= time(s)) => None,
                Some(s) => Some(s.as_str()),
                None => Some(j.created_date.as_str()),
            };
            match since {
                None => unchanged.push(j.clone()),
                Some(s) => {
                    exact = false;
                    after = after.zip(time(s)).map(|(a, b)| a.min(b));
                }
            }
            present.insert(task);
        }
        exact &= tasks.iter().all(|t| present.contains(t));
        let after = after.map_or_else(String::new, |t| {
            humantime::format_rfc3339_micros(t).to_string()
        });
        Cursor::at(after, exact.then(|| now.updated_date.clone()), &unchanged)
    }

    /// A cursor from `after`, seeing the `jobs` dated inside the margin before it.
    fn at(after: String, project: Option<String>, jobs: &[Job]) -> Cursor {
        let from = time(&after).and_then(|t| t.checked_sub(MARGIN));
        let seen = jobs
            .iter()
            .filter(|j| from.is_none_or(|f| time(&j.updated_date).is_none_or(|d| d > f)))
            .map(|j| (j.id, j.updated_date.clone()))
            .collect();
        Cursor {
            project,
            jobs_after: after,
            seen,
        }
    }

    /// Whether a listed job may hold writes after the cursor.
    pub fn is_new(&self, job: &Job) -> bool {
        self.seen.get(&job.id) != Some(&job.updated_date)
    }

    /// A cursor read from what [`Cursor::encode`] wrote; `None` for anything else (the
    /// refresh then downloads every task).
    pub fn parse(s: &str) -> Option<Cursor> {
        let rest = s.strip_prefix(PREFIX)?;
        let mut project = None;
        let mut jobs_after = None;
        let mut seen = BTreeMap::new();
        for part in rest.split(';') {
            match part.split_once('=')? {
                ("p", v) => project = Some(v.to_string()),
                ("j", v) => jobs_after = Some(v.to_string()),
                ("s", v) => {
                    for job in v.split(',').filter(|j| !j.is_empty()) {
                        let (id, date) = job.split_once('@')?;
                        seen.insert(id.parse().ok()?, date.to_string());
                    }
                }
                _ => return None,
            }
        }
        let jobs_after = jobs_after?;
        time(&jobs_after)?;
        Some(Cursor {
            project,
            jobs_after,
            seen,
        })
    }

    /// The string the engine stores.
    pub fn encode(&self) -> String {
        let mut out = String::from(PREFIX);
        if let Some(p) = &self.project {
            out.push_str(&format!("p={p};"));
        }
        out.push_str(&format!("j={}", self.jobs_after));
        if !self.seen.is_empty() {
            let seen: Vec<String> = self
                .seen
                .iter()
                .map(|(id, d)| format!("{id}@{d}"))
                .collect();
            out.push_str(&format!(";s={}", seen.join(",")));
        }
        out
    }

    /// The JSON-logic `filter` for `GET /api/jobs` that lists the jobs written since the
    /// cursor (with the margin), in the server's own time format.
    pub fn jobs_filter(&self) -> String {
        let after = time(&self.jobs_after)
            .and_then(|t| t.checked_sub(MARGIN))
            .map(|t| humantime::format_rfc3339_micros(t).to_string())
            .unwrap_or_default();
        serde_json::json!({">": [{"var": "updated_date"}, after]}).to_string()
    }
}

/// The later of two server times by value (`a` when either does not parse).
pub fn latest(a: String, b: String) -> String {
    match (time(&a), time(&b)) {
        (Some(ta), Some(tb)) if tb > ta => b,
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, task: u64, created: &str, updated: &str) -> Job {
        serde_json::from_value(serde_json::json!({"id": id, "task_id": task,
            "created_date": created, "updated_date": updated}))
        .unwrap()
    }

    fn project(updated: &str) -> Project {
        serde_json::from_value(serde_json::json!({"id": 1, "updated_date": updated})).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_others_do_not_parse() {
        let c = Cursor::after_download(
            &project("2026-11-22T03:08:37.650000Z"),
            &[
                job(4, 2, "2026-11-22T03:08:00Z", "2026-11-22T03:08:37.100000Z"),
                job(3, 2, "2026-11-22T03:00:00Z", "2026-11-22T03:01:00Z"),
            ],
        );
        assert_eq!(
            c.encode(),
            "cvat1;p=2026-11-22T03:08:37.650000Z;j=2026-11-22T03:08:37.650000Z;s=4@2026-11-22T03:08:37.100000Z"
        );
        assert_eq!(Cursor::parse(&c.encode()), Some(c.clone()));
        let bare = Cursor {
            project: None,
            jobs_after: c.jobs_after.clone(),
            seen: BTreeMap::new(),
        };
        assert_eq!(Cursor::parse(&bare.encode()), Some(bare));
        assert_eq!(Cursor::parse("1764906000"), None);
        assert_eq!(Cursor::parse("cvat1;j=yesterday"), None);
        assert_eq!(Cursor::parse("cvat1;p=x"), None);
        assert_eq!(
            c.jobs_filter(),
            r#"{">":[{"var":"updated_date"},"2026-11-22T03:07:37.650000Z"]}"#
        );
        // A job inside the margin is new only once its date moved.
        assert!(!c.is_new(&job(4, 2, "", "2026-11-22T03:08:37.100000Z")));
        assert!(c.is_new(&job(4, 2, "", "2026-11-22T03:08:38Z")));
        assert!(c.is_new(&job(5, 3, "", "2026-11-22T03:08:30Z")));
    }

    #[test]
    fn a_create_cursor_goes_back_to_edits_made_while_creating() {
        let now = project("2026-11-22T03:10:00Z");
        let jobs = [
            job(1, 1, "2026-11-22T03:00:00Z", "2026-11-22T03:00:05Z"),
            job(2, 2, "2026-11-22T03:05:00Z", "2026-11-22T03:05:05Z"),
        ];
        let stamps: HashMap<String, String> = [
            ("1".to_string(), "2026-11-22T03:00:05Z".to_string()),
            ("2".to_string(), "2026-11-22T03:05:05Z".to_string()),
        ]
        .into();
        let tasks = ["1".to_string(), "2".to_string()];
        let clean = Cursor::at_create(&now, &jobs, &tasks, &stamps);
        assert_eq!(clean.project.as_deref(), Some("2026-11-22T03:10:00Z"));
        assert_eq!(clean.jobs_after, "2026-11-22T03:10:00.000000Z");
        // Task 1 edited after annoform wrote it: back to that write, no short-cut, and the
        // unchanged task 2 inside the margin is not downloaded again.
        let mut edited = jobs.clone();
        edited[0].updated_date = "2026-11-22T03:07:00Z".into();
        let c = Cursor::at_create(&now, &edited, &tasks, &stamps);
        assert_eq!(c.project, None);
        assert_eq!(c.jobs_after, "2026-11-22T03:00:05.000000Z");
        assert!(c.is_new(&edited[0]) && !c.is_new(&edited[1]));
        // A task without a stamp (an interrupted apply's) goes back to its creation; a task
        // without jobs is gone.
        let c = Cursor::at_create(&now, &jobs, &tasks, &HashMap::new());
        assert_eq!(
            (c.project, c.jobs_after.as_str()),
            (None, "2026-11-22T03:00:00.000000Z")
        );
        let c = Cursor::at_create(&now, &jobs[..1], &tasks, &stamps);
        assert_eq!(c.project, None);
    }
}
