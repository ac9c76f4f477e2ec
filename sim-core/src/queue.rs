//! The event queue: events ordered by virtual time, and events of equal time in the order
//! they were scheduled (so traces never depend on how the queue breaks ties).
//!
//! A simulation only ever schedules events at or after the current time, so the times
//! popped are monotone. [`WheelQueue`], a hierarchical timing wheel, uses that: an event
//! is filed by the highest 8-bit group in which its time differs from the current time,
//! and moves down a level at most once per group, so its cost barely grows with the
//! number in flight. [`BinaryQueue`] (a binary heap) is the reference it is tested and
//! measured against (`dsim bench --suite`, "queue" lines).
//!
//! The wheel keeps events in its slots (popping then reads memory in order); the heap
//! keeps small keys in its ordered structure and the events in a slab.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

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

/// Bits of time each wheel level resolves.
const LEVEL_BITS: u32 = 8;
const SLOTS: u64 = 1 << LEVEL_BITS;
const WORDS: usize = SLOTS as usize / 64;

/// Which slots of a level are occupied, one bit a slot.
#[derive(Clone, Copy, Debug, Default)]
struct Occupancy([u64; WORDS]);

impl Occupancy {
    #[inline]
    fn set(&mut self, index: usize) {
        self.0[index / 64] |= 1 << (index % 64);
    }

    /// Clears a slot's bit; returns whether the level is now empty.
    #[inline]
    fn clear(&mut self, index: usize) -> bool {
        self.0[index / 64] &= !(1 << (index % 64));
        self.0.iter().all(|w| *w == 0)
    }

    #[inline]
    fn first(&self) -> Option<usize> {
        self.0.iter().enumerate().find(|(_, w)| **w != 0).map(|(i, w)| i * 64 + w.trailing_zeros() as usize)
    }
}

/// One level of the wheel: its slots, each a list of (time, event) in insertion order,
/// and which of them are occupied. An event is `None` once popped (only in level 0's
/// lowest slot, up to the wheel's cursor).
#[derive(Clone, Debug)]
struct Level<T> {
    slots: [Vec<(u64, Option<T>)>; SLOTS as usize],
    occupied: Occupancy,
}

impl<T> Default for Level<T> {
    fn default() -> Self {
        Level { slots: std::array::from_fn(|_| Vec::new()), occupied: Occupancy::default() }
    }
}

/// A monotone priority queue: a hierarchical timing wheel over microsecond times, popping
/// in (time, insertion order).
///
/// Level `l` holds the events whose time first differs from the wheel's current time
/// `now` in bits `8l..8l+8`, filed by those bits; level 0 therefore holds events of the
/// current 256 µs, one exact time a slot. Popping takes the head of the lowest occupied
/// slot of level 0. When level 0 is empty, the lowest occupied slot of the lowest
/// occupied level is *cascaded*: `now` moves to the start of that slot's span and its
/// events are re-filed into the (empty) levels below. An event is filed once and cascaded
/// once per level it crosses: at most twice for delays under 65 ms, whatever the number
/// in flight. (Levels of 64 slots cascaded more often: about 2% more instructions a
/// delivery on the ping benchmark; 256 slots cost four words of occupancy bits a level.)
///
/// Events live in the slots themselves, not in a side table: a cascade moves each event
/// once or twice, sequentially, and in exchange popping reads level 0 in order, where
/// the next event is already in cache. With 100,000 events in flight, an event table
/// indexed from the slots made a cache miss of every pop (a third of the time per
/// delivery at N=10,000).
///
/// Insertion order survives without sequence numbers: a slot receives either pushes
/// (each later than anything queued) or, when it is empty, one cascade that keeps the
/// order of the slot it comes from; by induction every slot lists its events in insertion
/// order, so events of equal time pop in the order they were pushed.
///
/// ```
/// use sim_core::queue::WheelQueue;
/// let mut q = WheelQueue::default();
/// q.push(5_000, "late");
/// q.push(1, "early");
/// q.push(1, "early, second");
/// assert_eq!(q.pop(), Some((1, "early")));
/// assert_eq!(q.pop(), Some((1, "early, second")));
/// assert_eq!(q.pop(), Some((5_000, "late")));
/// assert_eq!(q.pop(), None);
/// ```
#[derive(Debug)]
pub struct WheelQueue<T> {
    /// The wheel's current time: every queued time is at or after it.
    now: u64,
    /// Levels as far up as some queued time has needed.
    levels: Vec<Level<T>>,
    /// Bit `l` set: level `l` has an occupied slot.
    occupied_levels: u64,
    /// How many events of level 0's lowest occupied slot were popped already (only that
    /// slot is ever popped from, so one cursor serves).
    cursor: usize,
    /// Level 0's lowest occupied slot, as last found; forgotten by a push (which may file
    /// below it) and when the slot empties. A peek and the pop after it look it up once.
    head: Option<usize>,
    len: usize,
}

