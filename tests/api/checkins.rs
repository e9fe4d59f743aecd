//! Check-in at the door (API.md §7): signed codes, every answer of a scan
//! in order, one admission however many scanners race, retries, offline
//! door apps, the keys a door app verifies with, and an event's numbers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, assert_forbidden, postgres_url};

crate::backend_tests!(
    ticket_codes_and_their_qr_images,
    scans_answer_in_the_contract_order,
    every_altered_byte_is_refused,
    codes_of_a_rotated_key_still_pass,
    retries_with_an_idempotency_key_get_the_first_answer,
    offline_door_app_syncs_and_uploads,
    a_door_app_verifies_codes_with_the_published_keys_only,
    event_stats,
    stats_follow_every_write_and_cascade,
    instants_out_of_range_are_refused,
    idempotency_keys_are_bound_to_endpoint_body_and_time,
);

/// An organiser's event with a free and a priced ticket, and an attendee
/// registered on each: (organiser token, event, free registration, priced
/// registration, attendee token).
struct Door {
    organizer: String,
    event: String,
    free: String,
    priced: String,
    attendee: String,
}

async fn door(app: &TestApp, prefix: &str) -> Door {
    let (_, organizer) = app.user_in(&format!("{prefix}org"), "organizer").await;
    let event = app.create_event(&organizer, "Rust Night", 100).await;
    let mut free = TestApp::ticket_body(&event, "Free", 10);
    free["price"] = json!(0);
    let free_ticket = app.post("/api/tickets/", Some(&organizer), free).await;
    free_ticket.assert(201);
    let priced_ticket = app.create_ticket(&organizer, &event, 10).await;
    let (_, attendee) = app.user(&format!("{prefix}guest")).await;
    let free = app.register(&attendee, &free_ticket.id()).await;
    free.assert(201);
    let priced = app.register(&attendee, &priced_ticket).await;
    priced.assert(201);
    Door {
        organizer,
        event,
        free: free.id(),
        priced: priced.id(),
        attendee,
    }
}

async fn code_of(app: &TestApp, token: &str, registration: &str) -> String {
    let reply = app
        .get(
            &format!("/api/registrations/{registration}/ticket/"),
            Some(token),
        )
        .await;
    reply.assert(200);
    reply.body["code"].as_str().expect("code").to_owned()
}

async fn scan(app: &TestApp, token: &str, body: Value) -> Reply {
    app.post("/api/checkins/", Some(token), body).await
}

#[track_caller]
fn refused(reply: &Reply, status: u16, reason: &str) {
    reply.assert(status);
    assert_eq!(reply.body["reason"], reason, "{}", reply.body);
}

async fn ticket_codes_and_their_qr_images(app: &TestApp) {
    let d = door(app, "qr").await;
    let mine = app
        .get(
            &format!("/api/registrations/{}/ticket/", d.free),
            Some(&d.attendee),
        )
        .await;
    mine.assert(200);
    assert_eq!(mine.body["registration"], d.free.as_str());
    assert_eq!(mine.body["event"], d.event.as_str());
    let code = mine.body["code"].as_str().expect("code");
    assert!(code.starts_with("DE1.") && code.len() < 200, "{code}");
    // The same code for those who manage the event; 403 for anyone else.
    assert_eq!(code_of(app, &d.organizer, &d.free).await, code);
    let (_, stranger) = app.user("qrstranger").await;
    assert_forbidden(
        &app.get(
            &format!("/api/registrations/{}/ticket/", d.free),
            Some(&stranger),
        )
        .await,
    );
    for (url, content_type, magic) in [
        (&mine.body["qr_svg"], "image/svg+xml", b"<?xml".as_slice()),
        (&mine.body["qr_png"], "image/png", b"\x89PNG".as_slice()),
    ] {
        let url = url.as_str().expect("an absolute URL");
        assert!(url.starts_with("http://"), "{url}");
        let res = app
            .client
            .get(url)
            .bearer_auth(&d.attendee)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status().as_u16(), 200, "{url}");
        assert_eq!(res.headers()["content-type"], content_type);
        let bytes = res.bytes().await.expect("body");
        assert!(bytes.starts_with(magic), "{url}");
        let anonymous = app.client.get(url).send().await.expect("sent");
        assert_eq!(anonymous.status().as_u16(), 401);
    }
}

