//! The command line, run as the real binary.

use sea_orm::ConnectionTrait;
use std::path::Path;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_dicoevent");
const PASSWORD: &str = "Cli-Passw0rd-Good";

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BINARY);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_DIR", dir.join("logs"))
        .env("SECRET_KEY", "cli-test-secret-key-long-enough")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn createsuperuser_truncate_and_check() {
    let dir = tempfile::tempdir().expect("dir");
    let pw = [("DICOEVENT_SUPERUSER_PASSWORD", PASSWORD)];
    let first = run(
        dir.path(),
        &[
            "createsuperuser",
            "--username",
            "Aras",
            "--email",
            "aras@example.com",
        ],
        &pw,
    );
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        dir.path().join("data/dicoevent.sqlite3").exists(),
        "SQLite in data/ by default"
    );

    // The same name again (in another case) is a clear error, not a panic.
    let again = run(
        dir.path(),
        &[
            "createsuperuser",
            "--username",
            "aras",
            "--email",
            "other@example.com",
        ],
        &pw,
    );
    assert!(!again.status.success());
    assert!(
        text(&again).contains("username: A user with that username already exists."),
        "{}",
        text(&again)
    );
    assert!(!text(&again).contains("panicked"));

    // A weak password is refused with Django's message.
    let weak = run(
        dir.path(),
        &[
            "createsuperuser",
            "--username",
            "root2",
            "--email",
            "root2@example.com",
            "--password",
            "12345678",
        ],
        &[],
    );
    assert!(!weak.status.success());
    assert!(
        text(&weak).contains("This password is entirely numeric."),
        "{}",
        text(&weak)
    );

    // truncate refuses without --yes, and keeps superusers with it.
    let refused = run(dir.path(), &["truncate"], &[]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("--yes"));
    let truncated = run(dir.path(), &["truncate", "--yes"], &[]);
    assert!(truncated.status.success(), "{}", text(&truncated));
    let still_there = run(
        dir.path(),
        &[
            "createsuperuser",
            "--username",
            "ARAS",
            "--email",
            "x@example.com",
        ],
        &pw,
    );
    assert!(
        text(&still_there).contains("already exists"),
        "the superuser survived truncate"
    );
    // Both commands are in the audit log, by the command line; truncate
    // kept it.
    let file = dir.path().join("data/dicoevent.sqlite3");
    let logged = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            let db = sea_orm::Database::connect(format!("sqlite://{}", file.display()))
                .await
                .expect("open the database");
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    "SELECT action FROM audit_entries WHERE actor_type = 'cli' ORDER BY id",
                ))
                .await
                .expect("read the audit log");
            rows.iter()
                .map(|r| r.try_get_by_index::<String>(0).expect("action"))
                .collect::<Vec<_>>()
        });
    assert_eq!(logged, ["user.created", "data.truncated"]);

    // check prints the configuration with the secret masked and reaches the database.
    let check = run(dir.path(), &["check"], &[]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("database         ok"));
    assert!(!text(&check).contains("cli-test-secret-key-long-enough"));

    // migrate is idempotent, and says there was nothing to do.
    let migrate = run(dir.path(), &["migrate"], &[]);
    assert!(migrate.status.success(), "{}", text(&migrate));
    assert!(
        text(&migrate).contains("No migrations to apply"),
        "{}",
        text(&migrate)
    );

    // truncate leaves an INFO line in the log, like the API's writes.
    let log = std::fs::read_to_string(dir.path().join("logs/application.log")).expect("log");
    assert!(
        log.lines()
            .any(|l| l.contains(" | INFO     | ") && l.contains("All data deleted")),
        "{log}"
    );
}

