//! The server side of at-most-once RPC, reusable by any protocol: the reply cache (the
//! dedup table), admission of each arriving request (run it, answer from the cache,
//! ignore a duplicate of one still running, ignore a stale copy), discard by
//! acknowledgement, and the write-through to durable storage that lets the table survive
//! a crash. It knows nothing of key/value operations.

use super::stub::RequestHeader;
use super::{DedupMode, DiscardMode};
use crate::kv::RequestId;
use serde::Serialize;
use sim_core::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// One client's part of the reply cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ClientReplies<R> {
    /// Every seq at or below this has been discarded; a request for one is stale.
    pub discarded_through: u64,
    pub replies: BTreeMap<u64, R>,
}

impl<R> Default for ClientReplies<R> {
    fn default() -> Self {
        ClientReplies { discarded_through: 0, replies: BTreeMap::new() }
    }
}

/// The replies a server has sent, per client: the dedup table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ReplyCache<R> {
    clients: BTreeMap<NodeId, ClientReplies<R>>,
    /// Replies kept, over all clients (kept as a count: invariants read it every step).
    len: usize,
}

impl<R> Default for ReplyCache<R> {
    fn default() -> Self {
        ReplyCache { clients: BTreeMap::new(), len: 0 }
    }
}

impl<R: Clone> ReplyCache<R> {
    /// Replies kept, over all clients.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, id: RequestId) -> Option<&R> {
        self.clients.get(&id.client)?.replies.get(&id.seq)
    }

    /// True if `id` is at or below its client's discard watermark.
    pub fn is_discarded(&self, id: RequestId) -> bool {
        self.clients.get(&id.client).is_some_and(|c| id.seq <= c.discarded_through)
    }

    pub fn insert(&mut self, id: RequestId, reply: R) {
        let client = self.clients.entry(id.client).or_default();
        assert!(id.seq > client.discarded_through, "caching {id}, already discarded");
        if client.replies.insert(id.seq, reply).is_none() {
            self.len += 1;
        }
    }

    /// Forgets `client`'s replies up to `seq` and raises its watermark to `seq`.
    pub fn discard_through(&mut self, client: NodeId, seq: u64) {
        let entry = self.clients.entry(client).or_default();
        if seq <= entry.discarded_through {
            return;
        }
        entry.discarded_through = seq;
        let kept = entry.replies.split_off(&(seq + 1));
        self.len -= entry.replies.len();
        entry.replies = kept;
    }
}

/// What the server should do with an arriving request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission<R> {
    /// New: run the handler, then call [`DedupLayer::complete`]. The request is now
    /// marked pending.
    Execute,
    /// Already answered: send this reply again; do not run the handler.
    Cached(R),
    /// The original is still executing: ignore this copy; the original's reply will go to
    /// the same client.
    Pending,
    /// At or below the client's ack: the client is done with it. Ignore it.
    Stale,
}

/// The server side: decides for each request whether the handler runs.
///
/// The table itself lives here (in memory); in `durable` mode every change to it is also
/// written to the durable copy the caller passes in, in the same step, and
/// [`DedupLayer::new`] reloads it at a restart. Pending marks are memory only.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DedupLayer<R> {
    mode: DedupMode,
    discard: DiscardMode,
    table: ReplyCache<R>,
    pending: BTreeSet<RequestId>,
}

impl<R: Clone + PartialEq> DedupLayer<R> {
    /// A layer at server start: in `durable` mode with the stored table, else empty.
    pub fn new(mode: DedupMode, discard: DiscardMode, stored: &ReplyCache<R>) -> DedupLayer<R> {
        let table = if mode == DedupMode::Durable { stored.clone() } else { ReplyCache::default() };
        DedupLayer { mode, discard, table, pending: BTreeSet::new() }
    }

    /// A layer that starts from another server's table (a state transfer: chain
    /// replication's new tail takes over its predecessor's replies), with no pending marks.
    pub fn transferred(mode: DedupMode, discard: DiscardMode, table: ReplyCache<R>) -> DedupLayer<R> {
        DedupLayer { mode, discard, table, pending: BTreeSet::new() }
    }

    pub fn table(&self) -> &ReplyCache<R> {
        &self.table
    }

    /// Requests executing now.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Applies a change to the table, and to the durable copy in `durable` mode.
    fn write(&mut self, stored: &mut ReplyCache<R>, change: impl Fn(&mut ReplyCache<R>)) {
        change(&mut self.table);
        if self.mode == DedupMode::Durable {
            change(stored);
        }
    }

    /// Admits a request (see [`Admission`]). `stored` is the durable copy of the table.
    pub fn admit(&mut self, stored: &mut ReplyCache<R>, header: &RequestHeader) -> Admission<R> {
        let id = header.id;
        assert!(header.acked < id.seq, "request {id} acknowledges its own reply (ack {})", header.acked);
        if self.mode == DedupMode::None {
            return Admission::Execute;
        }
        let through = match self.discard {
            DiscardMode::None => 0,
            DiscardMode::SeqAck => header.acked,
            DiscardMode::OneOutstanding => id.seq - 1,
        };
        if through > 0 {
            self.write(stored, |table| table.discard_through(id.client, through));
        }
        if self.table.is_discarded(id) {
            return Admission::Stale;
        }
        if let Some(reply) = self.table.get(id) {
            return Admission::Cached(reply.clone());
        }
        if !self.pending.insert(id) {
            return Admission::Pending;
        }
        Admission::Execute
    }

    /// The handler for `id` ran and produced `reply`: cache it and drop the pending mark.
    pub fn complete(&mut self, stored: &mut ReplyCache<R>, id: RequestId, reply: &R) {
        if self.mode == DedupMode::None {
            return;
        }
        assert!(self.pending.remove(&id), "completing {id}, which was not pending");
        // The client may have given up on it and acknowledged past it meanwhile.
        if !self.table.is_discarded(id) {
            self.write(stored, |table| table.insert(id, reply.clone()));
        }
    }
}
