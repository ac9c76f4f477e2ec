//! At-most-once RPC: request ids, a reply cache, discard by acknowledgement, pending marks,
//! and a dedup table that may or may not survive a server crash.
//!
//! **The algorithm** (6.824 lecture 2). Each client has a unique id (its node id) and
//! numbers its requests 1, 2, 3, ...; the pair is the request's [`RequestId`], and every
//! re-send carries the same id. The server's dedup layer keeps, per client, the replies it
//! has sent. A request whose id it has answered gets the cached reply and the handler does
//! not run again. A request whose handler is still running (the handler takes virtual
//! time, `execute_ms`, like a slow disk) carries a *pending mark*: a duplicate that finds
//! one is ignored, because the original's reply will reach the same client. The cache
//! cannot grow forever, so it discards:
//!
//! - `seq-ack`: every request carries "I have seen all replies up to seq X" (like a TCP
//!   ack); the server drops that client's replies up to X. A client keeps at most `window`
//!   sequence numbers beyond its ack, so the server keeps at most `window` replies per
//!   client.
//! - `one-outstanding`: a client has one call at a time (`window` 1), so the arrival of
//!   seq N tells the server that the client is done with everything below N.
//!
//! After a discard the server remembers only the *watermark* (the highest seq discarded);
//! a late copy of a request at or below it is stale and is ignored, never executed: without
//! the watermark, discarding would reopen the door to duplicate execution.
//!
//! The table lives in memory (`dedup: memory`) or is also written to durable storage
//! (`dedup: durable`) in the same step as the store it protects, and reloaded at restart.
//! The key/value store is always durable. Pending marks are never durable: a handler that
//! was cut short by a crash did not run, so running it after the restart is its first run.
//!
//! **The guarantee.** With dedup on and no server crash (or with the durable table), every
//! request runs at most once and a client only accepts the reply to its own request.
//! Exactly-once = at-most-once + unbounded retries (`retries_max` absent): once the network
//! heals, every request completes.
//!
//! **Invariants.** `executed-at-most-once` (ground truth: no request id executed twice),
//! `reply-matches-request` (ground truth: a client accepted only the reply meant for its
//! call), `cache-bounded` (the server keeps at most clients x window replies),
//! `kv-linearizable` (what clients saw), and with unbounded retries
//! `every-request-completed` (liveness: checked when the run ends).
//!
//! **Known-buggy variants**, each a parameter, each with a scenario that shows it fail:
//! `dedup: none` (best effort again: the lecture's Put(k,10) anomaly); `dedup: memory`
//! across a crash and restart (the table is forgotten, duplicates run again);
//! `discard: none` (the cache grows without bound); `reply_matching: accept-any` (the
//! client takes a late reply to an earlier call as the answer to its current one).
//!
//! **Reuse.** [`ClientStub`] (numbering, re-sends, acks, the window) and [`DedupLayer`]
//! over a [`ReplyCache`] (admission, pending marks, discard, write-through) know nothing of
//! key/value operations; a protocol plugs them in through [`CallerNode`] and its own
//! message and durable types, as [`AmoNode`] does here.

use crate::kv::{ExecutedAtMostOnce, KvLinearizable, KvOp, KvRecord, KvResult, KvStore, RequestId, Workload};
use crate::registry::{check_ms, key_value_facts, Facts, FieldError, PathSeg, Protocol, ScenarioView};
use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::{
    CheckError, Context, EntryKind, FaultModel, Invariant, Message, MessageClass, NetworkAssumptions, Node,
    NodeId, SimDuration, World,
};
use std::fmt::Debug;
use std::hash::Hash;

/// The server's id.
pub const SERVER: NodeId = NodeId(0);

pub const REPLY_MATCHES_REQUEST: &str = "reply-matches-request";
pub const CACHE_BOUNDED: &str = "cache-bounded";
pub const EVERY_REQUEST_COMPLETED: &str = "every-request-completed";

// ---------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------

/// Where the server keeps its dedup table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DedupMode {
    /// No table: every arriving request runs (best effort). Buggy on purpose.
    None,
    /// In memory only: forgotten at a crash, so duplicates after a restart run again.
    Memory,
    /// Written through to durable storage with the store, reloaded at restart.
    #[default]
    Durable,
}

