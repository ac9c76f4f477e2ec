//! Properties over arbitrary networks and seeds:
//! - best-effort RPC on a reliable network (nothing lost or duplicated, replies well within
//!   the timeout) never violates an invariant;
//! - under any network settings and fault timeline, the simulator never panics and every
//!   run ends with a reported outcome.
//!
//! `DSIM_FUZZ_CASES` scales the number of cases (default 64).

use dsim::runner::{self, Summary};
use dsim::scenario::Scenario;
use proptest::prelude::*;
use serde_json::{json, Value};
use sim_core::{Outcome, TraceMode};

fn cases() -> u32 {
    std::env::var("DSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// A latency distribution whose maximum stays at or below `max_ms`.
fn latency(max_ms: f64) -> impl Strategy<Value = Value> {
    prop_oneof![
        (0.0..max_ms).prop_map(|ms| json!({ "constant": { "ms": ms } })),
        (0.0..max_ms, 0.0..max_ms)
            .prop_map(|(a, b)| json!({ "uniform": { "ms_min": a.min(b), "ms_max": a.max(b) } })),
        // The mean lies within [min, max] (scenario files reject anything else).
        (0.1..max_ms, 0.0..max_ms).prop_map(move |(mean, min)| {
            json!({ "exponential": { "ms_mean": mean, "ms_min": min.min(mean), "ms_max": max_ms } })
        }),
    ]
}

fn ordering() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("reorder"), Just("fifo")]
}

fn run_json(scenario: Value, seed: u64) -> Summary {
    let text = serde_json::to_string_pretty(&scenario).unwrap();
    let scenario = Scenario::parse("generated.json", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    runner::run(&scenario, "generated.json", Some(seed), TraceMode::HashOnly, None).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn best_effort_rpc_on_a_reliable_network_never_violates(
        latency in latency(40.0),
        ordering in ordering(),
        clients in 1u32..5,
        ops_per_client in 1u32..15,
        keys in 1u32..4,
        think_ms in 0u64..20,
        seed in any::<u64>(),
    ) {
        // The timeout (100 ms) exceeds the longest round trip (2 x 40 ms): no re-sends.
        let scenario = json!({
            "name": "generated",
            "protocol": { "rpc": { "timeout_ms": 100, "retries_max": 3 } },
            "network": { "all_links": { "latency": latency, "ordering": ordering } },
            "workload": { "clients": clients, "ops_per_client": ops_per_client, "keys": keys, "think_ms": think_ms },
        });
        let summary = run_json(scenario.clone(), seed);
        prop_assert_eq!(&summary.outcome, &Outcome::Pass, "seed {}: {}", seed, scenario);
        // Not too many RPCs (as labrpc's tests ask): one request and one reply per operation.
        prop_assert_eq!(summary.messages.sent, u64::from(2 * clients * ops_per_client));
    }

    #[test]
    fn the_simulator_never_panics(
        latency in latency(500.0),
        ordering in ordering(),
        drop in 0.0..=1.0f64,
        duplicate in 0.0..=1.0f64,
        slow in proptest::option::of((0.0..=1.0f64, latency(3000.0))),
        crash_at in proptest::option::of((0.0..2000.0f64, 1.0..2000.0f64)),
        partition in proptest::option::of((0.0..2000.0f64, 1.0..2000.0f64, any::<bool>())),
        timeout_ms in 1u64..300,
        retries_max in 0u32..6,
        clients in 1u32..4,
        ping in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut links = json!({ "latency": latency, "ordering": ordering,
                                "drop_probability": drop, "duplicate_probability": duplicate });
        if let Some((p, slow_latency)) = slow {
            links["slow"] = json!({ "probability": p, "latency": slow_latency, "applies_to": "replies" });
        }
        let mut faults = Vec::new();
        if let Some((at, down_for)) = crash_at {
            faults.push(json!({ "crash": { "node": 1, "at_ms": at } }));
            faults.push(json!({ "restart": { "node": 1, "at_ms": at + down_for } }));
        }
        if let Some((at, length, symmetric)) = partition {
            faults.push(if symmetric {
                json!({ "partition": { "groups": [[0], [1]], "at_ms": at, "until_ms": at + length } })
            } else {
                json!({ "partition-one-way": { "from": [1], "to": [0], "at_ms": at, "until_ms": at + length } })
            });
        }
        let protocol = if ping {
            json!({ "ping": { "nodes": clients + 1, "in_flight": 3 } })
        } else {
            json!({ "rpc": { "timeout_ms": timeout_ms, "retries_max": retries_max } })
        };
        let mut scenario = json!({
            "name": "generated",
            "protocol": protocol,
            "network": { "all_links": links },
            "faults": faults,
            "limits": { "max_steps": 20000, "max_time_ms": 120000, "liveness_ms": 10000 },
        });
        // Ping has no workload (a scenario file giving it one is rejected).
        if !ping {
            scenario["workload"] = json!({ "clients": clients, "ops_per_client": 8 });
        }
        // Any outcome is fine; a panic is not.
        let _ = run_json(scenario, seed);
    }
}
