//! Snapshot tests of every renderer over a plan with every action, an empty plan, and the
//! properties the CLI relies on (JSON round trip, version check, Markdown splitting).

use indexmap::IndexMap;

use super::text::TextOptions;
use super::{json, markdown, text};
use crate::manifest::{LoadWhen, Unexpected};
use crate::plan::model::{
    Action, ChangeKind, Detail, Drift, EditKinds, FieldCounts, LabelChange, OpenTask, Plan,
    Refusal, Rejection, Restriction, RunPlan, SampleChanges, UnexpectedAction, UnexpectedLabel,
    Waiting,
};

/// GitHub's comment limit, less headroom: what the CLI passes.
const MAX_CHARS: usize = 65_000;

fn run(key: &str, backend: &str, actions: &[Action], samples: usize, tasks: usize) -> RunPlan {
    RunPlan {
        key: key.to_string(),
        dataset: "quickstart".to_string(),
        backend: backend.to_string(),
        actions: actions.to_vec(),
        samples,
        tasks,
        fields: IndexMap::new(),
        rejected: Vec::new(),
        unexpected: Vec::new(),
        drift: Vec::new(),
        details: Vec::new(),
        waiting: None,
        edits: Vec::new(),
        schema_change: None,
        schema: None,
        error: None,
        hint: None,
        failure: None,
    }
}

fn upload(n: usize) -> FieldCounts {
    FieldCounts {
        upload: n,
        ..FieldCounts::default()
    }
}

fn rejection(n: usize, field: &str, change: ChangeKind, reason: Refusal) -> Rejection {
    Rejection {
        sample_id: format!("64f1c0a2e4b0c3d2a1{n:06}"),
        frame: None,
        label_id: format!("64f1c0a2e4b0c3d2b2{n:06}"),
        field: field.to_string(),
        change,
        attribute: None,
        reason,
    }
}

fn restricted(restriction: Restriction) -> Refusal {
    Refusal::Restricted { restriction }
}

