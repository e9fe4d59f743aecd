//! Writing to the outbox (the `outbox` table): jobs queued in the same
//! transaction as the change that causes them. `jobs` runs them.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use uuid::Uuid;

use super::entities::outbox;

pub const KIND_CONFIRMATION: &str = "confirmation";
pub const KIND_REMINDER: &str = "reminder";
/// A webhook message for one endpoint (`db::webhooks`).
pub const KIND_WEBHOOK: &str = "webhook";
/// The mail telling an endpoint's owner that it was disabled.
pub const KIND_WEBHOOK_DISABLED: &str = "webhook_disabled";
/// The mail with a link verifying a new account's address.
pub const KIND_VERIFY_EMAIL: &str = "verify_email";
/// The mail with a link to choose a new password.
pub const KIND_PASSWORD_RESET: &str = "password_reset";

/// The mail telling someone their unpaid hold expired (API.md §9).
pub const KIND_HOLD_EXPIRED: &str = "hold_expired";

/// Enqueues the mail about an expired hold, inside the expiry's transaction
/// (a revived and again expired hold is told again: its key names the
/// moment).
pub async fn enqueue_hold_expired(
    db: &impl ConnectionTrait,
    registration_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    let key = format!(
        "{KIND_HOLD_EXPIRED}:{registration_id}:{}",
        now.timestamp_micros()
    );
    mail_job(KIND_HOLD_EXPIRED, Some(registration_id), key, None, now)
        .insert(db)
        .await
        .map(|_| ())
}

/// A mail job due now: its kind, the registration it is about (if any),
/// the key that makes it unique, and what else it needs (`payload`).
pub fn mail_job(
    kind: &str,
    registration_id: Option<Uuid>,
    dedupe_key: String,
    payload: Option<String>,
    now: DateTime<Utc>,
) -> outbox::ActiveModel {
    outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind.into()),
        registration_id: Set(registration_id),
        endpoint_id: Set(None),
        message_id: Set(None),
        dedupe_key: Set(dedupe_key),
        event_start: Set(None),
        run_at: Set(now),
        attempts: Set(0),
        locked_until: Set(None),
        locked_by: Set(None),
        status: Set("pending".into()),
        last_error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        payload: Set(payload),
    }
}

/// The outbox key that makes a registration's confirmation unique.
pub fn confirmation_key(registration_id: Uuid) -> String {
    format!("confirmation:{registration_id}")
}

/// Enqueues the confirmation of a new registration, inside its transaction.
pub async fn enqueue_confirmation(
    db: &impl ConnectionTrait,
    registration_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    mail_job(
        KIND_CONFIRMATION,
        Some(registration_id),
        confirmation_key(registration_id),
        None,
        now,
    )
    .insert(db)
    .await
    .map(|_| ())
}

/// The mail telling one attendee that their event was cancelled, moved or
/// changed place (`payload`: what changed).
pub const KIND_EVENT_CHANGED: &str = "event_changed";

/// What an attendee is told about a change of their event.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventChange {
    /// The event was cancelled (then nothing else is said).
    pub cancelled: bool,
    /// Start, end and place before and after, for those that changed.
    pub start_time: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub end_time: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub location: Option<(String, String)>,
}

impl EventChange {
    /// What attendees must hear about an update, if anything: a
    /// cancellation, or a new start, end or place of an event not over.
    pub fn between(
        before: &super::entities::event::Model,
        after: &super::entities::event::Model,
        now: DateTime<Utc>,
    ) -> Option<EventChange> {
        if before.end_time < now && after.end_time < now {
            return None;
        }
        if after.status == "cancelled" {
            return (before.status != "cancelled").then(|| EventChange {
                cancelled: true,
                ..EventChange::default()
            });
        }
        let change = EventChange {
            cancelled: false,
            start_time: (before.start_time != after.start_time)
                .then_some((before.start_time, after.start_time)),
            end_time: (before.end_time != after.end_time)
                .then_some((before.end_time, after.end_time)),
            location: (before.location.trim() != after.location.trim())
                .then(|| (before.location.clone(), after.location.clone())),
        };
        (change != EventChange::default()).then_some(change)
    }
}

/// Queues one mail per registration of `event_id` about `change`, inside
/// the update's transaction (one statement, however many attendees): each
/// is told exactly once, and only if the change is committed.
pub async fn enqueue_event_change(
    db: &impl ConnectionTrait,
    event_id: Uuid,
    change: &EventChange,
    now: DateTime<Utc>,
) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::{DbBackend, Statement};
    let backend = db.get_database_backend();
    let payload = serde_json::to_string(change)
        .map_err(|e| sea_orm::DbErr::Custom(format!("the change as JSON: {e}")))?;
    let prefix = format!("{KIND_EVENT_CHANGED}:{}:", Uuid::now_v7());
    let (new_id, registration_text) = match backend {
        DbBackend::Postgres => ("gen_random_uuid()", "r.id::text"),
        _ => ("randomblob(16)", "lower(hex(r.id))"),
    };
    // Numbered placeholders on PostgreSQL, positional ones on SQLite.
    let (p, values): (Vec<String>, Vec<sea_orm::Value>) = {
        let ordered: Vec<sea_orm::Value> = vec![
            KIND_EVENT_CHANGED.into(),
            prefix.into(),
            now.into(),
            now.into(),
            payload.into(),
            event_id.into(),
        ];
        let marks = (1..=ordered.len())
            .map(|n| match backend {
                DbBackend::Postgres => format!("${n}"),
                _ => "?".to_owned(),
            })
            .collect();
        (marks, ordered)
    };
    let sql = format!(
        "INSERT INTO outbox (id, kind, registration_id, endpoint_id, message_id, dedupe_key, \
         event_start, run_at, attempts, locked_until, locked_by, status, last_error, created_at, \
         finished_at, payload) \
         SELECT {new_id}, {}, r.id, NULL, NULL, {} || {registration_text}, NULL, {}, 0, NULL, \
         NULL, 'pending', NULL, {}, NULL, {} FROM registrations r WHERE r.event_id = {} \
         AND r.status <> 'expired'",
        p[0], p[1], p[2], p[3], p[4], p[5]
    );
    let statement = Statement::from_sql_and_values(backend, sql, values);
    Ok(db.execute_raw(statement).await?.rows_affected())
}
