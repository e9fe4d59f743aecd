//! Check-in at the door: signed ticket codes, one admission per
//! registration (decided by a unique index, so any number of scanners and
//! server processes racing on one code get exactly one admission), offline
//! door apps and their later uploads, and the numbers of an event.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::idempotency::{self, Remembered, RequestKey, remembered};
use super::{Caller, DomainError, DomainResult, Page, PageRequest};
use crate::cache::Family;
use crate::db::audit::{self, Action, Changes, Entry};
use crate::db::entities::{
    checkin, checkin_tally, event, payment, payment_tally, registration, registration_revocation,
    ticket, ticket_key, user,
};
use crate::db::errors::{is_fk_violation, is_unique_violation};
use crate::metrics::METRICS;
use crate::state::AppState;
use crate::ticket_codes::{Decoded, kid_of, public_key_from_text, public_key_text};

/// Records the current signing key's public half (once), so that codes it
/// signs keep verifying after a rotation, on every process.
pub async fn record_signing_key(state: &AppState) -> DomainResult<()> {
    let key = state.tickets.verifying_key();
    let kid = kid_of(&key);
    if ticket_key::Entity::find_by_id(kid.clone())
        .one(state.db.conn())
        .await?
        .is_some()
    {
        return Ok(());
    }
    let txn = state.db.begin_write().await?;
    let inserted = ticket_key::ActiveModel {
        kid: Set(kid.clone()),
        public_key: Set(public_key_text(&key)),
        created_at: Set(crate::db::now()),
    }
    .insert(&*txn)
    .await;
    match inserted {
        Ok(recorded) => {
            let entry = Entry::about(
                Action::SigningKeyCreated,
                "signing_key",
                recorded.kid,
                None,
                Changes::none().with("public_key", None::<String>, recorded.public_key),
            );
            audit::record_one(&*txn, &audit::Context::system(), entry).await?;
            txn.commit().await?;
            tracing::info!("Ticket signing key {kid} recorded");
        }
        // Another process recorded it first.
        Err(e) if is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// A public key for door apps: JWK members.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub kid: String,
    /// Base64url of the 32-byte Ed25519 public key.
    pub x: String,
}

/// Every key that ever signed codes here, oldest first.
pub async fn public_keys(state: &AppState) -> DomainResult<Vec<PublicKey>> {
    let mut keys: Vec<PublicKey> = ticket_key::Entity::find()
        .order_by_asc(ticket_key::Column::CreatedAt)
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|k| PublicKey {
            kid: k.kid,
            x: k.public_key,
        })
        .collect();
    let current = state.tickets.kid();
    if !keys.iter().any(|k| k.kid == current) {
        keys.push(PublicKey {
            kid: current.to_string(),
            x: public_key_text(&state.tickets.verifying_key()),
        });
    }
    Ok(keys)
}

/// Whether a code's signature is good: by the current key, or by one
/// recorded before.
async fn signature_is_good(state: &AppState, decoded: &Decoded) -> DomainResult<bool> {
    if decoded.kid == state.tickets.kid() {
        return Ok(decoded.verify(&state.tickets.verifying_key()));
    }
    let recorded = ticket_key::Entity::find_by_id(decoded.kid.clone())
        .one(state.db.conn())
        .await?;
    Ok(recorded
        .and_then(|k| public_key_from_text(&k.public_key))
        .is_some_and(|key| decoded.verify(&key)))
}

/// A registration's ticket code and what it is for.
#[derive(Debug, Clone)]
pub struct TicketCode {
    pub registration: registration::Model,
    pub code: String,
}

