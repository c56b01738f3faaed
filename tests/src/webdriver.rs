//! A small W3C WebDriver client for the browser tests: `chromedriver` (Debian's
//! `chromium-driver`) driving headless Chromium (`/usr/bin/chromium`), spoken to with the same
//! HTTP client as the rest of the tests. Only what the tests use: navigate, find, click, type,
//! read text and values, run a script, take screenshots, read the console log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine as _;
use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Chromium flags the tests start the browser with.
pub const CHROMIUM_ARGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,800",
    "--disable-dev-shm-usage",
];

/// A running chromedriver with one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    agent: ureq::Agent,
    session: String,
    base: String,
    kind: Kind,
}

/// Which browser a [`Browser`] drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Debian's `chromium` through `chromedriver` (package `chromium-driver`).
    Chromium,
    /// Debian's `firefox-esr` through `geckodriver` (built from crates.io by
    /// `scripts/install-peers.sh` into `target/peers/geckodriver`).
    Firefox,
}

/// Collects the page's uncaught errors for [`Browser::console_errors`] in Firefox, whose driver
/// has no log endpoint.
const ERROR_COLLECTOR: &str = "if (!window.__fgErrors) { window.__fgErrors = []; \
  window.addEventListener('error', (e) => window.__fgErrors.push(String(e.message))); \
  window.addEventListener('unhandledrejection', (e) => window.__fgErrors.push(String(e.reason))); }";

fn geckodriver() -> std::path::PathBuf {
    let built = crate::workspace_root().join("target/peers/geckodriver/bin/geckodriver");
    if built.is_file() {
        built
    } else {
        "geckodriver".into()
    }
}

/// One element of the page.
#[derive(Clone)]
pub struct Element {
    id: String,
}

fn element_of(value: &Value) -> anyhow::Result<Element> {
    value[ELEMENT_KEY].as_str().map(|id| Element { id: id.to_string() }).context("not an element")
}

impl Browser {
    /// Start chromedriver on a free port and open a headless Chromium session.
    pub fn start() -> anyhow::Result<Browser> {
        Self::start_kind(Kind::Chromium)
    }

    /// Start geckodriver on a free port and open a headless Firefox session.
    pub fn start_firefox() -> anyhow::Result<Browser> {
        Self::start_kind(Kind::Firefox)
    }

