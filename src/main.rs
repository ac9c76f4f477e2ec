//! The `dsim` command line. Exit codes: 0 the expectation was met, 1 it was not,
//! 2 bad input or usage (nothing else is printed then).

/// mimalloc rather than the system allocator: a simulation allocates small, short-lived
/// values at a high rate, and a full trace or a fuzz campaign grows and frees large
/// buffers again and again, which glibc hands back to the kernel and faults in anew each
/// time. Measured with `dsim bench` (docs/performance.md): ping N=10 hash-only 13.4 ->
/// 14.2 M deliveries/s, N=10,000 5.5 -> 7.9 M/s, full trace 6.7 -> 10-11 M/s.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand, ValueEnum};
use dsim::bench::{self, BenchTrace};
use dsim::fuzz::{self, FailureFile, FuzzOptions, Loaded, SeedRange, Shard};
use dsim::runner::{self, CausalExports, TraceSink};
use dsim::scenario::Scenario;
use dsim::shrink;
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
    /// Run one scenario over many seeds, in parallel, hunting for invariant violations.
    #[command(after_help = "Ignores the file's `expect`: any violation is a failure. Stops at the lowest \
                            failing seed unless --keep-going. Exit 0: no failure, 1: failures found, 2: bad input.\n\n\
                            Examples:\n  dsim fuzz scenarios/rpc/duplicate-execution.json --seeds 0..1000\n  \
                            dsim fuzz scenarios/rpc/reliable.json --seeds 0..10000 --swarm --keep-going --out failures\n  \
                            dsim fuzz scenarios/rpc/reliable.json --seeds 0..100000 --shard 3/8 --format json")]
    Fuzz {
        /// The scenario file (JSON).
        file: PathBuf,
        /// Seeds to run: A..B (B excluded) or A..=B.
        #[arg(long, default_value = "0..1000")]
        seeds: SeedRange,
        /// Worker threads (default: all cores). Each run stays single-threaded.
        #[arg(long)]
        jobs: Option<usize>,
        /// Swarm testing: each seed draws which fault kinds are on, and their rates.
        #[arg(long)]
        swarm: bool,
        /// Run every seed instead of stopping at the first failure.
        #[arg(long)]
        keep_going: bool,
        /// Run only shard I of N: every N-th seed of the range, from its I-th.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Where failure files go.
        #[arg(long, value_name = "DIR", default_value = "dsim-failures")]
        out: PathBuf,
        /// How to print the summary.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Re-run a failure file and check that it fails the same way, with the same trace hash.
    #[command(after_help = "Exit 0: same violation and trace hash; 1: the run diverged (a determinism \
                            bug, or the code changed since the failure was recorded); 2: bad input.\n\n\
                            Example:\n  dsim replay dsim-failures/rpc-duplicate-execution-seed-7-executed-at-most-once.json")]
    Replay {
        /// The failure file.
        file: PathBuf,
    },
    /// Minimise a failure file while the same invariant still fails.
    #[command(after_help = "Drops faults, shortens partitions, lowers loss and duplication to zero, cuts \
                            clients, operations and nodes, and tries nearby seeds. Writes a failure file that replays.\n\n\
                            Example:\n  dsim shrink dsim-failures/x.json --out small.json")]
    Shrink {
        /// The failure file.
        file: PathBuf,
        /// Where to write the smallest failing case (default: next to the input, .shrunk.json).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Give up after this many candidate runs.
        #[arg(long, default_value_t = 5_000)]
        max_tries: u64,
    },
    /// Run each seed twice and compare the trace hash after every step.
    #[command(after_help = "Exit 0: every run was identical twice; 1: a run diverged (the first differing \
                            step is printed); 2: bad input.\n\n\
                            Example:\n  dsim check-determinism scenarios/rpc/reliable.json --seeds 0..100")]
    CheckDeterminism {
        /// The scenario file (JSON).
        file: PathBuf,
        /// Seeds to check: A..B or A..=B.
        #[arg(long, default_value = "0..20")]
        seeds: SeedRange,
    },
    /// List the protocols with their parameters, the network presets, and the bundled scenarios.
    #[command(after_help = "Example:\n  dsim list")]
    List,
    /// Time the ping workload (N nodes, K pings in flight each, M deliveries), and more.
    #[command(after_help = "By default runs N=10,K=100 and N=1000,K=100, M=5000000 each, with the bare \
                            binary-heap loop beside each. --suite runs every benchmark of docs/performance.md: \
                            the ping matrix (trace hash-only, full, invariants on), every passing bundled \
                            scenario, and the linearizability checker. Build with --release.\n\n\
                            Examples:\n  cargo run --release -- bench\n  \
                            cargo run --release -- bench --nodes 10,100 --deliveries 1000000 --trace full --repeat 3\n  \
                            cargo run --release -- bench --suite")]
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
        /// Check the ping protocol's invariant after every step.
        #[arg(long)]
        invariants: bool,
        /// Run each measurement this many times and report the best.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Skip the bare binary-heap baseline.
        #[arg(long)]
        no_baseline: bool,
        /// Run the whole benchmark suite.
        #[arg(long)]
        suite: bool,
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
            emit(&list());
            ExitCode::SUCCESS
        }
        Command::Bench { nodes, in_flight, deliveries, trace, invariants, repeat, no_baseline, suite } => {
            if repeat == 0 {
                return bad_input("--repeat 0: at least one run is needed");
            }
            if suite {
                bench_suite(repeat)
            } else {
                let modes = [(trace, invariants)];
                bench(&nodes, in_flight, deliveries, &modes, repeat, !no_baseline)
            }
        }
        Command::Fuzz { file, seeds, jobs, swarm, keep_going, shard, out, format } => {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            if jobs == 0 {
                return bad_input("--jobs 0: at least one job is needed");
            }
            let options = FuzzOptions {
                seeds,
                shard,
                jobs,
                swarm,
                keep_going,
                progress: matches!(format, Format::Text),
            };
            fuzz_command(file, options, out, format)
        }
        Command::Replay { file } => replay(file),
        Command::Shrink { file, out, max_tries } => shrink_command(file, out, max_tries),
        Command::CheckDeterminism { file, seeds } => check_determinism(file, seeds),
    }
}

