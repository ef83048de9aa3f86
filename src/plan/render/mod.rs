//! Renderings of a [`Plan`]: terminal text, the JSON contract and pull-request Markdown.
//!
//! Every renderer is a pure function of the plan; colour and width are parameters, so the
//! CLI decides about terminals and the output is snapshot-tested here.

pub mod json;
pub mod markdown;
pub mod outcome;
pub mod text;

#[cfg(test)]
mod tests;

use super::model::{
    Action, Detail, Drift, FieldCounts, LabelChange, LabelEdit, Plan, Refusal, Rejection, RunPlan,
    SampleChanges, Summary, UnexpectedLabel, Waiting,
};
use crate::manifest::LoadWhen;
use crate::schema::diff::{FieldChange, FieldChangeKind, Rendered};
use crate::schema::{ResolvedAttribute, ResolvedField, ResolvedSchema};

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

/// Where a label is: `<sample id>`, and ` frame <n>` for a frame field's label.
fn place(sample_id: &str, frame: Option<crate::dataset::FrameNumber>) -> String {
    match frame {
        Some(f) => format!("{sample_id} frame {f}"),
        None => sample_id.to_string(),
    }
}

/// What happens to an unexpected label: `kept in polylines`, `ignored`, `returned`.
fn unexpected_action(u: &UnexpectedLabel) -> String {
    match &u.dest {
        Some(dest) => format!("{} in {dest}", u.action.as_str()),
        None => u.action.as_str().to_string(),
    }
}

/// A changed field of a schema change: its symbol (`+` new, `-` removed, `~` changed) and
/// what changes, e.g. `ground_truth: classes +truck -bike; attributes +occluded`.
fn field_change(f: &FieldChange) -> (&'static str, String) {
    let name = f.field.as_str();
    match f.change {
        FieldChangeKind::Added => ("+", format!("{name}: new field")),
        FieldChangeKind::Removed => ("-", format!("{name}: removed from the run")),
        FieldChangeKind::Changed => {
            let signed = |added: &[String], removed: &[String], changed: &[String]| {
                added
                    .iter()
                    .map(|x| format!("+{x}"))
                    .chain(removed.iter().map(|x| format!("-{x}")))
                    .chain(changed.iter().map(|x| format!("~{x}")))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut parts = Vec::new();
            if let Some([before, after]) = f.label_type {
                parts.push(format!("type {before} → {after}"));
            }
            let classes = signed(&f.classes_added, &f.classes_removed, &[]);
            if !classes.is_empty() {
                parts.push(format!("classes {classes}"));
            }
            let attributes = signed(
                &f.attributes_added,
                &f.attributes_removed,
                &f.attributes_changed,
            );
            if !attributes.is_empty() {
                parts.push(format!("attributes {attributes}"));
            }
            if f.restrictions_changed {
                parts.push("restrictions changed".into());
            }
            if f.mask_targets_changed {
                parts.push("mask targets changed".into());
            }
            ("~", format!("{name}: {}", parts.join("; ")))
        }
    }
}

/// Lines of context around each change of a rendered schema.
const DIFF_CONTEXT: usize = 2;
/// Diff lines shown at most: a schema rewritten whole is not worth a wall of text.
const DIFF_LINES: usize = 200;

/// The backend's rendering before → after as unified-diff lines (`@@ …`, `+…`, `-…`, ` …`).
fn rendered_diff(r: &Rendered) -> Vec<String> {
    let diff = similar::TextDiff::from_lines(&r.before, &r.after);
    let mut out = Vec::new();
    for hunk in diff
        .unified_diff()
        .context_radius(DIFF_CONTEXT)
        .iter_hunks()
    {
        out.push(hunk.header().to_string());
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            out.push(format!(
                "{sign}{}",
                change.value().trim_end_matches(['\n', '\r'])
            ));
        }
    }
    if out.len() > DIFF_LINES {
        let more = out.len() - DIFF_LINES;
        out.truncate(DIFF_LINES);
        out.push(format!("… {more} more line(s)"));
    }
    out
}

