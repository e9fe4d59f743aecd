//! `/api/users/`: sign-up and its validation, the staff list, each user's own
//! account, updates and deletion (API.md §2, §3, §4 Users).

use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};

use crate::helpers::{
    FORBIDDEN, PASSWORD, Reply, SUPERUSER, TestApp, assert_field_error, assert_forbidden,
};

crate::backend_tests!(
    signup_creates_an_account,
    signup_validation_refuses_and_writes_nothing,
    signup_reports_every_failing_field,
    signup_ignores_unknown_fields,
    user_list_is_for_superuser_and_admin,
    user_list_search_filters_username_and_email,
    me_returns_own_record,
    user_detail_permissions,
    put_and_patch_are_partial_for_self,
    user_update_permissions,
    user_update_validation,
    password_change_takes_effect,
    user_delete_permissions,
    deleting_an_organizer_conflicts,
    deleting_a_user_removes_registrations_and_payments,
    look_alike_usernames_are_taken,
    a_password_change_ends_earlier_refresh_tokens,
);

const FIELDS: [&str; 8] = [
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "groups",
    "is_superuser",
    "date_joined",
];

/// The representation of a user, exactly.
#[track_caller]
fn assert_user_shape(body: &Value) {
    let obj = body.as_object().expect("a user object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "user fields: {body}");
    let id = body["id"].as_str().expect("id is a string");
    uuid::Uuid::parse_str(id).expect("id is a UUID");
    assert!(body["groups"].is_array());
    assert!(body["is_superuser"].is_boolean());
    let joined = body["date_joined"].as_str().expect("date_joined");
    assert!(joined.ends_with('Z'), "UTC with Z: {joined}");
    chrono::DateTime::parse_from_rfc3339(joined).expect("RFC 3339 date_joined");
}

async fn user_count(app: &TestApp) -> i64 {
    let list = app.get("/api/users/", app.admin()).await;
    list.assert(200);
    list.body["count"].as_i64().expect("count")
}

async fn user_by_id(app: &TestApp, id: &str) -> Reply {
    app.get(&format!("/api/users/{id}/"), app.admin()).await
}

async fn signup_creates_an_account(app: &TestApp) {
    let reply = app
        .post(
            "/api/users/",
            None,
            json!({
                "username": "alice.w+1@home_-",
                "email": "alice@example.com",
                "password": PASSWORD,
                "first_name": "Alice",
                "last_name": "Wonder",
            }),
        )
        .await;
    reply.assert(201);
    assert_user_shape(&reply.body);
    assert_eq!(reply.body["username"], "alice.w+1@home_-");
    assert_eq!(reply.body["email"], "alice@example.com");
    assert_eq!(reply.body["first_name"], "Alice");
    assert_eq!(reply.body["last_name"], "Wonder");
    assert_eq!(reply.body["groups"], json!([]));
    assert_eq!(reply.body["is_superuser"], false);
    let text = reply.body.to_string();
    assert!(!text.contains("argon2") && !text.contains(PASSWORD));
    let joined = chrono::DateTime::parse_from_rfc3339(
        reply.body["date_joined"].as_str().expect("date_joined"),
    )
    .expect("date");
    let age = chrono::Utc::now().signed_duration_since(joined);
    assert!(age.num_minutes().abs() < 5, "date_joined is now: {joined}");

    // 150 characters is the longest username.
    let longest = "n".repeat(150);
    let long = app
        .post(
            "/api/users/",
            None,
            json!({ "username": longest, "email": "long@example.com", "password": PASSWORD }),
        )
        .await;
    long.assert(201);
    assert_eq!(long.body["username"], longest.as_str());

    // Optional names default to "".
    let bare = app.signup("bob").await;
    bare.assert(201);
    assert_eq!(bare.body["first_name"], "");
    assert_eq!(bare.body["last_name"], "");

    // The account exists and logs in.
    let (access, _) = app.login_ok("alice.w+1@home_-", PASSWORD).await;
    let me = app.get("/api/users/me/", Some(&access)).await;
    me.assert(200);
    assert_eq!(me.body, reply.body);
    assert_eq!(user_count(app).await, 4);
}

async fn signup_validation_refuses_and_writes_nothing(app: &TestApp) {
    app.post(
        "/api/users/",
        None,
        json!({ "username": "carol", "email": "carol@example.com", "password": PASSWORD }),
    )
    .await
    .assert(201);
    let before = user_count(app).await;
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "missing username",
            "username",
            json!({ "email": "x1@example.com", "password": PASSWORD }),
        ),
        (
            "empty username",
            "username",
            json!({ "username": "", "email": "x2@example.com", "password": PASSWORD }),
        ),
        (
            "username with a space and !",
            "username",
            json!({ "username": "bad name!", "email": "x3@example.com", "password": PASSWORD }),
        ),
        (
            "username with a slash",
            "username",
            json!({ "username": "a/b", "email": "x4@example.com", "password": PASSWORD }),
        ),
        (
            "username over 150 characters",
            "username",
            json!({ "username": "u".repeat(151), "email": "x5@example.com", "password": PASSWORD }),
        ),
        (
            "username taken in another case",
            "username",
            json!({ "username": "CaRoL", "email": "x6@example.com", "password": PASSWORD }),
        ),
        (
            "missing email",
            "email",
            json!({ "username": "x7", "password": PASSWORD }),
        ),
        (
            "invalid email",
            "email",
            json!({ "username": "x8", "email": "not-an-email", "password": PASSWORD }),
        ),
        (
            "invalid email without a domain",
            "email",
            json!({ "username": "x9", "email": "x9@", "password": PASSWORD }),
        ),
        (
            "email taken in another case",
            "email",
            json!({ "username": "x10", "email": "CAROL@Example.COM", "password": PASSWORD }),
        ),
        (
            "missing password",
            "password",
            json!({ "username": "x11", "email": "x11@example.com" }),
        ),
        (
            "short password",
            "password",
            json!({ "username": "x12", "email": "x12@example.com", "password": "Xq7#pz" }),
        ),
        (
            "numeric password",
            "password",
            json!({ "username": "x13", "email": "x13@example.com", "password": "8302619475" }),
        ),
        (
            "common password",
            "password",
            json!({ "username": "x14", "email": "x14@example.com", "password": "password123" }),
        ),
        (
            "common password (Django's list, any case)",
            "password",
            json!({ "username": "x15", "email": "x15@example.com", "password": "QWERTYUIOP" }),
        ),
        (
            "password similar to the username",
            "password",
            json!({ "username": "johnathanq", "email": "x16@example.com", "password": "johnathanq1" }),
        ),
        (
            "password similar to the email",
            "password",
            json!({ "username": "x17", "email": "kowalczykowski@example.com", "password": "kowalczykowski" }),
        ),
    ];
    for (what, field, body) in cases {
        let reply = app.post("/api/users/", None, body).await;
        assert_eq!(
            reply.status.as_u16(),
            400,
            "{what}: expected 400, got {} {}",
            reply.status,
            reply.body
        );
        assert!(
            reply.body[field].is_array(),
            "{what}: expected a {field:?} error, got {}",
            reply.body
        );
        assert_field_error(&reply, field);
        assert_eq!(user_count(app).await, before, "{what}: nothing written");
    }
    // None of the refused names can log in.
    app.login("x13", "8302619475").await.assert(401);
}

