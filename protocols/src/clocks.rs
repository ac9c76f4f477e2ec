//! Clocks: N processes stamp every event with a physical timestamp, a Lamport clock and a
//! vector clock, and the simulator checks each stamp against the true happens-before
//! relation it tracks itself (`sim_core::causality`).
//!
//! **The workload.** Each process starts, then acts every `interval_ms_min..=interval_ms_max`
//! (its timer), `actions_per_process` times: a local event, a send to a random peer, or a
//! broadcast to every peer, drawn by weight. Every start, timer, local event, send and
//! receive is an event and is stamped (see [`crate::logical_clocks`] for the rules).
//!
//! **The guarantees and their invariants**, all checked against ground truth, incrementally
//! (each new event against its two incoming edges, or against a frontier of at most three
//! events per process, never all pairs):
//! - `lamport-clock-condition`: `a -> b` implies `L(a) < L(b)`, for every send/receive
//!   pair and every pair of consecutive events of a process (so, by transitivity, for
//!   every pair within a process and every causal chain).
//! - `lamport-total-order`: the stamps `(L, process id)` are all different, and for every
//!   `a -> b`, `(L(a), p(a)) < (L(b), p(b))`: a total order consistent with
//!   happens-before. The order on pairs is transitive, so as for the clock condition it
//!   holds on every causal chain iff it holds on each edge of one, and each new event is
//!   checked against its two incoming edges alone. Distinctness then follows: a process's
//!   pairs rise along its edges, and two processes' pairs differ in the id.
//! - `vector-clock-exact`: for all recorded events, `V(a) < V(b)` iff `a -> b`, and
//!   concurrent iff incomparable. For a new event `e` and each process `q` the check
//!   compares three events: the latest event of `q` before `e` (must be `<`), the first
//!   event of `q` not before `e` (must be concurrent), and the latest recorded event of `q`
//!   (must not be `>`). Since each process's own clocks are checked to rise, and both
//!   orders offered are transitive, these three stand for all of `q`'s events.
//! - `physical-clock-condition`: ordering events by `(physical timestamp, process id,
//!   position in the process)` is consistent with happens-before, for every message. With
//!   skewed or drifting clocks it is not: a message from a process whose clock runs ahead
//!   can arrive, by the receiver's clock, before it was sent. Lamport clocks fix this.
//!
//! **Known-buggy variants**: `vector_receive: notes` (the receiver merges only its own
//! entry) and `vector_order: notes` (strict less in every entry); `vector-clock-exact`
//! catches each at the first event that shows it. Physical clocks are not a variant but a
//! setting: give the scenario `physical_clocks` with skew or drift.
//!
//! **Fault model.** The clocks live in memory, so processes never crash; the network may
//! lose, delay, reorder and duplicate messages (a duplicate is one send, two receives).

use crate::kv::Workload;
use crate::logical_clocks::{LamportClock, ProcessVectorClock, VectorOrder, VectorReceive};
use crate::registry::{
    check_max, check_ms, Facts, FieldError, Protocol, ScenarioView, CLOCK_STAMPS_PER_EVENT, EVENT_BYTES,
    NODE_BYTES,
};
use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::causality::short_kind;
use sim_core::{
    CausalOrder, Causality, CheckError, Context, EventId, FaultModel, Invariant, LamportTime, LocalTime,
    Message, NetworkAssumptions, Node, NodeEvent, NodeEventKind, NodeId, SimDuration, VectorClock, World,
};

pub const LAMPORT_CLOCK_CONDITION: &str = "lamport-clock-condition";
pub const LAMPORT_TOTAL_ORDER: &str = "lamport-total-order";
pub const VECTOR_CLOCK_EXACT: &str = "vector-clock-exact";
pub const PHYSICAL_CLOCK_CONDITION: &str = "physical-clock-condition";

/// A message: its sender's stamps at the send.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Stamped {
    pub lamport: LamportTime,
    pub vector: VectorClock,
    pub physical: LocalTime,
}

impl Message for Stamped {}

/// The process's one timer: time to act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Act;

/// What a process recorded for one of its events (a history note).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Stamp {
    pub event: EventId,
    pub lamport: LamportTime,
    pub vector: VectorClock,
    pub physical: LocalTime,
}

/// Scenario parameters of the clocks workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClocksParams {
    #[serde(default = "default_processes")]
    pub processes: u32,
    #[serde(default = "default_actions")]
    pub actions_per_process: u32,
    #[serde(default = "default_interval_ms_min")]
    pub interval_ms_min: u64,
    #[serde(default = "default_interval_ms_max")]
    pub interval_ms_max: u64,
    #[serde(default = "one")]
    pub local_weight: u32,
    #[serde(default = "two")]
    pub send_weight: u32,
    #[serde(default = "one")]
    pub broadcast_weight: u32,
    #[serde(default, alias = "vector-receive")]
    pub vector_receive: VectorReceive,
    #[serde(default, alias = "vector-order")]
    pub vector_order: VectorOrder,
}

