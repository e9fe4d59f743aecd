//! One error type for every handler, rendered in Django REST Framework's shapes.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, SqlErr};
use serde_json::{Value, json};

/// Field name → messages, as DRF's `serializer.errors`.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was recorded, else the 400.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self))
        }
    }
}

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
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
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

    pub fn token_not_valid() -> Self {
        ApiError::Unauthorized {
            detail: "Given token not valid for any token type".into(),
            code: Some("token_not_valid"),
        }
    }

    /// Wraps a database error met while serving a request. Lost connections
    /// become 503 (the request may be retried); anything else is a bug.
    pub fn from_db(err: DbErr) -> Self {
        if is_connection_error(&err) {
            ApiError::Unavailable("The database is unavailable. Try again shortly.".into())
        } else {
            ApiError::Internal(anyhow::Error::new(err))
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
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
        ApiError::from_db(err)
    }
}

/// True when the database could not be reached (as opposed to a bad query).
pub fn is_connection_error(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        other => {
            let text = other.to_string().to_ascii_lowercase();
            // A deadlock or serialisation failure: the client may retry.
            text.contains("deadlock detected")
                || text.contains("could not serialize access")
                || text.contains("connection refused")
                || text.contains("connection reset")
                || text.contains("broken pipe")
                || text.contains("pool timed out")
                || text.contains("terminating connection")
        }
    }
}

/// True when `err` is a violated foreign key (a row referenced was deleted).
pub fn is_fk_violation(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}

/// True when `err` is a violated unique constraint.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

pub fn detail(message: &str) -> Value {
    json!({ "detail": message })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Validation(errors) => json!(errors.0),
            ApiError::BadRequest(message) => detail(message),
            ApiError::Unauthorized { detail, code } => match code {
                Some(code) => json!({ "detail": detail, "code": code }),
                None => json!({ "detail": detail }),
            },
            ApiError::Forbidden => detail("You do not have permission to perform this action."),
            ApiError::NotFound => detail("Not found."),
            ApiError::Conflict(message) => detail(message),
            ApiError::PayloadTooLarge => detail("Request body is too large (the limit is 1 MiB)."),
            ApiError::UnsupportedMediaType(ct) => {
                detail(&format!("Unsupported media type \"{ct}\" in request."))
            }
            ApiError::Throttled { retry_after } => detail(&format!(
                "Request was throttled. Expected available in {retry_after} seconds."
            )),
            ApiError::Unavailable(message) => {
                tracing::warn!("503: {message}");
                detail(message)
            }
            // Logged, with the request id, by the `observe` middleware.
            ApiError::Internal(_) => detail("Internal server error."),
        };
        let mut response = (status, axum::Json(body)).into_response();
        match self {
            ApiError::Internal(err) => {
                response
                    .extensions_mut()
                    .insert(crate::api::InternalErrorCause(format!("{err:#}")));
            }
            ApiError::Unauthorized { .. } => {
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
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
