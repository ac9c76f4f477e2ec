//! `dsim check-history`: the linearizability checker for histories recorded anywhere.
//!
//! A history comes as JSON Lines, one JSON array, or Jepsen's EDN (read with the
//! `edn-format` crate), in the shape of `../shared/conformance/README.md`: events with
//! `process`, `type` (invoke/ok/fail/info), `f`, `value`, and `key` for the kv model. The
//! reading goes in three steps, each blind to the others:
//!
//! 1. [`read_events`]: the file's syntax (JSON or EDN) into [`Event`]s of neutral
//!    [`Datum`]s, each with its [`Position`] for error messages.
//! 2. [`pair`]: invocations with their completions, per process, into [`RawOp`]s (a
//!    process invoking twice, a completion with no invocation: bad input). Operations of
//!    processes that are not integers (Jepsen's `:nemesis`) are not client operations:
//!    they are counted and skipped.
//! 3. A [`Reading`] per model: what each `f` and value means and what a `fail` means,
//!    into the engine's `Operation`s for one of the models in
//!    `sim_core::checkers::models` (or the key/value model of `protocols::kv`).
//!
//! Then [`check_partition`] runs the one search (`witness_within`), and on failure
//! [`explain`] finds the first return that cannot be placed, the latest quiet moment before
//! it, and a linearization of everything up to it, which is what the explanation shows.

use clap::ValueEnum;
use protocols::kv::{KeyModel, KeyOperation, KvOp, KvResult};
use serde::Serialize;
use sim_core::checkers::linearizability::{final_states_within, replay, witness_within, Model, Operation};
use sim_core::checkers::models::{
    FifoQueue, Mutex, MutexInput, QueueInput, QueueOutput, Register, RegisterInput, RegisterOutput, Set,
    SetInput, SetOutput, Value,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Debug, Write as _};
use std::time::Duration;

/// The models, as `--model` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelName {
    Kv,
    Register,
    CasRegister,
    Mutex,
    Set,
    FifoQueue,
}

/// For `dsim list`: each model, what it is, and its operations.
pub const MODELS: [(&str, &str, &str); 6] = [
    (
        "kv",
        "key/value store, checked key by key; every key starts as \"\"",
        "get (value read), put, append (string); key in `key` or value [key value]",
    ),
    (
        "register",
        "one register starting as nil; a failed cas means its comparison failed",
        "read (value read), write (value), cas ([expected new])",
    ),
    (
        "cas-register",
        "Knossos' cas-register: starts at --initial (nil); fail = did not happen; a nil read = unknown",
        "read, write, cas ([expected new])",
    ),
    ("mutex", "a lock held by one process at a time", "acquire, release"),
    ("set", "a set that grows", "add (value), read (every element)"),
    ("fifo-queue", "a FIFO queue; a dequeue of nil found it empty", "enqueue (value), dequeue (value)"),
];

/// Input formats, as `--input` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    Json,
    Jsonl,
    Edn,
}

/// Everything `check-history` was asked.
#[derive(Clone, Debug)]
pub struct Options {
    pub model: ModelName,
    /// `--initial`, as written (cas-register only).
    pub initial: Option<String>,
    pub input: Option<InputFormat>,
    /// Configurations the search may visit per key (per history for one-object models).
    pub budget: usize,
    pub budget_is_default: bool,
    pub timeout_s: f64,
    pub timeout_is_default: bool,
    pub json: bool,
}

pub const BUDGET_DEFAULT: usize = 10_000_000;
pub const TIMEOUT_S_DEFAULT: f64 = 30.0;
pub const EXIT_UNKNOWN: u8 = 3;

/// What to print and the exit code.
pub struct Verdict {
    pub output: String,
    pub exit: u8,
}

/// Reads `source` (a path, or `-` for standard input) and checks it, in a thread of its
/// own so that `--timeout-s` can end the wait: the search itself has no clock (it is
/// bounded by configurations, which do not depend on the machine); the timeout does, and
/// says so when it is hit. `Err`: bad input, one line.
pub fn run(source: &str, options: &Options) -> Result<Verdict, String> {
    run_keeping_text(source, options).map(|(verdict, _)| verdict)
}

/// Like [`run`], and gives back the history's text too (for the HTML report).
pub fn run_keeping_text(source: &str, options: &Options) -> Result<(Verdict, String), String> {
    if options.initial.is_some() && options.model != ModelName::CasRegister {
        return Err("--initial is for --model cas-register only (the register model starts as nil)".into());
    }
    if !(options.timeout_s > 0.0 && options.timeout_s <= 1e9) {
        return Err(format!("--timeout-s {}: a number of seconds above 0", options.timeout_s));
    }
    if options.budget == 0 {
        return Err("--budget 0: the search needs at least 1 configuration".into());
    }
    let text = read_source(source)?;
    let (send, receive) = std::sync::mpsc::channel();
    let worker_options = options.clone();
    let kept = text.clone();
    let shown = if source == "-" { "standard input".to_string() } else { source.to_string() };
    let worker_shown = shown.clone();
    std::thread::Builder::new()
        .name("check-history".into())
        .spawn(move || {
            let _ = send.send(check_text(&text, &worker_shown, &worker_options));
        })
        .map_err(|err| format!("cannot start the checker: {err}"))?;
    match receive.recv_timeout(Duration::from_secs_f64(options.timeout_s)) {
        Ok(result) => result.map(|verdict| (verdict, kept)),
        Err(_) => Ok((timed_out(&shown, options), kept)),
    }
}

fn read_source(source: &str) -> Result<String, String> {
    let bytes = if source == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .map_err(|err| format!("standard input: cannot read: {err}"))?;
        bytes
    } else {
        std::fs::read(source).map_err(|err| format!("{source}: cannot read: {err}"))?
    };
    String::from_utf8(bytes).map_err(|err| {
        let shown = if source == "-" { "standard input" } else { source };
        format!("{shown}: not UTF-8 text (byte {} is not valid UTF-8)", err.utf8_error().valid_up_to())
    })
}

fn limits_line(options: &Options) -> String {
    let default = |yes: bool| if yes { " (default)" } else { "" };
    format!(
        "search budget {} configurations per key{}, timeout {} s{}",
        options.budget,
        default(options.budget_is_default),
        options.timeout_s,
        default(options.timeout_is_default)
    )
}

