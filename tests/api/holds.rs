//! Payment windows (API.md §9): a priced ticket with
//! `payment_window_minutes` holds an unpaid registration's seat until
//! `hold_expires_at`; then the seat is free at once (no waiting for a
//! sweep), the code is revoked, a mail says so, paying is refused with
//! `hold_expired`, and registering again revives it with a new window.
//! The clock is the server's own, moved forward by the test.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_field_error};

crate::backend_tests!(
    an_unpaid_hold_frees_its_seat_when_its_window_passes,
    a_completed_payment_confirms_a_hold,
    payment_windows_are_validated_and_free_tickets_never_wait,
    the_workers_sweep_expires_what_nobody_asked_for,
    the_console_sets_windows_and_shows_holds,
);

/// An event on sale with one priced ticket of `quota` seats and a window.
async fn windowed_ticket(app: &TestApp, quota: i64, minutes: Value) -> (String, String) {
    let event = app
        .create_event(&app.admin_token, "Gamelan Night", 100)
        .await;
    let mut body = TestApp::ticket_body(&event, "Reserved", quota);
    body["payment_window_minutes"] = minutes;
    let ticket = app.post("/api/tickets/", app.admin(), body).await;
    ticket.assert(201);
    (event, ticket.id())
}

async fn ticket_numbers(app: &TestApp, ticket: &str) -> (i64, i64) {
    let t = app
        .get(&format!("/api/tickets/{ticket}/"), app.admin())
        .await;
    t.assert(200);
    (
        t.body["sold"].as_i64().expect("sold"),
        t.body["available"].as_i64().expect("available"),
    )
}

async fn registration(app: &TestApp, id: &str) -> Value {
    let r = app
        .get(&format!("/api/registrations/{id}/"), app.admin())
        .await;
    r.assert(200);
    r.body
}

