//! `/api/registrations/`: a user's place on a ticket.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{JsonBody, path_id};
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, SentUri};
use super::pagination::{Origin, Pagination, RegistrationList, page_request};
use super::schemas::{FieldErrorsBody, ID_UUID, datetime, money, optional_datetime};
use crate::db::entities::registration;
use crate::domain::FieldErrors;
use crate::domain::registrations::{self as domain, NewRegistration, RegistrationFilter};
use crate::input::QueryParams;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, update, destroy))
}

#[derive(Serialize, ToSchema)]
#[schema(as = Registration)]
pub struct RegistrationOut {
    pub id: Uuid,
    pub ticket: Uuid,
    pub user: Uuid,
    pub event: Uuid,
    #[serde(serialize_with = "datetime")]
    pub registered_at: DateTime<Utc>,
    /// `confirmed`; `awaiting_payment` (a priced ticket with a payment
    /// window, until a payment of it is completed); `expired` (the window
    /// passed: the seat was given back). Read-only (API.md §9).
    #[schema(value_type = String, example = "confirmed")]
    pub status: String,
    /// When an `awaiting_payment` registration loses its seat; else `null`.
    #[serde(serialize_with = "optional_datetime")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// The voucher it was made with (its id), or `null`.
    #[schema(required = true)]
    pub voucher: Option<Uuid>,
    /// What it owes: the ticket's price after the voucher's discount.
    #[serde(serialize_with = "money")]
    #[schema(minimum = 0, value_type = f64)]
    pub amount_due: i64,
}

impl From<registration::Model> for RegistrationOut {
    fn from(r: registration::Model) -> Self {
        RegistrationOut {
            id: r.id,
            ticket: r.ticket_id,
            user: r.user_id,
            event: r.event_id,
            registered_at: r.registered_at,
            status: r.status,
            hold_expires_at: r.hold_expires_at,
            voucher: r.voucher_id,
            amount_due: r.amount_due_minor.unwrap_or(0),
        }
    }
}

/// A registration's ticket and user (POST, PUT).
#[derive(ToSchema)]
pub struct RegistrationWrite {
    pub ticket_id: Uuid,
    /// Default: the caller. Naming another user needs superuser, admin, or
    /// managing the ticket's event.
    #[schema(required = false, value_type = Uuid)]
    pub user_id: Option<Uuid>,
    /// A voucher's code (case-insensitive): a discount, or a hidden ticket.
    /// Unknown, used up, expired or not for this ticket → 400 on `voucher`.
    #[schema(required = false, value_type = String, max_length = 64)]
    pub voucher: Option<String>,
}

/// A registration's ticket and user as sent: on PATCH either may be missing.
pub struct RegistrationPatch {
    pub ticket_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    /// Read on POST only.
    pub voucher: Option<String>,
}

impl RegistrationPatch {
    fn read(body: &JsonBody, partial: bool) -> ApiResult<(Self, FieldErrors)> {
        let mut input = body.input(partial)?;
        let fields = RegistrationPatch {
            ticket_id: input.uuid("ticket_id", true),
            user_id: input.uuid("user_id", false),
            voucher: input.text("voucher", crate::input::Text::optional(64)),
        };
        Ok((fields, input.errors))
    }
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegistrationFilters {
    pub ticket: Option<Uuid>,
    pub event: Option<Uuid>,
    pub user: Option<Uuid>,
    /// `confirmed`, `awaiting_payment` or `expired`. Without it, the list
    /// holds every registration that has a seat (not the expired ones).
    #[param(value_type = Option<String>, pattern = "^(confirmed|awaiting_payment|expired)$")]
    pub status: Option<String>,
}

/// List registrations (scoped to the caller)
///
/// Superuser and admin see all; an organiser those for their events plus
/// their own; a user their own.
#[utoipa::path(
    get, path = "/api/registrations", tag = "registrations", operation_id = "registrations_list",
    params(RegistrationFilters, Pagination),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "A page of registrations", body = RegistrationList),
        (status = 400, description = "A bad filter value", body = FieldErrorsBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Json<RegistrationList>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let filters = RegistrationFilters {
        ticket: query.uuid("ticket", &mut errors),
        event: query.uuid("event", &mut errors),
        user: query.uuid("user", &mut errors),
        status: query.choice("status", domain::STATUSES, &[], &mut errors),
    };
    errors.into_result()?;
    let filter = RegistrationFilter {
        ticket: filters.ticket,
        event: filters.event,
        user: filters.user,
        status: filters.status,
    };
    let page = domain::list(&state, &caller, &filter, page_request(&query)).await?;
    Ok(Json(RegistrationList::new(
        page,
        RegistrationOut::from,
        &uri,
        &origin,
    )))
}

