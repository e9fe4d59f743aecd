//! Reading the audit log (API.md §10). Writing it is `db::audit`, inside
//! every write's transaction.
//!
//! Superusers and admins read every entry; organisers the entries of the
//! events they organise; nobody else. Newest first, by id (UUIDv7, so time
//! order); a page reached from the one before it (`before`: the last id
//! seen) is read from the index by key, not by skipping rows.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{Caller, DomainError, DomainResult, Page, PageRequest};
use crate::db::audit::first_id_at;
use crate::db::entities::audit_entry;
use crate::state::AppState;

/// Whose entries: an account by id, or all of one kind of actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorFilter {
    User(Uuid),
    /// `system` or `cli` (or `user`: any account).
    Kind(String),
    Username(String),
}

impl ActorFilter {
    /// An actor as people name it: an account's id, `system` or `cli`
    /// (any case), else a username.
    pub fn parse(text: &str) -> ActorFilter {
        match Uuid::parse_str(text) {
            Ok(id) => ActorFilter::User(id),
            Err(_) if text.eq_ignore_ascii_case("system") || text.eq_ignore_ascii_case("cli") => {
                ActorFilter::Kind(text.to_lowercase())
            }
            Err(_) => ActorFilter::Username(text.to_owned()),
        }
    }
}

/// What a list selects.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub event: Option<Uuid>,
    pub actor: Option<ActorFilter>,
    /// Actions beginning with this (`registration.` or `registration`).
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    /// Selects every entry, or an event's: nothing but `event`.
    pub fn is_scope_only(&self) -> bool {
        let AuditFilter {
            entity_type,
            entity_id,
            event: _,
            actor,
            action,
            since,
            until,
        } = self;
        entity_type.is_none()
            && entity_id.is_none()
            && actor.is_none()
            && action.is_none()
            && since.is_none()
            && until.is_none()
    }
}

/// Who may read the log: superuser and admin (all), those who may organise
/// events (their events' entries); 403 otherwise.
async fn organiser_scope(state: &AppState, caller: &Caller) -> DomainResult<Option<Uuid>> {
    if caller.is_admin() {
        return Ok(None);
    }
    super::tickets::authorize_create(state, caller)
        .await
        .map_err(|_| DomainError::Forbidden)?;
    Ok(Some(caller.id))
}

/// Entries, newest first. `before`: the last id of the page before (the
/// `next` link's key), read by key instead of by offset.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: &AuditFilter,
    request: PageRequest,
    before: Option<Uuid>,
) -> DomainResult<Page<audit_entry::Model>> {
    let organiser = organiser_scope(state, caller).await?;
    let mut select = audit_entry::Entity::find();
    // The organiser each entry recorded: an event deleted (or handed to
    // another organiser later) keeps its past entries with whoever
    // organised it then.
    if let Some(organiser) = organiser {
        select = select.filter(audit_entry::Column::OrganizerId.eq(organiser));
    }
    if let Some(v) = &filter.entity_type {
        select = select.filter(audit_entry::Column::EntityType.eq(v.as_str()));
    }
    if let Some(v) = &filter.entity_id {
        select = select.filter(audit_entry::Column::EntityId.eq(v.as_str()));
    }
    if let Some(v) = filter.event {
        select = select.filter(audit_entry::Column::EventId.eq(v));
    }
    match &filter.actor {
        Some(ActorFilter::User(id)) => {
            select = select.filter(audit_entry::Column::ActorId.eq(*id));
        }
        Some(ActorFilter::Kind(kind)) => {
            select = select.filter(audit_entry::Column::ActorType.eq(kind.as_str()));
        }
        Some(ActorFilter::Username(name)) => {
            select = select.filter(
                Expr::expr(Func::lower(Expr::col(audit_entry::Column::ActorUsername)))
                    .eq(name.to_lowercase()),
            );
        }
        None => {}
    }
    if let Some(prefix) = &filter.action {
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        select = select.filter(
            Expr::col(audit_entry::Column::Action)
                .like(LikeExpr::new(format!("{escaped}%")).escape('\\')),
        );
    }
    // Ids carry their time: a time range is an id range, on the key.
    if let Some(since) = filter.since {
        select = select
            .filter(audit_entry::Column::Id.gte(first_id_at(since)))
            .filter(audit_entry::Column::OccurredAt.gte(since));
    }
    if let Some(until) = filter.until {
        let after = until + chrono::Duration::milliseconds(1);
        select = select
            .filter(audit_entry::Column::Id.lt(first_id_at(after)))
            .filter(audit_entry::Column::OccurredAt.lte(until));
    }
    let select = select.order_by_desc(audit_entry::Column::Id);
    let db = state.db.conn();
    // Everything, or an organiser's and/or an event's: counted from the
    // workers' mark and its tallies, not row by row (`db::audit::count`).
    let count = if filter.is_scope_only() {
        crate::db::audit::count(&state.db, organiser, filter.event).await?
    } else {
        select.clone().count(db).await?
    };
    match before {
        Some(before) => {
            let size = Ord::max(request.size, 1);
            let total_pages = Ord::max(count.div_ceil(size), 1);
            let items = select
                .filter(audit_entry::Column::Id.lt(before))
                .limit(size)
                .all(db)
                .await?;
            Ok(Page {
                items,
                number: request.page.clamp(1, total_pages),
                size,
                count,
                total_pages,
            })
        }
        None => Ok(super::fetch_page_counted(db, select, request, count).await?),
    }
}
