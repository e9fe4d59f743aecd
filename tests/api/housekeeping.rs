//! Housekeeping: what only grows is pruned once it can no longer matter,
//! and nothing else (`jobs::housekeeping`).

use chrono::{Duration, Utc};
use dicoevent::db::entities::{
    console_session, idempotency_key, login_failure, outbox, revoked_token,
};
use dicoevent::jobs::housekeeping::{self, Pruned};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::helpers::TestApp;

crate::backend_tests!(
    each_table_loses_only_rows_that_no_longer_matter,
    a_backlog_goes_in_batches,
    two_workers_at_once_prune_each_row_once,
);

/// A copy of `job` under a new id and key, finished at `finished_at` with
/// `status`, for an event starting at `event_start`.
async fn job_like(
    app: &TestApp,
    job: &outbox::Model,
    status: &str,
    finished_at: chrono::DateTime<Utc>,
    event_start: Option<chrono::DateTime<Utc>>,
) -> Uuid {
    let id = Uuid::now_v7();
    outbox::ActiveModel {
        id: Set(id),
        kind: Set(job.kind.clone()),
        registration_id: Set(job.registration_id),
        endpoint_id: Set(None),
        message_id: Set(None),
        dedupe_key: Set(format!("test:{id}")),
        event_start: Set(event_start),
        run_at: Set(finished_at),
        attempts: Set(1),
        locked_until: Set(None),
        locked_by: Set(None),
        status: Set(status.into()),
        last_error: Set(None),
        created_at: Set(finished_at),
        finished_at: Set(Some(finished_at)),
        payload: Set(None),
    }
    .insert(app.state.db.conn())
    .await
    .expect("job inserted");
    id
}

async fn exists_job(app: &TestApp, id: Uuid) -> bool {
    outbox::Entity::find_by_id(id)
        .one(app.state.db.conn())
        .await
        .expect("read")
        .is_some()
}

async fn each_table_loses_only_rows_that_no_longer_matter(app: &TestApp) {
    let now = Utc::now();
    let db = app.state.db.conn();
    let admin = app.admin_token.clone();

    // A real registration: its confirmation job is the model of the others.
    let event = app.create_event(&admin, "Housekeeping", 10).await;
    let ticket = app.create_ticket(&admin, &event, 10).await;
    let (_, attendee) = app.user("keeper").await;
    app.register(&attendee, &ticket).await.assert(201);
    let confirmation = outbox::Entity::find()
        .one(db)
        .await
        .expect("read")
        .expect("a confirmation job");
    let old = now - Duration::days(8);
    let pruned_done = job_like(app, &confirmation, "done", old, None).await;
    let pruned_skipped = job_like(app, &confirmation, "skipped", old, Some(old)).await;
    let kept_recent = job_like(app, &confirmation, "done", now - Duration::days(6), None).await;
    let kept_dead = job_like(app, &confirmation, "dead", old, None).await;
    // A reminder sent long ago for an event that has not started yet: its
    // key keeps the reminder from being enqueued again.
    let kept_reminder = job_like(
        app,
        &confirmation,
        "done",
        old,
        Some(now + Duration::hours(1)),
    )
    .await;

    let user = Uuid::parse_str(&app.superuser_id).expect("uuid");
    for (key, age) in [
        ("old-key", Duration::hours(25)),
        ("young-key", Duration::hours(23)),
    ] {
        idempotency_key::ActiveModel {
            user_id: Set(user),
            key: Set(key.into()),
            status_code: Set(201),
            response_body: Set("{}".into()),
            fingerprint: Set(String::new()),
            created_at: Set(now - age),
        }
        .insert(db)
        .await
        .expect("key");
    }
    // SESSION_IDLE is 8 h by default.
    for (id, idle) in [
        ("idle-session", Duration::hours(9)),
        ("live-session", Duration::hours(1)),
    ] {
        console_session::ActiveModel {
            id: Set(id.into()),
            user_id: Set(user),
            csrf_token: Set("csrf".into()),
            created_at: Set(now - Duration::days(2)),
            last_seen_at: Set(now - idle),
            door_event_id: Set(None),
        }
        .insert(db)
        .await
        .expect("session");
    }
    for (jti, expires) in [
        ("expired-jti", now - Duration::minutes(1)),
        ("valid-jti", now + Duration::hours(1)),
    ] {
        revoked_token::ActiveModel {
            jti: Set(jti.into()),
            expires_at: Set(expires),
        }
        .insert(db)
        .await
        .expect("revoked token");
    }
    // LOGIN_THROTTLE_WINDOW is 15 min by default.
    for (key, age) in [
        ("user:old", Duration::minutes(16)),
        ("user:recent", Duration::minutes(1)),
    ] {
        login_failure::ActiveModel {
            key: Set(key.into()),
            failed_at: Set(now - age),
            ..Default::default()
        }
        .insert(db)
        .await
        .expect("failure");
    }

    let pruned = housekeeping::pass(&app.state, now).await.expect("pass");
    assert_eq!(
        pruned,
        Pruned {
            outbox: 2,
            idempotency_keys: 1,
            console_sessions: 1,
            revoked_tokens: 1,
            login_failures: 1,
        }
    );
    assert!(!exists_job(app, pruned_done).await);
    assert!(!exists_job(app, pruned_skipped).await);
    for kept in [kept_recent, kept_dead, kept_reminder, confirmation.id] {
        assert!(exists_job(app, kept).await, "job {kept} must stay");
    }
    let keys: Vec<String> = idempotency_key::Entity::find()
        .all(db)
        .await
        .expect("read")
        .into_iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(keys, ["young-key"]);
    let sessions: Vec<String> = console_session::Entity::find()
        .all(db)
        .await
        .expect("read")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(sessions, ["live-session"]);
    let tokens: Vec<String> = revoked_token::Entity::find()
        .all(db)
        .await
        .expect("read")
        .into_iter()
        .map(|t| t.jti)
        .collect();
    assert_eq!(tokens, ["valid-jti"]);
    let failures: Vec<String> = login_failure::Entity::find()
        .all(db)
        .await
        .expect("read")
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(failures, ["user:recent"]);

    // A second pass finds nothing more.
    let again = housekeeping::pass(&app.state, now).await.expect("pass");
    assert_eq!(again.total(), 0, "{again}");
}

