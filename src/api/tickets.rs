//! `/api/tickets/`: an event's ticket types, with `sold` and `available`.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::events::MAX_QUOTA;
use super::input::{JsonBody, QueryParams, Text, format_datetime, money_json, path_id};
use super::pagination::{envelope, fetch_cached_page};
use crate::AppState;
use crate::auth::{AuthUser, CurrentUser};
use crate::cache::Family;
use crate::db::entities::{event, ticket};
use crate::error::{ApiError, ApiResult, FieldErrors};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tickets", get(list).post(create))
        .route(
            "/tickets/{id}",
            get(retrieve).put(update).patch(update).delete(destroy),
        )
}

pub fn ticket_json(t: &ticket::Model) -> Value {
    json!({
        "id": t.id.to_string(),
        "event": t.event_id.to_string(),
        "name": t.name,
        "price": money_json(t.price_minor),
        "sales_start": format_datetime(&t.sales_start),
        "sales_end": format_datetime(&t.sales_end),
        "quota": t.quota,
        "sold": t.sold,
        "available": std::cmp::max(t.quota - t.sold, 0),
    })
}

async fn find_ticket(state: &AppState, raw_id: &str) -> ApiResult<ticket::Model> {
    let id = path_id(raw_id)?;
    ticket::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)
}

async fn event_of(db: &impl ConnectionTrait, event_id: Uuid) -> ApiResult<event::Model> {
    event::Entity::find_by_id(event_id)
        .one(db)
        .await?
        // Deleted meanwhile (with its tickets).
        .ok_or(ApiError::NotFound)
}

async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = super::list_cache_key(&uri, &headers);
    super::cached(&state, Family::Tickets, key, |generation| {
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
    let mut errors = FieldErrors::default();
    let mut select = ticket::Entity::find();
    if let Some(event_id) = query.uuid("event", &mut errors) {
        select = select.filter(ticket::Column::EventId.eq(event_id));
    }
    let (field, descending) = query.ordering(&["price", "sales_start", "name"], "", &mut errors);
    errors.into_result()?;
    let column = match field {
        "price" => Some(ticket::Column::PriceMinor),
        "sales_start" => Some(ticket::Column::SalesStart),
        "name" => Some(ticket::Column::Name),
        _ => None,
    };
    if let Some(column) = column {
        select = if descending {
            select.order_by_desc(column)
        } else {
            select.order_by_asc(column)
        };
    }
    // Ties (and the default order) by id: creation order, ids being UUIDv7.
    let select = if descending {
        select.order_by_desc(ticket::Column::Id)
    } else {
        select.order_by_asc(ticket::Column::Id)
    };
    let (rows, page) =
        fetch_cached_page(state, Family::Tickets, generation, select, &query).await?;
    let items = rows.iter().map(ticket_json).collect();
    Ok(envelope("tickets", items, &page, &uri, &headers))
}

async fn retrieve(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = path_id(&id)?;
    super::cached(&state, Family::Tickets, format!("detail:{id}"), |_| async {
        let found = ticket::Entity::find_by_id(id)
            .one(state.db.conn())
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(ticket_json(&found))
    })
    .await
}

/// Whether the caller could manage any event at all; others are refused
/// before their body is looked at.
async fn may_manage_some_event(state: &AppState, caller: &CurrentUser) -> ApiResult<bool> {
    if caller.can_create_events() {
        return Ok(true);
    }
    let organised = event::Entity::find()
        .filter(event::Column::OrganizerId.eq(caller.id))
        .count(state.db.conn())
        .await?;
    Ok(organised > 0)
}

struct TicketFields {
    event_id: Option<Uuid>,
    name: Option<String>,
    price_minor: Option<i64>,
    sales_start: Option<DateTime<Utc>>,
    sales_end: Option<DateTime<Utc>>,
    quota: Option<i64>,
}

fn read_fields(
    state: &AppState,
    body: &JsonBody,
    partial: bool,
) -> ApiResult<(TicketFields, FieldErrors)> {
    let tz = state.config.time_zone;
    let mut input = body.input(partial)?;
    let fields = TicketFields {
        event_id: input.uuid("event_id", true),
        name: input.text("name", Text::required(100)),
        price_minor: input.money("price", true),
        sales_start: input.datetime("sales_start", true, tz),
        sales_end: input.datetime("sales_end", true, tz),
        quota: input.integer("quota", true, 0, MAX_QUOTA),
    };
    Ok((fields, input.errors))
}

/// The event named by `event_id`, or a 400 on that field.
async fn referenced_event(
    state: &AppState,
    event_id: Uuid,
    errors: &mut FieldErrors,
) -> ApiResult<Option<event::Model>> {
    let found = event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?;
    if found.is_none() {
        errors.add(
            "event_id",
            format!("Invalid pk \"{event_id}\" - object does not exist."),
        );
    }
    Ok(found)
}

fn check_window(start: DateTime<Utc>, end: DateTime<Utc>, errors: &mut FieldErrors) {
    if end < start {
        errors.add(
            "sales_end",
            "Sales end must not be earlier than sales start.",
        );
    }
}

#[instrument(name = "create", skip_all, fields(user = %caller.username))]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    if !may_manage_some_event(&state, &caller).await? {
        return Err(ApiError::Forbidden);
    }
    let (f, mut errors) = read_fields(&state, &body, false)?;
    let parent = match f.event_id {
        Some(event_id) => referenced_event(&state, event_id, &mut errors).await?,
        None => None,
    };
    if let Some(parent) = &parent
        && !caller.manages_event(parent.organizer_id)
    {
        return Err(ApiError::Forbidden);
    }
    if let (Some(start), Some(end)) = (f.sales_start, f.sales_end) {
        check_window(start, end, &mut errors);
    }
    errors.into_result()?;
    let (
        Some(parent),
        Some(name),
        Some(price_minor),
        Some(sales_start),
        Some(sales_end),
        Some(quota),
    ) = (
        parent,
        f.name,
        f.price_minor,
        f.sales_start,
        f.sales_end,
        f.quota,
    )
    else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "ticket fields missing after validation"
        )));
    };
    let txn = state.db.begin_write().await?;
    let created = ticket::ActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(parent.id),
        name: Set(name),
        price_minor: Set(price_minor),
        sales_start: Set(sales_start),
        sales_end: Set(sales_end),
        quota: Set(quota),
        sold: Set(0),
    }
    .insert(&*txn)
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Tickets]).await;
    tracing::info!(
        "Ticket {} ({}) for event {} created by {}",
        created.id,
        created.name,
        created.event_id,
        caller.username
    );
    Ok((StatusCode::CREATED, Json(ticket_json(&created))))
}

