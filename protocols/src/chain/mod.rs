//! Chain replication with a configuration master (van Renesse and Schneider, OSDI 2004).
//!
//! **The algorithm.** The servers form a chain, head first. A client sends updates (put,
//! append) to the head and queries (get) to the tail, through the at-most-once client
//! stub, so a re-sent update never runs twice. The head admits an update through the
//! at-most-once dedup layer, gives it the next sequence number and applies it; each server
//! applies what its predecessor forwards, in order, forwards it to its successor and keeps
//! it in its *Sent list*; the tail applies it, answers the client and sends an
//! acknowledgement back up the chain, which removes it from every Sent list on the way.
//! Every server admits the same updates in the same order, so every server's reply cache
//! is the same as the head's was at that point: a new head recognises a re-sent update.
//!
//! A configuration master (node 0, assumed never to fail) hears a heartbeat from every
//! server and declares a server failed when none came for `detect_ms`. It reconfigures as
//! the paper says: a failed **head** is dropped and its successor becomes head; a failed
//! **tail** is dropped and its predecessor becomes tail (everything in its Sent list has
//! now reached the tail: it answers those clients); a failed **middle** server S is
//! dropped with a handshake: the master tells S's successor its new predecessor, the
//! successor answers with the sequence number of the last update it received, the master
//! tells S's predecessor its new successor and that number, and the predecessor re-sends
//! the entries of its Sent list after that number before anything new. **Extension**: a
//! spare joins at the tail (after a failure, or at `extend_at_ms`): the old tail sends it
//! its whole state, stops answering queries, and forwards what it applies from then on;
//! the new server answers queries once the state has arrived, and the master switches the
//! clients to it. Clients learn the head and tail from the master and re-aim their
//! outstanding calls with [`ClientStub::redirect`](crate::at_most_once::ClientStub::redirect).
//!
//! **Fault model.** Servers crash and stop (a restarted server never acts again: crash-stop,
//! [`FaultModel::crash_stop`]); at least one server of the chain survives (all of them down
//! is outside the model); the master never fails and is never cut off from the servers
//! (partitions are outside the model); links among the master and servers are reliable
//! and FIFO with bounded delay (the paper assumes TCP, and the master's timeouts assume
//! a bound), which each scenario sets per link. Links between clients and servers may lose,
//! duplicate and reorder.
//!
//! **The guarantee.** Every history is linearizable (updates take effect at the tail,
//! queries read the tail) and, once faults end, every request completes.
//!
//! **Invariants**, checked after every step: `kv-linearizable`, `update-propagation`
//! (along the chain, each server's updates are a prefix of its predecessor's),
//! `sent-list` (a server's Sent list is the end of its updates and covers everything its
//! successor lacks; the tail's is empty), `no-acknowledged-update-lost` (after every
//! reconfiguration, and at the end, the tail holds every update a client was told is
//! done), `one-head-one-tail` (at most one server acts as head and one as tail, every
//! configuration has one of each, only the tail answers queries), and at the end
//! `every-request-completed`.
//!
//! **Known-buggy variants**, each a parameter with a scenario: `read_from: head` (queries
//! answered by the head, which has updates the tail does not), `resend_on_middle_failure:
//! false` (the lecture notes' failover: updates in flight at the failed server are lost),
//! `ack_before_tail: true` (the head answers updates before they reach the tail).

mod client;
mod invariants;
mod master;
mod server;

pub use client::Client;
pub use invariants::{
    NoAcknowledgedUpdateLost, OneHeadOneTail, SentList, UpdatePropagation, NO_ACKNOWLEDGED_UPDATE_LOST,
    ONE_HEAD_ONE_TAIL, SENT_LIST, UPDATE_PROPAGATION,
};
pub use master::Master;
pub use server::{Applied, Server};

use crate::at_most_once::{EveryRequestCompleted, ReplyCache, ReplyMatching, RequestHeader, StubConfig};
use crate::kv::{KvLinearizable, KvOp, KvRecord, KvResult, KvStore, RequestId, Workload};
use crate::registry::{check_max, check_ms, Facts, FieldError, Protocol, ScenarioView, NODE_BYTES, OP_BYTES};
use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::{
    Context, FaultModel, Invariant, Message, MessageClass, NetworkAssumptions, Node, NodeId, SimDuration,
};

/// The configuration master's id; the servers are 1..=servers, then the spares, then the
/// clients.
pub const MASTER: NodeId = NodeId(0);

