//! A leader lease, written outside dsim against `sim-core` and the protocol registry: the
//! worked example of "bring your own protocol" (README, "Write your own protocol").
//!
//! **The algorithm.** Node 0 grants a lease of `lease_ms` to one client at a time; clients
//! (nodes 1..) ask for it every `ask_ms` while they do not hold it. The server grants when
//! the previous lease has expired by its own clock, and remembers the grant time. A client
//! that receives a grant holds the lease until its expiry, which it must count from a time
//! no later than the server's grant: the moment it *sent* its request (`start: "request"`).
//!
//! **The guarantee.** At most one client holds the lease at any true instant, whatever the
//! network delays, since each client's lease ends no later than the server thinks it does.
//!
//! **The invariant**, `at-most-one-holder`, reads each client's state and clock after every
//! step. **The known-buggy variant**, `start: "receipt"`, counts the lease from when the
//! grant arrived: a grant delayed in the network makes the client hold it past the
//! server's expiry, while the server has already granted it to another.

use protocols::kv::Workload;
use protocols::registry::{check_ms, Facts, FieldError, Protocol, ScenarioView, NODE_BYTES};
use protocols::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::{
    CheckError, Context, FaultModel, Invariant, LocalTime, Message, NetworkAssumptions, Node, NodeId,
    SimDuration, World,
};

/// When a client counts its lease from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseStart {
    /// When it sent the request that was granted: never later than the grant.
    #[default]
    Request,
    /// When the grant arrived. Buggy on purpose: a slow grant extends the lease.
    Receipt,
}

/// Scenario parameters: `{"lease": {"clients": 2, "lease_ms": 50}}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaseParams {
    pub clients: u32,
    pub lease_ms: u64,
    pub ask_ms: u64,
    pub start: LeaseStart,
}

impl Default for LeaseParams {
    fn default() -> Self {
        LeaseParams { clients: 2, lease_ms: 50, ask_ms: 10, start: LeaseStart::Request }
    }
}

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc { name: "clients", default: "2", help: "clients competing for the lease, 1 to 100" },
    ParamDoc { name: "lease_ms", default: "50", help: "how long a lease lasts" },
    ParamDoc { name: "ask_ms", default: "10", help: "how often a client without the lease asks" },
    ParamDoc {
        name: "start",
        default: "request",
        help: "request | receipt (buggy: counts from the grant's arrival)",
    },
];

/// The most clients.
pub const CLIENTS_MAX: u32 = 100;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum LeaseMsg {
    /// A client asks; `sent` is its clock when it sent this request.
    Ask { sent: LocalTime },
    /// The server grants the lease asked for at `sent` (echoed back).
    Grant { sent: LocalTime },
}

impl Message for LeaseMsg {}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LeaseNode {
    Server { lease: SimDuration, expires: Option<LocalTime> },
    Client { lease: SimDuration, ask: SimDuration, start: LeaseStart, holds_until: Option<LocalTime> },
}

impl LeaseNode {
    /// Whether this client holds the lease at its clock's reading `now`.
    pub fn holds(&self, now: LocalTime) -> bool {
        matches!(self, LeaseNode::Client { holds_until: Some(until), .. } if now < *until)
    }
}

fn after(time: LocalTime, duration: SimDuration) -> LocalTime {
    LocalTime::from_micros(time.as_micros() + duration.as_micros() as i64)
}

