//! The shapes of `API.md`, as OpenAPI schemas. The handlers build their
//! bodies as `serde_json::Value` (see the `*_json` functions); these types
//! only describe those bodies and are never constructed.
//!
//! Conventions: ids are UUID strings except group ids (integers); datetimes
//! go out as RFC 3339 in UTC with `Z`; money is a JSON number with at most
//! two decimals. Request fields marked `required = false` may be left out;
//! a JSON `null` is refused (400) unless the field is documented as nullable.
//! Text that may not be blank (it is trimmed, then checked) carries the
//! pattern `\S`: at least one character that is not white space.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use utoipa::{IntoParams, ToResponse, ToSchema};
use uuid::Uuid;

// ---------------------------------------------------------------- errors

/// DRF's field errors: each invalid field (or `non_field_errors` for a
/// cross-field rule) with its messages.
#[derive(ToSchema)]
#[schema(example = json!({"name": ["This field is required."], "quota": ["A valid integer is required."]}))]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

/// An error described by one message.
#[derive(ToSchema)]
#[schema(example = json!({"detail": "Not found."}))]
pub struct ErrorDetail {
    pub detail: String,
}

/// A 400: field errors, or `{"detail"}` when the body is not valid JSON, a
/// multipart form cannot be parsed, or a header is unusable.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum ValidationError {
    Fields(FieldErrors),
    Detail(ErrorDetail),
}

/// A 401. `code` is `token_not_valid` when a token was given and refused.
#[derive(ToSchema)]
#[schema(example = json!({"detail": "Given token not valid for any token type", "code": "token_not_valid"}))]
pub struct AuthenticationError {
    pub detail: String,
    #[schema(required = false)]
    pub code: String,
}

/// A 500: never a stack trace; `request_id` matches the `X-Request-Id`
/// header and the server's log line.
#[derive(ToSchema)]
#[schema(example = json!({"detail": "Internal server error.", "request_id": "0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a"}))]
pub struct InternalError {
    pub detail: String,
    pub request_id: String,
}

/// The request is invalid: `{"field": ["message", …]}` (cross-field rules
/// under `non_field_errors`), or `{"detail": "JSON parse error - …"}`.
#[derive(ToResponse)]
#[response(
    description = "Validation failed: field errors `{\"field\": [\"message\"]}`, or `{\"detail\": \"…\"}` for a body that is not valid JSON",
    example = json!({"name": ["This field is required."]})
)]
pub struct BadRequest(pub ValidationError);

/// No, invalid or expired credentials.
#[derive(ToResponse)]
#[response(
    description = "Not authenticated: credentials missing where needed, or a token that is invalid, expired, of the wrong type or whose user no longer exists (on any endpoint that reads the `Authorization` header)",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"api\"`"))
)]
pub struct Unauthorized(pub AuthenticationError);

#[derive(ToResponse)]
#[response(
    description = "Authenticated but not allowed",
    example = json!({"detail": "You do not have permission to perform this action."})
)]
pub struct Forbidden(pub ErrorDetail);

#[derive(ToResponse)]
#[response(
    description = "No such resource (a malformed id in the path is a 404 too)",
    example = json!({"detail": "Not found."})
)]
pub struct NotFound(pub ErrorDetail);

#[derive(ToResponse)]
#[response(
    description = "Method not allowed on this route",
    example = json!({"detail": "Method \"PATCH\" not allowed."}),
    headers(("Allow" = String, description = "The methods the route accepts"))
)]
pub struct MethodNotAllowed(pub ErrorDetail);

#[derive(ToResponse)]
#[response(
    description = "A business rule refuses the change (sold out, duplicate, …)",
    example = json!({"detail": "Sold out."})
)]
pub struct Conflict(pub ErrorDetail);

#[derive(ToResponse)]
#[response(
    description = "The body is over the size limit (1 MiB for JSON)",
    example = json!({"detail": "Request body is too large (the limit is 1 MiB)."})
)]
pub struct PayloadTooLarge(pub ErrorDetail);

