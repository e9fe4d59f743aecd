//! `Idempotency-Key`: the first answer to a request, kept 24 hours, given
//! again to a retry instead of doing the work twice (API.md §7).
//!
//! A key is bound to its endpoint (payments and scans never see each
//! other's keys: the stored key is the endpoint's name and a SHA-256 of the
//! key as sent), to its caller (the row's user) and to a fingerprint of the
//! request's body: the same key with another body is refused
//! (`IdempotencyKeyReused`, 422) instead of answered with the first
//! request's answer. A key older than 24 hours is forgotten: the request is
//! processed anew.

use chrono::Duration;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use super::{DomainError, DomainResult};
use crate::db::entities::idempotency_key;
use crate::db::errors::is_unique_violation;
use crate::state::AppState;

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

/// The endpoints that honour `Idempotency-Key`, each its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Payments,
    Checkins,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Payments => "payments",
            Endpoint::Checkins => "checkins",
        }
    }
}

/// A request's key: where it was sent, the key, what was asked.
#[derive(Debug, Clone)]
pub struct RequestKey {
    stored: String,
    fingerprint: String,
}

impl RequestKey {
    /// `sent`: the header's value; `fingerprint`: the body's (see
    /// `api::body::JsonBody::fingerprint`).
    pub fn new(endpoint: Endpoint, sent: &str, fingerprint: String) -> RequestKey {
        RequestKey {
            stored: format!("{}:{}", endpoint.name(), crate::digest::sha256_hex(sent)),
            fingerprint,
        }
    }
}

impl RequestKey {
    /// The key as stored (the endpoint's name and the sent key's digest).
    pub(crate) fn stored(&self) -> &str {
        &self.stored
    }
}

/// A response first given for an idempotency key: status and body.
#[derive(Debug, Clone)]
pub struct Remembered {
    pub status: u16,
    pub body: String,
}

fn window_start() -> chrono::DateTime<chrono::Utc> {
    crate::db::now() - Duration::hours(IDEMPOTENCY_WINDOW_HOURS)
}

/// The response first given for this user and key within the window;
/// `IdempotencyKeyReused` when that first request had another body.
pub async fn remembered(
    state: &AppState,
    user_id: Uuid,
    key: &RequestKey,
) -> DomainResult<Option<Remembered>> {
    let found = idempotency_key::Entity::find_by_id((user_id, key.stored.clone()))
        .filter(idempotency_key::Column::CreatedAt.gt(window_start()))
        .one(state.db.conn())
        .await?;
    match found {
        Some(first) if first.fingerprint != key.fingerprint => {
            Err(DomainError::IdempotencyKeyReused)
        }
        Some(first) => Ok(Some(Remembered {
            status: first.status_code as u16,
            body: first.response_body,
        })),
        None => Ok(None),
    }
}

/// Claims a key for a request in the request's own transaction (after
/// forgetting it if it expired), remembering `answer` for it: false when
/// another request holds the key (a concurrent one waited on it and then
/// lost the race on the primary key) — the caller then reads that one's
/// answer with `remembered`.
pub(crate) async fn claim(
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    key: &RequestKey,
    answer: &Remembered,
) -> Result<bool, DbErr> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::UserId.eq(user_id))
        .filter(idempotency_key::Column::Key.eq(key.stored.as_str()))
        .filter(idempotency_key::Column::CreatedAt.lte(window_start()))
        .exec(txn)
        .await?;
    let inserted = idempotency_key::ActiveModel {
        user_id: Set(user_id),
        key: Set(key.stored.clone()),
        status_code: Set(i32::from(answer.status)),
        response_body: Set(answer.body.clone()),
        fingerprint: Set(key.fingerprint.clone()),
        created_at: Set(crate::db::now()),
    }
    .insert(txn)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Keeps an answer (a refusal) for a key; when a concurrent request with
/// the same key answered first, that answer (which the caller should give
/// instead).
pub async fn remember(
    state: &AppState,
    user_id: Uuid,
    key: &RequestKey,
    answer: Remembered,
) -> DomainResult<Remembered> {
    let txn = state.db.begin_write().await?;
    if claim(&*txn, user_id, key, &answer).await? {
        txn.commit().await?;
        return Ok(answer);
    }
    drop(txn);
    Ok(remembered(state, user_id, key).await?.unwrap_or(answer))
}
