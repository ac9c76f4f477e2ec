//! The test-and-set arbiter (the notes' "configuration service"): one flag per primary
//! epoch, "the primary of epoch e has been replaced, by this server". The first backup to
//! call `test_and_set(e)` wins and becomes the primary of epoch e + 1; every later caller
//! loses and is told who won.
//!
//! Setting the flag is a write to durable storage that takes `write_ms` of virtual time,
//! so two calls can overlap. With the lock ([`TestAndSetMode::Locked`]) a call that
//! arrives while a write is in progress waits for it, and then reads the flag as set.
//! Without it ([`TestAndSetMode::NoLock`], the notes' code, which unlocks a different lock
//! than it locked) the second call reads the flag before the first write has finished,
//! finds it unset, and wins too: two primaries.

use super::{PbMsg, PbNode, PbTimer, TestAndSetMode};
use sim_core::{Context, NodeId, SimDuration};
use std::collections::VecDeque;

/// The arbiter's state in memory; the flags themselves are in its durable storage
/// (`PbDurable::flags`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Arbiter {
    mode: TestAndSetMode,
    write: SimDuration,
    /// A flag write is in progress (the lock is held).
    busy: bool,
    /// Calls waiting for the lock: (caller, epoch).
    waiting: VecDeque<(NodeId, u64)>,
}

impl Arbiter {
    pub fn new(mode: TestAndSetMode, write: SimDuration) -> Arbiter {
        Arbiter { mode, write, busy: false, waiting: VecDeque::new() }
    }

    pub(super) fn on_test_and_set(&mut self, ctx: &mut Context<'_, PbNode>, from: NodeId, epoch: u64) {
        if self.mode == TestAndSetMode::Locked && self.busy {
            ctx.sometimes(super::CALLER_WAITED_FOR_LOCK);
            self.waiting.push_back((from, epoch));
            return;
        }
        self.handle(ctx, from, epoch);
    }

    /// Reads the flag; if it is unset, starts the durable write that sets it (the caller
    /// wins when it completes); if set, the caller loses at once.
    fn handle(&mut self, ctx: &mut Context<'_, PbNode>, from: NodeId, epoch: u64) {
        if let Some(&winner) = ctx.durable().flags.get(&epoch) {
            ctx.sometimes(super::SECOND_CALLER_LOST);
            ctx.send(from, PbMsg::TestAndSetReply { epoch, winner });
            self.next(ctx);
            return;
        }
        if self.busy {
            // Only without the lock: a write is in progress and this call read the flag
            // before it finished.
            ctx.sometimes(super::OVERLAPPING_TEST_AND_SET);
        }
        self.busy = true;
        ctx.set_timer(self.write, PbTimer::FlagWritten { caller: from, epoch });
    }

    /// The durable write for `caller` finished: the flag is set, the caller has won.
    pub(super) fn on_written(&mut self, ctx: &mut Context<'_, PbNode>, caller: NodeId, epoch: u64) {
        // The notes' code sets the flag whatever it held; without the lock a second writer
        // overwrites the first, and each is told it won.
        ctx.durable().flags.insert(epoch, caller);
        ctx.send(caller, PbMsg::TestAndSetReply { epoch, winner: caller });
        self.busy = false;
        self.next(ctx);
    }

    /// Hands the lock to the next waiting call, if any.
    fn next(&mut self, ctx: &mut Context<'_, PbNode>) {
        if self.busy {
            return;
        }
        if let Some((from, epoch)) = self.waiting.pop_front() {
            self.handle(ctx, from, epoch);
        }
    }
}