#[derive(ToResponse)]
#[response(
    description = "The body's content type is not accepted",
    example = json!({"detail": "Unsupported media type \"text/plain\" in request."})
)]
pub struct UnsupportedMediaType(pub ErrorDetail);

#[derive(ToResponse)]
#[response(
    description = "Too many failed attempts; retry later",
    example = json!({"detail": "Request was throttled. Expected available in 840 seconds."}),
    headers(("Retry-After" = u64, description = "Seconds to wait"))
)]
pub struct Throttled(pub ErrorDetail);

#[derive(ToResponse)]
#[response(description = "A bug; the body carries the request id")]
pub struct InternalServerError(pub InternalError);

#[derive(ToResponse)]
#[response(
    description = "A dependency this request needs (database, object storage) is unavailable; retry shortly",
    example = json!({"detail": "The database is unavailable. Try again shortly."})
)]
pub struct ServiceUnavailable(pub ErrorDetail);

// ---------------------------------------------------------------- lists

/// Page-number pagination, shared by every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Page number (default 1). A page past the end returns the last page;
    /// a non-numeric or < 1 value returns page 1.
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page (default 20; larger values are capped at 100).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u64>,
}

/// Declares a list envelope: `{"<plural>": [...], count, page, page_size,
/// total_pages, next, previous}`.
macro_rules! list_envelope {
    ($name:ident, $key:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(ToSchema)]
        pub struct $name {
            pub $key: Vec<$item>,
            /// Items over all pages.
            #[schema(minimum = 0)]
            pub count: u64,
            /// This page's number (1-based).
            #[schema(minimum = 1)]
            pub page: u64,
            #[schema(minimum = 1, maximum = 100)]
            pub page_size: u64,
            #[schema(minimum = 1)]
            pub total_pages: u64,
            /// Absolute URL of the next page, or `null` on the last.
            #[schema(required = true, format = "uri")]
            pub next: Option<String>,
            /// Absolute URL of the previous page, or `null` on the first.
            #[schema(required = true, format = "uri")]
            pub previous: Option<String>,
        }
    };
}

list_envelope!(UserList, users, User, "A page of users.");
list_envelope!(GroupList, groups, Group, "A page of groups.");
list_envelope!(EventList, events, Event, "A page of events.");
list_envelope!(TicketList, tickets, Ticket, "A page of tickets.");
list_envelope!(
    RegistrationList,
    registrations,
    Registration,
    "A page of registrations."
);
list_envelope!(PaymentList, payments, Payment, "A page of payments.");

// ---------------------------------------------------------------- auth

/// Credentials for a token pair.
#[derive(ToSchema)]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 4096, pattern = r"\S")]
    pub username: String,
    #[schema(format = Password, min_length = 1, max_length = 4096)]
    pub password: String,
}

/// A SimpleJWT token pair: `access` (3 hours) and `refresh` (1 day).
#[derive(ToSchema)]
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

/// A new access token.
#[derive(ToSchema)]
pub struct AccessToken {
    pub access: String,
}

// ---------------------------------------------------------------- users

/// An account (never its password or hash).
#[derive(ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Names of the groups the user belongs to (`admin`, `organizer`, …).
    pub groups: Vec<String>,
    pub is_superuser: bool,
    pub date_joined: DateTime<Utc>,
}

/// Sign-up. The password must have at least 8 characters, not be entirely
/// numeric, not be a common password, and not be too similar to the
/// username or email.
#[derive(ToSchema)]
pub struct UserCreate {
    /// Letters, digits and `@.+-_`; unique case-insensitively.
    #[schema(min_length = 1, max_length = 150, pattern = r"^[\w.@+-]+$")]
    pub username: String,
    #[schema(format = Password, min_length = 8, max_length = 4096, pattern = r"\D")]
    pub password: String,
    /// Unique case-insensitively.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(max_length = 150, required = false)]
    pub first_name: String,
    #[schema(max_length = 150, required = false)]
    pub last_name: String,
}

