//! Primary-backup, end to end: the bundled scenarios meet their expectations (twice, with
//! the same trace hash); whatever the client links do and whichever servers crash (within
//! the fault model), there is never more than one primary, histories are linearizable, no
//! acknowledged update is lost and every request completes; each buggy variant is caught
//! within a bounded number of seeds; and the latency figures `dsim run` prints match a
//! hand-computed case.

use dsim::runner;
use dsim::scenario::Scenario;
use proptest::prelude::*;
use protocols::at_most_once::EVERY_REQUEST_COMPLETED;
use protocols::kv::{KvOp, Workload, KV_LINEARIZABLE};
use protocols::primary_backup::{
    self, CommitMode, PbParams, TestAndSetMode, NO_ACKNOWLEDGED_UPDATE_LOST, SINGLE_PRIMARY,
};
use sim_core::{
    AppliesTo, Fault, Latency, LinkConfig, LinkOrdering, NetworkConfig, NodeId, Outcome, Phase,
    ScheduledFault, SimConfig, SimDuration, SimRng, SimTime, Simulation, SlowRule, Stream, TraceMode,
};

mod common;

#[test]
fn every_primary_backup_scenario_meets_its_expectation_deterministically() {
    for summary in common::folder_meets_expectations("primary-backup", 5) {
        assert!(summary.outside_fault_model.is_none(), "{}: {:?}", summary.file, summary.outside_fault_model);
    }
}

/// A network whose links among the arbiter and the servers (nodes 0..=servers) are
/// reliable, with latency up to `server_ms_max`, and whose other links are `client_link`.
fn network(servers: usize, client_link: LinkConfig, server_ms_max: u64) -> NetworkConfig {
    let mut network = NetworkConfig::uniform(client_link);
    let reliable = LinkConfig::reliable(Latency::uniform_ms(0, server_ms_max));
    for from in 0..=servers as u32 {
        for to in 0..=servers as u32 {
            if from != to {
                network.overrides.insert((NodeId(from), NodeId(to)), reliable);
            }
        }
    }
    network
}

/// Runs primary-backup with `params` and the invariants `only` (all: `None`).
fn simulate(params: &PbParams, workload: &Workload, config: SimConfig, only: Option<&str>) -> (Outcome, u64) {
    let ops = workload.generate(&mut SimRng::new(config.seed, Stream::Workload));
    let setup = primary_backup::setup(params, ops, SimDuration::ZERO);
    let mut sim = common::simulation_of(setup, config, |name| only.is_none_or(|only| only == name));
    let outcome = sim.run().outcome;
    (outcome, sim.world().history().open_operations())
}

/// What the proptest draws: backups, the client links, a crash timeline, knobs, a seed.
#[derive(Clone, Debug)]
struct Case {
    seed: u64,
    backups: u32,
    drop_probability: f64,
    duplicate_probability: f64,
    latency_ms_max: u64,
    fifo: bool,
    slow_replies: bool,
    /// Which servers crash (by position among the servers, at most `backups` distinct),
    /// when, and whether each restarts later (it then rejoins from a snapshot).
    crashes: Vec<(usize, u64, Option<u64>)>,
    heartbeat_ms: u64,
    write_ms: u64,
    timeout_ms: u64,
    window: u32,
    clients: u32,
    ops_per_client: u32,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (any::<u64>(), 1..=4u32, 0.0..0.3f64, 0.0..0.2f64, 1..40u64, any::<bool>(), any::<bool>()),
        prop::collection::vec((0..5usize, 0..600u64, prop::option::of(1..300u64)), 0..=4),
        (2..=15u64, 0..=20u64, 10..=80u64, 1..=3u32, 1..=4u32, 1..=12u32),
    )
        .prop_map(|(network, crashes, knobs)| {
            let (seed, backups, drop_probability, duplicate_probability, latency_ms_max, fifo, slow_replies) =
                network;
            let (heartbeat_ms, write_ms, timeout_ms, window, clients, ops_per_client) = knobs;
            // At most `backups` distinct servers crash: one always survives.
            let mut crashed = Vec::new();
            let crashes = crashes
                .into_iter()
                .filter_map(|(server, at, restart)| {
                    let server = server % (1 + backups as usize);
                    if crashed.contains(&server) || crashed.len() == backups as usize {
                        return None;
                    }
                    crashed.push(server);
                    Some((server, at, restart.map(|after| at + after)))
                })
                .collect();
            Case {
                seed,
                backups,
                drop_probability,
                duplicate_probability,
                latency_ms_max,
                fifo,
                slow_replies,
                crashes,
                heartbeat_ms,
                write_ms,
                timeout_ms,
                window,
                clients,
                ops_per_client,
            }
        })
}

