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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The failure file format's name and current version.
pub const FAILURE_FORMAT: &str = "dsim-failure";
pub const FAILURE_VERSION: u32 = 1;

/// A seed range, `A..B` (B excluded) or `A..=B`, kept as its first and last seed so that
/// `0..=18446744073709551615` (every seed) fits. Never a list: a campaign works out its
/// seeds by arithmetic ([`Seeds`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub first: u64,
    /// Inclusive.
    pub last: u64,
}

impl SeedRange {
    /// How many seeds the range holds (up to 2^64, hence `u128`).
    pub fn len(&self) -> u128 {
        u128::from(self.last - self.first) + 1
    }

    /// Never true: an empty range does not parse.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The valid values of a seed, for messages.
pub const SEED_RANGE_TEXT: &str = "a seed is a whole number from 0 to 18446744073709551615 (2^64 - 1)";

/// Parses a seed, with a message that gives the valid range.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| format!("{text:?} is not a seed: {SEED_RANGE_TEXT}"))
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
        let bound = |t: &str| t.trim().parse::<u64>().map_err(|_| format!("{} ({SEED_RANGE_TEXT})", bad()));
        let (start, end) = (bound(start)?, bound(end)?);
        if end < start {
            return Err(format!("the seed range {text} is reversed: the start must come first"));
        }
        if end == start && !inclusive {
            return Err(format!("the seed range {text} is empty"));
        }
        let last = if inclusive { end } else { end - 1 };
        Ok(SeedRange { first: start, last })
    }
}

impl std::fmt::Display for SeedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.last.checked_add(1) {
            Some(end) => write!(f, "{}..{end}", self.first),
            None => write!(f, "{}..={}", self.first, self.last),
        }
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

/// The seeds a campaign runs: `first`, then every `stride`-th seed, `len` of them.
/// Arithmetic, not a list: the 2^64 seeds of `0..=18446744073709551615` take no memory,
/// and a shard of a huge count costs nothing to work out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seeds {
    first: u64,
    stride: u64,
    len: u128,
}

impl Seeds {
    pub fn len(&self) -> u128 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th seed; `i < len`.
    pub fn get(&self, i: u128) -> u64 {
        assert!(i < self.len, "seed index {i} out of {}", self.len);
        // In range by construction: the last index lands on a seed of the range.
        (u128::from(self.first) + i * u128::from(self.stride)) as u64
    }

    pub fn iter(&self) -> SeedsIter {
        SeedsIter { seeds: *self, next: 0 }
    }
}

/// The seeds of a [`Seeds`], in order.
pub struct SeedsIter {
    seeds: Seeds,
    next: u128,
}

impl Iterator for SeedsIter {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        (self.next < self.seeds.len).then(|| {
            self.next += 1;
            self.seeds.get(self.next - 1)
        })
    }
}

impl IntoIterator for Seeds {
    type Item = u64;
    type IntoIter = SeedsIter;

    fn into_iter(self) -> SeedsIter {
        self.iter()
    }
}

/// The seeds a campaign runs (possibly none: a shard index past the range's length).
pub fn seeds(range: SeedRange, shard: Option<Shard>) -> Seeds {
    let shard = shard.unwrap_or(Shard { index: 0, count: 1 });
    let total = range.len();
    let index = u128::from(shard.index);
    let len = if index >= total { 0 } else { (total - 1 - index) / u128::from(shard.count) + 1 };
    let first = if len == 0 { range.first } else { range.first + shard.index };
    Seeds { first, stride: shard.count, len }
}

