//! `Idempotency-Key`: the first answer to a request, kept 24 hours per user
//! and key, given again to a retry instead of doing the work twice.

use chrono::Duration;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::DomainResult;
use crate::db::entities::idempotency_key;
use crate::db::errors::is_unique_violation;
use crate::state::AppState;

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

/// A response first given for an idempotency key: status and body.
#[derive(Debug, Clone)]
pub struct Remembered {
    pub status: u16,
    pub body: String,
}

/// The response first given for this user and key within the window.
pub async fn remembered(
    state: &AppState,
    user_id: Uuid,
    key: &str,
) -> DomainResult<Option<Remembered>> {
    let since = crate::db::now() - Duration::hours(IDEMPOTENCY_WINDOW_HOURS);
    let found = idempotency_key::Entity::find_by_id((user_id, key.to_string()))
        .filter(idempotency_key::Column::CreatedAt.gt(since))
        .one(state.db.conn())
        .await?;
    Ok(found.map(|f| Remembered {
        status: f.status_code as u16,
        body: f.response_body,
    }))
}

/// Keeps an answer for a key; when a concurrent request with the same key
/// answered first, that answer (which the caller should give instead).
pub async fn remember(
    state: &AppState,
    user_id: Uuid,
    key: &str,
    answer: Remembered,
) -> DomainResult<Remembered> {
    let now = crate::db::now();
    let txn = state.db.begin_write().await?;
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::UserId.eq(user_id))
        .filter(idempotency_key::Column::Key.eq(key))
        .filter(
            idempotency_key::Column::CreatedAt.lte(now - Duration::hours(IDEMPOTENCY_WINDOW_HOURS)),
        )
        .exec(&*txn)
        .await?;
    let inserted = idempotency_key::ActiveModel {
        user_id: Set(user_id),
        key: Set(key.to_string()),
        status_code: Set(i32::from(answer.status)),
        response_body: Set(answer.body.clone()),
        created_at: Set(now),
    }
    .insert(&*txn)
    .await;
    match inserted {
        Ok(_) => {
            txn.commit().await?;
            Ok(answer)
        }
        Err(e) if is_unique_violation(&e) => {
            drop(txn);
            Ok(remembered(state, user_id, key).await?.unwrap_or(answer))
        }
        Err(e) => Err(e.into()),
    }
}
