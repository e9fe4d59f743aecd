//! `/api/tickets/`: public reads, money, who manages an event's tickets,
//! validation, the quota/sold rule and cascades on delete.

use serde_json::{Value, json};

use crate::helpers::{
    Reply, TestApp, assert_field_error, assert_forbidden, assert_not_found, assert_unauthorized,
    sorted_keys,
};

crate::backend_tests!(
    tickets_are_public_with_the_contract_representation,
    ticket_list_filters_and_ordering,
    who_may_create_tickets,
    invalid_ticket_bodies_write_nothing,
    who_may_update_tickets_and_quota_never_below_sold,
    deleting_a_ticket_removes_its_registrations_and_payments,
    available_honours_the_event_capacity,
    several_ordering_fields,
);

/// The Django service's nine fields, and the box office's four (API.md §9).
const TICKET_FIELDS: [&str; 13] = [
    "available",
    "event",
    "hidden",
    "id",
    "name",
    "payment_window_minutes",
    "price",
    "quota",
    "sales_end",
    "sales_start",
    "sold",
    "waitlist",
    "waitlist_offer_hours",
];

/// A ticket body with fixed dates and the given price.
fn priced(event_id: &str, name: &str, price: Value, sales_start: &str) -> Value {
    json!({
        "event_id": event_id,
        "name": name,
        "price": price,
        "sales_start": sales_start,
        "sales_end": "2030-12-31T23:59:00Z",
        "quota": 100,
    })
}

async fn ticket_count(app: &TestApp, event_id: &str) -> i64 {
    let list = app
        .get(&format!("/api/tickets/?event={event_id}"), None)
        .await;
    list.assert(200);
    list.body["count"].as_i64().expect("count")
}

async fn ticket(app: &TestApp, id: &str) -> Value {
    let reply = app.get(&format!("/api/tickets/{id}/"), None).await;
    reply.assert(200);
    reply.body
}

async fn tickets_are_public_with_the_contract_representation(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Concert", 500).await;
    let created = app
        .post(
            "/api/tickets/",
            app.admin(),
            priced(
                &event,
                "Regular",
                json!(150000.5),
                "2025-08-01T09:00:00+07:00",
            ),
        )
        .await;
    created.assert(201);
    assert_eq!(sorted_keys(&created.body), TICKET_FIELDS);
    let id = created.id();
    assert!(uuid::Uuid::parse_str(&id).is_ok());

    for path in [format!("/api/tickets/{id}/"), format!("/api/tickets/{id}")] {
        let t = app.get(&path, None).await;
        t.assert(200);
        assert_eq!(sorted_keys(&t.body), TICKET_FIELDS);
        assert_eq!(t.body["id"], id.as_str());
        assert_eq!(t.body["event"], event.as_str());
        assert_eq!(t.body["name"], "Regular");
        assert_eq!(t.body["price"], json!(150000.5));
        assert_eq!(t.body["sales_start"], "2025-08-01T02:00:00Z");
        assert_eq!(t.body["sales_end"], "2030-12-31T23:59:00Z");
        assert_eq!(t.body["quota"], 100);
        assert_eq!(t.body["sold"], 0);
        assert_eq!(t.body["available"], 100);
    }

    // Money: a JSON number out, as sent; numeric strings accepted.
    for (sent, shown) in [
        (json!(200000), json!(200000)),
        (json!(150000.5), json!(150000.5)),
        (json!("19.99"), json!(19.99)),
        (json!(0), json!(0)),
        (json!(0.1), json!(0.1)),
        (json!("75000.50"), json!(75000.5)),
    ] {
        let reply = app
            .post(
                "/api/tickets/",
                app.admin(),
                priced(&event, "Priced", sent.clone(), "2025-08-01 09:00"),
            )
            .await;
        reply.assert(201);
        assert_eq!(reply.body["price"], shown, "price sent as {sent}");
        assert_eq!(reply.body["sales_start"], "2025-08-01T09:00:00Z");
        let read = ticket(app, &reply.id()).await;
        assert_eq!(read["price"], shown, "price sent as {sent}, read back");
    }

    // The list, anonymously.
    let list = app.get("/api/tickets/", None).await;
    list.assert(200);
    let mut keys = sorted_keys(&list.body);
    keys.retain(|k| k != "tickets");
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
    assert_eq!(list.body["count"], 7);
    let items = list.body["tickets"].as_array().expect("tickets array");
    assert_eq!(items.len(), 7);
    assert!(items.iter().all(|t| sorted_keys(t) == TICKET_FIELDS));

    assert_not_found(
        &app.get(&format!("/api/tickets/{}/", uuid::Uuid::new_v4()), None)
            .await,
    );
    assert_not_found(&app.get("/api/tickets/not-a-uuid/", None).await);
}

