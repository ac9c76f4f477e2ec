//! The protocol registry: the contract between a protocol and the tools that run it by
//! name (scenario files, `dsim run`, `fuzz`, `replay`, `shrink`, `list`).
//!
//! A protocol implements [`Protocol`]: its name, its documented parameters (read from the
//! scenario's `"protocol": {"NAME": {...}}`), their validation against the rest of the
//! scenario, the facts a scenario check needs (node count, node names, size), and its
//! [`Setup`]. Its invariant names come from the invariants its setup builds, so no list
//! can disagree with them. A [`Registry`] maps names to protocols, type-erased
//! ([`AnyProtocol`]), so the tools never match on a closed set: adding a protocol is its
//! module plus one line in [`Registry::bundled`], or one `.with(..)` in a user's binary.

use crate::kv::Workload;
use crate::{ClientEvent, ParamDoc, RunReport, Setup, TimedClientEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sim_core::{AnySimulation, FaultModel, Node, SimConfig, Simulation, World};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// One step of a path into a scenario file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A scenario field that is wrong: where (from the file's root), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: Vec<PathSeg>,
    pub message: String,
}

impl FieldError {
    /// An error at `path` (keys from the scenario's root).
    pub fn at(path: &[&str], message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.iter().map(|k| PathSeg::Key(k.to_string())).collect(),
            message: message.into(),
        }
    }

    /// An error in parameter `field` of `protocol`.
    pub fn param(protocol: &str, field: &str, message: impl Into<String>) -> FieldError {
        FieldError::at(&["protocol", protocol, field], message)
    }
}

/// What a protocol's validation may read of the rest of the scenario.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioView<'a> {
    pub workload: &'a Workload,
    /// The invariants the scenario selects (`None`: all).
    pub invariants: Option<&'a [String]>,
    /// The invariant the scenario expects violated, if any.
    pub expect_violation: Option<&'a str>,
    /// The run's step limit (a bound on what a run can record).
    pub max_steps: u64,
}

/// What scenario checks and tools need to know of one protocol instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub n_nodes: usize,
    /// The nodes, for messages: "0 is the server, 1..=3 are clients".
    pub node_names: String,
    /// How big the workload is (operations, actions or pings), for `shrink`.
    pub operations: usize,
    /// A rough upper estimate of the bytes a run needs before its steps (README, "Bounds").
    pub memory_bytes: u128,
}

/// A protocol the tools can run by name.
pub trait Protocol: Send + Sync + 'static {
    /// Its parameters, as the scenario's `"protocol": {"NAME": {...}}` holds them.
    type Params: DeserializeOwned + Serialize + Default;
    type Node: Node;

    /// The name scenario files use (`"at-most-once"`).
    fn name(&self) -> &'static str;
    /// One line for `dsim list`.
    fn summary(&self) -> &'static str;
    fn params_doc(&self) -> &'static [ParamDoc];
    /// Whether it runs the scenario's key/value `workload` (else a workload is rejected).
    fn uses_workload(&self) -> bool {
        false
    }
    /// Checks the parameters against each other and the rest of the scenario; sizes are
    /// bounded here, before anything is allocated.
    fn validate(&self, params: &Self::Params, scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        let _ = (params, scenario);
        Ok(())
    }
    fn facts(&self, params: &Self::Params, scenario: &ScenarioView<'_>) -> Facts;
    /// Smaller variants of the parameters, biggest cuts first, for `shrink`.
    fn smaller(&self, params: &Self::Params) -> Vec<Self::Params> {
        let _ = params;
        Vec::new()
    }
    /// The nodes, invariants and fault model of a run with `seed`.
    fn setup(&self, params: &Self::Params, workload: &Workload, seed: u64) -> Setup<Self::Node>;
    /// What a finished run shows beyond its outcome (the snapshots it took), if anything.
    fn run_report(&self, params: &Self::Params) -> Option<RunReportOf<Self::Node>> {
        let _ = params;
        None
    }
}

/// Reads what a finished run shows beyond its outcome (see [`Protocol::run_report`]).
pub type RunReportOf<N> = fn(&World<N>) -> RunReport;

/// A runnable protocol instance, its node type hidden.
pub struct Instance {
    pub simulation: Box<dyn AnySimulation>,
    pub fault_model: FaultModel,
    pub sometimes: &'static [&'static str],
    pub node_names: Vec<String>,
    /// The run's client history as Jepsen-shaped events, for protocols that record one
    /// (`Setup::client_history`); call it with this instance's simulation.
    pub client_history: Option<ClientHistoryOf>,
    /// The same history with each event's operation and virtual time, for latency and
    /// throughput figures (`crate::timed_client_history`).
    pub client_timings: Option<ClientTimingsOf>,
    /// What the finished run shows beyond its outcome, for protocols that have something
    /// (`Protocol::run_report`); call it with this instance's simulation.
    pub run_report: Option<RunReportFn>,
}

/// Reads a protocol's report of an instance's finished simulation.
pub type RunReportFn = ReadOf<RunReport>;

/// Reads the client history of an instance's simulation.
pub type ClientHistoryOf = ReadOf<Vec<ClientEvent>>;

