//! `snapshot-ping`: the ping load ([`crate::ping`]) wrapped in the snapshot layer. Each
//! process keeps K pings in flight to random processes it has a channel to; each ping is
//! answered by a pong on the reverse channel, each pong starts a new ping. A process holds
//! no ping once started (it answers at once), so in any consistent cut the pings and pongs
//! recorded in the channels, plus the pings processes have not sent yet, are N x K:
//! `snapshot-conserves-pings`. The pong goes back on the channel the ping came on, so the
//! topology must have every channel's reverse (complete, bidirectional-ring, star, or a
//! symmetric edge list).

use super::invariants::Conserved;
use super::layer::{AppContext, Application, SnapshotNode};
use super::topology::{Topology, TopologySpec};
use super::{default_snapshots, LayerParams, OnMarker, RecordChannel, SnapshotSpec};
use crate::kv::Workload;
use crate::ping::{PingMsg, PingNode, IN_FLIGHT_MAX, MESSAGES_MAX};
use crate::registry::{check_max, Facts, FieldError, Protocol, RunReportOf, ScenarioView};
use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::NodeId;

pub const SNAPSHOT_CONSERVES_PINGS: &str = "snapshot-conserves-pings";

impl PingNode {
    fn ping_neighbour(&mut self, ctx: &mut AppContext<'_, '_, Self>) {
        let to = ctx.random_outgoing();
        let ping = self.next_ping();
        ctx.send(to, ping);
    }
}

impl Application for PingNode {
    type Msg = PingMsg;
    type Timer = ();

    fn on_start(&mut self, ctx: &mut AppContext<'_, '_, Self>) {
        for _ in 0..self.in_flight() {
            self.ping_neighbour(ctx);
        }
    }

    fn on_message(&mut self, ctx: &mut AppContext<'_, '_, Self>, from: NodeId, msg: PingMsg) {
        match self.answer(msg) {
            Some(pong) => ctx.send(from, pong),
            None => self.ping_neighbour(ctx),
        }
    }

    fn on_timer(&mut self, _ctx: &mut AppContext<'_, '_, Self>, _timer: ()) {}

    fn describe(&self) -> String {
        format!("{} pongs received, {} pings out", self.pongs(), self.outstanding())
    }
}

impl Conserved for PingNode {
    const INVARIANT: &'static str = SNAPSHOT_CONSERVES_PINGS;
    const WHAT: &'static str = "pings";

    /// The pings it has not sent yet: all K before it starts, none after.
    fn held(&self) -> u64 {
        u64::from(self.in_flight()).saturating_sub(self.outstanding())
    }

    fn carried(_msg: &PingMsg) -> u64 {
        1
    }
}

/// Scenario parameters of `snapshot-ping`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotPingParams {
    #[serde(default = "default_processes")]
    pub processes: u32,
    #[serde(default = "default_in_flight")]
    pub in_flight: u32,
    #[serde(default)]
    pub topology: TopologySpec,
    #[serde(default = "default_snapshots")]
    pub snapshots: Vec<SnapshotSpec>,
    #[serde(default)]
    pub record_channel: RecordChannel,
    #[serde(default)]
    pub on_marker: OnMarker,
    #[serde(default)]
    pub marker_delay_ms: u64,
}

fn default_processes() -> u32 {
    5
}
fn default_in_flight() -> u32 {
    2
}

impl Default for SnapshotPingParams {
    fn default() -> Self {
        SnapshotPingParams {
            processes: default_processes(),
            in_flight: default_in_flight(),
            topology: TopologySpec::default(),
            snapshots: default_snapshots(),
            record_channel: RecordChannel::default(),
            on_marker: OnMarker::default(),
            marker_delay_ms: 0,
        }
    }
}

impl SnapshotPingParams {
    pub fn layer(&self) -> LayerParams<'_> {
        LayerParams {
            protocol: NAME,
            processes: self.processes,
            topology: &self.topology,
            snapshots: &self.snapshots,
            record_channel: self.record_channel,
            on_marker: self.on_marker,
            marker_delay_ms: self.marker_delay_ms,
        }
    }
}

