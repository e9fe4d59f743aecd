//! The event page: details form, tickets, posters, registrations,
//! payments, check-ins and charts, read once and cached for everyone who
//! manages the event.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cache::Family;
use crate::console::format::{
    Pager, amount, count, field_datetime_in, method_words, page_number, pager, pager_with,
    payment_status_words, payment_words, person, short, short_in,
};
use crate::console::{
    FormState, Frame, Visit, charts, not_found_page, path_uuid, query_text, refusal, render, visit,
};
use crate::domain::events::STATUSES;
use crate::domain::payments::{self, PaymentFilter};
use crate::domain::{
    Caller, DomainError, PageRequest, accounts, checkins, events, posters, registrations, tickets,
};
use crate::state::AppState;

use super::{EVENT_FIELDS, TICKET_FIELDS};
use crate::console::history::{HistoryRow, of_event};

#[derive(Serialize, Deserialize)]
struct TicketRow {
    id: Uuid,
    name: String,
    price: String,
    sold: i64,
    quota: i64,
    available: i64,
    checked_in: u64,
    sales: String,
}

#[derive(Serialize, Deserialize)]
struct RosterLine {
    registration: Uuid,
    /// A priced ticket not paid (nor waiting on a pending payment): cash can
    /// be taken for it.
    cash: bool,
    name: String,
    email: String,
    ticket: String,
    registered: String,
    /// In words, and its badge class.
    payment: (String, String),
    checked_in: String,
}

#[derive(Serialize, Deserialize)]
struct PosterCard {
    id: Uuid,
    name: String,
    size: String,
}

#[derive(Serialize, Deserialize)]
struct PaymentRow {
    id: Uuid,
    person: String,
    method: String,
    amount: String,
    /// What the registration owes (its ticket's price).
    due: String,
    /// Paid less than due: completing it asks first (and is forced).
    short: bool,
    status: String,
    status_words: String,
    when: String,
    /// (target status, button words) the state machine allows.
    moves: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct CheckinRow {
    person: String,
    at: String,
    by: String,
    notes: String,
}

/// What the event page shows that is the same for everyone who manages the
/// event, ready to print: loaded in ~30 reads, so it is kept in the cache
/// (family `Console`, which every write moves) under the event, the search,
/// the page numbers and the minute.
#[derive(Serialize, Deserialize)]
struct EventView {
    id: Uuid,
    organizer_id: Uuid,
    name: String,
    status: String,
    starts: String,
    location: String,
    quota: i64,
    registered: String,
    paid: String,
    checked_in: String,
    revenue: String,
    per_day_svg: String,
    per_day: Vec<(String, u64)>,
    sales_svg: String,
    tickets: Vec<TicketRow>,
    posters: Vec<PosterCard>,
    registrations: Vec<RosterLine>,
    roster_pager: Pager,
    payments: Vec<PaymentRow>,
    payments_pager: Pager,
    checkins: Vec<CheckinRow>,
    checkins_count: String,
    /// The details form's fields as the event has them.
    event_values: Vec<(String, String)>,
    /// The new-ticket form's default end of sales: the event's start.
    sales_end: String,
    /// The ticket form's default start: now, where the event happens.
    sales_start: String,
}

#[derive(Template)]
#[template(path = "event.html")]
struct EventPage<'a> {
    frame: &'a Frame,
    view: std::sync::Arc<EventView>,
    q: String,
    ticket_form: FormState,
    poster_error: Option<String>,
    may_move_payments: bool,
    details: FormState,
    statuses: &'static [&'static str],
    history: Vec<HistoryRow>,
    history_count: u64,
    /// The box office, read fresh: vouchers and waiting lines.
    vouchers: Vec<super::box_office::VoucherRow>,
    lines: Vec<super::box_office::LineRow>,
    voucher_form: FormState,
}

/// The template reads the view's fields as the page's own.
impl std::ops::Deref for EventPage<'_> {
    type Target = EventView;
    fn deref(&self) -> &EventView {
        &self.view
    }
}

/// The forms of the event page as they should show (after a refused
/// submission: what was entered, with its errors).
#[derive(Default)]
pub(super) struct Submitted {
    pub(super) details: Option<FormState>,
    pub(super) ticket: Option<FormState>,
    pub(super) voucher: Option<FormState>,
    pub(super) poster_error: Option<String>,
}

/// The payment moves offered, in the words of a button.
pub(super) const MOVES: &[(&str, &str, &str)] = &[
    ("pending", "completed", "Mark completed"),
    ("pending", "failed", "Mark failed"),
    ("failed", "pending", "Back to pending"),
    ("completed", "refunded", "Mark refunded"),
];