/// Where queries go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadFrom {
    /// The tail: it has only updates every server has (correct).
    #[default]
    Tail,
    /// The head: it has updates the rest of the chain may never get. Buggy on purpose.
    Head,
}

/// An update on its way down the chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Update {
    /// Its place in the chain's order, given by the head.
    pub seq: u64,
    pub header: RequestHeader,
    pub op: KvOp,
    pub result: KvResult,
}

/// A server's whole state, sent to a spare joining at the tail.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Snapshot {
    pub store: KvStore,
    pub replies: ReplyCache<KvResult>,
    pub history: Vec<Applied>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ChainMsg {
    /// Client to head (updates) or tail (queries).
    Request {
        header: RequestHeader,
        op: KvOp,
    },
    /// Tail (or a head answering a re-send from its cache) to client.
    Reply {
        reply_to: RequestId,
        result: KvResult,
    },
    /// Down the chain.
    Forward {
        update: Update,
    },
    /// Up the chain: the tail has every update up to `seq`.
    Ack {
        seq: u64,
    },
    /// Server to master, every `heartbeat_ms`.
    Heartbeat,
    /// Master to server: your predecessor is now `pred` (`None`: you are the head).
    SetPredecessor {
        epoch: u64,
        pred: Option<NodeId>,
    },
    /// Server to master: the last update received (the handshake's answer); `installed`
    /// false for a spare that has no state yet.
    LastReceived {
        epoch: u64,
        seq: u64,
        installed: bool,
    },
    /// Master to server: your successor is now `succ` (`None`: you are the tail); it has
    /// every update up to `resend_after`, or (`transfer`) nothing at all yet.
    SetSuccessor {
        epoch: u64,
        succ: Option<NodeId>,
        resend_after: u64,
        transfer: bool,
    },
    /// Old tail to a joining spare: the whole state.
    State {
        snapshot: Box<Snapshot>,
    },
    /// Joining spare to master: the state arrived; it is the tail.
    Joined,
    /// Client to master: where are the head and tail?
    WhereIs,
    /// Master to client: the head and tail of configuration `epoch`.
    Config {
        epoch: u64,
        head: NodeId,
        tail: NodeId,
    },
    /// Client to master: every operation has returned (re-sent until acknowledged).
    Done,
    DoneAck,
    /// Master to servers: every client has finished; heartbeats stop so the run can end.
    Stop,
}

impl Message for ChainMsg {
    fn class(&self) -> MessageClass {
        match self {
            ChainMsg::Request { .. } | ChainMsg::WhereIs | ChainMsg::Done => MessageClass::Request,
            ChainMsg::Reply { .. } | ChainMsg::Config { .. } | ChainMsg::DoneAck => MessageClass::Reply,
            _ => MessageClass::Other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ChainTimer {
    /// Client: no reply to this call yet.
    Retry(RequestId),
    /// Client: think time is over.
    Think,
    /// Client: the master has not acknowledged that this client is done.
    DoneRetry,
    /// Server: time to send a heartbeat.
    Heartbeat,
    /// Master: a heartbeat period passed.
    Check,
    /// Master: a scheduled extension is due.
    Extend,
}

/// What a server needs of the parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerConfig {
    pub heartbeat: SimDuration,
    pub read_from: ReadFrom,
    pub resend_on_middle_failure: bool,
    pub ack_before_tail: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChainNode {
    Master(Master),
    Server(Server),
    Client(Client),
}

impl Node for ChainNode {
    type Msg = ChainMsg;
    type Timer = ChainTimer;
    type Durable = ();
    type Op = KvRecord;

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        match self {
            ChainNode::Master(master) => master.on_start(ctx),
            ChainNode::Server(server) => server.on_start(ctx),
            ChainNode::Client(client) => client.on_start(ctx),
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: ChainMsg) {
        match self {
            ChainNode::Master(master) => master.on_message(ctx, from, msg),
            ChainNode::Server(server) => server.on_message(ctx, from, msg),
            ChainNode::Client(client) => client.on_message(ctx, from, msg),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: ChainTimer) {
        match (self, timer) {
            (ChainNode::Master(master), timer) => master.on_timer(ctx, timer),
            (ChainNode::Server(server), ChainTimer::Heartbeat) => server.on_heartbeat(ctx),
            (ChainNode::Client(client), timer) => client.on_timer(ctx, timer),
            (node, timer) => panic!("{node:?} cannot handle {timer:?}"),
        }
    }
}

impl crate::at_most_once::CallerNode for ChainNode {
    type Request = KvOp;

    fn request_message(header: RequestHeader, op: KvOp) -> ChainMsg {
        ChainMsg::Request { header, op }
    }

    fn retry_timer(id: RequestId) -> ChainTimer {
        ChainTimer::Retry(id)
    }
}

impl crate::at_most_once::KvCaller for ChainNode {
    fn think_timer() -> ChainTimer {
        ChainTimer::Think
    }
}

// ---------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChainParams {
    #[serde(default = "default_servers")]
    pub servers: u32,
    #[serde(default)]
    pub spares: u32,
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    #[serde(default = "default_detect_ms")]
    pub detect_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_window")]
    pub window: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extend_at_ms: Option<u64>,
    #[serde(default = "default_true")]
    pub extend_after_failure: bool,
    #[serde(default)]
    pub read_from: ReadFrom,
    #[serde(default = "default_true")]
    pub resend_on_middle_failure: bool,
    #[serde(default)]
    pub ack_before_tail: bool,
}

fn default_servers() -> u32 {
    3
}
fn default_heartbeat_ms() -> u64 {
    10
}
fn default_detect_ms() -> u64 {
    50
}
fn default_timeout_ms() -> u64 {
    100
}
fn default_window() -> u32 {
    1
}
fn default_true() -> bool {
    true
}

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            servers: default_servers(),
            spares: 0,
            heartbeat_ms: default_heartbeat_ms(),
            detect_ms: default_detect_ms(),
            timeout_ms: default_timeout_ms(),
            window: default_window(),
            extend_at_ms: None,
            extend_after_failure: true,
            read_from: ReadFrom::Tail,
            resend_on_middle_failure: true,
            ack_before_tail: false,
        }
    }
}

