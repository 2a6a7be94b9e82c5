//! A small synchronous WebDriver client for integration tests: it drives Debian's headless
//! Chromium (`/usr/bin/chromium`) through `/usr/bin/chromedriver` (Debian packages `chromium` and
//! `chromium-driver`), so a test can assert what a reader actually sees in a rendered page:
//! [`Browser::text`] is W3C "Get Element Text", which leaves out text that is not rendered
//! (`display:none`, `visibility:hidden`, `<script>`, ...). It does include an SVG `<title>`
//! (a tooltip, not painted), and it gives "" for a hidden element rather than an error.
//!
//! ```ignore
//! assert!(browser::Browser::available(), "run scripts/setup"); // never a silent skip
//! let b = browser::Browser::start()?;
//! b.open("file:///tmp/page.html")?;
//! assert_eq!(b.text("h1")?, "Cameras");
//! ```
//!
//! Each [`Browser`] owns one chromedriver process (on a free loopback port) and one session; both
//! end on drop. Calls block on a private current-thread tokio runtime, so use it from plain
//! `#[test]` functions, not from inside another tokio runtime (`block_on` would panic). Every HTTP
//! request has a timeout, and every error carries the WebDriver error and message.
#![allow(dead_code, reason = "a toolbox: each test binary uses some of it")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C web element identifier (the key under which an element reference is returned).
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 3;

/// A headless Chromium session driven through its own chromedriver.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    driver: Child,
    base: String,
    session: String,
    /// The driver's and the browser's TMPDIR (Chromium leaves its singleton-lock directories
    /// there), removed after them.
    _tmp: tempfile::TempDir,
}

impl Browser {
    /// Whether both the browser and the driver are installed.
    pub fn available() -> bool {
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
    }

    /// Starts chromedriver on a free loopback port and opens a headless session.
    pub fn start() -> Result<Browser, String> {
        Self::start_with(false)
    }

    /// As [`Browser::start`], with a session that accepts any TLS certificate (W3C
    /// `acceptInsecureCerts`): for a test server whose certificate a test CA signed.
    pub fn start_accepting_any_certificate() -> Result<Browser, String> {
        Self::start_with(true)
    }

