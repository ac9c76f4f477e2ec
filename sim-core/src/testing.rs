//! A test harness for protocols written against sim-core: run a simulation over many
//! seeds from a test, and on failure print what a reader needs to understand and replay
//! it (the seed, the violation, the faults that fired, the last events, the command).
//!
//! Environment variables steer it without editing the test:
//!
//! | variable | effect |
//! |---|---|
//! | `DSIM_SEED=N` | run only seed N (to replay a failure) |
//! | `DSIM_SEEDS=A..B` | run seeds A to B-1 instead of the test's range |
//! | `DSIM_JOBS=N` | run on N threads (default: the machine's cores, at most 64) |
//!
//! With the `proptest` feature, `fault_plans` is a proptest strategy for fault plans.
//!
//! ```
//! use sim_core::testing::{check_seeds, FaultPlan};
//! use sim_core::{Context, Message, NetworkConfig, LinkConfig, Node, NodeId, SimConfig, Simulation};
//! use serde::Serialize;
//!
//! #[derive(Clone, Debug, Hash, Serialize)]
//! struct Ping;
//! impl Message for Ping {}
//!
//! #[derive(Clone, Debug, Hash)]
//! struct Echo;
//! impl Node for Echo {
//!     type Msg = Ping;
//!     type Timer = ();
//!     type Durable = ();
//!     type Op = ();
//!     fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
//!         ctx.broadcast(Ping);
//!     }
//!     fn on_message(&mut self, _ctx: &mut Context<'_, Self>, _from: NodeId, _msg: Ping) {}
//!     fn on_timer(&mut self, _ctx: &mut Context<'_, Self>, _timer: ()) {}
//! }
//!
//! check_seeds("echo", 0..20, |seed| {
//!     let mut config = SimConfig::new(seed, NetworkConfig::uniform(LinkConfig::lossy(0.1)));
//!     config.faults = FaultPlan::new().crash(1, 5).restart(1, 9).build();
//!     Simulation::new(config, 3, |_, _| Echo)
//! });
//! ```

use crate::invariant::{Outcome, Violation};
use crate::network::Partition;
use crate::node::Node;
use crate::sim::{Fault, ScheduledFault, Simulation};
use crate::time::{NodeId, SimTime};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Runs `make(seed)` to its end for every seed of `seeds` (or those the environment asks
/// for, see the module doc), and panics with a readable report at the lowest seed whose
/// run did not pass: a violation, an undecided check, or a run limit.
pub fn check_seeds<N: Node>(name: &str, seeds: Range<u64>, make: impl Fn(u64) -> Simulation<N> + Sync) {
    let seeds = seeds_from_env().unwrap_or(seeds);
    let jobs = jobs_from_env();
    let next = AtomicU64::new(seeds.start);
    let first: Mutex<Option<(u64, Outcome)>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                let known = first.lock().expect("no worker panics").as_ref().map(|(s, _)| *s);
                if seed >= seeds.end || known.is_some_and(|known| seed > known) {
                    break;
                }
                let outcome = make(seed).run().outcome;
                if outcome != Outcome::Pass {
                    let mut first = first.lock().expect("no worker panics");
                    if first.as_ref().is_none_or(|(known, _)| seed < *known) {
                        *first = Some((seed, outcome));
                    }
                }
            });
        }
    });
    if let Some((seed, outcome)) = first.into_inner().expect("no worker panics") {
        panic!("{}", report(name, seed, &outcome));
    }
}

/// The failure report [`check_seeds`] panics with.
fn report(name: &str, seed: u64, outcome: &Outcome) -> String {
    let test = std::thread::current().name().unwrap_or(name).to_string();
    let replay = format!("DSIM_SEED={seed} cargo test {test} -- --exact");
    let (what, violation): (String, Option<&Violation>) = match outcome {
        Outcome::Violation(v) => (format!("violated {}", v.invariant), Some(v)),
        Outcome::Undecided(v) => (format!("undecided: {} gave up", v.invariant), Some(v)),
        Outcome::LimitReached(limit) => (format!("hit a run limit ({limit:?})"), None),
        Outcome::Pass => unreachable!("only failures are reported"),
    };
    let mut text = format!("{name}: seed {seed} {what}");
    if let Some(v) = violation {
        text.push_str(&format!(" at step {} (t={}, {:?} phase)\n\n{}\n", v.step, v.time, v.phase, v.message));
        let faults = if v.faults.is_empty() { vec!["none".to_string()] } else { v.faults.clone() };
        text.push_str(&format!("\nfaults that fired before it:\n  {}\n", faults.join("\n  ")));
        if !v.recent.is_empty() {
            text.push_str(&format!("\nthe last {} events:\n  {}\n", v.recent.len(), v.recent.join("\n  ")));
        }
    }
    text.push_str(&format!("\nreplay: {replay}\n"));
    text
}

fn seeds_from_env() -> Option<Range<u64>> {
    if let Some(seed) = env_var("DSIM_SEED") {
        let seed: u64 = seed.parse().unwrap_or_else(|_| panic!("DSIM_SEED={seed}: not a seed (0..2^64)"));
        return Some(seed..seed.saturating_add(1));
    }
    let range = env_var("DSIM_SEEDS")?;
    let parsed = range.split_once("..").and_then(|(a, b)| Some(a.parse().ok()?..b.parse().ok()?));
    Some(parsed.unwrap_or_else(|| panic!("DSIM_SEEDS={range}: expected A..B")))
}

