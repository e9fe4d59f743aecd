//! Sign-up, e-mail verification and password reset by mail (API.md §8.1):
//! the console's forms, the `unverified` rule on the API and the console,
//! the links read from the mails the outbox wrote (`.eml` files), one use
//! each, and a new password ending every session and refresh token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console::{Browser, hidden, html, location};
use crate::helpers::{Backend, PASSWORD, TestApp, postgres_url};

crate::backend_tests!(
    a_console_sign_up_verifies_its_address_before_registering,
    api_sign_ups_register_at_once_and_get_the_mail,
    a_forgotten_password_is_reset_by_mail_once,
    admins_make_accounts_and_send_reset_links,
);

/// The raw `.eml` files the app wrote to its outbox directory, oldest first.
pub(crate) fn raw_mails(app: &TestApp) -> Vec<String> {
    let dir = app.data_dir().join("outbox");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

/// Quoted-printable undone (soft line breaks, `=XX` bytes).
pub(crate) fn decode_qp(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mail the app wrote, as decoded text, oldest first.
pub(crate) fn mails(app: &TestApp) -> Vec<String> {
    raw_mails(app).iter().map(|raw| decode_qp(raw)).collect()
}

/// The HTML part of a raw mail, its `cid:` images made `data:` URLs, as a
/// browser would show it.
pub(crate) fn html_part(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let parts: Vec<&str> = raw.split("\n--").collect();
    let mut html = String::new();
    let mut images = Vec::new();
    for part in &parts {
        let Some((head, body)) = part.split_once("\n\n") else {
            continue;
        };
        let head_lower = head.to_lowercase();
        let body = body.trim_end();
        if head_lower.contains("content-type: text/html") {
            html = if head_lower.contains("quoted-printable") {
                decode_qp(body)
            } else {
                body.to_owned()
            };
        } else if head_lower.contains("content-type: image/png")
            && let Some(id) = head.lines().find_map(|l| l.strip_prefix("Content-ID: "))
        {
            let data: String = body.lines().collect();
            images.push((id.trim().trim_matches(['<', '>']).to_owned(), data));
        }
    }
    for (id, data) in images {
        html = html.replace(
            &format!("cid:{id}"),
            &format!("data:image/png;base64,{data}"),
        );
    }
    html
}

/// The mails to `address` with `subject` in their subject line.
pub(crate) fn mails_to(app: &TestApp, address: &str, subject: &str) -> Vec<String> {
    mails(app)
        .into_iter()
        .filter(|m| {
            m.lines()
                .any(|l| l.starts_with("To:") && l.contains(address))
                && m.lines()
                    .any(|l| l.starts_with("Subject:") && l.contains(subject))
        })
        .collect()
}

/// The first link to `path` (a console path ending in `/`) in a mail.
pub(crate) fn link_in(mail: &str, path: &str) -> String {
    let start = mail
        .find(path)
        .unwrap_or_else(|| panic!("no {path} link in {mail}"));
    let token: String = mail[start + path.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert!(token.len() >= 40, "a whole secret: {token}");
    format!("{path}{token}")
}

async fn run_jobs(app: &TestApp) {
    dicoevent::jobs::run_pass(&app.state, "test-worker")
        .await
        .expect("a worker pass");
}

/// An event on sale now with one free ticket type.
async fn event_with_ticket(app: &TestApp) -> (String, String) {
    let event = app
        .create_event(&app.admin_token, "Verified Night", 50)
        .await;
    let ticket = app
        .post(
            "/api/tickets/",
            app.admin(),
            TestApp::ticket_body(&event, "General", 50),
        )
        .await;
    ticket.assert(201);
    (event, ticket.id())
}

async fn user_count(app: &TestApp, search: &str) -> u64 {
    let list = app
        .get(&format!("/api/users/?search={search}"), app.admin())
        .await;
    list.assert(200);
    list.body["count"].as_u64().expect("count")
}

async fn a_console_sign_up_verifies_its_address_before_registering(app: &TestApp) {
    let (event, ticket) = event_with_ticket(app).await;
    let mut browser = Browser::new(app);

    // The login page links to the sign-up, keeping where the visitor was going.
    let login = browser
        .get(&format!(
            "/console/login?next=%2Fconsole%2Fbrowse%2F{event}%2F"
        ))
        .await;
    html(&login, 200);
    assert!(login.body.contains(&format!(
        "href=\"/console/signup?next=%2Fconsole%2Fbrowse%2F{event}%2F\""
    )));
    assert!(login.body.contains("href=\"/console/password-reset\""));

    let form = browser
        .get(&format!(
            "/console/signup?next=%2Fconsole%2Fbrowse%2F{event}%2F"
        ))
        .await;
    html(&form, 200);
    let csrf = hidden(&form.body, "csrf_token");
    let next = format!("/console/browse/{event}/");

    // Without the form's token: refused, nothing written.
    let forged = browser
        .post(
            "/console/signup",
            &[
                ("csrf_token", "forged"),
                ("username", "nadia"),
                ("email", "nadia@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    html(&forged, 403);

    // Bad fields: each named under its field, what was typed kept, nothing written.
    let bad = browser
        .post(
            "/console/signup",
            &[
                ("csrf_token", &csrf),
                ("next", &next),
                ("username", ""),
                ("email", "not-an-address"),
                ("first_name", "Nadia"),
                ("password", "12345678"),
            ],
        )
        .await;
    html(&bad, 400);
    assert!(
        bad.body.contains("This field may not be blank."),
        "{}",
        bad.body
    );
    for (field, words) in [
        ("email", "Enter a valid email address."),
        ("password", "entirely numeric"),
    ] {
        assert!(bad.body.contains(words), "{field}: {}", bad.body);
    }
    assert!(bad.body.contains("value=\"not-an-address\""));
    assert!(bad.body.contains("value=\"Nadia\""));
    assert!(browser.cookie("dicoevent_session").is_none());
    let taken = browser
        .post(
            "/console/signup",
            &[
                ("csrf_token", &csrf),
                ("username", "Aras"),
                ("email", "someone@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    html(&taken, 400);
    assert!(
        taken
            .body
            .contains("A user with that username already exists.")
    );
    assert_eq!(user_count(app, "nadia").await, 0);

    // A good sign-up: signed in, back where they were going, told to verify.
    let done = browser
        .post(
            "/console/signup",
            &[
                ("csrf_token", &csrf),
                ("next", &next),
                ("username", "nadia"),
                ("email", "nadia@example.com"),
                ("first_name", "Nadia"),
                ("last_name", "Putri"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(location(&done), next);
    assert!(browser.cookie("dicoevent_session").is_some());
    let page = browser.get(&next).await;
    html(&page, 200);
    assert!(
        page.body.contains("We sent a link to nadia@example.com"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Verify your e-mail address to register"));

    // Not yet verified: the console and the API refuse to register, nothing written.
    let session_csrf = hidden(&page.body, "csrf_token");
    let refused = browser
        .post(
            &next,
            &[("csrf_token", &session_csrf), ("ticket_id", &ticket)],
        )
        .await;
    html(&refused, 409);
    assert!(refused.body.contains("Verify your e-mail address first."));
    let (access, _) = app.login_ok("nadia", PASSWORD).await;
    let api = app
        .post(
            "/api/registrations/",
            Some(&access),
            json!({ "ticket_id": ticket }),
        )
        .await;
    api.assert(409);
    assert_eq!(
        api.body,
        json!({"detail": "Verify your e-mail address first.", "reason": "unverified"})
    );
    let mine = app.get("/api/registrations/", Some(&access)).await;
    mine.assert(200);
    assert_eq!(mine.body["count"], 0);

    // "Send the link again" within a minute sends no second mail.
    let again = browser
        .post(
            "/console/verify",
            &[("csrf_token", &session_csrf), ("next", &next)],
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    run_jobs(app).await;
    let sent = mails_to(app, "nadia@example.com", "Verify your e-mail address");
    assert_eq!(sent.len(), 1, "one verification mail");
    let mail = &sent[0];
    assert!(mail.contains("Hello Nadia,"));
    assert!(mail.contains("Verify my address"));
    assert!(mail.contains("Content-Type: text/plain"));
    assert!(mail.contains("Content-Type: text/html"));
    let link = link_in(mail, "/console/verify/");

    // A mistyped link verifies nothing.
    let wrong = browser.get("/console/verify/not-the-secret").await;
    html(&wrong, 404);
    assert!(wrong.body.contains("This link does not work"));

    let verified = browser.get(&link).await;
    html(&verified, 200);
    assert!(
        verified.body.contains("nadia@example.com is verified"),
        "{}",
        verified.body
    );
    let twice = browser.get(&link).await;
    html(&twice, 404);
    assert!(twice.body.contains("already used"));

    // Verified: registering works, from the console and the API alike.
    let page = browser.get(&next).await;
    assert!(!page.body.contains("Verify your e-mail address to register"));
    let registered = browser
        .post(
            &next,
            &[("csrf_token", &session_csrf), ("ticket_id", &ticket)],
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::SEE_OTHER,
        "{}",
        registered.body
    );
    let mine = app.get("/api/registrations/", Some(&access)).await;
    assert_eq!(mine.body["count"], 1);

    // The audit log tells the story.
    let log = app
        .get("/api/audit/?action=user.email_verified", app.admin())
        .await;
    log.assert(200);
    let entries = log.body["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{}", log.body);
    assert_eq!(entries[0]["actor"]["username"], "nadia");
}

async fn api_sign_ups_register_at_once_and_get_the_mail(app: &TestApp) {
    let (_, ticket) = event_with_ticket(app).await;
    // The Django service's clients: sign up, log in, register at once.
    let (_, token) = app.user("budi").await;
    let registered = app
        .post(
            "/api/registrations/",
            Some(&token),
            json!({ "ticket_id": ticket }),
        )
        .await;
    registered.assert(201);
    // They get the verification mail all the same, with a link to this server.
    run_jobs(app).await;
    let sent = mails_to(app, "budi@example.com", "Verify your e-mail address");
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains(&format!("{}/console/verify/", app.address)));
    let first_link = link_in(&sent[0], "/console/verify/");

    // They change their address: the new one gets its own link, the link
    // sent to the old one no longer verifies anything, and (without
    // REQUIRE_EMAIL_VERIFICATION) they go on registering meanwhile.
    let me = app.get("/api/users/me/", Some(&token)).await;
    let id = me.body["id"].as_str().expect("id").to_owned();
    app.patch(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "email": "budi.new@example.com" }),
    )
    .await
    .assert(200);
    run_jobs(app).await;
    let fresh = mails_to(app, "budi.new@example.com", "Verify your e-mail address");
    assert_eq!(fresh.len(), 1, "one link to the new address");
    let old = app
        .client
        .get(app.url(&first_link))
        .send()
        .await
        .expect("sent");
    assert_ne!(old.status(), StatusCode::OK);
    assert!(old.text().await.expect("body").contains("already used"));
    let (_, ticket2) = event_with_ticket(app).await;
    app.post(
        "/api/registrations/",
        Some(&token),
        json!({ "ticket_id": ticket2 }),
    )
    .await
    .assert(201);
    let opened = app
        .client
        .get(app.url(&link_in(&fresh[0], "/console/verify/")))
        .send()
        .await
        .expect("sent");
    assert_eq!(opened.status(), StatusCode::OK);
    // An address an admin sets is theirs to vouch for: no mail.
    app.patch(
        &format!("/api/users/{id}/"),
        app.admin(),
        json!({ "email": "budi.third@example.com" }),
    )
    .await
    .assert(200);
    run_jobs(app).await;
    assert!(mails_to(app, "budi.third@example.com", "Verify").is_empty());
}

/// `REQUIRE_EMAIL_VERIFICATION=true`: API sign-ups wait for the link too;
/// accounts made before (and by the CLI) count as verified.
async fn required_for_api_sign_ups(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("REQUIRE_EMAIL_VERIFICATION", "true")]).await;
    let (_, ticket) = event_with_ticket(&app).await;
    let (_, token) = app.user("citra").await;
    let refused = app
        .post(
            "/api/registrations/",
            Some(&token),
            json!({ "ticket_id": ticket }),
        )
        .await;
    refused.assert(409);
    assert_eq!(refused.body["reason"], "unverified");
    // An admin may still register them at the box office.
    let me = app.get("/api/users/me/", Some(&token)).await;
    let for_them = app
        .post(
            "/api/registrations/",
            app.admin(),
            json!({ "ticket_id": ticket, "user_id": me.body["id"] }),
        )
        .await;
    for_them.assert(201);
    run_jobs(&app).await;
    let sent = mails_to(&app, "citra@example.com", "Verify your e-mail address");
    let link = link_in(&sent[0], "/console/verify/");
    let opened = app.client.get(app.url(&link)).send().await.expect("sent");
    assert_eq!(opened.status(), StatusCode::OK);
    // Verified: the cached caller is renewed at once.
    let second = app.create_event(&app.admin_token, "Second Night", 10).await;
    let t2 = app
        .post(
            "/api/tickets/",
            app.admin(),
            TestApp::ticket_body(&second, "General", 10),
        )
        .await;
    let ok = app
        .post(
            "/api/registrations/",
            Some(&token),
            json!({ "ticket_id": t2.id() }),
        )
        .await;
    ok.assert(201);
    // A new address must be verified again before the next registration.
    let id = me.body["id"].as_str().expect("id");
    app.patch(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "email": "citra.baru@example.com" }),
    )
    .await
    .assert(200);
    let (_, third) = event_with_ticket(&app).await;
    let held = app
        .post(
            "/api/registrations/",
            Some(&token),
            json!({ "ticket_id": third }),
        )
        .await;
    held.assert(409);
    assert_eq!(held.body["reason"], "unverified");
    run_jobs(&app).await;
    let sent = mails_to(&app, "citra.baru@example.com", "Verify your e-mail address");
    let link = link_in(&sent[0], "/console/verify/");
    let opened = app.client.get(app.url(&link)).send().await.expect("sent");
    assert_eq!(opened.status(), StatusCode::OK);
    // The superuser (made by the CLI) never had to verify anything.
    let own = app
        .post(
            "/api/tickets/",
            app.admin(),
            TestApp::ticket_body(&second, "Crew", 10),
        )
        .await;
    app.post(
        "/api/registrations/",
        app.admin(),
        json!({ "ticket_id": own.id() }),
    )
    .await
    .assert(201);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_can_be_required_of_api_sign_ups_sqlite() {
    required_for_api_sign_ups(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_can_be_required_of_api_sign_ups_postgres() {
    if postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    required_for_api_sign_ups(Backend::Postgres).await;
}

async fn a_forgotten_password_is_reset_by_mail_once(app: &TestApp) {
    app.user("dewi").await;
    let (_, refresh) = app.login_ok("dewi", PASSWORD).await;
    let mut signed_in = Browser::new(app);
    let home = signed_in.sign_in("dewi", PASSWORD).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);

    // Refresh tokens count whole seconds: the reset must come in a later one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut browser = Browser::new(app);
    let form = browser.get("/console/password-reset").await;
    html(&form, 200);
    let csrf = hidden(&form.body, "csrf_token");
    // The same answer for an address no one has, and no mail.
    let unknown = browser
        .post(
            "/console/password-reset",
            &[("csrf_token", &csrf), ("email", "nobody@example.com")],
        )
        .await;
    html(&unknown, 200);
    let known = browser
        .post(
            "/console/password-reset",
            &[("csrf_token", &csrf), ("email", "DEWI@example.com")],
        )
        .await;
    html(&known, 200);
    let strip = |body: &str, email: &str| body.replace(email, "ADDRESS");
    assert_eq!(
        strip(&unknown.body, "nobody@example.com"),
        strip(&known.body, "DEWI@example.com")
    );
    // Asked again at once: still one mail.
    browser
        .post(
            "/console/password-reset",
            &[("csrf_token", &csrf), ("email", "dewi@example.com")],
        )
        .await;
    let bad = browser
        .post(
            "/console/password-reset",
            &[("csrf_token", &csrf), ("email", "x")],
        )
        .await;
    html(&bad, 400);
    assert!(bad.body.contains("Enter a valid e-mail address."));
    run_jobs(app).await;
    assert!(mails_to(app, "nobody@example.com", "password").is_empty());
    let sent = mails_to(app, "dewi@example.com", "Choose a new DicoEvent password");
    assert_eq!(sent.len(), 1);
    let link = link_in(&sent[0], "/console/password-reset/");

    // The stored token is a hash: the link's secret is nowhere in the database.
    let secret = link
        .trim_start_matches("/console/password-reset/")
        .to_owned();
    let stored: Vec<String> = {
        use dicoevent::db::entities::account_token;
        use sea_orm::EntityTrait;
        account_token::Entity::find()
            .all(app.state.db.conn())
            .await
            .expect("tokens")
            .into_iter()
            .map(|t| t.token_hash)
            .collect()
    };
    assert!(!stored.is_empty());
    assert!(stored.iter().all(|h| h != &secret));

    let page = browser.get(&link).await;
    html(&page, 200);
    assert!(page.body.contains("<strong>dewi</strong>"));
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    let csrf = hidden(&page.body, "csrf_token");
    // A password the rules refuse: said under the field, the link still good.
    let weak = browser
        .post(&link, &[("csrf_token", &csrf), ("password", "12345678")])
        .await;
    html(&weak, 400);
    assert!(weak.body.contains("class=\"error\""), "{}", weak.body);
    app.login("dewi", PASSWORD).await.assert(200);

    let set = browser
        .post(
            &link,
            &[("csrf_token", &csrf), ("password", "a-new-Secret-42")],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(location(&set), "/console/login");

    // One use; every session and refresh token of the account ended.
    let again = browser.get(&link).await;
    html(&again, 404);
    assert!(again.body.contains("already used"));
    let old_session = signed_in.get("/console/my/").await;
    assert_eq!(old_session.status, StatusCode::SEE_OTHER);
    let refreshed = app
        .post("/api/token/refresh/", None, json!({ "refresh": refresh }))
        .await;
    refreshed.assert(401);
    app.login("dewi", PASSWORD).await.assert(401);
    app.login("dewi", "a-new-Secret-42").await.assert(200);

    // An expired link does not open.
    let form = browser.get("/console/password-reset").await;
    let csrf = hidden(&form.body, "csrf_token");
    {
        use dicoevent::db::entities::account_token;
        use sea_orm::{EntityTrait, sea_query::Expr};
        // Out of the resend pause, then asked again.
        account_token::Entity::update_many()
            .col_expr(
                account_token::Column::CreatedAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::hours(2)),
            )
            .exec(app.state.db.conn())
            .await
            .expect("moved back");
    }
    browser
        .post(
            "/console/password-reset",
            &[("csrf_token", &csrf), ("email", "dewi@example.com")],
        )
        .await;
    run_jobs(app).await;
    let sent = mails_to(app, "dewi@example.com", "Choose a new DicoEvent password");
    assert_eq!(sent.len(), 2);
    let newest = link_in(&sent[1], "/console/password-reset/");
    {
        use dicoevent::db::entities::account_token;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        account_token::Entity::update_many()
            .col_expr(
                account_token::Column::ExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
            )
            .filter(account_token::Column::UsedAt.is_null())
            .exec(app.state.db.conn())
            .await
            .expect("expired");
    }
    let expired = browser.get(&newest).await;
    html(&expired, 404);
    assert!(expired.body.contains("expired"));

    let log = app
        .get("/api/audit/?action=user.password", app.admin())
        .await;
    log.assert(200);
    let actions: Vec<Value> = log.body["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e["action"].clone())
        .collect();
    assert!(
        actions.contains(&json!("user.password_changed")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&json!("user.password_reset_requested")),
        "{actions:?}"
    );
}

async fn admins_make_accounts_and_send_reset_links(app: &TestApp) {
    app.user_in("boss", "admin").await;
    app.user_in("olga", "organizer").await;
    let (wulan, _) = app.user("wulan").await;
    let mut admin = Browser::new(app);
    admin.sign_in("boss", PASSWORD).await;
    let page = admin.get("/console/users/").await;
    html(&page, 200);
    assert!(page.body.contains("New account"));
    let csrf = hidden(&page.body, "csrf_token");

    // Bad fields: under each, nothing written.
    let bad = admin
        .post(
            "/console/users/",
            &[
                ("csrf_token", &csrf),
                ("username", ""),
                ("email", "nope"),
                ("first_name", "Rudi"),
            ],
        )
        .await;
    html(&bad, 400);
    assert!(bad.body.contains("This field may not be blank."));
    assert!(bad.body.contains("Enter a valid email address."));
    assert!(bad.body.contains("value=\"Rudi\""));
    assert_eq!(user_count(app, "rudi").await, 0);

    // A good one: the account exists, its owner gets a link to choose a password.
    let made = admin
        .post(
            "/console/users/",
            &[
                ("csrf_token", &csrf),
                ("username", "rudi"),
                ("email", "rudi@example.com"),
                ("first_name", "Rudi"),
                ("last_name", "Hartono"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let user_page = browser_follow(&mut admin, &made).await;
    assert!(
        user_page.contains("A link to choose a password is on its way to rudi@example.com"),
        "{user_page}"
    );
    run_jobs(app).await;
    let sent = mails_to(app, "rudi@example.com", "Choose a new DicoEvent password");
    assert_eq!(sent.len(), 1);
    let link = link_in(&sent[0], "/console/password-reset/");
    let mut rudi = Browser::new(app);
    let form = rudi.get(&link).await;
    html(&form, 200);
    let token = hidden(&form.body, "csrf_token");
    let set = rudi
        .post(
            &link,
            &[("csrf_token", &token), ("password", "kettle-Orbit-58")],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    app.login("rudi", "kettle-Orbit-58").await.assert(200);

    // A reset link for an existing account, from its page.
    let csrf = hidden(
        &admin.get(&format!("/console/users/{wulan}/")).await.body,
        "csrf_token",
    );
    let sent_reset = admin
        .post(
            &format!("/console/users/{wulan}/reset"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(sent_reset.status, StatusCode::SEE_OTHER);
    run_jobs(app).await;
    assert_eq!(
        mails_to(app, "wulan@example.com", "Choose a new DicoEvent password").len(),
        1
    );

    // An organiser may do neither.
    let mut olga = Browser::new(app);
    olga.sign_in("olga", PASSWORD).await;
    let csrf = hidden(&olga.get("/console/").await.body, "csrf_token");
    html(
        &olga
            .post(
                "/console/users/",
                &[
                    ("csrf_token", &csrf),
                    ("username", "sneaky"),
                    ("email", "sneaky@example.com"),
                ],
            )
            .await,
        403,
    );
    assert_eq!(user_count(app, "sneaky").await, 0);
    html(
        &olga
            .post(
                &format!("/console/users/{wulan}/reset"),
                &[("csrf_token", &csrf)],
            )
            .await,
        403,
    );
}

/// The page a redirect leads to, as its body.
async fn browser_follow(browser: &mut Browser<'_>, page: &crate::console::Page) -> String {
    browser.get(location(page)).await.body
}
