//! `dsim explore` on rpc and at-most-once: the anomaly found in as few steps as a random
//! run needs, the durable table proved within its budgets, every buggy variant caught by
//! name, counterexamples that replay and shrink, and verdicts that do not depend on the
//! search order or on pruning.

mod common;

use common::{dsim, explore, scratch_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};

const RPC: &str = "scenarios/explore/rpc-3-ops.json";
const AMO: &str = "scenarios/explore/amo-durable-2x2.json";

/// The at-most-once explore scenario with `edit` applied to its parameters and workload,
/// written into `dir` as `name.json`.
fn amo_variant(dir: &Path, name: &str, params: Value, workload: Option<Value>) -> PathBuf {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(AMO)).unwrap();
    let mut scenario: Value = serde_json::from_str(&text).unwrap();
    let protocol = scenario["protocol"]["at-most-once"].as_object_mut().unwrap();
    for (key, value) in params.as_object().unwrap() {
        protocol.insert(key.clone(), value.clone());
    }
    if let Some(workload) = workload {
        scenario["workload"] = workload;
    }
    scenario["name"] = Value::from(format!("explore-test/{name}"));
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&scenario).unwrap()).unwrap();
    path
}

fn violated(report: &Value) -> Option<&str> {
    report["violation"]["invariant"].as_str()
}

#[test]
fn the_rpc_anomaly_is_found_in_no_more_steps_than_the_random_run_takes() {
    let out = scratch_dir("explore-rpc");
    let (code, report) = explore(RPC, &["--drops", "1"], &out);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["verdict"], "violation");
    assert_eq!(violated(&report), Some("kv-linearizable"));
    let steps = report["violation"]["steps"].as_u64().unwrap();
    // scenarios/rpc/duplicate-put.json shows it at step 12 of a random run.
    assert!(steps <= 12, "a counterexample of {steps} steps");
    // The failure file replays exactly, by its decisions.
    let file = report["violation"]["failure_file"].as_str().unwrap();
    let replayed = dsim(&["replay", file]);
    assert_eq!(replayed.status.code(), Some(0), "{}", String::from_utf8_lossy(&replayed.stdout));
    assert!(
        String::from_utf8_lossy(&replayed.stdout).contains("replayed: the same violation of kv-linearizable")
    );
    // `dsim run` on it shows the same violation; shrink keeps it failing and replayable.
    let run = dsim(&["run", file]);
    assert_eq!(run.status.code(), Some(0), "the failure file expects its violation");
    let shrunk = out.join("shrunk.json");
    let shrink = dsim(&["shrink", file, "--out", shrunk.to_str().unwrap()]);
    assert_eq!(shrink.status.code(), Some(0), "{}", String::from_utf8_lossy(&shrink.stderr));
    let replayed = dsim(&["replay", shrunk.to_str().unwrap()]);
    assert_eq!(replayed.status.code(), Some(0), "{}", String::from_utf8_lossy(&replayed.stdout));
}

#[test]
fn breadth_first_finds_a_counterexample_no_longer_than_depth_first() {
    let out = scratch_dir("explore-order");
    let (bfs_code, bfs) = explore(RPC, &["--drops", "1"], &out);
    let (dfs_code, dfs) = explore(RPC, &["--drops", "1", "--strategy", "dfs"], &out);
    assert_eq!((bfs_code, dfs_code), (1, 1));
    assert_eq!(violated(&bfs), violated(&dfs));
    assert!(bfs["violation"]["steps"].as_u64() <= dfs["violation"]["steps"].as_u64());
}

#[test]
fn at_most_once_with_a_durable_table_is_exhausted_without_a_violation() {
    let out = scratch_dir("explore-amo");
    let budgets = ["--drops", "1", "--duplicates", "1", "--crashes", "1"];
    let (code, report) = explore(AMO, &budgets, &out);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["verdict"], "exhausted");
    assert!(report["states"].as_u64().unwrap() > 100_000, "{report:#}");
    assert!(report.get("violation").is_none());
}

