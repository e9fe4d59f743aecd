//! API.md §11: webhook endpoints, and messages that reach a real receiver
//! on loopback — signed as Standard Webhooks (checked by the Python
//! `standardwebhooks` package, not by our code), retried through a
//! receiver that is down, failing, throttling and finally gone, by two
//! workers and across a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use dicoevent::jobs;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::helpers::{
    Backend, FORBIDDEN, Reply, TestApp, assert_field_error, assert_unauthorized, postgres_url,
};

crate::backend_tests!(
    endpoints_follow_their_owners_rules,
    bad_endpoints_are_refused_and_nothing_written,
    messages_are_signed_to_the_standard,
    an_organisers_endpoint_gets_its_events_only,
);

/// One request the receiver saw, with what it answered.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub(crate) id: String,
    timestamp: String,
    signature: String,
    pub(crate) body: String,
    pub(crate) status: u16,
}

/// What the receiver answers next.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// 429 with `Retry-After: <seconds>`.
    Throttle(u64),
    /// No answer for this long.
    Hang(u64),
}

/// A webhook receiver on loopback that can be stopped, restarted on the
/// same port and told what to answer; it records every request.
pub(crate) struct Receiver {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answer>>,
    task: Option<JoinHandle<()>>,
}

impl Receiver {
    pub(crate) async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let mut receiver = Receiver {
            port,
            seen: Arc::default(),
            answer: Arc::new(Mutex::new(Answer::Status(200))),
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().expect("answer") = answer;
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }

    /// Serves on `listener`; every connection lives inside the one task, so
    /// stopping it closes them all (no pooled connection answers later).
    fn serve(&mut self, listener: TcpListener) {
        let seen = self.seen.clone();
        let answer = self.answer.clone();
        self.task = Some(tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen.clone();
                let answer = answer.clone();
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let seen = seen.clone();
                    let answer = answer.clone();
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let (id, timestamp, signature) = (
                            header("webhook-id"),
                            header("webhook-timestamp"),
                            header("webhook-signature"),
                        );
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let body = String::from_utf8_lossy(&body.unwrap_or_default()).into_owned();
                        let now = *answer.lock().expect("answer");
                        let (status, retry_after) = match now {
                            Answer::Status(s) => (s, None),
                            Answer::Throttle(secs) => (429, Some(secs)),
                            Answer::Hang(secs) => {
                                tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                                (200, None)
                            }
                        };
                        seen.lock().expect("seen").push(Seen {
                            id,
                            timestamp,
                            signature,
                            body,
                            status,
                        });
                        let mut response = hyper::Response::builder().status(status);
                        if let Some(secs) = retry_after {
                            response = response.header("Retry-After", secs.to_string());
                        }
                        response.body(http_body_util::Full::new(bytes::Bytes::from(format!(
                            "answered {status}"
                        ))))
                    }
                });
                connections.spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        }));
    }

    /// Stops listening and closes every connection.
    pub(crate) async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    async fn restart(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the same port again");
        self.serve(listener);
    }
}

/// Checks every request's signature with the Python `standardwebhooks`
/// package (TEST_STANDARDWEBHOOKS_PYTHON): each secret must verify it.
/// Skipped, saying so, when the variable is not set.
fn verify_with_python(seen: &[Seen], secrets: &[&str]) {
    let Ok(python) = std::env::var("TEST_STANDARDWEBHOOKS_PYTHON") else {
        eprintln!(
            "signature check by standardwebhooks skipped: TEST_STANDARDWEBHOOKS_PYTHON is not set"
        );
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("verify.py");
    std::fs::write(
        &script,
        "import json, sys\n\
         from standardwebhooks.webhooks import Webhook\n\
         checked = 0\n\
         for line in open(sys.argv[1]):\n\
         \x20   m = json.loads(line)\n\
         \x20   headers = {'webhook-id': m['id'], 'webhook-timestamp': m['timestamp'], 'webhook-signature': m['signature']}\n\
         \x20   for secret in m['secrets']:\n\
         \x20       Webhook(secret).verify(m['body'], headers)\n\
         \x20   checked += 1\n\
         print(checked)\n",
    )
    .expect("write the script");
    let lines: String = seen
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "timestamp": s.timestamp, "signature": s.signature,
                "body": s.body, "secrets": secrets,
            })
            .to_string()
                + "\n"
        })
        .collect();
    let messages = dir.path().join("messages.jsonl");
    std::fs::write(&messages, lines).expect("write the messages");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(&messages)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "standardwebhooks refused a signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        seen.len().to_string()
    );
}

