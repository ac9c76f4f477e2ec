//! Prints a generated kv history (N operations, 10 clients, 10 keys, linearizable by
//! construction) as the JSON Lines `dsim check-history` reads, for measuring it:
//!
//! ```text
//! cargo run --release --example kv_history -- 1000000 > kv-1m.jsonl
//! /usr/bin/time -v target/release/dsim check-history --model kv kv-1m.jsonl
//! ```

use std::io::Write;

fn main() {
    let n_ops = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let text = dsim::bench::kv_history_lines(n_ops, 10, 10, 1);
    std::io::stdout().lock().write_all(text.as_bytes()).expect("stdout takes the history");
}
