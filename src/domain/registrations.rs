//! Registrations: a user's place on a ticket.
//!
//! Capacity is held by two counters, `tickets.sold` and `events.registered`,
//! moved under their rows' locks in the same transaction or statement as the
//! registration (`db::registration_writer`): no read-then-write outside the
//! lock, so no overselling under any number of concurrent requests or
//! server processes. Here: who may register whom, the self-service window,
//! box-office sales, moves and cancellations.

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest, does_not_exist};
use crate::cache::Family;
use crate::db::entities::{checkin, event, payment, registration, ticket, user};
use crate::db::errors::{is_fk_violation, is_unique_violation};
use crate::db::registration_writer::{self, WriteRefused};
use crate::state::AppState;

pub use crate::db::registration_writer::delete_and_release;

/// A registration to make: the ticket, and the user (default: the caller).
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub ticket_id: Uuid,
    pub user_id: Option<Uuid>,
}

/// What a list selects.
#[derive(Debug, Clone, Default)]
pub struct RegistrationFilter {
    pub ticket: Option<Uuid>,
    pub event: Option<Uuid>,
    pub user: Option<Uuid>,
}

/// Most events an organiser's scope names one by one; beyond, a subquery.
const MAX_SCOPED_EVENTS: usize = 1000;

/// Rows visible to the caller (registrations, payments): all for
/// superuser/admin; otherwise their own (`user_column`) plus those for events
/// they organise (`event_column`).
///
/// The events are read first and named in the query: an attendee who
/// organises nothing gets `user = me` alone (its index, a few rows), an
/// organiser `user = me OR event IN (…)` (two index scans, OR-ed). A
/// subquery in the `OR` kept PostgreSQL from using either index: it walked
/// every registration in `registered_at` order (2 s for an attendee's
/// list at a million rows).
pub(crate) async fn scoped_to_caller<E: EntityTrait>(
    state: &AppState,
    select: Select<E>,
    caller: &Caller,
    user_column: E::Column,
    event_column: E::Column,
) -> DomainResult<Select<E>> {
    if caller.is_admin() {
        return Ok(select);
    }
    let organised: Vec<Uuid> = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::OrganizerId.eq(caller.id))
        .limit(MAX_SCOPED_EVENTS as u64 + 1)
        .into_tuple()
        .all(state.db.conn())
        .await?;
    let own = user_column.eq(caller.id);
    Ok(match organised.len() {
        0 => select.filter(own),
        n if n <= MAX_SCOPED_EVENTS => {
            select.filter(Condition::any().add(own).add(event_column.is_in(organised)))
        }
        _ => select.filter(
            Condition::any().add(own).add(
                event_column.in_subquery(
                    Query::select()
                        .column(event::Column::Id)
                        .from(event::Entity)
                        .and_where(event::Column::OrganizerId.eq(caller.id))
                        .to_owned(),
                ),
            ),
        ),
    })
}

/// The organiser of an event (not found when the event is gone).
pub(crate) async fn organizer_of(state: &AppState, event_id: Uuid) -> DomainResult<Uuid> {
    event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?
        .map(|e| e.organizer_id)
        .ok_or(DomainError::NotFound)
}

/// The registrations the caller may see, in registration order.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: &RegistrationFilter,
    page: PageRequest,
) -> DomainResult<Page<registration::Model>> {
    let mut select = scoped_to_caller(
        state,
        registration::Entity::find(),
        caller,
        registration::Column::UserId,
        registration::Column::EventId,
    )
    .await?;
    if let Some(id) = filter.ticket {
        select = select.filter(registration::Column::TicketId.eq(id));
    }
    if let Some(id) = filter.event {
        select = select.filter(registration::Column::EventId.eq(id));
    }
    if let Some(id) = filter.user {
        select = select.filter(registration::Column::UserId.eq(id));
    }
    let select = select
        .order_by_asc(registration::Column::RegisteredAt)
        .order_by_asc(registration::Column::Id);
    Ok(super::fetch_page(state.db.conn(), select, page).await?)
}

/// What deciding a registration needs from a ticket and its event: the
/// rules (sales window, status, start, organiser), not the counters — the
/// write decides capacity under the rows' locks. Read on every
/// registration, so kept in the cache (family `Events`: event changes and
/// ticket changes and deletions move it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TicketRules {
    pub ticket_id: Uuid,
    pub sales_start: chrono::DateTime<chrono::Utc>,
    pub sales_end: chrono::DateTime<chrono::Utc>,
    pub event_id: Uuid,
    pub organizer_id: Uuid,
    pub event_status: String,
    pub event_start: chrono::DateTime<chrono::Utc>,
}