fn default_processes() -> u32 {
    3
}
fn default_actions() -> u32 {
    20
}
fn default_interval_ms_min() -> u64 {
    1
}
fn default_interval_ms_max() -> u64 {
    10
}
fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}

impl Default for ClocksParams {
    fn default() -> Self {
        ClocksParams {
            processes: default_processes(),
            actions_per_process: default_actions(),
            interval_ms_min: default_interval_ms_min(),
            interval_ms_max: default_interval_ms_max(),
            local_weight: 1,
            send_weight: 2,
            broadcast_weight: 1,
            vector_receive: VectorReceive::Correct,
            vector_order: VectorOrder::Correct,
        }
    }
}

/// The most processes: every event carries a vector stamp of `processes` entries, and a
/// broadcast is `processes - 1` messages, so a run's memory grows with the square: 250
/// processes with default parameters peak at 1.9 GB (500 peaked at 4.7 GB and stopped at
/// `max_steps` with its work half done).
pub const PROCESSES_MAX: u32 = 250;
/// The most timer-driven actions per process.
pub const ACTIONS_PER_PROCESS_MAX: u32 = 100_000;

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc { name: "processes", default: "3", help: "number of processes, 2 to 250" },
    ParamDoc { name: "actions_per_process", default: "20", help: "timer-driven actions each process takes" },
    ParamDoc { name: "interval_ms_min", default: "1", help: "least time between a process's actions" },
    ParamDoc { name: "interval_ms_max", default: "10", help: "most time between a process's actions" },
    ParamDoc { name: "local_weight", default: "1", help: "relative weight of a local event" },
    ParamDoc { name: "send_weight", default: "2", help: "relative weight of a send to a random peer" },
    ParamDoc { name: "broadcast_weight", default: "1", help: "relative weight of a send to every peer" },
    ParamDoc { name: "vector_receive", default: "correct", help: "correct | notes (merge only own entry)" },
    ParamDoc { name: "vector_order", default: "correct", help: "correct | notes (strict less everywhere)" },
];

/// One process of the workload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClockProcess {
    lamport: LamportClock,
    vector: ProcessVectorClock,
    actions_left: u32,
    params: ClocksParams,
}

impl ClockProcess {
    pub fn new(me: NodeId, params: &ClocksParams) -> ClockProcess {
        ClockProcess {
            lamport: LamportClock::default(),
            vector: ProcessVectorClock::new(me, params.processes as usize, params.vector_receive),
            actions_left: params.actions_per_process,
            params: params.clone(),
        }
    }

    /// Stamps a local event, a start, a timer or a send: both clocks tick.
    fn tick(&mut self, ctx: &mut Context<'_, Self>) -> Stamped {
        Stamped { lamport: self.lamport.tick(), vector: self.vector.tick(), physical: ctx.local_time() }
    }

    fn record(ctx: &mut Context<'_, Self>, stamped: &Stamped) {
        let stamp = Stamp {
            event: ctx.event(),
            lamport: stamped.lamport,
            vector: stamped.vector.clone(),
            physical: stamped.physical,
        };
        ctx.note(stamp);
    }

    fn schedule(&mut self, ctx: &mut Context<'_, Self>) {
        if self.actions_left == 0 {
            return;
        }
        self.actions_left -= 1;
        let (min, max) = (self.params.interval_ms_min, self.params.interval_ms_max);
        let after = SimDuration::from_micros(ctx.rng().between(min * 1_000, max * 1_000));
        ctx.set_timer(after, Act);
    }

    fn act(&mut self, ctx: &mut Context<'_, Self>) {
        let p = &self.params;
        let total = u64::from(p.local_weight) + u64::from(p.send_weight) + u64::from(p.broadcast_weight);
        if total == 0 {
            return;
        }
        let draw = ctx.rng().below(total);
        let me = ctx.id();
        let n = ctx.n_nodes() as u64;
        if draw < u64::from(p.local_weight) {
            ctx.local_event("work");
            let stamped = self.tick(ctx);
            Self::record(ctx, &stamped);
        } else if draw < u64::from(p.local_weight) + u64::from(p.send_weight) {
            let mut peer = ctx.rng().below(n - 1);
            if peer >= u64::from(me.0) {
                peer += 1;
            }
            self.send(ctx, NodeId(peer as u32));
        } else {
            for peer in (0..n as u32).map(NodeId).filter(|&peer| peer != me) {
                self.send(ctx, peer);
            }
        }
    }

    fn send(&mut self, ctx: &mut Context<'_, Self>, to: NodeId) {
        let stamped = self.tick(ctx);
        ctx.send(to, stamped.clone());
        Self::record(ctx, &stamped);
    }
}

