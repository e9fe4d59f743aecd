//! Events: who may create and change them, their statuses, what a delete
//! takes with it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Set,
};
use tracing::instrument;
use uuid::Uuid;

use super::{
    Caller, Counted, DomainError, DomainResult, FieldErrors, Page, PageRequest, does_not_exist,
};
use crate::cache::Family;
use crate::db::audit::{self, Action, Entry};
use crate::db::entities::{event, event_tally, ticket, user};
use crate::state::AppState;

pub const STATUSES: &[&str] = &["draft", "scheduled", "ongoing", "completed", "cancelled"];
/// Spellings accepted for a status (`canceled`, as the Django service wrote it).
pub const STATUS_ALIASES: &[(&str, &str)] = &[("canceled", "cancelled")];
pub const DEFAULT_STATUS: &str = "scheduled";

/// Largest quota accepted (fits every backend's integer).
pub const MAX_QUOTA: i64 = 2_147_483_647;

/// The fields lists may be ordered by.
pub const ORDERINGS: &[&str] = &["start_time", "name", "created_at", "quota"];

/// A new event, already parsed. `status` is one of `STATUSES`.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub name: String,
    pub description: String,
    pub location: String,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub quota: i64,
    pub category: String,
    pub status: Option<String>,
    /// Default: the caller.
    pub organizer_id: Option<Uuid>,
    /// An IANA name; `None`: the server's `TIME_ZONE`.
    pub timezone: Option<String>,
    pub payment_instructions: Option<String>,
}

/// The fields an update sets (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EventChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub location: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub quota: Option<i64>,
    pub category: Option<String>,
    pub status: Option<String>,
    pub organizer_id: Option<Uuid>,
    /// `Some(None)`: back to the server's `TIME_ZONE`.
    pub timezone: Option<Option<String>>,
    /// `Some(None)`: none.
    pub payment_instructions: Option<Option<String>>,
}

/// The time zone an event happens in: its own, else the server's
/// `TIME_ZONE`. Pages and mails show its times there.
pub fn zone_of(state: &AppState, event: &event::Model) -> chrono_tz::Tz {
    event.zone(state.config.time_zone)
}

/// What a list selects; text filters are matched case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub category: Option<String>,
    pub status: Option<String>,
    pub organizer: Option<Uuid>,
    pub location: Option<String>,
    pub search: Option<String>,
    /// Name, description or place contains it (the console's browse box).
    pub anywhere: Option<String>,
    pub start_after: Option<DateTime<Utc>>,
    pub start_before: Option<DateTime<Utc>>,
}

/// `%` and `_` in user input match themselves in a LIKE pattern.
pub(crate) fn like_contains(raw: &str) -> LikeExpr {
    LikeExpr::new(contains_pattern(raw)).escape('\\')
}

