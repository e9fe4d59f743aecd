//! API.md §10: every write leaves one audit entry in its own transaction,
//! entries are never changed, and `GET /api/audit/` shows each caller what
//! they may see.

use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{
    FORBIDDEN, PASSWORD, Reply, TestApp, assert_field_error, assert_unauthorized,
};

crate::backend_tests!(
    every_write_leaves_one_entry,
    refused_and_rolled_back_writes_leave_none,
    entries_are_never_changed_or_deleted,
    each_role_sees_what_it_may,
    filters_and_pages,
);

/// How many entries the table holds (`condition`: of which), counted row
/// by row (PostgreSQL).
async fn counted_where(app: &TestApp, condition: &str) -> u64 {
    let row = app
        .state
        .db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT count(*) AS n FROM audit_entries WHERE {condition}"),
        ))
        .await
        .expect("query")
        .expect("a row");
    u64::try_from(row.try_get::<i64>("", "n").expect("a number")).expect("a count")
}

async fn counted(app: &TestApp) -> u64 {
    counted_where(app, "true").await
}

/// The counts the API gives (the whole log as admin, the organiser's own,
/// an event's as admin and as its organiser) against the rows.
async fn assert_counts_exact(app: &TestApp, organizer: &(String, String), event: &str, when: &str) {
    let (org_id, org_token) = organizer;
    assert_eq!(total(app).await, counted(app).await, "everything, {when}");
    let listed = |path: String, token: String| async move {
        let reply = app.get(&path, Some(&token)).await;
        reply.assert(200);
        reply.body["count"].as_u64().expect("count")
    };
    assert_eq!(
        listed("/api/audit/?page_size=1".into(), org_token.clone()).await,
        counted_where(app, &format!("organizer_id = '{org_id}'")).await,
        "the organiser's, {when}"
    );
    assert_eq!(
        listed(
            format!("/api/audit/?event={event}"),
            app.admin_token.clone()
        )
        .await,
        counted_where(app, &format!("event_id = '{event}'")).await,
        "the event's, {when}"
    );
    assert_eq!(
        listed(format!("/api/audit/?event={event}"), org_token.clone()).await,
        counted_where(
            app,
            &format!("event_id = '{event}' AND organizer_id = '{org_id}'")
        )
        .await,
        "the event's for its organiser, {when}"
    );
}

/// One entry written straight into the table, in `txn`.
async fn write_entry(txn: &impl ConnectionTrait, action: &str) {
    txn.execute_unprepared(&format!(
        "INSERT INTO audit_entries (id, occurred_at, actor_type, action, entity_type, \
         entity_id, changes) VALUES (gen_random_uuid(), now(), 'cli', '{action}', 'test', \
         'mark', '{{}}')"
    ))
    .await
    .expect("an entry written");
}

