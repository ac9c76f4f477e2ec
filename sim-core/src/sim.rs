//! The event loop: one thread, one queue of events ordered by (virtual time, insertion
//! sequence), one step per event.
//!
//! Each step pops the earliest event, advances virtual time to it (idle time is skipped,
//! never ticked through), runs the node handler it concerns (whose effects, sends through
//! the network and timers, apply as the handler asks for them), and then runs every
//! invariant. The first violation ends the run. A run also ends when the queue drains, at
//! the liveness deadline, or at a run limit (`max_steps`, `max_time`), each a reported
//! [`Outcome`].
//!
//! Fault phases: faults come from a timeline. At `heal_at` the network heals (partitions
//! end, loss and duplication stop) and the liveness phase begins; at
//! `heal_at + liveness_window` the end-of-run checks run whether or not the queue drained,
//! unless the run is still making progress: the deadline moves to `liveness_window` after
//! the last client operation that completed, so a slow network (seconds a message) is not
//! taken for a stuck protocol. The checks run once a whole window passes with no progress.

use crate::causality::{Causality, EventId, NodeEventKind};
use crate::history::History;
use crate::invariant::{CheckError, Invariant, Limit, Outcome, Phase, Violation};
use crate::network::{DropReason, Network, NetworkConfig, Partition, Verdict};
use crate::node::{Context, Coverage, Message, Node, TimerId};
use crate::physical::{LocalTime, PhysicalClock};
use crate::rng::{SimRng, Stream};
use crate::time::{NodeId, SimDuration, SimTime};
use crate::trace::{Code, MsgId, Trace, TraceEvent, TraceMode, TraceRecord};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::rc::Rc;

/// The event queue the loop uses (see `queue.rs` for the choice and the alternative).
type EventQueue<T> = crate::queue::WheelQueue<T>;

/// The default of `SimConfig::max_steps`, and of a scenario's `limits.max_steps`.
pub const DEFAULT_MAX_STEPS: u64 = 1_000_000;

/// The default of `SimConfig::search_budget`: a linearizability search's memo holds 32
/// bytes a configuration, so about 100 MB at most.
pub const DEFAULT_SEARCH_BUDGET: usize = 3_000_000;

/// A fault on the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// The node stops: its volatile state and timers are lost, messages to it are dropped.
    Crash(NodeId),
    /// The node is rebuilt from its durable storage and started again.
    Restart(NodeId),
    /// A partition starts; it lasts until a `Heal` with the same id or, unless it is
    /// `lasting`, until the network heals. A lasting partition (a scenario's partition
    /// with no end) lasts to the end of the run.
    Partition {
        /// The partition's number, matched by its `Heal`.
        id: u32,
        /// Which nodes are cut off from which.
        partition: Partition,
        /// Whether it outlasts the network's heal (see above).
        lasting: bool,
    },
    /// The partition with this id ends.
    Heal {
        /// The number of the partition that ends.
        id: u32,
    },
}

/// A fault and when it happens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScheduledFault {
    /// When it happens, in virtual time.
    pub at: SimTime,
    /// What happens.
    pub fault: Fault,
}

/// Everything a run needs besides its nodes and invariants.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The one seed every random choice of the run comes from.
    pub seed: u64,
    /// The network's latency, loss, duplication and ordering.
    pub network: NetworkConfig,
    /// The faults on the timeline, each happening at its `at`.
    pub faults: Vec<ScheduledFault>,
    /// A run stops (and reports `Limit::MaxSteps`, never a pass) after this many steps
    /// (default [`DEFAULT_MAX_STEPS`]).
    pub max_steps: u64,
    /// A run stops (and reports `Limit::MaxTime`) before any event past this time.
    pub max_time: SimTime,
    /// When the network heals and the liveness phase starts; `None`: never.
    pub heal_at: Option<SimTime>,
    /// How many configurations a bounded check (a linearizability search) may visit
    /// before it reports itself undecided ([`crate::CheckError::Undecided`]).
    pub search_budget: usize,
    /// How long after `heal_at`, and after the last operation that completed since, the
    /// end-of-run checks wait for the run to settle (see the module doc).
    pub liveness_window: SimDuration,
    /// When an open-ended run (one whose queue never drains, like a load generator) ends
    /// normally: its end-of-run checks run then. `None`: at the drained queue or a deadline.
    /// An open-ended run needs it (or `heal_at`, whose liveness deadline also ends a run):
    /// without an end it runs into `max_steps` or `max_time`, which is reported as a limit,
    /// never as a pass.
    pub end_at: Option<SimTime>,
    /// How much of the trace the run keeps (the hash is always computed).
    pub trace_mode: TraceMode,
    /// Track ground-truth causality (see the `causality` module). Also turned on by any
    /// invariant that needs it.
    pub causality: bool,
    /// Give each causal event a readable label (its message or timer, `{:?}`), for the
    /// ShiViz, DOT and explain exports. Costs a string per event; checkers do not need it.
    pub causality_labels: bool,
    /// Each node's physical clock, by node index; nodes past the end have perfect clocks.
    pub clocks: Vec<PhysicalClock>,
}

