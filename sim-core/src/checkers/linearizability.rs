//! A linearizability checker: Wing and Gong's search with Lowe's memoization (the
//! algorithm porcupine uses).
//!
//! A history is a set of operations, each with a call time, a return time (or none, if
//! its outcome is unknown: it may have taken effect at any moment after its call), an
//! input and an output. It is linearizable if the operations can be put in one sequence,
//! respecting real-time order (an operation that returned before another was called comes
//! first), in which every output is what the sequential [`Model`] would give.
//!
//! The search walks the history in time order, tries to linearize each pending call next,
//! and backtracks when it reaches a return whose operation it could not place. It caches
//! each (set of linearized operations, model state) it has tried, which makes typical
//! histories near-linear. Check each key of a key/value history apart (linearizability is
//! compositional), which keeps the search small.

use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A sequential specification.
pub trait Model {
    /// The model's state, compared and hashed by the search's memo.
    type State: Clone + Eq + Hash + Debug;
    /// What an operation asks.
    type Input: Debug;
    /// What an operation returns.
    type Output: Debug;

    /// What the model's one object is called in reports ("key", "register").
    const OBJECT: &'static str = "object";

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` if `output` is what the model gives from `state`, else
    /// `None`. An `output` of `None` means the outcome is unknown: accept any.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Whether `input` never changes the state (a read). [`final_states`] places a read
    /// that fits the state as soon as it may come next, without trying it in other
    /// orders: placing it later never helps, since it changes nothing and taking it out
    /// only lets more operations come next. The default, `false`, is always correct.
    fn is_read(&self, _input: &Self::Input) -> bool {
        false
    }

    /// A 128-bit fingerprint of `state`: equal states must have equal fingerprints, and
    /// two different states should collide with negligible probability (the memo takes a
    /// match as "seen before"). The default hashes the state twice, with two unrelated
    /// hashes; a model whose states carry such a hash, computed once when the state was
    /// made, returns it instead of hashing the state at every configuration.
    fn fingerprint(&self, state: &Self::State) -> u128 {
        fingerprint(state)
    }

    /// How `input` reads in a report, on the object named `object` (`Put(k0,10)`). The
    /// default is its `Debug` form.
    fn show_input(&self, input: &Self::Input, object: &str) -> String {
        let _ = object;
        format!("{input:?}")
    }

    /// How `output` reads in a report. The default is its `Debug` form.
    fn show_output(&self, output: &Self::Output) -> String {
        format!("{output:?}")
    }
}

/// One operation of a history. Times are any monotone clock (virtual microseconds here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client that ran it.
    pub client: u64,
    /// When it was called.
    pub call: u64,
    /// `None`: the outcome is unknown (the operation may or may not have taken effect).
    pub ret: Option<u64>,
    /// What it asked.
    pub input: I,
    /// What it returned; `None` if unknown.
    pub output: Option<O>,
}

const NONE: usize = usize::MAX;

/// True if the history is linearizable with respect to `model`.
///
/// ```
/// use sim_core::checkers::linearizability::{check, Model, Operation};
///
/// /// A register holding one number, initially 0.
/// struct Register;
/// #[derive(Debug)]
/// enum Op { Write(u32), Read }
/// impl Model for Register {
///     type State = u32;
///     type Input = Op;
///     type Output = u32;
///     fn init(&self) -> u32 { 0 }
///     fn step(&self, s: &u32, input: &Op, out: Option<&u32>) -> Option<u32> {
///         match input {
///             Op::Write(v) => Some(*v),
///             Op::Read => (out.is_none() || out == Some(s)).then_some(*s),
///         }
///     }
/// }
/// let op = |call, ret, input, output| Operation { client: 0, call, ret: Some(ret), input, output };
/// // write(1) then read -> 1: fine. write(1) then read -> 0: not linearizable.
/// assert!(check(&Register, &[op(0, 1, Op::Write(1), None), op(2, 3, Op::Read, Some(1))]));
/// assert!(!check(&Register, &[op(0, 1, Op::Write(1), None), op(2, 3, Op::Read, Some(0))]));
/// ```
pub fn check<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>]) -> bool {
    check_from(model, &model.init(), ops)
}

/// Like [`check`], with the model starting in `init` instead of its initial state.
pub fn check_from<M: Model>(model: &M, init: &M::State, ops: &[Operation<M::Input, M::Output>]) -> bool {
    check_from_within(model, init, ops, usize::MAX).expect("an unbounded search always decides")
}

/// Like [`check_from`], giving up (`None`) once the search has visited more than `budget`
/// configurations. The search is exponential in the worst case (a non-linearizable
/// history with many overlapping operations must be refuted exhaustively); a checker run
/// after every step needs a bound.
pub fn check_from_within<M: Model>(
    model: &M,
    init: &M::State,
    ops: &[Operation<M::Input, M::Output>],
    budget: usize,
) -> Option<bool> {
    witness_within(model, init, ops, budget).map(|order| order.is_some())
}