/// Why a shard has no seeds, for the error message.
pub fn empty_shard_message(range: SeedRange, shard: Shard) -> String {
    format!(
        "shard {}/{} of seeds {range} has no seeds: the range holds {} seed(s), so shard indexes from {} on are empty (use fewer shards or a longer range)",
        shard.index,
        shard.count,
        range.len(),
        range.len()
    )
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

/// The random stream swarm testing draws its knobs from (`Stream::Tool`): the
/// second-to-last stream, far above any node's, so the draws never move a run's own.
pub const SWARM_STREAM: u64 = u64::MAX - 1;

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
    let mut rng = SimRng::new(seed, Stream::Tool(SWARM_STREAM));
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
        let until = round_ms(at + window / 10.0 + rng.unit() * window * 0.4);
        let at = round_ms(at);
        // A window under a few microseconds rounds both ends to the same microsecond; a
        // partition must end after it starts (else its failure file would not load).
        let until = until.max(round_ms(at + 0.001));
        faults.push(FaultSpec::Partition { groups, at_ms: Millis(at), until_ms: Some(Millis(until)) });
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

    /// The file name a campaign gives it: the scenario's name and the invariant made safe
    /// for a file name ([`file_name_part`]), and the seed.
    pub fn file_name(&self) -> String {
        format!(
            "{}-seed-{}-{}.json",
            file_name_part(&self.scenario.name),
            self.seed,
            file_name_part(&self.invariant)
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("failure files serialize") + "\n"
    }
}

/// The longest piece of a failure file's name taken from the scenario (or the invariant).
pub const FILE_NAME_PART_MAX: usize = 64;

/// `text` made safe as part of a file name: letters, digits, `.`, `_` and `-` kept, any
/// other run of characters (`/`, spaces, control characters) one `-`, no leading `.` (so
/// never `..` or a hidden file), at most [`FILE_NAME_PART_MAX`] characters, never empty.
pub fn file_name_part(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_start_matches(['.', '-']).chars().take(FILE_NAME_PART_MAX).collect();
    if out.is_empty() {
        "scenario".to_string()
    } else {
        out
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
    load_text(&file, &text)
}

/// Reads a scenario or failure file's `text` (named `file` in errors), as [`load`] does.
pub fn load_text(file: &str, text: &str) -> Result<Loaded, ScenarioError> {
    let (file, text) = (file.to_string(), text.to_string());
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
    failure.check().map_err(|(path, message)| crate::scenario::located(&file, &text, &path, message))?;
    Ok(Loaded { scenario: failure.scenario.clone(), failure: Some(failure) })
}

impl FailureFile {
    /// The checks that tie a failure file's record to its scenario: an edited file must be
    /// refused here, not replayed and reported as a determinism bug.
    fn check(&self) -> Result<(), (Vec<Seg>, String)> {
        let key = |k: &str| vec![Seg::Key(k.to_string())];
        let scenario = &self.scenario;
        if self.seed != scenario.seed {
            return Err((
                key("seed"),
                format!(
                    "the failure's seed {} differs from its scenario's seed {}: they must agree (the scenario's is the one run)",
                    self.seed, scenario.seed
                ),
            ));
        }
        let known = scenario.invariant_names();
        if !known.contains(&self.invariant.as_str()) {
            return Err((
                key("invariant"),
                format!("unknown invariant {:?}: this protocol has {}", self.invariant, known.join(", ")),
            ));
        }
        if scenario.invariants.as_ref().is_some_and(|selected| !selected.contains(&self.invariant)) {
            return Err((
                key("invariant"),
                format!("invariant {:?} is not among the scenario's \"invariants\"", self.invariant),
            ));
        }
        if scenario.expect != crate::scenario::Expect::Violation(self.invariant.clone()) {
            return Err((
                vec![Seg::Key("scenario".into()), Seg::Key("expect".into())],
                format!(
                    "a failure file's scenario expects the violation it records: {{\"violation\": {:?}}}",
                    self.invariant
                ),
            ));
        }
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if self.trace_hash.len() != 16 || !self.trace_hash.chars().all(hex) {
            return Err((
                key("trace_hash"),
                format!(
                    "{:?} is not a trace hash: 16 lowercase hex digits, e.g. \"0f3a9c2b7d41e605\"",
                    self.trace_hash
                ),
            ));
        }
        if let Some(knobs) = &self.swarm {
            let rates = [
                ("drop_probability", knobs.drop_probability),
                ("duplicate_probability", knobs.duplicate_probability),
                ("slow_probability", knobs.slow_probability),
            ];
            if let Some((name, rate)) = rates.iter().find(|(_, rate)| !(0.0..=1.0).contains(rate)) {
                return Err((
                    vec![Seg::Key("swarm".into()), Seg::Key(name.to_string())],
                    format!("{rate} is not a probability: from 0 to 1"),
                ));
            }
        }
        if self.step == 0 {
            return Err((key("step"), "a violation happens at step 1 or later".to_string()));
        }
        Ok(())
    }
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

/// The most worker threads a campaign runs: more than any machine's cores, and few
/// enough that spawning them is instant.
pub const JOBS_MAX: usize = 256;

/// At most this many failures are kept in memory (and printed in the JSON summary); the
/// rest are counted, and written as files.
pub const FAILURES_KEPT_MAX: usize = 20;
/// At most this many failure files are written per campaign; further failures are counted.
pub const FAILURES_WRITTEN_MAX: u64 = 10_000;
/// At most this many failures are shown in the text summary.
pub const FAILURES_SHOWN_MAX: usize = 10;

/// The version of the `--format json` summary. Bumped whenever its fields or the way a
/// shard picks its seeds change, so that `dsim fuzz-merge` never adds up summaries that
/// mean different things.
pub const SUMMARY_VERSION: u32 = 1;

/// What a campaign found.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuzzReport {
    /// [`SUMMARY_VERSION`].
    pub summary_version: u32,
    pub source: String,
    pub seeds: String,
    pub shard: Option<String>,
    pub jobs: usize,
    pub swarm: bool,
    /// Whether the campaign ran every seed (`--keep-going`) or stopped at its lowest
    /// failing seed.
    pub keep_going: bool,
    pub seeds_run: u64,
    pub failures_by_invariant: BTreeMap<String, u64>,
    /// Runs that hit `max_steps` or `max_time` (not failures, but worth knowing).
    pub limits_hit: u64,
    /// Runs whose faults exceeded the fault model (their violations are not counted).
    pub outside_fault_model: u64,
    /// Runs that ended undecided: a check ran out of its budget (not failures, not
    /// passes; no failure file is written for them).
    pub undecided: u64,
    /// The first `UNDECIDED_SHOWN_MAX` undecided seeds, with the check that gave up.
    pub undecided_seeds: Vec<UndecidedSeed>,
    /// For each declared "sometimes" point, how many seeds reached it.
    pub coverage: BTreeMap<String, u64>,
    pub never_reached: Vec<String>,
    pub elapsed_s: f64,
    pub seeds_per_s: f64,
    /// Every failure found.
    pub failures_total: u64,
    /// The first [`FAILURES_KEPT_MAX`] failures, in seed order; the others are in `out`.
    pub failures: Vec<FailureFile>,
    /// Where the failure files went (none if the campaign wrote none).
    pub out: Option<String>,
    /// How many failure files were written there (at most [`FAILURES_WRITTEN_MAX`]).
    pub failure_files_written: u64,
    /// The files of the failures in `failures`, in the same order.
    pub failure_files: Vec<String>,
}

#[allow(clippy::disallowed_methods)] // times the campaign from outside; no run reads it
pub fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// Runs the campaign, keeping the first failures in memory and writing no file. Without
/// `keep_going` it stops at the lowest failing seed: seeds above a known failure are
/// skipped, seeds below it still run, so the result does not depend on thread timing.
///
/// Panics if swarm testing draws an invalid scenario (see [`campaign_into`]).
pub fn campaign(scenario: &Scenario, source: &str, options: &FuzzOptions) -> FuzzReport {
    campaign_into(scenario, source, options, None).unwrap_or_else(|err| panic!("{err}"))
}

/// Runs the campaign like [`campaign`], and writes each failure's file into `out` as it
/// is found (the first [`FAILURES_WRITTEN_MAX`] of them), in seed order. Memory stays
/// bounded whatever the number of seeds or failures: results are folded into counts in
/// seed order as they arrive. Errors: a failure file that cannot be written, or a swarm
/// draw that is not a valid scenario (then no failure file could replay it).
pub fn campaign_into(
    scenario: &Scenario,
    source: &str,
    options: &FuzzOptions,
    out: Option<&Path>,
) -> Result<FuzzReport, String> {
    let seeds = seeds(options.seeds, options.shard);
    let swarm_model = options.swarm.then(|| runner::fault_model(scenario));
    let next = AtomicU64::new(0);
    let first_failure = AtomicU64::new(u64::MAX);
    let stop = AtomicBool::new(false);
    let tally = Mutex::new(Tally::new(out, options.keep_going));
    let bar = progress_bar(u64::try_from(seeds.len()).unwrap_or(u64::MAX), options.progress);
    let failures_found = AtomicU64::new(0);
    let started = now();
    let jobs = u128::try_from(options.jobs.clamp(1, JOBS_MAX)).expect("small").min(seeds.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if u128::from(i) >= seeds.len()
                    || stop.load(Ordering::Relaxed)
                    || (!options.keep_going && i > first_failure.load(Ordering::Relaxed))
                {
                    break;
                }
                let result = run_seed(scenario, source, seeds.get(u128::from(i)), swarm_model.as_ref());
                if matches!(result, Ok(SeedResult { failure: Some(_), .. })) {
                    failures_found.fetch_add(1, Ordering::Relaxed);
                    first_failure.fetch_min(i, Ordering::Relaxed);
                    bar.set_message(format!("failures: {}", failures_found.load(Ordering::Relaxed)));
                }
                bar.inc(1);
                let mut tally = tally.lock().expect("no worker panics");
                if !tally.add(i, result) {
                    stop.store(true, Ordering::Relaxed);
                }
            });
        }
    });
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    let tally = tally.into_inner().expect("no worker panics");
    if let Some(err) = tally.error {
        return Err(err);
    }
    Ok(tally.report(source, options, elapsed))
}

