//! Check-in at the door: signed ticket codes, one admission per
//! registration (decided by a unique index, so any number of scanners and
//! server processes racing on one code get exactly one admission), offline
//! door apps and their later uploads, and the numbers of an event.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
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

/// What door staff present: a ticket code (the QR code's long code or the
/// short code printed under it), or a registration found by name.
#[derive(Debug, Clone)]
pub enum Presented {
    Code(String),
    Registration(Uuid),
}

impl Presented {
    /// How a check-in was made: `scan` or `manual`.
    fn method(&self) -> &'static str {
        match self {
            Presented::Code(_) => "scan",
            Presented::Registration(_) => "manual",
        }
    }
}

/// A scan at the door.
#[derive(Debug, Clone)]
pub struct Scan {
    pub presented: Presented,
    /// The event whose door this is. A scan that names it is also refused
    /// for another event's ticket and outside the admission window.
    pub event: Option<Uuid>,
    /// Admit although the ticket is not paid or the door is not open
    /// (recorded as forced).
    pub force: bool,
    /// When a door app admitted the person offline (uploaded later).
    pub scanned_at: Option<DateTime<Utc>>,
}

/// Why a scan does not admit, each with the `reason` a door app switches on.
#[derive(Debug)]
pub enum ScanRefused {
    /// Not a well-formed code, or a bad signature, or an unknown key or
    /// short code.
    InvalidCode,
    /// The named door's event does not exist.
    NoSuchDoor(Uuid),
    /// The ticket is for another event than the door's (its name).
    WrongEvent(String),
    /// The registration is gone (or moved to another event).
    Revoked,
    /// The caller does not manage the code's event.
    Forbidden,
    EventCancelled,
    /// Before the door opens (`ADMISSION_OPENS_BEFORE` before the start).
    NotYetValid {
        opens_at: DateTime<Utc>,
    },
    /// After the event's end.
    EventEnded {
        ended_at: DateTime<Utc>,
    },
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
            ScanRefused::NoSuchDoor(_) => "invalid_event",
            ScanRefused::WrongEvent(_) => "wrong_event",
            ScanRefused::Revoked => "revoked",
            ScanRefused::Forbidden => "forbidden",
            ScanRefused::EventCancelled => "event_cancelled",
            ScanRefused::NotYetValid { .. } => "not_yet_valid",
            ScanRefused::EventEnded { .. } => "event_ended",
            ScanRefused::Unpaid => "unpaid",
            ScanRefused::BeforeRegistration => "invalid_scan_time",
            ScanRefused::AlreadyCheckedIn { .. } => "already_checked_in",
            ScanRefused::Replay(_) => "replayed",
            ScanRefused::Failed(_) => "error",
        }
    }

    /// Whether `force` would have admitted (only a manager's scan gets
    /// this far).
    pub fn forceable(&self) -> bool {
        matches!(
            self,
            ScanRefused::Unpaid | ScanRefused::NotYetValid { .. } | ScanRefused::EventEnded { .. }
        )
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

/// Whose ticket a genuine code is, so the door can say who stands there.
#[derive(Debug, Clone)]
pub struct Holder {
    pub registration: Uuid,
    pub user: user::Model,
    pub ticket: Uuid,
    pub ticket_name: String,
    pub event: Uuid,
    pub event_name: String,
    /// The ticket type's price (minor units): a priced one needs a payment.
    pub price_minor: i64,
}

/// A refused scan, with whose ticket it was when the code is genuine and
/// the caller manages its event (nobody else learns who holds a ticket).
#[derive(Debug)]
pub struct Refused {
    pub why: ScanRefused,
    pub holder: Option<Holder>,
}

impl Refused {
    fn anonymous(why: ScanRefused) -> Self {
        Refused { why, holder: None }
    }
}

impl<E: Into<ScanRefused>> From<E> for Refused {
    fn from(err: E) -> Self {
        Refused::anonymous(err.into())
    }
}

/// A check-in and the person, ticket type and event it admitted to.
#[derive(Debug, Clone)]
pub struct Admission {
    pub checkin: checkin::Model,
    pub user: user::Model,
    pub ticket_name: String,
    pub event_name: String,
}

/// A scan's `Idempotency-Key` and how its admission is rendered for the
/// replay of a retry.
pub struct Idempotent<'a> {
    pub key: &'a RequestKey,
    pub render: &'a (dyn Fn(&Admission) -> String + Send + Sync),
}

