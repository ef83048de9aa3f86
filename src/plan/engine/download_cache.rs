//! Downloads kept from `plan` for the `apply` that follows it, so a reviewed merge downloads
//! once: apply replays the plan's pages and asks the backend only for what changed after the
//! plan's cursor.
//!
//! One file per run under `.annoform/cache/<dataset>/<key>/`, named
//! `<what>-<content>.jsonl`: `what` digests what the download was of (the record's lineage
//! and serial, backend, project, tasks and the cursor it started from), so a download is
//! used only for the same record state; `content` digests the file itself, so a torn or
//! altered file is never replayed. Lines: one page per line, then a trailer with the cursor
//! the download reached and the samples the backend held. The cache only saves time: a file
//! that cannot be written or read is left out, and the download happens as without it.

use crate::backend::{Annotations, Downloaded};
use crate::state::RunRecord;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Bumped when the file format changes: older files then match no download.
const FORMAT: u32 = 1;

/// The cache directory of a workspace.
#[derive(Debug, Clone)]
pub struct DownloadCache {
    dir: PathBuf,
}

/// What a download was of: a cached one is used only for the same.
#[derive(Debug, Clone)]
pub struct CacheKey {
    /// `<dataset>/<key>` under the cache directory.
    run: PathBuf,
    what: String,
}

impl CacheKey {
    /// The download of `tasks` of `project` on `backend` for record `r`, from `since`.
    pub fn new(
        r: &RunRecord,
        backend: &str,
        project: &str,
        tasks: &[String],
        since: Option<&str>,
    ) -> CacheKey {
        let what = serde_json::json!([FORMAT, r.lineage, r.serial, backend, project, tasks, since]);
        CacheKey {
            run: Path::new(&r.dataset).join(&r.key),
            what: hex16(&Sha256::digest(what.to_string().as_bytes())),
        }
    }
}

/// The last line of a cached download.
#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    cursor: Option<String>,
    held: Option<Vec<String>>,
    pages: usize,
}

/// A cached download, verified: its pages replay in the order they were written.
#[derive(Debug)]
pub struct Cached {
    path: PathBuf,
    /// Where the cached download ended: apply asks only for what changed after it.
    pub downloaded: Downloaded,
    pages: usize,
}

impl Cached {
    /// The cached pages, one at a time (memory follows a page, not the download).
    pub fn pages(&self) -> impl Iterator<Item = Option<Annotations>> + '_ {
        let lines = File::open(&self.path)
            .ok()
            .map(|f| BufReader::new(f).lines());
        let mut lines = lines.into_iter().flatten();
        (0..self.pages).map(move |_| {
            let line = lines.next()?.ok()?;
            serde_json::from_str(&line).ok()
        })
    }
}

/// Writes a download as it is merged; [`CacheWriter::finish`] makes it visible.
pub struct CacheWriter {
    tmp: PathBuf,
    dir: PathBuf,
    what: String,
    file: BufWriter<File>,
    hash: Sha256,
    pages: usize,
}

impl CacheWriter {
    /// Append a page.
    pub fn page(&mut self, page: &Annotations) -> std::io::Result<()> {
        let mut line = serde_json::to_string(page)?;
        line.push('\n');
        self.hash.update(line.as_bytes());
        self.file.write_all(line.as_bytes())?;
        self.pages += 1;
        Ok(())
    }

    /// Close the file with where the download ended, and replace the run's older downloads.
    /// A download with strays (objects no sample takes, per task) is not kept: a later
    /// download since its cursor could not tell which of them are gone.
    pub fn finish(mut self, downloaded: &Downloaded) -> std::io::Result<()> {
        if !downloaded.strays.is_empty() {
            return Ok(());
        }
        let mut held: Option<Vec<String>> = downloaded
            .held
            .as_ref()
            .map(|h| h.iter().cloned().collect());
        if let Some(h) = held.as_mut() {
            h.sort_unstable();
        }
        let trailer = Trailer {
            cursor: downloaded.cursor.clone(),
            held,
            pages: self.pages,
        };
        let mut line = serde_json::to_string(&trailer)?;
        line.push('\n');
        self.hash.update(line.as_bytes());
        self.file.write_all(line.as_bytes())?;
        self.file.flush()?;
        let content = hex16(&self.hash.finalize_reset());
        let path = self.dir.join(format!("{}-{content}.jsonl", self.what));
        fs::rename(&self.tmp, &path)?;
        remove_all_but(&self.dir, Some(&path));
        Ok(())
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        // Unfinished (or finished: then renamed away and this fails quietly).
        let _ = fs::remove_file(&self.tmp);
    }
}

impl DownloadCache {
    /// The cache of the workspace whose annoform directory is `dir` (`.annoform`).
    pub fn new(dir: PathBuf) -> DownloadCache {
        DownloadCache { dir }
    }