/// The LIKE pattern (escaped with `\`) of a case-insensitive "contains".
fn contains_pattern(raw: &str) -> String {
    let mut pattern = String::with_capacity(raw.len() + 2);
    pattern.push('%');
    for c in raw.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of events. `ordering`: fields of `ORDERINGS` and whether each is
/// descending (ties broken by id); the count is kept in the cache under
/// `count_generation` when given.
pub async fn list(
    state: &AppState,
    filter: &EventFilter,
    ordering: &[(&str, bool)],
    page: PageRequest,
    count_generation: Option<u64>,
) -> DomainResult<Page<event::Model>> {
    let mut select = event::Entity::find();
    if let Some(category) = &filter.category {
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(event::Column::Category))).eq(category.to_lowercase()),
        );
    }
    if let Some(status) = &filter.status {
        select = select.filter(event::Column::Status.eq(status.as_str()));
    }
    if let Some(organizer) = filter.organizer {
        select = select.filter(event::Column::OrganizerId.eq(organizer));
    }
    if let Some(location) = &filter.location {
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(event::Column::Location)))
                .like(like_contains(location)),
        );
    }
    let postgres = state.db.backend() == DbBackend::Postgres;
    if let Some(search) = &filter.search {
        select = if postgres && !search.contains(TEXT_SEPARATOR) {
            // Name and description joined, as their one trigram index is
            // (migration `EventTextSearch`): the text cannot span the two.
            select.filter(trigram_contains(EVENT_TEXT, search))
        } else {
            let pattern = like_contains(search);
            select.filter(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(event::Column::Name)))
                            .like(pattern.clone()),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(event::Column::Description)))
                            .like(pattern),
                    ),
            )
        };
    }
    if let Some(text) = &filter.anywhere {
        select = if postgres && !text.contains(TEXT_SEPARATOR) {
            // The text-search index and the location's, one bitmap each.
            select.filter(
                Condition::any()
                    .add(trigram_contains(EVENT_TEXT, text))
                    .add(trigram_contains(EVENT_LOCATION, text)),
            )
        } else {
            let pattern = like_contains(text);
            select.filter(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(event::Column::Name)))
                            .like(pattern.clone()),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(event::Column::Description)))
                            .like(pattern.clone()),
                    )
                    .add(Expr::expr(Func::lower(Expr::col(event::Column::Location))).like(pattern)),
            )
        };
    }
    if let Some(after) = filter.start_after {
        select = select.filter(event::Column::StartTime.gte(after));
    }
    if let Some(before) = filter.start_before {
        select = select.filter(event::Column::StartTime.lte(before));
    }
    let mut order: Vec<(event::Column, bool)> = ordering
        .iter()
        .map(|(field, descending)| {
            let column = match *field {
                "name" => event::Column::Name,
                "created_at" => event::Column::CreatedAt,
                "quota" => event::Column::Quota,
                _ => event::Column::StartTime,
            };
            (column, *descending)
        })
        .collect();
    // Ties by id, in the direction of the first field.
    let ties_descending = ordering.first().is_some_and(|(_, descending)| *descending);
    order.push((event::Column::Id, ties_descending));
    // A text search is not planned per value: its generic plan (the
    // trigram index, asked for each word) is right at every size, and
    // planning each search cost more than it saved (bench/scale.sh: 509
    // against 1,003 searches a second). Its page and its count come from
    // one scan on PostgreSQL.
    let db = state.db.conn();
    if postgres
        && (filter.search.is_some() || filter.anywhere.is_some())
        && let Some(page) = page_with_its_count(db, select.clone(), &order, page).await?
    {
        return Ok(page);
    }
    for (column, descending) in &order {
        select = if *descending {
            select.order_by_desc(*column)
        } else {
            select.order_by_asc(*column)
        };
    }
    let count = match tallied_count(state, filter).await? {
        Some(count) => count,
        None => {
            let counted = select.clone();
            state
                .cache
                .count(
                    Family::Events,
                    count_generation,
                    &format!("{filter:?}"),
                    || sea_orm::PaginatorTrait::count(counted, db),
                )
                .await?
        }
    };
    Ok(super::fetch_page_counted(db, select, page, count).await?)
}

/// What joins an event's name and description in the text-search index.
const TEXT_SEPARATOR: char = '\u{1f}';

/// An event's name and description as their one trigram index holds them
/// (migration `EventTextSearch`: the text cannot span the two).
const EVENT_TEXT: &str = "lower(\"events\".\"name\" || E'\\x1f' || \"events\".\"description\")";

/// An event's location as its trigram index holds it.
const EVENT_LOCATION: &str = "lower(\"events\".\"location\")";

/// `indexed` (an expression a trigram index holds, lower case) contains
/// `search` (any case), on PostgreSQL. The index is asked for each word of
/// three letters or more (`LIKE '%word%'`), and the whole text is then
/// matched in the rows it finds (`strpos`). Asked for the text as one
/// pattern, the index also reads the trigrams of each word's edges ("an "
/// ends "gamelan "), which nearly every row holds: a search whose answer
/// is the same forty events read the whole of those lists, 0.8 ms at
/// 10,000 events against 0.03 ms for the words alone (bench/scale.sh).
fn trigram_contains(indexed: &str, search: &str) -> sea_orm::sea_query::SimpleExpr {
    let lowered = search.to_lowercase();
    let mut words: Vec<&str> = lowered
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() >= 3)
        .collect();
    words.sort_unstable();
    words.dedup();
    if words.is_empty() {
        // No trigram inside a word: the pattern as it is.
        return Expr::cust_with_values(
            format!("{indexed} LIKE $1 ESCAPE '\\'"),
            [contains_pattern(search)],
        );
    }
    let mut sql = Vec::with_capacity(words.len() + 1);
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(words.len() + 1);
    for word in &words {
        values.push(contains_pattern(word).into());
        sql.push(format!("{indexed} LIKE ${} ESCAPE '\\'", values.len()));
    }
    if words != [lowered.as_str()] {
        values.push(lowered.clone().into());
        sql.push(format!("strpos({indexed}, ${}) > 0", values.len()));
    }
    Expr::cust_with_values(format!("({})", sql.join(" AND ")), values)
}

