//! `snapshot-bank`: the classic Chandy-Lamport workload. Each process holds a balance;
//! at random times it sends a random amount (at most its balance) to a random process it
//! has a channel to. Money only moves, so at every moment the balances plus the money in
//! flight add up to `processes x initial_balance`, and a snapshot must say so:
//! `snapshot-conserves-money`. A snapshot that records balances only (`record_channel:
//! none`) misses the money in flight.

use super::invariants::Conserved;
use super::layer::{AppContext, Application, SnapshotNode};
use super::topology::TopologySpec;
use super::{default_snapshots, LayerParams, OnMarker, RecordChannel, SnapshotSpec};
use crate::kv::Workload;
use crate::registry::{check_max, check_ms, Facts, FieldError, Protocol, RunReportOf, ScenarioView};
use crate::{ParamDoc, Setup};
use serde::{Deserialize, Serialize};
use sim_core::{Message, NodeId, SimDuration};

pub const SNAPSHOT_CONSERVES_MONEY: &str = "snapshot-conserves-money";

/// Money on its way from one process to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Transfer {
    pub amount: u64,
}

impl Message for Transfer {}

/// The process's one timer: time to transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Pay;

/// One account.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Account {
    pub balance: u64,
    transfers_left: u32,
    #[serde(skip)]
    interval_ms: (u64, u64),
}

impl Account {
    fn schedule(&mut self, ctx: &mut AppContext<'_, '_, Self>) {
        if self.transfers_left == 0 {
            return;
        }
        self.transfers_left -= 1;
        let (min, max) = self.interval_ms;
        let after = SimDuration::from_micros(ctx.rng().between(min * 1_000, max * 1_000));
        ctx.set_timer(after, Pay);
    }
}

impl Application for Account {
    type Msg = Transfer;
    type Timer = Pay;

    fn on_start(&mut self, ctx: &mut AppContext<'_, '_, Self>) {
        self.schedule(ctx);
    }

    fn on_message(&mut self, _ctx: &mut AppContext<'_, '_, Self>, _from: NodeId, msg: Transfer) {
        self.balance += msg.amount;
    }

    fn on_timer(&mut self, ctx: &mut AppContext<'_, '_, Self>, _timer: Pay) {
        if self.balance > 0 {
            let amount = ctx.rng().between(1, self.balance);
            let to = ctx.random_outgoing();
            self.balance -= amount;
            ctx.send(to, Transfer { amount });
        }
        self.schedule(ctx);
    }

    fn describe(&self) -> String {
        format!("balance {}", self.balance)
    }

    fn describe_msg(msg: &Transfer) -> String {
        format!("transfer {}", msg.amount)
    }
}

impl Conserved for Account {
    const INVARIANT: &'static str = SNAPSHOT_CONSERVES_MONEY;
    const WHAT: &'static str = "money";

    fn held(&self) -> u64 {
        self.balance
    }

    fn carried(msg: &Transfer) -> u64 {
        msg.amount
    }
}

/// Scenario parameters of `snapshot-bank`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BankParams {
    #[serde(default = "default_processes")]
    pub processes: u32,
    #[serde(default)]
    pub topology: TopologySpec,
    #[serde(default = "default_initial_balance")]
    pub initial_balance: u64,
    #[serde(default = "default_interval_ms_min")]
    pub transfer_interval_ms_min: u64,
    #[serde(default = "default_interval_ms_max")]
    pub transfer_interval_ms_max: u64,
    #[serde(default = "default_transfers")]
    pub transfers_per_process: u32,
    #[serde(default = "default_snapshots")]
    pub snapshots: Vec<SnapshotSpec>,
    #[serde(default)]
    pub record_channel: RecordChannel,
    #[serde(default)]
    pub on_marker: OnMarker,
    #[serde(default)]
    pub marker_delay_ms: u64,
}

fn default_processes() -> u32 {
    3
}
fn default_initial_balance() -> u64 {
    1_000
}
fn default_interval_ms_min() -> u64 {
    1
}
fn default_interval_ms_max() -> u64 {
    10
}
fn default_transfers() -> u32 {
    20
}

impl Default for BankParams {
    fn default() -> Self {
        BankParams {
            processes: default_processes(),
            topology: TopologySpec::default(),
            initial_balance: default_initial_balance(),
            transfer_interval_ms_min: default_interval_ms_min(),
            transfer_interval_ms_max: default_interval_ms_max(),
            transfers_per_process: default_transfers(),
            snapshots: default_snapshots(),
            record_channel: RecordChannel::default(),
            on_marker: OnMarker::default(),
            marker_delay_ms: 0,
        }
    }
}