/// The longest chain, and the most spares.
pub const SERVERS_MAX: u32 = 64;
pub const SPARES_MAX: u32 = 64;

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "servers",
        default: "3",
        help: "servers in the chain (nodes 1..=servers; node 0 is the master)",
    },
    ParamDoc { name: "spares", default: "0", help: "spare servers that join at the tail after a failure" },
    ParamDoc { name: "heartbeat_ms", default: "10", help: "how often servers send the master a heartbeat" },
    ParamDoc {
        name: "detect_ms",
        default: "50",
        help: "the master declares a server failed after this long unheard",
    },
    ParamDoc {
        name: "timeout_ms",
        default: "100",
        help: "client waits this long before re-sending (and asking the master)",
    },
    ParamDoc { name: "window", default: "1", help: "calls a client may have in flight" },
    ParamDoc {
        name: "extend_at_ms",
        default: "null",
        help: "a spare joins at this time even without a failure",
    },
    ParamDoc {
        name: "extend_after_failure",
        default: "true",
        help: "spares join when a failure shortens the chain",
    },
    ParamDoc {
        name: "read_from",
        default: "tail",
        help: "tail | head (buggy: reads updates not yet at the tail)",
    },
    ParamDoc {
        name: "resend_on_middle_failure",
        default: "true",
        help: "false: the notes' failover, no Sent-list re-send (buggy)",
    },
    ParamDoc {
        name: "ack_before_tail",
        default: "false",
        help: "true: the head answers updates at once (buggy)",
    },
];

/// Where the nodes are: the master, the servers, the spares, the clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub servers: u32,
    pub spares: u32,
    pub clients: u32,
}

impl Layout {
    pub fn new(params: &ChainParams, workload: &Workload) -> Layout {
        Layout { servers: params.servers, spares: params.spares, clients: workload.n_clients() as u32 }
    }

    pub fn n_nodes(&self) -> usize {
        1 + self.servers as usize + self.spares as usize + self.clients as usize
    }

    pub fn servers(&self) -> impl Iterator<Item = NodeId> {
        (1..=self.servers).map(NodeId)
    }

    pub fn spares(&self) -> impl Iterator<Item = NodeId> {
        (self.servers + 1..=self.servers + self.spares).map(NodeId)
    }

    pub fn clients(&self) -> impl Iterator<Item = NodeId> {
        let first = 1 + self.servers + self.spares;
        (first..first + self.clients).map(NodeId)
    }

