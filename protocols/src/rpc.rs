//! RPC with retries ("best effort"), over a key/value server.
//!
//! **The algorithm.** A client stub sends a request and waits. If no reply arrives within
//! `timeout_ms`, it sends the same request again, up to `retries_max` more times; then it
//! gives up and reports failure to the application. The server runs the handler for every
//! request that arrives and replies. Node 0 is the server; nodes 1..=n are clients, each
//! running its operations one at a time. The client side is at-most-once RPC's
//! [`ClientStub`] with a window of one call: what makes this best effort is the server,
//! which keeps no table of the requests it ran.
//!
//! **The guarantee**, and its limit. A request the client saw succeed ran at least once.
//! It may have run more than once: a re-sent request runs again, and a slow original may
//! arrive after the client has moved on. The lecture's anomaly (6.824 lecture 2):
//! Put(k,10) times out and is re-sent; the re-send runs and is answered; Put(k,20) runs;
//! then the delayed original Put(k,10) arrives and runs again; Get(k) now yields 10.
//!
//! **Invariants.** `executed-at-most-once` (ground truth: no request id ran twice) fires
//! on the first duplicate execution, harmful or not. `kv-linearizable` fires only when a
//! client can see the damage, as in the anomaly above. Best effort is only safe when
//! neither happens: no loss, no duplication, and replies faster than the timeout.
//!
//! **Fault model.** The server keeps its store in memory, so a server crash is outside the
//! model; clients may crash, and partitions are allowed. A client keeps its request counter
//! and its place in its workload in durable storage, so a restarted client never reuses a
//! request id.

use crate::at_most_once::{CallerNode, ClientStub, ReplyMatching, RequestHeader, Retry, StubConfig};
use crate::kv::{ExecutedAtMostOnce, KvLinearizable, KvOp, KvRecord, KvResult, KvStore, RequestId, Workload};
use crate::registry::{check_ms, key_value_facts, Facts, FieldError, Protocol, ScenarioView};
use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::{
    Context, FaultModel, Message, MessageClass, NetworkAssumptions, Node, NodeId, OpId, SimDuration,
};

/// The server's id.
pub const SERVER: NodeId = NodeId(0);

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RpcMsg {
    Request { id: RequestId, op: KvOp },
    Reply { id: RequestId, result: KvResult },
}

