//! Vouchers (API.md §9): codes of one event that give a discount on some of
//! its tickets (or all) and may unlock hidden tickets; managed by those who
//! manage the event. `uses` is a guarded counter moved with the
//! registration that uses it (`db::registration_writer`), so it never
//! passes `max_uses` under any concurrency, and an expired or deleted
//! registration gives its use back.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::{Caller, DomainError, DomainResult, FieldErrors, Page, PageRequest, does_not_exist};
use crate::cache::Family;
use crate::db::audit::{self, Action, Entry};
use crate::db::entities::{event, registration, ticket, voucher};
use crate::state::AppState;

pub const DISCOUNT_TYPES: &[&str] = &["percent", "fixed", "none"];
pub const MAX_CODE: usize = 64;
/// A percent discount is at most 100 % (in hundredths).
const FULL: i64 = 10_000;

/// A new voucher, already parsed (`discount_value` in hundredths).
#[derive(Debug, Clone)]
pub struct NewVoucher {
    pub event_id: Uuid,
    pub code: String,
    pub tickets: Vec<Uuid>,
    pub discount_type: String,
    pub discount_value: i64,
    pub max_uses: Option<i32>,
    pub valid_until: Option<DateTime<Utc>>,
    pub unlocks_hidden: bool,
}

/// The fields an update sets (`None`: unchanged; `Some(None)`: cleared).
#[derive(Debug, Clone, Default)]
pub struct VoucherChanges {
    pub code: Option<String>,
    pub tickets: Option<Vec<Uuid>>,
    pub discount_type: Option<String>,
    pub discount_value: Option<i64>,
    pub max_uses: Option<Option<i32>>,
    pub valid_until: Option<Option<DateTime<Utc>>>,
    pub unlocks_hidden: Option<bool>,
}

/// The tickets a voucher is for (empty: every ticket of its event).
pub fn tickets_of(v: &voucher::Model) -> Vec<Uuid> {
    serde_json::from_str(&v.ticket_ids).unwrap_or_default()
}

/// What a ticket of `price_minor` costs with this voucher, never below 0.
pub fn discounted(v: &voucher::Model, price_minor: i64) -> i64 {
    let off = match v.discount_type.as_str() {
        // Rounded to the minor unit, in the buyer's favour.
        "percent" => (price_minor * v.discount_value.min(FULL) + FULL - 1) / FULL,
        "fixed" => v.discount_value,
        _ => 0,
    };
    (price_minor - off).max(0)
}

/// A code as stored for comparison: codes are case-insensitive.
pub fn code_key(code: &str) -> String {
    code.trim().to_uppercase()
}

/// The voucher a registration on `ticket` names by `code`, or why it may
/// not be used (a message for the `voucher` field). Its use is taken with
/// the registration, under the counter's guard; this only answers early.
pub async fn redeemable(
    state: &AppState,
    ticket: &super::registrations::TicketRules,
    code: &str,
    now: DateTime<Utc>,
) -> DomainResult<Result<voucher::Model, String>> {
    let found = voucher::Entity::find()
        .filter(voucher::Column::EventId.eq(ticket.event_id))
        .filter(voucher::Column::CodeKey.eq(code_key(code)))
        .one(state.db.conn())
        .await?;
    let Some(v) = found else {
        return Ok(Err("No such voucher for this event.".into()));
    };
    if v.valid_until.is_some_and(|until| until <= now) {
        return Ok(Err("This voucher has expired.".into()));
    }
    if v.max_uses.is_some_and(|max| v.uses >= max) {
        return Ok(Err("This voucher has been used up.".into()));
    }
    let tickets = tickets_of(&v);
    if !tickets.is_empty() && !tickets.contains(&ticket.ticket_id) {
        return Ok(Err("This voucher is not for this ticket.".into()));
    }
    if ticket.hidden && !v.unlocks_hidden {
        return Ok(Err("This voucher does not unlock this ticket.".into()));
    }
    Ok(Ok(v))
}

/// The event of a voucher, managed by the caller: an error on `event`
/// when unknown, 403 when not theirs.
async fn check_event(
    state: &AppState,
    caller: &Caller,
    event_id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<Option<event::Model>> {
    match event::Entity::find_by_id(event_id)
        .one(state.db.conn())
        .await?
    {
        None => {
            errors.add("event", does_not_exist(event_id));
            Ok(None)
        }
        Some(e) if !caller.manages_event(e.organizer_id) => Err(DomainError::Forbidden),
        Some(e) => Ok(Some(e)),
    }
}

/// Every ticket named belongs to the event.
async fn check_tickets(
    state: &AppState,
    event_id: Uuid,
    tickets: &[Uuid],
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    if tickets.is_empty() {
        return Ok(());
    }
    let known: Vec<Uuid> = ticket::Entity::find()
        .filter(ticket::Column::EventId.eq(event_id))
        .filter(ticket::Column::Id.is_in(tickets.iter().copied()))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|t| t.id)
        .collect();
    for id in tickets {
        if !known.contains(id) {
            errors.add("tickets", format!("{id} is not a ticket of this event."));
        }
    }
    Ok(())
}

