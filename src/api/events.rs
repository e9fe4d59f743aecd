//! `/api/events/`: public reads, writes by those who manage the event.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::input::{JsonBody, QueryParams, Text, format_datetime, like_contains, path_id};
use super::pagination::{envelope, fetch_cached_page};
use crate::AppState;
use crate::auth::AuthUser;
use crate::cache::Family;
use crate::db::entities::{event, user};
use crate::error::{ApiError, ApiResult, FieldErrors};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list).post(create))
        .route(
            "/events/{id}",
            get(retrieve).put(update).patch(update).delete(destroy),
        )
}

pub const STATUSES: &[&str] = &["draft", "scheduled", "ongoing", "completed", "cancelled"];
pub const STATUS_ALIASES: &[(&str, &str)] = &[("canceled", "cancelled")];

/// Largest quota accepted (fits every backend's integer).
pub const MAX_QUOTA: i64 = 2_147_483_647;

pub fn event_json(e: &event::Model) -> Value {
    json!({
        "id": e.id.to_string(),
        "name": e.name,
        "description": e.description,
        "location": e.location,
        "start_time": format_datetime(&e.start_time),
        "end_time": format_datetime(&e.end_time),
        "status": e.status,
        "category": e.category,
        "quota": e.quota,
        "organizer": e.organizer_id.to_string(),
        "created_at": format_datetime(&e.created_at),
        "updated_at": format_datetime(&e.updated_at),
    })
}

pub async fn find_event(state: &AppState, raw_id: &str) -> ApiResult<event::Model> {
    let id = path_id(raw_id)?;
    event::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)
}

async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = super::list_cache_key(&uri, &headers);
    super::cached(&state, Family::Events, key, |generation| {
        load_list(&state, raw, uri, headers, generation)
    })
    .await
}

async fn load_list(
    state: &AppState,
    raw: Option<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    generation: Option<u64>,
) -> ApiResult<Value> {
    let query = QueryParams::parse(raw.as_deref());
    let tz = state.config.time_zone;
    let mut errors = FieldErrors::default();
    let mut select = event::Entity::find();
    if let Some(category) = query.text("category", &mut errors) {
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(event::Column::Category))).eq(category.to_lowercase()),
        );
    }
    if let Some(status) = query.choice("status", STATUSES, STATUS_ALIASES, &mut errors) {
        select = select.filter(event::Column::Status.eq(status));
    }
    if let Some(organizer) = query.uuid("organizer", &mut errors) {
        select = select.filter(event::Column::OrganizerId.eq(organizer));
    }
    if let Some(location) = query.text("location", &mut errors) {
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(event::Column::Location)))
                .like(like_contains(location)),
        );
    }
    if let Some(search) = query.text("search", &mut errors) {
        let pattern = like_contains(search);
        select = select.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(event::Column::Name))).like(pattern.clone()))
                .add(Expr::expr(Func::lower(Expr::col(event::Column::Description))).like(pattern)),
        );
    }
    if let Some(after) = query.datetime("start_after", tz, &mut errors) {
        select = select.filter(event::Column::StartTime.gte(after));
    }
    if let Some(before) = query.datetime("start_before", tz, &mut errors) {
        select = select.filter(event::Column::StartTime.lte(before));
    }
    let (field, descending) = query.ordering(
        &["start_time", "name", "created_at", "quota"],
        "start_time",
        &mut errors,
    );
    errors.into_result()?;
    let column = match field {
        "name" => event::Column::Name,
        "created_at" => event::Column::CreatedAt,
        "quota" => event::Column::Quota,
        _ => event::Column::StartTime,
    };
    let select = if descending {
        select
            .order_by_desc(column)
            .order_by_desc(event::Column::Id)
    } else {
        select.order_by_asc(column).order_by_asc(event::Column::Id)
    };
    let (rows, page) = fetch_cached_page(state, Family::Events, generation, select, &query).await?;
    let items = rows.iter().map(event_json).collect();
    Ok(envelope("events", items, &page, &uri, &headers))
}

