//! Ticket types of an event: price, sales window, quota; managed by those
//! who manage the event.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest, does_not_exist};
use crate::cache::Family;
use crate::db::entities::{event, registration, ticket};
use crate::state::AppState;

/// The fields lists may be ordered by.
pub const ORDERINGS: &[&str] = &["price", "sales_start", "name"];
pub const MAX_NAME: usize = 100;

/// A new ticket type, already parsed; `price_minor` in minor units.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub event_id: Uuid,
    pub name: String,
    pub price_minor: i64,
    pub sales_start: DateTime<Utc>,
    pub sales_end: DateTime<Utc>,
    pub quota: i64,
    /// Minutes an unpaid registration keeps its seat (API.md §9).
    pub payment_window_minutes: Option<i32>,
    /// Not listed publicly; registering needs a voucher that unlocks it.
    pub hidden: bool,
    /// A waiting list when sold out, and how long an offer holds a seat.
    pub waitlist: bool,
    pub waitlist_offer_hours: i32,
}

/// The fields an update sets (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct TicketChanges {
    pub event_id: Option<Uuid>,
    pub name: Option<String>,
    pub price_minor: Option<i64>,
    pub sales_start: Option<DateTime<Utc>>,
    pub sales_end: Option<DateTime<Utc>>,
    pub quota: Option<i64>,
    /// `Some(None)`: no window any more.
    pub payment_window_minutes: Option<Option<i32>>,
    pub hidden: Option<bool>,
    pub waitlist: Option<bool>,
    pub waitlist_offer_hours: Option<i32>,
}

/// A ticket and the room its event has left (event quota minus the
/// registrations on all its tickets).
#[derive(Debug, Clone)]
pub struct TicketView {
    pub ticket: ticket::Model,
    pub event_room: i64,
}

impl TicketView {
    /// What this ticket can still sell: the smaller of its own room and its
    /// event's room, never below 0.
    pub fn available(&self) -> i64 {
        let own_room = self.ticket.quota - self.ticket.sold - self.ticket.offered;
        std::cmp::max(std::cmp::min(own_room, self.event_room), 0)
    }
}

/// The tickets with their events' room, in one query for all the events.
async fn with_room(
    db: &impl sea_orm::ConnectionTrait,
    tickets: Vec<ticket::Model>,
) -> DomainResult<Vec<TicketView>> {
    let event_ids: Vec<Uuid> = tickets.iter().map(|t| t.event_id).collect();
    let rooms: std::collections::HashMap<Uuid, i64> = event::Entity::find()
        .filter(event::Column::Id.is_in(event_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e.quota - e.registered - e.offered))
        .collect();
    Ok(tickets
        .into_iter()
        .map(|ticket| TicketView {
            event_room: rooms.get(&ticket.event_id).copied().unwrap_or(0),
            ticket,
        })
        .collect())
}

async fn view(state: &AppState, ticket: ticket::Model) -> DomainResult<TicketView> {
    let mut views = with_room(state.db.conn(), vec![ticket]).await?;
    views.pop().ok_or(DomainError::NotFound)
}

/// One page of tickets, optionally of one event (hidden ones only
/// `with_hidden`, for those who manage it); `ordering`: fields of
/// `ORDERINGS` and whether each is descending (none: creation order).
pub async fn list(
    state: &AppState,
    event_id: Option<Uuid>,
    with_hidden: bool,
    ordering: &[(&str, bool)],
    page: PageRequest,
    count_generation: Option<u64>,
) -> DomainResult<Page<TicketView>> {
    let mut select = ticket::Entity::find();
    if let Some(event_id) = event_id {
        select = select.filter(ticket::Column::EventId.eq(event_id));
    }
    // Hidden tickets are for those who manage the event (API.md §9).
    if !with_hidden {
        select = select.filter(ticket::Column::Hidden.eq(false));
    }
    for (field, descending) in ordering {
        let column = match *field {
            "price" => ticket::Column::PriceMinor,
            "sales_start" => ticket::Column::SalesStart,
            _ => ticket::Column::Name,
        };
        select = if *descending {
            select.order_by_desc(column)
        } else {
            select.order_by_asc(column)
        };
    }
    // Ties (and the default order) by id: creation order, ids being UUIDv7;
    // in the direction of the first field.
    let select = if ordering.first().is_some_and(|(_, descending)| *descending) {
        select.order_by_desc(ticket::Column::Id)
    } else {
        select.order_by_asc(ticket::Column::Id)
    };
    let db = state.db.conn();
    let counted = select.clone();
    let count = state
        .cache
        .count(
            Family::Tickets,
            count_generation,
            &format!("event={event_id:?}:hidden={with_hidden}"),
            || counted.count(db),
        )
        .await?;
    let mut page = super::fetch_page_counted(db, select, page, count).await?;
    let items = with_room(db, std::mem::take(&mut page.items)).await?;
    Ok(page.with_items(items))
}

