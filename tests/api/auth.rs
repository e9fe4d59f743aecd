//! Authentication: login, refresh, logout, throttling, forged tokens and
//! imported Django password hashes (API.md §1 errors, §2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use dicoevent::db::entities::user;

use crate::helpers::{PASSWORD, Reply, SUPERUSER, TestApp};

crate::backend_tests!(
    login_returns_a_token_pair,
    login_refuses_bad_credentials_alike,
    login_requires_both_fields,
    refresh_issues_an_access_token,
    refresh_refuses_invalid_tokens,
    logout_requires_authentication,
    logout_revokes_the_refresh_token,
    login_is_throttled_after_ten_failures,
    concurrent_wrong_passwords_are_checked_at_most_the_limit,
    anonymous_request_to_protected_route_is_401,
    forged_tokens_are_refused_on_protected_and_public_routes,
    token_of_a_deleted_user_is_refused,
    token_of_a_deactivated_user_is_refused,
    imported_django_hash_logs_in_and_is_rehashed,
    concurrent_first_requests_each_resolve_their_own_caller,
);

/// The harness's `SECRET_KEY`.
const SECRET: &str = "test-secret-key-of-decent-length";
const BAD_CREDENTIALS: &str = "No active account found with the given credentials";

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serialise"))
}

/// Decodes the (unverified) payload of a JWT.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// SimpleJWT-style claims.
fn claims(token_type: &str, user_id: &str, iat: i64, exp: i64) -> Value {
    json!({
        "token_type": token_type,
        "exp": exp,
        "iat": iat,
        "jti": Uuid::new_v4().simple().to_string(),
        "user_id": user_id,
    })
}

fn sign(alg: Algorithm, claims: &Value, key: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("token signed")
}

/// Changes one character in the middle of the signature.
fn tamper_signature(token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').expect("three parts");
    let mut sig: Vec<u8> = sig.as_bytes().to_vec();
    let i = sig.len() / 2;
    sig[i] = if sig[i] == b'A' { b'B' } else { b'A' };
    format!("{head}.{}", String::from_utf8(sig).expect("ascii"))
}

#[track_caller]
fn assert_json(reply: &Reply) {
    let ct = reply
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "Content-Type {ct:?} on {} {}",
        reply.status,
        reply.body
    );
}

/// Checks a 401 against the contract; returns a description of what is
/// wrong, if anything.
fn check_401(reply: &Reply, token_given: bool) -> Option<String> {
    let mut problems = Vec::new();
    if reply.status.as_u16() != 401 {
        problems.push(format!("status {}", reply.status));
    }
    match reply
        .headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
    {
        Some("Bearer realm=\"api\"") => {}
        other => problems.push(format!("WWW-Authenticate {other:?}")),
    }
    if reply.body["detail"].as_str().is_none_or(str::is_empty) {
        problems.push("no \"detail\"".into());
    }
    if token_given && reply.body["code"] != "token_not_valid" {
        problems.push(format!("code {}", reply.body["code"]));
    }
    let json = reply
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        problems.push("not application/json".into());
    }
    if problems.is_empty() {
        None
    } else {
        Some(format!("{} (body {})", problems.join(", "), reply.body))
    }
}

#[track_caller]
fn assert_401(reply: &Reply, token_given: bool) {
    if let Some(problem) = check_401(reply, token_given) {
        panic!("not a contract 401: {problem}");
    }
}

async fn set_active(app: &TestApp, user_id: &str, active: bool) {
    let id = Uuid::parse_str(user_id).expect("uuid");
    let found = user::Entity::find_by_id(id)
        .one(app.state.db.conn())
        .await
        .expect("query")
        .expect("user exists");
    let mut model = found.into_active_model();
    model.is_active = Set(active);
    model.update(app.state.db.conn()).await.expect("update");
}

