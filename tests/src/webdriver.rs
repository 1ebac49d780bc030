//! A real headless browser for the dashboard's tests: Debian's Chromium driven by its
//! `chromedriver` over the W3C WebDriver protocol (plain JSON over HTTP, spoken here with
//! the `reqwest` the tests already use).
//!
//! Chromium starts with `--headless --no-sandbox --disable-gpu --disable-background-networking
//! --disable-component-update --disable-sync --no-first-run` and a fresh profile directory:
//! it contacts nothing but the pages it is sent to. Missing Chromium or chromedriver fails
//! the test, with the command that installs them.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

/// The Chromium of the machine (Debian package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Its WebDriver (Debian package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session: chromedriver, and the headless Chromium it started.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: tokio::process::Child,
    port: u16,
    _profile: tempfile::TempDir,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session.
    pub async fn start() -> Self {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(program).exists(),
                "{program} is missing: install it with `apt-get install chromium chromium-driver`"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free port for chromedriver");
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        let base = format!("http://127.0.0.1:{port}");
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(response) = http.get(format!("{base}/status")).send().await {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    ready = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            ready,
            "chromedriver did not answer on port {port} within 10 s"
        );
        let profile = tempfile::tempdir().expect("a profile directory");
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--disable-sync",
                            "--no-first-run",
                            "--disable-dev-shm-usage",
                            format!("--user-data-dir={}", profile.path().display()),
                        ]
                    }
                }
            }
        });
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("create a WebDriver session")
            .json()
            .await
            .expect("WebDriver answer");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {answer}"))
            .to_owned();
        Self {
            http,
            session,
            driver,
            port,
            _profile: profile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/session/{}{path}",
            self.port, self.session
        )
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("WebDriver {path}: {error}"))
            .json()
            .await
            .unwrap_or_else(|error| panic!("WebDriver {path}: {error}"));
        answer["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        let answer = self.post("/url", json!({ "url": url })).await;
        assert!(answer.is_null(), "navigation to {url} failed: {answer}");
    }

    /// The address of the current page.
    pub async fn current_url(&self) -> String {
        let answer = self.call(reqwest::Method::GET, "/url", None).await;
        answer.as_str().unwrap_or_default().to_owned()
    }

    /// The HTML of the current page.
    pub async fn source(&self) -> String {
        let answer = self.call(reqwest::Method::GET, "/source", None).await;
        answer
            .as_str()
            .map_or_else(|| answer.to_string(), str::to_owned)
    }

    /// The first element matching the CSS `selector`, if any.
    pub async fn find(&self, selector: &str) -> Option<Element> {
        let answer = self
            .post(
                "/element",
                json!({ "using": "css selector", "value": selector }),
            )
            .await;
        answer[ELEMENT].as_str().map(|id| Element(id.to_owned()))
    }

    /// The element matching `selector`, which must be there.
    pub async fn element(&self, selector: &str) -> Element {
        match self.find(selector).await {
            Some(element) => element,
            None => panic!(
                "no element `{selector}` on {}:\n{}",
                self.current_url().await,
                self.source().await
            ),
        }
    }

    /// Clicks an element (a button submits its form, and the new page is loaded).
    pub async fn click(&self, element: &Element) {
        let answer = self
            .post(&format!("/element/{}/click", element.0), json!({}))
            .await;
        assert!(answer.is_null(), "click failed: {answer}");
    }

    /// Types `text` into an element.
    pub async fn type_into(&self, element: &Element, text: &str) {
        let answer = self
            .post(
                &format!("/element/{}/value", element.0),
                json!({ "text": text }),
            )
            .await;
        assert!(answer.is_null(), "typing failed: {answer}");
    }

    /// The visible text of the first element matching `selector` (empty if none).
    pub async fn text(&self, selector: &str) -> String {
        let Some(element) = self.find(selector).await else {
            return String::new();
        };
        let answer = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/text", element.0),
                None,
            )
            .await;
        answer.as_str().unwrap_or_default().to_owned()
    }

    /// The text of `selector` once the page shows it (a click's new page may still be
    /// loading), at most `timeout`; empty if it never does.
    pub async fn wait_for_text(&self, selector: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let text = self.text(selector).await;
            if !text.is_empty() || tokio::time::Instant::now() >= deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session (Chromium quits) and stops chromedriver.
    pub async fn quit(self) {
        // Drop does it: the same way whether the test ends or panics.
        drop(self);
    }
}

impl Drop for Browser {
    /// Ends the session, so that chromedriver makes Chromium quit (killing chromedriver
    /// alone would leave Chromium running), even when a test panics; then chromedriver is
    /// killed (`kill_on_drop`). A blocking request: Drop cannot await.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.session, self.port
        );
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            if stream.write_all(request.as_bytes()).is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer);
            }
        }
        let _ = self.driver.start_kill();
    }
}
