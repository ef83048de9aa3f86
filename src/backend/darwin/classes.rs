//! Annotation classes: team-wide in Darwin, one per (name, main type), attached to datasets.

use super::convert::{self, Kind};
use super::*;

impl DarwinBackend {
    /// The class ids of the run's field (every class of the schema in every kind the field
    /// needs) and of `extra`, creating what is missing and attaching to the dataset what is
    /// not attached yet.
    pub(super) fn ensure_classes(
        &mut self,
        project: &RemoteProject,
        extra: &[(String, Kind)],
    ) -> Result<HashMap<(String, Kind), u64>, BackendError> {
        let dataset = self.dataset_id(project)?;
        let mut wanted: Vec<(String, Kind)> = Vec::new();
        for f in self.context.schema.fields.values() {
            let kinds = convert::kinds(f.label_type).ok_or_else(|| {
                self.error(format!(
                    "Darwin has no annotation type for {} fields",
                    f.label_type
                ))
            })?;
            for c in &f.classes {
                wanted.extend(kinds.iter().map(|k| (c.clone(), *k)));
            }
        }
        wanted.extend(extra.iter().cloned());
        wanted.sort();
        wanted.dedup();
        let known = self.classes.entry(dataset).or_default().clone();
        if wanted.iter().all(|w| known.contains_key(w)) {
            return Ok(known);
        }
        let team = self.team()?;
        let existing = self.run(self.api.classes(&team))?;
        let mut types: Option<Vec<(String, u64)>> = None;
        let mut ids = known;
        for (name, kind) in wanted {
            if ids.contains_key(&(name.clone(), kind)) {
                continue;
            }
            let found = existing
                .iter()
                .find(|c| c.name == name && c.main_type() == Some(kind.as_str()));
            let id = match found {
                Some(c) if c.in_dataset(dataset) => c.id,
                Some(c) => {
                    self.run(self.api.attach_class(c, dataset))?;
                    c.id
                }
                None => {
                    if types.is_none() {
                        types = Some(self.run(self.api.annotation_types())?);
                    }
                    let type_id = types
                        .iter()
                        .flatten()
                        .find(|(n, _)| n == kind.as_str())
                        .map(|(_, id)| *id)
                        .ok_or_else(|| {
                            self.error(format!(
                                "the server has no `{}` annotation type",
                                kind.as_str()
                            ))
                        })?;
                    self.run(self.api.create_class(dataset, &name, type_id))?.id
                }
            };
            ids.insert((name, kind), id);
        }
        self.classes.insert(dataset, ids.clone());
        Ok(ids)
    }
}
