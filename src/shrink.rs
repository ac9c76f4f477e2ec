//! Shrinking: make a failing scenario small enough to read, keeping the same invariant
//! failing.
//!
//! Greedy: try each candidate reduction of the current scenario (fewer clients, fewer
//! operations, fewer faults, shorter partitions, loss and duplication down to zero, fewer
//! nodes where the protocol allows); keep the first that still fails the same way, and
//! start over. Every candidate shrinks something, so this ends. When no candidate fails
//! with the current seed, try them with nearby seeds before giving up.

use crate::fuzz::FailureFile;
use crate::runner::{self, Run};
use crate::scenario::{FaultSpec, Millis, Probability, Scenario, Schedule};
use serde::Serialize;
use sim_core::explore::{Budgets, Choice};
use sim_core::TraceMode;

/// How big a failing case is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Size {
    pub faults: usize,
    pub operations: usize,
    pub steps: u64,
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} faults, {} operations, {} steps", self.faults, self.operations, self.steps)
    }
}

/// The result of shrinking.
#[derive(Clone, Debug, Serialize)]
pub struct Shrunk {
    pub before: Size,
    pub after: Size,
    /// Candidate runs tried.
    pub tries: u64,
    pub failure: FailureFile,
}

/// The run of `scenario` at `seed` if it violates `invariant` (inside the fault model),
/// with the scenario that replays it. A scheduled scenario (from `dsim explore`) is
/// followed leniently, skipping decisions a cut made impossible; the kept scenario holds
/// the decisions the run took, so it replays exactly.
fn reproduces(scenario: &Scenario, seed: u64, invariant: &str) -> Option<(Scenario, Run)> {
    let (kept, run) = match &scenario.schedule {
        Some(schedule) => {
            let run = runner::simulate_leniently(scenario, seed);
            let mut kept = scenario.clone();
            let decisions = run.followed.clone().expect("a scheduled run reports its decisions");
            kept.schedule = Some(Schedule { budgets: schedule.budgets, decisions });
            (kept, run)
        }
        None => {
            let run =
                runner::simulate(scenario, seed, TraceMode::HashOnly, None).expect("no trace sink, no I/O");
            (scenario.clone(), run)
        }
    };
    let same = run.report.outcome.violation().is_some_and(|v| v.invariant == invariant);
    (same && run.outside_fault_model.is_none()).then_some((kept, run))
}

fn size(scenario: &Scenario, run: &Run) -> Size {
    let faults = match &scenario.schedule {
        Some(schedule) => schedule.decisions.iter().filter(|d| is_fault(d)).count(),
        None => scenario.faults.len(),
    };
    Size { faults, operations: operations(scenario), steps: run.report.steps }
}

/// Whether a scheduled decision injects a fault (rather than picking the next event).
fn is_fault(decision: &Choice) -> bool {
    !matches!(decision, Choice::Deliver(_) | Choice::Fire(_))
}

/// What the workload asks for (client operations, actions of the clocks processes, pings
/// in flight): the protocol's measure of its size.
pub fn operations(scenario: &Scenario) -> usize {
    scenario.facts().operations
}

/// Shrinks a failure. Errors if the failure does not reproduce to begin with.
pub fn shrink(failure: &FailureFile, max_tries: u64) -> Result<Shrunk, String> {
    let invariant = failure.invariant.as_str();
    let mut current = failure.scenario.clone();
    let mut seed = failure.seed;
    let (kept, mut run) = reproduces(&current, seed, invariant).ok_or_else(|| {
        format!("the failure does not reproduce: seed {seed} no longer violates {invariant} (replay it to see what happens now)")
    })?;
    current = kept;
    let before = size(&current, &run);
    let mut tries = 0;
    'search: loop {
        let candidates = candidates(&current);
        for candidate in &candidates {
            if tries >= max_tries {
                break 'search;
            }
            tries += 1;
            if let Some(found) = reproduces(candidate, seed, invariant) {
                (current, run) = found;
                continue 'search;
            }
        }
        for nearby in nearby_seeds(seed) {
            for candidate in &candidates {
                if tries >= max_tries {
                    break 'search;
                }
                tries += 1;
                if let Some((kept, found)) = reproduces(candidate, nearby, invariant) {
                    (current, run, seed) = (kept, found, nearby);
                    continue 'search;
                }
            }
        }
        break;
    }
    let after = size(&current, &run);
    let failure = FailureFile::new(&failure.source, &current, seed, &run, failure.swarm.clone())
        .expect("the kept candidate violates the invariant");
    Ok(Shrunk { before, after, tries, failure })
}

fn nearby_seeds(seed: u64) -> impl Iterator<Item = u64> {
    (1..=4u64).flat_map(move |d| [seed.checked_sub(d), seed.checked_add(d)]).flatten()
}

