//! Exhaustive exploration: every order in which a small run's messages can arrive and its
//! timers fire, and, within budgets, which messages are lost or duplicated and which nodes
//! crash and restart, searched breadth-first or depth-first over the very node code a
//! simulation runs.
//!
//! **Abstracted time.** As in a model checker, any message in flight may arrive next (on a
//! FIFO link, only the oldest one of that link); a node's timers fire in deadline order,
//! but its next timer may fire before any message in flight arrives. Virtual time still
//! moves (an event runs at its own time, or now if that is later), so the nodes' handlers
//! see a clock that never goes back; what the search abstracts is *which* event is next.
//! The scenario's fault timeline and random network faults are not used: faults are the
//! search's own [`Choice`]s, within [`Budgets`] and the protocol's [`FaultModel`].
//!
//! **A synchronous core.** When the fault model bounds delay on the links among nodes
//! `n0..nK` (`delivery_max`, with `among`), those nodes' timeouts mean crashes, and time
//! is not abstracted for them: no step may move the clock past one of their events still
//! pending (a timer of theirs, or a message on one of their links), whoever's step it is.
//! Their events then happen in time order (ties in any order), and the rest (clients'
//! messages and timers) interleave freely with them as long as they do not jump the
//! clock. Without this, a backup's watch timer could fire while the primary's heartbeat
//! timer waits, or a client's retry timer could move the clock past a heartbeat still due,
//! and a live server would be taken for crashed: a false alarm.
//!
//! **One step a decision.** The path to a state is a list of [`Choice`]s (`deliver m4`,
//! `fire t1000002`, `drop m3`, `crash n1`, ...). It is a decision log: following it from
//! the start ([`Branch::follow`]) replays the run exactly, which is how a counterexample
//! becomes a failure file that `dsim replay` re-runs. Message ids are numbered in send
//! order along the path; explore numbers each node's timers on its own (`t1000001` is
//! n0's first timer, `t2000001` n1's), so a node's state does not depend on how other
//! nodes' steps interleaved with its own.
//!
//! **The state hash** ([`Branch::state_hash`], 128 bits, xxh3) covers what decides every
//! future step and verdict: each node's state (or that it is down), durable storage,
//! incarnation and random-stream position; the messages in flight as a multiset per link
//! (as a sequence on a FIFO link); each node's pending timers in deadline order with their
//! ids; the history recorded so far, in order, without times; what is left of the budgets
//! and which nodes count as down. Pruning a state whose hash was seen is sound when each
//! invariant's verdicts depend only on those (its own state being a function of the
//! history it has read): true of every bundled invariant. When the run tracks the causal
//! record (invariants that read happens-before), the record is not hashed; the path is,
//! so such searches prune nothing and explore the tree of executions.

use crate::history::EntryKind;
use crate::invariant::{FaultModel, Outcome, Violation};
use crate::network::{DropReason, LinkOrdering};
use crate::node::{Node, TimerId};
use crate::sim::{EventKind, Pending, Simulation};
use crate::time::{NodeId, SimTime};
use crate::trace::{Code, MsgId, TraceEvent};
use serde::{Deserialize, Serialize};
// The visited set is only asked "seen?", never iterated, and hashes with a fixed hasher:
// no order leaks out of it.
#[allow(clippy::disallowed_types)]
use std::collections::HashSet;
use std::collections::VecDeque;
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;
use std::str::FromStr;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

/// Explore's timer ids: node `i`'s `k`-th timer is `(i + 1) * TIMERS_PER_NODE + k`.
pub const TIMERS_PER_NODE: u64 = 1_000_000;

/// One decision: which event happens next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Choice {
    /// This message in flight arrives.
    Deliver(MsgId),
    /// This timer fires (its node's earliest).
    Fire(TimerId),
    /// This message in flight is lost (a drop of the budget).
    Drop(MsgId),
    /// This message in flight gets a second copy (a duplicate of the budget).
    Duplicate(MsgId),
    /// This node crashes (a crash of the budget).
    Crash(NodeId),
    /// This crashed node restarts.
    Restart(NodeId),
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Deliver(m) => write!(f, "deliver m{}", m.0),
            Choice::Fire(t) => write!(f, "fire t{}", t.number()),
            Choice::Drop(m) => write!(f, "drop m{}", m.0),
            Choice::Duplicate(m) => write!(f, "duplicate m{}", m.0),
            Choice::Crash(n) => write!(f, "crash {n}"),
            Choice::Restart(n) => write!(f, "restart {n}"),
        }
    }
}

