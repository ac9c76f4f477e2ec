//! Scenario files: what to simulate, under which network and faults, and what to expect.
//!
//! A scenario is JSON, read with serde; unknown fields are rejected. Every error names the
//! file, the line and column, the field, and what would be valid: syntax and type errors
//! come from serde_json (with the field path from serde_path_to_error), and the checks
//! that need the whole file (a fault naming a node that does not exist) locate their
//! field afterwards. Only this module reads scenario files.

use crate::locate::{locate, render, Seg};
use protocols::kv::Workload;
use protocols::registry::{AnyProtocol, Facts, PathSeg, ScenarioView};
use serde::{Deserialize, Serialize};
use sim_core::explore::{Budgets, Choice};
use sim_core::{
    AppliesTo, Fault, Latency, LinkConfig, LinkOrdering, NetworkConfig, NodeId, Partition, PhysicalClock,
    ScheduledFault, SimConfig, SimDuration, SimRng, SimTime, SlowRule, Stream, TraceMode,
};
use std::path::Path;

/// A scenario file, as written.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub protocol: ProtocolChoice,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub expect: Expect,
    /// Which invariants to check (default: all the protocol has).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invariants: Option<Vec<String>>,
    /// The ranges `dsim fuzz --swarm` draws from (default ranges if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuzz: Option<FuzzSpec>,
    /// The nodes' physical clocks (default: all perfect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_clocks: Option<PhysicalClocksSpec>,
    /// A decision log (`dsim explore` writes one into its failure files): the run takes
    /// these decisions instead of drawing its network's from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// A run by decisions: which message arrives or timer fires at each step, and the faults
/// injected, as `dsim explore` searched them (see `sim_core::explore`). The run has no
/// fault timeline and no random loss, duplication or slow messages; once the decisions are
/// used up it goes on in time order, with no more faults, to its end.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// The faults the decisions may inject, as the search allowed.
    #[serde(default)]
    pub budgets: Budgets,
    /// One a step: `"deliver m3"`, `"fire t1000002"`, `"drop m3"`, `"duplicate m3"`,
    /// `"crash n1"`, `"restart n1"`.
    pub decisions: Vec<Choice>,
}

/// The most decisions a schedule holds.
pub const SCHEDULE_DECISIONS_MAX: usize = 1_000_000;

/// The most faults of each kind an exploration (or a schedule) may inject.
pub const BUDGET_MAX: u32 = 100;

/// Ranges for swarm testing: each fuzzed seed turns each fault kind on or off and draws
/// its rate from these ranges.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FuzzSpec {
    #[serde(default = "default_drop_range")]
    pub drop_probability: [Probability; 2],
    #[serde(default = "default_duplicate_range")]
    pub duplicate_probability: [Probability; 2],
    /// Probability that a message takes an extra 100-1000 ms.
    #[serde(default = "default_slow_range")]
    pub slow_probability: [Probability; 2],
    /// At most this many crash-and-restart pairs per run (of nodes the fault model allows).
    #[serde(default = "default_two")]
    pub crashes_max: u32,
    /// At most this many partitions per run (if the fault model allows them).
    #[serde(default = "default_two")]
    pub partitions_max: u32,
    /// Faults are placed within this window from the start.
    #[serde(default = "default_fault_window")]
    pub fault_window_ms: Millis,
}

fn default_drop_range() -> [Probability; 2] {
    [Probability(0.0), Probability(0.3)]
}
fn default_duplicate_range() -> [Probability; 2] {
    [Probability(0.0), Probability(0.2)]
}
fn default_slow_range() -> [Probability; 2] {
    [Probability(0.0), Probability(0.3)]
}
fn default_two() -> u32 {
    2
}
fn default_fault_window() -> Millis {
    Millis(2_000.0)
}

impl Default for FuzzSpec {
    fn default() -> Self {
        FuzzSpec {
            drop_probability: default_drop_range(),
            duplicate_probability: default_duplicate_range(),
            slow_probability: default_slow_range(),
            crashes_max: default_two(),
            partitions_max: default_two(),
            fault_window_ms: default_fault_window(),
        }
    }
}

/// Skew and drift of the nodes' physical clocks: random within bounds (drawn from the
/// seed), then exact settings for named nodes.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhysicalClocksSpec {
    /// Each node's offset is drawn uniformly from `-skew_ms_max..=skew_ms_max`.
    #[serde(default)]
    pub skew_ms_max: f64,
    /// Each node's drift is drawn uniformly from `-drift_ppm_max..=drift_ppm_max`.
    #[serde(default)]
    pub drift_ppm_max: u32,
    /// Exact clocks for some nodes (they override the random ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeClockSpec>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeClockSpec {
    pub node: u32,
    /// Where the node's clock stands at true time zero (negative: behind).
    #[serde(default)]
    pub offset_ms: f64,
    /// How fast it runs, in parts per million (+100: gains 100 µs per second).
    #[serde(default)]
    pub drift_ppm: i64,
}

/// The largest drift a scenario may give a clock: 10%.
const DRIFT_PPM_MAX: i64 = 100_000;
/// The largest offset a scenario may give a clock: about 11.6 days.
const OFFSET_MS_MAX: f64 = 1e9;

