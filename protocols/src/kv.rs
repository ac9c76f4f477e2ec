//! Key/value pieces shared by the request/response protocols (best-effort RPC, and later
//! at-most-once RPC and chain replication): operations, the store, the workload, and two
//! invariants.
//!
//! - `executed-at-most-once` is ground truth: servers note every execution in the history
//!   (`KvRecord::Executed`), and no request id may be executed twice.
//! - `kv-linearizable` is what a client can see: the completed operations on each key must
//!   be linearizable against a sequential key/value store. It catches the lecture's
//!   anomaly (Put(k,10) and Put(k,20) both succeed, then Get(k) yields 10). An operation
//!   the client gave up on has an unknown outcome: it may have taken effect, at any time.

use crate::ClientEvent;
use serde::{Deserialize, Serialize};
use sim_core::checkers::incremental::ObjectHistory;
use sim_core::checkers::linearizability::{Model, Operation};
use sim_core::{
    CheckError, Entry, EntryKind, Invariant, Node, NodeId, OpId, SimDuration, SimRng, SimTime, World,
};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

/// Identifies a client request: the client and its own request counter. Every re-send of
/// a request carries the same id. Shown as `n1#3` (by `{:?}` too, for readable traces).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    pub client: NodeId,
    pub seq: u64,
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.client, self.seq)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.client, self.seq)
    }
}

/// A key/value operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum KvOp {
    Put { key: String, value: String },
    Append { key: String, value: String },
    Get { key: String },
}

impl KvOp {
    pub fn key(&self) -> &str {
        match self {
            KvOp::Put { key, .. } | KvOp::Append { key, .. } | KvOp::Get { key } => key,
        }
    }
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvOp::Put { key, value } => write!(f, "Put({key},{value})"),
            KvOp::Append { key, value } => write!(f, "Append({key},{value})"),
            KvOp::Get { key } => write!(f, "Get({key})"),
        }
    }
}

/// What a key/value operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvResult {
    /// A put or append took effect.
    Done,
    /// A get read this value ("" for a key never written).
    Value(String),
    /// The client gave up (retries exhausted): the outcome is unknown.
    GaveUp,
}

impl fmt::Display for KvResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvResult::Done => write!(f, "ok"),
            KvResult::Value(v) => write!(f, "{v:?}"),
            KvResult::GaveUp => write!(f, "gave up"),
        }
    }
}

/// History records of key/value protocols.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvRecord {
    /// A client invokes an operation, sent as `request` (history invoke).
    Call { request: RequestId, op: KvOp },
    /// The operation returns (history return).
    Return(KvResult),
    /// Ground truth: a server ran the handler for this request (history note).
    Executed { request: RequestId, op: KvOp },
    /// Ground truth: a client took a reply as the answer to its call `request`; the reply
    /// was the server's answer to `reply_to` (history note). A correct client only accepts
    /// a reply when the two are equal.
    Accepted { request: RequestId, reply_to: RequestId },
}

/// The client operations of a kv history as [`ClientEvent`]s: each call an `invoke`, each
/// return `ok` (a get with the value read, a put or append with its value) or `info` for
/// a call the client gave up on (its outcome is unknown). The servers' notes are ground
/// truth, not client operations: they are left out.
pub fn client_history(entries: &[Entry<KvRecord>]) -> Vec<ClientEvent> {
    let mut calls: BTreeMap<OpId, &KvOp> = BTreeMap::new();
    let mut events = Vec::new();
    let parts = |op: &KvOp| match op {
        KvOp::Put { key, value } => ("put", key.clone(), Some(value.clone())),
        KvOp::Append { key, value } => ("append", key.clone(), Some(value.clone())),
        KvOp::Get { key } => ("get", key.clone(), None),
    };
    for entry in entries {
        let process = u64::from(entry.node.0);
        match (entry.kind, &entry.op) {
            (EntryKind::Invoke { id }, KvRecord::Call { op, .. }) => {
                calls.insert(id, op);
                let (f, key, value) = parts(op);
                events.push(ClientEvent { process, kind: "invoke", f, key: Some(key), value });
            }
            (EntryKind::Return { id }, KvRecord::Return(result)) => {
                let op = calls.remove(&id).expect("a return follows its call");
                let (f, key, value) = parts(op);
                let (kind, value) = match result {
                    KvResult::Done => ("ok", value),
                    KvResult::Value(read) => ("ok", Some(read.clone())),
                    KvResult::GaveUp => ("info", value),
                };
                events.push(ClientEvent { process, kind, f, key: Some(key), value });
            }
            _ => {}
        }
    }
    events
}

