//! Labels the backend returned that do not fit the run's schema: a class the field does not
//! list, or an object the field cannot hold (another label type, an object of no field of the
//! run, one that converts to no label). Each ends in exactly one place, as `load.unexpected`
//! says, following FiftyOne's `load_annotations`:
//!
//! - to FiftyOne a class outside the schema is an ordinary label: `keep` merges it into the
//!   run's field like any other addition (the merge itself does that);
//! - another label type is what FiftyOne calls unexpected: `keep` writes it to a field named
//!   after FiftyOne's type for it (`detections`, `polylines`, `keypoints`, `classifications`,
//!   `segmentation`, `scalar`), unless the field forbids additions;
//! - `ignore` and `return` leave either kind out of the dataset, listed in the plan (`return`
//!   also writes them to a file when the merge is applied: a CLI cannot return a value);
//!   `report` rejects them; `error` fails the plan naming each one;
//! - an object that converts to no label is rejected, whatever the policy.

use super::{FieldInput, FieldOutcome, new_label};
use crate::backend::DownloadedLabel;
use crate::dataset::ejson::ObjectId;
use crate::manifest::{LabelType, Unexpected};
use crate::plan::{
    ChangeKind, OutsideLabel, OutsideSchema, Refusal, Restriction, UnexpectedAction,
    UnexpectedLabel,
};
use crate::state::{LabelKey, UploadedLabel};
use serde::Serialize;
use serde_json::Value;

/// FiftyOne's type for labels of type `t` (its `_RETURN_TYPES_MAP`): `keep` writes labels of
/// an unexpected type to the field named after it.
pub fn kept_type(t: LabelType) -> LabelType {
    match t {
        LabelType::Classification | LabelType::Classifications => LabelType::Classifications,
        LabelType::Detections | LabelType::Instances => LabelType::Detections,
        LabelType::Polylines | LabelType::Polygons => LabelType::Polylines,
        other => other,
    }
}

/// An unexpected label set aside by `load.unexpected: return`, as the run's file lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Returned {
    pub sample_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<crate::dataset::FrameNumber>,
    pub field: String,
    pub backend_id: String,
    /// FiftyOne's type of the label (`detections`, `polylines`...).
    pub label_type: String,
    pub reason: String,
    /// The label in FiftyOne JSON.
    pub label: Value,
}

/// One unexpected label of a field being settled.
pub(super) struct Found<'a> {
    pub backend_id: &'a str,
    pub key: LabelKey,
    /// The label, with its id.
    pub label: Value,
    /// Its type (the field's own, for a class outside the schema).
    pub label_type: LabelType,
    pub reason: String,
}

/// Settle an object its field cannot hold.
pub(super) fn misfit(input: &FieldInput<'_>, d: &DownloadedLabel, out: &mut FieldOutcome) {
    let Some(m) = &d.misfit else { return };
    // Ids derive from the object, so a kept label is never duplicated by a later merge.
    let id = ObjectId::derive(&[
        input.id_seed,
        input.sample_id.as_bytes(),
        d.backend_key().as_bytes(),
    ]);
    let key = LabelKey::Id(id);
    if input.uploaded.iter().any(|u| u.id == key) {
        // Settled by an earlier merge (and reported then).
        out.baseline
            .push(*input.uploaded.iter().find(|u| u.id == key).expect("found"));
        return;
    }
    out.baseline.push(UploadedLabel {
        id: key,
        digest: super::digest16(&serde_json::json!([d.label, m.reason])),
    });
    let (Some(t), Some(o)) = (m.label_type, d.label.as_object()) else {
        let why = m.reason.clone();
        reject(
            input,
            out,
            &key,
            Refusal::Unfit {
                why,
                restriction: None,
            },
        );
        return;
    };
    if !input.schema.restrictions.allow_additions {
        let refusal = Refusal::Unfit {
            why: m.reason.clone(),
            restriction: Some(Restriction::AllowAdditions),
        };
        reject(input, out, &key, refusal);
        return;
    }
    let mut o = o.clone();
    o.remove("_id");
    let found = Found {
        backend_id: &d.backend_id,
        key,
        label: new_label(id, &o),
        label_type: t,
        reason: m.reason.clone(),
    };
    settle(input, out, found, true);
}

