//! Helpers shared by the integration tests that run the `dsim` binary.

use std::process::{Command, Output};

/// Runs `dsim` with `args` from the project's root.
pub fn dsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("dsim runs")
}
