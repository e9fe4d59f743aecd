//! `/api/groups/` and `/api/assign-roles/` (API.md §3, §4 Groups).

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{FORBIDDEN, Reply, TestApp, assert_forbidden};

crate::backend_tests!(
    superuser_creates_reads_updates_and_deletes_groups,
    group_validation_refuses_and_writes_nothing,
    groups_are_for_the_superuser_only,
    deleting_a_group_removes_memberships,
    assign_role_creates_membership,
    assign_role_validation,
    assign_roles_is_for_the_superuser_only,
    unassign_role_removes_membership,
);

#[track_caller]
fn assert_group(body: &Value, name: &str) -> i64 {
    let obj = body.as_object().expect("a group object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["id", "name"], "group fields: {body}");
    assert_eq!(body["name"], name);
    let id = body["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("id is a JSON number: {body}"));
    assert!(id > 0);
    id
}

async fn group_names(app: &TestApp) -> Vec<String> {
    let list = app.get("/api/groups/?page_size=100", app.admin()).await;
    list.assert(200);
    let mut names: Vec<String> = list.body["groups"]
        .as_array()
        .expect("groups array")
        .iter()
        .map(|g| g["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

/// A user's group names, sorted (the contract does not fix their order).
async fn groups_of(app: &TestApp, user_id: &str) -> Value {
    let user = app
        .get(&format!("/api/users/{user_id}/"), app.admin())
        .await;
    user.assert(200);
    let mut names: Vec<String> = user.body["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("groups array: {}", user.body))
        .iter()
        .map(|g| g.as_str().expect("group name").to_owned())
        .collect();
    names.sort();
    json!(names)
}

async fn unassign(app: &TestApp, token: Option<&str>, body: Value) -> Reply {
    app.request(Method::DELETE, "/api/assign-roles/", token, Some(body))
        .await
}

async fn superuser_creates_reads_updates_and_deletes_groups(app: &TestApp) {
    let empty = app.get("/api/groups/", app.admin()).await;
    empty.assert(200);
    assert_eq!(empty.body["groups"], json!([]), "no group exists at first");
    assert_eq!(empty.body["count"], 0);

    let created = app
        .post("/api/groups/", app.admin(), json!({ "name": "admin" }))
        .await;
    created.assert(201);
    let admin_id = assert_group(&created.body, "admin");
    let second = app
        .post("/api/groups/", app.admin(), json!({ "name": "organizer" }))
        .await;
    second.assert(201);
    let organizer_id = assert_group(&second.body, "organizer");
    assert_ne!(admin_id, organizer_id);

    let list = app.get("/api/groups/", app.admin()).await;
    list.assert(200);
    assert_eq!(list.body["count"], 2);
    assert_eq!(list.body["page"], 1);
    assert!(list.body["page_size"].is_number());
    assert!(list.body["total_pages"].is_number());
    assert_eq!(list.body["next"], Value::Null);
    assert_eq!(list.body["previous"], Value::Null);
    let groups = list.body["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    for g in groups {
        assert!(g["id"].is_i64(), "{g}");
    }

    let path = format!("/api/groups/{organizer_id}/");
    let one = app.get(&path, app.admin()).await;
    one.assert(200);
    assert_eq!(
        assert_group(&one.body, "organizer"),
        organizer_id,
        "same group"
    );
    app.get(&format!("/api/groups/{organizer_id}"), app.admin())
        .await
        .assert(200);

    let put = app
        .put(&path, app.admin(), json!({ "name": "Organizers" }))
        .await;
    put.assert(200);
    assert_eq!(assert_group(&put.body, "Organizers"), organizer_id);
    let patch = app
        .patch(&path, app.admin(), json!({ "name": "organizer" }))
        .await;
    patch.assert(200);
    assert_eq!(assert_group(&patch.body, "organizer"), organizer_id);
    // Renaming to its own name in another case is not a duplicate.
    app.patch(&path, app.admin(), json!({ "name": "ORGANIZER" }))
        .await
        .assert(200);
    app.patch(&path, app.admin(), json!({ "name": "organizer" }))
        .await
        .assert(200);
    assert_eq!(group_names(app).await, vec!["admin", "organizer"]);

    let deleted = app.delete(&path, app.admin()).await;
    deleted.assert(204);
    assert_eq!(deleted.body, Value::Null);
    app.get(&path, app.admin()).await.assert(404);
    app.delete(&path, app.admin()).await.assert(404);
    assert_eq!(group_names(app).await, vec!["admin"]);

    // Without trailing slash.
    app.delete(&format!("/api/groups/{admin_id}"), app.admin())
        .await
        .assert(204);
    assert!(group_names(app).await.is_empty());

    for bad in ["abc", "1.5", "-1", "0", "99999", "1e3"] {
        let reply = app.get(&format!("/api/groups/{bad}/"), app.admin()).await;
        reply.assert(404);
        assert_eq!(reply.body, json!({ "detail": "Not found." }), "{bad}");
    }
    app.patch("/api/groups/abc/", app.admin(), json!({ "name": "x" }))
        .await
        .assert(404);
    app.delete("/api/groups/abc/", app.admin())
        .await
        .assert(404);
}

async fn group_validation_refuses_and_writes_nothing(app: &TestApp) {
    let admin_id = app.group("admin").await;
    let other_id = app.group("organizer").await;
    let cases: Vec<(&str, Value)> = vec![
        ("duplicate in another case", json!({ "name": "ADMIN" })),
        ("duplicate, same case", json!({ "name": "admin" })),
        ("missing name", json!({})),
        ("empty name", json!({ "name": "" })),
        ("null name", json!({ "name": null })),
        (
            "name over 150 characters",
            json!({ "name": "g".repeat(151) }),
        ),
    ];
    for (what, body) in &cases {
        let reply = app.post("/api/groups/", app.admin(), body.clone()).await;
        assert!(
            reply.status.as_u16() == 400 && reply.body["name"].is_array(),
            "POST {what}: expected 400 {{\"name\": [...]}}, got {} {}",
            reply.status,
            reply.body
        );
    }
    // Renaming onto another group's name, in any case.
    for name in ["Admin", "admin"] {
        for method in [Method::PUT, Method::PATCH] {
            let reply = app
                .request(
                    method.clone(),
                    &format!("/api/groups/{other_id}/"),
                    app.admin(),
                    Some(json!({ "name": name })),
                )
                .await;
            assert!(
                reply.status.as_u16() == 400 && reply.body["name"].is_array(),
                "{method} rename to {name}: got {} {}",
                reply.status,
                reply.body
            );
        }
    }
    assert_eq!(group_names(app).await, vec!["admin", "organizer"]);
    let admin = app
        .get(&format!("/api/groups/{admin_id}/"), app.admin())
        .await;
    assert_group(&admin.body, "admin");
    // 150 characters is fine.
    let long = "g".repeat(150);
    let reply = app
        .post("/api/groups/", app.admin(), json!({ "name": long }))
        .await;
    reply.assert(201);
    assert_group(&reply.body, &long);
}

async fn groups_are_for_the_superuser_only(app: &TestApp) {
    let (_, boss) = app.user_in("boss", "admin").await;
    let (_, plain) = app.user("plain").await;
    let group_id = app.group("organizer").await;
    let path = format!("/api/groups/{group_id}/");

    for (who, token) in [("admin", boss.as_str()), ("plain user", plain.as_str())] {
        let replies = vec![
            ("GET list", app.get("/api/groups/", Some(token)).await),
            (
                "POST",
                app.post("/api/groups/", Some(token), json!({ "name": "new" }))
                    .await,
            ),
            ("GET one", app.get(&path, Some(token)).await),
            (
                "PUT",
                app.put(&path, Some(token), json!({ "name": "renamed" }))
                    .await,
            ),
            (
                "PATCH",
                app.patch(&path, Some(token), json!({ "name": "renamed" }))
                    .await,
            ),
            ("DELETE", app.delete(&path, Some(token)).await),
        ];
        for (what, reply) in replies {
            assert_eq!(reply.status.as_u16(), 403, "{who} {what}: {}", reply.body);
            assert_eq!(reply.body, json!({ "detail": FORBIDDEN }), "{who} {what}");
        }
    }
    for reply in [
        app.get("/api/groups/", None).await,
        app.post("/api/groups/", None, json!({ "name": "new" }))
            .await,
        app.get(&path, None).await,
        app.patch(&path, None, json!({ "name": "renamed" })).await,
        app.delete(&path, None).await,
    ] {
        reply.assert(401);
        assert!(reply.body["detail"].is_string());
    }
    assert_eq!(group_names(app).await, vec!["admin", "organizer"]);
}

async fn deleting_a_group_removes_memberships(app: &TestApp) {
    let (olga_id, olga) = app.user_in("olga", "organizer").await;
    let admin_group = app.group("admin").await;
    app.post(
        "/api/assign-roles/",
        app.admin(),
        json!({ "user_id": olga_id, "group_id": admin_group }),
    )
    .await
    .assert(201);
    assert_eq!(
        groups_of(app, &olga_id).await,
        json!(["admin", "organizer"])
    );
    let organizer_group = app.group("organizer").await;

    app.delete(&format!("/api/groups/{organizer_group}/"), app.admin())
        .await
        .assert(204);
    assert_eq!(groups_of(app, &olga_id).await, json!(["admin"]));
    app.delete(&format!("/api/groups/{admin_group}/"), app.admin())
        .await
        .assert(204);
    assert_eq!(groups_of(app, &olga_id).await, json!([]));
    let me = app.get("/api/users/me/", Some(&olga)).await;
    assert_eq!(me.body["groups"], json!([]));
    // The role went with the group.
    app.post("/api/events/", Some(&olga), TestApp::event_body("x", 1))
        .await
        .assert(403);

    // A new group of the same name starts empty.
    app.group("organizer").await;
    assert_eq!(groups_of(app, &olga_id).await, json!([]));
}

async fn assign_role_creates_membership(app: &TestApp) {
    let (bob_id, bob) = app.user("bob").await;
    let organizer = app.group("organizer").await;
    let body = json!({ "user_id": bob_id, "group_id": organizer });
    let expected = json!({
        "message": "User bob assigned to group organizer",
        "user_id": bob_id,
        "group_id": organizer,
    });

    let first = app
        .post("/api/assign-roles/", app.admin(), body.clone())
        .await;
    first.assert(201);
    assert_eq!(first.body, expected);
    assert_eq!(groups_of(app, &bob_id).await, json!(["organizer"]));
    // The role applies at once to the existing token.
    app.create_event(&bob, "Bob's event", 5).await;

    let again = app.post("/api/assign-roles/", app.admin(), body).await;
    again.assert(200);
    assert_eq!(again.body, expected);
    assert_eq!(groups_of(app, &bob_id).await, json!(["organizer"]));

    // A numeric string for the group id; the reply still has a number.
    let admin = app.group("admin").await;
    let by_string = app
        .post(
            "/api/assign-roles/",
            app.admin(),
            json!({ "user_id": bob_id, "group_id": admin.to_string() }),
        )
        .await;
    by_string.assert(201);
    assert_eq!(
        by_string.body,
        json!({
            "message": "User bob assigned to group admin",
            "user_id": bob_id,
            "group_id": admin,
        })
    );
    assert_eq!(groups_of(app, &bob_id).await, json!(["admin", "organizer"]));
    // Without trailing slash; already a member.
    app.post(
        "/api/assign-roles",
        app.admin(),
        json!({ "user_id": bob_id, "group_id": admin }),
    )
    .await
    .assert(200);
}

async fn assign_role_validation(app: &TestApp) {
    let (bob_id, _) = app.user("bob").await;
    let organizer = app.group("organizer").await;
    let unknown_user = uuid::Uuid::new_v4().to_string();

    for (what, body) in [
        (
            "unknown user",
            json!({ "user_id": unknown_user, "group_id": organizer }),
        ),
        (
            "unknown group",
            json!({ "user_id": bob_id, "group_id": organizer + 1000 }),
        ),
    ] {
        let reply = app.post("/api/assign-roles/", app.admin(), body).await;
        assert_eq!(reply.status.as_u16(), 404, "{what}: {}", reply.body);
        assert!(reply.body["detail"].is_string(), "{what}: {}", reply.body);
    }
    for (what, field, body) in [
        (
            "malformed user_id",
            "user_id",
            json!({ "user_id": "not-a-uuid", "group_id": organizer }),
        ),
        (
            "missing user_id",
            "user_id",
            json!({ "group_id": organizer }),
        ),
        ("missing group_id", "group_id", json!({ "user_id": bob_id })),
        (
            "non-numeric group_id",
            "group_id",
            json!({ "user_id": bob_id, "group_id": "abc" }),
        ),
    ] {
        let reply = app.post("/api/assign-roles/", app.admin(), body).await;
        assert!(
            reply.status.as_u16() == 400 && reply.body[field].is_array(),
            "{what}: expected 400 on {field}, got {} {}",
            reply.status,
            reply.body
        );
    }
    assert_eq!(groups_of(app, &bob_id).await, json!([]));
}

async fn assign_roles_is_for_the_superuser_only(app: &TestApp) {
    let (_, boss) = app.user_in("boss", "admin").await;
    let (bob_id, bob) = app.user("bob").await;
    let admin_group = app.group("admin").await;
    let body = json!({ "user_id": bob_id, "group_id": admin_group });
    for token in [boss.as_str(), bob.as_str()] {
        assert_forbidden(
            &app.post("/api/assign-roles/", Some(token), body.clone())
                .await,
        );
        assert_forbidden(&unassign(app, Some(token), body.clone()).await);
    }
    app.post("/api/assign-roles/", None, body.clone())
        .await
        .assert(401);
    assert_eq!(groups_of(app, &bob_id).await, json!([]));

    // Nor can an admin take a role away.
    app.post("/api/assign-roles/", app.admin(), body.clone())
        .await
        .assert(201);
    assert_forbidden(&unassign(app, Some(&boss), body.clone()).await);
    unassign(app, None, body).await.assert(401);
    assert_eq!(groups_of(app, &bob_id).await, json!(["admin"]));
}

async fn unassign_role_removes_membership(app: &TestApp) {
    let (bob_id, bob) = app.user_in("bob", "organizer").await;
    let organizer = app.group("organizer").await;
    let admin = app.group("admin").await;
    app.post(
        "/api/assign-roles/",
        app.admin(),
        json!({ "user_id": bob_id, "group_id": admin }),
    )
    .await
    .assert(201);
    assert_eq!(groups_of(app, &bob_id).await, json!(["admin", "organizer"]));

    let reply = unassign(
        app,
        app.admin(),
        json!({ "user_id": bob_id, "group_id": organizer }),
    )
    .await;
    reply.assert(204);
    assert_eq!(reply.body, Value::Null);
    assert_eq!(groups_of(app, &bob_id).await, json!(["admin"]));

    // A numeric string works here too, and without trailing slash.
    let reply = app
        .request(
            Method::DELETE,
            "/api/assign-roles",
            app.admin(),
            Some(json!({ "user_id": bob_id, "group_id": admin.to_string() })),
        )
        .await;
    reply.assert(204);
    assert_eq!(groups_of(app, &bob_id).await, json!([]));
    // The groups themselves remain.
    assert_eq!(group_names(app).await, vec!["admin", "organizer"]);
    // The role is gone for the existing token.
    app.post("/api/events/", Some(&bob), TestApp::event_body("x", 1))
        .await
        .assert(403);
}
