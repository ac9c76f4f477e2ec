//! Sequential specifications for histories recorded outside dsim: Knossos's classic
//! models (a register with compare-and-set, a mutex, a set, a FIFO queue), for
//! `dsim check-history`, which checks them with the one search in [`linearizability`].
//!
//! The models know nothing of file formats. What a `fail` or an unknown outcome means is
//! decided by whoever reads the history: an operation that did not take effect is left
//! out, one whose outcome is unknown has output `None` (and may take effect at any moment
//! after its call, or never). The one observation that is not a plain result is a
//! compare-and-set whose comparison failed ([`RegisterOutput::CasFailed`]), which the
//! porcupine-style register records and Knossos's drops.
//!
//! [`linearizability`]: super::linearizability

use super::linearizability::Model;
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;

/// A value held by a model: nil, an integer or a text. Shown as Clojure would (`nil`,
/// `3`, `"x"`), so an explanation reads like the history it explains.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// Nil: no value.
    Nil,
    /// An integer.
    Int(i64),
    /// Shared, so that a state holding a text is cloned without copying it.
    Text(Arc<str>),
}

impl Value {
    /// A text value.
    pub fn text(text: &str) -> Value {
        Value::Text(Arc::from(text))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Text(text) => write!(f, "{:?}", &**text),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A read/write register with compare-and-set, starting at `initial` (nil for the
/// `register` model, `--initial` for `cas-register`).
///
/// ```
/// use sim_core::checkers::linearizability::{check, Operation};
/// use sim_core::checkers::models::{Register, RegisterInput as In, RegisterOutput as Out, Value};
/// let op = |client, call, ret, input, output| Operation { client, call, ret: Some(ret), input, output };
/// let register = Register { initial: Value::Int(0) };
/// // cas 0 -> 1 succeeds, then a read of 0 cannot be explained.
/// let ops = [op(0, 0, 1, In::Cas(Value::Int(0), Value::Int(1)), Some(Out::Ok)),
///            op(1, 2, 3, In::Read, Some(Out::Read(Value::Int(0))))];
/// assert!(!check(&register, &ops));
/// ```
#[derive(Clone, Debug)]
pub struct Register {
    /// The value the register holds before any operation.
    pub initial: Value,
}

/// An operation on a [`Register`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterInput {
    /// Read the value.
    Read,
    /// Write this value.
    Write(Value),
    /// Compare with the first, and if equal, set to the second.
    Cas(Value, Value),
}

/// What an operation on a [`Register`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOutput {
    /// A write or a cas took effect.
    Ok,
    /// A read returned this value.
    Read(Value),
    /// A cas took effect, but its comparison failed: the register did not hold the
    /// expected value then.
    CasFailed,
}

impl Model for Register {
    type State = Value;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Value {
        self.initial.clone()
    }

    fn step(&self, state: &Value, input: &RegisterInput, output: Option<&RegisterOutput>) -> Option<Value> {
        use RegisterOutput as Out;
        match (input, output) {
            (RegisterInput::Read, None) => Some(state.clone()),
            (RegisterInput::Read, Some(Out::Read(value))) => (value == state).then(|| state.clone()),
            (RegisterInput::Write(value), None | Some(Out::Ok)) => Some(value.clone()),
            (RegisterInput::Cas(expected, new), None) => {
                Some(if expected == state { new.clone() } else { state.clone() })
            }
            (RegisterInput::Cas(expected, new), Some(Out::Ok)) => (expected == state).then(|| new.clone()),
            (RegisterInput::Cas(expected, _), Some(Out::CasFailed)) => {
                (expected != state).then(|| state.clone())
            }
            _ => None,
        }
    }

    fn is_read(&self, input: &RegisterInput) -> bool {
        matches!(input, RegisterInput::Read)
    }
}

/// A lock: `acquire` succeeds only when it is free, `release` only when it is held.
#[derive(Clone, Debug, Default)]
pub struct Mutex;

/// An operation on a [`Mutex`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MutexInput {
    /// Take the lock.
    Acquire,
    /// Give the lock back.
    Release,
}

impl Model for Mutex {
    /// Whether the lock is held.
    type State = bool;
    type Input = MutexInput;
    /// Both operations only say they took effect.
    type Output = ();

    fn init(&self) -> bool {
        false
    }

