//! Defences: security headers, CORS, a request timeout for slow clients, and
//! load shedding instead of collapse.

use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, PASSWORD, SUPERUSER, TestApp};

crate::backend_tests!(
    every_response_carries_the_security_headers,
    null_characters_are_refused_not_stored
);

/// PostgreSQL refuses NUL in text; Django's `CharField` refuses it first, with
/// a 400 on the field (found by schemathesis as a 500).
async fn null_characters_are_refused_not_stored(app: &TestApp) {
    let admin = app.admin().expect("admin token");
    for path in [
        "/api/events/?search=a%00b",
        "/api/events/?category=%00",
        "/api/events/?location=x%00",
        "/api/users/?search=%00",
    ] {
        let reply = app.get(path, Some(admin)).await;
        reply.assert(400);
        let field = path
            .split('?')
            .nth(1)
            .and_then(|q| q.split('=').next())
            .expect("a parameter");
        assert_eq!(
            reply.body[field][0], "Null characters are not allowed.",
            "{path}: {}",
            reply.body
        );
    }
    let mut event = TestApp::event_body("Nul\u{0}fest", 10);
    event["name"] = json!("Nul\u{0}fest");
    let reply = app.post("/api/events/", Some(admin), event).await;
    reply.assert(400);
    assert_eq!(reply.body["name"][0], "Null characters are not allowed.");
    let signup = app
        .post(
            "/api/users/",
            None,
            json!({"username": "nul\u{0}user", "password": "x\u{0}Str0ng-Passw0rd!", "email": "nul@example.com"}),
        )
        .await;
    signup.assert(400);
    assert!(signup.body["username"].is_array(), "{}", signup.body);
    assert!(signup.body["password"].is_array(), "{}", signup.body);
    // Nothing was written.
    let events = app.get("/api/events/", Some(admin)).await;
    assert_eq!(events.body["count"], 0, "{}", events.body);
    let users = app.get("/api/users/?search=nul", Some(admin)).await;
    assert_eq!(users.body["count"], 0, "{}", users.body);
}

async fn every_response_carries_the_security_headers(app: &TestApp) {
    for path in ["/api/events/", "/api/nowhere", "/healthz", "/api/docs/"] {
        let res = app.client.get(app.url(path)).send().await.expect("get");
        let headers = res.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
    let docs = app
        .client
        .get(app.url("/api/docs/"))
        .send()
        .await
        .expect("docs");
    let csp = docs.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    // Without CORS_ALLOWED_ORIGINS, no cross-origin grant.
    let res = app
        .client
        .get(app.url("/api/events/"))
        .header("Origin", "https://elsewhere.example")
        .send()
        .await
        .expect("get");
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // The same `Vary` as with CORS on, and `OPTIONS` answered empty.
    assert_eq!(
        res.headers()["vary"],
        "origin, access-control-request-method, access-control-request-headers"
    );
    let options = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/events/"))
        .header("Origin", "https://elsewhere.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("options");
    assert_eq!(options.status(), 200);
    assert!(
        options
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert!(options.headers().contains_key("x-request-id"));
    assert_eq!(options.headers()["x-content-type-options"], "nosniff");
    assert!(options.text().await.expect("body").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example.com, https://admin.example.com/",
        )],
    )
    .await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/registrations/"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .expect("headers")
        .to_ascii_lowercase();
    assert!(
        allowed.contains("idempotency-key") && allowed.contains("authorization"),
        "{allowed}"
    );
    let get = app
        .client
        .get(app.url("/api/events/"))
        .header("Origin", "https://admin.example.com")
        .send()
        .await
        .expect("get");
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    let exposed = get.headers()["access-control-expose-headers"]
        .to_str()
        .expect("expose")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("x-data-source"),
        "{exposed}"
    );
    let evil = app
        .client
        .get(app.url("/api/events/"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .expect("get");
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    // Errors carry the grant too (a browser could not read them otherwise),
    // and every answer, the preflight included, its request id.
    assert!(preflight.headers().contains_key("x-request-id"));
    let missing = app
        .client
        .get(app.url("/api/nowhere/"))
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(missing.headers().contains_key("x-request-id"));
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off_with_408() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("REQUEST_TIMEOUT", "1")]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    // Headers promise 100 bytes; only one arrives.
    stream
        .write_all(b"POST /api/login/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("write");
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered before 10 s")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..read]).to_string();
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("application/json"), "{text}");
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_is_shed_with_503() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("MAX_IN_FLIGHT", "1")]).await;
    // Logins hash with Argon2 (tens of ms each): twenty at once overlap.
    let statuses: Vec<(u16, serde_json::Value)> = join_all((0..20).map(|_| async {
        let r = app
            .post(
                "/api/login/",
                None,
                json!({ "username": SUPERUSER, "password": PASSWORD }),
            )
            .await;
        (r.status.as_u16(), r.body)
    }))
    .await;
    let shed: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert!(
        !shed.is_empty(),
        "some requests are shed: {:?}",
        statuses.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    assert!(shed.iter().all(|(_, body)| body["detail"].is_string()));
    assert!(statuses.iter().all(|(s, _)| *s == 200 || *s == 503));
    assert!(
        statuses.iter().any(|(s, _)| *s == 200),
        "the server keeps serving"
    );
    app.cleanup().await;
}