async fn signup_reports_every_failing_field(app: &TestApp) {
    let before = user_count(app).await;
    let reply = app
        .post(
            "/api/users/",
            None,
            json!({ "username": "a b", "email": "nope", "password": "123" }),
        )
        .await;
    reply.assert(400);
    for field in ["username", "email", "password"] {
        assert_field_error(&reply, field);
    }
    assert_eq!(user_count(app).await, before);
}

async fn signup_ignores_unknown_fields(app: &TestApp) {
    let admin_group = app.group("admin").await;
    let forced_id = uuid::Uuid::new_v4().to_string();
    let reply = app
        .post(
            "/api/users/",
            None,
            json!({
                "username": "mallory",
                "email": "mallory@example.com",
                "password": PASSWORD,
                "is_superuser": true,
                "is_staff": true,
                "is_active": false,
                "groups": ["admin"],
                "group_id": admin_group,
                "id": forced_id,
                "date_joined": "2000-01-01T00:00:00Z",
                "nickname": "m",
            }),
        )
        .await;
    reply.assert(201);
    assert_user_shape(&reply.body);
    assert_eq!(reply.body["is_superuser"], false);
    assert_eq!(reply.body["groups"], json!([]));
    assert_ne!(reply.body["id"], forced_id.as_str());
    assert!(
        !reply.body["date_joined"]
            .as_str()
            .unwrap_or("")
            .starts_with("2000"),
        "date_joined not taken from the body"
    );
    // Active, and without any privilege.
    let (access, _) = app.login_ok("mallory", PASSWORD).await;
    assert_forbidden(&app.get("/api/groups/", Some(&access)).await);
    assert_forbidden(&app.get("/api/users/", Some(&access)).await);
    let me = app.get("/api/users/me/", Some(&access)).await;
    assert_eq!(me.body["is_superuser"], false);
    assert_eq!(me.body["groups"], json!([]));
}

