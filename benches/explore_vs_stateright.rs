//! `dsim explore` against stateright, the Rust model checker, on the same protocol: how
//! many distinct states each searches per second, and how much memory each keeps per
//! state. Run with `cargo bench --bench explore_vs_stateright`; the figures and what
//! they mean are in docs/performance.md ("Explore vs stateright").
//!
//! **The protocol** is stateright's `linearizable-register` example: ABD (Attiya, Bar-Noy
//! and Dolev's replicated register). Each client does its puts and then one get
//! (stateright's `RegisterActor::Client`: `put_count` puts, each to the next server in
//! turn). A server coordinates each request in two phases: it queries every server for
//! its (sequence, value) and waits for a majority (counting itself), then records the
//! chosen pair (a write's with a higher sequence) at every server and waits for a majority
//! of acks before it replies. The property is linearizability of the clients' history.
//! Sizes (servers x clients, `pg`: a put then a get, `ppg`: two puts then a get): 2x3 pg,
//! 2x3 ppg and 3x1 ppg, both tools exhaust them and pass; stateright's own test of the
//! example (2x2 pg) counts 544 states, and so does the model below. 3x2 pg, the example's
//! `check` default, is too large for either to finish in minutes (stateright: over 5
//! minutes; 2x4 pg took it 118 s and 1.9 GB, dsim 61 s and 18 GB). A known-buggy server
//! (gets answered from its own copy, no quorum) is found by both, in 8 steps, at 3x2 pg.
//!
//! It is written twice below, as the same handlers: (a) a stateright `Actor`, checked by
//! its single-threaded breadth-first checker as the example does (its network unordered
//! and non-duplicating, its `LinearizabilityTester` history); (b) a `sim_core::Node`,
//! searched breadth-first by `sim_core::explore::explore` over reliable reordering links
//! (any message in flight may arrive next, none lost or duplicated), with an invariant
//! that checks the history with `sim_core::checkers::linearizability` and the `Register`
//! model. Where the two searches differ:
//!
//! - stateright takes a delivery that changes nothing (no new state, nothing sent) as no
//!   step at all, and the message stays in the network; dsim delivers it (it leaves the
//!   network), a step to a new state. dsim's space is bigger by those states.
//! - stateright's history keeps, per client, its operations and what each saw completed
//!   when it was invoked; dsim's state hash covers the whole history in order. dsim tells
//!   apart states that differ only in the order of history entries stateright merges.
//! - stateright fingerprints a state in 64 bits, dsim in 128.
//!
//! The last row is the bundled at-most-once protocol (2 clients x 2 operations, durable
//! dedup table, one drop, one duplicate and one crash in the budget), built through the
//! registry as `dsim explore` builds it: the real node code, with timers and retries
//! (`retries_max` 2, one key), stopped at 200,000 distinct states.
//!
//! Each row runs in a fresh process (the bench re-runs itself with `--row NAME`), so the
//! peak resident memory it reports (`VmHWM`) is that row's alone.

use protocols::kv::Workload;
use protocols::registry::Registry;
use serde::Serialize;
use sim_core::checkers::linearizability::{check, Operation};
use sim_core::checkers::models::{Register, RegisterInput, RegisterOutput, Value};
use sim_core::explore::{explore, Budgets, Exploration, ExploreOptions, FaultRules, Strategy, Verdict};
use sim_core::Latency;
use sim_core::{
    CheckError, Context, EntryKind, Invariant, LinkConfig, Message, NetworkConfig, Node, NodeId, SimConfig,
    Simulation, TraceMode, World,
};
use stateright::actor::register::{RegisterActor, RegisterMsg};
use stateright::actor::{majority, model_peers, Actor, ActorModel, Id, Network, Out};
use stateright::semantics::register::Register as StRegister;
use stateright::semantics::LinearizabilityTester;
use stateright::util::{HashableHashMap, HashableHashSet};
use stateright::{Checker, Expectation, Model};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// The same allocator as the `dsim` binary, for both tools.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The register's size, set once by the row a process runs: servers, clients, and puts
/// per client before its one get.
static SIZE: std::sync::OnceLock<Size> = std::sync::OnceLock::new();

#[derive(Clone, Copy, Debug)]
struct Size {
    servers: usize,
    clients: usize,
    puts: usize,
}

fn size() -> Size {
    *SIZE.get().expect("the row sets the size first")
}
fn servers() -> usize {
    size().servers
}
fn clients() -> usize {
    size().clients
}
fn puts() -> usize {
    size().puts
}

