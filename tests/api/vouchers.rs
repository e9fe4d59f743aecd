//! Vouchers and hidden tickets (API.md §9): managed by those who manage the
//! event; a registration with a code records the voucher and what it owes;
//! unknown, used-up, expired or not-applicable codes are a 400 on
//! `voucher` with nothing written; `uses` never passes `max_uses` and an
//! expired or deleted registration gives its use back; hidden tickets are
//! not listed and need a voucher that unlocks them.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_field_error};

crate::backend_tests!(
    managers_create_and_change_vouchers_and_others_are_refused,
    a_voucher_discounts_and_counts_its_uses,
    bad_codes_are_refused_on_the_voucher_field_and_write_nothing,
    hidden_tickets_need_a_voucher_that_unlocks_them,
    an_expired_hold_gives_its_voucher_use_back,
);

async fn voucher(app: &TestApp, token: &str, body: Value) -> crate::helpers::Reply {
    app.post("/api/vouchers/", Some(token), body).await
}

async fn uses(app: &TestApp, id: &str) -> Value {
    let v = app.get(&format!("/api/vouchers/{id}/"), app.admin()).await;
    v.assert(200);
    v.body["uses"].clone()
}

async fn count(app: &TestApp, path: &str) -> Value {
    let list = app.get(path, app.admin()).await;
    list.assert(200);
    list.body["count"].clone()
}

async fn managers_create_and_change_vouchers_and_others_are_refused(app: &TestApp) {
    let (_, orga) = app.user_in("orga", "organizer").await;
    let (_, rival) = app.user_in("rival", "organizer").await;
    let (_, boss) = app.user_in("boss", "admin").await;
    let (_, guest) = app.user("guest").await;
    let event = app.create_event(&orga, "Jazz", 100).await;
    let ticket = app.create_ticket(&orga, &event, 10).await;

    // The organiser of the event, and an admin.
    let made = voucher(
        app,
        &orga,
        json!({"event": event, "code": "Speaker-2027", "tickets": [ticket], "discount_type": "percent", "discount_value": 100, "max_uses": 5}),
    )
    .await;
    made.assert(201);
    let mut keys: Vec<&String> = made.body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "code",
            "created_at",
            "discount_type",
            "discount_value",
            "event",
            "id",
            "max_uses",
            "tickets",
            "unlocks_hidden",
            "uses",
            "valid_until"
        ]
    );
    assert_eq!(made.body["uses"], 0);
    assert_eq!(made.body["tickets"], json!([ticket]));
    voucher(app, &boss, json!({"event": event, "code": "PRESS"}))
        .await
        .assert(201);
    // Another organiser, and a plain user: refused, nothing written.
    voucher(app, &rival, json!({"event": event, "code": "MINE"}))
        .await
        .assert(403);
    voucher(app, &guest, json!({"event": event, "code": "MINE"}))
        .await
        .assert(403);
    app.get("/api/vouchers/", Some(&guest)).await.assert(403);
    app.get(&format!("/api/vouchers/{}/", made.id()), Some(&rival))
        .await
        .assert(403);
    assert_eq!(
        count(app, &format!("/api/vouchers/?event={event}")).await,
        2
    );
    // Organisers list their events' vouchers only.
    let theirs = app.get("/api/vouchers/", Some(&rival)).await;
    theirs.assert(200);
    assert_eq!(theirs.body["count"], 0);
    let mine = app.get("/api/vouchers/", Some(&orga)).await;
    assert_eq!(mine.body["count"], 2);

    // Codes are unique per event, whatever their case.
    let again = voucher(app, &orga, json!({"event": event, "code": "speaker-2027"})).await;
    assert_field_error(&again, "code");
    // Changed by PATCH; the limit never below the uses.
    let path = format!("/api/vouchers/{}/", made.id());
    let changed = app
        .patch(
            &path,
            Some(&orga),
            json!({"max_uses": null, "valid_until": "2030-01-01T00:00:00Z"}),
        )
        .await;
    changed.assert(200);
    assert_eq!(changed.body["max_uses"], Value::Null);
    assert_eq!(changed.body["valid_until"], "2030-01-01T00:00:00Z");
    app.patch(&path, Some(&rival), json!({"max_uses": 1}))
        .await
        .assert(403);
    // Deleted by its manager; the log has all of it.
    app.delete(&path, Some(&orga)).await.assert(204);
    app.get(&path, Some(&orga)).await.assert(404);
    let log = app
        .get(&format!("/api/audit/?entity_id={}", made.id()), app.admin())
        .await;
    let actions: Vec<&str> = log.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        {
            let mut sorted = actions.clone();
            sorted.sort();
            sorted
        },
        ["voucher.created", "voucher.deleted", "voucher.updated"]
    );
}

