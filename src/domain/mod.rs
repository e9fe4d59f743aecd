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

    /// The first page of nothing.
    pub fn empty(request: PageRequest) -> Self {
        Page {
            items: Vec::new(),
            number: 1,
            size: request.size.max(1),
            count: 0,
            total_pages: 1,
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

/// A row and the number of rows its statement matched in all (`count(*)
/// OVER () AS total`): a page and its count from one statement.
pub(crate) struct Counted<M> {
    pub row: M,
    pub total: i64,
}

impl<M: sea_orm::FromQueryResult> sea_orm::FromQueryResult for Counted<M> {
    fn from_query_result(row: &sea_orm::QueryResult, prefix: &str) -> Result<Self, DbErr> {
        Ok(Counted {
            row: M::from_query_result(row, prefix)?,
            total: row.try_get(prefix, "total")?,
        })
    }
}

impl<M> Page<M> {
    /// Page `number` of `size` from rows that each carry the count; `None`
    /// for a page past the end (no row, so no count).
    pub(crate) fn of_counted(rows: Vec<Counted<M>>, number: u64, size: u64) -> Option<Self> {
        let count = match rows.first() {
            Some(row) => u64::try_from(row.total).unwrap_or(0),
            None if number == 1 => 0,
            None => return None,
        };
        Some(Page {
            items: rows.into_iter().map(|row| row.row).collect(),
            number,
            size,
            count,
            total_pages: count.div_ceil(size).max(1),
        })
    }
}

/// The requested page of `select` and its count from one statement: the
/// rows are found once, not once to count them and again for the page. A
/// page past the end finds no row, and so no count: then the rows are
/// counted and the last page is read (`fetch_page`).
pub(crate) async fn fetch_page_with_its_count<E, C>(
    db: &C,
    select: Select<E>,
    request: PageRequest,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let size = request.size.max(1);
    let number = request.page.max(1);
    let rows: Vec<Counted<E::Model>> = select
        .clone()
        .column_as(sea_orm::sea_query::Expr::cust("count(*) OVER ()"), "total")
        .offset((number - 1).saturating_mul(size))
        .limit(size)
        .into_model()
        .all(db)
        .await?;
    match Page::of_counted(rows, number, size) {
        Some(page) => Ok(page),
        None => fetch_page(db, select, request).await,
    }
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
