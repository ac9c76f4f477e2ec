//! `dsim check-history`: hand-written histories per model (with unknown outcomes and
//! pending calls), Jepsen EDN, bad input through the real binary, explanations, the
//! round trip from `dsim run --history`, and a proptest: a sequential execution of random
//! operations, given random overlapping intervals around each operation's real moment, is
//! always linearizable. `DSIM_FUZZ_CASES` scales the proptest (default 64).

mod common;

use dsim::check_history::{check_text, InputFormat, ModelName, Options, Verdict};
use dsim::runner::{self, CausalExports};
use dsim::scenario::Scenario;
use proptest::prelude::*;
use serde_json::{json, Value};
use sim_core::TraceMode;
use std::process::{Command, Stdio};

fn options(model: ModelName) -> Options {
    Options {
        model,
        initial: None,
        input: None,
        budget: 1_000_000,
        budget_is_default: false,
        timeout_s: 60.0,
        timeout_is_default: false,
        json: false,
    }
}

fn check(model: ModelName, text: &str) -> Verdict {
    check_text(text, "test", &options(model)).unwrap_or_else(|err| panic!("bad input: {err}\n{text}"))
}

/// JSON Lines from `(process, type, f, value)` tuples.
fn lines(events: &[(i64, &str, &str, Value)]) -> String {
    events
        .iter()
        .map(|(p, t, f, v)| json!({"process": p, "type": t, "f": f, "value": v}).to_string() + "\n")
        .collect()
}

fn verdict(model: ModelName, events: &[(i64, &str, &str, Value)]) -> u8 {
    check(model, &lines(events)).exit
}

const NULL: Value = Value::Null;

#[test]
fn register_histories() {
    use ModelName::Register;
    // Write 1, then a read of 1: fine; a read of nil after it: stale.
    let ok = [
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", json!(1)),
    ];
    assert_eq!(verdict(Register, &ok), 0);
    let stale = [
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", NULL),
    ];
    assert_eq!(verdict(Register, &stale), 1);
    // A failed cas is an observation: the register did not hold 1. After write 1 it did.
    let failed_cas = [
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "cas", json!([1, 2])),
        (1, "fail", "cas", json!([1, 2])),
    ];
    assert_eq!(verdict(Register, &failed_cas), 1);
    // An info write may take effect late, or never; a pending one likewise.
    let info = [
        (0, "invoke", "write", json!(3)),
        (0, "info", "write", json!(3)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", NULL),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", json!(3)),
    ];
    assert_eq!(verdict(Register, &info), 0);
    let pending = [
        (0, "invoke", "write", json!(3)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", json!(3)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", NULL),
    ];
    assert_eq!(verdict(Register, &pending), 1, "once seen, a write cannot be undone");
    // A failed write did not take effect.
    let failed_write = [
        (0, "invoke", "write", json!(3)),
        (0, "fail", "write", json!(3)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", json!(3)),
    ];
    assert_eq!(verdict(Register, &failed_write), 1);
}

#[test]
fn cas_register_follows_knossos() {
    use ModelName::CasRegister;
    // The failed cas constrains nothing under Knossos (it would under `register`).
    let failed_cas = [
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "cas", json!([1, 2])),
        (1, "fail", "cas", json!([1, 2])),
    ];
    assert_eq!(verdict(CasRegister, &failed_cas), 0);
    // A nil read is a read of an unknown value.
    let nil_read = [
        (0, "invoke", "write", json!(1)),
        (0, "ok", "write", json!(1)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", NULL),
    ];
    assert_eq!(verdict(CasRegister, &nil_read), 0);
    // --initial: a read of 0 before any write.
    let read_zero = [(1, "invoke", "read", NULL), (1, "ok", "read", json!(0))];
    let mut with_initial = options(CasRegister);
    with_initial.initial = Some("0".into());
    assert_eq!(check_text(&lines(&read_zero), "t", &with_initial).unwrap().exit, 0);
    assert_eq!(verdict(CasRegister, &read_zero), 1);
    let cas = [
        (0, "invoke", "cas", json!([0, 5])),
        (0, "ok", "cas", json!([0, 5])),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", json!(0)),
    ];
    assert_eq!(check_text(&lines(&cas), "t", &with_initial).unwrap().exit, 1);
}

