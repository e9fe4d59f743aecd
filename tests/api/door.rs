//! The door of one event (API.md §7, "Scans are made at one door of one
//! event"): scans that name their event, the admission window, answers that
//! say whose ticket it is, short codes, admission by name, and the door's
//! search.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::console::event_at_the_door;
use crate::helpers::{Reply, TestApp, postgres_url};

crate::backend_tests!(
    scans_at_a_named_door,
    the_admission_window,
    short_codes_are_printed_and_accepted,
    admission_by_name,
    the_door_finds_people,
);

/// An organiser's event at its door (starting in an hour), with a free and
/// a priced ticket, and an attendee holding one of each.
struct Door {
    organizer: String,
    event: String,
    free: String,
    priced: String,
    attendee: String,
    username: String,
}

async fn door(app: &TestApp, prefix: &str) -> Door {
    let (_, organizer) = app.user_in(&format!("{prefix}org"), "organizer").await;
    let (event, free_ticket, priced_ticket) =
        event_at_the_door(app, &organizer, &format!("{prefix} night")).await;
    let username = format!("{prefix}guest");
    let (guest, attendee) = app.user(&username).await;
    app.patch(
        &format!("/api/users/{guest}/"),
        Some(&attendee),
        json!({"first_name": "Siti", "last_name": format!("{prefix}rahma")}),
    )
    .await
    .assert(200);
    let free = app.register(&attendee, &free_ticket).await;
    free.assert(201);
    let priced = app.register(&attendee, &priced_ticket).await;
    priced.assert(201);
    Door {
        organizer,
        event,
        free: free.id(),
        priced: priced.id(),
        attendee,
        username,
    }
}

async fn ticket_of(app: &TestApp, token: &str, registration: &str) -> Value {
    let reply = app
        .get(
            &format!("/api/registrations/{registration}/ticket/"),
            Some(token),
        )
        .await;
    reply.assert(200);
    reply.body
}

async fn code_of(app: &TestApp, token: &str, registration: &str) -> String {
    ticket_of(app, token, registration).await["code"]
        .as_str()
        .expect("code")
        .to_owned()
}

async fn scan(app: &TestApp, token: &str, body: Value) -> Reply {
    app.post("/api/checkins/", Some(token), body).await
}

#[track_caller]
fn refused(reply: &Reply, status: u16, reason: &str) {
    reply.assert(status);
    assert_eq!(reply.body["reason"], reason, "{}", reply.body);
}

/// The answer says whose ticket it is.
#[track_caller]
fn names(reply: &Reply, d: &Door, registration: &str, ticket_name: &str) {
    let body = &reply.body;
    assert_eq!(body["registration"], registration, "{body}");
    assert_eq!(body["user"]["username"], d.username.as_str(), "{body}");
    assert_eq!(body["user"]["first_name"], "Siti", "{body}");
    assert_eq!(body["ticket_name"], ticket_name, "{body}");
    assert_eq!(body["event"], d.event.as_str(), "{body}");
    assert!(
        body["event_name"]
            .as_str()
            .is_some_and(|n| n.ends_with(" night")),
        "{body}"
    );
}

async fn checkins_of(app: &TestApp, event: &str) -> Value {
    let reply = app
        .get(&format!("/api/checkins/?event={event}"), app.admin())
        .await;
    reply.assert(200);
    reply.body
}