impl PhysicalClocksSpec {
    fn validate(&self, n_nodes: usize, node_names: &str) -> Result<(), (Vec<Seg>, String)> {
        let key = |k: &str| Seg::Key(k.to_string());
        let base = vec![key("physical_clocks")];
        let at = |field: &str| [base.clone(), vec![key(field)]].concat();
        if !(self.skew_ms_max.is_finite() && (0.0..=OFFSET_MS_MAX).contains(&self.skew_ms_max)) {
            return Err((
                at("skew_ms_max"),
                format!(
                    "{} is not valid: expected milliseconds from 0 to {OFFSET_MS_MAX}",
                    shown_f64(self.skew_ms_max)
                ),
            ));
        }
        if i64::from(self.drift_ppm_max) > DRIFT_PPM_MAX {
            return Err((
                at("drift_ppm_max"),
                format!("{} ppm is too much drift: at most {DRIFT_PPM_MAX} (10%)", self.drift_ppm_max),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, clock) in self.nodes.iter().enumerate() {
            let field = |f: &str| [at("nodes"), vec![Seg::Index(i), key(f)]].concat();
            if clock.node as usize >= n_nodes {
                return Err((
                    field("node"),
                    format!(
                        "node {} does not exist: valid nodes are 0..={} ({node_names})",
                        clock.node,
                        n_nodes - 1
                    ),
                ));
            }
            if !seen.insert(clock.node) {
                return Err((field("node"), format!("node {} has two clock settings", clock.node)));
            }
            if !(clock.offset_ms.is_finite() && clock.offset_ms.abs() <= OFFSET_MS_MAX) {
                return Err((
                    field("offset_ms"),
                    format!(
                        "{} is not valid: expected milliseconds from -{OFFSET_MS_MAX} to {OFFSET_MS_MAX}",
                        shown_f64(clock.offset_ms)
                    ),
                ));
            }
            // `unsigned_abs`: `abs` of i64::MIN overflows (and wraps to a negative in release).
            if clock.drift_ppm.unsigned_abs() > DRIFT_PPM_MAX.unsigned_abs() {
                return Err((
                    field("drift_ppm"),
                    format!(
                        "{} ppm is too much drift: expected -{DRIFT_PPM_MAX}..={DRIFT_PPM_MAX} (10%)",
                        clock.drift_ppm
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Each node's clock for `seed`: random draws first (from their own stream, so that
    /// they shift nothing else), then the exact settings.
    pub fn clocks(&self, n_nodes: usize, seed: u64) -> Vec<PhysicalClock> {
        let mut rng = SimRng::new(seed, Stream::Clocks);
        let skew_micros = (self.skew_ms_max * 1_000.0).round() as u64;
        let drift_max = u64::from(self.drift_ppm_max);
        let mut clocks: Vec<PhysicalClock> = (0..n_nodes)
            .map(|_| PhysicalClock {
                offset_micros: rng.between(0, 2 * skew_micros) as i64 - skew_micros as i64,
                drift_ppm: rng.between(0, 2 * drift_max) as i64 - drift_max as i64,
            })
            .collect();
        for clock in &self.nodes {
            clocks[clock.node as usize] = PhysicalClock {
                offset_micros: (clock.offset_ms * 1_000.0).round() as i64,
                drift_ppm: clock.drift_ppm,
            };
        }
        clocks
    }
}

/// The protocol and its parameters: `{"rpc": {"timeout_ms": 50}}`. The name is one the
/// registry knows ([`crate::registry`]); the parameters are that protocol's to read and
/// check (`Scenario::check_protocol`), so this type knows no protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolChoice {
    pub name: String,
    pub params: serde_json::Value,
}

/// A partition's groups: non-empty, each node once and existing, something cut off.
fn validate_groups(
    facts: &Facts,
    at: &dyn Fn(&str) -> Vec<Seg>,
    groups: &[Vec<u32>],
) -> Result<(), (Vec<Seg>, String)> {
    if groups.is_empty() {
        return Err((at("groups"), "no groups: list the groups of nodes that are cut apart".into()));
    }
    // Sets, not a flag per node: 10,000 partitions of 100,000 nodes cost what
    // they list.
    let check_node = |path: Vec<Seg>, node: u32| facts.check_node(path, node);
    let mut listed = std::collections::BTreeSet::new();
    for (g, group) in groups.iter().enumerate() {
        let group_at = [at("groups"), vec![Seg::Index(g)]].concat();
        if group.is_empty() {
            return Err((group_at, "an empty group: every group needs a node".into()));
        }
        for (j, node) in group.iter().enumerate() {
            let node_at = [group_at.clone(), vec![Seg::Index(j)]].concat();
            check_node(node_at.clone(), *node)?;
            if !listed.insert(*node) {
                return Err((node_at, format!("node {node} is listed twice: a node is in one group")));
            }
        }
    }
    let unlisted = listed.len() < facts.n_nodes;
    if groups.len() + usize::from(unlisted) < 2 {
        return Err((
            at("groups"),
            "every node is in one group: nothing is cut off (nodes in no group form \
                 a group of their own)"
                .into(),
        ));
    }
    Ok(())
}

/// A one-way partition's sides: non-empty, disjoint, each node once and existing.
fn validate_sides(
    facts: &Facts,
    at: &dyn Fn(&str) -> Vec<Seg>,
    from: &[u32],
    to: &[u32],
) -> Result<(), (Vec<Seg>, String)> {
    let check_node = |path: Vec<Seg>, node: u32| facts.check_node(path, node);
    let mut side = std::collections::BTreeMap::new();
    for (field, nodes) in [("from", from), ("to", to)] {
        if nodes.is_empty() {
            return Err((at(field), "no nodes: a one-way partition needs a node on each side".into()));
        }
        for (j, node) in nodes.iter().enumerate() {
            let node_at = [at(field), vec![Seg::Index(j)]].concat();
            check_node(node_at.clone(), *node)?;
            match side.insert(*node, field) {
                None => {}
                Some(first) if first == field => {
                    return Err((node_at, format!("node {node} is listed twice in \"{field}\"")))
                }
                Some(_) => {
                    return Err((
                        node_at,
                        format!(
                            "node {node} is in both \"from\" and \"to\": a node cannot be cut off \
                                 from itself"
                        ),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Node checks against a protocol instance's facts.
trait NodeCheck {
    /// Ok if `node` exists, else an error at `path` listing the valid nodes.
    fn check_node(&self, path: Vec<Seg>, node: u32) -> Result<(), (Vec<Seg>, String)>;
}

impl NodeCheck for Facts {
    fn check_node(&self, path: Vec<Seg>, node: u32) -> Result<(), (Vec<Seg>, String)> {
        if (node as usize) < self.n_nodes {
            return Ok(());
        }
        let why = format!(
            "node {node} does not exist: valid nodes are 0..={} ({})",
            self.n_nodes - 1,
            self.node_names
        );
        Err((path, why))
    }
}

/// The registry's protocol names, as a message lists the choices.
fn protocol_names() -> String {
    crate::registry().names().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl Serialize for ProtocolChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.name, &self.params)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for ProtocolChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ProtocolChoice, D::Error> {
        struct Choice;
        impl<'de> serde::de::Visitor<'de> for Choice {
            type Value = ProtocolChoice;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an object naming one protocol, e.g. {{\"rpc\": {{...}}}}")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<ProtocolChoice, E> {
                Err(E::custom(format!(
                    "a protocol is an object naming it and its parameters: write {{\"{name}\": {{...}}}} \
                     ({{}} for the defaults)"
                )))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ProtocolChoice, A::Error> {
                use serde::de::Error;
                let one_key = || {
                    A::Error::custom(format!(
                        "expected an object with exactly one key, one of {}",
                        protocol_names()
                    ))
                };
                let name: String = map.next_key()?.ok_or_else(one_key)?;
                if crate::registry().get(&name).is_none() {
                    return Err(A::Error::custom(format!(
                        "unknown protocol `{}`, expected one of {}",
                        name.chars().take(40).collect::<String>(),
                        protocol_names()
                    )));
                }
                let params: serde_json::Value = map.next_value()?;
                if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(one_key());
                }
                Ok(ProtocolChoice { name, params })
            }
        }
        deserializer.deserialize_any(Choice)
    }
}

/// What the run of the file's own seed must show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Every invariant holds.
    #[default]
    Pass,
    /// This invariant is violated (a teaching demo of a known anomaly).
    Violation(String),
}

/// A probability in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "f64")]
pub struct Probability(pub f64);

impl TryFrom<f64> for Probability {
    type Error = String;
    fn try_from(p: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&p) {
            Ok(Probability(p))
        } else {
            Err(format!("{} is not a probability: expected a number from 0 to 1", shown_f64(p)))
        }
    }
}

/// Milliseconds: a finite, non-negative number, at most 10^9 (about 11.6 days).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Deserialize, Serialize)]
#[serde(try_from = "f64")]
pub struct Millis(pub f64);

impl TryFrom<f64> for Millis {
    type Error = String;
    fn try_from(ms: f64) -> Result<Self, String> {
        if ms.is_finite() && (0.0..=MS_MAX as f64).contains(&ms) {
            Ok(Millis(ms))
        } else {
            Err(format!("{} is not a valid time: expected milliseconds from 0 to {MS_MAX}", shown_f64(ms)))
        }
    }
}

impl Millis {
    fn duration(self) -> SimDuration {
        SimDuration::from_millis_f64(self.0)
    }

    fn time(self) -> SimTime {
        SimTime::ZERO + self.duration()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum LatencySpec {
    Constant { ms: Millis },
    Uniform { ms_min: Millis, ms_max: Millis },
    Exponential { ms_mean: Millis, ms_min: Millis, ms_max: Millis },
}

impl LatencySpec {
    fn latency(self) -> Latency {
        match self {
            LatencySpec::Constant { ms } => Latency::Constant(ms.duration()),
            LatencySpec::Uniform { ms_min, ms_max } => {
                Latency::Uniform { min: ms_min.duration(), max: ms_max.duration() }
            }
            LatencySpec::Exponential { ms_mean, ms_min, ms_max } => Latency::Exponential {
                mean: ms_mean.duration(),
                min: ms_min.duration(),
                max: ms_max.duration(),
            },
        }
    }

    /// Checks min <= mean <= max; returns the variant, the offending field and message.
    fn validate(&self) -> Result<(), (&'static str, &'static str, String)> {
        let (variant, min, max) = match self {
            LatencySpec::Constant { .. } => return Ok(()),
            LatencySpec::Uniform { ms_min, ms_max } => ("uniform", ms_min, ms_max),
            LatencySpec::Exponential { ms_min, ms_max, .. } => ("exponential", ms_min, ms_max),
        };
        if min > max {
            return Err((variant, "ms_min", format!("ms_min ({}) is above ms_max ({})", min.0, max.0)));
        }
        if let LatencySpec::Exponential { ms_mean, .. } = self {
            if ms_mean < min || ms_mean > max {
                return Err((
                    variant,
                    "ms_mean",
                    format!("ms_mean ({}) is outside [ms_min, ms_max] = [{}, {}]", ms_mean.0, min.0, max.0),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    Reliable,
    Unreliable,
    LongDelays,
    LongReordering,
}

impl Preset {
    /// Every preset, in the order `dsim list` shows them.
    pub const ALL: [Preset; 4] =
        [Preset::Reliable, Preset::Unreliable, Preset::LongDelays, Preset::LongReordering];

    /// The name scenario files use.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Reliable => "reliable",
            Preset::Unreliable => "unreliable",
            Preset::LongDelays => "long-delays",
            Preset::LongReordering => "long-reordering",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderingSpec {
    Reorder,
    Fifo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppliesToSpec {
    All,
    Requests,
    Replies,
}

#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlowSpec {
    pub probability: Probability,
    pub latency: LatencySpec,
    #[serde(default = "all")]
    pub applies_to: AppliesToSpec,
}

fn all() -> AppliesToSpec {
    AppliesToSpec::All
}

/// Knobs of a link; each one left out keeps the preset's (or the default link's) value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkKnobs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_probability: Option<Probability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_probability: Option<Probability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<OrderingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<SlowSpec>,
}

impl LinkKnobs {
    fn apply(&self, link: &mut LinkConfig) {
        if let Some(latency) = self.latency {
            link.latency = latency.latency();
        }
        if let Some(p) = self.drop_probability {
            link.drop_probability = p.0;
        }
        if let Some(p) = self.duplicate_probability {
            link.duplicate_probability = p.0;
        }
        if let Some(ordering) = self.ordering {
            link.ordering = match ordering {
                OrderingSpec::Reorder => LinkOrdering::Reorder,
                OrderingSpec::Fifo => LinkOrdering::Fifo,
            };
        }
        if let Some(slow) = self.slow {
            link.slow = Some(SlowRule {
                probability: slow.probability.0,
                latency: slow.latency.latency(),
                applies_to: match slow.applies_to {
                    AppliesToSpec::All => AppliesTo::All,
                    AppliesToSpec::Requests => AppliesTo::Requests,
                    AppliesToSpec::Replies => AppliesTo::Replies,
                },
            });
        }
    }

    fn validate(&self, path: &[Seg]) -> Result<(), (Vec<Seg>, String)> {
        let check = |latency: &LatencySpec, prefix: &[&str]| {
            latency.validate().map_err(|(variant, field, message)| {
                let mut at = path.to_vec();
                at.extend(prefix.iter().chain([&variant, &field]).map(|k| Seg::Key(k.to_string())));
                (at, message)
            })
        };
        if let Some(latency) = &self.latency {
            check(latency, &["latency"])?;
        }
        if let Some(slow) = &self.slow {
            check(&slow.latency, &["slow", "latency"])?;
        }
        Ok(())
    }
}

/// The network: a preset (or the reliable default), knobs on top, and per-link overrides.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Knobs applied on top of the preset, for every link.
    #[serde(default)]
    pub all_links: LinkKnobs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkOverride>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    pub from: u32,
    pub to: u32,
    pub set: LinkKnobs,
}

/// A fault on the timeline: `{"crash": {"node": 0, "at_ms": 500}}`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum FaultSpec {
    Crash {
        node: u32,
        at_ms: Millis,
    },
    Restart {
        node: u32,
        at_ms: Millis,
    },
    /// Nodes in different groups cannot talk; nodes in no group form a group of their own.
    Partition {
        groups: Vec<Vec<u32>>,
        at_ms: Millis,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_ms: Option<Millis>,
    },
    /// Messages from `from` to `to` are lost; the other way works.
    PartitionOneWay {
        from: Vec<u32>,
        to: Vec<u32>,
        at_ms: Millis,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_ms: Option<Millis>,
    },
}

impl FaultSpec {
    fn variant(&self) -> &'static str {
        match self {
            FaultSpec::Crash { .. } => "crash",
            FaultSpec::Restart { .. } => "restart",
            FaultSpec::Partition { .. } => "partition",
            FaultSpec::PartitionOneWay { .. } => "partition-one-way",
        }
    }

    fn at(&self) -> Millis {
        match self {
            FaultSpec::Crash { at_ms, .. }
            | FaultSpec::Restart { at_ms, .. }
            | FaultSpec::Partition { at_ms, .. }
            | FaultSpec::PartitionOneWay { at_ms, .. } => *at_ms,
        }
    }

    /// When the fault's effect ends (its `until_ms`), or when it happens.
    fn last(&self) -> Millis {
        match self {
            FaultSpec::Partition { until_ms: Some(until), .. }
            | FaultSpec::PartitionOneWay { until_ms: Some(until), .. } => *until,
            other => other.at(),
        }
    }
}

/// Run limits and the fault phases.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_steps")]
    pub max_steps: u64,
    #[serde(default = "default_max_time_ms")]
    pub max_time_ms: Millis,
    /// When the network heals (partitions end, no more loss or duplication). Default: at
    /// the end of the last fault of the timeline, if there is one; else never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heal_at_ms: Option<Millis>,
    /// How long after healing end-of-run checks wait for the run to settle.
    #[serde(default = "default_liveness_ms")]
    pub liveness_ms: Millis,
    /// Ends an open-ended run (ping) normally at this time; its end checks run then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at_ms: Option<Millis>,
    /// How many configurations a linearizability search may visit before the check is
    /// reported undecided (exit 3), at most `SEARCH_BUDGET_MAX`.
    #[serde(default = "default_search_budget")]
    pub search_budget: u64,
}

/// The largest `limits.search_budget`: the search's memo holds 32 bytes a configuration,
/// so about 3.2 GB.
pub const SEARCH_BUDGET_MAX: u64 = 100_000_000;

fn default_search_budget() -> u64 {
    sim_core::DEFAULT_SEARCH_BUDGET as u64
}

fn default_max_steps() -> u64 {
    sim_core::DEFAULT_MAX_STEPS
}
fn default_max_time_ms() -> Millis {
    Millis(3_600_000.0)
}
fn default_liveness_ms() -> Millis {
    Millis(60_000.0)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: default_max_steps(),
            max_time_ms: default_max_time_ms(),
            heal_at_ms: None,
            liveness_ms: default_liveness_ms(),
            end_at_ms: None,
            search_budget: default_search_budget(),
        }
    }
}

/// A scenario file that cannot be used, and exactly why.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read the file: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file}: the file is over {max} bytes (16 MiB), the most dsim reads: is it a scenario file?")]
    TooLarge { file: String, max: u64 },
    #[error("{file}:{line}:{column}: {field}{message}")]
    Invalid { file: String, line: usize, column: usize, field: String, message: String },
}

/// Facts about a protocol that validation needs.
pub struct ProtocolFacts {
    pub n_nodes: usize,
    pub invariants: &'static [&'static str],
    pub node_names: String,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = read_text(path)?;
        Scenario::parse(&path.display().to_string(), &text)
    }

    /// Parses and validates scenario text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = parse_json(file, text)?;
        scenario.check(file, text, &[])?;
        Ok(scenario)
    }

    /// Validates a scenario that sits at `prefix` inside the JSON `text` of `file`.
    pub fn check(&self, file: &str, text: &str, prefix: &[Seg]) -> Result<(), ScenarioError> {
        let error =
            |(path, message): (Vec<Seg>, String)| located(file, text, &[prefix, &path].concat(), message);
        // The text has parsed already, so this parse succeeds (else there is nothing to add).
        if let Ok(whole) = serde_json::from_str::<serde_json::Value>(text.strip_prefix(BOM).unwrap_or(text)) {
            let at = prefix.iter().try_fold(&whole, |value, seg| match seg {
                Seg::Key(key) => value.get(key),
                Seg::Index(i) => value.get(i),
            });
            if at.is_some_and(serde_json::Value::is_array) {
                return Err(error((Vec::new(), "expected an object {...}, found an array".into())));
            }
            if let Some(found) = at.and_then(|value| array_for_object(value, &mut Vec::new())) {
                return Err(error(found));
            }
        }
        self.validate().map_err(error)
    }

    /// The protocol's name and its parameters as JSON (as the registry takes them).
    pub fn protocol_choice(&self) -> (String, serde_json::Value) {
        (self.protocol.name.clone(), self.protocol.params.clone())
    }

    /// The scenario's protocol, from the registry.
    pub fn registered(&self) -> &'static dyn AnyProtocol {
        let (name, _) = self.protocol_choice();
        crate::registry().get(&name).expect("a parsed scenario names a registered protocol")
    }

    /// What the protocol's checks may read of the rest of the scenario.
    fn view(&self) -> ScenarioView<'_> {
        ScenarioView {
            workload: &self.workload,
            invariants: self.invariants.as_deref(),
            expect_violation: match &self.expect {
                Expect::Violation(name) => Some(name.as_str()),
                Expect::Pass => None,
            },
            max_steps: self.limits.max_steps,
        }
    }

    /// Reads and validates the protocol's parameters; the instance's facts.
    fn check_protocol(&self) -> Result<Facts, (Vec<Seg>, String)> {
        let (_, params) = self.protocol_choice();
        self.registered().check(&params, &self.view()).map_err(|error| {
            let path = error
                .path
                .into_iter()
                .map(|seg| match seg {
                    PathSeg::Key(key) => Seg::Key(key),
                    PathSeg::Index(i) => Seg::Index(i),
                })
                .collect();
            (path, error.message)
        })
    }

    /// The facts of this scenario's protocol instance (node count and names, size, memory).
    pub fn facts(&self) -> Facts {
        let (_, params) = self.protocol_choice();
        self.registered().facts(&params, &self.view()).expect("a parsed scenario's protocol parameters read")
    }

    /// The invariants a run of this scenario's protocol checks (before its selection).
    pub fn invariant_names(&self) -> Vec<&'static str> {
        let (_, params) = self.protocol_choice();
        self.registered().invariant_names(&params, &self.workload)
    }

    /// Checks everything that needs the whole file, section by section. Sizes come first:
    /// nothing after them allocates per node before they are known to be bounded.
    pub(crate) fn validate(&self) -> Result<(), (Vec<Seg>, String)> {
        let facts = self.validate_sizes()?;
        self.validate_network(&facts)?;
        self.validate_faults(&facts)?;
        self.validate_phases()?;
        self.validate_invariants()?;
        self.validate_fuzz()?;
        self.validate_schedule(&facts)?;
        self.validate_limits()
    }

    /// A schedule: within its bounds, its nodes exist, and no fault timeline beside it.
    fn validate_schedule(&self, facts: &Facts) -> Result<(), (Vec<Seg>, String)> {
        let Some(schedule) = &self.schedule else { return Ok(()) };
        let key = |k: &str| Seg::Key(k.to_string());
        if !self.faults.is_empty() {
            return Err((
                vec![key("faults")],
                "a scenario with a schedule takes its faults from its decisions: remove \"faults\""
                    .to_string(),
            ));
        }
        let budgets = &schedule.budgets;
        for (name, value) in
            [("drops", budgets.drops), ("duplicates", budgets.duplicates), ("crashes", budgets.crashes)]
        {
            if value > BUDGET_MAX {
                return Err((
                    vec![key("schedule"), key("budgets"), key(name)],
                    format!("{value} is above the most a schedule injects, {BUDGET_MAX}"),
                ));
            }
        }
        if schedule.decisions.len() > SCHEDULE_DECISIONS_MAX {
            return Err((
                vec![key("schedule"), key("decisions")],
                format!(
                    "{} decisions: a schedule holds at most {SCHEDULE_DECISIONS_MAX}",
                    schedule.decisions.len()
                ),
            ));
        }
        for (i, decision) in schedule.decisions.iter().enumerate() {
            if let Choice::Crash(node) | Choice::Restart(node) = decision {
                facts.check_node(vec![key("schedule"), key("decisions"), Seg::Index(i)], node.0)?;
            }
        }
        Ok(())
    }

    /// The protocol's parameters, the workload, and the lengths of every list.
    fn validate_sizes(&self) -> Result<Facts, (Vec<Seg>, String)> {
        let key = |k: &str| Seg::Key(k.to_string());
        let facts = self.check_protocol()?;
        let protocol = self.registered();
        if protocol.uses_workload() {
            validate_workload(&self.workload)?;
        } else {
            self.no_workload(protocol.name())?;
        }
        for (field, len, max) in
            [("faults", self.faults.len(), FAULTS_MAX), ("links", self.network.links.len(), LINKS_MAX)]
        {
            if len > max {
                let path =
                    if field == "links" { vec![key("network"), key("links")] } else { vec![key(field)] };
                return Err((path, format!("{len} entries: at most {max}")));
            }
        }
        if let Some(clocks) = &self.physical_clocks {
            clocks.validate(facts.n_nodes, &facts.node_names)?;
        }
        Ok(facts)
    }

    /// Link knobs and overrides: nodes exist, each link set once.
    fn validate_network(&self, facts: &Facts) -> Result<(), (Vec<Seg>, String)> {
        let key = |k: &str| Seg::Key(k.to_string());
        let check_node = |path: Vec<Seg>, node: u32| facts.check_node(path, node);
        let network_path = vec![key("network"), key("all_links")];
        self.network.all_links.validate(&network_path)?;
        let mut overridden = std::collections::BTreeMap::new();
        for (i, link) in self.network.links.iter().enumerate() {
            let base = vec![key("network"), key("links"), Seg::Index(i)];
            let at = |field: &str| [base.clone(), vec![key(field)]].concat();
            check_node(at("from"), link.from)?;
            check_node(at("to"), link.to)?;
            if let Some(first) = overridden.insert((link.from, link.to), i) {
                return Err((
                    at("from"),
                    format!(
                        "the link {} -> {} is already set by network.links[{first}]: merge the two",
                        link.from, link.to
                    ),
                ));
            }
            link.set.validate(&at("set"))?;
        }

        Ok(())
    }

    /// Faults in time order: nodes exist, restarts follow crashes, partitions cut something
    /// off and end later.
    fn validate_faults(&self, facts: &Facts) -> Result<(), (Vec<Seg>, String)> {
        let key = |k: &str| Seg::Key(k.to_string());
        let check_node = |path: Vec<Seg>, node: u32| facts.check_node(path, node);
        let mut order: Vec<usize> = (0..self.faults.len()).collect();
        order.sort_by(|&a, &b| self.faults[a].at().0.total_cmp(&self.faults[b].at().0));
        let mut down = vec![false; facts.n_nodes];
        for i in order {
            let fault = &self.faults[i];
            let base = vec![key("faults"), Seg::Index(i), key(fault.variant())];
            let at = |field: &str| [base.clone(), vec![key(field)]].concat();
            match fault {
                FaultSpec::Crash { node, at_ms } | FaultSpec::Restart { node, at_ms } => {
                    check_node(at("node"), *node)?;
                    let crash = matches!(fault, FaultSpec::Crash { .. });
                    let was_down = std::mem::replace(&mut down[*node as usize], crash);
                    if crash && was_down {
                        return Err((
                            at("node"),
                            format!("node {node} crashes at {} ms, but it is already down then", at_ms.0),
                        ));
                    }
                    if !crash && !was_down {
                        return Err((
                            at("node"),
                            format!("node {node} restarts at {} ms, but it is not crashed then (add a crash before it)", at_ms.0),
                        ));
                    }
                }
                FaultSpec::Partition { groups, at_ms, until_ms } => {
                    validate_groups(facts, &at, groups)?;
                    check_until(at("until_ms"), *at_ms, *until_ms)?;
                }
                FaultSpec::PartitionOneWay { from, to, at_ms, until_ms } => {
                    validate_sides(facts, &at, from, to)?;
                    check_until(at("until_ms"), *at_ms, *until_ms)?;
                }
            }
            self.check_fault_time(&base, fault)?;
        }
        Ok(())
    }

    /// The selected invariants and the expected violation name invariants the protocol has.
    fn validate_invariants(&self) -> Result<(), (Vec<Seg>, String)> {
        let key = |k: &str| Seg::Key(k.to_string());
        let known = self.invariant_names();
        let choices = || {
            if known.is_empty() {
                "this protocol has no invariants".to_string()
            } else {
                format!("valid choices: {}", known.join(", "))
            }
        };
        if let Some(selected) = &self.invariants {
            if selected.is_empty() {
                return Err((
                    vec![key("invariants")],
                    format!("an empty list checks nothing: name at least one, or leave the field out to check all; {}", choices()),
                ));
            }
            for (i, name) in selected.iter().enumerate() {
                if selected[..i].contains(name) {
                    return Err((
                        vec![key("invariants"), Seg::Index(i)],
                        format!("{} is listed twice", shown(format!("{name:?}"))),
                    ));
                }
                if !known.contains(&name.as_str()) {
                    return Err((
                        vec![key("invariants"), Seg::Index(i)],
                        format!("unknown invariant {}; {}", shown(format!("{name:?}")), choices()),
                    ));
                }
            }
        }
        if let Expect::Violation(name) = &self.expect {
            let checked = self.invariants.as_ref().is_none_or(|s| s.contains(name));
            if !known.contains(&name.as_str()) {
                return Err((
                    vec![key("expect"), key("violation")],
                    format!("unknown invariant {}; {}", shown(format!("{name:?}")), choices()),
                ));
            }
            if !checked {
                return Err((
                    vec![key("expect"), key("violation")],
                    format!("invariant {name:?} is expected to fail but is not in \"invariants\""),
                ));
            }
        }
        Ok(())
    }

    /// The swarm ranges.
    fn validate_fuzz(&self) -> Result<(), (Vec<Seg>, String)> {
        let key = |k: &str| Seg::Key(k.to_string());
        if let Some(fuzz) = &self.fuzz {
            let ranges = [
                ("drop_probability", fuzz.drop_probability),
                ("duplicate_probability", fuzz.duplicate_probability),
                ("slow_probability", fuzz.slow_probability),
            ];
            for (field, [low, high]) in ranges {
                if low.0 > high.0 {
                    return Err((
                        vec![key("fuzz"), key(field)],
                        format!("the range [{}, {}] is reversed: write [low, high]", low.0, high.0),
                    ));
                }
            }
            for (field, value) in [("crashes_max", fuzz.crashes_max), ("partitions_max", fuzz.partitions_max)]
            {
                if value > SWARM_FAULTS_MAX {
                    return Err((
                        vec![key("fuzz"), key(field)],
                        format!("{value} is too many: at most {SWARM_FAULTS_MAX}"),
                    ));
                }
            }
            if fuzz.fault_window_ms > self.limits.max_time_ms {
                return Err((
                    vec![key("fuzz"), key("fault_window_ms")],
                    format!(
                        "{} ms is after the run stops (limits.max_time_ms, {} ms): faults there would never happen",
                        fuzz.fault_window_ms.0, self.limits.max_time_ms.0
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Run limits, and the whole run against the memory budget.
    fn validate_limits(&self) -> Result<(), (Vec<Seg>, String)> {
        let key = |k: &str| Seg::Key(k.to_string());
        if self.limits.search_budget > SEARCH_BUDGET_MAX {
            let why = format!("{} is above the maximum, {SEARCH_BUDGET_MAX}", self.limits.search_budget);
            return Err((vec![key("limits"), key("search_budget")], why));
        }
        if self.limits.max_steps == 0 {
            return Err((vec![key("limits"), key("max_steps")], "must be at least 1".into()));
        }
        check_max(vec![key("limits"), key("max_steps")], self.limits.max_steps, MAX_STEPS_MAX)?;
        let needed = self.memory_estimate();
        if needed > MEMORY_BUDGET_BYTES {
            return Err((
                vec![key("protocol")],
                format!(
                    "this run would need about {} MiB of memory, above dsim's budget of {} MiB (see \
                     \"Bounds\" in the README): make it smaller",
                    needed >> 20,
                    MEMORY_BUDGET_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }

    /// Rejects a `workload` given to a protocol that has none (it would be ignored).
    /// A failure file writes out the default workload, which passes.
    fn no_workload(&self, protocol: &str) -> Result<(), (Vec<Seg>, String)> {
        if self.workload == Workload::default() {
            return Ok(());
        }
        Err((
            vec![Seg::Key("workload".into())],
            format!(
                "{protocol} has no key/value workload (only rpc and at-most-once do): remove \"workload\""
            ),
        ))
    }

    /// When the run stops on its own: `end_at_ms`, else `max_time_ms`.
    pub fn stop(&self) -> (Millis, &'static str) {
        match self.limits.end_at_ms {
            Some(end) if end < self.limits.max_time_ms => (end, "limits.end_at_ms"),
            _ => (self.limits.max_time_ms, "limits.max_time_ms"),
        }
    }

    /// A fault must happen before the run stops. (A partition may outlast the run: it is
    /// then never healed, and the run ends at its limit.)
    fn check_fault_time(&self, base: &[Seg], fault: &FaultSpec) -> Result<(), (Vec<Seg>, String)> {
        let at = |field: &str| [base.to_vec(), vec![Seg::Key(field.into())]].concat();
        let (stop, which) = self.stop();
        if fault.at() >= stop {
            return Err((
                at("at_ms"),
                format!(
                    "{} ms is not before the run stops ({which}, {} ms): the fault would never happen",
                    fault.at().0,
                    stop.0
                ),
            ));
        }
        Ok(())
    }

    /// `heal_at_ms` and `end_at_ms` agree with the fault timeline and with `max_time_ms`.
    fn validate_phases(&self) -> Result<(), (Vec<Seg>, String)> {
        let at = |field: &str| vec![Seg::Key("limits".into()), Seg::Key(field.into())];
        let max_time = self.limits.max_time_ms;
        if max_time.0 <= 0.0 {
            return Err((
                at("max_time_ms"),
                "0 ms stops the run before anything happens: give a time after 0".into(),
            ));
        }
        if let Some(end) = self.limits.end_at_ms {
            if end.0 <= 0.0 {
                return Err((
                    at("end_at_ms"),
                    "0 ms ends the run before anything happens: give a time after 0".into(),
                ));
            }
            if end > max_time {
                return Err((
                    at("end_at_ms"),
                    format!(
                        "{} ms is after limits.max_time_ms ({} ms): the run would stop at the limit first",
                        end.0, max_time.0
                    ),
                ));
            }
        }
        if let Some(heal) = self.limits.heal_at_ms {
            if heal > max_time {
                return Err((
                    at("heal_at_ms"),
                    format!(
                        "{} ms is after limits.max_time_ms ({} ms): the run stops before it heals",
                        heal.0, max_time.0
                    ),
                ));
            }
            // Healing ends partitions, loss and duplication for good; a fault after it would
            // be reported as healed while it still acts.
            let latest =
                self.faults.iter().enumerate().max_by(|(_, a), (_, b)| a.last().0.total_cmp(&b.last().0));
            if let Some((i, fault)) = latest.filter(|(_, f)| f.last() > heal) {
                return Err((
                    at("heal_at_ms"),
                    format!(
                        "the network heals at {} ms, but faults[{i}] ({}) lasts until {} ms: heal_at_ms must be at or \
                         after the end of the last fault",
                        heal.0,
                        fault.variant(),
                        fault.last().0
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A rough upper estimate of the memory a run of this scenario needs, in bytes (see
    /// "Bounds" in the README): per node, per operation, per message in flight, and for
    /// clocks per recorded event (each holds a vector stamp of `processes` entries).
    pub fn memory_estimate(&self) -> u64 {
        u64::try_from(self.facts().memory_bytes).unwrap_or(u64::MAX)
    }

    /// The simulator configuration for `seed`.
    pub fn sim_config(&self, seed: u64, trace_mode: TraceMode) -> SimConfig {
        let mut network = match self.network.preset {
            Some(preset) => NetworkConfig::preset(preset.name()).expect("every preset exists"),
            None => NetworkConfig::uniform(LinkConfig::reliable(Latency::uniform_ms(1, 10))),
        };
        self.network.all_links.apply(&mut network.default);
        for link in &self.network.links {
            let mut config = network.default;
            link.set.apply(&mut config);
            network.overrides.insert((NodeId(link.from), NodeId(link.to)), config);
        }
        let mut faults = Vec::new();
        let node = |n: &u32| NodeId(*n);
        let nodes = |ns: &[u32]| ns.iter().map(node).collect::<Vec<_>>();
        for (i, fault) in self.faults.iter().enumerate() {
            let at = fault.at().time();
            let id = i as u32;
            let (fault, until) = match fault {
                FaultSpec::Crash { node: n, .. } => (Fault::Crash(node(n)), None),
                FaultSpec::Restart { node: n, .. } => (Fault::Restart(node(n)), None),
                FaultSpec::Partition { groups, until_ms, .. } => {
                    let partition =
                        Partition::Symmetric { groups: groups.iter().map(|g| nodes(g)).collect() };
                    (Fault::Partition { id, partition, lasting: until_ms.is_none() }, *until_ms)
                }
                FaultSpec::PartitionOneWay { from, to, until_ms, .. } => {
                    let partition = Partition::OneWay { from: nodes(from), to: nodes(to) };
                    (Fault::Partition { id, partition, lasting: until_ms.is_none() }, *until_ms)
                }
            };
            faults.push(ScheduledFault { at, fault });
            if let Some(until) = until {
                faults.push(ScheduledFault { at: until.time(), fault: Fault::Heal { id } });
            }
        }
        let heal_at = self
            .limits
            .heal_at_ms
            .or_else(|| self.faults.iter().map(FaultSpec::last).max_by(|a, b| a.0.total_cmp(&b.0)))
            .map(Millis::time);
        let n_nodes = self.facts().n_nodes;
        SimConfig {
            seed,
            network,
            faults,
            max_steps: self.limits.max_steps,
            max_time: self.limits.max_time_ms.time(),
            heal_at,
            liveness_window: self.limits.liveness_ms.duration(),
            search_budget: self.limits.search_budget as usize,
            end_at: self.limits.end_at_ms.map(Millis::time),
            trace_mode,
            causality: false,
            causality_labels: false,
            clocks: self.physical_clocks.as_ref().map_or_else(Vec::new, |c| c.clocks(n_nodes, seed)),
        }
    }
}

impl Scenario {
    /// The run `dsim explore` searches, and a scheduled scenario follows: the scenario's,
    /// without its fault timeline, random loss, duplication and slow messages, heal and
    /// end times (the search injects faults itself, and a run ends when nothing is left
    /// to happen).
    pub fn explore_config(&self, seed: u64, trace_mode: TraceMode) -> SimConfig {
        let mut config = self.sim_config(seed, trace_mode);
        config.faults.clear();
        config.heal_at = None;
        config.end_at = None;
        let network = &mut config.network;
        for link in std::iter::once(&mut network.default).chain(network.overrides.values_mut()) {
            link.drop_probability = 0.0;
            link.duplicate_probability = 0.0;
            link.slow = None;
        }
        config
    }

    /// The config a run of this scenario uses: [`Scenario::explore_config`] if it has a
    /// schedule, else [`Scenario::sim_config`].
    pub fn run_config(&self, seed: u64, trace_mode: TraceMode) -> SimConfig {
        match self.schedule {
            Some(_) => self.explore_config(seed, trace_mode),
            None => self.sim_config(seed, trace_mode),
        }
    }
}

/// The largest scenario or failure file dsim reads, 16 MiB: far above any real scenario
/// (a failure file of the largest workload dsim runs is a few MiB), and small enough that
/// reading `/dev/zero` by mistake stops at once.
pub const FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// Reads a scenario or failure file: at most [`FILE_BYTES_MAX`] bytes, UTF-8, and a
/// leading byte-order mark (some editors write one) is dropped.
pub fn read_text(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let file = path.display().to_string();
    let read_error = |source| ScenarioError::Read { file: file.clone(), source };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(FILE_BYTES_MAX + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > FILE_BYTES_MAX {
        return Err(ScenarioError::TooLarge { file, max: FILE_BYTES_MAX });
    }
    let text = String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (an invalid byte at offset {at})"),
        ))
    })?;
    Ok(match text.strip_prefix(BOM) {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// The UTF-8 byte-order mark; JSON does not allow it, but a file that starts with it means
/// no harm, so dsim reads past it.
const BOM: char = '\u{feff}';

/// At most this many characters of a value are quoted back in an error.
const SHOWN_CHARS_MAX: usize = 20;

/// A value as an error quotes it: whole if short, else its start and "…" (a number of 301
/// digits says nothing more than its first 20).
pub fn shown(value: impl std::fmt::Display) -> String {
    let text = value.to_string();
    match text.char_indices().nth(SHOWN_CHARS_MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A number from the file as an error quotes it: as written for everyday magnitudes, in
/// scientific notation beyond (Rust writes 1e300 out as 301 digits).
pub fn shown_f64(x: f64) -> String {
    if x != 0.0 && !(1e-6..1e15).contains(&x.abs()) {
        shown(format!("{x:e}"))
    } else {
        shown(x)
    }
}

/// A path as an error names it: whole if short, else its start and end (a file nested 128
/// deep does not need 128 `[0]`s to say where).
fn shown_path(path: &str) -> String {
    const KEEP: usize = 24;
    if path.chars().count() <= 3 * KEEP {
        return path.to_string();
    }
    let head: String = path.chars().take(KEEP).collect();
    let tail: String = path.chars().rev().take(KEEP).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{head}…{tail}")
}

/// Deserializes JSON text, with errors that name the file, line, column and field.
///
/// The text must be exactly one JSON object: a top-level array (which serde would read as
/// the fields in order) and anything after the object (a second object, a merge-conflict
/// marker) are errors.
pub fn parse_json<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ScenarioError> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let invalid = |line: usize, column: usize, field: String, message: String| ScenarioError::Invalid {
        file: file.to_string(),
        line,
        column,
        field,
        message,
    };
    let start = text.len() - text.trim_start().len();
    match text[start..].chars().next() {
        Some('{') => {}
        None => {
            let (line, column) = crate::locate::line_column(text, start);
            return Err(invalid(
                line,
                column,
                String::new(),
                "the file is empty: expected one JSON object {...}".into(),
            ));
        }
        Some(first) => {
            let (line, column) = crate::locate::line_column(text, start);
            return Err(invalid(
                line,
                column,
                String::new(),
                format!("expected one JSON object {{...}}, found {}", shown_start(&text[start..], first)),
            ));
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.inner();
        let message = inner.to_string();
        let suffix = format!(" at line {} column {}", inner.line(), inner.column());
        let message = message.strip_suffix(&suffix).unwrap_or(&message).to_string();
        let message = explain(&path, &message, text, inner.line(), inner.column());
        let field = if path == "." || path == "?" || path.is_empty() {
            String::new()
        } else {
            format!("{}: ", shown_path(&path))
        };
        invalid(inner.line(), inner.column(), field, message)
    })?;
    deserializer.end().map_err(|err| {
        invalid(
            err.line(),
            err.column(),
            String::new(),
            "unexpected text after the JSON object (a second object? a merge-conflict marker?): a file \
             holds exactly one object"
                .into(),
        )
    })?;
    Ok(value)
}

/// What a file that is not an object starts with, for the error.
fn shown_start(text: &str, first: char) -> String {
    match first {
        '[' => "an array".to_string(),
        '"' => "a string".to_string(),
        _ => format!("`{}`", shown(text.split_whitespace().next().unwrap_or(""))),
    }
}

/// Rewrites serde's messages that do not say what is valid into ones that do.
fn explain(path: &str, message: &str, text: &str, line: usize, column: usize) -> String {
    // An enum written as an object needs exactly one key: the variant.
    if let Some(variants) = variants_at(path) {
        if message == "expected value" || message.starts_with("invalid type: map") {
            return format!("expected an object with exactly one key, one of {variants}");
        }
    }
    let mut parts = path.rsplit('.');
    let variant = parts.next().unwrap_or(path);
    if let Some(choices) = unit_variants(variant) {
        if message == "expected value" || message.starts_with("invalid type: map") {
            return format!("expected a string, one of {choices}");
        }
    }
    if let Some(choices) = parts.next().and_then(unit_variants) {
        if message.ends_with("expected unit") || message == "expected value" {
            return format!("\"{variant}\" takes no parameters: write \"{variant}\" (one of {choices})");
        }
    }
    if path == "expect.violation" && message.starts_with("invalid type: unit variant") {
        return "name the invariant: write {\"violation\": \"INVARIANT\"}".into();
    }
    if message.starts_with("invalid type: unit variant, expected") {
        return format!(
            "\"{variant}\" needs its parameters: write {{\"{variant}\": {{...}}}} ({{}} takes every default)"
        );
    }
    if message.starts_with("invalid type: newtype variant, expected unit variant")
        || message.starts_with("invalid type: struct variant, expected unit variant")
    {
        return format!("\"{variant}\" takes no parameters: write \"{variant}\"");
    }
    // Numbers: an integer field given a fraction, a negative or too large a number.
    for kind in ["invalid type: floating point `", "invalid value: integer `"] {
        let Some(rest) = message.strip_prefix(kind) else { continue };
        let Some((value, expected)) = rest.split_once("`, expected ") else { continue };
        let Some(range) = integer_range(expected) else { continue };
        let written = number_before(text, line, column).unwrap_or_else(|| value.to_string());
        return format!("{} is not valid: expected an integer in {range}", shown(written));
    }
    // An integer field given a string, a boolean, an object...
    if let Some((found, expected)) =
        message.strip_prefix("invalid type: ").and_then(|m| m.rsplit_once(", expected "))
    {
        if let Some(range) = integer_range(expected) {
            return format!("invalid type: expected an integer in {range}, found {}", shown(found));
        }
    }
    if message.starts_with("recursion limit exceeded") {
        return "nested too deeply (more than 128 levels)".into();
    }
    if message == "trailing characters" {
        // Inside the object, this is an array of fixed length with too many items.
        return "too many items: expected [low, high]".into();
    }
    // serde quotes a wrong string whole; a line stays short whatever the file holds.
    shown_long(message)
}

/// `message` whole if it fits a line, else cut at 300 characters.
fn shown_long(message: &str) -> String {
    match message.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_string(),
    }
}

/// The range of an integer type, as serde names it in "expected u32".
fn integer_range(expected: &str) -> Option<String> {
    Some(match expected {
        "u8" => format!("0..={}", u8::MAX),
        "u16" => format!("0..={}", u16::MAX),
        "u32" => format!("0..={}", u32::MAX),
        "u64" | "usize" => format!("0..={}", u64::MAX),
        "i32" => format!("{}..={}", i32::MIN, i32::MAX),
        "i64" | "isize" => format!("{}..={}", i64::MIN, i64::MAX),
        _ => return None,
    })
}

/// The number as written in the text, ending at 1-based `line` and `column` (where serde
/// reports a number it cannot use).
fn number_before(text: &str, line: usize, column: usize) -> Option<String> {
    let line_text = text.lines().nth(line.checked_sub(1)?)?;
    let end = line_text.char_indices().nth(column.saturating_sub(1)).map_or(line_text.len(), |(i, c)| {
        if c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-') {
            i + 1
        } else {
            i
        }
    });
    let before = &line_text[..end];
    let start = before
        .rfind(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
        .map_or(0, |i| i + 1);
    let number = &before[start..];
    number.starts_with(|c: char| c.is_ascii_digit() || c == '-').then(|| number.to_string())
}

/// The variants of the enum at `path` (as serde_path_to_error renders it), for an error
/// about an object that names none or two of them.
fn variants_at(path: &str) -> Option<String> {
    let last = path.rsplit('.').next().unwrap_or(path);
    if path == "protocol" {
        Some(protocol_names())
    } else if path == "expect" {
        Some("`pass`, `violation`".into())
    } else if path.starts_with("faults[") && last.ends_with(']') && !last.contains("][") {
        variants_of::<FaultSpec>()
    } else if last == "latency" {
        variants_of::<LatencySpec>()
    } else {
        None
    }
}

/// The variants of `T`: serde lists them when asked for one that does not exist.
fn variants_of<T: serde::de::DeserializeOwned>() -> Option<String> {
    let err = serde_json::from_str::<T>("\"\"").err()?.to_string();
    // "expected one of `a`, `b`, `c`", "expected `a` or `b`", or "expected `a`".
    let list = err.split_once("unknown variant ``, expected ")?.1;
    let list = list.rsplit_once(" at line").map_or(list, |(l, _)| l);
    Some(list.strip_prefix("one of ").unwrap_or(list).replace(" or ", ", "))
}

/// The choices of the string-valued enum named `field`, if it is one.
fn unit_variants(field: &str) -> Option<String> {
    use protocols::at_most_once::{DedupMode, DiscardMode, ReplyMatching};
    use protocols::logical_clocks::{VectorOrder, VectorReceive};
    match field {
        "ordering" => variants_of::<OrderingSpec>(),
        "preset" => variants_of::<Preset>(),
        "applies_to" => variants_of::<AppliesToSpec>(),
        "vector_receive" | "vector-receive" => variants_of::<VectorReceive>(),
        "vector_order" | "vector-order" => variants_of::<VectorOrder>(),
        "dedup" => variants_of::<DedupMode>(),
        "discard" => variants_of::<DiscardMode>(),
        "reply_matching" => variants_of::<ReplyMatching>(),
        "record_channel" => variants_of::<protocols::snapshot::RecordChannel>(),
        "on_marker" => variants_of::<protocols::snapshot::OnMarker>(),
        _ => None,
    }
}

/// The fields whose value is an object (a struct or an enum's parameters): serde would
/// also read one from an array, taking its items as the fields in order, so `"limits":
/// [1, 2]` would silently mean `max_steps` 1 and `max_time_ms` 2.
/// A registered protocol's parameters (`"protocol": {"NAME": {...}}`) are one too.
const OBJECT_FIELDS: &[&str] = &[
    "protocol",
    "network",
    "all_links",
    "set",
    "slow",
    "latency",
    "constant",
    "uniform",
    "exponential",
    "crash",
    "restart",
    "partition",
    "partition-one-way",
    "workload",
    "limits",
    "fuzz",
    "physical_clocks",
    "scenario",
];
/// The lists whose items are objects.
const OBJECT_LISTS: &[&str] = &["faults", "links", "nodes", "snapshots"];

/// Finds an array where an object belongs (see [`OBJECT_FIELDS`]).
fn array_for_object(value: &serde_json::Value, path: &mut Vec<Seg>) -> Option<(Vec<Seg>, String)> {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                path.push(Seg::Key(key.clone()));
                let protocol_params = path.len() == 2
                    && path[0] == Seg::Key("protocol".into())
                    && crate::registry().get(key).is_some();
                if child.is_array() && (OBJECT_FIELDS.contains(&key.as_str()) || protocol_params) {
                    return Some((path.clone(), "expected an object {...}, found an array".into()));
                }
                if let (Value::Array(items), true) = (child, OBJECT_LISTS.contains(&key.as_str())) {
                    if let Some(i) = items.iter().position(Value::is_array) {
                        path.push(Seg::Index(i));
                        return Some((path.clone(), "expected an object {...}, found an array".into()));
                    }
                }
                if let Some(found) = array_for_object(child, path) {
                    return Some(found);
                }
                path.pop();
            }
            None
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, child)| {
            path.push(Seg::Index(i));
            let found = array_for_object(child, path);
            path.pop();
            found
        }),
        _ => None,
    }
}

/// An error about the value at `path` in `text`.
pub fn located(file: &str, text: &str, path: &[Seg], message: String) -> ScenarioError {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let (line, column) = locate(text, path);
    ScenarioError::Invalid {
        file: file.to_string(),
        line,
        column,
        field: format!("{}: ", shown_path(&render(path))),
        message,
    }
}

fn check_until(path: Vec<Seg>, at: Millis, until: Option<Millis>) -> Result<(), (Vec<Seg>, String)> {
    match until {
        Some(until) if until.0 <= at.0 => {
            Err((path, format!("the partition ends ({} ms) before it starts ({} ms)", until.0, at.0)))
        }
        _ => Ok(()),
    }
}

// Bounds. Every size a scenario gives is checked against a documented maximum before
// anything is allocated for it, and the whole run against a memory budget (the README's
// "Bounds" table lists them). The maxima are what a 2-core, 24 GiB machine runs in
// seconds to a few minutes; the budget leaves room for two other runs beside it.

/// The largest time in milliseconds any field may give (`protocols::registry::MS_MAX`).
pub use protocols::registry::MS_MAX;
/// The most steps a run may take: minutes of a release build's time.
pub const MAX_STEPS_MAX: u64 = 1_000_000_000;
/// The most faults on a timeline.
pub const FAULTS_MAX: usize = 10_000;
/// The most per-link overrides (a full mesh of 300 nodes).
pub const LINKS_MAX: usize = 100_000;
/// The most crashes or partitions `fuzz --swarm` may draw per run.
pub const SWARM_FAULTS_MAX: u32 = 100;
/// The memory a run may be estimated to need ([`Scenario::memory_estimate`]): 4 GiB. The
/// estimate is the protocol's (`Facts::memory_bytes`, from the parts in
/// `protocols::registry`).
pub const MEMORY_BUDGET_BYTES: u64 = 4 << 30;

/// A time in whole milliseconds: at least `min`, at most [`MS_MAX`].
fn check_ms(path: Vec<Seg>, ms: u64, min: u64) -> Result<(), (Vec<Seg>, String)> {
    if ms < min {
        return Err((path, format!("must be at least {min}")));
    }
    if ms > MS_MAX {
        return Err((path, format!("{ms} ms is too long: at most {MS_MAX} ms")));
    }
    Ok(())
}

/// `value` of `field` at most `max`, or an error naming all three.
fn check_max(path: Vec<Seg>, value: u64, max: u64) -> Result<(), (Vec<Seg>, String)> {
    if value > max {
        let field = match path.last() {
            Some(Seg::Key(k)) => k.clone(),
            _ => "the value".into(),
        };
        return Err((path, format!("{value} is too large: {field} is at most {max}")));
    }
    Ok(())
}

fn validate_workload(workload: &Workload) -> Result<(), (Vec<Seg>, String)> {
    let key = |k: &str| Seg::Key(k.to_string());
    let at = |field: &str| vec![key("workload"), key(field)];
    check_ms(at("think_ms"), workload.think_ms, 0)?;
    match &workload.script {
        Some(script) => {
            // A script sets the clients and their operations; the random workload's knobs
            // would be ignored. (Left at their defaults they pass: failure files write them.)
            let defaults = Workload::default();
            for (field, value, default) in [
                ("clients", workload.clients, defaults.clients),
                ("ops_per_client", workload.ops_per_client, defaults.ops_per_client),
                ("keys", workload.keys, defaults.keys),
            ] {
                if value != default {
                    return Err((
                        at(field),
                        format!("\"{field}\" is for a random workload, and \"script\" gives the operations: keep one"),
                    ));
                }
            }
            if script.is_empty() {
                return Err((at("script"), "needs at least one client's list of operations".into()));
            }
            check_max([at("script"), vec![]].concat(), script.len() as u64, Workload::CLIENTS_MAX.into())
                .map_err(|(path, _)| {
                    (
                        path,
                        format!("{} clients: a script has at most {}", script.len(), Workload::CLIENTS_MAX),
                    )
                })?;
            let mut ops = 0usize;
            for (c, client_ops) in script.iter().enumerate() {
                ops += client_ops.len();
                if ops > Workload::OPS_MAX {
                    return Err((
                        vec![key("workload"), key("script"), Seg::Index(c)],
                        format!(
                            "more than {} operations in all: a script has at most that many",
                            Workload::OPS_MAX
                        ),
                    ));
                }
                for (i, op) in client_ops.iter().enumerate() {
                    if op.key().is_empty() {
                        return Err((
                            vec![key("workload"), key("script"), Seg::Index(c), Seg::Index(i), key("key")],
                            "a key cannot be empty".into(),
                        ));
                    }
                }
            }
        }
        None => {
            if workload.clients == 0 {
                return Err((at("clients"), "must be at least 1".into()));
            }
            if workload.keys == 0 {
                return Err((at("keys"), "must be at least 1".into()));
            }
            check_max(at("clients"), workload.clients.into(), Workload::CLIENTS_MAX.into())?;
            check_max(
                at("ops_per_client"),
                workload.ops_per_client.into(),
                Workload::OPS_PER_CLIENT_MAX.into(),
            )?;
            check_max(at("keys"), workload.keys.into(), Workload::KEYS_MAX.into())?;
            let ops = u64::from(workload.clients) * u64::from(workload.ops_per_client);
            if ops > Workload::OPS_MAX as u64 {
                return Err((
                    at("ops_per_client"),
                    format!(
                        "{} clients x {} operations = {ops} operations: at most {} in all",
                        workload.clients,
                        workload.ops_per_client,
                        Workload::OPS_MAX
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_and_paths_are_cut_short() {
        assert_eq!(shown(42), "42");
        assert_eq!(shown("1".repeat(301)), format!("{}…", "1".repeat(20)));
        assert_eq!(shown(1e300).chars().count(), 21);
        assert_eq!(shown_f64(1e300), "1e300");
        assert_eq!(shown_f64(-2.5e-9), "-2.5e-9");
        assert_eq!(shown_f64(1500.25), "1500.25");
        let deep = format!("description{}", "[0]".repeat(128));
        let path = shown_path(&deep);
        assert!(path.starts_with("description[0]") && path.contains('…') && path.len() < 80, "{path}");
        assert_eq!(shown_path("faults[2].crash.node"), "faults[2].crash.node");
    }

    #[test]
    fn numbers_are_quoted_as_written() {
        let text = "{\n  \"seed\": 18446744073709551616,\n  \"x\": -5}";
        assert_eq!(number_before(text, 2, 31).as_deref(), Some("18446744073709551616"));
        assert_eq!(number_before(text, 3, 9).as_deref(), Some("-5"));
        assert_eq!(integer_range("u32").as_deref(), Some("0..=4294967295"));
        assert_eq!(integer_range("f64"), None);
    }

    #[test]
    fn enum_choices_come_from_the_types() {
        assert_eq!(variants_of::<OrderingSpec>().as_deref(), Some("`reorder`, `fifo`"));
        let mut names: Vec<String> = crate::registry().iter().map(|p| format!("`{}`", p.name())).collect();
        names.sort();
        assert_eq!(variants_at("protocol"), Some(names.join(", ")));
        assert!(variants_at("faults[3]").unwrap().contains("`partition-one-way`"));
        assert!(variants_at("faults[3].crash").is_none());
        assert!(unit_variants("discard").unwrap().contains("`seq-ack`"));
    }

    #[test]
    fn the_memory_estimate_grows_with_every_size_and_never_overflows() {
        let parse = |protocol: &str| {
            let text = format!(r#"{{"name": "m", "protocol": {protocol}}}"#);
            serde_json::from_str::<Scenario>(&text).unwrap()
        };
        let small = parse(r#"{"clocks": {"processes": 10}}"#).memory_estimate();
        let large = parse(r#"{"clocks": {"processes": 100}}"#).memory_estimate();
        assert!(small < large);
        // Unvalidated extremes saturate instead of wrapping.
        let extreme = parse(r#"{"ping": {"nodes": 4294967295, "in_flight": 4294967295}}"#);
        assert!(extreme.memory_estimate() > MEMORY_BUDGET_BYTES);
        let mut clocks = parse(r#"{"clocks": {"processes": 4294967295, "actions_per_process": 4294967295}}"#);
        clocks.limits.max_steps = u64::MAX;
        assert_eq!(clocks.memory_estimate(), u64::MAX);
    }
}