async fn login_returns_a_token_pair(app: &TestApp) {
    let reply = app.login(SUPERUSER, PASSWORD).await;
    reply.assert(200);
    assert_json(&reply);
    let access = reply.body["access"].as_str().expect("access").to_owned();
    let refresh = reply.body["refresh"].as_str().expect("refresh").to_owned();
    assert_eq!(access.split('.').count(), 3, "access is a JWT");
    assert_eq!(refresh.split('.').count(), 3, "refresh is a JWT");

    let a = payload(&access);
    assert_eq!(a["token_type"], "access");
    assert_eq!(a["user_id"], app.superuser_id.as_str());
    assert!(a["jti"].is_string());
    let a_life = a["exp"].as_i64().expect("exp") - a["iat"].as_i64().expect("iat");
    assert_eq!(a_life, 3 * 3600, "access tokens live 3 hours");
    let r = payload(&refresh);
    assert_eq!(r["token_type"], "refresh");
    assert_eq!(r["user_id"], app.superuser_id.as_str());
    let r_life = r["exp"].as_i64().expect("exp") - r["iat"].as_i64().expect("iat");
    assert_eq!(r_life, 24 * 3600, "refresh tokens live 1 day");
    assert_ne!(a["jti"], r["jti"]);

    let me = app.get("/api/users/me/", Some(&access)).await;
    me.assert(200);
    assert_eq!(me.body["username"], SUPERUSER);
}

async fn login_refuses_bad_credentials_alike(app: &TestApp) {
    let (id, _) = app.user("dora").await;
    let wrong_password = app.login("dora", "Not-the-passw0rd").await;
    let unknown_user = app.login("nobody-here", PASSWORD).await;
    set_active(app, &id, false).await;
    let inactive = app.login("dora", PASSWORD).await;
    for (what, reply) in [
        ("wrong password", &wrong_password),
        ("unknown user", &unknown_user),
        ("inactive user", &inactive),
    ] {
        assert_eq!(reply.status.as_u16(), 401, "{what}: {}", reply.body);
        assert_eq!(reply.body["detail"], BAD_CREDENTIALS, "{what}");
        assert!(reply.body.get("access").is_none(), "{what}");
        assert!(reply.body.get("refresh").is_none(), "{what}");
        assert!(
            reply.headers.contains_key(WWW_AUTHENTICATE),
            "{what}: a 401 carries WWW-Authenticate"
        );
        assert_json(reply);
    }
    // Reactivated, the same account logs in again.
    set_active(app, &id, true).await;
    app.login("dora", PASSWORD).await.assert(200);
}

async fn login_requires_both_fields(app: &TestApp) {
    let no_password = app
        .post("/api/login/", None, json!({ "username": SUPERUSER }))
        .await;
    no_password.assert(400);
    assert!(
        no_password.body["password"].is_array(),
        "{}",
        no_password.body
    );
    assert!(no_password.body.get("access").is_none());

    let no_username = app
        .post("/api/login/", None, json!({ "password": PASSWORD }))
        .await;
    no_username.assert(400);
    assert!(
        no_username.body["username"].is_array(),
        "{}",
        no_username.body
    );

    let empty = app.post("/api/login/", None, json!({})).await;
    empty.assert(400);
    assert!(empty.body["username"].is_array(), "{}", empty.body);
    assert!(empty.body["password"].is_array(), "{}", empty.body);
    assert_json(&empty);
}

async fn refresh_issues_an_access_token(app: &TestApp) {
    let (_, refresh) = app.login_ok(SUPERUSER, PASSWORD).await;
    for path in ["/api/token/", "/api/token/refresh/"] {
        let reply = app.post(path, None, json!({ "refresh": refresh })).await;
        reply.assert(200);
        assert_json(&reply);
        let access = reply.body["access"].as_str().expect("access").to_owned();
        let claims = payload(&access);
        assert_eq!(claims["token_type"], "access", "{path}");
        assert_eq!(claims["user_id"], app.superuser_id.as_str(), "{path}");
        let me = app.get("/api/users/me/", Some(&access)).await;
        me.assert(200);
        assert_eq!(me.body["id"], app.superuser_id.as_str());
    }
    let missing = app.post("/api/token/", None, json!({})).await;
    missing.assert(400);
    assert!(missing.body["refresh"].is_array(), "{}", missing.body);
}

