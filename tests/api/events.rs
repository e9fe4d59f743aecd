//! `/api/events/`: public reads, who may write, validation, filters,
//! ordering and pagination.

use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_field_error, assert_forbidden, assert_not_found, assert_unauthorized, is_utc_z,
    sorted, sorted_keys,
};

crate::backend_tests!(
    events_are_public_with_the_contract_representation,
    who_may_create_events_and_for_whom,
    event_inputs_are_normalised,
    invalid_event_bodies_write_nothing,
    who_may_update_events,
    put_needs_every_field_but_status_and_organizer,
    who_may_delete_events_and_what_goes_with_them,
    event_filters_and_ordering,
    event_pagination,
    several_ordering_fields_and_named_choices,
);

const EVENT_FIELDS: [&str; 12] = [
    "id",
    "name",
    "description",
    "location",
    "start_time",
    "end_time",
    "status",
    "category",
    "quota",
    "organizer",
    "created_at",
    "updated_at",
];

const ENVELOPE_FIELDS: [&str; 7] = [
    "events",
    "count",
    "page",
    "page_size",
    "total_pages",
    "next",
    "previous",
];

async fn event_count(app: &TestApp) -> i64 {
    let list = app.get("/api/events/", None).await;
    list.assert(200);
    list.body["count"].as_i64().expect("count is a number")
}

fn fixed_event(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Talks and workshops",
        "location": "Jakarta Convention Center",
        "start_time": "2025-08-08T16:32:00Z",
        "end_time": "2025-08-08T20:00:00Z",
        "quota": 120,
        "category": "Tech",
    })
}

async fn events_are_public_with_the_contract_representation(app: &TestApp) {
    let created = app
        .post("/api/events/", app.admin(), fixed_event("DevFest"))
        .await;
    created.assert(201);
    assert_eq!(sorted_keys(&created.body), sorted(&EVENT_FIELDS));
    let id = created.id();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "id is a uuid: {id}");

    // The list, anonymously.
    let list = app.get("/api/events/", None).await;
    list.assert(200);
    assert_eq!(sorted_keys(&list.body), sorted(&ENVELOPE_FIELDS));
    assert_eq!(list.body["count"], 1);
    assert_eq!(list.body["page"], 1);
    assert_eq!(list.body["page_size"], 20);
    assert_eq!(list.body["total_pages"], 1);
    assert_eq!(list.body["next"], Value::Null);
    assert_eq!(list.body["previous"], Value::Null);
    let items = list.body["events"].as_array().expect("events array");
    assert_eq!(items.len(), 1);
    assert_eq!(sorted_keys(&items[0]), sorted(&EVENT_FIELDS));

    // The detail, anonymously, with and without the trailing slash.
    for path in [format!("/api/events/{id}/"), format!("/api/events/{id}")] {
        let detail = app.get(&path, None).await;
        detail.assert(200);
        assert_eq!(sorted_keys(&detail.body), sorted(&EVENT_FIELDS));
        let e = &detail.body;
        assert_eq!(e["id"], id.as_str());
        assert_eq!(e["name"], "DevFest");
        assert_eq!(e["description"], "Talks and workshops");
        assert_eq!(e["location"], "Jakarta Convention Center");
        assert_eq!(e["start_time"], "2025-08-08T16:32:00Z");
        assert_eq!(e["end_time"], "2025-08-08T20:00:00Z");
        assert_eq!(e["status"], "scheduled");
        assert_eq!(e["category"], "Tech");
        assert_eq!(e["quota"], 120);
        assert_eq!(e["organizer"], app.superuser_id.as_str());
        assert!(
            is_utc_z(&e["created_at"]),
            "created_at: {}",
            e["created_at"]
        );
        assert!(
            is_utc_z(&e["updated_at"]),
            "updated_at: {}",
            e["updated_at"]
        );
        assert_eq!(&items[0], e, "list item and detail agree");
    }

    // Unknown and malformed ids in the path are 404.
    assert_not_found(
        &app.get(&format!("/api/events/{}/", uuid::Uuid::new_v4()), None)
            .await,
    );
    assert_not_found(&app.get("/api/events/not-a-uuid/", None).await);
    assert_not_found(&app.get("/api/events/12345/", app.admin()).await);
    assert_not_found(
        &app.patch(
            "/api/events/not-a-uuid/",
            app.admin(),
            json!({ "name": "x" }),
        )
        .await,
    );
    assert_not_found(&app.delete("/api/events/not-a-uuid/", app.admin()).await);
}