/// The forms a decision takes, for error messages.
pub const CHOICE_FORMS: &str =
    "\"deliver mN\", \"fire tN\", \"drop mN\", \"duplicate mN\", \"crash nN\" or \"restart nN\"";

impl FromStr for Choice {
    type Err = String;

    fn from_str(text: &str) -> Result<Choice, String> {
        let bad = || format!("{text:?} is not a decision: one of {CHOICE_FORMS}");
        let (verb, id) = text.split_once(' ').ok_or_else(bad)?;
        let number = |prefix: char| -> Result<u64, String> {
            let digits = id.strip_prefix(prefix).ok_or_else(bad)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            digits.parse().map_err(|_| format!("{text:?}: the number is too large"))
        };
        let node = || -> Result<NodeId, String> {
            u32::try_from(number('n')?).map(NodeId).map_err(|_| format!("{text:?}: no such node"))
        };
        match verb {
            "deliver" => Ok(Choice::Deliver(MsgId(number('m')?))),
            "fire" => Ok(Choice::Fire(TimerId::new(number('t')?))),
            "drop" => Ok(Choice::Drop(MsgId(number('m')?))),
            "duplicate" => Ok(Choice::Duplicate(MsgId(number('m')?))),
            "crash" => Ok(Choice::Crash(node()?)),
            "restart" => Ok(Choice::Restart(node()?)),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Choice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Choice, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How many faults a path may inject.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Messages lost.
    #[serde(default)]
    pub drops: u32,
    /// Messages duplicated.
    #[serde(default)]
    pub duplicates: u32,
    /// Node crashes (each crashed node may restart at any later step).
    #[serde(default)]
    pub crashes: u32,
}

/// What the protocol's fault model lets the search inject: which nodes may crash, and
/// which links are assumed lossless, duplicate-free or timely (see [`FaultModel`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultRules {
    /// The nodes that may crash.
    pub may_crash: Vec<NodeId>,
    /// How many may be down at once.
    pub max_down_at_once: usize,
    /// A restarted node still counts as down (see [`FaultModel::crash_stop`]).
    pub crash_stop: bool,
    /// No message is dropped on links among nodes `n0..nK` (`u32::MAX`: every link).
    pub lossless_among: Option<u32>,
    /// No message is duplicated on links among nodes `n0..nK`.
    pub no_duplicates_among: Option<u32>,
    /// Messages on links among nodes `n0..nK` arrive within a bound: one due before a
    /// timer's deadline arrives before the timer fires, and no step moves the clock past
    /// an event of theirs still pending (see the module doc).
    pub timely_among: Option<u32>,
}

impl From<&FaultModel> for FaultRules {
    fn from(model: &FaultModel) -> FaultRules {
        let assumed = model.network;
        let among = assumed.among.unwrap_or(u32::MAX);
        FaultRules {
            may_crash: model.may_crash.clone(),
            max_down_at_once: model.max_down_at_once,
            crash_stop: model.crash_stop,
            lossless_among: assumed.lossless.then_some(among),
            no_duplicates_among: assumed.no_duplicates.then_some(among),
            timely_among: assumed.delivery_max.is_some().then_some(among),
        }
    }
}

/// Whether the link `from -> to` is among nodes `n0..nK` for an assumption's `K`.
fn assumed(among: Option<u32>, from: NodeId, to: NodeId) -> bool {
    among.is_some_and(|k| from.0 < k && to.0 < k)
}

/// What a search keeps of one state: the simulation there and what explore adds to it.
#[derive(Clone)]
pub struct Branch<N: Node> {
    sim: Simulation<N>,
    left: Budgets,
    rules: Rc<FaultRules>,
    /// Nodes that count as down for `max_down_at_once`, in id order.
    down: Vec<NodeId>,
    history_hash: u128,
    history_seen: usize,
    /// Each node's history entries so far, and operations returned.
    node_entries: Vec<u32>,
    returns: Vec<u32>,
    /// The path's hash, for runs that track the causal record (see the module doc).
    path_hash: u128,
    depth: u32,
}

impl<N: Node> Branch<N> {
    /// The state after every node started: the root of a search over `sim` (a simulation
    /// not yet stepped, built with no fault timeline and no random loss or duplication).
    pub fn root(mut sim: Simulation<N>, budgets: Budgets, rules: FaultRules) -> Branch<N> {
        let n = sim.world().n_nodes();
        sim.world_mut().timers_by_node = Some(vec![0; n]);
        let mut branch = Branch {
            sim,
            left: budgets,
            rules: Rc::new(rules),
            down: Vec::new(),
            history_hash: 0,
            history_seen: 0,
            node_entries: Vec::new(),
            returns: Vec::new(),
            path_hash: 0,
            depth: 0,
        };
        branch.collect();
        while let Some(EventKind::Start(_)) = branch.pending().first().map(|p| &p.event) {
            let start = branch.pending_mut().remove(0);
            branch.sim.run_event(SimTime::from_micros(start.at), start.event);
            branch.collect();
            if branch.sim.outcome().is_some() {
                break;
            }
        }
        branch.note_history();
        branch
    }

