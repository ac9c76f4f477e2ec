//! The trace: every send, delivery, drop, duplicate, timer, crash, restart, partition and
//! heal, with its virtual time and content.
//!
//! A trace is kept at one of three levels ([`TraceMode`]): only its hash, the most recent
//! records (for violation reports), or all of it (for export and diagrams). The hash is
//! always computed and is the run's fingerprint: two runs with the same scenario and seed
//! must have the same hash, on every build.
//!
//! # The trace hash (version 1)
//!
//! A 64-bit state starts at `0xcbf2_9ce4_8422_2325`. Each 64-bit word `w` is folded in as
//! `h = (h.rotate_left(5) ^ w).wrapping_mul(0x5170_5a4f_2d33_5f4d)`. Each record folds:
//! its step number, its time in microseconds, the event's kind code (see
//! [`TraceEvent::code`]), then the event's numeric fields in declaration order (node ids,
//! message and timer ids, delays), then for sends, timer sets and local events the payload's
//! (for local events, the label's) postcard
//! encoding: its length, then its bytes in little-endian 8-byte words, the last one
//! zero-padded. Deliveries and fires name the message or timer by id only: its content was
//! folded when it was sent or set. The result is printed as 16 hex digits.

use crate::network::{DropReason, Partition};
use crate::node::TimerId;
use crate::time::{NodeId, SimDuration, SimTime};
use serde::Serialize;
use std::collections::VecDeque;
use std::fmt::{self, Debug};

/// Identifies one message copy in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MsgId(pub u64);

/// One thing that happened in a run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum TraceEvent<M, T> {
    /// A node started (at the beginning of the run).
    Start {
        /// The node that started.
        node: NodeId,
    },
    /// A node sent a message; its content is folded into the hash here.
    Send {
        /// The node that sent it.
        from: NodeId,
        /// The node it is addressed to.
        to: NodeId,
        /// The id of this copy.
        msg_id: MsgId,
        /// The message.
        msg: M,
    },
    /// A message reached its target and was handed to the node.
    Deliver {
        /// The node that sent it.
        from: NodeId,
        /// The node that received it.
        to: NodeId,
        /// The id of the copy delivered.
        msg_id: MsgId,
        /// The message.
        msg: M,
    },
    /// The network lost a message copy.
    Drop {
        /// The node that sent it.
        from: NodeId,
        /// The node it was addressed to.
        to: NodeId,
        /// The id of the copy lost.
        msg_id: MsgId,
        /// Why it was lost.
        reason: DropReason,
    },
    /// The network made a second copy of a message in flight.
    Duplicate {
        /// The node that sent it.
        from: NodeId,
        /// The node it is addressed to.
        to: NodeId,
        /// The id of the copy duplicated.
        msg_id: MsgId,
        /// The id of the new copy.
        copy_id: MsgId,
    },
    /// A node set a timer; its payload is folded into the hash here.
    TimerSet {
        /// The node that set it.
        node: NodeId,
        /// The timer's id, for cancelling it.
        timer_id: TimerId,
        /// How long until it fires.
        after: SimDuration,
        /// The timer's payload.
        timer: T,
    },
    /// A timer fired and was handed to its node.
    TimerFire {
        /// The node whose timer fired.
        node: NodeId,
        /// The timer's id.
        timer_id: TimerId,
        /// The timer's payload.
        timer: T,
    },
    /// A node cancelled a timer before it fired.
    TimerCancel {
        /// The node that cancelled it.
        node: NodeId,
        /// The cancelled timer's id.
        timer_id: TimerId,
    },
    /// A node crashed: it loses its volatile state and its timers.
    Crash {
        /// The node that crashed.
        node: NodeId,
    },
    /// A crashed node came back, from its durable state.
    Restart {
        /// The node that restarted.
        node: NodeId,
    },
    /// Boxed: partitions are rare, and every record is as large as the largest event.
    Partition {
        /// The partition's number in this run, matched by its [`TraceEvent::Heal`].
        partition_id: u32,
        /// Which nodes are cut off from which.
        partition: Box<Partition>,
    },
    /// A partition ended.
    Heal {
        /// The number of the partition that ended.
        partition_id: u32,
    },
    /// The end of the fault phase: partitions end, loss and duplication stop.
    NetworkHealed,
    /// A node marked a local event (`ctx.local_event`).
    Local {
        /// The node that marked it.
        node: NodeId,
        /// The event's label.
        label: String,
    },
}

