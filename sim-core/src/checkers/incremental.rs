//! Linearizability checked as a run goes: one object's history (a key of a key/value
//! store, a register, a queue), checked again whenever an invariant asks, at a cost that
//! follows what happened since the object was last quiet rather than the whole run.
//!
//! [`ObjectHistory`] takes operations as they are called and return, and notes of when a
//! server actually ran one (ground truth a simulator has and a client does not). Its
//! [`check`](ObjectHistory::check) says whether everything so far is linearizable against a
//! sequential [`Model`], exactly as a check of the whole history by
//! [`linearizability`](super::linearizability) would, and gives up (undecided) only where
//! that whole-history search would run out of its budget too.
//!
//! ```
//! use sim_core::checkers::incremental::ObjectHistory;
//! use sim_core::checkers::linearizability::Operation;
//! use sim_core::checkers::models::{Mutex, MutexInput};
//! use sim_core::SimTime;
//!
//! let mut lock = ObjectHistory::new(Mutex, "m");
//! let t = SimTime::ZERO;
//! let op = |client, call| Operation { client, call, ret: None, input: MutexInput::Acquire, output: None };
//! // Client 0 acquires the lock; then client 1 acquires it too, and nobody released it.
//! let first = lock.invoke(op(0, 0), t);
//! lock.complete(first, 1, Some(()), t);
//! assert!(lock.check(1_000).is_ok());
//! let second = lock.invoke(op(1, 2), t);
//! lock.complete(second, 3, Some(()), t);
//! assert!(lock.check(1_000).is_err());
//! ```
//!
//! How: the history is kept in three parts. Settled exactly: summed up by every state it
//! can leave ([`linearizability::final_states_within`]), its operations forgotten. Settled
//! lazily: replayed along the one linearization a check found, summed up by the state that
//! leaves, kept until a check needs the exact states. And the window since the object was
//! last quiet (nothing in flight), which every later operation comes after. A check first
//! tries to extend the last linearization it found, then the order the servers ran the
//! operations in (a linearization whenever they are correct), then a cheap greedy order;
//! only when none fits does it settle everything exactly and search.
//!
//! Operations whose client gave up have an outcome the client never learns. Left open,
//! such an operation keeps its object from ever being quiet again. The servers' notes
//! close it instead: if a server ran it, it took effect by then (its interval ends at the
//! note); if none has yet, it had no effect so far (see [`give_up`](ObjectHistory::give_up)),
//! and should a server run it later, the caller adds it anew, pinned at that moment. Both
//! only narrow the orders allowed, and the servers' real order stays among them, so a
//! correct server is never failed.

use super::linearizability::{self, Model, Operation};
use crate::{CheckError, SimTime, DEFAULT_SEARCH_BUDGET};
use std::collections::VecDeque;

/// The virtual times of an operation's call and return (none yet, or never).
type Times = (SimTime, Option<SimTime>);

/// How many configurations settling exactly may visit at most when nothing is in flight.
pub const SETTLE_BUDGET: usize = DEFAULT_SEARCH_BUDGET;

/// Configurations per operation that settling a window's quiet prefix may visit while the
/// object is busy (see `ObjectHistory::check`), and that a search from a lazily settled
/// state may visit before the check settles exactly instead.
const SETTLE_BUDGET_PER_OP: usize = 16;

/// Operations settled lazily before they are settled exactly whatever happens (so that
/// what an object keeps stays bounded).
pub const LAZY_MAX: usize = 1 << 14;

/// Operations shown when a check fails.
const RECENT_SHOWN: usize = 12;

/// An operation as the history keeps it: as called, or given up on before any server ran
/// it (then it has had no effect, over its whole interval).
#[derive(Clone, Debug)]
enum Effect<I> {
    Called(I),
    NotRun(I),
}

/// `M` over [`Effect`]s: an operation given up on and not run changes nothing.
struct WithGiveUps<'a, M>(&'a M);

