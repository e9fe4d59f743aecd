//! Writing a registration with its capacity counters and confirmation job:
//! the domain (`domain::registrations`) decides who may register; this
//! module writes it so that capacity is decided under the rows' locks.
//!
//! On SQLite one transaction per registration (its writer lock serialises
//! writers). On PostgreSQL registrations are combined: the requests waiting
//! for the same ticket go to the database together, as one statement and one
//! commit.
//!
//! A popular ticket is one hot row. Every registration must lock it, so they
//! commit one after another, each paying a statement and a WAL flush. Here
//! each process queues its registrations per stripe of tickets; one task at a
//! time drains a stripe's queue and writes each ticket's waiting
//! registrations in one statement that admits, in arrival order, as many as
//! the ticket and its event still have room for. Capacity is still decided
//! under the rows' locks inside PostgreSQL, so several processes remain
//! safe. A batch that fails as a whole (a duplicate inside it, a user deleted
//! meanwhile…) is redone one registration at a time — the same statement for
//! one — and each gets its own answer.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Arc;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement, Value,
};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::Database;
use super::audit::{self, Action, Actor, Entry};
use super::entities::{event, registration, registration_revocation, ticket, voucher};
use super::errors::{DbFailure, classify, is_unreachable};
use super::outbox::{KIND_CONFIRMATION, confirmation_key, enqueue_confirmation};

/// Why a registration was not written.
#[derive(Debug)]
pub enum WriteRefused {
    /// The ticket or its event has no room left.
    SoldOut,
    /// No room, but some of the event's holds are overdue: their seats are
    /// free once they are expired (then the registration is tried again).
    HeldByOverdue,
    /// The user already holds a registration on this ticket.
    Duplicate,
    /// The ticket, its event or the user was deleted meanwhile.
    Gone,
    /// Another registration drew the same short code (drawn again).
    CodeTaken,
    /// Its voucher reached `max_uses` (or its end) meanwhile.
    VoucherUsedUp,
    Failed(DbErr),
}

impl From<DbErr> for WriteRefused {
    fn from(err: DbErr) -> Self {
        match classify(&err) {
            DbFailure::UniqueViolation(name)
                if name
                    .as_deref()
                    .unwrap_or(&err.to_string())
                    .contains("short_code") =>
            {
                WriteRefused::CodeTaken
            }
            DbFailure::UniqueViolation(_) => WriteRefused::Duplicate,
            DbFailure::ForeignKeyViolation => WriteRefused::Gone,
            _ => WriteRefused::Failed(err),
        }
    }
}

/// Writes a new registration with its confirmation job, taking one place on
/// its ticket and event.
/// Its audit entry (`registration.created`, by `audit`) is written with it.
pub async fn register(
    db: &Database,
    queues: &Arc<Queues>,
    mut new: registration::Model,
    audit: audit::Context,
) -> Result<registration::Model, WriteRefused> {
    // A short code is 50 random bits: drawing one already taken happens
    // about once in a billion registrations at a million; it is drawn again.
    let mut draws = 0;
    loop {
        // A voucher's use is a counter of its own, taken in the same
        // transaction: those registrations are written one by one.
        let written = match db.backend() {
            DbBackend::Postgres if new.voucher_id.is_none() => {
                register_batched(db, queues, new.clone(), audit.clone()).await
            }
            _ => insert_in_transaction(db, &new, &audit).await,
        };
        draws += 1;
        match written {
            Err(WriteRefused::CodeTaken) if draws < 5 => {
                new.short_code = crate::ticket_codes::new_short_code();
            }
            other => return other,
        }
    }
}

