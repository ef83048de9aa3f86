//! Manifest parse + validate of 500 runs (50 files of 10 documents), made by cycling the
//! example manifests under `manifests/` with fresh keys, validated against the example
//! workspace (`annoform.toml`, `datasets/`). Prints the median of 5 rounds per phase.
//! Run: `cargo bench --bench manifest`.

mod support;
use support::{median, peak_rss_mib};

use annoform::config::{Config, Env, Flags};
use annoform::manifest::{load, validate};
use annoform::workspace::Datasets;
use std::path::{Path, PathBuf};
use std::time::Instant;

const FILES: usize = 50;
const RUNS_PER_FILE: usize = 10;
const ROUNDS: usize = 5;

/// The example manifests as single documents (a file may hold several).
fn examples(repo: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo.join("manifests"))
        .expect("manifests/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).expect("read manifest");
            text.split("\n---")
                .map(str::to_string)
                .filter(|d| d.contains("kind: AnnotationRun"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Document `i`: an example with its key and project name made unique.
fn document(examples: &[String], i: usize) -> String {
    examples[i % examples.len()]
        .lines()
        .map(|l| {
            if let Some(k) = l.strip_prefix("key: ") {
                format!("key: {k}_{i}")
            } else if let Some(p) = l.strip_prefix("  project_name: ") {
                format!("  project_name: {p} {i}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let examples = examples(&repo);
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut bytes = 0;
    for f in 0..FILES {
        let docs: Vec<String> = (0..RUNS_PER_FILE)
            .map(|d| document(&examples, f * RUNS_PER_FILE + d))
            .collect();
        let text = docs.join("\n---\n");
        bytes += text.len();
        std::fs::write(tmp.path().join(format!("runs-{f:03}.yaml")), text).expect("write");
    }
    let runs = FILES * RUNS_PER_FILE;
    let flags = Flags {
        manifests: Some(tmp.path().to_path_buf()),
        parallelism: None,
    };
    let env = Env::default();
    let (mut config_t, mut parse_t, mut cold_t, mut warm_t) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let config = Config::load(&repo, &flags, &env).expect("annoform.toml");
        config_t.push(t.elapsed());

        let t = Instant::now();
        let loaded = load::load(&[config.manifest_dir()], &config.root);
        parse_t.push(t.elapsed());
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.runs.len(), runs);

        // Cold: the datasets are read (once each) while validating; warm: already loaded.
        let mut datasets = Datasets::new(&config);
        let t = Instant::now();
        let problems = validate::validate(&loaded.runs, &config, &mut datasets);
        cold_t.push(t.elapsed());
        assert!(problems.is_empty(), "{problems:?}");
        let t = Instant::now();
        let problems = validate::validate(&loaded.runs, &config, &mut datasets);
        warm_t.push(t.elapsed());
        assert!(problems.is_empty(), "{problems:?}");
    }
    println!(
        "manifest: {runs} runs in {FILES} files ({} KiB of YAML; {} example documents cycled)",
        bytes / 1024,
        examples.len()
    );
    let parse = median(parse_t);
    println!("  config load               {:>10.2?}", median(config_t));
    println!(
        "  parse + schema check      {parse:>10.2?}  ({:.0} runs/s)",
        runs as f64 / parse.as_secs_f64()
    );
    println!(
        "  validate (datasets cold)  {:>10.2?}",
        median(cold_t.clone())
    );
    let warm = median(warm_t);
    println!(
        "  validate (datasets warm)  {warm:>10.2?}  ({:.0} runs/s)",
        runs as f64 / warm.as_secs_f64()
    );
    println!(
        "  parse + validate          {:>10.2?}",
        parse + median(cold_t)
    );
    println!("  peak RSS {:.0} MiB", peak_rss_mib());
}
