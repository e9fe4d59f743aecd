//! Page-number pagination with Django's `Paginator.get_page` semantics, and
//! the one list envelope every list endpoint uses.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Uri, header};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::{Page, PageRequest};
use crate::input::QueryParams;

use super::front::PublicUrl;

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// Page-number pagination, shared by every list.
#[derive(Debug, Clone, Copy, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Page number (default 1). A page past the end returns the last page;
    /// a non-numeric or < 1 value returns page 1.
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page (default 20; larger values are capped at 100).
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u64>,
}

impl Pagination {
    /// `page`: non-numeric or < 1 → 1 (past the end is resolved by the
    /// list); `page_size`: default 20, capped at 100, invalid → default.
    pub fn from_query(query: &QueryParams) -> Self {
        Pagination {
            page: query.get("page").map(parse_page),
            page_size: query
                .get("page_size")
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|n| *n >= 1)
                .map(|n| n.min(MAX_PAGE_SIZE)),
        }
    }

    pub fn request(&self) -> PageRequest {
        PageRequest {
            page: self.page.unwrap_or(1),
            size: self.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
        }
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

/// The page request of a query string.
pub fn page_request(query: &QueryParams) -> PageRequest {
    Pagination::from_query(query).request()
}

/// The links of a page: absolute URLs of the next and previous pages.
pub struct Links {
    pub next: Option<String>,
    pub previous: Option<String>,
}

impl Links {
    pub fn of<T>(page: &Page<T>, uri: &Uri, origin: &Origin) -> Links {
        Links {
            next: (page.number < page.total_pages).then(|| page_link(uri, origin, page.number + 1)),
            previous: (page.number > 1).then(|| page_link(uri, origin, page.number - 1)),
        }
    }
}

/// Declares a list envelope: `{"<plural>": [...], count, page, page_size,
/// total_pages, next, previous}`, built from a domain page.
macro_rules! list_envelope {
    ($name:ident, $key:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            pub $key: Vec<$item>,
            /// Items over all pages.
            #[schema(minimum = 0)]
            pub count: u64,
            /// This page's number (1-based).
            #[schema(minimum = 1)]
            pub page: u64,
            #[schema(minimum = 1, maximum = 100)]
            pub page_size: u64,
            #[schema(minimum = 1)]
            pub total_pages: u64,
            /// Absolute URL of the next page, or `null` on the last.
            #[schema(required = true, format = "uri")]
            pub next: Option<String>,
            /// Absolute URL of the previous page, or `null` on the first.
            #[schema(required = true, format = "uri")]
            pub previous: Option<String>,
        }

        impl $name {
            pub fn new<T>(
                page: Page<T>,
                item: impl FnMut(T) -> $item,
                uri: &Uri,
                origin: &Origin,
            ) -> Self {
                let links = Links::of(&page, uri, origin);
                $name {
                    count: page.count,
                    page: page.number,
                    page_size: page.size,
                    total_pages: page.total_pages,
                    $key: page.items.into_iter().map(item).collect(),
                    next: links.next,
                    previous: links.previous,
                }
            }
        }
    };
}

list_envelope!(UserList, users, super::users::UserOut, "A page of users.");
list_envelope!(
    GroupList,
    groups,
    super::groups::GroupOut,
    "A page of groups."
);
list_envelope!(
    EventList,
    events,
    super::events::EventOut,
    "A page of events."
);
list_envelope!(
    TicketList,
    tickets,
    super::tickets::TicketOut,
    "A page of tickets."
);
list_envelope!(
    RegistrationList,
    registrations,
    super::registrations::RegistrationOut,
    "A page of registrations."
);
list_envelope!(
    CheckinList,
    checkins,
    super::checkins::CheckinOut,
    "A page of check-ins."
);
list_envelope!(
    AttendeeList,
    attendees,
    super::checkins::AttendeeOut,
    "A page of an event's attendees, in registration order."
);
list_envelope!(
    PaymentList,
    payments,
    super::payments::PaymentOut,
    "A page of payments."
);

list_envelope!(
    WaitlistList,
    entries,
    super::waitlist::WaitlistOut,
    "A page of waiting-list entries, oldest first."
);
list_envelope!(
    VoucherList,
    vouchers,
    super::vouchers::VoucherOut,
    "A page of vouchers, newest first."
);
list_envelope!(
    WebhookList,
    webhooks,
    super::webhooks::WebhookOut,
    "A page of webhook endpoints, newest first."
);
list_envelope!(
    DeliveryList,
    deliveries,
    super::webhooks::DeliveryOut,
    "A page of delivery attempts, newest first."
);

/// Where this request's absolute URLs point (API.md §12): `PUBLIC_URL`
/// when set, else the scheme (`X-Forwarded-Proto` when it says `http` or
/// `https`) and `Host` the client used — a `Host` the front door has
/// checked against `ALLOWED_HOSTS`.
pub struct Origin(String);

impl Origin {
    fn of(parts: &Parts) -> Origin {
        if let Some(PublicUrl(url)) = parts.extensions.get::<PublicUrl>() {
            return Origin(url.to_string());
        }
        let headers = &parts.headers;
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        Origin(format!("{scheme}://{host}"))
    }

    /// The absolute URL of `path` (which begins with `/`).
    pub fn url(&self, path: &str) -> String {
        let mut url = String::with_capacity(self.0.len() + path.len());
        url.push_str(&self.0);
        url.push_str(path);
        url
    }

    /// `scheme://host[/prefix]`, as a cache key's part.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Origin::of(parts))
    }
}

/// The absolute URL of this list at another page, other parameters kept.
fn page_link(uri: &Uri, origin: &Origin, number: u64) -> String {
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
    origin.url(&format!("{path}?{}", query.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> PageRequest {
        page_request(&QueryParams::parse(Some(s)))
    }

    #[test]
    fn django_get_page_semantics() {
        assert_eq!(q("").page, 1);
        assert_eq!(q("page=2").page, 2);
        assert_eq!(q("page=abc").page, 1);
        assert_eq!(q("page=0").page, 1);
        assert_eq!(q("page=-3").page, 1);
        assert_eq!(q("page=100000000000000000000").page, u64::MAX);
        assert_eq!(q("page_size=500").size, 100);
        assert_eq!(q("page_size=x").size, 20);
    }
}
