//! The label schema as a backend is sent it, as text: what `plan -v` diffs when a run's
//! schema changes, so a reviewer sees the backend's side of the change.

use super::capabilities::BackendKind;
use crate::schema::ResolvedSchema;

/// What the rendering is called and the text, for the backends whose schema is one document:
/// Label Studio's labeling config (XML), CVAT's labels (JSON, as POSTed).
pub fn rendered_schema(
    kind: BackendKind,
    schema: &ResolvedSchema,
) -> Option<(&'static str, String)> {
    match kind {
        BackendKind::Labelstudio => super::labelstudio::config::labeling_config(schema)
            .ok()
            .map(|xml| ("Label Studio labeling config", xml)),
        BackendKind::Cvat => {
            serde_json::to_string_pretty(&super::cvat::labels::label_specs(schema))
                .ok()
                .map(|json| ("CVAT labels", json + "\n"))
        }
        BackendKind::Darwin | BackendKind::Custom => None,
    }
}
