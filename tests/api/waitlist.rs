//! Waiting lists (API.md §9): joining only when sold out, places in line,
//! a freed seat offered to the first person (never to the public while
//! anyone waits), offers accepted, lapsed and left, no offers once sales
//! have closed, and positions exact under concurrent joins.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, assert_field_error};

crate::backend_tests!(
    a_freed_seat_goes_to_the_first_in_line_not_the_public,
    offers_lapse_and_pass_to_the_next_and_leaving_frees_them,
    joining_is_refused_while_seats_remain_and_for_the_wrong_people,
    no_offers_once_sales_have_closed,
    entries_are_their_persons_and_their_organisers,
    the_console_queues_offers_and_lists_the_box_office,
    deletions_give_offered_seats_back,
);

/// An event with one sold-out ticket of `quota` seats and a waiting list;
/// the holders' tokens and registration ids.
async fn sold_out(app: &TestApp, quota: i64) -> (String, String, Vec<(String, String)>) {
    let event = app
        .create_event(&app.admin_token, "Sold Out Show", 100)
        .await;
    let mut body = TestApp::ticket_body(&event, "Floor", quota);
    body["waitlist"] = json!(true);
    body["waitlist_offer_hours"] = json!(24);
    let ticket = app.post("/api/tickets/", app.admin(), body).await;
    ticket.assert(201);
    assert_eq!(ticket.body["waitlist"], true);
    let ticket = ticket.id();
    let mut holders = Vec::new();
    for i in 0..quota {
        let (_, token) = app.user(&format!("holder{i}")).await;
        let r = app.register(&token, &ticket).await;
        r.assert(201);
        holders.push((token, r.id()));
    }
    (event, ticket, holders)
}

async fn join(app: &TestApp, token: &str, ticket: &str) -> Reply {
    app.post(
        "/api/waitlist/",
        Some(token),
        json!({ "ticket_id": ticket }),
    )
    .await
}

async fn entry(app: &TestApp, id: &str) -> Value {
    let e = app.get(&format!("/api/waitlist/{id}/"), app.admin()).await;
    e.assert(200);
    e.body
}

async fn numbers(app: &TestApp, ticket: &str) -> (i64, i64) {
    let t = app
        .get(&format!("/api/tickets/{ticket}/"), app.admin())
        .await;
    (
        t.body["sold"].as_i64().expect("sold"),
        t.body["available"].as_i64().expect("available"),
    )
}

async fn pass(app: &TestApp) -> dicoevent::jobs::PassReport {
    dicoevent::jobs::run_pass(&app.state, "test-worker")
        .await
        .expect("a pass")
}

