//! One-use links mailed to people (API.md §8.1): verifying the e-mail
//! address of a new account, and choosing a new password.
//!
//! A link's secret is never stored: it is the HMAC of the token's id under
//! a key derived from `SECRET_KEY`, so the mail job (which knows only the
//! id) can write the link, and the table keeps the SHA-256 of the secret,
//! which is what a click is looked up by. A copy of the database alone
//! opens no account.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use sha2::{Digest, Sha256};
use tracing::instrument;
use uuid::Uuid;

use super::{login, password, sessions};
use crate::cache::Family;
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::{account_token, email_verification, outbox, user};
use crate::domain::{Caller, DomainError, DomainResult, FieldErrors};
use crate::state::AppState;

/// What a link is for; also the kind of the outbox job that mails it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    PasswordReset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => crate::db::outbox::KIND_VERIFY_EMAIL,
            Purpose::PasswordReset => crate::db::outbox::KIND_PASSWORD_RESET,
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

/// A second request within this long sends no second mail (a mailbox is
/// not flooded by someone pressing "send" again and again).
const RESEND_AFTER_SECONDS: i64 = 60;

/// The key for link secrets, from the server's secret.
pub fn derive_key(secret: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"dicoevent mailed links\0");
    hasher.update(secret);
    hasher.finalize().into()
}