/// When the server may forget a cached reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiscardMode {
    /// Never: the cache grows with every request. Buggy on purpose.
    None,
    /// Up to the "seen all replies up to X" each request carries.
    #[default]
    SeqAck,
    /// One call per client at a time: seq N arriving frees everything below N.
    OneOutstanding,
}

impl DedupMode {
    /// How this mode can let a request run twice, for violation reports.
    pub fn mechanism(self) -> &'static str {
        match self {
            DedupMode::None => {
                "dedup: none keeps no table: every copy of a request that arrives runs again \
                 (docs/protocols/at-most-once.md)"
            }
            DedupMode::Memory => {
                "dedup: memory keeps the table in memory only: when the server crashed it forgot \
                 which requests had run, and a re-send after the restart ran again \
                 (docs/protocols/at-most-once.md, \"durable table\")"
            }
            DedupMode::Durable => "dedup: durable should have prevented this: the table survives crashes",
        }
    }
}

impl DiscardMode {
    /// The name scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            DiscardMode::None => "none",
            DiscardMode::SeqAck => "seq-ack",
            DiscardMode::OneOutstanding => "one-outstanding",
        }
    }
}

/// Which replies a client accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyMatching {
    /// Only a reply whose request id is one of its outstanding calls.
    #[default]
    ById,
    /// Any reply; one that matches no call answers the oldest outstanding call. Buggy on
    /// purpose: a late duplicate reply to an earlier call is taken for the current one.
    AcceptAny,
}

pub use calls::{KvCaller, KvCalls};
pub use dedup::{Admission, ClientReplies, DedupLayer, ReplyCache};
pub use stub::{CallerNode, ClientStub, RequestHeader, Retry, StubConfig};

mod calls;
mod dedup;
mod stub;

// ---------------------------------------------------------------------------------------
// The key/value protocol built from the two pieces
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum AmoMsg {
    Request { header: RequestHeader, op: KvOp },
    Reply { reply_to: RequestId, result: KvResult },
}

impl Message for AmoMsg {
    fn class(&self) -> MessageClass {
        match self {
            AmoMsg::Request { .. } => MessageClass::Request,
            AmoMsg::Reply { .. } => MessageClass::Reply,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum AmoTimer {
    /// Client: no reply to this call yet.
    Retry(RequestId),
    /// Client: think time is over.
    Think,
    /// Server: the slow disk has finished this request's handler.
    Execute { request: RequestId, op: KvOp },
}

/// What survives a server crash: the store always, the reply cache in `durable` mode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct AmoDurable {
    pub store: KvStore,
    pub replies: ReplyCache<KvResult>,
}

/// A client: its workload through the stub ([`KvCalls`]), every call to the one server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    calls: KvCalls,
}

impl Client {
    pub fn new(ops: Vec<KvOp>, config: StubConfig, think: SimDuration) -> Client {
        Client { calls: KvCalls::new(ops, config, think) }
    }

    /// True when every operation has returned.
    pub fn done(&self) -> bool {
        self.calls.done()
    }

    fn fill(&mut self, ctx: &mut Context<'_, AmoNode>) {
        self.calls.fill(ctx, |_| SERVER);
    }

    fn finished(&mut self, ctx: &mut Context<'_, AmoNode>, call: RequestId, result: KvResult) {
        if self.calls.finish(ctx, call, result) {
            self.fill(ctx);
        }
    }

    fn on_reply(&mut self, ctx: &mut Context<'_, AmoNode>, reply_to: RequestId, result: KvResult) {
        if let Some(call) = self.calls.on_reply(ctx, reply_to) {
            self.finished(ctx, call, result);
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, AmoNode>, timer: AmoTimer) {
        match timer {
            AmoTimer::Think => self.fill(ctx),
            AmoTimer::Retry(id) => {
                if let Retry::GaveUp(call, _) = self.calls.stub().on_retry(ctx, id) {
                    self.finished(ctx, call, KvResult::GaveUp);
                }
            }
            AmoTimer::Execute { .. } => panic!("a client got a server timer: {timer:?}"),
        }
    }
}

/// The key/value server behind the dedup layer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    /// The store, loaded from durable storage at start; every write goes to both.
    store: KvStore,
    layer: DedupLayer<KvResult>,
    execute: SimDuration,
}

impl Server {
    /// A server (re)started from its durable storage.
    pub fn new(params: &AmoParams, stored: &AmoDurable) -> Server {
        Server {
            store: stored.store.clone(),
            layer: DedupLayer::new(params.dedup, params.discard, &stored.replies),
            execute: SimDuration::from_millis(params.execute_ms),
        }
    }

