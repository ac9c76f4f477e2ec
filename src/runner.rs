//! Runs a scenario: builds the protocol's nodes and invariants, runs the simulation with
//! the chosen seed, and judges the outcome against the scenario's expectation.

use crate::latency::ClientLatency;
use crate::scenario::{Expect, Scenario};
use protocols::registry::Instance;
use serde::Serialize;
use sim_core::explore::{Choice, FaultRules};
use sim_core::{Causality, Counters, FaultModel, Outcome, Phase, Report, SimConfig, TraceFormat, TraceMode};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Where the full trace goes, and in which form.
pub enum TraceSink<'a> {
    JsonLines(&'a mut dyn Write),
    Text(&'a mut dyn Write),
}

impl TraceSink<'_> {
    fn parts(&mut self) -> (TraceFormat, &mut dyn Write) {
        match self {
            TraceSink::JsonLines(out) => (TraceFormat::JsonLines, &mut **out),
            TraceSink::Text(out) => (TraceFormat::Text, &mut **out),
        }
    }
}

/// Exports built from the simulator's ground-truth causal record, for any protocol (asking
/// for any of them turns causality tracking on for the run), and the client history.
#[derive(Default)]
pub struct CausalExports<'a> {
    /// The client history as JSON Lines, the format `dsim check-history` reads (kv
    /// protocols; see [`records_client_history`]).
    pub history: Option<&'a mut dyn Write>,
    /// A ShiViz log.
    pub shiviz: Option<&'a mut dyn Write>,
    /// The causal graph in Graphviz DOT.
    pub dot: Option<&'a mut dyn Write>,
    /// A table of events with their Lamport and vector stamps.
    pub explain: Option<&'a mut dyn Write>,
}

impl CausalExports<'_> {
    fn wanted(&self) -> bool {
        self.shiviz.is_some() || self.dot.is_some() || self.explain.is_some()
    }

    fn write(&mut self, causality: &Causality) -> io::Result<()> {
        if let Some(out) = self.shiviz.as_mut() {
            out.write_all(causality.shiviz().as_bytes())?;
        }
        if let Some(out) = self.dot.as_mut() {
            out.write_all(causality.dot().as_bytes())?;
        }
        if let Some(out) = self.explain.as_mut() {
            out.write_all(explain_clocks(causality, EXPLAIN_ROWS_MAX).as_bytes())?;
        }
        Ok(())
    }
}

/// How many events `--explain-clocks` shows.
pub const EXPLAIN_ROWS_MAX: usize = 40;

/// A table of the first `rows_max` events with their ground-truth stamps.
pub fn explain_clocks(causality: &Causality, rows_max: usize) -> String {
    let mut out = format!(
        "{:<8} {:>11} {:>12} {:<34} {:>6}  vector\n",
        "event", "true time", "local time", "what", "lamport"
    );
    for event in causality.events().iter().take(rows_max) {
        // `n1:3 (receive m4 from n0)` without the name, which has its own column.
        let described = causality.describe(event.id);
        let what =
            described.split_once(" (").map_or(described.as_str(), |(_, rest)| rest).trim_end_matches(')');
        let vector: Vec<String> = causality.vector(event.id).iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "{:<8} {:>11} {:>12} {:<34} {:>6}  [{}]\n",
            event.name(),
            event.time.to_string(),
            event.local_time.to_string(),
            what,
            event.lamport.0,
            vector.join(",")
        ));
    }
    let more = causality.len().saturating_sub(rows_max);
    if more > 0 {
        out.push_str(&format!("... and {more} more events (all of them: --shiviz FILE or --dot FILE)\n"));
    }
    out.push_str(
        "Lamport: every event +1, a receive max(own, message) + 1. Vector: entry k counts node k's \
         events known; a -> b iff V(a) < V(b).\n",
    );
    out
}

/// The exit code of a judged run: 0 met, 1 not met, 3 undecided (2 is bad input, before
/// any run).
pub const EXIT_UNDECIDED: u8 = 3;

