//! Primary-backup replication with a test-and-set arbiter (CS351 notes, section 2.2).
//!
//! **The algorithm.** One server is the primary, the others are backups. Clients send
//! every operation to the primary through the at-most-once client stub (request ids,
//! re-sends, acks). The primary runs an update through its dedup layer and applies it,
//! forwards it to every live backup (one round, in parallel), and answers the client only
//! when every live backup has acknowledged it: that reply is the **commit point** (the
//! notes' Definition 2.4). A read is answered from the primary's store, but only once
//! every update applied before it is committed, so no client ever sees an update that a
//! failover could still take back. Backups apply the primary's stream in order (items
//! that overtake each other wait their turn) and acknowledge how far they have got.
//!
//! **Failure detection.** While clients are active the primary sends a heartbeat every
//! `heartbeat_ms`; a backup that hears none for `detect_ms` takes the primary for crashed.
//! A backup that does not acknowledge a forwarded item within `detect_ms` is taken for
//! crashed by the primary, which stops waiting for it. Both rest on the fault model's
//! assumption that links between servers lose nothing and deliver within
//! `(detect_ms - heartbeat_ms) / 2`: a timeout then means a crash, never a slow link. When
//! clients stop, the primary tells the backups it is idle and stops; the next request (or
//! a backup that got a client's request and pings it) starts the heartbeats again, so a
//! finished workload ends the run.
//!
//! **Failover.** The backups that time out race to the arbiter (node 0, assumed never to
//! fail, as the notes assume) with `test_and_set(e)`: "replace the primary of epoch e".
//! The arbiter keeps one flag per epoch; setting it is a durable write taking `write_ms`,
//! and a lock makes a second caller wait for the first write, then read the flag as set
//! and lose. The winner becomes the primary of epoch e + 1: its first stream item is a
//! snapshot of everything it has applied (store, reply cache, applied ids), which replaces
//! each backup's state in one step; then it tells the clients. An update the old primary
//! applied but did not commit is therefore **kept if the winner had applied it, and dropped
//! everywhere if not**, never half-applied; no client was told of it, and the client's
//! re-send either finds the cached reply or runs the update afresh. Losers follow the
//! winner. A crashed server that restarts comes back empty and asks to rejoin: the
//! primary sends it a snapshot and counts it among the backups from then on; until its
//! snapshot arrives it never takes part in a failover.
//!
//! **Invariants.** `single-primary` (at most one live server acts as primary at any
//! instant, from the servers' own state), `kv-linearizable` (kv.rs's, over what clients
//! saw), `no-acknowledged-update-lost` (every update acknowledged to a client is applied
//! at every later primary), `every-request-completed` (end of run; clients never give up).
//!
//! **Known-buggy variants.** `test_and_set: no-lock` (the notes' code: a second call is
//! handled while the first is still writing the flag, both read it unset, two backups
//! become primary: `single-primary`); `commit: before-backups` (the primary answers at once
//! and replicates with its next heartbeat: an update acknowledged just before the primary
//! crashes never reaches a backup: `no-acknowledged-update-lost`).

mod arbiter;
mod client;
mod invariants;
mod server;

pub use arbiter::Arbiter;
pub use client::{Client, ROTATE_AFTER};
pub use invariants::{NoAcknowledgedUpdateLost, SinglePrimary, NO_ACKNOWLEDGED_UPDATE_LOST, SINGLE_PRIMARY};
pub use server::{Replica, Role, Server};

use crate::at_most_once::{
    CallerNode, EveryRequestCompleted, ReplyCache, ReplyMatching, RequestHeader, StubConfig,
};
use crate::kv::{KvLinearizable, KvOp, KvRecord, KvResult, RequestId, Workload};
use crate::registry::{check_max, check_ms, Facts, FieldError, Protocol, ScenarioView, NODE_BYTES, OP_BYTES};
use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::{
    Context, FaultModel, Invariant, Message, MessageClass, NetworkAssumptions, Node, NodeId, SimDuration,
};
use std::collections::BTreeMap;

/// The arbiter's id; servers are 1..=1+backups (1 the first primary), clients follow.
pub const ARBITER: NodeId = NodeId(0);

// ---------------------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------------------

/// How the arbiter keeps two test-and-set calls apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestAndSetMode {
    /// A call waits while another call's flag write is in progress.
    #[default]
    Locked,
    /// The notes' code: it unlocks a different lock than it locked, so nothing keeps two
    /// callers apart. Buggy on purpose.
    NoLock,
}

