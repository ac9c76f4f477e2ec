//! The Chandy-Lamport layer: a node that wraps any [`Application`] and takes snapshots of
//! it, as many as the plan asks for, several at once, each told apart by its id.
//!
//! The marker rules are the paper's. When a process initiates snapshot `s`, or receives
//! its first marker of `s`, it records its own state (a clone of the application), records
//! the channel the marker came on (if any) as empty, and sends a marker of `s` on every
//! outgoing channel before any other message. From then on it records, for each other
//! incoming channel, the application's messages that arrive on it until that channel's
//! marker of `s` arrives. When every incoming channel has brought its marker, the process's
//! part (its state and its incoming channels' states) is done, and it sends the part to
//! each initiator of `s`, hop by hop over the channels (only channels carry messages). An
//! initiator that holds every process's part has assembled the snapshot.
//!
//! Everything the invariants check against ground truth is written down as a history note
//! ([`SnapshotNote`]), naming the simulator's event ids: which events recorded, which sends
//! were markers and which carried the application's messages, and what each channel held.

use super::topology::Topology;
use super::{OnMarker, RecordChannel};
use serde::Serialize;
use sim_core::{Context, EventId, Message, MessageClass, Node, NodeId, SimDuration, SimTime};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

/// Tells concurrent snapshots apart: every marker carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SnapshotId(pub u32);

impl std::fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "snapshot {}", self.0)
    }
}

/// An application the layer can snapshot: a state machine like a [`Node`], acting through
/// an [`AppContext`] that lets it send only on its outgoing channels. Its state is what a
/// process records (a clone), so it must be `Clone`; its messages travel beside markers.
pub trait Application: Clone + Debug + Eq + Hash + Serialize + 'static {
    type Msg: Message + Eq + Hash;
    type Timer: Clone + Debug + Hash + Serialize;

    fn on_start(&mut self, ctx: &mut AppContext<'_, '_, Self>);
    fn on_message(&mut self, ctx: &mut AppContext<'_, '_, Self>, from: NodeId, msg: Self::Msg);
    fn on_timer(&mut self, ctx: &mut AppContext<'_, '_, Self>, timer: Self::Timer);

    /// The state in a few words, for reports.
    fn describe(&self) -> String {
        format!("{self:?}")
    }

    /// A message in a few words, for reports.
    fn describe_msg(msg: &Self::Msg) -> String {
        format!("{msg:?}")
    }
}

/// What the wrapped application may see and do: the layer's context, narrowed to sends on
/// the process's own outgoing channels, its own timers and its own random stream.
pub struct AppContext<'c, 'a, A: Application> {
    ctx: &'c mut Context<'a, SnapshotNode<A>>,
    topology: &'c Topology,
}

impl<A: Application> AppContext<'_, '_, A> {
    pub fn id(&self) -> NodeId {
        self.ctx.id()
    }

    /// The processes this one has a channel to, in id order.
    pub fn outgoing(&self) -> &[NodeId] {
        self.topology.outgoing(self.ctx.id())
    }

    /// One of [`AppContext::outgoing`], drawn from this process's random stream.
    pub fn random_outgoing(&mut self) -> NodeId {
        let outgoing = self.topology.outgoing(self.ctx.id());
        let index = self.ctx.rng().index(outgoing.len());
        outgoing[index]
    }

    /// Sends on the channel to `to`, which must exist (an application picks from
    /// [`AppContext::outgoing`]).
    pub fn send(&mut self, to: NodeId, msg: A::Msg) {
        assert!(self.topology.has_channel(self.ctx.id(), to), "{} has no channel to {to}", self.ctx.id());
        self.ctx.send(to, Envelope::App(msg));
        let event = self.ctx.event();
        self.ctx.note(SnapshotNote::AppSent { event });
    }

    pub fn set_timer(&mut self, after: SimDuration, timer: A::Timer) {
        self.ctx.set_timer(after, SnapshotTimer::App(timer));
    }

    pub fn rng(&mut self) -> &mut sim_core::SimRng {
        self.ctx.rng()
    }

    pub fn sometimes(&mut self, point: &'static str) {
        self.ctx.sometimes(point);
    }
}

/// A message between processes: the application's, a marker, or a finished part on its
/// way to an initiator.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Envelope<A: Application> {
    App(A::Msg),
    Marker { snapshot: SnapshotId },
    Part { snapshot: SnapshotId, to: NodeId, part: Box<Part<A>> },
}