    pub fn layer(&self) -> &DedupLayer<KvResult> {
        &self.layer
    }

    fn on_request(&mut self, ctx: &mut Context<'_, AmoNode>, from: NodeId, header: RequestHeader, op: KvOp) {
        assert_eq!(from, header.id.client, "{from} sent a request in the name of {}", header.id.client);
        match self.layer.admit(&mut ctx.durable().replies, &header) {
            Admission::Execute if self.execute == SimDuration::ZERO => self.execute(ctx, header.id, op),
            Admission::Execute => {
                ctx.set_timer(self.execute, AmoTimer::Execute { request: header.id, op });
            }
            Admission::Cached(result) => {
                ctx.sometimes(DUPLICATE_ANSWERED_FROM_CACHE);
                ctx.send(from, AmoMsg::Reply { reply_to: header.id, result })
            }
            Admission::Pending => ctx.sometimes(DUPLICATE_WHILE_PENDING),
            Admission::Stale => ctx.sometimes(STALE_COPY_AFTER_DISCARD),
        }
    }

    /// Runs the handler. The store, the durable store and the cached reply change in this
    /// one step: a crash lands before all of it or after all of it.
    fn execute(&mut self, ctx: &mut Context<'_, AmoNode>, id: RequestId, op: KvOp) {
        let result = self.store.apply(&op);
        ctx.durable().store.apply(&op);
        self.layer.complete(&mut ctx.durable().replies, id, &result);
        ctx.note(KvRecord::Executed { request: id, op });
        ctx.send(id.client, AmoMsg::Reply { reply_to: id, result });
    }
}

/// The rare paths at-most-once RPC marks, so fuzz campaigns can say which they reached.
pub const SOMETIMES: &[&str] =
    &[DUPLICATE_WHILE_PENDING, DUPLICATE_ANSWERED_FROM_CACHE, STALE_COPY_AFTER_DISCARD];
/// A duplicate arrived while its original was still executing (the pending mark's case).
pub const DUPLICATE_WHILE_PENDING: &str = "at-most-once: duplicate arrived while its original was pending";
/// A duplicate of a finished request got the cached reply, without re-running the handler.
pub const DUPLICATE_ANSWERED_FROM_CACHE: &str = "at-most-once: duplicate answered from the reply cache";
/// A late copy of a request whose reply was already discarded was ignored.
pub const STALE_COPY_AFTER_DISCARD: &str = "at-most-once: late copy ignored after discard";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AmoNode {
    Server(Server),
    Client(Client),
}

impl Node for AmoNode {
    type Msg = AmoMsg;
    type Timer = AmoTimer;
    type Durable = AmoDurable;
    type Op = KvRecord;

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        if let AmoNode::Client(client) = self {
            client.fill(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: AmoMsg) {
        match (self, msg) {
            (AmoNode::Server(server), AmoMsg::Request { header, op }) => {
                server.on_request(ctx, from, header, op)
            }
            (AmoNode::Client(client), AmoMsg::Reply { reply_to, result }) => {
                client.on_reply(ctx, reply_to, result)
            }
            (node, msg) => panic!("{node:?} cannot handle {msg:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: AmoTimer) {
        match (self, timer) {
            (AmoNode::Server(server), AmoTimer::Execute { request, op }) => server.execute(ctx, request, op),
            (AmoNode::Client(client), timer) => client.on_timer(ctx, timer),
            (node, timer) => panic!("{node:?} cannot handle {timer:?}"),
        }
    }
}

impl CallerNode for AmoNode {
    type Request = KvOp;

    fn request_message(header: RequestHeader, op: KvOp) -> AmoMsg {
        AmoMsg::Request { header, op }
    }

    fn retry_timer(id: RequestId) -> AmoTimer {
        AmoTimer::Retry(id)
    }
}

impl KvCaller for AmoNode {
    fn think_timer() -> AmoTimer {
        AmoTimer::Think
    }
}

// ---------------------------------------------------------------------------------------
// Invariants (generic: any key/value node, or any node with a reply cache)
// ---------------------------------------------------------------------------------------

/// `reply-matches-request`: every reply a client accepted was the server's answer to the
/// call it accepted it for (ground truth from the clients' `Accepted` notes).
#[derive(Clone, Default)]
pub struct ReplyMatchesRequest {
    cursor: usize,
}

impl<N: Node<Op = KvRecord>> Invariant<N> for ReplyMatchesRequest {
    fn name(&self) -> &'static str {
        REPLY_MATCHES_REQUEST
    }

    fn check_step(&mut self, world: &World<N>) -> Result<(), CheckError> {
        let (_, fresh) = world.history().since(&mut self.cursor);
        for entry in fresh {
            if let KvRecord::Accepted { request, reply_to } = &entry.op {
                if request != reply_to {
                    let which = match (reply_to.client == request.client, reply_to.seq < request.seq) {
                        (false, _) => format!("a reply meant for {}", reply_to.client),
                        (true, true) => format!("a late reply to its earlier call {reply_to}"),
                        (true, false) => format!("the reply to its later call {reply_to}"),
                    };
                    return Err(format!(
                        "{} accepted the reply to {reply_to} as the answer to its call {request} at {}: \
                         {which} was taken for the answer to {request} (reply_matching: accept-any \
                         takes any reply for the oldest outstanding call)",
                        entry.node, entry.time
                    )
                    .into());
                }
            }
        }
        Ok(())
    }
}

/// Reads how many replies the server of a world keeps now.
type CacheSize<N> = std::rc::Rc<dyn Fn(&World<N>) -> usize>;

/// `cache-bounded`: the server keeps at most `bound` cached replies (clients x window).
#[derive(Clone)]
pub struct CacheBounded<N: Node> {
    bound: usize,
    /// How many replies the world's server keeps now.
    size: CacheSize<N>,
    /// Why the bound is what it is, for the report.
    because: String,
}

impl<N: Node> CacheBounded<N> {
    pub fn new(
        bound: usize,
        because: String,
        size: impl Fn(&World<N>) -> usize + 'static,
    ) -> CacheBounded<N> {
        CacheBounded { bound, size: std::rc::Rc::new(size), because }
    }
}

impl<N: Node> Invariant<N> for CacheBounded<N> {
    fn name(&self) -> &'static str {
        CACHE_BOUNDED
    }

    fn check_step(&mut self, world: &World<N>) -> Result<(), CheckError> {
        let size = (self.size)(world);
        if size > self.bound {
            return Err(format!(
                "the server keeps {size} cached replies, above the bound of {} ({}): it does not \
                 discard replies its clients are done with",
                self.bound, self.because
            )
            .into());
        }
        Ok(())
    }
}

/// `every-request-completed`: when the run ends, every client operation was invoked and
/// returned a real result (none gave up, none is still waiting). A liveness check: it only
/// holds if retries never give up and the network heals.
#[derive(Clone)]
pub struct EveryRequestCompleted {
    expected: usize,
}

impl EveryRequestCompleted {
    /// `expected`: how many operations the clients have in all.
    pub fn new(expected: usize) -> EveryRequestCompleted {
        EveryRequestCompleted { expected }
    }
}

impl<N: Node<Op = KvRecord>> Invariant<N> for EveryRequestCompleted {
    fn name(&self) -> &'static str {
        EVERY_REQUEST_COMPLETED
    }

