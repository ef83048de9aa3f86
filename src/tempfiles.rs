//! Names of the temporary files written beside a file before it atomically replaces it, and
//! the clean-up of those a killed process left behind.
//!
//! A temporary file is `.<name>.annoform-<pid>[-<unique>].tmp`: the process id says whether
//! its writer may still be at work. Files of a process that no longer runs are removed; any
//! other file (another program's, or ours whose writer lives) is left alone.

use std::fs;
use std::path::{Path, PathBuf};

const MARK: &str = ".annoform-";
const SUFFIX: &str = ".tmp";

/// The temporary path for writing `dest` from this process; `unique` tells apart writers
/// in the same process (threads writing the same file).
pub fn temp_path(dest: &Path, unique: Option<&str>) -> PathBuf {
    let name = dest
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let pid = std::process::id();
    let tail = match unique {
        Some(u) => format!("{pid}-{u}"),
        None => pid.to_string(),
    };
    dest.with_file_name(format!(".{name}{MARK}{tail}{SUFFIX}"))
}

/// Removes, best effort, the temporary files in `dir` whose writing process is gone; returns
/// how many were removed.
pub fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let own = std::process::id();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(writer_pid) else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if pid != own && is_file && !is_running(pid) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The writer's process id, if `name` is one of our temporary files.
fn writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?.strip_suffix(SUFFIX)?;
    let (_, tail) = rest.rsplit_once(MARK)?;
    let pid = tail.split_once('-').map_or(tail, |(pid, _)| pid);
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this id runs. Where that cannot be known (no `/proc`), every
/// process counts as running, so nothing is removed.
fn is_running(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    // `/proc/<id>` also answers for a thread id; only a process whose id it is counts.
    match fs::read_to_string(proc.join(pid.to_string()).join("status")) {
        Ok(status) => status
            .lines()
            .find_map(|l| l.strip_prefix("Tgid:"))
            .is_none_or(|tgid| tgid.trim() == pid.to_string()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_of_gone_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join(".samples.json.annoform-4194400.tmp");
        let running = dir.path().join(".samples.json.annoform-1.tmp");
        let own = temp_path(&dir.path().join("samples.json"), None);
        for f in [&gone, &running, &own] {
            fs::write(f, "{").unwrap();
        }
        assert!(is_running(1) && !is_running(4_194_400));
        assert_eq!(remove_stale(dir.path()), 1);
        assert!(!gone.exists() && running.exists() && own.exists());
    }

    #[test]
    fn names_carry_the_writer() {
        let t = temp_path(Path::new("/d/samples.json"), None);
        let name = t.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            name,
            format!(".samples.json.annoform-{}.tmp", std::process::id())
        );
        assert_eq!(writer_pid(name), Some(std::process::id()));
        let t = temp_path(Path::new("/d/run.json"), Some("ab12"));
        assert_eq!(
            writer_pid(t.file_name().unwrap().to_str().unwrap()),
            Some(std::process::id())
        );
        for other in [
            "samples.json",
            ".samples.json.tmp",
            ".x.annoform-.tmp",
            ".x.annoform-12a.tmp",
            "x.annoform-12.tmp",
            ".x.annoform-12.tmp.bak",
        ] {
            assert_eq!(writer_pid(other), None, "{other}");
        }
    }
}
