//! Upgrading in place: a database as the previous release left it, with
//! rows in it, takes this release's migrations (DESIGN.md "Upgrades in
//! place"): every registration gets a short code (distinct ones, then the
//! unique index), every check-in its method, events keep no time zone,
//! every account counts as verified; every registration is confirmed with no
//! hold and owes its ticket's price, no ticket is hidden or has a window.

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

use crate::helpers::postgres_url;
use dicoevent::db::migration::Migrator;

/// The first migration of the last releases (the door and the attendee's
/// way, the box office, the audit count's mark): a database from before
/// them is upgraded.
const FIRST_NEW_MIGRATION: &str = "m20261208_000016_door";

/// Entries the previous release's audit log holds.
const OLD_AUDIT_ENTRIES: usize = 3;

fn literal(backend: DbBackend, id: Uuid) -> String {
    match backend {
        DbBackend::Postgres => format!("'{id}'"),
        _ => format!("X'{}'", id.simple()),
    }
}

/// The previous release's schema with 200 registrations and a check-in;
/// returns the event's id.
async fn previous_release_with_rows(db: &DatabaseConnection) -> Uuid {
    let previous = Migrator::migrations()
        .iter()
        .position(|m| m.name() == FIRST_NEW_MIGRATION)
        .expect("the door's migration");
    Migrator::up(db, Some(previous as u32))
        .await
        .expect("the previous release's migrations");
    let b = db.get_database_backend();
    let now = "'2026-12-01T10:00:00Z'";
    let organizer = Uuid::now_v7();
    let event = Uuid::now_v7();
    let ticket = Uuid::now_v7();
    let mut sql = vec![
        format!(
            "INSERT INTO users (id, username, username_key, email, email_key, password, first_name, last_name, is_superuser, is_active, date_joined) \
             VALUES ({}, 'olga', 'olga', 'olga@example.com', 'olga@example.com', 'x', '', '', false, true, {now})",
            literal(b, organizer)
        ),
        format!(
            "INSERT INTO events (id, name, description, location, start_time, end_time, status, category, quota, registered, organizer_id, created_at, updated_at) \
             VALUES ({}, 'Old night', '', 'Jakarta', {now}, {now}, 'scheduled', 'Tech', 1000, 200, {}, {now}, {now})",
            literal(b, event),
            literal(b, organizer)
        ),
        format!(
            "INSERT INTO tickets (id, event_id, name, price_minor, sales_start, sales_end, quota, sold) \
             VALUES ({}, {}, 'Regular', 7500000, {now}, {now}, 1000, 200)",
            literal(b, ticket),
            literal(b, event)
        ),
    ];
    for n in 0..OLD_AUDIT_ENTRIES {
        sql.push(format!(
            "INSERT INTO audit_entries (id, occurred_at, actor_type, action, entity_type, \
             entity_id, changes) VALUES ({}, {now}, 'cli', 'event.updated', 'event', 'old-{n}', '{{}}')",
            literal(b, Uuid::now_v7())
        ));
    }
    let mut first = None;
    for i in 0..200 {
        let (user, registration) = (Uuid::now_v7(), Uuid::now_v7());
        first.get_or_insert(registration);
        sql.push(format!(
            "INSERT INTO users (id, username, username_key, email, email_key, password, first_name, last_name, is_superuser, is_active, date_joined) \
             VALUES ({}, 'guest{i}', 'guest{i}', 'guest{i}@example.com', 'guest{i}@example.com', 'x', '', '', false, true, {now})",
            literal(b, user)
        ));
        sql.push(format!(
            "INSERT INTO registrations (id, ticket_id, user_id, event_id, registered_at) VALUES ({}, {}, {}, {}, {now})",
            literal(b, registration),
            literal(b, ticket),
            literal(b, user),
            literal(b, event)
        ));
        if i == 0 {
            sql.push(format!(
                "INSERT INTO checkins (id, registration_id, event_id, ticket_id, user_id, checked_in_at, checked_in_by, forced, offline, conflict, recorded_at) \
                 VALUES ({}, {}, {}, {}, {}, {now}, NULL, false, false, false, {now})",
                literal(b, Uuid::now_v7()),
                literal(b, registration),
                literal(b, event),
                literal(b, ticket),
                literal(b, user)
            ));
        }
    }
    for statement in sql {
        db.execute_unprepared(&statement)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    event
}

/// Upgrades a database of the previous release; returns its event's id.
async fn upgraded(db: &DatabaseConnection) -> Uuid {
    let event = previous_release_with_rows(db).await;
    Migrator::up(db, None)
        .await
        .expect("this release's migrations");
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT short_code FROM registrations",
        ))
        .await
        .expect("short codes");
    let codes: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "short_code").expect("a short code"))
        .collect();
    assert_eq!(codes.len(), 200);
    let distinct: std::collections::HashSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), 200, "distinct codes");
    for code in &codes {
        assert_eq!(
            dicoevent::ticket_codes::normalize_short_code(code).as_deref(),
            Some(code.as_str()),
            "{code} is a short code as stored"
        );
    }
    let method = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT method FROM checkins",
        ))
        .await
        .expect("query")
        .expect("the check-in");
    assert_eq!(
        method.try_get::<String>("", "method").expect("method"),
        "scan"
    );
    // The unique index holds from now on.
    let copy = db
        .execute_unprepared(
            "UPDATE registrations SET short_code = (SELECT min(short_code) FROM registrations)",
        )
        .await;
    assert!(copy.is_err(), "short codes are unique");
    // Accounts made before e-mail verification existed count as verified.
    let unverified = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM email_verifications",
        ))
        .await
        .expect("query")
        .expect("a count");
    assert_eq!(unverified.try_get::<i64>("", "n").expect("n"), 0);
    // The box office: confirmed seats owing their price, nothing hidden.
    let count = |sql: &'static str| async move {
        db.query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .expect("query")
        .expect("a count")
        .try_get::<i64>("", "n")
        .expect("n")
    };
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM registrations WHERE status = 'confirmed' \
             AND hold_expires_at IS NULL AND voucher_id IS NULL AND amount_due_minor = 7500000"
        )
        .await,
        200
    );
    assert_eq!(
        count(
            "SELECT count(*) AS n FROM tickets WHERE hidden = false AND payment_window_minutes IS NULL \
             AND waitlist = false AND offered = 0 AND waitlist_offer_hours = 48"
        )
        .await,
        1
    );
    event
}