async fn add(app: &TestApp, token: &str, body: Value) -> Reply {
    app.post("/api/webhooks/", Some(token), body).await
}

async fn pass(app: &TestApp, worker: &str) -> jobs::PassReport {
    jobs::run_pass(&app.state, worker).await.expect("a pass")
}

async fn endpoints_follow_their_owners_rules(app: &TestApp) {
    let (_, mine) = app.user_in("hookorg", "organizer").await;
    let (_, theirs) = app.user_in("hookother", "organizer").await;
    let (_, admin) = app.user_in("hookadmin", "admin").await;
    let (_, attendee) = app.user("hookguest").await;
    let my_event = app.create_event(&mine, "Hooked", 10).await;
    let their_event = app.create_event(&theirs, "Not mine", 10).await;
    let url = "http://127.0.0.1:9/hook";

    // The secret is in the creation's answer, never in a read.
    let created = add(
        app,
        &mine,
        json!({"url": url, "event": my_event, "types": ["registration.*"]}),
    )
    .await;
    created.assert(201);
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = created.id();
    for field in [
        "id",
        "url",
        "event",
        "types",
        "enabled",
        "disabled_reason",
        "description",
        "created_at",
    ] {
        assert!(
            created.body.get(field).is_some(),
            "{field} in {}",
            created.body
        );
    }
    assert_eq!(created.body["types"], json!(["registration.*"]));
    assert_eq!(created.body["enabled"], true);
    let read = app.get(&format!("/api/webhooks/{id}/"), Some(&mine)).await;
    read.assert(200);
    assert!(read.body.get("secret").is_none(), "{}", read.body);

    // Organisers: their own events only, their own endpoints only.
    add(
        app,
        &mine,
        json!({"url": url, "event": their_event, "types": ["*"]}),
    )
    .await
    .assert(403);
    app.get(&format!("/api/webhooks/{id}/"), Some(&theirs))
        .await
        .assert(403);
    app.patch(
        &format!("/api/webhooks/{id}/"),
        Some(&theirs),
        json!({"enabled": false}),
    )
    .await
    .assert(403);
    let their_list = app.get("/api/webhooks/", Some(&theirs)).await;
    their_list.assert(200);
    assert_eq!(their_list.body["count"], 0);
    assert_eq!(
        app.get("/api/webhooks/", Some(&mine)).await.body["count"],
        1
    );

    // Superuser and admin: every endpoint, any event.
    for token in [app.admin_token.as_str(), admin.as_str()] {
        let all = app.get("/api/webhooks/", Some(token)).await;
        all.assert(200);
        assert!(all.body["count"].as_u64().is_some_and(|n| n >= 1));
        app.get(&format!("/api/webhooks/{id}/"), Some(token))
            .await
            .assert(200);
        add(
            app,
            token,
            json!({"url": url, "event": their_event, "types": ["*"]}),
        )
        .await
        .assert(201);
    }

    // Attendees: 403; nobody: 401.
    let refused = app.get("/api/webhooks/", Some(&attendee)).await;
    refused.assert(403);
    assert_eq!(refused.body, json!({"detail": FORBIDDEN}));
    add(app, &attendee, json!({"url": url, "types": ["*"]}))
        .await
        .assert(403);
    assert_unauthorized(&app.get("/api/webhooks/", None).await);

    // Rotation gives a new secret; changes and deletion are the owner's.
    let rotated = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret/"),
            Some(&mine),
            json!({}),
        )
        .await;
    rotated.assert(200);
    let fresh = rotated.body["secret"].as_str().expect("secret");
    assert!(fresh.starts_with("whsec_") && fresh != secret);
    let changed = app
        .patch(
            &format!("/api/webhooks/{id}/"),
            Some(&mine),
            json!({"types": ["checkin.created", "payment.*"], "description": "Badges"}),
        )
        .await;
    changed.assert(200);
    assert_eq!(
        changed.body["types"],
        json!(["checkin.created", "payment.*"])
    );
    assert_eq!(changed.body["description"], "Badges");
    app.get(&format!("/api/webhooks/{id}/deliveries/"), Some(&mine))
        .await
        .assert(200);
    app.delete(&format!("/api/webhooks/{id}/"), Some(&theirs))
        .await
        .assert(403);
    app.delete(&format!("/api/webhooks/{id}/"), Some(&mine))
        .await
        .assert(204);
    app.get(&format!("/api/webhooks/{id}/"), Some(&mine))
        .await
        .assert(404);

    // Every change is in the audit log, the secret masked.
    let log = app
        .get(&format!("/api/audit/?entity_id={id}"), app.admin())
        .await;
    let actions: Vec<&str> = log.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .rev()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        [
            "webhook.created",
            "webhook.secret_rotated",
            "webhook.updated",
            "webhook.deleted"
        ]
    );
    assert!(
        !log.body.to_string().contains(&secret),
        "the secret is masked"
    );
}

