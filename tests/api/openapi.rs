//! The OpenAPI document (`/api/schema/`) and its page (`/api/docs/`): every
//! route the router serves is documented and nothing else is, the document
//! is valid OpenAPI 3.1 (by `openapi-spec-validator`, when
//! `TEST_OPENAPI_VALIDATOR` names it), and the page renders in a real
//! browser with no network (headless Chromium, when `TEST_CHROMIUM` names it).

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp};

/// Every route the server serves and its methods: API.md §2 (authentication),
/// §4 (resources, posters included), §6 (operations) and §7 (check-in). Paths as clients
/// write them (API routes with their trailing slash).
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/login/", &["post"]),
    ("/api/token/", &["post"]),
    ("/api/token/refresh/", &["post"]),
    ("/api/logout/", &["post"]),
    ("/api/users/", &["get", "post"]),
    ("/api/users/me/", &["get"]),
    ("/api/users/{id}/", &["get", "put", "patch", "delete"]),
    ("/api/groups/", &["get", "post"]),
    ("/api/groups/{id}/", &["get", "put", "patch", "delete"]),
    ("/api/assign-roles/", &["post", "delete"]),
    ("/api/events/", &["get", "post"]),
    ("/api/events/{id}/", &["get", "put", "patch", "delete"]),
    ("/api/tickets/", &["get", "post"]),
    ("/api/tickets/{id}/", &["get", "put", "patch", "delete"]),
    ("/api/registrations/", &["get", "post"]),
    (
        "/api/registrations/{id}/",
        &["get", "put", "patch", "delete"],
    ),
    ("/api/payments/", &["get", "post"]),
    ("/api/payments/{id}/", &["get", "put", "patch", "delete"]),
    ("/api/events/upload/", &["post"]),
    ("/api/events/{id}/poster/", &["get"]),
    ("/api/media/{id}/", &["get", "delete"]),
    ("/api/registrations/{id}/ticket/", &["get"]),
    ("/api/registrations/{id}/ticket.svg", &["get"]),
    ("/api/registrations/{id}/ticket.png", &["get"]),
    ("/api/checkins/keys/", &["get"]),
    ("/api/checkins/", &["get", "post"]),
    ("/api/checkins/{id}/", &["delete"]),
    ("/api/events/{id}/checkin-sync/", &["get"]),
    ("/api/events/{id}/attendees/", &["get"]),
    ("/api/events/{id}/stats/", &["get"]),
    ("/api/audit/", &["get"]),
    ("/api/vouchers/", &["get", "post"]),
    ("/api/waitlist/", &["get", "post"]),
    ("/api/waitlist/{id}/", &["get", "delete"]),
    ("/api/waitlist/{id}/accept/", &["post"]),
    ("/api/vouchers/{id}/", &["get", "put", "patch", "delete"]),
    ("/api/webhooks/", &["get", "post"]),
    ("/api/webhooks/{id}/", &["get", "put", "patch", "delete"]),
    ("/api/webhooks/{id}/rotate-secret/", &["post"]),
    ("/api/webhooks/{id}/deliveries/", &["get"]),
    (
        "/api/webhooks/{id}/deliveries/{message_id}/retry/",
        &["post"],
    ),
    ("/api/webhooks/{id}/test/", &["post"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
    ("/api/schema/", &["get"]),
    ("/api/docs/", &["get"]),
];

/// The methods probed on each route.
const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// Every method an OpenAPI path item can hold.
const OPENAPI_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace", "query",
];

fn listed_routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(|m| (path.to_string(), m.to_string())))
        .collect()
}

async fn fetch_schema(app: &TestApp, path: &str) -> Value {
    let reply = app.get(path, None).await;
    reply.assert(200);
    let content_type = reply.headers["content-type"].to_str().unwrap_or("");
    assert!(
        content_type.starts_with("application/json"),
        "{path}: content type {content_type}"
    );
    reply.body
}

/// `(path, method)` of every operation in the document.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths object");
    let mut found = BTreeSet::new();
    for (path, item) in paths {
        for method in OPENAPI_METHODS {
            if item.get(*method).is_some() {
                found.insert((path.clone(), method.to_string()));
            }
        }
    }
    found
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("dangling reference {reference}"))
        }
        None => value,
    }
}

crate::backend_tests!(
    schema_documents_every_served_route,
    router_serves_exactly_the_listed_routes,
    docs_page_and_its_assets_are_served,
);

