//! The event queue: events ordered by (virtual time, insertion sequence).
//!
//! Keys are unique (the sequence number is), and a simulation only ever schedules events
//! at or after the current time, so the keys popped are monotone. That is what a radix
//! heap needs: [`RadixQueue`] keeps events in buckets by the highest bit in which their
//! key differs from the last key popped; popping empties bucket 0, or redistributes the
//! smallest non-empty bucket into lower ones. Each event moves down at most 128 buckets in
//! its life, and in practice a handful, so the cost per event barely grows with the number
//! in flight.
//!
//! Both queues keep only 24-byte keys in their ordered structure and the events themselves
//! in a slab, so reordering moves small keys, never payloads. [`BinaryQueue`] (a binary
//! heap of keys) is kept for comparison in benchmarks and tests.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// (time in microseconds, insertion sequence, slab slot).
type Key = (u64, u64, u32);

/// Where events wait between being scheduled and being popped.
#[derive(Debug)]
struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { items: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    fn insert(&mut self, item: T) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.items[slot as usize] = Some(item);
                slot
            }
            None => {
                self.items.push(Some(item));
                u32::try_from(self.items.len() - 1).expect("fewer than 2^32 events in flight")
            }
        }
    }

    fn remove(&mut self, slot: u32) -> T {
        let item = self.items[slot as usize].take().expect("each slot is removed once");
        self.free.push(slot);
        item
    }

    fn get(&self, slot: u32) -> &T {
        self.items[slot as usize].as_ref().expect("a queued slot holds its event")
    }
}

/// A monotone priority queue: a radix heap over (time, sequence) keys.
///
/// ```
/// use sim_core::queue::RadixQueue;
/// let mut q = RadixQueue::default();
/// q.push(5, 0, "late");
/// q.push(1, 1, "early");
/// q.push(1, 2, "early, second");
/// assert_eq!(q.pop(), Some((1, 1, "early")));
/// assert_eq!(q.pop(), Some((1, 2, "early, second")));
/// assert_eq!(q.pop(), Some((5, 0, "late")));
/// assert_eq!(q.pop(), None);
/// ```
#[derive(Debug)]
pub struct RadixQueue<T> {
    /// The last key popped (every queued key is at or above it).
    last: (u64, u64),
    /// Bucket 0: keys equal to `last`; 1..=64: same time, the sequence differs first in
    /// bit b-1; 65..=128: the time differs first in bit b-65.
    buckets: Vec<Vec<Key>>,
    /// Bit b set: bucket b is not empty (so finding the smallest is one instruction).
    occupied: [u64; 3],
    slab: Slab<T>,
    len: usize,
}

impl<T> Default for RadixQueue<T> {
    fn default() -> Self {
        RadixQueue {
            last: (0, 0),
            buckets: (0..129).map(|_| Vec::new()).collect(),
            occupied: [0; 3],
            slab: Slab::default(),
            len: 0,
        }
    }
}

fn bucket(last: (u64, u64), time: u64, seq: u64) -> usize {
    if time != last.0 {
        65 + (63 - (time ^ last.0).leading_zeros() as usize)
    } else if seq != last.1 {
        1 + (63 - (seq ^ last.1).leading_zeros() as usize)
    } else {
        0
    }
}

