//! The snapshot invariants, generic over the wrapped application. The cut and the step
//! predicates are checked against the simulator's ground truth (`World::causality`): the
//! protocol's notes say which events recorded and which sends were markers or carried
//! application messages, and the causal record says what those events really were and in
//! which order they happened.
//!
//! - `snapshot-conserves-money` / `snapshot-conserves-pings` ([`Conserves`]): each assembled
//!   snapshot holds what the system holds, counting process states and channel states.
//! - `snapshot-is-consistent-cut` ([`ConsistentCut`]): each assembled snapshot's process
//!   states form a cut closed under happens-before (no message received inside the cut
//!   was sent outside it), and each channel's recorded state is exactly the application
//!   messages sent inside the cut and not received inside it, in send order.
//! - `snapshot-records-once` ([`RecordsOnce`]): each process and each incoming channel is
//!   recorded exactly once per snapshot.
//! - `snapshot-one-marker-per-channel` ([`MarkerPerChannel`]): exactly one marker per
//!   outgoing channel per snapshot, sent right after the sender recorded (no other event
//!   of the sender in between).
//! - `snapshot-terminates` ([`Terminates`], end of run): every snapshot that started
//!   completed and was assembled at each of its initiators.

use super::layer::{Application, Assembled, Envelope, Plan, SnapshotId, SnapshotNode, SnapshotNote};
use sim_core::causality::short_kind;
use sim_core::{Causality, CheckError, EventId, Invariant, NodeEventKind, NodeId, World};
use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::sync::Arc;

pub const SNAPSHOT_IS_CONSISTENT_CUT: &str = "snapshot-is-consistent-cut";
pub const SNAPSHOT_RECORDS_ONCE: &str = "snapshot-records-once";
pub const SNAPSHOT_ONE_MARKER_PER_CHANNEL: &str = "snapshot-one-marker-per-channel";
pub const SNAPSHOT_TERMINATES: &str = "snapshot-terminates";

/// An application whose state and messages hold a quantity the system conserves (money,
/// pings): a snapshot's process states plus its channel states must add up to it.
pub trait Conserved: Application {
    /// The invariant's name (`snapshot-conserves-money`).
    const INVARIANT: &'static str;
    /// What is counted, for messages ("money", "pings").
    const WHAT: &'static str;
    /// How much a process holds.
    fn held(&self) -> u64;
    /// How much a message carries.
    fn carried(msg: &Self::Msg) -> u64;
}

/// The assembled snapshots new in the history since `cursor`: (initiator, snapshot).
fn new_assemblies<A: Application>(
    world: &World<SnapshotNode<A>>,
    cursor: &mut usize,
) -> Vec<(NodeId, SnapshotId)> {
    let (_, fresh) = world.history().since(cursor);
    fresh
        .iter()
        .filter_map(|entry| match entry.op {
            SnapshotNote::Assembled { snapshot } => Some((entry.node, snapshot)),
            _ => None,
        })
        .collect()
}

fn assembled_at<A: Application>(
    world: &World<SnapshotNode<A>>,
    node: NodeId,
    snapshot: SnapshotId,
) -> &Assembled<A> {
    let process = world.node(node).expect("a process that just noted an assembly is up");
    &process.assembled()[&snapshot]
}

/// `snapshot-conserves-*`: process states plus channel states add up to the total.
#[derive(Clone)]
pub struct Conserves<A> {
    total: u64,
    cursor: usize,
    app: PhantomData<A>,
}

impl<A> Conserves<A> {
    pub fn new(total: u64) -> Conserves<A> {
        Conserves { total, cursor: 0, app: PhantomData }
    }
}

