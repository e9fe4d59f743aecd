//! Who is calling: the bearer token resolved to a `Caller`.
//!
//! The `authenticate` middleware resolves the bearer token on every request —
//! public routes too, as DRF does: a bad token is a 401 anywhere. Handlers
//! then take `AuthUser` (must be logged in) or `MaybeUser` (may be anonymous).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::domain::Caller;
use crate::domain::accounts::{self, CallerRefused};
use crate::jwt::TokenType;
use crate::state::AppState;

/// The result of authentication, stored in the request's extensions.
#[derive(Clone)]
struct Authentication(Option<Caller>);

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
                .and_then(|a| a.0.clone()),
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

/// Middleware: resolves `Authorization: Bearer <access token>`.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match resolve(&state, req.headers().get(AUTHORIZATION)).await {
        Ok(user) => {
            let user_id = user.as_ref().map(|u| u.id);
            req.extensions_mut().insert(Authentication(user));
            let mut response = next.run(req).await;
            if let Some(id) = user_id {
                response.extensions_mut().insert(super::AccessLogUser(id));
            }
            response
        }
        Err(err) => err.into_response(),
    }
}

/// Longest `Authorization` header considered; a JWT of ours is ~300 bytes.
const MAX_AUTHORIZATION_LEN: usize = 4096;

async fn resolve(
    state: &AppState,
    header: Option<&axum::http::HeaderValue>,
) -> Result<Option<Caller>, ApiError> {
    let Some(header) = header else {
        return Ok(None);
    };
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
    let (_, user_id) = state
        .jwt
        .check(token, TokenType::Access)
        .map_err(ApiError::BearerToken)?;
    match accounts::load_caller(state, user_id).await? {
        Ok(caller) => Ok(Some(caller)),
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
