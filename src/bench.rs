//! `dsim bench`: the ping workload, timed, beside a bare binary-heap loop doing the same
//! work with no simulator around it.
//!
//! N nodes each keep K pings in flight to random other nodes; each ping is answered by a
//! pong and each pong starts a new ping; latency is uniform in [1, 10] ms; the run stops
//! after M deliveries. This module reads the wall clock: it times whole runs from outside,
//! and nothing it reads flows into a simulated run.

use crate::explore::ExploreReport;
use crate::runner;
use crate::scenario::Scenario;
use protocols::kv::{KeyModel, KvOp, KvResult, KvStore};
use protocols::ping::{self, PingParams};
use sim_core::checkers::linearizability::{self, Operation};
use sim_core::explore::{Budgets, Strategy};
use sim_core::queue::{BinaryQueue, WheelQueue};
use sim_core::{
    Latency, LinkConfig, NetworkConfig, SimConfig, SimRng, SimTime, Simulation, Stream, TraceMode,
};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// The trace level a benchmark keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchTrace {
    /// Only the trace hash.
    Hash,
    /// Every record, in memory.
    Full,
}

/// One benchmark result.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub deliveries: u64,
    pub elapsed: Duration,
    pub trace_hash: String,
}

impl Measurement {
    pub fn per_second(&self) -> f64 {
        self.deliveries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[allow(clippy::disallowed_methods)] // times the whole run from outside; see the module doc
fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let start = std::time::Instant::now();
    let out = work();
    (out, start.elapsed())
}

/// The ping workload under the simulator (with its `pings-conserved` invariant checked after
/// every step if `invariants`).
pub fn ping(
    nodes: u32,
    in_flight: u32,
    deliveries: u64,
    trace: BenchTrace,
    invariants: bool,
    seed: u64,
) -> Measurement {
    let mut config =
        SimConfig::new(seed, NetworkConfig::uniform(LinkConfig::reliable(Latency::uniform_ms(1, 10))));
    config.trace_mode = match trace {
        BenchTrace::Hash => TraceMode::HashOnly,
        BenchTrace::Full => TraceMode::Full,
    };
    // One step per start event, then one per delivery.
    config.max_steps = u64::from(nodes) + deliveries;
    config.max_time = SimTime::MAX;
    let setup = ping::setup(&PingParams { nodes, in_flight });
    let mut sim = Simulation::new(config, setup.n_nodes, setup.build);
    if invariants {
        for invariant in setup.invariants {
            sim.add_invariant(invariant);
        }
    }
    let (report, elapsed) = timed(|| sim.run());
    assert!(
        report.outcome.violation().is_none(),
        "the benchmark's own invariant failed: {:?}",
        report.outcome
    );
    Measurement { deliveries: report.totals.delivered, elapsed, trace_hash: report.trace_hash }
}

/// A bare event: (time, seq) ordering, then from, to, and whether it is a pong.
type BareEvent = (Reverse<(u64, u64)>, u32, u32, bool);

/// The same workload as a bare binary-heap loop: no nodes, no network model, no trace.
pub fn bare(nodes: u32, in_flight: u32, deliveries: u64, seed: u64) -> Measurement {
    let (delivered, elapsed) = timed(|| {
        let mut rng = SimRng::new(seed, Stream::Network);
        let mut queue: BinaryHeap<BareEvent> = BinaryHeap::new();
        let mut seq = 0u64;
        let pick = |rng: &mut SimRng, me: u32| {
            let other = rng.below(u64::from(nodes) - 1) as u32;
            if other >= me {
                other + 1
            } else {
                other
            }
        };
        for node in 0..nodes {
            for _ in 0..in_flight {
                let to = pick(&mut rng, node);
                let at = rng.between(1_000, 10_000);
                queue.push((Reverse((at, seq)), node, to, false));
                seq += 1;
            }
        }
        let mut delivered = 0;
        while delivered < deliveries {
            let Some((Reverse((now, _)), from, to, is_pong)) = queue.pop() else { break };
            delivered += 1;
            let (next_to, pong) = if is_pong { (pick(&mut rng, to), false) } else { (from, true) };
            let at = now + rng.between(1_000, 10_000);
            queue.push((Reverse((at, seq)), to, next_to, pong));
            seq += 1;
        }
        delivered
    });
    Measurement { deliveries: delivered, elapsed, trace_hash: String::from("-") }
}

/// The event queues alone, in the classic "hold" model: `in_flight` events queued, then
/// `operations` times: pop the earliest and push one back at its time plus a uniform delay
/// in [1, 10] ms, as the ping workload does. Returns (timing wheel, binary heap)
/// operations per second; both see the same times.
pub fn queue_hold(in_flight: u32, operations: u64, seed: u64) -> (f64, f64) {
    fn hold<Q>(
        queue: &mut Q,
        push: impl Fn(&mut Q, u64, u64),
        pop: impl Fn(&mut Q) -> Option<(u64, u64)>,
        in_flight: u32,
        operations: u64,
        seed: u64,
    ) -> f64 {
        let mut rng = SimRng::new(seed, Stream::Workload);
        for i in 0..u64::from(in_flight) {
            push(queue, rng.between(1_000, 10_000), i);
        }
        let ((), elapsed) = timed(|| {
            for i in 0..operations {
                let (now, _) = pop(queue).expect("the hold model keeps the queue full");
                push(queue, now + rng.between(1_000, 10_000), i);
            }
        });
        operations as f64 / elapsed.as_secs_f64().max(1e-9)
    }
    let wheel =
        hold(&mut WheelQueue::default(), |q, t, v| q.push(t, v), |q| q.pop(), in_flight, operations, seed);
    let heap =
        hold(&mut BinaryQueue::default(), |q, t, v| q.push(t, v), |q| q.pop(), in_flight, operations, seed);
    (wheel, heap)
}

/// Steps per second of a bundled scenario, with its invariants and without them.
#[derive(Clone, Debug)]
pub struct ScenarioThroughput {
    pub steps: u64,
    pub with_invariants: Duration,
    pub without_invariants: Duration,
}

impl ScenarioThroughput {
    pub fn steps_per_s(&self) -> f64 {
        self.steps as f64 / self.with_invariants.as_secs_f64().max(1e-9)
    }