async fn scans_at_a_named_door(app: &TestApp) {
    let d = door(app, "named").await;
    let free_code = code_of(app, &d.attendee, &d.free).await;
    let priced_code = code_of(app, &d.attendee, &d.priced).await;
    // The same organiser's other event, and another organiser's.
    let (other, other_free, _) = event_at_the_door(app, &d.organizer, "Other night").await;
    let elsewhere = app.register(&d.attendee, &other_free).await;
    elsewhere.assert(201);
    let elsewhere_code = code_of(app, &d.attendee, &elsewhere.id()).await;
    let (_, stranger) = app.user_in("namedstranger", "organizer").await;
    let (_, theirs_free, _) = event_at_the_door(app, &stranger, "Their night").await;
    let theirs = app.register(&d.attendee, &theirs_free).await;
    theirs.assert(201);
    let theirs_code = code_of(app, &d.attendee, &theirs.id()).await;

    // Bad requests first, nothing recorded.
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": free_code, "event": "nope"}),
    )
    .await;
    reply.assert(400);
    assert!(reply.body["event"].is_array(), "{}", reply.body);
    let missing = "0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a";
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": free_code, "event": missing}),
    )
    .await;
    reply.assert(400);
    assert_eq!(
        reply.body["event"][0],
        format!("Invalid pk \"{missing}\" - object does not exist.")
    );
    // A door the caller does not run: 403, whatever the code.
    let reply = scan(app, &stranger, json!({"code": free_code, "event": d.event})).await;
    refused(&reply, 403, "forbidden");
    assert!(reply.body.get("user").is_none(), "{}", reply.body);
    let (_, plain) = app.user("namedplain").await;
    refused(
        &scan(app, &plain, json!({"code": free_code, "event": d.event})).await,
        403,
        "forbidden",
    );
    // A bad code is still a bad code.
    refused(
        &scan(
            app,
            &d.organizer,
            json!({"code": "DE1.AAAA.BBBB", "event": d.event}),
        )
        .await,
        400,
        "invalid_code",
    );
    assert_eq!(checkins_of(app, &d.event).await["count"], 0);

    // Another event's ticket: its name, and whose it is when the caller
    // runs that event too.
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": elsewhere_code, "event": d.event}),
    )
    .await;
    refused(&reply, 409, "wrong_event");
    assert_eq!(
        reply.body["detail"],
        "Ticket is for another event: Other night."
    );
    assert_eq!(reply.body["user"]["username"], d.username.as_str());
    assert_eq!(reply.body["event"], other.as_str());
    // Someone else's event: its name only, not who holds the ticket.
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": theirs_code, "event": d.event}),
    )
    .await;
    refused(&reply, 409, "wrong_event");
    assert_eq!(
        reply.body["detail"],
        "Ticket is for another event: Their night."
    );
    assert!(reply.body.get("user").is_none(), "{}", reply.body);
    assert_eq!(checkins_of(app, &d.event).await["count"], 0);
    assert_eq!(checkins_of(app, &other).await["count"], 0);

    // Unpaid: named, and forced by the manager.
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": priced_code, "event": d.event}),
    )
    .await;
    refused(&reply, 409, "unpaid");
    assert_eq!(reply.body["detail"], "Payment not completed.");
    names(&reply, &d, &d.priced, "Regular");

    // Admitted: the answer names the person, ticket type and event.
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": free_code, "event": d.event}),
    )
    .await;
    reply.assert(201);
    assert_eq!(reply.body["method"], "scan");
    assert_eq!(reply.body["forced"], false);
    names(&reply, &d, &d.free, "Free entry");
    let again = scan(
        app,
        &d.organizer,
        json!({"code": free_code, "event": d.event}),
    )
    .await;
    refused(&again, 409, "already_checked_in");
    names(&again, &d, &d.free, "Free entry");
    assert!(again.body["checked_in_at"].is_string());

    // Superuser and admin run every door.
    let (_, admin) = app.user_in("namedadmin", "admin").await;
    let reply = scan(app, &admin, json!({"code": elsewhere_code, "event": other})).await;
    reply.assert(201);
    assert_eq!(reply.body["event_name"], "Other night");
    let reply = scan(
        app,
        app.admin().expect("superuser"),
        json!({"code": priced_code, "event": d.event, "force": true}),
    )
    .await;
    reply.assert(201);
    assert_eq!(reply.body["forced"], true);

    // A cancelled event: named too.
    let (cancelled, cancelled_free, _) =
        event_at_the_door(app, &d.organizer, "Cancelled night").await;
    let gone = app.register(&d.attendee, &cancelled_free).await;
    gone.assert(201);
    let gone_code = code_of(app, &d.attendee, &gone.id()).await;
    app.patch(
        &format!("/api/events/{cancelled}/"),
        Some(&d.organizer),
        json!({"status": "cancelled"}),
    )
    .await
    .assert(200);
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": gone_code, "event": cancelled}),
    )
    .await;
    refused(&reply, 409, "event_cancelled");
    assert_eq!(reply.body["user"]["username"], d.username.as_str());
    // The list shows how each was made, with names.
    let list = checkins_of(app, &d.event).await;
    assert_eq!(list["count"], 2);
    for c in list["checkins"].as_array().expect("checkins") {
        assert_eq!(c["method"], "scan");
        assert_eq!(c["event_name"], "named night");
        assert!(c["ticket_name"].is_string());
    }
}