impl SimConfig {
    /// A config with the given seed and network, no faults, and generous limits.
    pub fn new(seed: u64, network: NetworkConfig) -> SimConfig {
        SimConfig {
            seed,
            network,
            faults: Vec::new(),
            max_steps: DEFAULT_MAX_STEPS,
            max_time: SimTime::from_millis(3_600_000),
            heal_at: None,
            liveness_window: SimDuration::from_millis(60_000),
            search_budget: DEFAULT_SEARCH_BUDGET,
            end_at: None,
            trace_mode: TraceMode::Recent(32),
            causality: false,
            causality_labels: false,
            clocks: Vec::new(),
        }
    }
}

/// Message, byte and timer counts for one node (or all of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Messages this node sent.
    pub sent: u64,
    /// Messages delivered to this node (each copy counts).
    pub delivered: u64,
    /// Messages this node sent that were lost (loss, partition, crashed receiver).
    pub dropped: u64,
    /// Extra copies the network made of this node's messages.
    pub duplicated: u64,
    /// Bytes of messages this node sent (their postcard encodings).
    pub bytes_sent: u64,
    /// Bytes of messages delivered to this node.
    pub bytes_delivered: u64,
    /// Timers of this node that fired.
    pub timers_fired: u64,
}

impl Counters {
    fn add(&mut self, other: &Counters) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.dropped += other.dropped;
        self.duplicated += other.duplicated;
        self.bytes_sent += other.bytes_sent;
        self.bytes_delivered += other.bytes_delivered;
        self.timers_fired += other.timers_fired;
    }
}

/// What a finished run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The run's seed.
    pub seed: u64,
    /// How the run ended: a pass, a violation, or a limit.
    pub outcome: Outcome,
    /// Steps taken (one per event processed).
    pub steps: u64,
    /// The virtual time the run ended at.
    pub time: SimTime,
    /// Counts summed over all nodes.
    pub totals: Counters,
    /// Counts for each node, by node index.
    pub per_node: Vec<Counters>,
    /// The trace hash, version 1 (see the `trace` module).
    pub trace_hash: String,
}

#[derive(Clone, Debug)]
pub(crate) enum EventKind<M, T> {
    Start(NodeId),
    Deliver {
        from: NodeId,
        to: NodeId,
        msg_id: MsgId,
        bytes: u32,
        msg: M,
    },
    Timer {
        node: NodeId,
        incarnation: u32,
        id: TimerId,
        timer: T,
    },
    /// Boxed: faults are rare, and every queued event is as large as the largest variant.
    Fault(Box<Fault>),
    HealNetwork,
    /// The end-of-run checks run now, unless an operation completed within the liveness
    /// window before it (then the deadline moves).
    LivenessDeadline,
    /// An open-ended run's normal end (`SimConfig::end_at`).
    EndAt,
}

/// A node's place in the world. In C layout, cache-line aligned, with what every delivery
/// touches first (the node, its counters) at the start, so that with thousands of nodes a
/// delivery to a node not in cache costs as few cache lines as can be: 10,000 nodes' slots
/// do not fit in cache, and counters in a table of their own cost a miss of their own per
/// delivery (ping N=10,000 K=10: 4.2 M deliveries/s before, about 5 M after).
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub(crate) struct Slot<N: Node> {
    pub(crate) state: Option<N>,
    pub(crate) counters: Counters,
    /// Bumped at each crash, so timers set before it never fire after it.
    pub(crate) incarnation: u32,
    pub(crate) clock: PhysicalClock,
    pub(crate) durable: N::Durable,
    /// The node's own random stream, made when it first draws: most nodes never do, and
    /// explore copies every slot at every branch (a generator is some 300 bytes).
    pub(crate) rng: Option<Box<SimRng>>,
}

/// A message in flight, as invariants see it.
#[derive(Debug)]
pub struct InFlight<'a, M> {
    /// The node that sent it.
    pub from: NodeId,
    /// The node it is addressed to.
    pub to: NodeId,
    /// The id of this copy.
    pub msg_id: MsgId,
    /// When it is due to arrive.
    pub arrives: SimTime,
    /// The message.
    pub msg: &'a M,
}

/// The simulated world: nodes, network, queue, trace, history. Invariants read it.
#[derive(Clone)]
pub struct World<N: Node> {
    pub(crate) seed: u64,
    pub(crate) now: SimTime,
    pub(crate) step: u64,
    pub(crate) slots: Vec<Slot<N>>,
    pub(crate) queue: EventQueue<EventKind<N::Msg, N::Timer>>,
    pub(crate) network: Network,
    pub(crate) trace: Trace<N::Msg, N::Timer>,
    pub(crate) history: History<N::Op>,
    /// The timers set and not yet fired or cancelled, with the node that set each.
    pub(crate) live_timers: BTreeMap<TimerId, NodeId>,
    pub(crate) next_timer_id: u64,
    pub(crate) next_msg_id: u64,
    pub(crate) healed: bool,
    pub(crate) coverage: Coverage,
    pub(crate) n_in_flight: usize,
    /// The id the next node event gets (counted whether or not causality is tracked).
    pub(crate) next_event: u64,
    pub(crate) causality: Option<Causality>,
    pub(crate) causality_labels: bool,
    pub(crate) liveness_window: SimDuration,
    pub(crate) search_budget: usize,
    /// Each fault that fired so far, as violation reports show it.
    pub(crate) faults_fired: Vec<String>,
    /// Explore numbers each node's timers on its own (`t1000001` is n0's first), so that
    /// a node's state, which holds its timers' ids, does not depend on how other nodes'
    /// steps interleaved with its own; `None` (every run): one count for all.
    pub(crate) timers_by_node: Option<Vec<u64>>,
    /// Explore picks each next event itself: what a step schedules is kept here, in order,
    /// for it to take, instead of going into the queue; `None` (every run): the queue.
    pub(crate) captured: Option<Captured<N>>,
    /// The next captured event's scheduling number.
    pub(crate) capture_seq: u64,
}

