//! Campaigns beyond one machine: shards merged with `dsim fuzz-merge` add up to the whole
//! campaign, a missing or repeated shard is reported, and the job definitions in `deploy/`
//! hold command lines the real command line accepts.

use clap::Parser;
use dsim::cli::Cli;
use dsim::fuzz::{self, FuzzOptions, FuzzReport, Shard};
use dsim::merge;
use dsim::scenario::Scenario;
use std::path::Path;

mod common;
use common::dsim;

fn campaign(file: &str, seeds: &str, shard: Option<Shard>) -> FuzzReport {
    let scenario = Scenario::load(Path::new(file)).unwrap();
    let options = FuzzOptions {
        seeds: seeds.parse().unwrap(),
        shard,
        jobs: 2,
        swarm: false,
        keep_going: true,
        progress: false,
    };
    fuzz::campaign(&scenario, file, &options)
}

fn shards(file: &str, seeds: &str, n: u64) -> Vec<(String, FuzzReport)> {
    (0..n)
        .map(|i| (format!("summary-{i}.json"), campaign(file, seeds, Some(Shard { index: i, count: n }))))
        .collect()
}

/// What must be equal between the whole campaign and its merged shards.
fn essentials(report: &FuzzReport) -> impl PartialEq + std::fmt::Debug {
    let failures: Vec<(u64, String)> =
        report.failures.iter().map(|f| (f.seed, f.invariant.clone())).collect();
    (
        report.seeds_run,
        report.failures_total,
        report.failures_by_invariant.clone(),
        failures,
        report.coverage.clone(),
        report.never_reached.clone(),
        report.undecided,
        report.undecided_seeds.clone(),
        report.limits_hit,
        report.outside_fault_model,
    )
}

#[test]
fn merged_shards_equal_the_whole_campaign() {
    // A scenario that fails on many seeds, and a seed count no shard count divides.
    let file = "scenarios/at-most-once/accept-any-reply.json";
    let seeds = "0..59";
    let whole = campaign(file, seeds, None);
    assert!(whole.failures_total > 3, "the scenario should fail often: {}", whole.failures_total);
    for n in [1, 3, 7] {
        let merged = merge::merge(shards(file, seeds, n)).unwrap();
        assert_eq!(essentials(&merged.summary), essentials(&whole), "{n} shards");
        assert!(merged.shards_missing.is_empty() && merged.shards_duplicated.is_empty());
        assert_eq!(merged.exit_code(), whole.exit_code());
    }
}

#[test]
fn a_missing_or_repeated_shard_is_reported() {
    let file = "scenarios/rpc/reliable.json";
    let mut parts = shards(file, "0..20", 3);
    let dropped = parts.remove(1);
    let merged = merge::merge(parts.clone()).unwrap();
    assert_eq!(merged.shards_missing, vec![1]);
    assert_eq!(merged.shards_missing_total, 1);
    assert_eq!(merged.exit_code(), 1, "a missing shard is exit 1 even with no failure");
    assert!(merged.text().contains("MISSING"), "{}", merged.text());

    parts.push(dropped.clone());
    parts.push(("again.json".into(), dropped.1));
    let merged = merge::merge(parts).unwrap();
    assert!(merged.shards_missing.is_empty());
    assert_eq!(merged.shards_duplicated.get(&1).map(Vec::len), Some(2));
    assert_eq!(merged.summary.seeds_run, 20, "a repeated shard counts once");
    assert_eq!(merged.exit_code(), 1);
}

#[test]
fn a_huge_shard_count_is_counted_not_listed() {
    let mut one = campaign(
        "scenarios/rpc/reliable.json",
        "0..=18446744073709551615",
        Some(Shard { index: 5, count: u64::MAX }),
    );
    one.shard = Some(format!("5/{}", u64::MAX));
    let merged = merge::merge(vec![("summary.json".into(), one)]).unwrap();
    assert_eq!(merged.shards_missing_total, u64::MAX - 1);
    assert_eq!(merged.shards_missing.len(), merge::MISSING_LISTED_MAX);
    assert_eq!(merged.exit_code(), 1);
}

#[test]
fn summaries_of_different_campaigns_are_not_merged() {
    let mut parts = shards("scenarios/rpc/reliable.json", "0..10", 2);
    parts[1].1 = campaign("scenarios/rpc/reliable.json", "0..12", Some(Shard { index: 1, count: 2 }));
    let error = merge::merge(parts).unwrap_err();
    assert!(error.contains("not of the same campaign") && error.contains("seeds"), "{error}");
}