    fn names(&self) -> String {
        let (s, p) = (self.servers, self.spares);
        let spares = if p > 0 { format!("{}..={} are spares, ", s + 1, s + p) } else { String::new() };
        format!(
            "0 is the master, 1..={s} are the chain (1 the head), {spares}{}..={} are clients",
            s + p + 1,
            s + p + self.clients
        )
    }
}

impl ChainParams {
    fn stub_config(&self) -> StubConfig {
        StubConfig {
            timeout: SimDuration::from_millis(self.timeout_ms),
            retries_max: None,
            window: self.window,
            matching: ReplyMatching::ById,
        }
    }

    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            heartbeat: SimDuration::from_millis(self.heartbeat_ms),
            read_from: self.read_from,
            resend_on_middle_failure: self.resend_on_middle_failure,
            ack_before_tail: self.ack_before_tail,
        }
    }

    /// The longest a message among the master and servers may take, for a missed
    /// heartbeat to mean a crash: a heartbeat's gap plus the delay stays within
    /// `detect_ms` (as primary-backup's bound).
    pub fn link_ms_max(&self) -> u64 {
        crate::timely_link_ms(self.heartbeat_ms, self.detect_ms)
    }
}

/// The fault model: crash-stop servers (spares too), never all of the chain at once.
pub fn fault_model(layout: &Layout, link_ms_max: u64) -> FaultModel {
    let n = layout.servers;
    FaultModel {
        description: format!(
            "crash-stop servers: at most {} of the {n} chain servers and {} spares crash in a run \
             (a restarted server never acts again), so one server always survives; the master \
             (n0) never fails, and partitions between it and the servers are outside the model; \
             links among the master and servers are assumed reliable and FIFO, delivering within \
             (detect_ms - heartbeat_ms) / 2 = {link_ms_max} ms (each scenario sets them per link)",
            n.saturating_sub(1),
            layout.spares
        ),
        may_crash: layout.servers().chain(layout.spares()).collect(),
        max_down_at_once: n.saturating_sub(1) as usize,
        partitions: false,
        // The master and the servers (and spares) are n0..=servers + spares: TCP among them.
        network: NetworkAssumptions {
            lossless: true,
            no_duplicates: true,
            fifo: true,
            delivery_max: Some(SimDuration::from_millis(link_ms_max)),
            among: Some(1 + layout.servers + layout.spares),
        },
        crash_stop: true,
    }
}

/// Builds the master, the servers, the spares and one client per entry of `ops`.
pub fn setup(params: &ChainParams, ops: Vec<Vec<KvOp>>, think: SimDuration) -> Setup<ChainNode> {
    let layout = Layout { servers: params.servers, spares: params.spares, clients: ops.len() as u32 };
    assert!(layout.servers >= 1, "a chain needs a server");
    let n_ops = ops.iter().map(Vec::len).sum();
    let chain: Vec<NodeId> = layout.servers().collect();
    let (head, tail) = (chain[0], chain[chain.len() - 1]);
    let master = Master::new(
        chain.clone(),
        layout.spares().collect(),
        layout.clients().collect(),
        SimDuration::from_millis(params.heartbeat_ms),
        SimDuration::from_millis(params.detect_ms),
        params.extend_at_ms.map(SimDuration::from_millis),
        params.extend_after_failure,
    );
    let mut node_names = vec!["master".to_string()];
    node_names.extend(layout.servers().map(|n| format!("server {}", n.0)));
    node_names.extend(layout.spares().map(|n| format!("spare {}", n.0)));
    node_names.extend((1..=layout.clients).map(|i| format!("client {i}")));
    let invariants: Vec<Box<dyn Invariant<ChainNode>>> = vec![
        Box::new(KvLinearizable::default()),
        Box::new(UpdatePropagation),
        Box::new(SentList),
        Box::new(NoAcknowledgedUpdateLost::default()),
        Box::new(OneHeadOneTail::new(layout.servers + layout.spares)),
        Box::new(EveryRequestCompleted::new(n_ops)),
    ];
    let config = params.server_config();
    let stub = params.stub_config();
    let read_from = params.read_from;
    let first_client = 1 + layout.servers + layout.spares;
    Setup {
        n_nodes: layout.n_nodes(),
        build: Box::new(move |id, _| {
            if id == MASTER {
                ChainNode::Master(master.clone())
            } else if id.0 <= layout.servers {
                let pred = (id.0 > 1).then(|| NodeId(id.0 - 1));
                let succ = (id.0 < layout.servers).then(|| NodeId(id.0 + 1));
                ChainNode::Server(Server::new(config, true, pred, succ))
            } else if id.0 < first_client {
                ChainNode::Server(Server::new(config, false, None, None))
            } else {
                let ops = ops[(id.0 - first_client) as usize].clone();
                ChainNode::Client(Client::new(ops, stub, think, read_from, head, tail))
            }
        }),
        invariants,
        fault_model: fault_model(&layout, params.link_ms_max()),
        node_names,
        sometimes: SOMETIMES,
        client_history: Some(crate::kv::client_history),
    }
}

