//! `/api/registrations/`: a user's place on a ticket.
//!
//! Capacity is held by two counters, `tickets.sold` and `events.registered`,
//! moved under their rows' locks in the same transaction (SQLite) or statement
//! (PostgreSQL, see `batch`) as the registration: no read-then-write outside
//! the lock, so no overselling under any number of concurrent requests or
//! server processes.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::input::{JsonBody, QueryParams, format_datetime, path_id};
use super::pagination::{envelope, fetch_page};
use crate::AppState;
use crate::auth::{AuthUser, CurrentUser};
use crate::cache::Family;
use crate::db::entities::{event, payment, registration, ticket, user};
use crate::error::{ApiError, ApiResult, FieldErrors, is_fk_violation, is_unique_violation};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/registrations", get(list).post(create))
        .route(
            "/registrations/{id}",
            get(retrieve).put(update).patch(update).delete(destroy),
        )
}

pub fn registration_json(r: &registration::Model) -> Value {
    json!({
        "id": r.id.to_string(),
        "ticket": r.ticket_id.to_string(),
        "user": r.user_id.to_string(),
        "event": r.event_id.to_string(),
        "registered_at": format_datetime(&r.registered_at),
    })
}

const SOLD_OUT: &str = "Sold out.";

/// Takes one place on a ticket, or reports sold out.
async fn take_ticket(db: &impl ConnectionTrait, ticket_id: Uuid) -> ApiResult<()> {
    let taken = ticket::Entity::update_many()
        .col_expr(
            ticket::Column::Sold,
            Expr::col(ticket::Column::Sold).add(1i64),
        )
        .filter(ticket::Column::Id.eq(ticket_id))
        .filter(Expr::col(ticket::Column::Sold).lt(Expr::col(ticket::Column::Quota)))
        .exec(db)
        .await?;
    if taken.rows_affected == 0 {
        return Err(ApiError::Conflict(SOLD_OUT.into()));
    }
    Ok(())
}

/// Takes one place in an event (all its tickets), or reports sold out.
async fn take_event(db: &impl ConnectionTrait, event_id: Uuid) -> ApiResult<()> {
    let taken = event::Entity::update_many()
        .col_expr(
            event::Column::Registered,
            Expr::col(event::Column::Registered).add(1i64),
        )
        .filter(event::Column::Id.eq(event_id))
        .filter(Expr::col(event::Column::Registered).lt(Expr::col(event::Column::Quota)))
        .exec(db)
        .await?;
    if taken.rows_affected == 0 {
        return Err(ApiError::Conflict(SOLD_OUT.into()));
    }
    Ok(())
}

async fn release_ticket(db: &impl ConnectionTrait, ticket_id: Uuid) -> ApiResult<()> {
    ticket::Entity::update_many()
        .col_expr(
            ticket::Column::Sold,
            Expr::col(ticket::Column::Sold).sub(1i64),
        )
        .filter(ticket::Column::Id.eq(ticket_id))
        .exec(db)
        .await?;
    Ok(())
}

