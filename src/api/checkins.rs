//! Check-in at the door (API.md §7): ticket codes and their QR images,
//! the public keys, scans, their list and undo, an event's numbers and what
//! an offline door app syncs.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{JsonBody, idempotency_key, path_id};
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, SentUri};
use super::pagination::{AttendeeList, CheckinList, Origin, Pagination, page_request};
use super::schemas::{ID_UUID, datetime, money};
use crate::db::entities::user;
use crate::domain::FieldErrors;
use crate::domain::checkins::{
    self as domain, Admission, CheckinFilter, Holder, Presented, PublicKey, Refused, Scan,
    ScanRefused,
};
use crate::domain::idempotency::{self, Endpoint, Remembered, RequestKey};
use crate::input::QueryParams;
use crate::state::AppState;
use crate::ticket_codes;

/// How far ahead of the server's clock an offline scan's `scanned_at` may
/// be (a door app's clock running fast).
const MAX_SCAN_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ticket))
        .routes(routes!(ticket_svg))
        .routes(routes!(ticket_png))
        .routes(routes!(keys))
        .routes(routes!(list, scan))
        .routes(routes!(undo))
        .routes(routes!(sync))
        .routes(routes!(stats))
        .routes(routes!(attendees))
}

/// A registration's ticket code and where its QR code is.
#[derive(Serialize, ToSchema)]
pub struct TicketOut {
    pub registration: Uuid,
    pub event: Uuid,
    /// `DE1.<payload>.<signature>`: what the QR code carries.
    pub code: String,
    /// Printed under the QR code, e.g. `7KQ4-M2XD-9P`: door staff may type
    /// it instead (any case, dashes ignored; looked up, not verifiable
    /// offline).
    pub short_code: String,
    /// URL of the QR code as SVG.
    pub qr_svg: String,
    /// URL of the QR code as PNG.
    pub qr_png: String,
}

/// A registration's ticket code (its user, or those who manage the event)
#[utoipa::path(
    get, path = "/api/registrations/{id}/ticket", tag = "checkins", operation_id = "registrations_ticket",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The code and its QR images", body = TicketOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such registration"),
    )
)]
async fn ticket(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    origin: Origin,
) -> ApiResult<Json<TicketOut>> {
    let found = domain::ticket_code(&state, &caller, path_id(&id)?).await?;
    let base = format!("/api/registrations/{}/ticket", found.registration.id);
    Ok(Json(TicketOut {
        registration: found.registration.id,
        event: found.registration.event_id,
        code: found.code,
        short_code: ticket_codes::format_short_code(&found.registration.short_code),
        qr_svg: origin.url(&format!("{base}.svg")),
        qr_png: origin.url(&format!("{base}.png")),
    }))
}

fn image(content_type: &'static str, bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // A ticket is personal: never kept by shared caches.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// The ticket's QR code as SVG (its user, or those who manage the event)
#[utoipa::path(
    get, path = "/api/registrations/{id}/ticket.svg", tag = "checkins", operation_id = "registrations_ticket_svg",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The QR code", content_type = "image/svg+xml", body = String),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such registration"),
    )
)]
async fn ticket_svg(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let found = domain::ticket_code(&state, &caller, path_id(&id)?).await?;
    let svg = ticket_codes::qr_svg(&found.code)?;
    Ok(image("image/svg+xml", svg.into_bytes()))
}

/// The ticket's QR code as PNG (its user, or those who manage the event)
#[utoipa::path(
    get, path = "/api/registrations/{id}/ticket.png", tag = "checkins", operation_id = "registrations_ticket_png",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The QR code", content(("image/png"))),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such registration"),
    )
)]
async fn ticket_png(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let found = domain::ticket_code(&state, &caller, path_id(&id)?).await?;
    Ok(image("image/png", ticket_codes::qr_png(&found.code)?))
}