/// The result of one run, judged.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub file: String,
    pub seed: u64,
    /// The seed the scenario file names (its `expect` applies to that seed).
    pub scenario_seed: u64,
    pub steps: u64,
    pub virtual_time_ms: f64,
    pub messages: Counters,
    pub outcome: Outcome,
    /// Set when the fault timeline exceeds what the protocol promises to survive.
    pub outside_fault_model: Option<String>,
    pub trace_hash: String,
    pub expect: Expect,
    pub expectation_met: bool,
    /// One sentence on how the outcome relates to the expectation.
    pub verdict: String,
    /// The command that replays this run exactly.
    pub replay: String,
    /// How often each of the protocol's "sometimes" points was reached.
    pub coverage: BTreeMap<String, u64>,
    /// Client latency and throughput (protocols that record a client history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_latency: Option<ClientLatency>,
    /// What the protocol shows of the run beyond its outcome (the snapshots it took).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_report: Option<serde_json::Value>,
    /// The same, for people: a title and its text.
    #[serde(skip)]
    pub protocol_report_text: Option<(&'static str, String)>,
}

/// The scenario's protocol instance for `seed`: its simulation (with the scenario's
/// selection of invariants), fault model, rare paths and node names. The registry is the
/// one place that knows every protocol.
pub fn instance(scenario: &Scenario, seed: u64, trace_mode: TraceMode, causal_exports: bool) -> Instance {
    instance_with(scenario, scenario.run_config(seed, trace_mode), causal_exports)
}

/// The scenario's protocol instance, run with `config`.
pub fn instance_with(scenario: &Scenario, mut config: SimConfig, causal_exports: bool) -> Instance {
    config.causality |= causal_exports;
    config.causality_labels = causal_exports;
    let (name, params) = scenario.protocol_choice();
    let protocol = crate::registry().get(&name).expect("a checked scenario names a registered protocol");
    protocol.instance(&params, &scenario.workload, config, scenario.invariants.as_deref())
}

/// A finished run, before judging.
pub struct Run {
    pub report: Report,
    /// Why the fault timeline exceeds the protocol's fault model, if it does.
    pub outside_fault_model: Option<String>,
    /// How often each declared "sometimes" point was reached (zero for those never reached).
    pub coverage: BTreeMap<String, u64>,
    /// Client latency and throughput, when asked for and the protocol records a client
    /// history.
    pub client_latency: Option<ClientLatency>,
    /// What the protocol shows of the run beyond its outcome, if it shows anything.
    pub protocol_report: Option<protocols::RunReport>,
    /// A scheduled run's decisions, as taken: the schedule's (less any skipped, when
    /// followed leniently), then the default order's to the end.
    pub followed: Option<Vec<Choice>>,
}

struct Simulate<'a, 'w> {
    scenario: &'a Scenario,
    sink: Option<TraceSink<'w>>,
    exports: CausalExports<'w>,
    /// Work out client latency and throughput (`dsim run`; campaigns skip it).
    latency: bool,
    /// Skip a scheduled decision that is not possible where it comes (shrinking), instead
    /// of failing.
    lenient: bool,
}