async fn scans_answer_in_the_contract_order(app: &TestApp) {
    let d = door(app, "order").await;
    let free_code = code_of(app, &d.attendee, &d.free).await;
    let priced_code = code_of(app, &d.attendee, &d.priced).await;

    // Not a code at all.
    let reply = scan(app, &d.organizer, json!({ "code": "hello" })).await;
    refused(&reply, 400, "invalid_code");
    assert_eq!(reply.body["code"], json!(["Invalid ticket code."]));
    // Missing code: a field error (with the reason), nothing recorded.
    let reply = scan(app, &d.organizer, json!({})).await;
    crate::helpers::assert_field_error(&reply, "code");
    assert_eq!(reply.body["reason"], "invalid_code");

    // Another organiser: 403; a plain user: 403.
    let (_, other_org) = app.user_in("orderother", "organizer").await;
    for token in [&other_org, &d.attendee] {
        let reply = scan(app, token, json!({ "code": free_code })).await;
        refused(&reply, 403, "forbidden");
        assert_eq!(
            reply.body["detail"],
            "You do not have permission to perform this action."
        );
    }

    // Unpaid priced ticket: 409 unless forced.
    refused(
        &scan(app, &d.organizer, json!({ "code": priced_code })).await,
        409,
        "unpaid",
    );

    // Valid: 201 with the contract's fields; the second scan: 409, when and
    // by whom.
    let admitted = scan(app, &d.organizer, json!({ "code": free_code })).await;
    admitted.assert(201);
    for field in [
        "id",
        "registration",
        "event",
        "ticket",
        "user",
        "checked_in_at",
        "checked_in_by",
    ] {
        assert!(
            admitted.body.get(field).is_some(),
            "{field}: {}",
            admitted.body
        );
    }
    assert_eq!(admitted.body["registration"], d.free.as_str());
    assert_eq!(admitted.body["user"]["username"], "orderguest");
    let again = scan(app, &d.organizer, json!({ "code": free_code })).await;
    refused(&again, 409, "already_checked_in");
    assert_eq!(again.body["checked_in_at"], admitted.body["checked_in_at"]);
    assert_eq!(again.body["checked_in_by"], admitted.body["checked_in_by"]);
    assert_eq!(again.body["detail"], "Already checked in.");

    // Forced admission of the unpaid ticket, recorded as forced.
    let forced = scan(
        app,
        &d.organizer,
        json!({ "code": priced_code, "force": true }),
    )
    .await;
    forced.assert(201);
    assert_eq!(forced.body["forced"], true);

    // Undo, then admitted again.
    let id = admitted.id();
    let (_, stranger) = app.user("orderstranger").await;
    assert_forbidden(
        &app.delete(&format!("/api/checkins/{id}/"), Some(&stranger))
            .await,
    );
    app.delete(&format!("/api/checkins/{id}/"), Some(&d.organizer))
        .await
        .assert(204);
    scan(app, &d.organizer, json!({ "code": free_code }))
        .await
        .assert(201);

    // A deleted registration's code is revoked: 404.
    app.delete(&format!("/api/registrations/{}/", d.free), app.admin())
        .await
        .assert(204);
    let gone = scan(app, &d.organizer, json!({ "code": free_code })).await;
    refused(&gone, 404, "revoked");
    assert_eq!(gone.body["detail"], "Not found.");

    // A cancelled event: 409 (checked before payment).
    app.patch(
        &format!("/api/events/{}/", d.event),
        Some(&d.organizer),
        json!({ "status": "cancelled" }),
    )
    .await
    .assert(200);
    refused(
        &scan(app, &d.organizer, json!({ "code": priced_code })).await,
        409,
        "event_cancelled",
    );

    // The list: the organiser's, with filters; a plain user is refused.
    let list = app
        .get(
            &format!("/api/checkins/?event={}", d.event),
            Some(&d.organizer),
        )
        .await;
    list.assert(200);
    assert_eq!(list.body["count"], 1, "{}", list.body);
    assert_forbidden(&app.get("/api/checkins/", Some(&d.attendee)).await);
    let others = app.get("/api/checkins/", Some(&other_org)).await;
    others.assert(200);
    assert_eq!(others.body["count"], 0);
    let all = app.get("/api/checkins/", app.admin()).await;
    assert_eq!(all.body["count"], 1);
    crate::helpers::assert_field_error(
        &app.get("/api/checkins/?event=x", app.admin()).await,
        "event",
    );
}

