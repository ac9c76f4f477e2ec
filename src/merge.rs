//! `dsim fuzz-merge`: one summary from the `--format json` summaries of a campaign's
//! shards, run on as many machines as there were shards.
//!
//! Shard `I/N` of seeds `A..B` runs the seeds `A + I, A + I + N, A + I + 2N, ...` below `B`
//! (`fuzz::seeds`): the shards of one `N` cover the range exactly once, by construction.
//! That split is part of the summary's format: a change to it bumps
//! [`fuzz::SUMMARY_VERSION`], and summaries of different versions are not merged. A shard
//! that is missing, or given twice, is reported (exit 1): its seeds were run not at all, or
//! twice.

use crate::fuzz::{
    FailureFile, FuzzReport, UndecidedSeed, FAILURES_KEPT_MAX, SUMMARY_VERSION, UNDECIDED_SHOWN_MAX,
};
use crate::scenario::{parse_json, read_text};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How many missing shard indexes a merge lists (it counts them all).
pub const MISSING_LISTED_MAX: usize = 100;

/// The merged campaign, and how its shards added up.
#[derive(Clone, Debug, Serialize)]
pub struct MergeReport {
    /// The campaign as if it had run on one machine (`elapsed_s`: the slowest shard).
    #[serde(flatten)]
    pub summary: FuzzReport,
    /// The summary files merged, in shard order.
    pub summaries: Vec<String>,
    /// `N`, the shard count every summary names.
    pub shard_count: u64,
    /// How many shards have no summary: their seeds were not run.
    pub shards_missing_total: u64,
    /// The first [`MISSING_LISTED_MAX`] of them.
    pub shards_missing: Vec<u64>,
    /// Shard indexes given more than once, with their files (counted once).
    pub shards_duplicated: BTreeMap<u64, Vec<String>>,
    /// Every shard's run time added up (CPU-ish time of the whole campaign).
    pub elapsed_s_total: f64,
}

impl MergeReport {
    /// Exit codes as `dsim fuzz`: 1 for failures or a shard missing or repeated, else 3 if
    /// a run was undecided, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.shards_missing_total > 0 || !self.shards_duplicated.is_empty() {
            1
        } else {
            self.summary.exit_code()
        }
    }

    /// The readable form: the merged summary, then how the shards added up.
    pub fn text(&self) -> String {
        let mut out = self.summary.text();
        let line = |out: &mut String, key: &str, value: String| out.push_str(&format!("{key:<14}{value}\n"));
        out.push('\n');
        let present =
            self.summaries.len() - self.shards_duplicated.values().map(|f| f.len() - 1).sum::<usize>();
        line(
            &mut out,
            "shards",
            format!(
                "{present} of {} merged ({:.2} s of running in all)",
                self.shard_count, self.elapsed_s_total
            ),
        );
        if self.shards_missing_total > 0 {
            let shown: Vec<String> = self.shards_missing.iter().take(20).map(u64::to_string).collect();
            let more = self.shards_missing_total - shown.len() as u64;
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            line(
                &mut out,
                "MISSING",
                format!(
                    "shard(s) {}{more} of {}: their seeds were not run (run them with --shard I/{})",
                    shown.join(", "),
                    self.shard_count,
                    self.shard_count
                ),
            );
        }
        for (index, files) in &self.shards_duplicated {
            line(
                &mut out,
                "REPEATED",
                format!("shard {index}/{} is in {} (counted once)", self.shard_count, files.join(", ")),
            );
        }
        out
    }
}

/// Reads the summaries at `paths` and merges them. Errors (exit 2): a file that is not a
/// summary of this version, or summaries of different campaigns.
pub fn merge_files(paths: &[PathBuf]) -> Result<MergeReport, String> {
    let mut summaries = Vec::new();
    for path in paths {
        summaries.push((path.display().to_string(), load(path)?));
    }
    merge(summaries)
}

fn load(path: &Path) -> Result<FuzzReport, String> {
    let shown = path.display().to_string();
    let text = read_text(path).map_err(|e| e.to_string())?;
    let value: serde_json::Value = parse_json(&shown, &text).map_err(|e| e.to_string())?;
    match value.get("summary_version").and_then(serde_json::Value::as_u64) {
        Some(version) if version == u64::from(SUMMARY_VERSION) => {}
        Some(version) => {
            return Err(format!(
                "{shown}: a version {version} summary; this dsim merges version {SUMMARY_VERSION} \
                 (re-run the shards with this dsim)"
            ))
        }
        None => {
            return Err(format!(
                "{shown}: not a dsim fuzz summary (write one with dsim fuzz ... --format json)"
            ))
        }
    }
    parse_json(&shown, &text).map_err(|e| e.to_string())
}