async fn who_may_create_events_and_for_whom(app: &TestApp) {
    let (admin_id, admin) = app.user_in("boss", "admin").await;
    let (olga_id, olga) = app.user_in("olga", "organizer").await;
    let (otto_id, _otto) = app.user_in("otto", "organizer").await;
    let (alice_id, alice) = app.user("alice").await;

    // Superuser, admin and organizer may create; the default organiser is the caller.
    for (token, owner) in [
        (app.admin_token.as_str(), app.superuser_id.as_str()),
        (admin.as_str(), admin_id.as_str()),
        (olga.as_str(), olga_id.as_str()),
    ] {
        let reply = app
            .post("/api/events/", Some(token), TestApp::event_body("Mine", 10))
            .await;
        reply.assert(201);
        assert_eq!(reply.body["organizer"], owner);
    }
    assert_eq!(event_count(app).await, 3);

    // A plain user is refused, anonymous is unauthenticated; nothing written.
    assert_forbidden(
        &app.post("/api/events/", Some(&alice), TestApp::event_body("No", 10))
            .await,
    );
    assert_unauthorized(
        &app.post("/api/events/", None, TestApp::event_body("No", 10))
            .await,
    );
    assert_unauthorized(
        &app.post(
            "/api/events/",
            Some("not.a.token"),
            TestApp::event_body("No", 10),
        )
        .await,
    );
    assert_eq!(event_count(app).await, 3);

    // An organizer naming another organiser is refused; naming themselves is fine.
    let mut body = TestApp::event_body("For Otto", 10);
    body["organizer_id"] = json!(otto_id);
    assert_forbidden(&app.post("/api/events/", Some(&olga), body.clone()).await);
    body["organizer_id"] = json!(alice_id);
    assert_forbidden(&app.post("/api/events/", Some(&olga), body.clone()).await);
    assert_eq!(event_count(app).await, 3);
    body["organizer_id"] = json!(olga_id);
    let own = app.post("/api/events/", Some(&olga), body).await;
    own.assert(201);
    assert_eq!(own.body["organizer"], olga_id.as_str());

    // The unlisted field `organizer` is ignored, never honoured.
    let mut sneaky = TestApp::event_body("Sneaky", 10);
    sneaky["organizer"] = json!(otto_id);
    let reply = app.post("/api/events/", Some(&olga), sneaky).await;
    reply.assert(201);
    assert_eq!(reply.body["organizer"], olga_id.as_str());
    assert_eq!(event_count(app).await, 5);

    // Admin naming an unknown or malformed organiser → 400 on organizer_id.
    for bad in [json!(uuid::Uuid::new_v4().to_string()), json!("not-a-uuid")] {
        let mut body = TestApp::event_body("Ghost", 10);
        body["organizer_id"] = bad;
        assert_field_error(
            &app.post("/api/events/", Some(&admin), body).await,
            "organizer_id",
        );
    }
    assert_eq!(event_count(app).await, 5);

    // Admin and superuser naming another existing user (any role) → that organiser.
    for (token, owner) in [
        (admin.as_str(), alice_id.as_str()),
        (app.admin_token.as_str(), otto_id.as_str()),
    ] {
        let mut body = TestApp::event_body("Delegated", 10);
        body["organizer_id"] = json!(owner);
        let reply = app.post("/api/events/", Some(token), body).await;
        reply.assert(201);
        assert_eq!(reply.body["organizer"], owner);
        let detail = app.get(&format!("/api/events/{}/", reply.id()), None).await;
        assert_eq!(detail.body["organizer"], owner);
    }
    assert_eq!(event_count(app).await, 7);
    let otto_events = app
        .get(&format!("/api/events/?organizer={otto_id}"), None)
        .await;
    assert_eq!(otto_events.body["count"], 1);
}

