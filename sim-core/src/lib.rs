//! sim-core: the protocol-agnostic heart of dsim.
//!
//! One single-threaded event loop ([`Simulation`]) drives node state machines ([`Node`])
//! over a seeded virtual network ([`NetworkConfig`]) that can drop, delay, duplicate and
//! reorder messages, partition nodes, and crash and restart them. After every step the
//! loop runs the protocol's [`Invariant`]s; the first violation stops the run. Everything
//! random flows from one seed ([`SimRng`], [`Decider`]), so a scenario and a seed always
//! give the same trace, and the same [trace hash](trace).
//!
//! sim-core knows no protocol and reads no files.

#![warn(missing_docs)]

pub mod causality;
pub mod checkers;
pub mod erased;
pub mod explore;
pub mod history;
pub mod invariant;
pub mod network;
pub mod node;
pub mod physical;
pub mod queue;
pub mod rng;
pub mod sim;
pub mod testing;
pub mod time;
pub mod trace;

pub use causality::{
    CausalEdge, CausalOrder, Causality, EventId, LamportTime, NodeEvent, NodeEventKind, VectorClock,
};
pub use erased::{AnySimulation, TraceFormat};
pub use history::{Entry, EntryKind, History, OpId};
pub use invariant::{
    CheckError, FaultModel, Invariant, Limit, NetworkAssumptions, Outcome, Phase, Violation,
};
pub use network::{
    AppliesTo, DropReason, LinkConfig, LinkOrdering, MessageClass, NetworkConfig, Partition, SlowRule,
};
pub use node::{Context, Coverage, Message, Node, TimerId, TimerPayload};
pub use physical::{LocalTime, PhysicalClock};
pub use rng::{Decider, Latency, SimRng, Stream};
pub use sim::{
    Builder, Counters, Fault, InFlight, Report, ScheduledFault, SimConfig, Simulation, World,
    DEFAULT_MAX_STEPS, DEFAULT_SEARCH_BUDGET,
};
pub use time::{NodeId, SimDuration, SimTime};
pub use trace::{MsgId, TraceEvent, TraceHasher, TraceMode, TraceRecord};
