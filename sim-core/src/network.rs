//! The virtual network: latency, loss, duplication, ordering, slow messages, partitions.
//!
//! A [`NetworkConfig`] is a default [`LinkConfig`] plus per-link overrides. For each message
//! the network decides (through the one [`Decider`]) whether to drop it, how long it
//! travels, whether it is slowed, and whether a second copy travels too. Reordering comes
//! from independent delays; a FIFO link instead never delivers a message before one sent
//! earlier on the same link. Partitions cut links symmetrically (groups) or one way; a
//! message is checked against them both when sent and when it would arrive.
//!
//! The presets mirror MIT 6.824's labrpc so that lab-style scenarios read the same here.

use crate::rng::{Decider, Latency};
use crate::time::{NodeId, SimDuration, SimTime};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How a message is classed for rules that treat requests and replies apart (labrpc's
/// long reordering delays replies only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageClass {
    /// A request, which expects a reply.
    Request,
    /// A reply to a request.
    Reply,
    /// Neither: a one-way message.
    Other,
}

/// Which messages a [`SlowRule`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppliesTo {
    /// Every message.
    All,
    /// Only requests.
    Requests,
    /// Only replies.
    Replies,
}

impl AppliesTo {
    fn matches(self, class: MessageClass) -> bool {
        match self {
            AppliesTo::All => true,
            AppliesTo::Requests => class == MessageClass::Request,
            AppliesTo::Replies => class == MessageClass::Reply,
        }
    }
}

/// Delivery order on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkOrdering {
    /// Each message's delay is drawn independently, so later messages may overtake.
    Reorder,
    /// Messages on a link arrive in the order they were sent.
    Fifo,
}

/// A fraction of messages takes an extra, long delay.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SlowRule {
    /// The chance, from 0 to 1, that a message is slowed.
    pub probability: f64,
    /// The extra delay a slowed message takes.
    pub latency: Latency,
    /// Which messages may be slowed.
    pub applies_to: AppliesTo,
}

/// The behaviour of one directed link.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct LinkConfig {
    /// How long a message travels.
    pub latency: Latency,
    /// The chance, from 0 to 1, that a message is lost.
    pub drop_probability: f64,
    /// The chance, from 0 to 1, that a second copy of a message travels too.
    pub duplicate_probability: f64,
    /// Whether later messages may overtake earlier ones.
    pub ordering: LinkOrdering,
    /// An extra long delay for some messages, if any.
    pub slow: Option<SlowRule>,
}

impl LinkConfig {
    /// The longest a message can take on this link: its latency's maximum, plus a slow
    /// rule's when one can apply.
    ///
    /// ```
    /// use sim_core::{Latency, LinkConfig, SimDuration};
    /// let link = LinkConfig::reliable(Latency::uniform_ms(1, 5));
    /// assert_eq!(link.delivery_max(), SimDuration::from_millis(5));
    /// ```
    pub fn delivery_max(&self) -> SimDuration {
        let max = |latency: &Latency| match *latency {
            Latency::Constant(delay) => delay,
            Latency::Uniform { max, .. } | Latency::Exponential { max, .. } => max,
        };
        let slow = self
            .slow
            .filter(|rule| rule.probability > 0.0)
            .map_or(SimDuration::ZERO, |rule| max(&rule.latency));
        max(&self.latency) + slow
    }

    /// A lossless link with the given latency.
    pub fn reliable(latency: Latency) -> LinkConfig {
        LinkConfig {
            latency,
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            ordering: LinkOrdering::Reorder,
            slow: None,
        }
    }

    /// The default link (1-10 ms, nothing lost), losing each message with probability `p`.
    ///
    /// ```
    /// use sim_core::LinkConfig;
    /// assert_eq!(LinkConfig::lossy(0.1).drop_probability, 0.1);
    /// ```
    pub fn lossy(p: f64) -> LinkConfig {
        LinkConfig { drop_probability: p, ..LinkConfig::default() }
    }

    /// A lossless link whose delays are drawn independently in `[min_ms, max_ms]`, so
    /// later messages may overtake earlier ones.
    ///
    /// ```
    /// use sim_core::{LinkConfig, LinkOrdering};
    /// assert_eq!(LinkConfig::reordering(1, 50).ordering, LinkOrdering::Reorder);
    /// ```
    pub fn reordering(min_ms: u64, max_ms: u64) -> LinkConfig {
        LinkConfig::reliable(Latency::uniform_ms(min_ms, max_ms))
    }

    /// This link, delivering in send order.
    pub fn fifo(self) -> LinkConfig {
        LinkConfig { ordering: LinkOrdering::Fifo, ..self }
    }
}

/// The default link of a scenario without a preset: 1-10 ms, nothing lost or duplicated.
impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig::reliable(Latency::uniform_ms(1, 10))
    }
}

/// The whole network: a default link and per-link overrides.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkConfig {
    /// The link every pair of nodes uses unless overridden.
    pub default: LinkConfig,
    /// Links that differ from the default, by (sender, receiver).
    #[serde(serialize_with = "serialize_overrides")]
    pub overrides: BTreeMap<(NodeId, NodeId), LinkConfig>,
}

