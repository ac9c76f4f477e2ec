//! Verdicts a user can trust: correct configurations pass on every seed, with every check
//! decided; "undecided" is an outcome of its own; liveness tells a slow run from a stuck
//! one; the fault model says what each invariant assumes; messages say what happened.
//!
//! The campaign runs a few hundred seeds of each configuration by default, and
//! `DSIM_FUZZ_CASES` seeds each when set (thousands for a long campaign).

use dsim::fuzz::{self, FuzzOptions};
use dsim::runner::{self, Summary};
use dsim::scenario::{Expect, Scenario};
use serde_json::{json, Value};
use sim_core::{Outcome, Phase, TraceMode};
use std::path::Path;

mod common;
use common::dsim;

fn seeds_per_configuration() -> u64 {
    std::env::var("DSIM_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(200)
}

fn bundled(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn scenario(value: &Value) -> Scenario {
    dsim::scenario::parse_json::<Scenario>("test", &value.to_string()).unwrap()
}

fn campaign(scenario: &Scenario, seeds: u64) -> fuzz::FuzzReport {
    campaign_with(scenario, seeds, false)
}

/// Every seed of `0..seeds` on 2 jobs, with or without swarm knobs.
fn campaign_with(scenario: &Scenario, seeds: u64, swarm: bool) -> fuzz::FuzzReport {
    let options = FuzzOptions {
        seeds: format!("0..{seeds}").parse().unwrap(),
        shard: None,
        jobs: 2,
        swarm,
        keep_going: true,
        progress: false,
    };
    fuzz::campaign(scenario, &scenario.name, &options)
}

fn run(value: &Value) -> Summary {
    runner::run(&scenario(value), "test", None, TraceMode::Recent(20), None).unwrap()
}

/// Variations of the correct at-most-once configuration over its parameters: window 1, 2
/// and 4, retries unbounded and finite, every network preset, a partition that heals.
fn at_most_once_variations() -> Vec<Value> {
    let base = bundled("scenarios/at-most-once/unreliable.json");
    let mut all = Vec::new();
    for window in [1, 2, 4] {
        for retries in [Value::Null, json!(2)] {
            for preset in [
                Value::Null,
                json!("reliable"),
                json!("unreliable"),
                json!("long-reordering"),
                json!("long-delays"),
            ] {
                let mut v = base.clone();
                v["name"] = json!(format!("amo w{window} r{retries} {preset}"));
                v["protocol"]["at-most-once"]["window"] = json!(window);
                v["protocol"]["at-most-once"]["retries_max"] = retries.clone();
                v["network"] = match &preset {
                    Value::Null => json!({}),
                    preset => json!({ "preset": preset }),
                };
                // long-delays runs take minutes of virtual time: fewer operations.
                if preset == json!("long-delays") {
                    v["workload"] = json!({ "clients": 3, "ops_per_client": 10, "keys": 3 });
                    v["faults"] =
                        json!([{ "partition": { "groups": [[0], [1, 2, 3]], "at_ms": 10, "until_ms": 20 } }]);
                }
                all.push(v);
            }
        }
    }
    all
}

/// The reported false positives, each a correct configuration.
fn reported_configurations() -> Vec<Value> {
    let mut rpc = bundled("scenarios/rpc/reliable.json");
    rpc["name"] = json!("rpc 20 clients on one key");
    rpc["workload"] = json!({ "clients": 20, "ops_per_client": 20, "keys": 1 });
    let mut finite = bundled("scenarios/at-most-once/unreliable.json");
    finite["name"] = json!("amo finite retries, no faults");
    finite["protocol"]["at-most-once"]["retries_max"] = json!(2);
    finite["network"] = json!({});
    let mut slow = json!({
        "name": "amo long delays, a 10 ms partition",
        "description": "needs about 95 s of virtual time; the old deadline was 60 s after healing",
        "protocol": { "at-most-once": {} },
        "network": { "preset": "long-delays" },
        "workload": { "clients": 3, "ops_per_client": 20, "keys": 3 },
        "faults": [{ "partition": { "groups": [[0], [1, 2, 3]], "at_ms": 10, "until_ms": 20 } }],
        "seed": 1,
        "expect": "pass"
    });
    slow["limits"] = json!({});
    vec![rpc, finite, slow]
}

#[test]
fn correct_configurations_pass_on_every_seed_and_every_check_is_decided() {
    let seeds = seeds_per_configuration();
    let mut configurations: Vec<Value> = dsim::bundled_scenarios()
        .iter()
        .map(|path| bundled(path.to_str().unwrap()))
        .filter(|v| scenario(v).expect == Expect::Pass)
        .collect();
    configurations.extend(reported_configurations());
    configurations.extend(at_most_once_variations());
    for value in &configurations {
        let scenario = scenario(value);
        // The slow presets cost more a seed: a quarter of the seeds (at least 25).
        let slow = value["network"]["preset"] == json!("long-delays");
        let report = campaign(&scenario, if slow { (seeds / 4).max(25) } else { seeds });
        let failures: Vec<_> =
            report.failures.iter().map(|f| (f.seed, &f.invariant, &f.message)).take(3).collect();
        assert!(report.failures.is_empty(), "{}: {failures:?}", scenario.name);
        assert_eq!(report.undecided, 0, "{}: undecided on {:?}", scenario.name, report.undecided_seeds);
        assert_eq!(report.limits_hit, 0, "{}: run limits hit", scenario.name);
    }
}

#[test]
fn an_undecided_check_is_its_own_outcome_with_its_own_exit_code_and_no_failure_file() {
    // Best-effort RPC under duplication with many clients on one key: the servers' order
    // is no linearization (requests run twice), so the checker must search; a budget of
    // one configuration cannot finish a search.
    let mut value = bundled("scenarios/rpc/duplicate-put.json");
    value["workload"] = json!({ "clients": 8, "ops_per_client": 10, "keys": 1 });
    value["invariants"] = json!(["kv-linearizable"]);
    value["limits"] = json!({ "search_budget": 1 });
    let scenario = scenario(&value);
    let report = campaign(&scenario, 40);
    assert!(report.undecided > 0, "no seed was undecided");
    let first = &report.undecided_seeds[0];
    assert_eq!(first.invariant, "kv-linearizable");
    assert!(report.failures.iter().all(|f| f.seed != first.seed), "an undecided seed has a failure file");
    assert!(report.failures_by_invariant.values().sum::<u64>() == report.failures.len() as u64);

    // `dsim run` on that seed: exit 3, "UNDECIDED", never "VIOLATION".
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verdicts");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("undecided.json");
    std::fs::write(&file, value.to_string()).unwrap();
    let seed = first.seed.to_string();
    let out = dsim(&["run", file.to_str().unwrap(), "--seed", &seed]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("UNDECIDED") && !text.contains("VIOLATION"), "{text}");

    // `dsim fuzz` exits 3 when seeds were undecided and none failed, and writes no file.
    let mut only_undecided = value.clone();
    only_undecided["network"]["all_links"]["duplicate_probability"] = json!(0.0);
    let failures = dir.join("failures");
    let _ = std::fs::remove_dir_all(&failures);
    let report = campaign(&self::scenario(&only_undecided), 40);
    if report.failures.is_empty() && report.undecided > 0 {
        std::fs::write(&file, only_undecided.to_string()).unwrap();
        let out = dsim(&[
            "fuzz",
            file.to_str().unwrap(),
            "--seeds",
            "0..40",
            "--keep-going",
            "--out",
            failures.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
        assert!(!failures.exists() || std::fs::read_dir(&failures).unwrap().next().is_none());
    }
}

#[test]
fn a_slow_run_still_completing_is_not_stuck_but_a_stuck_one_says_so() {
    // Long delays (up to 7 s a message): the workload needs well over a minute after the
    // 10 ms partition heals, and keeps completing operations all along.
    let slow = &reported_configurations()[2];
    let summary = run(slow);
    assert_eq!(summary.outcome, Outcome::Pass, "{}", summary.text());
    assert!(summary.virtual_time_ms > 60_000.0, "the run ended before the old deadline");

    // The server crashes and never restarts: nothing completes after the crash.
    let mut stuck = bundled("scenarios/at-most-once/unreliable.json");
    stuck["faults"] = json!([{ "crash": { "node": 0, "at_ms": 100 } }]);
    let summary = run(&stuck);
    let violation = summary.outcome.violation().expect("every-request-completed fails");
    assert_eq!(violation.invariant, "every-request-completed");
    assert_eq!(violation.phase, Phase::Liveness);
    assert!(violation.message.contains("stuck, not slow"), "{}", violation.message);
    assert!(violation.message.contains("still down: n0"), "{}", violation.message);
    // Outside the crash-and-restart model, saying n0 is still down.
    let outside = summary.outside_fault_model.as_deref().expect("outside the model");
    assert!(outside.contains("n0") && outside.contains("still down"), "{outside}");
    assert!(!summary.expectation_met);
}

#[test]
fn a_partition_without_an_end_lasts_to_the_end_of_the_run() {
    let mut value = bundled("scenarios/at-most-once/unreliable.json");
    value["network"] = json!({ "preset": "reliable" });
    value["faults"] = json!([{ "partition": { "groups": [[0], [1, 2, 3, 4, 5]], "at_ms": 50 } }]);
    let summary = run(&value);
    assert!(summary.messages.dropped > 0, "nothing was dropped: the partition did not last");
    let violation = summary.outcome.violation().expect("the clients never finish");
    assert_eq!(violation.invariant, "every-request-completed");
    let outside = summary.outside_fault_model.as_deref().expect("outside the model");
    assert!(outside.contains("never ends"), "{outside}");
}

#[test]
fn ping_under_swarm_faults_never_blames_the_protocol() {
    let value = json!({
        "name": "ping/two",
        "description": "two nodes",
        "protocol": { "ping": { "nodes": 2, "in_flight": 2 } },
        "limits": { "end_at_ms": 200 },
        "seed": 1,
        "expect": "pass"
    });
    let report = campaign_with(&scenario(&value), 300, true);
    assert!(report.failures.is_empty(), "{:?}", report.failures.first().map(|f| &f.message));
    assert!(report.outside_fault_model > 0, "swarm drew no fault the model rules out");
}

#[test]
fn a_reply_to_a_later_call_is_called_later() {
    let mut value = bundled("scenarios/at-most-once/accept-any-reply.json");
    value["protocol"]["at-most-once"]["window"] = json!(3);
    let scenario = scenario(&value);
    let report = campaign(&scenario, 100);
    let messages: Vec<&String> = report
        .failures
        .iter()
        .filter(|f| f.invariant == "reply-matches-request")
        .map(|f| &f.message)
        .collect();
    assert!(!messages.is_empty());
    for message in messages {
        // "... accepted the reply to n1#3 as the answer to its call n1#2 ..."
        let seq = |after: &str| -> u64 {
            let rest = &message[message.find(after).unwrap() + after.len()..];
            let id = rest.split_whitespace().next().unwrap();
            id.split('#').nth(1).unwrap().trim_end_matches(':').parse().unwrap()
        };
        let (reply_to, call) = (seq("the reply to "), seq("its call "));
        let said = if reply_to > call { "later call" } else { "earlier call" };
        assert!(message.contains(said), "{message}");
    }
}

#[test]
fn a_linearizability_violation_points_at_the_request_that_ran_twice() {
    let summary = run(&bundled("scenarios/rpc/duplicate-put.json"));
    let violation = summary.outcome.violation().expect("the bundled seed shows it");
    assert_eq!(violation.invariant, "kv-linearizable");
    assert!(violation.message.contains("n1#1 (Put(k,10)) ran again at"), "{}", violation.message);
}

#[test]
fn a_memory_table_violation_names_the_memory_table() {
    let value = bundled("scenarios/at-most-once/crash-restart-memory.json");
    let summary = run(&value);
    let violation = summary.outcome.violation().expect("the bundled seed shows it");
    assert!(violation.message.contains("dedup: memory"), "{}", violation.message);
}

#[test]
fn a_passing_run_outside_the_model_exits_0_and_a_violating_one_exits_1() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verdicts");
    std::fs::create_dir_all(&dir).unwrap();
    // Clocks with a crash: outside its model (clocks live in memory), but the clock
    // conditions still hold over the events that happened.
    let clocks = json!({
        "name": "clocks/crash",
        "description": "a process crashes",
        "protocol": { "clocks": { "processes": 3 } },
        "faults": [{ "crash": { "node": 1, "at_ms": 5 } }],
        "seed": 1,
        "expect": "pass"
    });
    let file = dir.join("outside-pass.json");
    std::fs::write(&file, clocks.to_string()).unwrap();
    let out = dsim(&["run", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("OUTSIDE the model"), "{text}");
    // Ping with a crash: pings to the crashed node are lost, pings-conserved fails.
    let mut quiet = json!({
        "name": "ping/crash",
        "description": "a crash",
        "protocol": { "ping": { "nodes": 2, "in_flight": 1 } },
        "limits": { "end_at_ms": 500 },
        "seed": 1,
        "expect": "pass"
    });
    quiet["faults"] = json!([{ "crash": { "node": 1, "at_ms": 100 } }]);
    std::fs::write(&file, quiet.to_string()).unwrap();
    let out = dsim(&["run", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_physical_clock_tie_is_called_a_tie() {
    // n1's clock runs 1 ms ahead and every message takes exactly 1 ms: a message from n1
    // arrives when n0's clock reads what n1's read at the send. The tie goes to n0 (the
    // lower id), which puts the receive first.
    let value = json!({
        "name": "clocks/tie",
        "description": "equal readings",
        "protocol": { "clocks": { "processes": 2, "actions_per_process": 20 } },
        "network": { "all_links": { "latency": { "constant": { "ms": 1 } } } },
        "physical_clocks": { "nodes": [
            { "node": 0, "offset_ms": 0, "drift_ppm": 0 },
            { "node": 1, "offset_ms": 1, "drift_ppm": 0 }
        ] },
        "invariants": ["physical-clock-condition"],
        "seed": 1,
        "expect": "pass"
    });
    let summary = run(&value);
    let violation = summary.outcome.violation().expect("the tie breaks the wrong way");
    assert!(violation.message.contains("the readings are equal"), "{}", violation.message);
    assert!(!violation.message.contains("the receive comes first"), "{}", violation.message);
}
