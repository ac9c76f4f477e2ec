//! A chain server: applies updates in the order its predecessor sends them, forwards each
//! to its successor and keeps it in its Sent list until the tail's acknowledgement comes
//! back up; the head admits client updates through the at-most-once dedup layer, the tail
//! answers queries and completes updates. Reconfiguration reaches it from the master as
//! "your predecessor is now P" (answered with the last sequence number received) and
//! "your successor is now S, which has everything up to N" (re-send the Sent list after
//! N, or send S the whole state when S is a new server joining at the tail).

use super::{ChainMsg, ChainNode, ChainTimer, ReadFrom, ServerConfig, Snapshot, Update, MASTER};
use crate::at_most_once::{Admission, DedupLayer, DedupMode, DiscardMode, ReplyCache, RequestHeader};
use crate::kv::{KvOp, KvRecord, KvResult, KvStore, RequestId};
use serde::Serialize;
use sim_core::{Context, NodeId};
use std::collections::VecDeque;

/// One update a server has applied: its place in the chain's order, its request, and a
/// digest of the whole sequence up to and including it, so that "this history is a
/// prefix of that one" is one comparison (the invariants check it after every step).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Applied {
    pub seq: u64,
    pub request: RequestId,
    pub digest: u64,
}

impl Applied {
    fn after(previous: Option<&Applied>, seq: u64, request: RequestId) -> Applied {
        // FNV-1a over the previous digest and this update: a fixed function, so histories
        // compare the same way in every build.
        let mut digest = previous.map_or(0xcbf2_9ce4_8422_2325, |p| p.digest);
        for word in [seq, u64::from(request.client.0), request.seq] {
            for byte in word.to_le_bytes() {
                digest ^= u64::from(byte);
                digest = digest.wrapping_mul(0x0100_0000_01b3);
            }
        }
        Applied { seq, request, digest }
    }
}

/// A chain server's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    config: ServerConfig,
    /// A member of the chain with the chain's state: the initial servers from the start,
    /// a spare once its predecessor's state has arrived.
    installed: bool,
    /// A crashed server that restarted: crash-stop, it never acts again.
    retired: bool,
    /// Heartbeats stop once the master says every client has finished.
    stopped: bool,
    /// The newest configuration epoch the master told it.
    epoch: u64,
    pred: Option<NodeId>,
    succ: Option<NodeId>,
    store: KvStore,
    layer: DedupLayer<KvResult>,
    history: Vec<Applied>,
    /// Updates forwarded to the successor that the tail has not acknowledged yet.
    sent: VecDeque<Update>,
    /// Queries answered, for the `one-head-one-tail` check (only the tail answers them).
    queries_answered: u64,
}

impl Server {
    /// A server of the initial chain (`pred`/`succ` its neighbours), or a spare (not
    /// installed: it waits for the master).
    pub fn new(config: ServerConfig, member: bool, pred: Option<NodeId>, succ: Option<NodeId>) -> Server {
        Server {
            config,
            installed: member,
            retired: false,
            stopped: false,
            epoch: 0,
            pred,
            succ,
            store: KvStore::default(),
            layer: DedupLayer::new(DedupMode::Memory, DiscardMode::SeqAck, &ReplyCache::default()),
            history: Vec::new(),
            sent: VecDeque::new(),
            queries_answered: 0,
        }
    }

    /// The head: installed with no predecessor.
    pub fn is_head(&self) -> bool {
        self.installed && !self.retired && self.pred.is_none()
    }

    /// The tail: installed with no successor.
    pub fn is_tail(&self) -> bool {
        self.installed && !self.retired && self.succ.is_none()
    }

    pub fn installed(&self) -> bool {
        self.installed && !self.retired
    }

    pub fn history(&self) -> &[Applied] {
        &self.history
    }

    pub fn sent(&self) -> &VecDeque<Update> {
        &self.sent
    }

    pub fn queries_answered(&self) -> u64 {
        self.queries_answered
    }

    pub fn successor(&self) -> Option<NodeId> {
        self.succ
    }

    fn last_seq(&self) -> u64 {
        self.history.last().map_or(0, |a| a.seq)
    }