    /// The simulation at this state.
    pub fn simulation(&self) -> &Simulation<N> {
        &self.sim
    }

    /// The simulation, taken out.
    pub fn into_simulation(self) -> Simulation<N> {
        self.sim
    }

    /// How the run ended here, if it did (a violation, or an undecided check).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.sim.outcome()
    }

    /// Steps from the root.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// The events waiting to be chosen: taken out of the queue (the start), or captured as
    /// steps scheduled them (see `World::captured`), where `World::in_flight` sees them.
    fn pending(&self) -> &[Pending<N::Msg, N::Timer>] {
        self.sim.world().captured.as_deref().unwrap_or(&[])
    }

    fn pending_mut(&mut self) -> &mut Vec<Pending<N::Msg, N::Timer>> {
        self.sim.world_mut().captured.get_or_insert_with(Vec::new)
    }

    /// Moves what is left in the queue (the nodes' starts) into the pending events, and
    /// forgets timers that can no longer fire (cancelled, or set before their node crashed).
    fn collect(&mut self) {
        let world = self.sim.world_mut();
        let captured = world.captured.get_or_insert_with(Vec::new);
        while let Some((at, event)) = world.queue.pop() {
            captured.push(Pending { at, seq: world.capture_seq, event });
            world.capture_seq += 1;
        }
        let (live, slots) = (&world.live_timers, &world.slots);
        captured.retain(|p| match &p.event {
            EventKind::Timer { node, incarnation, id, .. } => {
                live.contains_key(id) && *incarnation == slots[node.index()].incarnation
            }
            _ => true,
        });
    }

    /// Folds the history entries recorded since the last call into the history's hash: a
    /// sum (so the order of entries at different nodes does not count) of each entry's
    /// hash with its node, its place among that node's entries, and, for an invocation,
    /// how many operations each node had seen return by then (the real-time order
    /// linearizability reads). Interleavings that differ only in orders no check can see
    /// then meet in one state.
    fn note_history(&mut self) {
        let world = self.sim.world();
        let entries = world.history().entries();
        if self.node_entries.len() < world.n_nodes() {
            self.node_entries.resize(world.n_nodes(), 0);
            self.returns.resize(world.n_nodes(), 0);
        }
        for entry in &entries[self.history_seen..] {
            let node = entry.node.index();
            let mut h = Xxh3::new();
            (entry.node, self.node_entries[node], entry.kind_tag()).hash(&mut h);
            entry.op.hash(&mut h);
            match entry.kind {
                EntryKind::Invoke { .. } => self.returns.hash(&mut h),
                EntryKind::Return { .. } => self.returns[node] += 1,
                EntryKind::Note => {}
            }
            self.node_entries[node] += 1;
            self.history_hash = self.history_hash.wrapping_add(h.digest128());
        }
        self.history_seen = entries.len();
    }

    fn is_fifo(&self, from: NodeId, to: NodeId) -> bool {
        self.sim.world().network.config().link(from, to).ordering == LinkOrdering::Fifo
    }