/// An admin's unfiltered count comes from the workers' mark plus the
/// entries written since (PostgreSQL). It stays exact when a write is still
/// open as the mark moves and commits after, when one is rolled back, and
/// when two workers move the mark while writes race on two servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_counts_stay_exact_as_the_mark_moves() {
    use dicoevent::db::audit::advance_count_mark;
    use sea_orm::TransactionTrait;
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let sibling = app.spawn_sibling().await;
    let owner = app.user_in("markorg", "organizer").await;
    let organizer = owner.1.clone();
    let mut events = Vec::new();
    for i in 0..3 {
        events.push(
            app.create_event(&organizer, &format!("Marked {i}"), 5)
                .await,
        );
    }
    let event = events[0].clone();
    assert_counts_exact(&app, &owner, &event, "before any move").await;
    assert!(advance_count_mark(&app.state.db).await.expect("moved"));
    assert_counts_exact(&app, &owner, &event, "after a move").await;

    // One write open while the mark moves, committed after; one rolled back.
    let db = app.state.db.conn();
    let open = db.begin().await.expect("a transaction");
    write_entry(&open, "test.committed_late").await;
    let undone = db.begin().await.expect("a transaction");
    write_entry(&undone, "test.rolled_back").await;
    let before = counted(&app).await;
    assert!(advance_count_mark(&app.state.db).await.expect("moved"));
    assert_eq!(total(&app).await, before, "open writes are not counted");
    open.commit().await.expect("committed");
    undone.rollback().await.expect("rolled back");
    assert_eq!(total(&app).await, before + 1, "the late commit is counted");
    assert!(advance_count_mark(&app.state.db).await.expect("moved"));
    assert_eq!(total(&app).await, before + 1, "and once only");

    // Writes on two servers while both workers move the mark: new events,
    // changes to the first, tickets of the others.
    let writes = futures::future::join_all((0..60).map(|i| {
        let server = if i % 2 == 0 { &app } else { &sibling };
        let token = organizer.clone();
        let events = &events;
        async move {
            match i % 3 {
                0 => {
                    server.create_event(&token, &format!("Race {i}"), 5).await;
                }
                1 => {
                    server
                        .patch(
                            &format!("/api/events/{}/", events[0]),
                            Some(&token),
                            json!({"quota": 100 + i}),
                        )
                        .await
                        .assert(200);
                }
                _ => {
                    server.create_ticket(&token, &events[1 + i % 2], 5).await;
                }
            }
        }
    }));
    let moves = |server: &'static str, state: dicoevent::state::AppState| async move {
        let mut moved = 0;
        for _ in 0..30 {
            if advance_count_mark(&state.db).await.expect(server) {
                moved += 1;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        moved
    };
    let (_, first, second) = tokio::join!(
        writes,
        moves("first", app.state.clone()),
        moves("second", sibling.state.clone()),
    );
    assert!(first + second > 0, "the mark moved during the race");
    assert_counts_exact(&app, &owner, &event, "after the race").await;
    assert!(advance_count_mark(&sibling.state.db).await.expect("moved"));
    assert_counts_exact(&app, &owner, &event, "after the last move").await;
    // The tallies hold the exact numbers once nothing is written.
    let tallied = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT coalesce(sum(total), 0)::bigint AS n FROM audit_count_tallies \
                 WHERE event_id = '{event}'"
            ),
        ))
        .await
        .expect("query")
        .expect("a row");
    assert_eq!(
        u64::try_from(tallied.try_get::<i64>("", "n").expect("a number")).expect("a count"),
        counted_where(&app, &format!("event_id = '{event}'")).await,
        "the event's tally"
    );
    // The mark itself holds the exact number once nothing is written.
    let mark = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT total AS n FROM audit_count_marks",
        ))
        .await
        .expect("query")
        .expect("the mark");
    let mark = u64::try_from(mark.try_get::<i64>("", "n").expect("a number")).expect("a count");
    assert_eq!(mark, counted(&app).await, "the mark's own number");
    sibling.cleanup().await;
    app.cleanup().await;
}

/// The entries about one entity, oldest first.
async fn entries_of(app: &TestApp, entity_id: &str) -> Vec<Value> {
    let reply = app
        .get(
            &format!("/api/audit/?entity_id={entity_id}&page_size=100"),
            app.admin(),
        )
        .await;
    reply.assert(200);
    let mut entries = reply.body["entries"].as_array().expect("entries").clone();
    entries.reverse();
    entries
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect()
}

/// How many entries the whole log holds.
async fn total(app: &TestApp) -> u64 {
    let reply = app.get("/api/audit/?page_size=1", app.admin()).await;
    reply.assert(200);
    reply.body["count"].as_u64().expect("count")
}

async fn with_request_id(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
    request_id: &str,
) -> Reply {
    let req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("X-Request-Id", request_id)
        .json(&body);
    TestApp::reply(req.send().await.expect("sent")).await
}

