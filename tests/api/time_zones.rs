//! Where an event happens (API.md §8.1, "Time zones"): its `timezone` in
//! the API and the console form, instants answered in UTC, pages showing
//! its times in its zone, named.

use serde_json::json;

use crate::console::{Browser, hidden, html};
use crate::helpers::{PASSWORD, TestApp};

crate::backend_tests!(
    events_have_a_time_zone,
    pages_show_times_where_the_event_happens,
);

async fn events_have_a_time_zone(app: &TestApp) {
    let (_, organizer) = app.user_in("tzorg", "organizer").await;
    // Without one: the server's TIME_ZONE, and the representation is the
    // Django service's (no `timezone` key).
    let plain = app
        .post(
            "/api/events/",
            Some(&organizer),
            TestApp::event_body("Plain", 10),
        )
        .await;
    plain.assert(201);
    assert!(plain.body.get("timezone").is_none(), "{}", plain.body);

    let mut body = TestApp::event_body("Rust Night Jakarta", 10);
    body["start_time"] = json!("2027-03-01T18:00:00+07:00");
    body["end_time"] = json!("2027-03-01T21:00:00+07:00");
    body["timezone"] = json!("Asia/Jakarta");
    let jakarta = app.post("/api/events/", Some(&organizer), body).await;
    jakarta.assert(201);
    assert_eq!(jakarta.body["timezone"], "Asia/Jakarta");
    // Instants stay in UTC.
    assert_eq!(jakarta.body["start_time"], "2027-03-01T11:00:00Z");
    let id = jakarta.id();
    let read = app.get(&format!("/api/events/{id}/"), None).await;
    assert_eq!(read.body["timezone"], "Asia/Jakarta");

    // An unknown name: 400 on the field, nothing written.
    let before = app.get("/api/events/", None).await.body["count"].clone();
    let mut body = TestApp::event_body("Nowhere", 10);
    body["timezone"] = json!("Mars/Olympus");
    let reply = app.post("/api/events/", Some(&organizer), body).await;
    reply.assert(400);
    assert!(
        reply.body["timezone"][0]
            .as_str()
            .is_some_and(|m| m.contains("Mars/Olympus")),
        "{}",
        reply.body
    );
    assert_eq!(app.get("/api/events/", None).await.body["count"], before);
    let reply = app
        .patch(
            &format!("/api/events/{id}/"),
            Some(&organizer),
            json!({"timezone": 7}),
        )
        .await;
    reply.assert(400);
    assert_eq!(
        app.get(&format!("/api/events/{id}/"), None).await.body["timezone"],
        "Asia/Jakarta"
    );
    // Changed, and back to the default with null.
    let moved = app
        .patch(
            &format!("/api/events/{id}/"),
            Some(&organizer),
            json!({"timezone": "Europe/Paris"}),
        )
        .await;
    moved.assert(200);
    assert_eq!(moved.body["timezone"], "Europe/Paris");
    assert_eq!(moved.body["start_time"], "2027-03-01T11:00:00Z");
    let reset = app
        .patch(
            &format!("/api/events/{id}/"),
            Some(&organizer),
            json!({"timezone": null}),
        )
        .await;
    reset.assert(200);
    assert!(reset.body.get("timezone").is_none(), "{}", reset.body);
    // The audit log has the change.
    let log = app
        .get(
            &format!("/api/audit/?entity_id={id}&action=event.updated"),
            app.admin(),
        )
        .await;
    assert!(
        log.body.to_string().contains("Europe/Paris"),
        "{}",
        log.body
    );
}

