//! Posters: uploads validated by their bytes, stored objects consistent with
//! rows, on local files and on a real S3 server (`TEST_S3_*`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, Reply, TestApp, png};

/// Runs each test with local storage and, when `TEST_S3_ENDPOINT` is set,
/// with S3 (a fresh bucket per test, created by the server at start-up).
macro_rules! storage_tests {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let app = TestApp::spawn(Backend::Sqlite).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
            use crate::helpers::{Backend, TestApp};
        }
        mod s3 {
            use crate::helpers::{Backend, TestApp};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(vars) = super::s3_vars() else {
                        eprintln!("skipped: TEST_S3_ENDPOINT is not set");
                        return;
                    };
                    let extra: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let app = TestApp::spawn_with(Backend::Sqlite, &extra).await;
                    super::$name(&app).await;
                    app.cleanup().await;
                }
            )*
        }
    };
}

storage_tests!(
    accepted_uploads_are_served,
    refused_uploads_write_nothing,
    deletes_remove_stored_objects,
    orphans_are_swept,
);

pub fn s3_vars() -> Option<Vec<(&'static str, String)>> {
    let endpoint = std::env::var("TEST_S3_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())?;
    Some(vec![
        ("MINIO_ENDPOINT_URL", endpoint),
        (
            "MINIO_ACCESS_KEY",
            std::env::var("TEST_S3_ACCESS_KEY").unwrap_or_default(),
        ),
        (
            "MINIO_SECRET_KEY",
            std::env::var("TEST_S3_SECRET_KEY").unwrap_or_default(),
        ),
        ("MINIO_BUCKET_NAME", format!("t{}", Uuid::new_v4().simple())),
    ])
}

async fn upload(
    app: &TestApp,
    token: Option<&str>,
    event: Option<&str>,
    file: Option<(Vec<u8>, &str, &str)>,
) -> Reply {
    let mut form = Form::new();
    if let Some(event) = event {
        form = form.text("event", event.to_string());
    }
    if let Some((bytes, name, mime)) = file {
        form = form.part(
            "image",
            Part::bytes(bytes)
                .file_name(name.to_string())
                .mime_str(mime)
                .expect("mime"),
        );
    }
    let mut req = app
        .client
        .post(app.url("/api/events/upload/"))
        .multipart(form);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    TestApp::reply(req.send().await.expect("upload sent")).await
}

async fn stored_objects(app: &TestApp) -> Vec<String> {
    app.state
        .storage
        .list("posters")
        .await
        .expect("list objects")
        .into_iter()
        .map(|o| o.location.to_string())
        .collect()
}

async fn accepted_uploads_are_served(app: &TestApp) {
    let (_, olga) = app.user_in("olga", "organizer").await;
    let event = app.create_event(&olga, "Poster show", 10).await;

    // A PNG sent as text/plain named poster.bin: the bytes decide.
    let first = upload(
        app,
        Some(&olga),
        Some(&event),
        Some((png(1000), "poster.bin", "text/plain")),
    )
    .await;
    first.assert(201);
    let body = &first.body;
    assert_eq!(body["event"], event.as_str());
    assert_eq!(body["content_type"], "image/png");
    assert_eq!(body["original_name"], "poster.bin");
    assert_eq!(body["size"], 1000);
    let image = body["image"].as_str().expect("image");
    assert!(
        image.starts_with(&format!("posters/{event}/")) && image.ends_with(".png"),
        "{image}"
    );
    assert!(!image.contains("poster.bin"));
    for key in [
        "id",
        "event",
        "image",
        "original_name",
        "content_type",
        "size",
        "url",
        "uploaded_at",
    ] {
        assert!(body.get(key).is_some(), "missing {key}");
    }

    // Exactly 500 KiB is accepted.
    let second = upload(
        app,
        Some(&olga),
        Some(&event),
        Some((png(512_000), "big.png", "image/png")),
    )
    .await;
    second.assert(201);
    assert_eq!(second.body["size"], 512_000);

    // Newest first.
    let listed = app.get(&format!("/api/events/{event}/poster/"), None).await;
    listed.assert(200);
    let ids: Vec<&str> = listed
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, [second.id(), first.id()]);
    let empty_event = app.create_event(&olga, "No posters", 1).await;
    assert_eq!(
        app.get(&format!("/api/events/{empty_event}/poster"), None)
            .await
            .body,
        json!([])
    );
    app.get(&format!("/api/events/{}/poster/", Uuid::new_v4()), None)
        .await
        .assert(404);

    // The url serves the bytes: presigned on S3, /api/media/{id}/ locally.
    let url = first.body["url"].as_str().expect("url").to_owned();
    let absolute = if url.starts_with('/') {
        app.url(&url)
    } else {
        url.clone()
    };
    if app.state.storage.is_s3() {
        assert!(url.contains("X-Amz-Signature"), "{url}");
    } else {
        assert_eq!(url, format!("/api/media/{}/", first.id()));
    }
    let fetched = reqwest::get(&absolute).await.expect("GET url");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.expect("bytes").to_vec(), png(1000));

    // /api/media/{id}/ on every backend, with caching headers.
    let served = app
        .client
        .get(app.url(&format!("/api/media/{}/", first.id())))
        .send()
        .await
        .expect("media");
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["content-length"], "1000");
    assert!(headers.contains_key("cache-control"));
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    assert_eq!(served.bytes().await.expect("bytes").len(), 1000);
    let again = app
        .client
        .get(app.url(&format!("/api/media/{}", first.id())))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(again.status(), 304);
    app.get(&format!("/api/media/{}/", Uuid::new_v4()), None)
        .await
        .assert(404);
    app.get("/api/media/not-a-uuid/", None).await.assert(404);
    assert_eq!(stored_objects(app).await.len(), 2);
}

