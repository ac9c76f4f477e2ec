//! Ground-truth causality: the happens-before relation over every node event of a run,
//! tracked by the simulator itself, independently of any protocol.
//!
//! A *node event* is something one node does: start (or restart), receive a message, have
//! a timer fire, send a message, or mark an explicit local event (`ctx.local_event`). Each
//! handler run is one event (its start, receive or timer), followed by one event per send
//! and per local event it makes, in the order it made them.
//!
//! Lamport's happens-before (`a -> b`) is the smallest transitive relation with `a -> b`
//! when `a` comes before `b` on the same node, and `send(m) -> receive(m)`. The simulator
//! knows every edge, so it can stamp each event with its exact vector clock: the number of
//! events of each node that happened before it or are it. Then, for events `a != b`,
//! `a -> b` iff `V(a)[node(a)] <= V(b)[node(a)]`: one comparison. A duplicated message is
//! one send with several receives; a dropped one is a send with none.
//!
//! Tracking records each event (its node, position, kind and ground-truth Lamport time) in
//! O(1), and is off unless a run asks for it ([`SimConfig::causality`](crate::SimConfig),
//! or an invariant whose [`needs_causality`](crate::Invariant::needs_causality) is true),
//! so the event loop pays nothing for it otherwise. The vector stamps (`n_nodes` entries
//! per event, fine up to a few hundred nodes) are worked out on first use, for every event
//! recorded so far: a checker that only follows edges (the Lamport invariants) or only
//! asks for an explanation once it has found a violation never pays for them.
//!
//! Exports: the causal graph as a petgraph graph and as Graphviz DOT ([`Causality::graph`],
//! [`Causality::dot`]), and a ShiViz log ([`Causality::shiviz`]).

use crate::node::TimerId;
use crate::physical::LocalTime;
use crate::time::{NodeId, SimTime};
use crate::trace::MsgId;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use std::cell::{Ref, RefCell};
use std::fmt;

/// Identifies one node event: its position in the run's causal record, from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(pub u64);

impl EventId {
    /// The id as an index into the run's list of events.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// A Lamport timestamp. A newtype, so that it cannot be passed where a time belongs.
///
/// ```
/// use sim_core::LamportTime;
/// assert!(LamportTime(1) < LamportTime(2));
/// assert_eq!(LamportTime(3).to_string(), "L3");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LamportTime(pub u64);

impl fmt::Display for LamportTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

/// How two vector clocks (or two events) relate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CausalOrder {
    /// The first happened before the second.
    Before,
    /// The second happened before the first.
    After,
    /// The same clock (the same event).
    Same,
    /// Neither happened before the other.
    Concurrent,
}

/// A vector clock: entry `k` counts the events of node `k` known to have happened.
///
/// The order is the correct one: `v < w` iff `v <= w` in every entry and `v != w`; two
/// clocks are concurrent iff neither is `<=` the other.
///
/// ```
/// use sim_core::{CausalOrder, VectorClock};
/// let a = VectorClock::from(vec![1, 0, 0]);
/// let b = VectorClock::from(vec![2, 1, 0]);
/// let c = VectorClock::from(vec![0, 0, 1]);
/// assert_eq!(a.compare(&b), CausalOrder::Before);
/// assert_eq!(b.compare(&a), CausalOrder::After);
/// assert_eq!(a.compare(&c), CausalOrder::Concurrent);
/// assert_eq!(a.to_string(), "[1,0,0]");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VectorClock(pub Vec<u32>);

impl VectorClock {
    /// All zeros, for `n_nodes` nodes.
    pub fn new(n_nodes: usize) -> VectorClock {
        VectorClock(vec![0; n_nodes])
    }

    /// The entries, one per node, by node index.
    pub fn entries(&self) -> &[u32] {
        &self.0
    }

    /// The correct partial order of vector clocks.
    pub fn compare(&self, other: &VectorClock) -> CausalOrder {
        compare_entries(&self.0, &other.0)
    }
}

impl From<Vec<u32>> for VectorClock {
    fn from(entries: Vec<u32>) -> Self {
        VectorClock(entries)
    }
}

