//! Chandy-Lamport snapshots: a reusable layer that records a consistent global state of
//! any application it wraps, and two applications to wrap (`snapshot-bank`,
//! `snapshot-ping`).
//!
//! **The algorithm** (Chandy and Lamport, 1985). Processes talk over directed channels
//! (the scenario's topology, strongly connected). To take snapshot `s`, an initiator (one
//! or several; each at its `at_ms`) records its own state and sends a marker of `s` on
//! every outgoing channel before any other message. A process that receives its first
//! marker of `s` does the same, and records the channel the marker came on as empty. After
//! recording, it records each other incoming channel's application messages until that
//! channel's marker of `s` arrives. When every incoming channel has brought its marker,
//! its part is done; parts travel over the channels to every initiator of `s`, which
//! assembles the snapshot: every process's state and every channel's. Markers carry the
//! snapshot's id, so several snapshots run at once without mixing (the notes allow one
//! initiator; the paper allows any number).
//!
//! **The guarantee.** On reliable FIFO channels the recorded states form a consistent cut
//! (closed under happens-before), and each channel's recorded state is exactly what was in
//! it at that cut: what was sent before the sender recorded and received after the
//! receiver recorded. FIFO is what makes this work: a message sent after the sender's
//! marker arrives after it, so it is never recorded in the channel, and one sent before
//! arrives before it, so it is.
//!
//! **Invariants** (see [`invariants`]): `snapshot-conserves-money` or
//! `snapshot-conserves-pings`, `snapshot-is-consistent-cut` (against the simulator's
//! ground-truth happens-before), the paper's step predicates `snapshot-records-once` and
//! `snapshot-one-marker-per-channel`, and at the end `snapshot-terminates`.
//!
//! **Assumptions made visible.** The fault model declares reliable FIFO channels (no loss,
//! no duplication, no reordering) and no crash. A run on a network that breaks one still
//! runs and checks, and `dsim run` says which channel broke which assumption.
//!
//! **Known-buggy variants**: `record_channel: none` (process states only: money in flight
//! is lost, `snapshot-conserves-money` fires), `on_marker: record-every-time` (a process
//! records again at each marker: `snapshot-records-once`), `marker_delay_ms > 0` (markers
//! go out late, after other messages: `snapshot-one-marker-per-channel`).

pub mod bank;
pub mod invariants;
pub mod layer;
pub mod ping;
pub mod report;
pub mod topology;

use crate::registry::{
    check_max, check_ms, FieldError, PathSeg, EVENT_BYTES, MESSAGE_BYTES, MS_MAX, NODE_BYTES,
};
use crate::Setup;
use invariants::{Conserved, Conserves, ConsistentCut, MarkerPerChannel, RecordsOnce, Terminates};
use layer::{Plan, Planned, SnapshotId, SnapshotNode};
use serde::{Deserialize, Serialize};
use sim_core::{FaultModel, NetworkAssumptions, NodeId, SimDuration};
use std::collections::BTreeSet;
use std::sync::Arc;
use topology::{Topology, TopologySpec};

/// What a process records of an incoming channel after it recorded its own state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordChannel {
    /// The messages that arrive on it until its marker does (the paper).
    #[default]
    UntilMarker,
    /// Nothing (buggy): every channel is recorded empty, so messages in flight are lost.
    None,
}

/// What a process does at a marker of a snapshot it has recorded already.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnMarker {
    /// Closes that channel's recording (the paper).
    #[default]
    RecordOnce,
    /// Records its state again and sends markers again (buggy, a misreading of "recipients
    /// of the marker record their local state").
    RecordEveryTime,
}

/// One snapshot to take: `{"id": 1, "initiators": [0, 3], "at_ms": 40}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSpec {
    pub id: u32,
    pub initiators: Vec<u32>,
    pub at_ms: u64,
}

/// The most processes: a snapshot records every process and every channel, and the
/// complete topology has n(n-1) channels.
pub const PROCESSES_MAX: u32 = 200;
/// The most snapshots a scenario takes.
pub const SNAPSHOTS_MAX: usize = 100;

