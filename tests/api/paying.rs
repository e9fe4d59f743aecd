//! Paying (API.md §8.1): the event's payment instructions, the amount due
//! on My tickets, a proof of transfer (image or PDF ≤ 2 MiB, judged by its
//! bytes) making a pending payment of the amount due, the event's managers
//! moving their payments (console and `PATCH /api/payments/{id}/`), cash at
//! the door, and no "completed" below the amount due unless forced.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::{Browser, hidden, html, location};
use crate::helpers::{PASSWORD, TestApp};

crate::backend_tests!(
    managers_move_their_events_payments,
    attendees_send_a_proof_and_the_organiser_confirms,
    cash_is_taken_at_the_door_from_the_console,
);

/// An organiser's event with one priced ticket (IDR 150,000.50) and an
/// attendee's registration: (organiser token, event, ticket, attendee
/// token, registration).
async fn priced(
    app: &TestApp,
    organiser: &str,
    attendee: &str,
) -> (String, String, String, String, String) {
    let (_, orga) = app.user_in(organiser, "organizer").await;
    let event = app.create_event(&orga, "Pay Night", 20).await;
    let ticket = app.create_ticket(&orga, &event, 20).await;
    let (_, guest) = app.user(attendee).await;
    let reg = app.register(&guest, &ticket).await;
    reg.assert(201);
    (orga, event, ticket, guest, reg.id())
}

