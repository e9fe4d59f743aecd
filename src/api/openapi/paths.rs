//! One `#[utoipa::path]` per (route, method) the router serves. The
//! handlers take a hand-parsed `JsonBody` and return `serde_json::Value`, so
//! nothing can be inferred from their signatures; their documentation lives
//! here, on bodiless functions that only carry it. PUT and PATCH are one
//! handler but two operations: their bodies differ (PATCH is partial).
//!
//! Listed here: the statuses particular to each route. Added to every
//! operation by `super::Conventions`: 401 where a bearer token is read,
//! 400/413/415 where a JSON body is read, 503 under `/api/`, and 500.

#![allow(dead_code)]

use super::schemas::*;

const ID_UUID: &str = "The resource's id (a UUID; a malformed one is a 404)";

// ---------------------------------------------------------------- auth

/// Log in: a token pair
///
/// Repeated failures are throttled per username and per client address
/// (e.g. 10 failures in 15 minutes → 429). An `Authorization` header is
/// ignored here.
#[utoipa::path(
    post, path = "/api/login/", tag = "auth", operation_id = "login",
    request_body = LoginRequest,
    security(()),
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "Wrong username or password, or inactive user",
            body = AuthenticationError, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"api\"`")),
            example = json!({"detail": "No active account found with the given credentials"})),
        (status = 429, response = Throttled),
    )
)]
fn login() {}

/// Refresh: a new access token
#[utoipa::path(
    post, path = "/api/token/", tag = "auth", operation_id = "token",
    request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, description = "A new access token", body = AccessToken),
        (status = 401, description = "Invalid, expired or revoked refresh token",
            body = AuthenticationError, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"api\"`")),
            example = json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})),
    )
)]
fn token() {}

/// Refresh: a new access token (same as `/api/token/`)
#[utoipa::path(
    post, path = "/api/token/refresh/", tag = "auth", operation_id = "token_refresh",
    request_body = RefreshRequest,
    security(()),
    responses(
        (status = 200, description = "A new access token", body = AccessToken),
        (status = 401, description = "Invalid, expired or revoked refresh token",
            body = AuthenticationError, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"api\"`")),
            example = json!({"detail": "Token is invalid or expired", "code": "token_not_valid"})),
    )
)]
fn token_refresh() {}

/// Log out: revoke a refresh token
///
/// The refresh token must belong to the authenticated user (else 400 on
/// `refresh`); refreshing with it afterwards is a 401.
#[utoipa::path(
    post, path = "/api/logout/", tag = "auth", operation_id = "logout",
    request_body = RefreshRequest,
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, response = Unauthorized),
    )
)]
fn logout() {}

// ---------------------------------------------------------------- users

/// List users (superuser, admin)
#[utoipa::path(
    get, path = "/api/users/", tag = "users", operation_id = "users_list",
    params(UserFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, description = "A bad filter value", body = FieldErrors,
            example = json!({"search": ["Null characters are not allowed."]})),
        (status = 403, response = Forbidden),
    )
)]
fn users_list() {}

/// Sign up (no authentication needed)
#[utoipa::path(
    post, path = "/api/users/", tag = "users", operation_id = "users_create",
    request_body = UserCreate,
    security((), ("jwt" = [])),
    responses(
        (status = 201, description = "Created", body = User),
    )
)]
fn users_create() {}

/// The authenticated user's own record
#[utoipa::path(
    get, path = "/api/users/me/", tag = "users", operation_id = "users_me",
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The caller's account", body = User),
    )
)]
fn users_me() {}

/// Read a user (self, admin, superuser)
#[utoipa::path(
    get, path = "/api/users/{id}/", tag = "users", operation_id = "users_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn users_retrieve() {}

/// Change a user (self, superuser); partial, as PATCH
///
/// Only the fields sent change.
#[utoipa::path(
    put, path = "/api/users/{id}/", tag = "users", operation_id = "users_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = UserUpdate,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = User),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn users_update() {}

/// Change some fields of a user (self, superuser)
#[utoipa::path(
    patch, path = "/api/users/{id}/", tag = "users", operation_id = "users_partial_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = UserUpdate,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = User),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn users_partial_update() {}

/// Delete a user (self, superuser)
///
/// Their registrations and payments go with them. A user who organises
/// events gets 409 until the events are reassigned or deleted.
#[utoipa::path(
    delete, path = "/api/users/{id}/", tag = "users", operation_id = "users_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn users_destroy() {}

// ---------------------------------------------------------------- groups

const GROUP_ID: &str = "The group's id (a positive integer; anything else is a 404)";

/// List groups (superuser)
#[utoipa::path(
    get, path = "/api/groups/", tag = "groups", operation_id = "groups_list",
    params(Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of groups", body = GroupList),
        (status = 403, response = Forbidden),
    )
)]
fn groups_list() {}