#[test]
fn fuzz_merge_reads_the_summaries_fuzz_writes() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-merge");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut summaries = Vec::new();
    for i in 0..3 {
        let out = dir.join(format!("failures-{i}"));
        let shard = format!("{i}/3");
        let run = dsim(&[
            "fuzz",
            "scenarios/at-most-once/accept-any-reply.json",
            "--seeds",
            "0..30",
            "--shard",
            &shard,
            "--keep-going",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(matches!(run.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&run.stderr));
        let path = dir.join(format!("summary-{i}.json"));
        std::fs::write(&path, &run.stdout).unwrap();
        summaries.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["fuzz-merge"];
    args.extend(summaries.iter().map(String::as_str));
    let merged = dsim(&args);
    let text = String::from_utf8_lossy(&merged.stdout);
    assert_eq!(merged.status.code(), Some(1), "failures found: {text}");
    assert!(text.contains("3 of 3 merged"), "{text}");
    assert!(text.contains("replay: dsim replay"), "the failure files are named: {text}");

    // Not a summary: exit 2, one line.
    let bad = dsim(&["fuzz-merge", "scenarios/rpc/reliable.json"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a dsim fuzz summary"));
    assert!(bad.stdout.is_empty());
}

/// The `dsim ...` command lines of a job definition, with the runner's variables given
/// sample values, as argument lists.
fn dsim_command_lines(text: &str) -> Vec<Vec<String>> {
    let text = text
        .replace("$JOB_COMPLETION_INDEX", "3")
        .replace("${{ matrix.shard }}", "3")
        .replace("./target/release/dsim", "dsim");
    let mut lines = Vec::new();
    for command in text.split(['\n', ';']).flat_map(|l| l.split("&&")) {
        let Some(at) = command.find("dsim ") else { continue };
        if command[..at].trim_start().starts_with('#')
            || !command[..at].trim().is_empty() && !command[..at].trim().ends_with('-')
        {
            continue;
        }
        // Up to a redirection or `||`: what the shell hands dsim.
        let args = command[at..].split(['>', '|']).next().unwrap();
        lines.push(args.split_whitespace().map(str::to_string).collect());
    }
    lines
}

#[test]
fn the_job_definitions_parse_and_their_command_lines_are_valid() {
    let mut checked = 0;
    for file in [
        "deploy/kubernetes/fuzz-job.yaml",
        "deploy/kubernetes/fuzz-merge-job.yaml",
        "deploy/github-actions/fuzz.yml",
    ] {
        let text = std::fs::read_to_string(file).unwrap();
        let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!docs.is_empty(), "{file}: no YAML document");
        // Folded scalars (>-) join lines; read the commands from the parsed YAML's strings.
        let mut strings = Vec::new();
        for doc in &docs {
            collect_strings(doc, &mut strings);
        }
        let commands: Vec<Vec<String>> = strings.iter().flat_map(|s| dsim_command_lines(s)).collect();
        assert!(!commands.is_empty(), "{file}: no dsim command found");
        for args in commands {
            // Globs stay unexpanded: give fuzz-merge a name to parse.
            let args: Vec<String> = args.into_iter().map(|a| a.replace('*', "0")).collect();
            if let Err(err) = Cli::try_parse_from(&args) {
                panic!("{file}: {args:?} does not parse: {err}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "{checked} command lines checked");
}

fn collect_strings(yaml: &yaml_rust2::Yaml, out: &mut Vec<String>) {
    match yaml {
        yaml_rust2::Yaml::String(s) => out.push(s.clone()),
        yaml_rust2::Yaml::Array(items) => items.iter().for_each(|y| collect_strings(y, out)),
        yaml_rust2::Yaml::Hash(map) => map.values().for_each(|y| collect_strings(y, out)),
        _ => {}
    }
}

#[test]
fn the_dockerfile_builds_where_docker_runs() {
    let daemon = std::process::Command::new("docker").arg("info").output();
    match daemon {
        Ok(out) if out.status.success() => {}
        Ok(_) | Err(_) => {
            eprintln!(
                "skipped: no Docker daemon here (`docker info` failed), so deploy/Dockerfile was not built"
            );
            return;
        }
    }
    let build = std::process::Command::new("docker")
        .args(["build", "-f", "deploy/Dockerfile", "-t", "dsim-ci-test", "."])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&build.stderr);
    if !build.status.success()
        && (log.contains("pull access denied")
            || log.contains("failed to resolve source metadata")
            || log.contains("dial tcp"))
    {
        eprintln!(
            "skipped: the Docker daemon cannot pull the base images here: {}",
            log.lines().last().unwrap_or("")
        );
        return;
    }
    assert!(build.status.success(), "docker build failed:\n{log}");
}
