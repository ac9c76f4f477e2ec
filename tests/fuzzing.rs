//! Fuzz campaigns, failure files, replay, shrinking and determinism checks.

use dsim::fuzz::{self, FailureFile, FuzzOptions, SeedRange, Shard};
use dsim::scenario::Scenario;
use dsim::shrink;
use std::path::{Path, PathBuf};

mod common;
use common::dsim;

fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzzing").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(seeds: &str, jobs: usize) -> FuzzOptions {
    FuzzOptions {
        seeds: seeds.parse().unwrap(),
        shard: None,
        jobs,
        swarm: false,
        keep_going: false,
        progress: false,
    }
}

fn load(path: &str) -> Scenario {
    Scenario::load(Path::new(path)).unwrap()
}

#[test]
fn seed_ranges_parse_and_reject_empty_or_reversed_ones() {
    assert_eq!("0..10".parse::<SeedRange>(), Ok(SeedRange { first: 0, last: 9 }));
    assert_eq!("3..=5".parse::<SeedRange>(), Ok(SeedRange { first: 3, last: 5 }));
    assert!("5..5".parse::<SeedRange>().unwrap_err().contains("empty"));
    assert!("9..3".parse::<SeedRange>().unwrap_err().contains("reversed"));
    assert!("seven".parse::<SeedRange>().unwrap_err().contains("A..B"));
}

#[test]
fn shards_split_a_range_into_disjoint_parts() {
    assert!("4/4".parse::<Shard>().unwrap_err().contains("out of range"));
    assert!("0/0".parse::<Shard>().is_err());
    let range: SeedRange = "10..47".parse().unwrap();
    let mut all: Vec<u64> =
        (0..4).flat_map(|i| fuzz::seeds(range, Some(Shard { index: i, count: 4 }))).collect();
    all.sort();
    assert_eq!(all, (10..47).collect::<Vec<_>>());
}

#[test]
fn a_campaign_stops_at_the_lowest_failing_seed_whatever_the_job_count() {
    let scenario = load("scenarios/rpc/duplicate-execution.json");
    let one = fuzz::campaign(&scenario, "x", &options("0..300", 1));
    let two = fuzz::campaign(&scenario, "x", &options("0..300", 2));
    assert_eq!(one.failures.len(), 1);
    assert_eq!(one.failures, two.failures);
    assert_eq!(one.seeds_run, one.failures[0].seed + 1);
}

#[test]
fn keep_going_finds_every_failure_and_counts_coverage() {
    let scenario = load("scenarios/rpc/duplicate-execution.json");
    let mut opts = options("0..100", 2);
    opts.keep_going = true;
    let report = fuzz::campaign(&scenario, "x", &opts);
    assert_eq!(report.seeds_run, 100);
    assert!(report.failures.len() > 10);
    let seeds: Vec<u64> = report.failures.iter().map(|f| f.seed).collect();
    assert!(seeds.windows(2).all(|w| w[0] < w[1]), "failures are in seed order");
    assert!(report.coverage["rpc: request re-sent after a timeout"] > 0);
}

#[test]
fn a_correct_run_reports_the_rare_paths_it_never_reached() {
    let scenario = load("scenarios/rpc/reliable.json");
    let report = fuzz::campaign(&scenario, "x", &options("0..20", 2));
    assert!(report.failures.is_empty());
    assert!(report.never_reached.contains(&"rpc: client gave up".to_string()));
}

#[test]
fn swarm_knobs_are_drawn_from_the_seed_and_recorded_in_failures() {
    let scenario = load("scenarios/rpc/reliable.json");
    let (a, knobs_a) = fuzz::swarm(&scenario, 42);
    let (b, knobs_b) = fuzz::swarm(&scenario, 42);
    assert_eq!((&a, &knobs_a), (&b, &knobs_b));
    let differ = (0..20).map(|s| fuzz::swarm(&scenario, s).1).collect::<Vec<_>>();
    assert!(differ.windows(2).any(|w| w[0] != w[1]));
    // The filled-in scenario is a valid scenario.
    let text = serde_json::to_string(&a).unwrap();
    Scenario::parse("swarm.json", &text).unwrap();

    let mut opts = options("0..200", 2);
    opts.swarm = true;
    let report = fuzz::campaign(&scenario, "x", &opts);
    let failure = &report.failures[0];
    assert_eq!(failure.swarm.as_ref(), Some(&fuzz::swarm(&scenario, failure.seed).1));
}

