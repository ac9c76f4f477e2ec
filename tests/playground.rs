//! The playground (`web/dist/`, built by `web/build.sh`) served on 127.0.0.1 and opened
//! in headless Chromium: the lecture's anomaly from its link (verdict, arrows), an edited
//! scenario's error shown at its line, a quiet console, and every bundled scenario giving
//! in the page exactly the summary the native library gives (trace hash included).
//!
//! Needs the built page and Chromium: `.ci/run` builds the page and installs Chromium, and
//! there this test fails if either is missing. Elsewhere (a `cargo test` on a machine with
//! only the Rust toolchain) it says it is skipped, and why.

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::Tab;
use serde_json::Value;
use sim_core::TraceMode;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod browser_support;
use browser_support::chromium;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web").join("dist")
}

/// The newest modification time of the files under `dirs` (the module's sources).
fn newest(dirs: &[&str]) -> Option<std::time::SystemTime> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| root.join(d)).collect();
    let mut newest = None;
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).into_iter().flatten().flatten().map(|e| e.path()));
        } else if let Ok(modified) = meta.modified() {
            newest = newest.max(Some(modified));
        }
    }
    newest
}

/// Whether web/dist was built after the last change to the code it compiles.
fn dist_is_current() -> bool {
    let built = std::fs::metadata(dist().join("dsim_web_bg.wasm")).and_then(|m| m.modified()).ok();
    let sources = newest(&["src", "sim-core/src", "protocols/src", "web/src", "web/static", "scenarios"]);
    built.is_some() && built >= sources
}

/// Serves `root`'s files on 127.0.0.1 (a port of the system's choosing), one request per
/// connection, until the test process ends. Only files directly in `root`.
fn serve(root: PathBuf) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path =
                request.split_whitespace().nth(1).unwrap_or("/").split(['?', '#']).next().unwrap_or("/");
            let file = if path == "/" { "index.html" } else { path.trim_start_matches('/') };
            let body = (!file.contains('/') && !file.contains(".."))
                .then(|| std::fs::read(root.join(file)).ok())
                .flatten();
            let kind = match file.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript",
                Some("css") => "text/css",
                Some("wasm") => "application/wasm",
                _ => "application/octet-stream",
            };
            let mut stream = reader.into_inner();
            let _ = match body {
                Some(body) => write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .and_then(|()| stream.write_all(&body)),
                None => write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
        }
    });
    port
}

fn eval(tab: &Tab, script: &str) -> Value {
    tab.evaluate(script, false).unwrap_or_else(|e| panic!("{script}: {e}")).value.unwrap_or(Value::Null)
}

