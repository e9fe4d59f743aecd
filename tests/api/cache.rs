//! The read cache: hit/miss headers, invalidation across server processes,
//! a read/write race, and Redis outages.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp};

fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Each test on the in-process cache and, with `TEST_REDIS_URL`, on Redis.
macro_rules! cache_tests {
    ($($name:ident),* $(,)?) => {
        mod in_process {
            use crate::helpers::{Backend, TestApp};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = TestApp::spawn(Backend::Sqlite).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
        mod redis {
            use crate::helpers::{Backend, TestApp};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(url) = super::redis_url() else {
                        eprintln!("skipped: TEST_REDIS_URL is not set");
                        return;
                    };
                    let app = TestApp::spawn_with(Backend::Sqlite, &[("REDIS_URL", &url)]).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
    };
}

cache_tests!(
    cached_routes_say_where_they_come_from,
    console_summaries_follow_every_write,
    role_and_activation_changes_apply_to_the_next_request,
    registration_rules_follow_ticket_and_event_changes,
);

fn source(reply: &Reply) -> &str {
    reply
        .headers
        .get("x-data-source")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
}

/// GETs twice: the first from the database, the second from the cache, same body.
async fn miss_then_hit(app: &TestApp, path: &str) -> Value {
    let first = app.get(path, None).await;
    first.assert(200);
    assert_eq!(source(&first), "database", "{path} first read");
    let second = app.get(path, None).await;
    second.assert(200);
    assert_eq!(source(&second), "cache", "{path} second read");
    assert_eq!(first.body, second.body, "{path}: same body");
    second.body
}

async fn cached_routes_say_where_they_come_from(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Cached", 10).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 5).await;
    miss_then_hit(app, &format!("/api/events/{event}/")).await;
    miss_then_hit(app, "/api/events/").await;
    miss_then_hit(app, "/api/events/?ordering=-name&page_size=5").await;
    miss_then_hit(app, "/api/tickets/").await;
    miss_then_hit(app, &format!("/api/tickets/?event={event}")).await;
    let t = miss_then_hit(app, &format!("/api/tickets/{ticket}/")).await;
    assert_eq!(t["sold"], 0);

    // A registration changes sold/available: the next read is fresh.
    let (_, alice) = app.user("alice").await;
    app.register(&alice, &ticket).await.assert(201);
    let fresh = app.get(&format!("/api/tickets/{ticket}/"), None).await;
    assert_eq!(source(&fresh), "database");
    assert_eq!(fresh.body["sold"], 1);
    assert_eq!(fresh.body["available"], 4);

    // Not cached: other routes carry no X-Data-Source; a bad token is still 401.
    let users = app.get("/api/users/me/", app.admin()).await;
    assert_eq!(source(&users), "none");
    app.get(&format!("/api/events/{event}/"), Some("garbage"))
        .await
        .assert(401);
    // Unknown ids are 404 from the database, every time.
    let missing = format!("/api/events/{}/", uuid::Uuid::new_v4());
    app.get(&missing, None).await.assert(404);
    app.get(&missing, None).await.assert(404);
}

/// Two servers sharing PostgreSQL and Redis, as behind a load balancer.
async fn two_processes() -> Option<(TestApp, TestApp)> {
    let url = redis_url()?;
    crate::helpers::postgres_url()?;
    let a = TestApp::spawn_with(Backend::Postgres, &[("REDIS_URL", &url)]).await;
    let b = a.spawn_sibling().await;
    Some((a, b))
}

/// Reads `path` on B until it is cached there, returning the cached body.
async fn warm(b: &TestApp, path: &str) -> Value {
    let first = b.get(path, None).await;
    first.assert(200);
    let second = b.get(path, None).await;
    assert_eq!(source(&second), "cache", "{path} cached on B");
    second.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_process_are_seen_by_the_other() {
    let Some((a, b)) = two_processes().await else {
        eprintln!("skipped: needs TEST_REDIS_URL and TEST_DATABASE_URL");
        return;
    };
    let admin = a.admin_token.clone();
    let mut reads = 0usize;
    let event = a.create_event(&admin, "Shared", 100).await;
    let event_path = format!("/api/events/{event}/");

    // Event update.
    warm(&b, &event_path).await;
    warm(&b, "/api/events/").await;
    reads += 4;
    a.patch(&event_path, Some(&admin), json!({ "name": "Renamed" }))
        .await
        .assert(200);
    assert_eq!(b.get(&event_path, None).await.body["name"], "Renamed");
    assert_eq!(
        b.get("/api/events/", None).await.body["events"][0]["name"],
        "Renamed"
    );
    reads += 2;

    // Event create appears in the list.
    warm(&b, "/api/events/").await;
    let second = a.create_event(&admin, "Second", 10).await;
    let list = b.get("/api/events/", None).await;
    assert_eq!(list.body["count"], 2);
    reads += 3;

    // Ticket create, update.
    warm(&b, "/api/tickets/").await;
    let ticket = a.create_ticket(&admin, &event, 10).await;
    assert_eq!(b.get("/api/tickets/", None).await.body["count"], 1);
    let ticket_path = format!("/api/tickets/{ticket}/");
    warm(&b, &ticket_path).await;
    a.patch(&ticket_path, Some(&admin), json!({ "quota": 20 }))
        .await
        .assert(200);
    assert_eq!(b.get(&ticket_path, None).await.body["quota"], 20);
    reads += 6;

    // Registration create, move, delete: sold/available.
    let (_, alice) = a.user("alice").await;
    warm(&b, &ticket_path).await;
    let registration = a.register(&alice, &ticket).await;
    registration.assert(201);
    let seen = b.get(&ticket_path, None).await;
    assert_eq!(
        (seen.body["sold"].clone(), seen.body["available"].clone()),
        (json!(1), json!(19))
    );
    let other_ticket = a.create_ticket(&admin, &event, 10).await;
    let other_path = format!("/api/tickets/{other_ticket}/");
    warm(&b, &ticket_path).await;
    warm(&b, &other_path).await;
    a.patch(
        &format!("/api/registrations/{}/", registration.id()),
        Some(&admin),
        json!({ "ticket_id": other_ticket }),
    )
    .await
    .assert(200);
    assert_eq!(b.get(&ticket_path, None).await.body["sold"], 0);
    assert_eq!(b.get(&other_path, None).await.body["sold"], 1);
    warm(&b, &other_path).await;
    a.delete(
        &format!("/api/registrations/{}/", registration.id()),
        Some(&admin),
    )
    .await
    .assert(204);
    assert_eq!(b.get(&other_path, None).await.body["sold"], 0);
    reads += 13;

    // Ticket delete.
    warm(&b, &other_path).await;
    a.delete(&other_path, Some(&admin)).await.assert(204);
    b.get(&other_path, None).await.assert(404);
    reads += 3;

    // Event delete cascades to its tickets.
    warm(&b, &ticket_path).await;
    warm(&b, &event_path).await;
    warm(&b, "/api/tickets/").await;
    a.delete(&event_path, Some(&admin)).await.assert(204);
    b.get(&event_path, None).await.assert(404);
    b.get(&ticket_path, None).await.assert(404);
    assert_eq!(b.get("/api/tickets/", None).await.body["count"], 0);
    assert_eq!(
        b.get("/api/events/", None).await.body["events"][0]["id"],
        second.as_str()
    );
    reads += 10;
    eprintln!("two processes: {reads} reads on B after writes on A, none stale");
    b.cleanup().await;
    a.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_stale_read_after_the_last_write() {
    let Some((a, b)) = two_processes().await else {
        eprintln!("skipped: needs TEST_REDIS_URL and TEST_DATABASE_URL");
        return;
    };
    let admin = a.admin_token.clone();
    let event = a.create_event(&admin, "v0", 100).await;
    let path = format!("/api/events/{event}/");
    let writes = 30;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for i in 0..8 {
        let server = if i % 2 == 0 {
            b.address.clone()
        } else {
            a.address.clone()
        };
        let client = a.client.clone();
        let path = path.clone();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let r = client
                    .get(format!("{server}{path}"))
                    .send()
                    .await
                    .expect("read");
                assert_eq!(r.status(), 200);
                n += 1;
            }
            n
        }));
    }
    for v in 1..=writes {
        a.patch(&path, Some(&admin), json!({ "name": format!("v{v}") }))
            .await
            .assert(200);
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let during: usize = join_all(readers)
        .await
        .into_iter()
        .map(|r| r.expect("reader"))
        .sum();
    // After the last write returned: every read, on both processes, is the last version.
    let after = join_all((0..200).map(|i| {
        let server = if i % 2 == 0 { &b } else { &a };
        let path = path.clone();
        async move { server.get(&path, None).await.body["name"].clone() }
    }))
    .await;
    let stale = after
        .iter()
        .filter(|name| **name != json!(format!("v{writes}")))
        .count();
    eprintln!(
        "race: {writes} writes with {during} concurrent reads; then {} reads, {stale} stale",
        after.len()
    );
    assert_eq!(stale, 0);
    b.cleanup().await;
    a.cleanup().await;
}

/// Invalidations asked for at the same moment go to Redis together; each
/// writer must still return only once the other process no longer serves
/// what it changed, and the registrations' own cached counts follow too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_are_each_seen_on_the_other_process_when_they_return() {
    let Some((a, b)) = two_processes().await else {
        eprintln!("skipped: needs TEST_REDIS_URL and TEST_DATABASE_URL");
        return;
    };
    let admin = a.admin_token.clone();
    let mut paths = Vec::new();
    for i in 0..16 {
        let event = a.create_event(&admin, &format!("e{i}-r0"), 100).await;
        paths.push(format!("/api/events/{event}/"));
    }
    for round in 1..=3 {
        for path in &paths {
            warm(&b, path).await;
        }
        // Readers on B keep caching every event meanwhile, so a writer
        // answered after a bump sent before its commit would find its old
        // version cached again under the newer generation.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let readers = join_all((0..4).map(|_| {
            let (b, paths, stop) = (&b, &paths, &stop);
            async move {
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    for path in paths {
                        b.get(path, None).await.assert(200);
                    }
                }
            }
        }));
        let writers = join_all(paths.iter().enumerate().map(|(i, path)| {
            let (a, b, admin) = (&a, &b, &admin);
            async move {
                let name = format!("e{i}-r{round}");
                a.patch(path, Some(admin), json!({ "name": name }))
                    .await
                    .assert(200);
                (name, b.get(path, None).await.body["name"].clone())
            }
        }));
        let seen = async {
            let seen = writers.await;
            stop.store(true, std::sync::atomic::Ordering::Release);
            seen
        };
        let (seen, _) = futures::future::join(seen, readers).await;
        for (written, read) in seen {
            assert_eq!(read, json!(written), "round {round}");
        }
    }
    // Concurrent registrations: once k of them have been answered, the
    // ticket read on the other process counts at least k.
    let event = a.create_event(&admin, "Burst", 100).await;
    let ticket = a.create_ticket(&admin, &event, 100).await;
    let path = format!("/api/tickets/{ticket}/");
    warm(&b, &path).await;
    let users = a.many_users("coalesce", 12).await;
    let answered = std::sync::atomic::AtomicI64::new(0);
    let seen = join_all(users.iter().map(|(_, token)| {
        let (a, b, ticket, path, answered) = (&a, &b, &ticket, &path, &answered);
        async move {
            a.register(token, ticket).await.assert(201);
            let at_least = answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let sold = b.get(path, None).await.body["sold"].as_i64();
            (at_least, sold)
        }
    }))
    .await;
    for (at_least, sold) in seen {
        assert!(
            sold >= Some(at_least),
            "{at_least} registrations answered, the other process counts {sold:?}"
        );
    }
    b.cleanup().await;
    a.cleanup().await;
}