fn names(reply: &Reply) -> Vec<String> {
    reply.assert(200);
    reply.body["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("no tickets in {}", reply.body))
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn ticket_list_filters_and_ordering(app: &TestApp) {
    let first = app.create_event(&app.admin_token, "First", 500).await;
    let second = app.create_event(&app.admin_token, "Second", 500).await;
    for (event, name, price, start) in [
        (&first, "Gold", json!(300000), "2025-07-03T00:00:00Z"),
        (&first, "Bronze", json!(50000.25), "2025-07-01T00:00:00Z"),
        (&first, "Silver", json!(100000), "2025-07-02T00:00:00Z"),
        (&second, "Early", json!(75000), "2025-06-01T00:00:00Z"),
    ] {
        app.post(
            "/api/tickets/",
            app.admin(),
            priced(event, name, price, start),
        )
        .await
        .assert(201);
    }
    let get = |query: &str| {
        let path = format!("/api/tickets/?{query}");
        async move { app.get(&path, None).await }
    };

    let of_first = get(&format!("event={first}")).await;
    assert_eq!(of_first.body["count"], 3);
    assert!(
        of_first.body["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .all(|t| t["event"] == first.as_str())
    );
    assert_eq!(names(&get(&format!("event={second}")).await), ["Early"]);
    assert!(names(&get(&format!("event={}", uuid::Uuid::new_v4())).await).is_empty());

    for (ordering, expected) in [
        ("price", ["Bronze", "Silver", "Gold"]),
        ("-price", ["Gold", "Silver", "Bronze"]),
        ("name", ["Bronze", "Gold", "Silver"]),
        ("-name", ["Silver", "Gold", "Bronze"]),
        ("sales_start", ["Bronze", "Silver", "Gold"]),
        ("-sales_start", ["Gold", "Silver", "Bronze"]),
    ] {
        assert_eq!(
            names(&get(&format!("event={first}&ordering={ordering}")).await),
            expected,
            "ordering={ordering}"
        );
    }
    assert_eq!(
        names(&get("ordering=price").await),
        ["Bronze", "Early", "Silver", "Gold"]
    );
    // Pagination of the ticket list.
    let paged = get("ordering=name&page_size=3&page=9").await;
    assert_eq!(names(&paged), ["Silver"]);
    assert_eq!(paged.body["page"], 2);
    assert_eq!(paged.body["total_pages"], 2);
}

async fn who_may_create_tickets(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let event = app.create_event(&olga, "Olga's", 100).await;

    for token in [olga.as_str(), admin.as_str(), app.admin_token.as_str()] {
        let reply = app
            .post(
                "/api/tickets/",
                Some(token),
                TestApp::ticket_body(&event, "Regular", 10),
            )
            .await;
        reply.assert(201);
        assert_eq!(reply.body["event"], event.as_str());
    }
    assert_eq!(ticket_count(app, &event).await, 3);

    assert_forbidden(
        &app.post(
            "/api/tickets/",
            Some(&otto),
            TestApp::ticket_body(&event, "Otto's", 10),
        )
        .await,
    );
    assert_forbidden(
        &app.post(
            "/api/tickets/",
            Some(&alice),
            TestApp::ticket_body(&event, "Alice's", 10),
        )
        .await,
    );
    assert_unauthorized(
        &app.post(
            "/api/tickets/",
            None,
            TestApp::ticket_body(&event, "Anon", 10),
        )
        .await,
    );
    assert_eq!(ticket_count(app, &event).await, 3);

    // Unknown or malformed event → 400 on event_id.
    for bad in [json!(uuid::Uuid::new_v4().to_string()), json!("not-a-uuid")] {
        let mut body = TestApp::ticket_body("placeholder", "Ghost", 10);
        body["event_id"] = bad;
        assert_field_error(
            &app.post("/api/tickets/", app.admin(), body.clone()).await,
            "event_id",
        );
        assert_field_error(
            &app.post("/api/tickets/", Some(&olga), body).await,
            "event_id",
        );
    }
    let all = app.get("/api/tickets/", None).await;
    assert_eq!(all.body["count"], 3, "nothing written");

    // The unlisted fields `sold` and `id` are ignored.
    let mut body = TestApp::ticket_body(&event, "Sneaky", 10);
    body["sold"] = json!(10);
    body["available"] = json!(0);
    body["id"] = json!(uuid::Uuid::new_v4().to_string());
    let reply = app.post("/api/tickets/", Some(&olga), body.clone()).await;
    reply.assert(201);
    assert_eq!(reply.body["sold"], 0);
    assert_eq!(reply.body["available"], 10);
    assert_ne!(reply.body["id"], body["id"]);
}

async fn invalid_ticket_bodies_write_nothing(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Strict", 100).await;
    let valid = || TestApp::ticket_body(&event, "Regular", 10);

    for field in [
        "event_id",
        "name",
        "price",
        "sales_start",
        "sales_end",
        "quota",
    ] {
        let mut body = valid();
        body.as_object_mut().expect("object").remove(field);
        assert_field_error(&app.post("/api/tickets/", app.admin(), body).await, field);
    }
    for (field, value) in [
        ("price", json!(-1)),
        ("price", json!(-0.01)),
        ("price", json!("-5")),
        ("price", json!(10.123)),
        ("price", json!("10.123")),
        ("price", json!("abc")),
        ("quota", json!(-1)),
        ("quota", json!("abc")),
        ("quota", json!(2.5)),
        ("name", json!("n".repeat(101))),
        ("sales_start", json!("08/08/2025")),
        ("sales_end", json!("soon")),
    ] {
        let mut body = valid();
        body[field] = value.clone();
        let reply = app.post("/api/tickets/", app.admin(), body).await;
        assert_field_error(&reply, field);
        assert!(reply.body.get("id").is_none(), "{field}={value}");
    }

    // sales_end before sales_start → 400, on sales_end or as a cross-field error.
    let mut body = valid();
    body["sales_start"] = json!("2030-01-02T00:00:00Z");
    body["sales_end"] = json!("2030-01-01T00:00:00Z");
    let reply = app.post("/api/tickets/", app.admin(), body).await;
    reply.assert(400);
    let key = if reply.body.get("sales_end").is_some() {
        "sales_end"
    } else {
        "non_field_errors"
    };
    assert_field_error(&reply, key);
    assert_eq!(ticket_count(app, &event).await, 0, "nothing was written");

    // Boundaries that are valid: end == start, price with 2 decimals, quota 0,
    // name of 100 characters.
    let mut body = valid();
    body["sales_start"] = json!("2030-01-01T00:00:00Z");
    body["sales_end"] = json!("2030-01-01T00:00:00Z");
    body["price"] = json!(10.12);
    body["quota"] = json!(0);
    body["name"] = json!("n".repeat(100));
    let reply = app.post("/api/tickets/", app.admin(), body).await;
    reply.assert(201);
    assert_eq!(reply.body["price"], json!(10.12));
    assert_eq!(reply.body["quota"], 0);
    assert_eq!(reply.body["available"], 0);
    assert_eq!(ticket_count(app, &event).await, 1);
}

async fn who_may_update_tickets_and_quota_never_below_sold(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let event = app.create_event(&olga, "Olga's", 100).await;
    let id = app.create_ticket(&olga, &event, 10).await;
    let path = format!("/api/tickets/{id}/");

    // The organiser: PUT (all fields), then PATCH.
    let mut full = TestApp::ticket_body(&event, "Renamed", 8);
    full["price"] = json!(200000);
    let put = app.put(&path, Some(&olga), full).await;
    put.assert(200);
    assert_eq!(sorted_keys(&put.body), TICKET_FIELDS);
    assert_eq!(put.body["name"], "Renamed");
    assert_eq!(put.body["price"], json!(200000));
    assert_eq!(put.body["quota"], 8);
    assert_eq!(put.body["available"], 8);
    let patched = app
        .patch(&path, Some(&olga), json!({ "price": "99.95" }))
        .await;
    patched.assert(200);
    assert_eq!(patched.body["price"], json!(99.95));
    assert_eq!(patched.body["name"], "Renamed", "PATCH is partial");
    // An admin and the superuser too.
    app.patch(&path, Some(&admin), json!({ "name": "By admin" }))
        .await
        .assert(200);
    let by_root = app.patch(&path, app.admin(), json!({ "quota": 9 })).await;
    by_root.assert(200);
    assert_eq!(by_root.body["quota"], 9);
    assert_eq!(ticket(app, &id).await["quota"], 9, "read after write");

    // Others are refused; nothing changes.
    for token in [otto.as_str(), alice.as_str()] {
        assert_forbidden(&app.patch(&path, Some(token), json!({ "quota": 1 })).await);
        assert_forbidden(&app.patch(&path, Some(token), json!({ "quota": -1 })).await);
        assert_forbidden(
            &app.put(
                &path,
                Some(token),
                TestApp::ticket_body(&event, "Hijacked", 1),
            )
            .await,
        );
    }
    assert_unauthorized(&app.patch(&path, None, json!({ "quota": 1 })).await);
    assert_not_found(
        &app.patch(
            &format!("/api/tickets/{}/", uuid::Uuid::new_v4()),
            Some(&olga),
            json!({ "quota": 1 }),
        )
        .await,
    );
    let t = ticket(app, &id).await;
    assert_eq!(t["quota"], 9);
    assert_eq!(t["name"], "By admin");

    // Validation on update.
    assert_field_error(
        &app.patch(&path, Some(&olga), json!({ "price": 1.234 }))
            .await,
        "price",
    );
    assert_field_error(
        &app.patch(&path, Some(&olga), json!({ "quota": -1 })).await,
        "quota",
    );
    let reply = app
        .patch(
            &path,
            Some(&olga),
            json!({ "sales_end": "2000-01-01T00:00:00Z" }),
        )
        .await;
    reply.assert(400);
    assert!(
        reply.body.get("sales_end").is_some() || reply.body.get("non_field_errors").is_some(),
        "body: {}",
        reply.body
    );
    assert_eq!(ticket(app, &id).await["price"], json!(99.95));

    // Warm the list cache; registrations must show in it at once.
    let listed = app.get(&format!("/api/tickets/?event={event}"), None).await;
    assert_eq!(listed.body["tickets"][0]["sold"], 0);
    // Two registrations: sold/available follow; quota below sold → 409.
    app.register(&alice, &id).await.assert(201);
    app.register(&bob, &id).await.assert(201);
    let t = ticket(app, &id).await;
    assert_eq!(t["sold"], 2);
    assert_eq!(t["available"], 7);
    let listed = app.get(&format!("/api/tickets/?event={event}"), None).await;
    assert_eq!(listed.body["tickets"][0]["sold"], 2, "list not stale");
    assert_eq!(listed.body["tickets"][0]["available"], 7);
    let refused = app.patch(&path, Some(&olga), json!({ "quota": 1 })).await;
    refused.assert(409);
    assert!(refused.body["detail"].is_string(), "body: {}", refused.body);
    let refused = app
        .put(&path, app.admin(), TestApp::ticket_body(&event, "Small", 0))
        .await;
    refused.assert(409);
    let t = ticket(app, &id).await;
    assert_eq!(t["quota"], 9, "a refused update changes nothing");
    assert_eq!(t["name"], "By admin");
    // Exactly `sold` is fine.
    let exact = app.patch(&path, Some(&olga), json!({ "quota": 2 })).await;
    exact.assert(200);
    assert_eq!(exact.body["quota"], 2);
    assert_eq!(exact.body["sold"], 2);
    assert_eq!(exact.body["available"], 0);
}

async fn deleting_a_ticket_removes_its_registrations_and_payments(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let event = app.create_event(&olga, "Olga's", 100).await;
    let doomed = app.create_ticket(&olga, &event, 10).await;
    let kept = app.create_ticket(&olga, &event, 10).await;
    let path = format!("/api/tickets/{doomed}/");

    let alice_reg = app.register(&alice, &doomed).await;
    alice_reg.assert(201);
    let bob_reg = app.register(&bob, &doomed).await;
    bob_reg.assert(201);
    let bob_kept = app.register(&bob, &kept).await;
    bob_kept.assert(201);
    let payment = app
        .post(
            "/api/payments/",
            Some(&alice),
            json!({
                "registration_id": alice_reg.id(),
                "payment_method": "QRIS",
                "amount_paid": 150000.5,
            }),
        )
        .await;
    payment.assert(201);

    assert_forbidden(&app.delete(&path, Some(&otto)).await);
    assert_forbidden(&app.delete(&path, Some(&alice)).await);
    assert_unauthorized(&app.delete(&path, None).await);
    assert_eq!(ticket(app, &doomed).await["sold"], 2, "still there");

    let deleted = app.delete(&path, Some(&olga)).await;
    deleted.assert(204);
    assert_eq!(deleted.body, Value::Null);
    assert_not_found(&app.get(&path, None).await);
    for gone in [
        format!("/api/registrations/{}/", alice_reg.id()),
        format!("/api/registrations/{}/", bob_reg.id()),
        format!("/api/payments/{}/", payment.id()),
    ] {
        assert_not_found(&app.get(&gone, app.admin()).await);
    }
    let regs = app
        .get(&format!("/api/registrations/?event={event}"), app.admin())
        .await;
    regs.assert(200);
    assert_eq!(
        regs.body["count"], 1,
        "the other ticket's registration stays"
    );
    let payments = app.get("/api/payments/", app.admin()).await;
    payments.assert(200);
    assert_eq!(payments.body["count"], 0);
    assert_eq!(ticket(app, &kept).await["sold"], 1);
    assert_eq!(ticket_count(app, &event).await, 1);

    // An admin deletes a ticket of someone else's event.
    app.delete(&format!("/api/tickets/{kept}"), Some(&admin))
        .await
        .assert(204);
    assert_eq!(ticket_count(app, &event).await, 0);
    assert_not_found(
        &app.delete(&format!("/api/tickets/{kept}/"), Some(&admin))
            .await,
    );
}

/// `available` is the smaller of the ticket's room and its event's room
/// (API.md §4), in lists and details, cached or not, and follows a change of
/// the event's quota at once.
async fn available_honours_the_event_capacity(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Small room", 1).await;
    let first = app.create_ticket(&app.admin_token, &event, 5).await;
    let second = app.create_ticket(&app.admin_token, &event, 5).await;
    let available = |reply: &crate::helpers::Reply| reply.body["available"].clone();
    // Cached before the registration: the write must make it stale.
    let before = app.get(&format!("/api/tickets/{second}/"), None).await;
    assert_eq!(available(&before), json!(1));
    let (_, token) = app.user("roomy").await;
    app.register(&token, &first).await.assert(201);
    for id in [&first, &second] {
        let detail = app.get(&format!("/api/tickets/{id}/"), None).await;
        detail.assert(200);
        assert_eq!(available(&detail), json!(0), "ticket {id}: {}", detail.body);
    }
    let list = app.get(&format!("/api/tickets/?event={event}"), None).await;
    list.assert(200);
    for ticket in list.body["tickets"].as_array().expect("tickets") {
        assert_eq!(ticket["available"], json!(0), "{ticket}");
    }
    let first_detail = app.get(&format!("/api/tickets/{first}/"), None).await;
    assert_eq!(first_detail.body["sold"], json!(1));
    // The next registration is refused, as `available` said.
    let (_, other) = app.user("roomless").await;
    let refused = app.register(&other, &second).await;
    refused.assert(409);
    assert_eq!(refused.body, json!({ "detail": "Sold out." }));
    // Raising the event's quota shows at once on its tickets.
    app.patch(
        &format!("/api/events/{event}/"),
        app.admin(),
        json!({ "quota": 3 }),
    )
    .await
    .assert(200);
    let after = app.get(&format!("/api/tickets/{second}/"), None).await;
    assert_eq!(available(&after), json!(2), "{}", after.body);
}

/// DRF's `OrderingFilter` takes several fields, comma-separated.
async fn several_ordering_fields(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Ordered", 100).await;
    for (name, price) in [("B", 10), ("A", 10), ("C", 5)] {
        let mut body = TestApp::ticket_body(&event, name, 10);
        body["price"] = json!(price);
        app.post("/api/tickets/", app.admin(), body)
            .await
            .assert(201);
    }
    let names = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let reply = app
        .get(
            &format!("/api/tickets/?event={event}&ordering=-price,name"),
            None,
        )
        .await;
    reply.assert(200);
    assert_eq!(names(&reply), ["A", "B", "C"]);
    let reply = app
        .get(
            &format!("/api/tickets/?event={event}&ordering=price,-name"),
            None,
        )
        .await;
    assert_eq!(names(&reply), ["C", "B", "A"]);
    let bad = app
        .get(
            &format!("/api/tickets/?event={event}&ordering=price,size"),
            None,
        )
        .await;
    assert_field_error(&bad, "ordering");
    let message = bad.body["ordering"][0].as_str().unwrap_or_default();
    assert!(
        message.contains("size") && message.contains("price, sales_start, name"),
        "names the bad term and the choices: {message}"
    );
}