impl fmt::Display for VectorClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_entries(f, &self.0)
    }
}

fn write_entries(f: &mut impl fmt::Write, entries: &[u32]) -> fmt::Result {
    f.write_char('[')?;
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{e}")?;
    }
    f.write_char(']')
}

/// The correct order of two vectors of equal length.
pub fn compare_entries(a: &[u32], b: &[u32]) -> CausalOrder {
    assert_eq!(a.len(), b.len(), "comparing vector clocks of different sizes");
    let (mut less, mut greater) = (false, false);
    for (x, y) in a.iter().zip(b) {
        less |= x < y;
        greater |= x > y;
    }
    match (less, greater) {
        (false, false) => CausalOrder::Same,
        (true, false) => CausalOrder::Before,
        (false, true) => CausalOrder::After,
        (true, true) => CausalOrder::Concurrent,
    }
}

/// What a node event was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NodeEventKind {
    /// The node started (its `on_start` ran).
    Start,
    /// The node restarted after a crash (its `on_start` ran again).
    Restart,
    /// A timer fired.
    Timer {
        /// The timer that fired.
        timer_id: TimerId,
    },
    /// An explicit local event (`ctx.local_event`).
    Local,
    /// The node sent a message (whether or not the network delivers it).
    Send {
        /// The node it is addressed to.
        to: NodeId,
        /// The id of the message copy.
        msg_id: MsgId,
    },
    /// A message (or a duplicate copy of one) was delivered; `send` is its send event.
    Receive {
        /// The node that sent it.
        from: NodeId,
        /// The id of the copy delivered.
        msg_id: MsgId,
        /// The event that sent it.
        send: EventId,
    },
}

/// One recorded node event with its ground-truth stamps.
#[derive(Clone, Debug, Serialize)]
pub struct NodeEvent {
    /// The event's id.
    pub id: EventId,
    /// The node it happened on.
    pub node: NodeId,
    /// Its position on its node, from 1: node `n`'s event `seq` is shown `n:seq`, and it is
    /// the node's own entry of the event's vector clock.
    pub seq: u32,
    /// What happened.
    pub kind: NodeEventKind,
    /// The virtual time it happened at.
    pub time: SimTime,
    /// What the node's physical clock read.
    pub local_time: LocalTime,
    /// The ground-truth Lamport time (Lamport 1978 rules).
    pub lamport: LamportTime,
}

impl NodeEvent {
    /// `n1:3`: the node and the event's position on it.
    pub fn name(&self) -> String {
        format!("{}:{}", self.node, self.seq)
    }
}

/// An edge of the causal graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CausalEdge {
    /// The next event on the same node.
    Process,
    /// From a send to a receive of that message.
    Message(MsgId),
}

impl fmt::Display for CausalEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CausalEdge::Process => Ok(()),
            CausalEdge::Message(id) => write!(f, "m{}", id.0),
        }
    }
}

/// The ground-truth causal record of a run.
///
/// ```
/// use sim_core::{Causality, EventId, LocalTime, MsgId, NodeEventKind, NodeId, SimTime};
/// let mut causality = Causality::new(2);
/// let at = (SimTime::ZERO, LocalTime::default());
/// let send = causality.record(NodeId(0), NodeEventKind::Send { to: NodeId(1), msg_id: MsgId(0) }, at, String::new());
/// let local = causality.record(NodeId(1), NodeEventKind::Local, at, String::new());
/// let receive = causality.record(NodeId(1), NodeEventKind::Receive { from: NodeId(0), msg_id: MsgId(0), send }, at, String::new());
/// assert!(causality.happened_before(send, receive));
/// assert!(causality.happened_before(local, receive));
/// assert!(causality.concurrent(send, local));
/// assert_eq!(*causality.vector(receive), [1, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Causality {
    n_nodes: usize,
    events: Vec<NodeEvent>,
    /// The vector stamps of the events, as far as anyone has asked for them.
    vectors: RefCell<VectorStamps>,
    /// Each node's current Lamport time.
    lamport: Vec<LamportTime>,
    /// Each node's events, in order.
    by_node: Vec<Vec<EventId>>,
    /// The events' one-line descriptions, for exports: only those that have one (labels
    /// are off unless an export asks for them), so a record stays small.
    labels: Vec<(EventId, String)>,
    /// The send event of each message id (copies made by duplication included).
    send_of_message: Vec<Option<EventId>>,
}