/// The secret in the link of token `id`.
pub fn secret_of(state: &AppState, id: Uuid) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&state.link_key) else {
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
async fn issue(
    db: &impl ConnectionTrait,
    state: &AppState,
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
        token_hash: Set(crate::digest::sha256_hex(secret_of(state, id))),
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

/// A new account must verify its address: records that (`required`: before
/// it may register) and queues the mail, in the account's transaction.
pub async fn start_verification(
    db: &impl ConnectionTrait,
    state: &AppState,
    user_id: Uuid,
    required: bool,
    origin: &str,
) -> Result<(), sea_orm::DbErr> {
    let now = crate::db::now();
    email_verification::ActiveModel {
        user_id: Set(user_id),
        required: Set(required),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    issue(db, state, user_id, Purpose::VerifyEmail, origin, now).await?;
    Ok(())
}

/// Whether a token of `purpose` was issued to `user_id` within the resend
/// pause.
async fn issued_lately(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<bool, sea_orm::DbErr> {
    let last = account_token::Entity::find()
        .filter(account_token::Column::UserId.eq(user_id))
        .filter(account_token::Column::Purpose.eq(purpose.as_str()))
        .order_by_desc(account_token::Column::CreatedAt)
        .one(db)
        .await?;
    Ok(last.is_some_and(|t| now - t.created_at < Duration::seconds(RESEND_AFTER_SECONDS)))
}

/// Whether an account still has to verify its address.
pub async fn pending_verification(
    state: &AppState,
    user_id: Uuid,
) -> DomainResult<Option<email_verification::Model>> {
    Ok(email_verification::Entity::find_by_id(user_id)
        .one(state.db.conn())
        .await?)
}

/// Sends the caller a new verification link (the old ones stay good until
/// they expire). `false`: nothing sent, the account is verified already.
#[instrument(name = "resend_verification", skip_all, fields(user = %caller.username))]
pub async fn resend_verification(
    state: &AppState,
    caller: &Caller,
    origin: &str,
) -> DomainResult<bool> {
    if pending_verification(state, caller.id).await?.is_none() {
        return Ok(false);
    }
    let now = crate::db::now();
    if issued_lately(state.db.conn(), caller.id, Purpose::VerifyEmail, now).await? {
        return Ok(true);
    }
    let txn = state.db.begin_write().await?;
    issue(&*txn, state, caller.id, Purpose::VerifyEmail, origin, now).await?;
    txn.commit().await?;
    tracing::info!("Verification link sent again to {}", caller.username);
    Ok(true)
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefused {
    /// No such link (mistyped, or for another purpose).
    Unknown,
    Used,
    Expired,
}

/// The token behind a link's secret, if it is good now.
async fn find(
    db: &impl ConnectionTrait,
    secret: &str,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> DomainResult<Result<account_token::Model, LinkRefused>> {
    if secret.is_empty() || secret.len() > 100 {
        return Ok(Err(LinkRefused::Unknown));
    }
    let found = account_token::Entity::find()
        .filter(account_token::Column::TokenHash.eq(crate::digest::sha256_hex(secret)))
        .filter(account_token::Column::Purpose.eq(purpose.as_str()))
        .one(db)
        .await?;
    Ok(match found {
        None => Err(LinkRefused::Unknown),
        Some(t) if t.used_at.is_some() => Err(LinkRefused::Used),
        Some(t) if t.expires_at <= now => Err(LinkRefused::Expired),
        Some(t) => Ok(t),
    })
}

/// Marks a token used, if no one did first (two clicks at once: one wins).
async fn take(
    db: &impl ConnectionTrait,
    token: &account_token::Model,
    now: DateTime<Utc>,
) -> Result<bool, sea_orm::DbErr> {
    let done = account_token::Entity::update_many()
        .col_expr(account_token::Column::UsedAt, Expr::value(now))
        .filter(account_token::Column::Id.eq(token.id))
        .filter(account_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Opens a verification link: the account's address is verified. The
/// account it verified, or why not.
#[instrument(name = "verify_email", skip_all)]
pub async fn verify_email(
    state: &AppState,
    secret: &str,
) -> DomainResult<Result<user::Model, LinkRefused>> {
    let now = crate::db::now();
    let txn = state.db.begin_write().await?;
    let token = match find(&*txn, secret, Purpose::VerifyEmail, now).await? {
        Ok(token) => token,
        Err(why) => return Ok(Err(why)),
    };
    let Some(account) = user::Entity::find_by_id(token.user_id).one(&*txn).await? else {
        return Ok(Err(LinkRefused::Unknown));
    };
    if !take(&*txn, &token, now).await? {
        return Ok(Err(LinkRefused::Used));
    }
    let removed = email_verification::Entity::delete_by_id(account.id)
        .exec(&*txn)
        .await?;
    if removed.rows_affected > 0 {
        audit::record_one(
            &*txn,
            &audit::Context::user(account.id, &account.username),
            Entry::of(
                Action::UserEmailVerified,
                &account,
                Changes::none().with("email_verified", false, true),
            ),
        )
        .await?;
    }
    txn.commit().await?;
    state.cache.invalidate(&[Family::Accounts]).await;
    tracing::info!("E-mail address of {} verified", account.username);
    Ok(Ok(account))
}

/// Asks for a password reset link for the account with this address: sent
/// when there is an active one (and none was sent within a minute); the
/// answer never tells whether there was.
#[instrument(name = "request_password_reset", skip_all)]
pub async fn request_password_reset(
    state: &AppState,
    email: &str,
    origin: &str,
) -> DomainResult<()> {
    let key = email.trim().to_lowercase();
    if key.is_empty() {
        return Ok(());
    }
    let Some(account) = user::Entity::find()
        .filter(user::Column::EmailKey.eq(key))
        .filter(user::Column::IsActive.eq(true))
        .one(state.db.conn())
        .await?
    else {
        tracing::info!("Password reset asked for an address no active account has");
        return Ok(());
    };
    let now = crate::db::now();
    if issued_lately(state.db.conn(), account.id, Purpose::PasswordReset, now).await? {
        tracing::info!(
            "Password reset for {} asked again within a minute: no second mail",
            account.username
        );
        return Ok(());
    }
    let txn = state.db.begin_write().await?;
    issue(
        &*txn,
        state,
        account.id,
        Purpose::PasswordReset,
        origin,
        now,
    )
    .await?;
    let by = audit::Context {
        actor: audit::Actor::System,
        origin: audit::Origin::of_this_request(),
    };
    audit::record_one(
        &*txn,
        &by,
        Entry::of(
            Action::UserPasswordResetRequested,
            &account,
            Changes::none(),
        ),
    )
    .await?;
    txn.commit().await?;
    tracing::info!("Password reset link sent to {}", account.username);
    Ok(())
}

/// The account a reset link is for, if the link is good now.
pub async fn reset_account(
    state: &AppState,
    secret: &str,
) -> DomainResult<Result<user::Model, LinkRefused>> {
    let token = match find(
        state.db.conn(),
        secret,
        Purpose::PasswordReset,
        crate::db::now(),
    )
    .await?
    {
        Ok(token) => token,
        Err(why) => return Ok(Err(why)),
    };
    Ok(
        match user::Entity::find_by_id(token.user_id)
            .one(state.db.conn())
            .await?
        {
            Some(account) if account.is_active => Ok(account),
            _ => Err(LinkRefused::Unknown),
        },
    )
}

/// Sets a new password through a reset link: the link and every other
/// reset link of the account are used up, and every session and refresh
/// token of the account ends. A password the rules refuse → `Invalid` on
/// `password`, the link still good.
#[instrument(name = "reset_password", skip_all)]
pub async fn reset_password(
    state: &AppState,
    secret: &str,
    new_password: String,
) -> DomainResult<Result<user::Model, LinkRefused>> {
    let account = match reset_account(state, secret).await? {
        Ok(account) => account,
        Err(why) => return Ok(Err(why)),
    };
    let mut errors = FieldErrors::default();
    let attributes = password::UserAttributes {
        username: &account.username,
        first_name: &account.first_name,
        last_name: &account.last_name,
        email: &account.email,
    };
    for message in password::validate(&new_password, &attributes) {
        errors.add("password", message);
    }
    errors.into_result()?;
    let hash = super::hash_password(new_password).await?;
    let now = crate::db::now();
    let txn = state.db.begin_write().await?;
    let token = match find(&*txn, secret, Purpose::PasswordReset, now).await? {
        Ok(token) => token,
        Err(why) => return Ok(Err(why)),
    };
    if !take(&*txn, &token, now).await? {
        return Ok(Err(LinkRefused::Used));
    }
    account_token::Entity::update_many()
        .col_expr(account_token::Column::UsedAt, Expr::value(now))
        .filter(account_token::Column::UserId.eq(account.id))
        .filter(account_token::Column::Purpose.eq(Purpose::PasswordReset.as_str()))
        .filter(account_token::Column::UsedAt.is_null())
        .exec(&*txn)
        .await?;
    let Some(before) = user::Entity::find_by_id(account.id).one(&*txn).await? else {
        return Ok(Err(LinkRefused::Unknown));
    };
    let mut model: user::ActiveModel = before.clone().into();
    model.password = Set(hash);
    let updated = model.update(&*txn).await?;
    sessions::end_all_for(&*txn, updated.id).await?;
    login::password_changed(&*txn, updated.id).await?;
    audit::record_one(
        &*txn,
        &audit::Context::user(updated.id, &updated.username),
        Entry::of(
            Action::UserPasswordChanged,
            &updated,
            Changes::none().with(
                "password",
                before.password.clone(),
                updated.password.clone(),
            ),
        ),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Accounts]).await;
    tracing::info!("Password of {} set through a reset link", updated.username);
    Ok(Ok(updated))
}

/// A link's token, for the job that mails it: the account, and the link,
/// or `None` when the token or account is gone or the link already used.
pub async fn mailable(
    state: &AppState,
    payload: &LinkPayload,
) -> DomainResult<Option<(user::Model, String, DateTime<Utc>)>> {
    let Some(token) = account_token::Entity::find_by_id(payload.token)
        .one(state.db.conn())
        .await?
    else {
        return Ok(None);
    };
    if token.used_at.is_some() || token.expires_at <= crate::db::now() {
        return Ok(None);
    }
    let Some(account) = user::Entity::find_by_id(token.user_id)
        .one(state.db.conn())
        .await?
    else {
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
        secret_of(state, token.id)
    );
    Ok(Some((account, link, token.expires_at)))
}

/// Refuses a registration by an account that must verify its address
/// first (API.md §8.1).
pub fn check_may_register(state: &AppState, caller: &Caller) -> DomainResult<()> {
    match caller.unverified {
        Some(required) if required || state.config.require_email_verification => {
            Err(DomainError::Unverified)
        }
        _ => Ok(()),
    }
}
