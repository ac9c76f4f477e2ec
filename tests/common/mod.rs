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

/// Runs `dsim explore FILE ARGS --out OUT --format json`: the exit code and the report.
pub fn explore(file: &str, args: &[&str], out: &std::path::Path) -> (i32, serde_json::Value) {
    let out = out.to_str().expect("a UTF-8 temp dir");
    let mut all = vec!["explore", file, "--out", out, "--format", "json"];
    all.extend_from_slice(args);
    let output = dsim(&all);
    let code = output.status.code().expect("dsim exits");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "dsim explore {file} {args:?} printed no JSON report ({err}): exit {code}, stderr {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (code, report)
}

/// A fresh, empty folder under the system's temp dir, named for the test and this process.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dsim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir can be made");
    dir
}
