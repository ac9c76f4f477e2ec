//! Ping: a load generator. Each of N nodes keeps K pings in flight to random other nodes;
//! every ping is answered by a pong, and every pong starts a new ping.
//!
//! It checks nothing: it exists to measure the simulator itself (`dsim bench`), and to
//! exercise the network under load in tests.

use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::{Context, FaultModel, Message, MessageClass, Node, NodeId};

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

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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

    fn ping_someone(&mut self, ctx: &mut Context<'_, Self>) {
        let n = ctx.n_nodes() as u64;
        let me = u64::from(ctx.id().0);
        // A random node other than me: draw from n - 1 and skip over myself.
        let mut target = ctx.rng().below(n - 1);
        if target >= me {
            target += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        ctx.send(NodeId(target as u32), PingMsg::Ping { seq });
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
        match msg {
            PingMsg::Ping { seq } => ctx.send(from, PingMsg::Pong { seq }),
            PingMsg::Pong { .. } => {
                self.pongs += 1;
                self.ping_someone(ctx);
            }
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

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc { name: "nodes", default: "10", help: "number of nodes (at least 2)" },
    ParamDoc { name: "in_flight", default: "10", help: "pings each node keeps in flight" },
];

pub const INVARIANTS: &[&str] = &[];

pub fn setup(params: &PingParams) -> Setup<PingNode> {
    let in_flight = params.in_flight;
    let n_nodes = params.nodes as usize;
    Setup {
        n_nodes,
        build: Box::new(move |_, _| PingNode::new(in_flight)),
        invariants: Vec::new(),
        fault_model: FaultModel {
            description: "any node may crash; partitions allowed".into(),
            may_crash: (0..params.nodes).map(NodeId).collect(),
            max_down_at_once: n_nodes,
            partitions: true,
        },
        node_names: (0..n_nodes).map(|i| format!("node {i}")).collect(),
        sometimes: &[],
    }
}