async fn a_freed_seat_goes_to_the_first_in_line_not_the_public(app: &TestApp) {
    let (_, ticket, holders) = sold_out(app, 2).await;
    let (_, ana) = app.user("ana").await;
    let (_, budi) = app.user("budi").await;
    let (_, public) = app.user("walkin").await;
    let first = join(app, &ana, &ticket).await;
    first.assert(201);
    let mut keys: Vec<&String> = first.body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_at",
            "id",
            "offer_expires_at",
            "position",
            "status",
            "ticket",
            "user"
        ]
    );
    assert_eq!(first.body["position"], 1);
    assert_eq!(first.body["status"], "waiting");
    let second = join(app, &budi, &ticket).await;
    second.assert(201);
    assert_eq!(second.body["position"], 2);

    // A holder cancels: the seat is offered to Ana at once, not sold.
    app.delete(
        &format!("/api/registrations/{}/", holders[0].1),
        Some(&holders[0].0),
    )
    .await
    .assert(204);
    let offered = entry(app, &first.id()).await;
    assert_eq!(offered["status"], "offered", "{offered}");
    assert_eq!(offered["position"], Value::Null);
    assert!(offered["offer_expires_at"].is_string());
    assert_eq!(entry(app, &second.id()).await["position"], 1);
    assert_eq!(
        numbers(app, &ticket).await,
        (1, 0),
        "the offer holds the seat"
    );
    let refused = app.register(&public, &ticket).await;
    refused.assert(409);
    assert_eq!(refused.body["detail"], "Sold out.");
    // The mail says so.
    pass(app).await;
    let told = crate::signup::mails_to(app, "ana@example.com", "is yours");
    assert_eq!(told.len(), 1);
    assert!(told[0].contains("Accept the seat"));

    // Budi may not accept Ana's offer; Ana does.
    app.post(
        &format!("/api/waitlist/{}/accept/", first.id()),
        Some(&budi),
        json!({}),
    )
    .await
    .assert(403);
    let accepted = app
        .post(
            &format!("/api/waitlist/{}/accept/", first.id()),
            Some(&ana),
            json!({}),
        )
        .await;
    accepted.assert(201);
    assert_eq!(accepted.body["ticket"], ticket.as_str());
    assert_eq!(accepted.body["status"], "confirmed");
    assert_eq!(entry(app, &first.id()).await["status"], "accepted");
    assert_eq!(numbers(app, &ticket).await, (2, 0));
    app.post(
        &format!("/api/waitlist/{}/accept/", first.id()),
        Some(&ana),
        json!({}),
    )
    .await
    .assert(409);

    // Ana cancels: she is not back in line; the seat is Budi's offer.
    app.delete(
        &format!("/api/registrations/{}/", accepted.id()),
        Some(&ana),
    )
    .await
    .assert(204);
    assert_eq!(entry(app, &first.id()).await["status"], "accepted");
    assert_eq!(entry(app, &second.id()).await["status"], "offered");
    join(app, &ana, &ticket).await.assert(409);
    // The log has the line's moves.
    let log = app
        .get(
            &format!("/api/audit/?entity_id={}", first.id()),
            app.admin(),
        )
        .await;
    let mut actions: Vec<&str> = log.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        ["waitlist.accepted", "waitlist.joined", "waitlist.offered"]
    );
}

async fn offers_lapse_and_pass_to_the_next_and_leaving_frees_them(app: &TestApp) {
    let (_, ticket, holders) = sold_out(app, 1).await;
    let mut line = Vec::new();
    for name in ["citra", "dewi", "eko"] {
        let (_, token) = app.user(name).await;
        let e = join(app, &token, &ticket).await;
        e.assert(201);
        line.push((token, e.id()));
    }
    app.delete(
        &format!("/api/registrations/{}/", holders[0].1),
        Some(&holders[0].0),
    )
    .await
    .assert(204);
    assert_eq!(entry(app, &line[0].1).await["status"], "offered");
    // A day passes: Citra's offer lapses, Dewi's comes.
    app.state.clock.advance(chrono::Duration::hours(25));
    let report = pass(app).await;
    assert_eq!((report.offers_lapsed, report.offers_made), (1, 1));
    assert_eq!(entry(app, &line[0].1).await["status"], "expired");
    assert_eq!(entry(app, &line[1].1).await["status"], "offered");
    let late = app
        .post(
            &format!("/api/waitlist/{}/accept/", line[0].1),
            Some(&line[0].0),
            json!({}),
        )
        .await;
    late.assert(409);
    // Dewi leaves: Eko's turn, at once.
    app.delete(&format!("/api/waitlist/{}/", line[1].1), Some(&line[1].0))
        .await
        .assert(204);
    assert_eq!(entry(app, &line[1].1).await["status"], "left");
    assert_eq!(entry(app, &line[2].1).await["status"], "offered");
    app.delete(&format!("/api/waitlist/{}/", line[1].1), Some(&line[1].0))
        .await
        .assert(409);
    assert_eq!(numbers(app, &ticket).await, (0, 0), "one seat, Eko's offer");
}