/// The code of a registration: its user and those who manage the event.
pub async fn ticket_code(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<TicketCode> {
    let registration = super::registrations::get(state, caller, id).await?;
    Ok(TicketCode {
        code: state.tickets.sign(registration.id, registration.event_id),
        registration,
    })
}

/// A scan at the door.
#[derive(Debug, Clone)]
pub struct Scan {
    pub code: String,
    /// Admit although the ticket is not paid (recorded as forced).
    pub force: bool,
    /// When a door app admitted the person offline (uploaded later).
    pub scanned_at: Option<DateTime<Utc>>,
}

/// Why a scan does not admit, each with the `reason` a door app switches on.
#[derive(Debug)]
pub enum ScanRefused {
    /// Not a well-formed code, or a bad signature, or an unknown key.
    InvalidCode,
    /// The registration is gone (or moved to another event).
    Revoked,
    /// The caller does not manage the code's event.
    Forbidden,
    EventCancelled,
    /// A priced ticket without a completed payment.
    Unpaid,
    /// An offline scan's `scanned_at` before the registration was made.
    BeforeRegistration,
    /// Already admitted: when and by whom.
    AlreadyCheckedIn {
        at: DateTime<Utc>,
        by: Option<Uuid>,
    },
    /// A retry of a scan already answered: that first answer.
    Replay(Remembered),
    Failed(DomainError),
}

impl ScanRefused {
    /// The machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ScanRefused::InvalidCode => "invalid_code",
            ScanRefused::Revoked => "revoked",
            ScanRefused::Forbidden => "forbidden",
            ScanRefused::EventCancelled => "event_cancelled",
            ScanRefused::Unpaid => "unpaid",
            ScanRefused::BeforeRegistration => "invalid_scan_time",
            ScanRefused::AlreadyCheckedIn { .. } => "already_checked_in",
            ScanRefused::Replay(_) => "replayed",
            ScanRefused::Failed(_) => "error",
        }
    }
}

impl From<DomainError> for ScanRefused {
    fn from(err: DomainError) -> Self {
        ScanRefused::Failed(err)
    }
}

impl From<sea_orm::DbErr> for ScanRefused {
    fn from(err: sea_orm::DbErr) -> Self {
        ScanRefused::Failed(err.into())
    }
}

/// A check-in and the person it admitted.
#[derive(Debug, Clone)]
pub struct Admission {
    pub checkin: checkin::Model,
    pub user: user::Model,
}

/// A scan's `Idempotency-Key` and how its admission is rendered for the
/// replay of a retry.
pub struct Idempotent<'a> {
    pub key: &'a RequestKey,
    pub render: &'a (dyn Fn(&Admission) -> String + Send + Sync),
}

/// Scans a code: in this order, a bad code, a revoked registration, an
/// event the caller does not manage, a cancelled event, an unpaid priced
/// ticket (unless forced) and an earlier admission refuse it; otherwise the
/// person is admitted, once.
#[instrument(name = "scan", skip_all, fields(user = %caller.username))]
pub async fn scan(
    state: &AppState,
    caller: &Caller,
    scan: Scan,
    idempotent: Option<Idempotent<'_>>,
) -> Result<Admission, ScanRefused> {
    let outcome = admit(state, caller, &scan, idempotent).await;
    let result = match &outcome {
        Ok(_) => "admitted",
        Err(refused) => refused.reason(),
    };
    METRICS.record_checkin(result);
    match &outcome {
        Ok(a) => tracing::info!(
            "Check-in {}: registration {} admitted by {}{}{}",
            a.checkin.id,
            a.checkin.registration_id,
            caller.username,
            if a.checkin.offline {
                " (offline scan)"
            } else {
                ""
            },
            if a.checkin.forced {
                " (forced, unpaid)"
            } else {
                ""
            },
        ),
        Err(ScanRefused::Failed(e)) => tracing::warn!("Scan by {} failed: {e}", caller.username),
        Err(refused) => tracing::info!("Scan by {} refused: {}", caller.username, refused.reason()),
    }
    outcome
}