impl<A: Conserved> Invariant<SnapshotNode<A>> for Conserves<A> {
    fn name(&self) -> &'static str {
        A::INVARIANT
    }

    fn check_step(&mut self, world: &World<SnapshotNode<A>>) -> Result<(), CheckError> {
        for (node, snapshot) in new_assemblies(world, &mut self.cursor) {
            let assembled = assembled_at(world, node, snapshot);
            let held: u64 = assembled.parts.iter().map(|p| p.state.held()).sum();
            let in_channels: u64 = assembled
                .parts
                .iter()
                .flat_map(|p| p.channels.iter().flat_map(|(_, messages)| messages.iter()))
                .map(|(_, msg)| A::carried(msg))
                .sum();
            if held + in_channels != self.total {
                let per_process: Vec<String> =
                    assembled.parts.iter().map(|p| format!("{} {}", p.process, p.state.held())).collect();
                return Err(format!(
                    "{snapshot}, assembled at {node}, counts {} {what} ({held} in the processes: {}; {in_channels} \
                     in the channels), but the system holds {}: {} {}",
                    held + in_channels,
                    per_process.join(", "),
                    self.total,
                    self.total.abs_diff(held + in_channels),
                    if held + in_channels < self.total { "missing" } else { "too many" },
                    what = A::WHAT,
                )
                .into());
            }
        }
        Ok(())
    }
}

/// `snapshot-is-consistent-cut`, against ground truth. Each snapshot is checked at its
/// first assembly (one pass over the events inside its cut); a later initiator's copy must
/// equal the first.
#[derive(Clone)]
pub struct ConsistentCut<A> {
    cursor: usize,
    /// Which send events carried application messages, from the protocol's notes (each
    /// checked to be a send in the causal record).
    is_app: Vec<bool>,
    /// The initiator whose copy of each snapshot was checked.
    checked: BTreeMap<SnapshotId, NodeId>,
    app: PhantomData<A>,
}

impl<A> Default for ConsistentCut<A> {
    fn default() -> Self {
        ConsistentCut { cursor: 0, is_app: Vec::new(), checked: BTreeMap::new(), app: PhantomData }
    }
}