async fn pass(app: &TestApp) -> dicoevent::jobs::PassReport {
    dicoevent::jobs::run_pass(&app.state, "test-worker")
        .await
        .expect("a worker pass")
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

async fn an_unpaid_hold_frees_its_seat_when_its_window_passes(app: &TestApp) {
    let (event, ticket) = windowed_ticket(app, 1, json!(30)).await;
    let (_, ayu) = app.user("ayu").await;
    let (_, bima) = app.user("bima").await;

    // Ayu's registration waits for her payment, for 30 minutes.
    let held = app.register(&ayu, &ticket).await;
    held.assert(201);
    assert_eq!(held.body["status"], "awaiting_payment");
    let until = chrono::DateTime::parse_from_rfc3339(
        held.body["hold_expires_at"].as_str().expect("a hold"),
    )
    .expect("a time");
    let registered =
        chrono::DateTime::parse_from_rfc3339(held.body["registered_at"].as_str().expect("time"))
            .expect("a time");
    assert_eq!(until - registered, minutes(30));
    assert_eq!(ticket_numbers(app, &ticket).await, (1, 0));
    let refused = app.register(&bima, &ticket).await;
    refused.assert(409);
    assert_eq!(refused.body["detail"], "Sold out.");
    let code = app
        .get(
            &format!("/api/registrations/{}/ticket/", held.id()),
            Some(&ayu),
        )
        .await;
    code.assert(200);
    let code = code.body["code"].as_str().expect("code").to_owned();

    // 31 minutes later, before any sweep: the seat is Bima's at once.
    app.state.clock.advance(minutes(31));
    let taken = app.register(&bima, &ticket).await;
    taken.assert(201);
    assert_eq!(taken.body["status"], "awaiting_payment");
    let expired = registration(app, &held.id()).await;
    assert_eq!(expired["status"], "expired");
    assert_eq!(ticket_numbers(app, &ticket).await, (1, 0));

    // Paying it now is refused, and nothing is written.
    let late = app
        .post(
            "/api/payments/",
            Some(&ayu),
            json!({"registration_id": held.id(), "payment_method": "bank transfer", "amount_paid": 150000.5}),
        )
        .await;
    late.assert(409);
    assert_eq!(
        late.body,
        json!({"detail": "The hold has expired.", "reason": "hold_expired"})
    );
    let payments = app
        .get(
            &format!("/api/payments/?registration={}", held.id()),
            app.admin(),
        )
        .await;
    assert_eq!(payments.body["count"], 0, "{}", payments.body);

    // Its code is revoked at the door (not merely too early), and listed as
    // such for door apps.
    let scan = app
        .post(
            "/api/checkins/",
            app.admin(),
            json!({ "code": code, "event": event }),
        )
        .await;
    scan.assert(404);
    assert_eq!(scan.body["reason"], "revoked", "{}", scan.body);
    let sync = app
        .get(&format!("/api/events/{event}/checkin-sync/"), app.admin())
        .await;
    sync.assert(200);
    assert!(
        sync.body["revoked"].to_string().contains(&held.id()),
        "{}",
        sync.body
    );

    // Lists: the expired one only when asked for; a bad status is a 400.
    let mine = app.get("/api/registrations/", Some(&ayu)).await;
    assert_eq!(mine.body["count"], 0, "{}", mine.body);
    let gone = app
        .get("/api/registrations/?status=expired", Some(&ayu))
        .await;
    assert_eq!(gone.body["count"], 1);
    assert_eq!(gone.body["registrations"][0]["id"], held.id().as_str());
    let waiting = app
        .get(
            &format!("/api/registrations/?event={event}&status=awaiting_payment"),
            app.admin(),
        )
        .await;
    assert_eq!(waiting.body["count"], 1);
    assert_eq!(waiting.body["registrations"][0]["id"], taken.id().as_str());
    let all = app
        .get(&format!("/api/registrations/?event={event}"), app.admin())
        .await;
    assert_eq!(all.body["count"], 1, "{}", all.body);
    assert_field_error(
        &app.get("/api/registrations/?status=lost", app.admin())
            .await,
        "status",
    );

    // The mail tells Ayu (once), and the log says who expired it.
    pass(app).await;
    let mails = crate::signup::mails_to(app, "ayu@example.com", "has expired");
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Register again"));
    let log = app
        .get(
            &format!(
                "/api/audit/?entity_id={}&action=registration.expired",
                held.id()
            ),
            app.admin(),
        )
        .await;
    log.assert(200);
    assert_eq!(log.body["count"], 1, "{}", log.body);
    assert_eq!(log.body["entries"][0]["actor"]["type"], "system");

    // No room for Ayu while Bima holds the seat; when Bima's hold passes
    // too, registering again revives hers (the same registration, a new
    // window, her code good again).
    let again = app.register(&ayu, &ticket).await;
    again.assert(409);
    assert_eq!(again.body["detail"], "Sold out.");
    app.state.clock.advance(minutes(31));
    let revived = app.register(&ayu, &ticket).await;
    revived.assert(201);
    assert_eq!(revived.id(), held.id());
    assert_eq!(revived.body["status"], "awaiting_payment");
    assert_ne!(
        revived.body["hold_expires_at"],
        held.body["hold_expires_at"]
    );
    assert_eq!(registration(app, &taken.id()).await["status"], "expired");
    assert_eq!(ticket_numbers(app, &ticket).await, (1, 0));
    // Known again at the door (not revoked: only too early, a month ahead).
    let known = app
        .post(
            "/api/checkins/",
            app.admin(),
            json!({ "code": code, "event": event }),
        )
        .await;
    known.assert(409);
    assert_eq!(known.body["reason"], "not_yet_valid", "{}", known.body);
}

async fn a_completed_payment_confirms_a_hold(app: &TestApp) {
    let (_, ticket) = windowed_ticket(app, 5, json!(15)).await;
    let (_, citra) = app.user("citra").await;
    let held = app.register(&citra, &ticket).await;
    held.assert(201);
    // Her own (pending) payment does not end the hold…
    let payment = app
        .post(
            "/api/payments/",
            Some(&citra),
            json!({"registration_id": held.id(), "payment_method": "bank transfer", "amount_paid": 150000.5}),
        )
        .await;
    payment.assert(201);
    assert_eq!(
        registration(app, &held.id()).await["status"],
        "awaiting_payment"
    );
    // …its completion does: confirmed, no timer, never expired by a sweep.
    app.patch(
        &format!("/api/payments/{}/", payment.id()),
        app.admin(),
        json!({ "payment_status": "completed" }),
    )
    .await
    .assert(200);
    let confirmed = registration(app, &held.id()).await;
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(confirmed["hold_expires_at"], Value::Null);
    app.state.clock.advance(minutes(20));
    assert_eq!(pass(app).await.holds_expired, 0);
    assert_eq!(registration(app, &held.id()).await["status"], "confirmed");

    // Marking a payment completed after the window passed is refused.
    let (_, dewi) = app.user("dewi").await;
    let late = app.register(&dewi, &ticket).await;
    late.assert(201);
    let pending = app
        .post(
            "/api/payments/",
            Some(&dewi),
            json!({"registration_id": late.id(), "payment_method": "bank transfer", "amount_paid": 150000.5}),
        )
        .await;
    pending.assert(201);
    app.state.clock.advance(minutes(16));
    let refused = app
        .patch(
            &format!("/api/payments/{}/", pending.id()),
            app.admin(),
            json!({ "payment_status": "completed" }),
        )
        .await;
    refused.assert(409);
    assert_eq!(refused.body["reason"], "hold_expired");
    let still = app
        .get(&format!("/api/payments/{}/", pending.id()), app.admin())
        .await;
    assert_eq!(still.body["payment_status"], "pending");
}

async fn payment_windows_are_validated_and_free_tickets_never_wait(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Validated", 100).await;
    let listed = format!("/api/tickets/?event={event}");
    for bad in [json!(0), json!(10081), json!("soon"), json!(1.5), json!(-3)] {
        let mut body = TestApp::ticket_body(&event, "Bad", 10);
        body["payment_window_minutes"] = bad.clone();
        let reply = app.post("/api/tickets/", app.admin(), body).await;
        assert_field_error(&reply, "payment_window_minutes");
    }
    let none = app.get(&listed, app.admin()).await;
    assert_eq!(none.body["count"], 0, "nothing written");
    for good in [json!(1), json!(10080), Value::Null] {
        let mut body = TestApp::ticket_body(&event, "Good", 10);
        body["payment_window_minutes"] = good.clone();
        let reply = app.post("/api/tickets/", app.admin(), body).await;
        reply.assert(201);
        assert_eq!(reply.body["payment_window_minutes"], good);
    }
    // Set and removed by PATCH.
    let mut body = TestApp::ticket_body(&event, "Patched", 10);
    body["price"] = json!(0);
    let free = app.post("/api/tickets/", app.admin(), body).await;
    let path = format!("/api/tickets/{}/", free.id());
    let set = app
        .patch(&path, app.admin(), json!({ "payment_window_minutes": 60 }))
        .await;
    set.assert(200);
    assert_eq!(set.body["payment_window_minutes"], 60);
    // A free ticket has nothing to wait for: confirmed at once.
    let (_, eko) = app.user("eko").await;
    let reg = app.register(&eko, &free.id()).await;
    reg.assert(201);
    assert_eq!(reg.body["status"], "confirmed");
    assert_eq!(reg.body["hold_expires_at"], Value::Null);
    let cleared = app
        .patch(
            &path,
            app.admin(),
            json!({ "payment_window_minutes": null }),
        )
        .await;
    cleared.assert(200);
    assert_eq!(cleared.body["payment_window_minutes"], Value::Null);
}

async fn the_workers_sweep_expires_what_nobody_asked_for(app: &TestApp) {
    let (_, ticket) = windowed_ticket(app, 10, json!(5)).await;
    let mut held = Vec::new();
    for name in ["fajar", "gita", "hadi"] {
        let (_, token) = app.user(name).await;
        let r = app.register(&token, &ticket).await;
        r.assert(201);
        held.push(r.id());
    }
    assert_eq!(pass(app).await.holds_expired, 0, "none due yet");
    app.state.clock.advance(minutes(6));
    let report = pass(app).await;
    assert_eq!(report.holds_expired, 3);
    assert_eq!(ticket_numbers(app, &ticket).await, (0, 10));
    for id in &held {
        assert_eq!(registration(app, id).await["status"], "expired");
    }
    assert_eq!(pass(app).await.holds_expired, 0, "each once");
    for name in ["fajar", "gita", "hadi"] {
        let told = crate::signup::mails_to(app, &format!("{name}@example.com"), "has expired");
        assert_eq!(told.len(), 1, "{name}");
    }
    // Cancelling an expired registration gives back nothing a second time.
    app.delete(&format!("/api/registrations/{}/", held[0]), app.admin())
        .await
        .assert(204);
    assert_eq!(ticket_numbers(app, &ticket).await, (0, 10));
}

/// One figure from the database.
async fn number(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .state
        .db
        .conn()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            sql.to_owned(),
        ))
        .await
        .expect("query")
        .expect("a row");
    row.try_get::<i64>("", "n").expect("a number")
}