/// A private redis-server the test can stop and start again.
struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn start(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_falls_back_to_the_database() {
    if !RedisServer::available() {
        eprintln!("skipped: redis-server is not installed");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut redis = RedisServer { child: None, port };
    redis.start();
    let url = format!("redis://127.0.0.1:{port}/0");
    let app = TestApp::spawn_with(Backend::Sqlite, &[("REDIS_URL", &url)]).await;
    let event = app.create_event(&app.admin_token, "Resilient", 10).await;
    let path = format!("/api/events/{event}/");
    miss_then_hit(&app, &path).await;

    redis.stop();
    for _ in 0..20 {
        let r = app.get(&path, None).await;
        r.assert(200);
        assert_eq!(source(&r), "database");
    }
    // Writes succeed too, and what they change is seen after Redis returns.
    app.patch(
        &path,
        app.admin(),
        json!({ "name": "Changed while Redis was down" }),
    )
    .await
    .assert(200);
    let ready = app.get("/readyz", None).await;
    ready.assert(200);
    assert_eq!(ready.body["cache"]["status"], "degraded");

    redis.start();
    let mut hit = false;
    for _ in 0..50 {
        let r = app.get(&path, None).await;
        r.assert(200);
        assert_eq!(r.body["name"], "Changed while Redis was down");
        if source(&r) == "cache" {
            hit = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(hit, "hits again once Redis is back");
    app.cleanup().await;
}

/// A Redis restarted empty must not hand out generations seen before: the
/// list totals this process counted under them would come back (found by
/// bench/faults.sh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_totals_stay_right_after_redis_restarts_empty() {
    if !RedisServer::available() {
        eprintln!("skipped: redis-server is not installed");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut redis = RedisServer { child: None, port };
    redis.start();
    let url = format!("redis://127.0.0.1:{port}/0");
    let app = TestApp::spawn_with(Backend::Sqlite, &[("REDIS_URL", &url)]).await;
    for n in 1..=3 {
        app.create_event(&app.admin_token, &format!("Before {n}"), 10)
            .await;
        for _ in 0..2 {
            let list = app.get("/api/events/", None).await;
            assert_eq!(list.body["count"], n, "{}", list.body);
        }
    }
    redis.stop();
    redis.start();
    for n in 4..=6 {
        app.create_event(&app.admin_token, &format!("After {n}"), 10)
            .await;
        for _ in 0..2 {
            let list = app.get("/api/events/", None).await;
            list.assert(200);
            assert_eq!(list.body["count"], n, "{}", list.body);
        }
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_on_a_closed_port_is_not_a_failure() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("REDIS_URL", "redis://127.0.0.1:1/0")]).await;
    let event = app.create_event(&app.admin_token, "No cache", 10).await;
    for path in [
        format!("/api/events/{event}/"),
        "/api/events/".into(),
        "/api/tickets/".into(),
    ] {
        for _ in 0..3 {
            let r = app.get(&path, None).await;
            r.assert(200);
            assert_eq!(source(&r), "database");
        }
    }
    app.get("/readyz", None).await.assert(200);
    app.cleanup().await;
}

/// The console's event page and dashboard, read again after each kind of
/// write (`server` renders, `writer` writes): a registration, a payment and
/// its move, a user's new name, a check-in, a poster. Each must show at once.
async fn console_summaries_follow(server: &TestApp, writer: &TestApp) {
    let admin = writer.admin_token.clone();
    let event = writer.create_event(&admin, "Cached Night", 100).await;
    let ticket = writer.create_ticket(&admin, &event, 50).await;
    let (first_id, first) = writer.user("cachedfirst").await;
    writer.register(&first, &ticket).await.assert(201);

    let mut browser = crate::console::Browser::new(server);
    browser
        .sign_in(crate::helpers::SUPERUSER, crate::helpers::PASSWORD)
        .await;
    let page_path = format!("/console/events/{event}/");
    // Read twice: the second comes from the cache.
    let body = page(&mut browser, &page_path).await;
    assert!(body.contains("cachedfirst@example.com"), "{body}");
    page(&mut browser, &page_path).await;

    // A second registration.
    let (_, second) = writer.user("cachedsecond").await;
    let registration = writer.register(&second, &ticket).await;
    registration.assert(201);
    let body = page(&mut browser, &page_path).await;
    assert!(body.contains("cachedsecond@example.com"), "{body}");

    // A payment, then its move to completed; the dashboard's pending count.
    let pending = |n: u32| format!("Payments pending</a></span><span class=\"value\">{n}<");
    let dashboard = browser.get("/console/").await.body;
    assert!(dashboard.contains(&pending(0)), "{dashboard}");
    let payment = writer
        .post(
            "/api/payments/",
            Some(&second),
            json!({
                "registration_id": registration.id(),
                "payment_method": "bank transfer",
                "amount_paid": 150000,
            }),
        )
        .await;
    payment.assert(201);
    let body = page(&mut browser, &page_path).await;
    assert!(body.contains("Bank transfer"), "{body}");
    assert!(body.contains("badge pending"), "{body}");
    let dashboard = browser.get("/console/").await.body;
    assert!(dashboard.contains(&pending(1)), "{dashboard}");
    writer
        .patch(
            &format!("/api/payments/{}/", payment.id()),
            Some(&admin),
            json!({ "payment_status": "completed", "force": true }),
        )
        .await
        .assert(200);
    let body = page(&mut browser, &page_path).await;
    assert!(body.contains("badge completed"), "{body}");
    assert!(!body.contains("badge pending"), "{body}");

    // The first attendee gives their name.
    writer
        .patch(
            &format!("/api/users/{first_id}/"),
            Some(&first),
            json!({ "first_name": "Ayu", "last_name": "Lestari" }),
        )
        .await
        .assert(200);
    let body = page(&mut browser, &page_path).await;
    assert!(body.contains("Ayu Lestari"), "{body}");

    // A check-in at the door.
    let registrations = writer
        .get(&format!("/api/registrations/?event={event}"), Some(&first))
        .await;
    let mine = registrations.body["registrations"][0]["id"]
        .as_str()
        .expect("registration id")
        .to_owned();
    let code = writer
        .get(&format!("/api/registrations/{mine}/ticket/"), Some(&first))
        .await;
    code.assert(200);
    writer
        .post(
            "/api/checkins/",
            Some(&admin),
            json!({ "code": code.body["code"], "force": true }),
        )
        .await
        .assert(201);
    let body = page(&mut browser, &page_path).await;
    assert!(body.contains("admitted unpaid"), "{body}");

    // A poster, uploaded through the writer's console.
    let mut uploader = crate::console::Browser::new(writer);
    uploader
        .sign_in(crate::helpers::SUPERUSER, crate::helpers::PASSWORD)
        .await;
    let csrf = crate::console::hidden(&uploader.get(&page_path).await.body, "csrf_token");
    uploader
        .post_file(
            &format!("/console/events/{event}/posters"),
            &[("csrf_token", &csrf)],
            ("image", "cached-poster.png", crate::helpers::png(2048)),
        )
        .await;
    let body = page(&mut browser, &page_path).await;
    assert!(body.contains("cached-poster.png"), "{body}");
}

async fn page(browser: &mut crate::console::Browser<'_>, path: &str) -> String {
    let page = browser.get(path).await;
    assert_eq!(page.status, reqwest::StatusCode::OK, "{}", page.body);
    page.body
}

async fn console_summaries_follow_every_write(app: &TestApp) {
    console_summaries_follow(app, app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_on_one_process_follow_writes_on_the_other() {
    let Some((a, b)) = two_processes().await else {
        eprintln!("skipped: needs TEST_REDIS_URL and TEST_DATABASE_URL");
        return;
    };
    console_summaries_follow(&b, &a).await;
    b.cleanup().await;
    a.cleanup().await;
}

/// Callers (who they are, their groups, whether active) are cached: each
/// change must apply to the very next request (`server` answers, `writer`
/// makes the changes).
async fn roles_follow(server: &TestApp, writer: &TestApp) {
    let (id, token) = writer.user("cachedrole").await;
    let create = || server.post("/api/events/", Some(&token), TestApp::event_body("Mine", 5));
    // Cached as a plain user.
    create().await.assert(403);
    create().await.assert(403);

    let organizer = writer.group("organizer").await;
    let membership = json!({ "user_id": id, "group_id": organizer });
    writer
        .post("/api/assign-roles/", writer.admin(), membership.clone())
        .await
        .assert(201);
    create().await.assert(201);
    writer
        .request(
            reqwest::Method::DELETE,
            "/api/assign-roles/",
            writer.admin(),
            Some(membership.clone()),
        )
        .await
        .assert(204);
    create().await.assert(403);

    // A group renamed away from `organizer` takes its members' rights along.
    writer
        .post("/api/assign-roles/", writer.admin(), membership)
        .await
        .assert(201);
    create().await.assert(201);
    writer
        .patch(
            &format!("/api/groups/{organizer}/"),
            writer.admin(),
            json!({ "name": "organisers-old" }),
        )
        .await
        .assert(200);
    create().await.assert(403);

    // Deactivated: the token stops working at once; reactivated: it works.
    let mut admin = crate::console::Browser::new(writer);
    admin
        .sign_in(crate::helpers::SUPERUSER, crate::helpers::PASSWORD)
        .await;
    let csrf = crate::console::hidden(
        &admin.get(&format!("/console/users/{id}")).await.body,
        "csrf_token",
    );
    let me = format!("/api/users/{id}/");
    server.get(&me, Some(&token)).await.assert(200);
    admin
        .post(
            &format!("/console/users/{id}/active"),
            &[("csrf_token", &csrf), ("active", "false")],
        )
        .await;
    server.get(&me, Some(&token)).await.assert(401);
    admin
        .post(
            &format!("/console/users/{id}/active"),
            &[("csrf_token", &csrf), ("active", "true")],
        )
        .await;
    server.get(&me, Some(&token)).await.assert(200);
}

async fn role_and_activation_changes_apply_to_the_next_request(app: &TestApp) {
    roles_follow(app, app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_changes_on_one_process_apply_on_the_other() {
    let Some((a, b)) = two_processes().await else {
        eprintln!("skipped: needs TEST_REDIS_URL and TEST_DATABASE_URL");
        return;
    };
    roles_follow(&b, &a).await;
    b.cleanup().await;
    a.cleanup().await;
}

/// A registration reads its ticket's rules (sales window, event status and
/// start, organiser) from the cache: each change applies to the next one.
async fn rules_follow(server: &TestApp, writer: &TestApp) {
    let admin = writer.admin_token.clone();
    let event = writer.create_event(&admin, "Rules", 100).await;
    let ticket = writer.create_ticket(&admin, &event, 50).await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(writer.user(&format!("rules{i}")).await.1);
    }
    let register = |token: &String| {
        let (token, body) = (token.clone(), json!({ "ticket_id": ticket }));
        async move { server.post("/api/registrations/", Some(&token), body).await }
    };
    register(&users[0]).await.assert(201);

    // Sales closed by moving the window: refused at once, then reopened.
    let ticket_path = format!("/api/tickets/{ticket}/");
    let sales = writer.get(&ticket_path, None).await.body;
    writer
        .patch(
            &ticket_path,
            Some(&admin),
            json!({ "sales_start": "2020-01-01T00:00:00Z", "sales_end": "2021-01-01T00:00:00Z" }),
        )
        .await
        .assert(200);
    let refused = register(&users[1]).await;
    refused.assert(409);
    assert_eq!(
        refused.body["detail"],
        "Ticket sales for this ticket have ended."
    );
    writer
        .patch(
            &ticket_path,
            Some(&admin),
            json!({ "sales_start": sales["sales_start"], "sales_end": sales["sales_end"] }),
        )
        .await
        .assert(200);
    register(&users[1]).await.assert(201);

    // The event cancelled: refused at once.
    writer
        .patch(
            &format!("/api/events/{event}/"),
            Some(&admin),
            json!({ "status": "cancelled" }),
        )
        .await
        .assert(200);
    let refused = register(&users[2]).await;
    refused.assert(409);
    assert_eq!(
        refused.body["detail"],
        "Registration is closed: the event is cancelled."
    );

    // The ticket deleted: an unknown ticket, as if never cached.
    writer.delete(&ticket_path, Some(&admin)).await.assert(204);
    let refused = register(&users[3]).await;
    refused.assert(400);
    assert!(refused.body["ticket_id"].is_array(), "{}", refused.body);
}

async fn registration_rules_follow_ticket_and_event_changes(app: &TestApp) {
    rules_follow(app, app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_rules_on_one_process_follow_changes_on_the_other() {
    let Some((a, b)) = two_processes().await else {
        eprintln!("skipped: needs TEST_REDIS_URL and TEST_DATABASE_URL");
        return;
    };
    rules_follow(&b, &a).await;
    b.cleanup().await;
    a.cleanup().await;
}
