//! At-most-once RPC, end to end: the bundled scenarios meet their expectations (twice, with
//! the same trace hash), exactly-once (durable table + unbounded retries) survives random
//! networks and server crash timelines, and the in-memory table is caught by a crash.

use dsim::scenario::Scenario;
use proptest::prelude::*;
use protocols::at_most_once::{self, AmoParams, DedupMode, DiscardMode, SERVER};
use protocols::kv::{KvRecord, Workload, EXECUTED_AT_MOST_ONCE};
use sim_core::{
    AppliesTo, Fault, Latency, LinkConfig, LinkOrdering, NetworkConfig, NodeId, Outcome, Partition, Phase,
    ScheduledFault, SimConfig, SimDuration, SimRng, SimTime, SlowRule, Stream,
};
use std::collections::BTreeSet;

mod common;

#[test]
fn every_at_most_once_scenario_meets_its_expectation_deterministically() {
    common::folder_meets_expectations("at-most-once", 8);
}

/// A run of the at-most-once key/value protocol; returns the outcome and the simulation.
struct Run {
    outcome: Outcome,
    n_ops: usize,
    executed: Vec<KvRecord>,
    open_operations: u64,
}

fn simulate(params: &AmoParams, workload: &Workload, config: SimConfig) -> Run {
    let ops = workload.generate(&mut SimRng::new(config.seed, Stream::Workload));
    let setup = at_most_once::setup(params, ops, SimDuration::ZERO);
    let mut sim = common::simulation_of(setup, config, |_| true);
    let outcome = sim.run().outcome;
    let history = sim.world().history();
    let executed =
        history.entries().iter().filter(|e| matches!(e.op, KvRecord::Executed { .. })).map(|e| e.op.clone());
    Run {
        outcome,
        n_ops: workload.n_ops(),
        executed: executed.collect(),
        open_operations: history.open_operations(),
    }
}

fn crash_restart(crash_ms: u64, restart_ms: u64) -> Vec<ScheduledFault> {
    vec![
        ScheduledFault { at: SimTime::from_millis(crash_ms), fault: Fault::Crash(SERVER) },
        ScheduledFault { at: SimTime::from_millis(restart_ms), fault: Fault::Restart(SERVER) },
    ]
}

fn unreliable() -> NetworkConfig {
    NetworkConfig::preset("unreliable").expect("labrpc's preset exists")
}

/// What the proptest draws: a network, a fault timeline, the protocol's knobs, a seed.
#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    drop_probability: f64,
    duplicate_probability: f64,
    latency_ms_max: u64,
    fifo: bool,
    slow_replies: bool,
    /// (gap before the crash, time down), in ms, one pair per crash of the server.
    crashes: Vec<(u64, u64)>,
    /// (start, length) of a partition cutting the server off from client 1.
    partition: Option<(u64, u64)>,
    clients: u32,
    ops_per_client: u32,
    discard: DiscardMode,
    window: u32,
    timeout_ms: u64,
    execute_ms: u64,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (any::<u64>(), 0.0..0.3f64, 0.0..0.3f64, 1..40u64, any::<bool>(), any::<bool>()),
        (prop::collection::vec((0..400u64, 1..400u64), 0..=2), prop::option::of((0..600u64, 1..300u64))),
        (1..=4u32, 1..=12u32, any::<bool>(), 1..=3u32, 5..60u64, 0..20u64),
    )
        .prop_map(|(network, faults, knobs)| {
            let (seed, drop_probability, duplicate_probability, latency_ms_max, fifo, slow_replies) = network;
            let (crashes, partition) = faults;
            let (clients, ops_per_client, seq_ack, window, timeout_ms, execute_ms) = knobs;
            let discard = if seq_ack { DiscardMode::SeqAck } else { DiscardMode::OneOutstanding };
            let window = if seq_ack { window } else { 1 };
            Case {
                seed,
                drop_probability,
                duplicate_probability,
                latency_ms_max,
                fifo,
                slow_replies,
                crashes,
                partition,
                clients,
                ops_per_client,
                discard,
                window,
                timeout_ms,
                execute_ms,
            }
        })
}

impl Case {
    fn config(&self) -> SimConfig {
        let link = LinkConfig {
            latency: Latency::uniform_ms(0, self.latency_ms_max),
            drop_probability: self.drop_probability,
            duplicate_probability: self.duplicate_probability,
            ordering: if self.fifo { LinkOrdering::Fifo } else { LinkOrdering::Reorder },
            slow: self.slow_replies.then_some(SlowRule {
                probability: 0.3,
                latency: Latency::uniform_ms(50, 500),
                applies_to: AppliesTo::Replies,
            }),
        };
        let mut config = SimConfig::new(self.seed, NetworkConfig::uniform(link));
        let mut now_ms = 0;
        for (gap, down) in &self.crashes {
            config.faults.extend(crash_restart(now_ms + gap, now_ms + gap + down));
            now_ms += gap + down;
        }
        if let Some((start, length)) = self.partition {
            let partition = Partition::Symmetric { groups: vec![vec![SERVER], vec![NodeId(1)]] };
            config.faults.push(ScheduledFault {
                at: SimTime::from_millis(start),
                fault: Fault::Partition { id: 0, partition, lasting: false },
            });
            config.faults.push(ScheduledFault {
                at: SimTime::from_millis(start + length),
                fault: Fault::Heal { id: 0 },
            });
            now_ms = now_ms.max(start + length);
        }
        // The network heals when the last fault is over (and loss and duplication stop).
        config.heal_at = Some(SimTime::from_millis(now_ms));
        config
    }