    /// Every decision possible here, in a fixed order: deliveries and timers in
    /// scheduling order, then drops, duplicates, crashes and restarts.
    pub fn choices(&self, out: &mut Vec<Choice>) {
        out.clear();
        let world = self.sim.world();
        let pending = self.pending();
        let now = world.now.as_micros();
        // Among the nodes whose links are assumed timely (a synchronous core, whose
        // timeouts mean crashes), events happen in time order: no event may move the clock
        // past one of theirs still pending, or a timeout there would fire early.
        let timely = |q: &Pending<N::Msg, N::Timer>| match &q.event {
            EventKind::Timer { node, .. } => assumed(self.rules.timely_among, *node, *node),
            EventKind::Deliver { from, to, .. } => assumed(self.rules.timely_among, *from, *to),
            _ => false,
        };
        let jumps_past_timely = |i: usize, p: &Pending<N::Msg, N::Timer>| {
            p.at > now && pending.iter().enumerate().any(|(j, q)| j != i && q.at < p.at && timely(q))
        };
        for (i, p) in pending.iter().enumerate() {
            if self.rules.timely_among.is_some() && jumps_past_timely(i, p) {
                continue;
            }
            match &p.event {
                EventKind::Deliver { from, to, msg_id, .. } => {
                    // On a FIFO link only the oldest message in flight may arrive.
                    let overtakes = self.is_fifo(*from, *to)
                        && pending[..i].iter().any(
                            |q| matches!(&q.event, EventKind::Deliver { from: f, to: t, .. } if f == from && t == to),
                        );
                    if !overtakes {
                        out.push(Choice::Deliver(*msg_id));
                    }
                }
                EventKind::Timer { node, id, .. } => {
                    // A node's earliest timer only; and not before a message due by then
                    // on a link assumed timely.
                    let earlier = pending.iter().any(|q| match &q.event {
                        EventKind::Timer { node: other, .. } => {
                            other == node && (q.at, q.seq) < (p.at, p.seq)
                        }
                        EventKind::Deliver { from, to, .. } => {
                            q.at <= p.at && assumed(self.rules.timely_among, *from, *to)
                        }
                        _ => false,
                    });
                    if !earlier {
                        out.push(Choice::Fire(*id));
                    }
                }
                _ => {}
            }
        }
        // Every message in flight, but on a link the fault model assumes reliable.
        let messages = |among: Option<u32>| {
            pending.iter().filter_map(move |p| match &p.event {
                EventKind::Deliver { from, to, msg_id, .. } => {
                    (!assumed(among, *from, *to)).then_some(*msg_id)
                }
                _ => None,
            })
        };
        if self.left.drops > 0 {
            out.extend(messages(self.rules.lossless_among).map(Choice::Drop));
        }
        if self.left.duplicates > 0 {
            out.extend(messages(self.rules.no_duplicates_among).map(Choice::Duplicate));
        }
        if self.left.crashes > 0 && self.down.len() < self.rules.max_down_at_once {
            for &node in &self.rules.may_crash {
                if node.index() < world.n_nodes() && world.is_up(node) {
                    out.push(Choice::Crash(node));
                }
            }
        }
        for (id, _) in world.nodes().filter(|(_, state)| state.is_none()) {
            out.push(Choice::Restart(id));
        }
    }

    /// Whether nothing is left to happen but injected faults: no message in flight, no
    /// timer pending, no node down. The end-of-run checks run at such a state.
    pub fn is_quiet(&self) -> bool {
        self.pending().is_empty() && self.sim.world().nodes().all(|(_, state)| state.is_some())
    }

    fn take(
        &mut self,
        find: impl Fn(&EventKind<N::Msg, N::Timer>) -> bool,
    ) -> Option<Pending<N::Msg, N::Timer>> {
        let i = self.pending().iter().position(|p| find(&p.event))?;
        Some(self.pending_mut().remove(i))
    }

    fn take_message(&mut self, id: MsgId) -> Pending<N::Msg, N::Timer> {
        self.take(|e| matches!(e, EventKind::Deliver { msg_id, .. } if *msg_id == id))
            .expect("a chosen message is in flight")
    }

