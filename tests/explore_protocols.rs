//! `dsim explore` on the clocks, snapshot, chain and primary-backup scenarios of
//! `scenarios/explore/`: each correct configuration searched within its budgets with no
//! violation (exhausted where the space is finite; to a depth where it is not), each
//! known-buggy variant caught by name and its failure file replayed, breadth-first and
//! depth-first agreeing, and the search without its visited set reaching the same verdict.

mod common;

use serde_json::Value;
use std::path::Path;

/// What a search must conclude.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The space was exhausted: no violation (exit 0).
    Exhausted,
    /// A bound stopped the search, no violation before it (exit 3).
    Stopped,
    /// This invariant was violated (exit 1).
    Violation(&'static str),
}

/// One search: a bundled scenario, a buggy parameter set on its protocol (or none), the
/// budgets, and the verdict.
struct Case {
    file: &'static str,
    variant: Option<(&'static str, Value)>,
    budgets: &'static [&'static str],
    expect: Expect,
}

fn case(
    file: &'static str,
    variant: Option<(&'static str, Value)>,
    budgets: &'static [&'static str],
    expect: Expect,
) -> Case {
    Case { file, variant, budgets, expect }
}

const CLOCKS: &str = "scenarios/explore/clocks-3.json";
const BANK: &str = "scenarios/explore/snapshot-bank-3.json";
const PING: &str = "scenarios/explore/snapshot-ping-2.json";
const CHAIN: &str = "scenarios/explore/chain-3-servers.json";
const PB: &str = "scenarios/explore/primary-backup-2-backups.json";

/// The correct configurations.
fn correct() -> Vec<Case> {
    vec![
        case(CLOCKS, None, &["--drops", "1", "--duplicates", "1"], Expect::Exhausted),
        case(BANK, None, &[], Expect::Exhausted),
        case(PING, None, &["--max-depth", "16"], Expect::Stopped),
        case(CHAIN, None, &["--crashes", "1", "--max-depth", "20"], Expect::Stopped),
        case(PB, None, &["--crashes", "1", "--max-depth", "12"], Expect::Stopped),
    ]
}

/// Every known-buggy variant, caught.
fn buggy() -> Vec<Case> {
    let s = |text: &str| Value::String(text.to_string());
    vec![
        case(CLOCKS, Some(("vector_order", s("notes"))), &[], Expect::Violation("vector-clock-exact")),
        case(CLOCKS, Some(("vector_receive", s("notes"))), &[], Expect::Violation("vector-clock-exact")),
        case(BANK, Some(("record_channel", s("none"))), &[], Expect::Violation("snapshot-conserves-money")),
        case(
            BANK,
            Some(("on_marker", s("record-every-time"))),
            &[],
            Expect::Violation("snapshot-records-once"),
        ),
        case(
            BANK,
            Some(("marker_delay_ms", 5.into())),
            &[],
            Expect::Violation("snapshot-one-marker-per-channel"),
        ),
        case(
            PING,
            Some(("record_channel", s("none"))),
            &["--max-depth", "16"],
            Expect::Violation("snapshot-conserves-pings"),
        ),
        case(
            PING,
            Some(("on_marker", s("record-every-time"))),
            &["--max-depth", "16"],
            Expect::Violation("snapshot-records-once"),
        ),
        case(
            PING,
            Some(("marker_delay_ms", 5.into())),
            &["--max-depth", "16"],
            Expect::Violation("snapshot-one-marker-per-channel"),
        ),
        case(
            CHAIN,
            Some(("read_from", s("head"))),
            &["--max-depth", "30"],
            Expect::Violation("one-head-one-tail"),
        ),
        case(
            CHAIN,
            Some(("ack_before_tail", true.into())),
            &["--max-depth", "30"],
            Expect::Violation("kv-linearizable"),
        ),
        case(
            CHAIN,
            Some(("resend_on_middle_failure", false.into())),
            &["--crashes", "1", "--max-depth", "30"],
            Expect::Violation("update-propagation"),
        ),
        case(
            PB,
            Some(("test_and_set", s("no-lock"))),
            &["--crashes", "1", "--max-depth", "20"],
            Expect::Violation("single-primary"),
        ),
        case(
            PB,
            Some(("commit", s("before-backups"))),
            &["--crashes", "1", "--max-depth", "20"],
            Expect::Violation("no-acknowledged-update-lost"),
        ),
    ]
}