async fn retrieve(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id)?;
    super::cached(&state, Family::Events, format!("detail:{id}"), |_| async {
        let found = event::Entity::find_by_id(id)
            .one(state.db.conn())
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(event_json(&found))
    })
    .await
}

/// The writable fields of an event, as read from a body. `None`: not sent
/// (PATCH) or invalid (an error is recorded).
struct EventFields {
    name: Option<String>,
    description: Option<String>,
    location: Option<String>,
    start_time: Option<chrono::DateTime<Utc>>,
    end_time: Option<chrono::DateTime<Utc>>,
    quota: Option<i64>,
    category: Option<String>,
    status: Option<String>,
    organizer_id: Option<Uuid>,
}

fn read_fields(
    state: &AppState,
    body: &JsonBody,
    partial: bool,
) -> ApiResult<(EventFields, FieldErrors)> {
    let tz = state.config.time_zone;
    let mut input = body.input(partial)?;
    let fields = EventFields {
        name: input.text("name", Text::required(255)),
        description: input.text(
            "description",
            Text {
                required: true,
                max_len: 100_000,
                allow_blank: true,
            },
        ),
        location: input.text("location", Text::required(255)),
        start_time: input.datetime("start_time", true, tz),
        end_time: input.datetime("end_time", true, tz),
        quota: input.integer("quota", true, 0, MAX_QUOTA),
        category: input.text("category", Text::required(100)),
        status: input.choice("status", false, STATUSES, STATUS_ALIASES),
        organizer_id: input.uuid("organizer_id", false),
    };
    Ok((fields, input.errors))
}

/// Checks who may name `organizer_id`: superuser/admin anyone existing, an
/// organiser only themselves (403 otherwise); unknown user → 400.
async fn check_organizer(
    state: &AppState,
    caller: &crate::auth::CurrentUser,
    organizer_id: Uuid,
    errors: &mut FieldErrors,
) -> ApiResult<()> {
    if organizer_id == caller.id {
        return Ok(());
    }
    if !caller.is_admin() {
        return Err(ApiError::Forbidden);
    }
    if user::Entity::find_by_id(organizer_id)
        .one(state.db.conn())
        .await?
        .is_none()
    {
        errors.add(
            "organizer_id",
            format!("Invalid pk \"{organizer_id}\" - object does not exist."),
        );
    }
    Ok(())
}

#[instrument(name = "create", skip_all, fields(user = %caller.username))]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if !caller.can_create_events() {
        return Err(ApiError::Forbidden);
    }
    let (f, mut errors) = read_fields(&state, &body, false)?;
    let organizer_id = f.organizer_id.unwrap_or(caller.id);
    check_organizer(&state, &caller, organizer_id, &mut errors).await?;
    errors.into_result()?;
    let (
        Some(name),
        Some(description),
        Some(location),
        Some(start_time),
        Some(end_time),
        Some(quota),
        Some(category),
    ) = (
        f.name,
        f.description,
        f.location,
        f.start_time,
        f.end_time,
        f.quota,
        f.category,
    )
    else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "event fields missing after validation"
        )));
    };
    let now = crate::db::now();
    let model = event::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name),
        description: Set(description),
        location: Set(location),
        start_time: Set(start_time),
        end_time: Set(end_time),
        status: Set(f.status.unwrap_or_else(|| "scheduled".into())),
        category: Set(category),
        quota: Set(quota),
        registered: Set(0),
        organizer_id: Set(organizer_id),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = state.db.begin_write().await?;
    let created = model.insert(&*txn).await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Events]).await;
    tracing::info!(
        "Event {} ({}) created by {}",
        created.id,
        created.name,
        caller.username
    );
    Ok((StatusCode::CREATED, Json(event_json(&created))))
}