async fn a_backlog_goes_in_batches(app: &TestApp) {
    let now = Utc::now();
    let db = app.state.db.conn();
    let rows = housekeeping::BATCH * 2 + 7;
    let expired = now - Duration::days(1);
    let models: Vec<revoked_token::ActiveModel> = (0..rows)
        .map(|i| revoked_token::ActiveModel {
            jti: Set(format!("backlog-{i}")),
            expires_at: Set(expired),
        })
        .collect();
    for chunk in models.chunks(200) {
        revoked_token::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await
            .expect("backlog");
    }
    let pruned = housekeeping::pass(&app.state, now).await.expect("pass");
    assert_eq!(pruned.revoked_tokens, rows);
    let left = revoked_token::Entity::find()
        .filter(revoked_token::Column::ExpiresAt.lt(now))
        .count(db)
        .await
        .expect("count");
    assert_eq!(left, 0);
}

/// Two workers pruning the same backlog at once: every row goes, each
/// counted by exactly one of them, and neither fails.
async fn two_workers_at_once_prune_each_row_once(app: &TestApp) {
    let now = Utc::now();
    let rows = housekeeping::BATCH * 4;
    let models: Vec<revoked_token::ActiveModel> = (0..rows)
        .map(|i| revoked_token::ActiveModel {
            jti: Set(format!("shared-{i}")),
            expires_at: Set(now - Duration::hours(1)),
        })
        .collect();
    for chunk in models.chunks(200) {
        revoked_token::Entity::insert_many(chunk.to_vec())
            .exec(app.state.db.conn())
            .await
            .expect("backlog");
    }
    let (first, second) = tokio::join!(
        housekeeping::pass(&app.state, now),
        housekeeping::pass(&app.state, now)
    );
    let (first, second) = (first.expect("first pass"), second.expect("second pass"));
    assert_eq!(first.revoked_tokens + second.revoked_tokens, rows);
    let left = revoked_token::Entity::find()
        .count(app.state.db.conn())
        .await
        .expect("count");
    assert_eq!(left, 0);
}

/// A worker prunes by itself, every `HOUSEKEEPING_INTERVAL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_prunes_on_its_own() {
    let app = TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        &[("HOUSEKEEPING_INTERVAL", "1s")],
    )
    .await;
    revoked_token::ActiveModel {
        jti: Set("expired-for-the-worker".into()),
        expires_at: Set(Utc::now() - Duration::minutes(5)),
    }
    .insert(app.state.db.conn())
    .await
    .expect("revoked token");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(dicoevent::jobs::run_worker(app.state.clone(), stopped));
    let mut gone = false;
    for _ in 0..100 {
        let left = revoked_token::Entity::find()
            .count(app.state.db.conn())
            .await
            .expect("count");
        if left == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = stop.send(true);
    let _ = worker.await;
    assert!(gone, "the worker did not prune the expired revocation");
    app.cleanup().await;
}
