//! The GitOps recipe (docs/gitops.md) as its CI runs it: each pull request is a fresh checkout
//! of examples/gitops in a directory of its own, whose job runs `ci/annoform.sh plan` and
//! `post-github` (with a stand-in `gh` keeping the pull request's comments as files); each merge
//! is another fresh checkout running `ci/annoform.sh apply`. Checkouts share only what CI jobs
//! share: the PostgreSQL state store, the dataset's storage and Label Studio. Secrets reach the
//! steps as the workflow passes them, in the environment.

use crate::fs::copy_dir;
use crate::labelstudio::LabelStudio;
use crate::{pg, repo};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the jobs run: the shared storage, the bin directory and the CI's environment.
struct Ci {
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// Checkouts made so far (each job's directory gets a new name).
    jobs: std::cell::Cell<usize>,
}

/// One step's outcome.
struct Step {
    code: i32,
    log: String,
}

const PR: &str = "7";

impl Ci {
    fn new(ls: &LabelStudio, state_url: String) -> Ci {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_annoform"), bin.join("annoform")).unwrap();
        std::os::unix::fs::symlink(repo().join("tests/walkthroughs/gh-stub.sh"), bin.join("gh"))
            .unwrap();
        // The dataset on the runner's shared storage.
        copy_dir(
            &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
            &root.path().join("storage/datasets/quickstart"),
        );
        std::fs::create_dir_all(root.path().join("home")).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let env = [
            ("PATH", path),
            ("HOME", root.path().join("home").display().to_string()),
            ("NO_COLOR", "1".into()),
            // The workflow's `env:`, from the secret store.
            ("ANNOFORM_STATE_URL", state_url),
            ("ANNOFORM_LABELSTUDIO_API_KEY", ls.token.clone()),
            // The post step's.
            ("GH_TOKEN", "gh-token-of-the-job".into()),
            ("PR_NUMBER", PR.into()),
            ("GITHUB_REPOSITORY", "team/labeling".into()),
            (
                "GH_STUB_DIR",
                root.path().join("pull-request").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ci {
            root,
            env,
            jobs: std::cell::Cell::new(0),
        }
    }

    /// A fresh checkout of the repository with `manifest` as manifests/review.yaml, and the
    /// two settings a team edits pointed at the test's servers: the dataset's path and the
    /// Label Studio URL.
    fn checkout(&self, ls: &LabelStudio, manifest: &str) -> PathBuf {
        self.jobs.set(self.jobs.get() + 1);
        let dir = self.root.path().join(format!("job-{}", self.jobs.get()));
        copy_dir(&repo().join("examples/gitops"), &dir);
        let toml = std::fs::read_to_string(dir.join("annoform.toml")).unwrap();
        let storage = self.root.path().join("storage/datasets/quickstart");
        let toml = replace_once(
            &toml,
            "path = \"/srv/annoform/datasets/quickstart\"",
            &format!("path = \"{}\"", storage.display()),
        );
        let toml = replace_once(
            &toml,
            "url = \"https://labelstudio.example.com\"",
            &format!("url = \"{}\"", ls.url),
        );
        std::fs::write(dir.join("annoform.toml"), toml).unwrap();
        std::fs::write(dir.join("manifests/review.yaml"), manifest).unwrap();
        dir
    }

    /// `ci/annoform.sh STEP` in `checkout`, as the workflow's `run:` runs it.
    fn step(&self, checkout: &Path, step: &str) -> Step {
        let out = Command::new("bash")
            .arg("ci/annoform.sh")
            .arg(step)
            .current_dir(checkout)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run ci/annoform.sh");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for (k, v) in &self.env {
            if k.contains("TOKEN") || k.contains("KEY") || k.contains("URL") {
                assert!(
                    !log.contains(v.as_str()),
                    "{k} leaked into the job log:\n{log}"
                );
            }
        }
        Step {
            code: out.status.code().unwrap_or(-1),
            log,
        }
    }

    /// A step that must succeed.
    fn ok(&self, checkout: &Path, step: &str) -> String {
        let s = self.step(checkout, step);
        assert_eq!(s.code, 0, "ci/annoform.sh {step} failed:\n{}", s.log);
        s.log
    }

    /// The pull request's comments, oldest first.
    fn comments(&self) -> Vec<String> {
        let dir = self.root.path().join("pull-request");
        let mut ids: Vec<usize> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".md")?.parse().ok())
            .collect();
        ids.sort();
        ids.iter()
            .map(|id| std::fs::read_to_string(dir.join(format!("{id}.md"))).unwrap())
            .collect()
    }

    fn samples(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(
            self.root
                .path()
                .join("storage/datasets/quickstart/samples.json"),
        )
        .unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["samples"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` in:\n{text}");
    text.replace(from, to)
}

/// The example's manifest, as merged by the first pull request.
fn first_manifest() -> String {
    std::fs::read_to_string(repo().join("examples/gitops/manifests/review.yaml")).unwrap()
}

#[test]
fn pull_requests_plan_and_main_applies() {
    let media = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(media.path());
    let server = pg::server();
    let db = server.database("gitops");
    let ci = Ci::new(&ls, server.admin_url(&db));

    // Pull request 1 adds the run: its plan is posted as a comment.
    let pr1 = ci.checkout(&ls, &first_manifest());
    let log = ci.ok(&pr1, "plan");
    assert!(log.contains("1 run(s) in 1 file(s) are valid"), "{log}");
    ci.ok(&pr1, "post-github");
    let comments = ci.comments();
    assert_eq!(comments.len(), 1, "{comments:#?}");
    assert!(
        comments[0].starts_with("### annoform plan\n") && comments[0].contains("quickstart/review"),
        "{}",
        comments[0]
    );
    assert!(comments[0].contains("1 to create"), "{}", comments[0]);
    assert!(
        ls.project("annoform/quickstart/review").is_none(),
        "a plan creates nothing"
    );

    // Merged: main applies the plan it makes.
    let main1 = ci.checkout(&ls, &first_manifest());
    ci.ok(&main1, "apply");
    let project = ls
        .project("annoform/quickstart/review")
        .expect("the apply on main created the project");
    let tasks = ls.tasks(project);
    assert_eq!(tasks.len(), 3);

    // An annotator relabels the first sample's car as a person.
    let before = ci.samples();
    let s0 = before[0]["_id"]["$oid"].as_str().unwrap();
    let car = before[0]["ground_truth"]["detections"][0]["_id"]["$oid"]
        .as_str()
        .unwrap()
        .to_string();
    let task = tasks.iter().find(|t| t["data"]["sample_id"] == s0).unwrap();
    ls.annotate(task, |result| {
        for r in result.iter_mut().filter(|r| r["id"] == car.as_str()) {
            r["value"]["rectanglelabels"] = json!(["person"]);
        }
    });

    // Pull request 2 adds a class: its comment replaces the first and shows the update and
    // the annotator's edit waiting to be merged.
    let second =
        first_manifest().replace("classes: [car, person]", "classes: [car, person, truck]");
    let pr2 = ci.checkout(&ls, &second);
    ci.ok(&pr2, "plan");
    ci.ok(&pr2, "post-github");
    let comments = ci.comments();
    assert_eq!(
        comments.len(),
        1,
        "the old comment is replaced: {comments:#?}"
    );
    let comment = &comments[0];
    assert!(comment.len() <= 65_000);
    assert!(
        comment.contains("1 to update") && comment.contains("1 to merge"),
        "{comment}"
    );
    let saved = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gitops-comment.md");
    std::fs::write(&saved, comment).unwrap();
    let docs = std::fs::read_to_string(repo().join("docs/gitops.md")).unwrap();
    assert!(
        docs.contains(comment.trim_end()),
        "docs/gitops.md quotes the comment this pull request gets; it is now (also in {}):\n{comment}",
        saved.display()
    );

    // Merged: main applies, and the annotator's label is in the dataset.
    let main2 = ci.checkout(&ls, &second);
    ci.ok(&main2, "apply");
    let after = ci.samples();
    assert_eq!(after[0]["ground_truth"]["detections"][0]["label"], "person");

    // A pull request changing nothing gets a comment saying so.
    let pr3 = ci.checkout(&ls, &second);
    ci.ok(&pr3, "plan");
    ci.ok(&pr3, "post-github");
    let comments = ci.comments();
    assert_eq!(comments.len(), 1);
    assert!(comments[0].contains("No changes"), "{}", comments[0]);

    // A broken manifest: the job fails and the comment says why.
    let pr4 = ci.checkout(
        &ls,
        &second.replace("dataset: quickstart", "dataset: quickstrat"),
    );
    let failed = ci.step(&pr4, "plan");
    assert_eq!(failed.code, 1, "{}", failed.log);
    ci.ok(&pr4, "post-github");
    let comments = ci.comments();
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].contains("annoform could not plan this change")
            && comments[0].contains("quickstrat"),
        "{}",
        comments[0]
    );
}
