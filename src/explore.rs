//! `dsim explore`: every interleaving of a small scenario, searched exhaustively within
//! budgets (see `sim_core::explore` for the search, and docs/exploring.md for users).
//!
//! The search runs the scenario's own protocol instance, built with
//! [`Scenario::explore_config`]; a violation becomes a failure file whose scenario carries
//! the path as a [`Schedule`], which `dsim replay`, `dsim run` and `dsim shrink` follow.

use crate::fuzz::{self, FailureFile};
use crate::runner::{self, Summary};
use crate::scenario::{Scenario, Schedule, BUDGET_MAX};
use serde::Serialize;
use sim_core::explore::{Budgets, Choice, ExploreOptions, ExploreStats, FaultRules, Stop, Strategy, Verdict};
use sim_core::{FaultModel, TraceMode};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most a `--max-depth` may be.
pub const DEPTH_MAX: u32 = 1_000_000;

/// `--max-memory-mb`'s default, 4 GiB: the memory budget every run has (README, "Bounds").
pub const MEMORY_MB_DEFAULT: u64 = 4096;

/// `--max-memory-mb`'s range.
pub const MEMORY_MB_MIN: u64 = 16;
/// 1 TiB.
pub const MEMORY_MB_MAX: u64 = 1 << 20;

/// How a search runs, as the command line gives it.
#[derive(Clone, Debug)]
pub struct Options {
    pub budgets: Budgets,
    pub strategy: Strategy,
    pub max_depth: Option<u32>,
    pub max_states: Option<u64>,
    pub time_limit: Option<Duration>,
    /// Stop when the process's resident memory has grown this much (Linux).
    pub max_memory_bytes: u64,
    /// Walk every path, pruning nothing (for tests on small cases).
    pub no_visited_set: bool,
    /// Draw a progress line on a terminal (stderr).
    pub progress: bool,
}

/// What a search found, as `--format json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct ExploreReport {
    pub file: String,
    pub scenario: String,
    pub protocol: String,
    pub strategy: Strategy,
    pub budgets: Budgets,
    pub max_depth: Option<u32>,
    pub max_states: Option<u64>,
    pub time_limit_s: Option<f64>,
    /// `exhausted`, `violation` or `stopped`.
    pub verdict: &'static str,
    #[serde(flatten)]
    pub stats: ExploreStats,
    pub elapsed_s: f64,
    pub states_per_s: f64,
    /// How much the process's peak resident memory grew during the search, over the
    /// distinct states: visited set, frontier and trail together (Linux only).
    pub peak_bytes_per_state: Option<f64>,
    /// Which budget stopped the search, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<Stop>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violation: Option<FoundViolation>,
}

/// A violation explore found: the counterexample, written as a failure file.
#[derive(Clone, Debug, Serialize)]
pub struct FoundViolation {
    pub invariant: String,
    pub message: String,
    /// Decisions from the start (every node started) to the violation.
    pub steps: usize,
    pub path: Vec<Choice>,
    pub failure_file: String,
    pub replay: String,
}