/// A change to an account: only the fields sent change (for PUT too).
#[derive(ToSchema)]
pub struct UserUpdate {
    #[schema(
        min_length = 1,
        max_length = 150,
        pattern = r"^[\w.@+-]+$",
        required = false
    )]
    pub username: String,
    #[schema(format = Email, max_length = 254, required = false)]
    pub email: String,
    #[schema(format = Password, min_length = 8, max_length = 4096, pattern = r"\D", required = false)]
    pub password: String,
    #[schema(max_length = 150, required = false)]
    pub first_name: String,
    #[schema(max_length = 150, required = false)]
    pub last_name: String,
}

/// `search`: part of a username or email.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilters {
    /// Username or email contains (case-insensitive).
    pub search: Option<String>,
}

// ---------------------------------------------------------------- groups

#[derive(ToSchema)]
pub struct Group {
    #[schema(minimum = 1)]
    pub id: i32,
    pub name: String,
}

/// A group's name: unique case-insensitively.
#[derive(ToSchema)]
pub struct GroupWrite {
    #[schema(min_length = 1, max_length = 150, pattern = r"\S")]
    pub name: String,
}

/// A partial change of a group.
#[derive(ToSchema)]
pub struct GroupPatch {
    #[schema(min_length = 1, max_length = 150, pattern = r"\S", required = false)]
    pub name: String,
}

/// A membership: a user and a group.
#[derive(ToSchema)]
pub struct RoleAssignment {
    pub user_id: Uuid,
    /// The group's id (a numeric string is accepted too).
    #[schema(minimum = 1)]
    pub group_id: i32,
}

#[derive(ToSchema)]
#[schema(example = json!({"message": "User alice assigned to group organizer", "user_id": "0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a", "group_id": 2}))]
pub struct RoleAssigned {
    /// `User <username> assigned to group <name>`.
    pub message: String,
    pub user_id: Uuid,
    pub group_id: i32,
}

// ---------------------------------------------------------------- events

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

#[derive(ToSchema)]
pub struct Event {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub location: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub status: EventStatus,
    pub category: String,
    #[schema(minimum = 0)]
    pub quota: i64,
    /// The organiser's user id.
    pub organizer: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An event's fields (POST, PUT). Datetimes: RFC 3339, or naive
/// `YYYY-MM-DD HH:MM[:SS]` in the server's time zone. `end_time` before
/// `start_time` is accepted.
#[derive(ToSchema)]
pub struct EventWrite {
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: String,
    /// May be blank.
    #[schema(max_length = 100000)]
    pub description: String,
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub location: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub quota: i64,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub category: String,
    /// Default `scheduled` on create; unchanged on PUT when left out.
    #[schema(required = false)]
    pub status: EventStatus,
    /// Default: the caller. Superuser and admin may name any existing user;
    /// an organiser naming anyone else gets 403; only superuser and admin
    /// may change it on an existing event.
    #[schema(required = false)]
    pub organizer_id: Uuid,
}

/// A partial change of an event: any of the fields of [`EventWrite`].
#[derive(ToSchema)]
pub struct EventPatch {
    #[schema(min_length = 1, max_length = 255, pattern = r"\S", required = false)]
    pub name: String,
    #[schema(max_length = 100000, required = false)]
    pub description: String,
    #[schema(min_length = 1, max_length = 255, pattern = r"\S", required = false)]
    pub location: String,
    #[schema(required = false)]
    pub start_time: DateTime<Utc>,
    #[schema(required = false)]
    pub end_time: DateTime<Utc>,
    #[schema(minimum = 0, maximum = 2147483647, required = false)]
    pub quota: i64,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S", required = false)]
    pub category: String,
    #[schema(required = false)]
    pub status: EventStatus,
    /// Superuser and admin only.
    #[schema(required = false)]
    pub organizer_id: Uuid,
}

/// The order of an event list: a field, `-` for descending.
#[derive(ToSchema)]
pub enum EventOrdering {
    #[serde(rename = "start_time")]
    StartTime,
    #[serde(rename = "-start_time")]
    StartTimeDesc,
    #[serde(rename = "name")]
    Name,
    #[serde(rename = "-name")]
    NameDesc,
    #[serde(rename = "created_at")]
    CreatedAt,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "quota")]
    Quota,
    #[serde(rename = "-quota")]
    QuotaDesc,
}