/// Create a group (superuser)
#[utoipa::path(
    post, path = "/api/groups/", tag = "groups", operation_id = "groups_create",
    request_body = GroupWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Created", body = Group),
        (status = 403, response = Forbidden),
    )
)]
fn groups_create() {}

/// Read a group (superuser)
#[utoipa::path(
    get, path = "/api/groups/{id}/", tag = "groups", operation_id = "groups_retrieve",
    params(("id" = i32, Path, minimum = 1, description = GROUP_ID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The group", body = Group),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn groups_retrieve() {}

/// Rename a group (superuser)
#[utoipa::path(
    put, path = "/api/groups/{id}/", tag = "groups", operation_id = "groups_update",
    params(("id" = i32, Path, minimum = 1, description = GROUP_ID)),
    request_body = GroupWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Group),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn groups_update() {}

/// Rename a group, partially (superuser)
#[utoipa::path(
    patch, path = "/api/groups/{id}/", tag = "groups", operation_id = "groups_partial_update",
    params(("id" = i32, Path, minimum = 1, description = GROUP_ID)),
    request_body = GroupPatch,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Group),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn groups_partial_update() {}

/// Delete a group and its memberships (superuser)
#[utoipa::path(
    delete, path = "/api/groups/{id}/", tag = "groups", operation_id = "groups_destroy",
    params(("id" = i32, Path, minimum = 1, description = GROUP_ID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn groups_destroy() {}

/// Put a user in a group (superuser)
#[utoipa::path(
    post, path = "/api/assign-roles/", tag = "groups", operation_id = "assign_roles_create",
    request_body = RoleAssignment,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Assigned", body = RoleAssigned),
        (status = 200, description = "Already a member; nothing changed", body = RoleAssigned),
        (status = 403, response = Forbidden),
        (status = 404, description = "Unknown user or group", body = ErrorDetail,
            example = json!({"detail": "Not found."})),
    )
)]
fn assign_roles_create() {}

/// Take a user out of a group (superuser)
#[utoipa::path(
    delete, path = "/api/assign-roles/", tag = "groups", operation_id = "assign_roles_destroy",
    request_body = RoleAssignment,
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, response = Forbidden),
        (status = 404, description = "Unknown user or group, or not a member", body = ErrorDetail,
            example = json!({"detail": "Not found."})),
    )
)]
fn assign_roles_destroy() {}

// ---------------------------------------------------------------- events

/// List events (anyone; cached)
#[utoipa::path(
    get, path = "/api/events/", tag = "events", operation_id = "events_list",
    params(EventFilters, Pagination),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "A page of events", body = EventList,
            headers(("X-Data-Source" = String, description = "`cache` or `database`"))),
        (status = 400, description = "A bad filter value", body = FieldErrors,
            example = json!({"ordering": ["Select a valid choice. size is not one of the available choices: start_time, name, created_at, quota."]})),
    )
)]
fn events_list() {}

/// Create an event (superuser, admin, organizer)
#[utoipa::path(
    post, path = "/api/events/", tag = "events", operation_id = "events_create",
    request_body = EventWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Created", body = Event),
        (status = 403, response = Forbidden),
    )
)]
fn events_create() {}

/// Read an event (anyone; cached)
#[utoipa::path(
    get, path = "/api/events/{id}/", tag = "events", operation_id = "events_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The event", body = Event,
            headers(("X-Data-Source" = String, description = "`cache` or `database`"))),
        (status = 404, response = NotFound),
    )
)]
fn events_retrieve() {}

/// Replace an event's fields (those who manage the event)
///
/// All fields but `status` and `organizer_id` are required. A quota below
/// the registrations already made is a 409.
#[utoipa::path(
    put, path = "/api/events/{id}/", tag = "events", operation_id = "events_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = EventWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Event),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn events_update() {}

/// Change some fields of an event (those who manage the event)
#[utoipa::path(
    patch, path = "/api/events/{id}/", tag = "events", operation_id = "events_partial_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = EventPatch,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Event),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn events_partial_update() {}

/// Delete an event (those who manage the event)
///
/// Its tickets, registrations, payments and posters go with it.
#[utoipa::path(
    delete, path = "/api/events/{id}/", tag = "events", operation_id = "events_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn events_destroy() {}

// ---------------------------------------------------------------- tickets

/// List tickets (anyone; cached)
#[utoipa::path(
    get, path = "/api/tickets/", tag = "tickets", operation_id = "tickets_list",
    params(TicketFilters, Pagination),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "A page of tickets", body = TicketList,
            headers(("X-Data-Source" = String, description = "`cache` or `database`"))),
        (status = 400, description = "A bad filter value", body = FieldErrors,
            example = json!({"event": ["Must be a valid UUID."]})),
    )
)]
fn tickets_list() {}