async fn a_voucher_discounts_and_counts_its_uses(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Discounted", 100).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 10).await;
    let made = voucher(
        app,
        &app.admin_token,
        json!({"event": event, "code": "HALF", "discount_type": "fixed", "discount_value": 50000, "max_uses": 2}),
    )
    .await;
    made.assert(201);
    let (_, ayu) = app.user("ayu").await;
    let reply = app
        .post(
            "/api/registrations/",
            Some(&ayu),
            json!({"ticket_id": ticket, "voucher": "half"}),
        )
        .await;
    reply.assert(201);
    assert_eq!(reply.body["voucher"], made.id().as_str());
    assert_eq!(reply.body["amount_due"].as_f64(), Some(100000.5));
    assert_eq!(uses(app, &made.id()).await, 1);
    // Without a voucher: the price.
    let (_, bima) = app.user("bima").await;
    let plain = app.register(&bima, &ticket).await;
    plain.assert(201);
    assert_eq!(plain.body["voucher"], Value::Null);
    assert_eq!(plain.body["amount_due"].as_f64(), Some(150000.5));
    // The payments' amount due follows it: paying the discounted price is enough.
    let paid = app
        .post(
            "/api/payments/",
            Some(&ayu),
            json!({"registration_id": reply.id(), "payment_method": "bank transfer", "amount_paid": 100000.5}),
        )
        .await;
    paid.assert(201);
    app.patch(
        &format!("/api/payments/{}/", paid.id()),
        app.admin(),
        json!({"payment_status": "completed"}),
    )
    .await
    .assert(200);
    // A deleted registration gives its use back.
    let (_, citra) = app.user("citra").await;
    let second = app
        .post(
            "/api/registrations/",
            Some(&citra),
            json!({"ticket_id": ticket, "voucher": "HALF"}),
        )
        .await;
    second.assert(201);
    assert_eq!(uses(app, &made.id()).await, 2);
    app.delete(
        &format!("/api/registrations/{}/", second.id()),
        Some(&citra),
    )
    .await
    .assert(204);
    assert_eq!(uses(app, &made.id()).await, 1);
    // A 100 % voucher: nothing owed, confirmed at once even with a window.
    let mut body = TestApp::ticket_body(&event, "Windowed", 10);
    body["payment_window_minutes"] = json!(30);
    let windowed = app.post("/api/tickets/", app.admin(), body).await;
    windowed.assert(201);
    voucher(
        app,
        &app.admin_token,
        json!({"event": event, "code": "FREE", "discount_type": "percent", "discount_value": 100}),
    )
    .await
    .assert(201);
    let (_, dewi) = app.user("dewi").await;
    let free = app
        .post(
            "/api/registrations/",
            Some(&dewi),
            json!({"ticket_id": windowed.id(), "voucher": "free"}),
        )
        .await;
    free.assert(201);
    assert_eq!(free.body["amount_due"].as_f64(), Some(0.0));
    assert_eq!(free.body["status"], "confirmed");
    assert_eq!(free.body["hold_expires_at"], Value::Null);
}

async fn bad_codes_are_refused_on_the_voucher_field_and_write_nothing(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Strict", 100).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 10).await;
    let other = app.create_ticket(&app.admin_token, &event, 10).await;
    let admin = app.admin_token.clone();
    voucher(
        app,
        &admin,
        json!({"event": event, "code": "ONCE", "max_uses": 1}),
    )
    .await
    .assert(201);
    voucher(
        app,
        &admin,
        json!({"event": event, "code": "OLD", "valid_until": "2020-01-01T00:00:00Z"}),
    )
    .await
    .assert(201);
    voucher(
        app,
        &admin,
        json!({"event": event, "code": "OTHER", "tickets": [other]}),
    )
    .await
    .assert(201);
    let (_, first) = app.user("first").await;
    app.post(
        "/api/registrations/",
        Some(&first),
        json!({"ticket_id": ticket, "voucher": "ONCE"}),
    )
    .await
    .assert(201);
    let (_, late) = app.user("late").await;
    for (code, says) in [
        ("NOPE", "No such voucher"),
        ("once", "used up"),
        ("OLD", "expired"),
        ("OTHER", "not for this ticket"),
    ] {
        let refused = app
            .post(
                "/api/registrations/",
                Some(&late),
                json!({"ticket_id": ticket, "voucher": code}),
            )
            .await;
        assert_field_error(&refused, "voucher");
        assert!(
            refused.body["voucher"][0]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{}",
            refused.body
        );
    }
    assert_eq!(
        count(app, &format!("/api/registrations/?event={event}")).await,
        1,
        "nothing written"
    );
    // Bad voucher fields, each named; nothing written.
    for (body, field) in [
        (json!({"event": event, "code": "has space"}), "code"),
        (
            json!({"event": event, "code": "X", "discount_type": "half"}),
            "discount_type",
        ),
        (
            json!({"event": event, "code": "X", "discount_type": "percent", "discount_value": 150}),
            "discount_value",
        ),
        (
            json!({"event": event, "code": "X", "max_uses": 0}),
            "max_uses",
        ),
        (
            json!({"event": event, "code": "X", "tickets": ["00000000-0000-0000-0000-000000000000"]}),
            "tickets",
        ),
        (json!({"code": "X"}), "event"),
    ] {
        assert_field_error(&voucher(app, &admin, body).await, field);
    }
    assert_eq!(
        count(app, &format!("/api/vouchers/?event={event}")).await,
        3
    );
}

