//! A primary-backup server: the primary's side (apply, forward, commit, answer; heartbeats
//! while clients are active), the backup's side (apply the primary's stream in order,
//! acknowledge, watch the heartbeats), and the way from one to the other (a backup that
//! stops hearing heartbeats asks the arbiter, and the winner brings the others up to date
//! with a snapshot of what it has applied).

use super::{CommitMode, PbMsg, PbNode, PbParams, PbTimer, Replicated};
use crate::at_most_once::{Admission, DedupLayer, DedupMode, DiscardMode, ReplyCache, RequestHeader};
use crate::kv::{KvOp, KvRecord, KvResult, KvStore, RequestId};
use serde::Serialize;
use sim_core::{Context, NodeId, SimDuration, TimerId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What every server replicates: the store, the reply cache (so that a new primary answers
/// a re-sent request from its cache instead of running it again), and the ids of the
/// updates applied (ground truth for `no-acknowledged-update-lost`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Replica {
    pub store: KvStore,
    pub replies: ReplyCache<KvResult>,
    pub applied: BTreeSet<RequestId>,
}

/// What a server is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Primary,
    /// Applying the stream of `primary`.
    Backup {
        primary: NodeId,
    },
    /// Suspects `primary` and has asked the arbiter to replace it.
    Candidate {
        primary: NodeId,
    },
    /// Restarted, empty, waiting for a primary's snapshot; never a candidate.
    Joining,
}

/// A reply held back until everything it depends on is committed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Held {
    /// The stream position that must be committed first.
    needs: u64,
    client: NodeId,
    reply_to: RequestId,
    result: KvResult,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    /// Every server, in id order.
    servers: Vec<NodeId>,
    clients: Vec<NodeId>,
    commit: CommitMode,
    heartbeat: SimDuration,
    detect: SimDuration,
    /// Heartbeat ticks without a client request before the primary goes idle.
    idle_ticks_max: u64,

    epoch: u64,
    role: Role,
    store: KvStore,
    layer: DedupLayer<KvResult>,
    applied: BTreeSet<RequestId>,
    /// Position in the current epoch's stream applied so far (the primary: sent so far).
    seq: u64,

    // Backup side.
    /// Stream items that arrived ahead of their turn.
    ahead: BTreeMap<u64, Replicated>,
    /// The heartbeat timeout, while the backup watches the primary.
    watch: Option<TimerId>,
    /// The last heartbeat number seen (older ones, reordered, are ignored).
    last_beat: u64,
    /// While joining: stream items that overtook the snapshot (epoch, sender, seq, item).
    early: Vec<(u64, NodeId, u64, Replicated)>,

    // Primary side.
    /// Each live backup, and how much of the stream it has acknowledged.
    backups: BTreeMap<NodeId, u64>,
    /// Every stream position up to here is acknowledged by every live backup.
    committed: u64,
    held: VecDeque<Held>,
    /// Stream items not yet sent (asynchronous replication, `commit: before-backups`).
    unsent: Vec<(u64, Replicated)>,
    heartbeating: bool,
    beat: u64,
    /// A client request (or a backup's ping) arrived since the last heartbeat tick.
    active: bool,
    idle_ticks: u64,
}