/// The layer's parameters, shared by every protocol built on it.
#[derive(Clone, Copy, Debug)]
pub struct LayerParams<'a> {
    pub protocol: &'static str,
    pub processes: u32,
    pub topology: &'a TopologySpec,
    pub snapshots: &'a [SnapshotSpec],
    pub record_channel: RecordChannel,
    pub on_marker: OnMarker,
    pub marker_delay_ms: u64,
}

pub(crate) fn default_snapshots() -> Vec<SnapshotSpec> {
    vec![SnapshotSpec { id: 0, initiators: vec![0], at_ms: 20 }]
}

impl LayerParams<'_> {
    /// Bounds every size before anything is built.
    pub fn validate(&self) -> Result<(), FieldError> {
        let protocol = self.protocol;
        let path = |field: &'static str| ["protocol", protocol, field];
        if !(2..=PROCESSES_MAX).contains(&self.processes) {
            let why = format!("{} processes: expected 2 to {PROCESSES_MAX}", self.processes);
            return Err(FieldError::param(protocol, "processes", why));
        }
        self.topology.validate(protocol, self.processes)?;
        check_ms(&path("marker_delay_ms"), self.marker_delay_ms, 0)?;
        if self.snapshots.is_empty() {
            return Err(FieldError::param(protocol, "snapshots", "at least one snapshot is needed"));
        }
        check_max(&path("snapshots"), self.snapshots.len() as u64, SNAPSHOTS_MAX as u64)?;
        let mut ids = BTreeSet::new();
        for (i, spec) in self.snapshots.iter().enumerate() {
            let at = |field: &str, message: String| {
                let mut segments = vec![
                    PathSeg::Key("protocol".into()),
                    PathSeg::Key(protocol.into()),
                    PathSeg::Key("snapshots".into()),
                    PathSeg::Index(i),
                ];
                segments.push(PathSeg::Key(field.into()));
                FieldError { path: segments, message }
            };
            if !ids.insert(spec.id) {
                return Err(at(
                    "id",
                    format!("snapshot id {} is used twice: each snapshot needs its own", spec.id),
                ));
            }
            if spec.initiators.is_empty() {
                return Err(at("initiators", "a snapshot needs at least one initiator".into()));
            }
            let mut seen = BTreeSet::new();
            for &initiator in &spec.initiators {
                if initiator >= self.processes {
                    return Err(at(
                        "initiators",
                        format!(
                            "process {initiator} does not exist: with {} processes they are 0..={}",
                            self.processes,
                            self.processes - 1
                        ),
                    ));
                }
                if !seen.insert(initiator) {
                    return Err(at("initiators", format!("process {initiator} is named twice")));
                }
            }
            if spec.at_ms > MS_MAX {
                return Err(at("at_ms", format!("{} ms is too late: at most {MS_MAX} ms", spec.at_ms)));
            }
        }
        Ok(())
    }

    /// A rough upper estimate of what the snapshots hold: every initiator's copy of every
    /// process's part, the channels' recorded messages (at most `messages`), and one
    /// marker per channel per snapshot with its send and receive events.
    pub fn memory_bytes(&self, messages: u128) -> u128 {
        let processes = u128::from(self.processes);
        let copies: u128 = self.snapshots.iter().map(|s| s.initiators.len() as u128 + 1).sum();
        let channels = u128::from(self.topology.n_edges(self.processes));
        let markers = self.snapshots.len() as u128 * channels;
        processes * NODE_BYTES
            + channels * 64
            + markers * (MESSAGE_BYTES + 2 * EVENT_BYTES)
            + copies * (processes * NODE_BYTES + messages * MESSAGE_BYTES)
    }

    /// What every process knows.
    pub fn plan(&self) -> Plan {
        let snapshots = self
            .snapshots
            .iter()
            .map(|s| Planned {
                id: SnapshotId(s.id),
                initiators: s.initiators.iter().map(|&i| NodeId(i)).collect(),
                at: SimDuration::from_millis(s.at_ms),
            })
            .collect();
        Plan::new(
            Topology::build(self.topology, self.processes),
            snapshots,
            self.record_channel,
            self.on_marker,
            SimDuration::from_millis(self.marker_delay_ms),
        )
    }

    /// The setup of a run: application `app(i)` at process `i`, wrapped in the layer; the
    /// invariants, with `total` the quantity the application conserves.
    pub fn setup<A: Conserved>(
        &self,
        total: u64,
        app: impl Fn(NodeId) -> A + 'static,
    ) -> Setup<SnapshotNode<A>> {
        let plan = Arc::new(self.plan());
        let n_nodes = self.processes as usize;
        let built = Arc::clone(&plan);
        Setup {
            n_nodes,
            build: Box::new(move |id, _| SnapshotNode::new(app(id), Arc::clone(&built))),
            invariants: vec![
                Box::new(Conserves::<A>::new(total)),
                Box::new(ConsistentCut::<A>::default()),
                Box::new(RecordsOnce::<A>::default()),
                Box::new(MarkerPerChannel::<A>::new(Arc::clone(&plan))),
                Box::new(Terminates::<A>::new(Arc::clone(&plan))),
            ],
            fault_model: fault_model(),
            node_names: (0..n_nodes).map(|i| format!("process {i}")).collect(),
            sometimes: layer::SOMETIMES,
            client_history: None,
        }
    }
}