impl Message for RpcMsg {
    fn class(&self) -> MessageClass {
        match self {
            RpcMsg::Request { .. } => MessageClass::Request,
            RpcMsg::Reply { .. } => MessageClass::Reply,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ClientTimer {
    /// No reply to request `seq` yet: re-send or give up.
    Retry { seq: u64 },
    /// Think time is over: start the next operation.
    Next,
}

/// A client: its operations, one at a time, through the at-most-once [`ClientStub`] (one
/// call in flight, re-sent with the same id until a reply comes or retries run out). The
/// stub is the same; what makes this RPC best effort is the server, which keeps no table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    ops: Vec<KvOp>,
    next_op: usize,
    stub: ClientStub<KvOp>,
    /// The history operation of the call in flight.
    open: Option<OpId>,
    think: SimDuration,
}

/// What a client keeps across a crash: how far it got. Without it a restarted client would
/// number its requests from 1 again, and its new request n1#1 would carry the id of an
/// older one (the lecture's "what if two clients use the same XID?").
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ClientDurable {
    pub next_op: usize,
    pub next_seq: u64,
}

impl Client {
    /// A client with its operations, resuming where `durable` says it got to (the operation
    /// in flight at a crash is abandoned: its outcome stays unknown).
    pub fn new(ops: Vec<KvOp>, params: &RpcParams, think: SimDuration, durable: &ClientDurable) -> Client {
        let config = StubConfig {
            timeout: SimDuration::from_millis(params.timeout_ms),
            retries_max: Some(params.retries_max),
            window: 1,
            matching: ReplyMatching::ById,
        };
        let stub = ClientStub::resume(config, durable.next_seq);
        Client { ops, next_op: durable.next_op, stub, open: None, think }
    }

    /// True when every operation has returned.
    pub fn done(&self) -> bool {
        self.open.is_none() && self.next_op == self.ops.len()
    }

    fn start_next(&mut self, ctx: &mut Context<'_, RpcNode>) {
        let Some(op) = self.ops.get(self.next_op).cloned() else {
            return;
        };
        self.next_op += 1;
        let id = self.stub.call(ctx, SERVER, op.clone());
        *ctx.durable() = ClientDurable { next_op: self.next_op, next_seq: id.seq };
        self.open = Some(ctx.invoke(KvRecord::Call { request: id, op }));
    }

    fn finish(&mut self, ctx: &mut Context<'_, RpcNode>, result: KvResult) {
        let op_id = self.open.take().expect("finishing an outstanding request");
        ctx.ret(op_id, KvRecord::Return(result));
        if self.next_op < self.ops.len() {
            if self.think == SimDuration::ZERO {
                self.start_next(ctx);
            } else {
                ctx.set_timer(self.think, ClientTimer::Next);
            }
        }
    }

    fn on_reply(&mut self, ctx: &mut Context<'_, RpcNode>, id: RequestId, result: KvResult) {
        match self.stub.on_reply(ctx, id) {
            Some(_) => self.finish(ctx, result),
            // A reply to an earlier request (a late duplicate) is ignored.
            None => ctx.sometimes(LATE_REPLY_IGNORED),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, RpcNode>, timer: ClientTimer) {
        match timer {
            ClientTimer::Next => self.start_next(ctx),
            ClientTimer::Retry { seq } => {
                let id = RequestId { client: ctx.id(), seq };
                match self.stub.on_retry(ctx, id) {
                    Retry::Resent => ctx.sometimes(RESENT),
                    Retry::GaveUp(..) => {
                        ctx.sometimes(GAVE_UP);
                        self.finish(ctx, KvResult::GaveUp);
                    }
                    Retry::Finished => {}
                }
            }
        }
    }
}

/// The server: runs every request it receives.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Server {
    store: KvStore,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RpcNode {
    Server(Server),
    Client(Client),
}

impl Node for RpcNode {
    type Msg = RpcMsg;
    type Timer = ClientTimer;
    type Durable = ClientDurable;
    type Op = KvRecord;

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        if let RpcNode::Client(client) = self {
            client.start_next(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: RpcMsg) {
        match (self, msg) {
            (RpcNode::Server(server), RpcMsg::Request { id, op }) => {
                ctx.note(KvRecord::Executed { request: id, op: op.clone() });
                let result = server.store.apply(&op);
                ctx.send(from, RpcMsg::Reply { id, result });
            }
            (RpcNode::Client(client), RpcMsg::Reply { id, result }) => client.on_reply(ctx, id, result),
            (node, msg) => panic!("{node:?} cannot handle {msg:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: ClientTimer) {
        if let RpcNode::Client(client) = self {
            client.on_timer(ctx, timer);
        }
    }
}

impl CallerNode for RpcNode {
    type Request = KvOp;

    /// Best effort sends no ack: the server keeps nothing it could discard.
    fn request_message(header: RequestHeader, op: KvOp) -> RpcMsg {
        RpcMsg::Request { id: header.id, op }
    }

    fn retry_timer(id: RequestId) -> ClientTimer {
        ClientTimer::Retry { seq: id.seq }
    }
}

/// Scenario parameters of best-effort RPC.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RpcParams {
    /// How long a client waits for a reply before re-sending.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How many times a client re-sends before giving up.
    #[serde(default = "default_retries_max")]
    pub retries_max: u32,
}

fn default_timeout_ms() -> u64 {
    100
}

fn default_retries_max() -> u32 {
    3
}

impl Default for RpcParams {
    fn default() -> Self {
        RpcParams { timeout_ms: default_timeout_ms(), retries_max: default_retries_max() }
    }
}

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "timeout_ms",
        default: "100",
        help: "client waits this long for a reply before re-sending",
    },
    ParamDoc { name: "retries_max", default: "3", help: "re-sends before the client gives up" },
];

/// Builds the server and one client per entry of `ops` (each client's operations).
pub fn setup(params: &RpcParams, ops: Vec<Vec<KvOp>>, think: SimDuration) -> Setup<RpcNode> {
    let n_clients = ops.len();
    let params = params.clone();
    let mut node_names = vec!["server".to_string()];
    node_names.extend((1..=n_clients).map(|i| format!("client {i}")));
    Setup {
        n_nodes: 1 + n_clients,
        build: Box::new(move |id, durable| {
            if id == SERVER {
                RpcNode::Server(Server::default())
            } else {
                RpcNode::Client(Client::new(ops[id.index() - 1].clone(), &params, think, durable))
            }
        }),
        invariants: vec![
            Box::new(ExecutedAtMostOnce::explained(
                "Best-effort RPC keeps no table of the requests it ran: every copy that arrives (a \
                 re-send after a timeout, a duplicate) runs again (docs/protocols/rpc.md)",
            )),
            Box::new(KvLinearizable::default()),
        ],
        fault_model: FaultModel {
            description: "the server never crashes (its store is in memory); clients may crash; \
                          partitions allowed"
                .into(),
            may_crash: (1..=n_clients as u32).map(NodeId).collect(),
            max_down_at_once: n_clients,
            partitions: true,
            network: NetworkAssumptions::default(),
            crash_stop: false,
        },
        node_names,
        sometimes: SOMETIMES,
        client_history: Some(crate::kv::client_history),
    }
}

/// The rare paths best-effort RPC marks.
pub const SOMETIMES: &[&str] = &[RESENT, LATE_REPLY_IGNORED, GAVE_UP];
/// A client re-sent a request after its timeout.
pub const RESENT: &str = "rpc: request re-sent after a timeout";
/// A reply arrived for a request the client had already finished.
pub const LATE_REPLY_IGNORED: &str = "rpc: late reply ignored";
/// A client gave up after its last re-send.
pub const GAVE_UP: &str = "rpc: client gave up";

/// Best-effort RPC in the registry.
pub struct Rpc;

impl Protocol for Rpc {
    type Params = RpcParams;
    type Node = RpcNode;

    fn name(&self) -> &'static str {
        "rpc"
    }

    fn summary(&self) -> &'static str {
        "RPC with retries (best effort) over a key/value server"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn uses_workload(&self) -> bool {
        true
    }

    fn validate(&self, params: &RpcParams, _scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        check_ms(&["protocol", "rpc", "timeout_ms"], params.timeout_ms, 1)
    }

    fn facts(&self, _params: &RpcParams, scenario: &ScenarioView<'_>) -> Facts {
        key_value_facts(scenario.workload)
    }

    fn setup(&self, params: &RpcParams, workload: &Workload, seed: u64) -> Setup<RpcNode> {
        let (ops, think) = workload.for_seed(seed);
        setup(params, ops, think)
    }
}
