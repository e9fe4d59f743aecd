//! A scripted walk over every route × role × the main bad inputs, compared
//! with what the service answered when the walk was recorded
//! (`tests/golden/walk.json`). Ids, times and tokens are normalised; the
//! status, the body and the headers clients rely on must stay identical.
//! Re-record after a deliberate change with `GOLDEN_UPDATE=1 cargo test golden`
//! and review the diff: any other difference is a regression.

use std::collections::HashMap;

use base64::Engine;
use regex::Regex;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Reply, TestApp};

crate::backend_tests!(walk_matches_the_recording);

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/walk.json");
/// Headers a client of the contract reads.
const HEADERS: &[&str] = &[
    "content-type",
    "allow",
    "www-authenticate",
    "x-data-source",
    "retry-after",
    "x-content-type-options",
    "x-frame-options",
    "cache-control",
];

struct Walk<'a> {
    app: &'a TestApp,
    entries: Vec<Value>,
    /// Every answer as it came (not normalised), for the OpenAPI check.
    exchanges: Vec<Value>,
    ids: HashMap<String, usize>,
    uuid: Regex,
    time: Regex,
    jwt: Regex,
}

impl<'a> Walk<'a> {
    fn new(app: &'a TestApp) -> Self {
        Walk {
            app,
            entries: Vec::new(),
            exchanges: Vec::new(),
            ids: HashMap::new(),
            uuid: Regex::new(
                r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
            )
            .expect("regex"),
            time: Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
                .expect("regex"),
            jwt: Regex::new(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$").expect("regex"),
        }
    }

    /// Replaces every UUID in `text` by `<id:N>`, N in order of first sight.
    fn ids_in(&mut self, text: &str) -> String {
        let found: Vec<String> = self
            .uuid
            .find_iter(text)
            .map(|m| m.as_str().to_ascii_lowercase().replace('-', ""))
            .collect();
        let mut out = text.to_string();
        for (m, key) in self
            .uuid
            .find_iter(text)
            .map(|m| m.as_str().to_string())
            .collect::<Vec<_>>()
            .into_iter()
            .zip(found)
        {
            let next = self.ids.len();
            let n = *self.ids.entry(key).or_insert(next);
            out = out.replacen(&m, &format!("<id:{n}>"), 1);
        }
        out
    }

    fn normalise(&mut self, value: &Value) -> Value {
        match value {
            Value::String(s) if self.time.is_match(s) => json!("<time>"),
            Value::String(s) if self.jwt.is_match(s) && s.len() > 60 => json!("<jwt>"),
            Value::String(s) => {
                let s = s.replace(&self.app.address, "http://<server>");
                Value::String(self.ids_in(&s))
            }
            Value::Array(items) => Value::Array(items.iter().map(|v| self.normalise(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if k == "request_id" {
                            json!("<request-id>")
                        } else if k == "short_code" {
                            // Drawn at random for each registration.
                            json!("<short-code>")
                        } else if k == "kid" || k == "x" {
                            // A check-in key's id and public half (JWK).
                            json!("<key>")
                        } else {
                            self.normalise(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn record(&mut self, label: &str, method: &Method, path: &str, reply: &Reply) {
        self.record_bytes(label, method, path, reply, None);
    }

    /// `record`, with the body's bytes as they came when it may not be JSON.
    fn record_bytes(
        &mut self,
        label: &str,
        method: &Method,
        path: &str,
        reply: &Reply,
        bytes: Option<&[u8]>,
    ) {
        self.exchanges.push(exchange(method, path, reply, bytes));
        let path = self.ids_in(path);
        let mut headers = serde_json::Map::new();
        for name in HEADERS {
            if let Some(v) = reply.headers.get(*name).and_then(|v| v.to_str().ok()) {
                headers.insert((*name).to_string(), json!(self.ids_in(v)));
            }
        }
        let body = self.normalise(&reply.body);
        self.entries.push(json!({
            "call": format!("{label}: {method} {path}"),
            "status": reply.status.as_u16(),
            "headers": headers,
            "body": body,
        }));
    }

    async fn call(
        &mut self,
        label: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let reply = self.app.request(method.clone(), path, token, body).await;
        self.record(label, &method, path, &reply);
        reply
    }

    async fn raw(
        &mut self,
        label: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &'static [u8],
    ) -> Reply {
        let mut req = self
            .app
            .client
            .request(method.clone(), self.app.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("sent");
        let (reply, bytes) = reply_any(res).await;
        self.record_bytes(label, &method, path, &reply, Some(&bytes));
        reply
    }

    async fn upload(
        &mut self,
        label: &str,
        token: Option<&str>,
        event: &str,
        bytes: Vec<u8>,
    ) -> Reply {
        let form = Form::new().text("event", event.to_string()).part(
            "image",
            Part::bytes(bytes)
                .file_name("poster.png")
                .mime_str("image/png")
                .expect("mime"),
        );
        let mut req = self
            .app
            .client
            .post(self.app.url("/api/events/upload/"))
            .multipart(form);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let (reply, bytes) = reply_any(req.send().await.expect("sent")).await;
        self.record_bytes(
            label,
            &Method::POST,
            "/api/events/upload/",
            &reply,
            Some(&bytes),
        );
        reply
    }
}

/// An answer as the OpenAPI check reads it: every header and the body's
/// bytes (`bytes` as they came, else the JSON body serialised again).
fn exchange(method: &Method, path: &str, reply: &Reply, bytes: Option<&[u8]>) -> Value {
    let headers: serde_json::Map<String, Value> = reply
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), json!(value.to_str().ok()?))))
        .collect();
    let body = match bytes {
        Some(bytes) => bytes.to_vec(),
        None if reply.body.is_null() => Vec::new(),
        None => serde_json::to_vec(&reply.body).expect("json"),
    };
    json!({
        "method": method.as_str(),
        "path": path,
        "status": reply.status.as_u16(),
        "headers": headers,
        "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
    })
}

/// Every answer of the walk checked against the served document by an
/// independent validator (openapi-core, run by the Python interpreter
/// named in `TEST_OPENAPI_CORE`; `.ci/run` installs it).
fn validate_with_openapi_core(document: &Value, exchanges: &[Value]) {
    let Ok(python) = std::env::var("TEST_OPENAPI_CORE") else {
        eprintln!("skipped: the walk's answers against the document (TEST_OPENAPI_CORE not set)");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let doc_path = dir.path().join("document.json");
    let exchanges_path = dir.path().join("exchanges.json");
    std::fs::write(&doc_path, serde_json::to_vec(document).expect("json")).expect("write");
    std::fs::write(
        &exchanges_path,
        serde_json::to_vec(exchanges).expect("json"),
    )
    .expect("write");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/openapi/validate_responses.py"
    );
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg(&doc_path)
        .arg(&exchanges_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{}", text.trim_end());
    assert!(
        output.status.success(),
        "answers of the walk that break the OpenAPI document:\n{text}"
    );
}

/// Like `TestApp::reply`, but a body that is not JSON is recorded by its size.
async fn reply_any(res: reqwest::Response) -> (Reply, bytes::Bytes) {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({ "non_json_bytes": bytes.len() }))
    };
    (
        Reply {
            status,
            headers,
            body,
        },
        bytes,
    )
}

fn png() -> Vec<u8> {
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82".to_vec()
}

fn event_body(name: &str, quota: i64, days: i64) -> Value {
    json!({
        "name": name,
        "description": "A gathering",
        "location": "Jakarta Convention Center",
        "start_time": format!("2031-01-{:02}T10:00:00Z", days),
        "end_time": format!("2031-01-{:02}T13:00:00+07:00", days),
        "quota": quota,
        "category": "Tech",
    })
}

fn ticket_body(event: &str, name: &str, quota: i64, open: bool) -> Value {
    let (start, end) = if open {
        ("2020-01-01T00:00:00Z", "2030-12-31T00:00:00Z")
    } else {
        ("2030-01-01T00:00:00Z", "2030-12-31T00:00:00Z")
    };
    json!({
        "event_id": event, "name": name, "price": 150000.5,
        "sales_start": start, "sales_end": end, "quota": quota,
    })
}

#[rustfmt::skip]
async fn walk_matches_the_recording(app: &TestApp) {
    use Method as M;
    let mut w = Walk::new(app);
    let su = app.admin_token.clone();
    let su = Some(su.as_str());

    // ---- accounts and roles
    let r = w.call("signup", M::POST, "/api/users/", None, Some(json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD, "first_name": "Alice"}))).await;
    let alice_id = r.id();
    for (label, body) in [
        ("signup missing", json!({})),
        ("signup duplicate", json!({"username": "ALICE", "email": "alice@example.com", "password": PASSWORD})),
        ("signup weak password", json!({"username": "carol", "email": "carol@example.com", "password": "12345678"})),
        ("signup bad email", json!({"username": "carol", "email": "nope", "password": PASSWORD})),
        ("signup bad username", json!({"username": "a b", "email": "c@example.com", "password": PASSWORD})),
    ] {
        w.call(label, M::POST, "/api/users/", None, Some(body)).await;
    }
    let mut tokens = HashMap::new();
    let mut ids = HashMap::new();
    ids.insert("alice", alice_id.clone());
    for name in ["bob", "org1", "org2", "adm"] {
        let r = app.signup(name).await;
        ids.insert(name, r.id());
    }
    for name in ["alice", "bob", "org1", "org2", "adm"] {
        let r = w.call("login", M::POST, "/api/login/", None, Some(json!({"username": name, "password": PASSWORD}))).await;
        tokens.insert(name, r.body["access"].as_str().expect("access").to_string());
        if name == "alice" {
            let refresh = r.body["refresh"].as_str().expect("refresh").to_string();
            w.call("refresh", M::POST, "/api/token/", None, Some(json!({ "refresh": refresh }))).await;
            w.call("refresh (alias)", M::POST, "/api/token/refresh/", None, Some(json!({ "refresh": refresh }))).await;
        }
    }
    let t = |n: &str| tokens.get(n).cloned();
    let (alice, bob, org1, org2, adm) = (t("alice"), t("bob"), t("org1"), t("org2"), t("adm"));
    let (alice, bob, org1, org2, adm) = (
        alice.as_deref(),
        bob.as_deref(),
        org1.as_deref(),
        org2.as_deref(),
        adm.as_deref(),
    );
    w.call("login wrong", M::POST, "/api/login/", None, Some(json!({"username": "alice", "password": "wrong-password"}))).await;
    w.call("login missing", M::POST, "/api/login/", None, Some(json!({"username": "alice"}))).await;
    w.call("refresh garbage", M::POST, "/api/token/", None, Some(json!({"refresh": "abc"}))).await;
    w.call("bad token on public route", M::GET, "/api/events/", Some("abc.def.ghi"), None).await;
    let (_, alice_refresh) = app.login_ok("alice", PASSWORD).await;
    w.call("logout", M::POST, "/api/logout/", alice, Some(json!({ "refresh": alice_refresh }))).await;
    w.call("refresh revoked", M::POST, "/api/token/", None, Some(json!({ "refresh": alice_refresh }))).await;
    w.call("logout anonymous", M::POST, "/api/logout/", None, Some(json!({"refresh": "x"}))).await;

    // groups
    for (label, token) in [("anonymous", None), ("user", bob), ("admin-to-be", adm)] {
        w.call(&format!("groups list {label}"), M::GET, "/api/groups/", token, None).await;
    }
    let admin_group = w.call("group create", M::POST, "/api/groups/", su, Some(json!({"name": "admin"}))).await .id();
    let org_group = w.call("group create", M::POST, "/api/groups/", su, Some(json!({"name": "organizer"}))).await .id();
    w.call("group duplicate", M::POST, "/api/groups/", su, Some(json!({"name": "ADMIN"}))).await;
    w.call("group missing name", M::POST, "/api/groups/", su, Some(json!({}))).await;
    let spare = w.call("group create", M::POST, "/api/groups/", su, Some(json!({"name": "spare"}))).await .id();
    w.call("groups list", M::GET, "/api/groups/", su, None).await;
    w.call("group get", M::GET, &format!("/api/groups/{spare}/"), su, None).await;
    w.call("group put", M::PUT, &format!("/api/groups/{spare}/"), su, Some(json!({"name": "spare2"}))).await;
    w.call("group patch", M::PATCH, &format!("/api/groups/{spare}"), su, Some(json!({"name": "spare3"}))).await;
    w.call("group get unknown", M::GET, "/api/groups/999/", su, None).await;
    w.call("group get bad id", M::GET, "/api/groups/abc/", su, None).await;
    w.call("group delete", M::DELETE, &format!("/api/groups/{spare}/"), su, None).await;
    for (user, group) in [
        ("adm", &admin_group),
        ("org1", &org_group),
        ("org2", &org_group),
    ] {
        w.call("assign role", M::POST, "/api/assign-roles/", su, Some(json!({"user_id": ids[user], "group_id": group}))).await;
    }
    w.call("assign role again (string id)", M::POST, "/api/assign-roles/", su, Some(json!({"user_id": ids["adm"], "group_id": admin_group.to_string()}))).await;
    w.call("assign role unknown group", M::POST, "/api/assign-roles/", su, Some(json!({"user_id": ids["adm"], "group_id": 999}))).await;
    w.call("assign role by admin", M::POST, "/api/assign-roles/", adm, Some(json!({"user_id": ids["bob"], "group_id": admin_group}))).await;
    w.call("assign role bad body", M::POST, "/api/assign-roles/", su, Some(json!({"user_id": "nope"}))).await;

    // users
    for (label, token) in [
        ("anonymous", None),
        ("user", bob),
        ("organizer", org1),
        ("admin", adm),
        ("superuser", su),
    ] {
        w.call(&format!("users list {label}"), M::GET, "/api/users/?page_size=3&page=2", token, None).await;
        w.call(&format!("user get {label}"), M::GET, &format!("/api/users/{alice_id}/"), token, None).await;
    }
    w.call("users search", M::GET, "/api/users/?search=ORG", su, None).await;
    w.call("me", M::GET, "/api/users/me/", alice, None).await;
    w.call("me anonymous", M::GET, "/api/users/me", None, None).await;
    w.call("user patch self", M::PATCH, &format!("/api/users/{alice_id}/"), alice, Some(json!({"last_name": "Liddell", "is_superuser": true}))).await;
    w.call("user put other", M::PUT, &format!("/api/users/{alice_id}/"), bob, Some(json!({"last_name": "X"}))).await;
    w.call("user patch admin", M::PATCH, &format!("/api/users/{alice_id}/"), adm, Some(json!({"last_name": "X"}))).await;
    w.call("user patch bad email", M::PATCH, &format!("/api/users/{alice_id}/"), su, Some(json!({"email": "bad"}))).await;
    w.call("user patch taken username", M::PATCH, &format!("/api/users/{alice_id}/"), su, Some(json!({"username": "Bob"}))).await;
    w.call("user get unknown", M::GET, "/api/users/00000000-0000-0000-0000-000000000000/", su, None).await;
    w.call("user get malformed", M::GET, "/api/users/xyz/", su, None).await;

    // ---- events
    for (label, token) in [("anonymous", None), ("user", bob)] {
        w.call(&format!("event create {label}"), M::POST, "/api/events/", token, Some(event_body("Nope", 10, 5))).await;
    }
    let ev1 = w.call("event create organizer", M::POST, "/api/events/", org1, Some(event_body("Rust Night", 3, 10))).await .id();
    let ev2 = w.call("event create admin for org2", M::POST, "/api/events/", adm, Some({ let mut b = event_body("Go Day", 100, 12);
                b["organizer_id"] = json!(ids["org2"]);
                b["status"] = json!("Canceled");
                b
            }),
        )
        .await
        .id();
    w.call("event create organizer for other", M::POST, "/api/events/", org1, Some({ let mut b = event_body("X", 1, 5);
            b["organizer_id"] = json!(ids["org2"]);
            b
        }),
    )
    .await;
    for (label, body) in [
        ("event create empty", json!({})),
        ("event create bad values", json!({"name": "", "description": 5, "location": "x", "start_time": "tomorrow", "end_time": "2031-01-01 10:00", "quota": -1, "category": "a", "status": "bogus"})),
        ("event create unknown organizer", {
            let mut b = event_body("X", 1, 5);
            b["organizer_id"] = json!("00000000-0000-0000-0000-000000000000");
            b
        }),
        ("event create quota not integer", {
            let mut b = event_body("X", 1, 5);
            b["quota"] = json!(1.5);
            b
        }),
    ] {
        w.call(label, M::POST, "/api/events/", su, Some(body)).await;
    }
    w.raw("event create not json", M::POST, "/api/events/", org1, "application/json", b"{not json").await;
    w.raw("event create text/plain", M::POST, "/api/events/", org1, "text/plain", b"hello").await;
    for q in [
        "",
        "?ordering=-name",
        "?ordering=bogus",
        "?status=cancelled",
        "?status=bogus",
        "?category=tech&search=rust",
        "?location=jakarta&page_size=1&page=9",
        "?start_after=2031-01-11T00:00:00Z",
        "?start_before=garbage",
        &format!("?organizer={}", ids["org2"]),
        "?organizer=nope",
        "?page=abc",
    ] {
        w.call("events list", M::GET, &format!("/api/events/{q}"), None, None).await;
    }
    w.call("event get", M::GET, &format!("/api/events/{ev1}/"), None, None).await;
    w.call("event get again", M::GET, &format!("/api/events/{ev1}"), None, None).await;
    w.call("event get unknown", M::GET, "/api/events/00000000-0000-0000-0000-000000000000/", None, None).await;
    for (label, token) in [
        ("anonymous", None),
        ("user", bob),
        ("other organizer", org2),
        ("owner", org1),
        ("admin", adm),
    ] {
        w.call(&format!("event patch {label}"), M::PATCH, &format!("/api/events/{ev1}/"), token, Some(json!({"description": format!("by {label}")}))).await;
    }
    w.call("event put partial", M::PUT, &format!("/api/events/{ev1}/"), org1, Some(json!({"name": "Only name"}))).await;
    w.call("event put full", M::PUT, &format!("/api/events/{ev1}/"), org1, Some(event_body("Rust Night Jakarta", 3, 10))).await;
    w.call("event owner changes organizer", M::PATCH, &format!("/api/events/{ev1}/"), org1, Some(json!({"organizer_id": ids["org2"]}))).await;

    // ---- tickets
    let tk1 = w.call("ticket create owner", M::POST, "/api/tickets/", org1, Some(ticket_body(&ev1, "Regular", 2, true))).await .id();
    let tk_closed = w.call("ticket create closed window", M::POST, "/api/tickets/", org1, Some(ticket_body(&ev1, "Later", 5, false))).await .id();
    let tk2 = w.call("ticket create admin", M::POST, "/api/tickets/", adm, Some(ticket_body(&ev2, "Free", 5, true))).await .id();
    for (label, token) in [
        ("user", bob),
        ("other organizer", org2),
        ("anonymous", None),
    ] {
        w.call(&format!("ticket create {label}"), M::POST, "/api/tickets/", token, Some(ticket_body(&ev1, "X", 1, true))).await;
    }
    for (label, body) in [
        ("ticket create empty", json!({})),
        ("ticket create unknown event", ticket_body("00000000-0000-0000-0000-000000000000", "X", 1, true)),
        ("ticket create bad price", {
            let mut b = ticket_body(&ev1, "X", 1, true);
            b["price"] = json!(-1);
            b
        }),
        ("ticket create three decimals", {
            let mut b = ticket_body(&ev1, "X", 1, true);
            b["price"] = json!(1.234);
            b
        }),
        ("ticket create window reversed", {
            let mut b = ticket_body(&ev1, "X", 1, true);
            b["sales_end"] = json!("2019-01-01T00:00:00Z");
            b
        }),
    ] {
        w.call(label, M::POST, "/api/tickets/", su, Some(body)).await;
    }
    for q in [
        "",
        &format!("?event={ev1}"),
        "?ordering=-price,name",
        "?ordering=price",
        "?event=bad",
    ] {
        w.call("tickets list", M::GET, &format!("/api/tickets/{q}"), None, None).await;
    }
    w.call("ticket get", M::GET, &format!("/api/tickets/{tk1}/"), None, None).await;
    w.call("ticket get again", M::GET, &format!("/api/tickets/{tk1}/"), None, None).await;
    w.call("ticket patch other organizer", M::PATCH, &format!("/api/tickets/{tk1}/"), org2, Some(json!({"name": "VIP"}))).await;
    w.call("ticket patch owner", M::PATCH, &format!("/api/tickets/{tk1}/"), org1, Some(json!({"name": "Regular A", "price": "200000"}))).await;

    // ---- registrations
    let reg_alice = w.call("register self", M::POST, "/api/registrations/", alice, Some(json!({"ticket_id": tk1}))).await .id();
    w.call("register self again", M::POST, "/api/registrations/", alice, Some(json!({"ticket_id": tk1}))).await;
    w.call("register closed window", M::POST, "/api/registrations/", bob, Some(json!({"ticket_id": tk_closed}))).await;
    w.call("register cancelled event", M::POST, "/api/registrations/", bob, Some(json!({"ticket_id": tk2}))).await;
    w.call("register other user as user", M::POST, "/api/registrations/", bob, Some(json!({"ticket_id": tk1, "user_id": alice_id}))).await;
    w.call("register box office", M::POST, "/api/registrations/", org1, Some(json!({"ticket_id": tk_closed, "user_id": ids["bob"]}))).await;
    let reg_bob = w.call("register bob", M::POST, "/api/registrations/", bob, Some(json!({"ticket_id": tk1}))).await .id();
    w.call("register sold out", M::POST, "/api/registrations/", adm, Some(json!({"ticket_id": tk1}))).await;
    for (label, body) in [
        ("register empty", json!({})),
        ("register bad ticket", json!({"ticket_id": "nope"})),
        ("register unknown ticket", json!({"ticket_id": "00000000-0000-0000-0000-000000000000"})),
        ("register unknown user", json!({"ticket_id": tk1, "user_id": "00000000-0000-0000-0000-000000000000"})),
    ] {
        w.call(label, M::POST, "/api/registrations/", su, Some(body)).await;
    }
    w.call("register anonymous", M::POST, "/api/registrations/", None, Some(json!({"ticket_id": tk1}))).await;
    w.call("ticket quota below sold", M::PATCH, &format!("/api/tickets/{tk1}/"), org1, Some(json!({"quota": 1}))).await;
    w.call("event quota below registered", M::PATCH, &format!("/api/events/{ev1}/"), org1, Some(json!({"quota": 1}))).await;
    w.call("tickets after sales", M::GET, &format!("/api/tickets/{tk1}/"), None, None).await;
    for (label, token) in [
        ("user", alice),
        ("other user", bob),
        ("organizer", org1),
        ("other organizer", org2),
        ("admin", adm),
        ("superuser", su),
    ] {
        w.call(&format!("registrations list {label}"), M::GET, "/api/registrations/", token, None).await;
        w.call(&format!("registration get {label}"), M::GET, &format!("/api/registrations/{reg_alice}/"), token, None).await;
    }
    w.call("registrations filter", M::GET, &format!("/api/registrations/?ticket={tk1}&user={alice_id}"), su, None).await;
    w.call("registration move by owner", M::PATCH, &format!("/api/registrations/{reg_alice}/"), alice, Some(json!({"ticket_id": tk_closed}))).await;
    w.call("registration move unchanged", M::PUT, &format!("/api/registrations/{reg_alice}/"), adm, Some(json!({"ticket_id": tk1, "user_id": alice_id}))).await;
    w.call("registration move duplicate", M::PATCH, &format!("/api/registrations/{reg_bob}/"), adm, Some(json!({"ticket_id": tk_closed}))).await;

    // ---- payments
    let pay = w.call("payment create", M::POST, "/api/payments/", alice, Some(json!({"registration_id": reg_alice, "payment_method": "QRIS", "amount_paid": 150000.5}))).await .id();
    w.call("payment create completed by user", M::POST, "/api/payments/", alice, Some(json!({"registration_id": reg_alice, "payment_method": "QRIS", "amount_paid": 1, "payment_status": "completed"}))).await;
    w.call("payment create for other", M::POST, "/api/payments/", bob, Some(json!({"registration_id": reg_alice, "payment_method": "QRIS", "amount_paid": 1}))).await;
    for (label, body) in [
        ("payment create empty", json!({})),
        ("payment create bad", json!({"registration_id": "x", "payment_method": "", "amount_paid": -5, "payment_status": "paid"})),
    ] {
        w.call(label, M::POST, "/api/payments/", su, Some(body)).await;
    }
    for _ in 0..2 {
        let reply = app
            .client
            .post(app.url("/api/payments/"))
            .bearer_auth(bob.unwrap_or_default())
            .header("Idempotency-Key", "golden-key-1")
            .json(&json!({"registration_id": reg_bob, "payment_method": "bank_transfer", "amount_paid": 10}))
            .send()
            .await
            .expect("sent");
        let (reply, bytes) = reply_any(reply).await;
        w.record_bytes("payment idempotent", &M::POST, "/api/payments/", &reply, Some(&bytes));
    }
    for (label, token, status) in [
        ("user", alice, "completed"),
        ("organizer", org1, "completed"),
        ("admin bad move", adm, "refunded"),
        ("admin", adm, "completed"),
        ("admin same", adm, "COMPLETED"),
        ("admin refund", adm, "refunded"),
        ("admin back", adm, "pending"),
    ] {
        w.call(&format!("payment move {label}"), M::PATCH, &format!("/api/payments/{pay}/"), token, Some(json!({ "payment_status": status }))).await;
    }
    w.call("payment second completed", M::POST, "/api/payments/", su, Some(json!({"registration_id": reg_alice, "payment_method": "cash", "amount_paid": 1, "payment_status": "completed"}))).await;
    w.call("payment third completed", M::POST, "/api/payments/", su, Some(json!({"registration_id": reg_alice, "payment_method": "cash", "amount_paid": 1, "payment_status": "completed"}))).await;
    for (label, token) in [
        ("user", alice),
        ("other user", bob),
        ("organizer", org1),
        ("other organizer", org2),
        ("admin", adm),
    ] {
        w.call(&format!("payments list {label}"), M::GET, "/api/payments/?ordering=x", token, None).await;
        w.call(&format!("payment get {label}"), M::GET, &format!("/api/payments/{pay}/"), token, None).await;
    }
    w.call("payments filter", M::GET, "/api/payments/?payment_status=completed", su, None).await;
    w.call("payments filter bad", M::GET, "/api/payments/?payment_status=paid", su, None).await;
    w.call("registration delete with completed payment", M::DELETE, &format!("/api/registrations/{reg_alice}/"), alice, None).await;

    // ---- check-in at the door (undone at the end: what follows is as before)
    let ticket = w.call("ticket code", M::GET, &format!("/api/registrations/{reg_bob}/ticket/"), bob, None).await;
    let code = ticket.body["code"].as_str().unwrap_or_default().to_string();
    w.call("ticket code other user", M::GET, &format!("/api/registrations/{reg_bob}/ticket/"), alice, None).await;
    w.call("checkin keys", M::GET, "/api/checkins/keys/", None, None).await;
    w.call("checkin by user", M::POST, "/api/checkins/", bob, Some(json!({"code": code}))).await;
    w.call("checkin bad code", M::POST, "/api/checkins/", org1, Some(json!({"code": "not-a-ticket"}))).await;
    w.call("checkin no code", M::POST, "/api/checkins/", org1, Some(json!({}))).await;
    w.call("checkin unpaid", M::POST, "/api/checkins/", org1, Some(json!({"code": code}))).await;
    let admitted = w.call("checkin forced", M::POST, "/api/checkins/", org1, Some(json!({"code": code, "force": true}))).await;
    w.call("checkin again", M::POST, "/api/checkins/", org1, Some(json!({"code": code, "force": true}))).await;
    w.call("checkin at another door", M::POST, "/api/checkins/", adm, Some(json!({"code": code, "event": ev2}))).await;
    w.call("checkin at its door, too early", M::POST, "/api/checkins/", org1, Some(json!({"code": code, "event": ev1}))).await;
    w.call("checkin by registration without event", M::POST, "/api/checkins/", org1, Some(json!({"registration": reg_bob}))).await;
    w.call("door attendees", M::GET, &format!("/api/events/{ev1}/attendees/?search=bob"), org1, None).await;
    w.call("door attendees by user", M::GET, &format!("/api/events/{ev1}/attendees/"), bob, None).await;
    w.call("checkins list", M::GET, &format!("/api/checkins/?event={ev1}"), org1, None).await;
    w.call("checkins list by user", M::GET, "/api/checkins/", bob, None).await;
    w.call("checkin sync", M::GET, &format!("/api/events/{ev1}/checkin-sync/"), org1, None).await;
    w.call("event stats", M::GET, &format!("/api/events/{ev1}/stats/"), org1, None).await;
    w.call("event stats by user", M::GET, &format!("/api/events/{ev1}/stats/"), bob, None).await;
    w.call("checkin undo by user", M::DELETE, &format!("/api/checkins/{}/", admitted.id()), bob, None).await;
    w.call("checkin undo", M::DELETE, &format!("/api/checkins/{}/", admitted.id()), org1, None).await;

    // ---- posters
    w.upload("poster by user", bob, &ev1, png()).await;
    w.upload("poster by other organizer", org2, &ev1, png()).await;
    let poster = w.upload("poster", org1, &ev1, png()).await;
    let poster = poster.id();
    w.upload("poster not image", org1, &ev1, b"<svg></svg>".to_vec()).await;
    w.upload("poster empty", org1, &ev1, Vec::new()).await;
    w.upload("poster bad event", org1, "nope", png()).await;
    w.call("posters list", M::GET, &format!("/api/events/{ev1}/poster/"), None, None).await;
    w.call("posters list empty", M::GET, &format!("/api/events/{ev2}/poster/"), None, None).await;
    let media = app
        .client
        .get(app.url(&format!("/api/media/{poster}/")))
        .send()
        .await
        .expect("sent");
    let (media, bytes) = reply_any(media).await;
    w.record_bytes(
        "media bytes",
        &M::GET,
        &format!("/api/media/{poster}/"),
        &media,
        Some(&bytes),
    );
    w.call("media delete by user", M::DELETE, &format!("/api/media/{poster}/"), bob, None).await;
    w.call("media delete", M::DELETE, &format!("/api/media/{poster}/"), org1, None).await;
    w.call("media gone", M::GET, &format!("/api/media/{poster}/"), None, None).await;

    // ---- conventions
    w.call("unknown route", M::GET, "/api/nothing/", None, None).await;
    w.call("wrong method", M::PATCH, "/api/events/", su, Some(json!({}))).await;
    w.call("wrong method login", M::GET, "/api/login/", None, None).await;
    w.call("health", M::GET, "/healthz", None, None).await;

    // ---- deletes, last
    w.call("payment delete by user", M::DELETE, &format!("/api/payments/{pay}/"), alice, None).await;
    w.call("payment delete", M::DELETE, &format!("/api/payments/{pay}/"), adm, None).await;
    w.call("registration delete other", M::DELETE, &format!("/api/registrations/{reg_bob}/"), alice, None).await;
    w.call("registration delete own", M::DELETE, &format!("/api/registrations/{reg_bob}/"), bob, None).await;
    w.call("user delete organizer", M::DELETE, &format!("/api/users/{}/", ids["org1"]), su, None).await;
    w.call("ticket delete other organizer", M::DELETE, &format!("/api/tickets/{tk1}/"), org2, None).await;
    w.call("ticket delete", M::DELETE, &format!("/api/tickets/{tk1}/"), org1, None).await;
    w.call("event delete other", M::DELETE, &format!("/api/events/{ev1}/"), org2, None).await;
    w.call("event delete", M::DELETE, &format!("/api/events/{ev1}/"), org1, None).await;
    w.call("event gone", M::GET, &format!("/api/events/{ev1}/"), None, None).await;
    w.call("user delete other", M::DELETE, &format!("/api/users/{alice_id}/"), bob, None).await;
    w.call("user delete self", M::DELETE, &format!("/api/users/{alice_id}/"), alice, None).await;
    w.call("unassign role", M::DELETE, "/api/assign-roles/", su, Some(json!({"user_id": ids["adm"], "group_id": admin_group}))).await;

    // ---- the OpenAPI document: every operation and its statuses
    let doc = app.get("/api/schema/", None).await;
    let mut operations = serde_json::Map::new();
    if let Some(paths) = doc.body["paths"].as_object() {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let mut statuses: Vec<&String> = op["responses"]
                    .as_object()
                    .map(|r| r.keys().collect())
                    .unwrap_or_default();
                statuses.sort();
                operations.insert(format!("{method} {path}"), json!(statuses));
            }
        }
    }
    w.entries
        .push(json!({ "call": "openapi operations", "body": operations }));
    validate_with_openapi_core(&doc.body, &w.exchanges);

    let actual = Value::Array(w.entries);
    let pretty = serde_json::to_string_pretty(&actual).expect("json");
    if std::env::var("GOLDEN_UPDATE").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(std::path::Path::new(GOLDEN).parent().expect("dir"))
            .expect("mkdir");
        std::fs::write(GOLDEN, pretty + "\n").expect("write golden");
        return;
    }
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(GOLDEN)
            .expect("tests/golden/walk.json (record it with GOLDEN_UPDATE=1)"),
    )
    .expect("golden JSON");
    let (Value::Array(expected), Value::Array(actual)) = (&expected, &actual) else {
        panic!("golden file is not an array");
    };
    let mut differences = Vec::new();
    for (i, (e, a)) in expected.iter().zip(actual.iter()).enumerate() {
        if e != a {
            differences.push(format!(
                "#{i}\n  expected: {}\n  actual:   {}",
                serde_json::to_string(e).unwrap_or_default(),
                serde_json::to_string(a).unwrap_or_default()
            ));
        }
    }
    if expected.len() != actual.len() {
        differences.push(format!(
            "{} calls recorded, {} made",
            expected.len(),
            actual.len()
        ));
    }
    assert!(
        differences.is_empty(),
        "{} differences from tests/golden/walk.json:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
