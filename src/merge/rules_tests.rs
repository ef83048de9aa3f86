//! The merge rules as a table: every restriction × every label type, scalars, read-only
//! attributes; and the merge's laws as properties.

use super::*;
use crate::manifest::AttributeType;
use crate::plan::{EditKinds, Restriction, UnexpectedAction};
use crate::schema::{ResolvedAttribute, Restrictions};
use proptest::prelude::*;

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";

fn attr(read_only: bool) -> ResolvedAttribute {
    ResolvedAttribute {
        attr_type: AttributeType::Text,
        values: vec![],
        default: None,
        read_only,
        mutable: true,
    }
}

fn field(t: LabelType, r: Restrictions) -> ResolvedField {
    ResolvedField {
        label_type: t,
        existing: true,
        classes: if t == LabelType::Scalar {
            vec![]
        } else {
            vec!["a".into(), "b".into()]
        },
        attributes: [
            ("color".to_string(), attr(false)),
            ("note".to_string(), attr(true)),
        ]
        .into(),
        class_attributes: IndexMap::new(),
        mask_targets: None,
        restrictions: r,
    }
}

/// A label of type `t` with geometry variant `g`.
fn label(t: LabelType, id: &str, class: &str, g: u32) -> Value {
    let x = 0.1 + f64::from(g) * 0.1;
    let mut l =
        json!({"_id": {"$oid": id}, "label": class, "color": "red", "note": "n", "custom": [1, 2]});
    let o = l.as_object_mut().unwrap();
    match t {
        LabelType::Detections => {
            o.insert("_cls".into(), json!("Detection"));
            o.insert("bounding_box".into(), json!([x, 0.2, 0.3, 0.4]));
            o.insert("index".into(), json!(1));
        }
        LabelType::Instances => {
            o.insert("_cls".into(), json!("Detection"));
            o.insert("bounding_box".into(), json!([0.1, 0.2, 0.3, 0.4]));
            o.insert(
                "mask".into(),
                json!({"$binary": {"base64": format!("mask{g}"), "subType": "00"}}),
            );
            o.insert("index".into(), json!(1));
        }
        LabelType::Polylines | LabelType::Polygons => {
            o.insert("_cls".into(), json!("Polyline"));
            o.insert("points".into(), json!([[[x, 0.1], [0.5, 0.5], [0.9, 0.1]]]));
            o.insert("closed".into(), json!(t == LabelType::Polygons));
            o.insert("filled".into(), json!(t == LabelType::Polygons));
            o.insert("index".into(), json!(1));
        }
        LabelType::Keypoints => {
            o.insert("_cls".into(), json!("Keypoint"));
            o.insert("points".into(), json!([[x, 0.1], [0.5, 0.5]]));
            o.insert("index".into(), json!(1));
        }
        LabelType::Classification | LabelType::Classifications => {
            o.insert("_cls".into(), json!("Classification"));
        }
        LabelType::Segmentation => {
            o.insert("_cls".into(), json!("Segmentation"));
            o.insert(
                "mask".into(),
                json!({"$binary": {"base64": format!("seg{g}"), "subType": "00"}}),
            );
        }
        LabelType::Scalar => unreachable!("scalars are plain values"),
    }
    l
}

fn has_geometry(t: LabelType) -> bool {
    !geometry_keys(t).is_empty()
}

fn has_index(t: LabelType) -> bool {
    has_geometry(t) && t != LabelType::Segmentation
}

fn single(t: LabelType) -> bool {
    container(t).1.is_none()
}

struct Merge {
    /// The outcome, its edit kinds moved to `kinds` (the tables compare the other counts).
    out: FieldOutcome,
    kinds: EditKinds,
    /// The field's labels afterwards.
    labels: Vec<Value>,
}

fn merge(f: &ResolvedField, current: &[Value], uploaded: &[Value], download: &[Value]) -> Merge {
    merge_with(
        f,
        current,
        uploaded,
        download,
        Conflicts::Error,
        Unexpected::Keep,
    )
}