async fn schema_documents_every_served_route(app: &TestApp) {
    let doc = fetch_schema(app, "/api/schema/").await;
    assert_eq!(
        fetch_schema(app, "/api/schema").await,
        doc,
        "same document without the trailing slash"
    );
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.1"), "openapi version {version:?}");

    let listed = listed_routes();
    let documented = documented_routes(&doc);
    let undocumented: Vec<_> = listed.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&listed).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "documented but not in the served list: {unknown:?}"
    );

    // The bearer scheme, and 401 wherever it is accepted.
    let scheme = &doc["components"]["securitySchemes"]["jwt"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(scheme["bearerFormat"], "JWT");
    let mut operation_ids = BTreeSet::new();
    for (path, method) in &documented {
        let operation = &doc["paths"][path][method];
        let id = operation["operationId"].as_str().expect("operationId");
        assert!(operation_ids.insert(id.to_string()), "duplicate {id}");
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.contains_key("500"),
            "{method} {path} lacks its 500"
        );
        let security = operation["security"].to_string();
        if security.contains("\"jwt\"") {
            assert!(
                responses.contains_key("401"),
                "{method} {path} reads a token but lacks 401"
            );
        }
        if path.contains("{id}") {
            let params = operation["parameters"].as_array().expect("parameters");
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "id" && p["in"] == "path" && p["required"] == true),
                "{method} {path}: id parameter"
            );
        }
    }
    // Who must authenticate: a resource write, not a public read.
    let needs = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    assert_eq!(
        needs("/api/events/", "post"),
        serde_json::json!([{"jwt": []}])
    );
    // Anyone may call a public read or the login: no security requirement
    // (`[{}]` makes generators demand an authenticated client).
    for (path, method) in [
        ("/api/events/", "get"),
        ("/api/users/", "post"),
        ("/api/login/", "post"),
        ("/api/token/", "post"),
    ] {
        assert!(
            needs(path, method).is_null(),
            "{method} {path}: {}",
            needs(path, method)
        );
    }

    // What generated clients read: a partial update has no required field,
    // `ordering` takes several fields, optional headers are plain strings,
    // the scan's refusals declare what they carry.
    assert!(
        doc["components"]["schemas"]["UserUpdate"]["required"].is_null(),
        "UserUpdate requires {}",
        doc["components"]["schemas"]["UserUpdate"]["required"]
    );
    for path in ["/api/events/", "/api/tickets/"] {
        let parameters = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        let ordering = parameters
            .iter()
            .find(|p| p["name"] == "ordering")
            .expect("ordering");
        assert_eq!(ordering["schema"]["type"], "string", "{path}");
        assert_eq!(ordering["required"], false, "{path}");
        let pattern = regex::Regex::new(ordering["schema"]["pattern"].as_str().expect("pattern"))
            .expect("a valid pattern");
        let example = ordering["example"].as_str().expect("example");
        assert!(example.contains(',') && pattern.is_match(example), "{path}");
    }
    for (path, method, name) in [
        ("/api/payments/", "post", "Idempotency-Key"),
        ("/api/checkins/", "post", "Idempotency-Key"),
        ("/api/media/{id}/", "get", "If-None-Match"),
    ] {
        let parameters = doc["paths"][path][method]["parameters"]
            .as_array()
            .expect("parameters");
        let header = parameters
            .iter()
            .find(|p| p["name"] == name && p["in"] == "header")
            .unwrap_or_else(|| panic!("{method} {path}: {name}"));
        assert_eq!(header["schema"], serde_json::json!({"type": "string"}));
        assert_eq!(header["required"], false);
    }
    let scan = &doc["paths"]["/api/checkins/"]["post"]["responses"];
    for status in ["403", "404", "409"] {
        assert_eq!(
            scan[status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ScanRefusal",
            "{status}"
        );
    }
    let refusal = &doc["components"]["schemas"]["ScanRefusal"]["properties"];
    for field in ["detail", "reason", "checked_in_at", "checked_in_by"] {
        assert!(refusal.get(field).is_some(), "ScanRefusal.{field}");
    }

    // Ids: UUID strings, except group ids (integers).
    let group_id = &doc["paths"]["/api/groups/{id}/"]["get"]["parameters"][0]["schema"];
    assert_eq!(group_id["type"], "integer");
    let event_id = &doc["paths"]["/api/events/{id}/"]["get"]["parameters"][0]["schema"];
    assert_eq!(
        (&event_id["type"], &event_id["format"]),
        (&"string".into(), &"uuid".into())
    );

    // The representations, with the contract's field names.
    let schemas = &doc["components"]["schemas"];
    let fields = |name: &str| -> Vec<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {name}"))
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(
        fields("Event"),
        [
            "id",
            "name",
            "description",
            "location",
            "start_time",
            "end_time",
            "status",
            "category",
            "quota",
            "organizer",
            "timezone",
            "payment_instructions",
            "created_at",
            "updated_at"
        ]
    );
    // `timezone` and `payment_instructions` are only answered when an
    // event has them.
    for optional in ["timezone", "payment_instructions"] {
        assert!(
            !schemas["Event"]["required"]
                .as_array()
                .expect("required")
                .contains(&serde_json::json!(optional)),
            "{optional}"
        );
    }
    assert_eq!(
        fields("Ticket"),
        [
            "id",
            "event",
            "name",
            "price",
            "sales_start",
            "sales_end",
            "quota",
            "sold",
            "available",
            "payment_window_minutes",
            "hidden",
            "waitlist",
            "waitlist_offer_hours"
        ]
    );
    assert_eq!(schemas["Ticket"]["properties"]["price"]["type"], "number");
    assert_eq!(
        fields("EventList"),
        [
            "events",
            "count",
            "page",
            "page_size",
            "total_pages",
            "next",
            "previous"
        ]
    );
    assert_eq!(
        fields("Payment"),
        [
            "id",
            "registration",
            "payment_method",
            "payment_status",
            "amount_paid",
            "paid_at",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(
        schemas["EventWrite"]["required"],
        serde_json::json!([
            "name",
            "description",
            "location",
            "start_time",
            "end_time",
            "quota",
            "category"
        ])
    );

    // Parameters: filters, ordering, pagination; the idempotency header.
    let names = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| p["name"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for name in [
        "category",
        "status",
        "organizer",
        "location",
        "search",
        "start_after",
        "start_before",
        "ordering",
        "page",
        "page_size",
    ] {
        assert!(
            names("/api/events/", "get").contains(&name.to_string()),
            "{name}"
        );
    }
    let ordering = doc["paths"]["/api/events/"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "ordering"))
        .expect("ordering parameter");
    let ordering = resolve(&doc, &ordering["schema"]);
    let pattern = regex::Regex::new(ordering["pattern"].as_str().expect("ordering pattern"))
        .expect("a valid pattern");
    for accepted in ["-start_time", "name,-quota", "created_at,start_time,-name"] {
        assert!(pattern.is_match(accepted), "{accepted}: {ordering}");
    }
    for refused in ["size", "name,", "-name,,quota", "name;quota"] {
        assert!(!pattern.is_match(refused), "{refused}: {ordering}");
    }
    let payment_params = &doc["paths"]["/api/payments/"]["post"]["parameters"];
    assert_eq!(payment_params[0]["name"], "Idempotency-Key");
    assert_eq!(payment_params[0]["in"], "header");

    // The poster upload: multipart with a binary `image` and an `event`.
    let upload = &doc["paths"]["/api/events/upload/"]["post"]["requestBody"]["content"]["multipart/form-data"]
        ["schema"];
    let upload = resolve(&doc, upload);
    assert_eq!(upload["properties"]["image"]["format"], "binary");
    assert_eq!(upload["properties"]["event"]["format"], "uuid");

    // DRF-shaped errors.
    let response =
        |name: &str| &doc["components"]["responses"][name]["content"]["application/json"]["schema"];
    let bad_request = resolve(&doc, response("BadRequest"));
    assert_eq!(bad_request["oneOf"].as_array().map(Vec::len), Some(2));
    let field_errors = &schemas["FieldErrors"];
    assert_eq!(field_errors["additionalProperties"]["type"], "array");
    assert_eq!(
        field_errors["additionalProperties"]["items"]["type"],
        "string"
    );
    for name in [
        "Forbidden",
        "NotFound",
        "MethodNotAllowed",
        "Conflict",
        "PayloadTooLarge",
        "UnsupportedMediaType",
        "Throttled",
        "ServiceUnavailable",
    ] {
        let schema = resolve(&doc, response(name));
        assert_eq!(schema["required"], serde_json::json!(["detail"]), "{name}");
    }
    let internal = resolve(&doc, response("InternalServerError"));
    assert_eq!(
        internal["required"],
        serde_json::json!(["detail", "request_id"])
    );
}

/// The listed methods are served on each listed path (not 405; not 404 on a
/// path without an id) and no other method is (405). Probed anonymously and
/// without bodies, so nothing changes.
async fn router_serves_exactly_the_listed_routes(app: &TestApp) {
    let mut wrong = Vec::new();
    for (path, methods) in ROUTES {
        let concrete = if path.starts_with("/api/groups/") {
            path.replace("{id}", "999999")
        } else {
            path.replace("{id}", &Uuid::new_v4().to_string())
        };
        for method in METHODS {
            let listed = methods.contains(method);
            let verb = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let status = app
                .client
                .request(verb, app.url(&concrete))
                .send()
                .await
                .expect("request sent")
                .status();
            let served = status != StatusCode::METHOD_NOT_ALLOWED
                && (path.contains("{id}") || status != StatusCode::NOT_FOUND);
            if listed != served {
                wrong.push(format!(
                    "{} {path}: {status} ({})",
                    method.to_uppercase(),
                    if listed {
                        "listed, not served"
                    } else {
                        "served, not listed"
                    }
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "router and route list differ:\n{}",
        wrong.join("\n")
    );
}

/// The page and the Swagger UI assets it loads, with and without the
/// trailing slash the server trims.
async fn docs_page_and_its_assets_are_served(app: &TestApp) {
    for (path, content_type) in [
        ("/api/docs/", "text/html"),
        ("/api/docs", "text/html"),
        ("/api/docs/index.html", "text/html"),
        ("/api/docs/swagger-ui.css", "text/css"),
        ("/api/docs/index.css", "text/css"),
        ("/api/docs/swagger-ui-bundle.js", "javascript"),
        ("/api/docs/swagger-ui-standalone-preset.js", "javascript"),
        ("/api/docs/swagger-initializer.js", "javascript"),
        ("/api/docs/favicon-32x32.png", "image/png"),
    ] {
        let res = app
            .client
            .get(app.url(path))
            .send()
            .await
            .expect("request sent");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let got = res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        assert!(got.contains(content_type), "{path}: {got}");
        let body = res.text().await.expect("body");
        if path == "/api/docs/swagger-initializer.js" {
            assert!(body.contains("\"url\": \"/api/schema/\""), "{body}");
            assert!(body.contains("\"validatorUrl\": \"none\""), "{body}");
        }
        if content_type == "text/html" {
            // Relative asset links resolve under /api/docs/ either way.
            assert!(body.contains("<base href=\"/api/docs/\">"), "{body}");
            assert!(body.contains("swagger-initializer.js"), "{body}");
        }
    }
    let missing = app.get("/api/docs/no-such-file.js", None).await;
    missing.assert(404);
    assert_eq!(missing.body["detail"], "Not found.");
}

/// A temporary file holding the document as served.
async fn schema_file() -> (TestApp, tempfile::NamedTempFile) {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let doc = fetch_schema(&app, "/api/schema/").await;
    let file = tempfile::Builder::new()
        .prefix("dicoevent-openapi-")
        .suffix(".json")
        .tempfile()
        .expect("temporary file");
    std::fs::write(file.path(), serde_json::to_vec_pretty(&doc).expect("json")).expect("write");
    (app, file)
}

fn tool(variable: &str) -> Option<String> {
    std::env::var(variable)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_passes_openapi_spec_validator() {
    let Some(validator) = tool("TEST_OPENAPI_VALIDATOR") else {
        eprintln!("skipped: TEST_OPENAPI_VALIDATOR is not set");
        return;
    };
    let (app, file) = schema_file().await;
    let output = tokio::process::Command::new(&validator)
        .arg(file.path())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {validator}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // On failure the validator may print the whole document: keep the head.
    let head = |s: &str| s.chars().take(4000).collect::<String>();
    assert!(
        output.status.success(),
        "openapi-spec-validator failed ({}):\n{}\n{}",
        output.status,
        head(&stdout),
        head(&stderr)
    );
    println!("openapi-spec-validator: {}", stdout.trim());
    app.cleanup().await;
}

/// Loads a page in headless Chromium and returns the DOM after its scripts ran.
async fn rendered_dom(chromium: &str, url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile directory");
    let run = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=10000", "--dump-dom", url])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("{chromium} did not finish within 120 s"))
        .unwrap_or_else(|e| panic!("cannot run {chromium}: {e}"));
    assert!(
        output.status.success(),
        "{chromium} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
            .chars()
            .take(4000)
            .collect::<String>()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_lists_the_endpoints_in_a_browser() {
    let Some(chromium) = tool("TEST_CHROMIUM") else {
        eprintln!("skipped: TEST_CHROMIUM is not set");
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await;
    for page in ["/api/docs/", "/api/docs"] {
        let dom = rendered_dom(&chromium, &app.url(page)).await;
        // Swagger UI rendered the document it fetched from /api/schema/.
        for expected in [
            "DicoEvent API",
            "data-path=\"/api/events/\"",
            "data-path=\"/api/events/{id}/\"",
            "data-path=\"/api/events/upload/\"",
            "data-path=\"/api/login/\"",
        ] {
            assert!(
                dom.contains(expected),
                "{page}: {expected} not in the rendered page ({} bytes):\n{}",
                dom.len(),
                dom.chars().take(3000).collect::<String>()
            );
        }
        println!(
            "{page}: rendered {} bytes of DOM listing /api/events/",
            dom.len()
        );
    }
    app.cleanup().await;
}
