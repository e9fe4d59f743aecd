//! The events list: the events the user manages (all for superuser and
//! admin), searchable, filtered by status and period, 50 a page.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use uuid::Uuid;

use crate::console::format::{Pager, page_number, pager};
use crate::console::{Frame, Visit, query_text, refusal, render, visit};
use crate::domain::events::{EventFilter, STATUSES};
use crate::domain::{PageRequest, events};
use crate::state::AppState;

use super::refuse_unless_manager;

struct EventListRow {
    id: Uuid,
    name: String,
    status: String,
    starts: String,
    location: String,
    registered: i64,
    quota: i64,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage<'a> {
    frame: &'a Frame,
    q: String,
    status: String,
    period: String,
    statuses: &'static [&'static str],
    rows: Vec<EventListRow>,
    pager: Pager,
}

/// The events the user manages (all for superuser and admin), searchable,
/// filtered by status and period, 50 a page.
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, "/console/events/", "events").await);
    if let Err(response) = refuse_unless_manager(&frame) {
        return response;
    }
    let query = query.as_deref();
    let q = query_text(query, "q");
    let status = Some(query_text(query, "status"))
        .filter(|s| STATUSES.contains(&s.as_str()))
        .unwrap_or_default();
    let period = match query_text(query, "period").as_str() {
        "upcoming" => "upcoming",
        "past" => "past",
        _ => "",
    }
    .to_string();
    let now = Utc::now();
    let filter = EventFilter {
        organizer: (!caller.is_admin()).then_some(caller.id),
        search: (!q.is_empty()).then(|| q.clone()),
        status: (!status.is_empty()).then(|| status.clone()),
        start_after: (period == "upcoming").then_some(now),
        start_before: (period == "past").then_some(now),
        ..EventFilter::default()
    };
    let request = PageRequest {
        page: page_number(query),
        size: 50,
    };
    // Upcoming soonest first; otherwise the latest first.
    let ordering = [("start_time", period != "upcoming")];
    let listing = match events::list(&state, &filter, &ordering, request, None).await {
        Ok(listing) => listing,
        Err(e) => return refusal(e),
    };
    let pager = pager(
        &listing,
        "/console/events/",
        &[("q", &q), ("status", &status), ("period", &period)],
    );
    let rows = listing
        .items
        .into_iter()
        .map(|e| EventListRow {
            starts: crate::console::format::event_when(&state, &e),
            id: e.id,
            name: e.name,
            status: e.status,
            location: e.location,
            registered: e.registered,
            quota: e.quota,
        })
        .collect();
    let html = EventsPage {
        frame: &frame,
        q,
        status,
        period,
        statuses: STATUSES,
        rows,
        pager,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}