/// Like [`check_from_within`], and when the history is linearizable, one linearization:
/// the indexes of `ops` in the order they take effect (every operation, pending ones
/// included). `None`: the budget ran out; `Some(None)`: not linearizable.
pub fn witness_within<M: Model>(
    model: &M,
    init: &M::State,
    ops: &[Operation<M::Input, M::Output>],
    budget: usize,
) -> Option<Option<Vec<usize>>> {
    if in_sequence(ops) {
        let order: Vec<usize> = (0..ops.len()).collect();
        return Some(is_linearization(model, init, ops, &order).then_some(order));
    }
    // Invariants check after every step, often on a handful of operations: reuse this
    // thread's buffers rather than allocate seven per check. (A nested call, should a
    // model ever make one, gets fresh buffers.)
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => search(model, init, ops, budget, &mut scratch),
        Err(_) => search(model, init, ops, budget, &mut Scratch::default()),
    })
}

/// One linearization of `ops` from `init` found without backtracking, if the obvious
/// choices lead to one: at each point, among the operations that may come next, a read
/// that fits the state (it changes nothing, so it never hurts; the first by index), else
/// the write that must return soonest (by return, then index) among those that fit. No
/// memo: a cheap first try before [`witness_within`]'s search, which it cannot replace
/// (`None` proves nothing).
///
/// O(n log n) when reads fit as they come: the operations enter the choice as real time
/// allows them (by call), writes wait ordered by return, and a read that did not fit is
/// tried again only after a write has changed the state. (It used to rescan every
/// operation at every step: 20,000 concurrent writes to one key took minutes.)
pub fn greedy_linearization<M: Model>(
    model: &M,
    init: &M::State,
    ops: &[Operation<M::Input, M::Output>],
) -> Option<Vec<usize>> {
    use std::collections::BTreeSet;
    let n = ops.len();
    let returns = |i: usize| ops[i].ret.unwrap_or(u64::MAX);
    // Not yet placed, by return: the first is the one that must return soonest, and
    // nothing called after it returned may come next.
    let mut unplaced: BTreeSet<(u64, usize)> = (0..n).map(|i| (returns(i), i)).collect();
    let mut by_call: Vec<usize> = (0..n).collect();
    by_call.sort_by_key(|&i| (ops[i].call, i));
    let mut called = 0;
    // The operations that may come next: reads not yet tried on this state, reads that
    // did not fit it, and writes by (return, index).
    let mut reads_untried = BTreeSet::new();
    let mut reads_unfit = Vec::new();
    let mut writes = BTreeSet::new();
    let mut order = Vec::with_capacity(n);
    let mut state = init.clone();
    while let Some(&(earliest, _)) = unplaced.first() {
        while let Some(&i) = by_call.get(called).filter(|&&i| ops[i].call <= earliest) {
            if model.is_read(&ops[i].input) {
                reads_untried.insert(i);
            } else {
                writes.insert((returns(i), i));
            }
            called += 1;
        }
        let step = |state: &M::State, i: usize| model.step(state, &ops[i].input, ops[i].output.as_ref());
        let mut read = None;
        while let Some(i) = reads_untried.pop_first() {
            match step(&state, i) {
                Some(after) => {
                    read = Some((i, after));
                    break;
                }
                None => reads_unfit.push(i),
            }
        }
        let (i, after) = match read {
            Some(read) => read,
            None => {
                let (key, after) =
                    writes.iter().find_map(|&key| step(&state, key.1).map(|after| (key, after)))?;
                writes.remove(&key);
                // The state may have changed: a read that did not fit may fit now.
                reads_untried.extend(reads_unfit.drain(..));
                (key.1, after)
            }
        };
        unplaced.remove(&(returns(i), i));
        order.push(i);
        state = after;
    }
    Some(order)
}

/// Empties a memo for a check of `n` operations. One grown by a huge check is dropped
/// rather than cleared: clearing costs its whole capacity, on every small check after it.
#[allow(clippy::disallowed_types)]
fn fresh_memo<K>(memo: &mut std::collections::HashSet<K, BuildHasherDefault<Fold>>, n: usize) {
    if memo.capacity() > 64 * (n + 64) {
        *memo = Default::default();
    }
    memo.clear();
}

/// Whether each operation returned before the next one was called: then real time allows
/// one order only, and checking is a replay. (Histories of one client, or of clients that
/// take turns, are mostly like this.)
fn in_sequence<I, O>(ops: &[Operation<I, O>]) -> bool {
    ops.windows(2).all(|pair| pair[0].ret.is_some_and(|ret| ret < pair[1].call))
}

