//! `/api/registrations/`: self-registration, box office, sales windows,
//! capacity, scoping, moves and cancellation.

use serde_json::{Value, json};

use crate::helpers::{
    Reply, TestApp, assert_field_error, assert_forbidden, assert_not_found, assert_unauthorized,
    sorted_keys,
};

crate::backend_tests!(
    self_registration_and_its_representation,
    registering_someone_else,
    sales_window_and_event_state_bind_self_registration,
    capacity_of_tickets_and_events,
    registration_list_is_scoped_and_filtered,
    registration_detail_permissions,
    moving_registrations,
    cancelling_registrations,
);

/// The Django service's five fields, and the box office's four (API.md §9).
const REGISTRATION_FIELDS: [&str; 9] = [
    "amount_due",
    "event",
    "hold_expires_at",
    "id",
    "registered_at",
    "status",
    "ticket",
    "user",
    "voucher",
];

/// A 409 with a non-empty `detail` message.
#[track_caller]
fn conflict(reply: &Reply) {
    reply.assert(409);
    assert!(
        reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "body: {}",
        reply.body
    );
    assert_eq!(
        reply.body.as_object().map(|o| o.len()),
        Some(1),
        "only detail: {}",
        reply.body
    );
}

#[track_caller]
fn sold_out(reply: &Reply) {
    reply.assert(409);
    assert_eq!(reply.body, json!({ "detail": "Sold out." }));
}

async fn sold(app: &TestApp, ticket: &str) -> i64 {
    let t = app.get(&format!("/api/tickets/{ticket}/"), None).await;
    t.assert(200);
    let sold = t.body["sold"].as_i64().expect("sold");
    let available = t.body["available"].as_i64().expect("available");
    // Never more than the ticket's own room (its event's room may be less).
    assert!(
        (0..=t.body["quota"].as_i64().unwrap_or(0) - sold).contains(&available),
        "available within 0..=quota - sold: {}",
        t.body
    );
    sold
}

async fn registration_count(app: &TestApp) -> i64 {
    let list = app.get("/api/registrations/", app.admin()).await;
    list.assert(200);
    list.body["count"].as_i64().expect("count")
}

async fn register_for(app: &TestApp, token: &str, ticket: &str, user: &str) -> Reply {
    app.post(
        "/api/registrations/",
        Some(token),
        json!({ "ticket_id": ticket, "user_id": user }),
    )
    .await
}

fn now_plus(hours: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339()
}

/// An event (by the given token) with the given status and start in `hours`.
async fn event_at(app: &TestApp, token: &str, status: &str, start_in_hours: i64) -> String {
    let reply = app
        .post(
            "/api/events/",
            Some(token),
            json!({
                "name": format!("{status} event"),
                "description": "d",
                "location": "l",
                "start_time": now_plus(start_in_hours),
                "end_time": now_plus(start_in_hours + 3),
                "quota": 100,
                "category": "Tech",
                "status": status,
            }),
        )
        .await;
    reply.assert(201);
    reply.id()
}

/// A ticket whose sales window runs from `from` to `to` hours from now.
async fn ticket_window(app: &TestApp, token: &str, event: &str, from: i64, to: i64) -> String {
    let reply = app
        .post(
            "/api/tickets/",
            Some(token),
            json!({
                "event_id": event,
                "name": "Windowed",
                "price": 10,
                "sales_start": now_plus(from),
                "sales_end": now_plus(to),
                "quota": 50,
            }),
        )
        .await;
    reply.assert(201);
    reply.id()
}