    /// Takes a decision that [`Branch::choices`] offered here.
    pub fn apply(&mut self, choice: Choice) {
        self.depth += 1;
        match choice {
            Choice::Deliver(id) => {
                let p = self.take_message(id);
                self.sim.run_event(SimTime::from_micros(p.at), p.event);
            }
            Choice::Fire(id) => {
                let p = self
                    .take(|e| matches!(e, EventKind::Timer { id: t, .. } if *t == id))
                    .expect("a chosen timer is pending");
                self.sim.run_event(SimTime::from_micros(p.at), p.event);
            }
            Choice::Drop(id) => {
                self.left.drops -= 1;
                let p = self.take_message(id);
                let EventKind::Deliver { from, to, msg_id, .. } = p.event else { unreachable!() };
                self.sim.run_change(|world| {
                    world.n_in_flight -= 1;
                    world.drop_message(from, to, msg_id, DropReason::Loss);
                });
            }
            Choice::Duplicate(id) => {
                self.left.duplicates -= 1;
                let original = self
                    .pending()
                    .iter()
                    .find(|p| matches!(&p.event, EventKind::Deliver { msg_id, .. } if *msg_id == id))
                    .expect("a chosen message is in flight")
                    .clone();
                let EventKind::Deliver { from, to, msg_id, bytes, msg } = original.event else {
                    unreachable!()
                };
                self.sim.run_change(|world| {
                    let copy_id = MsgId(world.next_msg_id);
                    world.next_msg_id += 1;
                    if let Some(causality) = &mut world.causality {
                        let send = causality.send_of(msg_id).expect("every message in flight was sent");
                        causality.note_message(copy_id, send);
                    }
                    world.slots[from.index()].counters.duplicated += 1;
                    let fields = [u64::from(from.0), u64::from(to.0), msg_id.0, copy_id.0];
                    world.trace.record(world.step, world.now, Code::Duplicate, &fields, false, || {
                        TraceEvent::Duplicate { from, to, msg_id, copy_id }
                    });
                    // The copy is due when the original is, and in flight like it.
                    let event = EventKind::Deliver { from, to, msg_id: copy_id, bytes, msg };
                    world.schedule(SimTime::from_micros(original.at), event);
                });
            }
            Choice::Crash(node) => {
                self.left.crashes -= 1;
                if let Err(i) = self.down.binary_search(&node) {
                    self.down.insert(i, node);
                }
                self.fault(crate::sim::Fault::Crash(node));
            }
            Choice::Restart(node) => {
                if !self.rules.crash_stop {
                    self.down.retain(|&n| n != node);
                }
                self.fault(crate::sim::Fault::Restart(node));
            }
        }
        self.collect();
        self.note_history();
        if self.sim.world().causality.is_some() {
            let mut h = Xxh3::new();
            self.path_hash.hash(&mut h);
            choice.hash(&mut h);
            self.path_hash = h.digest128();
        }
    }

    fn fault(&mut self, fault: crate::sim::Fault) {
        let now = self.sim.world().now.as_micros();
        self.sim.run_event(SimTime::from_micros(now), EventKind::Fault(Box::new(fault)));
    }

    /// Runs the end-of-run checks (at a quiet state).
    pub fn end(&mut self) {
        self.sim.end();
    }

