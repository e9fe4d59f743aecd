//! `/api/tickets/`: ticket types; public reads (cached), writes by those who
//! manage the event.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::body::{JsonBody, path_id};
use super::error::{ApiError, ApiResult};
use super::extract::{AuthUser, SentUri};
use super::pagination::{Origin, Pagination, TicketList, page_request};
use super::schemas::{FieldErrorsBody, ID_UUID, datetime, money};
use crate::cache::Family;
use crate::domain::FieldErrors;
use crate::domain::tickets::{self as domain, ORDERINGS, TicketView};
use crate::input::QueryParams;
use crate::input::tickets::TicketPatch;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, update, destroy))
}

#[derive(Serialize, ToSchema)]
#[schema(as = Ticket)]
pub struct TicketOut {
    pub id: Uuid,
    /// The event's id.
    pub event: Uuid,
    pub name: String,
    /// At most two decimals.
    #[serde(serialize_with = "money")]
    #[schema(minimum = 0, value_type = f64)]
    pub price: i64,
    #[serde(serialize_with = "datetime")]
    pub sales_start: DateTime<Utc>,
    #[serde(serialize_with = "datetime")]
    pub sales_end: DateTime<Utc>,
    #[schema(minimum = 0)]
    pub quota: i64,
    /// Registrations holding a seat on this ticket (open waiting-list
    /// offers hold seats too, and are not counted here).
    #[schema(minimum = 0)]
    pub sold: i64,
    /// What this ticket can still sell: the smaller of `quota - sold` and
    /// its event's room (event quota minus its registrations), never below 0.
    #[schema(minimum = 0)]
    pub available: i64,
    /// How long an unpaid registration keeps its seat, in minutes; `null`:
    /// until cancelled (API.md §9). Only priced tickets hold seats this way.
    #[schema(minimum = 1, maximum = 10080)]
    pub payment_window_minutes: Option<i32>,
    /// Not in the public list; registering needs a voucher that unlocks it
    /// (those who manage the event register anyone).
    pub hidden: bool,
    /// When sold out, people may join its waiting list (`/api/waitlist/`).
    pub waitlist: bool,
    /// How long a waiting-list offer holds a seat.
    #[schema(minimum = 1, maximum = 720)]
    pub waitlist_offer_hours: i32,
}

impl From<TicketView> for TicketOut {
    fn from(view: TicketView) -> Self {
        let available = view.available();
        let t = view.ticket;
        TicketOut {
            available,
            id: t.id,
            event: t.event_id,
            name: t.name,
            price: t.price_minor,
            sales_start: t.sales_start,
            sales_end: t.sales_end,
            quota: t.quota,
            sold: t.sold,
            payment_window_minutes: t.payment_window_minutes,
            hidden: t.hidden,
            waitlist: t.waitlist,
            waitlist_offer_hours: t.waitlist_offer_hours,
        }
    }
}

