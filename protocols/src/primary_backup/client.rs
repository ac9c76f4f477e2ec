//! A primary-backup client: the at-most-once client stub, aimed at whichever server it
//! believes is the primary. It learns of a new primary three ways: the new primary
//! announces itself (`NewPrimary`), a backup that receives its request points it at the
//! primary it knows (`Redirect`), and when the server it calls stays silent for
//! [`ROTATE_AFTER`] re-sends it tries the next server in turn (an announcement can be
//! lost on an unreliable link). Each way re-aims its outstanding calls with
//! [`ClientStub::redirect`]; the stub re-sends them with the same ids, so the new primary's
//! replicated reply cache answers a request the old primary committed instead of running
//! it again.

use super::{PbMsg, PbNode, PbTimer};
use crate::at_most_once::{KvCalls, Retry, StubConfig};
use crate::kv::{KvOp, KvResult, RequestId};
use sim_core::{Context, NodeId, SimDuration};

/// Re-sends to a silent server before a client tries the next one.
pub const ROTATE_AFTER: u32 = 3;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// The workload, through the at-most-once stub.
    calls: KvCalls,
    /// Every server, in id order (the first is the initial primary).
    servers: Vec<NodeId>,
    /// The server calls go to, and the primary epoch the client last heard of.
    primary: NodeId,
    epoch: u64,
    /// Re-sends since the client last heard from any server.
    silent: u32,
}

impl Client {
    pub fn new(ops: Vec<KvOp>, config: StubConfig, think: SimDuration, servers: Vec<NodeId>) -> Client {
        let primary = servers[0];
        Client { calls: KvCalls::new(ops, config, think), servers, primary, epoch: 1, silent: 0 }
    }

    /// Starts operations while the window has room.
    pub(super) fn fill(&mut self, ctx: &mut Context<'_, PbNode>) {
        let primary = self.primary;
        self.calls.fill(ctx, |_| primary);
    }

    pub(super) fn on_message(&mut self, ctx: &mut Context<'_, PbNode>, from: NodeId, msg: PbMsg) {
        self.silent = 0;
        match msg {
            PbMsg::Reply { reply_to, result } => {
                if let Some(call) = self.calls.on_reply(ctx, reply_to) {
                    self.finished(ctx, call, result);
                }
            }
            PbMsg::NewPrimary { epoch } => self.follow(ctx, epoch, from),
            PbMsg::Redirect { epoch, primary } => self.follow(ctx, epoch, primary),
            msg => panic!("a client got a server's message: {msg:?}"),
        }
    }

    /// Aims every call at `primary`, the primary of `epoch`, unless the client knows a
    /// later epoch.
    fn follow(&mut self, ctx: &mut Context<'_, PbNode>, epoch: u64, primary: NodeId) {
        if epoch < self.epoch || primary == self.primary {
            return;
        }
        self.epoch = epoch;
        self.primary = primary;
        if self.calls.stub().redirect(|_| primary) > 0 {
            ctx.sometimes(super::CLIENT_REDIRECTED);
        }
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Context<'_, PbNode>, timer: PbTimer) {
        match timer {
            PbTimer::Think => self.fill(ctx),
            PbTimer::Retry(id) => {
                self.silent += 1;
                if self.silent > ROTATE_AFTER {
                    // Nobody answers: try the next server (a backup redirects the call).
                    self.silent = 0;
                    let at = self.servers.iter().position(|&s| s == self.primary).unwrap_or(0);
                    let next = self.servers[(at + 1) % self.servers.len()];
                    self.primary = next;
                    self.calls.stub().redirect(|_| next);
                }
                if let Retry::GaveUp(call, _) = self.calls.stub().on_retry(ctx, id) {
                    self.finished(ctx, call, KvResult::GaveUp);
                }
            }
            timer => panic!("a client got a server's timer: {timer:?}"),
        }
    }

    fn finished(&mut self, ctx: &mut Context<'_, PbNode>, call: RequestId, result: KvResult) {
        if self.calls.finish(ctx, call, result) {
            self.fill(ctx);
        }
    }
}