async fn admit(
    state: &AppState,
    caller: &Caller,
    scan: &Scan,
    idempotent: Option<Idempotent<'_>>,
) -> Result<Admission, ScanRefused> {
    let Some(decoded) = Decoded::parse(&scan.code) else {
        return Err(ScanRefused::InvalidCode);
    };
    if !signature_is_good(state, &decoded).await? {
        return Err(ScanRefused::InvalidCode);
    }
    let db = state.db.conn();
    let Some(found) = registration::Entity::find_by_id(decoded.registration)
        .one(db)
        .await?
        .filter(|r| r.event_id == decoded.event)
    else {
        return Err(ScanRefused::Revoked);
    };
    let Some(the_event) = event::Entity::find_by_id(found.event_id).one(db).await? else {
        return Err(ScanRefused::Revoked);
    };
    if !caller.manages_event(the_event.organizer_id) {
        return Err(ScanRefused::Forbidden);
    }
    if scan.scanned_at.is_some_and(|at| at < found.registered_at) {
        return Err(ScanRefused::BeforeRegistration);
    }
    if the_event.status == "cancelled" {
        return Err(ScanRefused::EventCancelled);
    }
    let the_ticket = ticket::Entity::find_by_id(found.ticket_id)
        .one(db)
        .await?
        .ok_or(ScanRefused::Revoked)?;
    let paid = the_ticket.price_minor == 0
        || payment::Entity::find()
            .filter(payment::Column::RegistrationId.eq(found.id))
            .filter(payment::Column::PaymentStatus.eq("completed"))
            .count(db)
            .await?
            > 0;
    if !paid && !scan.force {
        return Err(ScanRefused::Unpaid);
    }
    let attendee = user::Entity::find_by_id(found.user_id)
        .one(db)
        .await?
        .ok_or(ScanRefused::Revoked)?;
    let now = crate::db::now();
    let admitted = checkin::Model {
        id: Uuid::now_v7(),
        registration_id: found.id,
        event_id: found.event_id,
        ticket_id: found.ticket_id,
        user_id: found.user_id,
        checked_in_at: scan.scanned_at.unwrap_or(now),
        checked_in_by: Some(caller.id),
        forced: !paid,
        offline: scan.scanned_at.is_some(),
        conflict: false,
        recorded_at: now,
    };
    let admission = Admission {
        checkin: admitted.clone(),
        user: attendee,
    };
    let txn = state.db.begin_write().await?;
    if let Some(idempotent) = idempotent {
        // The key is claimed with the admission's own answer, in its
        // transaction: a retry racing this request waits on the key, then
        // replays this answer; the admission exists if and only if the key
        // remembers it.
        let answer = Remembered {
            status: 201,
            body: (idempotent.render)(&admission),
        };
        if !idempotency::claim(&*txn, caller.id, idempotent.key, &answer).await? {
            drop(txn);
            return match remembered(state, caller.id, idempotent.key).await? {
                Some(first) => Err(ScanRefused::Replay(first)),
                None => Err(DomainError::Conflict(
                    "A scan with this Idempotency-Key is being processed.".into(),
                )
                .into()),
            };
        }
    }
    match checkin::ActiveModel::from(admitted.clone())
        .insert(&*txn)
        .await
    {
        Ok(_) => {
            audit::record_one(
                &*txn,
                &caller.audit(),
                Entry::created(Action::CheckinCreated, &admitted),
            )
            .await?;
            txn.commit().await?;
            state.cache.invalidate(&[Family::Console]).await;
            Ok(admission)
        }
        Err(e) if is_unique_violation(&e) => {
            drop(txn);
            let earlier = checkin::Entity::find()
                .filter(checkin::Column::RegistrationId.eq(found.id))
                .filter(checkin::Column::Conflict.eq(false))
                .one(db)
                .await?
                .ok_or_else(|| {
                    DomainError::Conflict("The earlier check-in was undone meanwhile.".into())
                })?;
            // The same offline scan uploaded again (a door app retrying
            // without a key) is not a second entry.
            let same_scan = earlier.offline
                && scan.scanned_at == Some(earlier.checked_in_at)
                && earlier.checked_in_by == Some(caller.id);
            if scan.scanned_at.is_some() && !same_scan {
                // An offline double entry: kept, flagged for the organiser.
                let conflicting = checkin::Model {
                    id: Uuid::now_v7(),
                    conflict: true,
                    ..admitted
                };
                let txn = state.db.begin_write().await?;
                match checkin::ActiveModel::from(conflicting.clone())
                    .insert(&*txn)
                    .await
                {
                    Ok(_) => {
                        audit::record_one(
                            &*txn,
                            &caller.audit(),
                            Entry::created(Action::CheckinCreated, &conflicting),
                        )
                        .await?;
                        txn.commit().await?;
                        state.cache.invalidate(&[Family::Console]).await;
                    }
                    Err(e) if is_fk_violation(&e) => return Err(ScanRefused::Revoked),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(ScanRefused::AlreadyCheckedIn {
                at: earlier.checked_in_at,
                by: earlier.checked_in_by,
            })
        }
        // Deleted between the reads above and this insert.
        Err(e) if is_fk_violation(&e) => Err(ScanRefused::Revoked),
        Err(e) => Err(e.into()),
    }
}

/// Who may list check-ins: superuser and admin (all), and those who
/// organise events (theirs).
async fn scope(state: &AppState, caller: &Caller) -> DomainResult<Option<Uuid>> {
    if caller.is_admin() {
        return Ok(None);
    }
    super::tickets::authorize_create(state, caller).await?;
    Ok(Some(caller.id))
}

/// What a list selects.
#[derive(Debug, Clone, Default)]
pub struct CheckinFilter {
    pub event: Option<Uuid>,
    pub ticket: Option<Uuid>,
}

/// Check-ins, newest first, with the people they admitted. Filtered to an
/// event its caller manages, the count comes from the event's tallies.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: &CheckinFilter,
    page: PageRequest,
) -> DomainResult<Page<Admission>> {
    let organizer = scope(state, caller).await?;
    let db = state.db.conn();
    let managed = match filter.event {
        Some(id) => event::Entity::find_by_id(id)
            .one(db)
            .await?
            .filter(|e| caller.manages_event(e.organizer_id)),
        None => None,
    };
    let mut select = checkin::Entity::find();
    if let (Some(organizer), None) = (organizer, &managed) {
        select = select.filter(
            checkin::Column::EventId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(event::Column::Id)
                    .from(event::Entity)
                    .and_where(event::Column::OrganizerId.eq(organizer))
                    .to_owned(),
            ),
        );
    }
    if let Some(id) = filter.event {
        select = select.filter(checkin::Column::EventId.eq(id));
    }
    if let Some(id) = filter.ticket {
        select = select.filter(checkin::Column::TicketId.eq(id));
    }
    let select = select
        .order_by_desc(checkin::Column::RecordedAt)
        .order_by_desc(checkin::Column::Id);
    let mut page = match managed {
        Some(event) => {
            let mut tallies =
                checkin_tally::Entity::find().filter(checkin_tally::Column::EventId.eq(event.id));
            if let Some(id) = filter.ticket {
                tallies = tallies.filter(checkin_tally::Column::TicketId.eq(id));
            }
            let count = tallies
                .all(db)
                .await?
                .iter()
                .map(|t| (t.admitted + t.conflicts).max(0) as u64)
                .sum();
            super::fetch_page_counted(db, select, page, count).await?
        }
        None => super::fetch_page(db, select, page).await?,
    };
    let user_ids: Vec<Uuid> = page.items.iter().map(|c| c.user_id).collect();
    let users = super::accounts::users_by_id(state, &user_ids).await?;
    let items = std::mem::take(&mut page.items)
        .into_iter()
        .filter_map(|c| {
            users.get(&c.user_id).map(|u| Admission {
                user: u.clone(),
                checkin: c,
            })
        })
        .collect();
    Ok(page.with_items(items))
}

