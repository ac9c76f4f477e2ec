//! The command line under hostile use (issue 12, its CLI and campaign half): huge seed
//! ranges, shards and job counts, a stdout that cannot be written, failure files that were
//! edited or drawn from extreme settings, outputs that collide, nonsense bench sizes, and
//! usage errors. Each test runs the real binary; each would have failed before its fix.

use dsim::fuzz::{self, FuzzOptions};
use dsim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::dsim;

const RELIABLE: &str = "scenarios/rpc/reliable.json";
const FAILING: &str = "scenarios/rpc/duplicate-execution.json";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An empty scratch folder under the target directory, unique per test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(out), stderr(out)))
}

/// Exit 2, nothing on stdout, one line on stderr, no panic, and each needle in it.
fn rejects(args: &[&str], needles: &[&str]) {
    let out = dsim(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}{}", stdout(&out));
    assert!(out.stdout.is_empty(), "{args:?} printed {}", stdout(&out));
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line:\n{err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{args:?}: {needle:?} missing from {err}");
    }
}

/// A failure file (as JSON) from a short campaign over a scenario that fails.
fn failure_file() -> serde_json::Value {
    let scenario = Scenario::load(Path::new(FAILING)).unwrap();
    let options = FuzzOptions {
        seeds: "0..100".parse().unwrap(),
        shard: None,
        jobs: 1,
        swarm: false,
        keep_going: false,
        progress: false,
    };
    let report = fuzz::campaign(&scenario, FAILING, &options);
    serde_json::from_str(&report.failures[0].to_json()).unwrap()
}