impl Case {
    fn params(&self) -> PbParams {
        PbParams {
            backups: self.backups,
            heartbeat_ms: self.heartbeat_ms,
            detect_ms: 5 * self.heartbeat_ms,
            idle_ms: 10 * self.heartbeat_ms,
            write_ms: self.write_ms,
            timeout_ms: self.timeout_ms,
            window: self.window,
            ..PbParams::default()
        }
    }

    fn config(&self) -> SimConfig {
        let client_link = LinkConfig {
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
        // Within the fault model: server links deliver within (detect - heartbeat) / 2.
        let server_ms_max = (4 * self.heartbeat_ms) / 2;
        let mut config =
            SimConfig::new(self.seed, network(1 + self.backups as usize, client_link, server_ms_max));
        let mut last = 0;
        for &(server, at, restart) in &self.crashes {
            let node = NodeId(1 + server as u32);
            config.faults.push(ScheduledFault { at: SimTime::from_millis(at), fault: Fault::Crash(node) });
            last = last.max(at);
            if let Some(restart) = restart {
                config
                    .faults
                    .push(ScheduledFault { at: SimTime::from_millis(restart), fault: Fault::Restart(node) });
                last = last.max(restart);
            }
        }
        // Loss and duplication stop once the last fault is over (or at 1 s).
        config.heal_at = Some(SimTime::from_millis(last.max(1_000)));
        config
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

    /// Whatever the client links do, however many backups, and whichever servers crash
    /// (all but one at most, a restarted one rejoining): never two primaries, the
    /// history is linearizable, no acknowledged update is lost, and every request completes.
    #[test]
    fn primary_backup_survives_crashes_within_its_fault_model(case in cases()) {
        let (outcome, open) = simulate(&case.params(), &case.workload(), case.config(), None);
        prop_assert_eq!(&outcome, &Outcome::Pass);
        prop_assert_eq!(open, 0);
    }
}

/// One primary crash on the `unreliable` preset, servers 1-5 ms apart.
fn crash_config(seed: u64, backups: u32) -> SimConfig {
    let unreliable = NetworkConfig::preset("unreliable").expect("labrpc's preset").default;
    let mut config = SimConfig::new(seed, network(1 + backups as usize, unreliable, 5));
    config.faults = vec![ScheduledFault { at: SimTime::from_millis(150), fault: Fault::Crash(NodeId(1)) }];
    config.heal_at = Some(SimTime::from_millis(150));
    config
}

fn busy_workload() -> Workload {
    Workload { clients: 4, ops_per_client: 40, keys: 3, ..Workload::default() }
}

/// Searches seeds `0..seeds_max` for a violation of `invariant` by `buggy`, checking only
/// `only` if given; the same seed passes with `fixed`.
fn caught_within(buggy: &PbParams, fixed: &PbParams, invariant: &str, only: Option<&str>, seeds_max: u64) {
    let found = (0..seeds_max).find_map(|seed| {
        let (outcome, _) = simulate(buggy, &busy_workload(), crash_config(seed, buggy.backups), only);
        outcome.violation().cloned().map(|violation| (seed, violation))
    });
    let (seed, violation) = found.unwrap_or_else(|| panic!("no seed in 0..{seeds_max} showed {invariant}"));
    assert_eq!(violation.invariant, invariant, "seed {seed}: {}", violation.message);
    let (outcome, _) = simulate(fixed, &busy_workload(), crash_config(seed, fixed.backups), only);
    assert_eq!(outcome, Outcome::Pass, "seed {seed} with the correct variant");
}

/// The notes' test-and-set (no lock): two backups that time out together both win.
#[test]
fn the_notes_test_and_set_makes_two_primaries_within_20_seeds() {
    let buggy = PbParams { test_and_set: TestAndSetMode::NoLock, ..PbParams::default() };
    caught_within(&buggy, &PbParams::default(), SINGLE_PRIMARY, None, 20);
    // With four backups too.
    let buggy = PbParams { backups: 4, ..buggy };
    caught_within(&buggy, &PbParams { backups: 4, ..PbParams::default() }, SINGLE_PRIMARY, None, 20);
}

/// Answering before the backups acknowledge loses an acknowledged update at failover.
#[test]
fn committing_before_the_backups_loses_an_acknowledged_update_within_20_seeds() {
    let buggy = PbParams { commit: CommitMode::BeforeBackups, window: 2, ..PbParams::default() };
    let fixed = PbParams { window: 2, ..PbParams::default() };
    caught_within(&buggy, &fixed, NO_ACKNOWLEDGED_UPDATE_LOST, None, 20);
}

/// What a client sees of the lost update: a later read misses it.
#[test]
fn committing_before_the_backups_is_seen_by_kv_linearizable_within_200_seeds() {
    let buggy = PbParams { commit: CommitMode::BeforeBackups, window: 2, ..PbParams::default() };
    let fixed = PbParams { window: 2, ..PbParams::default() };
    caught_within(&buggy, &fixed, KV_LINEARIZABLE, Some(KV_LINEARIZABLE), 200);
}

/// every-request-completed can fail: with every server crashed (outside the model) calls
/// stay open.
#[test]
fn every_request_completed_fails_when_every_server_is_down() {
    let params = PbParams { backups: 1, ..PbParams::default() };
    let workload = Workload { clients: 2, ops_per_client: 5, ..Workload::default() };
    let reliable = LinkConfig::reliable(Latency::uniform_ms(1, 5));
    let mut config = SimConfig::new(3, network(2, reliable, 5));
    let crash = |ms, node| ScheduledFault { at: SimTime::from_millis(ms), fault: Fault::Crash(NodeId(node)) };
    config.faults = vec![crash(8, 1), crash(8, 2)];
    config.heal_at = Some(SimTime::from_millis(8));
    config.liveness_window = SimDuration::from_millis(2_000);
    let setup = primary_backup::setup(
        &params,
        workload.generate(&mut SimRng::new(3, Stream::Workload)),
        SimDuration::ZERO,
    );
    assert!(setup.fault_model.admits(&config.faults).is_err(), "both servers down is outside the model");
    let mut sim = Simulation::new(config, setup.n_nodes, setup.build);
    for invariant in setup.invariants {
        sim.add_invariant(invariant);
    }
    let violation = sim.run().outcome.violation().cloned().expect("a liveness failure");
    assert_eq!(violation.invariant, EVERY_REQUEST_COMPLETED);
    assert_eq!(violation.phase, Phase::Liveness);
}

/// A scenario of one client and a constant 1 ms on every link.
fn constant_latency_scenario(protocol: &str, ops: &[KvOp]) -> Scenario {
    let script = serde_json::to_string(ops).unwrap();
    let text = format!(
        r#"{{
  "name": "constant",
  "protocol": {protocol},
  "network": {{ "preset": "reliable", "all_links": {{ "latency": {{ "constant": {{ "ms": 1 }} }} }} }},
  "workload": {{ "script": [{script}] }}
}}"#
    );
    Scenario::parse("constant.json", &text).unwrap()
}

