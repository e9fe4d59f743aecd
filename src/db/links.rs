//! One-use links mailed to people, as stored (`account_tokens`): what
//! each is for, how its secret is derived, the job that mails it. The rules
//! around them (who gets one, what opening one does) are
//! `domain::accounts::links`.
//!
//! A link's secret is never stored: it is the HMAC of the token's id under
//! a key derived from `SECRET_KEY`, so the mail job (which knows only the
//! id) can write the link, and the table keeps the SHA-256 of the secret,
//! which is what a click is looked up by.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::entities::{account_token, outbox, user};

/// What a link is for; also the kind of the outbox job that mails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    PasswordReset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => super::outbox::KIND_VERIFY_EMAIL,
            Purpose::PasswordReset => super::outbox::KIND_PASSWORD_RESET,
        }
    }

    /// How long a link stays good.
    pub fn lifetime(self) -> Duration {
        match self {
            Purpose::VerifyEmail => Duration::hours(48),
            Purpose::PasswordReset => Duration::hours(1),
        }
    }

    /// The console path a link of this purpose opens.
    pub fn path(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "/console/verify/",
            Purpose::PasswordReset => "/console/password-reset/",
        }
    }
}

/// The key for link secrets, from the server's secret.
pub fn derive_key(secret: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"dicoevent mailed links\0");
    hasher.update(secret);
    hasher.finalize().into()
}

/// The secret in the link of token `id`.
pub fn secret_of(key: &[u8; 32], id: Uuid) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC takes a key of any length")
    };
    mac.update(id.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// What a mail job needs to write a link.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LinkPayload {
    pub token: Uuid,
    /// Scheme, host and path prefix the link starts with (`PUBLIC_URL`, or
    /// the origin of the request that asked for it).
    pub origin: String,
}

/// Writes a new token for `user` and the job that mails its link, inside
/// the caller's transaction.
pub async fn issue(
    db: &impl ConnectionTrait,
    key: &[u8; 32],
    user_id: Uuid,
    purpose: Purpose,
    origin: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, sea_orm::DbErr> {
    let id = Uuid::now_v7();
    account_token::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().into()),
        token_hash: Set(crate::digest::sha256_hex(secret_of(key, id))),
        created_at: Set(now),
        expires_at: Set(now + purpose.lifetime()),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    let payload = LinkPayload {
        token: id,
        origin: origin.trim_end_matches('/').to_owned(),
    };
    outbox::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(purpose.as_str().into()),
        registration_id: Set(None),
        endpoint_id: Set(None),
        message_id: Set(None),
        dedupe_key: Set(format!("{}:{id}", purpose.as_str())),
        event_start: Set(None),
        run_at: Set(now),
        attempts: Set(0),
        locked_until: Set(None),
        locked_by: Set(None),
        status: Set("pending".into()),
        last_error: Set(None),
        created_at: Set(now),
        finished_at: Set(None),
        payload: Set(serde_json::to_string(&payload).ok()),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// A link's token, for the job that mails it: the account, and the link,
/// or `None` when the token or account is gone or the link already used.
pub async fn mailable(
    db: &impl ConnectionTrait,
    key: &[u8; 32],
    payload: &LinkPayload,
    now: DateTime<Utc>,
) -> Result<Option<(user::Model, String, DateTime<Utc>)>, sea_orm::DbErr> {
    let Some(token) = account_token::Entity::find_by_id(payload.token)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if token.used_at.is_some() || token.expires_at <= now {
        return Ok(None);
    }
    let Some(account) = user::Entity::find_by_id(token.user_id).one(db).await? else {
        return Ok(None);
    };
    let purpose = if token.purpose == Purpose::PasswordReset.as_str() {
        Purpose::PasswordReset
    } else {
        Purpose::VerifyEmail
    };
    let link = format!(
        "{}{}{}",
        payload.origin,
        purpose.path(),
        secret_of(key, token.id)
    );
    Ok(Some((account, link, token.expires_at)))
}
