//! One error type for every handler, rendered in Django REST Framework's
//! shapes; `DomainError` maps onto it here and nowhere else.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::DbErr;

use super::schemas::{AuthenticationError, ErrorDetail, TokenMessage};
use crate::jwt::TokenRefused;

use crate::domain::DomainError;
pub use crate::domain::FieldErrors;

/// `Retry-After` on every 503: seconds before trying again.
pub static UNAVAILABLE_RETRY_AFTER: HeaderValue = HeaderValue::from_static("2");

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `{"field": ["…"]}`.
    #[error("validation failed: {0:?}")]
    Validation(FieldErrors),
    /// 400 `{"detail": "…"}` (e.g. a body that is not JSON).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401, with `code` when a token was given.
    #[error("unauthorized: {detail}")]
    Unauthorized {
        detail: String,
        code: Option<&'static str>,
    },
    /// 401 for a bearer token that is expired or invalid, with SimpleJWT's
    /// `messages` so a client knows whether refreshing can help.
    #[error("bearer token refused: {0:?}")]
    BearerToken(TokenRefused),
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// A 409 that also names its reason for programs
    /// (`{"detail", "reason"}`).
    #[error("conflict ({reason}): {detail}")]
    ConflictReason {
        detail: String,
        reason: &'static str,
    },
    /// A well-formed request that cannot be processed as sent (an
    /// `Idempotency-Key` reused with another body).
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("throttled for {retry_after}s")]
    Throttled { retry_after: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::default();
        errors.add(field, message);
        ApiError::Validation(errors)
    }

    pub fn not_authenticated() -> Self {
        ApiError::Unauthorized {
            detail: "Authentication credentials were not provided.".into(),
            code: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } | ApiError::BearerToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::ConflictReason { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        DomainError::from(err).into()
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid(errors) => ApiError::Validation(errors),
            DomainError::NotFound => ApiError::NotFound,
            DomainError::Forbidden => ApiError::Forbidden,
            conflict @ (DomainError::SoldOut
            | DomainError::AlreadyRegistered { .. }
            | DomainError::SalesClosed(_)
            | DomainError::AlreadyPaid
            | DomainError::Conflict(_)) => ApiError::Conflict(conflict.to_string()),
            unverified @ DomainError::Unverified => ApiError::ConflictReason {
                detail: unverified.to_string(),
                reason: "unverified",
            },
            expired @ DomainError::HoldExpired => ApiError::ConflictReason {
                detail: expired.to_string(),
                reason: "hold_expired",
            },
            DomainError::BadCredentials => ApiError::Unauthorized {
                detail: DomainError::BadCredentials.to_string(),
                code: None,
            },
            DomainError::TokenNotValid(detail) => ApiError::Unauthorized {
                detail: detail.into(),
                code: Some("token_not_valid"),
            },
            DomainError::Throttled { retry_after } => ApiError::Throttled { retry_after },
            reused @ DomainError::IdempotencyKeyReused => {
                ApiError::Unprocessable(reused.to_string())
            }
            DomainError::Unavailable(message) => ApiError::Unavailable(message),
            DomainError::Internal(err) => ApiError::Internal(err),
        }
    }
}

/// The 413's message.
pub const PAYLOAD_TOO_LARGE: &str = "Request body is too large (the limit is 1 MiB).";

/// The body of an error described by one message.
fn detail(message: impl Into<String>) -> Response {
    axum::Json(ErrorDetail {
        detail: message.into(),
    })
    .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Validation(errors) => axum::Json(&errors.0).into_response(),
            ApiError::BadRequest(message) => detail(message),
            ApiError::Unauthorized { detail, code } => axum::Json(AuthenticationError {
                detail: detail.clone(),
                code: *code,
                messages: None,
            })
            .into_response(),
            ApiError::BearerToken(refused) => axum::Json(AuthenticationError {
                detail: "Given token not valid for any token type".into(),
                code: Some("token_not_valid"),
                messages: Some(vec![TokenMessage {
                    token_class: "AccessToken",
                    token_type: "access",
                    message: match refused {
                        TokenRefused::Expired => "Token is expired",
                        TokenRefused::Invalid => "Token is invalid",
                    },
                }]),
            })
            .into_response(),
            ApiError::Forbidden => detail("You do not have permission to perform this action."),
            ApiError::NotFound => detail("Not found."),
            ApiError::Conflict(message) | ApiError::Unprocessable(message) => detail(message),
            ApiError::ConflictReason { detail, reason } => {
                axum::Json(serde_json::json!({ "detail": detail, "reason": reason }))
                    .into_response()
            }
            ApiError::PayloadTooLarge => detail(PAYLOAD_TOO_LARGE),
            ApiError::UnsupportedMediaType(ct) => {
                detail(format!("Unsupported media type \"{ct}\" in request."))
            }
            ApiError::Throttled { retry_after } => detail(format!(
                "Request was throttled. Expected available in {retry_after} seconds."
            )),
            ApiError::Unavailable(message) => {
                tracing::warn!("503: {message}");
                detail(message)
            }
            // Logged, with the request id, by the `observe` middleware.
            ApiError::Internal(_) => detail("Internal server error."),
        };
        let mut response = (status, body).into_response();
        match self {
            ApiError::Internal(err) => {
                response
                    .extensions_mut()
                    .insert(super::InternalErrorCause(format!("{err:#}")));
            }
            ApiError::Unauthorized { .. } | ApiError::BearerToken(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"api\""),
                );
            }
            ApiError::Throttled { retry_after } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            // A dependency is down or the server is full: a client (or a
            // load balancer) may try again shortly, here or elsewhere.
            ApiError::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, UNAVAILABLE_RETRY_AFTER.clone());
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl crate::cache::LoadError for ApiError {
    fn unavailable_message(&self) -> Option<&str> {
        match self {
            ApiError::Unavailable(message) => Some(message),
            _ => None,
        }
    }

    fn unavailable(message: String) -> Self {
        ApiError::Unavailable(message)
    }
}
