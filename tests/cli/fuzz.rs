//! Random input never panics the manifest pipeline, and every problem it reports is located.

use annoform::config::{Config, Env, Flags};
use annoform::diag::SourceFile;
use annoform::manifest::{load, validate};
use proptest::prelude::*;

const WORDS: &[&str] = &[
    "apiVersion",
    "annoform/v1",
    "kind",
    "AnnotationRun",
    "key",
    "dataset",
    "quickstart",
    "view",
    "match_tags",
    "filter_labels",
    "field",
    "where",
    "take",
    "size",
    "label_schema",
    "label_field",
    "label_type",
    "classes",
    "attributes",
    "type",
    "select",
    "values",
    "occluded",
    "backend",
    "cvat",
    "labelstudio",
    "backend_config",
    "load",
    "dest_field",
    "${env:X}",
    "${env:",
    "detections",
    "frames.x",
    "true",
    "-1",
    "",
];

fn tree() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        proptest::sample::select(WORDS).prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::vec((proptest::sample::select(WORDS), inner), 0..6).prop_map(
                |kv| serde_json::Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )
            ),
        ]
    })
}

fn run_pipeline(text: String) {
    let src = SourceFile::new("fuzz.yaml", text);
    let (runs, problems) = load::parse_text(src);
    for p in &problems {
        let (file, line, col) = p.position().expect("every manifest problem is located");
        assert_eq!(file, "fuzz.yaml");
        assert!(line >= 1 && col >= 1);
    }
    let config = Config::load(
        std::path::Path::new("/nonexistent"),
        &Flags::default(),
        &Env::default(),
    )
    .unwrap();
    for p in validate::validate(
        &runs,
        &config,
        &mut annoform::workspace::Datasets::new(&config),
    ) {
        assert!(p.position().is_some(), "{}", p.message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        run_pipeline(String::from_utf8_lossy(&bytes).into_owned());
    }

    #[test]
    fn random_yaml_trees_never_panic(mut doc in tree()) {
        if let Some(o) = doc.as_object_mut() {
            o.insert("apiVersion".into(), "annoform/v1".into());
            o.insert("kind".into(), "AnnotationRun".into());
        }
        run_pipeline(serde_json::to_string_pretty(&doc).unwrap());
    }

    #[test]
    fn random_manifest_like_text_never_panics(lines in proptest::collection::vec(
        (0usize..4, proptest::sample::select(WORDS), proptest::sample::select(WORDS), 0usize..4), 0..20)) {
        let text: String = lines.iter().map(|(indent, k, v, style)| {
            let pad = "  ".repeat(*indent);
            match style { 0 => format!("{pad}{k}: {v}\n"), 1 => format!("{pad}- {k}: {v}\n"), 2 => format!("{pad}{k}:\n"), _ => format!("{pad}- {v}\n") }
        }).collect();
        run_pipeline(text);
    }
}