/// Vector stamps of a prefix of the events, and each node's clock after that prefix.
#[derive(Clone, Debug)]
struct VectorStamps {
    /// The vector clock of each event stamped so far, `n_nodes` entries each, in event order.
    vectors: Vec<u32>,
    /// Each node's vector clock after the events stamped so far, `n_nodes` entries each.
    current: Vec<u32>,
}

impl VectorStamps {
    /// Stamps the events not stamped yet: a receive merges its send's vector first; every
    /// event then counts one more for its node.
    fn extend(&mut self, n: usize, events: &[NodeEvent]) {
        for event in &events[self.vectors.len() / n.max(1)..] {
            let row = event.node.index() * n;
            if let NodeEventKind::Receive { send, .. } = event.kind {
                let sent = send.index() * n;
                for k in 0..n {
                    self.current[row + k] = self.current[row + k].max(self.vectors[sent + k]);
                }
            }
            self.current[row + event.node.index()] += 1;
            assert_eq!(
                self.current[row + event.node.index()],
                event.seq,
                "{} stamped out of order",
                event.id
            );
            self.vectors.extend_from_slice(&self.current[row..row + n]);
        }
    }
}

impl Causality {
    /// An empty record for `n_nodes` nodes.
    pub fn new(n_nodes: usize) -> Causality {
        Causality {
            n_nodes,
            events: Vec::new(),
            vectors: RefCell::new(VectorStamps { vectors: Vec::new(), current: vec![0; n_nodes * n_nodes] }),
            lamport: vec![LamportTime(0); n_nodes],
            by_node: vec![Vec::new(); n_nodes],
            labels: Vec::new(),
            send_of_message: Vec::new(),
        }
    }

    /// How many nodes the run has.
    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    /// Every event so far, in the order they happened.
    pub fn events(&self) -> &[NodeEvent] {
        &self.events
    }

    /// How many events were recorded.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether no event was recorded.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The event with this id.
    pub fn event(&self, id: EventId) -> &NodeEvent {
        &self.events[id.index()]
    }

    /// An event's one-line description (empty unless labels were asked for, or it is a
    /// local event, which is always labelled).
    pub fn label(&self, id: EventId) -> &str {
        match self.labels.binary_search_by_key(&id, |(labelled, _)| *labelled) {
            Ok(found) => &self.labels[found].1,
            Err(_) => "",
        }
    }

    /// The events of one node, in order (`node_events(n)[k]` is `n:(k+1)`).
    pub fn node_events(&self, node: NodeId) -> &[EventId] {
        &self.by_node[node.index()]
    }

