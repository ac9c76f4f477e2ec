//! The space-time diagram, read back as XML: one lane per node in order, arrows downwards
//! in time, one arrow per delivery and one cross per loss in the records drawn, the
//! violation mark exactly when the run failed, and a note when events were left out.

use dsim::picture::{self, Capture, Options};
use dsim::runner;
use dsim::scenario::Scenario;
use sim_core::TraceMode;

fn capture(path: &str, seed: Option<u64>, options: Options) -> Capture {
    let file = dsim::scenarios_dir().join(path);
    let scenario = Scenario::load(&file).expect("a bundled scenario loads");
    capture_of(&scenario, path, seed, options)
}

fn capture_of(scenario: &Scenario, path: &str, seed: Option<u64>, options: Options) -> Capture {
    let scenario = scenario.clone();
    let seed = seed.unwrap_or(scenario.seed);
    let summary = runner::run(&scenario, path, Some(seed), TraceMode::Recent(20), None).expect("runs");
    picture::capture(&scenario, seed, options, summary).expect("captures")
}

fn count(capture: &Capture, kind: &str) -> usize {
    capture.records.iter().filter(|r| picture::kind(r) == kind).count()
}

fn attr(node: &roxmltree::Node<'_, '_>, name: &str) -> f64 {
    node.attribute(name).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} on {node:?}"))
}

fn has_class(node: &roxmltree::Node<'_, '_>, class: &str) -> bool {
    node.attribute("class").is_some_and(|c| c.split(' ').any(|c| c == class))
}

/// Checks every layout rule on one capture; returns (arrows, crosses).
fn check_layout(capture: &Capture) -> (usize, usize) {
    let svg = picture::svg(capture);
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|err| panic!("the SVG is XML: {err}\n{svg}"));
    let lanes: Vec<_> =
        doc.descendants().filter(|n| n.has_tag_name("line") && has_class(n, "lane")).collect();
    assert_eq!(lanes.len(), capture.lanes.len(), "one lane per node");
    for (i, lane) in lanes.iter().enumerate() {
        assert_eq!(lane.attribute("data-node"), Some(i.to_string().as_str()), "lanes in node order");
        if i > 0 {
            assert!(attr(lane, "x1") > attr(&lanes[i - 1], "x1"), "lanes left to right");
        }
    }
    let arrows: Vec<_> =
        doc.descendants().filter(|n| n.has_tag_name("line") && has_class(n, "arrow")).collect();
    for arrow in &arrows {
        assert!(attr(arrow, "y2") > attr(arrow, "y1"), "an arrow goes downwards in time: {arrow:?}");
        assert!(arrow.children().any(|c| c.has_tag_name("title")), "every arrow has a tooltip");
    }
    let crosses = doc.descendants().filter(|n| n.has_tag_name("g") && has_class(n, "drop")).count();
    assert_eq!(arrows.len(), count(capture, "deliver"), "one arrow per delivery");
    assert_eq!(crosses, count(capture, "drop"), "one cross per loss");
    let violation = doc.descendants().any(|n| n.attribute("id") == Some("violation"));
    assert_eq!(
        violation,
        capture.summary.outcome.violation().is_some(),
        "the violation is marked iff the run failed"
    );
    (arrows.len(), crosses)
}

#[test]
fn a_failing_run_has_its_lanes_arrows_and_violation() {
    let capture = capture("rpc/duplicate-put.json", None, Options::default());
    assert!(capture.summary.outcome.violation().is_some());
    assert_eq!(capture.lanes, vec!["server".to_string(), "client 1".to_string()]);
    let (arrows, _) = check_layout(&capture);
    assert_eq!(arrows, 8, "the run delivers 8 messages");
    let svg = picture::svg(&capture);
    assert!(svg.contains("kv-linearizable violated"), "the violation is named");
    assert!(svg.contains("class=\"stamp\""), "clock stamps are drawn");
}

#[test]
fn losses_duplicates_crashes_and_partitions_are_drawn() {
    let mut seen = (0, 0, 0, 0);
    for path in ["ping/lossy.json", "at-most-once/crash-restart-memory.json", "at-most-once/unreliable.json"]
    {
        for seed in 0..4 {
            let capture = capture(path, Some(seed), Options::default());
            let (_, crosses) = check_layout(&capture);
            let svg = picture::svg(&capture);
            seen.0 += crosses;
            seen.1 += svg.matches("class=\"arrow dup\"").count();
            seen.2 += svg.matches("class=\"crash\"").count();
            seen.3 += svg.matches("class=\"down\"").count();
        }
    }
    let (crosses, dups, crashes, down) = seen;
    assert!(crosses > 0, "lossy runs draw crosses");
    assert!(dups > 0, "duplicated copies are marked");
    assert!(crashes > 0 && down > 0, "crashes and down spans are drawn");
}

/// Groups [[0], [1, 2]] cut the server's lane from the clients': one band, between lanes
/// 0 and 1, none between the two clients.
#[test]
fn a_partition_is_shaded_between_the_lanes_it_cuts() {
    let text = r#"{
      "name": "rpc/partitioned",
      "description": "two clients cut off from the server for a while",
      "protocol": { "rpc": { "timeout_ms": 30, "retries_max": 20 } },
      "network": { "preset": "reliable" },
      "faults": [ { "partition": { "groups": [[0], [1, 2]], "at_ms": 5, "until_ms": 60 } } ],
      "workload": { "clients": 2, "ops_per_client": 5, "keys": 1 },
      "seed": 1,
      "expect": "pass"
    }"#;
    let scenario = Scenario::parse("partitioned.json", text).expect("the scenario parses");
    let capture = capture_of(&scenario, "partitioned.json", None, Options::default());
    check_layout(&capture);
    let svg = picture::svg(&capture);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let cuts: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("rect") && has_class(n, "cut")).collect();
    assert_eq!(cuts.len(), 1, "{svg}");
    let lanes: Vec<f64> = doc
        .descendants()
        .filter(|n| n.has_tag_name("line") && has_class(n, "lane"))
        .map(|n| attr(&n, "x1"))
        .collect();
    let (x, width) = (attr(&cuts[0], "x"), attr(&cuts[0], "width"));
    assert!(x > lanes[0] && x + width < lanes[1], "between the server and client 1");
}

