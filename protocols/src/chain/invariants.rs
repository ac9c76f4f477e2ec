//! The paper's invariants (van Renesse and Schneider, section 3), checked after every
//! step against the servers' state and the master's configuration. Each compares what
//! the servers hold, not what they believe of each other: a server's history of applied
//! updates carries a running digest, so "this history is a prefix of that one" costs one
//! comparison, and a check after every step costs a few per server.
//!
//! The paper states its invariants for a chain with no message in flight; here a forward
//! or an acknowledgement may be on its way at any step, so each is checked in the form
//! that holds at every step and implies the paper's once the messages have arrived.

use super::{ChainNode, Master, Server, MASTER};
use crate::kv::{KvOp, KvRecord, KvResult, RequestId};
use sim_core::{CheckError, EntryKind, Invariant, NodeId, World};
use std::collections::BTreeSet;

pub const UPDATE_PROPAGATION: &str = "update-propagation";
pub const SENT_LIST: &str = "sent-list";
pub const NO_ACKNOWLEDGED_UPDATE_LOST: &str = "no-acknowledged-update-lost";
pub const ONE_HEAD_ONE_TAIL: &str = "one-head-one-tail";

fn master(world: &World<ChainNode>) -> &Master {
    match world.node(MASTER) {
        Some(ChainNode::Master(master)) => master,
        _ => panic!("the master (n0) never crashes: the fault model says so"),
    }
}

fn server(world: &World<ChainNode>, id: NodeId) -> Option<&Server> {
    match world.node(id) {
        Some(ChainNode::Server(server)) if server.installed() => Some(server),
        _ => None,
    }
}

/// The master's chain, head first, with the servers that are up and hold the state
/// (an iterator: the checks run after every step, and allocate nothing).
fn live_chain(world: &World<ChainNode>) -> impl Iterator<Item = (NodeId, &Server)> {
    master(world).members().filter_map(|id| Some((id, server(world, id)?)))
}

/// Each server of the live chain with the next one, if any.
fn live_pairs(
    world: &World<ChainNode>,
) -> impl Iterator<Item = ((NodeId, &Server), Option<(NodeId, &Server)>)> {
    let mut chain = live_chain(world).peekable();
    std::iter::from_fn(move || {
        let this = chain.next()?;
        Some((this, chain.peek().copied()))
    })
}

/// Where two histories first differ, in words.
fn first_difference(earlier: (NodeId, &Server), later: (NodeId, &Server)) -> String {
    let (a, b) = (earlier.1.history(), later.1.history());
    let at = a.iter().zip(b).position(|(x, y)| x.digest != y.digest).unwrap_or(a.len().min(b.len()));
    match (a.get(at), b.get(at)) {
        (Some(x), Some(y)) => format!(
            "its update #{} is seq {} ({}), where {} has seq {} ({})",
            at + 1,
            y.seq,
            y.request,
            earlier.0,
            x.seq,
            x.request
        ),
        (None, Some(y)) => {
            format!(
                "it has update #{} (seq {}, {}), which {} does not have",
                at + 1,
                y.seq,
                y.request,
                earlier.0
            )
        }
        _ => "the histories differ".to_string(),
    }
}

/// `update-propagation`: for servers i before j in the current chain, j's applied updates
/// are a prefix of i's (the paper's Update Propagation Invariant).
#[derive(Clone, Default)]
pub struct UpdatePropagation;

impl Invariant<ChainNode> for UpdatePropagation {
    fn name(&self) -> &'static str {
        UPDATE_PROPAGATION
    }

    fn check_step(&mut self, world: &World<ChainNode>) -> Result<(), CheckError> {
        for ((i, before), next) in live_pairs(world) {
            let Some((j, after)) = next else { continue };
            let (a, b) = (before.history(), after.history());
            let prefix =
                b.len() <= a.len() && b.last().is_none_or(|last| a[b.len() - 1].digest == last.digest);
            if !prefix {
                return Err(format!(
                    "{j} comes after {i} in the chain, so its updates must be a prefix of {i}'s, but \
                     {}. ({j} has {} updates, {i} has {}.) Updates reach a server only through its \
                     predecessor, in order: a server missing updates its successor has means they were \
                     lost on the way, as when a failed middle server's Sent updates are not re-sent \
                     (resend_on_middle_failure: false)",
                    first_difference((i, before), (j, after)),
                    b.len(),
                    a.len()
                )
                .into());
            }
        }
        Ok(())
    }
}

/// `sent-list`: each server's Sent list is the end of its own updates, every update it has
/// dropped from it (acknowledged by the tail) has reached its successor, and the tail's
/// Sent list is empty: with nothing in flight, i's updates = j's updates followed by i's
/// Sent list (the paper's Inprocess Requests Invariant).
#[derive(Clone, Default)]
pub struct SentList;