    fn check_end(&mut self, world: &World<N>) -> Result<(), CheckError> {
        let history = world.history();
        let mut invoked = 0;
        for entry in history.entries() {
            match (&entry.kind, &entry.op) {
                (EntryKind::Invoke { .. }, _) => invoked += 1,
                (EntryKind::Return { id }, KvRecord::Return(KvResult::GaveUp)) => {
                    let call = history.invocation(*id);
                    return Err(format!(
                        "{} gave up on {:?} at {}: retries ran out before a reply came",
                        entry.node, call.op, entry.time
                    )
                    .into());
                }
                _ => {}
            }
        }
        let open = history.open_operations();
        if open > 0 || invoked < self.expected {
            // The deadline waits a whole liveness window after the last completion, so the
            // run was stuck, not slow; say since when, and what was down.
            let progress = match history.last_return() {
                Some(last) => format!(
                    "no operation completed in the {} before that (the last at {last}): stuck, not slow",
                    world.liveness_window()
                ),
                None => format!("no operation completed at all by {}", world.now()),
            };
            let down: Vec<String> =
                world.nodes().filter(|(_, n)| n.is_none()).map(|(id, _)| id.to_string()).collect();
            let down = match down.len() {
                0 => String::new(),
                _ => format!("; still down: {} (crashed, never restarted)", down.join(", ")),
            };
            return Err(format!(
                "when the run ended at {}, {} of {} operations had completed ({open} still waiting \
                 for a reply, {} never started); {progress}{down}",
                world.now(),
                invoked - open as usize,
                self.expected,
                self.expected - invoked
            )
            .into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Parameters and setup
// ---------------------------------------------------------------------------------------

/// Scenario parameters of at-most-once RPC.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmoParams {
    /// How long a client waits for a reply before re-sending.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Re-sends before a client gives up; absent or null: never give up.
    #[serde(default)]
    pub retries_max: Option<u32>,
    /// How long the server's handler takes (a slow disk).
    #[serde(default = "default_execute_ms")]
    pub execute_ms: u64,
    #[serde(default)]
    pub dedup: DedupMode,
    #[serde(default)]
    pub discard: DiscardMode,
    /// Sequence numbers a client may have beyond its ack (its calls in flight).
    #[serde(default = "default_window")]
    pub window: u32,
    #[serde(default)]
    pub reply_matching: ReplyMatching,
}

fn default_timeout_ms() -> u64 {
    100
}
fn default_execute_ms() -> u64 {
    5
}
fn default_window() -> u32 {
    1
}

impl Default for AmoParams {
    fn default() -> Self {
        AmoParams {
            timeout_ms: default_timeout_ms(),
            retries_max: None,
            execute_ms: default_execute_ms(),
            dedup: DedupMode::default(),
            discard: DiscardMode::default(),
            window: default_window(),
            reply_matching: ReplyMatching::default(),
        }
    }
}

impl AmoParams {
    /// Whether `every-request-completed` applies: clients never give up.
    pub fn retries_unbounded(&self) -> bool {
        self.retries_max.is_none()
    }

    fn stub_config(&self) -> StubConfig {
        StubConfig {
            timeout: SimDuration::from_millis(self.timeout_ms),
            retries_max: self.retries_max,
            window: self.window,
            matching: self.reply_matching,
        }
    }
}

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "timeout_ms",
        default: "100",
        help: "client waits this long for a reply before re-sending",
    },
    ParamDoc {
        name: "retries_max",
        default: "null",
        help: "re-sends before giving up; null: never (exactly-once)",
    },
    ParamDoc { name: "execute_ms", default: "5", help: "how long the server's handler takes (slow disk)" },
    ParamDoc { name: "dedup", default: "durable", help: "dedup table: none | memory | durable" },
    ParamDoc { name: "discard", default: "seq-ack", help: "cache discard: none | seq-ack | one-outstanding" },
    ParamDoc {
        name: "window",
        default: "1",
        help: "seqs a client may have beyond its ack (1 for one-outstanding)",
    },
    ParamDoc { name: "reply_matching", default: "by-id", help: "by-id | accept-any (buggy client)" },
];

/// Builds the server and one client per entry of `ops` (each client's operations).
pub fn setup(params: &AmoParams, ops: Vec<Vec<KvOp>>, think: SimDuration) -> Setup<AmoNode> {
    assert!(
        params.discard != DiscardMode::OneOutstanding || params.window == 1,
        "one-outstanding discard needs a window of 1"
    );
    let n_clients = ops.len();
    let n_ops = ops.iter().map(Vec::len).sum();
    let params = params.clone();
    let mut node_names = vec!["server".to_string()];
    node_names.extend((1..=n_clients).map(|i| format!("client {i}")));
    let bound = n_clients * params.window as usize;
    let because =
        format!("{n_clients} clients x window {}, discard {}", params.window, params.discard.name());
    let cache_size = |world: &World<AmoNode>| match world.node(SERVER) {
        Some(AmoNode::Server(server)) => server.layer().table().len(),
        // Down: only what is on disk is kept.
        _ => world.durable(SERVER).replies.len(),
    };
    let mut invariants: Vec<Box<dyn Invariant<AmoNode>>> = vec![
        Box::new(ExecutedAtMostOnce::explained(params.dedup.mechanism())),
        Box::new(ReplyMatchesRequest::default()),
        Box::new(CacheBounded::new(bound, because, cache_size)),
        Box::new(KvLinearizable::default()),
    ];
    if params.retries_unbounded() {
        invariants.push(Box::new(EveryRequestCompleted::new(n_ops)));
    }
    let config = params.stub_config();
    Setup {
        n_nodes: 1 + n_clients,
        build: Box::new(move |id, stored| {
            if id == SERVER {
                AmoNode::Server(Server::new(&params, stored))
            } else {
                AmoNode::Client(Client::new(ops[id.index() - 1].clone(), config, think))
            }
        }),
        invariants,
        sometimes: SOMETIMES,
        fault_model: FaultModel {
            description: "the server (n0) may crash and restart; clients never crash (a restarted \
                          client would need a fresh id or a durable seq); partitions allowed"
                .into(),
            may_crash: vec![SERVER],
            max_down_at_once: 1,
            partitions: true,
            network: NetworkAssumptions::default(),
            crash_stop: false,
        },
        node_names,
        client_history: Some(crate::kv::client_history),
    }
}

/// At-most-once RPC in the registry.
pub struct AtMostOnce;

impl Protocol for AtMostOnce {
    type Params = AmoParams;
    type Node = AmoNode;

