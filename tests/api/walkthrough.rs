//! The contract walked through as a client would.

use serde_json::json;

use crate::helpers::{PASSWORD, SUPERUSER, TestApp};

crate::backend_tests!(walk_through_the_contract);

async fn walk_through_the_contract(app: &TestApp) {
    // The superuser logs in (the harness did) and reads their account.
    let me = app.get("/api/users/me/", app.admin()).await;
    me.assert(200);
    assert_eq!(me.body["username"], SUPERUSER);
    assert_eq!(me.body["is_superuser"], true);

    // A user signs up, logs in, refreshes.
    let signup = app.signup("alice").await;
    signup.assert(201);
    assert!(signup.body.get("password").is_none());
    let alice_id = signup.id();
    let (alice, alice_refresh) = app.login_ok("alice", PASSWORD).await;
    let refreshed = app
        .post("/api/token/", None, json!({ "refresh": alice_refresh }))
        .await;
    refreshed.assert(200);
    assert!(refreshed.body["access"].is_string());
    app.post(
        "/api/token/refresh/",
        None,
        json!({ "refresh": alice_refresh }),
    )
    .await
    .assert(200);

    // The superuser creates the role groups and assigns them.
    let admin_group = app
        .post("/api/groups/", app.admin(), json!({ "name": "admin" }))
        .await;
    admin_group.assert(201);
    let organizer_group = app
        .post("/api/groups/", app.admin(), json!({ "name": "organizer" }))
        .await;
    organizer_group.assert(201);
    let (boss_id, _) = app.user("boss").await;
    let (olga_id, _) = app.user("olga").await;
    let assigned = app
        .post(
            "/api/assign-roles/",
            app.admin(),
            json!({ "user_id": boss_id, "group_id": admin_group.body["id"] }),
        )
        .await;
    assigned.assert(201);
    assert_eq!(
        assigned.body["message"],
        "User boss assigned to group admin"
    );
    app.post(
        "/api/assign-roles/",
        app.admin(),
        // A numeric string is accepted for a group id.
        json!({ "user_id": olga_id, "group_id": organizer_group.body["id"].to_string() }),
    )
    .await
    .assert(201);
    // Assigning again is a 200 with the same body.
    app.post(
        "/api/assign-roles/",
        app.admin(),
        json!({ "user_id": olga_id, "group_id": organizer_group.body["id"] }),
    )
    .await
    .assert(200);
    let (boss, _) = app.login_ok("boss", PASSWORD).await;
    let (olga, _) = app.login_ok("olga", PASSWORD).await;
    let olga_me = app.get("/api/users/me", Some(&olga)).await;
    assert_eq!(olga_me.body["groups"], json!(["organizer"]));

    // Admin and organizer create events and tickets.
    let boss_event = app.create_event(&boss, "Admin Summit", 100).await;
    let olga_event = app.create_event(&olga, "Rust Meetup", 100).await;
    let event = app.get(&format!("/api/events/{olga_event}/"), None).await;
    event.assert(200);
    assert_eq!(event.body["organizer"], olga_id.as_str());
    assert_eq!(event.body["status"], "scheduled");
    let olga_ticket = app.create_ticket(&olga, &olga_event, 10).await;
    let boss_ticket = app.create_ticket(&boss, &boss_event, 10).await;
    let ticket = app.get(&format!("/api/tickets/{olga_ticket}"), None).await;
    assert_eq!(ticket.body["price"], json!(150000.5));
    assert_eq!(ticket.body["available"], 10);

    // Users register and pay.
    let registration = app.register(&alice, &olga_ticket).await;
    registration.assert(201);
    assert_eq!(registration.body["user"], alice_id.as_str());
    assert_eq!(registration.body["event"], olga_event.as_str());
    let registration_id = registration.id();
    app.register(&alice, &olga_ticket).await.assert(409);
    let ticket = app.get(&format!("/api/tickets/{olga_ticket}/"), None).await;
    assert_eq!(ticket.body["sold"], 1);
    assert_eq!(ticket.body["available"], 9);
    let payment = app
        .post(
            "/api/payments/",
            Some(&alice),
            json!({ "registration_id": registration_id, "payment_method": "QRIS", "amount_paid": 150000.5 }),
        )
        .await;
    payment.assert(201);
    assert_eq!(payment.body["payment_status"], "pending");
    assert_eq!(payment.body["paid_at"], json!(null));
    let payment_id = payment.id();
    let completed = app
        .patch(
            &format!("/api/payments/{payment_id}/"),
            Some(&boss),
            json!({ "payment_status": "COMPLETED" }),
        )
        .await;
    completed.assert(200);
    assert_eq!(completed.body["payment_status"], "completed");
    assert!(completed.body["paid_at"].is_string());

    // Each role tries what it may not do.
    app.post("/api/events/", None, TestApp::event_body("x", 1))
        .await
        .assert(401);
    app.post("/api/events/", Some(&alice), TestApp::event_body("x", 1))
        .await
        .assert(403);
    app.get("/api/groups/", Some(&boss)).await.assert(403);
    app.get("/api/users/", Some(&alice)).await.assert(403);
    app.get("/api/users/", Some(&boss)).await.assert(200);
    app.patch(
        &format!("/api/events/{boss_event}/"),
        Some(&olga),
        json!({ "name": "Mine" }),
    )
    .await
    .assert(403);
    app.post(
        "/api/tickets/",
        Some(&olga),
        TestApp::ticket_body(&boss_event, "VIP", 5),
    )
    .await
    .assert(403);
    app.patch(
        &format!("/api/payments/{payment_id}/"),
        Some(&alice),
        json!({ "payment_status": "refunded" }),
    )
    .await
    .assert(403);
    // Alice cannot cancel a paid registration; the organiser reads it.
    app.delete(
        &format!("/api/registrations/{registration_id}/"),
        Some(&alice),
    )
    .await
    .assert(403);
    app.get(
        &format!("/api/registrations/{registration_id}/"),
        Some(&olga),
    )
    .await
    .assert(200);
    let olga_payments = app.get("/api/payments/", Some(&olga)).await;
    assert_eq!(olga_payments.body["count"], 1);
    let strangers = app.get("/api/registrations/", Some(&boss)).await;
    assert_eq!(strangers.body["count"], 1);
    app.register(&alice, &boss_ticket).await.assert(201);

    // Deleting a ticket removes its registrations and payments.
    app.delete(&format!("/api/tickets/{olga_ticket}/"), Some(&olga))
        .await
        .assert(204);
    app.get(
        &format!("/api/registrations/{registration_id}/"),
        app.admin(),
    )
    .await
    .assert(404);
    app.get(&format!("/api/payments/{payment_id}/"), app.admin())
        .await
        .assert(404);
    let alice_regs = app.get("/api/registrations/", Some(&alice)).await;
    assert_eq!(alice_regs.body["count"], 1);

    // Deleting an event removes its tickets and their registrations.
    app.delete(&format!("/api/events/{boss_event}/"), Some(&boss))
        .await
        .assert(204);
    app.get(&format!("/api/tickets/{boss_ticket}/"), None)
        .await
        .assert(404);
    let alice_regs = app.get("/api/registrations/", Some(&alice)).await;
    assert_eq!(alice_regs.body["count"], 0);

    // Logout revokes the refresh token.
    app.post(
        "/api/logout/",
        Some(&alice),
        json!({ "refresh": alice_refresh }),
    )
    .await
    .assert(204);
    app.post("/api/token/", None, json!({ "refresh": alice_refresh }))
        .await
        .assert(401);
}
