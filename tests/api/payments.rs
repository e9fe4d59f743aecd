//! `/api/payments/`: who pays, validation, one completed payment per
//! registration, Idempotency-Key, scoping and status moves.

use serde_json::{Value, json};

use crate::helpers::{
    Reply, TestApp, assert_field_error, assert_forbidden, assert_not_found, assert_unauthorized,
    is_utc_z, sorted_keys,
};

crate::backend_tests!(
    creating_payments,
    invalid_payments_write_nothing,
    idempotency_key_replays_the_first_response,
    payment_list_is_scoped_and_filtered,
    payment_detail_permissions,
    payment_status_moves,
    deleting_payments,
);

const PAYMENT_FIELDS: [&str; 8] = [
    "amount_paid",
    "created_at",
    "id",
    "paid_at",
    "payment_method",
    "payment_status",
    "registration",
    "updated_at",
];

fn payment_body(registration: &str, status: Option<&str>) -> Value {
    let mut body = json!({
        "registration_id": registration,
        "payment_method": "QRIS",
        "amount_paid": 150000.5,
    });
    if let Some(s) = status {
        body["payment_status"] = json!(s);
    }
    body
}

async fn pay(app: &TestApp, token: &str, registration: &str, status: Option<&str>) -> Reply {
    app.post(
        "/api/payments/",
        Some(token),
        payment_body(registration, status),
    )
    .await
}

/// Number of payments visible to the superuser, optionally filtered.
async fn payment_count(app: &TestApp, query: &str) -> i64 {
    let list = app
        .get(&format!("/api/payments/?{query}"), app.admin())
        .await;
    list.assert(200);
    list.body["count"].as_i64().expect("count")
}

/// An organizer-run event with one ticket; returns (event, ticket).
async fn event_with_ticket(app: &TestApp, organizer: &str) -> (String, String) {
    let event = app.create_event(organizer, "Paid event", 100).await;
    let ticket = app.create_ticket(organizer, &event, 50).await;
    (event, ticket)
}

async fn registration_of(app: &TestApp, token: &str, ticket: &str) -> String {
    let reply = app.register(token, ticket).await;
    reply.assert(201);
    reply.id()
}

async fn creating_payments(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let (_event, ticket) = event_with_ticket(app, &olga).await;
    let reg = registration_of(app, &alice, &ticket).await;

    // The registration's user: pending, not paid.
    let created = pay(app, &alice, &reg, None).await;
    created.assert(201);
    let p = &created.body;
    assert_eq!(sorted_keys(p), PAYMENT_FIELDS);
    assert!(uuid::Uuid::parse_str(&created.id()).is_ok());
    assert_eq!(p["registration"], reg.as_str());
    assert_eq!(p["payment_method"], "QRIS");
    assert_eq!(p["payment_status"], "pending");
    assert_eq!(p["amount_paid"], json!(150000.5));
    assert_eq!(p["paid_at"], Value::Null);
    assert!(
        is_utc_z(&p["created_at"]),
        "created_at: {}",
        p["created_at"]
    );
    assert!(
        is_utc_z(&p["updated_at"]),
        "updated_at: {}",
        p["updated_at"]
    );
    let read = app
        .get(&format!("/api/payments/{}/", created.id()), Some(&alice))
        .await;
    read.assert(200);
    assert_eq!(&read.body, p);

    // Explicit "PENDING" is accepted case-insensitively; money as sent.
    let mut body = payment_body(&reg, Some("PENDING"));
    body["amount_paid"] = json!(200000);
    body["payment_method"] = json!("bank_transfer");
    let second = app.post("/api/payments/", Some(&alice), body).await;
    second.assert(201);
    assert_eq!(second.body["payment_status"], "pending");
    assert_eq!(second.body["amount_paid"], json!(200000));
    assert_eq!(second.body["payment_method"], "bank_transfer");
    assert_eq!(payment_count(app, "").await, 2);

    // Numeric strings are accepted; unlisted fields are ignored.
    let mut body = payment_body(&reg, None);
    body["amount_paid"] = json!("19.99");
    body["paid_at"] = json!("2025-01-01T00:00:00Z");
    body["registration"] = json!(uuid::Uuid::new_v4().to_string());
    let third = app.post("/api/payments/", Some(&alice), body).await;
    third.assert(201);
    assert_eq!(third.body["amount_paid"], json!(19.99));
    assert_eq!(third.body["paid_at"], Value::Null);
    assert_eq!(third.body["registration"], reg.as_str());
    app.delete(&format!("/api/payments/{}/", third.id()), app.admin())
        .await
        .assert(204);

    // Someone else, another organizer, anonymous: refused, nothing written
    // (the event's own organizer may record one: tests/api/paying.rs).
    assert_forbidden(&pay(app, &bob, &reg, None).await);
    let (_, oscar) = app.user_in("oscar", "organizer").await;
    assert_forbidden(&pay(app, &oscar, &reg, None).await);
    assert_unauthorized(
        &app.post("/api/payments/", None, payment_body(&reg, None))
            .await,
    );
    // A user may not declare their own payment completed (or anything but pending).
    for status in ["completed", "COMPLETED", "refunded", "failed"] {
        assert_forbidden(&pay(app, &alice, &reg, Some(status)).await);
    }
    assert_eq!(payment_count(app, "").await, 2);

    // An admin records a completed payment: paid_at is set.
    let completed = pay(app, &admin, &reg, Some("Completed")).await;
    completed.assert(201);
    assert_eq!(completed.body["payment_status"], "completed");
    assert!(
        is_utc_z(&completed.body["paid_at"]),
        "paid_at: {}",
        completed.body["paid_at"]
    );
    // A second completed payment on the same registration → 409.
    let again = pay(app, &app.admin_token, &reg, Some("completed")).await;
    again.assert(409);
    assert!(again.body["detail"].is_string(), "body: {}", again.body);
    assert_eq!(payment_count(app, "payment_status=completed").await, 1);
    // Permission before validation: a user's bad body for someone else's
    // registration is a 403.
    let mut body = payment_body(&reg, None);
    body["amount_paid"] = json!(-1);
    assert_forbidden(&app.post("/api/payments/", Some(&bob), body).await);
    // Failed and refunded records are still fine for admins.
    let failed = pay(app, &app.admin_token, &reg, Some("FAILED")).await;
    failed.assert(201);
    assert_eq!(failed.body["payment_status"], "failed");
    assert_eq!(failed.body["paid_at"], Value::Null);
    assert_eq!(payment_count(app, "").await, 4);
}

