//! The self-contained HTML report (`--html`): one file, no network (all style and script
//! inline, no fonts, no images), that a student reads instead of the trace.
//!
//! For a run: the scenario and its knobs, the outcome with the replay command, the
//! space-time diagram (zoom and pan, clock stamps on or off), per-node counters, the trace
//! as a table filtered by node, kind and time (a click on a row lights its arrow up), the
//! client history on a timeline per key with the operations that cannot be linearized
//! highlighted, and the clock table. For `check-history`: the verdict and the timeline.

use crate::check_history::{self, ModelName, Options as CheckOptions};
use crate::picture::{self, escape, kind, message_kind, ms, Capture};
use crate::scenario::Scenario;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:0 16px 40px;color:#222}
h1{font-size:1.4em;margin:18px 0 4px}h2{font-size:1.15em;margin:26px 0 8px;border-bottom:1px solid #ddd}
pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}
.ok{color:#217a21;font-weight:bold}.bad{color:#c62828;font-weight:bold}.warn{color:#a66300;font-weight:bold}
#view{border:1px solid #ccc;overflow:auto;max-height:75vh;cursor:grab;background:#fff}
#view.dragging{cursor:grabbing}.stamps-off .stamp{display:none}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
#trace tr.sel{background:#fff3b0}#trace tbody tr{cursor:pointer}#trace td.detail{font-family:monospace;word-break:break-all}
.controls{margin:6px 0;display:flex;gap:10px;flex-wrap:wrap;align-items:center}
.hl{stroke-width:5!important;stroke:#ff0!important;filter:drop-shadow(0 0 2px #000)}
.op rect{fill:#cfe3f7;stroke:#4a7fb0}.op.stretch rect{fill:#ffe0b2;stroke:#e08a00}.op.culprit rect{fill:#ffcdd2;stroke:#c62828;stroke-width:2}
.op.unknown rect{stroke-dasharray:4 2}.op text{font-size:10px}
"#;

const SCRIPT: &str = r#"
(function(){
  var view=document.getElementById('view'), svg=view&&view.querySelector('svg');
  if(svg){
    var w=+svg.getAttribute('width'), h=+svg.getAttribute('height'), zoom=1;
    function setZoom(z){zoom=Math.max(0.1,Math.min(8,z));svg.setAttribute('width',w*zoom);svg.setAttribute('height',h*zoom);document.getElementById('zoom-level').textContent=Math.round(zoom*100)+'%';}
    document.getElementById('zoom-in').onclick=function(){setZoom(zoom*1.25);};
    document.getElementById('zoom-out').onclick=function(){setZoom(zoom/1.25);};
    document.getElementById('zoom-fit').onclick=function(){setZoom(Math.min(1,view.clientWidth/w));};
    view.addEventListener('wheel',function(e){if(e.ctrlKey){e.preventDefault();setZoom(zoom*(e.deltaY<0?1.1:1/1.1));}},{passive:false});
    var drag=null;
    view.addEventListener('mousedown',function(e){drag={x:e.clientX,y:e.clientY,l:view.scrollLeft,t:view.scrollTop};view.classList.add('dragging');});
    window.addEventListener('mousemove',function(e){if(drag){view.scrollLeft=drag.l-(e.clientX-drag.x);view.scrollTop=drag.t-(e.clientY-drag.y);}});
    window.addEventListener('mouseup',function(){drag=null;view.classList.remove('dragging');});
    var stamps=document.getElementById('stamps');
    if(stamps){stamps.onchange=function(){view.classList.toggle('stamps-off',!stamps.checked);};}
  }
  var table=document.getElementById('trace');
  if(!table){return;}
  var rows=Array.prototype.slice.call(table.tBodies[0].rows), count=document.getElementById('shown');
  var node=document.getElementById('f-node'), kind=document.getElementById('f-kind'), from=document.getElementById('f-from'), to=document.getElementById('f-to');
  function apply(){
    var n=node.value.trim().toLowerCase(), k=kind.value, a=parseFloat(from.value), b=parseFloat(to.value), shown=0;
    rows.forEach(function(r){
      var t=parseFloat(r.getAttribute('data-ms'));
      var ok=(!n||r.getAttribute('data-nodes').indexOf(n)>=0)&&(!k||r.getAttribute('data-kind')===k)&&(isNaN(a)||t>=a)&&(isNaN(b)||t<=b);
      r.style.display=ok?'':'none'; if(ok){shown++;}
    });
    count.textContent=shown+' of '+rows.length+' rows';
  }
  [node,kind,from,to].forEach(function(el){el.addEventListener('input',apply);el.addEventListener('change',apply);});
  var lit=[];
  rows.forEach(function(r){r.addEventListener('click',function(){
    lit.forEach(function(el){el.classList.remove('hl');}); lit=[];
    rows.forEach(function(x){x.classList.remove('sel');}); r.classList.add('sel');
    var msg=r.getAttribute('data-msg'), sel=msg?'[data-msg="'+msg+'"]':'[data-step="'+r.getAttribute('data-step')+'"]';
    if(svg){lit=Array.prototype.slice.call(svg.querySelectorAll(sel)); lit.forEach(function(el){el.classList.add('hl');});
      if(lit[0]&&lit[0].scrollIntoView){lit[0].scrollIntoView({block:'center',inline:'center'});}}
  });});
  apply();
})();
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n{body}\n<script>{SCRIPT}</script></body></html>\n",
        escape(title)
    )
}

/// The report of a run.
pub fn run_report(scenario: &Scenario, capture: &Capture) -> String {
    let summary = &capture.summary;
    let mut body = String::new();
    let _ = write!(body, "<h1>{}</h1><p>{}</p>", escape(&summary.scenario), escape(&scenario.description));
    let (class, headline) = match summary.outcome.violation() {
        Some(v) => ("bad", format!("{} violated at step {}, t={}", v.invariant, v.step, v.time)),
        None if matches!(summary.outcome, sim_core::Outcome::Pass) => {
            ("ok", "pass: every invariant held".to_string())
        }
        None => ("warn", format!("{:?}", summary.outcome)),
    };
    let met = if summary.expectation_met {
        "<span class=\"ok\">met</span>"
    } else {
        "<span class=\"bad\">NOT met</span>"
    };
    let _ = write!(
        body,
        "<p id=\"outcome\" class=\"{class}\">{}</p><p>expectation {met}: {}</p><p>replay: <code id=\"replay\">{}</code></p>",
        escape(&headline),
        escape(&summary.verdict),
        escape(&summary.replay)
    );
    let _ = write!(
        body,
        "<details><summary>what <code>dsim run</code> printed</summary><pre>{}</pre></details>",
        escape(&summary.text())
    );
    let knobs = serde_json::to_string_pretty(scenario).unwrap_or_default();
    let _ = write!(
        body,
        "<details><summary>the scenario and its knobs</summary><pre>{}</pre></details>",
        escape(&knobs)
    );
    if let Some((title, text)) = &summary.protocol_report_text {
        let _ = write!(body, "<h2 id=\"protocol-report\">{}</h2><pre>{}</pre>", escape(title), escape(text));
    }
    body.push_str(&diagram_section(capture));
    body.push_str(&counters_section(capture));
    body.push_str(&trace_section(capture));
    if !capture.client_history.is_empty() {
        let text: String = capture
            .client_history
            .iter()
            .map(|e| serde_json::to_string(e).expect("client events serialize") + "\n")
            .collect();
        let options = CheckOptions {
            model: ModelName::Kv,
            initial: None,
            input: None,
            budget: check_history::BUDGET_DEFAULT,
            budget_is_default: true,
            timeout_s: check_history::TIMEOUT_S_DEFAULT,
            timeout_is_default: true,
            json: true,
        };
        body.push_str(&history_section(&text, &options));
    }
    if !capture.clocks.is_empty() {
        let _ = write!(
            body,
            "<h2>Clocks</h2><details><summary>every event with its ground-truth Lamport and vector stamps</summary><pre>{}</pre></details>",
            escape(&capture.clocks)
        );
    }
    page(&format!("dsim: {}", summary.scenario), &body)
}

fn diagram_section(capture: &Capture) -> String {
    let mut out = String::from("<h2>Space-time diagram</h2>");
    out.push_str(
        "<div class=\"controls\"><button id=\"zoom-out\" type=\"button\">-</button><span id=\"zoom-level\">100%</span>\
         <button id=\"zoom-in\" type=\"button\">+</button><button id=\"zoom-fit\" type=\"button\">fit</button>\
         <label><input id=\"stamps\" type=\"checkbox\" checked> clock stamps</label>\
         <span>drag to pan, ctrl + wheel to zoom; hover an arrow for the message</span></div>",
    );
    let _ = write!(out, "<div id=\"view\">{}</div>", picture::svg(capture));
    out
}

fn counters_section(capture: &Capture) -> String {
    let mut out = String::from(
        "<h2>Per node</h2><table id=\"counters\"><thead><tr><th>node</th><th>sent</th><th>received</th><th>lost (sent by it)</th><th>timers fired</th><th>crashes</th></tr></thead><tbody>",
    );
    for (i, (name, c)) in capture.lanes.iter().zip(&capture.counts).enumerate() {
        let _ = write!(
            out,
            "<tr><td>n{i} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            c.sent,
            c.received,
            c.lost,
            c.timers,
            c.crashes
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The nodes a record is about.
fn record_nodes(record: &Value) -> Vec<u64> {
    ["node", "from", "to"].iter().filter_map(|f| record.get(*f).and_then(Value::as_u64)).collect()
}

fn detail(record: &Value) -> String {
    let pick = |f: &str| record.get(f).map(|v| v.to_string());
    match kind(record) {
        "send" | "deliver" => format!(
            "n{} -> n{} m{} {}",
            record["from"],
            record["to"],
            record["msg_id"],
            pick("msg").unwrap_or_default()
        ),
        "drop" => format!(
            "n{} -> n{} m{} lost: {}",
            record["from"],
            record["to"],
            record["msg_id"],
            pick("reason").unwrap_or_default()
        ),
        "duplicate" => format!(
            "n{} -> n{} m{} copied as m{}",
            record["from"], record["to"], record["msg_id"], record["copy_id"]
        ),
        "timer-set" => format!(
            "n{} sets t{} in {}: {}",
            record["node"],
            record["timer_id"],
            ms(record["after"].as_u64().unwrap_or(0)),
            pick("timer").unwrap_or_default()
        ),
        "timer-fire" => {
            format!("n{} t{}: {}", record["node"], record["timer_id"], pick("timer").unwrap_or_default())
        }
        "timer-cancel" => format!("n{} t{}", record["node"], record["timer_id"]),
        "partition" => format!("p{}: {}", record["partition_id"], pick("partition").unwrap_or_default()),
        "heal" => format!("p{} ends", record["partition_id"]),
        "local" => format!("n{}: {}", record["node"], pick("label").unwrap_or_default()),
        _ => record_nodes(record).iter().map(|n| format!("n{n}")).collect::<Vec<_>>().join(" "),
    }
}

fn trace_section(capture: &Capture) -> String {
    let kinds: BTreeSet<&str> = capture.records.iter().map(kind).collect();
    let mut out = String::from("<h2>Trace</h2><div class=\"controls\">");
    out.push_str("<label>node <input id=\"f-node\" type=\"search\" placeholder=\"client 1, n0...\"></label>");
    out.push_str("<label>kind <select id=\"f-kind\"><option value=\"\">any</option>");
    for k in &kinds {
        let _ = write!(out, "<option>{}</option>", escape(k));
    }
    out.push_str("</select></label><label>from <input id=\"f-from\" type=\"number\" step=\"any\" size=\"8\"> ms</label>");
    out.push_str("<label>to <input id=\"f-to\" type=\"number\" step=\"any\" size=\"8\"> ms</label><span id=\"shown\"></span></div>");
    let left_out = capture.left_out + capture.outside_window;
    if left_out > 0 {
        let _ = write!(
            out,
            "<p class=\"warn\">{left_out} events are not shown (see --max-events and --window).</p>"
        );
    }
    out.push_str("<table id=\"trace\"><thead><tr><th>step</th><th>time</th><th>kind</th><th>nodes</th><th>what</th></tr></thead><tbody>");
    for record in &capture.records {
        let nodes = record_nodes(record);
        let names: Vec<String> = nodes
            .iter()
            .map(|&n| format!("n{n} {}", capture.lanes.get(n as usize).map_or("", String::as_str)))
            .collect();
        let search = names.join("|").to_lowercase();
        let time = record.get("time").and_then(Value::as_u64).unwrap_or(0);
        let step = record.get("step").and_then(Value::as_u64).unwrap_or(0);
        let msg = match kind(record) {
            "send" | "deliver" | "drop" => {
                record.get("msg_id").map(|m| format!(" data-msg=\"{m}\"")).unwrap_or_default()
            }
            _ => String::new(),
        };
        let message = record.get("msg").map(message_kind).map(|k| format!(" ({k})")).unwrap_or_default();
        let _ = write!(
            out,
            "<tr data-step=\"{step}\" data-ms=\"{}\" data-kind=\"{}\" data-nodes=\"{}\"{msg}><td>{step}</td><td>{}</td><td>{}{}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
            time as f64 / 1000.0,
            escape(kind(record)),
            escape(&search),
            ms(time),
            escape(kind(record)),
            escape(&message),
            escape(&names.join(", ")),
            escape(&detail(record))
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// Operations drawn per key at most (a longer key's timeline shows its first ones).
const TIMELINE_OPS_MAX: usize = 400;

/// The client history on a timeline per key, with the operations that cannot be
/// linearized highlighted: the stretch the checker explains in orange, the operation no
/// linearization can place next in red. `text` is a history `check-history` reads.
pub fn history_section(text: &str, options: &CheckOptions) -> String {
    let mut out = String::from("<h2>Client history</h2>");
    let paired = match check_history::read_events(text, options.input).and_then(check_history::pair) {
        Ok(paired) => paired,
        Err(err) => return out + &format!("<p class=\"warn\">{}</p>", escape(&err)),
    };
    let options = CheckOptions { json: true, ..options.clone() };
    let verdict: Value = check_history::check_text(text, "history", &options)
        .ok()
        .and_then(|v| serde_json::from_str(&v.output).ok())
        .unwrap_or(Value::Null);
    let word = verdict.get("verdict").and_then(Value::as_str).unwrap_or("unknown");
    let class = match word {
        "linearizable" => "ok",
        "not-linearizable" => "bad",
        _ => "warn",
    };
    let _ = write!(out, "<p id=\"history-verdict\" class=\"{class}\">{}: {word}</p>", paired.ops.len());
    // What the explanations point at, by key: the stretch's operations and the culprit,
    // each as (process, interval).
    let mut stretch: BTreeMap<Option<String>, BTreeSet<(i64, String)>> = BTreeMap::new();
    let mut culprit: BTreeMap<Option<String>, (i64, String)> = BTreeMap::new();
    let op_id = |op: &Value| {
        (
            op.get("process").and_then(Value::as_i64).unwrap_or(-1),
            op.get("interval").and_then(Value::as_str).unwrap_or("").to_string(),
        )
    };
    for explanation in verdict.get("explanations").and_then(Value::as_array).into_iter().flatten() {
        let key = explanation.get("key").and_then(Value::as_str).map(str::to_string);
        for op in explanation.get("operations").and_then(Value::as_array).into_iter().flatten() {
            stretch.entry(key.clone()).or_default().insert(op_id(op));
        }
        if let Some(op) = explanation.get("could_not_place") {
            culprit.insert(key.clone(), op_id(op));
        }
        let _ = write!(out, "<pre class=\"explanation\">{}</pre>", escape(&explain(explanation)));
    }
    let mut by_key: BTreeMap<Option<String>, Vec<&check_history::RawOp>> = BTreeMap::new();
    for op in &paired.ops {
        by_key
            .entry(op.key.as_ref().map(|k| k.to_string().trim_matches('"').to_string()))
            .or_default()
            .push(op);
    }
    let end = paired.ops.iter().filter_map(|op| op.ret.or(Some(op.call))).max().unwrap_or(0) + 1;
    for (key, ops) in &by_key {
        let processes: BTreeSet<i64> = ops.iter().map(|op| op.process).collect();
        let lanes: Vec<i64> = processes.into_iter().collect();
        let (width, lane_h) = (1000.0, 26.0);
        let x = |pos: u64| 60.0 + (pos as f64 / end as f64) * (width - 80.0);
        let height = 20.0 + lanes.len() as f64 * lane_h;
        let title = key.as_ref().map_or("the object".to_string(), |k| format!("key {k}"));
        let _ = write!(
            out,
            "<h3>{}</h3><svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\">",
            escape(&title)
        );
        for (i, p) in lanes.iter().enumerate() {
            let _ = write!(
                out,
                "<text x=\"4\" y=\"{:.1}\" font-size=\"11\">p{p}</text>",
                16.0 + i as f64 * lane_h + 10.0
            );
        }
        for op in ops.iter().take(TIMELINE_OPS_MAX) {
            let lane = lanes.iter().position(|p| *p == op.process).unwrap_or(0);
            let y = 10.0 + lane as f64 * lane_h;
            let (x1, x2) = (x(op.call), x(op.ret.unwrap_or(end)));
            let id = (op.process, op.interval());
            let mut class = String::from("op");
            if op.ret.is_none() {
                class.push_str(" unknown");
            }
            if culprit.get(key) == Some(&id) {
                class.push_str(" culprit");
            } else if stretch.get(key).is_some_and(|s| s.contains(&id)) {
                class.push_str(" stretch");
            }
            let label = op.describe();
            let _ = write!(
                out,
                "<g class=\"{class}\"><title>{} [{}]</title><rect x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"20\" rx=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                escape(&label),
                escape(&op.interval()),
                (x2 - x1).max(3.0),
                x1 + 3.0,
                y + 14.0,
                escape(label.split_once(' ').map_or(label.as_str(), |(_, rest)| rest))
            );
        }
        out.push_str("</svg>");
        if ops.len() > TIMELINE_OPS_MAX {
            let _ = write!(
                out,
                "<p class=\"warn\">the first {TIMELINE_OPS_MAX} of {} operations shown</p>",
                ops.len()
            );
        }
    }
    out
}

/// An explanation from `check-history --format json`, as lines a student reads.
fn explain(explanation: &Value) -> String {
    let text = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = match explanation.get("key").and_then(Value::as_str) {
        Some(key) => format!("key {key:?} cannot be linearized.\n"),
        None => "the history cannot be linearized.\n".to_string(),
    };
    out.push_str("a linearization of the operations before it, with the state after each:\n");
    for op in explanation.get("linearized").and_then(Value::as_array).into_iter().flatten() {
        let _ = writeln!(
            out,
            "  [{}] {}   => {}",
            text(op, "interval"),
            text(op, "operation"),
            text(op, "state_after")
        );
    }
    if let Some(op) = explanation.get("could_not_place") {
        let _ = writeln!(
            out,
            "then nothing can come next: [{}] {} does not fit the state {}",
            text(op, "interval"),
            text(op, "operation"),
            text(explanation, "state")
        );
    }
    out
}

/// The report of `check-history`: its verdict and the timeline.
pub fn history_report(file: &str, text: &str, options: &CheckOptions, printed: &str) -> String {
    let mut body = String::new();
    let _ = write!(body, "<h1>check-history: {}</h1>", escape(file));
    let _ = write!(body, "<details open><summary>what <code>dsim check-history</code> printed</summary><pre>{}</pre></details>", escape(printed));
    body.push_str(&history_section(text, options));
    page(&format!("dsim check-history: {file}"), &body)
}

/// The index `dsim fuzz --html` writes: every failure, linked to its report.
pub fn fuzz_index(scenario: &str, entries: &[(String, String, u64, Option<String>)], left: usize) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>dsim fuzz: {}</h1><p>{} failures found.</p>",
        escape(scenario),
        entries.len() + left
    );
    body.push_str("<table id=\"failures\"><thead><tr><th>seed</th><th>invariant</th><th>failure file</th><th>report</th></tr></thead><tbody>");
    for (file, invariant, seed, report) in entries {
        let link = report
            .as_ref()
            .map_or("(not drawn)".to_string(), |r| format!("<a href=\"{}\">report</a>", escape(r)));
        let _ = write!(
            body,
            "<tr><td>{seed}</td><td>{}</td><td><code>{}</code></td><td>{link}</td></tr>",
            escape(invariant),
            escape(file)
        );
    }
    body.push_str("</tbody></table>");
    if left > 0 {
        let _ = write!(body, "<p class=\"warn\">{left} more failures are not listed (see the summary).</p>");
    }
    page(&format!("dsim fuzz: {scenario}"), &body)
}
