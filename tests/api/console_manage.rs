//! The console's pages for running events and the service (API.md §8):
//! events created, edited and deleted from forms; tickets, posters and
//! payments from the event page; attendees browsing, registering and
//! cancelling; accounts, groups, jobs and the service status for staff.
//! Every form: its CSRF token, its errors next to the fields, nothing
//! written when refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::{Browser, Page, hidden, html, location};
use crate::helpers::{PASSWORD, SUPERUSER, TestApp, png};

crate::backend_tests!(
    organisers_create_edit_and_delete_events_from_forms,
    tickets_and_posters_are_managed_from_the_event_page,
    managers_move_payments_and_only_along_allowed_moves,
    attendees_browse_register_and_cancel,
    superusers_manage_accounts_and_admins_only_read_them,
    staff_see_jobs_retry_dead_ones_and_the_service_status,
    every_page_sends_strangers_to_sign_in_and_refuses_the_wrong_role,
    ticket_types_are_edited_on_their_own_page,
);

/// The flash message a redirect leaves for the next page.
async fn follow(browser: &mut Browser<'_>, page: &Page) -> Page {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let to = location(page).split('#').next().unwrap_or("/").to_string();
    browser.get(&to).await
}

fn event_form<'a>(csrf: &'a str, name: &'a str, quota: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", csrf),
        ("name", name),
        ("category", "Meetup"),
        ("location", "Jakarta Convention Center"),
        ("start_time", "2031-01-10T19:00"),
        ("end_time", "2031-01-10T22:00"),
        ("quota", quota),
        ("status", "scheduled"),
        ("description", "Talks and food"),
    ]
}

async fn event_count(app: &TestApp) -> u64 {
    app.get("/api/events/", app.admin()).await.body["count"]
        .as_u64()
        .expect("count")
}