    fn name(&self) -> &'static str {
        "at-most-once"
    }

    fn summary(&self) -> &'static str {
        "at-most-once RPC: request ids, reply cache, discard, pending marks, durable dedup table"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn uses_workload(&self) -> bool {
        true
    }

    fn validate(&self, params: &AmoParams, scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        let path = |field: &'static str| ["protocol", "at-most-once", field];
        let at = |field: &'static str, why: String| FieldError::param("at-most-once", field, why);
        check_ms(&path("timeout_ms"), params.timeout_ms, 1)?;
        check_ms(&path("execute_ms"), params.execute_ms, 0)?;
        if params.window == 0 {
            return Err(at("window", "must be at least 1: a window of 0 allows no call".into()));
        }
        if params.window > Workload::OPS_PER_CLIENT_MAX {
            let max = Workload::OPS_PER_CLIENT_MAX;
            return Err(at(
                "window",
                format!("{} is too large: at most {max} (a client's most operations)", params.window),
            ));
        }
        if params.discard == DiscardMode::OneOutstanding && params.window != 1 {
            return Err(at(
                "window",
                format!(
                    "discard \"one-outstanding\" means one call per client at a time, so the window must \
                     be 1 (it is {}); use discard \"seq-ack\" for a larger window",
                    params.window
                ),
            ));
        }
        // every-request-completed is a promise of unbounded retries; with a retry limit it
        // is not checked, so naming it would silently check nothing.
        if !params.retries_unbounded() {
            let why = format!(
                "{EVERY_REQUEST_COMPLETED} is checked only with unbounded retries; remove \
                 \"retries_max\" (or set it to null) to check it"
            );
            let named =
                scenario.invariants.unwrap_or_default().iter().position(|n| n == EVERY_REQUEST_COMPLETED);
            if let Some(i) = named {
                return Err(FieldError {
                    path: vec![PathSeg::Key("invariants".into()), PathSeg::Index(i)],
                    message: why,
                });
            }
            if scenario.expect_violation == Some(EVERY_REQUEST_COMPLETED) {
                return Err(FieldError::at(&["expect", "violation"], why));
            }
        }
        Ok(())
    }

