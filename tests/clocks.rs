//! The clocks protocol and the ground-truth causal exports, end to end: every bundled
//! clocks scenario meets its expectation; correct clocks never fail under arbitrary
//! workloads and networks; each of the notes' wrong rules is caught within a few seeds;
//! the ShiViz export obeys ShiViz's rules and agrees with the trace's message edges.

use dsim::runner::{self, CausalExports, TraceSink};
use dsim::scenario::Scenario;
use proptest::prelude::*;
use protocols::clocks::{ClocksParams, LAMPORT_CLOCK_CONDITION, LAMPORT_TOTAL_ORDER, VECTOR_CLOCK_EXACT};
use protocols::logical_clocks::{VectorOrder, VectorReceive};
use serde_json::{json, Value};
use sim_core::{Outcome, TraceMode};
use std::collections::BTreeMap;

mod common;

#[test]
fn every_clocks_scenario_meets_its_expectation_twice_alike() {
    common::folder_meets_expectations("clocks", 9);
}

/// A scenario of the clocks protocol, from parts.
fn clocks_scenario(
    params: Value,
    network: Value,
    physical: Value,
    invariants: &[&str],
    seed: u64,
) -> Scenario {
    let text = json!({
        "name": "clocks/generated",
        "protocol": { "clocks": params },
        "network": network,
        "physical_clocks": physical,
        "invariants": invariants,
        "seed": seed,
    })
    .to_string();
    Scenario::parse("generated.json", &text).unwrap_or_else(|err| panic!("{err}\n{text}"))
}

fn outcome(scenario: &Scenario) -> Outcome {
    runner::run(scenario, "generated.json", None, TraceMode::HashOnly, None).expect("runs").outcome
}

fn workload() -> impl Strategy<Value = Value> {
    (2u32..7, 1u32..8, 0u64..4, 0u64..20, (0u32..3, 0u32..3, 0u32..3)).prop_map(
        |(processes, actions, min, spread, (local, send, broadcast))| {
            let local = if local + send + broadcast == 0 { 1 } else { local };
            json!({
                "processes": processes,
                "actions_per_process": actions,
                "interval_ms_min": min,
                "interval_ms_max": min + spread,
                "local_weight": local,
                "send_weight": send,
                "broadcast_weight": broadcast,
            })
        },
    )
}

fn network() -> impl Strategy<Value = Value> {
    (0u32..5, 0u32..40, 0u32..30, 0u32..40, prop::bool::ANY).prop_map(|(min, spread, drop, dup, fifo)| {
        json!({ "all_links": {
            "latency": { "uniform": { "ms_min": min, "ms_max": min + spread } },
            "drop_probability": f64::from(drop) / 100.0,
            "duplicate_probability": f64::from(dup) / 100.0,
            "ordering": if fifo { "fifo" } else { "reorder" },
        }})
    })
}