/// The kind codes of trace events, as the trace hash folds them in (part of the hash's
/// definition: never renumber one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Code {
    /// Code of [`TraceEvent::Start`].
    Start = 1,
    /// Code of [`TraceEvent::Send`].
    Send = 2,
    /// Code of [`TraceEvent::Deliver`].
    Deliver = 3,
    /// Code of [`TraceEvent::Drop`].
    Drop = 4,
    /// Code of [`TraceEvent::Duplicate`].
    Duplicate = 5,
    /// Code of [`TraceEvent::TimerSet`].
    TimerSet = 6,
    /// Code of [`TraceEvent::TimerFire`].
    TimerFire = 7,
    /// Code of [`TraceEvent::TimerCancel`].
    TimerCancel = 8,
    /// Code of [`TraceEvent::Crash`].
    Crash = 9,
    /// Code of [`TraceEvent::Restart`].
    Restart = 10,
    /// Code of [`TraceEvent::Partition`].
    Partition = 11,
    /// Code of [`TraceEvent::Heal`].
    Heal = 12,
    /// Code of [`TraceEvent::NetworkHealed`].
    NetworkHealed = 13,
    /// Code of [`TraceEvent::Local`].
    Local = 14,
}

impl<M, T> TraceEvent<M, T> {
    /// The kind code folded into the trace hash.
    pub fn code(&self) -> u64 {
        let code = match self {
            TraceEvent::Start { .. } => Code::Start,
            TraceEvent::Send { .. } => Code::Send,
            TraceEvent::Deliver { .. } => Code::Deliver,
            TraceEvent::Drop { .. } => Code::Drop,
            TraceEvent::Duplicate { .. } => Code::Duplicate,
            TraceEvent::TimerSet { .. } => Code::TimerSet,
            TraceEvent::TimerFire { .. } => Code::TimerFire,
            TraceEvent::TimerCancel { .. } => Code::TimerCancel,
            TraceEvent::Crash { .. } => Code::Crash,
            TraceEvent::Restart { .. } => Code::Restart,
            TraceEvent::Partition { .. } => Code::Partition,
            TraceEvent::Heal { .. } => Code::Heal,
            TraceEvent::NetworkHealed => Code::NetworkHealed,
            TraceEvent::Local { .. } => Code::Local,
        };
        code as u64
    }

    /// The event's kind as a short word, as in the JSON form.
    pub fn kind(&self) -> &'static str {
        match self {
            TraceEvent::Start { .. } => "start",
            TraceEvent::Send { .. } => "send",
            TraceEvent::Deliver { .. } => "deliver",
            TraceEvent::Drop { .. } => "drop",
            TraceEvent::Duplicate { .. } => "duplicate",
            TraceEvent::TimerSet { .. } => "timer-set",
            TraceEvent::TimerFire { .. } => "timer-fire",
            TraceEvent::TimerCancel { .. } => "timer-cancel",
            TraceEvent::Crash { .. } => "crash",
            TraceEvent::Restart { .. } => "restart",
            TraceEvent::Partition { .. } => "partition",
            TraceEvent::Heal { .. } => "heal",
            TraceEvent::NetworkHealed => "network-healed",
            TraceEvent::Local { .. } => "local",
        }
    }
}

/// A trace event with its step and time.
#[derive(Clone, Debug, Serialize)]
pub struct TraceRecord<M, T> {
    /// The step number: the event is the run's `step`-th.
    pub step: u64,
    /// The virtual time it happened at.
    pub time: SimTime,
    /// What happened.
    #[serde(flatten)]
    pub event: TraceEvent<M, T>,
}

impl<M: Debug, T: Debug> fmt::Display for TraceRecord<M, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>14} #{:<6} ", self.time.to_string(), self.step)?;
        match &self.event {
            TraceEvent::Start { node } => write!(f, "start    {node}"),
            TraceEvent::Send { from, to, msg_id, msg } => {
                write!(f, "send     {from} -> {to} m{} {msg:?}", msg_id.0)
            }
            TraceEvent::Deliver { from, to, msg_id, msg } => {
                write!(f, "deliver  {from} -> {to} m{} {msg:?}", msg_id.0)
            }
            TraceEvent::Drop { from, to, msg_id, reason } => {
                write!(f, "drop     {from} -> {to} m{} ({reason:?})", msg_id.0)
            }
            TraceEvent::Duplicate { from, to, msg_id, copy_id } => {
                write!(f, "dup      {from} -> {to} m{} copied as m{}", msg_id.0, copy_id.0)
            }
            TraceEvent::TimerSet { node, timer_id, after, timer } => {
                write!(f, "timer    {node} sets t{} in {after}: {timer:?}", timer_id.number())
            }
            TraceEvent::TimerFire { node, timer_id, timer } => {
                write!(f, "fire     {node} t{}: {timer:?}", timer_id.number())
            }
            TraceEvent::TimerCancel { node, timer_id } => {
                write!(f, "cancel   {node} t{}", timer_id.number())
            }
            TraceEvent::Crash { node } => write!(f, "crash    {node}"),
            TraceEvent::Restart { node } => write!(f, "restart  {node}"),
            TraceEvent::Partition { partition_id, partition } => {
                write!(f, "cut      p{partition_id} {partition:?}")
            }
            TraceEvent::Heal { partition_id } => write!(f, "heal     p{partition_id}"),
            TraceEvent::NetworkHealed => write!(f, "healed   network: no more loss or partitions"),
            TraceEvent::Local { node, label } => write!(f, "local    {node} {label}"),
        }
    }
}