    /// The exact vector clock of an event.
    pub fn vector(&self, id: EventId) -> Ref<'_, [u32]> {
        let n = self.n_nodes;
        let start = id.index() * n;
        assert!(id.index() < self.events.len(), "{id} is not recorded");
        // Stamps are worked out for every event recorded so far, in one go: events are only
        // recorded through `&mut self`, so no borrow handed out here is alive while a later
        // call needs to extend the stamps.
        if self.vectors.borrow().vectors.len() < self.events.len() * n {
            self.vectors.borrow_mut().extend(n, &self.events);
        }
        Ref::map(self.vectors.borrow(), |stamps| &stamps.vectors[start..start + n])
    }

    /// The send event of a message (or of a duplicate copy, by its copy id).
    pub fn send_of(&self, msg_id: MsgId) -> Option<EventId> {
        self.send_of_message.get(msg_id.0 as usize).copied().flatten()
    }

    /// Whether `a -> b`: `a` happened before `b` (never true for `a == b`).
    pub fn happened_before(&self, a: EventId, b: EventId) -> bool {
        if a == b {
            return false;
        }
        let node = self.events[a.index()].node.index();
        self.events[a.index()].seq <= self.vector(b)[node]
    }

    /// Whether neither of two distinct events happened before the other.
    pub fn concurrent(&self, a: EventId, b: EventId) -> bool {
        a != b && !self.happened_before(a, b) && !self.happened_before(b, a)
    }

    /// How `a` relates to `b` in happens-before.
    pub fn order(&self, a: EventId, b: EventId) -> CausalOrder {
        if a == b {
            CausalOrder::Same
        } else if self.happened_before(a, b) {
            CausalOrder::Before
        } else if self.happened_before(b, a) {
            CausalOrder::After
        } else {
            CausalOrder::Concurrent
        }
    }

    /// Notes that `msg_id` (a message, or a duplicate copy of one) was sent by `send`.
    /// Message ids are handed out in order, so this is a push.
    pub fn note_message(&mut self, msg_id: MsgId, send: EventId) {
        let index = msg_id.0 as usize;
        if self.send_of_message.len() <= index {
            self.send_of_message.resize(index + 1, None);
        }
        self.send_of_message[index] = Some(send);
    }

    /// Records the next event of `node` and stamps it with its Lamport time: a receive
    /// merges its send's first; every event then counts one more. (Its vector stamp follows
    /// the same rule, on first use: [`Causality::vector`].)
    pub fn record(
        &mut self,
        node: NodeId,
        kind: NodeEventKind,
        (time, local_time): (SimTime, LocalTime),
        label: String,
    ) -> EventId {
        let id = EventId(self.events.len() as u64);
        let mut lamport = self.lamport[node.index()];
        if let NodeEventKind::Receive { send, .. } = kind {
            assert!(send < id, "a receive ({id}) recorded before its send ({send})");
            lamport = lamport.max(self.events[send.index()].lamport);
        }
        let seq =
            u32::try_from(self.by_node[node.index()].len() + 1).expect("fewer than 2^32 events per node");
        lamport = LamportTime(lamport.0 + 1);
        self.lamport[node.index()] = lamport;
        self.by_node[node.index()].push(id);
        if !label.is_empty() {
            self.labels.push((id, label));
        }
        self.events.push(NodeEvent { id, node, seq, kind, time, local_time, lamport });
        id
    }

    /// The causal graph: one graph node per event (weight: its index in
    /// [`events`](Causality::events), so `NodeIndex::new(id.index())` is event `id`), an
    /// edge to each node's next event, and one from each send to each of its receives.
    pub fn graph(&self) -> DiGraph<EventId, CausalEdge> {
        let mut graph = DiGraph::with_capacity(self.events.len(), self.events.len() * 2);
        for event in &self.events {
            graph.add_node(event.id);
        }
        for events in &self.by_node {
            for pair in events.windows(2) {
                graph.add_edge(
                    NodeIndex::new(pair[0].index()),
                    NodeIndex::new(pair[1].index()),
                    CausalEdge::Process,
                );
            }
        }
        for event in &self.events {
            if let NodeEventKind::Receive { msg_id, send, .. } = event.kind {
                graph.add_edge(
                    NodeIndex::new(send.index()),
                    NodeIndex::new(event.id.index()),
                    CausalEdge::Message(msg_id),
                );
            }
        }
        graph
    }

    /// A shortest causal chain from `a` to `b` (both included), if `a -> b`: the readable
    /// evidence behind a happens-before claim.
    pub fn chain(&self, a: EventId, b: EventId) -> Option<Vec<EventId>> {
        if !self.happened_before(a, b) {
            return None;
        }
        let graph = self.graph();
        let goal = NodeIndex::new(b.index());
        let (_, path) =
            petgraph::algo::astar(&graph, NodeIndex::new(a.index()), |n| n == goal, |_| 1u32, |_| 0u32)?;
        Some(path.into_iter().map(|n| graph[n]).collect())
    }

    /// An event in a few words: `n1:3 (receive m4 from n0)`; a duplicate copy names the
    /// message it copies: `n1:3 (receive m5, a copy of m4, from n0)`.
    pub fn describe(&self, id: EventId) -> String {
        let event = self.event(id);
        let what = match event.kind {
            NodeEventKind::Receive { from, msg_id, send } => match self.event(send).kind {
                NodeEventKind::Send { msg_id: original, .. } if original != msg_id => {
                    format!("receive m{}, a copy of m{}, from {from}", msg_id.0, original.0)
                }
                _ => short_kind(&event.kind),
            },
            kind => short_kind(&kind),
        };
        format!("{} ({what})", event.name())
    }

    /// The chain from `a` to `b` as text: `n0:2 (send m3) -> n1:4 (receive m3) -> ...`.
    pub fn describe_chain(&self, a: EventId, b: EventId) -> String {
        match self.chain(a, b) {
            Some(chain) => chain.iter().map(|&id| self.describe(id)).collect::<Vec<_>>().join(" -> "),
            None => format!("no causal chain from {} to {}", self.event(a).name(), self.event(b).name()),
        }
    }

    /// The causal graph in Graphviz DOT: events labelled `n1:3 L5 [2,3,0] receive m4 ...`,
    /// process order as dotted edges, messages as solid edges labelled with their id.
    pub fn dot(&self) -> String {
        use petgraph::dot::{Config, Dot};
        let graph = self.graph();
        let node_attributes = |_: &DiGraph<EventId, CausalEdge>, (_, id): (NodeIndex, &EventId)| {
            let event = self.event(*id);
            let mut vector = String::new();
            write_entries(&mut vector, &self.vector(*id)).expect("writing to a string");
            let label = format!("{} {} {} {}", event.name(), event.lamport, vector, self.label(*id));
            format!("label = {:?}, group = \"{}\"", label, event.node)
        };
        let edge_attributes =
            |_: &DiGraph<EventId, CausalEdge>, edge: petgraph::graph::EdgeReference<'_, CausalEdge>| {
                match edge.weight() {
                    CausalEdge::Process => "style = dotted".to_string(),
                    CausalEdge::Message(id) => format!("label = \"m{}\"", id.0),
                }
            };
        let config = [Config::NodeNoLabel, Config::EdgeNoLabel];
        format!("{:?}", Dot::with_attr_getters(&graph, &config, &edge_attributes, &node_attributes))
    }

    /// The run as a ShiViz log (bestchai/shiviz, DistributedClocks/shiviz): a parser regex
    /// line, an empty line (one execution, no delimiter), then per event a line with the
    /// host and its vector clock as a JSON object, and a line with the event's text.
    /// Entries that are zero are left out, except the host's own, which is never zero.
    ///
    /// ```
    /// use sim_core::{Causality, LocalTime, NodeEventKind, NodeId, SimTime};
    /// let mut causality = Causality::new(2);
    /// let at = (SimTime::ZERO, LocalTime::default());
    /// causality.record(NodeId(1), NodeEventKind::Start, at, "start".into());
    /// let log = causality.shiviz();
    /// assert_eq!(log, "(?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)\n\nn1 {\"n1\":1}\nstart\n");
    /// ```
    pub fn shiviz(&self) -> String {
        let mut out = String::from(SHIVIZ_REGEX);
        out.push_str("\n\n");
        for event in &self.events {
            out.push_str(&format!("{} {{", event.node));
            let mut first = true;
            for (k, &entry) in self.vector(event.id).iter().enumerate() {
                if entry == 0 {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(&format!("\"n{k}\":{entry}"));
            }
            out.push_str("}\n");
            out.push_str(&self.label(event.id).replace(['\n', '\r'], " "));
            out.push('\n');
        }
        out
    }
}