/// A campaign's results folded in seed order, so that what it reports and writes does not
/// depend on which thread finished first. Results that arrive early wait in `pending`.
struct Tally<'a> {
    out: Option<&'a Path>,
    keep_going: bool,
    /// The index of the next result to fold.
    next: u64,
    pending: BTreeMap<u64, Result<SeedResult, String>>,
    /// Set once a failure is folded without `keep_going`: later results are dropped.
    done: bool,
    error: Option<String>,
    seeds_run: u64,
    coverage: BTreeMap<String, u64>,
    by_invariant: BTreeMap<String, u64>,
    limits_hit: u64,
    outside: u64,
    undecided: u64,
    undecided_seeds: Vec<UndecidedSeed>,
    failures_total: u64,
    failures: Vec<FailureFile>,
    written: u64,
    files: Vec<String>,
}

impl<'a> Tally<'a> {
    fn new(out: Option<&'a Path>, keep_going: bool) -> Tally<'a> {
        Tally {
            out,
            keep_going,
            next: 0,
            pending: BTreeMap::new(),
            done: false,
            error: None,
            seeds_run: 0,
            coverage: BTreeMap::new(),
            by_invariant: BTreeMap::new(),
            limits_hit: 0,
            outside: 0,
            undecided: 0,
            undecided_seeds: Vec::new(),
            failures_total: 0,
            failures: Vec::new(),
            written: 0,
            files: Vec::new(),
        }
    }

    /// Takes the result of seed index `i`, folds every result now in order; returns false
    /// when the campaign should stop (an error).
    fn add(&mut self, i: u64, result: Result<SeedResult, String>) -> bool {
        self.pending.insert(i, result);
        while let Some(result) = self.pending.remove(&self.next) {
            self.next += 1;
            if self.done || self.error.is_some() {
                continue;
            }
            match result {
                Ok(result) => self.fold(result),
                Err(err) => self.error = Some(err),
            }
        }
        self.error.is_none()
    }

    fn fold(&mut self, result: SeedResult) {
        self.seeds_run += 1;
        for point in &result.declared {
            self.coverage.entry(point.clone()).or_insert(0);
        }
        for point in &result.reached {
            *self.coverage.entry(point.clone()).or_insert(0) += 1;
        }
        self.limits_hit += u64::from(result.limit_hit);
        self.outside += u64::from(result.outside);
        if let Some(undecided) = result.undecided {
            self.undecided += 1;
            if self.undecided_seeds.len() < UNDECIDED_SHOWN_MAX {
                self.undecided_seeds.push(undecided);
            }
        }
        let Some(failure) = result.failure else { return };
        self.done = !self.keep_going;
        self.failures_total += 1;
        *self.by_invariant.entry(failure.invariant.clone()).or_insert(0) += 1;
        let mut path = None;
        if let Some(dir) = self.out.filter(|_| self.written < FAILURES_WRITTEN_MAX) {
            match write_failure(dir, &failure) {
                Ok(written) => {
                    self.written += 1;
                    path = Some(written);
                }
                Err(err) => {
                    self.error = Some(err);
                    return;
                }
            }
        }
        if self.failures.len() < FAILURES_KEPT_MAX {
            if let Some(path) = path {
                self.files.push(path.display().to_string());
            }
            self.failures.push(failure);
        }
    }

    fn report(self, source: &str, options: &FuzzOptions, elapsed: Duration) -> FuzzReport {
        FuzzReport {
            summary_version: SUMMARY_VERSION,
            keep_going: options.keep_going,
            source: source.to_string(),
            seeds: options.seeds.to_string(),
            shard: options.shard.map(|s| format!("{}/{}", s.index, s.count)),
            jobs: options.jobs,
            swarm: options.swarm,
            seeds_run: self.seeds_run,
            failures_by_invariant: self.by_invariant,
            limits_hit: self.limits_hit,
            outside_fault_model: self.outside,
            undecided: self.undecided,
            undecided_seeds: self.undecided_seeds,
            never_reached: self.coverage.iter().filter(|(_, n)| **n == 0).map(|(p, _)| p.clone()).collect(),
            coverage: self.coverage,
            elapsed_s: elapsed.as_secs_f64(),
            seeds_per_s: self.seeds_run as f64 / elapsed.as_secs_f64().max(1e-9),
            failures_total: self.failures_total,
            failures: self.failures,
            out: (self.written > 0).then(|| self.out.map(|d| d.display().to_string())).flatten(),
            failure_files_written: self.written,
            failure_files: self.files,
        }
    }
}

pub fn write_failure(dir: &Path, failure: &FailureFile) -> Result<PathBuf, String> {
    let path = dir.join(failure.file_name());
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, failure.to_json()))
        .map_err(|err| format!("{}: cannot write a failure file: {err}", path.display()))?;
    Ok(path)
}