/// Moves an event to start `from_now` and last three hours.
async fn move_event(app: &TestApp, d: &Door, from_now: chrono::Duration) {
    let start = chrono::Utc::now() + from_now;
    app.patch(
        &format!("/api/events/{}/", d.event),
        Some(&d.organizer),
        json!({
            "start_time": start.to_rfc3339(),
            "end_time": (start + chrono::Duration::hours(3)).to_rfc3339(),
        }),
    )
    .await
    .assert(200);
}

async fn the_admission_window(app: &TestApp) {
    let d = door(app, "window").await;
    let free_code = code_of(app, &d.attendee, &d.free).await;
    let priced_code = code_of(app, &d.attendee, &d.priced).await;
    // Seven hours before the start: the door (6 h before) is not open.
    move_event(app, &d, chrono::Duration::hours(7)).await;
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": free_code, "event": d.event}),
    )
    .await;
    refused(&reply, 409, "not_yet_valid");
    names(&reply, &d, &d.free, "Free entry");
    let opens_at =
        chrono::DateTime::parse_from_rfc3339(reply.body["opens_at"].as_str().expect("opens_at"))
            .expect("RFC 3339");
    let expected = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(
        (opens_at.with_timezone(&chrono::Utc) - expected)
            .num_seconds()
            .abs()
            < 60,
        "{}",
        reply.body
    );
    assert!(
        reply.body["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Ticket is not valid yet: admission opens at ")),
        "{}",
        reply.body
    );
    // A scan that does not name its event is answered as before.
    let legacy = scan(app, &d.organizer, json!({"code": free_code})).await;
    legacy.assert(201);
    app.delete(
        &format!("/api/checkins/{}/", legacy.body["id"].as_str().expect("id")),
        Some(&d.organizer),
    )
    .await
    .assert(204);
    // The manager may force it (recorded as forced).
    let forced = scan(
        app,
        &d.organizer,
        json!({"code": free_code, "event": d.event, "force": true}),
    )
    .await;
    forced.assert(201);
    assert_eq!(forced.body["forced"], true);

    // Over: event_ended, before the payment is even looked at.
    move_event(app, &d, -chrono::Duration::hours(4)).await;
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": priced_code, "event": d.event}),
    )
    .await;
    refused(&reply, 409, "event_ended");
    assert_eq!(reply.body["detail"], "Event has ended.");
    assert!(reply.body["ended_at"].is_string());
    names(&reply, &d, &d.priced, "Regular");
    // An offline scan is judged by its own time: the event ends in a
    // minute; a scan dated two minutes ahead (a door app's clock running
    // fast) is after the end, one dated now is not.
    let start = chrono::Utc::now() - chrono::Duration::hours(2);
    app.patch(
        &format!("/api/events/{}/", d.event),
        Some(&d.organizer),
        json!({
            "start_time": start.to_rfc3339(),
            "end_time": (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339(),
        }),
    )
    .await
    .assert(200);
    let late = (chrono::Utc::now() + chrono::Duration::minutes(2)).to_rfc3339();
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": priced_code, "event": d.event, "scanned_at": late}),
    )
    .await;
    refused(&reply, 409, "event_ended");
    let now = chrono::Utc::now().to_rfc3339();
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": priced_code, "event": d.event, "scanned_at": now}),
    )
    .await;
    refused(&reply, 409, "unpaid");
    let reply = scan(
        app,
        &d.organizer,
        json!({"code": priced_code, "event": d.event, "scanned_at": now, "force": true}),
    )
    .await;
    reply.assert(201);
    assert_eq!(reply.body["offline"], true);
    assert_eq!(reply.body["forced"], true);
    assert_eq!(checkins_of(app, &d.event).await["count"], 2);
}