    fn step(&self, held: &bool, input: &MutexInput, output: Option<&()>) -> Option<bool> {
        match (input, output) {
            (MutexInput::Acquire, Some(())) => (!held).then_some(true),
            (MutexInput::Release, Some(())) => held.then_some(false),
            // An unknown outcome may be that it did not take effect: where it cannot (an
            // acquire of a held lock), it changes nothing. Otherwise a crashed acquire
            // could be placed nowhere once the lock ends held.
            (MutexInput::Acquire, None) => Some(true),
            (MutexInput::Release, None) => Some(false),
        }
    }
}

/// A grow-only set: `add` a value, `read` the whole set.
#[derive(Clone, Debug, Default)]
pub struct Set;

/// An operation on a [`Set`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetInput {
    /// Add this value.
    Add(Value),
    /// Read the whole set.
    Read,
}

/// What an operation on a [`Set`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOutput {
    /// An add took effect.
    Ok,
    /// A read returned this set.
    Read(BTreeSet<Value>),
}

impl Model for Set {
    type State = BTreeSet<Value>;
    type Input = SetInput;
    type Output = SetOutput;

    fn init(&self) -> BTreeSet<Value> {
        BTreeSet::new()
    }

    fn step(
        &self,
        state: &BTreeSet<Value>,
        input: &SetInput,
        output: Option<&SetOutput>,
    ) -> Option<BTreeSet<Value>> {
        match (input, output) {
            (SetInput::Add(value), None | Some(SetOutput::Ok)) => {
                let mut after = state.clone();
                after.insert(value.clone());
                Some(after)
            }
            (SetInput::Read, None) => Some(state.clone()),
            (SetInput::Read, Some(SetOutput::Read(read))) => (read == state).then(|| state.clone()),
            _ => None,
        }
    }

    fn is_read(&self, input: &SetInput) -> bool {
        matches!(input, SetInput::Read)
    }
}

/// A FIFO queue: `enqueue` a value at the back, `dequeue` the front. As in Knossos, a
/// dequeue that returned nil found the queue empty.
#[derive(Clone, Debug, Default)]
pub struct FifoQueue;

/// An operation on a [`FifoQueue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueInput {
    /// Put this value at the back.
    Enqueue(Value),
    /// Take the value at the front.
    Dequeue,
}

/// What an operation on a [`FifoQueue`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueOutput {
    /// An enqueue took effect.
    Ok,
    /// What a dequeue returned (nil: the queue was empty).
    Dequeued(Value),
}

impl Model for FifoQueue {
    type State = VecDeque<Value>;
    type Input = QueueInput;
    type Output = QueueOutput;

    fn init(&self) -> VecDeque<Value> {
        VecDeque::new()
    }