async fn invalid_payments_write_nothing(app: &TestApp) {
    let (_alice_id, alice) = app.user("alice").await;
    let (_event, ticket) = event_with_ticket(app, &app.admin_token).await;
    let reg = registration_of(app, &alice, &ticket).await;

    for field in ["registration_id", "payment_method", "amount_paid"] {
        let mut body = payment_body(&reg, None);
        body.as_object_mut().expect("object").remove(field);
        assert_field_error(
            &app.post("/api/payments/", Some(&alice), body.clone()).await,
            field,
        );
        assert_field_error(&app.post("/api/payments/", app.admin(), body).await, field);
    }
    for (field, value) in [
        ("registration_id", json!(uuid::Uuid::new_v4().to_string())),
        ("registration_id", json!("not-a-uuid")),
        ("amount_paid", json!(-1)),
        ("amount_paid", json!("-0.01")),
        ("amount_paid", json!(1.005)),
        ("amount_paid", json!("abc")),
        ("payment_method", json!("")),
        ("payment_method", json!("m".repeat(51))),
        ("payment_status", json!("bogus")),
        ("payment_status", json!("")),
    ] {
        let mut body = payment_body(&reg, None);
        body[field] = value.clone();
        let reply = app.post("/api/payments/", app.admin(), body).await;
        assert_field_error(&reply, field);
        assert!(reply.body.get("id").is_none(), "{field}={value}");
    }
    // Unknown registration from a plain user: 400 as well.
    let mut body = payment_body(&reg, None);
    body["registration_id"] = json!(uuid::Uuid::new_v4().to_string());
    assert_field_error(
        &app.post("/api/payments/", Some(&alice), body).await,
        "registration_id",
    );
    assert_eq!(payment_count(app, "").await, 0, "nothing was written");

    // Boundaries that are valid.
    let mut body = payment_body(&reg, None);
    body["amount_paid"] = json!("0");
    body["payment_method"] = json!("m".repeat(50));
    let reply = app.post("/api/payments/", Some(&alice), body).await;
    reply.assert(201);
    assert_eq!(reply.body["amount_paid"], json!(0));
}

