//! `TestApp`: a real server on a random port, its own database (a temporary
//! SQLite file, or a fresh PostgreSQL database when `TEST_DATABASE_URL` is
//! set), a superuser, and one method per endpoint.

use std::collections::HashMap;

use dicoevent::Application;
use dicoevent::config::Config;
use dicoevent::state::AppState;
use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const SUPERUSER: &str = "Aras";
pub const PASSWORD: &str = "Str0ng-Passw0rd!";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: AppState,
    /// The superuser's access token.
    pub admin_token: String,
    pub superuser_id: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    pg_database: Option<(String, String)>,
    /// The configuration it was started with (a sibling reuses it).
    vars: HashMap<String, String>,
    _data_dir: Option<tempfile::TempDir>,
}

/// A response: status, headers and JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| self.body["id"].as_i64().map(|n| n.to_string()))
            .unwrap_or_else(|| panic!("no id in {:?}", self.body))
    }

    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// The PostgreSQL server used for tests, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// A TCP port nobody listens on now, for a server binary a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits (up to 10 s) until the server binary at `base` answers `/healthz`
/// with 200; panics with `what` otherwise.
pub async fn wait_healthy(client: &reqwest::Client, base: &str, what: &str) {
    for _ in 0..200 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}");
}

/// A login sent from `source` (any 127.0.0.0/8 address reaches the
/// server), with an `X-Forwarded-For` header when given; its status.
pub async fn login_from_address(
    app: &TestApp,
    source: [u8; 4],
    forwarded_for: Option<&str>,
    username: &str,
    password: &str,
) -> u16 {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(source))
        .build()
        .expect("client");
    let mut request = client
        .post(app.url("/api/login/"))
        .json(&json!({ "username": username, "password": password }));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("X-Forwarded-For", forwarded_for);
    }
    request.send().await.expect("login").status().as_u16()
}

pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..path_start])
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// Spawns with extra configuration variables.
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        // Server logs (warnings and errors) in the output of a failing test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,dicoevent=warn")
            .with_test_writer()
            .try_init();
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("DATA_DIR".into(), data_dir.path().display().to_string());
        vars.insert("PORT".into(), "0".into());
        vars.insert(
            "SECRET_KEY".into(),
            "test-secret-key-of-decent-length".into(),
        );
        // The tests run side by side on a small machine: a burst of a
        // hundred requests may wait over the default second for one of ten
        // connections there. Outages (the 503 after this wait) are the fault
        // drill's to prove, with the default.
        vars.insert("DATABASE_ACQUIRE_TIMEOUT".into(), "15s".into());
        // Webhook receivers in tests listen on loopback, over http.
        vars.insert("WEBHOOK_ALLOW_PRIVATE".into(), "true".into());
        // Test servers may share a Redis: each app its own key space.
        vars.insert(
            "CACHE_PREFIX".into(),
            format!("t{}", Uuid::new_v4().simple()),
        );
        let mut pg_database = None;
        match backend {
            Backend::Sqlite => {}
            Backend::Postgres => {
                let admin_url = postgres_url().expect("TEST_DATABASE_URL");
                let name = format!("dicoevent_test_{}", Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(&admin_url)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                vars.insert("DATABASE_URL".into(), replace_database(&admin_url, &name));
                pg_database = Some((admin_url, name));
            }
        }
        for (k, v) in extra {
            vars.insert((*k).to_string(), (*v).to_string());
        }
        let (port, state, tx, server) = Self::start(&vars).await;

        let superuser = dicoevent::domain::accounts::create_user(
            &state,
            dicoevent::domain::accounts::NewUser {
                username: SUPERUSER.into(),
                email: "aras@example.com".into(),
                password: PASSWORD.into(),
                first_name: String::new(),
                last_name: String::new(),
                is_superuser: true,
                verification: None,
            },
            Some(dicoevent::db::audit::Context::cli()),
        )
        .await
        .expect("superuser");
        let mut app = TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            state,
            admin_token: String::new(),
            superuser_id: superuser.id.to_string(),
            shutdown: Some(tx),
            server: Some(server),
            pg_database,
            vars,
            _data_dir: Some(data_dir),
        };
        app.admin_token = app.login_ok(SUPERUSER, PASSWORD).await.0;
        app
    }

    async fn start(
        vars: &HashMap<String, String>,
    ) -> (
        u16,
        AppState,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let config = Config::from_vars(vars).expect("test configuration");
        let app = Application::build(config)
            .await
            .expect("application builds");
        let port = app.port();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                rx.await.ok();
            })
            .await
            .expect("server runs");
        });
        (port, state, tx, server)
    }

    /// A second server on the same database, cache and secret: another
    /// process of the same deployment, as behind a load balancer.
    pub async fn spawn_sibling(&self) -> TestApp {
        self.spawn_sibling_with(&[]).await
    }

    /// A sibling with some configuration changed (e.g. a rotated key).
    pub async fn spawn_sibling_with(&self, extra: &[(&str, &str)]) -> TestApp {
        let mut vars = self.vars.clone();
        for (k, v) in extra {
            vars.insert((*k).to_string(), (*v).to_string());
        }
        let (port, state, tx, server) = Self::start(&vars).await;
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client: self.client.clone(),
            state,
            admin_token: self.admin_token.clone(),
            superuser_id: self.superuser_id.clone(),
            shutdown: Some(tx),
            server: Some(server),
            pg_database: None,
            vars,
            _data_dir: None,
        }
    }

    /// A configuration variable the server was started with (e.g. to run
    /// the CLI on the same database).
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    /// The server's data directory (SQLite file, media, mail outbox).
    pub fn data_dir(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(self.vars.get("DATA_DIR").cloned().unwrap_or_default())
    }

    /// Stops the server and drops the PostgreSQL test database.
    pub async fn cleanup(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.state.db.conn().clone().close().await.ok();
        if let Some((admin_url, name)) = self.pg_database.take()
            && let Ok(admin) = sea_orm::Database::connect(&admin_url).await
        {
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
            admin.close().await.ok();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::reply(req.send().await.expect("request sent")).await
    }

    pub async fn reply(res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "status {status}: body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::PUT, path, token, Some(body)).await
    }
    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::PATCH, path, token, Some(body)).await
    }
    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::DELETE, path, token, None).await
    }

    pub fn admin(&self) -> Option<&str> {
        Some(&self.admin_token)
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.post(
            "/api/login/",
            None,
            json!({ "username": username, "password": password }),
        )
        .await
    }

    /// Logs in; returns (access, refresh).
    pub async fn login_ok(&self, username: &str, password: &str) -> (String, String) {
        let reply = self.login(username, password).await;
        reply.assert(200);
        (
            reply.body["access"].as_str().expect("access").to_owned(),
            reply.body["refresh"].as_str().expect("refresh").to_owned(),
        )
    }

    pub async fn signup(&self, username: &str) -> Reply {
        self.post(
            "/api/users/",
            None,
            json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": PASSWORD,
            }),
        )
        .await
    }

    /// Signs a user up and logs in; returns (user id, access token).
    pub async fn user(&self, username: &str) -> (String, String) {
        let reply = self.signup(username).await;
        reply.assert(201);
        let (access, _) = self.login_ok(username, PASSWORD).await;
        (reply.id(), access)
    }

    /// A group by name, created if missing; returns its id.
    pub async fn group(&self, name: &str) -> i64 {
        let list = self.get("/api/groups/?page_size=100", self.admin()).await;
        if let Some(g) = list.body["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["name"] == name))
        {
            return g["id"].as_i64().expect("group id");
        }
        let reply = self
            .post("/api/groups/", self.admin(), json!({ "name": name }))
            .await;
        reply.assert(201);
        reply.body["id"].as_i64().expect("group id")
    }

    /// A user in the given group; returns (user id, access token).
    pub async fn user_in(&self, username: &str, group: &str) -> (String, String) {
        let (id, token) = self.user(username).await;
        let group_id = self.group(group).await;
        self.post(
            "/api/assign-roles/",
            self.admin(),
            json!({ "user_id": id, "group_id": group_id }),
        )
        .await
        .assert(201);
        (id, token)
    }

    /// An event body starting in `days` days, with the given quota.
    pub fn event_body(name: &str, quota: i64) -> Value {
        let start = chrono::Utc::now() + chrono::Duration::days(30);
        let end = start + chrono::Duration::hours(3);
        json!({
            "name": name,
            "description": "A gathering",
            "location": "Jakarta Convention Center",
            "start_time": start.to_rfc3339(),
            "end_time": end.to_rfc3339(),
            "quota": quota,
            "category": "Tech",
        })
    }

    pub async fn create_event(&self, token: &str, name: &str, quota: i64) -> String {
        let reply = self
            .post("/api/events/", Some(token), Self::event_body(name, quota))
            .await;
        reply.assert(201);
        reply.id()
    }

    /// A ticket on sale now (window from yesterday to next week).
    pub fn ticket_body(event_id: &str, name: &str, quota: i64) -> Value {
        let now = chrono::Utc::now();
        json!({
            "event_id": event_id,
            "name": name,
            "price": 150000.5,
            "sales_start": (now - chrono::Duration::days(1)).to_rfc3339(),
            "sales_end": (now + chrono::Duration::days(7)).to_rfc3339(),
            "quota": quota,
        })
    }

    pub async fn create_ticket(&self, token: &str, event_id: &str, quota: i64) -> String {
        let reply = self
            .post(
                "/api/tickets/",
                Some(token),
                Self::ticket_body(event_id, "Regular", quota),
            )
            .await;
        reply.assert(201);
        reply.id()
    }

    pub async fn register(&self, token: &str, ticket_id: &str) -> Reply {
        self.post(
            "/api/registrations/",
            Some(token),
            json!({ "ticket_id": ticket_id }),
        )
        .await
    }

    /// Creates `n` accounts directly (hashing once each) and issues their
    /// access tokens without logging in; for load-style tests.
    pub async fn many_users(&self, prefix: &str, n: usize) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("{prefix}{i}");
            let created = dicoevent::domain::accounts::create_user(
                &self.state,
                dicoevent::domain::accounts::NewUser {
                    email: format!("{name}@example.com"),
                    username: name,
                    password: PASSWORD.into(),
                    first_name: String::new(),
                    last_name: String::new(),
                    is_superuser: false,
                    verification: None,
                },
                Some(dicoevent::db::audit::Context::cli()),
            )
            .await
            .expect("user created");
            let (token, _) = self
                .state
                .jwt
                .issue(created.id, dicoevent::jwt::TokenType::Access)
                .expect("token");
            out.push((created.id.to_string(), token));
        }
        out
    }
}