async fn refused_uploads_write_nothing(app: &TestApp) {
    let (_, olga) = app.user_in("olga", "organizer").await;
    let (_, otto) = app.user_in("otto", "organizer").await;
    let event = app.create_event(&olga, "Careful", 10).await;
    let e = event.as_str();
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec();
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<(Vec<u8>, &'a str, &'a str)>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        ("no file", Some(e), None, 400, "image"),
        (
            "empty file",
            Some(e),
            Some((Vec::new(), "x.png", "image/png")),
            400,
            "image",
        ),
        (
            "512001 bytes",
            Some(e),
            Some((png(512_001), "x.png", "image/png")),
            400,
            "image",
        ),
        (
            "text named x.jpg",
            Some(e),
            Some((b"just some text".to_vec(), "x.jpg", "image/jpeg")),
            400,
            "image",
        ),
        (
            "svg",
            Some(e),
            Some((svg, "x.svg", "image/svg+xml")),
            400,
            "image",
        ),
        (
            "html as png",
            Some(e),
            Some((html, "x.png", "image/png")),
            400,
            "image",
        ),
        (
            "no event",
            None,
            Some((png(100), "x.png", "image/png")),
            400,
            "event",
        ),
        (
            "malformed event",
            Some("not-a-uuid"),
            Some((png(100), "x.png", "image/png")),
            400,
            "event",
        ),
    ];
    for (what, event_field, file, status, field) in cases {
        let reply = upload(app, Some(&olga), event_field, file).await;
        assert_eq!(reply.status.as_u16(), status, "{what}: {}", reply.body);
        assert!(
            reply.body.get(field).is_some(),
            "{what}: names {field}: {}",
            reply.body
        );
    }
    let unknown = Uuid::new_v4().to_string();
    let reply = upload(
        app,
        Some(&olga),
        Some(&unknown),
        Some((png(100), "x.png", "image/png")),
    )
    .await;
    reply.assert(400);
    assert!(reply.body.get("event").is_some());
    upload(app, None, Some(e), Some((png(100), "x.png", "image/png")))
        .await
        .assert(401);
    upload(
        app,
        Some(&otto),
        Some(e),
        Some((png(100), "x.png", "image/png")),
    )
    .await
    .assert(403);
    let (_, user) = app.user("plain").await;
    upload(
        app,
        Some(&user),
        Some(e),
        Some((png(100), "x.png", "image/png")),
    )
    .await
    .assert(403);
    // JSON instead of multipart.
    app.post("/api/events/upload/", Some(&olga), json!({ "event": e }))
        .await
        .assert(415);

    // An oversized body is read to the end and answered 400, not a reset.
    let big = upload(
        app,
        Some(&olga),
        Some(e),
        Some((png(3 * 1024 * 1024), "x.png", "image/png")),
    )
    .await;
    big.assert(400);

    assert_eq!(
        app.get(&format!("/api/events/{e}/poster/"), None)
            .await
            .body,
        json!([])
    );
    assert!(stored_objects(app).await.is_empty(), "no object was stored");
}

