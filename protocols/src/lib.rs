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
pub mod registry;
pub mod rpc;

use serde::Serialize;
use sim_core::{Builder, Entry, FaultModel, Invariant, Node};

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

/// One documented protocol parameter, for `dsim list`.
#[derive(Clone, Copy, Debug)]
pub struct ParamDoc {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}