async fn bad_endpoints_are_refused_and_nothing_written(app: &TestApp) {
    let (_, organizer) = app.user_in("badhookorg", "organizer").await;
    let before = app.get("/api/webhooks/", app.admin()).await.body["count"].clone();
    for (body, field) in [
        (json!({"types": ["*"]}), "url"),
        (json!({"url": "not a url", "types": ["*"]}), "url"),
        (json!({"url": "ftp://example.com/x", "types": ["*"]}), "url"),
        (json!({"url": "http://127.0.0.1:9/hook"}), "types"),
        (
            json!({"url": "http://127.0.0.1:9/hook", "types": []}),
            "types",
        ),
        (
            json!({"url": "http://127.0.0.1:9/hook", "types": "registration.*"}),
            "types",
        ),
        (
            json!({"url": "http://127.0.0.1:9/hook", "types": ["registration.exploded"]}),
            "types",
        ),
        (
            json!({"url": "http://127.0.0.1:9/hook", "types": ["*"], "event": "nope"}),
            "event",
        ),
        (
            json!({"url": "http://127.0.0.1:9/hook", "types": ["*"], "event": uuid::Uuid::now_v7()}),
            "event",
        ),
    ] {
        assert_field_error(&add(app, &organizer, body).await, field);
    }
    assert_eq!(
        app.get("/api/webhooks/", app.admin()).await.body["count"],
        before
    );
    let none = app
        .get(
            "/api/audit/?action=webhook.created&actor=badhookorg",
            app.admin(),
        )
        .await;
    assert_eq!(none.body["count"], 0);
}

/// Without WEBHOOK_ALLOW_PRIVATE: https to public addresses only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_need_the_setting() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("WEBHOOK_ALLOW_PRIVATE", "false")]).await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.8/hook",
        "https://[::1]/hook",
        "https://localhost:8443/hook",
        "https://169.254.169.254/latest/meta-data",
    ] {
        let refused = add(&app, &app.admin_token, json!({"url": url, "types": ["*"]})).await;
        assert_field_error(&refused, "url");
    }
    add(
        &app,
        &app.admin_token,
        json!({"url": "https://hooks.example.com/dicoevent", "types": ["*"]}),
    )
    .await
    .assert(201);
    app.cleanup().await;
}

/// The id of the `registration.created` entry of a registration.
async fn message_of(app: &TestApp, registration: &str) -> String {
    let log = app
        .get(
            &format!("/api/audit/?entity_id={registration}&action=registration.created"),
            app.admin(),
        )
        .await;
    log.body["entries"][0]["id"]
        .as_str()
        .expect("entry")
        .to_owned()
}

