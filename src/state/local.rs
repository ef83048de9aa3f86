//! The `local` state store: one JSON file per record at `<root>/<dataset>/<key>.json`.
//!
//! Writes are atomic (temporary file in the same directory, fsync, rename, fsync directory)
//! so a killed apply leaves either the old or the new record, never half of one.

use crate::state::error::{Result, StateError};
use crate::state::record::{self, RECORD_VERSION, RunRecord, from_json, new_lineage};
use crate::state::secrets::assert_no_secrets;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Record files end with this.
const EXT: &str = "json";

/// Records as JSON files under a state directory (default `.annoform/state`).
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// A store rooted at the workspace's state directory (created on first write).
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds (or would hold) a record.
    pub fn path(&self, dataset: &str, key: &str) -> Result<PathBuf> {
        check_name("dataset name", dataset)?;
        check_name("run key", key)?;
        Ok(self.root.join(dataset).join(format!("{key}.{EXT}")))
    }

    /// Every (dataset, key) with a record, sorted.
    pub fn list(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for dataset in read_dir_names(&self.root)? {
            let dir = self.root.join(&dataset);
            if !dir.is_dir() || check_name("dataset name", &dataset).is_err() {
                continue;
            }
            for file in read_dir_names(&dir)? {
                // Skips temporary files (dot-prefixed) and anything that is not a record.
                if let Some(key) = file.strip_suffix(&format!(".{EXT}"))
                    && check_name("run key", key).is_ok()
                {
                    out.push((dataset.clone(), key.to_string()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The record for (dataset, key), if there is one.
    pub fn get(&self, dataset: &str, key: &str) -> Result<Option<RunRecord>> {
        let path = self.path(dataset, key)?;
        let Some(record) = read_record(&path)? else {
            return Ok(None);
        };
        if record.dataset != dataset || record.key != key {
            return Err(StateError::Corrupt {
                place: path.display().to_string(),
                message: format!(
                    "holds the record of {}/{}, not {dataset}/{key}",
                    record.dataset, record.key
                ),
            });
        }
        Ok(Some(record))
    }

    /// Saves a record, bumping its serial; refuses if the saved serial is not the record's.
    ///
    /// `record.serial` must be the serial it was read at (0 for a new record); on success it
    /// is the new serial. On error the record is unchanged.
    pub fn put(&self, record: &mut RunRecord) -> Result<()> {
        let path = self.path(&record.dataset, &record.key)?;
        assert_no_secrets(record)?;
        let found = read_record(&path)?.map_or(0, |r| r.serial);
        if found != record.serial {
            return Err(StateError::Conflict {
                dataset: record.dataset.clone(),
                key: record.key.clone(),
                expected: record.serial,
                found,
            });
        }
        let mut next = record.clone();
        next.format_version = RECORD_VERSION;
        next.serial = found + 1;
        // A new record is placed without clobbering, so two processes creating the same run
        // cannot both succeed.
        let replace = if found == 0 {
            Replace::No
        } else {
            Replace::Yes
        };
        write_atomic(&path, &to_json(&next, &path)?, replace).map_err(|e| match e {
            StateError::Io { source, .. } if source.kind() == ErrorKind::AlreadyExists => {
                StateError::Conflict {
                    dataset: record.dataset.clone(),
                    key: record.key.clone(),
                    expected: record.serial,
                    found: read_record(&path).ok().flatten().map_or(0, |r| r.serial),
                }
            }
            e => e,
        })?;
        *record = next;
        Ok(())
    }

    /// Writes a record as it is (serial and lineage kept) where there is none yet.
    pub fn import(&self, record: &RunRecord) -> Result<()> {
        let path = self.path(&record.dataset, &record.key)?;
        assert_no_secrets(record)?;
        write_atomic(&path, &to_json(record, &path)?, Replace::No).map_err(|e| match e {
            StateError::Io { source, .. } if source.kind() == ErrorKind::AlreadyExists => {
                StateError::Exists {
                    dataset: record.dataset.clone(),
                    key: record.key.clone(),
                }
            }
            e => e,
        })
    }

    /// Forgets a record; `Ok(false)` if there was none.
    pub fn delete(&self, dataset: &str, key: &str) -> Result<bool> {
        let path = self.path(dataset, key)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StateError::io("remove", &path)(e)),
        }
        let dir = self.root.join(dataset);
        sync_dir(&dir)?;
        // An emptied dataset directory is just clutter; failing to remove it is harmless.
        let _ = fs::remove_dir(&dir);
        Ok(true)
    }

    /// Renames a run's record from `old` to `new` key; refuses if `new` exists.
    ///
    /// The renamed record keeps its lineage and gets the next serial (its content changed).
    pub fn rename(&self, dataset: &str, old: &str, new: &str) -> Result<()> {
        let from = self.path(dataset, old)?;
        let to = self.path(dataset, new)?;
        let mut record = self
            .get(dataset, old)?
            .ok_or_else(|| StateError::NotFound {
                dataset: dataset.to_string(),
                key: old.to_string(),
            })?;
        if old == new {
            return Ok(());
        }
        record.key = new.to_string();
        record.serial += 1;
        // No-clobber placement is atomic (a hard link fails if `new` exists), so two renames
        // racing to the same key cannot overwrite each other.
        write_atomic(&to, &to_json(&record, &to)?, Replace::No).map_err(|e| match e {
            StateError::Io { source, .. } if source.kind() == ErrorKind::AlreadyExists => {
                StateError::Exists {
                    dataset: dataset.to_string(),
                    key: new.to_string(),
                }
            }
            e => e,
        })?;
        fs::remove_file(&from).map_err(StateError::io("remove", &from))?;
        sync_dir(&self.root.join(dataset))
    }
}

/// Whether `write_atomic` may overwrite an existing file.
#[derive(PartialEq)]
enum Replace {
    Yes,
    No,
}

/// A dataset name or key must be one plain path component.
fn check_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.starts_with('.') {
        "it starts with '.'"
    } else if name.contains(['/', '\\', '\0']) {
        "it contains a path separator"
    } else {
        return Ok(());
    };
    Err(StateError::InvalidName {
        what,
        name: name.to_string(),
        reason,
    })
}

/// Names in a directory (none if it does not exist).
fn read_dir_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StateError::io("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(StateError::io("list", dir))?;
        // Non-UTF-8 names cannot be ours.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Reads and checks a record file; `Ok(None)` if it does not exist.
fn read_record(path: &Path) -> Result<Option<RunRecord>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::io("read", path)(e)),
    };
    from_json(&text, &path.display().to_string()).map(Some)
}