fn timed_out(shown: &str, options: &Options) -> Verdict {
    let reason = format!(
        "the timeout of {} s (wall clock) was hit before the search decided: this result depends on \
         the machine's speed; a longer --timeout-s may decide it",
        options.timeout_s
    );
    let output = if options.json {
        let report = serde_json::json!({
            "file": shown, "model": model_name(options.model), "verdict": "unknown",
            "reason": reason, "timeout_s": options.timeout_s, "budget": options.budget,
        });
        serde_json::to_string_pretty(&report).expect("serializes") + "\n"
    } else {
        format!("UNKNOWN  {shown}: {reason}\nlimits   {}\n", limits_line(options))
    };
    Verdict { output, exit: EXIT_UNKNOWN }
}

fn model_name(model: ModelName) -> &'static str {
    match model {
        ModelName::Kv => "kv",
        ModelName::Register => "register",
        ModelName::CasRegister => "cas-register",
        ModelName::Mutex => "mutex",
        ModelName::Set => "set",
        ModelName::FifoQueue => "fifo-queue",
    }
}

// ---------------------------------------------------------------------------------------
// 1. Syntax: JSON Lines, a JSON array, or EDN, into events.

/// A value from either syntax, before any model gives it a meaning.
#[derive(Clone, Debug, PartialEq)]
pub enum Datum {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Keyword(String),
    List(Vec<Datum>),
    Set(Vec<Datum>),
    Map(Vec<(Datum, Datum)>),
    /// Anything else EDN can say (symbols, tagged values, big numbers), as written.
    Other(String),
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |items: &[Datum]| items.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
        match self {
            Datum::Nil => write!(f, "nil"),
            Datum::Bool(b) => write!(f, "{b}"),
            Datum::Int(n) => write!(f, "{n}"),
            Datum::Float(x) => write!(f, "{x}"),
            Datum::Text(text) => write!(f, "{text:?}"),
            Datum::Keyword(name) => write!(f, ":{name}"),
            Datum::List(items) => write!(f, "[{}]", join(items)),
            Datum::Set(items) => write!(f, "#{{{}}}", join(items)),
            Datum::Map(pairs) => {
                let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} {v}")).collect();
                write!(f, "{{{}}}", shown.join(", "))
            }
            Datum::Other(text) => write!(f, "{text}"),
        }
    }
}

impl Datum {
    /// A string or keyword's name (`"ok"` and `:ok` alike).
    fn name(&self) -> Option<&str> {
        match self {
            Datum::Text(text) | Datum::Keyword(text) => Some(text),
            _ => None,
        }
    }

    fn from_json(value: serde_json::Value) -> Datum {
        use serde_json::Value as J;
        match value {
            J::Null => Datum::Nil,
            J::Bool(b) => Datum::Bool(b),
            J::Number(n) => {
                n.as_i64().map_or_else(|| Datum::Float(n.as_f64().unwrap_or(f64::NAN)), Datum::Int)
            }
            J::String(s) => Datum::Text(s),
            J::Array(items) => Datum::List(items.into_iter().map(Datum::from_json).collect()),
            J::Object(map) => {
                Datum::Map(map.into_iter().map(|(k, v)| (Datum::Text(k), Datum::from_json(v))).collect())
            }
        }
    }

    fn from_edn(value: edn_format::Value) -> Datum {
        use edn_format::Value as E;
        match value {
            E::Nil => Datum::Nil,
            E::Boolean(b) => Datum::Bool(b),
            E::Integer(n) => Datum::Int(n),
            E::Float(x) => Datum::Float(x.into_inner()),
            E::String(s) => Datum::Text(s),
            E::Keyword(k) => Datum::Keyword(match k.namespace() {
                Some(ns) => format!("{ns}/{}", k.name()),
                None => k.name().to_string(),
            }),
            E::List(items) | E::Vector(items) => {
                Datum::List(items.into_iter().map(Datum::from_edn).collect())
            }
            E::Set(items) => Datum::Set(items.into_iter().map(Datum::from_edn).collect()),
            E::Map(map) => {
                Datum::Map(map.into_iter().map(|(k, v)| (Datum::from_edn(k), Datum::from_edn(v))).collect())
            }
            other => Datum::Other(edn_format::emit_str(&other)),
        }
    }
}

/// Where an event is, for messages: a line of JSON Lines, an entry of a JSON array, or the
/// n-th operation of an EDN history (EDN values carry no line numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Position {
    Line(usize),
    Entry(usize),
    Operation(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Entry(n) => write!(f, "entry {n}"),
            Position::Operation(n) => write!(f, "operation {n}"),
        }
    }
}

impl Position {
    /// The number alone, for intervals (`12-15`).
    fn number(self) -> usize {
        match self {
            Position::Line(n) | Position::Entry(n) | Position::Operation(n) => n,
        }
    }

    /// What the numbers count, for headings.
    fn unit(self) -> &'static str {
        match self {
            Position::Line(_) => "lines",
            Position::Entry(_) => "entries",
            Position::Operation(_) => "EDN operations",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line (or map) of a history.
#[derive(Clone, Debug)]
pub struct Event {
    pub at: Position,
    /// `None`: not a client (Jepsen's `:nemesis`), to be skipped.
    pub process: Option<i64>,
    pub kind: Kind,
    pub f: String,
    pub key: Option<Datum>,
    pub value: Datum,
}

/// Which syntax the text is in, from its first characters: EDN starts with `(`, `;`, or a
/// map whose first key is a keyword; JSON with `[` or `{` then a string key.
fn detect(text: &str) -> InputFormat {
    let trimmed = text.trim_start();
    let after = |prefix: char| trimmed[prefix.len_utf8()..].trim_start();
    match trimmed.chars().next() {
        Some('(' | ';' | ':' | '#') => InputFormat::Edn,
        Some('[') => {
            let inner = after('[');
            match inner.chars().next() {
                Some('{') if inner[1..].trim_start().starts_with(':') => InputFormat::Edn,
                Some('{') | Some(']') | None => InputFormat::Json,
                _ => InputFormat::Edn,
            }
        }
        Some('{') if after('{').starts_with(':') => InputFormat::Edn,
        _ => InputFormat::Jsonl,
    }
}

/// The events of `text`, in order, in the syntax asked for (or detected).
pub fn read_events(text: &str, format: Option<InputFormat>) -> Result<Vec<Event>, String> {
    match format.unwrap_or_else(|| detect(text)) {
        InputFormat::Jsonl => {
            let mut events = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let at = Position::Line(i + 1);
                let value: serde_json::Value = serde_json::from_str(line).map_err(|err| {
                    format!("{at}: not JSON: {err} (each line holds one event as a JSON object)")
                })?;
                events.push(event(at, Datum::from_json(value))?);
            }
            Ok(events)
        }
        InputFormat::Json => {
            let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|err| {
                format!("line {}, column {}: not a JSON array of events: {err}", err.line(), err.column())
            })?;
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| event(Position::Entry(i + 1), Datum::from_json(v)))
                .collect()
        }
        InputFormat::Edn => read_edn(text),
    }
}

