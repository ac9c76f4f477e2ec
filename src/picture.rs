//! Pictures of a run: what `--svg` and `--html` draw.
//!
//! A picture is made from a second, identical run of the scenario (the same seed gives the
//! same run) with the full trace streamed as JSON Lines into a [`Capture`]: so it works for
//! every protocol, needs nothing of the first run, and keeps memory bounded however long
//! the run is. A capture keeps at most `max_events` trace records (the last ones, which
//! are those nearest a violation, since a run stops at its first), or those inside a time
//! window, and counts what it left out. Causality is on for that run, so events carry
//! their Lamport and vector stamps.
//!
//! The diagram ([`svg`]): one lane per node, virtual time downwards, rows by step (a gap
//! grows with the virtual time between steps, so bursts stay readable and long waits are
//! visible), an arrow per delivered message, a cross per lost one, marks for timers,
//! crashes and restarts, grey spans while a node is down, shaded bands between lanes a
//! partition cuts, and the violating step in red.

use crate::runner::{self, Summary};
use crate::scenario::Scenario;
use protocols::ClientEvent;
use serde_json::Value;
use sim_core::{Causality, NodeEventKind, TraceFormat, TraceMode};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Write};

/// Default for `--max-events`.
pub const MAX_EVENTS_DEFAULT: usize = 3_000;
/// The most `--max-events` allows (a bigger diagram is not readable, and a browser slows).
pub const MAX_EVENTS_MAX: usize = 100_000;

/// What to draw of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// At most this many trace records are drawn (the last ones).
    pub max_events: usize,
    /// Only records inside this virtual-time window, in microseconds (both ends included).
    pub window: Option<(u64, u64)>,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_events: MAX_EVENTS_DEFAULT, window: None }
    }
}

/// Reads `--window FROM_MS..TO_MS` (milliseconds, decimals allowed) as microseconds.
pub fn parse_window(text: &str) -> Result<(u64, u64), String> {
    let usage = "expected FROM_MS..TO_MS, e.g. 10..250 or 0.5..12.25 (virtual milliseconds)";
    let (from, to) = text.split_once("..").ok_or_else(|| format!("{text:?}: {usage}"))?;
    let ms = |part: &str| -> Result<u64, String> {
        let value: f64 = part.trim().parse().map_err(|_| format!("{part:?} is not a number: {usage}"))?;
        if !value.is_finite() || !(0.0..=1e12).contains(&value) {
            return Err(format!("{part:?} is out of range: 0 to 1e12 ms"));
        }
        Ok((value * 1000.0).round() as u64)
    };
    let (from, to) = (ms(from)?, ms(to)?);
    if from > to {
        return Err(format!("{text:?}: the window ends before it starts"));
    }
    Ok((from, to))
}

/// Per node: what it did over the whole run (not only the records drawn).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeCounts {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub timers: u64,
    pub crashes: u64,
}

/// The trace records of a run, as many as a picture keeps, and what it knows besides.
pub struct Capture {
    options: Options,
    /// Bytes of a record not yet ended by a newline.
    partial: Vec<u8>,
    /// The records kept, in order.
    pub records: VecDeque<Value>,
    /// Records in the window (or the run) that were not kept: the earliest ones.
    pub left_out: u64,
    /// Records outside the window.
    pub outside_window: u64,
    pub counts: Vec<NodeCounts>,
    /// Lamport and vector stamps of each send and receive, by message id: (send, receive).
    pub stamps: BTreeMap<u64, (Option<Stamp>, Option<Stamp>)>,
    /// The node names, as `dsim list` gives them.
    pub lanes: Vec<String>,
    /// The run's client history (kv protocols), for the history timeline.
    pub client_history: Vec<ClientEvent>,
    /// The table of events with their Lamport and vector stamps (`--explain-clocks`).
    pub clocks: String,
    /// The judged run.
    pub summary: Summary,
}