/// The key/value store a server keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KvStore(BTreeMap<String, String>);

impl KvStore {
    pub fn apply(&mut self, op: &KvOp) -> KvResult {
        match op {
            KvOp::Put { key, value } => {
                self.0.insert(key.clone(), value.clone());
                KvResult::Done
            }
            KvOp::Append { key, value } => {
                self.0.entry(key.clone()).or_default().push_str(value);
                KvResult::Done
            }
            KvOp::Get { key } => KvResult::Value(self.0.get(key).cloned().unwrap_or_default()),
        }
    }
}

/// The client workload: how many clients, and what each does.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Number of clients (ignored when `script` is given: one client per script entry).
    #[serde(default = "default_clients")]
    pub clients: u32,
    /// Random operations per client.
    #[serde(default = "default_ops_per_client")]
    pub ops_per_client: u32,
    /// Keys the random operations use: k0, k1, ...
    #[serde(default = "default_keys")]
    pub keys: u32,
    /// Pause between a client's operations, in milliseconds.
    #[serde(default)]
    pub think_ms: u64,
    /// Exact operations per client, instead of random ones.
    #[serde(default)]
    pub script: Option<Vec<Vec<KvOp>>>,
}

fn default_clients() -> u32 {
    1
}
fn default_ops_per_client() -> u32 {
    10
}
fn default_keys() -> u32 {
    3
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            clients: default_clients(),
            ops_per_client: default_ops_per_client(),
            keys: default_keys(),
            think_ms: 0,
            script: None,
        }
    }
}

impl Workload {
    /// The most clients a workload may have (each is a node).
    pub const CLIENTS_MAX: u32 = 10_000;
    /// The most random operations per client.
    pub const OPS_PER_CLIENT_MAX: u32 = 100_000;
    /// The most operations in all, random or scripted: each stays in the history, and
    /// the linearizability checker reads them.
    pub const OPS_MAX: usize = 1_000_000;
    /// The most keys random operations draw from.
    pub const KEYS_MAX: u32 = 1_000_000;

    pub fn n_clients(&self) -> usize {
        match &self.script {
            Some(script) => script.len(),
            None => self.clients as usize,
        }
    }

    /// Total operations over all clients.
    pub fn n_ops(&self) -> usize {
        match &self.script {
            Some(script) => script.iter().map(Vec::len).sum(),
            None => self.clients as usize * self.ops_per_client as usize,
        }
    }

    /// Each client's operations. Random operations draw from the workload stream; values
    /// are unique ("3.7": client 3's operation 7) so that a repeated execution shows.
    /// Each client's operations for a run with `seed` (drawn from the workload's own
    /// stream, so the network's draws do not move them), and the think time.
    pub fn for_seed(&self, seed: u64) -> (Vec<Vec<KvOp>>, SimDuration) {
        let ops = self.generate(&mut SimRng::new(seed, sim_core::Stream::Workload));
        (ops, SimDuration::from_millis(self.think_ms))
    }