async fn user_list_is_for_superuser_and_admin(app: &TestApp) {
    let (_, boss) = app.user_in("boss", "admin").await;
    let (_, plain) = app.user("plain").await;

    for token in [app.admin_token.as_str(), boss.as_str()] {
        let list = app.get("/api/users/", Some(token)).await;
        list.assert(200);
        let users = list.body["users"].as_array().expect("users array");
        assert_eq!(users.len(), 3);
        for u in users {
            assert_user_shape(u);
        }
        let mut names: Vec<&str> = users
            .iter()
            .map(|u| u["username"].as_str().expect("username"))
            .collect();
        names.sort_unstable();
        assert_eq!(names, vec![SUPERUSER, "boss", "plain"]);
        assert_eq!(list.body["count"], 3);
        assert_eq!(list.body["page"], 1);
        assert_eq!(list.body["page_size"], 20);
        assert_eq!(list.body["total_pages"], 1);
        assert_eq!(list.body["next"], Value::Null);
        assert_eq!(list.body["previous"], Value::Null);
        let boss_entry = users
            .iter()
            .find(|u| u["username"] == "boss")
            .expect("boss listed");
        assert_eq!(boss_entry["groups"], json!(["admin"]));
    }

    assert_forbidden(&app.get("/api/users/", Some(&plain)).await);
    let anonymous = app.get("/api/users/", None).await;
    anonymous.assert(401);
    assert!(anonymous.headers.contains_key(WWW_AUTHENTICATE));
    assert!(anonymous.body["detail"].is_string());
    assert!(anonymous.body.get("users").is_none());
}

async fn user_list_search_filters_username_and_email(app: &TestApp) {
    app.signup("alice").await.assert(201);
    app.signup("bob").await.assert(201);
    app.post(
        "/api/users/",
        None,
        json!({ "username": "carol", "email": "wonderland@example.org", "password": PASSWORD }),
    )
    .await
    .assert(201);

    let names = |reply: &Reply| -> Vec<String> {
        let mut names: Vec<String> = reply.body["users"]
            .as_array()
            .expect("users")
            .iter()
            .map(|u| u["username"].as_str().expect("username").to_owned())
            .collect();
        names.sort();
        names
    };
    let by_name = app.get("/api/users/?search=ali", app.admin()).await;
    by_name.assert(200);
    assert_eq!(names(&by_name), vec!["alice"]);
    assert_eq!(by_name.body["count"], 1);

    let by_email = app.get("/api/users/?search=wonderland", app.admin()).await;
    by_email.assert(200);
    assert_eq!(names(&by_email), vec!["carol"]);

    let by_domain = app.get("/api/users/?search=example.org", app.admin()).await;
    assert_eq!(names(&by_domain), vec!["carol"]);

    let case_insensitive = app.get("/api/users/?search=BOB", app.admin()).await;
    assert_eq!(names(&case_insensitive), vec!["bob"]);

    let none = app.get("/api/users/?search=zzzz", app.admin()).await;
    none.assert(200);
    assert_eq!(none.body["count"], 0);
    assert_eq!(none.body["users"], json!([]));
}

async fn me_returns_own_record(app: &TestApp) {
    let (id, token) = app.user("dave").await;
    for path in ["/api/users/me/", "/api/users/me"] {
        let me = app.get(path, Some(&token)).await;
        me.assert(200);
        assert_user_shape(&me.body);
        assert_eq!(me.body["id"], id.as_str());
        assert_eq!(me.body["username"], "dave");
        assert_eq!(me.body["email"], "dave@example.com");
        assert_eq!(me.body["is_superuser"], false);
    }
    let anonymous = app.get("/api/users/me/", None).await;
    anonymous.assert(401);
    assert!(anonymous.headers.contains_key(WWW_AUTHENTICATE));
}

