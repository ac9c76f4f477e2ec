//! Invariants, outcomes, and fault models.
//!
//! An invariant is a named check that sees the whole [`World`] after every step
//! (`check_step`, for safety) and once more when the run ends (`check_end`, for liveness:
//! "every client operation completed"). The first failure stops the run. Checks run after
//! every step, so they must be cheap: keep a cursor into the append-only history and look
//! at new entries only.
//!
//! A protocol also declares its [`FaultModel`]: the faults it promises to survive. A run
//! whose fault timeline exceeds the model is reported as outside the model, not as a
//! protocol failure.

use crate::node::Node;
use crate::sim::{Fault, ScheduledFault, World};
use crate::time::{NodeId, SimTime};
use serde::Serialize;
use std::collections::BTreeSet;

/// A named check over the simulated world.
pub trait Invariant<N: Node> {
    /// The name reports and scenario files use (`executed-at-most-once`).
    fn name(&self) -> &'static str;

    /// Whether this invariant reads the ground-truth causal record (`world.causality()`).
    /// Adding such an invariant to a simulation turns causality tracking on.
    fn needs_causality(&self) -> bool {
        false
    }

    /// Called after every step. Return `Err(message)` to stop the run.
    fn check_step(&mut self, world: &World<N>) -> Result<(), String> {
        let _ = world;
        Ok(())
    }

    /// Called once when the run ends (the queue drained, or the liveness deadline passed).
    fn check_end(&mut self, world: &World<N>) -> Result<(), String> {
        let _ = world;
        Ok(())
    }
}

/// Whether a violation was found while faults were active, or at the end of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// A safety check failed after some step.
    Safety,
    /// An end-of-run (liveness) check failed.
    Liveness,
}

/// An invariant that failed, with what it takes to understand and reproduce it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: String,
    pub message: String,
    pub phase: Phase,
    pub step: u64,
    pub time: SimTime,
    pub seed: u64,
    /// The last trace records before the violation, as text (empty if the trace mode kept
    /// none).
    pub recent: Vec<String>,
}

/// Which run limit stopped a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "limit", rename_all = "kebab-case")]
pub enum Limit {
    MaxSteps { steps: u64 },
    MaxTime { time: SimTime },
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Every invariant held at every step and at the end.
    Pass,
    Violation(Violation),
    /// A run limit was hit before the run ended by itself.
    LimitReached(Limit),
}

impl Outcome {
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Outcome::Violation(v) => Some(v),
            _ => None,
        }
    }
}

/// The faults a protocol promises to survive.
///
/// ```
/// use sim_core::{Fault, FaultModel, NodeId, ScheduledFault, SimTime};
/// let model = FaultModel {
///     description: "at most 1 of the servers n0, n1 down at once".into(),
///     may_crash: vec![NodeId(0), NodeId(1)],
///     max_down_at_once: 1,
///     partitions: true,
/// };
/// let crash = |ms, n| ScheduledFault { at: SimTime::from_millis(ms), fault: Fault::Crash(NodeId(n)) };
/// assert!(model.admits(&[crash(1, 0)]).is_ok());
/// assert!(model.admits(&[crash(1, 0), crash(2, 1)]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultModel {
    pub description: String,
    /// The nodes that may crash at all.
    pub may_crash: Vec<NodeId>,
    /// How many of them may be down at the same time.
    pub max_down_at_once: usize,
    /// Whether partitions are within the model.
    pub partitions: bool,
}

impl FaultModel {
    /// Ok if the timeline stays within the model; else why not.
    pub fn admits(&self, faults: &[ScheduledFault]) -> Result<(), String> {
        let mut ordered: Vec<&ScheduledFault> = faults.iter().collect();
        ordered.sort_by_key(|f| f.at);
        let mut down = BTreeSet::new();
        for fault in ordered {
            match &fault.fault {
                Fault::Crash(node) => {
                    if !self.may_crash.contains(node) {
                        return Err(format!(
                            "{node} crashes at {}, but the model is: {}",
                            fault.at, self.description
                        ));
                    }
                    down.insert(*node);
                    if down.len() > self.max_down_at_once {
                        return Err(format!(
                            "{} nodes are down at {}, but the model is: {}",
                            down.len(),
                            fault.at,
                            self.description
                        ));
                    }
                }
                Fault::Restart(node) => {
                    down.remove(node);
                }
                Fault::Partition { .. } if !self.partitions => {
                    return Err(format!(
                        "a partition starts at {}, but the model is: {}",
                        fault.at, self.description
                    ));
                }
                Fault::Partition { .. } | Fault::Heal { .. } => {}
            }
        }
        Ok(())
    }
}