fn task_missing(task: &str) -> Drift {
    Drift::TaskMissing {
        task: task.to_string(),
        id: "17".to_string(),
    }
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A plan with every action, a multi-action run, and a run without changes.
fn fixture() -> Plan {
    let mut create = run("fix_gt", "labelstudio", &[Action::Create], 12, 2);
    create.fields.insert("ground_truth".into(), upload(40));
    create.fields.insert("predictions".into(), upload(1));
    create.details = vec![Detail::CreateProject {
        project: "annoform/quickstart/fix_gt".into(),
        samples: 12,
        tasks: 2,
    }];

    let mut extend = run("vehicles", "cvat", &[Action::Extend], 30, 4);
    extend.fields.insert("detections".into(), upload(7));
    extend.details = vec![
        Detail::UploadNew {
            samples: 3,
            tasks: 1,
        },
        Detail::FinishUploads { tasks: 1 },
    ];

    let mut update = run("classes", "cvat", &[Action::Update], 50, 5);
    update.details = vec![Detail::SchemaInPlace];

    let mut replace = run("segmentation", "cvat", &[Action::Replace], 8, 1);
    replace.fields.insert("segmentations".into(), upload(16));
    replace.details = vec![
        Detail::BackendChanged {
            from: "labelstudio".into(),
            to: "cvat".into(),
        },
        Detail::UnmergedDiscarded { tasks: 1 },
    ];

    let mut merge = run("review", "cvat", &[Action::Merge], 120, 6);
    merge.fields.insert(
        "ground_truth".into(),
        FieldCounts {
            upload: 0,
            added: 3,
            edited: 2,
            deleted: 1,
            rejected: 4,
            unchanged: 5,
            unexpected: 0,
            edits: EditKinds {
                label: 1,
                geometry: 2,
                ..EditKinds::default()
            },
        },
    );
    merge.fields.insert(
        "keypoints".into(),
        FieldCounts {
            rejected: 1,
            unchanged: 10,
            ..FieldCounts::default()
        },
    );
    merge.rejected = vec![
        rejection(
            1,
            "ground_truth",
            ChangeKind::Delete,
            restricted(Restriction::AllowDeletions),
        ),
        rejection(
            2,
            "ground_truth",
            ChangeKind::Label,
            restricted(Restriction::AllowLabelEdits),
        ),
        rejection(
            3,
            "ground_truth",
            ChangeKind::Geometry,
            restricted(Restriction::AllowSpatialEdits),
        ),
        Rejection {
            attribute: Some("occluded".into()),
            ..rejection(4, "ground_truth", ChangeKind::Attribute, Refusal::ReadOnly)
        },
        rejection(
            5,
            "keypoints",
            ChangeKind::Add,
            restricted(Restriction::AllowAdditions),
        ),
        rejection(
            20,
            "keypoints",
            ChangeKind::Add,
            Refusal::Unexpected {
                why: "class `bike` is not in the schema of `keypoints`".into(),
                policy: Unexpected::Report,
            },
        ),
    ];
    merge.details = vec![
        Detail::SampleChanges(SampleChanges {
            sample_id: "64f1c0a2e4b0c3d2a1000001".into(),
            frame: None,
            field: "ground_truth".into(),
            changes: vec![
                LabelChange::Edited {
                    label_id: "64f1c0a2e4b0c3d2b2000011".into(),
                    applied: vec!["label".into(), "geometry".into()],
                },
                LabelChange::Deleted {
                    label_id: "64f1c0a2e4b0c3d2b2000012".into(),
                },
                LabelChange::Added {
                    label_id: "64f1c0a2e4b0c3d2b2000013".into(),
                    class: Some("car".into()),
                    outside_schema: false,
                },
            ],
        }),
        Detail::NotMerged {
            backend: "cvat".into(),
            object: "shape:77".into(),
            task: "annoform/quickstart/review/batch-0002".into(),
            reason: "on frame 7, past the task's 1 frame(s)".into(),
        },
        Detail::MoreSamples { samples: 2 },
    ];
    merge.fields["keypoints"].unexpected = 2;
    merge.unexpected = vec![
        UnexpectedLabel {
            sample_id: "64f1c0a2e4b0c3d2a1000006".into(),
            frame: None,
            field: "keypoints".into(),
            backend_id: "shape:41".into(),
            label: "polylines `person`".into(),
            reason: "a polyline `person` in keypoints field `keypoints`".into(),
            action: UnexpectedAction::Kept,
            dest: Some("polylines".into()),
        },
        UnexpectedLabel {
            sample_id: "64f1c0a2e4b0c3d2a1000007".into(),
            frame: None,
            field: "keypoints".into(),
            backend_id: "tag:9".into(),
            label: "classifications `blurry`".into(),
            reason: "a tag `blurry` on keypoints field `keypoints`".into(),
            action: UnexpectedAction::Ignored,
            dest: None,
        },
    ];

    let mut destroy = run("old_run", "labelstudio", &[Action::Destroy], 8, 1);
    destroy.details = vec![Detail::DeleteProject {
        project: "annoform/quickstart/old_run".into(),
        tasks: 1,
    }];

    let mut drift = run("night", "cvat", &[Action::Drift, Action::Extend], 40, 3);
    drift.fields.insert("ground_truth".into(), upload(9));
    drift.drift = vec![
        task_missing("annoform/quickstart/night/batch-0002"),
        Drift::SamplesMissing {
            task: "annoform/quickstart/night/batch-0001".into(),
            id: "16".into(),
            backend: "cvat".into(),
            missing: 7,
            samples: (1..=5)
                .map(|i| format!("64f1c0a2e4b0c3d2a10000{i:02}"))
                .collect(),
        },
    ];

    let mut waiting = run("waiting", "labelstudio", &[], 5, 5);
    waiting.waiting = Some(Waiting {
        complete: 1,
        tasks: 5,
        when: LoadWhen::Complete,
        open: vec![
            OpenTask {
                task: "annoform/quickstart/waiting/batch-0001".into(),
                status: "annotation".into(),
            },
            OpenTask {
                task: "annoform/quickstart/waiting/batch-0002".into(),
                status: "2/3 labeled".into(),
            },
        ],
    });

    let mut stable = run("stable", "labelstudio", &[], 20, 2);
    stable.fields.insert(
        "ground_truth".into(),
        FieldCounts {
            unchanged: 50,
            ..FieldCounts::default()
        },
    );

    Plan::new(vec![
        create, extend, update, replace, merge, destroy, drift, waiting, stable,
    ])
}

fn opts(color: bool, verbose: bool) -> TextOptions {
    TextOptions {
        color,
        verbose,
        width: 100,
    }
}

#[test]
fn text_compact() {
    insta::assert_snapshot!(text::render(&fixture(), &opts(false, false)));
}

#[test]
fn text_verbose() {
    insta::assert_snapshot!(text::render(&fixture(), &opts(false, true)));
}

#[test]
fn text_color() {
    // Escape codes made visible, so the snapshot shows which text is styled how.
    let out = text::render(&fixture(), &opts(true, false));
    insta::assert_snapshot!(out.replace('\x1b', "\\e"));
}

#[test]
fn text_narrow_wraps_free_text() {
    let out = text::render(
        &fixture(),
        &TextOptions {
            width: 60,
            ..opts(false, false)
        },
    );
    insta::assert_snapshot!(out);
}

#[test]
fn text_wide_puts_rejections_on_one_line() {
    let out = text::render(
        &fixture(),
        &TextOptions {
            width: 160,
            ..opts(false, false)
        },
    );
    let line = "        ground_truth  delete    sample 64f1c0a2e4b0c3d2a1000001  \
                label 64f1c0a2e4b0c3d2b2000001  allow_deletions=false\n";
    assert!(out.contains(line), "{out}");
}

#[test]
fn text_empty() {
    let plan = Plan::new(Vec::new());
    insta::assert_snapshot!(text::render(&plan, &opts(false, false)), @"No changes. Runs match the manifests.");
    assert_eq!(
        text::render(&plan, &opts(false, true)),
        "No changes. Runs match the manifests.\n"
    );
}

#[test]
fn text_only_unchanged_runs() {
    let plan = Plan::new(vec![run("stable", "cvat", &[], 3, 1)]);
    assert_eq!(
        text::render(&plan, &opts(false, false)),
        "No changes. Runs match the manifests.\n"
    );
    insta::assert_snapshot!(text::render(&plan, &opts(false, true)), @r"
      = no changes  quickstart/stable (cvat)
          3 samples, 1 task

    No changes. Runs match the manifests.
    ");
}

#[test]
fn text_escapes_control_characters() {
    let mut r = run("evil\x1b[2J", "cvat", &[Action::Drift], 1, 1);
    r.drift = vec![task_missing("moved\rback")];
    let out = text::render(&Plan::new(vec![r]), &opts(false, false));
    assert!(!out.contains('\x1b') && !out.contains('\r'), "{out:?}");
}

#[test]
fn json_full() {
    insta::assert_snapshot!(json::render(&fixture()));
}

#[test]
fn json_empty() {
    insta::assert_snapshot!(json::render(&Plan::new(Vec::new())), @r#"
    {
      "format_version": "2",
      "runs": [],
      "summary": {
        "create": 0,
        "extend": 0,
        "update": 0,
        "replace": 0,
        "merge": 0,
        "destroy": 0,
        "drift": 0
      },
      "changes": false
    }
    "#);
}

#[test]
fn json_ends_with_newline() {
    assert!(json::render(&fixture()).ends_with("}\n"));
}

#[test]
fn json_round_trips() {
    for plan in [fixture(), Plan::new(Vec::new())] {
        assert_eq!(json::parse(&json::render(&plan)).unwrap(), plan);
    }
}

#[test]
fn json_refuses_other_format_versions() {
    let mut plan = fixture();
    plan.format_version = "1".to_string();
    let err = json::parse(&json::render(&plan)).unwrap_err();
    assert!(
        matches!(err, json::ParseError::UnsupportedVersion { ref found } if found == "\"1\""),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "plan format_version \"1\" is not supported: this annoform reads format_version \"2\""
    );
    assert!(json::check_version("2").is_ok());
}

#[test]
fn markdown_full() {
    let parts = markdown::render(&fixture(), MAX_CHARS);
    assert_eq!(parts.len(), 1);
    insta::assert_snapshot!(parts[0]);
}

#[test]
fn markdown_empty() {
    let parts = markdown::render(&Plan::new(Vec::new()), MAX_CHARS);
    assert_eq!(parts.len(), 1);
    insta::assert_snapshot!(parts[0], @r"
    ### annoform plan

    No changes. Runs match the manifests.
    ");
}

#[test]
fn markdown_split_small() {
    // A small limit shows how parts re-open `<details>` and repeat table headers.
    let mut plan = fixture();
    let more = (6..12).map(|i| {
        rejection(
            i,
            "keypoints",
            ChangeKind::Add,
            restricted(Restriction::AllowAdditions),
        )
    });
    plan.runs[4].rejected.extend(more);
    let parts = markdown::render(&plan, 1_000);
    assert!(parts.iter().all(|p| p.chars().count() <= 1_000));
    insta::assert_snapshot!(parts.join("\n=========== next comment ===========\n\n"));
}

/// A merge with `n` rejections, each with a unique label id.
fn huge_merge(n: usize) -> Plan {
    let mut r = run("huge", "cvat", &[Action::Merge], n, 30);
    r.fields.insert(
        "ground_truth".into(),
        FieldCounts {
            rejected: n,
            ..FieldCounts::default()
        },
    );
    r.rejected = (0..n)
        .map(|i| {
            rejection(
                i,
                "ground_truth",
                ChangeKind::Delete,
                restricted(Restriction::AllowDeletions),
            )
        })
        .collect();
    r.drift = vec![task_missing("annoform/quickstart/huge/batch-0002")];
    Plan::new(vec![fixture().runs[0].clone(), r])
}

/// Asserts that `parts` fit `max`, keep `<details>` balanced, and hold each rejection once.
fn check_split(plan: &Plan, parts: &[String], max: usize) {
    for (i, part) in parts.iter().enumerate() {
        assert!(
            part.chars().count() <= max,
            "part {i} has {} chars",
            part.chars().count()
        );
        assert_eq!(
            part.matches("<details>").count(),
            part.matches("</details>").count(),
            "part {i} cuts a <details> block"
        );
        if i > 0 {
            let heading = format!(
                "### annoform plan (continued, part {}/{})",
                i + 1,
                parts.len()
            );
            assert!(part.starts_with(&heading), "part {i}: {}", &part[..80]);
        }
        for line in part.lines().filter(|l| l.starts_with('|')) {
            assert!(line.ends_with('|'), "part {i} cuts a row: {line}");
        }
    }
    let all = parts.concat();
    for r in plan.runs.iter().flat_map(|r| &r.rejected) {
        assert_eq!(all.matches(&r.label_id).count(), 1, "{}", r.label_id);
    }
}

#[test]
fn markdown_splits_3000_rejections() {
    let plan = huge_merge(3000);
    let parts = markdown::render(&plan, MAX_CHARS);
    assert!(
        parts.len() > 1,
        "3000 rejections should not fit one comment"
    );
    check_split(&plan, &parts, MAX_CHARS);
}

#[test]
fn markdown_splits_at_many_limits() {
    let plan = huge_merge(300);
    for max in [1_000, 2_345, 10_000, 65_000] {
        check_split(&plan, &markdown::render(&plan, max), max);
    }
}

#[test]
fn markdown_shortens_rows_longer_than_a_comment() {
    let mut plan = huge_merge(3);
    plan.runs[1].rejected[1].reason = Refusal::Unfit {
        why: "`|".repeat(5_000),
        restriction: None,
    };
    let parts = markdown::render(&plan, 1_000);
    check_split(&plan, &parts, 1_000);
    assert!(parts.concat().contains("… |\n"));
}

#[test]
fn markdown_escapes_user_strings() {
    let mut r = run("a|b", "cvat", &[Action::Drift], 1, 1);
    r.dataset = "<script>".to_string();
    r.drift = vec![task_missing("`x` | <y>")];
    let out = markdown::render(&Plan::new(vec![r]), MAX_CHARS).concat();
    assert!(out.contains("| **a\\|b** | &lt;script&gt; |"), "{out}");
    assert!(out.contains("&#96;x&#96; \\| &lt;y&gt;"), "{out}");
    assert!(
        out.contains("<summary><b>a|b</b> (&lt;script&gt;, cvat)"),
        "{out}"
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// User strings with everything Markdown, HTML and terminals treat specially.
    fn user_string() -> impl Strategy<Value = String> {
        "[a-z0-9 |<>`*~&_\\\\\n\x1b-]{0,24}"
    }

    fn arb_rejection(i: usize) -> impl Strategy<Value = Rejection> {
        (user_string(), user_string(), user_string(), user_string()).prop_map(
            move |(sample, field, attribute, why)| Rejection {
                sample_id: sample,
                frame: None,
                // Unique, so each one can be counted in the output.
                label_id: format!("label{i:05}x"),
                field,
                change: ChangeKind::Attribute,
                attribute: Some(attribute),
                reason: Refusal::Unfit {
                    why,
                    restriction: None,
                },
            },
        )
    }

    fn arb_run(index: usize) -> impl Strategy<Value = RunPlan> {
        (
            (user_string(), user_string(), user_string()),
            proptest::sample::subsequence(Action::ALL.to_vec(), 0..3),
            (0usize..500, 0usize..50),
            proptest::collection::vec(user_string(), 0..3),
            proptest::collection::vec(user_string(), 0..3),
            0usize..60,
        )
            .prop_flat_map(move |(names, actions, counts, drift, details, n)| {
                let rejections: Vec<_> = (0..n).map(|i| arb_rejection(index * 1000 + i)).collect();
                (
                    Just((names, actions, counts, drift, details)),
                    rejections,
                    any::<[u8; 6]>(),
                )
            })
            .prop_map(|((names, actions, counts, drift, details), rejected, c)| {
                let mut fields = IndexMap::new();
                fields.insert(
                    crate::dataset::FieldPath::parse(&names.0),
                    FieldCounts {
                        upload: c[0].into(),
                        added: c[1].into(),
                        edited: c[2].into(),
                        deleted: c[3].into(),
                        rejected: rejected.len(),
                        unchanged: c[5].into(),
                        unexpected: 0,
                        edits: EditKinds {
                            label: c[2].into(),
                            ..EditKinds::default()
                        },
                    },
                );
                RunPlan {
                    unexpected: Vec::new(),
                    key: names.0,
                    dataset: names.1,
                    backend: names.2,
                    actions,
                    samples: counts.0,
                    tasks: counts.1,
                    fields,
                    rejected,
                    drift: drift
                        .into_iter()
                        .map(|t: String| task_missing(&t))
                        .collect(),
                    details: details
                        .into_iter()
                        .map(|project| Detail::Cleanup { project })
                        .collect(),
                    waiting: None,
                    edits: Vec::new(),
                    schema_change: None,
                    schema: None,
                    error: None,
                    hint: None,
                    failure: None,
                }
            })
    }

    fn arb_plan() -> impl Strategy<Value = Plan> {
        (0usize..5)
            .prop_flat_map(|n| (0..n).map(arb_run).collect::<Vec<_>>())
            .prop_map(Plan::new)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn markdown_parts_fit_and_hold_every_rejection(plan in arb_plan(), max in 1_000usize..4_000) {
            let parts = markdown::render(&plan, max);
            for (i, part) in parts.iter().enumerate() {
                prop_assert!(part.chars().count() <= max, "part {} too long", i);
                prop_assert_eq!(part.matches("<details>").count(), part.matches("</details>").count());
            }
            let all = parts.concat();
            for r in plan.runs.iter().flat_map(|r| &r.rejected) {
                prop_assert_eq!(all.matches(&r.label_id).count(), 1);
            }
        }

        #[test]
        fn json_round_trips_any_plan(plan in arb_plan()) {
            prop_assert_eq!(json::parse(&json::render(&plan)).unwrap(), plan);
        }

        #[test]
        fn text_has_no_control_characters_but_newlines(plan in arb_plan(), verbose: bool, width in 0usize..120) {
            let out = text::render(&plan, &TextOptions { color: false, verbose, width });
            prop_assert!(out.chars().all(|c| c == '\n' || !c.is_control()), "{:?}", out);
        }
    }
}

/// A run with its resolved schema and a run that could not be planned.
fn schema_fixture() -> Plan {
    use crate::manifest::{AttributeType, LabelType, Scalar};
    use crate::schema::{ResolvedAttribute, ResolvedField, ResolvedSchema};
    let attr = |t: AttributeType| ResolvedAttribute {
        attr_type: t,
        values: Vec::new(),
        default: None,
        read_only: false,
        mutable: true,
    };
    let mut gt = ResolvedField::new(LabelType::Detections, lines(&["car", "person", "indoor"]));
    gt.attributes
        .insert("occluded".into(), attr(AttributeType::Occluded));
    gt.attributes
        .insert("color".into(), attr(AttributeType::Text));
    gt.attributes.insert(
        "kind".into(),
        ResolvedAttribute {
            values: vec![Scalar::Str("sedan".into()), Scalar::Str("suv".into())],
            default: Some(Scalar::Str("sedan".into())),
            read_only: true,
            mutable: false,
            ..attr(AttributeType::Select)
        },
    );
    gt.class_attributes.insert(
        "car".into(),
        [("make".to_string(), attr(AttributeType::Text))]
            .into_iter()
            .collect(),
    );
    gt.restrictions.allow_deletions = false;
    gt.restrictions.allow_spatial_edits = false;
    let mut seg = ResolvedField::new(LabelType::Segmentation, lines(&["road", "sky"]));
    seg.existing = false;
    seg.mask_targets = Some(
        [("1", "road"), ("2", "sky")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let mut schema = ResolvedSchema::default();
    schema.fields.insert("ground_truth".into(), gt);
    schema.fields.insert("seg".into(), seg);
    let mut create = run("fix_gt", "cvat", &[Action::Create], 4, 1);
    create.fields.insert("ground_truth".into(), upload(8));
    create.schema = Some(schema);
    let mut broken = run("old_review", "cvat", &[], 0, 0);
    broken.error = Some("field `ground_truth`: is a new field and needs `type`".into());
    broken.hint = Some("fix the run's manifest".into());
    Plan::new(vec![create, broken])
}

#[test]
fn schema_and_errors_text() {
    insta::assert_snapshot!(text::render(&schema_fixture(), &opts(false, true)));
    // Without --verbose the schema is left out, the error is not.
    let compact = text::render(&schema_fixture(), &opts(false, false));
    assert!(!compact.contains("schema:"), "{compact}");
    assert!(compact.contains("error: field `ground_truth`"), "{compact}");
}

#[test]
fn schema_and_errors_markdown() {
    insta::assert_snapshot!(markdown::render(&schema_fixture(), MAX_CHARS).join("\n---\n"));
}

#[test]
fn schema_and_errors_json() {
    let plan = schema_fixture();
    let text = json::render(&plan);
    insta::assert_snapshot!(text);
    assert_eq!(json::parse(&text).unwrap(), plan);
}

/// A run whose schema gains a class and an attribute, with Label Studio's labeling config
/// before and after, and a merge editing two labels.
fn diff_fixture() -> Plan {
    use crate::plan::model::{LabelEdit, PropertyChange};
    use crate::schema::diff::{FieldChange, FieldChangeKind, Rendered, SchemaChange};
    let mut r = run(
        "review",
        "labelstudio",
        &[Action::Update, Action::Merge],
        3,
        1,
    );
    let field = |name: &str, change| FieldChange {
        field: crate::dataset::FieldPath::sample(name),
        change,
        label_type: None,
        classes_added: Vec::new(),
        classes_removed: Vec::new(),
        attributes_added: Vec::new(),
        attributes_removed: Vec::new(),
        attributes_changed: Vec::new(),
        restrictions_changed: false,
        mask_targets_changed: false,
    };
    let mut gt = field("ground_truth", FieldChangeKind::Changed);
    gt.classes_added = vec!["truck".into()];
    gt.classes_removed = vec!["bike".into()];
    gt.attributes_added = vec!["occluded".into()];
    r.schema_change = Some(SchemaChange {
        fields: vec![gt, field("scene", FieldChangeKind::Added)],
        rendered: Some(Rendered {
            what: "Label Studio labeling config".into(),
            before: "<View>\n  <Image name=\"image\" value=\"$image\"/>\n  <RectangleLabels name=\"ground_truth\" toName=\"image\">\n    <Label value=\"car\"/>\n    <Label value=\"bike\"/>\n  </RectangleLabels>\n</View>\n".into(),
            after: "<View>\n  <Image name=\"image\" value=\"$image\"/>\n  <RectangleLabels name=\"ground_truth\" toName=\"image\">\n    <Label value=\"car\"/>\n    <Label value=\"truck\"/>\n  </RectangleLabels>\n  <Choices name=\"scene\" toName=\"image\"/>\n</View>\n".into(),
        }),
    });
    r.fields.insert(
        crate::dataset::FieldPath::sample("ground_truth"),
        FieldCounts {
            edited: 2,
            unchanged: 1,
            ..FieldCounts::default()
        },
    );
    r.edits = vec![
        LabelEdit {
            sample_id: "6b02536263110a1e76c075f7".into(),
            frame: None,
            field: "ground_truth".into(),
            label_id: "6b02535c63110a1e76c075c0".into(),
            changes: vec![PropertyChange {
                property: "label".into(),
                before: Some("\"car\"".into()),
                after: Some("\"person\"".into()),
            }],
        },
        LabelEdit {
            sample_id: "6b02536263110a1e76c075f8".into(),
            frame: None,
            field: "ground_truth".into(),
            label_id: "6b02535c63110a1e76c075c2".into(),
            changes: PropertyChange::between(
                &serde_json::json!({"_id": 1, "label": "car", "bounding_box": [0.1, 0.1, 0.2, 0.2], "confidence": 0.5}),
                &serde_json::json!({"_id": 1, "label": "car", "bounding_box": [0.1, 0.15, 0.2, 0.2]}),
            ),
        },
    ];
    Plan::new(vec![r])
}

#[test]
fn diff_text_compact() {
    insta::assert_snapshot!(text::render(&diff_fixture(), &opts(false, false)));
}

#[test]
fn diff_text_verbose() {
    insta::assert_snapshot!(text::render(&diff_fixture(), &opts(false, true)));
}

#[test]
fn diff_markdown() {
    let parts = markdown::render(&diff_fixture(), MAX_CHARS);
    assert_eq!(parts.len(), 1);
    insta::assert_snapshot!(parts[0]);
}

#[test]
fn diff_json() {
    let plan = diff_fixture();
    let text = json::render(&plan);
    assert_eq!(json::parse(&text).unwrap(), plan);
    insta::assert_snapshot!(text);
}

#[test]
fn property_changes_name_each_changed_property_and_cut_long_values() {
    use crate::plan::model::PropertyChange;
    let long: Vec<f64> = (0..100).map(f64::from).collect();
    let c = PropertyChange::between(
        &serde_json::json!({"points": long, "label": "a"}),
        &serde_json::json!({"points": [], "label": "a", "new": true}),
    );
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[0].before.as_ref().unwrap().ends_with('…'));
    assert_eq!(
        c[0].before.as_ref().unwrap().chars().count(),
        PropertyChange::MAX_CHARS + 1
    );
    assert_eq!(
        (
            c[1].property.as_str(),
            c[1].before.as_deref(),
            c[1].after.as_deref()
        ),
        ("new", None, Some("true"))
    );
    assert!(PropertyChange::between(&serde_json::json!(3), &serde_json::json!(3)).is_empty());
    assert_eq!(
        PropertyChange::between(&serde_json::json!(3), &serde_json::json!(4))[0].property,
        "value"
    );
}