impl<A: Application> Message for Envelope<A> {
    fn class(&self) -> MessageClass {
        match self {
            Envelope::App(msg) => msg.class(),
            _ => MessageClass::Other,
        }
    }
}

/// One process's share of a snapshot: its recorded state and its incoming channels'.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Part<A: Application> {
    pub process: NodeId,
    /// The event at which the process recorded.
    pub recorded_at: EventId,
    pub state: A,
    /// Per incoming channel (by sender, in id order), the messages recorded on it, each
    /// with the event that received it.
    pub channels: Vec<(NodeId, ChannelLog<A::Msg>)>,
}

/// The messages recorded on one channel, each with the event that received it.
pub type ChannelLog<M> = Vec<(EventId, M)>;

/// A snapshot assembled at an initiator: every process's part, by process.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Assembled<A: Application> {
    pub snapshot: SnapshotId,
    /// When the last part arrived.
    pub at: SimTime,
    pub parts: Vec<Part<A>>,
}

/// The layer's timers: the application's, and its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SnapshotTimer<T> {
    App(T),
    /// Time to initiate this snapshot.
    Initiate(SnapshotId),
    /// Send this snapshot's markers now (the `marker_delay_ms` buggy variant only).
    SendMarkers(SnapshotId),
}

/// What a process writes down for the invariants, naming the simulator's events.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum SnapshotNote {
    /// This send event carried an application message.
    AppSent { event: EventId },
    /// The process recorded its state for `snapshot` at this event.
    Recorded { snapshot: SnapshotId, event: EventId },
    /// This send event carried a marker of `snapshot`.
    MarkerSent { snapshot: SnapshotId, event: EventId },
    /// The marker of `snapshot` from `from` arrived (at `event`): that channel is recorded,
    /// holding the messages received at these events.
    ChannelClosed { snapshot: SnapshotId, from: NodeId, event: EventId, messages: Vec<EventId> },
    /// This initiator now holds every part of `snapshot`.
    Assembled { snapshot: SnapshotId },
}

/// One planned snapshot: who initiates it, and when.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Planned {
    pub id: SnapshotId,
    pub initiators: Vec<NodeId>,
    pub at: SimDuration,
}

/// What every process knows: the channels, the snapshots to take, and how it behaves
/// (the correct rules, or a buggy variant).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Plan {
    pub topology: Topology,
    pub snapshots: Vec<Planned>,
    /// For each snapshot (by position in `snapshots`), each initiator's next hops.
    pub routes: Vec<Vec<(NodeId, Vec<NodeId>)>>,
    pub record_channel: RecordChannel,
    pub on_marker: OnMarker,
    pub marker_delay: SimDuration,
}

impl Plan {
    pub fn new(
        topology: Topology,
        snapshots: Vec<Planned>,
        record_channel: RecordChannel,
        on_marker: OnMarker,
        marker_delay: SimDuration,
    ) -> Plan {
        let routes = snapshots
            .iter()
            .map(|s| s.initiators.iter().map(|&i| (i, topology.next_hops(i))).collect())
            .collect();
        Plan { topology, snapshots, routes, record_channel, on_marker, marker_delay }
    }

    fn index(&self, id: SnapshotId) -> usize {
        self.snapshots.iter().position(|s| s.id == id).expect("markers name planned snapshots")
    }

    fn next_hop(&self, id: SnapshotId, initiator: NodeId, from: NodeId) -> NodeId {
        let routes = &self.routes[self.index(id)];
        let (_, hops) = routes.iter().find(|(i, _)| *i == initiator).expect("parts go to initiators");
        hops[from.index()]
    }
}

/// A snapshot in progress at one process.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Recording<A: Application> {
    recorded_at: EventId,
    state: A,
    /// Per incoming channel (in id order): still recording?, and what it recorded.
    channels: Vec<(NodeId, bool, ChannelLog<A::Msg>)>,
    open: usize,
    done: bool,
}

/// A process: the application, wrapped in the snapshot layer.
#[derive(Clone, Debug)]
pub struct SnapshotNode<A: Application> {
    app: A,
    plan: Arc<Plan>,
    recordings: BTreeMap<SnapshotId, Recording<A>>,
    /// At an initiator: the parts received so far, by snapshot.
    assembling: BTreeMap<SnapshotId, BTreeMap<NodeId, Part<A>>>,
    assembled: BTreeMap<SnapshotId, Assembled<A>>,
}

/// Everything but the plan, which every process shares and never changes.
impl<A: Application> Hash for SnapshotNode<A> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.app.hash(state);
        self.recordings.hash(state);
        self.assembling.hash(state);
        self.assembled.hash(state);
    }
}