async fn post_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> Reply {
    let res = app
        .client
        .post(app.url("/api/payments/"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    TestApp::reply(res).await
}

async fn idempotency_key_replays_the_first_response(app: &TestApp) {
    let (_alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let (_event, ticket) = event_with_ticket(app, &app.admin_token).await;
    let reg = registration_of(app, &alice, &ticket).await;
    let bob_reg = registration_of(app, &bob, &ticket).await;
    let body = payment_body(&reg, None);

    let first = post_with_key(app, &alice, "key-1", &body).await;
    first.assert(201);
    let replay = post_with_key(app, &alice, "key-1", &body).await;
    replay.assert(201);
    assert_eq!(replay.body, first.body, "the first response, replayed");
    assert_eq!(payment_count(app, &format!("registration={reg}")).await, 1);

    // A different key is a new payment.
    let other = post_with_key(app, &alice, "key-2", &body).await;
    other.assert(201);
    assert_ne!(other.id(), first.id());
    assert_eq!(payment_count(app, &format!("registration={reg}")).await, 2);

    // The same key from another user is independent of Alice's.
    let bobs = post_with_key(app, &bob, "key-1", &payment_body(&bob_reg, None)).await;
    bobs.assert(201);
    assert_ne!(bobs.id(), first.id());
    assert_eq!(bobs.body["registration"], bob_reg.as_str());
    let roots = post_with_key(app, &app.admin_token, "key-1", &body).await;
    roots.assert(201);
    assert_ne!(roots.id(), first.id());
    assert_eq!(payment_count(app, "").await, 4);

    // The same key with another body is refused (API.md §7) and writes
    // nothing.
    let mut changed = body.clone();
    changed["amount_paid"] = json!(1);
    let reused = post_with_key(app, &alice, "key-1", &changed).await;
    reused.assert(422);
    assert_eq!(
        reused.body,
        json!({"detail": "Idempotency-Key reused with a different request."})
    );
    assert_eq!(payment_count(app, "").await, 4);

    // Without a key, each POST creates a payment.
    pay(app, &alice, &reg, None).await.assert(201);
    pay(app, &alice, &reg, None).await.assert(201);
    assert_eq!(payment_count(app, "").await, 6);

    // A completed payment sent twice with one key is replayed, not refused
    // as a second completed payment, and exists once.
    let completed = payment_body(&bob_reg, Some("completed"));
    let a = post_with_key(app, &app.admin_token, "pay-bob", &completed).await;
    a.assert(201);
    let b = post_with_key(app, &app.admin_token, "pay-bob", &completed).await;
    assert_eq!(b.status.as_u16(), 201, "replayed, not a 409: {}", b.body);
    assert_eq!(b.body, a.body);
    assert_eq!(
        payment_count(
            app,
            &format!("registration={bob_reg}&payment_status=completed")
        )
        .await,
        1
    );

    // A client retrying at once with one key: one payment, one answer.
    let before = payment_count(app, "").await;
    let replies =
        futures::future::join_all((0..5).map(|_| post_with_key(app, &alice, "burst", &body))).await;
    let created: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 201)
        .collect();
    assert!(
        !created.is_empty(),
        "statuses: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in &replies {
        assert!(
            matches!(r.status.as_u16(), 201 | 409),
            "concurrent replay: {} {}",
            r.status,
            r.body
        );
    }
    assert!(
        created.iter().all(|r| r.body == created[0].body),
        "one answer"
    );
    assert_eq!(payment_count(app, "").await, before + 1);
}

fn list_ids(reply: &Reply) -> Vec<String> {
    reply.assert(200);
    let mut ids: Vec<String> = reply.body["payments"]
        .as_array()
        .unwrap_or_else(|| panic!("no payments in {}", reply.body))
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted_ids(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn payment_list_is_scoped_and_filtered(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let (_olga_event, olga_ticket) = event_with_ticket(app, &olga).await;
    let (_root_event, root_ticket) = event_with_ticket(app, &app.admin_token).await;

    let alice_olga = registration_of(app, &alice, &olga_ticket).await;
    let bob_olga = registration_of(app, &bob, &olga_ticket).await;
    let bob_root = registration_of(app, &bob, &root_ticket).await;
    let olga_root = registration_of(app, &olga, &root_ticket).await;

    let p_alice = pay(app, &alice, &alice_olga, None).await.id();
    let p_bob_olga = pay(app, &admin, &bob_olga, Some("completed")).await.id();
    let p_bob_root = pay(app, &bob, &bob_root, None).await.id();
    let p_olga_root = pay(app, &olga, &olga_root, None).await.id();

    let list = |token: &str, query: &str| {
        let path = format!("/api/payments/?{query}");
        let token = token.to_owned();
        async move { app.get(&path, Some(&token)).await }
    };
    let all = sorted_ids(&[&p_alice, &p_bob_olga, &p_bob_root, &p_olga_root]);

    let everything = list(&app.admin_token, "").await;
    let mut keys = sorted_keys(&everything.body);
    keys.retain(|k| k != "payments");
    assert_eq!(
        keys,
        [
            "count",
            "next",
            "page",
            "page_size",
            "previous",
            "total_pages"
        ]
    );
    assert_eq!(everything.body["count"], 4);
    assert!(
        everything.body["payments"]
            .as_array()
            .expect("payments")
            .iter()
            .all(|p| sorted_keys(p) == PAYMENT_FIELDS)
    );
    assert_eq!(list_ids(&everything), all);
    assert_eq!(list_ids(&list(&admin, "").await), all);
    assert_eq!(
        list_ids(&list(&olga, "").await),
        sorted_ids(&[&p_alice, &p_bob_olga, &p_olga_root])
    );
    assert!(list_ids(&list(&otto, "").await).is_empty());
    assert_eq!(list_ids(&list(&alice, "").await), vec![p_alice.clone()]);
    assert_eq!(
        list_ids(&list(&bob, "").await),
        sorted_ids(&[&p_bob_olga, &p_bob_root])
    );
    assert_unauthorized(&app.get("/api/payments/", None).await);

    // Filters.
    assert_eq!(
        list_ids(&list(&admin, &format!("registration={bob_root}")).await),
        vec![p_bob_root.clone()]
    );
    assert_eq!(
        list_ids(&list(&admin, "payment_status=completed").await),
        vec![p_bob_olga.clone()]
    );
    assert_eq!(
        list_ids(&list(&admin, "payment_status=pending").await),
        sorted_ids(&[&p_alice, &p_bob_root, &p_olga_root])
    );
    assert_eq!(
        list_ids(&list(&bob, "payment_status=pending").await),
        vec![p_bob_root.clone()]
    );
    assert_eq!(
        list_ids(&list(&olga, "payment_status=pending").await),
        sorted_ids(&[&p_alice, &p_olga_root])
    );
    assert!(list_ids(&list(&alice, &format!("registration={bob_root}")).await).is_empty());
    assert!(list_ids(&list(&admin, "payment_status=refunded").await).is_empty());
}

async fn payment_detail_permissions(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let (_event, ticket) = event_with_ticket(app, &olga).await;
    let reg = registration_of(app, &alice, &ticket).await;
    let payment = pay(app, &alice, &reg, None).await;
    payment.assert(201);
    let path = format!("/api/payments/{}/", payment.id());

    for token in [
        alice.as_str(),
        olga.as_str(),
        admin.as_str(),
        app.admin_token.as_str(),
    ] {
        let reply = app.get(&path, Some(token)).await;
        reply.assert(200);
        assert_eq!(reply.body, payment.body);
    }
    assert_forbidden(&app.get(&path, Some(&bob)).await);
    assert_forbidden(&app.get(&path, Some(&otto)).await);
    assert_unauthorized(&app.get(&path, None).await);
    assert_not_found(
        &app.get(
            &format!("/api/payments/{}/", uuid::Uuid::new_v4()),
            Some(&alice),
        )
        .await,
    );
    assert_not_found(&app.get("/api/payments/not-a-uuid/", app.admin()).await);
    app.get(&format!("/api/payments/{}", payment.id()), Some(&alice))
        .await
        .assert(200);
}

async fn payment_status_moves(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_event, ticket) = event_with_ticket(app, &olga).await;
    let reg = registration_of(app, &alice, &ticket).await;

    let new_payment = |status: &'static str| {
        let reg = reg.clone();
        async move {
            let reply = pay(app, &app.admin_token, &reg, Some(status)).await;
            reply.assert(201);
            format!("/api/payments/{}/", reply.id())
        }
    };
    let set = |path: &str, token: &str, status: &str| {
        let path = path.to_owned();
        let token = token.to_owned();
        let body = json!({ "payment_status": status });
        async move { app.patch(&path, Some(&token), body).await }
    };

    // Only those who manage the event may update (its organizer: API.md
    // §8.1, tests/api/paying.rs).
    let p = new_payment("pending").await;
    let (_, oscar) = app.user_in("oscar", "organizer").await;
    assert_forbidden(&set(&p, &alice, "completed").await);
    assert_forbidden(&set(&p, &oscar, "completed").await);
    let _ = &olga;
    assert_unauthorized(
        &app.patch(&p, None, json!({ "payment_status": "failed" }))
            .await,
    );
    assert_forbidden(
        &app.put(&p, Some(&alice), payment_body(&reg, Some("completed")))
            .await,
    );
    let unchanged = app.get(&p, app.admin()).await;
    assert_eq!(unchanged.body["payment_status"], "pending");
    assert_eq!(unchanged.body["paid_at"], Value::Null);

    // pending → pending, → failed, failed → failed, → pending, → completed, → refunded.
    for (token, to) in [
        (admin.as_str(), "pending"),
        (app.admin_token.as_str(), "failed"),
        (admin.as_str(), "failed"),
        (admin.as_str(), "PENDING"),
    ] {
        let reply = set(&p, token, to).await;
        reply.assert(200);
        assert_eq!(sorted_keys(&reply.body), PAYMENT_FIELDS);
        assert_eq!(reply.body["payment_status"], to.to_lowercase());
        assert_eq!(reply.body["paid_at"], Value::Null, "not completed: {to}");
    }
    let done = set(&p, &admin, "completed").await;
    done.assert(200);
    assert_eq!(done.body["payment_status"], "completed");
    assert!(
        is_utc_z(&done.body["paid_at"]),
        "paid_at: {}",
        done.body["paid_at"]
    );
    let again = set(&p, &admin, "completed").await;
    again.assert(200);
    assert_eq!(again.body["payment_status"], "completed");
    // Disallowed from completed: back to pending, or failed.
    for to in ["pending", "failed"] {
        assert_field_error(&set(&p, &admin, to).await, "payment_status");
    }
    let read = app.get(&p, app.admin()).await;
    assert_eq!(read.body["payment_status"], "completed");
    assert_eq!(read.body["paid_at"], done.body["paid_at"]);
    // completed → refunded (PUT with the full body), then refunded → refunded.
    let refunded = app
        .put(&p, Some(&admin), payment_body(&reg, Some("refunded")))
        .await;
    refunded.assert(200);
    assert_eq!(refunded.body["payment_status"], "refunded");
    set(&p, &admin, "refunded").await.assert(200);
    for to in ["completed", "pending", "failed"] {
        assert_field_error(&set(&p, &admin, to).await, "payment_status");
    }
    assert_eq!(
        app.get(&p, app.admin()).await.body["payment_status"],
        "refunded"
    );

    // failed → completed is refused; unknown statuses too.
    let f = new_payment("failed").await;
    assert_field_error(&set(&f, &admin, "completed").await, "payment_status");
    assert_field_error(&set(&f, &admin, "refunded").await, "payment_status");
    assert_field_error(&set(&f, &admin, "bogus").await, "payment_status");
    // pending → refunded is refused.
    let q = new_payment("pending").await;
    assert_field_error(&set(&q, &admin, "refunded").await, "payment_status");
    assert_eq!(
        app.get(&f, app.admin()).await.body["payment_status"],
        "failed"
    );
    assert_eq!(
        app.get(&q, app.admin()).await.body["payment_status"],
        "pending"
    );

    // Many completed payments for one registration at once: exactly one.
    let (_bob_id, bob) = app.user("bob").await;
    let bob_reg = registration_of(app, &bob, &ticket).await;
    let replies = futures::future::join_all(
        (0..6).map(|_| pay(app, &app.admin_token, &bob_reg, Some("completed"))),
    )
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "statuses: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "statuses: {statuses:?}"
    );
    assert_eq!(
        payment_count(
            app,
            &format!("registration={bob_reg}&payment_status=completed")
        )
        .await,
        1
    );

    // Completing a second payment of a registration that has one → 409.
    let first = set(&q, &app.admin_token, "completed").await;
    first.assert(200);
    let r = new_payment("pending").await;
    let second = set(&r, &app.admin_token, "completed").await;
    second.assert(409);
    assert!(second.body["detail"].is_string(), "body: {}", second.body);
    assert_eq!(
        app.get(&r, app.admin()).await.body["payment_status"],
        "pending"
    );
}

async fn deleting_payments(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_event, ticket) = event_with_ticket(app, &olga).await;
    let reg = registration_of(app, &alice, &ticket).await;
    let first = pay(app, &alice, &reg, None).await;
    first.assert(201);
    let second = pay(app, &alice, &reg, None).await;
    second.assert(201);
    let path = format!("/api/payments/{}/", first.id());

    assert_forbidden(&app.delete(&path, Some(&alice)).await);
    assert_forbidden(&app.delete(&path, Some(&olga)).await);
    assert_unauthorized(&app.delete(&path, None).await);
    assert_eq!(payment_count(app, "").await, 2);

    let deleted = app.delete(&path, Some(&admin)).await;
    deleted.assert(204);
    assert_eq!(deleted.body, Value::Null);
    assert_not_found(&app.get(&path, app.admin()).await);
    assert_not_found(&app.delete(&path, Some(&admin)).await);
    app.delete(&format!("/api/payments/{}", second.id()), app.admin())
        .await
        .assert(204);
    assert_eq!(payment_count(app, "").await, 0);
    // The registration stays.
    app.get(&format!("/api/registrations/{reg}/"), Some(&alice))
        .await
        .assert(200);
}
