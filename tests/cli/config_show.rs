//! `annoform config show`: precedence and sources, and secrets never shown.

use crate::Workspace;
use serde_json::Value;

fn setting(ws: &Workspace, name: &str) -> (String, String) {
    let out = ws.run(&["config", "show", "--json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let row = doc["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["setting"] == name)
        .unwrap_or_else(|| panic!("{name} missing in {}", out.stdout));
    (
        row["value"].as_str().unwrap().to_string(),
        row["source"].as_str().unwrap().to_string(),
    )
}

fn workspace() -> Workspace {
    let ws = Workspace::empty();
    ws.write("annoform.toml", "# workspace\ndefault_backend = \"labelstudio\"\n\n[backends.cvat]\nurl = \"http://from-file:8080\"\n");
    ws
}

#[test]
fn the_same_setting_resolves_in_documented_order() {
    let ws = workspace();
    ws.write(
        "home/.fiftyone/annotation_config.json",
        r#"{"backends": {"cvat": {"url": "http://from-fo-json"}}}"#,
    );
    assert_eq!(
        setting(&ws, "backends.cvat.url"),
        ("http://from-file:8080".into(), "annoform.toml:5".into())
    );
    let ws = ws.env("FIFTYONE_CVAT_URL", "http://from-fiftyone-env");
    assert_eq!(
        setting(&ws, "backends.cvat.url"),
        (
            "http://from-fiftyone-env".into(),
            "env FIFTYONE_CVAT_URL".into()
        )
    );
    let ws = ws.env("ANNOFORM_CVAT_URL", "http://from-annoform-env");
    assert_eq!(
        setting(&ws, "backends.cvat.url"),
        (
            "http://from-annoform-env".into(),
            "env ANNOFORM_CVAT_URL".into()
        )
    );
}

#[test]
fn fiftyone_annotation_config_is_the_last_resort_before_defaults() {
    let ws = Workspace::empty();
    ws.write(
        "home/.fiftyone/annotation_config.json",
        r#"{"default_backend": "labelstudio", "backends": {"labelstudio": {"url": "http://ls-from-json", "api_key": "json-secret-value"}}}"#,
    );
    assert_eq!(
        setting(&ws, "backends.labelstudio.url"),
        (
            "http://ls-from-json".into(),
            "~/.fiftyone/annotation_config.json".into()
        )
    );
    assert_eq!(
        setting(&ws, "default_backend"),
        (
            "labelstudio".into(),
            "~/.fiftyone/annotation_config.json".into()
        )
    );
    assert_eq!(
        setting(&ws, "backends.cvat.url"),
        ("https://app.cvat.ai".into(), "default".into())
    );
    let out = ws.run(&["config", "show"]);
    assert!(!out.stdout.contains("json-secret-value"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("ignored `api_key` of backend `labelstudio`"),
        "{}",
        out.stdout
    );

    let moved = Workspace::empty().env("FIFTYONE_ANNOTATION_CONFIG_PATH", "/nonexistent/fo.json");
    moved.write(
        "home/.fiftyone/annotation_config.json",
        r#"{"default_backend": "darwin"}"#,
    );
    assert_eq!(
        setting(&moved, "default_backend"),
        ("cvat".into(), "default".into())
    );
}

#[test]
fn default_backend_reads_fiftyone_and_annoform_env() {
    let ws = workspace();
    assert_eq!(
        setting(&ws, "default_backend"),
        ("labelstudio".into(), "annoform.toml:2".into())
    );
    let ws = ws.env("FIFTYONE_ANNOTATION_DEFAULT_BACKEND", "darwin");
    assert_eq!(
        setting(&ws, "default_backend"),
        (
            "darwin".into(),
            "env FIFTYONE_ANNOTATION_DEFAULT_BACKEND".into()
        )
    );
    let ws = ws.env("ANNOFORM_DEFAULT_BACKEND", "cvat");
    assert_eq!(
        setting(&ws, "default_backend"),
        ("cvat".into(), "env ANNOFORM_DEFAULT_BACKEND".into())
    );
}

#[test]
fn flags_win_over_everything() {
    let ws = workspace().env("ANNOFORM_MANIFESTS", "from-env");
    let out = ws.run(&["--manifests", "from-flag", "config", "show"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("manifests "))
        .unwrap();
    assert!(
        line.contains("from-flag") && line.ends_with("flag --manifests"),
        "{line}"
    );
}

#[test]
fn secrets_are_never_printed() {
    let ws = workspace()
        .env("ANNOFORM_CVAT_PASSWORD", "s3cret-annoform")
        .env("FIFTYONE_LABELSTUDIO_API_KEY", "s3cret-fiftyone");
    for args in [&["config", "show"][..], &["config", "show", "--json"][..]] {
        let out = ws.run(args);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);
        assert!(!out.stderr.contains("s3cret"), "{}", out.stderr);
    }
    assert_eq!(
        setting(&ws, "backends.cvat.password"),
        ("(set)".into(), "env ANNOFORM_CVAT_PASSWORD".into())
    );
    assert_eq!(
        setting(&ws, "backends.labelstudio.api_key"),
        ("(set)".into(), "env FIFTYONE_LABELSTUDIO_API_KEY".into())
    );
    assert_eq!(
        setting(&ws, "backends.darwin.api_key"),
        ("(not set: $ANNOFORM_DARWIN_API_KEY)".into(), "-".into())
    );
}

#[test]
fn the_table_lists_every_setting_with_its_source() {
    let ws = workspace().env("ANNOFORM_CVAT_PASSWORD", "x");
    let out = ws.run(&["config", "show"]);
    insta::assert_snapshot!(out.stdout);
}
