//! The two invariants only primary-backup has. Both read ground truth: what each live
//! server's own state says it is doing and has applied, never what one server believes of
//! another, and the history clients record.

use super::{PbNode, ARBITER};
use crate::kv::{KvOp, KvRecord, KvResult, RequestId};
use sim_core::{CheckError, EntryKind, Invariant, NodeId, World};
use std::collections::BTreeMap;

pub const SINGLE_PRIMARY: &str = "single-primary";
pub const NO_ACKNOWLEDGED_UPDATE_LOST: &str = "no-acknowledged-update-lost";

/// The live servers that act as primary now, with their epochs.
fn primaries(world: &World<PbNode>) -> impl Iterator<Item = (NodeId, u64)> + '_ {
    world.nodes().filter_map(|(id, node)| match node {
        Some(PbNode::Server(server)) if server.is_primary() => Some((id, server.epoch())),
        _ => None,
    })
}

/// `single-primary`: at most one live server acts as primary at any virtual instant
/// (checked after every step, from each server's own role).
#[derive(Clone)]
pub struct SinglePrimary {
    /// The setting that can break it, for the report.
    mechanism: String,
}

impl SinglePrimary {
    pub fn explained(mechanism: impl Into<String>) -> SinglePrimary {
        SinglePrimary { mechanism: mechanism.into() }
    }
}

impl Invariant<PbNode> for SinglePrimary {
    fn name(&self) -> &'static str {
        SINGLE_PRIMARY
    }

    fn check_step(&mut self, world: &World<PbNode>) -> Result<(), CheckError> {
        let mut found = primaries(world);
        let Some(first) = found.next() else { return Ok(()) };
        let Some(second) = found.next() else { return Ok(()) };
        let flags: Vec<String> = world
            .durable(ARBITER)
            .flags
            .iter()
            .map(|(epoch, winner)| format!("epoch {epoch}: {winner}"))
            .collect();
        Err(format!(
            "{} (epoch {}) and {} (epoch {}) both act as primary at {}: each answers clients and \
             forwards to backups on its own, so their stores drift apart. The arbiter's flags now \
             read [{}]. {}",
            first.0,
            first.1,
            second.0,
            second.1,
            world.now(),
            flags.join(", "),
            self.mechanism
        )
        .into())
    }
}

/// `no-acknowledged-update-lost`: an update a client was told succeeded is applied at
/// every later primary. Checked when an acknowledgement reaches a client (against the
/// primary of the highest epoch alive) and whenever a server becomes primary of a later
/// epoch (every update acknowledged so far).
#[derive(Clone, Default)]
pub struct NoAcknowledgedUpdateLost {
    cursor: usize,
    /// The request of each client operation that is an update, by op id.
    updates: BTreeMap<u64, RequestId>,
    /// Every update acknowledged to its client, with the op and when.
    acknowledged: Vec<(RequestId, KvOp, sim_core::SimTime)>,
    ops: BTreeMap<u64, KvOp>,
    /// The highest epoch whose primary has been checked against every acknowledgement.
    checked_epoch: u64,
}

impl NoAcknowledgedUpdateLost {
    fn lost(
        &self,
        world: &World<PbNode>,
        primary: NodeId,
        epoch: u64,
        missing: &(RequestId, KvOp, sim_core::SimTime),
    ) -> CheckError {
        let (request, op, at) = missing;
        format!(
            "{request} ({op}) was acknowledged to its client at {at}, but {primary}, primary of \
             epoch {epoch} since the failover, never applied it (at {}): the update is lost. The \
             old primary answered before every backup had it (commit: before-backups replies at \
             once and replicates with the next heartbeat), then crashed; the commit point is the \
             reply after every live backup acknowledged (docs/protocols/primary-backup.md).",
            world.now()
        )
        .into()
    }
}

impl Invariant<PbNode> for NoAcknowledgedUpdateLost {
    fn name(&self) -> &'static str {
        NO_ACKNOWLEDGED_UPDATE_LOST
    }

    fn check_step(&mut self, world: &World<PbNode>) -> Result<(), CheckError> {
        let newest = primaries(world).max_by_key(|&(_, epoch)| epoch);
        let server = |id: NodeId| match world.node(id) {
            Some(PbNode::Server(server)) => server,
            _ => unreachable!("a primary is a live server"),
        };
        let (_, fresh) = world.history().since(&mut self.cursor);
        for entry in fresh {
            match (&entry.kind, &entry.op) {
                (EntryKind::Invoke { id }, KvRecord::Call { request, op })
                    if !matches!(op, KvOp::Get { .. }) =>
                {
                    self.updates.insert(id.0, *request);
                    self.ops.insert(id.0, op.clone());
                }
                (EntryKind::Return { id }, KvRecord::Return(result)) => {
                    let Some(request) = self.updates.remove(&id.0) else { continue };
                    let op = self.ops.remove(&id.0).expect("kept with its request");
                    if *result != KvResult::Done {
                        continue;
                    }
                    let acked = (request, op, entry.time);
                    if let Some((primary, epoch)) = newest {
                        if !server(primary).has_applied(request) {
                            return Err(self.lost(world, primary, epoch, &acked));
                        }
                    }
                    self.acknowledged.push(acked);
                }
                _ => {}
            }
        }
        if let Some((primary, epoch)) = newest {
            if epoch > self.checked_epoch {
                self.checked_epoch = epoch;
                let server = server(primary);
                if let Some(missing) = self.acknowledged.iter().find(|(id, ..)| !server.has_applied(*id)) {
                    return Err(self.lost(world, primary, epoch, missing));
                }
            }
        }
        Ok(())
    }
}
