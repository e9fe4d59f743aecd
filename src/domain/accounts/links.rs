//! One-use links mailed to people (API.md §8.1): verifying the e-mail
//! address of a new account, and choosing a new password. How links are
//! stored and mailed (never their secret) is `db::links`.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::{login, password, sessions};
use crate::cache::Family;
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::{account_token, email_verification, user};
use crate::db::links::issue;
pub use crate::db::links::{LinkPayload, Purpose};
use crate::domain::{Caller, DomainError, DomainResult, FieldErrors};
use crate::state::AppState;

/// A second request within this long sends no second mail (a mailbox is
/// not flooded by someone pressing "send" again and again).
const RESEND_AFTER_SECONDS: i64 = 60;

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
    issue(
        db,
        &state.link_key,
        user_id,
        Purpose::VerifyEmail,
        origin,
        now,
    )
    .await?;
    Ok(())
}

/// An account changed its own address: the new one is unverified until its
/// link is opened. Links sent to the old address stop working (they must not
/// verify the new one); an account that was already waiting keeps whether it
/// is held up (`required`), else it is held up only under
/// `REQUIRE_EMAIL_VERIFICATION` — the Django service's clients change
/// addresses and go on registering. In the change's transaction.
pub async fn reverify_changed_address(
    db: &impl ConnectionTrait,
    state: &AppState,
    user_id: Uuid,
    origin: &str,
) -> Result<(), sea_orm::DbErr> {
    let now = crate::db::now();
    account_token::Entity::update_many()
        .col_expr(account_token::Column::UsedAt, Expr::value(now))
        .filter(account_token::Column::UserId.eq(user_id))
        .filter(account_token::Column::Purpose.eq(Purpose::VerifyEmail.as_str()))
        .filter(account_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    match email_verification::Entity::find_by_id(user_id)
        .one(db)
        .await?
    {
        Some(waiting) => {
            let mut waiting: email_verification::ActiveModel = waiting.into();
            waiting.created_at = Set(now);
            waiting.update(db).await?;
        }
        None => {
            email_verification::ActiveModel {
                user_id: Set(user_id),
                required: Set(false),
                created_at: Set(now),
            }
            .insert(db)
            .await?;
        }
    }
    issue(
        db,
        &state.link_key,
        user_id,
        Purpose::VerifyEmail,
        origin,
        now,
    )
    .await?;
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
    issue(
        &*txn,
        &state.link_key,
        caller.id,
        Purpose::VerifyEmail,
        origin,
        now,
    )
    .await?;
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
        &state.link_key,
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

/// An admin sends an account a link to choose a new password (a forgotten
/// one, or the first one of an account they made): superuser and admin
/// only; an inactive account gets none (a 409 in words).
#[instrument(name = "send_password_reset", skip_all, fields(user = %caller.username))]
pub async fn send_reset_for(
    state: &AppState,
    caller: &Caller,
    user_id: Uuid,
    origin: &str,
) -> DomainResult<user::Model> {
    if !caller.is_admin() {
        return Err(DomainError::Forbidden);
    }
    let account = user::Entity::find_by_id(user_id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    if !account.is_active {
        return Err(DomainError::Conflict(format!(
            "{} is deactivated: activate the account first.",
            account.username
        )));
    }
    let now = crate::db::now();
    let txn = state.db.begin_write().await?;
    issue(
        &*txn,
        &state.link_key,
        account.id,
        Purpose::PasswordReset,
        origin,
        now,
    )
    .await?;
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::of(
            Action::UserPasswordResetRequested,
            &account,
            Changes::none(),
        ),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(
        "Password reset link for {} sent by {}",
        account.username,
        caller.username
    );
    Ok(account)
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
