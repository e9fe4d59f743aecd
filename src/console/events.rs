//! Organisers' events (superuser and admin: all): the list, creating one,
//! the event page (details form, tickets, posters, registrations, payments,
//! check-ins, charts), deleting with a confirmation, the CSV export.
//! Another organiser's event is a 404, as if it did not exist.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::attendee::Confirm;
use super::format::{
    Pager, amount, count, csv_field, field_datetime, page_number, pager, pager_with, person,
    rfc3339, short, when,
};
use super::{
    Fields, FormState, Frame, Visit, charts, check_csrf, not_found_page, path_uuid, posted,
    query_text, redirect_with, refusal, refusal_words, render, visit,
};
use crate::cache::Family;
use crate::domain::events::{EventChanges, EventFilter, STATUSES};
use crate::domain::payments::{self, PaymentChanges, PaymentFilter};
use crate::domain::{
    Caller, DomainError, FieldErrors, PageRequest, accounts, checkins, events, posters,
    registrations, tickets,
};
use crate::input::Input;
use crate::input::events::EventPatch;
use crate::input::tickets::TicketPatch;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/events", get(list))
        .route("/console/events/new", get(new_form).post(create))
        .route("/console/events/{id}", get(event_page).post(update))
        .route(
            "/console/events/{id}/delete",
            get(delete_confirm).post(delete),
        )
        .route("/console/events/{id}/tickets", post(add_ticket))
        .route(
            "/console/events/{id}/posters",
            post(upload_poster).layer(axum::extract::DefaultBodyLimit::max(
                crate::input::posters::MAX_UPLOAD_BODY + 64 * 1024,
            )),
        )
        .route(
            "/console/events/{id}/registrations.csv",
            get(registrations_csv),
        )
        .route(
            "/console/tickets/{id}/delete",
            get(ticket_delete_confirm).post(ticket_delete),
        )
        .route(
            "/console/posters/{id}/delete",
            get(poster_delete_confirm).post(poster_delete),
        )
        .route("/console/payments/{id}", post(move_payment))
        .route("/console/payments/{id}/refund", get(refund_confirm))
}

/// Those who may not create events have no events section.
fn refuse_unless_manager(frame: &Frame) -> Result<(), Response> {
    if frame.may_manage {
        Ok(())
    } else {
        Err(refusal(DomainError::Forbidden))
    }
}

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
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Visit { caller, frame } =
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
            starts: when(&state, &e.start_time),
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

/// The fields of the event form.
const EVENT_FIELDS: &[&str] = &[
    "name",
    "description",
    "location",
    "start_time",
    "end_time",
    "quota",
    "category",
    "status",
];

/// The fields of the ticket form.
const TICKET_FIELDS: &[&str] = &["name", "price", "sales_start", "sales_end", "quota"];

#[derive(Template)]
#[template(path = "event_new.html")]
struct NewEventPage<'a> {
    frame: &'a Frame,
    form: FormState,
    statuses: &'static [&'static str],
}

async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Visit { frame, .. } =
        page_or_return!(visit(&state, &headers, "/console/events/new", "events").await);
    if let Err(response) = refuse_unless_manager(&frame) {
        return response;
    }
    let form = FormState::new(
        EVENT_FIELDS,
        &[("status", "draft".into()), ("description", String::new())],
    );
    let html = NewEventPage {
        frame: &frame,
        form,
        statuses: STATUSES,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

/// The event form read by the API's rules (every field as on PUT).
fn read_event_form(state: &AppState, fields: &Fields) -> (EventPatch, FieldErrors) {
    let mut input = Input::new(fields.to_json(EVENT_FIELDS), false);
    let patch = EventPatch::read(&mut input, state.config.time_zone);
    (patch, input.errors)
}

async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (Visit { caller, frame }, fields) =
        page_or_return!(posted(&state, &headers, &body, "/console/events/new").await);
    if let Err(response) = refuse_unless_manager(&frame) {
        return response;
    }
    let (patch, errors) = read_event_form(&state, &fields);
    let outcome = match patch.complete().filter(|_| errors.is_empty()) {
        Some(write) => events::create(&state, &caller, write).await,
        None => Err(DomainError::Invalid(errors)),
    };
    match outcome {
        Ok(created) => redirect_with(
            &state,
            &format!("/console/events/{}/", created.id),
            "ok",
            &format!(
                "Event “{}” created. Add its first ticket type below.",
                created.name
            ),
        ),
        Err(DomainError::Invalid(errors)) => {
            let html = NewEventPage {
                frame: &frame,
                form: FormState::submitted(EVENT_FIELDS, &fields, errors),
                statuses: STATUSES,
            }
            .render();
            render(&frame, StatusCode::BAD_REQUEST, html)
        }
        Err(e) => refusal(e),
    }
}

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
    name: String,
    email: String,
    ticket: String,
    registered: String,
    payment: String,
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
    status: String,
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
struct Submitted {
    details: Option<FormState>,
    ticket: Option<FormState>,
    poster_error: Option<String>,
}