/// The rules of a ticket; an error on `ticket_id` when there is no such
/// ticket (or its event was deleted meanwhile, with its tickets).
pub async fn check_ticket(
    state: &AppState,
    ticket_id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<Option<TicketRules>> {
    let found = state
        .cache
        .shared(Family::Events, &format!("ticket-rules:{ticket_id}"), || {
            read_rules(state, ticket_id)
        })
        .await;
    match found {
        Ok(rules) => Ok(Some((*rules).clone())),
        Err(DomainError::NotFound) => {
            errors.add("ticket_id", does_not_exist(ticket_id));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The ticket and its event in one round trip (no such ticket: `NotFound`,
/// which is not cached).
async fn read_rules(state: &AppState, ticket_id: Uuid) -> DomainResult<TicketRules> {
    match ticket::Entity::find_by_id(ticket_id)
        .find_also_related(event::Entity)
        .one(state.db.conn())
        .await?
    {
        Some((t, Some(e))) => Ok(TicketRules {
            ticket_id: t.id,
            sales_start: t.sales_start,
            sales_end: t.sales_end,
            event_id: e.id,
            organizer_id: e.organizer_id,
            event_status: e.status,
            event_start: e.start_time,
        }),
        _ => Err(DomainError::NotFound),
    }
}

/// An error on `user_id` when no such user exists.
pub async fn check_user(
    state: &AppState,
    user_id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    let exists = user::Entity::find_by_id(user_id)
        .count(state.db.conn())
        .await?
        > 0;
    if !exists {
        errors.add("user_id", does_not_exist(user_id));
    }
    Ok(())
}

/// Registering someone else needs managing the ticket's event (403).
pub fn check_registers_other(
    caller: &Caller,
    target_user: Uuid,
    rules: &TicketRules,
) -> DomainResult<()> {
    if target_user != caller.id && !caller.manages_event(rules.organizer_id) {
        Err(DomainError::Forbidden)
    } else {
        Ok(())
    }
}

/// Self-registration rules: the event is scheduled and not yet started, and
/// now is within the ticket's sales window.
fn check_self_service(rules: &TicketRules) -> DomainResult<()> {
    let now = crate::db::now();
    if rules.event_status != "scheduled" {
        return Err(DomainError::SalesClosed(format!(
            "Registration is closed: the event is {}.",
            rules.event_status
        )));
    }
    if rules.event_start <= now {
        return Err(DomainError::SalesClosed(
            "Registration is closed: the event has already started.".into(),
        ));
    }
    if now < rules.sales_start {
        return Err(DomainError::SalesClosed(format!(
            "Ticket sales have not started yet; they open at {}.",
            rules
                .sales_start
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )));
    }
    if now > rules.sales_end {
        return Err(DomainError::SalesClosed(
            "Ticket sales for this ticket have ended.".into(),
        ));
    }
    Ok(())
}

/// Registers a user on a ticket: anyone themselves within the sales window
/// of a scheduled event not yet started; those who manage the event anyone
/// at any time (box office); never past the ticket's or event's capacity.
/// `errors` carries what the front door already found wrong, so one answer
/// names every bad field (and a 403 still comes first).
#[instrument(name = "register", skip_all, fields(user = %caller.username))]
pub async fn register(
    state: &AppState,
    caller: &Caller,
    new: NewRegistration,
    mut errors: FieldErrors,
) -> DomainResult<registration::Model> {
    let found = check_ticket(state, new.ticket_id, &mut errors).await?;
    let target_user = new.user_id.unwrap_or(caller.id);
    if let Some(rules) = &found {
        check_registers_other(caller, target_user, rules)?;
    }
    if target_user != caller.id {
        check_user(state, target_user, &mut errors).await?;
    }
    errors.into_result()?;
    let Some(rules) = found else {
        return Err(DomainError::NotFound);
    };
    // Box office: those who manage the event may register anyone outside the
    // sales window; everyone else follows the self-service rules.
    if !caller.manages_event(rules.organizer_id) {
        check_self_service(&rules)?;
    }

    let new = registration::Model {
        id: Uuid::now_v7(),
        ticket_id: rules.ticket_id,
        user_id: target_user,
        event_id: rules.event_id,
        registered_at: crate::db::now(),
    };
    let created =
        match registration_writer::register(&state.db, &state.registration_queues, new).await {
            Ok(created) => created,
            Err(WriteRefused::Duplicate) => {
                return Err(DomainError::AlreadyRegistered {
                    own: caller.id == target_user,
                });
            }
            Err(WriteRefused::Gone) => {
                return Err(DomainError::Conflict(
                    "The ticket or the user was deleted meanwhile.".into(),
                ));
            }
            Err(WriteRefused::SoldOut) => return Err(DomainError::SoldOut),
            Err(WriteRefused::Failed(err)) => return Err(err.into()),
        };
    state.cache.invalidate(&[Family::Tickets]).await;
    tracing::info!(
        "Registration {} created by {} for user {} on ticket {}",
        created.id,
        caller.username,
        target_user,
        rules.ticket_id
    );
    Ok(created)
}

async fn find(state: &AppState, id: Uuid) -> DomainResult<registration::Model> {
    registration::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)
}

/// A registration: its user and those who manage its event may read it.
pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<registration::Model> {
    let found = find(state, id).await?;
    if found.user_id != caller.id
        && !caller.manages_event(organizer_of(state, found.event_id).await?)
    {
        return Err(DomainError::Forbidden);
    }
    Ok(found)
}

/// Moves are for superuser and admin (404, then 403).
pub async fn get_movable(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> DomainResult<registration::Model> {
    let found = find(state, id).await?;
    if !caller.is_admin() {
        return Err(DomainError::Forbidden);
    }
    Ok(found)
}

/// Moves a registration to another ticket and/or user (superuser/admin):
/// capacity is re-checked on the new ticket and event; the old places are
/// released. Naming the current ticket and user changes nothing.
#[instrument(name = "move_registration", skip_all, fields(user = %caller.username))]
pub async fn move_to(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    ticket_id: Option<Uuid>,
    user_id: Option<Uuid>,
    mut errors: FieldErrors,
) -> DomainResult<registration::Model> {
    let found = get_movable(state, caller, id).await?;
    let target = match ticket_id {
        Some(id) if id != found.ticket_id => check_ticket(state, id, &mut errors).await?,
        _ => None,
    };
    if let Some(user_id) = user_id
        && user_id != found.user_id
    {
        check_user(state, user_id, &mut errors).await?;
    }
    errors.into_result()?;
    let new_user = user_id.unwrap_or(found.user_id);
    let (new_ticket, new_event) = match &target {
        Some(rules) => (rules.ticket_id, rules.event_id),
        None => (found.ticket_id, found.event_id),
    };
    if new_ticket == found.ticket_id && new_user == found.user_id {
        return Ok(found);
    }

    let txn = state.db.begin_write().await?;
    if new_ticket != found.ticket_id {
        // Tickets first, then events (the order of every writer); a move
        // within one event leaves the event's count as it is.
        registration_writer::release_ticket(&*txn, found.ticket_id).await?;
        if !registration_writer::take_ticket(&*txn, new_ticket).await? {
            return Err(DomainError::SoldOut);
        }
        if new_event != found.event_id {
            registration_writer::release_event(&*txn, found.event_id).await?;
            if !registration_writer::take_event(&*txn, new_event).await? {
                return Err(DomainError::SoldOut);
            }
            // Its code no longer admits anyone to the old event, and an
            // admission there does not count at the new one.
            registration_writer::revoke(&*txn, &[(found.id, found.event_id)]).await?;
            checkin::Entity::delete_many()
                .filter(checkin::Column::RegistrationId.eq(found.id))
                .exec(&*txn)
                .await?;
        }
    }
    let mut model: registration::ActiveModel = found.clone().into();
    model.ticket_id = Set(new_ticket);
    model.user_id = Set(new_user);
    model.event_id = Set(new_event);
    let updated = match model.update(&*txn).await {
        Ok(r) => r,
        Err(err) if is_unique_violation(&err) => {
            return Err(DomainError::AlreadyRegistered {
                own: caller.id == new_user,
            });
        }
        Err(err) if is_fk_violation(&err) => {
            return Err(DomainError::Conflict(
                "The ticket or user no longer exists.".into(),
            ));
        }
        Err(err) => return Err(err.into()),
    };
    // Check-ins follow the registration to its new ticket (same event).
    checkin::Entity::update_many()
        .col_expr(checkin::Column::TicketId, Expr::value(new_ticket))
        .col_expr(checkin::Column::UserId, Expr::value(new_user))
        .filter(checkin::Column::RegistrationId.eq(found.id))
        .exec(&*txn)
        .await?;
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
    Ok(updated)
}

/// Cancels a registration: superuser and admin always; its user while it
/// has no completed payment. Its payments go with it.
#[instrument(name = "cancel_registration", skip_all, fields(user = %caller.username))]
pub async fn cancel(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = find(state, id).await?;
    if !caller.is_admin() && found.user_id != caller.id {
        return Err(DomainError::Forbidden);
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
            return Err(DomainError::Forbidden);
        }
    }
    let deleted = delete_and_release(&*txn, found.id).await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Tickets]).await;
    if !deleted {
        return Err(DomainError::NotFound);
    }
    tracing::info!("Registration {} deleted by {}", found.id, caller.username);
    Ok(())
}

/// A registration with its ticket and event, for people (the console).
#[derive(Debug, Clone)]
pub struct Holding {
    pub registration: registration::Model,
    pub ticket: ticket::Model,
    pub event: event::Model,
}

/// The caller's own registrations for events not yet over, soonest first.
pub async fn holdings(state: &AppState, caller: &Caller) -> DomainResult<Vec<Holding>> {
    let db = state.db.conn();
    let mine = registration::Entity::find()
        .filter(registration::Column::UserId.eq(caller.id))
        .all(db)
        .await?;
    let ticket_ids: Vec<Uuid> = mine.iter().map(|r| r.ticket_id).collect();
    let tickets: std::collections::HashMap<Uuid, (ticket::Model, Option<event::Model>)> =
        ticket::Entity::find()
            .filter(ticket::Column::Id.is_in(ticket_ids))
            .find_also_related(event::Entity)
            .all(db)
            .await?
            .into_iter()
            .map(|(t, e)| (t.id, (t, e)))
            .collect();
    let now = crate::db::now();
    let mut held: Vec<Holding> = mine
        .into_iter()
        .filter_map(|registration| {
            let (ticket, event) = tickets.get(&registration.ticket_id)?.clone();
            let event = event?;
            (std::cmp::max(event.end_time, event.start_time) >= now).then_some(Holding {
                registration,
                ticket,
                event,
            })
        })
        .collect();
    held.sort_by_key(|h| (h.event.start_time, h.registration.id));
    Ok(held)
}

/// A registration of an event as its managers see it.
#[derive(Debug, Clone)]
pub struct RosterRow {
    pub registration: registration::Model,
    pub user: user::Model,
    pub ticket: String,
    /// `completed` if one payment is, else the latest payment's status.
    pub payment_status: Option<String>,
    pub checked_in_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An event's registrations, in registration order, for those who manage
/// it; `search` matches username, e-mail or names.
pub async fn roster(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    search: Option<&str>,
    page: PageRequest,
) -> DomainResult<Page<RosterRow>> {
    super::events::get_managed(state, caller, event_id).await?;
    let db = state.db.conn();
    let mut select =
        registration::Entity::find().filter(registration::Column::EventId.eq(event_id));
    if let Some(search) = search.filter(|s| !s.trim().is_empty()) {
        let pattern = super::events::like_contains(search.trim());
        select = select.filter(
            registration::Column::UserId.in_subquery(
                Query::select()
                    .column(user::Column::Id)
                    .from(user::Entity)
                    .cond_where(
                        Condition::any()
                            .add(Expr::col(user::Column::UsernameKey).like(pattern.clone()))
                            .add(Expr::col(user::Column::EmailKey).like(pattern.clone()))
                            .add(
                                Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(
                                    user::Column::FirstName,
                                )))
                                .like(pattern.clone()),
                            )
                            .add(
                                Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(
                                    user::Column::LastName,
                                )))
                                .like(pattern),
                            ),
                    )
                    .to_owned(),
            ),
        );
    }
    let select = select
        .order_by_asc(registration::Column::RegisteredAt)
        .order_by_asc(registration::Column::Id);
    let mut page = super::fetch_page(db, select, page).await?;
    let ids: Vec<Uuid> = page.items.iter().map(|r| r.id).collect();
    let user_ids: Vec<Uuid> = page.items.iter().map(|r| r.user_id).collect();
    let users = super::accounts::users_by_id(state, &user_ids).await?;
    let tickets: std::collections::HashMap<Uuid, String> = ticket::Entity::find()
        .filter(ticket::Column::EventId.eq(event_id))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let payments = super::payments::status_by_registration(state, &ids).await?;
    let admitted: std::collections::HashMap<Uuid, chrono::DateTime<chrono::Utc>> =
        crate::db::entities::checkin::Entity::find()
            .filter(crate::db::entities::checkin::Column::RegistrationId.is_in(ids.clone()))
            .filter(crate::db::entities::checkin::Column::Conflict.eq(false))
            .all(db)
            .await?
            .into_iter()
            .map(|c| (c.registration_id, c.checked_in_at))
            .collect();
    let items = std::mem::take(&mut page.items)
        .into_iter()
        .filter_map(|r| {
            let user = users.get(&r.user_id)?.clone();
            Some(RosterRow {
                ticket: tickets.get(&r.ticket_id).cloned().unwrap_or_default(),
                payment_status: payments.get(&r.id).cloned(),
                checked_in_at: admitted.get(&r.id).copied(),
                user,
                registration: r,
            })
        })
        .collect();
    Ok(page.with_items(items))
}