async fn self_registration_and_its_representation(app: &TestApp) {
    let (alice_id, alice) = app.user("alice").await;
    let event = app.create_event(&app.admin_token, "Meetup", 100).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 10).await;

    let reply = app.register(&alice, &ticket).await;
    reply.assert(201);
    assert_eq!(sorted_keys(&reply.body), REGISTRATION_FIELDS);
    assert!(uuid::Uuid::parse_str(&reply.id()).is_ok());
    assert_eq!(reply.body["ticket"], ticket.as_str());
    assert_eq!(reply.body["user"], alice_id.as_str());
    // A ticket without a payment window: confirmed, no hold.
    assert_eq!(reply.body["status"], "confirmed");
    assert_eq!(reply.body["hold_expires_at"], serde_json::Value::Null);
    assert_eq!(reply.body["event"], event.as_str());
    let at = reply.body["registered_at"].as_str().expect("registered_at");
    assert!(
        at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "registered_at: {at}"
    );
    let detail = app
        .get(&format!("/api/registrations/{}/", reply.id()), Some(&alice))
        .await;
    detail.assert(200);
    assert_eq!(detail.body, reply.body);
    assert_eq!(sold(app, &ticket).await, 1);

    // The same user twice → 409, nothing written.
    conflict(&app.register(&alice, &ticket).await);
    conflict(&register_for(app, &alice, &ticket, &alice_id).await);
    assert_eq!(sold(app, &ticket).await, 1);
    assert_eq!(registration_count(app).await, 1);

    // The same user on another ticket, many times at once: one 201, the rest 409.
    let (_bob_id, bob) = app.user("bob").await;
    let statuses = futures::future::join_all((0..6).map(|_| app.register(&bob, &ticket))).await;
    let created = statuses.iter().filter(|r| r.status.as_u16() == 201).count();
    for reply in statuses.iter().filter(|r| r.status.as_u16() != 201) {
        conflict(reply);
    }
    assert_eq!(created, 1, "exactly one concurrent duplicate succeeds");
    assert_eq!(sold(app, &ticket).await, 2);
    assert_eq!(registration_count(app).await, 2);

    // ticket_id unknown, malformed, missing, null → 400 on ticket_id.
    for body in [
        json!({ "ticket_id": uuid::Uuid::new_v4().to_string() }),
        json!({ "ticket_id": "not-a-uuid" }),
        json!({ "ticket_id": 42 }),
        json!({ "ticket_id": null }),
        json!({}),
    ] {
        assert_field_error(
            &app.post("/api/registrations/", Some(&alice), body).await,
            "ticket_id",
        );
    }
    assert_unauthorized(
        &app.post("/api/registrations/", None, json!({ "ticket_id": ticket }))
            .await,
    );
    assert_eq!(registration_count(app).await, 2, "nothing written");
}

async fn registering_someone_else(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, _bob) = app.user("bob").await;
    let (carol_id, _carol) = app.user("carol").await;
    let (dave_id, _dave) = app.user("dave").await;
    let event = app.create_event(&olga, "Olga's", 100).await;
    let ticket = app.create_ticket(&olga, &event, 10).await;

    // A plain user, or an organizer of another event, naming someone else → 403.
    assert_forbidden(&register_for(app, &alice, &ticket, &bob_id).await);
    assert_forbidden(&register_for(app, &otto, &ticket, &bob_id).await);
    assert_eq!(sold(app, &ticket).await, 0);

    // Naming oneself is the same as not naming anyone.
    let own = register_for(app, &alice, &ticket, &alice_id).await;
    own.assert(201);
    assert_eq!(own.body["user"], alice_id.as_str());

    // Admin, superuser and the event's organizer register others.
    for (token, user) in [
        (admin.as_str(), bob_id.as_str()),
        (app.admin_token.as_str(), carol_id.as_str()),
        (olga.as_str(), dave_id.as_str()),
    ] {
        let reply = register_for(app, token, &ticket, user).await;
        reply.assert(201);
        assert_eq!(reply.body["user"], user);
        assert_eq!(reply.body["ticket"], ticket.as_str());
    }
    // The organiser registering themselves.
    let own = app.register(&olga, &ticket).await;
    own.assert(201);
    assert_eq!(own.body["user"], olga_id.as_str());
    assert_eq!(sold(app, &ticket).await, 5);

    // Already registered, by the box office → 409.
    conflict(&register_for(app, &admin, &ticket, &bob_id).await);

    // Unknown or malformed user → 400 on user_id.
    for bad in [json!(uuid::Uuid::new_v4().to_string()), json!("nobody")] {
        assert_field_error(
            &app.post(
                "/api/registrations/",
                Some(&admin),
                json!({ "ticket_id": ticket, "user_id": bad }),
            )
            .await,
            "user_id",
        );
    }
    assert_eq!(sold(app, &ticket).await, 5);
    assert_eq!(registration_count(app).await, 5);
}

