//! `/api/events/`: public reads, writes by those who manage the event.

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
use super::pagination::{EventList, Origin, Pagination, page_request};
use super::schemas::{EventStatus, FieldErrorsBody, ID_UUID, datetime};
use crate::cache::Family;
use crate::db::entities::event;
use crate::domain::events::{
    self as domain, EventChanges, EventFilter, ORDERINGS, STATUS_ALIASES, STATUSES,
};
use crate::input::QueryParams;
use crate::input::events::EventPatch;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(retrieve, update, destroy))
}

#[derive(Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventOut {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub location: String,
    #[serde(serialize_with = "datetime")]
    pub start_time: DateTime<Utc>,
    #[serde(serialize_with = "datetime")]
    pub end_time: DateTime<Utc>,
    #[schema(value_type = EventStatus)]
    pub status: String,
    pub category: String,
    #[schema(minimum = 0)]
    pub quota: i64,
    /// The organiser's user id.
    pub organizer: Uuid,
    /// Where it happens (IANA name), when set: pages and mails show its
    /// times there. Absent: the server's `TIME_ZONE` (so the Django
    /// service's representation is unchanged for events that never set
    /// one). Instants here stay in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub timezone: Option<String>,
    /// How to pay for its priced tickets, when the organiser wrote it
    /// (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub payment_instructions: Option<String>,
    #[serde(serialize_with = "datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "datetime")]
    pub updated_at: DateTime<Utc>,
}

impl EventOut {
    /// An event as answered.
    pub fn of(e: event::Model) -> Self {
        EventOut {
            timezone: e.timezone,
            payment_instructions: e.payment_instructions,
            id: e.id,
            name: e.name,
            description: e.description,
            location: e.location,
            start_time: e.start_time,
            end_time: e.end_time,
            status: e.status,
            category: e.category,
            quota: e.quota,
            organizer: e.organizer_id,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
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
    #[schema(required = false, value_type = EventStatus)]
    pub status: Option<String>,
    /// Default: the caller. Superuser and admin may name any existing user;
    /// an organiser naming anyone else gets 403; only superuser and admin
    /// may change it on an existing event.
    #[schema(required = false, value_type = Uuid)]
    pub organizer_id: Option<Uuid>,
    /// Where it happens: an IANA name such as `Asia/Jakarta` (an unknown
    /// name is a 400); `null` or left out: the server's `TIME_ZONE`.
    /// Naive datetimes in the request are still read in `TIME_ZONE`.
    #[schema(required = false, nullable, example = "Asia/Jakarta")]
    pub timezone: Option<String>,
    /// How to pay for its priced tickets (up to 5,000 characters; `null`
    /// or blank: none), shown to attendees with the amount they owe.
    #[schema(
        required = false,
        nullable,
        max_length = 5000,
        example = "Transfer to BCA 123-456-7890 (PT Dico Event), your short code as the reference."
    )]
    pub payment_instructions: Option<String>,
}

/// Event filters; a bad value is a 400 naming the parameter.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    /// Exact category, case-insensitive.
    pub category: Option<String>,
    #[param(value_type = Option<EventStatus>)]
    pub status: Option<String>,
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
    /// One or more fields, comma-separated, each optionally prefixed `-`
    /// (`-start_time,name`). Default `start_time`; ties are broken by id.
    #[param(value_type = Option<String>, pattern = r"^-?(start_time|name|created_at|quota)(,-?(start_time|name|created_at|quota))*$", example = "-start_time,name")]
    pub ordering: Option<String>,
}

