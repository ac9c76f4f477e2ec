//! The client side of at-most-once RPC, reusable by any protocol: numbering calls,
//! re-sending them with the same id until a reply comes (or retries run out), the window
//! of calls in flight, and the acknowledgement every request carries so the server may
//! discard replies. It knows nothing of key/value operations: a protocol plugs it in
//! through [`CallerNode`].

use super::ReplyMatching;
use crate::kv::RequestId;
use serde::Serialize;
use sim_core::{Context, Node, NodeId, SimDuration, TimerId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// What every request carries besides its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct RequestHeader {
    pub id: RequestId,
    /// "I have seen (or given up on) every reply up to this seq": the server may forget
    /// them. Always below `id.seq`.
    pub acked: u64,
}

/// A node that makes calls through a [`ClientStub`]: how its requests and retry timers
/// are wrapped into its own message and timer types.
pub trait CallerNode: Node {
    type Request: Clone + Debug;
    fn request_message(header: RequestHeader, request: Self::Request) -> Self::Msg;
    fn retry_timer(id: RequestId) -> Self::Timer;
}

/// How a client stub behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StubConfig {
    /// How long to wait for a reply before re-sending.
    pub timeout: SimDuration,
    /// Re-sends before giving up; `None`: never give up (exactly-once needs this).
    pub retries_max: Option<u32>,
    /// How many sequence numbers a client may have beyond its ack (1: one call at a time).
    pub window: u32,
    pub matching: ReplyMatching,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Call<Q> {
    server: NodeId,
    request: Q,
    sends: u32,
    timer: TimerId,
}

/// What a retry timer led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Retry<Q> {
    /// The request went out again, with the same id.
    Resent,
    /// Retries are exhausted: the call is over, its outcome unknown.
    GaveUp(RequestId, Q),
    /// The call already finished (the timer raced with its reply).
    Finished,
}

/// A client's sequence numbers: the next one, and the ack ("every call up to here has
/// finished") that grows as the gaps below finished calls close.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct SeqWindow {
    next_seq: u64,
    /// Every call with seq <= `acked` has finished.
    acked: u64,
    /// Finished calls above `acked` (waiting for a gap below them to close).
    finished_above_ack: BTreeSet<u64>,
}

impl SeqWindow {
    /// Whether seq `next_seq + 1` is at most `window` above the ack.
    fn has_room(&self, window: u32) -> bool {
        self.next_seq + 1 - self.acked <= u64::from(window)
    }

    fn next(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn finish(&mut self, seq: u64) {
        assert!(
            seq > self.acked && seq <= self.next_seq,
            "call {seq} finished twice or never started (ack {})",
            self.acked
        );
        self.finished_above_ack.insert(seq);
        while self.finished_above_ack.remove(&(self.acked + 1)) {
            self.acked += 1;
        }
    }
}

/// The client side: numbers calls, re-sends them with the same id until a reply comes (or
/// retries run out), and tracks the ack every request carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientStub<Q> {
    config: StubConfig,
    seqs: SeqWindow,
    calls: BTreeMap<u64, Call<Q>>,
}

impl<Q: Clone + Debug> ClientStub<Q> {
    pub fn new(config: StubConfig) -> ClientStub<Q> {
        assert!(config.window >= 1, "a window of 0 allows no call at all");
        ClientStub { config, seqs: SeqWindow::default(), calls: BTreeMap::new() }
    }

    /// A stub that resumes numbering after `last_seq`, for a restarted client that kept it
    /// in durable storage: every call up to it is over (finished, or abandoned at the
    /// crash), so no new call reuses an id.
    pub fn resume(config: StubConfig, last_seq: u64) -> ClientStub<Q> {
        let mut stub = ClientStub::new(config);
        stub.seqs.next_seq = last_seq;
        stub.seqs.acked = last_seq;
        stub
    }