    fn facts(&self, _params: &AmoParams, scenario: &ScenarioView<'_>) -> Facts {
        key_value_facts(scenario.workload)
    }

    fn setup(&self, params: &AmoParams, workload: &Workload, seed: u64) -> Setup<AmoNode> {
        let (ops, think) = workload.for_seed(seed);
        setup(params, ops, think)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::EXECUTED_AT_MOST_ONCE;
    use sim_core::{Latency, LinkConfig, NetworkConfig, Outcome, SimConfig, Simulation};

    fn id(client: u32, seq: u64) -> RequestId {
        RequestId { client: NodeId(client), seq }
    }

    fn header(client: u32, seq: u64, acked: u64) -> RequestHeader {
        RequestHeader { id: id(client, seq), acked }
    }

    fn layer(mode: DedupMode, discard: DiscardMode) -> (DedupLayer<&'static str>, ReplyCache<&'static str>) {
        let stored = ReplyCache::default();
        (DedupLayer::new(mode, discard, &stored), stored)
    }

    #[test]
    fn a_duplicate_of_a_pending_request_is_not_executed_and_later_gets_the_cached_reply() {
        let (mut layer, mut stored) = layer(DedupMode::Memory, DiscardMode::SeqAck);
        let request = header(1, 1, 0);
        assert_eq!(layer.admit(&mut stored, &request), Admission::Execute);
        assert_eq!(layer.pending(), 1);
        // The handler is still running: copies are recognised by the pending mark.
        assert_eq!(layer.admit(&mut stored, &request), Admission::Pending);
        assert_eq!(layer.admit(&mut stored, &request), Admission::Pending);
        layer.complete(&mut stored, request.id, &"done");
        assert_eq!(layer.pending(), 0);
        assert_eq!(layer.admit(&mut stored, &request), Admission::Cached("done"));
        // Another client's request with the same seq is a different request.
        assert_eq!(layer.admit(&mut stored, &header(2, 1, 0)), Admission::Execute);
    }

    #[test]
    fn seq_ack_discards_acknowledged_replies_and_rejects_stale_copies() {
        let (mut layer, mut stored) = layer(DedupMode::Memory, DiscardMode::SeqAck);
        for seq in 1..=3 {
            assert_eq!(layer.admit(&mut stored, &header(1, seq, 0)), Admission::Execute);
            layer.complete(&mut stored, id(1, seq), &"r");
        }
        assert_eq!(layer.table().len(), 3);
        // Seq 4 says "I have seen all replies up to 2".
        assert_eq!(layer.admit(&mut stored, &header(1, 4, 2)), Admission::Execute);
        assert_eq!(layer.table().len(), 1, "replies 1 and 2 are discarded, 3 is kept");
        assert_eq!(layer.admit(&mut stored, &header(1, 3, 2)), Admission::Cached("r"));
        // A late copy of seq 2 must not run again: the watermark remembers it was done.
        assert_eq!(layer.admit(&mut stored, &header(1, 2, 1)), Admission::Stale);
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Stale);
    }