/// The payment moves offered, in the words of a button.
const MOVES: &[(&str, &str, &str)] = &[
    ("pending", "completed", "Mark completed"),
    ("pending", "failed", "Mark failed"),
    ("failed", "pending", "Back to pending"),
    ("completed", "refunded", "Mark refunded"),
];

async fn render_event(
    state: &AppState,
    visit: Visit,
    id: Uuid,
    query: Option<&str>,
    submitted: Submitted,
    status: StatusCode,
) -> Response {
    let Visit { caller, mut frame } = visit;
    frame.section = "events";
    let q = query_text(query, "q");
    let roster_page = page_number(query);
    let payments_page = super::query_value(query, "payments_page")
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
                ("sales_start", field_datetime(state, &Utc::now())),
                ("sales_end", view.sales_end.clone()),
            ],
        )
    });
    let html = EventPage {
        frame: &frame,
        view,
        q,
        ticket_form,
        poster_error: submitted.poster_error,
        may_move_payments: caller.is_admin(),
        details,
        statuses: STATUSES,
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
    Ok(EventView {
        id: event.id,
        organizer_id: event.organizer_id,
        starts: when(state, &event.start_time),
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
                    short(state, &t.ticket.sales_start),
                    short(state, &t.ticket.sales_end)
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
                name: person(&r.user),
                email: r.user.email,
                ticket: r.ticket,
                registered: short(state, &r.registration.registered_at),
                payment: r.payment_status.unwrap_or_else(|| "none".into()),
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
                method: p.payment_method,
                amount: amount(state, p.amount_paid_minor),
                when: match &p.paid_at {
                    Some(paid) => format!("paid {}", short(state, paid)),
                    None => format!("recorded {}", short(state, &p.created_at)),
                },
                moves: MOVES
                    .iter()
                    .filter(|(from, _, _)| *from == p.payment_status)
                    .map(|(_, to, words)| ((*to).to_string(), (*words).to_string()))
                    .collect(),
                status: p.payment_status,
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
                field_datetime(state, &event.start_time),
            ),
            ("end_time".into(), field_datetime(state, &event.end_time)),
            ("quota".into(), event.quota.to_string()),
            ("category".into(), event.category.clone()),
            ("status".into(), event.status.clone()),
        ],
        sales_end: field_datetime(state, &event.start_time),
        name: event.name,
        status: event.status,
    })
}