#[test]
fn migrate_says_what_it_applied_and_check_lists_pending_ones() {
    let dir = tempfile::tempdir().expect("dir");
    // A new, empty database: every migration is pending, and check says so.
    let check = run(dir.path(), &["check"], &[]);
    let said = text(&check);
    assert!(said.contains("pending"), "{said}");
    assert!(said.contains("m20261201_000006_cache_stamp"), "{said}");
    assert!(!said.contains("database         ok"), "{said}");

    let first = run(dir.path(), &["migrate"], &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        regex::Regex::new(r"Applied \d+ migrations")
            .expect("regex")
            .is_match(&text(&first)),
        "{}",
        text(&first)
    );
    assert!(text(&first).contains("m20261125_000001_core_schema"));
    let second = run(dir.path(), &["migrate"], &[]);
    assert!(
        text(&second).contains("No migrations to apply"),
        "{}",
        text(&second)
    );
    let check = run(dir.path(), &["check"], &[]);
    assert!(
        text(&check).contains("database         ok"),
        "{}",
        text(&check)
    );
}

#[test]
fn send_reminders_says_what_it_does() {
    let dir = tempfile::tempdir().expect("dir");
    let help = run(dir.path(), &["send-reminders", "--help"], &[]);
    assert!(text(&help).contains("confirmations"), "{}", text(&help));
    let once = run(dir.path(), &["send-reminders"], &[]);
    assert!(once.status.success(), "{}", text(&once));
    assert!(
        text(&once).contains("0 reminders scheduled; 0 mails sent"),
        "{}",
        text(&once)
    );
}

#[test]
fn check_gives_one_readable_cause_for_unreachable_object_storage() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(
        dir.path(),
        &["check"],
        &[
            ("MINIO_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("MINIO_ACCESS_KEY", "key"),
            ("MINIO_SECRET_KEY", "secret-secret"),
        ],
    );
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Services:"))
        .find(|l| l.trim_start().starts_with("posters"))
        .expect("a posters line");
    assert!(line.contains("UNREACHABLE"), "{line}");
    assert!(
        line.matches("onnection refused").count() <= 1,
        "one cause, once: {line}"
    );
}

/// On a terminal, a refused password is asked again (as Django's
/// createsuperuser does) instead of ending the command.
#[test]
fn interactive_createsuperuser_asks_again_for_a_refused_password() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("dir");
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let mut child = Command::new("script")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_DIR", dir.path().join("logs"))
        .env("SECRET_KEY", "cli-test-secret-key-long-enough")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{BINARY} createsuperuser --username Tty --email tty@example.com"),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script runs");
    let mut stdin = child.stdin.take().expect("stdin");
    // A numeric password (refused), two that differ, then a good one.
    for line in [
        "12345678",
        "12345678",
        "Tty-Passw0rd-Good",
        "Tty-Passw0rd-Other",
        "Tty-Passw0rd-Good",
        "Tty-Passw0rd-Good",
    ] {
        std::thread::sleep(std::time::Duration::from_millis(400));
        let _ = writeln!(stdin, "{line}");
    }
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(stdin);
    if status.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let said = text(&out);
    assert!(status.is_some_and(|s| s.success()), "{said}");
    assert!(
        said.contains("This password is entirely numeric."),
        "{said}"
    );
    assert!(said.contains("differ"), "{said}");
    assert!(said.contains("Superuser Tty created."), "{said}");
}

#[test]
fn bad_configuration_names_the_variable() {
    let dir = tempfile::tempdir().expect("dir");
    for (var, value) in [
        ("PORT", "eighty"),
        ("TIME_ZONE", "Mars/Olympus"),
        ("JWT_ACCESS_TTL", "forever"),
        ("DATABASE_URL", "mysql://nope"),
        ("LOG_FORMAT", "xml"),
    ] {
        let out = run(dir.path(), &["check"], &[(var, value)]);
        assert!(!out.status.success(), "{var}={value} accepted");
        let said = text(&out);
        assert!(said.contains(var), "{var}: {said}");
        assert!(
            !said.contains("panicked") && !said.contains("RUST_BACKTRACE"),
            "{said}"
        );
    }
}

#[test]
fn an_unreachable_database_is_reported_by_name() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(
        dir.path(),
        &["migrate"],
        &[(
            "DATABASE_URL",
            "postgres://nobody:secretpw@127.0.0.1:1/none",
        )],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains(
            "cannot connect to PostgreSQL at postgres://nobody:********@127.0.0.1:1/none"
        ),
        "{said}"
    );
    assert!(
        !said.contains("secretpw") && !said.contains("panicked"),
        "{said}"
    );
}
