//! Logical clocks any protocol can embed: Lamport clocks and vector clocks, with the
//! lecture notes' wrong vector-clock rules kept as named variants for teaching.
//!
//! **Lamport clocks** (Lamport 1978). Each process keeps a counter `t`. Every event (local,
//! send, receive) increments it; a send carries the clock after its increment; a receive
//! sets `t = max(t, t_msg) + 1`. The guarantee is the clock condition: `a -> b` implies
//! `L(a) < L(b)`. Ordering events by `(L, process id)` gives a total order consistent with
//! happens-before. The converse does not hold: `L(a) < L(b)` never proves `a -> b`, and
//! Lamport stamps alone never prove two events concurrent.
//!
//! **Vector clocks** (Fidge, Mattern 1988). Process `i` keeps a vector `v`; every event
//! increments `v[i]`; a send carries `v` after its increment; a receive merges
//! `v[k] = max(v[k], v_msg[k])` for *every* `k`, then increments `v[i]`. The guarantee is
//! exact: `a -> b` iff `V(a) < V(b)`, where `v < w` iff `v <= w` in every entry and
//! `v != w`; two events are concurrent iff their clocks are incomparable.
//!
//! **The notes' variants** (CS351 notes, section 1.3; see `docs/protocols/clocks.md`):
//! - [`VectorReceive::Notes`]: the receiver merges only its own entry,
//!   `v_j[j] = max(v_j[j], v_m[j])`. It forgets what the sender knew, so a receive no longer
//!   follows its send: `V(send) < V(receive)` fails at the first message.
//! - [`VectorOrder::Notes`]: `v < w` iff every entry is strictly less. Two events of one
//!   process, with no message between them, differ in one entry only, so the notes' order
//!   calls them concurrent.

use serde::{Deserialize, Serialize};
use sim_core::{CausalOrder, LamportTime, NodeId, VectorClock};

/// A process's Lamport clock.
///
/// ```
/// use protocols::logical_clocks::LamportClock;
/// use sim_core::LamportTime;
/// let mut clock = LamportClock::default();
/// assert_eq!(clock.tick(), LamportTime(1)); // a local event
/// let sent = clock.tick(); // a send carries the clock after its increment
/// assert_eq!(sent, LamportTime(2));
/// assert_eq!(clock.receive(LamportTime(7)), LamportTime(8)); // max(2, 7) + 1
/// assert_eq!(clock.receive(LamportTime(1)), LamportTime(9)); // max(8, 1) + 1
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct LamportClock {
    time: LamportTime,
}

impl LamportClock {
    /// The clock's current value (the stamp of the process's latest event).
    pub fn time(&self) -> LamportTime {
        self.time
    }

    /// A local event or a send: increments, and returns the event's stamp (which a send
    /// carries).
    pub fn tick(&mut self) -> LamportTime {
        self.time = LamportTime(self.time.0 + 1);
        self.time
    }

    /// A receive of a message stamped `message`: `t = max(t, message) + 1`.
    pub fn receive(&mut self, message: LamportTime) -> LamportTime {
        self.time = LamportTime(self.time.0.max(message.0) + 1);
        self.time
    }
}

/// A Lamport stamp with its process id: ordered by time, then by process id, which makes
/// the order of all events total.
///
/// ```
/// use protocols::logical_clocks::LamportStamp;
/// use sim_core::{LamportTime, NodeId};
/// let a = LamportStamp { time: LamportTime(3), node: NodeId(2) };
/// let b = LamportStamp { time: LamportTime(3), node: NodeId(5) };
/// assert!(a < b);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LamportStamp {
    pub time: LamportTime,
    pub node: NodeId,
}

/// How a process merges a received vector clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VectorReceive {
    /// `v[k] = max(v[k], v_msg[k])` for every `k`, then `v[me] += 1`.
    #[default]
    Correct,
    /// The notes' rule (wrong): `v[me] = max(v[me], v_msg[me])`, then `v[me] += 1`.
    Notes,
}

