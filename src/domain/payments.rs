//! Payments for registrations: the status state machine, at most one
//! completed payment per registration, idempotent creation, the amount due
//! (no "completed" below it unless forced), the event's managers moving its
//! payments, and an attendee's proof of transfer.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::idempotency::{self, Remembered, RequestKey, remembered};
use super::registrations::organizer_of;
use super::scope::{self, Scope};
use super::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest, does_not_exist};
use crate::cache::Family;
use crate::db::entities::{idempotency_key, payment, payment_tally, registration, ticket};
use crate::db::errors::is_unique_violation;
use crate::db::registration_writer;
use crate::state::AppState;

pub const STATUSES: &[&str] = &["pending", "completed", "failed", "refunded"];
pub const DEFAULT_STATUS: &str = "pending";
pub const MAX_METHOD: usize = 50;

/// The status moves an update may make (and any status to itself).
pub fn transition_allowed(from: &str, to: &str) -> bool {
    from == to
        || matches!(
            (from, to),
            ("pending", "completed")
                | ("pending", "failed")
                | ("failed", "pending")
                | ("completed", "refunded")
        )
}

/// A payment to record; `status` one of `STATUSES` (default pending).
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub registration_id: Uuid,
    pub payment_method: String,
    pub amount_paid_minor: i64,
    pub status: Option<String>,
}

/// The fields an update sets (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct PaymentChanges {
    pub payment_method: Option<String>,
    pub amount_paid_minor: Option<i64>,
    pub status: Option<String>,
    /// Completed below the amount due, knowingly (recorded in the log).
    pub force: bool,
}

/// What a registration owes: its ticket's price (0 when it is gone).
pub async fn amount_due(
    db: &impl sea_orm::ConnectionTrait,
    registration_id: Uuid,
) -> Result<i64, sea_orm::DbErr> {
    let Some(r) = registration::Entity::find_by_id(registration_id)
        .one(db)
        .await?
    else {
        return Ok(0);
    };
    if let Some(due) = r.amount_due_minor {
        return Ok(due);
    }
    let price: Option<i64> = ticket::Entity::find_by_id(r.ticket_id)
        .select_only()
        .column(ticket::Column::PriceMinor)
        .into_tuple()
        .one(db)
        .await?;
    Ok(price.unwrap_or(0))
}

/// What each registration owes (what it recorded, else its ticket's
/// price), for a list.
pub async fn amounts_due(
    state: &AppState,
    registration_ids: &[Uuid],
) -> DomainResult<std::collections::HashMap<Uuid, i64>> {
    if registration_ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let rows: Vec<(Uuid, Uuid, Option<i64>)> = registration::Entity::find()
        .select_only()
        .column(registration::Column::Id)
        .column(registration::Column::TicketId)
        .column(registration::Column::AmountDueMinor)
        .filter(registration::Column::Id.is_in(registration_ids.iter().copied()))
        .into_tuple()
        .all(state.db.conn())
        .await?;
    let ticket_ids: Vec<Uuid> = rows.iter().map(|(_, t, _)| *t).collect();
    let prices: std::collections::HashMap<Uuid, i64> = ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .column(ticket::Column::PriceMinor)
        .filter(ticket::Column::Id.is_in(ticket_ids))
        .into_tuple::<(Uuid, i64)>()
        .all(state.db.conn())
        .await?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|(r, t, due)| {
            (
                r,
                due.unwrap_or_else(|| prices.get(&t).copied().unwrap_or(0)),
            )
        })
        .collect())
}

/// The underpayment rule (API.md §8.1): a payment marked `completed` (or
/// given a new amount while completed) must cover the amount due, unless
/// `force`. `Ok(true)`: let through by force.
fn check_covers(
    state: &AppState,
    completes: bool,
    amount_paid_minor: i64,
    due: i64,
    force: bool,
) -> DomainResult<bool> {
    if !completes || amount_paid_minor >= due {
        return Ok(false);
    }
    if force {
        return Ok(true);
    }
    Err(DomainError::Conflict(format!(
        "Amount paid is less than the amount due ({}).",
        crate::money::amount(&state.config.currency, due)
    )))
}