async fn joining_is_refused_while_seats_remain_and_for_the_wrong_people(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Open Seats", 100).await;
    let mut body = TestApp::ticket_body(&event, "Floor", 2);
    body["waitlist"] = json!(true);
    let ticket = app.post("/api/tickets/", app.admin(), body).await;
    let ticket = ticket.id();
    let plain = app.create_ticket(&app.admin_token, &event, 1).await;
    let (_, fajar) = app.user("fajar").await;
    let early = join(app, &fajar, &ticket).await;
    early.assert(409);
    assert_eq!(early.body["detail"], "Tickets are still available.");
    app.register(&fajar, &ticket).await.assert(201);
    let (_, gita) = app.user("gita").await;
    app.register(&gita, &ticket).await.assert(201);
    // Sold out now; a registered person cannot queue, nor twice.
    let again = join(app, &fajar, &ticket).await;
    again.assert(409);
    assert_eq!(
        again.body["detail"],
        "You are already registered for this ticket."
    );
    let (_, hadi) = app.user("hadi").await;
    join(app, &hadi, &ticket).await.assert(201);
    let twice = join(app, &hadi, &ticket).await;
    twice.assert(409);
    assert_eq!(
        twice.body["detail"],
        "You are already on this waiting list."
    );
    // A ticket without a waiting list (sold out too).
    app.register(&gita, &plain).await.assert(201);
    let none = join(app, &hadi, &plain).await;
    none.assert(409);
    assert_eq!(none.body["detail"], "This ticket has no waiting list.");
    // Bad input: a 400 on ticket_id, nothing written.
    assert_field_error(
        &app.post("/api/waitlist/", Some(&hadi), json!({"ticket_id": "nope"}))
            .await,
        "ticket_id",
    );
    assert_field_error(
        &app.post("/api/waitlist/", Some(&hadi), json!({})).await,
        "ticket_id",
    );
    let mine = app.get("/api/waitlist/", Some(&hadi)).await;
    assert_eq!(mine.body["count"], 1);
    app.post("/api/waitlist/", None, json!({"ticket_id": ticket}))
        .await
        .assert(401);
}

async fn no_offers_once_sales_have_closed(app: &TestApp) {
    let (_, ticket, holders) = sold_out(app, 1).await;
    let (_, indah) = app.user("indah").await;
    let waiting = join(app, &indah, &ticket).await;
    waiting.assert(201);
    // Sales end (a week on); then the holder cancels: nobody is offered it.
    app.state.clock.advance(chrono::Duration::days(8));
    app.delete(
        &format!("/api/registrations/{}/", holders[0].1),
        app.admin(),
    )
    .await
    .assert(204);
    pass(app).await;
    assert_eq!(entry(app, &waiting.id()).await["status"], "closed");
    assert!(crate::signup::mails_to(app, "indah@example.com", "is yours").is_empty());
}

async fn entries_are_their_persons_and_their_organisers(app: &TestApp) {
    let (_, orga) = app.user_in("orga", "organizer").await;
    let (_, rival) = app.user_in("rival", "organizer").await;
    let event = app.create_event(&orga, "Their Show", 100).await;
    let mut body = TestApp::ticket_body(&event, "Floor", 1);
    body["waitlist"] = json!(true);
    let ticket = app.post("/api/tickets/", Some(&orga), body).await;
    ticket.assert(201);
    let (_, joko) = app.user("joko").await;
    app.register(&joko, &ticket.id()).await.assert(201);
    let (_, kiki) = app.user("kiki").await;
    let e = join(app, &kiki, &ticket.id()).await;
    e.assert(201);
    let path = format!("/api/waitlist/{}/", e.id());
    app.get(&path, Some(&kiki)).await.assert(200);
    app.get(&path, Some(&orga)).await.assert(200);
    app.get(&path, Some(&rival)).await.assert(403);
    app.get(&path, Some(&joko)).await.assert(403);
    app.delete(&path, Some(&joko)).await.assert(403);
    let theirs = app.get("/api/waitlist/", Some(&orga)).await;
    assert_eq!(theirs.body["count"], 1);
    let not_theirs = app.get("/api/waitlist/", Some(&rival)).await;
    assert_eq!(not_theirs.body["count"], 0);
    // The organiser may take someone out of line.
    app.delete(&path, Some(&orga)).await.assert(204);
}

