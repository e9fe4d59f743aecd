//! The waiting list (API.md §9): who may join, see, leave and accept. The
//! seats themselves are kept by `db::waitlist` (offers hold seats; nobody
//! from the public takes a freed seat while someone waits).

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tracing::instrument;
use uuid::Uuid;

use super::registrations::{TicketRules, check_ticket};
use super::scope::Scope;
use super::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest};
use crate::cache::Family;
use crate::db::entities::{registration, waitlist_entry};
use crate::db::waitlist::{self as engine, AcceptRefused, JoinRefused};
use crate::state::AppState;

/// An entry with its place in line (waiting ones only).
#[derive(Debug, Clone)]
pub struct Place {
    pub entry: waitlist_entry::Model,
    pub position: Option<i64>,
}

async fn with_positions(
    state: &AppState,
    entries: Vec<waitlist_entry::Model>,
) -> DomainResult<Vec<Place>> {
    let positions = engine::positions(state.db.conn(), &entries).await?;
    Ok(entries
        .into_iter()
        .map(|entry| Place {
            position: positions.get(&entry.id).copied(),
            entry,
        })
        .collect())
}

/// Joins the waiting list of a sold-out ticket (for oneself).
#[instrument(name = "join_waitlist", skip_all, fields(user = %caller.username))]
pub async fn join(
    state: &AppState,
    caller: &Caller,
    ticket_id: Uuid,
    mut errors: FieldErrors,
) -> DomainResult<Place> {
    let rules = check_ticket(state, ticket_id, &mut errors).await?;
    errors.into_result()?;
    let Some(rules) = rules else {
        return Err(DomainError::NotFound);
    };
    // A hidden ticket has no public line.
    if rules.hidden && !caller.manages_event(rules.organizer_id) {
        return Err(DomainError::Invalid(FieldErrors::single(
            "ticket_id",
            super::does_not_exist(ticket_id),
        )));
    }
    let now = state.clock.now();
    let joined = engine::join(&state.db, rules.ticket_id, caller.id, &caller.audit(), now).await?;
    let entry = match joined {
        Ok(entry) => entry,
        Err(why) => return Err(join_refused(why)),
    };
    tracing::info!(
        "{} joined the waiting list of ticket {}",
        caller.username,
        rules.ticket_id
    );
    let mut placed = with_positions(state, vec![entry]).await?;
    placed.pop().ok_or(DomainError::NotFound)
}

fn join_refused(why: JoinRefused) -> DomainError {
    DomainError::Conflict(
        match why {
            JoinRefused::NoWaitingList => "This ticket has no waiting list.",
            JoinRefused::StillAvailable => "Tickets are still available.",
            JoinRefused::SalesClosed => "Sales of this ticket are closed.",
            JoinRefused::Registered => "You are already registered for this ticket.",
            JoinRefused::AlreadyIn => "You are already on this waiting list.",
            JoinRefused::Gone => "The ticket was deleted meanwhile.",
        }
        .into(),
    )
}

/// The caller's entries, and the entries of the events they manage
/// (superuser and admin: all), oldest first; optionally of one ticket.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    ticket: Option<Uuid>,
    page: PageRequest,
) -> DomainResult<Page<Place>> {
    let scope = Scope::of(state, caller, None).await?;
    let mut select = scope.apply(
        waitlist_entry::Entity::find(),
        caller,
        waitlist_entry::Column::UserId,
        waitlist_entry::Column::EventId,
    );
    if let Some(id) = ticket {
        select = select.filter(waitlist_entry::Column::TicketId.eq(id));
    }
    let select = select
        .order_by_asc(waitlist_entry::Column::CreatedAt)
        .order_by_asc(waitlist_entry::Column::Id);
    let page = super::fetch_page(state.db.conn(), select, page).await?;
    let items = with_positions(state, page.items.clone()).await?;
    Ok(page.with_items(items))
}

/// An entry: its person, and those who manage its event (404, then 403).
pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<Place> {
    let found = waitlist_entry::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    if found.user_id != caller.id
        && !caller.manages_event(super::registrations::organizer_of(state, found.event_id).await?)
    {
        return Err(DomainError::Forbidden);
    }
    let mut placed = with_positions(state, vec![found]).await?;
    placed.pop().ok_or(DomainError::NotFound)
}

/// Leaves the line (its person, or those who manage the event); an open
/// offer's seat goes to the next person.
#[instrument(name = "leave_waitlist", skip_all, fields(user = %caller.username))]
pub async fn leave(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = get(state, caller, id).await?;
    let left = engine::leave(&state.db, &found.entry, &caller.audit(), state.clock.now()).await?;
    if !left {
        return Err(DomainError::Conflict(format!(
            "This entry is {} already.",
            found.entry.status
        )));
    }
    state.cache.invalidate(&[Family::Tickets]).await;
    Ok(())
}

/// Accepts an open offer (its person only): the registration, with the
/// ticket's payment window if it has one.
#[instrument(name = "accept_offer", skip_all, fields(user = %caller.username))]
pub async fn accept(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> DomainResult<registration::Model> {
    let found = get(state, caller, id).await?;
    if found.entry.user_id != caller.id {
        return Err(DomainError::Forbidden);
    }
    let mut errors = FieldErrors::default();
    let rules: TicketRules = check_ticket(state, found.entry.ticket_id, &mut errors)
        .await?
        .ok_or(DomainError::NotFound)?;
    let now = state.clock.now();
    let (status, hold_expires_at) = rules.standing(rules.price_minor, now);
    let new = registration::Model {
        id: Uuid::now_v7(),
        ticket_id: rules.ticket_id,
        user_id: caller.id,
        event_id: rules.event_id,
        registered_at: now,
        short_code: crate::ticket_codes::new_short_code(),
        status: status.to_owned(),
        hold_expires_at,
        voucher_id: None,
        amount_due_minor: Some(rules.price_minor),
    };
    let accepted = engine::accept(&state.db, found.entry.id, new, &caller.audit(), now).await?;
    state.cache.invalidate(&[Family::Tickets]).await;
    match accepted {
        Ok(created) => {
            tracing::info!(
                "{} accepted a waiting-list offer: registration {}",
                caller.username,
                created.id
            );
            Ok(created)
        }
        Err(AcceptRefused::Lapsed) => Err(DomainError::Conflict("The offer has expired.".into())),
        Err(AcceptRefused::NotOffered) => Err(DomainError::Conflict(
            "There is no open offer on this entry.".into(),
        )),
    }
}

/// Offers the seats a ticket has free to the people waiting for it (after
/// a cancellation, an expiry, a raised quota). A failure is logged: the
/// workers' pass offers them anyway.
pub async fn offer_freed_seats(state: &AppState, ticket_id: Uuid) {
    match engine::sweep_ticket(&state.db, ticket_id, state.clock.now()).await {
        Ok(swept) if swept.offered + swept.lapsed + swept.closed > 0 => {
            state.cache.invalidate(&[Family::Tickets]).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("waiting list of ticket {ticket_id} not swept now: {e}"),
    }
}
