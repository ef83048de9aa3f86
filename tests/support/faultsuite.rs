//! What the kill suites and fault matrices of every backend share: where an apply is killed,
//! how a phase of faults is armed and driven to convergence, and how a run's dataset is
//! compared with the uninterrupted run's.

#![allow(dead_code)]

use super::faultproxy::{Action, Boundary, FaultProxy, Rule, Target, boundaries, converge};
use serde_json::Value;
use std::fmt::Debug;
use std::process::Command;
use std::time::Duration;

/// The phases of a suite: the create, then merges after annotators' work.
pub const PHASES: [&str; 4] = ["create", "merge 1", "merge 2", "merge 3"];

/// Where an apply is killed: in which phase, at which request, and whether the request is
/// held before it is sent or its answer after the server acted on it.
#[derive(Clone, Debug)]
pub struct KillPoint {
    pub phase: usize,
    pub boundary: Boundary,
    pub action: Action,
}

impl KillPoint {
    /// The rule that holds the request of another run.
    pub fn rule(&self) -> Rule {
        self.boundary.rule(self.action.clone())
    }

    /// Brings a fresh run to the point's phase: the phases before it applied (each merge
    /// after its annotators' work), then the annotators' work of its own phase.
    pub fn reach(&self, annotate: impl Fn(usize), apply: impl Fn()) {
        for p in 0..self.phase {
            if p > 0 {
                annotate(p);
            }
            apply();
        }
        if self.phase > 0 {
            annotate(self.phase);
        }
    }

    /// Runs `apply` until the point's request is held, then kills it with SIGKILL; the
    /// rules are cleared after. An error says what happened instead.
    pub fn kill(&self, proxy: &FaultProxy, apply: &mut Command) -> Result<(), String> {
        proxy
            .kill_at(self.rule(), apply, Duration::from_secs(60))
            .map(drop)
            .map_err(|e| format!("{}: {e}", self.describe()))
    }

    /// "killed in merge 1 at GET /api/… (before it was sent)".
    pub fn describe(&self) -> String {
        format!(
            "killed in {} at {} ({})",
            PHASES[self.phase],
            self.boundary.label,
            if matches!(self.action, Action::HoldAnswer) {
                "answer held"
            } else {
                "before it was sent"
            }
        )
    }
}

/// The kill points of an uninterrupted run's request logs, one log per phase: in the create,
/// each request `changes` selects, held before it is sent and with its answer held; in the
/// merges, every request, held before it is sent.
pub fn kill_points(
    logs: &[Vec<(String, String)>],
    changes: impl Fn(&str, &str) -> bool,
) -> Vec<KillPoint> {
    let mut points = Vec::new();
    for boundary in boundaries(&logs[0], changes) {
        for action in [Action::HoldRequest, Action::HoldAnswer] {
            points.push(KillPoint {
                phase: 0,
                boundary: boundary.clone(),
                action,
            });
        }
    }
    for (phase, log) in logs.iter().enumerate().skip(1) {
        for boundary in boundaries(log, |_, _| true) {
            points.push(KillPoint {
                phase,
                boundary,
                action: Action::HoldRequest,
            });
        }
    }
    points
}

/// The samples whose summary differs from the uninterrupted run's, each a problem
/// prefixed with `at`.
pub fn differing_samples<T: PartialEq + Debug>(at: &str, expected: &[T], now: &[T]) -> Vec<String> {
    expected
        .iter()
        .zip(now)
        .enumerate()
        .filter(|(_, (e, g))| e != g)
        .map(|(i, (e, g))| format!("{at}: sample {i} has {g:?}, expected {e:?}"))
        .collect()
}

/// Kills survived so far, printed one by one and summed up at the end.
#[derive(Default)]
pub struct Tally {
    pub survived: usize,
}

impl Tally {
    /// Records the outcome of the kill `at`: survived when no problem came after `before`.
    pub fn record(&mut self, at: &str, wrong: &[String], before: usize) {
        let ok = wrong.len() == before;
        self.survived += usize::from(ok);
        eprintln!("{at}: {}", if ok { "ok" } else { "FAILED" });
    }

    /// The closing line of a kill suite on `backend`.
    pub fn report(&self, backend: &str, points: &[KillPoint], proxy: &FaultProxy, took: Duration) {
        eprintln!(
            "kill suite ({backend}): {}/{} kills survived ({} in the create, {} in merges), faults injected {:?}, {took:?}",
            self.survived,
            points.len(),
            points.iter().filter(|p| p.phase == 0).count(),
            points.iter().filter(|p| p.phase > 0).count(),
            proxy.injected(),
        );
    }
}

/// Runs `cmd`: (success, stdout and stderr). The output must not hold `secret`.
pub fn outcome(cmd: &mut Command, secret: &str) -> (bool, String) {
    let out = cmd.output().expect("run annoform");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(secret), "the secret leaked: {text}");
    (out.status.success(), text)
}

/// One phase of a fault matrix: a rule per endpoint (method, regular expression) doing
/// `action` once, all armed at once; `apply` re-run until it succeeds (once more per endpoint
/// at most, each failure a clear error naming one of `names`); the endpoints never faulted
/// added to `unreached`; then the rules are cleared and, if the faulty applies never got
/// through, `rerun` runs clean. Returns the last apply's success and output.
#[allow(clippy::too_many_arguments)]
pub fn fault_phase(
    proxy: &FaultProxy,
    endpoints: &[(&str, &str)],
    action: &Action,
    context: &str,
    names: &[&str],
    apply: impl Fn() -> (bool, String),
    rerun: impl FnOnce() -> (bool, String),
    wrong: &mut Vec<String>,
    unreached: &mut Vec<String>,
) -> (bool, String) {
    let rules: Vec<_> = endpoints
        .iter()
        .map(|(m, re)| {
            (
                format!("{m} {re}"),
                proxy.rule(Rule::new(m, Target::regex(re), action.clone())),
            )
        })
        .collect();
    let converged = converge(apply, names, 1 + endpoints.len(), context, wrong);
    unreached.extend(
        rules
            .iter()
            .filter(|(_, r)| r.fired() == 0)
            .map(|(what, _)| format!("{context}: {what}")),
    );
    proxy.clear();
    if converged {
        (true, String::new())
    } else {
        rerun()
    }
}

/// The deletions a plan's first run holds over `fields`.
pub fn planned_deletions(plan: &Value, fields: &[&str]) -> u64 {
    fields
        .iter()
        .map(|f| {
            plan["runs"][0]["fields"][f]["deleted"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum()
}