    fn params(&self) -> AmoParams {
        AmoParams {
            timeout_ms: self.timeout_ms,
            retries_max: None,
            execute_ms: self.execute_ms,
            dedup: DedupMode::Durable,
            discard: self.discard,
            window: self.window,
            ..AmoParams::default()
        }
    }

    fn workload(&self) -> Workload {
        Workload {
            clients: self.clients,
            ops_per_client: self.ops_per_client,
            keys: 2,
            ..Workload::default()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Exactly-once: unbounded retries + dedup + a durable table. Whatever the network did
    /// and however often the server crashed, no invariant fails, every operation completes
    /// once the network heals, and each request ran exactly once.
    #[test]
    fn durable_exactly_once_never_violates_and_completes(case in cases()) {
        let run = simulate(&case.params(), &case.workload(), case.config());
        prop_assert_eq!(&run.outcome, &Outcome::Pass);
        prop_assert_eq!(run.open_operations, 0);
        let distinct: BTreeSet<String> = run.executed.iter().map(|e| format!("{e:?}")).collect();
        prop_assert_eq!(run.executed.len(), run.n_ops, "each request ran exactly once");
        prop_assert_eq!(distinct.len(), run.n_ops);
    }
}

/// The lecture's point, found by search: with the table in memory, some seed makes a
/// request run again after a crash and restart. Bounded: 200 seeds at most.
#[test]
fn memory_table_across_a_crash_restart_is_caught_within_200_seeds() {
    let memory =
        AmoParams { timeout_ms: 30, execute_ms: 10, dedup: DedupMode::Memory, ..AmoParams::default() };
    let workload = Workload { clients: 4, ops_per_client: 20, keys: 3, ..Workload::default() };
    let config = |seed: u64| {
        let mut config = SimConfig::new(seed, unreliable());
        config.faults = crash_restart(200, 500);
        config.heal_at = Some(SimTime::from_millis(500));
        config
    };
    let found = (0..200u64).find_map(|seed| {
        let run = simulate(&memory, &workload, config(seed));
        run.outcome.violation().cloned().map(|violation| (seed, violation))
    });
    let (seed, violation) =
        found.expect("no seed in 0..200 showed the in-memory table's duplicate execution");
    assert_eq!(violation.invariant, EXECUTED_AT_MOST_ONCE, "seed {seed}: {}", violation.message);
    assert!(violation.time >= SimTime::from_millis(500), "seed {seed}: the duplicate runs after the restart");
    // The same seed and timeline with the table on disk passes.
    let durable = AmoParams { dedup: DedupMode::Durable, ..memory };
    assert_eq!(simulate(&durable, &workload, config(seed)).outcome, Outcome::Pass);
}

/// every-request-completed can fail: a server that never comes back leaves calls open.
#[test]
fn every_request_completed_fails_when_the_server_stays_down() {
    let params = AmoParams::default();
    let workload = Workload { clients: 2, ops_per_client: 5, ..Workload::default() };
    let mut config =
        SimConfig::new(3, NetworkConfig::uniform(LinkConfig::reliable(Latency::uniform_ms(1, 5))));
    config.faults = vec![ScheduledFault { at: SimTime::from_millis(8), fault: Fault::Crash(SERVER) }];
    config.heal_at = Some(SimTime::from_millis(8));
    config.liveness_window = SimDuration::from_millis(2_000);
    let violation =
        simulate(&params, &workload, config).outcome.violation().cloned().expect("a liveness failure");
    assert_eq!(violation.invariant, at_most_once::EVERY_REQUEST_COMPLETED);
    assert_eq!(violation.phase, Phase::Liveness);
}

/// Discard by seq-ack keeps the cache within clients x window even with a large window
/// and a network that reorders replies by seconds; without discard the same run breaks it.
#[test]
fn seq_ack_bounds_the_cache_where_no_discard_does_not() {
    let workload = Workload { clients: 3, ops_per_client: 30, ..Workload::default() };
    let config = || SimConfig::new(5, NetworkConfig::preset("long-reordering").expect("preset"));
    let acked = AmoParams { window: 4, ..AmoParams::default() };
    assert_eq!(simulate(&acked, &workload, config()).outcome, Outcome::Pass);
    let unbounded = AmoParams { discard: DiscardMode::None, ..acked };
    let violation =
        simulate(&unbounded, &workload, config()).outcome.violation().cloned().expect("cache grows");
    assert_eq!(violation.invariant, at_most_once::CACHE_BOUNDED);
}

#[test]
fn bad_at_most_once_parameters_are_reported_with_their_place() {
    let text = r#"{
  "name": "bad",
  "protocol": { "at-most-once": { "discard": "one-outstanding", "window": 2 } }
}"#;
    let err = Scenario::parse("bad.json", text).unwrap_err().to_string();
    assert!(err.starts_with("bad.json:3:"), "{err}");
    assert!(err.contains("protocol.at-most-once.window") && err.contains("must be 1"), "{err}");

    let text = r#"{
  "name": "bad",
  "protocol": { "at-most-once": { "retries_max": 3 } },
  "invariants": ["kv-linearizable", "every-request-completed"]
}"#;
    let err = Scenario::parse("bad.json", text).unwrap_err().to_string();
    assert!(err.starts_with("bad.json:4:") && err.contains("unbounded retries"), "{err}");

    let text = r#"{ "name": "bad", "protocol": { "at-most-once": { "dedup": "disk" } } }"#;
    let err = Scenario::parse("bad.json", text).unwrap_err().to_string();
    assert!(err.contains("none") && err.contains("memory") && err.contains("durable"), "{err}");
}