    /// The 128-bit hash of everything that decides what can happen from here (see the
    /// module doc).
    pub fn state_hash(&self) -> u128 {
        let world = self.sim.world();
        let mut h = Xxh3::new();
        for slot in &world.slots {
            slot.state.hash(&mut h);
            slot.durable.hash(&mut h);
            slot.incarnation.hash(&mut h);
            slot.rng.as_ref().map(|rng| rng.position()).hash(&mut h);
        }
        // Messages: a multiset per link, a sequence on a FIFO link; links summed, so
        // their order does not count. Timers: each node's in deadline order, with ids.
        let mut in_flight: Vec<(NodeId, NodeId, u64, u128)> = Vec::new();
        let mut timers: Vec<(NodeId, u64, u64, u128)> = Vec::new();
        for p in self.pending() {
            match &p.event {
                EventKind::Deliver { from, to, msg, .. } => {
                    let mut m = Xxh3::new();
                    msg.hash(&mut m);
                    in_flight.push((*from, *to, p.seq, m.digest128()));
                }
                EventKind::Timer { node, id, timer, .. } => {
                    let mut t = Xxh3::new();
                    id.hash(&mut t);
                    timer.hash(&mut t);
                    timers.push((*node, p.at, p.seq, t.digest128()));
                }
                _ => {}
            }
        }
        in_flight.sort_unstable_by_key(|&(from, to, seq, _)| (from, to, seq));
        let mut messages = 0u128;
        for link in in_flight.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (from, to) = (link[0].0, link[0].1);
            let contents = if self.is_fifo(from, to) {
                link.iter().fold(0u128, |acc, m| xxh3_128(&[acc.to_le_bytes(), m.3.to_le_bytes()].concat()))
            } else {
                link.iter().fold(0u128, |acc, m| acc.wrapping_add(m.3))
            };
            let mut l = Xxh3::new();
            (from, to, contents).hash(&mut l);
            messages = messages.wrapping_add(l.digest128());
        }
        messages.hash(&mut h);
        timers.sort_unstable_by_key(|&(node, at, seq, _)| (node, at, seq));
        for (node, _, _, timer) in timers {
            (node, timer).hash(&mut h);
        }
        self.history_hash.hash(&mut h);
        self.path_hash.hash(&mut h);
        self.left.hash(&mut h);
        self.down.hash(&mut h);
        h.digest128()
    }

    /// The decision the default order takes here: the earliest delivery or timer (as a
    /// run would), else a restart of a node left down; `None` at a quiet state.
    fn default_choice(&self) -> Option<Choice> {
        let mut choices = Vec::new();
        self.choices(&mut choices);
        let earliest = self
            .pending()
            .iter()
            .filter_map(|p| {
                let choice = match &p.event {
                    EventKind::Deliver { msg_id, .. } => Choice::Deliver(*msg_id),
                    EventKind::Timer { id, .. } => Choice::Fire(*id),
                    _ => return None,
                };
                choices.contains(&choice).then_some(((p.at, p.seq), choice))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, choice)| choice);
        earliest.or_else(|| choices.iter().copied().find(|c| matches!(c, Choice::Restart(_))))
    }

    /// Follows a decision log from the start of `sim`, then (once the log is used up, and
    /// the run is not over) the default order: the earliest event first, no more faults,
    /// crashed nodes restarted, until nothing is left to happen (the end-of-run checks
    /// then run) or `max_steps`. Strict: a decision not possible where it comes is an
    /// error that says which and what was possible; lenient (shrinking): it is skipped.
    /// Returns the end state and the decisions taken, the default ones included.
    pub fn follow(
        sim: Simulation<N>,
        budgets: Budgets,
        rules: FaultRules,
        decisions: &[Choice],
        strict: bool,
        max_steps: u64,
    ) -> Result<(Branch<N>, Vec<Choice>), String> {
        let mut branch = Branch::root(sim, budgets, rules);
        let mut taken = Vec::new();
        let mut choices = Vec::new();
        for (i, &choice) in decisions.iter().enumerate() {
            if branch.outcome().is_some() {
                if strict {
                    return Err(format!(
                        "decision {} ({choice}) comes after the run ended, at decision {}",
                        i + 1,
                        taken.len()
                    ));
                }
                break;
            }
            branch.choices(&mut choices);
            if !choices.contains(&choice) {
                if strict {
                    let possible: Vec<String> = choices.iter().map(|c| c.to_string()).collect();
                    return Err(format!(
                        "decision {} ({choice}) is not possible at that point; the possible ones are: {}",
                        i + 1,
                        if possible.is_empty() { "none".to_string() } else { possible.join(", ") }
                    ));
                }
                continue;
            }
            branch.apply(choice);
            taken.push(choice);
        }
        while branch.outcome().is_none() {
            if branch.sim.world().step() >= max_steps {
                branch.sim.limit_steps();
                break;
            }
            match branch.default_choice() {
                Some(choice) => {
                    branch.apply(choice);
                    taken.push(choice);
                }
                None => branch.end(),
            }
        }
        Ok((branch, taken))
    }
}

/// Breadth-first (the first violation found has the fewest steps) or depth-first (less
/// memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Level by level.
    #[default]
    Bfs,
    /// Deepest first.
    Dfs,
}

