//! Logging in (with throttling of repeated failures), refresh tokens and
//! their revocation.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use tracing::instrument;
use uuid::Uuid;

use super::password::{self, Verified};
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::{login_failure, password_change, revoked_token, user};
use crate::domain::{Caller, DomainError, DomainResult, FieldErrors};
use crate::jwt::{Claims, TokenType};
use crate::state::AppState;

/// A hash to verify against when the username is unknown, so that a missing
/// account takes as long to refuse as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$mEHo4UkmWk5STpDSHzIvpp0ySzYfb0m+PEUS8UVZGXo";

/// A fresh token pair.
pub struct TokenPair {
    pub refresh: String,
    pub access: String,
}

/// Checks a username and password from `client` (its address, for the
/// throttle): the account when they match an active user.
///
/// Attempts are counted per (username, address) and per address (API.md
/// §12): a stranger elsewhere cannot lock a person out. Each attempt claims
/// its place before the password is checked (a row, committed, then
/// counted), so however many arrive at once at most the limit are checked;
/// past it the answer is `Throttled` whatever the password. A wrong
/// password keeps its row as a failure; a right one removes it and clears
/// the failures of its (username, address).
#[instrument(name = "login", skip_all, fields(client = %client))]
pub async fn verify_credentials(
    state: &AppState,
    username: &str,
    password: String,
    client: std::net::IpAddr,
) -> DomainResult<user::Model> {
    let username_key = super::username_key(username);
    let user_key = format!("user:{username_key}|{client}");
    let addr_key = format!("addr:{client}");
    let limits = &state.config.login_throttle;
    let claimed = claim_attempt(
        state,
        &[
            (&user_key, limits.max_failures),
            (&addr_key, limits.max_failures_per_address),
        ],
    )
    .await?;

    let found = user::Entity::find()
        .filter(user::Column::UsernameKey.eq(username_key.as_str()))
        .one(state.db.conn())
        .await?;
    let stored = found
        .as_ref()
        .map(|u| u.password.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_string());
    let verified = password::verify_async(password.clone(), stored).await?;
    let account = match (found, &verified) {
        (Some(u), Verified::Yes | Verified::YesRehash) if u.is_active => u,
        (found, _) => {
            // People type their password in the username field: an unknown
            // name is logged as a short digest, never as typed.
            let who = match &found {
                Some(u) => u.username.clone(),
                None => format!("an unknown username (digest {})", short_digest(username)),
            };
            tracing::warn!("Login failed for {who} from {client}");
            return Err(DomainError::BadCredentials);
        }
    };
    if verified == Verified::YesRehash {
        // An imported Django hash: replace it with Argon2id now that we know
        // the password.
        let fresh = super::hash_password(password).await?;
        let mut model: user::ActiveModel = account.clone().into();
        model.password = Set(fresh);
        let txn = state.db.begin_write().await?;
        let upgraded = model.update(&*txn).await?;
        // The same password, stored the new way: a change of the stored
        // hash, by the system.
        audit::record_one(
            &*txn,
            &audit::Context::system(),
            Entry::updated(Action::UserUpdated, &account, &upgraded),
        )
        .await?;
        txn.commit().await?;
        tracing::info!("Password hash of {} upgraded to Argon2id", account.username);
    }
    succeeded(state, &claimed, &user_key, &account).await?;
    tracing::info!("Login succeeded for {} from {client}", account.username);
    Ok(account)
}

/// The first 8 hex digits of a SHA-256: enough to tell repeated attempts
/// apart in the log, nothing of what was typed.
fn short_digest(text: &str) -> String {
    let mut digest = crate::digest::sha256_hex(text);
    digest.truncate(8);
    digest
}

/// Logs in: a token pair for the account the credentials name.
pub async fn login(
    state: &AppState,
    username: &str,
    password: String,
    client: std::net::IpAddr,
) -> DomainResult<TokenPair> {
    let account = verify_credentials(state, username, password, client).await?;
    let (refresh, _) = state.jwt.issue(account.id, TokenType::Refresh)?;
    let (access, _) = state.jwt.issue(account.id, TokenType::Access)?;
    Ok(TokenPair { refresh, access })
}