/// A public key as a JWK (RFC 8037).
#[derive(Serialize, ToSchema)]
pub struct Jwk {
    pub kid: String,
    /// `EdDSA`.
    pub alg: &'static str,
    /// `OKP`.
    pub kty: &'static str,
    /// `Ed25519`.
    pub crv: &'static str,
    /// The public key, base64url without padding.
    pub x: String,
}

impl From<PublicKey> for Jwk {
    fn from(k: PublicKey) -> Self {
        Jwk {
            kid: k.kid,
            alg: "EdDSA",
            kty: "OKP",
            crv: "Ed25519",
            x: k.x,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

/// The keys that sign ticket codes (anyone)
///
/// A door app verifies `DE1.<payload>.<signature>` offline: the signature is
/// Ed25519 over the ASCII of `DE1.<payload>`; the payload's first 6 bytes
/// are the key id (its base64url is `kid`), then the registration id and
/// the event id (16 bytes each).
#[utoipa::path(
    get, path = "/api/checkins/keys", tag = "checkins", operation_id = "checkins_keys",
    security((), ("jwt" = [])),
    responses((status = 200, description = "Every key that signed codes here", body = KeySet))
)]
async fn keys(State(state): State<AppState>) -> ApiResult<Json<KeySet>> {
    let keys = domain::public_keys(&state).await?;
    Ok(Json(KeySet {
        keys: keys.into_iter().map(Jwk::from).collect(),
    }))
}

/// The admitted person.
#[derive(Serialize, ToSchema)]
pub struct Attendee {
    pub id: Uuid,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
}

/// A check-in.
#[derive(Serialize, ToSchema)]
#[schema(as = Checkin)]
pub struct CheckinOut {
    pub id: Uuid,
    pub registration: Uuid,
    pub event: Uuid,
    /// The event's name (what the door says).
    pub event_name: String,
    pub ticket: Uuid,
    /// The ticket type's name.
    pub ticket_name: String,
    pub user: Attendee,
    #[serde(serialize_with = "datetime")]
    pub checked_in_at: DateTime<Utc>,
    /// The scanner's user id (`null` once that account is deleted).
    #[schema(required = true)]
    pub checked_in_by: Option<Uuid>,
    /// Admitted although the ticket was not paid.
    pub forced: bool,
    /// Scanned by a door app offline, uploaded later.
    pub offline: bool,
    /// A second entry on the same ticket (an offline scan after another
    /// admission).
    pub conflict: bool,
    /// `scan` (a code) or `manual` (admitted by registration id).
    pub method: String,
}

impl From<Admission> for CheckinOut {
    fn from(a: Admission) -> Self {
        CheckinOut {
            id: a.checkin.id,
            registration: a.checkin.registration_id,
            event: a.checkin.event_id,
            event_name: a.event_name,
            ticket: a.checkin.ticket_id,
            ticket_name: a.ticket_name,
            user: Attendee::from(a.user),
            checked_in_at: a.checkin.checked_in_at,
            checked_in_by: a.checkin.checked_in_by,
            forced: a.checkin.forced,
            offline: a.checkin.offline,
            conflict: a.checkin.conflict,
            method: a.checkin.method,
        }
    }
}

impl From<user::Model> for Attendee {
    fn from(u: user::Model) -> Self {
        Attendee {
            id: u.id,
            username: u.username,
            first_name: u.first_name,
            last_name: u.last_name,
        }
    }
}

/// A scan: a `code`, or a `registration` found by name (with its
/// `event`).
#[derive(ToSchema)]
pub struct ScanRequest {
    /// The ticket code read from the QR code, or the short code printed
    /// under it (any case, dashes ignored).
    #[schema(required = false)]
    pub code: Option<String>,
    /// Admit this registration without a code (door staff found the person
    /// by name; recorded as `manual`). Needs `event`.
    #[schema(required = false)]
    pub registration: Option<Uuid>,
    /// The event whose door this is: another event's ticket is refused
    /// (`wrong_event`), and so is a scan outside the admission window
    /// (`not_yet_valid`, `event_ended`). Door apps should always send it.
    #[schema(required = false)]
    pub event: Option<Uuid>,
    /// Admit although the ticket is not paid, or outside the admission
    /// window (recorded as forced).
    #[schema(required = false)]
    pub force: bool,
    /// When a door app admitted the person offline; the scan is recorded
    /// even when it conflicts with an earlier check-in (flagged).
    #[schema(required = false, value_type = DateTime<Utc>)]
    pub scanned_at: Option<DateTime<Utc>>,
}

/// A code that is not a valid ticket code.
#[derive(Serialize, ToSchema)]
pub struct InvalidCode {
    /// `["Invalid ticket code."]`.
    pub code: [&'static str; 1],
    /// `invalid_code`.
    pub reason: &'static str,
}

/// A scan refused at the door (403, 404, 409): why, in words (`detail`)
/// and as a `reason` a door app can switch on; an earlier admission says
/// when and by whom. When the code is genuine and the caller manages its
/// event, the refusal names whose ticket it is (`registration`, `user`,
/// `ticket`, `ticket_name`, `event`, `event_name`).
#[derive(ToSchema)]
pub struct ScanRefusal {
    pub detail: String,
    /// `forbidden` (403), `revoked` (404), `wrong_event`,
    /// `event_cancelled`, `not_yet_valid`, `event_ended`, `unpaid`,
    /// `already_checked_in` (409).
    pub reason: String,
    /// `already_checked_in` only: when the person was admitted.
    #[schema(required = false, value_type = DateTime<Utc>)]
    pub checked_in_at: Option<DateTime<Utc>>,
    /// `already_checked_in` only: who admitted them (null when that
    /// account is gone, or for an import).
    #[schema(required = false)]
    pub checked_in_by: Option<Uuid>,
    /// `not_yet_valid` only: when the door opens for this event.
    #[schema(required = false, value_type = DateTime<Utc>)]
    pub opens_at: Option<DateTime<Utc>>,
    /// `event_ended` only: when the event ended.
    #[schema(required = false, value_type = DateTime<Utc>)]
    pub ended_at: Option<DateTime<Utc>>,
    #[schema(required = false)]
    pub registration: Option<Uuid>,
    #[schema(required = false)]
    pub user: Option<Attendee>,
    #[schema(required = false)]
    pub ticket: Option<Uuid>,
    #[schema(required = false)]
    pub ticket_name: Option<String>,
    #[schema(required = false)]
    pub event: Option<Uuid>,
    #[schema(required = false)]
    pub event_name: Option<String>,
}

/// A 400 of a scan: an invalid code, or the usual field errors.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ScanBadRequest {
    InvalidCode(InvalidCode),
    Other(super::schemas::ValidationError),
}

/// The answer to a scan: status and body.
fn scan_answer(outcome: Result<Admission, Refused>) -> ApiResult<(StatusCode, serde_json::Value)> {
    let refused = match outcome {
        Ok(admission) => {
            return Ok((
                StatusCode::CREATED,
                serde_json::to_value(CheckinOut::from(admission))
                    .map_err(|e| ApiError::Internal(e.into()))?,
            ));
        }
        Err(refused) => refused,
    };
    let reason = refused.why.reason();
    let (status, mut body) = match refused.why {
        ScanRefused::InvalidCode => (
            StatusCode::BAD_REQUEST,
            serde_json::to_value(ScanBadRequest::InvalidCode(InvalidCode {
                code: ["Invalid ticket code."],
                reason,
            }))
            .map_err(|e| ApiError::Internal(e.into()))?,
        ),
        ScanRefused::NoSuchDoor(id) => (
            StatusCode::BAD_REQUEST,
            json!({ "event": [crate::domain::does_not_exist(id)] }),
        ),
        ScanRefused::WrongEvent(name) => (
            StatusCode::CONFLICT,
            json!({ "detail": format!("Ticket is for another event: {name}."), "reason": reason }),
        ),
        ScanRefused::Revoked => (
            StatusCode::NOT_FOUND,
            json!({ "detail": "Not found.", "reason": reason }),
        ),
        ScanRefused::Forbidden => (
            StatusCode::FORBIDDEN,
            json!({
                "detail": "You do not have permission to perform this action.",
                "reason": reason,
            }),
        ),
        ScanRefused::EventCancelled => (
            StatusCode::CONFLICT,
            json!({ "detail": "Event is cancelled.", "reason": reason }),
        ),
        ScanRefused::NotYetValid { opens_at } => (
            StatusCode::CONFLICT,
            json!({
                "detail": format!(
                    "Ticket is not valid yet: admission opens at {}.",
                    crate::input::format_datetime(&opens_at)
                ),
                "reason": reason,
                "opens_at": crate::input::format_datetime(&opens_at),
            }),
        ),
        ScanRefused::EventEnded { ended_at } => (
            StatusCode::CONFLICT,
            json!({
                "detail": "Event has ended.",
                "reason": reason,
                "ended_at": crate::input::format_datetime(&ended_at),
            }),
        ),
        ScanRefused::Unpaid => (
            StatusCode::CONFLICT,
            json!({ "detail": "Payment not completed.", "reason": reason }),
        ),
        ScanRefused::BeforeRegistration => (
            StatusCode::BAD_REQUEST,
            json!({ "scanned_at": ["Scan time cannot be before the registration was made."] }),
        ),
        ScanRefused::AlreadyCheckedIn { at, by } => (
            StatusCode::CONFLICT,
            json!({
                "detail": "Already checked in.",
                "reason": reason,
                "checked_in_at": crate::input::format_datetime(&at),
                "checked_in_by": by,
            }),
        ),
        ScanRefused::Replay(first) => {
            return Ok((
                StatusCode::from_u16(first.status).unwrap_or(StatusCode::CREATED),
                serde_json::from_str(&first.body).map_err(|e| ApiError::Internal(e.into()))?,
            ));
        }
        ScanRefused::Failed(err) => return Err(err.into()),
    };
    // A refusal about a genuine ticket says whose it is (not the field
    // errors of a 400 about the request itself).
    if let (Some(holder), true) = (refused.holder, status != StatusCode::BAD_REQUEST) {
        name_holder(&mut body, holder)?;
    }
    Ok((status, body))
}

/// Adds whose ticket it is to a refusal's body.
fn name_holder(body: &mut serde_json::Value, holder: Holder) -> ApiResult<()> {
    let user = serde_json::to_value(Attendee::from(holder.user))
        .map_err(|e| ApiError::Internal(e.into()))?;
    if let Some(fields) = body.as_object_mut() {
        fields.insert("registration".into(), json!(holder.registration));
        fields.insert("user".into(), user);
        fields.insert("ticket".into(), json!(holder.ticket));
        fields.insert("ticket_name".into(), json!(holder.ticket_name));
        fields.insert("event".into(), json!(holder.event));
        fields.insert("event_name".into(), json!(holder.event_name));
    }
    Ok(())
}

/// Check a ticket in (superuser, admin, those who manage the code's event)
///
/// Answers, in this order: a malformed code or bad signature → 400 with
/// `reason` `invalid_code`; the registration gone → 404 `revoked`; not a
/// manager of the event → 403; event cancelled → 409 `event_cancelled`; a
/// priced ticket without a completed payment → 409 `unpaid` (unless
/// `force`); already admitted → 409 `already_checked_in` with when and by
/// whom. However many scanners send one code at once, exactly one gets 201.
/// With an `Idempotency-Key`, a retry gets the first answer again.
#[utoipa::path(
    post, path = "/api/checkins", tag = "checkins", operation_id = "checkins_create",
    request_body = ScanRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 255 visible ASCII characters")),
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Admitted", body = CheckinOut),
        (status = 400, description = "Not a valid ticket code (`reason` `invalid_code`), or a bad body",
            body = ScanBadRequest,
            example = json!({"code": ["Invalid ticket code."], "reason": "invalid_code"})),
        (status = 403, description = "Not allowed to admit at this event", body = ScanRefusal,
            example = json!({"detail": "You do not have permission to perform this action.", "reason": "forbidden"})),
        (status = 404, description = "The registration is gone", body = ScanRefusal,
            example = json!({"detail": "Not found.", "reason": "revoked"})),
        (status = 409, description = "Cancelled event, unpaid ticket, or already checked in",
            body = ScanRefusal,
            example = json!({"detail": "Already checked in.", "reason": "already_checked_in", "checked_in_at": "2027-01-10T12:04:00Z", "checked_in_by": "0193a4c2-7d1e-7c3a-9b1f-2f0e5d6c7b8a"})),
        (status = 422, description = "The Idempotency-Key was used with another request body",
            body = super::schemas::ErrorDetail,
            example = json!({"detail": "Idempotency-Key reused with a different request."})),
    )
)]
async fn scan(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    headers: HeaderMap,
    body: JsonBody,
) -> ApiResult<Response> {
    // Scans have their own key space beside payments; their keys stay at
    // most 247 characters, as door apps were told when the key was stored
    // as sent.
    let key = idempotency_key(&headers)?;
    if key.as_ref().is_some_and(|k| k.len() > 247) {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 247 characters long here.".into(),
        ));
    }
    let key = key.map(|sent| RequestKey::new(Endpoint::Checkins, &sent, body.fingerprint()));
    if let Some(key) = &key
        && let Some(previous) = idempotency::remembered(&state, caller.id, key).await?
    {
        return super::replay(previous);
    }
    let mut input = body.input(false)?;
    let registration = input.uuid("registration", false);
    let code = if input.contains("registration") && !input.contains("code") {
        None
    } else {
        input.text("code", crate::input::Text::required(1024))
    };
    let event = input.uuid("event", false);
    let force = input.boolean("force", false);
    let scanned_at = input.datetime("scanned_at", false, state.config.time_zone);
    // An offline scan happened in the past: a door app's clock may run a
    // few minutes ahead, no more.
    if scanned_at.is_some_and(|at| at > crate::db::now() + MAX_SCAN_CLOCK_SKEW) {
        input
            .errors
            .add("scanned_at", "Scan time cannot be in the future.");
    }
    if input.contains("registration") {
        if input.contains("code") {
            input.errors.add(
                "non_field_errors",
                "Send either a code or a registration, not both.",
            );
        } else if !input.contains("event") {
            input.errors.add(
                "event",
                "This field is required when admitting by registration.",
            );
        }
    }
    if !input.errors.is_empty() {
        return code_errors(input.errors);
    }
    let presented = match (code, registration) {
        (Some(code), _) => Presented::Code(code),
        (None, Some(id)) => Presented::Registration(id),
        (None, None) => return code_errors(FieldErrors::single("code", "This field is required.")),
    };
    let request = Scan {
        presented,
        event,
        force: force.unwrap_or(false),
        scanned_at,
    };
    let render = |admission: &Admission| {
        serde_json::to_string(&CheckinOut::from(admission.clone())).unwrap_or_default()
    };
    let outcome = domain::scan(
        &state,
        &caller,
        request,
        key.as_ref().map(|key| domain::Idempotent {
            key,
            render: &render,
        }),
    )
    .await;
    if let Err(Refused {
        why: ScanRefused::Replay(first),
        ..
    }) = outcome
    {
        return super::replay(first);
    }
    let (status, body) = scan_answer(outcome)?;
    match key {
        Some(key) => {
            let first = idempotency::remember(
                &state,
                caller.id,
                &key,
                Remembered {
                    status: status.as_u16(),
                    body: body.to_string(),
                },
            )
            .await?;
            super::replay(first)
        }
        None => Ok((status, Json(body)).into_response()),
    }
}