/// The requested page and the number of matching events from one
/// statement (each row carries the count; PostgreSQL): `None` for a page
/// past the end, which is then resolved to the last page as usual.
///
/// The matches are found first (a materialised `WITH`), then ordered. Left
/// to itself PostgreSQL walks the ordering's index and filters every event
/// on the way, reckoning that the page is found early. But the count needs
/// every match, so it reads all the events: 7 ms at 10,000, against 0.4 ms
/// from the trigram index and a sort of the few matches.
async fn page_with_its_count(
    db: &DatabaseConnection,
    matching: Select<event::Entity>,
    order: &[(event::Column, bool)],
    request: PageRequest,
) -> Result<Option<Page<event::Model>>, DbErr> {
    use sea_orm::sea_query::{Alias, Asterisk, CommonTableExpression, Order, Query, WithClause};
    let size = Ord::max(request.size, 1);
    let number = Ord::max(request.page, 1);
    let matches = Alias::new("matches");
    let mut found = CommonTableExpression::new();
    found
        .query(QueryTrait::into_query(matching))
        .table_name(matches.clone())
        .materialized(true);
    let mut page = Query::select();
    page.column(Asterisk)
        .expr_as(Expr::cust("count(*) OVER ()"), Alias::new("total"))
        .from(matches.clone())
        .offset((number - 1).saturating_mul(size))
        .limit(size);
    for (column, descending) in order {
        page.order_by(
            (matches.clone(), *column),
            if *descending { Order::Desc } else { Order::Asc },
        );
    }
    let statement = page.with(WithClause::new().cte(found).to_owned());
    let rows =
        Counted::<event::Model>::find_by_statement(db.get_database_backend().build(&statement))
            .all(db)
            .await?;
    Ok(Page::of_counted(rows, number, size))
}

/// The number of events a filter of status and/or category alone selects,
/// from the tallies the database keeps per (status, category); `None` when
/// the filter has another condition (those are counted from the rows, the
/// search and the location through their trigram indexes).
async fn tallied_count(state: &AppState, filter: &EventFilter) -> DomainResult<Option<u64>> {
    let EventFilter {
        category,
        status,
        organizer: None,
        location: None,
        search: None,
        anywhere: None,
        start_after: None,
        start_before: None,
    } = filter
    else {
        return Ok(None);
    };
    let mut tallies = event_tally::Entity::find();
    if let Some(category) = category {
        tallies = tallies.filter(event_tally::Column::CategoryKey.eq(category.to_lowercase()));
    }
    if let Some(status) = status {
        tallies = tallies.filter(event_tally::Column::Status.eq(status.as_str()));
    }
    Ok(Some(
        tallies
            .all(state.db.conn())
            .await?
            .iter()
            .map(|t| u64::try_from(t.n).unwrap_or(0))
            .sum(),
    ))
}

/// Events by id (those that exist), for a list that names them.
pub async fn by_ids(
    state: &AppState,
    ids: &[Uuid],
) -> DomainResult<std::collections::HashMap<Uuid, event::Model>> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(event::Entity::find()
        .filter(event::Column::Id.is_in(ids.iter().copied()))
        .all(state.db.conn())
        .await?
        .into_iter()
        .map(|e| (e.id, e))
        .collect())
}

pub async fn get(state: &AppState, id: Uuid) -> DomainResult<event::Model> {
    event::Entity::find_by_id(id)
        .one(state.db.conn())
        .await?
        .ok_or(DomainError::NotFound)
}