fn check_code(code: &str, errors: &mut FieldErrors) {
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        errors.add(
            "code",
            "Use 1 to 64 letters, digits, hyphens or underscores.",
        );
    }
}

fn check_discount(kind: &str, value: i64, errors: &mut FieldErrors) {
    if kind == "percent" && !(0..=FULL).contains(&value) {
        errors.add("discount_value", "A percentage is between 0 and 100.");
    }
    if value < 0 {
        errors.add("discount_value", "Not below 0.");
    }
}

async fn code_taken(
    state: &AppState,
    event_id: Uuid,
    code: &str,
    except: Option<Uuid>,
) -> DomainResult<bool> {
    let mut select = voucher::Entity::find()
        .filter(voucher::Column::EventId.eq(event_id))
        .filter(voucher::Column::CodeKey.eq(code_key(code)));
    if let Some(id) = except {
        select = select.filter(voucher::Column::Id.ne(id));
    }
    Ok(select.count(state.db.conn()).await? > 0)
}

const CODE_TAKEN: &str = "A voucher with this code already exists for this event.";

/// Those who could manage an event: superuser, admin, organisers.
fn authorize(caller: &Caller) -> DomainResult<()> {
    if caller.is_admin() || caller.can_create_events() {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// The vouchers the caller manages (all for superuser and admin; their
/// events' for organisers), optionally of one event, newest first.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    event_id: Option<Uuid>,
    request: PageRequest,
) -> DomainResult<Page<voucher::Model>> {
    authorize(caller)?;
    let mut select = voucher::Entity::find();
    if let Some(id) = event_id {
        select = select.filter(voucher::Column::EventId.eq(id));
    }
    if !caller.is_admin() {
        select = select.filter(
            voucher::Column::EventId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(event::Column::Id)
                    .from(event::Entity)
                    .and_where(event::Column::OrganizerId.eq(caller.id))
                    .to_owned(),
            ),
        );
    }
    let select = select
        .order_by_desc(voucher::Column::CreatedAt)
        .order_by_desc(voucher::Column::Id);
    Ok(super::fetch_page(state.db.conn(), select, request).await?)
}

/// One voucher the caller manages (404, then 403).
pub async fn get(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<voucher::Model> {
    authorize(caller)?;
    let found = voucher::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)?;
    let organizer = super::registrations::organizer_of(state, found.event_id).await?;
    if !caller.manages_event(organizer) {
        return Err(DomainError::Forbidden);
    }
    Ok(found)
}

