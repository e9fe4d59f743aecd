//! `/api/waitlist/` (API.md §9): joining a sold-out ticket's waiting list,
//! one's place in it, leaving, and accepting an offered seat.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{JsonBody, path_id};
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, SentUri};
use super::pagination::{Origin, Pagination, WaitlistList, page_request};
use super::registrations::RegistrationOut;
use super::schemas::{FieldErrorsBody, ID_UUID, datetime, optional_datetime};
use crate::domain::FieldErrors;
use crate::domain::waitlist::{self as domain, Place};
use crate::input::QueryParams;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, destroy))
        .routes(routes!(accept))
}

#[derive(Serialize, ToSchema)]
#[schema(as = WaitlistEntry)]
pub struct WaitlistOut {
    pub id: Uuid,
    pub ticket: Uuid,
    pub user: Uuid,
    /// The place in line while waiting (1 = the next seat freed is offered
    /// to them); `null` once offered or ended.
    #[schema(required = true, minimum = 1)]
    pub position: Option<i64>,
    /// `waiting`, `offered`, `accepted`, `expired` (an offer lapsed),
    /// `left` or `closed` (sales closed or the event started).
    #[schema(example = "waiting")]
    pub status: String,
    /// Until when an offered seat is held; `null` unless offered.
    #[serde(serialize_with = "optional_datetime")]
    #[schema(required = true, value_type = Option<DateTime<Utc>>)]
    pub offer_expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "datetime")]
    pub created_at: DateTime<Utc>,
}

impl From<Place> for WaitlistOut {
    fn from(p: Place) -> Self {
        let e = p.entry;
        WaitlistOut {
            id: e.id,
            ticket: e.ticket_id,
            user: e.user_id,
            position: p.position,
            offer_expires_at: (e.status == crate::db::waitlist::OFFERED)
                .then_some(e.offer_expires_at)
                .flatten(),
            status: e.status,
            created_at: e.created_at,
        }
    }
}

/// Joining: the ticket.
#[derive(ToSchema)]
pub struct WaitlistWrite {
    pub ticket_id: Uuid,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitlistFilters {
    /// The ticket's id.
    pub ticket: Option<Uuid>,
}

/// List waiting-list entries: one's own, and those of the events one manages
#[utoipa::path(
    get, path = "/api/waitlist", tag = "waitlist", operation_id = "waitlist_list",
    params(WaitlistFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of entries, oldest first", body = WaitlistList),
        (status = 400, description = "A bad filter value", body = FieldErrorsBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<WaitlistList>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let ticket = query.uuid("ticket", &mut errors);
    errors.into_result()?;
    let page = domain::list(&state, &caller, ticket, page_request(&query)).await?;
    Ok(Json(WaitlistList::new(
        page,
        WaitlistOut::from,
        &uri,
        &origin,
    )))
}

/// Join a sold-out ticket's waiting list
///
/// 409 while tickets are still available, when the ticket has no waiting
/// list, its sales are closed, or the caller is already registered or in
/// line.
#[utoipa::path(
    post, path = "/api/waitlist", tag = "waitlist", operation_id = "waitlist_create",
    request_body = WaitlistWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "In line", body = WaitlistOut),
        (status = 400, description = "No such ticket, or not a UUID"),
        (status = 409, description = "Tickets are still available (or another reason, in `detail`)"),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<WaitlistOut>)> {
    let mut input = body.input(false)?;
    let ticket = input.uuid("ticket_id", true);
    let errors = std::mem::take(&mut input.errors);
    let Some(ticket) = ticket else {
        return Err(ApiError::Validation(errors));
    };
    let placed = domain::join(&state, &caller, ticket, errors).await?;
    Ok((StatusCode::CREATED, Json(placed.into())))
}

/// One entry (its person, those who manage the event)
#[utoipa::path(
    get, path = "/api/waitlist/{id}", tag = "waitlist", operation_id = "waitlist_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The entry", body = WaitlistOut),
        (status = 403, description = "Not theirs"),
        (status = 404, description = "No such entry"),
    )
)]
async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<WaitlistOut>> {
    Ok(Json(
        domain::get(&state, &caller, path_id(&id)?).await?.into(),
    ))
}

/// Leave the waiting list (an offered seat goes to the next person)
#[utoipa::path(
    delete, path = "/api/waitlist/{id}", tag = "waitlist", operation_id = "waitlist_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Left"),
        (status = 403, description = "Not theirs"),
        (status = 404, description = "No such entry"),
        (status = 409, description = "The entry has ended already"),
    )
)]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    domain::leave(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an offered seat: the registration
///
/// Within `offer_expires_at`, by the entry's person; the registration has
/// the ticket's payment window, if any. Accepting and then cancelling does
/// not put the person back in line.
#[utoipa::path(
    post, path = "/api/waitlist/{id}/accept", tag = "waitlist", operation_id = "waitlist_accept",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Registered", body = RegistrationOut),
        (status = 403, description = "Not theirs"),
        (status = 404, description = "No such entry"),
        (status = 409, description = "No open offer, or it has expired"),
    )
)]
async fn accept(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<RegistrationOut>)> {
    let created = domain::accept(&state, &caller, path_id(&id)?).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}
