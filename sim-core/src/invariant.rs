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

use crate::network::{LinkOrdering, NetworkConfig};
use crate::node::Node;
use crate::sim::{Fault, ScheduledFault, World};
use crate::time::{NodeId, SimDuration, SimTime};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A named check over the simulated world.
///
/// An invariant is `Clone` (see [`ForkInvariant`]): `dsim explore` copies the whole
/// simulation, invariants and their state included, at every branch of its search.
pub trait Invariant<N: Node>: ForkInvariant<N> {
    /// The name reports and scenario files use (`executed-at-most-once`).
    fn name(&self) -> &'static str;

    /// Whether this invariant reads the ground-truth causal record (`world.causality()`).
    /// Adding such an invariant to a simulation turns causality tracking on.
    fn needs_causality(&self) -> bool {
        false
    }

    /// Called after every step. Return an error to stop the run: a violation
    /// (`Err(message.into())`), or [`CheckError::Undecided`] when the check could not
    /// decide within its bounds.
    fn check_step(&mut self, world: &World<N>) -> Result<(), CheckError> {
        let _ = world;
        Ok(())
    }

    /// Called once when the run ends (the queue drained, or the liveness deadline passed).
    fn check_end(&mut self, world: &World<N>) -> Result<(), CheckError> {
        let _ = world;
        Ok(())
    }
}

/// A copy of an invariant with its state, boxed: what lets a simulation be cloned. Every
/// invariant that is `Clone` has it.
pub trait ForkInvariant<N: Node> {
    /// A copy of this invariant, state and all.
    fn fork(&self) -> Box<dyn Invariant<N>>;
}

impl<N: Node, T: Invariant<N> + Clone + 'static> ForkInvariant<N> for T {
    fn fork(&self) -> Box<dyn Invariant<N>> {
        Box::new(self.clone())
    }
}

/// Why a check stopped the run.
///
/// ```
/// use sim_core::CheckError;
/// let violated: CheckError = format!("request {} ran twice", 3).into();
/// assert!(matches!(violated, CheckError::Violated(_)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// The invariant does not hold; the message says what broke.
    Violated(String),
    /// The check ran out of its budget before it could decide either way (a search with
    /// a bound). Never a pass and never a violation: the run is reported as undecided.
    Undecided(String),
}

impl From<String> for CheckError {
    fn from(message: String) -> CheckError {
        CheckError::Violated(message)
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
    /// The name of the invariant that failed.
    pub invariant: String,
    /// What it found, in its own words.
    pub message: String,
    /// Whether it failed during the run or at its end.
    pub phase: Phase,
    /// The step after which it failed.
    pub step: u64,
    /// The virtual time it failed at.
    pub time: SimTime,
    /// The seed that reproduces it.
    pub seed: u64,
    /// The last trace records before the violation, as text: as many as the trace mode
    /// keeps (empty if it kept none).
    pub recent: Vec<String>,
    /// The faults that fired before it, in order (`12.000ms: crash n0`).
    pub faults: Vec<String>,
}

/// Which run limit stopped a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "limit", rename_all = "kebab-case")]
pub enum Limit {
    /// `SimConfig::max_steps` was reached.
    MaxSteps {
        /// The limit, in steps.
        steps: u64,
    },
    /// The next event was past `SimConfig::max_time`.
    MaxTime {
        /// The limit, in virtual time.
        time: SimTime,
    },
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Every invariant held at every step and at the end.
    Pass,
    /// An invariant failed.
    Violation(Violation),
    /// A run limit was hit before the run ended by itself.
    LimitReached(Limit),
    /// An invariant could not decide within its budget (see [`CheckError::Undecided`]).
    /// It carries the same details a violation does: which check, why, where, and the
    /// events before it.
    Undecided(Violation),
}

impl Outcome {
    /// The violation, if the run ended in one (not an undecided check).
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Outcome::Violation(v) => Some(v),
            _ => None,
        }
    }

    /// The undecided check, if the run ended in one.
    pub fn undecided(&self) -> Option<&Violation> {
        match self {
            Outcome::Undecided(v) => Some(v),
            _ => None,
        }
    }
}

/// The faults a protocol promises to survive, and what it assumes of the network.
///
/// ```
/// use sim_core::{Fault, FaultModel, NodeId, ScheduledFault, SimTime};
/// let model = FaultModel {
///     description: "at most 1 of the servers n0, n1 down at once".into(),
///     may_crash: vec![NodeId(0), NodeId(1)],
///     max_down_at_once: 1,
///     partitions: true,
///     ..FaultModel::default()
/// };
/// let crash = |ms, n| ScheduledFault { at: SimTime::from_millis(ms), fault: Fault::Crash(NodeId(n)) };
/// let restart = |ms, n| ScheduledFault { at: SimTime::from_millis(ms), fault: Fault::Restart(NodeId(n)) };
/// assert!(model.admits(&[crash(1, 0)]).is_ok());
/// assert!(model.admits(&[crash(1, 0), crash(2, 1)]).is_err());
/// // Liveness assumes a crashed node comes back.
/// assert!(model.admits_liveness(&[crash(1, 0)]).is_err());
/// assert!(model.admits_liveness(&[crash(1, 0), restart(5, 0)]).is_ok());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultModel {
    /// What the model allows, in words, for reports.
    pub description: String,
    /// The nodes that may crash at all.
    pub may_crash: Vec<NodeId>,
    /// How many of them may be down at the same time.
    pub max_down_at_once: usize,
    /// Whether partitions are within the model.
    pub partitions: bool,
    /// What the protocol's invariants assume of every link.
    pub network: NetworkAssumptions,
    /// Crash-stop: a crashed node that restarts comes back empty, as a new member (it
    /// does not bring back what it held), so it still counts as down for
    /// `max_down_at_once`, and liveness does not wait for it to restart.
    pub crash_stop: bool,
}