    pub(super) fn on_start(&mut self, ctx: &mut Context<'_, ChainNode>) {
        if ctx.is_restart() {
            // Crash-stop: what it held is gone, and the chain has moved on without it.
            self.retired = true;
            return;
        }
        ctx.set_timer(self.config.heartbeat, ChainTimer::Heartbeat);
    }

    pub(super) fn on_heartbeat(&mut self, ctx: &mut Context<'_, ChainNode>) {
        if self.stopped || self.retired {
            return;
        }
        ctx.send(MASTER, ChainMsg::Heartbeat);
        ctx.set_timer(self.config.heartbeat, ChainTimer::Heartbeat);
    }

    pub(super) fn on_message(&mut self, ctx: &mut Context<'_, ChainNode>, from: NodeId, msg: ChainMsg) {
        if self.retired {
            return;
        }
        match msg {
            ChainMsg::Request { header, op } => self.on_request(ctx, header, op),
            ChainMsg::Forward { update } => self.on_forward(ctx, from, update),
            ChainMsg::Ack { seq } => self.on_ack(ctx, seq),
            ChainMsg::SetPredecessor { epoch, pred } => self.on_set_predecessor(ctx, epoch, pred),
            ChainMsg::SetSuccessor { epoch, succ, resend_after, transfer } => {
                self.on_set_successor(ctx, epoch, succ, resend_after, transfer)
            }
            ChainMsg::State { snapshot } => self.on_state(ctx, from, *snapshot),
            ChainMsg::Stop => self.stopped = true,
            msg => panic!("a server got {msg:?} from {from}"),
        }
    }

    fn reply(ctx: &mut Context<'_, ChainNode>, update: &Update) {
        ctx.send(
            update.header.id.client,
            ChainMsg::Reply { reply_to: update.header.id, result: update.result.clone() },
        );
    }

    fn on_request(&mut self, ctx: &mut Context<'_, ChainNode>, header: RequestHeader, op: KvOp) {
        if matches!(op, KvOp::Get { .. }) {
            let answers = match self.config.read_from {
                ReadFrom::Tail => self.is_tail(),
                ReadFrom::Head => self.is_head(),
            };
            if answers {
                self.queries_answered += 1;
                let result = self.store.apply(&op);
                // When it read, for the linearizability checker's first guess at an order.
                ctx.note(KvRecord::Executed { request: header.id, op });
                ctx.send(header.id.client, ChainMsg::Reply { reply_to: header.id, result });
            } else {
                ctx.sometimes(MISDIRECTED);
            }
            return;
        }
        if !self.is_head() {
            ctx.sometimes(MISDIRECTED);
            return;
        }
        let mut scratch = ReplyCache::default();
        match self.layer.admit(&mut scratch, &header) {
            Admission::Execute => {
                let update = self.apply(ctx, self.last_seq() + 1, header, op);
                if self.config.ack_before_tail && !self.is_tail() {
                    Self::reply(ctx, &update);
                }
                self.pass_on(ctx, update);
            }
            Admission::Cached(result) => {
                // Applied here before: if it is still on its way to the tail, the tail will
                // answer; once the tail has it (acknowledged, gone from Sent), answer now.
                if self.sent.iter().any(|u| u.header.id == header.id) {
                    ctx.sometimes(RETRY_WHILE_IN_FLIGHT);
                } else {
                    ctx.sometimes(RETRY_ANSWERED_FROM_CACHE);
                    ctx.send(header.id.client, ChainMsg::Reply { reply_to: header.id, result });
                }
            }
            Admission::Pending | Admission::Stale => {}
        }
    }

    /// Applies an update to the store, the reply cache and the history; returns it with
    /// its result.
    fn apply(
        &mut self,
        ctx: &mut Context<'_, ChainNode>,
        seq: u64,
        header: RequestHeader,
        op: KvOp,
    ) -> Update {
        let result = self.store.apply(&op);
        let mut scratch = ReplyCache::default();
        if !self.is_head() {
            // Every server sees the head's admissions in the head's order, so its table
            // discards and keeps what the head's does: a new head recognises re-sends.
            if self.layer.admit(&mut scratch, &header) != Admission::Execute {
                ctx.sometimes(FORWARDED_DUPLICATE);
            } else {
                self.layer.complete(&mut scratch, header.id, &result);
            }
        } else {
            self.layer.complete(&mut scratch, header.id, &result);
        }
        self.history.push(Applied::after(self.history.last(), seq, header.id));
        Update { seq, header, op, result }
    }

