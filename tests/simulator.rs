//! The event loop's guarantees, tested with a small probe protocol: determinism, each fault
//! kind in the trace exactly when enabled, FIFO links, crash and restart, the first
//! violating step, liveness checks and run limits.

use serde::Serialize;
use sim_core::{
    CheckError, Context, DropReason, Fault, Invariant, Latency, Limit, LinkConfig, LinkOrdering, Message,
    NetworkConfig, Node, NodeId, Outcome, Partition, Phase, ScheduledFault, SimConfig, SimDuration, SimTime,
    Simulation, TraceEvent, TraceMode, World,
};

/// Node 0 sends `burst` numbered messages to node 1 at the start and again on each of its
/// timer ticks; node 1 remembers what it received, counts it durably, and sets a timer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Probe {
    burst: u64,
    ticks_left: u32,
    next: u64,
    received: Vec<u64>,
    /// The durable count this incarnation was rebuilt from.
    restored_from: u64,
    timer_fired: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
struct Numbered(u64);
impl Message for Numbered {}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
enum Tick {
    Sender,
    Receiver,
}

impl Node for Probe {
    type Msg = Numbered;
    type Timer = Tick;
    type Durable = u64;
    type Op = ();

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        if ctx.id() == NodeId(0) {
            self.send_burst(ctx);
        } else {
            ctx.set_timer(SimDuration::from_millis(20), Tick::Receiver);
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, _from: NodeId, msg: Numbered) {
        self.received.push(msg.0);
        *ctx.durable() += 1;
    }

    fn on_timer(&mut self, ctx: &mut Context<'_, Self>, timer: Tick) {
        match timer {
            Tick::Sender => self.send_burst(ctx),
            Tick::Receiver => self.timer_fired = true,
        }
    }
}

impl Probe {
    fn send_burst(&mut self, ctx: &mut Context<'_, Self>) {
        for _ in 0..self.burst {
            ctx.send(NodeId(1), Numbered(self.next));
            self.next += 1;
        }
        if self.ticks_left > 0 {
            self.ticks_left -= 1;
            ctx.set_timer(SimDuration::from_millis(5), Tick::Sender);
        }
    }
}

fn probe_sim(config: SimConfig, burst: u64, ticks: u32) -> Simulation<Probe> {
    Simulation::new(config, 2, move |_, durable: &u64| Probe {
        burst,
        ticks_left: ticks,
        next: 0,
        received: Vec::new(),
        restored_from: *durable,
        timer_fired: false,
    })
}

fn link(latency_ms_max: u64) -> LinkConfig {
    LinkConfig::reliable(Latency::uniform_ms(0, latency_ms_max))
}

fn config(link: LinkConfig, seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed, NetworkConfig::uniform(link));
    config.trace_mode = TraceMode::Full;
    config
}

fn kinds(sim: &Simulation<Probe>) -> Vec<&'static str> {
    sim.world().trace().map(|r| r.event.kind()).collect()
}

#[test]
fn same_seed_same_trace_and_different_seeds_differ() {
    let mut lossy = link(30);
    lossy.drop_probability = 0.2;
    lossy.duplicate_probability = 0.2;
    let hash = |seed| probe_sim(config(lossy, seed), 50, 10).run().trace_hash;
    assert_eq!(hash(1), hash(1));
    assert_ne!(hash(1), hash(2));
}

#[test]
fn the_trace_mode_does_not_change_the_hash() {
    let mut a = config(link(30), 3);
    a.trace_mode = TraceMode::HashOnly;
    let b = config(link(30), 3);
    assert_eq!(probe_sim(a, 20, 5).run().trace_hash, probe_sim(b, 20, 5).run().trace_hash);
}

#[test]
fn loss_shows_in_the_trace_only_when_enabled() {
    let mut lossy = link(10);
    lossy.drop_probability = 0.3;
    let mut sim = probe_sim(config(lossy, 5), 100, 0);
    let report = sim.run();
    assert!(report.totals.dropped > 0);
    assert!(kinds(&sim).contains(&"drop"));

    let mut sim = probe_sim(config(link(10), 5), 100, 0);
    sim.run();
    assert!(!kinds(&sim).contains(&"drop"));
}