/// An event scheduled while explore runs the world: it waits here to be chosen.
#[derive(Clone, Debug)]
pub(crate) struct Pending<M, T> {
    pub(crate) at: u64,
    /// Scheduling order, which breaks ties between equal times.
    pub(crate) seq: u64,
    pub(crate) event: EventKind<M, T>,
}

/// The events waiting to be chosen while explore runs the world.
pub(crate) type Captured<N> = Vec<Pending<<N as Node>::Msg, <N as Node>::Timer>>;

/// What ran a handler: the node event that the handler's run is.
#[derive(Clone, Copy, Debug)]
enum Cause {
    Start,
    Restart,
    Timer(TimerId),
    Receive { from: NodeId, msg_id: MsgId },
}

impl<N: Node> World<N> {
    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current virtual time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Steps taken so far (one per event processed).
    pub fn step(&self) -> u64 {
        self.step
    }

    /// How many nodes the world has, up or down.
    pub fn n_nodes(&self) -> usize {
        self.slots.len()
    }

    /// A node's state, or `None` while it is crashed.
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.slots[id.index()].state.as_ref()
    }

    /// Every node with its state (`None` while crashed), in id order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, Option<&N>)> {
        self.slots.iter().enumerate().map(|(i, slot)| (NodeId(i as u32), slot.state.as_ref()))
    }

    /// Whether a node is up (not crashed).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.slots[id.index()].state.is_some()
    }

    /// A node's durable storage, which survives its crashes.
    pub fn durable(&self, id: NodeId) -> &N::Durable {
        &self.slots[id.index()].durable
    }

    /// Messages in flight, in no particular (but deterministic) order.
    pub fn in_flight(&self) -> impl Iterator<Item = InFlight<'_, N::Msg>> {
        let captured = self.captured.iter().flatten().map(|p| (p.at, &p.event));
        self.queue.iter().chain(captured).filter_map(|(time, event)| match event {
            EventKind::Deliver { from, to, msg_id, msg, .. } => Some(InFlight {
                from: *from,
                to: *to,
                msg_id: *msg_id,
                arrives: SimTime::from_micros(time),
                msg,
            }),
            _ => None,
        })
    }

    /// The client operations recorded so far.
    pub fn history(&self) -> &History<N::Op> {
        &self.history
    }

    /// A node's message, byte and timer counts.
    pub fn counters(&self, id: NodeId) -> &Counters {
        &self.slots[id.index()].counters
    }

    /// Counts summed over all nodes.
    pub fn totals(&self) -> Counters {
        let mut totals = Counters::default();
        for c in self.slots.iter().map(|slot| &slot.counters) {
            totals.add(c);
        }
        totals
    }

    /// The trace kept so far (as much as the trace mode keeps).
    pub fn trace(&self) -> impl Iterator<Item = &TraceRecord<N::Msg, N::Timer>> {
        self.trace.records()
    }

    /// The trace hash so far (version 1, see the `trace` module).
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    /// How many times each "sometimes" point was reached so far.
    pub fn coverage(&self) -> &Coverage {
        &self.coverage
    }

    /// How long the end-of-run checks wait after the last completed operation (see the
    /// module doc): a liveness failure means no operation completed for this long.
    pub fn liveness_window(&self) -> SimDuration {
        self.liveness_window
    }

    /// How many configurations a bounded check may visit before it reports itself
    /// undecided (`SimConfig::search_budget`).
    pub fn search_budget(&self) -> usize {
        self.search_budget
    }

    /// Whether the network has healed (the liveness phase has begun).
    pub fn healed(&self) -> bool {
        self.healed
    }

    /// The ground-truth causal record, if causality is tracked.
    pub fn causality(&self) -> Option<&Causality> {
        self.causality.as_ref()
    }

    /// A node's physical clock.
    pub fn clock(&self, id: NodeId) -> PhysicalClock {
        self.slots[id.index()].clock
    }

    /// What a node's physical clock reads now.
    pub fn local_time(&self, id: NodeId) -> LocalTime {
        self.slots[id.index()].clock.read(self.now)
    }

    // The causal record is kept by the helpers below, each called only when tracking is on
    // and never inlined, so that the event loop's hot functions stay as small (and as
    // inlined) as they are without tracking.

    /// Records a node event; checks that it gets the id the handler was told.
    fn record_event(&mut self, node: NodeId, event: EventId, kind: NodeEventKind, label: String) {
        let at = (self.now, self.slots[node.index()].clock.read(self.now));
        let causality = self.causality.as_mut().expect("causality is tracked");
        let recorded = causality.record(node, kind, at, label);
        assert_eq!(recorded, event, "node events recorded out of order");
    }

    /// Records the event of a handler about to run on `node`: it gets the next event id.
    /// `detail` is the message or timer, for the label.
    #[inline(never)]
    fn record_handler(&mut self, node: NodeId, cause: Cause, detail: &dyn Debug) {
        assert!(self.is_up(node), "a handler event for {node}, which is down");
        let event = EventId(self.next_event);
        let causality = self.causality.as_ref().expect("causality is tracked");
        // Without labels, String::new() allocates nothing.
        let labels = self.causality_labels;
        let (kind, label) = match cause {
            Cause::Start => (NodeEventKind::Start, if labels { "start".to_string() } else { String::new() }),
            Cause::Restart => {
                (NodeEventKind::Restart, if labels { "restart".to_string() } else { String::new() })
            }
            Cause::Timer(timer_id) => {
                let label = if labels {
                    format!("timer t{} fires: {detail:?}", timer_id.number())
                } else {
                    String::new()
                };
                (NodeEventKind::Timer { timer_id }, label)
            }
            Cause::Receive { from, msg_id } => {
                let send = causality.send_of(msg_id).expect("every delivered message was sent");
                let label = if labels {
                    format!("receive m{} from {from}: {detail:?}", msg_id.0)
                } else {
                    String::new()
                };
                (NodeEventKind::Receive { from, msg_id, send }, label)
            }
        };
        self.record_event(node, event, kind, label);
    }

    #[inline(never)]
    fn record_send(&mut self, from: NodeId, to: NodeId, msg_id: MsgId, event: EventId, msg: &N::Msg) {
        let label = if self.causality_labels {
            format!("send m{} to {to}: {msg:?}", msg_id.0)
        } else {
            String::new()
        };
        self.record_event(from, event, NodeEventKind::Send { to, msg_id }, label);
        self.causality.as_mut().expect("causality is tracked").note_message(msg_id, event);
    }

    #[inline(never)]
    pub(crate) fn local_event(&mut self, node: NodeId, label: String, event: EventId) {
        self.trace.encode(&label);
        let keep = self.trace.keeps_records();
        let copy = keep.then(|| label.clone());
        self.trace.record(self.step, self.now, Code::Local, &[u64::from(node.0)], true, || {
            TraceEvent::Local { node, label: copy.expect("cloned when records are kept") }
        });
        if self.causality.is_some() {
            self.record_event(node, event, NodeEventKind::Local, label);
        }
    }

    /// Messages in flight right now (O(1), unlike [`World::in_flight`]).
    pub fn n_in_flight(&self) -> usize {
        self.n_in_flight
    }

    pub(crate) fn schedule(&mut self, at: SimTime, kind: EventKind<N::Msg, N::Timer>) {
        if let EventKind::Deliver { .. } = kind {
            self.n_in_flight += 1;
        }
        match &mut self.captured {
            None => self.queue.push(at.as_micros(), kind),
            Some(captured) => {
                captured.push(Pending { at: at.as_micros(), seq: self.capture_seq, event: kind });
                self.capture_seq += 1;
            }
        }
    }

    pub(crate) fn send(&mut self, from: NodeId, to: NodeId, msg: N::Msg, event: EventId) {
        let msg_id = MsgId(self.next_msg_id);
        self.next_msg_id += 1;
        if self.causality.is_some() {
            self.record_send(from, to, msg_id, event, &msg);
        }
        let bytes = self.trace.encode(&msg);
        let (step, now) = (self.step, self.now);
        let counters = &mut self.slots[from.index()].counters;
        counters.sent += 1;
        counters.bytes_sent += bytes as u64;
        self.trace.record(
            step,
            now,
            Code::Send,
            &[u64::from(from.0), u64::from(to.0), msg_id.0],
            true,
            || TraceEvent::Send { from, to, msg_id, msg: msg.clone() },
        );
        match self.network.route(now, from, to, msg.class()) {
            Verdict::Dropped(reason) => self.drop_message(from, to, msg_id, reason),
            Verdict::Deliver { at, copy_at } => {
                let bytes = bytes as u32;
                if let Some(copy_at) = copy_at {
                    let copy_id = MsgId(self.next_msg_id);
                    self.next_msg_id += 1;
                    if let Some(causality) = &mut self.causality {
                        causality.note_message(copy_id, event);
                    }
                    self.slots[from.index()].counters.duplicated += 1;
                    let fields = [u64::from(from.0), u64::from(to.0), msg_id.0, copy_id.0];
                    self.trace.record(step, now, Code::Duplicate, &fields, false, || TraceEvent::Duplicate {
                        from,
                        to,
                        msg_id,
                        copy_id,
                    });
                    let copy = msg.clone();
                    self.schedule(at, EventKind::Deliver { from, to, msg_id, bytes, msg });
                    let msg_id = copy_id;
                    self.schedule(copy_at, EventKind::Deliver { from, to, msg_id, bytes, msg: copy });
                } else {
                    self.schedule(at, EventKind::Deliver { from, to, msg_id, bytes, msg });
                }
            }
        }
    }

    pub(crate) fn drop_message(&mut self, from: NodeId, to: NodeId, msg_id: MsgId, reason: DropReason) {
        self.slots[from.index()].counters.dropped += 1;
        let fields = [u64::from(from.0), u64::from(to.0), msg_id.0, reason as u64];
        self.trace.record(self.step, self.now, Code::Drop, &fields, false, || TraceEvent::Drop {
            from,
            to,
            msg_id,
            reason,
        });
    }

    /// Runs one handler of `node` (if it is up); the handler applies its effects through
    /// the [`Context`] as it goes. The handler's run is a node event; with tracking on, the
    /// caller has recorded it (`record_handler`). The node is taken out of its slot while
    /// the handler runs, so that the context can borrow the rest of the world.
    fn dispatch(&mut self, node: NodeId, handler: impl FnOnce(&mut N, &mut Context<'_, N>)) {
        let Some(mut state) = self.slots[node.index()].state.take() else {
            return;
        };
        let event = self.new_event();
        handler(&mut state, &mut Context { node, world: self, event });
        self.slots[node.index()].state = Some(state);
    }

    /// The time of the next event that will run, skipping (and dropping) timers that were
    /// cancelled or set by an earlier incarnation: they vanish without a step.
    #[inline]
    fn next_live_event(&mut self) -> Option<u64> {
        loop {
            let (micros, event) = self.queue.peek()?;
            if let EventKind::Timer { node, incarnation, id, .. } = event {
                let live = self.live_timers.contains_key(id);
                if !live || *incarnation != self.slots[node.index()].incarnation {
                    let id = *id;
                    self.queue.pop();
                    self.live_timers.remove(&id);
                    continue;
                }
            }
            return Some(micros);
        }
    }

    /// A message arrives: dropped at a crashed or cut-off receiver, else handed to it.
    #[inline]
    fn deliver(&mut self, from: NodeId, to: NodeId, msg_id: MsgId, bytes: u32, msg: N::Msg) {
        if !self.is_up(to) {
            self.drop_message(from, to, msg_id, DropReason::Crashed);
        } else if self.network.partitioned(from, to) {
            self.drop_message(from, to, msg_id, DropReason::Partition);
        } else {
            let counters = &mut self.slots[to.index()].counters;
            counters.delivered += 1;
            counters.bytes_delivered += u64::from(bytes);
            let fields = [u64::from(from.0), u64::from(to.0), msg_id.0];
            let copy = self.trace.keeps_records().then(|| msg.clone());
            self.trace.record(self.step, self.now, Code::Deliver, &fields, false, || TraceEvent::Deliver {
                from,
                to,
                msg_id,
                msg: copy.expect("cloned when records are kept"),
            });
            if self.causality.is_some() {
                self.record_handler(to, Cause::Receive { from, msg_id }, &msg);
            }
            self.dispatch(to, |state, ctx| state.on_message(ctx, from, msg));
        }
    }

    /// A live timer fires on its node.
    #[inline]
    fn fire_timer(&mut self, node: NodeId, id: TimerId, timer: N::Timer) {
        self.slots[node.index()].counters.timers_fired += 1;
        let copy = self.trace.keeps_records().then(|| timer.clone());
        self.trace.record(self.step, self.now, Code::TimerFire, &[u64::from(node.0), id.0], false, || {
            TraceEvent::TimerFire { node, timer_id: id, timer: copy.expect("cloned when records are kept") }
        });
        if self.causality.is_some() {
            self.record_handler(node, Cause::Timer(id), &timer);
        }
        self.dispatch(node, |state, ctx| state.on_timer(ctx, timer));
    }

    /// A fault of the timeline happens. A crash of a node that is down, or a restart of one
    /// that is up, changes nothing.
    pub(crate) fn apply_fault(&mut self, fault: Fault, build: &mut Builder<N>) {
        self.record_fault(&fault);
        match fault {
            Fault::Crash(node) => {
                let slot = &mut self.slots[node.index()];
                if slot.state.take().is_some() {
                    slot.incarnation += 1;
                }
            }
            Fault::Restart(node) => {
                let slot = &mut self.slots[node.index()];
                if slot.state.is_none() {
                    slot.state = Some(build(node, &slot.durable));
                    if self.causality.is_some() {
                        self.record_handler(node, Cause::Restart, &());
                    }
                    self.dispatch(node, |state, ctx| state.on_start(ctx));
                }
            }
            Fault::Partition { id, partition, lasting } => self.network.add_partition(id, partition, lasting),
            Fault::Heal { id } => {
                self.network.remove_partition(id);
            }
        }
    }

    /// One step: the event, popped by the caller, leaves the queue (a delivery leaves the
    /// network, a timer stops being live) and happens. True if it is the run's end.
    #[inline]
    fn apply_event(&mut self, event: EventKind<N::Msg, N::Timer>, build: &RefCell<Builder<N>>) -> bool {
        match &event {
            EventKind::Deliver { .. } => self.n_in_flight -= 1,
            EventKind::Timer { id, .. } => {
                self.live_timers.remove(id);
            }
            _ => {}
        }
        self.step += 1;
        match event {
            EventKind::Start(node) => self.start(node),
            EventKind::Deliver { from, to, msg_id, bytes, msg } => self.deliver(from, to, msg_id, bytes, msg),
            EventKind::Timer { node, id, timer, .. } => self.fire_timer(node, id, timer),
            EventKind::Fault(fault) => self.apply_fault(*fault, &mut build.borrow_mut()),
            EventKind::HealNetwork => self.heal_network(),
            EventKind::LivenessDeadline | EventKind::EndAt => return true,
        }
        false
    }

    /// The network heals: partitions end (all but lasting ones), loss and duplication stop.
    fn heal_network(&mut self) {
        self.healed = true;
        self.network.heal();
        self.trace.record(self.step, self.now, Code::NetworkHealed, &[], false, || TraceEvent::NetworkHealed);
    }

    /// The id of the next node event (counted whether or not causality is tracked).
    #[inline]
    pub(crate) fn new_event(&mut self) -> EventId {
        let event = EventId(self.next_event);
        self.next_event += 1;
        event
    }

    pub(crate) fn set_timer(&mut self, node: NodeId, after: SimDuration, timer: N::Timer) -> TimerId {
        let id = match &mut self.timers_by_node {
            None => {
                self.next_timer_id += 1;
                TimerId::new(self.next_timer_id - 1)
            }
            Some(counts) => {
                counts[node.index()] += 1;
                TimerId::new((u64::from(node.0) + 1) * crate::explore::TIMERS_PER_NODE + counts[node.index()])
            }
        };
        self.trace.encode(&timer);
        let fields = [u64::from(node.0), id.0, after.as_micros()];
        self.trace.record(self.step, self.now, Code::TimerSet, &fields, true, || TraceEvent::TimerSet {
            node,
            timer_id: id,
            after,
            timer: timer.clone(),
        });
        self.live_timers.insert(id, node);
        let incarnation = self.slots[node.index()].incarnation;
        self.schedule(self.now + after, EventKind::Timer { node, incarnation, id, timer });
        id
    }

    pub(crate) fn cancel_timer(&mut self, node: NodeId, id: TimerId) {
        // Only the node that set a timer may cancel it.
        if self.live_timers.get(&id) == Some(&node) {
            self.live_timers.remove(&id);
            let fields = [u64::from(node.0), id.0];
            self.trace.record(self.step, self.now, Code::TimerCancel, &fields, false, || {
                TraceEvent::TimerCancel { node, timer_id: id }
            });
        }
    }

    /// How many times `node` has crashed (its incarnation).
    pub(crate) fn incarnation(&self, node: NodeId) -> u32 {
        self.slots[node.index()].incarnation
    }

    pub(crate) fn rng_of(&mut self, node: NodeId) -> &mut SimRng {
        let seed = self.seed;
        self.slots[node.index()].rng.get_or_insert_with(|| Box::new(SimRng::new(seed, Stream::Node(node))))
    }

    pub(crate) fn durable_of(&mut self, node: NodeId) -> &mut N::Durable {
        &mut self.slots[node.index()].durable
    }

    pub(crate) fn history_mut(&mut self) -> &mut History<N::Op> {
        &mut self.history
    }

    pub(crate) fn reached(&mut self, point: &'static str) {
        *self.coverage.entry(point).or_insert(0) += 1;
    }

    fn start(&mut self, node: NodeId) {
        self.trace.record(self.step, self.now, Code::Start, &[u64::from(node.0)], false, || {
            TraceEvent::Start { node }
        });
        if self.causality.is_some() {
            self.record_handler(node, Cause::Start, &());
        }
        self.dispatch(node, |state, ctx| state.on_start(ctx));
    }

    fn record_fault(&mut self, fault: &Fault) {
        let (step, now) = (self.step, self.now);
        self.faults_fired.push(format!("{now}: {}", describe_fault(fault)));
        match fault {
            Fault::Crash(node) => {
                self.trace.record(step, now, Code::Crash, &[u64::from(node.0)], false, || TraceEvent::Crash {
                    node: *node,
                })
            }
            Fault::Restart(node) => {
                self.trace.record(step, now, Code::Restart, &[u64::from(node.0)], false, || {
                    TraceEvent::Restart { node: *node }
                })
            }
            Fault::Partition { id, partition, .. } => {
                let mut fields: Vec<u64> = vec![u64::from(*id)];
                fields.extend(partition.nodes().iter().map(|n| u64::from(n.0)));
                self.trace.record(step, now, Code::Partition, &fields, false, || TraceEvent::Partition {
                    partition_id: *id,
                    partition: Box::new(partition.clone()),
                })
            }
            Fault::Heal { id } => self.trace.record(step, now, Code::Heal, &[u64::from(*id)], false, || {
                TraceEvent::Heal { partition_id: *id }
            }),
        }
    }
}