impl BankParams {
    pub fn layer(&self) -> LayerParams<'_> {
        LayerParams {
            protocol: NAME,
            processes: self.processes,
            topology: &self.topology,
            snapshots: &self.snapshots,
            record_channel: self.record_channel,
            on_marker: self.on_marker,
            marker_delay_ms: self.marker_delay_ms,
        }
    }
}

pub const NAME: &str = "snapshot-bank";
/// The most transfers a process makes.
pub const TRANSFERS_PER_PROCESS_MAX: u32 = 100_000;
/// The most money a process starts with: the total (times 200 processes) stays far from
/// overflowing.
pub const INITIAL_BALANCE_MAX: u64 = 1_000_000_000_000;

pub const PARAMS: &[ParamDoc] = &[
    ParamDoc { name: "processes", default: "3", help: "number of processes, 2 to 200" },
    ParamDoc {
        name: "topology",
        default: "complete",
        help:
            "complete | ring | bidirectional-ring | star | {\"edges\": [[from, to], ..]}; strongly connected",
    },
    ParamDoc { name: "initial_balance", default: "1000", help: "money each process starts with" },
    ParamDoc {
        name: "transfer_interval_ms_min",
        default: "1",
        help: "least time between a process's transfers",
    },
    ParamDoc {
        name: "transfer_interval_ms_max",
        default: "10",
        help: "most time between a process's transfers",
    },
    ParamDoc {
        name: "transfers_per_process",
        default: "20",
        help: "transfers each process makes, to 100000",
    },
    ParamDoc {
        name: "snapshots",
        default: "[{\"id\": 0, \"initiators\": [0], \"at_ms\": 20}]",
        help: "the snapshots to take: id, initiators, at_ms (1 to 100 snapshots)",
    },
    ParamDoc {
        name: "record_channel",
        default: "until-marker",
        help: "until-marker | none (buggy: states only)",
    },
    ParamDoc { name: "on_marker", default: "record-once", help: "record-once | record-every-time (buggy)" },
    ParamDoc { name: "marker_delay_ms", default: "0", help: "0, or markers sent this late (buggy)" },
];

/// The bank in the registry.
pub struct SnapshotBank;

impl Protocol for SnapshotBank {
    type Params = BankParams;
    type Node = SnapshotNode<Account>;

    fn name(&self) -> &'static str {
        NAME
    }

    fn summary(&self) -> &'static str {
        "Chandy-Lamport snapshots of processes transferring money"
    }

    fn params_doc(&self) -> &'static [ParamDoc] {
        PARAMS
    }

    fn validate(&self, params: &BankParams, _scenario: &ScenarioView<'_>) -> Result<(), FieldError> {
        params.layer().validate()?;
        let path = |field: &'static str| ["protocol", NAME, field];
        check_max(&path("initial_balance"), params.initial_balance, INITIAL_BALANCE_MAX)?;
        check_max(
            &path("transfers_per_process"),
            params.transfers_per_process.into(),
            TRANSFERS_PER_PROCESS_MAX.into(),
        )?;
        if params.transfer_interval_ms_min > params.transfer_interval_ms_max {
            let why = format!(
                "transfer_interval_ms_min ({}) is above transfer_interval_ms_max ({})",
                params.transfer_interval_ms_min, params.transfer_interval_ms_max
            );
            return Err(FieldError::param(NAME, "transfer_interval_ms_min", why));
        }
        check_ms(&path("transfer_interval_ms_max"), params.transfer_interval_ms_max, 0)?;
        Ok(())
    }

    fn facts(&self, params: &BankParams, _scenario: &ScenarioView<'_>) -> Facts {
        let transfers = u128::from(params.processes) * u128::from(params.transfers_per_process);
        Facts {
            n_nodes: params.processes as usize,
            node_names: format!("0..={} are processes", params.processes.saturating_sub(1)),
            operations: transfers as usize,
            memory_bytes: params.layer().memory_bytes(transfers) + transfers * crate::registry::EVENT_BYTES,
        }
    }

    fn smaller(&self, params: &BankParams) -> Vec<BankParams> {
        let transfers = params.transfers_per_process;
        vec![
            BankParams { transfers_per_process: transfers / 2, ..params.clone() },
            BankParams { transfers_per_process: transfers.saturating_sub(1), ..params.clone() },
        ]
    }

    fn setup(&self, params: &BankParams, _workload: &Workload, _seed: u64) -> Setup<SnapshotNode<Account>> {
        let total = u64::from(params.processes) * params.initial_balance;
        let (balance, transfers) = (params.initial_balance, params.transfers_per_process);
        let interval_ms = (params.transfer_interval_ms_min, params.transfer_interval_ms_max);
        params.layer().setup(total, move |_| Account { balance, transfers_left: transfers, interval_ms })
    }

    fn run_report(&self, _params: &BankParams) -> Option<RunReportOf<SnapshotNode<Account>>> {
        Some(super::report::report::<Account>)
    }
}
