//! The README's newcomer path against a real Label Studio, in a hermetic environment: from
//! `annoform init` on a FiftyOne export to an annotator's edit merged into the dataset. Every
//! step must succeed, and every message must be true of the moment: what to do next, which
//! variable a missing secret needs, no re-run hint, no warning once the secret is set.

use crate::fs::copy_dir;
use crate::labelstudio::LabelStudio;
use crate::repo;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// A newcomer's shell: an empty directory, a HOME of its own, the variables they exported.
struct Shell {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Shell {
    fn run(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_annoform"))
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("HOME", self.dir.path().join(".home"))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run annoform");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A step that must succeed and say nothing misleading.
    fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(
            out.code, 0,
            "annoform {args:?}:\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        for wrong in ["error", "nothing was lost", "re-run"] {
            assert!(
                !out.stderr.contains(wrong),
                "annoform {args:?} says `{wrong}`:\n{}",
                out.stderr
            );
        }
        for (k, v) in &self.env {
            if k.ends_with("API_KEY") {
                assert!(
                    !out.stdout.contains(v.as_str()) && !out.stderr.contains(v.as_str()),
                    "{k} leaked"
                );
            }
        }
        out
    }

    fn export(&mut self, k: &str, v: &str) {
        self.env.push((k.to_string(), v.to_string()));
    }

    fn samples(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("exports/animals/samples.json")).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["samples"]
            .as_array()
            .unwrap()
            .clone()
    }
}

#[test]
fn from_init_to_a_merged_run() {
    let media = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(media.path());
    let mut sh = Shell {
        dir: tempfile::tempdir().unwrap(),
        env: Vec::new(),
    };
    std::fs::create_dir_all(sh.dir.path().join(".home")).unwrap();
    // The dataset, exported from FiftyOne (`dataset.export(..., fo.types.FiftyOneDataset)`).
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
        &sh.dir.path().join("exports/animals"),
    );

    // init names what to do next, for the backend chosen.
    let init = sh.ok(&[
        "init",
        "--dataset",
        "exports/animals",
        "--backend",
        "labelstudio",
    ]);
    assert!(
        init.stdout.contains("manifests/first_run.yaml")
            && init.stdout.contains("ANNOFORM_LABELSTUDIO_API_KEY")
            && !init.stdout.contains("CVAT"),
        "{}",
        init.stdout
    );
    let validate = sh.ok(&["validate"]);
    assert!(
        validate.stdout.contains("1 run(s) in 1 file(s) are valid"),
        "{}",
        validate.stdout
    );

    // The server is not the default one: the URL is exported, as the key will be.
    sh.export("ANNOFORM_LABELSTUDIO_URL", &ls.url);
    let config = sh.ok(&["config", "show"]);
    let key_line = config
        .stdout
        .lines()
        .find(|l| l.starts_with("backends.labelstudio.api_key"))
        .unwrap_or_else(|| panic!("{}", config.stdout));
    assert!(
        key_line.contains("(not set: $ANNOFORM_LABELSTUDIO_API_KEY)"),
        "{key_line}"
    );

    // A plan without the key plans, and warns that apply will need it.
    let plan = sh.run(&["plan"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("+ create"), "{}", plan.stdout);
    assert!(
        plan.stderr.contains("set $ANNOFORM_LABELSTUDIO_API_KEY"),
        "{}",
        plan.stderr
    );

    sh.export("ANNOFORM_LABELSTUDIO_API_KEY", &ls.token);
    let plan = sh.ok(&["plan"]);
    assert!(plan.stderr.trim().is_empty(), "{}", plan.stderr);
    let apply = sh.ok(&["apply", "--auto-approve"]);
    assert!(
        apply.stdout.contains(&ls.url),
        "the project's URL: {}",
        apply.stdout
    );
    // init named the dataset after its FiftyOne name, `export_demo`.
    let project = ls
        .project("annoform/export_demo/first_run")
        .unwrap_or_else(|| panic!("{}", apply.stdout));
    let tasks = ls.tasks(project);
    assert_eq!(tasks.len(), 5);
    assert!(sh.ok(&["plan"]).stdout.contains("No changes"));

    // An annotator relabels the first sample's first box and submits every task as is
    // otherwise: the run's `load.when` (complete, by default) is met; status, plan and apply
    // follow.
    let before = sh.samples();
    let s0 = before[0]["_id"]["$oid"].as_str().unwrap();
    let box0 = before[0]["ground_truth"]["detections"][0]["_id"]["$oid"]
        .as_str()
        .unwrap()
        .to_string();
    for (i, task) in tasks.iter().enumerate() {
        let first = task["data"]["sample_id"] == s0;
        ls.annotate(task, |result| {
            for r in result
                .iter_mut()
                .filter(|r| first && r["id"] == box0.as_str())
            {
                r["value"]["rectanglelabels"] = json!(["person"]);
            }
        });
        if i == 0 {
            // One sample of five labeled: the plan says what the merge waits for, not only
            // that the runs match the manifests (annoform's one task holds the five Label
            // Studio tasks; Label Studio's word for how far it is follows).
            let plan = sh.ok(&["plan"]);
            assert!(
                plan.stdout.contains(
                    "merge waits: 0/1 task complete (load.when: complete); open:\n        `annoform/export_demo/first_run/batch-0000` 1/5 labeled"
                ) && plan.stdout.contains("No changes"),
                "{}",
                plan.stdout
            );
        }
    }
    let status = sh.ok(&["status"]);
    assert!(status.stdout.contains("5/5 labeled"), "{}", status.stdout);
    let plan = sh.ok(&["plan"]);
    assert!(
        plan.stdout.contains("<= merge") && plan.stdout.contains("~1 edited"),
        "{}",
        plan.stdout
    );
    sh.ok(&["apply", "--auto-approve"]);
    assert_eq!(
        sh.samples()[0]["ground_truth"]["detections"][0]["label"],
        "person"
    );
    assert!(sh.ok(&["plan"]).stdout.contains("No changes"));
    assert!(Path::new(&sh.dir.path().join(".annoform/state")).exists());
}