#[instrument(name = "update", skip_all, fields(user = %caller.username))]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let found = find_ticket(&state, &id).await?;
    let current_event = event_of(state.db.conn(), found.event_id).await?;
    if !caller.manages_event(current_event.organizer_id) {
        return Err(ApiError::Forbidden);
    }
    let (f, mut errors) = read_fields(&state, &body, method == Method::PATCH)?;
    let mut moving_to = None;
    if let Some(event_id) = f.event_id
        && event_id != found.event_id
        && let Some(target) = referenced_event(&state, event_id, &mut errors).await?
    {
        if !caller.manages_event(target.organizer_id) {
            return Err(ApiError::Forbidden);
        }
        moving_to = Some(target);
    }

    check_window(
        f.sales_start.unwrap_or(found.sales_start),
        f.sales_end.unwrap_or(found.sales_end),
        &mut errors,
    );
    errors.into_result()?;

    let mut model: ticket::ActiveModel = found.clone().into();
    if let Some(v) = f.name {
        model.name = Set(v);
    }
    if let Some(v) = f.price_minor {
        model.price_minor = Set(v);
    }
    if let Some(v) = f.sales_start {
        model.sales_start = Set(v);
    }
    if let Some(v) = f.sales_end {
        model.sales_end = Set(v);
    }
    if let Some(v) = f.quota {
        model.quota = Set(v);
    }
    if let Some(target) = &moving_to {
        model.event_id = Set(target.id);
    }
    let txn = state.db.begin_write().await?;
    // `sold = sold` keeps the statement non-empty when nothing else changes
    // (a PATCH of ignored fields is a 200, not a no-op reported as 0 rows).
    let mut update = ticket::Entity::update_many()
        .set(model)
        .col_expr(ticket::Column::Sold, Expr::col(ticket::Column::Sold))
        .filter(ticket::Column::Id.eq(found.id));
    // Guards inside the UPDATE, so that a concurrent registration cannot
    // slip between the check and the change.
    if let Some(quota) = f.quota {
        update = update.filter(ticket::Column::Sold.lte(quota));
    }
    if moving_to.is_some() {
        update = update.filter(Expr::col(ticket::Column::Sold).eq(0));
    }
    let result = update.exec(&*txn).await?;
    if result.rows_affected == 0 {
        let current = ticket::Entity::find_by_id(found.id).one(&*txn).await?;
        return match current {
            None => Err(ApiError::NotFound),
            Some(t) if moving_to.is_some() && t.sold > 0 => Err(ApiError::Conflict(format!(
                "A ticket with {} registrations cannot move to another event.",
                t.sold
            ))),
            Some(t) => Err(ApiError::Conflict(format!(
                "The quota cannot be lower than the {} tickets already sold.",
                t.sold
            ))),
        };
    }
    let updated = ticket::Entity::find_by_id(found.id)
        .one(&*txn)
        .await?
        .ok_or(ApiError::NotFound)?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Tickets]).await;
    tracing::info!("Ticket {} updated by {}", updated.id, caller.username);
    Ok(Json(ticket_json(&updated)))
}

#[instrument(name = "destroy", skip_all, fields(user = %caller.username))]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let found = find_ticket(&state, &id).await?;
    let parent = event_of(state.db.conn(), found.event_id).await?;
    if !caller.manages_event(parent.organizer_id) {
        return Err(ApiError::Forbidden);
    }
    let txn = state.db.begin_write().await?;
    // Lock the ticket row FOR UPDATE first (PostgreSQL; SQLite's writer
    // lock serialises anyway): registrations in flight (which hold a key-share
    // lock through their foreign key) finish first, later ones wait and then
    // find the ticket gone — so `sold` read here is final.
    let sold = ticket::Entity::find_by_id(found.id)
        .lock_exclusive()
        .one(&*txn)
        .await?
        .ok_or(ApiError::NotFound)?
        .sold;
    // Registrations and their payments go with the ticket (ON DELETE CASCADE);
    // the event gets their places back.
    ticket::Entity::delete_by_id(found.id).exec(&*txn).await?;
    event::Entity::update_many()
        .col_expr(
            event::Column::Registered,
            Expr::col(event::Column::Registered).sub(sold),
        )
        .filter(event::Column::Id.eq(found.event_id))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Tickets]).await;
    tracing::info!(
        "Ticket {} ({}) deleted by {}, releasing {sold} registrations",
        found.id,
        found.name,
        caller.username
    );
    Ok(StatusCode::NO_CONTENT)
}