/// How much of the trace a run keeps (the hash is always computed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    /// Keep only the hash: the fastest mode, for fuzzing and shrinking.
    HashOnly,
    /// The last `n` records, for violation reports.
    Recent(usize),
    /// Keep every record, for export and diagrams.
    Full,
}

/// The trace hash function (version 1, documented at the top of this module).
///
/// ```
/// use sim_core::TraceHasher;
/// let mut a = TraceHasher::new();
/// a.word(42);
/// let mut b = TraceHasher::new();
/// b.word(42);
/// assert_eq!(a.finish(), b.finish());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHasher(u64);

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher::new()
    }
}

impl TraceHasher {
    /// A hasher in its documented initial state.
    pub const fn new() -> TraceHasher {
        TraceHasher(0xcbf2_9ce4_8422_2325)
    }

    /// Folds one 64-bit word into the hash.
    #[inline]
    pub fn word(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x5170_5a4f_2d33_5f4d);
    }

    /// Folds a byte string: its length, then 8-byte little-endian words, zero-padded.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Byte by byte: a copy of a variable-length tail would be a `memcpy` call.
            let last = rest.iter().rev().fold(0u64, |word, &byte| (word << 8) | u64::from(byte));
            self.word(last);
        }
    }

    /// The hash of everything folded so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// A postcard output that appends to a borrowed buffer. Encoding into the trace's own
/// scratch space in place (rather than moving a `Vec` in and out of the encoder per
/// payload) and copying postcard's few-byte pieces byte by byte (rather than through a
/// `memcpy` call each) saved about 30 instructions a send (callgrind, ping workload).
struct Scratch<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Scratch<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        if data.len() <= 16 {
            for &byte in data {
                self.0.push(byte);
            }
        } else {
            self.0.extend_from_slice(data);
        }
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Records a full trace keeps per chunk.
const CHUNK: usize = 16 * 1024;

/// The trace of one run: its running hash and the records its mode keeps.
#[derive(Clone, Debug)]
pub struct Trace<M, T> {
    mode: TraceMode,
    hash: TraceHasher,
    /// The last records (`Recent` mode).
    recent: VecDeque<TraceRecord<M, T>>,
    /// Every record (`Full` mode), in chunks of [`CHUNK`]: a long run's trace grows
    /// without ever copying what it holds (one growing vector would copy it at each
    /// doubling, hundreds of megabytes for a few million deliveries).
    full: Vec<Vec<TraceRecord<M, T>>>,
    /// Scratch space for payload encodings, reused to avoid an allocation per send.
    scratch: Vec<u8>,
}