#[test]
fn duplication_shows_in_the_trace_only_when_enabled() {
    let mut dup = link(10);
    dup.duplicate_probability = 0.3;
    let mut sim = probe_sim(config(dup, 5), 100, 0);
    let report = sim.run();
    assert!(kinds(&sim).contains(&"duplicate"));
    assert_eq!(report.totals.delivered, 100 + report.totals.duplicated);
    let receiver = sim.world().node(NodeId(1)).unwrap();
    assert!(receiver.received.len() > 100);

    let mut sim = probe_sim(config(link(10), 5), 100, 0);
    sim.run();
    assert!(!kinds(&sim).contains(&"duplicate"));
}

fn inversions(received: &[u64]) -> usize {
    received.windows(2).filter(|w| w[1] < w[0]).count()
}

#[test]
fn reordering_happens_with_independent_delays() {
    let mut sim = probe_sim(config(link(50), 9), 100, 5);
    sim.run();
    assert!(inversions(&sim.world().node(NodeId(1)).unwrap().received) > 0);
}

#[test]
fn fifo_links_never_reorder() {
    for seed in 0..20 {
        let mut fifo = link(50);
        fifo.ordering = LinkOrdering::Fifo;
        fifo.duplicate_probability = 0.2;
        fifo.drop_probability = 0.1;
        let mut sim = probe_sim(config(fifo, seed), 50, 5);
        sim.run();
        let received = &sim.world().node(NodeId(1)).unwrap().received;
        assert_eq!(inversions(received), 0, "seed {seed}: {received:?}");
    }
}

#[test]
fn slow_messages_take_the_extra_delay() {
    let mut slow = link(1);
    slow.slow = Some(sim_core::SlowRule {
        probability: 1.0,
        latency: Latency::uniform_ms(200, 300),
        applies_to: sim_core::AppliesTo::All,
    });
    let mut sim = probe_sim(config(slow, 1), 10, 0);
    let report = sim.run();
    assert!(report.time >= SimTime::from_millis(200));
}

#[test]
fn partitions_drop_messages_and_show_in_the_trace() {
    for partition in [
        Partition::Symmetric { groups: vec![vec![NodeId(0)], vec![NodeId(1)]] },
        Partition::OneWay { from: vec![NodeId(0)], to: vec![NodeId(1)] },
    ] {
        let mut cfg = config(link(2), 1);
        cfg.faults = vec![
            ScheduledFault {
                at: SimTime::from_millis(12),
                fault: Fault::Partition { id: 0, partition, lasting: false },
            },
            ScheduledFault { at: SimTime::from_millis(32), fault: Fault::Heal { id: 0 } },
        ];
        let mut sim = probe_sim(cfg, 10, 10);
        sim.run();
        let kinds = kinds(&sim);
        assert!(kinds.contains(&"partition") && kinds.contains(&"heal"));
        let partition_drops = sim
            .world()
            .trace()
            .filter(|r| matches!(r.event, TraceEvent::Drop { reason: DropReason::Partition, .. }))
            .count();
        assert!(partition_drops > 0);
        // Nothing crosses the cut while it lasts.
        for record in sim.world().trace() {
            if let TraceEvent::Deliver { .. } = record.event {
                let t = record.time;
                assert!(!(t > SimTime::from_millis(12) && t < SimTime::from_millis(32)), "delivered at {t}");
            }
        }
    }
    let mut sim = probe_sim(config(link(2), 1), 10, 10);
    sim.run();
    assert!(!kinds(&sim).contains(&"partition"));
}

#[test]
fn one_way_partition_lets_the_other_direction_through() {
    let p = Partition::OneWay { from: vec![NodeId(1)], to: vec![NodeId(0)] };
    let mut cfg = config(link(2), 1);
    cfg.faults = vec![ScheduledFault {
        at: SimTime::ZERO,
        fault: Fault::Partition { id: 0, partition: p, lasting: false },
    }];
    let mut sim = probe_sim(cfg, 10, 0);
    let report = sim.run();
    assert_eq!(report.totals.delivered, 10);
}