/// The rare paths chain replication marks. Two defensive paths are marked but not listed:
/// a forward from a former predecessor, and a re-sent update the successor already had.
/// Within the fault model the master detects a failure only after `detect_ms`, far longer
/// than a link between servers takes, so the failed server's last forwards have always
/// arrived before the handshake (10,000-seed swarm campaigns never reach them).
pub const SOMETIMES: &[&str] = &[
    server::MISDIRECTED,
    server::RETRY_WHILE_IN_FLIGHT,
    server::RETRY_ANSWERED_FROM_CACHE,
    server::BECAME_HEAD,
    server::BECAME_TAIL,
    server::STATE_TRANSFERRED,
    server::SENT_LIST_RESENT,
    master::EXTENSION_STARTED,
    master::SPARE_JOINED,
    master::MIDDLE_HANDSHAKE,
    client::CLIENT_REDIRECTED,
];

/// Chain replication in the registry.
pub struct Chain;

impl Protocol for Chain {
    type Params = ChainParams;
    type Node = ChainNode;

    fn name(&self) -> &'static str {
        "chain"
    }

    fn summary(&self) -> &'static str {
        "chain replication with a configuration master: head/middle/tail failover, Sent lists, extension"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn uses_workload(&self) -> bool {
        true
    }

    fn validate(&self, params: &ChainParams, _scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        let path = |field: &'static str| ["protocol", "chain", field];
        let at = |field: &'static str, why: String| FieldError::param("chain", field, why);
        if params.servers == 0 {
            return Err(at("servers", "must be at least 1: a chain needs a server".into()));
        }
        check_max(&path("servers"), u64::from(params.servers), u64::from(SERVERS_MAX))?;
        check_max(&path("spares"), u64::from(params.spares), u64::from(SPARES_MAX))?;
        check_ms(&path("heartbeat_ms"), params.heartbeat_ms, 1)?;
        check_ms(&path("detect_ms"), params.detect_ms, 1)?;
        if params.detect_ms <= params.heartbeat_ms {
            return Err(at(
                "detect_ms",
                format!(
                    "{} ms is not longer than heartbeat_ms ({} ms): the master would declare live servers \
                     failed between two heartbeats; make it several heartbeats long",
                    params.detect_ms, params.heartbeat_ms
                ),
            ));
        }
        check_ms(&path("timeout_ms"), params.timeout_ms, 1)?;
        if params.window == 0 {
            return Err(at("window", "must be at least 1: a window of 0 allows no call".into()));
        }
        check_max(&path("window"), u64::from(params.window), u64::from(Workload::OPS_PER_CLIENT_MAX))?;
        if let Some(at_ms) = params.extend_at_ms {
            check_ms(&path("extend_at_ms"), at_ms, 0)?;
            if params.spares == 0 {
                return Err(at(
                    "extend_at_ms",
                    "an extension needs a spare: set \"spares\" to at least 1".into(),
                ));
            }
        }
        Ok(())
    }

    fn facts(&self, params: &ChainParams, scenario: &ScenarioView<'_>) -> Facts {
        let layout = Layout::new(params, scenario.workload);
        Facts {
            n_nodes: layout.n_nodes(),
            node_names: layout.names(),
            operations: scenario.workload.n_ops(),
            memory_bytes: layout.n_nodes() as u128 * NODE_BYTES
                + scenario.workload.n_ops() as u128
                    * OP_BYTES
                    * (1 + u128::from(params.servers + params.spares)),
        }
    }

    fn setup(&self, params: &ChainParams, workload: &Workload, seed: u64) -> Setup<ChainNode> {
        let (ops, think) = workload.for_seed(seed);
        setup(params, ops, think)
    }
}