/// Whether `order` (indexes of `ops`, each once) is a linearization of `ops` from `init`:
/// it respects real time (no operation comes after one that was called after it
/// returned) and every output is what the model gives. Linear in the operations: this is
/// how a checker re-confirms a linearization it found before, extended by what happened
/// since, without searching again.
pub fn is_linearization<M: Model>(
    model: &M,
    init: &M::State,
    ops: &[Operation<M::Input, M::Output>],
    order: &[usize],
) -> bool {
    replay(model, init, ops, order).is_some()
}

/// The state `order` leaves when it is a linearization of `ops` from `init` (see
/// [`is_linearization`]), `None` when it is not.
pub fn replay<M: Model>(
    model: &M,
    init: &M::State,
    ops: &[Operation<M::Input, M::Output>],
    order: &[usize],
) -> Option<M::State> {
    // An operation may follow another unless it returned before that one was called (at
    // equal times they overlap): compare each return with the latest call placed before.
    let mut latest_call = 0;
    let mut state = init.clone();
    for &i in order {
        let op = &ops[i];
        if op.ret.is_some_and(|ret| ret < latest_call) {
            return None;
        }
        latest_call = latest_call.max(op.call);
        state = model.step(&state, &op.input, op.output.as_ref())?;
    }
    Some(state)
}

/// Buffers for [`check_from`], kept per thread between checks.
#[derive(Default)]
struct Scratch {
    events: Vec<(u64, bool, usize)>,
    next: Vec<usize>,
    prev: Vec<usize>,
    return_node: Vec<usize>,
    /// Zobrist values by operation index (they depend on the index alone).
    zobrist: Vec<u128>,
    /// The memo: (set hash, 128-bit state fingerprint), so no state is cloned into it.
    /// Never iterated: only asked "seen before?", so its order cannot leak. Hashed with a
    /// fast fold rather than SipHash: nothing here is adversarial.
    #[allow(clippy::disallowed_types)]
    cache: std::collections::HashSet<(u128, u128), BuildHasherDefault<Fold>>,
    /// Fingerprints of the final states found so far (for [`final_states`]; likewise
    /// never iterated).
    #[allow(clippy::disallowed_types)]
    finals_seen: std::collections::HashSet<u128, BuildHasherDefault<Fold>>,
    /// For [`final_states`]: operation indexes by call and by return, how many operations
    /// (in call order) were called by each return, and which are done.
    by_call: Vec<usize>,
    by_return: Vec<usize>,
    callable: Vec<usize>,
    done: Vec<bool>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

fn search<M: Model>(
    model: &M,
    init: &M::State,
    ops: &[Operation<M::Input, M::Output>],
    budget: usize,
    scratch: &mut Scratch,
) -> Option<Option<Vec<usize>>> {
    let Scratch { events, next, prev, return_node, zobrist, cache, .. } = scratch;
    // Events in time order; at equal times calls come first (overlap is the lenient view).
    events.clear();
    for (i, op) in ops.iter().enumerate() {
        if let Some(ret) = op.ret {
            assert!(ret >= op.call, "operation {i} returns before it is called");
        }
        events.push((op.call, false, i));
        events.push((op.ret.unwrap_or(u64::MAX), true, i));
    }
    events.sort_unstable();
    // Which calls the search may take next depends only on where the returns are, not on
    // the order of calls between two returns: within each such run, put the operations
    // still pending last, so that the search tries first what has returned (a pending
    // operation fits anywhere later, usually at the end; tried early, it multiplies the
    // configurations to visit).
    let mut run = 0;
    while run < events.len() {
        let end = events[run..].iter().position(|event| event.1).map_or(events.len(), |k| run + k);
        events[run..end].sort_by_key(|&(_, _, i)| ops[i].ret.is_none());
        run = end + 1;
    }

    // A doubly linked list over the events; node 0 is the head, event k is node k + 1.
    let n_events = events.len();
    next.clear();
    next.extend((1..=n_events).chain([NONE]));
    prev.clear();
    prev.extend(std::iter::once(NONE).chain(0..n_events));
    return_node.clear();
    return_node.resize(ops.len(), 0);
    for (k, &(_, is_return, op)) in events.iter().enumerate() {
        if is_return {
            return_node[op] = k + 1;
        }
    }

    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        next[prev[node]] = next[node];
        if next[node] != NONE {
            prev[next[node]] = prev[node];
        }
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        next[prev[node]] = node;
        if next[node] != NONE {
            prev[next[node]] = node;
        }
    };