/// A copy; an empty queue (what explore copies) is copied as a new one, without walking
/// its levels.
impl<T: Clone> Clone for WheelQueue<T> {
    fn clone(&self) -> Self {
        if self.len == 0 {
            return WheelQueue::default();
        }
        WheelQueue {
            now: self.now,
            levels: self.levels.clone(),
            occupied_levels: self.occupied_levels,
            cursor: self.cursor,
            head: self.head,
            len: self.len,
        }
    }
}

impl<T> Default for WheelQueue<T> {
    fn default() -> Self {
        WheelQueue { now: 0, levels: Vec::new(), occupied_levels: 0, cursor: 0, head: None, len: 0 }
    }
}

impl<T> WheelQueue<T> {
    /// How many events are queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `item` at `time`, which must not be before the last time popped; events of
    /// equal time pop in the order they were pushed.
    pub fn push(&mut self, time: u64, item: T) {
        assert!(time >= self.now, "a timing wheel only takes times at or after the last popped");
        self.head = None;
        self.file(time, item);
        self.len += 1;
    }

    #[inline]
    fn file(&mut self, time: u64, item: T) {
        let differ = time ^ self.now;
        let level = if differ == 0 { 0 } else { (63 - differ.leading_zeros()) / LEVEL_BITS } as usize;
        if level >= self.levels.len() {
            self.levels.resize_with(level + 1, Level::default);
        }
        let index = ((time >> (LEVEL_BITS * level as u32)) & (SLOTS - 1)) as usize;
        let level_ref = &mut self.levels[level];
        level_ref.slots[index].push((time, Some(item)));
        level_ref.occupied.set(index);
        self.occupied_levels |= 1 << level;
    }

    /// Brings the earliest event into level 0 (cascading as needed) and returns its slot
    /// index there, or `None` if the queue is empty.
    #[inline]
    fn settle(&mut self) -> Option<usize> {
        if self.head.is_none() {
            if self.occupied_levels & 1 == 0 {
                self.cascade();
            }
            self.head = self.levels.first()?.occupied.first();
        }
        self.head
    }

    /// Cascades until level 0 is occupied or the queue is empty. Kept out of line: most
    /// pops find level 0 occupied.
    #[inline(never)]
    fn cascade(&mut self) {
        while self.occupied_levels & 1 == 0 {
            if self.occupied_levels == 0 {
                return;
            }
            let level = self.occupied_levels.trailing_zeros() as usize;
            let shift = LEVEL_BITS * level as u32;
            let index = self.levels[level].occupied.first().expect("an occupied level");
            // The start of the slot's span: the current time's bits above this level, the
            // slot's bits at it, zeros below. No queued time is earlier.
            let above = !((SLOTS << shift) - 1);
            self.now = (self.now & above) | ((index as u64) << shift);
            let mut moving = std::mem::take(&mut self.levels[level].slots[index]);
            if self.levels[level].occupied.clear(index) {
                self.occupied_levels &= !(1 << level);
            }
            if level == 1 {
                // Most cascades: every event lands in level 0, at its time's low bits.
                let level0 = &mut self.levels[0];
                for (time, item) in moving.drain(..) {
                    let index = (time & (SLOTS - 1)) as usize;
                    level0.slots[index].push((time, item));
                    level0.occupied.set(index);
                }
                self.occupied_levels |= 1;
            } else {
                for (time, item) in moving.drain(..) {
                    self.file(time, item.expect("only level 0 has popped events"));
                }
            }
            // Keep the slot's allocation for next time.
            self.levels[level].slots[index] = moving;
        }
    }

    /// The earliest event without removing it (cascading the wheel if needed).
    pub fn peek(&mut self) -> Option<(u64, &T)> {
        let index = self.settle()?;
        let (time, item) = &self.levels[0].slots[index][self.cursor];
        Some((*time, item.as_ref().expect("the cursor is at an event not yet popped")))
    }

