//! The web console in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), as an organiser, an attendee and an admin
//! would use it — forms, flashes, uploads, the QR code, the CSV export,
//! charts and payments. Screenshots of the main pages (1280 px and 375 px
//! wide) go to a temporary directory the test prints.
//!
//! Needs `TEST_CHROMEDRIVER` (chromedriver) and `TEST_CHROMIUM` (the
//! browser): skipped with a note when either is unset, a failure when set
//! and not working (CI sets both, see `.ci/run`).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};

crate::backend_tests!(the_console_works_in_a_browser);

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;
const PHONE: u32 = 375;
/// How many times a wait looks again (every 100 ms) before failing.
const TRIES: u32 = 600;

fn tool(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// chromedriver on a free port, in its own process group so that the
/// browsers it starts go with it when dropped (also on a failed test).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start(binary: &str, log: &Path) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log_file = std::fs::File::create(log).expect("chromedriver log file");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromedriver {binary} (TEST_CHROMEDRIVER): {e}")
            });
        let driver = Driver { child, port };
        let status = format!("{}/status", driver.url());
        let client = reqwest::Client::new();
        for _ in 0..TRIES {
            if let Ok(res) = client.get(&status).send().await
                && let Ok(body) = res.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "chromedriver {binary} did not become ready on port {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any browser left behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session against one `TestApp`.
struct Session<'a> {
    client: Client,
    app: &'a TestApp,
    shots: PathBuf,
    width: u32,
}

impl Session<'_> {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&self.app.url(path))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits until the page's path (with its query) satisfies `ok`.
    async fn wait_path(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        for _ in 0..TRIES {
            last = self.path().await;
            if ok(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "never reached {what}; still on {last}:\n{}",
            self.body_text().await
        );
    }

    async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        for _ in 0..TRIES {
            if let Ok(found) = self.client.find(Locator::Css(css)).await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no {css} on {}:\n{}",
            self.path().await,
            self.body_text().await
        );
    }

    /// Waits until `script` (a JS expression) is true.
    async fn wait_true(&self, what: &str, script: &str) {
        let code = format!("return !!({script});");
        for _ in 0..TRIES {
            if self.client.execute(&code, vec![]).await.ok() == Some(Value::Bool(true)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: never true on {}: {script}", self.path().await);
    }

    async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        }
    }

    async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("text")
    }

    async fn value(&self, css: &str) -> String {
        self.wait_for(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    /// Types into a field (after clearing it).
    async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.expect("clear");
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Sets a field's value by script (datetime-local fields, whose typing
    /// depends on the browser's locale).
    async fn set(&self, id: &str, value: &str) {
        self.wait_for(&format!("#{id}")).await;
        self.client
            .execute(
                "const f = document.getElementById(arguments[0]); f.value = arguments[1];\
                 f.dispatchEvent(new Event('input', {bubbles: true}));\
                 f.dispatchEvent(new Event('change', {bubbles: true}));\
                 return f.value;",
                vec![json!(id), json!(value)],
            )
            .await
            .unwrap_or_else(|e| panic!("set #{id}: {e}"));
        assert_eq!(self.value(&format!("#{id}")).await, value, "#{id}");
    }

    /// Clicks the button (inside `scope`, a CSS selector) labelled `label`.
    async fn press(&self, scope: &str, label: &str) {
        let scope = self.wait_for(scope).await;
        let xpath = format!(".//button[normalize-space(.)='{label}']");
        let button = scope
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("no button {label:?}: {e}"));
        button
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {label:?}: {e}"));
    }

    async fn flash(&self) -> String {
        self.text("p.flash").await
    }

    /// The whole page as a PNG (the window made as tall as the page, then
    /// set back), named `name`.
    async fn shot(&self, name: &str) {
        let tall = self
            .client
            .execute(
                "return Math.ceil(Math.max(document.documentElement.scrollHeight,\
                 document.body.scrollHeight) + (window.outerHeight - window.innerHeight));",
                vec![],
            )
            .await
            .expect("page height")
            .as_f64()
            .unwrap_or(f64::from(HEIGHT));
        let tall = (tall as u32).clamp(600, 8000);
        self.client
            .set_window_rect(0, 0, self.width, tall)
            .await
            .expect("resize for the screenshot");
        // Two frames so the new size is laid out and painted.
        let _ = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                vec![],
            )
            .await;
        let png = self.client.screenshot().await.expect("screenshot");
        let file = self.shots.join(format!("{name}.png"));
        std::fs::write(&file, png).expect("write the screenshot");
        self.client
            .set_window_rect(0, 0, self.width, HEIGHT)
            .await
            .expect("resize back");
    }

    async fn resize(&mut self, width: u32) {
        self.width = width;
        self.client
            .set_window_rect(0, 0, width, HEIGHT)
            .await
            .expect("resize");
        let inner = self
            .client
            .execute("return window.innerWidth;", vec![])
            .await
            .expect("innerWidth");
        assert_eq!(inner, json!(width), "the page is {width} px wide");
    }

    /// What sticks out: the page's scroll width when wider than the window,
    /// boxes reaching past the window's edge, and text wider than its box
    /// (`tag.class "text"`). Printed as a layout note, not a failure.
    async fn overflowing(&self) -> Vec<String> {
        let found = self
            .client
            .execute(
                "const w = document.documentElement.clientWidth; const out = [];\
                 const sw = document.documentElement.scrollWidth;\
                 if (sw > w) out.push('page scrollWidth ' + sw + ' > ' + w);\
                 const name = e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') +\
                   ' \"' + e.textContent.trim().slice(0, 40) + '\"';\
                 for (const e of document.querySelectorAll('main *')) {\
                   if (e instanceof SVGElement || e.closest('thead, .visually-hidden')) continue;\
                   const r = e.getBoundingClientRect();\
                   const p = e.parentElement.getBoundingClientRect();\
                   if (r.width > 0 && r.right > w + 1 && p.right <= w + 1) {\
                     out.push(name(e) + ' reaches ' + Math.round(r.right));\
                   } else if (e.children.length === 0 && e.scrollWidth > e.clientWidth + 1 &&\
                       e.clientWidth > 0 && getComputedStyle(e).overflowX === 'visible') {\
                     out.push(name(e) + ' text ' + e.scrollWidth + ' px in ' + e.clientWidth);\
                   }\
                 }\
                 return out;",
                vec![],
            )
            .await
            .expect("look for overflow");
        serde_json::from_value(found).unwrap_or_default()
    }

    async fn note_overflow(&self, page: &str) {
        let found = self.overflowing().await;
        if !found.is_empty() {
            eprintln!(
                "layout: {page} at {} px, sticking out: {found:?}",
                self.width
            );
        }
    }

    async fn sign_in(&self, username: &str) {
        self.goto("/console/login").await;
        self.fill("#username", username).await;
        self.fill("#password", PASSWORD).await;
        self.press("main.signin form", "Sign in").await;
        self.wait_path("the dashboard", |p| p == "/console/").await;
        let account = self.text("header .account").await;
        assert!(account.contains(username), "signed in as {account}");
    }

    async fn sign_out(&self) {
        self.press("header form.account", "Sign out").await;
        self.wait_path("the sign-in page", |p| p.starts_with("/console/login"))
            .await;
        self.wait_for("#username").await;
    }
}