impl EventFilters {
    /// The filters and the ordering (fields, descending) of a query string.
    fn read(
        query: &QueryParams,
        tz: chrono_tz::Tz,
    ) -> ApiResult<(Self, Vec<(&'static str, bool)>)> {
        let mut errors = crate::domain::FieldErrors::default();
        let ordering = query.ordering(ORDERINGS, "start_time", &mut errors);
        let filters = EventFilters {
            category: query.text("category", &mut errors).map(str::to_owned),
            status: query.choice("status", STATUSES, STATUS_ALIASES, &mut errors),
            organizer: query.uuid("organizer", &mut errors),
            location: query.text("location", &mut errors).map(str::to_owned),
            search: query.text("search", &mut errors).map(str::to_owned),
            start_after: query.datetime("start_after", tz, &mut errors),
            start_before: query.datetime("start_before", tz, &mut errors),
            ordering: query.get("ordering").map(str::to_owned),
        };
        errors.into_result()?;
        Ok((filters, ordering))
    }
}

impl From<&EventFilters> for EventFilter {
    fn from(f: &EventFilters) -> Self {
        EventFilter {
            category: f.category.clone(),
            status: f.status.clone(),
            organizer: f.organizer,
            location: f.location.clone(),
            search: f.search.clone(),
            anywhere: None,
            start_after: f.start_after,
            start_before: f.start_before,
        }
    }
}

/// List events (anyone; cached)
#[utoipa::path(
    get, path = "/api/events", tag = "events", operation_id = "events_list",
    params(EventFilters, Pagination),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "A page of events", body = EventList,
            headers(("X-Data-Source" = String, description = "`cache` or `database`"))),
        (status = 400, description = "A bad filter value", body = FieldErrorsBody,
            example = json!({"ordering": ["Select a valid choice. size is not one of the available choices: start_time, name, created_at, quota."]})),
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
    super::cached(state, Family::Events, key, |generation| async move {
        let query = QueryParams::parse(raw.as_deref());
        let (filters, ordering) = EventFilters::read(&query, state.config.time_zone)?;
        let page = domain::list(
            state,
            &EventFilter::from(&filters),
            &ordering,
            page_request(&query),
            generation,
        )
        .await?;
        Ok(EventList::new(page, EventOut::of, &uri, &origin))
    })
    .await
}

/// Read an event (anyone; cached)
#[utoipa::path(
    get, path = "/api/events/{id}", tag = "events", operation_id = "events_retrieve",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security((), ("jwt" = [])),
    responses(
        (status = 200, description = "The event", body = EventOut,
            headers(("X-Data-Source" = String, description = "`cache` or `database`"))),
        (status = 404, description = "No such event"),
    )
)]
async fn retrieve(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id)?;
    super::cached(
        &state,
        Family::Events,
        super::id_key("detail:", id),
        |_| async { Ok(EventOut::of(domain::get(&state, id).await?)) },
    )
    .await
}

/// Create an event (superuser, admin, organizer)
#[utoipa::path(
    post, path = "/api/events", tag = "events", operation_id = "events_create",
    request_body = EventWrite,
    security(("jwt" = [])),
    responses(
        (status = 201, description = "Created", body = EventOut),
        (status = 403, description = "Not allowed"),
    )
)]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<EventOut>)> {
    domain::authorize_create(&caller)?;
    let mut input = body.input(false)?;
    let fields = EventPatch::read(&mut input, state.config.time_zone);
    let organizer_id = fields.organizer_id.unwrap_or(caller.id);
    domain::check_organizer(&state, &caller, organizer_id, &mut input.errors).await?;
    let write = fields.complete();
    let Some(write) = write.filter(|_| input.errors.is_empty()) else {
        return Err(ApiError::Validation(input.errors));
    };
    let created = domain::create(&state, &caller, write).await?;
    Ok((StatusCode::CREATED, Json(EventOut::of(created))))
}

/// Change an event (those who manage the event)
///
/// PUT replaces: every field but `status` and `organizer_id` is required;
/// PATCH changes the fields sent. A quota below the registrations already
/// made is a 409.
#[utoipa::path(
    method(put, patch), path = "/api/events/{id}", tag = "events", operation_id = "events_update",
    params(("id" = Uuid, Path, description = ID_UUID)),
    request_body = EventWrite,
    security(("jwt" = [])),
    responses(
        (status = 200, description = "Updated", body = EventOut),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such event"),
        (status = 409, description = "The quota is below the registrations already made"),
    )
)]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<EventOut>> {
    let partial = method == Method::PATCH;
    // 404 and 403 before the body is looked at (DRF's order).
    let found = domain::get_managed(&state, &caller, path_id(&id)?).await?;
    let mut input = body.input(partial)?;
    let fields = EventPatch::read(&mut input, state.config.time_zone);
    domain::check_organizer_change(
        &state,
        &caller,
        &found,
        fields.organizer_id,
        &mut input.errors,
    )
    .await?;
    input.finish()?;
    // PUT: the required fields are all there (else `finish` refused them).
    let changes = EventChanges::from(fields);
    let updated = domain::update(&state, &caller, found.id, changes).await?;
    Ok(Json(EventOut::of(updated)))
}

/// Delete an event (those who manage the event)
///
/// Its tickets, registrations, payments and posters go with it.
#[utoipa::path(
    delete, path = "/api/events/{id}", tag = "events", operation_id = "events_destroy",
    params(("id" = Uuid, Path, description = ID_UUID)),
    security(("jwt" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not allowed"),
        (status = 404, description = "No such event"),
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