#[test]
fn every_buggy_at_most_once_variant_is_caught_by_name() {
    let dir = scratch_dir("explore-amo-bugs");
    let cases = [
        (
            "memory-table",
            serde_json::json!({"dedup": "memory"}),
            &["--duplicates", "1", "--crashes", "1"][..],
            "executed-at-most-once",
        ),
        (
            "dedup-off",
            serde_json::json!({"dedup": "none", "discard": "none"}),
            &["--duplicates", "1"][..],
            "executed-at-most-once",
        ),
        (
            "accept-any-reply",
            serde_json::json!({"reply_matching": "accept-any"}),
            &[][..],
            "reply-matches-request",
        ),
        ("discard-without-acks", serde_json::json!({"discard": "none"}), &[][..], "cache-bounded"),
    ];
    for (name, params, budgets, invariant) in cases {
        let file = amo_variant(&dir, name, params, None);
        let (code, report) = explore(file.to_str().unwrap(), budgets, &dir);
        assert_eq!(code, 1, "{name}: {report:#}");
        assert_eq!(violated(&report), Some(invariant), "{name}");
        let replayed = dsim(&["replay", report["violation"]["failure_file"].as_str().unwrap()]);
        assert_eq!(replayed.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&replayed.stdout));
    }
    // The memory table survives duplicates alone: only a crash between the two copies
    // shows it (the bug is the crash losing the table).
    let file = amo_variant(&dir, "memory-table-no-crash", serde_json::json!({"dedup": "memory"}), None);
    let (code, report) = explore(file.to_str().unwrap(), &["--duplicates", "1"], &dir);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn search_order_and_pruning_change_no_verdict() {
    let dir = scratch_dir("explore-agree");
    let small = [
        amo_variant(
            &dir,
            "amo-1x2",
            serde_json::json!({}),
            Some(serde_json::json!({"clients": 1, "ops_per_client": 2, "keys": 1})),
        ),
        amo_variant(
            &dir,
            "amo-2x1",
            serde_json::json!({}),
            Some(serde_json::json!({"clients": 2, "ops_per_client": 1, "keys": 1})),
        ),
        amo_variant(
            &dir,
            "amo-2x1-memory",
            serde_json::json!({"dedup": "memory"}),
            Some(serde_json::json!({"clients": 2, "ops_per_client": 1, "keys": 1})),
        ),
        amo_variant(
            &dir,
            "amo-1x2-accept-any",
            serde_json::json!({"reply_matching": "accept-any"}),
            Some(serde_json::json!({"clients": 1, "ops_per_client": 2, "keys": 1})),
        ),
    ];
    let budgets: [&[&str]; 3] = [&[], &["--drops", "1"], &["--duplicates", "1", "--crashes", "1"]];
    for file in &small {
        let file = file.to_str().unwrap();
        for budget in budgets {
            // Without pruning the search walks the tree of executions, depth-first to keep
            // its memory small: only where the tree is small (one client, or one fault).
            let tree_is_small = file.contains("1x2") || budget.len() < 4;
            let unpruned: &[&str] = &["--no-visited-set", "--strategy", "dfs"];
            let orders: &[&[&str]] = if tree_is_small {
                &[&["--strategy", "bfs"], &["--strategy", "dfs"], unpruned]
            } else {
                &[&["--strategy", "bfs"], &["--strategy", "dfs"]]
            };
            let verdicts: Vec<(i32, Option<String>)> = orders
                .iter()
                .map(|order| {
                    let args: Vec<&str> = budget.iter().chain(order.iter()).copied().collect();
                    let (code, report) = explore(file, &args, &dir);
                    (code, violated(&report).map(str::to_string))
                })
                .collect();
            assert!(verdicts.iter().all(|v| *v == verdicts[0]), "{file} {budget:?}: {verdicts:?}");
            assert!(verdicts[0].0 == 0 || verdicts[0].0 == 1, "{file} {budget:?}: {verdicts:?}");
        }
    }
    // The rpc anomaly, searched both ways, with pruning and without.
    for order in [&["--strategy", "dfs"][..], &["--no-visited-set"]] {
        let args: Vec<&str> = ["--drops", "1"].iter().chain(order.iter()).copied().collect();
        let (code, report) = explore(RPC, &args, &dir);
        assert_eq!((code, violated(&report)), (1, Some("kv-linearizable")), "{order:?}");
    }
}

