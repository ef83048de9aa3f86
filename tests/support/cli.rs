//! Running the annoform binary in a hermetic environment (cleared environment, temporary
//! HOME, no colour, fixed width), shared by the test binaries that drive the CLI.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a command did.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A temporary workspace with a fresh HOME.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Workspace {
    /// An empty workspace.
    pub fn empty() -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Workspace {
            dir,
            env: Vec::new(),
        }
    }

    /// A workspace whose annoform.toml declares the repository's demo datasets.
    pub fn with_datasets() -> Workspace {
        let ws = Workspace::empty();
        let datasets = repo().join("datasets");
        ws.write(
            "annoform.toml",
            &format!(
                "default_backend = \"cvat\"\n[datasets.quickstart]\npath = \"{}\"\n[datasets.traffic]\npath = \"{}\"\n",
                datasets.join("quickstart").display(),
                datasets.join("traffic").display()
            ),
        );
        std::fs::create_dir_all(ws.path().join("manifests")).unwrap();
        ws
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file under the workspace.
    pub fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    /// Write raw bytes under the workspace.
    pub fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// Set an environment variable for later commands.
    pub fn env(mut self, k: &str, v: &str) -> Workspace {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Run annoform in this workspace.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Run annoform with extra environment variables for this command only.
    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        annoform(self.path(), &self.path().join("home"), &env, args)
    }
}

/// Run the annoform binary with `-C dir` and a hermetic environment.
pub fn annoform(dir: &Path, home: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_annoform"));
    cmd.env_clear()
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("-C")
        .arg(dir)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run annoform");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