fn jobs_from_env() -> usize {
    let default = std::thread::available_parallelism().map_or(1, |n| n.get());
    match env_var("DSIM_JOBS") {
        Some(jobs) => jobs.parse().ok().filter(|n| (1..=64).contains(n)).unwrap_or_else(|| {
            panic!("DSIM_JOBS={jobs}: expected 1 to 64 threads");
        }),
        None => default.min(64),
    }
}

/// The test harness reads its settings from the environment, outside any run.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A fault timeline, built in order.
///
/// ```
/// use sim_core::testing::FaultPlan;
/// let faults = FaultPlan::new()
///     .crash(0, 100)
///     .restart(0, 300)
///     .partition(&[&[0], &[1, 2]], 50, Some(250))
///     .one_way(&[2], &[0], 400, Some(500))
///     .build();
/// assert_eq!(faults.len(), 6); // each partition with an end is a start and a heal
/// ```
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    faults: Vec<ScheduledFault>,
    partitions: u32,
}

impl FaultPlan {
    /// An empty plan.
    pub fn new() -> FaultPlan {
        FaultPlan::default()
    }

    /// `node` crashes at `at_ms`.
    pub fn crash(self, node: u32, at_ms: u64) -> FaultPlan {
        self.at(at_ms, Fault::Crash(NodeId(node)))
    }

    /// `node` restarts from its durable storage at `at_ms`.
    pub fn restart(self, node: u32, at_ms: u64) -> FaultPlan {
        self.at(at_ms, Fault::Restart(NodeId(node)))
    }

    /// The groups cannot reach each other from `from_ms` until `until_ms` (`None`: to the
    /// end of the run, even after the network heals).
    pub fn partition(self, groups: &[&[u32]], from_ms: u64, until_ms: Option<u64>) -> FaultPlan {
        let groups = groups.iter().map(|g| g.iter().copied().map(NodeId).collect()).collect();
        self.cut(Partition::Symmetric { groups }, from_ms, until_ms)
    }

    /// Messages from `from` to `to` are lost from `from_ms` until `until_ms`; the other
    /// direction still works.
    pub fn one_way(self, from: &[u32], to: &[u32], from_ms: u64, until_ms: Option<u64>) -> FaultPlan {
        let nodes = |ns: &[u32]| ns.iter().copied().map(NodeId).collect();
        self.cut(Partition::OneWay { from: nodes(from), to: nodes(to) }, from_ms, until_ms)
    }

    /// The timeline, for `SimConfig::faults`.
    pub fn build(self) -> Vec<ScheduledFault> {
        self.faults
    }

    fn at(mut self, at_ms: u64, fault: Fault) -> FaultPlan {
        self.faults.push(ScheduledFault { at: SimTime::from_millis(at_ms), fault });
        self
    }

    fn cut(mut self, partition: Partition, from_ms: u64, until_ms: Option<u64>) -> FaultPlan {
        let id = self.partitions;
        self.partitions += 1;
        let lasting = until_ms.is_none();
        self = self.at(from_ms, Fault::Partition { id, partition, lasting });
        match until_ms {
            Some(until_ms) => {
                assert!(until_ms > from_ms, "a partition must end after it starts ({from_ms} -> {until_ms})");
                self.at(until_ms, Fault::Heal { id })
            }
            None => self,
        }
    }
}

/// A proptest strategy for fault plans over `n_nodes` nodes within `window_ms`: up to
/// `max_faults` crashes (each followed by a restart) of the nodes in `may_crash`, and
/// partitions that split the nodes in two, each healing inside the window.
#[cfg(feature = "proptest")]
pub fn fault_plans(
    n_nodes: u32,
    may_crash: Vec<u32>,
    window_ms: u64,
    max_faults: usize,
) -> impl proptest::strategy::Strategy<Value = Vec<ScheduledFault>> {
    use proptest::prelude::*;
    assert!(n_nodes >= 2 && window_ms >= 2, "a plan needs two nodes and a window of 2 ms");
    let crashable = !may_crash.is_empty();
    let crash = (0..may_crash.len().max(1), 0..window_ms - 1, 1..window_ms)
        .prop_map(move |(i, at, length)| (Some(may_crash.get(i).copied()), at, length, 0u64));
    let cut = (0..window_ms - 1, 1..window_ms, 1..(1u64 << n_nodes.min(63)) - 1)
        .prop_map(|(at, length, mask)| (None, at, length, mask));
    let one = if crashable { prop_oneof![crash, cut].boxed() } else { cut.boxed() };
    proptest::collection::vec(one, 0..=max_faults).prop_map(move |faults| {
        let mut plan = FaultPlan::new();
        for (crash, at, length, mask) in faults {
            let until = (at + length).min(window_ms);
            plan = match crash {
                Some(Some(node)) => plan.crash(node, at).restart(node, until),
                Some(None) => plan,
                None => {
                    let (inside, outside): (Vec<u32>, Vec<u32>) =
                        (0..n_nodes).partition(|&n| mask & (1u64 << n.min(63)) != 0);
                    plan.partition(&[&inside, &outside], at, Some(until.max(at + 1)))
                }
            };
        }
        plan.build()
    })
}
