//! The catalogue of known-buggy variants: for each, `dsim fuzz` must find its violation
//! within a stated number of seeds, and `dsim shrink` must make it no bigger, with a result
//! that replays exactly. docs/fuzzing.md shows the measured table.

use dsim::fuzz::{self, FuzzOptions};
use dsim::runner;
use dsim::scenario::Scenario;
use dsim::shrink;
use sim_core::TraceMode;
use std::path::Path;

/// (scenario, the invariant its bug breaks, seeds within which fuzzing must find it).
const CATALOGUE: &[(&str, &str, u64)] = &[
    ("scenarios/rpc/duplicate-execution.json", "executed-at-most-once", 20),
    ("scenarios/rpc/duplicate-put.json", "kv-linearizable", 200),
    ("scenarios/at-most-once/dedup-off.json", "kv-linearizable", 200),
    ("scenarios/at-most-once/crash-restart-memory.json", "executed-at-most-once", 50),
    ("scenarios/at-most-once/discard-without-acks.json", "cache-bounded", 20),
    ("scenarios/at-most-once/accept-any-reply.json", "reply-matches-request", 20),
    ("scenarios/primary-backup/test-and-set-no-lock.json", "single-primary", 20),
    ("scenarios/primary-backup/commit-before-backups.json", "no-acknowledged-update-lost", 20),
    ("scenarios/clocks/vector-receive-notes.json", "vector-clock-exact", 20),
    ("scenarios/clocks/vector-order-notes.json", "vector-clock-exact", 20),
    ("scenarios/clocks/physical-skew.json", "physical-clock-condition", 20),
    ("scenarios/snapshots/record-channel-none.json", "snapshot-conserves-money", 20),
    ("scenarios/chain/read-from-head.json", "one-head-one-tail", 20),
    ("scenarios/chain/notes-failover.json", "update-propagation", 20),
    ("scenarios/chain/ack-before-tail.json", "kv-linearizable", 50),
];

/// Scenarios that break what a protocol assumes (its fault model) to show what the
/// assumption is for: `dsim run` meets their expected violation and says it is outside the
/// model; fuzzing does not count it as a failure.
const BROKEN_ASSUMPTIONS: &[&str] = &[
    "scenarios/ping/lossy.json",
    "scenarios/snapshots/reorder.json",
    "scenarios/snapshots/lossy.json",
    "scenarios/snapshots/duplicates.json",
    "scenarios/chain/all-servers-down.json",
    "scenarios/chain/master-partition.json",
];

#[test]
fn a_broken_assumption_shows_its_violation_outside_the_model_and_fuzzing_does_not_count_it() {
    for &file in BROKEN_ASSUMPTIONS {
        let scenario = Scenario::load(Path::new(file)).unwrap();
        let summary = runner::run(&scenario, file, None, TraceMode::HashOnly, None).unwrap();
        assert!(summary.expectation_met, "{file}: {}", summary.verdict);
        assert!(summary.outcome.violation().is_some(), "{file}");
        assert!(summary.outside_fault_model.is_some(), "{file}: not reported outside the model");
        let options = FuzzOptions {
            seeds: "0..20".parse().unwrap(),
            shard: None,
            jobs: 2,
            swarm: false,
            keep_going: true,
            progress: false,
        };
        let report = fuzz::campaign(&scenario, file, &options);
        assert!(report.failures.is_empty(), "{file}");
        assert!(report.outside_fault_model > 0, "{file}");
    }
}

#[test]
fn every_buggy_variant_is_found_by_fuzzing_and_shrinks_to_a_replayable_case() {
    for &(file, invariant, seeds_max) in CATALOGUE {
        let scenario = Scenario::load(Path::new(file)).unwrap();
        let options = FuzzOptions {
            seeds: format!("0..{seeds_max}").parse().unwrap(),
            shard: None,
            jobs: 2,
            swarm: false,
            keep_going: false,
            progress: false,
        };
        let report = fuzz::campaign(&scenario, file, &options);
        let failure =
            report.failures.first().unwrap_or_else(|| panic!("{file}: nothing found in {seeds_max} seeds"));
        assert_eq!(failure.invariant, invariant, "{file}");

        let shrunk = shrink::shrink(failure, 5_000).unwrap();
        assert!(
            shrunk.after.steps <= shrunk.before.steps,
            "{file}: {:?} -> {:?}",
            shrunk.before,
            shrunk.after
        );
        assert!(
            shrunk.after.operations <= shrunk.before.operations
                && shrunk.after.faults <= shrunk.before.faults
        );
        let replay =
            runner::simulate(&shrunk.failure.scenario, shrunk.failure.seed, TraceMode::HashOnly, None)
                .unwrap();
        assert_eq!(
            replay.report.trace_hash, shrunk.failure.trace_hash,
            "{file}: the shrunk case does not replay"
        );
        println!(
            "| `{file}` | `{invariant}` | {} | {} | {} |",
            failure.seed + 1,
            shrunk.before,
            shrunk.after
        );
    }
}

#[test]
fn every_shipped_buggy_scenario_is_in_the_catalogue() {
    for path in dsim::bundled_scenarios() {
        let scenario = Scenario::load(&path).unwrap();
        if let dsim::scenario::Expect::Violation(_) = scenario.expect {
            let shown = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string();
            assert!(
                CATALOGUE.iter().any(|(file, _, _)| *file == shown)
                    || BROKEN_ASSUMPTIONS.contains(&shown.as_str()),
                "{shown} is missing from the catalogue"
            );
        }
    }
}