async fn messages_are_signed_to_the_standard(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, organizer) = app.user_in("signorg", "organizer").await;
    let event = app.create_event(&organizer, "Signed", 10).await;
    let ticket = app.create_ticket(&organizer, &event, 10).await;
    let created = add(
        app,
        &organizer,
        json!({"url": receiver.url(), "event": event, "types": ["registration.created", "registration.cancelled"]}),
    )
    .await;
    created.assert(201);
    let id = created.id();
    let old_secret = created.body["secret"].as_str().expect("secret").to_owned();
    let (guest_id, guest) = app.user("signguest").await;
    let registration = app.register(&guest, &ticket).await;
    registration.assert(201);
    // A payment is not a registration.* message; another event's
    // registration is not this endpoint's.
    app.post(
        "/api/payments/",
        Some(&guest),
        json!({"registration_id": registration.id(), "payment_method": "cash", "amount_paid": 1}),
    )
    .await
    .assert(201);
    let other = app.create_event(&organizer, "Elsewhere", 10).await;
    let other_ticket = app.create_ticket(&organizer, &other, 10).await;
    app.register(&guest, &other_ticket).await.assert(201);
    pass(app, "signer").await;

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let message = &seen[0];
    assert_eq!(message.id, message_of(app, &registration.id()).await);
    let body: Value = serde_json::from_str(&message.body).expect("a JSON body");
    assert_eq!(body["type"], "registration.created");
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(body["data"]["id"], registration.id().as_str());
    assert_eq!(body["data"]["user"], guest_id.as_str());
    assert_eq!(body["data"]["event"], event.as_str());
    assert_eq!(body["data"]["changes"]["ticket"], json!([null, ticket]));
    verify_with_python(&seen, &[&old_secret]);

    // During a rotation both secrets sign; a test message goes to this
    // endpoint alone; a retry sends the same message (same id) again.
    let rotated = app
        .post(
            &format!("/api/webhooks/{id}/rotate-secret/"),
            Some(&organizer),
            json!({}),
        )
        .await;
    rotated.assert(200);
    let new_secret = rotated.body["secret"].as_str().expect("secret").to_owned();
    let test = app
        .post(
            &format!("/api/webhooks/{id}/test/"),
            Some(&organizer),
            json!({}),
        )
        .await;
    test.assert(202);
    let retried = app
        .post(
            &format!("/api/webhooks/{id}/deliveries/{}/retry/", message.id),
            Some(&organizer),
            json!({}),
        )
        .await;
    retried.assert(202);
    app.post(
        &format!(
            "/api/webhooks/{id}/deliveries/{}/retry/",
            uuid::Uuid::now_v7()
        ),
        Some(&organizer),
        json!({}),
    )
    .await
    .assert(404);
    pass(app, "signer").await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let later = &seen[1..];
    assert!(
        later.iter().all(|s| s.signature.split(' ').count() == 2),
        "{later:?}"
    );
    let types: BTreeSet<String> = later
        .iter()
        .map(|s| {
            serde_json::from_str::<Value>(&s.body).expect("JSON")["type"]
                .as_str()
                .expect("type")
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["registration.created".to_owned(), "webhook.test".to_owned()])
    );
    assert!(
        later.iter().any(|s| s.id == message.id),
        "the retry keeps its id"
    );
    verify_with_python(later, &[&old_secret, &new_secret]);

    // The delivery log says what the receiver saw.
    let log = app
        .get(&format!("/api/webhooks/{id}/deliveries/"), Some(&organizer))
        .await;
    log.assert(200);
    assert_eq!(log.body["count"], 3);
    let first = &log.body["deliveries"][2];
    assert_eq!(first["message_id"], message.id.as_str());
    assert_eq!(first["type"], "registration.created");
    assert_eq!(first["attempt"], 1);
    assert_eq!(first["status_code"], 200);
    assert_eq!(first["response_body"], "answered 200");
    assert_eq!(first["next_attempt_at"], Value::Null);
}