/// Waits (up to 60 s) until `script` is true in the page.
fn wait_for(tab: &Tab, script: &str) {
    for _ in 0..600 {
        if eval(tab, script) == Value::Bool(true) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("waited 60 s for {script}");
}

#[test]
fn the_playground_runs_the_cli_simulator_in_the_browser() {
    let in_ci = std::env::var_os("CI").is_some();
    let built = dist().join("index.html").exists() && dist().join("dsim_web_bg.wasm").exists();
    let chromium = chromium();
    let missing = match (built, &chromium) {
        (false, _) => Some("the playground is not built (run web/build.sh)"),
        (true, _) if !dist_is_current() => {
            Some("web/dist is older than the code it compiles (run web/build.sh)")
        }
        (_, None) => Some("no Chromium found (install Debian's chromium, or set DSIM_CHROMIUM)"),
        _ => None,
    };
    if let Some(why) = missing {
        assert!(!in_ci, "CI must build the playground and install Chromium (.ci/run does): {why}");
        println!("skipped: {why}");
        return;
    }
    let port = serve(dist());
    let profile = std::env::temp_dir().join(format!("dsim-playground-{}", std::process::id()));
    let browser = browser_support::launch(chromium.expect("checked above"), profile.clone(), (1400, 1000));
    let tab = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(120));
    let problems = browser_support::problems(&tab);

    // The lecture's anomaly, from its link.
    let url = format!("http://127.0.0.1:{port}/#s=rpc/duplicate-put.json&seed=17");
    tab.navigate_to(&url).and_then(|t| t.wait_until_navigated()).expect("the page loads");
    wait_for(&tab, "document.body.dataset.ready === 'yes'");
    let verdict = eval(&tab, "document.getElementById('verdict').textContent");
    let verdict = verdict.as_str().unwrap_or_default();
    assert!(verdict.contains("kv-linearizable violated at step 12"), "{verdict}");
    let arrows = "(function(){var d=document.getElementById('report').contentDocument;\
                  return d ? d.querySelectorAll('#diagram line.arrow').length : 0;})()";
    wait_for(&tab, &format!("{arrows} > 0"));
    assert_eq!(eval(&tab, arrows), Value::from(8), "one arrow per delivered message");

    // Every registered protocol is listed with its parameters.
    let listed = eval(&tab, "document.querySelectorAll('#protocol-list > div').length");
    assert_eq!(listed, Value::from(dsim::registry().iter().count()));

    // The same summaries as the native library, on every bundled scenario.
    for path in dsim::bundled_scenarios() {
        let name = path.strip_prefix(dsim::scenarios_dir()).unwrap().to_string_lossy().replace('\\', "/");
        // The module's own JSON text, parsed here: no round trip through JavaScript numbers.
        let script =
            format!("window.dsim.summary_json({name:?}, window.dsim.scenario_text_of({name:?}), '')");
        let answer: Value = serde_json::from_str(eval(&tab, &script).as_str().expect("an answer")).unwrap();
        let in_page = &answer["summary"];
        let scenario = dsim::scenario::Scenario::load(&path).unwrap();
        let native = dsim::runner::run(&scenario, &name, None, TraceMode::Recent(20), None).unwrap();
        // Through text and the same parser on both sides: serde_json's float parsing may be
        // one ulp off, so compare what was written, not a parse against an exact value.
        let native: Value = serde_json::from_str(&serde_json::to_string(&native).unwrap()).unwrap();
        let differing: Vec<String> = native
            .as_object()
            .unwrap()
            .iter()
            .filter(|(key, value)| in_page.get(key.as_str()) != Some(value))
            .map(|(key, value)| {
                format!("{key}: page {} vs CLI {value}", in_page.get(key.as_str()).unwrap_or(&Value::Null))
            })
            .collect();
        assert!(differing.is_empty(), "{name}: the page and the CLI differ:\n{}", differing.join("\n"));
    }

    // Steps per second in the page, for docs/performance.md (printed, never asserted:
    // speed is measured, not tested). DSIM_PLAYGROUND_BENCH=1 to see them.
    if std::env::var_os("DSIM_PLAYGROUND_BENCH").is_some() {
        for name in ["at-most-once/many-clients.json", "ping/steady.json", "clocks/vector-50.json"] {
            let script = format!(
                "(function(){{var text=window.dsim.scenario_text_of({name:?}), best=0, steps=0;\
                 for(var i=0;i<5;i++){{var t=performance.now();\
                 var a=JSON.parse(window.dsim.summary_json({name:?}, text, ''));\
                 var s=a.summary.steps/((performance.now()-t)/1000); steps=a.summary.steps; if(s>best){{best=s;}}}}\
                 return JSON.stringify([steps, best]);}})()"
            );
            println!("in the page: {name} {}", eval(&tab, &script));
        }
    }

    // An edited scenario with an error: shown, at its line.
    let edit = r#"(function(){var e=document.getElementById('editor');
        e.value='{\n  "name": "x",\n  "protocol": { "rpc": { "timeout_ms": -1 } }\n}';
        e.dispatchEvent(new Event('input')); return true;})()"#;
    eval(&tab, edit);
    wait_for(&tab, "document.getElementById('error').textContent.length > 0");
    let error = eval(&tab, "document.getElementById('error').textContent");
    assert!(error.as_str().unwrap().contains(":3:"), "{error}");
    assert_eq!(eval(&tab, "document.querySelector('#gutter .err').textContent"), Value::from("3"));

    // Back to the anomaly for the screenshot the README shows.
    tab.navigate_to(&format!("http://127.0.0.1:{port}/?shot#s=rpc/duplicate-put.json&seed=17"))
        .and_then(|t| t.wait_until_navigated())
        .expect("the page loads again");
    wait_for(&tab, &format!("document.body.dataset.ready === 'yes' && {arrows} > 0"));
    let png =
        tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).expect("a screenshot");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("playground.png");
    std::fs::write(&shot, &png).expect("the screenshot is written");
    if std::env::var_os("DSIM_UPDATE_SCREENSHOTS").is_some() {
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/pictures/playground.png"), &png)
            .expect("docs/pictures is writable");
    }

    let problems = problems.lock().unwrap();
    assert!(problems.is_empty(), "the page logged problems: {problems:#?}");
    let _ = std::fs::remove_dir_all(profile);
}