    pub fn generate(&self, rng: &mut SimRng) -> Vec<Vec<KvOp>> {
        if let Some(script) = &self.script {
            return script.clone();
        }
        (1..=self.clients)
            .map(|client| {
                (0..self.ops_per_client)
                    .map(|i| {
                        let key = format!("k{}", rng.below(u64::from(self.keys.max(1))));
                        let value = format!("{client}.{i} ");
                        match rng.below(3) {
                            0 => KvOp::Put { key, value },
                            1 => KvOp::Append { key, value },
                            _ => KvOp::Get { key },
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// A key's value as the linearizability checker holds it: the text, shared (`Rc`, since
/// the search copies the state at every step and most steps do not change it), with a
/// 122-bit hash of it computed once, when the value is made.
///
/// The search fingerprints the state at every configuration it visits and compares it
/// with every read; with the hash at hand the first costs nothing and the second rejects
/// a mismatch without reading the text. The hash is polynomial, so an append works out
/// the hash of the longer text from the two parts' hashes instead of reading it again.
/// Equality still compares the text: the hash only decides quickly when texts differ.
#[derive(Clone)]
pub struct KeyValue {
    text: Rc<str>,
    hash: [u64; 2],
}

/// The hash's modulus, the Mersenne prime 2^61 - 1, and its two bases (arbitrary, below
/// it): two polynomial hashes with unrelated bases, so texts that collide in one almost
/// never collide in the other.
const HASH_MODULUS: u64 = (1 << 61) - 1;
const HASH_BASES: [u64; 2] = [0x0a3c_5f91_d2e7_4b61, 0x1f2e_8d4c_6b3a_9057];

/// `a * b` modulo 2^61 - 1, for `a` and `b` below it.
fn multiply_mod(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    let sum = (product as u64 & HASH_MODULUS) + (product >> 61) as u64;
    if sum >= HASH_MODULUS {
        sum - HASH_MODULUS
    } else {
        sum
    }
}

fn add_mod(a: u64, b: u64) -> u64 {
    let sum = a + b;
    if sum >= HASH_MODULUS {
        sum - HASH_MODULUS
    } else {
        sum
    }
}

impl KeyValue {
    pub fn new(text: &str) -> KeyValue {
        // Each byte counts as itself plus one, so that leading zero bytes still count.
        let hash = HASH_BASES.map(|base| {
            text.bytes().fold(0, |hash, byte| add_mod(multiply_mod(hash, base), u64::from(byte) + 1))
        });
        KeyValue { text: Rc::from(text), hash }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// This value followed by `suffix`; `scale` is each base raised to the suffix's length.
    fn append(&self, suffix: &KeyValue, scale: [u64; 2]) -> KeyValue {
        // Joined in a buffer kept per thread, then copied into the `Rc`: one allocation per
        // append rather than two (a `String`, then the `Rc`).
        thread_local! {
            static JOINED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        let text = JOINED.with_borrow_mut(|joined| {
            joined.clear();
            joined.push_str(&self.text);
            joined.push_str(&suffix.text);
            Rc::from(joined.as_str())
        });
        let hash = [0, 1].map(|i| add_mod(multiply_mod(self.hash[i], scale[i]), suffix.hash[i]));
        KeyValue { text, hash }
    }

    /// The 122 bits of the two hashes in one number.
    fn fingerprint(&self) -> u128 {
        (u128::from(self.hash[0]) << 64) | u128::from(self.hash[1])
    }
}

impl PartialEq for KeyValue {
    fn eq(&self, other: &KeyValue) -> bool {
        self.hash == other.hash && (Rc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for KeyValue {}

/// Hashes the hash: equal texts have equal hashes, so this agrees with `Eq`.
impl std::hash::Hash for KeyValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.hash.hash(state);
    }
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.text)
    }
}

/// An operation on one key, as the checker takes it: built once per operation (values
/// hashed, the append's scale worked out), so that no step of the search allocates for a
/// put or hashes a text. The key is left out: a checker checks one key at a time.
#[derive(Clone, Debug)]
pub enum KeyInput {
    Put(KeyValue),
    /// The suffix, and each hash base raised to its length.
    Append(KeyValue, [u64; 2]),
    Get,
}

impl KeyInput {
    pub fn new(op: &KvOp) -> KeyInput {
        match op {
            KvOp::Put { value, .. } => KeyInput::Put(KeyValue::new(value)),
            KvOp::Append { value, .. } => {
                let scale =
                    HASH_BASES.map(|base| (0..value.len()).fold(1, |scale, _| multiply_mod(scale, base)));
                KeyInput::Append(KeyValue::new(value), scale)
            }
            KvOp::Get { .. } => KeyInput::Get,
        }
    }

    /// As the operation on `key` shows (`KvOp`'s form: `Put(k,v)`).
    fn show(&self, key: &str) -> String {
        match self {
            KeyInput::Put(value) => format!("Put({key},{})", value.text()),
            KeyInput::Append(value, _) => format!("Append({key},{})", value.text()),
            KeyInput::Get => format!("Get({key})"),
        }
    }
}

/// What an operation on one key returned, as the checker takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOutput {
    Done,
    Value(KeyValue),
}

impl KeyOutput {
    /// `None` for an outcome the client never learned (it gave up).
    pub fn new(result: &KvResult) -> Option<KeyOutput> {
        match result {
            KvResult::Done => Some(KeyOutput::Done),
            KvResult::Value(value) => Some(KeyOutput::Value(KeyValue::new(value))),
            KvResult::GaveUp => None,
        }
    }
}

/// As `KvResult` shows.
impl fmt::Display for KeyOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOutput::Done => write!(f, "ok"),
            KeyOutput::Value(value) => write!(f, "{:?}", value.text()),
        }
    }
}

/// A key/value operation as the checker takes it (see `KeyModel::operation`).
pub type KeyOperation = Operation<KeyInput, KeyOutput>;

/// The sequential specification of one key.
#[derive(Clone, Copy)]
pub struct KeyModel;

impl KeyModel {
    /// `op` as the checker takes it.
    pub fn operation(op: &Operation<KvOp, KvResult>) -> KeyOperation {
        Operation {
            client: op.client,
            call: op.call,
            ret: op.ret,
            input: KeyInput::new(&op.input),
            output: op.output.as_ref().and_then(KeyOutput::new),
        }
    }
}

impl Model for KeyModel {
    const OBJECT: &'static str = "key";
    type State = KeyValue;
    type Input = KeyInput;
    type Output = KeyOutput;

    fn init(&self) -> KeyValue {
        KeyValue::new("")
    }

    fn step(&self, state: &KeyValue, input: &KeyInput, output: Option<&KeyOutput>) -> Option<KeyValue> {
        match input {
            KeyInput::Put(value) => Some(value.clone()),
            KeyInput::Append(suffix, scale) => Some(state.append(suffix, *scale)),
            KeyInput::Get => match output {
                None => Some(state.clone()),
                Some(KeyOutput::Value(read)) => (read == state).then(|| state.clone()),
                Some(KeyOutput::Done) => None,
            },
        }
    }

    fn is_read(&self, input: &KeyInput) -> bool {
        matches!(input, KeyInput::Get)
    }

    fn show_input(&self, input: &KeyInput, key: &str) -> String {
        input.show(key)
    }

    fn show_output(&self, output: &KeyOutput) -> String {
        output.to_string()
    }

    fn fingerprint(&self, state: &KeyValue) -> u128 {
        state.fingerprint()
    }
}

/// `executed-at-most-once`: no request id is executed twice (ground truth from the
/// servers' `Executed` notes, which survive crashes because the history does).
#[derive(Clone, Default)]
pub struct ExecutedAtMostOnce {
    cursor: usize,
    /// When and where each request was executed, by client and then by the client's
    /// request counter (ids are dense: each client counts its requests from 0 or 1).
    executed: Vec<Vec<Option<(SimTime, NodeId)>>>,
    /// The mechanism that let it happen, as the protocol's docs explain it (empty: none
    /// known).
    mechanism: String,
}

impl ExecutedAtMostOnce {
    /// The invariant, with the mechanism a violation points at (the protocol's setting
    /// that lets a request run twice, and where its docs explain it).
    pub fn explained(mechanism: impl Into<String>) -> ExecutedAtMostOnce {
        ExecutedAtMostOnce { mechanism: mechanism.into(), ..ExecutedAtMostOnce::default() }
    }
}

pub const EXECUTED_AT_MOST_ONCE: &str = "executed-at-most-once";
pub const KV_LINEARIZABLE: &str = "kv-linearizable";

impl<N: Node<Op = KvRecord>> Invariant<N> for ExecutedAtMostOnce {
    fn name(&self) -> &'static str {
        EXECUTED_AT_MOST_ONCE
    }

    fn check_step(&mut self, world: &World<N>) -> Result<(), CheckError> {
        let (_, fresh) = world.history().since(&mut self.cursor);
        for entry in fresh {
            if let KvRecord::Executed { request, op } = &entry.op {
                let client = request.client.0 as usize;
                if self.executed.len() <= client {
                    self.executed.resize_with(client + 1, Vec::new);
                }
                let by_seq = &mut self.executed[client];
                let seq = request.seq as usize;
                if by_seq.len() <= seq {
                    by_seq.resize(seq + 1, None);
                }
                if let Some((first, server)) = by_seq[seq].replace((entry.time, entry.node)) {
                    let why = if self.mechanism.is_empty() {
                        String::new()
                    } else {
                        format!(". {}", self.mechanism)
                    };
                    return Err(format!(
                        "request {request} ({op}) was executed twice: by {server} at {first}, \
                         and again by {} at {}{why}",
                        entry.node, entry.time
                    )
                    .into());
                }
            }
        }
        Ok(())
    }
}

/// `kv-linearizable`: each key's history of client operations is linearizable. Checked
/// again for a key whenever a read on it returns, and for every key at the end.
///
/// Real-time order comes from positions in the history, not from virtual times: a client
/// that gets a reply and starts its next operation in the same handler does both at one
/// virtual instant, yet the first returned before the second was called.
///
/// Each key's history is settled up to the last moment no operation on the key was in
/// flight: every later operation must come after all of it. Settled lazily, it is summed
/// up by the value the linearization just found leaves there; exactly, by the set of
/// values some linearization of it can leave ([`sim_core::checkers::linearizability::final_states`]), worked
/// out only when a check finds no linearization from the lazy value (see
/// `ObjectHistory::check` in sim-core's `checkers::incremental`). A check therefore costs what happened since the key was last
/// quiet, not the whole run.
///
/// The servers' `Executed` notes are ground truth about when each request took effect,
/// and the checker uses them twice, never to pass a history it could not otherwise pass:
///
/// - **An operation whose client gave up** has an outcome the client never learns, and
///   in Jepsen's terms may take effect at any moment after its call, or never. Left open,
///   it keeps its key from ever being quiet again, and every later check searches a
///   window that only grows. The notes close it instead: if a server ran it, it took
///   effect by then (its interval ends at the note); if none has yet, it had no effect so
///   far (a no-op over its interval), and should a server run it later, it takes effect
///   at that moment (a new operation pinned there). Both only narrow the orders allowed,
///   and the servers' real order stays among them, so a correct server is never failed.
/// - **The servers' execution order** is tried as a linearization before any search
///   (`ObjectHistory::executed`): for a correct server it is one, so a check of many
///   overlapping operations (many clients on one key, a client with several calls in
///   flight) is a replay, not an exponential search.
///
/// Per step it allocates nothing beyond the operations it keeps: keys are interned to
/// indexes on first sight, operations are found by op id and requests by client and
/// sequence number in vectors (both are dense), and the keys to re-check reuse one buffer.
#[derive(Clone, Default)]
pub struct KvLinearizable {
    cursor: usize,
    /// Every key seen, by name, with its index in `keys` (names are never cloned per step:
    /// a lookup borrows the operation's key).
    key_index: BTreeMap<String, usize>,
    keys: Vec<ObjectHistory<KeyModel>>,
    /// What the checker knows of each operation, by op id.
    ops: Vec<OpState>,
    /// The op id of each request, by client and then by the client's sequence number.
    requests: Vec<Vec<Option<u64>>>,
    /// Keys a read on which returned in this step (a buffer kept between steps).
    touched: Vec<usize>,
    /// Requests a server ran more than once (key, request, operation, when it ran again):
    /// a violation on their key says so.
    reruns: Vec<(usize, RequestId, KvOp, SimTime)>,
}

/// One client operation, as [`KvLinearizable`] tracks it.
#[derive(Clone, Copy, Debug)]
struct OpState {
    /// Its key's index, and its position among all the key's operations (forgotten ones
    /// included).
    key: usize,
    position: usize,
    /// Where in the history a server first ran it (`NOT_RUN`: not yet).
    executed: u64,
    status: OpStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OpStatus {
    Open,
    Returned,
    /// Its client gave up before any server ran it.
    GivenUpUnrun,
}

/// `OpState::executed` of an operation no server has run.
const NOT_RUN: u64 = u64::MAX;

impl KvLinearizable {
    /// Checks one key; a violation names the requests on it that ran more than once, the
    /// usual cause (a re-send or a duplicate run again).
    fn check_key(
        key: &mut ObjectHistory<KeyModel>,
        index: usize,
        reruns: &[(usize, RequestId, KvOp, SimTime)],
        search_budget: usize,
    ) -> Result<(), CheckError> {
        match key.check(search_budget) {
            Err(CheckError::Violated(message)) => {
                let reruns: Vec<String> = reruns
                    .iter()
                    .filter(|(key, ..)| *key == index)
                    .take(5)
                    .map(|(_, request, op, at)| format!("{request} ({op}) ran again at {at}"))
                    .collect();
                if reruns.is_empty() {
                    return Err(CheckError::Violated(message));
                }
                Err(CheckError::Violated(format!(
                    "{message}\nA server ran requests on this key more than once: {}. A re-sent or \
                     duplicated request that runs again takes effect twice (see \
                     executed-at-most-once).",
                    reruns.join("; ")
                )))
            }
            verdict => verdict,
        }
    }

    /// The index of `key` in `keys`, interning it on first sight.
    fn key_of(&mut self, key: &str) -> usize {
        if let Some(&index) = self.key_index.get(key) {
            return index;
        }
        self.key_index.insert(key.to_string(), self.keys.len());
        self.keys.push(ObjectHistory::new(KeyModel, key));
        self.keys.len() - 1
    }
}

impl<N: Node<Op = KvRecord>> Invariant<N> for KvLinearizable {
    fn name(&self) -> &'static str {
        KV_LINEARIZABLE
    }

    fn check_step(&mut self, world: &World<N>) -> Result<(), CheckError> {
        self.touched.clear();
        let (first, fresh) = world.history().since(&mut self.cursor);
        for (position, entry) in (first..).zip(fresh) {
            let position = position as u64;
            match (&entry.kind, &entry.op) {
                (EntryKind::Invoke { id }, KvRecord::Call { request, op }) => {
                    let key = self.key_of(op.key());
                    let op = Operation {
                        client: u64::from(entry.node.0),
                        call: position,
                        ret: None,
                        input: KeyInput::new(op),
                        output: None,
                    };
                    let at = self.keys[key].invoke(op, entry.time);
                    let id = id.0 as usize;
                    if self.ops.len() <= id {
                        let unknown = OpState {
                            key: usize::MAX,
                            position: 0,
                            executed: NOT_RUN,
                            status: OpStatus::Returned,
                        };
                        self.ops.resize(id + 1, unknown);
                    }
                    self.ops[id] = OpState { key, position: at, executed: NOT_RUN, status: OpStatus::Open };
                    let (client, seq) = (request.client.index(), request.seq as usize);
                    if self.requests.len() <= client {
                        self.requests.resize_with(client + 1, Vec::new);
                    }
                    let by_seq = &mut self.requests[client];
                    if by_seq.len() <= seq {
                        by_seq.resize(seq + 1, None);
                    }
                    by_seq[seq] = Some(id as u64);
                }
                (EntryKind::Note, KvRecord::Executed { request, op }) => {
                    let id =
                        self.requests.get(request.client.index()).and_then(|s| s.get(request.seq as usize));
                    let Some(&Some(id)) = id else { continue };
                    let state = &mut self.ops[id as usize];
                    if state.executed != NOT_RUN {
                        // Ran again: no order can explain two effects of one call. Kept
                        // to point a failing check at the mechanism.
                        self.reruns.push((state.key, *request, op.clone(), entry.time));
                        continue;
                    }
                    state.executed = position;
                    match state.status {
                        OpStatus::Open | OpStatus::Returned => {
                            self.keys[state.key].executed(state.position, position)
                        }
                        // Given up before it ran: it takes effect now, as a new operation
                        // pinned here (a read the client never saw changes nothing).
                        OpStatus::GivenUpUnrun if !matches!(op, KvOp::Get { .. }) => {
                            let key = &mut self.keys[state.key];
                            let pinned = Operation {
                                client: u64::from(request.client.0),
                                call: position,
                                ret: None,
                                input: KeyInput::new(op),
                                output: None,
                            };
                            let at = key.invoke(pinned, entry.time);
                            key.executed(at, position);
                            key.complete(at, position, None, entry.time);
                        }
                        OpStatus::GivenUpUnrun => {}
                    }
                }
                (EntryKind::Return { id }, KvRecord::Return(result)) => {
                    let state = &mut self.ops[id.0 as usize];
                    assert!(state.status == OpStatus::Open, "a return matches an open invoke");
                    let key = &mut self.keys[state.key];
                    if *result == KvResult::GaveUp {
                        let executed = (state.executed != NOT_RUN).then_some(state.executed);
                        key.give_up(state.position, executed, position, entry.time);
                        state.status = if state.executed == NOT_RUN {
                            OpStatus::GivenUpUnrun
                        } else {
                            OpStatus::Returned
                        };
                        continue;
                    }
                    state.status = OpStatus::Returned;
                    // Only a read can contradict an order: a write's return constrains only
                    // operations called later, and a finished write can always take effect at
                    // its return. So a key is re-checked when a Get on it returns (and all
                    // keys at the end); the first violating step stays exact.
                    let is_read = key.complete(state.position, position, KeyOutput::new(result), entry.time);
                    if is_read && !self.touched.contains(&state.key) {
                        self.touched.push(state.key);
                    }
                }
                _ => {}
            }
        }
        for &index in &self.touched {
            Self::check_key(&mut self.keys[index], index, &self.reruns, world.search_budget())?;
        }
        Ok(())
    }

    fn check_end(&mut self, world: &World<N>) -> Result<(), CheckError> {
        self.check_step(world)?;
        // In key order, so that which violation is reported first does not depend on the
        // order keys were first seen in.
        for &index in self.key_index.values() {
            Self::check_key(&mut self.keys[index], index, &self.reruns, world.search_budget())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::checkers::linearizability;
    use sim_core::Stream;
    use sim_core::DEFAULT_SEARCH_BUDGET as SEARCH_BUDGET;

    #[test]
    fn generated_workload_is_deterministic_and_sized() {
        let workload = Workload { clients: 3, ops_per_client: 4, ..Workload::default() };
        let a = workload.generate(&mut SimRng::new(5, Stream::Workload));
        let b = workload.generate(&mut SimRng::new(5, Stream::Workload));
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|ops| ops.len() == 4));
    }

    /// A value's hash is a function of its text, however it was made (appended or whole),
    /// so equality and hashing agree with the text's; different texts differ.
    #[test]
    fn key_values_agree_with_their_texts() {
        let mut rng = SimRng::new(3, Stream::Workload);
        let mut texts = vec![String::new(), "\0".to_string(), "\0\0".to_string(), "a".to_string()];
        for _ in 0..200 {
            let len = rng.below(6) as usize;
            texts.push((0..len).map(|_| char::from(b'a' + rng.below(3) as u8)).collect());
        }
        let model = KeyModel;
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i..] {
                let whole = KeyValue::new(&format!("{a}{b}"));
                let appended = model
                    .step(
                        &KeyValue::new(a),
                        &KeyInput::new(&KvOp::Append { key: "k".into(), value: b.clone() }),
                        None,
                    )
                    .expect("an append always steps");
                assert_eq!(appended, whole, "{a:?} + {b:?}");
                assert_eq!(appended.text(), whole.text());
                assert_eq!(model.fingerprint(&appended), model.fingerprint(&whole), "{a:?} + {b:?}");
                assert_eq!(linearizability_fingerprint(&appended), linearizability_fingerprint(&whole));
                let (x, y) = (KeyValue::new(a), KeyValue::new(b));
                assert_eq!(x == y, a == b, "{a:?} vs {b:?}");
                assert_eq!(model.fingerprint(&x) == model.fingerprint(&y), a == b, "{a:?} vs {b:?}");
            }
        }
    }

    /// What `Hash` writes for a value, hashed.
    fn linearizability_fingerprint(value: &KeyValue) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        value.hash(&mut hasher);
        hasher.finish()
    }