/// A copy of the whole run so far (world, invariants and their state), which then goes its
/// own way: what `dsim explore` does at every branch of its search. Cheap for the small
/// worlds explore searches; the trace is copied too, so explore keeps only its hash.
impl<N: Node> Clone for Simulation<N> {
    fn clone(&self) -> Self {
        Simulation {
            world: self.world.clone(),
            invariants: self.invariants.iter().map(|invariant| invariant.fork()).collect(),
            build: Rc::clone(&self.build),
            max_steps: self.max_steps,
            max_time: self.max_time,
            outcome: self.outcome.clone(),
        }
    }
}

/// Builds node `id` from its durable storage: at the start, and again at each restart.
/// It must be a pure function of the two: restarts in every branch of an exploration
/// share it.
pub type Builder<N> = Box<dyn FnMut(NodeId, &<N as Node>::Durable) -> N>;

/// A simulation: the world, the invariants, and how to build (and rebuild) each node.
pub struct Simulation<N: Node> {
    world: World<N>,
    invariants: Vec<Box<dyn Invariant<N>>>,
    /// Shared by a simulation's clones (a builder is a pure function of id and storage).
    build: Rc<RefCell<Builder<N>>>,
    max_steps: u64,
    max_time: SimTime,
    outcome: Option<Outcome>,
}