    fn start_with(insecure: bool) -> Result<Browser, String> {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(insecure) {
                Ok(b) => return Ok(b),
                Err(e) => last = e,
            }
        }
        Err(format!("browser: could not start after {START_ATTEMPTS} attempts: {last}"))
    }

    fn start_once(insecure: bool) -> Result<Browser, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let tmp = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {CHROMEDRIVER}: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        // From here on, Drop kills the driver if anything fails.
        let mut b = Browser {
            rt,
            http,
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            _tmp: tmp,
        };
        b.wait_ready()?;
        let caps = json!({"capabilities": {"alwaysMatch": {"acceptInsecureCerts": insecure, "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,2000"],
        }}}});
        let v = b.request(Method::POST, "/session", Some(caps))?;
        b.session = v["sessionId"].as_str().ok_or(format!("new session: no sessionId in {v}"))?.to_owned();
        Ok(b)
    }

    /// Polls GET /status until chromedriver says it is ready (readiness of an external process).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                return Err(format!("chromedriver exited during start-up: {status}"));
            }
            let ready = self.request(Method::GET, "/status", None);
            if matches!(&ready, Ok(v) if v["ready"] == json!(true)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let why = ready.err().unwrap_or_else(|| "not ready".to_owned());
                return Err(format!("chromedriver not ready after {READY_TIMEOUT:?}: {why}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends one request to chromedriver and returns the response's `value`, or an error naming
    /// the WebDriver error and its message.
    fn request(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        // Errors name the endpoint with the long session and element ids elided.
        let short: Vec<&str> = path.split('/').map(|seg| if seg.len() > 30 { "…" } else { seg }).collect();
        let what = format!("{method} {}", short.join("/"));
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.rt.block_on(async {
            let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| format!("{what}: reading body: {e}"))?;
            let mut v: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{what}: HTTP {status}, not JSON ({e}): {text:.300}"))?;
            let value = v.get_mut("value").map(Value::take).unwrap_or(Value::Null);
            match value.get("error").and_then(Value::as_str) {
                Some(err) => {
                    // chromedriver's message often repeats the error name; keep its first line.
                    let msg = value["message"].as_str().unwrap_or("").lines().next().unwrap_or("");
                    let msg = msg.strip_prefix(err).map_or(msg, |m| m.trim_start_matches([':', ' ']));
                    Err(format!("{what}: {err}{}{msg}", if msg.is_empty() { "" } else { ": " }))
                }
                None if !status.is_success() => Err(format!("{what}: HTTP {status}: {text:.300}")),
                None => Ok(value),
            }
        })
    }

    /// A request within this session (`path` starts with `/`).
    fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.request(method, &format!("/session/{}{path}", self.session), body)
    }

    fn find_all(&self, css: &str) -> Result<Vec<String>, String> {
        let v = self
            .cmd(Method::POST, "/elements", Some(json!({"using": "css selector", "value": css})))
            .map_err(|e| format!("{css:?}: {e}"))?;
        let list = v.as_array().ok_or(format!("{css:?}: elements: not a list: {v}"))?;
        list.iter().map(|e| element_id(e).ok_or(format!("{css:?}: bad element reference {e}"))).collect()
    }

    /// Runs `/element/{id}{what}` on the first element matching `css`; errors name `css`.
    fn on_first(&self, css: &str, method: Method, what: &str, body: Option<Value>) -> Result<Value, String> {
        let v = self
            .cmd(Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
            .map_err(|e| format!("{css:?}: {e}"))?;
        let id = element_id(&v).ok_or(format!("{css:?}: no element reference in {v}"))?;
        self.cmd(method, &format!("/element/{id}{what}"), body).map_err(|e| format!("{css:?}: {e}"))
    }

    fn string(v: Value, what: &str) -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s),
            other => Err(format!("{what}: expected a string, got {other}")),
        }
    }

    /// Navigates to `url` (file://, http://) and waits for the page load as WebDriver does.
    /// An HTTP error is not an `Err`: a 401 shows as an empty `chrome-error://` page.
    pub fn open(&self, url: &str) -> Result<(), String> {
        self.cmd(Method::POST, "/url", Some(json!({"url": url}))).map(drop)
    }

    /// Navigates to `url` sending `Authorization: Basic` (via DevTools). The header stays set for
    /// every later request of this session, to any host.
    pub fn open_with_basic_auth(&self, url: &str, user: &str, pass: &str) -> Result<(), String> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let headers = json!({"headers": {"Authorization": format!("Basic {token}")}});
        self.cdp("Network.enable", json!({}))?;
        self.cdp("Network.setExtraHTTPHeaders", headers)?;
        self.open(url)
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Result<Value, String> {
        self.cmd(Method::POST, "/goog/cdp/execute", Some(json!({"cmd": cmd, "params": params})))
    }

    /// The document's title.
    pub fn title(&self) -> Result<String, String> {
        Self::string(self.cmd(Method::GET, "/title", None)?, "title")
    }

    /// The rendered text of the first element matching `css` ("" when it is not displayed).
    pub fn text(&self, css: &str) -> Result<String, String> {
        Self::string(self.on_first(css, Method::GET, "/text", None)?, css)
    }

    /// The rendered text of every element matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Result<Vec<String>, String> {
        let ids = self.find_all(css)?;
        let text = |id: &String| self.cmd(Method::GET, &format!("/element/{id}/text"), None);
        ids.iter().map(|id| Self::string(text(id).map_err(|e| format!("{css:?}: {e}"))?, css)).collect()
    }

    /// Clicks the first element matching `css` (fails if it is hidden or covered).
    pub fn click(&self, css: &str) -> Result<(), String> {
        self.on_first(css, Method::POST, "/click", Some(json!({}))).map(drop)
    }

    /// An attribute (or, per WebDriver, the like-named property) of the first match of `css`.
    pub fn attr(&self, css: &str, name: &str) -> Result<Option<String>, String> {
        match self.on_first(css, Method::GET, &format!("/attribute/{name}"), None)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Ok(Some(other.to_string())),
        }
    }

    /// Runs `js` as a function body (use `return ...`) and gives back its JSON result.
    pub fn script(&self, js: &str) -> Result<Value, String> {
        self.cmd(Method::POST, "/execute/sync", Some(json!({"script": js, "args": []})))
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> Result<usize, String> {
        self.find_all(css).map(|v| v.len())
    }

    /// Whether the first element matching `css` is displayed.
    pub fn displayed(&self, css: &str) -> Result<bool, String> {
        let v = self.on_first(css, Method::GET, "/displayed", None)?;
        v.as_bool().ok_or(format!("displayed {css:?}: not a boolean: {v}"))
    }

    /// Waits until at least one element matches `css`, or fails after `timeout`.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while self.count(css)? == 0 {
            if Instant::now() >= deadline {
                return Err(format!("wait_for {css:?}: nothing matched within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// A PNG screenshot of the viewport.
    pub fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        let b64 = Self::string(self.cmd(Method::GET, "/screenshot", None)?, "screenshot")?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("screenshot: bad base64: {e}"))
    }
}

fn element_id(v: &Value) -> Option<String> {
    v.get(ELEMENT_KEY).and_then(Value::as_str).map(str::to_owned)
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Quitting the session makes chromedriver close Chromium and remove its profile.
            let _ = self.cmd(Method::DELETE, "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
