//! The log files, checked on the real binary: started as a process with a
//! temporary `LOG_DIR`, driven over HTTP, stopped with SIGTERM.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{free_port, wait_healthy};

const BINARY: &str = env!("CARGO_BIN_EXE_dicoevent");
const PASSWORD: &str = "Log-Secret-Passw0rd";

fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.join("data"))
        .env("LOG_DIR", dir.join("logs"))
        .env("SECRET_KEY", "log-test-secret-key-long-enough");
    cmd
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_files_have_the_line_format_and_no_secrets() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let created = command(dir.path())
        .args([
            "createsuperuser",
            "--username",
            "logger",
            "--email",
            "logger@example.com",
        ])
        .env("DICOEVENT_SUPERUSER_PASSWORD", PASSWORD)
        .output()
        .expect("createsuperuser runs");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let port = free_port();
    let child = command(dir.path())
        .args(["serve", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let mut server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_healthy(&client, &base, "the server did not become ready").await;

    let failed = client
        .post(format!("{base}/api/login/"))
        .json(&json!({ "username": "logger", "password": "wrong-password-1" }))
        .send()
        .await
        .expect("login");
    assert_eq!(failed.status(), 401);
    // A password typed in the username field is not logged.
    let typed = client
        .post(format!("{base}/api/login/"))
        .json(&json!({ "username": "Typed-Secret-In-Username", "password": "x" }))
        .send()
        .await
        .expect("login");
    assert_eq!(typed.status(), 401);
    let tokens: Value = client
        .post(format!("{base}/api/login/"))
        .json(&json!({ "username": "logger", "password": PASSWORD }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("tokens");
    let access = tokens["access"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh"].as_str().expect("refresh").to_owned();
    let me = client
        .get(format!("{base}/api/users/me/"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), 200);

    // Force a real 500: the payments table disappears under the server.
    let db = sea_orm::Database::connect(format!(
        "sqlite://{}",
        dir.path().join("data/dicoevent.sqlite3").display()
    ))
    .await
    .expect("open the server's database");
    db.execute_unprepared("DROP TABLE payments")
        .await
        .expect("drop");
    db.close().await.ok();
    let broken = client
        .get(format!("{base}/api/payments/"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("payments");
    assert_eq!(broken.status(), 500);
    let body: Value = broken.json().await.expect("json 500");
    let request_id = body["request_id"].as_str().expect("request id").to_owned();
    assert_eq!(body["detail"], "Internal server error.");
    assert!(
        !body.to_string().contains("payments"),
        "no SQL in the body: {body}"
    );

    // SIGTERM: the server drains and flushes the files.
    let pid = server.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut exited = false;
    for _ in 0..50 {
        if server.0.try_wait().expect("wait").is_some() {
            exited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exited, "the server stops on SIGTERM");

    let application =
        std::fs::read_to_string(dir.path().join("logs/application.log")).expect("application.log");
    let errors = std::fs::read_to_string(dir.path().join("logs/error.log")).expect("error.log");
    let line = regex::Regex::new(
        r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \| (TRACE|DEBUG|INFO|WARNING|ERROR)\s* \| [A-Za-z0-9_:]+:[A-Za-z0-9_-]+:\d+ - .+$",
    )
    .expect("regex");
    for l in application.lines().chain(errors.lines()) {
        assert!(line.is_match(l), "line not in the format: {l:?}");
        let level_field = &l[26..34];
        assert_eq!(
            level_field.trim_end().len() + (8 - level_field.trim_end().len()),
            8
        );
        for secret in [
            PASSWORD,
            "wrong-password-1",
            "Typed-Secret-In-Username",
            "typed-secret-in-username",
            &access,
            &refresh,
            "log-test-secret-key-long-enough",
        ] {
            assert!(!l.contains(secret), "a secret leaked into the log: {l:?}");
        }
    }
    assert!(application.contains("Login failed for logger from 127.0.0.1"));
    assert!(application.contains("Login failed for an unknown username (digest "));
    assert!(application.contains("Login succeeded for logger"));
    assert!(
        application
            .lines()
            .any(|l| l.contains("GET /api/users/me/ 200")
                && l.contains("request_id=")
                && l.contains(" | INFO     | "))
    );
    assert!(
        errors.lines().all(|l| l.contains(" | ERROR    | ")),
        "only errors in error.log"
    );
    for log in [&application, &errors] {
        assert!(
            log.lines().any(|l| l.contains(" | ERROR    | ")
                && l.contains(&request_id)
                && l.contains("no such table")),
            "the 500 with its request id and cause is logged"
        );
    }
}