/// A detail as a sentence.
fn detail_sentence(d: &Detail) -> String {
    const EXTEND_HINT: &str = "set `extend_project_schema: true` to add them to the project";
    match d {
        Detail::CreateProject {
            project,
            samples,
            tasks,
        } => format!("create project `{project}`; upload {samples} sample(s) in {tasks} task(s)"),
        Detail::DeleteProject { project, tasks } => format!(
            "delete project `{project}` and its {tasks} task(s); labels merged into the dataset stay"
        ),
        Detail::ForgetRun => "forget the run (no backend objects)".into(),
        Detail::Finished => "finished: merged and cleaned up".into(),
        Detail::SettingsChanged => "run settings changed (record only)".into(),
        Detail::BackendChanged { from, to } => {
            format!("backend changed: {from} → {to}; the run is recreated")
        }
        Detail::SchemaInPlace => "update the label schema in place".into(),
        Detail::SchemaRecreates { backend } => format!(
            "the label schema changed in a way {backend} cannot apply in place; the run is recreated"
        ),
        Detail::UnmergedDiscarded { tasks } => {
            format!("annotations not yet merged in the {tasks} old task(s) are discarded")
        }
        Detail::UploadNew { samples, tasks } => {
            format!("upload {samples} new sample(s) in {tasks} new task(s)")
        }
        Detail::FinishUploads { tasks } => format!(
            "finish {tasks} task(s) an interrupted apply left before their labels were all uploaded"
        ),
        Detail::SharedProjectSchemaKept => format!(
            "the manifest's classes or attributes differ from the shared project's; not applied ({EXTEND_HINT})"
        ),
        Detail::ExistingProjectExtended { project, id } => format!(
            "upload into the existing project `{project}` ({id}), adding the run's missing classes and attributes to it (extend_project_schema)"
        ),
        Detail::ExistingProjectClasses { project, id, classes } => format!(
            "upload into the existing project `{project}` ({id}): its labels ({}) are the run's classes and attributes; the manifest's are not used ({EXTEND_HINT})",
            classes.join(", ")
        ),
        Detail::RecordMerge => "record the merged annotations: the dataset holds them already (an earlier apply stopped before saving its record)".into(),
        Detail::NotMerged {
            backend,
            object,
            task,
            reason,
        } => format!(
            "not merged: {backend} object {object} in task {task} is {reason}, where no sample of the run takes it"
        ),
        Detail::ReturnUnexpected { labels, path } => {
            format!("write {labels} unexpected label(s) to {path} (load.unexpected=return)")
        }
        Detail::SampleChanges(c) => sample_changes(c),
        Detail::MoreSamples { samples } => format!("… and {samples} more sample(s) with changes"),
        Detail::Cleanup { project } => format!("then delete project `{project}` (load.cleanup)"),
    }
}

/// `sample 6b01… ground_truth: ~6b02… (label) -6b03… +6b04… (car)`.
fn sample_changes(c: &SampleChanges) -> String {
    let frame = c.frame.map(|f| format!(" frame {f}")).unwrap_or_default();
    let changes: Vec<String> = c
        .changes
        .iter()
        .map(|l| match l {
            LabelChange::Added {
                label_id,
                class: Some(class),
                outside_schema,
            } => {
                let note = if *outside_schema {
                    ", outside the schema"
                } else {
                    ""
                };
                format!("+{label_id} ({class}{note})")
            }
            LabelChange::Added { label_id, .. } => format!("+{label_id}"),
            LabelChange::Edited { label_id, applied } => {
                format!("~{label_id} ({})", applied.join(", "))
            }
            LabelChange::Deleted { label_id } => format!("-{label_id}"),
        })
        .collect();
    format!(
        "sample {}{frame} {}: {}",
        c.sample_id,
        c.field,
        changes.join(" ")
    )
}