impl<N: Node> Simulation<N> {
    /// A simulation of `n_nodes` nodes, each built by `build(id, durable)` at the start and
    /// again at each restart (with the durable storage the node had).
    pub fn new(
        config: SimConfig,
        n_nodes: usize,
        build: impl FnMut(NodeId, &N::Durable) -> N + 'static,
    ) -> Simulation<N> {
        let mut build: Builder<N> = Box::new(build);
        let slots = (0..n_nodes)
            .map(|i| {
                let id = NodeId(i as u32);
                let durable = N::Durable::default();
                Slot {
                    state: Some(build(id, &durable)),
                    counters: Counters::default(),
                    durable,
                    incarnation: 0,
                    rng: None,
                    clock: config.clocks.get(i).copied().unwrap_or_default(),
                }
            })
            .collect();
        let mut world = World {
            seed: config.seed,
            now: SimTime::ZERO,
            step: 0,
            slots,
            queue: EventQueue::default(),
            network: Network::new(config.network, config.seed),
            trace: Trace::new(config.trace_mode),
            history: History::default(),
            live_timers: BTreeMap::new(),
            next_timer_id: 0,
            next_msg_id: 0,
            healed: false,
            coverage: Coverage::new(),
            n_in_flight: 0,
            next_event: 0,
            causality: config.causality.then(|| Causality::new(n_nodes)),
            causality_labels: config.causality_labels,
            liveness_window: config.liveness_window,
            search_budget: config.search_budget,
            faults_fired: Vec::new(),
            timers_by_node: None,
            captured: None,
            capture_seq: 0,
        };
        assert!(
            config.clocks.len() <= n_nodes,
            "{} physical clocks for {n_nodes} nodes",
            config.clocks.len()
        );
        for i in 0..n_nodes {
            world.schedule(SimTime::ZERO, EventKind::Start(NodeId(i as u32)));
        }
        for fault in config.faults {
            for node in fault_nodes(&fault.fault) {
                assert!(node.index() < n_nodes, "a fault names {node}, but there are {n_nodes} nodes");
            }
            world.schedule(fault.at, EventKind::Fault(Box::new(fault.fault)));
        }
        if let Some(end_at) = config.end_at {
            world.schedule(end_at, EventKind::EndAt);
        }
        if let Some(heal_at) = config.heal_at {
            world.schedule(heal_at, EventKind::HealNetwork);
            world.schedule(heal_at + config.liveness_window, EventKind::LivenessDeadline);
        }
        Simulation {
            world,
            invariants: Vec::new(),
            build: Rc::new(RefCell::new(build)),
            max_steps: config.max_steps,
            max_time: config.max_time,
            outcome: None,
        }
    }

