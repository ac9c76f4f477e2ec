//! The lease protocol through dsim's harness and through its own `dsim-lease` binary: every
//! subcommand works on a protocol written outside dsim.

use dsim_lease_example::{AtMostOneHolder, Lease, LeaseParams, LeaseStart};
use protocols::kv::Workload;
use protocols::registry::Protocol;
use sim_core::testing::{check_seeds, FaultPlan};
use sim_core::{Latency, LinkConfig, NetworkConfig, Outcome, SimConfig, SimDuration, SimTime, Simulation};
use std::path::Path;
use std::process::{Command, Output};

fn lease_sim(seed: u64, start: LeaseStart) -> Simulation<dsim_lease_example::LeaseNode> {
    lease_sim_with(seed, start, FaultPlan::new())
}

fn lease_sim_with(
    seed: u64,
    start: LeaseStart,
    faults: FaultPlan,
) -> Simulation<dsim_lease_example::LeaseNode> {
    let params = LeaseParams { clients: 3, start, ..LeaseParams::default() };
    let setup = Lease.setup(&params, &Workload::default(), seed);
    let latency = Latency::Uniform { min: SimDuration::from_millis(1), max: SimDuration::from_millis(30) };
    let mut config = SimConfig::new(seed, NetworkConfig::uniform(LinkConfig::reliable(latency)));
    config.end_at = Some(SimTime::from_millis(1_000));
    config.faults = faults.build();
    let mut sim = Simulation::new(config, setup.n_nodes, setup.build);
    sim.add_invariant(Box::new(AtMostOneHolder));
    sim
}

#[test]
fn the_lease_holds_on_every_seed() {
    check_seeds("lease", 0..200, |seed| lease_sim(seed, LeaseStart::Request));
}

#[test]
fn counting_from_receipt_is_caught() {
    let caught = (0..50).find(|&seed| {
        matches!(lease_sim(seed, LeaseStart::Receipt).run().outcome, Outcome::Violation(ref v) if v.invariant == "at-most-one-holder")
    });
    assert!(caught.is_some(), "start: receipt never showed two holders in 50 seeds");
    // And the harness reports it with the seed and the replay command.
    let report = std::panic::catch_unwind(|| {
        check_seeds("lease receipt", 0..50, |seed| lease_sim(seed, LeaseStart::Receipt))
    });
    let text = *report.expect_err("a failing seed").downcast::<String>().unwrap();
    assert!(text.contains("violated at-most-one-holder") && text.contains("replay: DSIM_SEED="), "{text}");
}

#[test]
fn the_lease_holds_across_partitions() {
    // A client cut off from the server keeps its lease only until it expires; the server
    // grants the next one only after that, by its clock.
    check_seeds("lease partitioned", 0..200, |seed| {
        let plan =
            FaultPlan::new().partition(&[&[0], &[1]], 100, Some(300)).one_way(&[0], &[2], 400, Some(600));
        lease_sim_with(seed, LeaseStart::Request, plan)
    });
}

fn dsim_lease(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsim-lease"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("dsim-lease runs")
}

#[test]
fn every_subcommand_works_on_the_lease_scenarios() {
    let out = dsim_lease(&["list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("lease "), "list shows the lease protocol");
    assert_eq!(dsim_lease(&["run", "scenarios/correct.json"]).status.code(), Some(0));
    assert_eq!(
        dsim_lease(&["run", "scenarios/start-on-receipt.json"]).status.code(),
        Some(0),
        "expectation met"
    );
    let determinism = dsim_lease(&["check-determinism", "scenarios/correct.json", "--seeds", "0..5"]);
    assert_eq!(determinism.status.code(), Some(0));
    assert_eq!(dsim_lease(&["fuzz", "scenarios/correct.json", "--seeds", "0..100"]).status.code(), Some(0));

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lease-failures");
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.to_str().unwrap();
    let fuzz = dsim_lease(&["fuzz", "scenarios/start-on-receipt.json", "--seeds", "0..50", "--out", out]);
    assert_eq!(fuzz.status.code(), Some(1), "{}", String::from_utf8_lossy(&fuzz.stdout));
    assert!(
        String::from_utf8_lossy(&fuzz.stdout).contains("replay: dsim-lease replay"),
        "hints name this binary"
    );
    let failure = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let failure = failure.to_str().unwrap();
    let replay = dsim_lease(&["replay", failure]);
    assert_eq!(replay.status.code(), Some(0), "{}", String::from_utf8_lossy(&replay.stdout));
    let shrunk = dir.join("small.json");
    let shrink = dsim_lease(&["shrink", failure, "--out", shrunk.to_str().unwrap()]);
    assert_eq!(shrink.status.code(), Some(0), "{}", String::from_utf8_lossy(&shrink.stderr));
    assert_eq!(dsim_lease(&["replay", shrunk.to_str().unwrap()]).status.code(), Some(0));

    // Explore finds the buggy variant by searching, and its counterexample replays.
    let explored = dir.join("explored");
    let explore =
        dsim_lease(&["explore", "scenarios/start-on-receipt.json", "--out", explored.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&explore.stdout);
    assert_eq!(explore.status.code(), Some(1), "{text}");
    assert!(
        text.contains("at-most-one-holder violated") && text.contains("replay        dsim-lease replay"),
        "{text}"
    );
    let failure = std::fs::read_dir(&explored).unwrap().next().unwrap().unwrap().path();
    assert_eq!(dsim_lease(&["replay", failure.to_str().unwrap()]).status.code(), Some(0));
}
