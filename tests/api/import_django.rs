//! `dicoevent import-django`, run as the real binary on the captured Django
//! installation of `tests/fixtures/django-dicoevent` (restored into a
//! scratch PostgreSQL database), then the imported data served by the real
//! server. Needs TEST_DATABASE_URL (the source is always PostgreSQL);
//! the S3 variant also TEST_S3_*.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine;
use dicoevent::Application;
use dicoevent::config::Config;
use dicoevent::db::entities::{
    audit_entry, event, group, media, payment, registration, ticket, user, user_group,
};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

const BINARY: &str = env!("CARGO_BIN_EXE_dicoevent");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/django-dicoevent"
);

fn pg_admin_url() -> Option<String> {
    let url = crate::helpers::postgres_url();
    if url.is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set (the Django source is PostgreSQL)");
    }
    url
}

fn with_database(url: &str, name: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).expect("TEST_DATABASE_URL is a URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

fn psql(url: &str, args: &[&str]) {
    let out = std::process::Command::new("psql")
        .arg("-q")
        .arg("-v")
        .arg("ON_ERROR_STOP=1")
        .arg(url)
        .args(args)
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL database created for one test, dropped at the end.
struct ScratchDb {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDb {
    fn create(admin_url: &str, prefix: &str) -> ScratchDb {
        let name = format!("{prefix}_{}", Uuid::new_v4().simple());
        psql(admin_url, &["-c", &format!("CREATE DATABASE \"{name}\"")]);
        ScratchDb {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        }
    }

    /// The captured Django database, plus `extra` SQL.
    fn django(admin_url: &str, extra: &str) -> ScratchDb {
        let db = ScratchDb::create(admin_url, "django_src");
        psql(&db.url, &["-f", &format!("{FIXTURE}/dump.sql")]);
        if !extra.is_empty() {
            psql(&db.url, &["-c", extra]);
        }
        db
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg("-q")
            .arg(&self.admin_url)
            .arg("-c")
            .arg(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Where an import writes: a SQLite file or a PostgreSQL database, and the
/// storage configuration, in a working directory of its own.
struct Target {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
    _pg: Option<ScratchDb>,
}

impl Target {
    fn sqlite() -> Target {
        let dir = tempfile::tempdir().expect("dir");
        let vars = vec![(
            "DATA_DIR".to_string(),
            dir.path().join("data").display().to_string(),
        )];
        Target {
            dir,
            vars,
            _pg: None,
        }
    }

    fn postgres(admin_url: &str) -> Target {
        let mut target = Target::sqlite();
        let pg = ScratchDb::create(admin_url, "dicoevent_import");
        target
            .vars
            .push(("DATABASE_URL".to_string(), pg.url.clone()));
        target._pg = Some(pg);
        target
    }

    fn with(mut self, name: &str, value: &str) -> Target {
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn database_url(&self) -> String {
        self.vars
            .iter()
            .find(|(k, _)| k == "DATABASE_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| {
                format!(
                    "sqlite://{}?mode=rw",
                    self.path().join("data/dicoevent.sqlite3").display()
                )
            })
    }

    async fn connect(&self) -> DatabaseConnection {
        sea_orm::Database::connect(self.database_url())
            .await
            .expect("connect to the target")
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new(BINARY);
        cmd.current_dir(self.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LOG_DIR", self.path().join("logs"))
            .env("SECRET_KEY", "import-test-secret-key-long-enough")
            .env("CACHE_PREFIX", format!("t{}", Uuid::new_v4().simple()))
            .args(args);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd.output().await.expect("the binary runs")
    }

    async fn import(&self, source: &ScratchDb, media_dir: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "import-django",
            "--from",
            &source.url,
            "--media-dir",
            media_dir.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        self.run(&args).await
    }

    /// Starts the real server on the imported data.
    async fn serve(&self) -> Server {
        let mut vars: HashMap<String, String> = self.vars.iter().cloned().collect();
        vars.insert("PORT".into(), "0".into());
        vars.insert(
            "SECRET_KEY".into(),
            "import-test-secret-key-long-enough".into(),
        );
        vars.insert(
            "CACHE_PREFIX".into(),
            format!("t{}", Uuid::new_v4().simple()),
        );
        let config = Config::from_vars(&vars).expect("configuration");
        let app = Application::build(config).await.expect("server builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until_stopped(async {
                stopped.await.ok();
            })
            .await
            .expect("server runs");
        });
        Server {
            address,
            client: reqwest::Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
fn assert_ok(out: &Output) -> String {
    let said = text(out);
    assert!(out.status.success(), "import failed:\n{said}");
    assert!(!said.contains("panicked"), "{said}");
    said
}

/// The summary line of one table: (read, created, updated, skipped).
fn counts(said: &str, table: &str) -> (u64, u64, u64, u64) {
    let line = said
        .lines()
        .find(|l| l.split_whitespace().next() == Some(table) && l.split_whitespace().count() == 5)
        .unwrap_or_else(|| panic!("no summary line for {table} in:\n{said}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().expect("a count"))
        .collect();
    (n[0], n[1], n[2], n[3])
}

fn nothing_written(said: &str) {
    for table in [
        "users",
        "groups",
        "memberships",
        "events",
        "tickets",
        "registrations",
        "payments",
        "posters",
    ] {
        let (_, created, updated, _) = counts(said, table);
        assert_eq!((created, updated), (0, 0), "{table} changed:\n{said}");
    }
}

struct Server {
    address: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.address)
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let bytes = res.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    async fn login(&self, username: &str, password: &str) -> Option<String> {
        let (status, body) = self
            .post(
                "/api/login/",
                None,
                json!({ "username": username, "password": password }),
            )
            .await;
        (status == StatusCode::OK).then(|| body["access"].as_str().expect("access").to_string())
    }

    async fn bytes(&self, url: &str) -> Vec<u8> {
        let res = self.client.get(self.url(url)).send().await.expect("get");
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        res.bytes().await.expect("bytes").to_vec()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            let _ = handle.await;
        }
    }
}

fn manifest() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURE}/manifest.json")).expect("manifest"),
    )
    .expect("manifest is JSON")
}

/// Every row of every imported table, in a stable order.
async fn dump(conn: &DatabaseConnection) -> Vec<String> {
    async fn rows<E: EntityTrait>(conn: &DatabaseConnection, out: &mut Vec<String>)
    where
        E::Model: std::fmt::Debug,
    {
        let mut lines: Vec<String> = E::find()
            .all(conn)
            .await
            .expect("read table")
            .iter()
            .map(|m| format!("{m:?}"))
            .collect();
        lines.sort();
        out.extend(lines);
    }
    let mut out = Vec::new();
    rows::<user::Entity>(conn, &mut out).await;
    rows::<group::Entity>(conn, &mut out).await;
    rows::<user_group::Entity>(conn, &mut out).await;
    rows::<event::Entity>(conn, &mut out).await;
    rows::<ticket::Entity>(conn, &mut out).await;
    rows::<registration::Entity>(conn, &mut out).await;
    rows::<payment::Entity>(conn, &mut out).await;
    rows::<media::Entity>(conn, &mut out).await;
    out
}

/// The files under a local storage's `posters/`.
fn stored_files(target: &Target) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.display().to_string());
            }
        }
    }
    let root = target.path().join("data/media");
    let mut out = Vec::new();
    walk(&root.join("posters"), &root, &mut out);
    out.sort();
    out
}