pub const NAME: &str = "snapshot-ping";

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc { name: "processes", default: "5", help: "number of processes, 2 to 200" },
    ParamDoc { name: "in_flight", default: "2", help: "pings each process keeps in flight" },
    ParamDoc {
        name: "topology",
        default: "complete",
        help: "complete | bidirectional-ring | star | {\"edges\": [..]} with every channel's reverse",
    },
    ParamDoc {
        name: "snapshots",
        default: "[{\"id\": 0, \"initiators\": [0], \"at_ms\": 20}]",
        help: "the snapshots to take: id, initiators, at_ms",
    },
    ParamDoc { name: "record_channel", default: "until-marker", help: "until-marker | none (buggy)" },
    ParamDoc { name: "on_marker", default: "record-once", help: "record-once | record-every-time (buggy)" },
    ParamDoc { name: "marker_delay_ms", default: "0", help: "0, or markers sent this late (buggy)" },
];

/// Snapshots of the ping load in the registry.
pub struct SnapshotPing;

impl Protocol for SnapshotPing {
    type Params = SnapshotPingParams;
    type Node = SnapshotNode<PingNode>;

    fn name(&self) -> &'static str {
        NAME
    }

    fn summary(&self) -> &'static str {
        "Chandy-Lamport snapshots of the ping load"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn validate(&self, params: &SnapshotPingParams, _scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        params.layer().validate()?;
        if params.in_flight == 0 {
            let why = "must be at least 1: with 0 pings in flight nothing happens";
            return Err(FieldError::param(NAME, "in_flight", why));
        }
        check_max(&["protocol", NAME, "in_flight"], params.in_flight.into(), IN_FLIGHT_MAX.into())?;
        let messages = u64::from(params.processes) * u64::from(params.in_flight);
        if messages > MESSAGES_MAX {
            let why = format!(
                "{} processes x {} in flight = {messages} messages in flight: at most {MESSAGES_MAX}",
                params.processes, params.in_flight
            );
            return Err(FieldError::param(NAME, "in_flight", why));
        }
        let topology = Topology::build(&params.topology, params.processes);
        for from in (0..params.processes).map(NodeId) {
            if let Some(to) = topology.outgoing(from).iter().find(|&&to| !topology.has_channel(to, from)) {
                let why = format!(
                    "the channel {from}->{to} has no reverse {to}->{from}: a ping is answered on the \
                     channel back, so every channel needs its reverse (use complete, \
                     bidirectional-ring, star, or symmetric edges)"
                );
                return Err(FieldError::param(NAME, "topology", why));
            }
        }
        Ok(())
    }

    fn facts(&self, params: &SnapshotPingParams, _scenario: &ScenarioView<'_>) -> Facts {
        let messages = u128::from(params.processes) * u128::from(params.in_flight);
        Facts {
            n_nodes: params.processes as usize,
            node_names: format!("0..={} are processes", params.processes.saturating_sub(1)),
            operations: messages as usize,
            memory_bytes: params.layer().memory_bytes(messages) + messages * crate::registry::MESSAGE_BYTES,
        }
    }

    fn smaller(&self, params: &SnapshotPingParams) -> Vec<SnapshotPingParams> {
        vec![SnapshotPingParams { in_flight: (params.in_flight / 2).max(1), ..params.clone() }]
    }

    fn setup(
        &self,
        params: &SnapshotPingParams,
        _workload: &Workload,
        _seed: u64,
    ) -> Setup<SnapshotNode<PingNode>> {
        let total = u64::from(params.processes) * u64::from(params.in_flight);
        let in_flight = params.in_flight;
        params.layer().setup(total, move |_| PingNode::new(in_flight))
    }

    fn run_report(&self, _params: &SnapshotPingParams) -> Option<RunReportOf<SnapshotNode<PingNode>>> {
        Some(super::report::report::<PingNode>)
    }
}
