//! The annotators' edits both video merge tests make (on disk and in a live FiftyOne
//! database) to the `video-tracks` fixture's run in the test backend's store.

use serde_json::{Value, json};
use std::path::Path;

/// Frame 2's car, frame 2's person and frame 3's person in the fixture.
pub const CAR_2: &str = "6b0253a22ba0e75ca6518017";
pub const PERSON_2: &str = "6b0253a22ba0e75ca6518018";
pub const PERSON_3: &str = "6b0253a22ba0e75ca651801b";

/// Completes the run's task in `backend.json` with: frame 2's car relabelled `truck` and made
/// a keyframe, frame 3's person deleted, the car's track continued on frame 5 (a frame the
/// dataset holds no document for), and a dog drawn in the new field `qa` on frame 1. Returns
/// the video sample's id.
pub fn annotate(backend_json: &Path) -> String {
    let mut store: Value =
        serde_json::from_slice(&std::fs::read(backend_json).expect("backend.json"))
            .expect("backend.json is JSON");
    let task = &mut store["projects"][0]["tasks"][0];
    task["status"] = json!("completed");
    task["complete"] = json!(true);
    let sid = task["samples"][0].as_str().unwrap().to_string();
    let fields = task["annotations"][&sid].as_object_mut().unwrap();
    let dets = fields["frames.dets"].as_array_mut().unwrap();
    for o in dets.iter_mut() {
        if o["label"]["_id"]["$oid"] == CAR_2 {
            o["label"]["label"] = json!("truck");
            o["label"]["keyframe"] = json!(true);
        }
    }
    dets.retain(|o| o["label"]["_id"]["$oid"] != PERSON_3);
    dets.push(json!({"backend_id": "track-1", "frame": 5, "label": {
        "_cls": "Detection", "label": "car", "bounding_box": [0.5, 0.1, 0.2, 0.2],
        "index": 1, "keyframe": true}}));
    fields.insert(
        "frames.qa".into(),
        json!([{"backend_id": "qa-1", "frame": 1, "label": {
            "_cls": "Detection", "label": "dog", "bounding_box": [0.7, 0.7, 0.1, 0.1]}}]),
    );
    std::fs::write(backend_json, serde_json::to_vec(&store).unwrap()).unwrap();
    sid
}
