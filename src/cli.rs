//! The `dsim` command line, as a library: `src/main.rs` calls [`main`]. Exit codes: 0 the
//! expectation was met, 1 it was not, 2 bad input or usage (nothing else is printed then),
//! 3 undecided.
//!
//! Every early stop is a [`Fail`]: one line on stderr and exit 2. That includes clap's
//! usage errors (condensed to one line) and a standard output that cannot be written
//! (closed, full): a summary that did not come out must not look like success.

use crate::bench::{self, BenchTrace};
use crate::check_history;
use crate::explore;
use crate::fuzz::{self, FailureFile, FuzzOptions, Loaded, SeedRange, Shard};
use crate::picture;
use crate::report;
use crate::runner::{self, CausalExports, TraceSink};
use crate::scenario::Scenario;
use crate::shrink;
use clap::error::ErrorKind;
use clap::{Parser, Subcommand, ValueEnum};
use sim_core::explore::{Budgets, Strategy};
use sim_core::TraceMode;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The command line, as clap parses it (public so that tests can check command lines
/// written elsewhere, in job definitions and docs, against it).
#[derive(Parser)]
#[command(
    name = "dsim",
    version,
    about = "A deterministic distributed-systems simulator",
    long_about = "dsim runs protocols over a seeded virtual network that drops, delays, duplicates and \
                  reorders messages, partitions nodes, and crashes and restarts them, checking the \
                  protocol's invariants after every step. Same scenario + same seed = same trace.",
    after_help = "Exit codes: 0 the scenario's expectation was met, 1 it was not, 2 bad input or usage, 3 undecided.\n\n\
                  Example:\n  dsim run scenarios/rpc/duplicate-put.json"
)]
pub struct Cli {
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
                            dsim run scenarios/rpc/duplicate-put.json --format json\n  \
                            dsim run scenarios/chain/compare-3.json scenarios/primary-backup/compare-3.json\n\n\
                            With several files, each is run and one table compares their client \
                            latency and throughput (--format json: the summaries in an array); \
                            --trace and the exports take one file.")]
    Run {
        /// The scenario file (JSON); several: run each and print one comparison table.
        #[arg(required = true, num_args = 1.., value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Run with this seed instead of the file's (0 to 2^64 - 1).
        #[arg(long, value_parser = fuzz::parse_seed, allow_negative_numbers = true)]
        seed: Option<u64>,
        /// Write the full trace here, as the run goes: JSON Lines if the name ends in .jsonl
        /// or .json (any case), else text.
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
        /// Write the run's client history as JSON Lines for dsim check-history (kv protocols).
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        #[command(flatten)]
        pictures: PictureArgs,
    },
    /// Run one scenario over many seeds, in parallel, hunting for invariant violations.
    #[command(after_help = "Ignores the file's `expect`: any violation is a failure. Stops at the lowest \
                            failing seed unless --keep-going. Exit 0: no failure, 1: failures found, 2: bad input, 3: no failure but undecided seeds.\n\n\
                            Examples:\n  dsim fuzz scenarios/rpc/duplicate-execution.json --seeds 0..1000\n  \
                            dsim fuzz scenarios/rpc/reliable.json --seeds 0..10000 --swarm --keep-going --out failures\n  \
                            dsim fuzz scenarios/rpc/reliable.json --seeds 0..100000 --shard 3/8 --format json")]
    Fuzz {
        /// The scenario file (JSON).
        file: PathBuf,
        /// Seeds to run: A..B (B excluded) or A..=B.
        #[arg(long, default_value = "0..1000")]
        seeds: SeedRange,
        /// Worker threads, 1 to 256 (default: all cores). Each run stays single-threaded.
        #[arg(long, value_parser = parse_jobs)]
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
        /// Where failure files go (checked before the campaign starts; made if missing).
        #[arg(long, value_name = "DIR", default_value = "dsim-failures")]
        out: PathBuf,
        /// Also write DIR/index.html listing the failures, each failure file with an HTML
        /// report beside it (the first 100).
        #[arg(long)]
        html: bool,
        /// How to print the summary.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Search every interleaving of a small scenario, as a model checker does.
    #[command(after_help = "Any message in flight may arrive next (the oldest first on a FIFO link), any \
                            node's next timer may fire before it; within the budgets, messages are lost or \
                            duplicated and nodes crash and restart, as the protocol's fault model allows. The \
                            scenario's own faults and random loss are not used. Breadth-first finds a shortest \
                            counterexample, written as a failure file that dsim replay re-runs.\n\n\
                            Exit 0: every state within the budgets explored, no violation; 1: a violation \
                            (failure file written); 2: bad input; 3: a budget (depth, states, time, memory) or an \
                            undecided check stopped the search first.\n\n\
                            Examples:\n  dsim explore scenarios/explore/rpc-3-ops.json --drops 1\n  \
                            dsim explore scenarios/explore/amo-durable-2x2.json --drops 1 --duplicates 1 --crashes 1\n  \
                            dsim explore scenarios/explore/amo-durable-2x2.json --strategy dfs --max-states 100000 --format json")]
    Explore {
        /// The scenario file (JSON).
        file: PathBuf,
        /// Messages the search may drop along a path (0 to 100).
        #[arg(long, default_value_t = 0)]
        drops: u32,
        /// Messages the search may duplicate along a path (0 to 100).
        #[arg(long, default_value_t = 0)]
        duplicates: u32,
        /// Crashes the search may inject along a path, each node restarting at any later step (0 to 100).
        #[arg(long, default_value_t = 0)]
        crashes: u32,
        /// Do not expand states this many steps from the start (1 to 1,000,000).
        #[arg(long, value_name = "D", value_parser = clap::value_parser!(u32).range(1..=i64::from(explore::DEPTH_MAX)))]
        max_depth: Option<u32>,
        /// Stop after this many distinct states (at least 1).
        #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
        max_states: Option<u64>,
        /// Stop after this many seconds of search (0.001 to 10^7).
        #[arg(long, value_name = "T", value_parser = parse_time_limit)]
        time_limit_s: Option<f64>,
        /// Stop when the search's memory (resident, Linux) has grown this much, 16 to 1048576.
        #[arg(long, value_name = "MB", default_value_t = explore::MEMORY_MB_DEFAULT,
              value_parser = clap::value_parser!(u64).range(explore::MEMORY_MB_MIN..=explore::MEMORY_MB_MAX))]
        max_memory_mb: u64,
        /// Breadth-first (a shortest counterexample) or depth-first (less memory).
        #[arg(long, value_enum, default_value = "bfs")]
        strategy: StrategyArg,
        /// Where the failure file goes (checked before the search; made if missing).
        #[arg(long, value_name = "DIR", default_value = "dsim-failures")]
        out: PathBuf,
        /// How to print the summary.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Walk every path, pruning no state seen before (small cases only: for checking
        /// that pruning changes no verdict).
        #[arg(long, hide = true)]
        no_visited_set: bool,
    },
    /// Re-run a failure file and check that it fails the same way, with the same trace hash.
    #[command(after_help = "Exit 0: same violation and trace hash; 1: the run diverged (a determinism \
                            bug, or the code changed since the failure was recorded); 2: bad input.\n\n\
                            Example:\n  dsim replay dsim-failures/rpc-duplicate-execution-seed-7-executed-at-most-once.json")]
    Replay {
        /// The failure file.
        file: PathBuf,
        #[command(flatten)]
        pictures: PictureArgs,
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
        /// Give up after this many candidate runs (at least 1).
        #[arg(long, default_value_t = 5_000, value_parser = parse_max_tries)]
        max_tries: u64,
    },
    /// Merge the --format json summaries of a campaign's shards into one summary.
    #[command(
        after_help = "Reports the shards missing or given twice (exit 1: their seeds ran not at all, \
                            or twice). Exit 0: no failure; 1: failures, or a shard missing or repeated; \
                            2: bad input; 3: no failure but undecided seeds.\n\n\
                            Example:\n  dsim fuzz-merge summary-*.json"
    )]
    FuzzMerge {
        /// The shards' summaries (`dsim fuzz ... --shard I/N --format json > summary-I.json`).
        #[arg(required = true, value_name = "SUMMARY")]
        summaries: Vec<PathBuf>,
        /// How to print the merged summary.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
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
    /// Check a history recorded anywhere (Jepsen EDN, JSON Lines, JSON) for linearizability.
    #[command(
        after_help = "Exit codes: 0 linearizable, 1 not linearizable (with an explanation), 2 bad input \
                            or usage, 3 unknown (the search budget or the timeout ran out).\n\n\
                            Formats (chosen by content unless --input): JSON Lines or a JSON array of \
                            {process, type, f, value[, key]}; Jepsen's history.edn. Models: see dsim list.\n\n\
                            Examples:\n  dsim check-history --model register history.jsonl\n  \
                            dsim check-history --model cas-register --initial 0 store/latest/history.edn\n  \
                            dsim run scenarios/rpc/reliable.json --history h.jsonl && dsim check-history --model kv h.jsonl"
    )]
    CheckHistory {
        /// The history file (- for standard input).
        file: String,
        /// The sequential model the history must linearize to.
        #[arg(long, value_enum)]
        model: check_history::ModelName,
        /// The register's initial value (cas-register only; default nil).
        #[arg(long, allow_negative_numbers = true)]
        initial: Option<String>,
        /// The input format (default: chosen by content).
        #[arg(long, value_enum)]
        input: Option<check_history::InputFormat>,
        /// Configurations the search may visit per key before answering unknown (exit 3);
        /// default 10000000.
        #[arg(long, value_name = "CONFIGS")]
        budget: Option<usize>,
        /// Wall-clock seconds before answering unknown (exit 3), saying so; default 30.
        #[arg(long, value_name = "S")]
        timeout_s: Option<f64>,
        /// How to print the verdict.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Also write a self-contained HTML report: the verdict and a timeline per key with
        /// the operations that cannot be linearized highlighted.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
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
        /// Node counts, comma-separated (2 to 100,000 each).
        #[arg(long, value_delimiter = ',', default_values_t = [10u32, 1000])]
        nodes: Vec<u32>,
        /// Pings each node keeps in flight (1 to 10,000; nodes x in-flight at most 10^7).
        #[arg(long, default_value_t = 100)]
        in_flight: u32,
        /// Deliveries per run (1 to 10^10).
        #[arg(long, default_value_t = 5_000_000)]
        deliveries: u64,
        /// How much trace to keep.
        #[arg(long, value_enum, default_value = "hash")]
        trace: BenchTrace,
        /// Check the ping protocol's invariant after every step.
        #[arg(long)]
        invariants: bool,
        /// Run each measurement this many times and report the best (1 to 100).
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

/// `--strategy`.
#[derive(Clone, Copy, ValueEnum)]
enum StrategyArg {
    Bfs,
    Dfs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Runs the `dsim` command line with `registry`'s protocols (the bundled ones plus a
/// user's): how a crate that writes its own protocol builds its own `dsim`.
///
/// ```no_run
/// use protocols::registry::Registry;
/// fn main() -> std::process::ExitCode {
///     // Registry::bundled().with(MyProtocol) in a user's crate.
///     dsim::cli::main_with(Registry::bundled())
/// }
/// ```
pub fn main_with(registry: protocols::registry::Registry) -> ExitCode {
    if !crate::install(registry) {
        return bad_input("main_with: a protocol registry was already in use");
    }
    let program = std::env::args_os().next().map(std::path::PathBuf::from);
    if let Some(name) = program.as_deref().and_then(Path::file_stem).and_then(|n| n.to_str()) {
        crate::set_program(name);
    }
    main()
}

/// Runs the `dsim` command line on the process's arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_error(&err),
    };
    let result = match cli.command {
        Command::Run { files, seed, trace, format, shiviz, dot, explain_clocks, history, pictures } => {
            let causal = Causal { shiviz, dot, explain: explain_clocks, history };
            match <[PathBuf; 1]>::try_from(files) {
                Ok([file]) => run(file, seed, trace, format, causal, pictures),
                Err(files) => {
                    let exports = trace.is_some() || causal.any() || pictures.any();
                    compare(&files, seed, exports, format)
                }
            }
        }
        Command::List => emit(&list()).map(|()| ExitCode::SUCCESS),
        Command::Bench { nodes, in_flight, deliveries, trace, invariants, repeat, no_baseline, suite } => {
            if !(1..=bench::REPEAT_MAX).contains(&repeat) {
                Err(Fail(format!("--repeat {repeat}: from 1 to {} runs", bench::REPEAT_MAX)))
            } else if suite {
                bench_suite(repeat)
            } else {
                let modes = [(trace, invariants)];
                bench(&nodes, in_flight, deliveries, &modes, repeat, !no_baseline)
            }
        }
        Command::Fuzz { file, seeds, jobs, swarm, keep_going, shard, out, format, html } => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let options = FuzzOptions {
                seeds,
                shard,
                jobs: jobs.unwrap_or(cores.min(fuzz::JOBS_MAX)),
                swarm,
                keep_going,
                progress: matches!(format, Format::Text),
            };
            fuzz_command(file, options, out, format, html)
        }
        Command::Explore {
            file,
            drops,
            duplicates,
            crashes,
            max_depth,
            max_states,
            time_limit_s,
            max_memory_mb,
            strategy,
            out,
            format,
            no_visited_set,
        } => {
            let options = explore::Options {
                budgets: Budgets { drops, duplicates, crashes },
                strategy: match strategy {
                    StrategyArg::Bfs => Strategy::Bfs,
                    StrategyArg::Dfs => Strategy::Dfs,
                },
                max_depth,
                max_states,
                time_limit: time_limit_s.map(std::time::Duration::from_secs_f64),
                max_memory_bytes: max_memory_mb << 20,
                no_visited_set,
                progress: matches!(format, Format::Text),
            };
            explore_command(file, &options, &out, format)
        }
        Command::Replay { file, pictures } => replay(file, pictures),
        Command::Shrink { file, out, max_tries } => shrink_command(file, out, max_tries),
        Command::CheckDeterminism { file, seeds } => check_determinism(file, seeds),
        Command::FuzzMerge { summaries, format } => fuzz_merge(&summaries, format),
        Command::CheckHistory { file, model, initial, input, budget, timeout_s, format, html } => {
            let options = check_history::Options {
                model,
                initial,
                input,
                budget: budget.unwrap_or(check_history::BUDGET_DEFAULT),
                budget_is_default: budget.is_none(),
                timeout_s: timeout_s.unwrap_or(check_history::TIMEOUT_S_DEFAULT),
                timeout_is_default: timeout_s.is_none(),
                json: matches!(format, Format::Json),
            };
            check_history_command(&file, &options, html.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        Err(Fail(message)) => bad_input(message),
    }
}

/// Why a command stopped early: bad input or usage, or an output that cannot be written.
/// Exit 2 with this one line on stderr.
struct Fail(String);

type Done = Result<ExitCode, Fail>;

fn fail(message: impl std::fmt::Display) -> Fail {
    Fail(message.to_string())
}

/// Clap's verdict on the command line: help and version go to stdout (exit 0); a usage
/// error is condensed to one line on stderr (exit 2), as the README promises.
fn clap_error(err: &clap::Error) -> ExitCode {
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        return match emit(&err.render().to_string()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(Fail(message)) => bad_input(message),
        };
    }
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand
    ) {
        return bad_input(format!("a command is needed: {}; see dsim --help", COMMANDS.join(", ")));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    bad_input(one_line_usage_error(&err.render().to_string(), &args))
}