impl ExploreReport {
    /// 0: exhausted, no violation; 1: a violation; 3: a budget stopped the search.
    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            "exhausted" => 0,
            "violation" => 1,
            _ => runner::EXIT_UNDECIDED,
        }
    }

    /// The summary for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let budgets = self.budgets;
        let bound = |b: Option<String>| b.unwrap_or_else(|| "none".to_string());
        out.push_str(&format!(
            "explore       {} ({}, {})\n",
            self.file,
            self.protocol,
            match self.strategy {
                Strategy::Bfs => "breadth-first",
                Strategy::Dfs => "depth-first",
            }
        ));
        out.push_str(&format!(
            "budgets       drops {}, duplicates {}, crashes {}; max depth {}, max states {}, time limit {}\n",
            budgets.drops,
            budgets.duplicates,
            budgets.crashes,
            bound(self.max_depth.map(|d| d.to_string())),
            bound(self.max_states.map(|s| s.to_string())),
            bound(self.time_limit_s.map(|t| format!("{t} s"))),
        ));
        let memory =
            self.peak_bytes_per_state.map_or(String::new(), |b| format!(", {b:.0} bytes a state at peak"));
        out.push_str(&format!(
            "searched      {} states, {} transitions, depth {}, {} quiet states, in {:.2} s ({:.0} states/s{memory})\n",
            self.stats.states, self.stats.transitions, self.stats.depth, self.stats.quiet, self.elapsed_s, self.states_per_s
        ));
        match (&self.violation, &self.stopped_by) {
            (Some(v), _) => {
                out.push_str(&format!("verdict       {} violated after {} steps: {}\n", v.invariant, v.steps, v.message));
                out.push_str(&format!("written       {}\n", v.failure_file));
                out.push_str(&format!("replay        {}\n", v.replay));
            }
            (None, Some(stop)) => {
                let why = match stop {
                    Stop::MaxDepth { depth } => {
                        format!("--max-depth {depth}: states at depth {depth} had steps left that were not taken")
                    }
                    Stop::MaxStates { states } => format!("--max-states {states}: the bound on distinct states was reached"),
                    Stop::Memory { bytes } => format!(
                        "--max-memory-mb {}: the search's memory grew past it{}",
                        bytes >> 20,
                        match self.strategy {
                            Strategy::Bfs => " (a depth-first search needs far less)",
                            Strategy::Dfs => " (the path is that deep: bound it with --max-depth)",
                        }
                    ),
                    Stop::TimeLimit => format!(
                        "--time-limit-s {}: the time ran out",
                        self.time_limit_s.map_or("?".to_string(), |t| t.to_string())
                    ),
                    Stop::Undecided { violation } => format!(
                        "{} could not decide within its own budget ({}), so the search cannot say the state passes",
                        violation.invariant, violation.message
                    ),
                };
                out.push_str(&format!("verdict       stopped before the space was exhausted: {why}\n"));
                out.push_str(&format!(
                    "              no violation in the {} states explored; raise the budget to search further\n",
                    self.stats.states
                ));
            }
            (None, None) => out.push_str(&format!(
                "verdict       explored {} states, {} transitions, depth {}: no violation within the budgets\n",
                self.stats.states, self.stats.transitions, self.stats.depth
            )),
        }
        out
    }
}

/// Checks the budgets against the protocol's fault model: a search injects only faults
/// the protocol promises to survive.
fn check_budgets(budgets: &Budgets, model: &FaultModel, rules: &FaultRules) -> Result<(), String> {
    for (flag, value) in
        [("--drops", budgets.drops), ("--duplicates", budgets.duplicates), ("--crashes", budgets.crashes)]
    {
        if value > BUDGET_MAX {
            return Err(format!("{flag} {value}: at most {BUDGET_MAX}"));
        }
    }
    let everywhere = |among: Option<u32>| among == Some(u32::MAX);
    if budgets.drops > 0 && everywhere(rules.lossless_among) {
        return Err(format!(
            "--drops {}: the protocol assumes no message is lost, on every link (its model: {}); explore it with --drops 0",
            budgets.drops, model.description
        ));
    }
    if budgets.duplicates > 0 && everywhere(rules.no_duplicates_among) {
        return Err(format!(
            "--duplicates {}: the protocol assumes no message is duplicated, on every link (its model: {}); explore it with --duplicates 0",
            budgets.duplicates, model.description
        ));
    }
    if budgets.crashes > 0 && (rules.may_crash.is_empty() || rules.max_down_at_once == 0) {
        return Err(format!(
            "--crashes {}: the protocol's fault model allows no crash (its model: {}); explore it with --crashes 0",
            budgets.crashes, model.description
        ));
    }
    Ok(())
}