async fn every_altered_byte_is_refused(app: &TestApp) {
    let d = door(app, "flip").await;
    let code = code_of(app, &d.attendee, &d.free).await;
    let bytes = code.as_bytes();
    let mut accepted = Vec::new();
    for i in 0..bytes.len() {
        let mut altered = bytes.to_vec();
        // Another character of the same alphabet (base64url, '.', digits).
        altered[i] = match altered[i] {
            b'A' => b'B',
            b'.' => b'-',
            _ => b'A',
        };
        let altered = String::from_utf8(altered).expect("ascii");
        let reply = scan(app, &d.organizer, json!({ "code": altered })).await;
        if reply.status.as_u16() != 400 || reply.body["reason"] != "invalid_code" {
            accepted.push(format!("byte {i}: {} {}", reply.status, reply.body));
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
    // A code signed by a key this server never had.
    let stranger = dicoevent::ticket_codes::TicketSigner::from_seed(&[42u8; 32]);
    let registration = uuid::Uuid::parse_str(&d.free).expect("uuid");
    let event = uuid::Uuid::parse_str(&d.event).expect("uuid");
    let forged = stranger.sign(registration, event);
    refused(
        &scan(app, &d.organizer, json!({ "code": forged })).await,
        400,
        "invalid_code",
    );
    // Nothing was recorded; the real code still admits.
    scan(app, &d.organizer, json!({ "code": code }))
        .await
        .assert(201);
}

async fn codes_of_a_rotated_key_still_pass(app: &TestApp) {
    let d = door(app, "rot").await;
    let old_code = code_of(app, &d.attendee, &d.free).await;
    // The same deployment after a rotation: a new signing key.
    let rotated = app
        .spawn_sibling_with(&[(
            "TICKET_SIGNING_KEY",
            &base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
        )])
        .await;
    let new_code = code_of(&rotated, &d.attendee, &d.priced).await;
    assert_ne!(
        old_code.split('.').nth(1).map(|p| &p[..8]),
        new_code.split('.').nth(1).map(|p| &p[..8]),
        "another key id"
    );
    rotated
        .post(
            "/api/checkins/",
            Some(&d.organizer),
            json!({ "code": old_code }),
        )
        .await
        .assert(201);
    // Both keys are published.
    let keys = rotated.get("/api/checkins/keys/", None).await;
    keys.assert(200);
    assert_eq!(
        keys.body["keys"].as_array().map(Vec::len),
        Some(2),
        "{}",
        keys.body
    );
    // The old process verifies the new key's codes too (recorded in the
    // database).
    app.post(
        "/api/checkins/",
        Some(&d.organizer),
        json!({ "code": new_code, "force": true }),
    )
    .await
    .assert(201);
    rotated.cleanup().await;
}

async fn retries_with_an_idempotency_key_get_the_first_answer(app: &TestApp) {
    let d = door(app, "idem").await;
    let code = code_of(app, &d.attendee, &d.free).await;
    let send = |key: &'static str| {
        app.client
            .post(app.url("/api/checkins/"))
            .bearer_auth(&d.organizer)
            .header("Idempotency-Key", key)
            .json(&json!({ "code": code }))
            .send()
    };
    let first = TestApp::reply(send("door-1-scan-7").await.expect("sent")).await;
    first.assert(201);
    let retry = TestApp::reply(send("door-1-scan-7").await.expect("sent")).await;
    retry.assert(201);
    assert_eq!(retry.body, first.body);
    // Another key is another scan: already checked in.
    let other = TestApp::reply(send("door-2-scan-1").await.expect("sent")).await;
    refused(&other, 409, "already_checked_in");
    let list = app
        .get(
            &format!("/api/checkins/?event={}", d.event),
            Some(&d.organizer),
        )
        .await;
    assert_eq!(list.body["count"], 1, "one row: {}", list.body);
}

async fn offline_door_app_syncs_and_uploads(app: &TestApp) {
    let d = door(app, "off").await;
    // A third registration, deleted after the sync.
    let (_, late) = app.user("offlate").await;
    let ticket = app
        .get(&format!("/api/tickets/?event={}", d.event), None)
        .await
        .body["tickets"][0]["id"]
        .as_str()
        .expect("ticket")
        .to_owned();
    let late_registration = app.register(&late, &ticket).await;
    late_registration.assert(201);
    let free_code = code_of(app, &d.attendee, &d.free).await;
    let priced_code = code_of(app, &d.attendee, &d.priced).await;

    let first = app
        .get(
            &format!("/api/events/{}/checkin-sync/", d.event),
            Some(&d.organizer),
        )
        .await;
    first.assert(200);
    assert!(first.body["keys"].as_array().is_some_and(|k| !k.is_empty()));
    assert_eq!(first.body["revoked"], json!([]));
    assert_eq!(first.body["checked_in"], json!([]));
    let since = first.body["server_time"]
        .as_str()
        .expect("server_time")
        .to_owned();
    // Only those who manage the event sync.
    assert_forbidden(
        &app.get(
            &format!("/api/events/{}/checkin-sync/", d.event),
            Some(&d.attendee),
        )
        .await,
    );

    // Offline, the door admits both; meanwhile the free one is also
    // admitted online at another door.
    let online = scan(app, &d.organizer, json!({ "code": free_code })).await;
    online.assert(201);
    app.delete(
        &format!("/api/registrations/{}/", late_registration.id()),
        app.admin(),
    )
    .await
    .assert(204);
    // Admitted offline after the registrations were made (a scan dated
    // before its registration is refused): the next whole second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let scanned_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let scanned_at = scanned_at.as_str();
    let upload_priced = scan(
        app,
        &d.organizer,
        json!({ "code": priced_code, "scanned_at": scanned_at, "force": true }),
    )
    .await;
    upload_priced.assert(201);
    assert_eq!(upload_priced.body["offline"], true);
    assert_eq!(upload_priced.body["checked_in_at"], scanned_at);
    let upload_free = scan(
        app,
        &d.organizer,
        json!({ "code": free_code, "scanned_at": scanned_at }),
    )
    .await;
    refused(&upload_free, 409, "already_checked_in");
    // The door app uploading the same offline scan again (no key): not
    // another double entry.
    let again = scan(
        app,
        &d.organizer,
        json!({ "code": priced_code, "scanned_at": scanned_at, "force": true }),
    )
    .await;
    refused(&again, 409, "already_checked_in");

    // Both offline scans are recorded; the double entry is flagged.
    let list = app
        .get(
            &format!("/api/checkins/?event={}&page_size=100", d.event),
            Some(&d.organizer),
        )
        .await;
    let rows = list.body["checkins"].as_array().expect("checkins").clone();
    assert_eq!(rows.len(), 3, "{}", list.body);
    let conflicts: Vec<&Value> = rows.iter().filter(|r| r["conflict"] == true).collect();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["registration"], d.free.as_str());
    assert_eq!(conflicts[0]["offline"], true);

    // The next sync: the deleted registration is revoked; the admissions
    // since then are listed.
    let next = app
        .get(
            &format!(
                "/api/events/{}/checkin-sync/?since={}",
                d.event,
                since.replace('+', "%2B")
            ),
            Some(&d.organizer),
        )
        .await;
    next.assert(200);
    assert_eq!(next.body["revoked"], json!([late_registration.id()]));
    let admitted: Vec<&str> = next.body["checked_in"]
        .as_array()
        .expect("checked_in")
        .iter()
        .filter_map(|c| c["registration"].as_str())
        .collect();
    assert!(
        admitted.contains(&d.free.as_str()) && admitted.contains(&d.priced.as_str()),
        "{}",
        next.body
    );
}