impl Node for ClockProcess {
    type Msg = Stamped;
    type Timer = Act;
    type Durable = ();
    type Op = Stamp;

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        let stamped = self.tick(ctx);
        Self::record(ctx, &stamped);
        self.schedule(ctx);
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, _from: NodeId, msg: Stamped) {
        // The sender had counted further than the receiver: Lamport's max() matters.
        if msg.lamport > self.lamport.time() {
            ctx.sometimes(RECEIVE_JUMPS_CLOCK);
        }
        // The message arrived stamped later by the sender's physical clock than the
        // receiver's says it is now: ordering by physical time would put receive before send.
        if msg.physical > ctx.local_time() {
            ctx.sometimes(RECEIVE_BEFORE_SEND_PHYSICALLY);
        }
        let stamped = Stamped {
            lamport: self.lamport.receive(msg.lamport),
            vector: self.vector.receive(&msg.vector),
            physical: ctx.local_time(),
        };
        Self::record(ctx, &stamped);
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, _timer: Act) {
        let stamped = self.tick(ctx);
        Self::record(ctx, &stamped);
        if ctx.n_nodes() >= 2 {
            self.act(ctx);
        }
        self.schedule(ctx);
    }
}

/// The rare paths the clocks workload marks.
pub const SOMETIMES: &[&str] = &[RECEIVE_JUMPS_CLOCK, RECEIVE_BEFORE_SEND_PHYSICALLY];
/// A receive moved the receiver's Lamport clock forward past its own count.
pub const RECEIVE_JUMPS_CLOCK: &str = "clocks: a receive jumped the Lamport clock forward";
/// A message arrived "before" it was sent, by the two nodes' physical clocks.
pub const RECEIVE_BEFORE_SEND_PHYSICALLY: &str = "clocks: received before sent, by physical timestamps";

pub fn setup(params: &ClocksParams) -> Setup<ClockProcess> {
    let n_nodes = params.processes as usize;
    let built = params.clone();
    let hint = match (params.vector_receive, params.vector_order) {
        (VectorReceive::Notes, _) => Some(
            "this run uses the notes' receive rule: a receiver merges only its own entry, \
             v_j[j] = max(v_j[j], v_m[j]), so it forgets everything the sender knew. Correct: \
             v_j[k] = max(v_j[k], v_m[k]) for every k, then v_j[j] += 1.",
        ),
        (_, VectorOrder::Notes) => Some(
            "this run uses the notes' order: v < w iff every entry is strictly less. Two events \
             of one process with no message between them differ in one entry only, so it calls \
             them concurrent. Correct: v < w iff v <= w in every entry and v != w.",
        ),
        _ => None,
    };
    Setup {
        n_nodes,
        build: Box::new(move |id, _| ClockProcess::new(id, &built)),
        invariants: vec![
            Box::new(LamportClockCondition::default()),
            Box::new(LamportTotalOrder::default()),
            Box::new(VectorClockExact::new(params.vector_order, hint)),
            Box::new(PhysicalClockCondition::default()),
        ],
        sometimes: SOMETIMES,
        fault_model: FaultModel {
            description: "no process crashes (clocks live in memory); any network faults".into(),
            may_crash: Vec::new(),
            max_down_at_once: 0,
            partitions: true,
            network: NetworkAssumptions::default(),
            crash_stop: false,
        },
        node_names: (0..n_nodes).map(|i| format!("process {i}")).collect(),
        client_history: None,
    }
}

/// The protocol's stamps, by event id, kept in step with the causal record: each check
/// first reads the new history notes, then walks the new ground-truth events, each of
/// which must have been stamped.
#[derive(Clone, Default)]
struct Stamps {
    history_cursor: usize,
    events_cursor: usize,
    /// For each event, the index of its stamp in the history, plus one (0: none yet).
    /// The history is append-only, so the stamps are read there, never copied.
    by_event: Vec<usize>,
}

impl Stamps {
    /// Reads what is new; returns the causal record and the new events, in order.
    fn advance<'w>(
        &mut self,
        world: &'w World<ClockProcess>,
    ) -> Result<(&'w Causality, std::ops::Range<usize>), String> {
        let causality = world.causality().expect("the clocks invariants turn causality tracking on");
        let (first, fresh) = world.history().since(&mut self.history_cursor);
        for (position, entry) in (first..).zip(fresh) {
            let index = entry.op.event.index();
            if self.by_event.len() <= index {
                self.by_event.resize(index + 1, 0);
            }
            assert!(self.by_event[index] == 0, "event {} stamped twice", entry.op.event);
            self.by_event[index] = position + 1;
        }
        let new = self.events_cursor..causality.len();
        for event in &causality.events()[new.clone()] {
            if self.by_event.get(event.id.index()).is_none_or(|&slot| slot == 0) {
                return Err(format!(
                    "{} ({}) has no clock stamp: the protocol did not record it",
                    event.name(),
                    short_kind(&event.kind)
                ));
            }
        }
        self.events_cursor = causality.len();
        Ok((causality, new))
    }

    fn get<'w>(&self, world: &'w World<ClockProcess>, id: EventId) -> &'w Stamp {
        let slot = self.by_event[id.index()];
        assert!(slot > 0, "{id} was checked for a stamp in advance");
        &world.history().entries()[slot - 1].op
    }
}

