//! API.md §1 conventions, error shapes, request ids, health, pagination.

use reqwest::Method;
use reqwest::header::{ALLOW, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Reply, SUPERUSER, TestApp};

crate::backend_tests!(
    routes_answer_with_and_without_trailing_slash,
    unknown_route_is_json_404,
    wrong_method_is_json_405_with_allow,
    other_content_types_are_415,
    broken_json_is_400,
    non_object_json_is_400,
    oversized_body_is_413,
    request_id_is_set_and_echoed,
    errors_are_json,
    health_and_readiness,
    poster_list_answers_with_and_without_slash,
    pagination_clamps_page_and_page_size,
    pagination_huge_page_number_is_the_last_page,
    pagination_links_lead_through_every_item,
    empty_list_is_page_one,
);

#[track_caller]
fn assert_json(reply: &Reply) {
    let ct = reply
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "Content-Type {ct:?} on {} {}",
        reply.status,
        reply.body
    );
}

/// Sends a raw body with the given content type.
async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header(CONTENT_TYPE, content_type)
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    TestApp::reply(req.send().await.expect("request sent")).await
}

async fn user_count(app: &TestApp) -> i64 {
    let list = app.get("/api/users/", app.admin()).await;
    list.assert(200);
    list.body["count"].as_i64().expect("count")
}