/// Every one-step reduction of `scenario` that is still a valid scenario, biggest cuts first.
fn candidates(scenario: &Scenario) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = Vec::new();
    let mut push = |edit: &dyn Fn(&mut Scenario)| {
        let mut candidate = scenario.clone();
        edit(&mut candidate);
        if candidate != *scenario && candidate.validate().is_ok() {
            out.push(candidate);
        }
    };

    // Workload: fewer clients, fewer operations, fewer keys (for the protocols that use it).
    let workload = &scenario.workload;
    let uses_workload = scenario.registered().uses_workload();
    match &workload.script {
        _ if !uses_workload => {}
        Some(script) => {
            for client in 0..script.len() {
                if script.len() > 1 {
                    push(&|s| {
                        s.workload.script.as_mut().unwrap().remove(client);
                    });
                }
            }
            for (client, ops) in script.iter().enumerate() {
                for op in (0..ops.len()).rev() {
                    push(&|s| {
                        s.workload.script.as_mut().unwrap()[client].remove(op);
                    });
                }
            }
        }
        None => {
            push(&|s| s.workload.clients = (s.workload.clients / 2).max(1));
            push(&|s| s.workload.clients = s.workload.clients.saturating_sub(1).max(1));
            push(&|s| s.workload.ops_per_client /= 2);
            push(&|s| s.workload.ops_per_client = s.workload.ops_per_client.saturating_sub(1));
            push(&|s| s.workload.keys = s.workload.keys.saturating_sub(1).max(1));
        }
    }
    // The protocol's own smaller parameters (fewer processes, fewer pings, ...).
    let (_, params) = scenario.protocol_choice();
    for smaller in scenario.registered().smaller(&params) {
        push(&|s| s.protocol.params = smaller.clone());
    }

    // A schedule's faults: drop each injected one (the run then skips what it made
    // impossible); then budgets no larger than what the decisions use.
    if let Some(schedule) = &scenario.schedule {
        for (i, _) in schedule.decisions.iter().enumerate().filter(|(_, d)| is_fault(d)) {
            push(&|s| {
                s.schedule.as_mut().expect("scheduled").decisions.remove(i);
            });
        }
        let used = |kind: fn(&Choice) -> bool| schedule.decisions.iter().filter(|d| kind(d)).count() as u32;
        let budgets = Budgets {
            drops: used(|d| matches!(d, Choice::Drop(_))),
            duplicates: used(|d| matches!(d, Choice::Duplicate(_))),
            crashes: used(|d| matches!(d, Choice::Crash(_))),
        };
        push(&|s| s.schedule.as_mut().expect("scheduled").budgets = budgets);
    }

    // Faults: drop each (a crash with its restart, or alone), shorten partitions.
    for (i, fault) in scenario.faults.iter().enumerate() {
        push(&|s| {
            let removed = s.faults.remove(i);
            if let FaultSpec::Crash { node, at_ms } = removed {
                let restart = s.faults.iter().position(
                    |f| matches!(f, FaultSpec::Restart { node: n, at_ms: t } if *n == node && t.0 >= at_ms.0),
                );
                if let Some(r) = restart {
                    s.faults.remove(r);
                }
            }
        });
        if let FaultSpec::Partition { at_ms, until_ms: Some(until), .. }
        | FaultSpec::PartitionOneWay { at_ms, until_ms: Some(until), .. } = fault
        {
            let length = until.0 - at_ms.0;
            if length > 1.0 {
                let shorter = Millis(((at_ms.0 + length / 2.0) * 1_000.0).round() / 1_000.0);
                push(&|s| match &mut s.faults[i] {
                    FaultSpec::Partition { until_ms, .. } | FaultSpec::PartitionOneWay { until_ms, .. } => {
                        *until_ms = Some(shorter)
                    }
                    _ => {}
                });
            }
        }
    }

    // Network: no loss, no duplication, no slow messages, no per-link overrides.
    let network = scenario.sim_config(scenario.seed, TraceMode::HashOnly).network;
    let link = network.default;
    if link.drop_probability > 0.0 {
        push(&|s| s.network.all_links.drop_probability = Some(Probability(0.0)));
    }
    if link.duplicate_probability > 0.0 {
        push(&|s| s.network.all_links.duplicate_probability = Some(Probability(0.0)));
    }
    if scenario.network.all_links.slow.is_some() {
        push(&|s| s.network.all_links.slow = None);
    }
    for i in 0..scenario.network.links.len() {
        push(&|s| {
            s.network.links.remove(i);
        });
    }
    // Without faults, the heal time means nothing; drop it so the file reads simply.
    if scenario.faults.is_empty() && scenario.limits.heal_at_ms.is_some() {
        push(&|s| s.limits.heal_at_ms = None);
    }
    out
}