fn write_json(path: &Path, value: &serde_json::Value) -> String {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

// Class 1: seed ranges, shards and job counts are arithmetic, not lists.

#[test]
fn a_shard_of_every_seed_is_worked_out_without_listing_them() {
    // 2^64 seeds in 2^64 - 1 shards: shard 7 holds seed 7 alone (and seed 2^64 - 1 is
    // shard 0's second). Listing the range first would never finish.
    let out = dsim(&[
        "fuzz",
        RELIABLE,
        "--seeds",
        "0..=18446744073709551615",
        "--shard",
        "7/18446744073709551615",
        "--jobs",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["seeds_run"], 1);
    assert_eq!(report["seeds"], "0..=18446744073709551615");
}

#[test]
fn a_shard_with_no_seeds_and_absurd_job_counts_are_refused() {
    rejects(&["fuzz", RELIABLE, "--seeds", "0..3", "--shard", "5/10"], &["shard 5/10", "no seeds"]);
    rejects(&["fuzz", RELIABLE, "--jobs", "18446744073709551615"], &["--jobs", "from 1 to 256"]);
    rejects(&["fuzz", RELIABLE, "--jobs", "257"], &["from 1 to 256"]);
    rejects(&["fuzz", RELIABLE, "--seeds", "0..18446744073709551616"], &["not a seed range", "2^64 - 1"]);
    rejects(&["check-determinism", RELIABLE, "--seeds", "7..7"], &["empty"]);
}

// Class 2: keep-going streams failures to files and keeps only the first few.

#[test]
fn keep_going_writes_every_failure_as_found_and_keeps_only_the_first_in_memory() {
    let dir = scratch_dir("keep-going");
    let out_dir = dir.join("failures");
    let out = dsim(&[
        "fuzz",
        FAILING,
        "--seeds",
        "0..120",
        "--keep-going",
        "--jobs",
        "2",
        "--format",
        "json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let total = report["failures_total"].as_u64().unwrap();
    let kept = report["failures"].as_array().unwrap();
    assert!(total > 20, "{total} failures");
    assert_eq!(kept.len(), fuzz::FAILURES_KEPT_MAX, "the summary keeps the first failures only");
    assert_eq!(report["failure_files_written"].as_u64(), Some(total));
    assert_eq!(report["out"].as_str(), Some(out_dir.to_str().unwrap()));
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count() as u64, total);
    // The text summary says where the rest are.
    let text =
        dsim(&["fuzz", FAILING, "--seeds", "0..120", "--keep-going", "--out", out_dir.to_str().unwrap()]);
    let text = stdout(&text);
    assert!(
        text.contains(&format!("{total} failure files written in all, in {}", out_dir.display())),
        "{text}"
    );
}

// Class 3: `--trace` is streamed (see runner.rs's unit test); the file is the same
// whatever the case of its extension (class 8).

#[test]
fn a_trace_named_in_capitals_is_json_lines_and_matches_the_summary_hash() {
    let dir = scratch_dir("trace-case");
    let trace = dir.join("x.JSONL");
    let out = dsim(&["run", RELIABLE, "--trace", trace.to_str().unwrap(), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.lines().count() > 10);
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    let plain = json(&dsim(&["run", RELIABLE, "--format", "json"]));
    assert_eq!(json(&out)["trace_hash"], plain["trace_hash"], "keeping the trace changes nothing");
}

// Class 4: a stdout that cannot be written is an error, never a panic, never exit 0.

fn to_dev_full(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full exists");
    Command::new(env!("CARGO_BIN_EXE_dsim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_full_stdout_is_exit_2_with_one_line_for_every_command() {
    let dir = scratch_dir("dev-full");
    let failure = write_json(&dir.join("failure.json"), &failure_file());
    let shrunk = dir.join("small.json");
    let out_dir = dir.join("failures");
    let commands: Vec<Vec<&str>> = vec![
        vec!["run", RELIABLE],
        vec!["run", RELIABLE, "--format", "json"],
        vec!["run", RELIABLE, "--explain-clocks"],
        vec!["list"],
        vec!["fuzz", RELIABLE, "--seeds", "0..4", "--shard", "1/2", "--out", out_dir.to_str().unwrap()],
        vec!["fuzz", FAILING, "--seeds", "0..30", "--format", "json", "--out", out_dir.to_str().unwrap()],
        vec!["replay", &failure],
        vec!["shrink", &failure, "--max-tries", "5", "--out", shrunk.to_str().unwrap()],
        vec!["check-determinism", RELIABLE, "--seeds", "0..2"],
        vec!["--help"],
    ];
    for args in commands {
        let out = to_dev_full(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("cannot write to standard output"), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_stdout_is_exit_2_not_a_panic_or_a_silent_success() {
    for args in [
        &["run", RELIABLE, "--explain-clocks"][..],
        &["list"],
        &["check-determinism", RELIABLE, "--seeds", "0..2"],
    ] {
        // The reading end is closed before dsim starts, as `| head -c0` does at once.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_dsim"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("cannot write to standard output") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

// Class 5: everything a swarm campaign writes loads and replays, even with a tiny window.

#[test]
fn swarm_failure_files_from_tiny_fault_windows_replay() {
    let dir = scratch_dir("tiny-window");
    let mut scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FAILING).unwrap()).unwrap();
    scenario["fuzz"] = serde_json::json!({ "fault_window_ms": 0.001, "partitions_max": 3 });
    let file = write_json(&dir.join("tiny.json"), &scenario);
    let out_dir = dir.join("failures");
    let out = dsim(&[
        "fuzz",
        &file,
        "--swarm",
        "--keep-going",
        "--seeds",
        "0..40",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let written: Vec<PathBuf> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(written.len() > 5);
    let partitioned =
        written.iter().filter(|p| std::fs::read_to_string(p).unwrap().contains("\"partition\""));
    assert!(partitioned.count() > 0, "some failure files hold partitions");
    for path in &written {
        let out = dsim(&["replay", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", path.display(), stderr(&out));
    }
}

// Class 6: an edited failure file is refused, naming the field, not reported as a
// determinism bug.

/// A named edit of a failure file, and what the error must say.
type Edit = (&'static str, fn(&mut serde_json::Value), &'static [&'static str]);

#[test]
fn an_edited_failure_file_is_refused_naming_the_field() {
    let dir = scratch_dir("edited");
    let edits: [Edit; 5] = [
        (
            "seed",
            |f| f["seed"] = serde_json::json!(f["seed"].as_u64().unwrap() + 1),
            &[": seed: ", "differs"],
        ),
        (
            "invariant",
            |f| f["invariant"] = serde_json::json!("no-such-invariant"),
            &[": invariant: ", "unknown"],
        ),
        ("hash", |f| f["trace_hash"] = serde_json::json!("xyz"), &[": trace_hash: ", "16 lowercase hex"]),
        ("hash-upper", |f| f["trace_hash"] = serde_json::json!("ABCDEF0123456789"), &["trace_hash"]),
        (
            "expect",
            |f| f["scenario"]["expect"] = serde_json::json!("pass"),
            &[": scenario.expect: ", "expects the violation it records"],
        ),
    ];
    for (name, edit, needles) in edits {
        let mut file = failure_file();
        edit(&mut file);
        let path = write_json(&dir.join(format!("{name}.json")), &file);
        let located = format!("{path}:");
        for command in ["replay", "run", "shrink"] {
            let mut wanted = needles.to_vec();
            wanted.push(&located);
            rejects(&[command, &path], &wanted);
        }
    }
}

// Class 7: --out is checked before the campaign, and names from the scenario are made safe.

#[test]
fn an_unwritable_out_is_refused_before_the_campaign() {
    let dir = scratch_dir("out-checked");
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let inside = blocker.join("failures");
    // A campaign of 2^64 seeds: checking --out afterwards would never end.
    rejects(
        &["fuzz", FAILING, "--seeds", "0..=18446744073709551615", "--out", inside.to_str().unwrap()],
        &["--out", "not a folder"],
    );
    rejects(&["fuzz", FAILING, "--out", FAILING], &["the same file"]);
}

#[test]
fn a_scenario_name_cannot_steer_failure_files_out_of_the_out_folder() {
    let dir = scratch_dir("names");
    let mut scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FAILING).unwrap()).unwrap();
    scenario["name"] = serde_json::json!(format!("../../escaped/{}\u{7}\n..", "x".repeat(300)));
    let file = write_json(&dir.join("named.json"), &scenario);
    let out_dir = dir.join("failures");
    let out = dsim(&["fuzz", &file, "--seeds", "0..100", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let written: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(written.len(), 1);
    let name = &written[0];
    assert!(!name.starts_with('.') && name.len() < 130, "{name}");
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)), "{name}");
    assert!(
        !dir.join("escaped").exists() && !Path::new(env!("CARGO_TARGET_TMPDIR")).join("escaped").exists()
    );
}

// Class 8: nonsense flags are refused.

#[test]
fn outputs_that_collide_with_the_input_or_each_other_are_refused() {
    let dir = scratch_dir("collide");
    let failure = write_json(&dir.join("failure.json"), &failure_file());
    let trace = dir.join("out.txt");
    let trace = trace.to_str().unwrap();
    rejects(&["run", RELIABLE, "--trace", RELIABLE], &["the scenario file and --trace are the same file"]);
    rejects(&["run", RELIABLE, "--trace", "./scenarios/../scenarios/rpc/reliable.json"], &["the same file"]);
    rejects(&["run", RELIABLE, "--trace", trace, "--shiviz", trace], &["--trace and --shiviz"]);
    rejects(&["run", RELIABLE, "--dot", trace, "--shiviz", trace], &["--shiviz and --dot"]);
    rejects(&["shrink", &failure, "--out", &failure], &["the failure file and --out are the same file"]);
    let original = std::fs::read_to_string(&failure).unwrap();
    assert_eq!(std::fs::read_to_string(&failure).unwrap(), original, "the input is untouched");
    rejects(&["shrink", &failure, "--max-tries", "0"], &["--max-tries", "at least 1"]);
    let nowhere = dir.join("no-such-folder").join("small.json");
    rejects(&["shrink", &failure, "--out", nowhere.to_str().unwrap()], &["is not a folder"]);
}

#[test]
fn bench_sizes_outside_their_maximums_are_refused() {
    rejects(&["bench", "--in-flight", "0"], &["--in-flight 0", "from 1 to"]);
    rejects(&["bench", "--deliveries", "0"], &["--deliveries 0", "from 1 to"]);
    rejects(&["bench", "--deliveries", "18446744073709551615"], &["--deliveries", "10000000000"]);
    rejects(&["bench", "--nodes", "100000", "--in-flight", "10000"], &["fit in memory"]);
    rejects(&["bench", "--repeat", "0"], &["--repeat 0"]);
}

// Class 9: one-line messages; help and version on stdout; commands quoted for the shell.

#[test]
fn usage_errors_are_one_line_and_help_is_on_stdout() {
    rejects(&["run", RELIABLE, "--bogus"], &["'--bogus'", "see dsim run --help"]);
    rejects(&["run"], &["<FILE>", "see dsim run --help"]);
    rejects(&[], &["a command is needed", "see dsim --help"]);
    rejects(&["frobnicate"], &["frobnicate", "see dsim --help"]);
    rejects(&["fuzz", RELIABLE, "--format", "yaml"], &["yaml", "see dsim fuzz --help"]);
    rejects(&["run", RELIABLE, "--seed", "18446744073709551616"], &["0 to 18446744073709551615"]);
    rejects(&["run", RELIABLE, "--seed", "-1"], &["0 to 18446744073709551615"]);
    for args in [&["--help"][..], &["--version"], &["fuzz", "--help"]] {
        let out = dsim(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty() && out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn printed_replay_commands_are_quoted_for_the_shell() {
    let dir = scratch_dir("quoted");
    let failing = std::fs::read_to_string(FAILING).unwrap();
    let awkward = dir.join("my scenario; rm -rf x.json");
    std::fs::write(&awkward, &failing).unwrap();
    let awkward = awkward.to_str().unwrap();
    let out = dsim(&["run", awkward, "--seed", "3"]);
    let text = stdout(&out);
    assert!(text.contains(&format!("dsim run '{awkward}' --seed 3")), "{text}");
    // An ordinary path reads as before.
    let plain = stdout(&dsim(&["run", RELIABLE]));
    assert!(plain.contains(&format!("dsim run {RELIABLE}\n")), "{plain}");
    let out_dir = dir.join("out dir");
    let out = dsim(&["fuzz", awkward, "--seeds", "0..100", "--out", out_dir.to_str().unwrap()]);
    let text = stdout(&out);
    let replay = text.lines().find(|l| l.trim_start().starts_with("replay:")).unwrap();
    assert!(replay.contains(&format!("dsim replay '{}/", out_dir.display())), "{replay}");
}

/// Pictures: out-of-range sizes and windows, and outputs that collide, are refused before
/// anything runs, with the flag and the valid range named.
#[test]
fn picture_flags_are_checked_before_running() {
    let dir = scratch_dir("pictures");
    let svg = dir.join("a.svg");
    let svg = svg.to_str().unwrap();
    rejects(&["run", RELIABLE, "--svg", svg, "--max-events", "0"], &["--max-events 0", "1 to 100000"]);
    rejects(&["run", RELIABLE, "--svg", svg, "--max-events", "100001"], &["--max-events", "1 to 100000"]);
    rejects(&["run", RELIABLE, "--svg", svg, "--window", "50..10"], &["--window", "ends before it starts"]);
    rejects(&["run", RELIABLE, "--svg", svg, "--window", "ten..20"], &["--window", "FROM_MS..TO_MS"]);
    rejects(&["run", RELIABLE, "--svg", RELIABLE], &["--svg", "same file"]);
    rejects(&["run", RELIABLE, "--svg", svg, "--html", svg], &["--svg", "--html", "same file"]);
    rejects(&["replay", RELIABLE, "--html", svg], &["not a failure file"]);
    let missing = dir.join("no-such-folder").join("r.html");
    rejects(&["run", RELIABLE, "--html", missing.to_str().unwrap()], &["cannot write the HTML report"]);
    assert!(!Path::new(svg).exists(), "nothing was drawn");
}

/// A picture of a run is the same file on every run (determinism reaches the pictures).
#[test]
fn pictures_are_deterministic() {
    let dir = scratch_dir("pictures-twice");
    let mut texts = Vec::new();
    for name in ["a", "b"] {
        let (svg, html) = (dir.join(format!("{name}.svg")), dir.join(format!("{name}.html")));
        let out = dsim(&["run", FAILING, "--svg", svg.to_str().unwrap(), "--html", html.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        texts.push((std::fs::read(svg).unwrap(), std::fs::read(html).unwrap()));
    }
    assert!(texts[0] == texts[1], "two runs drew different pictures");
}