/// The scenario file a case searches: the bundled one, or its variant written into `dir`.
fn scenario_of(case: &Case, dir: &Path) -> String {
    let Some((key, value)) = &case.variant else { return case.file.to_string() };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(case.file);
    let mut scenario: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let protocol = scenario["protocol"].as_object_mut().expect("a protocol object");
    let params = protocol.values_mut().next().expect("one protocol");
    params[*key] = value.clone();
    // The variant's run plainly shows its bug: no expectation to meet here.
    scenario.as_object_mut().unwrap().remove("expect");
    let written = dir.join(format!("{key}.json"));
    std::fs::write(&written, serde_json::to_string_pretty(&scenario).unwrap()).unwrap();
    written.display().to_string()
}

/// Runs `dsim explore` on a case with `extra` flags; checks the exit code and verdict and
/// returns the JSON summary.
fn explore(case: &Case, dir: &Path, extra: &[&str]) -> Value {
    let file = scenario_of(case, dir);
    let args: Vec<&str> = case.budgets.iter().chain(extra).copied().collect();
    let (exit, report) = common::explore(&file, &args, &dir.join("out"));
    let shown = format!("dsim explore {file} {}: {report:#}", args.join(" "));
    let (code, verdict) = match case.expect {
        Expect::Exhausted => (0, "exhausted"),
        Expect::Violation(_) => (1, "violation"),
        Expect::Stopped => (3, "stopped"),
    };
    assert_eq!(exit, code, "{shown}");
    assert_eq!(report["verdict"], verdict, "{shown}");
    if case.expect == Expect::Stopped {
        assert_eq!(report["stopped_by"]["budget"], "max-depth", "{shown}");
    }
    if let Expect::Violation(invariant) = case.expect {
        assert_eq!(report["violation"]["invariant"], invariant, "{shown}");
    }
    report
}

#[test]
fn correct_configurations_pass_within_their_budgets() {
    let dir = common::scratch_dir("correct");
    for case in correct() {
        let report = explore(&case, &dir, &[]);
        assert!(report["states"].as_u64().unwrap() > 1, "{}: {report}", case.file);
    }
}

#[test]
fn every_buggy_variant_is_found_and_its_failure_file_replays() {
    let dir = common::scratch_dir("buggy");
    for case in buggy() {
        let report = explore(&case, &dir, &[]);
        let failure = report["violation"]["failure_file"].as_str().expect("a failure file").to_string();
        let replay = common::dsim(&["replay", &failure]);
        assert_eq!(replay.status.code(), Some(0), "{}", String::from_utf8_lossy(&replay.stdout));
        let Expect::Violation(invariant) = case.expect else { unreachable!() };
        assert!(String::from_utf8_lossy(&replay.stdout).contains(invariant), "{failure}");
    }
}

#[test]
fn breadth_first_and_depth_first_agree_on_every_case() {
    let dir = common::scratch_dir("strategies");
    for case in correct().into_iter().chain(buggy()) {
        let bfs = explore(&case, &dir, &["--strategy", "bfs"]);
        let dfs = explore(&case, &dir, &["--strategy", "dfs"]);
        if let Expect::Violation(_) = case.expect {
            // Breadth-first finds a shortest counterexample.
            let steps = |r: &Value| r["violation"]["steps"].as_u64().unwrap();
            assert!(steps(&bfs) <= steps(&dfs), "{}: {bfs} {dfs}", case.file);
        }
    }
}

#[test]
fn the_visited_set_changes_no_verdict_on_small_cases() {
    let dir = common::scratch_dir("no-visited-set");
    // Without pruning, the chain's middle-crash variant and primary-backup's variants walk
    // millions of paths; the others stay small.
    let big = |c: &Case| c.file == PB || c.budgets.contains(&"--crashes");
    let small = buggy().into_iter().filter(|c| !big(c));
    let small = small.chain(correct().into_iter().filter(|c| c.file == CLOCKS || c.file == PING));
    for case in small {
        explore(&case, &dir, &["--no-visited-set"]);
    }
}