/// A memory figure of this process from /proc (Linux; `None` elsewhere): `VmRSS` (now)
/// or `VmHWM` (the peak).
fn resident_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Searches `scenario` (read from `file`); on a violation writes its failure file into
/// `out` and returns the replayed run's summary too. Errors are bad input (exit 2).
pub fn explore(
    file: &str,
    scenario: &Scenario,
    options: &Options,
    out: &Path,
) -> Result<(ExploreReport, Option<Summary>), String> {
    if scenario.schedule.is_some() {
        return Err(format!(
            "{file}: this scenario follows a schedule already (a failure file explore wrote): replay it, or explore the scenario it came from"
        ));
    }
    let seed = scenario.seed;
    let instance = runner::instance_with(scenario, scenario.explore_config(seed, TraceMode::HashOnly), false);
    let model = instance.fault_model.clone();
    let rules = FaultRules::from(&model);
    check_budgets(&options.budgets, &model, &rules).map_err(|e| format!("{file}: {e}"))?;
    let config = scenario.explore_config(seed, TraceMode::HashOnly);
    model.admits_network(&config.network).map_err(|e| {
        format!("{file}: the scenario's network is outside the protocol's fault model, so exploring it proves nothing: {e}")
    })?;
    fuzz::check_out_dir(out)?;
    let search = ExploreOptions {
        budgets: options.budgets,
        rules,
        strategy: options.strategy,
        max_depth: options.max_depth,
        max_states: options.max_states,
        no_visited_set: options.no_visited_set,
    };
    // Resets the peak to what is resident now (Linux), so that the peak after the search
    // is this search's, even in a process that peaked before (the benchmark suite).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let resident_before = resident_bytes("VmRSS");
    let started = fuzz::now();
    let mut last_drawn = started;
    let show = options.progress && std::io::stderr().is_terminal();
    let mut stop = |stats: &ExploreStats| {
        let now = fuzz::now();
        if show && now.duration_since(last_drawn) >= Duration::from_millis(250) {
            last_drawn = now;
            let rate = stats.states as f64 / now.duration_since(started).as_secs_f64().max(1e-9);
            let _ = write!(
                std::io::stderr(),
                "\r{} states ({rate:.0}/s), {} transitions, frontier {}, depth {}   ",
                stats.states,
                stats.transitions,
                stats.frontier,
                stats.depth
            );
        }
        if options.time_limit.is_some_and(|limit| now.duration_since(started) >= limit) {
            return Some(Stop::TimeLimit);
        }
        let grown =
            resident_before.zip(resident_bytes("VmRSS")).map(|(before, now)| now.saturating_sub(before));
        grown
            .filter(|&g| g > options.max_memory_bytes)
            .map(|_| Stop::Memory { bytes: options.max_memory_bytes })
    };
    let exploration = instance.simulation.explore(&search, &mut stop);
    if show {
        let _ = write!(std::io::stderr(), "\r{:70}\r", "");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = exploration.stats;
    let mut report = ExploreReport {
        file: file.to_string(),
        scenario: scenario.name.clone(),
        protocol: scenario.protocol_choice().0,
        strategy: options.strategy,
        budgets: options.budgets,
        max_depth: options.max_depth,
        max_states: options.max_states,
        time_limit_s: options.time_limit.map(|t| t.as_secs_f64()),
        verdict: "exhausted",
        stats,
        elapsed_s: elapsed,
        states_per_s: stats.states as f64 / elapsed.max(1e-9),
        peak_bytes_per_state: resident_before
            .zip(resident_bytes("VmHWM"))
            .map(|(before, peak)| peak.saturating_sub(before) as f64 / stats.states.max(1) as f64),
        stopped_by: None,
        violation: None,
    };
    let mut summary = None;
    match exploration.verdict {
        Verdict::Exhausted => {}
        Verdict::Stopped(stop) => {
            report.verdict = "stopped";
            report.stopped_by = Some(stop);
        }
        Verdict::Violation { path, violation } => {
            report.verdict = "violation";
            let mut failing = scenario.clone();
            failing.faults.clear();
            failing.schedule = Some(Schedule { budgets: options.budgets, decisions: path.clone() });
            let run =
                runner::simulate(&failing, seed, TraceMode::HashOnly, None).map_err(|e| e.to_string())?;
            let failure = FailureFile::new(file, &failing, seed, &run, None).ok_or_else(|| {
                format!("{file}: the path explore found does not replay to the violation of {}: a determinism bug in explore", violation.invariant)
            })?;
            let written = fuzz::write_failure(out, &failure)?;
            let shown = written.display().to_string();
            summary = Some(
                runner::run(&failure.scenario, &shown, Some(seed), TraceMode::Recent(20), None)
                    .map_err(|e| e.to_string())?,
            );
            report.violation = Some(FoundViolation {
                invariant: violation.invariant.clone(),
                message: violation.message.clone(),
                steps: path.len(),
                path,
                replay: format!("{} replay {}", crate::program(), crate::shell_quote(&shown)),
                failure_file: shown,
            });
        }
    }
    Ok((report, summary))
}

/// Where `dsim explore` writes failure files by default (as `dsim fuzz` does).
pub fn default_out() -> PathBuf {
    PathBuf::from("dsim-failures")
}
