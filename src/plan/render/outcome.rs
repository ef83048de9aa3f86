//! Renderings of what apply and destroy did ([`Outcome`]): the lines printed after the
//! changes, and the JSON document `apply --json` prints after the plan.

use crate::plan::outcome::{Command, Outcome, RunOutcome};

/// Printed (to stderr) when a plan has nothing to apply.
pub const NOTHING_TO_APPLY: &str = "Nothing to apply.";

/// Task links shown after apply; more are listed by `annoform status`.
const SHOWN_TASKS: usize = 10;

/// `Apply complete: 2 run(s) changed.`, then each run's project, task and editor links.
pub fn text(outcome: &Outcome) -> String {
    let n = outcome.runs.len();
    let mut out = match outcome.command {
        Command::Apply => format!("Apply complete: {n} run(s) changed.\n"),
        Command::Destroy => format!("Destroy complete: {n} run(s) destroyed.\n"),
    };
    for run in &outcome.runs {
        run_links(&mut out, run);
    }
    out
}

/// The outcome as one pretty-printed JSON document.
pub fn json(outcome: &Outcome) -> String {
    // Strings, integers and lists only: serializing cannot fail.
    let mut out = serde_json::to_string_pretty(outcome).expect("an outcome always serializes");
    out.push('\n');
    out
}

/// A run's project and task URLs, and its editor URL when the manifest asks for it.
fn run_links(out: &mut String, run: &RunOutcome) {
    let key = &run.key;
    if let Some(e) = &run.links_error {
        out.push_str(&format!("note: no links for run `{key}`: {e}\n"));
    }
    let Some(links) = &run.links else { return };
    if let Some(p) = &links.project {
        out.push_str(&format!("{key}: project {p}\n"));
    }
    for (name, url) in links.tasks.iter().take(SHOWN_TASKS) {
        out.push_str(&format!("  task {name}: {url}\n"));
    }
    if links.tasks.len() > SHOWN_TASKS {
        out.push_str(&format!(
            "  … and {} more task(s) (`annoform status {key}` lists them)\n",
            links.tasks.len() - SHOWN_TASKS
        ));
    }
    if run.launch_editor
        && let Some(url) = links.editor()
    {
        out.push_str(&format!(
            "{key}: open the editor at {url} (or apply with --open)\n"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::engine::Links;
    use crate::plan::model::Action;

    fn outcome() -> Outcome {
        let mut created = RunOutcome::new("ds", "review", &[Action::Create]);
        created.links = Some(Links {
            project: Some("http://cvat/projects/1".into()),
            tasks: (1..=12)
                .map(|i| {
                    (
                        format!("annoform/ds/review/batch-{i:04}"),
                        format!("http://cvat/tasks/{i}"),
                    )
                })
                .collect(),
        });
        created.launch_editor = true;
        let mut merged = RunOutcome::new("ds", "fix", &[Action::Merge, Action::Update]);
        merged.links_error = Some("connection refused".into());
        Outcome {
            command: Command::Apply,
            runs: vec![
                created,
                merged,
                RunOutcome::new("ds", "old", &[Action::Destroy]),
            ],
        }
    }

    #[test]
    fn apply_text_lists_each_runs_links() {
        insta::assert_snapshot!(text(&outcome()), @r"
        Apply complete: 3 run(s) changed.
        review: project http://cvat/projects/1
          task annoform/ds/review/batch-0001: http://cvat/tasks/1
          task annoform/ds/review/batch-0002: http://cvat/tasks/2
          task annoform/ds/review/batch-0003: http://cvat/tasks/3
          task annoform/ds/review/batch-0004: http://cvat/tasks/4
          task annoform/ds/review/batch-0005: http://cvat/tasks/5
          task annoform/ds/review/batch-0006: http://cvat/tasks/6
          task annoform/ds/review/batch-0007: http://cvat/tasks/7
          task annoform/ds/review/batch-0008: http://cvat/tasks/8
          task annoform/ds/review/batch-0009: http://cvat/tasks/9
          task annoform/ds/review/batch-0010: http://cvat/tasks/10
          … and 2 more task(s) (`annoform status review` lists them)
        review: open the editor at http://cvat/tasks/1 (or apply with --open)
        note: no links for run `fix`: connection refused
        ");
    }

    #[test]
    fn destroy_text_counts_the_runs() {
        let o = Outcome {
            command: Command::Destroy,
            runs: vec![RunOutcome::new("ds", "old", &[Action::Destroy])],
        };
        assert_eq!(text(&o), "Destroy complete: 1 run(s) destroyed.\n");
    }

    #[test]
    fn json_carries_the_same_as_data() {
        let v: serde_json::Value = serde_json::from_str(&json(&outcome())).unwrap();
        assert_eq!(v["command"], "apply");
        let runs = v["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0]["actions"], serde_json::json!(["create"]));
        assert_eq!(runs[0]["links"]["project"], "http://cvat/projects/1");
        assert_eq!(runs[0]["links"]["tasks"].as_array().unwrap().len(), 12);
        assert_eq!(runs[0]["launch_editor"], true);
        assert_eq!(runs[1]["actions"], serde_json::json!(["merge", "update"]));
        assert_eq!(runs[1]["links_error"], "connection refused");
        assert!(runs[2].get("links").is_none() && runs[2].get("launch_editor").is_none());
    }
}