/// Down, 500, 429 with Retry-After, a restart, two workers, then 410: every
/// message arrives, each id at least once, none after the 410, and the log
/// matches what the receiver saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_through_a_bad_receiver() {
    if postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let mut second = app.spawn_sibling().await;
    let mut receiver = Receiver::start().await;
    let (_, organizer) = app.user_in("droporg", "organizer").await;
    let event = app.create_event(&organizer, "Drill", 100).await;
    let ticket = app.create_ticket(&organizer, &event, 100).await;
    let created = add(
        &app,
        &organizer,
        json!({"url": receiver.url(), "types": ["registration.created", "checkin.*"]}),
    )
    .await;
    created.assert(201);
    let endpoint = created.id();
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    let guests = app.many_users("dropguest", 12).await;
    let mut registrations = Vec::new();
    let register_on = |app: &TestApp, i: usize| {
        let token = guests[i].1.clone();
        let ticket = ticket.clone();
        let url = app.url("/api/registrations/");
        let client = app.client.clone();
        async move {
            let reply = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"ticket_id": ticket}))
                .send()
                .await
                .expect("sent");
            assert_eq!(reply.status().as_u16(), 201);
            reply.json::<Value>().await.expect("JSON")["id"]
                .as_str()
                .expect("id")
                .to_owned()
        }
    };
    let advance = |apps: &[&TestApp], by: chrono::Duration| {
        for app in apps {
            app.state.clock.advance(by);
        }
    };

    // 1. The receiver is down: registrations through both servers; the
    // attempts fail without an answer.
    receiver.stop().await;
    for i in 0..4 {
        let on = if i % 2 == 0 { &app } else { &second };
        registrations.push(register_on(on, i).await);
    }
    let (a, b) = tokio::join!(pass(&app, "worker-a"), pass(&second, "worker-b"));
    assert_eq!(a.failed + b.failed, 4, "{a:?} {b:?}");

    // 2. It answers 500: the first retry (5 s later) fails again.
    receiver.restart().await;
    receiver.answer(Answer::Status(500));
    advance(&[&app, &second], chrono::Duration::seconds(6));
    let (a, b) = tokio::join!(pass(&app, "worker-a"), pass(&second, "worker-b"));
    assert_eq!(a.failed + b.failed, 4);

    // 3. 429 with Retry-After: 3 hours — honoured: the 30 min step is
    // lengthened (a shorter Retry-After never shortens a step).
    receiver.answer(Answer::Throttle(3 * 3600));
    advance(&[&app, &second], chrono::Duration::minutes(6));
    let (a, b) = tokio::join!(pass(&app, "worker-a"), pass(&second, "worker-b"));
    assert_eq!(a.failed + b.failed, 4);
    let before = receiver.seen().len();
    advance(&[&app, &second], chrono::Duration::minutes(40));
    tokio::join!(pass(&app, "worker-a"), pass(&second, "worker-b"));
    assert_eq!(
        receiver.seen().len(),
        before,
        "nothing before the Retry-After"
    );

    // 4. The second server restarts (another process' state); more
    // registrations; the receiver answers 200; two seconds on, both
    // workers deliver everything.
    second.cleanup().await;
    second = app.spawn_sibling().await;
    for i in 4..8 {
        let on = if i % 2 == 0 { &app } else { &second };
        registrations.push(register_on(on, i).await);
    }
    receiver.answer(Answer::Status(200));
    advance(&[&app, &second], chrono::Duration::hours(3));
    tokio::join!(pass(&app, "worker-a"), pass(&second, "worker-b"));
    let delivered: BTreeSet<String> = receiver
        .seen()
        .into_iter()
        .filter(|s| s.status == 200)
        .map(|s| s.id)
        .collect();
    assert_eq!(delivered.len(), 8, "every message so far, once it answers");

    // 5. 410 Gone: the endpoint is disabled at once, and later writes
    // send nothing.
    receiver.answer(Answer::Status(410));
    registrations.push(register_on(&app, 8).await);
    pass(&app, "worker-a").await;
    let disabled = app
        .get(&format!("/api/webhooks/{endpoint}/"), Some(&organizer))
        .await;
    assert_eq!(disabled.body["enabled"], false, "{}", disabled.body);
    assert!(
        disabled.body["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("410"))
    );
    let seen_at_410 = receiver.seen().len();
    registrations.push(register_on(&second, 9).await);
    advance(&[&app, &second], chrono::Duration::days(1));
    tokio::join!(pass(&app, "worker-a"), pass(&second, "worker-b"));
    let seen = receiver.seen();
    assert_eq!(seen.len(), seen_at_410, "nothing after the 410");

    // Every message of the first nine registrations arrived with a 200
    // (the ninth met the 410), each id at least once.
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    for s in seen.iter().filter(|s| s.status == 200) {
        *delivered.entry(s.id.clone()).or_default() += 1;
    }
    for registration in &registrations[..8] {
        let id = message_of(&app, registration).await;
        assert!(
            delivered.contains_key(&id),
            "{registration}: {id} never arrived"
        );
    }
    verify_with_python(&seen, &[&secret]);

    // The delivery log matches: one row per request the receiver saw (with
    // its status), plus the four attempts that found it down.
    let log = app
        .get(
            &format!("/api/webhooks/{endpoint}/deliveries/?page_size=100"),
            Some(&organizer),
        )
        .await;
    log.assert(200);
    let rows = log.body["deliveries"].as_array().expect("deliveries");
    let mut logged: Vec<(String, u16)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r["message_id"].as_str()?.to_owned(),
                u16::try_from(r["status_code"].as_u64()?).ok()?,
            ))
        })
        .collect();
    let mut saw: Vec<(String, u16)> = seen.iter().map(|s| (s.id.clone(), s.status)).collect();
    logged.sort();
    saw.sort();
    assert_eq!(logged, saw);
    let unanswered = rows.iter().filter(|r| r["status_code"].is_null()).count();
    assert_eq!(unanswered, 4, "{}", log.body);
    assert!(
        rows.iter()
            .filter(|r| r["status_code"] == 429)
            .all(|r| r["next_attempt_at"].is_string())
    );
    receiver.stop().await;
    second.cleanup().await;
    app.cleanup().await;
}