/// Register for a ticket
///
/// Capacity is never exceeded (409 "Sold out."); the same user twice on a
/// ticket is a 409. Registering oneself needs the sales window open and the
/// event scheduled and not yet started (409 otherwise); those who manage the
/// event may register anyone at any time (box office).
#[utoipa::path(
    post, path = "/api/registrations", tag = "registrations", operation_id = "registrations_create",
    request_body = RegistrationWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Registered", body = RegistrationOut),
        (status = 403, description = "Naming another user without managing the event"),
        (status = 409, description = "Sold out, already registered, or registration closed",
            example = json!({"detail": "Sold out."})),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<RegistrationOut>)> {
    let (fields, mut errors) = RegistrationPatch::read(&body, false)?;
    // Without a ticket nothing else can be decided: its field errors, and
    // whether the user named exists.
    let Some(ticket_id) = fields.ticket_id else {
        if let Some(user_id) = fields.user_id.filter(|id| *id != caller.id) {
            domain::check_user(&state, user_id, &mut errors).await?;
        }
        return Err(ApiError::Validation(errors));
    };
    let write = RegistrationWrite {
        ticket_id,
        user_id: fields.user_id,
        voucher: fields.voucher,
    };
    let new = NewRegistration {
        ticket_id: write.ticket_id,
        user_id: write.user_id,
        voucher: write.voucher,
    };
    let created = domain::register(&state, &caller, new, errors).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Read a registration (its user, or those who manage the event)
#[utoipa::path(
    get, path = "/api/registrations/{id}", tag = "registrations", operation_id = "registrations_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 200, description = "The registration", body = RegistrationOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such registration"),
    )
)]
async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<RegistrationOut>> {
    Ok(Json(
        domain::get(&state, &caller, path_id(&id)?).await?.into(),
    ))
}

/// Move a registration (superuser, admin)
///
/// PUT names the ticket (and optionally the user); PATCH either. Capacity
/// is re-checked on the new ticket and event. Naming the current ticket and
/// user changes nothing.
#[utoipa::path(
    method(put, patch), path = "/api/registrations/{id}", tag = "registrations", operation_id = "registrations_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = RegistrationWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Moved", body = RegistrationOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such registration"),
        (status = 409, description = "Sold out, or the user is already registered there"),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<RegistrationOut>> {
    let partial = method == Method::PATCH;
    // 404 and 403 before the body is looked at (DRF's order).
    let found = domain::get_movable(&state, &caller, path_id(&id)?).await?;
    let (fields, errors) = RegistrationPatch::read(&body, partial)?;
    let moved = domain::move_to(
        &state,
        &caller,
        found.id,
        fields.ticket_id,
        fields.user_id,
        errors,
    )
    .await?;
    Ok(Json(moved.into()))
}

/// Cancel a registration
///
/// Superuser and admin; its user while it has no completed payment. Its
/// payments go with it.
#[utoipa::path(
    delete, path = "/api/registrations/{id}", tag = "registrations", operation_id = "registrations_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such registration"),
    )
)]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    domain::cancel(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
