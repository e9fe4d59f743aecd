//! The rules of the business, in one place: who may do what, capacity,
//! sales windows, the payment state machine, what a delete takes with it,
//! and which cached reads a write makes stale.
//!
//! Front doors (the JSON API, the CLI, the background worker) parse their
//! input into the typed commands here, call these functions with the
//! `Caller` who asks, and render the typed answer or `DomainError` in their
//! own shape. Nothing in here knows about HTTP, JSON or HTML.

pub mod accounts;
pub mod audit;
mod caller;
pub mod checkins;
mod error;
pub mod events;
pub mod idempotency;
pub mod jobs;
pub mod payments;
pub mod posters;
pub mod registrations;
mod scope;
pub mod tickets;
pub mod vouchers;
pub mod waitlist;
pub mod webhooks;

pub use caller::Caller;
pub use error::{DomainError, DomainResult, FieldErrors, does_not_exist};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, Iterable, ModelTrait, PaginatorTrait,
    PrimaryKeyToColumn, QueryFilter, QuerySelect, Select,
};

/// Which page of a list is asked for. `page` ≥ 1; past the end means the
/// last page (Django's `Paginator.get_page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub size: u64,
}

/// One page of rows and the totals around it; `number` is within
/// `1..=total_pages`.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub number: u64,
    pub size: u64,
    pub count: u64,
    pub total_pages: u64,
}

impl<T> Page<T> {
    /// The same page holding other items (rows enriched after the query).
    pub fn with_items<U>(&self, items: Vec<U>) -> Page<U> {
        Page {
            items,
            number: self.number,
            size: self.size,
            count: self.count,
            total_pages: self.total_pages,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            number: self.number,
            size: self.size,
            count: self.count,
            total_pages: self.total_pages,
        }
    }
}

/// From this offset on, a page is found by its ids first.
const DEFERRED_OFFSET: u64 = 500;

/// Fetches the requested page of `select` when its total `count` is known.
///
/// A deep page is read in two steps: the ids of the page (with the list's
/// order and filters, which an index holding the order and the id answers
/// without reading a row), then those rows by primary key. Skipping
/// 100,000 index entries costs a few milliseconds; skipping 100,000 rows
/// read from the table (or sorting them all) costs a hundred.
pub(crate) async fn fetch_page_counted<E, C>(
    db: &C,
    select: Select<E>,
    request: PageRequest,
    count: u64,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let size = request.size.max(1);
    let total_pages = count.div_ceil(size).max(1);
    let number = request.page.clamp(1, total_pages);
    let offset = (number - 1) * size;
    let pk = E::PrimaryKey::iter()
        .next()
        .map(|k| k.into_column())
        // One uuid column (every table listed in pages but groups).
        .filter(|k| {
            E::PrimaryKey::iter().count() == 1
                && matches!(k.def().get_column_type(), sea_orm::ColumnType::Uuid)
        });
    let items = match pk {
        Some(pk) if offset >= DEFERRED_OFFSET => {
            let ids: Vec<sea_orm::Value> = select
                .select_only()
                .column(pk)
                .offset(offset)
                .limit(size)
                .into_tuple::<uuid::Uuid>()
                .all(db)
                .await?
                .into_iter()
                .map(sea_orm::Value::from)
                .collect();
            let mut rows = E::find().filter(pk.is_in(ids.clone())).all(db).await?;
            rows.sort_by_key(|row| {
                let id = row.get(pk);
                ids.iter().position(|k| *k == id)
            });
            rows
        }
        _ => select.offset(offset).limit(size).all(db).await?,
    };
    Ok(Page {
        items,
        number,
        size,
        count,
        total_pages,
    })
}

/// Counts the rows of `select`, resolves the page, and fetches it.
pub(crate) async fn fetch_page<E, C>(
    db: &C,
    select: Select<E>,
    request: PageRequest,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let count = select.clone().count(db).await?;
    fetch_page_counted(db, select, request, count).await
}