impl Simulate<'_, '_> {
    fn run(mut self, seed: u64, trace_mode: TraceMode) -> io::Result<Run> {
        let config = self.scenario.run_config(seed, trace_mode);
        let Instance {
            mut simulation,
            fault_model: model,
            sometimes,
            client_history,
            client_timings,
            run_report,
            ..
        } = instance(self.scenario, seed, trace_mode, self.exports.wanted());
        let outside = model.admits(&config.faults).and_then(|()| model.admits_network(&config.network)).err();
        let outside_liveness = model.admits_liveness(&config.faults).err();
        let mut followed = None;
        let report = match (&self.scenario.schedule, &mut self.sink) {
            (Some(schedule), sink) => {
                let rules = FaultRules::from(&model);
                let taken = simulation
                    .follow(schedule.budgets, rules, &schedule.decisions, !self.lenient)
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, format!("schedule: {err}")))?;
                followed = Some(taken);
                if let Some(sink) = sink {
                    let (format, out) = sink.parts();
                    simulation.write_trace(format, out)?;
                }
                simulation.report()
            }
            // Streamed: the older records are written out between steps, so a long run's
            // trace never sits in memory whole. Runs without a sink keep the plain loop.
            (None, Some(sink)) => {
                let (format, out) = sink.parts();
                while !simulation.step() {
                    simulation.drain_trace(format, out)?;
                }
                simulation.write_trace(format, out)?;
                simulation.report()
            }
            (None, None) => simulation.run(),
        };
        // A node left down or a partition never healed breaks only what liveness assumes:
        // it puts a liveness failure outside the model, not a safety one.
        let liveness_failed = report.outcome.violation().is_some_and(|v| v.phase == Phase::Liveness);
        let outside_fault_model = outside.or(outside_liveness.filter(|_| liveness_failed));
        if let Some(causality) = simulation.causality() {
            self.exports.write(causality)?;
        }
        if let (Some(out), Some(client_history)) = (self.exports.history.as_mut(), client_history) {
            for event in client_history(simulation.as_ref()) {
                serde_json::to_writer(&mut **out, &event)?;
                out.write_all(b"\n")?;
            }
        }
        let mut coverage: BTreeMap<String, u64> = sometimes.iter().map(|p| (p.to_string(), 0)).collect();
        for (point, count) in simulation.coverage() {
            coverage.insert(point.to_string(), *count);
        }
        let client_latency = client_timings
            .filter(|_| self.latency)
            .map(|timings| ClientLatency::of(&timings(simulation.as_ref())));
        let protocol_report = run_report.map(|report| report(simulation.as_ref()));
        Ok(Run { report, outside_fault_model, coverage, client_latency, protocol_report, followed })
    }
}

/// Runs `scenario` with `seed`, unjudged.
pub fn simulate(
    scenario: &Scenario,
    seed: u64,
    trace_mode: TraceMode,
    sink: Option<TraceSink<'_>>,
) -> io::Result<Run> {
    let exports = CausalExports::default();
    Simulate { scenario, sink, exports, latency: false, lenient: false }.run(seed, trace_mode)
}

/// Runs a scheduled `scenario` by its decisions, skipping those not possible where they
/// come (shrinking tries schedules with decisions taken out); unjudged.
pub fn simulate_leniently(scenario: &Scenario, seed: u64) -> Run {
    let exports = CausalExports::default();
    Simulate { scenario, sink: None, exports, latency: false, lenient: true }
        .run(seed, TraceMode::HashOnly)
        .expect("no trace sink, and a lenient schedule does not fail")
}

/// Runs `scenario` (read from `file`) with `seed` (default: the file's), and judges it.
pub fn run(
    scenario: &Scenario,
    file: &str,
    seed: Option<u64>,
    trace_mode: TraceMode,
    sink: Option<TraceSink<'_>>,
) -> io::Result<Summary> {
    run_with_exports(scenario, file, seed, trace_mode, sink, CausalExports::default())
}

/// Runs like [`run`], and writes the causal exports asked for.
pub fn run_with_exports<'w>(
    scenario: &Scenario,
    file: &str,
    seed: Option<u64>,
    trace_mode: TraceMode,
    sink: Option<TraceSink<'w>>,
    exports: CausalExports<'w>,
) -> io::Result<Summary> {
    let seed = seed.unwrap_or(scenario.seed);
    let run = Simulate { scenario, sink, exports, latency: true, lenient: false }.run(seed, trace_mode)?;
    Ok(judge(scenario, file, seed, run))
}

/// The trace hash after every step of a run (for determinism checks).
pub fn step_hashes(scenario: &Scenario, seed: u64, trace_mode: TraceMode) -> Vec<u64> {
    let mut simulation = instance(scenario, seed, trace_mode, false).simulation;
    let mut hashes = Vec::new();
    while !simulation.step() {
        hashes.push(simulation.trace_hash());
    }
    hashes.push(simulation.trace_hash());
    hashes
}

/// Whether the scenario's protocol records a client history `dsim run --history` can write.
pub fn records_client_history(scenario: &Scenario) -> bool {
    instance(scenario, scenario.seed, TraceMode::HashOnly, false).client_history.is_some()
}