fn serialize_overrides<S: serde::Serializer>(
    overrides: &BTreeMap<(NodeId, NodeId), LinkConfig>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(overrides.iter().map(|((from, to), link)| (from, to, link)))
}

impl NetworkConfig {
    /// A network whose every link is `default`.
    pub fn uniform(default: LinkConfig) -> NetworkConfig {
        NetworkConfig { default, overrides: BTreeMap::new() }
    }

    /// The labrpc-style presets:
    /// - `reliable`: 0-1 ms, nothing lost.
    /// - `unreliable`: 0-26 ms, 10% of messages (requests and replies alike) dropped; a
    ///   dropped reply is dropped after the handler ran, as in labrpc.
    /// - `long-delays`: 0-7000 ms, nothing lost (labrpc's long delays before a failure).
    /// - `long-reordering`: 0-26 ms, and about 2/3 of replies delayed 200 ms to 2.2 s.
    ///
    /// ```
    /// use sim_core::NetworkConfig;
    /// let net = NetworkConfig::preset("unreliable").unwrap();
    /// assert_eq!(net.default.drop_probability, 0.1);
    /// assert!(NetworkConfig::preset("lossy").is_none());
    /// ```
    pub fn preset(name: &str) -> Option<NetworkConfig> {
        let link = match name {
            "reliable" => LinkConfig::reliable(Latency::uniform_ms(0, 1)),
            "unreliable" => {
                LinkConfig { drop_probability: 0.1, ..LinkConfig::reliable(Latency::uniform_ms(0, 26)) }
            }
            "long-delays" => LinkConfig::reliable(Latency::uniform_ms(0, 7_000)),
            "long-reordering" => LinkConfig {
                slow: Some(SlowRule {
                    probability: 2.0 / 3.0,
                    latency: Latency::uniform_ms(200, 2_200),
                    applies_to: AppliesTo::Replies,
                }),
                ..LinkConfig::reliable(Latency::uniform_ms(0, 26))
            },
            _ => return None,
        };
        Some(NetworkConfig::uniform(link))
    }

    /// The link from `from` to `to`: its override, or the default.
    pub fn link(&self, from: NodeId, to: NodeId) -> &LinkConfig {
        if self.overrides.is_empty() {
            return &self.default;
        }
        self.overrides.get(&(from, to)).unwrap_or(&self.default)
    }

    /// Turns loss and duplication off everywhere (the network "heals").
    pub fn heal(&mut self) {
        for link in std::iter::once(&mut self.default).chain(self.overrides.values_mut()) {
            link.drop_probability = 0.0;
            link.duplicate_probability = 0.0;
        }
    }
}

/// A partition of the network.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Partition {
    /// Nodes in different groups cannot talk, either way. Nodes in no group form one more
    /// group of their own.
    Symmetric {
        /// The groups, each a list of nodes.
        groups: Vec<Vec<NodeId>>,
    },
    /// Messages from any node in `from` to any node in `to` are lost; the other way works.
    OneWay {
        /// The senders whose messages are lost.
        from: Vec<NodeId>,
        /// The receivers they cannot reach.
        to: Vec<NodeId>,
    },
}

impl Partition {
    /// Whether this partition loses a message from `from` to `to`.
    pub fn blocks(&self, from: NodeId, to: NodeId) -> bool {
        match self {
            Partition::Symmetric { groups } => {
                let group_of = |n: NodeId| groups.iter().position(|g| g.contains(&n));
                group_of(from) != group_of(to)
            }
            Partition::OneWay { from: sources, to: targets } => {
                sources.contains(&from) && targets.contains(&to)
            }
        }
    }

    /// Every node the partition names.
    pub fn nodes(&self) -> Vec<NodeId> {
        match self {
            Partition::Symmetric { groups } => groups.iter().flatten().copied().collect(),
            Partition::OneWay { from, to } => from.iter().chain(to).copied().collect(),
        }
    }
}

/// What the network decided for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The message is lost, for this reason.
    Dropped(DropReason),
    /// Deliver at `at`, and a second copy at `copy_at` if duplicated.
    Deliver {
        /// When the message arrives.
        at: SimTime,
        /// When its second copy arrives, if it was duplicated.
        copy_at: Option<SimTime>,
    },
}

/// Why a message was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// The link's drop probability.
    Loss,
    /// A partition cut the link.
    Partition,
    /// The receiver was crashed when the message arrived.
    Crashed,
}

/// The network's live state during a run.
#[derive(Clone, Debug)]
pub struct Network {
    config: NetworkConfig,
    decider: Decider,
    partitions: BTreeMap<u32, Partition>,
    /// Partitions that do not end when the network heals.
    lasting: BTreeSet<u32>,
    /// The latest arrival time scheduled on each FIFO link.
    fifo_tail: BTreeMap<(NodeId, NodeId), SimTime>,
}

impl Network {
    /// A network with this config whose choices are drawn from `seed`.
    pub fn new(config: NetworkConfig, seed: u64) -> Network {
        Network {
            config,
            decider: Decider::new(seed),
            partitions: BTreeMap::new(),
            lasting: BTreeSet::new(),
            fifo_tail: BTreeMap::new(),
        }
    }