/// Pretty JSON with a trailing newline; field order is the record's declaration order.
fn to_json(record: &RunRecord, path: &Path) -> Result<String> {
    record::to_json(record, &path.display().to_string())
}

/// Writes `path` via a synced temporary file in the same directory, then syncs the directory.
fn write_atomic(path: &Path, contents: &str, replace: Replace) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(StateError::io("create directory", dir))?;
    crate::tempfiles::remove_stale(dir);
    // Random suffix: threads of one process may write the same record.
    let tmp = crate::tempfiles::temp_path(path, Some(&new_lineage()));
    let result = write_synced(&tmp, contents).and_then(|()| {
        if replace == Replace::Yes {
            fs::rename(&tmp, path).map_err(StateError::io("replace", path))
        } else {
            fs::hard_link(&tmp, path).map_err(StateError::io("create", path))
        }
    });
    // After a rename the temporary name is gone already; after a link or a failure it is not.
    let _ = fs::remove_file(&tmp);
    result?;
    sync_dir(dir)
}

fn write_synced(path: &Path, contents: &str) -> Result<()> {
    let mut file = File::create(path).map_err(StateError::io("create", path))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(StateError::io("write", path))
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // Not every platform lets a directory be opened or synced; the rename still happened.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::PermissionDenied | ErrorKind::InvalidInput
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(StateError::io("sync directory", dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_single_components() {
        for bad in ["", ".", "..", ".hidden", "a/b", "a\\b"] {
            assert!(check_name("run key", bad).is_err(), "{bad:?}");
        }
        for good in ["run", "fix_gt", "my dataset", "v1.2"] {
            assert!(check_name("run key", good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn invalid_names_are_refused_before_touching_disk() {
        let store = LocalStore::new(PathBuf::from("/nonexistent/state"));
        let err = store.get("ds", "../escape").unwrap_err();
        assert!(matches!(err, StateError::InvalidName { .. }), "{err}");
    }
}
