//! The command line, run as the real binary.

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

    // check prints the configuration with the secret masked and reaches the database.
    let check = run(dir.path(), &["check"], &[]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(text(&check).contains("database         ok"));
    assert!(!text(&check).contains("cli-test-secret-key-long-enough"));

    // migrate is idempotent.
    let migrate = run(dir.path(), &["migrate"], &[]);
    assert!(migrate.status.success(), "{}", text(&migrate));
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