async fn event_page(
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

/// The details form: every field as on PUT.
async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let here = format!("/console/events/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &here).await);
    let id = page_or_return!(path_uuid(&id));
    let (patch, errors) = read_event_form(&state, &fields);
    let outcome = if errors.is_empty() {
        let changes = EventChanges::from(patch);
        events::update(&state, &visit.caller, id, changes).await
    } else {
        // 404 before 400, as the API.
        match events::get_managed(&state, &visit.caller, id).await {
            Ok(_) => Err(DomainError::Invalid(errors)),
            Err(e) => Err(e),
        }
    };
    match outcome {
        Ok(updated) => redirect_with(
            &state,
            &here,
            "ok",
            &format!("Event “{}” saved.", updated.name),
        ),
        Err(DomainError::Forbidden) => not_found_page(),
        Err(DomainError::Invalid(errors)) => {
            let submitted = Submitted {
                details: Some(FormState::submitted(EVENT_FIELDS, &fields, errors)),
                ..Submitted::default()
            };
            render_event(&state, visit, id, None, submitted, StatusCode::BAD_REQUEST).await
        }
        Err(DomainError::Conflict(message)) => {
            let submitted = Submitted {
                details: Some(FormState::submitted(
                    EVENT_FIELDS,
                    &fields,
                    FieldErrors::single("quota", message),
                )),
                ..Submitted::default()
            };
            render_event(&state, visit, id, None, submitted, StatusCode::CONFLICT).await
        }
        Err(e) => refusal(e),
    }
}

/// An event the caller manages (another's is a 404 page).
async fn managed(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<crate::db::entities::event::Model, Response> {
    match events::get_managed(state, caller, id).await {
        Ok(event) => Ok(event),
        Err(DomainError::Forbidden) => Err(not_found_page()),
        Err(e) => Err(refusal(e)),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

async fn delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/events/{id}/delete");
    let Visit { caller, frame } = page_or_return!(visit(&state, &headers, &here, "events").await);
    let id = page_or_return!(path_uuid(&id));
    let event = page_or_return!(managed(&state, &caller, id).await);
    let goes = match events::dependents(&state, &caller, id).await {
        Ok(goes) => goes,
        Err(e) => return refusal(e),
    };
    Confirm {
        frame: &frame,
        title: "Delete this event?".into(),
        question: format!(
            "Delete “{}” ({})? This cannot be undone.",
            event.name,
            when(&state, &event.start_time)
        ),
        consequences: vec![
            format!(
                "Its {}, {}, {} and {} are deleted with it.",
                plural(goes.tickets, "ticket type", "ticket types"),
                plural(goes.registrations, "registration", "registrations"),
                plural(goes.payments, "payment", "payments"),
                plural(goes.posters, "poster", "posters"),
            ),
            "Tickets already sent stop working at the door.".into(),
        ],
        action: here,
        button: "Delete event",
        back: format!("/console/events/{id}/"),
        fields: Vec::new(),
    }
    .page()
}

async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/events/{id}/");
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(path_uuid(&id));
    let event = page_or_return!(managed(&state, &visit.caller, id).await);
    match events::delete(&state, &visit.caller, id).await {
        Ok(()) => redirect_with(
            &state,
            "/console/events/",
            "ok",
            &format!("Event “{}” deleted.", event.name),
        ),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}

async fn add_ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/events/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(path_uuid(&id));
    if let Err(response) = managed(&state, &visit.caller, id).await {
        return response;
    }
    let mut json = fields.to_json(TICKET_FIELDS);
    json.insert("event_id".into(), serde_json::Value::String(id.to_string()));
    let mut input = Input::new(json, false);
    let patch = TicketPatch::read(&mut input, state.config.time_zone);
    if let (Some(start), Some(end)) = (patch.sales_start, patch.sales_end) {
        tickets::check_window(start, end, &mut input.errors);
    }
    let errors = input.errors;
    let outcome = match patch.complete().filter(|_| errors.is_empty()) {
        Some(write) => tickets::create(&state, &visit.caller, write).await,
        None => Err(DomainError::Invalid(errors)),
    };
    match outcome {
        Ok(created) => redirect_with(
            &state,
            &format!("{back}#tickets"),
            "ok",
            &format!("Ticket “{}” added.", created.ticket.name),
        ),
        Err(DomainError::Invalid(errors)) => {
            let submitted = Submitted {
                ticket: Some(FormState::submitted(TICKET_FIELDS, &fields, errors)),
                ..Submitted::default()
            };
            render_event(&state, visit, id, None, submitted, StatusCode::BAD_REQUEST).await
        }
        Err(e) => refusal(e),
    }
}

/// A ticket of an event the caller manages.
async fn managed_ticket(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<crate::db::entities::ticket::Model, Response> {
    let id = path_uuid(raw)?;
    match tickets::get_managed(state, caller, id).await {
        Ok((t, _)) => Ok(t),
        Err(DomainError::Forbidden) => Err(not_found_page()),
        Err(e) => Err(refusal(e)),
    }
}

async fn ticket_delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/tickets/{id}/delete");
    let Visit { caller, frame } = page_or_return!(visit(&state, &headers, &here, "events").await);
    let t = page_or_return!(managed_ticket(&state, &caller, &id).await);
    let sold = u64::try_from(t.sold).unwrap_or(0);
    Confirm {
        frame: &frame,
        title: "Delete this ticket type?".into(),
        question: format!("Delete the ticket type “{}”?", t.name),
        consequences: vec![format!(
            "Its {} and their payments are deleted with it; their places go back to the event.",
            plural(sold, "registration", "registrations")
        )],
        action: here,
        button: "Delete ticket type",
        back: format!("/console/events/{}/#tickets", t.event_id),
        fields: Vec::new(),
    }
    .page()
}

async fn ticket_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, "/console/events/").await);
    let t = page_or_return!(managed_ticket(&state, &visit.caller, &id).await);
    let back = format!("/console/events/{}/#tickets", t.event_id);
    match tickets::delete(&state, &visit.caller, t.id).await {
        Ok(()) => redirect_with(
            &state,
            &back,
            "ok",
            &format!("Ticket type “{}” deleted.", t.name),
        ),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}

