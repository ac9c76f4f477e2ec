//! Headless Chromium for the tests that open a page (tests/browser.rs, tests/playground.rs):
//! finding the browser, starting it as CI runs it, and collecting what the page logs.

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions, Tab};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Debian's `chromium` (what `.ci/run` installs), or the binary `DSIM_CHROMIUM` names.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DSIM_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts `chromium` headless, without sandbox, GPU or background networking, with a fresh
/// profile in `profile` and a window of `size`.
pub fn launch(chromium: PathBuf, profile: PathBuf, size: (u32, u32)) -> Browser {
    let args: Vec<&OsStr> = ["--disable-gpu", "--disable-background-networking", "--no-first-run"]
        .iter()
        .map(OsStr::new)
        .collect();
    let options = LaunchOptions::default_builder()
        .path(Some(chromium))
        .headless(true)
        .sandbox(false)
        .user_data_dir(Some(profile))
        .window_size(Some(size))
        .args(args)
        .idle_browser_timeout(Duration::from_secs(300))
        .build()
        .expect("launch options");
    Browser::new(options).expect("Chromium starts")
}

/// Collects what a tab's page reports that a quiet page would not: exceptions, any console
/// call (the pages never log), and error log entries (a resource that failed to load).
pub fn problems(tab: &Tab) -> Arc<Mutex<Vec<String>>> {
    let problems = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&problems);
    tab.enable_log().and_then(|t| t.enable_runtime()).expect("log and runtime events");
    tab.add_event_listener(Arc::new(move |event: &Event| {
        let problem = match event {
            Event::RuntimeExceptionThrown(e) => Some(format!("exception: {:?}", e.params.exception_details)),
            Event::RuntimeConsoleAPICalled(e) => Some(format!("console: {:?}", e.params)),
            Event::LogEntryAdded(e) if format!("{:?}", e.params.entry.level) == "Error" => {
                Some(format!("log: {}", e.params.entry.text))
            }
            _ => None,
        };
        if let Some(problem) = problem {
            seen.lock().unwrap().push(problem);
        }
    }))
    .expect("a listener");
    problems
}