async fn organisers_create_edit_and_delete_events_from_forms(app: &TestApp) {
    let (_, orga_token) = app.user_in("orga", "organizer").await;
    app.user_in("orgb", "organizer").await;
    app.user("plain").await;

    // Anonymous: to sign in; a plain user: no events section.
    let mut anonymous = Browser::new(app);
    let page = anonymous.get("/console/events/new").await;
    assert_eq!(
        location(&page),
        "/console/login?next=%2Fconsole%2Fevents%2Fnew"
    );
    let mut plain = Browser::new(app);
    plain.sign_in("plain", PASSWORD).await;
    html(&plain.get("/console/events/new").await, 403);
    html(&plain.get("/console/events/").await, 403);
    let csrf = hidden(&plain.get("/console/").await.body, "csrf_token");
    html(
        &plain
            .post("/console/events/new", &event_form(&csrf, "Sneaky", "10"))
            .await,
        403,
    );
    assert_eq!(event_count(app).await, 0);

    let mut orga = Browser::new(app);
    orga.sign_in("orga", PASSWORD).await;
    let form = orga.get("/console/events/new").await;
    html(&form, 200);
    for label in [
        "for=\"event-name\"",
        "for=\"event-quota\"",
        "for=\"event-start_time\"",
    ] {
        assert!(form.body.contains(label), "{label}");
    }
    let csrf = hidden(&form.body, "csrf_token");
    // Without the session's token, or with another: 403, nothing written.
    html(
        &orga
            .post("/console/events/new", &event_form("", "Rust Night", "10"))
            .await,
        403,
    );
    html(
        &orga
            .post(
                "/console/events/new",
                &event_form("forged", "Rust Night", "10"),
            )
            .await,
        403,
    );
    // Bad fields: 400, the errors under them, what was entered kept.
    let refused = orga
        .post("/console/events/new", &event_form(&csrf, "", "lots"))
        .await;
    html(&refused, 400);
    assert!(
        refused.body.contains("id=\"event-name-error\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("This field may not be blank."));
    assert!(refused.body.contains("id=\"event-quota-error\""));
    assert!(refused.body.contains("A valid integer is required."));
    assert!(refused.body.contains("value=\"Jakarta Convention Center\""));
    assert!(refused.body.contains("value=\"lots\""));
    assert_eq!(event_count(app).await, 0);

    let created = orga
        .post(
            "/console/events/new",
            &event_form(&csrf, "Rust Night Jakarta", "120"),
        )
        .await;
    let page = follow(&mut orga, &created).await;
    html(&page, 200);
    assert!(page.body.contains("class=\"flash ok\""), "{}", page.body);
    assert!(page.body.contains("Rust Night Jakarta"));
    let id = location(&created)
        .trim_start_matches("/console/events/")
        .trim_end_matches('/')
        .to_string();
    let api = app.get(&format!("/api/events/{id}/"), app.admin()).await;
    assert_eq!(api.body["quota"], 120);
    assert_eq!(api.body["status"], "scheduled");
    // The flash shows once.
    let again = orga.get(&format!("/console/events/{id}/")).await;
    assert!(!again.body.contains("class=\"flash ok\""));

    // Edit: a bad value is refused with the form kept, nothing changed.
    let mut bad = event_form(&csrf, "Renamed", "120");
    bad[4] = ("start_time", "next tuesday");
    let refused = orga.post(&format!("/console/events/{id}/"), &bad).await;
    html(&refused, 400);
    assert!(refused.body.contains("id=\"details-start_time-error\""));
    assert!(refused.body.contains("value=\"Renamed\""));
    let api = app.get(&format!("/api/events/{id}/"), app.admin()).await;
    assert_eq!(api.body["name"], "Rust Night Jakarta");
    let saved = orga
        .post(
            &format!("/console/events/{id}/"),
            &event_form(&csrf, "Rust Night Jakarta 2031", "150"),
        )
        .await;
    assert!(follow(&mut orga, &saved).await.body.contains("saved"));
    let api = app.get(&format!("/api/events/{id}/"), app.admin()).await;
    assert_eq!(api.body["name"], "Rust Night Jakarta 2031");
    assert_eq!(api.body["quota"], 150);

    // Another organiser: 404 for the page, the edit and the delete.
    let mut orgb = Browser::new(app);
    orgb.sign_in("orgb", PASSWORD).await;
    let csrf_b = hidden(&orgb.get("/console/").await.body, "csrf_token");
    html(&orgb.get(&format!("/console/events/{id}/")).await, 404);
    html(
        &orgb
            .post(
                &format!("/console/events/{id}/"),
                &event_form(&csrf_b, "Taken over", "10"),
            )
            .await,
        404,
    );
    html(
        &orgb.get(&format!("/console/events/{id}/delete")).await,
        404,
    );
    html(
        &orgb
            .post(
                &format!("/console/events/{id}/delete"),
                &[("csrf_token", &csrf_b)],
            )
            .await,
        404,
    );

    // Delete: a confirmation naming what goes with it, then the delete.
    app.create_ticket(&orga_token, &id, 10).await;
    let confirm = orga.get(&format!("/console/events/{id}/delete")).await;
    html(&confirm, 200);
    assert!(confirm.body.contains("1 ticket type"), "{}", confirm.body);
    assert!(confirm.body.contains("0 registrations"));
    html(
        &orga
            .post(&format!("/console/events/{id}/delete"), &[])
            .await,
        403,
    );
    app.get(&format!("/api/events/{id}/"), app.admin())
        .await
        .assert(200);
    let deleted = orga
        .post(
            &format!("/console/events/{id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(location(&deleted), "/console/events/");
    assert!(follow(&mut orga, &deleted).await.body.contains("deleted"));
    app.get(&format!("/api/events/{id}/"), app.admin())
        .await
        .assert(404);
}

async fn tickets_and_posters_are_managed_from_the_event_page(app: &TestApp) {
    let (_, orga) = app.user_in("orga", "organizer").await;
    let event = app.create_event(&orga, "Poster night", 100).await;
    let mut browser = Browser::new(app);
    browser.sign_in("orga", PASSWORD).await;
    let page = browser.get(&format!("/console/events/{event}/")).await;
    html(&page, 200);
    assert!(page.body.contains("No tickets yet"));
    assert!(page.body.contains("No poster yet"));
    let csrf = hidden(&page.body, "csrf_token");
    let tickets_path = format!("/console/events/{event}/tickets");
    let ticket_form = |csrf: &str, price: &str, start: &str| -> Vec<(String, String)> {
        vec![
            ("csrf_token".into(), csrf.into()),
            ("name".into(), "Early bird".into()),
            ("price".into(), price.into()),
            ("quota".into(), "40".into()),
            ("sales_start".into(), start.into()),
            ("sales_end".into(), "2030-01-01T00:00".into()),
        ]
    };
    // Bad price and a window that ends before it starts: 400, no ticket.
    let refused = post_owned(
        &mut browser,
        &tickets_path,
        &ticket_form(&csrf, "cheap", "2031-01-01T00:00"),
    )
    .await;
    html(&refused, 400);
    assert!(
        refused.body.contains("id=\"ticket-price-error\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"Early bird\""));
    // An empty price: required, not "a valid number".
    let empty = post_owned(
        &mut browser,
        &tickets_path,
        &ticket_form(&csrf, " ", "2026-01-01T00:00"),
    )
    .await;
    html(&empty, 400);
    assert!(
        empty.body.contains("This field is required."),
        "{}",
        empty.body
    );
    assert!(!empty.body.contains("A valid number is required."));
    let listed = app
        .get(&format!("/api/tickets/?event={event}"), Some(&orga))
        .await;
    assert_eq!(listed.body["count"], 0);
    html(
        &post_owned(
            &mut browser,
            &tickets_path,
            &ticket_form("", "75000", "2026-01-01T00:00"),
        )
        .await,
        403,
    );
    let added = post_owned(
        &mut browser,
        &tickets_path,
        &ticket_form(&csrf, "75000", "2026-01-01T00:00"),
    )
    .await;
    let page = follow(&mut browser, &added).await;
    assert!(
        page.body.contains("Ticket “Early bird” added."),
        "{}",
        page.body
    );
    assert!(page.body.contains("75,000"));
    assert!(page.body.contains("0 / 40"));
    let listed = app
        .get(&format!("/api/tickets/?event={event}"), Some(&orga))
        .await;
    assert_eq!(listed.body["count"], 1);
    let ticket_id = listed.body["tickets"][0]["id"]
        .as_str()
        .expect("ticket id")
        .to_string();

    // Posters: a real image is stored and shown; anything else is refused.
    let posters_path = format!("/console/events/{event}/posters");
    let no_token = browser
        .post_file(&posters_path, &[], ("image", "poster.png", png(2048)))
        .await;
    html(&no_token, 403);
    let not_image = browser
        .post_file(
            &posters_path,
            &[("csrf_token", &csrf)],
            ("image", "notes.png", b"just some text".to_vec()),
        )
        .await;
    html(&not_image, 400);
    assert!(
        not_image.body.contains("Upload a valid image"),
        "{}",
        not_image.body
    );
    // A 2 MB BMP is the wrong kind before it is too large; a large PNG is
    // too large.
    let mut bmp = b"BM".to_vec();
    bmp.resize(2_040_138, 0);
    let big_bmp = browser
        .post_file(
            &posters_path,
            &[("csrf_token", &csrf)],
            ("image", "scan.bmp", bmp),
        )
        .await;
    html(&big_bmp, 400);
    assert!(
        big_bmp.body.contains("Upload a valid image"),
        "{}",
        big_bmp.body
    );
    let big_png = browser
        .post_file(
            &posters_path,
            &[("csrf_token", &csrf)],
            ("image", "huge.png", png(600_000)),
        )
        .await;
    html(&big_png, 400);
    assert!(
        big_png
            .body
            .contains("The file is too large (586 KiB); the limit is 500 KiB."),
        "{}",
        big_png.body
    );
    let listed = app
        .get(&format!("/api/events/{event}/poster/"), Some(&orga))
        .await;
    assert_eq!(
        listed.body.as_array().map_or(0, Vec::len),
        0,
        "{:?}",
        listed.body
    );
    let uploaded = browser
        .post_file(
            &posters_path,
            &[("csrf_token", &csrf)],
            ("image", "poster.png", png(2048)),
        )
        .await;
    let page = follow(&mut browser, &uploaded).await;
    assert!(page.body.contains("Poster uploaded."));
    let start = page
        .body
        .find("src=\"/api/media/")
        .expect("the poster is shown")
        + 5;
    let src = page.body[start..]
        .split('"')
        .next()
        .expect("src")
        .to_string();
    let image = app.client.get(app.url(&src)).send().await.expect("image");
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    let poster_id = src
        .trim_start_matches("/api/media/")
        .trim_end_matches('/')
        .to_string();
    let confirm = browser
        .get(&format!("/console/posters/{poster_id}/delete"))
        .await;
    html(&confirm, 200);
    assert!(confirm.body.contains("poster.png"));
    let gone = browser
        .post(
            &format!("/console/posters/{poster_id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert!(
        follow(&mut browser, &gone)
            .await
            .body
            .contains("Poster deleted.")
    );
    assert_eq!(image_status(app, &src).await, 404);

    // Deleting a ticket type: a confirmation naming its registrations.
    let (_, attendee) = app.user("ayu").await;
    app.register(&attendee, &ticket_id).await.assert(201);
    let confirm = browser
        .get(&format!("/console/tickets/{ticket_id}/delete"))
        .await;
    html(&confirm, 200);
    assert!(confirm.body.contains("1 registration "), "{}", confirm.body);
    let deleted = browser
        .post(
            &format!("/console/tickets/{ticket_id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert!(
        follow(&mut browser, &deleted)
            .await
            .body
            .contains("deleted")
    );
    app.get(&format!("/api/tickets/{ticket_id}/"), Some(&orga))
        .await
        .assert(404);
}

async fn post_owned(browser: &mut Browser<'_>, path: &str, fields: &[(String, String)]) -> Page {
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post(path, &refs).await
}

async fn image_status(app: &TestApp, path: &str) -> u16 {
    app.client
        .get(app.url(path))
        .send()
        .await
        .expect("image")
        .status()
        .as_u16()
}

async fn payment_status(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/payments/{id}/"), app.admin())
        .await
        .body["payment_status"]
        .clone()
}

async fn managers_move_payments_and_only_along_allowed_moves(app: &TestApp) {
    let (_, orga) = app.user_in("orga", "organizer").await;
    app.user_in("boss", "admin").await;
    let event = app.create_event(&orga, "Paid night", 100).await;
    let ticket = app.create_ticket(&orga, &event, 10).await;
    let (_, attendee) = app.user("wulan").await;
    let registration = app.register(&attendee, &ticket).await;
    registration.assert(201);
    let payment = app
        .post(
            "/api/payments/",
            Some(&attendee),
            json!({"registration_id": registration.id(), "payment_method": "bank transfer", "amount_paid": "150000.50"}),
        )
        .await;
    payment.assert(201);
    let payment_id = payment.id();

    // The event's organiser sees the payment and its moves (API.md §8.1);
    // another organiser may not move it.
    let mut organiser = Browser::new(app);
    organiser.sign_in("orga", PASSWORD).await;
    let page = organiser.get(&format!("/console/events/{event}/")).await;
    assert!(page.body.contains("bank transfer"), "{}", page.body);
    assert!(page.body.contains("Mark completed"));
    // Their dashboard counts the payments waiting for them (linked to the
    // list); the last 24 hours of registrations are the admins' figure.
    let pending = |n: u32| format!("Payments pending</a></span><span class=\"value\">{n}<");
    let dashboard = organiser.get("/console/").await.body;
    assert!(dashboard.contains(&pending(1)), "{dashboard}");
    assert!(dashboard.contains("href=\"/console/payments/?status=pending\""));
    assert!(
        !dashboard.contains("Registrations, last 24 h"),
        "{dashboard}"
    );
    app.user_in("rival", "organizer").await;
    let mut rival = Browser::new(app);
    rival.sign_in("rival", PASSWORD).await;
    let rival_home = rival.get("/console/").await.body;
    assert!(rival_home.contains(&pending(0)), "{rival_home}");
    let mut payer = Browser::new(app);
    payer.sign_in("wulan", PASSWORD).await;
    let payer_home = payer.get("/console/").await.body;
    assert!(!payer_home.contains("Payments pending"), "{payer_home}");
    let csrf = hidden(&rival_home, "csrf_token");
    html(
        &rival
            .post(
                &format!("/console/payments/{payment_id}"),
                &[("csrf_token", &csrf), ("status", "completed")],
            )
            .await,
        403,
    );
    assert_eq!(payment_status(app, &payment_id).await, "pending");

    // An admin: the allowed moves only.
    let mut admin = Browser::new(app);
    admin.sign_in("boss", PASSWORD).await;
    let page = admin.get(&format!("/console/events/{event}/")).await;
    html(&page, 200);
    assert!(page.body.contains("Mark completed") && page.body.contains("Mark failed"));
    assert!(!page.body.contains("Mark refunded"), "not from pending");
    let csrf = hidden(&page.body, "csrf_token");
    html(
        &admin
            .post(
                &format!("/console/payments/{payment_id}"),
                &[("status", "completed")],
            )
            .await,
        403,
    );
    let refused = admin
        .post(
            &format!("/console/payments/{payment_id}"),
            &[("csrf_token", &csrf), ("status", "refunded")],
        )
        .await;
    let shown = follow(&mut admin, &refused).await;
    assert!(
        shown.body.contains("class=\"flash error\""),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("Cannot change the status from"));
    assert_eq!(payment_status(app, &payment_id).await, "pending");
    let moved = admin
        .post(
            &format!("/console/payments/{payment_id}"),
            &[("csrf_token", &csrf), ("status", "completed")],
        )
        .await;
    let shown = follow(&mut admin, &moved).await;
    assert!(shown.body.contains("Payment marked completed."));
    assert!(shown.body.contains("Mark refunded"));
    assert_eq!(payment_status(app, &payment_id).await, "completed");
    // The numbers follow: one paid, the revenue.
    assert!(shown.body.contains("150,000.50"), "{}", shown.body);
    // The admin's dashboard counts what is pending.
    let dashboard = admin.get("/console/").await;
    assert!(dashboard.body.contains("Payments pending"));
}

async fn attendees_browse_register_and_cancel(app: &TestApp) {
    let (_, orga) = app.user_in("orga", "organizer").await;
    let event = app.create_event(&orga, "Open Source Day", 100).await;
    let ticket = app.create_ticket(&orga, &event, 1).await;
    let mut draft = TestApp::event_body("Secret draft", 10);
    draft["status"] = json!("draft");
    let draft = app.post("/api/events/", Some(&orga), draft).await;
    draft.assert(201);
    app.user("tari").await;
    app.user("budi").await;

    let mut tari = Browser::new(app);
    tari.sign_in("tari", PASSWORD).await;
    let list = tari.get("/console/browse/").await;
    html(&list, 200);
    assert!(list.body.contains("Open Source Day"));
    assert!(!list.body.contains("Secret draft"));
    // The search box matches the place too.
    let by_place = tari.get("/console/browse/?q=CONVENTION").await;
    assert!(
        by_place.body.contains("Open Source Day"),
        "{}",
        by_place.body
    );
    let nowhere = tari.get("/console/browse/?q=Surabaya").await;
    assert!(!nowhere.body.contains("Open Source Day"));
    html(
        &tari.get(&format!("/console/browse/{}/", draft.id())).await,
        404,
    );
    let page = tari.get(&format!("/console/browse/{event}/")).await;
    html(&page, 200);
    assert!(page.body.contains("Register"));
    let csrf = hidden(&page.body, "csrf_token");
    let path = format!("/console/browse/{event}/");
    html(&tari.post(&path, &[("ticket_id", &ticket)]).await, 403);
    let registered = tari
        .post(&path, &[("csrf_token", &csrf), ("ticket_id", &ticket)])
        .await;
    assert_eq!(location(&registered), "/console/my/");
    let mine = follow(&mut tari, &registered).await;
    assert!(mine.body.contains("You are registered"));
    assert!(mine.body.contains("Open Source Day") && mine.body.contains("<svg"));
    // Twice: the API's message, a 409 page.
    let twice = tari
        .post(&path, &[("csrf_token", &csrf), ("ticket_id", &ticket)])
        .await;
    html(&twice, 409);
    assert!(
        twice
            .body
            .contains("You are already registered for this ticket.")
    );
    // Sold out for the next person.
    let mut budi = Browser::new(app);
    budi.sign_in("budi", PASSWORD).await;
    let csrf_b = hidden(&budi.get(&path).await.body, "csrf_token");
    let sold_out = budi
        .post(&path, &[("csrf_token", &csrf_b), ("ticket_id", &ticket)])
        .await;
    html(&sold_out, 409);
    assert!(sold_out.body.contains("Sold out."));
    let no_ticket = budi
        .post(&path, &[("csrf_token", &csrf_b), ("ticket_id", "nope")])
        .await;
    html(&no_ticket, 400);

    // Cancel: a confirmation, then the place goes back.
    let registrations = app.get("/api/registrations/", app.admin()).await;
    assert_eq!(registrations.body["count"], 1);
    let registration = registrations.body["registrations"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let cancel_path = format!("/console/my/registrations/{registration}/cancel");
    // Not budi's to cancel: as if it did not exist.
    html(&budi.get(&cancel_path).await, 404);
    html(
        &budi.post(&cancel_path, &[("csrf_token", &csrf_b)]).await,
        404,
    );
    let confirm = tari.get(&cancel_path).await;
    html(&confirm, 200);
    assert!(confirm.body.contains("Open Source Day"));
    html(&tari.post(&cancel_path, &[]).await, 403);
    let cancelled = tari.post(&cancel_path, &[("csrf_token", &csrf)]).await;
    assert!(
        follow(&mut tari, &cancelled)
            .await
            .body
            .contains("is cancelled")
    );
    let registrations = app.get("/api/registrations/", app.admin()).await;
    assert_eq!(registrations.body["count"], 0);
    let ticket_now = app
        .get(&format!("/api/tickets/{ticket}/"), Some(&orga))
        .await;
    assert_eq!(ticket_now.body["available"], 1);
}

async fn superusers_manage_accounts_and_admins_only_read_them(app: &TestApp) {
    app.user_in("boss", "admin").await;
    let (dewi, _) = app.user("dewi").await;
    let organizer_group = app.group("organizer").await;

    let mut plain = Browser::new(app);
    plain.sign_in("dewi", PASSWORD).await;
    html(&plain.get("/console/users/").await, 403);
    html(&plain.get("/console/groups/").await, 403);

    // An admin reads accounts, changes nothing.
    let mut admin = Browser::new(app);
    admin.sign_in("boss", PASSWORD).await;
    let list = admin.get("/console/users/?q=dew").await;
    html(&list, 200);
    assert!(list.body.contains("dewi@example.com"));
    assert!(!list.body.contains("boss@example.com"));
    let page = admin.get(&format!("/console/users/{dewi}/")).await;
    html(&page, 200);
    assert!(!page.body.contains("Deactivate account"));
    let csrf = hidden(&page.body, "csrf_token");
    html(
        &admin
            .post(
                &format!("/console/users/{dewi}/active"),
                &[("csrf_token", &csrf), ("active", "false")],
            )
            .await,
        403,
    );
    let group_id = organizer_group.to_string();
    html(
        &admin
            .post(
                &format!("/console/users/{dewi}/groups"),
                &[("csrf_token", &csrf), ("group", &group_id)],
            )
            .await,
        403,
    );
    html(&admin.get("/console/groups/").await, 403);
    assert_eq!(plain.get("/console/").await.status, StatusCode::OK);

    // The superuser: groups, deactivation (sessions and tokens end), back.
    let mut root = Browser::new(app);
    root.sign_in(SUPERUSER, PASSWORD).await;
    let page = root.get(&format!("/console/users/{dewi}/")).await;
    assert!(page.body.contains("Deactivate account"));
    let csrf = hidden(&page.body, "csrf_token");
    let added = root
        .post(
            &format!("/console/users/{dewi}/groups"),
            &[("csrf_token", &csrf), ("group", &group_id)],
        )
        .await;
    assert!(
        follow(&mut root, &added)
            .await
            .body
            .contains("dewi added to organizer.")
    );
    let api = app.get(&format!("/api/users/{dewi}/"), app.admin()).await;
    assert_eq!(api.body["groups"], json!(["organizer"]), "{:?}", api.body);
    // Removing a membership asks first; only the superuser is asked.
    let remove_path = format!("/console/users/{dewi}/groups/{group_id}/remove");
    let user_page = root.get(&format!("/console/users/{dewi}/")).await;
    assert!(user_page.body.contains(&remove_path), "{}", user_page.body);
    let confirm = root.get(&remove_path).await;
    html(&confirm, 200);
    assert!(
        confirm.body.contains("(dewi) from the group “organizer”?"),
        "{}",
        confirm.body
    );
    assert!(confirm.body.contains("can no longer create events"));
    let mut staff = Browser::new(app);
    staff.sign_in("boss", PASSWORD).await;
    html(&staff.get(&remove_path).await, 403);
    let api = app.get(&format!("/api/users/{dewi}/"), app.admin()).await;
    assert_eq!(
        api.body["groups"],
        json!(["organizer"]),
        "asking wrote nothing"
    );
    let removed = root
        .post(
            &remove_path,
            &[("csrf_token", &hidden(&confirm.body, "csrf_token"))],
        )
        .await;
    assert!(
        follow(&mut root, &removed)
            .await
            .body
            .contains("Removed from the group.")
    );
    let api = app.get(&format!("/api/users/{dewi}/"), app.admin()).await;
    assert_eq!(api.body["groups"], json!([]));

    html(
        &root
            .post(
                &format!("/console/users/{dewi}/active"),
                &[("active", "false")],
            )
            .await,
        403,
    );
    let off = root
        .post(
            &format!("/console/users/{dewi}/active"),
            &[("csrf_token", &csrf), ("active", "false")],
        )
        .await;
    assert!(
        follow(&mut root, &off)
            .await
            .body
            .contains("is deactivated")
    );
    assert_eq!(
        plain.get("/console/").await.status,
        StatusCode::SEE_OTHER,
        "their session ended"
    );
    app.login("dewi", PASSWORD).await.assert(401);
    let on = root
        .post(
            &format!("/console/users/{dewi}/active"),
            &[("csrf_token", &csrf), ("active", "true")],
        )
        .await;
    assert!(
        follow(&mut root, &on)
            .await
            .body
            .contains("can sign in again")
    );
    app.login("dewi", PASSWORD).await.assert(200);
    // Nobody locks themselves out.
    let me = app.get("/api/users/?search=aras", app.admin()).await;
    let my_id = me.body["users"][0]["id"].as_str().expect("id").to_string();
    let refused = root
        .post(
            &format!("/console/users/{my_id}/active"),
            &[("csrf_token", &csrf), ("active", "false")],
        )
        .await;
    assert!(
        follow(&mut root, &refused)
            .await
            .body
            .contains("You cannot deactivate your own account.")
    );

    // Groups: listed with their members; a new one from the form.
    let groups = root.get("/console/groups/").await;
    html(&groups, 200);
    assert!(groups.body.contains("organizer"));
    let blank = root
        .post("/console/groups/", &[("csrf_token", &csrf), ("name", " ")])
        .await;
    html(&blank, 400);
    assert!(blank.body.contains("This field may not be blank."));
    let created = root
        .post(
            "/console/groups/",
            &[("csrf_token", &csrf), ("name", "volunteers")],
        )
        .await;
    assert!(
        follow(&mut root, &created)
            .await
            .body
            .contains("Group “volunteers” created.")
    );
    // A second one of that name: the API's message, as a sentence.
    let again = root
        .post(
            "/console/groups/",
            &[("csrf_token", &csrf), ("name", "volunteers")],
        )
        .await;
    html(&again, 400);
    assert!(
        again.body.contains("Group with this name already exists."),
        "{}",
        again.body
    );

    // A group's page: its members, a rename, a delete after a confirmation.
    let list = root.get("/console/groups/").await;
    let marker = "\">organizer</a>";
    let end = list
        .body
        .find(marker)
        .expect("a link to the organizer group");
    let start = list.body[..end]
        .rfind("/console/groups/")
        .expect("its path");
    let organizer_page = list.body[start..end].to_owned();
    let page = root.get(&organizer_page).await;
    html(&page, 200);
    assert!(page.body.contains("<h2>Members</h2>"));
    let volunteers_end = list.body.find("\">volunteers</a>").expect("volunteers");
    let volunteers_start = list.body[..volunteers_end]
        .rfind("/console/groups/")
        .expect("its path");
    let volunteers = list.body[volunteers_start..volunteers_end].to_owned();
    let taken = root
        .post(&volunteers, &[("csrf_token", &csrf), ("name", "organizer")])
        .await;
    html(&taken, 400);
    assert!(taken.body.contains("Group with this name already exists."));
    let renamed = root
        .post(&volunteers, &[("csrf_token", &csrf), ("name", "crew")])
        .await;
    assert!(
        follow(&mut root, &renamed)
            .await
            .body
            .contains("Group renamed “crew”.")
    );
    let confirm = root.get(&format!("{volunteers}delete")).await;
    html(&confirm, 200);
    assert!(confirm.body.contains("Delete the group “crew”?"));
    let deleted = root
        .post(&format!("{volunteers}delete"), &[("csrf_token", &csrf)])
        .await;
    assert!(
        follow(&mut root, &deleted)
            .await
            .body
            .contains("Group “crew” deleted.")
    );
    html(&root.get(&volunteers).await, 404);
}

/// The server's own database, for seeding what only time or failure makes.
async fn database(app: &TestApp) -> sea_orm::DatabaseConnection {
    let url = app.var("DATABASE_URL").unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            app.data_dir().join("dicoevent.sqlite3").display()
        )
    });
    sea_orm::Database::connect(url)
        .await
        .expect("open the server's database")
}

async fn staff_see_jobs_retry_dead_ones_and_the_service_status(app: &TestApp) {
    use sea_orm::ConnectionTrait;
    let (_, orga) = app.user_in("orga", "organizer").await;
    app.user_in("boss", "admin").await;
    let event = app.create_event(&orga, "Mail night", 10).await;
    let ticket = app.create_ticket(&orga, &event, 10).await;
    let (_, attendee) = app.user("rina").await;
    app.register(&attendee, &ticket).await.assert(201);
    // The confirmation job, as if its last attempt had failed.
    let db = database(app).await;
    db.execute_unprepared(
        "UPDATE outbox SET status = 'dead', attempts = 8, last_error = 'smtp: connection refused' WHERE kind = 'confirmation'",
    )
    .await
    .expect("seed a dead job");
    db.close().await.ok();

    let mut organiser = Browser::new(app);
    organiser.sign_in("orga", PASSWORD).await;
    html(&organiser.get("/console/jobs/").await, 403);
    html(&organiser.get("/console/status/").await, 403);

    let mut admin = Browser::new(app);
    admin.sign_in("boss", PASSWORD).await;
    let jobs = admin.get("/console/jobs/").await;
    html(&jobs, 200);
    assert!(
        jobs.body.contains("smtp: connection refused"),
        "{}",
        jobs.body
    );
    assert!(jobs.body.contains("confirmation"));
    let start = jobs
        .body
        .find("action=\"/console/jobs/")
        .expect("a retry form")
        + 8;
    let action = jobs.body[start..]
        .split('"')
        .next()
        .expect("action")
        .to_string();
    let csrf = hidden(&jobs.body, "csrf_token");
    html(&admin.post(&action, &[]).await, 403);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.body["jobs"]["dead_jobs"], 1);
    let retried = admin.post(&action, &[("csrf_token", &csrf)]).await;
    let shown = follow(&mut admin, &retried).await;
    assert!(shown.body.contains("queued again"), "{}", shown.body);
    assert!(shown.body.contains("No dead jobs"));
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.body["jobs"]["dead_jobs"], 0);
    let twice = admin.post(&action, &[("csrf_token", &csrf)]).await;
    assert!(
        follow(&mut admin, &twice)
            .await
            .body
            .contains("no longer dead")
    );

    let status = admin.get("/console/status/").await;
    html(&status, 200);
    assert!(status.body.contains("Database") && status.body.contains("ready"));
}

async fn every_page_sends_strangers_to_sign_in_and_refuses_the_wrong_role(app: &TestApp) {
    let (_, orga) = app.user_in("orga", "organizer").await;
    app.user_in("boss", "admin").await;
    app.user("plain").await;
    let event = app.create_event(&orga, "Roles night", 10).await;
    let pages = [
        "/console/".to_string(),
        "/console/my/".into(),
        "/console/browse/".into(),
        format!("/console/browse/{event}/"),
        "/console/events/".into(),
        "/console/events/new".into(),
        format!("/console/events/{event}/"),
        format!("/console/events/{event}/delete"),
        format!("/console/events/{event}/registrations.csv"),
        "/console/scan/".into(),
        "/console/users/".into(),
        "/console/groups/".into(),
        "/console/jobs/".into(),
        "/console/status/".into(),
    ];
    let mut stranger = Browser::new(app);
    for path in &pages {
        let page = stranger.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert!(
            location(&page).starts_with("/console/login?next="),
            "{path}: {}",
            location(&page)
        );
    }
    // Who may open what: (user, pages allowed). Every other page: 403 (or
    // 404 for an event that is not theirs).
    let everyone = ["/console/", "/console/my/", "/console/browse/"];
    let mut plain = Browser::new(app);
    plain.sign_in("plain", PASSWORD).await;
    let mut organiser = Browser::new(app);
    organiser.sign_in("orga", PASSWORD).await;
    let mut admin = Browser::new(app);
    admin.sign_in("boss", PASSWORD).await;
    let mut root = Browser::new(app);
    root.sign_in(SUPERUSER, PASSWORD).await;
    for path in &pages {
        let staff_only = ["/console/users/", "/console/jobs/", "/console/status/"];
        let expected_plain =
            if everyone.contains(&path.as_str()) || path.starts_with("/console/browse/") {
                200
            } else if path.contains(&event) {
                404
            } else {
                403
            };
        assert_eq!(
            plain.get(path).await.status.as_u16(),
            expected_plain,
            "plain {path}"
        );
        let expected_organiser =
            if staff_only.contains(&path.as_str()) || path == "/console/groups/" {
                403
            } else {
                200
            };
        assert_eq!(
            organiser.get(path).await.status.as_u16(),
            expected_organiser,
            "organiser {path}"
        );
        let expected_admin = if path == "/console/groups/" { 403 } else { 200 };
        assert_eq!(
            admin.get(path).await.status.as_u16(),
            expected_admin,
            "admin {path}"
        );
        assert_eq!(
            root.get(path).await.status.as_u16(),
            200,
            "superuser {path}"
        );
    }
}

async fn ticket_types_are_edited_on_their_own_page(app: &TestApp) {
    let (_, orga) = app.user_in("orga", "organizer").await;
    app.user_in("rival", "organizer").await;
    let event = app.create_event(&orga, "Edit night", 100).await;
    let ticket = app.create_ticket(&orga, &event, 10).await;
    let (_, guest) = app.user("guest").await;
    app.register(&guest, &ticket).await.assert(201);
    let edit = format!("/console/tickets/{ticket}/edit");

    let mut browser = Browser::new(app);
    browser.sign_in("orga", PASSWORD).await;
    let page = browser.get(&format!("/console/events/{event}/")).await;
    assert!(page.body.contains(&format!("href=\"{edit}\"")));
    let form = browser.get(&edit).await;
    html(&form, 200);
    assert!(form.body.contains("value=\"Regular\""));
    assert!(form.body.contains("value=\"150000.5\""), "{}", form.body);
    assert!(form.body.contains("value=\"10\""));
    let csrf = hidden(&form.body, "csrf_token");
    let fields = |price: &str, quota: &str| -> Vec<(String, String)> {
        vec![
            ("csrf_token".into(), csrf.clone()),
            ("name".into(), "Regular (door)".into()),
            ("price".into(), price.into()),
            ("quota".into(), quota.into()),
            ("sales_start".into(), "2026-01-01T00:00".into()),
            ("sales_end".into(), "2030-01-01T00:00".into()),
        ]
    };
    // A bad price: under its field, nothing changed.
    let bad = post_owned(&mut browser, &edit, &fields("cheap", "20")).await;
    html(&bad, 400);
    assert!(
        bad.body.contains("id=\"ticket-price-error\""),
        "{}",
        bad.body
    );
    // Fewer places than sold: refused in words.
    let below = post_owned(&mut browser, &edit, &fields("99000", "0")).await;
    html(&below, 409);
    let unchanged = app
        .get(&format!("/api/tickets/{ticket}/"), Some(&orga))
        .await;
    assert_eq!(unchanged.body["name"], "Regular");
    // Saved.
    let saved = post_owned(&mut browser, &edit, &fields("99000", "20")).await;
    let shown = follow(&mut browser, &saved).await;
    assert!(shown.body.contains("Ticket type “Regular (door)” saved."));
    let now = app
        .get(&format!("/api/tickets/{ticket}/"), Some(&orga))
        .await;
    assert_eq!(now.body["name"], "Regular (door)");
    assert_eq!(now.body["quota"], 20);
    assert_eq!(now.body["price"].as_f64(), Some(99000.0));
    // Another organiser's ticket type is not there for them.
    let mut rival = Browser::new(app);
    rival.sign_in("rival", PASSWORD).await;
    html(&rival.get(&edit).await, 404);
}