/// Reads the timed client history of an instance's simulation.
pub type ClientTimingsOf = ReadOf<Vec<TimedClientEvent>>;

/// Reads something of an instance's simulation, given type-erased.
pub type ReadOf<T> = Box<dyn Fn(&dyn AnySimulation) -> T>;

/// `read` over the simulation of an instance of `N`: the tools hold an instance's
/// simulation type-erased, and call back with it.
fn on_own<N: Node, T>(read: impl Fn(&Simulation<N>) -> T + 'static) -> ReadOf<T> {
    Box::new(move |simulation: &dyn AnySimulation| {
        let simulation = simulation
            .as_any()
            .downcast_ref::<Simulation<N>>()
            .expect("called with its own instance's simulation");
        read(simulation)
    })
}

/// A [`Protocol`] with its types erased, so a registry can hold any.
pub trait AnyProtocol: Send + Sync {
    fn name(&self) -> &'static str;
    fn summary(&self) -> &'static str;
    fn params_doc(&self) -> &'static [ParamDoc];
    fn uses_workload(&self) -> bool;
    /// The default parameters, as JSON.
    fn default_params(&self) -> serde_json::Value;
    /// Reads and validates the parameters; the instance's facts.
    fn check(&self, params: &serde_json::Value, scenario: &ScenarioView<'_>) -> Result<Facts, FieldError>;
    /// The instance's facts, without validating (for estimates of out-of-range sizes).
    fn facts(&self, params: &serde_json::Value, scenario: &ScenarioView<'_>) -> Result<Facts, FieldError>;
    /// The names of the invariants a run of these parameters checks.
    fn invariant_names(&self, params: &serde_json::Value, workload: &Workload) -> Vec<&'static str>;
    /// The faults a run of these parameters survives.
    fn fault_model(&self, params: &serde_json::Value, workload: &Workload) -> FaultModel;
    /// Smaller parameters (see [`Protocol::smaller`]).
    fn smaller(&self, params: &serde_json::Value) -> Vec<serde_json::Value>;
    /// A simulation of a run with `seed`, checking the invariants `selected` (`None`: all).
    fn instance(
        &self,
        params: &serde_json::Value,
        workload: &Workload,
        config: SimConfig,
        selected: Option<&[String]>,
    ) -> Instance;
}

impl<P: Protocol> AnyProtocol for P {
    fn name(&self) -> &'static str {
        Protocol::name(self)
    }

    fn summary(&self) -> &'static str {
        Protocol::summary(self)
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        Protocol::params_doc(self)
    }

    fn uses_workload(&self) -> bool {
        Protocol::uses_workload(self)
    }

    fn default_params(&self) -> serde_json::Value {
        serde_json::to_value(P::Params::default()).expect("parameters serialize")
    }

    fn check(&self, params: &serde_json::Value, scenario: &ScenarioView<'_>) -> Result<Facts, FieldError> {
        let params = parse::<P>(self, params)?;
        self.validate(&params, scenario)?;
        Ok(Protocol::facts(self, &params, scenario))
    }

    fn facts(&self, params: &serde_json::Value, scenario: &ScenarioView<'_>) -> Result<Facts, FieldError> {
        Ok(Protocol::facts(self, &parse::<P>(self, params)?, scenario))
    }

    fn invariant_names(&self, params: &serde_json::Value, workload: &Workload) -> Vec<&'static str> {
        let params = parsed::<P>(self, params);
        self.setup(&params, workload, 0).invariants.iter().map(|invariant| invariant.name()).collect()
    }

    fn fault_model(&self, params: &serde_json::Value, workload: &Workload) -> FaultModel {
        self.setup(&parsed::<P>(self, params), workload, 0).fault_model
    }

    fn smaller(&self, params: &serde_json::Value) -> Vec<serde_json::Value> {
        let params = parsed::<P>(self, params);
        Protocol::smaller(self, &params)
            .into_iter()
            .map(|p| serde_json::to_value(p).expect("parameters serialize"))
            .collect()
    }

    fn instance(
        &self,
        params: &serde_json::Value,
        workload: &Workload,
        config: SimConfig,
        selected: Option<&[String]>,
    ) -> Instance {
        let params = parsed::<P>(self, params);
        let setup = self.setup(&params, workload, config.seed);
        let mut simulation = Simulation::new(config, setup.n_nodes, setup.build);
        for invariant in setup.invariants {
            if selected.is_none_or(|names| names.iter().any(|n| n == invariant.name())) {
                simulation.add_invariant(invariant);
            }
        }
        let client_history = setup.client_history.map(|events| -> ClientHistoryOf {
            on_own::<P::Node, _>(move |simulation| events(simulation.world().history().entries()))
        });
        let client_timings = setup.client_history.map(|events| -> ClientTimingsOf {
            on_own::<P::Node, _>(move |simulation| {
                crate::timed_client_history(events, simulation.world().history().entries())
            })
        });
        let run_report = Protocol::run_report(self, &params).map(|report| -> RunReportFn {
            on_own::<P::Node, _>(move |simulation| report(simulation.world()))
        });
        Instance {
            simulation: Box::new(simulation),
            fault_model: setup.fault_model,
            sometimes: setup.sometimes,
            node_names: setup.node_names,
            client_history,
            client_timings,
            run_report,
        }
    }
}