    #[test]
    fn one_outstanding_discards_below_the_arriving_seq() {
        let (mut layer, mut stored) = layer(DedupMode::Memory, DiscardMode::OneOutstanding);
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Execute);
        layer.complete(&mut stored, id(1, 1), &"a");
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Cached("a"));
        // The ack is ignored in this mode; the arrival of seq 2 is what frees seq 1.
        assert_eq!(layer.admit(&mut stored, &header(1, 2, 0)), Admission::Execute);
        assert_eq!(layer.table().len(), 0);
        layer.complete(&mut stored, id(1, 2), &"b");
        assert_eq!(layer.table().len(), 1);
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Stale);
    }

    #[test]
    fn without_discard_the_cache_keeps_every_reply() {
        let (mut layer, mut stored) = layer(DedupMode::Memory, DiscardMode::None);
        for seq in 1..=10 {
            assert_eq!(layer.admit(&mut stored, &header(1, seq, seq - 1)), Admission::Execute);
            layer.complete(&mut stored, id(1, seq), &"r");
        }
        assert_eq!(layer.table().len(), 10);
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Cached("r"));
    }

    #[test]
    fn a_reply_completed_after_its_ack_is_not_cached() {
        // The client gave up on seq 1 (bounded retries) and acknowledged past it while the
        // handler still ran: caching its reply now would exceed the window.
        let (mut layer, mut stored) = layer(DedupMode::Memory, DiscardMode::SeqAck);
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Execute);
        assert_eq!(layer.admit(&mut stored, &header(1, 2, 1)), Admission::Execute);
        layer.complete(&mut stored, id(1, 1), &"late");
        assert_eq!(layer.table().len(), 0);
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Stale);
    }

    #[test]
    fn only_the_durable_table_survives_a_restart_and_pending_marks_never_do() {
        for mode in [DedupMode::Memory, DedupMode::Durable] {
            let (mut layer, mut stored) = layer(mode, DiscardMode::SeqAck);
            layer.admit(&mut stored, &header(1, 1, 0));
            layer.complete(&mut stored, id(1, 1), &"a");
            layer.admit(&mut stored, &header(1, 2, 1));
            layer.complete(&mut stored, id(1, 2), &"b");
            // A window of 2: seq 3 goes out before the reply to 2 is seen.
            layer.admit(&mut stored, &header(1, 3, 1));
            // Crash with seq 3 pending; restart from storage.
            let mut restarted = DedupLayer::new(mode, DiscardMode::SeqAck, &stored);
            assert_eq!(restarted.pending(), 0);
            let late_one = restarted.admit(&mut stored, &header(1, 1, 0));
            let late_two = restarted.admit(&mut stored, &header(1, 2, 1));
            let three = restarted.admit(&mut stored, &header(1, 3, 1));
            match mode {
                DedupMode::Durable => {
                    assert_eq!(stored, *layer.table());
                    assert_eq!((late_one, late_two), (Admission::Stale, Admission::Cached("b")));
                }
                // The lecture's point: the restarted server runs them again.
                _ => {
                    assert!(stored.is_empty());
                    assert_eq!((late_one, late_two), (Admission::Execute, Admission::Execute));
                }
            }
            // Seq 3 never ran (the crash cut it short), so it runs now, in both modes.
            assert_eq!(three, Admission::Execute);
        }
    }

    #[test]
    fn without_dedup_every_copy_executes() {
        let (mut layer, mut stored) = layer(DedupMode::None, DiscardMode::SeqAck);
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Execute);
        assert_eq!(layer.admit(&mut stored, &header(1, 1, 0)), Admission::Execute);
    }

    /// One client, a 10 ms timeout, a reliable 1 ms network and a 100 ms disk: the client
    /// re-sends about 9 times while the original still executes.
    fn slow_disk_run(dedup: DedupMode) -> (Outcome, usize, u64) {
        let params = AmoParams { timeout_ms: 10, execute_ms: 100, dedup, ..AmoParams::default() };
        let op = |value: &str| KvOp::Append { key: "k".into(), value: value.into() };
        let get = KvOp::Get { key: "k".into() };
        let setup = setup(&params, vec![vec![op("a"), op("b"), get]], SimDuration::ZERO);
        let link = LinkConfig::reliable(Latency::Constant(SimDuration::from_millis(1)));
        let mut sim =
            Simulation::new(SimConfig::new(1, NetworkConfig::uniform(link)), setup.n_nodes, setup.build);
        for invariant in setup.invariants {
            sim.add_invariant(invariant);
        }
        let report = sim.run();
        let executions = sim
            .world()
            .history()
            .entries()
            .iter()
            .filter(|e| matches!(e.op, KvRecord::Executed { .. }))
            .count();
        (report.outcome, executions, sim.world().counters(SERVER).delivered)
    }

    #[test]
    fn pending_duplicates_on_a_slow_disk_run_once() {
        let (outcome, executions, delivered) = slow_disk_run(DedupMode::Memory);
        assert_eq!(outcome, Outcome::Pass);
        assert_eq!(executions, 3);
        assert!(delivered >= 3 * 9, "the client re-sent while the disk was busy ({delivered} requests)");
    }

    #[test]
    fn pending_duplicates_run_again_without_dedup() {
        let (outcome, _, _) = slow_disk_run(DedupMode::None);
        let violation = outcome.violation().expect("duplicates execute without a table");
        assert_eq!(violation.invariant, EXECUTED_AT_MOST_ONCE);
    }
}
