//! dsim in the browser: the playground's WebAssembly module.
//!
//! Nothing here simulates: every run goes through the same `dsim` library the CLI uses
//! (`fuzz::load_text`, `runner::run`, `picture::capture`, `report::run_report`,
//! `fuzz::run_seed`), so a scenario and seed give the same trace hash in the page as in a
//! terminal (tests/playground.rs checks it on every bundled scenario). The functions below
//! answer in JSON, for the page's script; `wasm-bindgen` exports their `*_json` forms.
//!
//! The bundled scenarios are compiled in (`SCENARIOS`, made by build.rs), so the page is a
//! folder of static files with nothing to fetch but itself.

use dsim::fuzz::{self, FailureFile, Loaded};
use dsim::picture;
use dsim::report;
use dsim::runner;
use dsim::scenario::{Scenario, ScenarioError};
use serde_json::{json, Value};
use sim_core::TraceMode;
use wasm_bindgen::prelude::*;

include!(concat!(env!("OUT_DIR"), "/scenarios.rs"));

/// The longest scenario text the page takes (the CLI's bound on a file).
pub const TEXT_MAX: usize = 16 << 20;

/// Seeds one `fuzz` call may run (the page asks in small batches to stay responsive).
pub const FUZZ_BATCH_MAX: u64 = 10_000;

/// An error as the page shows it: the message, and where (line and column) when known.
fn error(err: &ScenarioError) -> Value {
    match err {
        ScenarioError::Invalid { line, column, field, message, .. } => json!({
            "ok": false,
            "error": err.to_string(),
            "line": line,
            "column": column,
            "field": field,
            "message": message,
        }),
        other => json!({ "ok": false, "error": other.to_string() }),
    }
}

fn plain_error(message: String) -> Value {
    json!({ "ok": false, "error": message })
}

/// Reads a scenario or failure file's text, within the size bound.
fn load(name: &str, text: &str) -> Result<Loaded, Value> {
    if text.len() > TEXT_MAX {
        return Err(plain_error(format!(
            "{name}: the text is over {TEXT_MAX} bytes (16 MiB), the most dsim reads: is it a scenario file?"
        )));
    }
    fuzz::load_text(name, text).map_err(|err| error(&err))
}

/// The seed a run uses: the one typed, else a failure file's, else the scenario's own.
fn seed_of(typed: &str, scenario: &Scenario, failure: Option<&FailureFile>) -> Result<u64, Value> {
    match typed.trim() {
        "" => Ok(failure.map_or(scenario.seed, |f| f.seed)),
        text => fuzz::parse_seed(text).map_err(|err| plain_error(format!("seed: {err}"))),
    }
}

/// The bundled scenarios (path, name, description, protocol) and the protocols with their
/// parameters, for the page's menus.
pub fn catalog() -> Value {
    let scenarios: Vec<Value> = SCENARIOS
        .iter()
        .map(|(path, text)| match fuzz::load_text(path, text) {
            Ok(loaded) => json!({
                "path": path,
                "name": loaded.scenario.name,
                "description": loaded.scenario.description,
                "protocol": loaded.scenario.protocol_choice().0,
            }),
            Err(err) => json!({ "path": path, "error": err.to_string() }),
        })
        .collect();
    let protocols: Vec<Value> = dsim::registry()
        .iter()
        .map(|p| {
            let params: Vec<Value> = p
                .params_doc()
                .iter()
                .map(|d| json!({ "name": d.name, "default": d.default, "help": d.help }))
                .collect();
            json!({ "name": p.name(), "summary": p.summary(), "params": params })
        })
        .collect();
    json!({ "scenarios": scenarios, "protocols": protocols })
}

/// A bundled scenario's text.
pub fn scenario_text(path: &str) -> Option<&'static str> {
    SCENARIOS.iter().find(|(p, _)| *p == path).map(|(_, text)| *text)
}

/// Checks a scenario (or failure file) text: `{"ok": true, "kind", "seed"}`, or the error
/// with its line and column.
pub fn check(name: &str, text: &str) -> Value {
    match load(name, text) {
        Ok(Loaded { scenario, failure }) => json!({
            "ok": true,
            "kind": if failure.is_some() { "failure" } else { "scenario" },
            "seed": failure.as_ref().map_or(scenario.seed, |f| f.seed).to_string(),
        }),
        Err(err) => err,
    }
}

/// Runs a scenario with `seed` (empty: the file's own; a failure file: its seed, replayed
/// and compared), and returns the summary, its text, the exit code `dsim run` would give,
/// the diagram and the whole HTML report.
pub fn run(name: &str, text: &str, seed: &str) -> Value {
    let (Loaded { scenario, failure }, seed, summary) = match judged(name, text, seed) {
        Ok(judged) => judged,
        Err(err) => return err,
    };
    let capture = match picture::capture(&scenario, seed, picture::Options::default(), summary.clone()) {
        Ok(capture) => capture,
        Err(err) => return plain_error(err.to_string()),
    };
    let replayed = failure.as_ref().map(|f| {
        let violation = summary.outcome.violation();
        violation.is_some_and(|v| v.invariant == f.invariant && v.step == f.step)
            && summary.trace_hash == f.trace_hash
    });
    json!({
        "ok": true,
        "seed": seed.to_string(),
        "summary": summary,
        "text": summary.text(),
        "exit": summary.exit_code(),
        "replayed": replayed,
        "svg": picture::svg(&capture),
        "report": report::run_report(&scenario, &capture),
    })
}

