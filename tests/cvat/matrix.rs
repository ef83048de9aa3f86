//! The fault matrix on the CVAT fake: each kind of fault (5xx, 429, a reset after the server
//! acted, a truncated body, an empty body, a stall past the client's timeout) on each main
//! endpoint of a create and a merge. Every apply either succeeds or fails with a clear error;
//! re-runs converge to the dataset and the backend objects of a run without faults.
//!
//! Per kind, one run: in each phase every endpoint's rule is armed at once (each fires once)
//! and apply is re-run until it succeeds, so each fault is met by the apply that reaches it.

use super::faultproxy::{FaultProxy, fault_kinds};
use super::faults::backend_labels;
use super::faultsuite::{PHASES as PHASE_NAMES, fault_phase, outcome};
use super::kills::{Scenario, backend_faults, summary};
use super::*;
use std::time::{Duration, Instant};

/// The client's timeout in these runs, and the stall past it.
const TIMEOUT_MS: &str = "1000";
const STALL: Duration = Duration::from_millis(1500);

/// Per phase (the create, then merges after annotators' work), the endpoints faulted.
const PHASES: [&[(&str, &str)]; 3] = [
    &[
        ("POST", r"^/api/auth/login"),
        ("GET", r"^/api/projects\?"),
        ("POST", r"^/api/projects$"),
        ("POST", r"^/api/tasks$"),
        ("POST", r"^/api/tasks/\d+/data"),
        ("PATCH", r"^/api/tasks/\d+/annotations\?action=create"),
    ],
    &[("GET", r"^/api/tasks\?")],
    &[
        ("GET", r"^/api/tasks/\d+/data/meta"),
        ("GET", r"^/api/tasks/\d+/annotations"),
    ],
];

fn apply(ws: &Ws) -> (bool, String) {
    outcome(
        ws.command(&["apply", "--auto-approve"])
            .env("ANNOFORM_HTTP_TIMEOUT_MS", TIMEOUT_MS),
        &ws.password,
    )
}

#[test]
fn every_fault_kind_on_the_main_endpoints_converges() {
    let t0 = Instant::now();
    let cvat = Cvat::start();
    let proxy = FaultProxy::start(cvat.url());
    let reference = Scenario::new(&cvat, &proxy, 100);
    let original = reference.ws.samples();
    reference.ws.apply();
    for phase in 1..PHASES.len() {
        reference.annotate(&cvat, phase);
        reference.ws.apply();
    }
    let expected = summary(&reference.ws.samples(), &original);
    let held: usize = reference
        .tasks(&cvat)
        .iter()
        .map(|t| backend_labels(&cvat, t["id"].as_u64().unwrap()))
        .sum();

    let mut wrong = Vec::new();
    let mut unreached = Vec::new();
    for (k, action) in fault_kinds(STALL).into_iter().enumerate() {
        let s = Scenario::new(&cvat, &proxy, 101 + k);
        for (phase, endpoints) in PHASES.iter().enumerate() {
            if phase > 0 {
                s.annotate(&cvat, phase);
            }
            let context = format!("{} in the {}", action.kind(), PHASE_NAMES[phase]);
            let (ok, err) = fault_phase(
                &proxy,
                endpoints,
                &action,
                &context,
                &[proxy.url.as_str(), "cvat"],
                || apply(&s.ws),
                || {
                    let (ok, _, err) = s.ws.try_run(&["apply", "--auto-approve"]);
                    (ok, err)
                },
                &mut wrong,
                &mut unreached,
            );
            let plan = s.ws.plan();
            if !ok || !actions(&plan).is_empty() {
                wrong.push(format!(
                    "{context}: no convergence: {err}\nplan {:?} {}",
                    actions(&plan),
                    plan["runs"][0]["fields"]
                ));
            }
        }
        if summary(&s.ws.samples(), &original) != expected {
            wrong.push(format!(
                "{}: the dataset differs from the run without faults: {:?}, expected {expected:?}",
                action.kind(),
                summary(&s.ws.samples(), &original)
            ));
        }
        for w in backend_faults(&cvat, &s, held) {
            wrong.push(format!("{}: {w}", action.kind()));
        }
    }
    eprintln!(
        "fault matrix (CVAT fake): faults injected {:?}, endpoints never reached {unreached:?}, {:?}",
        proxy.injected(),
        t0.elapsed()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(unreached.is_empty(), "faults never injected: {unreached:?}");
}