async fn release_event(db: &impl ConnectionTrait, event_id: Uuid) -> ApiResult<()> {
    event::Entity::update_many()
        .col_expr(
            event::Column::Registered,
            Expr::col(event::Column::Registered).sub(1i64),
        )
        .filter(event::Column::Id.eq(event_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Takes one place on a ticket and its event (locks ticket, then event —
/// the order every writer uses), or reports sold out.
async fn take_place(db: &impl ConnectionTrait, ticket_id: Uuid, event_id: Uuid) -> ApiResult<()> {
    take_ticket(db, ticket_id).await?;
    take_event(db, event_id).await
}

/// Gives one place back to a ticket and its event.
async fn release_place(
    db: &impl ConnectionTrait,
    ticket_id: Uuid,
    event_id: Uuid,
) -> ApiResult<()> {
    release_ticket(db, ticket_id).await?;
    release_event(db, event_id).await
}

/// Deletes a registration (its payments cascade) and releases its place.
/// Deleting what another transaction already deleted releases nothing.
pub async fn delete_and_release(
    db: &impl ConnectionTrait,
    registration_id: Uuid,
) -> ApiResult<bool> {
    let Some(found) = registration::Entity::find_by_id(registration_id)
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let deleted = registration::Entity::delete_by_id(registration_id)
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Ok(false);
    }
    release_place(db, found.ticket_id, found.event_id).await?;
    Ok(true)
}

/// Rows visible to the caller (registrations, payments): all for
/// superuser/admin; otherwise their own (`user_column`) plus those for events
/// they organise (`event_column`).
pub fn scoped_to_caller<E: EntityTrait>(
    select: Select<E>,
    caller: &CurrentUser,
    user_column: E::Column,
    event_column: E::Column,
) -> Select<E> {
    if caller.is_admin() {
        return select;
    }
    select.filter(
        Condition::any().add(user_column.eq(caller.id)).add(
            event_column.in_subquery(
                Query::select()
                    .column(event::Column::Id)
                    .from(event::Entity)
                    .and_where(event::Column::OrganizerId.eq(caller.id))
                    .to_owned(),
            ),
        ),
    )
}

async fn list(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let query = QueryParams::parse(raw.as_deref());
    let mut errors = FieldErrors::default();
    let mut select = scoped_to_caller(
        registration::Entity::find(),
        &caller,
        registration::Column::UserId,
        registration::Column::EventId,
    );
    if let Some(id) = query.uuid("ticket", &mut errors) {
        select = select.filter(registration::Column::TicketId.eq(id));
    }
    if let Some(id) = query.uuid("event", &mut errors) {
        select = select.filter(registration::Column::EventId.eq(id));
    }
    if let Some(id) = query.uuid("user", &mut errors) {
        select = select.filter(registration::Column::UserId.eq(id));
    }
    errors.into_result()?;
    let select = select
        .order_by_asc(registration::Column::RegisteredAt)
        .order_by_asc(registration::Column::Id);
    let (rows, page) = fetch_page(state.db.conn(), select, &query).await?;
    let items = rows.iter().map(registration_json).collect();
    Ok(Json(envelope(
        "registrations",
        items,
        &page,
        &uri,
        &headers,
    )))
}

/// A ticket and its event, or a 400 on `field`.
async fn referenced_ticket(
    state: &AppState,
    ticket_id: Uuid,
    errors: &mut FieldErrors,
) -> ApiResult<Option<(ticket::Model, event::Model)>> {
    // The ticket and its event in one round trip.
    let found = ticket::Entity::find_by_id(ticket_id)
        .find_also_related(event::Entity)
        .one(state.db.conn())
        .await?;
    match found {
        Some((t, Some(e))) => Ok(Some((t, e))),
        // The event was deleted meanwhile (with its tickets).
        Some((_, None)) => Err(ApiError::NotFound),
        None => {
            errors.add(
                "ticket_id",
                format!("Invalid pk \"{ticket_id}\" - object does not exist."),
            );
            Ok(None)
        }
    }
}

async fn user_exists(state: &AppState, user_id: Uuid, errors: &mut FieldErrors) -> ApiResult<bool> {
    let exists = user::Entity::find_by_id(user_id)
        .count(state.db.conn())
        .await?
        > 0;
    if !exists {
        errors.add(
            "user_id",
            format!("Invalid pk \"{user_id}\" - object does not exist."),
        );
    }
    Ok(exists)
}

/// Self-registration rules: the event is scheduled and not yet started, and
/// now is within the ticket's sales window.
fn check_self_service(t: &ticket::Model, e: &event::Model) -> ApiResult<()> {
    let now = crate::db::now();
    if e.status != "scheduled" {
        return Err(ApiError::Conflict(format!(
            "Registration is closed: the event is {}.",
            e.status
        )));
    }
    if e.start_time <= now {
        return Err(ApiError::Conflict(
            "Registration is closed: the event has already started.".into(),
        ));
    }
    if now < t.sales_start {
        return Err(ApiError::Conflict(format!(
            "Ticket sales have not started yet; they open at {}.",
            format_datetime(&t.sales_start)
        )));
    }
    if now > t.sales_end {
        return Err(ApiError::Conflict(
            "Ticket sales for this ticket have ended.".into(),
        ));
    }
    Ok(())
}

fn duplicate(caller: &CurrentUser, user_id: Uuid) -> ApiError {
    ApiError::Conflict(if caller.id == user_id {
        "You are already registered for this ticket.".into()
    } else {
        "This user is already registered for this ticket.".into()
    })
}

mod batch;

pub use batch::Queues;

/// Why a registration was not written.
pub(super) enum Refused {
    SoldOut,
    Duplicate,
    /// The ticket, its event or the user was deleted meanwhile.
    Gone,
    Failed(ApiError),
}

impl From<DbErr> for Refused {
    fn from(err: DbErr) -> Self {
        if is_unique_violation(&err) {
            Refused::Duplicate
        } else if is_fk_violation(&err) {
            Refused::Gone
        } else {
            Refused::Failed(err.into())
        }
    }
}

impl From<ApiError> for Refused {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Conflict(_) => Refused::SoldOut,
            other => Refused::Failed(other),
        }
    }
}

/// The same as one transaction (SQLite: its writer lock serialises writers,
/// so there is no hot-row wait to shorten). Inserts first, the guarded
/// counters last, so the ticket and event rows stay locked until the commit
/// just after.
async fn insert_in_transaction(
    state: &AppState,
    new: &registration::Model,
) -> Result<registration::Model, Refused> {
    let txn = state.db.begin_write().await?;
    let created = registration::ActiveModel::from(new.clone())
        .insert(&*txn)
        .await?;
    // The confirmation mail is queued in the same transaction: it exists if
    // and only if the registration does; a worker sends it.
    crate::jobs::enqueue_confirmation(&*txn, created.id, created.registered_at).await?;
    take_place(&*txn, created.ticket_id, created.event_id).await?;
    txn.commit().await?;
    Ok(created)
}

#[instrument(name = "create", skip_all, fields(user = %caller.username))]
async fn create(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    body: JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut input = body.input(false)?;
    let ticket_id = input.uuid("ticket_id", true);
    let user_id = input.uuid("user_id", false);
    let mut errors = std::mem::take(&mut input.errors);
    let found = match ticket_id {
        Some(id) => referenced_ticket(&state, id, &mut errors).await?,
        None => None,
    };
    let target_user = user_id.unwrap_or(caller.id);
    if let Some((_, e)) = &found
        && target_user != caller.id
        && !caller.manages_event(e.organizer_id)
    {
        return Err(ApiError::Forbidden);
    }
    if target_user != caller.id {
        user_exists(&state, target_user, &mut errors).await?;
    }
    errors.into_result()?;
    let Some((t, e)) = found else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "ticket missing after validation"
        )));
    };
    // Box office: those who manage the event may register anyone outside the
    // sales window; everyone else follows the self-service rules.
    if !caller.manages_event(e.organizer_id) {
        check_self_service(&t, &e)?;
    }

    let new = registration::Model {
        id: Uuid::now_v7(),
        ticket_id: t.id,
        user_id: target_user,
        event_id: e.id,
        registered_at: crate::db::now(),
    };
    let outcome = match state.db.backend() {
        DbBackend::Postgres => batch::register(&state, new.clone()).await,
        _ => insert_in_transaction(&state, &new).await,
    };
    let created = match outcome {
        Ok(created) => created,
        Err(Refused::Duplicate) => return Err(duplicate(&caller, target_user)),
        Err(Refused::Gone) => {
            return Err(ApiError::Conflict(
                "The ticket or the user was deleted meanwhile.".into(),
            ));
        }
        Err(Refused::SoldOut) => return Err(ApiError::Conflict(SOLD_OUT.into())),
        Err(Refused::Failed(err)) => return Err(err),
    };
    state.cache.invalidate(&[Family::Tickets]).await;
    tracing::info!(
        "Registration {} created by {} for user {} on ticket {}",
        created.id,
        caller.username,
        target_user,
        t.id
    );
    Ok((StatusCode::CREATED, Json(registration_json(&created))))
}