/// 40 people join one sold-out ticket at once over two server processes
/// (PostgreSQL): places 1 to 40, no gaps, no repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positions_are_exact_under_concurrent_joins() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let sibling = app.spawn_sibling().await;
    let (_, ticket, _) = sold_out(&app, 1).await;
    let people = app.many_users("queuer", 40).await;
    let answers = futures::future::join_all(people.iter().enumerate().map(|(i, (_, token))| {
        let server = if i % 2 == 0 { &app } else { &sibling };
        let ticket = ticket.clone();
        async move { join(server, token, &ticket).await }
    }))
    .await;
    let mut places: Vec<i64> = answers
        .iter()
        .map(|r| {
            r.assert(201);
            r.body["position"].as_i64().expect("a position")
        })
        .collect();
    places.sort();
    assert_eq!(places, (1..=40).collect::<Vec<i64>>());
    let row = app
        .state
        .db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT count(DISTINCT seq) AS n, max(seq) - min(seq) + 1 AS span \
                 FROM waitlist_entries WHERE ticket_id = '{ticket}'"
            ),
        ))
        .await
        .expect("query")
        .expect("row");
    assert_eq!(row.try_get::<i64>("", "n").expect("n"), 40);
    assert_eq!(row.try_get::<i64>("", "span").expect("span"), 40);
    sibling.cleanup().await;
    app.cleanup().await;
}

