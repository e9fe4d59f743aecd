//! Capacity under concurrency: never oversold.

use futures::future::join_all;
use serde_json::json;

use crate::helpers::TestApp;

crate::backend_tests!(
    ticket_quota_holds_under_200_concurrent_registrations,
    event_quota_holds_across_two_tickets,
    concurrent_duplicates_register_once
);

/// Fires one registration per user at once; returns (201s, 409s, others).
async fn register_all(
    app: &TestApp,
    users: &[(String, String)],
    tickets: &[String],
) -> (usize, usize, Vec<u16>) {
    let requests = users.iter().enumerate().map(|(i, (_, token))| {
        let ticket = &tickets[i % tickets.len()];
        async move { app.register(token, ticket).await.status.as_u16() }
    });
    let statuses = join_all(requests).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let sold_out = statuses.iter().filter(|s| **s == 409).count();
    let others = statuses
        .into_iter()
        .filter(|s| *s != 201 && *s != 409)
        .collect();
    (created, sold_out, others)
}

async fn ticket_quota_holds_under_200_concurrent_registrations(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Popular", 1000).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 50).await;
    let users = app.many_users("fan", 200).await;
    let (created, sold_out, others) =
        register_all(app, &users, std::slice::from_ref(&ticket)).await;
    eprintln!(
        "ticket quota 50, 200 concurrent: {created} created, {sold_out} sold out, others {others:?}"
    );
    assert_eq!((created, sold_out), (50, 150), "others: {others:?}");
    let t = app.get(&format!("/api/tickets/{ticket}/"), None).await;
    assert_eq!(t.body["sold"], 50);
    assert_eq!(t.body["available"], 0);
    let regs = app
        .get(&format!("/api/registrations/?ticket={ticket}"), app.admin())
        .await;
    assert_eq!(regs.body["count"], 50);
    // One more, one at a time, is still refused with the contract's message.
    let late = app.register(&users[0].1, &ticket).await;
    late.assert(409);
    let extra = app.many_users("late", 1).await;
    let refused = app.register(&extra[0].1, &ticket).await;
    refused.assert(409);
    assert_eq!(refused.body, json!({ "detail": "Sold out." }));
}

async fn event_quota_holds_across_two_tickets(app: &TestApp) {
    let event = app.create_event(&app.admin_token, "Small venue", 30).await;
    let first = app.create_ticket(&app.admin_token, &event, 100).await;
    let second = app.create_ticket(&app.admin_token, &event, 100).await;
    let users = app.many_users("guest", 200).await;
    let (created, sold_out, others) =
        register_all(app, &users, &[first.clone(), second.clone()]).await;
    eprintln!(
        "event quota 30 over two tickets, 200 concurrent: {created} created, {sold_out} sold out, others {others:?}"
    );
    assert_eq!((created, sold_out), (30, 170), "others: {others:?}");
    let a = app.get(&format!("/api/tickets/{first}/"), None).await;
    let b = app.get(&format!("/api/tickets/{second}/"), None).await;
    let sold = a.body["sold"].as_i64().unwrap_or(-1) + b.body["sold"].as_i64().unwrap_or(-1);
    assert_eq!(sold, 30);
    let regs = app
        .get(&format!("/api/registrations/?event={event}"), app.admin())
        .await;
    assert_eq!(regs.body["count"], 30);
}

/// Each of 40 users sends the same registration three times at once (the
/// requests for one ticket are written together on PostgreSQL): each user
/// gets exactly one 201 and two "already registered" 409s, and each
/// registration exactly one confirmation job.
async fn concurrent_duplicates_register_once(app: &TestApp) {
    use dicoevent::db::entities::outbox;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    let event = app.create_event(&app.admin_token, "Eager", 1000).await;
    let ticket = app.create_ticket(&app.admin_token, &event, 100).await;
    let users = app.many_users("eager", 40).await;
    let requests = users.iter().flat_map(|(_, token)| {
        let ticket = &ticket;
        (0..3).map(move |_| async move {
            let reply = app.register(token, ticket).await;
            (token.clone(), reply.status.as_u16(), reply.body)
        })
    });
    let replies = join_all(requests).await;
    for (_, token) in &users {
        let mine: Vec<_> = replies.iter().filter(|(t, ..)| t == token).collect();
        let created = mine.iter().filter(|(_, s, _)| *s == 201).count();
        assert_eq!(created, 1, "{mine:?}");
        for (_, status, body) in mine.iter().filter(|(_, s, _)| *s != 201) {
            assert_eq!(*status, 409, "{body}");
            assert_eq!(
                body["detail"], "You are already registered for this ticket.",
                "{body}"
            );
        }
    }
    let t = app.get(&format!("/api/tickets/{ticket}/"), None).await;
    assert_eq!(t.body["sold"], 40);
    let regs = app
        .get(
            &format!("/api/registrations/?ticket={ticket}&page_size=100"),
            app.admin(),
        )
        .await;
    assert_eq!(regs.body["count"], 40);
    let ids: Vec<uuid::Uuid> = regs.body["registrations"]
        .as_array()
        .expect("registrations")
        .iter()
        .map(|r| r["id"].as_str().expect("id").parse().expect("uuid"))
        .collect();
    let jobs = outbox::Entity::find()
        .filter(outbox::Column::RegistrationId.is_in(ids))
        .count(app.state.db.conn())
        .await
        .expect("count jobs");
    assert_eq!(jobs, 40);
}
