//! `annoform validate`: the examples pass, every invalid manifest fails with a located,
//! snapshot-tested message.

use crate::{Workspace, annoform, repo};

#[test]
fn the_example_manifests_are_valid() {
    let out = annoform(&repo(), &repo(), &[], &["validate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "11 run(s) in 10 file(s) are valid\n");
    assert_eq!(out.stderr, "");
}

fn check_invalid(ws: &Workspace, name: &str) {
    let file = format!("manifests/{name}.yaml");
    let out = ws.run(&["validate", &file]);
    assert_eq!(out.code, 1, "{name}: expected exit 1\n{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
    let located = regex::Regex::new(&format!(r"\[{}:\d+:\d+\]", regex::escape(&file))).unwrap();
    assert!(
        located.is_match(&out.stderr),
        "{name}: no file:line:col in\n{}",
        out.stderr
    );
    insta::assert_snapshot!(name.to_string(), out.stderr);
}

#[test]
fn each_invalid_manifest_names_file_line_column_and_cause() {
    let ws = Workspace::with_datasets();
    let dir = repo().join("tests/cli/invalid");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".yaml")
                .to_string()
        })
        .collect();
    names.sort();
    assert!(names.len() >= 25, "only {} invalid manifests", names.len());
    for name in &names {
        let text = std::fs::read_to_string(dir.join(format!("{name}.yaml"))).unwrap();
        ws.write(&format!("manifests/{name}.yaml"), &text);
        check_invalid(&ws, name);
    }
}

#[test]
fn a_ten_megabyte_file_is_refused() {
    let ws = Workspace::with_datasets();
    ws.write("manifests/huge.yaml", &"key: value\n".repeat(1_000_000));
    check_invalid(&ws, "huge");
}

#[test]
fn binary_garbage_is_refused() {
    let ws = Workspace::with_datasets();
    let mut bytes = b"apiVersion: annoform/v1\n".to_vec();
    let mut x: u32 = 2463534242;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x >> 24) as u8);
    }
    ws.write_bytes("manifests/garbage.yaml", &bytes);
    check_invalid(&ws, "garbage");
}

#[test]
fn deeply_nested_junk_is_refused() {
    let ws = Workspace::with_datasets();
    ws.write(
        "manifests/nested.yaml",
        &format!("key: {}{}\n", "[".repeat(200), "]".repeat(200)),
    );
    check_invalid(&ws, "nested");
}

#[test]
fn all_problems_are_reported_at_once_in_json() {
    let ws = Workspace::with_datasets();
    ws.write(
        "manifests/two.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: a\ndataset: nope\nlabel_field: x\nattributes: {c: {type: select}}\n",
    );
    ws.write(
        "manifests/sub/three.yml",
        "apiVersion: annoform/v1\nkind: Run\nkey: b\ndataset: quickstart\nlabel_fields: x\n",
    );
    let out = ws.run(&["validate", "--format", "json"]);
    assert_eq!(out.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    let problems: Vec<String> = doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}:{}:{} {}",
                p["file"].as_str().unwrap(),
                p["line"],
                p["column"],
                p["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        problems,
        vec![
            "manifests/sub/three.yml:2:7 `kind` must be `AnnotationRun`, found `Run`",
            "manifests/sub/three.yml:5:1 unknown key `label_fields`",
            "manifests/two.yaml:4:10 unknown dataset `nope`",
            "manifests/two.yaml:6:14 `select` attribute `c` needs `values`",
        ]
    );
}

#[test]
fn short_format_is_one_line_per_problem() {
    let ws = Workspace::with_datasets();
    ws.write(
        "manifests/a.yaml",
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: a\ndataset: quickstart\n",
    );
    let out = ws.run(&["validate", "--format", "short"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "manifests/a.yaml:3:6: error: the run annotates no field (hint: add `label_schema: {<field>: {...}}` or the one-field shorthand `label_field: <field>`)\nerror: 1 problem(s) in 1 file(s)\n"
    );
}

#[test]
fn a_missing_manifest_directory_is_an_error() {
    let ws = Workspace::with_datasets();
    let out = ws.run(&["validate", "nowhere"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot read manifests at"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_invalid_workspace_config_is_reported_with_its_line() {
    let ws = Workspace::empty();
    ws.write(
        "annoform.toml",
        "default_backend = \"cvat\"\nmanifest = \"m\"\n[datasets.a]\npath = 3\n",
    );
    let out = ws.run(&["validate"]);
    assert_eq!(out.code, 1);
    insta::assert_snapshot!(out.stderr);
}
