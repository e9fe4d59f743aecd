//! Query plans at a million registrations (PostgreSQL only).
//!
//! The database is filled by `bench/scale/populate.sql` (the scale bench's
//! data: 100,000 users, 10,000 events, one of 100,000 registrations,
//! 1,000,000 registrations in all, payments, check-ins), then the real
//! server binary is started on it with PostgreSQL's `auto_explain` loaded
//! into its connections (`options` in `DATABASE_URL`) and reporting every
//! statement's plan as a notice, which the server logs. Each read of the
//! scale bench (and of the door, the box office and the attendee's pages)
//! is made once over HTTP, then a worker makes its first pass (holds,
//! waiting lists, reminders, jobs, pruning); every plan logged must read the large
//! tables through an index: a sequential scan of `registrations`,
//! `payments`, `checkins`, `users`, `events` or `audit_entries` fails the
//! test, naming the statement.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::console::Browser;
use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_dicoevent");
const LARGE_TABLES: [&str; 6] = [
    "registrations",
    "payments",
    "checkins",
    "users",
    "events",
    "audit_entries",
];

/// `bench/scale/populate.sql` with its psql variables filled in, as
/// single statements.
fn populate_statements(organizer: &str, attendee: &str) -> Vec<String> {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bench/scale/populate.sql"
    ))
    .expect("bench/scale/populate.sql");
    let mut sql = String::new();
    for line in script.lines() {
        // psql meta-commands and comments.
        if line.starts_with('\\') || line.trim_start().starts_with("--") {
            continue;
        }
        sql.push_str(line);
        sql.push('\n');
    }
    // `::type` casts stay; `:name` and `:'name'` are psql variables.
    let mut sql = sql
        .replace("::", "\u{1}")
        .replace(":'organizer'", &format!("'{organizer}'"))
        .replace(":'attendee'", &format!("'{attendee}'"));
    for (name, value) in [
        ("users", 100_000),
        ("events", 10_000),
        ("big", 100_000),
        ("others", 900_000),
        ("prunable", 20_000),
    ] {
        sql = sql.replace(&format!(":{name}"), &value.to_string());
    }
    sql.replace('\u{1}', "::")
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The server binary on the app's database, with every statement's plan
/// logged (JSON lines on stdout, into `log`): `serve --no-worker` on
/// `port`, or (`port` 0) a `worker` alone.
fn explaining_server(app: &TestApp, port: u16, log: &std::path::Path) -> Child {
    let url = app.var("DATABASE_URL").expect("DATABASE_URL");
    let options = "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 \
                   -c auto_explain.log_analyze=on -c auto_explain.log_timing=off \
                   -c auto_explain.log_level=notice -c auto_explain.log_format=json";
    let url = format!(
        "{url}{}options={}",
        if url.contains('?') { '&' } else { '?' },
        form_urlencoded::byte_serialize(options.as_bytes()).collect::<String>()
    );
    let mut command = Command::new(BINARY);
    if port == 0 {
        command.arg("worker");
    } else {
        command.args(["serve", "--no-worker"]);
    }
    for name in ["SECRET_KEY", "DATA_DIR"] {
        command.env(name, app.var(name).expect("variable"));
    }
    command
        .env("DATABASE_URL", url)
        // Two connections, so that a read made again and again meets its
        // statements again (see READS_EACH).
        .env("DATABASE_POOL_SIZE", "2")
        .env("PORT", port.to_string())
        .env("CACHE_TTL", "0")
        .env("LOG_FORMAT", "json")
        .env("LOG_DIR", app.data_dir().join("explain-logs"))
        .env("LOG_LEVEL", "warn,sqlx::postgres::notice=info")
        .stdout(std::fs::File::create(log).expect("log file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary starts")
}

/// How many times each read is made: PostgreSQL plans a pooled statement
/// for its values five times, then may keep one plan made for any value
/// (which a big event's or organiser's values can make read a large table
/// whole); over two connections, twelve reads run every statement past
/// that point, so those plans are judged too.
const READS_EACH: usize = 12;

/// Most rows a read takes from a large table (a tenth of the big event's):
/// an index that finds a handful of rows inside many, or a plan kept for
/// any value that gathers a big event's rows to keep twenty, shows here.
/// Index-only scans are not counted: the deep pages (reported, not judged,
/// by the scale bench) skip their rows in the index alone.
const MOST_ROWS_READ: f64 = 10_000.0;

/// Nodes of a plan (and its sub-plans) that read a large table whole, or
/// more of it than `MOST_ROWS_READ`. A bitmap index scan names its index,
/// not its table (`tables`: each index's table): under a `BitmapAnd` it may
/// gather a big event's 100,000 entries to keep a handful.
fn sequential_scans(
    plan: &Value,
    tables: &std::collections::HashMap<String, String>,
    found: &mut Vec<String>,
) {
    let table = plan["Relation Name"].as_str().or_else(|| {
        plan["Index Name"]
            .as_str()
            .filter(|_| plan["Node Type"] == "Bitmap Index Scan")
            .and_then(|index| tables.get(index))
            .map(String::as_str)
    });
    if let Some(table) = table
        && LARGE_TABLES.contains(&table)
    {
        let rows = plan["Actual Rows"].as_f64().unwrap_or(0.0)
            * plan["Actual Loops"].as_f64().unwrap_or(1.0)
            + plan["Rows Removed by Filter"].as_f64().unwrap_or(0.0)
            + plan["Rows Removed by Index Recheck"]
                .as_f64()
                .unwrap_or(0.0);
        if plan["Node Type"] == "Seq Scan" {
            found.push(format!("{table} (whole)"));
        } else if plan["Node Type"] != "Index Only Scan" && rows > MOST_ROWS_READ {
            found.push(format!("{table} ({rows} rows)"));
        }
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        sequential_scans(child, tables, found);
    }
}

#[tokio::test]
async fn every_read_of_the_scale_bench_is_index_backed_at_a_million_rows() {
    if postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let (organizer, org_token) = app.user_in("organiser", "organizer").await;
    let (attendee, fan_token) = app.user("attendee").await;
    let populate = sea_orm::Database::connect({
        let mut options = sea_orm::ConnectOptions::new(app.var("DATABASE_URL").expect("url"));
        options.max_connections(1).sqlx_logging(false);
        options
    })
    .await
    .expect("connect");
    use sea_orm::ConnectionTrait;
    for statement in populate_statements(&organizer, &attendee) {
        populate
            .execute_unprepared(&statement)
            .await
            .unwrap_or_else(|e| panic!("{e}: {statement}"));
    }
    // The one big event (the script's event 1).
    let big: String = populate
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT md5('event1')::uuid::text AS id",
        ))
        .await
        .expect("query")
        .expect("a row")
        .try_get("", "id")
        .expect("id");
    let index_tables: std::collections::HashMap<String, String> = populate
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT indexname, tablename FROM pg_indexes WHERE schemaname = 'public'",
        ))
        .await
        .expect("indexes")
        .iter()
        .map(|row| {
            (
                row.try_get("", "indexname").expect("indexname"),
                row.try_get("", "tablename").expect("tablename"),
            )
        })
        .collect();
    populate.close().await.ok();

    let mut browser = Browser::new(&app);
    browser.sign_in("organiser", PASSWORD).await;
    let cookie = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");

    let port = free_port();
    let log = app.data_dir().join("explain.jsonl");
    let mut server = explaining_server(&app, port, &log);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_healthy(&client, &base, "the explaining server did not start").await;

    let since = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let reads: Vec<(&str, String)> = vec![
        ("", "/api/events/".into()),
        ("", "/api/events/?page=450".into()),
        (
            "",
            "/api/events/?category=music&status=scheduled&ordering=-start_time,name".into(),
        ),
        ("", "/api/events/?search=chess%20poetry".into()),
        ("", "/api/events/?search=gamelan%20opera".into()),
        ("", "/api/events/?location=yogya&ordering=name".into()),
        ("fan", "/api/registrations/".into()),
        ("fan", "/api/payments/".into()),
        ("org", format!("/api/registrations/?event={big}")),
        ("org", format!("/api/registrations/?event={big}&page=4500")),
        ("org", "/api/registrations/".into()),
        ("org", "/api/payments/?payment_status=pending".into()),
        ("org", format!("/api/checkins/?event={big}")),
        ("org", format!("/api/events/{big}/stats/")),
        // The door, the box office and the attendee's way.
        (
            "org",
            format!("/api/events/{big}/attendees/?search=guest777"),
        ),
        (
            "org",
            format!("/api/registrations/?event={big}&status=awaiting_payment"),
        ),
        ("org", format!("/api/vouchers/?event={big}")),
        ("org", "/api/waitlist/".into()),
        ("fan", "/api/registrations/?status=expired".into()),
        ("fan", "/api/waitlist/".into()),
        ("", format!("/api/tickets/?event={big}")),
        ("console", "/console/scan/".into()),
        ("console", "/console/payments/?status=pending".into()),
        // The audit log: everything (an admin's, counted from the mark), an
        // organiser's, an event's, a guest's.
        ("admin", "/api/audit/".into()),
        ("org", "/api/audit/".into()),
        ("org", format!("/api/audit/?event={big}")),
        ("admin", format!("/api/audit/?actor={attendee}")),
        (
            "org",
            format!("/api/events/{big}/checkin-sync/?since={since}"),
        ),
        ("console", format!("/console/events/{big}/")),
        ("console", format!("/console/events/{big}/?q=guest777")),
        ("console", format!("/console/events/{big}/?page=1000")),
        (
            "console",
            format!("/console/events/{big}/registrations.csv"),
        ),
    ];
    for (who, path) in reads.iter().flat_map(|read| {
        std::iter::repeat_n(
            read,
            if read.1.ends_with(".csv") {
                1
            } else {
                READS_EACH
            },
        )
    }) {
        let mut request = client.get(format!("{base}{path}"));
        request = match *who {
            "fan" => request.bearer_auth(&fan_token),
            "org" => request.bearer_auth(&org_token),
            "admin" => request.bearer_auth(&app.admin_token),
            "console" => request.header("cookie", &cookie),
            _ => request,
        };
        let response = request.send().await.expect("sent");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let body = response.text().await.expect("body");
        if path.ends_with(".csv") {
            // Every registration once, across the 500-row chunks.
            let ids: Vec<&str> = body.lines().skip(1).map(|l| &l[1..37]).collect();
            assert_eq!(
                ids.len(),
                100_001,
                "the big event's rows and the attendee's"
            );
            let distinct: std::collections::HashSet<&&str> = ids.iter().collect();
            assert_eq!(distinct.len(), ids.len());
        }
    }
    // Stopping the server writes out its last log lines.
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let _ = server.wait();
    // A worker's first pass at this size: holds expired, waiting lists
    // swept, reminders scheduled, jobs claimed, what only grows pruned.
    let worker_log = app.data_dir().join("explain-worker.jsonl");
    let mut worker = explaining_server(&app, 0, &worker_log);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let _ = Command::new("kill").arg(worker.id().to_string()).status();
    let _ = worker.wait();

    let mut plans = 0;
    let mut offenders = Vec::new();
    let server_log = std::fs::File::open(&log).expect("server log");
    let worker_lines =
        BufReader::new(std::fs::File::open(&worker_log).expect("worker log")).lines();
    let mut worker_plans = 0;
    for (from_worker, line) in BufReader::new(server_log)
        .lines()
        .map(|l| (false, l))
        .chain(worker_lines.map(|l| (true, l)))
    {
        let Ok(line) = line else { continue };
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let Some(message) = entry["message"].as_str() else {
            continue;
        };
        let Some((_, plan)) = message.split_once("plan:") else {
            continue;
        };
        let plan: Value = serde_json::from_str(plan.trim()).expect("a JSON plan");
        plans += 1;
        worker_plans += usize::from(from_worker);
        let mut scans = Vec::new();
        sequential_scans(&plan["Plan"], &index_tables, &mut scans);
        if !scans.is_empty() {
            offenders.push(format!(
                "{scans:?} read by: {}",
                plan["Query Text"].as_str().unwrap_or_default()
            ));
        }
    }
    assert!(plans > reads.len(), "only {plans} plans were logged");
    assert!(
        worker_plans > 5,
        "only {worker_plans} plans of the worker were logged"
    );
    assert!(
        offenders.is_empty(),
        "large tables read whole or in bulk:\n{}",
        offenders.join("\n")
    );
    app.cleanup().await;
}