/// The parameters, read; an error names the field (below `protocol.NAME`).
fn parse<P: Protocol>(protocol: &P, params: &serde_json::Value) -> Result<P::Params, FieldError> {
    serde_path_to_error::deserialize(params).map_err(|err| {
        let mut path = vec![PathSeg::Key("protocol".into()), PathSeg::Key(protocol.name().into())];
        for segment in err.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => path.push(PathSeg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => path.push(PathSeg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => path.push(PathSeg::Key(variant.clone())),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        FieldError { path, message: err.inner().to_string() }
    })
}

/// The parameters of a scenario that was checked already.
fn parsed<P: Protocol>(protocol: &P, params: &serde_json::Value) -> P::Params {
    parse(protocol, params).unwrap_or_else(|e| panic!("parameters checked before use: {e:?}"))
}

/// Protocols by name.
pub struct Registry {
    protocols: BTreeMap<&'static str, Box<dyn AnyProtocol>>,
}

impl Registry {
    /// No protocol at all.
    pub fn empty() -> Registry {
        Registry { protocols: BTreeMap::new() }
    }

    /// The protocols dsim ships: one line each.
    pub fn bundled() -> Registry {
        Registry::empty()
            .with(crate::rpc::Rpc)
            .with(crate::ping::Ping)
            .with(crate::at_most_once::AtMostOnce)
            .with(crate::clocks::Clocks)
            .with(crate::primary_backup::PrimaryBackup)
            .with(crate::snapshot::bank::SnapshotBank)
            .with(crate::snapshot::ping::SnapshotPing)
            .with(crate::chain::Chain)
    }

    /// This registry with `protocol` added (replacing one of the same name).
    pub fn with(mut self, protocol: impl Protocol) -> Registry {
        self.protocols.insert(Protocol::name(&protocol), Box::new(protocol));
        self
    }

    pub fn get(&self, name: &str) -> Option<&dyn AnyProtocol> {
        self.protocols.get(name).map(|p| p.as_ref())
    }

    /// Every protocol, by name.
    pub fn iter(&self) -> impl Iterator<Item = &dyn AnyProtocol> {
        self.protocols.values().map(|p| p.as_ref())
    }

    /// The names, for messages ("rpc, ping, ...").
    pub fn names(&self) -> Vec<&'static str> {
        self.protocols.keys().copied().collect()
    }
}

impl Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

// ---------------------------------------------------------------------------------------
// Bounds shared by protocols' validation and memory estimates (the README's "Bounds")
// ---------------------------------------------------------------------------------------

/// The largest time in milliseconds any field may give (about 11.6 days): in microseconds
/// it is 10^12, far from overflowing anything it is added to.
pub const MS_MAX: u64 = 1_000_000_000;

/// The memory estimate's parts: a node (its state, slot, counters, name), a client
/// operation (the operation, its history entries, the checker's copy), a message in flight
/// (its event in the queue and its payload), a recorded event (the causal record), and how
/// many vector stamps of a clocks event are alive at once (its note, its message, the
/// checker's). Measured (`/usr/bin/time -v`): clocks with default parameters peaks at
/// 370 MB with 150 processes (121,005 steps) and 1.9 GB with 250 (327,216 steps), about 6
/// stamps per event; the estimate gives 236 MB and 2.0 GB.
pub const NODE_BYTES: u128 = 1 << 10;
pub const OP_BYTES: u128 = 1 << 10;
pub const MESSAGE_BYTES: u128 = 192;
pub const EVENT_BYTES: u128 = 256;
pub const CLOCK_STAMPS_PER_EVENT: u128 = 6;

/// A time in ms at least `min` and at most [`MS_MAX`], or an error at `path`.
pub fn check_ms(path: &[&str], ms: u64, min: u64) -> Result<(), FieldError> {
    if ms < min {
        return Err(FieldError::at(path, format!("must be at least {min}")));
    }
    if ms > MS_MAX {
        return Err(FieldError::at(path, format!("{ms} ms is too long: at most {MS_MAX} ms")));
    }
    Ok(())
}

/// `value` at most `max`, or an error at `path` naming the field, the value and the maximum.
pub fn check_max(path: &[&str], value: u64, max: u64) -> Result<(), FieldError> {
    if value > max {
        let field = path.last().copied().unwrap_or("the value");
        return Err(FieldError::at(path, format!("{value} is too large: {field} is at most {max}")));
    }
    Ok(())
}

/// The facts of a key/value protocol: a server (node 0) and one node per client.
pub fn key_value_facts(workload: &Workload) -> Facts {
    let clients = workload.n_clients();
    Facts {
        n_nodes: 1 + clients,
        node_names: format!("0 is the server, 1..={clients} are clients"),
        operations: workload.n_ops(),
        memory_bytes: (1 + clients as u128) * NODE_BYTES + workload.n_ops() as u128 * OP_BYTES,
    }
}
