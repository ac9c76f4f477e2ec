//! Chain replication, end to end: the bundled scenarios meet their expectations (twice,
//! with the same trace hash); random chains (2 to 7 servers, spares), crash timelines
//! within the fault model, workloads and seeds always pass every invariant and complete
//! every request; each buggy variant is caught by its invariant within a bounded number of
//! seeds; the middle-failure handshake and an extension while updates are in flight do
//! what the paper says.

use dsim::scenario::Scenario;
use proptest::prelude::*;
use protocols::chain::{
    self, ChainNode, ChainParams, ReadFrom, Server, ONE_HEAD_ONE_TAIL, UPDATE_PROPAGATION,
};
use protocols::kv::{KvRecord, Workload, KV_LINEARIZABLE};
use sim_core::{
    Fault, Latency, LinkConfig, LinkOrdering, NetworkConfig, NodeId, Outcome, ScheduledFault, SimConfig,
    SimDuration, SimRng, SimTime, Simulation, Stream, World,
};

mod common;

#[test]
fn every_chain_scenario_meets_its_expectation_deterministically() {
    common::folder_meets_expectations("chain", 9);
}

/// The network the paper assumes: clients reach everything over `client_link`; the master
/// and the servers talk over reliable FIFO links with a bounded delay.
fn network(internal: u32, client_link: LinkConfig) -> NetworkConfig {
    let mut network = NetworkConfig::uniform(client_link);
    let server_link = LinkConfig::reliable(Latency::uniform_ms(1, 3)).fifo();
    for from in 0..internal {
        for to in (0..internal).filter(|&to| to != from) {
            network.overrides.insert((NodeId(from), NodeId(to)), server_link);
        }
    }
    network
}

fn unreliable() -> LinkConfig {
    NetworkConfig::preset("unreliable").expect("labrpc's preset exists").default
}

struct Run {
    outcome: Outcome,
    sim: Simulation<ChainNode>,
}

fn simulate(params: &ChainParams, workload: &Workload, config: SimConfig) -> Run {
    let ops = workload.generate(&mut SimRng::new(config.seed, Stream::Workload));
    let setup = chain::setup(params, ops, SimDuration::ZERO);
    let mut sim = common::simulation_of(setup, config, |_| true);
    let outcome = sim.run().outcome;
    Run { outcome, sim }
}

fn crash(node: u32, at_ms: u64) -> ScheduledFault {
    ScheduledFault { at: SimTime::from_millis(at_ms), fault: Fault::Crash(NodeId(node)) }
}

fn config(
    seed: u64,
    params: &ChainParams,
    client_link: LinkConfig,
    faults: Vec<ScheduledFault>,
) -> SimConfig {
    let mut config = SimConfig::new(seed, network(1 + params.servers + params.spares, client_link));
    let last = faults.iter().map(|f| f.at).max().unwrap_or(SimTime::ZERO);
    config.faults = faults;
    config.heal_at = Some(last);
    config.liveness_window = SimDuration::from_millis(5_000);
    config
}

fn server(world: &World<ChainNode>, id: u32) -> &Server {
    match world.node(NodeId(id)) {
        Some(ChainNode::Server(server)) => server,
        other => panic!("n{id} is not a live server: {other:?}"),
    }
}

/// What the proptest draws: a chain, a crash timeline within the fault model, a client
/// network, a workload, a seed.
#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    servers: u32,
    spares: u32,
    /// (which server or spare, by index into servers and spares; gap before it in ms).
    crashes: Vec<(u32, u64)>,
    drop_probability: f64,
    duplicate_probability: f64,
    latency_ms_max: u64,
    clients: u32,
    ops_per_client: u32,
    window: u32,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (any::<u64>(), 2..=7u32, 0..=2u32, prop::collection::vec((0..100u32, 0..150u64), 0..=6)),
        (0.0..0.3f64, 0.0..0.2f64, 1..30u64),
        (1..=4u32, 1..=15u32, 1..=3u32),
    )
        .prop_map(|(chain, network, workload)| {
            let (seed, servers, spares, crashes) = chain;
            let (drop_probability, duplicate_probability, latency_ms_max) = network;
            let (clients, ops_per_client, window) = workload;
            Case {
                seed,
                servers,
                spares,
                crashes,
                drop_probability,
                duplicate_probability,
                latency_ms_max,
                clients,
                ops_per_client,
                window,
            }
        })
}