/// How a search runs.
#[derive(Clone, Debug, Default)]
pub struct ExploreOptions {
    /// The faults a path may inject.
    pub budgets: Budgets,
    /// Which crashes the protocol allows.
    pub rules: FaultRules,
    /// The search order.
    pub strategy: Strategy,
    /// States this many steps from the root are not expanded.
    pub max_depth: Option<u32>,
    /// The search stops after this many distinct states.
    pub max_states: Option<u64>,
    /// Prune states seen before (the default); off, every path is walked (for tests that
    /// check the pruning changes no verdict).
    pub no_visited_set: bool,
}

/// How far a search got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExploreStats {
    /// Distinct states reached (the root included).
    pub states: u64,
    /// Decisions taken (each a step from some state).
    pub transitions: u64,
    /// The deepest state reached, in steps from the root.
    pub depth: u32,
    /// States waiting to be expanded.
    pub frontier: u64,
    /// Quiet states reached, where the end-of-run checks ran.
    pub quiet: u64,
}

/// Why a search stopped before it was exhausted.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "budget", rename_all = "kebab-case")]
pub enum Stop {
    /// States at `--max-depth` had decisions left that were not taken.
    MaxDepth {
        /// The depth.
        depth: u32,
    },
    /// `--max-states` distinct states were reached.
    MaxStates {
        /// The bound.
        states: u64,
    },
    /// The caller's time limit ran out.
    TimeLimit,
    /// The search's memory grew past the caller's bound.
    Memory {
        /// The bound, in bytes.
        bytes: u64,
    },
    /// A check could not decide within its own budget (a linearizability search): the
    /// search cannot say this state passes.
    Undecided {
        /// What the check said.
        violation: Violation,
    },
}

/// What a search found.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Every state within the budgets was reached: no violation.
    Exhausted,
    /// A violation, and the path to it.
    Violation {
        /// The decisions from the start.
        path: Vec<Choice>,
        /// What broke.
        violation: Violation,
    },
    /// A budget stopped the search first.
    Stopped(Stop),
}

/// A finished search.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// What it found.
    pub verdict: Verdict,
    /// How far it got.
    pub stats: ExploreStats,
}

/// A hasher for keys that are hashes already: the low 64 bits.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

/// The path to trail entry `at`, from the root.
fn path_to(trail: &[(u32, Choice)], mut at: u32) -> Vec<Choice> {
    let mut path = Vec::new();
    while at != 0 {
        let (parent, choice) = trail[at as usize];
        path.push(choice);
        at = parent;
    }
    path.reverse();
    path
}