    fn step(
        &self,
        state: &VecDeque<Value>,
        input: &QueueInput,
        output: Option<&QueueOutput>,
    ) -> Option<VecDeque<Value>> {
        match (input, output) {
            (QueueInput::Enqueue(value), None | Some(QueueOutput::Ok)) => {
                let mut after = state.clone();
                after.push_back(value.clone());
                Some(after)
            }
            (QueueInput::Dequeue, None) => {
                let mut after = state.clone();
                after.pop_front();
                Some(after)
            }
            (QueueInput::Dequeue, Some(QueueOutput::Dequeued(value))) => {
                let front = state.front().unwrap_or(&Value::Nil);
                (front == value).then(|| state.iter().skip(1).cloned().collect())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkers::linearizability::{check, Operation};

    fn op<I, O>(client: u64, call: u64, ret: Option<u64>, input: I, output: Option<O>) -> Operation<I, O> {
        Operation { client, call, ret, input, output }
    }

    fn int(n: i64) -> Value {
        Value::Int(n)
    }

    #[test]
    fn register_failed_cas_is_an_observation() {
        use RegisterInput as In;
        use RegisterOutput as Out;
        let register = Register { initial: Value::Nil };
        // write 1; cas 1->2 failed: only possible if the cas came before the write.
        let concurrent = [
            op(0, 0, Some(3), In::Write(int(1)), Some(Out::Ok)),
            op(1, 1, Some(2), In::Cas(int(1), int(2)), Some(Out::CasFailed)),
        ];
        assert!(check(&register, &concurrent));
        let after = [
            op(0, 0, Some(1), In::Write(int(1)), Some(Out::Ok)),
            op(1, 2, Some(3), In::Cas(int(1), int(2)), Some(Out::CasFailed)),
        ];
        assert!(!check(&register, &after));
        // An unknown cas may take effect late: the read of 2 needs it.
        let late = [
            op(0, 0, Some(1), In::Write(int(1)), Some(Out::Ok)),
            op(1, 2, None, In::Cas(int(1), int(2)), None),
            op(2, 5, Some(6), In::Read, Some(Out::Read(int(1)))),
            op(2, 7, Some(8), In::Read, Some(Out::Read(int(2)))),
        ];
        assert!(check(&register, &late));
        assert!(check(&register, &late[..3]));
    }

    #[test]
    fn register_starts_at_its_initial_value() {
        use RegisterInput as In;
        use RegisterOutput as Out;
        let read = |v| [op(0, 0, Some(1), In::Read, Some(Out::Read(v)))];
        assert!(check(&Register { initial: int(0) }, &read(int(0))));
        assert!(!check(&Register { initial: Value::Nil }, &read(int(0))));
        assert!(check(&Register { initial: Value::Nil }, &read(Value::Nil)));
    }

    #[test]
    fn mutex_is_held_by_one_at_a_time() {
        use MutexInput::*;
        let two_holders = [op(0, 0, Some(1), Acquire, Some(())), op(1, 2, Some(3), Acquire, Some(()))];
        assert!(!check(&Mutex, &two_holders));
        let handed_over = [
            op(0, 0, Some(1), Acquire, Some(())),
            op(1, 2, Some(6), Acquire, Some(())),
            op(0, 3, Some(4), Release, Some(())),
        ];
        assert!(check(&Mutex, &handed_over));
        // A release with an unknown outcome may have freed the lock.
        let crashed = [
            op(0, 0, Some(1), Acquire, Some(())),
            op(0, 2, None, Release, None),
            op(1, 3, Some(4), Acquire, Some(())),
        ];
        assert!(check(&Mutex, &crashed));
        assert!(!check(&Mutex, &[op(0, 0, Some(1), Release, Some(()))]));
        // A crashed acquire while another holds the lock to the end did not take effect.
        let crashed_acquire = [op(0, 0, Some(1), Acquire, Some(())), op(1, 2, None, Acquire, None)];
        assert!(check(&Mutex, &crashed_acquire));
    }

    #[test]
    fn set_reads_see_every_add_before_them() {
        let set = |values: &[i64]| values.iter().map(|&v| int(v)).collect::<BTreeSet<_>>();
        let ok = [
            op(0, 0, Some(1), SetInput::Add(int(1)), Some(SetOutput::Ok)),
            op(1, 0, Some(5), SetInput::Add(int(2)), Some(SetOutput::Ok)),
            op(2, 2, Some(3), SetInput::Read, Some(SetOutput::Read(set(&[1])))),
            op(2, 6, Some(7), SetInput::Read, Some(SetOutput::Read(set(&[1, 2])))),
        ];
        assert!(check(&Set, &ok));
        let lost = [
            op(0, 0, Some(1), SetInput::Add(int(1)), Some(SetOutput::Ok)),
            op(2, 2, Some(3), SetInput::Read, Some(SetOutput::Read(set(&[])))),
        ];
        assert!(!check(&Set, &lost));
    }

    #[test]
    fn queue_dequeues_in_order() {
        use QueueInput::*;
        let enqueue =
            |client, call, ret, v| op(client, call, Some(ret), Enqueue(int(v)), Some(QueueOutput::Ok));
        let dequeue =
            |client, call, ret, v| op(client, call, Some(ret), Dequeue, Some(QueueOutput::Dequeued(v)));
        let in_order =
            [enqueue(0, 0, 1, 1), enqueue(0, 2, 3, 2), dequeue(1, 4, 5, int(1)), dequeue(1, 6, 7, int(2))];
        assert!(check(&FifoQueue, &in_order));
        let reordered = [enqueue(0, 0, 1, 1), enqueue(0, 2, 3, 2), dequeue(1, 4, 5, int(2))];
        assert!(!check(&FifoQueue, &reordered));
        // Concurrent enqueues may land in either order; an empty dequeue returns nil.
        let concurrent = [enqueue(0, 0, 5, 1), enqueue(1, 0, 5, 2), dequeue(2, 6, 7, int(2))];
        assert!(check(&FifoQueue, &concurrent));
        assert!(check(&FifoQueue, &[dequeue(0, 0, 1, Value::Nil)]));
        assert!(!check(&FifoQueue, &[enqueue(0, 0, 1, 1), dequeue(1, 2, 3, Value::Nil)]));
    }
}