/// Claims one attempt under each key: a failure row per key, committed,
/// then the rows of each key within the window counted (its own included).
/// Rows commit in some order and each attempt counts at least those before
/// its own, so at most `limit` attempts of a key ever see a count within
/// it. Past a limit the claimed rows are removed again (a refused attempt
/// does not extend the lock-out) and the answer is `Throttled` with the
/// seconds until the oldest counted failure leaves the window. The ids of
/// the rows claimed.
async fn claim_attempt(state: &AppState, keys: &[(&str, u32)]) -> DomainResult<Vec<i64>> {
    let limits = &state.config.login_throttle;
    let window = chrono::Duration::from_std(limits.window)
        .map_err(|e| DomainError::Internal(anyhow::anyhow!("throttle window: {e}")))?;
    let now = crate::db::now();
    let since = now - window;
    let txn = state.db.begin_write().await?;
    let mut claimed = Vec::with_capacity(keys.len());
    for (key, _) in keys {
        let row = login_failure::ActiveModel {
            key: Set((*key).to_string()),
            failed_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
        claimed.push(row.id);
    }
    // Forget failures that no longer count.
    login_failure::Entity::delete_many()
        .filter(login_failure::Column::FailedAt.lt(since))
        .exec(&*txn)
        .await?;
    txn.commit().await?;

    let mut retry_after: Option<i64> = None;
    for (key, limit) in keys {
        let counted: Vec<(i64, DateTime<Utc>)> = login_failure::Entity::find()
            .filter(login_failure::Column::Key.eq(*key))
            .filter(login_failure::Column::FailedAt.gt(since))
            .order_by_desc(login_failure::Column::FailedAt)
            .all(state.db.conn())
            .await?
            .into_iter()
            .map(|f| (f.id, f.failed_at))
            .collect();
        if counted.len() > *limit as usize {
            // Allowed again when the limit-th most recent other failure
            // leaves the window.
            let others: Vec<DateTime<Utc>> = counted
                .iter()
                .filter(|(id, _)| !claimed.contains(id))
                .map(|(_, at)| *at)
                .collect();
            let wait = others
                .get((*limit as usize).saturating_sub(1))
                .map_or(1, |pivot| (*pivot + window - now).num_seconds().max(1));
            retry_after = Some(retry_after.map_or(wait, |r| r.max(wait)));
        }
    }
    match retry_after {
        Some(secs) => {
            forget(state, &claimed).await?;
            let names: Vec<&str> = keys
                .iter()
                .map(|(k, _)| {
                    if k.starts_with("addr:") {
                        *k
                    } else {
                        "a username"
                    }
                })
                .collect();
            tracing::warn!("Login throttled for {names:?}, retry in {secs}s");
            Err(DomainError::Throttled {
                retry_after: secs as u64,
            })
        }
        None => Ok(claimed),
    }
}

/// Removes failure rows by id.
async fn forget(state: &AppState, ids: &[i64]) -> DomainResult<()> {
    let txn = state.db.begin_write().await?;
    login_failure::Entity::delete_many()
        .filter(login_failure::Column::Id.is_in(ids.iter().copied()))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// A right password: its claimed rows and the failures of its (username,
/// address) go, and the log says who signed in.
async fn succeeded(
    state: &AppState,
    claimed: &[i64],
    user_key: &str,
    account: &user::Model,
) -> DomainResult<()> {
    let txn = state.db.begin_write().await?;
    login_failure::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(login_failure::Column::Id.is_in(claimed.iter().copied()))
                .add(login_failure::Column::Key.eq(user_key)),
        )
        .exec(&*txn)
        .await?;
    audit::record_one(
        &*txn,
        &audit::Context::user(account.id, &account.username),
        Entry::of(Action::UserLoggedIn, account, Changes::none()),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Records that an account's password changed now (in the change's
/// transaction): refresh tokens issued before are refused from then on.
pub(crate) async fn password_changed(
    txn: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    password_change::Entity::delete_by_id(user_id)
        .exec(txn)
        .await?;
    password_change::ActiveModel {
        user_id: Set(user_id),
        changed_at: Set(crate::db::now()),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// When an account's password last changed (seconds since the epoch), as
/// the bearer check reads it under `JWT_REVOKE_ACCESS_ON_PASSWORD_CHANGE`:
/// cached with the accounts (a password change clears them).
pub async fn password_changed_at(state: &AppState, user_id: Uuid) -> DomainResult<Option<i64>> {
    let found = state
        .cache
        .shared(
            crate::cache::Family::Accounts,
            &format!("password-changed:{user_id}"),
            || async {
                Ok::<_, DomainError>(
                    password_change::Entity::find_by_id(user_id)
                        .one(state.db.conn())
                        .await?
                        .map(|c| c.changed_at.timestamp()),
                )
            },
        )
        .await?;
    Ok(*found)
}

/// Whether a token issued at `iat` predates the password change at
/// `changed` (both in whole seconds: one issued in the change's second
/// counts as after it).
pub fn issued_before(iat: i64, changed: Option<i64>) -> bool {
    changed.is_some_and(|changed| iat < changed)
}

/// A valid, unrevoked refresh token of an active user, issued after the
/// account's password last changed.
async fn check_refresh(state: &AppState, token: &str) -> DomainResult<(Claims, user::Model)> {
    let Some((claims, user_id)) = state.jwt.verify(token, TokenType::Refresh) else {
        return Err(DomainError::TokenNotValid("Token is invalid or expired"));
    };
    let revoked = revoked_token::Entity::find_by_id(claims.jti.clone())
        .one(state.db.conn())
        .await?;
    if revoked.is_some() {
        return Err(DomainError::TokenNotValid("Token is blacklisted"));
    }
    if issued_before(claims.iat, password_changed_at(state, user_id).await?) {
        // Issued before the password changed.
        return Err(DomainError::TokenNotValid("Token is invalid or expired"));
    }
    match user::Entity::find_by_id(user_id)
        .one(state.db.conn())
        .await?
    {
        Some(u) if u.is_active => Ok((claims, u)),
        Some(_) => Err(DomainError::TokenNotValid("User is inactive")),
        None => Err(DomainError::TokenNotValid("User not found")),
    }
}

/// A new access token for a refresh token.
#[instrument(name = "refresh", skip_all)]
pub async fn refresh(state: &AppState, token: &str) -> DomainResult<String> {
    let (_, account) = check_refresh(state, token).await?;
    let (access, _) = state.jwt.issue(account.id, TokenType::Access)?;
    tracing::info!("Access token refreshed for {}", account.username);
    Ok(access)
}

/// Revokes the caller's refresh token.
#[instrument(name = "logout", skip_all, fields(user = %caller.username))]
pub async fn revoke(state: &AppState, caller: &Caller, token: &str) -> DomainResult<()> {
    let (claims, account) = check_refresh(state, token).await?;
    if account.id != caller.id {
        return Err(DomainError::Invalid(FieldErrors::single(
            "refresh",
            "This token does not belong to the authenticated user.",
        )));
    }
    let expires_at = DateTime::<Utc>::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
    let txn = state.db.begin_write().await?;
    // Expired revocations are useless: the token is refused for its expiry.
    revoked_token::Entity::delete_many()
        .filter(revoked_token::Column::ExpiresAt.lt(crate::db::now()))
        .exec(&*txn)
        .await?;
    // A token revoked twice (two logouts racing) is one logout: the
    // second inserts nothing and logs nothing (an error would abort the
    // transaction on PostgreSQL).
    let inserted = revoked_token::Entity::insert(revoked_token::ActiveModel {
        jti: Set(claims.jti),
        expires_at: Set(expires_at),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(revoked_token::Column::Jti)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&*txn)
    .await?;
    if inserted > 0 {
        audit::record_one(
            &*txn,
            &caller.audit(),
            Entry::of(Action::UserLoggedOut, &account, Changes::none()),
        )
        .await?;
    }
    txn.commit().await?;
    tracing::info!("Logout: refresh token of {} revoked", caller.username);
    Ok(())
}

/// The id a token pair would be issued for (used by tests and tools that
/// mint tokens for existing accounts).
pub fn issue_access(state: &AppState, user_id: Uuid) -> DomainResult<String> {
    Ok(state.jwt.issue(user_id, TokenType::Access)?.0)
}