/// What an offline scanner does: verify a code with nothing but the JWK
/// from `/api/checkins/keys/` (no server code).
async fn a_door_app_verifies_codes_with_the_published_keys_only(app: &TestApp) {
    let d = door(app, "jwk").await;
    let code = code_of(app, &d.attendee, &d.free).await;
    let keys = app.get("/api/checkins/keys/", None).await;
    keys.assert(200);
    let (prefix_and_payload, signature) = code.rsplit_once('.').expect("signature");
    let payload = URL_SAFE_NO_PAD
        .decode(prefix_and_payload.strip_prefix("DE1.").expect("DE1"))
        .expect("payload");
    let kid = URL_SAFE_NO_PAD.encode(&payload[..6]);
    let jwk = keys.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the code's key is published")
        .clone();
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["crv"], "Ed25519");
    let x = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().expect("x"))
        .expect("x is base64url");
    let key = VerifyingKey::from_bytes(&x.try_into().expect("32 bytes")).expect("a key");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("signature");
    let signature = Signature::from_bytes(&signature.try_into().expect("64 bytes"));
    assert!(
        key.verify_strict(prefix_and_payload.as_bytes(), &signature)
            .is_ok()
    );
    assert_eq!(
        uuid::Uuid::from_slice(&payload[6..22])
            .expect("registration")
            .to_string(),
        d.free
    );
    let mut tampered = prefix_and_payload.as_bytes().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(key.verify_strict(&tampered, &signature).is_err());
}

