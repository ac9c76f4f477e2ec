//! `dsim bench`: the ping workload, timed, beside a bare binary-heap loop doing the same
//! work with no simulator around it.
//!
//! N nodes each keep K pings in flight to random other nodes; each ping is answered by a
//! pong and each pong starts a new ping; latency is uniform in [1, 10] ms; the run stops
//! after M deliveries. This module reads the wall clock: it times whole runs from outside,
//! and nothing it reads flows into a simulated run.

use protocols::ping::{self, PingParams};
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

/// The ping workload under the simulator.
pub fn ping(nodes: u32, in_flight: u32, deliveries: u64, trace: BenchTrace, seed: u64) -> Measurement {
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
    let (report, elapsed) = timed(|| sim.run());
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

/// A ping node count that is valid for the bench.
pub fn check_nodes(nodes: u32) -> Result<(), String> {
    if nodes < 2 {
        Err(format!("--nodes {nodes}: the ping workload needs at least 2 nodes"))
    } else {
        Ok(())
    }
}