/// Searches every state reachable from `sim`'s start within the options' budgets. `stop`
/// is called every hundred or so states with the progress so far (a terminal's progress
/// line); a [`Stop`] it returns (a time limit, a memory bound) ends the search.
pub fn explore<N: Node>(
    sim: Simulation<N>,
    options: &ExploreOptions,
    stop: &mut dyn FnMut(&ExploreStats) -> Option<Stop>,
) -> Exploration {
    let root = Branch::root(sim, options.budgets, options.rules.clone());
    let mut stats = ExploreStats { states: 1, ..ExploreStats::default() };
    let found = |path: Vec<Choice>, outcome: &Outcome| -> Option<Verdict> {
        match outcome {
            Outcome::Violation(v) => Some(Verdict::Violation { path, violation: v.clone() }),
            Outcome::Undecided(v) => Some(Verdict::Stopped(Stop::Undecided { violation: v.clone() })),
            _ => None,
        }
    };
    // A quiet state runs the end-of-run checks, on a copy (faults may still follow).
    let ended = |branch: &Branch<N>| -> Option<Outcome> {
        let mut end = branch.clone();
        end.end();
        end.outcome().cloned()
    };
    let done = |verdict: Verdict, stats: ExploreStats| Exploration { verdict, stats };
    if let Some(outcome) = root.outcome() {
        if let Some(verdict) = found(Vec::new(), outcome) {
            return done(verdict, stats);
        }
    }
    if root.is_quiet() {
        stats.quiet += 1;
        if let Some(verdict) = ended(&root).and_then(|o| found(Vec::new(), &o)) {
            return done(verdict, stats);
        }
    }
    #[allow(clippy::disallowed_types)]
    type Visited = HashSet<u128, BuildHasherDefault<Identity>>;
    let mut visited = Visited::default();
    visited.insert(root.state_hash());
    // Each state reached: its parent's entry and the decision that led to it.
    let mut trail: Vec<(u32, Choice)> = vec![(0, Choice::Restart(NodeId(0)))];
    let mut frontier: VecDeque<(Branch<N>, u32)> = VecDeque::new();
    frontier.push_back((root, 0));
    let mut choices = Vec::new();
    let mut cut_at_depth = None;
    let mut expanded = 0u64;
    loop {
        let next = match options.strategy {
            Strategy::Bfs => frontier.pop_front(),
            Strategy::Dfs => frontier.pop_back(),
        };
        let Some((branch, at)) = next else { break };
        expanded += 1;
        if expanded % 128 == 0 {
            stats.frontier = frontier.len() as u64;
            if let Some(why) = stop(&stats) {
                return done(Verdict::Stopped(why), stats);
            }
        }
        branch.choices(&mut choices);
        if choices.is_empty() {
            continue;
        }
        if options.max_depth.is_some_and(|max| branch.depth >= max) {
            cut_at_depth = Some(branch.depth);
            continue;
        }
        let mut children = Vec::with_capacity(choices.len());
        let last = choices.len() - 1;
        let mut branch = Some(branch);
        for (i, &choice) in choices.iter().enumerate() {
            let mut child = if i == last {
                branch.take().expect("taken once, for the last choice")
            } else {
                branch.as_ref().expect("kept until the last choice").clone()
            };
            child.apply(choice);
            stats.transitions += 1;
            if let Some(outcome) = child.outcome() {
                let mut path = path_to(&trail, at);
                path.push(choice);
                if let Some(verdict) = found(path, outcome) {
                    return done(verdict, stats);
                }
                continue;
            }
            if !options.no_visited_set && !visited.insert(child.state_hash()) {
                continue;
            }
            stats.states += 1;
            stats.depth = stats.depth.max(child.depth);
            trail.push((at, choice));
            let entry = u32::try_from(trail.len() - 1).expect("fewer than 2^32 states");
            if child.is_quiet() {
                stats.quiet += 1;
                if let Some(outcome) = ended(&child) {
                    if let Some(verdict) = found(path_to(&trail, entry), &outcome) {
                        return done(verdict, stats);
                    }
                }
            }
            children.push((child, entry));
            if options.max_states.is_some_and(|max| stats.states >= max) {
                return done(Verdict::Stopped(Stop::MaxStates { states: stats.states }), stats);
            }
        }
        match options.strategy {
            Strategy::Bfs => frontier.extend(children),
            // The first decision's subtree is searched first.
            Strategy::Dfs => frontier.extend(children.into_iter().rev()),
        }
    }
    stats.frontier = 0;
    match cut_at_depth {
        Some(depth) => done(Verdict::Stopped(Stop::MaxDepth { depth }), stats),
        None => done(Verdict::Exhausted, stats),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_back_as_written() {
        let all = [
            Choice::Deliver(MsgId(4)),
            Choice::Fire(TimerId::new(2_000_001)),
            Choice::Drop(MsgId(0)),
            Choice::Duplicate(MsgId(17)),
            Choice::Crash(NodeId(2)),
            Choice::Restart(NodeId(0)),
        ];
        for choice in all {
            assert_eq!(choice.to_string().parse::<Choice>(), Ok(choice));
            let json = serde_json::to_string(&choice).unwrap();
            assert_eq!(serde_json::from_str::<Choice>(&json).unwrap(), choice);
        }
        assert_eq!(Choice::Deliver(MsgId(4)).to_string(), "deliver m4");
    }

    #[test]
    fn a_malformed_decision_says_what_the_forms_are() {
        for bad in [
            "",
            "deliver",
            "deliver 4",
            "deliver m",
            "deliver m-1",
            "fire m3",
            "crash m1",
            "teleport n1",
            "deliver  m1",
        ] {
            let err = bad.parse::<Choice>().unwrap_err();
            assert!(err.contains("\"deliver mN\""), "{bad:?}: {err}");
        }
        let err = "crash n99999999999".parse::<Choice>().unwrap_err();
        assert!(err.contains("no such node"), "{err}");
        let err = "deliver m99999999999999999999999".parse::<Choice>().unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }
}