/// Event filters; a bad value is a 400 naming the parameter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    /// Exact category, case-insensitive.
    pub category: Option<String>,
    pub status: Option<EventStatus>,
    /// The organiser's user id.
    pub organizer: Option<Uuid>,
    /// Location contains (case-insensitive).
    pub location: Option<String>,
    /// Name or description contains (case-insensitive).
    pub search: Option<String>,
    /// Events starting at or after this time (a plain date is accepted).
    pub start_after: Option<DateTime<Utc>>,
    /// Events starting at or before this time (a plain date is accepted).
    pub start_before: Option<DateTime<Utc>>,
    /// Default `start_time`; ties are broken by id.
    pub ordering: Option<EventOrdering>,
}

// ---------------------------------------------------------------- tickets

#[derive(ToSchema)]
pub struct Ticket {
    pub id: Uuid,
    /// The event's id.
    pub event: Uuid,
    pub name: String,
    /// At most two decimals.
    #[schema(minimum = 0)]
    pub price: f64,
    pub sales_start: DateTime<Utc>,
    pub sales_end: DateTime<Utc>,
    #[schema(minimum = 0)]
    pub quota: i64,
    /// Registrations held on this ticket.
    #[schema(minimum = 0)]
    pub sold: i64,
    /// `quota - sold`.
    #[schema(minimum = 0)]
    pub available: i64,
}

/// A ticket's fields (POST, PUT).
#[derive(ToSchema)]
pub struct TicketWrite {
    /// The event; unknown → 400 on `event_id`.
    pub event_id: Uuid,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// At most two decimals; never negative.
    #[schema(minimum = 0, maximum = 9999999999.99)]
    pub price: f64,
    pub sales_start: DateTime<Utc>,
    /// Not before `sales_start` (400 otherwise).
    pub sales_end: DateTime<Utc>,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub quota: i64,
}

/// A partial change of a ticket.
#[derive(ToSchema)]
pub struct TicketPatch {
    #[schema(required = false)]
    pub event_id: Uuid,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S", required = false)]
    pub name: String,
    #[schema(minimum = 0, maximum = 9999999999.99, required = false)]
    pub price: f64,
    #[schema(required = false)]
    pub sales_start: DateTime<Utc>,
    #[schema(required = false)]
    pub sales_end: DateTime<Utc>,
    /// Not below `sold` (409).
    #[schema(minimum = 0, maximum = 2147483647, required = false)]
    pub quota: i64,
}

