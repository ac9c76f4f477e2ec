//! Ping: a load generator. Each of N nodes keeps K pings in flight to random other nodes;
//! every ping is answered by a pong, and every pong starts a new ping.
//!
//! It exists to measure the simulator itself (`dsim bench`) and to exercise the network
//! under load. Its one invariant, `pings-conserved` (N x K messages in flight after every
//! step), costs O(1) per step: the "invariants on" benchmark measures the loop's price for
//! running checks, not a checker's own cost.

use crate::kv::Workload;
use crate::registry::{check_max, Facts, FieldError, Protocol, ScenarioView, MESSAGE_BYTES, NODE_BYTES};
use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::{
    CheckError, Context, FaultModel, Invariant, Message, MessageClass, NetworkAssumptions, Node, NodeId,
    World,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PingMsg {
    Ping { seq: u64 },
    Pong { seq: u64 },
}

impl Message for PingMsg {
    fn class(&self) -> MessageClass {
        match self {
            PingMsg::Ping { .. } => MessageClass::Request,
            PingMsg::Pong { .. } => MessageClass::Reply,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PingNode {
    in_flight: u32,
    next_seq: u64,
    pongs: u64,
}

impl PingNode {
    pub fn new(in_flight: u32) -> PingNode {
        PingNode { in_flight, next_seq: 0, pongs: 0 }
    }

    /// Pongs received so far.
    pub fn pongs(&self) -> u64 {
        self.pongs
    }

    /// The pings this node keeps in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// Pings this node sent whose pongs have not come back yet.
    pub fn outstanding(&self) -> u64 {
        self.next_seq - self.pongs
    }

    /// The next ping to send, numbered in order.
    pub fn next_ping(&mut self) -> PingMsg {
        let seq = self.next_seq;
        self.next_seq += 1;
        PingMsg::Ping { seq }
    }

    /// The load's answer to a message: a ping is answered by its pong (returned, to send
    /// back); a pong is counted, and the caller starts a new ping (`None`).
    pub fn answer(&mut self, msg: PingMsg) -> Option<PingMsg> {
        match msg {
            PingMsg::Ping { seq } => Some(PingMsg::Pong { seq }),
            PingMsg::Pong { .. } => {
                self.pongs += 1;
                None
            }
        }
    }

    fn ping_someone(&mut self, ctx: &mut Context<'_, Self>) {
        let n = ctx.n_nodes() as u64;
        let me = u64::from(ctx.id().0);
        // A random node other than me: draw from n - 1 and skip over myself.
        let mut target = ctx.rng().below(n - 1);
        if target >= me {
            target += 1;
        }
        let ping = self.next_ping();
        ctx.send(NodeId(target as u32), ping);
    }
}

impl Node for PingNode {
    type Msg = PingMsg;
    type Timer = ();
    type Durable = ();
    type Op = ();

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        if ctx.n_nodes() < 2 {
            return;
        }
        for _ in 0..self.in_flight {
            self.ping_someone(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: PingMsg) {
        match self.answer(msg) {
            Some(pong) => ctx.send(from, pong),
            None => self.ping_someone(ctx),
        }
    }

    fn on_timer(&mut self, _ctx: &mut Context<'_, Self>, _timer: ()) {}
}

/// Scenario parameters of the ping protocol.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PingParams {
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    #[serde(default = "default_in_flight")]
    pub in_flight: u32,
}

fn default_nodes() -> u32 {
    10
}

fn default_in_flight() -> u32 {
    10
}

impl Default for PingParams {
    fn default() -> Self {
        PingParams { nodes: default_nodes(), in_flight: default_in_flight() }
    }
}

/// The most ping nodes.
pub const NODES_MAX: u32 = 100_000;
/// The most pings a node keeps in flight.
pub const IN_FLIGHT_MAX: u32 = 100_000;
/// The most messages in flight in all (nodes x in_flight): each is a queued event.
pub const MESSAGES_MAX: u64 = 10_000_000;

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc { name: "nodes", default: "10", help: "number of nodes, 2 to 100000" },
    ParamDoc {
        name: "in_flight",
        default: "10",
        help: "pings each node keeps in flight, 1 to 100000 (nodes x in_flight at most 10^7)",
    },
];

/// `pings-conserved`: every delivery starts exactly one new message (a ping is answered by a
/// pong, a pong starts a ping), so while no node crashes and nothing is lost or duplicated,
/// exactly N x K messages are in flight after every step. O(1) per step; it fires under loss.
pub const PINGS_CONSERVED: &str = "pings-conserved";

#[derive(Clone)]
pub struct PingsConserved {
    expected: usize,
}

impl Invariant<PingNode> for PingsConserved {
    fn name(&self) -> &'static str {
        PINGS_CONSERVED
    }

    fn check_step(&mut self, world: &World<PingNode>) -> Result<(), CheckError> {
        // Until every node has started, fewer are in flight.
        if world.step() <= world.n_nodes() as u64 {
            return Ok(());
        }
        let now = world.n_in_flight();
        if now == self.expected {
            Ok(())
        } else {
            Err(format!("{now} messages are in flight, but N x K = {} should be", self.expected).into())
        }
    }
}

pub fn setup(params: &PingParams) -> Setup<PingNode> {
    let in_flight = params.in_flight;
    let n_nodes = params.nodes as usize;
    Setup {
        n_nodes,
        build: Box::new(move |_, _| PingNode::new(in_flight)),
        invariants: vec![Box::new(PingsConserved { expected: n_nodes * in_flight as usize })],
        // pings-conserved counts the messages in flight, so it holds only while none is
        // lost (to a drop, a partition or a crashed receiver) and none is duplicated.
        fault_model: FaultModel {
            description: "pings-conserved counts the pings in flight: no node crashes, no \
                          partition, no message lost or duplicated"
                .into(),
            may_crash: Vec::new(),
            max_down_at_once: 0,
            partitions: false,
            network: NetworkAssumptions {
                lossless: true,
                no_duplicates: true,
                ..NetworkAssumptions::default()
            },
            crash_stop: false,
        },
        node_names: (0..n_nodes).map(|i| format!("node {i}")).collect(),
        sometimes: &[],
        client_history: None,
    }
}

/// The ping load in the registry.
pub struct Ping;

impl Protocol for Ping {
    type Params = PingParams;
    type Node = PingNode;

    fn name(&self) -> &'static str {
        "ping"
    }

    fn summary(&self) -> &'static str {
        "load generator: N nodes keep K pings in flight"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn validate(&self, params: &PingParams, _scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        let path = |field: &'static str| ["protocol", "ping", field];
        if params.nodes < 2 {
            let why = format!("{} nodes cannot ping each other: at least 2 are needed", params.nodes);
            return Err(FieldError::param("ping", "nodes", why));
        }
        check_max(&path("nodes"), params.nodes.into(), NODES_MAX.into())?;
        if params.in_flight == 0 {
            let why = "must be at least 1: with 0 pings in flight nothing happens";
            return Err(FieldError::param("ping", "in_flight", why));
        }
        check_max(&path("in_flight"), params.in_flight.into(), IN_FLIGHT_MAX.into())?;
        let messages = u64::from(params.nodes) * u64::from(params.in_flight);
        if messages > MESSAGES_MAX {
            let why = format!(
                "{} nodes x {} in flight = {messages} messages in flight: at most {MESSAGES_MAX}",
                params.nodes, params.in_flight
            );
            return Err(FieldError::param("ping", "in_flight", why));
        }
        Ok(())
    }

    fn facts(&self, params: &PingParams, _scenario: &ScenarioView<'_>) -> Facts {
        let nodes = u128::from(params.nodes);
        Facts {
            n_nodes: params.nodes as usize,
            node_names: format!("0..={} are ping nodes", params.nodes.saturating_sub(1)),
            operations: params.nodes as usize * params.in_flight as usize,
            memory_bytes: nodes * NODE_BYTES + nodes * u128::from(params.in_flight) * MESSAGE_BYTES,
        }
    }

    fn smaller(&self, params: &PingParams) -> Vec<PingParams> {
        vec![
            PingParams { nodes: (params.nodes - 1).max(2), ..params.clone() },
            PingParams { in_flight: params.in_flight / 2, ..params.clone() },
        ]
    }

    fn setup(&self, params: &PingParams, _workload: &Workload, _seed: u64) -> Setup<PingNode> {
        setup(params)
    }
}
