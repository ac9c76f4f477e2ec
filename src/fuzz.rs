//! Fuzz campaigns: one scenario over many seeds, in parallel, each run single-threaded and
//! deterministic. Also failure files (self-contained, replayable records of a violation),
//! swarm testing (each seed draws which fault kinds are on, after Groce et al. 2012), seed
//! ranges and shards.
//!
//! A campaign hunts for invariant violations whatever the file's `expect` says. Runs whose
//! faults exceed the protocol's fault model do not count as failures.

use crate::locate::Seg;
use crate::runner::{self, Run};
use crate::scenario::{
    FaultSpec, LatencySpec, Millis, OrderingSpec, Probability, Scenario, ScenarioError, SlowSpec,
};
use serde::{Deserialize, Serialize};
use sim_core::{FaultModel, Outcome, SimRng, Stream, TraceMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The failure file format's name and current version.
pub const FAILURE_FORMAT: &str = "dsim-failure";
pub const FAILURE_VERSION: u32 = 1;

/// A half-open seed range `A..B`, or `A..=B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
}

impl std::str::FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<SeedRange, String> {
        let bad = || format!("{text:?} is not a seed range: write A..B (B excluded) or A..=B, e.g. 0..1000");
        let (start, end, inclusive) = if let Some((a, b)) = text.split_once("..=") {
            (a, b, true)
        } else if let Some((a, b)) = text.split_once("..") {
            (a, b, false)
        } else {
            return Err(bad());
        };
        let start: u64 = start.trim().parse().map_err(|_| bad())?;
        let end: u64 = end.trim().parse().map_err(|_| bad())?;
        let end = if inclusive { end.checked_add(1).ok_or_else(bad)? } else { end };
        if end < start {
            return Err(format!("the seed range {text} is reversed: the start must come first"));
        }
        if end == start {
            return Err(format!("the seed range {text} is empty"));
        }
        Ok(SeedRange { start, end })
    }
}

impl std::fmt::Display for SeedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// Shard `index` of `count`: every `count`-th seed of the range, from its `index`-th.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("{text:?} is not a shard: write I/N with 0 <= I < N, e.g. 0/4");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u64 = index.trim().parse().map_err(|_| bad())?;
        let count: u64 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(format!("shard {text} is out of range: I must be from 0 to N-1 and N at least 1"));
        }
        Ok(Shard { index, count })
    }
}

/// The seeds a campaign runs.
pub fn seeds(range: SeedRange, shard: Option<Shard>) -> Vec<u64> {
    let shard = shard.unwrap_or(Shard { index: 0, count: 1 });
    (range.start..range.end).filter(|seed| (seed - range.start) % shard.count == shard.index).collect()
}

/// What swarm testing drew for one seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmKnobs {
    pub drop_probability: f64,
    pub duplicate_probability: f64,
    pub slow_probability: f64,
    pub ordering: OrderingSpec,
    pub crashes: u32,
    pub partitions: u32,
}

impl std::fmt::Display for SwarmKnobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "drop {:.3}, duplicate {:.3}, slow {:.3}, {:?}, {} crash(es), {} partition(s)",
            self.drop_probability,
            self.duplicate_probability,
            self.slow_probability,
            self.ordering,
            self.crashes,
            self.partitions
        )
    }
}

/// Draws the swarm knobs for `seed` and returns the scenario with them filled in: network
/// knobs on every link, and a fault timeline that replaces the file's.
pub fn swarm(scenario: &Scenario, seed: u64) -> (Scenario, SwarmKnobs) {
    let (model, n_nodes) = runner::fault_model(scenario);
    swarm_in(scenario, &model, n_nodes, seed)
}