fn merge_with(
    f: &ResolvedField,
    current: &[Value],
    uploaded: &[Value],
    download: &[Value],
    conflicts: Conflicts,
    unexpected: Unexpected,
) -> Merge {
    let value = field_value(current.to_vec(), f.label_type);
    let uploaded: Vec<UploadedLabel> = uploaded
        .iter()
        .map(|l| UploadedLabel {
            id: label_key(l, f.label_type).unwrap(),
            digest: label_digest(l, f),
        })
        .collect();
    let downloaded: Vec<DownloadedLabel> = download
        .iter()
        .enumerate()
        .map(|(i, l)| DownloadedLabel::new(format!("obj-{i}"), l.clone()))
        .collect();
    let mut out = merge_field(&FieldInput {
        field: "f",
        frame: None,
        schema: f,
        sample_id: "s",
        current: value.as_ref(),
        uploaded: &uploaded,
        downloaded: &downloaded,
        id_map: &IndexMap::new(),
        id_seed: b"seed",
        conflicts,
        unexpected,
        as_held: None,
    });
    let after = match &out.new_value {
        Some(v) => v.clone(),
        None => value.clone(),
    };
    let labels = labels_of(after.as_ref(), f.label_type);
    let kinds = std::mem::take(&mut out.counts.edits);
    // Every edited label has at least one kind, and no kind counts a label twice.
    let k = [kinds.label, kinds.geometry, kinds.index, kinds.attributes];
    assert!(k.iter().all(|n| *n <= out.counts.edited), "{kinds:?}");
    assert!(k.iter().sum::<usize>() >= out.counts.edited, "{kinds:?}");
    Merge { out, labels, kinds }
}

const TYPES: [LabelType; 8] = [
    LabelType::Detections,
    LabelType::Instances,
    LabelType::Polylines,
    LabelType::Polygons,
    LabelType::Keypoints,
    LabelType::Classification,
    LabelType::Classifications,
    LabelType::Segmentation,
];

fn none() -> Restrictions {
    Restrictions {
        allow_additions: false,
        allow_deletions: false,
        allow_label_edits: false,
        allow_index_edits: false,
        allow_spatial_edits: false,
    }
}

fn only(change: &str, allowed: bool) -> Restrictions {
    let mut r = Restrictions::default();
    match change {
        "label" => r.allow_label_edits = allowed,
        "geometry" => r.allow_spatial_edits = allowed,
        "index" => r.allow_index_edits = allowed,
        "add" => r.allow_additions = allowed,
        "delete" => r.allow_deletions = allowed,
        _ => {}
    }
    r
}

fn counts(
    added: usize,
    edited: usize,
    deleted: usize,
    rejected: usize,
    unchanged: usize,
) -> FieldCounts {
    FieldCounts {
        upload: 0,
        added,
        edited,
        deleted,
        rejected,
        unchanged,
        unexpected: 0,
        edits: EditKinds::default(),
    }
}

#[test]
fn class_edits_follow_allow_label_edits() {
    for t in TYPES {
        for allowed in [true, false] {
            let f = field(t, only("label", allowed));
            let up = label(t, A, "a", 0);
            let mut dl = up.clone();
            dl["label"] = json!("b");
            let m = merge(
                &f,
                std::slice::from_ref(&up),
                std::slice::from_ref(&up),
                &[dl],
            );
            let expected = if allowed {
                counts(0, 1, 0, 0, 0)
            } else {
                counts(0, 0, 0, 1, 0)
            };
            assert_eq!(m.out.counts, expected, "{t} allowed={allowed}");
            let kinds = EditKinds {
                label: usize::from(allowed),
                ..EditKinds::default()
            };
            assert_eq!(m.kinds, kinds, "{t}");
            assert_eq!(m.labels[0]["label"], if allowed { "b" } else { "a" }, "{t}");
            assert_eq!(m.labels[0]["_id"]["$oid"], A, "{t}: ids survive edits");
            if !allowed {
                assert_eq!(
                    m.out.rejected[0].reason,
                    Refusal::Restricted {
                        restriction: Restriction::AllowLabelEdits
                    }
                );
            }
        }
    }
}