    /// How much the invariants slow the run down (1.0: not at all).
    pub fn invariant_cost(&self) -> f64 {
        self.with_invariants.as_secs_f64() / self.without_invariants.as_secs_f64().max(1e-9)
    }
}

/// Runs `scenario` repeatedly, with its invariants and with none, alternating (at least
/// `min_runs` pairs and 0.4 s), so that both see the same state of the machine and the
/// allocator; the best time of each.
pub fn scenario_throughput(scenario: &Scenario, min_runs: u32) -> ScenarioThroughput {
    let mut bare = scenario.clone();
    bare.invariants = Some(Vec::new());
    let run = |s: &Scenario| {
        timed(|| runner::simulate(s, s.seed, TraceMode::HashOnly, None).expect("no I/O").report.steps)
    };
    let (mut with_invariants, mut without_invariants) = (Duration::MAX, Duration::MAX);
    let (mut total, mut runs, mut steps) = (Duration::ZERO, 0, 0);
    while runs < min_runs || total < Duration::from_millis(400) {
        let (with_steps, with) = run(scenario);
        let (_, without) = run(&bare);
        steps = with_steps;
        with_invariants = with_invariants.min(with);
        without_invariants = without_invariants.min(without);
        total += with + without;
        runs += 1;
    }
    ScenarioThroughput { steps, with_invariants, without_invariants }
}

/// One exhaustive search of a bundled explore scenario (`scenarios/explore/NAME`), as
/// `dsim explore` runs it: its report (states, transitions, time, memory a state).
pub fn explore_rate(name: &str, budgets: Budgets, strategy: Strategy) -> Result<ExploreReport, String> {
    let path = crate::scenarios_dir().join("explore").join(name);
    let scenario = Scenario::load(&path).map_err(|e| e.to_string())?;
    let options = crate::explore::Options {
        budgets,
        strategy,
        max_depth: None,
        max_states: None,
        time_limit: None,
        max_memory_bytes: crate::explore::MEMORY_MB_DEFAULT << 20,
        no_visited_set: false,
        progress: false,
    };
    let shown = path.display().to_string();
    crate::explore::explore(&shown, &scenario, &options, &std::env::temp_dir()).map(|(report, _)| report)
}

/// A generated key/value history: `clients` clients, each running operations one after
/// another on `keys` keys; each operation takes effect at a random moment between its call
/// and its return, so the history is linearizable by construction. Returns the operations
/// per key.
pub fn kv_history(n_ops: usize, clients: u64, keys: u64, seed: u64) -> Vec<Vec<Operation<KvOp, KvResult>>> {
    let mut rng = SimRng::new(seed, Stream::Workload);
    // (linearization point, client, call, return, op)
    let mut planned = Vec::with_capacity(n_ops);
    let mut clock = vec![0u64; clients as usize];
    for i in 0..n_ops {
        let client = i as u64 % clients;
        let call = clock[client as usize] + rng.below(10);
        let point = call + 1 + rng.below(20);
        let ret = point + 1 + rng.below(20);
        clock[client as usize] = ret;
        let key = format!("k{}", rng.below(keys));
        let value = format!("{client}.{i} ");
        let op = match rng.below(3) {
            0 => KvOp::Put { key, value },
            1 => KvOp::Append { key, value },
            _ => KvOp::Get { key },
        };
        planned.push((point, client, call, ret, op));
    }
    planned.sort_by_key(|p| p.0);
    let mut store = KvStore::default();
    let mut by_key: std::collections::BTreeMap<String, Vec<Operation<KvOp, KvResult>>> = Default::default();
    for (_, client, call, ret, op) in planned {
        let output = store.apply(&op);
        by_key.entry(op.key().to_string()).or_default().push(Operation {
            client,
            call,
            ret: Some(ret),
            input: op,
            output: Some(output),
        });
    }
    by_key.into_values().collect()
}

/// Checks a generated history of `n_ops` operations (10 clients, 10 keys); returns the time
/// and the verdict (always linearizable, by construction).
pub fn checker(n_ops: usize, seed: u64) -> (Duration, bool) {
    let history: Vec<Vec<_>> = kv_history(n_ops, 10, 10, seed)
        .iter()
        .map(|ops| ops.iter().map(KeyModel::operation).collect())
        .collect();
    let (ok, elapsed) = timed(|| history.iter().all(|ops| linearizability::check(&KeyModel, ops)));
    (elapsed, ok)
}

/// A generated kv history (see [`kv_history`]) as the JSON Lines `dsim check-history`
/// reads: events in time order, a return before a call at the same moment.
pub fn kv_history_lines(n_ops: usize, clients: u64, keys: u64, seed: u64) -> String {
    let mut events: Vec<(u64, bool, serde_json::Value)> = Vec::with_capacity(2 * n_ops);
    for op in kv_history(n_ops, clients, keys, seed).into_iter().flatten() {
        let (f, key, value) = match &op.input {
            KvOp::Put { key, value } => ("put", key, Some(value.clone())),
            KvOp::Append { key, value } => ("append", key, Some(value.clone())),
            KvOp::Get { key } => ("get", key, None),
        };
        let returned = match op.output {
            Some(KvResult::Value(read)) => Some(read),
            _ => value.clone(),
        };
        let event = |kind: &str, value: Option<String>| serde_json::json!({"process": op.client, "type": kind, "f": f, "key": key, "value": value});
        events.push((op.call, true, event("invoke", value.clone())));
        events.push((op.ret.expect("generated operations return"), false, event("ok", returned)));
    }
    events.sort_by_key(|(time, is_call, _)| (*time, *is_call));
    let mut out = String::with_capacity(events.len() * 80);
    for (_, _, event) in events {
        out.push_str(&event.to_string());
        out.push('\n');
    }
    out
}

/// A Jepsen-shaped history of one compare-and-set register starting at 0, as JSON Lines
/// for `check-history --model cas-register --initial 0`: `processes` clients run reads,
/// writes and cas (values 0 to 4) back to back, each operation taking effect at a random
/// moment inside its interval, so the history is linearizable by construction. A fraction
/// `crash_rate` of operations crash: they complete `info` (half of them took effect, half
/// did not) and their client comes back as a new process, as Jepsen numbers them
/// (process + `processes`). A cas whose comparison failed completes `fail`.
pub fn register_history_lines(n_ops: usize, processes: u64, crash_rate: f64, seed: u64) -> String {
    let mut rng = SimRng::new(seed, Stream::Workload);
    // (moment it takes effect, index, process, call, return, f, value, crashed, takes effect)
    let mut planned = Vec::with_capacity(n_ops);
    let mut clock = vec![0u64; processes as usize];
    let mut process: Vec<u64> = (0..processes).collect();
    for i in 0..n_ops {
        let slot = i % processes as usize;
        let call = clock[slot] + rng.below(10);
        let point = call + 1 + rng.below(20);
        let ret = point + 1 + rng.below(20);
        clock[slot] = ret;
        let (f, value) = match rng.below(3) {
            0 => ("read", serde_json::Value::Null),
            1 => ("write", serde_json::json!(rng.below(5))),
            _ => ("cas", serde_json::json!([rng.below(5), rng.below(5)])),
        };
        let crashed = rng.chance(crash_rate);
        let takes_effect = !crashed || rng.chance(0.5);
        planned.push((point, i, process[slot], call, ret, f, value, crashed, takes_effect));
        if crashed {
            process[slot] += processes;
        }
    }
    planned.sort_by_key(|p| (p.0, p.1));
    let mut register = serde_json::json!(0);
    let mut events: Vec<(u64, bool, serde_json::Value)> = Vec::with_capacity(2 * n_ops);
    for (_, _, process, call, ret, f, value, crashed, takes_effect) in planned {
        let mut kind = "ok";
        let mut returned = value.clone();
        if takes_effect {
            match f {
                "read" => returned = register.clone(),
                "write" => register = value.clone(),
                _ if register == value[0] => register = value[1].clone(),
                _ => kind = "fail",
            }
        }
        if crashed {
            kind = "info";
            returned = value.clone();
        }
        let event = |kind: &str, value: &serde_json::Value| serde_json::json!({"process": process, "type": kind, "f": f, "value": value});
        events.push((call, true, event("invoke", &value)));
        events.push((ret, false, event(kind, &returned)));
    }
    events.sort_by_key(|(time, is_call, _)| (*time, *is_call));
    let mut out = String::with_capacity(events.len() * 60);
    for (_, _, event) in events {
        out.push_str(&event.to_string());
        out.push('\n');
    }
    out
}

/// `dsim check-history --model kv` on a generated history of `n_ops` operations (10
/// clients, 10 keys), in process (reading the text included, starting the process not):
/// the time and the exit code (0, linearizable by construction).
pub fn check_history(n_ops: usize, seed: u64) -> (Duration, u8) {
    let text = kv_history_lines(n_ops, 10, 10, seed);
    check_history_text(&text, crate::check_history::ModelName::Kv, None)
}

/// `check-history --model cas-register --initial 0` on a generated register history of
/// `n_ops` operations, 10 processes, 5% of operations crashing (see
/// [`register_history_lines`]): the time and the exit code (0 by construction).
pub fn check_crashing_register(n_ops: usize, seed: u64) -> (Duration, u8) {
    let text = register_history_lines(n_ops, 10, 0.05, seed);
    check_history_text(&text, crate::check_history::ModelName::CasRegister, Some("0"))
}

fn check_history_text(
    text: &str,
    model: crate::check_history::ModelName,
    initial: Option<&str>,
) -> (Duration, u8) {
    let options = crate::check_history::Options {
        model,
        initial: initial.map(str::to_string),
        input: None,
        budget: crate::check_history::BUDGET_DEFAULT,
        budget_is_default: true,
        timeout_s: crate::check_history::TIMEOUT_S_DEFAULT,
        timeout_is_default: true,
        json: false,
    };
    let (verdict, elapsed) = timed(|| crate::check_history::check_text(text, "generated", &options));
    (elapsed, verdict.expect("a generated history reads").exit)
}

/// The bench's documented maximums: a ping run this size fits in this machine's memory
/// (each ping in flight is a queued event of about 50 bytes) and its step count cannot
/// overflow.
pub const NODES_MAX: u32 = 100_000;
pub const IN_FLIGHT_MAX: u32 = 10_000;
/// Pings in flight in all (nodes times pings each): about 500 MB of queued events.
pub const PINGS_MAX: u64 = 10_000_000;
pub const DELIVERIES_MAX: u64 = 10_000_000_000;
pub const REPEAT_MAX: u32 = 100;

/// A ping node count that is valid for the bench.
pub fn check_nodes(nodes: u32) -> Result<(), String> {
    if !(2..=NODES_MAX).contains(&nodes) {
        Err(format!("--nodes {nodes}: the ping workload needs from 2 to {NODES_MAX} nodes"))
    } else {
        Ok(())
    }
}

/// Checks a ping bench's sizes against the maximums, before anything is allocated.
pub fn check_ping(nodes: u32, in_flight: u32, deliveries: u64) -> Result<(), String> {
    check_nodes(nodes)?;
    if !(1..=IN_FLIGHT_MAX).contains(&in_flight) {
        return Err(format!(
            "--in-flight {in_flight}: each node keeps from 1 to {IN_FLIGHT_MAX} pings in flight"
        ));
    }
    if !(1..=DELIVERIES_MAX).contains(&deliveries) {
        return Err(format!(
            "--deliveries {deliveries}: a run measures from 1 to {DELIVERIES_MAX} deliveries"
        ));
    }
    let pings = u64::from(nodes) * u64::from(in_flight);
    if pings > PINGS_MAX {
        return Err(format!(
            "--nodes {nodes} with --in-flight {in_flight}: {pings} pings in flight, more than the {PINGS_MAX} that fit in memory"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_sizes_are_checked_against_their_maximums() {
        assert!(check_ping(10, 100, 1_000).is_ok());
        assert!(check_ping(1, 100, 1_000).unwrap_err().contains("from 2 to"));
        assert!(check_ping(10, 0, 1_000).unwrap_err().contains("--in-flight 0"));
        assert!(check_ping(10, 100, 0).unwrap_err().contains("--deliveries 0"));
        assert!(check_ping(10, 100, u64::MAX - 5).unwrap_err().contains("--deliveries"));
        assert!(check_ping(100_000, 10_000, 1).unwrap_err().contains("fit in memory"));
    }
}
