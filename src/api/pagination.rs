//! Page-number pagination with Django's `Paginator.get_page` semantics, and the
//! one list envelope every list endpoint uses.

use axum::http::{HeaderMap, Uri, header};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QuerySelect, Select};
use serde_json::{Map, Value, json};

use super::input::QueryParams;

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// A resolved page: `number` is within `1..=total_pages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: u64,
    pub size: u64,
    pub count: u64,
    pub total_pages: u64,
}

impl Page {
    /// `page`: non-numeric or < 1 → 1; past the end → the last page.
    /// `page_size`: default 20, capped at 100, invalid → default.
    pub fn resolve(query: &QueryParams, count: u64) -> Page {
        let size = query
            .get("page_size")
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|n| *n >= 1)
            .map(|n| n.min(MAX_PAGE_SIZE))
            .unwrap_or(DEFAULT_PAGE_SIZE);
        let total_pages = count.div_ceil(size).max(1);
        let requested = query.get("page").map(parse_page).unwrap_or(1);
        Page {
            number: requested.min(total_pages),
            size,
            count,
            total_pages,
        }
    }

    pub fn offset(&self) -> u64 {
        (self.number - 1) * self.size
    }
}

/// A page number as Django reads it: any integer (one too large for 64 bits
/// is simply past the end); < 1 or not a number → 1.
fn parse_page(raw: &str) -> u64 {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().unwrap_or(u64::MAX).max(1)
    } else {
        1
    }
}

/// Counts the rows of `select`, resolves the page, and fetches it.
pub async fn fetch_page<E, C>(
    db: &C,
    select: Select<E>,
    query: &QueryParams,
) -> Result<(Vec<E::Model>, Page), DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let count = select.clone().count(db).await?;
    fetch_page_of(db, select, query, count).await
}

/// Like `fetch_page`, for a cached list: the total comes from the count
/// cache, keyed by the family's `generation` and the query's filters.
pub async fn fetch_cached_page<E>(
    state: &crate::AppState,
    family: crate::cache::Family,
    generation: Option<u64>,
    select: Select<E>,
    query: &QueryParams,
) -> Result<(Vec<E::Model>, Page), DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
{
    let db = state.db.conn();
    let counted = select.clone();
    let count = state
        .cache
        .count(family, generation, &query.filter_key(), || {
            counted.count(db)
        })
        .await?;
    fetch_page_of(db, select, query, count).await
}

/// Fetches the page of `select` when its total `count` is already known.
async fn fetch_page_of<E, C>(
    db: &C,
    select: Select<E>,
    query: &QueryParams,
    count: u64,
) -> Result<(Vec<E::Model>, Page), DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let page = Page::resolve(query, count);
    let rows = select
        .offset(page.offset())
        .limit(page.size)
        .all(db)
        .await?;
    Ok((rows, page))
}

/// `{"<key>": [...], "count", "page", "page_size", "total_pages", "next", "previous"}`.
pub fn envelope(
    key: &str,
    items: Vec<Value>,
    page: &Page,
    uri: &Uri,
    headers: &HeaderMap,
) -> Value {
    let link = |number: u64| Value::String(page_link(uri, headers, number));
    let mut body = Map::new();
    body.insert(key.to_string(), Value::Array(items));
    body.insert("count".into(), json!(page.count));
    body.insert("page".into(), json!(page.number));
    body.insert("page_size".into(), json!(page.size));
    body.insert("total_pages".into(), json!(page.total_pages));
    body.insert(
        "next".into(),
        if page.number < page.total_pages {
            link(page.number + 1)
        } else {
            Value::Null
        },
    );
    body.insert(
        "previous".into(),
        if page.number > 1 {
            link(page.number - 1)
        } else {
            Value::Null
        },
    );
    Value::Object(body)
}

/// The absolute URL of this list at another page, other parameters kept.
fn page_link(uri: &Uri, headers: &HeaderMap, number: u64) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    let mut path = uri.path().to_string();
    if !path.ends_with('/') {
        path.push('/');
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in QueryParams::parse(uri.query()).0 {
        if k != "page" {
            query.append_pair(&k, &v);
        }
    }
    query.append_pair("page", &number.to_string());
    format!("{scheme}://{host}{path}?{}", query.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> QueryParams {
        QueryParams::parse(Some(s))
    }

    #[test]
    fn django_get_page_semantics() {
        assert_eq!(Page::resolve(&q(""), 57).number, 1);
        assert_eq!(Page::resolve(&q("page=2"), 57).number, 2);
        assert_eq!(Page::resolve(&q("page=99"), 57).number, 3);
        assert_eq!(Page::resolve(&q("page=abc"), 57).number, 1);
        assert_eq!(Page::resolve(&q("page=0"), 57).number, 1);
        assert_eq!(Page::resolve(&q("page=-3"), 57).number, 1);
        assert_eq!(
            Page::resolve(&q("page=100000000000000000000"), 57).number,
            3
        );
        assert_eq!(Page::resolve(&q("page=5"), 0).total_pages, 1);
        assert_eq!(Page::resolve(&q("page_size=500"), 1000).size, 100);
        assert_eq!(Page::resolve(&q("page_size=x"), 1000).size, 20);
    }
}