    // The set of linearized operations, as a 128-bit Zobrist hash: each operation has a
    // fixed random 128-bit value, XORed in when linearized and out when undone. The memo
    // keys on it rather than on the set itself, so a step costs O(1), not O(n / 64); two
    // different sets collide with probability about 2^-128 per pair.
    while zobrist.len() < ops.len() {
        zobrist.push(zobrist_value(zobrist.len() as u64));
    }
    let mut linearized: u128 = 0;
    fresh_memo(cache, ops.len());
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut state = init.clone();
    let mut node = next[0];
    while next[0] != NONE {
        assert!(node != NONE, "the search ran past the end of the history");
        let (_, is_return, op) = events[node - 1];
        if !is_return {
            let operation = &ops[op];
            if let Some(new_state) = model.step(&state, &operation.input, operation.output.as_ref()) {
                linearized ^= zobrist[op];
                if cache.insert((linearized, model.fingerprint(&new_state))) {
                    if cache.len() > budget {
                        return None;
                    }
                    stack.push((node, std::mem::replace(&mut state, new_state)));
                    lift(next, prev, node);
                    lift(next, prev, return_node[op]);
                    node = next[0];
                    continue;
                }
                linearized ^= zobrist[op];
            }
            node = next[node];
        } else {
            let Some((call_node, old_state)) = stack.pop() else {
                return Some(None);
            };
            let op = events[call_node - 1].2;
            linearized ^= zobrist[op];
            state = old_state;
            unlift(next, prev, return_node[op]);
            unlift(next, prev, call_node);
            node = next[call_node];
        }
    }
    // The stack holds every operation, in the order the search linearized them.
    Some(Some(stack.iter().map(|&(call_node, _)| events[call_node - 1].2).collect()))
}

/// Every state the model can end in after some linearization of `ops`, starting from any
/// of `inits`. Empty if `ops` has no linearization. Every operation must have returned.
///
/// This is what lets a checker forget a settled history: once no operation on an object is
/// in flight, everything later must be ordered after everything so far, so the history so
/// far is summed up exactly by these states.
///
/// ```
/// use sim_core::checkers::linearizability::{final_states, Model, Operation};
/// struct Register;
/// impl Model for Register {
///     type State = u32;
///     type Input = u32; // write this value
///     type Output = ();
///     fn init(&self) -> u32 { 0 }
///     fn step(&self, _: &u32, v: &u32, _: Option<&()>) -> Option<u32> { Some(*v) }
/// }
/// // Two overlapping writes: either may land last.
/// let w = |v, call, ret| Operation { client: v as u64, call, ret: Some(ret), input: v, output: None };
/// let mut states = final_states(&Register, &[0], &[w(1, 0, 3), w(2, 1, 2)]);
/// states.sort();
/// assert_eq!(states, vec![1, 2]);
/// ```
pub fn final_states<M: Model>(
    model: &M,
    inits: &[M::State],
    ops: &[Operation<M::Input, M::Output>],
) -> Vec<M::State> {
    final_states_within(model, inits, ops, usize::MAX).expect("an unbounded search always ends")
}

/// Like [`final_states`], giving up (`None`) once more than `budget` configurations have
/// been visited: enumerating every interleaving is exponential in how many operations
/// overlap.
pub fn final_states_within<M: Model>(
    model: &M,
    inits: &[M::State],
    ops: &[Operation<M::Input, M::Output>],
    budget: usize,
) -> Option<Vec<M::State>> {
    if in_sequence(ops) {
        // One order only: each start state leads to one end state, or to none.
        let mut finals: Vec<M::State> = Vec::new();
        for init in inits {
            let end = ops
                .iter()
                .try_fold(init.clone(), |state, op| model.step(&state, &op.input, op.output.as_ref()));
            if let Some(end) = end.filter(|end| !finals.contains(end)) {
                finals.push(end);
            }
        }
        return Some(finals);
    }
    // Reuse this thread's buffers, as `search` does (a nested call gets fresh ones).
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => enumerate_finals(model, inits, ops, budget, &mut scratch),
        Err(_) => enumerate_finals(model, inits, ops, budget, &mut Scratch::default()),
    })
}