/// How many events the report's clock table shows.
const CLOCK_ROWS_MAX: usize = 200;

/// A send or receive's ground-truth clocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub lamport: u64,
    pub vector: Vec<u32>,
}

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let line = std::mem::take(&mut self.partial);
            let record: Value = serde_json::from_slice(&line).map_err(io::Error::other)?;
            self.take(record);
        }
        self.partial.extend_from_slice(rest);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A record's field as a number (node ids, times, message ids).
fn num(record: &Value, field: &str) -> Option<u64> {
    record.get(field).and_then(Value::as_u64)
}

/// A record's event kind (`send`, `deliver`, ...).
pub fn kind(record: &Value) -> &str {
    record.get("event").and_then(Value::as_str).unwrap_or("")
}

impl Capture {
    fn new(options: Options, lanes: Vec<String>, summary: Summary) -> Capture {
        Capture {
            options,
            partial: Vec::new(),
            records: VecDeque::new(),
            left_out: 0,
            outside_window: 0,
            counts: vec![NodeCounts::default(); lanes.len()],
            stamps: BTreeMap::new(),
            lanes,
            client_history: Vec::new(),
            clocks: String::new(),
            summary,
        }
    }

    fn take(&mut self, record: Value) {
        let count = |counts: &mut Vec<NodeCounts>, node: Option<u64>, f: fn(&mut NodeCounts)| {
            if let Some(c) = node.and_then(|n| counts.get_mut(n as usize)) {
                f(c);
            }
        };
        match kind(&record) {
            "send" => count(&mut self.counts, num(&record, "from"), |c| c.sent += 1),
            "deliver" => count(&mut self.counts, num(&record, "to"), |c| c.received += 1),
            "drop" => count(&mut self.counts, num(&record, "from"), |c| c.lost += 1),
            "timer-fire" => count(&mut self.counts, num(&record, "node"), |c| c.timers += 1),
            "crash" => count(&mut self.counts, num(&record, "node"), |c| c.crashes += 1),
            _ => {}
        }
        let time = num(&record, "time").unwrap_or(0);
        if let Some((from, to)) = self.options.window {
            if time < from || time > to {
                self.outside_window += 1;
                return;
            }
        }
        if self.records.len() == self.options.max_events {
            self.records.pop_front();
            self.left_out += 1;
        }
        self.records.push_back(record);
    }

    fn note_stamps(&mut self, causality: &Causality) {
        for event in causality.events() {
            let (msg_id, is_send) = match &event.kind {
                NodeEventKind::Send { msg_id, .. } => (msg_id.0, true),
                NodeEventKind::Receive { msg_id, .. } => (msg_id.0, false),
                _ => continue,
            };
            let stamp = Stamp { lamport: event.lamport.0, vector: causality.vector(event.id).to_vec() };
            let entry = self.stamps.entry(msg_id).or_default();
            if is_send {
                entry.0 = Some(stamp);
            } else {
                entry.1 = Some(stamp);
            }
        }
    }

    /// The record of the violating step's last event, if the run failed and it was kept.
    pub fn violation_step(&self) -> Option<u64> {
        self.summary.outcome.violation().map(|v| v.step)
    }
}

/// Runs `scenario` with `seed` again and captures what a picture of it needs; `summary`
/// is the judged run (the same run: same scenario, same seed).
pub fn capture(scenario: &Scenario, seed: u64, options: Options, summary: Summary) -> io::Result<Capture> {
    let mut instance = runner::instance(scenario, seed, TraceMode::Full, true);
    let lanes = instance.node_names.clone();
    let mut capture = Capture::new(options, lanes, summary);
    let simulation = &mut instance.simulation;
    while !simulation.step() {
        simulation.drain_trace(TraceFormat::JsonLines, &mut capture)?;
    }
    simulation.write_trace(TraceFormat::JsonLines, &mut capture)?;
    if let Some(causality) = simulation.causality() {
        capture.note_stamps(causality);
        capture.clocks = runner::explain_clocks(causality, CLOCK_ROWS_MAX);
    }
    if let Some(history) = &instance.client_history {
        capture.client_history = history(simulation.as_ref());
    }
    Ok(capture)
}