#[test]
fn a_relabel_to_a_class_outside_the_schema_follows_the_policy() {
    for t in TYPES {
        let f = field(t, Restrictions::default());
        let up = label(t, A, "a", 0);
        let mut dl = up.clone();
        dl["label"] = json!("zebra");
        let run = |u| {
            merge_with(
                &f,
                std::slice::from_ref(&up),
                std::slice::from_ref(&up),
                std::slice::from_ref(&dl),
                Conflicts::Error,
                u,
            )
        };
        // `keep`: merged, as FiftyOne merges any class.
        let m = run(Unexpected::Keep);
        assert_eq!(m.out.counts.edited, 1, "{t}");
        assert_eq!(m.labels[0]["label"], "zebra");
        for u in [Unexpected::Ignore, Unexpected::Report, Unexpected::Return] {
            let m = run(u);
            assert_eq!(m.out.counts, counts(0, 0, 0, 1, 0), "{t}");
            assert_eq!(m.out.rejected[0].reason, Refusal::ClassNotInSchema);
            assert_eq!(m.labels[0]["label"], "a");
        }
        let m = run(Unexpected::Error);
        assert_eq!(m.out.unexpected_errors.len(), 1, "{t}");
        assert_eq!(
            m.out.unexpected_errors[0].label,
            OutsideLabel::Relabelled {
                label_id: A.to_string(),
                class: "zebra".into()
            },
            "{t}"
        );
    }
}

#[test]
fn geometry_edits_follow_allow_spatial_edits() {
    for t in TYPES.into_iter().filter(|t| has_geometry(*t)) {
        for allowed in [true, false] {
            let f = field(t, only("geometry", allowed));
            let up = label(t, A, "a", 0);
            let dl = label(t, A, "a", 1);
            let m = merge(
                &f,
                std::slice::from_ref(&up),
                std::slice::from_ref(&up),
                std::slice::from_ref(&dl),
            );
            let expected = if allowed {
                counts(0, 1, 0, 0, 0)
            } else {
                counts(0, 0, 0, 1, 0)
            };
            assert_eq!(m.out.counts, expected, "{t} allowed={allowed}");
            let kinds = EditKinds {
                geometry: usize::from(allowed),
                ..EditKinds::default()
            };
            assert_eq!(m.kinds, kinds, "{t}");
            let want = if allowed { &dl } else { &up };
            for k in geometry_keys(t) {
                assert_eq!(m.labels[0].get(*k), want.get(*k), "{t} {k}");
            }
        }
    }
}

#[test]
fn index_edits_follow_allow_index_edits() {
    for t in TYPES.into_iter().filter(|t| has_index(*t)) {
        for allowed in [true, false] {
            let f = field(t, only("index", allowed));
            let up = label(t, A, "a", 0);
            let mut dl = up.clone();
            dl["index"] = json!(7);
            let m = merge(
                &f,
                std::slice::from_ref(&up),
                std::slice::from_ref(&up),
                &[dl],
            );
            let expected = if allowed {
                counts(0, 1, 0, 0, 0)
            } else {
                counts(0, 0, 0, 1, 0)
            };
            assert_eq!(m.out.counts, expected, "{t} allowed={allowed}");
            let kinds = EditKinds {
                index: usize::from(allowed),
                ..EditKinds::default()
            };
            assert_eq!(m.kinds, kinds, "{t}");
            assert_eq!(m.labels[0]["index"], if allowed { 7 } else { 1 }, "{t}");
        }
    }
}

#[test]
fn attribute_edits_always_merge_but_read_only_ones_are_rejected() {
    for t in TYPES {
        let f = field(t, none());
        let up = label(t, A, "a", 0);
        let mut dl = up.clone();
        dl["color"] = json!("blue");
        dl["custom"] = json!("not in the schema");
        let m = merge(
            &f,
            std::slice::from_ref(&up),
            std::slice::from_ref(&up),
            &[dl],
        );
        assert_eq!(m.out.counts, counts(0, 1, 0, 0, 0), "{t}");
        let kinds = EditKinds {
            attributes: 1,
            ..EditKinds::default()
        };
        assert_eq!(m.kinds, kinds, "{t}");
        assert_eq!(m.labels[0]["color"], "blue", "{t}");
        assert_eq!(
            m.labels[0]["custom"],
            json!([1, 2]),
            "{t}: attributes outside the schema are untouched"
        );

        let mut dl = up.clone();
        dl["note"] = json!("changed");
        let m = merge(
            &f,
            std::slice::from_ref(&up),
            std::slice::from_ref(&up),
            &[dl],
        );
        assert_eq!(m.out.counts, counts(0, 0, 0, 1, 0), "{t}");
        assert_eq!(m.out.rejected[0].change, ChangeKind::Attribute);
        assert_eq!(m.out.rejected[0].attribute.as_deref(), Some("note"));
        assert_eq!(m.out.rejected[0].reason, Refusal::ReadOnly);
        assert_eq!(
            m.labels[0]["note"], "n",
            "{t}: read-only attributes are never merged"
        );

        // An attribute missing from the download is written as null (as FiftyOne does).
        let mut dl = up.clone();
        dl.as_object_mut().unwrap().remove("color");
        let m = merge(
            &f,
            std::slice::from_ref(&up),
            std::slice::from_ref(&up),
            &[dl],
        );
        assert_eq!(m.labels[0]["color"], Value::Null, "{t}");
    }
}