    /// The cached download for `key`, if one is there and intact.
    pub fn open(&self, key: &CacheKey) -> Option<Cached> {
        let dir = self.dir.join(&key.run);
        let prefix = format!("{}-", key.what);
        let path = fs::read_dir(&dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".jsonl"))
            })?;
        let content = path
            .file_name()?
            .to_str()?
            .strip_prefix(&prefix)?
            .strip_suffix(".jsonl")?
            .to_string();
        // Verified whole before any page is used; the trailer is its last line.
        let mut hash = Sha256::new();
        let mut last = String::new();
        let mut lines = 0usize;
        for line in BufReader::new(File::open(&path).ok()?).lines() {
            let line = line.ok()?;
            hash.update(line.as_bytes());
            hash.update(b"\n");
            last = line;
            lines += 1;
        }
        let trailer: Option<Trailer> = serde_json::from_str(&last).ok();
        let intact = hex16(&hash.finalize()) == content;
        let Some(trailer) = trailer.filter(|t| intact && t.pages + 1 == lines) else {
            let _ = fs::remove_file(&path);
            return None;
        };
        Some(Cached {
            path,
            downloaded: Downloaded {
                cursor: trailer.cursor,
                held: trailer.held.map(|h| h.into_iter().collect::<HashSet<_>>()),
                strays: Vec::new(),
            },
            pages: trailer.pages,
        })
    }

    /// A writer for the download of `key` (`None` when the directory cannot be written).
    pub fn writer(&self, key: &CacheKey) -> Option<CacheWriter> {
        let dir = self.dir.join(&key.run);
        fs::create_dir_all(&dir).ok()?;
        let tmp = dir.join(format!(".{}.{}.tmp", key.what, std::process::id()));
        let file = File::create(&tmp).ok()?;
        Some(CacheWriter {
            tmp,
            dir,
            what: key.what.clone(),
            file: BufWriter::new(file),
            hash: Sha256::new(),
            pages: 0,
        })
    }

    /// Forget a run's downloads (its record moved on: none can match any more).
    pub fn forget(&self, dataset: &str, key: &str) {
        let dir = self.dir.join(dataset).join(key);
        remove_all_but(&dir, None);
        let _ = fs::remove_dir(&dir);
    }
}

/// Remove the downloads in `dir` except `keep`.
fn remove_all_but(dir: &Path, keep: Option<&Path>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for p in entries.filter_map(Result::ok).map(|e| e.path()) {
        let ours = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".jsonl"));
        if ours && Some(p.as_path()) != keep {
            let _ = fs::remove_file(&p);
        }
    }
}

/// The first 16 bytes of a digest as hex.
fn hex16(d: &[u8]) -> String {
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::DownloadedLabel;
    use indexmap::IndexMap;

    fn page(sample: &str, x: f64) -> Annotations {
        let mut fields = IndexMap::new();
        fields.insert(
            "gt".to_string(),
            vec![DownloadedLabel::new(
                "b1",
                serde_json::json!({"_cls": "Detection", "bounding_box": [x, 0.1, 0.2, 0.3]}),
            )],
        );
        let mut p = Annotations::new();
        p.insert(sample.to_string(), fields.into());
        p
    }

    fn record(serial: u64) -> RunRecord {
        let mut r = RunRecord::new("ds", "run", "ls", "2026-01-01T00:00:00Z", "ab".into());
        r.serial = serial;
        r
    }

    #[test]
    fn a_download_replays_for_the_same_record_only_and_only_intact() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DownloadCache::new(dir.path().to_path_buf());
        let key = CacheKey::new(&record(3), "ls", "7", &["t".into()], None);
        let pages = [page("s1", 0.1 + 0.2), page("s2", 1.0 / 3.0)];
        let mut w = cache.writer(&key).unwrap();
        for p in &pages {
            w.page(p).unwrap();
        }
        let downloaded = Downloaded {
            cursor: Some("2026-01-01T00:00:01.000000000Z".into()),
            held: Some(["s1".to_string(), "s2".to_string()].into()),
            strays: Vec::new(),
        };
        w.finish(&downloaded).unwrap();

        let cached = cache.open(&key).expect("cached");
        assert_eq!(cached.downloaded, downloaded);
        let back: Vec<Annotations> = cached.pages().map(Option::unwrap).collect();
        assert_eq!(back, pages, "pages come back exactly (floats included)");

        // Another serial, cursor or task list: another download.
        for other in [
            CacheKey::new(&record(4), "ls", "7", &["t".into()], None),
            CacheKey::new(&record(3), "ls", "7", &["t".into()], Some("c")),
            CacheKey::new(&record(3), "ls", "7", &["u".into()], None),
        ] {
            assert!(cache.open(&other).is_none());
        }

        // A file altered after it was written is not replayed, and goes.
        let file = std::fs::read_dir(dir.path().join("ds/run"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("s2", "s3")).unwrap();
        assert!(cache.open(&key).is_none());
        assert!(!file.exists());

        // An unfinished writer leaves nothing behind.
        let mut w = cache.writer(&key).unwrap();
        w.page(&pages[0]).unwrap();
        drop(w);
        assert!(cache.open(&key).is_none());
        assert_eq!(
            std::fs::read_dir(dir.path().join("ds/run"))
                .unwrap()
                .count(),
            0
        );
        cache.forget("ds", "run");
        assert!(!dir.path().join("ds/run").exists());
    }
}
