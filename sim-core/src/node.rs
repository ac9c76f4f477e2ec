//! The node trait and the context through which a node acts.
//!
//! A node is a state machine. Its handlers do no I/O: they read their own state and the
//! [`Context`], and ask the context for effects (send, set or cancel a timer, draw a random
//! number, write durable storage, record a history operation), which the context applies
//! to the simulated world in the order asked. The same node therefore runs unchanged under
//! random simulation, replay, shrinking and exhaustive exploration, and every effect shows
//! in the trace.

use crate::causality::EventId;
use crate::history::OpId;
use crate::network::MessageClass;
use crate::physical::LocalTime;
use crate::rng::SimRng;
use crate::sim::World;
use crate::time::{NodeId, SimDuration, SimTime};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// How many times each "sometimes" point was reached in a run.
pub type Coverage = BTreeMap<&'static str, u64>;
use std::hash::Hash;

/// A message between nodes.
///
/// `class` tells network rules that treat requests and replies apart (labrpc's long
/// reordering slows replies only) which one this is.
pub trait Message: Clone + Debug + Hash + Serialize {
    /// Whether this message is a request, a reply or neither, for network rules. Neither,
    /// unless a protocol says otherwise.
    fn class(&self) -> MessageClass {
        MessageClass::Other
    }
}

/// A timer a node sets for itself.
pub trait TimerPayload: Clone + Debug + Hash + Serialize {}
impl<T: Clone + Debug + Hash + Serialize> TimerPayload for T {}

/// A node's state machine.
///
/// ```
/// use sim_core::{Context, Message, Node, NodeId};
/// use serde::Serialize;
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
/// struct Hello;
/// impl Message for Hello {}
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash)]
/// struct Greeter { greeted: u32 }
///
/// impl Node for Greeter {
///     type Msg = Hello;
///     type Timer = ();
///     type Durable = ();
///     type Op = ();
///     fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
///         if ctx.id() == NodeId(0) {
///             ctx.send(NodeId(1), Hello);
///         }
///     }
///     fn on_message(&mut self, _ctx: &mut Context<'_, Self>, _from: NodeId, _msg: Hello) {
///         self.greeted += 1;
///     }
///     fn on_timer(&mut self, _ctx: &mut Context<'_, Self>, _timer: ()) {}
/// }
/// ```
pub trait Node: Clone + Debug + Hash + Sized + 'static {
    /// The messages nodes send each other.
    type Msg: Message;
    /// The payload of the timers a node sets.
    type Timer: TimerPayload;
    /// Storage that survives a crash; a restarted node is rebuilt from it.
    type Durable: Clone + Debug + Default + Hash + Serialize;
    /// What goes into the history for checkers (client invocations and returns, and any
    /// ground-truth notes the protocol's invariants need).
    type Op: Clone + Debug + Hash + Serialize;

    /// Runs when the node starts, and again after each restart.
    fn on_start(&mut self, ctx: &mut Context<'_, Self>);
    /// Runs when a message from `from` is delivered.
    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: Self::Msg);
    /// Runs when one of the node's timers fires.
    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Self::Timer);
}

/// Identifies a timer so that the node that set it can cancel it. Opaque: only
/// [`Context::set_timer`] makes one, and [`Context::cancel_timer`] cancels only the
/// calling node's own timers, so one node cannot cancel another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TimerId(pub(crate) u64);

impl TimerId {
    pub(crate) fn new(seq: u64) -> TimerId {
        TimerId(seq)
    }

    /// The number the trace shows (`t5`): timers are numbered across the whole run.
    pub fn number(self) -> u64 {
        self.0
    }
}

/// What a handler may see and do. Each effect (send, timer, local event) is applied to the
/// world as the handler asks for it, in the order asked; the handler's node is taken out of
/// the world while it runs, so the two never alias.
pub struct Context<'a, N: Node> {
    pub(crate) node: NodeId,
    pub(crate) world: &'a mut World<N>,
    /// The node event the handler is at (see [`Context::event`]).
    pub(crate) event: EventId,
}

