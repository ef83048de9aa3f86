//! What a command reads of a dataset: the samples its runs select and the fields they use.
//!
//! The in-memory [`Dataset`](super::dir::Dataset) a store opens is this working set, not
//! necessarily the whole dataset: a store that can read part of a dataset (`mongodb`) reads
//! the samples of the runs' views and of their records, with only the fields the runs use
//! (their label fields and merge destinations, the fields their views read, and the fields
//! every command reads: `filepath`, `tags`, `metadata`, ids and timestamps). A store that
//! cannot (`dir`) reads everything, which holds the working set too.

use std::collections::BTreeSet;

use super::ejson::ObjectId;
use super::expr;
use super::field_path::{FieldPath, Level};
use crate::manifest::fields::fields;
use crate::manifest::types::{AnnotationRun, DestField, LabelType, SortBy, Unexpected, ViewStage};
use crate::state::RunRecord;

/// The sample fields every command reads (besides the runs' own).
pub const SAMPLE_FIELDS: [&str; 7] = [
    "_id",
    "filepath",
    "tags",
    "metadata",
    "_media_type",
    "created_at",
    "last_modified_at",
];

/// The frame fields every command reads (besides the runs' own).
pub const FRAME_FIELDS: [&str; 5] = [
    "_id",
    "_sample_id",
    "frame_number",
    "created_at",
    "last_modified_at",
];

/// The part of one dataset a command's runs need.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkingSet {
    /// Each run's view: the samples it selects are read (every sample for an empty view).
    pub views: Vec<Vec<ViewStage>>,
    /// Samples the runs' records name (uploaded before, merged into later), read whatever
    /// the views select now.
    pub samples: BTreeSet<ObjectId>,
    /// Sample fields read besides [`SAMPLE_FIELDS`]; `None`: every field.
    pub fields: Option<BTreeSet<String>>,
    /// Frame fields read besides [`FRAME_FIELDS`]; `None`: every field.
    pub frame_fields: Option<BTreeSet<String>>,
}

impl WorkingSet {
    /// Nothing yet: no sample, no field beyond those every command reads.
    pub fn empty() -> WorkingSet {
        WorkingSet {
            fields: Some(BTreeSet::new()),
            frame_fields: Some(BTreeSet::new()),
            ..WorkingSet::default()
        }
    }

    /// Adds what `run` needs: its view's samples, its fields (with the fields its merge may
    /// write) and the fields its view reads.
    pub fn add_run(&mut self, run: &AnnotationRun) {
        self.views.push(run.view.clone());
        for f in fields(run) {
            self.add_field(&f.name);
        }
        if let Some(media) = &run.media_field {
            self.add_field(&FieldPath::sample(media));
        }
        let load = run.load.clone().unwrap_or_default();
        match &load.dest_field {
            Some(DestField::One(f)) => self.add_field(&FieldPath::parse(f)),
            Some(DestField::Map(m)) => m
                .values()
                .for_each(|f| self.add_field(&FieldPath::parse(f))),
            None => {}
        }
        if load.unexpected == Unexpected::Keep {
            // Labels of another type are kept in fields named after their type.
            for t in LabelType::ALL {
                self.add_field(&FieldPath::sample(t.as_str()));
                self.add_field(&FieldPath::frame(t.as_str()));
            }
        }
        for stage in &run.view {
            self.add_stage(stage);
        }
    }

    /// Adds what a run's record names: the samples it uploaded and the fields of its schema.
    pub fn add_record(&mut self, record: &RunRecord) {
        self.samples.extend(
            record
                .samples
                .iter()
                .filter_map(|s| ObjectId::parse(s).ok()),
        );
        for f in record.schema.fields.keys() {
            self.add_field(f);
        }
    }

    /// Adds a sample or frame field.
    pub fn add_field(&mut self, path: &FieldPath) {
        let set = match path.level() {
            Level::Sample => &mut self.fields,
            Level::Frame => &mut self.frame_fields,
        };
        // A nested path (`ground_truth.detections`) is read with its top-level field.
        let top = path.name().split('.').next().unwrap_or_default();
        if let Some(set) = set {
            set.insert(top.to_string());
        }
    }

    /// Adds the fields a view stage reads.
    fn add_stage(&mut self, stage: &ViewStage) {
        match stage {
            ViewStage::Exists(e) => self.add_expr(e.field()),
            ViewStage::FilterLabels(f) => self.add_field(&FieldPath::parse(&f.field)),
            ViewStage::MatchLabels(m) => m
                .fields
                .as_slice()
                .iter()
                .for_each(|f| self.add_field(&FieldPath::parse(f))),
            ViewStage::SortBy(SortBy::Field(f)) => self.add_expr(f),
            ViewStage::SortBy(SortBy::Expr(e)) => self.add_expr(&e.expr),
            ViewStage::MatchTags(_)
            | ViewStage::Select(_)
            | ViewStage::Skip(_)
            | ViewStage::Limit(_)
            | ViewStage::Take(_) => {}
        }
    }

    /// Adds the fields a sample expression reads: every field when it does not parse (its
    /// error is reported by validation) or reads the frames.
    fn add_expr(&mut self, src: &str) {
        let Ok(e) = expr::parse(src) else {
            self.fields = None;
            return;
        };
        for root in e.root_fields() {
            if root == "frames" {
                self.frame_fields = None;
            } else {
                self.add_field(&FieldPath::sample(&root));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load::parse_text;

    fn run(body: &str) -> AnnotationRun {
        let text = format!("apiVersion: annoform/v1\nkind: AnnotationRun\n{body}");
        let (mut runs, problems) = parse_text(crate::diag::SourceFile::new("t.yaml", text));
        assert!(problems.is_empty(), "{problems:?}");
        runs.remove(0).run
    }

    #[test]
    fn a_run_needs_its_fields_its_destinations_and_what_its_view_reads() {
        let r = run(
            "key: r\ndataset: d\nlabel_field: gt\nlabel_type: detections\n\
             load: {dest_field: reviewed, unexpected: ignore}\n\
             view: [{exists: uniqueness}, {sort_by: {expr: count(preds), reverse: true}}, {filter_labels: {field: frames.dets, where: 'confidence > 0.5'}}]\n",
        );
        let mut ws = WorkingSet::empty();
        ws.add_run(&r);
        let fields: Vec<_> = ws.fields.unwrap().into_iter().collect();
        assert_eq!(fields, ["gt", "preds", "reviewed", "uniqueness"]);
        let frames: Vec<_> = ws.frame_fields.unwrap().into_iter().collect();
        assert_eq!(frames, ["dets"]);
        assert_eq!(ws.views.len(), 1);
    }

    #[test]
    fn keeping_unexpected_labels_reads_the_fields_named_after_label_types() {
        let r = run("key: r\ndataset: d\nlabel_field: gt\nlabel_type: detections\n");
        let mut ws = WorkingSet::empty();
        ws.add_run(&r);
        let fields = ws.fields.unwrap();
        assert!(fields.contains("polylines") && fields.contains("classification"));
        assert!(ws.frame_fields.unwrap().contains("keypoints"));
    }

    #[test]
    fn an_expression_that_does_not_parse_reads_every_field() {
        let r = run(
            "key: r\ndataset: d\nlabel_field: gt\nlabel_type: detections\nview: [{sort_by: {expr: 'count((('}}]\n",
        );
        let mut ws = WorkingSet::empty();
        ws.add_run(&r);
        assert_eq!(ws.fields, None);
        assert!(ws.frame_fields.is_some());
    }
}