/// What a list selects.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub registration: Option<Uuid>,
    pub event: Option<Uuid>,
    pub status: Option<String>,
}

/// The payments the caller may see (scoped like registrations), oldest
/// first. Unless filtered to one registration, the count of an organiser's
/// events comes from their tallies (kept by the database on every write),
/// plus their own payments for other events.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: &PaymentFilter,
    page: PageRequest,
) -> DomainResult<Page<payment::Model>> {
    let scope = Scope::of(state, caller, filter.event).await?;
    let mut select = scope.apply(
        payment::Entity::find(),
        caller,
        payment::Column::UserId,
        payment::Column::EventId,
    );
    if let Some(id) = filter.registration {
        select = select.filter(payment::Column::RegistrationId.eq(id));
    }
    if let Some(id) = filter.event {
        select = select.filter(payment::Column::EventId.eq(id));
    }
    if let Some(status) = &filter.status {
        select = select.filter(payment::Column::PaymentStatus.eq(status.as_str()));
    }
    let select = select
        .order_by_asc(payment::Column::CreatedAt)
        .order_by_asc(payment::Column::Id);
    let db = state.db.conn();
    let tallied: Option<(Vec<Uuid>, bool)> = match &scope {
        _ if filter.registration.is_some() => None,
        Scope::ManagedEvent(event) => Some((vec![event.id], false)),
        Scope::OwnAnd(events) if filter.event.is_none() => Some((events.clone(), true)),
        _ => None,
    };
    let Some((events, and_own)) = tallied else {
        return Ok(super::fetch_page(db, select, page).await?);
    };
    let mut tallies = payment_tally::Entity::find()
        .filter(payment_tally::Column::EventId.is_in(events.iter().copied()));
    if let Some(status) = &filter.status {
        tallies = tallies.filter(payment_tally::Column::PaymentStatus.eq(status.as_str()));
    }
    let mut count: u64 = tallies
        .all(db)
        .await?
        .iter()
        .map(|t| t.n.max(0) as u64)
        .sum();
    if and_own {
        let mut own = payment::Entity::find()
            .filter(payment::Column::UserId.eq(caller.id))
            .filter(payment::Column::EventId.is_not_in(events.iter().copied()));
        if let Some(status) = &filter.status {
            own = own.filter(payment::Column::PaymentStatus.eq(status.as_str()));
        }
        count += own.count(db).await?;
        let merged = scope::merged_page::<payment::Entity>(
            state,
            "payments",
            "created_at",
            "user_id",
            "event_id",
            &events,
            caller,
            filter.status.as_deref().map(|s| ("payment_status =", s)),
            page,
            count,
        )
        .await?;
        if let Some(merged) = merged {
            return Ok(merged);
        }
    }
    Ok(super::fetch_page_counted(db, select, page, count).await?)
}