/// EDN as Jepsen writes it: a list or vector of maps, or maps one after another (its
/// `history.edn`). The text is read as the elements of one vector, which covers both.
fn read_edn(text: &str) -> Result<Vec<Event>, String> {
    let wrapped = format!("[{text}\n]");
    let parsed = edn_format::parse_str(&wrapped).map_err(|err| {
        let column = if err.row <= 1 { err.col.saturating_sub(1) } else { err.col };
        format!("line {}, column {column}: not EDN: {}", err.row.max(1), err.error)
    })?;
    let mut forms = match Datum::from_edn(parsed) {
        Datum::List(forms) => forms,
        _ => unreachable!("a vector was parsed"),
    };
    if forms.len() == 1 && matches!(forms[0], Datum::List(_)) {
        let Datum::List(inner) = forms.remove(0) else { unreachable!("just matched") };
        forms = inner;
    }
    forms.into_iter().enumerate().map(|(i, form)| event(Position::Operation(i + 1), form)).collect()
}

/// One event from a map with `process`, `type`, `f`, and optionally `value` and `key`
/// (other keys, such as Jepsen's `:time` and `:index`, are ignored).
fn event(at: Position, datum: Datum) -> Result<Event, String> {
    let Datum::Map(pairs) = datum else {
        return Err(format!("{at}: an event is a map with process, type, f and value; found {datum}"));
    };
    let field = |name: &str| pairs.iter().find(|(k, _)| k.name() == Some(name)).map(|(_, v)| v);
    let process = match field("process") {
        Some(Datum::Int(n)) => *n,
        // Not a client (Jepsen's `:nemesis`): skipped whatever else it says, so its own
        // `f`s (start, kill, isolate) and values are never read.
        Some(_) => {
            let f = field("f").map_or_else(String::new, ToString::to_string);
            return Ok(Event { at, process: None, kind: Kind::Info, f, key: None, value: Datum::Nil });
        }
        None => return Err(format!("{at}: no process (each event names its process)")),
    };
    let kind = match field("type") {
        Some(datum) => match datum.name() {
            Some("invoke") => Kind::Invoke,
            Some("ok") => Kind::Ok,
            Some("fail") => Kind::Fail,
            Some("info") => Kind::Info,
            _ => return Err(format!("{at}: type {datum} is none of invoke, ok, fail, info")),
        },
        None => return Err(format!("{at}: no type (one of invoke, ok, fail, info)")),
    };
    let f = match field("f") {
        Some(datum) => match datum.name() {
            Some(name) => name.to_string(),
            None => return Err(format!("{at}: f {datum} is not a name (a string or a keyword)")),
        },
        None => return Err(format!("{at}: no f (the operation's name)")),
    };
    let key = field("key").cloned();
    let value = field("value").cloned().unwrap_or(Datum::Nil);
    Ok(Event { at, process: Some(process), kind, f, key, value })
}

// ---------------------------------------------------------------------------------------
// 2. Pairing invocations with completions.

/// An operation as the history shows it: its invocation and its completion (`None`: it
/// never completed).
#[derive(Clone, Debug)]
pub struct RawOp {
    pub process: i64,
    pub f: String,
    pub key: Option<Datum>,
    pub value: Datum,
    /// The event indexes of the invocation and the completion: the history's time.
    pub call: u64,
    pub ret: Option<u64>,
    pub call_at: Position,
    pub ret_at: Option<Position>,
    pub completion: Option<(Kind, Datum)>,
}

impl RawOp {
    /// `p3 cas [1 2] -> fail`, `p0 read -> 4`, `p1 write 3 -> info`.
    pub fn describe(&self) -> String {
        let mut out = format!("p{} {}", self.process, self.f);
        if let Some(key) = &self.key {
            out.push_str(&format!(" {key}"));
        }
        if self.value != Datum::Nil {
            out.push_str(&format!(" {}", self.value));
        }
        match &self.completion {
            None => out.push_str(" -> (no completion)"),
            Some((Kind::Ok, value)) if *value != self.value && *value != Datum::Nil => {
                out.push_str(&format!(" -> {value}"))
            }
            Some((Kind::Ok, _)) if self.value == Datum::Nil && !self.f.contains("acquire") => {
                out.push_str(" -> nil")
            }
            Some((Kind::Ok, _)) => out.push_str(" -> ok"),
            Some((Kind::Fail, _)) => out.push_str(" -> fail"),
            Some((Kind::Info, _)) => out.push_str(" -> info (unknown)"),
            Some((Kind::Invoke, _)) => unreachable!("a completion is not an invocation"),
        }
        out
    }

    /// The interval, as positions: `12-15`, or `12-` when it never completed.
    pub fn interval(&self) -> String {
        match (self.ret_at, &self.completion) {
            (Some(at), Some((kind, _))) if *kind != Kind::Info => {
                format!("{}-{}", self.call_at.number(), at.number())
            }
            _ => format!("{}-", self.call_at.number()),
        }
    }
}

/// The history's operations in invocation order, and how many events of non-client
/// processes were skipped.
pub struct Paired {
    pub ops: Vec<RawOp>,
    pub skipped: usize,
    pub unit: &'static str,
}