/// A poster-like PNG: a 240×336 gradient with a band across.
fn poster_png(dir: &Path) -> PathBuf {
    let image = image::RgbImage::from_fn(240, 336, |x, y| {
        if (150..190).contains(&y) {
            image::Rgb([250, 250, 245])
        } else {
            image::Rgb([(x * 255 / 240) as u8, 80, (y * 255 / 336) as u8])
        }
    });
    let path = dir.join("poster.png");
    image.save(&path).expect("write the poster PNG");
    path
}

/// `YYYY-MM-DDTHH:MM` in the server's time zone, `days` from now (a
/// datetime-local field's value).
fn local(app: &TestApp, days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .with_timezone(&app.state.config.time_zone)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

async fn named_user(app: &TestApp, username: &str, group: Option<&str>, first: &str, last: &str) {
    let (id, token) = match group {
        Some(group) => app.user_in(username, group).await,
        None => app.user(username).await,
    };
    app.patch(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "first_name": first, "last_name": last }),
    )
    .await
    .assert(200);
}

async fn the_console_works_in_a_browser(app: &TestApp) {
    let (Some(driver), Some(chromium)) = (tool("TEST_CHROMEDRIVER"), tool("TEST_CHROMIUM")) else {
        eprintln!("skipped: TEST_CHROMEDRIVER and TEST_CHROMIUM are not both set");
        return;
    };
    let started = Instant::now();
    let backend = if app.var("DATABASE_URL").is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let shots = std::env::temp_dir()
        .join("dicoevent-console-shots")
        .join(backend);
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let files = tempfile::tempdir().expect("temporary directory");
    let driver = Driver::start(&driver, &shots.join("chromedriver.log")).await;

    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                format!("--window-size={WIDTH},{HEIGHT}"),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .unwrap_or_else(|e| panic!("a session from chromedriver with {chromium}: {e}"));
    let session = Session {
        client: client.clone(),
        app,
        shots: shots.clone(),
        width: WIDTH,
    };
    // Whatever happens in the flow, the browser is closed before the
    // failure (if any) is reported; the driver goes when dropped.
    let outcome = AssertUnwindSafe(flow(session, files.path()))
        .catch_unwind()
        .await;
    let _ = client.close().await;
    drop(driver);
    if let Err(panic) = outcome {
        eprintln!("screenshots so far: {}", shots.display());
        std::panic::resume_unwind(panic);
    }
    println!(
        "{backend}: the console flow passed in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
}

/// The door (API.md §7): the organiser chooses tonight's event, scans a
/// ticket (typed, as a keyboard-wedge scanner does), is told about another
/// event's ticket, finds a person by name and admits them with one button;
/// the code field keeps the focus after every answer.
/// The id of the element with the focus.
async fn focused(s: &Session<'_>) -> serde_json::Value {
    s.client
        .execute(
            "return document.activeElement && document.activeElement.id;",
            vec![],
        )
        .await
        .expect("focus")
}

async fn door_mode(s: &mut Session<'_>, other_event: &str) {
    let app = s.app;
    s.sign_out().await;
    let (rina, _) = app.login_ok("rina", PASSWORD).await;
    let (event, free, _) =
        crate::console::event_at_the_door(app, &rina, "Jakarta Rust Meetup #12").await;
    let (siti, _) = app.login_ok("siti", PASSWORD).await;
    let tonight = app.register(&siti, &free).await;
    tonight.assert(201);
    for (username, first, last) in [
        ("dewi", "Dewi", "Lestari"),
        ("agus", "Agus", "Wijaya"),
        ("wulan", "Wulan", "Sari"),
    ] {
        named_user(app, username, None, first, last).await;
        let (token, _) = app.login_ok(username, PASSWORD).await;
        app.register(&token, &free).await.assert(201);
    }
    let ticket = |id: String, token: String| async move {
        app.get(&format!("/api/registrations/{id}/ticket/"), Some(&token))
            .await
            .body
            .clone()
    };
    let code = ticket(tonight.id(), siti.clone()).await["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let mine = app.get("/api/registrations/", Some(&siti)).await;
    let elsewhere = mine.body["registrations"]
        .as_array()
        .expect("registrations")
        .iter()
        .find(|r| r["event"] != event.as_str())
        .expect("her other registration")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let other_code = ticket(elsewhere, siti.clone()).await["code"]
        .as_str()
        .expect("code")
        .to_owned();

    s.sign_in("rina").await;
    s.goto("/console/scan/").await;
    s.wait_for("ul.doors").await;
    assert!(
        s.text("main").await.contains(other_event),
        "her events are offered"
    );
    s.shot("17-door-choose").await;
    s.client
        .find(Locator::Css(&format!(
            "form.door-choice input[name='event'][value='{event}'] ~ button"
        )))
        .await
        .expect("tonight's door")
        .click()
        .await
        .expect("choose tonight's door");
    s.wait_for(".door-count").await;
    assert!(s.text("h1").await.contains("Jakarta Rust Meetup #12"));
    assert_eq!(s.text(".door-count").await, "0 admitted of 4");
    assert_eq!(
        focused(s).await,
        json!("code"),
        "the scanner types into the code field"
    );
    // A scanner types the code and presses Enter.
    s.wait_for("#code")
        .await
        .send_keys(&format!("{code}\n"))
        .await
        .expect("scan");
    s.wait_true(
        "the admission",
        "document.querySelector('.result.admitted') !== null",
    )
    .await;
    assert!(s.text(".result .headline").await.contains("Siti Rahma"));
    assert!(
        s.text(".result .holder")
            .await
            .contains("Jakarta Rust Meetup #12")
    );
    assert_eq!(s.text(".door-count").await, "1 admitted of 4");
    assert_eq!(
        focused(s).await,
        json!("code"),
        "focus kept after an answer"
    );
    s.shot("18-door-admitted").await;
    // Her ticket for another event: refused, naming that event.
    s.wait_for("#code")
        .await
        .send_keys(&format!("{other_code}\n"))
        .await
        .expect("scan");
    s.wait_true(
        "the refusal",
        "document.querySelector('.result.refused') !== null",
    )
    .await;
    assert!(s.text(".result").await.contains(other_event));
    assert_eq!(focused(s).await, json!("code"));
    s.shot("19-door-wrong-event").await;
    // Found by name, admitted with one button.
    s.fill("#q", "wul").await;
    s.press(".door-search form.search", "Search").await;
    s.wait_for("ul.people").await;
    assert!(s.text("ul.people").await.contains("Wulan Sari"));
    s.shot("20-door-search").await;
    s.resize(PHONE).await;
    s.note_overflow("door search").await;
    s.shot("20-door-search-375").await;
    s.resize(WIDTH).await;
    s.press("ul.people", "Admit").await;
    s.wait_true(
        "the admission by name",
        "document.querySelector('.result.admitted') !== null",
    )
    .await;
    assert!(s.text(".result .headline").await.contains("Wulan Sari"));
    assert_eq!(s.text(".door-count").await, "2 admitted of 4");
    assert!(s.text("ul.people").await.contains("Checked in"));
    assert_eq!(focused(s).await, json!("code"));
    s.shot("21-door-admitted-by-name").await;
    s.resize(PHONE).await;
    s.note_overflow("door").await;
    s.shot("21-door-admitted-by-name-375").await;
    s.resize(WIDTH).await;
    let checkins = app
        .get(&format!("/api/checkins/?event={event}"), app.admin())
        .await;
    let methods: Vec<&str> = checkins.body["checkins"]
        .as_array()
        .expect("checkins")
        .iter()
        .map(|c| c["method"].as_str().expect("method"))
        .collect();
    assert_eq!(methods, ["manual", "scan"]);

    // The attendee's ticket now says she is in.
    s.sign_out().await;
    s.sign_in("siti").await;
    s.goto("/console/my/").await;
    s.wait_for(".checked-in").await;
    assert!(s.text(".checked-in").await.starts_with("Checked in at "));
    s.shot("22-my-tickets-checked-in").await;
    s.resize(PHONE).await;
    s.note_overflow("my tickets, checked in").await;
    s.shot("22-my-tickets-checked-in-375").await;
    s.resize(WIDTH).await;
}

async fn flow(mut s: Session<'_>, files: &Path) {
    let app = s.app;
    named_user(app, "rina", Some("organizer"), "Rina", "Wulandari").await;
    named_user(app, "siti", None, "Siti", "Rahma").await;
    named_user(app, "budi", Some("admin"), "Budi", "Santoso").await;
    let event_name = "Rust Night Jakarta: async, axum and a lot of coffee";

    // 1. The organiser signs in and lands on the dashboard.
    s.goto("/console/").await;
    s.wait_path("the sign-in page", |p| p.starts_with("/console/login"))
        .await;
    s.shot("01-login").await;
    s.sign_in("rina").await;
    s.shot("02-dashboard-organiser-empty").await;

    // 2. A new event: without a name, the error under the field and
    // the other values kept; then with it.
    s.goto("/console/events/new").await;
    s.fill("#event-category", "Meetup").await;
    s.fill("#event-location", "GoWork Plaza Indonesia, Jakarta")
        .await;
    let starts = local(app, 30);
    s.set("event-start_time", &starts).await;
    let end_time = (chrono::Utc::now() + chrono::Duration::days(30) + chrono::Duration::hours(3))
        .with_timezone(&app.state.config.time_zone)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    s.set("event-end_time", &end_time).await;
    s.fill("#event-quota", "120").await;
    s.wait_for("#event-status")
        .await
        .select_by_value("scheduled")
        .await
        .expect("choose scheduled");
    s.fill(
        "#event-description",
        "An evening of talks about async Rust, axum and SeaORM, with time to talk after.",
    )
    .await;
    s.press("form.form", "Create event").await;
    let invalid = s.wait_for(".field.invalid").await;
    invalid
        .find(Locator::Css("#event-name"))
        .await
        .expect("the invalid field is the name");
    let error = invalid
        .find(Locator::Css("p.error"))
        .await
        .expect("an error under the name")
        .text()
        .await
        .expect("error text");
    assert!(!error.trim().is_empty(), "the name's error says something");
    assert_eq!(s.path().await, "/console/events/new");
    assert_eq!(
        s.value("#event-location").await,
        "GoWork Plaza Indonesia, Jakarta"
    );
    assert_eq!(s.value("#event-category").await, "Meetup");
    assert_eq!(s.value("#event-start_time").await, starts);
    assert_eq!(s.value("#event-end_time").await, end_time);
    assert_eq!(s.value("#event-quota").await, "120");
    assert_eq!(s.value("#event-status").await, "scheduled");
    assert!(
        s.value("#event-description")
            .await
            .starts_with("An evening")
    );
    let invalid_count = s
        .client
        .execute(
            "return document.querySelectorAll('.field.invalid').length;",
            vec![],
        )
        .await
        .expect("count");
    assert_eq!(invalid_count, json!(1), "only the name is wrong");
    s.shot("03-new-event-with-error").await;
    s.fill("#event-name", event_name).await;
    s.press("form.form", "Create event").await;
    let event_path = s
        .wait_path("the new event's page", |p| {
            p.strip_prefix("/console/events/")
                .and_then(|rest| rest.strip_suffix('/'))
                .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
        })
        .await;
    let event_id = event_path
        .trim_start_matches("/console/events/")
        .trim_end_matches('/')
        .to_owned();
    let flash = s.flash().await;
    assert!(flash.contains("created"), "flash: {flash}");
    assert!(s.text("h1").await.contains(event_name));

    // 3. A ticket type.
    s.fill("#ticket-name", "Regular").await;
    s.fill("#ticket-price", "150000").await;
    s.fill("#ticket-quota", "100").await;
    s.set("ticket-sales_start", &local(app, -1)).await;
    s.set("ticket-sales_end", &local(app, 7)).await;
    s.press("#tickets form", "Add ticket type").await;
    s.wait_true(
        "the ticket is listed",
        "[...document.querySelectorAll('#tickets table tbody td')]\
             .some(td => td.textContent.trim() === 'Regular')",
    )
    .await;
    let flash = s.flash().await;
    assert!(flash.contains("Regular"), "flash: {flash}");

    // 4. A poster, shown from the media endpoint once uploaded.
    let poster = poster_png(files);
    s.wait_for("#poster-image")
        .await
        .send_keys(&poster.display().to_string())
        .await
        .expect("choose the poster file");
    s.press("#posters form", "Upload").await;
    let img = s.wait_for("#posters ul.posters img").await;
    let src = img.attr("src").await.expect("src").unwrap_or_default();
    assert!(src.starts_with("/api/media/"), "poster src {src}");
    s.client
        .execute(
            "document.querySelector('#posters ul.posters img').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scroll to the poster");
    s.wait_true(
        "the poster loaded",
        "(i => i.complete && i.naturalWidth > 0)\
             (document.querySelector('#posters ul.posters img'))",
    )
    .await;
    let flash = s.flash().await;
    assert!(flash.contains("Poster uploaded"), "flash: {flash}");

    // The link the organiser shares, and the list of upcoming events, as
    // anyone sees them (signed out).
    s.sign_out().await;
    s.goto(&format!("/e/{event_id}")).await;
    s.wait_true(
        "the public page's poster loaded",
        "[...document.querySelectorAll('img.poster')].every(i => i.complete && i.naturalWidth > 0)",
    )
    .await;
    assert!(s.text("h1").await.contains(event_name));
    s.shot("04-public-event").await;
    s.resize(PHONE).await;
    s.note_overflow("public event").await;
    s.shot("04-public-event-375").await;
    s.resize(WIDTH).await;
    s.goto("/").await;
    s.wait_for(".cards.events").await;
    s.shot("04-public-home").await;
    s.resize(PHONE).await;
    s.note_overflow("public home").await;
    s.shot("04-public-home-375").await;
    s.resize(WIDTH).await;

    // 5. The attendee registers from Browse.
    s.sign_in("siti").await;
    s.goto("/console/browse/").await;
    s.wait_for(".cards.events").await;
    s.note_overflow("browse").await;
    s.shot("05-browse").await;
    s.client
        .find(Locator::LinkText(event_name))
        .await
        .expect("the event in Browse")
        .click()
        .await
        .expect("open the event");
    let browse_event = format!("/console/browse/{event_id}/");
    s.wait_path("the event in Browse", |p| p == browse_event)
        .await;
    s.wait_true(
        "the poster on the public page loaded",
        "[...document.querySelectorAll('img.poster')].every(i => i.complete && i.naturalWidth > 0)",
    )
    .await;
    s.shot("06-browse-event").await;
    s.press(".offer", "Register").await;
    s.wait_path("My tickets", |p| p == "/console/my/").await;
    s.wait_for(".ticket .qr svg").await;
    let flash = s.flash().await;
    assert!(flash.contains("registered"), "flash: {flash}");
    assert!(s.text(".ticket h2").await.contains(event_name));
    s.shot("07-my-tickets").await;
    s.resize(PHONE).await;
    s.note_overflow("my tickets").await;
    s.shot("07-my-tickets-375").await;
    s.resize(WIDTH).await;

    // The attendee pays (a pending payment, through the API).
    let (attendee, _) = app.login_ok("siti", PASSWORD).await;
    let mine = app.get("/api/registrations/", Some(&attendee)).await;
    mine.assert(200);
    let registration = mine.body["registrations"][0]["id"]
        .as_str()
        .expect("the registration's id")
        .to_owned();
    app.post(
        "/api/payments/",
        Some(&attendee),
        json!({
            "registration_id": registration,
            "payment_method": "QRIS",
            "amount_paid": 150000,
        }),
    )
    .await
    .assert(201);
    s.sign_out().await;

    // 6. The organiser finds her, exports the list, sees the chart.
    s.sign_in("rina").await;
    s.shot("02-dashboard-organiser").await;
    s.goto("/console/events/").await;
    s.wait_for("table").await;
    s.shot("04-events").await;
    s.goto(&event_path).await;
    s.fill("#q", "Rahma").await;
    s.press("#registrations form.search", "Search").await;
    s.wait_path("the search", |p| p.contains("q=Rahma")).await;
    let rows = s.text("#registrations table tbody").await;
    assert!(
        rows.contains("Siti Rahma") || (rows.contains("Siti") && rows.contains("Rahma")),
        "{rows}"
    );
    assert!(rows.contains("siti@example.com"), "{rows}");
    let csv = s
        .client
        .execute_async(
            "const [url, done] = arguments;\
                 fetch(url, {credentials: 'same-origin'})\
                 .then(r => r.text().then(t => done(r.status + '\\n' + t)))\
                 .catch(e => done('error ' + e));",
            vec![json!(format!("{event_path}registrations.csv"))],
        )
        .await
        .expect("fetch the CSV");
    let csv = csv.as_str().expect("CSV text");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("200"), "{csv}");
    assert_eq!(
        lines.next(),
        Some(
            "registration_id,username,email,first_name,last_name,ticket,registered_at,payment_status,checked_in_at"
        ),
        "{csv}"
    );
    let row = lines.next().expect("the attendee's row");
    assert!(
        row.starts_with(&format!(
            "\"{registration}\",\"siti\",\"siti@example.com\",\"Siti\",\"Rahma\",\"Regular\","
        )),
        "{row}"
    );
    assert!(row.contains(",\"pending\","), "{row}");
    assert!(lines.next().is_none(), "{csv}");
    // Today's bar says 1.
    s.goto(&event_path).await;
    let chart = s
        .client
        .execute(
            "const svg = document.querySelector('#chart svg');\
                 const bars = [...svg.querySelectorAll('rect.bar')];\
                 const last = bars[bars.length - 1];\
                 return {\
                   last: last.querySelector('title').textContent,\
                   values: [...svg.querySelectorAll('text.value')].map(t => t.textContent),\
                   height: last.getBBox().height,\
                   row: [...document.querySelectorAll('#chart details tbody tr')].pop().textContent\
                 };",
            vec![],
        )
        .await
        .expect("read the chart");
    let today = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&app.state.config.time_zone)
            .format("%a %-d %b")
            .to_string()
    };
    let now = chrono::Utc::now();
    let days = [today(now), today(now - chrono::Duration::minutes(5))];
    assert!(
        days.iter().any(|d| chart["last"] == format!("{d}: 1")),
        "today's bar {chart}"
    );
    assert_eq!(chart["values"], json!(["1"]), "{chart}");
    assert!(chart["height"].as_f64().is_some_and(|h| h > 0.0), "{chart}");
    assert!(
        chart["row"].as_str().is_some_and(|r| r.ends_with('1')),
        "{chart}"
    );
    s.shot("08-event").await;
    s.resize(PHONE).await;
    s.note_overflow("the event page").await;
    s.shot("08-event-375").await;
    s.resize(WIDTH).await;
    s.sign_out().await;

    // 7. The admin marks the payment completed.
    s.sign_in("budi").await;
    s.shot("09-dashboard-admin").await;
    s.goto(&event_path).await;
    s.press("#payments", "Mark completed").await;
    s.wait_path("the event page", |p| p == event_path).await;
    s.wait_true(
        "the payment is completed",
        "(b => b && b.textContent.trim() === 'Paid')\
             (document.querySelector('#payments .badge'))",
    )
    .await;
    let flash = s.flash().await;
    assert!(flash.contains("completed"), "flash: {flash}");
    s.shot("10-event-admin").await;
    // The event's history names the payment's change.
    let history = s.text("#history").await;
    assert!(history.contains("payment updated"), "history: {history}");
    s.goto("/console/users/").await;
    s.wait_for("table").await;
    s.shot("11-users").await;
    s.goto("/console/jobs/").await;
    s.wait_for("h1").await;
    s.shot("12-jobs").await;

    // The log page filters the history by action.
    s.goto("/console/history/?action=payment.").await;
    s.wait_for("table.history").await;
    let log = s.text("table.history").await;
    assert!(
        log.contains("budi"),
        "log: {log} page: {}",
        s.body_text().await
    );
    assert!(
        log.contains("payment status pending → completed"),
        "log: {log}"
    );
    assert!(!log.contains("event created"), "filtered: {log}");
    s.shot("13-history").await;
    s.resize(PHONE).await;
    s.note_overflow("the history page").await;
    s.shot("13-history-375").await;
    s.resize(WIDTH).await;

    // Webhooks: add an endpoint (its secret shown once), send a test
    // message, see it in the delivery log, send it again.
    let mut receiver = crate::webhooks::Receiver::start().await;
    s.goto("/console/webhooks/").await;
    s.fill("#w-url", "not a url").await;
    s.press("form.form", "Add endpoint").await;
    s.wait_true(
        "the URL refused",
        "(e => !!e && e.textContent.includes('valid URL'))(document.querySelector('p.error'))",
    )
    .await;
    s.fill("#w-url", &receiver.url()).await;
    s.fill("#w-types", "registration.*, webhook.test").await;
    s.press("form.form", "Add endpoint").await;
    // The page before had an error too: wait for this one.
    s.wait_true(
        "the message type refused",
        "(e => !!e && e.textContent.includes('webhook.test'))(document.querySelector('p.error'))",
    )
    .await;
    s.fill("#w-types", "checkin.*").await;
    s.fill("#w-description", "Badge printer").await;
    s.press("form.form", "Add endpoint").await;
    let secret = s.text("#secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    s.shot("14-webhook-secret").await;
    s.goto("/console/webhooks/").await;
    s.wait_for("table").await;
    assert!(
        !s.body_text().await.contains(&secret),
        "the secret is shown once"
    );
    s.shot("15-webhooks").await;
    let endpoint = s
        .client
        .execute(
            "return document.querySelector('table a').getAttribute('href');",
            vec![],
        )
        .await
        .expect("the endpoint's link");
    let endpoint = endpoint.as_str().expect("a link").to_owned();
    s.goto(&endpoint).await;
    s.press(".actions", "Send a test message").await;
    let flash = s.flash().await;
    assert!(flash.contains("test message"), "flash: {flash}");
    dicoevent::jobs::run_pass(&s.app.state, "browser-worker")
        .await
        .expect("a pass");
    s.goto(&endpoint).await;
    let log = s.text("#deliveries table").await;
    assert!(
        log.contains("webhook.test") && log.contains("200"),
        "log: {log}"
    );
    s.press("#deliveries", "Send again").await;
    let flash = s.flash().await;
    assert!(flash.contains("queued again"), "flash: {flash}");
    dicoevent::jobs::run_pass(&s.app.state, "browser-worker")
        .await
        .expect("a pass");
    s.goto(&endpoint).await;
    s.wait_for("#deliveries table").await;
    s.shot("16-webhook").await;
    s.resize(PHONE).await;
    s.note_overflow("the webhook page").await;
    s.shot("16-webhook-375").await;
    s.resize(WIDTH).await;
    let sent = receiver.seen();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].id, sent[1].id, "sent again under the same id");
    assert!(
        sent.iter()
            .all(|m| m.status == 200 && m.body.contains("webhook.test"))
    );
    receiver.stop().await;

    door_mode(&mut s, event_name).await;

    // 8. Signed out: the sign-in page.
    s.sign_out().await;
    assert_eq!(s.path().await, "/console/login");

    stranger(&mut s, &event_id, event_name, files).await;
}