impl Invariant<ChainNode> for SentList {
    fn name(&self) -> &'static str {
        SENT_LIST
    }

    fn check_step(&mut self, world: &World<ChainNode>) -> Result<(), CheckError> {
        for ((i, server), next) in live_pairs(world) {
            let (history, sent) = (server.history(), server.sent());
            if server.is_tail() && !sent.is_empty() {
                return Err(format!(
                    "{i} is the tail but its Sent list holds {} updates (first seq {}): the tail has no \
                     successor to forward to",
                    sent.len(),
                    sent[0].seq
                )
                .into());
            }
            if let (Some(first), Some(last)) = (sent.front(), sent.back()) {
                let n = history.len();
                let suffix = sent.len() <= n
                    && history[n - sent.len()].seq == first.seq
                    && history[n - 1].seq == last.seq;
                if !suffix {
                    return Err(format!(
                        "{i}'s Sent list (seq {} to {}) is not the end of its {} updates",
                        first.seq, last.seq, n
                    )
                    .into());
                }
            }
            let Some((j, next)) = next else { continue };
            let done = history.len() - sent.len();
            if next.history().len() < done {
                let missing = &history[next.history().len()];
                return Err(format!(
                    "{i} has {} updates and {} in its Sent list, so its successor {j} should have at least \
                     the first {done}, but it has {}: seq {} ({}) left {i}'s Sent list (the tail acknowledged \
                     a later update) without reaching {j}. An update may leave a Sent list only once every \
                     server after it has it",
                    history.len(),
                    sent.len(),
                    next.history().len(),
                    missing.seq,
                    missing.request
                )
                .into());
            }
        }
        Ok(())
    }
}

/// `no-acknowledged-update-lost`: after every reconfiguration, and at the end, the tail
/// holds every update a client was told is done.
#[derive(Clone, Default)]
pub struct NoAcknowledgedUpdateLost {
    cursor: usize,
    acknowledged: Vec<(RequestId, KvOp)>,
    epoch: u64,
}

impl NoAcknowledgedUpdateLost {
    fn check(&mut self, world: &World<ChainNode>, when: &str) -> Result<(), CheckError> {
        let history = world.history();
        let (_, fresh) = history.since(&mut self.cursor);
        for entry in fresh {
            if let (EntryKind::Return { id }, KvRecord::Return(KvResult::Done)) = (&entry.kind, &entry.op) {
                if let KvRecord::Call { request, op } = &history.invocation(*id).op {
                    self.acknowledged.push((*request, op.clone()));
                }
            }
        }
        let Some((tail, server)) = live_chain(world).last() else {
            // Every server is down: outside the fault model, nothing to check.
            return Ok(());
        };
        let held: BTreeSet<RequestId> = server.history().iter().map(|a| a.request).collect();
        if let Some((request, op)) = self.acknowledged.iter().find(|(r, _)| !held.contains(r)) {
            return Err(format!(
                "{when}, the tail {tail} does not hold {request} ({op}), though its client was told it was \
                 done: an update is done only once the tail has applied it (a head that answers first, \
                 ack_before_tail, tells clients of updates a failure can still lose)"
            )
            .into());
        }
        Ok(())
    }
}

impl Invariant<ChainNode> for NoAcknowledgedUpdateLost {
    fn name(&self) -> &'static str {
        NO_ACKNOWLEDGED_UPDATE_LOST
    }

    fn check_step(&mut self, world: &World<ChainNode>) -> Result<(), CheckError> {
        let epoch = master(world).epoch();
        if epoch == self.epoch {
            return Ok(());
        }
        self.epoch = epoch;
        self.check(world, &format!("after reconfiguration {epoch}"))
    }

    fn check_end(&mut self, world: &World<ChainNode>) -> Result<(), CheckError> {
        self.check(world, "when the run ended")
    }
}

/// `one-head-one-tail`: at most one server acts as head and one as tail at any moment,
/// every configuration the master makes has one head and one tail (a non-empty chain of
/// distinct servers), and only the tail answers queries.
#[derive(Clone)]
pub struct OneHeadOneTail {
    /// Servers and spares: nodes 1..=servers.
    servers: u32,
    /// Queries each server had answered after the last step, by node index.
    answered: Vec<u64>,
    epoch: u64,
}

impl OneHeadOneTail {
    /// The check over nodes 1..=`servers` (the chain's servers and the spares).
    pub fn new(servers: u32) -> OneHeadOneTail {
        OneHeadOneTail { servers, answered: vec![0; servers as usize + 1], epoch: 0 }
    }
}

impl Invariant<ChainNode> for OneHeadOneTail {
    fn name(&self) -> &'static str {
        ONE_HEAD_ONE_TAIL
    }

    fn check_step(&mut self, world: &World<ChainNode>) -> Result<(), CheckError> {
        let master = master(world);
        if master.epoch() != self.epoch {
            self.epoch = master.epoch();
            let members: Vec<NodeId> = master.members().collect();
            let distinct: BTreeSet<&NodeId> = members.iter().collect();
            if distinct.len() != members.len() {
                return Err(format!("configuration {} lists a server twice: {members:?}", self.epoch).into());
            }
        }
        let (mut heads, mut tails) = (0, 0);
        for id in (1..=self.servers).map(NodeId) {
            let Some(ChainNode::Server(server)) = world.node(id) else { continue };
            heads += usize::from(server.is_head());
            tails += usize::from(server.is_tail());
            let answered = server.queries_answered();
            if answered > self.answered[id.index()] && !server.is_tail() {
                let role = if server.is_head() { "the head" } else { "a server before the tail" };
                return Err(format!(
                    "{id} answered a query but it is {role}, not the tail: it may have applied updates the \
                     tail has not, which a failure can still lose (read_from: head)"
                )
                .into());
            }
            self.answered[id.index()] = answered;
        }
        if heads > 1 || tails > 1 {
            let acting = |is: fn(&Server) -> bool| -> Vec<NodeId> {
                (1..=self.servers).map(NodeId).filter(|&id| server(world, id).is_some_and(is)).collect()
            };
            return Err(format!(
                "{heads} servers act as head ({:?}) and {tails} as tail ({:?}): a configuration has one of each",
                acting(Server::is_head),
                acting(Server::is_tail)
            )
            .into());
        }
        Ok(())
    }
}