/// Create a ticket (those who manage its event)
#[utoipa::path(
    post, path = "/api/tickets/", tag = "tickets", operation_id = "tickets_create",
    request_body = TicketWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Created", body = Ticket),
        (status = 403, response = Forbidden),
    )
)]
fn tickets_create() {}

/// Read a ticket (anyone; cached)
#[utoipa::path(
    get, path = "/api/tickets/{id}/", tag = "tickets", operation_id = "tickets_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The ticket", body = Ticket,
            headers(("X-Data-Source" = String, description = "`cache` or `database`"))),
        (status = 404, response = NotFound),
    )
)]
fn tickets_retrieve() {}

/// Replace a ticket's fields (those who manage its event)
///
/// A quota below `sold` is a 409.
#[utoipa::path(
    put, path = "/api/tickets/{id}/", tag = "tickets", operation_id = "tickets_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = TicketWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Ticket),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn tickets_update() {}

/// Change some fields of a ticket (those who manage its event)
#[utoipa::path(
    patch, path = "/api/tickets/{id}/", tag = "tickets", operation_id = "tickets_partial_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = TicketPatch,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Ticket),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn tickets_partial_update() {}

/// Delete a ticket (those who manage its event)
///
/// Its registrations and their payments go with it.
#[utoipa::path(
    delete, path = "/api/tickets/{id}/", tag = "tickets", operation_id = "tickets_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn tickets_destroy() {}

// ---------------------------------------------------------------- registrations

/// List registrations (scoped to the caller)
///
/// Superuser and admin see all; an organiser those for the events they
/// organise plus their own; anyone else their own.
#[utoipa::path(
    get, path = "/api/registrations/", tag = "registrations", operation_id = "registrations_list",
    params(RegistrationFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of registrations", body = RegistrationList),
        (status = 400, description = "A bad filter value", body = FieldErrors,
            example = json!({"ticket": ["Must be a valid UUID."]})),
    )
)]
fn registrations_list() {}

/// Register for a ticket
///
/// Capacity is never exceeded (409 `Sold out.`); the same user twice on one
/// ticket is a 409. Registering oneself needs the ticket's sales window to
/// be open and the event `scheduled` and not started (else 409); those who
/// manage the event may register anyone at any time, within capacity.
#[utoipa::path(
    post, path = "/api/registrations/", tag = "registrations", operation_id = "registrations_create",
    request_body = RegistrationWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Registered", body = Registration),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    )
)]
fn registrations_create() {}

/// Read a registration (its user, those who manage the event)
#[utoipa::path(
    get, path = "/api/registrations/{id}/", tag = "registrations", operation_id = "registrations_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The registration", body = Registration),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn registrations_retrieve() {}

/// Move a registration to another ticket and/or user (superuser, admin)
///
/// A move re-checks capacity (409); naming the current ticket and user
/// changes nothing.
#[utoipa::path(
    put, path = "/api/registrations/{id}/", tag = "registrations", operation_id = "registrations_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = RegistrationWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Registration),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn registrations_update() {}

/// Move a registration, partially (superuser, admin)
#[utoipa::path(
    patch, path = "/api/registrations/{id}/", tag = "registrations", operation_id = "registrations_partial_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = RegistrationPatch,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Registration),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn registrations_partial_update() {}

/// Cancel a registration
///
/// Superuser and admin; its user while it has no completed payment. Its
/// payments go with it.
#[utoipa::path(
    delete, path = "/api/registrations/{id}/", tag = "registrations", operation_id = "registrations_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn registrations_destroy() {}

// ---------------------------------------------------------------- payments

/// List payments (scoped like registrations)
#[utoipa::path(
    get, path = "/api/payments/", tag = "payments", operation_id = "payments_list",
    params(PaymentFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of payments", body = PaymentList),
        (status = 400, description = "A bad filter value", body = FieldErrors,
            example = json!({"payment_status": ["Select a valid choice. paid is not one of the available choices."]})),
    )
)]
fn payments_list() {}

/// Pay for a registration (its user, superuser, admin)
///
/// At most one `completed` payment per registration (409). With an
/// `Idempotency-Key`, the same key from the same user within 24 hours
/// returns the first response and creates nothing new.
#[utoipa::path(
    post, path = "/api/payments/", tag = "payments", operation_id = "payments_create",
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
        description = "Makes a retry safe: 1 to 255 visible ASCII characters (else 400)")),
    request_body = PaymentCreate,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Created (or, for a repeated `Idempotency-Key`, the first response again)",
            body = Payment),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
    )
)]
fn payments_create() {}

/// Read a payment (its registration's user, those who manage the event)
#[utoipa::path(
    get, path = "/api/payments/{id}/", tag = "payments", operation_id = "payments_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The payment", body = Payment),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn payments_retrieve() {}

