//! Sessions of the web console: an opaque random value in a cookie, kept
//! server-side as its SHA-256, with a CSRF token, ending after
//! `SESSION_IDLE` without a request, on logout, and when the user's
//! password changes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::load_caller;
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::console_session;
use crate::domain::{Caller, DomainResult};
use crate::state::AppState;

/// How often a session's last activity is written (not on every request).
const TOUCH_EVERY_SECONDS: i64 = 60;

/// A random value, base64url (for cookies and CSRF tokens).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn key_of(token: &str) -> String {
    crate::digest::sha256_hex(token)
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub caller: Caller,
    pub csrf_token: String,
    /// The event whose door this browser is at (the scan page).
    pub door_event: Option<Uuid>,
}

/// Starts a session for a user whose credentials were just verified: the
/// cookie value (given to the browser once, never stored) and the session.
pub async fn start(state: &AppState, caller: Caller) -> DomainResult<(String, Session)> {
    let token = random_token();
    let csrf_token = random_token();
    let now = crate::db::now();
    let txn = state.db.begin_write().await?;
    console_session::ActiveModel {
        id: Set(key_of(&token)),
        user_id: Set(caller.id),
        csrf_token: Set(csrf_token.clone()),
        created_at: Set(now),
        last_seen_at: Set(now),
        door_event_id: Set(None),
    }
    .insert(&*txn)
    .await?;
    txn.commit().await?;
    tracing::info!("Console session started for {}", caller.username);
    Ok((
        token,
        Session {
            caller,
            csrf_token,
            door_event: None,
        },
    ))
}

/// The session of a cookie value, if it is still good (not idle too long,
/// its user still active).
pub async fn resume(state: &AppState, token: &str) -> DomainResult<Option<Session>> {
    let key = key_of(token);
    let Some(found) = console_session::Entity::find_by_id(key.clone())
        .one(state.db.conn())
        .await?
    else {
        return Ok(None);
    };
    let now = crate::db::now();
    let idle = Duration::from_std(state.config.session_idle).unwrap_or(Duration::hours(8));
    let caller = match load_caller(state, found.user_id).await? {
        Ok(caller) if found.last_seen_at + idle > now => caller,
        // Idle too long, or the user was deactivated or deleted.
        _ => {
            end_key(state, &key).await?;
            return Ok(None);
        }
    };
    if now - found.last_seen_at > Duration::seconds(TOUCH_EVERY_SECONDS) {
        let txn = state.db.begin_write().await?;
        console_session::Entity::update_many()
            .col_expr(
                console_session::Column::LastSeenAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(console_session::Column::Id.eq(key))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
    }
    Ok(Some(Session {
        caller,
        csrf_token: found.csrf_token,
        door_event: found.door_event_id,
    }))
}

/// Remembers which event's door this browser is at (`None`: none yet).
pub async fn set_door(state: &AppState, token: &str, event: Option<Uuid>) -> DomainResult<()> {
    let txn = state.db.begin_write().await?;
    console_session::Entity::update_many()
        .col_expr(
            console_session::Column::DoorEventId,
            sea_orm::sea_query::Expr::value(event),
        )
        .filter(console_session::Column::Id.eq(key_of(token)))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

async fn end_key(state: &AppState, key: &str) -> DomainResult<()> {
    let txn = state.db.begin_write().await?;
    console_session::Entity::delete_by_id(key.to_string())
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Logs out the browser holding this cookie value.
pub async fn end(state: &AppState, token: &str, caller: &Caller) -> DomainResult<()> {
    let txn = state.db.begin_write().await?;
    let ended = console_session::Entity::delete_by_id(key_of(token))
        .exec(&*txn)
        .await?;
    if ended.rows_affected > 0 {
        let entry = Entry::about(
            Action::UserLoggedOut,
            "user",
            caller.id.to_string(),
            None,
            Changes::none(),
        );
        audit::record_one(&*txn, &caller.audit(), entry).await?;
    }
    txn.commit().await?;
    tracing::info!("Console session ended by {}", caller.username);
    Ok(())
}

/// Ends every session of a user (password changed, account deactivated),
/// inside the transaction that makes the change.
pub async fn end_all_for(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), sea_orm::DbErr> {
    console_session::Entity::delete_many()
        .filter(console_session::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}