const COMMANDS: [&str; 9] =
    ["run", "fuzz", "fuzz-merge", "replay", "shrink", "check-determinism", "check-history", "list", "bench"];

/// A clap error's text as one line: its message and tips, then where help is.
fn one_line_usage_error(rendered: &str, args: &[String]) -> String {
    let mut message = Vec::new();
    let mut tips = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if let Some(tip) = line.strip_prefix("tip:") {
            tips.push(tip.trim().to_string());
        } else if !line.is_empty() {
            message.push(line.strip_prefix("error:").unwrap_or(line).trim().to_string());
        }
    }
    let mut line = message.join(" ");
    if !tips.is_empty() {
        line.push_str(&format!(" ({})", tips.join("; ")));
    }
    let command = args.iter().find(|a| COMMANDS.contains(&a.as_str()));
    let help = command.map_or("dsim --help".to_string(), |c| format!("dsim {c} --help"));
    format!("{line}; see {help}")
}

fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(jobs) if (1..=fuzz::JOBS_MAX).contains(&jobs) => Ok(jobs),
        _ => Err(format!("{text:?} is not a job count: a whole number from 1 to {}", fuzz::JOBS_MAX)),
    }
}

fn parse_max_tries(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(tries) if tries >= 1 => Ok(tries),
        _ => Err(format!("{text:?}: shrinking needs at least 1 try (a whole number from 1 to {})", u64::MAX)),
    }
}