fn physical() -> impl Strategy<Value = Value> {
    (0u32..50, 0u32..1_000).prop_map(|(skew, drift)| json!({ "skew_ms_max": skew, "drift_ppm_max": drift }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Correct Lamport and vector clocks never violate, whatever the workload, the network
    /// (loss, duplication, reordering, zero latency) and the physical clocks.
    #[test]
    fn correct_clocks_never_violate(params in workload(), net in network(), clocks in physical(), seed in 0u64..1_000) {
        let invariants = [LAMPORT_CLOCK_CONDITION, LAMPORT_TOTAL_ORDER, VECTOR_CLOCK_EXACT];
        let scenario = clocks_scenario(params, net, clocks, &invariants, seed);
        prop_assert_eq!(outcome(&scenario), Outcome::Pass);
    }
}

/// The first seed in `0..seeds_max` on which the variant is caught, with its message.
fn caught_within(
    mut params: Value,
    variant: (&str, &str),
    net: &Value,
    seeds_max: u64,
) -> Option<(u64, String)> {
    params[variant.0] = json!(variant.1);
    (0..seeds_max).find_map(|seed| {
        let scenario = clocks_scenario(params.clone(), net.clone(), json!({}), &[VECTOR_CLOCK_EXACT], seed);
        match outcome(&scenario) {
            Outcome::Violation(v) if v.invariant == VECTOR_CLOCK_EXACT => Some((seed, v.message)),
            Outcome::Pass => None,
            other => panic!("unexpected outcome {other:?}"),
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Each of the notes' rules is caught within 10 seeds, for any workload that sends
    /// (the receive rule needs a message) and any network that loses at most 30%.
    #[test]
    fn notes_variants_are_caught(params in workload(), net in network()) {
        let order = caught_within(params.clone(), ("vector_order", "notes"), &net, 10);
        let (_, message) = order.expect("the notes' order is caught");
        prop_assert!(message.contains("notes' order"), "{}", message);

        let sends = params["send_weight"].as_u64().unwrap_or(0) + params["broadcast_weight"].as_u64().unwrap_or(0);
        if sends > 0 {
            let mut busy = params.clone();
            busy["actions_per_process"] = json!(8);
            let receive = caught_within(busy, ("vector_receive", "notes"), &net, 10);
            let (_, message) = receive.expect("the notes' receive rule is caught");
            prop_assert!(message.contains("receive"), "{}", message);
        }
    }
}

#[test]
fn notes_variants_are_named_in_params() {
    let scenario = clocks_scenario(
        json!({ "vector-receive": "notes", "vector-order": "notes" }),
        json!({}),
        json!({}),
        &["vector-clock-exact"],
        0,
    );
    assert_eq!(scenario.protocol.name, "clocks");
    let params: ClocksParams = serde_json::from_value(scenario.protocol.params.clone()).unwrap();
    assert_eq!(
        &params,
        &ClocksParams {
            vector_receive: VectorReceive::Notes,
            vector_order: VectorOrder::Notes,
            ..ClocksParams::default()
        }
    );
}

#[test]
fn bad_clock_settings_name_the_field_and_place() {
    let text = r#"{
  "name": "bad",
  "protocol": { "clocks": { "processes": 3 } },
  "physical_clocks": { "nodes": [ { "node": 7, "offset_ms": 5 } ] }
}"#;
    let err = Scenario::parse("bad.json", text).expect_err("node 7 does not exist").to_string();
    assert_eq!(
        err,
        "bad.json:4:45: physical_clocks.nodes[0].node: node 7 does not exist: valid nodes are 0..=2 (0..=2 are processes)"
    );
    let text = r#"{ "name": "bad", "protocol": { "clocks": { "processes": 3, "interval_ms_min": 9, "interval_ms_max": 2 } } }"#;
    let err = Scenario::parse("bad.json", text).expect_err("min above max").to_string();
    assert!(
        err.contains("protocol.clocks.interval_ms_min: interval_ms_min (9) is above interval_ms_max (2)"),
        "{err}"
    );
    let text = r#"{ "name": "bad", "protocol": { "clocks": { "vector_order": "strict" } } }"#;
    let err = Scenario::parse("bad.json", text).expect_err("no such order").to_string();
    assert!(err.contains("unknown variant `strict`, expected `correct` or `notes`"), "{err}");
    let text =
        r#"{ "name": "bad", "protocol": { "ping": {} }, "physical_clocks": { "drift_ppm_max": 200000 } }"#;
    let err = Scenario::parse("bad.json", text).expect_err("too much drift").to_string();
    assert!(err.contains("physical_clocks.drift_ppm_max: 200000 ppm is too much drift"), "{err}");
}

/// Runs a bundled scenario with a full JSON-lines trace and a ShiViz export.
fn trace_and_shiviz(file: &str) -> (Vec<Value>, String) {
    let path = dsim::scenarios_dir().join(file);
    let scenario = Scenario::load(&path).expect("loads");
    let (mut trace, mut shiviz) = (Vec::new(), Vec::new());
    let exports = CausalExports { shiviz: Some(&mut shiviz), ..CausalExports::default() };
    let sink = Some(TraceSink::JsonLines(&mut trace));
    runner::run_with_exports(&scenario, file, None, TraceMode::Full, sink, exports).expect("runs");
    let records = String::from_utf8(trace)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON record"))
        .collect();
    (records, String::from_utf8(shiviz).expect("utf-8"))
}

/// Parses a ShiViz log into (host, clock, event text) entries, checking its frame.
fn parse_shiviz(log: &str) -> Vec<(String, BTreeMap<String, u64>, String)> {
    let mut lines = log.lines();
    assert_eq!(lines.next(), Some(r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)"), "the regex line");
    assert_eq!(lines.next(), Some(""), "the delimiter line: empty, one execution");
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest.len() % 2, 0, "each event takes two lines");
    rest.chunks(2)
        .map(|pair| {
            let (host, clock) = pair[0].split_once(' ').expect("host, a space, then the clock");
            assert!(!host.is_empty() && !host.contains(char::is_whitespace));
            let clock: BTreeMap<String, u64> =
                serde_json::from_str(clock).expect("the clock is a JSON object");
            assert!(!pair[1].contains('\n'));
            (host.to_string(), clock, pair[1].to_string())
        })
        .collect()
}

/// The vector clock of every node event, recomputed from the trace alone: its order of
/// events and its message edges (send, duplicate, deliver by message id).
fn clocks_from_trace(records: &[Value], n_nodes: usize) -> Vec<(String, Vec<u64>)> {
    let mut current = vec![vec![0u64; n_nodes]; n_nodes];
    let mut sent: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut out = Vec::new();
    let tick = |node: usize, current: &mut Vec<Vec<u64>>, out: &mut Vec<(String, Vec<u64>)>| {
        current[node][node] += 1;
        out.push((format!("n{node}"), current[node].clone()));
    };
    for record in records {
        let node = |field: &str| record[field].as_u64().expect("a node id") as usize;
        match record["event"].as_str().expect("an event kind") {
            "start" | "restart" | "timer-fire" | "local" => tick(node("node"), &mut current, &mut out),
            "send" => {
                tick(node("from"), &mut current, &mut out);
                let clock = current[node("from")].clone();
                sent.insert(record["msg_id"].as_u64().expect("an id"), clock);
            }
            "duplicate" => {
                let clock = sent[&record["msg_id"].as_u64().expect("an id")].clone();
                sent.insert(record["copy_id"].as_u64().expect("an id"), clock);
            }
            "deliver" => {
                let to = node("to");
                let message = &sent[&record["msg_id"].as_u64().expect("an id")];
                for (mine, theirs) in current[to].iter_mut().zip(message) {
                    *mine = (*mine).max(*theirs);
                }
                tick(to, &mut current, &mut out);
            }
            _ => {}
        }
    }
    out
}

fn check_shiviz_rules(file: &str, n_nodes: usize) {
    let (records, log) = trace_and_shiviz(file);
    let entries = parse_shiviz(&log);
    assert!(entries.len() > 10, "{file}: a real run");
    // Each host's own entry starts at 1 and rises by exactly 1 per event; a host appears
    // in its own clock; every entry names a host that exists.
    let mut own: BTreeMap<&str, u64> = BTreeMap::new();
    for (host, clock, _) in &entries {
        let previous = own.entry(host).or_insert(0);
        assert_eq!(clock.get(host.as_str()).copied(), Some(*previous + 1), "{file}: {host} {clock:?}");
        *previous += 1;
        for (other, &value) in clock {
            let index: usize = other.strip_prefix('n').and_then(|i| i.parse().ok()).expect("a host name");
            assert!(index < n_nodes && value > 0, "{file}: {other}={value}");
        }
    }
    // The clocks recomputed from the trace's message edges equal the exported ones.
    let recomputed = clocks_from_trace(&records, n_nodes);
    assert_eq!(recomputed.len(), entries.len(), "{file}: one ShiViz event per node event");
    for ((host, clock, text), (expected_host, expected)) in entries.iter().zip(&recomputed) {
        assert_eq!(host, expected_host, "{file}: {text}");
        let dense: Vec<u64> =
            (0..n_nodes).map(|k| clock.get(&format!("n{k}")).copied().unwrap_or(0)).collect();
        assert_eq!(&dense, expected, "{file}: {host} {text}");
    }
}

#[test]
fn shiviz_export_follows_shiviz_rules_for_any_protocol() {
    // The clocks workload (local events, broadcasts, duplicates) and best-effort RPC
    // (timers, re-sends, loss), which knows nothing of clocks.
    check_shiviz_rules("clocks/vector-10.json", 10);
    check_shiviz_rules("rpc/duplicate-execution.json", 3);
}

#[test]
fn tracking_causality_does_not_change_the_run() {
    for file in ["rpc/duplicate-execution.json", "clocks/physical-skew.json"] {
        let scenario = Scenario::load(&dsim::scenarios_dir().join(file)).expect("loads");
        let plain = runner::run(&scenario, file, None, TraceMode::HashOnly, None).expect("runs");
        let mut shiviz = Vec::new();
        let exports = CausalExports { shiviz: Some(&mut shiviz), ..CausalExports::default() };
        let tracked = runner::run_with_exports(&scenario, file, None, TraceMode::HashOnly, None, exports)
            .expect("runs");
        assert_eq!(plain.trace_hash, tracked.trace_hash, "{file}");
        assert!(!shiviz.is_empty());
    }
}

#[test]
fn explain_and_dot_show_the_stamps() {
    let path = dsim::scenarios_dir().join("clocks/vector-order-notes.json");
    let scenario = Scenario::load(&path).expect("loads");
    let (mut explain, mut dot) = (Vec::new(), Vec::new());
    let exports =
        CausalExports { explain: Some(&mut explain), dot: Some(&mut dot), ..CausalExports::default() };
    runner::run_with_exports(&scenario, "x", None, TraceMode::Recent(20), None, exports).expect("runs");
    let explain = String::from_utf8(explain).expect("utf-8");
    assert!(explain.lines().next().expect("a header").contains("lamport"), "{explain}");
    assert!(explain.contains("n1:2"), "{explain}");
    assert!(explain.contains("[0,2,0]"), "{explain}");
    let dot = String::from_utf8(dot).expect("utf-8");
    assert!(dot.starts_with("digraph {"), "{dot}");
    assert!(dot.contains("n1:2 L2 [0,2,0]"), "{dot}");
}