/// Asserts what must hold after any mix of registrations, payments,
/// cancellations, expiries and revivals on an event.
async fn assert_capacity_kept(app: &TestApp, event: &str) {
    // Per ticket: the counter is the seats held, never above the quota.
    let wrong_tickets = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM tickets t WHERE t.event_id = '{event}' AND (t.sold > t.quota \
             OR t.sold <> (SELECT count(*) FROM registrations r WHERE r.ticket_id = t.id \
                           AND r.status <> 'expired'))"
        ),
    )
    .await;
    assert_eq!(wrong_tickets, 0, "every ticket: sold = seats held ≤ quota");
    let wrong_event = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM events e WHERE e.id = '{event}' AND (e.registered > e.quota \
             OR e.registered <> (SELECT count(*) FROM registrations r WHERE r.event_id = e.id \
                                 AND r.status <> 'expired'))"
        ),
    )
    .await;
    assert_eq!(wrong_event, 0, "the event: registered = seats held ≤ quota");
    // Confirmed priced registrations were paid; expired ones never were.
    let unpaid_confirmed = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM registrations r WHERE r.event_id = '{event}' \
             AND r.status = 'confirmed' AND NOT EXISTS (SELECT 1 FROM payments p \
             WHERE p.registration_id = r.id AND p.payment_status = 'completed')"
        ),
    )
    .await;
    assert_eq!(unpaid_confirmed, 0, "confirmed means paid");
    let paid_expired = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM registrations r WHERE r.event_id = '{event}' \
             AND r.status = 'expired' AND EXISTS (SELECT 1 FROM payments p \
             WHERE p.registration_id = r.id AND p.payment_status = 'completed')"
        ),
    )
    .await;
    assert_eq!(paid_expired, 0, "no paid registration expired");
    // Every expired code is revoked; every hold has its timer.
    let unrevoked = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM registrations r WHERE r.event_id = '{event}' \
             AND r.status = 'expired' AND NOT EXISTS (SELECT 1 FROM registration_revocations v \
             WHERE v.registration_id = r.id)"
        ),
    )
    .await;
    assert_eq!(unrevoked, 0, "expired codes are revoked");
    let timeless = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM registrations r WHERE r.event_id = '{event}' \
             AND r.status = 'awaiting_payment' AND r.hold_expires_at IS NULL"
        ),
    )
    .await;
    assert_eq!(timeless, 0);
}