/// This release's server, started on the upgraded database, answers for the
/// old rows as for its own: every registration confirmed and owing its
/// ticket's price, with a short code; the ticket as before, none of the box
/// office switched on; the check-in made by a scan.
async fn read_back_through_the_api(url: &str, event: Uuid) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let binary = env!("CARGO_BIN_EXE_dicoevent");
    let with_env = |command: &mut std::process::Command| {
        command
            .env_clear()
            .env("DATABASE_URL", url)
            .env("DATA_DIR", dir.path().join("data"))
            .env("LOG_DIR", dir.path().join("logs"))
            .env("SECRET_KEY", "upgrade-read-back-secret-key");
    };
    let mut create = std::process::Command::new(binary);
    create.args([
        "createsuperuser",
        "--username",
        "upgrader",
        "--email",
        "up@example.com",
    ]);
    with_env(&mut create);
    let made = create
        .env("DICOEVENT_SUPERUSER_PASSWORD", crate::helpers::PASSWORD)
        .output()
        .expect("createsuperuser ran");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = crate::helpers::free_port();
    let mut serve = std::process::Command::new(binary);
    serve.args(["serve", "--no-worker"]);
    with_env(&mut serve);
    let mut server = serve
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve started");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::helpers::wait_healthy(
        &client,
        &base,
        "the server did not start on the upgraded database",
    )
    .await;
    let get = |path: String, token: Option<String>| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let mut request = client.get(&url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("sent");
            assert_eq!(response.status().as_u16(), 200, "{url}");
            response.json::<serde_json::Value>().await.expect("JSON")
        }
    };
    let login: serde_json::Value = client
        .post(format!("{base}/api/login/"))
        .json(&serde_json::json!({"username": "upgrader", "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("tokens");
    let token = login["access"]
        .as_str()
        .expect("an access token")
        .to_owned();
    let tickets = get(format!("/api/tickets/?event={event}"), None).await;
    let ticket = &tickets["tickets"][0];
    assert_eq!(tickets["count"], 1, "{tickets}");
    assert_eq!(ticket["sold"], 200);
    assert_eq!(ticket["available"], 800);
    assert_eq!(ticket["hidden"], false);
    assert_eq!(ticket["waitlist"], false);
    assert!(ticket["payment_window_minutes"].is_null());
    let mut rows = Vec::new();
    for page in [1, 2] {
        let registrations = get(
            format!("/api/registrations/?event={event}&page_size=100&page={page}"),
            Some(token.clone()),
        )
        .await;
        assert_eq!(registrations["count"], 200, "{registrations}");
        rows.extend(
            registrations["registrations"]
                .as_array()
                .expect("a list")
                .clone(),
        );
    }
    assert_eq!(rows.len(), 200);
    for row in &rows {
        assert_eq!(row["status"], "confirmed", "{row}");
        assert!(row["hold_expires_at"].is_null(), "{row}");
        assert!(row["voucher"].is_null(), "{row}");
        assert_eq!(row["amount_due"], ticket["price"], "{row}");
    }
    let first = rows[0]["id"].as_str().expect("an id");
    let code = get(
        format!("/api/registrations/{first}/ticket/"),
        Some(token.clone()),
    )
    .await;
    assert_eq!(
        code["short_code"].as_str().map(str::len),
        Some(12),
        "a short code, with its dashes: {code}"
    );
    let checkins = get(format!("/api/checkins/?event={event}"), Some(token.clone())).await;
    assert_eq!(checkins["count"], 1, "{checkins}");
    assert_eq!(checkins["checkins"][0]["method"], "scan");
    // The whole log, counted from the mark on PostgreSQL: the old entries
    // and those of this start (the superuser made, the signing key, the
    // sign-in), each once.
    let log = get("/api/audit/?page_size=100".into(), Some(token)).await;
    let entries = log["entries"].as_array().expect("entries");
    assert_eq!(log["count"], entries.len(), "{log}");
    let old = entries
        .iter()
        .filter(|e| {
            e["entity"]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("old-"))
        })
        .count();
    assert_eq!(old, OLD_AUDIT_ENTRIES, "{log}");
    assert!(entries.len() > OLD_AUDIT_ENTRIES, "{log}");
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test]
async fn a_sqlite_database_is_upgraded_in_place() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("old.sqlite3").display()
    );
    let db = Database::connect(&url).await.expect("SQLite");
    let event = upgraded(&db).await;
    db.close().await.ok();
    read_back_through_the_api(&url, event).await;
}