async fn pages_show_times_where_the_event_happens(app: &TestApp) {
    app.user_in("tzpage", "organizer").await;
    let mut browser = Browser::new(app);
    browser.sign_in("tzpage", PASSWORD).await;
    let form = browser.get("/console/events/new").await;
    html(&form, 200);
    // The server's zone is offered; every IANA name is suggested.
    assert!(form.body.contains("value=\"UTC\""), "the default zone");
    assert!(form.body.contains("<option value=\"Asia/Jakarta\">"));
    let csrf = hidden(&form.body, "csrf_token");
    // The form's times are read in the zone chosen with them.
    let created = browser
        .post(
            "/console/events/new",
            &[
                ("csrf_token", &csrf),
                ("name", "Rust Night Jakarta"),
                ("location", "GoWork, Jakarta"),
                ("start_time", "2027-03-01T18:00"),
                ("end_time", "2027-03-01T21:00"),
                ("timezone", "Asia/Jakarta"),
                ("quota", "50"),
                ("category", "Meetup"),
                ("status", "scheduled"),
                ("description", ""),
            ],
        )
        .await;
    assert_eq!(created.status.as_u16(), 303, "{}", created.body);
    let path = created.headers["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let id = path
        .trim_start_matches("/console/events/")
        .trim_end_matches('/')
        .to_owned();
    let event = app.get(&format!("/api/events/{id}/"), None).await;
    assert_eq!(event.body["start_time"], "2027-03-01T11:00:00Z");
    assert_eq!(event.body["timezone"], "Asia/Jakarta");
    let page = browser.get(&path).await;
    html(&page, 200);
    assert!(
        page.body
            .contains("Mon 1 Mar 2027, 18:00–21:00 WIB (Asia/Jakarta)"),
        "{}",
        page.body
    );
    // The details form shows the times where the event happens.
    assert!(page.body.contains("value=\"2027-03-01T18:00\""));
    assert!(page.body.contains("value=\"Asia/Jakarta\""));
    // A bad zone in the form: its error under the field, nothing changed.
    let refused = browser
        .post(
            &path,
            &[
                ("csrf_token", &csrf),
                ("name", "Rust Night Jakarta"),
                ("location", "GoWork, Jakarta"),
                ("start_time", "2027-03-01T18:00"),
                ("end_time", "2027-03-01T21:00"),
                ("timezone", "Jakarta"),
                ("quota", "50"),
                ("category", "Meetup"),
                ("status", "scheduled"),
                ("description", ""),
            ],
        )
        .await;
    html(&refused, 400);
    assert!(
        refused.body.contains("is not a time zone"),
        "{}",
        refused.body
    );
    assert_eq!(
        app.get(&format!("/api/events/{id}/"), None).await.body["timezone"],
        "Asia/Jakarta"
    );
    // Browse and the attendee's ticket show the same zone.
    let (_, attendee) = app.user("tzguest").await;
    let ticket = app
        .create_ticket(app.admin().expect("superuser"), &id, 10)
        .await;
    app.register(&attendee, &ticket).await.assert(201);
    let mut guest = Browser::new(app);
    guest.sign_in("tzguest", PASSWORD).await;
    let mine = guest.get("/console/my/").await;
    html(&mine, 200);
    assert!(
        mine.body.contains("Mon 1 Mar 2027, 18:00 WIB"),
        "{}",
        mine.body
    );
    // The confirmation mail gives the start where the event happens, with
    // the server in UTC.
    dicoevent::jobs::run_pass(&app.state, "tz-worker")
        .await
        .expect("a worker pass");
    let mails: Vec<String> = std::fs::read_dir(app.data_dir().join("outbox"))
        .expect("the outbox directory")
        .flatten()
        .map(|f| {
            std::fs::read_to_string(f.path())
                .expect("eml")
                .replace("=\r\n", "")
                .replace("=\n", "")
        })
        .filter(|m| m.contains("tzguest@example.com") && m.contains("Registration confirmed"))
        .collect();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("Monday 1 March 2027 at 18:00 WIB (Asia/Jakarta)"),
        "{}",
        mails[0]
    );
    let browse = guest.get(&format!("/console/browse/{id}/")).await;
    html(&browse, 200);
    assert!(
        browse.body.contains("18:00–21:00 WIB (Asia/Jakarta)"),
        "{}",
        browse.body
    );
}
