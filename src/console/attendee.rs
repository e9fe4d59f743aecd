//! For everyone signed in: the dashboard, "My tickets" (with QR codes),
//! browsing scheduled events, registering for a ticket and cancelling.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::format::{Pager, count, page_number, pager, when};
use super::{
    Frame, Visit, path_uuid, posted, query_text, redirect_with, refusal, refusal_words, render,
    visit,
};
use crate::cache::Family;
use crate::domain::events::EventFilter;
use crate::domain::registrations::NewRegistration;
use crate::domain::{
    Caller, DomainError, FieldErrors, PageRequest, checkins, events, payments, posters,
    registrations, tickets,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/my", get(my_tickets))
        .route(
            "/console/my/registrations/{id}/cancel",
            get(cancel_confirm).post(cancel),
        )
        .route(
            "/console/my/registrations/{id}/proof",
            axum::routing::post(send_proof).layer(axum::extract::DefaultBodyLimit::max(
                crate::input::posters::MAX_UPLOAD_BODY + 64 * 1024,
            )),
        )
        .route("/console/payments/{id}/proof", get(show_proof))
        .route("/console/browse", get(browse))
        .route("/console/browse/{id}", get(browse_event).post(register))
        .route(
            "/console/browse/{id}/waitlist",
            axum::routing::post(join_waitlist),
        )
        .route(
            "/console/waitlist/{id}/accept",
            axum::routing::post(accept_offer),
        )
        .route(
            "/console/waitlist/{id}/leave",
            axum::routing::post(leave_waitlist),
        )
}

/// An event row of the dashboard.
#[derive(Serialize, Deserialize)]
struct EventRow {
    id: Uuid,
    name: String,
    status: String,
    starts: String,
    registered: i64,
    quota: i64,
    checked_in: u64,
}

/// A ticket card of the dashboard.
#[derive(Serialize, Deserialize)]
struct TicketCard {
    event: String,
    ticket: String,
    starts: String,
    location: String,
}

/// What a user's dashboard shows, kept in the cache (family `Console`,
/// which every write moves) for at most the minute it was read in: it also
/// depends on the clock (upcoming events, the last 24 hours).
#[derive(Serialize, Deserialize)]
struct DashboardView {
    organised: Vec<EventRow>,
    tickets: Vec<TicketCard>,
    /// Who manages events: the payments waiting for their decision.
    pending_payments: Option<String>,
    /// Superuser and admin: registrations of the last 24 hours.
    registrations_today: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard<'a> {
    frame: &'a Frame,
    view: std::sync::Arc<DashboardView>,
}

/// The template reads the view's fields as the page's own.
impl std::ops::Deref for Dashboard<'_> {
    type Target = DashboardView;
    fn deref(&self) -> &DashboardView {
        &self.view
    }
}