/// What a clean import of the plain fixture must give, through the API.
async fn check_imported_fixture(target: &Target, said: &str) {
    let m = manifest();
    assert_eq!(counts(said, "users"), (17, 17, 0, 0), "{said}");
    assert_eq!(counts(said, "groups"), (2, 2, 0, 0));
    assert_eq!(counts(said, "memberships"), (4, 4, 0, 0));
    assert_eq!(counts(said, "events"), (8, 8, 0, 0));
    assert_eq!(counts(said, "tickets"), (12, 12, 0, 0));
    assert_eq!(counts(said, "registrations"), (34, 34, 0, 0));
    assert_eq!(counts(said, "payments"), (23, 23, 0, 0));
    assert_eq!(counts(said, "posters"), (6, 6, 0, 0));
    assert!(said.contains("Report written to "), "{said}");

    let server = target.serve().await;
    let conn = target.connect().await;
    // Each imported row left its audit entry, by the command line.
    for (action, rows) in [
        ("user.imported", 17),
        ("group.imported", 2),
        ("role.imported", 4),
        ("event.imported", 8),
        ("ticket.imported", 12),
        ("registration.imported", 34),
        ("payment.imported", 23),
        ("poster.imported", 6),
    ] {
        let logged = audit_entry::Entity::find()
            .filter(audit_entry::Column::Action.eq(action))
            .filter(audit_entry::Column::ActorType.eq("cli"))
            .count(&conn)
            .await
            .expect("count audit entries");
        assert_eq!(logged, rows, "{action}");
    }
    // Every account logs in with its Django password; the hash is then ours.
    let superuser = &m["superuser"];
    let admin = server
        .login(
            superuser["username"].as_str().expect("name"),
            superuser["password"].as_str().expect("password"),
        )
        .await
        .expect("the superuser logs in with the Django password");
    for u in m["users"].as_array().expect("users") {
        let id: Uuid = u["id"].as_str().expect("id").parse().expect("uuid");
        let username = u["username"].as_str().expect("username");
        assert!(
            server
                .login(username, u["password"].as_str().expect("password"))
                .await
                .is_some(),
            "{username} cannot log in"
        );
        let stored = user::Entity::find_by_id(id)
            .one(&conn)
            .await
            .expect("read")
            .expect("the user keeps its id");
        assert!(
            stored.password.starts_with("$argon2id$"),
            "{username}: {}",
            stored.password
        );
        let (status, body) = server.get(&format!("/api/users/{id}/"), Some(&admin)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["username"], u["username"]);
        assert_eq!(body["email"], u["email"]);
        let mut groups: Vec<String> = body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g.as_str().expect("name").to_string())
            .collect();
        groups.sort();
        let mut expected: Vec<String> = u["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g.as_str().expect("name").to_string())
            .collect();
        expected.sort();
        assert_eq!(groups, expected, "{username}");
    }
    // A wrong password still fails.
    assert!(server.login("ayu28_0", "not-the-password").await.is_none());

    for e in m["events"].as_array().expect("events") {
        let id = e["id"].as_str().expect("id");
        let (status, body) = server.get(&format!("/api/events/{id}/"), None).await;
        assert_eq!(status, StatusCode::OK, "event {id}");
        for field in [
            "name",
            "description",
            "location",
            "category",
            "quota",
            "organizer",
        ] {
            assert_eq!(body[field], e[field], "event {id} {field}");
        }
        let expected_status = match e["status"].as_str().expect("status") {
            "canceled" => "cancelled",
            other => other,
        };
        assert_eq!(body["status"], expected_status);
        let start = chrono::DateTime::parse_from_rfc3339(body["start_time"].as_str().expect("t"))
            .expect("time");
        let expected =
            chrono::DateTime::parse_from_rfc3339(e["start_time"].as_str().expect("t")).expect("t");
        assert_eq!(start, expected);
    }
    let registrations = m["registrations"].as_array().expect("registrations");
    for t in m["tickets"].as_array().expect("tickets") {
        let id = t["id"].as_str().expect("id");
        let (status, body) = server.get(&format!("/api/tickets/{id}/"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body["price"].as_f64(),
            t["price"].as_f64(),
            "ticket {id} price"
        );
        assert_eq!(body["quota"], t["quota"]);
        let sold = registrations
            .iter()
            .filter(|r| r["ticket"] == t["id"])
            .count();
        assert_eq!(body["sold"], json!(sold), "ticket {id} sold");
    }
    let stored_price = ticket::Entity::find_by_id(
        "6757d4d5-24bf-47a7-bc60-572f06e8e66f"
            .parse::<Uuid>()
            .expect("uuid"),
    )
    .one(&conn)
    .await
    .expect("read")
    .expect("ticket");
    assert_eq!(stored_price.price_minor, 15_000_050, "150000.50 exactly");
    for r in registrations {
        let id = r["id"].as_str().expect("id");
        let (status, body) = server
            .get(&format!("/api/registrations/{id}/"), Some(&admin))
            .await;
        assert_eq!(status, StatusCode::OK, "registration {id}");
        assert_eq!(body["ticket"], r["ticket"]);
        assert_eq!(body["user"], r["user"]);
    }
    for p in m["payments"].as_array().expect("payments") {
        let id = p["id"].as_str().expect("id");
        let (status, body) = server
            .get(&format!("/api/payments/{id}/"), Some(&admin))
            .await;
        assert_eq!(status, StatusCode::OK, "payment {id}");
        let expected = match p["payment_status"].as_str().expect("status") {
            "paid" => "completed",
            other => other,
        };
        assert_eq!(body["payment_status"], expected);
        assert_eq!(body["amount_paid"].as_f64(), p["amount_paid"].as_f64());
        assert_eq!(body["registration"], p["registration"]);
        assert_eq!(body["paid_at"].is_null(), expected != "completed");
    }
    for poster in m["media"].as_array().expect("media") {
        let id = poster["id"].as_str().expect("id");
        let event = poster["_event"].as_str().expect("event");
        let (status, list) = server
            .get(&format!("/api/events/{event}/poster/"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let item = list
            .as_array()
            .expect("array")
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("poster {id} listed: {list}"))
            .clone();
        let original = std::fs::read(format!(
            "{FIXTURE}/media/{}",
            poster["image"].as_str().expect("key")
        ))
        .expect("fixture object");
        assert_eq!(item["size"], json!(original.len()));
        let served = server.bytes(item["url"].as_str().expect("url")).await;
        assert!(served == original, "poster {id}: other bytes served");
    }

    // The API works on imported data: a box-office registration, its
    // payment, a poster upload.
    let ticket_id = "4cde433f-e882-4b15-b130-5a36abef9d2c";
    let (status, reg) = server
        .post(
            "/api/registrations/",
            Some(&admin),
            json!({ "ticket_id": ticket_id, "user_id": "8b1b35c2-d84a-4889-bac0-6d80de38c43a" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reg}");
    let (status, paid) = server
        .post(
            "/api/payments/",
            Some(&admin),
            json!({
                "registration_id": reg["id"],
                "payment_method": "QRIS",
                "amount_paid": 75000,
                "payment_status": "completed",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    // The imported "paid" payment counts as completed: a second is refused.
    let (status, _) = server
        .post(
            "/api/payments/",
            Some(&admin),
            json!({
                "registration_id": "21916294-95be-49cf-b6bc-e199f34e5078",
                "payment_method": "QRIS",
                "amount_paid": 75000,
                "payment_status": "completed",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let png = std::fs::read(format!("{FIXTURE}/media/poster-2-749.png")).expect("png");
    let form = Form::new()
        .text("event", "c45612ba-01ab-40f2-8fed-d15ca2d3e147")
        .part(
            "image",
            Part::bytes(png.clone())
                .file_name("new.png")
                .mime_str("image/png")
                .expect("mime"),
        );
    let (status, uploaded) = server
        .send(
            server
                .client
                .post(server.url("/api/events/upload/"))
                .bearer_auth(&admin)
                .multipart(form),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    assert!(server.bytes(uploaded["url"].as_str().expect("url")).await == png);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_imports_into_sqlite_and_postgres_and_a_rerun_changes_nothing() {
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let source = ScratchDb::django(&admin_url, "");
    let media_dir = PathBuf::from(format!("{FIXTURE}/media"));
    for target in [Target::sqlite(), Target::postgres(&admin_url)] {
        let said = assert_ok(&target.import(&source, &media_dir, &[]).await);
        check_imported_fixture(&target, &said).await;

        // After the API's own writes, a re-run changes nothing at all.
        let conn = target.connect().await;
        let before = dump(&conn).await;
        let files = stored_files(&target);
        let again = assert_ok(&target.import(&source, &media_dir, &[]).await);
        nothing_written(&again);
        assert_eq!(dump(&conn).await, before, "a re-run changed the database");
        assert_eq!(stored_files(&target), files);

        // More activity on the old service: only that is brought.
        psql(
            &source.url,
            &[
                "-c",
                "UPDATE events_event SET name = 'Renamed' WHERE id = 'b85ae81f-1ea2-4ebd-a3a5-0e0696cb4f5c'; \
                     INSERT INTO events_registration VALUES ('0a0a0a0a-0000-4000-8000-000000000001', '2026-12-02 10:00:00+00', '4cde433f-e882-4b15-b130-5a36abef9d2c', '77a13f50-4666-4e06-9522-0e85a0d74dbc');",
            ],
        );
        let third = assert_ok(&target.import(&source, &media_dir, &[]).await);
        assert_eq!(counts(&third, "events").1, 0, "{third}");
        // The renamed event, and the event whose ticket sold one more.
        assert_eq!(counts(&third, "events").2, 2, "{third}");
        assert_eq!(counts(&third, "registrations").1, 1);
        assert_eq!(counts(&third, "tickets").2, 1);
        assert_eq!(counts(&third, "users").2, 0, "upgraded hashes are kept");
        let sold = ticket::Entity::find_by_id(
            "4cde433f-e882-4b15-b130-5a36abef9d2c"
                .parse::<Uuid>()
                .expect("uuid"),
        )
        .one(&conn)
        .await
        .expect("read")
        .expect("ticket")
        .sold;
        assert_eq!(sold, 2, "the API's registration and the new imported one");
        psql(
            &source.url,
            &[
                "-c",
                "UPDATE events_event SET name = 'Meetup Jakarta 2027 #0' WHERE id = 'b85ae81f-1ea2-4ebd-a3a5-0e0696cb4f5c'; \
                     DELETE FROM events_registration WHERE id = '0a0a0a0a-0000-4000-8000-000000000001';",
            ],
        );
    }
}

/// The awkward rows a real installation carries.
const EDGE_CASES: &str = "
-- over quota: Early Bird has 5 registrations
UPDATE events_ticket SET quota = 1 WHERE id = '96875c8f-e537-49a3-8a6d-fb1b542242c6';
-- the same user twice on one ticket (the later one has a payment)
INSERT INTO events_registration VALUES ('dddddddd-0000-4000-8000-000000000001', '2026-12-01 14:00:00+00', '09e6f9bb-3b02-44a9-9eb9-3f6029ba3546', '89d7b42d-d16d-40f7-981b-c435dff5ab92');
INSERT INTO events_payment VALUES ('eeeeeeee-0000-4000-8000-000000000001', 'QRIS', 'pending', 0.00, '2026-12-01 14:01:00+00', 'dddddddd-0000-4000-8000-000000000001');
-- a second completed payment for a registration already paid
INSERT INTO events_payment VALUES ('eeeeeeee-0000-4000-8000-000000000002', 'QRIS', 'completed', 75000.00, '2026-12-01 14:02:00+00', '21916294-95be-49cf-b6bc-e199f34e5078');
-- unknown statuses
UPDATE events_event SET status = 'postponed' WHERE id = 'b776bfa1-5958-4d55-b186-45422aa17417';
UPDATE events_payment SET payment_status = 'declined' WHERE id = '648aba2f-79ea-46f4-8197-45b44d5fe16d';
-- posters: one object for two rows, a missing object, a non-image object
INSERT INTO events_media VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'poster-0-544.jpg', '2026-12-01 14:03:00+00', '099c1851-b732-4d8e-9c05-21b5efb1ce5a');
INSERT INTO events_media VALUES ('aaaaaaaa-0000-4000-8000-000000000002', 'gone.jpg', '2026-12-01 14:04:00+00', '099c1851-b732-4d8e-9c05-21b5efb1ce5a');
INSERT INTO events_media VALUES ('aaaaaaaa-0000-4000-8000-000000000003', 'notes.jpg', '2026-12-01 14:05:00+00', '099c1851-b732-4d8e-9c05-21b5efb1ce5a');
-- passwords: unusable, another hasher (another iteration count is added by the test)
INSERT INTO users_user VALUES ('!Xk2unusablePasswordMarker', NULL, false, 'locked', '', '', false, true, '2026-12-01 14:06:00+00', 'ffffffff-0000-4000-8000-000000000001', 'locked@example.id');
INSERT INTO users_user VALUES ('bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuuJ2m1Yy7Yq8xQ0y1Cz2Dd3Ee4Ff5Gg6', NULL, false, 'bcrypted', '', '', false, true, '2026-12-01 14:07:00+00', 'ffffffff-0000-4000-8000-000000000003', 'bcrypted@example.id');
";

fn django_hash(password: &str, salt: &str, iterations: u32) -> String {
    let mut derived = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    format!(
        "pbkdf2_sha256${iterations}${salt}${}",
        base64::engine::general_purpose::STANDARD.encode(derived)
    )
}

/// The fixture's objects plus a non-image object.
fn edge_media_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    for entry in std::fs::read_dir(format!("{FIXTURE}/media")).expect("media") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    std::fs::write(
        dir.path().join("notes.jpg"),
        b"<!DOCTYPE html><p>not an image</p>",
    )
    .expect("write");
    dir
}

fn edge_source(admin_url: &str) -> ScratchDb {
    let old_hash = django_hash("Old-Pass-1000!", "oldsalt", 1000);
    ScratchDb::django(
        admin_url,
        &format!(
            "{EDGE_CASES}
INSERT INTO users_user VALUES ('{old_hash}', NULL, false, 'olduser', '', '', false, true, '2026-12-01 14:08:00+00', 'ffffffff-0000-4000-8000-000000000002', 'olduser@example.id');"
        ),
    )
}

fn note<'a>(said: &'a str, id: &str) -> &'a str {
    said.lines()
        .find(|l| {
            l.contains(id)
                && (l.contains("SKIPPED") || l.contains("ALTERED") || l.contains("NOTICE"))
        })
        .unwrap_or_else(|| panic!("{id} is not reported:\n{said}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_rows_are_reported_and_handled() {
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let source = edge_source(&admin_url);
    let media_dir = edge_media_dir();
    let target = Target::sqlite();
    let report_path = target.path().join("report.txt");
    let said = assert_ok(
        &target
            .import(
                &source,
                media_dir.path(),
                &["--report", report_path.to_str().expect("path")],
            )
            .await,
    );
    let report = std::fs::read_to_string(&report_path).expect("the report file");
    assert!(said.contains(&report.lines().next().expect("heading")[..20]));

    assert!(note(&report, "96875c8f-e537-49a3-8a6d-fb1b542242c6").contains("quota of 1"));
    assert!(note(&report, "dddddddd-0000-4000-8000-000000000001").contains("duplicate"));
    assert!(
        note(&report, "eeeeeeee-0000-4000-8000-000000000001")
            .contains("kept registration 16296da1")
    );
    assert!(
        note(&report, "eeeeeeee-0000-4000-8000-000000000002").contains("second completed payment")
    );
    assert!(
        note(&report, "b776bfa1-5958-4d55-b186-45422aa17417")
            .contains("\"postponed\" → \"scheduled\"")
    );
    assert!(
        note(&report, "648aba2f-79ea-46f4-8197-45b44d5fe16d").contains("\"declined\" → \"failed\"")
    );
    assert!(note(&report, "aaaaaaaa-0000-4000-8000-000000000001").contains("own copy"));
    assert!(note(&report, "aaaaaaaa-0000-4000-8000-000000000002").contains("missing"));
    assert!(note(&report, "aaaaaaaa-0000-4000-8000-000000000003").contains("not a JPEG"));
    assert!(note(&report, "ffffffff-0000-4000-8000-000000000001").contains("unusable"));
    assert!(note(&report, "ffffffff-0000-4000-8000-000000000003").contains("must reset"));
    assert!(report.contains("1 with 1000 iterations"), "{report}");
    assert_eq!(counts(&report, "registrations"), (35, 34, 0, 1));
    assert_eq!(counts(&report, "payments"), (25, 24, 0, 1));
    assert_eq!(counts(&report, "posters"), (9, 7, 0, 2));
    assert_eq!(counts(&report, "users"), (20, 20, 0, 0));

    let conn = target.connect().await;
    let id = |s: &str| s.parse::<Uuid>().expect("uuid");
    let over = ticket::Entity::find_by_id(id("96875c8f-e537-49a3-8a6d-fb1b542242c6"))
        .one(&conn)
        .await
        .expect("read")
        .expect("ticket");
    assert_eq!(
        (over.quota, over.sold),
        (1, 5),
        "the real count, beyond quota"
    );
    let moved = payment::Entity::find_by_id(id("eeeeeeee-0000-4000-8000-000000000001"))
        .one(&conn)
        .await
        .expect("read")
        .expect("payment kept");
    assert_eq!(
        moved.registration_id,
        id("16296da1-d80e-4537-8479-add11ac00e63")
    );
    assert!(
        registration::Entity::find_by_id(id("dddddddd-0000-4000-8000-000000000001"))
            .one(&conn)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        payment::Entity::find_by_id(id("eeeeeeee-0000-4000-8000-000000000002"))
            .one(&conn)
            .await
            .expect("read")
            .is_none()
    );
    let postponed = event::Entity::find_by_id(id("b776bfa1-5958-4d55-b186-45422aa17417"))
        .one(&conn)
        .await
        .expect("read")
        .expect("event");
    assert_eq!(postponed.status, "scheduled");
    let declined = payment::Entity::find_by_id(id("648aba2f-79ea-46f4-8197-45b44d5fe16d"))
        .one(&conn)
        .await
        .expect("read")
        .expect("payment");
    assert_eq!(declined.payment_status, "failed");

    // Shared object: two rows, two copies under our own names, same bytes.
    let first = media::Entity::find_by_id(id("253b0261-6e76-4f02-a024-1702779ccd84"))
        .one(&conn)
        .await
        .expect("read")
        .expect("poster");
    let second = media::Entity::find_by_id(id("aaaaaaaa-0000-4000-8000-000000000001"))
        .one(&conn)
        .await
        .expect("read")
        .expect("poster");
    assert_ne!(first.object_key, second.object_key);
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(second.content_type, "image/jpeg");
    assert_eq!(second.original_name, "poster-0-544.jpg");
    assert_eq!(stored_files(&target).len(), 7);

    let server = target.serve().await;
    assert!(
        server
            .login("locked", "!Xk2unusablePasswordMarker")
            .await
            .is_none()
    );
    assert!(server.login("locked", "").await.is_none());
    assert!(server.login("bcrypted", "anything").await.is_none());
    assert!(server.login("olduser", "Old-Pass-1000!").await.is_some());
    let old = user::Entity::find_by_id(id("ffffffff-0000-4000-8000-000000000002"))
        .one(&conn)
        .await
        .expect("read")
        .expect("user");
    assert!(old.password.starts_with("$argon2id$"));
    let locked = user::Entity::find_by_id(id("ffffffff-0000-4000-8000-000000000001"))
        .one(&conn)
        .await
        .expect("read")
        .expect("user");
    assert_eq!(locked.password, "!Xk2unusablePasswordMarker");
    // The over-quota ticket sells no more.
    let (_, t) = server
        .get("/api/tickets/96875c8f-e537-49a3-8a6d-fb1b542242c6/", None)
        .await;
    assert_eq!(t["available"], json!(0));
    server.stop().await;

    // A re-run: the same reports, nothing written.
    let before = dump(&conn).await;
    let again = assert_ok(&target.import(&source, media_dir.path(), &[]).await);
    nothing_written(&again);
    assert!(again.contains("second completed payment"));
    assert_eq!(dump(&conn).await, before);

    // A dry run on the imported target writes nothing either.
    let dry = assert_ok(
        &target
            .import(&source, media_dir.path(), &["--dry-run"])
            .await,
    );
    assert!(dry.contains("DRY RUN"), "{dry}");
    assert_eq!(dump(&conn).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing() {
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let source = ScratchDb::django(&admin_url, "");
    let media_dir = PathBuf::from(format!("{FIXTURE}/media"));
    let target = Target::sqlite();
    let said = assert_ok(&target.import(&source, &media_dir, &["--dry-run"]).await);
    assert!(said.contains("DRY RUN"), "{said}");
    assert_eq!(counts(&said, "users"), (17, 17, 0, 0), "what would happen");
    assert_eq!(counts(&said, "posters"), (6, 6, 0, 0));
    assert!(
        !target.path().join("data/dicoevent.sqlite3").exists(),
        "no database created"
    );
    assert!(
        !target.path().join("data/media").exists(),
        "no storage touched"
    );

    // On PostgreSQL, an empty database stays empty (not even migrated).
    let pg = Target::postgres(&admin_url);
    assert_ok(&pg.import(&source, &media_dir, &["--dry-run"]).await);
    let conn = pg.connect().await;
    let tables = conn
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        ))
        .await
        .expect("list tables");
    assert!(tables.is_empty(), "the dry run created tables");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_half_way_is_finished_by_the_next() {
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let source = ScratchDb::django(&admin_url, "");
    let media_dir = PathBuf::from(format!("{FIXTURE}/media"));
    let clean = Target::sqlite();
    assert_ok(
        &clean
            .import(&source, &media_dir, &["--batch-size", "10"])
            .await,
    );

    let target = Target::sqlite();
    assert!(target.run(&["migrate"]).await.status.success());
    let conn = target.connect().await;
    // The target refuses the 21st registration: the third batch of ten fails.
    conn.execute_unprepared(
        "CREATE TRIGGER fail_registrations BEFORE INSERT ON registrations \
         WHEN (SELECT count(*) FROM registrations) >= 20 \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .await
    .expect("trigger");
    let failed = target
        .import(&source, &media_dir, &["--batch-size", "10"])
        .await;
    assert!(!failed.status.success());
    let said = text(&failed);
    assert!(
        said.contains("writing registrations: batch 3 of 4 failed")
            && said.contains("run the same command again"),
        "{said}"
    );
    assert!(!said.contains("panicked"));
    assert_eq!(
        registration::Entity::find()
            .all(&conn)
            .await
            .expect("read")
            .len(),
        20,
        "the committed batches stay, the failed one left nothing"
    );
    // Then the storage side: the third poster's row fails after its object
    // was stored.
    conn.execute_unprepared(
        "DROP TRIGGER fail_registrations; \
         CREATE TRIGGER fail_media BEFORE INSERT ON media \
         WHEN (SELECT count(*) FROM media) >= 2 \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .await
    .expect("trigger");
    let failed = target
        .import(&source, &media_dir, &["--batch-size", "10"])
        .await;
    assert!(!failed.status.success());
    assert!(
        text(&failed).contains("writing poster row"),
        "{}",
        text(&failed)
    );
    assert_eq!(stored_files(&target).len(), 3, "an object without its row");
    conn.execute_unprepared("DROP TRIGGER fail_media")
        .await
        .expect("drop trigger");

    let finished = assert_ok(
        &target
            .import(&source, &media_dir, &["--batch-size", "10"])
            .await,
    );
    assert_eq!(
        counts(&finished, "registrations"),
        (34, 0, 0, 0),
        "{finished}"
    );
    assert_eq!(counts(&finished, "posters"), (6, 4, 0, 0), "{finished}");
    assert_eq!(counts(&finished, "users").1, 0);
    let clean_conn = clean.connect().await;
    assert_eq!(
        dump(&conn).await,
        dump(&clean_conn).await,
        "the same as one clean run"
    );
    assert_eq!(stored_files(&target), stored_files(&clean));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posters_from_an_s3_bucket_into_s3_with_the_django_env_file() {
    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let (Ok(endpoint), Ok(access), Ok(secret)) = (
        std::env::var("TEST_S3_ENDPOINT"),
        std::env::var("TEST_S3_ACCESS_KEY"),
        std::env::var("TEST_S3_SECRET_KEY"),
    ) else {
        eprintln!("skipped: TEST_S3_ENDPOINT/TEST_S3_ACCESS_KEY/TEST_S3_SECRET_KEY are not set");
        return;
    };
    let source = ScratchDb::django(&admin_url, "");
    // The Django bucket, filled with the fixture's objects.
    let source_bucket = format!("django-{}", Uuid::new_v4().simple());
    let mut vars = HashMap::new();
    vars.insert("MINIO_ENDPOINT_URL".to_string(), endpoint.clone());
    vars.insert("MINIO_ACCESS_KEY".to_string(), access.clone());
    vars.insert("MINIO_SECRET_KEY".to_string(), secret.clone());
    vars.insert("MINIO_BUCKET_NAME".to_string(), source_bucket.clone());
    let bucket = dicoevent::storage::Storage::open(&Config::from_vars(&vars).expect("config"))
        .await
        .expect("source bucket");
    for entry in std::fs::read_dir(format!("{FIXTURE}/media")).expect("media") {
        let entry = entry.expect("entry");
        let key = entry.file_name().to_string_lossy().to_string();
        bucket
            .put(&key, std::fs::read(entry.path()).expect("read").into())
            .await
            .expect("upload a fixture object");
    }

    // The Django installation's .env, as it was: host:port without a scheme.
    let pg = reqwest::Url::parse(&source.url).expect("url");
    let target = Target::postgres(&admin_url)
        .with("MINIO_ENDPOINT_URL", &endpoint)
        .with("MINIO_ACCESS_KEY", &access)
        .with("MINIO_SECRET_KEY", &secret)
        .with(
            "MINIO_BUCKET_NAME",
            &format!("dicoevent-{}", Uuid::new_v4().simple()),
        );
    let env_file = target.path().join("django.env");
    std::fs::write(
        &env_file,
        format!(
            "DJANGO_SETTINGS_MODULE=dicoevent.settings\nCELERY_BROKER_URL=redis://localhost:6379/0\n\
             DATABASE_NAME={}\nDATABASE_USER={}\nDATABASE_PASSWORD={}\nDATABASE_HOST={}\nDATABASE_PORT={}\n\
             MINIO_ENDPOINT_URL={}\nMINIO_ACCESS_KEY={access}\nMINIO_SECRET_KEY={secret}\nMINIO_BUCKET_NAME={source_bucket}\n",
            pg.path().trim_start_matches('/'),
            pg.username(),
            pg.password().unwrap_or(""),
            pg.host_str().expect("host"),
            pg.port().unwrap_or(5432),
            endpoint.trim_start_matches("http://"),
        ),
    )
    .expect("write .env");
    let said = assert_ok(
        &target
            .run(&[
                "import-django",
                "--env-file",
                env_file.to_str().expect("path"),
            ])
            .await,
    );
    assert!(said.contains("S3 bucket"), "{said}");
    check_imported_fixture(&target, &said).await;
    let again = assert_ok(
        &target
            .run(&[
                "import-django",
                "--env-file",
                env_file.to_str().expect("path"),
            ])
            .await,
    );
    nothing_written(&again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sources_are_clear_one_line_errors() {
    let target = Target::sqlite();
    let media = format!("{FIXTURE}/media");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "import-django",
                "--from",
                "postgres://nobody:secretpw@127.0.0.1:1/none",
                "--media-dir",
                &media,
            ],
            "cannot connect to the Django database at postgres://nobody:********@127.0.0.1:1/none",
        ),
        (
            vec![
                "import-django",
                "--from",
                "mysql://x/y",
                "--media-dir",
                &media,
            ],
            "--from: expected a postgres://",
        ),
        (
            vec!["import-django", "--media-dir", &media],
            "no source database",
        ),
        (
            vec!["import-django", "--from", "postgres://127.0.0.1:1/x"],
            "no source for posters",
        ),
        (
            vec![
                "import-django",
                "--from",
                "postgres://127.0.0.1:1/x",
                "--media-dir",
                "/nonexistent/dir",
            ],
            "--media-dir /nonexistent/dir: not a directory",
        ),
        (
            vec![
                "import-django",
                "--from",
                "postgres://127.0.0.1:1/x",
                "--media-dir",
                &media,
                "--batch-size",
                "0",
            ],
            "--batch-size",
        ),
        (
            vec![
                "import-django",
                "--env-file",
                "/nonexistent/.env",
                "--media-dir",
                &media,
            ],
            "cannot read the env file /nonexistent/.env",
        ),
    ];
    for (args, expected) in cases {
        let out = target.run(&args).await;
        let said = text(&out);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(said.contains(expected), "{args:?}: {said}");
        assert!(
            !said.contains("panicked") && !said.contains("secretpw"),
            "{said}"
        );
    }

    let Some(admin_url) = pg_admin_url() else {
        return;
    };
    let source = ScratchDb::django(&admin_url, "DROP TABLE events_media;");
    let out = target.import(&source, Path::new(&media), &[]).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has no table events_media — is it the Django DicoEvent database?"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_django_env_file_works_for_our_commands_too() {
    let target = Target::sqlite();
    std::fs::write(
        target.path().join(".env"),
        "MINIO_ENDPOINT_URL=localhost:9000\nMINIO_ACCESS_KEY=minio\nMINIO_SECRET_KEY=minio123\n\
         CELERY_BROKER_URL=redis://localhost:6379/0\nDJANGO_SETTINGS_MODULE=dicoevent.settings\nTIME_ZONE=Asia/Jakarta\n",
    )
    .expect("write .env");
    let out = target.run(&["migrate"]).await;
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let ignored: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("ignoring variables of .env"))
        .collect();
    assert_eq!(ignored.len(), 1, "{said}");
    assert!(
        ignored[0].contains("CELERY_BROKER_URL, DJANGO_SETTINGS_MODULE"),
        "{said}"
    );
    assert!(!ignored[0].contains("TIME_ZONE"));
}