/// PUT: every field but `status`/`organizer_id` required; PATCH: partial.
#[instrument(name = "update", skip_all, fields(user = %caller.username))]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let found = find_event(&state, &id).await?;
    if !caller.manages_event(found.organizer_id) {
        return Err(ApiError::Forbidden);
    }
    let (f, mut errors) = read_fields(&state, &body, method == Method::PATCH)?;
    if let Some(organizer_id) = f.organizer_id
        && organizer_id != found.organizer_id
    {
        // Only superuser/admin move an event to another organiser.
        if !caller.is_admin() {
            return Err(ApiError::Forbidden);
        }
        check_organizer(&state, &caller, organizer_id, &mut errors).await?;
    }
    errors.into_result()?;

    let mut model: event::ActiveModel = found.clone().into();
    if let Some(v) = f.name {
        model.name = Set(v);
    }
    if let Some(v) = f.description {
        model.description = Set(v);
    }
    if let Some(v) = f.location {
        model.location = Set(v);
    }
    if let Some(v) = f.start_time {
        model.start_time = Set(v);
    }
    if let Some(v) = f.end_time {
        model.end_time = Set(v);
    }
    if let Some(v) = f.category {
        model.category = Set(v);
    }
    if let Some(v) = f.status {
        model.status = Set(v);
    }
    if let Some(v) = f.organizer_id {
        model.organizer_id = Set(v);
    }
    if let Some(v) = f.quota {
        model.quota = Set(v);
    }
    model.updated_at = Set(crate::db::now());
    // Never below the registrations already held: the guard is part of the
    // UPDATE, so a registration racing this change cannot slip past it.
    let txn = state.db.begin_write().await?;
    let mut update = event::Entity::update_many()
        .set(model)
        .filter(event::Column::Id.eq(found.id));
    if let Some(quota) = f.quota {
        update = update.filter(event::Column::Registered.lte(quota));
    }
    let result = update.exec(&*txn).await?;
    if result.rows_affected == 0 {
        let current = event::Entity::find_by_id(found.id).one(&*txn).await?;
        return match current {
            None => Err(ApiError::NotFound),
            Some(e) => Err(ApiError::Conflict(format!(
                "The quota cannot be lower than the {} registrations already made.",
                e.registered
            ))),
        };
    }
    let updated = event::Entity::find_by_id(found.id)
        .one(&*txn)
        .await?
        .ok_or(ApiError::NotFound)?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Events]).await;
    tracing::info!("Event {} updated by {}", updated.id, caller.username);
    Ok(Json(event_json(&updated)))
}

#[instrument(name = "destroy", skip_all, fields(user = %caller.username))]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let found = find_event(&state, &id).await?;
    if !caller.manages_event(found.organizer_id) {
        return Err(ApiError::Forbidden);
    }
    let posters = super::media::object_keys_of_event(&state, found.id).await?;
    let txn = state.db.begin_write().await?;
    // Lock its tickets, then the event, FOR UPDATE (the order registrations
    // lock them): registrations in flight finish first, later ones wait and
    // then find the event gone.
    crate::db::entities::ticket::Entity::find()
        .filter(crate::db::entities::ticket::Column::EventId.eq(found.id))
        .lock_exclusive()
        .all(&*txn)
        .await?;
    event::Entity::find_by_id(found.id)
        .lock_exclusive()
        .one(&*txn)
        .await?;
    // Tickets, registrations, payments and poster rows go with it (ON DELETE
    // CASCADE); the stored poster objects are deleted once that is committed.
    event::Entity::delete_by_id(found.id).exec(&*txn).await?;
    txn.commit().await?;
    state
        .cache
        .invalidate(&[Family::Events, Family::Tickets])
        .await;
    super::media::delete_objects(&state, &posters).await;
    tracing::info!(
        "Event {} ({}) deleted by {}",
        found.id,
        found.name,
        caller.username
    );
    Ok(StatusCode::NO_CONTENT)
}