    /// Start the driver of `kind` on a free port and open a headless session at 1280x800.
    pub fn start_kind(kind: Kind) -> anyhow::Result<Browser> {
        let port = crate::free_port()?;
        let mut command = match kind {
            Kind::Chromium => {
                let mut c = Command::new("chromedriver");
                c.arg(format!("--port={port}"));
                c
            }
            Kind::Firefox => {
                let mut c = Command::new(geckodriver());
                c.args(["--port", &port.to_string()]);
                c
            }
        };
        let driver = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting the {kind:?} driver (see scripts/test.sh)"))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser { driver, agent, session: String::new(), base, kind };
        let started = Instant::now();
        loop {
            if let Ok(status) = browser.raw("GET", "/status", None) {
                if status["value"]["ready"] == true {
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("the {kind:?} driver did not become ready");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = match kind {
            Kind::Chromium => json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": CHROMIUM_ARGS},
                "goog:loggingPrefs": {"browser": "ALL"},
            }}}),
            Kind::Firefox => json!({"capabilities": {"alwaysMatch": {
                "browserName": "firefox",
                "moz:firefoxOptions": {"binary": "/usr/bin/firefox-esr", "args": ["-headless", "-width=1280", "-height=800"]},
            }}}),
        };
        let created = browser.raw("POST", "/session", Some(caps))?;
        browser.session =
            created["value"]["sessionId"].as_str().with_context(|| format!("no session in {created}"))?.to_string();
        Ok(browser)
    }

    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base, path);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self.agent.post(&url).send_json(body.unwrap_or_else(|| json!({}))),
        }
        .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let value: Value = response.into_body().read_json().with_context(|| format!("{method} {path}: body"))?;
        if status >= 400 {
            bail!("{method} {path}: {status} {}", value["value"]["message"].as_str().unwrap_or_default());
        }
        Ok(value)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut answer = self.raw(method, &format!("/session/{}{}", self.session, path), body)?;
        Ok(answer["value"].take())
    }

    /// Open `url`.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call("POST", "/url", Some(json!({"url": url})))?;
        if self.kind == Kind::Firefox {
            self.script(ERROR_COLLECTOR, json!([]))?;
        }
        Ok(())
    }

    /// Which browser this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The first element matching the CSS selector, waiting up to 10 s for it.
    pub fn find(&self, css: &str) -> anyhow::Result<Element> {
        self.wait(&format!("an element {css}"), || {
            let found = self.call("POST", "/element", Some(json!({"using": "css selector", "value": css}))).ok()?;
            element_of(&found).ok()
        })
    }

    /// Every element matching the CSS selector now.
    pub fn find_all(&self, css: &str) -> anyhow::Result<Vec<Element>> {
        let found = self.call("POST", "/elements", Some(json!({"using": "css selector", "value": css})))?;
        found.as_array().map(|a| a.iter().filter_map(|v| element_of(v).ok()).collect()).context("elements")
    }

    /// Poll `f` every 100 ms for up to 30 s (two browsers and two servers share a busy machine).
    pub fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
        let started = Instant::now();
        loop {
            if let Some(v) = f() {
                return Ok(v);
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("timed out waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click an element.
    pub fn click(&self, e: &Element) -> anyhow::Result<()> {
        self.call("POST", &format!("/element/{}/click", e.id), None).map(|_| ())
    }

    /// Clear a field and type `text` into it.
    pub fn type_into(&self, e: &Element, text: &str) -> anyhow::Result<()> {
        self.call("POST", &format!("/element/{}/clear", e.id), None)?;
        self.call("POST", &format!("/element/{}/value", e.id), Some(json!({"text": text}))).map(|_| ())
    }

    /// Send `text` to an element as it is (a file input takes paths, one per line).
    pub fn send_keys(&self, e: &Element, text: &str) -> anyhow::Result<()> {
        self.call("POST", &format!("/element/{}/value", e.id), Some(json!({"text": text}))).map(|_| ())
    }

    /// Press keys on whatever has the focus, as a keyboard does (no element is targeted): each
    /// of `keys` down and up in turn, with `held` (e.g. [`keys::CONTROL`]) held throughout.
    /// Special keys are WebDriver's code points ([`keys`]).
    pub fn press(&self, held: &[&str], keys: &str) -> anyhow::Result<()> {
        let mut actions: Vec<Value> = held.iter().map(|k| json!({"type": "keyDown", "value": k})).collect();
        for c in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        actions.extend(held.iter().rev().map(|k| json!({"type": "keyUp", "value": k})));
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )?;
        self.call("DELETE", "/actions", None).map(|_| ())
    }

    /// The visible text of an element.
    pub fn text(&self, e: &Element) -> anyhow::Result<String> {
        Ok(self.call("GET", &format!("/element/{}/text", e.id), None)?.as_str().unwrap_or_default().to_string())
    }

    /// A property of an element (`value` of a textarea).
    pub fn property(&self, e: &Element, name: &str) -> anyhow::Result<Value> {
        self.call("GET", &format!("/element/{}/property/{name}", e.id), None)
    }

    /// Run a script in the page; its return value.
    pub fn script(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.call("POST", "/execute/sync", Some(json!({"script": script, "args": args})))
    }

    /// Resize the browser window.
    pub fn set_window_size(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.call("POST", "/window/rect", Some(json!({"width": width, "height": height}))).map(|_| ())
    }

    /// Save a PNG screenshot of the page.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let data = self.call("GET", "/screenshot", None)?;
        let png = base64::engine::general_purpose::STANDARD.decode(data.as_str().unwrap_or_default())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Browser console messages of level SEVERE (errors) since the last call. In Firefox, the
    /// page's uncaught errors and rejections since the page was opened with [`Browser::goto`].
    pub fn console_errors(&self) -> anyhow::Result<Vec<String>> {
        if self.kind == Kind::Firefox {
            let errors =
                self.script("const e = window.__fgErrors || []; window.__fgErrors = []; return e;", json!([]))?;
            return Ok(errors.as_array().map(|a| a.iter().map(|e| e.to_string()).collect()).unwrap_or_default());
        }
        let log = self.call("POST", "/se/log", Some(json!({"type": "browser"})))?;
        Ok(log
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// WebDriver's code points of special keys, for [`Browser::press`].
pub mod keys {
    /// Tab.
    pub const TAB: &str = "\u{E004}";
    /// Enter.
    pub const ENTER: &str = "\u{E007}";
    /// Escape.
    pub const ESCAPE: &str = "\u{E00C}";
    /// Shift.
    pub const SHIFT: &str = "\u{E008}";
    /// Control.
    pub const CONTROL: &str = "\u{E009}";
    /// Space.
    pub const SPACE: &str = " ";
}
