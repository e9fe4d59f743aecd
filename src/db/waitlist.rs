//! Waiting lists (API.md §9), written so that seats stay honest: an open
//! offer holds a seat (`offered` on the ticket and its event, counted
//! against the quota with `sold` and `registered`), and while anyone waits
//! for a ticket no public registration takes a freed seat
//! (`registration_writer::take_ticket` and the batch statement refuse), so
//! every freed seat goes to the first person waiting. Every change locks the
//! ticket, then its event, then the entries (the order of every writer).
//!
//! Seats are offered by `sweep_ticket`: right after a seat frees (a
//! cancellation, an expired hold, a raised quota) and on every worker pass,
//! which also lapses offers past their time (the seat goes to the next
//! person) and closes the list once sales have closed or the event has
//! started — no offer is ever made then.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::Database;
use super::audit::{self, Action, Entry};
use super::entities::{event, registration, ticket, waitlist_entry};

pub const WAITING: &str = "waiting";
pub const OFFERED: &str = "offered";
pub const ACCEPTED: &str = "accepted";
pub const EXPIRED: &str = "expired";
pub const LEFT: &str = "left";
pub const CLOSED: &str = "closed";

/// The mail offering a seat (its `payload`: the entry's id).
pub const KIND_WAITLIST_OFFER: &str = "waitlist_offer";

/// Why someone may not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefused {
    NoWaitingList,
    StillAvailable,
    SalesClosed,
    Registered,
    AlreadyIn,
    Gone,
}

/// Why an offer may not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptRefused {
    NotOffered,
    Lapsed,
}

/// Locks a ticket and its event (PostgreSQL; SQLite's writer lock
/// serialises anyway) and reads both.
async fn lock_ticket(
    db: &impl ConnectionTrait,
    ticket_id: Uuid,
) -> Result<Option<(ticket::Model, event::Model)>, DbErr> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let mut t = ticket::Entity::find_by_id(ticket_id);
    if postgres {
        t = t.lock_exclusive();
    }
    let Some(t) = t.one(db).await? else {
        return Ok(None);
    };
    let mut e = event::Entity::find_by_id(t.event_id);
    if postgres {
        e = e.lock_exclusive();
    }
    Ok(e.one(db).await?.map(|e| (t, e)))
}

/// Seats a ticket has free now (its own room and its event's).
fn room(t: &ticket::Model, e: &event::Model) -> i64 {
    let free = std::cmp::min(
        t.quota - t.sold - t.offered,
        e.quota - e.registered - e.offered,
    );
    std::cmp::max(free, 0)
}

/// Whether a ticket still sells: its event scheduled and not started, its
/// sales window open.
fn selling(t: &ticket::Model, e: &event::Model, now: DateTime<Utc>) -> bool {
    e.status == "scheduled" && e.start_time > now && t.sales_end > now
}