// ---------------------------------------------------------------------------------------
// (a) The register as a stateright actor
// ---------------------------------------------------------------------------------------

/// A server's sequence: a logical clock, and the id of the server that chose it.
type StSeq = (u64, Id);

#[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd, Serialize)]
enum StInternal {
    Query(u64),
    AckQuery(u64, StSeq, char),
    Record(u64, StSeq, char),
    AckRecord(u64),
}

#[derive(Clone, Debug, Eq, Hash, PartialEq)]
enum StPhase {
    Query { request: u64, requester: Id, write: Option<char>, responses: HashableHashMap<Id, (StSeq, char)> },
    Record { request: u64, requester: Id, read: Option<char>, acks: HashableHashSet<Id> },
}

#[derive(Clone, Debug, Eq, Hash, PartialEq)]
struct StServerState {
    seq: StSeq,
    val: char,
    phase: Option<StPhase>,
}

#[derive(Clone)]
struct StServer {
    peers: Vec<Id>,
    /// The known-buggy variant: a get is answered from the server's own copy.
    local_reads: bool,
}

type StMsg = RegisterMsg<u64, char, StInternal>;

impl Actor for StServer {
    type Msg = StMsg;
    type State = StServerState;
    type Timer = ();
    type Random = ();
    type Storage = ();

    fn on_start(&self, id: Id, _storage: &Option<()>, _o: &mut Out<Self>) -> StServerState {
        StServerState { seq: (0, id), val: char::default(), phase: None }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<StServerState>, src: Id, msg: StMsg, o: &mut Out<Self>) {
        use RegisterMsg::{Get, GetOk, Internal, Put, PutOk};
        match msg {
            Get(request) if self.local_reads => o.send(src, GetOk(request, state.val)),
            Put(request, _) | Get(request) if state.phase.is_none() => {
                let write = if let Put(_, value) = msg { Some(value) } else { None };
                o.broadcast(&self.peers, &Internal(StInternal::Query(request)));
                let mut responses = HashableHashMap::default();
                responses.insert(id, (state.seq, state.val));
                state.to_mut().phase = Some(StPhase::Query { request, requester: src, write, responses });
            }
            Internal(StInternal::Query(request)) => {
                o.send(src, Internal(StInternal::AckQuery(request, state.seq, state.val)));
            }
            Internal(StInternal::AckQuery(answer_to, seq, val)) if matches!(state.phase, Some(StPhase::Query { request, .. }) if request == answer_to) =>
            {
                let state = state.to_mut();
                let Some(StPhase::Query { request, requester, write, responses }) = &mut state.phase else {
                    unreachable!()
                };
                responses.insert(src, (seq, val));
                if responses.len() == majority(self.peers.len() + 1) {
                    let &(mut seq, mut val) =
                        responses.values().max_by_key(|(seq, _)| *seq).expect("a majority answered");
                    let read = match write.take() {
                        Some(value) => {
                            seq = (seq.0 + 1, id);
                            val = value;
                            None
                        }
                        None => Some(val),
                    };
                    o.broadcast(&self.peers, &Internal(StInternal::Record(*request, seq, val)));
                    let (request, requester) = (*request, *requester);
                    if seq > state.seq {
                        state.seq = seq;
                        state.val = val;
                    }
                    let mut acks = HashableHashSet::default();
                    acks.insert(id);
                    state.phase = Some(StPhase::Record { request, requester, read, acks });
                }
            }
            Internal(StInternal::Record(request, seq, val)) => {
                o.send(src, Internal(StInternal::AckRecord(request)));
                if seq > state.seq {
                    let state = state.to_mut();
                    state.seq = seq;
                    state.val = val;
                }
            }
            Internal(StInternal::AckRecord(answer_to))
                if matches!(&state.phase, Some(StPhase::Record { request, acks, .. })
                            if *request == answer_to && !acks.contains(&src)) =>
            {
                let state = state.to_mut();
                let Some(StPhase::Record { request, requester, read, acks }) = &mut state.phase else {
                    unreachable!()
                };
                acks.insert(src);
                if acks.len() == majority(self.peers.len() + 1) {
                    let reply = match read {
                        Some(value) => GetOk(*request, *value),
                        None => PutOk(*request),
                    };
                    o.send(*requester, reply);
                    state.phase = None;
                }
            }
            _ => {}
        }
    }
}

type StModel = ActorModel<RegisterActor<StServer>, (), LinearizabilityTester<Id, StRegister<char>>>;

