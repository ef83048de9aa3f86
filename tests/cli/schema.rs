//! The JSON Schema: committed file matches the types; examples match the schema.

use crate::{annoform, repo};

#[test]
fn the_committed_schema_matches_the_types() {
    let out = annoform(&repo(), &repo(), &[], &["schema"]);
    assert_eq!(out.code, 0);
    let committed = std::fs::read_to_string(repo().join("schema/manifest.schema.json")).unwrap();
    assert!(
        committed == out.stdout,
        "schema/manifest.schema.json is stale: regenerate it with `cargo run -- schema > schema/manifest.schema.json`"
    );
}

#[test]
fn every_example_manifest_validates_against_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schema/manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let files = annoform::manifest::load::discover(&[repo().join("manifests")]).unwrap();
    assert!(files.len() >= 9, "{files:?}");
    let mut documents = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/manifest.schema.json\n"),
            "{} lacks the yaml-language-server line",
            f.display()
        );
        for doc in annoform::manifest::yaml::parse(&text).unwrap() {
            let json = doc.to_json();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
            documents += 1;
        }
    }
    assert_eq!(documents, 11);
}

#[test]
fn the_schema_rejects_what_validate_rejects() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("schema/manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let bad = serde_json::json!({"apiVersion": "annoform/v1", "kind": "AnnotationRun", "key": "k", "dataset": "d",
        "backend": "cvat", "backend_config": {"segment_size": "ten"}, "lable_field": "x"});
    assert!(validator.iter_errors(&bad).count() >= 2);
}
