//! Hostile scenario files (issue 12): every class of malformed, contradictory or oversized
//! input gets exit 2 with one located line naming the field, never a panic, an abort, a
//! hang or a silent run. One test per class, then a fuzz target: mutations of the bundled
//! scenarios (a value replaced by a huge, negative or wrongly typed one, a field deleted or
//! written twice, the text cut short or followed by garbage) run through the real binary.
//!
//! `DSIM_FUZZ_CASES` scales the number of fuzz cases (default 64) for long campaigns.

use dsim::scenario::{Scenario, FILE_BYTES_MAX, MEMORY_BUDGET_BYTES};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;
use common::dsim;

fn cases() -> u32 {
    std::env::var("DSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// A scratch file under the target directory, unique per call.
fn scratch(contents: &[u8]) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{}.json", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, contents).unwrap();
    path
}

/// Runs `dsim run` on `text`.
fn run_text(text: &str) -> Output {
    let path = scratch(text.as_bytes());
    let out = dsim(&["run", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    out
}

/// `text` is refused with exit 2, nothing on stdout, and one line on stderr that
/// contains every one of `needles`.
#[track_caller]
fn rejects(text: &str, needles: &[&str]) {
    let out = run_text(text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{text}\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "stdout on an error: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.len() < 400, "a short line: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
}

/// A valid rpc scenario with `extra` merged in at the top level.
fn rpc(extra: Value) -> String {
    let mut scenario = json!({ "name": "hostile", "protocol": { "rpc": {} } });
    merge(&mut scenario, extra);
    scenario.to_string()
}

fn merge(into: &mut Value, extra: Value) {
    for (key, value) in extra.as_object().unwrap() {
        into[key] = value.clone();
    }
}

fn with(protocol: Value, extra: Value) -> String {
    let mut scenario = json!({ "name": "hostile", "protocol": protocol });
    merge(&mut scenario, extra);
    scenario.to_string()
}

#[test]
fn numbers_at_the_ends_of_their_types_are_refused_not_overflowed() {
    // i64::MIN used to pass the drift check (its abs() wraps) and panic in physical.rs.
    for drift in ["-9223372036854775808", "9223372036854775807"] {
        let text =
            r#"{"name":"x","protocol":{"clocks":{}},"physical_clocks":{"nodes":[{"node":0,"drift_ppm":D}]}}"#
                .replace('D', drift);
        rejects(&text, &["physical_clocks.nodes[0].drift_ppm", "too much drift"]);
    }
    rejects(
        &rpc(json!({ "workload": { "think_ms": u64::MAX } })),
        &["workload.think_ms", "at most 1000000000"],
    );
    rejects(&with(json!({ "rpc": { "timeout_ms": u64::MAX } }), json!({})), &["protocol.rpc.timeout_ms"]);
    rejects(
        &with(json!({ "at-most-once": { "execute_ms": u64::MAX } }), json!({})),
        &["protocol.at-most-once.execute_ms"],
    );
    rejects(
        &with(json!({ "clocks": { "interval_ms_min": 1, "interval_ms_max": u64::MAX } }), json!({})),
        &["protocol.clocks.interval_ms_max"],
    );
    rejects(
        &rpc(json!({ "faults": [{ "crash": { "node": 1, "at_ms": 1e300 } }] })),
        &["faults[0].crash.at_ms"],
    );
    rejects(
        &rpc(json!({ "physical_clocks": { "nodes": [{ "node": 0, "offset_ms": -1e300 }] } })),
        &["physical_clocks.nodes[0].offset_ms"],
    );
}

#[test]
fn every_size_has_a_maximum_named_in_the_error() {
    let cases: Vec<(String, &[&str])> = vec![
        (rpc(json!({ "workload": { "clients": u32::MAX } })), &["workload.clients", "4294967295", "10000"]),
        (rpc(json!({ "workload": { "ops_per_client": u32::MAX } })), &["workload.ops_per_client", "100000"]),
        (
            rpc(json!({ "workload": { "clients": 10000, "ops_per_client": 1000 } })),
            &["10000000 operations", "1000000"],
        ),
        (rpc(json!({ "workload": { "keys": u32::MAX } })), &["workload.keys", "1000000"]),
        (with(json!({ "ping": { "nodes": u32::MAX } }), json!({})), &["protocol.ping.nodes", "100000"]),
        (
            with(json!({ "ping": { "in_flight": u32::MAX } }), json!({})),
            &["protocol.ping.in_flight", "100000"],
        ),
        (
            with(json!({ "ping": { "nodes": 100000, "in_flight": 1000 } }), json!({})),
            &["protocol.ping.in_flight", "10000000"],
        ),
        (
            with(json!({ "clocks": { "processes": 500 } }), json!({})),
            &["protocol.clocks.processes", "2 to 250"],
        ),
        (
            with(json!({ "clocks": { "actions_per_process": u32::MAX } }), json!({})),
            &["protocol.clocks.actions_per_process", "100000"],
        ),
        (rpc(json!({ "fuzz": { "crashes_max": u32::MAX } })), &["fuzz.crashes_max", "at most 100"]),
        (rpc(json!({ "fuzz": { "partitions_max": 1_000_000 } })), &["fuzz.partitions_max", "at most 100"]),
        (rpc(json!({ "limits": { "max_steps": u64::MAX } })), &["limits.max_steps", "1000000000"]),
    ];
    for (text, needles) in cases {
        rejects(&text, needles);
    }
    // Lists: a script of too many clients, too many faults, too many link overrides.
    let script: Vec<Value> = (0..10_001).map(|_| json!([{ "op": "get", "key": "k" }])).collect();
    rejects(
        &rpc(json!({ "workload": { "script": script } })),
        &["workload.script", "10001 clients", "10000"],
    );
    let faults: Vec<Value> = (0..10_001).map(|i| json!({ "crash": { "node": 1, "at_ms": i } })).collect();
    rejects(&rpc(json!({ "faults": faults })), &["faults", "10001 entries", "10000"]);
    let links: Vec<Value> = (0..100_001).map(|_| json!({ "from": 0, "to": 1, "set": {} })).collect();
    rejects(&rpc(json!({ "network": { "links": links } })), &["network.links", "100001 entries"]);
    // Each size within its maximum, but the run as a whole above the memory budget.
    let budget = format!("{} MiB", MEMORY_BUDGET_BYTES >> 20);
    rejects(
        &with(json!({ "clocks": { "processes": 250, "actions_per_process": 1000 } }), json!({})),
        &["memory", &budget],
    );
}

#[test]
fn the_documented_maxima_are_accepted() {
    let at_max = [
        with(json!({ "clocks": { "processes": 250 } }), json!({})),
        with(json!({ "ping": { "nodes": 100000, "in_flight": 100 } }), json!({})),
        rpc(json!({ "workload": { "clients": 10000, "ops_per_client": 100, "keys": 1000000 } })),
        rpc(json!({ "fuzz": { "crashes_max": 100, "partitions_max": 100 } })),
    ];
    for text in at_max {
        let scenario = Scenario::parse("max.json", &text).unwrap_or_else(|e| panic!("{e}"));
        assert!(scenario.memory_estimate() <= MEMORY_BUDGET_BYTES);
    }
}

#[test]
fn files_are_read_up_to_a_limit_and_a_byte_order_mark_is_accepted() {
    let out = dsim(&["run", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("16 MiB"));
    let big = scratch(&vec![b' '; FILE_BYTES_MAX as usize + 1]);
    let out = dsim(&["run", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("16 MiB"));
    std::fs::remove_file(big).ok();

    let mut text = "\u{feff}".to_string();
    text.push_str(&rpc(json!({ "workload": { "clients": 1, "ops_per_client": 2 } })));
    let out = run_text(&text);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Errors after the mark still point at the right column (the mark takes none).
    rejects(&format!("\u{feff}{}", rpc(json!({ "seed": -1 }))), &[":1:", "seed"]);
}

#[test]
fn a_file_holds_exactly_one_object() {
    let valid = rpc(json!({}));
    rejects(&format!("{valid} xyz"), &["after the JSON object"]);
    rejects(&format!("{valid}\n{valid}"), &[":2:", "after the JSON object"]);
    rejects(&format!("{valid}\n<<<<<<< HEAD\n"), &["after the JSON object"]);
    rejects(r#"["hostile", {"rpc": {}}]"#, &[":1:1:", "found an array"]);
    rejects("42", &["expected one JSON object"]);
    rejects(" \n", &["empty"]);
    rejects(
        &format!(r#"{{"format": "dsim-failure", "version": 1, "scenario": {}}}"#, "[1, 2]"),
        &["scenario"],
    );
}

#[test]
fn contradictory_timelines_are_refused() {
    let partition =
        |at: f64, until: f64| json!({ "partition": { "groups": [[0]], "at_ms": at, "until_ms": until } });
    rejects(
        &rpc(json!({ "faults": [partition(100.0, 200.0)], "limits": { "heal_at_ms": 50 } })),
        &["limits.heal_at_ms", "faults[0]", "200 ms"],
    );
    rejects(
        &rpc(json!({ "faults": [{ "crash": { "node": 1, "at_ms": 300 } }], "limits": { "heal_at_ms": 50 } })),
        &["limits.heal_at_ms"],
    );
    rejects(&with(json!({ "ping": {} }), json!({ "limits": { "end_at_ms": 0 } })), &["limits.end_at_ms"]);
    rejects(&rpc(json!({ "limits": { "max_time_ms": 0 } })), &["limits.max_time_ms", "after 0"]);
    rejects(
        &with(json!({ "ping": {} }), json!({ "limits": { "end_at_ms": 5000, "max_time_ms": 1000 } })),
        &["limits.end_at_ms", "max_time_ms"],
    );
    rejects(
        &rpc(
            json!({ "faults": [{ "crash": { "node": 1, "at_ms": 5000 } }], "limits": { "max_time_ms": 1000 } }),
        ),
        &["faults[0].crash.at_ms", "never happen"],
    );
    rejects(
        &with(
            json!({ "ping": {} }),
            json!({ "faults": [partition(400.0, 500.0)], "limits": { "end_at_ms": 300 } }),
        ),
        &["faults[0].partition.at_ms", "limits.end_at_ms"],
    );
    rejects(&rpc(json!({ "limits": { "heal_at_ms": 5000, "max_time_ms": 1000 } })), &["limits.heal_at_ms"]);
    for until in [100.0, 50.0] {
        rejects(
            &rpc(json!({ "faults": [partition(100.0, until)] })),
            &["faults[0].partition.until_ms", "before it starts"],
        );
    }
    rejects(
        &rpc(json!({ "fuzz": { "fault_window_ms": 5000 }, "limits": { "max_time_ms": 1000 } })),
        &["fuzz.fault_window_ms"],
    );
}

/// The stricter checks must not reject what `fuzz --swarm` draws: its failure files embed
/// the drawn scenario, and they must load.
#[test]
fn swarm_draws_of_every_bundled_scenario_pass_validation() {
    for path in dsim::bundled_scenarios() {
        let scenario = Scenario::load(&path).unwrap();
        for seed in 0..200 {
            let (drawn, _) = dsim::fuzz::swarm(&scenario, seed);
            let text = serde_json::to_string_pretty(&drawn).unwrap();
            if let Err(err) = Scenario::parse("drawn.json", &text) {
                panic!("{}, seed {seed}: {err}\n{text}", path.display());
            }
        }
    }
}

#[test]
fn nonsense_is_refused_with_the_field_named() {
    let clients = |n: u32| json!({ "workload": { "clients": n } });
    let fault = |f: Value| {
        let mut extra = clients(3);
        extra["faults"] = json!([f]);
        rpc(extra)
    };
    let cases: Vec<(String, &[&str])> = vec![
        (
            fault(json!({ "partition": { "groups": [], "at_ms": 1 } })),
            &["faults[0].partition.groups", "no groups"],
        ),
        (
            fault(json!({ "partition": { "groups": [[0], []], "at_ms": 1 } })),
            &["faults[0].partition.groups[1]", "empty"],
        ),
        (
            fault(json!({ "partition": { "groups": [[0, 1], [1]], "at_ms": 1 } })),
            &["groups[1][0]", "node 1 is listed twice"],
        ),
        (
            fault(json!({ "partition": { "groups": [[0, 1, 2, 3]], "at_ms": 1 } })),
            &["groups", "nothing is cut off"],
        ),
        (
            fault(json!({ "partition-one-way": { "from": [0], "to": [2, 0], "at_ms": 1 } })),
            &["partition-one-way.to[1]", "cut off from itself"],
        ),
        (
            fault(json!({ "partition-one-way": { "from": [], "to": [1], "at_ms": 1 } })),
            &["partition-one-way.from"],
        ),
        (
            rpc(json!({ "network": { "links": [
                { "from": 0, "to": 1, "set": { "drop_probability": 0.1 } },
                { "from": 0, "to": 1, "set": { "drop_probability": 0.2 } } ] } })),
            &["network.links[1]", "already set by network.links[0]"],
        ),
        (rpc(json!({ "invariants": [] })), &["invariants", "checks nothing", "kv-linearizable"]),
        (rpc(json!({ "invariants": ["kv-linearizable", "kv-linearizable"] })), &["invariants[1]", "twice"]),
        (rpc(json!({ "invariants": ["pings-conserved"] })), &["invariants[0]", "valid choices"]),
        (with(json!({ "ping": {} }), clients(2)), &["workload", "ping has no"]),
        (
            with(json!({ "clocks": {} }), json!({ "workload": { "script": [[]] } })),
            &["workload", "clocks has no"],
        ),
        (
            rpc(json!({ "workload": { "clients": 4, "script": [[{ "op": "get", "key": "k" }]] } })),
            &["workload.clients", "script"],
        ),
        (
            rpc(json!({ "workload": { "ops_per_client": 4, "script": [[{ "op": "get", "key": "k" }]] } })),
            &["workload.ops_per_client", "script"],
        ),
        (
            rpc(
                json!({ "network": { "all_links": { "latency": { "exponential": { "ms_mean": 50, "ms_min": 1, "ms_max": 10 } } } } }),
            ),
            &["latency.exponential.ms_mean", "outside"],
        ),
        (with(json!({ "ping": { "in_flight": 0 } }), json!({})), &["protocol.ping.in_flight", "at least 1"]),
        (rpc(json!({ "fuzz": { "drop_probability": [0.1, 1.5] } })), &["fuzz.drop_probability[1]", "0 to 1"]),
        (
            rpc(json!({ "fuzz": { "slow_probability": [-0.5, 0.5] } })),
            &["fuzz.slow_probability[0]", "0 to 1"],
        ),
        (
            rpc(json!({ "network": { "all_links": { "duplicate_probability": -0.1 } } })),
            &["duplicate_probability"],
        ),
        (
            rpc(
                json!({ "network": { "all_links": { "slow": { "probability": 2, "latency": { "constant": { "ms": 1 } } } } } }),
            ),
            &["slow.probability"],
        ),
    ];
    for (text, needles) in cases {
        rejects(&text, needles);
    }
}

#[test]
fn messages_name_the_field_and_what_is_valid_in_one_line() {
    let mut names: Vec<String> = dsim::registry().iter().map(|p| format!("`{}`", p.name())).collect();
    names.sort();
    let protocols = names.join(", ");
    let protocols = protocols.as_str();
    rejects(r#"{"name":"x","protocol":{}}"#, &["protocol:", "exactly one key", protocols]);
    rejects(r#"{"name":"x","protocol":{"rpc":{},"ping":{}}}"#, &["protocol:", "exactly one key", protocols]);
    rejects(r#"{"name":"x","protocol":"rpc"}"#, &["protocol:", r#"{"rpc": {...}}"#]);
    rejects(
        &rpc(
            json!({ "faults": [{ "crash": { "node": 1, "at_ms": 1 }, "restart": { "node": 1, "at_ms": 2 } }] }),
        ),
        &["faults[0]", "exactly one key", "`partition-one-way`"],
    );
    // Numbers serde cannot hold as written: quoted back as written, cut short.
    let raw = |rest: &str| format!(r#"{{"name":"x","protocol":{{"rpc":{{}}}},{rest}}}"#);
    rejects(
        &rpc(json!({ "network": { "all_links": { "ordering": {} } } })),
        &["network.all_links.ordering", "expected a string, one of `reorder`, `fifo`"],
    );
    rejects(
        &rpc(json!({ "network": { "preset": { "reliable": 1 } } })),
        &["network.preset", "`long-delays`"],
    );
    rejects(&rpc(json!({ "expect": "violation" })), &["expect.violation", r#"{"violation": "INVARIANT"}"#]);
    rejects(&rpc(json!({ "expect": {} })), &["expect", "`pass`, `violation`"]);
    // An array where an object belongs: serde would take its items as the fields in order.
    rejects(&rpc(json!({ "limits": [1, 2] })), &["limits", "found an array"]);
    rejects(&with(json!({ "rpc": [100, 3] }), json!({})), &["protocol.rpc", "found an array"]);
    rejects(&rpc(json!({ "faults": [{ "crash": [1, 2] }] })), &["faults[0].crash", "found an array"]);
    rejects(
        &with(json!({ "clocks": {} }), json!({ "physical_clocks": { "nodes": [[0, 1.0, 5]] } })),
        &["physical_clocks.nodes[0]", "found an array"],
    );
    let huge = format!("1{}", "0".repeat(300));
    rejects(&raw(&format!(r#""seed":{huge}"#)), &["seed", "10000000000000000000…"]);
    rejects(
        &raw(&format!(r#""limits":{{"max_time_ms":{huge}}}"#)),
        &["max_time_ms", "1e300 is not a valid time"],
    );
    rejects(
        &raw(&format!(r#""workload":{{"clients":-{huge}}}"#)),
        &["workload.clients", "…", "0..=4294967295"],
    );
    rejects(
        &raw(r#""seed":18446744073709551616"#),
        &["seed", "18446744073709551616 is not valid", "integer in 0..=18446744073709551615"],
    );
    rejects(&rpc(json!({ "seed": 1.5 })), &["seed", "integer"]);
    rejects(
        &rpc(json!({ "seed": "a".repeat(100_000) })),
        &["seed", "integer in 0..=18446744073709551615", "…"],
    );
    rejects(
        &rpc(json!({ "fuzz": { "drop_probability": [0.1, 0.2, 0.3] } })),
        &["fuzz.drop_probability", "[low, high]"],
    );
    let deep = format!(
        r#"{{"name":"x","protocol":{{"rpc":{{}}}},"description":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    rejects(&deep, &["description", "nested too deeply"]);
    for text in [r#"{"name":"x","protocol":{}}"#, r#"{"name":"x","protocol":"rpc"}"#] {
        let stderr = String::from_utf8_lossy(&run_text(text).stderr).into_owned();
        assert!(!stderr.contains("expected value") && !stderr.contains("unit variant"), "{stderr}");
    }
}

/// Address space a fuzzed run may use: twice the memory budget, so a run whose memory the
/// estimate missed fails to allocate (and aborts, which the test reports) rather than
/// taking the machine.
const ADDRESS_SPACE_KIB: u64 = 2 * (MEMORY_BUDGET_BYTES >> 10);

/// Runs `dsim run FILE` with its address space capped, and kills it if it outlives
/// `limit` (a hang). Without sleeping: a thread waits for the process, this one waits for
/// the thread's word.
fn run_guarded(path: &Path, limit: Duration) -> Result<Output, String> {
    let script = format!("ulimit -v {ADDRESS_SPACE_KIB} && exec \"$0\" run \"$1\"");
    let child = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_dsim"), path.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dsim starts");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        done.send(()).ok();
        out
    });
    if finished.recv_timeout(limit).is_err() {
        Command::new("kill").args(["-9", &pid.to_string()]).status().ok();
        waiter.join().ok();
        return Err(format!("dsim run {} still running after {limit:?}: a hang", path.display()));
    }
    Ok(waiter.join().expect("the waiter").expect("dsim ran"))
}

/// The bundled scenarios, each with small run limits so that a mutation that leaves a
/// valid scenario still runs quickly.
fn bases() -> Vec<Value> {
    dsim::bundled_scenarios()
        .iter()
        .map(|path| {
            let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            value["limits"]["max_steps"] = json!(20_000);
            value
        })
        .collect()
}

/// Every path to a value in `value` (object keys and array indexes), the root first.
fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(Step::Key(key.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn at<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// The values a hostile user puts where a number, string or object belongs.
fn hostile_value(pick: usize) -> Value {
    let values = [
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e300),
        json!(-1e300),
        json!(-1),
        json!(0),
        json!(1),
        json!(0.5),
        json!(u32::MAX),
        json!(4_294_967_296u64),
        // The documented maxima: valid, so the run must still be bounded.
        json!(250),
        json!(10_000),
        json!(100_000),
        json!(1_000_000_000),
        json!(""),
        json!("rpc"),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!([[0], []]),
        json!({ "rpc": {}, "ping": {} }),
    ];
    values[pick % values.len()].clone()
}

/// JSON text of `value` in which the `target`th object (in document order, counted by
/// `seen`) writes its first key twice.
fn write_with_duplicate(value: &Value, target: usize, seen: &mut usize, out: &mut String) {
    match value {
        Value::Object(map) => {
            let duplicate = *seen == target;
            *seen += 1;
            out.push('{');
            for (n, (key, child)) in map.iter().enumerate() {
                for copy in 0..if duplicate && n == 0 { 2 } else { 1 } {
                    if n > 0 || copy > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(key).unwrap());
                    out.push(':');
                    write_with_duplicate(child, target, seen, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, child) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_with_duplicate(child, target, seen, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// One hostile edit of a bundled scenario, as text.
fn mutate(base: &Value, kind: usize, pick: usize, value_pick: usize, cut: usize) -> String {
    let mut value = base.clone();
    let mut all = Vec::new();
    paths(&value, &mut Vec::new(), &mut all);
    let path = all[pick % all.len()].clone();
    match kind % 6 {
        0 | 1 => *at(&mut value, &path) = hostile_value(value_pick),
        2 => {
            // Delete the field or array element.
            if let Some((last, parent)) = path.split_last() {
                match (at(&mut value, parent), last) {
                    (Value::Object(map), Step::Key(k)) => {
                        map.remove(k);
                    }
                    (Value::Array(items), Step::Index(i)) => {
                        items.remove(*i);
                    }
                    _ => {}
                }
            }
        }
        3 => {
            // Write some object's first key twice.
            let objects = all.iter().filter(|p| at(&mut value.clone(), p).is_object()).count();
            let mut out = String::new();
            write_with_duplicate(&value, pick % objects, &mut 0, &mut out);
            return out;
        }
        4 => {
            let text = serde_json::to_string_pretty(&value).unwrap();
            let mut cut = cut % text.len().max(1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return text[..cut].to_string();
        }
        _ => {
            let garbage = ["xyz", "{}", "\n<<<<<<< HEAD\n", "\u{0}", "]", ",", "\u{feff}"];
            return format!("{}{}", value, garbage[value_pick % garbage.len()]);
        }
    }
    value.to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Whatever a hostile edit does to a bundled scenario, dsim ends in time and within
    /// twice its memory budget with one of its documented exit codes (0 met, 1 not met,
    /// 2 bad input): never a panic (101), an abort (134) or a signal; and a refusal
    /// explains itself in one short line on stderr, with nothing on stdout.
    #[test]
    fn hostile_edits_of_bundled_scenarios_exit_0_1_or_2(
        base in any::<prop::sample::Index>(),
        kind in 0usize..6,
        pick in any::<usize>(),
        value_pick in any::<usize>(),
        cut in any::<usize>(),
    ) {
        let bases = bases();
        let text = mutate(&bases[base.index(bases.len())], kind, pick, value_pick, cut);
        let path = scratch(text.as_bytes());
        let out = run_guarded(&path, Duration::from_secs(120));
        std::fs::remove_file(&path).ok();
        let out = out.map_err(|hang| TestCaseError::fail(format!("{hang}\n{text}")))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        prop_assert!(matches!(code, Some(0..=2)), "exit {:?} (signal or panic)\n{}\n{}", out.status, stderr, text);
        prop_assert!(!stderr.contains("panicked"), "{}\n{}", stderr, text);
        if code == Some(2) {
            prop_assert!(out.stdout.is_empty(), "stdout on exit 2: {}", String::from_utf8_lossy(&out.stdout));
            prop_assert!(!stderr.trim().is_empty(), "exit 2 without a word\n{}", text);
            prop_assert_eq!(stderr.trim_end().lines().count(), 1, "one line\n{}\n{}", stderr, text);
            prop_assert!(stderr.len() < 600, "a short line (values are cut short)\n{}", stderr);
        }
    }
}
