//! API.md §12: the `Host` names served (`ALLOWED_HOSTS`) and the address
//! absolute URLs point at (`PUBLIC_URL`).

use reqwest::Method;
use reqwest::header::HOST;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, Reply, TestApp};

crate::backend_tests!(an_unlisted_host_is_refused_and_nothing_written);

async fn with_host(
    app: &TestApp,
    method: Method,
    path: &str,
    host: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path)).header(HOST, host);
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::reply(request.send().await.expect("sent")).await
}

#[track_caller]
fn assert_bad_host(reply: &Reply) {
    reply.assert(400);
    assert_eq!(reply.body, json!({ "detail": "Bad Request (400)" }));
}

/// The default list: 127.0.0.1 and localhost (any port). Another name is
/// refused before anything runs (a sign-up creates nothing); the probes
/// answer whatever they are called.
async fn an_unlisted_host_is_refused_and_nothing_written(app: &TestApp) {
    let port = app.address.rsplit(':').next().expect("port").to_owned();
    let fine = with_host(
        app,
        Method::GET,
        "/api/events/",
        &format!("localhost:{port}"),
        None,
    )
    .await;
    fine.assert(200);
    for host in [
        "evil.example",
        "evil.example:80",
        "127.0.0.1.evil.example",
        "localhost@evil.example",
        "",
    ] {
        assert_bad_host(&with_host(app, Method::GET, "/api/events/", host, None).await);
    }
    let signup = with_host(
        app,
        Method::POST,
        "/api/users/",
        "evil.example",
        Some(json!({
            "username": "hostless",
            "email": "hostless@example.com",
            "password": PASSWORD,
        })),
    )
    .await;
    assert_bad_host(&signup);
    let users = app.get("/api/users/?search=hostless", app.admin()).await;
    assert_eq!(users.body["count"], 0, "{}", users.body);
    // The request id and security headers are still given.
    assert!(signup.headers.contains_key("x-request-id"));
    for probe in ["/healthz", "/readyz"] {
        let reply = app
            .client
            .get(app.url(probe))
            .header(HOST, "10.1.2.3:8000")
            .send()
            .await
            .expect("sent");
        assert_eq!(reply.status(), 200, "{probe}");
    }
}

/// `ALLOWED_HOSTS` as Django reads it: exact names, `.domain` for a domain
/// and its subdomains; links follow the `Host` used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_hosts_are_served_and_others_refused() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[(
            "ALLOWED_HOSTS",
            "127.0.0.1, events.example.com,.example.org",
        )],
    )
    .await;
    let token = app.admin().expect("admin").to_owned();
    for n in 0..3 {
        app.create_event(&token, &format!("Hosted {n}"), 10).await;
    }
    for host in [
        "events.example.com",
        "EVENTS.example.com:8443",
        "a.example.org",
    ] {
        let page = with_host(&app, Method::GET, "/api/events/?page_size=1", host, None).await;
        page.assert(200);
        let next = page.body["next"].as_str().expect("next").to_owned();
        assert!(
            next.starts_with(&format!("http://{host}/api/events/?")),
            "{host}: {next}"
        );
    }
    for host in ["localhost", "example.com", "events.example.com.evil"] {
        assert_bad_host(&with_host(&app, Method::GET, "/api/events/", host, None).await);
    }
    app.cleanup().await;
}

/// With `PUBLIC_URL`, every absolute URL points there, whatever (allowed)
/// `Host` the request named: pagination links and ticket images.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_urls_follow_the_public_url() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PUBLIC_URL", "https://tickets.example.com/dicoevent/")],
    )
    .await;
    let token = app.admin().expect("admin").to_owned();
    let event = app.create_event(&token, "Public", 10).await;
    app.create_event(&token, "Public two", 10).await;
    let page = app.get("/api/events/?page_size=1", None).await;
    let next = page.body["next"].as_str().expect("next");
    assert!(
        next.starts_with("https://tickets.example.com/dicoevent/api/events/?"),
        "{next}"
    );
    // The public host is served by default, alongside loopback.
    with_host(
        &app,
        Method::GET,
        "/api/events/",
        "tickets.example.com",
        None,
    )
    .await
    .assert(200);
    let ticket = app.create_ticket(&token, &event, 5).await;
    let (_, attendee) = app.user("public").await;
    let registration = app.register(&attendee, &ticket).await;
    registration.assert(201);
    let code = app
        .get(
            &format!("/api/registrations/{}/ticket/", registration.id()),
            Some(&attendee),
        )
        .await;
    code.assert(200);
    let svg = code.body["qr_svg"].as_str().expect("qr_svg");
    assert_eq!(
        svg,
        format!(
            "https://tickets.example.com/dicoevent/api/registrations/{}/ticket.svg",
            registration.id()
        )
    );
    app.cleanup().await;
}

