//! The web console in a real browser: headless Chromium driven through
//! chromedriver (W3C WebDriver over its HTTP API, spoken with reqwest: the
//! dozen commands used here did not justify a WebDriver crate whose
//! dependencies rebuild half the workspace) against a real gateway. Every page loads without a console error (the console's
//! `errors.js` records uncaught errors, rejections and CSP refusals in
//! `window.__consoleErrors`), an event's payload is on screen, and pausing
//! a destination and replaying a dead letter from the page take effect in
//! the gateway, checked through the API. Each page's screenshot is written
//! to `target/console-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh`
//! installs them). Without them the test says so and passes, except under
//! CI (`CI` set), where it fails.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_tests::config::{Config, Destination, Plugin, Topic, quoted};
use switchyard_tests::{Gateway, Reply, Sink, client, eventually, workspace};

const WAIT: Duration = Duration::from_secs(15);

fn wasm(name: &str) -> PathBuf {
    let p = workspace()
        .join("plugins/target/wasm32-wasip2/release")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/build-plugins.sh",
        p.display()
    );
    p
}
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The browsers chromedriver starts share its process group: end the
        // whole group, so a failed test leaves no Chromium behind.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Option<Driver> {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing; scripts/test.sh installs them"
        );
        eprintln!("Skipping the browser test: {CHROMEDRIVER} or {CHROMIUM} is missing.");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let d = Driver {
        child,
        url,
        profile: tempfile::tempdir().unwrap(),
    };
    eventually(WAIT, "chromedriver up", || async {
        let r = client()
            .get(format!("{}/status", d.url))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    Some(d)
}

/// How an element is found.
#[derive(Clone, Copy)]
enum Locator<'a> {
    Css(&'a str),
    Id(&'a str),
    XPath(&'a str),
}

impl Locator<'_> {
    fn body(&self) -> Value {
        match self {
            Locator::Css(s) => json!({"using": "css selector", "value": s}),
            Locator::Id(s) => json!({"using": "css selector", "value": format!("#{s}")}),
            Locator::XPath(s) => json!({"using": "xpath", "value": s}),
        }
    }
}

/// One WebDriver session.
struct Client {
    base: String,
}

/// A found element.
struct Element<'a> {
    c: &'a Client,
    id: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = client().request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.map_err(|e| e.to_string())?;
        let ok = r.status().is_success();
        let v: Value = r.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].to_string())
        }
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .unwrap();
    }

    async fn find(&self, l: Locator<'_>) -> Result<Element<'_>, String> {
        let v = self
            .call(reqwest::Method::POST, "/element", Some(l.body()))
            .await?;
        let id = v["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .ok_or_else(|| format!("no element id in {v}"))?
            .to_owned();
        Ok(Element { c: self, id })
    }

    /// Waits up to `WAIT` for an element to appear.
    async fn wait_for(&self, l: Locator<'_>) -> Result<Element<'_>, String> {
        let until = std::time::Instant::now() + WAIT;
        loop {
            match self.find(l).await {
                Ok(e) => return Ok(e),
                Err(e) if std::time::Instant::now() > until => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    async fn execute(&self, script: &str) -> Value {
        self.execute_with(script, json!([])).await
    }

    async fn execute_with(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
        .unwrap()
    }

    /// Presses Tab, as a keyboard user moves through a page.
    async fn tab(&self) {
        let tab = "\u{E004}";
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": tab}, {"type": "keyUp", "value": tab}]}]}),
            ),
        )
        .await
        .unwrap();
    }

    /// The cells of the row of table `caption` whose first cell reads
    /// `first`, by column heading, as the page shows them.
    async fn row(&self, caption: &str, first: &str) -> Value {
        self.execute_with(
            "const [caption, first] = arguments;
             const t = [...document.querySelectorAll('table')]
               .find((t) => t.caption && t.caption.textContent === caption);
             if (!t) return null;
             const heads = [...t.tHead.rows[0].cells].map((c) => c.textContent);
             const row = [...t.tBodies[0].rows].find((r) => r.cells[0].textContent === first);
             return row ? Object.fromEntries(heads.map((h, i) => [h, row.cells[i].textContent])) : null;",
            json!([caption, first]),
        )
        .await
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", None)
            .await
            .unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }

    async fn close(self) {
        let _ = self.call(reqwest::Method::DELETE, "", None).await;
    }
}

impl Element<'_> {
    async fn click(&self) -> Result<(), String> {
        self.c
            .call(
                reqwest::Method::POST,
                &format!("/element/{}/click", self.id),
                Some(json!({})),
            )
            .await
            .map(|_| ())
    }

    async fn text(&self) -> Result<String, String> {
        let v = self
            .c
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/text", self.id),
                None,
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    async fn send_keys(&self, text: &str) -> Result<(), String> {
        self.c
            .call(
                reqwest::Method::POST,
                &format!("/element/{}/value", self.id),
                Some(json!({ "text": text })),
            )
            .await
            .map(|_| ())
    }
}

async fn browser(d: &Driver) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                // Tests run as root in CI, where Chromium's sandbox can't start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1366,900",
                format!("--user-data-dir={}", d.profile.path().display()),
            ],
        },
    });
    let r: Value = client()
        .post(format!("{}/session", d.url))
        .json(&json!({ "capabilities": { "alwaysMatch": caps } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session: {r}"));
    Client {
        base: format!("{}/session/{id}", d.url),
    }
}

fn screenshots() -> PathBuf {
    let dir = workspace().join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Opens a console page, waits for `ready` (a CSS selector the page shows
/// once drawn), saves its screenshot, and checks nothing went wrong.
async fn page(c: &Client, gw: &Gateway, hash: &str, ready: &str, shot: &str) {
    c.goto(&gw.url(&format!("/console/{hash}"))).await;
    let l = if ready.starts_with("//") {
        Locator::XPath(ready)
    } else {
        Locator::Css(ready)
    };
    c.wait_for(l)
        .await
        .unwrap_or_else(|e| panic!("{hash}: {ready} never showed: {e}"));
    // Let the page's follow-up requests (charts, refresh) settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = c.screenshot().await;
    std::fs::write(screenshots().join(format!("{shot}.png")), png).unwrap();
    errors_are_none(c, hash).await;
    accessible(c, hash).await;
}

/// Every control has an accessible name (its label, `aria-label`,
/// `aria-labelledby`, its text or title; a placeholder is not one), no
/// element jumps the Tab order (`tabindex` > 0), and Tab moves the focus
/// onto controls with a visible focus ring.
async fn accessible(c: &Client, when: &str) {
    let unnamed = c
        .execute(
            "const name = (el) => [
                 el.getAttribute('aria-label'),
                 ...(el.labels ? [...el.labels].map((l) => l.textContent) : []),
                 ...(el.getAttribute('aria-labelledby') || '').split(' ').filter(Boolean)
                    .map((id) => (document.getElementById(id) || {}).textContent),
                 el.matches('input') ? '' : el.textContent,
                 el.getAttribute('title'),
               ].some((n) => n && n.trim());
             const bad = [...document.querySelectorAll('input, button, select, textarea, a[href]')]
               .filter((el) => !name(el)).map((el) => el.outerHTML.slice(0, 120));
             for (const el of document.querySelectorAll('[tabindex]'))
               if (el.tabIndex > 0) bad.push('tabindex > 0: ' + el.outerHTML.slice(0, 120));
             return bad;",
        )
        .await;
    assert_eq!(unnamed, json!([]), "controls without a name on {when}");
    c.execute("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);")
        .await;
    // From wherever the page left the focus (a short page ends soon: past
    // its last control the focus leaves the document, and the next Tab
    // comes back at the top).
    let mut landed = 0;
    for i in 0..4 {
        c.tab().await;
        let focus = c
            .execute(
                "const el = document.activeElement;
                 const st = getComputedStyle(el);
                 return [el.tagName, st.outlineStyle, parseFloat(st.outlineWidth) || 0, el.outerHTML.slice(0, 80)];",
            )
            .await;
        if focus[0] == "BODY" {
            continue;
        }
        landed += 1;
        assert!(
            focus[1] != "none" && focus[2].as_f64().unwrap_or(0.0) >= 2.0,
            "Tab {i} on {when}: the focus is not visible: {focus}"
        );
    }
    assert!(
        landed >= 2,
        "Tab moved the focus {landed} times in 4 on {when}"
    );
}

/// Clicks an element, finding it again if a page redraw replaced it
/// between the find and the click.
async fn click(c: &Client, l: Locator<'_>) {
    let until = std::time::Instant::now() + WAIT;
    loop {
        let r = match c.wait_for(l).await {
            Ok(e) => e.click().await,
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() > until => panic!("cannot click: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn errors_are_none(c: &Client, when: &str) {
    let errors = c
        .execute("return window.__consoleErrors || ['errors.js did not load'];")
        .await;
    assert_eq!(errors, json!([]), "console errors on {when}");
}

async fn api(gw: &Gateway, path: &str) -> Value {
    client()
        .get(gw.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The value of the metric line starting with `prefix` (labels included).
async fn metric(gw: &Gateway, prefix: &str) -> u64 {
    let text = gw.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {prefix}"))
}

/// The destinations page shows what `/metrics` and the API say: depth,
/// depth by priority, in flight and DLQ of each destination.
async fn same_numbers_as_metrics_and_api(c: &Client, gw: &Gateway) {
    for (name, depth, dlq) in [("jobs", 1, 0), ("hook", 0, 1)] {
        let shown = c.row("Destinations", name).await;
        let api_d = api(gw, &format!("/v1/destinations/{name}")).await;
        let l = format!("{{destination=\"{name}\"}} ");
        let from_metrics = [
            (
                "Depth",
                metric(gw, &format!("switchyard_queue_depth{l}")).await,
            ),
            (
                "In flight",
                metric(gw, &format!("switchyard_in_flight{l}")).await,
            ),
            ("DLQ", metric(gw, &format!("switchyard_dlq_depth{l}")).await),
        ];
        for (col, m) in from_metrics {
            assert_eq!(
                shown[col],
                m.to_string(),
                "{name} {col}: page {shown}, /metrics {m}"
            );
        }
        assert_eq!(shown["Depth"], api_d["queue_depth"].to_string(), "{name}");
        assert_eq!(shown["DLQ"], api_d["dlq_depth"].to_string(), "{name}");
        assert_eq!(shown["Depth"], depth.to_string(), "{name}: {shown}");
        assert_eq!(shown["DLQ"], dlq.to_string(), "{name}: {shown}");
        // The default priority (5) holds the one queued event of jobs.
        let by_p = metric(
            gw,
            &format!(
                "switchyard_queue_depth_by_priority{{destination=\"{name}\",priority=\"5\"}} "
            ),
        )
        .await;
        assert_eq!(api_d["depth_by_priority"][5], by_p, "{name}");
        let want = if by_p > 0 {
            format!("p5: {by_p}")
        } else {
            "none".into()
        };
        assert_eq!(shown["Depth by priority"], want, "{name}: {shown}");
    }
}

const V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}"#;
const V2: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_works_in_a_real_browser() {
    let Some(d) = driver().await else { return };
    let sink = Sink::start().await;
    // Dead-letters the first event at once (a 4xx is not retried).
    sink.set_default(Reply::status(400).body("rejected by the test"));
    let config = Config::new()
        .destination(Destination::pull("jobs"))
        .destination(
            Destination::http("hook", &sink.url)
                .set("timeout", quoted("2s"))
                .retry("{ initial = \"50ms\", multiplier = 2.0, max_attempts = 2 }"),
        )
        // A real plugin routes the events, so the plugins page has a row
        // and the event page verdicts.
        .plugin(
            Plugin::new("route-by-field", &wasm("route_by_field.wasm")).config([
                ("pointer", "/type"),
                ("routes", "never=jobs"),
                ("default", "jobs|hook"),
            ]),
        )
        .topic(
            Topic::new("orders")
                .routes(["jobs", "hook"])
                .plugins(["route-by-field"]),
        )
        .build();
    let gw = Gateway::start(&config).await;
    let r = client()
        .post(gw.url("/v1/topics/orders/events"))
        .header("content-type", "application/json")
        .header("x-request-source", "browser-test")
        .body(r#"{"order":42,"note":"visible-in-browser"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(WAIT, "the dead letter", || async {
        (api(&gw, "/v1/destinations/hook/dlq").await["depth"] == 1).then_some(())
    })
    .await;
    for schema in [V1, V2] {
        let r = client()
            .post(gw.url("/registry/subjects/orders-value/versions"))
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .body(json!({ "schema": schema }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A few samples for the charts.
    tokio::time::sleep(Duration::from_millis(4500)).await;

    let c = browser(&d).await;
    page(&c, &gw, "#/overview", "svg.chart polyline", "overview").await;
    page(&c, &gw, "#/events", "a[href^='#/events/01']", "events").await;
    page(&c, &gw, &format!("#/events/{id}"), "pre.payload", "event").await;
    let payload = c
        .find(Locator::Css("pre.payload"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        payload.contains("\"note\": \"visible-in-browser\""),
        "the payload, pretty-printed: {payload}"
    );
    let verdict = c.row("Plugin verdicts", "route-by-field").await;
    assert_eq!(verdict["Verdict"], "route", "{verdict}");
    assert_eq!(verdict["Destinations"], "jobs, hook", "{verdict}");
    page(
        &c,
        &gw,
        "#/destinations",
        "button[aria-label='Pause jobs']",
        "destinations",
    )
    .await;
    same_numbers_as_metrics_and_api(&c, &gw).await;
    page(
        &c,
        &gw,
        "#/plugins",
        "span[data-plugin='route-by-field']",
        "plugins",
    )
    .await;
    let shown = c.row("Plugins", "route-by-field").await;
    let api_plugin = api(&gw, "/v1/plugins").await["plugins"][0].clone();
    let version = api_plugin["version"].as_str().unwrap();
    assert_eq!(shown["Version (hash)"], version[..12], "{shown}");
    assert_eq!(shown["Loaded"], api_plugin["loaded_at"], "{shown}");
    assert_eq!(shown["Invocations"], "1", "one event routed: {shown}");
    for (col, want) in [
        ("Errors", "0"),
        ("Traps", "0"),
        ("Quarantined", "no"),
        ("Reloads", "0"),
        ("Refused reloads", "0"),
        ("Last error", ""),
        ("Refused reload", ""),
    ] {
        assert_eq!(shown[col], want, "{col}: {shown}");
    }
    let us: f64 = shown["µs / event"].as_str().unwrap().parse().unwrap();
    assert!(us > 0.0, "{shown}");
    page(
        &c,
        &gw,
        "#/schemas",
        "a[href='#/schemas/orders-value']",
        "schemas",
    )
    .await;
    page(
        &c,
        &gw,
        "#/schemas/orders-value",
        "pre.diff ins",
        "schema-diff",
    )
    .await;

    // Pause from the destinations page: the gateway holds the destination.
    page(
        &c,
        &gw,
        "#/destinations",
        "button[aria-label='Pause jobs']",
        "destinations",
    )
    .await;
    click(&c, Locator::Css("button[aria-label='Pause jobs']")).await;
    eventually(WAIT, "paused through the page", || async {
        (api(&gw, "/v1/destinations/jobs").await["paused"] == true).then_some(())
    })
    .await;
    c.wait_for(Locator::Css("button[aria-label='Resume jobs']"))
        .await
        .unwrap();
    errors_are_none(&c, "pause").await;

    // Replay the dead letter from the destination's page, after the
    // confirmation; the destination now accepts it.
    sink.set_default(Reply::status(200));
    page(
        &c,
        &gw,
        "#/destinations/hook",
        &format!("#sel-{id}"),
        "dead-letters",
    )
    .await;
    click(&c, Locator::Css(&format!("#sel-{id}"))).await;
    click(&c, Locator::Id("replay-selected")).await;
    click(&c, Locator::Css("dialog#confirm[open] #confirm-ok")).await;
    eventually(WAIT, "the replay's report on the page", || async {
        let t = c
            .find(Locator::Id("dlq-status"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (t == "Replayed 1.").then_some(())
    })
    .await;
    eventually(WAIT, "delivered after the replay", || async {
        let e = api(&gw, &format!("/v1/events/{id}")).await;
        let hook = e["deliveries"]
            .as_array()?
            .iter()
            .find(|d| d["destination"] == "hook")?
            .clone();
        (hook["state"] == "delivered").then_some(())
    })
    .await;
    assert_eq!(api(&gw, "/v1/destinations/hook/dlq").await["depth"], 0);
    errors_are_none(&c, "replay").await;

    c.close().await;
    gw.stop().await;
}

#[tokio::test]
async fn signing_in_keeps_the_token_in_the_tab_session_only() {
    let Some(d) = driver().await else { return };
    const TOKEN: &str = "console-admin-token-5e1f0a";
    let config = Config::new()
        .token("ops", TOKEN, ["admin"])
        .destination(Destination::pull("jobs"))
        .topic(Topic::new("orders").routes(["jobs"]))
        .build();
    let gw = Gateway::start(&config).await;
    let c = browser(&d).await;
    c.goto(&gw.url("/console/#/destinations")).await;
    // The API answers 401: the page offers the sign-in, and no error.
    click(&c, Locator::XPath("//main//button[text()='Sign in']")).await;
    c.wait_for(Locator::Css("dialog#signin[open] #signin-token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    click(&c, Locator::Id("signin-submit")).await;
    c.wait_for(Locator::Css("button[aria-label='Pause jobs']"))
        .await
        .unwrap();
    let stored = c
        .execute(
            "return [sessionStorage.getItem('switchyard.adminToken'), localStorage.length, location.href, document.cookie];",
        )
        .await;
    assert_eq!(stored[0], TOKEN);
    assert_eq!(stored[1], 0, "nothing in local storage");
    assert!(!stored[2].as_str().unwrap().contains(TOKEN), "{stored}");
    assert_eq!(stored[3], "", "no cookie");
    errors_are_none(&c, "sign-in").await;
    c.close().await;
    gw.stop().await;
}