#[test]
fn additions_follow_allow_additions_and_single_label_fields() {
    for t in TYPES {
        for allowed in [true, false] {
            let f = field(t, only("add", allowed));
            let mut new = label(t, B, "b", 0);
            new.as_object_mut().unwrap().remove("_id");
            let m = merge(&f, &[], &[], std::slice::from_ref(&new));
            let expected = if allowed {
                counts(1, 0, 0, 0, 0)
            } else {
                counts(0, 0, 0, 1, 0)
            };
            assert_eq!(m.out.counts, expected, "{t} allowed={allowed}");
            if allowed {
                let id = ObjectId::derive(&[b"seed", b"s", b"obj-0"]).to_string();
                assert_eq!(
                    m.labels[0]["_id"]["$oid"], id,
                    "{t}: backend-created labels get derived ids"
                );
            }
        }
        if single(t) {
            // A single-label field that already has a label takes no second one.
            let f = field(t, Restrictions::default());
            let cur = label(t, A, "a", 0);
            let mut new = label(t, B, "b", 1);
            new.as_object_mut().unwrap().remove("_id");
            let m = merge(&f, std::slice::from_ref(&cur), &[], &[new]);
            assert_eq!(m.out.counts, counts(0, 0, 0, 1, 0), "{t}");
            assert_eq!(m.labels.len(), 1);
        }
    }
}

#[test]
fn deletions_follow_allow_deletions() {
    for t in TYPES {
        for allowed in [true, false] {
            let f = field(t, only("delete", allowed));
            let up = label(t, A, "a", 0);
            let m = merge(
                &f,
                std::slice::from_ref(&up),
                std::slice::from_ref(&up),
                &[],
            );
            let expected = if allowed {
                counts(0, 0, 1, 0, 0)
            } else {
                counts(0, 0, 0, 1, 0)
            };
            assert_eq!(m.out.counts, expected, "{t} allowed={allowed}");
            assert_eq!(m.labels.len(), usize::from(!allowed), "{t}");
        }
    }
}

#[test]
fn scalars_add_delete_and_always_edit() {
    let f = |r| field(LabelType::Scalar, r);
    // None → value is an addition.
    let m = merge(&f(only("add", true)), &[], &[], &[json!(3)]);
    assert_eq!(
        (m.out.counts, m.labels.clone()),
        (counts(1, 0, 0, 0, 0), vec![json!(3)])
    );
    let m = merge(&f(only("add", false)), &[], &[], &[json!(3)]);
    assert_eq!((m.out.counts, m.labels.len()), (counts(0, 0, 0, 1, 0), 0));
    // value → None is a deletion.
    let m = merge(&f(only("delete", true)), &[json!(3)], &[json!(3)], &[]);
    assert_eq!((m.out.counts, m.labels.len()), (counts(0, 0, 1, 0, 0), 0));
    let m = merge(&f(only("delete", false)), &[json!(3)], &[json!(3)], &[]);
    assert_eq!(
        (m.out.counts, m.labels.clone()),
        (counts(0, 0, 0, 1, 0), vec![json!(3)])
    );
    // A changed value is always written.
    let m = merge(&f(none()), &[json!(3)], &[json!(3)], &[json!(4)]);
    assert_eq!(
        (m.out.counts, m.labels.clone()),
        (counts(0, 1, 0, 0, 0), vec![json!(4)])
    );
    let m = merge(&f(none()), &[json!(3)], &[json!(3)], &[json!(3)]);
    assert_eq!(m.out.counts, counts(0, 0, 0, 0, 1));
    assert!(m.out.new_value.is_none());
}