/// Registrations per day of an event over the last `days` days (today
/// included), oldest first, for those who manage it. Days are counted in
/// the configured time zone at its offset of today (a DST change inside the
/// window shifts the hour of older days by one).
pub async fn per_day(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    days: u32,
) -> DomainResult<Vec<(chrono::NaiveDate, u64)>> {
    use chrono::Offset;
    use sea_orm::{DbBackend, FromQueryResult, Statement};

    #[derive(FromQueryResult)]
    struct Day {
        day: i64,
        n: i64,
    }

    super::events::get_managed(state, caller, event_id).await?;
    let now = crate::db::now();
    let tz = state.config.time_zone;
    let offset = i64::from(now.with_timezone(&tz).offset().fix().local_minus_utc());
    let today = now.with_timezone(&tz).date_naive();
    let first = today - chrono::Duration::days(i64::from(std::cmp::max(days, 1)) - 1);
    let since = first
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc() - chrono::Duration::seconds(offset))
        .unwrap_or(now);
    // Cached with the ticket reads: every registration write makes those
    // stale (a new generation), so the chart is never older than a write.
    let key = format!("per_day:{event_id}:{first}:{offset}");
    let cached = state.cache.lookup(Family::Tickets, &key).await;
    if let Some(days) = cached
        .hit
        .as_deref()
        .and_then(|body| serde_json::from_slice::<Vec<(chrono::NaiveDate, u64)>>(body).ok())
    {
        return Ok(days);
    }
    let backend = state.db.backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT CAST(floor((date_part('epoch', registered_at) + $1) / 86400) AS BIGINT) AS day, \
             COUNT(*) AS n FROM registrations WHERE event_id = $2 AND registered_at >= $3 \
             GROUP BY 1"
        }
        _ => {
            "SELECT CAST((unixepoch(registered_at) + ?) / 86400 AS INTEGER) AS day, \
             COUNT(*) AS n FROM registrations WHERE event_id = ? AND registered_at >= ? \
             GROUP BY 1"
        }
    };
    let rows = Day::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [offset.into(), event_id.into(), since.into()],
    ))
    .all(state.db.conn())
    .await?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let counts: std::collections::HashMap<i64, u64> = rows
        .into_iter()
        .map(|d| (d.day, std::cmp::max(d.n, 0) as u64))
        .collect();
    let per_day: Vec<(chrono::NaiveDate, u64)> = (0..i64::from(std::cmp::max(days, 1)))
        .map(|i| {
            let date = first + chrono::Duration::days(i);
            let day = (date - epoch).num_days();
            (date, counts.get(&day).copied().unwrap_or(0))
        })
        .collect();
    if let (Some(generation), Ok(body)) = (cached.generation, serde_json::to_vec(&per_day)) {
        state
            .cache
            .store(Family::Tickets, generation, &key, body.into())
            .await;
    }
    Ok(per_day)
}

/// Registrations made since `since`, on every event (for superuser and
/// admin's dashboard; the caller is checked by the page).
pub async fn count_since(
    state: &AppState,
    since: chrono::DateTime<chrono::Utc>,
) -> DomainResult<u64> {
    Ok(registration::Entity::find()
        .filter(registration::Column::RegisteredAt.gte(since))
        .count(state.db.conn())
        .await?)
}
