//! Errors of the state stores and their locks. They name a place (a file, or a store's table
//! and workspace), never assume a file system.

use crate::state::holder::Holder;
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
    /// A stored record that is not valid record JSON (`place`: its file, or where a store
    /// keeps it).
    #[error("{place}: corrupt state record: {message}")]
    Corrupt { place: String, message: String },
    /// A record written by another (newer) annoform.
    #[error(
        "{place}: state record format version {found} is not supported (this annoform reads version {supported})"
    )]
    UnknownVersion {
        place: String,
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
        "{place}: the workspace is locked by {}; {after}",
        holder.as_ref().map_or_else(|| "an unreadable holder".to_string(), |h| h.to_string())
    )]
    Locked {
        /// The lock file, or the store and workspace whose lock it is.
        place: String,
        /// `None` when the holder cannot be read (e.g. its lock file is being written).
        holder: Option<Holder>,
        /// What to do if the holder is gone: depends on whether the store frees a dead
        /// holder's lock by itself.
        after: &'static str,
    },
    /// `state migrate` found records in the target that differ from the source's.
    #[error(
        "{target} already holds records that differ from the ones to copy: {}; nothing was copied",
        records.join(", ")
    )]
    MigrationTargetDiffers {
        target: String,
        records: Vec<String>,
    },
    /// The store's settings are missing or malformed (`what` names the setting to fix).
    #[error("{0}")]
    Settings(String),
    /// The store's server cannot be reached.
    #[error(
        "cannot reach {server}: {reason}; check the host and port of the state URL and that the server is running"
    )]
    Unreachable { server: String, reason: String },
    /// The server refused the credentials.
    #[error(
        "{server} refused the credentials of user `{user}`: {reason}; fix the user name or password in the state URL (ANNOFORM_STATE_URL or the variable `[state] url` names)"
    )]
    Credentials {
        server: String,
        user: String,
        reason: String,
    },
    /// The server's user lacks a privilege the store needs.
    #[error(transparent)]
    Permission(Box<PermissionDenied>),
    /// Any other failure of the store's server.
    #[error("{server}: {action}: {reason}")]
    Database {
        server: String,
        action: &'static str,
        reason: String,
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

/// What a store's user may not do, and how to grant it.
#[derive(Debug, thiserror::Error)]
#[error("{server}: user `{user}` may not {action}: {reason}; {fix}")]
pub struct PermissionDenied {
    pub server: String,
    pub user: String,
    pub action: String,
    pub reason: String,
    pub fix: String,
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