#[test]
fn a_crashed_node_receives_nothing_loses_its_timers_and_restarts_from_durable_storage() {
    let mut cfg = config(link(2), 4);
    cfg.faults = vec![
        ScheduledFault { at: SimTime::from_millis(10), fault: Fault::Crash(NodeId(1)) },
        ScheduledFault { at: SimTime::from_millis(30), fault: Fault::Restart(NodeId(1)) },
    ];
    let mut sim = probe_sim(cfg, 5, 12);
    sim.run();
    let world = sim.world();
    let mut down = false;
    let mut crashed_drops = 0;
    let mut durable_at_crash = 0;
    let mut delivered = 0;
    for record in world.trace() {
        match &record.event {
            TraceEvent::Crash { .. } => {
                down = true;
                durable_at_crash = delivered;
            }
            TraceEvent::Restart { .. } => down = false,
            TraceEvent::Deliver { to, .. } => {
                assert!(!down, "delivered to a crashed node at {}", record.time);
                assert_eq!(*to, NodeId(1));
                delivered += 1;
            }
            TraceEvent::Drop { reason: DropReason::Crashed, .. } => {
                assert!(down);
                crashed_drops += 1;
            }
            TraceEvent::TimerFire { node, .. } if *node == NodeId(1) => {
                // The timer set at start (due at 20 ms) died with the crash at 10 ms; only the
                // restarted incarnation's timer (due at 50 ms) may fire.
                assert!(record.time >= SimTime::from_millis(50), "old timer fired at {}", record.time);
            }
            _ => {}
        }
    }
    assert!(crashed_drops > 0);
    let receiver = world.node(NodeId(1)).unwrap();
    assert_eq!(receiver.restored_from, durable_at_crash);
    assert!(receiver.timer_fired);
    assert_eq!(*world.durable(NodeId(1)), delivered);
    assert!(receiver.received.len() < delivered as usize, "volatile state was lost at the crash");
}

/// Fails once node 1 has received `limit` messages.
#[derive(Clone)]
struct AtMost(usize);
impl Invariant<Probe> for AtMost {
    fn name(&self) -> &'static str {
        "at-most"
    }
    fn check_step(&mut self, world: &World<Probe>) -> Result<(), CheckError> {
        match world.node(NodeId(1)) {
            Some(n) if n.received.len() >= self.0 => Err(format!("{} received", n.received.len()).into()),
            _ => Ok(()),
        }
    }
}

#[test]
fn the_run_stops_at_the_first_violating_step() {
    let mut sim = probe_sim(config(link(10), 2), 20, 0);
    sim.add_invariant(Box::new(AtMost(5)));
    let report = sim.run();
    let Outcome::Violation(v) = &report.outcome else { panic!("expected a violation: {report:?}") };
    assert_eq!(v.invariant, "at-most");
    assert_eq!(v.phase, Phase::Safety);
    let fifth = sim.world().trace().filter(|r| r.event.kind() == "deliver").nth(4).unwrap().step;
    assert_eq!(v.step, fifth);
    assert_eq!(report.steps, fifth);
    assert!(sim.world().trace().all(|r| r.step <= fifth));
    // A full trace is kept: the report shows its last 50 records.
    assert_eq!(v.recent.len(), sim.world().trace().count().min(50));
    assert_eq!(v.recent.last(), sim.world().trace().last().map(ToString::to_string).as_ref());
}

/// At the end, node 1 must have received `expected` messages.
#[derive(Clone)]
struct ReceivedAll(usize);
impl Invariant<Probe> for ReceivedAll {
    fn name(&self) -> &'static str {
        "received-all"
    }
    fn check_end(&mut self, world: &World<Probe>) -> Result<(), CheckError> {
        let got = world.node(NodeId(1)).map_or(0, |n| n.received.len());
        if got == self.0 {
            Ok(())
        } else {
            Err(format!("{got} of {} received", self.0).into())
        }
    }
}

#[test]
fn end_checks_run_at_the_end_and_report_liveness() {
    let mut lossy = link(5);
    lossy.drop_probability = 0.5;
    let mut sim = probe_sim(config(lossy, 2), 20, 0);
    sim.add_invariant(Box::new(ReceivedAll(20)));
    let v = sim.run().outcome.violation().cloned().expect("half the messages are lost");
    assert_eq!((v.invariant.as_str(), v.phase), ("received-all", Phase::Liveness));

    let mut sim = probe_sim(config(link(5), 2), 20, 0);
    sim.add_invariant(Box::new(ReceivedAll(20)));
    assert_eq!(sim.run().outcome, Outcome::Pass);
}