/// Runs a scenario with `seed` as [`run`] does, and returns only its summary (what
/// `dsim run --format json` prints): no pictures, so it costs one run.
pub fn summary(name: &str, text: &str, seed: &str) -> Value {
    match judged(name, text, seed) {
        Ok((_, _, summary)) => json!({ "ok": true, "summary": summary }),
        Err(err) => err,
    }
}

/// Loads the text, picks the seed (see [`seed_of`]) and runs it, as `dsim run` does.
fn judged(name: &str, text: &str, seed: &str) -> Result<(Loaded, u64, runner::Summary), Value> {
    let loaded = load(name, text)?;
    let seed = seed_of(seed, &loaded.scenario, loaded.failure.as_ref())?;
    let summary = runner::run(&loaded.scenario, name, Some(seed), TraceMode::Recent(20), None)
        .map_err(|err| plain_error(err.to_string()))?;
    Ok((loaded, seed, summary))
}

/// Runs seeds `from..to` (to excluded, at most [`FUZZ_BATCH_MAX`]) as `dsim fuzz` does,
/// and lists the failures found (seed, invariant, step).
pub fn fuzz_batch(name: &str, text: &str, from: &str, to: &str) -> Value {
    let Loaded { scenario, .. } = match load(name, text) {
        Ok(loaded) => loaded,
        Err(err) => return err,
    };
    let (from, to) = match (fuzz::parse_seed(from), fuzz::parse_seed(to)) {
        (Ok(from), Ok(to)) if from <= to && to - from <= FUZZ_BATCH_MAX => (from, to),
        _ => return plain_error(format!("seeds {from}..{to}: at most {FUZZ_BATCH_MAX} seeds, from <= to")),
    };
    let (mut failures, mut undecided, mut outside) = (Vec::new(), 0, 0);
    for seed in from..to {
        let result = match fuzz::run_seed(&scenario, name, seed, None) {
            Ok(result) => result,
            Err(err) => return plain_error(err),
        };
        if let Some(failure) = result.failure {
            failures.push(
                json!({ "seed": seed.to_string(), "invariant": failure.invariant, "step": failure.step }),
            );
        }
        undecided += u64::from(result.undecided.is_some());
        outside += u64::from(result.outside);
    }
    json!({ "ok": true, "seeds_run": to - from, "failures": failures, "undecided": undecided, "outside_fault_model": outside })
}

/// [`catalog`], as JSON text.
#[wasm_bindgen]
pub fn catalog_json() -> String {
    catalog().to_string()
}

/// A bundled scenario's text (empty if there is none by that path).
#[wasm_bindgen]
pub fn scenario_text_of(path: &str) -> String {
    scenario_text(path).unwrap_or("").to_string()
}

/// [`check`], as JSON text.
#[wasm_bindgen]
pub fn check_json(name: &str, text: &str) -> String {
    check(name, text).to_string()
}

/// [`run`], as JSON text.
#[wasm_bindgen]
pub fn run_json(name: &str, text: &str, seed: &str) -> String {
    run(name, text, seed).to_string()
}

/// [`summary`], as JSON text.
#[wasm_bindgen]
pub fn summary_json(name: &str, text: &str, seed: &str) -> String {
    summary(name, text, seed).to_string()
}

/// [`fuzz_batch`], as JSON text.
#[wasm_bindgen]
pub fn fuzz_json(name: &str, text: &str, from: &str, to: &str) -> String {
    fuzz_batch(name, text, from, to).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_scenario_is_embedded_and_loads() {
        let catalog = catalog();
        let scenarios = catalog["scenarios"].as_array().unwrap();
        assert_eq!(scenarios.len(), dsim::bundled_scenarios().len());
        assert!(scenarios.iter().all(|s| s.get("error").is_none()), "{scenarios:?}");
        assert!(scenario_text("rpc/duplicate-put.json").is_some());
    }

    #[test]
    fn a_run_here_is_the_cli_run() {
        let text = scenario_text("rpc/duplicate-put.json").unwrap();
        let here = run("rpc/duplicate-put.json", text, "");
        let scenario = dsim::scenario::Scenario::parse("x", text).unwrap();
        let cli = runner::run(&scenario, "x", None, TraceMode::Recent(20), None).unwrap();
        assert_eq!(here["summary"]["trace_hash"], json!(cli.trace_hash));
        assert_eq!(here["exit"], json!(0));
        assert!(here["svg"].as_str().unwrap().contains("kv-linearizable violated"));
    }

    #[test]
    fn errors_name_their_line() {
        let bad = "{\n  \"name\": \"x\",\n  \"protocol\": { \"rpc\": { \"timeout_ms\": -1 } }\n}";
        let answer = check("edited.json", bad);
        assert_eq!(answer["ok"], json!(false));
        assert_eq!(answer["line"], json!(3), "{answer}");
        let answer = run("edited.json", "not json", "");
        assert_eq!(answer["ok"], json!(false));
        assert!(answer["error"].as_str().unwrap().starts_with("edited.json:1:"), "{answer}");
        assert_eq!(run("x", scenario_text("rpc/reliable.json").unwrap(), "nope")["ok"], json!(false));
    }

    #[test]
    fn a_fuzz_batch_finds_the_anomaly() {
        let text = scenario_text("rpc/duplicate-put.json").unwrap();
        let answer = fuzz_batch("rpc/duplicate-put.json", text, "0", "40");
        let failures = answer["failures"].as_array().unwrap();
        assert!(failures.iter().any(|f| f["seed"] == json!("17")), "{answer}");
        assert_eq!(fuzz_batch("x", text, "5", "1")["ok"], json!(false));
        assert_eq!(fuzz_batch("x", text, "0", "20000")["ok"], json!(false));
    }
}