/// After the tenth failed attempt (about three days) the endpoint is
/// disabled with its reason and its owner is mailed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_schedule_disables_and_tells_the_owner() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(500));
    let (_, organizer) = app.user_in("spentorg", "organizer").await;
    let event = app.create_event(&organizer, "Spent", 10).await;
    let created = add(
        &app,
        &organizer,
        json!({"url": receiver.url(), "event": event, "types": ["event.updated"]}),
    )
    .await;
    created.assert(201);
    let endpoint = created.id();
    app.patch(
        &format!("/api/events/{event}/"),
        Some(&organizer),
        json!({"quota": 12}),
    )
    .await
    .assert(200);
    for _ in 0..10 {
        pass(&app, "spender").await;
        app.state.clock.advance(chrono::Duration::hours(27));
    }
    pass(&app, "spender").await;
    assert_eq!(receiver.seen().len(), 10, "ten attempts in all");
    let found = app
        .get(&format!("/api/webhooks/{endpoint}/"), Some(&organizer))
        .await;
    assert_eq!(found.body["enabled"], false, "{}", found.body);
    let reason = found.body["disabled_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("10 failed attempts") && reason.contains("500"),
        "{reason}"
    );
    let log = app
        .get(
            &format!("/api/webhooks/{endpoint}/deliveries/?page_size=20"),
            Some(&organizer),
        )
        .await;
    assert_eq!(log.body["count"], 10);
    assert_eq!(log.body["deliveries"][0]["attempt"], 10);
    assert_eq!(log.body["deliveries"][0]["next_attempt_at"], Value::Null);
    assert!(log.body["deliveries"][1]["next_attempt_at"].is_string());
    // The owner's mail (written as an .eml file without MAIL_HOST).
    let mails = app.data_dir().join("outbox");
    let told = std::fs::read_dir(&mails)
        .expect("the mail directory")
        .flatten()
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .map(|raw| crate::signup::decode_qp(&raw))
        .any(|mail| {
            mail.contains("A webhook endpoint was disabled") && mail.contains(&receiver.url())
        });
    assert!(told, "the owner is told");
    let disabled = app
        .get(
            &format!("/api/audit/?entity_id={endpoint}&action=webhook.disabled"),
            app.admin(),
        )
        .await;
    assert_eq!(disabled.body["count"], 1);
    assert_eq!(disabled.body["entries"][0]["actor"]["type"], "system");
    app.cleanup().await;
}

/// Without WEBHOOK_ALLOW_PRIVATE, a name that resolves to a private
/// address is refused when the message is sent (the check at saving sees
/// only a name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_inside_is_refused_at_sending() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("WEBHOOK_ALLOW_PRIVATE", "false")]).await;
    // This machine's own name resolves to one of its addresses.
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 443))
        .await
        .map(|found| found.collect())
        .unwrap_or_default();
    if host.is_empty()
        || resolved.is_empty()
        || resolved
            .iter()
            .any(|a| dicoevent::jobs::webhooks::is_public(a.ip()))
    {
        eprintln!("skipped: this machine's name ({host:?}) does not resolve to a private address");
        app.cleanup().await;
        return;
    }
    let created = add(
        &app,
        &app.admin_token,
        json!({"url": format!("https://{host}:9/hook"), "types": ["*"]}),
    )
    .await;
    created.assert(201);
    let endpoint = created.id();
    let sent = app
        .post(
            &format!("/api/webhooks/{endpoint}/test/"),
            app.admin(),
            json!({}),
        )
        .await;
    sent.assert(202);
    pass(&app, "resolver").await;
    let log = app
        .get(
            &format!("/api/webhooks/{endpoint}/deliveries/"),
            app.admin(),
        )
        .await;
    let error = log.body["deliveries"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(error.contains("no public address"), "{}", log.body);
    assert_eq!(log.body["deliveries"][0]["status_code"], Value::Null);
    app.cleanup().await;
}