async fn sales_window_and_event_state_bind_self_registration(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, bob) = app.user("bob").await;
    let event = event_at(app, &olga, "scheduled", 24 * 30).await;

    // Sales not started yet: the user is refused, the box office is not.
    let early = ticket_window(app, &olga, &event, 24, 48).await;
    conflict(&app.register(&alice, &early).await);
    assert_eq!(sold(app, &early).await, 0);
    let by_organizer = register_for(app, &olga, &early, &alice_id).await;
    by_organizer.assert(201);
    let by_admin = register_for(app, &admin, &early, &bob_id).await;
    by_admin.assert(201);
    assert_eq!(sold(app, &early).await, 2);

    // Sales over: the same.
    let late = ticket_window(app, &olga, &event, -48, -24).await;
    conflict(&app.register(&alice, &late).await);
    assert_eq!(sold(app, &late).await, 0);
    register_for(app, &admin, &late, &alice_id)
        .await
        .assert(201);
    register_for(app, &olga, &late, &bob_id).await.assert(201);

    // Within the window, but the event is not scheduled or has started.
    for status in ["cancelled", "draft", "ongoing", "completed"] {
        let event = event_at(app, &olga, status, 24 * 30).await;
        let ticket = ticket_window(app, &olga, &event, -24, 24).await;
        let reply = app.register(&alice, &ticket).await;
        assert_eq!(reply.status.as_u16(), 409, "event {status}: {}", reply.body);
        conflict(&reply);
        assert_eq!(sold(app, &ticket).await, 0);
    }
    let started = event_at(app, &olga, "scheduled", -1).await;
    let ticket = ticket_window(app, &olga, &started, -24, 24).await;
    conflict(&app.register(&bob, &ticket).await);
    assert_eq!(sold(app, &ticket).await, 0);

    // A ticket in its window for a scheduled, future event is open to all.
    let open = ticket_window(app, &olga, &event, -1, 1).await;
    app.register(&alice, &open).await.assert(201);
    assert_eq!(registration_count(app).await, 5);
}

async fn capacity_of_tickets_and_events(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let users = app.many_users("fan", 4).await;

    // Ticket quota 1.
    let event = app.create_event(&app.admin_token, "Tiny", 100).await;
    let single = app.create_ticket(&app.admin_token, &event, 1).await;
    app.register(&users[0].1, &single).await.assert(201);
    sold_out(&app.register(&users[1].1, &single).await);
    // The box office can't go past capacity either.
    sold_out(&register_for(app, &admin, &single, &users[2].0).await);
    assert_eq!(sold(app, &single).await, 1);

    // Event quota 2 with tickets of 5 and 5.
    let small = app.create_event(&app.admin_token, "Small venue", 2).await;
    let a = app.create_ticket(&app.admin_token, &small, 5).await;
    let b = app.create_ticket(&app.admin_token, &small, 5).await;
    app.register(&users[0].1, &a).await.assert(201);
    app.register(&users[1].1, &b).await.assert(201);
    sold_out(&app.register(&users[2].1, &a).await);
    sold_out(&app.register(&users[2].1, &b).await);
    sold_out(&register_for(app, &app.admin_token, &b, &users[3].0).await);
    assert_eq!(sold(app, &a).await, 1);
    assert_eq!(sold(app, &b).await, 1);
    let regs = app
        .get(&format!("/api/registrations/?event={small}"), app.admin())
        .await;
    assert_eq!(regs.body["count"], 2);

    // A cancellation frees a place.
    let first = app
        .get(
            &format!("/api/registrations/?ticket={a}"),
            Some(&users[0].1),
        )
        .await;
    let id = first.body["registrations"][0]["id"]
        .as_str()
        .expect("registration id")
        .to_owned();
    app.delete(&format!("/api/registrations/{id}/"), Some(&users[0].1))
        .await
        .assert(204);
    app.register(&users[2].1, &b).await.assert(201);
    assert_eq!(sold(app, &a).await, 0);
    assert_eq!(sold(app, &b).await, 2);

    // Quota 0 is sold out from the start.
    let none = app.create_ticket(&app.admin_token, &event, 0).await;
    sold_out(&app.register(&users[3].1, &none).await);
}