pub fn pair(events: Vec<Event>) -> Result<Paired, String> {
    let unit = events.first().map_or("lines", |e| e.at.unit());
    let mut ops: Vec<RawOp> = Vec::new();
    let mut open: BTreeMap<i64, usize> = BTreeMap::new();
    let mut skipped = 0;
    for (time, event) in events.into_iter().enumerate() {
        let Some(process) = event.process else {
            skipped += 1;
            continue;
        };
        let time = time as u64;
        if event.kind == Kind::Invoke {
            if let Some(&previous) = open.get(&process) {
                return Err(format!(
                    "{}: process {process} invokes {} before its {} invoked at {} completed",
                    event.at, event.f, ops[previous].f, ops[previous].call_at
                ));
            }
            open.insert(process, ops.len());
            ops.push(RawOp {
                process,
                f: event.f,
                key: event.key,
                value: event.value,
                call: time,
                ret: None,
                call_at: event.at,
                ret_at: None,
                completion: None,
            });
            continue;
        }
        let Some(index) = open.remove(&process) else {
            return Err(format!("{}: process {process} completes {} it never invoked", event.at, event.f));
        };
        let op = &mut ops[index];
        if op.f != event.f {
            return Err(format!(
                "{}: process {process} completes {} but invoked {} at {}",
                event.at, event.f, op.f, op.call_at
            ));
        }
        op.ret = Some(time);
        op.ret_at = Some(event.at);
        if op.key.is_none() {
            op.key = event.key;
        }
        op.completion = Some((event.kind, event.value));
    }
    Ok(Paired { ops, skipped, unit })
}

// ---------------------------------------------------------------------------------------
// 3. Readings: what each model makes of an operation.

/// What a model makes of the history's operations.
trait Reading {
    type M: Model;
    fn model(&self) -> Self::M;
    /// The operation as the checker takes it; `Ok(None)`: it did not take effect (a
    /// `fail`), so it is left out. `Err`: the operation is not one of the model's, or a
    /// value has the wrong shape.
    #[allow(clippy::type_complexity)]
    fn read(
        &self,
        op: &RawOp,
    ) -> Result<Option<Operation<<Self::M as Model>::Input, <Self::M as Model>::Output>>, String>;

    /// Whether to keep `op` of `ops`: a model may leave out operations with an unknown
    /// outcome that provably change nothing any other operation saw (see the queue's).
    /// The default keeps every one.
    #[allow(clippy::type_complexity)]
    fn keep(
        &self,
        _op: &Operation<<Self::M as Model>::Input, <Self::M as Model>::Output>,
        _ops: &[Operation<<Self::M as Model>::Input, <Self::M as Model>::Output>],
    ) -> bool {
        true
    }
}

/// The parts every reading shares: the interval, and whether the outcome is known.
enum Outcome<'a> {
    Ok(&'a Datum),
    Fail,
    Unknown,
}

fn outcome(op: &RawOp) -> Outcome<'_> {
    match &op.completion {
        Some((Kind::Ok, value)) => Outcome::Ok(value),
        Some((Kind::Fail, _)) => Outcome::Fail,
        _ => Outcome::Unknown,
    }
}

fn operation<I, O>(op: &RawOp, input: I, output: Option<O>) -> Operation<I, O> {
    let known = matches!(op.completion, Some((Kind::Ok | Kind::Fail, _)));
    Operation {
        client: op.process as u64,
        call: op.call,
        ret: if known { op.ret } else { None },
        input,
        output,
    }
}

fn unknown_f(op: &RawOp, model: &str, known: &str) -> String {
    format!("{}: f {} is not an operation of the {model} model ({known})", op.call_at, op.f)
}

fn scalar(datum: &Datum) -> Option<Value> {
    match datum {
        Datum::Nil => Some(Value::Nil),
        Datum::Int(n) => Some(Value::Int(*n)),
        Datum::Text(text) => Some(Value::text(text)),
        Datum::Keyword(name) => Some(Value::text(&format!(":{name}"))),
        _ => None,
    }
}

fn scalar_at(op: &RawOp, datum: &Datum, what: &str) -> Result<Value, String> {
    scalar(datum).ok_or_else(|| {
        format!("{}: {} {what} must be nil, an integer or a string; found {datum}", op.call_at, op.f)
    })
}

/// The `register` and `cas-register` models: one reading, two views of `fail` and nil.
struct RegisterReading {
    initial: Value,
    /// Knossos' view (cas-register): a `fail` never happened, for cas too; an ok read of
    /// nil read an unknown value. Otherwise (register): a failed cas is an observation that
    /// the comparison failed, and nil is the value never written.
    knossos: bool,
}

impl Reading for RegisterReading {
    type M = Register;

    fn model(&self) -> Register {
        Register { initial: self.initial.clone() }
    }

    fn read(&self, op: &RawOp) -> Result<Option<Operation<RegisterInput, RegisterOutput>>, String> {
        let name = if self.knossos { "cas-register" } else { "register" };
        let input = match op.f.as_str() {
            "read" => RegisterInput::Read,
            "write" => RegisterInput::Write(scalar_at(op, &op.value, "value")?),
            "cas" => match &op.value {
                Datum::List(pair) if pair.len() == 2 => RegisterInput::Cas(
                    scalar_at(op, &pair[0], "expected value")?,
                    scalar_at(op, &pair[1], "new value")?,
                ),
                other => {
                    return Err(format!("{}: cas value must be [expected new]; found {other}", op.call_at))
                }
            },
            _ => return Err(unknown_f(op, name, "read, write, cas")),
        };
        let output = match (outcome(op), &input) {
            (Outcome::Unknown, _) => None,
            (Outcome::Fail, RegisterInput::Cas(..)) if !self.knossos => Some(RegisterOutput::CasFailed),
            (Outcome::Fail, _) => return Ok(None),
            (Outcome::Ok(value), RegisterInput::Read) => {
                let read = scalar(value).ok_or_else(|| {
                    format!(
                        "{}: read returned {value}: nil, an integer or a string",
                        op.ret_at.unwrap_or(op.call_at)
                    )
                })?;
                if self.knossos && read == Value::Nil {
                    None
                } else {
                    Some(RegisterOutput::Read(read))
                }
            }
            (Outcome::Ok(_), _) => Some(RegisterOutput::Ok),
        };
        // An ok read of nil under Knossos is unknown in value only: it did return.
        Ok(Some(operation(op, input, output)))
    }
}

struct MutexReading;

impl Reading for MutexReading {
    type M = Mutex;

    fn model(&self) -> Mutex {
        Mutex
    }