/// A receiver that hangs holds its own delivery only: a mail queued with it
/// is sent while the webhook still waits for its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_holds_up_nothing_else() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Hang(20));
    let (_, organizer) = app.user_in("hangorg", "organizer").await;
    let event = app.create_event(&organizer, "Hang", 10).await;
    let ticket = app.create_ticket(&organizer, &event, 10).await;
    add(
        &app,
        &organizer,
        json!({"url": receiver.url(), "types": ["event.updated"]}),
    )
    .await
    .assert(201);
    app.patch(
        &format!("/api/events/{event}/"),
        Some(&organizer),
        json!({"quota": 11}),
    )
    .await
    .assert(200);
    let (_, guest) = app.user("hangguest").await;
    let registration = app.register(&guest, &ticket).await;
    registration.assert(201);
    let running = {
        let state = app.state.clone();
        tokio::spawn(async move { jobs::run_pass(&state, "hanger").await })
    };
    // The confirmation is sent (and logged) while the webhook hangs.
    let confirmed = format!(
        "/api/audit/?entity_id={}&action=registration.confirmation_sent",
        registration.id()
    );
    let mut sent = false;
    for _ in 0..200 {
        if app.get(&confirmed, app.admin()).await.body["count"] == 1 {
            sent = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(sent, "the mail went out");
    assert!(
        !running.is_finished(),
        "the webhook is still waiting for its answer"
    );
    assert_eq!(
        receiver.seen().len(),
        0,
        "the receiver has not answered yet"
    );
    let report = running.await.expect("the pass").expect("a pass");
    // Sent: the confirmation, and the verification mails of the two
    // accounts this test signed up through the API.
    assert_eq!((report.sent, report.failed), (3, 1), "{report:?}");
    app.cleanup().await;
}

/// An organiser's endpoint for "all my events": their events' messages (an
/// event's deletion included), a test message, nothing of others' events.
async fn an_organisers_endpoint_gets_its_events_only(app: &TestApp) {
    let receiver = Receiver::start().await;
    let (_, mine) = app.user_in("scopehookorg", "organizer").await;
    let (_, theirs) = app.user_in("scopehookother", "organizer").await;
    let created = add(
        app,
        &mine,
        json!({"url": receiver.url(), "types": ["event.*"]}),
    )
    .await;
    created.assert(201);
    let endpoint = created.id();
    let own = app.create_event(&mine, "Mine", 10).await;
    let other = app.create_event(&theirs, "Theirs", 10).await;
    app.patch(
        &format!("/api/events/{other}/"),
        Some(&theirs),
        json!({"quota": 11}),
    )
    .await
    .assert(200);
    app.delete(&format!("/api/events/{own}/"), Some(&mine))
        .await
        .assert(204);
    app.post(
        &format!("/api/webhooks/{endpoint}/test/"),
        Some(&mine),
        json!({}),
    )
    .await
    .assert(202);
    pass(app, "scoper").await;
    let mut got: Vec<(String, String)> = receiver
        .seen()
        .iter()
        .map(|s| {
            let body: Value = serde_json::from_str(&s.body).expect("JSON");
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                body["data"]["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("event.created".to_owned(), own.clone()),
            ("event.deleted".to_owned(), own.clone()),
            ("webhook.test".to_owned(), String::new()),
        ]
    );
    // The deleted event's history is still its organiser's to read.
    let history = app
        .get(&format!("/api/audit/?event={own}"), Some(&mine))
        .await;
    history.assert(200);
    assert_eq!(history.body["count"], 2, "{}", history.body);
}
