//! The HTML report in a real browser: headless Chromium loads the report of a bundled
//! failing scenario from a file (no network), and the test checks what a student would
//! see: no console errors or exceptions, the diagram's lanes and arrows, a filter that
//! narrows the trace table when a node name is typed, a click that lights an arrow up, and
//! a screenshot that is not blank.
//!
//! Chromium is Debian's `chromium` (`.ci/run` installs it when missing); `DSIM_CHROMIUM`
//! names another binary. Only when none can be found does the test say it is skipped, and
//! why.

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use std::path::PathBuf;
use std::process::Command;

mod browser_support;
use browser_support::chromium;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dsim-browser-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// The number a script evaluates to.
fn number(tab: &headless_chrome::Tab, script: &str) -> f64 {
    let value = tab.evaluate(script, false).unwrap_or_else(|e| panic!("{script}: {e}")).value;
    value.and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{script} is not a number"))
}

#[test]
fn the_html_report_works_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        println!("skipped: no Chromium found (install Debian's chromium, or set DSIM_CHROMIUM); .ci/run installs it");
        return;
    };
    let dir = scratch("report");
    let report = dir.join("report.html");
    let scenario = dsim::scenarios_dir().join("rpc/duplicate-put.json");
    let status = Command::new(env!("CARGO_BIN_EXE_dsim"))
        .arg("run")
        .arg(&scenario)
        .arg("--html")
        .arg(&report)
        .output()
        .expect("dsim runs");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    let profile = dir.join("profile");
    let browser = browser_support::launch(chromium, profile, (1280, 1600));
    let tab = browser.new_tab().expect("a tab");
    let problems = browser_support::problems(&tab);
    let url = format!("file://{}", report.display());
    tab.navigate_to(&url).and_then(|t| t.wait_until_navigated()).expect("the report loads");

    // The diagram: a lane per node (server, client 1), an arrow per delivered message.
    assert_eq!(number(&tab, "document.querySelectorAll('#diagram line.lane').length"), 2.0);
    assert_eq!(number(&tab, "document.querySelectorAll('#diagram line.arrow').length"), 8.0);
    assert_eq!(number(&tab, "document.querySelectorAll('#diagram #violation').length"), 1.0);
    let shown = "Array.prototype.filter.call(document.querySelectorAll('#trace tbody tr'), \
                 function(r){return r.style.display !== 'none';}).length";
    let all = number(&tab, shown);
    assert!(all >= 20.0, "every event of the run is a row: {all}");

    // The filter: typing a node name leaves fewer rows, each about that node.
    tab.find_element("#f-node").and_then(|e| e.click().map(|_| ())).expect("the node filter");
    tab.type_str("server").expect("typing");
    let filtered = number(&tab, shown);
    assert!(filtered > 0.0 && filtered < all, "filtering by server: {filtered} of {all} rows");
    let about_server = "Array.prototype.every.call(document.querySelectorAll('#trace tbody tr'), \
                        function(r){return r.style.display === 'none' || r.getAttribute('data-nodes').indexOf('server') >= 0;})";
    let every = tab.evaluate(about_server, false).expect("evaluates").value;
    assert_eq!(every, Some(serde_json::Value::Bool(true)));

    // A click on a delivery's row lights its arrow up.
    let click = "var r = document.querySelector('#trace tbody tr[data-kind=\"deliver\"]'); r.click(); \
                 document.querySelectorAll('#diagram .hl').length";
    assert!(number(&tab, click) >= 1.0, "the clicked message's arrow is highlighted");

    // The screenshot is not blank: many pixels differ from the background.
    let png =
        tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true).expect("a screenshot");
    std::fs::write(dir.join("report.png"), &png).expect("the screenshot is written");
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    let pixels = &pixels[..info.buffer_size()];
    let first = &pixels[..3];
    let step = info.color_type.samples();
    let differing = pixels.chunks(step).filter(|p| &p[..3] != first).count();
    assert!(differing > pixels.len() / step / 50, "the screenshot is not blank: {differing} pixels differ");

    let problems = problems.lock().unwrap();
    assert!(problems.is_empty(), "the page logged problems: {problems:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}