/// [`swarm`] with the protocol's fault model and node count already known (a campaign
/// works them out once, not once per seed).
fn swarm_in(scenario: &Scenario, model: &FaultModel, n_nodes: usize, seed: u64) -> (Scenario, SwarmKnobs) {
    let spec = scenario.fuzz.clone().unwrap_or_default();
    let mut rng = SimRng::new(seed, Stream::Swarm);
    // Each kind is on with probability 1/2; when on, its rate is uniform in its range.
    let mut rate = |range: [Probability; 2]| {
        let on = rng.chance(0.5);
        let x = range[0].0 + rng.unit() * (range[1].0 - range[0].0);
        if on {
            x
        } else {
            0.0
        }
    };
    let drop = rate(spec.drop_probability);
    let duplicate = rate(spec.duplicate_probability);
    let slow = rate(spec.slow_probability);
    let ordering = if rng.chance(0.5) { OrderingSpec::Fifo } else { OrderingSpec::Reorder };
    // Faults must happen before the run stops (validation rejects later ones): ping runs
    // end at `end_at_ms`, often well within the default window.
    let window = spec.fault_window_ms.0.min(0.9 * scenario.stop().0 .0);
    let crashes =
        if model.may_crash.is_empty() { 0 } else { rng.below(u64::from(spec.crashes_max) + 1) as u32 };
    let partitions = if !model.partitions || n_nodes < 2 {
        0
    } else {
        rng.below(u64::from(spec.partitions_max) + 1) as u32
    };

    let mut out = scenario.clone();
    let links = &mut out.network.all_links;
    links.drop_probability = Some(Probability(drop));
    links.duplicate_probability = Some(Probability(duplicate));
    links.ordering = Some(ordering);
    links.slow = (slow > 0.0).then_some(SlowSpec {
        probability: Probability(slow),
        latency: LatencySpec::Uniform { ms_min: Millis(100.0), ms_max: Millis(1_000.0) },
        applies_to: crate::scenario::AppliesToSpec::All,
    });
    let mut faults = Vec::new();
    // Crashes sit in disjoint slots of the window, so at most one node is down at a time.
    for slot in 0..crashes {
        let slot_ms = window / f64::from(crashes);
        let start = slot_ms * f64::from(slot);
        let at = start + rng.unit() * slot_ms / 2.0;
        let until = at + slot_ms / 10.0 + rng.unit() * (slot_ms * 0.4);
        let node = model.may_crash[rng.index(model.may_crash.len())].0;
        faults.push(FaultSpec::Crash { node, at_ms: Millis(round_ms(at)) });
        faults.push(FaultSpec::Restart { node, at_ms: Millis(round_ms(until)) });
    }
    for _ in 0..partitions {
        let mut groups = vec![Vec::new(), Vec::new()];
        for node in 0..n_nodes as u32 {
            groups[rng.index(2)].push(node);
        }
        if groups.iter().any(Vec::is_empty) {
            let moved = rng.below(n_nodes as u64) as u32;
            groups = vec![vec![moved], (0..n_nodes as u32).filter(|n| *n != moved).collect()];
        }
        let at = rng.unit() * window;
        let until = at + window / 10.0 + rng.unit() * window * 0.4;
        faults.push(FaultSpec::Partition {
            groups,
            at_ms: Millis(round_ms(at)),
            until_ms: Some(Millis(round_ms(until))),
        });
    }
    out.faults = faults;
    let knobs = SwarmKnobs {
        drop_probability: drop,
        duplicate_probability: duplicate,
        slow_probability: slow,
        ordering,
        crashes,
        partitions,
    };
    (out, knobs)
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1_000.0).round() / 1_000.0
}

/// A failure, self-contained: the full scenario (knobs filled in, seed set, `expect` set to
/// the violation) and what happened. `dsim run` and `dsim replay` re-run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureFile {
    pub format: String,
    pub version: u32,
    /// The scenario file the campaign ran.
    pub source: String,
    pub seed: u64,
    pub invariant: String,
    pub message: String,
    pub step: u64,
    pub time_us: u64,
    pub trace_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmKnobs>,
    pub scenario: Scenario,
}