/// Undoes a check-in (those who manage its event).
#[instrument(name = "undo_checkin", skip_all, fields(user = %caller.username))]
pub async fn undo(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = checkin::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    let organizer = super::registrations::organizer_of(state, found.event_id).await?;
    if !caller.manages_event(organizer) {
        return Err(DomainError::Forbidden);
    }
    let txn = state.db.begin_write().await?;
    checkin::Entity::delete_by_id(found.id).exec(&*txn).await?;
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::deleted(Action::CheckinDeleted, &found),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
    tracing::info!(
        "Check-in {} of registration {} undone by {}",
        found.id,
        found.registration_id,
        caller.username
    );
    Ok(())
}

/// What an offline door app needs: keys, revocations and admissions since a
/// time, and the server's clock to ask from next time.
#[derive(Debug, Clone)]
pub struct SyncState {
    pub keys: Vec<PublicKey>,
    pub revoked: Vec<Uuid>,
    pub checked_in: Vec<(Uuid, DateTime<Utc>)>,
    pub server_time: DateTime<Utc>,
}

/// Rows are stamped before their transaction commits: the next `since` is
/// this far behind the clock so that a row committed late is not missed
/// (door apps may see a row twice and de-duplicate).
const SYNC_MARGIN_SECONDS: i64 = 30;

pub async fn sync(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    since: Option<DateTime<Utc>>,
) -> DomainResult<SyncState> {
    let server_time = crate::db::now() - chrono::Duration::seconds(SYNC_MARGIN_SECONDS);
    super::events::get_managed(state, caller, event_id).await?;
    let db = state.db.conn();
    let mut revoked = registration_revocation::Entity::find()
        .filter(registration_revocation::Column::EventId.eq(event_id));
    let mut admitted = checkin::Entity::find()
        .filter(checkin::Column::EventId.eq(event_id))
        .filter(checkin::Column::Conflict.eq(false));
    if let Some(since) = since {
        revoked = revoked.filter(registration_revocation::Column::RevokedAt.gte(since));
        admitted = admitted.filter(checkin::Column::RecordedAt.gte(since));
    }
    Ok(SyncState {
        keys: public_keys(state).await?,
        revoked: revoked
            .order_by_asc(registration_revocation::Column::RevokedAt)
            .all(db)
            .await?
            .into_iter()
            .map(|r| r.registration_id)
            .collect(),
        checked_in: admitted
            .order_by_asc(checkin::Column::RecordedAt)
            .all(db)
            .await?
            .into_iter()
            .map(|c| (c.registration_id, c.checked_in_at))
            .collect(),
        server_time,
    })
}

