//! `dsim-lease`: dsim's command line with the lease protocol added to the bundled ones.
//! Every subcommand (run, fuzz, replay, shrink, check-determinism, list) works on it.

fn main() -> std::process::ExitCode {
    let registry = protocols::registry::Registry::bundled().with(dsim_lease_example::Lease);
    dsim::cli::main_with(registry)
}