async fn find(state: &AppState, id: Uuid) -> DomainResult<ticket::Model> {
    ticket::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)
}

/// A ticket, with what it can still sell.
pub async fn get(state: &AppState, id: Uuid) -> DomainResult<TicketView> {
    let found = find(state, id).await?;
    view(state, found).await
}

async fn event_of(state: &AppState, event_id: Uuid) -> DomainResult<event::Model> {
    event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?
        // Deleted meanwhile (with its tickets).
        .ok_or(DomainError::NotFound)
}

/// A ticket whose event the caller manages (404, then 403), with its event.
pub async fn get_managed(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> DomainResult<(ticket::Model, event::Model)> {
    let found = find(state, id).await?;
    let parent = event_of(state, found.event_id).await?;
    if !caller.manages_event(parent.organizer_id) {
        return Err(DomainError::Forbidden);
    }
    Ok((found, parent))
}

/// Whether the caller could manage any event at all; others are refused
/// before their input is looked at.
pub async fn authorize_create(state: &AppState, caller: &Caller) -> DomainResult<()> {
    if caller.can_create_events() {
        return Ok(());
    }
    let organised = event::Entity::find()
        .filter(event::Column::OrganizerId.eq(caller.id))
        .count(state.db.conn())
        .await?;
    if organised > 0 {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// The event a ticket is for: an error on `event_id` when unknown, 403 when
/// the caller does not manage it.
pub async fn check_event(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<Option<event::Model>> {
    let found = event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?;
    match found {
        None => {
            errors.add("event_id", does_not_exist(event_id));
            Ok(None)
        }
        Some(e) if !caller.manages_event(e.organizer_id) => Err(DomainError::Forbidden),
        Some(e) => Ok(Some(e)),
    }
}

/// The sales window may not end before it starts.
pub fn check_window(start: DateTime<Utc>, end: DateTime<Utc>, errors: &mut FieldErrors) {
    if end < start {
        errors.add(
            "sales_end",
            "Sales end must not be earlier than sales start.",
        );
    }
}

#[instrument(name = "create_ticket", skip_all, fields(user = %caller.username))]
pub async fn create(state: &AppState, caller: &Caller, new: NewTicket) -> DomainResult<TicketView> {
    authorize_create(state, caller).await?;
    let mut errors = FieldErrors::default();
    let parent = check_event(state, caller, new.event_id, &mut errors).await?;
    check_window(new.sales_start, new.sales_end, &mut errors);
    errors.into_result()?;
    let Some(parent) = parent else {
        return Err(DomainError::NotFound);
    };
    let txn = state.db.begin_write().await?;
    let created = ticket::ActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(parent.id),
        name: Set(new.name),
        price_minor: Set(new.price_minor),
        sales_start: Set(new.sales_start),
        sales_end: Set(new.sales_end),
        quota: Set(new.quota),
        sold: Set(0),
        payment_window_minutes: Set(new.payment_window_minutes),
        hidden: Set(new.hidden),
        waitlist: Set(new.waitlist),
        waitlist_offer_hours: Set(new.waitlist_offer_hours),
        offered: Set(0),
    }
    .insert(&*txn)
    .await?;
    crate::db::audit::record_one(
        &*txn,
        &caller.audit(),
        crate::db::audit::Entry::created(crate::db::audit::Action::TicketCreated, &created),
    )
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
    view(state, created).await
}

/// Changes the fields given; `errors` carries what the front door already
/// found wrong. The quota never goes below what is sold, and a ticket with
/// registrations stays with its event.
#[instrument(name = "update_ticket", skip_all, fields(user = %caller.username))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    changes: TicketChanges,
    mut errors: FieldErrors,
) -> DomainResult<TicketView> {
    let (found, _) = get_managed(state, caller, id).await?;
    let mut moving_to = None;
    if let Some(event_id) = changes.event_id
        && event_id != found.event_id
    {
        moving_to = check_event(state, caller, event_id, &mut errors).await?;
    }
    check_window(
        changes.sales_start.unwrap_or(found.sales_start),
        changes.sales_end.unwrap_or(found.sales_end),
        &mut errors,
    );
    errors.into_result()?;

    let mut model: ticket::ActiveModel = found.clone().into();
    if let Some(v) = changes.name {
        model.name = Set(v);
    }
    if let Some(v) = changes.price_minor {
        model.price_minor = Set(v);
    }
    if let Some(v) = changes.sales_start {
        model.sales_start = Set(v);
    }
    if let Some(v) = changes.sales_end {
        model.sales_end = Set(v);
    }
    if let Some(v) = changes.quota {
        model.quota = Set(v);
    }
    // A new window applies to registrations made from now on.
    if let Some(v) = changes.payment_window_minutes {
        model.payment_window_minutes = Set(v);
    }
    if let Some(v) = changes.hidden {
        model.hidden = Set(v);
    }
    if let Some(v) = changes.waitlist {
        model.waitlist = Set(v);
    }
    if let Some(v) = changes.waitlist_offer_hours {
        model.waitlist_offer_hours = Set(v);
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
    if let Some(quota) = changes.quota {
        update = update.filter(
            Expr::col(ticket::Column::Sold)
                .add(Expr::col(ticket::Column::Offered))
                .lte(quota),
        );
    }
    if moving_to.is_some() {
        update = update.filter(Expr::col(ticket::Column::Sold).eq(0));
    }
    let result = update.exec(&*txn).await?;
    if result.rows_affected == 0 {
        let current = ticket::Entity::find_by_id(found.id).one(&*txn).await?;
        return match current {
            None => Err(DomainError::NotFound),
            Some(t) if moving_to.is_some() && t.sold > 0 => Err(DomainError::Conflict(format!(
                "A ticket with {} registrations cannot move to another event.",
                t.sold
            ))),
            Some(t) if t.offered > 0 => Err(DomainError::Conflict(format!(
                "The quota cannot be lower than the {} tickets already sold and {} offered to people waiting.",
                t.sold, t.offered
            ))),
            Some(t) => Err(DomainError::Conflict(format!(
                "The quota cannot be lower than the {} tickets already sold.",
                t.sold
            ))),
        };
    }
    let updated = ticket::Entity::find_by_id(found.id)
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    crate::db::audit::record_one(
        &*txn,
        &caller.audit(),
        crate::db::audit::Entry::updated(crate::db::audit::Action::TicketUpdated, &found, &updated),
    )
    .await?;
    txn.commit().await?;
    // The registration rules (`registrations::TicketRules`) are kept
    // under `Events`.
    state
        .cache
        .invalidate(&[Family::Tickets, Family::Events])
        .await;
    tracing::info!("Ticket {} updated by {}", updated.id, caller.username);
    // A raised quota's new seats go to those waiting first.
    if updated.quota > found.quota {
        super::waitlist::offer_freed_seats(state, updated.id).await;
    }
    view(state, updated).await
}

/// Deletes a ticket with its registrations and their payments; the event
/// gets their places back.
#[instrument(name = "delete_ticket", skip_all, fields(user = %caller.username))]
pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let (found, _) = get_managed(state, caller, id).await?;
    let txn = state.db.begin_write().await?;
    // Lock the ticket row FOR UPDATE first (PostgreSQL; SQLite's writer
    // lock serialises anyway): registrations in flight (which hold a key-share
    // lock through their foreign key) finish first, later ones wait and then
    // find the ticket gone — so `sold` read here is final.
    let locked = ticket::Entity::find_by_id(found.id)
        .lock_exclusive()
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    // Its open waiting-list offers held seats in the event too.
    let (sold, offered) = (locked.sold, locked.offered);
    // Registrations and their payments go with the ticket (ON DELETE CASCADE);
    // the event gets their places back, and their codes are revoked.
    let revoked: Vec<(Uuid, Uuid)> = registration::Entity::find()
        .select_only()
        .column(registration::Column::Id)
        .column(registration::Column::EventId)
        .filter(registration::Column::TicketId.eq(found.id))
        .into_tuple()
        .all(&*txn)
        .await?;
    crate::db::registration_writer::revoke(&*txn, &revoked).await?;
    ticket::Entity::delete_by_id(found.id).exec(&*txn).await?;
    event::Entity::update_many()
        .col_expr(
            event::Column::Registered,
            Expr::col(event::Column::Registered).sub(sold),
        )
        .col_expr(
            event::Column::Offered,
            Expr::col(event::Column::Offered).sub(offered),
        )
        .filter(event::Column::Id.eq(found.event_id))
        .exec(&*txn)
        .await?;
    crate::db::audit::record_one(
        &*txn,
        &caller.audit(),
        crate::db::audit::Entry::deleted(crate::db::audit::Action::TicketDeleted, &found),
    )
    .await?;
    txn.commit().await?;
    // The registration rules (`registrations::TicketRules`) are kept
    // under `Events`.
    state
        .cache
        .invalidate(&[Family::Tickets, Family::Events])
        .await;
    tracing::info!(
        "Ticket {} ({}) deleted by {}, releasing {sold} registrations",
        found.id,
        found.name,
        caller.username
    );
    Ok(())
}
