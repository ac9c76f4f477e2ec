//! dsim: the scenario runner, benchmarks and command line around sim-core and protocols.
//!
//! Only this crate reads files: scenario files ([`scenario`]), and the traces and
//! summaries it writes. Dependencies flow one way: `dsim` -> `protocols` -> `sim-core`.

pub mod bench;
pub mod check_history;
pub mod cli;
pub mod explore;
pub mod fuzz;
pub mod latency;
pub mod locate;
pub mod merge;
pub mod picture;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod shrink;

use protocols::registry::Registry;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The protocols this dsim knows: the bundled ones, or the registry a binary installed
/// with [`install`] (see `cli::main_with`).
pub fn registry() -> &'static Registry {
    REGISTRY.get_or_init(Registry::bundled)
}

static PROGRAM: OnceLock<String> = OnceLock::new();

/// The command that replay hints name: `dsim`, or the binary a user's crate built with
/// `cli::main_with` (`dsim-lease`).
pub fn program() -> &'static str {
    PROGRAM.get().map_or("dsim", String::as_str)
}

/// Names the command replay hints print (see [`program`]); once, at the start of `main`.
pub fn set_program(name: &str) {
    let _ = PROGRAM.set(name.to_string());
}

/// Makes `registry` the one every command uses. Only before anything has read it (at the
/// start of `main`); false if a registry was in use already.
pub fn install(registry: Registry) -> bool {
    REGISTRY.set(registry).is_ok()
}

/// The folder of bundled scenarios: `scenarios/` in the source tree.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// The bundled scenario files of one folder (`"clocks"`), sorted by path.
pub fn bundled_scenarios_in(folder: &str) -> Vec<PathBuf> {
    let dir = scenarios_dir().join(folder);
    bundled_scenarios().into_iter().filter(|p| p.starts_with(&dir)).collect()
}

/// Every bundled scenario file, sorted by path.
pub fn bundled_scenarios() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![scenarios_dir()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `text` as one word for a POSIX shell, for the commands dsim prints: unchanged if it
/// holds only characters no shell treats specially (so ordinary paths read as before),
/// else in single quotes, each `'` written `'\''`.
pub fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("scenarios/rpc/reliable.json"), "scenarios/rpc/reliable.json");
        assert_eq!(shell_quote("my file.json"), "'my file.json'");
        assert_eq!(shell_quote("a;rm -rf x"), "'a;rm -rf x'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME`x`"), "'$HOME`x`'");
    }
}