/// The open offers of an event: (entry, user).
async fn offered_entries(app: &TestApp, event: &str) -> Vec<(String, String)> {
    app.state
        .db
        .conn()
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT id::text AS id, user_id::text AS user_id FROM waitlist_entries \
                 WHERE event_id = '{event}' AND status = 'offered'"
            ),
        ))
        .await
        .expect("query")
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "id").expect("id"),
                row.try_get::<String>("", "user_id").expect("user"),
            )
        })
        .collect()
}

/// Asserts the waiting list and the vouchers kept their promises.
async fn assert_line_kept(app: &TestApp, event: &str, ticket: &str) {
    // Open offers are exactly what the counters hold for them.
    let wrong_offers = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM tickets t WHERE t.event_id = '{event}' AND t.offered <> \
             (SELECT count(*) FROM waitlist_entries w WHERE w.ticket_id = t.id AND w.status = 'offered')"
        ),
    )
    .await;
    assert_eq!(wrong_offers, 0, "ticket offers counted");
    let wrong_event_offers = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM events e WHERE e.id = '{event}' AND e.offered <> \
             (SELECT count(*) FROM waitlist_entries w WHERE w.event_id = e.id AND w.status = 'offered')"
        ),
    )
    .await;
    assert_eq!(wrong_event_offers, 0, "event offers counted");
    let over = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM tickets t JOIN events e ON e.id = t.event_id \
             WHERE t.event_id = '{event}' AND (t.sold + t.offered > t.quota \
             OR e.registered + e.offered > e.quota)"
        ),
    )
    .await;
    assert_eq!(over, 0, "seats sold plus offered within every quota");
    // Fairness: while anyone waits for A, A has no seat free for the public.
    let unfair = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM tickets t JOIN events e ON e.id = t.event_id \
             WHERE t.id = '{ticket}' AND EXISTS (SELECT 1 FROM waitlist_entries w \
             WHERE w.ticket_id = t.id AND w.status = 'waiting') \
             AND LEAST(t.quota - t.sold - t.offered, e.quota - e.registered - e.offered) > 0"
        ),
    )
    .await;
    assert_eq!(unfair, 0, "a free seat while people wait");
    // Nobody offered twice; places in line without repeats.
    let twice = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM (SELECT entity_id FROM audit_entries \
             WHERE event_id = '{event}' AND action = 'waitlist.offered' \
             GROUP BY entity_id HAVING count(*) > 1) x"
        ),
    )
    .await;
    assert_eq!(twice, 0, "no one offered twice");
    let repeated = number(
        app,
        &format!(
            "SELECT count(*) - count(DISTINCT seq) AS n FROM waitlist_entries WHERE ticket_id = '{ticket}'"
        ),
    )
    .await;
    assert_eq!(repeated, 0, "places in line are distinct");
    // The voucher: its uses are the registrations holding it, at most ten.
    let wrong_uses = number(
        app,
        &format!(
            "SELECT count(*) AS n FROM vouchers v WHERE v.event_id = '{event}' AND (v.uses > 10 \
             OR v.uses <> (SELECT count(*) FROM registrations r WHERE r.voucher_id = v.id \
                           AND r.status <> 'expired'))"
        ),
    )
    .await;
    assert_eq!(wrong_uses, 0, "voucher uses exact and within the limit");
}