fn fuzz_command(file: PathBuf, options: FuzzOptions, out: PathBuf, format: Format, html: bool) -> Done {
    let scenario = fuzz::load(&file).map_err(fail)?.scenario;
    if let Some(shard) = options.shard {
        if fuzz::seeds(options.seeds, Some(shard)).is_empty() {
            return Err(fail(fuzz::empty_shard_message(options.seeds, shard)));
        }
    }
    distinct(&[("the scenario file", &file), ("--out", &out)])?;
    fuzz::check_out_dir(&out).map_err(fail)?;
    let shown = file.display().to_string();
    let report = fuzz::campaign_into(&scenario, &shown, &options, Some(&out)).map_err(fail)?;
    if html {
        fuzz_index(&out, &shown, &report)?;
    }
    match format {
        Format::Text => emit(&report.text())?,
        Format::Json => emit(&(serde_json::to_string_pretty(&report).expect("reports serialize") + "\n"))?,
    }
    Ok(ExitCode::from(report.exit_code()))
}

fn check_history_command(file: &str, options: &check_history::Options, html: Option<&Path>) -> Done {
    if let Some(html) = html {
        if file != "-" {
            distinct(&[("the history file", Path::new(file)), ("--html", html)])?;
        }
    }
    let (verdict, text) = check_history::run_keeping_text(file, options).map_err(fail)?;
    if let Some(html) = html {
        let shown = if file == "-" { "standard input" } else { file };
        write_file(html, &report::history_report(shown, &text, options, &verdict.output), "HTML report")?;
    }
    emit(&verdict.output)?;
    Ok(ExitCode::from(verdict.exit))
}