pub(super) async fn render_event(
    state: &AppState,
    visit: Visit,
    id: Uuid,
    query: Option<&str>,
    submitted: Submitted,
    status: StatusCode,
) -> Response {
    let Visit {
        caller, mut frame, ..
    } = visit;
    frame.section = "events";
    let q = query_text(query, "q");
    let roster_page = page_number(query);
    let payments_page = crate::console::query_value(query, "payments_page")
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    // Kept at most for the minute it was read in (the chart's days move
    // with the clock). Who may see it is decided on every request.
    let key = format!(
        "event:{id}:{}:{roster_page}:{payments_page}:{q}",
        Utc::now().timestamp() / 60
    );
    let loaded = state
        .cache
        .shared(Family::Console, &key, || {
            load_event_view(state, &caller, id, &q, roster_page, payments_page)
        })
        .await
        .and_then(|view| {
            if caller.manages_event(view.organizer_id) {
                Ok(view)
            } else {
                Err(DomainError::Forbidden)
            }
        });
    let view = match loaded {
        Ok(view) => view,
        // Not theirs: as if it did not exist.
        Err(DomainError::Forbidden) => return not_found_page(),
        Err(e) => return refusal(e),
    };
    // Read fresh on every visit (one indexed read), not with the cached view.
    let (history, history_count) = match of_event(state, &caller, id, 10).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let details = submitted.details.unwrap_or_else(|| {
        let values: Vec<(&str, String)> = view
            .event_values
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        FormState::new(EVENT_FIELDS, &values)
    });
    let ticket_form = submitted.ticket.unwrap_or_else(|| {
        FormState::new(
            TICKET_FIELDS,
            &[
                ("sales_start", view.sales_start.clone()),
                ("sales_end", view.sales_end.clone()),
            ],
        )
    });
    let (vouchers, lines) = match super::box_office::load(state, &caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let voucher_form = submitted.voucher.unwrap_or_else(|| {
        FormState::new(
            super::box_office::VOUCHER_FIELDS,
            &[("discount_type", "percent".to_owned())],
        )
    });
    let html = EventPage {
        frame: &frame,
        view,
        q,
        vouchers,
        lines,
        voucher_form,
        ticket_form,
        poster_error: submitted.poster_error,
        // The page is for those who manage the event: they move its payments.
        may_move_payments: true,
        details,
        statuses: STATUSES,
        history,
        history_count,
    }
    .render();
    render(&frame, status, html)
}

/// Reads and formats everything the event page shows (for one who manages
/// the event).
async fn load_event_view(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    q: &str,
    roster_page: u64,
    payments_page: u64,
) -> Result<EventView, DomainError> {
    let path = format!("/console/events/{id}/");
    let event = events::get_managed(state, caller, id).await?;
    let stats = checkins::stats(state, caller, id).await?;
    let tickets = tickets::list(
        state,
        Some(id),
        true,
        &[],
        PageRequest { page: 1, size: 100 },
        None,
    )
    .await?;
    let roster = registrations::roster(
        state,
        caller,
        id,
        Some(q),
        PageRequest {
            page: roster_page,
            size: 50,
        },
    )
    .await?;
    let per_day = registrations::per_day(state, caller, id, 30).await?;
    let posters = posters::list_for_event(state, id).await?;
    let payments = payments::list(
        state,
        caller,
        &PaymentFilter {
            event: Some(id),
            ..PaymentFilter::default()
        },
        PageRequest {
            page: payments_page,
            size: 20,
        },
    )
    .await?;
    let due = payments::amounts_due(
        state,
        &payments
            .items
            .iter()
            .map(|p| p.registration_id)
            .collect::<Vec<_>>(),
    )
    .await?;
    let admissions = checkins::list(
        state,
        caller,
        &checkins::CheckinFilter {
            event: Some(id),
            ticket: None,
        },
        PageRequest { page: 1, size: 20 },
    )
    .await?;
    let mut people: Vec<Uuid> = payments.items.iter().map(|p| p.user_id).collect();
    people.extend(
        admissions
            .items
            .iter()
            .filter_map(|a| a.checkin.checked_in_by),
    );
    let people = accounts::users_by_id(state, &people).await?;
    let admitted: HashMap<Uuid, u64> = stats.tickets.iter().map(|t| (t.id, t.checked_in)).collect();
    let name_of = |id: Uuid| people.get(&id).map(person).unwrap_or_else(|| "—".into());
    let sales: Vec<(String, i64, i64)> = tickets
        .items
        .iter()
        .map(|t| (t.ticket.name.clone(), t.ticket.sold, t.ticket.quota))
        .collect();
    let zone = crate::domain::events::zone_of(state, &event);
    Ok(EventView {
        id: event.id,
        organizer_id: event.organizer_id,
        starts: crate::console::format::event_span(zone, &event.start_time, &event.end_time),
        location: event.location.clone(),
        quota: event.quota,
        registered: count(stats.registered),
        paid: count(
            stats
                .payments
                .iter()
                .find(|(s, _)| *s == "completed")
                .map_or(0, |(_, n)| *n),
        ),
        checked_in: count(stats.checked_in),
        revenue: amount(state, stats.revenue_minor),
        per_day_svg: charts::per_day("Registrations per day, last 30 days", &per_day),
        per_day: per_day
            .iter()
            .map(|(d, n)| (d.format("%a %-d %b").to_string(), *n))
            .collect(),
        sales_svg: charts::ticket_sales("Sales per ticket type", &sales),
        tickets: tickets
            .items
            .into_iter()
            .map(|t| TicketRow {
                available: t.available(),
                checked_in: admitted.get(&t.ticket.id).copied().unwrap_or(0),
                sales: format!(
                    "{} – {}",
                    short_in(zone, &t.ticket.sales_start),
                    short_in(zone, &t.ticket.sales_end)
                ),
                id: t.ticket.id,
                name: t.ticket.name,
                price: if t.ticket.price_minor == 0 {
                    "Free".into()
                } else {
                    amount(state, t.ticket.price_minor)
                },
                sold: t.ticket.sold,
                quota: t.ticket.quota,
            })
            .collect(),
        posters: posters
            .into_iter()
            .map(|p| PosterCard {
                id: p.media.id,
                name: p.media.original_name,
                size: format!("{} KiB", (p.media.size + 1023) / 1024),
            })
            .collect(),
        roster_pager: pager(&roster, &path, &[("q", q)]),
        registrations: roster
            .items
            .into_iter()
            .map(|r| RosterLine {
                registration: r.registration.id,
                cash: r.priced
                    && !matches!(r.payment_status.as_deref(), Some("completed" | "pending")),
                name: person(&r.user),
                email: r.user.email,
                ticket: r.ticket,
                registered: short(state, &r.registration.registered_at),
                payment: {
                    let (words, class) = payment_words(r.priced, r.payment_status.as_deref());
                    (words.to_owned(), class.to_owned())
                },
                checked_in: r
                    .checked_in_at
                    .map(|t| short(state, &t))
                    .unwrap_or_else(|| "—".into()),
            })
            .collect(),
        payments_pager: pager_with(&payments, &path, &[("q", q)], "payments_page"),
        payments: payments
            .items
            .into_iter()
            .map(|p| PaymentRow {
                id: p.id,
                person: name_of(p.user_id),
                method: method_words(&p.payment_method),
                amount: amount(state, p.amount_paid_minor),
                due: amount(state, due.get(&p.registration_id).copied().unwrap_or(0)),
                short: p.amount_paid_minor < due.get(&p.registration_id).copied().unwrap_or(0),
                when: match &p.paid_at {
                    Some(paid) => format!("paid {}", short(state, paid)),
                    None => format!("recorded {}", short(state, &p.created_at)),
                },
                moves: MOVES
                    .iter()
                    .filter(|(from, _, _)| *from == p.payment_status)
                    .map(|(_, to, words)| ((*to).to_string(), (*words).to_string()))
                    .collect(),
                // A cancelled event's money is owed back (API.md §8.1).
                status_words: if event.status == "cancelled" && p.payment_status == "completed" {
                    "Paid — to refund".to_owned()
                } else {
                    payment_status_words(&p.payment_status).to_owned()
                },
                status: if event.status == "cancelled" && p.payment_status == "completed" {
                    "to-refund".to_owned()
                } else {
                    p.payment_status
                },
            })
            .collect(),
        checkins_count: count(admissions.count),
        checkins: admissions
            .items
            .into_iter()
            .map(|a| {
                let mut notes = Vec::new();
                if a.checkin.forced {
                    notes.push("admitted unpaid");
                }
                if a.checkin.offline {
                    notes.push("scanned offline");
                }
                if a.checkin.conflict {
                    notes.push("double entry");
                }
                CheckinRow {
                    person: person(&a.user),
                    at: short(state, &a.checkin.checked_in_at),
                    by: a.checkin.checked_in_by.map(name_of).unwrap_or_default(),
                    notes: notes.join(", "),
                }
            })
            .collect(),
        event_values: vec![
            ("name".into(), event.name.clone()),
            ("description".into(), event.description.clone()),
            ("location".into(), event.location.clone()),
            (
                "start_time".into(),
                field_datetime_in(zone, &event.start_time),
            ),
            ("end_time".into(), field_datetime_in(zone, &event.end_time)),
            ("quota".into(), event.quota.to_string()),
            ("category".into(), event.category.clone()),
            ("status".into(), event.status.clone()),
            ("timezone".into(), zone.name().to_owned()),
            (
                "payment_instructions".into(),
                event.payment_instructions.clone().unwrap_or_default(),
            ),
        ],
        sales_end: field_datetime_in(zone, &event.start_time),
        sales_start: field_datetime_in(zone, &Utc::now()),
        name: event.name,
        status: event.status,
    })
}

pub(super) async fn event_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let here = format!("/console/events/{id}/");
    let visit = page_or_return!(visit(&state, &headers, &here, "events").await);
    let id = page_or_return!(path_uuid(&id));
    render_event(
        &state,
        visit,
        id,
        query.as_deref(),
        Submitted::default(),
        StatusCode::OK,
    )
    .await
}