impl FailureFile {
    /// The failure file for a violating run of `scenario` (already swarm-filled) at `seed`.
    pub fn new(
        source: &str,
        scenario: &Scenario,
        seed: u64,
        run: &Run,
        swarm: Option<SwarmKnobs>,
    ) -> Option<FailureFile> {
        let Outcome::Violation(v) = &run.report.outcome else { return None };
        let mut scenario = scenario.clone();
        scenario.seed = seed;
        scenario.expect = crate::scenario::Expect::Violation(v.invariant.clone());
        if let Some(selected) = &mut scenario.invariants {
            if !selected.contains(&v.invariant) {
                selected.push(v.invariant.clone());
            }
        }
        Some(FailureFile {
            format: FAILURE_FORMAT.to_string(),
            version: FAILURE_VERSION,
            source: source.to_string(),
            seed,
            invariant: v.invariant.clone(),
            message: v.message.clone(),
            step: v.step,
            time_us: v.time.as_micros(),
            trace_hash: run.report.trace_hash.clone(),
            swarm,
            scenario,
        })
    }

    /// The file name a campaign gives it.
    pub fn file_name(&self) -> String {
        format!("{}-seed-{}-{}.json", self.scenario.name.replace('/', "-"), self.seed, self.invariant)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("failure files serialize") + "\n"
    }
}

/// A scenario file or a failure file, as `dsim run` and `dsim replay` accept.
pub struct Loaded {
    pub scenario: Scenario,
    pub failure: Option<FailureFile>,
}

/// Loads a scenario file or a failure file (told apart by `"format": "dsim-failure"`).
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let file = path.display().to_string();
    let text = crate::scenario::read_text(path)?;
    let value: serde_json::Value = crate::scenario::parse_json(&file, &text)?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FAILURE_FORMAT) {
        return Ok(Loaded { scenario: Scenario::parse(&file, &text)?, failure: None });
    }
    let version = value.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(FAILURE_VERSION)) {
        let shown = version.map_or("no version".to_string(), |v| format!("version {v}"));
        return Err(crate::scenario::located(
            &file,
            &text,
            &[Seg::Key("version".into())],
            format!(
                "this failure file has {shown}, and this dsim reads version {FAILURE_VERSION} only{}",
                if version.is_some_and(|v| v > u64::from(FAILURE_VERSION)) {
                    ": it was written by a newer dsim"
                } else {
                    ""
                }
            ),
        ));
    }
    let failure: FailureFile = crate::scenario::parse_json(&file, &text)?;
    failure.scenario.check(&file, &text, &[Seg::Key("scenario".into())])?;
    Ok(Loaded { scenario: failure.scenario.clone(), failure: Some(failure) })
}

/// How a campaign runs.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    pub seeds: SeedRange,
    pub shard: Option<Shard>,
    pub jobs: usize,
    pub swarm: bool,
    pub keep_going: bool,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
}

/// What a campaign found.
#[derive(Clone, Debug, Serialize)]
pub struct FuzzReport {
    pub source: String,
    pub seeds: String,
    pub shard: Option<String>,
    pub jobs: usize,
    pub swarm: bool,
    pub seeds_run: u64,
    pub failures_by_invariant: BTreeMap<String, u64>,
    /// Runs that hit `max_steps` or `max_time` (not failures, but worth knowing).
    pub limits_hit: u64,
    /// Runs whose faults exceeded the fault model (their violations are not counted).
    pub outside_fault_model: u64,
    /// For each declared "sometimes" point, how many seeds reached it.
    pub coverage: BTreeMap<String, u64>,
    pub never_reached: Vec<String>,
    pub elapsed_s: f64,
    pub seeds_per_s: f64,
    pub failures: Vec<FailureFile>,
}

