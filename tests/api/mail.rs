//! Background mail: confirmations and reminders through the outbox, against a
//! real SMTP server (maildev, `TEST_SMTP_HOST`/`TEST_SMTP_PORT`/
//! `TEST_MAILDEV_URL`) or, without one, the `.eml` files of the default.
//! The worker's clock is moved forward so "two hours before" is immediate.

use std::time::Duration;

use dicoevent::jobs;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp};

/// Where the test reads what was sent.
enum Inbox {
    Maildev(String),
    Files(std::path::PathBuf),
}

/// One received message: recipient, subject, and the whole raw text.
#[derive(Debug)]
struct Received {
    to: String,
    subject: String,
    content: String,
}

impl Inbox {
    async fn received(&self) -> Vec<Received> {
        match self {
            Inbox::Maildev(url) => {
                let all: Value = reqwest::get(format!("{url}/api/email"))
                    .await
                    .expect("maildev answers")
                    .json()
                    .await
                    .expect("maildev json");
                all.as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| Received {
                        to: m["to"][0]["address"].as_str().unwrap_or("").to_owned(),
                        subject: m["subject"].as_str().unwrap_or("").to_owned(),
                        content: format!(
                            "{}\n{}",
                            m["text"].as_str().unwrap_or(""),
                            m["html"].as_str().unwrap_or("")
                        ),
                    })
                    .collect()
            }
            Inbox::Files(dir) => {
                let mut out = Vec::new();
                let Ok(entries) = std::fs::read_dir(dir) else {
                    return out;
                };
                for entry in entries.flatten() {
                    let raw = std::fs::read_to_string(entry.path()).expect("eml");
                    // Undo quoted-printable soft line breaks for searching.
                    let content = raw.replace("=\r\n", "").replace("=\n", "");
                    let header = |name: &str| {
                        raw.lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(|v| v.trim().to_owned())
                            .unwrap_or_default()
                    };
                    out.push(Received {
                        to: header("To:"),
                        subject: header("Subject:"),
                        content,
                    });
                }
                out
            }
        }
    }

    /// Messages to `address` whose subject contains `needle`.
    async fn to(&self, address: &str, needle: &str) -> Vec<Received> {
        self.received()
            .await
            .into_iter()
            .filter(|m| m.to.contains(address) && m.subject.contains(needle))
            .collect()
    }
}

/// An app sending through maildev when it is configured, else to files.
async fn mail_app(extra: &[(&str, &str)]) -> (TestApp, Inbox) {
    let smtp = std::env::var("TEST_SMTP_HOST")
        .ok()
        .filter(|s| !s.is_empty());
    let port = std::env::var("TEST_SMTP_PORT").unwrap_or_else(|_| "1025".into());
    let mut vars: Vec<(&str, &str)> = vec![("TIME_ZONE", "Asia/Jakarta")];
    vars.extend_from_slice(extra);
    match &smtp {
        Some(host) if !extra.iter().any(|(k, _)| *k == "MAIL_HOST") => {
            let mut with_smtp = vars.clone();
            with_smtp.extend_from_slice(&[
                ("MAIL_HOST", host.as_str()),
                ("MAIL_PORT", port.as_str()),
                ("MAIL_TLS", "none"),
            ]);
            let app = TestApp::spawn_with(Backend::Sqlite, &with_smtp).await;
            let url = std::env::var("TEST_MAILDEV_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:1080".into());
            (app, Inbox::Maildev(url))
        }
        _ => {
            let app = TestApp::spawn_with(Backend::Sqlite, &vars).await;
            let dir = app.data_dir().join("outbox");
            (app, Inbox::Files(dir))
        }
    }
}

/// A user with an address no other test uses (maildev is shared), made
/// as an admin would (no sign-up's verification mail to count).
async fn person(app: &TestApp, label: &str) -> (String, String, String) {
    let name = format!("{label}{}", &Uuid::new_v4().simple().to_string()[..10]);
    let made = app.many_users(&name, 1).await;
    let (id, token) = made.into_iter().next().expect("a user");
    (id, token, format!("{name}0@example.com"))
}

