//! `/api/login/`, `/api/token/` (and `/api/token/refresh/`), `/api/logout/`:
//! SimpleJWT's token pair, refresh and blacklist, with login throttling.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, ClientAddress};
use super::schemas::AuthenticationError;
use crate::domain::accounts::login;
use crate::input::Text;
use crate::state::AppState;

/// Login and refresh: outside the authentication layer, as SimpleJWT's token
/// views are, so a stale `Authorization` header never blocks a new login.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(obtain_pair))
        .routes(routes!(refresh))
        .routes(routes!(refresh_alias))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(logout))
}

/// Credentials for a token pair.
#[derive(ToSchema)]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    pub username: String,
    #[schema(format = Password, min_length = 1, max_length = 4096)]
    pub password: String,
}

/// A SimpleJWT token pair: `access` (3 hours) and `refresh` (1 day).
#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    pub refresh: String,
    pub access: String,
}

/// A refresh token (refresh, logout).
#[derive(ToSchema)]
pub struct RefreshRequest {
    #[schema(min_length = 1, max_length = 8192, pattern = r"\S")]
    pub refresh: String,
}

impl RefreshRequest {
    fn read(body: &JsonBody) -> ApiResult<Self> {
        let mut input = body.input(false)?;
        let refresh = input.text("refresh", Text::required(8192));
        match refresh {
            Some(refresh) if input.errors.is_empty() => Ok(RefreshRequest { refresh }),
            _ => Err(ApiError::Validation(input.errors)),
        }
    }
}

/// A new access token.
#[derive(Serialize, ToSchema)]
pub struct AccessToken {
    pub access: String,
}

/// Log in: a token pair
///
/// Repeated failures are throttled per username and per client address
/// (e.g. 10 failures in 15 minutes → 429). An `Authorization` header is
/// ignored here.
#[utoipa::path(
    post, path = "/api/login", tag = "auth", operation_id = "login",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "Wrong username or password, or inactive user",
            body = AuthenticationError, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"api\"`")),
            example = json!({"detail": "No active account found with the given credentials"})),
        (status = 429, description = "Too many failed attempts; retry later",
            headers(("Retry-After" = u64, description = "Seconds to wait")),
            example = json!({"detail": "Request was throttled. Expected available in 840 seconds."})),
    )
)]
async fn obtain_pair(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    body: JsonBody,
) -> ApiResult<Json<TokenPair>> {
    let mut input = body.input(false)?;
    // Any length is looked up: a long name is simply unknown (401), as in SimpleJWT.
    let username = input.text("username", Text::required(4096));
    let password = input.password("password", true);
    let (Some(username), Some(password)) = (username, password) else {
        return Err(ApiError::Validation(input.errors));
    };
    input.finish()?;
    let credentials = LoginRequest { username, password };
    let pair = login::login(&state, &credentials.username, credentials.password, client).await?;
    Ok(Json(TokenPair {
        refresh: pair.refresh,
        access: pair.access,
    }))
}

async fn refresh_access(state: &AppState, body: &JsonBody) -> ApiResult<Json<AccessToken>> {
    let request = RefreshRequest::read(body)?;
    let access = login::refresh(state, &request.refresh).await?;
    Ok(Json(AccessToken { access }))
}

/// Refresh: a new access token
#[utoipa::path(
    post, path = "/api/token", tag = "auth", operation_id = "token",
    request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, description = "A new access token", body = AccessToken),
        (status = 401, description = "Invalid, expired or revoked refresh token",
            body = AuthenticationError, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"api\"`")),
            example = json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})),
    )
)]
async fn refresh(State(state): State<AppState>, body: JsonBody) -> ApiResult<Json<AccessToken>> {
    refresh_access(&state, &body).await
}

/// Refresh: a new access token (same as /api/token/)
#[utoipa::path(
    post, path = "/api/token/refresh", tag = "auth", operation_id = "token_refresh",
    request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, description = "A new access token", body = AccessToken),
        (status = 401, description = "Invalid, expired or revoked refresh token",
            body = AuthenticationError, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"api\"`")),
            example = json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})),
    )
)]
async fn refresh_alias(
    State(state): State<AppState>,
    body: JsonBody,
) -> ApiResult<Json<AccessToken>> {
    refresh_access(&state, &body).await
}

/// Log out: revoke a refresh token
///
/// The refresh token must belong to the authenticated user (else 400 on
/// `refresh`); refreshing with it afterwards is a 401.
#[utoipa::path(
    post, path = "/api/logout", tag = "auth", operation_id = "logout",
    request_body = RefreshRequest,
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Revoked"),
    )
)]
async fn logout(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<StatusCode> {
    let request = RefreshRequest::read(&body)?;
    login::revoke(&state, &caller, &request.refresh).await?;
    Ok(StatusCode::NO_CONTENT)
}
