//! The snapshots a run assembled, for people (`dsim run` prints them) and for tools
//! (`dsim run --format json` includes them): per snapshot, each process's recorded state
//! and the messages each channel held.

use super::layer::{Application, Assembled, SnapshotId, SnapshotNode};
use crate::RunReport;
use serde::Serialize;
use sim_core::{EventId, NodeId, World};
use std::collections::BTreeMap;

#[derive(Serialize)]
struct ProcessJson<'a, A> {
    process: NodeId,
    recorded_at: EventId,
    state: &'a A,
}

#[derive(Serialize)]
struct ChannelJson<'a, M> {
    from: NodeId,
    to: NodeId,
    messages: Vec<&'a M>,
}

#[derive(Serialize)]
struct SnapshotJson<'a, A: Application> {
    id: SnapshotId,
    /// The initiators that assembled it.
    held_by: Vec<NodeId>,
    /// The initiator whose copy this is (the first, in id order, that assembled it).
    assembled_at: NodeId,
    at_ms: f64,
    processes: Vec<ProcessJson<'a, A>>,
    /// Only the channels that held messages; every other channel was recorded empty.
    channels: Vec<ChannelJson<'a, A::Msg>>,
}

/// Every snapshot the run assembled, each as its first initiator (by id) holds it.
pub fn report<A: Application>(world: &World<SnapshotNode<A>>) -> RunReport {
    let mut first: BTreeMap<SnapshotId, (NodeId, &Assembled<A>, Vec<NodeId>)> = BTreeMap::new();
    for (id, node) in world.nodes() {
        for (snapshot, assembled) in node.map(|n| n.assembled().iter()).into_iter().flatten() {
            first.entry(*snapshot).or_insert((id, assembled, Vec::new())).2.push(id);
        }
    }
    let mut text = String::new();
    let mut json = Vec::new();
    for (snapshot, (at, assembled, initiators)) in &first {
        let at_ms = assembled.at.as_millis_f64();
        let holders: Vec<String> = initiators.iter().map(NodeId::to_string).collect();
        text.push_str(&format!(
            "{snapshot}: assembled at {at} at {at_ms:.3}ms (held by {})\n",
            holders.join(", ")
        ));
        let mut channels = Vec::new();
        for part in &assembled.parts {
            text.push_str(&format!("  {:<5} {}\n", part.process.to_string(), part.state.describe()));
            for (from, messages) in part.channels.iter().filter(|(_, m)| !m.is_empty()) {
                channels.push(ChannelJson {
                    from: *from,
                    to: part.process,
                    messages: messages.iter().map(|(_, m)| m).collect(),
                });
            }
        }
        if channels.is_empty() {
            text.push_str("  every channel recorded empty\n");
        }
        for channel in &channels {
            let messages: Vec<String> = channel.messages.iter().map(|m| A::describe_msg(m)).collect();
            text.push_str(&format!("  {}->{}: {}\n", channel.from, channel.to, messages.join(", ")));
        }
        if !channels.is_empty() {
            text.push_str("  every other channel recorded empty\n");
        }
        json.push(SnapshotJson::<A> {
            id: *snapshot,
            held_by: initiators.clone(),
            assembled_at: *at,
            at_ms,
            processes: assembled
                .parts
                .iter()
                .map(|p| ProcessJson { process: p.process, recorded_at: p.recorded_at, state: &p.state })
                .collect(),
            channels,
        });
    }
    if first.is_empty() {
        text.push_str("no snapshot was assembled\n");
    }
    RunReport { title: "snapshots", text, json: serde_json::to_value(json).expect("snapshots serialize") }
}