/// The same as one transaction (SQLite: its writer lock serialises writers,
/// so there is no hot-row wait to shorten). Inserts first, the guarded
/// counters last, so the ticket and event rows stay locked until the commit
/// just after.
async fn insert_in_transaction(
    db: &Database,
    new: &registration::Model,
    context: &audit::Context,
) -> Result<registration::Model, WriteRefused> {
    let txn = db.begin_write().await?;
    let created = registration::ActiveModel::from(new.clone())
        .insert(&*txn)
        .await?;
    // The confirmation mail is queued in the same transaction: it exists if
    // and only if the registration does; a worker sends it.
    enqueue_confirmation(&*txn, created.id, created.registered_at).await?;
    if !take_ticket(&*txn, created.ticket_id).await? || !take_event(&*txn, created.event_id).await?
    {
        let overdue = registration::Entity::find()
            .filter(registration::Column::EventId.eq(created.event_id))
            .filter(registration::Column::Status.eq(AWAITING_PAYMENT))
            .filter(registration::Column::HoldExpiresAt.lte(created.registered_at))
            .one(&*txn)
            .await?
            .is_some();
        return Err(if overdue {
            WriteRefused::HeldByOverdue
        } else {
            WriteRefused::SoldOut
        });
    }
    if let Some(voucher) = created.voucher_id
        && !take_voucher(&*txn, voucher, created.registered_at).await?
    {
        return Err(WriteRefused::VoucherUsedUp);
    }
    audit::record_one(
        &*txn,
        context,
        Entry::created(Action::RegistrationCreated, &created),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// Takes one place on a ticket; false when it is sold out — its open
/// waiting-list offers hold seats, and while anyone waits for it a free seat
/// is theirs, not the public's.
pub async fn take_ticket(db: &impl ConnectionTrait, ticket_id: Uuid) -> Result<bool, DbErr> {
    use sea_orm::sea_query::{Alias, Query};
    let waiting = Query::select()
        .expr(Expr::val(1))
        .from(Alias::new("waitlist_entries"))
        .and_where(Expr::col(Alias::new("ticket_id")).eq(ticket_id))
        .and_where(Expr::col(Alias::new("status")).eq("waiting"))
        .to_owned();
    let taken = ticket::Entity::update_many()
        .col_expr(
            ticket::Column::Sold,
            Expr::col(ticket::Column::Sold).add(1i64),
        )
        .filter(ticket::Column::Id.eq(ticket_id))
        .filter(
            Expr::col(ticket::Column::Sold)
                .add(Expr::col(ticket::Column::Offered))
                .lt(Expr::col(ticket::Column::Quota)),
        )
        .filter(Expr::exists(waiting).not())
        .exec(db)
        .await?;
    Ok(taken.rows_affected > 0)
}

/// Takes one place in an event (all its tickets); false when it is full.
pub async fn take_event(db: &impl ConnectionTrait, event_id: Uuid) -> Result<bool, DbErr> {
    let taken = event::Entity::update_many()
        .col_expr(
            event::Column::Registered,
            Expr::col(event::Column::Registered).add(1i64),
        )
        .filter(event::Column::Id.eq(event_id))
        .filter(
            Expr::col(event::Column::Registered)
                .add(Expr::col(event::Column::Offered))
                .lt(Expr::col(event::Column::Quota)),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected > 0)
}

/// Takes one use of a voucher (after the ticket and event: the order of
/// every writer); false when it is used up or past its end.
pub async fn take_voucher(
    db: &impl ConnectionTrait,
    voucher_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, DbErr> {
    let taken = voucher::Entity::update_many()
        .col_expr(
            voucher::Column::Uses,
            Expr::col(voucher::Column::Uses).add(1),
        )
        .filter(voucher::Column::Id.eq(voucher_id))
        .filter(
            sea_orm::Condition::any()
                .add(voucher::Column::MaxUses.is_null())
                .add(Expr::col(voucher::Column::Uses).lt(Expr::col(voucher::Column::MaxUses))),
        )
        .filter(
            sea_orm::Condition::any()
                .add(voucher::Column::ValidUntil.is_null())
                .add(voucher::Column::ValidUntil.gt(now)),
        )
        .exec(db)
        .await?;
    Ok(taken.rows_affected > 0)
}

/// Gives back `n` uses of a voucher (an expired or deleted registration).
pub async fn release_voucher(
    db: &impl ConnectionTrait,
    voucher_id: Uuid,
    n: i32,
) -> Result<(), DbErr> {
    voucher::Entity::update_many()
        .col_expr(
            voucher::Column::Uses,
            Expr::col(voucher::Column::Uses).sub(n),
        )
        .filter(voucher::Column::Id.eq(voucher_id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn release_ticket(db: &impl ConnectionTrait, ticket_id: Uuid) -> Result<(), DbErr> {
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

pub async fn release_event(db: &impl ConnectionTrait, event_id: Uuid) -> Result<(), DbErr> {
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

/// Deletes a registration (its payments cascade) and gives its place back
/// to the ticket and event. Deleting what another transaction already
/// deleted releases nothing (false).
pub async fn delete_and_release(
    db: &impl ConnectionTrait,
    registration_id: Uuid,
) -> Result<bool, DbErr> {
    // The registration first, then its counters: an expiry (which locks
    // holds before counters too) cannot release its seat a second time.
    let mut select = registration::Entity::find_by_id(registration_id);
    if db.get_database_backend() == DbBackend::Postgres {
        select = sea_orm::QuerySelect::lock_exclusive(select);
    }
    let Some(found) = select.one(db).await? else {
        return Ok(false);
    };
    let deleted = registration::Entity::delete_by_id(registration_id)
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Ok(false);
    }
    // An expired hold gave its seat back when it expired.
    if found.status != EXPIRED {
        release_ticket(db, found.ticket_id).await?;
        release_event(db, found.event_id).await?;
        if let Some(voucher) = found.voucher_id {
            release_voucher(db, voucher, 1).await?;
        }
    }
    revoke(db, &[(found.id, found.event_id)]).await?;
    Ok(true)
}

/// Records that these registrations' ticket codes no longer admit anyone to
/// their events (deleted, or moved elsewhere), for offline door apps.
pub async fn revoke(db: &impl ConnectionTrait, revoked: &[(Uuid, Uuid)]) -> Result<(), DbErr> {
    if revoked.is_empty() {
        return Ok(());
    }
    let now = super::now();
    for chunk in revoked.chunks(500) {
        registration_revocation::Entity::insert_many(chunk.iter().map(
            |(registration_id, event_id)| registration_revocation::ActiveModel {
                registration_id: sea_orm::Set(*registration_id),
                event_id: sea_orm::Set(*event_id),
                revoked_at: sea_orm::Set(now),
            },
        ))
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                registration_revocation::Column::RegistrationId,
                registration_revocation::Column::EventId,
            ])
            .update_column(registration_revocation::Column::RevokedAt)
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// A registration's standing (API.md §9).
pub const CONFIRMED: &str = "confirmed";
pub const AWAITING_PAYMENT: &str = "awaiting_payment";
pub const EXPIRED: &str = "expired";

/// Whether a registration holds its seat at `now`: confirmed, or awaiting
/// payment within its window. (An overdue hold is already free, whether or
/// not a sweep has marked it `expired` yet.)
pub fn holds_seat(r: &registration::Model, now: chrono::DateTime<chrono::Utc>) -> bool {
    match r.status.as_str() {
        EXPIRED => false,
        AWAITING_PAYMENT => r.hold_expires_at.is_none_or(|until| until > now),
        _ => true,
    }
}

/// The most overdue holds one expiry transaction takes.
pub const EXPIRY_BATCH: u64 = 500;

/// Expires overdue holds as of `now` — those of one event, or of every
/// event — at most `EXPIRY_BATCH` in one transaction: each becomes
/// `expired`, gives its seat back to its ticket and event, has its code
/// revoked, its person a mail, and an audit entry (`registration.expired`,
/// by the system). The holds are locked first, then their tickets and
/// events in id order. The expired ones.
pub async fn expire_overdue(
    db: &Database,
    event_id: Option<Uuid>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<registration::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let overdue = || {
        let mut select = registration::Entity::find()
            .filter(registration::Column::Status.eq(AWAITING_PAYMENT))
            .filter(registration::Column::HoldExpiresAt.lte(now));
        if let Some(event_id) = event_id {
            select = select.filter(registration::Column::EventId.eq(event_id));
        }
        select
    };
    // Outside the transaction: nothing overdue (the usual case) costs one
    // indexed read and no lock.
    let any = overdue()
        .select_only()
        .column(registration::Column::Id)
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db.conn())
        .await?;
    if any.is_none() {
        return Ok(Vec::new());
    }
    let postgres = db.backend() == DbBackend::Postgres;
    let txn = db.begin_write().await?;
    // The holds first (a payment, a cancellation or a move locks its
    // registration before any counter too), in one order for every expiry
    // (so two never deadlock): one being paid right now is waited for, then
    // read again (paid: no longer overdue).
    let mut locked = overdue()
        .order_by_asc(registration::Column::HoldExpiresAt)
        .order_by_asc(registration::Column::Id)
        .limit(EXPIRY_BATCH);
    if postgres {
        locked = locked.lock_exclusive();
    }
    let still = locked.all(&*txn).await?;
    if still.is_empty() {
        return Ok(Vec::new());
    }
    if postgres {
        let mut tickets: Vec<Uuid> = still.iter().map(|r| r.ticket_id).collect();
        tickets.sort();
        tickets.dedup();
        let mut events: Vec<Uuid> = still.iter().map(|r| r.event_id).collect();
        events.sort();
        events.dedup();
        ticket::Entity::find()
            .filter(ticket::Column::Id.is_in(tickets))
            .order_by_asc(ticket::Column::Id)
            .lock_exclusive()
            .all(&*txn)
            .await?;
        event::Entity::find()
            .filter(event::Column::Id.is_in(events))
            .order_by_asc(event::Column::Id)
            .lock_exclusive()
            .all(&*txn)
            .await?;
    }
    let ids: Vec<Uuid> = still.iter().map(|r| r.id).collect();
    registration::Entity::update_many()
        .col_expr(registration::Column::Status, Expr::value(EXPIRED))
        .filter(registration::Column::Id.is_in(ids))
        .exec(&*txn)
        .await?;
    let mut per_ticket: std::collections::BTreeMap<Uuid, i64> = Default::default();
    let mut per_event: std::collections::BTreeMap<Uuid, i64> = Default::default();
    for r in &still {
        *per_ticket.entry(r.ticket_id).or_default() += 1;
        *per_event.entry(r.event_id).or_default() += 1;
    }
    for (ticket_id, n) in per_ticket {
        ticket::Entity::update_many()
            .col_expr(ticket::Column::Sold, Expr::col(ticket::Column::Sold).sub(n))
            .filter(ticket::Column::Id.eq(ticket_id))
            .exec(&*txn)
            .await?;
    }
    for (event_id, n) in per_event {
        event::Entity::update_many()
            .col_expr(
                event::Column::Registered,
                Expr::col(event::Column::Registered).sub(n),
            )
            .filter(event::Column::Id.eq(event_id))
            .exec(&*txn)
            .await?;
    }
    let mut per_voucher: std::collections::BTreeMap<Uuid, i32> = Default::default();
    for r in &still {
        if let Some(voucher) = r.voucher_id {
            *per_voucher.entry(voucher).or_default() += 1;
        }
    }
    for (voucher, n) in per_voucher {
        release_voucher(&*txn, voucher, n).await?;
    }
    let pairs: Vec<(Uuid, Uuid)> = still.iter().map(|r| (r.id, r.event_id)).collect();
    revoke(&*txn, &pairs).await?;
    let mut entries = Vec::with_capacity(still.len());
    let mut expired = Vec::with_capacity(still.len());
    for before in still {
        let after = registration::Model {
            status: EXPIRED.into(),
            ..before.clone()
        };
        super::outbox::enqueue_hold_expired(&*txn, after.id, now).await?;
        entries.push(Entry::updated(Action::RegistrationExpired, &before, &after));
        expired.push(after);
    }
    audit::record(&*txn, &audit::Context::system(), entries).await?;
    txn.commit().await?;
    Ok(expired)
}

/// Whether a ticket and its event both have a seat free now (a registration
/// refused as sold out may try again: another process expired the holds it
/// ran into).
pub async fn has_room(db: &Database, ticket_id: Uuid) -> Result<bool, DbErr> {
    let Some((t, Some(e))) = ticket::Entity::find_by_id(ticket_id)
        .find_also_related(event::Entity)
        .one(db.conn())
        .await?
    else {
        return Ok(false);
    };
    Ok(t.sold + t.offered < t.quota && e.registered + e.offered < e.quota)
}

/// Gives an expired registration its seat back with what `new` (the
/// registration asked for now) would have had — standing, hold, voucher,
/// amount due: `None` when the ticket or its event has no room (or it is
/// no longer expired). Its code admits again.
pub async fn revive(
    db: &Database,
    found: &registration::Model,
    new: &registration::Model,
    context: &audit::Context,
) -> Result<Option<registration::Model>, WriteRefused> {
    let txn = db.begin_write().await?;
    if !take_ticket(&*txn, found.ticket_id).await? || !take_event(&*txn, found.event_id).await? {
        return Ok(None);
    }
    if let Some(voucher) = new.voucher_id
        && !take_voucher(&*txn, voucher, new.registered_at).await?
    {
        return Err(WriteRefused::VoucherUsedUp);
    }
    let (status, hold_expires_at) = (new.status.as_str(), new.hold_expires_at);
    let revived = registration::Entity::update_many()
        .col_expr(registration::Column::Status, Expr::value(status))
        .col_expr(
            registration::Column::HoldExpiresAt,
            Expr::value(hold_expires_at),
        )
        .col_expr(registration::Column::VoucherId, Expr::value(new.voucher_id))
        .col_expr(
            registration::Column::AmountDueMinor,
            Expr::value(new.amount_due_minor),
        )
        .filter(registration::Column::Id.eq(found.id))
        .filter(registration::Column::Status.eq(EXPIRED))
        .exec(&*txn)
        .await?;
    if revived.rows_affected == 0 {
        return Ok(None);
    }
    registration_revocation::Entity::delete_many()
        .filter(registration_revocation::Column::RegistrationId.eq(found.id))
        .exec(&*txn)
        .await?;
    let after = registration::Model {
        status: status.to_owned(),
        hold_expires_at,
        voucher_id: new.voucher_id,
        amount_due_minor: new.amount_due_minor,
        ..found.clone()
    };
    audit::record_one(
        &*txn,
        context,
        Entry::updated(Action::RegistrationUpdated, found, &after),
    )
    .await?;
    txn.commit().await?;
    Ok(Some(after))
}

/// Tickets share one of this many queues.
const STRIPES: usize = 64;
/// The most registrations written by one statement.
const MAX_BATCH: usize = 64;

struct Pending {
    new: registration::Model,
    audit: audit::Context,
    reply: oneshot::Sender<Result<registration::Model, WriteRefused>>,
}

struct Stripe {
    pending: Mutex<Vec<Pending>>,
    /// Whether a task is draining this stripe.
    draining: AtomicBool,
}

/// One application's queues (not a global: two applications in one process,
/// as in the tests, have different databases).
pub struct Queues {
    stripes: [Stripe; STRIPES],
}

impl Default for Queues {
    fn default() -> Self {
        Queues {
            stripes: std::array::from_fn(|_| Stripe {
                pending: Mutex::new(Vec::new()),
                draining: AtomicBool::new(false),
            }),
        }
    }
}

/// Writes one registration (with its confirmation job and both counters),
/// possibly together with others for the same ticket.
async fn register_batched(
    db: &Database,
    queues: &Arc<Queues>,
    new: registration::Model,
    audit: audit::Context,
) -> Result<registration::Model, WriteRefused> {
    let index = (new.ticket_id.as_u128() % STRIPES as u128) as usize;
    let stripe = &queues.stripes[index];
    let (reply, answer) = oneshot::channel();
    lock(&stripe.pending).push(Pending { new, audit, reply });
    if !stripe.draining.swap(true, Ordering::AcqRel) {
        // Its own task: a client that goes away must not stop a batch that
        // carries other clients' registrations.
        tokio::spawn(drain(db.clone(), queues.clone(), index));
    }
    answer.await.unwrap_or_else(|_| {
        Err(WriteRefused::Failed(DbErr::Custom(
            "the registration queue stopped before answering".into(),
        )))
    })
}

fn lock(pending: &Mutex<Vec<Pending>>) -> std::sync::MutexGuard<'_, Vec<Pending>> {
    pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes what is queued on a stripe until the queue is empty.
async fn drain(db: Database, queues: Arc<Queues>, index: usize) {
    let stripe = &queues.stripes[index];
    loop {
        let queued = std::mem::take(&mut *lock(&stripe.pending));
        if queued.is_empty() {
            stripe.draining.store(false, Ordering::Release);
            // Something queued after the take but before the store found the
            // flag still set and left it to us.
            if lock(&stripe.pending).is_empty() || stripe.draining.swap(true, Ordering::AcqRel) {
                return;
            }
            continue;
        }
        // Per ticket, in arrival order, at most MAX_BATCH per statement.
        let mut by_ticket: Vec<(Uuid, Vec<Pending>)> = Vec::new();
        for item in queued {
            match by_ticket
                .iter_mut()
                .find(|(ticket, group)| *ticket == item.new.ticket_id && group.len() < MAX_BATCH)
            {
                Some((_, group)) => group.push(item),
                None => by_ticket.push((item.new.ticket_id, vec![item])),
            }
        }
        // The database unreachable: every registration waiting now (and
        // those queued meanwhile) is answered at once, not after one more
        // connection timeout each.
        let mut unreachable: Option<DbErr> = None;
        for (ticket_id, group) in by_ticket {
            match &unreachable {
                Some(err) => fail_all(group, err),
                None => unreachable = write_group(&db, ticket_id, group).await,
            }
        }
        if let Some(err) = unreachable {
            fail_all(std::mem::take(&mut *lock(&stripe.pending)), &err);
        }
    }
}

/// Answers each registration with the database's failure.
fn fail_all(group: impl IntoIterator<Item = Pending>, err: &DbErr) {
    for item in group {
        let _ = item.reply.send(Err(WriteRefused::Failed(err.clone())));
    }
}

/// Writes a ticket's waiting registrations and answers each; the error when
/// the database could not be reached (everyone in the group is answered).
async fn write_group(db: &Database, ticket_id: Uuid, group: Vec<Pending>) -> Option<DbErr> {
    if group.len() > 1 {
        match insert_batch(db, ticket_id, &group).await {
            Ok(outcomes) => {
                for (item, outcome) in group.into_iter().zip(outcomes) {
                    // The client may have gone away: nothing to tell it.
                    let _ = item.reply.send(outcome.answer(&item.new));
                }
                return None;
            }
            Err(err) if is_unreachable(&err) => {
                fail_all(group, &err);
                return Some(err);
            }
            Err(err) => {
                tracing::debug!(
                    "a batch of {} registrations on ticket {ticket_id} is redone one by one: {err}",
                    group.len()
                );
            }
        }
    }
    let mut items = group.into_iter();
    while let Some(item) = items.next() {
        let answer = match insert_batch(db, ticket_id, std::slice::from_ref(&item)).await {
            Ok(outcomes) => outcomes
                .first()
                .map_or(Err(WriteRefused::SoldOut), |o| o.answer(&item.new)),
            Err(err) if is_unreachable(&err) => {
                let _ = item.reply.send(Err(WriteRefused::Failed(err.clone())));
                fail_all(items, &err);
                return Some(err);
            }
            // A user registered or deleted meanwhile: a unique or foreign-key
            // violation, which `Refused` tells apart.
            Err(err) => Err(err.into()),
        };
        let _ = item.reply.send(answer);
    }
    None
}

/// What became of one registration of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Admitted,
    Duplicate,
    NoRoom,
    /// No room while some of the event's holds are overdue.
    NoRoomYet,
}

impl Outcome {
    fn answer(self, new: &registration::Model) -> Result<registration::Model, WriteRefused> {
        match self {
            Outcome::Admitted => Ok(new.clone()),
            Outcome::Duplicate => Err(WriteRefused::Duplicate),
            Outcome::NoRoom => Err(WriteRefused::SoldOut),
            Outcome::NoRoomYet => Err(WriteRefused::HeldByOverdue),
        }
    }
}

/// One statement for a batch: lock the ticket, then its event (the order
/// every writer uses); admit the new users in arrival order up to the room
/// both have; insert their registrations and confirmation jobs; move both
/// counters by the number admitted; write the audit entries of those
/// admitted. The registrations come as arrays (one per column, `req.n` the
/// arrival order; an empty text for a missing value), so every batch size
/// is the same statement, prepared once per connection.
const BATCH_SQL: &str = r#"
WITH req (id, user_id, outbox_id, dedupe_key, registered_at,
          audit_id, actor_type, actor_id, actor_username, ip, request_id, short_code,
          status, hold_text, amount_due, n) AS (
    SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[],
                         $8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[],
                         $13::text[], $15::text[], $16::text[], $17::text[], $18::int8[])
        WITH ORDINALITY
), ticket_room AS (
    -- Open offers hold seats; while anyone waits for this ticket, a freed
    -- seat is theirs (offered by `db::waitlist`), never the public's.
    SELECT event_id,
           CASE WHEN EXISTS (SELECT 1 FROM waitlist_entries w
                             WHERE w.ticket_id = $1 AND w.status = 'waiting')
                THEN 0 ELSE quota - sold - offered END AS room
    FROM tickets WHERE id = $1 FOR UPDATE
), event_room AS (
    SELECT id, organizer_id, quota - registered - offered AS room FROM events
    WHERE id = (SELECT event_id FROM ticket_room) FOR UPDATE
), fresh AS (
    SELECT req.*, row_number() OVER (ORDER BY n) AS k FROM req
    WHERE NOT EXISTS (
        SELECT 1 FROM registrations r WHERE r.ticket_id = $1 AND r.user_id = req.user_id
    )
), admitted AS (
    SELECT * FROM fresh
    WHERE k <= LEAST((SELECT room FROM ticket_room), (SELECT room FROM event_room))
), created AS (
    INSERT INTO registrations (id, ticket_id, user_id, event_id, registered_at, short_code,
                               status, hold_expires_at, amount_due_minor)
    SELECT id, $1, user_id, (SELECT id FROM event_room), registered_at, short_code,
           status, NULLIF(hold_text, '')::timestamptz, amount_due FROM admitted
    RETURNING id
), queued AS (
    INSERT INTO outbox (id, kind, registration_id, dedupe_key, run_at, attempts, status, created_at)
    SELECT outbox_id, $7, id, dedupe_key, registered_at, 0, 'pending', registered_at
    FROM admitted
), ticket_taken AS (
    UPDATE tickets SET sold = sold + (SELECT count(*) FROM created) WHERE id = $1
), event_taken AS (
    UPDATE events SET registered = registered + (SELECT count(*) FROM created)
    WHERE id = (SELECT id FROM event_room)
), shown AS (
    -- A registration's fields as the API writes them (RFC 3339 in UTC, the
    -- fraction only as long as it needs: what `db::audit` writes too).
    SELECT admitted.*,
           regexp_replace(regexp_replace(
               to_char(registered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
               '\.000000Z$', 'Z'), '(\.[0-9]{3})000Z$', '\1Z') AS at_text,
           (SELECT id FROM event_room)::text AS event_text
    FROM admitted
), audited AS (
    INSERT INTO audit_entries (id, occurred_at, actor_type, actor_id, actor_username, action,
                               entity_type, entity_id, event_id, organizer_id, changes, ip,
                               request_id, data)
    SELECT audit_id, registered_at, actor_type, NULLIF(actor_id, '')::uuid,
           NULLIF(actor_username, ''), 'registration.created', 'registration', id::text,
           (SELECT id FROM event_room), (SELECT organizer_id FROM event_room),
           CASE WHEN hold_text = '' THEN
               json_build_object('ticket', json_build_array(NULL, $1::text),
                                 'user', json_build_array(NULL, user_id::text),
                                 'event', json_build_array(NULL, event_text),
                                 'registered_at', json_build_array(NULL, at_text),
                                 'status', json_build_array(NULL, status))::text
           ELSE
               json_build_object('ticket', json_build_array(NULL, $1::text),
                                 'user', json_build_array(NULL, user_id::text),
                                 'event', json_build_array(NULL, event_text),
                                 'registered_at', json_build_array(NULL, at_text),
                                 'status', json_build_array(NULL, status),
                                 'hold_expires_at', json_build_array(NULL, hold_text))::text
           END,
           NULLIF(ip, ''), NULLIF(request_id, ''),
           json_build_object('id', id::text, 'ticket', $1::text, 'user', user_id::text,
                             'event', event_text, 'registered_at', at_text,
                             'status', status, 'hold_expires_at', NULLIF(hold_text, ''))::text
    FROM shown
), announced AS (
    INSERT INTO outbox (id, kind, endpoint_id, message_id, dedupe_key, run_at, attempts, status,
                        created_at)
    SELECT gen_random_uuid(), 'webhook', e.id, a.audit_id,
           'webhook:' || e.id::text || ':' || a.audit_id::text, a.registered_at, 0, 'pending',
           a.registered_at
    FROM admitted a
    JOIN webhook_endpoints e
      ON e.enabled
     AND (e.event_id IS NULL OR e.event_id = (SELECT id FROM event_room))
     AND (e.all_events OR e.owner_id = (SELECT organizer_id FROM event_room))
     AND EXISTS (SELECT 1 FROM webhook_types t
                 WHERE t.endpoint_id = e.id AND t.pattern = ANY ($14::text[]))
)
SELECT req.n,
       req.id IN (SELECT id FROM created) AS admitted,
       req.id IN (SELECT id FROM fresh) AS fresh,
       -- Whether those refused met overdue holds (one probe of the partial
       -- index of live holds): they are expired and the request tried again.
       EXISTS (SELECT 1 FROM registrations o
               WHERE o.event_id = (SELECT id FROM event_room)
                 AND o.status = 'awaiting_payment' AND o.hold_expires_at <= $19) AS overdue
FROM req ORDER BY req.n
"#;

async fn insert_batch(
    db: &Database,
    ticket_id: Uuid,
    group: &[Pending],
) -> Result<Vec<Outcome>, DbErr> {
    // The type patterns that select its messages (the endpoints are joined
    // in the statement itself: no round trip more for a hot ticket).
    let patterns: Vec<String> =
        super::webhooks::patterns_matching(Action::RegistrationCreated.as_str());
    let ids: Vec<Uuid> = group.iter().map(|p| p.new.id).collect();
    let users: Vec<Uuid> = group.iter().map(|p| p.new.user_id).collect();
    let jobs: Vec<Uuid> = group.iter().map(|_| Uuid::now_v7()).collect();
    let keys: Vec<String> = group.iter().map(|p| confirmation_key(p.new.id)).collect();
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        group.iter().map(|p| p.new.registered_at).collect();
    let audit_ids: Vec<Uuid> = group
        .iter()
        .map(|p| audit::id_at(p.new.registered_at))
        .collect();
    let text = |f: &dyn Fn(&Pending) -> Option<String>| -> Vec<String> {
        group.iter().map(|p| f(p).unwrap_or_default()).collect()
    };
    let actor_types = text(&|p| Some(p.audit.actor.kind().to_owned()));
    let actor_ids = text(&|p| match &p.audit.actor {
        Actor::User { id, .. } => Some(id.to_string()),
        _ => None,
    });
    let actor_names = text(&|p| match &p.audit.actor {
        Actor::User { username, .. } => Some(username.clone()),
        _ => None,
    });
    let ips = text(&|p| p.audit.origin.ip.clone());
    let request_ids = text(&|p| p.audit.origin.request_id.clone());
    let short_codes = text(&|p| Some(p.new.short_code.clone()));
    let statuses = text(&|p| Some(p.new.status.clone()));
    let holds = text(&|p| p.new.hold_expires_at.as_ref().map(audit::time_text));
    let amounts: Vec<i64> = group
        .iter()
        .map(|p| p.new.amount_due_minor.unwrap_or(0))
        .collect();
    let values: Vec<Value> = vec![
        ticket_id.into(),
        ids.into(),
        users.into(),
        jobs.into(),
        keys.into(),
        times.into(),
        KIND_CONFIRMATION.into(),
        audit_ids.into(),
        actor_types.into(),
        actor_ids.into(),
        actor_names.into(),
        ips.into(),
        request_ids.into(),
        patterns.into(),
        short_codes.into(),
        statuses.into(),
        holds.into(),
        amounts.into(),
        group
            .iter()
            .map(|p| p.new.registered_at)
            .max()
            .unwrap_or_else(super::now)
            .into(),
    ];
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, BATCH_SQL, values);
    let rows = db.conn().query_all_raw(statement).await?;
    if rows.len() != group.len() {
        return Err(DbErr::Custom(format!(
            "a batch of {} registrations returned {} rows",
            group.len(),
            rows.len()
        )));
    }
    rows.iter()
        .map(|row| {
            let admitted: bool = row.try_get("", "admitted")?;
            let fresh: bool = row.try_get("", "fresh")?;
            let overdue: bool = row.try_get("", "overdue")?;
            Ok(match (admitted, fresh) {
                (true, _) => Outcome::Admitted,
                (false, false) => Outcome::Duplicate,
                (false, true) if overdue => Outcome::NoRoomYet,
                (false, true) => Outcome::NoRoom,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_logs_and_announces_what_one_registration_does() {
        let action = format!("'{}'", Action::RegistrationCreated);
        assert!(BATCH_SQL.contains(&action));
        let kind = format!("'{}'", super::super::outbox::KIND_WEBHOOK);
        assert!(BATCH_SQL.contains(&kind));
        let key = super::super::webhooks::dedupe_key(Uuid::nil(), Uuid::max());
        assert_eq!(key, format!("webhook:{}:{}", Uuid::nil(), Uuid::max()));
    }
}