/// Who may pay for a registration: its user, superuser and admin (403); an
/// unknown registration is an error on `registration_id`. Only superuser and
/// admin record a status other than pending (403, once the input is valid).
pub async fn check_registration(
    state: &AppState,
    caller: &Caller,
    registration_id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<Option<registration::Model>> {
    let found = registration::Entity::find_by_id(registration_id)
        .one(state.db.conn())
        .await?;
    match found {
        None => {
            errors.add("registration_id", does_not_exist(registration_id));
            Ok(None)
        }
        Some(r) if r.user_id == caller.id || caller.is_admin() => Ok(Some(r)),
        Some(r) if caller.manages_event(organizer_of(state, r.event_id).await?) => Ok(Some(r)),
        Some(_) => Err(DomainError::Forbidden),
    }
}

/// Whether the caller manages the event of a registration (superuser,
/// admin, its organiser): they may record its payments in any status (cash
/// at the door) and move them.
pub async fn manages(
    state: &AppState,
    caller: &Caller,
    r: &registration::Model,
) -> DomainResult<bool> {
    Ok(caller.is_admin() || caller.manages_event(organizer_of(state, r.event_id).await?))
}

/// Only those who manage the event record a payment in a status other than
/// pending.
pub fn check_status_allowed(manages: bool, status: Option<&str>) -> DomainResult<()> {
    if status.is_some_and(|s| s != DEFAULT_STATUS) && !manages {
        Err(DomainError::Forbidden)
    } else {
        Ok(())
    }
}

/// How a new payment's answer is remembered for its idempotency key.
pub enum Created {
    /// Written now; `remember` stores the answer the front door renders.
    New(payment::Model),
    /// The key was already answered: that first answer.
    Replayed(Remembered),
}

/// Records a payment. With an idempotency key, the key is claimed in the
/// payment's transaction and `render` gives the body remembered for it, so
/// the same key within 24 hours replays the first answer and creates
/// nothing.
#[instrument(name = "create_payment", skip_all, fields(user = %caller.username))]
pub async fn create(
    state: &AppState,
    caller: &Caller,
    new: NewPayment,
    idempotency: Option<&RequestKey>,
    render: impl FnOnce(&payment::Model) -> String,
) -> DomainResult<Created> {
    if let Some(key) = idempotency
        && let Some(previous) = remembered(state, caller.id, key).await?
    {
        tracing::info!(
            "Payment request replayed for idempotency key of {}",
            caller.username
        );
        return Ok(Created::Replayed(previous));
    }
    let mut errors = FieldErrors::default();
    let found = check_registration(state, caller, new.registration_id, &mut errors).await?;
    let may_manage = match &found {
        Some(r) => manages(state, caller, r).await?,
        None => caller.is_admin(),
    };
    check_status_allowed(may_manage, new.status.as_deref())?;
    errors.into_result()?;
    let Some(r) = found else {
        return Err(DomainError::NotFound);
    };
    // A payment recorded as completed (cash at the door, an admin's
    // record, the Django service's clients) is taken as it is sent: the
    // underpayment rule is about marking one completed (`update`).
    let status = new.status.unwrap_or_else(|| DEFAULT_STATUS.into());

    let now = crate::db::now();
    let txn = state.db.begin_write().await?;
    let locked = lock_registration(&txn, r.id).await?;
    check_hold(state, &locked)?;
    if let Some(key) = idempotency {
        // The key is claimed first, in the payment's transaction: a
        // concurrent request with the same key waits on it, then loses the
        // race on the primary key and answers with the winner's response
        // (or 422 when it asked something else); and the payment exists if
        // and only if the key is remembered.
        let pending = Remembered {
            status: 201,
            body: String::new(),
        };
        if !idempotency::claim(&*txn, caller.id, key, &pending).await? {
            drop(txn);
            if let Some(previous) = remembered(state, caller.id, key).await? {
                return Ok(Created::Replayed(previous));
            }
            return Err(DomainError::Conflict(
                "A request with this Idempotency-Key is being processed.".into(),
            ));
        }
    }
    let inserted = payment::ActiveModel {
        id: Set(Uuid::now_v7()),
        registration_id: Set(r.id),
        user_id: Set(r.user_id),
        event_id: Set(r.event_id),
        payment_method: Set(new.payment_method),
        paid_at: Set((status == "completed").then_some(now)),
        payment_status: Set(status),
        amount_paid_minor: Set(new.amount_paid_minor),
        created_at: Set(now),
        updated_at: Set(now),
        proof_key: Set(None),
        proof_type: Set(None),
        proof_name: Set(None),
    }
    .insert(&*txn)
    .await;
    let created = match inserted {
        Ok(p) => p,
        Err(e) if is_unique_violation(&e) => return Err(DomainError::AlreadyPaid),
        Err(e) => return Err(e.into()),
    };
    if let Some(key) = idempotency {
        idempotency_key::Entity::update_many()
            .col_expr(
                idempotency_key::Column::ResponseBody,
                sea_orm::sea_query::Expr::value(render(&created)),
            )
            .filter(idempotency_key::Column::UserId.eq(caller.id))
            .filter(idempotency_key::Column::Key.eq(key.stored()))
            .exec(&*txn)
            .await?;
    }
    crate::db::audit::record_one(
        &*txn,
        &caller.audit(),
        crate::db::audit::Entry::created(crate::db::audit::Action::PaymentCreated, &created),
    )
    .await?;
    let confirmed =
        created.payment_status == "completed" && confirm_hold(&txn, caller, &locked).await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
    if confirmed {
        state.cache.invalidate(&[Family::Tickets]).await;
    }
    tracing::info!(
        "Payment {} ({}) for registration {} created by {}",
        created.id,
        created.payment_status,
        created.registration_id,
        caller.username
    );
    Ok(Created::New(created))
}

/// Locks the payment's registration row for the rest of the transaction.
/// Every change of a payment takes this lock first, then touches the
/// payment, in that order everywhere (as `registrations::cancel` does):
/// so a user's cancellation and an admin's "completed" are serialised,
/// and a payment answered "completed" is never deleted with its
/// registration. A registration gone meanwhile took its payments with it.
async fn lock_registration(
    txn: &sea_orm::DatabaseTransaction,
    registration_id: Uuid,
) -> DomainResult<registration::Model> {
    registration::Entity::find_by_id(registration_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound)
}

/// A payment of a registration whose hold is over is refused (API.md §9):
/// its seat went back on sale when the window passed, whether or not the
/// sweep has marked it yet. Judged under the registration's lock, as the
/// expiry is.
fn check_hold(state: &AppState, r: &registration::Model) -> DomainResult<()> {
    if registration_writer::holds_seat(r, state.clock.now()) {
        Ok(())
    } else {
        Err(DomainError::HoldExpired)
    }
}

/// A completed payment confirms a registration awaiting payment: its seat
/// is no longer on a timer. In the payment's transaction, under the
/// registration's lock; audited as the registration's update.
async fn confirm_hold(
    txn: &sea_orm::DatabaseTransaction,
    caller: &Caller,
    r: &registration::Model,
) -> DomainResult<bool> {
    if r.status != registration_writer::AWAITING_PAYMENT {
        return Ok(false);
    }
    let mut model: registration::ActiveModel = r.clone().into();
    model.status = Set(registration_writer::CONFIRMED.into());
    model.hold_expires_at = Set(None);
    let confirmed = model.update(txn).await?;
    crate::db::audit::record_one(
        txn,
        &caller.audit(),
        crate::db::audit::Entry::updated(
            crate::db::audit::Action::RegistrationUpdated,
            r,
            &confirmed,
        ),
    )
    .await?;
    Ok(true)
}

async fn find(state: &AppState, id: Uuid) -> DomainResult<payment::Model> {
    payment::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)
}

