//! The public pages (API.md §8.1): `/`, `/e/{id}` with its Open Graph tags
//! and `/e/{id}.ics`, for anyone, without an account.

use serde_json::json;

use crate::helpers::TestApp;

crate::backend_tests!(
    anyone_sees_upcoming_events,
    an_event_page_to_share,
    the_calendar_file,
);

async fn get(app: &TestApp, path: &str) -> (u16, String, String) {
    let res = app.client.get(app.url(path)).send().await.expect("sent");
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, kind, res.text().await.expect("body"))
}

/// An event of the superuser's, with `changes` on the usual body.
async fn event(app: &TestApp, name: &str, changes: serde_json::Value) -> String {
    let mut body = TestApp::event_body(name, 40);
    for (k, v) in changes.as_object().expect("object") {
        body[k] = v.clone();
    }
    let reply = app.post("/api/events/", app.admin(), body).await;
    reply.assert(201);
    reply.id()
}

async fn anyone_sees_upcoming_events(app: &TestApp) {
    let open = event(app, "Open Night", json!({})).await;
    let draft = event(app, "Secret Draft", json!({"status": "draft"})).await;
    event(
        app,
        "Long Gone",
        json!({"start_time": "2020-01-01T10:00:00Z", "end_time": "2020-01-01T12:00:00Z"}),
    )
    .await;
    event(app, "Called Off", json!({"status": "cancelled"})).await;
    let (status, kind, body) = get(app, "/").await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/html; charset=utf-8", "never JSON");
    assert!(body.contains("Open Night"));
    assert!(body.contains(&format!("href=\"/e/{open}\"")));
    for hidden in ["Secret Draft", "Long Gone", "Called Off"] {
        assert!(!body.contains(hidden), "{hidden} is not listed");
    }
    assert!(body.contains("href=\"/console/login\""), "a way to sign in");
    // Every page has an icon; browsers that ask for /favicon.ico get it.
    assert!(body.contains("<link rel=\"icon\" href=\"/console/static/favicon.svg\""));
    let (status, kind, icon) = get(app, "/favicon.ico").await;
    assert_eq!((status, kind.as_str()), (200, "image/svg+xml"));
    assert!(icon.starts_with("<svg"));
    let _ = draft;
}

async fn an_event_page_to_share(app: &TestApp) {
    let id = event(
        app,
        "Rust Night Jakarta",
        json!({
            "start_time": "2030-03-01T18:00:00+07:00",
            "end_time": "2030-03-01T21:00:00+07:00",
            "timezone": "Asia/Jakarta",
            "location": "GoWork, Jakarta",
            "description": "Talks about async Rust & axum.",
        }),
    )
    .await;
    let mut ticket = TestApp::ticket_body(&id, "Early bird", 10);
    ticket["price"] = json!(75000);
    let ticket = app.post("/api/tickets/", app.admin(), ticket).await;
    ticket.assert(201);

    let (status, kind, body) = get(app, &format!("/e/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kind, "text/html; charset=utf-8");
    assert!(
        body.contains("Fri 1 Mar 2030, 18:00–21:00 WIB (Asia/Jakarta)"),
        "{body}"
    );
    assert!(body.contains("GoWork, Jakarta"));
    assert!(body.contains("Talks about async Rust &#38; axum."));
    assert!(body.contains("Early bird"));
    assert!(body.contains("IDR 75,000"), "{body}");
    assert!(body.contains("10 left"));
    assert!(
        body.contains(&format!("href=\"/console/browse/{id}/\"")),
        "Register"
    );
    // Open Graph: what a chat app shows for the shared link.
    assert!(body.contains("<meta property=\"og:title\" content=\"Rust Night Jakarta\">"));
    assert!(body.contains(&format!(
        "<meta property=\"og:url\" content=\"{}\">",
        app.url(&format!("/e/{id}"))
    )));
    assert!(body.contains("<meta property=\"og:description\" content=\"Fri 1 Mar 2030"));
    // Coherent after a write: a registration takes a place.
    let (_, attendee) = app.user("publicguest").await;
    app.register(&attendee, &ticket.id()).await.assert(201);
    let (_, _, body) = get(app, &format!("/e/{id}")).await;
    assert!(body.contains("9 left"), "{body}");
    // The trailing slash is the same page.
    assert_eq!(get(app, &format!("/e/{id}/")).await.0, 200);

    // Not public: drafts, cancelled events that are over, nothing at all.
    let draft = event(app, "Draft", json!({"status": "draft"})).await;
    let over = event(
        app,
        "Cancelled and over",
        json!({"status": "cancelled", "start_time": "2020-01-01T10:00:00Z", "end_time": "2020-01-01T12:00:00Z"}),
    )
    .await;
    for path in [
        format!("/e/{draft}"),
        format!("/e/{over}"),
        format!("/e/{draft}.ics"),
        "/e/0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a".into(),
        "/e/nope".into(),
    ] {
        let (status, kind, _) = get(app, &path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(kind, "text/html; charset=utf-8", "{path}");
    }
    // A cancelled event still to come says so, and sells nothing.
    let called_off = event(app, "Called off", json!({"status": "cancelled"})).await;
    let (status, _, body) = get(app, &format!("/e/{called_off}")).await;
    assert_eq!(status, 200);
    assert!(body.contains("This event is cancelled."));
}

async fn the_calendar_file(app: &TestApp) {
    let id = event(
        app,
        "Rust Night; Jakarta, 2030",
        json!({
            "start_time": "2030-03-01T18:00:00+07:00",
            "end_time": "2030-03-01T21:00:00+07:00",
            "timezone": "Asia/Jakarta",
            "location": "GoWork, Jakarta",
        }),
    )
    .await;
    let (status, kind, body) = get(app, &format!("/e/{id}.ics")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kind, "text/calendar; charset=utf-8");
    assert!(
        body.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"),
        "{body}"
    );
    assert!(body.ends_with("END:VCALENDAR\r\n"));
    let unfolded = body.replace("\r\n ", "");
    let lines: Vec<&str> = unfolded.split("\r\n").collect();
    for expected in [
        "BEGIN:VEVENT",
        &format!("UID:{id}@dicoevent"),
        "DTSTART;TZID=Asia/Jakarta:20300301T180000",
        "DTEND;TZID=Asia/Jakarta:20300301T210000",
        "SUMMARY:Rust Night\\; Jakarta\\, 2030",
        "LOCATION:GoWork\\, Jakarta",
        &format!("URL:{}", app.url(&format!("/e/{id}"))),
        "TZID:Asia/Jakarta",
        "TZOFFSETTO:+0700",
        "STATUS:CONFIRMED",
        "END:VEVENT",
    ] {
        assert!(lines.contains(&expected), "{expected} in {body}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("DTSTAMP:") && l.ends_with('Z'))
    );
    assert!(body.split("\r\n").all(|l| l.len() <= 75), "folded");
}