fn list_ids(reply: &Reply) -> Vec<String> {
    reply.assert(200);
    let mut ids: Vec<String> = reply.body["registrations"]
        .as_array()
        .unwrap_or_else(|| panic!("no registrations in {}", reply.body))
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted_ids(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn registration_list_is_scoped_and_filtered(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, bob) = app.user("bob").await;
    let (_carol_id, carol) = app.user("carol").await;
    let olga_event = app.create_event(&olga, "Olga's", 100).await;
    let olga_ticket = app.create_ticket(&olga, &olga_event, 10).await;
    let root_event = app.create_event(&app.admin_token, "Root's", 100).await;
    let root_ticket = app.create_ticket(&app.admin_token, &root_event, 10).await;

    let alice_olga = app.register(&alice, &olga_ticket).await.id();
    let bob_olga = app.register(&bob, &olga_ticket).await.id();
    let bob_root = app.register(&bob, &root_ticket).await.id();
    let olga_root = app.register(&olga, &root_ticket).await.id();

    let list = |token: &str, query: &str| {
        let path = format!("/api/registrations/?{query}");
        let token = token.to_owned();
        async move { app.get(&path, Some(&token)).await }
    };

    let all = sorted_ids(&[&alice_olga, &bob_olga, &bob_root, &olga_root]);
    let everything = list(&app.admin_token, "").await;
    let mut keys = sorted_keys(&everything.body);
    keys.retain(|k| k != "registrations");
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
        everything.body["registrations"]
            .as_array()
            .expect("registrations")
            .iter()
            .all(|r| sorted_keys(r) == REGISTRATION_FIELDS)
    );
    assert_eq!(list_ids(&everything), all);
    assert_eq!(list_ids(&list(&admin, "").await), all);
    // Olga: her event's registrations plus her own elsewhere.
    assert_eq!(
        list_ids(&list(&olga, "").await),
        sorted_ids(&[&alice_olga, &bob_olga, &olga_root])
    );
    // Otto organises nothing here; users see their own.
    assert!(list_ids(&list(&otto, "").await).is_empty());
    assert_eq!(list_ids(&list(&alice, "").await), vec![alice_olga.clone()]);
    assert_eq!(
        list_ids(&list(&bob, "").await),
        sorted_ids(&[&bob_olga, &bob_root])
    );
    assert!(list_ids(&list(&carol, "").await).is_empty());
    assert_unauthorized(&app.get("/api/registrations/", None).await);

    // Filters, within the caller's scope.
    assert_eq!(
        list_ids(&list(&app.admin_token, &format!("ticket={olga_ticket}")).await),
        sorted_ids(&[&alice_olga, &bob_olga])
    );
    assert_eq!(
        list_ids(&list(&admin, &format!("event={root_event}")).await),
        sorted_ids(&[&bob_root, &olga_root])
    );
    assert_eq!(
        list_ids(&list(&admin, &format!("user={bob_id}")).await),
        sorted_ids(&[&bob_olga, &bob_root])
    );
    assert_eq!(
        list_ids(&list(&admin, &format!("user={bob_id}&event={olga_event}")).await),
        vec![bob_olga.clone()]
    );
    assert_eq!(
        list_ids(&list(&olga, &format!("event={root_event}")).await),
        vec![olga_root.clone()]
    );
    assert_eq!(
        list_ids(&list(&olga, &format!("user={bob_id}")).await),
        vec![bob_olga.clone()]
    );
    assert!(list_ids(&list(&alice, &format!("user={bob_id}")).await).is_empty());
    assert!(list_ids(&list(&alice, &format!("ticket={root_ticket}")).await).is_empty());
    assert_eq!(
        list_ids(&list(&alice, &format!("user={alice_id}")).await),
        vec![alice_olga.clone()]
    );

    // Olga registered at her own event: listed once, counted once.
    let olga_own = app.register(&olga, &olga_ticket).await.id();
    let hers = list(&olga, "").await;
    assert_eq!(
        list_ids(&hers),
        sorted_ids(&[&alice_olga, &bob_olga, &olga_root, &olga_own])
    );
    assert_eq!(hers.body["count"], 4);
}

async fn registration_detail_permissions(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let event = app.create_event(&olga, "Olga's", 100).await;
    let ticket = app.create_ticket(&olga, &event, 10).await;
    let reg = app.register(&alice, &ticket).await;
    reg.assert(201);
    let path = format!("/api/registrations/{}/", reg.id());

    for token in [
        alice.as_str(),
        olga.as_str(),
        admin.as_str(),
        app.admin_token.as_str(),
    ] {
        let reply = app.get(&path, Some(token)).await;
        reply.assert(200);
        assert_eq!(reply.body, reg.body);
    }
    assert_forbidden(&app.get(&path, Some(&bob)).await);
    assert_forbidden(&app.get(&path, Some(&otto)).await);
    assert_unauthorized(&app.get(&path, None).await);
    assert_not_found(
        &app.get(
            &format!("/api/registrations/{}/", uuid::Uuid::new_v4()),
            Some(&bob),
        )
        .await,
    );
    assert_not_found(&app.get("/api/registrations/not-a-uuid/", app.admin()).await);
    app.get(&format!("/api/registrations/{}", reg.id()), Some(&alice))
        .await
        .assert(200);
}