impl<T> RadixQueue<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `item` at (`time`, `seq`), which must not be below the last key popped.
    pub fn push(&mut self, time: u64, seq: u64, item: T) {
        assert!((time, seq) >= self.last, "a radix queue only takes keys at or after the last popped");
        let slot = self.slab.insert(item);
        self.file(time, seq, slot);
        self.len += 1;
    }

    fn file(&mut self, time: u64, seq: u64, slot: u32) {
        let b = bucket(self.last, time, seq);
        self.buckets[b].push((time, seq, slot));
        self.occupied[b / 64] |= 1 << (b % 64);
    }

    fn smallest_occupied(&self) -> Option<usize> {
        self.occupied
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
    }

    /// Removes the event with the smallest (time, seq).
    pub fn pop(&mut self) -> Option<(u64, u64, T)> {
        if self.buckets[0].is_empty() {
            let smallest = self.smallest_occupied()?;
            let mut moving = std::mem::take(&mut self.buckets[smallest]);
            self.occupied[smallest / 64] &= !(1 << (smallest % 64));
            let &(time, seq, _) = moving.iter().min().expect("an occupied bucket is not empty");
            self.last = (time, seq);
            // Every key here lands in a lower bucket; gather their bits and set them once.
            let mut occupied = [0u64; 3];
            for &(time, seq, slot) in &moving {
                let b = bucket(self.last, time, seq);
                self.buckets[b].push((time, seq, slot));
                occupied[b / 64] |= 1 << (b % 64);
            }
            for (word, bits) in self.occupied.iter_mut().zip(occupied) {
                *word |= bits;
            }
            // Keep the bucket's allocation for next time.
            moving.clear();
            self.buckets[smallest] = moving;
        }
        let (time, seq, slot) = self.buckets[0].pop().expect("bucket 0 holds the minimum");
        if self.buckets[0].is_empty() {
            self.occupied[0] &= !1;
        }
        self.len -= 1;
        Some((time, seq, self.slab.remove(slot)))
    }

    /// Every queued event with its key, in no particular (but deterministic) order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, &T)> {
        self.buckets.iter().flatten().map(|&(time, seq, slot)| (time, seq, self.slab.get(slot)))
    }
}

/// A binary heap of compact keys, with events in a slab (for comparison).
///
/// ```
/// use sim_core::queue::BinaryQueue;
/// let mut q = BinaryQueue::default();
/// q.push(5, 0, 'b');
/// q.push(1, 1, 'a');
/// assert_eq!(q.pop(), Some((1, 1, 'a')));
/// ```
#[derive(Debug)]
pub struct BinaryQueue<T> {
    heap: BinaryHeap<Reverse<Key>>,
    slab: Slab<T>,
}

impl<T> Default for BinaryQueue<T> {
    fn default() -> Self {
        BinaryQueue { heap: BinaryHeap::new(), slab: Slab::default() }
    }
}

impl<T> BinaryQueue<T> {
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn push(&mut self, time: u64, seq: u64, item: T) {
        let slot = self.slab.insert(item);
        self.heap.push(Reverse((time, seq, slot)));
    }

    pub fn pop(&mut self) -> Option<(u64, u64, T)> {
        let Reverse((time, seq, slot)) = self.heap.pop()?;
        Some((time, seq, self.slab.remove(slot)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, &T)> {
        self.heap.iter().map(|Reverse((time, seq, slot))| (*time, *seq, self.slab.get(*slot)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{SimRng, Stream};
    use proptest::prelude::*;

    proptest! {
        /// Against a sorted list: a simulation-like schedule (each push at or after the
        /// last pop, sequences rising) pops in (time, seq) order from both queues.
        #[test]
        fn both_queues_pop_in_key_order(delays in proptest::collection::vec((0u64..50, 0u8..3), 1..400)) {
            let mut radix = RadixQueue::default();
            let mut binary = BinaryQueue::default();
            let mut reference: Vec<(u64, u64)> = Vec::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for (delay, pops) in delays {
                radix.push(now + delay, seq, seq);
                binary.push(now + delay, seq, seq);
                reference.push((now + delay, seq));
                seq += 1;
                for _ in 0..pops {
                    reference.sort_unstable_by(|a, b| b.cmp(a));
                    let expected = reference.pop();
                    let got = radix.pop().map(|(t, s, _)| (t, s));
                    prop_assert_eq!(got, expected);
                    prop_assert_eq!(binary.pop().map(|(t, s, _)| (t, s)), expected);
                    if let Some((t, _)) = expected {
                        now = t;
                    }
                }
                prop_assert_eq!(radix.len(), reference.len());
            }
        }
    }

    #[test]
    fn iter_sees_every_queued_event() {
        let mut q = RadixQueue::default();
        let mut rng = SimRng::new(1, Stream::Workload);
        for seq in 0..100 {
            q.push(rng.below(1_000), seq, seq);
        }
        q.pop();
        let mut seen: Vec<u64> = q.iter().map(|(_, _, v)| *v).collect();
        seen.sort();
        assert_eq!(seen.len(), 99);
    }
}