/// The protocol's fault model, and its node count.
pub fn fault_model(scenario: &Scenario) -> (FaultModel, usize) {
    let instance = instance(scenario, scenario.seed, TraceMode::HashOnly, false);
    (instance.fault_model, instance.node_names.len())
}

fn judge(scenario: &Scenario, file: &str, seed: u64, run: Run) -> Summary {
    let Run { report, outside_fault_model: outside, coverage, client_latency, protocol_report, .. } = run;
    let own_seed = seed == scenario.seed;
    let (met, verdict) = match (&scenario.expect, &report.outcome) {
        (_, Outcome::Undecided(v)) => (
            false,
            format!(
                "undecided: {} could not decide within its budget, so this run neither passed nor failed",
                v.invariant
            ),
        ),
        (Expect::Violation(name), Outcome::Violation(v)) if outside.is_some() && *name == v.invariant => (
            true,
            format!(
                "{name} was violated, as the scenario expects; the faults are outside the protocol's \
                 fault model, so it shows what the model rules out, not a protocol bug"
            ),
        ),
        (_, Outcome::Violation(v)) if outside.is_some() => (
            false,
            format!(
                "{} was violated, but the faults are outside the protocol's fault model, so this is not a protocol failure",
                v.invariant
            ),
        ),
        (Expect::Pass, Outcome::Pass) => (true, "passed, as expected".to_string()),
        (Expect::Pass, Outcome::Violation(v)) => (false, format!("expected a pass, but {} was violated", v.invariant)),
        (_, Outcome::LimitReached(limit)) => (false, format!("the run hit a limit before it ended ({limit:?})")),
        (Expect::Violation(name), Outcome::Violation(v)) if *name == v.invariant => {
            (true, format!("{name} was violated, as the scenario expects: the anomaly shows on this seed"))
        }
        (Expect::Violation(name), Outcome::Violation(v)) => {
            (false, format!("expected {name} to be violated, but {} was violated instead", v.invariant))
        }
        (Expect::Violation(name), Outcome::Pass) if own_seed => {
            (false, format!("expected {name} to be violated, but the run passed"))
        }
        (Expect::Violation(name), Outcome::Pass) => (
            true,
            format!(
                "passed: the anomaly ({name}) did not show on seed {seed}; the file expects it on its own seed {}",
                scenario.seed
            ),
        ),
    };
    let seed_flag = if own_seed { String::new() } else { format!(" --seed {seed}") };
    Summary {
        scenario: scenario.name.clone(),
        file: file.to_string(),
        seed,
        scenario_seed: scenario.seed,
        steps: report.steps,
        virtual_time_ms: report.time.as_millis_f64(),
        messages: report.totals,
        outcome: report.outcome,
        outside_fault_model: outside,
        trace_hash: report.trace_hash,
        expect: scenario.expect.clone(),
        expectation_met: met,
        verdict,
        replay: format!("{} run {}{seed_flag}", crate::program(), crate::shell_quote(file)),
        coverage,
        client_latency,
        protocol_report: protocol_report.as_ref().map(|r| r.json.clone()),
        protocol_report_text: protocol_report.map(|r| (r.title, r.text)),
    }
}

impl Summary {
    /// The exit code `dsim run` gives this run: 0 if its expectation was met, 3 if a
    /// check could not decide, else 1.
    pub fn exit_code(&self) -> u8 {
        match &self.outcome {
            Outcome::Undecided(_) => EXIT_UNDECIDED,
            _ if self.expectation_met => 0,
            _ => 1,
        }
    }