#[tokio::test]
async fn a_postgres_database_is_upgraded_in_place() {
    let Some(admin_url) = postgres_url() else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    let name = format!("dicoevent_upgrade_{}", Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create the database");
    let db = Database::connect(crate::helpers::replace_database(&admin_url, &name))
        .await
        .expect("the new database");
    let event = upgraded(&db).await;
    db.close().await.ok();
    read_back_through_the_api(&crate::helpers::replace_database(&admin_url, &name), event).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .ok();
}

/// Several hosts started at once each apply the migrations before serving:
/// on PostgreSQL they take turns (an advisory lock), so all succeed and the
/// schema is made once. Three `dicoevent migrate` processes on an empty
/// database, at once.
#[tokio::test]
async fn hosts_migrating_at_once_take_turns() {
    let Some(admin_url) = postgres_url() else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    let name = format!("dicoevent_hosts_{}", Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .expect("create the database");
    let url = crate::helpers::replace_database(&admin_url, &name);
    let hosts: Vec<_> = (0..3)
        .map(|n| {
            let dir = std::env::temp_dir().join(format!("{name}-{n}"));
            tokio::process::Command::new(env!("CARGO_BIN_EXE_dicoevent"))
                .arg("migrate")
                .env_clear()
                .env("DATABASE_URL", &url)
                .env("DATA_DIR", dir.join("data"))
                .env("LOG_DIR", dir.join("logs"))
                .output()
        })
        .collect();
    for (n, out) in futures::future::join_all(hosts)
        .await
        .into_iter()
        .enumerate()
    {
        let out = out.expect("dicoevent migrate ran");
        assert!(
            out.status.success(),
            "host {n}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let db = Database::connect(&url).await.expect("the new database");
    let pending = Migrator::get_pending_migrations(&db)
        .await
        .expect("migrations read");
    assert!(pending.is_empty(), "every migration applied");
    let applied = Migrator::get_applied_migrations(&db)
        .await
        .expect("migrations read");
    assert_eq!(applied.len(), Migrator::migrations().len(), "each once");
    db.close().await.ok();
    admin
        .execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .await
        .ok();
}