/// Checks before a campaign that failure files can be written into `dir`: it is a folder
/// (or can be made one) and writable. Creates nothing that is not already there: the
/// folder is made when the first failure is written.
pub fn check_out_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    let mut existing = dir;
    while !existing.as_os_str().is_empty() && !existing.exists() {
        existing = existing.parent().unwrap_or(Path::new(""));
    }
    let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
    if !existing.is_dir() {
        return Err(format!(
            "--out {shown}: {} is not a folder, so failure files cannot be written there",
            existing.display()
        ));
    }
    // The only sure test of "writable" is to write: a probe file, removed at once.
    let probe = existing.join(format!(".dsim-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").and_then(|()| std::fs::remove_file(&probe)).map_err(|err| {
        format!("--out {shown}: cannot write failure files into {}: {err}", existing.display())
    })
}

/// A seed whose run ended undecided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndecidedSeed {
    pub seed: u64,
    pub invariant: String,
}

/// How many undecided seeds a report lists (it counts them all).
pub const UNDECIDED_SHOWN_MAX: usize = 20;

/// What one seed of a campaign gave.
pub struct SeedResult {
    /// The failure it found, if any (a violation inside the fault model).
    pub failure: Option<FailureFile>,
    pub undecided: Option<UndecidedSeed>,
    pub limit_hit: bool,
    /// A violation outside the protocol's fault model (not a failure).
    pub outside: bool,
    reached: Vec<String>,
    declared: Vec<String>,
}

