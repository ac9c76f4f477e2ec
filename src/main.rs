//! The `dsim` binary: the command line lives in the library (`dsim::cli`).

/// mimalloc rather than the system allocator: a simulation allocates small, short-lived
/// values at a high rate, and a full trace or a fuzz campaign grows and frees large
/// buffers again and again, which glibc hands back to the kernel and faults in anew each
/// time. Measured with `dsim bench` (docs/performance.md): ping N=10 hash-only 13.4 ->
/// 14.2 M deliveries/s, N=10,000 5.5 -> 7.9 M/s, full trace 6.7 -> 10-11 M/s.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dsim::cli::main()
}