#[test]
fn the_network_heals_at_heal_time() {
    let mut lossy = link(5);
    lossy.drop_probability = 1.0;
    let mut cfg = config(lossy, 2);
    cfg.heal_at = Some(SimTime::from_millis(12));
    let mut sim = probe_sim(cfg, 10, 5);
    let report = sim.run();
    assert!(kinds(&sim).contains(&"network-healed"));
    // Bursts before the heal are all lost; the ones after all arrive.
    assert_eq!(report.totals.delivered, 30);
}

#[test]
fn run_limits_are_reported_outcomes() {
    let mut cfg = config(link(5), 2);
    cfg.max_steps = 7;
    let report = probe_sim(cfg, 20, 0).run();
    assert_eq!(report.outcome, Outcome::LimitReached(Limit::MaxSteps { steps: 7 }));
    assert_eq!(report.steps, 7);

    let mut cfg = config(link(5), 2);
    cfg.max_time = SimTime::from_millis(12);
    let report = probe_sim(cfg, 1, 100).run();
    assert_eq!(report.outcome, Outcome::LimitReached(Limit::MaxTime { time: SimTime::from_millis(12) }));
    assert!(report.time <= SimTime::from_millis(12));
}

#[test]
fn idle_time_is_skipped() {
    let mut cfg = config(LinkConfig::reliable(Latency::Constant(SimDuration::from_millis(1_000_000))), 1);
    cfg.max_steps = 100;
    let report = probe_sim(cfg, 1, 0).run();
    // Four steps (two starts, the receiver's timer, one delivery) carry the clock across
    // 1000 s: nothing ticks through the idle time in between.
    assert_eq!(report.steps, 4);
    assert_eq!(report.time, SimTime::from_millis(1_000_000));
}

#[test]
fn counters_count_messages_and_bytes() {
    let mut sim = probe_sim(config(link(5), 2), 10, 0);
    let report = sim.run();
    let sender = sim.world().counters(NodeId(0));
    assert_eq!((sender.sent, sender.delivered), (10, 0));
    let receiver = sim.world().counters(NodeId(1));
    assert_eq!(receiver.delivered, 10);
    assert_eq!(receiver.bytes_delivered, sender.bytes_sent);
    assert_eq!(report.totals.sent, 10);
}

#[test]
fn no_fault_shows_in_the_trace_of_a_run_without_faults() {
    let mut sim = probe_sim(config(link(10), 3), 50, 5);
    sim.run();
    let kinds = kinds(&sim);
    for fault in ["drop", "duplicate", "crash", "restart", "partition", "heal", "network-healed"] {
        assert!(!kinds.contains(&fault), "{fault} in a run without faults");
    }
    assert!(sim.world().trace().all(|r| !matches!(r.event, TraceEvent::Drop { .. })));
}

/// Node 0 sets a timer and tells node 1 its id; node 1 tries to cancel it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Meddler {
    fired: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
struct YourTimer(sim_core::TimerId);
impl Message for YourTimer {}

impl Node for Meddler {
    type Msg = YourTimer;
    type Timer = ();
    type Durable = ();
    type Op = ();

    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        if ctx.id() == NodeId(0) {
            let timer = ctx.set_timer(SimDuration::from_millis(50), ());
            ctx.send(NodeId(1), YourTimer(timer));
        }
    }

    fn on_message(&mut self, ctx: &mut Context<'_, Self>, _from: NodeId, msg: YourTimer) {
        ctx.cancel_timer(msg.0);
    }

    fn on_timer(&mut self, _ctx: &mut Context<'_, Self>, _timer: ()) {
        self.fired = true;
    }
}

#[test]
fn a_node_cannot_cancel_another_nodes_timer() {
    let latency = Latency::Constant(SimDuration::from_millis(1));
    let mut config = SimConfig::new(1, NetworkConfig::uniform(LinkConfig::reliable(latency)));
    config.trace_mode = TraceMode::Full;
    let mut sim = Simulation::new(config, 2, |_, _| Meddler { fired: false });
    assert_eq!(sim.run().outcome, Outcome::Pass);
    assert_eq!(
        sim.world().node(NodeId(0)),
        Some(&Meddler { fired: true }),
        "node 1 cancelled node 0's timer"
    );
    assert!(
        !sim.world().trace().any(|r| matches!(r.event, TraceEvent::TimerCancel { .. })),
        "a cancel of another node's timer is not a cancel"
    );
}