    /// Removes the earliest event (of equal times, the first pushed).
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let index = self.settle()?;
        let level = &mut self.levels[0];
        let list = &mut level.slots[index];
        let (time, item) = &mut list[self.cursor];
        let (time, item) = (*time, item.take().expect("the cursor is at an event not yet popped"));
        self.cursor += 1;
        if self.cursor == list.len() {
            list.clear();
            self.cursor = 0;
            self.head = None;
            if level.occupied.clear(index) {
                self.occupied_levels &= !1;
            }
        }
        self.now = time;
        self.len -= 1;
        Some((time, item))
    }

    /// Every queued event with its time, in no particular (but deterministic) order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.levels.iter().flat_map(|level| {
            level.slots.iter().flatten().filter_map(|(time, item)| item.as_ref().map(|item| (*time, item)))
        })
    }
}

/// A binary heap of (time, sequence, slab slot) keys, with events in a slab: the reference
/// the wheel is tested and measured against.
///
/// ```
/// use sim_core::queue::BinaryQueue;
/// let mut q = BinaryQueue::default();
/// q.push(5, 'b');
/// q.push(1, 'a');
/// assert_eq!(q.pop(), Some((1, 'a')));
/// ```
#[derive(Debug)]
pub struct BinaryQueue<T> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    next_seq: u64,
    slab: Slab<T>,
}

impl<T> Default for BinaryQueue<T> {
    fn default() -> Self {
        BinaryQueue { heap: BinaryHeap::new(), next_seq: 0, slab: Slab::default() }
    }
}

impl<T> BinaryQueue<T> {
    /// How many events are queued.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Queues `item` at `time`; items of equal time pop in the order they were pushed.
    pub fn push(&mut self, time: u64, item: T) {
        let slot = self.slab.insert(item);
        self.heap.push(Reverse((time, self.next_seq, slot)));
        self.next_seq += 1;
    }

    /// The earliest item and its time, without removing it.
    pub fn peek(&mut self) -> Option<(u64, &T)> {
        let Reverse((time, _, slot)) = *self.heap.peek()?;
        Some((time, self.slab.get(slot)))
    }

    /// Removes and returns the earliest item and its time.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let Reverse((time, _, slot)) = self.heap.pop()?;
        Some((time, self.slab.remove(slot)))
    }

    /// Every queued item with its time, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.heap.iter().map(|Reverse((time, _, slot))| (*time, self.slab.get(*slot)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Delays at every scale the wheel has levels for: same instant, same 64 µs, a few
    /// levels up, and far.
    fn delay() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), 0u64..64, 0u64..5_000, 0u64..300_000, 0u64..(1 << 40)]
    }

    proptest! {
        /// Against a sorted list: a simulation-like schedule (each push at or after the
        /// last pop) pops in (time, insertion order) from both queues, `peek` agrees with
        /// `pop`, and `iter` sees exactly what is queued.
        #[test]
        fn both_queues_pop_in_time_then_insertion_order(
            schedule in proptest::collection::vec((delay(), 0u8..3), 1..400)
        ) {
            let mut wheel = WheelQueue::default();
            let mut binary = BinaryQueue::default();
            let mut reference: Vec<(u64, u64)> = Vec::new();
            let mut now = 0u64;
            for (seq, (delay, pops)) in schedule.into_iter().enumerate() {
                let seq = seq as u64;
                wheel.push(now + delay, seq);
                binary.push(now + delay, seq);
                reference.push((now + delay, seq));
                for _ in 0..pops {
                    reference.sort_unstable_by(|a, b| b.cmp(a));
                    let expected = reference.pop();
                    prop_assert_eq!(wheel.peek().map(|(t, s)| (t, *s)), expected);
                    prop_assert_eq!(wheel.pop(), expected);
                    prop_assert_eq!(binary.pop(), expected);
                    if let Some((t, _)) = expected {
                        now = t;
                    }
                }
                prop_assert_eq!(wheel.len(), reference.len());
                let mut seen: Vec<(u64, u64)> = wheel.iter().map(|(t, s)| (t, *s)).collect();
                seen.sort_unstable();
                let mut queued = reference.clone();
                queued.sort_unstable();
                prop_assert_eq!(seen, queued);
            }
        }
    }

    #[test]
    fn a_slot_popped_halfway_takes_later_pushes_at_its_time_in_order() {
        let mut q = WheelQueue::default();
        for i in 0..3 {
            q.push(70, i);
        }
        assert_eq!(q.pop(), Some((70, 0)));
        q.push(70, 3);
        q.push(71, 4);
        let rest: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, vec![(70, 1), (70, 2), (70, 3), (71, 4)]);
    }
}