/// A ticket's fields (POST, PUT).
#[derive(ToSchema)]
pub struct TicketWrite {
    /// The event; unknown → 400 on `event_id`.
    pub event_id: Uuid,
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// At most two decimals; never negative.
    #[schema(minimum = 0, maximum = 9999999999.99, value_type = f64)]
    pub price: i64,
    pub sales_start: DateTime<Utc>,
    /// Not before `sales_start` (400 otherwise).
    pub sales_end: DateTime<Utc>,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub quota: i64,
    /// 1–10080 minutes, or `null` (the default): no payment window.
    #[schema(minimum = 1, maximum = 10080)]
    pub payment_window_minutes: Option<i32>,
    /// Default false.
    pub hidden: Option<bool>,
    /// Default false.
    pub waitlist: Option<bool>,
    /// 1–720, default 48.
    #[schema(minimum = 1, maximum = 720)]
    pub waitlist_offer_hours: Option<i32>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketFilters {
    /// The event's id.
    pub event: Option<Uuid>,
    /// One or more fields, comma-separated, each optionally prefixed `-`
    /// (`-price,name`). Default: creation order.
    #[param(value_type = Option<String>, pattern = r"^-?(price|sales_start|name)(,-?(price|sales_start|name))*$", example = "-price,name")]
    pub ordering: Option<String>,
}

/// List tickets (anyone; cached)
#[utoipa::path(
    get, path = "/api/tickets", tag = "tickets", operation_id = "tickets_list",
    params(TicketFilters, Pagination),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "A page of tickets", body = TicketList,
            headers(("X-Data-Source" = String, description = "`cache` or `database`"))),
        (status = 400, description = "A bad filter value", body = FieldErrorsBody,
            example = json!({"event": ["Must be a valid UUID."]})),
    )
)]
async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    SentUri(uri): SentUri,
    origin: Origin,
) -> ApiResult<Response> {
    let key = super::list_cache_key(&uri, &origin);
    let state = &state;
    super::cached(state, Family::Tickets, key, |generation| async move {
        let query = QueryParams::parse(raw.as_deref());
        let mut errors = FieldErrors::default();
        let ordering = query.ordering(ORDERINGS, "", &mut errors);
        let filters = TicketFilters {
            event: query.uuid("event", &mut errors),
            ordering: query.get("ordering").map(str::to_owned),
        };
        errors.into_result()?;
        let page = domain::list(
            state,
            filters.event,
            false,
            &ordering,
            page_request(&query),
            generation,
        )
        .await?;
        Ok(TicketList::new(page, TicketOut::from, &uri, &origin))
    })
    .await
}

/// Read a ticket (anyone; cached)
#[utoipa::path(
    get, path = "/api/tickets/{id}", tag = "tickets", operation_id = "tickets_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The ticket", body = TicketOut,
            headers(("X-Data-Source" = String, description = "`cache` or `database`"))),
        (status = 404, description = "No such ticket"),
    )
)]
async fn retrieve(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id)?;
    super::cached(
        &state,
        Family::Tickets,
        super::id_key("detail:", id),
        |_| async { Ok(TicketOut::from(domain::get(&state, id).await?)) },
    )
    .await
}

/// Create a ticket (those who manage the event)
#[utoipa::path(
    post, path = "/api/tickets", tag = "tickets", operation_id = "tickets_create",
    request_body = TicketWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Created", body = TicketOut),
        (status = 403, description = "Not allowed"),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<TicketOut>)> {
    domain::authorize_create(&state, &caller).await?;
    let mut input = body.input(false)?;
    let fields = TicketPatch::read(&mut input, state.config.time_zone);
    if let Some(event_id) = fields.event_id {
        domain::check_event(&state, &caller, event_id, &mut input.errors).await?;
    }
    if let (Some(start), Some(end)) = (fields.sales_start, fields.sales_end) {
        domain::check_window(start, end, &mut input.errors);
    }
    let write = fields.complete();
    let Some(write) = write.filter(|_| input.errors.is_empty()) else {
        return Err(ApiError::Validation(input.errors));
    };
    let created = domain::create(&state, &caller, write).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Change a ticket (those who manage the event)
///
/// PUT replaces: every field is required; PATCH changes the fields sent.
/// A quota below `sold` is a 409; a ticket with registrations cannot move
/// to another event (409).
#[utoipa::path(
    method(put, patch), path = "/api/tickets/{id}", tag = "tickets", operation_id = "tickets_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = TicketWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = TicketOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such ticket"),
        (status = 409, description = "The quota is below `sold`, or a sold ticket would move"),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<TicketOut>> {
    let partial = method == Method::PATCH;
    // 404 and 403 before the body is looked at (DRF's order).
    let (found, _) = domain::get_managed(&state, &caller, path_id(&id)?).await?;
    let mut input = body.input(partial)?;
    let fields = TicketPatch::read(&mut input, state.config.time_zone);
    let errors = std::mem::take(&mut input.errors);
    let updated = domain::update(&state, &caller, found.id, fields.into(), errors).await?;
    Ok(Json(updated.into()))
}

/// Delete a ticket (those who manage the event)
///
/// Its registrations and their payments go with it.
#[utoipa::path(
    delete, path = "/api/tickets/{id}", tag = "tickets", operation_id = "tickets_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such ticket"),
    )
)]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    domain::delete(&state, &caller, path_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