    /// The network's config (with loss and duplication off once it has healed).
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Whether a partition cuts `from -> to` now. The common case (no partition) is one
    /// inlined comparison.
    #[inline(always)]
    pub fn partitioned(&self, from: NodeId, to: NodeId) -> bool {
        !self.partitions.is_empty() && self.partitioned_slow(from, to)
    }

    #[inline(never)]
    fn partitioned_slow(&self, from: NodeId, to: NodeId) -> bool {
        self.partitions.values().any(|p| p.blocks(from, to))
    }

    /// Starts a partition; a `lasting` one outlives [`Network::heal`].
    pub fn add_partition(&mut self, id: u32, partition: Partition, lasting: bool) {
        self.partitions.insert(id, partition);
        if lasting {
            self.lasting.insert(id);
        }
    }

    /// Ends one partition; returns whether it was active.
    pub fn remove_partition(&mut self, id: u32) -> bool {
        self.partitions.remove(&id).is_some()
    }

    /// Ends every partition but the lasting ones, and turns loss and duplication off.
    pub fn heal(&mut self) {
        let lasting = &self.lasting;
        self.partitions.retain(|id, _| lasting.contains(id));
        self.config.heal();
    }

    /// Decides the fate of one message sent at `now`. Every call draws the same number of
    /// random numbers, whatever the outcome.
    pub fn route(&mut self, now: SimTime, from: NodeId, to: NodeId, class: MessageClass) -> Verdict {
        // Borrow the link (fields apart from the decider) rather than copy it per message.
        let link = if self.config.overrides.is_empty() {
            &self.config.default
        } else {
            self.config.overrides.get(&(from, to)).unwrap_or(&self.config.default)
        };
        let lost = self.decider.drop(link.drop_probability);
        let duplicated = self.decider.duplicate(link.duplicate_probability);
        let delay = self.decider.latency(&link.latency);
        let copy_delay = self.decider.latency(&link.latency);
        let extra = link
            .slow
            .and_then(|slow| {
                let extra = self.decider.slow(slow.probability, &slow.latency);
                extra.filter(|_| slow.applies_to.matches(class))
            })
            .unwrap_or(SimDuration::ZERO);
        if self.partitioned(from, to) {
            return Verdict::Dropped(DropReason::Partition);
        }
        if lost {
            return Verdict::Dropped(DropReason::Loss);
        }
        let mut at = now + delay + extra;
        let mut copy_at = duplicated.then_some(now + copy_delay + extra);
        let fifo = link.ordering == LinkOrdering::Fifo;
        if fifo {
            // Equal times keep send order through the queue's insertion counter.
            let tail = self.fifo_tail.entry((from, to)).or_insert(SimTime::ZERO);
            at = at.max(*tail);
            *tail = at;
            if let Some(copy) = copy_at.as_mut() {
                *copy = (*copy).max(*tail);
                *tail = *copy;
            }
        }
        Verdict::Deliver { at, copy_at }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId(i)
    }

    #[test]
    fn symmetric_partition_blocks_across_groups_only() {
        let p = Partition::Symmetric { groups: vec![vec![n(0)], vec![n(1), n(2)]] };
        assert!(p.blocks(n(0), n(1)) && p.blocks(n(2), n(0)));
        assert!(!p.blocks(n(1), n(2)));
        // n3 is in no group: a group of its own.
        assert!(p.blocks(n(3), n(1)));
    }

    #[test]
    fn one_way_partition_blocks_one_direction() {
        let p = Partition::OneWay { from: vec![n(0)], to: vec![n(1)] };
        assert!(p.blocks(n(0), n(1)));
        assert!(!p.blocks(n(1), n(0)));
    }

    #[test]
    fn fifo_link_never_schedules_a_later_send_earlier() {
        let mut link = LinkConfig::reliable(Latency::uniform_ms(0, 50));
        link.ordering = LinkOrdering::Fifo;
        link.duplicate_probability = 0.5;
        let mut net = Network::new(NetworkConfig::uniform(link), 11);
        let mut last = SimTime::ZERO;
        for i in 0..1_000 {
            let now = SimTime::from_micros(i * 100);
            if let Verdict::Deliver { at, copy_at } = net.route(now, n(0), n(1), MessageClass::Other) {
                assert!(at >= last);
                last = copy_at.unwrap_or(at).max(at);
            }
        }
    }

    #[test]
    fn heal_clears_partitions_and_loss() {
        let mut net = Network::new(NetworkConfig::preset("unreliable").unwrap(), 1);
        net.add_partition(0, Partition::OneWay { from: vec![n(0)], to: vec![n(1)] }, false);
        net.add_partition(1, Partition::OneWay { from: vec![n(2)], to: vec![n(3)] }, true);
        net.heal();
        assert!(!net.partitioned(n(0), n(1)));
        assert!(net.partitioned(n(2), n(3)), "a lasting partition outlives healing");
        assert_eq!(net.config().default.drop_probability, 0.0);
    }
}
