//! Run parameters as FiftyOne users write them: cleanup, per-run connections, status and the
//! editor URLs.

use super::*;

const DEMO: &str = "datasets/demo";

fn boxes(key: &str, extra: &str) -> String {
    format!(
        "apiVersion: annoform/v1\nkind: AnnotationRun\nkey: {key}\ndataset: ds\nview:\n  - limit: 2\nlabel_field: ground_truth\nlabel_type: detections\nclasses: [car, person, bike, truck]\nattributes: false\n{extra}"
    )
}

/// A completed run whose annotators changed nothing still gets its `cleanup`.
#[test]
fn cleanup_runs_when_the_final_merge_has_no_changes() {
    let cvat = Cvat::start();
    let ws = Ws::new(&cvat, DEMO, "");
    ws.manifest(
        "run.yaml",
        &boxes("done", "load:\n  when: complete\n  cleanup: true\n"),
    );
    ws.apply();
    let pid = cvat.project("annoform/ds/done").expect("project");
    for t in cvat.tasks(pid) {
        cvat.complete(t["id"].as_u64().unwrap());
    }
    let before = ws.samples();
    let plan = ws.plan();
    assert_eq!(actions(&plan), ["merge"], "{plan:#}");
    assert!(
        plan["runs"][0]["details"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains("load.cleanup")),
        "{plan:#}"
    );
    ws.apply();
    assert_eq!(cvat.project("annoform/ds/done"), None, "cleaned up");
    assert_eq!(ws.samples(), before, "no label changed");
    assert_eq!(ws.record("done")["cleaned_up"], true);
    let plan = ws.plan();
    assert!(actions(&plan).is_empty(), "{plan:#}");
}