/// How a protocol compares two vector clocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VectorOrder {
    /// `v < w` iff `v <= w` in every entry and `v != w`.
    #[default]
    Correct,
    /// The notes' order (wrong): `v < w` iff `v[k] < w[k]` for every `k`.
    Notes,
}

impl VectorOrder {
    /// How `a` relates to `b` under this order.
    ///
    /// ```
    /// use protocols::logical_clocks::VectorOrder;
    /// use sim_core::{CausalOrder, VectorClock};
    /// let a = VectorClock::from(vec![1, 0]);
    /// let b = VectorClock::from(vec![2, 0]);
    /// assert_eq!(VectorOrder::Correct.compare(&a, &b), CausalOrder::Before);
    /// assert_eq!(VectorOrder::Notes.compare(&a, &b), CausalOrder::Concurrent);
    /// ```
    pub fn compare(self, a: &VectorClock, b: &VectorClock) -> CausalOrder {
        match self {
            VectorOrder::Correct => a.compare(b),
            VectorOrder::Notes => {
                let (a, b) = (a.entries(), b.entries());
                assert_eq!(a.len(), b.len(), "comparing vector clocks of different sizes");
                if a == b {
                    CausalOrder::Same
                } else if a.iter().zip(b).all(|(x, y)| x < y) {
                    CausalOrder::Before
                } else if a.iter().zip(b).all(|(x, y)| x > y) {
                    CausalOrder::After
                } else {
                    CausalOrder::Concurrent
                }
            }
        }
    }

    /// The rule in words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            VectorOrder::Correct => "v < w iff v <= w in every entry and v != w",
            VectorOrder::Notes => "the notes' order: v < w iff every entry of v is strictly less",
        }
    }
}

/// A process's vector clock, with the receive rule it follows.
///
/// ```
/// use protocols::logical_clocks::{ProcessVectorClock, VectorReceive};
/// use sim_core::{NodeId, VectorClock};
/// let mut p0 = ProcessVectorClock::new(NodeId(0), 3, VectorReceive::Correct);
/// let mut p1 = ProcessVectorClock::new(NodeId(1), 3, VectorReceive::Correct);
/// let m = p0.tick(); // p0 sends
/// assert_eq!(m, VectorClock::from(vec![1, 0, 0]));
/// assert_eq!(p1.receive(&m), VectorClock::from(vec![1, 1, 0]));
///
/// let mut notes = ProcessVectorClock::new(NodeId(2), 3, VectorReceive::Notes);
/// assert_eq!(notes.receive(&m), VectorClock::from(vec![0, 0, 1])); // forgot p0's send
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ProcessVectorClock {
    me: NodeId,
    clock: VectorClock,
    rule: VectorReceive,
}

impl ProcessVectorClock {
    pub fn new(me: NodeId, n_processes: usize, rule: VectorReceive) -> ProcessVectorClock {
        assert!(me.index() < n_processes, "{me} is not one of {n_processes} processes");
        ProcessVectorClock { me, clock: VectorClock::new(n_processes), rule }
    }

    /// The clock's current value (the stamp of the process's latest event).
    pub fn clock(&self) -> &VectorClock {
        &self.clock
    }

    /// A local event or a send: `v[me] += 1`; returns the event's stamp (which a send
    /// carries).
    pub fn tick(&mut self) -> VectorClock {
        self.clock.0[self.me.index()] += 1;
        self.clock.clone()
    }

    /// A receive of a message stamped `message`: merge (by the rule), then `v[me] += 1`.
    pub fn receive(&mut self, message: &VectorClock) -> VectorClock {
        assert_eq!(message.0.len(), self.clock.0.len(), "a vector clock of another size");
        match self.rule {
            VectorReceive::Correct => {
                for (mine, theirs) in self.clock.0.iter_mut().zip(&message.0) {
                    *mine = (*mine).max(*theirs);
                }
            }
            VectorReceive::Notes => {
                let me = self.me.index();
                self.clock.0[me] = self.clock.0[me].max(message.0[me]);
            }
        }
        self.tick()
    }
}
