//! The workspace lock (`.annoform/lock`): one annoform process changes state at a time.
//!
//! The lock is a file created exclusively and holding who took it (pid, host, command, time).
//! A lock left by a process that died on this host is taken over; anything else waits, then
//! fails naming the holder so a person can decide (`annoform state unlock --force`).

use crate::state::error::{Result, StateError};
use crate::state::holder::Holder;
use crate::state::store::Waiting;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// How often a waiting process looks at the lock again.
const POLL: Duration = Duration::from_millis(100);

/// What to do about a lock file whose holder is gone (a process on another host, or one
/// whose death this host cannot see).
const UNLOCK_HINT: &str = "if that process is gone, run `annoform state unlock --force`";

/// The default lock path for a state directory: `.annoform/state` → `.annoform/lock`.
pub fn default_path(state_root: &Path) -> PathBuf {
    state_root
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join("lock")
}

/// The workspace lock.
pub struct Lock;

impl Lock {
    /// Takes the lock at `path` for `command`, waiting up to `wait` for another holder.
    pub fn acquire(path: impl AsRef<Path>, command: &str, wait: Duration) -> Result<LockGuard> {
        Lock::acquire_with(path, command, wait, &mut |_| {})
    }

    /// [`acquire`](Lock::acquire), calling `waiting` once with the holder when it starts to
    /// wait.
    pub fn acquire_with(
        path: impl AsRef<Path>,
        command: &str,
        wait: Duration,
        waiting: Waiting<'_>,
    ) -> Result<LockGuard> {
        let path = path.as_ref();
        let mut told = false;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(StateError::io("create directory", dir))?;
        }
        let deadline = Instant::now() + wait;
        let mut took_over = None;
        loop {
            // Stamped per attempt so `since` says when the lock was actually taken.
            let holder = Holder::current(command);
            let body = serde_json::to_string_pretty(&holder).map_err(|e| StateError::Corrupt {
                place: path.display().to_string(),
                message: e.to_string(),
            })? + "\n";
            match try_create(path, &body)? {
                true => {
                    return Ok(LockGuard {
                        path: path.to_path_buf(),
                        holder,
                        took_over,
                    });
                }
                false => {
                    let current = read_holder(path)?;
                    if let Some(stale) = current.as_ref().filter(|h| h.is_stale()) {
                        if remove_if_held_by(path, stale)? {
                            took_over = Some(stale.clone());
                        }
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(StateError::Locked {
                            place: path.display().to_string(),
                            holder: current,
                            after: UNLOCK_HINT,
                        });
                    }
                    if !told {
                        waiting(current.as_ref());
                        told = true;
                    }
                    thread::sleep(POLL);
                }
            }
        }
    }

    /// Who holds the lock at `path`, if anyone (`Ok(None)` also for an unreadable lock file).
    pub fn holder(path: impl AsRef<Path>) -> Result<Option<Holder>> {
        read_holder(path.as_ref())
    }
}

/// Removes the lock at `path` whoever holds it, returning the holder it named.
pub fn force_unlock(path: impl AsRef<Path>) -> Result<Option<Holder>> {
    let path = path.as_ref();
    let holder = read_holder(path)?;
    match fs::remove_file(path) {
        Ok(()) => Ok(holder),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io("remove lock", path)(e)),
    }
}

/// The held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    path: PathBuf,
    holder: Holder,
    took_over: Option<Holder>,
}

impl LockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This process's holder entry.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The dead process whose stale lock was taken over, if any (worth telling the user).
    pub fn took_over(&self) -> Option<&Holder> {
        self.took_over.as_ref()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Only remove the file if it is still ours: after a `state unlock --force` another
        // process may hold it now.
        if let Ok(Some(h)) = read_holder(&self.path)
            && h == self.holder
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Creates the lock file exclusively; `Ok(false)` if it already exists.
fn try_create(path: &Path, body: &str) -> Result<bool> {
    let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(StateError::io("create lock", path)(e)),
    };
    let written = file
        .write_all(body.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        // Leave no half-written lock behind to block everyone else.
        let _ = fs::remove_file(path);
        return Err(StateError::io("write lock", path)(e));
    }
    Ok(true)
}

/// Reads the holder; `Ok(None)` if there is no lock or it cannot be parsed (yet).
fn read_holder(path: &Path) -> Result<Option<Holder>> {
    match fs::read_to_string(path) {
        // A lock file that does not parse is most likely being written right now.
        Ok(text) => Ok(serde_json::from_str(&text).ok()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io("read lock", path)(e)),
    }
}

/// Removes a stale lock, making sure it is the one that was judged stale.
///
/// Two processes may find the same stale lock; the loser must not delete the winner's fresh
/// lock. Renaming is atomic, so the lock is moved aside first and only deleted if it still
/// names the stale holder; otherwise it is linked back (which fails harmlessly if a third
/// process already locked again).
fn remove_if_held_by(path: &Path, stale: &Holder) -> Result<bool> {
    let aside = path.with_file_name(format!(
        ".{}.stale-{}",
        path.file_name()
            .map_or_else(|| "lock".into(), |n| n.to_string_lossy().into_owned()),
        std::process::id()
    ));
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StateError::io("move stale lock", path)(e)),
    }
    let moved = read_holder(&aside)?;
    let ours = moved.as_ref() == Some(stale);
    if !ours {
        let _ = fs::hard_link(&aside, path);
    }
    let _ = fs::remove_file(&aside);
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_beside_the_state_dir() {
        assert_eq!(
            default_path(Path::new(".annoform/state")),
            PathBuf::from(".annoform/lock")
        );
        assert_eq!(default_path(Path::new("state")), PathBuf::from("lock"));
    }
}