async fn hidden_tickets_need_a_voucher_that_unlocks_them(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Backstage", 100).await;
    let mut body = TestApp::ticket_body(&event, "Crew", 5);
    body["hidden"] = json!(true);
    let hidden = app.post("/api/tickets/", app.admin(), body).await;
    hidden.assert(201);
    assert_eq!(hidden.body["hidden"], true);
    let public = app.create_ticket(&app.admin_token, &event, 5).await;
    // Not listed publicly.
    let listed = app.get(&format!("/api/tickets/?event={event}"), None).await;
    assert_eq!(listed.body["count"], 1, "{}", listed.body);
    assert_eq!(listed.body["tickets"][0]["id"], public.as_str());
    let admin = app.admin_token.clone();
    voucher(app, &admin, json!({"event": event, "code": "DISCOUNT", "discount_type": "percent", "discount_value": 10}))
        .await
        .assert(201);
    voucher(app, &admin, json!({"event": event, "code": "CREW", "unlocks_hidden": true, "discount_type": "percent", "discount_value": 100}))
        .await
        .assert(201);
    let (_, eko) = app.user("eko").await;
    let refused = app.register(&eko, &hidden.id()).await;
    assert_field_error(&refused, "voucher");
    let wrong = app
        .post(
            "/api/registrations/",
            Some(&eko),
            json!({"ticket_id": hidden.id(), "voucher": "DISCOUNT"}),
        )
        .await;
    assert_field_error(&wrong, "voucher");
    let crew = app
        .post(
            "/api/registrations/",
            Some(&eko),
            json!({"ticket_id": hidden.id(), "voucher": "crew"}),
        )
        .await;
    crew.assert(201);
    assert_eq!(crew.body["amount_due"].as_f64(), Some(0.0));
    // The box office registers anyone on it, without a voucher.
    let (fajar_id, _) = app.user("fajar").await;
    app.post(
        "/api/registrations/",
        app.admin(),
        json!({"ticket_id": hidden.id(), "user_id": fajar_id}),
    )
    .await
    .assert(201);
}

async fn an_expired_hold_gives_its_voucher_use_back(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Held", 100).await;
    let mut body = TestApp::ticket_body(&event, "Windowed", 10);
    body["payment_window_minutes"] = json!(10);
    let ticket = app.post("/api/tickets/", app.admin(), body).await;
    ticket.assert(201);
    let made = voucher(
        app,
        &app.admin_token,
        json!({"event": event, "code": "TEN", "discount_type": "percent", "discount_value": 10, "max_uses": 1}),
    )
    .await;
    made.assert(201);
    let (_, gita) = app.user("gita").await;
    let held = app
        .post(
            "/api/registrations/",
            Some(&gita),
            json!({"ticket_id": ticket.id(), "voucher": "TEN"}),
        )
        .await;
    held.assert(201);
    assert_eq!(held.body["status"], "awaiting_payment");
    assert_eq!(uses(app, &made.id()).await, 1);
    app.state.clock.advance(chrono::Duration::minutes(11));
    dicoevent::jobs::run_pass(&app.state, "test-worker")
        .await
        .expect("a pass");
    assert_eq!(uses(app, &made.id()).await, 0);
    // Someone else may use it now.
    let (_, hadi) = app.user("hadi").await;
    app.post(
        "/api/registrations/",
        Some(&hadi),
        json!({"ticket_id": ticket.id(), "voucher": "TEN"}),
    )
    .await
    .assert(201);
    assert_eq!(uses(app, &made.id()).await, 1);
}

/// 50 people at once on two server processes (PostgreSQL) with a voucher
/// of `max_uses` 10: exactly ten get it, the rest a 400 on `voucher`, and
/// `uses` equals the registrations holding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voucher_is_never_used_past_its_limit_on_two_servers() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let sibling = app.spawn_sibling().await;
    let event = app.create_event(&app.admin_token, "Rush", 100).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 100).await;
    let made = voucher(
        &app,
        &app.admin_token.clone(),
        json!({"event": event, "code": "TEN", "discount_type": "percent", "discount_value": 50, "max_uses": 10}),
    )
    .await;
    made.assert(201);
    let people = app.many_users("rusher", 50).await;
    let answers = futures::future::join_all(people.iter().enumerate().map(|(i, (_, token))| {
        let server = if i % 2 == 0 { &app } else { &sibling };
        let ticket = ticket.clone();
        async move {
            server
                .post(
                    "/api/registrations/",
                    Some(token),
                    json!({"ticket_id": ticket, "voucher": "ten"}),
                )
                .await
        }
    }))
    .await;
    let won = answers.iter().filter(|r| r.status == 201).count();
    for reply in answers.iter().filter(|r| r.status != 201) {
        assert_field_error(reply, "voucher");
    }
    assert_eq!(won, 10);
    assert_eq!(uses(&app, &made.id()).await, 10);
    let holding = app
        .state
        .db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT count(*) AS n FROM registrations WHERE voucher_id = '{}'",
                made.id()
            ),
        ))
        .await
        .expect("query")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(holding, 10);
    sibling.cleanup().await;
    app.cleanup().await;
}