impl Node for LeaseNode {
    type Msg = LeaseMsg;
    type Timer = ();
    type Durable = ();
    type Op = ();

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        if let LeaseNode::Client { ask, .. } = self {
            ctx.set_timer(*ask, ());
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: LeaseMsg) {
        let now = ctx.local_time();
        match (self, msg) {
            (LeaseNode::Server { lease, expires }, LeaseMsg::Ask { sent })
                if expires.is_none_or(|at| now >= at) =>
            {
                *expires = Some(after(now, *lease));
                ctx.send(from, LeaseMsg::Grant { sent });
            }
            (LeaseNode::Client { lease, start, holds_until, .. }, LeaseMsg::Grant { sent }) => {
                let from_time = match start {
                    LeaseStart::Request => sent,
                    LeaseStart::Receipt => now,
                };
                *holds_until = Some(after(from_time, *lease));
            }
            _ => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, _timer: ()) {
        let now = ctx.local_time();
        if let LeaseNode::Client { ask, .. } = self {
            let ask = *ask;
            if !self.holds(now) {
                ctx.send(NodeId(0), LeaseMsg::Ask { sent: now });
            }
            ctx.set_timer(ask, ());
        }
    }
}

/// `at-most-one-holder`: after every step, at most one client holds an unexpired lease.
#[derive(Clone, Default)]
pub struct AtMostOneHolder;

impl Invariant<LeaseNode> for AtMostOneHolder {
    fn name(&self) -> &'static str {
        "at-most-one-holder"
    }

    fn check_step(&mut self, world: &World<LeaseNode>) -> Result<(), CheckError> {
        let holders: Vec<String> = world
            .nodes()
            .filter(|(id, node)| node.is_some_and(|n| n.holds(world.local_time(*id))))
            .map(|(id, _)| id.to_string())
            .collect();
        if holders.len() > 1 {
            return Err(format!(
                "{} hold the lease at once at {}: a client counted its lease from later than the \
                 server's grant (start: receipt), so it outlived the server's expiry",
                holders.join(" and "),
                world.now()
            )
            .into());
        }
        Ok(())
    }
}

/// The lease protocol in the registry.
pub struct Lease;

impl Protocol for Lease {
    type Params = LeaseParams;
    type Node = LeaseNode;

    fn name(&self) -> &'static str {
        "lease"
    }

    fn summary(&self) -> &'static str {
        "a leader lease: a server grants one client at a time (an example built outside dsim)"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn validate(&self, params: &LeaseParams, _scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        if !(1..=CLIENTS_MAX).contains(&params.clients) {
            let why = format!("{} clients: expected 1 to {CLIENTS_MAX}", params.clients);
            return Err(FieldError::param("lease", "clients", why));
        }
        check_ms(&["protocol", "lease", "lease_ms"], params.lease_ms, 1)?;
        check_ms(&["protocol", "lease", "ask_ms"], params.ask_ms, 1)
    }

    fn facts(&self, params: &LeaseParams, _scenario: &ScenarioView<'_>) -> Facts {
        Facts {
            n_nodes: 1 + params.clients as usize,
            node_names: format!("0 is the server, 1..={} are clients", params.clients),
            operations: params.clients as usize,
            memory_bytes: (1 + u128::from(params.clients)) * NODE_BYTES,
        }
    }

    fn smaller(&self, params: &LeaseParams) -> Vec<LeaseParams> {
        vec![LeaseParams { clients: (params.clients - 1).max(1), ..params.clone() }]
    }

    fn setup(&self, params: &LeaseParams, _workload: &Workload, _seed: u64) -> Setup<LeaseNode> {
        let (lease, ask) =
            (SimDuration::from_millis(params.lease_ms), SimDuration::from_millis(params.ask_ms));
        let start = params.start;
        let n_nodes = 1 + params.clients as usize;
        let mut node_names = vec!["server".to_string()];
        node_names.extend((1..n_nodes).map(|i| format!("client {i}")));
        Setup {
            n_nodes,
            build: Box::new(move |id, _| {
                if id == NodeId(0) {
                    LeaseNode::Server { lease, expires: None }
                } else {
                    LeaseNode::Client { lease, ask, start, holds_until: None }
                }
            }),
            invariants: vec![Box::new(AtMostOneHolder)],
            fault_model: FaultModel {
                description: "no crashes (leases live in memory); clocks without drift; any message delays"
                    .into(),
                network: NetworkAssumptions::default(),
                crash_stop: false,
                ..FaultModel::default()
            },
            node_names,
            sometimes: &[],
            client_history: None,
        }
    }
}