async fn event_stats(app: &TestApp) {
    let d = door(app, "stats").await;
    let priced = app
        .get(
            &format!("/api/registrations/{}/", d.priced),
            Some(&d.attendee),
        )
        .await;
    priced.assert(200);
    let payment = app
        .post(
            "/api/payments/",
            app.admin(),
            json!({"registration_id": d.priced, "payment_method": "QRIS", "amount_paid": 150000.5, "payment_status": "completed"}),
        )
        .await;
    payment.assert(201);
    let free_code = code_of(app, &d.attendee, &d.free).await;
    scan(app, &d.organizer, json!({ "code": free_code }))
        .await
        .assert(201);
    let stats = app
        .get(
            &format!("/api/events/{}/stats/", d.event),
            Some(&d.organizer),
        )
        .await;
    stats.assert(200);
    assert_eq!(stats.body["event"], d.event.as_str());
    assert_eq!(stats.body["quota"], 100);
    assert_eq!(stats.body["registered"], 2);
    assert_eq!(stats.body["checked_in"], 1);
    assert_eq!(
        stats.body["payments"],
        json!({"pending": 0, "completed": 1, "failed": 0, "refunded": 0})
    );
    assert_eq!(stats.body["revenue"], json!(150000.5));
    let tickets = stats.body["tickets"].as_array().expect("tickets");
    assert_eq!(tickets.len(), 2);
    let checked: i64 = tickets
        .iter()
        .filter_map(|t| t["checked_in"].as_i64())
        .sum();
    assert_eq!(checked, 1);
    assert_forbidden(
        &app.get(
            &format!("/api/events/{}/stats/", d.event),
            Some(&d.attendee),
        )
        .await,
    );
    app.get(
        "/api/events/00000000-0000-0000-0000-000000000000/stats/",
        app.admin(),
    )
    .await
    .assert(404);
}

