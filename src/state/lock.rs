//! The workspace lock (`.annoform/lock`): one annoform process changes state at a time.
//!
//! The lock is a file created exclusively and holding who took it (pid, host, command, time).
//! A lock left by a process that died on this host is taken over; anything else waits, then
//! fails naming the holder so a person can decide (`annoform state unlock --force`).

use crate::state::error::{Result, StateError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// How often a waiting process looks at the lock again.
const POLL: Duration = Duration::from_millis(100);

/// Who holds (or held) the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// The annoform command that took the lock, e.g. `apply`.
    pub command: String,
    /// When the lock was taken (RFC 3339, UTC).
    pub since: String,
}

impl Holder {
    /// This process, running `command`, now.
    pub fn current(command: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: this_host(),
            command: command.to_string(),
            since: rfc3339(SystemTime::now()),
        }
    }

    /// Whether the holder is a process on this host that no longer exists.
    ///
    /// Only decidable where `/proc` is mounted; elsewhere every holder counts as alive, so
    /// a lock is never broken on a guess.
    pub fn is_stale(&self) -> bool {
        if self.host != this_host() || !Path::new("/proc/self").exists() {
            return false;
        }
        !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid {} on host {} (`annoform {}`) since {}",
            self.pid, self.host, self.command, self.since
        )
    }
}

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
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(StateError::io("create directory", dir))?;
        }
        let deadline = Instant::now() + wait;
        let mut took_over = None;
        loop {
            // Stamped per attempt so `since` says when the lock was actually taken.
            let holder = Holder::current(command);
            let body = serde_json::to_string_pretty(&holder).map_err(|e| StateError::Corrupt {
                path: path.to_path_buf(),
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
                            path: path.to_path_buf(),
                            holder: current,
                        });
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

/// This machine's host name, for lock holders.
fn this_host() -> String {
    fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// RFC 3339 UTC time with seconds, e.g. `2026-11-22T04:06:42Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
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

    #[test]
    fn holder_display_names_everything() {
        let h = Holder {
            pid: 42,
            host: "box".into(),
            command: "apply".into(),
            since: "2026-01-01T00:00:00Z".into(),
        };
        assert_eq!(
            h.to_string(),
            "pid 42 on host box (`annoform apply`) since 2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn holders_on_other_hosts_are_never_stale() {
        let h = Holder {
            pid: u32::MAX,
            host: format!("{}-elsewhere", this_host()),
            command: "apply".into(),
            since: rfc3339(SystemTime::now()),
        };
        assert!(!h.is_stale());
    }

    #[test]
    fn this_process_is_not_stale() {
        assert!(!Holder::current("plan").is_stale());
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
    }
}