#[instrument(name = "create_voucher", skip_all, fields(user = %caller.username))]
pub async fn create(
    state: &AppState,
    caller: &Caller,
    new: NewVoucher,
    mut errors: FieldErrors,
) -> DomainResult<voucher::Model> {
    authorize(caller)?;
    let event = check_event(state, caller, new.event_id, &mut errors).await?;
    check_code(new.code.trim(), &mut errors);
    check_discount(&new.discount_type, new.discount_value, &mut errors);
    if let Some(e) = &event {
        check_tickets(state, e.id, &new.tickets, &mut errors).await?;
        if !errors.has("code") && code_taken(state, e.id, &new.code, None).await? {
            errors.add("code", CODE_TAKEN);
        }
    }
    errors.into_result()?;
    let Some(event) = event else {
        return Err(DomainError::NotFound);
    };
    let txn = state.db.begin_write().await?;
    let created = voucher::ActiveModel {
        id: Set(Uuid::now_v7()),
        event_id: Set(event.id),
        code: Set(new.code.trim().to_owned()),
        code_key: Set(code_key(&new.code)),
        ticket_ids: Set(serde_json::to_string(&new.tickets).unwrap_or_else(|_| "[]".into())),
        discount_type: Set(new.discount_type),
        discount_value: Set(new.discount_value),
        max_uses: Set(new.max_uses),
        uses: Set(0),
        valid_until: Set(new.valid_until),
        unlocks_hidden: Set(new.unlocks_hidden),
        created_at: Set(crate::db::now()),
    }
    .insert(&*txn)
    .await;
    let created = match created {
        Ok(v) => v,
        Err(e) if crate::db::errors::is_unique_violation(&e) => {
            return Err(DomainError::Invalid(FieldErrors::single(
                "code", CODE_TAKEN,
            )));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::created(Action::VoucherCreated, &created),
    )
    .await?;
    txn.commit().await?;
    tracing::info!(
        "Voucher {} for event {} created by {}",
        created.code,
        created.event_id,
        caller.username
    );
    Ok(created)
}

#[instrument(name = "update_voucher", skip_all, fields(user = %caller.username))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    changes: VoucherChanges,
    mut errors: FieldErrors,
) -> DomainResult<voucher::Model> {
    let found = get(state, caller, id).await?;
    if let Some(code) = &changes.code {
        check_code(code.trim(), &mut errors);
        if !errors.has("code") && code_taken(state, found.event_id, code, Some(found.id)).await? {
            errors.add("code", CODE_TAKEN);
        }
    }
    check_discount(
        changes
            .discount_type
            .as_deref()
            .unwrap_or(&found.discount_type),
        changes.discount_value.unwrap_or(found.discount_value),
        &mut errors,
    );
    if let Some(tickets) = &changes.tickets {
        check_tickets(state, found.event_id, tickets, &mut errors).await?;
    }
    errors.into_result()?;
    let mut model: voucher::ActiveModel = found.clone().into();
    if let Some(code) = changes.code {
        model.code_key = Set(code_key(&code));
        model.code = Set(code.trim().to_owned());
    }
    if let Some(tickets) = changes.tickets {
        model.ticket_ids = Set(serde_json::to_string(&tickets).unwrap_or_else(|_| "[]".into()));
    }
    if let Some(v) = changes.discount_type {
        model.discount_type = Set(v);
    }
    if let Some(v) = changes.discount_value {
        model.discount_value = Set(v);
    }
    if let Some(v) = changes.max_uses {
        model.max_uses = Set(v);
    }
    if let Some(v) = changes.valid_until {
        model.valid_until = Set(v);
    }
    if let Some(v) = changes.unlocks_hidden {
        model.unlocks_hidden = Set(v);
    }
    let txn = state.db.begin_write().await?;
    // Guarded in the UPDATE: uses taken meanwhile are never cut below.
    let mut update = voucher::Entity::update_many()
        .set(model)
        .col_expr(voucher::Column::Uses, Expr::col(voucher::Column::Uses))
        .filter(voucher::Column::Id.eq(found.id));
    if let Some(Some(max)) = changes.max_uses {
        update = update.filter(voucher::Column::Uses.lte(max));
    }
    let done = match update.exec(&*txn).await {
        Ok(done) => done,
        Err(e) if crate::db::errors::is_unique_violation(&e) => {
            return Err(DomainError::Invalid(FieldErrors::single(
                "code", CODE_TAKEN,
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if done.rows_affected == 0 {
        let uses = voucher::Entity::find_by_id(found.id)
            .one(&*txn)
            .await?
            .map_or(0, |v| v.uses);
        return Err(DomainError::Invalid(FieldErrors::single(
            "max_uses",
            format!("Not below the {uses} uses so far."),
        )));
    }
    let updated = voucher::Entity::find_by_id(found.id)
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::updated(Action::VoucherUpdated, &found, &updated),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
    Ok(updated)
}

/// Deletes a voucher; registrations made with it keep their price.
#[instrument(name = "delete_voucher", skip_all, fields(user = %caller.username))]
pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = get(state, caller, id).await?;
    let txn = state.db.begin_write().await?;
    registration::Entity::update_many()
        .col_expr(
            registration::Column::VoucherId,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(registration::Column::VoucherId.eq(found.id))
        .exec(&*txn)
        .await?;
    voucher::Entity::delete_by_id(found.id).exec(&*txn).await?;
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::deleted(Action::VoucherDeleted, &found),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Console]).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voucher(kind: &str, value: i64) -> voucher::Model {
        voucher::Model {
            id: Uuid::nil(),
            event_id: Uuid::nil(),
            code: "X".into(),
            code_key: "X".into(),
            ticket_ids: "[]".into(),
            discount_type: kind.into(),
            discount_value: value,
            max_uses: None,
            uses: 0,
            valid_until: None,
            unlocks_hidden: false,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn discounts_never_go_below_zero_and_round_for_the_buyer() {
        // Minor units: 10000 is 100.00.
        assert_eq!(discounted(&voucher("percent", 2500), 10000), 7500);
        assert_eq!(discounted(&voucher("percent", 10000), 10000), 0);
        assert_eq!(discounted(&voucher("percent", 3333), 100), 66);
        assert_eq!(discounted(&voucher("fixed", 5000000), 7500000), 2500000);
        assert_eq!(discounted(&voucher("fixed", 9000000), 7500000), 0);
        assert_eq!(discounted(&voucher("none", 0), 7500000), 7500000);
    }
}