/// A ticket type's numbers.
#[derive(Debug, Clone)]
pub struct TicketStats {
    pub id: Uuid,
    pub name: String,
    pub quota: i64,
    pub sold: i64,
    pub checked_in: u64,
}

/// An event's numbers.
#[derive(Debug, Clone)]
pub struct EventStats {
    pub event: Uuid,
    pub quota: i64,
    pub registered: u64,
    pub checked_in: u64,
    /// Payments by status: pending, completed, failed, refunded.
    pub payments: [(&'static str, u64); 4],
    /// Completed payments, in minor units.
    pub revenue_minor: i64,
    pub tickets: Vec<TicketStats>,
}

/// An event's numbers, from its counters and tallies (kept in each write's
/// transaction): the same cost for ten registrations as for a million.
pub async fn stats(state: &AppState, caller: &Caller, event_id: Uuid) -> DomainResult<EventStats> {
    let the_event = super::events::get_managed(state, caller, event_id).await?;
    let db = state.db.conn();
    let admitted_by_ticket: std::collections::HashMap<Uuid, u64> = checkin_tally::Entity::find()
        .filter(checkin_tally::Column::EventId.eq(event_id))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.ticket_id, t.admitted.max(0) as u64))
        .collect();
    let mut payments = [
        ("pending", 0),
        ("completed", 0),
        ("failed", 0),
        ("refunded", 0),
    ];
    let mut revenue_minor = 0i64;
    for tally in payment_tally::Entity::find()
        .filter(payment_tally::Column::EventId.eq(event_id))
        .all(db)
        .await?
    {
        if let Some(slot) = payments
            .iter_mut()
            .find(|(s, _)| *s == tally.payment_status)
        {
            slot.1 += tally.n.max(0) as u64;
        }
        if tally.payment_status == "completed" {
            revenue_minor += tally.amount_minor;
        }
    }
    let tickets = ticket::Entity::find()
        .filter(ticket::Column::EventId.eq(event_id))
        .order_by_asc(ticket::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|t| TicketStats {
            checked_in: admitted_by_ticket.get(&t.id).copied().unwrap_or(0),
            id: t.id,
            name: t.name,
            quota: t.quota,
            sold: t.sold,
        })
        .collect();
    Ok(EventStats {
        event: the_event.id,
        quota: the_event.quota,
        registered: the_event.registered.max(0) as u64,
        checked_in: admitted_by_ticket.values().sum(),
        payments,
        revenue_minor,
        tickets,
    })
}

/// How many people this scanner admitted since a time (the scan page's
/// running count).
pub async fn admitted_by(
    state: &AppState,
    caller: &Caller,
    since: DateTime<Utc>,
) -> DomainResult<u64> {
    Ok(checkin::Entity::find()
        .filter(checkin::Column::CheckedInBy.eq(caller.id))
        .filter(checkin::Column::Conflict.eq(false))
        .filter(checkin::Column::RecordedAt.gte(since))
        .count(state.db.conn())
        .await?)
}

/// Whether the caller may scan at all: superuser, admin, or someone who
/// organises events.
pub async fn may_scan(state: &AppState, caller: &Caller) -> DomainResult<bool> {
    match scope(state, caller).await {
        Ok(_) => Ok(true),
        Err(DomainError::Forbidden) => Ok(false),
        Err(other) => Err(other),
    }
}

/// People admitted per event, for a few events at once.
pub async fn admitted_per_event(
    state: &AppState,
    event_ids: &[Uuid],
) -> DomainResult<std::collections::HashMap<Uuid, u64>> {
    if event_ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let mut admitted = std::collections::HashMap::new();
    for tally in checkin_tally::Entity::find()
        .filter(checkin_tally::Column::EventId.is_in(event_ids.iter().copied()))
        .all(state.db.conn())
        .await?
    {
        *admitted.entry(tally.event_id).or_insert(0) += tally.admitted.max(0) as u64;
    }
    Ok(admitted)
}