/// When the primary answers an update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    /// After every live backup acknowledged it (the commit point).
    #[default]
    AfterBackups,
    /// At once, replicating with the next heartbeat (asynchronous replication). Buggy on
    /// purpose.
    BeforeBackups,
}

impl TestAndSetMode {
    /// How this mode can let two servers act as primary, for violation reports.
    pub fn mechanism(self) -> &'static str {
        match self {
            TestAndSetMode::NoLock => {
                "test_and_set: no-lock is the notes' code, which unlocks a different lock than it \
                 locked: the second backup's call was handled while the first call's flag write \
                 was still in progress, so both read the flag as unset and both won \
                 (docs/protocols/primary-backup.md, \"The arbiter\")"
            }
            TestAndSetMode::Locked => {
                "test_and_set: locked should have prevented this; check that the links between \
                 servers keep the fault model's bound (a slow heartbeat looks like a crash)"
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Messages, timers, durable storage, the node
// ---------------------------------------------------------------------------------------

/// An item of a primary's stream to its backups.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Replicated {
    /// An update the primary applied, with the result it got (the backup checks its own).
    Update { header: RequestHeader, op: KvOp, result: KvResult },
    /// The whole replicated state: a new primary's first item.
    Snapshot(Box<Replica>),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PbMsg {
    /// Client to server.
    Request { header: RequestHeader, op: KvOp },
    /// Server to client.
    Reply { reply_to: RequestId, result: KvResult },
    /// A server that is not the primary to a client: the primary it knows.
    Redirect { epoch: u64, primary: NodeId },
    /// A new primary (the sender) to every client.
    NewPrimary { epoch: u64 },
    /// Primary to backup: item `seq` of the epoch's stream.
    Replicate { epoch: u64, seq: u64, item: Replicated },
    /// Backup to primary: every item up to `seq` applied.
    Ack { epoch: u64, seq: u64 },
    /// Primary to backups: alive; `idle`: clients are quiet, stop watching.
    Heartbeat { epoch: u64, beat: u64, idle: bool },
    /// Backup to an idle primary: a client wants you; heartbeat again.
    Ping { epoch: u64 },
    /// Backup to arbiter: replace the primary of `epoch`.
    TestAndSet { epoch: u64 },
    /// Arbiter to backup: who replaced the primary of `epoch` (the caller won if it did).
    TestAndSetReply { epoch: u64, winner: NodeId },
    /// A restarted server to every other server: I am back, empty; the primary answers
    /// with a snapshot and takes it on as a backup.
    Join,
}

impl Message for PbMsg {
    fn class(&self) -> MessageClass {
        match self {
            PbMsg::Request { .. } | PbMsg::Replicate { .. } | PbMsg::TestAndSet { .. } => {
                MessageClass::Request
            }
            PbMsg::Reply { .. } | PbMsg::Ack { .. } | PbMsg::TestAndSetReply { .. } => MessageClass::Reply,
            _ => MessageClass::Other,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum PbTimer {
    /// Client: no reply to this call yet.
    Retry(RequestId),
    /// Client: think time is over.
    Think,
    /// Primary: time for a heartbeat.
    Heartbeat,
    /// Backup: no heartbeat for the detection time.
    Watch,
    /// Primary: every live backup should have acknowledged `seq` by now.
    AckTimeout { epoch: u64, seq: u64 },
    /// Arbiter: the durable write that sets `epoch`'s flag for `caller` is done.
    FlagWritten { caller: NodeId, epoch: u64 },
    /// A restarted server: no snapshot yet, ask again.
    JoinRetry,
}

/// What survives a crash: the arbiter's flags (epoch -> the server that replaced its
/// primary), and a server's reply cache (kept by the dedup layer's write-through; a
/// restarted server rejoins from the primary's snapshot instead, so nothing reads it back).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct PbDurable {
    pub flags: BTreeMap<u64, NodeId>,
    pub replies: ReplyCache<KvResult>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PbNode {
    Arbiter(Arbiter),
    Server(Box<Server>),
    Client(Client),
}

impl Node for PbNode {
    type Msg = PbMsg;
    type Timer = PbTimer;
    type Durable = PbDurable;
    type Op = KvRecord;

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        match self {
            PbNode::Server(server) if ctx.is_restart() => server.rejoin(ctx),
            PbNode::Client(client) => client.fill(ctx),
            _ => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, from: NodeId, msg: PbMsg) {
        match (self, msg) {
            (PbNode::Arbiter(arbiter), PbMsg::TestAndSet { epoch }) => {
                arbiter.on_test_and_set(ctx, from, epoch)
            }
            (PbNode::Server(server), msg) => server.on_message(ctx, from, msg),
            (PbNode::Client(client), msg) => client.on_message(ctx, from, msg),
            (node, msg) => panic!("{node:?} cannot handle {msg:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: PbTimer) {
        match (self, timer) {
            (PbNode::Arbiter(arbiter), PbTimer::FlagWritten { caller, epoch }) => {
                arbiter.on_written(ctx, caller, epoch)
            }
            (PbNode::Server(server), timer) => server.on_timer(ctx, timer),
            (PbNode::Client(client), timer) => client.on_timer(ctx, timer),
            (node, timer) => panic!("{node:?} cannot handle {timer:?}"),
        }
    }
}

impl CallerNode for PbNode {
    type Request = KvOp;

    fn request_message(header: RequestHeader, op: KvOp) -> PbMsg {
        PbMsg::Request { header, op }
    }

    fn retry_timer(id: RequestId) -> PbTimer {
        PbTimer::Retry(id)
    }
}

impl crate::at_most_once::KvCaller for PbNode {
    fn think_timer() -> PbTimer {
        PbTimer::Think
    }
}

/// The rare paths primary-backup marks, so fuzz campaigns can say which they reached.
pub const SOMETIMES: &[&str] = &[
    BACKUP_SUSPECTS_PRIMARY,
    BACKUP_TOOK_OVER,
    SECOND_CALLER_LOST,
    CALLER_WAITED_FOR_LOCK,
    OVERLAPPING_TEST_AND_SET,
    BACKUP_DROPPED,
    SERVER_REJOINED,
    DUPLICATE_ANSWERED_FROM_CACHE,
    CLIENT_REDIRECTED,
];
pub const BACKUP_SUSPECTS_PRIMARY: &str =
    "primary-backup: a backup heard no heartbeat and suspects the primary";
pub const BACKUP_TOOK_OVER: &str = "primary-backup: a backup won the test-and-set and took over";
pub const SECOND_CALLER_LOST: &str = "primary-backup: a test-and-set found the flag set and lost";
pub const CALLER_WAITED_FOR_LOCK: &str = "primary-backup: a test-and-set waited for another's flag write";
pub const OVERLAPPING_TEST_AND_SET: &str =
    "primary-backup: a test-and-set read the flag while another's write was in progress";
pub const BACKUP_DROPPED: &str = "primary-backup: the primary stopped waiting for a silent backup";
pub const DUPLICATE_ANSWERED_FROM_CACHE: &str =
    "primary-backup: a re-sent update was answered from the reply cache";
pub const SERVER_REJOINED: &str = "primary-backup: a restarted server rejoined from the primary's snapshot";
pub const CLIENT_REDIRECTED: &str = "primary-backup: a client re-aimed its calls at a new primary";

// ---------------------------------------------------------------------------------------
// Parameters and setup
// ---------------------------------------------------------------------------------------

/// Scenario parameters of primary-backup.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PbParams {
    /// How many backups besides the primary.
    #[serde(default = "default_backups")]
    pub backups: u32,
    /// How often the primary sends a heartbeat while clients are active.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// How long without a heartbeat (or an acknowledgement) before a server is taken for
    /// crashed.
    #[serde(default = "default_detect_ms")]
    pub detect_ms: u64,
    /// How long without a client request before the primary goes idle.
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
    /// How long the arbiter's durable write of a flag takes.
    #[serde(default = "default_write_ms")]
    pub write_ms: u64,
    #[serde(default)]
    pub test_and_set: TestAndSetMode,
    #[serde(default)]
    pub commit: CommitMode,
    /// How long a client waits for a reply before re-sending.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Sequence numbers a client may have beyond its ack (its calls in flight).
    #[serde(default = "default_window")]
    pub window: u32,
}

fn default_backups() -> u32 {
    2
}
fn default_heartbeat_ms() -> u64 {
    10
}
fn default_detect_ms() -> u64 {
    50
}
fn default_idle_ms() -> u64 {
    200
}
fn default_write_ms() -> u64 {
    10
}
fn default_timeout_ms() -> u64 {
    100
}
fn default_window() -> u32 {
    1
}

impl Default for PbParams {
    fn default() -> Self {
        PbParams {
            backups: default_backups(),
            heartbeat_ms: default_heartbeat_ms(),
            detect_ms: default_detect_ms(),
            idle_ms: default_idle_ms(),
            write_ms: default_write_ms(),
            test_and_set: TestAndSetMode::default(),
            commit: CommitMode::default(),
            timeout_ms: default_timeout_ms(),
            window: default_window(),
        }
    }
}

/// The most backups a scenario may ask for (every update goes to each).
pub const BACKUPS_MAX: u32 = 64;

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc { name: "backups", default: "2", help: "backups besides the primary (1 to 64)" },
    ParamDoc {
        name: "heartbeat_ms",
        default: "10",
        help: "primary's heartbeat period while clients are active",
    },
    ParamDoc { name: "detect_ms", default: "50", help: "silence before a server is taken for crashed" },
    ParamDoc { name: "idle_ms", default: "200", help: "no client request for this long: heartbeats stop" },
    ParamDoc { name: "write_ms", default: "10", help: "the arbiter's durable flag write" },
    ParamDoc { name: "test_and_set", default: "locked", help: "locked | no-lock (the notes' code, buggy)" },
    ParamDoc { name: "commit", default: "after-backups", help: "after-backups | before-backups (buggy)" },
    ParamDoc {
        name: "timeout_ms",
        default: "100",
        help: "client waits this long for a reply before re-sending",
    },
    ParamDoc { name: "window", default: "1", help: "seqs a client may have beyond its ack" },
];

impl PbParams {
    pub fn n_servers(&self) -> usize {
        1 + self.backups as usize
    }

    /// The servers' ids: 1 (the first primary), then the backups.
    pub fn servers(&self) -> Vec<NodeId> {
        (1..=self.n_servers() as u32).map(NodeId).collect()
    }

    fn stub_config(&self) -> StubConfig {
        StubConfig {
            timeout: SimDuration::from_millis(self.timeout_ms),
            retries_max: None,
            window: self.window,
            matching: ReplyMatching::ById,
        }
    }

    /// The longest a message between servers (or to the arbiter) may take, for a timeout
    /// to mean a crash: a heartbeat's gap plus the delay stays within `detect_ms`, and so
    /// does a forward and its acknowledgement.
    pub fn link_ms_max(&self) -> u64 {
        crate::timely_link_ms(self.heartbeat_ms, self.detect_ms)
    }

    /// The fault model: any servers but one may crash (never the arbiter, never a client),
    /// no partitions, and the links between servers and to the arbiter must be reliable.
    pub fn fault_model(&self) -> FaultModel {
        let servers = self.servers();
        let last = servers.last().expect("at least one server").0;
        FaultModel {
            description: format!(
                "servers n1..n{last} may crash and restart, at most {} down at once (one must \
                 survive); a restarted server rejoins empty, from the primary's snapshot; the \
                 arbiter n0 and clients never crash; no \
                 partitions; links among n0..n{last} lose and duplicate nothing and deliver \
                 within (detect_ms - heartbeat_ms) / 2 = {} ms (a timeout must mean a crash); \
                 links to clients may do anything",
                self.backups,
                self.link_ms_max()
            ),
            may_crash: servers,
            max_down_at_once: self.backups as usize,
            crash_stop: false,
            partitions: false,
            network: NetworkAssumptions {
                lossless: true,
                no_duplicates: true,
                delivery_max: Some(SimDuration::from_millis(self.link_ms_max())),
                among: Some(1 + self.n_servers() as u32),
                ..NetworkAssumptions::default()
            },
        }
    }
}

/// Builds the arbiter, the servers and one client per entry of `ops`.
pub fn setup(params: &PbParams, ops: Vec<Vec<KvOp>>, think: SimDuration) -> Setup<PbNode> {
    let n_clients = ops.len();
    let n_ops = ops.iter().map(Vec::len).sum();
    let params = params.clone();
    let servers = params.servers();
    let first_client = 1 + servers.len();
    let clients: Vec<NodeId> = (first_client..first_client + n_clients).map(|i| NodeId(i as u32)).collect();
    let mut node_names = vec!["arbiter".to_string(), "primary".to_string()];
    node_names.extend((1..=params.backups).map(|i| format!("backup {i}")));
    node_names.extend((1..=n_clients).map(|i| format!("client {i}")));
    let invariants: Vec<Box<dyn Invariant<PbNode>>> = vec![
        Box::new(SinglePrimary::explained(params.test_and_set.mechanism())),
        Box::new(KvLinearizable::default()),
        Box::new(NoAcknowledgedUpdateLost::default()),
        Box::new(EveryRequestCompleted::new(n_ops)),
    ];
    let config = params.stub_config();
    let fault_model = params.fault_model();
    Setup {
        n_nodes: first_client + n_clients,
        build: Box::new(move |id, _stored| {
            if id == ARBITER {
                PbNode::Arbiter(Arbiter::new(params.test_and_set, SimDuration::from_millis(params.write_ms)))
            } else if id.index() < first_client {
                PbNode::Server(Box::new(Server::new(&params, id, servers.clone(), clients.clone())))
            } else {
                let ops = ops[id.index() - first_client].clone();
                PbNode::Client(Client::new(ops, config, think, servers.clone()))
            }
        }),
        invariants,
        sometimes: SOMETIMES,
        fault_model,
        node_names,
        client_history: Some(crate::kv::client_history),
    }
}

/// Primary-backup in the registry.
pub struct PrimaryBackup;

impl Protocol for PrimaryBackup {
    type Params = PbParams;
    type Node = PbNode;

    fn name(&self) -> &'static str {
        "primary-backup"
    }

    fn summary(&self) -> &'static str {
        "primary-backup replication: commit after every backup, heartbeats, test-and-set failover"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn uses_workload(&self) -> bool {
        true
    }

    fn validate(&self, params: &PbParams, _scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        let path = |field: &'static str| ["protocol", "primary-backup", field];
        let at = |field: &'static str, why: String| FieldError::param("primary-backup", field, why);
        if params.backups == 0 {
            return Err(at(
                "backups",
                "must be at least 1: with no backup there is nothing to fail over to".into(),
            ));
        }
        check_max(&path("backups"), u64::from(params.backups), u64::from(BACKUPS_MAX))?;
        check_ms(&path("heartbeat_ms"), params.heartbeat_ms, 1)?;
        check_ms(&path("detect_ms"), params.detect_ms, 1)?;
        check_ms(&path("idle_ms"), params.idle_ms, 1)?;
        check_ms(&path("write_ms"), params.write_ms, 0)?;
        check_ms(&path("timeout_ms"), params.timeout_ms, 1)?;
        if params.detect_ms < 2 * params.heartbeat_ms {
            return Err(at(
                "detect_ms",
                format!(
                    "{} ms is too short: at least two heartbeats ({} ms), or a heartbeat merely \
                     delayed looks like a crash",
                    params.detect_ms,
                    2 * params.heartbeat_ms
                ),
            ));
        }
        if params.idle_ms < params.detect_ms {
            return Err(at(
                "idle_ms",
                format!("{} ms is too short: at least detect_ms ({} ms)", params.idle_ms, params.detect_ms),
            ));
        }
        if params.window == 0 {
            return Err(at("window", "must be at least 1: a window of 0 allows no call".into()));
        }
        check_max(&path("window"), u64::from(params.window), u64::from(Workload::OPS_PER_CLIENT_MAX))?;
        Ok(())
    }

    fn facts(&self, params: &PbParams, scenario: &ScenarioView<'_>) -> Facts {
        let clients = scenario.workload.n_clients();
        let servers = params.n_servers().min(BACKUPS_MAX as usize + 1);
        let ops = scenario.workload.n_ops() as u128;
        Facts {
            n_nodes: 1 + servers + clients,
            node_names: format!(
                "0 is the arbiter, 1 the first primary, 2..={servers} backups, {}..={} clients",
                servers + 1,
                servers + clients
            ),
            operations: scenario.workload.n_ops(),
            // Every server keeps each update's id and reply, and each snapshot copies them.
            memory_bytes: (1 + servers as u128 + clients as u128) * NODE_BYTES
                + ops * OP_BYTES * (1 + servers as u128),
        }
    }

    fn smaller(&self, params: &PbParams) -> Vec<PbParams> {
        let mut smaller = Vec::new();
        if params.backups > 1 {
            smaller.push(PbParams { backups: params.backups - 1, ..params.clone() });
        }
        if params.window > 1 {
            smaller.push(PbParams { window: 1, ..params.clone() });
        }
        smaller
    }

    fn setup(&self, params: &PbParams, workload: &Workload, seed: u64) -> Setup<PbNode> {
        let (ops, think) = workload.for_seed(seed);
        setup(params, ops, think)
    }
}
