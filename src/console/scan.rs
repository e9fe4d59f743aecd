//! The door: door staff first choose which event's door they are at (the
//! session remembers it), then scan or type a ticket's code — the QR code's
//! or the short code printed under it — or find a person by name and admit
//! them. The answer comes in a large panel that names the person, ticket
//! type and event, with the live count "admitted N of M". The same
//! `domain::checkins::scan` as `POST /api/checkins/` with `event`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use uuid::Uuid;

use super::format::full_name;
use super::{Frame, Visit, error_page, posted, query_value, redirect_with, refusal, render, visit};
use crate::domain::checkins::{self, Holder, Presented, Refused, Scan, ScanRefused};
use crate::domain::registrations::RosterRow;
use crate::domain::{DomainError, PageRequest, accounts};
use crate::state::AppState;
use crate::ticket_codes::format_short_code;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/scan", get(scan_page).post(scan_submit))
        .route("/console/scan/door", post(choose_door))
}

/// The last scan's answer, for people at the door.
struct ScanResult {
    /// `admitted`, `refused` or `warning` (the colour; the words say it too).
    kind: &'static str,
    headline: String,
    detail: String,
    /// Whose ticket it is: "Jane Doe · Early bird · Rust Night".
    holder: Option<String>,
    /// A refusal that a manager may override: the registration to admit
    /// with one button ("Admit anyway").
    force: Option<Uuid>,
}

/// One person found by the door's search.
struct Found {
    registration: Uuid,
    name: String,
    email: String,
    ticket: String,
    short_code: String,
    /// "Paid", "Free", "Not paid", "Payment pending"… (and its badge class).
    payment: (&'static str, &'static str),
    /// A priced ticket without a completed payment: admitting asks first.
    unpaid: bool,
    checked_in: Option<String>,
}

/// An event the caller may open the door of.
struct DoorChoice {
    id: Uuid,
    name: String,
    when: String,
    location: String,
}

#[derive(Template)]
#[template(path = "door_choose.html")]
struct ChoosePage<'a> {
    frame: &'a Frame,
    doors: Vec<DoorChoice>,
}

#[derive(Template)]
#[template(path = "scan.html")]
struct DoorPage<'a> {
    frame: &'a Frame,
    event_name: String,
    event_when: String,
    admitted: u64,
    registered: u64,
    result: Option<ScanResult>,
    search: String,
    found: Option<Vec<Found>>,
    more_found: bool,
}

/// The people a door search shows at most (narrow it to see others).
const SEARCH_LIMIT: u64 = 20;

fn may_not_scan() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Not allowed",
        "Only those who run events scan tickets.",
    )
}

/// The door page of the session's event, or the choice of event when
/// none is chosen (or the chosen one is no longer the caller's).
async fn render_door(
    state: &AppState,
    visit: Visit,
    result: Option<ScanResult>,
    search: Option<String>,
) -> Response {
    if !visit.frame.may_scan {
        return may_not_scan();
    }
    let mut frame = visit.frame;
    frame.section = "scan";
    let door = match visit.door_event {
        Some(id) => match checkins::door(state, &visit.caller, id).await {
            Ok(door) => Some(door),
            Err(DomainError::NotFound | DomainError::Forbidden) => None,
            Err(e) => return refusal(e),
        },
        None => None,
    };
    let Some((event, admitted, registered)) = door else {
        let doors = match checkins::doors(state, &visit.caller).await {
            Ok(doors) => doors,
            Err(e) => return refusal(e),
        };
        let doors = doors
            .into_iter()
            .map(|e| DoorChoice {
                id: e.id,
                when: super::format::event_when(state, &e),
                name: e.name,
                location: e.location,
            })
            .collect();
        return render(
            &frame,
            StatusCode::OK,
            ChoosePage {
                frame: &frame,
                doors,
            }
            .render(),
        );
    };
    let search = search.map(|s| s.trim().to_owned()).unwrap_or_default();
    let (found, more_found) = if search.is_empty() {
        (None, false)
    } else {
        let page = PageRequest {
            page: 1,
            size: SEARCH_LIMIT,
        };
        match crate::domain::registrations::roster(
            state,
            &visit.caller,
            event.id,
            Some(&search),
            page,
        )
        .await
        {
            Ok(page) => {
                let more = page.count > SEARCH_LIMIT;
                let found = page.items.into_iter().map(|r| found(state, r)).collect();
                (Some(found), more)
            }
            Err(e) => return refusal(e),
        }
    };
    let html = DoorPage {
        frame: &frame,
        event_when: super::format::event_span(
            crate::domain::events::zone_of(state, &event),
            &event.start_time,
            &event.end_time,
        ),
        event_name: event.name,
        admitted,
        registered,
        result,
        search,
        found,
        more_found,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

fn found(state: &AppState, row: RosterRow) -> Found {
    let unpaid = row.priced && row.payment_status.as_deref() != Some("completed");
    let payment = super::format::payment_words(row.priced, row.payment_status.as_deref());
    Found {
        unpaid,
        registration: row.registration.id,
        name: full_name(&row.user),
        email: row.user.email.clone(),
        ticket: row.ticket,
        short_code: format_short_code(&row.registration.short_code),
        payment,
        checked_in: row.checked_in_at.map(|at| super::format::short(state, &at)),
    }
}

async fn scan_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    match visit(&state, &headers, "/console/scan/", "scan").await {
        Ok(visit) => {
            let search = query_value(raw.as_deref(), "q");
            render_door(&state, visit, None, search).await
        }
        Err(response) => response,
    }
}

/// Opens the door of an event (it must be the caller's), or leaves it
/// (`event` empty) to choose another.
async fn choose_door(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, "/console/scan/").await);
    if !visit.frame.may_scan {
        return may_not_scan();
    }
    let chosen = match fields.get("event") {
        "" => None,
        raw => match Uuid::parse_str(raw) {
            Ok(id) => match checkins::door(&state, &visit.caller, id).await {
                Ok(_) => Some(id),
                // Not theirs reads as not there, as every console page.
                Err(DomainError::NotFound | DomainError::Forbidden) => {
                    return super::not_found_page();
                }
                Err(e) => return refusal(e),
            },
            Err(_) => return super::not_found_page(),
        },
    };
    if let Err(e) = accounts::sessions::set_door(&state, &visit.session_token, chosen).await {
        return refusal(e);
    }
    match chosen {
        Some(_) => Redirect::to("/console/scan/").into_response(),
        None => redirect_with(
            &state,
            "/console/scan/",
            "ok",
            "Choose the event to scan for.",
        ),
    }
}