#[allow(clippy::disallowed_methods)] // times the campaign from outside; no run reads it
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Runs the campaign. Without `keep_going` it stops at the lowest failing seed: seeds above
/// a known failure are skipped, seeds below it still run, so the result does not depend on
/// thread timing.
pub fn campaign(scenario: &Scenario, source: &str, options: &FuzzOptions) -> FuzzReport {
    let seeds = seeds(options.seeds, options.shard);
    let swarm_model = options.swarm.then(|| runner::fault_model(scenario));
    let next = AtomicUsize::new(0);
    let first_failure = AtomicU64::new(u64::MAX);
    let results: Mutex<Vec<(usize, SeedResult)>> = Mutex::new(Vec::new());
    let bar = progress_bar(seeds.len() as u64, options.progress);
    let failures_found = AtomicU64::new(0);
    let started = now();
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= seeds.len()
                    || (!options.keep_going && i as u64 > first_failure.load(Ordering::Relaxed))
                {
                    break;
                }
                let result = run_seed(scenario, source, seeds[i], swarm_model.as_ref());
                if result.failure.is_some() {
                    failures_found.fetch_add(1, Ordering::Relaxed);
                    first_failure.fetch_min(i as u64, Ordering::Relaxed);
                    bar.set_message(format!("failures: {}", failures_found.load(Ordering::Relaxed)));
                }
                bar.inc(1);
                results.lock().expect("no worker panics").push((i, result));
            });
        }
    });
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let mut results = results.into_inner().expect("no worker panics");
    results.sort_by_key(|(i, _)| *i);
    if !options.keep_going {
        let cut = first_failure.load(Ordering::Relaxed);
        results.retain(|(i, _)| *i as u64 <= cut);
    }
    summarize(source, options, results.into_iter().map(|(_, r)| r).collect(), elapsed)
}

struct SeedResult {
    failure: Option<FailureFile>,
    limit_hit: bool,
    outside: bool,
    reached: Vec<String>,
    declared: Vec<String>,
}

/// Runs one seed; with `swarm` (the protocol's fault model and node count), draws its knobs.
fn run_seed(scenario: &Scenario, source: &str, seed: u64, swarm: Option<&(FaultModel, usize)>) -> SeedResult {
    let (scenario, knobs) = match swarm {
        Some((model, n_nodes)) => {
            let (s, k) = swarm_in(scenario, model, *n_nodes, seed);
            (s, Some(k))
        }
        None => (scenario.clone(), None),
    };
    let run = runner::simulate(&scenario, seed, TraceMode::HashOnly, None).expect("no trace sink, no I/O");
    let outside = run.outside_fault_model.is_some();
    let failure = if outside { None } else { FailureFile::new(source, &scenario, seed, &run, knobs) };
    SeedResult {
        limit_hit: matches!(run.report.outcome, Outcome::LimitReached(_)),
        outside: outside && run.report.outcome.violation().is_some(),
        reached: run.coverage.iter().filter(|(_, n)| **n > 0).map(|(p, _)| p.clone()).collect(),
        declared: run.coverage.keys().cloned().collect(),
        failure,
    }
}

fn summarize(source: &str, options: &FuzzOptions, results: Vec<SeedResult>, elapsed: Duration) -> FuzzReport {
    let mut coverage: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_invariant = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut limits_hit, mut outside) = (0, 0);
    for result in &results {
        for point in &result.declared {
            coverage.entry(point.clone()).or_insert(0);
        }
        for point in &result.reached {
            *coverage.entry(point.clone()).or_insert(0) += 1;
        }
        limits_hit += u64::from(result.limit_hit);
        outside += u64::from(result.outside);
    }
    for result in results.iter().filter_map(|r| r.failure.clone()) {
        *by_invariant.entry(result.invariant.clone()).or_insert(0) += 1;
        failures.push(result);
    }
    let seeds_run = results.len() as u64;
    FuzzReport {
        source: source.to_string(),
        seeds: options.seeds.to_string(),
        shard: options.shard.map(|s| format!("{}/{}", s.index, s.count)),
        jobs: options.jobs,
        swarm: options.swarm,
        seeds_run,
        failures_by_invariant: by_invariant,
        limits_hit,
        outside_fault_model: outside,
        never_reached: coverage.iter().filter(|(_, n)| **n == 0).map(|(p, _)| p.clone()).collect(),
        coverage,
        elapsed_s: elapsed.as_secs_f64(),
        seeds_per_s: seeds_run as f64 / elapsed.as_secs_f64().max(1e-9),
        failures,
    }
}

