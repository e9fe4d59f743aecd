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
    QuerySelect, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::scope::{self, Scope};
use super::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest, does_not_exist};
use crate::cache::Family;
use crate::db::audit::{self, Action, Entry};
use crate::db::entities::{
    checkin, event, payment, registration, registration_tally, ticket, user,
};
use crate::db::errors::{is_fk_violation, is_unique_violation};
use crate::db::registration_writer::{self, WriteRefused};
use crate::state::AppState;

pub use crate::db::registration_writer::delete_and_release;

/// A registration to make: the ticket, and the user (default: the caller).
#[derive(Debug, Clone)]
pub struct NewRegistration {
    pub ticket_id: Uuid,
    pub user_id: Option<Uuid>,
    /// A voucher's code (API.md §9).
    pub voucher: Option<String>,
}

/// What a list selects.
#[derive(Debug, Clone, Default)]
pub struct RegistrationFilter {
    pub ticket: Option<Uuid>,
    pub event: Option<Uuid>,
    pub user: Option<Uuid>,
    /// One standing (`confirmed`, `awaiting_payment`, `expired`); none: every
    /// registration holding a seat (expired ones only when asked for).
    pub status: Option<String>,
}

/// The standings a registration list may be filtered by.
pub const STATUSES: &[&str] = &[
    registration_writer::CONFIRMED,
    registration_writer::AWAITING_PAYMENT,
    registration_writer::EXPIRED,
];

/// The organiser of an event (not found when the event is gone).
pub(crate) async fn organizer_of(state: &AppState, event_id: Uuid) -> DomainResult<Uuid> {
    event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?
        .map(|e| e.organizer_id)
        .ok_or(DomainError::NotFound)
}

/// The registrations the caller may see, in registration order. Filtered
/// to an event they manage, the count is the event's counter.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: &RegistrationFilter,
    page: PageRequest,
) -> DomainResult<Page<registration::Model>> {
    let scope = Scope::of(state, caller, filter.event).await?;
    let mut select = scope.apply(
        registration::Entity::find(),
        caller,
        registration::Column::UserId,
        registration::Column::EventId,
    );
    if let Some(id) = filter.ticket {
        select = select.filter(registration::Column::TicketId.eq(id));
    }
    if let Some(id) = filter.event {
        select = select.filter(registration::Column::EventId.eq(id));
    }
    if let Some(id) = filter.user {
        select = select.filter(registration::Column::UserId.eq(id));
    }
    select = match &filter.status {
        Some(status) => select.filter(registration::Column::Status.eq(status.as_str())),
        None => select.filter(registration::Column::Status.ne(registration_writer::EXPIRED)),
    };
    let select = select
        .order_by_asc(registration::Column::RegisteredAt)
        .order_by_asc(registration::Column::Id);
    let db = state.db.conn();
    // The counters count every registration holding a seat: the list's
    // count when it is not narrowed further.
    let unfiltered = filter.ticket.is_none() && filter.user.is_none() && filter.status.is_none();
    Ok(match &scope {
        Scope::ManagedEvent(event) if unfiltered => {
            let count = u64::try_from(event.registered).unwrap_or(0);
            super::fetch_page_counted(db, select, page, count).await?
        }
        Scope::OwnAnd(events) if unfiltered => {
            // Their events' counters, and their own registrations elsewhere.
            let registered: Vec<i64> = event::Entity::find()
                .select_only()
                .column(event::Column::Registered)
                .filter(event::Column::Id.is_in(events.iter().copied()))
                .into_tuple()
                .all(db)
                .await?;
            let elsewhere = registration::Entity::find()
                .filter(registration::Column::UserId.eq(caller.id))
                .filter(registration::Column::EventId.is_not_in(events.iter().copied()))
                .filter(registration::Column::Status.ne(registration_writer::EXPIRED))
                .count(db)
                .await?;
            let count = registered
                .iter()
                .map(|n| u64::try_from(*n).unwrap_or(0))
                .sum::<u64>()
                + elsewhere;
            match scope::merged_page::<registration::Entity>(
                state,
                "registrations",
                "registered_at",
                "user_id",
                "event_id",
                events,
                caller,
                Some(("status <>", registration_writer::EXPIRED)),
                page,
                count,
            )
            .await?
            {
                Some(merged) => merged,
                None => super::fetch_page_counted(db, select, page, count).await?,
            }
        }
        _ => super::fetch_page(db, select, page).await?,
    })
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
    /// The ticket's price (minor units) and payment window (API.md §9).
    #[serde(default)]
    pub price_minor: i64,
    #[serde(default)]
    pub payment_window_minutes: Option<i32>,
    #[serde(default)]
    pub hidden: bool,
}

