//! The directed channels a snapshot protocol runs over, as a scenario names them
//! (`complete`, `ring`, `bidirectional-ring`, `star`, or an explicit edge list), built into
//! a petgraph graph, checked to be strongly connected, and turned into the per-process
//! lists the layer needs: outgoing channels, incoming channels, and the next hop towards
//! each initiator (parts of a snapshot travel to their initiators over channels too).
//!
//! Chandy-Lamport needs a strongly connected network: a marker reaches a process only
//! along channels, so a process no path reaches never records, and the snapshot never
//! completes. Such a topology is bad input, rejected with one pair that has no path.

use crate::registry::{check_max, FieldError, PathSeg};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Bfs, Reversed};
use petgraph::Direction;
use serde::{Deserialize, Serialize};
use sim_core::NodeId;
use std::collections::{BTreeSet, VecDeque};

/// The channels, as a scenario names them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum TopologySpec {
    /// A channel from every process to every other.
    #[default]
    Complete,
    /// One way around: `i -> i+1`, the last to 0.
    Ring,
    /// Both ways around: `i -> i+1` and `i+1 -> i`.
    BidirectionalRing,
    /// Process 0 in the middle, a channel each way between it and every other.
    Star,
    /// Exactly these channels, `[from, to]`.
    Edges(Vec<[u32; 2]>),
}

/// The most channels an explicit edge list may name.
pub const EDGES_MAX: usize = 40_000;

impl TopologySpec {
    /// The channels of `n` processes, `(from, to)`, sorted and without repeats.
    pub fn edges(&self, n: u32) -> Vec<(u32, u32)> {
        let mut edges: BTreeSet<(u32, u32)> = BTreeSet::new();
        match self {
            TopologySpec::Complete => {
                for from in 0..n {
                    edges.extend((0..n).filter(|&to| to != from).map(|to| (from, to)));
                }
            }
            TopologySpec::Ring | TopologySpec::BidirectionalRing => {
                for i in 0..n {
                    let next = (i + 1) % n;
                    if next != i {
                        edges.insert((i, next));
                        if *self == TopologySpec::BidirectionalRing {
                            edges.insert((next, i));
                        }
                    }
                }
            }
            TopologySpec::Star => {
                for i in 1..n {
                    edges.insert((0, i));
                    edges.insert((i, 0));
                }
            }
            TopologySpec::Edges(list) => edges.extend(list.iter().map(|[from, to]| (*from, *to))),
        }
        edges.into_iter().collect()
    }

    /// How many channels it has for `n` processes (without building them).
    pub fn n_edges(&self, n: u32) -> u64 {
        let n = u64::from(n);
        match self {
            TopologySpec::Complete => n * n.saturating_sub(1),
            TopologySpec::Ring => n,
            TopologySpec::BidirectionalRing => {
                if n == 2 {
                    2
                } else {
                    2 * n
                }
            }
            TopologySpec::Star => 2 * n.saturating_sub(1),
            TopologySpec::Edges(list) => list.len() as u64,
        }
    }

    /// Checks the topology of `n` processes for the protocol `protocol`: every edge names
    /// two different processes, none twice, and every process reaches every other.
    pub fn validate(&self, protocol: &str, n: u32) -> Result<(), FieldError> {
        let path = ["protocol", protocol, "topology"];
        if let TopologySpec::Edges(list) = self {
            check_max(&[path.as_slice(), &["edges"]].concat(), list.len() as u64, EDGES_MAX as u64)?;
            let mut seen = BTreeSet::new();
            for (i, [from, to]) in list.iter().enumerate() {
                let at = |message: String| {
                    let mut segments: Vec<PathSeg> =
                        path.iter().map(|k| PathSeg::Key(k.to_string())).collect();
                    segments.push(PathSeg::Key("edges".into()));
                    segments.push(PathSeg::Index(i));
                    FieldError { path: segments, message }
                };
                if let Some(bad) = [from, to].into_iter().find(|&&p| p >= n) {
                    return Err(at(format!(
                        "process {bad} does not exist: with {n} processes they are 0..={}",
                        n.saturating_sub(1)
                    )));
                }
                if from == to {
                    return Err(at(format!("[{from}, {to}] is a channel from a process to itself")));
                }
                if !seen.insert((from, to)) {
                    return Err(at(format!("the channel {from} -> {to} is listed twice")));
                }
            }
        }
        if let Some((from, to)) = Topology::build(self, n).unreachable_pair() {
            return Err(FieldError::at(
                &path,
                format!(
                    "the topology is not strongly connected: no path of channels leads from n{from} \
                     to n{to}, so a marker could never reach every process (Chandy-Lamport needs \
                     every process to reach every other)"
                ),
            ));
        }
        Ok(())
    }
}

/// A built topology: the graph and, per process, its channels in id order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Topology {
    /// Each process's outgoing channels: the processes it may send to, in id order.
    outgoing: Vec<Vec<NodeId>>,
    /// Each process's incoming channels: the processes it hears from, in id order.
    incoming: Vec<Vec<NodeId>>,
}

impl Topology {
    /// The channels of `n` processes as `spec` names them (edges already validated).
    pub fn build(spec: &TopologySpec, n: u32) -> Topology {
        let mut outgoing = vec![Vec::new(); n as usize];
        let mut incoming = vec![Vec::new(); n as usize];
        for (from, to) in spec.edges(n) {
            outgoing[from as usize].push(NodeId(to));
            incoming[to as usize].push(NodeId(from));
        }
        for list in incoming.iter_mut() {
            list.sort();
        }
        Topology { outgoing, incoming }
    }

