//! The web console's sign-in (API.md §8): redirects, the login form and its
//! CSRF token, sessions in a cookie, sign-out, sessions ended by a password
//! change, `/admin/` → the console, HTML errors.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

crate::backend_tests!(
    anonymous_visitors_are_sent_to_sign_in,
    sign_in_needs_the_form_token_and_right_credentials,
    a_session_lasts_until_sign_out_or_a_new_password,
    admin_moves_to_the_console,
    attendees_see_their_tickets_with_a_qr_code,
    door_staff_scan_from_the_scan_page,
    organisers_see_their_events_and_export_registrations,
);

/// A browser: a client that does not follow redirects, with its cookies
/// kept by hand (as a browser would).
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    pub(crate) cookies: Vec<(String, String)>,
}

pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            cookies: Vec::new(),
        }
    }

    pub(crate) fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn keep(&mut self, headers: &reqwest::header::HeaderMap) {
        for set in headers.get_all("set-cookie") {
            let text = set.to_str().expect("ascii cookie");
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() && !text.contains("Max-Age=0") {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let res = self
            .app
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("sent");
        self.page(res).await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let res = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("sent");
        self.page(res).await
    }

    /// A `multipart/form-data` form: text fields and one file field.
    pub(crate) async fn post_file(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file: (&str, &str, Vec<u8>),
    ) -> Page {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        let (name, file_name, bytes) = file;
        form = form.part(
            name.to_string(),
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string()),
        );
        let res = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .multipart(form)
            .send()
            .await
            .expect("sent");
        self.page(res).await
    }

    async fn page(&mut self, res: reqwest::Response) -> Page {
        let status = res.status();
        let headers = res.headers().clone();
        self.keep(&headers);
        Page {
            status,
            headers,
            body: res.text().await.expect("body"),
        }
    }

    /// The sign-in form's token (from its hidden field).
    async fn login_token(&mut self) -> String {
        let form = self.get("/console/login").await;
        assert_eq!(form.status, StatusCode::OK);
        hidden(&form.body, "csrf_token")
    }

    pub(crate) async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let token = self.login_token().await;
        self.post(
            "/console/login",
            &[
                ("csrf_token", &token),
                ("username", username),
                ("password", password),
                ("next", "/console/"),
            ],
        )
        .await
    }
}

pub(crate) fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().expect("value").to_string()
}

pub(crate) fn location(page: &Page) -> &str {
    page.headers["location"].to_str().expect("location")
}

#[track_caller]
pub(crate) fn html(page: &Page, status: u16) {
    assert_eq!(page.status.as_u16(), status, "{}", page.body);
    assert!(
        page.headers["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/html")),
        "{:?}",
        page.headers
    );
}

async fn anonymous_visitors_are_sent_to_sign_in(app: &TestApp) {
    let mut browser = Browser::new(app);
    for path in ["/console/", "/console"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&page), "/console/login?next=%2Fconsole%2F");
    }
    let form = browser.get("/console/login?next=%2Fconsole%2F").await;
    html(&form, 200);
    for field in [
        "name=\"username\"",
        "name=\"password\"",
        "name=\"csrf_token\"",
    ] {
        assert!(form.body.contains(field), "{field}");
    }
    assert!(form.body.contains("<label for=\"username\">"));
    let csp = form.headers["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(form.headers["x-frame-options"], "DENY");
    // An unknown console page is an HTML 404.
    html(&browser.get("/console/no-such-page").await, 404);
}