async fn user_detail_permissions(app: &TestApp) {
    let (alice_id, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let (_, boss) = app.user_in("boss", "admin").await;
    let path = format!("/api/users/{alice_id}/");

    for (who, token) in [
        ("self", alice.as_str()),
        ("admin", boss.as_str()),
        ("superuser", app.admin_token.as_str()),
    ] {
        let reply = app.get(&path, Some(token)).await;
        assert_eq!(reply.status.as_u16(), 200, "{who}: {}", reply.body);
        assert_user_shape(&reply.body);
        assert_eq!(reply.body["id"], alice_id.as_str(), "{who}");
        assert_eq!(reply.body["username"], "alice", "{who}");
    }
    assert_forbidden(&app.get(&path, Some(&bob)).await);
    app.get(&path, None).await.assert(401);

    let unknown = uuid::Uuid::new_v4();
    for token in [app.admin_token.as_str(), bob.as_str()] {
        for bad in [
            "not-a-uuid".to_string(),
            "12345".to_string(),
            format!("{alice_id}x"),
            unknown.to_string(),
        ] {
            let reply = app.get(&format!("/api/users/{bad}/"), Some(token)).await;
            reply.assert(404);
            assert_eq!(reply.body, json!({ "detail": "Not found." }), "{bad}");
        }
    }
}

async fn put_and_patch_are_partial_for_self(app: &TestApp) {
    let (id, token) = app.user("erin").await;
    let path = format!("/api/users/{id}/");
    let patched = app
        .patch(&path, Some(&token), json!({ "first_name": "Erin" }))
        .await;
    patched.assert(200);
    assert_user_shape(&patched.body);
    assert_eq!(patched.body["first_name"], "Erin");
    assert_eq!(patched.body["last_name"], "");
    assert_eq!(patched.body["username"], "erin");
    assert_eq!(patched.body["email"], "erin@example.com");

    // PUT is partial too: only last_name changes.
    let put = app
        .put(&path, Some(&token), json!({ "last_name": "Brockovich" }))
        .await;
    put.assert(200);
    assert_eq!(put.body["first_name"], "Erin");
    assert_eq!(put.body["last_name"], "Brockovich");
    assert_eq!(put.body["username"], "erin");
    assert_eq!(put.body["email"], "erin@example.com");

    let renamed = app
        .patch(
            &path,
            Some(&token),
            json!({ "username": "erin2", "email": "erin2@example.com" }),
        )
        .await;
    renamed.assert(200);
    assert_eq!(renamed.body["username"], "erin2");
    assert_eq!(renamed.body["email"], "erin2@example.com");
    assert_eq!(renamed.body["first_name"], "Erin");

    // Fields this page does not list are ignored.
    let sneaky = app
        .patch(
            &path,
            Some(&token),
            json!({ "is_superuser": true, "groups": ["admin"], "id": uuid::Uuid::new_v4() }),
        )
        .await;
    sneaky.assert(200);
    assert_eq!(sneaky.body["is_superuser"], false);
    assert_eq!(sneaky.body["groups"], json!([]));
    assert_eq!(sneaky.body["id"], id.as_str());

    let stored = user_by_id(app, &id).await;
    stored.assert(200);
    assert_eq!(stored.body["username"], "erin2");
    assert_eq!(stored.body["last_name"], "Brockovich");
    assert_eq!(stored.body["is_superuser"], false);
    app.login_ok("erin2", PASSWORD).await;

    // Without a trailing slash, same resource.
    app.patch(
        &format!("/api/users/{id}"),
        Some(&token),
        json!({ "first_name": "E" }),
    )
    .await
    .assert(200);
    assert_eq!(user_by_id(app, &id).await.body["first_name"], "E");
}

async fn user_update_permissions(app: &TestApp) {
    let (alice_id, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let (_, boss) = app.user_in("boss", "admin").await;
    let alice_path = format!("/api/users/{alice_id}/");

    // The superuser may update anyone, by PUT or PATCH.
    let by_su = app
        .patch(&alice_path, app.admin(), json!({ "first_name": "Al" }))
        .await;
    by_su.assert(200);
    assert_eq!(by_su.body["first_name"], "Al");
    let by_su = app
        .put(&alice_path, app.admin(), json!({ "last_name": "Ice" }))
        .await;
    by_su.assert(200);
    assert_eq!(by_su.body["first_name"], "Al");
    assert_eq!(by_su.body["last_name"], "Ice");

    // An admin, another user, nobody: refused, nothing changes.
    for (who, token) in [
        ("admin", Some(boss.as_str())),
        ("other user", Some(bob.as_str())),
    ] {
        let patch = app
            .patch(&alice_path, token, json!({ "first_name": "Hacked" }))
            .await;
        assert_eq!(patch.status.as_u16(), 403, "{who} PATCH: {}", patch.body);
        assert_eq!(patch.body, json!({ "detail": FORBIDDEN }));
        let put = app
            .put(&alice_path, token, json!({ "email": "hacked@example.com" }))
            .await;
        assert_eq!(put.status.as_u16(), 403, "{who} PUT: {}", put.body);
    }
    app.patch(&alice_path, None, json!({ "first_name": "Hacked" }))
        .await
        .assert(401);
    let stored = user_by_id(app, &alice_id).await;
    assert_eq!(stored.body["first_name"], "Al");
    assert_eq!(stored.body["email"], "alice@example.com");
    app.login_ok("alice", PASSWORD).await;

    // Another user's password cannot be changed either.
    app.patch(
        &alice_path,
        Some(&bob),
        json!({ "password": "N3w-Secret-Phrase" }),
    )
    .await
    .assert(403);
    app.login_ok("alice", PASSWORD).await;

    // Permission is checked before validation: invalid data from someone
    // who may not write is still a 403.
    for body in [
        json!({ "email": "not-an-email" }),
        json!({ "username": "bob" }),
        json!({ "password": "1" }),
    ] {
        assert_forbidden(&app.patch(&alice_path, Some(&bob), body).await);
    }

    // Unknown and malformed ids are 404.
    for bad in [uuid::Uuid::new_v4().to_string(), "nope".to_string()] {
        let reply = app
            .patch(
                &format!("/api/users/{bad}/"),
                Some(&alice),
                json!({ "first_name": "x" }),
            )
            .await;
        reply.assert(404);
    }
}

async fn user_update_validation(app: &TestApp) {
    let (alice_id, alice) = app.user("alice").await;
    app.user("bob").await;
    let path = format!("/api/users/{alice_id}/");
    let cases: Vec<(&str, &str, Value)> = vec![
        ("taken username", "username", json!({ "username": "bob" })),
        (
            "taken username, other case",
            "username",
            json!({ "username": "BOB" }),
        ),
        (
            "bad username",
            "username",
            json!({ "username": "no spaces allowed" }),
        ),
        ("empty username", "username", json!({ "username": "" })),
        (
            "taken email",
            "email",
            json!({ "email": "Bob@Example.com" }),
        ),
        ("bad email", "email", json!({ "email": "bob-at-example" })),
        ("short password", "password", json!({ "password": "Ab1!" })),
        (
            "numeric password",
            "password",
            json!({ "password": "9182736450" }),
        ),
        (
            "common password",
            "password",
            json!({ "password": "password" }),
        ),
        (
            "password like the username",
            "password",
            json!({ "password": "alice1234" }),
        ),
    ];
    for (what, field, body) in cases {
        let patch = app.patch(&path, Some(&alice), body.clone()).await;
        assert!(
            patch.status.as_u16() == 400 && patch.body[field].is_array(),
            "PATCH {what}: expected 400 on {field}, got {} {}",
            patch.status,
            patch.body
        );
        let put = app.put(&path, Some(&alice), body).await;
        assert!(
            put.status.as_u16() == 400 && put.body[field].is_array(),
            "PUT {what}: expected 400 on {field}, got {} {}",
            put.status,
            put.body
        );
    }
    let stored = user_by_id(app, &alice_id).await;
    assert_eq!(stored.body["username"], "alice");
    assert_eq!(stored.body["email"], "alice@example.com");
    app.login_ok("alice", PASSWORD).await;
    // One's own username and email, even in another case, are not taken.
    let own = app
        .patch(
            &path,
            Some(&alice),
            json!({ "username": "ALICE", "email": "ALICE@example.com" }),
        )
        .await;
    own.assert(200);
    assert_eq!(own.body["username"], "ALICE");
}

async fn password_change_takes_effect(app: &TestApp) {
    let (id, token) = app.user("frank").await;
    let new_password = "Brand-n3w-Phrase!";
    let reply = app
        .patch(
            &format!("/api/users/{id}/"),
            Some(&token),
            json!({ "password": new_password }),
        )
        .await;
    reply.assert(200);
    assert_user_shape(&reply.body);
    assert!(!reply.body.to_string().contains(new_password));
    app.login("frank", PASSWORD).await.assert(401);
    let (token, _) = app.login_ok("frank", new_password).await;

    // By PUT, and by the superuser.
    let newer = "Another-n3w-Phrase?";
    app.put(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "password": newer }),
    )
    .await
    .assert(200);
    app.login_ok("frank", newer).await;
    let by_su = "Set-by-the-b0ss";
    app.patch(
        &format!("/api/users/{id}/"),
        app.admin(),
        json!({ "password": by_su }),
    )
    .await
    .assert(200);
    app.login("frank", newer).await.assert(401);
    app.login_ok("frank", by_su).await;
}