/// Bad values are refused at start, naming the variable.
#[test]
fn bad_host_settings_are_named() {
    use std::collections::HashMap;
    for (name, value) in [
        ("ALLOWED_HOSTS", "https://events.example.com"),
        ("ALLOWED_HOSTS", "events.example.com:8000"),
        ("ALLOWED_HOSTS", "evil_host"),
        ("PUBLIC_URL", "events.example.com"),
        ("PUBLIC_URL", "https://events.example.com/?x=1"),
    ] {
        let vars: HashMap<String, String> = [(name.to_string(), value.to_string())].into();
        let error = dicoevent::config::Config::from_vars(&vars).expect_err(value);
        assert_eq!(error.variable, name, "{value}: {error}");
    }
}

/// A login sent from `source` with an `X-Forwarded-For` header.
async fn login_forwarded(
    app: &TestApp,
    source: [u8; 4],
    forwarded_for: &str,
    username: &str,
    password: &str,
) -> u16 {
    crate::helpers::login_from_address(app, source, Some(forwarded_for), username, password).await
}

/// The addresses the audit log recorded for `username`'s logins, oldest first.
async fn login_addresses(app: &TestApp, username: &str) -> Vec<String> {
    let entries = app
        .get(
            &format!("/api/audit/?action=user.logged_in&actor={username}"),
            app.admin(),
        )
        .await;
    entries.assert(200);
    let mut ips: Vec<String> = entries.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["ip"].as_str().unwrap_or("").to_owned())
        .collect();
    ips.reverse();
    ips
}

/// Behind a load balancer listed in `TRUSTED_PROXIES`, the client is the
/// last address of `X-Forwarded-For` that is not a trusted proxy: login
/// throttling counts per client, not one count for everyone behind the
/// balancer, and the audit log records the client. What a client writes
/// into the header itself (left of what the balancer appended) is not
/// believed, and a peer outside the list is never believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_names_the_client() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")],
    )
    .await;
    app.user("behind").await;
    // (The sign-up's own login came straight from 127.0.0.1.) Ten failures
    // from one client behind the balancer lock that client out.
    for attempt in 0..10u8 {
        let status =
            login_forwarded(&app, [127, 0, 0, 1], "198.51.100.10", "behind", "Wrong-1").await;
        assert_eq!(status, 401, "failure {attempt}");
    }
    assert_eq!(
        login_forwarded(&app, [127, 0, 0, 1], "198.51.100.10", "behind", PASSWORD).await,
        429
    );
    // Another client behind the same balancer is not locked out; a client
    // writing the locked address itself is read by what the balancer added;
    // a chain of trusted proxies is walked past.
    for (forwarded, expected) in [
        ("198.51.100.40", 200),
        ("198.51.100.10, 198.51.100.41", 200),
        ("198.51.100.10, 198.51.100.42, 10.1.2.3", 200),
        ("198.51.100.43, 10.1.2.3, 10.9.9.9", 200),
        // Garbage written by the client, left of what the balancer added.
        ("not-an-address, 198.51.100.44", 200),
    ] {
        assert_eq!(
            login_forwarded(&app, [127, 0, 0, 1], forwarded, "behind", PASSWORD).await,
            expected,
            "{forwarded}"
        );
    }
    // A peer that is not a trusted proxy is the client, whatever it says.
    assert_eq!(
        login_forwarded(&app, [127, 0, 0, 9], "198.51.100.10", "behind", PASSWORD).await,
        200
    );
    assert_eq!(
        login_addresses(&app, "behind").await[..],
        [
            "127.0.0.1",
            "198.51.100.40",
            "198.51.100.41",
            "198.51.100.42",
            "198.51.100.43",
            "198.51.100.44",
            "127.0.0.9"
        ]
    );
    app.cleanup().await;

    // Without TRUSTED_PROXIES the header is ignored.
    let plain = TestApp::spawn(Backend::Sqlite).await;
    plain.user("direct").await;
    assert_eq!(
        login_forwarded(&plain, [127, 0, 0, 1], "198.51.100.50", "direct", PASSWORD).await,
        200
    );
    assert_eq!(
        login_addresses(&plain, "direct").await[..],
        ["127.0.0.1", "127.0.0.1"]
    );
    plain.cleanup().await;
}

/// A bad `TRUSTED_PROXIES` entry is refused at start, naming the variable.
#[test]
fn a_bad_trusted_proxy_is_named() {
    use std::collections::HashMap;
    for value in ["10.0.0.0/33", "balancer.local", "10.0.0.1:8080"] {
        let vars: HashMap<String, String> =
            [("TRUSTED_PROXIES".to_string(), value.to_string())].into();
        let error = dicoevent::config::Config::from_vars(&vars).expect_err(value);
        assert_eq!(error.variable, "TRUSTED_PROXIES", "{value}: {error}");
        assert!(error.to_string().contains(value), "{error}");
    }
    let vars: HashMap<String, String> = [(
        "TRUSTED_PROXIES".to_string(),
        "10.0.0.5, fd00::/8 127.0.0.1".to_string(),
    )]
    .into();
    let config = dicoevent::config::Config::from_vars(&vars).expect("valid");
    assert_eq!(config.trusted_proxies.len(), 3);
}
