//! The first hour: `init`, `config show`, messages and hints a new user meets.

use crate::fs::copy_dir;
use crate::{Output, Workspace, repo};

fn ok(out: Output) -> Output {
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    out
}

#[test]
fn plain_init_leaves_a_workspace_that_validates_and_says_what_next() {
    let ws = Workspace::empty();
    ok(ws.run(&["init"]));
    let out = ok(ws.run(&["validate"]));
    assert!(
        out.stdout.contains("0 run(s) in 0 file(s) are valid"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("manifests/first_run.yaml.example is an example"),
        "{}",
        out.stderr
    );
    ok(ws.run(&["plan"]));
}

#[test]
fn init_with_a_dataset_names_it_and_its_example_run_validates() {
    let ws = Workspace::empty();
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
        &ws.path().join("exports/animals"),
    );
    ok(ws.run(&["init", "--dataset", "exports/animals"]));
    let toml = std::fs::read_to_string(ws.path().join("annoform.toml")).unwrap();
    assert!(toml.contains("path = \"exports/animals\""), "{toml}");
    let out = ok(ws.run(&["validate"]));
    assert!(
        out.stdout.contains("1 run(s) in 1 file(s) are valid"),
        "{}",
        out.stdout
    );

    let missing = Workspace::empty();
    let out = missing.run(&["init", "--dataset", "nowhere"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("metadata.json is missing"),
        "{}",
        out.stderr
    );
    assert!(
        !missing.path().join("annoform.toml").exists(),
        "nothing written"
    );
}