/// Failure reports `dsim fuzz --html` draws at most (each is a run of its own).
const FUZZ_REPORTS_MAX: usize = 100;

/// Writes `out/index.html` and a report beside each of the first failure files.
fn fuzz_index(out: &Path, shown: &str, report: &fuzz::FuzzReport) -> Result<(), Fail> {
    let mut entries = Vec::new();
    for (i, file) in report.failure_files.iter().enumerate() {
        let path = Path::new(file);
        let failure = load_failure(path)?;
        let name = path.file_name().map_or(file.clone(), |n| n.to_string_lossy().into_owned());
        let drawn = if i < FUZZ_REPORTS_MAX {
            let page = path.with_extension("html");
            let summary =
                runner::run(&failure.scenario, file, Some(failure.seed), TraceMode::Recent(20), None)
                    .map_err(fail)?;
            let capture =
                picture::capture(&failure.scenario, failure.seed, picture::Options::default(), summary)
                    .map_err(|err| fail(format!("drawing {file}: {err}")))?;
            write_file(&page, &report::run_report(&failure.scenario, &capture), "HTML report")?;
            page.file_name().map(|n| n.to_string_lossy().into_owned())
        } else {
            None
        };
        entries.push((name, failure.invariant.clone(), failure.seed, drawn));
    }
    let left = (report.failures_total as usize).saturating_sub(entries.len());
    write_file(&out.join("index.html"), &report::fuzz_index(shown, &entries, left), "fuzz index")
}

fn fuzz_merge(summaries: &[PathBuf], format: Format) -> Done {
    let merged = crate::merge::merge_files(summaries).map_err(fail)?;
    match format {
        Format::Text => emit(&merged.text())?,
        Format::Json => emit(&(serde_json::to_string_pretty(&merged).expect("reports serialize") + "\n"))?,
    }
    Ok(ExitCode::from(merged.exit_code()))
}

fn parse_time_limit(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if (0.001..=1e7).contains(&t) => Ok(t),
        _ => Err(format!("{text:?}: seconds from 0.001 to 10000000")),
    }
}