#[test]
fn mutex_set_and_queue_histories() {
    use ModelName::{FifoQueue, Mutex, Set};
    let two_holders = [
        (0, "invoke", "acquire", NULL),
        (0, "ok", "acquire", NULL),
        (1, "invoke", "acquire", NULL),
        (1, "ok", "acquire", NULL),
    ];
    assert_eq!(verdict(Mutex, &two_holders), 1);
    let crashed_release = [
        (0, "invoke", "acquire", NULL),
        (0, "ok", "acquire", NULL),
        (0, "invoke", "release", NULL),
        (1, "invoke", "acquire", NULL),
        (1, "ok", "acquire", NULL),
    ];
    assert_eq!(verdict(Mutex, &crashed_release), 0);
    let set_ok = [
        (0, "invoke", "add", json!(1)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", json!([1])),
        (0, "info", "add", json!(1)),
        (0, "invoke", "add", json!(2)),
        (0, "ok", "add", json!(2)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", json!([1, 2])),
    ];
    assert_eq!(verdict(Set, &set_ok), 0);
    let set_lost = [
        (0, "invoke", "add", json!(1)),
        (0, "ok", "add", json!(1)),
        (1, "invoke", "read", NULL),
        (1, "ok", "read", json!([])),
    ];
    assert_eq!(verdict(Set, &set_lost), 1);
    let queue_ok = [
        (0, "invoke", "enqueue", json!(1)),
        (1, "invoke", "enqueue", json!(2)),
        (0, "ok", "enqueue", json!(1)),
        (1, "ok", "enqueue", json!(2)),
        (2, "invoke", "dequeue", NULL),
        (2, "ok", "dequeue", json!(2)),
        (2, "invoke", "dequeue", NULL),
        (3, "invoke", "enqueue", json!(3)),
    ];
    assert_eq!(verdict(FifoQueue, &queue_ok), 0);
    let queue_reordered = [
        (0, "invoke", "enqueue", json!(1)),
        (0, "ok", "enqueue", json!(1)),
        (0, "invoke", "enqueue", json!(2)),
        (0, "ok", "enqueue", json!(2)),
        (2, "invoke", "dequeue", NULL),
        (2, "ok", "dequeue", json!(2)),
    ];
    assert_eq!(verdict(FifoQueue, &queue_reordered), 1);
}

#[test]
fn kv_histories_are_checked_key_by_key() {
    let text = [
        json!({"process": 0, "type": "invoke", "f": "put", "key": "a", "value": "x"}),
        json!({"process": 1, "type": "invoke", "f": "append", "key": "b", "value": "y"}),
        json!({"process": 0, "type": "ok", "f": "put", "key": "a", "value": "x"}),
        json!({"process": 1, "type": "info", "f": "append", "key": "b", "value": "y"}),
        json!({"process": 2, "type": "invoke", "f": "get", "key": "a", "value": null}),
        json!({"process": 2, "type": "ok", "f": "get", "key": "a", "value": "x"}),
        json!({"process": 2, "type": "invoke", "f": "get", "key": "b", "value": null}),
        json!({"process": 2, "type": "ok", "f": "get", "key": "b", "value": ""}),
        json!({"process": 3, "type": "invoke", "f": "get", "key": "b", "value": null}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    assert_eq!(check(ModelName::Kv, &text).exit, 0);
    // Read "" after put x returned: stale, on key a only.
    let bad = text.replace(
        r#""f":"get","key":"a","process":2,"type":"ok","value":"x""#,
        r#""f":"get","key":"a","process":2,"type":"ok","value":"""#,
    );
    assert_ne!(bad, text, "the edit applies");
    let verdict = check(ModelName::Kv, &bad);
    assert_eq!(verdict.exit, 1, "{}", verdict.output);
    assert!(verdict.output.contains("key \"a\""), "{}", verdict.output);
}

#[test]
fn jepsen_edn_history_is_read() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/history.edn");
    let text = std::fs::read_to_string(path).expect("the test file");
    let mut opts = options(ModelName::CasRegister);
    opts.initial = Some("0".into());
    let verdict = check_text(&text, "history.edn", &opts).expect("reads");
    assert_eq!(verdict.exit, 0, "{}", verdict.output);
    assert!(verdict.output.contains("ignored  4 nemesis events"), "{}", verdict.output);
    // The same history with a read no order explains.
    let broken = text.replace(":value 3, :time 900", ":value 4, :time 900");
    assert_ne!(broken, text);
    let verdict = check_text(&broken, "history.edn", &opts).expect("reads");
    assert_eq!(verdict.exit, 1, "{}", verdict.output);
    assert!(verdict.output.contains("operation"), "{}", verdict.output);
    // The failed cas counts under `register`: there, the history is not linearizable.
    let as_register = check_text(&text, "history.edn", &options(ModelName::Register)).expect("reads");
    assert_eq!(as_register.exit, 1, "{}", as_register.output);
    // A vector top and a list top read alike.
    let vector = format!("[{text}\n]");
    assert_eq!(check_text(&vector, "v.edn", &opts).expect("reads").exit, 0);
    let list = format!("(\n{text}\n)");
    assert_eq!(check_text(&list, "l.edn", &opts).expect("reads").exit, 0);
    let mut forced = opts.clone();
    forced.input = Some(InputFormat::Edn);
    assert_eq!(check_text(&text, "f.edn", &forced).expect("reads").exit, 0);
}

#[test]
fn edn_independent_kv_tuples() {
    let text = r#"
{:process 0, :type :invoke, :f :write, :value [:x "1"]}
{:process 0, :type :ok, :f :write, :value [:x "1"]}
{:process 1, :type :invoke, :f :read, :value [:x nil]}
{:process 1, :type :ok, :f :read, :value [:x "1"]}
{:process 1, :type :invoke, :f :read, :value [:y nil]}
{:process 1, :type :ok, :f :read, :value [:y "1"]}
"#;
    let verdict = check(ModelName::Kv, text);
    assert_eq!(verdict.exit, 1, "{}", verdict.output);
    assert!(verdict.output.contains("key \":y\""), "{}", verdict.output);
    assert_eq!(check(ModelName::Kv, &text.replace(r#"[:y "1"]}"#, r#"[:y nil]}"#)).exit, 0);
}

#[test]
fn an_explanation_names_the_operation_the_interval_and_the_state() {
    let events = [
        (0, "invoke", "write", json!(10)),
        (0, "ok", "write", json!(10)),
        (0, "invoke", "write", json!(20)),
        (1, "invoke", "read", NULL),
        (0, "ok", "write", json!(20)),
        (1, "ok", "read", json!(20)),
        (2, "invoke", "read", NULL),
        (2, "ok", "read", json!(10)),
    ];
    let verdict = check(ModelName::Register, &lines(&events));
    assert_eq!(verdict.exit, 1);
    let out = &verdict.output;
    assert!(out.contains("by line 8"), "{out}");
    assert!(out.contains("7-8  p2 read -> 10"), "{out}");
    assert!(out.contains("it leaves state 20"), "{out}");
    let mut json_options = options(ModelName::Register);
    json_options.json = true;
    let json: Value =
        serde_json::from_str(&check_text(&lines(&events), "t", &json_options).unwrap().output).unwrap();
    assert_eq!(json["verdict"], "not-linearizable");
    let explanation = &json["explanations"][0];
    assert_eq!(explanation["could_not_place"]["interval"], "7-8");
    assert_eq!(explanation["state"], "20");
    assert_eq!(explanation["fails_at"]["line"], 8);
}

#[test]
fn a_budget_that_runs_out_is_unknown() {
    // Twelve overlapping writes, then a read nothing explains.
    let mut events: Vec<(i64, &str, &str, Value)> =
        (0..12).map(|p| (p, "invoke", "write", json!(p))).collect();
    events.extend((0..12).map(|p| (p, "ok", "write", json!(p))));
    events.push((99, "invoke", "read", NULL));
    events.push((99, "ok", "read", json!(77)));
    let mut small = options(ModelName::Register);
    small.budget = 100;
    let undecided = check_text(&lines(&events), "t", &small).unwrap();
    assert_eq!(undecided.exit, 3, "{}", undecided.output);
    assert!(undecided.output.contains("budget 100 configurations"), "{}", undecided.output);
    assert_eq!(verdict(ModelName::Register, &events), 1);
}

/// Runs the binary with `args`, `stdin` on its standard input.
fn dsim_with_input(args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dsim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dsim starts");
    child.stdin.take().expect("piped").write_all(stdin.as_bytes()).expect("written");
    child.wait_with_output().expect("dsim ends")
}

#[test]
fn bad_input_is_one_line_naming_where_and_exit_2() {
    let invoke = |p: i64, f: &str| json!({"process": p, "type": "invoke", "f": f, "value": null}).to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "register",
            format!("{}\n{}\n", invoke(0, "read"), invoke(0, "read")),
            "line 2: process 0 invokes read before",
        ),
        (
            "register",
            json!({"process": 0, "type": "ok", "f": "read", "value": 1}).to_string(),
            "line 1: process 0 completes read it never invoked",
        ),
        (
            "register",
            invoke(0, "frobnicate"),
            "line 1: f frobnicate is not an operation of the register model",
        ),
        (
            "register",
            json!({"process": 0, "type": "done", "f": "read"}).to_string(),
            "line 1: type \"done\" is none of",
        ),
        (
            "register",
            json!({"process": 0, "type": "invoke", "f": "cas", "value": 3}).to_string(),
            "line 1: cas value must be [expected new]",
        ),
        ("register", format!("{}\n{{not json\n", invoke(0, "read")), "line 2: not JSON"),
        ("kv", invoke(0, "get"), "line 1: a kv operation names its key"),
        (
            "mutex",
            "{:process 0 :type :invoke :f :acquire}\n{:process 0 :type :ok :f :release}\n".into(),
            "operation 2: process 0 completes release but invoked acquire",
        ),
        ("register", "{:process 0 :type :invoke :f :read\n".into(), "not EDN"),
        (
            "set",
            json!({"process": 0, "type": "invoke", "f": "add", "value": [1]}).to_string(),
            "line 1: add value must be",
        ),
    ];
    for (model, input, expected) in cases {
        let out = dsim_with_input(&["check-history", "--model", model, "-"], &input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{input}: {stderr}");
        assert!(out.stdout.is_empty(), "{input}: nothing on stdout");
        assert_eq!(stderr.lines().count(), 1, "{input}: one line: {stderr}");
        assert!(stderr.contains(expected), "{input}: {stderr} should say {expected}");
    }
    let missing = common::dsim(&["check-history", "--model", "kv", "no/such/file.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
    let initial = common::dsim(&["check-history", "--model", "kv", "--initial", "0", "-"]);
    assert_eq!(initial.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&initial.stderr).contains("--initial is for --model cas-register"));
    let model = common::dsim(&["check-history", "--model", "stack", "-"]);
    assert_eq!(model.status.code(), Some(2));
}

#[test]
fn the_binary_reads_a_file_and_prints_json() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/history.edn");
    let out = common::dsim(&[
        "check-history",
        "--model",
        "cas-register",
        "--initial",
        "0",
        path,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["verdict"], "linearizable");
    assert_eq!(json["skipped_non_client_events"], 4);
    let listed = common::dsim(&["list"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    for model in ["kv", "register", "cas-register", "mutex", "set", "fifo-queue"] {
        assert!(listed.contains(&format!("  {model} ")), "dsim list names {model}");
    }
}

/// The client history a run exports gets the verdict the run's kv-linearizable gave.
#[test]
fn exported_run_histories_get_the_run_s_verdict() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut violations = 0;
    for (file, seeds) in [
        ("at-most-once/dedup-off.json", 0..40),
        ("rpc/duplicate-put.json", 0..20),
        ("at-most-once/unreliable.json", 0..5),
        ("rpc/reliable.json", 0..3),
    ] {
        let mut scenario =
            Scenario::load(std::path::Path::new(&format!("{root}/scenarios/{file}"))).expect("loads");
        scenario.invariants = Some(vec!["kv-linearizable".into()]);
        for seed in seeds {
            let mut history = Vec::new();
            let exports = CausalExports { history: Some(&mut history), ..CausalExports::default() };
            let summary =
                runner::run_with_exports(&scenario, file, Some(seed), TraceMode::HashOnly, None, exports)
                    .expect("runs");
            let run_verdict = match &summary.outcome {
                sim_core::Outcome::Violation(v) if v.invariant == "kv-linearizable" => 1,
                sim_core::Outcome::Undecided(_) => continue,
                _ => 0,
            };
            violations += run_verdict;
            let text = String::from_utf8(history).expect("UTF-8");
            let checked = check(ModelName::Kv, &text);
            assert_eq!(checked.exit, run_verdict, "{file} seed {seed}:\n{}", checked.output);
        }
    }
    assert!(violations > 0, "some run shows the anomaly");
    // And through the binary: `dsim run --history` then `dsim check-history`.
    let path = std::env::temp_dir().join(format!("dsim-history-{}.jsonl", std::process::id()));
    let shown = path.display().to_string();
    let run = common::dsim(&["run", "scenarios/at-most-once/dedup-off.json", "--history", &shown]);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let checked = common::dsim(&["check-history", "--model", "kv", &shown]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        checked.status.code(),
        Some(1),
        "dedup-off's anomaly: {}",
        String::from_utf8_lossy(&checked.stdout)
    );
    let no_history = common::dsim(&["run", "scenarios/clocks/lamport-3.json", "--history", &shown]);
    assert_eq!(no_history.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_history.stderr).contains("records no client history"));
    assert!(!path.exists(), "nothing written");
}

// ---------------------------------------------------------------------------------------
// The proptest: sequential executions, then overlapping intervals.

fn cases() -> u32 {
    std::env::var("DSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// One operation of a sequential execution: f, the invocation's value, the completion's
/// type and value, and the key (kv).
type Executed = (&'static str, Value, &'static str, Value, Option<String>);

/// Runs `choices` (random numbers) as operations on a sequential object of `model`.
fn execute(model: ModelName, choices: &[(u8, u8)]) -> Vec<Executed> {
    let mut register = Value::Null;
    let mut held = false;
    let mut set: Vec<i64> = Vec::new();
    let mut queue: std::collections::VecDeque<i64> = Default::default();
    let mut store: std::collections::BTreeMap<String, String> = Default::default();
    choices
        .iter()
        .enumerate()
        .map(|(i, &(kind, v))| {
            let v = i64::from(v % 4);
            match model {
                ModelName::Register | ModelName::CasRegister => match kind % 3 {
                    0 => ("read", NULL, "ok", register.clone(), None),
                    1 => {
                        register = json!(v);
                        ("write", json!(v), "ok", json!(v), None)
                    }
                    _ => {
                        let expected = json!(v % 2);
                        if register == expected {
                            register = json!(v);
                            ("cas", json!([v % 2, v]), "ok", json!([v % 2, v]), None)
                        } else {
                            ("cas", json!([v % 2, v]), "fail", json!([v % 2, v]), None)
                        }
                    }
                },
                ModelName::Mutex => {
                    held = !held;
                    (if held { "acquire" } else { "release" }, NULL, "ok", NULL, None)
                }
                ModelName::Set => {
                    if kind % 2 == 0 {
                        set.push(v);
                        set.sort();
                        set.dedup();
                        ("add", json!(v), "ok", json!(v), None)
                    } else {
                        ("read", NULL, "ok", json!(set), None)
                    }
                }
                ModelName::FifoQueue => {
                    // Distinct values, as queue workloads use: with a few values repeated,
                    // concurrent enqueues leave more orders than any search can try.
                    if kind % 2 == 0 {
                        let v = i as i64;
                        queue.push_back(v);
                        ("enqueue", json!(v), "ok", json!(v), None)
                    } else {
                        ("dequeue", NULL, "ok", json!(queue.pop_front()), None)
                    }
                }
                ModelName::Kv => {
                    let key = format!("k{}", kind % 3);
                    match kind % 3 + (kind / 3) % 3 {
                        0 | 1 => {
                            let read = store.get(&key).cloned().unwrap_or_default();
                            ("get", NULL, "ok", json!(read), Some(key))
                        }
                        2 => {
                            store.insert(key.clone(), v.to_string());
                            ("put", json!(v.to_string()), "ok", json!(v.to_string()), Some(key))
                        }
                        _ => {
                            store.entry(key.clone()).or_default().push_str(&v.to_string());
                            ("append", json!(v.to_string()), "ok", json!(v.to_string()), Some(key))
                        }
                    }
                }
            }
        })
        .collect()
}

/// The executed operations as a history: operation i took effect at moment 4 * 1000 * i;
/// it was invoked up to `spread` before and completed up to `spread` after (calls at
/// moments 1 mod 4, completions at 3 mod 4, so a call never ties with a completion), and
/// some outcomes are unknown (`info`) or never completed.
fn history(model: ModelName, executed: &[Executed], shapes: &[(u16, u16, u8)]) -> String {
    let mut events: Vec<(u64, Value)> = Vec::new();
    for (i, ((f, invoke_value, kind, value, key), &(before, after, unknown))) in
        executed.iter().zip(shapes).enumerate()
    {
        let moment = 4_000 * (i as u64 + 10);
        let call = moment - 4 * u64::from(before % 3_000) - 3;
        let ret = moment + 4 * u64::from(after % 3_000) + 3;
        let event = |kind: &str, value: &Value| {
            let mut event = json!({"process": i, "type": kind, "f": f, "value": value});
            if let Some(key) = key {
                event["key"] = json!(key);
            }
            event
        };
        events.push((call, event("invoke", invoke_value)));
        // Knossos drops failed operations; a register's failed cas is an observation.
        let droppable = *kind == "fail" && model == ModelName::CasRegister;
        match unknown % 8 {
            0 if !droppable => events.push((ret, event("info", invoke_value))),
            1 if !droppable => {}
            _ => events.push((ret, event(kind, value))),
        }
    }
    events.sort_by_key(|(time, _)| *time);
    events.iter().map(|(_, event)| event.to_string() + "\n").collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn sequential_executions_with_overlapping_intervals_are_linearizable(
        model in prop_oneof![
            Just(ModelName::Register), Just(ModelName::CasRegister), Just(ModelName::Mutex),
            Just(ModelName::Set), Just(ModelName::FifoQueue), Just(ModelName::Kv)
        ],
        choices in prop::collection::vec((any::<u8>(), any::<u8>()), 1..60),
        shapes in prop::collection::vec((any::<u16>(), any::<u16>(), any::<u8>()), 60),
    ) {
        // A queue's unknown dequeues each take the head at some moment the search must
        // find, and the orders to try grow exponentially with how many overlap: queue
        // histories stay shorter.
        let choices = if model == ModelName::FifoQueue { &choices[..choices.len().min(24)] } else { &choices[..] };
        let executed = execute(model, choices);
        let text = history(model, &executed, &shapes);
        let verdict = check(model, &text);
        prop_assert_eq!(verdict.exit, 0, "{:?}:\n{}\n{}", model, text, verdict.output);
    }
}

// ---------------------------------------------------------------------------------------
// Jepsen's histories as they are (issue 22): nemesis events, EDN as written, Knossos'
// cas-register, long histories with crashed clients.

/// `(cas-register verdict, register verdict)` of an EDN history.
fn both(text: &str) -> (u8, u8) {
    let mut knossos = options(ModelName::CasRegister);
    knossos.initial = Some("0".into());
    let mut porcupine = options(ModelName::Register);
    porcupine.input = Some(InputFormat::Edn);
    knossos.input = Some(InputFormat::Edn);
    let run = |o: &Options| check_text(text, "t.edn", o).unwrap_or_else(|e| panic!("{e}\n{text}")).exit;
    (run(&knossos), run(&porcupine))
}

#[test]
fn each_point_of_jepsen_edn_with_its_verdict_under_both_register_models() {
    // Nemesis events with a map, a string and a list as values, and an f no model knows.
    let nemesis = r#"[{:process :nemesis, :type :info, :f :isolate, :value {"n1" #{"n2"}, "n2" #{"n1"}}}
        {:process 0, :type :invoke, :f :write, :value 0} {:process 0, :type :ok, :f :write, :value 0}
        {:process :nemesis, :type :info, :f :recover, :value "fully healed"}
        {:process :nemesis :type :info :f [:weird] :value (:n1 :n2)}]"#;
    assert_eq!(both(nemesis), (0, 0));
    // Comments anywhere, keys in any order, a map over several lines, a list top.
    let comments =
        "( ; the history\n {:value nil, :f :read, :type :invoke, :process 0 ; a comment\n :time 5}\n\
                    {:type :ok, :process 0, :f :read, :value 0 :index 1 :node \"n1\"} )";
    assert_eq!(both(comments), (0, 1), "register starts as nil: a read of 0 is wrong there");
    // A failed cas that would break the history if it counted.
    let failed_cas = "{:process 0, :type :invoke, :f :cas, :value [0 1]}\n\
                      {:process 0, :type :fail, :f :cas, :value [0 1], :error :cas-failed}";
    assert_eq!(both(failed_cas).0, 0, "Knossos drops a failed cas");
    let observed = failed_cas.replace("[0 1]", "[5 1]");
    assert_eq!(both(&observed).0, 0);
    // A nil read: unknown under Knossos; the never-written value under register.
    let nil_read = "{:process 0, :type :invoke, :f :write, :value 3}\n{:process 0, :type :ok, :f :write, :value 3}\n\
                    {:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value nil}";
    assert_eq!(both(nil_read), (0, 1));
    // Crashed operations (info) stay open to the end.
    let crashed = "{:process 0, :type :invoke, :f :write, :value 3}\n{:process 0, :type :info, :f :write, :value 3}\n\
                   {:process 5, :type :invoke, :f :read, :value nil}\n{:process 5, :type :ok, :f :read, :value 0}\n\
                   {:process 5, :type :invoke, :f :read, :value nil}\n{:process 5, :type :ok, :f :read, :value 3}\n\
                   {:process 5, :type :invoke, :f :read, :value nil}\n{:process 5, :type :ok, :f :read, :value 0}";
    assert_eq!(both(crashed).0, 1, "3 was seen, so the write took effect; 0 again is wrong");
    assert_eq!(both(&crashed.replacen(":value 0}", ":value 3}", 2)).0, 0);
}

/// The longest history the tests generate in Jepsen's crash-heavy shape: 20,000
/// operations, 10 processes, 5% of them crashing (`info`, open to the end).
#[test]
fn a_long_history_with_crashed_clients_is_decided() {
    let text = dsim::bench::register_history_lines(20_000, 10, 0.05, 7);
    let infos = text.lines().filter(|line| line.contains(r#""type":"info""#)).count();
    assert!(infos > 500, "{infos} crashed operations");
    let mut knossos = options(ModelName::CasRegister);
    knossos.initial = Some("0".into());
    knossos.budget = 10_000_000;
    let verdict = check_text(&text, "long", &knossos).expect("reads");
    assert_eq!(verdict.exit, 0, "{}", verdict.output);
}

/// JSON Lines as EDN: keyword keys, types and fs; nil for null; vectors for arrays.
fn to_edn(text: &str) -> String {
    fn datum(value: &Value) -> String {
        match value {
            Value::Null => "nil".into(),
            Value::Array(items) => format!("[{}]", items.iter().map(datum).collect::<Vec<_>>().join(" ")),
            other => other.to_string(),
        }
    }
    let mut out = String::from(";; converted from JSON Lines\n[\n");
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).expect("JSON");
        let mut fields = Vec::new();
        for (key, value) in event.as_object().expect("a map") {
            let shown = match key.as_str() {
                "type" | "f" => format!(":{}", value.as_str().expect("a name")),
                _ => datum(value),
            };
            fields.push(format!(":{key} {shown}"));
        }
        out.push_str(&format!("{{{}}}\n", fields.join(", ")));
    }
    out + "]\n"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Random register and kv histories, some with a read changed (so some are not
    /// linearizable), get the same verdict as JSON Lines and as EDN.
    #[test]
    fn edn_and_json_lines_give_the_same_verdict(
        model in prop_oneof![Just(ModelName::Register), Just(ModelName::CasRegister), Just(ModelName::Kv)],
        choices in prop::collection::vec((any::<u8>(), any::<u8>()), 1..30),
        shapes in prop::collection::vec((any::<u16>(), any::<u16>(), any::<u8>()), 30),
        damage in any::<u8>(),
    ) {
        let executed = execute(model, &choices);
        let mut text = history(model, &executed, &shapes);
        if damage % 2 == 0 {
            // Change one value read: a read of 9 (or "9") was never written.
            let read = if model == ModelName::Kv { r#""type":"ok","value":"9""# } else { r#""type":"ok","value":9"# };
            if let Some(line) = text.lines().find(|l| l.contains(r#""f":"read""#) || l.contains(r#""f":"get""#)).filter(|l| l.contains(r#""type":"ok""#)) {
                let damaged = line.replace(r#""type":"ok","value":"#, "@").split('@').next().expect("a head").to_string() + read + "}";
                text = text.replacen(line, &damaged, 1);
            }
        }
        let json = check(model, &text);
        let mut edn_options = options(model);
        edn_options.input = Some(InputFormat::Edn);
        let edn = check_text(&to_edn(&text), "t.edn", &edn_options).expect("EDN reads");
        prop_assert_eq!(json.exit, edn.exit, "{}\n{}\n{}", text, json.output, edn.output);
    }
}

#[test]
fn a_timeout_that_is_hit_says_so_and_exits_3() {
    // Twenty overlapping writes and a read nothing explains: millions of configurations.
    let mut events: Vec<(i64, &str, &str, Value)> =
        (0..20).map(|p| (p, "invoke", "write", json!(p))).collect();
    events.extend((0..20).map(|p| (p, "ok", "write", json!(p))));
    events.push((99, "invoke", "read", NULL));
    events.push((99, "ok", "read", json!(77)));
    let out = dsim_with_input(
        &["check-history", "--model", "register", "--timeout-s", "0.05", "-"],
        &lines(&events),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("the timeout of 0.05 s (wall clock) was hit"), "{stdout}");
    assert!(stdout.contains("depends on the machine's speed"), "{stdout}");
}

#[test]
fn the_benchmark_histories_are_linearizable() {
    assert_eq!(dsim::bench::check_history(2_000, 3).1, 0);
    assert_eq!(dsim::bench::check_crashing_register(2_000, 3).1, 0);
}