impl TicketRules {
    /// A new registration's standing: owing something on a ticket with a
    /// payment window, awaiting payment until the window's end; else
    /// confirmed.
    pub fn standing(
        &self,
        amount_due_minor: i64,
        registered_at: chrono::DateTime<chrono::Utc>,
    ) -> (&'static str, Option<chrono::DateTime<chrono::Utc>>) {
        match self.payment_window_minutes {
            Some(minutes) if amount_due_minor > 0 => (
                registration_writer::AWAITING_PAYMENT,
                Some(registered_at + chrono::Duration::minutes(i64::from(minutes))),
            ),
            _ => (registration_writer::CONFIRMED, None),
        }
    }
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
            price_minor: t.price_minor,
            payment_window_minutes: t.payment_window_minutes,
            hidden: t.hidden,
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
    // The clock holds and vouchers are judged by (moved forward in tests).
    let registered_at = state.clock.now();
    let mut voucher = None;
    if let Some(rules) = &found {
        let code = new
            .voucher
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        match code {
            Some(code) => {
                match super::vouchers::redeemable(state, rules, code, registered_at).await? {
                    Ok(v) => voucher = Some(v),
                    Err(why) => errors.add("voucher", why),
                }
            }
            // A hidden ticket: a voucher that unlocks it, or the box office.
            None if rules.hidden && !caller.manages_event(rules.organizer_id) => {
                errors.add("voucher", "This ticket is available only with a voucher.");
            }
            None => {}
        }
    }
    errors.into_result()?;
    let Some(rules) = found else {
        return Err(DomainError::NotFound);
    };
    if target_user == caller.id && !caller.is_admin() {
        crate::domain::accounts::links::check_may_register(state, caller)?;
    }
    // Box office: those who manage the event may register anyone outside the
    // sales window; everyone else follows the self-service rules.
    if !caller.manages_event(rules.organizer_id) {
        check_self_service(&rules)?;
    }