impl<M: Model> Model for WithGiveUps<'_, M> {
    type State = M::State;
    type Input = Effect<M::Input>;
    type Output = M::Output;

    fn init(&self) -> M::State {
        self.0.init()
    }

    fn step(&self, state: &M::State, input: &Self::Input, output: Option<&M::Output>) -> Option<M::State> {
        match input {
            Effect::Called(input) => self.0.step(state, input, output),
            Effect::NotRun(_) => Some(state.clone()),
        }
    }

    fn is_read(&self, input: &Self::Input) -> bool {
        match input {
            Effect::Called(input) => self.0.is_read(input),
            Effect::NotRun(_) => true,
        }
    }

    fn fingerprint(&self, state: &M::State) -> u128 {
        self.0.fingerprint(state)
    }
}

type Kept<M> = Operation<Effect<<M as Model>::Input>, <M as Model>::Output>;

/// One object's history, checked incrementally (see the [module](self) docs).
///
/// Positions: [`invoke`](Self::invoke) returns the operation's position among all the
/// object's operations, by which the caller completes it. Call and return "times" in
/// [`Operation`] are positions in one history all objects share (an operation that
/// returned before another was called has a smaller `ret` than the other's `call`); the
/// [`SimTime`]s are kept for reports only.
pub struct ObjectHistory<M: Model> {
    model: M,
    /// The object's name, for reports (`k0`).
    object: String,
    /// The states the window may start from: every state the history before it can leave
    /// while nothing is settled lazily, else the one state the linearization found of the
    /// lazy part leaves.
    settled: Vec<M::State>,
    /// Every state the history before the lazy part can leave (the initial state before
    /// anything). Meaningful only while the lazy part is not empty (`settled` otherwise).
    exact: Vec<M::State>,
    /// The operations not forgotten: the lazy part (`..window`), then the window.
    ops: Vec<Kept<M>>,
    /// Aligned with `ops`: the virtual times of each call and return, for reports.
    times: Vec<Times>,
    /// Aligned with `ops`: where in the history a server first ran each (`NOT_RUN`).
    executed: Vec<u64>,
    /// Where the window starts in `ops`.
    window: usize,
    /// Where each quiet segment of the lazy part ends in `ops`.
    lazy_ends: Vec<usize>,
    /// How many operations were settled exactly and forgotten (they came before `ops`).
    forgotten: usize,
    /// Operations invoked and not returned. One whose client gave up and that no note
    /// closes never returns: the object is then never quiet again.
    in_flight: usize,
    /// How many operations the window had when the object was last quiet, if it was since
    /// the window began: that prefix can be settled even if the object is busy again.
    quiet_len: usize,
    /// The last operations settled exactly, shown when a later check fails.
    recent: VecDeque<(Kept<M>, Times)>,
    /// Settle exactly only once the window has this many operations (after a settle that
    /// ran out of budget, twice the window it failed on).
    compact_at_len: usize,
    /// The linearization of the window the last check found (indexes into the window),
    /// from `settled[witness_start]`; empty if none is known. The next check first tries
    /// it extended by the new operations in call order: a replay instead of a search.
    witness: Vec<usize>,
    witness_start: usize,
    settle_budget: usize,
    lazy_max: usize,
}

/// A copy, state and all (`dsim explore` copies the invariants at every branch).
impl<M: Model + Clone> Clone for ObjectHistory<M>
where
    M::State: Clone,
    M::Input: Clone,
    M::Output: Clone,
{
    fn clone(&self) -> Self {
        ObjectHistory {
            model: self.model.clone(),
            object: self.object.clone(),
            settled: self.settled.clone(),
            exact: self.exact.clone(),
            ops: self.ops.clone(),
            times: self.times.clone(),
            executed: self.executed.clone(),
            window: self.window,
            lazy_ends: self.lazy_ends.clone(),
            forgotten: self.forgotten,
            in_flight: self.in_flight,
            quiet_len: self.quiet_len,
            recent: self.recent.clone(),
            compact_at_len: self.compact_at_len,
            witness: self.witness.clone(),
            witness_start: self.witness_start,
            settle_budget: self.settle_budget,
            lazy_max: self.lazy_max,
        }
    }
}

/// `executed` of an operation no server has run.
const NOT_RUN: u64 = u64::MAX;

