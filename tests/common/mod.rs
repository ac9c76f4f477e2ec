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
