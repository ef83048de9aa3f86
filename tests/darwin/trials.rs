//! The `darwin` backend tried as a new user would: a wrong API key, a 429 burst, an export
//! that never completes, a dataset slug taken by another team, an existing dataset reused,
//! and imports split below the server's payload limit.

use super::*;

const BOXES: &str = "ground_truth: {type: detections, classes: [car, person, bike]}";

#[test]
fn a_wrong_api_key_is_one_clear_error_without_the_key() {
    let v7 = V7::start();
    let mut ws = Ws::new(&v7, "datasets/demo");
    ws.key = "wrong-key-0123456789".into();
    ws.run_manifest("boxes", "demo", BOXES, "");
    let err = ws.fail(&["apply", "--auto-approve"]);
    assert!(err.contains("refused the API key"), "{err}");
    assert!(err.contains("ANNOFORM_DARWIN_API_KEY"), "{err}");
    assert_eq!(err.matches("refused the API key").count(), 1, "{err}");
    assert!(v7.dataset("demo").is_none());
}

#[test]
fn a_429_burst_is_retried_and_a_lasting_one_is_bounded() {
    let v7 = V7::start();
    let ws = Ws::new(&v7, "datasets/demo");
    ws.run_manifest("boxes", "demo", BOXES, "");
    v7.fake.fault(429, "GET", "/api/datasets", 3);
    ws.apply();
    assert_eq!(v7.items("demo").len(), 24);
    let hits: Vec<u16> = v7
        .fake
        .log()
        .iter()
        .filter(|(m, p, _)| m == "GET" && p == "/api/datasets")
        .map(|(_, _, s)| *s)
        .collect();
    assert_eq!(hits[..4], [429, 429, 429, 200], "{hits:?}");

    v7.fake.fault(429, "GET", "/api/users/token_info", 1000);
    let before = v7.fake.log().len();
    let err = ws.fail(&["plan"]);
    assert!(err.contains("429"), "{err}");
    let tries = v7.fake.log()[before..]
        .iter()
        .filter(|(_, p, _)| p == "/api/users/token_info")
        .count();
    assert!((2..=5).contains(&tries), "{tries} tries");
}

#[test]
fn an_export_that_never_completes_times_out_naming_it() {
    let v7 = V7::start();
    let ws = Ws::new(&v7, "datasets/demo");
    ws.run_manifest("boxes", "demo", BOXES, "");
    ws.apply();
    v7.fake.state().export_polls = None;
    let toml = ws.path().join("annoform.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{text}export_timeout = 1\n")).unwrap();
    let err = ws.fail(&["plan"]);
    assert!(err.contains("export `annoform-"), "{err}");
    assert!(
        err.contains("of dataset `demo` did not complete within 1s"),
        "{err}"
    );
}

#[test]
fn a_slug_taken_by_another_team_is_refused_and_an_own_dataset_is_reused() {
    let v7 = V7::start();
    v7.fake.dataset("team-b", "taken");
    let ws = Ws::new(&v7, "datasets/demo");
    ws.run_manifest("boxes", "taken", BOXES, "");
    let err = ws.fail(&["apply", "--auto-approve"]);
    assert!(err.contains("dataset slug `taken` is taken"), "{err}");
    assert!(err.contains("dataset_slug"), "{err}");

    // A dataset of the team, made in V7's UI: used as it is, and left in place by destroy.
    let id = v7.fake.dataset("team-a", "ours");
    ws.run_manifest("boxes", "ours", BOXES, "");
    ws.apply();
    assert_eq!(v7.items("ours").len(), 24);
    assert!(ws.record("boxes").unwrap().get("project_created").is_none());
    std::fs::remove_file(ws.path().join("manifests/boxes.yaml")).unwrap();
    ws.run(&["destroy", "--auto-approve"]);
    let kept = v7
        .dataset("ours")
        .expect("the dataset is not the run's to archive");
    assert_eq!(kept["id"], id);
    assert!(v7.items("ours").is_empty(), "the run's items are archived");
}

#[test]
fn imports_split_below_the_payload_limit() {
    let v7 = V7::start();
    let ws = Ws::new(&v7, "datasets/demo");
    ws.run_manifest("boxes", "small", BOXES, "");
    // One box's import fits, two do not.
    v7.fake.state().payload_limit = 400;
    ws.apply();
    let log = v7.fake.log();
    assert!(
        log.iter()
            .any(|(_, p, s)| p.ends_with("/import") && *s == 413)
    );
    let s0 = &ws.samples()[0];
    let item = v7.item_of("small", sid(s0));
    assert_eq!(v7.annotations(item["id"].as_str().unwrap()).len(), 2);
    assert_eq!(actions(&ws.plan(), "boxes"), Vec::<String>::new());
}