/// Shows a mail's HTML part (from its `.eml`) as a mail program would, at
/// 700 and 375 px, and screenshots both.
async fn mail_shots(s: &mut Session<'_>, raw: &str, files: &Path, name: &str) {
    let file = files.join(format!("{name}.html"));
    std::fs::write(&file, crate::signup::html_part(raw)).expect("write the mail's HTML");
    s.client
        .goto(&format!("file://{}", file.display()))
        .await
        .expect("open the mail");
    s.resize(700).await;
    s.shot(name).await;
    s.resize(PHONE).await;
    let wide = s
        .client
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .expect("scroll width");
    assert!(
        wide.as_u64().is_some_and(|w| w <= u64::from(PHONE)),
        "{name} is {wide} px wide at {PHONE}"
    );
    s.shot(&format!("{name}-375")).await;
    s.resize(WIDTH).await;
}

/// A stranger's way in (API.md §8.1): the shared link, sign-up, the
/// verification link from the mail, registering, the confirmation mail;
/// then a forgotten password reset by mail.
async fn stranger(s: &mut Session<'_>, event_id: &str, event_name: &str, files: &Path) {
    let app = s.app;
    s.goto(&format!("/e/{event_id}")).await;
    s.client
        .find(Locator::LinkText("Register"))
        .await
        .expect("a Register link on the public page")
        .click()
        .await
        .expect("click Register");
    s.wait_path("the sign-in page", |p| p.starts_with("/console/login"))
        .await;
    s.client
        .find(Locator::LinkText("Create an account"))
        .await
        .expect("a sign-up link on the sign-in page")
        .click()
        .await
        .expect("click Create an account");
    s.wait_path("the sign-up page", |p| p.starts_with("/console/signup"))
        .await;
    // A mistake first: the error under its field, what was typed kept.
    s.fill("#signup-username", "maya.sari").await;
    s.fill("#signup-email", "maya@example").await;
    s.fill("#signup-first_name", "Maya").await;
    s.fill("#signup-last_name", "Sari").await;
    s.fill("#signup-password", "tulip-Harbour-91").await;
    s.press("main.signin form", "Create my account").await;
    s.wait_for(".field.invalid").await;
    assert!(
        s.text(".field.invalid .error")
            .await
            .contains("valid email")
    );
    assert_eq!(s.value("#signup-first_name").await, "Maya");
    s.shot("23-signup-error").await;
    s.resize(PHONE).await;
    s.note_overflow("sign-up").await;
    s.shot("23-signup-error-375").await;
    s.resize(WIDTH).await;
    s.fill("#signup-email", "maya@example.com").await;
    s.fill("#signup-password", "tulip-Harbour-91").await;
    s.press("main.signin form", "Create my account").await;
    let browse = format!("/console/browse/{event_id}/");
    s.wait_path("the event, signed in", |p| p == browse).await;
    assert!(s.flash().await.contains("maya@example.com"));
    assert!(
        s.text(".verify-note")
            .await
            .contains("Verify your e-mail address")
    );
    s.shot("24-signed-up").await;
    s.resize(PHONE).await;
    s.note_overflow("signed up").await;
    s.shot("24-signed-up-375").await;
    s.resize(WIDTH).await;
    // Registering before verifying: refused in words.
    s.press(".offer", "Register").await;
    s.wait_for("p.alert").await;
    assert!(
        s.text("p.alert")
            .await
            .contains("Verify your e-mail address first.")
    );

    // The link from the mail.
    dicoevent::jobs::run_pass(&app.state, "browser-worker")
        .await
        .expect("a worker pass");
    let raw = crate::signup::raw_mails(app)
        .into_iter()
        .find(|m| m.contains("maya@example.com") && m.contains("Verify your e-mail"))
        .expect("the verification mail");
    let link = crate::signup::link_in(&crate::signup::decode_qp(&raw), "/console/verify/");
    mail_shots(s, &raw, files, "25-mail-verify").await;
    s.goto(&link).await;
    assert!(s.text("main").await.contains("is verified"));
    s.shot("26-verified").await;
    s.resize(PHONE).await;
    s.note_overflow("verified").await;
    s.shot("26-verified-375").await;
    s.resize(WIDTH).await;
    s.goto(&browse).await;
    assert!(s.client.find(Locator::Css(".verify-note")).await.is_err());
    s.press(".offer", "Register").await;
    s.wait_path("My tickets", |p| p == "/console/my/").await;
    assert!(s.text(".ticket h2").await.contains(event_name));
    dicoevent::jobs::run_pass(&app.state, "browser-worker")
        .await
        .expect("a worker pass");
    let confirmation = crate::signup::raw_mails(app)
        .into_iter()
        .find(|m| m.contains("maya@example.com") && m.contains("Registration confirmed"))
        .expect("the confirmation mail");
    mail_shots(s, &confirmation, files, "27-mail-confirmation").await;

    // Paying: the amount due and the organiser's instructions, a proof of
    // transfer sent, the organiser confirms it, the ticket reads Paid.
    let (organiser, _) = app.login_ok("rina", PASSWORD).await;
    app.patch(
        &format!("/api/events/{event_id}/"),
        Some(&organiser),
        json!({"payment_instructions": "Transfer to BCA 123-456-7890 (PT Rust Jakarta).\nWrite your short code as the reference."}),
    )
    .await
    .assert(200);
    s.goto("/console/my/").await;
    let due = s.text(".to-pay .due").await;
    assert!(due.starts_with("Awaiting payment — pay IDR"), "{due}");
    assert!(
        s.text(".to-pay .instructions")
            .await
            .contains("BCA 123-456-7890")
    );
    s.shot("31-my-ticket-to-pay").await;
    s.resize(PHONE).await;
    s.note_overflow("my tickets, to pay").await;
    s.shot("31-my-ticket-to-pay-375").await;
    s.resize(WIDTH).await;
    let receipt = poster_png(files);
    s.wait_for(".proof-form input[type=file]")
        .await
        .send_keys(&receipt.display().to_string())
        .await
        .expect("choose the proof");
    s.press(".proof-form", "Send proof").await;
    s.wait_path("My tickets", |p| p.starts_with("/console/my/"))
        .await;
    assert!(s.flash().await.contains("proof of transfer is sent"));
    assert!(s.text(".to-pay .due").await.contains("Proof received"));
    s.sign_out().await;
    s.sign_in("rina").await;
    s.goto("/console/payments/").await;
    s.wait_for("table.payments").await;
    s.shot("32-payments-pending").await;
    s.resize(PHONE).await;
    s.note_overflow("payments").await;
    s.shot("32-payments-pending-375").await;
    s.resize(WIDTH).await;
    s.client
        .find(Locator::XPath(
            "//tr[td[contains(., 'Maya Sari')]]//button[normalize-space(.)='Mark completed']",
        ))
        .await
        .expect("Maya's payment to confirm")
        .click()
        .await
        .expect("confirm the payment");
    s.wait_for("p.flash").await;
    assert!(s.flash().await.contains("completed"));
    // A ticket type is edited on its own page.
    s.goto(&format!("/console/events/{event_id}/")).await;
    s.client
        .find(Locator::LinkText("Edit"))
        .await
        .expect("an Edit link for the ticket type")
        .click()
        .await
        .expect("open the ticket's edit page");
    s.wait_path("the ticket's edit page", |p| p.ends_with("/edit"))
        .await;
    s.wait_for("#ticket-price").await;
    s.shot("33-ticket-edit").await;
    s.resize(PHONE).await;
    s.note_overflow("ticket edit").await;
    s.shot("33-ticket-edit-375").await;
    s.resize(WIDTH).await;
    s.sign_out().await;
    s.fill("#username", "maya.sari").await;
    s.fill("#password", "tulip-Harbour-91").await;
    s.press("main.signin form", "Sign in").await;
    s.wait_path("the dashboard", |p| p == "/console/").await;
    s.goto("/console/my/").await;
    assert_eq!(s.text(".ticket .badge").await, "Paid");
    assert!(s.client.find(Locator::Css(".to-pay")).await.is_err());
    s.sign_out().await;

    // A forgotten password.
    s.client
        .find(Locator::LinkText("Forgot your password?"))
        .await
        .expect("a reset link on the sign-in page")
        .click()
        .await
        .expect("click Forgot your password?");
    s.wait_path("the reset form", |p| p == "/console/password-reset")
        .await;
    s.fill("#reset-email", "Maya@Example.com").await;
    s.press("main.signin form", "Send me a link").await;
    s.wait_for("p.flash.ok").await;
    s.shot("28-reset-asked").await;
    s.resize(PHONE).await;
    s.note_overflow("reset asked").await;
    s.shot("28-reset-asked-375").await;
    s.resize(WIDTH).await;
    dicoevent::jobs::run_pass(&app.state, "browser-worker")
        .await
        .expect("a worker pass");
    let raw = crate::signup::raw_mails(app)
        .into_iter()
        .find(|m| m.contains("maya@example.com") && m.contains("Choose a new DicoEvent password"))
        .expect("the reset mail");
    let link = crate::signup::link_in(&crate::signup::decode_qp(&raw), "/console/password-reset/");
    mail_shots(s, &raw, files, "29-mail-reset").await;
    s.goto(&link).await;
    s.fill("#new-password", "123").await;
    s.press("main.signin form", "Set my new password").await;
    s.wait_for(".field.invalid").await;
    s.shot("30-new-password-error").await;
    s.resize(PHONE).await;
    s.note_overflow("new password").await;
    s.shot("30-new-password-error-375").await;
    s.resize(WIDTH).await;
    s.fill("#new-password", "orchid-Lantern-27").await;
    s.press("main.signin form", "Set my new password").await;
    s.wait_path("the sign-in page", |p| p == "/console/login")
        .await;
    assert!(s.flash().await.contains("new password is set"));
    s.fill("#username", "maya.sari").await;
    s.fill("#password", "orchid-Lantern-27").await;
    s.press("main.signin form", "Sign in").await;
    s.wait_path("the dashboard", |p| p == "/console/").await;
    s.sign_out().await;

    // A group's page (superuser): its members, rename, delete.
    s.sign_in(crate::helpers::SUPERUSER).await;
    s.goto("/console/groups/").await;
    s.client
        .find(Locator::LinkText("organizer"))
        .await
        .expect("the organizer group")
        .click()
        .await
        .expect("open the group");
    s.wait_for("#group-name").await;
    s.shot("34-group").await;
    s.resize(PHONE).await;
    s.note_overflow("group").await;
    s.shot("34-group-375").await;
    s.resize(WIDTH).await;
    s.sign_out().await;

    box_office(s).await;
    season_mails(s, files).await;
}