/// Runs each named test (an `async fn(TestApp)` in the enclosing module)
/// once on SQLite and once on PostgreSQL; the PostgreSQL run says
/// "skipped" when `TEST_DATABASE_URL` is not set.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_url().is_none() {
                        eprintln!("skipped: TEST_DATABASE_URL is not set");
                        return;
                    }
                    let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
    };
}

/// Asserts a 400 naming `field` with a non-empty list of messages.
#[track_caller]
pub fn assert_field_error(reply: &Reply, field: &str) {
    reply.assert(400);
    let messages = reply.body[field]
        .as_array()
        .unwrap_or_else(|| panic!("no list of messages for {field:?} in {}", reply.body));
    assert!(
        !messages.is_empty() && messages.iter().all(Value::is_string),
        "messages for {field:?}: {}",
        reply.body
    );
}

pub const FORBIDDEN: &str = "You do not have permission to perform this action.";

/// Asserts DRF's 403.
#[track_caller]
pub fn assert_forbidden(reply: &Reply) {
    reply.assert(403);
    assert_eq!(reply.body, json!({ "detail": FORBIDDEN }));
}

/// Asserts a 401 with a message and the `WWW-Authenticate` challenge.
#[track_caller]
pub fn assert_unauthorized(reply: &Reply) {
    reply.assert(401);
    assert!(reply.body["detail"].is_string(), "body: {}", reply.body);
    assert!(
        reply.headers.get("www-authenticate").is_some(),
        "401 without WWW-Authenticate"
    );
}

/// Asserts DRF's 404.
#[track_caller]
pub fn assert_not_found(reply: &Reply) {
    reply.assert(404);
    assert_eq!(reply.body, json!({ "detail": "Not found." }));
}

/// The keys of a JSON object, sorted.
pub fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Field names, sorted (to compare with `sorted_keys`).
pub fn sorted(fields: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// An RFC 3339 datetime in UTC with `Z`.
pub fn is_utc_z(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

/// A valid 1×1 PNG, padded after IEND to `len` bytes (at least 69).
pub fn png(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde\0\0\0\x0cIDATx\x9cc\xf8\xcf\xc0\0\0\x03\x01\x01\0\xc9\xfe\x92\xef\0\0\0\0IEND\xaeB`\x82".to_vec();
    assert!(len >= bytes.len());
    bytes.resize(len, 0);
    bytes
}