    /// The seq of the last call started (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.seqs.next_seq
    }

    /// Whether a new call fits in the window: its seq may be at most `window` above the ack.
    pub fn has_room(&self) -> bool {
        self.seqs.has_room(self.config.window)
    }

    /// Calls still waiting for a reply.
    pub fn outstanding(&self) -> usize {
        self.calls.len()
    }

    pub fn acked(&self) -> u64 {
        self.seqs.acked
    }

    /// Starts a call to `server`; returns its id. The window must have room.
    pub fn call<N: CallerNode<Request = Q>>(
        &mut self,
        ctx: &mut Context<'_, N>,
        server: NodeId,
        request: Q,
    ) -> RequestId {
        assert!(
            self.has_room(),
            "call outside the window: seq {} ack {}",
            self.seqs.next_seq + 1,
            self.seqs.acked
        );
        let id = RequestId { client: ctx.id(), seq: self.seqs.next() };
        let header = RequestHeader { id, acked: self.seqs.acked };
        ctx.send(server, N::request_message(header, request.clone()));
        let timer = ctx.set_timer(self.config.timeout, N::retry_timer(id));
        self.calls.insert(id.seq, Call { server, request, sends: 1, timer });
        id
    }

    /// A reply to `reply_to` arrived. Returns the call it answers, if any (then that call
    /// is finished); `None` for a late reply to a finished call.
    pub fn on_reply<N: CallerNode<Request = Q>>(
        &mut self,
        ctx: &mut Context<'_, N>,
        reply_to: RequestId,
    ) -> Option<RequestId> {
        let seq = if reply_to.client == ctx.id() && self.calls.contains_key(&reply_to.seq) {
            reply_to.seq
        } else {
            match self.config.matching {
                ReplyMatching::ById => return None,
                ReplyMatching::AcceptAny => *self.calls.keys().next()?,
            }
        };
        let call = self.finish(seq);
        ctx.cancel_timer(call.timer);
        Some(RequestId { client: ctx.id(), seq })
    }

    /// The retry timer of call `id` fired.
    pub fn on_retry<N: CallerNode<Request = Q>>(
        &mut self,
        ctx: &mut Context<'_, N>,
        id: RequestId,
    ) -> Retry<Q> {
        let Some(call) = self.calls.get_mut(&id.seq) else {
            return Retry::Finished;
        };
        if self.config.retries_max.is_some_and(|max| call.sends > max) {
            let call = self.finish(id.seq);
            return Retry::GaveUp(id, call.request);
        }
        call.sends += 1;
        // A re-send carries the same id, and the current ack (which may have grown).
        let header = RequestHeader { id, acked: self.seqs.acked };
        ctx.send(call.server, N::request_message(header, call.request.clone()));
        call.timer = ctx.set_timer(self.config.timeout, N::retry_timer(id));
        Retry::Resent
    }

    /// Re-aims every outstanding call at the server `server_for` picks for its request
    /// (a new head, tail or primary, learned from a configuration service or a redirect);
    /// each call's next re-send goes there, with the same id. Returns how many changed.
    pub fn redirect(&mut self, mut server_for: impl FnMut(&Q) -> NodeId) -> usize {
        let mut changed = 0;
        for call in self.calls.values_mut() {
            let server = server_for(&call.request);
            if server != call.server {
                call.server = server;
                changed += 1;
            }
        }
        changed
    }

    fn finish(&mut self, seq: u64) -> Call<Q> {
        let call = self.calls.remove(&seq).expect("finishing an outstanding call");
        self.seqs.finish(seq);
        call
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stub_acks_only_past_a_closed_gap_and_keeps_its_window() {
        let mut seqs = SeqWindow::default();
        for seq in 1..=3 {
            assert!(seqs.has_room(3));
            assert_eq!(seqs.next(), seq);
        }
        assert!(!seqs.has_room(3), "seq 4 would be 4 above the ack of 0");
        seqs.finish(2);
        seqs.finish(3);
        assert_eq!(seqs.acked, 0, "seq 1 is still outstanding");
        assert!(!seqs.has_room(3));
        seqs.finish(1);
        assert_eq!(seqs.acked, 3);
        assert!(seqs.has_room(3));
    }
}