    /// After applying: the tail completes the update (answers the client, acknowledges it
    /// up the chain); any other server forwards it and keeps it in its Sent list.
    fn pass_on(&mut self, ctx: &mut Context<'_, ChainNode>, update: Update) {
        match self.succ {
            None => {
                ctx.note(KvRecord::Executed { request: update.header.id, op: update.op.clone() });
                Self::reply(ctx, &update);
                if let Some(pred) = self.pred {
                    ctx.send(pred, ChainMsg::Ack { seq: update.seq });
                }
            }
            Some(succ) => {
                ctx.send(succ, ChainMsg::Forward { update: update.clone() });
                self.sent.push_back(update);
            }
        }
    }

    fn on_forward(&mut self, ctx: &mut Context<'_, ChainNode>, from: NodeId, update: Update) {
        if !self.installed || self.pred != Some(from) {
            // From a predecessor that is no longer ours (it failed, or the chain changed).
            ctx.sometimes(FORWARD_FROM_OLD_PREDECESSOR);
            return;
        }
        let last = self.last_seq();
        if update.seq <= last {
            // A re-send overlapping what the failed server had already passed on.
            ctx.sometimes(RESENT_DUPLICATE_IGNORED);
            return;
        }
        if update.seq != last + 1 {
            // Updates between were lost: the notes' failover (resend_on_middle_failure: false).
            ctx.sometimes(GAP_IN_UPDATES);
        }
        let Update { seq, header, op, .. } = update;
        let update = self.apply(ctx, seq, header, op);
        self.pass_on(ctx, update);
    }

    fn on_ack(&mut self, ctx: &mut Context<'_, ChainNode>, seq: u64) {
        let before = self.sent.len();
        while self.sent.front().is_some_and(|u| u.seq <= seq) {
            self.sent.pop_front();
        }
        if self.sent.len() < before {
            if let Some(pred) = self.pred {
                ctx.send(pred, ChainMsg::Ack { seq });
            }
        }
    }

    fn on_set_predecessor(&mut self, ctx: &mut Context<'_, ChainNode>, epoch: u64, pred: Option<NodeId>) {
        if epoch < self.epoch {
            return;
        }
        self.epoch = epoch;
        self.pred = pred;
        if self.installed && pred.is_none() {
            ctx.sometimes(BECAME_HEAD);
        }
        // An acknowledgement on its way up through the failed server was lost with it:
        // tell the new predecessor which updates the tail has, so its Sent list shrinks.
        if let (true, Some(pred)) = (self.installed, pred) {
            let acked = self.sent.front().map_or(self.last_seq(), |u| u.seq - 1);
            if acked > 0 {
                ctx.send(pred, ChainMsg::Ack { seq: acked });
            }
        }
        // The handshake's first half: the master passes this on to the new predecessor.
        let seq = if self.installed { self.last_seq() } else { 0 };
        ctx.send(MASTER, ChainMsg::LastReceived { epoch, seq, installed: self.installed });
    }

    fn on_set_successor(
        &mut self,
        ctx: &mut Context<'_, ChainNode>,
        epoch: u64,
        succ: Option<NodeId>,
        resend_after: u64,
        transfer: bool,
    ) {
        if epoch < self.epoch || !self.installed {
            return;
        }
        self.epoch = epoch;
        self.succ = succ;
        match succ {
            None => self.become_tail(ctx),
            Some(succ) if transfer => {
                // Extension: the new server gets the whole state, then everything this server
                // applies from now on (the link is FIFO, so in that order). It stops being
                // the tail here: the new server answers queries once the state arrives.
                ctx.sometimes(STATE_TRANSFERRED);
                let snapshot = Snapshot {
                    store: self.store.clone(),
                    replies: self.layer.table().clone(),
                    history: self.history.clone(),
                };
                ctx.send(succ, ChainMsg::State { snapshot: Box::new(snapshot) });
            }
            Some(succ) => {
                // The middle-failure handshake's second half: the new successor has every
                // update up to `resend_after`; the rest of the Sent list goes again, before
                // anything new.
                if self.config.resend_on_middle_failure {
                    let mut resent = 0;
                    for update in self.sent.iter().filter(|u| u.seq > resend_after) {
                        ctx.send(succ, ChainMsg::Forward { update: update.clone() });
                        resent += 1;
                    }
                    if resent > 0 {
                        ctx.sometimes(SENT_LIST_RESENT);
                    }
                }
            }
        }
    }