async fn payment_of(app: &TestApp, registration: &str) -> Vec<Value> {
    let list = app
        .get(
            &format!("/api/payments/?registration={registration}"),
            app.admin(),
        )
        .await;
    list.assert(200);
    list.body["payments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn managers_move_their_events_payments(app: &TestApp) {
    let (orga, _event, _ticket, guest, reg) = priced(app, "owner", "payer").await;
    let (_, stranger) = app.user_in("rival", "organizer").await;
    // The attendee declares a transfer of 1 (pending).
    let pending = app
        .post(
            "/api/payments/",
            Some(&guest),
            json!({"registration_id": reg, "payment_method": "bank_transfer", "amount_paid": 1}),
        )
        .await;
    pending.assert(201);
    let id = pending.id();
    let path = format!("/api/payments/{id}/");

    // Refused: the attendee, another organiser; the organiser may not
    // change the method, nor delete.
    app.patch(&path, Some(&guest), json!({"payment_status": "completed"}))
        .await
        .assert(403);
    app.patch(
        &path,
        Some(&stranger),
        json!({"payment_status": "completed"}),
    )
    .await
    .assert(403);
    app.patch(&path, Some(&orga), json!({"payment_method": "cash"}))
        .await
        .assert(403);
    app.delete(&path, Some(&orga)).await.assert(403);

    // Completed below the amount due: 409 in words, nothing written.
    let short = app
        .patch(&path, Some(&orga), json!({"payment_status": "completed"}))
        .await;
    short.assert(409);
    assert_eq!(
        short.body,
        json!({"detail": "Amount paid is less than the amount due (IDR 150,000.50)."})
    );
    assert_eq!(payment_of(app, &reg).await[0]["payment_status"], "pending");
    // The same for an admin.
    app.patch(&path, app.admin(), json!({"payment_status": "completed"}))
        .await
        .assert(409);
    // The organiser corrects the amount and completes it.
    let done = app
        .patch(
            &path,
            Some(&orga),
            json!({"payment_status": "completed", "amount_paid": 150000.5}),
        )
        .await;
    done.assert(200);
    assert_eq!(done.body["payment_status"], "completed");
    assert!(done.body["paid_at"].is_string());
    // Refunded by the organiser too.
    app.patch(&path, Some(&orga), json!({"payment_status": "refunded"}))
        .await
        .assert(200);

    // Forced below the amount due, and recorded so.
    let (_, guest2) = app.user("payer2").await;
    let tickets = app.get("/api/tickets/", Some(&orga)).await;
    let ticket = tickets.body["tickets"][0]["id"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let reg2 = app.register(&guest2, &ticket).await.id();
    let p2 = app
        .post(
            "/api/payments/",
            Some(&guest2),
            json!({"registration_id": reg2, "payment_method": "bank_transfer", "amount_paid": 100000}),
        )
        .await
        .id();
    let forced = app
        .patch(
            &format!("/api/payments/{p2}/"),
            Some(&orga),
            json!({"payment_status": "completed", "force": true}),
        )
        .await;
    forced.assert(200);
    let log = app
        .get(
            &format!("/api/audit/?entity_id={p2}&action=payment.updated"),
            app.admin(),
        )
        .await;
    assert_eq!(
        log.body["entries"][0]["changes"]["forced"],
        json!([false, true])
    );

    // Cash at the door: the organiser records a completed payment, taken as
    // sent; the attendee or another organiser may not.
    let (_, guest3) = app.user("payer3").await;
    let reg3 = app.register(&guest3, &ticket).await.id();
    let cash = |_: &str| json!({"registration_id": reg3, "payment_method": "cash", "payment_status": "completed", "amount_paid": 150000.5});
    app.post("/api/payments/", Some(&guest3), cash("full"))
        .await
        .assert(403);
    app.post("/api/payments/", Some(&stranger), cash("full"))
        .await
        .assert(403);
    assert!(payment_of(app, &reg3).await.is_empty(), "nothing written");
    let taken = app.post("/api/payments/", Some(&orga), cash("full")).await;
    taken.assert(201);
    assert_eq!(taken.body["payment_method"], "cash");
    assert_eq!(taken.body["payment_status"], "completed");
}

/// A PNG of about `size` bytes (a valid header, then padding).
fn png_of(size: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(size, 0);
    bytes
}

async fn attendees_send_a_proof_and_the_organiser_confirms(app: &TestApp) {
    let (orga, event, _ticket, _guest, reg) = priced(app, "host", "sari").await;
    let instructions =
        "Transfer to BCA 123-456-7890 (PT Dico Event).\nUse your short code as the reference.";
    let set = app
        .patch(
            &format!("/api/events/{event}/"),
            Some(&orga),
            json!({"payment_instructions": instructions}),
        )
        .await;
    set.assert(200);
    assert_eq!(set.body["payment_instructions"], instructions);

    let mut sari = Browser::new(app);
    sari.sign_in("sari", PASSWORD).await;
    let my = sari.get("/console/my/").await;
    html(&my, 200);
    assert!(
        my.body.contains("Awaiting payment — pay IDR 150,000.50"),
        "{}",
        my.body
    );
    assert!(my.body.contains("Transfer to BCA 123-456-7890"));
    let csrf = hidden(&my.body, "csrf_token");
    let proof_path = format!("/console/my/registrations/{reg}/proof");

    // The wrong kind of file is told so, even when large; too large a PNG
    // is told its size; nothing is written either way.
    let mut bmp = b"BM".to_vec();
    bmp.resize(2_040_138, 0);
    let wrong = sari
        .post_file(
            &proof_path,
            &[("csrf_token", &csrf)],
            ("proof", "scan.bmp", bmp),
        )
        .await;
    html(&wrong, 400);
    assert!(
        wrong.body.contains("(JPEG, PNG, GIF or WebP) or a PDF"),
        "{}",
        wrong.body
    );
    let big = sari
        .post_file(
            &proof_path,
            &[("csrf_token", &csrf)],
            ("proof", "huge.png", png_of(3 * 1024 * 1024)),
        )
        .await;
    html(&big, 400);
    assert!(
        big.body.contains("too large (3.0 MiB); the limit is 2 MiB"),
        "{}",
        big.body
    );
    let forged = sari
        .post_file(
            &proof_path,
            &[("csrf_token", "forged")],
            ("proof", "t.png", png_of(100)),
        )
        .await;
    html(&forged, 403);
    assert!(payment_of(app, &reg).await.is_empty(), "nothing written");
    // Someone else's registration: not found.
    let (_, _) = app.user("nosy").await;
    let mut nosy = Browser::new(app);
    nosy.sign_in("nosy", PASSWORD).await;
    let nosy_csrf = hidden(&nosy.get("/console/my/").await.body, "csrf_token");
    let other = nosy
        .post_file(
            &proof_path,
            &[("csrf_token", &nosy_csrf)],
            ("proof", "t.png", png_of(100)),
        )
        .await;
    html(&other, 404);

    // A PDF: a pending payment of the amount due.
    let sent = sari
        .post_file(
            &proof_path,
            &[("csrf_token", &csrf)],
            (
                "proof",
                "transfer receipt.pdf",
                b"%PDF-1.7\n%fake receipt\n".to_vec(),
            ),
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let made = payment_of(app, &reg).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["payment_status"], "pending");
    assert_eq!(made[0]["amount_paid"], json!(150000.5));
    let payment = made[0]["id"].as_str().expect("id").to_owned();
    let my = sari.get("/console/my/").await;
    assert!(my.body.contains("Proof received"), "{}", my.body);
    assert!(my.body.contains("transfer receipt.pdf"));
    // The proof is the payer's and the organiser's to see, nobody else's.
    let own = sari
        .get(&format!("/console/payments/{payment}/proof"))
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.headers["content-type"], "application/pdf");
    assert!(own.body.starts_with("%PDF-"));
    html(
        &nosy
            .get(&format!("/console/payments/{payment}/proof"))
            .await,
        404,
    );

    // The organiser finds it first on the payments page, and confirms it.
    let mut host = Browser::new(app);
    host.sign_in("host", PASSWORD).await;
    let list = host.get("/console/payments/").await;
    html(&list, 200);
    assert!(
        list.body
            .contains(&format!("/console/payments/{payment}/proof")),
        "{}",
        list.body
    );
    assert!(list.body.contains("Pay Night"));
    let dashboard = host.get("/console/").await;
    html(&dashboard, 200);
    let proof = host
        .get(&format!("/console/payments/{payment}/proof"))
        .await;
    assert_eq!(proof.status, StatusCode::OK);
    let host_csrf = hidden(&list.body, "csrf_token");
    let moved = host
        .post(
            &format!("/console/payments/{payment}"),
            &[
                ("csrf_token", &host_csrf),
                ("status", "completed"),
                ("back", "/console/payments/?status=pending"),
            ],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&moved), "/console/payments/?status=pending");
    assert_eq!(
        payment_of(app, &reg).await[0]["payment_status"],
        "completed"
    );
    let my = sari.get("/console/my/").await;
    assert!(my.body.contains(">Paid<"), "{}", my.body);
    assert!(!my.body.contains("Awaiting payment"));
    // An attendee has no payments page.
    html(&sari.get("/console/payments/").await, 404);
}

