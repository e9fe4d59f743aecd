//! `/api/login/`, `/api/token/` (and `/api/token/refresh/`), `/api/logout/`:
//! SimpleJWT's token pair, refresh and blacklist, with login throttling.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde_json::{Value, json};
use tracing::instrument;

use super::input::{JsonBody, Text};
use crate::AppState;
use crate::auth::AuthUser;
use crate::auth::jwt::{Claims, TokenType};
use crate::auth::password::{self, Verified};
use crate::db::entities::{login_failure, revoked_token, user};
use crate::error::{ApiError, ApiResult, is_unique_violation};

/// Login and refresh: outside the authentication layer, as SimpleJWT's token
/// views are, so a stale `Authorization` header never blocks a new login.
pub fn public_router() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/token", post(refresh))
        .route("/token/refresh", post(refresh))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/logout", post(logout))
}

const BAD_CREDENTIALS: &str = "No active account found with the given credentials";

/// A hash to verify against when the username is unknown, so that a missing
/// account takes as long to refuse as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$mEHo4UkmWk5STpDSHzIvpp0ySzYfb0m+PEUS8UVZGXo";

#[instrument(name = "login", skip_all, fields(client = %client.ip()))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let mut input = body.input(false)?;
    // Any length is looked up: a long name is simply unknown (401), as in SimpleJWT.
    let username = input.text("username", Text::required(4096));
    let password = input.password("password", true);
    input.finish()?;
    let (username, password) = (username.unwrap_or_default(), password.unwrap_or_default());
    let user_key = format!("user:{}", username.to_lowercase());
    let addr_key = format!("addr:{}", client.ip());
    let limits = &state.config.login_throttle;
    throttle(
        &state,
        &[
            (&user_key, limits.max_failures),
            (&addr_key, limits.max_failures_per_address),
        ],
    )
    .await?;

    let found = user::Entity::find()
        .filter(user::Column::UsernameKey.eq(username.to_lowercase()))
        .one(state.db.conn())
        .await?;
    let stored = found
        .as_ref()
        .map(|u| u.password.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_string());
    let candidate = password.clone();
    let verified = password::verify_async(candidate, stored)
        .await
        .map_err(ApiError::Internal)?;
    let account = match (found, &verified) {
        (Some(u), Verified::Yes | Verified::YesRehash) if u.is_active => u,
        _ => {
            record_failure(&state, &[&user_key, &addr_key]).await?;
            tracing::warn!("Login failed for {username:?} from {}", client.ip());
            return Err(ApiError::Unauthorized {
                detail: BAD_CREDENTIALS.into(),
                code: None,
            });
        }
    };
    if verified == Verified::YesRehash {
        // An imported Django hash: replace it with Argon2id now that we know
        // the password.
        let fresh = super::users::hash_password(password).await?;
        let mut model: user::ActiveModel = account.clone().into();
        model.password = Set(fresh);
        let txn = state.db.begin_write().await?;
        model.update(&*txn).await?;
        txn.commit().await?;
        tracing::info!("Password hash of {} upgraded to Argon2id", account.username);
    }
    clear_failures(&state, &user_key).await?;
    let (refresh, _) = state.jwt.issue(account.id, TokenType::Refresh)?;
    let (access, _) = state.jwt.issue(account.id, TokenType::Access)?;
    tracing::info!(
        "Login succeeded for {} from {}",
        account.username,
        client.ip()
    );
    Ok(Json(json!({ "refresh": refresh, "access": access })))
}

/// 429 when any of `keys` has reached its failure limit within the window.
async fn throttle(state: &AppState, keys: &[(&str, u32)]) -> ApiResult<()> {
    let limits = &state.config.login_throttle;
    let window = chrono::Duration::from_std(limits.window)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("throttle window: {e}")))?;
    let now = crate::db::now();
    let since = now - window;
    let mut retry_after: Option<i64> = None;
    for (key, limit) in keys {
        let failures: Vec<DateTime<Utc>> = login_failure::Entity::find()
            .filter(login_failure::Column::Key.eq(*key))
            .filter(login_failure::Column::FailedAt.gt(since))
            .order_by_desc(login_failure::Column::FailedAt)
            .all(state.db.conn())
            .await?
            .into_iter()
            .map(|f| f.failed_at)
            .collect();
        let limit = *limit as usize;
        if failures.len() >= limit {
            // Allowed again when the limit-th most recent failure leaves the window.
            let pivot = failures[limit - 1];
            let wait = (pivot + window - now).num_seconds().max(1);
            retry_after = Some(retry_after.map_or(wait, |r| r.max(wait)));
        }
    }
    match retry_after {
        Some(secs) => {
            tracing::warn!("Login throttled for {keys:?}, retry in {secs}s");
            Err(ApiError::Throttled {
                retry_after: secs as u64,
            })
        }
        None => Ok(()),
    }
}