/// `n1:3 (receive m4 from n0)`.
fn name(causality: &Causality, id: EventId) -> String {
    causality.describe(id)
}

/// The event of `node` at position `seq` (from 1).
fn at(causality: &Causality, node: NodeId, seq: u32) -> EventId {
    causality.node_events(node)[seq as usize - 1]
}

/// The edges of the causal graph into `event`, with what each is: from the previous event
/// of its process and from the send of the message it receives. Every causal chain into
/// `event` ends with one of them, so an order that is transitive holds on every chain iff
/// it holds on every edge.
fn edges_into(causality: &Causality, event: &NodeEvent) -> [Option<(EventId, &'static str)>; 2] {
    let previous = (event.seq > 1)
        .then(|| (at(causality, event.node, event.seq - 1), "the previous event of the same process"));
    let message = match event.kind {
        NodeEventKind::Receive { send, .. } => Some((send, "the send of the message it receives")),
        _ => None,
    };
    [previous, message]
}

/// `lamport-clock-condition` at `event`: an edge `a -> event` with `L(a) >= L(event)`, if
/// any. Checked at every event in turn, this finds the first event at which some `a -> e`
/// has `L(a) >= L(e)` (by transitivity of `<`).
fn clock_condition_broken(
    causality: &Causality,
    event: &NodeEvent,
    lamport: impl Fn(EventId) -> LamportTime,
) -> Option<(EventId, &'static str)> {
    edges_into(causality, event).into_iter().flatten().find(|&(a, _)| lamport(a) >= lamport(event.id))
}

/// `lamport-total-order` at `event`: an edge `a -> event` whose pairs `(L, process id)` are
/// out of order, if any. Checked at every event in turn, this finds the first event that
/// repeats a pair or has a pair not above that of every event that happened before it.
fn total_order_broken(
    causality: &Causality,
    event: &NodeEvent,
    lamport: impl Fn(EventId) -> LamportTime,
) -> Option<EventId> {
    let key = (lamport(event.id), event.node);
    let edges = edges_into(causality, event).into_iter().flatten();
    edges.map(|(a, _)| a).find(|&a| (lamport(a), causality.event(a).node) >= key)
}

/// The events `e` must be checked against for one process `q`: the latest event of `q`
/// that happened before `e` (if any) and the first that did not (if recorded yet).
fn frontier(causality: &Causality, e: EventId, q: NodeId) -> (Option<EventId>, Option<EventId>) {
    let event = causality.event(e);
    let mut known = causality.vector(e)[q.index()];
    if q == event.node {
        known -= 1; // the entry counts `e` itself
    }
    let before = (known > 0).then(|| at(causality, q, known));
    let events = causality.node_events(q);
    let after = events.get(known as usize).copied().filter(|&a| a < e);
    (before, after)
}

/// `lamport-clock-condition`: `a -> b` implies `L(a) < L(b)`, for every message and every
/// pair of consecutive events of a process.
#[derive(Clone, Default)]
pub struct LamportClockCondition {
    stamps: Stamps,
}

impl Invariant<ClockProcess> for LamportClockCondition {
    fn name(&self) -> &'static str {
        LAMPORT_CLOCK_CONDITION
    }

    fn needs_causality(&self) -> bool {
        true
    }

    fn check_step(&mut self, world: &World<ClockProcess>) -> Result<(), CheckError> {
        let (causality, new) = self.stamps.advance(world)?;
        let lamport = |id: EventId| self.stamps.get(world, id).lamport;
        for event in &causality.events()[new] {
            if let Some((a, relation)) = clock_condition_broken(causality, event, lamport) {
                let e = event.id;
                return Err(format!(
                    "{} -> {} ({relation}), but their Lamport stamps are {} and {}: \
                     the clock condition a -> b => L(a) < L(b) fails",
                    name(causality, a),
                    name(causality, e),
                    lamport(a),
                    lamport(e)
                )
                .into());
            }
        }
        Ok(())
    }
}

/// `lamport-total-order`: `(L, process id)` is a total order consistent with happens-before,
/// checked on each edge of the causal graph (see the module doc).
#[derive(Clone, Default)]
pub struct LamportTotalOrder {
    stamps: Stamps,
}