fn progress_bar(len: u64, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    // Drawn on stderr, and only when stderr is a terminal.
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} seeds  {per_sec}  {msg}  time left {eta}",
    )
    .expect("the template is valid");
    bar.set_style(style);
    bar.set_message("failures: 0");
    bar
}

/// At most this many failure files are written per campaign, and this many failures shown.
pub const FAILURES_WRITTEN_MAX: usize = 100;
pub const FAILURES_SHOWN_MAX: usize = 10;

impl FuzzReport {
    /// Writes the first [`FAILURES_WRITTEN_MAX`] failure files into `dir`; returns their
    /// paths.
    pub fn write_failures(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        if self.failures.is_empty() {
            return Ok(Vec::new());
        }
        std::fs::create_dir_all(dir)?;
        self.failures
            .iter()
            .take(FAILURES_WRITTEN_MAX)
            .map(|failure| {
                let path = dir.join(failure.file_name());
                std::fs::write(&path, failure.to_json())?;
                Ok(path)
            })
            .collect()
    }

    /// The readable summary `dsim fuzz` prints.
    pub fn text(&self, written: &[PathBuf]) -> String {
        let mut out = String::new();
        let line = |out: &mut String, key: &str, value: String| out.push_str(&format!("{key:<14}{value}\n"));
        line(&mut out, "fuzz", self.source.clone());
        let shard = self.shard.as_ref().map_or(String::new(), |s| format!(", shard {s}"));
        line(
            &mut out,
            "seeds",
            format!(
                "{}{shard}, {} run, {} job(s), swarm {}",
                self.seeds,
                self.seeds_run,
                self.jobs,
                if self.swarm { "on" } else { "off" }
            ),
        );
        let by: Vec<String> = self.failures_by_invariant.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let failures: u64 = self.failures_by_invariant.values().sum();
        line(
            &mut out,
            "failures",
            if failures == 0 { "none".into() } else { format!("{failures} ({})", by.join(", ")) },
        );
        if self.limits_hit > 0 {
            line(&mut out, "limits hit", format!("{} run(s) hit max_steps or max_time", self.limits_hit));
        }
        if self.outside_fault_model > 0 {
            line(
                &mut out,
                "outside model",
                format!(
                    "{} violating run(s) exceeded the fault model (not counted)",
                    self.outside_fault_model
                ),
            );
        }
        line(&mut out, "speed", format!("{:.1} seeds/s ({:.2} s)", self.seeds_per_s, self.elapsed_s));
        if !self.coverage.is_empty() {
            out.push_str("rare paths    seeds that reached each \"sometimes\" point:\n");
            for (point, seeds) in &self.coverage {
                out.push_str(&format!(
                    "  {seeds:>8}  {point}{}\n",
                    if *seeds == 0 { "   <- NEVER REACHED" } else { "" }
                ));
            }
        }
        for (i, failure) in self.failures.iter().enumerate().take(FAILURES_SHOWN_MAX) {
            out.push_str(&format!(
                "\nfailure: seed {} violates {} at step {}, t={}\n",
                failure.seed,
                failure.invariant,
                failure.step,
                sim_core::SimTime::from_micros(failure.time_us)
            ));
            if let Some(knobs) = &failure.swarm {
                out.push_str(&format!("  swarm knobs: {knobs}\n"));
            }
            let first = failure.message.lines().next().unwrap_or("");
            out.push_str(&format!("  {first}\n"));
            match written.get(i) {
                Some(path) => out.push_str(&format!("  replay: dsim replay {}\n", path.display())),
                None if failure.swarm.is_none() => {
                    out.push_str(&format!("  replay: dsim run {} --seed {}\n", self.source, failure.seed))
                }
                None => out.push_str("  replay: (only the first failures are written as files)\n"),
            }
        }
        if self.failures.len() > FAILURES_SHOWN_MAX {
            let written = written.len().min(self.failures.len());
            out.push_str(&format!(
                "\n... and {} more failures ({written} failure files written in all)\n",
                self.failures.len() - FAILURES_SHOWN_MAX
            ));
        }
        out
    }
}