#[test]
fn a_search_is_deterministic() {
    let dir = scratch_dir("explore-determinism");
    let strip = |mut report: Value| {
        for key in ["elapsed_s", "states_per_s", "peak_bytes_per_state"] {
            report.as_object_mut().unwrap().remove(key);
        }
        report
    };
    let (_, first) = explore(RPC, &["--drops", "1", "--duplicates", "1"], &dir);
    let (_, second) = explore(RPC, &["--drops", "1", "--duplicates", "1"], &dir);
    assert_eq!(strip(first), strip(second));
}

#[test]
fn budgets_stop_a_search_with_exit_3_saying_which() {
    let dir = scratch_dir("explore-budgets");
    let (code, report) = explore(AMO, &["--max-states", "500"], &dir);
    assert_eq!(code, 3);
    assert_eq!(report["stopped_by"]["budget"], "max-states");
    let (code, report) = explore(AMO, &["--max-depth", "3"], &dir);
    assert_eq!(code, 3);
    assert_eq!(report["stopped_by"]["budget"], "max-depth");
    assert_eq!(report["depth"], 3);
    // A breadth-first search of the whole budget holds gigabytes: the memory bound stops it.
    if cfg!(target_os = "linux") {
        let all = ["--drops", "1", "--duplicates", "1", "--crashes", "1", "--max-memory-mb", "16"];
        let (code, report) = explore(AMO, &all, &dir);
        assert_eq!(code, 3, "{report:#}");
        assert_eq!(report["stopped_by"]["budget"], "memory");
    }
    let text = dsim(&["explore", AMO, "--max-depth", "3", "--out", dir.to_str().unwrap()]);
    assert_eq!(text.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&text.stdout).contains("--max-depth 3: states at depth 3 had steps left"));
}

#[test]
fn budgets_outside_the_fault_model_are_refused_with_the_reason() {
    let dir = scratch_dir("explore-refused");
    let out = dir.to_str().unwrap();
    // ping counts pings in flight: no loss, no crash.
    let ping = "scenarios/ping/steady.json";
    for (flag, says) in [("--drops", "assumes no message is lost"), ("--crashes", "allows no crash")] {
        let output = dsim(&["explore", ping, flag, "1", "--out", out]);
        assert_eq!(output.status.code(), Some(2), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{flag}: {stderr}");
        assert!(output.stdout.is_empty(), "no partial output");
    }
    let output = dsim(&["explore", RPC, "--drops", "101", "--out", out]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("at most 100"));
    let output = dsim(&["explore", RPC, "--max-depth", "0", "--out", out]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_schedule_that_does_not_fit_its_run_is_a_clear_error() {
    let dir = scratch_dir("explore-schedule");
    let (_, report) = explore(RPC, &["--drops", "1"], &dir);
    let file = report["violation"]["failure_file"].as_str().unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    // Not a decision at all: the file, line and column, and the forms a decision takes.
    let garbled = dir.join("garbled.json");
    std::fs::write(&garbled, text.replacen("\"deliver m0\"", "\"deliver zero\"", 1)).unwrap();
    let output = dsim(&["replay", garbled.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("garbled.json:") && stderr.contains("\"deliver mN\""), "{stderr}");
    // A decision that is not possible where it comes: which, and what was.
    let impossible = dir.join("impossible.json");
    std::fs::write(&impossible, text.replacen("\"deliver m0\"", "\"deliver m9\"", 1)).unwrap();
    let output = dsim(&["run", impossible.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("decision 1 (deliver m9) is not possible") && stderr.contains("deliver m0"),
        "{stderr}"
    );
    // A crash of a node the scenario does not have.
    let no_node = dir.join("no-node.json");
    std::fs::write(&no_node, text.replacen("\"deliver m0\"", "\"crash n7\"", 1)).unwrap();
    let output = dsim(&["run", no_node.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    // Exploring a failure file that has a schedule already is refused.
    let output = dsim(&["explore", file, "--out", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("follows a schedule already"));
}