#[test]
fn a_passing_run_has_no_violation_mark() {
    let capture = capture("rpc/reliable.json", None, Options::default());
    assert!(capture.summary.outcome.violation().is_none());
    check_layout(&capture);
}

#[test]
fn max_events_keeps_the_last_events_and_says_how_many_were_left_out() {
    let all = capture("at-most-once/unreliable.json", None, Options::default());
    let kept = capture("at-most-once/unreliable.json", None, Options { max_events: 25, window: None });
    assert_eq!(kept.records.len(), 25);
    assert_eq!(kept.left_out as usize, all.records.len() - 25);
    assert_eq!(kept.records.back(), all.records.back(), "the last events are kept");
    check_layout(&kept);
    assert!(picture::svg(&kept).contains("id=\"left-out\""));
    assert!(!picture::svg(&all).contains("id=\"left-out\""));
}

#[test]
fn a_window_draws_only_its_events() {
    let capture =
        capture("rpc/duplicate-put.json", None, Options { max_events: 1000, window: Some((20_000, 40_000)) });
    assert!(!capture.records.is_empty());
    for record in &capture.records {
        let time = record["time"].as_u64().unwrap();
        assert!((20_000..=40_000).contains(&time), "{record}");
    }
    assert!(capture.outside_window > 0);
    check_layout(&capture);
}

#[test]
fn windows_parse_or_say_why_not() {
    assert_eq!(picture::parse_window("10..250"), Ok((10_000, 250_000)));
    assert_eq!(picture::parse_window("0.5..12.25"), Ok((500, 12_250)));
    for bad in ["", "10", "a..b", "5..1", "-1..3", "1..1e20", "nan..1"] {
        assert!(picture::parse_window(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn text_is_escaped() {
    assert_eq!(picture::escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
}

mod common;

/// `check-history --html`: the verdict, and the operation no linearization can place
/// marked as the culprit on its key's timeline; a linearizable history marks none.
#[test]
fn check_history_reports_mark_the_operation_that_cannot_be_placed() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pictures-history");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (history, html) = (dir.join("h.jsonl"), dir.join("h.html"));
    let out =
        common::dsim(&["run", "scenarios/rpc/duplicate-put.json", "--history", history.to_str().unwrap()]);
    assert!(out.status.success());
    let out = common::dsim(&[
        "check-history",
        "--model",
        "kv",
        history.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "not linearizable");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("not-linearizable"));
    assert_eq!(page.matches("class=\"op culprit\"").count(), 1, "the get that read 10");
    assert!(page.contains("get &quot;k&quot; -&gt; &quot;10&quot;"));
    let fine = dir.join("fine.html");
    let out = common::dsim(&[
        "check-history",
        "--model",
        "cas-register",
        "--initial",
        "0",
        "tests/data/history.edn",
        "--html",
        fine.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(&fine).unwrap();
    assert!(page.contains("class=\"ok\"") && !page.contains("op culprit"));
}

/// `fuzz --html`: an index listing each failure, linked to a report written beside it.
#[test]
fn fuzz_html_writes_an_index_linked_to_reports() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pictures-fuzz");
    let _ = std::fs::remove_dir_all(&dir);
    let out = common::dsim(&[
        "fuzz",
        "scenarios/rpc/duplicate-execution.json",
        "--seeds",
        "0..3",
        "--keep-going",
        "--jobs",
        "1",
        "--out",
        dir.to_str().unwrap(),
        "--html",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    let links: Vec<&str> = index.split("<a href=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert_eq!(links.len(), 3, "one report per failing seed");
    for link in links {
        let report = std::fs::read_to_string(dir.join(link)).unwrap();
        assert!(report.contains("id=\"diagram\"") && report.contains("executed-at-most-once"));
    }
}

/// What only some protocols have: a snapshot's cut drawn across the lanes (and the
/// snapshots in the report), chain replication's configurations as labels on the master.
#[test]
fn snapshot_cuts_and_chain_configurations_are_drawn() {
    let snapshots = capture("snapshots/notes-3.json", None, Options::default());
    check_layout(&snapshots);
    let svg = picture::svg(&snapshots);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let cut = doc.descendants().find(|n| has_class(n, "snapshot-cut")).expect("the snapshot's cut is drawn");
    let line = cut.children().find(|n| n.has_tag_name("polyline")).expect("a line across the lanes");
    let points = line.attribute("points").unwrap().split_whitespace().count();
    assert_eq!(points, snapshots.lanes.len(), "one point per process");
    let scenario = Scenario::load(&dsim::scenarios_dir().join("snapshots/notes-3.json")).unwrap();
    let page = dsim::report::run_report(&scenario, &snapshots);
    assert!(page.contains("id=\"protocol-report\""), "the snapshots are in the report");

    let chain = capture("chain/head-crash.json", None, Options::default());
    check_layout(&chain);
    let svg = picture::svg(&chain);
    assert!(svg.contains(">config 1: "), "the new configuration after the head's crash is labelled");
}