/// 50 scanners at once on one code, spread over two server processes on
/// PostgreSQL: exactly one admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scans_admit_once() {
    if postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let sibling = app.spawn_sibling().await;
    let d = door(&app, "race").await;
    let code = code_of(&app, &d.attendee, &d.free).await;
    let mut scans = Vec::new();
    for i in 0..50 {
        let server = if i % 2 == 0 { &app } else { &sibling };
        let request = server
            .client
            .post(server.url("/api/checkins/"))
            .bearer_auth(&d.organizer)
            .json(&json!({ "code": code }))
            .send();
        scans.push(request);
    }
    let answers = futures::future::join_all(scans).await;
    let mut created = 0;
    let mut conflicts = 0;
    for answer in answers {
        let reply = TestApp::reply(answer.expect("sent")).await;
        match reply.status.as_u16() {
            201 => created += 1,
            409 if reply.body["reason"] == "already_checked_in" => conflicts += 1,
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!((created, conflicts), (1, 49));
    let list = app
        .get(&format!("/api/checkins/?event={}", d.event), app.admin())
        .await;
    assert_eq!(list.body["count"], 1, "one row");
    sibling.cleanup().await;
    app.cleanup().await;
}

/// The numbers come from tallies the database keeps (migration
/// `m20261205_000010_scale`): every kind of write moves them, cascades
/// included, and they always equal a count of the rows.
async fn stats_follow_every_write_and_cascade(app: &TestApp) {
    let d = door(app, "tally").await;
    // Payments: one pending, then completed, another failed then deleted.
    let pay = |status: &str, amount: f64| json!({"registration_id": d.priced, "payment_method": "QRIS", "amount_paid": amount, "payment_status": status});
    let first = app
        .post("/api/payments/", app.admin(), pay("pending", 150000.0))
        .await;
    first.assert(201);
    let failed = app
        .post("/api/payments/", app.admin(), pay("failed", 150000.0))
        .await;
    failed.assert(201);
    let now = stats_of(app, &d).await;
    assert_eq!(
        now["payments"],
        json!({"pending": 1, "completed": 0, "failed": 1, "refunded": 0})
    );
    assert_eq!(now["revenue"].as_f64(), Some(0.0));
    app.patch(
        &format!("/api/payments/{}/", first.id()),
        app.admin(),
        json!({"payment_status": "completed", "amount_paid": 120000.25, "force": true}),
    )
    .await
    .assert(200);
    app.delete(&format!("/api/payments/{}/", failed.id()), app.admin())
        .await
        .assert(204);
    let now = stats_of(app, &d).await;
    assert_eq!(
        now["payments"],
        json!({"pending": 0, "completed": 1, "failed": 0, "refunded": 0})
    );
    assert_eq!(now["revenue"].as_f64(), Some(120000.25));

    // Check-ins: two admitted, one undone.
    let free_code = code_of(app, &d.attendee, &d.free).await;
    let admitted = scan(app, &d.organizer, json!({ "code": free_code })).await;
    admitted.assert(201);
    let priced_code = code_of(app, &d.attendee, &d.priced).await;
    scan(app, &d.organizer, json!({ "code": priced_code }))
        .await
        .assert(201);
    assert_eq!(stats_of(app, &d).await["checked_in"], 2);
    app.delete(
        &format!("/api/checkins/{}/", admitted.id()),
        Some(&d.organizer),
    )
    .await
    .assert(204);
    let now = stats_of(app, &d).await;
    assert_eq!(now["checked_in"], 1);
    assert_eq!(now["registered"], 2);
    let listed = app
        .get(
            &format!("/api/checkins/?event={}", d.event),
            Some(&d.organizer),
        )
        .await;
    assert_eq!(listed.body["count"], 1);

    // Deleting the priced registration takes its payment and check-in.
    app.delete(&format!("/api/registrations/{}/", d.priced), app.admin())
        .await
        .assert(204);
    let now = stats_of(app, &d).await;
    assert_eq!(now["registered"], 1);
    assert_eq!(now["checked_in"], 0);
    assert_eq!(
        now["payments"],
        json!({"pending": 0, "completed": 0, "failed": 0, "refunded": 0})
    );
    assert_eq!(now["revenue"].as_f64(), Some(0.0));
    let listed = app
        .get(
            &format!("/api/registrations/?event={}", d.event),
            Some(&d.organizer),
        )
        .await;
    assert_eq!(listed.body["count"], 1);
    assert_eq!(
        listed.body["registrations"].as_array().map(Vec::len),
        Some(1)
    );

    // A ticket deleted with its registrations, a user deleted with theirs.
    let ticket = app.create_ticket(&d.organizer, &d.event, 10).await;
    let (guest, guest_token) = app.user("tallyguest2").await;
    let theirs = app.register(&guest_token, &ticket).await;
    theirs.assert(201);
    app.post(
        "/api/payments/",
        app.admin(),
        json!({"registration_id": theirs.id(), "payment_method": "QRIS", "amount_paid": 10, "payment_status": "completed"}),
    )
    .await
    .assert(201);
    let now = stats_of(app, &d).await;
    assert_eq!(now["registered"], 2);
    assert_eq!(now["payments"]["completed"], 1);
    app.delete(&format!("/api/users/{guest}/"), Some(&guest_token))
        .await
        .assert(204);
    let now = stats_of(app, &d).await;
    assert_eq!(now["registered"], 1);
    assert_eq!(now["payments"]["completed"], 0);
    let (_, third) = app.user("tallyguest3").await;
    app.register(&third, &ticket).await.assert(201);
    assert_eq!(stats_of(app, &d).await["registered"], 2);
    app.delete(&format!("/api/tickets/{ticket}/"), Some(&d.organizer))
        .await
        .assert(204);
    assert_eq!(stats_of(app, &d).await["registered"], 1);

    // The organiser's payments list counts from the tallies too.
    let mine = app
        .get(
            "/api/payments/?payment_status=completed",
            Some(&d.organizer),
        )
        .await;
    assert_eq!(mine.body["count"], 0);
    // The event deleted: its tallies go with it (the next event starts at 0).
    app.delete(&format!("/api/events/{}/", d.event), Some(&d.organizer))
        .await
        .assert(204);
    app.get(
        &format!("/api/events/{}/stats/", d.event),
        Some(&d.organizer),
    )
    .await
    .assert(404);
}

async fn stats_of(app: &TestApp, d: &Door) -> Value {
    let reply = app
        .get(
            &format!("/api/events/{}/stats/", d.event),
            Some(&d.organizer),
        )
        .await;
    reply.assert(200);
    reply.body
}

/// Instants outside years 1-9999 in UTC, and a scan time in the future, are
/// refused on their field (API.md §7, §12) and nothing is written.
async fn instants_out_of_range_are_refused(app: &TestApp) {
    let d = door(app, "far").await;
    let code = code_of(app, &d.attendee, &d.free).await;
    for at in ["9999-12-31T23:59:59Z", "2999-01-01T00:00:00Z"] {
        let reply = scan(app, &d.organizer, json!({ "code": code, "scanned_at": at })).await;
        reply.assert(400);
        assert!(reply.body["scanned_at"].is_array(), "{}", reply.body);
    }
    // Nor before the registration was made (API.md §7).
    let reply = scan(
        app,
        &d.organizer,
        json!({ "code": code, "scanned_at": "2020-01-01T00:00:00Z" }),
    )
    .await;
    reply.assert(400);
    assert_eq!(
        reply.body["scanned_at"][0], "Scan time cannot be before the registration was made.",
        "{}",
        reply.body
    );
    let listed = app
        .get(
            &format!("/api/checkins/?event={}", d.event),
            Some(&d.organizer),
        )
        .await;
    assert_eq!(listed.body["count"], 0);
    let before = app.get("/api/events/", None).await.body["count"].clone();
    let mut body = TestApp::event_body("Far future", 10);
    body["start_time"] = json!("9999-12-31T23:59:59-14:00");
    body["end_time"] = json!("9999-12-31T23:59:59-14:00");
    let reply = app.post("/api/events/", Some(&d.organizer), body).await;
    reply.assert(400);
    assert!(reply.body["start_time"].is_array(), "{}", reply.body);
    assert_eq!(app.get("/api/events/", None).await.body["count"], before);
}

/// An Idempotency-Key is bound to its endpoint, its caller and its body
/// (API.md §7): another body under a used key is 422 and records nothing —
/// also when ten such requests race; a payment's key never replays a scan
/// (nor the reverse); a key past its 24 hours is forgotten and the request
/// processed anew.
async fn idempotency_keys_are_bound_to_endpoint_body_and_time(app: &TestApp) {
    let d = door(app, "bound").await;
    let free_code = code_of(app, &d.attendee, &d.free).await;
    let priced_code = code_of(app, &d.attendee, &d.priced).await;
    let send = |path: &'static str, token: String, key: String, body: Value| {
        let request = app
            .client
            .post(app.url(path))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { TestApp::reply(request.send().await.expect("sent")).await }
    };
    let admitted = || async {
        app.get(
            &format!("/api/checkins/?event={}", d.event),
            Some(&d.organizer),
        )
        .await
        .body["count"]
            .clone()
    };

    // The first scan under K; K again with another code: 422, not admitted.
    let first = send(
        "/api/checkins/",
        d.organizer.clone(),
        "K".into(),
        json!({ "code": free_code }),
    )
    .await;
    first.assert(201);
    let other = send(
        "/api/checkins/",
        d.organizer.clone(),
        "K".into(),
        json!({ "code": priced_code, "force": true }),
    )
    .await;
    other.assert(422);
    assert_eq!(
        other.body,
        json!({"detail": "Idempotency-Key reused with a different request."})
    );
    assert_eq!(admitted().await, 1);
    // The same body with its fields in another order is the same request.
    let again = send(
        "/api/checkins/",
        d.organizer.clone(),
        "K".into(),
        json!({ "code": free_code }),
    )
    .await;
    again.assert(201);
    assert_eq!(again.body, first.body);

    // Ten different codes at once under one new key: one is admitted, the
    // others are refused with 422, nothing else recorded.
    let mut roomy = TestApp::ticket_body(&d.event, "Free, roomy", 20);
    roomy["price"] = json!(0);
    let free_ticket = app.post("/api/tickets/", Some(&d.organizer), roomy).await;
    free_ticket.assert(201);
    let free_ticket = free_ticket.id();
    let mut codes = Vec::new();
    for n in 0..10 {
        let (_, guest) = app.user(&format!("boundguest{n}")).await;
        let registration = app.register(&guest, &free_ticket).await;
        registration.assert(201);
        codes.push(code_of(app, &guest, &registration.id()).await);
    }
    let racing = codes.iter().map(|code| {
        send(
            "/api/checkins/",
            d.organizer.clone(),
            "RACE".into(),
            json!({ "code": code }),
        )
    });
    let replies = futures::future::join_all(racing).await;
    let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
    let reused = replies.iter().filter(|r| r.status.as_u16() == 422).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(
        reused,
        9,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(admitted().await, 2);

    // A payment sent with a key a scan used (and its old spelling) is a
    // payment: it never replays the scan.
    for key in ["K", "checkin:K"] {
        let paid = send(
            "/api/payments/",
            d.attendee.clone(),
            key.into(),
            json!({"registration_id": d.priced, "payment_method": "QRIS", "amount_paid": 150000}),
        )
        .await;
        paid.assert(201);
        assert_eq!(
            paid.body["registration"],
            d.priced.as_str(),
            "{}",
            paid.body
        );
    }

    // A key past its 24 hours: forgotten, another request under it processed
    // anew (not refused as a reuse, not "in progress" for ever).
    {
        use dicoevent::db::entities::idempotency_key;
        use sea_orm::EntityTrait;
        idempotency_key::Entity::update_many()
            .col_expr(
                idempotency_key::Column::CreatedAt,
                sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::hours(25)),
            )
            .exec(app.state.db.conn())
            .await
            .expect("keys aged");
    }
    let fresh = send(
        "/api/checkins/",
        d.organizer.clone(),
        "K".into(),
        json!({ "code": priced_code, "force": true }),
    )
    .await;
    fresh.assert(201);
    assert_eq!(admitted().await, 3);
}