/// Merges summaries (each with the file it came from). They must be of one campaign: the
/// same scenario, seed range, shard count, swarm setting and `--keep-going`.
pub fn merge(summaries: Vec<(String, FuzzReport)>) -> Result<MergeReport, String> {
    let Some((first_file, first)) = summaries.first().cloned() else {
        return Err("no summary to merge: give the shards' --format json summaries".to_string());
    };
    let (first_file, first) = (&first_file, &first);
    let shard_of = |file: &str, report: &FuzzReport| -> Result<(u64, u64), String> {
        match &report.shard {
            None => Ok((0, 1)),
            Some(shard) => {
                let parsed: crate::fuzz::Shard = shard.parse().map_err(|e| format!("{file}: shard: {e}"))?;
                Ok((parsed.index, parsed.count))
            }
        }
    };
    let (_, count) = shard_of(first_file, first)?;
    let mut by_shard: BTreeMap<u64, Vec<(String, FuzzReport)>> = BTreeMap::new();
    for (file, report) in summaries {
        let (index, n) = shard_of(&file, &report)?;
        let same = |what: &str, a: &dyn std::fmt::Display, b: &dyn std::fmt::Display| {
            format!(
                "{file} is not of the same campaign as {first_file}: {what} {b} there, {a} here \
                 (merge only the shards of one campaign)"
            )
        };
        if n != count {
            return Err(same("shard count", &n, &count));
        }
        if report.source != first.source {
            return Err(same("scenario", &report.source, &first.source));
        }
        if report.seeds != first.seeds {
            return Err(same("seeds", &report.seeds, &first.seeds));
        }
        if report.swarm != first.swarm {
            return Err(same("swarm", &report.swarm, &first.swarm));
        }
        if report.keep_going != first.keep_going {
            return Err(same("keep-going", &report.keep_going, &first.keep_going));
        }
        by_shard.entry(index).or_default().push((file, report));
    }
    let template = first.clone();
    // Found one by one, never listed whole: a summary may name a huge shard count.
    let shards_missing: Vec<u64> =
        (0..count).filter(|i| !by_shard.contains_key(i)).take(MISSING_LISTED_MAX).collect();
    let shards_missing_total = count - by_shard.len() as u64;
    let shards_duplicated: BTreeMap<u64, Vec<String>> = by_shard
        .iter()
        .filter(|(_, reports)| reports.len() > 1)
        .map(|(index, reports)| (*index, reports.iter().map(|(file, _)| file.clone()).collect()))
        .collect();
    let files: Vec<String> = by_shard.values().flatten().map(|(file, _)| file.clone()).collect();
    // Each shard counted once: its first summary.
    let shards: Vec<&FuzzReport> = by_shard.values().map(|reports| &reports[0].1).collect();
    Ok(MergeReport {
        summary: add_up(template, &shards),
        summaries: files,
        shard_count: count,
        shards_missing_total,
        shards_missing,
        shards_duplicated,
        elapsed_s_total: shards.iter().map(|r| r.elapsed_s).sum(),
    })
}

/// The shards' reports added up into one, as the whole campaign would have reported.
fn add_up(template: FuzzReport, shards: &[&FuzzReport]) -> FuzzReport {
    let sum = |f: &dyn Fn(&FuzzReport) -> u64| shards.iter().map(|r| f(r)).sum::<u64>();
    let mut failures_by_invariant: BTreeMap<String, u64> = BTreeMap::new();
    let mut coverage: BTreeMap<String, u64> = BTreeMap::new();
    for report in shards {
        for (invariant, n) in &report.failures_by_invariant {
            *failures_by_invariant.entry(invariant.clone()).or_insert(0) += n;
        }
        for (point, n) in &report.coverage {
            *coverage.entry(point.clone()).or_insert(0) += n;
        }
    }
    // Each shard keeps its lowest failing seeds, so the lowest of all are among them.
    let mut failures: Vec<(FailureFile, Option<String>)> = shards
        .iter()
        .flat_map(|r| {
            r.failures
                .iter()
                .cloned()
                .zip(r.failure_files.iter().cloned().map(Some).chain(std::iter::repeat(None)))
        })
        .collect();
    failures.sort_by_key(|(f, _)| f.seed);
    failures.truncate(FAILURES_KEPT_MAX);
    let mut undecided_seeds: Vec<UndecidedSeed> =
        shards.iter().flat_map(|r| r.undecided_seeds.iter().cloned()).collect();
    undecided_seeds.sort_by_key(|u| u.seed);
    undecided_seeds.truncate(UNDECIDED_SHOWN_MAX);
    let outs: Vec<String> = shards.iter().filter_map(|r| r.out.clone()).collect();
    let seeds_run = sum(&|r| r.seeds_run);
    let elapsed_s = shards.iter().map(|r| r.elapsed_s).fold(0.0, f64::max);
    FuzzReport {
        shard: None,
        jobs: shards.iter().map(|r| r.jobs).sum(),
        seeds_run,
        failures_by_invariant,
        limits_hit: sum(&|r| r.limits_hit),
        outside_fault_model: sum(&|r| r.outside_fault_model),
        undecided: sum(&|r| r.undecided),
        undecided_seeds,
        never_reached: coverage.iter().filter(|(_, n)| **n == 0).map(|(p, _)| p.clone()).collect(),
        coverage,
        elapsed_s,
        seeds_per_s: seeds_run as f64 / elapsed_s.max(1e-9),
        failures_total: sum(&|r| r.failures_total),
        failure_files: failures.iter().map_while(|(_, file)| file.clone()).collect(),
        failures: failures.into_iter().map(|(f, _)| f).collect(),
        out: (!outs.is_empty()).then(|| outs.join(", ")),
        failure_files_written: sum(&|r| r.failure_files_written),
        ..template
    }
}