async fn cash_is_taken_at_the_door_from_the_console(app: &TestApp) {
    let (_orga, event, _ticket, _guest, reg) = priced(app, "doorman", "walkin").await;
    app.user_in("other", "organizer").await;
    // Another organiser may not.
    let mut other = Browser::new(app);
    other.sign_in("other", PASSWORD).await;
    let csrf = hidden(&other.get("/console/").await.body, "csrf_token");
    html(
        &other
            .post(
                &format!("/console/registrations/{reg}/cash"),
                &[("csrf_token", &csrf)],
            )
            .await,
        403,
    );
    assert!(payment_of(app, &reg).await.is_empty(), "nothing written");
    // The event's organiser takes the cash from the registrations list.
    let mut host = Browser::new(app);
    host.sign_in("doorman", PASSWORD).await;
    let page = host.get(&format!("/console/events/{event}/")).await;
    assert!(page.body.contains("Took cash"), "{}", page.body);
    let csrf = hidden(&page.body, "csrf_token");
    let took = host
        .post(
            &format!("/console/registrations/{reg}/cash"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(took.status, StatusCode::SEE_OTHER, "{}", took.body);
    let paid = payment_of(app, &reg).await;
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0]["payment_method"], "cash");
    assert_eq!(paid[0]["payment_status"], "completed");
    assert_eq!(paid[0]["amount_paid"], json!(150000.5));
    let page = host.get(&format!("/console/events/{event}/")).await;
    assert!(!page.body.contains("Took cash"));
    assert!(
        page.body
            .contains("Cash payment of IDR 150,000.50 recorded.")
    );
}