async fn moving_registrations(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let (carol_id, carol) = app.user("carol").await;
    let event = app.create_event(&olga, "Olga's", 100).await;
    let regular = app.create_ticket(&olga, &event, 10).await;
    let vip = app.create_ticket(&olga, &event, 10).await;
    let full = app.create_ticket(&olga, &event, 1).await;
    let other_event = app.create_event(&olga, "Other", 100).await;
    let other = app.create_ticket(&olga, &other_event, 10).await;

    let reg = app.register(&alice, &regular).await;
    reg.assert(201);
    let path = format!("/api/registrations/{}/", reg.id());
    app.register(&bob, &full).await.assert(201);
    app.register(&carol, &vip).await.assert(201);

    // The user themselves, the event's organizer: refused, nothing moves.
    assert_forbidden(
        &app.patch(&path, Some(&alice), json!({ "ticket_id": vip }))
            .await,
    );
    assert_forbidden(
        &app.put(
            &path,
            Some(&alice),
            json!({ "ticket_id": vip, "user_id": alice_id }),
        )
        .await,
    );
    assert_forbidden(
        &app.patch(&path, Some(&olga), json!({ "ticket_id": vip }))
            .await,
    );
    assert_forbidden(
        &app.patch(&path, Some(&bob), json!({ "ticket_id": vip }))
            .await,
    );
    assert_unauthorized(&app.patch(&path, None, json!({ "ticket_id": vip })).await);
    // Permission is checked before validation.
    assert_forbidden(
        &app.patch(&path, Some(&alice), json!({ "ticket_id": "not-a-uuid" }))
            .await,
    );
    assert_eq!(sold(app, &regular).await, 1);
    assert_eq!(sold(app, &vip).await, 1);

    // Admin moves it (PATCH): counts follow.
    let moved = app
        .patch(&path, Some(&admin), json!({ "ticket_id": vip }))
        .await;
    moved.assert(200);
    assert_eq!(sorted_keys(&moved.body), REGISTRATION_FIELDS);
    assert_eq!(moved.body["id"], reg.id().as_str());
    assert_eq!(moved.body["ticket"], vip.as_str());
    assert_eq!(moved.body["user"], alice_id.as_str());
    assert_eq!(sold(app, &regular).await, 0);
    assert_eq!(sold(app, &vip).await, 2);

    // Superuser moves it to another event (PUT): the event follows.
    let moved = app
        .put(
            &path,
            app.admin(),
            json!({ "ticket_id": other, "user_id": alice_id }),
        )
        .await;
    moved.assert(200);
    assert_eq!(moved.body["ticket"], other.as_str());
    assert_eq!(moved.body["event"], other_event.as_str());
    assert_eq!(sold(app, &vip).await, 1);
    assert_eq!(sold(app, &other).await, 1);

    // Same ticket and user → 200, nothing changes.
    let same = app
        .put(
            &path,
            Some(&admin),
            json!({ "ticket_id": other, "user_id": alice_id }),
        )
        .await;
    same.assert(200);
    assert_eq!(same.body["ticket"], other.as_str());
    assert_eq!(same.body["registered_at"], moved.body["registered_at"]);
    assert_eq!(sold(app, &other).await, 1);

    // Moving to a full ticket → 409 Sold out, nothing changes.
    sold_out(
        &app.patch(&path, Some(&admin), json!({ "ticket_id": full }))
            .await,
    );
    assert_eq!(sold(app, &full).await, 1);
    assert_eq!(sold(app, &other).await, 1);
    // Onto a ticket the user already holds → 409.
    app.register(&alice, &regular).await.assert(201);
    conflict(
        &app.patch(&path, Some(&admin), json!({ "ticket_id": regular }))
            .await,
    );
    // Unknown ticket or user → 400 on that field.
    assert_field_error(
        &app.patch(
            &path,
            Some(&admin),
            json!({ "ticket_id": uuid::Uuid::new_v4().to_string() }),
        )
        .await,
        "ticket_id",
    );
    assert_field_error(
        &app.patch(
            &path,
            Some(&admin),
            json!({ "user_id": uuid::Uuid::new_v4().to_string() }),
        )
        .await,
        "user_id",
    );
    let still = app.get(&path, app.admin()).await;
    assert_eq!(still.body["ticket"], other.as_str());
    assert_eq!(still.body["user"], alice_id.as_str());

    // Handing the registration to another user.
    let handed = app
        .patch(&path, Some(&admin), json!({ "user_id": carol_id }))
        .await;
    handed.assert(200);
    assert_eq!(handed.body["user"], carol_id.as_str());
    assert_eq!(handed.body["ticket"], other.as_str());
    app.get(&path, Some(&carol)).await.assert(200);
    assert_forbidden(&app.get(&path, Some(&alice)).await);
    // ...but not onto a ticket where that user already is.
    conflict(
        &app.patch(
            &path,
            Some(&admin),
            json!({ "ticket_id": vip, "user_id": carol_id }),
        )
        .await,
    );
    assert_eq!(sold(app, &other).await, 1);
    assert_eq!(sold(app, &vip).await, 1);
}