/// Scans a code (or admits a registration by name): in this order, a bad
/// code; at a named door, another event's ticket; a revoked registration,
/// an event the caller does not manage, a cancelled event; at a named door,
/// outside the admission window (unless forced); an unpaid priced ticket
/// (unless forced) and an earlier admission refuse it; otherwise the
/// person is admitted, once.
#[instrument(name = "scan", skip_all, fields(user = %caller.username))]
pub async fn scan(
    state: &AppState,
    caller: &Caller,
    scan: Scan,
    idempotent: Option<Idempotent<'_>>,
) -> Result<Admission, Refused> {
    let outcome = admit(state, caller, &scan, idempotent).await;
    let result = match &outcome {
        Ok(_) => "admitted",
        Err(refused) => refused.why.reason(),
    };
    METRICS.record_checkin(result);
    match &outcome {
        Ok(a) => tracing::info!(
            "Check-in {}: registration {} admitted by {} ({}){}{}",
            a.checkin.id,
            a.checkin.registration_id,
            caller.username,
            a.checkin.method,
            if a.checkin.offline {
                " (offline scan)"
            } else {
                ""
            },
            if a.checkin.forced { " (forced)" } else { "" },
        ),
        Err(Refused {
            why: ScanRefused::Failed(e),
            ..
        }) => tracing::warn!("Scan by {} failed: {e}", caller.username),
        Err(refused) => tracing::info!(
            "Scan by {} refused: {}",
            caller.username,
            refused.why.reason()
        ),
    }
    outcome
}

/// The registration a presented code or id names, with the event the code
/// claims (a long code carries it; a short code or an id is looked up).
async fn presented_registration(
    state: &AppState,
    presented: &Presented,
) -> Result<(Uuid, Option<registration::Model>), ScanRefused> {
    let (event, found) = presented_any(state, presented).await?;
    // An expired hold's code is revoked (API.md §9), swept or not yet.
    match found {
        Some(r) if !crate::db::registration_writer::holds_seat(&r, state.clock.now()) => {
            Err(ScanRefused::Revoked)
        }
        found => Ok((event, found)),
    }
}

async fn presented_any(
    state: &AppState,
    presented: &Presented,
) -> Result<(Uuid, Option<registration::Model>), ScanRefused> {
    let db = state.db.conn();
    match presented {
        Presented::Code(code) if code.starts_with(crate::ticket_codes::CODE_PREFIX) => {
            let Some(decoded) = Decoded::parse(code) else {
                return Err(ScanRefused::InvalidCode);
            };
            if !signature_is_good(state, &decoded).await? {
                return Err(ScanRefused::InvalidCode);
            }
            let found = registration::Entity::find_by_id(decoded.registration)
                .one(db)
                .await?
                .filter(|r| r.event_id == decoded.event);
            Ok((decoded.event, found))
        }
        Presented::Code(typed) => {
            let Some(short) = crate::ticket_codes::normalize_short_code(typed) else {
                return Err(ScanRefused::InvalidCode);
            };
            // Not offline-verifiable: a short code is only what the
            // database knows (one of a deleted registration is unknown).
            let found = registration::Entity::find()
                .filter(registration::Column::ShortCode.eq(short))
                .one(db)
                .await?
                .ok_or(ScanRefused::InvalidCode)?;
            Ok((found.event_id, Some(found)))
        }
        Presented::Registration(id) => {
            let found = registration::Entity::find_by_id(*id)
                .one(db)
                .await?
                .ok_or(ScanRefused::Revoked)?;
            Ok((found.event_id, Some(found)))
        }
    }
}