fn fuzz_command(file: PathBuf, options: FuzzOptions, out: PathBuf, format: Format) -> ExitCode {
    let scenario = match fuzz::load(&file) {
        Ok(loaded) => loaded.scenario,
        Err(err) => return bad_input(err),
    };
    let shown = file.display().to_string();
    let report = fuzz::campaign(&scenario, &shown, &options);
    let written = match report.write_failures(&out) {
        Ok(paths) => paths,
        Err(err) => return bad_input(format!("{}: cannot write failure files: {err}", out.display())),
    };
    match format {
        Format::Text => emit(&report.text(&written)),
        Format::Json => emit(&(serde_json::to_string_pretty(&report).expect("reports serialize") + "\n")),
    }
    ExitCode::from(report.exit_code())
}

fn load_failure(file: &std::path::Path) -> Result<FailureFile, ExitCode> {
    match fuzz::load(file) {
        Ok(Loaded { failure: Some(failure), .. }) => Ok(failure),
        Ok(Loaded { failure: None, .. }) => Err(bad_input(format!(
            "{}: this is a scenario file, not a failure file (run it with dsim run, or fuzz it to find failures)",
            file.display()
        ))),
        Err(err) => Err(bad_input(err)),
    }
}

fn replay(file: PathBuf) -> ExitCode {
    let failure = match load_failure(&file) {
        Ok(failure) => failure,
        Err(code) => return code,
    };
    let shown = file.display().to_string();
    let summary =
        match runner::run(&failure.scenario, &shown, Some(failure.seed), TraceMode::Recent(20), None) {
            Ok(summary) => summary,
            Err(err) => return bad_input(err),
        };
    print!("{}", summary.text());
    let violation = summary.outcome.violation();
    let same_violation =
        violation.is_some_and(|v| v.invariant == failure.invariant && v.step == failure.step);
    if same_violation && summary.trace_hash == failure.trace_hash {
        println!(
            "\nreplayed: the same violation of {} at step {}, the same trace hash",
            failure.invariant, failure.step
        );
        ExitCode::SUCCESS
    } else {
        let now = match violation {
            Some(v) => format!("{} at step {}", v.invariant, v.step),
            None => "no violation".to_string(),
        };
        println!(
            "\nDIVERGED: the failure file recorded {} at step {} with trace hash {}; this run gave {now} with trace hash {}.\n\
             Same scenario and seed must give the same run: this is a determinism bug, or the code changed since the file was written.",
            failure.invariant, failure.step, failure.trace_hash, summary.trace_hash
        );
        ExitCode::from(1)
    }
}