impl<N: Node> Context<'_, N> {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.node
    }

    /// How many nodes the simulation has (ids `0..n_nodes`).
    pub fn n_nodes(&self) -> usize {
        self.world.n_nodes()
    }

    /// The simulator's true virtual time, which no real node can read: use it for
    /// measurement (latencies, timeouts a test reports), not for protocol decisions. A
    /// node's own clock, as a real machine would read it (offset, drift), is
    /// [`Context::local_time`].
    pub fn true_time(&self) -> SimTime {
        self.world.now()
    }

    /// What this node's physical clock reads now: the true time, skewed by the node's
    /// offset and drift (see [`PhysicalClock`](crate::PhysicalClock)). Unlike
    /// [`Context::true_time`], readings of different nodes cannot be compared to order
    /// events. This is the clock a protocol should read.
    pub fn local_time(&self) -> LocalTime {
        self.world.local_time(self.node)
    }

    /// Sends a message; the network decides when (and whether) it arrives. The send is a
    /// node event: [`Context::event`] is its id afterwards.
    #[inline]
    pub fn send(&mut self, to: NodeId, msg: N::Msg) {
        assert!(to.index() < self.world.n_nodes(), "{} sent to unknown node {to}", self.node);
        self.event = self.world.new_event();
        self.world.send(self.node, to, msg, self.event);
    }

    /// Sends `msg` to every other node, in id order.
    pub fn broadcast(&mut self, msg: N::Msg) {
        for peer in self.peers() {
            self.send(peer, msg.clone());
        }
    }

    /// Every node but this one, in id order.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + 'static {
        let me = self.node;
        (0..self.world.n_nodes() as u32).map(NodeId).filter(move |&peer| peer != me)
    }

    /// True when this node was restarted after a crash (its durable storage is what it
    /// kept); false in the first incarnation.
    pub fn is_restart(&self) -> bool {
        self.world.incarnation(self.node) > 0
    }

    /// Marks a local event (a step of the node's work that is neither a send nor a
    /// receive), so that the causal record, its exports and any clock the protocol keeps
    /// can count it. Returns its id.
    pub fn local_event(&mut self, label: impl Into<String>) -> EventId {
        self.event = self.world.new_event();
        self.world.local_event(self.node, label.into(), self.event);
        self.event
    }

    /// The node event this handler is at: the start, receive or timer event that ran it,
    /// or the last send or local event it has made since. Events are numbered whether or
    /// not causality is tracked; with tracking on, `world.causality()` knows them all.
    pub fn event(&self) -> EventId {
        self.event
    }

    /// Sets a timer that fires after `after`, unless cancelled or the node crashes first.
    pub fn set_timer(&mut self, after: SimDuration, timer: N::Timer) -> TimerId {
        self.world.set_timer(self.node, after, timer)
    }

    /// Cancels one of this node's timers; cancelling one that already fired, or another
    /// node's, does nothing.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.world.cancel_timer(self.node, id);
    }

    /// This node's own random stream.
    pub fn rng(&mut self) -> &mut SimRng {
        self.world.rng_of(self.node)
    }

    /// Storage that survives a crash.
    pub fn durable(&mut self) -> &mut N::Durable {
        self.world.durable_of(self.node)
    }

    /// Records that a client operation starts; returns its id for [`Context::ret`].
    pub fn invoke(&mut self, op: N::Op) -> OpId {
        let (now, node) = (self.world.now(), self.node);
        self.world.history_mut().invoke(now, node, op)
    }

    /// Records that a client operation returned with the given result.
    pub fn ret(&mut self, id: OpId, result: N::Op) {
        let (now, node) = (self.world.now(), self.node);
        self.world.history_mut().ret(now, node, id, result);
    }

    /// Records a ground-truth note for checkers (e.g. "executed request r").
    pub fn note(&mut self, note: N::Op) {
        let (now, node) = (self.world.now(), self.node);
        self.world.history_mut().note(now, node, note);
    }

    /// Marks a rare path as reached ("a duplicate arrived while its original was
    /// pending"). Fuzz campaigns count how often each declared point is reached and list
    /// those never reached, so a campaign that missed the interesting case says so.
    pub fn sometimes(&mut self, point: &'static str) {
        self.world.reached(point);
    }
}