    /// The checker's view of a read: it fits a state with the same text only.
    #[test]
    fn a_get_fits_the_value_it_read() {
        let model = KeyModel;
        let state = KeyValue::new("1.0 2.1 ");
        let read = |text: &str| KeyOutput::new(&KvResult::Value(text.to_string()));
        assert_eq!(model.step(&state, &KeyInput::Get, read("1.0 2.1 ").as_ref()), Some(state.clone()));
        assert_eq!(model.step(&state, &KeyInput::Get, read("1.0 ").as_ref()), None);
        assert_eq!(model.step(&state, &KeyInput::Get, None), Some(state.clone()));
        assert_eq!(model.step(&state, &KeyInput::Get, Some(&KeyOutput::Done)), None);
        let put = KeyInput::new(&KvOp::Put { key: "k".into(), value: "x".into() });
        assert_eq!(put.show("k"), "Put(k,x)");
        assert_eq!(
            model.step(&state, &put, Some(&KeyOutput::Done)).map(|v| v.text().to_string()),
            Some("x".into())
        );
    }

    /// What one client of `key_checks_agree_with_whole_history_checks` is doing: its
    /// operation's index in the whole history and its position in the key's, the
    /// operation, and its result once it has taken effect.
    type Open = (usize, usize, KvOp, Option<KvResult>);

