//! The public pages (API.md §8.1): what anyone sees without an account —
//! the upcoming events at `/`, an event's page at `/e/{id}` (the link an
//! organiser shares, with Open Graph tags) and its calendar entry at
//! `/e/{id}.ics`. Each is the same for every visitor, so it is cached whole
//! (family `Console`, which every write moves) for at most the minute it
//! was rendered in (what is on sale depends on the clock).

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::format::{Pager, event_span, event_when, page_number, pager, short_in};
use super::{error_page, not_found_page, page};
use crate::api::pagination::Origin;
use crate::cache::Family;
use crate::db::entities::event;
use crate::domain::events::{EventFilter, zone_of};
use crate::domain::{DomainError, PageRequest, events, posters, tickets};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/e/{id}", get(event_page))
}

/// Events a page of `/` lists.
const HOME_PAGE_SIZE: u64 = 20;

struct HomeRow {
    id: Uuid,
    name: String,
    starts: String,
    location: String,
    category: String,
    room: i64,
}

#[derive(Template)]
#[template(path = "public_home.html")]
struct HomePage {
    rows: Vec<HomeRow>,
    pager: Pager,
}

struct Offer {
    name: String,
    price: String,
    /// "On sale until …", "Sold out", …
    sales: String,
    left: i64,
    on_sale: bool,
}

#[derive(Template)]
#[template(path = "public_event.html")]
struct EventPage {
    id: Uuid,
    name: String,
    /// `cancelled`, `completed`, `ongoing`: said on the page; else empty.
    badge: String,
    span: String,
    location: String,
    description: String,
    posters: Vec<Uuid>,
    offers: Vec<Offer>,
    /// Registration is open: scheduled and not started.
    open: bool,
    url: String,
    og_description: String,
    og_image: Option<String>,
}

/// A rendered page kept whole, with the console's headers; `public` pages
/// may be kept by browsers for a minute.
fn cached_page(body: Bytes) -> Response {
    let mut response = page(StatusCode::OK, Ok(String::new()));
    *response.body_mut() = Body::from(body);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

fn failed(err: DomainError) -> Response {
    match err {
        DomainError::NotFound => not_found_page(),
        DomainError::Unavailable(message) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again shortly",
            &message,
        ),
        other => {
            tracing::error!("public page: {other}");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on our side. It has been logged; try again.",
            )
        }
    }
}

/// The minute a page is rendered in: part of its cache key.
fn minute() -> i64 {
    Utc::now().timestamp() / 60
}

/// `/`: scheduled events not yet started, soonest first.
async fn home(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let number = page_number(query.as_deref());
    let key = format!("public:home:{number}:{}", minute());
    let loaded = state
        .cache
        .response(Family::Console, &key, |_| render_home(&state, number))
        .await;
    match loaded {
        Ok(found) => cached_page(found.body),
        Err(e) => failed(e),
    }
}

async fn render_home(state: &AppState, number: u64) -> Result<Bytes, DomainError> {
    let filter = EventFilter {
        status: Some("scheduled".into()),
        start_after: Some(Utc::now()),
        ..EventFilter::default()
    };
    let request = PageRequest {
        page: number,
        size: HOME_PAGE_SIZE,
    };
    let listing = events::list(state, &filter, &[("start_time", false)], request, None).await?;
    let pager = pager(&listing, "/", &[]);
    let rows = listing
        .items
        .into_iter()
        .map(|e| HomeRow {
            starts: event_when(state, &e),
            room: (e.quota - e.registered).max(0),
            id: e.id,
            name: e.name,
            location: e.location,
            category: e.category,
        })
        .collect();
    let html = HomePage { rows, pager }
        .render()
        .map_err(|e| DomainError::Internal(e.into()))?;
    Ok(Bytes::from(html))
}

/// Whether anyone may see an event's public page: not a draft, and not a
/// cancelled event that is over.
fn is_public(event: &event::Model, now: DateTime<Utc>) -> bool {
    event.status != "draft"
        && !(event.status == "cancelled" && std::cmp::max(event.start_time, event.end_time) < now)
}

/// `/e/{id}` and `/e/{id}.ics`.
async fn event_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    origin: Origin,
) -> Response {
    let (raw, calendar) = match id.strip_suffix(".ics") {
        Some(raw) => (raw, true),
        None => (id.as_str(), false),
    };
    let Ok(id) = Uuid::parse_str(raw) else {
        return not_found_page();
    };
    let kind = if calendar { "ics" } else { "html" };
    let key = format!("public:event:{kind}:{id}:{}:{}", origin.as_str(), minute());
    let loaded = state
        .cache
        .response(Family::Console, &key, |_| async {
            let event = events::get(&state, id).await?;
            if !is_public(&event, Utc::now()) {
                return Err(DomainError::NotFound);
            }
            let url = origin.url(&format!("/e/{id}"));
            if calendar {
                Ok(Bytes::from(ics(&state, &event, &url)))
            } else {
                render_event(&state, event, url, &origin).await
            }
        })
        .await;
    match loaded {
        Ok(found) if calendar => {
            let mut response = found.body.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/calendar; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"event.ics\""),
            );
            response
        }
        Ok(found) => cached_page(found.body),
        Err(e) => failed(e),
    }
}