/// A payment: its registration's user and those who manage the event.
pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<payment::Model> {
    let found = find(state, id).await?;
    if found.user_id != caller.id
        && !caller.manages_event(organizer_of(state, found.event_id).await?)
    {
        return Err(DomainError::Forbidden);
    }
    Ok(found)
}

/// Changes are for those who manage the payment's event: superuser, admin,
/// its organiser (404, then 403).
pub async fn get_changeable(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> DomainResult<payment::Model> {
    let found = find(state, id).await?;
    if !caller.is_admin() && !caller.manages_event(organizer_of(state, found.event_id).await?) {
        return Err(DomainError::Forbidden);
    }
    Ok(found)
}

/// Deletes are for superuser and admin (404, then 403).
pub async fn get_deletable(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> DomainResult<payment::Model> {
    let found = find(state, id).await?;
    if !caller.is_admin() {
        return Err(DomainError::Forbidden);
    }
    Ok(found)
}

/// An error on `payment_status` for a move the state machine refuses.
pub fn check_transition(from: &str, to: Option<&str>, errors: &mut FieldErrors) {
    if let Some(to) = to
        && !transition_allowed(from, to)
    {
        errors.add(
            "payment_status",
            format!("Cannot change the status from \"{from}\" to \"{to}\"."),
        );
    }
}

#[instrument(name = "update_payment", skip_all, fields(user = %caller.username))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    changes: PaymentChanges,
    mut errors: FieldErrors,
) -> DomainResult<payment::Model> {
    let found = get_changeable(state, caller, id).await?;
    // An organiser moves their event's payments (status, amount); the
    // method, as the rest, is for superuser and admin.
    if !caller.is_admin() && changes.payment_method.is_some() {
        return Err(DomainError::Forbidden);
    }
    check_transition(
        &found.payment_status,
        changes.status.as_deref(),
        &mut errors,
    );
    errors.into_result()?;
    let status_after = changes.status.as_deref().unwrap_or(&found.payment_status);
    let amount_after = changes.amount_paid_minor.unwrap_or(found.amount_paid_minor);
    let completes = status_after == "completed"
        && (found.payment_status != "completed" || amount_after != found.amount_paid_minor);
    let due = amount_due(state.db.conn(), found.registration_id).await?;
    let forced = check_covers(state, completes, amount_after, due, changes.force)?;

    let now = crate::db::now();
    let mut model: payment::ActiveModel = found.clone().into();
    if let Some(v) = changes.payment_method {
        model.payment_method = Set(v);
    }
    if let Some(v) = changes.amount_paid_minor {
        model.amount_paid_minor = Set(v);
    }
    if let Some(to) = changes.status {
        if to == "completed" && found.payment_status != "completed" {
            model.paid_at = Set(Some(now));
        }
        if to == "pending" || to == "failed" {
            model.paid_at = Set(None);
        }
        model.payment_status = Set(to);
    }
    model.updated_at = Set(now);
    let txn = state.db.begin_write().await?;
    let locked = lock_registration(&txn, found.registration_id).await?;
    if completes {
        check_hold(state, &locked)?;
    }
    // As this change finds it, under its registration's lock: the log's
    // "before" values.
    let before = payment::Entity::find_by_id(found.id)
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    // Guarded on the status the transition was checked against: a concurrent
    // change makes this one a conflict instead of a forbidden move.
    let result = payment::Entity::update_many()
        .set(model)
        .filter(payment::Column::Id.eq(found.id))
        .filter(payment::Column::PaymentStatus.eq(found.payment_status.clone()))
        .exec(&*txn)
        .await;
    match result {
        Ok(r) if r.rows_affected == 1 => {}
        Ok(_) => {
            return Err(DomainError::Conflict(
                "The payment was changed meanwhile; read it again.".into(),
            ));
        }
        Err(e) if is_unique_violation(&e) => return Err(DomainError::AlreadyPaid),
        Err(e) => return Err(e.into()),
    }
    let updated = payment::Entity::find_by_id(found.id)
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    let mut entry = crate::db::audit::Entry::updated(
        crate::db::audit::Action::PaymentUpdated,
        &before,
        &updated,
    );
    if forced {
        entry.changes = entry.changes.with("forced", false, true);
    }
    crate::db::audit::record_one(&*txn, &caller.audit(), entry).await?;
    let confirmed =
        updated.payment_status == "completed" && confirm_hold(&txn, caller, &locked).await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
    if confirmed {
        state.cache.invalidate(&[Family::Tickets]).await;
    }
    tracing::info!(
        "Payment {} updated by {} (status {})",
        updated.id,
        caller.username,
        updated.payment_status
    );
    Ok(updated)
}

#[instrument(name = "delete_payment", skip_all, fields(user = %caller.username))]
pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = get_deletable(state, caller, id).await?;
    let txn = state.db.begin_write().await?;
    lock_registration(&txn, found.registration_id).await?;
    payment::Entity::delete_by_id(found.id).exec(&*txn).await?;
    crate::db::audit::record_one(
        &*txn,
        &caller.audit(),
        crate::db::audit::Entry::deleted(crate::db::audit::Action::PaymentDeleted, &found),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
    tracing::info!("Payment {} deleted by {}", found.id, caller.username);
    Ok(())
}

/// The status people should see for each registration: `completed` if one
/// payment is, else the latest payment's status (none: no payment yet).
pub async fn status_by_registration(
    state: &AppState,
    registration_ids: &[Uuid],
) -> DomainResult<std::collections::HashMap<Uuid, String>> {
    let mut statuses = std::collections::HashMap::new();
    if registration_ids.is_empty() {
        return Ok(statuses);
    }
    let rows = payment::Entity::find()
        .filter(payment::Column::RegistrationId.is_in(registration_ids.iter().copied()))
        .order_by_asc(payment::Column::CreatedAt)
        .order_by_asc(payment::Column::Id)
        .all(state.db.conn())
        .await?;
    for p in rows {
        let shown = statuses
            .entry(p.registration_id)
            .or_insert_with(String::new);
        if shown != "completed" {
            *shown = p.payment_status;
        }
    }
    Ok(statuses)
}

/// The largest proof of transfer accepted: 2 MiB.
pub const MAX_PROOF_BYTES: usize = 2 * 1024 * 1024;

/// A proof of transfer checked by its bytes: an image or a PDF.
#[derive(Debug, Clone)]
pub struct CheckedProof {
    pub bytes: bytes::Bytes,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub file_name: Option<String>,
}

/// The proof rules, errors on `proof`: a file, not empty, an image (JPEG,
/// PNG, GIF, WebP) or a PDF by its first bytes — the type is judged first,
/// so a large file of the wrong kind is told so — and at most 2 MiB.
pub fn check_proof(
    upload: Option<super::posters::PosterImage>,
    errors: &mut FieldErrors,
) -> Option<CheckedProof> {
    let Some(upload) = upload else {
        errors.add("proof", "Choose the file of your proof of transfer.");
        return None;
    };
    if upload.size == 0 {
        errors.add("proof", "The submitted file is empty.");
        return None;
    }
    let kind = super::posters::sniff_image(&upload.bytes).or_else(|| {
        upload
            .bytes
            .starts_with(b"%PDF-")
            .then_some(("application/pdf", "pdf"))
    });
    let Some((content_type, extension)) = kind else {
        errors.add(
            "proof",
            "Upload a photo or scan of the transfer (JPEG, PNG, GIF or WebP) or a PDF.",
        );
        return None;
    };
    if upload.size > MAX_PROOF_BYTES {
        errors.add(
            "proof",
            format!(
                "The file is too large ({:.1} MiB); the limit is 2 MiB.",
                upload.size as f64 / (1024.0 * 1024.0)
            ),
        );
        return None;
    }
    Some(CheckedProof {
        bytes: upload.bytes,
        content_type,
        extension,
        file_name: upload.file_name,
    })
}

/// An attendee's proof of transfer for their registration: stored like a
/// poster (under `proofs/`), it makes a `pending` payment of the amount due
/// for the event's managers to confirm — or renews the proof of the
/// pending one. A free ticket, another's registration, or one already paid
/// is refused.
#[instrument(name = "submit_proof", skip_all, fields(user = %caller.username))]
pub async fn submit_proof(
    state: &AppState,
    caller: &Caller,
    registration_id: Uuid,
    proof: CheckedProof,
) -> DomainResult<payment::Model> {
    let r = registration::Entity::find_by_id(registration_id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    if r.user_id != caller.id {
        return Err(DomainError::NotFound);
    }
    let due = amount_due(state.db.conn(), r.id).await?;
    if due == 0 {
        return Err(DomainError::Invalid(FieldErrors::single(
            "proof",
            "This ticket is free: there is nothing to pay.",
        )));
    }
    let key = format!(
        "proofs/{}/{}.{}",
        r.event_id,
        Uuid::now_v7(),
        proof.extension
    );
    state
        .storage
        .put(&key, proof.bytes.clone())
        .await
        .map_err(super::posters::storage_error)?;
    let name = super::posters::sanitise_file_name(proof.file_name.as_deref());
    let written = async {
        let now = crate::db::now();
        let txn = state.db.begin_write().await?;
        let locked = lock_registration(&txn, r.id).await?;
        check_hold(state, &locked)?;
        let existing = payment::Entity::find()
            .filter(payment::Column::RegistrationId.eq(r.id))
            .order_by_desc(payment::Column::CreatedAt)
            .all(&*txn)
            .await?;
        if existing.iter().any(|p| p.payment_status == "completed") {
            return Err(DomainError::AlreadyPaid);
        }
        let (saved, replaced, entry) =
            match existing.into_iter().find(|p| p.payment_status == "pending") {
                Some(pending) => {
                    let mut model: payment::ActiveModel = pending.clone().into();
                    model.amount_paid_minor = Set(due);
                    model.proof_key = Set(Some(key.clone()));
                    model.proof_type = Set(Some(proof.content_type.to_owned()));
                    model.proof_name = Set(Some(name.clone()));
                    model.updated_at = Set(now);
                    let updated = model.update(&*txn).await?;
                    let entry = crate::db::audit::Entry::updated(
                        crate::db::audit::Action::PaymentUpdated,
                        &pending,
                        &updated,
                    )
                    .with_change(
                        "proof",
                        pending.proof_name.clone(),
                        Some(name.clone()),
                    );
                    (updated, pending.proof_key.clone(), entry)
                }
                None => {
                    let created = payment::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        registration_id: Set(r.id),
                        user_id: Set(r.user_id),
                        event_id: Set(r.event_id),
                        payment_method: Set("bank_transfer".into()),
                        payment_status: Set(DEFAULT_STATUS.into()),
                        amount_paid_minor: Set(due),
                        paid_at: Set(None),
                        created_at: Set(now),
                        updated_at: Set(now),
                        proof_key: Set(Some(key.clone())),
                        proof_type: Set(Some(proof.content_type.to_owned())),
                        proof_name: Set(Some(name.clone())),
                    }
                    .insert(&*txn)
                    .await?;
                    let entry = crate::db::audit::Entry::created(
                        crate::db::audit::Action::PaymentCreated,
                        &created,
                    )
                    .with_change("proof", None::<String>, Some(name.clone()));
                    (created, None, entry)
                }
            };
        crate::db::audit::record_one(&*txn, &caller.audit(), entry).await?;
        txn.commit().await?;
        Ok::<_, DomainError>((saved, replaced))
    }
    .await;
    match written {
        Ok((saved, replaced)) => {
            state.cache.invalidate(&[Family::Console]).await;
            if let Some(old) = replaced
                && let Err(e) = state.storage.delete(&old).await
            {
                tracing::warn!("could not delete the replaced proof {old}: {e}");
            }
            tracing::info!(
                "Proof of transfer for registration {} sent by {} ({} bytes, {})",
                r.id,
                caller.username,
                proof.bytes.len(),
                proof.content_type
            );
            Ok(saved)
        }
        Err(e) => {
            if let Err(err) = state.storage.delete(&key).await {
                tracing::error!("could not delete {key} after a failed proof: {err}");
            }
            Err(e)
        }
    }
}

/// A payment's proof of transfer (bytes, content type, file name): for its
/// payer and those who manage its event.
pub async fn read_proof(
    state: &AppState,
    caller: &Caller,
    payment_id: Uuid,
) -> DomainResult<(bytes::Bytes, String, String)> {
    let found = get(state, caller, payment_id).await?;
    let (Some(key), Some(kind)) = (found.proof_key, found.proof_type) else {
        return Err(DomainError::NotFound);
    };
    let bytes = state
        .storage
        .get(&key)
        .await
        .map_err(super::posters::storage_error)?;
    Ok((
        bytes,
        kind,
        found.proof_name.unwrap_or_else(|| "proof".into()),
    ))
}

/// Each registration's payment people should see: the completed one, else
/// the latest.
pub async fn shown_by_registration(
    state: &AppState,
    registration_ids: &[Uuid],
) -> DomainResult<std::collections::HashMap<Uuid, payment::Model>> {
    let mut shown = std::collections::HashMap::new();
    if registration_ids.is_empty() {
        return Ok(shown);
    }
    let rows = payment::Entity::find()
        .filter(payment::Column::RegistrationId.is_in(registration_ids.iter().copied()))
        .order_by_asc(payment::Column::CreatedAt)
        .order_by_asc(payment::Column::Id)
        .all(state.db.conn())
        .await?;
    for p in rows {
        let keep = shown
            .get(&p.registration_id)
            .is_some_and(|k: &payment::Model| k.payment_status == "completed");
        if !keep {
            shown.insert(p.registration_id, p);
        }
    }
    Ok(shown)
}