    /// How many processes.
    pub fn n_processes(&self) -> usize {
        self.outgoing.len()
    }

    /// The petgraph graph: one graph node per process (node `i` is process `i`), one edge
    /// per channel.
    pub fn graph(&self) -> DiGraph<NodeId, ()> {
        let mut graph = DiGraph::with_capacity(self.n_processes(), self.n_channels());
        for i in 0..self.n_processes() {
            graph.add_node(NodeId(i as u32));
        }
        for (from, targets) in self.outgoing.iter().enumerate() {
            for to in targets {
                graph.add_edge(NodeIndex::new(from), NodeIndex::new(to.index()), ());
            }
        }
        graph
    }

    /// One pair `(from, to)` with no path from `from` to `to`, if the graph is not strongly
    /// connected: process 0 must reach every process, and every process must reach 0.
    pub fn unreachable_pair(&self) -> Option<(u32, u32)> {
        let graph = self.graph();
        let start = NodeIndex::new(0);
        let reached = |mut bfs_next: Box<dyn FnMut() -> Option<NodeIndex> + '_>| {
            let mut seen = vec![false; self.n_processes()];
            while let Some(node) = bfs_next() {
                seen[node.index()] = true;
            }
            seen
        };
        let mut forward = Bfs::new(&graph, start);
        let from_zero = reached(Box::new(|| forward.next(&graph)));
        if let Some(to) = from_zero.iter().position(|seen| !seen) {
            return Some((0, to as u32));
        }
        let reversed = Reversed(&graph);
        let mut backward = Bfs::new(reversed, start);
        let to_zero = reached(Box::new(|| backward.next(reversed)));
        to_zero.iter().position(|seen| !seen).map(|from| (from as u32, 0))
    }

    /// How many channels.
    pub fn n_channels(&self) -> usize {
        self.outgoing.iter().map(Vec::len).sum()
    }

    /// The processes `node` may send to, in id order.
    pub fn outgoing(&self, node: NodeId) -> &[NodeId] {
        &self.outgoing[node.index()]
    }

    /// The processes `node` hears from, in id order.
    pub fn incoming(&self, node: NodeId) -> &[NodeId] {
        &self.incoming[node.index()]
    }

    /// Whether there is a channel `from -> to`.
    pub fn has_channel(&self, from: NodeId, to: NodeId) -> bool {
        self.outgoing[from.index()].binary_search(&to).is_ok()
    }

    /// For each process, the first hop of a shortest path of channels to `target` (itself
    /// for `target`): a breadth-first search from `target` against the channels' direction.
    pub fn next_hops(&self, target: NodeId) -> Vec<NodeId> {
        let graph = self.graph();
        let mut hop: Vec<Option<NodeId>> = vec![None; self.n_processes()];
        hop[target.index()] = Some(target);
        let mut queue = VecDeque::from([NodeIndex::new(target.index())]);
        while let Some(node) = queue.pop_front() {
            let mut senders: Vec<NodeIndex> = graph.neighbors_directed(node, Direction::Incoming).collect();
            senders.sort();
            for sender in senders {
                if hop[sender.index()].is_none() {
                    hop[sender.index()] = Some(NodeId(node.index() as u32));
                    queue.push_back(sender);
                }
            }
        }
        hop.into_iter().map(|h| h.expect("a strongly connected topology reaches every target")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_topologies_have_their_channels() {
        assert_eq!(TopologySpec::Ring.edges(3), vec![(0, 1), (1, 2), (2, 0)]);
        assert_eq!(TopologySpec::BidirectionalRing.edges(3).len(), 6);
        assert_eq!(TopologySpec::Star.edges(3), vec![(0, 1), (0, 2), (1, 0), (2, 0)]);
        assert_eq!(TopologySpec::Complete.edges(4).len(), 12);
        for spec in
            [TopologySpec::Ring, TopologySpec::BidirectionalRing, TopologySpec::Star, TopologySpec::Complete]
        {
            for n in 2..6 {
                assert_eq!(spec.edges(n).len() as u64, spec.n_edges(n), "{spec:?} {n}");
                assert_eq!(Topology::build(&spec, n).unreachable_pair(), None, "{spec:?} {n}");
            }
        }
    }

    #[test]
    fn a_topology_that_is_not_strongly_connected_names_a_pair() {
        let line = TopologySpec::Edges(vec![[0, 1], [1, 2]]);
        assert_eq!(Topology::build(&line, 3).unreachable_pair(), Some((1, 0)));
        let err = line.validate("snapshot-bank", 3).unwrap_err();
        assert!(err.message.contains("no path of channels leads from n1 to n0"), "{}", err.message);
        let island = TopologySpec::Edges(vec![[0, 1], [1, 0]]);
        assert_eq!(Topology::build(&island, 3).unreachable_pair(), Some((0, 2)));
    }

    #[test]
    fn next_hops_follow_the_channels() {
        let ring = Topology::build(&TopologySpec::Ring, 4);
        assert_eq!(ring.next_hops(NodeId(0)), vec![NodeId(0), NodeId(2), NodeId(3), NodeId(0)]);
        let star = Topology::build(&TopologySpec::Star, 4);
        assert_eq!(star.next_hops(NodeId(3)), vec![NodeId(3), NodeId(0), NodeId(0), NodeId(3)]);
    }
}