async fn render_event(
    state: &AppState,
    event: event::Model,
    url: String,
    origin: &Origin,
) -> Result<Bytes, DomainError> {
    let offers = tickets::list(
        state,
        Some(event.id),
        false,
        &[],
        PageRequest { page: 1, size: 100 },
        None,
    )
    .await?;
    let posters = posters::list_for_event(state, event.id).await?;
    let zone = zone_of(state, &event);
    let now = Utc::now();
    let open = event.status == "scheduled" && event.start_time > now;
    let offers = offers
        .items
        .into_iter()
        .map(|t| {
            let left = t.available();
            let (on_sale, sales) =
                super::format::sales_state(open, &t.ticket, left, |at| short_in(zone, at));
            Offer {
                price: super::format::price(state, t.ticket.price_minor),
                name: t.ticket.name,
                sales,
                left,
                on_sale,
            }
        })
        .collect();
    let posters: Vec<Uuid> = posters.into_iter().map(|p| p.media.id).collect();
    let og_description: String = {
        let text = event.description.split_whitespace().collect::<Vec<_>>();
        let text = text.join(" ");
        let lead = format!(
            "{} · {}",
            event_span(zone, &event.start_time, &event.end_time),
            event.location
        );
        let full = if text.is_empty() {
            lead
        } else {
            format!("{lead}. {text}")
        };
        let mut cut: String = full.chars().take(200).collect();
        if cut.len() < full.len() {
            cut.push('…');
        }
        cut
    };
    let html = EventPage {
        id: event.id,
        badge: match event.status.as_str() {
            "scheduled" | "draft" => String::new(),
            other => other.to_owned(),
        },
        span: event_span(zone, &event.start_time, &event.end_time),
        og_image: posters
            .first()
            .map(|p| origin.url(&format!("/api/media/{p}/"))),
        posters,
        offers,
        open,
        url,
        og_description,
        name: event.name,
        location: event.location,
        description: event.description,
    }
    .render()
    .map_err(|e| DomainError::Internal(e.into()))?;
    Ok(Bytes::from(html))
}

/// The event as an iCalendar file (RFC 5545): one VEVENT whose start and
/// end carry the event's zone, with that zone described at the event's
/// offset.
fn ics(state: &AppState, event: &event::Model, url: &str) -> String {
    use chrono::Offset;
    let zone = zone_of(state, event);
    let start = event.start_time.with_timezone(&zone);
    let offset = start.offset().fix().local_minus_utc();
    let sign = if offset < 0 { '-' } else { '+' };
    let offset = offset.unsigned_abs();
    let utc_offset = format!("{sign}{:02}{:02}", offset / 3600, offset % 3600 / 60);
    let local = |at: &DateTime<Utc>| at.with_timezone(&zone).format("%Y%m%dT%H%M%S").to_string();
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//DicoEvent//Events//EN".into(),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
        "BEGIN:VTIMEZONE".into(),
        format!("TZID:{}", zone.name()),
        "BEGIN:STANDARD".into(),
        "DTSTART:19700101T000000".into(),
        format!("TZOFFSETFROM:{utc_offset}"),
        format!("TZOFFSETTO:{utc_offset}"),
        format!("TZNAME:{}", start.format("%Z")),
        "END:STANDARD".into(),
        "END:VTIMEZONE".into(),
        "BEGIN:VEVENT".into(),
        format!("UID:{}@dicoevent", event.id),
        format!("DTSTAMP:{}", event.updated_at.format("%Y%m%dT%H%M%SZ")),
        format!("DTSTART;TZID={}:{}", zone.name(), local(&event.start_time)),
    ];
    // An end before the start is accepted by the API; a calendar refuses it.
    if event.end_time > event.start_time {
        lines.push(format!(
            "DTEND;TZID={}:{}",
            zone.name(),
            local(&event.end_time)
        ));
    }
    lines.push(format!("SUMMARY:{}", ics_text(&event.name)));
    lines.push(format!("LOCATION:{}", ics_text(&event.location)));
    if !event.description.is_empty() {
        lines.push(format!("DESCRIPTION:{}", ics_text(&event.description)));
    }
    lines.push(format!("URL:{url}"));
    lines.push(
        if event.status == "cancelled" {
            "STATUS:CANCELLED"
        } else {
            "STATUS:CONFIRMED"
        }
        .into(),
    );
    lines.push("END:VEVENT".into());
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for line in lines {
        out.push_str(&fold(&line));
        out.push_str("\r\n");
    }
    out
}

/// TEXT as RFC 5545 writes it: backslash, semicolon, comma and newlines
/// escaped.
fn ics_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A content line folded at 75 octets (never inside a UTF-8 character).
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 74 * 3);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_at_75_octets_between_characters() {
        let line = format!("SUMMARY:{}", "é".repeat(60));
        let folded = fold(&line);
        for part in folded.split("\r\n") {
            assert!(part.len() <= 75, "{part:?}");
        }
        assert_eq!(folded.replace("\r\n ", ""), line);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(ics_text("a,b;c\\d\ne"), "a\\,b\\;c\\\\d\\ne");
    }
}