async fn event_inputs_are_normalised(app: &TestApp) {
    let create = |status: Option<&str>| {
        let mut body = fixed_event("Status");
        if let Some(s) = status {
            body["status"] = json!(s);
        }
        app.post("/api/events/", app.admin(), body)
    };

    // Status: default, case-insensitive, `canceled` accepted, returned lower case.
    let reply = create(None).await;
    reply.assert(201);
    assert_eq!(reply.body["status"], "scheduled");
    for (sent, stored) in [
        ("CANCELED", "cancelled"),
        ("canceled", "cancelled"),
        ("Cancelled", "cancelled"),
        ("draft", "draft"),
        ("ONGOING", "ongoing"),
        ("completed", "completed"),
        ("Scheduled", "scheduled"),
    ] {
        let reply = create(Some(sent)).await;
        reply.assert(201);
        assert_eq!(reply.body["status"], stored, "status sent as {sent}");
    }
    let before = event_count(app).await;
    for bad in ["bogus", "", "cancel"] {
        assert_field_error(&create(Some(bad)).await, "status");
    }
    assert_eq!(event_count(app).await, before);

    // Datetimes: naive values (TIME_ZONE is UTC here) and offsets, out in UTC with Z.
    for (start, expected) in [
        ("2025-08-08 16:32", "2025-08-08T16:32:00Z"),
        ("2025-08-08 16:32:05", "2025-08-08T16:32:05Z"),
        ("2025-08-08T16:32", "2025-08-08T16:32:00Z"),
        ("2025-08-08T16:32:05", "2025-08-08T16:32:05Z"),
        ("2025-08-08T23:32:00+07:00", "2025-08-08T16:32:00Z"),
        ("2025-08-08T16:32:00Z", "2025-08-08T16:32:00Z"),
    ] {
        let mut body = fixed_event("Dates");
        body["start_time"] = json!(start);
        body["end_time"] = json!("2025-08-09 10:00");
        let reply = app.post("/api/events/", app.admin(), body).await;
        reply.assert(201);
        assert_eq!(
            reply.body["start_time"], expected,
            "start_time sent as {start}"
        );
        assert_eq!(reply.body["end_time"], "2025-08-09T10:00:00Z");
        let detail = app.get(&format!("/api/events/{}/", reply.id()), None).await;
        assert_eq!(detail.body["start_time"], expected);
    }

    // An end before the start is accepted, as existing clients send it.
    let mut body = fixed_event("Backwards");
    body["start_time"] = json!("2025-08-08T20:00:00Z");
    body["end_time"] = json!("2025-08-08T16:00:00Z");
    let reply = app.post("/api/events/", app.admin(), body).await;
    reply.assert(201);
    assert_eq!(reply.body["start_time"], "2025-08-08T20:00:00Z");
    assert_eq!(reply.body["end_time"], "2025-08-08T16:00:00Z");

    // Quota 0 and a name of exactly 255 characters are valid.
    let mut body = fixed_event(&"n".repeat(255));
    body["quota"] = json!(0);
    let reply = app.post("/api/events/", app.admin(), body).await;
    reply.assert(201);
    assert_eq!(reply.body["quota"], 0);
    assert_eq!(reply.body["name"].as_str().map(str::len), Some(255));
}

async fn invalid_event_bodies_write_nothing(app: &TestApp) {
    app.create_event(&app.admin_token, "Existing", 10).await;
    let before = event_count(app).await;

    // Each required field, missing.
    for field in [
        "name",
        "description",
        "location",
        "start_time",
        "end_time",
        "quota",
        "category",
    ] {
        let mut body = fixed_event("Missing");
        body.as_object_mut().expect("object").remove(field);
        assert_field_error(&app.post("/api/events/", app.admin(), body).await, field);
    }

    // Bad values, each reported on its field.
    let cases: Vec<(&str, Value)> = vec![
        ("quota", json!(-1)),
        ("quota", json!("abc")),
        ("quota", json!(1.5)),
        ("quota", json!(null)),
        ("start_time", json!("08/08/2025")),
        ("start_time", json!("2025-13-40 10:00")),
        ("end_time", json!("tomorrow")),
        ("name", json!("n".repeat(256))),
        ("location", json!("l".repeat(256))),
        ("category", json!("c".repeat(101))),
    ];
    for (field, value) in cases {
        let mut body = fixed_event("Invalid");
        body[field] = value.clone();
        let reply = app.post("/api/events/", app.admin(), body).await;
        assert_field_error(&reply, field);
        assert!(
            reply.body.get("id").is_none(),
            "{field}={value}: {}",
            reply.body
        );
    }

    // Several problems at once are all reported.
    let mut body = fixed_event("Two problems");
    body["quota"] = json!(-5);
    body["start_time"] = json!("08/08/2025");
    let reply = app.post("/api/events/", app.admin(), body).await;
    assert_field_error(&reply, "quota");
    assert_field_error(&reply, "start_time");

    // Wrong content type → 415.
    let res = app
        .client
        .post(app.url("/api/events/"))
        .bearer_auth(&app.admin_token)
        .header(CONTENT_TYPE, "text/plain")
        .body(fixed_event("Plain").to_string())
        .send()
        .await
        .expect("request sent");
    let reply = TestApp::reply(res).await;
    reply.assert(415);
    assert_eq!(
        reply.body,
        json!({ "detail": "Unsupported media type \"text/plain\" in request." })
    );

    // Broken JSON → 400 with a parse-error detail.
    let res = app
        .client
        .post(app.url("/api/events/"))
        .bearer_auth(&app.admin_token)
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"name": "Broken", "quota": "#)
        .send()
        .await
        .expect("request sent");
    let reply = TestApp::reply(res).await;
    reply.assert(400);
    let detail = reply.body["detail"].as_str().expect("detail");
    assert!(detail.starts_with("JSON parse error"), "detail: {detail}");

    assert_eq!(event_count(app).await, before, "nothing was written");
}