/// An event starting `from_now` from the real clock, with one ticket on sale.
async fn event_at(app: &TestApp, name: &str, from_now: chrono::Duration) -> (String, String) {
    let start = chrono::Utc::now() + from_now;
    let mut body = TestApp::event_body(name, 100);
    body["start_time"] = json!(start.to_rfc3339());
    body["end_time"] = json!((start + chrono::Duration::hours(2)).to_rfc3339());
    body["location"] = json!("Balai Kartini, Jakarta");
    let reply = app.post("/api/events/", app.admin(), body).await;
    reply.assert(201);
    let event = reply.id();
    let mut ticket = TestApp::ticket_body(&event, "Early Bird", 100);
    ticket["name"] = json!("Early Bird");
    let t = app.post("/api/tickets/", app.admin(), ticket).await;
    t.assert(201);
    (event, t.id())
}

async fn pass(app: &TestApp) -> jobs::PassReport {
    jobs::run_pass(&app.state, "test-worker")
        .await
        .expect("a worker pass")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_go_out_once_two_hours_before() {
    let (app, inbox) = mail_app(&[]).await;
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let name = format!("Gala {tag}");
    let (_event, ticket) = event_at(&app, &name, chrono::Duration::hours(5)).await;
    let mut people = Vec::new();
    for label in ["ana", "budi", "citra"] {
        let (_, token, email) = person(&app, label).await;
        app.register(&token, &ticket).await.assert(201);
        people.push(email);
    }
    // Confirmations go out at once; no reminder three hours early.
    let first = pass(&app).await;
    assert_eq!((first.sent, first.reminders_scheduled), (3, 0));
    for email in &people {
        assert_eq!(
            inbox.to(email, "Registration confirmed").await.len(),
            1,
            "{email}"
        );
        assert!(inbox.to(email, "Reminder").await.is_empty());
    }
    // A cancelled event: its registrations get no reminder.
    let cancelled_name = format!("Cancelled {tag}");
    let (cancelled, cancelled_ticket) =
        event_at(&app, &cancelled_name, chrono::Duration::hours(5)).await;
    let (_, token, dropped) = person(&app, "dewi").await;
    app.register(&token, &cancelled_ticket).await.assert(201);
    app.patch(
        &format!("/api/events/{cancelled}/"),
        app.admin(),
        json!({ "status": "cancelled" }),
    )
    .await
    .assert(200);
    // A deleted registration gets none either.
    let (_, token, gone) = person(&app, "eko").await;
    let reg = app.register(&token, &ticket).await;
    reg.assert(201);
    app.delete(&format!("/api/registrations/{}/", reg.id()), Some(&token))
        .await
        .assert(204);

    // Three hours later: two hours before the event.
    app.state
        .clock
        .advance(chrono::Duration::hours(3) + chrono::Duration::minutes(1));
    let due = pass(&app).await;
    assert_eq!(
        due.reminders_scheduled, 3,
        "the gala's three; none for the cancelled event"
    );
    // The three reminders, and the cancelled event's notice to dewi.
    assert_eq!(due.sent, 4);
    assert_eq!(inbox.to(&dropped, "Cancelled:").await.len(), 1);
    assert_eq!(
        pass(&app).await,
        jobs::PassReport::default(),
        "nothing twice"
    );
    for email in &people {
        let reminders = inbox.to(email, &format!("Reminder: {name}")).await;
        assert_eq!(reminders.len(), 1, "{email}: exactly one reminder");
        let content = &reminders[0].content;
        assert!(content.contains(&name));
        assert!(content.contains("Balai Kartini"));
        assert!(content.contains("Early Bird"));
        assert!(
            content.contains("Asia/Jakarta"),
            "the time is given in TIME_ZONE"
        );
    }
    assert!(
        inbox.to(&dropped, "Reminder").await.is_empty(),
        "cancelled event: no reminder"
    );
    assert!(
        inbox.to(&gone, "Reminder").await.is_empty(),
        "deleted registration: no reminder"
    );
    // Each message sent is in the audit log, by the system, once.
    for (action, sent) in [
        ("registration.confirmation_sent", 3),
        ("registration.reminder_sent", 3),
    ] {
        let logged = app
            .get(&format!("/api/audit/?action={action}"), app.admin())
            .await;
        logged.assert(200);
        assert_eq!(logged.body["count"], sent, "{action}: {}", logged.body);
        let entries = logged.body["entries"].as_array().expect("entries");
        assert!(
            entries
                .iter()
                .all(|e| e["actor"]["type"] == "system" && e["entity"]["type"] == "registration"),
            "{}",
            logged.body
        );
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_registrations_get_a_confirmation_but_no_reminder() {
    let (app, inbox) = mail_app(&[]).await;
    let name = format!("Soon {}", &Uuid::new_v4().simple().to_string()[..8]);
    let (_, ticket) = event_at(&app, &name, chrono::Duration::minutes(90)).await;
    let (_, token, email) = person(&app, "fajar").await;
    app.register(&token, &ticket).await.assert(201);
    let report = pass(&app).await;
    assert_eq!(report.sent, 1);
    assert_eq!(inbox.to(&email, "Registration confirmed").await.len(), 1);
    // It does not promise the reminder that will not come.
    let confirmation = &inbox.to(&email, "Registration confirmed").await[0].content;
    assert!(
        !confirmation.contains("We will remind you"),
        "{confirmation}"
    );
    assert!(
        confirmation.contains("there will be no reminder"),
        "{confirmation}"
    );
    app.state.clock.advance(chrono::Duration::minutes(30));
    let later = pass(&app).await;
    assert_eq!(later.reminders_scheduled, 0);
    assert!(inbox.to(&email, "Reminder").await.is_empty());
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_start_time_rearms_the_reminder() {
    let (app, inbox) = mail_app(&[]).await;
    let name = format!("Moving {}", &Uuid::new_v4().simple().to_string()[..8]);
    let (event, ticket) = event_at(&app, &name, chrono::Duration::hours(5)).await;
    let (_, token, email) = person(&app, "gita").await;
    app.register(&token, &ticket).await.assert(201);
    app.state
        .clock
        .advance(chrono::Duration::hours(3) + chrono::Duration::minutes(1));
    pass(&app).await;
    assert_eq!(inbox.to(&email, "Reminder").await.len(), 1);

    // The event moves one hour later: a new reminder for the new time.
    let new_start = chrono::Utc::now() + chrono::Duration::hours(6);
    app.patch(
        &format!("/api/events/{event}/"),
        app.admin(),
        json!({ "start_time": new_start.to_rfc3339(), "end_time": (new_start + chrono::Duration::hours(2)).to_rfc3339() }),
    )
    .await
    .assert(200);
    // The attendee is told of the move at once; the reminder is not due yet.
    assert_eq!(pass(&app).await.sent, 1, "the change notice only");
    assert_eq!(inbox.to(&email, "Changed:").await.len(), 1);
    app.state.clock.advance(chrono::Duration::hours(1));
    let report = pass(&app).await;
    assert_eq!(report.sent, 1);
    assert_eq!(inbox.to(&email, "Reminder").await.len(), 2);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_lease_expires_and_another_worker_finishes() {
    let (app, inbox) = mail_app(&[]).await;
    let name = format!("Lease {}", &Uuid::new_v4().simple().to_string()[..8]);
    let (_, ticket) = event_at(&app, &name, chrono::Duration::hours(5)).await;
    let (_, token, email) = person(&app, "hadi").await;
    app.register(&token, &ticket).await.assert(201);
    // A worker claims the confirmation and dies before sending it.
    let claimed = jobs::claim(&app.state, "killed-worker", 10, jobs::Class::Mail)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(pass(&app).await.sent, 0, "the lease holds");
    assert!(inbox.to(&email, "Registration confirmed").await.is_empty());
    app.state.clock.advance(
        chrono::Duration::from_std(app.state.config.outbox_lease).expect("lease")
            + chrono::Duration::seconds(1),
    );
    assert_eq!(pass(&app).await.sent, 1, "another worker takes it over");
    assert_eq!(pass(&app).await.sent, 0);
    assert_eq!(inbox.to(&email, "Registration confirmed").await.len(), 1);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_backoff_then_dead() {
    // An SMTP server that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
        .to_string();
    let (app, _) = mail_app(&[
        ("MAIL_HOST", "127.0.0.1"),
        ("MAIL_PORT", &closed),
        ("MAIL_TLS", "none"),
    ])
    .await;
    let (_, ticket) = event_at(&app, "Unlucky", chrono::Duration::days(3)).await;
    let (_, token, _) = person(&app, "indra").await;
    // The HTTP answer does not wait for SMTP.
    app.register(&token, &ticket).await.assert(201);
    let first = pass(&app).await;
    assert_eq!(first.failed, 1);
    assert_eq!(pass(&app).await.failed, 0, "not retried before its backoff");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.body["jobs"]["queue_depth"], 1);
    assert_eq!(ready.body["jobs"]["dead_jobs"], 0);
    for _ in 1..jobs::MAX_ATTEMPTS {
        app.state.clock.advance(chrono::Duration::hours(3));
        assert_eq!(pass(&app).await.failed, 1);
    }
    app.state.clock.advance(chrono::Duration::hours(3));
    assert_eq!(
        pass(&app).await,
        jobs::PassReport::default(),
        "dead jobs are not retried"
    );
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.body["jobs"]["queue_depth"], 0);
    assert_eq!(ready.body["jobs"]["dead_jobs"], 1);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_sends_reminders_on_time() {
    let (app, inbox) = mail_app(&[("WORKER_POLL_INTERVAL", "1")]).await;
    let name = format!("Punctual {}", &Uuid::new_v4().simple().to_string()[..8]);
    // The accounts first (hashing passwords is slow on a loaded machine),
    // so that every registration is made before the reminder is due.
    let mut people = Vec::new();
    for label in ["joko", "kartika", "lestari"] {
        let (_, token, email) = person(&app, label).await;
        people.push((token, email));
    }
    // Two hours and a few seconds away, on the real clock.
    let (_, ticket) = event_at(
        &app,
        &name,
        chrono::Duration::hours(2) + chrono::Duration::seconds(6),
    )
    .await;
    for (token, _) in &people {
        app.register(token, &ticket).await.assert(201);
    }
    let people: Vec<String> = people.into_iter().map(|(_, email)| email).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(jobs::run_worker(app.state.clone(), stopped));
    let mut delivered = 0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        delivered = 0;
        for email in &people {
            delivered += inbox.to(email, &format!("Reminder: {name}")).await.len();
        }
        if delivered >= 3 {
            break;
        }
    }
    let _ = stop.send(true);
    let _ = worker.await;
    assert_eq!(delivered, 3, "one reminder each, on time");
    for email in &people {
        assert_eq!(inbox.to(email, "Registration confirmed").await.len(), 1);
    }
    app.cleanup().await;
}

/// The ticket code in a message's text (`DE1.<payload>.<signature>`).
fn code_in(text: &str) -> Option<String> {
    regex::Regex::new(r"DE1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
        .expect("regex")
        .find(text)
        .map(|m| m.as_str().to_owned())
}

/// Decodes the QR code of a PNG image.
fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(
        image.width() as usize,
        image.height() as usize,
        |x, y| image.get_pixel(x as u32, y as u32).0[0],
    );
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("the QR code decodes").1
}

/// The confirmation, read back as a mail client would: the code in the
/// text part, and the inline PNG decoding to the same code.
async fn the_confirmation_carries_the_ticket_code(app: &TestApp, inbox: &Inbox) {
    let name = format!("Door {}", &Uuid::new_v4().simple().to_string()[..8]);
    let (event, ticket) = event_at(app, &name, chrono::Duration::hours(6)).await;
    let (_, token, email) = person(app, "gita").await;
    let reg = app.register(&token, &ticket).await;
    reg.assert(201);
    assert_eq!(pass(app).await.sent, 1);
    let (text, png, message_id) = match inbox {
        Inbox::Maildev(url) => {
            let all: Value = reqwest::get(format!("{url}/api/email"))
                .await
                .expect("maildev answers")
                .json()
                .await
                .expect("maildev json");
            let message = all
                .as_array()
                .expect("a list")
                .iter()
                .find(|m| {
                    m["to"][0]["address"] == email.as_str()
                        && m["subject"]
                            .as_str()
                            .is_some_and(|s| s.contains("Registration confirmed"))
                })
                .expect("the confirmation")
                .clone();
            let image = message["attachments"]
                .as_array()
                .expect("attachments")
                .iter()
                .find(|a| a["contentType"] == "image/png")
                .expect("an inline PNG")
                .clone();
            assert_eq!(image["contentDisposition"], "inline");
            let cid = image["contentId"].as_str().expect("a Content-ID");
            // maildev rewrites `cid:` references for its web page (to an
            // attachment URL, or a data: URI).
            let html = message["html"].as_str().unwrap_or("");
            assert!(
                html.contains(cid)
                    || html.contains("/attachment/")
                    || html.contains("data:image/png"),
                "the HTML shows the image: {html}"
            );
            let png = reqwest::get(format!(
                "{url}/api/email/{}/attachment/{}",
                message["id"].as_str().expect("id"),
                image["generatedFileName"].as_str().expect("file name")
            ))
            .await
            .expect("the attachment")
            .bytes()
            .await
            .expect("its bytes")
            .to_vec();
            (
                message["text"].as_str().unwrap_or("").to_owned(),
                png,
                message["headers"]["message-id"]
                    .as_str()
                    .or(message["messageId"].as_str())
                    .unwrap_or("")
                    .to_owned(),
            )
        }
        Inbox::Files(dir) => {
            let raw = std::fs::read_dir(dir)
                .expect("the outbox")
                .flatten()
                .map(|e| std::fs::read_to_string(e.path()).expect("eml"))
                .find(|raw| raw.contains(&email) && raw.contains("Registration confirmed"))
                .expect("the confirmation file");
            let header = |name: &str| {
                raw.lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_default()
            };
            assert!(!header("Date:").is_empty(), "a Date header");
            // The text part, quoted-printable soft breaks undone.
            let text_start = raw.find("Content-Type: text/plain").expect("a text part");
            let text_end = text_start + raw[text_start..].find("\r\n--").expect("its end");
            let text = raw[text_start..text_end]
                .replace("=\r\n", "")
                .replace("=\n", "");
            assert!(!text.contains("cid:"), "the text part works without images");
            let image_type = raw.find("Content-Type: image/png").expect("an inline PNG");
            // The part begins after the boundary line before its headers.
            let image_start = raw[..image_type].rfind("\r\n--").expect("its boundary") + 4;
            let image_start = image_start + raw[image_start..].find("\r\n").expect("eol") + 2;
            let part = &raw[image_start..];
            let headers_end = part.find("\r\n\r\n").expect("the part's headers");
            let body_end = part.find("\r\n--").expect("the part's end");
            let headers = &part[..headers_end];
            assert!(headers.contains("base64"), "{headers}");
            assert!(headers.contains("inline"), "{headers}");
            let encoded: String = part[headers_end..body_end]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            use base64::Engine;
            let png = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64");
            assert!(raw.contains("multipart/related"), "HTML and image together");
            (text, png, header("Message-ID:"))
        }
    };
    assert!(
        message_id.contains('@') && message_id.len() > 3,
        "a Message-ID: {message_id:?}"
    );
    let code = code_in(&text).unwrap_or_else(|| panic!("no ticket code in the text: {text}"));
    assert_eq!(decode_qr(&png), code, "the QR code is the code of the text");
    // The code is this registration's, and the door admits it.
    let scan = app
        .post(
            "/api/checkins/",
            app.admin(),
            // The ticket has a price and nothing was paid: the superuser
            // admits the person anyway.
            json!({ "code": code, "force": true }),
        )
        .await;
    scan.assert(201);
    assert_eq!(scan.body["registration"], reg.id());
    assert_eq!(scan.body["event"], event);
    assert!(
        !text.contains("  1 ") && !text.contains("day  "),
        "no double space in the date: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_carries_the_ticket_code_through_smtp() {
    if std::env::var("TEST_MAILDEV_URL").is_err() || std::env::var("TEST_SMTP_HOST").is_err() {
        eprintln!("skipped: TEST_SMTP_HOST/TEST_MAILDEV_URL are not set");
        return;
    }
    let (app, inbox) = mail_app(&[]).await;
    assert!(matches!(inbox, Inbox::Maildev(_)));
    the_confirmation_carries_the_ticket_code(&app, &inbox).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_carries_the_ticket_code_in_eml_files() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TIME_ZONE", "Asia/Jakarta")]).await;
    let inbox = Inbox::Files(app.data_dir().join("outbox"));
    the_confirmation_carries_the_ticket_code(&app, &inbox).await;
    app.cleanup().await;
}

/// An SMTP server on loopback that takes `delay` to accept each message,
/// and counts the messages it accepted per recipient.
async fn slow_smtp(
    delay: Duration,
) -> (
    u16,
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let counts = received.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 slow.test ESMTP\r\n").await;
                let mut recipients: Vec<String> = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 slow.test\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        recipients.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        let _ = write.write_all(b"354 go on\r\n").await;
                        while let Ok(Some(body)) = lines.next_line().await {
                            if body == "." {
                                break;
                            }
                        }
                        tokio::time::sleep(delay).await;
                        if let Ok(mut counts) = counts.lock() {
                            for to in recipients.drain(..) {
                                *counts.entry(to).or_insert(0) += 1;
                            }
                        }
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        // MAIL FROM, RSET, NOOP.
                        if upper.starts_with("RSET") {
                            recipients.clear();
                        }
                        b"250 OK\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, received)
}

/// Two workers on PostgreSQL, an SMTP server that takes 1.5 s to accept
/// each message and a 2 s lease: every confirmation is sent exactly once.
/// (With jobs claimed twenty at a time and sent one after another under
/// one lease, the other worker took over the jobs the first had not reached
/// when the lease ran out, and both sent them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_mail_server_gets_each_message_once_from_two_workers() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let (port, received) = slow_smtp(Duration::from_millis(1500)).await;
    let port = port.to_string();
    let settings = [
        ("MAIL_HOST", "127.0.0.1"),
        ("MAIL_PORT", port.as_str()),
        ("MAIL_TLS", "none"),
        ("OUTBOX_LEASE", "2s"),
        ("WORKER_POLL_INTERVAL", "1"),
        ("WORKER_CONCURRENCY", "4"),
    ];
    let a = TestApp::spawn_with(Backend::Postgres, &settings).await;
    let b = a.spawn_sibling().await;
    let (_, ticket) = event_at(&a, "Slow mail", chrono::Duration::days(30)).await;
    let people = a.many_users("slowmail", 12).await;
    for (_, token) in &people {
        a.register(token, &ticket).await.assert(201);
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = [
        tokio::spawn(jobs::run_worker(a.state.clone(), stopped.clone())),
        tokio::spawn(jobs::run_worker(b.state.clone(), stopped)),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (pending, _) = jobs::stats(&a.state).await.expect("outbox stats");
        if pending == 0 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = stop.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    let counts = received.lock().expect("counts").clone();
    let mut not_once = Vec::new();
    for i in 0..people.len() {
        let address = format!("slowmail{i}@example.com");
        match counts.get(&address).copied().unwrap_or(0) {
            1 => {}
            n => not_once.push(format!("{address}: {n}")),
        }
    }
    assert!(
        not_once.is_empty(),
        "not exactly once: {not_once:?} (all: {counts:?})"
    );
    b.cleanup().await;
    a.cleanup().await;
}

/// A sign-up's verification link, read from the inbox (maildev or the
/// `.eml` files), opens once.
async fn the_verification_link_arrives_and_opens(app: &TestApp, inbox: &Inbox) {
    let name = format!("vera{}", &Uuid::new_v4().simple().to_string()[..10]);
    app.user(&name).await;
    let email = format!("{name}@example.com");
    pass(app).await;
    let sent = inbox.to(&email, "Verify your e-mail address").await;
    assert_eq!(sent.len(), 1, "one verification mail");
    let link = crate::signup::link_in(
        &crate::signup::decode_qp(&sent[0].content),
        "/console/verify/",
    );
    let opened = app.client.get(app.url(&link)).send().await.expect("sent");
    assert_eq!(opened.status(), reqwest::StatusCode::OK);
    let again = app.client.get(app.url(&link)).send().await.expect("sent");
    assert_eq!(again.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_link_arrives_through_smtp() {
    if std::env::var("TEST_MAILDEV_URL").is_err() || std::env::var("TEST_SMTP_HOST").is_err() {
        eprintln!("skipped: TEST_SMTP_HOST/TEST_MAILDEV_URL are not set");
        return;
    }
    let (app, inbox) = mail_app(&[]).await;
    assert!(matches!(inbox, Inbox::Maildev(_)));
    the_verification_link_arrives_and_opens(&app, &inbox).await;
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verification_link_arrives_in_eml_files() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[]).await;
    let inbox = Inbox::Files(app.data_dir().join("outbox"));
    the_verification_link_arrives_and_opens(&app, &inbox).await;
    app.cleanup().await;
}