impl Case {
    fn params(&self) -> ChainParams {
        ChainParams {
            servers: self.servers,
            spares: self.spares,
            window: self.window,
            ..ChainParams::default()
        }
    }

    /// Crash-stop: at most servers - 1 distinct servers (or spares) crash, each drawn gap
    /// after the one before, so one of the first chain's servers always survives.
    fn faults(&self) -> Vec<ScheduledFault> {
        let pool = self.servers + self.spares;
        let (mut faults, mut crashed, mut at_ms) = (Vec::new(), Vec::new(), 0);
        for &(which, gap) in &self.crashes {
            let node = 1 + which % pool;
            if crashed.len() + 1 < self.servers as usize && !crashed.contains(&node) {
                at_ms += gap;
                crashed.push(node);
                faults.push(crash(node, at_ms));
            }
        }
        faults
    }

    fn config(&self) -> SimConfig {
        let link = LinkConfig {
            latency: Latency::uniform_ms(0, self.latency_ms_max),
            drop_probability: self.drop_probability,
            duplicate_probability: self.duplicate_probability,
            ordering: LinkOrdering::Reorder,
            slow: None,
        };
        config(self.seed, &self.params(), link, self.faults())
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

/// `DSIM_FUZZ_CASES` scales the proptest (default 64).
fn cases_count() -> u32 {
    std::env::var("DSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases_count()))]

    /// Within the fault model every history is linearizable, every invariant holds after
    /// every step, and every request completes.
    #[test]
    fn chains_within_the_fault_model_never_violate_and_complete(case in cases()) {
        let run = simulate(&case.params(), &case.workload(), case.config());
        prop_assert_eq!(&run.outcome, &Outcome::Pass);
        prop_assert_eq!(run.sim.world().history().open_operations(), 0);
    }
}

/// The first seed in `seeds` on which `params` fails, and how.
fn first_violation(
    params: &ChainParams,
    workload: &Workload,
    seeds: std::ops::Range<u64>,
    faults: impl Fn() -> Vec<ScheduledFault>,
) -> Option<(u64, sim_core::Violation)> {
    seeds.into_iter().find_map(|seed| {
        let run = simulate(params, workload, config(seed, params, unreliable(), faults()));
        run.outcome.violation().cloned().map(|violation| (seed, violation))
    })
}

#[test]
fn read_from_head_is_caught_by_one_head_one_tail_within_10_seeds() {
    let params = ChainParams { read_from: ReadFrom::Head, ..ChainParams::default() };
    let workload = Workload { clients: 3, ops_per_client: 10, ..Workload::default() };
    let (seed, violation) =
        first_violation(&params, &workload, 0..10, Vec::new).expect("the head answered a query on no seed");
    assert_eq!(violation.invariant, ONE_HEAD_ONE_TAIL, "seed {seed}: {}", violation.message);
    assert!(violation.message.contains("the head"), "{}", violation.message);
}

#[test]
fn ack_before_tail_is_caught_by_kv_linearizable_within_100_seeds() {
    let params = ChainParams { servers: 5, ack_before_tail: true, ..ChainParams::default() };
    let workload = Workload { clients: 3, ops_per_client: 20, keys: 1, ..Workload::default() };
    let (seed, violation) =
        first_violation(&params, &workload, 0..100, Vec::new).expect("no stale read in 100 seeds");
    assert_eq!(violation.invariant, KV_LINEARIZABLE, "seed {seed}: {}", violation.message);
    // The same seed with the head waiting for the tail passes.
    let correct = ChainParams { ack_before_tail: false, ..params.clone() };
    let run = simulate(&correct, &workload, config(seed, &correct, unreliable(), Vec::new()));
    assert_eq!(run.outcome, Outcome::Pass);
}

#[test]
fn the_notes_failover_is_caught_by_update_propagation_within_20_seeds() {
    let params = ChainParams { window: 2, resend_on_middle_failure: false, ..ChainParams::default() };
    let workload = Workload { clients: 6, ops_per_client: 25, ..Workload::default() };
    let (seed, violation) = first_violation(&params, &workload, 0..20, || vec![crash(2, 60)])
        .expect("no update lost at the failed middle server in 20 seeds");
    assert_eq!(violation.invariant, UPDATE_PROPAGATION, "seed {seed}: {}", violation.message);
    let correct = ChainParams { resend_on_middle_failure: true, ..params.clone() };
    let run = simulate(&correct, &workload, config(seed, &correct, unreliable(), vec![crash(2, 60)]));
    assert_eq!(run.outcome, Outcome::Pass);
}

/// The middle-failure handshake: n2 fails with updates in flight; the master asks n3 for
/// the last update it received and gives that number to n1, which re-sends the rest of its
/// Sent list. Afterwards n1 and n3 hold the same updates, in the same order, and n1's Sent
/// list is empty.
#[test]
fn the_middle_failure_handshake_resends_exactly_what_the_successor_lacks() {
    let params = ChainParams { window: 3, ..ChainParams::default() };
    let workload = Workload { clients: 4, ops_per_client: 20, ..Workload::default() };
    let link = LinkConfig::reliable(Latency::uniform_ms(1, 5));
    let mut resent_seeds = 0;
    for seed in 0..10 {
        let run = simulate(&params, &workload, config(seed, &params, link, vec![crash(2, 40)]));
        assert_eq!(run.outcome, Outcome::Pass, "seed {seed}");
        let world = run.sim.world();
        let (head, tail) = (server(world, 1), server(world, 3));
        assert_eq!(head.history(), tail.history(), "seed {seed}: n1 and n3 differ");
        assert!(head.sent().is_empty() && tail.sent().is_empty(), "seed {seed}");
        assert!(tail.is_tail() && head.is_head() && head.successor() == Some(NodeId(3)), "seed {seed}");
        let updates = world
            .history()
            .entries()
            .iter()
            .filter(|e| matches!(&e.op, KvRecord::Call { op, .. } if !matches!(op, protocols::kv::KvOp::Get { .. })))
            .count();
        assert_eq!(tail.history().len(), updates, "seed {seed}: every update applied once");
        if run
            .sim
            .world()
            .coverage()
            .contains_key("chain: a predecessor re-sent its Sent list after a middle failure")
        {
            resent_seeds += 1;
        }
    }
    assert!(resent_seeds > 0, "no seed had updates in flight at n2 when it failed");
}

/// Extension while updates are in flight: a spare joins at 50 ms with no failure, in the
/// middle of a burst. It takes the old tail's state, then everything after it; at the end
/// it is the tail and holds what the head holds.
#[test]
fn a_spare_joins_while_updates_are_in_flight() {
    let params = ChainParams { spares: 1, extend_at_ms: Some(50), window: 3, ..ChainParams::default() };
    let workload = Workload { clients: 4, ops_per_client: 25, ..Workload::default() };
    for seed in 0..10 {
        let run = simulate(&params, &workload, config(seed, &params, unreliable(), Vec::new()));
        assert_eq!(run.outcome, Outcome::Pass, "seed {seed}");
        let world = run.sim.world();
        let (old_tail, spare) = (server(world, 3), server(world, 4));
        assert!(spare.is_tail() && !old_tail.is_tail(), "seed {seed}: n4 is the tail");
        assert_eq!(old_tail.successor(), Some(NodeId(4)));
        assert_eq!(server(world, 1).history(), spare.history(), "seed {seed}");
        let coverage = run.sim.world().coverage();
        assert!(coverage.contains_key("chain: a spare joined and became the tail"), "seed {seed}");
    }
}

/// A spare that replaces a crashed tail: the chain grows back to three.
#[test]
fn a_spare_replaces_a_failed_tail() {
    let params = ChainParams { spares: 1, ..ChainParams::default() };
    let workload = Workload { clients: 3, ops_per_client: 20, ..Workload::default() };
    let run = simulate(&params, &workload, config(2, &params, unreliable(), vec![crash(3, 80)]));
    assert_eq!(run.outcome, Outcome::Pass);
    let world = run.sim.world();
    assert!(server(world, 4).is_tail());
    assert_eq!(server(world, 2).successor(), Some(NodeId(4)));
}

#[test]
fn all_servers_down_and_partitions_are_outside_the_fault_model() {
    let layout = chain::Layout { servers: 3, spares: 1, clients: 2 };
    let model = chain::fault_model(&layout, ChainParams::default().link_ms_max());
    assert!(model.admits(&[crash(1, 10), crash(2, 20)]).is_ok());
    let all = model.admits(&[crash(1, 10), crash(2, 20), crash(3, 30)]).unwrap_err();
    assert!(all.contains("3 nodes are down"), "{all}");
    // Crash-stop: a restarted server comes back empty, so it still counts.
    let restart = ScheduledFault { at: SimTime::from_millis(15), fault: Fault::Restart(NodeId(1)) };
    assert!(model.admits(&[crash(1, 10), restart, crash(2, 20), crash(3, 30)]).is_err());
    assert!(model.admits(&[crash(0, 10)]).is_err(), "the master never fails");
    let partition = ScheduledFault {
        at: SimTime::from_millis(5),
        fault: Fault::Partition {
            id: 0,
            partition: sim_core::Partition::Symmetric { groups: vec![vec![NodeId(0)], vec![NodeId(1)]] },
            lasting: false,
        },
    };
    assert!(model.admits(&[partition]).is_err());
    // Liveness needs one survivor, not restarts.
    assert!(model.admits_liveness(&[crash(2, 20)]).is_ok());
    // Links among the master and the servers must be reliable and FIFO; the rest may not be.
    assert!(model.admits_network(&network(5, unreliable())).is_ok());
    let lossy = model.admits_network(&NetworkConfig::uniform(unreliable())).unwrap_err();
    assert!(lossy.contains("channel n0->n1 drops messages"), "{lossy}");
}

#[test]
fn bad_chain_parameters_are_reported_with_their_place() {
    let text = r#"{
  "name": "bad",
  "protocol": { "chain": { "heartbeat_ms": 20, "detect_ms": 20 } }
}"#;
    let err = Scenario::parse("bad.json", text).unwrap_err().to_string();
    assert!(err.contains("protocol.chain.detect_ms") && err.contains("heartbeat"), "{err}");
    let text = r#"{ "name": "bad", "protocol": { "chain": { "servers": 0 } } }"#;
    let err = Scenario::parse("bad.json", text).unwrap_err().to_string();
    assert!(err.contains("protocol.chain.servers"), "{err}");
    let text = r#"{ "name": "bad", "protocol": { "chain": { "servers": 100000 } } }"#;
    let err = Scenario::parse("bad.json", text).unwrap_err().to_string();
    assert!(err.contains("at most 64"), "{err}");
    let text = r#"{ "name": "bad", "protocol": { "chain": { "extend_at_ms": 10 } } }"#;
    let err = Scenario::parse("bad.json", text).unwrap_err().to_string();
    assert!(err.contains("spares"), "{err}");
    let text = r#"{ "name": "bad", "protocol": { "chain": { "read_from": "middle" } } }"#;
    let err = Scenario::parse("bad.json", text).unwrap_err().to_string();
    assert!(err.contains("tail") && err.contains("head"), "{err}");
}
