//! The `mongodb` store: a dataset in a live FiftyOne database, following
//! `recipes/fiftyone-mongodb.md`.
//!
//! Opening checks that the database is FiftyOne's (its `config` document), finds the dataset
//! by name and reads its document and samples (and frames) into the in-memory [`Dataset`] the
//! engine works on, remembering each sample's `last_modified_at`. Writing sends only what the
//! merge changed, addressed the way FiftyOne's own bulk operations address labels: by id
//! (`$push`, `$set` with `arrayFilters`, `$pull`), never by array index; new fields are
//! declared in the dataset document before any sample carries them; every write is a
//! compare-and-swap on the sample's `last_modified_at`, so a sample another process changed
//! since it was read is reported as a conflict and left as that process wrote it. Frame fields
//! of videos are written the same way to their frame documents (`frames.rs`), and each run is
//! recorded among FiftyOne's annotation runs (`runs.rs`).

mod frames;
pub mod query;
mod read;
mod runs;
mod store;
mod where_expr;
mod write;

use std::fmt;
use std::time::Duration;

use ::mongodb::bson::{Bson, Document, doc, oid};
use ::mongodb::options::ClientOptions;
use ::mongodb::sync::{Client, Database};

use super::dir::Dataset;
use super::ejson::{IdMap, ObjectId};
use super::view::Selected;
use super::working_set::WorkingSet;
use super::{FieldPath, labels};
use crate::manifest::types::ViewStage;

pub use runs::RunSync;
pub use store::MongoStore;
pub use write::Written;

/// How long to look for a server before giving up (unless the URI sets
/// `serverSelectionTimeoutMS`): long enough for a loaded machine, short enough for a typo.
const SERVER_SELECTION: Duration = Duration::from_secs(5);

/// Why a live dataset cannot be opened or written. Messages name the server (never the
/// URI's credentials), the database and the dataset.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The URI is not a MongoDB connection string.
    #[error("{setting}: not a MongoDB URI ({reason}); FiftyOne's look like mongodb://HOST:PORT")]
    Uri {
        /// Where the URI came from.
        setting: String,
        /// What the driver said (the URI itself is never shown).
        reason: String,
    },
    /// No MongoDB server answered.
    #[error("cannot reach a MongoDB server at {place}: {reason}")]
    Unreachable {
        /// host:port.
        place: String,
        /// What the driver said.
        reason: String,
    },
    /// The database has no FiftyOne `config` document (or another `type`).
    #[error(
        "database `{database}` on {place} is not a FiftyOne database ({found}); set FIFTYONE_DATABASE_NAME (or `database`) to the one FiftyOne uses"
    )]
    NotFiftyOne {
        /// host:port.
        place: String,
        /// The database.
        database: String,
        /// What was found instead.
        found: String,
    },
    /// No dataset of that name.
    #[error("no FiftyOne dataset named `{name}` in database `{database}` on {place}{}", known_names(.known))]
    UnknownDataset {
        /// host:port.
        place: String,
        /// The database.
        database: String,
        /// The name asked for.
        name: String,
        /// The datasets there are (a few).
        known: Vec<String>,
    },
    /// A document does not have the shape FiftyOne gives it.
    #[error("dataset `{name}` on {place}: {msg}")]
    Invalid {
        /// host:port.
        place: String,
        /// The FiftyOne dataset.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// A command failed.
    #[error("dataset `{name}` on {place}: {action}: {reason}")]
    Database {
        /// host:port.
        place: String,
        /// The FiftyOne dataset.
        name: String,
        /// What annoform was doing.
        action: &'static str,
        /// What the server or driver said.
        reason: String,
    },
    /// Samples another process changed after annoform read them: their changes were not
    /// written (every other sample's were).
    #[error(
        "dataset `{name}`: {} sample(s) changed in the database since annoform read them, so their merge was not written ({}{}); nothing of theirs was overwritten: run plan again",
        .samples.len(),
        .samples.iter().take(5).map(ToString::to_string).collect::<Vec<_>>().join(", "),
        if .samples.len() > 5 { ", …" } else { "" }
    )]
    Conflicts {
        /// The FiftyOne dataset.
        name: String,
        /// The samples left as the other process wrote them.
        samples: Vec<ObjectId>,
    },
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        " (it has no datasets)".into()
    } else {
        format!(" (it has: {})", known.join(", "))
    }
}

/// Where a live dataset is: the connection and the FiftyOne dataset's name.
pub struct Address<'a> {
    /// The connection string (a secret: never shown).
    pub uri: &'a str,
    /// Which setting gave the URI, for errors.
    pub uri_setting: &'a str,
    /// The database name.
    pub database: &'a str,
    /// The FiftyOne dataset name.
    pub name: &'a str,
}

