//! Who is calling: the bearer token resolved to a `Caller`.
//!
//! The `Authenticate` layer (on every API route except the login and token
//! routes) resolves the bearer token before routing to a method — so a bad
//! token is a 401 on a public read too, and before a 405, as DRF does. Handlers
//! then take `AuthUser` (must be logged in) or `MaybeUser` (may be anonymous).

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;

use super::error::ApiError;
use crate::domain::Caller;
use crate::domain::accounts::{self, CallerRefused};
use crate::jwt::TokenType;
use crate::state::AppState;

/// The authenticated caller, stored in the request's extensions (absent: anonymous).
#[derive(Clone)]
struct Authentication(Caller);

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

/// Layer of the API routes: resolves `Authorization: Bearer <access token>` before the
/// handler runs (a refused token is answered here). A request without the
/// header goes straight through: no allocation, no boxed future.
#[derive(Clone)]
pub struct AuthenticateLayer {
    state: AppState,
}

impl AuthenticateLayer {
    pub fn new(state: AppState) -> Self {
        AuthenticateLayer { state }
    }
}

impl<S> tower::Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Authenticate<S> {
        Authenticate {
            state: self.state.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    state: AppState,
    inner: S,
}

impl<S> tower::Service<Request> for Authenticate<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        futures::future::Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let Some(header) = req.headers().get(AUTHORIZATION).cloned() else {
            // Anonymous.
            return futures::future::Either::Left(self.inner.call(req));
        };
        let state = self.state.clone();
        // The instance `poll_ready` readied goes with this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        futures::future::Either::Right(Box::pin(async move {
            match resolve(&state, &header).await {
                Ok(user) => {
                    let user_id = user.id;
                    req.extensions_mut().insert(Authentication(user));
                    let mut response = inner.call(req).await?;
                    response
                        .extensions_mut()
                        .insert(super::AccessLogUser(user_id));
                    Ok(response)
                }
                Err(err) => Ok(err.into_response()),
            }
        }))
    }
}

/// Longest `Authorization` header considered; a JWT of ours is ~300 bytes.
const MAX_AUTHORIZATION_LEN: usize = 4096;

async fn resolve(state: &AppState, header: &axum::http::HeaderValue) -> Result<Caller, ApiError> {
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