impl<A: Application> Invariant<SnapshotNode<A>> for ConsistentCut<A> {
    fn name(&self) -> &'static str {
        SNAPSHOT_IS_CONSISTENT_CUT
    }

    fn needs_causality(&self) -> bool {
        true
    }

    fn check_step(&mut self, world: &World<SnapshotNode<A>>) -> Result<(), CheckError> {
        let causality = world.causality().expect("the snapshot invariants turn causality tracking on");
        let (_, fresh) = world.history().since(&mut self.cursor);
        for entry in fresh {
            match entry.op {
                SnapshotNote::AppSent { event } => {
                    if !matches!(causality.event(event).kind, NodeEventKind::Send { .. }) {
                        let what = causality.describe(event);
                        return Err(format!("{what} is noted as a message send but is not one").into());
                    }
                    if self.is_app.len() <= event.index() {
                        self.is_app.resize(event.index() + 1, false);
                    }
                    self.is_app[event.index()] = true;
                }
                SnapshotNote::Assembled { snapshot } => {
                    let node = entry.node;
                    let assembled = assembled_at(world, node, snapshot);
                    if let Some(&first) = self.checked.get(&snapshot) {
                        if assembled_at(world, first, snapshot).parts != assembled.parts {
                            return Err(format!("{node}'s copy of {snapshot} differs from {first}'s").into());
                        }
                        continue;
                    }
                    self.checked.insert(snapshot, node);
                    Cut::of(causality, assembled)
                        .and_then(|cut| cut.check(causality, assembled, &self.is_app))
                        .map_err(|e| format!("{snapshot}, assembled at {node}: {e}"))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The cut an assembled snapshot claims: per process, the position of the event it
/// recorded at. The events of a process before that one are inside the cut; that one and
/// later are not.
struct Cut {
    recorded: Vec<EventId>,
    seq: Vec<u32>,
}

impl Cut {
    fn of<A: Application>(causality: &Causality, assembled: &Assembled<A>) -> Result<Cut, String> {
        let mut recorded = Vec::with_capacity(assembled.parts.len());
        for (i, part) in assembled.parts.iter().enumerate() {
            let event = causality.event(part.recorded_at);
            if part.process.index() != i || event.node != part.process {
                return Err(format!(
                    "{}'s part names {} as its recording, an event of {}",
                    part.process,
                    causality.describe(part.recorded_at),
                    event.node
                ));
            }
            recorded.push(part.recorded_at);
        }
        let seq = recorded.iter().map(|&e| causality.event(e).seq).collect();
        Ok(Cut { recorded, seq })
    }

    fn inside(&self, causality: &Causality, event: EventId) -> bool {
        let event = causality.event(event);
        event.seq < self.seq[event.node.index()]
    }

    /// One pass over the events inside the cut. Closed under happens-before: every
    /// message received inside the cut was sent inside it (with process order, message
    /// edges are all of happens-before: a causal chain into the cut enters each
    /// process's prefix through a message received inside). Channels exact: each
    /// channel's recorded state is exactly the application messages sent inside the cut
    /// and not received inside it, in send order.
    fn check<A: Application>(
        &self,
        causality: &Causality,
        assembled: &Assembled<A>,
        is_app: &[bool],
    ) -> Result<(), String> {
        let n = self.seq.len();
        let app = |event: EventId| is_app.get(event.index()).copied().unwrap_or(false);
        // Per channel `from * n + to`: the application messages sent inside the cut, in
        // send order; and, by send event, whether a copy was received inside.
        let mut sent: Vec<Vec<EventId>> = vec![Vec::new(); n * n];
        let mut received_inside = vec![false; causality.len()];
        for p in 0..n {
            let me = NodeId(p as u32);
            for &event in &causality.node_events(me)[..self.seq[p] as usize - 1] {
                match causality.event(event).kind {
                    NodeEventKind::Send { to, .. } if app(event) => sent[p * n + to.index()].push(event),
                    NodeEventKind::Receive { send, .. } => {
                        if !self.inside(causality, send) {
                            return Err(self.not_closed(causality, event, send));
                        }
                        received_inside[send.index()] = true;
                    }
                    _ => {}
                }
            }
        }
        for part in &assembled.parts {
            let to = part.process;
            for (from, messages) in &part.channels {
                let channel = format!("channel {from}->{to}");
                let mut recorded = Vec::with_capacity(messages.len());
                for (receive, _) in messages {
                    let event = causality.event(*receive);
                    match event.kind {
                        NodeEventKind::Receive { from: sender, send, .. }
                            if sender == *from && event.node == to =>
                        {
                            recorded.push(send)
                        }
                        _ => {
                            let what = causality.describe(*receive);
                            return Err(format!("{channel} records {what} as a message on it, which is no receive from {from}"));
                        }
                    }
                }
                let truth: Vec<EventId> = sent[from.index() * n + to.index()]
                    .iter()
                    .copied()
                    .filter(|s| !received_inside[s.index()])
                    .collect();
                if recorded != truth {
                    return Err(channel_mismatch(causality, &channel, &recorded, &truth));
                }
            }
        }
        Ok(())
    }

    fn not_closed(&self, causality: &Causality, receive: EventId, send: EventId) -> String {
        let receiver = causality.event(receive).node;
        let sender = causality.event(send).node;
        format!(
            "the recorded states are not a consistent cut: {} is inside the cut ({receiver} recorded later, \
             at {}), but its send {} is not ({sender} recorded before it, at {}): the snapshot shows a message \
             received that was never sent",
            causality.describe(receive),
            causality.describe(self.recorded[receiver.index()]),
            causality.describe(send),
            causality.describe(self.recorded[sender.index()]),
        )
    }
}

/// Why a channel's recorded state is not the true one, in a few lines.
fn channel_mismatch(causality: &Causality, channel: &str, recorded: &[EventId], truth: &[EventId]) -> String {
    let names = |list: &[EventId]| -> String {
        if list.is_empty() {
            "nothing".to_string()
        } else {
            list.iter().map(|&s| causality.describe(s)).collect::<Vec<_>>().join(", ")
        }
    };
    let truth_set: BTreeSet<EventId> = truth.iter().copied().collect();
    let recorded_set: BTreeSet<EventId> = recorded.iter().copied().collect();
    let missing: Vec<EventId> = truth.iter().copied().filter(|s| !recorded_set.contains(s)).collect();
    let extra: Vec<EventId> = recorded.iter().copied().filter(|s| !truth_set.contains(s)).collect();
    let why = if !missing.is_empty() {
        format!(
            "it misses messages that were in the channel at the cut (sent inside it, not received inside it): {}",
            names(&missing)
        )
    } else if !extra.is_empty() {
        format!(
            "it holds messages that were not in the channel at the cut (sent after the sender recorded, \
             or received twice): {}",
            names(&extra)
        )
    } else if recorded.len() != truth.len() {
        "it holds a message twice (a duplicate)".to_string()
    } else {
        "it holds the right messages in the wrong order (they overtook each other)".to_string()
    };
    format!(
        "{channel}'s recorded state is not what was in it at the cut: {why}. Recorded (by send): {}; \
         in the channel at the cut: {}",
        names(recorded),
        names(truth)
    )
}

/// `snapshot-records-once`: each process and each incoming channel recorded exactly once
/// per snapshot. This checks "never twice"; "at least once" is `snapshot-terminates`'s
/// part (a snapshot that started must complete), so the two never report one fault twice.
#[derive(Clone)]
pub struct RecordsOnce<A> {
    cursor: usize,
    /// Per snapshot: which processes recorded (by index), and which channels (`from * n + to`).
    recorded: BTreeMap<SnapshotId, (Vec<bool>, Vec<bool>)>,
    app: PhantomData<A>,
}

impl<A> Default for RecordsOnce<A> {
    fn default() -> Self {
        RecordsOnce { cursor: 0, recorded: BTreeMap::new(), app: PhantomData }
    }
}

impl<A: Application> Invariant<SnapshotNode<A>> for RecordsOnce<A> {
    fn name(&self) -> &'static str {
        SNAPSHOT_RECORDS_ONCE
    }

    fn check_step(&mut self, world: &World<SnapshotNode<A>>) -> Result<(), CheckError> {
        let n = world.n_nodes();
        let (_, fresh) = world.history().since(&mut self.cursor);
        for entry in fresh {
            let me = entry.node;
            let repeated = match &entry.op {
                SnapshotNote::Recorded { snapshot, event } => {
                    let seen = &mut tables(&mut self.recorded, *snapshot, n).0[me.index()];
                    std::mem::replace(seen, true).then(|| {
                        format!(
                            "{me} recorded its state for {snapshot} a second time (at event {event}): each \
                             process records once per snapshot, at its first marker"
                        )
                    })
                }
                SnapshotNote::ChannelClosed { snapshot, from, .. } => {
                    let seen = &mut tables(&mut self.recorded, *snapshot, n).1[from.index() * n + me.index()];
                    std::mem::replace(seen, true)
                        .then(|| format!("channel {from}->{me} was recorded a second time for {snapshot}"))
                }
                _ => None,
            };
            if let Some(message) = repeated {
                return Err(message.into());
            }
        }
        Ok(())
    }
}

/// The "recorded yet?" tables of one snapshot: processes, and channels `from * n + to`.
fn tables(
    recorded: &mut BTreeMap<SnapshotId, (Vec<bool>, Vec<bool>)>,
    snapshot: SnapshotId,
    n: usize,
) -> &mut (Vec<bool>, Vec<bool>) {
    recorded.entry(snapshot).or_insert_with(|| (vec![false; n], vec![false; n * n]))
}

/// One process's markers of one snapshot so far: where it recorded, how many markers
/// followed, and to which processes.
#[derive(Clone)]
struct Marking {
    recorded: EventId,
    count: u32,
    marked: Vec<bool>,
}

/// `snapshot-one-marker-per-channel`: after recording, the process's next events are its
/// markers, exactly one per outgoing channel, before anything else.
#[derive(Clone)]
pub struct MarkerPerChannel<A> {
    plan: Arc<Plan>,
    cursor: usize,
    /// Per snapshot, per process (by index).
    markings: BTreeMap<SnapshotId, Vec<Option<Marking>>>,
    app: PhantomData<A>,
}

impl<A> MarkerPerChannel<A> {
    pub fn new(plan: Arc<Plan>) -> MarkerPerChannel<A> {
        MarkerPerChannel { plan, cursor: 0, markings: BTreeMap::new(), app: PhantomData }
    }
}

impl<A: Application> Invariant<SnapshotNode<A>> for MarkerPerChannel<A> {
    fn name(&self) -> &'static str {
        SNAPSHOT_ONE_MARKER_PER_CHANNEL
    }

    fn needs_causality(&self) -> bool {
        true
    }

    fn check_step(&mut self, world: &World<SnapshotNode<A>>) -> Result<(), CheckError> {
        let n = world.n_nodes();
        let (_, fresh) = world.history().since(&mut self.cursor);
        if fresh.is_empty() {
            return Ok(());
        }
        let causality = world.causality().expect("the snapshot invariants turn causality tracking on");
        let mut recorded_now = Vec::new();
        for entry in fresh {
            let me = entry.node;
            match &entry.op {
                SnapshotNote::Recorded { snapshot, event } => {
                    let slot =
                        &mut self.markings.entry(*snapshot).or_insert_with(|| (0..n).map(|_| None).collect())
                            [me.index()];
                    if slot.is_some() {
                        return Err(format!(
                            "{me} recorded {snapshot} again at {} and would send its markers again: one marker \
                             per channel per snapshot",
                            causality.describe(*event)
                        )
                        .into());
                    }
                    *slot = Some(Marking { recorded: *event, count: 0, marked: vec![false; n] });
                    recorded_now.push((*snapshot, me));
                }
                SnapshotNote::MarkerSent { snapshot, event } => {
                    let marking = self
                        .markings
                        .get_mut(snapshot)
                        .and_then(|list| list[me.index()].as_mut())
                        .ok_or_else(|| format!("{me} sent a marker of {snapshot} before recording it"))?;
                    let NodeEventKind::Send { to, .. } = causality.event(*event).kind else {
                        return Err(format!(
                            "{} is noted as a marker but is no send",
                            causality.describe(*event)
                        )
                        .into());
                    };
                    if std::mem::replace(&mut marking.marked[to.index()], true) {
                        return Err(format!(
                            "{me} sent a second marker of {snapshot} on channel {me}->{to} ({})",
                            causality.describe(*event)
                        )
                        .into());
                    }
                    marking.count += 1;
                    let expected = causality.event(marking.recorded).seq + marking.count;
                    if causality.event(*event).seq != expected {
                        let between = causality.node_events(me)[expected as usize - 1];
                        return Err(format!(
                            "{me} recorded {snapshot} at {}, but its marker to {to} went out at {}, after {}: \
                             markers must go on every channel right after recording, before any other message",
                            causality.describe(marking.recorded),
                            causality.describe(*event),
                            causality.describe(between),
                        )
                        .into());
                    }
                }
                _ => {}
            }
        }
        // A handler runs in one step, so the markers follow their recording in it.
        for (snapshot, me) in recorded_now {
            let marking = self.markings[&snapshot][me.index()].as_ref().expect("recorded above");
            let outgoing = self.plan.topology.outgoing(me);
            if marking.count as usize != outgoing.len() {
                let next = causality
                    .node_events(me)
                    .get((causality.event(marking.recorded).seq + marking.count) as usize);
                let after = next.map_or("nothing yet".to_string(), |&e| {
                    format!("{} ({})", causality.event(e).name(), short_kind(&causality.event(e).kind))
                });
                return Err(format!(
                    "{me} recorded {snapshot} at {} but sent {} of its {} markers right after (next: {after}): \
                     markers must go on every outgoing channel before any other message",
                    causality.describe(marking.recorded),
                    marking.count,
                    outgoing.len(),
                )
                .into());
            }
        }
        Ok(())
    }
}

/// `snapshot-terminates`: at the end of the run, every snapshot that started (some
/// process recorded it) completed, and each of its initiators assembled it, unless the
/// run was cut off while its markers or parts were still on their way.
#[derive(Clone)]
pub struct Terminates<A> {
    plan: Arc<Plan>,
    app: PhantomData<A>,
}

impl<A> Terminates<A> {
    pub fn new(plan: Arc<Plan>) -> Terminates<A> {
        Terminates { plan, app: PhantomData }
    }
}

impl<A: Application> Invariant<SnapshotNode<A>> for Terminates<A> {
    fn name(&self) -> &'static str {
        SNAPSHOT_TERMINATES
    }

    fn check_end(&mut self, world: &World<SnapshotNode<A>>) -> Result<(), CheckError> {
        // A crashed process (outside the model) is down: it holds no recording, no assembly.
        let processes: Vec<(NodeId, Option<&SnapshotNode<A>>)> = world.nodes().collect();
        let recorded = |node: &Option<&SnapshotNode<A>>, id| node.is_some_and(|n| n.has_recorded(id));
        // A run cut off (`end_at_ms`) while a snapshot's markers or parts are still on their
        // way has not shown that it never completes: only one that nothing can finish fails.
        let on_the_way: BTreeSet<SnapshotId> = world
            .in_flight()
            .filter_map(|m| match m.msg {
                Envelope::Marker { snapshot } | Envelope::Part { snapshot, .. } => Some(*snapshot),
                Envelope::App(_) => None,
            })
            .collect();
        for planned in &self.plan.snapshots {
            let id = planned.id;
            if !processes.iter().any(|(_, node)| recorded(node, id)) || on_the_way.contains(&id) {
                continue;
            }
            let missing: Vec<String> = planned
                .initiators
                .iter()
                .filter(|i| !processes[i.index()].1.is_some_and(|n| n.assembled().contains_key(&id)))
                .map(|i| i.to_string())
                .collect();
            if missing.is_empty() {
                continue;
            }
            let names = |list: Vec<NodeId>| list.iter().map(NodeId::to_string).collect::<Vec<_>>().join(", ");
            let down: Vec<NodeId> = processes.iter().filter(|(_, n)| n.is_none()).map(|(p, _)| *p).collect();
            let never: Vec<NodeId> =
                processes.iter().filter(|(_, n)| n.is_some() && !recorded(n, id)).map(|(p, _)| *p).collect();
            let open: Vec<String> = processes
                .iter()
                .filter_map(|(p, node)| node.map(|node| (p, node)))
                .flat_map(|(p, node)| {
                    node.unrecorded_channels(id).into_iter().map(move |from| format!("{from}->{p}"))
                })
                .collect();
            let why = if !down.is_empty() {
                format!("{} crashed and is down", names(down))
            } else if !never.is_empty() {
                format!("{} never recorded its state (no marker reached it)", names(never))
            } else if !open.is_empty() {
                format!(
                    "every process recorded its state, but the marker never came on channel(s) {}",
                    open.join(", ")
                )
            } else {
                "every process finished its part, but some part never reached its initiator".into()
            };
            return Err(format!(
                "{id} started but never completed: initiator(s) {} did not assemble it by the end of the run; {why}",
                missing.join(", ")
            )
            .into());
        }
        Ok(())
    }
}