/// The box office in the console: a ticket type's payment window on its
/// edit page; an attendee registering with a voucher and seeing until when
/// the unpaid seat is held.
async fn box_office(s: &mut Session<'_>) {
    let app = s.app;
    let mut body = TestApp::event_body("Gamelan Gala", 120);
    body["timezone"] = json!("Asia/Jakarta");
    let event = app.post("/api/events/", app.admin(), body).await;
    event.assert(201);
    let event = event.id();
    let mut ticket = TestApp::ticket_body(&event, "Reserved seat", 100);
    ticket["price"] = json!(250000);
    ticket["payment_window_minutes"] = json!(30);
    let ticket = app.post("/api/tickets/", app.admin(), ticket).await;
    ticket.assert(201);
    app.post(
        "/api/vouchers/",
        app.admin(),
        json!({"event": event, "code": "EARLY", "discount_type": "percent", "discount_value": 20}),
    )
    .await
    .assert(201);

    s.sign_in(crate::helpers::SUPERUSER).await;
    s.goto(&format!("/console/tickets/{}/edit", ticket.id()))
        .await;
    let window = s.wait_for("#ticket-payment_window_minutes").await;
    assert_eq!(
        window.prop("value").await.expect("value").as_deref(),
        Some("30")
    );
    s.shot("38-ticket-window").await;
    s.sign_out().await;
    // A sold-out ticket type with a waiting list.
    let mut front = TestApp::ticket_body(&event, "Front row", 1);
    front["price"] = json!(400000);
    front["waitlist"] = json!(true);
    let front = app.post("/api/tickets/", app.admin(), front).await;
    front.assert(201);
    let (first_id, _) = app.user("frontrow").await;
    app.post(
        "/api/registrations/",
        app.admin(),
        json!({"ticket_id": front.id(), "user_id": first_id}),
    )
    .await
    .assert(201);

    s.goto("/console/login").await;
    s.fill("#username", "maya.sari").await;
    s.fill("#password", "orchid-Lantern-27").await;
    s.press("main.signin form", "Sign in").await;
    s.wait_path("the dashboard", |p| p == "/console/").await;
    s.goto(&format!("/console/browse/{event}/")).await;
    s.client
        .find(Locator::Css("details.voucher summary"))
        .await
        .expect("the voucher summary")
        .click()
        .await
        .expect("open the voucher field");
    s.fill("details.voucher input[name=voucher]", "early").await;
    s.shot("39-register-with-voucher").await;
    s.press(".offer", "Register").await;
    s.wait_path("My tickets", |p| p == "/console/my/").await;
    let held = s.text(".to-pay").await;
    assert!(held.contains("IDR 200,000"), "{held}");
    assert!(held.contains("Your seat is held until"), "{held}");
    assert!(held.contains("minutes left"), "{held}");
    // The sold-out one: in line.
    s.goto(&format!("/console/browse/{event}/")).await;
    s.press(".offers", "Join the waiting list").await;
    s.wait_path("My tickets", |p| p == "/console/my/").await;
    assert!(s.text(".lines").await.contains("Number 1 in line"));
    s.shot("40-my-ticket-held").await;
    s.resize(PHONE).await;
    s.note_overflow("my ticket held").await;
    s.shot("40-my-ticket-held-375").await;
    s.resize(WIDTH).await;
    s.sign_out().await;
    // The organiser's box office: vouchers with their uses, who waits.
    s.sign_in(crate::helpers::SUPERUSER).await;
    s.goto(&format!("/console/events/{event}/#vouchers")).await;
    assert!(s.text("#vouchers").await.contains("1 (no limit)"));
    assert!(s.text("#waiting").await.contains("maya@example.com"));
    s.shot("41-event-box-office").await;
    s.resize(PHONE).await;
    s.note_overflow("event box office").await;
    s.shot("41-event-box-office-375").await;
    s.resize(WIDTH).await;
    s.sign_out().await;
}