/// An opened live dataset: what writing back needs.
pub struct Live {
    db: Database,
    place: String,
    name: String,
    dataset_id: oid::ObjectId,
    samples: String,
    /// Each sample's and frame's `last_modified_at` as read (or as annoform last wrote it).
    seen: IdMap<Bson>,
    /// The fields the dataset document declares (frame fields as `frames.NAME`).
    declared: Vec<String>,
    /// The views whose samples were read, with what the server selected for them.
    selections: Vec<(Vec<ViewStage>, Selected)>,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Live {{ {} on {} }}", self.name, self.place)
    }
}

/// Opens the dataset `at` names and reads into memory the working set `set` (see
/// [`WorkingSet`]), or the whole dataset; `root` is where relative media paths would resolve
/// (FiftyOne stores absolute ones).
pub fn open(
    at: &Address<'_>,
    root: &std::path::Path,
    set: Option<&WorkingSet>,
) -> Result<MongoStore, LiveError> {
    let (db, place) = connect(at)?;
    check_fiftyone(&db, &place, at.database)?;
    let (ds, mut live) = read::load(db, place, at, root, set)?;
    live.see_frames(&ds);
    let read = set.cloned();
    Ok(MongoStore { ds, live, read })
}

impl Live {
    /// The samples that the leading `stages` MongoDB can answer select, in view order, asked
    /// of the server (see [`query`]; `ds` is the dataset as read, for its label fields);
    /// `None` when it can answer none of them.
    pub fn select(
        &self,
        stages: &[ViewStage],
        ds: &Dataset,
    ) -> Result<Option<Selected>, LiveError> {
        if let Some((_, selected)) = self.selections.iter().find(|(s, _)| s == stages) {
            return Ok(Some(selected.clone()));
        }
        let label_fields = |f: &str| {
            let class = ds.field_label_class(&FieldPath::parse(f))?;
            Some(labels::label_list_key(&class))
        };
        let q = query::push_down(stages, &label_fields);
        if q.stages == 0 {
            return Ok(None);
        }
        Ok(Some(Selected {
            stages: q.stages,
            ids: read::select(self, &q)?,
        }))
    }
}

/// A client for the URI (server selection bounded) and the server's host:port for messages.
fn connect(at: &Address<'_>) -> Result<(Database, String), LiveError> {
    let mut options = ClientOptions::parse(at.uri)
        .run()
        .map_err(|e| LiveError::Uri {
            setting: at.uri_setting.to_string(),
            reason: redacted(&e, at.uri),
        })?;
    let place = options
        .hosts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    options.server_selection_timeout = options.server_selection_timeout.or(Some(SERVER_SELECTION));
    options.connect_timeout = options.connect_timeout.or(Some(SERVER_SELECTION));
    options.app_name = Some("annoform".into());
    let client = Client::with_options(options).map_err(|e| LiveError::Uri {
        setting: at.uri_setting.to_string(),
        reason: redacted(&e, at.uri),
    })?;
    Ok((client.database(at.database), place))
}

/// FiftyOne refuses a database whose `config` document is missing or not of type
/// `fiftyone`; so does annoform, before reading or writing anything.
fn check_fiftyone(db: &Database, place: &str, database: &str) -> Result<(), LiveError> {
    let config = db
        .collection::<Document>("config")
        .find_one(doc! {})
        .run()
        .map_err(|e| unreachable_or(e, place, database))?;
    let found = match &config {
        None => "it has no `config` document".to_string(),
        Some(c) => match c.get_str("type") {
            Ok("fiftyone") => return Ok(()),
            Ok(t) => format!("its `config` document says type `{t}`"),
            Err(_) => "its `config` document has no `type`".to_string(),
        },
    };
    Err(LiveError::NotFiftyOne {
        place: place.to_string(),
        database: database.to_string(),
        found,
    })
}

/// A failed first command: no server (or not a MongoDB one) is "unreachable".
fn unreachable_or(e: ::mongodb::error::Error, place: &str, database: &str) -> LiveError {
    use ::mongodb::error::ErrorKind;
    let reason = first_line(&e.to_string());
    match *e.kind {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. } => LiveError::Unreachable {
            place: place.to_string(),
            reason: format!("{reason} (is it a MongoDB server, and running?)"),
        },
        _ => LiveError::Database {
            place: place.to_string(),
            name: database.to_string(),
            action: "reading the `config` collection",
            reason,
        },
    }
}

/// The driver's message without the URI (which may hold a password).
fn redacted(e: &::mongodb::error::Error, uri: &str) -> String {
    first_line(&e.to_string()).replace(uri, "(uri)")
}

fn first_line(s: &str) -> String {
    let s = s.lines().next().unwrap_or_default();
    if s.chars().count() > 300 {
        format!("{}…", s.chars().take(300).collect::<String>())
    } else {
        s.to_string()
    }
}