/// Runs one seed of a campaign, as `dsim fuzz` does (the playground runs its seeds one by
/// one through this); with `swarm` (the protocol's fault model and node count), draws its
/// knobs and checks the drawn scenario is one a failure file can hold.
pub fn run_seed(
    scenario: &Scenario,
    source: &str,
    seed: u64,
    swarm: Option<&(FaultModel, usize)>,
) -> Result<SeedResult, String> {
    let (scenario, knobs) = match swarm {
        Some((model, n_nodes)) => {
            let (s, k) = swarm_in(scenario, model, *n_nodes, seed);
            if let Err((path, message)) = s.validate() {
                return Err(format!(
                    "swarm testing drew an invalid scenario for seed {seed} ({}: {message}); adjust the file's \"fuzz\" settings",
                    crate::locate::render(&path)
                ));
            }
            (s, Some(k))
        }
        None => (scenario.clone(), None),
    };
    let run = runner::simulate(&scenario, seed, TraceMode::HashOnly, None).expect("no trace sink, no I/O");
    let outside = run.outside_fault_model.is_some();
    let failure = if outside { None } else { FailureFile::new(source, &scenario, seed, &run, knobs) };
    Ok(SeedResult {
        undecided: run
            .report
            .outcome
            .undecided()
            .map(|v| UndecidedSeed { seed, invariant: v.invariant.clone() }),
        limit_hit: matches!(run.report.outcome, Outcome::LimitReached(_)),
        outside: outside && run.report.outcome.violation().is_some(),
        reached: run.coverage.iter().filter(|(_, n)| **n > 0).map(|(p, _)| p.clone()).collect(),
        declared: run.coverage.keys().cloned().collect(),
        failure,
    })
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

impl FuzzReport {
    /// The exit code `dsim fuzz` gives: 1 if any failure was found, else 3 if any run
    /// ended undecided, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.failures_total > 0 {
            1
        } else if self.undecided > 0 {
            runner::EXIT_UNDECIDED
        } else {
            0
        }
    }

    /// Writes the kept failures' files into `dir` (for a campaign run without an `out`
    /// folder); returns their paths.
    pub fn write_failures(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        self.failures.iter().map(|failure| write_failure(dir, failure)).collect()
    }

    /// The readable summary `dsim fuzz` prints.
    pub fn text(&self) -> String {
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
        line(
            &mut out,
            "failures",
            if self.failures_total == 0 {
                "none".into()
            } else {
                format!("{} ({})", self.failures_total, by.join(", "))
            },
        );
        if self.undecided > 0 {
            let seeds: Vec<String> =
                self.undecided_seeds.iter().map(|u| format!("{} ({})", u.seed, u.invariant)).collect();
            let more = self.undecided as usize - self.undecided_seeds.len();
            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
            line(
                &mut out,
                "undecided",
                format!(
                    "{} run(s): a check gave up before deciding (not failures; no failure file): seeds {}{more}",
                    self.undecided,
                    seeds.join(", ")
                ),
            );
        }
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
            match self.failure_files.get(i) {
                Some(path) => out.push_str(&format!(
                    "  replay: {} replay {}\n",
                    crate::program(),
                    crate::shell_quote(path)
                )),
                None if failure.swarm.is_none() => out.push_str(&format!(
                    "  replay: {} run {} --seed {}\n",
                    crate::program(),
                    crate::shell_quote(&self.source),
                    failure.seed
                )),
                None => out.push_str("  replay: (no failure file was written for it)\n"),
            }
        }
        let shown = self.failures.len().min(FAILURES_SHOWN_MAX) as u64;
        if self.failures_total > shown {
            let files = match &self.out {
                Some(dir) => format!("{} failure files written in all, in {dir}", self.failure_files_written),
                None => "no failure files written".to_string(),
            };
            out.push_str(&format!("\n... and {} more failures ({files})\n", self.failures_total - shown));
            if self.failure_files_written < self.failures_total && self.out.is_some() {
                out.push_str(&format!(
                    "    (at most {FAILURES_WRITTEN_MAX} files are written; the other failures are only counted)\n"
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_worked_out_by_arithmetic_even_for_every_seed() {
        let every: SeedRange = "0..=18446744073709551615".parse().unwrap();
        assert_eq!(every.len(), 1u128 << 64);
        assert_eq!(every.to_string(), "0..=18446744073709551615");
        let all = seeds(every, None);
        assert_eq!(all.len(), 1u128 << 64);
        assert_eq!(all.get((1u128 << 64) - 1), u64::MAX);
        let shard = seeds(every, Some(Shard { index: 0, count: u64::MAX }));
        assert_eq!(shard.iter().collect::<Vec<_>>(), vec![0, u64::MAX]);
        let shard = seeds(every, Some(Shard { index: 5, count: u64::MAX }));
        assert_eq!(shard.iter().collect::<Vec<_>>(), vec![5]);
        let short: SeedRange = "10..13".parse().unwrap();
        assert!(seeds(short, Some(Shard { index: 3, count: 4 })).is_empty());
        assert_eq!(seeds(short, Some(Shard { index: 2, count: 4 })).iter().collect::<Vec<_>>(), vec![12]);
        assert_eq!("7..=7".parse::<SeedRange>().unwrap().len(), 1);
        assert!("0..18446744073709551616".parse::<SeedRange>().unwrap_err().contains("2^64 - 1"));
        // Every shard split, against the list it replaces.
        for count in 1..9u64 {
            let mut all: Vec<u64> =
                (0..count).flat_map(|index| seeds(short, Some(Shard { index, count }))).collect();
            all.sort();
            assert_eq!(all, vec![10, 11, 12], "{count} shards");
        }
    }

    #[test]
    fn names_in_file_names_are_made_safe() {
        assert_eq!(file_name_part("rpc/duplicate-execution"), "rpc-duplicate-execution");
        assert_eq!(file_name_part("../../etc/passwd"), "etc-passwd");
        assert_eq!(file_name_part("a\nb\u{7}c d"), "a-b-c-d");
        assert_eq!(file_name_part(".."), "scenario");
        assert_eq!(file_name_part(""), "scenario");
        assert_eq!(file_name_part(&"x".repeat(500)).len(), FILE_NAME_PART_MAX);
    }

    /// Everything swarm testing draws must load as a scenario (the path `dsim run` takes),
    /// whatever the fault window: a failure file holding it must replay.
    #[test]
    fn swarm_draws_are_valid_scenarios_for_any_fault_window() {
        let path = crate::scenarios_dir().join("rpc/duplicate-execution.json");
        let base = Scenario::load(&path).unwrap();
        let (model, n_nodes) = runner::fault_model(&base);
        let windows = [0.001, 0.002, 0.01, 0.5].into_iter().chain((1..50).map(f64::from));
        for window in windows {
            let mut scenario = base.clone();
            let spec = scenario.fuzz.get_or_insert_with(Default::default);
            spec.fault_window_ms = Millis(window);
            spec.partitions_max = 4;
            spec.crashes_max = 3;
            for seed in 0..(if window < 1.0 { 300 } else { 40 }) {
                let (drawn, _) = swarm_in(&scenario, &model, n_nodes, seed);
                let text = serde_json::to_string(&drawn).unwrap();
                if let Err(err) = Scenario::parse("drawn.json", &text) {
                    panic!("window {window} ms, seed {seed}: {err}");
                }
            }
        }
    }
}