    /// Adds an invariant, checked after every step and at the end. One that needs the
    /// causal record turns causality tracking on; it must be added before the first step.
    pub fn add_invariant(&mut self, invariant: Box<dyn Invariant<N>>) {
        if invariant.needs_causality() {
            self.track_causality();
        }
        self.invariants.push(invariant);
    }

    /// Turns ground-truth causality tracking on. Only before the first step: a record that
    /// missed events would be wrong.
    pub fn track_causality(&mut self) {
        if self.world.causality.is_none() {
            assert_eq!(self.world.step, 0, "causality tracking must start before the first step");
            self.world.causality = Some(Causality::new(self.world.slots.len()));
        }
    }

    /// The world the nodes live in: what invariants read.
    pub fn world(&self) -> &World<N> {
        &self.world
    }

    /// The full trace's older records, taken out of memory (see [`Trace::drain_settled`]):
    /// a caller that writes the trace as the run goes calls this between steps.
    pub fn drain_trace(&mut self) -> Vec<Vec<TraceRecord<N::Msg, N::Timer>>> {
        self.world.trace.drain_settled()
    }

    /// Runs to the end and reports.
    pub fn run(&mut self) -> Report {
        while self.step().is_none() {}
        self.report()
    }

    /// The report of the run so far (its outcome is `Pass` until the run ends otherwise).
    pub fn report(&self) -> Report {
        Report {
            seed: self.world.seed,
            outcome: self.outcome.clone().unwrap_or(Outcome::Pass),
            steps: self.world.step,
            time: self.world.now,
            totals: self.world.totals(),
            per_node: self.world.slots.iter().map(|slot| slot.counters).collect(),
            trace_hash: format!("{:016x}", self.world.trace.hash()),
        }
    }

