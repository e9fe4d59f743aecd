//! The wire shapes several resources share: DRF's error bodies and the
//! value sets of enumerations. Each resource's own shapes live beside its
//! handlers.
//!
//! Conventions: ids are UUID strings except group ids (integers); datetimes
//! go out as RFC 3339 in UTC with `Z`; money is a JSON number with at most
//! two decimals. A JSON `null` in a request is refused (400) unless the
//! field is documented as nullable. Text that may not be blank (it is
//! trimmed, then checked) carries the pattern `\S`.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// The description of a path id.
pub const ID_UUID: &str = "The resource's id (a UUID; a malformed one is a 404)";

/// DRF's field errors: each invalid field (or `non_field_errors` for a
/// cross-field rule) with its messages.
#[derive(Serialize, ToSchema)]
#[schema(as = FieldErrors, example = json!({"name": ["This field is required."], "quota": ["A valid integer is required."]}))]
pub struct FieldErrorsBody(pub BTreeMap<String, Vec<String>>);

/// An error described by one message.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": "Not found."}))]
pub struct ErrorDetail {
    pub detail: String,
}

/// A 400: field errors, or `{"detail"}` when the body is not valid JSON, a
/// multipart form cannot be parsed, or a header is unusable.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ValidationError {
    Fields(FieldErrorsBody),
    Detail(ErrorDetail),
}

/// A 401. `code` is `token_not_valid` when a token was given and refused;
/// for a bearer token, `messages` says whether it merely expired (refresh
/// it) or is invalid (log in again), as SimpleJWT does.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": "Given token not valid for any token type", "code": "token_not_valid", "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token is expired"}]}))]
pub struct AuthenticationError {
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = String)]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = Vec<TokenMessage>)]
    pub messages: Option<Vec<TokenMessage>>,
}

/// Why a bearer token was refused: `Token is expired` or `Token is invalid`.
#[derive(Serialize, ToSchema)]
pub struct TokenMessage {
    /// `AccessToken`.
    pub token_class: &'static str,
    /// `access`.
    pub token_type: &'static str,
    pub message: &'static str,
}

/// A 500: never a stack trace; `request_id` matches the `X-Request-Id`
/// header and the server's log line.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"detail": "Internal server error.", "request_id": "0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a"}))]
pub struct InternalError {
    pub detail: String,
    pub request_id: String,
}

/// An event's status. Accepted case-insensitively (`canceled` too); always
/// returned in lower case.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Draft,
    Scheduled,
    Ongoing,
    Completed,
    Cancelled,
}

/// A payment's status. Moves allowed on update: `pending→completed`,
/// `pending→failed`, `failed→pending`, `completed→refunded` (and to itself).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
    Completed,
    Failed,
    Refunded,
}

/// Serialises money held in minor units as a JSON number (`200000`,
/// `200000.5`).
pub fn money<S: serde::Serializer>(minor: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    crate::input::money_json(*minor).serialize(serializer)
}

/// Serialises a datetime as RFC 3339 in UTC with `Z`, fractional seconds
/// only when present.
pub fn datetime<S: serde::Serializer>(
    dt: &chrono::DateTime<chrono::Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::input::format_datetime(dt))
}

/// Like `datetime`, for an optional one (`null` when absent).
pub fn optional_datetime<S: serde::Serializer>(
    dt: &Option<chrono::DateTime<chrono::Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match dt {
        Some(dt) => datetime(dt, serializer),
        None => serializer.serialize_none(),
    }
}