fn shrink_command(file: PathBuf, out: Option<PathBuf>, max_tries: u64) -> ExitCode {
    let failure = match load_failure(&file) {
        Ok(failure) => failure,
        Err(code) => return code,
    };
    let shrunk = match shrink::shrink(&failure, max_tries) {
        Ok(shrunk) => shrunk,
        Err(message) => {
            eprintln!("error: {}: {message}", file.display());
            return ExitCode::from(1);
        }
    };
    let out = out.unwrap_or_else(|| file.with_extension("shrunk.json"));
    if let Err(err) = std::fs::write(&out, shrunk.failure.to_json()) {
        return bad_input(format!("{}: cannot write: {err}", out.display()));
    }
    println!("shrunk        {} ({} violates {})", file.display(), failure.seed, failure.invariant);
    println!("before        {}", shrunk.before);
    println!("after         {} (seed {})", shrunk.after, shrunk.failure.seed);
    println!("tries         {}", shrunk.tries);
    println!("written       {}", out.display());
    println!("replay        dsim replay {}", out.display());
    ExitCode::SUCCESS
}

fn check_determinism(file: PathBuf, seeds: SeedRange) -> ExitCode {
    let scenario = match fuzz::load(&file) {
        Ok(loaded) => loaded.scenario,
        Err(err) => return bad_input(err),
    };
    let mut steps = 0;
    for seed in seeds.start..seeds.end {
        // The second run keeps the full trace: keeping more must change nothing.
        let first = runner::step_hashes(&scenario, seed, TraceMode::HashOnly);
        let second = runner::step_hashes(&scenario, seed, TraceMode::Full);
        steps += first.len();
        if let Some(step) = (0..first.len().max(second.len())).find(|&i| first.get(i) != second.get(i)) {
            let show = |h: Option<&u64>| h.map_or("(run ended)".to_string(), |h| format!("{h:016x}"));
            println!(
                "seed {seed}: the two runs differ first at step {}: trace hash {} vs {}",
                step + 1,
                show(first.get(step)),
                show(second.get(step))
            );
            println!(
                "replay        dsim run {} --seed {seed} --trace a.jsonl (twice, and compare)",
                file.display()
            );
            return ExitCode::from(1);
        }
    }
    println!(
        "deterministic {}: seeds {seeds}, every run identical twice, step by step ({steps} steps compared)",
        file.display()
    );
    ExitCode::SUCCESS
}

/// Prints to stdout; a reader that went away (`dsim ... | head`) is not an error.
fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
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
    let scenario = match fuzz::load(&file) {
        Ok(loaded) => loaded.scenario,
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
        Format::Text => emit(&summary.text()),
        Format::Json => emit(&(serde_json::to_string_pretty(&summary).expect("summary serializes") + "\n")),
    }
    ExitCode::from(summary.exit_code())
}

fn list() -> String {
    let mut out = String::from("Protocols (scenario field \"protocol\": {\"NAME\": {PARAMETERS}}):\n");
    let protocols: [(&str, &str, &[protocols::ParamDoc], &[&str]); 4] = [
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
            "at-most-once",
            "at-most-once RPC: request ids, reply cache, discard, pending marks, durable dedup table",
            protocols::at_most_once::PARAMS,
            protocols::at_most_once::INVARIANTS,
        ),
        (
            "clocks",
            "processes stamp events with physical, Lamport and vector clocks, checked against ground truth",
            protocols::clocks::PARAMS,
            protocols::clocks::INVARIANTS,
        ),
    ];
    for (name, about, params, invariants) in protocols {
        out.push_str(&format!("  {name:<12} {about}\n"));
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
                out.push_str(&format!("  {shown:<42} {first}\n"));
            }
            Err(err) => out.push_str(&format!("  {shown:<42} (does not load: {err})\n")),
        }
    }
    out
}

/// Runs the ping workload for each node count and mode; prints one line each.
fn bench(
    nodes: &[u32],
    in_flight: u32,
    deliveries: u64,
    modes: &[(BenchTrace, bool)],
    repeat: u32,
    baseline: bool,
) -> ExitCode {
    for &n in nodes {
        if let Err(message) = bench::check_nodes(n) {
            return bad_input(message);
        }
    }
    for &n in nodes {
        let bare = baseline.then(|| best_of(repeat, || bench::bare(n, in_flight, deliveries, 1)));
        for &(trace, invariants) in modes {
            let m = best_of(repeat, || bench::ping(n, in_flight, deliveries, trace, invariants, 1));
            emit(&ping_line(n, in_flight, deliveries, trace, invariants, &m, bare.as_ref()));
        }
    }
    ExitCode::SUCCESS
}