    fn read(&self, op: &RawOp) -> Result<Option<Operation<MutexInput, ()>>, String> {
        let input = match op.f.as_str() {
            "acquire" => MutexInput::Acquire,
            "release" => MutexInput::Release,
            _ => return Err(unknown_f(op, "mutex", "acquire, release")),
        };
        Ok(match outcome(op) {
            Outcome::Fail => None,
            Outcome::Unknown => Some(operation(op, input, None)),
            Outcome::Ok(_) => Some(operation(op, input, Some(()))),
        })
    }
}

struct SetReading;

impl Reading for SetReading {
    type M = Set;

    /// An add with an unknown outcome whose value no read saw is left out: placing it
    /// last (it never took effect) explains everything placing it anywhere else does.
    fn keep(&self, op: &Operation<SetInput, SetOutput>, ops: &[Operation<SetInput, SetOutput>]) -> bool {
        match (&op.input, &op.output) {
            (SetInput::Add(value), None) => {
                ops.iter().any(|o| matches!(&o.output, Some(SetOutput::Read(read)) if read.contains(value)))
            }
            _ => true,
        }
    }

    fn model(&self) -> Set {
        Set
    }

    fn read(&self, op: &RawOp) -> Result<Option<Operation<SetInput, SetOutput>>, String> {
        let input = match op.f.as_str() {
            "add" => SetInput::Add(scalar_at(op, &op.value, "value")?),
            "read" => SetInput::Read,
            _ => return Err(unknown_f(op, "set", "add, read")),
        };
        let output = match (outcome(op), &input) {
            (Outcome::Fail, _) => return Ok(None),
            (Outcome::Unknown, _) => None,
            (Outcome::Ok(_), SetInput::Add(_)) => Some(SetOutput::Ok),
            (Outcome::Ok(value), SetInput::Read) => {
                let items = match value {
                    Datum::List(items) | Datum::Set(items) => items,
                    Datum::Nil => &Vec::new(),
                    other => {
                        return Err(format!(
                            "{}: a set read returns a list of its elements; found {other}",
                            op.ret_at.unwrap_or(op.call_at)
                        ))
                    }
                };
                let set = items
                    .iter()
                    .map(|item| scalar_at(op, item, "element"))
                    .collect::<Result<BTreeSet<_>, _>>()?;
                Some(SetOutput::Read(set))
            }
        };
        Ok(Some(operation(op, input, output)))
    }
}

struct QueueReading;

impl Reading for QueueReading {
    type M = FifoQueue;

    /// An enqueue with an unknown outcome whose value no dequeue returned is left out:
    /// take any linearization with it; without it, and with the unknown dequeue that took
    /// its value (if one did) moved to the end, every known dequeue returns the same.
    /// Without this, such enqueues (a crashed client's) may sit at any place in the
    /// queue, and the orders to try multiply.
    fn keep(
        &self,
        op: &Operation<QueueInput, QueueOutput>,
        ops: &[Operation<QueueInput, QueueOutput>],
    ) -> bool {
        match (&op.input, &op.output) {
            (QueueInput::Enqueue(value), None) => {
                ops.iter().any(|o| o.output.as_ref() == Some(&QueueOutput::Dequeued(value.clone())))
            }
            _ => true,
        }
    }

    fn model(&self) -> FifoQueue {
        FifoQueue
    }

    fn read(&self, op: &RawOp) -> Result<Option<Operation<QueueInput, QueueOutput>>, String> {
        let input = match op.f.as_str() {
            "enqueue" => QueueInput::Enqueue(scalar_at(op, &op.value, "value")?),
            "dequeue" => QueueInput::Dequeue,
            _ => return Err(unknown_f(op, "fifo-queue", "enqueue, dequeue")),
        };
        let output = match (outcome(op), &input) {
            (Outcome::Fail, _) => return Ok(None),
            (Outcome::Unknown, _) => None,
            (Outcome::Ok(_), QueueInput::Enqueue(_)) => Some(QueueOutput::Ok),
            (Outcome::Ok(value), QueueInput::Dequeue) => {
                Some(QueueOutput::Dequeued(scalar_at(op, value, "value")?))
            }
        };
        Ok(Some(operation(op, input, output)))
    }
}

/// A kv operation's key and the operation, or `None` for a `fail`.
/// A kv operation and its key.
type KeyedOp = (String, Operation<KvOp, KvResult>);

fn read_kv(op: &RawOp) -> Result<Option<KeyedOp>, String> {
    let text = |datum: &Datum, what: &str| match datum {
        Datum::Text(text) => Ok(text.clone()),
        Datum::Int(n) => Ok(n.to_string()),
        Datum::Keyword(name) => Ok(format!(":{name}")),
        other => Err(format!("{}: {} {what} must be a string; found {other}", op.call_at, op.f)),
    };
    // The key: a `key` field, or Jepsen's independent [key value] tuple as the value.
    let (key, value, completed) = match (&op.key, &op.value) {
        (Some(key), value) => {
            (text(key, "key")?, value.clone(), op.completion.as_ref().map(|(_, v)| v.clone()))
        }
        (None, Datum::List(tuple)) if tuple.len() == 2 => {
            let completed = match &op.completion {
                Some((_, Datum::List(done))) if done.len() == 2 => Some(done[1].clone()),
                Some((_, Datum::Nil)) | None => None,
                Some((_, other)) => {
                    return Err(format!(
                        "{}: the completion's value must be a [key value] tuple like the invocation's; found {other}",
                        op.ret_at.unwrap_or(op.call_at)
                    ))
                }
            };
            (text(&tuple[0], "key")?, tuple[1].clone(), completed)
        }
        (None, other) => {
            return Err(format!(
            "{}: a kv operation names its key, in a key field or as a [key value] value; found value {other}",
            op.call_at
        ))
        }
    };
    let input = match op.f.as_str() {
        "get" | "read" => KvOp::Get { key: key.clone() },
        "put" | "write" => KvOp::Put { key: key.clone(), value: text(&value, "value")? },
        "append" => KvOp::Append { key: key.clone(), value: text(&value, "value")? },
        _ => return Err(unknown_f(op, "kv", "get, put, append")),
    };
    let output = match outcome(op) {
        Outcome::Fail => return Ok(None),
        Outcome::Unknown => None,
        Outcome::Ok(_) => Some(match &input {
            KvOp::Get { .. } => match completed.unwrap_or(Datum::Nil) {
                Datum::Nil => KvResult::Value(String::new()),
                read => KvResult::Value(text(&read, "value read")?),
            },
            _ => KvResult::Done,
        }),
    };
    Ok(Some((key, operation(op, input, output))))
}

