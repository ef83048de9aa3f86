//! Renderings of a [`Plan`]: terminal text, the JSON contract and pull-request Markdown.
//!
//! Every renderer is a pure function of the plan; colour and width are parameters, so the
//! CLI decides about terminals and the output is snapshot-tested here.

pub mod json;
pub mod markdown;
pub mod text;

#[cfg(test)]
mod tests;

use super::model::{Action, FieldCounts, Plan, RunPlan, Summary, UnexpectedLabel};

/// The closing line of a plan without changes.
pub const NO_CHANGES: &str = "No changes. Runs match the manifests.";

/// `1 to create, 0 to extend, …; 1 drifted.`: the summary sentence after `Plan:`.
pub fn summary_sentence(summary: &Summary) -> String {
    let counts: Vec<String> = Action::ALL
        .iter()
        .filter(|a| **a != Action::Drift)
        .map(|a| format!("{} to {}", summary.get(*a), a.as_str()))
        .collect();
    format!("{}; {} drifted.", counts.join(", "), summary.drift)
}

/// Whether the plan has anything to show beyond "no changes".
fn has_changes(plan: &Plan) -> bool {
    plan.changes || plan.runs.iter().any(|r| !r.actions.is_empty())
}

/// `dataset/key`, the name a run is shown under.
fn run_name(run: &RunPlan) -> String {
    format!("{}/{}", run.dataset, run.key)
}

/// Whether a field line should show merge counts for this run.
fn shows_merge(run: &RunPlan, c: &FieldCounts) -> bool {
    run.actions.contains(&Action::Merge)
        || c.added + c.edited + c.deleted + c.rejected + c.unexpected > 0
}

/// Whether a field line should show an upload count for this run.
fn shows_upload(run: &RunPlan, c: &FieldCounts) -> bool {
    run.actions.contains(&Action::Create) || run.actions.contains(&Action::Extend) || c.upload > 0
}

/// `n thing` or `n things`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What happens to an unexpected label: `kept in polylines`, `ignored`, `returned`.
fn unexpected_action(u: &UnexpectedLabel) -> String {
    match &u.dest {
        Some(dest) => format!("{} in {dest}", u.action.as_str()),
        None => u.action.as_str().to_string(),
    }
}