async fn user_delete_permissions(app: &TestApp) {
    let (alice_id, alice) = app.user("alice").await;
    let (bob_id, bob) = app.user("bob").await;
    let (carol_id, _) = app.user("carol").await;
    let (_, boss) = app.user_in("boss", "admin").await;

    // Another user, an admin, nobody: refused, nothing deleted.
    let alice_path = format!("/api/users/{alice_id}/");
    assert_forbidden(&app.delete(&alice_path, Some(&bob)).await);
    assert_forbidden(&app.delete(&alice_path, Some(&boss)).await);
    app.delete(&alice_path, None).await.assert(401);
    user_by_id(app, &alice_id).await.assert(200);

    // Self.
    let own = app.delete(&alice_path, Some(&alice)).await;
    own.assert(204);
    assert_eq!(own.body, Value::Null);
    user_by_id(app, &alice_id).await.assert(404);
    app.login("alice", PASSWORD).await.assert(401);

    // Superuser, without a trailing slash.
    app.delete(&format!("/api/users/{carol_id}"), app.admin())
        .await
        .assert(204);
    user_by_id(app, &carol_id).await.assert(404);

    // Gone is 404; malformed is 404.
    app.delete(&alice_path, app.admin()).await.assert(404);
    app.delete("/api/users/not-a-uuid/", app.admin())
        .await
        .assert(404);
    let list = app.get("/api/users/", app.admin()).await;
    assert_eq!(list.body["count"], 3, "superuser, bob, boss remain");
    user_by_id(app, &bob_id).await.assert(200);
    // A freed username can be signed up again.
    app.signup("alice").await.assert(201);
}