// ---------------------------------------------------------------------------------------
// Checking and explaining.

/// The operations of one object (a key for kv, else the whole history), with the index of
/// each in the history's `RawOp`s.
struct Partition<I, O> {
    key: Option<String>,
    ops: Vec<Operation<I, O>>,
    raw: Vec<usize>,
}

/// What one object's check found.
enum Found {
    Linearizable,
    Unknown,
    Not(Box<Explanation>),
    /// Not searched to the end: another key fails already.
    NotNeeded,
}

/// The budget every key gets first (see `check_text`).
const FIRST_BUDGET: usize = 1_000;

/// Why an object's history is not linearizable, built from what the search found.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub key: Option<String>,
    /// The first completion that no linearization can place.
    pub fails_at: Position,
    /// Where the stretch starts: the latest moment before the failing operation's
    /// invocation when nothing was in flight (the history's start if none).
    pub stretch_from: Position,
    /// Every state the history before the stretch can leave.
    pub states_before: Vec<String>,
    pub operations: Vec<ShownOp>,
    /// A linearization of the stretch up to the failing completion (the longest prefix
    /// that could be linearized), with the state after each operation.
    pub linearized: Vec<LinearizedOp>,
    /// The state the linearized prefix leaves.
    pub state: String,
    /// The operation that could not be placed next.
    pub could_not_place: ShownOp,
    /// Set when the explanation could not be narrowed down within the budget.
    pub note: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShownOp {
    pub process: i64,
    pub interval: String,
    pub operation: String,
}

#[derive(Debug, Serialize)]
pub struct LinearizedOp {
    pub interval: String,
    pub operation: String,
    pub state_after: String,
    /// Its outcome was not known by the failing completion (unknown, or it completes
    /// later): the linearization chose to place it here.
    pub still_running: bool,
}

fn shown(raw: &RawOp) -> ShownOp {
    ShownOp { process: raw.process, interval: raw.interval(), operation: raw.describe() }
}

fn check_partition<M: Model>(
    model: &M,
    part: &Partition<M::Input, M::Output>,
    raws: &[RawOp],
    budget: usize,
) -> Found
where
    M::Input: Clone,
    M::Output: Clone,
{
    match witness_within(model, &model.init(), &part.ops, budget) {
        None => Found::Unknown,
        Some(Some(_)) => Found::Linearizable,
        Some(None) => Found::Not(Box::new(explain(model, part, raws, budget))),
    }
}

/// The history up to moment `until` (an event index): the operations called by then,
/// those returning later made unknown (they had not returned yet).
fn prefix<I: Clone, O: Clone>(ops: &[Operation<I, O>], until: u64) -> Vec<Operation<I, O>> {
    ops.iter()
        .filter(|op| op.call <= until)
        .map(|op| {
            let mut op = op.clone();
            if op.ret.is_some_and(|ret| ret > until) {
                op.ret = None;
                op.output = None;
            }
            op
        })
        .collect()
}

fn explain<M: Model>(
    model: &M,
    part: &Partition<M::Input, M::Output>,
    raws: &[RawOp],
    budget: usize,
) -> Explanation
where
    M::Input: Clone,
    M::Output: Clone,
{
    let ops = &part.ops;
    let init = model.init();
    let fails = |until: u64| witness_within(model, &init, &prefix(ops, until), budget).map(|w| w.is_none());
    // 1. The first return no linearization can place: a prefix that fails stays failing as
    // the history grows, so bisect over the returns.
    let mut returns: Vec<(u64, usize)> =
        ops.iter().enumerate().filter_map(|(i, op)| op.ret.map(|ret| (ret, i))).collect();
    returns.sort_unstable();
    let mut note = None;
    let (mut low, mut high) = (0, returns.len().saturating_sub(1));
    while low < high {
        let middle = (low + high) / 2;
        match fails(returns[middle].0) {
            Some(true) => high = middle,
            Some(false) => low = middle + 1,
            None => {
                note = Some("the search budget ran out while narrowing the explanation down".to_string());
                break;
            }
        }
    }
    let (until, failing) = returns[high];
    // 2. The latest quiet moment before the failing call (everything called before it
    // had returned; an operation with an unknown outcome is never done) that leaves a few
    // operations before the failing one, so the reader sees what led to its state.
    let mut quiet = vec![0];
    let mut latest_return = 0u64;
    for (i, op) in ops.iter().enumerate() {
        if op.call > ops[failing].call {
            break;
        }
        if i > 0 && latest_return < op.call {
            quiet.push(i);
        }
        latest_return = latest_return.max(op.ret.unwrap_or(u64::MAX));
    }
    let mut start = quiet.iter().rev().copied().find(|&q| failing >= q + CONTEXT_MIN).unwrap_or(0);
    let mut inits = vec![init.clone()];
    if start > 0 {
        match final_states_within(model, std::slice::from_ref(&init), &ops[..start], budget) {
            Some(states) if !states.is_empty() => inits = states,
            _ => start = 0,
        }
    }
    let stretch: Vec<usize> = (start..ops.len()).filter(|&i| ops[i].call <= until).collect();
    // 3. A linearization of the stretch up to just before the failing return: from the
    // states the earlier history leaves, with what returns later (the failing operation
    // too) still running. Its operations with known outcomes make the prefix shown.
    let before: Vec<_> = prefix(&ops[start..], until - 1);
    let mut linearized = Vec::new();
    let mut state = format!("{:?}", inits[0]);
    for from in &inits {
        let Some(Some(order)) = witness_within(model, from, &before, budget) else { continue };
        // Operations still running at the end of the order (placed there because nothing
        // needed them) are left out: they had not been seen to take effect.
        let known = |k: usize| before[k].ret.is_some();
        let shown_len = order.iter().rposition(|&k| known(k)).map_or(0, |p| p + 1);
        let mut current = from.clone();
        for &k in &order[..shown_len] {
            let after =
                replay(model, &current, std::slice::from_ref(&before[k]), &[0]).expect("a witness replays");
            let raw = &raws[part.raw[start + k]];
            linearized.push(LinearizedOp {
                interval: raw.interval(),
                operation: raw.describe(),
                state_after: format!("{after:?}"),
                still_running: !known(k),
            });
            current = after;
        }
        state = format!("{current:?}");
        break;
    }
    let position = |raw: &RawOp| raw.call_at;
    Explanation {
        key: part.key.clone(),
        fails_at: raws[part.raw[failing]].ret_at.expect("a failing operation returned"),
        stretch_from: position(&raws[part.raw[start]]),
        states_before: inits.iter().map(|s| format!("{s:?}")).collect(),
        operations: stretch.iter().map(|&i| shown(&raws[part.raw[i]])).collect(),
        linearized,
        state,
        could_not_place: shown(&raws[part.raw[failing]]),
        note,
    }
}