/// Escapes text for XML and HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Microseconds as the trace shows them (`25.543ms`).
pub fn ms(us: u64) -> String {
    format!("{}.{:03}ms", us / 1000, us % 1000)
}

/// A message's kind: its variant's name (`Request`), or the whole value if short.
pub fn message_kind(msg: &Value) -> String {
    match msg {
        Value::Object(map) if map.len() == 1 => map.keys().next().cloned().unwrap_or_default(),
        Value::String(s) => s.clone(),
        Value::Object(map) => map.get("kind").and_then(Value::as_str).unwrap_or("message").to_string(),
        _ => "message".to_string(),
    }
}

/// Colours for message kinds, in order of first appearance; readable on white.
const PALETTE: [&str; 8] =
    ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e"];

const LANE_GAP: f64 = 150.0;
const LEFT: f64 = 200.0;
const TOP: f64 = 60.0;
const ROW: f64 = 20.0;

/// The clock stamps of one node's events at one step: where (x, y), on which side of the
/// lane (true: right), and the stamps.
type StampMark = (f64, f64, bool, Vec<String>);

/// The diagram's geometry: a lane's x, a step's y.
struct Layout {
    rows: BTreeMap<u64, f64>,
    bottom: f64,
}

impl Layout {
    /// One row per step; the gap between rows grows with the virtual time between them.
    fn new(records: &VecDeque<Value>) -> Layout {
        let mut rows = BTreeMap::new();
        let mut y = TOP + ROW;
        let mut last: Option<(u64, u64)> = None;
        for record in records {
            let (step, time) = (num(record, "step").unwrap_or(0), num(record, "time").unwrap_or(0));
            if rows.contains_key(&step) {
                continue;
            }
            if let Some((_, last_time)) = last {
                let dt_ms = time.saturating_sub(last_time) as f64 / 1000.0;
                y += ROW + (6.0 * (1.0 + dt_ms).log2()).min(60.0);
            }
            rows.insert(step, y);
            last = Some((step, time));
        }
        Layout { rows, bottom: y + 2.0 * ROW }
    }

    fn x(node: u64) -> f64 {
        LEFT + node as f64 * LANE_GAP
    }

    fn y(&self, step: u64) -> f64 {
        self.rows.get(&step).copied().unwrap_or(TOP)
    }
}

/// Whether a partition (as the trace records it) cuts the link `a` -> `b`.
fn cuts(partition: &Value, a: u64, b: u64) -> bool {
    let nodes = |field: &str| -> Vec<u64> {
        partition
            .get(field)
            .and_then(Value::as_array)
            .map_or(Vec::new(), |v| v.iter().filter_map(Value::as_u64).collect())
    };
    match partition.get("kind").and_then(Value::as_str) {
        Some("symmetric") => {
            let groups: Vec<Vec<u64>> =
                partition.get("groups").and_then(Value::as_array).map_or(Vec::new(), |g| {
                    g.iter()
                        .filter_map(Value::as_array)
                        .map(|g| g.iter().filter_map(Value::as_u64).collect())
                        .collect()
                });
            let group_of = |n: u64| groups.iter().position(|g| g.contains(&n));
            group_of(a) != group_of(b)
        }
        Some("one-way") => {
            let (from, to) = (nodes("from"), nodes("to"));
            (from.contains(&a) && to.contains(&b)) || (from.contains(&b) && to.contains(&a))
        }
        _ => false,
    }
}

/// The space-time diagram of a capture, as a standalone SVG document.
pub fn svg(capture: &Capture) -> String {
    let mut drawing = Drawing::new(capture);
    drawing.lanes();
    drawing.axis();
    for record in &capture.records {
        drawing.record(record);
    }
    drawing.stamps();
    drawing.in_flight();
    drawing.still_open();
    drawing.finish()
}