/// An event the caller manages (404 when unknown, 403 when not theirs).
pub async fn get_managed(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> DomainResult<event::Model> {
    let found = get(state, id).await?;
    if !caller.manages_event(found.organizer_id) {
        return Err(DomainError::Forbidden);
    }
    Ok(found)
}

/// Superuser, admin or organizer (403 otherwise).
pub fn authorize_create(caller: &Caller) -> DomainResult<()> {
    if caller.can_create_events() {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// Who may be named organiser: superuser/admin anyone existing, an
/// organiser only themselves (403 otherwise); an unknown user is an error on
/// `organizer_id`.
pub async fn check_organizer(
    state: &AppState,
    caller: &Caller,
    organizer_id: Uuid,
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    if organizer_id == caller.id {
        return Ok(());
    }
    if !caller.is_admin() {
        return Err(DomainError::Forbidden);
    }
    if user::Entity::find_by_id(organizer_id)
        .one(state.db.conn())
        .await?
        .is_none()
    {
        errors.add("organizer_id", does_not_exist(organizer_id));
    }
    Ok(())
}

#[instrument(name = "create_event", skip_all, fields(user = %caller.username))]
pub async fn create(
    state: &AppState,
    caller: &Caller,
    new: NewEvent,
) -> DomainResult<event::Model> {
    authorize_create(caller)?;
    let organizer_id = new.organizer_id.unwrap_or(caller.id);
    let mut errors = FieldErrors::default();
    check_organizer(state, caller, organizer_id, &mut errors).await?;
    errors.into_result()?;
    let now = crate::db::now();
    let model = event::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(new.name),
        description: Set(new.description),
        location: Set(new.location),
        start_time: Set(new.start_time),
        end_time: Set(new.end_time),
        status: Set(new.status.unwrap_or_else(|| DEFAULT_STATUS.into())),
        category: Set(new.category),
        quota: Set(new.quota),
        registered: Set(0),
        offered: Set(0),
        organizer_id: Set(organizer_id),
        timezone: Set(new.timezone),
        payment_instructions: Set(new.payment_instructions),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = state.db.begin_write().await?;
    let created = model.insert(&*txn).await?;
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::created(Action::EventCreated, &created),
    )
    .await?;
    txn.commit().await?;
    state.cache.invalidate(&[Family::Events]).await;
    tracing::info!(
        "Event {} ({}) created by {}",
        created.id,
        created.name,
        caller.username
    );
    Ok(created)
}

/// Checks a move to another organiser: only superuser/admin (403), and the
/// user must exist (an error on `organizer_id`).
pub async fn check_organizer_change(
    state: &AppState,
    caller: &Caller,
    current: &event::Model,
    organizer_id: Option<Uuid>,
    errors: &mut FieldErrors,
) -> DomainResult<()> {
    match organizer_id {
        Some(id) if id != current.organizer_id => {
            if !caller.is_admin() {
                return Err(DomainError::Forbidden);
            }
            check_organizer(state, caller, id, errors).await
        }
        _ => Ok(()),
    }
}

#[instrument(name = "update_event", skip_all, fields(user = %caller.username))]
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    changes: EventChanges,
) -> DomainResult<event::Model> {
    let found = get_managed(state, caller, id).await?;
    let mut errors = FieldErrors::default();
    check_organizer_change(state, caller, &found, changes.organizer_id, &mut errors).await?;
    errors.into_result()?;

    let mut model: event::ActiveModel = found.clone().into();
    if let Some(v) = changes.name {
        model.name = Set(v);
    }
    if let Some(v) = changes.description {
        model.description = Set(v);
    }
    if let Some(v) = changes.location {
        model.location = Set(v);
    }
    if let Some(v) = changes.start_time {
        model.start_time = Set(v);
    }
    if let Some(v) = changes.end_time {
        model.end_time = Set(v);
    }
    if let Some(v) = changes.category {
        model.category = Set(v);
    }
    if let Some(v) = changes.status {
        model.status = Set(v);
    }
    if let Some(v) = changes.organizer_id {
        model.organizer_id = Set(v);
    }
    if let Some(v) = changes.quota {
        model.quota = Set(v);
    }
    if let Some(v) = changes.timezone {
        model.timezone = Set(v);
    }
    if let Some(v) = changes.payment_instructions {
        model.payment_instructions = Set(v);
    }
    model.updated_at = Set(crate::db::now());
    // Never below the registrations already held: the guard is part of the
    // UPDATE, so a registration racing this change cannot slip past it.
    let txn = state.db.begin_write().await?;
    // The row as this change finds it (locked on PostgreSQL): the log's
    // "before" values, whatever changed since it was read above.
    let before = event::Entity::find_by_id(found.id)
        .lock_exclusive()
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    let mut update = event::Entity::update_many()
        .set(model)
        .filter(event::Column::Id.eq(found.id));
    if let Some(quota) = changes.quota {
        update = update.filter(event::Column::Registered.lte(quota));
    }
    let result = update.exec(&*txn).await?;
    if result.rows_affected == 0 {
        let current = event::Entity::find_by_id(found.id).one(&*txn).await?;
        return match current {
            None => Err(DomainError::NotFound),
            Some(e) => Err(DomainError::Conflict(format!(
                "The quota cannot be lower than the {} registrations already made.",
                e.registered
            ))),
        };
    }
    let updated = event::Entity::find_by_id(found.id)
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::updated(Action::EventUpdated, &before, &updated),
    )
    .await?;
    // Its attendees are told about a cancellation, a new time or place, in
    // the same transaction (API.md §8.1).
    let now = crate::db::now();
    if let Some(change) = crate::db::outbox::EventChange::between(&before, &updated, now) {
        let told = crate::db::outbox::enqueue_event_change(&*txn, updated.id, &change, now).await?;
        if told > 0 {
            tracing::info!(
                "Event {}: {told} attendee(s) to be told of the change",
                updated.id
            );
        }
    }
    txn.commit().await?;
    // Its tickets' `available` depends on the event's quota.
    state
        .cache
        .invalidate(&[Family::Events, Family::Tickets])
        .await;
    tracing::info!("Event {} updated by {}", updated.id, caller.username);
    Ok(updated)
}