    /// The readable form `dsim run` prints.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let m = &self.messages;
        let outcome = match &self.outcome {
            Outcome::Pass => "pass".to_string(),
            Outcome::Violation(v) => {
                format!("VIOLATION of {} ({:?} phase) at step {}, t={}", v.invariant, v.phase, v.step, v.time)
            }
            Outcome::LimitReached(limit) => format!("limit reached: {limit:?}"),
            Outcome::Undecided(v) => {
                format!(
                    "UNDECIDED: {} gave up ({:?} phase) at step {}, t={}",
                    v.invariant, v.phase, v.step, v.time
                )
            }
        };
        let line = |out: &mut String, key: &str, value: String| out.push_str(&format!("{key:<14}{value}\n"));
        line(&mut out, "scenario", format!("{} ({})", self.scenario, self.file));
        line(&mut out, "seed", self.seed.to_string());
        line(&mut out, "steps", self.steps.to_string());
        line(&mut out, "virtual time", format!("{:.3}ms", self.virtual_time_ms));
        line(
            &mut out,
            "messages",
            format!(
                "sent {} delivered {} dropped {} duplicated {}",
                m.sent, m.delivered, m.dropped, m.duplicated
            ),
        );
        line(&mut out, "bytes", format!("sent {} delivered {}", m.bytes_sent, m.bytes_delivered));
        line(&mut out, "outcome", outcome);
        if let Some(latency) = &self.client_latency {
            line(
                &mut out,
                "throughput",
                format!(
                    "{:.1} operations per virtual second ({} completed in {:.3}ms, first call to last return{})",
                    latency.ops_per_s,
                    latency.completed,
                    latency.span_ms,
                    match latency.gave_up {
                        0 => String::new(),
                        n => format!("; {n} given up"),
                    }
                ),
            );
            line(&mut out, "reads", format!("latency {}", ClientLatency::show(&latency.reads)));
            line(&mut out, "updates", format!("latency {}", ClientLatency::show(&latency.updates)));
        }
        if let Some(reason) = &self.outside_fault_model {
            line(&mut out, "fault model", format!("OUTSIDE the model: {reason}"));
        }
        if let Outcome::Violation(v) | Outcome::Undecided(v) = &self.outcome {
            out.push_str(&format!("\n{}\n", v.message));
            if !v.faults.is_empty() {
                out.push_str("\nthe faults that fired before it:\n");
                for fault in &v.faults {
                    out.push_str(&format!("  {fault}\n"));
                }
            }
            if !v.recent.is_empty() {
                out.push_str(&format!("\nthe last {} events before it:\n", v.recent.len()));
                for event in &v.recent {
                    out.push_str(&format!("  {event}\n"));
                }
            }
            out.push('\n');
        }
        if let Some((title, text)) = &self.protocol_report_text {
            out.push_str(&format!("\n{title}:\n{text}\n"));
        }
        line(&mut out, "trace hash", self.trace_hash.clone());
        let expect = match &self.expect {
            Expect::Pass => "pass".to_string(),
            Expect::Violation(name) => format!("violation of {name} (on seed {})", self.scenario_seed),
        };
        line(&mut out, "expect", expect);
        line(
            &mut out,
            "verdict",
            format!("{} ({})", if self.expectation_met { "met" } else { "NOT met" }, self.verdict),
        );
        line(&mut out, "replay", self.replay.clone());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole trace kept in memory, then written: what `--trace` wrote before it
    /// streamed.
    fn kept_trace(scenario: &Scenario) -> (Vec<u8>, String) {
        let mut simulation = instance(scenario, scenario.seed, TraceMode::Full, false).simulation;
        let report = simulation.run();
        let mut out = Vec::new();
        simulation.write_trace(TraceFormat::JsonLines, &mut out).unwrap();
        (out, report.trace_hash)
    }

    #[test]
    fn a_streamed_trace_is_the_whole_trace_with_the_same_hash() {
        let path = crate::scenarios_dir().join("ping/steady.json");
        let mut scenario = Scenario::load(&path).unwrap();
        // Long enough for several chunks of the full trace to be streamed out mid-run.
        scenario.limits.end_at_ms = Some(crate::scenario::Millis(2_000.0));
        let (kept, kept_hash) = kept_trace(&scenario);
        let mut streamed = Vec::new();
        let run =
            simulate(&scenario, scenario.seed, TraceMode::Full, Some(TraceSink::JsonLines(&mut streamed)))
                .unwrap();
        assert!(kept.iter().filter(|b| **b == b'\n').count() > 3 * 16 * 1024, "a long trace");
        assert_eq!(run.report.trace_hash, kept_hash);
        assert!(streamed == kept, "the streamed trace differs from the kept one");
    }
}