async fn short_codes_are_printed_and_accepted(app: &TestApp) {
    let d = door(app, "short").await;
    let ticket = ticket_of(app, &d.attendee, &d.free).await;
    let short = ticket["short_code"]
        .as_str()
        .expect("short_code")
        .to_owned();
    let shape =
        regex::Regex::new("^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{2}$")
            .expect("regex");
    assert!(shape.is_match(&short), "{short}");
    // The organiser sees the same; every registration has its own.
    assert_eq!(
        ticket_of(app, &d.organizer, &d.free).await["short_code"],
        short.as_str()
    );
    let other = ticket_of(app, &d.attendee, &d.priced).await["short_code"].clone();
    assert_ne!(other, short.as_str());
    // Nobody's code: refused as not a ticket of ours.
    let unknown = if short == "0000-0000-00" {
        "0000-0000-01"
    } else {
        "0000-0000-00"
    };
    refused(
        &scan(
            app,
            &d.organizer,
            json!({"code": unknown, "event": d.event}),
        )
        .await,
        400,
        "invalid_code",
    );
    refused(
        &scan(
            app,
            &d.organizer,
            json!({"code": "7KQ4-M2XD-9U", "event": d.event}),
        )
        .await,
        400,
        "invalid_code",
    );
    // Typed in lower case without dashes: admitted, as a scan.
    let typed = short.replace('-', "").to_lowercase();
    let reply = scan(app, &d.organizer, json!({"code": typed, "event": d.event})).await;
    reply.assert(201);
    assert_eq!(reply.body["registration"], d.free.as_str());
    assert_eq!(reply.body["method"], "scan");
    // Read aloud with spaces, as a door app without the event: the same
    // registration, so already in.
    let spaced = format!("{} {} {}", &short[0..4], &short[5..9], &short[10..12]);
    refused(
        &scan(app, &d.organizer, json!({"code": spaced})).await,
        409,
        "already_checked_in",
    );
    // Another organiser learns nothing from a short code.
    let (_, stranger) = app.user_in("shortstranger", "organizer").await;
    let reply = scan(app, &stranger, json!({"code": short})).await;
    refused(&reply, 403, "forbidden");
    assert!(reply.body.get("user").is_none());
    // Unique in the database: a copy is refused by a constraint.
    let db = app.state.db.conn();
    let copy = db
        .execute_unprepared(
            "UPDATE registrations SET short_code = (SELECT min(short_code) FROM registrations) \
             WHERE short_code <> (SELECT min(short_code) FROM registrations)",
        )
        .await;
    assert!(copy.is_err(), "two registrations with one short code");
    // The mail carries it too: see mail.rs; My tickets: see console_manage.
}