    /// A key's checks (settling lazily, settling exactly, the lazy part settled exactly when
    /// a check needs it or when it grows too long, and put back to be searched when that
    /// runs out of budget) say what a check of the whole history says, after every read
    /// and at the end. Random histories of one to four clients on one key, each operation
    /// taking effect between its call and return; one read in ten returns some earlier
    /// value instead, and one operation in twenty is given up on.
    #[test]
    fn key_checks_agree_with_whole_history_checks() {
        let (mut passed, mut failed) = (0, 0);
        for seed in 0..600 {
            let mut rng = SimRng::new(seed, Stream::Workload);
            let settle_budget = [0, 3, 20, SEARCH_BUDGET][seed as usize % 4];
            let mut key =
                ObjectHistory::new(KeyModel, "k").with_bounds(settle_budget, 1 + rng.below(30) as usize);
            let mut whole: Vec<KeyOperation> = Vec::new();
            let mut value = String::new();
            let mut values = vec![String::new()];
            let mut open: Vec<Option<Open>> = vec![None; 1 + rng.below(4) as usize];
            let mut verdict = Ok(());
            for position in 0..80 {
                let client = rng.below(open.len() as u64) as usize;
                match open[client].take() {
                    None => {
                        let (k, v) = ("k".to_string(), format!("{client}.{position} "));
                        let op = match rng.below(3) {
                            0 => KvOp::Put { key: k, value: v },
                            1 => KvOp::Append { key: k, value: v },
                            _ => KvOp::Get { key: k },
                        };
                        let call = Operation {
                            client: client as u64,
                            call: position,
                            ret: None,
                            input: op.clone(),
                            output: None,
                        };
                        let call = KeyModel::operation(&call);
                        whole.push(call.clone());
                        let at = key.invoke(call, SimTime::ZERO);
                        open[client] = Some((whole.len() - 1, at, op, None));
                    }
                    Some(_) if rng.below(20) == 0 => {} // given up on: it never returns
                    Some((index, at, op, None)) => {
                        let result = match &op {
                            KvOp::Get { .. } if rng.below(10) == 0 => {
                                KvResult::Value(values[rng.below(values.len() as u64) as usize].clone())
                            }
                            KvOp::Get { .. } => KvResult::Value(value.clone()),
                            KvOp::Put { value: v, .. } => {
                                value = v.clone();
                                values.push(value.clone());
                                KvResult::Done
                            }
                            KvOp::Append { value: v, .. } => {
                                value.push_str(v);
                                values.push(value.clone());
                                KvResult::Done
                            }
                        };
                        open[client] = Some((index, at, op, Some(result)));
                    }
                    Some((index, at, _, Some(result))) => {
                        let output = KeyOutput::new(&result);
                        whole[index].ret = Some(position);
                        whole[index].output = output.clone();
                        if key.complete(at, position, output, SimTime::ZERO) {
                            verdict = key.check(SEARCH_BUDGET);
                            let expected = linearizability::check(&KeyModel, &whole);
                            assert_eq!(verdict.is_ok(), expected, "seed {seed}, at {position}: {verdict:?}");
                            if !expected {
                                break;
                            }
                        }
                    }
                }
            }
            if verdict.is_ok() {
                verdict = key.check(SEARCH_BUDGET);
                assert_eq!(
                    verdict.is_ok(),
                    linearizability::check(&KeyModel, &whole),
                    "seed {seed}: {verdict:?}"
                );
            }
            match verdict {
                Ok(()) => passed += 1,
                Err(_) => failed += 1,
            }
        }
        assert!(passed > 100 && failed > 100, "{passed} passed, {failed} failed");
    }

    #[test]
    fn store_appends_and_reads_empty_for_missing_keys() {
        let mut store = KvStore::default();
        let get = KvOp::Get { key: "k".into() };
        assert_eq!(store.apply(&get), KvResult::Value(String::new()));
        store.apply(&KvOp::Append { key: "k".into(), value: "a".into() });
        store.apply(&KvOp::Append { key: "k".into(), value: "b".into() });
        assert_eq!(store.apply(&get), KvResult::Value("ab".into()));
    }
}
