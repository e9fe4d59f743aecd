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
    outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(KIND_CONFIRMATION.into()),
        registration_id: Set(Some(registration_id)),
        endpoint_id: Set(None),
        message_id: Set(None),
        dedupe_key: Set(confirmation_key(registration_id)),
        event_start: Set(None),
        run_at: Set(now),
        attempts: Set(0),
        locked_until: Set(None),
        locked_by: Set(None),
        status: Set("pending".into()),
        last_error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        payload: Set(None),
    }
    .insert(db)
    .await
    .map(|_| ())
}
