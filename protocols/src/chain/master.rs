//! The configuration master: it hears a heartbeat from every server, declares a server
//! failed when none came for `detect_ms` (counted in its own timer ticks, so in virtual
//! time), and reconfigures the chain as van Renesse and Schneider describe: a failed head
//! is dropped and its successor told it has no predecessor; a failed tail is dropped and
//! its predecessor told it has no successor; a failed middle server S is dropped with a
//! handshake, first telling S's successor its new predecessor (it answers with the last
//! sequence number it received), then telling S's predecessor its new successor and that
//! number. Spares join at the tail. The master itself is assumed never to fail.

use super::{ChainMsg, ChainNode, ChainTimer};
use sim_core::{Context, NodeId, SimDuration};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What the master last told a server about its neighbours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct Told {
    pred: Option<Option<NodeId>>,
    /// The epoch of the last `SetPredecessor` sent: only its answer counts.
    pred_epoch: u64,
    succ: Option<Option<NodeId>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Master {
    heartbeat: SimDuration,
    /// Missed heartbeat periods before a server is declared failed.
    misses_max: u32,
    /// The chain, head first; a joining spare is its last member until its state arrives.
    chain: Vec<NodeId>,
    /// The member still waiting for its predecessor's state, if any.
    joining: Option<NodeId>,
    spares: VecDeque<NodeId>,
    epoch: u64,
    told: BTreeMap<NodeId, Told>,
    /// Heartbeat periods since each live server was last heard from.
    misses: BTreeMap<NodeId, u32>,
    failed: BTreeSet<NodeId>,
    clients: Vec<NodeId>,
    clients_done: BTreeSet<NodeId>,
    /// When a spare joins even without a failure.
    extend_at: Option<SimDuration>,
    /// Scheduled extensions still to start (one at a time).
    extend_wanted: u32,
    /// After a failure, spares join until the chain is this long again (0: never).
    length: usize,
    stopped: bool,
    /// The head and tail clients were last told.
    announced: (NodeId, NodeId),
}

impl Master {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain: Vec<NodeId>,
        spares: Vec<NodeId>,
        clients: Vec<NodeId>,
        heartbeat: SimDuration,
        detect: SimDuration,
        extend_at: Option<SimDuration>,
        extend_after_failure: bool,
    ) -> Master {
        let length = if extend_after_failure { chain.len() } else { 0 };
        let misses_max = detect.as_micros().div_ceil(heartbeat.as_micros()).max(1) as u32;
        let misses = chain.iter().chain(&spares).map(|&n| (n, 0)).collect();
        let told = chain
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let pred = i.checked_sub(1).map(|p| chain[p]);
                let succ = chain.get(i + 1).copied();
                (n, Told { pred: Some(pred), pred_epoch: 0, succ: Some(succ) })
            })
            .collect();
        let announced = (chain[0], chain[chain.len() - 1]);
        Master {
            heartbeat,
            misses_max,
            chain,
            joining: None,
            spares: spares.into(),
            epoch: 0,
            told,
            misses,
            failed: BTreeSet::new(),
            clients,
            clients_done: BTreeSet::new(),
            extend_at,
            extend_wanted: 0,
            length,
            stopped: false,
            announced,
        }
    }

    /// The chain's members that hold its state, head first (a joining spare is left out
    /// until its state has arrived): the configuration the invariants check.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.chain.iter().copied().filter(move |&n| Some(n) != self.joining)
    }

    /// The configuration's number: it grows with every change.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn failed(&self) -> &BTreeSet<NodeId> {
        &self.failed
    }

    pub(super) fn on_start(&mut self, ctx: &mut Context<'_, ChainNode>) {
        ctx.set_timer(self.heartbeat, ChainTimer::Check);
        if let Some(at) = self.extend_at {
            ctx.set_timer(at, ChainTimer::Extend);
        }
    }

    pub(super) fn on_message(&mut self, ctx: &mut Context<'_, ChainNode>, from: NodeId, msg: ChainMsg) {
        match msg {
            ChainMsg::Heartbeat => {
                if let Some(misses) = self.misses.get_mut(&from) {
                    *misses = 0;
                }
            }
            ChainMsg::LastReceived { epoch, seq, installed } => {
                self.on_last_received(ctx, from, epoch, seq, installed)
            }
            ChainMsg::Joined => {
                if self.joining == Some(from) {
                    ctx.sometimes(SPARE_JOINED);
                    self.joining = None;
                    // A new configuration (the tail changed), though no server needs telling.
                    self.epoch += 1;
                    self.announce(ctx);
                    self.maybe_extend(ctx);
                }
            }
            ChainMsg::WhereIs => {
                if let Some((head, tail)) = self.ends() {
                    ctx.send(from, ChainMsg::Config { epoch: self.epoch, head, tail });
                }
            }
            ChainMsg::Done => {
                ctx.send(from, ChainMsg::DoneAck);
                self.clients_done.insert(from);
                if self.clients_done.len() == self.clients.len() && !self.stopped {
                    // Every client has finished: heartbeats stop, so the run can end.
                    self.stopped = true;
                    for &server in self.misses.keys() {
                        ctx.send(server, ChainMsg::Stop);
                    }
                }
            }
            msg => panic!("the master got {msg:?} from {from}"),
        }
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Context<'_, ChainNode>, timer: ChainTimer) {
        match timer {
            ChainTimer::Check => self.check(ctx),
            ChainTimer::Extend => {
                self.extend_wanted += 1;
                self.maybe_extend(ctx);
            }
            timer => panic!("the master got {timer:?}"),
        }
    }

    /// The head and tail clients should use: the installed ends of the chain.
    fn ends(&self) -> Option<(NodeId, NodeId)> {
        let head = self.members().next()?;
        let tail = self.members().last()?;
        Some((head, tail))
    }

    /// One heartbeat period passed: every server not heard from since gains a miss.
    fn check(&mut self, ctx: &mut Context<'_, ChainNode>) {
        if self.stopped {
            return;
        }
        let mut failed = Vec::new();
        for (&server, misses) in self.misses.iter_mut() {
            *misses += 1;
            if *misses > self.misses_max {
                failed.push(server);
            }
        }
        if !failed.is_empty() {
            for server in &failed {
                self.misses.remove(server);
                self.failed.insert(*server);
                self.spares.retain(|s| s != server);
            }
            let before = self.chain.len();
            self.chain.retain(|n| !failed.contains(n));
            if self.joining.is_some_and(|j| failed.contains(&j)) {
                ctx.sometimes(SPARE_FAILED_WHILE_JOINING);
                self.joining = None;
            }
            if self.chain.len() < before {
                if self.chain.is_empty() {
                    // Every server is down: outside the fault model. Nothing can be done.
                    ctx.sometimes(ALL_SERVERS_DOWN);
                } else {
                    self.reconfigure(ctx);
                    self.maybe_extend(ctx);
                }
            }
        }
        ctx.set_timer(self.heartbeat, ChainTimer::Check);
    }

    /// A spare joins at the tail if one is due (a scheduled extension, or the chain is
    /// shorter than it started after a failure) and none is joining already.
    fn maybe_extend(&mut self, ctx: &mut Context<'_, ChainNode>) {
        if self.joining.is_some() || self.chain.is_empty() || self.stopped || self.spares.is_empty() {
            return;
        }
        if self.extend_wanted > 0 {
            self.extend_wanted -= 1;
        } else if self.chain.len() >= self.length {
            return;
        }
        let spare = self.spares.pop_front().expect("checked above");
        ctx.sometimes(EXTENSION_STARTED);
        self.chain.push(spare);
        self.joining = Some(spare);
        self.reconfigure(ctx);
    }

    /// Tells every server whose neighbours changed: a server with a new predecessor first
    /// (it answers with its last sequence number), then, through [`Master::on_last_received`],
    /// that predecessor. A new head and a new tail need no answer.
    fn reconfigure(&mut self, ctx: &mut Context<'_, ChainNode>) {
        self.epoch += 1;
        let epoch = self.epoch;
        for i in 0..self.chain.len() {
            let node = self.chain[i];
            let pred = i.checked_sub(1).map(|p| self.chain[p]);
            let succ = self.chain.get(i + 1).copied();
            let told = self.told.entry(node).or_default();
            if told.pred != Some(pred) {
                told.pred = Some(pred);
                told.pred_epoch = epoch;
                ctx.send(node, ChainMsg::SetPredecessor { epoch, pred });
            }
            if succ.is_none() && told.succ != Some(None) {
                told.succ = Some(None);
                ctx.send(
                    node,
                    ChainMsg::SetSuccessor { epoch, succ: None, resend_after: 0, transfer: false },
                );
            }
        }
        // The new configuration, for people: `--svg` draws it as a label on the master's lane.
        let chain: Vec<String> = self.chain.iter().map(|n| n.to_string()).collect();
        ctx.local_event(format!("config {epoch}: {}", chain.join(" -> ")));
        self.announce(ctx);
    }

    /// The handshake's second half: `from` (with a new predecessor) has every update up to
    /// `seq`; its predecessor re-sends the rest (or, for a joining server, the whole state).
    fn on_last_received(
        &mut self,
        ctx: &mut Context<'_, ChainNode>,
        from: NodeId,
        epoch: u64,
        seq: u64,
        installed: bool,
    ) {
        // Only the answer to the latest change of its predecessor counts.
        if self.told.get(&from).is_none_or(|t| t.pred_epoch != epoch) {
            return;
        }
        let Some(i) = self.chain.iter().position(|&n| n == from) else { return };
        let Some(pred) = i.checked_sub(1).map(|p| self.chain[p]) else { return };
        let told = self.told.entry(pred).or_default();
        if told.succ == Some(Some(from)) {
            return;
        }
        told.succ = Some(Some(from));
        if installed {
            ctx.sometimes(MIDDLE_HANDSHAKE);
        }
        let epoch = self.epoch;
        ctx.send(
            pred,
            ChainMsg::SetSuccessor { epoch, succ: Some(from), resend_after: seq, transfer: !installed },
        );
    }

    /// Tells the clients the head and tail when either changed.
    fn announce(&mut self, ctx: &mut Context<'_, ChainNode>) {
        let Some(ends) = self.ends() else { return };
        if ends == self.announced {
            return;
        }
        self.announced = ends;
        for &client in &self.clients {
            ctx.send(client, ChainMsg::Config { epoch: self.epoch, head: ends.0, tail: ends.1 });
        }
    }
}

pub const ALL_SERVERS_DOWN: &str = "chain: every server is down (outside the fault model)";
pub const EXTENSION_STARTED: &str = "chain: a spare started joining at the tail";
pub const SPARE_JOINED: &str = "chain: a spare joined and became the tail";
pub const SPARE_FAILED_WHILE_JOINING: &str = "chain: a spare failed while joining";
pub const MIDDLE_HANDSHAKE: &str =
    "chain: the master told a predecessor its new successor's last sequence number";