    /// The successor is gone and none replaces it: every update in the Sent list has now
    /// reached the tail (this server), so each is complete.
    fn become_tail(&mut self, ctx: &mut Context<'_, ChainNode>) {
        ctx.sometimes(BECAME_TAIL);
        let sent = std::mem::take(&mut self.sent);
        for update in &sent {
            ctx.note(KvRecord::Executed { request: update.header.id, op: update.op.clone() });
            Self::reply(ctx, update);
        }
        if let (Some(last), Some(pred)) = (sent.back(), self.pred) {
            ctx.send(pred, ChainMsg::Ack { seq: last.seq });
        }
    }

    fn on_state(&mut self, ctx: &mut Context<'_, ChainNode>, from: NodeId, snapshot: Snapshot) {
        // Only from the predecessor the master named (a state from an earlier one, which
        // failed meanwhile, is older than what the current one will send).
        if self.pred != Some(from) {
            return;
        }
        self.store = snapshot.store;
        self.layer = DedupLayer::transferred(DedupMode::Memory, DiscardMode::SeqAck, snapshot.replies);
        self.history = snapshot.history;
        self.sent.clear();
        self.installed = true;
        ctx.send(MASTER, ChainMsg::Joined);
        // Everything the old tail had is here, so it can forget its Sent list.
        if let Some(last) = self.history.last() {
            ctx.send(from, ChainMsg::Ack { seq: last.seq });
        }
    }
}

/// Rare paths, for fuzz campaigns' coverage.
pub const MISDIRECTED: &str = "chain: a request reached a server that is not the head (or tail)";
pub const RETRY_WHILE_IN_FLIGHT: &str =
    "chain: a re-sent update found its original still on its way to the tail";
pub const RETRY_ANSWERED_FROM_CACHE: &str =
    "chain: a re-sent update was answered from the head's reply cache";
pub const FORWARDED_DUPLICATE: &str = "chain: a forwarded update was already in the reply cache";
pub const FORWARD_FROM_OLD_PREDECESSOR: &str = "chain: a forward from a former predecessor was ignored";
pub const RESENT_DUPLICATE_IGNORED: &str = "chain: a re-sent update the server already had was ignored";
pub const GAP_IN_UPDATES: &str = "chain: a server received an update with updates missing before it";
pub const BECAME_HEAD: &str = "chain: a server became the head";
pub const BECAME_TAIL: &str = "chain: a server became the tail";
pub const STATE_TRANSFERRED: &str = "chain: the tail sent its state to a new server";
pub const SENT_LIST_RESENT: &str = "chain: a predecessor re-sent its Sent list after a middle failure";

#[cfg(test)]
mod tests {
    use super::*;

    fn id(client: u32, seq: u64) -> RequestId {
        RequestId { client: NodeId(client), seq }
    }

    #[test]
    fn a_digest_names_the_whole_history_before_it() {
        let first = Applied::after(None, 1, id(5, 1));
        let second = Applied::after(Some(&first), 2, id(6, 1));
        assert_eq!(second, Applied::after(Some(&first), 2, id(6, 1)), "a fixed function");
        assert_ne!(second.digest, Applied::after(Some(&first), 2, id(6, 2)).digest);
        // The same update after a different history has a different digest, so comparing
        // the last entries of two histories of equal length compares the whole histories.
        let other = Applied::after(None, 1, id(7, 1));
        assert_ne!(second.digest, Applied::after(Some(&other), 2, id(6, 1)).digest);
    }
}
