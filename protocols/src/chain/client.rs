//! A chain replication client: its operations go through the at-most-once client stub
//! (ids, re-sends with the same id, the window, acks), updates to the head and queries to
//! the tail. It learns a new head and tail from the master, which tells clients when they
//! change and answers a client that asks (a client asks each time a call times out), and
//! re-aims its outstanding calls there with [`ClientStub::redirect`].

use super::{ChainMsg, ChainNode, ChainTimer, ReadFrom, MASTER};
use crate::at_most_once::{KvCalls, Retry, StubConfig};
use crate::kv::{KvOp, KvResult, RequestId};
use sim_core::{Context, NodeId, SimDuration};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// The workload, through the at-most-once stub.
    calls: KvCalls,
    /// The stub's timeout, also how often it tells the master it is done.
    timeout: SimDuration,
    read_from: ReadFrom,
    /// The newest configuration heard of: its epoch, head and tail.
    epoch: u64,
    head: NodeId,
    tail: NodeId,
    /// The master has heard that this client finished.
    done_acked: bool,
}

impl Client {
    pub fn new(
        ops: Vec<KvOp>,
        config: StubConfig,
        think: SimDuration,
        read_from: ReadFrom,
        head: NodeId,
        tail: NodeId,
    ) -> Client {
        Client {
            calls: KvCalls::new(ops, config, think),
            timeout: config.timeout,
            read_from,
            epoch: 0,
            head,
            tail,
            done_acked: false,
        }
    }

    /// True when every operation has returned.
    pub fn done(&self) -> bool {
        self.calls.done()
    }

    /// The server an operation goes to: updates to the head, queries to the tail (or to
    /// the head, with `read_from: head`).
    fn server_for(read_from: ReadFrom, head: NodeId, tail: NodeId, op: &KvOp) -> NodeId {
        match (op, read_from) {
            (KvOp::Get { .. }, ReadFrom::Tail) => tail,
            _ => head,
        }
    }

    pub(super) fn on_start(&mut self, ctx: &mut Context<'_, ChainNode>) {
        self.fill(ctx);
    }

    fn fill(&mut self, ctx: &mut Context<'_, ChainNode>) {
        let (read_from, head, tail) = (self.read_from, self.head, self.tail);
        self.calls.fill(ctx, |op| Self::server_for(read_from, head, tail, op));
        if self.done() {
            self.say_done(ctx);
        }
    }

    fn say_done(&mut self, ctx: &mut Context<'_, ChainNode>) {
        if !self.done_acked {
            ctx.send(MASTER, ChainMsg::Done);
            ctx.set_timer(self.stub_timeout(), ChainTimer::DoneRetry);
        }
    }

    fn stub_timeout(&self) -> SimDuration {
        self.timeout
    }

    fn finished(&mut self, ctx: &mut Context<'_, ChainNode>, call: RequestId, result: KvResult) {
        if self.calls.finish(ctx, call, result) {
            self.fill(ctx);
        }
    }

    pub(super) fn on_message(&mut self, ctx: &mut Context<'_, ChainNode>, from: NodeId, msg: ChainMsg) {
        match msg {
            ChainMsg::Reply { reply_to, result } => {
                if let Some(call) = self.calls.on_reply(ctx, reply_to) {
                    self.finished(ctx, call, result);
                }
            }
            ChainMsg::Config { epoch, head, tail } => {
                if epoch > self.epoch {
                    self.epoch = epoch;
                    self.head = head;
                    self.tail = tail;
                    let read_from = self.read_from;
                    if self.calls.stub().redirect(|op| Self::server_for(read_from, head, tail, op)) > 0 {
                        ctx.sometimes(CLIENT_REDIRECTED);
                    }
                }
            }
            ChainMsg::DoneAck => self.done_acked = true,
            msg => panic!("a client got {msg:?} from {from}"),
        }
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Context<'_, ChainNode>, timer: ChainTimer) {
        match timer {
            ChainTimer::Think => self.fill(ctx),
            ChainTimer::Retry(id) => {
                if let Retry::Resent = self.calls.stub().on_retry(ctx, id) {
                    // No answer: perhaps the head or tail changed. Ask the master.
                    ctx.send(MASTER, ChainMsg::WhereIs);
                }
            }
            ChainTimer::DoneRetry => self.say_done(ctx),
            timer => panic!("a client got {timer:?}"),
        }
    }
}

pub const CLIENT_REDIRECTED: &str = "chain: a client re-aimed outstanding calls at a new head or tail";