/// A 400 about the body: on the `code` field it carries the reason
/// `invalid_code` too, as a door app expects.
fn code_errors(errors: FieldErrors) -> ApiResult<Response> {
    if !errors.has("code") {
        return Err(ApiError::Validation(errors));
    }
    let mut body = serde_json::to_value(&errors.0).map_err(|e| ApiError::Internal(e.into()))?;
    body["reason"] = json!("invalid_code");
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckinFilters {
    pub event: Option<Uuid>,
    pub ticket: Option<Uuid>,
}

/// List check-ins (superuser, admin: all; organisers: their events)
#[utoipa::path(
    get, path = "/api/checkins", tag = "checkins", operation_id = "checkins_list",
    params(CheckinFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of check-ins, newest first", body = CheckinList),
        (status = 400, description = "A bad filter value"),
        (status = 403, description = "Not allowed"),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<CheckinList>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let filters = CheckinFilters {
        event: query.uuid("event", &mut errors),
        ticket: query.uuid("ticket", &mut errors),
    };
    errors.into_result()?;
    let filter = CheckinFilter {
        event: filters.event,
        ticket: filters.ticket,
    };
    let page = domain::list(&state, &caller, &filter, page_request(&query)).await?;
    Ok(Json(CheckinList::new(
        page,
        CheckinOut::from,
        &uri,
        &origin,
    )))
}

/// Undo a check-in (those who manage the event)
#[utoipa::path(
    delete, path = "/api/checkins/{id}", tag = "checkins", operation_id = "checkins_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Undone"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such check-in"),
    )
)]
async fn undo(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    domain::undo(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An admission, for a door app.
#[derive(Serialize, ToSchema)]
pub struct Admitted {
    pub registration: Uuid,
    #[serde(serialize_with = "datetime")]
    pub checked_in_at: DateTime<Utc>,
}

/// What an offline door app needs.
#[derive(Serialize, ToSchema)]
pub struct SyncOut {
    pub keys: Vec<Jwk>,
    /// Registrations deleted (or moved away) since `since`: refuse their codes.
    pub revoked: Vec<Uuid>,
    /// Admissions recorded since `since`.
    pub checked_in: Vec<Admitted>,
    /// Ask with this as `since` next time.
    #[serde(serialize_with = "datetime")]
    pub server_time: DateTime<Utc>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncParams {
    /// Only what changed since this time (RFC 3339); everything without it.
    pub since: Option<DateTime<Utc>>,
}

/// What an offline door app needs for an event (those who manage it)
#[utoipa::path(
    get, path = "/api/events/{id}/checkin-sync", tag = "checkins", operation_id = "events_checkin_sync",
    params(("id" = Uuid, Path, description = ID_UUID), SyncParams),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Keys, revocations and admissions", body = SyncOut),
        (status = 400, description = "A bad `since`"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such event"),
    )
)]
async fn sync(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<SyncOut>> {
    let event_id = path_id(&id)?;
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let params = SyncParams {
        since: query.datetime("since", state.config.time_zone, &mut errors),
    };
    // 404 and 403 first, then the bad parameter.
    crate::domain::events::get_managed(&state, &caller, event_id).await?;
    errors.into_result()?;
    let synced = domain::sync(&state, &caller, event_id, params.since).await?;
    Ok(Json(SyncOut {
        keys: synced.keys.into_iter().map(Jwk::from).collect(),
        revoked: synced.revoked,
        checked_in: synced
            .checked_in
            .into_iter()
            .map(|(registration, checked_in_at)| Admitted {
                registration,
                checked_in_at,
            })
            .collect(),
        server_time: synced.server_time,
    }))
}

/// Payments of an event by status.
#[derive(Serialize, ToSchema)]
pub struct PaymentCounts {
    pub pending: u64,
    pub completed: u64,
    pub failed: u64,
    pub refunded: u64,
}

#[derive(Serialize, ToSchema)]
pub struct TicketStatsOut {
    pub id: Uuid,
    pub name: String,
    pub quota: i64,
    pub sold: i64,
    pub checked_in: u64,
}

/// An event's numbers.
#[derive(Serialize, ToSchema)]
pub struct StatsOut {
    pub event: Uuid,
    pub quota: i64,
    pub registered: u64,
    pub checked_in: u64,
    pub payments: PaymentCounts,
    /// Completed payments.
    #[serde(serialize_with = "money")]
    #[schema(value_type = f64)]
    pub revenue: i64,
    pub tickets: Vec<TicketStatsOut>,
}

/// An event's numbers (those who manage it)
#[utoipa::path(
    get, path = "/api/events/{id}/stats", tag = "checkins", operation_id = "events_stats",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Registrations, check-ins, payments and revenue", body = StatsOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such event"),
    )
)]
async fn stats(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<StatsOut>> {
    let s = domain::stats(&state, &caller, path_id(&id)?).await?;
    let count = |status: &str| {
        s.payments
            .iter()
            .find(|(name, _)| *name == status)
            .map_or(0, |(_, n)| *n)
    };
    Ok(Json(StatsOut {
        event: s.event,
        quota: s.quota,
        registered: s.registered,
        checked_in: s.checked_in,
        payments: PaymentCounts {
            pending: count("pending"),
            completed: count("completed"),
            failed: count("failed"),
            refunded: count("refunded"),
        },
        revenue: s.revenue_minor,
        tickets: s
            .tickets
            .into_iter()
            .map(|t| TicketStatsOut {
                id: t.id,
                name: t.name,
                quota: t.quota,
                sold: t.sold,
                checked_in: t.checked_in,
            })
            .collect(),
    }))
}

/// An attendee as door staff find them.
#[derive(Serialize, ToSchema)]
pub struct Person {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// A registration of an event, for the door.
#[derive(Serialize, ToSchema)]
pub struct AttendeeOut {
    pub registration: Uuid,
    /// The short code printed on the ticket, e.g. `7KQ4-M2XD-9P`.
    pub short_code: String,
    pub user: Person,
    pub ticket: Uuid,
    pub ticket_name: String,
    #[serde(serialize_with = "datetime")]
    pub registered_at: DateTime<Utc>,
    /// `completed` when a payment is, else the latest payment's status;
    /// `null` without a payment.
    #[schema(required = true)]
    pub payment_status: Option<String>,
    /// Whether the door must see a completed payment (a priced ticket).
    pub paid: bool,
    /// When the person was admitted, `null` until then.
    #[schema(required = true, value_type = Option<DateTime<Utc>>)]
    #[serde(serialize_with = "super::schemas::optional_datetime")]
    pub checked_in_at: Option<DateTime<Utc>>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendeeParams {
    /// Part of a name, username or e-mail (any case), or a short code.
    pub search: Option<String>,
}

/// Find an event's attendees at the door (those who manage the event)
///
/// Registrations in registration order, each with the person, ticket type,
/// payment status and admission; `search` narrows them to people whose
/// name, username or e-mail contains it, or to the registration whose short
/// code it is. Admit one with `POST /api/checkins/` and
/// `{"registration", "event"}`.
#[utoipa::path(
    get, path = "/api/events/{id}/attendees", tag = "checkins", operation_id = "events_attendees",
    params(("id" = Uuid, Path, description = ID_UUID), AttendeeParams, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of attendees", body = AttendeeList),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such event"),
    )
)]
async fn attendees(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<AttendeeList>> {
    let event_id = path_id(&id)?;
    let query = QueryParams::parse(raw.as_deref());
    let search = query.get("search").map(str::to_owned);
    let page = crate::domain::registrations::roster(
        &state,
        &caller,
        event_id,
        search.as_deref(),
        page_request(&query),
    )
    .await?;
    Ok(Json(AttendeeList::new(
        page,
        |row| AttendeeOut {
            registration: row.registration.id,
            short_code: ticket_codes::format_short_code(&row.registration.short_code),
            user: Person {
                id: row.user.id,
                username: row.user.username,
                email: row.user.email,
                first_name: row.user.first_name,
                last_name: row.user.last_name,
            },
            ticket: row.registration.ticket_id,
            ticket_name: row.ticket,
            registered_at: row.registration.registered_at,
            paid: !row.priced || row.payment_status.as_deref() == Some("completed"),
            payment_status: row.payment_status,
            checked_in_at: row.checked_in_at,
        },
        &uri,
        &origin,
    )))
}
