//! Chandy-Lamport snapshots, end to end: every bundled snapshot scenario meets its
//! expectation; on reliable FIFO channels every snapshot over any strongly connected
//! topology completes, conserves money and is a consistent cut with exact channel states;
//! each broken assumption of the network and each buggy variant is caught within a
//! bounded number of seeds; a topology that is not strongly connected is bad input.
//! `DSIM_FUZZ_CASES` scales the proptests (default 64).

mod common;

use dsim::runner::{self, Summary};
use dsim::scenario::Scenario;
use proptest::prelude::*;
use protocols::snapshot::invariants::{
    SNAPSHOT_IS_CONSISTENT_CUT, SNAPSHOT_ONE_MARKER_PER_CHANNEL, SNAPSHOT_RECORDS_ONCE, SNAPSHOT_TERMINATES,
};
use serde_json::{json, Value};
use sim_core::{Outcome, TraceMode};

#[test]
fn every_snapshots_scenario_meets_its_expectation_twice_alike() {
    common::folder_meets_expectations("snapshots", 8);
}

/// A scenario of `protocol` from parts (all invariants unless `invariants` names some).
fn scenario(
    protocol: &str,
    params: Value,
    network: Value,
    invariants: Option<&[&str]>,
    seed: u64,
) -> Scenario {
    let mut value = json!({
        "name": "snapshots/generated",
        "protocol": { protocol: params },
        "network": network,
        "limits": { "end_at_ms": 2_000 },
        "seed": seed,
    });
    if let Some(names) = invariants {
        value["invariants"] = json!(names);
    }
    let text = value.to_string();
    Scenario::parse("generated.json", &text).unwrap_or_else(|err| panic!("{err}\n{text}"))
}

fn run(scenario: &Scenario) -> Summary {
    runner::run(scenario, "generated.json", None, TraceMode::HashOnly, None).expect("runs")
}

fn fifo(min_ms: u64, spread_ms: u64) -> Value {
    json!({ "all_links": {
        "latency": { "uniform": { "ms_min": min_ms, "ms_max": min_ms + spread_ms } },
        "ordering": "fifo",
    }})
}

/// A strongly connected topology of `n` processes: a named one, or a random cycle through
/// every process (which alone makes it strongly connected) with random extra channels.
fn topology() -> impl Strategy<Value = (u32, Value)> {
    (2u32..9).prop_flat_map(|n| {
        let named = prop::sample::select(vec!["complete", "ring", "bidirectional-ring", "star"])
            .prop_map(move |name| (n, json!(name)));
        let edges =
            (Just((0..n).collect::<Vec<u32>>()).prop_shuffle(), prop::collection::vec((0..n, 0..n), 0..12))
                .prop_map(move |(order, extra)| {
                    let mut edges: std::collections::BTreeSet<(u32, u32)> =
                        (0..n as usize).map(|i| (order[i], order[(i + 1) % n as usize])).collect();
                    edges.extend(extra.into_iter().filter(|(a, b)| a != b));
                    let list: Vec<[u32; 2]> = edges.into_iter().map(|(a, b)| [a, b]).collect();
                    (n, json!({ "edges": list }))
                });
        prop_oneof![named, edges]
    })
}

/// 1 to 4 snapshots with distinct ids, 1 to 3 initiators each, at random times.
fn snapshots(n: u32) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::collection::btree_set(0..n, 1..4), 0u64..80), 1..5).prop_map(|list| {
        let specs: Vec<Value> = list
            .into_iter()
            .enumerate()
            .map(|(id, (initiators, at_ms))| json!({ "id": id, "initiators": initiators, "at_ms": at_ms }))
            .collect();
        json!(specs)
    })
}

fn bank() -> impl Strategy<Value = Value> {
    topology().prop_flat_map(|(n, topology)| {
        (snapshots(n), 0u64..4, 0u64..15, 1u32..25, 1u64..500).prop_map(
            move |(snapshots, min, spread, transfers, balance)| {
                json!({
                    "processes": n,
                    "topology": topology.clone(),
                    "initial_balance": balance,
                    "transfer_interval_ms_min": min,
                    "transfer_interval_ms_max": min + spread,
                    "transfers_per_process": transfers,
                    "snapshots": snapshots,
                })
            },
        )
    })
}

