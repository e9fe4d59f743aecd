//! Payments for registrations: the status state machine, at most one
//! completed payment per registration, idempotent creation.

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
use crate::db::entities::{idempotency_key, payment, payment_tally, registration};
use crate::db::errors::is_unique_violation;
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
            filter.status.as_deref(),
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
        Some(r) if r.user_id != caller.id && !caller.is_admin() => Err(DomainError::Forbidden),
        Some(r) => Ok(Some(r)),
    }
}

/// Only superuser and admin record a payment in a status other than pending.
pub fn check_status_allowed(caller: &Caller, status: Option<&str>) -> DomainResult<()> {
    if status.is_some_and(|s| s != DEFAULT_STATUS) && !caller.is_admin() {
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
    check_status_allowed(caller, new.status.as_deref())?;
    errors.into_result()?;
    let Some(r) = found else {
        return Err(DomainError::NotFound);
    };
    let status = new.status.unwrap_or_else(|| DEFAULT_STATUS.into());

    let now = crate::db::now();
    let txn = state.db.begin_write().await?;
    lock_registration(&txn, r.id).await?;
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
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
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
) -> DomainResult<()> {
    registration::Entity::find_by_id(registration_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .map(|_| ())
        .ok_or(DomainError::NotFound)
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

/// Changes and deletes are for superuser and admin (404, then 403).
pub async fn get_changeable(
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
    check_transition(
        &found.payment_status,
        changes.status.as_deref(),
        &mut errors,
    );
    errors.into_result()?;

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
    lock_registration(&txn, found.registration_id).await?;
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
    crate::db::audit::record_one(
        &*txn,
        &caller.audit(),
        crate::db::audit::Entry::updated(
            crate::db::audit::Action::PaymentUpdated,
            &before,
            &updated,
        ),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
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
    let found = get_changeable(state, caller, id).await?;
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
