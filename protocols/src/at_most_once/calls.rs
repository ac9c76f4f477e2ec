//! A key/value client's workload, run through a [`ClientStub`]: its operations started in
//! order while the window has room, each call recorded in the history (its request id
//! named, for the checkers), each reply accepted, noted and returned, and the think time
//! between them. At-most-once RPC, primary-backup and chain replication clients are this
//! plus what they alone know: where each operation goes, and how they learn that it moved.

use super::stub::{CallerNode, ClientStub, StubConfig};
use crate::kv::{KvOp, KvRecord, KvResult, RequestId};
use sim_core::{Context, NodeId, OpId, SimDuration};
use std::collections::BTreeMap;

/// A node whose clients run [`KvCalls`]: its think timer.
pub trait KvCaller: CallerNode<Request = KvOp, Op = KvRecord> {
    /// The timer that ends a client's think time (then it starts its next operations).
    fn think_timer() -> Self::Timer;
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvCalls {
    ops: Vec<KvOp>,
    next_op: usize,
    stub: ClientStub<KvOp>,
    /// The history operation of each outstanding call, by seq.
    open: BTreeMap<u64, OpId>,
    think: SimDuration,
}

impl KvCalls {
    pub fn new(ops: Vec<KvOp>, config: StubConfig, think: SimDuration) -> KvCalls {
        KvCalls { ops, next_op: 0, stub: ClientStub::new(config), open: BTreeMap::new(), think }
    }

    /// True when every operation has returned.
    pub fn done(&self) -> bool {
        self.open.is_empty() && self.next_op == self.ops.len()
    }

    /// The stub, to re-aim its calls ([`ClientStub::redirect`]) or handle a retry timer.
    pub fn stub(&mut self) -> &mut ClientStub<KvOp> {
        &mut self.stub
    }

    /// Starts operations while the window has room, each at the server `server_for` picks.
    /// The request goes out before the history records the call, so the call can name its
    /// request id; a server runs it in a later step.
    pub fn fill<N: KvCaller>(&mut self, ctx: &mut Context<'_, N>, server_for: impl Fn(&KvOp) -> NodeId) {
        while self.next_op < self.ops.len() && self.stub.has_room() {
            let op = self.ops[self.next_op].clone();
            self.next_op += 1;
            let id = self.stub.call(ctx, server_for(&op), op.clone());
            let op_id = ctx.invoke(KvRecord::Call { request: id, op });
            self.open.insert(id.seq, op_id);
        }
    }

    /// A reply to `reply_to` arrived: the call it answers, if any, noted as accepted (the
    /// caller then finishes it); `None` for a late reply to a finished call.
    pub fn on_reply<N: KvCaller>(
        &mut self,
        ctx: &mut Context<'_, N>,
        reply_to: RequestId,
    ) -> Option<RequestId> {
        let call = self.stub.on_reply(ctx, reply_to)?;
        ctx.note(KvRecord::Accepted { request: call, reply_to });
        Some(call)
    }

    /// Ends `call` with `result` in the history. True if the client should start its next
    /// operations now (no think time, or none left to start); otherwise the think timer is
    /// set.
    pub fn finish<N: KvCaller>(
        &mut self,
        ctx: &mut Context<'_, N>,
        call: RequestId,
        result: KvResult,
    ) -> bool {
        let op_id = self.open.remove(&call.seq).expect("a finished call has a history operation");
        ctx.ret(op_id, KvRecord::Return(result));
        if self.think == SimDuration::ZERO || self.next_op == self.ops.len() {
            return true;
        }
        ctx.set_timer(self.think, N::think_timer());
        false
    }
}