async fn who_may_update_events(app: &TestApp) {
    let (admin_id, admin) = app.user_in("boss", "admin").await;
    let (olga_id, olga) = app.user_in("olga", "organizer").await;
    let (otto_id, otto) = app.user_in("otto", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let id = app.create_event(&olga, "Rust Meetup", 50).await;
    let path = format!("/api/events/{id}/");

    // Warm the list and detail caches, then write: no stale reads after a 2xx.
    app.get("/api/events/", None).await.assert(200);
    app.get(&path, None).await.assert(200);

    // The owner: PATCH then PUT.
    let patched = app
        .patch(&path, Some(&olga), json!({ "name": "Rust Meetup #2" }))
        .await;
    patched.assert(200);
    assert_eq!(sorted_keys(&patched.body), sorted(&EVENT_FIELDS));
    assert_eq!(patched.body["name"], "Rust Meetup #2");
    assert_eq!(patched.body["quota"], 50, "PATCH is partial");
    assert_eq!(patched.body["organizer"], olga_id.as_str());
    let listed = app.get("/api/events/", None).await;
    assert_eq!(
        listed.body["events"][0]["name"], "Rust Meetup #2",
        "list not stale"
    );
    assert_eq!(app.get(&path, None).await.body["name"], "Rust Meetup #2");
    let mut full = fixed_event("Rust Meetup #3");
    full["status"] = json!("CANCELED");
    let put = app.put(&path, Some(&olga), full).await;
    put.assert(200);
    assert_eq!(put.body["name"], "Rust Meetup #3");
    assert_eq!(put.body["start_time"], "2025-08-08T16:32:00Z");
    assert_eq!(put.body["quota"], 120);
    assert_eq!(put.body["status"], "cancelled");
    assert_eq!(put.body["organizer"], olga_id.as_str());
    let detail = app.get(&path, None).await;
    assert_eq!(detail.body["name"], "Rust Meetup #3", "read after write");

    // An admin may update anyone's event.
    let patched = app
        .patch(&path, Some(&admin), json!({ "location": "Bandung" }))
        .await;
    patched.assert(200);
    assert_eq!(patched.body["location"], "Bandung");

    // Another organizer, a plain user, anonymous: refused, nothing changes.
    for token in [otto.as_str(), alice.as_str()] {
        assert_forbidden(
            &app.patch(&path, Some(token), json!({ "name": "Hijacked" }))
                .await,
        );
        assert_forbidden(&app.put(&path, Some(token), fixed_event("Hijacked")).await);
        // Permission is checked before validation.
        assert_forbidden(&app.patch(&path, Some(token), json!({ "quota": -1 })).await);
    }
    // Plain users are refused before their body is looked at.
    assert_forbidden(&app.post("/api/events/", Some(&alice), json!({})).await);
    assert_unauthorized(&app.patch(&path, None, json!({ "name": "Hijacked" })).await);
    // Existence is checked before permission.
    assert_not_found(
        &app.patch(
            &format!("/api/events/{}/", uuid::Uuid::new_v4()),
            Some(&alice),
            json!({ "name": "x" }),
        )
        .await,
    );

    // The owner may not hand the event over; naming themselves changes nothing.
    assert_forbidden(
        &app.patch(&path, Some(&olga), json!({ "organizer_id": otto_id }))
            .await,
    );
    let mut full = fixed_event("Handed over");
    full["organizer_id"] = json!(otto_id);
    assert_forbidden(&app.put(&path, Some(&olga), full).await);
    let same = app
        .patch(&path, Some(&olga), json!({ "organizer_id": olga_id }))
        .await;
    same.assert(200);
    assert_eq!(same.body["organizer"], olga_id.as_str());

    let detail = app.get(&path, None).await;
    assert_eq!(detail.body["name"], "Rust Meetup #3");
    assert_eq!(detail.body["location"], "Bandung");
    assert_eq!(detail.body["organizer"], olga_id.as_str());

    // Validation on update: nothing changes.
    assert_field_error(
        &app.patch(&path, Some(&olga), json!({ "quota": -1 })).await,
        "quota",
    );
    assert_field_error(
        &app.patch(&path, Some(&olga), json!({ "status": "bogus" }))
            .await,
        "status",
    );
    assert_field_error(
        &app.patch(
            &path,
            Some(&admin),
            json!({ "organizer_id": uuid::Uuid::new_v4().to_string() }),
        )
        .await,
        "organizer_id",
    );
    let detail = app.get(&path, None).await;
    assert_eq!(detail.body["quota"], 120);
    assert_eq!(detail.body["status"], "cancelled");
    assert_eq!(detail.body["organizer"], olga_id.as_str());

    // Admin and superuser may change the organiser.
    let moved = app
        .patch(&path, Some(&admin), json!({ "organizer_id": otto_id }))
        .await;
    moved.assert(200);
    assert_eq!(moved.body["organizer"], otto_id.as_str());
    // Now Otto manages it and Olga does not.
    app.patch(&path, Some(&otto), json!({ "name": "Otto's" }))
        .await
        .assert(200);
    assert_forbidden(
        &app.patch(&path, Some(&olga), json!({ "name": "Olga's" }))
            .await,
    );
    let moved = app
        .patch(&path, app.admin(), json!({ "organizer_id": admin_id }))
        .await;
    moved.assert(200);
    assert_eq!(moved.body["organizer"], admin_id.as_str());
}

async fn put_needs_every_field_but_status_and_organizer(app: &TestApp) {
    let (olga_id, olga) = app.user_in("olga", "organizer").await;
    let id = app.create_event(&olga, "Original", 50).await;
    let path = format!("/api/events/{id}/");

    for field in [
        "name",
        "description",
        "location",
        "start_time",
        "end_time",
        "quota",
        "category",
    ] {
        let mut body = fixed_event("Replaced");
        body.as_object_mut().expect("object").remove(field);
        assert_field_error(&app.put(&path, Some(&olga), body).await, field);
    }
    let detail = app.get(&path, None).await;
    assert_eq!(
        detail.body["name"], "Original",
        "refused PUTs change nothing"
    );
    assert_eq!(detail.body["quota"], 50);

    // Without status and organizer_id it is complete.
    let put = app.put(&path, Some(&olga), fixed_event("Replaced")).await;
    put.assert(200);
    assert_eq!(put.body["name"], "Replaced");
    assert_eq!(put.body["quota"], 120);
    assert_eq!(put.body["organizer"], olga_id.as_str());

    // The same route without the trailing slash.
    let put = app
        .put(
            &format!("/api/events/{id}"),
            Some(&olga),
            fixed_event("No slash"),
        )
        .await;
    put.assert(200);
    assert_eq!(put.body["name"], "No slash");
}

async fn who_may_delete_events_and_what_goes_with_them(app: &TestApp) {
    let (_admin_id, admin) = app.user_in("boss", "admin").await;
    let (_olga_id, olga) = app.user_in("olga", "organizer").await;
    let (_otto_id, otto) = app.user_in("otto", "organizer").await;
    let (_alice_id, alice) = app.user("alice").await;
    let id = app.create_event(&olga, "Doomed", 50).await;
    let ticket = app.create_ticket(&olga, &id, 10).await;
    let registration = app.register(&alice, &ticket).await;
    registration.assert(201);
    let registration_id = registration.id();
    let payment = app
        .post(
            "/api/payments/",
            Some(&alice),
            json!({ "registration_id": registration_id, "payment_method": "QRIS", "amount_paid": 10 }),
        )
        .await;
    payment.assert(201);
    let path = format!("/api/events/{id}/");

    assert_forbidden(&app.delete(&path, Some(&otto)).await);
    assert_forbidden(&app.delete(&path, Some(&alice)).await);
    assert_unauthorized(&app.delete(&path, None).await);
    app.get(&path, None).await.assert(200);
    app.get(&format!("/api/tickets/{ticket}/"), None)
        .await
        .assert(200);

    let deleted = app.delete(&path, Some(&olga)).await;
    deleted.assert(204);
    assert_eq!(deleted.body, Value::Null, "204 has no body");
    assert_not_found(&app.get(&path, None).await);
    assert_not_found(&app.get(&format!("/api/tickets/{ticket}/"), None).await);
    let tickets = app.get(&format!("/api/tickets/?event={id}"), None).await;
    tickets.assert(200);
    assert_eq!(tickets.body["count"], 0);
    assert_not_found(
        &app.get(
            &format!("/api/registrations/{registration_id}/"),
            app.admin(),
        )
        .await,
    );
    assert_not_found(
        &app.get(&format!("/api/payments/{}/", payment.id()), app.admin())
            .await,
    );
    let payments = app.get("/api/payments/", app.admin()).await;
    assert_eq!(payments.body["count"], 0);
    assert_not_found(&app.delete(&path, Some(&olga)).await);

    // An admin deletes anyone's event.
    let other = app.create_event(&olga, "Also doomed", 5).await;
    app.delete(&format!("/api/events/{other}"), Some(&admin))
        .await
        .assert(204);
    assert_eq!(event_count(app).await, 0);
}

fn names(reply: &crate::helpers::Reply) -> Vec<String> {
    reply.assert(200);
    reply.body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {}", reply.body))
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn event_filters_and_ordering(app: &TestApp) {
    let (olga_id, olga) = app.user_in("olga", "organizer").await;
    // (name, description, location, start, category, status, quota, by olga)
    let rows = [
        (
            "Bravo",
            "rust workshop",
            "Jakarta Convention Center",
            "2030-01-02T10:00:00Z",
            "Tech",
            "scheduled",
            30,
            true,
        ),
        (
            "Alpha",
            "jazz night",
            "Bandung",
            "2030-01-04T10:00:00Z",
            "Music",
            "draft",
            10,
            false,
        ),
        (
            "Delta",
            "Rust and wasm",
            "Surabaya",
            "2030-01-01T10:00:00Z",
            "tech",
            "cancelled",
            40,
            false,
        ),
        (
            "Charlie",
            "cooking",
            "West Jakarta hall",
            "2030-01-03T10:00:00Z",
            "Food",
            "scheduled",
            20,
            true,
        ),
    ];
    for (name, description, location, start, category, status, quota, by_olga) in rows {
        let token = if by_olga {
            olga.clone()
        } else {
            app.admin_token.clone()
        };
        app.post(
            "/api/events/",
            Some(&token),
            json!({
                "name": name,
                "description": description,
                "location": location,
                "start_time": start,
                "end_time": "2030-02-01T00:00:00Z",
                "category": category,
                "status": status,
                "quota": quota,
            }),
        )
        .await
        .assert(201);
    }
    let get = |query: &str| {
        let path = format!("/api/events/?{query}");
        async move { app.get(&path, None).await }
    };

    // Default ordering: start_time ascending.
    assert_eq!(
        names(&app.get("/api/events/", None).await),
        ["Delta", "Bravo", "Charlie", "Alpha"]
    );
    // Category: exact, case-insensitive.
    assert_eq!(names(&get("category=TECH").await), ["Delta", "Bravo"]);
    assert_eq!(names(&get("category=music").await), ["Alpha"]);
    assert!(
        names(&get("category=Te").await).is_empty(),
        "exact, not contains"
    );
    // Status.
    assert_eq!(names(&get("status=scheduled").await), ["Bravo", "Charlie"]);
    assert_eq!(names(&get("status=draft").await), ["Alpha"]);
    assert_eq!(names(&get("status=cancelled").await), ["Delta"]);
    assert!(names(&get("status=completed").await).is_empty());
    // Organizer.
    assert_eq!(
        names(&get(&format!("organizer={olga_id}")).await),
        ["Bravo", "Charlie"]
    );
    assert_eq!(
        names(&get(&format!("organizer={}", app.superuser_id)).await),
        ["Delta", "Alpha"]
    );
    assert!(names(&get(&format!("organizer={}", uuid::Uuid::new_v4())).await).is_empty());
    // Location: contains.
    assert_eq!(names(&get("location=Jakarta").await), ["Bravo", "Charlie"]);
    assert_eq!(names(&get("location=Surabaya").await), ["Delta"]);
    // Search: name or description contains.
    assert_eq!(names(&get("search=ust").await), ["Delta", "Bravo"]);
    assert_eq!(names(&get("search=Alph").await), ["Alpha"]);
    assert_eq!(names(&get("search=cooking").await), ["Charlie"]);
    assert!(names(&get("search=nothing-like-this").await).is_empty());
    // A phrase: its words together and in its order, not each somewhere.
    assert_eq!(names(&get("search=RUST%20AND").await), ["Delta"]);
    assert_eq!(names(&get("search=and%20wasm").await), ["Delta"]);
    assert_eq!(names(&get("search=st%20an").await), ["Delta"], "word edges");
    assert!(names(&get("search=wasm%20and%20rust").await).is_empty());
    assert!(
        names(&get("search=delta%20rust").await).is_empty(),
        "not across the name and the description"
    );
    assert!(
        names(&get("search=%25").await).is_empty(),
        "% matches itself"
    );
    // A search's pages, a page past the end being the last one.
    let second = get("search=ust&page_size=1&page=2").await;
    assert_eq!(names(&second), ["Bravo"]);
    assert_eq!(second.body["count"], 2);
    let past = get("search=ust&page_size=1&page=9").await;
    assert_eq!(names(&past), ["Bravo"]);
    assert_eq!(
        (past.body["page"].clone(), past.body["count"].clone()),
        (json!(2), json!(2))
    );
    // Start window.
    assert_eq!(
        names(&get("start_after=2030-01-02T12:00:00Z").await),
        ["Charlie", "Alpha"]
    );
    assert_eq!(
        names(&get("start_before=2030-01-02T12:00:00Z").await),
        ["Delta", "Bravo"]
    );
    assert_eq!(
        names(&get("start_after=2030-01-01T12:00:00Z&start_before=2030-01-03T12:00:00Z").await),
        ["Bravo", "Charlie"]
    );
    assert_eq!(
        names(&get("start_after=2030-01-03%2012:00").await),
        ["Alpha"],
        "a naive datetime is accepted"
    );
    // Filters combine.
    assert_eq!(
        names(&get("category=tech&status=scheduled").await),
        ["Bravo"]
    );
    let combined = get(&format!("organizer={olga_id}&location=Jakarta&search=cook")).await;
    assert_eq!(names(&combined), ["Charlie"]);
    assert_eq!(combined.body["count"], 1);

    // Ordering.
    for (ordering, expected) in [
        ("start_time", ["Delta", "Bravo", "Charlie", "Alpha"]),
        ("-start_time", ["Alpha", "Charlie", "Bravo", "Delta"]),
        ("name", ["Alpha", "Bravo", "Charlie", "Delta"]),
        ("-name", ["Delta", "Charlie", "Bravo", "Alpha"]),
        ("created_at", ["Bravo", "Alpha", "Delta", "Charlie"]),
        ("-created_at", ["Charlie", "Delta", "Alpha", "Bravo"]),
        ("quota", ["Alpha", "Charlie", "Bravo", "Delta"]),
        ("-quota", ["Delta", "Bravo", "Charlie", "Alpha"]),
    ] {
        assert_eq!(
            names(&get(&format!("ordering={ordering}")).await),
            expected,
            "ordering={ordering}"
        );
    }
    assert_eq!(
        names(&get("status=scheduled&ordering=-name").await),
        ["Charlie", "Bravo"]
    );

    // Bad filter values → 400 naming the parameter.
    for (param, value) in [
        ("status", "bogus"),
        ("start_after", "notadate"),
        ("start_before", "08/08/2025"),
        ("organizer", "not-a-uuid"),
    ] {
        assert_field_error(&get(&format!("{param}={value}")).await, param);
    }
}

async fn event_pagination(app: &TestApp) {
    for i in 0..5 {
        let mut body = fixed_event(&format!("Event {i}"));
        body["start_time"] = json!(format!("2030-01-0{}T10:00:00Z", i + 1));
        app.post("/api/events/", app.admin(), body)
            .await
            .assert(201);
    }
    let page = |query: &str| {
        let path = format!("/api/events/?{query}");
        async move { app.get(&path, None).await }
    };

    let first = page("page_size=2").await;
    assert_eq!(names(&first), ["Event 0", "Event 1"]);
    assert_eq!(first.body["count"], 5);
    assert_eq!(first.body["page"], 1);
    assert_eq!(first.body["page_size"], 2);
    assert_eq!(first.body["total_pages"], 3);
    assert_eq!(first.body["previous"], Value::Null);
    let next = first.body["next"].as_str().expect("next link");
    assert!(next.contains("page=2"), "next: {next}");
    assert!(next.contains("page_size=2"), "next keeps page_size: {next}");
    assert!(
        next.contains("/api/events/?"),
        "next links to this list: {next}"
    );

    let second = page("page_size=2&page=2").await;
    assert_eq!(names(&second), ["Event 2", "Event 3"]);
    assert_eq!(second.body["page"], 2);
    assert!(
        second.body["previous"]
            .as_str()
            .is_some_and(|p| p.contains("page=1") || !p.contains("page=")),
        "previous: {}",
        second.body["previous"]
    );
    assert!(
        second.body["next"]
            .as_str()
            .is_some_and(|n| n.contains("page=3"))
    );

    // A page past the end is the last page, not 404.
    for query in ["page_size=2&page=3", "page_size=2&page=99"] {
        let last = page(query).await;
        assert_eq!(names(&last), ["Event 4"], "{query}");
        assert_eq!(last.body["page"], 3);
        assert_eq!(last.body["next"], Value::Null);
        assert!(last.body["previous"].is_string());
    }
    // Non-numeric or < 1 → page 1.
    for query in [
        "page_size=2&page=abc",
        "page_size=2&page=0",
        "page_size=2&page=-1",
    ] {
        let reply = page(query).await;
        assert_eq!(names(&reply), ["Event 0", "Event 1"], "{query}");
        assert_eq!(reply.body["page"], 1);
    }
    // page_size is capped at 100.
    let big = page("page_size=1000").await;
    assert_eq!(big.body["page_size"], 100);
    assert_eq!(names(&big).len(), 5);
    // Following `next` links walks every event once.
    let mut seen = Vec::new();
    let mut url = Some(app.url("/api/events/?page_size=2&ordering=-start_time"));
    while let Some(u) = url {
        let res = app.client.get(&u).send().await.expect("request sent");
        let reply = TestApp::reply(res).await;
        assert_eq!(reply.status.as_u16(), 200, "GET {u}: {}", reply.body);
        seen.extend(names(&reply));
        url = reply.body["next"].as_str().map(|n| {
            if n.starts_with("http") {
                n.to_owned()
            } else {
                app.url(n)
            }
        });
        assert!(seen.len() <= 5, "pagination loops: {seen:?}");
    }
    assert_eq!(
        seen,
        ["Event 4", "Event 3", "Event 2", "Event 1", "Event 0"]
    );
}

/// `ordering` takes several fields (`-start_time,name`); a bad `status` or
/// ordering names the values allowed.
async fn several_ordering_fields_and_named_choices(app: &TestApp) {
    let start = "2031-03-01T10:00:00Z";
    for (name, start_time) in [
        ("Beta", start),
        ("Alpha", start),
        ("Gamma", "2031-02-01T10:00:00Z"),
    ] {
        let mut body = TestApp::event_body(name, 10);
        body["start_time"] = json!(start_time);
        app.post("/api/events/", app.admin(), body)
            .await
            .assert(201);
    }
    let names = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let reply = app
        .get("/api/events/?ordering=-start_time,name", None)
        .await;
    reply.assert(200);
    assert_eq!(names(&reply), ["Alpha", "Beta", "Gamma"]);
    let reply = app
        .get("/api/events/?ordering=start_time,-name", None)
        .await;
    assert_eq!(names(&reply), ["Gamma", "Beta", "Alpha"]);

    let bad = app.get("/api/events/?status=bogus", None).await;
    assert_field_error(&bad, "status");
    let message = bad.body["status"][0].as_str().unwrap_or_default();
    assert_eq!(
        message,
        "Select a valid choice. bogus is not one of the available choices: draft, scheduled, ongoing, completed, cancelled."
    );
    let bad = app.get("/api/events/?ordering=name,size", None).await;
    assert_field_error(&bad, "ordering");
    assert!(
        bad.body["ordering"][0]
            .as_str()
            .is_some_and(|m| m.contains("start_time, name, created_at, quota")),
        "{}",
        bad.body
    );
}
