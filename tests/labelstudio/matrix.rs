//! The fault matrix on a real Label Studio: each kind of fault (5xx, 429, a reset after the
//! server acted, a truncated body, an empty body, a stall past the client's timeout) on each
//! main endpoint of a create and of merges. Every apply either succeeds or fails with a clear
//! error; re-runs converge to the dataset and the backend objects of a run without faults.
//!
//! Per kind, one run: in each phase every endpoint's rule is armed at once (each fires once)
//! and apply is re-run until it succeeds, so each fault is met by the apply that reaches it.

use super::faultproxy::{FaultProxy, fault_kinds};
use super::faults::try_apply;
use super::faultsuite::{PHASES as PHASE_NAMES, fault_phase, outcome};
use super::kills::{Scenario, backend_faults, summary};
use super::*;
use std::time::{Duration, Instant};

/// The client's timeout in these runs, and the stall past it.
const TIMEOUT_MS: &str = "2000";
const STALL: Duration = Duration::from_millis(3000);

/// Per phase (the create, then merges after annotators' work), the endpoints faulted: the
/// full download's page, the task listing, the incremental query each in a merge of their
/// own, as a fault on one can end an apply before it reaches the next.
const PHASES: [&[(&str, &str)]; 4] = [
    &[
        ("GET", r"^/api/projects\?"),
        ("POST", r"^/api/projects$"),
        ("POST", r"/import\?commit_to_project=false"),
        ("POST", r"/import\?return_task_ids"),
    ],
    &[("GET", r"^/api/tasks\?.*fields=all")],
    &[("GET", r"^/api/tasks\?.*\binclude=id\b")],
    &[("GET", r"^/api/tasks\?.*query=")],
];

fn apply(ws: &Ws) -> (bool, String) {
    outcome(
        ws.command(&["apply", "--auto-approve"])
            .env("ANNOFORM_HTTP_TIMEOUT_MS", TIMEOUT_MS),
        &ws.token,
    )
}

#[test]
fn every_fault_kind_on_the_main_endpoints_converges() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let ls = LabelStudio::start(dir.path());
    let proxy = FaultProxy::start(&ls.url);
    let reference = Scenario::new(&ls, &proxy, 100);
    let original = reference.ws.samples();
    reference.ws.run(&["apply", "--auto-approve"]);
    for phase in 1..PHASES.len() {
        reference.annotate(&ls, phase);
        reference.ws.run(&["apply", "--auto-approve"]);
    }
    let expected = summary(&reference.ws.samples(), &original);

    let mut wrong = Vec::new();
    let mut unreached = Vec::new();
    for (k, action) in fault_kinds(STALL).into_iter().enumerate() {
        let s = Scenario::new(&ls, &proxy, 101 + k);
        for (phase, endpoints) in PHASES.iter().enumerate() {
            if phase > 0 {
                s.annotate(&ls, phase);
            }
            let context = format!("{} in the {}", action.kind(), PHASE_NAMES[phase]);
            let (ok, out) = fault_phase(
                &proxy,
                endpoints,
                &action,
                &context,
                &[proxy.url.as_str(), "labelstudio"],
                || apply(&s.ws),
                || try_apply(&s.ws),
                &mut wrong,
                &mut unreached,
            );
            let plan = s.ws.plan();
            if !ok || !run_actions(&plan).is_empty() {
                wrong.push(format!("{context}: no convergence: {out}\nplan {plan}"));
            }
        }
        if summary(&s.ws.samples(), &original) != expected {
            wrong.push(format!(
                "{}: the dataset differs from the run without faults: {:?}, expected {expected:?}",
                action.kind(),
                summary(&s.ws.samples(), &original)
            ));
        }
        for w in backend_faults(&ls, &s) {
            wrong.push(format!("{}: {w}", action.kind()));
        }
    }
    eprintln!(
        "fault matrix (Label Studio): faults injected {:?}, endpoints never reached {unreached:?}, {:?}",
        proxy.injected(),
        t0.elapsed()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert!(unreached.is_empty(), "faults never injected: {unreached:?}");
}
