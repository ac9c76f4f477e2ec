//! The test harness library users get (`sim_core::testing`): a seed loop that reports a
//! failure readably, a fault-plan builder, and a proptest strategy for fault plans.

use proptest::prelude::*;
use serde::Serialize;
use sim_core::testing::{check_seeds, fault_plans, FaultPlan};
use sim_core::{
    CheckError, Context, Fault, Invariant, LinkConfig, Message, NetworkConfig, Node, NodeId, Outcome,
    SimConfig, Simulation, World,
};

/// Every node greets every other once; each counts the greetings it got.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Greeter {
    greeted: u32,
}

#[derive(Clone, Debug, Hash, Serialize)]
struct Hello;
impl Message for Hello {}

impl Node for Greeter {
    type Msg = Hello;
    type Timer = ();
    type Durable = ();
    type Op = ();
    fn on_start(&mut self, ctx: &mut Context<'_, Self>) {
        ctx.broadcast(Hello);
    }
    fn on_message(&mut self, _ctx: &mut Context<'_, Self>, _from: NodeId, _msg: Hello) {
        self.greeted += 1;
    }
    fn on_timer(&mut self, _ctx: &mut Context<'_, Self>, _timer: ()) {}
}

/// At the end, every node was greeted by every other: false on a lossy network.
#[derive(Clone)]
struct AllGreeted;
impl Invariant<Greeter> for AllGreeted {
    fn name(&self) -> &'static str {
        "all-greeted"
    }
    fn check_end(&mut self, world: &World<Greeter>) -> Result<(), CheckError> {
        let expected = world.n_nodes() as u32 - 1;
        for (id, node) in world.nodes() {
            if let Some(node) = node.filter(|n| n.greeted < expected) {
                return Err(format!("{id} was greeted {} times of {expected}", node.greeted).into());
            }
        }
        Ok(())
    }
}

fn greeters(seed: u64, link: LinkConfig, faults: Vec<sim_core::ScheduledFault>) -> Simulation<Greeter> {
    let mut config = SimConfig::new(seed, NetworkConfig::uniform(link));
    config.faults = faults;
    let mut sim = Simulation::new(config, 4, |_, _| Greeter { greeted: 0 });
    sim.add_invariant(Box::new(AllGreeted));
    sim
}

#[test]
fn check_seeds_passes_a_correct_run_on_every_seed() {
    check_seeds("greeters", 0..50, |seed| greeters(seed, LinkConfig::default(), Vec::new()));
}

#[test]
fn check_seeds_reports_the_lowest_failing_seed_with_what_it_takes_to_replay_it() {
    let failed = std::panic::catch_unwind(|| {
        check_seeds("lossy greeters", 0..200, |seed| {
            let faults = FaultPlan::new().crash(3, 0).restart(3, 1).build();
            greeters(seed, LinkConfig::lossy(0.2), faults)
        })
    });
    let report = *failed.expect_err("a lossy network loses a greeting").downcast::<String>().unwrap();
    let seed = (0..200)
        .find(|&seed| {
            let faults = FaultPlan::new().crash(3, 0).restart(3, 1).build();
            greeters(seed, LinkConfig::lossy(0.2), faults).run().outcome != Outcome::Pass
        })
        .unwrap();
    assert!(report.contains(&format!("seed {seed} violated all-greeted")), "{report}");
    assert!(report.contains("faults that fired before it:\n  0.000ms: crash n3"), "{report}");
    assert!(report.contains("the last "), "{report}");
    assert!(report.contains(&format!("replay: DSIM_SEED={seed} cargo test")), "{report}");
}

#[test]
fn a_partition_without_an_end_outlives_healing() {
    let faults = FaultPlan::new().partition(&[&[0], &[1, 2, 3]], 0, None).build();
    assert!(matches!(
        faults[..],
        [sim_core::ScheduledFault { fault: Fault::Partition { lasting: true, .. }, .. }]
    ));
    let mut config = SimConfig::new(1, NetworkConfig::uniform(LinkConfig::default()));
    config.faults = faults;
    config.heal_at = Some(sim_core::SimTime::from_millis(1));
    let mut sim = Simulation::new(config, 4, |_, _| Greeter { greeted: 0 });
    sim.run();
    assert_eq!(sim.world().node(NodeId(0)).unwrap().greeted, 0, "n0 stays cut off after healing");
}

fn cases() -> u32 {
    std::env::var("DSIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Plans from the strategy are well formed (every heal after its partition, every
    /// restart after its crash, only crashable nodes crash) and run.
    #[test]
    fn fault_plans_are_well_formed_and_run(plan in fault_plans(4, vec![1, 2], 100, 6), seed in 0u64..1000) {
        let mut started = std::collections::BTreeMap::new();
        for fault in &plan {
            match &fault.fault {
                Fault::Crash(node) | Fault::Restart(node) => prop_assert!([1, 2].contains(&node.0)),
                Fault::Partition { id, lasting, .. } => {
                    prop_assert!(!lasting);
                    started.insert(*id, fault.at);
                }
                Fault::Heal { id } => prop_assert!(started.get(id).is_some_and(|at| *at < fault.at)),
            }
        }
        let mut config = SimConfig::new(seed, NetworkConfig::uniform(LinkConfig::default()));
        config.faults = plan;
        let mut sim = Simulation::new(config, 4, |_, _| Greeter { greeted: 0 });
        prop_assert!(matches!(sim.run().outcome, Outcome::Pass));
    }
}