/// The console: a sold-out ticket offers "Join the waiting list"; My
/// tickets shows the place in line, then the offer with "Accept the seat";
/// the event page lists vouchers (added and disabled from its form) and
/// who is waiting.
async fn the_console_queues_offers_and_lists_the_box_office(app: &TestApp) {
    use crate::console::{Browser, hidden, html, location};
    let (event, ticket, holders) = sold_out(app, 1).await;
    app.user("lina").await;
    let mut lina = Browser::new(app);
    lina.sign_in("lina", crate::helpers::PASSWORD).await;
    let page = lina.get(&format!("/console/browse/{event}/")).await;
    html(&page, 200);
    assert!(page.body.contains("Join the waiting list"), "{}", page.body);
    let csrf = hidden(&page.body, "csrf_token");
    let joined = lina
        .post(
            &format!("/console/browse/{event}/waitlist"),
            &[("csrf_token", &csrf), ("ticket_id", &ticket)],
        )
        .await;
    assert_eq!(location(&joined), "/console/my/");
    let mine = lina.get("/console/my/").await;
    assert!(
        mine.body.contains("You are number 1 in line"),
        "{}",
        mine.body
    );
    assert!(mine.body.contains("Number <strong>1</strong> in line"));
    // Joining twice: the reason, on the event's page.
    let again = lina
        .post(
            &format!("/console/browse/{event}/waitlist"),
            &[("csrf_token", &csrf), ("ticket_id", &ticket)],
        )
        .await;
    html(&again, 409);
    assert!(again.body.contains("already on this waiting list"));

    // The organiser's page lists her, and the vouchers form works.
    let mut admin = Browser::new(app);
    admin
        .sign_in(crate::helpers::SUPERUSER, crate::helpers::PASSWORD)
        .await;
    let event_page = admin.get(&format!("/console/events/{event}/")).await;
    assert!(
        event_page.body.contains("lina@example.com"),
        "{}",
        event_page.body
    );
    assert!(event_page.body.contains("Number 1 in line"));
    let admin_csrf = hidden(&event_page.body, "csrf_token");
    let bad = admin
        .post(
            &format!("/console/events/{event}/vouchers"),
            &[
                ("csrf_token", admin_csrf.as_str()),
                ("code", "has space"),
                ("discount_type", "percent"),
                ("discount_value", "20"),
            ],
        )
        .await;
    html(&bad, 400);
    assert!(
        bad.body.contains("letters, digits, hyphens or underscores"),
        "{}",
        bad.body
    );
    let added = admin
        .post(
            &format!("/console/events/{event}/vouchers"),
            &[
                ("csrf_token", admin_csrf.as_str()),
                ("code", "GUEST"),
                ("discount_type", "percent"),
                ("discount_value", "20"),
                ("max_uses", "5"),
            ],
        )
        .await;
    assert_eq!(
        added.status,
        reqwest::StatusCode::SEE_OTHER,
        "{}",
        added.body
    );
    let listed = admin.get(&format!("/console/events/{event}/")).await;
    assert!(
        listed.body.contains("<code>GUEST</code>"),
        "{}",
        listed.body
    );
    assert!(listed.body.contains("20 % off"));
    assert!(listed.body.contains("0 of 5"));
    let vouchers = app
        .get(&format!("/api/vouchers/?event={event}"), app.admin())
        .await;
    let voucher = vouchers.body["vouchers"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let disabled = admin
        .post(
            &format!("/console/vouchers/{voucher}/disable"),
            &[
                ("csrf_token", admin_csrf.as_str()),
                ("event_id", event.as_str()),
            ],
        )
        .await;
    assert_eq!(disabled.status, reqwest::StatusCode::SEE_OTHER);
    let after = admin.get(&format!("/console/events/{event}/")).await;
    assert!(after.body.contains("Not usable"), "{}", after.body);

    // A seat frees: her offer, accepted from My tickets.
    app.delete(
        &format!("/api/registrations/{}/", holders[0].1),
        app.admin(),
    )
    .await
    .assert(204);
    let offered = lina.get("/console/my/").await;
    assert!(
        offered.body.contains("A seat is yours."),
        "{}",
        offered.body
    );
    let entry_id = app.get("/api/waitlist/", app.admin()).await.body["entries"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let my_csrf = hidden(&offered.body, "csrf_token");
    let took = lina
        .post(
            &format!("/console/waitlist/{entry_id}/accept"),
            &[("csrf_token", &my_csrf)],
        )
        .await;
    assert_eq!(location(&took), "/console/my/");
    let ticketed = lina.get("/console/my/").await;
    assert!(
        ticketed.body.contains("The seat is yours."),
        "{}",
        ticketed.body
    );
    assert!(ticketed.body.contains("Sold Out Show"));
    assert!(!ticketed.body.contains("Waiting lists"));
}

/// A deleted account's open offer gives its seat back to the next in line;
/// a deleted ticket type gives its offers' seats back to the event.
async fn deletions_give_offered_seats_back(app: &TestApp) {
    let (event, ticket, holders) = sold_out(app, 1).await;
    let (mona_id, mona) = app.user("mona").await;
    let (_, nino) = app.user("nino").await;
    let first = join(app, &mona, &ticket).await;
    first.assert(201);
    let second = join(app, &nino, &ticket).await;
    second.assert(201);
    app.delete(
        &format!("/api/registrations/{}/", holders[0].1),
        app.admin(),
    )
    .await
    .assert(204);
    assert_eq!(entry(app, &first.id()).await["status"], "offered");
    // Mona's account goes: her offered seat is Nino's now.
    app.delete(&format!("/api/users/{mona_id}/"), app.admin())
        .await
        .assert(204);
    pass(app).await;
    assert_eq!(entry(app, &second.id()).await["status"], "offered");
    assert_eq!(numbers(app, &ticket).await, (0, 0));
    // The ticket type goes: the event has its seat back (quota 100, nothing held).
    app.delete(&format!("/api/tickets/{ticket}/"), app.admin())
        .await
        .assert(204);
    let other = app.create_ticket(&app.admin_token, &event, 100).await;
    assert_eq!(numbers(app, &other).await, (0, 100));
}