fn enumerate_finals<M: Model>(
    model: &M,
    inits: &[M::State],
    ops: &[Operation<M::Input, M::Output>],
    budget: usize,
    scratch: &mut Scratch,
) -> Option<Vec<M::State>> {
    let n = ops.len();
    let returns = |i: usize| ops[i].ret.expect("final_states needs every operation returned");
    let Scratch { zobrist, cache: seen, finals_seen: final_seen, by_call, by_return, callable, done, .. } =
        scratch;
    while zobrist.len() < n {
        zobrist.push(zobrist_value(zobrist.len() as u64));
    }
    fresh_memo(seen, n);
    fresh_memo(final_seen, n);
    // An operation can come next if no other pending one returned before it was called (at
    // equal times the call counts as first, as in `check`): its call is at most the
    // earliest return among the pending operations. With the operations ranked by call and
    // by return, that earliest return is the first pending one in return order, and the
    // operations that may come next are pending ones in a stretch of the call order (from
    // the first pending one to `callable` of that return), usually a few overlapping ones,
    // rather than all of them.
    by_call.clear();
    by_call.extend(0..n);
    by_call.sort_by_key(|&i| (ops[i].call, i));
    by_return.clear();
    by_return.extend(0..n);
    by_return.sort_by_key(|&i| (returns(i), i));
    callable.clear();
    callable.extend(by_return.iter().map(|&i| by_call.partition_point(|&j| ops[j].call <= returns(i))));
    done.clear();
    done.resize(n, false);
    // The first pending operation at or after `from` in an order.
    let first_pending = |done: &[bool], order: &[usize], mut from: usize| {
        while from < n && done[order[from]] {
            from += 1;
        }
        from
    };
    let mut finals = Vec::new();
    // Depth first, one `done` set shared by the whole walk and undone on the way back, so
    // that visiting a configuration allocates nothing. A frame: the state, the set's hash,
    // the first pending operation in return order and in call order, the next position in
    // call order to try (`NONE` before the first visit), and the operation whose placing
    // made it.
    let mut frames = Vec::new();
    for init in inits {
        frames.push((init.clone(), 0u128, 0usize, 0usize, NONE, NONE));
        while let Some((state, set, first_return, first_call, next, _)) = frames.last_mut() {
            if *first_return == n {
                // Every operation is done: one way the history can end.
                if final_seen.insert(model.fingerprint(state)) {
                    finals.push(state.clone());
                }
                let (.., placed) = frames.pop().expect("the frame just looked at");
                if placed != NONE {
                    done[placed] = false;
                }
                continue;
            }
            let (first_return, first_call) = (*first_return, *first_call);
            let may_come = first_call..callable[first_return];
            let mut placed = None;
            if *next == NONE {
                // A read that may come next and fits: placed now, and nothing else tried.
                let read = may_come.clone().map(|position| by_call[position]).find_map(|i| {
                    if done[i] || !model.is_read(&ops[i].input) {
                        return None;
                    }
                    model.step(state, &ops[i].input, ops[i].output.as_ref()).map(|after| (i, after))
                });
                if let Some((i, after)) = read {
                    *next = n;
                    let after_set = *set ^ zobrist[i];
                    if seen.insert((after_set, model.fingerprint(&after))) {
                        placed = Some((i, after, after_set));
                    }
                } else {
                    *next = first_call;
                }
            }
            if placed.is_none() {
                placed = (*next..may_come.end).find_map(|position| {
                    let i = by_call[position];
                    if done[i] {
                        return None;
                    }
                    *next = position + 1;
                    let after = model.step(state, &ops[i].input, ops[i].output.as_ref())?;
                    let after_set = *set ^ zobrist[i];
                    seen.insert((after_set, model.fingerprint(&after))).then_some((i, after, after_set))
                });
                if placed.is_none() {
                    *next = n;
                }
            }
            match placed {
                Some((i, after, after_set)) => {
                    if seen.len() > budget {
                        return None;
                    }
                    done[i] = true;
                    let first_return = first_pending(done, by_return, first_return);
                    let first_call = first_pending(done, by_call, first_call);
                    frames.push((after, after_set, first_return, first_call, NONE, i));
                }
                None => {
                    let (.., placed) = frames.pop().expect("the frame just looked at");
                    if placed != NONE {
                        done[placed] = false;
                    }
                }
            }
        }
    }
    Some(finals)
}

/// A fast multiplicative hasher for the memo cache (Fx-style: rotate, xor, multiply per
/// word).
#[derive(Default)]
struct Fold(u64);

