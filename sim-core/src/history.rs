//! The history: what clients invoked and what they got back, plus ground-truth notes.
//!
//! Nodes record into the history through their context; checkers read it. It only grows,
//! so an invariant can keep a cursor and look at new entries alone after each step.

use crate::time::{NodeId, SimTime};
use serde::Serialize;

/// Identifies one client operation in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct OpId(pub u64);

/// One history entry.
#[derive(Clone, Debug, Serialize)]
pub struct Entry<O> {
    /// When it was recorded.
    pub time: SimTime,
    /// The node that recorded it.
    pub node: NodeId,
    /// Invoke, return or note.
    pub kind: EntryKind,
    /// The operation: what was asked on an invoke, what came back on a return, the note.
    pub op: O,
}

impl<O> Entry<O> {
    /// Whether it is an invocation (0), a return (1) or a note (2), without the operation's
    /// id (a number in the order of invocations of the whole run).
    pub fn kind_tag(&self) -> u8 {
        match self.kind {
            EntryKind::Invoke { .. } => 0,
            EntryKind::Return { .. } => 1,
            EntryKind::Note => 2,
        }
    }
}

/// Whether an entry starts an operation, ends one, or is a ground-truth note.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EntryKind {
    /// A client invoked an operation.
    Invoke {
        /// The operation's id, matched by its return.
        id: OpId,
    },
    /// An operation returned to its client.
    Return {
        /// The id of the operation that returned.
        id: OpId,
    },
    /// A ground-truth note: not a client operation, nothing to match.
    Note,
}

/// The append-only history of one run.
#[derive(Clone, Debug)]
pub struct History<O> {
    entries: Vec<Entry<O>>,
    next_op: u64,
    /// Index of each operation's invoke entry, and whether it returned, by op id.
    invokes: Vec<(usize, bool)>,
    /// Operations invoked and not yet returned.
    open: u64,
    /// When the last operation returned.
    last_return: Option<SimTime>,
}

impl<O> Default for History<O> {
    fn default() -> Self {
        History { entries: Vec::new(), next_op: 0, invokes: Vec::new(), open: 0, last_return: None }
    }
}

impl<O> History<O> {
    /// Every entry, in the order they were recorded.
    pub fn entries(&self) -> &[Entry<O>] {
        &self.entries
    }

    /// The entries added since `cursor` (a position an invariant keeps), with the position
    /// of the first; moves `cursor` past them. How a check after every step looks at what
    /// the step added only.
    ///
    /// ```
    /// use sim_core::History;
    /// let history: History<()> = History::default();
    /// let mut cursor = 0;
    /// let (first, fresh) = history.since(&mut cursor);
    /// assert_eq!((first, fresh.len(), cursor), (0, 0, 0));
    /// ```
    pub fn since(&self, cursor: &mut usize) -> (usize, &[Entry<O>]) {
        let first = *cursor;
        *cursor = self.entries.len();
        (first, &self.entries[first..])
    }

    /// How many operations were invoked and have not returned.
    pub fn open_operations(&self) -> u64 {
        self.open
    }

    /// When the last operation returned (the last progress a client saw), if any did.
    pub fn last_return(&self) -> Option<SimTime> {
        self.last_return
    }

    /// The invoke entry of an operation.
    pub fn invocation(&self, id: OpId) -> &Entry<O> {
        &self.entries[self.invokes[id.0 as usize].0]
    }

    pub(crate) fn invoke(&mut self, time: SimTime, node: NodeId, op: O) -> OpId {
        let id = OpId(self.next_op);
        self.next_op += 1;
        self.invokes.push((self.entries.len(), false));
        self.open += 1;
        self.entries.push(Entry { time, node, kind: EntryKind::Invoke { id }, op });
        id
    }

    pub(crate) fn ret(&mut self, time: SimTime, node: NodeId, id: OpId, op: O) {
        let invoked = self.invocation(id);
        assert_eq!(invoked.node, node, "{node} returned an operation {} invoked", invoked.node);
        let returned = &mut self.invokes[id.0 as usize].1;
        assert!(!*returned, "operation {id:?} returned twice");
        *returned = true;
        self.open -= 1;
        self.last_return = Some(time);
        self.entries.push(Entry { time, node, kind: EntryKind::Return { id }, op });
    }

    pub(crate) fn note(&mut self, time: SimTime, node: NodeId, op: O) {
        self.entries.push(Entry { time, node, kind: EntryKind::Note, op });
    }
}