async fn deletes_remove_stored_objects(app: &TestApp) {
    let (_, olga) = app.user_in("olga", "organizer").await;
    let (_, otto) = app.user_in("otto", "organizer").await;
    let event = app.create_event(&olga, "Short lived", 10).await;
    let a = upload(
        app,
        Some(&olga),
        Some(&event),
        Some((png(200), "a.png", "image/png")),
    )
    .await;
    let b = upload(
        app,
        Some(&olga),
        Some(&event),
        Some((png(300), "b.png", "image/png")),
    )
    .await;
    a.assert(201);
    b.assert(201);
    assert_eq!(stored_objects(app).await.len(), 2);

    app.delete(&format!("/api/media/{}/", a.id()), None)
        .await
        .assert(401);
    app.delete(&format!("/api/media/{}/", a.id()), Some(&otto))
        .await
        .assert(403);
    app.delete(&format!("/api/media/{}/", a.id()), Some(&olga))
        .await
        .assert(204);
    app.get(&format!("/api/media/{}/", a.id()), None)
        .await
        .assert(404);
    let left = stored_objects(app).await;
    assert_eq!(left, [b.body["image"].as_str().expect("key").to_owned()]);

    // An admin may delete posters of anyone's event.
    let (_, boss) = app.user_in("boss", "admin").await;
    let c = upload(
        app,
        Some(&boss),
        Some(&event),
        Some((png(300), "c.png", "image/png")),
    )
    .await;
    c.assert(201);
    app.delete(&format!("/api/media/{}", c.id()), Some(&boss))
        .await
        .assert(204);

    // Deleting the event removes its posters' objects.
    app.delete(&format!("/api/events/{event}/"), Some(&olga))
        .await
        .assert(204);
    assert!(stored_objects(app).await.is_empty());
    app.get(&format!("/api/media/{}/", b.id()), None)
        .await
        .assert(404);
}

async fn orphans_are_swept(app: &TestApp) {
    let (_, olga) = app.user_in("olga", "organizer").await;
    let event = app.create_event(&olga, "Sweep", 10).await;
    let kept = upload(
        app,
        Some(&olga),
        Some(&event),
        Some((png(200), "a.png", "image/png")),
    )
    .await;
    kept.assert(201);
    // An object without a row, as a crash between store and commit leaves.
    let orphan = format!("posters/{event}/{}.png", Uuid::new_v4());
    app.state
        .storage
        .put(&orphan, png(100).into())
        .await
        .expect("put orphan");
    assert_eq!(stored_objects(app).await.len(), 2);
    // Young objects are left alone (their upload may still be committing).
    let young = dicoevent::domain::posters::sweep_orphans(&app.state, Duration::from_secs(600))
        .await
        .expect("sweep");
    assert_eq!(young, 0);
    let removed = dicoevent::domain::posters::sweep_orphans(&app.state, Duration::ZERO)
        .await
        .expect("sweep");
    assert_eq!(removed, 1);
    assert_eq!(
        stored_objects(app).await,
        [kept.body["image"].as_str().expect("key").to_owned()]
    );
}

/// A private s3s-fs server that the test can stop and start again.
struct S3Server {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl S3Server {
    fn binary() -> Option<String> {
        let bin = std::env::var("TEST_S3FS_BIN").unwrap_or_else(|_| "s3s-fs".into());
        Command::new(&bin)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
            .map(|_| bin)
    }

    fn start(&mut self) {
        let bin = Self::binary().expect("s3s-fs");
        let child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                "outage",
                "--secret-key",
                "outage-secret",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        self.child = Some(child);
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("s3s-fs did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_outage_is_a_503_and_writes_nothing() {
    if S3Server::binary().is_none() {
        eprintln!("skipped: s3s-fs is not installed (set TEST_S3FS_BIN or put it on PATH)");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut s3 = S3Server {
        child: None,
        port,
        dir: tempfile::tempdir().expect("dir"),
    };
    s3.start();
    let endpoint = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("MINIO_ENDPOINT_URL", &endpoint),
            ("MINIO_ACCESS_KEY", "outage"),
            ("MINIO_SECRET_KEY", "outage-secret"),
        ],
    )
    .await;
    let (_, olga) = app.user_in("olga", "organizer").await;
    let event = app.create_event(&olga, "Outage", 10).await;
    upload(
        &app,
        Some(&olga),
        Some(&event),
        Some((png(100), "a.png", "image/png")),
    )
    .await
    .assert(201);

    s3.stop();
    let down = upload(
        &app,
        Some(&olga),
        Some(&event),
        Some((png(100), "b.png", "image/png")),
    )
    .await;
    down.assert(503);
    assert!(down.body["detail"].is_string());
    assert_eq!(
        down.headers["retry-after"], "2",
        "a 503 says when to try again"
    );
    let ready = app.get("/readyz", None).await;
    ready.assert(200);
    assert_eq!(ready.body["storage"]["status"], "unavailable");
    let listed: Value = app
        .get(&format!("/api/events/{event}/poster/"), None)
        .await
        .body;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "no row for the failed upload"
    );

    s3.start();
    upload(
        &app,
        Some(&olga),
        Some(&event),
        Some((png(100), "c.png", "image/png")),
    )
    .await
    .assert(201);
    let listed = app
        .get(&format!("/api/events/{event}/poster/"), None)
        .await
        .body;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert_eq!(stored_objects(&app).await.len(), 2, "one object per row");
    app.cleanup().await;
}