    let amount_due = voucher.as_ref().map_or(rules.price_minor, |v| {
        super::vouchers::discounted(v, rules.price_minor)
    });
    let (status, hold_expires_at) = rules.standing(amount_due, registered_at);
    let new = registration::Model {
        id: Uuid::now_v7(),
        ticket_id: rules.ticket_id,
        user_id: target_user,
        event_id: rules.event_id,
        registered_at,
        short_code: crate::ticket_codes::new_short_code(),
        status: status.to_owned(),
        hold_expires_at,
        voucher_id: voucher.as_ref().map(|v| v.id),
        amount_due_minor: Some(amount_due),
    };
    let mut written = write(state, caller, &new).await;
    if matches!(written, Err(WriteRefused::HeldByOverdue)) {
        // Overdue holds are free seats, at once (API.md §9): the writer saw
        // some of this event's; expire them (or find them expired by
        // another process meanwhile), then try once more.
        let freed =
            registration_writer::expire_overdue(&state.db, Some(rules.event_id), registered_at)
                .await?;
        if !freed.is_empty() {
            state.cache.invalidate(&[Family::Tickets]).await;
            offer_to_those_waiting(state, &freed).await;
        }
        written = write(state, caller, &new).await;
    }
    let created = match written {
        Ok(created) => created,
        Err(WriteRefused::Duplicate) => {
            // Registering again on an expired hold revives it, if there is room.
            if let Some(revived) = revive_expired(state, caller, &new).await? {
                return Ok(revived);
            }
            return Err(DomainError::AlreadyRegistered {
                own: caller.id == target_user,
            });
        }
        Err(other) => return Err(refused(other)),
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

/// Why a registration was not written, for the caller (a duplicate is
/// answered where the caller is known).
fn refused(why: WriteRefused) -> DomainError {
    match why {
        WriteRefused::Duplicate => DomainError::AlreadyRegistered { own: true },
        WriteRefused::Gone => {
            DomainError::Conflict("The ticket or the user was deleted meanwhile.".into())
        }
        WriteRefused::SoldOut | WriteRefused::HeldByOverdue => DomainError::SoldOut,
        WriteRefused::CodeTaken => {
            DomainError::Conflict("No free short code was drawn; please try again.".into())
        }
        WriteRefused::VoucherUsedUp => DomainError::Invalid(FieldErrors::single(
            "voucher",
            "This voucher has been used up.",
        )),
        WriteRefused::Failed(err) => err.into(),
    }
}

/// The seats expired holds freed go to those waiting for their tickets.
async fn offer_to_those_waiting(state: &AppState, freed: &[registration::Model]) {
    let mut tickets: Vec<Uuid> = freed.iter().map(|r| r.ticket_id).collect();
    tickets.sort();
    tickets.dedup();
    for ticket in tickets {
        super::waitlist::offer_freed_seats(state, ticket).await;
    }
}

async fn write(
    state: &AppState,
    caller: &Caller,
    new: &registration::Model,
) -> Result<registration::Model, WriteRefused> {
    registration_writer::register(
        &state.db,
        &state.registration_queues,
        new.clone(),
        caller.audit(),
    )
    .await
}

/// The user's expired registration on this ticket, given its seat back with
/// the standing `new` would have had; `None` when they hold no expired one.
/// No room: sold out (after expiring what is overdue).
async fn revive_expired(
    state: &AppState,
    caller: &Caller,
    new: &registration::Model,
) -> DomainResult<Option<registration::Model>> {
    let held = || {
        registration::Entity::find()
            .filter(registration::Column::TicketId.eq(new.ticket_id))
            .filter(registration::Column::UserId.eq(new.user_id))
            .one(state.db.conn())
    };
    let mut found = held().await?;
    if let Some(overdue) = &found
        && overdue.status == registration_writer::AWAITING_PAYMENT
        && !registration_writer::holds_seat(overdue, new.registered_at)
    {
        // Overdue but not yet swept: expired now, then revived.
        registration_writer::expire_overdue(&state.db, Some(overdue.event_id), new.registered_at)
            .await?;
        found = held().await?;
    }
    let Some(found) = found.filter(|f| f.status == registration_writer::EXPIRED) else {
        return Ok(None);
    };
    let context = caller.audit();
    let revive = || registration_writer::revive(&state.db, &found, new, &context);
    let mut revived = revive().await.map_err(refused)?;
    if revived.is_none() {
        let freed =
            registration_writer::expire_overdue(&state.db, Some(found.event_id), new.registered_at)
                .await?;
        offer_to_those_waiting(state, &freed).await;
        if !freed.is_empty() || registration_writer::has_room(&state.db, found.ticket_id).await? {
            revived = revive().await.map_err(refused)?;
        }
    }
    state.cache.invalidate(&[Family::Tickets]).await;
    match revived {
        Some(r) => {
            tracing::info!("Registration {} revived by {}", r.id, caller.username);
            Ok(Some(r))
        }
        None => Err(DomainError::SoldOut),
    }
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
    // The registration first, then the counters (the order of expiries and
    // cancellations); an expired hold has no seat to move.
    let locked = registration::Entity::find_by_id(found.id)
        .lock_exclusive()
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    if locked.status == registration_writer::EXPIRED {
        return Err(DomainError::HoldExpired);
    }
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
    crate::db::audit::record_one(
        &*txn,
        &caller.audit(),
        crate::db::audit::Entry::updated(
            crate::db::audit::Action::RegistrationUpdated,
            &found,
            &updated,
        ),
    )
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
    if deleted {
        audit::record_one(
            &*txn,
            &caller.audit(),
            Entry::deleted(Action::RegistrationCancelled, &found),
        )
        .await?;
    }
    txn.commit().await?;
    state.cache.invalidate(&[Family::Tickets]).await;
    if !deleted {
        return Err(DomainError::NotFound);
    }
    // Its seat goes to the first person waiting, if anyone is.
    super::waitlist::offer_freed_seats(state, found.ticket_id).await;
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
    // An expired hold is no ticket any more (its person was mailed).
    let mine = registration::Entity::find()
        .filter(registration::Column::UserId.eq(caller.id))
        .filter(registration::Column::Status.ne(registration_writer::EXPIRED))
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
    /// A priced ticket (the door wants a completed payment).
    pub priced: bool,
    /// `completed` if one payment is, else the latest payment's status.
    pub payment_status: Option<String>,
    pub checked_in_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An event's registrations, in registration order, for those who manage
/// it; `search` matches username, e-mail or names (any part, any case), or
/// is a registration's short code. Without a search the count is the
/// event's counter.
pub async fn roster(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    search: Option<&str>,
    page: PageRequest,
) -> DomainResult<Page<RosterRow>> {
    let event = super::events::get_managed(state, caller, event_id).await?;
    let db = state.db.conn();
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    let select = registration::Entity::find()
        .filter(registration::Column::EventId.eq(event_id))
        .order_by_asc(registration::Column::RegisteredAt)
        .order_by_asc(registration::Column::Id);
    let mut page = match search {
        None => {
            let count = u64::try_from(event.registered).unwrap_or(0);
            super::fetch_page_counted(db, select, page, count).await?
        }
        Some(search) => {
            // The people first (their trigram indexes on PostgreSQL), then
            // their registrations here (index `(event_id, user_id)`), with
            // their count in the same statement.
            let matching = people_matching(search);
            let people: Vec<Uuid> = user::Entity::find()
                .select_only()
                .column(user::Column::Id)
                .filter(matching.clone())
                .limit(MAX_NAMED_PEOPLE + 1)
                .into_tuple()
                .all(db)
                .await?;
            // The short code printed on a ticket finds it too.
            let code = crate::ticket_codes::normalize_short_code(search);
            let by_code =
                |select: sea_orm::Select<registration::Entity>, named: Condition| match &code {
                    Some(code) => select.filter(
                        Condition::any()
                            .add(named)
                            .add(registration::Column::ShortCode.eq(code.clone())),
                    ),
                    None => select.filter(named),
                };
            if people.len() as u64 <= MAX_NAMED_PEOPLE {
                if people.is_empty() && code.is_none() {
                    super::Page::empty(page)
                } else {
                    let named = match state.db.backend() {
                        // One array parameter: one statement, prepared
                        // once, however many people a search names (an
                        // `IN` list is a new statement for each length).
                        sea_orm::DbBackend::Postgres => Condition::all().add(
                            Expr::col((registration::Entity, registration::Column::UserId))
                                .eq(sea_orm::sea_query::PgFunc::any(Expr::val(people))),
                        ),
                        _ => Condition::all().add(registration::Column::UserId.is_in(people)),
                    };
                    super::fetch_page_with_its_count(db, by_code(select, named), page).await?
                }
            } else {
                // Many people (a term in most names): planned for these
                // values, so that a big event's registrations are walked in
                // order and a small one's found from the people.
                let named = Condition::all().add(
                    registration::Column::UserId.in_subquery(
                        Query::select()
                            .column(user::Column::Id)
                            .from(user::Entity)
                            .cond_where(matching)
                            .to_owned(),
                    ),
                );
                let txn = state.db.begin_planned_per_value().await?;
                let page = super::fetch_page(&txn, by_code(select, named), page).await?;
                txn.commit().await?;
                page
            }
        }
    };
    let items = roster_rows(state, event_id, std::mem::take(&mut page.items)).await?;
    Ok(page.with_items(items))
}

/// Most people a roster search names one by one; beyond, a subquery.
const MAX_NAMED_PEOPLE: u64 = 1000;

/// People whose username, e-mail or names contain `search` (any case).
fn people_matching(search: &str) -> Condition {
    let pattern = super::events::like_contains(search);
    let lower = |column: user::Column| {
        Expr::expr(sea_orm::sea_query::Func::lower(Expr::col(column))).like(pattern.clone())
    };
    Condition::any()
        .add(Expr::col(user::Column::UsernameKey).like(pattern.clone()))
        .add(Expr::col(user::Column::EmailKey).like(pattern.clone()))
        .add(lower(user::Column::FirstName))
        .add(lower(user::Column::LastName))
}

/// The next `limit` registrations of an event after `after` (its
/// `registered_at` and id; `None`: from the first), in registration order,
/// for those who manage it — a keyset walk that costs the same at the end
/// of a long roster as at its start (the CSV export).
pub async fn roster_after(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    limit: u64,
) -> DomainResult<Vec<RosterRow>> {
    super::events::get_managed(state, caller, event_id).await?;
    let mut select =
        registration::Entity::find().filter(registration::Column::EventId.eq(event_id));
    if let Some((at, id)) = after {
        // One row comparison, which the index walks from: written as
        // `at > $1 OR (at = $1 AND id > $2)`, only the event is sought in
        // the index and every earlier row is read again and dropped (a
        // CSV of 100,000 rows read five million).
        select = select.filter(
            Expr::tuple([
                Expr::col((registration::Entity, registration::Column::RegisteredAt)),
                Expr::col((registration::Entity, registration::Column::Id)),
            ])
            .gt(Expr::tuple([Expr::val(at), Expr::val(id)])),
        );
    }
    let rows = select
        .order_by_asc(registration::Column::RegisteredAt)
        .order_by_asc(registration::Column::Id)
        .limit(limit)
        .all(state.db.conn())
        .await?;
    roster_rows(state, event_id, rows).await
}

/// Registrations of one event with their people, ticket names, payment
/// status and admission, in the order given.
async fn roster_rows(
    state: &AppState,
    event_id: Uuid,
    rows: Vec<registration::Model>,
) -> DomainResult<Vec<RosterRow>> {
    let db = state.db.conn();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let user_ids: Vec<Uuid> = rows.iter().map(|r| r.user_id).collect();
    let users = super::accounts::users_by_id(state, &user_ids).await?;
    let tickets: std::collections::HashMap<Uuid, (String, bool)> = ticket::Entity::find()
        .filter(ticket::Column::EventId.eq(event_id))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, (t.name, t.price_minor > 0)))
        .collect();
    let payments = super::payments::status_by_registration(state, &ids).await?;
    let admitted: std::collections::HashMap<Uuid, chrono::DateTime<chrono::Utc>> =
        checkin::Entity::find()
            .filter(checkin::Column::RegistrationId.is_in(ids))
            .filter(checkin::Column::Conflict.eq(false))
            .all(db)
            .await?
            .into_iter()
            .map(|c| (c.registration_id, c.checked_in_at))
            .collect();
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let user = users.get(&r.user_id)?.clone();
            let (ticket, priced) = tickets.get(&r.ticket_id).cloned().unwrap_or_default();
            Some(RosterRow {
                ticket,
                priced,
                payment_status: payments.get(&r.id).cloned(),
                checked_in_at: admitted.get(&r.id).copied(),
                user,
                registration: r,
            })
        })
        .collect())
}