async fn record_failure(state: &AppState, keys: &[&str]) -> ApiResult<()> {
    let now = crate::db::now();
    let window = chrono::Duration::from_std(state.config.login_throttle.window)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("throttle window: {e}")))?;
    let txn = state.db.begin_write().await?;
    for key in keys {
        login_failure::ActiveModel {
            key: Set((*key).to_string()),
            failed_at: Set(now),
            ..Default::default()
        }
        .insert(&*txn)
        .await?;
    }
    // Forget failures that no longer count.
    login_failure::Entity::delete_many()
        .filter(login_failure::Column::FailedAt.lt(now - window))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

async fn clear_failures(state: &AppState, key: &str) -> ApiResult<()> {
    let txn = state.db.begin_write().await?;
    login_failure::Entity::delete_many()
        .filter(login_failure::Column::Key.eq(key))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

fn invalid_refresh() -> ApiError {
    ApiError::Unauthorized {
        detail: "Token is invalid or expired".into(),
        code: Some("token_not_valid"),
    }
}

/// A valid, unrevoked refresh token of an active user.
async fn check_refresh(state: &AppState, token: &str) -> ApiResult<(Claims, user::Model)> {
    let Some((claims, user_id)) = state.jwt.verify(token, TokenType::Refresh) else {
        return Err(invalid_refresh());
    };
    let revoked = revoked_token::Entity::find_by_id(claims.jti.clone())
        .one(state.db.conn())
        .await?;
    if revoked.is_some() {
        return Err(ApiError::Unauthorized {
            detail: "Token is blacklisted".into(),
            code: Some("token_not_valid"),
        });
    }
    match user::Entity::find_by_id(user_id)
        .one(state.db.conn())
        .await?
    {
        Some(u) if u.is_active => Ok((claims, u)),
        Some(_) => Err(ApiError::Unauthorized {
            detail: "User is inactive".into(),
            code: Some("token_not_valid"),
        }),
        None => Err(ApiError::Unauthorized {
            detail: "User not found".into(),
            code: Some("token_not_valid"),
        }),
    }
}

#[instrument(name = "refresh", skip_all)]
async fn refresh(State(state): State<AppState>, body: JsonBody) -> ApiResult<Json<Value>> {
    let mut input = body.input(false)?;
    let token = input.text("refresh", Text::required(8192));
    input.finish()?;
    let token = token.unwrap_or_default();
    let (_, account) = check_refresh(&state, &token).await?;
    let (access, _) = state.jwt.issue(account.id, TokenType::Access)?;
    tracing::info!("Access token refreshed for {}", account.username);
    Ok(Json(json!({ "access": access })))
}

#[instrument(name = "logout", skip_all, fields(user = %caller.username))]
async fn logout(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<StatusCode> {
    let mut input = body.input(false)?;
    let token = input.text("refresh", Text::required(8192));
    input.finish()?;
    let token = token.unwrap_or_default();
    let (claims, account) = check_refresh(&state, &token).await?;
    if account.id != caller.id {
        return Err(ApiError::field(
            "refresh",
            "This token does not belong to the authenticated user.",
        ));
    }
    let expires_at = DateTime::<Utc>::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
    let txn = state.db.begin_write().await?;
    // Expired revocations are useless: the token is refused for its expiry.
    revoked_token::Entity::delete_many()
        .filter(revoked_token::Column::ExpiresAt.lt(crate::db::now()))
        .exec(&*txn)
        .await?;
    let inserted = revoked_token::ActiveModel {
        jti: Set(claims.jti),
        expires_at: Set(expires_at),
    }
    .insert(&*txn)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    txn.commit().await?;
    tracing::info!("Logout: refresh token of {} revoked", caller.username);
    Ok(StatusCode::NO_CONTENT)
}