async fn every_write_leaves_one_entry(app: &TestApp) {
    // A sign-up is the new account's own act; its login follows.
    let (org_id, organizer) = app.user_in("auditorg", "organizer").await;
    let created = entries_of(app, &org_id).await;
    assert_eq!(
        actions(&created),
        ["user.created", "user.logged_in", "role.assigned"]
    );
    assert_eq!(created[0]["actor"]["type"], "user");
    assert_eq!(created[0]["actor"]["id"], org_id.as_str());
    assert_eq!(created[0]["entity"], json!({"type": "user", "id": org_id}));
    assert_eq!(created[0]["changes"]["username"], json!([null, "auditorg"]));
    assert_eq!(created[0]["changes"]["password"], json!([null, "********"]));
    assert_eq!(created[0]["event"], Value::Null);
    assert_eq!(created[2]["actor"]["username"], crate::helpers::SUPERUSER);
    assert_eq!(created[2]["changes"], json!({"group": [null, "organizer"]}));

    // An event: created, then changed in one field, with who, from where.
    let event = with_request_id(
        app,
        Method::POST,
        "/api/events/",
        &organizer,
        TestApp::event_body("Audit Night", 50),
        "audit-create-1",
    )
    .await;
    event.assert(201);
    let event_id = event.id();
    with_request_id(
        app,
        Method::PATCH,
        &format!("/api/events/{event_id}/"),
        &organizer,
        json!({"location": "Bandung"}),
        "audit-update-1",
    )
    .await
    .assert(200);
    let log = entries_of(app, &event_id).await;
    assert_eq!(actions(&log), ["event.created", "event.updated"]);
    let first = &log[0];
    assert_eq!(
        first["actor"],
        json!({"type": "user", "id": org_id, "username": "auditorg"})
    );
    assert_eq!(first["entity"], json!({"type": "event", "id": event_id}));
    assert_eq!(first["event"], event_id.as_str());
    assert_eq!(first["changes"]["name"], json!([null, "Audit Night"]));
    assert_eq!(first["changes"]["quota"], json!([null, 50]));
    assert_eq!(first["request_id"], "audit-create-1");
    assert_eq!(first["ip"], "127.0.0.1");
    assert!(
        first["occurred_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(
        log[1]["changes"],
        json!({"location": ["Jakarta Convention Center", "Bandung"]})
    );
    assert_eq!(log[1]["request_id"], "audit-update-1");

    // A ticket, a registration, its payment and its completion.
    let ticket = app.create_ticket(&organizer, &event_id, 10).await;
    app.patch(
        &format!("/api/tickets/{ticket}/"),
        Some(&organizer),
        json!({"price": 99}),
    )
    .await
    .assert(200);
    let ticket_log = entries_of(app, &ticket).await;
    assert_eq!(actions(&ticket_log), ["ticket.created", "ticket.updated"]);
    assert_eq!(ticket_log[1]["changes"], json!({"price": [150000.5, 99]}));
    assert_eq!(ticket_log[1]["event"], event_id.as_str());

    let (guest_id, guest) = app.user("auditguest").await;
    let registration = app.register(&guest, &ticket).await;
    registration.assert(201);
    let registration_id = registration.id();
    let payment = app
        .post(
            "/api/payments/",
            Some(&guest),
            json!({"registration_id": registration_id, "payment_method": "bank_transfer", "amount_paid": 99}),
        )
        .await;
    payment.assert(201);
    let payment_id = payment.id();
    app.patch(
        &format!("/api/payments/{payment_id}/"),
        app.admin(),
        json!({"payment_status": "completed"}),
    )
    .await
    .assert(200);
    let registration_log = entries_of(app, &registration_id).await;
    assert_eq!(actions(&registration_log), ["registration.created"]);
    assert_eq!(registration_log[0]["actor"]["id"], guest_id.as_str());
    assert_eq!(
        registration_log[0]["changes"]["user"],
        json!([null, guest_id])
    );
    // Written as the API writes it (on PostgreSQL by the batch statement).
    assert_eq!(
        registration_log[0]["changes"],
        json!({
            "ticket": [null, ticket],
            "user": [null, guest_id],
            "event": [null, event_id],
            "registered_at": [null, registration.body["registered_at"]],
            "status": [null, "confirmed"],
        })
    );
    let payment_log = entries_of(app, &payment_id).await;
    assert_eq!(
        actions(&payment_log),
        ["payment.created", "payment.updated"]
    );
    assert_eq!(
        payment_log[1]["changes"]["payment_status"],
        json!(["pending", "completed"])
    );
    assert_eq!(
        payment_log[1]["actor"]["username"],
        crate::helpers::SUPERUSER
    );
    assert_eq!(payment_log[1]["event"], event_id.as_str());

    // A scan at the door, and its undo.
    let code = app
        .get(
            &format!("/api/registrations/{registration_id}/ticket/"),
            Some(&guest),
        )
        .await;
    code.assert(200);
    let admitted = app
        .post(
            "/api/checkins/",
            Some(&organizer),
            json!({"code": code.body["code"]}),
        )
        .await;
    admitted.assert(201);
    let checkins = app
        .get(
            &format!("/api/audit/?action=checkin.&event={event_id}"),
            Some(&organizer),
        )
        .await;
    checkins.assert(200);
    let checkin_id = checkins.body["entries"][0]["entity"]["id"]
        .as_str()
        .expect("checkin id")
        .to_owned();
    app.delete(&format!("/api/checkins/{checkin_id}/"), Some(&organizer))
        .await
        .assert(204);
    assert_eq!(
        actions(&entries_of(app, &checkin_id).await),
        ["checkin.created", "checkin.deleted"]
    );

    // A logout is logged; a password change is its own entry, masked.
    let (_, refresh) = app.login_ok("auditguest", PASSWORD).await;
    app.post("/api/logout/", Some(&guest), json!({"refresh": refresh}))
        .await
        .assert(204);
    let out = entries_of(app, &guest_id).await;
    assert_eq!(actions(&out).last(), Some(&"user.logged_out"));
    app.patch(
        &format!("/api/users/{guest_id}/"),
        Some(&guest),
        json!({"password": "An0ther-Passw0rd!", "first_name": "Gita"}),
    )
    .await
    .assert(200);
    let guest_log = entries_of(app, &guest_id).await;
    let tail: Vec<&str> = actions(&guest_log).into_iter().rev().take(2).collect();
    assert_eq!(tail, ["user.password_changed", "user.updated"]);
    let changed = &guest_log[guest_log.len() - 1];
    assert_eq!(
        changed["changes"],
        json!({"password": ["********", "********"]})
    );
    assert_eq!(
        guest_log[guest_log.len() - 2]["changes"],
        json!({"first_name": ["", "Gita"]})
    );

    // Groups, and a cancellation and a deletion.
    let group = app
        .post("/api/groups/", app.admin(), json!({"name": "auditors"}))
        .await;
    group.assert(201);
    let group_id = group.id();
    app.delete(&format!("/api/groups/{group_id}/"), app.admin())
        .await
        .assert(204);
    assert_eq!(
        actions(&entries_of(app, &group_id).await),
        ["group.created", "group.deleted"]
    );
    app.delete(
        &format!("/api/registrations/{registration_id}/"),
        app.admin(),
    )
    .await
    .assert(204);
    app.delete(&format!("/api/events/{event_id}/"), Some(&organizer))
        .await
        .assert(204);
    assert_eq!(
        actions(&entries_of(app, &registration_id).await),
        ["registration.created", "registration.cancelled"]
    );
    let gone = entries_of(app, &event_id).await;
    assert_eq!(
        actions(&gone),
        ["event.created", "event.updated", "event.deleted"]
    );
    assert_eq!(gone[2]["changes"]["name"], json!(["Audit Night", null]));
}

async fn refused_and_rolled_back_writes_leave_none(app: &TestApp) {
    let (_, organizer) = app.user_in("rborg", "organizer").await;
    let event = app.create_event(&organizer, "Tiny", 1).await;
    let ticket = app.create_ticket(&organizer, &event, 1).await;
    let (_, first) = app.user("rbfirst").await;
    let registration = app.register(&first, &ticket).await;
    registration.assert(201);
    let (_, second) = app.user("rbsecond").await;
    let before = total(app).await;

    // Sold out (409), a bad field (400), a quota below what is held (409),
    // someone else's event (403), a second payment for the same
    // registration once one is completed (a unique violation inside the
    // write's transaction, rolled back).
    app.register(&second, &ticket).await.assert(409);
    assert_field_error(
        &app.post(
            "/api/events/",
            Some(&organizer),
            json!({"name": "No times", "quota": 5}),
        )
        .await,
        "start_time",
    );
    app.patch(
        &format!("/api/events/{event}/"),
        Some(&organizer),
        json!({"quota": 0}),
    )
    .await
    .assert(409);
    app.patch(
        &format!("/api/events/{event}/"),
        Some(&second),
        json!({"name": "Mine now"}),
    )
    .await
    .assert(403);
    let paid = app
        .post(
            "/api/payments/",
            Some(&first),
            json!({"registration_id": registration.id(), "payment_method": "cash", "amount_paid": 1}),
        )
        .await;
    paid.assert(201);
    app.patch(
        &format!("/api/payments/{}/", paid.id()),
        app.admin(),
        json!({"payment_status": "completed", "force": true}),
    )
    .await
    .assert(200);
    let after_paid = total(app).await;
    assert_eq!(after_paid, before + 2, "the payment and its completion");
    let again = app
        .post(
            "/api/payments/",
            app.admin(),
            json!({"registration_id": registration.id(), "payment_method": "cash", "amount_paid": 1, "payment_status": "completed"}),
        )
        .await;
    assert_eq!(again.status.as_u16(), 409, "{}", again.body);
    assert_eq!(total(app).await, after_paid);
    let wrote = app
        .get(
            &format!("/api/audit/?event={event}&action=event.updated"),
            app.admin(),
        )
        .await;
    assert_eq!(wrote.body["count"], 0);
}

async fn entries_are_never_changed_or_deleted(app: &TestApp) {
    let (_, organizer) = app.user_in("rworg", "organizer").await;
    app.create_event(&organizer, "Kept", 5).await;
    let before = total(app).await;
    assert!(before > 0);
    let db = app.state.db.conn();
    for sql in [
        "UPDATE audit_entries SET action = 'event.forged'",
        "DELETE FROM audit_entries",
    ] {
        let refused = db.execute_unprepared(sql).await;
        let err = refused.expect_err("the table refuses it");
        assert!(
            err.to_string().contains("never changed or deleted"),
            "{sql}: {err}"
        );
    }
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let err = db
            .execute_unprepared("TRUNCATE audit_entries")
            .await
            .expect_err("truncate is refused");
        assert!(
            err.to_string().contains("never changed or deleted"),
            "{err}"
        );
    }
    assert_eq!(total(app).await, before);
    let forged = app
        .get("/api/audit/?action=event.forged", app.admin())
        .await;
    assert_eq!(forged.body["count"], 0);
}