#[test]
fn failure_files_replay_exactly_and_shrink_to_something_smaller() {
    let scenario = load("scenarios/rpc/duplicate-execution.json");
    let mut opts = options("0..200", 2);
    opts.swarm = true;
    let report = fuzz::campaign(&scenario, "scenarios/rpc/duplicate-execution.json", &opts);
    let dir = scratch_dir("replay");
    let written = report.write_failures(&dir).unwrap();
    let path = written[0].to_str().unwrap();

    let out = dsim(&["replay", path]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed: the same violation"));
    // dsim run takes a failure file too, and its expectation is the violation.
    assert_eq!(dsim(&["run", path]).status.code(), Some(0));

    let failure: FailureFile = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let shrunk = shrink::shrink(&failure, 2_000).unwrap();
    assert!(shrunk.after.steps <= shrunk.before.steps);
    assert!(shrunk.after.operations < shrunk.before.operations, "{:?} -> {:?}", shrunk.before, shrunk.after);
    let small = dir.join("small.json");
    std::fs::write(&small, shrunk.failure.to_json()).unwrap();
    assert_eq!(dsim(&["replay", small.to_str().unwrap()]).status.code(), Some(0));

    let out = dsim(&["shrink", path, "--out", dir.join("cli-small.json").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("before") && text.contains("after") && text.contains("operations"));
}

#[test]
fn replay_says_loudly_when_a_run_diverges() {
    let scenario = load("scenarios/rpc/duplicate-execution.json");
    let report = fuzz::campaign(&scenario, "x", &options("0..100", 1));
    let mut failure = report.failures[0].clone();
    failure.trace_hash = "0000000000000000".into();
    let path = scratch_dir("diverge").join("tampered.json");
    std::fs::write(&path, failure.to_json()).unwrap();
    let out = dsim(&["replay", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("DIVERGED"));
}

#[test]
fn check_determinism_passes_on_bundled_scenarios() {
    let out = dsim(&["check-determinism", "scenarios/rpc/duplicate-put.json", "--seeds", "0..10"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("every run identical twice"));
}

#[test]
fn fuzz_json_summary_is_machine_readable() {
    let out = dsim(&[
        "fuzz",
        "scenarios/rpc/reliable.json",
        "--seeds",
        "0..40",
        "--shard",
        "1/4",
        "--format",
        "json",
        "--jobs",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["seeds_run"], 10);
    assert_eq!(report["shard"], "1/4");
}

/// Exit 2, nothing on stdout, and stderr contains each needle.
fn rejects(args: &[&str], needles: &[&str]) {
    let out = dsim(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed {}", String::from_utf8_lossy(&out.stdout));
    for needle in needles {
        assert!(err.contains(needle), "{args:?}: {needle:?} missing from {err}");
    }
}

#[test]
fn bad_fuzz_input_exits_2() {
    let file = "scenarios/rpc/reliable.json";
    rejects(&["fuzz", file, "--seeds", "5..5"], &["empty"]);
    rejects(&["fuzz", file, "--seeds", "9..3"], &["reversed"]);
    rejects(&["fuzz", file, "--shard", "4/4"], &["out of range"]);
    rejects(&["fuzz", file, "--jobs", "0"], &["from 1 to 256"]);
    rejects(&["check-determinism", file, "--seeds", "2..1"], &["reversed"]);
    rejects(&["replay", file], &["not a failure file"]);
}

fn failure_file() -> serde_json::Value {
    let scenario = load("scenarios/rpc/duplicate-execution.json");
    let report = fuzz::campaign(&scenario, "x", &options("0..100", 1));
    serde_json::from_str(&report.failures[0].to_json()).unwrap()
}

#[test]
fn a_failure_file_from_a_newer_dsim_is_refused() {
    let mut file = failure_file();
    file["version"] = serde_json::json!(99);
    let path = scratch_dir("newer").join("newer.json");
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    rejects(&["replay", path.to_str().unwrap()], &["newer.json:", ": version: ", "version 99", "newer dsim"]);
    rejects(&["run", path.to_str().unwrap()], &["version 99"]);
}

#[test]
fn a_failure_file_whose_scenario_no_longer_parses_is_refused() {
    let mut file = failure_file();
    file["scenario"]["protocol"] = serde_json::json!({ "paxos": {} });
    let path = scratch_dir("broken").join("broken.json");
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    rejects(
        &["replay", path.to_str().unwrap()],
        &["broken.json:", "scenario.protocol", "unknown protocol `paxos`"],
    );

    let mut file = failure_file();
    file["scenario"]["faults"] = serde_json::json!([{ "crash": { "node": 42, "at_ms": 1 } }]);
    std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    rejects(
        &["shrink", path.to_str().unwrap()],
        &["scenario.faults[0].crash.node", "node 42 does not exist"],
    );
}
