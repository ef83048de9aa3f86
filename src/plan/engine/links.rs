//! Where a recorded run lives in its backend's UI: the project, each task, and the editor
//! FiftyOne's `launch_editor` opens (the first task, or the project where tasks have no page).

use super::*;

/// A run's addresses in its backend's UI.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Links {
    pub project: Option<String>,
    /// (task name, URL), in batch order.
    pub tasks: Vec<(String, String)>,
}

impl Links {
    /// What `launch_editor` opens.
    pub fn editor(&self) -> Option<&str> {
        self.tasks
            .first()
            .map(|t| t.1.as_str())
            .or(self.project.as_deref())
    }
}

impl Engine<'_> {
    /// The addresses of a recorded run's project and tasks on `conn` (none once cleaned up).
    pub fn links(&mut self, record: &RunRecord, conn: &Connection) -> Result<Links, EngineError> {
        if record.cleaned_up || record.project.is_none() {
            return Ok(Links::default());
        }
        let project = remote(record);
        let b = self.backend(conn)?;
        Ok(Links {
            project: b.project_url(&project),
            tasks: record
                .tasks
                .iter()
                .filter_map(|t| Some((t.name.clone(), b.task_url(&project, &t.id)?)))
                .collect(),
        })
    }
}