fn explore_command(file: PathBuf, options: &explore::Options, out: &Path, format: Format) -> Done {
    let scenario = fuzz::load(&file).map_err(fail)?.scenario;
    let shown = file.display().to_string();
    let (report, summary) = explore::explore(&shown, &scenario, options, out).map_err(fail)?;
    match format {
        Format::Text => {
            let mut text = report.text();
            if let Some(summary) = summary {
                text.push('\n');
                text.push_str(&summary.text());
            }
            emit(&text)?;
        }
        Format::Json => emit(&(serde_json::to_string_pretty(&report).expect("reports serialize") + "\n"))?,
    }
    Ok(ExitCode::from(report.exit_code()))
}

fn load_failure(file: &Path) -> Result<FailureFile, Fail> {
    match fuzz::load(file) {
        Ok(Loaded { failure: Some(failure), .. }) => Ok(failure),
        Ok(Loaded { failure: None, .. }) => Err(fail(format!(
            "{}: this is a scenario file, not a failure file (run it with dsim run, or fuzz it to find failures)",
            file.display()
        ))),
        Err(err) => Err(fail(err)),
    }
}

fn replay(file: PathBuf, pictures: PictureArgs) -> Done {
    pictures.check()?;
    let mut named: Vec<(&str, &Path)> = vec![("the failure file", &file)];
    named.extend(pictures.svg.as_deref().map(|p| ("--svg", p)));
    named.extend(pictures.html.as_deref().map(|p| ("--html", p)));
    distinct(&named)?;
    let failure = load_failure(&file)?;
    let shown = file.display().to_string();
    let summary = runner::run(&failure.scenario, &shown, Some(failure.seed), TraceMode::Recent(20), None)
        .map_err(fail)?;
    pictures.draw(&failure.scenario, failure.seed, &summary)?;
    let mut out = summary.text();
    let violation = summary.outcome.violation();
    let same_violation =
        violation.is_some_and(|v| v.invariant == failure.invariant && v.step == failure.step);
    let code = if same_violation && summary.trace_hash == failure.trace_hash {
        out.push_str(&format!(
            "\nreplayed: the same violation of {} at step {}, the same trace hash\n",
            failure.invariant, failure.step
        ));
        ExitCode::SUCCESS
    } else {
        let now = match violation {
            Some(v) => format!("{} at step {}", v.invariant, v.step),
            None => "no violation".to_string(),
        };
        out.push_str(&format!(
            "\nDIVERGED: the failure file recorded {} at step {} with trace hash {}; this run gave {now} with trace hash {}.\n\
             Same scenario and seed must give the same run: this is a determinism bug, or the code changed since the file was written.\n",
            failure.invariant, failure.step, failure.trace_hash, summary.trace_hash
        ));
        ExitCode::from(1)
    };
    emit(&out)?;
    Ok(code)
}