/// The mails of a season, looked at like the others: an event's change
/// notice, the reminder two hours before it, and its cancellation. Last in
/// the walk: it moves the server's clock.
async fn season_mails(s: &mut Session<'_>, files: &Path) {
    let app = s.app;
    let start = chrono::Utc::now() + chrono::Duration::minutes(130);
    let mut body = TestApp::event_body("Jazz on the Roof", 80);
    body["start_time"] = json!(start.to_rfc3339());
    body["end_time"] = json!((start + chrono::Duration::hours(3)).to_rfc3339());
    body["timezone"] = json!("Asia/Jakarta");
    body["location"] = json!("Rooftop, Jl. Sudirman 5, Jakarta");
    let event = app.post("/api/events/", app.admin(), body).await;
    event.assert(201);
    let event = event.id();
    let mut ticket = TestApp::ticket_body(&event, "Standing", 80);
    ticket["price"] = json!(0);
    let ticket = app.post("/api/tickets/", app.admin(), ticket).await;
    ticket.assert(201);
    let (maya, _) = app.login_ok("maya.sari", "orchid-Lantern-27").await;
    app.register(&maya, &ticket.id()).await.assert(201);
    let moved = start + chrono::Duration::minutes(30);
    app.patch(
        &format!("/api/events/{event}/"),
        app.admin(),
        json!({
            "start_time": moved.to_rfc3339(),
            "end_time": (moved + chrono::Duration::hours(3)).to_rfc3339(),
            "location": "Hall B, Jl. Sudirman 5, Jakarta",
        }),
    )
    .await
    .assert(200);
    let mail = |subject: &'static str| {
        crate::signup::raw_mails(app)
            .into_iter()
            .find(|m| m.contains("maya@example.com") && m.contains(subject))
            .unwrap_or_else(|| panic!("the mail \"{subject}\""))
    };
    dicoevent::jobs::run_pass(&app.state, "browser-worker")
        .await
        .expect("a worker pass");
    mail_shots(
        s,
        &mail("Changed: Jazz on the Roof"),
        files,
        "35-mail-changed",
    )
    .await;
    // Two hours before the (moved) start: the reminder.
    app.state.clock.advance(chrono::Duration::minutes(45));
    dicoevent::jobs::run_pass(&app.state, "browser-worker")
        .await
        .expect("a worker pass");
    mail_shots(
        s,
        &mail("Reminder: Jazz on the Roof"),
        files,
        "36-mail-reminder",
    )
    .await;
    app.patch(
        &format!("/api/events/{event}/"),
        app.admin(),
        json!({ "status": "cancelled" }),
    )
    .await
    .assert(200);
    dicoevent::jobs::run_pass(&app.state, "browser-worker")
        .await
        .expect("a worker pass");
    mail_shots(
        s,
        &mail("Cancelled: Jazz on the Roof"),
        files,
        "37-mail-cancelled",
    )
    .await;
}