async fn refresh_refuses_invalid_tokens(app: &TestApp) {
    let (access, refresh) = app.login_ok(SUPERUSER, PASSWORD).await;
    let su = app.superuser_id.as_str();
    let t = now();
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-token".into()),
        ("garbage with dots", "abc.def.ghi".into()),
        ("tampered signature", tamper_signature(&refresh)),
        ("access token given as refresh", access.clone()),
        (
            "expired refresh",
            sign(
                Algorithm::HS256,
                &claims("refresh", su, t - 2 * 86400, t - 86400),
                SECRET,
            ),
        ),
        (
            "refresh signed with another key",
            sign(
                Algorithm::HS256,
                &claims("refresh", su, t, t + 3600),
                "another-secret-key-of-decent-length",
            ),
        ),
        (
            "alg none refresh",
            format!(
                "{}.{}.",
                b64(&json!({ "alg": "none", "typ": "JWT" })),
                b64(&claims("refresh", su, t, t + 3600))
            ),
        ),
    ];
    let mut failures = Vec::new();
    for path in ["/api/token/", "/api/token/refresh/"] {
        for (what, token) in &cases {
            let reply = app.post(path, None, json!({ "refresh": token })).await;
            if reply.body.get("access").is_some() {
                failures.push(format!("{path} {what}: issued an access token"));
            }
            if let Some(problem) = check_401(&reply, true) {
                failures.push(format!("{path} {what}: {problem}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The genuine token still works.
    app.post("/api/token/", None, json!({ "refresh": refresh }))
        .await
        .assert(200);
}

async fn logout_requires_authentication(app: &TestApp) {
    let (_, refresh) = app.login_ok(SUPERUSER, PASSWORD).await;
    let reply = app
        .post("/api/logout/", None, json!({ "refresh": refresh }))
        .await;
    assert_401(&reply, false);
    // Nothing was revoked.
    app.post("/api/token/", None, json!({ "refresh": refresh }))
        .await
        .assert(200);
}

async fn logout_revokes_the_refresh_token(app: &TestApp) {
    app.user("erin").await;
    let (access, refresh) = app.login_ok("erin", PASSWORD).await;
    let (_, other_refresh) = app.login_ok("erin", PASSWORD).await;
    let reply = app
        .post("/api/logout/", Some(&access), json!({ "refresh": refresh }))
        .await;
    reply.assert(204);
    assert_eq!(reply.body, Value::Null, "204 has no body");
    for path in ["/api/token/", "/api/token/refresh/"] {
        let again = app.post(path, None, json!({ "refresh": refresh })).await;
        assert_401(&again, true);
    }
    // Only that token is revoked: another session of the same user lives on.
    app.post("/api/token/", None, json!({ "refresh": other_refresh }))
        .await
        .assert(200);
    // A missing refresh field is a validation error.
    let missing = app.post("/api/logout/", Some(&access), json!({})).await;
    missing.assert(400);
    assert!(missing.body["refresh"].is_array(), "{}", missing.body);
}

async fn login_is_throttled_after_ten_failures(app: &TestApp) {
    app.user("victim").await;
    for attempt in 1..=10 {
        let reply = app.login("victim", &format!("Wrong-guess-{attempt}")).await;
        assert_eq!(
            reply.status.as_u16(),
            401,
            "failure {attempt} is still a plain 401: {}",
            reply.body
        );
    }
    let mut last = None;
    // The 11th attempt is refused, even with the right password.
    for password in ["Wrong-guess-11", PASSWORD] {
        let reply = app.login("victim", password).await;
        reply.assert(429);
        assert_json(&reply);
        assert!(reply.body.get("access").is_none());
        let detail = reply.body["detail"].as_str().expect("detail").to_owned();
        assert!(
            detail.starts_with("Request was throttled"),
            "detail: {detail}"
        );
        let retry_after: u64 = reply
            .headers
            .get(RETRY_AFTER)
            .expect("Retry-After header")
            .to_str()
            .expect("ascii")
            .parse()
            .expect("Retry-After is a number of seconds");
        assert!(retry_after > 0 && retry_after <= 15 * 60, "{retry_after}");
        let expected =
            format!("Request was throttled. Expected available in {retry_after} seconds.");
        assert_eq!(detail, expected);
        last = Some(retry_after);
    }
    assert!(last.is_some());
}

async fn anonymous_request_to_protected_route_is_401(app: &TestApp) {
    for path in ["/api/users/me/", "/api/users/", "/api/registrations/"] {
        let reply = app.get(path, None).await;
        assert_401(&reply, false);
        assert_eq!(
            reply.body["detail"], "Authentication credentials were not provided.",
            "{path}"
        );
    }
}

/// Every forged or misused token is a 401 with a challenge, on a protected
/// route and on a public one.
async fn forged_tokens_are_refused_on_protected_and_public_routes(app: &TestApp) {
    let (access, refresh) = app.login_ok(SUPERUSER, PASSWORD).await;
    let su = app.superuser_id.as_str();
    let t = now();
    let good_header = access.split('.').next().expect("header").to_owned();
    let good_sig = access.rsplit('.').next().expect("signature").to_owned();
    let cases: Vec<(&str, String)> = vec![
        (
            "expired access",
            sign(
                Algorithm::HS256,
                &claims("access", su, t - 4 * 3600, t - 3600),
                SECRET,
            ),
        ),
        ("tampered signature", tamper_signature(&access)),
        (
            "payload swapped under a valid signature",
            format!(
                "{good_header}.{}.{good_sig}",
                b64(&claims("access", su, t, t + 3600))
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({ "alg": "none", "typ": "JWT" })),
                b64(&claims("access", su, t, t + 3600))
            ),
        ),
        (
            "alg none with a signature",
            format!(
                "{}.{}.{good_sig}",
                b64(&json!({ "alg": "none", "typ": "JWT" })),
                b64(&claims("access", su, t, t + 3600))
            ),
        ),
        (
            "HS256 with a wrong key",
            sign(
                Algorithm::HS256,
                &claims("access", su, t, t + 3600),
                "wrong-secret-key-of-decent-length",
            ),
        ),
        (
            "HS512 with the right key",
            sign(Algorithm::HS512, &claims("access", su, t, t + 3600), SECRET),
        ),
        ("refresh token used as access", refresh.clone()),
        (
            "forged refresh-type token",
            sign(
                Algorithm::HS256,
                &claims("refresh", su, t, t + 3600),
                SECRET,
            ),
        ),
        ("garbage", "xyz".into()),
        ("garbage with dots", "a.b.c".into()),
    ];
    let mut failures = Vec::new();
    for path in ["/api/users/me/", "/api/events/"] {
        for (what, token) in &cases {
            let reply = app.get(path, Some(token)).await;
            if let Some(problem) = check_401(&reply, true) {
                failures.push(format!("GET {path} with {what}: {problem}"));
            }
            // SimpleJWT's `messages`: only an expired token is worth refreshing.
            let message = if *what == "expired access" {
                "Token is expired"
            } else {
                "Token is invalid"
            };
            let expected = json!([{
                "token_class": "AccessToken",
                "token_type": "access",
                "message": message,
            }]);
            if reply.body["messages"] != expected
                || reply.body["detail"] != "Given token not valid for any token type"
            {
                failures.push(format!("GET {path} with {what}: body {}", reply.body));
            }
        }
    }
    // Also on a write, where the body must not be acted upon.
    let forged = sign(
        Algorithm::HS256,
        &claims("access", su, t, t + 3600),
        "wrong-secret-key-of-decent-length",
    );
    let reply = app
        .post("/api/groups/", Some(&forged), json!({ "name": "hijack" }))
        .await;
    if let Some(problem) = check_401(&reply, true) {
        failures.push(format!("POST /api/groups/ with wrong key: {problem}"));
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let groups = app.get("/api/groups/", app.admin()).await;
    groups.assert(200);
    assert_eq!(groups.body["count"], 0, "nothing written: {}", groups.body);

    // Control: a correctly signed access token built by hand is accepted,
    // so the refusals above are about the defects, not the construction.
    let good = sign(Algorithm::HS256, &claims("access", su, t, t + 3600), SECRET);
    app.get("/api/users/me/", Some(&good)).await.assert(200);
    app.get("/api/events/", Some(&good)).await.assert(200);
    app.get("/api/events/", None).await.assert(200);
}

async fn token_of_a_deleted_user_is_refused(app: &TestApp) {
    let (id, access) = app.user("ghost").await;
    let (_, refresh) = app.login_ok("ghost", PASSWORD).await;
    app.delete(&format!("/api/users/{id}/"), app.admin())
        .await
        .assert(204);
    let mut failures = Vec::new();
    for path in ["/api/users/me/", "/api/events/"] {
        let reply = app.get(path, Some(&access)).await;
        // SimpleJWT answers code "user_not_found" here; the contract only
        // requires a 401 with a detail and the challenge.
        if let Some(problem) = check_401(&reply, false) {
            failures.push(format!("GET {path}: {problem}"));
        }
    }
    let reply = app
        .post("/api/token/", None, json!({ "refresh": refresh }))
        .await;
    if let Some(problem) = check_401(&reply, false) {
        failures.push(format!("POST /api/token/: {problem}"));
    }
    if reply.body.get("access").is_some() {
        failures.push("POST /api/token/ issued an access token".into());
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

async fn token_of_a_deactivated_user_is_refused(app: &TestApp) {
    let (id, access) = app.user("sleeper").await;
    let (_, refresh) = app.login_ok("sleeper", PASSWORD).await;
    set_active(app, &id, false).await;
    for path in ["/api/users/me/", "/api/events/"] {
        let reply = app.get(path, Some(&access)).await;
        assert_401(&reply, false);
    }
    let reply = app
        .post("/api/token/", None, json!({ "refresh": refresh }))
        .await;
    assert_401(&reply, false);
    assert!(reply.body.get("access").is_none());
}

/// Callers not yet cached are read from the database together: a burst of
/// first requests from different users, some organizers, some deactivated,
/// some deleted, must each be answered as that user alone would be.
async fn concurrent_first_requests_each_resolve_their_own_caller(app: &TestApp) {
    let users = app.many_users("burst", 24).await;
    let organizer = app.group("organizer").await;
    for (id, _) in &users[..6] {
        app.post(
            "/api/assign-roles/",
            app.admin(),
            json!({ "user_id": id, "group_id": organizer }),
        )
        .await
        .assert(201);
    }
    for (id, _) in &users[6..9] {
        set_active(app, id, false).await;
    }
    for (id, _) in &users[9..12] {
        app.delete(&format!("/api/users/{id}/"), app.admin())
            .await
            .assert(204);
    }
    let answers = futures::future::join_all(users.iter().enumerate().map(|(i, (id, token))| {
        let token = token.clone();
        let id = id.clone();
        async move {
            let me = app.get("/api/users/me/", Some(&token)).await;
            let create = app
                .post(
                    "/api/events/",
                    Some(&token),
                    TestApp::event_body("Burst", 10),
                )
                .await;
            (i, id, me, create)
        }
    }))
    .await;
    for (i, id, me, create) in answers {
        match i {
            6..12 => {
                assert_401(&me, false);
                assert_401(&create, false);
                let expected = if i < 9 {
                    "User is inactive"
                } else {
                    "User not found"
                };
                assert_eq!(me.body["detail"], expected, "user {i}");
            }
            _ => {
                me.assert(200);
                assert_eq!(me.body["id"], id, "user {i} sees itself");
                assert_eq!(me.body["username"], format!("burst{i}"));
                create.assert(if i < 6 { 201 } else { 403 });
            }
        }
    }
    // Nothing but the organizers' events was written.
    let list = app.get("/api/events/?search=Burst", None).await;
    assert_eq!(list.body["count"], 6);
}

async fn imported_django_hash_logs_in_and_is_rehashed(app: &TestApp) {
    const DJANGO_HASH: &str =
        "pbkdf2_sha256$260000$seasalt$YlZ2Vggtqdc61YjArZuoApoBh9JNGYoDRBUGu6tcJQo=";
    let (id, _) = app.user("django").await;
    let uuid = Uuid::parse_str(&id).expect("uuid");
    let db = app.state.db.conn();
    let found = user::Entity::find_by_id(uuid)
        .one(db)
        .await
        .expect("query")
        .expect("user");
    let mut model = found.into_active_model();
    model.password = Set(DJANGO_HASH.to_owned());
    model.update(db).await.expect("hash imported");

    // The wrong password is refused and leaves the hash alone.
    let wrong = app.login("django", "letmein").await;
    wrong.assert(401);
    assert_eq!(wrong.body["detail"], BAD_CREDENTIALS);
    let stored = user::Entity::find_by_id(uuid)
        .one(db)
        .await
        .expect("query")
        .expect("user");
    assert_eq!(stored.password, DJANGO_HASH);

    let (access, _) = app.login_ok("django", "lètmein").await;
    let me = app.get("/api/users/me/", Some(&access)).await;
    me.assert(200);
    assert_eq!(me.body["username"], "django");
    let stored = user::Entity::find_by_id(uuid)
        .one(db)
        .await
        .expect("query")
        .expect("user");
    assert!(
        stored.password.starts_with("$argon2id$"),
        "re-hashed on login: {}",
        stored.password
    );
    // The new hash verifies the same password.
    app.login_ok("django", "lètmein").await;
    app.login("django", PASSWORD).await.assert(401);
}

/// A login from a given loopback address (127.0.0.0/8 all reach the server).
async fn login_from(app: &TestApp, source: [u8; 4], username: &str, password: &str) -> u16 {
    crate::helpers::login_from_address(app, source, None, username, password).await
}

/// Failures count per (username, address) and per address (API.md §12):
/// one address hammering a username is locked out of it, the person
/// elsewhere is not; one address trying many usernames is refused them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_throttle_holds_across_addresses_and_usernames() {
    let app = crate::helpers::TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        &[("LOGIN_THROTTLE_ADDRESS_FAILURES", "12")],
    )
    .await;
    app.user("target").await;
    // Ten failures for "target" from one address: that address is locked
    // out of it, right password too, and told how long to wait.
    for attempt in 0..10u8 {
        let status = login_from(&app, [127, 0, 0, 10], "target", "Wrong-1").await;
        assert_eq!(status, 401, "failure {attempt}");
    }
    assert_eq!(
        login_from(&app, [127, 0, 0, 10], "target", PASSWORD).await,
        429
    );
    // The person, from their own address, is not locked out by a stranger.
    assert_eq!(
        login_from(&app, [127, 0, 0, 40], "target", PASSWORD).await,
        200
    );

    // One address, twelve different usernames: the next is refused, even a
    // real account with its right password.
    for n in 0..12 {
        let status = login_from(&app, [127, 0, 0, 50], &format!("nobody{n}"), "Wrong-1").await;
        assert_eq!(status, 401, "failure {n}");
    }
    app.user("bystander").await;
    assert_eq!(
        login_from(&app, [127, 0, 0, 50], "bystander", PASSWORD).await,
        429
    );
    // Another address is not affected.
    assert_eq!(
        login_from(&app, [127, 0, 0, 51], "bystander", PASSWORD).await,
        200
    );
    app.cleanup().await;
}

/// Thirty wrong passwords sent at once for one username: at most the limit
/// (ten) are checked and answered 401, every other one 429 — the count is
/// claimed before the password is checked, not read before and written
/// after. On both backends.
async fn concurrent_wrong_passwords_are_checked_at_most_the_limit(app: &TestApp) {
    app.user("racetarget").await;
    let attempts = (0..30).map(|_| login_from(app, [127, 0, 0, 60], "racetarget", "Wrong-1"));
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        checked <= 10,
        "{checked} wrong passwords were checked: {statuses:?}"
    );
    assert_eq!(checked + throttled, 30, "{statuses:?}");
    assert!(checked >= 1, "{statuses:?}");
}