async fn upload_poster(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let back = format!("/console/events/{id}/");
    let visit = page_or_return!(visit(&state, &headers, &back, "events").await);
    let id = page_or_return!(path_uuid(&id));
    let read = match Multipart::from_request(request, &state).await {
        Ok(form) => crate::input::posters::read_poster_form(form, &["csrf_token"])
            .await
            .map_err(|e| e.body_text()),
        Err(e) => Err(e.body_text()),
    };
    let (texts, image) = match read {
        Ok(found) => found,
        // Not a form we can read: no CSRF token can be trusted either.
        Err(_) => return super::forbidden_page(),
    };
    if let Err(response) = check_csrf(
        &visit,
        texts.get("csrf_token").map(String::as_str).unwrap_or(""),
    ) {
        return response;
    }
    if let Err(response) = managed(&state, &visit.caller, id).await {
        return response;
    }
    let mut errors = FieldErrors::default();
    let checked = posters::check_image(image, &mut errors);
    let outcome = match checked {
        Some(image) => posters::upload(&state, &visit.caller, id, image).await,
        None => Err(DomainError::Invalid(errors)),
    };
    match outcome {
        Ok(_) => redirect_with(&state, &format!("{back}#posters"), "ok", "Poster uploaded."),
        Err(DomainError::Invalid(errors)) => {
            let submitted = Submitted {
                poster_error: Some(
                    errors
                        .0
                        .into_values()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                ..Submitted::default()
            };
            render_event(&state, visit, id, None, submitted, StatusCode::BAD_REQUEST).await
        }
        Err(e) => refusal(e),
    }
}

/// A poster of an event the caller manages, with its event.
async fn managed_poster(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<crate::db::entities::media::Model, Response> {
    let id = path_uuid(raw)?;
    let poster = posters::get(state, id).await.map_err(refusal)?;
    managed(state, caller, poster.event_id).await?;
    Ok(poster)
}

async fn poster_delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/posters/{id}/delete");
    let Visit { caller, frame } = page_or_return!(visit(&state, &headers, &here, "events").await);
    let poster = page_or_return!(managed_poster(&state, &caller, &id).await);
    Confirm {
        frame: &frame,
        title: "Delete this poster?".into(),
        question: format!("Delete the poster “{}”?", poster.original_name),
        consequences: vec!["The image is removed from storage; links to it stop working.".into()],
        action: here,
        button: "Delete poster",
        back: format!("/console/events/{}/#posters", poster.event_id),
        fields: Vec::new(),
    }
    .page()
}

async fn poster_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, "/console/events/").await);
    let poster = page_or_return!(managed_poster(&state, &visit.caller, &id).await);
    let back = format!("/console/events/{}/#posters", poster.event_id);
    match posters::delete(&state, &visit.caller, poster.id).await {
        Ok(()) => redirect_with(&state, &back, "ok", "Poster deleted."),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}