async fn routes_answer_with_and_without_trailing_slash(app: &TestApp) {
    let (alice_id, alice) = app.user("alice").await;
    let event = app.create_event(&app.admin_token, "Slashes", 10).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 5).await;
    let group = app.group("organizer").await;

    let gets: Vec<String> = vec![
        "/api/events".into(),
        format!("/api/events/{event}"),
        "/api/tickets".into(),
        format!("/api/tickets/{ticket}"),
        "/api/users".into(),
        "/api/users/me".into(),
        format!("/api/users/{alice_id}"),
        "/api/groups".into(),
        format!("/api/groups/{group}"),
        "/api/registrations".into(),
        "/api/payments".into(),
    ];
    let mut failures = Vec::new();
    for path in &gets {
        let bare = app.get(path, app.admin()).await;
        let slashed = app.get(&format!("{path}/"), app.admin()).await;
        if bare.status.as_u16() != 200 || slashed.status.as_u16() != 200 {
            failures.push(format!(
                "GET {path}: {} {}; GET {path}/: {} {}",
                bare.status, bare.body, slashed.status, slashed.body
            ));
        } else if bare.body != slashed.body {
            failures.push(format!("GET {path} and {path}/ differ"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // Writes, without the slash.
    let (access, refresh) = {
        let r = app
            .post(
                "/api/login",
                None,
                json!({ "username": "alice", "password": PASSWORD }),
            )
            .await;
        r.assert(200);
        (
            r.body["access"].as_str().expect("access").to_owned(),
            r.body["refresh"].as_str().expect("refresh").to_owned(),
        )
    };
    app.post("/api/token", None, json!({ "refresh": refresh }))
        .await
        .assert(200);
    app.post("/api/token/refresh", None, json!({ "refresh": refresh }))
        .await
        .assert(200);
    app.signup("bob").await.assert(201);
    app.post(
        "/api/users",
        None,
        json!({ "username": "carol", "email": "carol@example.com", "password": PASSWORD }),
    )
    .await
    .assert(201);
    app.patch(
        &format!("/api/users/{alice_id}"),
        Some(&alice),
        json!({ "first_name": "Al" }),
    )
    .await
    .assert(200);
    app.put(
        &format!("/api/users/{alice_id}"),
        Some(&alice),
        json!({ "last_name": "Ice" }),
    )
    .await
    .assert(200);
    app.post("/api/groups", app.admin(), json!({ "name": "extra" }))
        .await
        .assert(201);
    app.patch(
        &format!("/api/events/{event}"),
        app.admin(),
        json!({ "name": "Slashes II" }),
    )
    .await
    .assert(200);
    app.post("/api/events", app.admin(), TestApp::event_body("Other", 3))
        .await
        .assert(201);
    app.post(
        "/api/tickets",
        app.admin(),
        TestApp::ticket_body(&event, "VIP", 2),
    )
    .await
    .assert(201);
    let reg = app
        .post(
            "/api/registrations",
            Some(&access),
            json!({ "ticket_id": ticket }),
        )
        .await;
    reg.assert(201);
    app.delete(&format!("/api/registrations/{}", reg.id()), Some(&access))
        .await
        .assert(204);
    app.post("/api/logout", Some(&access), json!({ "refresh": refresh }))
        .await
        .assert(204);
    app.delete(&format!("/api/groups/{group}"), app.admin())
        .await
        .assert(204);
}

async fn unknown_route_is_json_404(app: &TestApp) {
    for (method, path) in [
        (Method::GET, "/api/nope/"),
        (Method::GET, "/api/nope"),
        (Method::GET, "/nope"),
        (Method::GET, "/api/events/x/y/z/"),
        (Method::POST, "/api/nothing-here/"),
        (Method::DELETE, "/api/"),
    ] {
        for token in [None, app.admin()] {
            let reply = app.request(method.clone(), path, token, None).await;
            assert_eq!(
                reply.status.as_u16(),
                404,
                "{method} {path}: {}",
                reply.body
            );
            assert_eq!(
                reply.body,
                json!({ "detail": "Not found." }),
                "{method} {path}"
            );
            assert_json(&reply);
        }
    }
}

async fn wrong_method_is_json_405_with_allow(app: &TestApp) {
    let cases: Vec<(Method, &str, &str, &[&str])> = vec![
        (Method::PATCH, "/api/login/", "PATCH", &["POST"]),
        (Method::GET, "/api/login/", "GET", &["POST"]),
        (Method::PATCH, "/api/login", "PATCH", &["POST"]),
        (Method::DELETE, "/api/events/", "DELETE", &["GET", "POST"]),
        (Method::DELETE, "/api/events", "DELETE", &["GET", "POST"]),
        (Method::PUT, "/api/users/", "PUT", &["GET", "POST"]),
        (Method::POST, "/api/users/me/", "POST", &["GET"]),
        (Method::GET, "/api/token/", "GET", &["POST"]),
        (
            Method::GET,
            "/api/assign-roles/",
            "GET",
            &["POST", "DELETE"],
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, name, allowed) in cases {
        let body = if method == Method::GET {
            None
        } else {
            Some(json!({}))
        };
        let reply = app.request(method, path, app.admin(), body).await;
        let expected = json!({ "detail": format!("Method \"{name}\" not allowed.") });
        if reply.status.as_u16() != 405 || reply.body != expected {
            failures.push(format!("{name} {path}: {} {}", reply.status, reply.body));
            continue;
        }
        let ct_ok = reply
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !ct_ok {
            failures.push(format!("{name} {path}: not application/json"));
        }
        match reply.headers.get(ALLOW).and_then(|v| v.to_str().ok()) {
            Some(allow) => {
                let listed: Vec<String> = allow
                    .split(',')
                    .map(|m| m.trim().to_ascii_uppercase())
                    .collect();
                for m in allowed {
                    if !listed.iter().any(|l| l == m) {
                        failures.push(format!("{name} {path}: Allow {allow:?} lacks {m}"));
                    }
                }
                if listed.iter().any(|l| l == name) {
                    failures.push(format!("{name} {path}: Allow {allow:?} lists {name}"));
                }
            }
            None => failures.push(format!("{name} {path}: no Allow header")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

async fn other_content_types_are_415(app: &TestApp) {
    let before = user_count(app).await;
    let login = json!({ "username": SUPERUSER, "password": PASSWORD }).to_string();
    let signup =
        json!({ "username": "zed", "email": "zed@example.com", "password": PASSWORD }).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "text/html",
        "application/xml",
    ] {
        let expected = json!({
            "detail": format!("Unsupported media type \"{content_type}\" in request.")
        });
        let reply = raw(
            app,
            Method::POST,
            "/api/login/",
            None,
            content_type,
            login.clone(),
        )
        .await;
        reply.assert(415);
        assert_eq!(reply.body, expected);
        assert_json(&reply);
        let reply = raw(
            app,
            Method::POST,
            "/api/users/",
            None,
            content_type,
            signup.clone(),
        )
        .await;
        reply.assert(415);
        assert_eq!(reply.body, expected);
    }
    // Form encoding is not JSON either, even when well-formed.
    let reply = raw(
        app,
        Method::POST,
        "/api/users/",
        None,
        "application/x-www-form-urlencoded",
        "username=zed&email=zed%40example.com&password=Str0ng-Passw0rd%21",
    )
    .await;
    reply.assert(415);
    assert_eq!(user_count(app).await, before, "nothing written");

    // Updates too: a 415, and the record is unchanged.
    let (id, token) = app.user("yuri").await;
    let reply = raw(
        app,
        Method::PATCH,
        &format!("/api/users/{id}/"),
        Some(&token),
        "text/plain",
        json!({ "first_name": "Changed" }).to_string(),
    )
    .await;
    reply.assert(415);
    assert_eq!(
        reply.body,
        json!({ "detail": "Unsupported media type \"text/plain\" in request." })
    );
    let me = app.get("/api/users/me/", Some(&token)).await;
    assert_eq!(me.body["first_name"], "");

    // JSON with parameters is JSON.
    raw(
        app,
        Method::POST,
        "/api/login/",
        None,
        "application/json; charset=utf-8",
        login.clone(),
    )
    .await
    .assert(200);
    raw(
        app,
        Method::POST,
        "/api/login/",
        None,
        "Application/JSON",
        login,
    )
    .await
    .assert(200);
}

async fn broken_json_is_400(app: &TestApp) {
    let before = user_count(app).await;
    for (path, token, body) in [
        ("/api/login/", None, r#"{"username": "Aras", "password": "#),
        (
            "/api/users/",
            None,
            r#"{"username": "zed", "email": "z@example.com",, }"#,
        ),
        ("/api/users/", None, "{'username': 'zed'}"),
        (
            "/api/groups/",
            Some(app.admin_token.as_str()),
            "not json at all",
        ),
        ("/api/events/", Some(app.admin_token.as_str()), "{"),
    ] {
        let reply = raw(app, Method::POST, path, token, "application/json", body).await;
        reply.assert(400);
        assert_json(&reply);
        let detail = reply.body["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} {body:?}: {}", reply.body));
        assert!(
            detail.starts_with("JSON parse error"),
            "{path} {body:?}: {detail}"
        );
    }
    assert_eq!(user_count(app).await, before, "nothing written");
    let groups = app.get("/api/groups/", app.admin()).await;
    assert_eq!(groups.body["count"], 0);
}

async fn non_object_json_is_400(app: &TestApp) {
    let before = user_count(app).await;
    for body in [
        json!([{ "username": "zed", "email": "zed@example.com", "password": PASSWORD }]),
        json!([1, 2]),
        json!("zed"),
        json!(42),
        json!(null),
    ] {
        for (path, token) in [
            ("/api/users/", None),
            ("/api/login/", None),
            ("/api/groups/", app.admin()),
        ] {
            let reply = app.post(path, token, body.clone()).await;
            assert_eq!(
                reply.status.as_u16(),
                400,
                "POST {path} {body}: {}",
                reply.body
            );
            assert!(reply.body.is_object(), "{}", reply.body);
            assert_json(&reply);
        }
    }
    assert_eq!(user_count(app).await, before, "nothing written");
}

async fn oversized_body_is_413(app: &TestApp) {
    let before = user_count(app).await;
    let big = "a".repeat(1024 * 1024 + 1024);
    let body = json!({
        "username": "zed",
        "email": "zed@example.com",
        "password": PASSWORD,
        "first_name": big,
    })
    .to_string();
    assert!(body.len() > 1024 * 1024);
    let reply = raw(
        app,
        Method::POST,
        "/api/users/",
        None,
        "application/json",
        body,
    )
    .await;
    reply.assert(413);
    assert_json(&reply);
    assert!(reply.body["detail"].is_string(), "{}", reply.body);
    assert_eq!(user_count(app).await, before, "nothing written");

    let event = json!({ "name": "x", "description": "d".repeat(2 * 1024 * 1024) }).to_string();
    let reply = raw(
        app,
        Method::POST,
        "/api/events/",
        app.admin(),
        "application/json",
        event,
    )
    .await;
    reply.assert(413);
    assert!(reply.body["detail"].is_string(), "{}", reply.body);

    // Just under the limit is read and judged on its content.
    let under = json!({ "username": "u".repeat(1_000_000), "password": "x" }).to_string();
    assert!(under.len() < 1024 * 1024);
    let reply = raw(
        app,
        Method::POST,
        "/api/login/",
        None,
        "application/json",
        under,
    )
    .await;
    assert!(
        matches!(reply.status.as_u16(), 400 | 401),
        "{} {}",
        reply.status,
        reply.body
    );
}

async fn request_id_is_set_and_echoed(app: &TestApp) {
    let responses = vec![
        app.get("/api/events/", None).await,
        app.get("/api/nope/", None).await,
        app.get("/api/users/me/", None).await,
        app.request(Method::PATCH, "/api/login/", None, Some(json!({})))
            .await,
        app.post("/api/login/", None, json!({})).await,
        app.get("/healthz", None).await,
    ];
    let mut ids = Vec::new();
    for reply in &responses {
        let id = reply
            .headers
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id on {} {}", reply.status, reply.body))
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(!id.is_empty());
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), responses.len(), "each request gets its own id");

    for (method, path, status) in [
        (Method::GET, "/api/events/", 200),
        (Method::GET, "/api/nope/", 404),
        (Method::GET, "/api/users/me/", 401),
        (Method::DELETE, "/api/events/", 405),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .header("X-Request-Id", "client-chosen-id-42")
            .send()
            .await
            .expect("sent");
        let reply = TestApp::reply(res).await;
        assert_eq!(reply.status.as_u16(), status, "{method} {path}");
        assert_eq!(
            reply
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some("client-chosen-id-42"),
            "{method} {path} echoes the client's id"
        );
    }
    // A 204 has the header too.
    let (_, refresh) = app.login_ok(SUPERUSER, PASSWORD).await;
    let res = app
        .client
        .post(app.url("/api/logout/"))
        .bearer_auth(&app.admin_token)
        .header("X-Request-Id", "logout-id")
        .json(&json!({ "refresh": refresh }))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(
        res.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("logout-id")
    );
    // An id that is not a plain token (spaces that would add fields to the
    // access line, 8 KB, a character outside [A-Za-z0-9._-]) is replaced by
    // one of the server's.
    let long = "a".repeat(8192);
    for sent in [
        "abc user=someone forged=1",
        long.as_str(),
        "id/with/slashes",
        "x".repeat(65).as_str(),
    ] {
        let res = app
            .client
            .get(app.url("/api/events/"))
            .header("X-Request-Id", sent)
            .send()
            .await
            .expect("sent");
        let answered = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("an id")
            .to_string();
        assert_ne!(answered, sent);
        assert!(
            (1..=64).contains(&answered.len())
                && answered
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
            "{answered}"
        );
    }
    let kept = "A.b_c-1".to_string() + &"9".repeat(57);
    let res = app
        .client
        .get(app.url("/api/events/"))
        .header("X-Request-Id", &kept)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        res.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(kept.as_str())
    );
}

async fn errors_are_json(app: &TestApp) {
    let (_, plain) = app.user("plain").await;
    let event = app.create_event(&app.admin_token, "Tiny", 1).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 1).await;
    app.register(&plain, &ticket).await.assert(201);
    let conflict = app.register(&plain, &ticket).await;
    let replies: Vec<(u16, Reply)> = vec![
        (400, app.post("/api/users/", None, json!({})).await),
        (401, app.get("/api/users/", None).await),
        (401, app.get("/api/events/", Some("garbage")).await),
        (403, app.get("/api/users/", Some(&plain)).await),
        (404, app.get("/api/events/not-a-uuid/", None).await),
        (
            404,
            app.get(&format!("/api/events/{}/", uuid::Uuid::new_v4()), None)
                .await,
        ),
        (409, conflict),
    ];
    for (status, reply) in &replies {
        assert_eq!(reply.status.as_u16(), *status, "{}", reply.body);
        assert_json(reply);
        assert!(reply.body.is_object(), "{}", reply.body);
        if *status != 400 {
            assert!(reply.body["detail"].is_string(), "{}", reply.body);
        }
    }
    assert_eq!(replies[4].1.body, json!({ "detail": "Not found." }));
    assert_eq!(replies[5].1.body, json!({ "detail": "Not found." }));
    assert_eq!(
        replies[3].1.body,
        json!({ "detail": "You do not have permission to perform this action." })
    );
}

async fn health_and_readiness(app: &TestApp) {
    let health = app.get("/healthz", None).await;
    health.assert(200);
    assert_eq!(health.body, json!({ "status": "ok" }));
    assert_json(&health);

    let ready = app.get("/readyz", None).await;
    ready.assert(200);
    assert_json(&ready);
    assert!(ready.body.is_object(), "{}", ready.body);
    // "the state of database, cache, object storage and mail"
    let text = ready.body.to_string().to_ascii_lowercase();
    for dependency in ["database", "cache", "storage", "mail"] {
        assert!(
            text.contains(dependency),
            "/readyz reports {dependency}: {}",
            ready.body
        );
    }
}

async fn poster_list_answers_with_and_without_slash(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Posterless", 10).await;
    for path in [
        format!("/api/events/{event}/poster"),
        format!("/api/events/{event}/poster/"),
    ] {
        let reply = app.get(&path, None).await;
        assert_eq!(reply.status.as_u16(), 200, "GET {path}: {}", reply.body);
        assert_eq!(reply.body, json!([]), "GET {path}: no poster yet");
    }
    let unknown = app
        .get(
            &format!("/api/events/{}/poster/", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    unknown.assert(404);
    assert_eq!(unknown.body, json!({ "detail": "Not found." }));
}

/// Creates `n` groups (cheap: no password hashing) named g00, g01, …
async fn make_groups(app: &TestApp, n: usize) {
    for i in 0..n {
        app.post(
            "/api/groups/",
            app.admin(),
            json!({ "name": format!("g{i:02}") }),
        )
        .await
        .assert(201);
    }
}

async fn page(app: &TestApp, query: &str) -> Reply {
    let reply = app.get(&format!("/api/groups/{query}"), app.admin()).await;
    reply.assert(200);
    reply
}

fn names(reply: &Reply) -> Vec<String> {
    reply.body["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("groups array: {}", reply.body))
        .iter()
        .map(|g| g["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn pagination_clamps_page_and_page_size(app: &TestApp) {
    make_groups(app, 45).await;

    let first = page(app, "").await;
    assert_eq!(first.body["count"], 45);
    assert_eq!(first.body["page"], 1);
    assert_eq!(first.body["page_size"], 20);
    assert_eq!(first.body["total_pages"], 3);
    assert_eq!(names(&first).len(), 20);
    assert_eq!(first.body["previous"], Value::Null);
    assert!(first.body["next"].is_string());

    let last = page(app, "?page=3").await;
    assert_eq!(last.body["page"], 3);
    assert_eq!(names(&last).len(), 5);
    assert_eq!(last.body["next"], Value::Null);
    assert!(last.body["previous"].is_string());

    // Past the end: the last page, not 404.
    for q in ["?page=4", "?page=99"] {
        let past = page(app, q).await;
        assert_eq!(past.body["page"], 3, "{q}");
        assert_eq!(names(&past), names(&last), "{q}");
        assert_eq!(past.body["count"], 45);
    }
    // Not a number, or < 1: page 1.
    for q in ["?page=abc", "?page=0", "?page=-2", "?page=", "?page=1.5"] {
        let p = page(app, q).await;
        assert_eq!(p.body["page"], 1, "{q}");
        assert_eq!(names(&p), names(&first), "{q}");
    }

    // page_size is honoured up to 100.
    let small = page(app, "?page_size=10&page=2").await;
    assert_eq!(small.body["page_size"], 10);
    assert_eq!(small.body["total_pages"], 5);
    assert_eq!(small.body["page"], 2);
    assert_eq!(names(&small), names(&first)[10..20].to_vec());
    let capped = page(app, "?page_size=1000").await;
    assert_eq!(capped.body["page_size"], 100);
    assert_eq!(capped.body["total_pages"], 1);
    assert_eq!(names(&capped).len(), 45);
    let exact = page(app, "?page_size=100").await;
    assert_eq!(exact.body["page_size"], 100);

    // Stable ordering: the pages partition the list.
    let mut all: Vec<String> = Vec::new();
    for p in 1..=3 {
        all.extend(names(&page(app, &format!("?page={p}")).await));
    }
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 45, "no duplicates or gaps across pages");
    assert_eq!(all, names(&capped), "same order at any page size");
}

/// Django's `get_page` takes any integer: one beyond 64 bits is still past
/// the end, hence the last page.
async fn pagination_huge_page_number_is_the_last_page(app: &TestApp) {
    make_groups(app, 3).await;
    let reply = page(app, "?page_size=2&page=100000000000000000000").await;
    assert_eq!(reply.body["page"], 2, "{}", reply.body);
    assert_eq!(names(&reply), vec!["g02"]);
}

/// Resolves a `next`/`previous` link (absolute, or relative to the list).
fn resolve(app: &TestApp, link: &str) -> String {
    if link.starts_with("http://") || link.starts_with("https://") {
        link.to_owned()
    } else if link.starts_with('/') {
        app.url(link)
    } else if link.starts_with('?') {
        app.url(&format!("/api/groups/{link}"))
    } else {
        panic!("unexpected link {link:?}")
    }
}

async fn follow(app: &TestApp, link: &str) -> Reply {
    let res = app
        .client
        .get(resolve(app, link))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("sent");
    let reply = TestApp::reply(res).await;
    reply.assert(200);
    reply
}

async fn pagination_links_lead_through_every_item(app: &TestApp) {
    make_groups(app, 25).await;
    let first = page(app, "?page_size=10").await;
    let next = first.body["next"].as_str().expect("next link").to_owned();
    assert!(next.contains("page=2"), "{next}");
    let second = follow(app, &next).await;
    assert_eq!(second.body["page"], 2);
    assert_eq!(second.body["page_size"], 10, "the link keeps page_size");
    let previous = second.body["previous"]
        .as_str()
        .expect("previous")
        .to_owned();
    let back = follow(app, &previous).await;
    assert_eq!(back.body["page"], 1);
    assert_eq!(names(&back), names(&first));
    let third = follow(app, second.body["next"].as_str().expect("next")).await;
    assert_eq!(third.body["page"], 3);
    assert_eq!(names(&third).len(), 5);
    assert_eq!(third.body["next"], Value::Null);
    let mut seen = names(&first);
    seen.extend(names(&second));
    seen.extend(names(&third));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25);

    // Other query parameters survive in the links.
    let events_token = app.admin_token.clone();
    for i in 0..3 {
        app.create_event(&events_token, &format!("Rust {i}"), 5)
            .await;
    }
    app.create_event(&events_token, "Other", 5).await;
    let filtered = app.get("/api/events/?search=Rust&page_size=2", None).await;
    filtered.assert(200);
    assert_eq!(filtered.body["count"], 3);
    let next = filtered.body["next"].as_str().expect("next").to_owned();
    let res = app.client.get(if next.starts_with("http") {
        next.clone()
    } else if next.starts_with('/') {
        app.url(&next)
    } else {
        app.url(&format!("/api/events/{next}"))
    });
    let rest = TestApp::reply(res.send().await.expect("sent")).await;
    rest.assert(200);
    assert_eq!(rest.body["page"], 2);
    let events = rest.body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "search kept: {next}");
    assert!(
        events[0]["name"]
            .as_str()
            .expect("name")
            .starts_with("Rust")
    );
}

async fn empty_list_is_page_one(app: &TestApp) {
    let reply = app.get("/api/events/", None).await;
    reply.assert(200);
    assert_eq!(reply.body["events"], json!([]));
    assert_eq!(reply.body["count"], 0);
    assert_eq!(reply.body["page"], 1);
    assert_eq!(reply.body["next"], Value::Null);
    assert_eq!(reply.body["previous"], Value::Null);
    let past = app.get("/api/events/?page=5", None).await;
    past.assert(200);
    assert_eq!(past.body["page"], 1);
    assert_eq!(past.body["events"], json!([]));
}
