//! Client latency and throughput of a run, for any protocol that records a client history
//! (every key/value protocol does): worked out from the timed client events alone, so a
//! new protocol gets them without code of its own.
//!
//! - **Latency** of an operation: virtual time from its invoke to its return, for the
//!   operations that returned a result (`ok`; one given up on has no latency, it is
//!   counted apart). Reads (`get`, `read`) and updates (everything else) are kept apart;
//!   percentiles are nearest-rank: p of n sorted latencies is the one at rank
//!   `ceil(p / 100 * n)`.
//! - **Throughput**: operations completed per virtual second, over the span from the first
//!   invoke to the last return (so the idle time before a run's end, such as a liveness
//!   window, does not count).

use protocols::TimedClientEvent;
use serde::Serialize;
use sim_core::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// Latency percentiles of one kind of operation, in virtual milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `latencies`; `None` if there are none.
    pub fn of(mut latencies: Vec<SimDuration>) -> Option<Percentiles> {
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        let n = latencies.len();
        let rank = |p: usize| latencies[(p * n).div_ceil(100).max(1) - 1].as_millis_f64();
        Some(Percentiles {
            count: n,
            p50_ms: rank(50),
            p90_ms: rank(90),
            p99_ms: rank(99),
            max_ms: rank(100),
        })
    }
}

/// A run's client latency and throughput.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientLatency {
    /// Operations that returned a result.
    pub completed: usize,
    /// Operations whose client gave up (outcome unknown).
    pub gave_up: usize,
    /// From the first invoke to the last return, in virtual milliseconds.
    pub span_ms: f64,
    /// `completed` per virtual second of `span_ms` (0 if the span is empty).
    pub ops_per_s: f64,
    pub reads: Option<Percentiles>,
    pub updates: Option<Percentiles>,
}

impl ClientLatency {
    /// The figures of a timed client history (events in history order).
    pub fn of(events: &[TimedClientEvent]) -> ClientLatency {
        let mut invoked: BTreeMap<u64, SimTime> = BTreeMap::new();
        let (mut reads, mut updates) = (Vec::new(), Vec::new());
        let (mut first, mut last) = (None, None);
        let mut gave_up = 0;
        for timed in events {
            match timed.event.kind {
                "invoke" => {
                    invoked.insert(timed.op.0, timed.time);
                    first.get_or_insert(timed.time);
                }
                kind => {
                    let start = invoked.remove(&timed.op.0).expect("a return follows its invoke");
                    last = Some(timed.time);
                    if kind != "ok" {
                        gave_up += 1;
                        continue;
                    }
                    let latency = timed.time - start;
                    match timed.event.f {
                        "get" | "read" => reads.push(latency),
                        _ => updates.push(latency),
                    }
                }
            }
        }
        let completed = reads.len() + updates.len();
        let span_ms = match (first, last) {
            (Some(first), Some(last)) => (last - first).as_millis_f64(),
            _ => 0.0,
        };
        let ops_per_s = if span_ms > 0.0 { completed as f64 * 1000.0 / span_ms } else { 0.0 };
        ClientLatency {
            completed,
            gave_up,
            span_ms,
            ops_per_s,
            reads: Percentiles::of(reads),
            updates: Percentiles::of(updates),
        }
    }

    /// One kind's percentiles as text: `p50 4.000 p90 ... (n 12)`, or `none`.
    pub fn show(percentiles: &Option<Percentiles>) -> String {
        match percentiles {
            Some(p) => format!(
                "p50 {:.3}ms p90 {:.3}ms p99 {:.3}ms max {:.3}ms ({} operations)",
                p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, p.count
            ),
            None => "none".to_string(),
        }
    }
}

/// One table comparing runs: a row per run.
pub fn comparison_table(rows: &[(String, String, Option<&ClientLatency>)]) -> String {
    let mut out = format!(
        "{:<36} {:<10} {:>6} {:>9}  {:>31}  {:>31}\n",
        "scenario", "outcome", "ops", "ops/s", "read ms p50/p90/p99/max", "update ms p50/p90/p99/max"
    );
    let cell = |p: &Option<Percentiles>| match p {
        Some(p) => format!("{:.1}/{:.1}/{:.1}/{:.1}", p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms),
        None => "-".to_string(),
    };
    for (name, outcome, latency) in rows {
        match latency {
            Some(l) => out.push_str(&format!(
                "{name:<36} {outcome:<10} {:>6} {:>9.1}  {:>31}  {:>31}\n",
                l.completed,
                l.ops_per_s,
                cell(&l.reads),
                cell(&l.updates)
            )),
            None => out.push_str(&format!("{name:<36} {outcome:<10} (no client history)\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms = |v: u64| SimDuration::from_millis(v);
        let p = Percentiles::of((1..=100).map(ms).collect()).unwrap();
        assert_eq!((p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms), (50.0, 90.0, 99.0, 100.0));
        let one = Percentiles::of(vec![ms(7)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms, one.count), (7.0, 7.0, 7.0, 1));
        let p = Percentiles::of(vec![ms(4), ms(1), ms(3), ms(2)]).unwrap();
        assert_eq!((p.p50_ms, p.p90_ms, p.max_ms), (2.0, 4.0, 4.0));
        assert_eq!(Percentiles::of(Vec::new()), None);
    }
}