async fn deleting_an_organizer_conflicts(app: &TestApp) {
    let (olga_id, olga) = app.user_in("olga", "organizer").await;
    let event = app.create_event(&olga, "Olga's meetup", 10).await;
    let path = format!("/api/users/{olga_id}/");
    for token in [olga.as_str(), app.admin_token.as_str()] {
        let reply = app.delete(&path, Some(token)).await;
        reply.assert(409);
        assert!(
            reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            reply.body
        );
    }
    user_by_id(app, &olga_id).await.assert(200);
    app.get(&format!("/api/events/{event}/"), None)
        .await
        .assert(200);
    app.login_ok("olga", PASSWORD).await;

    // Once the event is gone, the account can go.
    app.delete(&format!("/api/events/{event}/"), Some(&olga))
        .await
        .assert(204);
    app.delete(&path, Some(&olga)).await.assert(204);
    user_by_id(app, &olga_id).await.assert(404);
}

async fn deleting_a_user_removes_registrations_and_payments(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Concert", 100).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 10).await;
    let (gina_id, gina) = app.user("gina").await;
    let (_, hank) = app.user("hank").await;
    let registration = app.register(&gina, &ticket).await;
    registration.assert(201);
    let registration_id = registration.id();
    app.register(&hank, &ticket).await.assert(201);
    let payment = app
        .post(
            "/api/payments/",
            Some(&gina),
            json!({ "registration_id": registration_id, "payment_method": "QRIS", "amount_paid": 150000.5 }),
        )
        .await;
    payment.assert(201);
    let payment_id = payment.id();
    let before = app.get(&format!("/api/tickets/{ticket}/"), None).await;
    assert_eq!(before.body["sold"], 2);
    assert_eq!(before.body["available"], 8);

    app.delete(&format!("/api/users/{gina_id}/"), app.admin())
        .await
        .assert(204);

    app.get(
        &format!("/api/registrations/{registration_id}/"),
        app.admin(),
    )
    .await
    .assert(404);
    app.get(&format!("/api/payments/{payment_id}/"), app.admin())
        .await
        .assert(404);
    let after = app.get(&format!("/api/tickets/{ticket}/"), None).await;
    after.assert(200);
    assert_eq!(after.body["sold"], 1, "{}", after.body);
    assert_eq!(after.body["available"], 9);
    let regs = app
        .get(&format!("/api/registrations/?ticket={ticket}"), app.admin())
        .await;
    assert_eq!(regs.body["count"], 1);
    let payments = app.get("/api/payments/", app.admin()).await;
    assert_eq!(payments.body["count"], 0);
}

