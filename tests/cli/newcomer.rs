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

/// A workspace on the demo dataset whose CVAT secrets are `${env:...}` references.
fn cvat_workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write(
        "annoform.toml",
        &format!(
            "default_backend = \"cvat\"\n[datasets.quickstart]\npath = \"{}\"\n[backends.cvat]\nurl = \"http://127.0.0.1:9\"\nusername = \"${{env:CVAT_USERNAME}}\"\npassword = \"${{env:CVAT_PASSWORD}}\"\n",
            repo().join("datasets/quickstart").display()
        ),
    );
    ws.write(
        "manifests/run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nlabel_field: ground_truth\n",
    );
    ws
}

#[test]
fn config_show_names_the_unset_variable_of_a_secret() {
    let ws = cvat_workspace();
    let out = ok(ws.run(&["config", "show"]));
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {}", out.stdout))
            .to_string()
    };
    assert!(
        line("backends.cvat.username").contains("(not set: $CVAT_USERNAME)"),
        "{}",
        out.stdout
    );
    let set = ok(ws.run_with(&["config", "show"], &[("CVAT_USERNAME", "ann")]));
    let username = set
        .stdout
        .lines()
        .find(|l| l.starts_with("backends.cvat.username"))
        .unwrap();
    assert!(
        username.contains("(set)") && !username.contains("ann "),
        "{username}"
    );
    assert!(!set.stdout.contains("\nann"), "{}", set.stdout);
}

#[test]
fn plan_warns_about_a_needed_backend_whose_secrets_are_unset() {
    let ws = cvat_workspace();
    let out = ok(ws.run(&["plan"]));
    assert!(
        out.stderr.contains(
            "warning: apply needs backend `cvat`, whose secrets are not set: backends.cvat.username needs $CVAT_USERNAME, backends.cvat.password needs $CVAT_PASSWORD"
        ),
        "{}",
        out.stderr
    );
    let set = ok(ws.run_with(
        &["plan"],
        &[("CVAT_USERNAME", "ann"), ("CVAT_PASSWORD", "pw")],
    ));
    assert!(!set.stderr.contains("warning"), "{}", set.stderr);
}

/// The demo dataset and the test backend (a custom-protocol program) as default.
fn engine_workspace() -> Workspace {
    let ws = Workspace::empty().env("ANNOFORM_NOW", "2026-01-01T00:00:00.000Z");
    copy_dir(
        &repo().join("tests/fixtures/fiftyone-1.22.1/image-all-label-types"),
        &ws.path().join("datasets/quickstart"),
    );
    ws.write(
        "annoform.toml",
        &format!(
            "default_backend = \"fake\"\n[datasets.quickstart]\npath = \"datasets/quickstart\"\n[backends.fake]\ncommand = [\"{}\", \"{}\"]\n",
            crate::fs::test_backend().display(),
            ws.path().join("backend.json").display()
        ),
    );
    ws.write(
        "manifests/run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nlabel_field: ground_truth\n",
    );
    ws
}

#[test]
fn only_transient_failures_are_worth_a_rerun() {
    let ws = engine_workspace();
    let refused = ws.run_with(
        &["apply", "--auto-approve"],
        &[("TEST_BACKEND_REFUSE", "create_project:1")],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("the schema is not accepted"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("re-run the command"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("hint: the backend refused the request: change what the error names"),
        "{}",
        refused.stderr
    );

    let transient = ws.run_with(
        &["apply", "--auto-approve"],
        &[("TEST_BACKEND_FAIL", "create_project:1")],
    );
    assert_eq!(transient.code, 1, "{}", transient.stderr);
    assert!(
        transient
            .stderr
            .contains("hint: nothing was lost: re-run the command to resume"),
        "{}",
        transient.stderr
    );
}

#[test]
fn plan_on_invalid_manifests_does_not_send_to_validate_for_what_it_printed() {
    let ws = engine_workspace();
    ws.write(
        "manifests/run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: nowhere\nlabel_field: ground_truth\n",
    );
    let out = ws.run(&["plan"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("nowhere"), "{}", out.stderr);
    assert!(!out.stderr.contains("annoform validate"), "{}", out.stderr);
}

#[test]
fn the_manifest_present_decides_prevent_destroy() {
    let protected = "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nlabel_field: ground_truth\nview: [{limit: 1}]\nlifecycle:\n  prevent_destroy: true\n";
    let ws = engine_workspace();
    ws.write("manifests/run.yaml", protected);
    ok(ws.run(&["apply", "--auto-approve"]));

    let refused = ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains(
            "run `review` (dataset `quickstart`) was not planned: protected from destroy: manifests/run.yaml sets `lifecycle.prevent_destroy: true`; set it to false there to destroy it"
        ),
        "{}",
        refused.stderr
    );

    ws.write(
        "manifests/run.yaml",
        &protected.replace("prevent_destroy: true", "prevent_destroy: false"),
    );
    let out = ok(ws.run(&["destroy", "--auto-approve"]));
    assert!(out.stdout.contains("1 run(s) destroyed"), "{}", out.stdout);
}

#[test]
fn a_run_whose_manifest_is_gone_keeps_its_recorded_protection() {
    let ws = engine_workspace();
    ws.write(
        "manifests/run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nlabel_field: ground_truth\nview: [{limit: 1}]\nlifecycle:\n  prevent_destroy: true\n",
    );
    ok(ws.run(&["apply", "--auto-approve"]));
    std::fs::remove_file(ws.path().join("manifests/run.yaml")).unwrap();
    let refused = ws.run(&["destroy", "--auto-approve"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains(
            "its manifest is gone and its record keeps `lifecycle.prevent_destroy: true`"
        ),
        "{}",
        refused.stderr
    );
}

#[test]
fn each_missing_secret_is_shown_with_its_one_variable() {
    let ws = Workspace::empty();
    ws.write("annoform.toml", "default_backend = \"labelstudio\"\n");
    let out = ok(ws.run(&["config", "show"]));
    for (setting, var) in [
        (
            "backends.labelstudio.api_key",
            "$ANNOFORM_LABELSTUDIO_API_KEY",
        ),
        ("backends.cvat.username", "$ANNOFORM_CVAT_USERNAME"),
        ("backends.cvat.password", "$ANNOFORM_CVAT_PASSWORD"),
    ] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(setting))
            .unwrap_or_else(|| panic!("{setting} in {}", out.stdout));
        assert!(line.contains(&format!("(not set: {var})")), "{line}");
    }
}

#[test]
fn the_example_workspace_gives_each_backend_its_own_url_and_no_secret_aliases() {
    let text = std::fs::read_to_string(repo().join("annoform.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    let url = |b: &str| doc["backends"][b]["url"].as_str().unwrap().to_string();
    assert_ne!(url("cvat"), url("labelstudio"));
    assert!(
        !text.contains("${env:"),
        "secrets go by their ANNOFORM_ names: {text}"
    );
}

#[test]
fn plan_warns_when_a_needed_backend_has_no_credentials_at_all() {
    let ws = Workspace::empty();
    ws.write(
        "annoform.toml",
        &format!(
            "default_backend = \"labelstudio\"\n[datasets.quickstart]\npath = \"{}\"\n",
            repo().join("datasets/quickstart").display()
        ),
    );
    ws.write(
        "manifests/run.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: review\ndataset: quickstart\nlabel_field: ground_truth\n",
    );
    let out = ok(ws.run(&["plan"]));
    assert!(
        out.stderr.contains(
            "warning: apply needs backend `labelstudio`, whose secrets are not set: set $ANNOFORM_LABELSTUDIO_API_KEY"
        ),
        "{}",
        out.stderr
    );
}
