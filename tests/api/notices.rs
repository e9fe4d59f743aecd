//! Attendees are told about changes (API.md §8.1): a new start, end or
//! place, or a cancellation, reaches every registered attendee in one mail
//! per change — not for other edits, not twice when two workers run at
//! once, not to those who registered after — and a cancelled event's
//! completed payments show as "to refund" to its organiser.

use serde_json::json;

use crate::console::{Browser, html};
use crate::helpers::{PASSWORD, TestApp};
use crate::signup::mails_to;

crate::backend_tests!(attendees_hear_of_each_change_once);

/// Two workers' passes at the same time.
async fn two_passes(app: &TestApp) {
    let (a, b) = tokio::join!(
        dicoevent::jobs::run_pass(&app.state, "worker-a"),
        dicoevent::jobs::run_pass(&app.state, "worker-b"),
    );
    a.expect("a pass");
    b.expect("a pass");
}

async fn attendees_hear_of_each_change_once(app: &TestApp) {
    let (_, orga) = app.user_in("noor", "organizer").await;
    let mut body = TestApp::event_body("Harbour Lights", 50);
    body["timezone"] = json!("Asia/Jakarta");
    body["start_time"] = json!("2027-03-01T11:00:00Z");
    body["end_time"] = json!("2027-03-01T14:00:00Z");
    let created = app.post("/api/events/", Some(&orga), body).await;
    created.assert(201);
    let event = created.id();
    let ticket = app.create_ticket(&orga, &event, 50).await;
    let (_, ana) = app.user("ana").await;
    let (_, bob) = app.user("bob").await;
    let reg = app.register(&ana, &ticket).await;
    reg.assert(201);
    app.register(&bob, &ticket).await.assert(201);
    app.post(
        "/api/payments/",
        app.admin(),
        json!({
            "registration_id": reg.id(),
            "payment_method": "bank_transfer",
            "amount_paid": 150000.5,
            "payment_status": "completed",
        }),
    )
    .await
    .assert(201);
    two_passes(app).await;

    // Another field changed: nobody is told.
    app.patch(
        &format!("/api/events/{event}/"),
        Some(&orga),
        json!({"description": "Now with a second stage."}),
    )
    .await
    .assert(200);
    // The start moves: each attendee is told once, in the event's zone.
    app.patch(
        &format!("/api/events/{event}/"),
        Some(&orga),
        json!({"start_time": "2027-03-01T12:00:00Z", "end_time": "2027-03-01T15:00:00Z"}),
    )
    .await
    .assert(200);
    two_passes(app).await;
    two_passes(app).await;
    for who in ["ana", "bob"] {
        let sent = mails_to(
            app,
            &format!("{who}@example.com"),
            "Changed: Harbour Lights",
        );
        assert_eq!(sent.len(), 1, "{who} is told once");
        assert!(sent[0].contains("has a new time"));
        assert!(
            sent[0].contains("Starts: Monday 1 March 2027 at 19:00 WIB (Asia/Jakarta) — was Monday 1 March 2027 at 18:00 WIB"),
            "{}",
            sent[0]
        );
    }

    // Someone registering after hears only of later changes.
    let (_, cyn) = app.user("cyn").await;
    app.register(&cyn, &ticket).await.assert(201);
    app.patch(
        &format!("/api/events/{event}/"),
        Some(&orga),
        json!({"location": "Pier 7, Sunda Kelapa"}),
    )
    .await
    .assert(200);
    two_passes(app).await;
    for who in ["ana", "bob", "cyn"] {
        let sent = mails_to(
            app,
            &format!("{who}@example.com"),
            "Changed: Harbour Lights",
        );
        let expected = if who == "cyn" { 1 } else { 2 };
        assert_eq!(sent.len(), expected, "{who}");
        assert!(
            sent.iter()
                .any(|m| m.contains("Place: Pier 7, Sunda Kelapa — was Jakarta Convention Center"))
        );
    }

    // Cancelled: one mail each, the paid one told of the refund; cancelling
    // again tells nobody.
    for _ in 0..2 {
        app.patch(
            &format!("/api/events/{event}/"),
            Some(&orga),
            json!({"status": "cancelled"}),
        )
        .await
        .assert(200);
    }
    two_passes(app).await;
    for who in ["ana", "bob", "cyn"] {
        let sent = mails_to(
            app,
            &format!("{who}@example.com"),
            "Cancelled: Harbour Lights",
        );
        assert_eq!(sent.len(), 1, "{who} told of the cancellation once");
        assert_eq!(
            sent[0].contains("the organiser will refund it"),
            who == "ana",
            "{}",
            sent[0]
        );
    }
    // Nothing else was sent about the event: no reminder for a cancelled one.
    let all = crate::signup::mails(app);
    assert_eq!(
        all.iter()
            .filter(|m| m.contains("Subject: Changed:") || m.contains("Subject: Cancelled:"))
            .count(),
        2 + 3 + 3
    );

    // The organiser sees what is owed back.
    let mut browser = Browser::new(app);
    browser.sign_in("noor", PASSWORD).await;
    let page = browser.get(&format!("/console/events/{event}/")).await;
    html(&page, 200);
    assert!(page.body.contains("Paid — to refund"), "{}", page.body);
    assert!(page.body.contains("This event is cancelled"));
}