/// The latency figures on a constant 1 ms network, worked out by hand: a primary-backup
/// update is client -> primary, primary -> backups (in parallel), backups -> primary,
/// primary -> client: 4 ms; a read is 2 ms. At-most-once with a 5 ms handler: 7 ms each.
#[test]
fn latency_figures_match_a_hand_computed_case_on_a_constant_latency_network() {
    let put = |v: &str| KvOp::Put { key: "k".into(), value: v.into() };
    let get = KvOp::Get { key: "k".into() };
    let ops = [put("a"), get.clone(), put("b"), get.clone(), put("c")];

    let scenario = constant_latency_scenario(r#"{ "primary-backup": { "backups": 3 } }"#, &ops);
    let summary = runner::run(&scenario, "constant.json", None, TraceMode::HashOnly, None).unwrap();
    assert!(summary.expectation_met, "{}", summary.verdict);
    let latency = summary.client_latency.expect("a kv protocol has latency figures");
    let updates = latency.updates.expect("updates");
    let reads = latency.reads.expect("reads");
    assert_eq!((updates.count, reads.count, latency.completed, latency.gave_up), (3, 2, 5, 0));
    assert_eq!((updates.p50_ms, updates.p90_ms, updates.p99_ms, updates.max_ms), (4.0, 4.0, 4.0, 4.0));
    assert_eq!((reads.p50_ms, reads.p90_ms, reads.p99_ms, reads.max_ms), (2.0, 2.0, 2.0, 2.0));
    // One call after another: 3 x 4 + 2 x 2 = 16 ms for 5 operations.
    assert_eq!(latency.span_ms, 16.0);
    assert_eq!(latency.ops_per_s, 5.0 * 1000.0 / 16.0);

    let scenario = constant_latency_scenario(r#"{ "at-most-once": { "execute_ms": 5 } }"#, &ops);
    let summary = runner::run(&scenario, "constant.json", None, TraceMode::HashOnly, None).unwrap();
    let latency = summary.client_latency.clone().expect("a kv protocol has latency figures");
    assert_eq!(latency.updates.expect("updates").max_ms, 7.0);
    assert_eq!(latency.reads.expect("reads").p50_ms, 7.0);
    assert_eq!(latency.span_ms, 35.0);

    // The text and JSON forms carry them.
    assert!(summary.text().contains("operations per virtual second"), "{}", summary.text());
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["client_latency"]["updates"]["p99_ms"], 7.0);
}

#[test]
fn bad_primary_backup_parameters_are_reported_with_their_place() {
    let bad = |params: &str| {
        let text = format!(r#"{{ "name": "bad", "protocol": {{ "primary-backup": {params} }} }}"#);
        Scenario::parse("bad.json", &text).unwrap_err().to_string()
    };
    let err = bad(r#"{ "backups": 0 }"#);
    assert!(err.contains("protocol.primary-backup.backups") && err.contains("at least 1"), "{err}");
    let err = bad(r#"{ "backups": 100000 }"#);
    assert!(err.contains("backups") && err.contains("at most 64"), "{err}");
    let err = bad(r#"{ "heartbeat_ms": 30, "detect_ms": 40 }"#);
    assert!(err.contains("detect_ms") && err.contains("two heartbeats"), "{err}");
    let err = bad(r#"{ "test_and_set": "spin" }"#);
    assert!(err.contains("locked") && err.contains("no-lock"), "{err}");
    let err = bad(r#"{ "window": 0 }"#);
    assert!(err.contains("window"), "{err}");
}

/// Lossy or slow links between servers break the fault model (a timeout would no longer
/// mean a crash): such a run is reported outside the model, whatever it shows; links to
/// clients may do anything.
#[test]
fn lossy_or_slow_server_links_are_outside_the_fault_model() {
    let run = |network: &str| {
        let text = format!(
            r#"{{ "name": "links", "protocol": {{ "primary-backup": {{}} }}, "network": {network},
                 "faults": [{{ "crash": {{ "node": 1, "at_ms": 100 }} }}],
                 "workload": {{ "clients": 2, "ops_per_client": 10 }} }}"#
        );
        let scenario = Scenario::parse("links.json", &text).unwrap();
        let (model, _) = runner::fault_model(&scenario);
        model.admits_network(&scenario.sim_config(1, TraceMode::HashOnly).network)
    };
    let lossy = run(r#"{ "preset": "unreliable" }"#).unwrap_err();
    assert!(lossy.contains("channel n0->n1 drops messages"), "{lossy}");
    let slow = run(r#"{ "preset": "long-delays" }"#).unwrap_err();
    assert!(slow.contains("may take 7000.000ms") && slow.contains("arrives within 20.000ms"), "{slow}");
    // Reliable, fast server links and a lossy link to a client: within the model.
    let fine =
        r#"{ "preset": "reliable", "links": [{ "from": 1, "to": 4, "set": { "drop_probability": 0.5 } }] }"#;
    assert_eq!(run(fine), Ok(()));
}