    /// Processes one event. Returns the outcome once the run is over (and keeps returning
    /// it).
    pub fn step(&mut self) -> Option<&Outcome> {
        if self.outcome.is_none() {
            self.outcome = self.advance();
        }
        self.outcome.as_ref()
    }

    fn advance(&mut self) -> Option<Outcome> {
        let world = &mut self.world;
        let Some(micros) = world.next_live_event() else {
            return Some(self.finish());
        };
        // A run limit leaves the next event queued (and the network as it was).
        let at = SimTime::from_micros(micros);
        if world.step >= self.max_steps {
            return Some(Outcome::LimitReached(Limit::MaxSteps { steps: world.step }));
        }
        if at > self.max_time {
            return Some(Outcome::LimitReached(Limit::MaxTime { time: self.max_time }));
        }
        // The event is consumed from here on: a delivery leaves the network (delivered, or
        // dropped at a crashed or cut-off receiver), a timer stops being live.
        let (_, event) = world.queue.pop().expect("just peeked");
        if let EventKind::LivenessDeadline = event {
            // Still progressing: wait a whole window after the last completion. Not a step.
            if let Some(last) = world.history.last_return() {
                let later = last + world.liveness_window;
                if later > at {
                    world.now = at;
                    world.schedule(later, EventKind::LivenessDeadline);
                    return None;
                }
            }
        }
        world.now = at;
        if world.apply_event(event, &self.build) {
            return Some(self.finish());
        }
        self.check_step()
    }