// ---------------------------------------------------------------------------------------
// The report.

#[derive(Debug, Serialize)]
struct Report {
    file: String,
    model: &'static str,
    verdict: &'static str,
    operations: usize,
    processes: usize,
    /// Operations whose outcome is unknown: `info`, or never completed.
    unknown_outcomes: usize,
    /// Operations that failed (and did not take effect, except a register's cas).
    failed: usize,
    /// Events of processes that are not clients (Jepsen's nemesis), skipped.
    skipped_non_client_events: usize,
    /// Objects checked apart (keys for kv; 1 otherwise).
    objects: usize,
    budget: usize,
    timeout_s: f64,
    /// The keys whose search ran out of budget (`"-"` for a one-object model).
    undecided: Vec<String>,
    /// Keys not searched to the end because another key fails already.
    not_needed: Vec<String>,
    explanations: Vec<Explanation>,
}

/// Checks a whole history text; the result of `check-history`.
pub fn check_text(text: &str, shown: &str, options: &Options) -> Result<Verdict, String> {
    let prefix_error = |message: String| format!("{shown}: {message}");
    let events = read_events(text, options.input).map_err(prefix_error)?;
    let paired = pair(events).map_err(prefix_error)?;
    let raws = &paired.ops;
    let budget = options.budget;
    let mut found: Vec<(Option<String>, Found)> = Vec::new();
    match options.model {
        ModelName::Kv => {
            let mut keys: BTreeMap<String, Partition<_, _>> = BTreeMap::new();
            for (i, raw) in raws.iter().enumerate() {
                if let Some((key, op)) = read_kv(raw).map_err(prefix_error)? {
                    let part = keys.entry(key.clone()).or_insert_with(|| Partition {
                        key: Some(key),
                        ops: Vec::new(),
                        raw: Vec::new(),
                    });
                    let op: KeyOperation = KeyModel::operation(&op);
                    part.ops.push(op);
                    part.raw.push(i);
                }
            }
            // The history is linearizable iff every key's is, so one key that fails
            // decides. Keys are searched with budgets growing tenfold, the undecided ones
            // again each round, until one fails or the budget is spent: a hard key (the
            // search is exponential on some) need not hide an easy failure, and the rounds
            // before the last cost a tenth of it.
            let mut undecided: Vec<&String> = keys.keys().collect();
            let mut round_budget = budget.min(FIRST_BUDGET);
            let mut decided: BTreeMap<&String, Found> = BTreeMap::new();
            loop {
                undecided.retain(|key| match check_partition(&KeyModel, &keys[*key], raws, round_budget) {
                    Found::Unknown => true,
                    result => {
                        decided.insert(key, result);
                        false
                    }
                });
                let fails = decided.values().any(|result| matches!(result, Found::Not(_)));
                if undecided.is_empty() || round_budget >= budget || fails {
                    let left = if fails { || Found::NotNeeded } else { || Found::Unknown };
                    for key in undecided {
                        decided.insert(key, left());
                    }
                    break;
                }
                round_budget = round_budget.saturating_mul(10).min(budget);
            }
            found.extend(decided.into_iter().map(|(key, result)| (Some(key.clone()), result)));
        }
        ModelName::Register => found.push((
            None,
            read_and_check(&RegisterReading { initial: Value::Nil, knossos: false }, raws, budget)
                .map_err(prefix_error)?,
        )),
        ModelName::CasRegister => {
            let initial = parse_initial(options.initial.as_deref())?;
            found.push((
                None,
                read_and_check(&RegisterReading { initial, knossos: true }, raws, budget)
                    .map_err(prefix_error)?,
            ));
        }
        ModelName::Mutex => {
            found.push((None, read_and_check(&MutexReading, raws, budget).map_err(prefix_error)?))
        }
        ModelName::Set => {
            found.push((None, read_and_check(&SetReading, raws, budget).map_err(prefix_error)?))
        }
        ModelName::FifoQueue => {
            found.push((None, read_and_check(&QueueReading, raws, budget).map_err(prefix_error)?))
        }
    }
    let objects = found.len();
    let mut undecided = Vec::new();
    let mut not_needed = Vec::new();
    let mut explanations = Vec::new();
    for (key, result) in found {
        match result {
            Found::Linearizable => {}
            Found::Unknown => undecided.push(key.unwrap_or_else(|| "-".to_string())),
            Found::NotNeeded => not_needed.push(key.unwrap_or_else(|| "-".to_string())),
            Found::Not(explanation) => explanations.push(*explanation),
        }
    }
    let (verdict, exit) = if !explanations.is_empty() {
        ("not-linearizable", 1)
    } else if !undecided.is_empty() {
        ("unknown", EXIT_UNKNOWN)
    } else {
        ("linearizable", 0)
    };
    let report = Report {
        file: shown.to_string(),
        model: model_name(options.model),
        verdict,
        operations: raws.len(),
        processes: raws.iter().map(|op| op.process).collect::<BTreeSet<_>>().len(),
        unknown_outcomes: raws
            .iter()
            .filter(|op| matches!(op.completion, None | Some((Kind::Info, _))))
            .count(),
        failed: raws.iter().filter(|op| matches!(op.completion, Some((Kind::Fail, _)))).count(),
        skipped_non_client_events: paired.skipped,
        objects,
        budget,
        timeout_s: options.timeout_s,
        undecided,
        not_needed,
        explanations,
    };
    let output = if options.json {
        serde_json::to_string_pretty(&report).expect("reports serialize") + "\n"
    } else {
        text_report(&report, options, paired.unit)
    };
    Ok(Verdict { output, exit })
}