/// The mixed race on PostgreSQL over two server processes (200 people): registrations
/// on two windowed tickets sharing an event quota, payments, cancellations,
/// the clock passing every hold, revivals, a voucher of ten uses, a waiting
/// list (joins, offers, accepts) and both servers' sweeps, all at once; then
/// the invariants from the database. Twenty rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn holds_never_oversell_under_a_mixed_race_on_two_servers() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(crate::helpers::Backend::Postgres).await;
    let sibling = app.spawn_sibling().await;
    let servers = [&app, &sibling];
    // The same 200 people race in every round, each round on a new event.
    let people = app.many_users("racer", 200).await;
    let mut accepted_offers = 0;
    for round in 0..20 {
        let event = app
            .create_event(&app.admin_token, &format!("Race {round}"), 30)
            .await;
        let mut tickets = Vec::new();
        for (name, quota) in [("A", 20), ("B", 15)] {
            let mut body = TestApp::ticket_body(&event, name, quota);
            // Ten minutes: however slow a loaded machine makes a round, no
            // hold runs out before the clock is moved past it (step 3).
            body["payment_window_minutes"] = json!(10);
            // A has a waiting list: its freed seats go to those in line.
            body["waitlist"] = json!(name == "A");
            let t = app.post("/api/tickets/", app.admin(), body).await;
            t.assert(201);
            tickets.push(t.id());
        }
        let status_ok = |status: u16| matches!(status, 201 | 204 | 409);

        // A voucher of ten uses, tried by every fourth person.
        let code = format!("RACE{round}");
        app.post(
            "/api/vouchers/",
            app.admin(),
            json!({"event": event, "code": code, "discount_type": "percent", "discount_value": 10, "max_uses": 10}),
        )
        .await
        .assert(201);
        let register = |k: usize, i: usize, ticket: &String| {
            let server = servers[k % 2];
            let token = people[i].1.clone();
            let body = if i.is_multiple_of(4) {
                json!({"ticket_id": ticket, "voucher": code})
            } else {
                json!({"ticket_id": ticket})
            };
            async move { server.post("/api/registrations/", Some(&token), body).await }
        };

        // 1. 130 register at once, on both servers and both tickets; those
        // turned away from A join its waiting list, at once too.
        let first = futures::future::join_all((0..130).map(|i| {
            let attempt = register(i, i, &tickets[i % 2]);
            async move { (i, attempt.await) }
        }))
        .await;
        let turned_away: Vec<usize> = first
            .iter()
            .filter(|(i, r)| i % 2 == 0 && r.status == 409)
            .map(|(i, _)| *i)
            .collect();
        let joins = futures::future::join_all(turned_away.iter().enumerate().map(|(k, i)| {
            let server = servers[k % 2];
            let token = &people[*i].1;
            let ticket = &tickets[0];
            async move {
                server
                    .post("/api/waitlist/", Some(token), json!({"ticket_id": ticket}))
                    .await
            }
        }))
        .await;
        for reply in &joins {
            assert!(matches!(reply.status.as_u16(), 201 | 409), "{}", reply.body);
        }
        let held: Vec<(usize, String)> = first
            .iter()
            .filter(|(_, r)| r.status == 201)
            .map(|(i, r)| (*i, r.id()))
            .collect();
        for (_, r) in &first {
            assert!(matches!(r.status.as_u16(), 201 | 400 | 409), "{}", r.body);
        }
        assert_eq!(held.len(), 30, "the event's quota, exactly");

        // 2. At once: a third paid (completed by the box office), a fifth
        // cancelled by their holders, and both servers sweep (nothing due).
        let paid: Vec<&(usize, String)> = held.iter().filter(|(i, _)| i % 3 == 0).collect();
        let cancelled: Vec<&(usize, String)> = held
            .iter()
            .filter(|(i, _)| i % 5 == 1 && i % 3 != 0)
            .collect();
        let payments = paid.iter().enumerate().map(|(k, (_, id))| {
            let server = servers[k % 2];
            async move {
                server
                    .post(
                        "/api/payments/",
                        server.admin(),
                        json!({"registration_id": id, "payment_method": "cash", "amount_paid": 150000.5, "payment_status": "completed"}),
                    )
                    .await
            }
        });
        let cancels = cancelled.iter().enumerate().map(|(k, (i, id))| {
            let server = servers[k % 2];
            let token = &people[*i].1;
            async move {
                server
                    .delete(&format!("/api/registrations/{id}/"), Some(token))
                    .await
            }
        });
        let (paid_answers, cancel_answers, _) = tokio::join!(
            futures::future::join_all(payments),
            futures::future::join_all(cancels),
            async {
                tokio::join!(pass(&app), pass(&sibling));
            }
        );
        for reply in paid_answers.iter().chain(&cancel_answers) {
            assert!(matches!(reply.status.as_u16(), 201 | 204), "{}", reply.body);
        }
        assert_capacity_kept(&app, &event).await;

        // 3. Eleven minutes later every unpaid hold is overdue. At once:
        // seventy newcomers register, the unpaid pay late, some expired
        // holders register again, and both servers sweep.
        for server in servers {
            server.state.clock.advance(chrono::Duration::minutes(11));
        }
        let unpaid: Vec<&(usize, String)> = held
            .iter()
            .filter(|(i, _)| i % 3 != 0 && i % 5 != 1)
            .collect();
        let newcomers = people[130..].iter().enumerate().map(|(k, (_, token))| {
            let server = servers[k % 2];
            let ticket = &tickets[k % 2];
            async move { server.register(token, ticket).await }
        });
        // (The first six register again below; the others pay too late.)
        let late = unpaid.iter().skip(6).enumerate().map(|(k, (i, id))| {
            let server = servers[k % 2];
            let token = &people[*i].1;
            async move {
                server
                    .post(
                        "/api/payments/",
                        Some(token),
                        json!({"registration_id": id, "payment_method": "bank transfer", "amount_paid": 150000.5}),
                    )
                    .await
            }
        });
        let again = unpaid.iter().take(6).enumerate().map(|(k, (i, _))| {
            let server = servers[(k + 1) % 2];
            let token = &people[*i].1;
            let ticket = &tickets[i % 2];
            async move { server.register(token, ticket).await }
        });
        let (new_answers, late_answers, again_answers, _) = tokio::join!(
            futures::future::join_all(newcomers),
            futures::future::join_all(late),
            futures::future::join_all(again),
            async {
                tokio::join!(pass(&app), pass(&sibling));
            }
        );
        for reply in late_answers {
            reply.assert(409);
            assert_eq!(reply.body["reason"], "hold_expired", "{}", reply.body);
        }
        assert!(new_answers.iter().all(|r| status_ok(r.status.as_u16())));
        assert!(again_answers.iter().all(|r| status_ok(r.status.as_u16())));
        // 4. Everyone offered a seat accepts it, at once, on both servers,
        // while both sweep again.
        tokio::join!(pass(&app), pass(&sibling));
        let offered = offered_entries(&app, &event).await;
        let (accepts, _) = tokio::join!(
            futures::future::join_all(offered.iter().enumerate().map(|(k, (entry, user))| {
                let server = servers[k % 2];
                let token = people
                    .iter()
                    .find(|(id, _)| id == user)
                    .map(|(_, t)| t.clone())
                    .expect("a racer");
                async move {
                    server
                        .post(
                            &format!("/api/waitlist/{entry}/accept/"),
                            Some(&token),
                            json!({}),
                        )
                        .await
                }
            })),
            async {
                tokio::join!(pass(&app), pass(&sibling));
            }
        );
        for reply in &accepts {
            assert!(matches!(reply.status.as_u16(), 201 | 409), "{}", reply.body);
        }
        accepted_offers += accepts.iter().filter(|r| r.status == 201).count();
        tokio::join!(pass(&app), pass(&sibling));
        assert_capacity_kept(&app, &event).await;
        assert_line_kept(&app, &event, &tickets[0]).await;
    }
    // The line was used: seats freed by cancellations went to people in it.
    assert!(accepted_offers > 0, "no offer was ever accepted");
    eprintln!("mixed race: {accepted_offers} waiting-list offers accepted over 20 rounds");
    sibling.cleanup().await;
    app.cleanup().await;
}

