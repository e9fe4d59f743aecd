//! Who is calling: the bearer token resolved to a `Caller`.
//!
//! The route layer (`api::endpoint`, on every API route except the login and
//! token routes) resolves the bearer token before routing to a method, with
//! [`resolve`]. Handlers then take `AuthUser` (must be logged in) or
//! `MaybeUser` (may be anonymous).

use std::convert::Infallible;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::Uri;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::domain::Caller;
use crate::domain::accounts::{self, CallerRefused, login};
use crate::jwt::{TokenRefused, TokenType};
use crate::state::AppState;

/// The authenticated caller, stored in the request's extensions (absent: anonymous).
#[derive(Clone)]
pub(super) struct Authentication(pub(super) Caller);

/// The URI as the client sent it, before its trailing slash was trimmed
/// (pagination links and list cache keys are built from it). The front door
/// keeps it in the extensions only when trimming changes it; otherwise it
/// is the request's own.
#[derive(Clone)]
pub struct SentUri(pub Uri);

impl<S: Send + Sync> FromRequestParts<S> for SentUri {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<SentUri>()
            .cloned()
            .unwrap_or_else(|| SentUri(parts.uri.clone())))
    }
}

/// The address of the client that sent the request (its connection's peer):
/// what login throttling counts failures by.
pub struct ClientAddress(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, ApiError> {
        crate::connection::client_ip()
            .map(ClientAddress)
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "the request was not served by Application::run_until_stopped: \
                     no client address"
                ))
            })
    }
}

/// The caller, who must be authenticated (else 401).
pub struct AuthUser(pub Caller);

/// The caller, or `None` for an anonymous request.
pub struct MaybeUser(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(MaybeUser(
            parts
                .extensions
                .get::<Authentication>()
                .map(|a| a.0.clone()),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match MaybeUser::from_request_parts(parts, state).await?.0 {
            Some(user) => Ok(AuthUser(user)),
            None => Err(ApiError::not_authenticated()),
        }
    }
}

/// Longest `Authorization` header considered; a JWT of ours is ~300 bytes.
const MAX_AUTHORIZATION_LEN: usize = 4096;

/// The caller an `Authorization` header names, or why it is refused.
pub(super) async fn resolve(
    state: &AppState,
    header: &axum::http::HeaderValue,
) -> Result<Caller, ApiError> {
    let bad_header = |detail: &str| ApiError::Unauthorized {
        detail: detail.to_string(),
        code: Some("token_not_valid"),
    };
    if header.len() > MAX_AUTHORIZATION_LEN {
        return Err(bad_header("Authorization header is too long."));
    }
    let value = header
        .to_str()
        .map_err(|_| bad_header("Authorization header is not valid text."))?;
    let mut parts = value.split_whitespace();
    let (Some(scheme), token, extra) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad_header(
            "Authorization header must contain two space-delimited values",
        ));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(bad_header(
            "Authorization header must use the Bearer scheme.",
        ));
    }
    let (Some(token), None) = (token, extra) else {
        return Err(bad_header(
            "Authorization header must contain two space-delimited values",
        ));
    };
    let (claims, user_id) = state
        .jwt
        .check(token, TokenType::Access)
        .map_err(ApiError::BearerToken)?;
    if state.config.jwt_revoke_access_on_password_change
        && login::issued_before(
            claims.iat,
            login::password_changed_at(state, user_id).await?,
        )
    {
        // Issued before the password changed: refused as any bad token is.
        return Err(ApiError::BearerToken(TokenRefused::Invalid));
    }
    match accounts::load_caller(state, user_id).await? {
        Ok(caller) => Ok(caller),
        Err(refused) => Err(ApiError::Unauthorized {
            detail: match refused {
                CallerRefused::Unknown => "User not found",
                CallerRefused::Inactive => "User is inactive",
            }
            .into(),
            code: Some("token_not_valid"),
        }),
    }
}