impl LamportTotalOrder {
    /// Explains why the edge `a -> e` is out of order. Run once, on a violation: if `e`
    /// repeats the pair of an earlier event of its process, that is the clearer report
    /// (the pairs rose along the process up to `e`, so it is found walking back).
    fn explain(&self, world: &World<ClockProcess>, causality: &Causality, a: EventId, e: EventId) -> String {
        let event = causality.event(e);
        let stamp = |id: EventId| (self.stamps.get(world, id).lamport, causality.event(id).node);
        let key = stamp(e);
        let earlier = causality.node_events(event.node)[..event.seq as usize - 1].iter();
        if let Some(&same) = earlier.rev().find(|&&x| stamp(x) == key) {
            return format!(
                "{} has the stamp ({}, {}), as the earlier event {} of the same process does:                  (L, process id) does not order them",
                name(causality, e),
                key.0,
                key.1,
                name(causality, same)
            );
        }
        let earlier = stamp(a);
        format!(
            "{} -> {} (via {}), but their stamps (L, process) are ({}, {}) and ({}, {}):              the total order puts them the wrong way round",
            name(causality, a),
            name(causality, e),
            causality.describe_chain(a, e),
            earlier.0,
            earlier.1,
            key.0,
            key.1
        )
    }
}

impl Invariant<ClockProcess> for LamportTotalOrder {
    fn name(&self) -> &'static str {
        LAMPORT_TOTAL_ORDER
    }

    fn needs_causality(&self) -> bool {
        true
    }

    fn check_step(&mut self, world: &World<ClockProcess>) -> Result<(), CheckError> {
        let (causality, new) = self.stamps.advance(world)?;
        let lamport = |id: EventId| self.stamps.get(world, id).lamport;
        for event in &causality.events()[new] {
            if let Some(a) = total_order_broken(causality, event, lamport) {
                return Err(self.explain(world, causality, a, event.id).into());
            }
        }
        Ok(())
    }
}

/// `vector-clock-exact`: `V(a) < V(b)` iff `a -> b`, and concurrent iff incomparable, under
/// the order the protocol uses.
#[derive(Clone)]
pub struct VectorClockExact {
    stamps: Stamps,
    order: VectorOrder,
    hint: Option<&'static str>,
    /// Every stamp so far followed the vector-clock rule from its predecessors' stamps,
    /// so every one was exact (see `follows_rule`).
    inductive: bool,
}

impl VectorClockExact {
    pub fn new(order: VectorOrder, hint: Option<&'static str>) -> VectorClockExact {
        VectorClockExact { stamps: Stamps::default(), order, hint, inductive: true }
    }

    /// Whether `e`'s stamp is what the vector-clock rule makes of its predecessors'
    /// stamps: its own entry its position on its process, every other entry the larger
    /// of the previous event's and (for a receive) the send's. While every earlier stamp
    /// was exact, this is exactly "the stamp is exact" (the simulator's exact vectors are
    /// that rule applied to the true predecessors), at the cost of reading two stamps
    /// rather than working out the exact vector of every event.
    fn follows_rule(&self, world: &World<ClockProcess>, causality: &Causality, event: &NodeEvent) -> bool {
        let stamp = |id: EventId| &self.stamps.get(world, id).vector.0[..];
        let seq = event.seq as usize;
        let previous = (seq >= 2).then(|| stamp(causality.node_events(event.node)[seq - 2]));
        let send = match event.kind {
            NodeEventKind::Receive { send, .. } => Some(stamp(send)),
            _ => None,
        };
        let (own, ve) = (event.node.index(), stamp(event.id));
        if ve.len() != causality.n_nodes() || ve[own] != event.seq {
            return false;
        }
        // Every entry but the own one, in two runs of whole slices (earlier stamps passed
        // this check, so they have the right length). No early exit: the loops vectorize.
        let rest_matches = |range: std::ops::Range<usize>| match (previous, send) {
            (None, None) => ve[range].iter().fold(0, |any, &v| any | v) == 0,
            (Some(p), None) | (None, Some(p)) => ve[range.clone()] == p[range],
            (Some(p), Some(s)) => {
                let entries = ve[range.clone()].iter().zip(&p[range.clone()]).zip(&s[range]);
                entries.fold(0, |differ, ((&v, &a), &b)| differ | (v ^ a.max(b))) == 0
            }
        };
        rest_matches(0..own) && rest_matches(own + 1..ve.len())
    }

    fn fail(
        &self,
        world: &World<ClockProcess>,
        causality: &Causality,
        a: EventId,
        e: EventId,
        truth: &str,
        said: CausalOrder,
    ) -> String {
        let (va, ve) = (&self.stamps.get(world, a).vector, &self.stamps.get(world, e).vector);
        let said = match said {
            CausalOrder::Before => "V(a) < V(b)",
            CausalOrder::After => "V(a) > V(b)",
            CausalOrder::Same => "V(a) = V(b)",
            CausalOrder::Concurrent => "they are concurrent",
        };
        let mut text = format!(
            "a = {}, b = {}: ground truth: {truth}; but their vector clocks are V(a) = {va}, \
             V(b) = {ve}, and by the order in use ({}) {said}",
            name(causality, a),
            name(causality, e),
            self.order.describe(),
        );
        if let Some(hint) = self.hint {
            text.push_str(&format!(". Why: {hint}"));
        }
        text
    }
}