/// Registrations per day of an event over the last `days` days (today
/// included), oldest first, for those who manage it. Days are counted in
/// the configured time zone at its offset of today (a DST change inside the
/// window shifts the hour of older days by one). Summed from the event's
/// tallies per quarter hour (kept by the database on every write; every time
/// zone's offset is a whole number of quarter hours): at most 96 rows a day
/// however many registrations.
pub async fn per_day(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    days: u32,
) -> DomainResult<Vec<(chrono::NaiveDate, u64)>> {
    use chrono::Offset;

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
    let mut counts: std::collections::HashMap<i64, u64> = std::collections::HashMap::new();
    for tally in registration_tally::Entity::find()
        .filter(registration_tally::Column::EventId.eq(event_id))
        .filter(registration_tally::Column::Slot.gte(since.timestamp().div_euclid(SLOT_SECONDS)))
        .all(state.db.conn())
        .await?
    {
        let day = (tally.slot * SLOT_SECONDS + offset).div_euclid(86_400);
        *counts.entry(day).or_insert(0) += u64::try_from(tally.n).unwrap_or(0);
    }
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let per_day: Vec<(chrono::NaiveDate, u64)> = (0..i64::from(std::cmp::max(days, 1)))
        .map(|i| {
            let date = first + chrono::Duration::days(i);
            let day = (date - epoch).num_days();
            (date, counts.get(&day).copied().unwrap_or(0))
        })
        .collect();
    Ok(per_day)
}

/// The span of a registration tally's slot (migration `m20261205_000010_scale`).
const SLOT_SECONDS: i64 = 900;

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