async fn find_registration(state: &AppState, raw_id: &str) -> ApiResult<registration::Model> {
    let id = path_id(raw_id)?;
    registration::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(ApiError::NotFound)
}

/// The organiser of an event (404 when the event is gone).
pub(crate) async fn organizer_of(state: &AppState, event_id: Uuid) -> ApiResult<Uuid> {
    event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?
        .map(|e| e.organizer_id)
        .ok_or(ApiError::NotFound)
}

async fn retrieve(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let found = find_registration(&state, &id).await?;
    if found.user_id != caller.id
        && !caller.manages_event(organizer_of(&state, found.event_id).await?)
    {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(registration_json(&found)))
}

/// A move to another ticket and/or user (superuser/admin): capacity is
/// re-checked on the new ticket and event; the old places are released.
#[instrument(name = "update", skip_all, fields(user = %caller.username))]
async fn update(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    method: Method,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    let found = find_registration(&state, &id).await?;
    if !caller.is_admin() {
        return Err(ApiError::Forbidden);
    }
    let mut input = body.input(method == Method::PATCH)?;
    let ticket_id = input.uuid("ticket_id", true);
    let user_id = input.uuid("user_id", false);
    let mut errors = std::mem::take(&mut input.errors);
    let target = match ticket_id {
        Some(id) if id != found.ticket_id => referenced_ticket(&state, id, &mut errors).await?,
        _ => None,
    };
    if let Some(user_id) = user_id
        && user_id != found.user_id
    {
        user_exists(&state, user_id, &mut errors).await?;
    }
    errors.into_result()?;
    let new_user = user_id.unwrap_or(found.user_id);
    let (new_ticket, new_event) = match &target {
        Some((t, e)) => (t.id, e.id),
        None => (found.ticket_id, found.event_id),
    };
    if new_ticket == found.ticket_id && new_user == found.user_id {
        return Ok(Json(registration_json(&found)));
    }

    let txn = state.db.begin_write().await?;
    if new_ticket != found.ticket_id {
        // Tickets first, then events (the order of every writer); a move
        // within one event leaves the event's count as it is.
        release_ticket(&*txn, found.ticket_id).await?;
        take_ticket(&*txn, new_ticket).await?;
        if new_event != found.event_id {
            release_event(&*txn, found.event_id).await?;
            take_event(&*txn, new_event).await?;
        }
    }
    let mut model: registration::ActiveModel = found.clone().into();
    model.ticket_id = Set(new_ticket);
    model.user_id = Set(new_user);
    model.event_id = Set(new_event);
    let updated = match model.update(&*txn).await {
        Ok(r) => r,
        Err(err) if is_unique_violation(&err) => return Err(duplicate(&caller, new_user)),
        Err(err) if is_fk_violation(&err) => {
            return Err(ApiError::Conflict(
                "The ticket or user no longer exists.".into(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    payment::Entity::update_many()
        .col_expr(payment::Column::UserId, Expr::value(new_user))
        .col_expr(payment::Column::EventId, Expr::value(new_event))
        .filter(payment::Column::RegistrationId.eq(found.id))
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Tickets]).await;
    tracing::info!(
        "Registration {} moved by {} to ticket {} / user {}",
        updated.id,
        caller.username,
        new_ticket,
        new_user
    );
    Ok(Json(registration_json(&updated)))
}

#[instrument(name = "destroy", skip_all, fields(user = %caller.username))]
async fn destroy(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let found = find_registration(&state, &id).await?;
    if !caller.is_admin() && found.user_id != caller.id {
        return Err(ApiError::Forbidden);
    }
    let txn = state.db.begin_write().await?;
    if !caller.is_admin() {
        // Its user may cancel it only while nothing has been paid. The row is
        // locked first, so a payment cannot complete between check and delete.
        registration::Entity::find_by_id(found.id)
            .lock_exclusive()
            .one(&*txn)
            .await?;
        let completed = payment::Entity::find()
            .filter(payment::Column::RegistrationId.eq(found.id))
            .filter(payment::Column::PaymentStatus.eq("completed"))
            .count(&*txn)
            .await?;
        if completed > 0 {
            return Err(ApiError::Forbidden);
        }
    }
    let deleted = delete_and_release(&*txn, found.id).await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Tickets]).await;
    if !deleted {
        return Err(ApiError::NotFound);
    }
    tracing::info!("Registration {} deleted by {}", found.id, caller.username);
    Ok(StatusCode::NO_CONTENT)
}