/// The order of a ticket list; default: creation order.
#[derive(ToSchema)]
pub enum TicketOrdering {
    #[serde(rename = "price")]
    Price,
    #[serde(rename = "-price")]
    PriceDesc,
    #[serde(rename = "sales_start")]
    SalesStart,
    #[serde(rename = "-sales_start")]
    SalesStartDesc,
    #[serde(rename = "name")]
    Name,
    #[serde(rename = "-name")]
    NameDesc,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketFilters {
    /// The event's id.
    pub event: Option<Uuid>,
    pub ordering: Option<TicketOrdering>,
}

// ---------------------------------------------------------------- registrations

#[derive(ToSchema)]
pub struct Registration {
    pub id: Uuid,
    pub ticket: Uuid,
    pub user: Uuid,
    pub event: Uuid,
    pub registered_at: DateTime<Utc>,
}

/// A registration's ticket and user (POST, PUT).
#[derive(ToSchema)]
pub struct RegistrationWrite {
    pub ticket_id: Uuid,
    /// Default: the caller. Naming another user needs superuser, admin, or
    /// managing the ticket's event.
    #[schema(required = false)]
    pub user_id: Uuid,
}

/// A partial move of a registration.
#[derive(ToSchema)]
pub struct RegistrationPatch {
    #[schema(required = false)]
    pub ticket_id: Uuid,
    #[schema(required = false)]
    pub user_id: Uuid,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegistrationFilters {
    pub ticket: Option<Uuid>,
    pub event: Option<Uuid>,
    pub user: Option<Uuid>,
}

// ---------------------------------------------------------------- payments

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

#[derive(ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub registration: Uuid,
    pub payment_method: String,
    pub payment_status: PaymentStatus,
    #[schema(minimum = 0)]
    pub amount_paid: f64,
    /// When it became `completed`, else `null`.
    #[schema(required = true)]
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new payment.
#[derive(ToSchema)]
pub struct PaymentCreate {
    pub registration_id: Uuid,
    /// E.g. `QRIS`, `bank_transfer`.
    #[schema(min_length = 1, max_length = 50, pattern = r"\S")]
    pub payment_method: String,
    /// At most two decimals; never negative.
    #[schema(minimum = 0, maximum = 9999999999.99)]
    pub amount_paid: f64,
    /// Default `pending`; only superuser and admin may create another status.
    #[schema(required = false)]
    pub payment_status: PaymentStatus,
}

/// A payment's fields on PUT.
#[derive(ToSchema)]
pub struct PaymentWrite {
    #[schema(min_length = 1, max_length = 50, pattern = r"\S")]
    pub payment_method: String,
    #[schema(minimum = 0, maximum = 9999999999.99)]
    pub amount_paid: f64,
    #[schema(required = false)]
    pub payment_status: PaymentStatus,
}

/// A partial change of a payment.
#[derive(ToSchema)]
pub struct PaymentPatch {
    #[schema(min_length = 1, max_length = 50, pattern = r"\S", required = false)]
    pub payment_method: String,
    #[schema(minimum = 0, maximum = 9999999999.99, required = false)]
    pub amount_paid: f64,
    #[schema(required = false)]
    pub payment_status: PaymentStatus,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentFilters {
    pub registration: Option<Uuid>,
    pub payment_status: Option<PaymentStatus>,
}

// ---------------------------------------------------------------- posters

/// A poster stored in object storage.
#[derive(ToSchema)]
pub struct Poster {
    pub id: Uuid,
    /// The event's id.
    pub event: Uuid,
    /// The stored object's name (generated by the server).
    pub image: String,
    /// The uploaded file's name, sanitised.
    pub original_name: String,
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`, from the bytes.
    pub content_type: String,
    /// Bytes.
    #[schema(minimum = 1, maximum = 512000)]
    pub size: i64,
    /// A link serving the image: a presigned URL (valid 1 hour) on S3, else
    /// `/api/media/{id}/`.
    pub url: String,
    pub uploaded_at: DateTime<Utc>,
}

/// A poster upload: a JPEG, PNG, GIF or WebP image (recognised by its
/// bytes) of at most 500 KiB, and the event it belongs to.
#[derive(ToSchema)]
pub struct PosterUpload {
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    pub image: Vec<u8>,
    /// The event's id.
    pub event: Uuid,
}

// ---------------------------------------------------------------- operations

/// The process runs.
#[derive(ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    pub status: String,
}

/// One dependency's state.
#[derive(ToSchema)]
pub struct DependencyState {
    /// `ok`, `unavailable` (`degraded` for a cache that fell back).
    pub status: String,
    /// Which implementation is configured (e.g. `sqlite`, `postgresql`,
    /// `s3`, `local`, `redis`, `in-process`, `smtp`, `files`).
    pub backend: String,
}

/// The background job queue.
#[derive(ToSchema)]
pub struct JobsState {
    #[schema(required = false)]
    pub queue_depth: i64,
    #[schema(required = false)]
    pub dead_jobs: i64,
    /// `unknown` when the queue could not be read.
    #[schema(required = false)]
    pub status: String,
}

/// The state of every dependency; 503 when the database is unreachable.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    pub status: String,
    pub database: DependencyState,
    pub storage: DependencyState,
    pub cache: DependencyState,
    pub mail: DependencyState,
    pub jobs: JobsState,
}