impl<M: Model> ObjectHistory<M>
where
    M::Input: Clone,
    M::Output: Clone,
{
    /// An object no operation has touched, in `model`'s initial state; `object` names it in
    /// reports (a key: `k0`).
    pub fn new(model: M, object: impl Into<String>) -> ObjectHistory<M> {
        let init = model.init();
        ObjectHistory {
            model,
            object: object.into(),
            settled: vec![init],
            exact: Vec::new(),
            ops: Vec::new(),
            times: Vec::new(),
            executed: Vec::new(),
            window: 0,
            lazy_ends: Vec::new(),
            forgotten: 0,
            in_flight: 0,
            quiet_len: 0,
            recent: VecDeque::new(),
            compact_at_len: 0,
            witness: Vec::new(),
            witness_start: 0,
            settle_budget: SETTLE_BUDGET,
            lazy_max: LAZY_MAX,
        }
    }

    /// The same, with other bounds on settling: configurations settling exactly may visit
    /// when nothing is in flight (default [`SETTLE_BUDGET`]), and operations settled lazily
    /// before they are settled exactly (default [`LAZY_MAX`]). Verdicts do not depend on
    /// them, only costs; tests make them small to exercise every path.
    pub fn with_bounds(mut self, settle_budget: usize, lazy_max: usize) -> ObjectHistory<M> {
        self.settle_budget = settle_budget;
        self.lazy_max = lazy_max.max(1);
        self
    }

    /// Adds an operation just called (`ret` and `output` are ignored); returns its
    /// position among all the object's operations.
    pub fn invoke(&mut self, op: Operation<M::Input, M::Output>, time: SimTime) -> usize {
        self.ops.push(Operation {
            client: op.client,
            call: op.call,
            ret: None,
            input: Effect::Called(op.input),
            output: None,
        });
        self.times.push((time, None));
        self.executed.push(NOT_RUN);
        self.in_flight += 1;
        self.forgotten + self.ops.len() - 1
    }

    /// A server ran the operation at `position` (if it is still kept) at history position
    /// `at`: ground truth, tried as the order of a linearization before any search.
    pub fn executed(&mut self, position: usize, at: u64) {
        if let Some(executed) = position.checked_sub(self.forgotten).and_then(|i| self.executed.get_mut(i)) {
            *executed = (*executed).min(at);
        }
    }

    /// The client of the open operation at `position` gave up on it at history position
    /// `now`. If a server ran it (at `executed`), it took effect by then; else it has had no
    /// effect over its whole interval (should a server run it later, invoke and complete it
    /// anew at that moment).
    pub fn give_up(&mut self, position: usize, executed: Option<u64>, now: u64, time: SimTime) {
        match executed {
            None => {
                let op = &mut self.ops[position - self.forgotten];
                if let Effect::Called(input) = &op.input {
                    op.input = Effect::NotRun(input.clone());
                }
                self.complete(position, now, None, time);
            }
            Some(executed) => {
                self.complete(position, executed, None, time);
            }
        }
    }

    /// Completes the open operation at `position` (as [`invoke`](Self::invoke) gave it),
    /// returning at history position `ret` with `output` (`None`: unknown). True if it is a
    /// read: only a read can contradict an order, so callers check after reads return.
    pub fn complete(&mut self, position: usize, ret: u64, output: Option<M::Output>, time: SimTime) -> bool {
        // An open operation is never settled: it is in the window.
        let at = position - self.forgotten;
        let op = &mut self.ops[at];
        op.ret = Some(ret);
        op.output = output;
        let is_read = matches!(&op.input, Effect::Called(input) if self.model.is_read(input));
        self.times[at].1 = Some(time);
        self.in_flight -= 1;
        if self.in_flight == 0 {
            self.quiet_len = self.ops.len() - self.window;
        }
        is_read
    }

    /// Checks the object: `Ok` if its history so far is linearizable, `Violated` (showing
    /// its last operations) if not, `Undecided` if the search needed more than
    /// `search_budget` configurations to tell.
    ///
    /// The whole history is linearizable iff the window is, from some state the history
    /// before it can leave: everything in the window was called after everything before
    /// it returned. A check first looks for one linearization of the window from the
    /// states at hand, and when it finds one, settles the window up to its last quiet
    /// moment lazily. The linearizations so found chain into one of the whole history, so
    /// a check that passes this way is right. Only when none is found are the lazily
    /// settled operations settled exactly, and the window searched from every state they
    /// can leave: a check fails only on what a whole-history check would fail on.
    pub fn check(&mut self, search_budget: usize) -> Result<(), CheckError> {
        if self.find_witness(self.window > 0) {
            self.settle_lazily();
            return Ok(());
        }
        if self.window > 0 {
            self.settle_lazy_exactly();
        }
        // Nothing is settled lazily now: the window is all of `ops`.
        debug_assert_eq!(self.window, 0);
        let model = WithGiveUps(&self.model);
        let quiet = self.quiet_len;
        if quiet > 0 && quiet >= self.compact_at_len {
            let prefix = &self.ops[..quiet];
            // Settling is an optimisation while the object is busy again (the whole window
            // is searched below either way), so it only gets a budget in proportion to the
            // prefix: enumerating every end state of a tangled prefix costs more than
            // finding one order of the whole window.
            let budget = if self.in_flight == 0 { self.settle_budget } else { SETTLE_BUDGET_PER_OP * quiet };
            match linearizability::final_states_within(&model, &self.settled, prefix, budget) {
                Some(finals) if finals.is_empty() => return Err(self.describe().into()),
                Some(finals) => {
                    self.settled = finals;
                    self.witness.clear();
                    self.compact_at_len = 0;
                    self.quiet_len = 0;
                    self.forget(quiet);
                    if self.ops.is_empty() {
                        return Ok(());
                    }
                }
                // Too many interleavings to enumerate: keep the window, check it below, and
                // try again once it has doubled.
                None => self.compact_at_len = 2 * quiet,
            }
        }
        if self.find_witness(false) {
            self.settle_lazily();
            return Ok(());
        }
        let model = WithGiveUps(&self.model);
        let mut undecided = false;
        for (index, start) in self.settled.iter().enumerate() {
            match linearizability::witness_within(&model, start, &self.ops, search_budget) {
                Some(Some(order)) => {
                    self.witness = order;
                    self.witness_start = index;
                    self.settle_lazily();
                    return Ok(());
                }
                Some(None) => {}
                None => undecided = true,
            }
        }
        if undecided {
            let overlap = self.ops.iter().filter(|op| op.ret.is_none()).count();
            return Err(CheckError::Undecided(format!(
                "the checker gave up on the {} operations on {} {:?} since it was last quiet \
                 ({overlap} still in flight), after {search_budget} search configurations: neither \
                 the servers' execution order, nor any order it tried, explains every result, and \
                 proving that none does means trying every order of the overlapping operations. \
                 Not a pass and not a violation; see docs/fuzzing.md, \"Undecided runs\".",
                self.ops.len(),
                M::OBJECT,
                self.object,
            )));
        }
        Err(self.describe().into())
    }

    /// Looks for a linearization of the window from `settled` without searching much: the
    /// last one found extended by what happened since, then the servers' order, then a
    /// greedy order, then (if `search`) a search with a small budget. Keeps what it finds in
    /// `witness`.
    fn find_witness(&mut self, search: bool) -> bool {
        let model = WithGiveUps(&self.model);
        let window = &self.ops[self.window..];
        if !self.witness.is_empty() {
            // Every operation since the last check was called after it: try the order found
            // then, followed by the new operations in call order.
            self.witness.extend(self.witness.len()..window.len());
            let start = &self.settled[self.witness_start];
            if linearizability::is_linearization(&model, start, window, &self.witness) {
                return true;
            }
            self.witness.clear();
        }
        // The order the servers ran the operations in: a linearization whenever they are
        // correct, and checked like any other order.
        let effect = |i: usize| match (&window[i].input, self.executed[self.window + i], window[i].ret) {
            (Effect::NotRun(_), _, _) => window[i].call,
            (_, NOT_RUN, Some(ret)) => ret,
            (_, NOT_RUN, None) => u64::MAX,
            (_, executed, _) => executed,
        };
        self.witness.extend(0..window.len());
        self.witness.sort_by_key(|&i| (effect(i), window[i].call));
        for (index, start) in self.settled.iter().enumerate() {
            if linearizability::is_linearization(&model, start, window, &self.witness) {
                self.witness_start = index;
                return true;
            }
        }
        self.witness.clear();
        for (index, start) in self.settled.iter().enumerate() {
            if let Some(order) = linearizability::greedy_linearization(&model, start, window) {
                self.witness = order;
                self.witness_start = index;
                return true;
            }
        }
        if search {
            let budget = SETTLE_BUDGET_PER_OP * window.len();
            for (index, start) in self.settled.iter().enumerate() {
                if let Some(Some(order)) = linearizability::witness_within(&model, start, window, budget) {
                    self.witness = order;
                    self.witness_start = index;
                    return true;
                }
            }
        }
        false
    }

    /// Settles the window up to its last quiet moment along `witness`, a linearization of
    /// the window: real time puts every operation of that prefix before every later one,
    /// so the witness's first `quiet_len` steps are the prefix's, and what they leave is
    /// where the rest starts from.
    fn settle_lazily(&mut self) {
        let quiet = self.quiet_len;
        if quiet == 0 {
            return;
        }
        let prefix = &self.witness[..quiet];
        debug_assert!(prefix.iter().all(|&i| i < quiet) && self.witness[quiet..].iter().all(|&i| i >= quiet));
        let start = &self.settled[self.witness_start];
        let state =
            linearizability::replay(&WithGiveUps(&self.model), start, &self.ops[self.window..], prefix)
                .expect("a prefix of a linearization replays");
        self.witness.drain(..quiet);
        for index in &mut self.witness {
            *index -= quiet;
        }
        self.witness_start = 0;
        if self.window == 0 {
            self.exact = std::mem::replace(&mut self.settled, vec![state]);
        } else {
            self.settled[0] = state;
        }
        self.window += quiet;
        self.lazy_ends.push(self.window);
        self.quiet_len = 0;
        self.compact_at_len = 0;
        if self.window >= self.lazy_max {
            self.settle_lazy_exactly();
        }
    }

    /// Replaces the lazily settled operations by every state they can leave, segment by
    /// segment. A segment too tangled to enumerate within the budget goes back to the
    /// window with all after it, to be searched whole.
    fn settle_lazy_exactly(&mut self) {
        let model = WithGiveUps(&self.model);
        let mut states = std::mem::take(&mut self.exact);
        let mut from = 0;
        for &end in &self.lazy_ends {
            match linearizability::final_states_within(
                &model,
                &states,
                &self.ops[from..end],
                self.settle_budget,
            ) {
                Some(finals) => {
                    // Never empty: the lazy linearization leaves one of them.
                    debug_assert!(!finals.is_empty());
                    states = finals;
                    from = end;
                }
                None => break,
            }
        }
        let back = self.window - from;
        if back > 0 {
            self.quiet_len += back;
            self.compact_at_len = 2 * self.quiet_len;
        }
        self.window = 0;
        self.lazy_ends.clear();
        self.settled = states;
        self.witness.clear();
        self.forget(from);
    }

    /// Forgets the first `n` operations (settled exactly), keeping the last few to show.
    fn forget(&mut self, n: usize) {
        debug_assert!(n <= self.ops.len() - self.window);
        self.executed.drain(..n);
        for op in self.ops.drain(..n).zip(self.times.drain(..n)) {
            if self.recent.len() == RECENT_SHOWN {
                self.recent.pop_front();
            }
            self.recent.push_back(op);
        }
        self.forgotten += n;
    }

    /// The violation: the object's last operations, in call order.
    fn describe(&self) -> String {
        let recent = self.recent.iter().map(|(op, times)| (op, times));
        let all: Vec<_> = recent.chain(self.ops.iter().zip(&self.times)).collect();
        let (kind, object) = (M::OBJECT, &self.object);
        let skip = all.len().saturating_sub(RECENT_SHOWN);
        let mut text = format!(
            "the operations on {kind} {object:?} have no linearization (no order of them, \
             consistent with real time, explains every result). {}operations on {object:?}, in \
             call order:",
            if skip > 0 { format!("last {RECENT_SHOWN} ") } else { String::new() }
        );
        for (op, (call, ret)) in &all[skip..] {
            let ret = ret.map_or("…".to_string(), |t| t.to_string());
            let result = op.output.as_ref().map_or("unknown".to_string(), |r| self.model.show_output(r));
            let input = match &op.input {
                Effect::Called(input) => self.model.show_input(input, object),
                Effect::NotRun(input) => {
                    format!("{} (given up, not run by then)", self.model.show_input(input, object))
                }
            };
            text.push_str(&format!("\n    n{} {input} [{call} .. {ret}] -> {result}", op.client));
        }
        text
    }
}