/// What a protocol assumes of every link of the network (or, with `among`, of the links
/// among some of its nodes). Nothing is assumed by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetworkAssumptions {
    /// No message is dropped.
    pub lossless: bool,
    /// No message is duplicated.
    pub no_duplicates: bool,
    /// Each link delivers in send order.
    pub fifo: bool,
    /// Every message arrives within this delay (its latency, and a slow rule's on top).
    pub delivery_max: Option<SimDuration>,
    /// The assumptions hold only on links between nodes `n0..n{among - 1}` (a protocol's
    /// servers, say, while its clients' links may do anything); `None`: on every link.
    pub among: Option<u32>,
}

impl FaultModel {
    /// Ok if the timeline stays within the model; else why not.
    pub fn admits(&self, faults: &[ScheduledFault]) -> Result<(), String> {
        let mut down = BTreeSet::new();
        for fault in ordered(faults) {
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
                    if !self.crash_stop {
                        down.remove(node);
                    }
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

    /// Ok if every link keeps what the protocol assumes of the network; else the first
    /// link that breaks an assumption, and which.
    pub fn admits_network(&self, network: &NetworkConfig) -> Result<(), String> {
        let assumed = self.network;
        let links: Vec<(Option<(NodeId, NodeId)>, &crate::network::LinkConfig)> = match assumed.among {
            None => std::iter::once((None, &network.default))
                .chain(network.overrides.iter().map(|(link, config)| (Some(*link), config)))
                .collect(),
            Some(n) => (0..n)
                .flat_map(|from| {
                    (0..n).filter(move |&to| to != from).map(move |to| (NodeId(from), NodeId(to)))
                })
                .map(|(from, to)| (Some((from, to)), network.link(from, to)))
                .collect(),
        };
        for (link, config) in links {
            let which = match link {
                Some((from, to)) => format!("channel {from}->{to}"),
                None => "every channel".to_string(),
            };
            let broken = if assumed.lossless && config.drop_probability > 0.0 {
                Some((
                    format!("{which} drops messages (drop_probability {})", config.drop_probability),
                    "no message is lost".to_string(),
                ))
            } else if assumed.no_duplicates && config.duplicate_probability > 0.0 {
                Some((
                    format!(
                        "{which} duplicates messages (duplicate_probability {})",
                        config.duplicate_probability
                    ),
                    "no message is duplicated".to_string(),
                ))
            } else if assumed.fifo && config.ordering != LinkOrdering::Fifo {
                Some((
                    format!("{which} may reorder messages (ordering: reorder)"),
                    "FIFO channels (each delivers in send order)".to_string(),
                ))
            } else {
                assumed.delivery_max.filter(|&max| config.delivery_max() > max).map(|slowest| {
                    (
                        format!("{which} may take {} to deliver a message", config.delivery_max()),
                        format!("every message arrives within {slowest}"),
                    )
                })
            };
            if let Some((broken, assumption)) = broken {
                return Err(format!(
                    "{broken}, but the protocol assumes {assumption}; the model is: {}",
                    self.description
                ));
            }
        }
        Ok(())
    }

    /// Ok if the timeline lets liveness hold: every crashed node restarts, and every
    /// partition ends. Liveness ("every request completes") is promised only once the
    /// faults are over; a node still down, or a partition still up, at the end of the
    /// run is outside that promise, though every safety check still applies.
    pub fn admits_liveness(&self, faults: &[ScheduledFault]) -> Result<(), String> {
        let mut down = BTreeMap::new();
        let mut partitions = BTreeMap::new();
        for fault in ordered(faults) {
            match &fault.fault {
                // Crash-stop: the survivors carry on without the crashed node.
                Fault::Crash(_) if self.crash_stop => {}
                Fault::Crash(node) => {
                    down.entry(*node).or_insert(fault.at);
                }
                Fault::Restart(node) => {
                    down.remove(node);
                }
                Fault::Partition { id, lasting: true, .. } => {
                    partitions.insert(*id, fault.at);
                }
                Fault::Partition { .. } => {}
                Fault::Heal { id } => {
                    partitions.remove(id);
                }
            }
        }
        if let Some((node, at)) = down.first_key_value() {
            return Err(format!(
                "{node} crashes at {at} and is still down when the run ends (no restart follows): \
                 liveness holds only once crashed nodes restart; the model is: {}",
                self.description
            ));
        }
        if let Some(at) = partitions.values().next() {
            return Err(format!(
                "the partition that starts at {at} never ends (it has no until_ms): liveness \
                 holds only once the network heals"
            ));
        }
        Ok(())
    }
}

/// The timeline in time order (faults at one time keep their order).
fn ordered(faults: &[ScheduledFault]) -> Vec<&ScheduledFault> {
    let mut ordered: Vec<&ScheduledFault> = faults.iter().collect();
    ordered.sort_by_key(|f| f.at);
    ordered
}