async fn sign_in_needs_the_form_token_and_right_credentials(app: &TestApp) {
    app.user("dewi").await;
    let mut browser = Browser::new(app);
    let token = browser.login_token().await;
    // No token, or another one: 403, no session.
    for sent in ["", "forged-token"] {
        let page = browser
            .post(
                "/console/login",
                &[
                    ("csrf_token", sent),
                    ("username", "dewi"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        html(&page, 403);
        assert!(browser.cookie("dicoevent_session").is_none());
    }
    // Wrong password: the form again, with a message and the name kept.
    let page = browser
        .post(
            "/console/login",
            &[
                ("csrf_token", &token),
                ("username", "dewi"),
                ("password", "wrong-password"),
            ],
        )
        .await;
    html(&page, 200);
    assert!(page.body.contains("role=\"alert\""));
    assert!(page.body.contains("value=\"dewi\""));
    assert!(browser.cookie("dicoevent_session").is_none());
    // Right: to `next` when it is a local path, never elsewhere.
    for (next, expected) in [
        ("/console/", "/console/"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/x", "/console/"),
        ("/console/?tab=1", "/console/?tab=1"),
    ] {
        let mut fresh = Browser::new(app);
        let token = fresh.login_token().await;
        let page = fresh
            .post(
                "/console/login",
                &[
                    ("csrf_token", &token),
                    ("username", "DEWI"),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(location(&page), expected, "next {next}");
        let set = page
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("dicoevent_session="))
            .expect("a session cookie")
            .to_string();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(!set.contains("Secure"), "not Secure by default: {set}");
    }
}

async fn a_session_lasts_until_sign_out_or_a_new_password(app: &TestApp) {
    let (id, token) = app.user("kartika").await;
    let mut browser = Browser::new(app);
    let signed_in = browser.sign_in("kartika", PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let dashboard = browser.get("/console/").await;
    html(&dashboard, 200);
    assert!(dashboard.body.contains("kartika"));
    // Sign-out needs the session's token.
    let csrf = hidden(&dashboard.body, "csrf_token");
    html(&browser.post("/console/logout", &[]).await, 403);
    html(
        &browser
            .post("/console/logout", &[("csrf_token", "nope")])
            .await,
        403,
    );
    assert_eq!(browser.get("/console/").await.status, StatusCode::OK);
    let out = browser
        .post("/console/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/console/login");
    assert_eq!(browser.get("/console/").await.status, StatusCode::SEE_OTHER);

    // A new password (through the API) ends the account's sessions.
    let mut again = Browser::new(app);
    again.sign_in("kartika", PASSWORD).await;
    let stolen = again.cookie("dicoevent_session").map(str::to_owned);
    assert_eq!(again.get("/console/").await.status, StatusCode::OK);
    app.patch(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "password": "An0ther-Passw0rd!" }),
    )
    .await
    .assert(200);
    assert_eq!(again.get("/console/").await.status, StatusCode::SEE_OTHER);
    let mut replay = Browser::new(app);
    if let Some(stolen) = stolen {
        replay.cookies.push(("dicoevent_session".into(), stolen));
    }
    assert_eq!(replay.get("/console/").await.status, StatusCode::SEE_OTHER);
    // Sign-in is throttled like the API's login.
    let mut throttled = Browser::new(app);
    let mut last = StatusCode::OK;
    for _ in 0..12 {
        let token = throttled.login_token().await;
        last = throttled
            .post(
                "/console/login",
                &[
                    ("csrf_token", &token),
                    ("username", "kartika"),
                    ("password", "wrong-password"),
                ],
            )
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

async fn admin_moves_to_the_console(app: &TestApp) {
    let mut browser = Browser::new(app);
    for path in ["/admin/", "/admin"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::MOVED_PERMANENTLY, "{path}");
        assert_eq!(location(&page), "/console/");
    }
}

async fn attendees_see_their_tickets_with_a_qr_code(app: &TestApp) {
    let event = app
        .create_event(&app.admin_token, "Rust Night Jakarta", 50)
        .await;
    let ticket = app.create_ticket(&app.admin_token, &event, 10).await;
    let (_, token) = app.user("lestari").await;
    let registration = app.register(&token, &ticket).await;
    registration.assert(201);
    let code = app
        .get(
            &format!("/api/registrations/{}/ticket/", registration.id()),
            Some(&token),
        )
        .await
        .body["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let mut browser = Browser::new(app);
    let anonymous = browser.get("/console/my/").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&anonymous),
        "/console/login?next=%2Fconsole%2Fmy%2F"
    );
    browser.sign_in("lestari", PASSWORD).await;
    let mine = browser.get("/console/my/").await;
    html(&mine, 200);
    assert!(mine.body.contains("Rust Night Jakarta"));
    assert!(mine.body.contains("<svg"), "the QR code is in the page");
    assert!(mine.body.contains(&code), "the code a person can read out");
    assert!(mine.body.contains("Awaiting payment"));
    // Someone else sees only their own (none).
    app.user("bima").await;
    let mut other = Browser::new(app);
    other.sign_in("bima", PASSWORD).await;
    let theirs = other.get("/console/my/").await;
    html(&theirs, 200);
    assert!(!theirs.body.contains(&code));
    assert!(theirs.body.contains("No tickets yet"));
}

/// An event of `organizer` starting in an hour (its door is open: from 6 h
/// before the start), with a free and a priced ticket.
pub(crate) async fn event_at_the_door(
    app: &TestApp,
    organizer: &str,
    name: &str,
) -> (String, String, String) {
    let event = app.create_event(organizer, name, 50).await;
    let start = chrono::Utc::now() + chrono::Duration::hours(1);
    app.patch(
        &format!("/api/events/{event}/"),
        Some(organizer),
        json!({
            "start_time": start.to_rfc3339(),
            "end_time": (start + chrono::Duration::hours(3)).to_rfc3339(),
        }),
    )
    .await
    .assert(200);
    let mut free = TestApp::ticket_body(&event, "Free entry", 10);
    free["price"] = json!(0);
    let free = app.post("/api/tickets/", Some(organizer), free).await;
    free.assert(201);
    let priced = app.create_ticket(organizer, &event, 10).await;
    (event, free.id(), priced)
}

async fn door_staff_scan_from_the_scan_page(app: &TestApp) {
    let (_, organizer) = app.user_in("door", "organizer").await;
    let (event, free, priced) = event_at_the_door(app, &organizer, "Door test").await;
    let (other, other_free, _) = event_at_the_door(app, &organizer, "Other night").await;
    let (_, stranger) = app.user_in("notdoor", "organizer").await;
    event_at_the_door(app, &stranger, "Not theirs").await;
    let (guest_id, attendee) = app.user("guest").await;
    app.patch(
        &format!("/api/users/{guest_id}/"),
        Some(&attendee),
        json!({"first_name": "Siti", "last_name": "Rahma"}),
    )
    .await
    .assert(200);
    let registration = app.register(&attendee, &free).await;
    registration.assert(201);
    let unpaid = app.register(&attendee, &priced).await;
    unpaid.assert(201);
    let elsewhere = app.register(&attendee, &other_free).await;
    elsewhere.assert(201);
    let (_, second) = app.user("walkin").await;
    let walkin = app.register(&second, &free).await;
    walkin.assert(201);
    let ticket_of = |id: String| {
        let attendee = attendee.clone();
        async move {
            app.get(&format!("/api/registrations/{id}/ticket/"), Some(&attendee))
                .await
                .body
                .clone()
        }
    };
    let code = ticket_of(registration.id()).await["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let other_code = ticket_of(elsewhere.id()).await["code"]
        .as_str()
        .expect("code")
        .to_owned();

    // A plain user may not scan.
    let mut guest = Browser::new(app);
    guest.sign_in("guest", PASSWORD).await;
    html(&guest.get("/console/scan/").await, 403);

    // First: which door? Only the organiser's own events are offered.
    let mut staff = Browser::new(app);
    staff.sign_in("door", PASSWORD).await;
    let choose = staff.get("/console/scan/").await;
    html(&choose, 200);
    assert!(choose.body.contains("Which event"), "{}", choose.body);
    assert!(choose.body.contains("Door test") && choose.body.contains("Other night"));
    assert!(!choose.body.contains("Not theirs"));
    let csrf = hidden(&choose.body, "csrf_token");
    // A scan before choosing is not made.
    let early = staff
        .post("/console/scan/", &[("csrf_token", &csrf), ("code", &code)])
        .await;
    assert_eq!(early.status, StatusCode::SEE_OTHER);
    // Another organiser's event cannot be chosen.
    let list = app.get("/api/events/?page_size=100", app.admin()).await;
    let theirs = list.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["name"] == "Not theirs")
        .expect("their event")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    html(
        &staff
            .post(
                "/console/scan/door",
                &[("csrf_token", &csrf), ("event", &theirs)],
            )
            .await,
        404,
    );
    // Without the form's token nothing is recorded.
    html(
        &staff.post("/console/scan/door", &[("event", &event)]).await,
        403,
    );
    let chosen = staff
        .post(
            "/console/scan/door",
            &[("csrf_token", &csrf), ("event", &event)],
        )
        .await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER);
    // The session remembers the door.
    let form = staff.get("/console/scan/").await;
    html(&form, 200);
    assert!(form.body.contains("Door test"));
    assert!(
        form.body.contains("<strong>0</strong> admitted of 3"),
        "{}",
        form.body
    );
    assert!(form.body.contains("autofocus"));
    assert!(form.body.contains("src=\"/console/static/scan.js\""));
    html(&staff.post("/console/scan/", &[("code", &code)]).await, 403);
    let list = app.get("/api/checkins/", app.admin()).await;
    assert_eq!(list.body["count"], 0);

    let admitted = staff
        .post("/console/scan/", &[("csrf_token", &csrf), ("code", &code)])
        .await;
    html(&admitted, 200);
    assert!(
        admitted.body.contains("Admitted: Siti Rahma"),
        "{}",
        admitted.body
    );
    assert!(admitted.body.contains("Free entry · Door test"));
    assert!(admitted.body.contains("<strong>1</strong> admitted of 3"));
    let again = staff
        .post("/console/scan/", &[("csrf_token", &csrf), ("code", &code)])
        .await;
    assert!(again.body.contains("Already checked in"));
    assert!(again.body.contains("by door"));
    assert!(
        again
            .body
            .contains("Siti Rahma (guest) · Free entry · Door test"),
        "{}",
        again.body
    );
    let invalid = staff
        .post(
            "/console/scan/",
            &[("csrf_token", &csrf), ("code", "DE1.nope.nope")],
        )
        .await;
    assert!(invalid.body.contains("Invalid ticket"));
    // Another event's ticket, even one this organiser runs, is refused here.
    let wrong = staff
        .post(
            "/console/scan/",
            &[("csrf_token", &csrf), ("code", &other_code)],
        )
        .await;
    assert!(
        wrong.body.contains("Another event&#39;s ticket")
            || wrong.body.contains("Another event's ticket"),
        "{}",
        wrong.body
    );
    assert!(
        wrong
            .body
            .contains("Siti Rahma (guest) · Free entry · Other night"),
        "{}",
        wrong.body
    );
    assert!(wrong.body.contains("Not valid at this door."));
    // Unpaid: one button admits anyway, without scanning again.
    let unpaid_code = ticket_of(unpaid.id()).await["short_code"]
        .as_str()
        .expect("short code")
        .to_owned();
    let refused = staff
        .post(
            "/console/scan/",
            &[("csrf_token", &csrf), ("code", &unpaid_code.to_lowercase())],
        )
        .await;
    assert!(refused.body.contains("Not paid"), "{}", refused.body);
    assert!(refused.body.contains("Admit anyway"));
    assert_eq!(hidden(&refused.body, "registration"), unpaid.id());
    let forced = staff
        .post(
            "/console/scan/",
            &[
                ("csrf_token", &csrf),
                ("registration", &unpaid.id()),
                ("force", "true"),
            ],
        )
        .await;
    assert!(
        forced.body.contains("Admitted: Siti Rahma"),
        "{}",
        forced.body
    );
    // Found by name and admitted with one button.
    let found = staff.get("/console/scan/?q=walk").await;
    html(&found, 200);
    assert!(found.body.contains("walkin@example.com"), "{}", found.body);
    assert!(!found.body.contains("guest@example.com"));
    let by_name = staff
        .post(
            "/console/scan/",
            &[
                ("csrf_token", &csrf),
                ("registration", &walkin.id()),
                ("q", "walk"),
            ],
        )
        .await;
    assert!(
        by_name.body.contains("Admitted: walkin"),
        "{}",
        by_name.body
    );
    assert!(by_name.body.contains("<strong>3</strong> admitted of 3"));
    assert!(
        by_name.body.contains("Checked in"),
        "the search shows them admitted"
    );
    let checkins = app
        .get(&format!("/api/checkins/?event={event}"), app.admin())
        .await;
    assert_eq!(checkins.body["count"], 3);
    let methods: Vec<&str> = checkins.body["checkins"]
        .as_array()
        .expect("checkins")
        .iter()
        .map(|c| c["method"].as_str().expect("method"))
        .collect();
    assert_eq!(methods, ["manual", "manual", "scan"], "newest first");
    // The organiser's dashboard counts who came.
    let dashboard = staff.get("/console/").await;
    html(&dashboard, 200);
    assert!(
        dashboard
            .body
            .contains("<td data-label=\"Checked in\" class=\"num\">3</td>"),
        "{}",
        dashboard.body
    );
    // Leaving the door asks for an event again.
    let left = staff
        .post(
            "/console/scan/door",
            &[("csrf_token", &csrf), ("event", "")],
        )
        .await;
    assert_eq!(left.status, StatusCode::SEE_OTHER);
    assert!(
        staff
            .get("/console/scan/")
            .await
            .body
            .contains("Which event")
    );
    let _ = other;
    // The script is served from here (the page's CSP allows only that).
    let script = staff.get("/console/static/scan.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("BarcodeDetector"));
}

async fn organisers_see_their_events_and_export_registrations(app: &TestApp) {
    let (_, mine) = app.user_in("orga", "organizer").await;
    let (_, theirs) = app.user_in("orgb", "organizer").await;
    let event = app.create_event(&mine, "Rust Night Jakarta", 50).await;
    app.create_event(&theirs, "Someone else's meetup", 50).await;
    let ticket = app.create_ticket(&mine, &event, 10).await;
    let (siti, attendee) = app.user("siti").await;
    app.patch(
        &format!("/api/users/{siti}/"),
        Some(&attendee),
        json!({"first_name": "=cmd", "last_name": "Rahma, S."}),
    )
    .await
    .assert(200);
    app.register(&attendee, &ticket).await.assert(201);

    let mut browser = Browser::new(app);
    let anonymous = browser.get(&format!("/console/events/{event}/")).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    browser.sign_in("orga", PASSWORD).await;
    let list = browser.get("/console/events/").await;
    html(&list, 200);
    assert!(list.body.contains("Rust Night Jakarta"));
    assert!(
        !list.body.contains("Someone else"),
        "only the events they manage"
    );
    let found = browser.get("/console/events/?q=rust").await;
    assert!(found.body.contains("Rust Night Jakarta"));
    let none = browser.get("/console/events/?q=nothing-like-it").await;
    assert!(none.body.contains("No event matches"));

    let page = browser.get(&format!("/console/events/{event}/")).await;
    html(&page, 200);
    assert!(page.body.contains("Registered"));
    assert!(page.body.contains("1 / 50"));
    assert!(page.body.contains("siti@example.com"));
    let searched = browser
        .get(&format!("/console/events/{event}/?q=nobody-here"))
        .await;
    assert!(searched.body.contains("Nobody matches"));

    let csv = browser
        .get(&format!("/console/events/{event}/registrations.csv"))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    // Named after the event ("Rust Night Jakarta"), not its id.
    assert_eq!(
        csv.headers["content-disposition"],
        "attachment; filename=\"rust-night-jakarta-registrations.csv\""
    );
    let mut lines = csv.body.lines();
    assert_eq!(
        lines.next(),
        Some(
            "registration_id,username,email,first_name,last_name,ticket,registered_at,payment_status,checked_in_at"
        )
    );
    let row = lines.next().expect("one registration");
    assert!(
        row.contains(",\"siti\",\"siti@example.com\",\"'=cmd\",\"Rahma, S.\",\"Regular\","),
        "{row}"
    );
    assert!(lines.next().is_none());

    // Another organiser's event, even by its id: a 404 page.
    let mut other = Browser::new(app);
    other.sign_in("orgb", PASSWORD).await;
    html(&other.get(&format!("/console/events/{event}/")).await, 404);
    let csv = other
        .get(&format!("/console/events/{event}/registrations.csv"))
        .await;
    assert_eq!(csv.status, StatusCode::NOT_FOUND);
    // The superuser sees every event.
    let mut root = Browser::new(app);
    root.sign_in(crate::helpers::SUPERUSER, PASSWORD).await;
    let all = root.get("/console/events/").await;
    assert!(all.body.contains("Rust Night Jakarta") && all.body.contains("Someone else"));
}
