//! What apply and destroy did, as data: [`render::outcome`](super::render::outcome) writes
//! the words (text, and JSON for `apply --json`).

use super::engine::Links;
use super::model::Action;
use serde::Serialize;

/// What a command changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub command: Command,
    /// The runs changed, in plan order (a run that failed is reported as an error instead).
    pub runs: Vec<RunOutcome>,
}

/// The command that changed the runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Apply,
    Destroy,
}

/// A run the command changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunOutcome {
    pub dataset: String,
    pub key: String,
    /// What was done to it.
    pub actions: Vec<Action>,
    /// Where the run lives in its backend's UI (none for a destroyed run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Why the links could not be had: the run is applied all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links_error: Option<String>,
    /// The manifest asks for the editor (`launch_editor`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub launch_editor: bool,
}

impl RunOutcome {
    /// A run changed by `actions`, its links not yet looked up.
    pub fn new(dataset: &str, key: &str, actions: &[Action]) -> RunOutcome {
        RunOutcome {
            dataset: dataset.to_string(),
            key: key.to_string(),
            actions: actions.to_vec(),
            links: None,
            links_error: None,
            launch_editor: false,
        }
    }

    /// Whether the run still exists after the command (it was not destroyed).
    pub fn remains(&self) -> bool {
        !self.actions.contains(&Action::Destroy)
    }
}