/// The regex ShiViz parses [`Causality::shiviz`] logs with (GoVector's format).
pub const SHIVIZ_REGEX: &str = r"(?<host>\S*) (?<clock>{.*})\n(?<event>.*)";

/// A few words for an event's kind: `send m3 to n1`.
pub fn short_kind(kind: &NodeEventKind) -> String {
    match kind {
        NodeEventKind::Start => "start".into(),
        NodeEventKind::Restart => "restart".into(),
        NodeEventKind::Timer { timer_id } => format!("timer t{}", timer_id.0),
        NodeEventKind::Local => "local".into(),
        NodeEventKind::Send { to, msg_id } => format!("send m{} to {to}", msg_id.0),
        NodeEventKind::Receive { from, msg_id, .. } => format!("receive m{} from {from}", msg_id.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petgraph::algo::has_path_connecting;
    use proptest::prelude::*;

    /// Builds a random run: each step a node does a local event, sends to a random node,
    /// or receives one of the messages still in flight to it.
    fn random_run(n_nodes: usize, steps: &[(u8, u8, u8)]) -> Causality {
        let mut causality = Causality::new(n_nodes);
        let at = (SimTime::ZERO, LocalTime::default());
        let mut in_flight: Vec<(NodeId, NodeId, MsgId, EventId)> = Vec::new();
        let mut next_msg = 0;
        for &(what, a, b) in steps {
            let node = NodeId(u32::from(a) % n_nodes as u32);
            match what % 3 {
                0 => {
                    causality.record(node, NodeEventKind::Local, at, String::new());
                }
                1 => {
                    let to = NodeId(u32::from(b) % n_nodes as u32);
                    let msg_id = MsgId(next_msg);
                    next_msg += 1;
                    let send = causality.record(node, NodeEventKind::Send { to, msg_id }, at, String::new());
                    causality.note_message(msg_id, send);
                    in_flight.push((node, to, msg_id, send));
                }
                _ => {
                    if in_flight.is_empty() {
                        continue;
                    }
                    let (from, to, msg_id, send) = in_flight.remove(usize::from(b) % in_flight.len());
                    causality.record(to, NodeEventKind::Receive { from, msg_id, send }, at, String::new());
                }
            }
        }
        causality
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The vector-clock answer equals reachability in the causal graph, for every pair.
        #[test]
        fn happened_before_is_graph_reachability(
            n_nodes in 1usize..5,
            steps in proptest::collection::vec((0u8..3, 0u8..8, 0u8..8), 0..40),
        ) {
            let causality = random_run(n_nodes, &steps);
            let graph = causality.graph();
            for a in causality.events() {
                for b in causality.events() {
                    let reachable = a.id != b.id
                        && has_path_connecting(&graph, NodeIndex::new(a.id.index()), NodeIndex::new(b.id.index()), None);
                    prop_assert_eq!(causality.happened_before(a.id, b.id), reachable);
                    let lamport_ok = !reachable || a.lamport < b.lamport;
                    prop_assert!(lamport_ok, "clock condition for ground-truth Lamport stamps");
                }
            }
        }
    }

    #[test]
    fn a_chain_explains_transitive_causality() {
        let mut causality = Causality::new(3);
        let at = (SimTime::ZERO, LocalTime::default());
        let send = causality.record(
            NodeId(0),
            NodeEventKind::Send { to: NodeId(1), msg_id: MsgId(0) },
            at,
            String::new(),
        );
        let receive = causality.record(
            NodeId(1),
            NodeEventKind::Receive { from: NodeId(0), msg_id: MsgId(0), send },
            at,
            String::new(),
        );
        let forward = causality.record(
            NodeId(1),
            NodeEventKind::Send { to: NodeId(2), msg_id: MsgId(1) },
            at,
            String::new(),
        );
        let last = causality.record(
            NodeId(2),
            NodeEventKind::Receive { from: NodeId(1), msg_id: MsgId(1), send: forward },
            at,
            String::new(),
        );
        assert_eq!(causality.chain(send, last), Some(vec![send, receive, forward, last]));
        assert_eq!(
            causality.describe_chain(send, last),
            "n0:1 (send m0 to n1) -> n1:1 (receive m0 from n0) -> n1:2 (send m1 to n2) -> n2:1 (receive m1 from n1)"
        );
        assert_eq!(*causality.vector(last), [1, 2, 1]);
        assert_eq!(causality.event(last).lamport, LamportTime(4));
        assert!(causality.dot().contains("m1"));
    }
}
