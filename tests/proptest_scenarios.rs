//! proptest over whole scenarios: network knobs, fault timelines, workloads and seeds,
//! generated for each protocol.
//!
//! Correct configurations must pass. Every known-buggy variant must be caught: for those
//! the property "no invariant fails" is expected to fail, proptest shrinks the failing
//! scenario, and the test prints it as JSON that `dsim run` runs.
//!
//! `DSIM_FUZZ_CASES` scales the number of cases (default 48) for long campaigns.

use dsim::runner;
use dsim::scenario::Scenario;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use serde_json::{json, Value};
use sim_core::{Outcome, TraceMode};

fn cases() -> u32 {
    std::env::var("DSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

/// Network knobs: latency, loss, duplication, ordering, slow messages.
fn network(lossy: bool) -> impl Strategy<Value = Value> {
    let loss = if lossy { 0.05..0.4f64 } else { 0.0..f64::MIN_POSITIVE };
    let dup = if lossy { 0.0..0.3f64 } else { 0.0..f64::MIN_POSITIVE };
    (0.0..20.0f64, 0.0..20.0f64, loss, dup, any::<bool>(), proptest::option::of(0.0..0.5f64)).prop_map(
        move |(a, b, drop, duplicate, fifo, slow)| {
            let mut links = json!({
                "latency": { "uniform": { "ms_min": a.min(b), "ms_max": a.max(b) } },
                "drop_probability": if lossy { drop } else { 0.0 },
                "duplicate_probability": if lossy { duplicate } else { 0.0 },
                "ordering": if fifo { "fifo" } else { "reorder" },
            });
            if let (true, Some(p)) = (lossy, slow) {
                links["slow"] =
                    json!({ "probability": p, "latency": { "uniform": { "ms_min": 50, "ms_max": 500 } } });
            }
            json!({ "all_links": links })
        },
    )
}

/// A fault timeline over `nodes`: optional crash-and-restart of one of `crashable`, and an
/// optional partition (symmetric or one way), all within the first two seconds.
fn faults(crashable: Vec<u32>, nodes: u32) -> impl Strategy<Value = Value> {
    let crash = proptest::option::of((proptest::sample::select(crashable), 0.0..2000.0f64, 1.0..1000.0f64));
    let partition = proptest::option::of((0u32..nodes, 0.0..2000.0f64, 1.0..1000.0f64, any::<bool>()));
    (crash, partition).prop_map(move |(crash, partition)| {
        let mut out = Vec::new();
        if let Some((node, at, down)) = crash {
            out.push(json!({ "crash": { "node": node, "at_ms": at } }));
            out.push(json!({ "restart": { "node": node, "at_ms": at + down } }));
        }
        if let Some((alone, at, length, symmetric)) = partition {
            let rest: Vec<u32> = (0..nodes).filter(|n| *n != alone).collect();
            out.push(if symmetric {
                json!({ "partition": { "groups": [[alone], rest], "at_ms": at, "until_ms": at + length } })
            } else {
                json!({ "partition-one-way": { "from": [alone], "to": rest, "at_ms": at, "until_ms": at + length } })
            });
        }
        Value::Array(out)
    })
}

fn kv_workload() -> impl Strategy<Value = Value> {
    (1u32..4, 1u32..12, 1u32..3)
        .prop_map(|(clients, ops, keys)| json!({ "clients": clients, "ops_per_client": ops, "keys": keys }))
}

/// Runs a generated scenario; `Err` with the runnable scenario when an invariant fails.
fn check(mut scenario: Value, seed: u64) -> Result<(), TestCaseError> {
    scenario["name"] = json!("proptest");
    scenario["seed"] = json!(seed);
    let text = serde_json::to_string_pretty(&scenario).unwrap();
    let parsed = Scenario::parse("proptest.json", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let run = runner::simulate(&parsed, seed, TraceMode::HashOnly, None).unwrap();
    if run.outside_fault_model.is_some() {
        return Err(TestCaseError::reject("outside the fault model"));
    }
    match &run.report.outcome {
        Outcome::Violation(v) => {
            scenario["expect"] = json!({ "violation": v.invariant });
            let runnable = serde_json::to_string_pretty(&scenario).unwrap();
            Err(TestCaseError::fail(format!("{} at step {}\n{runnable}", v.invariant, v.step)))
        }
        _ => Ok(()),
    }
}

/// A runner with a fixed seed: the same cases on every run, so CI never depends on luck.
/// `DSIM_FUZZ_CASES` widens the search.
fn deterministic(cases: u32) -> TestRunner {
    let rng = proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha);
    TestRunner::new_with_rng(Config { cases, ..Config::default() }, rng)
}

/// Runs the property over `strategy`; a failure is a bug.
fn must_pass<S: Strategy<Value = (Value, u64)>>(strategy: S) {
    let mut runner = deterministic(cases());
    if let Err(err) = runner.run(&strategy, |(scenario, seed)| check(scenario, seed)) {
        panic!("a correct configuration failed: {err}");
    }
}

/// Runs the property over `strategy`, which must fail with `invariant`; prints the shrunk
/// case as a runnable scenario.
fn must_catch<S: Strategy<Value = (Value, u64)>>(variant: &str, invariant: &str, strategy: S) {
    let mut runner = deterministic(cases().max(64));
    match runner.run(&strategy, |(scenario, seed)| check(scenario, seed)) {
        Err(TestError::Fail(reason, _)) => {
            let reason = reason.to_string();
            assert!(reason.starts_with(invariant), "{variant}: expected {invariant}, got {reason}");
            let runnable = &reason[reason.find('\n').unwrap() + 1..];
            // The shrunk case is a scenario dsim runs, and it fails as expected.
            let scenario = Scenario::parse("shrunk.json", runnable).unwrap();
            let summary = runner::run(&scenario, "shrunk.json", None, TraceMode::HashOnly, None).unwrap();
            assert!(summary.expectation_met, "{variant}: the shrunk scenario does not reproduce");
            println!("{variant}: caught {invariant}; shrunk scenario (dsim run it):\n{runnable}\n");
        }
        Err(other) => panic!("{variant}: {other}"),
        Ok(()) => panic!("{variant}: no generated scenario caught {invariant}"),
    }
}

#[test]
fn best_effort_rpc_on_a_reliable_network_passes_with_client_faults() {
    let scenario = (network(false), kv_workload()).prop_flat_map(|(network, workload)| {
        let clients = workload["clients"].as_u64().unwrap() as u32;
        (Just(network), Just(workload), faults((1..=clients).collect(), clients + 1), any::<u64>())
    });
    must_pass(scenario.prop_map(|(network, workload, faults, seed)| {
        let faults: Vec<Value> = faults.as_array().unwrap().iter().filter(|f| f.get("crash").is_some() || f.get("restart").is_some()).cloned().collect();
        (json!({ "protocol": { "rpc": { "timeout_ms": 100 } }, "network": network, "workload": workload, "faults": faults }), seed)
    }));
}

#[test]
fn best_effort_rpc_under_loss_is_caught_executing_twice() {
    let scenario = (network(true), kv_workload(), any::<u64>()).prop_map(|(network, workload, seed)| {
        (
            json!({ "protocol": { "rpc": { "timeout_ms": 30 } }, "network": network, "workload": workload }),
            seed,
        )
    });
    must_catch("rpc (best effort) under loss", "executed-at-most-once", scenario);
}

#[test]
fn best_effort_rpc_under_loss_is_caught_by_clients() {
    let scenario = (network(true), kv_workload(), any::<u64>()).prop_map(|(network, workload, seed)| {
        let protocol = json!({ "rpc": { "timeout_ms": 10, "retries_max": 6 } });
        (json!({ "protocol": protocol, "network": network, "workload": workload, "invariants": ["kv-linearizable"] }), seed)
    });
    must_catch("rpc (best effort): the lecture's anomaly", "kv-linearizable", scenario);
}

/// The protocol section (and invariant selection) of a bundled scenario, under generated
/// networks and seeds.
fn variant_of(
    file: &str,
    lossy: bool,
    with_faults: Option<(Vec<u32>, u32)>,
) -> impl Strategy<Value = (Value, u64)> {
    let base: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let faults = match with_faults {
        Some((crashable, nodes)) => faults(crashable, nodes).boxed(),
        None => Just(json!([])).boxed(),
    };
    (network(lossy), faults, any::<u64>()).prop_map(move |(network, faults, seed)| {
        let mut scenario = json!({ "protocol": base["protocol"], "network": network, "faults": faults });
        for field in ["workload", "invariants", "physical_clocks"] {
            if let Some(value) = base.get(field) {
                scenario[field] = value.clone();
            }
        }
        (scenario, seed)
    })
}

#[test]
fn exactly_once_rpc_passes_across_server_crashes() {
    let base = "scenarios/at-most-once/crash-restart-durable.json";
    must_pass(variant_of(base, true, Some((vec![0], 3))).prop_map(|(mut scenario, seed)| {
        // Keep only crashes of the server: clients are outside this protocol's fault model.
        scenario["workload"] = json!({ "clients": 2, "ops_per_client": 8, "keys": 2 });
        (scenario, seed)
    }));
}

#[test]
fn at_most_once_buggy_variants_are_caught() {
    must_catch(
        "at-most-once, dedup off",
        "kv-linearizable",
        variant_of("scenarios/at-most-once/dedup-off.json", true, None),
    );
    must_catch(
        "at-most-once, table in memory across a crash",
        "executed-at-most-once",
        variant_of("scenarios/at-most-once/crash-restart-memory.json", true, Some((vec![0], 3))),
    );
    must_catch(
        "at-most-once, discard without acks",
        "cache-bounded",
        variant_of("scenarios/at-most-once/discard-without-acks.json", false, None),
    );
    must_catch(
        "at-most-once, client accepts any reply",
        "reply-matches-request",
        variant_of("scenarios/at-most-once/accept-any-reply.json", true, None),
    );
}

#[test]
fn correct_clocks_pass_and_the_notes_variants_are_caught() {
    must_pass(variant_of("scenarios/clocks/vector-10.json", true, None));
    must_pass(variant_of("scenarios/clocks/lamport-10.json", true, None));
    must_catch(
        "vector clocks, the notes' receive rule",
        "vector-clock-exact",
        variant_of("scenarios/clocks/vector-receive-notes.json", true, None),
    );
    must_catch(
        "vector clocks, the notes' order",
        "vector-clock-exact",
        variant_of("scenarios/clocks/vector-order-notes.json", true, None),
    );
    must_catch(
        "ordering by skewed physical clocks",
        "physical-clock-condition",
        variant_of("scenarios/clocks/physical-skew.json", true, None),
    );
}