/// Settle an unexpected label by the run's policy. `keep` writes one of an unexpected type
/// (`other_type`) to the field named after its type; the caller merges a class outside the
/// schema into the field itself.
pub(super) fn settle(
    input: &FieldInput<'_>,
    out: &mut FieldOutcome,
    found: Found<'_>,
    other_type: bool,
) {
    let class = found.label.get("label").and_then(Value::as_str);
    let what = match class {
        Some(c) => format!("{} `{c}`", found.label_type.as_str()),
        None => found.label_type.as_str().to_string(),
    };
    let action = match input.unexpected {
        Unexpected::Keep if other_type => UnexpectedAction::Kept,
        Unexpected::Ignore => UnexpectedAction::Ignored,
        Unexpected::Return => UnexpectedAction::Returned,
        Unexpected::Error => {
            out.unexpected_errors.push(OutsideSchema {
                sample_id: input.sample_id.to_string(),
                frame: input.frame,
                field: input.field.to_string(),
                label: OutsideLabel::Unexpected {
                    backend_id: found.backend_id.to_string(),
                    label_type: found.label_type,
                    class: class.map(str::to_string),
                    reason: found.reason,
                },
            });
            return;
        }
        Unexpected::Keep | Unexpected::Report => {
            let refusal = Refusal::Unexpected {
                why: found.reason.clone(),
                policy: input.unexpected,
            };
            reject(input, out, &found.key, refusal);
            return;
        }
    };
    let side = kept_type(found.label_type);
    out.counts.unexpected += 1;
    out.unexpected.push(UnexpectedLabel {
        sample_id: input.sample_id.to_string(),
        frame: input.frame,
        field: input.field.to_string(),
        backend_id: found.backend_id.to_string(),
        label: what,
        reason: found.reason.clone(),
        action,
        dest: (action == UnexpectedAction::Kept).then(|| side.as_str().to_string()),
    });
    match action {
        UnexpectedAction::Kept => out.kept.push((side, found.label)),
        UnexpectedAction::Returned => out.returned.push(Returned {
            sample_id: input.sample_id.to_string(),
            frame: input.frame,
            field: input.field.to_string(),
            backend_id: found.backend_id.to_string(),
            label_type: side.as_str().to_string(),
            reason: found.reason,
            label: found.label,
        }),
        UnexpectedAction::Ignored => {}
    }
}

/// Reject the addition of a label that cannot be merged.
fn reject(input: &FieldInput<'_>, out: &mut FieldOutcome, key: &LabelKey, reason: Refusal) {
    out.counts.rejected += 1;
    out.rejected
        .push(super::rejection(input, key, ChangeKind::Add, None, reason));
}

#[cfg(test)]
mod tests {
    //! The promise, stated as a property: for any annotator output (labels of any type and
    //! class, valid or not), every downloaded label ends in exactly one of merged, rejected or
    //! unexpected, and no label leaves the dataset unless annotators deleted it.

    use super::super::{field_value, label_digest, label_key, labels_of, merge_field};
    use super::*;
    use crate::backend::Misfit;
    use crate::manifest::Conflicts;
    use crate::schema::{ResolvedField, Restrictions};
    use indexmap::IndexMap;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashSet;

    const SAMPLE: &str = "5f0000000000000000000001";
    const SEED: &[u8] = b"dataset/run";
    const CLASSES: [&str; 4] = ["a", "b", "truck", ""];

    fn oid(n: usize) -> String {
        format!("{n:024x}")
    }

    fn det(id: Option<&str>, class: &str, x: f64) -> Value {
        let mut l =
            json!({"_cls": "Detection", "label": class, "bounding_box": [x, 0.2, 0.3, 0.4]});
        if let Some(id) = id {
            l["_id"] = json!({ "$oid": id });
        }
        l
    }

    /// What annotators did to an uploaded label.
    #[derive(Debug, Clone)]
    enum Fate {
        Kept,
        Deleted,
        Relabelled(usize),
        Moved,
    }

    /// Something annotators drew.
    #[derive(Debug, Clone)]
    enum Drawn {
        Box(usize),
        /// Another label type (`None`: an object that converts to no label).
        Misfit(Option<LabelType>),
    }

    fn fate() -> impl Strategy<Value = Fate> {
        prop_oneof![
            Just(Fate::Kept),
            Just(Fate::Deleted),
            (0..CLASSES.len()).prop_map(Fate::Relabelled),
            Just(Fate::Moved),
        ]
    }

    fn drawn() -> impl Strategy<Value = Drawn> {
        let types = prop_oneof![
            Just(None),
            Just(Some(LabelType::Polylines)),
            Just(Some(LabelType::Classifications)),
            Just(Some(LabelType::Keypoints)),
            Just(Some(LabelType::Instances)),
        ];
        prop_oneof![
            (0..CLASSES.len()).prop_map(Drawn::Box),
            types.prop_map(Drawn::Misfit),
        ]
    }

    fn policy() -> impl Strategy<Value = Unexpected> {
        prop_oneof![
            Just(Unexpected::Keep),
            Just(Unexpected::Ignore),
            Just(Unexpected::Error),
            Just(Unexpected::Report),
            Just(Unexpected::Return),
        ]
    }