async fn cancelling_registrations(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let (_bob_id, bob) = app.user("bob").await;
    let (_carol_id, carol) = app.user("carol").await;
    let event = app.create_event(&olga, "Olga's", 100).await;
    let ticket = app.create_ticket(&olga, &event, 10).await;
    let pay = |token: &str, registration: String, status: Option<&str>| {
        let mut body = json!({
            "registration_id": registration,
            "payment_method": "QRIS",
            "amount_paid": 150000.5,
        });
        if let Some(s) = status {
            body["payment_status"] = json!(s);
        }
        let token = token.to_owned();
        async move { app.post("/api/payments/", Some(&token), body).await }
    };

    // Alice, no payment: another user and the organiser are refused; she may.
    let alice_reg = app.register(&alice, &ticket).await;
    alice_reg.assert(201);
    let alice_path = format!("/api/registrations/{}/", alice_reg.id());
    assert_forbidden(&app.delete(&alice_path, Some(&bob)).await);
    assert_forbidden(&app.delete(&alice_path, Some(&olga)).await);
    assert_unauthorized(&app.delete(&alice_path, None).await);
    assert_eq!(sold(app, &ticket).await, 1);
    let deleted = app.delete(&alice_path, Some(&alice)).await;
    deleted.assert(204);
    assert_eq!(deleted.body, Value::Null);
    assert_eq!(sold(app, &ticket).await, 0);
    assert_not_found(&app.get(&alice_path, app.admin()).await);
    assert_not_found(&app.delete(&alice_path, Some(&alice)).await);

    // Bob with only a pending payment may cancel; the payment goes with it.
    let bob_reg = app.register(&bob, &ticket).await;
    bob_reg.assert(201);
    let pending = pay(&bob, bob_reg.id(), None).await;
    pending.assert(201);
    app.delete(&format!("/api/registrations/{}/", bob_reg.id()), Some(&bob))
        .await
        .assert(204);
    assert_not_found(
        &app.get(&format!("/api/payments/{}/", pending.id()), app.admin())
            .await,
    );

    // Carol with a completed payment may not; an admin may.
    let carol_reg = app.register(&carol, &ticket).await;
    carol_reg.assert(201);
    let carol_path = format!("/api/registrations/{}/", carol_reg.id());
    let completed = pay(&admin, carol_reg.id(), Some("completed")).await;
    completed.assert(201);
    assert_forbidden(&app.delete(&carol_path, Some(&carol)).await);
    assert_eq!(sold(app, &ticket).await, 1);
    app.get(&carol_path, Some(&carol)).await.assert(200);
    app.delete(&carol_path, Some(&admin)).await.assert(204);
    assert_eq!(sold(app, &ticket).await, 0);
    assert_not_found(
        &app.get(&format!("/api/payments/{}/", completed.id()), app.admin())
            .await,
    );

    // The superuser too.
    let again = app.register(&alice, &ticket).await;
    again.assert(201);
    app.delete(&format!("/api/registrations/{}", again.id()), app.admin())
        .await
        .assert(204);
    assert_eq!(sold(app, &ticket).await, 0);
    assert_eq!(registration_count(app).await, 0);
}
