//! Keeping in a run record what its schema was resolved from, so that the plans after an
//! apply take the schema as recorded while nothing it depends on changes (see
//! [`RunRecord::resolved_from`]).

use super::*;
use crate::dataset::FieldPath;
use crate::dataset::sendable::unsendable_labels;
use crate::manifest::AnnotationRun;

impl Engine<'_> {
    /// After an apply: when `run` and its dataset as it now is resolve to the recorded schema
    /// again, with every label of the view sendable, keep the digest of those inputs in the
    /// record. Otherwise the record keeps none that matches, and plans resolve as before.
    pub(super) fn keep_resolved_from(
        &mut self,
        inputs: Option<(AnnotationRun, BackendKind)>,
    ) -> Result<(), EngineError> {
        let Some((run, kind)) = inputs else {
            return Ok(());
        };
        let run = &run;
        let Some(mut record) = self.store.get(&run.dataset, &run.key.0)? else {
            return Ok(());
        };
        let ds = self.dataset(&run.dataset)?;
        let digest = resolve::inputs_digest(run, kind, &ds.content_digest(), &record.schema);
        if record.resolved_from.as_ref() == Some(&digest) {
            return Ok(());
        }
        let Ok(view) = crate::dataset::view::apply(&run.view, ds) else {
            return Ok(());
        };
        let same = resolve::resolve(run, ds, &view, kind, Some(&record.schema))
            .is_ok_and(|s| s == record.schema);
        let fields = record.schema.fields.keys().map(FieldPath::as_str);
        let ids = view.sample_ids.iter().copied();
        if !same || !unsendable_labels(ds, &view, ids, fields, 1).is_empty() {
            return Ok(());
        }
        record.resolved_from = Some(digest);
        self.store.put(&mut record)?;
        Ok(())
    }
}

/// The run and backend kind a run's schema resolves from, when the manifests want the run.
pub(super) fn resolved_inputs(w: &RunWork) -> Option<(AnnotationRun, BackendKind)> {
    w.desired.as_ref().map(|d| (d.loaded.run.clone(), d.kind))
}