#[test]
fn a_label_changed_on_both_sides_is_a_conflict() {
    let f = field(LabelType::Detections, Restrictions::default());
    let uploaded = label(LabelType::Detections, A, "a", 0);
    let in_dataset = label(LabelType::Detections, A, "a", 1); // moved in the dataset since upload
    let mut in_backend = uploaded.clone();
    in_backend["label"] = json!("b"); // and relabelled by annotators
    let run = |c| {
        merge_with(
            &f,
            std::slice::from_ref(&in_dataset),
            std::slice::from_ref(&uploaded),
            std::slice::from_ref(&in_backend),
            c,
            Unexpected::Keep,
        )
    };
    let m = run(Conflicts::Error);
    assert_eq!(m.out.conflicts.len(), 1);
    assert!(m.out.new_value.is_none());
    let m = run(Conflicts::Dataset);
    assert!(m.out.conflicts.is_empty() && m.out.new_value.is_none());
    let m = run(Conflicts::Backend);
    assert_eq!(m.labels[0]["label"], "b");
    // Changed only in the dataset: annotators did not touch it, the dataset keeps its change.
    let m = run_only_dataset_changed(&f, &uploaded, &in_dataset);
    assert_eq!(m.out.counts, counts(0, 0, 0, 0, 1));
    assert!(m.out.new_value.is_none());
}

fn run_only_dataset_changed(f: &ResolvedField, uploaded: &Value, in_dataset: &Value) -> Merge {
    merge(
        f,
        std::slice::from_ref(in_dataset),
        std::slice::from_ref(uploaded),
        std::slice::from_ref(uploaded),
    )
}

#[test]
fn unexpected_classes_follow_the_policy() {
    let f = field(LabelType::Detections, Restrictions::default());
    let cur = label(LabelType::Detections, A, "a", 0);
    let mut truck = label(LabelType::Detections, B, "truck", 1);
    truck.as_object_mut().unwrap().remove("_id");
    let run = |u| {
        merge_with(
            &f,
            std::slice::from_ref(&cur),
            std::slice::from_ref(&cur),
            &[cur.clone(), truck.clone()],
            Conflicts::Error,
            u,
        )
    };
    // `keep`: into the run's field, as FiftyOne merges any class.
    let keep = run(Unexpected::Keep);
    assert!(keep.out.unexpected.is_empty());
    assert_eq!(keep.out.counts.added, 1);
    assert_eq!(keep.labels.len(), 2);
    assert_eq!(keep.labels[1]["label"], "truck");
    assert!(
        matches!(
            &keep.out.changes[0],
            LabelChange::Added { class: Some(c), outside_schema: true, .. } if c == "truck"
        ),
        "{:?}",
        keep.out.changes
    );
    // `ignore` and `return`: left out, counted and listed.
    for (u, action) in [
        (Unexpected::Ignore, UnexpectedAction::Ignored),
        (Unexpected::Return, UnexpectedAction::Returned),
    ] {
        let m = run(u);
        assert!(m.out.new_value.is_none(), "the field itself is unchanged");
        assert!(m.out.rejected.is_empty());
        assert_eq!(m.out.counts.unexpected, 1);
        assert_eq!(m.out.unexpected[0].action, action);
        assert_eq!(m.out.unexpected[0].label, "detections `truck`");
        assert_eq!(m.out.returned.len(), usize::from(u == Unexpected::Return));
    }
    let report = run(Unexpected::Report);
    assert_eq!(report.out.counts.rejected, 1);
    assert!(
        matches!(
            &report.out.rejected[0].reason,
            Refusal::Unexpected { why, policy: Unexpected::Report } if why.contains("not in the schema")
        ),
        "{:?}",
        report.out.rejected[0].reason
    );
    let error = run(Unexpected::Error).out.unexpected_errors;
    assert_eq!(error.len(), 1);
    assert!(
        matches!(
            &error[0].label,
            OutsideLabel::Unexpected { label_type: LabelType::Detections, class: Some(c), reason, .. }
                if c == "truck" && reason.contains("not in the schema")
        ),
        "{error:?}"
    );
    // With additions forbidden, keeping is forbidden too.
    let f = field(LabelType::Detections, only("add", false));
    let m = merge_with(
        &f,
        std::slice::from_ref(&cur),
        std::slice::from_ref(&cur),
        &[cur.clone(), truck.clone()],
        Conflicts::Error,
        Unexpected::Keep,
    );
    assert!(m.out.unexpected.is_empty());
    assert_eq!(m.out.counts.rejected, 1);
    assert_eq!(
        m.out.rejected[0].reason,
        Refusal::Restricted {
            restriction: Restriction::AllowAdditions
        }
    );
}