async fn move_offered(db: &impl ConnectionTrait, t: &ticket::Model, by: i64) -> Result<(), DbErr> {
    ticket::Entity::update_many()
        .col_expr(
            ticket::Column::Offered,
            Expr::col(ticket::Column::Offered).add(by),
        )
        .filter(ticket::Column::Id.eq(t.id))
        .exec(db)
        .await?;
    event::Entity::update_many()
        .col_expr(
            event::Column::Offered,
            Expr::col(event::Column::Offered).add(by),
        )
        .filter(event::Column::Id.eq(t.event_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Puts someone in line for a sold-out ticket: at the end (the order of
/// joining, decided under the ticket's lock).
pub async fn join(
    db: &Database,
    ticket_id: Uuid,
    user_id: Uuid,
    context: &audit::Context,
    now: DateTime<Utc>,
) -> Result<Result<waitlist_entry::Model, JoinRefused>, DbErr> {
    let txn = db.begin_write().await?;
    let Some((t, e)) = lock_ticket(&*txn, ticket_id).await? else {
        return Ok(Err(JoinRefused::Gone));
    };
    if !t.waitlist {
        return Ok(Err(JoinRefused::NoWaitingList));
    }
    if !selling(&t, &e, now) {
        return Ok(Err(JoinRefused::SalesClosed));
    }
    let registered = registration::Entity::find()
        .filter(registration::Column::TicketId.eq(t.id))
        .filter(registration::Column::UserId.eq(user_id))
        .filter(registration::Column::Status.ne(super::registration_writer::EXPIRED))
        .one(&*txn)
        .await?;
    if registered.is_some() {
        return Ok(Err(JoinRefused::Registered));
    }
    let entries = waitlist_entry::Entity::find().filter(waitlist_entry::Column::TicketId.eq(t.id));
    if entries
        .clone()
        .filter(waitlist_entry::Column::UserId.eq(user_id))
        .one(&*txn)
        .await?
        .is_some()
    {
        return Ok(Err(JoinRefused::AlreadyIn));
    }
    let someone_waits = entries
        .clone()
        .filter(waitlist_entry::Column::Status.eq(WAITING))
        .one(&*txn)
        .await?
        .is_some();
    if room(&t, &e) > 0 && !someone_waits {
        return Ok(Err(JoinRefused::StillAvailable));
    }
    let last: Option<i64> = entries
        .select_only()
        .column_as(waitlist_entry::Column::Seq.max(), "last")
        .into_tuple::<Option<i64>>()
        .one(&*txn)
        .await?
        .flatten();
    let created = waitlist_entry::ActiveModel {
        id: Set(Uuid::now_v7()),
        ticket_id: Set(t.id),
        event_id: Set(t.event_id),
        user_id: Set(user_id),
        seq: Set(last.unwrap_or(0) + 1),
        status: Set(WAITING.into()),
        offer_expires_at: Set(None),
        registration_id: Set(None),
        created_at: Set(now),
    }
    .insert(&*txn)
    .await;
    let created = match created {
        Ok(c) => c,
        Err(e) if super::errors::is_unique_violation(&e) => {
            return Ok(Err(JoinRefused::AlreadyIn));
        }
        Err(e) if super::errors::is_fk_violation(&e) => return Ok(Err(JoinRefused::Gone)),
        Err(e) => return Err(e),
    };
    audit::record_one(
        &*txn,
        context,
        Entry::created(Action::WaitlistJoined, &created),
    )
    .await?;
    txn.commit().await?;
    Ok(Ok(created))
}

/// Takes someone out of line; an open offer's seat goes to the next person.
/// False when the entry had already ended.
pub async fn leave(
    db: &Database,
    entry: &waitlist_entry::Model,
    context: &audit::Context,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin_write().await?;
    let Some((t, _)) = lock_ticket(&*txn, entry.ticket_id).await? else {
        return Ok(false);
    };
    let Some(found) = waitlist_entry::Entity::find_by_id(entry.id)
        .one(&*txn)
        .await?
    else {
        return Ok(false);
    };
    if found.status != WAITING && found.status != OFFERED {
        return Ok(false);
    }
    if found.status == OFFERED {
        move_offered(&*txn, &t, -1).await?;
    }
    let after = set_status(&*txn, &found, LEFT, None).await?;
    audit::record_one(
        &*txn,
        context,
        Entry::updated(Action::WaitlistLeft, &found, &after),
    )
    .await?;
    txn.commit().await?;
    sweep_ticket(db, entry.ticket_id, now).await?;
    Ok(true)
}

async fn set_status(
    db: &impl ConnectionTrait,
    found: &waitlist_entry::Model,
    status: &str,
    offer_expires_at: Option<DateTime<Utc>>,
) -> Result<waitlist_entry::Model, DbErr> {
    let mut model: waitlist_entry::ActiveModel = found.clone().into();
    model.status = Set(status.to_owned());
    model.offer_expires_at = Set(offer_expires_at);
    model.update(db).await
}

/// Turns an open offer into the registration `new` (its standing, hold and
/// amount due decided by the caller), in one transaction: the offer's seat
/// becomes the registration's, with its confirmation mail and audit entries.
pub async fn accept(
    db: &Database,
    entry_id: Uuid,
    new: registration::Model,
    context: &audit::Context,
    now: DateTime<Utc>,
) -> Result<Result<registration::Model, AcceptRefused>, DbErr> {
    let txn = db.begin_write().await?;
    let Some((t, _)) = lock_ticket(&*txn, new.ticket_id).await? else {
        return Ok(Err(AcceptRefused::NotOffered));
    };
    let Some(found) = waitlist_entry::Entity::find_by_id(entry_id)
        .one(&*txn)
        .await?
    else {
        return Ok(Err(AcceptRefused::NotOffered));
    };
    if found.status != OFFERED {
        return Ok(Err(AcceptRefused::NotOffered));
    }
    if found.offer_expires_at.is_none_or(|until| until <= now) {
        return Ok(Err(AcceptRefused::Lapsed));
    }
    // The offer's seat becomes the registration's: `offered` down, `sold`
    // and `registered` up, under the locks already held.
    move_offered(&*txn, &t, -1).await?;
    let created = registration::ActiveModel::from(new).insert(&*txn).await?;
    ticket::Entity::update_many()
        .col_expr(
            ticket::Column::Sold,
            Expr::col(ticket::Column::Sold).add(1i64),
        )
        .filter(ticket::Column::Id.eq(t.id))
        .exec(&*txn)
        .await?;
    event::Entity::update_many()
        .col_expr(
            event::Column::Registered,
            Expr::col(event::Column::Registered).add(1i64),
        )
        .filter(event::Column::Id.eq(t.event_id))
        .exec(&*txn)
        .await?;
    super::outbox::enqueue_confirmation(&*txn, created.id, created.registered_at).await?;
    let mut accepted: waitlist_entry::ActiveModel = found.clone().into();
    accepted.status = Set(ACCEPTED.into());
    accepted.registration_id = Set(Some(created.id));
    let accepted = accepted.update(&*txn).await?;
    audit::record(
        &*txn,
        context,
        [
            Entry::created(Action::RegistrationCreated, &created),
            Entry::updated(Action::WaitlistAccepted, &found, &accepted),
        ],
    )
    .await?;
    txn.commit().await?;
    Ok(Ok(created))
}

/// What one sweep of a ticket did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub offered: usize,
    pub lapsed: usize,
    pub closed: usize,
}

/// Lapses a ticket's offers past their time, closes its list when it no
/// longer sells, and offers its free seats to the first people waiting (a
/// mail each), in one transaction under the ticket's and event's locks.
pub async fn sweep_ticket(
    db: &Database,
    ticket_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Swept, DbErr> {
    let mut swept = Swept::default();
    let txn = db.begin_write().await?;
    let Some((t, e)) = lock_ticket(&*txn, ticket_id).await? else {
        return Ok(swept);
    };
    let open = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::TicketId.eq(t.id))
        .filter(waitlist_entry::Column::Status.is_in([WAITING, OFFERED]))
        .order_by_asc(waitlist_entry::Column::Seq)
        .all(&*txn)
        .await?;
    if open.is_empty() {
        return Ok(swept);
    }
    let system = audit::Context::system();
    let mut entries = Vec::new();
    let mut released = 0i64;
    let selling = selling(&t, &e, now);
    let mut waiting = Vec::new();
    for entry in open {
        let lapsed = entry.status == OFFERED && entry.offer_expires_at.is_none_or(|u| u <= now);
        if !selling {
            if entry.status == OFFERED {
                released += 1;
            }
            let after = set_status(&*txn, &entry, CLOSED, None).await?;
            entries.push(Entry::updated(Action::WaitlistClosed, &entry, &after));
            swept.closed += 1;
        } else if lapsed {
            released += 1;
            let after = set_status(&*txn, &entry, EXPIRED, entry.offer_expires_at).await?;
            entries.push(Entry::updated(Action::WaitlistExpired, &entry, &after));
            swept.lapsed += 1;
        } else if entry.status == WAITING {
            waiting.push(entry);
        }
    }
    if released > 0 {
        move_offered(&*txn, &t, -released).await?;
    }
    if selling {
        // The room as it is now, the released offers included.
        let free = std::cmp::max(
            std::cmp::min(
                t.quota - t.sold - (t.offered - released),
                e.quota - e.registered - (e.offered - released),
            ),
            0,
        );
        let until = now + chrono::Duration::hours(i64::from(t.waitlist_offer_hours));
        let chosen: Vec<_> = waiting
            .into_iter()
            .take(usize::try_from(free).unwrap_or(0))
            .collect();
        if !chosen.is_empty() {
            move_offered(&*txn, &t, chosen.len() as i64).await?;
        }
        for entry in chosen {
            let after = set_status(&*txn, &entry, OFFERED, Some(until)).await?;
            enqueue_offer_mail(&*txn, &after, now).await?;
            entries.push(Entry::updated(Action::WaitlistOffered, &entry, &after));
            swept.offered += 1;
        }
    }
    audit::record(&*txn, &system, entries).await?;
    txn.commit().await?;
    Ok(swept)
}

/// Sweeps every ticket with someone in line (the workers' pass).
pub async fn sweep(db: &Database, now: DateTime<Utc>) -> Result<Swept, DbErr> {
    let tickets: Vec<Uuid> = waitlist_entry::Entity::find()
        .select_only()
        .column(waitlist_entry::Column::TicketId)
        .distinct()
        .filter(waitlist_entry::Column::Status.is_in([WAITING, OFFERED]))
        .into_tuple()
        .all(db.conn())
        .await?;
    let mut total = Swept::default();
    for ticket_id in tickets {
        let s = sweep_ticket(db, ticket_id, now).await?;
        total.offered += s.offered;
        total.lapsed += s.lapsed;
        total.closed += s.closed;
    }
    Ok(total)
}

async fn enqueue_offer_mail(
    db: &impl ConnectionTrait,
    entry: &waitlist_entry::Model,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let key = format!(
        "{KIND_WAITLIST_OFFER}:{}:{}",
        entry.id,
        now.timestamp_micros()
    );
    super::outbox::mail_job(
        KIND_WAITLIST_OFFER,
        None,
        key,
        Some(entry.id.to_string()),
        now,
    )
    .insert(db)
    .await
    .map(|_| ())
}

/// The place in line of each waiting entry given (1 = next), among those
/// still waiting for the same ticket.
pub async fn positions(
    db: &impl ConnectionTrait,
    entries: &[waitlist_entry::Model],
) -> Result<std::collections::HashMap<Uuid, i64>, DbErr> {
    let mut out = std::collections::HashMap::new();
    for entry in entries.iter().filter(|e| e.status == WAITING) {
        let ahead = waitlist_entry::Entity::find()
            .filter(waitlist_entry::Column::TicketId.eq(entry.ticket_id))
            .filter(waitlist_entry::Column::Status.eq(WAITING))
            .filter(waitlist_entry::Column::Seq.lt(entry.seq))
            .count(db)
            .await?;
        out.insert(entry.id, i64::try_from(ahead).unwrap_or(0) + 1);
    }
    Ok(out)
}

/// Gives back the seats a user's open offers held (their account is being
/// deleted, its entries with it), in the deletion's transaction.
pub async fn release_offers_of(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    let offered = waitlist_entry::Entity::find()
        .filter(waitlist_entry::Column::UserId.eq(user_id))
        .filter(waitlist_entry::Column::Status.eq(OFFERED))
        .all(db)
        .await?;
    for entry in offered {
        if let Some(t) = ticket::Entity::find_by_id(entry.ticket_id).one(db).await? {
            move_offered(db, &t, -1).await?;
        }
        set_status(db, &entry, LEFT, None).await?;
    }
    Ok(())
}