fn read_and_check<R: Reading>(reading: &R, raws: &[RawOp], budget: usize) -> Result<Found, String>
where
    <R::M as Model>::Input: Clone,
    <R::M as Model>::Output: Clone,
{
    let mut read = Partition { key: None, ops: Vec::new(), raw: Vec::new() };
    for (i, raw) in raws.iter().enumerate() {
        if let Some(op) = reading.read(raw)? {
            read.ops.push(op);
            read.raw.push(i);
        }
    }
    let mut part = Partition { key: None, ops: Vec::new(), raw: Vec::new() };
    for (op, raw) in read.ops.iter().zip(&read.raw) {
        if reading.keep(op, &read.ops) {
            part.ops.push(op.clone());
            part.raw.push(*raw);
        }
    }
    Ok(check_partition(&reading.model(), &part, raws, budget))
}

/// `--initial`: an integer, nil (or null), or else a string (quotes optional).
fn parse_initial(initial: Option<&str>) -> Result<Value, String> {
    let Some(text) = initial.map(str::trim) else { return Ok(Value::Nil) };
    if text.is_empty() {
        return Err("--initial: give a value: an integer, nil, or a string".into());
    }
    Ok(match text {
        "nil" | "null" => Value::Nil,
        _ => match text.parse::<i64>() {
            Ok(n) => Value::Int(n),
            Err(_) => Value::text(text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)),
        },
    })
}

/// How many operations before the failing one a stretch starts with, when the history
/// has a quiet moment early enough.
const CONTEXT_MIN: usize = 3;

/// How many operations of a stretch the text shows (the last ones, next to the failure);
/// `--format json` has them all.
const SHOWN_MAX: usize = 30;

fn text_report(report: &Report, options: &Options, unit: &str) -> String {
    let mut out = String::new();
    let head = match report.verdict {
        "linearizable" => "linearizable",
        "not-linearizable" => "NOT linearizable",
        _ => "UNKNOWN",
    };
    let _ = writeln!(out, "{head}  {} (model {})", report.file, report.model);
    let _ = writeln!(
        out,
        "history  {} operations by {} process(es): {} with an unknown outcome (info or no completion), {} failed{}",
        report.operations,
        report.processes,
        report.unknown_outcomes,
        report.failed,
        if report.model == "kv" { format!("; {} key(s) checked apart", report.objects) } else { String::new() }
    );
    if report.skipped_non_client_events > 0 {
        let _ = writeln!(
            out,
            "ignored  {} nemesis events (of processes that are not integers, so not clients)",
            report.skipped_non_client_events
        );
    }
    let _ = writeln!(out, "limits   {}", limits_line(options));
    if !report.undecided.is_empty() {
        let which = if report.model == "kv" {
            format!(" on keys {}", report.undecided.join(", "))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "undecided: the search visited {} configurations{which} without deciding; a larger --budget may decide",
            report.budget
        );
    }
    if !report.not_needed.is_empty() {
        let _ = writeln!(
            out,
            "not decided: keys {} (another key fails already, and linearizability is per key)",
            report.not_needed.join(", ")
        );
    }
    for explanation in &report.explanations {
        explanation_text(&mut out, explanation, unit);
    }
    out
}

fn explanation_text(out: &mut String, e: &Explanation, unit: &str) {
    let key = e.key.as_ref().map_or(String::new(), |k| format!("key {k:?}: "));
    let _ = writeln!(
        out,
        "\n{key}no linearization explains the history by {}, where this completes:\n    {}  {}",
        e.fails_at, e.could_not_place.interval, e.could_not_place.operation
    );
    let _ = writeln!(
        out,
        "stretch  from {} (nothing was in flight then) to {}: {} operation(s), starting from {}",
        e.stretch_from,
        e.fails_at,
        e.operations.len(),
        if e.states_before.len() == 1 {
            format!("state {}", e.states_before[0])
        } else {
            format!("any of the states {}", e.states_before.join(", "))
        }
    );
    let _ = writeln!(out, "operations ({unit}: invocation-completion; '-' with no end: unknown outcome, may take effect any time after)");
    let hidden = e.operations.len().saturating_sub(SHOWN_MAX);
    if hidden > 0 {
        let _ = writeln!(
            out,
            "    ... {hidden} earlier operations of the stretch (--format json lists them all)"
        );
    }
    for op in &e.operations[hidden..] {
        let marker =
            if op.operation == e.could_not_place.operation && op.interval == e.could_not_place.interval {
                "  <- cannot be placed"
            } else {
                ""
            };
        let _ = writeln!(out, "    {:<14} {}{marker}", op.interval, op.operation);
    }
    let _ = writeln!(out, "longest linearizable prefix, in the order it takes effect (state after each):");
    let hidden = e.linearized.len().saturating_sub(SHOWN_MAX);
    if hidden > 0 {
        let _ = writeln!(out, "    ... {hidden} earlier operations");
    }
    if e.linearized.is_empty() {
        let _ = writeln!(out, "    (nothing: the stretch's first operation already cannot be placed)");
    }
    for op in &e.linearized[hidden..] {
        let running = if op.still_running { "  (not known to have taken effect; placed here)" } else { "" };
        let _ = writeln!(out, "    {:<14} {:<40} {}{running}", op.interval, op.operation, op.state_after);
    }
    let _ = writeln!(
        out,
        "it leaves state {}; next, {} cannot be placed: its result fits no order of the operations that may come before it",
        e.state, e.could_not_place.operation
    );
    if let Some(note) = &e.note {
        let _ = writeln!(out, "note     {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_apart_by_their_first_characters() {
        assert_eq!(detect("{\"process\": 0}"), InputFormat::Jsonl);
        assert_eq!(detect("  [{\"process\": 0}]"), InputFormat::Json);
        assert_eq!(detect("{:process 0}"), InputFormat::Edn);
        assert_eq!(detect("[{:process 0}]"), InputFormat::Edn);
        assert_eq!(detect("; a comment\n{:process 0}"), InputFormat::Edn);
        assert_eq!(detect("({:process 0})"), InputFormat::Edn);
    }

    #[test]
    fn initial_values_read_as_integers_nil_or_text() {
        assert_eq!(parse_initial(Some("0")), Ok(Value::Int(0)));
        assert_eq!(parse_initial(Some("nil")), Ok(Value::Nil));
        assert_eq!(parse_initial(Some("\"a\"")), Ok(Value::text("a")));
        assert_eq!(parse_initial(None), Ok(Value::Nil));
    }
}