/// A refund gives money back: it is confirmed on its own page first.
async fn refund_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/payments/{id}/refund");
    let Visit { caller, frame } = page_or_return!(visit(&state, &headers, &here, "events").await);
    let id = page_or_return!(path_uuid(&id));
    let found = match payments::get_changeable(&state, &caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let who = match accounts::users_by_id(&state, &[found.user_id]).await {
        Ok(people) => people.get(&found.user_id).map(person).unwrap_or_default(),
        Err(e) => return refusal(e),
    };
    Confirm {
        frame: &frame,
        title: "Mark this payment refunded?".into(),
        question: format!(
            "Mark the payment of {} by {who} ({}) as refunded?",
            amount(&state, found.amount_paid_minor),
            found.payment_method
        ),
        consequences: vec![
            "Do this once the money is back with them: a refund cannot be undone.".into(),
            "Their registration stays; it counts as unpaid again.".into(),
        ],
        action: format!("/console/payments/{id}"),
        button: "Mark refunded",
        back: format!("/console/events/{}/#payments", found.event_id),
        fields: vec![("status", "refunded".into())],
    }
    .page()
}

/// A payment's status moved by staff (superuser and admin), only along the
/// state machine's allowed moves.
async fn move_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, fields) =
        page_or_return!(posted(&state, &headers, &body, "/console/events/").await);
    let id = page_or_return!(path_uuid(&id));
    let found = match payments::get_changeable(&state, &visit.caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let back = format!("/console/events/{}/#payments", found.event_id);
    let mut errors = FieldErrors::default();
    let to = crate::input::canonical_choice(fields.get("status"), payments::STATUSES, &[]);
    if to.is_none() {
        errors.add("payment_status", "Choose a status.");
    }
    let changes = PaymentChanges {
        status: to,
        ..PaymentChanges::default()
    };
    match payments::update(&state, &visit.caller, id, changes, errors).await {
        Ok(updated) => redirect_with(
            &state,
            &back,
            "ok",
            &format!("Payment marked {}.", updated.payment_status),
        ),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}

/// Every registration of an event as CSV (API.md §8's header), streamed a
/// page of 500 rows at a time.
async fn registrations_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/events/{id}/");
    let Visit { caller, .. } = page_or_return!(visit(&state, &headers, &here, "events").await);
    let event_id = page_or_return!(path_uuid(&id));
    // The first page now: a refusal is still a page, not a broken download.
    let first = match registrations::roster(
        &state,
        &caller,
        event_id,
        None,
        PageRequest { page: 1, size: 500 },
    )
    .await
    {
        Ok(page) => page,
        Err(DomainError::Forbidden) => return not_found_page(),
        Err(e) => return refusal(e),
    };
    let header_row = "registration_id,username,email,first_name,last_name,ticket,registered_at,payment_status,checked_in_at\r\n";
    let stream = futures::stream::unfold(
        (Some(first), state, caller, false),
        move |(page, state, caller, header_sent)| async move {
            if !header_sent {
                let chunk = Ok::<_, std::io::Error>(Bytes::from_static(header_row.as_bytes()));
                return Some((chunk, (page, state, caller, true)));
            }
            let page = page?;
            let mut out = String::with_capacity(page.items.len() * 160);
            for r in &page.items {
                let fields = [
                    r.registration.id.to_string(),
                    r.user.username.clone(),
                    r.user.email.clone(),
                    r.user.first_name.clone(),
                    r.user.last_name.clone(),
                    r.ticket.clone(),
                    rfc3339(&r.registration.registered_at),
                    r.payment_status.clone().unwrap_or_default(),
                    r.checked_in_at.as_ref().map(rfc3339).unwrap_or_default(),
                ];
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    csv_field(f, &mut out);
                }
                out.push_str("\r\n");
            }
            let next = if page.number < page.total_pages {
                match registrations::roster(
                    &state,
                    &caller,
                    event_id,
                    None,
                    PageRequest {
                        page: page.number + 1,
                        size: 500,
                    },
                )
                .await
                {
                    Ok(next) => Some(next),
                    Err(e) => {
                        // The rows so far are sent; the file ends short.
                        tracing::error!("CSV export of event {event_id} stopped: {e}");
                        return Some((
                            Err(std::io::Error::other(e.to_string())),
                            (None, state, caller, true),
                        ));
                    }
                }
            } else {
                None
            };
            Some((Ok(Bytes::from(out)), (next, state, caller, true)))
        },
    );
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"registrations-{event_id}.csv\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