/// Two snapshots were recording at one process at the same time.
pub const SNAPSHOTS_OVERLAP: &str = "snapshot: two snapshots were in progress at one process";
/// An application message was recorded in a channel's state.
pub const MESSAGE_RECORDED: &str = "snapshot: a message in flight was recorded in a channel";

/// The rare paths the layer marks.
pub const SOMETIMES: &[&str] = &[SNAPSHOTS_OVERLAP, MESSAGE_RECORDED];

impl<A: Application> SnapshotNode<A> {
    pub fn new(app: A, plan: Arc<Plan>) -> SnapshotNode<A> {
        SnapshotNode {
            app,
            plan,
            recordings: BTreeMap::new(),
            assembling: BTreeMap::new(),
            assembled: BTreeMap::new(),
        }
    }

    /// The application's current state.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The snapshots this process assembled (as an initiator), by id.
    pub fn assembled(&self) -> &BTreeMap<SnapshotId, Assembled<A>> {
        &self.assembled
    }

    /// Whether this process has recorded its state for `snapshot`.
    pub fn has_recorded(&self, snapshot: SnapshotId) -> bool {
        self.recordings.contains_key(&snapshot)
    }

    /// The incoming channels whose marker of `snapshot` has not come yet (none if this
    /// process has not recorded it).
    pub fn unrecorded_channels(&self, snapshot: SnapshotId) -> Vec<NodeId> {
        self.recordings.get(&snapshot).map_or(Vec::new(), |r| {
            r.channels.iter().filter(|(_, open, _)| *open).map(|(from, _, _)| *from).collect()
        })
    }

    fn app_ctx<'c, 'a>(
        app: &'c mut A,
        plan: &'c Plan,
        ctx: &'c mut Context<'a, Self>,
    ) -> (&'c mut A, AppContext<'c, 'a, A>) {
        (app, AppContext { ctx, topology: &plan.topology })
    }

    /// Records this process's state for `snapshot` at the current event, then sends the
    /// markers (at once, unless the buggy delay is set).
    fn record(&mut self, ctx: &mut Context<'_, Self>, snapshot: SnapshotId) {
        let event = ctx.event();
        let me = ctx.id();
        let channels: Vec<_> =
            self.plan.topology.incoming(me).iter().map(|&from| (from, true, Vec::new())).collect();
        let open = channels.len();
        if self.recordings.values().any(|r| !r.done) {
            ctx.sometimes(SNAPSHOTS_OVERLAP);
        }
        let recording =
            Recording { recorded_at: event, state: self.app.clone(), channels, open, done: false };
        self.recordings.insert(snapshot, recording);
        ctx.note(SnapshotNote::Recorded { snapshot, event });
        // The cut, for pictures: `--svg` joins each snapshot's `cut:` events across the
        // lanes. Marked after the markers, which must come right after the recording.
        let cut = format!("cut:s{}", snapshot.0);
        if self.plan.marker_delay == SimDuration::ZERO {
            self.send_markers(ctx, snapshot);
            ctx.local_event(cut);
        } else {
            ctx.local_event(cut);
            ctx.set_timer(self.plan.marker_delay, SnapshotTimer::SendMarkers(snapshot));
        }
    }

    fn send_markers(&mut self, ctx: &mut Context<'_, Self>, snapshot: SnapshotId) {
        let plan = Arc::clone(&self.plan);
        for &to in plan.topology.outgoing(ctx.id()) {
            ctx.send(to, Envelope::Marker { snapshot });
            let event = ctx.event();
            ctx.note(SnapshotNote::MarkerSent { snapshot, event });
        }
    }

    fn on_marker(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, snapshot: SnapshotId) {
        let first = !self.recordings.contains_key(&snapshot);
        if first || self.plan.on_marker == OnMarker::RecordEveryTime {
            let kept = self.recordings.remove(&snapshot);
            self.record(ctx, snapshot);
            if let (Some(kept), Some(now)) = (kept, self.recordings.get_mut(&snapshot)) {
                // The buggy variant records the state again but keeps its channels.
                now.channels = kept.channels;
                now.open = kept.open;
                now.done = kept.done;
            }
        }
        let event = ctx.event();
        let recording = self.recordings.get_mut(&snapshot).expect("recorded above");
        let channel = recording
            .channels
            .iter_mut()
            .find(|(sender, _, _)| *sender == from)
            .expect("markers come on incoming channels");
        if !channel.1 {
            // A second marker on a recorded channel: only a duplicating network sends one.
            return;
        }
        channel.1 = false;
        recording.open -= 1;
        let messages = channel.2.iter().map(|(event, _)| *event).collect();
        ctx.note(SnapshotNote::ChannelClosed { snapshot, from, event, messages });
        if recording.open == 0 && !recording.done {
            recording.done = true;
            self.finish(ctx, snapshot);
        }
    }