fn best_of(repeat: u32, run: impl Fn() -> bench::Measurement) -> bench::Measurement {
    (0..repeat).map(|_| run()).max_by(|a, b| a.per_second().total_cmp(&b.per_second())).expect("repeat >= 1")
}

fn ping_line(
    n: u32,
    k: u32,
    m: u64,
    trace: BenchTrace,
    invariants: bool,
    result: &bench::Measurement,
    bare: Option<&bench::Measurement>,
) -> String {
    let mode = match trace {
        BenchTrace::Hash => "hash",
        BenchTrace::Full => "full",
    };
    let rate = result.per_second();
    let mut line = format!(
        "ping N={n} K={k} M={m} trace={mode} deliveries_per_s={rate:.0} invariants={} trace_hash={}",
        if invariants { "on" } else { "off" },
        result.trace_hash
    );
    if let Some(bare) = bare {
        let bare_rate = bare.per_second();
        line.push_str(&format!(
            " bare_deliveries_per_s={bare_rate:.0} ratio_to_bare={:.2}",
            rate / bare_rate
        ));
    }
    line + "\n"
}

/// Every benchmark of docs/performance.md.
fn bench_suite(repeat: u32) -> ExitCode {
    emit("# ping: deliveries per second, best of the repeats; ratio_to_bare: to the bare loop in this run\n");
    let modes = [(BenchTrace::Hash, false), (BenchTrace::Full, false), (BenchTrace::Hash, true)];
    let deliveries = 2_000_000;
    let mut hash_rates = Vec::new();
    for (n, k) in [(10u32, 100u32), (100, 100), (1000, 100), (10_000, 10)] {
        let bare = best_of(repeat, || bench::bare(n, k, deliveries, 1));
        for &(trace, invariants) in &modes {
            let m = best_of(repeat, || bench::ping(n, k, deliveries, trace, invariants, 1));
            if trace == BenchTrace::Hash && !invariants {
                hash_rates.push((n, m.per_second()));
            }
            emit(&ping_line(n, k, deliveries, trace, invariants, &m, Some(&bare)));
        }
    }
    if let (Some(first), Some(last)) = (hash_rates.first(), hash_rates.last()) {
        emit(&format!(
            "# per-delivery cost grows {:.2}x from N={} to N={} (hash-only trace)\n",
            first.1 / last.1,
            first.0,
            last.0
        ));
    }
    emit("# event queues alone (hold model, delays uniform in [1, 10] ms): operations per second\n");
    for in_flight in [1_000, 10_000, 100_000, 1_000_000] {
        let best = (0..repeat.max(1))
            .map(|_| bench::queue_hold(in_flight, 5_000_000, 1))
            .fold((0f64, 0f64), |(wheel, heap), (w, h)| (wheel.max(w), heap.max(h)));
        emit(&format!(
            "queue in_flight={in_flight} wheel_ops_per_s={:.0} binary_heap_ops_per_s={:.0} ratio={:.2}\n",
            best.0,
            best.1,
            best.0 / best.1
        ));
    }
    emit("# scenarios: steps per second with invariants (best of the runs), and what the invariants cost\n");
    let root = dsim::scenarios_dir();
    for path in dsim::bundled_scenarios() {
        let Ok(scenario) = Scenario::load(&path) else { continue };
        if scenario.expect != dsim::scenario::Expect::Pass {
            continue;
        }
        let t = bench::scenario_throughput(&scenario, repeat.max(3));
        let shown = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        emit(&format!(
            "scenario {shown} steps={} steps_per_s={:.0} invariant_cost={:.2}x\n",
            t.steps,
            t.steps_per_s(),
            t.invariant_cost()
        ));
    }
    emit("# linearizability checker: generated kv histories, 10 clients, 10 keys\n");
    for ops in [1_000, 10_000, 100_000] {
        let (elapsed, ok) = bench::checker(ops, 1);
        emit(&format!("checker ops={ops} seconds={:.3} linearizable={ok}\n", elapsed.as_secs_f64()));
    }
    ExitCode::SUCCESS
}