    /// Runs `event`, taken out of the queue by the caller, at `at` (or now, if that is
    /// later): explore's step, which picks the event itself. The run's outcome is set if
    /// an invariant fails (or the event was the run's end).
    pub(crate) fn run_event(&mut self, at: SimTime, event: EventKind<N::Msg, N::Timer>) {
        let world = &mut self.world;
        world.now = world.now.max(at);
        self.outcome =
            if world.apply_event(event, &self.build) { Some(self.finish()) } else { self.check_step() };
    }

    /// A step that changes the world by `change` (explore's drops and duplicates), then
    /// runs the invariants.
    pub(crate) fn run_change(&mut self, change: impl FnOnce(&mut World<N>)) {
        self.world.step += 1;
        change(&mut self.world);
        self.outcome = self.check_step();
    }

    /// Runs the end-of-run checks now (explore, at a state where nothing is left to happen).
    pub(crate) fn end(&mut self) {
        self.outcome = Some(self.finish());
    }

    /// The step limit (`SimConfig::max_steps`).
    pub fn max_steps(&self) -> u64 {
        self.max_steps
    }

    /// Ends the run at its step limit (explore's default order, past `max_steps`).
    pub(crate) fn limit_steps(&mut self) {
        self.outcome = Some(Outcome::LimitReached(Limit::MaxSteps { steps: self.world.step }));
    }

    /// The outcome so far: `None` while the run goes on.
    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    pub(crate) fn world_mut(&mut self) -> &mut World<N> {
        &mut self.world
    }

    fn check_step(&mut self) -> Option<Outcome> {
        for invariant in &mut self.invariants {
            if let Err(error) = invariant.check_step(&self.world) {
                let name = invariant.name();
                return Some(self.violation(name, error, Phase::Safety));
            }
        }
        None
    }

    fn finish(&mut self) -> Outcome {
        for invariant in &mut self.invariants {
            if let Err(error) = invariant.check_end(&self.world) {
                let name = invariant.name();
                return self.violation(name, error, Phase::Liveness);
            }
        }
        Outcome::Pass
    }

    fn violation(&self, invariant: &str, error: CheckError, phase: Phase) -> Outcome {
        // As many recent records as the trace mode keeps; a full trace is on its way to a
        // file, so the report shows only its last `FULL_TRACE_RECENT`.
        let recent = self.world.trace.records();
        let shown = match self.world.trace.mode() {
            TraceMode::Full => FULL_TRACE_RECENT,
            _ => usize::MAX,
        };
        let skip = self.world.trace.len().saturating_sub(shown);
        let (message, undecided) = match error {
            CheckError::Violated(message) => (message, false),
            CheckError::Undecided(message) => (message, true),
        };
        let violation = Violation {
            invariant: invariant.to_string(),
            message,
            phase,
            step: self.world.step,
            time: self.world.now,
            seed: self.world.seed,
            recent: recent.skip(skip).map(|r| r.to_string()).collect(),
            faults: self.world.faults_fired.clone(),
        };
        if undecided {
            Outcome::Undecided(violation)
        } else {
            Outcome::Violation(violation)
        }
    }
}

/// How many records a violation report shows when the whole trace is kept.
const FULL_TRACE_RECENT: usize = 50;

/// A fault as a violation report lists it: `crash n0`, `partition 1: ...`.
fn describe_fault(fault: &Fault) -> String {
    match fault {
        Fault::Crash(node) => format!("crash {node}"),
        Fault::Restart(node) => format!("restart {node}"),
        Fault::Partition { id, partition, lasting } => {
            let end = if *lasting { " (never ends)" } else { "" };
            format!("partition {id}: {partition:?}{end}")
        }
        Fault::Heal { id } => format!("partition {id} ends"),
    }
}

fn fault_nodes(fault: &Fault) -> Vec<NodeId> {
    match fault {
        Fault::Crash(node) | Fault::Restart(node) => vec![*node],
        Fault::Partition { partition, .. } => partition.nodes(),
        Fault::Heal { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an in-flight message costs in the queue besides its payload: the event in the
    /// slab and its 24-byte key. Boxing faults keeps events small.
    #[test]
    fn a_queued_delivery_stays_small() {
        #[derive(Clone, Debug, Serialize)]
        struct Payload(u64, u64);
        let event = std::mem::size_of::<Option<EventKind<Payload, ()>>>();
        assert!(event <= 48 + std::mem::size_of::<Payload>() - 16, "{event} bytes");
    }
}
