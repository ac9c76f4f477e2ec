//! The `dsim` command line. Exit codes: 0 the expectation was met, 1 it was not,
//! 2 bad input or usage (nothing else is printed then).

use clap::{Parser, Subcommand, ValueEnum};
use dsim::bench::{self, BenchTrace};
use dsim::runner::{self, CausalExports, TraceSink};
use dsim::scenario::Scenario;
use sim_core::{TraceMode, PRESET_NAMES};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dsim",
    version,
    about = "A deterministic distributed-systems simulator",
    long_about = "dsim runs protocols over a seeded virtual network that drops, delays, duplicates and \
                  reorders messages, partitions nodes, and crashes and restarts them, checking the \
                  protocol's invariants after every step. Same scenario + same seed = same trace.",
    after_help = "Exit codes: 0 the scenario's expectation was met, 1 it was not, 2 bad input or usage.\n\n\
                  Example:\n  dsim run scenarios/rpc/duplicate-put.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file and print a summary; exit 0 if its expectation is met.
    #[command(after_help = "The file's `expect` applies to its own seed. With --seed, a teaching \
                            scenario may or may not show its anomaly; the summary says which.\n\n\
                            Examples:\n  dsim run scenarios/rpc/reliable.json\n  \
                            dsim run scenarios/rpc/duplicate-put.json --seed 9 --trace out.jsonl\n  \
                            dsim run scenarios/rpc/duplicate-put.json --format json")]
    Run {
        /// The scenario file (JSON).
        file: PathBuf,
        /// Run with this seed instead of the file's.
        #[arg(long)]
        seed: Option<u64>,
        /// Write the full trace here: JSON Lines if the name ends in .jsonl or .json, else text.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// How to print the summary.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Write the run's ground-truth causality as a ShiViz log (paste it into ShiViz).
        #[arg(long, value_name = "FILE")]
        shiviz: Option<PathBuf>,
        /// Write the run's causal graph (events, process order, messages) in Graphviz DOT.
        #[arg(long, value_name = "FILE")]
        dot: Option<PathBuf>,
        /// Print a table of the first events with their Lamport and vector stamps.
        #[arg(long)]
        explain_clocks: bool,
    },
    /// List the protocols with their parameters, the network presets, and the bundled scenarios.
    #[command(after_help = "Example:\n  dsim list")]
    List,
    /// Time the ping workload (N nodes, K pings in flight each, M deliveries).
    #[command(after_help = "By default runs N=10,K=100 and N=1000,K=100, M=5000000 each, and the \
                            bare binary-heap loop beside each. Build with --release.\n\n\
                            Example:\n  cargo run --release -- bench --nodes 10,100 --in-flight 100 \
                            --deliveries 1000000 --trace full")]
    Bench {
        /// Node counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [10u32, 1000])]
        nodes: Vec<u32>,
        /// Pings each node keeps in flight.
        #[arg(long, default_value_t = 100)]
        in_flight: u32,
        /// Deliveries per run.
        #[arg(long, default_value_t = 5_000_000)]
        deliveries: u64,
        /// How much trace to keep.
        #[arg(long, value_enum, default_value = "hash")]
        trace: BenchTrace,
        /// Skip the bare binary-heap baseline.
        #[arg(long)]
        no_baseline: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { file, seed, trace, format, shiviz, dot, explain_clocks } => {
            run(file, seed, trace, format, Causal { shiviz, dot, explain: explain_clocks })
        }
        Command::List => {
            print!("{}", list());
            ExitCode::SUCCESS
        }
        Command::Bench { nodes, in_flight, deliveries, trace, no_baseline } => {
            bench(&nodes, in_flight, deliveries, trace, !no_baseline)
        }
    }
}

fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// The causal exports `dsim run` was asked for.
struct Causal {
    shiviz: Option<PathBuf>,
    dot: Option<PathBuf>,
    explain: bool,
}

fn create(path: &Option<PathBuf>, what: &str) -> Result<Option<BufWriter<File>>, String> {
    match path {
        Some(path) => File::create(path)
            .map(|f| Some(BufWriter::new(f)))
            .map_err(|err| format!("{}: cannot write the {what}: {err}", path.display())),
        None => Ok(None),
    }
}