impl Server {
    pub fn new(params: &PbParams, id: NodeId, servers: Vec<NodeId>, clients: Vec<NodeId>) -> Server {
        let initial = servers[0];
        let role = if id == initial { Role::Primary } else { Role::Backup { primary: initial } };
        let backups =
            if id == initial { servers[1..].iter().map(|&s| (s, 0)).collect() } else { BTreeMap::new() };
        Server {
            servers,
            clients,
            commit: params.commit,
            heartbeat: SimDuration::from_millis(params.heartbeat_ms),
            detect: SimDuration::from_millis(params.detect_ms),
            idle_ticks_max: params.idle_ms.div_ceil(params.heartbeat_ms),
            epoch: 1,
            role,
            store: KvStore::default(),
            layer: DedupLayer::new(DedupMode::Durable, DiscardMode::SeqAck, &ReplyCache::default()),
            applied: BTreeSet::new(),
            seq: 0,
            ahead: BTreeMap::new(),
            watch: None,
            last_beat: 0,
            early: Vec::new(),
            backups,
            committed: 0,
            held: VecDeque::new(),
            unsent: Vec::new(),
            heartbeating: false,
            beat: 0,
            active: false,
            idle_ticks: 0,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn is_primary(&self) -> bool {
        self.role == Role::Primary
    }

    /// Whether this server has applied the update `id`.
    pub fn has_applied(&self, id: RequestId) -> bool {
        self.applied.contains(&id)
    }

    pub(super) fn on_message(&mut self, ctx: &mut Context<'_, PbNode>, from: NodeId, msg: PbMsg) {
        match msg {
            PbMsg::Request { header, op } => self.on_request(ctx, from, header, op),
            PbMsg::Replicate { epoch, seq, item } => self.on_replicate(ctx, from, epoch, seq, item),
            PbMsg::Ack { epoch, seq } => self.on_ack(ctx, from, epoch, seq),
            PbMsg::Heartbeat { epoch, beat, idle } => self.on_heartbeat(ctx, from, epoch, beat, idle),
            PbMsg::Ping { epoch } if self.is_primary() && epoch == self.epoch => self.activity(ctx),
            PbMsg::Ping { .. } => {}
            PbMsg::TestAndSetReply { epoch, winner } => self.on_test_and_set_reply(ctx, epoch, winner),
            PbMsg::Join => self.on_join(ctx, from),
            msg => panic!("a server got a client's or the arbiter's message: {msg:?}"),
        }
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Context<'_, PbNode>, timer: PbTimer) {
        match timer {
            PbTimer::Heartbeat => self.on_heartbeat_tick(ctx),
            PbTimer::Watch => self.on_watch(ctx),
            PbTimer::AckTimeout { epoch, seq } => self.on_ack_timeout(ctx, epoch, seq),
            PbTimer::JoinRetry => self.ask_to_join(ctx),
            timer => panic!("a server got a client's or the arbiter's timer: {timer:?}"),
        }
    }

    // -----------------------------------------------------------------------------------
    // The primary
    // -----------------------------------------------------------------------------------

    fn on_request(&mut self, ctx: &mut Context<'_, PbNode>, from: NodeId, header: RequestHeader, op: KvOp) {
        assert_eq!(from, header.id.client, "{from} sent a request in the name of {}", header.id.client);
        let primary = match self.role {
            Role::Primary => {
                self.activity(ctx);
                return self.serve(ctx, header, op);
            }
            Role::Backup { primary } | Role::Candidate { primary } => primary,
            // Knows no primary yet: the client will try another server.
            Role::Joining => return,
        };
        // Not the primary: point the client at the one this server knows, and make sure
        // that one is alive (an idle primary sends no heartbeats, so nobody watches it).
        ctx.send(from, PbMsg::Redirect { epoch: self.epoch, primary });
        if matches!(self.role, Role::Backup { .. }) && self.watch.is_none() {
            ctx.send(primary, PbMsg::Ping { epoch: self.epoch });
            self.watch = Some(ctx.set_timer(self.detect, PbTimer::Watch));
        }
    }

    /// The primary runs a request: an update is applied, forwarded and answered once
    /// committed; a read is answered from the store once every update before it is.
    fn serve(&mut self, ctx: &mut Context<'_, PbNode>, header: RequestHeader, op: KvOp) {
        let id = header.id;
        if let KvOp::Get { .. } = op {
            let result = self.store.apply(&op);
            ctx.note(KvRecord::Executed { request: id, op });
            return self.answer(ctx, self.seq, id, result);
        }
        match self.layer.admit(&mut ctx.durable().replies, &header) {
            Admission::Execute => {
                let result = self.store.apply(&op);
                self.layer.complete(&mut ctx.durable().replies, id, &result);
                self.applied.insert(id);
                ctx.note(KvRecord::Executed { request: id, op: op.clone() });
                self.seq += 1;
                let item = Replicated::Update { header, op, result: result.clone() };
                match self.commit {
                    CommitMode::AfterBackups => self.send_item(ctx, self.seq, item),
                    CommitMode::BeforeBackups => self.unsent.push((self.seq, item)),
                }
                self.answer(ctx, self.seq, id, result);
            }
            // Applied already (by this primary or, before a failover, by the old one).
            Admission::Cached(result) => {
                ctx.sometimes(super::DUPLICATE_ANSWERED_FROM_CACHE);
                self.answer(ctx, self.seq, id, result);
            }
            // Updates complete in the step they arrive, so nothing is ever pending; a
            // stale copy (the client is done with it) is ignored.
            Admission::Pending | Admission::Stale => {}
        }
    }

    /// Sends the reply to `id` once stream position `needs` is committed (at once with
    /// `commit: before-backups`, which does not wait for the backups).
    fn answer(&mut self, ctx: &mut Context<'_, PbNode>, needs: u64, id: RequestId, result: KvResult) {
        let client = id.client;
        if self.commit == CommitMode::BeforeBackups || needs <= self.committed {
            ctx.send(client, PbMsg::Reply { reply_to: id, result });
        } else {
            self.held.push_back(Held { needs, client, reply_to: id, result });
        }
    }

    /// Sends stream item `seq` to every live backup, and arms its acknowledgement deadline.
    fn send_item(&mut self, ctx: &mut Context<'_, PbNode>, seq: u64, item: Replicated) {
        for &backup in self.backups.keys() {
            ctx.send(backup, PbMsg::Replicate { epoch: self.epoch, seq, item: item.clone() });
        }
        if self.backups.is_empty() {
            self.advance_commit(ctx);
        } else {
            ctx.set_timer(self.detect, PbTimer::AckTimeout { epoch: self.epoch, seq });
        }
    }

    fn on_ack(&mut self, ctx: &mut Context<'_, PbNode>, from: NodeId, epoch: u64, seq: u64) {
        if !self.is_primary() || epoch != self.epoch {
            return;
        }
        if let Some(acked) = self.backups.get_mut(&from) {
            *acked = (*acked).max(seq);
            self.advance_commit(ctx);
        }
    }

    /// A backup that has not acknowledged `seq` within the detection time has crashed (the
    /// links between servers deliver within a bound): the primary stops waiting for it.
    fn on_ack_timeout(&mut self, ctx: &mut Context<'_, PbNode>, epoch: u64, seq: u64) {
        if !self.is_primary() || epoch != self.epoch {
            return;
        }
        let before = self.backups.len();
        self.backups.retain(|_, acked| *acked >= seq);
        if self.backups.len() < before {
            ctx.sometimes(super::BACKUP_DROPPED);
            self.advance_commit(ctx);
        }
    }

    /// The commit point: a stream position every live backup has acknowledged. Replies
    /// held for positions up to it go out.
    fn advance_commit(&mut self, ctx: &mut Context<'_, PbNode>) {
        let committed = self.backups.values().copied().min().unwrap_or(self.seq);
        debug_assert!(committed >= self.committed && committed <= self.seq);
        self.committed = committed;
        while self.held.front().is_some_and(|held| held.needs <= committed) {
            let held = self.held.pop_front().expect("just looked");
            ctx.send(held.client, PbMsg::Reply { reply_to: held.reply_to, result: held.result });
        }
    }

    /// A client request (or a ping) arrived: heartbeats run while clients are active.
    fn activity(&mut self, ctx: &mut Context<'_, PbNode>) {
        self.active = true;
        self.idle_ticks = 0;
        if !self.heartbeating {
            self.heartbeating = true;
            self.send_heartbeat(ctx, false);
            ctx.set_timer(self.heartbeat, PbTimer::Heartbeat);
        }
    }

    fn send_heartbeat(&mut self, ctx: &mut Context<'_, PbNode>, idle: bool) {
        for (seq, item) in std::mem::take(&mut self.unsent) {
            self.send_item(ctx, seq, item);
        }
        self.beat += 1;
        for &backup in self.backups.keys() {
            ctx.send(backup, PbMsg::Heartbeat { epoch: self.epoch, beat: self.beat, idle });
        }
    }

    fn on_heartbeat_tick(&mut self, ctx: &mut Context<'_, PbNode>) {
        if !self.is_primary() {
            return;
        }
        if std::mem::take(&mut self.active) {
            self.idle_ticks = 0;
        } else {
            self.idle_ticks += 1;
        }
        // Idle for long enough (and nothing still to commit): stop, and tell the backups
        // to stop watching; the next request starts the heartbeats again.
        let idle =
            self.idle_ticks >= self.idle_ticks_max && self.held.is_empty() && self.committed == self.seq;
        self.send_heartbeat(ctx, idle);
        if idle {
            self.heartbeating = false;
        } else {
            ctx.set_timer(self.heartbeat, PbTimer::Heartbeat);
        }
    }

    // -----------------------------------------------------------------------------------
    // The backup
    // -----------------------------------------------------------------------------------

    fn on_replicate(
        &mut self,
        ctx: &mut Context<'_, PbNode>,
        from: NodeId,
        epoch: u64,
        seq: u64,
        item: Replicated,
    ) {
        if self.role == Role::Joining {
            return self.on_replicate_joining(ctx, from, epoch, seq, item);
        }
        if epoch < self.epoch || self.is_primary() {
            // From a replaced primary (or, with two primaries, from the other one).
            return;
        }
        if epoch > self.epoch {
            // A new primary's first word (its snapshot, or an item overtaking it).
            self.follow(ctx, epoch, from);
        }
        let current = match self.role {
            Role::Backup { primary } | Role::Candidate { primary } => primary,
            Role::Primary | Role::Joining => unreachable!("handled above"),
        };
        if from != current {
            // Two primaries of one epoch (a broken arbiter): follow the first heard of.
            return;
        }
        if seq > self.seq {
            self.ahead.insert(seq, item);
        }
        self.apply_ahead(ctx, from);
    }

    /// Applies the items that are next in line, and acknowledges how far it got.
    fn apply_ahead(&mut self, ctx: &mut Context<'_, PbNode>, primary: NodeId) {
        while let Some(item) = self.ahead.remove(&(self.seq + 1)) {
            self.apply(ctx, item);
            self.seq += 1;
        }
        ctx.send(primary, PbMsg::Ack { epoch: self.epoch, seq: self.seq });
    }

    /// A restarted server waits for a snapshot: it holds the state after item `seq` of the
    /// sender's stream, and the items after it follow as for any backup.
    fn on_replicate_joining(
        &mut self,
        ctx: &mut Context<'_, PbNode>,
        from: NodeId,
        epoch: u64,
        seq: u64,
        item: Replicated,
    ) {
        if !matches!(item, Replicated::Snapshot(_)) {
            // It overtook the snapshot on its way here.
            self.early.push((epoch, from, seq, item));
            return;
        }
        ctx.sometimes(super::SERVER_REJOINED);
        // Taken before `follow`, which forgets them.
        let early = std::mem::take(&mut self.early);
        self.follow(ctx, epoch, from);
        self.apply(ctx, item);
        self.seq = seq;
        for (early_epoch, sender, early_seq, item) in early {
            if early_epoch == epoch && sender == from && early_seq > seq {
                self.ahead.insert(early_seq, item);
            }
        }
        self.apply_ahead(ctx, from);
    }

    /// Restarted after a crash: everything in memory is gone (the node was built afresh),
    /// so it joins as an empty server and asks for a snapshot.
    pub(super) fn rejoin(&mut self, ctx: &mut Context<'_, PbNode>) {
        self.role = Role::Joining;
        self.epoch = 0;
        self.backups.clear();
        self.ask_to_join(ctx);
    }

    /// Asks every other server to take it on (only the primary answers), and again after
    /// the detection time if no snapshot has come (a failover may be under way).
    fn ask_to_join(&mut self, ctx: &mut Context<'_, PbNode>) {
        if self.role != Role::Joining {
            return;
        }
        let me = ctx.id();
        for &server in self.servers.iter().filter(|&&s| s != me) {
            ctx.send(server, PbMsg::Join);
        }
        ctx.set_timer(self.detect, PbTimer::JoinRetry);
    }

    /// The primary takes a restarted server on: a snapshot of everything applied so far
    /// (stream position `seq`), then every later item. It counts as having acknowledged
    /// up to `seq`, which is safe because a server waiting for its snapshot never takes
    /// over; its real acknowledgements follow.
    fn on_join(&mut self, ctx: &mut Context<'_, PbNode>, from: NodeId) {
        if !self.is_primary() {
            return;
        }
        // A server this primary still counts as a backup has crashed and restarted before
        // it was found silent: it starts afresh all the same.
        self.backups.insert(from, self.seq);
        let item = Replicated::Snapshot(Box::new(self.replica()));
        ctx.send(from, PbMsg::Replicate { epoch: self.epoch, seq: self.seq, item });
        // Its heartbeats tell the new backup the primary is alive.
        self.activity(ctx);
    }

    fn replica(&self) -> Replica {
        Replica {
            store: self.store.clone(),
            replies: self.layer.table().clone(),
            applied: self.applied.clone(),
        }
    }

    fn apply(&mut self, ctx: &mut Context<'_, PbNode>, item: Replicated) {
        match item {
            Replicated::Update { header, op, result } => {
                let admission = self.layer.admit(&mut ctx.durable().replies, &header);
                assert_eq!(admission, Admission::Execute, "a backup got {} twice", header.id);
                let mine = self.store.apply(&op);
                assert_eq!(mine, result, "the backup's store differs from the primary's at {}", header.id);
                self.layer.complete(&mut ctx.durable().replies, header.id, &result);
                self.applied.insert(header.id);
            }
            Replicated::Snapshot(replica) => {
                let Replica { store, replies, applied } = *replica;
                self.store = store;
                self.layer = DedupLayer::new(DedupMode::Durable, DiscardMode::SeqAck, &replies);
                ctx.durable().replies = replies;
                self.applied = applied;
            }
        }
    }

    /// Starts following `primary`, the primary of `epoch`: its stream starts afresh.
    fn follow(&mut self, ctx: &mut Context<'_, PbNode>, epoch: u64, primary: NodeId) {
        self.epoch = epoch;
        self.role = Role::Backup { primary };
        self.seq = 0;
        self.ahead.clear();
        self.early.clear();
        self.last_beat = 0;
        self.arm_watch(ctx);
    }

    fn arm_watch(&mut self, ctx: &mut Context<'_, PbNode>) {
        if let Some(timer) = self.watch.take() {
            ctx.cancel_timer(timer);
        }
        self.watch = Some(ctx.set_timer(self.detect, PbTimer::Watch));
    }

    fn on_heartbeat(
        &mut self,
        ctx: &mut Context<'_, PbNode>,
        from: NodeId,
        epoch: u64,
        beat: u64,
        idle: bool,
    ) {
        let following = self.role == Role::Backup { primary: from };
        if !following || epoch != self.epoch || beat <= self.last_beat {
            return;
        }
        self.last_beat = beat;
        if idle {
            if let Some(timer) = self.watch.take() {
                ctx.cancel_timer(timer);
            }
        } else {
            self.arm_watch(ctx);
        }
    }

    /// No heartbeat for the detection time: the primary has crashed. Ask the arbiter to
    /// replace it.
    fn on_watch(&mut self, ctx: &mut Context<'_, PbNode>) {
        self.watch = None;
        let Role::Backup { primary } = self.role else { return };
        ctx.sometimes(super::BACKUP_SUSPECTS_PRIMARY);
        self.role = Role::Candidate { primary };
        ctx.send(super::ARBITER, PbMsg::TestAndSet { epoch: self.epoch });
    }

    fn on_test_and_set_reply(&mut self, ctx: &mut Context<'_, PbNode>, epoch: u64, winner: NodeId) {
        let Role::Candidate { primary: replaced } = self.role else { return };
        if epoch != self.epoch {
            return;
        }
        if winner != ctx.id() {
            // Lost: follow the winner (its snapshot is on the way).
            self.follow(ctx, epoch + 1, winner);
            return;
        }
        self.take_over(ctx, replaced);
    }

    /// Won the test-and-set: become the primary of the next epoch. The first item of its
    /// stream is a snapshot of everything it has applied, so every backup ends up with
    /// exactly this server's state (an update the old primary applied but never committed
    /// survives if this server had it, and is gone everywhere if not); then it tells the
    /// clients. It answers nothing until the snapshot is committed.
    fn take_over(&mut self, ctx: &mut Context<'_, PbNode>, replaced: NodeId) {
        ctx.sometimes(super::BACKUP_TOOK_OVER);
        self.epoch += 1;
        self.role = Role::Primary;
        let me = ctx.id();
        self.backups = self.servers.iter().filter(|&&s| s != me && s != replaced).map(|&s| (s, 0)).collect();
        self.seq = 1;
        self.committed = 0;
        self.ahead.clear();
        self.held.clear();
        self.unsent.clear();
        self.beat = 0;
        self.heartbeating = false;
        let replica = self.replica();
        self.send_item(ctx, 1, Replicated::Snapshot(Box::new(replica)));
        for &client in &self.clients {
            ctx.send(client, PbMsg::NewPrimary { epoch: self.epoch });
        }
        self.activity(ctx);
    }
}
