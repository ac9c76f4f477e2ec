//! Prints a generated kv history (N operations, 10 clients, 10 keys, linearizable by
//! construction) as the JSON Lines `dsim check-history` reads, for measuring it:
//!
//! ```text
//! cargo run --release --example kv_history -- 1000000 > kv-1m.jsonl
//! /usr/bin/time -v target/release/dsim check-history --model kv kv-1m.jsonl
//! ```
//!
//! With a second argument `register`, a one-register history instead, 10 processes, 5% of
//! operations crashing (`info`, open to the end), for `--model cas-register --initial 0`.

use std::io::Write;

fn main() {
    let n_ops = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let text = match std::env::args().nth(2).as_deref() {
        Some("register") => dsim::bench::register_history_lines(n_ops, 10, 0.05, 1),
        _ => dsim::bench::kv_history_lines(n_ops, 10, 10, 1),
    };
    std::io::stdout().lock().write_all(text.as_bytes()).expect("stdout takes the history");
}