async fn scan_submit(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, "/console/scan/").await);
    if !visit.frame.may_scan {
        return may_not_scan();
    }
    let Some(door) = visit.door_event else {
        return redirect_with(
            &state,
            "/console/scan/",
            "error",
            "Choose the event first: a scan is checked against its door.",
        );
    };
    let presented = match Uuid::parse_str(fields.get("registration")) {
        Ok(id) => Presented::Registration(id),
        Err(_) => Presented::Code(fields.get("code").trim().to_string()),
    };
    let force = fields.get("force") == "true";
    let outcome = checkins::scan(
        &state,
        &visit.caller,
        Scan {
            presented,
            event: Some(door),
            force,
            scanned_at: None,
        },
        None,
    )
    .await;
    let result = match outcome {
        Ok(a) => ScanResult {
            kind: "admitted",
            headline: format!("Admitted: {}", full_name(&a.user)),
            detail: if a.checkin.forced {
                "Admitted because you chose to (not paid, or outside the door's hours).".into()
            } else {
                String::new()
            },
            holder: Some(format!("{} · {}", a.ticket_name, a.event_name)),
            force: None,
        },
        Err(Refused {
            why: ScanRefused::Failed(e),
            ..
        }) => return refusal(e),
        Err(refused) => answer(&state, refused).await,
    };
    let search = Some(fields.get("q").to_string()).filter(|q| !q.trim().is_empty());
    render_door(&state, visit, Some(result), search).await
}

/// A refusal in words for the door, with the one button that overrides it
/// where a manager may.
async fn answer(state: &AppState, refused: Refused) -> ScanResult {
    let holder = refused.holder.as_ref().map(described);
    let force = refused
        .holder
        .as_ref()
        .filter(|_| refused.why.forceable())
        .map(|h| h.registration);
    let (kind, headline, detail) = match refused.why {
        ScanRefused::AlreadyCheckedIn { at, by } => {
            let who = match by {
                Some(id) => match accounts::load_caller(state, id).await {
                    Ok(Ok(scanner)) => format!(" by {}", scanner.username),
                    _ => String::new(),
                },
                None => String::new(),
            };
            (
                "warning",
                "Already checked in".to_string(),
                format!("At {}{who}.", super::format::short(state, &at)),
            )
        }
        ScanRefused::Unpaid => (
            "warning",
            "Not paid".into(),
            "This ticket has no completed payment.".into(),
        ),
        ScanRefused::NotYetValid { opens_at } => (
            "warning",
            "Too early".into(),
            format!(
                "The door opens at {}.",
                super::format::short(state, &opens_at)
            ),
        ),
        ScanRefused::EventEnded { ended_at } => (
            "warning",
            "Event is over".into(),
            format!("It ended at {}.", super::format::short(state, &ended_at)),
        ),
        // The holder's line names the ticket's event when the caller runs
        // it; otherwise this says which.
        ScanRefused::WrongEvent(name) => (
            "refused",
            "Another event's ticket".into(),
            if holder.is_some() {
                "Not valid at this door.".to_string()
            } else {
                format!("This ticket is for {name}.")
            },
        ),
        ScanRefused::InvalidCode => (
            "refused",
            "Invalid ticket".into(),
            "This is not a ticket of ours. Check the code, or search by name.".into(),
        ),
        ScanRefused::Revoked => (
            "refused",
            "Ticket cancelled".into(),
            "This registration no longer exists.".into(),
        ),
        ScanRefused::Forbidden => (
            "refused",
            "Not your event".into(),
            "You do not run the event this ticket is for.".into(),
        ),
        ScanRefused::EventCancelled => (
            "refused",
            "Event cancelled".into(),
            "This event is cancelled.".into(),
        ),
        ScanRefused::NoSuchDoor(_) => (
            "refused",
            "No such event".into(),
            "The event of this door was deleted. Choose another.".into(),
        ),
        // The console never sends a scan time or a key: only door apps do.
        ScanRefused::BeforeRegistration => (
            "refused",
            "Scan time refused".into(),
            "The scan is dated before the registration was made.".into(),
        ),
        ScanRefused::Replay(_) => (
            "refused",
            "Already answered".into(),
            "This scan was sent twice.".into(),
        ),
        ScanRefused::Failed(_) => (
            "refused",
            "Not checked".into(),
            "Something went wrong on our side; try again.".into(),
        ),
    };
    ScanResult {
        kind,
        headline,
        detail,
        holder,
        force,
    }
}

/// "Jane Doe · Early bird · Rust Night".
fn described(holder: &Holder) -> String {
    format!(
        "{} · {} · {}",
        full_name(&holder.user),
        holder.ticket_name,
        holder.event_name
    )
}
