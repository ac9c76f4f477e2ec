//! A simulation whose node type is hidden: what a command-line tool needs to run any
//! protocol it finds by name, without being generic over the protocol's node type.
//!
//! [`Simulation<N>`] implements [`AnySimulation`]; a protocol registry hands the runner a
//! `Box<dyn AnySimulation>`, and the runner steps it, reads its report, writes its trace,
//! and exports its causal record, whatever the protocol.

use crate::causality::Causality;
use crate::explore::{Branch, Budgets, Choice, CrashRules, Exploration, ExploreOptions, ExploreStats};
use crate::node::{Coverage, Node};
use crate::sim::{Report, Simulation};
use crate::trace::TraceRecord;
use std::io::{self, Write};

/// How a trace is written: JSON Lines, or the readable text form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// One JSON object a line, one line a record.
    JsonLines,
    /// The readable text form, one line a record.
    Text,
}

/// A simulation of some protocol, steppable and readable without knowing its node type.
pub trait AnySimulation {
    /// Processes one event; true once the run is over.
    fn step(&mut self) -> bool;
    /// Runs to the end and reports.
    fn run(&mut self) -> Report;
    /// The report of the run so far.
    fn report(&self) -> Report;
    /// The trace hash so far.
    fn trace_hash(&self) -> u64;
    /// Writes the full trace's older records and forgets them (see
    /// [`Simulation::drain_trace`]): call between steps to stream a long trace.
    fn drain_trace(&mut self, format: TraceFormat, out: &mut dyn Write) -> io::Result<()>;
    /// Writes the records the trace keeps now.
    fn write_trace(&self, format: TraceFormat, out: &mut dyn Write) -> io::Result<()>;
    /// The ground-truth causal record, if tracked.
    fn causality(&self) -> Option<&Causality>;
    /// How often each "sometimes" point was reached.
    fn coverage(&self) -> &Coverage;
    /// The simulation itself, for code that knows its node type (`downcast_ref`).
    fn as_any(&self) -> &dyn std::any::Any;
    /// Searches every interleaving of this simulation, not yet stepped, within the
    /// options' budgets (see [`crate::explore`]); the simulation itself is left as it is.
    fn explore(&self, options: &ExploreOptions, stop: &mut dyn FnMut(&ExploreStats) -> bool) -> Exploration;
    /// Runs this simulation, not yet stepped, by a decision log instead of its seed (see
    /// [`Branch::follow`]); afterwards it is at the run's end, and reports and writes its
    /// trace as any finished run. Returns the decisions taken, the default ones included.
    fn follow(
        &mut self,
        budgets: Budgets,
        rules: CrashRules,
        decisions: &[Choice],
        strict: bool,
    ) -> Result<Vec<Choice>, String>;
}

fn write_records<'r, N: Node>(
    records: impl Iterator<Item = &'r TraceRecord<N::Msg, N::Timer>>,
    format: TraceFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    for record in records {
        match format {
            TraceFormat::JsonLines => {
                serde_json::to_writer(&mut *out, record)?;
                out.write_all(b"\n")?;
            }
            TraceFormat::Text => writeln!(out, "{record}")?,
        }
    }
    Ok(())
}

impl<N: Node> AnySimulation for Simulation<N> {
    fn step(&mut self) -> bool {
        Simulation::step(self).is_some()
    }

    fn run(&mut self) -> Report {
        Simulation::run(self)
    }

    fn report(&self) -> Report {
        Simulation::report(self)
    }

    fn trace_hash(&self) -> u64 {
        self.world().trace_hash()
    }

    fn drain_trace(&mut self, format: TraceFormat, out: &mut dyn Write) -> io::Result<()> {
        for chunk in Simulation::drain_trace(self) {
            write_records::<N>(chunk.iter(), format, out)?;
        }
        Ok(())
    }

    fn write_trace(&self, format: TraceFormat, out: &mut dyn Write) -> io::Result<()> {
        write_records::<N>(self.world().trace(), format, out)
    }

    fn causality(&self) -> Option<&Causality> {
        self.world().causality()
    }

    fn coverage(&self) -> &Coverage {
        self.world().coverage()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn explore(&self, options: &ExploreOptions, stop: &mut dyn FnMut(&ExploreStats) -> bool) -> Exploration {
        crate::explore::explore(self.clone(), options, stop)
    }

    fn follow(
        &mut self,
        budgets: Budgets,
        rules: CrashRules,
        decisions: &[Choice],
        strict: bool,
    ) -> Result<Vec<Choice>, String> {
        let max_steps = self.max_steps();
        let (branch, taken) = Branch::follow(self.clone(), budgets, rules, decisions, strict, max_steps)?;
        *self = branch.into_simulation();
        Ok(taken)
    }
}