impl Invariant<ClockProcess> for VectorClockExact {
    fn name(&self) -> &'static str {
        VECTOR_CLOCK_EXACT
    }

    fn needs_causality(&self) -> bool {
        true
    }

    fn check_step(&mut self, world: &World<ClockProcess>) -> Result<(), CheckError> {
        let (causality, new) = self.stamps.advance(world)?;
        for event in &causality.events()[new] {
            let e = event.id;
            let ve = &self.stamps.get(world, e).vector;
            // Fast path: a stamp equal to the simulator's exact vector, compared with the
            // correct order, is exact against every event by the vector-clock theorem (the
            // ground truth is that theorem's own construction). Only the frontier check
            // below can tell anything else apart: a wrong stamp, or the notes' order.
            if self.order == VectorOrder::Correct {
                let exact = if self.inductive {
                    let exact = self.follows_rule(world, causality, event);
                    debug_assert_eq!(
                        exact,
                        ve.0[..] == *causality.vector(e),
                        "the rule and the exact vector agree"
                    );
                    exact
                } else {
                    ve.0[..] == *causality.vector(e)
                };
                if exact {
                    continue;
                }
                // A stamp off the exact one: later stamps cannot be judged from it.
                self.inductive = false;
            }
            for q in (0..causality.n_nodes() as u32).map(NodeId) {
                let (before, after) = frontier(causality, e, q);
                if let Some(a) = before {
                    let said = self.order.compare(&self.stamps.get(world, a).vector, ve);
                    if said != CausalOrder::Before {
                        let truth = format!("a -> b, via {}", causality.describe_chain(a, e));
                        return Err(self.fail(world, causality, a, e, &truth, said).into());
                    }
                }
                if let Some(a) = after {
                    let said = self.order.compare(&self.stamps.get(world, a).vector, ve);
                    if said != CausalOrder::Concurrent {
                        return Err(self.fail(world, causality, a, e, "a and b are concurrent", said).into());
                    }
                }
                if q != event.node {
                    let last = causality.node_events(q).iter().rev().find(|&&a| a < e);
                    if let Some(&last) = last {
                        let said = self.order.compare(&self.stamps.get(world, last).vector, ve);
                        if said == CausalOrder::After || said == CausalOrder::Same {
                            let truth = if causality.happened_before(last, e) {
                                "a -> b"
                            } else {
                                "a and b are concurrent"
                            };
                            return Err(self.fail(world, causality, last, e, truth, said).into());
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// `physical-clock-condition`: ordering events by (physical timestamp, process id,
/// position in the process) is consistent with happens-before, for every message.
#[derive(Clone, Default)]
pub struct PhysicalClockCondition {
    stamps: Stamps,
}

impl Invariant<ClockProcess> for PhysicalClockCondition {
    fn name(&self) -> &'static str {
        PHYSICAL_CLOCK_CONDITION
    }

    fn needs_causality(&self) -> bool {
        true
    }

    fn check_step(&mut self, world: &World<ClockProcess>) -> Result<(), CheckError> {
        let (causality, new) = self.stamps.advance(world)?;
        for event in &causality.events()[new] {
            let NodeEventKind::Receive { send, .. } = event.kind else { continue };
            let sent = causality.event(send);
            let key = |id: EventId, node: NodeId, seq: u32| (self.stamps.get(world, id).physical, node, seq);
            let (a, b) = (key(send, sent.node, sent.seq), key(event.id, event.node, event.seq));
            if a >= b {
                // Built from what happened: a later reading, or a tie that the process ids
                // (then the positions) broke the wrong way.
                let how = if a.0 == b.0 {
                    format!(
                        "the readings are equal ({} by {}'s clock and by {}'s), and the tie is broken \
                         by process id, which puts {} first",
                        a.0, sent.node, event.node, event.node
                    )
                } else {
                    format!(
                        "the receive comes first: sent at {} by {}'s clock, received at {} by {}'s clock",
                        a.0, sent.node, b.0, event.node
                    )
                };
                return Err(format!(
                    "{} -> {}, but by physical timestamps {how} (true times {} and {}). {} clock: \
                     offset {} µs, drift {} ppm; {} clock: offset {} µs, drift {} ppm. Lamport clocks \
                     order these two correctly",
                    name(causality, send),
                    name(causality, event.id),
                    sent.time,
                    event.time,
                    sent.node,
                    world.clock(sent.node).offset_micros,
                    world.clock(sent.node).drift_ppm,
                    event.node,
                    world.clock(event.node).offset_micros,
                    world.clock(event.node).drift_ppm,
                )
                .into());
            }
        }
        Ok(())
    }
}

/// The clocks workload in the registry.
pub struct Clocks;

impl Protocol for Clocks {
    type Params = ClocksParams;
    type Node = ClockProcess;

    fn name(&self) -> &'static str {
        "clocks"
    }

    fn summary(&self) -> &'static str {
        "processes stamp events with physical, Lamport and vector clocks, checked against ground truth"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn validate(&self, params: &ClocksParams, _scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        let path = |field: &'static str| ["protocol", "clocks", field];
        if !(2..=PROCESSES_MAX).contains(&params.processes) {
            let why = format!("{} processes: expected 2 to {PROCESSES_MAX}", params.processes);
            return Err(FieldError::param("clocks", "processes", why));
        }
        check_max(
            &path("actions_per_process"),
            params.actions_per_process.into(),
            ACTIONS_PER_PROCESS_MAX.into(),
        )?;
        if params.interval_ms_min > params.interval_ms_max {
            let why = format!(
                "interval_ms_min ({}) is above interval_ms_max ({})",
                params.interval_ms_min, params.interval_ms_max
            );
            return Err(FieldError::param("clocks", "interval_ms_min", why));
        }
        check_ms(&path("interval_ms_max"), params.interval_ms_max, 0)?;
        if params.local_weight == 0 && params.send_weight == 0 && params.broadcast_weight == 0 {
            let why = "local_weight, send_weight and broadcast_weight are all 0: nothing to do";
            return Err(FieldError::param("clocks", "local_weight", why));
        }
        Ok(())
    }

    fn facts(&self, params: &ClocksParams, scenario: &ScenarioView<'_>) -> Facts {
        let processes = u128::from(params.processes);
        // Events per action: its timer, plus the action's own events by weight (a local
        // event 1, a send and its receive 2, a broadcast 1 + processes - 1).
        let weights = [params.local_weight, params.send_weight, params.broadcast_weight].map(u128::from);
        let total = weights.iter().sum::<u128>().max(1);
        let per_action = 1 + (weights[0] + 2 * weights[1] + processes * weights[2]).div_ceil(total);
        let events = processes * (1 + u128::from(params.actions_per_process) * per_action);
        let events = events.min(u128::from(scenario.max_steps));
        Facts {
            n_nodes: params.processes as usize,
            node_names: format!("0..={} are processes", params.processes.saturating_sub(1)),
            operations: params.processes as usize * params.actions_per_process as usize,
            memory_bytes: processes * NODE_BYTES
                + events * (CLOCK_STAMPS_PER_EVENT * 4 * processes + EVENT_BYTES),
        }
    }

    fn smaller(&self, params: &ClocksParams) -> Vec<ClocksParams> {
        let (processes, actions) = (params.processes, params.actions_per_process);
        vec![
            ClocksParams { processes: (processes - 1).max(2), ..params.clone() },
            ClocksParams { actions_per_process: actions / 2, ..params.clone() },
            ClocksParams { actions_per_process: actions.saturating_sub(1), ..params.clone() },
        ]
    }

    fn setup(&self, params: &ClocksParams, _workload: &Workload, _seed: u64) -> Setup<ClockProcess> {
        setup(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::{Latency, LinkConfig, NetworkConfig, Outcome, PhysicalClock, SimConfig, Simulation};

    fn run(params: &ClocksParams, seed: u64, clocks: Vec<PhysicalClock>) -> Outcome {
        let mut link = LinkConfig::reliable(Latency::uniform_ms(1, 10));
        link.duplicate_probability = 0.1;
        let mut config = SimConfig::new(seed, NetworkConfig::uniform(link));
        config.clocks = clocks;
        let setup = setup(params);
        let mut sim = Simulation::new(config, setup.n_nodes, setup.build);
        for invariant in setup.invariants {
            sim.add_invariant(invariant);
        }
        sim.run().outcome
    }

    /// The first event at which some `a -> e` breaks a Lamport invariant, found by
    /// comparing every pair: `same_process_repeats` also counts two events of one process
    /// with equal stamps, as `lamport-total-order` does.
    fn first_broken_by_all_pairs(
        causality: &Causality,
        lamport: &[LamportTime],
        out_of_order: impl Fn(EventId, EventId) -> bool,
        same_process_repeats: bool,
    ) -> Option<EventId> {
        let events = causality.events();
        events.iter().map(|e| e.id).find(|&e| {
            events[..e.index()].iter().any(|a| {
                let repeats = same_process_repeats
                    && a.node == causality.event(e).node
                    && lamport[a.id.index()] == lamport[e.index()];
                repeats || (causality.happened_before(a.id, e) && out_of_order(a.id, e))
            })
        })
    }

    /// Checking each event's incoming edges finds the same first violation as comparing
    /// every pair, for random runs stamped by Lamport's rules and then corrupted here and
    /// there (some runs stay correct, most do not).
    #[test]
    fn edge_checks_agree_with_all_pairs() {
        use sim_core::{MsgId, SimRng, SimTime, Stream};
        let at = (SimTime::ZERO, LocalTime::default());
        let (mut caught, mut passed) = (0, 0);
        for seed in 0..400 {
            let mut rng = SimRng::new(seed, Stream::Workload);
            let n_nodes = 1 + rng.below(4) as usize;
            let mut causality = Causality::new(n_nodes);
            let mut lamport: Vec<LamportTime> = Vec::new();
            let mut clocks = vec![0u64; n_nodes];
            let mut in_flight: Vec<(NodeId, NodeId, MsgId, EventId)> = Vec::new();
            for step in 0..30 {
                let node = NodeId(rng.below(n_nodes as u64) as u32);
                let (kind, received) = match rng.below(3) {
                    0 if !in_flight.is_empty() => {
                        let (from, to, msg_id, send) =
                            in_flight.remove(rng.below(in_flight.len() as u64) as usize);
                        (NodeEventKind::Receive { from, msg_id, send }, Some((to, send)))
                    }
                    1 => {
                        let to = NodeId(rng.below(n_nodes as u64) as u32);
                        (NodeEventKind::Send { to, msg_id: MsgId(step) }, None)
                    }
                    _ => (NodeEventKind::Local, None),
                };
                let node = received.map_or(node, |(to, _)| to);
                let id = causality.record(node, kind, at, String::new());
                if let NodeEventKind::Send { to, msg_id } = kind {
                    causality.note_message(msg_id, id);
                    in_flight.push((node, to, msg_id, id));
                }
                let clock = &mut clocks[node.index()];
                if let Some((_, send)) = received {
                    *clock = (*clock).max(lamport[send.index()].0);
                }
                *clock += 1;
                // Now and then a wrong stamp: one too low, or the clock not moving.
                let stamp = match rng.below(40) {
                    0 => clock.saturating_sub(1),
                    1 => clock.saturating_sub(1 + rng.below(3)),
                    _ => *clock,
                };
                lamport.push(LamportTime(stamp));
            }
            let stamp = |id: EventId| lamport[id.index()];
            let events = causality.events();
            let by_edges = events.iter().find(|e| clock_condition_broken(&causality, e, stamp).is_some());
            let by_pairs =
                first_broken_by_all_pairs(&causality, &lamport, |a, e| stamp(a) >= stamp(e), false);
            assert_eq!(by_edges.map(|e| e.id), by_pairs, "clock condition, seed {seed}");
            let pair = |id: EventId| (stamp(id), causality.event(id).node);
            let by_edges = events.iter().find(|e| total_order_broken(&causality, e, stamp).is_some());
            let by_pairs = first_broken_by_all_pairs(&causality, &lamport, |a, e| pair(a) >= pair(e), true);
            assert_eq!(by_edges.map(|e| e.id), by_pairs, "total order, seed {seed}");
            if by_pairs.is_some() {
                caught += 1;
            } else {
                passed += 1;
            }
        }
        assert!(caught > 100 && passed > 50, "{caught} violating runs, {passed} correct ones");
    }

    #[test]
    fn correct_clocks_pass() {
        assert_eq!(run(&ClocksParams::default(), 1, Vec::new()), Outcome::Pass);
    }

    #[test]
    fn notes_order_fails_on_two_events_of_one_process() {
        let params = ClocksParams { vector_order: VectorOrder::Notes, ..ClocksParams::default() };
        let outcome = run(&params, 1, Vec::new());
        let violation = outcome.violation().expect("caught");
        assert_eq!(violation.invariant, VECTOR_CLOCK_EXACT);
        assert!(violation.message.contains("n1:1 (start) -> n1:2 (timer t1)"), "{}", violation.message);
    }

    #[test]
    fn notes_receive_fails_at_a_message() {
        let params = ClocksParams { vector_receive: VectorReceive::Notes, ..ClocksParams::default() };
        let violation = run(&params, 1, Vec::new()).violation().cloned().expect("caught");
        assert_eq!(violation.invariant, VECTOR_CLOCK_EXACT);
        assert!(violation.message.contains("receive"), "{}", violation.message);
        println!("{}", violation.message);
    }

    #[test]
    fn skewed_physical_clocks_fail_where_lamport_holds() {
        let clocks = vec![PhysicalClock { offset_micros: 50_000, drift_ppm: 0 }, PhysicalClock::PERFECT];
        let violation = run(&ClocksParams::default(), 1, clocks).violation().cloned().expect("caught");
        assert_eq!(violation.invariant, PHYSICAL_CLOCK_CONDITION);
        println!("{}", violation.message);
    }
}