/// Usernames are unique by their NFKC form, case aside (API.md §12):
/// fullwidth, mathematical and ligature look-alikes of a taken name are
/// refused like the name itself, and nothing is written.
async fn look_alike_usernames_are_taken(app: &TestApp) {
    app.signup("plain").await.assert(201);
    app.signup("fish").await.assert(201);
    let before = app.get("/api/users/", app.admin()).await.body["count"].clone();
    for look_alike in ["ｐｌａｉｎ", "𝐩𝐥𝐚𝐢𝐧", "PLAIN", "ﬁsh", "ＦＩＳＨ"]
    {
        let reply = app.signup(look_alike).await;
        reply.assert(400);
        assert_field_error(&reply, "username");
    }
    let after = app.get("/api/users/", app.admin()).await.body["count"].clone();
    assert_eq!(before, after, "nothing written");
}

/// A password change invalidates every refresh token issued before it
/// (API.md §12); setting the password the account already has is not a
/// change and keeps them.
async fn a_password_change_ends_earlier_refresh_tokens(app: &TestApp) {
    let (id, token) = app.user("rotator").await;
    let (_, refresh) = app.login_ok("rotator", PASSWORD).await;
    let refreshed = app
        .post("/api/token/refresh/", None, json!({ "refresh": refresh }))
        .await;
    refreshed.assert(200);

    // The same password again: not a change, the refresh token still works.
    app.patch(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "password": PASSWORD }),
    )
    .await
    .assert(200);
    app.post("/api/token/refresh/", None, json!({ "refresh": refresh }))
        .await
        .assert(200);

    // Tokens issued in the second of the change would survive it: wait for
    // the next second, so the old one is strictly older.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let changed = "Rotated-Passw0rd!";
    app.patch(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "password": changed }),
    )
    .await
    .assert(200);
    let refused = app
        .post("/api/token/refresh/", None, json!({ "refresh": refresh }))
        .await;
    refused.assert(401);
    assert_eq!(refused.body["code"], "token_not_valid", "{}", refused.body);
    // A token issued after the change works.
    let (_, fresh) = app.login_ok("rotator", changed).await;
    app.post("/api/token/refresh/", None, json!({ "refresh": fresh }))
        .await
        .assert(200);
}

/// With `JWT_REVOKE_ACCESS_ON_PASSWORD_CHANGE=true`, access tokens issued
/// before a password change are refused too (API.md §12); without it they
/// live out their lifetime (the test above, and SimpleJWT's behaviour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_end_with_a_password_change_when_configured() {
    let app = TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        &[("JWT_REVOKE_ACCESS_ON_PASSWORD_CHANGE", "true")],
    )
    .await;
    let (id, token) = app.user("revoked").await;
    app.get("/api/users/me/", Some(&token)).await.assert(200);
    // The same password: not a change, the token still works.
    app.patch(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "password": PASSWORD }),
    )
    .await
    .assert(200);
    app.get("/api/users/me/", Some(&token)).await.assert(200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let changed = "Revoked-Passw0rd!";
    app.patch(
        &format!("/api/users/{id}/"),
        Some(&token),
        json!({ "password": changed }),
    )
    .await
    .assert(200);
    let refused = app.get("/api/users/me/", Some(&token)).await;
    refused.assert(401);
    assert_eq!(refused.body["code"], "token_not_valid", "{}", refused.body);
    let (fresh, _) = app.login_ok("revoked", changed).await;
    app.get("/api/users/me/", Some(&fresh)).await.assert(200);
    app.cleanup().await;
}
