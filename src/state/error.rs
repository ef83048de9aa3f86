//! Errors of the state stores and the workspace lock.

use crate::state::lock::Holder;
use std::io;
use std::path::PathBuf;

/// What can go wrong reading, writing or locking run state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The record changed on disk since it was read (optimistic concurrency).
    #[error(
        "state record {dataset}/{key} changed since it was read (expected serial {expected}, found {found}); run `annoform plan` again"
    )]
    Conflict {
        dataset: String,
        key: String,
        expected: u64,
        found: u64,
    },
    /// A record that must not exist yet does.
    #[error("state record {dataset}/{key} already exists")]
    Exists { dataset: String, key: String },
    /// A record that must exist does not.
    #[error("no state record {dataset}/{key}")]
    NotFound { dataset: String, key: String },
    /// A dataset name or run key that cannot name a state file.
    #[error("invalid {what} {name:?} for a state record: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    /// A record file that is not valid record JSON.
    #[error("{}: corrupt state record: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    /// A record file written by another (newer) annoform.
    #[error(
        "{}: state record format version {found} is not supported (this annoform reads version {supported})",
        path.display()
    )]
    UnknownVersion {
        path: PathBuf,
        found: u64,
        supported: u32,
    },
    /// A record that would store a secret.
    #[error(
        "state record {dataset}/{key} would store a secret in `{location}`; secrets come from the environment and are never saved"
    )]
    Secret {
        dataset: String,
        key: String,
        location: String,
    },
    /// Another process holds the workspace lock.
    #[error(
        "{}: the workspace is locked by {}; if that process is gone, run `annoform state unlock --force`",
        path.display(),
        holder.as_ref().map_or_else(|| "an unreadable holder".to_string(), |h| h.to_string())
    )]
    Locked {
        path: PathBuf,
        /// `None` when the lock file exists but cannot be read (e.g. being written).
        holder: Option<Holder>,
    },
    /// A file-system operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StateError {
    /// Wraps an I/O error with what was being done to which path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| StateError::Io {
            action,
            path,
            source,
        }
    }
}

/// Results of state operations.
pub type Result<T, E = StateError> = std::result::Result<T, E>;