async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, "/console/", "home").await);
    let key = format!(
        "dashboard:{}:{}:{}:{}",
        caller.id,
        frame.may_manage,
        caller.is_admin(),
        Utc::now().timestamp() / 60
    );
    let loaded = state
        .cache
        .shared(Family::Console, &key, || {
            load_dashboard(&state, &caller, frame.may_manage)
        })
        .await;
    let view = match loaded {
        Ok(view) => view,
        Err(e) => return refusal(e),
    };
    let html = Dashboard {
        frame: &frame,
        view,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

/// Reads and formats a user's dashboard: their upcoming events (those who
/// organise), their tickets, the payments waiting for those who manage
/// events, and for superuser and admin the registrations of the last 24 hours.
async fn load_dashboard(
    state: &AppState,
    caller: &Caller,
    may_manage: bool,
) -> Result<DashboardView, DomainError> {
    let organised = if may_manage {
        events::list(
            state,
            &EventFilter {
                organizer: (!caller.is_admin()).then_some(caller.id),
                start_after: Some(Utc::now()),
                ..EventFilter::default()
            },
            &[("start_time", false)],
            PageRequest { page: 1, size: 5 },
            None,
        )
        .await?
        .items
    } else {
        Vec::new()
    };
    let held = registrations::holdings(state, caller).await?;
    let ids: Vec<Uuid> = organised.iter().map(|e| e.id).collect();
    let admitted = checkins::admitted_per_event(state, &ids).await?;
    // Whoever manages events (organisers their own, admins all) sees the
    // payments waiting for them; the last 24 hours are the admins' figure.
    let pending_payments = if may_manage {
        let pending = payments::list(
            state,
            caller,
            &payments::PaymentFilter {
                status: Some("pending".into()),
                ..Default::default()
            },
            PageRequest { page: 1, size: 1 },
        )
        .await?
        .count;
        Some(count(pending))
    } else {
        None
    };
    let registrations_today = if caller.is_admin() {
        let since = Utc::now() - chrono::Duration::hours(24);
        Some(count(registrations::count_since(state, since).await?))
    } else {
        None
    };
    Ok(DashboardView {
        organised: organised
            .into_iter()
            .map(|e| EventRow {
                checked_in: admitted.get(&e.id).copied().unwrap_or(0),
                starts: super::format::event_when(state, &e),
                id: e.id,
                name: e.name,
                status: e.status,
                registered: e.registered,
                quota: e.quota,
            })
            .collect(),
        tickets: held
            .into_iter()
            .map(|h| TicketCard {
                starts: super::format::event_when(state, &h.event),
                event: h.event.name,
                ticket: h.ticket.name,
                location: h.event.location,
            })
            .collect(),
        pending_payments,
        registrations_today,
    })
}

/// A ticket card of "My tickets".
struct HeldTicket {
    registration: Uuid,
    event: String,
    ticket: String,
    starts: String,
    location: String,
    /// In words ("Paid", "Free", "Not paid"…) and its badge's class.
    payment: &'static str,
    payment_class: &'static str,
    code: String,
    /// Printed under the QR code: `7KQ4-M2XD-9P`.
    short_code: String,
    qr_svg: String,
    cancellable: bool,
    /// "Checked in at 18:04 on Mon 1 Mar" once admitted.
    checked_in: Option<String>,
    /// A priced ticket not paid yet: how to pay it.
    to_pay: Option<ToPay>,
}

/// What a ticket still owes, and how to pay it.
struct ToPay {
    /// "IDR 75,000".
    due: String,
    /// A payment window: "Sat 5 Dec 2026 at 18:30 WIB", after which the
    /// seat goes back on sale.
    pay_by: Option<String>,
    /// The event's payment instructions, as the organiser wrote them.
    instructions: Option<String>,
    /// A proof was sent and waits for the organiser.
    pending: bool,
    /// The last proof was refused.
    failed: bool,
    /// The payment holding the proof, and the proof's file name.
    proof: Option<(Uuid, String)>,
    /// What was wrong with the file just sent.
    error: Option<String>,
}

/// A waiting-list entry of "My tickets" (waiting or offered).
struct LineRow {
    id: Uuid,
    event: String,
    ticket: String,
    /// "Number 3 in line" while waiting.
    position: Option<i64>,
    /// "Sat 5 Dec 2026, 18:30 WIB (23 hours left)" while a seat is offered.
    offered_until: Option<String>,
}

#[derive(Template)]
#[template(path = "my.html")]
struct MyTickets<'a> {
    frame: &'a Frame,
    tickets: Vec<HeldTicket>,
    lines: Vec<LineRow>,
}

/// The QR code as markup to put in the page (without its XML prologue).
fn inline_svg(code: &str) -> Result<String, DomainError> {
    let svg = crate::ticket_codes::qr_svg(code)?;
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_string(),
        None => svg,
    })
}

async fn my_tickets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let visit = page_or_return!(visit(&state, &headers, "/console/my/", "my").await);
    render_my(&state, visit, None, StatusCode::OK).await
}

