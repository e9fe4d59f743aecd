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
    assert!(mine.body.contains("not paid"));
    // Someone else sees only their own (none).
    app.user("bima").await;
    let mut other = Browser::new(app);
    other.sign_in("bima", PASSWORD).await;
    let theirs = other.get("/console/my/").await;
    html(&theirs, 200);
    assert!(!theirs.body.contains(&code));
    assert!(theirs.body.contains("No tickets yet"));
}

async fn door_staff_scan_from_the_scan_page(app: &TestApp) {
    let (_, organizer) = app.user_in("door", "organizer").await;
    let event = app.create_event(&organizer, "Door test", 50).await;
    let mut free = TestApp::ticket_body(&event, "Free", 10);
    free["price"] = json!(0);
    let ticket = app.post("/api/tickets/", Some(&organizer), free).await;
    ticket.assert(201);
    let (_, attendee) = app.user("guest").await;
    let registration = app.register(&attendee, &ticket.id()).await;
    registration.assert(201);
    let code = app
        .get(
            &format!("/api/registrations/{}/ticket/", registration.id()),
            Some(&attendee),
        )
        .await
        .body["code"]
        .as_str()
        .expect("code")
        .to_owned();

    // A plain user may not scan.
    let mut guest = Browser::new(app);
    guest.sign_in("guest", PASSWORD).await;
    html(&guest.get("/console/scan/").await, 403);

    let mut staff = Browser::new(app);
    staff.sign_in("door", PASSWORD).await;
    let form = staff.get("/console/scan/").await;
    html(&form, 200);
    assert!(form.body.contains("autofocus"));
    assert!(form.body.contains("src=\"/console/static/scan.js\""));
    let csrf = hidden(&form.body, "csrf_token");
    // Without the form's token nothing is recorded.
    html(&staff.post("/console/scan/", &[("code", &code)]).await, 403);
    let list = app.get("/api/checkins/", app.admin()).await;
    assert_eq!(list.body["count"], 0);

    let admitted = staff
        .post("/console/scan/", &[("csrf_token", &csrf), ("code", &code)])
        .await;
    html(&admitted, 200);
    assert!(admitted.body.contains("Admitted"), "{}", admitted.body);
    assert!(admitted.body.contains("You admitted 1 person today"));
    let again = staff
        .post("/console/scan/", &[("csrf_token", &csrf), ("code", &code)])
        .await;
    assert!(again.body.contains("Already checked in"));
    assert!(again.body.contains("by door"));
    let invalid = staff
        .post(
            "/console/scan/",
            &[("csrf_token", &csrf), ("code", "DE1.nope.nope")],
        )
        .await;
    assert!(invalid.body.contains("Invalid ticket"));
    let list = app.get("/api/checkins/", app.admin()).await;
    assert_eq!(list.body["count"], 1);
    // The organiser's dashboard counts who came.
    let dashboard = staff.get("/console/").await;
    html(&dashboard, 200);
    assert!(
        dashboard
            .body
            .contains("<td data-label=\"Checked in\" class=\"num\">1</td>"),
        "{}",
        dashboard.body
    );
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
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .is_ok_and(|d| d.starts_with("attachment"))
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