    proptest! {
        #[test]
        fn every_downloaded_label_is_accounted_for_and_nothing_is_lost(
            fates in proptest::collection::vec(fate(), 0..6),
            others in 0usize..3,
            drawn in proptest::collection::vec(drawn(), 0..6),
            unexpected in policy(),
            additions in any::<bool>(),
            deletions in any::<bool>(),
            edits in any::<bool>(),
        ) {
            let mut schema = ResolvedField::new(LabelType::Detections, vec!["a".into(), "b".into()]);
            schema.restrictions = Restrictions {
                allow_additions: additions,
                allow_deletions: deletions,
                allow_label_edits: edits,
                ..Restrictions::default()
            };
            // The run uploaded one label per fate; the field also holds labels of no run.
            let uploaded: Vec<Value> =
                (0..fates.len()).map(|i| det(Some(&oid(i + 1)), "a", 0.1)).collect();
            let foreign: Vec<Value> =
                (0..others).map(|i| det(Some(&oid(100 + i)), "b", 0.5)).collect();
            let current_labels: Vec<Value> = uploaded.iter().chain(&foreign).cloned().collect();
            let current = field_value(current_labels.clone(), LabelType::Detections);
            let baseline: Vec<UploadedLabel> = uploaded
                .iter()
                .map(|l| UploadedLabel {
                    id: label_key(l, LabelType::Detections).unwrap(),
                    digest: label_digest(l, &schema),
                })
                .collect();
            let mut downloaded = Vec::new();
            for (i, (l, f)) in uploaded.iter().zip(&fates).enumerate() {
                let mut l = l.clone();
                match f {
                    Fate::Deleted => continue,
                    Fate::Kept => {}
                    Fate::Relabelled(c) => l["label"] = json!(CLASSES[*c]),
                    Fate::Moved => l["bounding_box"][0] = json!(0.6),
                }
                downloaded.push(DownloadedLabel::new(format!("shape:{i}"), l));
            }
            for (j, d) in drawn.iter().enumerate() {
                let backend_id = format!("new:{j}");
                downloaded.push(match d {
                    Drawn::Box(c) => DownloadedLabel::new(backend_id, det(None, CLASSES[*c], 0.3)),
                    Drawn::Misfit(t) => DownloadedLabel {
                        backend_id,
                        frame: None,
                        label: match t {
                            Some(_) => json!({"_cls": "Polyline", "label": "a", "points": [[[0.1, 0.1]]]}),
                            None => Value::Null,
                        },
                        misfit: Some(Misfit { label_type: *t, reason: "drawn".into() }),
                    },
                });
            }
            let id_map = IndexMap::new();
            let out = merge_field(&FieldInput {
                field: "gt",
                frame: None,
                schema: &schema,
                sample_id: SAMPLE,
                current: current.as_ref(),
                uploaded: &baseline,
                downloaded: &downloaded,
                id_map: &id_map,
                id_seed: SEED,
                conflicts: Conflicts::Error,
                unexpected,
                as_held: None,
            });
            let after = match &out.new_value {
                Some(v) => labels_of(v.as_ref(), LabelType::Detections),
                None => current_labels.clone(),
            };
            let in_field: HashSet<String> = after
                .iter()
                .filter_map(|l| super::super::label_id(l).map(|i| i.to_string()))
                .collect();
            let rejected_adds: HashSet<&str> = out
                .rejected
                .iter()
                .filter(|r| r.change == ChangeKind::Add)
                .map(|r| r.label_id.as_str())
                .collect();
            let listed: Vec<&str> = out.unexpected.iter().map(|u| u.backend_id.as_str()).collect();
            for d in &downloaded {
                let id = d
                    .label
                    .get("_id")
                    .filter(|_| d.misfit.is_none())
                    .and_then(crate::dataset::ejson::oid_str)
                    .map(String::from)
                    .unwrap_or_else(|| {
                        ObjectId::derive(&[SEED, SAMPLE.as_bytes(), d.backend_id.as_bytes()])
                            .to_string()
                    });
                let ends = [
                    in_field.contains(&id),
                    rejected_adds.contains(id.as_str()),
                    listed.contains(&d.backend_id.as_str()),
                    out.unexpected_errors.iter().any(|e| matches!(
                        &e.label,
                        OutsideLabel::Unexpected { backend_id, .. } if *backend_id == d.backend_id
                    )),
                ];
                prop_assert_eq!(
                    ends.iter().filter(|e| **e).count(),
                    1,
                    "{} ({}) ends in {:?} (merged, rejected, unexpected, error): {:#?}",
                    d.backend_id, d.label, ends, out
                );
            }
            prop_assert_eq!(out.counts.unexpected, out.unexpected.len());
            let kept = out.unexpected.iter().filter(|u| u.action == UnexpectedAction::Kept).count();
            prop_assert_eq!(kept, out.kept.len());
            let returned = out.unexpected.iter().filter(|u| u.action == UnexpectedAction::Returned).count();
            prop_assert_eq!(returned, out.returned.len());
            // Nothing lost: a label leaves the field only when annotators deleted it and
            // deletions are allowed.
            for (i, l) in current_labels.iter().enumerate() {
                let id = super::super::label_id(l).unwrap().to_string();
                let deleted = i < fates.len() && matches!(fates[i], Fate::Deleted) && deletions;
                prop_assert_eq!(in_field.contains(&id), !deleted, "label {} ({:?})", id, fates.get(i));
            }
        }
    }