/// A download: for each uploaded label, keep/relabel/move/delete; plus new labels.
#[derive(Debug, Clone)]
enum Edit {
    Keep,
    Relabel,
    Move,
    Recolor,
    Delete,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::Keep),
        Just(Edit::Relabel),
        Just(Edit::Move),
        Just(Edit::Recolor),
        Just(Edit::Delete)
    ]
}

fn id(i: usize) -> String {
    format!("{:024x}", i + 1)
}

fn scenario(edits: &[Edit], added: usize) -> (Vec<Value>, Vec<Value>) {
    let t = LabelType::Detections;
    let uploaded: Vec<Value> = (0..edits.len()).map(|i| label(t, &id(i), "a", 0)).collect();
    let mut download = Vec::new();
    for (l, e) in uploaded.iter().zip(edits) {
        let mut d = l.clone();
        match e {
            Edit::Keep => {}
            Edit::Relabel => d["label"] = json!("b"),
            Edit::Move => d["bounding_box"] = json!([0.5, 0.5, 0.1, 0.1]),
            Edit::Recolor => d["color"] = json!("green"),
            Edit::Delete => continue,
        }
        download.push(d);
    }
    for i in 0..added {
        let mut n = label(t, "cccccccccccccccccccccccc", "b", 2);
        n.as_object_mut().unwrap().remove("_id");
        n["bounding_box"] = json!([0.01 * i as f64, 0.0, 0.1, 0.1]);
        download.push(n);
    }
    (uploaded, download)
}

fn restrictions() -> impl Strategy<Value = Restrictions> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(a, d, l, i, s)| Restrictions {
            allow_additions: a,
            allow_deletions: d,
            allow_label_edits: l,
            allow_index_edits: i,
            allow_spatial_edits: s,
        })
}

proptest! {
    #[test]
    fn merging_twice_equals_merging_once(edits in proptest::collection::vec(edit(), 0..8), added in 0usize..4, r in restrictions()) {
        let f = field(LabelType::Detections, r);
        let (uploaded, download) = scenario(&edits, added);
        let first = merge(&f, &uploaded, &uploaded, &download);
        // The second merge starts from the first's result and baseline.
        let value = field_value(first.labels.clone(), LabelType::Detections);
        let downloaded: Vec<DownloadedLabel> = download.iter().enumerate()
            .map(|(i, l)| DownloadedLabel::new(format!("obj-{i}"), l.clone())).collect();
        let again = merge_field(&FieldInput {
            field: "f", schema: &f, sample_id: "s", current: value.as_ref(), uploaded: &first.out.baseline,
            frame: None,
            downloaded: &downloaded, id_map: &IndexMap::new(), id_seed: b"seed",
            conflicts: Conflicts::Error, unexpected: Unexpected::Keep, as_held: None,
        });
        prop_assert!(again.new_value.is_none(), "second merge changed {:?}", again.new_value);
        prop_assert_eq!(again.counts.added + again.counts.edited + again.counts.deleted, 0);
    }

    #[test]
    fn a_download_equal_to_the_upload_is_a_no_op(n in 0usize..8, r in restrictions()) {
        let f = field(LabelType::Detections, r);
        let (uploaded, download) = scenario(&vec![Edit::Keep; n], 0);
        let m = merge(&f, &uploaded, &uploaded, &download);
        prop_assert!(m.out.new_value.is_none());
        prop_assert_eq!(m.out.counts, counts(0, 0, 0, 0, n));
    }

    #[test]
    fn with_everything_forbidden_and_no_attribute_change_nothing_changes(
        edits in proptest::collection::vec(prop_oneof![Just(Edit::Keep), Just(Edit::Relabel), Just(Edit::Move), Just(Edit::Delete)], 0..8),
        added in 0usize..4,
    ) {
        let f = field(LabelType::Detections, none());
        let (uploaded, download) = scenario(&edits, added);
        let m = merge(&f, &uploaded, &uploaded, &download);
        prop_assert_eq!(m.labels, uploaded);
        let changed = edits.iter().filter(|e| !matches!(e, Edit::Keep)).count() + added;
        prop_assert_eq!(m.out.counts.rejected, changed);
    }

    #[test]
    fn labels_outside_the_run_are_untouched(edits in proptest::collection::vec(edit(), 0..6), added in 0usize..3, outside in 0usize..4, r in restrictions()) {
        let f = field(LabelType::Detections, r);
        let (uploaded, download) = scenario(&edits, added);
        // Labels filtered out of the view (never uploaded) sit between the run's labels.
        let others: Vec<Value> = (0..outside).map(|i| {
            let mut l = label(LabelType::Detections, &format!("{:024x}", 0xfff000 + i), "a", 3);
            l["extra"] = json!({"keep": i});
            l
        }).collect();
        let mut current = others.clone();
        current.extend(uploaded.iter().cloned());
        let m = merge(&f, &current, &uploaded, &download);
        let kept: Vec<&Value> = m.labels.iter().filter(|l| others.iter().any(|o| label_id(o) == label_id(l))).collect();
        prop_assert_eq!(kept.len(), outside);
        for (k, o) in kept.iter().zip(&others) {
            prop_assert_eq!(serde_json::to_string(k).unwrap(), serde_json::to_string(o).unwrap());
        }
    }
}