/// Replace a payment's fields (superuser, admin)
///
/// A status move not allowed is a 400 on `payment_status`; a second
/// `completed` payment for a registration is a 409.
#[utoipa::path(
    put, path = "/api/payments/{id}/", tag = "payments", operation_id = "payments_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = PaymentWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Payment),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn payments_update() {}

/// Change some fields of a payment (superuser, admin)
#[utoipa::path(
    patch, path = "/api/payments/{id}/", tag = "payments", operation_id = "payments_partial_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = PaymentPatch,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = Payment),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
fn payments_partial_update() {}

/// Delete a payment (superuser, admin)
#[utoipa::path(
    delete, path = "/api/payments/{id}/", tag = "payments", operation_id = "payments_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn payments_destroy() {}

// ---------------------------------------------------------------- posters

/// Upload a poster (those who manage the event)
///
/// `multipart/form-data` with a file field `image` and a text field `event`.
/// Each validation failure is a 400 naming the field: `image` missing,
/// empty, over 500 KiB (512000 bytes; a 400, not a 413, for bodies up to
/// 10 MiB) or not a JPEG, PNG, GIF or WebP by its bytes; `event` missing,
/// not a UUID, or unknown. Past 10 MiB the server may answer 413.
#[utoipa::path(
    post, path = "/api/events/upload/", tag = "posters", operation_id = "posters_create",
    request_body(content = PosterUpload, content_type = "multipart/form-data"),
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Stored", body = Poster),
        (status = 400, description = "A field is invalid, or the form cannot be parsed",
            body = ValidationError,
            example = json!({"image": ["Upload a valid image. The file is not a JPEG, PNG, GIF or WebP image."]})),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, description = "Not `multipart/form-data`", body = ErrorDetail,
            example = json!({"detail": "Unsupported media type \"application/json\" in request."})),
        (status = 503, description = "Object storage is unavailable", body = ErrorDetail,
            example = json!({"detail": "Object storage is unavailable. Try again shortly."})),
    )
)]
fn posters_create() {}

/// An event's posters, newest first (anyone)
#[utoipa::path(
    get, path = "/api/events/{id}/poster/", tag = "posters", operation_id = "posters_list",
    params(("id" = Uuid, Path, description = "The event's id")),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The posters (`[]` when none)", body = Vec<Poster>),
        (status = 404, description = "Unknown event", body = ErrorDetail,
            example = json!({"detail": "Not found."})),
    )
)]
fn posters_list() {}

/// A poster's image bytes (anyone)
#[utoipa::path(
    get, path = "/api/media/{id}/", tag = "posters", operation_id = "media_retrieve",
    params(
        ("id" = Uuid, Path, description = "The poster's id"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` from an earlier response: 304 when it still matches"),
    ),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The image, with its stored content type",
            content(("image/jpeg"), ("image/png"), ("image/gif"), ("image/webp")),
            headers(
                ("Content-Length" = u64, description = "Bytes"),
                ("ETag" = String, description = "The content's SHA-256, quoted"),
                ("Cache-Control" = String, description = "`public, max-age=86400`"),
            )),
        (status = 304, description = "Not modified (the `If-None-Match` tag matches)",
            headers(
                ("ETag" = String, description = "The content's SHA-256, quoted"),
                ("Cache-Control" = String, description = "`public, max-age=86400`"),
            )),
        (status = 404, response = NotFound),
    )
)]
fn media_retrieve() {}

/// Delete a poster and its stored image (those who manage the event)
#[utoipa::path(
    delete, path = "/api/media/{id}/", tag = "posters", operation_id = "media_destroy",
    params(("id" = Uuid, Path, description = "The poster's id")),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
fn media_destroy() {}

// ---------------------------------------------------------------- operations

/// Liveness: the process runs
#[utoipa::path(
    get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Health))
)]
fn healthz() {}

/// Readiness: the state of database, cache, object storage, mail and jobs
#[utoipa::path(
    get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "The database is unreachable", body = Readiness),
    )
)]
fn readyz() {}

/// Prometheus metrics
///
/// Request counts and latency histograms by route template and status,
/// cache hits and misses, e-mails sent and failed, job queue depth.
#[utoipa::path(
    get, path = "/metrics", tag = "operations", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4",
            content_type = "text/plain", body = String),
    )
)]
fn metrics() {}

/// This OpenAPI document
#[utoipa::path(
    get, path = "/api/schema/", tag = "documentation", operation_id = "schema_retrieve",
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the API",
            content_type = "application/json", body = Object),
    )
)]
fn schema_retrieve() {}

/// A page to read this document (Swagger UI, served from the binary)
#[utoipa::path(
    get, path = "/api/docs/", tag = "documentation", operation_id = "docs_retrieve",
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The documentation page", content_type = "text/html", body = String),
    )
)]
fn docs_retrieve() {}