async fn admission_by_name(app: &TestApp) {
    let d = door(app, "manual").await;
    let (other, other_free, _) = event_at_the_door(app, &d.organizer, "Manual other").await;
    let elsewhere = app.register(&d.attendee, &other_free).await;
    elsewhere.assert(201);
    let before = checkins_of(app, &d.event).await["count"].clone();
    // Bad requests: refused with their field, nothing written.
    let reply = scan(app, &d.organizer, json!({"registration": d.free})).await;
    reply.assert(400);
    assert!(reply.body["event"].is_array(), "{}", reply.body);
    let code = code_of(app, &d.attendee, &d.free).await;
    let reply = scan(
        app,
        &d.organizer,
        json!({"registration": d.free, "code": code, "event": d.event}),
    )
    .await;
    reply.assert(400);
    assert!(reply.body["non_field_errors"].is_array(), "{}", reply.body);
    let reply = scan(
        app,
        &d.organizer,
        json!({"registration": "nope", "event": d.event}),
    )
    .await;
    reply.assert(400);
    assert!(reply.body["registration"].is_array(), "{}", reply.body);
    assert_eq!(checkins_of(app, &d.event).await["count"], before);
    // Nobody's registration; another event's; someone who does not run
    // the door.
    refused(
        &scan(
            app,
            &d.organizer,
            json!({"registration": "0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a", "event": d.event}),
        )
        .await,
        404,
        "revoked",
    );
    let reply = scan(
        app,
        &d.organizer,
        json!({"registration": elsewhere.id(), "event": d.event}),
    )
    .await;
    refused(&reply, 409, "wrong_event");
    assert_eq!(
        reply.body["detail"],
        "Ticket is for another event: Manual other."
    );
    refused(
        &scan(
            app,
            &d.attendee,
            json!({"registration": d.free, "event": d.event}),
        )
        .await,
        403,
        "forbidden",
    );
    // Unpaid needs force, as a scan.
    let reply = scan(
        app,
        &d.organizer,
        json!({"registration": d.priced, "event": d.event}),
    )
    .await;
    refused(&reply, 409, "unpaid");
    names(&reply, &d, &d.priced, "Regular");
    // Admitted, recorded as manual; once.
    let reply = scan(
        app,
        &d.organizer,
        json!({"registration": d.free, "event": d.event}),
    )
    .await;
    reply.assert(201);
    assert_eq!(reply.body["method"], "manual");
    names(&reply, &d, &d.free, "Free entry");
    refused(
        &scan(app, &d.organizer, json!({"code": code, "event": d.event})).await,
        409,
        "already_checked_in",
    );
    let (_, admin) = app.user_in("manualadmin", "admin").await;
    let reply = scan(
        app,
        &admin,
        json!({"registration": elsewhere.id(), "event": other}),
    )
    .await;
    reply.assert(201);
    assert_eq!(reply.body["method"], "manual");
    let list = checkins_of(app, &d.event).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["checkins"][0]["method"], "manual");
}