fn run(file: PathBuf, seed: Option<u64>, trace: Option<PathBuf>, format: Format, causal: Causal) -> ExitCode {
    let scenario = match Scenario::load(&file) {
        Ok(scenario) => scenario,
        Err(err) => return bad_input(err),
    };
    let (mut shiviz, mut dot) = match (create(&causal.shiviz, "ShiViz log"), create(&causal.dot, "DOT graph"))
    {
        (Ok(shiviz), Ok(dot)) => (shiviz, dot),
        (Err(err), _) | (_, Err(err)) => return bad_input(err),
    };
    let mut explain = Vec::new();
    let exports = CausalExports {
        shiviz: shiviz.as_mut().map(|f| f as &mut dyn Write),
        dot: dot.as_mut().map(|f| f as &mut dyn Write),
        explain: causal.explain.then_some(&mut explain as &mut dyn Write),
    };
    let shown = file.display().to_string();
    let mut trace_file = match &trace {
        Some(path) => match File::create(path) {
            Ok(f) => Some(BufWriter::new(f)),
            Err(err) => return bad_input(format!("{}: cannot write the trace: {err}", path.display())),
        },
        None => None,
    };
    let json_lines = trace.as_ref().and_then(|p| p.extension()).is_some_and(|e| e == "jsonl" || e == "json");
    let sink = trace_file.as_mut().map(|f| {
        if json_lines {
            TraceSink::JsonLines(f as &mut dyn Write)
        } else {
            TraceSink::Text(f as &mut dyn Write)
        }
    });
    let mode = if sink.is_some() { TraceMode::Full } else { TraceMode::Recent(20) };
    let summary = match runner::run_with_exports(&scenario, &shown, seed, mode, sink, exports) {
        Ok(summary) => summary,
        Err(err) => return bad_input(format!("writing the trace or an export: {err}")),
    };
    for out in [trace_file, shiviz, dot].into_iter().flatten() {
        if let Err(err) = out.into_inner().map_err(|e| e.into_error()) {
            return bad_input(format!("writing the trace or an export: {err}"));
        }
    }
    if matches!(format, Format::Text) {
        print!("{}", String::from_utf8_lossy(&explain));
        if !explain.is_empty() {
            println!();
        }
    }
    match format {
        Format::Text => print!("{}", summary.text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&summary).expect("summary serializes")),
    }
    if summary.expectation_met {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn list() -> String {
    let mut out = String::from("Protocols (scenario field \"protocol\": {\"NAME\": {PARAMETERS}}):\n");
    let protocols: [(&str, &str, &[protocols::ParamDoc], &[&str]); 3] = [
        (
            "rpc",
            "RPC with retries (best effort) over a key/value server",
            protocols::rpc::PARAMS,
            protocols::rpc::INVARIANTS,
        ),
        (
            "ping",
            "load generator: N nodes keep K pings in flight",
            protocols::ping::PARAMS,
            protocols::ping::INVARIANTS,
        ),
        (
            "clocks",
            "processes stamp events with physical, Lamport and vector clocks, checked against ground truth",
            protocols::clocks::PARAMS,
            protocols::clocks::INVARIANTS,
        ),
    ];
    for (name, about, params, invariants) in protocols {
        out.push_str(&format!("  {name:<10} {about}\n"));
        for p in params {
            out.push_str(&format!("      {:<20} default {:<8} {}\n", p.name, p.default, p.help));
        }
        if !invariants.is_empty() {
            out.push_str(&format!("      invariants: {}\n", invariants.join(", ")));
        }
    }
    out.push_str(&format!("\nNetwork presets: {}\n\nBundled scenarios:\n", PRESET_NAMES.join(", ")));
    let root = dsim::scenarios_dir();
    for path in dsim::bundled_scenarios() {
        let shown = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        match Scenario::load(&path) {
            Ok(s) => {
                let first = s.description.split(". ").next().unwrap_or("").trim_end_matches('.');
                out.push_str(&format!("  {shown:<34} {first}\n"));
            }
            Err(err) => out.push_str(&format!("  {shown:<34} (does not load: {err})\n")),
        }
    }
    out
}

fn bench(nodes: &[u32], in_flight: u32, deliveries: u64, trace: BenchTrace, baseline: bool) -> ExitCode {
    for &n in nodes {
        if let Err(message) = bench::check_nodes(n) {
            return bad_input(message);
        }
    }
    let mode = match trace {
        BenchTrace::Hash => "hash",
        BenchTrace::Full => "full",
    };
    for &n in nodes {
        let m = bench::ping(n, in_flight, deliveries, trace, 1);
        let rate = m.per_second();
        let mut line = format!(
            "ping N={n} K={in_flight} M={deliveries} trace={mode} deliveries_per_s={rate:.0} trace_hash={}",
            m.trace_hash
        );
        if baseline {
            let bare = bench::bare(n, in_flight, deliveries, 1);
            line.push_str(&format!(
                " bare_deliveries_per_s={:.0} ratio_to_bare={:.2}",
                bare.per_second(),
                rate / bare.per_second()
            ));
        }
        println!("{line}");
    }
    ExitCode::SUCCESS
}
