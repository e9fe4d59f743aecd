//! Issue 18 ("what a new user tripped over"), through the front doors: a CLI
//! write seen at once by a running server's cached lists, and payment state
//! changes serialised with cancellations.

use std::process::Command;

use serde_json::json;

use crate::helpers::TestApp;

crate::backend_tests!(
    a_cli_write_is_seen_at_once_by_a_running_servers_lists,
    completing_a_payment_and_cancelling_its_registration_at_once,
);

const BINARY: &str = env!("CARGO_BIN_EXE_dicoevent");

/// Runs the binary as a second process on the server's database.
async fn cli(app: &TestApp, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(BINARY);
    let logs = app.data_dir().join("cli-logs");
    cmd.current_dir(app.data_dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_DIR", &logs)
        .args(args);
    for name in [
        "DATA_DIR",
        "DATABASE_URL",
        "SECRET_KEY",
        "CACHE_PREFIX",
        "REDIS_URL",
    ] {
        if let Some(value) = app.var(name) {
            cmd.env(name, value);
        }
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("joined")
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn a_cli_write_is_seen_at_once_by_a_running_servers_lists(app: &TestApp) {
    let token = app.admin_token.clone();
    let event = app.create_event(&token, "Cached Gala", 50).await;
    app.create_ticket(&token, &event, 10).await;
    // Read twice: the second answer comes from the server's cache.
    for round in 0..2 {
        let list = app.get("/api/events/", None).await;
        list.assert(200);
        assert_eq!(list.body["count"], 1);
        let tickets = app.get("/api/tickets/", None).await;
        tickets.assert(200);
        assert_eq!(tickets.body["count"], 1);
        if round == 1 {
            assert_eq!(list.headers["x-data-source"], "cache");
            assert_eq!(tickets.headers["x-data-source"], "cache");
        }
    }

    let (ok, said) = cli(app, &["truncate", "--yes"]).await;
    assert!(ok, "{said}");

    // Right after the command returned: no deleted event, no stale count.
    let list = app.get("/api/events/", None).await;
    list.assert(200);
    assert_eq!(list.body["count"], 0, "{}", list.body);
    assert_eq!(list.body["events"], json!([]));
    let tickets = app.get("/api/tickets/", None).await;
    assert_eq!(tickets.body["count"], 0, "{}", tickets.body);
    app.get(&format!("/api/events/{event}/"), None)
        .await
        .assert(404);

    // The write is logged at INFO like the API's.
    let log = std::fs::read_to_string(app.data_dir().join("cli-logs/application.log"))
        .expect("the CLI's application.log");
    assert!(
        log.lines()
            .any(|l| l.contains(" | INFO     | ") && l.contains("All data deleted")),
        "{log}"
    );
}

/// Many rounds of a user cancelling a registration while an admin marks
/// its pending payment completed: whatever the order, a payment answered
/// "completed" is never deleted with its registration.
async fn completing_a_payment_and_cancelling_its_registration_at_once(app: &TestApp) {
    let token = app.admin_token.clone();
    let event = app.create_event(&token, "Race Night", 1000).await;
    let ticket = app.create_ticket(&token, &event, 1000).await;
    let rounds = 30;
    let people = app.many_users("racer", rounds).await;
    let (mut completed, mut cancelled) = (0, 0);
    for (_, user) in &people {
        let reg = app.register(user, &ticket).await;
        reg.assert(201);
        let reg = reg.id();
        let payment = app
            .post(
                "/api/payments/",
                Some(user),
                json!({ "registration_id": reg, "payment_method": "QRIS", "amount_paid": 10 }),
            )
            .await;
        payment.assert(201);
        let payment = payment.id();
        let (payment_path, registration_path) = (
            format!("/api/payments/{payment}/"),
            format!("/api/registrations/{reg}/"),
        );
        let complete = app.patch(
            &payment_path,
            Some(&token),
            json!({ "payment_status": "completed", "force": true }),
        );
        let cancel = app.delete(&registration_path, Some(user));
        let (complete, cancel) = tokio::join!(complete, cancel);
        match (complete.status.as_u16(), cancel.status.as_u16()) {
            (200, 403) => completed += 1,
            (404, 204) => cancelled += 1,
            other => panic!(
                "unexpected pair {other:?}: {} / {}",
                complete.body, cancel.body
            ),
        }
        if complete.status == 200 {
            assert_eq!(complete.body["payment_status"], "completed");
            app.get(&format!("/api/registrations/{reg}/"), Some(&token))
                .await
                .assert(200);
            let kept = app
                .get(&format!("/api/payments/{payment}/"), Some(&token))
                .await;
            kept.assert(200);
            assert_eq!(kept.body["payment_status"], "completed");
        }
    }
    eprintln!("{completed} completed first, {cancelled} cancelled first");
}

/// The first doc line of a handler is its summary in the docs page, shown
/// as plain text: no Markdown backticks there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_summaries_are_plain_text() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await;
    let schema = app.get("/api/schema/", None).await;
    schema.assert(200);
    let paths = schema.body["paths"].as_object().expect("paths");
    let mut summaries = 0;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            if let Some(summary) = operation["summary"].as_str() {
                summaries += 1;
                assert!(!summary.contains('`'), "{method} {path}: {summary:?}");
            }
        }
    }
    assert!(summaries > 10, "summaries are there to check");
    app.cleanup().await;
}

/// The same with Redis: the command invalidates it directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_write_is_seen_at_once_with_redis() {
    let Some(redis) = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("skipped: TEST_REDIS_URL is not set");
        return;
    };
    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, &[("REDIS_URL", &redis)]).await;
    a_cli_write_is_seen_at_once_by_a_running_servers_lists(&app).await;
    app.cleanup().await;
}
