//! The protocols dsim simulates. Each module knows sim-core, never the CLI or files:
//! parameter types derive `Deserialize` so that dsim can read them from scenario files,
//! but reading and reporting errors is dsim's job.
//!
//! - [`ping`]: a load generator (N nodes keeping K pings in flight), for benchmarks.
//! - [`rpc`]: RPC with retries (best effort) over a key/value server, and the
//!   duplicate-execution anomaly it causes.
//! - [`at_most_once`]: at-most-once RPC (request ids, a reply cache with discard, pending
//!   marks, a dedup table in memory or durable storage): a reusable client stub and
//!   server-side dedup layer, over the same key/value server.
//! - [`clocks`]: a workload whose processes stamp events with physical, Lamport and vector
//!   clocks, checked against the simulator's ground-truth happens-before; the reusable
//!   clocks themselves are in [`logical_clocks`].
//! - [`primary_backup`]: primary-backup replication over the same key/value server: the
//!   commit point, heartbeat failure detection, failover through a test-and-set arbiter.
//! - [`snapshot`]: Chandy-Lamport snapshots, a reusable layer over any application
//!   (`snapshot-bank`, `snapshot-ping`), checked against the ground-truth happens-before.
//! - [`chain`]: chain replication with a configuration master (head, middle and tail
//!   failover with Sent lists, extension with spares), built on the at-most-once stub and
//!   dedup layer and the key/value pieces.
//! - [`kv`]: the key/value pieces request/response protocols share: operations, the store,
//!   the workload, and the invariants `executed-at-most-once` and `kv-linearizable`.

pub mod at_most_once;
pub mod chain;
pub mod clocks;
pub mod kv;
pub mod logical_clocks;
pub mod ping;
pub mod primary_backup;
pub mod registry;
pub mod rpc;
pub mod snapshot;

use serde::Serialize;
use sim_core::{Builder, Entry, EntryKind, FaultModel, Invariant, Node, OpId, SimTime};

/// Everything the runner needs to simulate one protocol instance.
pub struct Setup<N: Node> {
    pub n_nodes: usize,
    /// Builds node `id` at the start, and again at each restart from its durable storage.
    pub build: Builder<N>,
    pub invariants: Vec<Box<dyn Invariant<N>>>,
    pub fault_model: FaultModel,
    /// A human name per node, for `dsim list` and reports ("server", "client 1").
    pub node_names: Vec<String>,
    /// The rare paths this protocol marks with `ctx.sometimes(..)`; fuzz campaigns list
    /// the ones never reached.
    pub sometimes: &'static [&'static str],
    /// The run's client history as Jepsen-shaped events (`dsim run --history`), for the
    /// protocols whose clients record operations a model can check (the kv ones).
    pub client_history: Option<ClientHistory<N::Op>>,
}

/// The longest a message may take among nodes that take a silence of `detect_ms` for a
/// crash while peers send every `heartbeat_ms`: half the slack, so that a heartbeat's gap
/// plus its delay, or a request and its answer, stay within `detect_ms`. What
/// primary-backup and chain assume of the links among their servers (`delivery_max`).
pub fn timely_link_ms(heartbeat_ms: u64, detect_ms: u64) -> u64 {
    (detect_ms - heartbeat_ms) / 2
}

/// What a protocol shows of a finished run beyond the outcome (the snapshots it took):
/// `dsim run` prints `text` under `title`, and `--format json` includes `json` under
/// `protocol_report`.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    pub title: &'static str,
    pub text: String,
    pub json: serde_json::Value,
}

/// Turns a run's history entries into client events, in history order.
pub type ClientHistory<O> = fn(&[Entry<O>]) -> Vec<ClientEvent>;

/// One event of a client history in the shape `dsim check-history` and Jepsen-style tools
/// read: `{"process": 1, "type": "invoke", "f": "put", "key": "k0", "value": "x"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientEvent {
    pub process: u64,
    /// `invoke`, `ok`, `fail` or `info` (outcome unknown).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub f: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: Option<String>,
}

/// A client event with its operation and virtual time: what latency and throughput
/// figures are computed from, for any protocol that records a client history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedClientEvent {
    /// The history operation the event starts or ends.
    pub op: OpId,
    pub time: SimTime,
    pub event: ClientEvent,
}

/// The client history of `entries` (as `events` makes it), each event with its operation
/// and time. A client history has one event per invoke and per return entry, in order
/// (ground-truth notes make none), which is how the two are paired.
pub fn timed_client_history<O>(events: ClientHistory<O>, entries: &[Entry<O>]) -> Vec<TimedClientEvent> {
    let calls = entries.iter().filter_map(|entry| match entry.kind {
        EntryKind::Invoke { id } | EntryKind::Return { id } => Some((id, entry.time)),
        EntryKind::Note => None,
    });
    let events = events(entries);
    let calls: Vec<(OpId, SimTime)> = calls.collect();
    assert_eq!(events.len(), calls.len(), "a client history has one event per invoke and per return");
    events.into_iter().zip(calls).map(|(event, (op, time))| TimedClientEvent { op, time, event }).collect()
}

/// One documented protocol parameter, for `dsim list`.
#[derive(Clone, Copy, Debug)]
pub struct ParamDoc {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}