/// A drift as a sentence.
fn drift_sentence(d: &Drift) -> String {
    match d {
        Drift::ProjectMissing {
            project,
            id,
            backend,
        } => {
            format!("project `{project}` ({id}) is missing from {backend}")
        }
        Drift::TaskMissing { task, id } => {
            format!("task `{task}` ({id}) is missing; it will be recreated")
        }
        Drift::SamplesMissing {
            task,
            id,
            backend,
            missing,
            samples,
        } => {
            let more = missing.saturating_sub(samples.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!(
                "task `{task}` ({id}): {missing} sample(s) missing from {backend}: {}{more}; their labels are kept",
                samples.join(", ")
            )
        }
    }
}

/// What a rejected change would have done: `delete`, `attribute:occluded`.
fn rejected_change(r: &Rejection) -> String {
    match &r.attribute {
        Some(a) => format!("{}:{a}", r.change.as_str()),
        None => r.change.as_str().to_string(),
    }
}

/// Why a change is not applied: `allow_deletions=false`, `read_only`, ….
fn refusal_sentence(r: &Refusal) -> String {
    match r {
        Refusal::Restricted { restriction } => format!("{}=false", restriction.as_str()),
        Refusal::ReadOnly => "read_only".into(),
        Refusal::FieldHoldsOne => "the field holds a single label and already has one".into(),
        Refusal::ClassNotInSchema => "the new class is not in the schema".into(),
        Refusal::Unexpected { why, policy } => {
            format!("{why} (load.unexpected={})", policy.as_str())
        }
        Refusal::Unfit {
            why,
            restriction: None,
        } => why.clone(),
        Refusal::Unfit {
            why,
            restriction: Some(r),
        } => format!("{why}; {}=false", r.as_str()),
    }
}

/// `merge waits: 1/5 tasks complete (load.when: complete)`.
fn waiting_sentence(w: &Waiting) -> String {
    let when = match w.when {
        LoadWhen::Complete => "complete",
        LoadWhen::Always => "always",
        LoadWhen::Never => "never",
    };
    let open: Vec<String> = w
        .open
        .iter()
        .map(|t| format!("`{}` {}", t.task, t.status))
        .collect();
    let more = (w.tasks - w.complete).saturating_sub(open.len());
    let open = match (open.is_empty(), more) {
        (true, _) => String::new(),
        (false, 0) => format!("; open: {}", open.join(", ")),
        (false, more) => format!("; open: {} and {more} more", open.join(", ")),
    };
    format!(
        "merge waits: {}/{} complete (load.when: {when}){open}",
        w.complete,
        plural(w.tasks, "task", "tasks")
    )
}

/// Where an edited label is: `ground_truth 6b02… (sample 6b01…, frame 3)`.
fn edit_place(e: &LabelEdit) -> String {
    let frame = e.frame.map(|f| format!(", frame {f}")).unwrap_or_default();
    format!("{} {} (sample {}{frame})", e.field, e.label_id, e.sample_id)
}

/// `label "car" → "person"; confidence 0.5 → (removed)`.
fn edit_changes(e: &LabelEdit) -> String {
    e.changes
        .iter()
        .map(|c| {
            format!(
                "{} {} → {}",
                c.property,
                c.before.as_deref().unwrap_or("(none)"),
                c.after.as_deref().unwrap_or("(removed)")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The resolved schema as one block per field: a heading (`ground_truth: detections, existing
/// field`) and lines for its classes, attributes, mask targets and restrictions.
fn schema_blocks(schema: &ResolvedSchema) -> Vec<(String, Vec<String>)> {
    schema
        .fields
        .iter()
        .map(|(name, f)| (field_heading(name.as_str(), f), field_lines(f)))
        .collect()
}

fn field_heading(name: &str, f: &ResolvedField) -> String {
    let kind = if f.existing {
        "existing field"
    } else {
        "new field"
    };
    format!("{name}: {}, {kind}", f.label_type)
}

fn field_lines(f: &ResolvedField) -> Vec<String> {
    let mut out = Vec::new();
    if !f.classes.is_empty() {
        out.push(format!("classes: {}", f.classes.join(", ")));
    }
    for (name, a) in &f.attributes {
        out.push(format!("attribute {name}: {}", describe_attribute(a)));
    }
    for (class, attrs) in &f.class_attributes {
        for (name, a) in attrs {
            out.push(format!(
                "attribute {name} (class {class}): {}",
                describe_attribute(a)
            ));
        }
    }
    if let Some(m) = &f.mask_targets {
        let targets: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push(format!("mask targets: {}", targets.join(", ")));
    }
    let r = &f.restrictions;
    let forbidden: Vec<&str> = [
        (r.allow_additions, "additions"),
        (r.allow_deletions, "deletions"),
        (r.allow_label_edits, "label edits"),
        (r.allow_index_edits, "index edits"),
        (r.allow_spatial_edits, "spatial edits"),
    ]
    .iter()
    .filter(|(allowed, _)| !allowed)
    .map(|(_, what)| *what)
    .collect();
    out.push(if forbidden.is_empty() {
        "restrictions: none".to_string()
    } else {
        format!("restrictions: no {}", forbidden.join(", no "))
    });
    out
}

/// `select [sedan, suv], default sedan, read-only, immutable`.
fn describe_attribute(a: &ResolvedAttribute) -> String {
    let mut parts = vec![a.attr_type.to_string()];
    if !a.values.is_empty() {
        let values: Vec<String> = a.values.iter().map(ToString::to_string).collect();
        parts[0] = format!("{} [{}]", a.attr_type, values.join(", "));
    }
    if let Some(d) = &a.default {
        parts.push(format!("default {d}"));
    }
    if a.read_only {
        parts.push("read-only".into());
    }
    if !a.mutable {
        parts.push("immutable".into());
    }
    parts.join(", ")
}