/// Chandy-Lamport's assumptions: reliable FIFO channels, and no process fails.
pub fn fault_model() -> FaultModel {
    FaultModel {
        description: "Chandy-Lamport assumes reliable FIFO channels (no loss, no duplication, no \
                      reordering) and no process crash"
            .into(),
        may_crash: Vec::new(),
        max_down_at_once: 0,
        crash_stop: false,
        partitions: false,
        network: NetworkAssumptions {
            lossless: true,
            no_duplicates: true,
            fifo: true,
            ..NetworkAssumptions::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer<'a>(
        topology: &'a TopologySpec,
        snapshots: &'a [SnapshotSpec],
        processes: u32,
    ) -> LayerParams<'a> {
        LayerParams {
            protocol: "snapshot-bank",
            processes,
            topology,
            snapshots,
            record_channel: RecordChannel::UntilMarker,
            on_marker: OnMarker::RecordOnce,
            marker_delay_ms: 0,
        }
    }

    fn error(params: LayerParams<'_>) -> String {
        params.validate().expect_err("invalid").message
    }

    #[test]
    fn every_size_and_name_is_checked_before_building() {
        let complete = TopologySpec::Complete;
        let one = default_snapshots();
        assert!(layer(&complete, &one, 3).validate().is_ok());
        assert!(error(layer(&complete, &one, 1)).contains("expected 2 to 200"));
        assert!(error(layer(&complete, &one, 201)).contains("expected 2 to 200"));
        assert!(error(layer(&complete, &[], 3)).contains("at least one snapshot"));
        let many: Vec<SnapshotSpec> =
            (0..=SNAPSHOTS_MAX as u32).map(|id| SnapshotSpec { id, initiators: vec![0], at_ms: 1 }).collect();
        assert!(error(layer(&complete, &many, 3)).contains("snapshots is at most 100"));
        let spec = |initiators: Vec<u32>, at_ms| vec![SnapshotSpec { id: 1, initiators, at_ms }];
        assert!(error(layer(&complete, &spec(vec![], 5), 3)).contains("at least one initiator"));
        assert!(error(layer(&complete, &spec(vec![3], 5), 3)).contains("process 3 does not exist"));
        assert!(error(layer(&complete, &spec(vec![1, 1], 5), 3)).contains("named twice"));
        assert!(error(layer(&complete, &spec(vec![1], MS_MAX + 1), 3)).contains("too late"));
        let self_loop = TopologySpec::Edges(vec![[0, 0]]);
        assert!(error(layer(&self_loop, &one, 3)).contains("to itself"));
    }

    #[test]
    fn the_plan_routes_parts_to_every_initiator() {
        let ring = TopologySpec::Ring;
        let snapshots = vec![SnapshotSpec { id: 7, initiators: vec![0, 2], at_ms: 5 }];
        let plan = layer(&ring, &snapshots, 4).plan();
        assert_eq!(plan.snapshots[0].id, SnapshotId(7));
        assert_eq!(plan.routes[0].len(), 2);
        assert_eq!(plan.routes[0][1], (NodeId(2), vec![NodeId(1), NodeId(2), NodeId(2), NodeId(0)]));
    }
}