fn stateright_model(local_reads: bool) -> StModel {
    ActorModel::new((), LinearizabilityTester::new(StRegister(char::default())))
        .actors(
            (0..servers())
                .map(|i| RegisterActor::Server(StServer { peers: model_peers(i, servers()), local_reads })),
        )
        .actors((0..clients()).map(|_| RegisterActor::Client { put_count: puts(), server_count: servers() }))
        .init_network(Network::new_unordered_nonduplicating([]))
        .property(Expectation::Always, "linearizable", |_, state| {
            state.history.serialized_history().is_some()
        })
        .record_msg_in(RegisterMsg::record_returns)
        .record_msg_out(RegisterMsg::record_invocations)
}

// ---------------------------------------------------------------------------------------
// (b) The register as a dsim node
// ---------------------------------------------------------------------------------------

/// A server's sequence: a logical clock, and the id of the server that chose it.
type Seq = (u64, NodeId);

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
enum AbdMsg {
    Put(u64, char),
    Get(u64),
    PutOk(u64),
    GetOk(u64, char),
    Query(u64),
    AckQuery(u64, Seq, char),
    Record(u64, Seq, char),
    AckRecord(u64),
}

impl Message for AbdMsg {}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Query { request: u64, requester: NodeId, write: Option<char>, responses: BTreeMap<NodeId, (Seq, char)> },
    Record { request: u64, requester: NodeId, read: Option<char>, acks: BTreeSet<NodeId> },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Abd {
    Server { seq: Seq, val: char, phase: Option<Phase>, local_reads: bool },
    Client { awaiting: Option<(u64, sim_core::OpId)>, op_count: u64 },
}

/// What the clients' history records: calls and what they returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
enum RegisterOp {
    Write(char),
    Read,
    Wrote,
    ReadValue(char),
}

impl Abd {
    /// A client's next call: a put while it has puts left, then a get, each to the next
    /// server in turn (as stateright's `RegisterActor::Client` does).
    fn call(ctx: &mut Context<'_, Abd>, op_count: u64) -> Abd {
        let index = u64::from(ctx.id().0);
        let request = (op_count + 1) * index;
        let server = NodeId(((index + op_count) % servers() as u64) as u32);
        let (msg, op) = if op_count < puts() as u64 {
            // Client k (counted from 0) writes 'A' + k first, then 'Z' - k.
            let base = if op_count == 0 {
                b'A' + (index as u8 - servers() as u8)
            } else {
                b'Z' - (index as u8 - servers() as u8)
            };
            let value = char::from(base);
            (AbdMsg::Put(request, value), RegisterOp::Write(value))
        } else {
            (AbdMsg::Get(request), RegisterOp::Read)
        };
        ctx.send(server, msg);
        let op = ctx.invoke(op);
        Abd::Client { awaiting: Some((request, op)), op_count: op_count + 1 }
    }

    fn on_server_message(&mut self, ctx: &mut Context<'_, Abd>, from: NodeId, msg: AbdMsg) {
        let Abd::Server { seq: my_seq, val: my_val, phase, local_reads } = self else { unreachable!() };
        let quorum = servers() / 2 + 1;
        let peers = |ctx: &Context<'_, Abd>| ctx.peers().filter(|p| p.index() < servers());
        match msg {
            AbdMsg::Get(request) if *local_reads => ctx.send(from, AbdMsg::GetOk(request, *my_val)),
            AbdMsg::Put(request, _) | AbdMsg::Get(request) if phase.is_none() => {
                let write = if let AbdMsg::Put(_, value) = msg { Some(value) } else { None };
                for peer in peers(ctx) {
                    ctx.send(peer, AbdMsg::Query(request));
                }
                let responses = BTreeMap::from([(ctx.id(), (*my_seq, *my_val))]);
                *phase = Some(Phase::Query { request, requester: from, write, responses });
            }
            AbdMsg::Query(request) => ctx.send(from, AbdMsg::AckQuery(request, *my_seq, *my_val)),
            AbdMsg::AckQuery(answer_to, seq, val) => {
                let Some(Phase::Query { request, requester, write, responses }) = phase else { return };
                if *request != answer_to {
                    return;
                }
                responses.insert(from, (seq, val));
                if responses.len() == quorum {
                    let &(mut seq, mut val) =
                        responses.values().max_by_key(|(seq, _)| *seq).expect("a majority answered");
                    let read = match write.take() {
                        Some(value) => {
                            seq = (seq.0 + 1, ctx.id());
                            val = value;
                            None
                        }
                        None => Some(val),
                    };
                    let (request, requester) = (*request, *requester);
                    for peer in peers(ctx) {
                        ctx.send(peer, AbdMsg::Record(request, seq, val));
                    }
                    if seq > *my_seq {
                        (*my_seq, *my_val) = (seq, val);
                    }
                    let acks = BTreeSet::from([ctx.id()]);
                    *phase = Some(Phase::Record { request, requester, read, acks });
                }
            }
            AbdMsg::Record(request, seq, val) => {
                ctx.send(from, AbdMsg::AckRecord(request));
                if seq > *my_seq {
                    (*my_seq, *my_val) = (seq, val);
                }
            }
            AbdMsg::AckRecord(answer_to) => {
                let Some(Phase::Record { request, requester, read, acks }) = phase else { return };
                if *request != answer_to || !acks.insert(from) {
                    return;
                }
                if acks.len() == quorum {
                    let reply = match read {
                        Some(value) => AbdMsg::GetOk(*request, *value),
                        None => AbdMsg::PutOk(*request),
                    };
                    ctx.send(*requester, reply);
                    *phase = None;
                }
            }
            _ => {}
        }
    }
}