impl<M: Serialize + Clone, T: Serialize + Clone> Trace<M, T> {
    /// An empty trace that keeps what `mode` says.
    pub fn new(mode: TraceMode) -> Self {
        Trace {
            mode,
            hash: TraceHasher::new(),
            recent: VecDeque::new(),
            full: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// How much of the trace this run keeps.
    pub fn mode(&self) -> TraceMode {
        self.mode
    }

    /// The trace hash so far: the run's fingerprint.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// The kept records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &TraceRecord<M, T>> {
        self.recent.iter().chain(self.full.iter().flatten())
    }

    /// How many records are kept.
    pub fn len(&self) -> usize {
        self.recent.len() + self.full.iter().map(Vec::len).sum::<usize>()
    }

    /// Whether no record is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every record a full trace holds except its last two chunks (so a violation
    /// still reports the last records), for a caller that streams the trace out while the
    /// run goes on: the records kept in memory then stay under three chunks. Cheap when
    /// there is nothing to take; never changes the hash.
    pub fn drain_settled(&mut self) -> Vec<Vec<TraceRecord<M, T>>> {
        if self.full.len() <= 2 {
            return Vec::new();
        }
        let last_two = self.full.split_off(self.full.len() - 2);
        std::mem::replace(&mut self.full, last_two)
    }

    /// Whether this trace keeps any records (any mode but [`TraceMode::HashOnly`]).
    pub fn keeps_records(&self) -> bool {
        self.mode != TraceMode::HashOnly
    }

    /// Encodes a payload into the scratch buffer; returns its length in bytes.
    pub(crate) fn encode<P: Serialize>(&mut self, payload: &P) -> usize {
        self.scratch.clear();
        postcard::serialize_with_flavor(payload, Scratch(&mut self.scratch)).expect("payload encodes");
        self.scratch.len()
    }

    /// Folds the record's header and numeric fields, then the last encoded payload if
    /// `with_payload`; keeps the record if the mode says so. `event` is built only if kept.
    #[inline(always)]
    pub(crate) fn record(
        &mut self,
        step: u64,
        time: SimTime,
        code: Code,
        fields: &[u64],
        with_payload: bool,
        event: impl FnOnce() -> TraceEvent<M, T>,
    ) {
        self.hash.word(step);
        self.hash.word(time.as_micros());
        self.hash.word(code as u64);
        for &field in fields {
            self.hash.word(field);
        }
        if with_payload {
            self.hash.bytes(&self.scratch);
        }
        match self.mode {
            TraceMode::HashOnly => {}
            TraceMode::Recent(keep) => {
                if keep > 0 {
                    if self.recent.len() == keep {
                        self.recent.pop_front();
                    }
                    self.recent.push_back(TraceRecord { step, time, event: event() });
                }
            }
            TraceMode::Full => {
                if self.full.last().is_none_or(|chunk| chunk.len() == CHUNK) {
                    self.full.push(Vec::with_capacity(CHUNK));
                }
                let chunk = self.full.last_mut().expect("a chunk with room");
                chunk.push(TraceRecord { step, time, event: event() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_order_sensitive_and_fixed() {
        let mut a = TraceHasher::new();
        a.word(1);
        a.word(2);
        let mut b = TraceHasher::new();
        b.word(2);
        b.word(1);
        assert_ne!(a.finish(), b.finish());
        // Pinned: the hash function must never change silently.
        let mut c = TraceHasher::new();
        c.bytes(b"dsim");
        assert_eq!(c.finish(), pinned_dsim_hash());
    }

    fn pinned_dsim_hash() -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for w in [4u64, u64::from_le_bytes(*b"dsim\0\0\0\0")] {
            h = (h.rotate_left(5) ^ w).wrapping_mul(0x5170_5a4f_2d33_5f4d);
        }
        h
    }

    #[test]
    fn full_mode_keeps_every_record_in_order_across_chunks() {
        let mut trace: Trace<u8, u8> = Trace::new(TraceMode::Full);
        let n = CHUNK as u64 * 2 + 10;
        for step in 0..n {
            trace.record(step, SimTime::ZERO, Code::Start, &[], false, || TraceEvent::Start {
                node: NodeId(0),
            });
        }
        assert_eq!(trace.len(), n as usize);
        assert!(trace.records().map(|r| r.step).eq(0..n));
    }

    #[test]
    fn draining_a_full_trace_keeps_memory_bounded_and_loses_no_record() {
        let mut trace: Trace<u8, u8> = Trace::new(TraceMode::Full);
        let mut drained = Vec::new();
        let n = CHUNK as u64 * 7 + 3;
        for step in 0..n {
            trace.record(step, SimTime::ZERO, Code::Start, &[], false, || TraceEvent::Start {
                node: NodeId(0),
            });
            drained.extend(trace.drain_settled().into_iter().flatten().map(|r| r.step));
            assert!(trace.len() <= 2 * CHUNK + 1, "{} records kept", trace.len());
        }
        assert!(trace.len() >= CHUNK, "the last records stay for violation reports");
        drained.extend(trace.records().map(|r| r.step));
        assert!(drained.into_iter().eq(0..n));
    }

    #[test]
    fn recent_mode_keeps_only_the_last_records() {
        let mut trace: Trace<u8, u8> = Trace::new(TraceMode::Recent(2));
        for step in 0..5 {
            trace.record(step, SimTime::ZERO, Code::Start, &[], false, || TraceEvent::Start {
                node: NodeId(step as u32),
            });
        }
        let steps: Vec<u64> = trace.records().map(|r| r.step).collect();
        assert_eq!(steps, vec![3, 4]);
    }
}