/// A message send the diagram has seen: at which step, when.
#[derive(Clone, Copy)]
struct Sent {
    step: u64,
    time: u64,
}

/// A diagram being drawn: the layout, what earlier records left open (sends, crashes,
/// partitions, cuts), and the SVG written so far, in two layers (bands under marks).
struct Drawing<'a> {
    capture: &'a Capture,
    layout: Layout,
    kinds: Vec<String>,
    sends: BTreeMap<u64, Sent>,
    /// A duplicate copy's id -> its original's.
    copies: BTreeMap<u64, u64>,
    /// Nodes down, since the step they crashed at.
    down: BTreeMap<u64, u64>,
    /// Partitions in force, by id: since which step, and the partition.
    partitions: BTreeMap<u64, (u64, Value)>,
    stamp_marks: BTreeMap<(u64, u64), StampMark>,
    /// Points of each named cut (`cut:NAME` local events), by lane.
    cut_points: BTreeMap<String, BTreeMap<u64, (f64, f64)>>,
    bands: String,
    body: String,
}

impl<'a> Drawing<'a> {
    fn new(capture: &'a Capture) -> Drawing<'a> {
        Drawing {
            capture,
            layout: Layout::new(&capture.records),
            kinds: message_kinds(&capture.records),
            sends: BTreeMap::new(),
            copies: BTreeMap::new(),
            down: BTreeMap::new(),
            partitions: BTreeMap::new(),
            stamp_marks: BTreeMap::new(),
            cut_points: BTreeMap::new(),
            bands: String::new(),
            body: String::new(),
        }
    }

    fn n_lanes(&self) -> usize {
        self.capture.lanes.len().max(1)
    }

    /// The x just right of the last lane.
    fn right(&self) -> f64 {
        LEFT + (self.n_lanes() - 1) as f64 * LANE_GAP
    }

    fn colour(&self, kind: &str) -> &'static str {
        self.kinds.iter().position(|k| k == kind).map_or("#333", |i| PALETTE[i % PALETTE.len()])
    }

    fn lanes(&mut self) {
        for (i, name) in self.capture.lanes.iter().enumerate() {
            let x = Layout::x(i as u64);
            let _ = write!(
                self.body,
                r#"<g class="lane-group" data-node="{i}"><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text><text x="{x:.1}" y="{:.1}" text-anchor="middle" class="axis">n{i}</text><line class="lane" data-node="{i}" x1="{x:.1}" y1="{TOP:.1}" x2="{x:.1}" y2="{:.1}"/></g>"#,
                TOP - 26.0,
                escape(name),
                TOP - 12.0,
                self.layout.bottom
            );
        }
    }

