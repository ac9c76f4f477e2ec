//! Helpers shared by the integration tests. Each test file uses some of them.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `dsim` with `args` from the project's root.
pub fn dsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("dsim runs")
}

/// Runs every bundled scenario of `folder` (at least `at_least` of them) twice: each has a
/// description, meets its expectation, and gives the same trace hash both times. Returns
/// the summaries, for a protocol's own checks on top.
pub fn folder_meets_expectations(folder: &str, at_least: usize) -> Vec<dsim::runner::Summary> {
    let files = dsim::bundled_scenarios_in(folder);
    assert!(files.len() >= at_least, "expected the {folder} scenarios, found {files:?}");
    let mut summaries = Vec::new();
    for path in files {
        let scenario = dsim::scenario::Scenario::load(&path).expect("bundled scenarios load");
        assert!(!scenario.description.is_empty(), "{} has no description", path.display());
        let shown = path.display().to_string();
        let run =
            || dsim::runner::run(&scenario, &shown, None, sim_core::TraceMode::Recent(8), None).unwrap();
        let (first, second) = (run(), run());
        assert!(first.expectation_met, "{shown}: {}", first.text());
        assert_eq!(first.trace_hash, second.trace_hash, "{shown} is not deterministic");
        summaries.push(first);
    }
    summaries
}

/// A simulation of a protocol's `setup` with `config`, checking the invariants `keep`
/// accepts (by name). Panics if the faults drawn are outside the protocol's fault model: a
/// property test must stay inside it.
pub fn simulation_of<N: sim_core::Node>(
    setup: protocols::Setup<N>,
    config: sim_core::SimConfig,
    keep: impl Fn(&str) -> bool,
) -> sim_core::Simulation<N> {
    if let Err(outside) = setup.fault_model.admits(&config.faults) {
        panic!("the test drew faults outside the model: {outside}");
    }
    let mut sim = sim_core::Simulation::new(config, setup.n_nodes, setup.build);
    for invariant in setup.invariants {
        if keep(invariant.name()) {
            sim.add_invariant(invariant);
        }
    }
    sim
}
