//! A headless Chromium driven through WebDriver (W3C protocol, spoken to
//! chromedriver with plain JSON over loopback HTTP): enough of it to log in
//! through a form, run a script in the page, read cookies and take a
//! screenshot. Shared by the dashboard tests and the dashboard benchmark.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C element key in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process on a free loopback port; killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
    chromium: PathBuf,
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One WebDriver call: its `value`, or a panic naming the command and the
/// driver's error.
fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let agent = agent();
    let reply = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, body) => agent
            .post(url)
            .header("content-type", "application/json")
            .send(body.unwrap_or(json!({})).to_string()),
    };
    let mut reply = reply.unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
    let status = reply.status();
    let text = reply.body_mut().read_to_string().unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert!(
        status.is_success(),
        "WebDriver {method} {url} answered {status}: {text}"
    );
    v["value"].clone()
}

impl Driver {
    /// Starts `chromedriver` (found or installed by the caller) for
    /// `chromium`, and waits (at most 30 s) until it is ready.
    pub fn start(chromium: &Path, chromedriver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium: chromium.to_path_buf(),
            profiles: tempfile::tempdir().expect("a directory for browser profiles"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = agent()
                .get(&format!("{}/status", driver.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == json!(true));
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not get ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A fresh headless browser with its own profile (no cache, no cookies).
    pub fn browser(&self) -> Browser {
        let profile = tempfile::tempdir_in(self.profiles.path()).expect("a browser profile");
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "acceptInsecureCerts": true,
                "goog:chromeOptions": {
                    "binary": self.chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1400,1800",
                        "--no-first-run", "--disable-extensions",
                        format!("--user-data-dir={}", profile.path().display()),
                    ],
                },
            }},
        });
        let v = call("POST", &format!("{}/session", self.url), Some(caps));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {v}"))
            .to_string();
        Browser {
            session: format!("{}/session/{id}", self.url),
            _profile: profile,
        }
    }
}

/// One browser session; closed when dropped.
pub struct Browser {
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = agent().delete(&self.session).call();
    }
}

impl Browser {
    pub fn goto(&self, url: &str) {
        call(
            "POST",
            &format!("{}/url", self.session),
            Some(json!({ "url": url })),
        );
    }

    pub fn url(&self) -> String {
        call("GET", &format!("{}/url", self.session), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub fn run(&self, script: &str, args: Value) -> Value {
        call(
            "POST",
            &format!("{}/execute/sync", self.session),
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// The element `css` selects, found by WebDriver.
    pub fn find(&self, css: &str) -> String {
        let v = call(
            "POST",
            &format!("{}/element", self.session),
            Some(json!({ "using": "css selector", "value": css })),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    pub fn type_into(&self, element: &str, text: &str) {
        call(
            "POST",
            &format!("{}/element/{element}/value", self.session),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, element: &str) {
        call(
            "POST",
            &format!("{}/element/{element}/click", self.session),
            Some(json!({})),
        );
    }

    /// A cookie by name, as the browser holds it (HttpOnly ones too).
    pub fn cookie(&self, name: &str) -> Value {
        call("GET", &format!("{}/cookie/{name}", self.session), None)
    }

    /// The page as a PNG.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = call("GET", &format!("{}/screenshot", self.session), None);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .expect("the screenshot decodes")
    }

    /// Waits (at most `limit`) until `script` returns something truthy,
    /// and returns it; panics with `what` and the last value otherwise.
    pub fn until(&self, limit: Duration, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.run(script, json!([]));
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if Instant::now() >= deadline {
                let page = self.run(
                    "return document.body ? document.body.innerText.slice(0, 2000) : null;",
                    json!([]),
                );
                panic!(
                    "{what}: not within {limit:?}; last: {v}; at {} the page read: {page}",
                    self.url()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Logs in at `base`/login with `token` by typing it into the form,
    /// and waits until the dashboard shows who is logged in.
    pub fn log_in(&self, base: &str, token: &str) {
        self.goto(&format!("{base}/login"));
        let field = self.find("#token");
        self.type_into(&field, token);
        self.click(&self.find("#login"));
        self.until(
            Duration::from_secs(20),
            "the dashboard shows who logged in",
            "const w = document.getElementById('who'); return w && w.textContent;",
        );
    }
}