/// My tickets; `error`: what was wrong with the proof just sent for that
/// registration (shown under its form).
async fn render_my(
    state: &AppState,
    visit: Visit,
    error: Option<(Uuid, String)>,
    status: StatusCode,
) -> Response {
    let Visit { caller, frame, .. } = visit;
    let state = state.clone();
    let result = async {
        let held = registrations::holdings(&state, &caller).await?;
        let ids: Vec<Uuid> = held.iter().map(|h| h.registration.id).collect();
        let shown = payments::shown_by_registration(&state, &ids).await?;
        let admitted = checkins::admissions_of(&state, &ids).await?;
        let mut tickets = Vec::with_capacity(held.len());
        for h in held {
            let code = checkins::ticket_code(&state, &caller, h.registration.id)
                .await?
                .code;
            let latest = shown.get(&h.registration.id);
            let paid = latest.map(|p| p.payment_status.clone());
            let owed = h
                .registration
                .amount_due_minor
                .unwrap_or(h.ticket.price_minor);
            let priced = owed > 0;
            let (payment, payment_class) = match paid.as_deref() {
                None | Some("failed") if priced => ("Awaiting payment", "unpaid"),
                other => super::format::payment_words(priced, other),
            };
            let to_pay = (priced && matches!(paid.as_deref(), None | Some("pending" | "failed")))
                .then(|| ToPay {
                    due: super::format::amount(&state, owed),
                    pay_by: h
                        .registration
                        .hold_expires_at
                        .filter(|_| h.registration.status == "awaiting_payment")
                        .map(|until| {
                            super::format::countdown(
                                crate::domain::events::zone_of(&state, &h.event),
                                &until,
                                state.clock.now(),
                            )
                        }),
                    instructions: h.event.payment_instructions.clone(),
                    pending: paid.as_deref() == Some("pending"),
                    failed: paid.as_deref() == Some("failed"),
                    proof: latest.and_then(|p| {
                        p.proof_name
                            .clone()
                            .filter(|_| p.proof_key.is_some())
                            .map(|name| (p.id, name))
                    }),
                    error: error
                        .as_ref()
                        .filter(|(id, _)| *id == h.registration.id)
                        .map(|(_, e)| e.clone()),
                });
            tickets.push(HeldTicket {
                registration: h.registration.id,
                qr_svg: inline_svg(&code)?,
                code,
                short_code: crate::ticket_codes::format_short_code(&h.registration.short_code),
                checked_in: admitted
                    .get(&h.registration.id)
                    .map(|at| super::format::when(&state, at)),
                starts: super::format::event_when(&state, &h.event),
                event: h.event.name,
                ticket: h.ticket.name,
                location: h.event.location,
                payment,
                payment_class,
                // The API lets its user cancel while nothing is paid.
                cancellable: caller.is_admin() || paid.as_deref() != Some("completed"),
                to_pay,
            });
        }
        let entries = crate::domain::waitlist::list(
            &state,
            &caller,
            None,
            PageRequest { page: 1, size: 100 },
        )
        .await?
        .items;
        let mut lines = Vec::new();
        for place in entries.into_iter().filter(|p| {
            p.entry.user_id == caller.id && matches!(p.entry.status.as_str(), "waiting" | "offered")
        }) {
            let (t, _) = match tickets::get(&state, place.entry.ticket_id).await {
                Ok(view) => (view.ticket, ()),
                Err(DomainError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let event = crate::domain::events::by_ids(&state, &[place.entry.event_id]).await?;
            let Some(event) = event.into_values().next() else {
                continue;
            };
            let zone = crate::domain::events::zone_of(&state, &event);
            lines.push(LineRow {
                id: place.entry.id,
                event: event.name,
                ticket: t.name,
                position: place.position,
                offered_until: place
                    .entry
                    .offer_expires_at
                    .filter(|_| place.entry.status == "offered")
                    .map(|until| super::format::countdown(zone, &until, state.clock.now())),
            });
        }
        Ok::<_, DomainError>((tickets, lines))
    }
    .await;
    let (tickets, lines) = match result {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let html = MyTickets {
        frame: &frame,
        tickets,
        lines,
    }
    .render();
    render(&frame, status, html)
}

/// An attendee sends the proof of transfer for one of their registrations.
async fn send_proof(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Response {
    use axum::extract::FromRequest;
    let visit = page_or_return!(visit(&state, &headers, "/console/my/", "my").await);
    let id = page_or_return!(super::path_uuid(&id));
    let read = match axum::extract::Multipart::from_request(request, &state).await {
        Ok(form) => crate::input::posters::read_file_form(
            form,
            "proof",
            payments::MAX_PROOF_BYTES,
            &["csrf_token"],
        )
        .await
        .map_err(|e| e.body_text()),
        Err(e) => Err(e.body_text()),
    };
    let Ok((texts, upload)) = read else {
        return super::forbidden_page();
    };
    if let Err(response) = super::check_csrf(
        &visit,
        texts.get("csrf_token").map(String::as_str).unwrap_or(""),
    ) {
        return response;
    }
    let mut errors = FieldErrors::default();
    let outcome = match payments::check_proof(upload, &mut errors) {
        Some(proof) => payments::submit_proof(&state, &visit.caller, id, proof).await,
        None => Err(DomainError::Invalid(errors)),
    };
    match outcome {
        Ok(_) => redirect_with(
            &state,
            &format!("/console/my/#ticket-{id}"),
            "ok",
            "Thank you: your proof of transfer is sent. The organiser will confirm your payment.",
        ),
        Err(e @ (DomainError::Invalid(_) | DomainError::AlreadyPaid)) => {
            let words = refusal_words(&e);
            let status = if matches!(e, DomainError::AlreadyPaid) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_REQUEST
            };
            render_my(&state, visit, Some((id, words)), status).await
        }
        Err(e) => refusal(e),
    }
}

/// A payment's proof of transfer, for its payer and the event's managers.
async fn show_proof(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/payments/{id}/proof");
    let visit = page_or_return!(visit(&state, &headers, &here, "my").await);
    let id = page_or_return!(super::path_uuid(&id));
    match payments::read_proof(&state, &visit.caller, id).await {
        Ok((bytes, content_type, name)) => {
            let mut response = axum::response::IntoResponse::into_response(bytes);
            let headers = response.headers_mut();
            if let Ok(v) = axum::http::HeaderValue::from_str(&content_type) {
                headers.insert(axum::http::header::CONTENT_TYPE, v);
            }
            let safe: String = name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            if let Ok(v) =
                axum::http::HeaderValue::from_str(&format!("inline; filename=\"{safe}\""))
            {
                headers.insert(axum::http::header::CONTENT_DISPOSITION, v);
            }
            headers.insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("private, no-store"),
            );
            headers.insert(
                axum::http::header::X_CONTENT_TYPE_OPTIONS,
                axum::http::HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(DomainError::Forbidden) => super::not_found_page(),
        Err(e) => refusal(e),
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
pub(super) struct Confirm<'a> {
    pub frame: &'a Frame,
    pub title: String,
    pub question: String,
    pub consequences: Vec<String>,
    pub action: String,
    pub button: &'a str,
    pub back: String,
    /// Hidden fields the confirmed form sends along.
    pub fields: Vec<(&'static str, String)>,
}

impl Confirm<'_> {
    /// The confirmation page, as answered to the GET before the action.
    pub fn page(self) -> Response {
        let frame = self.frame;
        render(frame, StatusCode::OK, self.render())
    }
}

/// The registration the caller may cancel, with its ticket and event.
async fn cancellable(
    state: &AppState,
    caller: &crate::domain::Caller,
    id: Uuid,
) -> Result<registrations::Holding, DomainError> {
    let found = registrations::get(state, caller, id).await?;
    if found.user_id != caller.id && !caller.is_admin() {
        return Err(DomainError::NotFound);
    }
    let ticket = tickets::get(state, found.ticket_id).await?.ticket;
    let event = events::get(state, found.event_id).await?;
    Ok(registrations::Holding {
        registration: found,
        ticket,
        event,
    })
}

async fn cancel_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/my/registrations/{id}/cancel");
    let Visit { caller, frame, .. } = page_or_return!(visit(&state, &headers, &here, "my").await);
    let id = page_or_return!(path_uuid(&id));
    let held = match cancellable(&state, &caller, id).await {
        Ok(held) => held,
        Err(DomainError::Forbidden) => return super::not_found_page(),
        Err(e) => return refusal(e),
    };
    Confirm {
        frame: &frame,
        title: "Cancel this registration?".into(),
        question: format!(
            "Cancel your {} ticket for {} ({})?",
            held.ticket.name,
            held.event.name,
            super::format::event_when(&state, &held.event)
        ),
        consequences: vec![
            "Your place goes back on sale and your ticket's QR code stops working.".into(),
            "Any payment not completed is removed with it.".into(),
        ],
        action: here,
        button: "Cancel registration",
        back: "/console/my/".into(),
        fields: Vec::new(),
    }
    .page()
}

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (Visit { caller, .. }, _) =
        page_or_return!(posted(&state, &headers, &body, "/console/my/").await);
    let id = page_or_return!(path_uuid(&id));
    let held = match cancellable(&state, &caller, id).await {
        Ok(held) => held,
        Err(DomainError::Forbidden) => return super::not_found_page(),
        Err(e) => return refusal(e),
    };
    match registrations::cancel(&state, &caller, id).await {
        Ok(()) => redirect_with(
            &state,
            "/console/my/",
            "ok",
            &format!("Your registration for {} is cancelled.", held.event.name),
        ),
        Err(DomainError::Forbidden) => redirect_with(
            &state,
            "/console/my/",
            "error",
            "A paid registration cannot be cancelled here. Ask the organiser for a refund.",
        ),
        Err(e) => redirect_with(&state, "/console/my/", "error", &refusal_words(&e)),
    }
}

struct BrowseRow {
    id: Uuid,
    name: String,
    starts: String,
    location: String,
    category: String,
    room: i64,
}

#[derive(Template)]
#[template(path = "browse.html")]
struct BrowsePage<'a> {
    frame: &'a Frame,
    q: String,
    rows: Vec<BrowseRow>,
    pager: Pager,
}

/// Scheduled events not yet started, soonest first.
async fn browse(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Visit { frame, .. } =
        page_or_return!(visit(&state, &headers, "/console/browse/", "browse").await);
    let q = query_text(query.as_deref(), "q");
    let filter = EventFilter {
        status: Some("scheduled".into()),
        start_after: Some(Utc::now()),
        anywhere: (!q.is_empty()).then(|| q.clone()),
        ..EventFilter::default()
    };
    let request = PageRequest {
        page: page_number(query.as_deref()),
        size: 20,
    };
    let listing = match events::list(&state, &filter, &[("start_time", false)], request, None).await
    {
        Ok(listing) => listing,
        Err(e) => return refusal(e),
    };
    let pager = pager(&listing, "/console/browse/", &[("q", &q)]);
    let rows = listing
        .items
        .into_iter()
        .map(|e| BrowseRow {
            starts: super::format::event_when(&state, &e),
            room: (e.quota - e.registered).max(0),
            id: e.id,
            name: e.name,
            location: e.location,
            category: e.category,
        })
        .collect();
    let html = BrowsePage {
        frame: &frame,
        q,
        rows,
        pager,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

struct OfferRow {
    id: Uuid,
    name: String,
    price: String,
    available: i64,
    sales: String,
    on_sale: bool,
    /// Sold out, with a waiting list one may join now.
    waitlist_open: bool,
}

#[derive(Template)]
#[template(path = "browse_event.html")]
struct BrowseEvent<'a> {
    frame: &'a Frame,
    id: Uuid,
    name: String,
    status: String,
    starts: String,
    location: String,
    description: String,
    posters: Vec<Uuid>,
    offers: Vec<OfferRow>,
    /// Tickets the caller already holds here.
    held: Vec<String>,
    message: Option<String>,
    /// The caller must verify their address before registering.
    must_verify: bool,
}

/// One event as an attendee sees it: what it is, its tickets, a register
/// button per ticket on sale.
async fn render_browse_event(
    state: &AppState,
    visit: Visit,
    id: &str,
    status: StatusCode,
    message: Option<String>,
) -> Response {
    let Visit {
        caller, mut frame, ..
    } = visit;
    frame.section = "browse";
    let id = page_or_return!(path_uuid(id));
    let loaded = async {
        let event = events::get(state, id).await?;
        let offers = tickets::list(
            state,
            Some(id),
            false,
            &[],
            PageRequest { page: 1, size: 100 },
            None,
        )
        .await?;
        let posters = posters::list_for_event(state, id).await?;
        let held = registrations::holdings(state, &caller).await?;
        Ok::<_, DomainError>((event, offers, posters, held))
    }
    .await;
    let (event, offers, posters, held) = match loaded {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    // Drafts are not public: only those who manage them see them here.
    if event.status == "draft" && !caller.manages_event(event.organizer_id) {
        return super::not_found_page();
    }
    let now = Utc::now();
    let open = event.status == "scheduled" && event.start_time > now;
    let html = BrowseEvent {
        frame: &frame,
        id: event.id,
        starts: super::format::event_span(
            crate::domain::events::zone_of(state, &event),
            &event.start_time,
            &event.end_time,
        ),
        offers: offers
            .items
            .into_iter()
            .map(|t| {
                let available = t.available();
                let (on_sale, sales) =
                    super::format::sales_state(open, &t.ticket, available, |at| when(state, at));
                let selling = open && t.ticket.sales_start <= now && now < t.ticket.sales_end;
                OfferRow {
                    waitlist_open: t.ticket.waitlist && selling && !on_sale,
                    id: t.ticket.id,
                    price: super::format::price(state, t.ticket.price_minor),
                    name: t.ticket.name,
                    available,
                    sales,
                    on_sale,
                }
            })
            .collect(),
        held: held
            .into_iter()
            .filter(|h| h.event.id == event.id)
            .map(|h| h.ticket.name)
            .collect(),
        posters: posters.into_iter().map(|p| p.media.id).collect(),
        name: event.name,
        status: event.status,
        location: event.location,
        description: event.description,
        message,
        must_verify: crate::domain::accounts::links::check_may_register(state, &caller).is_err()
            && !caller.is_admin(),
    }
    .render();
    render(&frame, status, html)
}

async fn browse_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/browse/{id}/");
    match visit(&state, &headers, &here, "browse").await {
        Ok(visit) => render_browse_event(&state, visit, &id, StatusCode::OK, None).await,
        Err(response) => response,
    }
}

/// Registers the caller for the ticket chosen, under the API's rules.
async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let here = format!("/console/browse/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &here).await);
    let mut errors = FieldErrors::default();
    let ticket_id = match Uuid::parse_str(fields.get("ticket_id").trim()) {
        Ok(ticket_id) => ticket_id,
        Err(_) => {
            errors.add("ticket_id", "Choose a ticket.");
            Uuid::nil()
        }
    };
    // The ticket must be one of this event's.
    if let Ok(event_id) = Uuid::parse_str(&id)
        && errors.is_empty()
        && let Ok(t) = tickets::get(&state, ticket_id).await
        && t.ticket.event_id != event_id
    {
        errors.add("ticket_id", "This ticket is not for this event.");
    }
    let outcome = if errors.is_empty() {
        registrations::register(
            &state,
            &visit.caller,
            NewRegistration {
                ticket_id,
                user_id: None,
                voucher: Some(fields.get("voucher").trim().to_owned()).filter(|c| !c.is_empty()),
            },
            errors,
        )
        .await
    } else {
        Err(DomainError::Invalid(errors))
    };
    match outcome {
        Ok(_) => redirect_with(
            &state,
            "/console/my/",
            "ok",
            "You are registered. Your ticket and its QR code are below.",
        ),
        Err(e @ DomainError::Invalid(_)) => {
            let words = refusal_words(&e);
            render_browse_event(&state, visit, &id, StatusCode::BAD_REQUEST, Some(words)).await
        }
        Err(
            e @ (DomainError::SoldOut
            | DomainError::AlreadyRegistered { .. }
            | DomainError::SalesClosed(_)
            | DomainError::Unverified
            | DomainError::Conflict(_)),
        ) => {
            let words = e.to_string();
            render_browse_event(&state, visit, &id, StatusCode::CONFLICT, Some(words)).await
        }
        Err(e) => refusal(e),
    }
}

/// Joins a sold-out ticket's waiting list from the event's page.
async fn join_waitlist(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let here = format!("/console/browse/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &here).await);
    let Ok(ticket_id) = Uuid::parse_str(fields.get("ticket_id").trim()) else {
        return render_browse_event(
            &state,
            visit,
            &id,
            StatusCode::BAD_REQUEST,
            Some("Choose a ticket.".into()),
        )
        .await;
    };
    match crate::domain::waitlist::join(&state, &visit.caller, ticket_id, FieldErrors::default())
        .await
    {
        Ok(placed) => redirect_with(
            &state,
            "/console/my/",
            "ok",
            &format!(
                "You are number {} in line. If a seat frees, it is offered to you by mail.",
                placed.position.unwrap_or(1)
            ),
        ),
        Err(e @ (DomainError::Conflict(_) | DomainError::Invalid(_))) => {
            let words = refusal_words(&e);
            render_browse_event(&state, visit, &id, StatusCode::CONFLICT, Some(words)).await
        }
        Err(e) => refusal(e),
    }
}

/// Accepts the seat offered from a waiting list: the registration.
async fn accept_offer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, "/console/my/").await);
    let id = page_or_return!(super::path_uuid(&id));
    match crate::domain::waitlist::accept(&state, &visit.caller, id).await {
        Ok(_) => redirect_with(
            &state,
            "/console/my/",
            "ok",
            "The seat is yours. Your ticket and its QR code are below.",
        ),
        Err(DomainError::Conflict(words)) => redirect_with(&state, "/console/my/", "error", &words),
        Err(e) => refusal(e),
    }
}

/// Leaves a waiting list (an offered seat goes to the next person).
async fn leave_waitlist(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, _) = page_or_return!(posted(&state, &headers, &body, "/console/my/").await);
    let id = page_or_return!(super::path_uuid(&id));
    match crate::domain::waitlist::leave(&state, &visit.caller, id).await {
        Ok(()) => redirect_with(&state, "/console/my/", "ok", "You left the waiting list."),
        Err(DomainError::Conflict(words)) => redirect_with(&state, "/console/my/", "error", &words),
        Err(e) => refusal(e),
    }
}