impl Hasher for Fold {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.write_u64(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        for &byte in chunks.remainder() {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u128(&mut self, word: u128) {
        self.write_u64(word as u64);
        self.write_u64((word >> 64) as u64);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

/// A 128-bit fingerprint of a model state from two structurally different hashes (the
/// multiplicative fold and SipHash-1-3 with fixed keys), so a collision in one is no hint
/// of a collision in the other. Deterministic for a given build; never leaves the checker.
fn fingerprint<S: Hash>(state: &S) -> u128 {
    let mut fold = Fold(0x243f_6a88_85a3_08d3);
    state.hash(&mut fold);
    let mut sip = std::collections::hash_map::DefaultHasher::new();
    state.hash(&mut sip);
    (u128::from(fold.finish()) << 64) | u128::from(sip.finish())
}

/// Operation `i`'s Zobrist value: two rounds of splitmix64, fixed for every run.
fn zobrist_value(i: u64) -> u128 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let high = mix(i.wrapping_mul(2));
    let low = mix(i.wrapping_mul(2) + 1);
    (u128::from(high) << 64) | u128::from(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Register;
    #[derive(Debug)]
    enum Op {
        Write(u32),
        Read,
    }
    impl Model for Register {
        type State = u32;
        type Input = Op;
        type Output = u32;
        fn init(&self) -> u32 {
            0
        }
        fn step(&self, s: &u32, input: &Op, out: Option<&u32>) -> Option<u32> {
            match input {
                Op::Write(v) => Some(*v),
                Op::Read => (out.is_none() || out == Some(s)).then_some(*s),
            }
        }
        // So that `final_states` takes its shortcut for reads, which the tests below
        // compare against `check`, which does not.
        fn is_read(&self, input: &Op) -> bool {
            matches!(input, Op::Read)
        }
    }

    fn op(client: u64, call: u64, ret: Option<u64>, input: Op, output: Option<u32>) -> Operation<Op, u32> {
        Operation { client, call, ret, input, output }
    }

    /// Adds to `out` the end state of every order of the operations in `left`, from
    /// `state`, that respects real time (pending operations return never) and in which
    /// every step fits: the brute force the checker is tested against.
    fn ends(ops: &[Operation<Op, u32>], state: u32, left: &mut Vec<usize>, out: &mut Vec<u32>) {
        if left.is_empty() {
            if !out.contains(&state) {
                out.push(state);
            }
            return;
        }
        for k in 0..left.len() {
            let i = left[k];
            let blocked = left.iter().any(|&j| ops[j].ret.is_some_and(|ret| ret < ops[i].call));
            if let (false, Some(after)) =
                (blocked, Register.step(&state, &ops[i].input, ops[i].output.as_ref()))
            {
                left.remove(k);
                ends(ops, after, left, out);
                left.insert(k, i);
            }
        }
    }

    #[test]
    fn concurrent_write_may_be_seen_or_not() {
        let seen = [op(0, 0, Some(10), Op::Write(1), None), op(1, 2, Some(3), Op::Read, Some(1))];
        let unseen = [op(0, 0, Some(10), Op::Write(1), None), op(1, 2, Some(3), Op::Read, Some(0))];
        assert!(check(&Register, &seen));
        assert!(check(&Register, &unseen));
    }

    /// Splitting a history at a point no operation spans, and carrying the final states
    /// across, gives the same verdict as checking it whole.
    #[test]
    fn final_states_summarize_a_prefix_exactly() {
        use crate::rng::{SimRng, Stream};
        for seed in 0..300 {
            let mut rng = SimRng::new(seed, Stream::Workload);
            let mut ops = Vec::new();
            let mut t = 0;
            // Two rounds of up to 3 overlapping operations, split at a quiet moment.
            let mut cut = 0;
            for round in 0..2 {
                let start = t;
                for client in 0..1 + rng.below(3) {
                    let call = start + rng.below(5);
                    let ret = call + 1 + rng.below(5);
                    t = t.max(ret + 1);
                    let input = if rng.chance(0.5) { Op::Write(rng.below(3) as u32) } else { Op::Read };
                    let output = match input {
                        Op::Read => Some(rng.below(3) as u32),
                        Op::Write(_) => None,
                    };
                    ops.push(op(client, call, Some(ret), input, output));
                }
                if round == 0 {
                    cut = ops.len();
                }
            }
            let whole = check(&Register, &ops);
            if let Some(order) = greedy_linearization(&Register, &0, &ops) {
                assert!(whole && is_linearization(&Register, &0, &ops, &order), "seed {seed}: {ops:?}");
            }
            let states = final_states(&Register, &[0], &ops[..cut]);
            let split = states.iter().any(|s| check_from(&Register, s, &ops[cut..]));
            assert_eq!(whole, split, "seed {seed}: {ops:?}");
        }
    }

    /// `final_states` (which ranks operations by call and by return, and places fitting
    /// reads at once) gives exactly the end states of every order that respects real time,
    /// on random histories listed in no particular order.
    #[test]
    fn final_states_are_the_ends_of_every_linearization() {
        use crate::rng::{SimRng, Stream};
        for seed in 0..500 {
            let mut rng = SimRng::new(seed, Stream::Workload);
            let ops: Vec<_> = (0..1 + rng.below(6))
                .map(|client| {
                    let call = rng.below(8);
                    let ret = call + rng.below(6);
                    let input = if rng.chance(0.5) { Op::Write(rng.below(3) as u32) } else { Op::Read };
                    let output = matches!(input, Op::Read).then(|| rng.below(3) as u32);
                    op(client, call, Some(ret), input, output)
                })
                .collect();
            let inits = [0, 1 + rng.below(2) as u32];
            let mut expected = Vec::new();
            for &init in &inits {
                ends(&ops, init, &mut (0..ops.len()).collect(), &mut expected);
            }
            expected.sort();
            let mut got = final_states(&Register, &inits, &ops);
            got.sort();
            assert_eq!(got, expected, "seed {seed}: {ops:?}");
        }
    }

    /// The search (which tries operations that have returned before pending ones) finds a
    /// linearization exactly when some order of every operation that respects real time
    /// explains every output, on random histories in which some operations are pending.
    #[test]
    fn the_search_agrees_with_every_order_when_some_are_pending() {
        use crate::rng::{SimRng, Stream};
        let (mut yes, mut no) = (0, 0);
        for seed in 0..1000 {
            let mut rng = SimRng::new(seed, Stream::Workload);
            let ops: Vec<_> = (0..1 + rng.below(7))
                .map(|client| {
                    let call = rng.below(8);
                    let pending = rng.chance(0.3);
                    let ret = (!pending).then(|| call + rng.below(6));
                    let input = if rng.chance(0.5) { Op::Write(1 + rng.below(3) as u32) } else { Op::Read };
                    let output = (matches!(input, Op::Read) && !pending).then(|| rng.below(4) as u32);
                    op(client, call, ret, input, output)
                })
                .collect();
            let mut every_end = Vec::new();
            ends(&ops, 0, &mut (0..ops.len()).collect(), &mut every_end);
            let expected = !every_end.is_empty();
            let found = witness_within(&Register, &0, &ops, usize::MAX).expect("unbounded");
            assert_eq!(found.is_some(), expected, "seed {seed}: {ops:?}");
            if let Some(order) = found {
                assert!(is_linearization(&Register, &0, &ops, &order), "seed {seed}: {ops:?}");
                yes += 1;
            } else {
                no += 1;
            }
        }
        assert!(yes > 200 && no > 200, "{yes} linearizable, {no} not");
    }

    /// The order a search finds is a linearization; breaking its real-time order or an
    /// output makes it one no longer.
    #[test]
    fn a_witness_replays_and_a_wrong_order_does_not() {
        let ops = [
            op(0, 0, Some(2), Op::Write(1), None),
            op(1, 3, Some(5), Op::Write(2), None),
            op(2, 4, Some(6), Op::Read, Some(2)),
            op(0, 7, None, Op::Read, None),
        ];
        let order = witness_within(&Register, &0, &ops, usize::MAX).expect("decided").expect("linearizable");
        assert_eq!(order.len(), ops.len());
        assert!(is_linearization(&Register, &0, &ops, &order));
        // Write(2) before Write(1), which returned before it was called.
        assert!(!is_linearization(&Register, &0, &ops, &[1, 0, 2, 3]));
        // The read of 2 before Write(2).
        assert!(!is_linearization(&Register, &0, &ops, &[0, 2, 1, 3]));
        assert_eq!(witness_within(&Register, &0, &ops[..3], usize::MAX).map(|w| w.is_some()), Some(true));
        let wrong = [op(0, 0, Some(2), Op::Write(1), None), op(1, 3, Some(4), Op::Read, Some(0))];
        assert_eq!(witness_within(&Register, &0, &wrong, usize::MAX), Some(None));
    }

    /// What the greedy order finds is a linearization; where its choices lead nowhere it
    /// says nothing, and the search still finds one.
    #[test]
    fn the_greedy_order_is_a_linearization_or_nothing() {
        let ops = [
            op(0, 0, Some(10), Op::Write(1), None),
            op(1, 0, Some(10), Op::Write(2), None),
            op(2, 1, Some(2), Op::Read, Some(2)),
            op(3, 3, Some(4), Op::Read, Some(1)),
        ];
        // Greedy places Write(1) first (it is first among equal returns): a dead end.
        assert_eq!(greedy_linearization(&Register, &0, &ops), None);
        assert!(check(&Register, &ops));
        let easy = &ops[..3];
        let order = greedy_linearization(&Register, &0, easy).expect("an obvious order");
        assert!(is_linearization(&Register, &0, easy, &order));
    }

    #[test]
    fn a_bounded_search_gives_up_instead_of_exploding() {
        // Twelve overlapping writes, then a read nothing can explain: refuting it means
        // trying every order of the writes.
        let mut ops: Vec<_> = (0..12).map(|i| op(i, 0, Some(100), Op::Write(i as u32 + 1), None)).collect();
        ops.push(op(99, 200, Some(201), Op::Read, Some(77)));
        assert_eq!(check_from_within(&Register, &0, &ops, 1_000), None);
        assert_eq!(check_from_within(&Register, &0, &ops, usize::MAX), Some(false));
        assert_eq!(final_states_within(&Register, &[0], &ops[..12], 100), None);
        assert_eq!(final_states_within(&Register, &[0], &ops[..12], usize::MAX).map(|f| f.len()), Some(12));
    }

    #[test]
    fn stale_read_after_two_writes_is_caught() {
        // The lecture's anomaly: put 10, put 20, then a read of 10.
        let history = [
            op(0, 0, Some(1), Op::Write(10), None),
            op(0, 2, Some(3), Op::Write(20), None),
            op(0, 4, Some(5), Op::Read, Some(10)),
        ];
        assert!(!check(&Register, &history));
    }

    #[test]
    fn unknown_outcome_may_take_effect_late_or_never() {
        let late = [
            op(0, 0, None, Op::Write(7), None),
            op(1, 5, Some(6), Op::Read, Some(0)),
            op(1, 7, Some(8), Op::Read, Some(7)),
        ];
        let never = [op(0, 0, None, Op::Write(7), None), op(1, 5, Some(6), Op::Read, Some(0))];
        assert!(check(&Register, &late));
        assert!(check(&Register, &never));
        let flip_back = [
            op(0, 0, None, Op::Write(7), None),
            op(1, 5, Some(6), Op::Read, Some(7)),
            op(1, 7, Some(8), Op::Read, Some(0)),
        ];
        assert!(!check(&Register, &flip_back));
    }
    /// The greedy order as first written (a rescan of every operation at each step, so
    /// quadratic): the fast one must choose exactly as it did.
    fn greedy_reference(ops: &[Operation<Op, u32>]) -> Option<Vec<usize>> {
        let n = ops.len();
        let returns = |i: usize| ops[i].ret.unwrap_or(u64::MAX);
        let mut done = vec![false; n];
        let mut order = Vec::with_capacity(n);
        let mut state = 0;
        while order.len() < n {
            let earliest = (0..n).filter(|&i| !done[i]).map(returns).min().expect("one is pending");
            let may_come = |i: &usize| !done[*i] && ops[*i].call <= earliest;
            let step =
                |i: usize| Register.step(&state, &ops[i].input, ops[i].output.as_ref()).map(|a| (i, a));
            let read = (0..n).filter(may_come).filter(|&i| Register.is_read(&ops[i].input)).find_map(step);
            let (i, after) = match read {
                Some(read) => read,
                None => {
                    let mut writes: Vec<usize> =
                        (0..n).filter(may_come).filter(|&i| !Register.is_read(&ops[i].input)).collect();
                    writes.sort_by_key(|&i| (returns(i), i));
                    writes.iter().find_map(|&i| step(i))?
                }
            };
            done[i] = true;
            order.push(i);
            state = after;
        }
        Some(order)
    }

    #[test]
    fn the_greedy_order_is_the_one_the_quadratic_rescan_chose() {
        use crate::rng::{SimRng, Stream};
        for seed in 0..2_000 {
            let mut rng = SimRng::new(seed, Stream::Workload);
            let ops: Vec<_> = (0..1 + rng.below(12))
                .map(|client| {
                    let call = rng.below(20);
                    let ret = (!rng.chance(0.1)).then(|| call + 1 + rng.below(10));
                    let input = if rng.chance(0.5) { Op::Write(rng.below(3) as u32) } else { Op::Read };
                    let output = matches!(input, Op::Read).then(|| rng.below(3) as u32);
                    op(client, call, ret, input, output)
                })
                .collect();
            assert_eq!(
                greedy_linearization(&Register, &0, &ops),
                greedy_reference(&ops),
                "seed {seed}: {ops:?}"
            );
        }
    }
    /// The greedy order does work in proportion to the operations, not their square: each
    /// operation is asked `is_read` once, and with writes that all fit, stepped once.
    /// (Counted, not timed: the rescan it replaced asked every operation at every step.)
    #[test]
    fn the_greedy_order_asks_each_operation_once() {
        use std::cell::Cell;
        struct Counting {
            reads: Cell<usize>,
            steps: Cell<usize>,
        }
        impl Model for Counting {
            type State = u32;
            type Input = Op;
            type Output = u32;
            fn init(&self) -> u32 {
                0
            }
            fn step(&self, s: &u32, input: &Op, out: Option<&u32>) -> Option<u32> {
                self.steps.set(self.steps.get() + 1);
                Register.step(s, input, out)
            }
            fn is_read(&self, input: &Op) -> bool {
                self.reads.set(self.reads.get() + 1);
                Register.is_read(input)
            }
        }
        // 20,000 one-operation clients writing one key at once: the issue's slow case.
        let n = 20_000u64;
        let ops: Vec<_> = (0..n).map(|c| op(c, c, Some(n + c), Op::Write(c as u32), None)).collect();
        let model = Counting { reads: Cell::new(0), steps: Cell::new(0) };
        let order = greedy_linearization(&model, &0, &ops).expect("writes always fit");
        assert_eq!(order.len(), ops.len());
        assert_eq!(model.reads.get(), ops.len());
        assert_eq!(model.steps.get(), ops.len());
    }
}
