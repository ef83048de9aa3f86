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
use crate::plan::{Rejection, UnexpectedAction, UnexpectedLabel};
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
        d.backend_id.as_bytes(),
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
        reject(input, out, &key, &m.reason);
        return;
    };
    if !input.schema.restrictions.allow_additions {
        reject(
            input,
            out,
            &key,
            &format!("{}; allow_additions=false", m.reason),
        );
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
    let class = found
        .label
        .get("label")
        .and_then(Value::as_str)
        .map(|c| format!(" `{c}`"))
        .unwrap_or_default();
    let what = format!("{}{class}", found.label_type.as_str());
    let action = match input.unexpected {
        Unexpected::Keep if other_type => UnexpectedAction::Kept,
        Unexpected::Ignore => UnexpectedAction::Ignored,
        Unexpected::Return => UnexpectedAction::Returned,
        Unexpected::Error => {
            out.unexpected_errors.push(format!(
                "sample {} {} {} ({what}): {}",
                input.sample_id, input.field, found.backend_id, found.reason
            ));
            return;
        }
        Unexpected::Keep | Unexpected::Report => {
            let reason = format!(
                "{} (load.unexpected={})",
                found.reason,
                input.unexpected.as_str()
            );
            reject(input, out, &found.key, &reason);
            return;
        }
    };
    let side = kept_type(found.label_type);
    out.counts.unexpected += 1;
    out.unexpected.push(UnexpectedLabel {
        sample_id: input.sample_id.to_string(),
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
fn reject(input: &FieldInput<'_>, out: &mut FieldOutcome, key: &LabelKey, reason: &str) {
    out.counts.rejected += 1;
    out.rejected.push(Rejection {
        sample_id: input.sample_id.to_string(),
        label_id: key.to_string(),
        field: input.field.to_string(),
        change: "add".to_string(),
        reason: reason.to_string(),
    });
}