async fn admit(
    state: &AppState,
    caller: &Caller,
    scan: &Scan,
    idempotent: Option<Idempotent<'_>>,
) -> Result<Admission, Refused> {
    let db = state.db.conn();
    // The door first: it is where the request is made.
    let door = match scan.event {
        Some(id) => {
            let found = event::Entity::find_by_id(id)
                .one(db)
                .await?
                .ok_or(ScanRefused::NoSuchDoor(id))?;
            if !caller.manages_event(found.organizer_id) {
                return Err(ScanRefused::Forbidden.into());
            }
            Some(found)
        }
        None => None,
    };
    let (claimed_event, found) = presented_registration(state, &scan.presented).await?;
    if let Some(door) = &door
        && claimed_event != door.id
    {
        let other = event::Entity::find_by_id(claimed_event).one(db).await?;
        let holder = match (&found, &other) {
            (Some(r), Some(e)) if caller.manages_event(e.organizer_id) => {
                holder_of(state, r, e).await?
            }
            _ => None,
        };
        let name = other.map_or_else(|| "an event that no longer exists".into(), |e| e.name);
        return Err(Refused {
            why: ScanRefused::WrongEvent(name),
            holder,
        });
    }
    let Some(found) = found else {
        return Err(ScanRefused::Revoked.into());
    };
    let the_event = match door {
        Some(door) => door,
        None => event::Entity::find_by_id(found.event_id)
            .one(db)
            .await?
            .ok_or(ScanRefused::Revoked)?,
    };
    if !caller.manages_event(the_event.organizer_id) {
        return Err(ScanRefused::Forbidden.into());
    }
    let Some(holder) = holder_of(state, &found, &the_event).await? else {
        return Err(ScanRefused::Revoked.into());
    };
    let refuse = |why: ScanRefused| Refused {
        why,
        holder: Some(holder.clone()),
    };
    if scan.scanned_at.is_some_and(|at| at < found.registered_at) {
        return Err(refuse(ScanRefused::BeforeRegistration));
    }
    if the_event.status == "cancelled" {
        return Err(refuse(ScanRefused::EventCancelled));
    }
    let now = crate::db::now();
    let mut forced = false;
    if scan.event.is_some() {
        let at = scan.scanned_at.unwrap_or(now);
        let opens_before = chrono::Duration::from_std(state.config.admission_opens_before)
            .unwrap_or(chrono::Duration::hours(6));
        let opens_at = the_event.start_time - opens_before;
        let closed = if at < opens_at {
            Some(ScanRefused::NotYetValid { opens_at })
        } else if at > the_event.end_time {
            Some(ScanRefused::EventEnded {
                ended_at: the_event.end_time,
            })
        } else {
            None
        };
        if let Some(why) = closed {
            if !scan.force {
                return Err(refuse(why));
            }
            forced = true;
        }
    }
    let paid = holder.price_minor == 0
        || payment::Entity::find()
            .filter(payment::Column::RegistrationId.eq(found.id))
            .filter(payment::Column::PaymentStatus.eq("completed"))
            .count(db)
            .await?
            > 0;
    if !paid {
        if !scan.force {
            return Err(refuse(ScanRefused::Unpaid));
        }
        forced = true;
    }
    let admitted = checkin::Model {
        id: Uuid::now_v7(),
        registration_id: found.id,
        event_id: found.event_id,
        ticket_id: found.ticket_id,
        user_id: found.user_id,
        checked_in_at: scan.scanned_at.unwrap_or(now),
        checked_in_by: Some(caller.id),
        forced,
        offline: scan.scanned_at.is_some(),
        conflict: false,
        method: scan.presented.method().to_owned(),
        recorded_at: now,
    };
    let admission = Admission {
        checkin: admitted.clone(),
        user: holder.user.clone(),
        ticket_name: holder.ticket_name.clone(),
        event_name: holder.event_name.clone(),
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
                Some(first) => Err(ScanRefused::Replay(first).into()),
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
                    Err(e) if is_fk_violation(&e) => return Err(ScanRefused::Revoked.into()),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(refuse(ScanRefused::AlreadyCheckedIn {
                at: earlier.checked_in_at,
                by: earlier.checked_in_by,
            }))
        }
        // Deleted between the reads above and this insert.
        Err(e) if is_fk_violation(&e) => Err(ScanRefused::Revoked.into()),
        Err(e) => Err(e.into()),
    }
}