    /// The time axis: a label wherever virtual time moved on (and there is room).
    fn axis(&mut self) {
        let mut last_time = None;
        let mut last_label_y = f64::MIN;
        for record in &self.capture.records {
            let (step, time) = (num(record, "step").unwrap_or(0), num(record, "time").unwrap_or(0));
            let y = self.layout.y(step);
            if last_time != Some(time) && y - last_label_y >= 11.0 {
                let _ =
                    write!(self.body, r#"<text class="axis" x="6" y="{:.1}">{}</text>"#, y + 3.0, ms(time));
                last_label_y = y;
            }
            last_time = Some(time);
        }
    }

    fn record(&mut self, record: &Value) {
        let step = num(record, "step").unwrap_or(0);
        let time = num(record, "time").unwrap_or(0);
        let node = num(record, "node").unwrap_or(0);
        match kind(record) {
            "send" => {
                let id = num(record, "msg_id").unwrap_or(0);
                self.sends.insert(id, Sent { step, time });
            }
            "duplicate" => {
                let (id, copy) = (num(record, "msg_id").unwrap_or(0), num(record, "copy_id").unwrap_or(0));
                self.copies.insert(copy, id);
            }
            "deliver" => self.deliver(record, step, time),
            "drop" => self.drop(record, step, time),
            "timer-fire" => {
                let timer = record.get("timer").map(|t| t.to_string()).unwrap_or_default();
                let _ = write!(
                    self.body,
                    r##"<circle class="timer" data-step="{step}" cx="{:.1}" cy="{:.1}" r="4" fill="#fff" stroke="#555"><title>n{node} timer fired at {} (#{step}): {}</title></circle>"##,
                    Layout::x(node),
                    self.layout.y(step),
                    ms(time),
                    escape(&timer)
                );
            }
            "crash" => {
                self.down.insert(node, step);
                let (x, y) = (Layout::x(node), self.layout.y(step));
                let _ = write!(
                    self.body,
                    r##"<path class="crash" data-step="{step}" d="{}" stroke="#000" stroke-width="3"><title>n{node} crashed at {} (#{step})</title></path>"##,
                    cross_path(x, y, 7.0),
                    ms(time)
                );
            }
            "restart" => self.restart(node, step, time),
            "partition" => {
                let id = num(record, "partition_id").unwrap_or(0);
                self.partitions.insert(id, (step, record.get("partition").cloned().unwrap_or(Value::Null)));
            }
            "heal" => {
                let id = num(record, "partition_id").unwrap_or(0);
                if let Some((start, partition)) = self.partitions.remove(&id) {
                    self.partition(id, &partition, self.layout.y(start), self.layout.y(step));
                }
            }
            "network-healed" => {
                for (id, (start, partition)) in std::mem::take(&mut self.partitions) {
                    self.partition(id, &partition, self.layout.y(start), self.layout.y(step));
                }
            }
            "local" => self.local(record, node, step, time),
            _ => {}
        }
    }

    /// The send a delivered or lost copy `id` belongs to, if it was drawn.
    fn sent(&self, id: u64) -> Option<Sent> {
        self.sends.get(&self.copies.get(&id).copied().unwrap_or(id)).copied()
    }

    fn deliver(&mut self, record: &Value, step: u64, time: u64) {
        let (from, to, id) = (
            num(record, "from").unwrap_or(0),
            num(record, "to").unwrap_or(0),
            num(record, "msg_id").unwrap_or(0),
        );
        let duplicate = self.copies.contains_key(&id);
        let sent = self.sent(id);
        let (x1, x2, y) = (Layout::x(from), Layout::x(to), self.layout.y(step));
        let (y1, sent_text) = match sent {
            Some(s) => (self.layout.y(s.step), format!("sent {} (#{})", ms(s.time), s.step)),
            None => (TOP, "sent before the part drawn".to_string()),
        };
        let msg = record.get("msg").cloned().unwrap_or(Value::Null);
        let stamps = self.capture.stamps.get(&id);
        let clocks = stamps
            .map(|(s, r)| format!("\nclocks: send {} -> receive {}", stamp_text(s), stamp_text(r)))
            .unwrap_or_default();
        let _ = write!(
            self.body,
            r#"<line class="{}" data-msg="{id}" data-from="{from}" data-to="{to}" data-step="{step}" stroke="{}" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y:.1}" marker-end="url(#head)"><title>m{id}{} n{from} -> n{to}: {}
{sent_text}, received {} (#{step}){}</title></line>"#,
            if duplicate { "arrow dup" } else { "arrow" },
            self.colour(&message_kind(&msg)),
            if duplicate { " (a duplicate copy)" } else { "" },
            escape(&msg.to_string()),
            ms(time),
            escape(&clocks),
        );
        if let Some((Some(send_stamp), Some(receive_stamp))) = stamps {
            // Each stamp beside its event, on the side of the lane away from the arrow;
            // events of one node at one step share one label.
            let rightwards = x2 >= x1;
            let sent_step = sent.map_or(step, |s| s.step);
            for (node, at, x, y, away_right, stamp) in [
                (from, sent_step, x1, y1, !rightwards, send_stamp),
                (to, step, x2, y, rightwards, receive_stamp),
            ] {
                let mark = self.stamp_marks.entry((node, at)).or_insert((x, y, away_right, Vec::new()));
                let text = stamp_text(&Some(stamp.clone()));
                if !mark.3.contains(&text) {
                    mark.3.push(text);
                }
            }
        }
    }

    /// A lost copy: a dashed line from its send to a cross halfway to its target.
    fn drop(&mut self, record: &Value, step: u64, time: u64) {
        let (from, to, id) = (
            num(record, "from").unwrap_or(0),
            num(record, "to").unwrap_or(0),
            num(record, "msg_id").unwrap_or(0),
        );
        let (x1, x2) = (Layout::x(from), Layout::x(to));
        let y1 = self.sent(id).map_or(TOP, |s| self.layout.y(s.step));
        let (cx, cy) = ((x1 + x2) / 2.0, self.layout.y(step).max(y1 + ROW / 2.0));
        let reason = record.get("reason").map(|r| r.to_string()).unwrap_or_default();
        let _ = write!(
            self.body,
            r#"<g class="drop" data-msg="{id}" data-step="{step}"><title>m{id} n{from} -> n{to} lost at {} (#{step}): {}</title><line class="lost" x1="{x1:.1}" y1="{y1:.1}" x2="{cx:.1}" y2="{cy:.1}"/><path class="cross" d="{}"/></g>"#,
            ms(time),
            escape(reason.trim_matches('"')),
            cross_path(cx, cy, 5.0)
        );
    }

    fn restart(&mut self, node: u64, step: u64, time: u64) {
        let y = self.layout.y(step);
        let from = self.down.remove(&node).map_or(TOP, |s| self.layout.y(s));
        let x = Layout::x(node);
        self.down_span(node, from, y);
        let _ = write!(
            self.body,
            r##"<path class="restart" data-step="{step}" d="M{:.1},{:.1} L{:.1},{:.1} L{x:.1},{:.1} z" fill="#2ca02c"><title>n{node} restarted at {} (#{step})</title></path>"##,
            x - 6.0,
            y + 5.0,
            x + 6.0,
            y + 5.0,
            y - 6.0,
            ms(time)
        );
    }

    fn down_span(&mut self, node: u64, from: f64, to: f64) {
        let _ = write!(
            self.bands,
            r#"<rect class="down" x="{:.1}" y="{from:.1}" width="16" height="{:.1}"/>"#,
            Layout::x(node) - 8.0,
            (to - from).max(0.0)
        );
    }

    /// A partition's shaded band between each pair of neighbouring lanes it cuts.
    fn partition(&mut self, id: u64, partition: &Value, y1: f64, y2: f64) {
        for a in 0..self.n_lanes().saturating_sub(1) as u64 {
            if cuts(partition, a, a + 1) {
                let _ = write!(
                    self.bands,
                    r#"<rect class="cut" data-partition="{id}" x="{:.1}" y="{y1:.1}" width="{:.1}" height="{:.1}"><title>partition p{id}: {}</title></rect>"#,
                    Layout::x(a) + 20.0,
                    LANE_GAP - 40.0,
                    (y2 - y1).max(2.0),
                    escape(&partition.to_string())
                );
            }
        }
    }

    /// A node's own event (`ctx.local_event`): a square with its label beside it. Labels
    /// `cut:NAME` (a snapshot's recorded states) are also joined across the lanes into one
    /// line per name.
    fn local(&mut self, record: &Value, node: u64, step: u64, time: u64) {
        let label = record.get("label").and_then(Value::as_str).unwrap_or("");
        let (x, y) = (Layout::x(node), self.layout.y(step));
        let shown: String = label.chars().take(LABEL_CHARS).collect();
        let _ = write!(
            self.body,
            r##"<g class="local" data-step="{step}"><title>n{node} at {} (#{step}): {}</title><rect x="{:.1}" y="{:.1}" width="6" height="6" fill="#555"/><text class="label" x="{:.1}" y="{:.1}" font-size="9">{}</text></g>"##,
            ms(time),
            escape(label),
            x - 3.0,
            y - 3.0,
            x + 6.0,
            y - 4.0,
            escape(&shown)
        );
        if let Some(name) = label.strip_prefix("cut:") {
            self.cut_points.entry(name.trim().to_string()).or_default().insert(node, (x, y));
        }
    }

    fn stamps(&mut self) {
        for ((_, step), (x, y, away_right, texts)) in &self.stamp_marks {
            let (x, anchor) = if *away_right { (x + 6.0, "start") } else { (x - 6.0, "end") };
            let _ = write!(
                self.body,
                r#"<text class="stamp" data-step="{step}" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                y + 3.0,
                escape(&texts.join(" / "))
            );
        }
    }

    /// Messages still in flight when the part drawn ends: a short dashed stub.
    fn in_flight(&mut self) {
        let ended: std::collections::BTreeSet<u64> = self
            .capture
            .records
            .iter()
            .filter(|r| matches!(kind(r), "deliver" | "drop"))
            .filter_map(|r| num(r, "msg_id"))
            .collect();
        for record in &self.capture.records {
            let id = num(record, "msg_id").unwrap_or(0);
            if kind(record) != "send" || ended.contains(&id) {
                continue;
            }
            let (from, to) = (num(record, "from").unwrap_or(0), num(record, "to").unwrap_or(0));
            let step = num(record, "step").unwrap_or(0);
            let (x1, y1) = (Layout::x(from), self.layout.y(step));
            let x2 = x1 + (Layout::x(to) - x1) * 0.3;
            let msg = record.get("msg").cloned().unwrap_or(Value::Null);
            let _ = write!(
                self.body,
                r#"<line class="in-flight" data-msg="{id}" data-step="{step}" stroke="{}" stroke-dasharray="3 3" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{:.1}"><title>m{id} n{from} -> n{to}: {}
sent {} (#{step}), still in flight when the part drawn ends</title></line>"#,
                self.colour(&message_kind(&msg)),
                y1 + ROW,
                escape(&msg.to_string()),
                ms(num(record, "time").unwrap_or(0)),
            );
        }
    }

    /// What is still down, cut or recorded at the end of the part drawn.
    fn still_open(&mut self) {
        let bottom = self.layout.bottom;
        for (node, step) in std::mem::take(&mut self.down) {
            let from = self.layout.y(step);
            self.down_span(node, from, bottom);
        }
        for (id, (start, partition)) in std::mem::take(&mut self.partitions) {
            self.partition(id, &partition, self.layout.y(start), bottom);
        }
        for (name, points) in std::mem::take(&mut self.cut_points) {
            let path: Vec<String> = points.values().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let (x, y) = points.values().last().copied().unwrap_or((LEFT, TOP));
            let _ = write!(
                self.body,
                r##"<g class="snapshot-cut"><title>cut {}: where each process recorded its state</title><polyline points="{}" fill="none" stroke="#ff7f0e" stroke-width="2" stroke-dasharray="6 3"/><text x="{:.1}" y="{:.1}" fill="#ff7f0e" font-size="10">cut {}</text></g>"##,
                escape(&name),
                path.join(" "),
                x + 8.0,
                y + 12.0,
                escape(&name)
            );
        }
    }

    /// The document: header, bands, marks, the violation, the legend, and a note on what
    /// was left out.
    fn finish(self) -> String {
        let (width, height) = (self.right() + 260.0, self.layout.bottom + 30.0);
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" id="diagram" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
        );
        out.push_str(SVG_STYLE);
        out.push_str(&self.bands);
        out.push_str(&self.body);
        out.push_str(&self.violation());
        out.push_str(&self.legend());
        out.push_str("</svg>\n");
        out
    }

    fn violation(&self) -> String {
        let Some(violation) = self.capture.summary.outcome.violation() else {
            return String::new();
        };
        let drawn = self.layout.rows.contains_key(&violation.step);
        let y = if drawn { self.layout.y(violation.step) } else { self.layout.bottom - ROW };
        let first_line = violation.message.lines().next().unwrap_or("");
        format!(
            r##"<g id="violation" data-step="{}"><line class="violation" x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}" fill="#d62728" font-weight="bold">{} violated at {} (#{})</text><title>{}</title></g>"##,
            violation.step,
            LEFT - 20.0,
            self.right() + 20.0,
            LEFT - 20.0,
            y + 16.0,
            escape(&violation.invariant),
            violation.time,
            violation.step,
            escape(&format!("{}: {first_line}", violation.invariant))
        )
    }

    fn legend(&self) -> String {
        let mut out = String::new();
        let x = self.right() + 40.0;
        for (i, kind) in self.kinds.iter().enumerate() {
            let y = TOP + 16.0 * i as f64;
            let _ = write!(
                out,
                r#"<g class="legend"><line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text></g>"#,
                x + 20.0,
                PALETTE[i % PALETTE.len()],
                x + 26.0,
                y + 4.0,
                escape(kind)
            );
        }
        let capture = self.capture;
        let left_out = capture.left_out + capture.outside_window;
        if left_out > 0 {
            let why = match capture.options.window {
                Some((from, to)) => {
                    format!(
                        "{left_out} events outside {}..{} or over --max-events left out",
                        ms(from),
                        ms(to)
                    )
                }
                None => format!(
                    "the first {left_out} events left out (--max-events {})",
                    capture.options.max_events
                ),
            };
            let _ = write!(
                out,
                r##"<text id="left-out" x="{LEFT:.1}" y="14" fill="#a00">{}</text>"##,
                escape(&why)
            );
        }
        out
    }
}

/// Characters of a local event's label drawn beside it (the tooltip has it whole).
const LABEL_CHARS: usize = 40;

const SVG_STYLE: &str = "<style>.lane{stroke:#999;stroke-width:1}.arrow{stroke-width:1.4;fill:none}.dup{stroke-dasharray:5 3}\
     .lost{stroke:#d62728;stroke-dasharray:2 2;stroke-width:1.2}.cross{stroke:#d62728;stroke-width:2}\
     .down{fill:#000;opacity:0.12}.cut{fill:#ff9896;opacity:0.35}.stamp{fill:#555;font-size:9px}\
     .violation{stroke:#d62728;stroke-width:2}.axis{fill:#666;font-size:9px}.label{fill:#333}</style>\
     <defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" \
     orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"context-stroke\"/></marker></defs>";

/// An X of half-size `r` centred on (x, y), as path data.
fn cross_path(x: f64, y: f64, r: f64) -> String {
    format!(
        "M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}",
        x - r,
        y - r,
        x + r,
        y + r,
        x - r,
        y + r,
        x + r,
        y - r
    )
}

/// `L3 [2,2]`: a Lamport stamp and a vector stamp.
fn stamp_text(stamp: &Option<Stamp>) -> String {
    stamp.as_ref().map_or("?".to_string(), |s| {
        let vector: Vec<String> = s.vector.iter().map(u32::to_string).collect();
        format!("L{} [{}]", s.lamport, vector.join(","))
    })
}

/// The message kinds of the records drawn, in order of first appearance.
fn message_kinds(records: &VecDeque<Value>) -> Vec<String> {
    let mut kinds: Vec<String> = Vec::new();
    for record in records {
        if kind(record) == "deliver" || kind(record) == "send" {
            let kind = record.get("msg").map(message_kind).unwrap_or_default();
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    kinds
}
