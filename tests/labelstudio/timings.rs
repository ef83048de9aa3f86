//! Create and merge timings against the local server (not in the default run):
//!
//!     ANNOFORM_LS_TIMINGS=20,200,1000 cargo test --test labelstudio -- --ignored --nocapture timings

use super::acceptance::DEMO_PROJECT;
use super::*;

#[test]
#[ignore = "timings: minutes for 1000 images"]
fn timings() {
    let sizes = std::env::var("ANNOFORM_LS_TIMINGS").unwrap_or_else(|_| "20,200,1000".into());
    for n in sizes
        .split(',')
        .map(|s| s.trim().parse::<u32>().expect("a size"))
    {
        let dir = tempfile::tempdir().unwrap();
        let ls = LabelStudio::start(dir.path());
        let schema = "  ground_truth: {type: detections, classes: [car, person, bike]}\n  scene: {type: classification, classes: [street, park, parking]}\n  regions: {type: polygons, classes: [road, grass]}\n";
        let ws = Ws::demo(dir, &ls.url, &ls.token, n, schema);
        let t0 = Instant::now();
        ws.run(&["apply", "--auto-approve"]);
        let create = t0.elapsed();
        let pid = ls.project(DEMO_PROJECT).expect("project");
        let tasks = ls.tasks(pid);
        assert_eq!(tasks.len(), n as usize);
        // Every task annotated: its first box moved.
        let t1 = Instant::now();
        for t in &tasks {
            let mut result = t["predictions"][0]["result"].as_array().unwrap().clone();
            if let Some(r) = result.iter_mut().find(|r| r["type"] == "rectanglelabels") {
                r["value"]["y"] = json!(r["value"]["y"].as_f64().unwrap() * 0.5);
            }
            ls.post(
                &format!("/api/tasks/{}/annotations", t["id"]),
                &json!({"result": result, "was_cancelled": false, "ground_truth": false}),
            );
        }
        let annotate = t1.elapsed();
        // How much of a merge is the server listing the tasks (one `fields=all` page).
        let t3 = Instant::now();
        ls.tasks(pid);
        let listing = t3.elapsed();
        let listed = |ls: &LabelStudio| {
            ls.logged("GET")
                .iter()
                .filter(|l| l.contains("/api/tasks?"))
                .count()
        };
        let lists_before = listed(&ls);
        let t2 = Instant::now();
        ws.run(&["apply", "--auto-approve"]);
        let merge = t2.elapsed();
        let lists = listed(&ls) - lists_before;
        assert!(run_actions(&ws.plan()).is_empty());
        eprintln!(
            "TIMING n={n}: create {create:.2?}, merge {merge:.2?} ({lists} task listings; one takes {listing:.2?}; annotating via REST {annotate:.2?})"
        );
    }
}