async fn the_door_finds_people(app: &TestApp) {
    let d = door(app, "find").await;
    let (_, other_guest) = app.user("findwalkin").await;
    let tickets = app
        .get(&format!("/api/tickets/?event={}", d.event), app.admin())
        .await;
    let free_ticket = tickets.body["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .find(|t| t["name"] == "Free entry")
        .expect("free ticket")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let walkin = app.register(&other_guest, &free_ticket).await;
    walkin.assert(201);
    let path = |q: &str| format!("/api/events/{}/attendees/{q}", d.event);

    // Everyone, in registration order, with what the door needs.
    let all = app.get(&path(""), Some(&d.organizer)).await;
    all.assert(200);
    assert_eq!(all.body["count"], 3, "{}", all.body);
    let first = &all.body["attendees"][0];
    assert_eq!(first["registration"], d.free.as_str());
    assert_eq!(first["user"]["username"], d.username.as_str());
    assert_eq!(
        first["user"]["email"],
        format!("{}@example.com", d.username)
    );
    assert_eq!(first["ticket_name"], "Free entry");
    assert_eq!(first["payment_status"], Value::Null);
    assert_eq!(first["paid"], true, "a free ticket needs no payment");
    assert_eq!(first["checked_in_at"], Value::Null);
    assert!(first["short_code"].is_string());
    let priced = &all.body["attendees"][1];
    assert_eq!(priced["paid"], false);

    // By part of a name (any case), of an e-mail, or by short code.
    let by_name = app.get(&path("?search=FINDRAH"), Some(&d.organizer)).await;
    assert_eq!(by_name.body["count"], 2, "{}", by_name.body);
    let by_mail = app
        .get(&path("?search=walkin@exa"), Some(&d.organizer))
        .await;
    assert_eq!(by_mail.body["count"], 1, "{}", by_mail.body);
    assert_eq!(by_mail.body["attendees"][0]["registration"], walkin.id());
    let short = ticket_of(app, &d.attendee, &d.priced).await["short_code"]
        .as_str()
        .expect("short")
        .to_lowercase();
    let by_code = app
        .get(&path(&format!("?search={short}")), Some(&d.organizer))
        .await;
    assert_eq!(by_code.body["count"], 1, "{}", by_code.body);
    assert_eq!(
        by_code.body["attendees"][0]["registration"],
        d.priced.as_str()
    );
    // A search's pages and count (one statement), and a page past the
    // end: the last page, as every list answers it.
    let second = app
        .get(
            &path("?search=findrah&page_size=1&page=2"),
            Some(&d.organizer),
        )
        .await;
    second.assert(200);
    assert_eq!(second.body["count"], 2, "{}", second.body);
    assert_eq!(
        second.body["attendees"][0]["registration"],
        d.priced.as_str()
    );
    let past = app
        .get(
            &path("?search=findrah&page_size=1&page=9"),
            Some(&d.organizer),
        )
        .await;
    past.assert(200);
    assert_eq!(past.body["count"], 2, "{}", past.body);
    assert_eq!(past.body["attendees"], second.body["attendees"]);
    let nobody = app.get(&path("?search=zzzzzz"), Some(&d.organizer)).await;
    nobody.assert(200);
    assert_eq!(nobody.body["count"], 0);
    assert_eq!(nobody.body["attendees"], json!([]));

    // Admitted: the list says when.
    scan(
        app,
        &d.organizer,
        json!({"registration": walkin.id(), "event": d.event}),
    )
    .await
    .assert(201);
    let by_mail = app.get(&path("?search=walkin"), Some(&d.organizer)).await;
    assert!(by_mail.body["attendees"][0]["checked_in_at"].is_string());

    // Who may look: superuser, admin, the organiser; nobody else.
    app.get(&path(""), app.admin()).await.assert(200);
    let (_, admin) = app.user_in("findadmin", "admin").await;
    app.get(&path(""), Some(&admin)).await.assert(200);
    let (_, stranger) = app.user_in("findstranger", "organizer").await;
    app.get(&path(""), Some(&stranger)).await.assert(403);
    app.get(&path(""), Some(&d.attendee)).await.assert(403);
    app.get(&path(""), None).await.assert(401);
    app.get(
        "/api/events/0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a/attendees/",
        Some(&d.organizer),
    )
    .await
    .assert(404);
}

/// A manual admission racing 49 scans of the same registration, over two
/// server processes on PostgreSQL: exactly one admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn manual_admission_racing_scans_admits_once() {
    if postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let sibling = app.spawn_sibling().await;
    let d = door(&app, "racedoor").await;
    let ticket = ticket_of(&app, &d.attendee, &d.free).await;
    let code = ticket["code"].as_str().expect("code").to_owned();
    let short = ticket["short_code"].as_str().expect("short").to_owned();
    let mut requests = Vec::new();
    for i in 0..50 {
        let server = if i % 2 == 0 { &app } else { &sibling };
        let body = match i % 5 {
            0 => json!({"registration": d.free, "event": d.event}),
            1 => json!({"code": short, "event": d.event}),
            _ => json!({"code": code, "event": d.event}),
        };
        requests.push(
            server
                .client
                .post(server.url("/api/checkins/"))
                .bearer_auth(&d.organizer)
                .json(&body)
                .send(),
        );
    }
    let answers = futures::future::join_all(requests).await;
    let (mut created, mut conflicts) = (0, 0);
    for answer in answers {
        let reply = TestApp::reply(answer.expect("sent")).await;
        match reply.status.as_u16() {
            201 => created += 1,
            409 if reply.body["reason"] == "already_checked_in" => conflicts += 1,
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert_eq!((created, conflicts), (1, 49));
    assert_eq!(checkins_of(&app, &d.event).await["count"], 1);
    sibling.cleanup().await;
    app.cleanup().await;
}