async fn each_role_sees_what_it_may(app: &TestApp) {
    let (_, mine) = app.user_in("scopeorg", "organizer").await;
    let (_, theirs) = app.user_in("otherorg", "organizer").await;
    let (_, admin) = app.user_in("scopeadmin", "admin").await;
    let (_, attendee) = app.user("scopeguest").await;
    let my_event = app.create_event(&mine, "Mine", 5).await;
    let their_event = app.create_event(&theirs, "Theirs", 5).await;

    // Organisers: their events' entries only, even when asking for others.
    let own = app.get("/api/audit/?page_size=100", Some(&mine)).await;
    own.assert(200);
    let entries = own.body["entries"].as_array().expect("entries");
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e["event"] == my_event.as_str()),
        "{}",
        own.body
    );
    let asked = app
        .get(&format!("/api/audit/?event={their_event}"), Some(&mine))
        .await;
    asked.assert(200);
    assert_eq!(asked.body["count"], 0);

    // Superuser and admin: everything, accounts included.
    for token in [app.admin_token.as_str(), admin.as_str()] {
        let all = app.get("/api/audit/?page_size=100", Some(token)).await;
        all.assert(200);
        let events: Vec<&Value> = all.body["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| &e["event"])
            .collect();
        assert!(events.contains(&&json!(my_event)));
        assert!(events.contains(&&json!(their_event)));
        assert!(events.contains(&&Value::Null));
    }

    // An attendee: 403; nobody: 401.
    let refused = app.get("/api/audit/", Some(&attendee)).await;
    refused.assert(403);
    assert_eq!(refused.body, json!({"detail": FORBIDDEN}));
    assert_unauthorized(&app.get("/api/audit/", None).await);
}