/// A frame label handed back with a `keyframe` key takes it, as FiftyOne's loader does when
/// it imports keyframe marks (`true`, or `null` over a mark the label had: an edit); without
/// the key (marks not imported) the label keeps its own; a new label has no `null` mark.
#[test]
fn keyframes_follow_the_backend_where_it_hands_them() {
    let f = field(LabelType::Detections, Restrictions::default());
    let cur = label(LabelType::Detections, A, "a", 0);
    let run = |cur: &Value, dl: Value| {
        let uploaded = [UploadedLabel {
            id: label_key(cur, f.label_type).unwrap(),
            digest: label_digest(cur, &f),
        }];
        let downloaded = [
            DownloadedLabel::new("t1", dl).on_frame(FrameNumber::FIRST),
            DownloadedLabel::new(
                "t2",
                json!({"_cls": "Detection", "label": "a", "bounding_box": [0, 0, 1, 1], "keyframe": null}),
            )
            .on_frame(FrameNumber::FIRST),
        ];
        let current = field_value(vec![cur.clone()], f.label_type);
        let out = merge_field(&FieldInput {
            field: "frames.f",
            frame: Some(FrameNumber::FIRST),
            schema: &f,
            sample_id: "s",
            current: current.as_ref(),
            uploaded: &uploaded,
            downloaded: &downloaded,
            id_map: &IndexMap::new(),
            id_seed: b"seed",
            conflicts: Conflicts::Error,
            unexpected: Unexpected::Keep,
            as_held: None,
        });
        assert_eq!(out.counts.added, 1);
        let value = out.new_value.clone().flatten();
        let after = labels_of(value.as_ref(), f.label_type);
        assert!(after[1].get("keyframe").is_none(), "{after:?}");
        (out.counts.edited, after[0].clone())
    };
    let with = |l: &Value, k: Value| {
        let mut l = l.clone();
        l["keyframe"] = k;
        l
    };
    // Not imported: the label keeps what it has.
    assert_eq!(run(&cur, cur.clone()), (0, cur.clone()));
    let marked = with(&cur, json!(true));
    assert_eq!(run(&marked, cur.clone()), (0, marked.clone()));
    // Imported: a keyframe now, or no longer one; a label without a mark stays without.
    assert_eq!(run(&cur, marked.clone()), (1, marked.clone()));
    assert_eq!(
        run(&marked, with(&cur, Value::Null)),
        (1, with(&cur, Value::Null))
    );
    assert_eq!(run(&cur, with(&cur, Value::Null)), (0, cur.clone()));
    // With an edit.
    let mut moved = with(&cur, json!(true));
    moved["bounding_box"] = json!([0.5, 0.2, 0.3, 0.4]);
    assert_eq!(run(&cur, moved.clone()), (1, moved));
}
