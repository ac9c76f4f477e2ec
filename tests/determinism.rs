//! Same scenario + same seed = the same trace hash, for every bundled scenario; another
//! seed gives another trace.

use dsim::runner;
use dsim::scenario::Scenario;
use sim_core::TraceMode;

#[test]
fn every_bundled_scenario_is_deterministic_and_seed_sensitive() {
    for path in dsim::bundled_scenarios() {
        let scenario = Scenario::load(&path).expect("bundled scenarios load");
        let file = path.display().to_string();
        let run = |seed: u64, mode: TraceMode| {
            runner::run(&scenario, &file, Some(seed), mode, None).expect("runs").trace_hash
        };
        let first = run(scenario.seed, TraceMode::HashOnly);
        assert_eq!(first, run(scenario.seed, TraceMode::HashOnly), "{file}: two runs differ");
        assert_eq!(first, run(scenario.seed, TraceMode::Full), "{file}: the trace mode changed the hash");
        assert_ne!(first, run(scenario.seed + 1, TraceMode::HashOnly), "{file}: the seed changed nothing");
    }
}