impl Node for Abd {
    type Msg = AbdMsg;
    type Timer = ();
    type Durable = ();
    type Op = RegisterOp;

    fn on_start(&mut self, ctx: &mut Context<'_, Abd>) {
        if let Abd::Client { .. } = self {
            *self = Abd::call(ctx, 0);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Abd>, from: NodeId, msg: AbdMsg) {
        match self {
            Abd::Server { .. } => self.on_server_message(ctx, from, msg),
            Abd::Client { awaiting: Some((request, op)), op_count } => {
                let result = match msg {
                    AbdMsg::PutOk(reply_to) if reply_to == *request => RegisterOp::Wrote,
                    AbdMsg::GetOk(reply_to, value) if reply_to == *request => RegisterOp::ReadValue(value),
                    _ => return,
                };
                let (op, op_count) = (*op, *op_count);
                ctx.ret(op, result.clone());
                *self = match result {
                    RegisterOp::Wrote => Abd::call(ctx, op_count),
                    _ => Abd::Client { awaiting: None, op_count: op_count + 1 },
                };
            }
            Abd::Client { awaiting: None, .. } => {}
        }
    }

    fn on_timer(&mut self, _ctx: &mut Context<'_, Abd>, _timer: ()) {}
}

/// `linearizable`: the clients' history is linearizable against a register (initially
/// `'\0'`), checked whenever an operation returns. Real-time order is the order of the
/// history's entries.
#[derive(Clone, Default)]
struct Linearizable {
    cursor: usize,
    ops: Vec<Operation<RegisterInput, RegisterOutput>>,
    /// Each client's open operation, by node index.
    open: Vec<Option<usize>>,
}

fn register_value(c: char) -> Value {
    Value::Int(i64::from(u32::from(c)))
}

impl Invariant<Abd> for Linearizable {
    fn name(&self) -> &'static str {
        "linearizable"
    }

    fn check_step(&mut self, world: &World<Abd>) -> Result<(), CheckError> {
        let (first, fresh) = world.history().since(&mut self.cursor);
        let mut returned = false;
        for (position, entry) in (first as u64..).zip(fresh) {
            let node = entry.node.index();
            if self.open.len() <= node {
                self.open.resize(node + 1, None);
            }
            match (entry.kind, &entry.op) {
                (EntryKind::Invoke { .. }, op) => {
                    let input = match op {
                        RegisterOp::Write(value) => RegisterInput::Write(register_value(*value)),
                        _ => RegisterInput::Read,
                    };
                    self.open[node] = Some(self.ops.len());
                    self.ops.push(Operation {
                        client: node as u64,
                        call: position,
                        ret: None,
                        input,
                        output: None,
                    });
                }
                (EntryKind::Return { .. }, op) => {
                    let i = self.open[node].take().expect("a return follows its call");
                    self.ops[i].ret = Some(position);
                    self.ops[i].output = Some(match op {
                        RegisterOp::ReadValue(value) => RegisterOutput::Read(register_value(*value)),
                        _ => RegisterOutput::Ok,
                    });
                    returned = true;
                }
                _ => {}
            }
        }
        if returned && !check(&Register { initial: register_value(char::default()) }, &self.ops) {
            return Err(format!("the history is not linearizable: {:?}", world.history().entries()).into());
        }
        Ok(())
    }
}

/// Reliable links that reorder: any message in flight may arrive next, none is lost or
/// duplicated (stateright's unordered non-duplicating network).
fn explore_config() -> SimConfig {
    let mut config =
        SimConfig::new(1, NetworkConfig::uniform(LinkConfig::reliable(Latency::uniform_ms(1, 10))));
    config.trace_mode = TraceMode::HashOnly;
    config
}

fn dsim_register(local_reads: bool) -> Simulation<Abd> {
    let mut sim = Simulation::new(explore_config(), servers() + clients(), move |id, _: &()| {
        if id.index() < servers() {
            Abd::Server { seq: (0, id), val: char::default(), phase: None, local_reads }
        } else {
            Abd::Client { awaiting: None, op_count: 0 }
        }
    });
    sim.add_invariant(Box::new(Linearizable::default()));
    sim
}

// ---------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------

/// What one row measured.
struct Figures {
    states: u64,
    transitions: u64,
    seconds: f64,
    verdict: String,
}

fn dsim_verdict(exploration: &Exploration) -> String {
    match &exploration.verdict {
        Verdict::Exhausted => "pass (exhausted)".to_string(),
        Verdict::Violation { path, violation } => {
            format!("violation: {} after {} steps", violation.invariant, path.len())
        }
        Verdict::Stopped(stop) => format!("stopped: {stop:?}"),
    }
}

#[allow(clippy::disallowed_methods)] // The wall clock times the search; nothing simulated reads it.
fn timed<T>(run: impl FnOnce() -> T) -> (T, f64) {
    let start = std::time::Instant::now();
    let out = run();
    (out, start.elapsed().as_secs_f64())
}

fn run_stateright(local_reads: bool) -> Figures {
    let (checker, seconds) = timed(|| stateright_model(local_reads).checker().threads(1).spawn_bfs().join());
    let verdict = match checker.discovery("linearizable") {
        Some(path) => format!("violation: linearizable after {} steps", path.into_actions().len()),
        None => "pass (exhausted)".to_string(),
    };
    Figures {
        states: checker.unique_state_count() as u64,
        transitions: checker.state_count() as u64,
        seconds,
        verdict,
    }
}

fn run_dsim_register(local_reads: bool) -> Figures {
    let options = ExploreOptions { strategy: Strategy::Bfs, ..ExploreOptions::default() };
    let (exploration, seconds) = timed(|| explore(dsim_register(local_reads), &options, &mut |_| None));
    Figures {
        states: exploration.stats.states,
        transitions: exploration.stats.transitions,
        seconds,
        verdict: dsim_verdict(&exploration),
    }
}

/// The bundled at-most-once protocol, as `dsim explore` would build it.
fn run_dsim_at_most_once() -> Figures {
    let registry = Registry::bundled();
    let protocol = registry.get("at-most-once").expect("at-most-once is bundled");
    let params = serde_json::json!({
        "timeout_ms": 30, "execute_ms": 10, "dedup": "durable", "discard": "seq-ack", "retries_max": 2
    });
    let workload = Workload { clients: 2, ops_per_client: 2, keys: 1, ..Workload::default() };
    let instance = protocol.instance(&params, &workload, explore_config(), None);
    let options = ExploreOptions {
        budgets: Budgets { drops: 1, duplicates: 1, crashes: 1 },
        rules: FaultRules::from(&instance.fault_model),
        strategy: Strategy::Bfs,
        max_states: Some(AT_MOST_ONCE_MAX_STATES),
        ..ExploreOptions::default()
    };
    let (exploration, seconds) = timed(|| instance.simulation.explore(&options, &mut |_| None));
    Figures {
        states: exploration.stats.states,
        transitions: exploration.stats.transitions,
        seconds,
        verdict: dsim_verdict(&exploration),
    }
}

/// The at-most-once row's bound on distinct states (the search stops there): its space is
/// not exhausted in minutes, and each state kept costs about 13 KB (docs/performance.md).
const AT_MOST_ONCE_MAX_STATES: u64 = 200_000;

/// Which search a row runs.
#[derive(Clone, Copy)]
enum Tool {
    Stateright,
    Dsim,
}

/// A row: its name, the tool, the register's size, whether the server is the known-buggy
/// one (`None`: the at-most-once row).
type Row = (&'static str, Tool, Option<(Size, bool)>);

const fn abd(servers: usize, clients: usize, puts: usize, buggy: bool) -> Option<(Size, bool)> {
    Some((Size { servers, clients, puts }, buggy))
}

/// The rows, in the order printed, in pairs (stateright's, then dsim's).
const ROWS: &[Row] = &[
    ("stateright abd 2x3 pg", Tool::Stateright, abd(2, 3, 1, false)),
    ("dsim abd 2x3 pg", Tool::Dsim, abd(2, 3, 1, false)),
    ("stateright abd 2x3 ppg", Tool::Stateright, abd(2, 3, 2, false)),
    ("dsim abd 2x3 ppg", Tool::Dsim, abd(2, 3, 2, false)),
    ("stateright abd 3x1 ppg", Tool::Stateright, abd(3, 1, 2, false)),
    ("dsim abd 3x1 ppg", Tool::Dsim, abd(3, 1, 2, false)),
    ("stateright abd-bug 3x2", Tool::Stateright, abd(3, 2, 1, true)),
    ("dsim abd-bug 3x2", Tool::Dsim, abd(3, 2, 1, true)),
    ("dsim at-most-once 2x2", Tool::Dsim, None),
];

fn run_row(row: &Row) -> Figures {
    match *row {
        (_, tool, Some((size, buggy))) => {
            SIZE.set(size).expect("one row a process");
            match tool {
                Tool::Stateright => run_stateright(buggy),
                Tool::Dsim => run_dsim_register(buggy),
            }
        }
        (_, _, None) => run_dsim_at_most_once(),
    }
}

/// A line of /proc/self/status, in kB (`VmHWM`: peak resident memory).
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Fresh runs of each row; the fastest is shown.
const RUNS: usize = 3;

fn seconds_of(line: &str) -> f64 {
    line.split('\t').nth(4).and_then(|s| s.parse().ok()).unwrap_or(f64::INFINITY)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--row") {
        let name = &args[i + 1];
        let row = ROWS.iter().find(|row| row.0 == name).unwrap_or_else(|| panic!("no row {name:?}"));
        let before_kb = status_kb("VmRSS");
        let figures = run_row(row);
        let peak_kb = status_kb("VmHWM");
        println!(
            "ROW\t{name}\t{}\t{}\t{}\t{before_kb}\t{peak_kb}\t{}",
            figures.states, figures.transitions, figures.seconds, figures.verdict
        );
        return;
    }
    // `cargo bench` passes `--bench`; any other word keeps only the rows whose names have it.
    let filter: Vec<&String> = args[1..].iter().filter(|a| !a.starts_with("--")).collect();
    let exe = std::env::current_exe().expect("the bench knows its own path");
    println!(
        "{:<24} {:>9} {:>11} {:>7} {:>9} {:>8} {:>7}  verdict",
        "row", "states", "transitions", "secs", "states/s", "peak MB", "B/state"
    );
    let mut rate_of = BTreeMap::new();
    for row in ROWS {
        let name = row.0;
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        // The fastest of a few fresh runs: the machine is shared, and noise only slows.
        let line = (0..RUNS)
            .map(|_| {
                let output =
                    Command::new(&exe).args(["--row", name]).output().expect("the bench re-runs itself");
                let stdout = String::from_utf8_lossy(&output.stdout);
                match stdout.lines().find(|l| l.starts_with("ROW\t")) {
                    Some(line) => line.to_string(),
                    None => panic!("row {name} failed: {}", String::from_utf8_lossy(&output.stderr)),
                }
            })
            .min_by(|a, b| seconds_of(a).total_cmp(&seconds_of(b)))
            .expect("at least one run");
        let fields: Vec<&str> = line.split('\t').collect();
        let number = |i: usize| fields[i].parse::<f64>().expect("a number");
        let (states, transitions, seconds, peak_kb) = (number(2), number(3), number(4), number(6));
        let rate = states / seconds;
        // Whether it passed or found the bug: a dsim row must agree with its stateright row.
        let found = fields[7].starts_with("violation");
        rate_of.insert(name, (rate, found));
        println!(
            "{name:<24} {states:>9} {transitions:>11} {seconds:>7.2} {rate:>9.0} {:>8.1} {:>7.0}  {}",
            peak_kb / 1024.0,
            peak_kb * 1024.0 / states,
            fields[7]
        );
        if let Some(stateright) =
            name.strip_prefix("dsim ").and_then(|rest| rate_of.get(format!("stateright {rest}").as_str()))
        {
            let (stateright_rate, stateright_found) = *stateright;
            assert_eq!(found, stateright_found, "{name}: the two tools' verdicts disagree");
            println!(
                "{:<24} verdicts agree; dsim / stateright, distinct states per second: {:.2}",
                "",
                rate / stateright_rate
            );
        }
    }
}