/// `MAX_IN_FLIGHT` bounds the whole server, not each route: while logins
/// hold the one slot, other routes are shed too (503 in the contract's
/// shape, with a request id), except `/healthz`; and nothing is refused once
/// they are done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_in_flight_limit_covers_every_route() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("MAX_IN_FLIGHT", "1")]).await;
    // Logins one after another: each holds the slot while it hashes.
    let logins = async {
        for _ in 0..15 {
            let reply = app
                .post(
                    "/api/login/",
                    None,
                    json!({ "username": SUPERUSER, "password": PASSWORD }),
                )
                .await;
            assert!(matches!(reply.status.as_u16(), 200 | 503));
        }
    };
    let probes = async {
        let mut answers = Vec::new();
        for _ in 0..40 {
            let reply = app
                .client
                .get(app.url("/api/events/"))
                .send()
                .await
                .expect("events");
            let status = reply.status().as_u16();
            let has_id = reply.headers().contains_key("x-request-id");
            let body: serde_json::Value = reply.json().await.expect("json");
            answers.push((status, has_id, body));
            // The probes are never shed.
            app.get("/healthz", None).await.assert(200);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        answers
    };
    let (_, answers) = tokio::join!(logins, probes);
    let shed: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        !shed.is_empty(),
        "a list request is shed while logins hold the slot: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert!(
        shed.iter()
            .all(|(_, has_id, body)| *has_id && body["detail"].is_string())
    );
    assert!(answers.iter().all(|(s, _, _)| *s == 200 || *s == 503));
    // Once the logins are done, the slot is free again.
    app.get("/api/events/", None).await.assert(200);
    app.cleanup().await;
}

/// Reads until the server closes the connection (or 10 s pass): what it sent.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, Duration) {
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the connection was still open after 10 s"),
        }
    }
    (received, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_headers_is_disconnected() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("HEADER_READ_TIMEOUT", "1")]).await;
    let address = app.address.trim_start_matches("http://").to_owned();

    // Half a request head, then nothing: closed after about a second.
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .expect("write");
    let (_, waited) = read_until_closed(&mut slow).await;
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");

    // A connection that sends nothing at all goes the same way.
    let mut silent = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let (received, _) = read_until_closed(&mut silent).await;
    assert!(
        received.is_empty() || received.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&received)
    );

    // A prompt client on a kept-alive connection is served normally, then
    // the idle connection is closed too.
    let mut prompt = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    prompt
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let (received, _) = read_until_closed(&mut prompt).await;
    let text = String::from_utf8_lossy(&received).to_string();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains(r#"{"status":"ok"}"#), "{text}");

    // Meanwhile the server keeps serving everyone else.
    app.get("/healthz", None).await.assert(200);
    app.cleanup().await;
}