fn shrink_command(file: PathBuf, out: Option<PathBuf>, max_tries: u64) -> Done {
    let out = out.unwrap_or_else(|| file.with_extension("shrunk.json"));
    distinct(&[("the failure file", &file), ("--out", &out)])?;
    let failure = load_failure(&file)?;
    // Before the search, which can take minutes: a folder that is not there fails now.
    let folder = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(fail(format!("--out {}: {} is not a folder", out.display(), folder.display())));
    }
    let shrunk = match shrink::shrink(&failure, max_tries) {
        Ok(shrunk) => shrunk,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "error: {}: {message}", file.display());
            return Ok(ExitCode::from(1));
        }
    };
    std::fs::write(&out, shrunk.failure.to_json())
        .map_err(|err| fail(format!("{}: cannot write: {err}", out.display())))?;
    let shown = out.display().to_string();
    emit(&format!(
        "shrunk        {} ({} violates {})\nbefore        {}\nafter         {} (seed {})\ntries         {}\nwritten       {shown}\nreplay        {} replay {}\n",
        file.display(),
        failure.seed,
        failure.invariant,
        shrunk.before,
        shrunk.after,
        shrunk.failure.seed,
        shrunk.tries,
        crate::program(),
        crate::shell_quote(&shown)
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn check_determinism(file: PathBuf, seeds: SeedRange) -> Done {
    let scenario = fuzz::load(&file).map_err(fail)?.scenario;
    let mut steps = 0;
    for seed in fuzz::seeds(seeds, None) {
        // The second run keeps the full trace: keeping more must change nothing.
        let first = runner::step_hashes(&scenario, seed, TraceMode::HashOnly);
        let second = runner::step_hashes(&scenario, seed, TraceMode::Full);
        steps += first.len();
        if let Some(step) = (0..first.len().max(second.len())).find(|&i| first.get(i) != second.get(i)) {
            let show = |h: Option<&u64>| h.map_or("(run ended)".to_string(), |h| format!("{h:016x}"));
            emit(&format!(
                "seed {seed}: the two runs differ first at step {}: trace hash {} vs {}\n\
                 replay        dsim run {} --seed {seed} --trace a.jsonl (twice, and compare)\n",
                step + 1,
                show(first.get(step)),
                show(second.get(step)),
                crate::shell_quote(&file.display().to_string())
            ))?;
            return Ok(ExitCode::from(1));
        }
    }
    emit(&format!(
        "deterministic {}: seeds {seeds}, every run identical twice, step by step ({steps} steps compared)\n",
        file.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints to stdout. A stdout that cannot take it (closed by the reader, a full disk) is
/// an error: the summary did not come out, so the command must not look like a success.
fn emit(text: &str) -> Result<(), Fail> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| fail(format!("cannot write to standard output: {err}")))
}

/// Exit 2 with one line on stderr (a closed stderr cannot be reported anywhere).
fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {message}");
    ExitCode::from(2)
}

/// The file a path names, as far as it can be told: the canonical path if it exists, else
/// its folder's canonical path and its name, else the path as written.
fn identity(path: &Path) -> PathBuf {
    if let Ok(canonical) = path.canonicalize() {
        return canonical;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuses two of a command's files (its input, its outputs) that are the same file: an
/// output would overwrite the input, or two outputs each other.
fn distinct(paths: &[(&str, &Path)]) -> Result<(), Fail> {
    let ids: Vec<PathBuf> = paths.iter().map(|(_, p)| identity(p)).collect();
    for (i, (first, first_path)) in paths.iter().enumerate() {
        for (j, (second, _)) in paths.iter().enumerate().skip(i + 1) {
            if ids[i] == ids[j] {
                return Err(fail(format!(
                    "{first} and {second} are the same file ({}): give each its own file",
                    first_path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Pictures of a run (`--svg`, `--html`), for `run` and `replay`.
#[derive(clap::Args, Clone, Debug)]
struct PictureArgs {
    /// Write a space-time diagram of the run (SVG): a lane per node, an arrow per message.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Write a self-contained HTML report of the run (diagram, trace table, history), which
    /// opens with no network access.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Draw at most this many trace events, the last ones (those nearest a violation); 1 to
    /// 100000.
    #[arg(long, value_name = "N", default_value_t = picture::MAX_EVENTS_DEFAULT)]
    max_events: usize,
    /// Draw only the events inside this virtual-time window, in milliseconds.
    #[arg(long, value_name = "FROM_MS..TO_MS", value_parser = picture::parse_window)]
    window: Option<(u64, u64)>,
}

impl PictureArgs {
    /// Whether a picture was asked for.
    fn any(&self) -> bool {
        self.svg.is_some() || self.html.is_some()
    }

    /// Checks the bounds before anything runs.
    fn check(&self) -> Result<(), Fail> {
        if !(1..=picture::MAX_EVENTS_MAX).contains(&self.max_events) {
            return Err(fail(format!(
                "--max-events {}: from 1 to {}",
                self.max_events,
                picture::MAX_EVENTS_MAX
            )));
        }
        Ok(())
    }

    /// Draws the pictures asked for, of the run `summary` judged (run again, the same).
    fn draw(&self, scenario: &Scenario, seed: u64, summary: &runner::Summary) -> Result<(), Fail> {
        if !self.any() {
            return Ok(());
        }
        let options = picture::Options { max_events: self.max_events, window: self.window };
        let capture = picture::capture(scenario, seed, options, summary.clone())
            .map_err(|err| fail(format!("drawing the run: {err}")))?;
        if let Some(path) = &self.svg {
            write_file(path, &picture::svg(&capture), "SVG diagram")?;
        }
        if let Some(path) = &self.html {
            write_file(path, &report::run_report(scenario, &capture), "HTML report")?;
        }
        Ok(())
    }
}

fn write_file(path: &Path, text: &str, what: &str) -> Result<(), Fail> {
    std::fs::write(path, text)
        .map_err(|err| fail(format!("{}: cannot write the {what}: {err}", path.display())))
}

/// The causal exports `dsim run` was asked for.
struct Causal {
    shiviz: Option<PathBuf>,
    dot: Option<PathBuf>,
    explain: bool,
    /// Not causal, but an export of the run likewise: the client history.
    history: Option<PathBuf>,
}

impl Causal {
    fn any(&self) -> bool {
        self.shiviz.is_some() || self.dot.is_some() || self.explain || self.history.is_some()
    }
}

fn create(path: &Option<PathBuf>, what: &str) -> Result<Option<BufWriter<File>>, Fail> {
    match path {
        Some(path) => File::create(path)
            .map(|f| Some(BufWriter::new(f)))
            .map_err(|err| fail(format!("{}: cannot write the {what}: {err}", path.display()))),
        None => Ok(None),
    }
}

/// Whether a trace file's name asks for JSON Lines: `.jsonl` or `.json`, in any case.
fn wants_json_lines(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("json"))
}

fn run(
    file: PathBuf,
    seed: Option<u64>,
    trace: Option<PathBuf>,
    format: Format,
    causal: Causal,
    pictures: PictureArgs,
) -> Done {
    let scenario = fuzz::load(&file).map_err(fail)?.scenario;
    pictures.check()?;
    let mut named: Vec<(&str, &Path)> = vec![("the scenario file", &file)];
    let flags = [
        ("--trace", &trace),
        ("--shiviz", &causal.shiviz),
        ("--dot", &causal.dot),
        ("--history", &causal.history),
        ("--svg", &pictures.svg),
        ("--html", &pictures.html),
    ];
    for (flag, path) in flags {
        if let Some(path) = path {
            named.push((flag, path));
        }
    }
    distinct(&named)?;
    if causal.history.is_some() && !runner::records_client_history(&scenario) {
        return Err(fail(format!(
            "--history: {} records no client history (the kv protocols do: rpc, at-most-once, primary-backup)",
            file.display()
        )));
    }
    let mut shiviz = create(&causal.shiviz, "ShiViz log")?;
    let mut dot = create(&causal.dot, "DOT graph")?;
    let mut history = create(&causal.history, "client history")?;
    let mut trace_file = create(&trace, "trace")?;
    let mut explain = Vec::new();
    let exports = CausalExports {
        shiviz: shiviz.as_mut().map(|f| f as &mut dyn Write),
        dot: dot.as_mut().map(|f| f as &mut dyn Write),
        explain: causal.explain.then_some(&mut explain as &mut dyn Write),
        history: history.as_mut().map(|f| f as &mut dyn Write),
    };
    let shown = file.display().to_string();
    let json_lines = trace.as_deref().is_some_and(wants_json_lines);
    let sink = trace_file.as_mut().map(|f| {
        if json_lines {
            TraceSink::JsonLines(f as &mut dyn Write)
        } else {
            TraceSink::Text(f as &mut dyn Write)
        }
    });
    let mode = if sink.is_some() { TraceMode::Full } else { TraceMode::Recent(20) };
    let summary = runner::run_with_exports(&scenario, &shown, seed, mode, sink, exports)
        .map_err(|err| fail(format!("writing the trace or an export: {err}")))?;
    for out in [trace_file, shiviz, dot, history].into_iter().flatten() {
        out.into_inner().map_err(|e| fail(format!("writing the trace or an export: {}", e.into_error())))?;
    }
    pictures.draw(&scenario, summary.seed, &summary)?;
    let mut out = String::new();
    if matches!(format, Format::Text) && !explain.is_empty() {
        out.push_str(&String::from_utf8_lossy(&explain));
        out.push('\n');
    }
    match format {
        Format::Text => out.push_str(&summary.text()),
        Format::Json => {
            out.push_str(&(serde_json::to_string_pretty(&summary).expect("summary serializes") + "\n"))
        }
    }
    emit(&out)?;
    Ok(ExitCode::from(summary.exit_code()))
}

/// Runs several scenario files and prints one table comparing their client latency and
/// throughput (or, as JSON, their summaries in an array). Exit: the worst of the runs'
/// codes (3 undecided, then 1 not met, then 0).
fn compare(files: &[PathBuf], seed: Option<u64>, exports: bool, format: Format) -> Done {
    if exports {
        return Err(fail(
            "--trace, --shiviz, --dot, --history, --explain-clocks, --svg and --html take one scenario file; \
             run the files one at a time for them",
        ));
    }
    let mut scenarios = Vec::new();
    for file in files {
        scenarios.push((fuzz::load(file).map_err(fail)?.scenario, file.display().to_string()));
    }
    let mut summaries = Vec::new();
    for (scenario, shown) in &scenarios {
        let summary = runner::run(scenario, shown, seed, TraceMode::Recent(20), None)
            .map_err(|err| fail(format!("{shown}: {err}")))?;
        summaries.push(summary);
    }
    let code = summaries.iter().map(|s| s.exit_code()).max_by_key(|&c| match c {
        0 => 0,
        runner::EXIT_UNDECIDED => 2,
        _ => 1,
    });
    let out = match format {
        Format::Json => serde_json::to_string_pretty(&summaries).expect("summaries serialize") + "\n",
        Format::Text => {
            let rows: Vec<(String, String, Option<&crate::latency::ClientLatency>)> = summaries
                .iter()
                .map(|s| {
                    let outcome = match (&s.outcome, s.expectation_met) {
                        (sim_core::Outcome::Pass, _) => "pass",
                        (_, true) => "expected",
                        (_, false) => "NOT met",
                    };
                    (s.scenario.clone(), outcome.to_string(), s.client_latency.as_ref())
                })
                .collect();
            let mut out = crate::latency::comparison_table(&rows);
            out.push_str(
                "ops/s: operations completed per virtual second, first call to last return; \
                 latencies in virtual ms, nearest rank\n",
            );
            out
        }
    };
    emit(&out)?;
    Ok(ExitCode::from(code.unwrap_or(0)))
}

fn list() -> String {
    let mut out = String::from("Protocols (scenario field \"protocol\": {\"NAME\": {PARAMETERS}}):\n");
    let workload = protocols::kv::Workload::default();
    for protocol in crate::registry().iter() {
        out.push_str(&format!("  {:<12} {}\n", protocol.name(), protocol.summary()));
        for p in protocol.params_doc() {
            out.push_str(&format!("      {:<20} default {:<8} {}\n", p.name, p.default, p.help));
        }
        let params = protocol.default_params();
        let invariants = protocol.invariant_names(&params, &workload);
        if !invariants.is_empty() {
            out.push_str(&format!("      invariants: {}\n", invariants.join(", ")));
        }
        out.push_str(&format!(
            "      fault model: {}\n",
            protocol.fault_model(&params, &workload).description
        ));
        if protocol.uses_workload() {
            out.push_str("      workload: the scenario's key/value \"workload\"\n");
        }
    }
    out.push_str("\nHistory models (dsim check-history --model NAME):\n");
    for (name, about, operations) in check_history::MODELS {
        out.push_str(&format!("  {name:<12} {about}\n      operations: {operations}\n"));
    }
    let presets: Vec<&str> = crate::scenario::Preset::ALL.iter().map(|p| p.name()).collect();
    out.push_str(&format!("\nNetwork presets: {}\n\nBundled scenarios:\n", presets.join(", ")));
    let root = crate::scenarios_dir();
    for path in crate::bundled_scenarios() {
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
) -> Done {
    for &n in nodes {
        bench::check_ping(n, in_flight, deliveries).map_err(fail)?;
    }
    for &n in nodes {
        let bare = baseline.then(|| best_of(repeat, || bench::bare(n, in_flight, deliveries, 1)));
        for &(trace, invariants) in modes {
            let m = best_of(repeat, || bench::ping(n, in_flight, deliveries, trace, invariants, 1));
            emit(&ping_line(n, in_flight, deliveries, trace, invariants, &m, bare.as_ref()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
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
fn bench_suite(repeat: u32) -> Done {
    emit(
        "# ping: deliveries per second, best of the repeats; ratio_to_bare: to the bare loop in this run\n",
    )?;
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
            emit(&ping_line(n, k, deliveries, trace, invariants, &m, Some(&bare)))?;
        }
    }
    if let (Some(first), Some(last)) = (hash_rates.first(), hash_rates.last()) {
        emit(&format!(
            "# per-delivery cost grows {:.2}x from N={} to N={} (hash-only trace)\n",
            first.1 / last.1,
            first.0,
            last.0
        ))?;
    }
    emit("# event queues alone (hold model, delays uniform in [1, 10] ms): operations per second\n")?;
    for in_flight in [1_000, 10_000, 100_000, 1_000_000] {
        let best = (0..repeat.max(1))
            .map(|_| bench::queue_hold(in_flight, 5_000_000, 1))
            .fold((0f64, 0f64), |(wheel, heap), (w, h)| (wheel.max(w), heap.max(h)));
        emit(&format!(
            "queue in_flight={in_flight} wheel_ops_per_s={:.0} binary_heap_ops_per_s={:.0} ratio={:.2}\n",
            best.0,
            best.1,
            best.0 / best.1
        ))?;
    }
    emit("# scenarios: steps per second with invariants (best of the runs), and what the invariants cost\n")?;
    let root = crate::scenarios_dir();
    for path in crate::bundled_scenarios() {
        let Ok(scenario) = Scenario::load(&path) else { continue };
        if scenario.expect != crate::scenario::Expect::Pass {
            continue;
        }
        let t = bench::scenario_throughput(&scenario, repeat.max(3));
        let shown = path.strip_prefix(&root).unwrap_or(&path).display().to_string();
        emit(&format!(
            "scenario {shown} steps={} steps_per_s={:.0} invariant_cost={:.2}x\n",
            t.steps,
            t.steps_per_s(),
            t.invariant_cost()
        ))?;
    }
    emit("# explore: distinct states per second of an exhaustive search, and memory a state (peak growth / states)\n")?;
    let all = Budgets { drops: 1, duplicates: 1, crashes: 1 };
    for (budgets, strategy) in
        [(Budgets::default(), Strategy::Bfs), (all, Strategy::Bfs), (all, Strategy::Dfs)]
    {
        let r = bench::explore_rate("amo-durable-2x2.json", budgets, strategy).map_err(fail)?;
        emit(&format!(
            "explore explore/amo-durable-2x2.json drops={} duplicates={} crashes={} strategy={:?} verdict={} states={} transitions={} seconds={:.2} states_per_s={:.0} bytes_per_state={:.0}\n",
            budgets.drops,
            budgets.duplicates,
            budgets.crashes,
            strategy,
            r.verdict,
            r.stats.states,
            r.stats.transitions,
            r.elapsed_s,
            r.states_per_s,
            r.peak_bytes_per_state.unwrap_or(f64::NAN)
        ))?;
    }
    emit("# linearizability checker: generated kv histories, 10 clients, 10 keys\n")?;
    for ops in [1_000, 10_000, 100_000] {
        let (elapsed, ok) = bench::checker(ops, 1);
        emit(&format!("checker ops={ops} seconds={:.3} linearizable={ok}\n", elapsed.as_secs_f64()))?;
    }
    emit("# check-history --model kv, in process (reading JSON Lines + checking): 10 clients, 10 keys\n")?;
    for ops in [10_000, 1_000_000] {
        let (elapsed, exit) = bench::check_history(ops, 1);
        emit(&format!("check-history ops={ops} seconds={:.3} exit={exit}\n", elapsed.as_secs_f64()))?;
    }
    emit("# check-history --model cas-register: one register, 10 processes, 5% of operations crashing (info)\n")?;
    let (elapsed, exit) = bench::check_crashing_register(20_000, 1);
    emit(&format!("check-history register ops=20000 seconds={:.3} exit={exit}\n", elapsed.as_secs_f64()))?;
    Ok(ExitCode::SUCCESS)
}
