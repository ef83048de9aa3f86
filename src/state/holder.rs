//! Who holds a state lock: pid, host, command and since when. Shared by every store's lock
//! and by the errors that name a holder, so neither depends on the other.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs;
use std::path::Path;
use std::time::SystemTime;

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

/// This machine's host name, for lock holders.
pub(crate) fn this_host() -> String {
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
    use std::time::Duration;

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
