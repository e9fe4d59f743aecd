//! Behaviours found in review, kept from coming back.

use serde_json::json;

use crate::helpers::{PASSWORD, SUPERUSER, TestApp};

crate::backend_tests!(
    patching_only_ignored_fields_changes_nothing,
    a_stale_authorization_header_does_not_block_login,
    undecodable_paths_get_a_json_error,
    registrations_racing_a_ticket_delete_never_fail,
);

async fn patching_only_ignored_fields_changes_nothing(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Quiet", 10).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 5).await;
    let path = format!("/api/tickets/{ticket}/");
    let before = app.get(&path, None).await.body;
    for body in [
        json!({}),
        json!({ "sold": 99 }),
        json!({ "id": "x", "event_id": event }),
    ] {
        let reply = app.patch(&path, app.admin(), body.clone()).await;
        reply.assert(200);
        assert_eq!(reply.body, before, "{body}");
    }
}

async fn a_stale_authorization_header_does_not_block_login(app: &TestApp) {
    // SimpleJWT's token views ignore the Authorization header.
    let res = app
        .client
        .post(app.url("/api/login/"))
        .bearer_auth("expired.or.garbage")
        .json(&json!({ "username": SUPERUSER, "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    let reply = TestApp::reply(res).await;
    reply.assert(200);
    let refresh = reply.body["refresh"].as_str().expect("refresh").to_owned();
    let res = app
        .client
        .post(app.url("/api/token/refresh/"))
        .bearer_auth("expired.or.garbage")
        .json(&json!({ "refresh": refresh }))
        .send()
        .await
        .expect("refresh");
    TestApp::reply(res).await.assert(200);
}

async fn undecodable_paths_get_a_json_error(app: &TestApp) {
    let res = app
        .client
        .get(app.url("/api/events/%FF%FE/"))
        .send()
        .await
        .expect("get");
    let status = res.status().as_u16();
    let reply = TestApp::reply(res).await;
    assert!(status == 400 || status == 404, "{status}");
    assert!(reply.body["detail"].is_string(), "{}", reply.body);
}

/// Registrations in flight while their ticket is deleted: each one either
/// succeeds (and goes with the ticket) or is refused — never a 500 (e.g. a
/// PostgreSQL deadlock) — and the event's places all come back.
async fn registrations_racing_a_ticket_delete_never_fail(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Racing", 40).await;
    let doomed = app.create_ticket(&app.admin_token, &event, 100).await;
    let users = app.many_users("racer", 40).await;
    let registrations = users.iter().map(|(_, token)| {
        let doomed = doomed.clone();
        async move { app.register(token, &doomed).await.status.as_u16() }
    });
    let delete = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        app.delete(&format!("/api/tickets/{doomed}/"), app.admin())
            .await
            .status
            .as_u16()
    };
    let (statuses, deleted) = tokio::join!(futures::future::join_all(registrations), delete);
    assert_eq!(deleted, 204);
    for status in &statuses {
        assert!(
            [201, 400, 404, 409].contains(status),
            "unexpected {status}: {statuses:?}"
        );
    }
    // Every place came back: the event's full quota can be sold again.
    let fresh = app.create_ticket(&app.admin_token, &event, 100).await;
    let again: Vec<u16> = futures::future::join_all(users.iter().map(|(_, token)| {
        let fresh = fresh.clone();
        async move { app.register(token, &fresh).await.status.as_u16() }
    }))
    .await;
    assert_eq!(again.iter().filter(|s| **s == 201).count(), 40, "{again:?}");
}