    /// This process's part is done: send it to each initiator (or keep it, if this is one).
    fn finish(&mut self, ctx: &mut Context<'_, Self>, snapshot: SnapshotId) {
        let recording = &self.recordings[&snapshot];
        let part = Part {
            process: ctx.id(),
            recorded_at: recording.recorded_at,
            state: recording.state.clone(),
            channels: recording
                .channels
                .iter()
                .map(|(from, _, messages)| (*from, messages.clone()))
                .collect(),
        };
        let plan = Arc::clone(&self.plan);
        let initiators = &plan.snapshots[plan.index(snapshot)].initiators;
        for &initiator in initiators {
            self.forward(ctx, snapshot, initiator, Box::new(part.clone()));
        }
    }

    /// Delivers a part to `to` if that is this process, else sends it one hop closer.
    fn forward(&mut self, ctx: &mut Context<'_, Self>, snapshot: SnapshotId, to: NodeId, part: Box<Part<A>>) {
        if to == ctx.id() {
            self.collect(ctx, snapshot, *part);
        } else {
            let hop = self.plan.next_hop(snapshot, to, ctx.id());
            ctx.send(hop, Envelope::Part { snapshot, to, part });
        }
    }

    fn collect(&mut self, ctx: &mut Context<'_, Self>, snapshot: SnapshotId, part: Part<A>) {
        let n = self.plan.topology.n_processes();
        let parts = self.assembling.entry(snapshot).or_default();
        parts.insert(part.process, part);
        if parts.len() == n && !self.assembled.contains_key(&snapshot) {
            let parts = std::mem::take(parts).into_values().collect();
            self.assembled.insert(snapshot, Assembled { snapshot, at: ctx.true_time(), parts });
            ctx.note(SnapshotNote::Assembled { snapshot });
        }
    }

    fn on_app_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: A::Msg) {
        if self.plan.record_channel == RecordChannel::UntilMarker {
            let event = ctx.event();
            for recording in self.recordings.values_mut().filter(|r| r.open > 0) {
                if let Some((_, true, messages)) =
                    recording.channels.iter_mut().find(|(sender, open, _)| *sender == from && *open)
                {
                    messages.push((event, msg.clone()));
                    ctx.sometimes(MESSAGE_RECORDED);
                }
            }
        }
        let (app, mut app_ctx) = Self::app_ctx(&mut self.app, &self.plan, ctx);
        app.on_message(&mut app_ctx, from, msg);
    }
}

impl<A: Application> Node for SnapshotNode<A> {
    type Msg = Envelope<A>;
    type Timer = SnapshotTimer<A::Timer>;
    type Durable = ();
    type Op = SnapshotNote;

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        let me = ctx.id();
        let plan = Arc::clone(&self.plan);
        for planned in plan.snapshots.iter().filter(|s| s.initiators.contains(&me)) {
            ctx.set_timer(planned.at, SnapshotTimer::Initiate(planned.id));
        }
        let (app, mut app_ctx) = Self::app_ctx(&mut self.app, &plan, ctx);
        app.on_start(&mut app_ctx);
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Envelope<A>) {
        match msg {
            Envelope::App(msg) => self.on_app_message(ctx, from, msg),
            Envelope::Marker { snapshot } => self.on_marker(ctx, from, snapshot),
            Envelope::Part { snapshot, to, part } => self.forward(ctx, snapshot, to, part),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: SnapshotTimer<A::Timer>) {
        match timer {
            SnapshotTimer::App(timer) => {
                let plan = Arc::clone(&self.plan);
                let (app, mut app_ctx) = Self::app_ctx(&mut self.app, &plan, ctx);
                app.on_timer(&mut app_ctx, timer);
            }
            SnapshotTimer::Initiate(snapshot) => {
                // Initiators of one snapshot start at the same moment, before any marker
                // can arrive; only a process restarted after a crash (outside the model)
                // can find that it recorded already.
                if !self.recordings.contains_key(&snapshot) {
                    self.record(ctx, snapshot);
                }
            }
            SnapshotTimer::SendMarkers(snapshot) => self.send_markers(ctx, snapshot),
        }
    }
}