/// Whose ticket a registration is: its person, ticket type and event
/// (`None` when the person or ticket is gone meanwhile).
async fn holder_of(
    state: &AppState,
    found: &registration::Model,
    the_event: &event::Model,
) -> DomainResult<Option<Holder>> {
    let db = state.db.conn();
    let Some(the_ticket) = ticket::Entity::find_by_id(found.ticket_id).one(db).await? else {
        return Ok(None);
    };
    let Some(attendee) = user::Entity::find_by_id(found.user_id).one(db).await? else {
        return Ok(None);
    };
    Ok(Some(Holder {
        registration: found.id,
        user: attendee,
        ticket: the_ticket.id,
        ticket_name: the_ticket.name,
        price_minor: the_ticket.price_minor,
        event: the_event.id,
        event_name: the_event.name.clone(),
    }))
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
    let ticket_names: std::collections::HashMap<Uuid, String> = ticket::Entity::find()
        .filter(ticket::Column::Id.is_in(page.items.iter().map(|c| c.ticket_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let event_names: std::collections::HashMap<Uuid, String> = event::Entity::find()
        .filter(event::Column::Id.is_in(page.items.iter().map(|c| c.event_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e.name))
        .collect();
    let items = std::mem::take(&mut page.items)
        .into_iter()
        .filter_map(|c| {
            users.get(&c.user_id).map(|u| Admission {
                user: u.clone(),
                ticket_name: ticket_names.get(&c.ticket_id).cloned().unwrap_or_default(),
                event_name: event_names.get(&c.event_id).cloned().unwrap_or_default(),
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

/// Whether the caller may scan at all: superuser, admin, or someone who
/// organises events.
pub async fn may_scan(state: &AppState, caller: &Caller) -> DomainResult<bool> {
    match scope(state, caller).await {
        Ok(_) => Ok(true),
        Err(DomainError::Forbidden) => Ok(false),
        Err(other) => Err(other),
    }
}

/// The events whose door the caller may run now: those they manage (all
/// for superuser and admin), not cancelled, not over for more than a day;
/// soonest first.
pub async fn doors(state: &AppState, caller: &Caller) -> DomainResult<Vec<event::Model>> {
    let organizer = scope(state, caller).await?;
    let since = crate::db::now() - chrono::Duration::days(1);
    let mut select = event::Entity::find()
        .filter(event::Column::EndTime.gte(since))
        .filter(event::Column::Status.ne("cancelled"));
    if let Some(organizer) = organizer {
        select = select.filter(event::Column::OrganizerId.eq(organizer));
    }
    Ok(select
        .order_by_asc(event::Column::StartTime)
        .order_by_asc(event::Column::Id)
        .limit(50)
        .all(state.db.conn())
        .await?)
}

/// An event at its door: the event (those who manage it), how many were
/// admitted and how many hold a registration.
pub async fn door(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
) -> DomainResult<(event::Model, u64, u64)> {
    let the_event = super::events::get_managed(state, caller, event_id).await?;
    let admitted = admitted_per_event(state, &[event_id])
        .await?
        .get(&event_id)
        .copied()
        .unwrap_or(0);
    let registered = u64::try_from(the_event.registered).unwrap_or(0);
    Ok((the_event, admitted, registered))
}

/// When each of these registrations was admitted (those not yet admitted
/// are absent).
pub async fn admissions_of(
    state: &AppState,
    registration_ids: &[Uuid],
) -> DomainResult<std::collections::HashMap<Uuid, DateTime<Utc>>> {
    if registration_ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(checkin::Entity::find()
        .filter(checkin::Column::RegistrationId.is_in(registration_ids.iter().copied()))
        .filter(checkin::Column::Conflict.eq(false))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|c| (c.registration_id, c.checked_in_at))
        .collect())
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