async fn filters_and_pages(app: &TestApp) {
    let (org_id, organizer) = app.user_in("pageorg", "organizer").await;
    let event = app.create_event(&organizer, "Paged", 50).await;
    // `since` below is given to the millisecond: the event's creation and
    // its first change each a few milliseconds away from it.
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(3));
    pause().await;
    let started = chrono::Utc::now();
    pause().await;
    for i in 0..5 {
        app.patch(
            &format!("/api/events/{event}/"),
            Some(&organizer),
            json!({"quota": 60 + i}),
        )
        .await
        .assert(200);
    }
    let by = |query: String| async move {
        let reply = app.get(&format!("/api/audit/?{query}"), app.admin()).await;
        reply.assert(200);
        reply
    };
    assert_eq!(by(format!("event={event}")).await.body["count"], 6);
    assert_eq!(
        by(format!("event={event}&action=event.upd")).await.body["count"],
        5
    );
    assert_eq!(
        by(format!("event={event}&action=EVENT.")).await.body["count"],
        6
    );
    assert_eq!(
        by(format!("entity_type=event&entity_id={event}"))
            .await
            .body["count"],
        6
    );
    assert_eq!(
        by(format!("event={event}&actor={org_id}")).await.body["count"],
        6
    );
    assert_eq!(
        by(format!("event={event}&actor=PageOrg")).await.body["count"],
        6
    );
    assert_eq!(
        by(format!("event={event}&actor=system")).await.body["count"],
        0
    );
    assert_eq!(
        by("action=user.created&actor=cli".into()).await.body["count"],
        1
    );
    let since = started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        by(format!("event={event}&since={}", urlencoding(&since)))
            .await
            .body["count"],
        5
    );
    assert_eq!(
        by(format!("event={event}&until={}", urlencoding(&since)))
            .await
            .body["count"],
        1
    );

    // Newest first, two a page; `next` is read by key and carries on.
    let first = by(format!("event={event}&page_size=2")).await;
    assert_eq!(first.body["total_pages"], 3);
    assert_eq!(first.body["previous"], Value::Null);
    let quotas = |page: &Reply| -> Vec<Value> {
        page.body["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["changes"]["quota"][1].clone())
            .collect()
    };
    assert_eq!(quotas(&first), [json!(64), json!(63)]);
    let mut next = first.body["next"].as_str().expect("next").to_owned();
    assert!(next.contains("before="), "{next}");
    let mut seen = quotas(&first);
    while let Some(url) = Some(next.clone()).filter(|u| !u.is_empty()) {
        let path = url.split_once("://").map(|(_, rest)| rest).unwrap_or(&url);
        let path = &path[path.find('/').expect("a path")..];
        let page = app.get(path, app.admin()).await;
        page.assert(200);
        seen.extend(quotas(&page));
        next = page.body["next"].as_str().unwrap_or_default().to_owned();
        assert!(page.body["previous"].as_str().is_some());
    }
    assert_eq!(
        seen,
        [
            json!(64),
            json!(63),
            json!(62),
            json!(61),
            json!(60),
            json!(50)
        ]
    );

    // Bad filter values are named.
    for (query, field) in [
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("event=not-a-uuid", "event"),
        ("before=nope", "before"),
    ] {
        assert_field_error(
            &app.get(&format!("/api/audit/?{query}"), app.admin()).await,
            field,
        );
    }
}

fn urlencoding(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
