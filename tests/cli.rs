//! The `dsim` command line: bundled scenarios meet their expectations, outputs are
//! well-formed, and every class of bad input gets one clear error and exit code 2.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::dsim;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A scratch file under the target directory, unique per test.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn every_bundled_scenario_meets_its_expectation() {
    let scenarios = dsim::bundled_scenarios();
    assert!(scenarios.len() >= 3);
    for path in scenarios {
        let out = dsim(&["run", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}:\n{}{}", path.display(), stdout(&out), stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("seed ") && text.contains("trace hash") && text.contains("replay"));
    }
}

#[test]
fn a_teaching_scenario_with_another_seed_says_whether_its_anomaly_showed() {
    let out = dsim(&["run", "scenarios/rpc/duplicate-put.json", "--seed", "1"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.contains("did not show on seed 1"), "{text}");
    assert!(text.contains("dsim run scenarios/rpc/duplicate-put.json --seed 1"));
}

#[test]
fn an_unmet_expectation_exits_1() {
    let text = std::fs::read_to_string("scenarios/rpc/duplicate-put.json").unwrap();
    let mut scenario: serde_json::Value = serde_json::from_str(&text).unwrap();
    scenario["expect"] = serde_json::json!("pass");
    let path = scratch("expects-pass.json", &serde_json::to_string_pretty(&scenario).unwrap());
    let out = dsim(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("NOT met"));
}

#[test]
fn json_summary_and_trace_files_are_well_formed() {
    let trace = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliable-trace.jsonl");
    let out =
        dsim(&["run", "scenarios/rpc/reliable.json", "--format", "json", "--trace", trace.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON summary");
    assert_eq!(summary["seed"], 7);
    assert_eq!(summary["expectation_met"], true);
    let lines = std::fs::read_to_string(&trace).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for line in lines.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        kinds.insert(record["event"].as_str().unwrap().to_string());
        assert!(record["time"].is_u64() && record["step"].is_u64());
    }
    for kind in ["start", "send", "deliver", "timer-set"] {
        assert!(kinds.contains(kind), "{kind} missing from {kinds:?}");
    }

    let text_trace = Path::new(env!("CARGO_TARGET_TMPDIR")).join("reliable-trace.txt");
    let out = dsim(&["run", "scenarios/rpc/reliable.json", "--trace", text_trace.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(std::fs::read_to_string(&text_trace).unwrap().contains("deliver  n0 -> n1"));
}

#[test]
fn the_same_run_prints_the_same_summary() {
    let a = dsim(&["run", "scenarios/rpc/duplicate-execution.json"]);
    let b = dsim(&["run", "scenarios/rpc/duplicate-execution.json"]);
    assert_eq!(stdout(&a), stdout(&b));
}

#[test]
fn list_shows_protocols_presets_and_scenarios() {
    let out = dsim(&["list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for needle in ["rpc", "timeout_ms", "executed-at-most-once", "long-reordering", "rpc/duplicate-put.json"]
    {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in [vec!["--help"], vec!["run", "--help"], vec!["list", "--help"], vec!["bench", "--help"]] {
        let out = dsim(&command);
        assert_eq!(out.status.code(), Some(0));
        assert!(stdout(&out).contains("Example"), "{command:?}");
    }
}

/// A valid scenario to break in one place at a time.
const BASE: &str = r#"{
  "name": "base",
  "protocol": { "rpc": { "timeout_ms": 100 } },
  "network": { "preset": "reliable" },
  "workload": { "clients": 2, "ops_per_client": 3 },
  "seed": 1,
  "expect": "pass"
}"#;

/// Runs a broken scenario: exit 2, nothing on stdout, and stderr names the file and `needles`.
fn rejects(name: &str, contents: &str, needles: &[&str]) {
    let path = scratch(name, contents);
    let out = dsim(&["run", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{name}: {err}");
    assert!(stdout(&out).is_empty(), "{name}: printed {}", stdout(&out));
    assert!(err.contains(name), "{name}: the error does not name the file: {err}");
    assert_eq!(err.lines().count(), 1, "{name}: one line of error: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{name}: {needle:?} missing from: {err}");
    }
}

#[test]
fn the_base_scenario_is_valid() {
    let path = scratch("base.json", BASE);
    assert_eq!(dsim(&["run", path.to_str().unwrap()]).status.code(), Some(0));
}

#[test]
fn bad_json_names_line_and_column() {
    rejects(
        "syntax.json",
        &BASE.replace("\"seed\": 1,", "\"seed\": 1,,"),
        &["syntax.json:6:13: key must be a string"],
    );
}

#[test]
fn unknown_fields_are_rejected_with_the_valid_ones() {
    rejects(
        "unknown-field.json",
        &BASE.replace("\"seed\"", "\"sede\""),
        &["unknown field `sede`", "expected one of", "seed"],
    );
    rejects(
        "unknown-param.json",
        &BASE.replace("\"timeout_ms\"", "\"timeout\""),
        &["protocol.rpc", "unknown field `timeout`", "timeout_ms", ":3:"],
    );
}

#[test]
fn an_unknown_protocol_lists_the_protocols() {
    rejects(
        "unknown-protocol.json",
        &BASE.replace("\"rpc\"", "\"raft\""),
        &["protocol", "unknown protocol `raft`", "rpc", "ping"],
    );
}

#[test]
fn an_unknown_preset_lists_the_presets() {
    rejects(
        "unknown-preset.json",
        &BASE.replace("\"reliable\"", "\"lossy\""),
        &["network.preset", "long-reordering"],
    );
}

#[test]
fn a_probability_outside_0_1_is_rejected() {
    let bad = BASE.replace(
        r#""preset": "reliable""#,
        r#""preset": "reliable", "all_links": { "drop_probability": 1.5 }"#,
    );
    rejects("probability.json", &bad, &["network.all_links.drop_probability", "1.5", "from 0 to 1", ":4:"]);
}

#[test]
fn min_latency_above_max_is_rejected() {
    let bad = BASE.replace(
        r#""preset": "reliable""#,
        r#""all_links": { "latency": { "uniform": { "ms_min": 30, "ms_max": 10 } } }"#,
    );
    rejects("latency.json", &bad, &["network.all_links.latency.uniform.ms_min", "above ms_max", ":4:"]);
}

#[test]
fn a_fault_naming_a_missing_node_lists_the_valid_nodes() {
    let bad = BASE.replace(
        "\"seed\": 1,",
        "\"faults\": [{ \"crash\": { \"node\": 7, \"at_ms\": 5 } }],\n  \"seed\": 1,",
    );
    rejects("missing-node.json", &bad, &["faults[0].crash.node", "node 7 does not exist", "0..=2", ":6:35"]);
    let bad = BASE.replace(
        "\"seed\": 1,",
        "\"faults\": [{ \"partition\": { \"groups\": [[0], [1, 9]], \"at_ms\": 5 } }],\n  \"seed\": 1,",
    );
    rejects(
        "missing-node-partition.json",
        &bad,
        &["faults[0].partition.groups[1][1]", "node 9 does not exist"],
    );
    let bad = BASE.replace(r#""preset": "reliable""#, r#""links": [{ "from": 0, "to": 5, "set": {} }]"#);
    rejects("missing-node-link.json", &bad, &["network.links[0].to", "node 5 does not exist"]);
}

#[test]
fn an_inconsistent_fault_timeline_is_rejected() {
    let bad = BASE.replace(
        "\"seed\": 1,",
        "\"faults\": [{ \"restart\": { \"node\": 1, \"at_ms\": 5 } }],\n  \"seed\": 1,",
    );
    rejects("restart-without-crash.json", &bad, &["faults[0].restart.node", "not crashed"]);
    let bad = BASE.replace(
        "\"seed\": 1,",
        "\"faults\": [{ \"partition\": { \"groups\": [[0]], \"at_ms\": 50, \"until_ms\": 10 } }],\n  \"seed\": 1,",
    );
    rejects("partition-backwards.json", &bad, &["faults[0].partition.until_ms", "before it starts"]);
}

#[test]
fn an_unknown_invariant_lists_the_invariants() {
    let bad = BASE.replace("\"expect\": \"pass\"", "\"expect\": { \"violation\": \"no-lost-updates\" }");
    rejects("unknown-invariant.json", &bad, &["expect.violation", "no-lost-updates", "kv-linearizable"]);
    let bad = BASE.replace("\"seed\": 1,", "\"invariants\": [\"linearizable\"],\n  \"seed\": 1,");
    rejects("unknown-invariant-list.json", &bad, &["invariants[0]", "executed-at-most-once"]);
}

#[test]
fn a_wrong_type_is_rejected() {
    rejects("wrong-type.json", &BASE.replace("\"seed\": 1", "\"seed\": \"one\""), &["seed", "invalid type"]);
    rejects(
        "negative-time.json",
        &BASE.replace("\"seed\": 1,", "\"limits\": { \"max_time_ms\": -5 },\n  \"seed\": 1,"),
        &["limits.max_time_ms", "-5"],
    );
}

#[test]
fn a_missing_file_and_bad_usage_exit_2() {
    let out = dsim(&["run", "scenarios/does-not-exist.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does-not-exist.json") && stdout(&out).is_empty());
    let out = dsim(&["run", "scenarios/rpc/reliable.json", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let out = dsim(&["bench", "--nodes", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty());
}

#[test]
fn several_files_make_one_comparison_table_and_json_has_the_latency_figures() {
    let pb = "scenarios/primary-backup/compare-3.json";
    let amo = "scenarios/at-most-once/unreliable.json";
    let out = dsim(&["run", pb, amo, "scenarios/clocks/lamport-3.json"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("ops/s") && text.contains("update ms p50/p90/p99/max"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("primary-backup/compare-3")).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert!(text.contains("clocks/lamport-3") && text.contains("(no client history)"), "{text}");

    let out = dsim(&["run", pb, amo, "--format", "json"]);
    let summaries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summaries.as_array().map(Vec::len), Some(2));
    let latency = &summaries[0]["client_latency"];
    assert_eq!(latency["completed"], 200);
    assert!(latency["reads"]["p99_ms"].as_f64().unwrap() >= latency["reads"]["p50_ms"].as_f64().unwrap());

    let one = dsim(&["run", pb]);
    let text = stdout(&one);
    assert!(text.contains("operations per virtual second") && text.contains("latency p50"), "{text}");

    let refused = dsim(&["run", pb, amo, "--trace", "x.txt"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(stderr(&refused).contains("take one scenario file"), "{}", stderr(&refused));
}