/// Proptest cases: `DSIM_FUZZ_CASES` (default 64) for a longer campaign.
fn cases() -> u32 {
    std::env::var("DSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// On reliable FIFO channels every snapshot completes (each is assembled), conserves
    /// money, and is a consistent cut of the true happens-before with exact channel states.
    #[test]
    fn on_reliable_fifo_channels_every_snapshot_completes_and_is_exact(
        params in bank(), min in 0u64..5, spread in 0u64..20, seed in 0u64..1_000,
    ) {
        let planned = params["snapshots"].as_array().map_or(0, Vec::len);
        let summary = run(&scenario("snapshot-bank", params, fifo(min, spread), None, seed));
        prop_assert_eq!(&summary.outcome, &Outcome::Pass, "{}", summary.text());
        let assembled = summary.protocol_report.as_ref().and_then(Value::as_array).map_or(0, Vec::len);
        prop_assert_eq!(assembled, planned, "{}", summary.text());
    }

    /// The same for the ping load (symmetric topologies: a pong goes back).
    #[test]
    fn snapshots_of_the_ping_load_pass_on_reliable_fifo_channels(
        n in 2u32..8, in_flight in 1u32..4, topology in prop::sample::select(vec!["complete", "bidirectional-ring", "star"]),
        snapshots in snapshots(2), seed in 0u64..1_000,
    ) {
        let params = json!({ "processes": n, "in_flight": in_flight, "topology": topology, "snapshots": snapshots });
        let summary = run(&scenario("snapshot-ping", params, fifo(1, 9), None, seed));
        prop_assert_eq!(&summary.outcome, &Outcome::Pass, "{}", summary.text());
    }
}

/// A busy bank: five processes on a complete graph, paying every 1-3 ms.
fn busy_bank() -> Value {
    json!({
        "processes": 5,
        "topology": "complete",
        "initial_balance": 100,
        "transfer_interval_ms_min": 1,
        "transfer_interval_ms_max": 3,
        "transfers_per_process": 40,
        "snapshots": [{ "id": 1, "initiators": [0], "at_ms": 20 }, { "id": 2, "initiators": [2, 3], "at_ms": 40 }],
    })
}

/// The first seed below `seeds_max` whose run violates `invariant`, with the run.
fn caught_within(
    params: &Value,
    network: &Value,
    invariants: Option<&[&str]>,
    invariant: &str,
    seeds_max: u64,
) -> Option<(u64, Summary)> {
    (0..seeds_max).find_map(|seed| {
        let summary = run(&scenario("snapshot-bank", params.clone(), network.clone(), invariants, seed));
        let caught = summary.outcome.violation().is_some_and(|v| v.invariant == invariant);
        caught.then_some((seed, summary))
    })
}

fn message(summary: &Summary) -> &str {
    &summary.outcome.violation().expect("a violation").message
}

#[test]
fn each_buggy_variant_is_caught_by_name_within_a_few_seeds() {
    let mut none = busy_bank();
    none["record_channel"] = json!("none");
    let (_, summary) = caught_within(&none, &fifo(1, 9), None, "snapshot-conserves-money", 10)
        .expect("record_channel none loses money in flight");
    assert!(message(&summary).contains("missing"), "{}", message(&summary));
    assert!(summary.outside_fault_model.is_none(), "a reliable FIFO network is inside the model");

    let mut again = busy_bank();
    again["on_marker"] = json!("record-every-time");
    let (_, summary) = caught_within(&again, &fifo(1, 9), None, SNAPSHOT_RECORDS_ONCE, 5)
        .expect("recording at every marker is caught");
    assert!(message(&summary).contains("a second time"), "{}", message(&summary));

    let mut late = busy_bank();
    late["marker_delay_ms"] = json!(2);
    let (_, summary) = caught_within(&late, &fifo(1, 9), None, SNAPSHOT_ONE_MARKER_PER_CHANNEL, 5)
        .expect("late markers are caught");
    assert!(message(&summary).contains("right after"), "{}", message(&summary));
    // Late markers let later transfers into channel states: the cut checker sees it too.
    let cut_only = [SNAPSHOT_IS_CONSISTENT_CUT];
    caught_within(&late, &fifo(1, 9), Some(&cut_only), SNAPSHOT_IS_CONSISTENT_CUT, 20)
        .expect("late markers make an inconsistent snapshot");
}

/// The network with one channel, n1->n0, changed by `knob`.
fn one_bad_channel(knob: Value) -> Value {
    let mut network = fifo(1, 9);
    network["links"] = json!([{ "from": 1, "to": 0, "set": knob }]);
    network
}

#[test]
fn each_broken_assumption_is_caught_and_named_within_a_bounded_number_of_seeds() {
    let cases = [
        (json!({ "ordering": "reorder" }), SNAPSHOT_IS_CONSISTENT_CUT, "assumes FIFO channels"),
        (
            json!({ "duplicate_probability": 0.3 }),
            SNAPSHOT_IS_CONSISTENT_CUT,
            "assumes no message is duplicated",
        ),
        (json!({ "drop_probability": 0.3 }), SNAPSHOT_IS_CONSISTENT_CUT, "assumes no message is lost"),
        (json!({ "drop_probability": 0.3 }), SNAPSHOT_TERMINATES, "assumes no message is lost"),
    ];
    for (knob, invariant, assumption) in cases {
        let network = one_bad_channel(knob.clone());
        let only = [invariant];
        let (_, summary) = caught_within(&busy_bank(), &network, Some(&only), invariant, 30)
            .unwrap_or_else(|| panic!("{knob} is not caught by {invariant} in 30 seeds"));
        let outside = summary.outside_fault_model.as_deref().expect("reported outside the model");
        assert!(outside.contains("channel n1->n0") && outside.contains(assumption), "{outside}");
        let text = summary.text();
        assert!(text.contains("OUTSIDE the model: channel n1->n0"), "{text}");
    }
}

#[test]
fn a_topology_that_is_not_strongly_connected_is_bad_input_naming_a_pair() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("snapshot-not-strongly-connected.json");
    let text = json!({
        "name": "bad",
        "protocol": { "snapshot-bank": { "processes": 3, "topology": { "edges": [[0, 1], [1, 2], [2, 1]] } } },
    });
    std::fs::write(&file, text.to_string()).unwrap();
    let out = common::dsim(&["run", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains("protocol.snapshot-bank.topology"), "{stderr}");
    assert!(stderr.contains("no path of channels leads from n1 to n0"), "{stderr}");

    let ring = r#"{ "name": "bad", "protocol": { "snapshot-ping": { "topology": "ring" } } }"#;
    let err = Scenario::parse("bad.json", ring).expect_err("a ping needs the channel back").to_string();
    assert!(err.contains("has no reverse"), "{err}");
    let out_of_range =
        r#"{ "name": "bad", "protocol": { "snapshot-bank": { "topology": { "edges": [[0, 5]] } } } }"#;
    let err = Scenario::parse("bad.json", out_of_range).expect_err("no process 5").to_string();
    assert!(err.contains("topology.edges[0]") && err.contains("process 5 does not exist"), "{err}");
    let twice = r#"{ "name": "bad", "protocol": { "snapshot-bank": { "snapshots": [{ "id": 1, "initiators": [0], "at_ms": 5 }, { "id": 1, "initiators": [1], "at_ms": 9 }] } } }"#;
    let err = Scenario::parse("bad.json", twice).expect_err("id used twice").to_string();
    assert!(err.contains("snapshots[1].id") && err.contains("used twice"), "{err}");
}

#[test]
fn dsim_run_prints_each_snapshot_and_json_includes_it_and_markers_show_in_exports() {
    let out = common::dsim(&["run", "scenarios/snapshots/notes-3.json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("snapshots:\nsnapshot 1: assembled at n0"), "{text}");
    assert!(text.contains("balance") && text.contains("n2->n0: transfer"), "{text}");

    let out = common::dsim(&["run", "scenarios/snapshots/complete-20.json", "--format", "json"]);
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let snapshots = summary["protocol_report"].as_array().expect("the snapshots");
    assert_eq!(snapshots.len(), 5);
    let third = &snapshots[2];
    assert_eq!(third["id"], json!(3));
    assert_eq!(third["held_by"], json!([3, 17]), "both initiators assembled snapshot 3");
    assert_eq!(third["processes"].as_array().map(Vec::len), Some(20));
    let total: u64 = third["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"]["balance"].as_u64().unwrap())
        .sum::<u64>()
        + third["channels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["messages"].as_array().unwrap().iter())
            .map(|m| m["amount"].as_u64().unwrap())
            .sum::<u64>();
    assert_eq!(total, 20_000);

    let out = common::dsim(&["run", "scenarios/snapshots/notes-3.json", "--explain-clocks"]);
    assert_eq!(out.status.code(), Some(0));
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let shiviz = dir.join("snapshot-notes-3.shiviz");
    let out =
        common::dsim(&["run", "scenarios/snapshots/notes-3.json", "--shiviz", shiviz.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let log = std::fs::read_to_string(&shiviz).unwrap();
    assert!(log.contains("Marker { snapshot: SnapshotId(1) }"), "markers are messages in the ShiViz log");
}