/// The console: the ticket form sets the window (its errors under the
/// field), and My tickets says until when the seat is held.
async fn the_console_sets_windows_and_shows_holds(app: &TestApp) {
    use crate::console::{Browser, hidden, html, location};
    let event = app
        .create_event(&app.admin_token, "Console Night", 50)
        .await;
    let mut admin = Browser::new(app);
    admin
        .sign_in(crate::helpers::SUPERUSER, crate::helpers::PASSWORD)
        .await;
    let page = admin.get(&format!("/console/events/{event}/")).await;
    html(&page, 200);
    assert!(page.body.contains("Payment window (minutes)"));
    let csrf = hidden(&page.body, "csrf_token");
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let end = (now + chrono::Duration::days(7))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let add = |window: &'static str| {
        vec![
            ("csrf_token".to_owned(), csrf.clone()),
            ("name".to_owned(), "Reserved".to_owned()),
            ("price".to_owned(), "75000".to_owned()),
            ("quota".to_owned(), "10".to_owned()),
            ("sales_start".to_owned(), start.clone()),
            ("sales_end".to_owned(), end.clone()),
            ("payment_window_minutes".to_owned(), window.to_owned()),
        ]
    };
    let path = format!("/console/events/{event}/tickets");
    let fields = add("0");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refused = admin.post(&path, &pairs).await;
    html(&refused, 400);
    assert!(
        refused.body.contains("greater than or equal to 1"),
        "{}",
        refused.body
    );
    let none = app
        .get(&format!("/api/tickets/?event={event}"), app.admin())
        .await;
    assert_eq!(none.body["count"], 0, "nothing written");
    let fields = add("45");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let added = admin.post(&path, &pairs).await;
    assert_eq!(
        added.status,
        reqwest::StatusCode::SEE_OTHER,
        "{}",
        added.body
    );
    assert!(location(&added).contains(&event));
    let tickets = app
        .get(&format!("/api/tickets/?event={event}"), app.admin())
        .await;
    let ticket = tickets.body["tickets"][0].clone();
    assert_eq!(ticket["payment_window_minutes"], 45);
    let ticket = ticket["id"].as_str().expect("id").to_owned();
    // The edit form shows it.
    let edit = admin.get(&format!("/console/tickets/{ticket}/edit")).await;
    assert!(edit.body.contains("value=\"45\""), "{}", edit.body);

    let (_, _) = app.user("indah").await;
    let mut indah = Browser::new(app);
    indah.sign_in("indah", crate::helpers::PASSWORD).await;
    let (token, _) = app.login_ok("indah", crate::helpers::PASSWORD).await;
    app.register(&token, &ticket).await.assert(201);
    let mine = indah.get("/console/my/").await;
    html(&mine, 200);
    assert!(
        mine.body.contains("Your seat is held until"),
        "{}",
        mine.body
    );
    assert!(
        mine.body.contains("(45 minutes left)") || mine.body.contains("(44 minutes left)"),
        "{}",
        mine.body
    );
    // Expired: no longer a ticket of hers.
    app.state.clock.advance(minutes(46));
    pass(app).await;
    let mine = indah.get("/console/my/").await;
    assert!(!mine.body.contains("Console Night"), "{}", mine.body);
}