/// Deletes an event with its tickets, registrations, payments and posters
/// (their stored objects too, once the rows are gone).
#[instrument(name = "delete_event", skip_all, fields(user = %caller.username))]
pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<()> {
    let found = get_managed(state, caller, id).await?;
    let posters = super::posters::object_keys_of_event(state, found.id).await?;
    let txn = state.db.begin_write().await?;
    // Lock its tickets, then the event, FOR UPDATE (the order registrations
    // lock them): registrations in flight finish first, later ones wait and
    // then find the event gone.
    ticket::Entity::find()
        .filter(ticket::Column::EventId.eq(found.id))
        .lock_exclusive()
        .all(&*txn)
        .await?;
    event::Entity::find_by_id(found.id)
        .lock_exclusive()
        .one(&*txn)
        .await?;
    // Tickets, registrations, payments and poster rows go with it (ON DELETE
    // CASCADE); the stored poster objects are deleted once that is committed.
    // Logged first: the entry records the event's organiser, read from it.
    audit::record_one(
        &*txn,
        &caller.audit(),
        Entry::deleted(Action::EventDeleted, &found),
    )
    .await?;
    event::Entity::delete_by_id(found.id).exec(&*txn).await?;
    txn.commit().await?;
    state
        .cache
        .invalidate(&[Family::Events, Family::Tickets])
        .await;
    super::posters::delete_objects(state, &posters).await;
    tracing::info!(
        "Event {} ({}) deleted by {}",
        found.id,
        found.name,
        caller.username
    );
    Ok(())
}

/// What deleting an event takes with it, to say so before it is done.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dependents {
    pub tickets: u64,
    pub registrations: u64,
    pub payments: u64,
    pub posters: u64,
}

/// Counts what goes with an event the caller manages.
pub async fn dependents(state: &AppState, caller: &Caller, id: Uuid) -> DomainResult<Dependents> {
    use crate::db::entities::{media, payment, registration};
    use sea_orm::PaginatorTrait;
    let found = get_managed(state, caller, id).await?;
    let db = state.db.conn();
    Ok(Dependents {
        tickets: ticket::Entity::find()
            .filter(ticket::Column::EventId.eq(found.id))
            .count(db)
            .await?,
        registrations: registration::Entity::find()
            .filter(registration::Column::EventId.eq(found.id))
            .count(db)
            .await?,
        payments: payment::Entity::find()
            .filter(payment::Column::EventId.eq(found.id))
            .count(db)
            .await?,
        posters: media::Entity::find()
            .filter(media::Column::EventId.eq(found.id))
            .count(db)
            .await?,
    })
}