    /// A run of a detections field `gt` and a polylines field `polylines`: a polyline drawn in
    /// `gt` is kept in `polylines`, next to the edit the run merges into that field.
    #[test]
    fn a_kept_label_joins_the_runs_own_write_of_its_field() {
        use super::super::run::RunMerger;
        use crate::backend::Annotations;
        use crate::dataset::dir::Dataset;
        use crate::dataset::fields::FieldType;
        use crate::manifest::LoadSpec;
        use crate::state::{RunRecord, TaskRecord};

        let sid = ObjectId::derive(&[b"sample"]);
        let line = json!({"_id": {"$oid": oid(1)}, "_cls": "Polyline", "label": "a",
            "points": [[[0.1, 0.1], [0.2, 0.2]]], "closed": false, "filled": false});
        let lines = ResolvedField::new(LabelType::Polylines, vec!["a".into(), "b".into()]);
        let mut r = RunRecord::new("d", "k", "b", "now", "lineage".into());
        r.schema.fields.insert(
            "gt".into(),
            ResolvedField::new(LabelType::Detections, vec!["a".into()]),
        );
        r.schema.fields.insert("polylines".into(), lines.clone());
        r.samples.push(sid.to_string());
        r.uploaded.entry("polylines".into()).or_default().insert(
            sid.to_string(),
            vec![UploadedLabel {
                id: label_key(&line, LabelType::Polylines).unwrap(),
                digest: label_digest(&line, &lines),
            }],
        );
        r.tasks.push(TaskRecord {
            id: "t".into(),
            name: "batch-0".into(),
            batch: 0,
            samples: vec![sid.to_string()],
            status: None,
            notes: None,
        });
        let doc = json!({"_id": sid.to_ejson(), "filepath": "/d/0.jpg", "tags": [],
            "polylines": {"_cls": "Polylines", "polylines": [line.clone()]}});
        let fields = vec![
            FieldType::Label("Detections".into()).field_doc("gt"),
            FieldType::Label("Polylines".into()).field_doc("polylines"),
        ];
        let meta = json!({"name": "d", "version": "1.22.1", "media_type": "image", "sample_fields": fields});
        let mut ds = Dataset::from_docs(
            "/nonexistent",
            meta.as_object().unwrap().clone(),
            vec![doc.as_object().unwrap().clone()],
            None,
        )
        .unwrap();
        // Annotators relabel the polyline, add one, and draw another in the detections field.
        let mut relabelled = line.clone();
        relabelled["label"] = json!("b");
        let drawn = DownloadedLabel {
            backend_id: "shape:9".into(),
            frame: None,
            label: json!({"_cls": "Polyline", "label": "a", "points": [[[0.5, 0.5], [0.6, 0.6]]],
                "closed": false, "filled": false}),
            misfit: Some(Misfit {
                label_type: Some(LabelType::Polylines),
                reason: "a polyline".into(),
            }),
        };
        let page: Annotations = [(
            sid.to_string(),
            IndexMap::from([
                ("gt".to_string(), vec![drawn]),
                (
                    "polylines".to_string(),
                    vec![
                        DownloadedLabel::new("shape:1", relabelled),
                        DownloadedLabel::new(
                            "shape:2",
                            json!({"_cls": "Polyline", "label": "b", "points": [[[0.7, 0.7], [0.8, 0.8]]],
                                "closed": false, "filled": false}),
                        ),
                    ],
                ),
            ])
            .into(),
        )]
        .into_iter()
        .collect();
        let load = LoadSpec::default();
        let mut m = RunMerger::new(&ds, &r, &load, &["t".into()], true);
        m.page(page).unwrap();
        let merge = m.finish(None).unwrap();
        merge.write(&mut ds).unwrap();
        let after = ds.sample_by_id(sid).unwrap().project(&["polylines"]);
        let labels: Vec<&str> = after["polylines"]["polylines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["label"].as_str().unwrap())
            .collect();
        assert_eq!(
            labels,
            ["b", "b", "a"],
            "the relabel, the addition and the kept polyline: {after:#?}"
        );
    }
}
