//! Ticket types on the event page: adding one, editing one on its own
//! page, deleting with a confirmation.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::console::attendee::Confirm;
use crate::console::{
    FormState, Frame, Visit, not_found_page, path_uuid, posted, redirect_with, refusal,
    refusal_words, render, visit,
};
use crate::domain::{Caller, DomainError, tickets};
use crate::input::Input;
use crate::input::tickets::TicketPatch;
use crate::state::AppState;

use super::page::{Submitted, render_event};
use super::{TICKET_FIELDS, managed, plural};

pub(super) async fn add_ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/events/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &back).await);
    let id = page_or_return!(path_uuid(&id));
    let event = match managed(&state, &visit.caller, id).await {
        Ok(event) => event,
        Err(response) => return response,
    };
    let mut json = fields.to_json(TICKET_FIELDS);
    // An empty number field is a missing one ("This field is required."),
    // not "A valid integer is required.", which reads as if 0 were wrong.
    json.retain(|name, value| {
        !(matches!(name.as_str(), "price" | "quota")
            && value.as_str().is_some_and(|v| v.trim().is_empty()))
    });
    checkboxes_and_hours(&mut json);
    json.insert("event_id".into(), serde_json::Value::String(id.to_string()));
    let mut input = Input::new(json, false);
    // The form's times are where the event happens.
    let zone = crate::domain::events::zone_of(&state, &event);
    let patch = TicketPatch::read(&mut input, zone);
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

pub(super) async fn ticket_delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/tickets/{id}/delete");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "events").await);
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

pub(super) async fn ticket_delete(
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

#[derive(Template)]
#[template(path = "ticket_edit.html")]
struct TicketEdit<'a> {
    frame: &'a Frame,
    id: uuid::Uuid,
    name: String,
    event_id: uuid::Uuid,
    event_name: String,
    zone: String,
    sold: i64,
    form: FormState,
    message: Option<String>,
}

/// A price as typed in the form: `150000.5`, `0`.
fn price_field(minor: i64) -> String {
    if minor % 100 == 0 {
        (minor / 100).to_string()
    } else {
        format!("{}.{:02}", minor / 100, (minor % 100).abs())
            .trim_end_matches('0')
            .to_owned()
    }
}

/// The edit page of a ticket type, its fields as they are (or as sent,
/// with their errors).
async fn render_edit(
    state: &AppState,
    frame: &Frame,
    caller: &Caller,
    raw: &str,
    sent: Option<(FormState, Option<String>)>,
    status: StatusCode,
) -> Response {
    let t = match managed_ticket(state, caller, raw).await {
        Ok(t) => t,
        Err(response) => return response,
    };
    let event = match managed(state, caller, t.event_id).await {
        Ok(event) => event,
        Err(response) => return response,
    };
    let zone = crate::domain::events::zone_of(state, &event);
    let (form, message) = sent.unwrap_or_else(|| {
        (
            FormState::new(
                TICKET_FIELDS,
                &[
                    ("name", t.name.clone()),
                    ("price", price_field(t.price_minor)),
                    ("quota", t.quota.to_string()),
                    ("waitlist", if t.waitlist { "on" } else { "" }.to_owned()),
                    ("waitlist_offer_hours", t.waitlist_offer_hours.to_string()),
                    ("hidden", if t.hidden { "on" } else { "" }.to_owned()),
                    (
                        "payment_window_minutes",
                        t.payment_window_minutes
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                    ),
                    (
                        "sales_start",
                        crate::console::format::field_datetime_in(zone, &t.sales_start),
                    ),
                    (
                        "sales_end",
                        crate::console::format::field_datetime_in(zone, &t.sales_end),
                    ),
                ],
            ),
            None,
        )
    });
    let html = TicketEdit {
        frame,
        id: t.id,
        name: t.name,
        event_id: event.id,
        event_name: event.name,
        zone: zone.name().to_owned(),
        sold: t.sold,
        form,
        message,
    }
    .render();
    render(frame, status, html)
}

pub(super) async fn ticket_edit_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/tickets/{id}/edit");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "events").await);
    render_edit(&state, &frame, &caller, &id, None, StatusCode::OK).await
}

/// The edited ticket type, by the API's rules (every field, as a PUT).
pub(super) async fn ticket_edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let here = format!("/console/tickets/{id}/edit");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &here).await);
    let t = page_or_return!(managed_ticket(&state, &visit.caller, &id).await);
    let event = match managed(&state, &visit.caller, t.event_id).await {
        Ok(event) => event,
        Err(response) => return response,
    };
    let mut json = fields.to_json(TICKET_FIELDS);
    json.retain(|name, value| {
        !(matches!(name.as_str(), "price" | "quota")
            && value.as_str().is_some_and(|v| v.trim().is_empty()))
    });
    checkboxes_and_hours(&mut json);
    json.insert(
        "event_id".into(),
        serde_json::Value::String(t.event_id.to_string()),
    );
    let mut input = Input::new(json, false);
    let zone = crate::domain::events::zone_of(&state, &event);
    let patch = TicketPatch::read(&mut input, zone);
    let errors = std::mem::take(&mut input.errors);
    let outcome = tickets::update(&state, &visit.caller, t.id, patch.into(), errors).await;
    let Visit { caller, frame, .. } = visit;
    match outcome {
        Ok(saved) => redirect_with(
            &state,
            &format!("/console/events/{}/#tickets", t.event_id),
            "ok",
            &format!("Ticket type “{}” saved.", saved.ticket.name),
        ),
        Err(DomainError::Invalid(errors)) => {
            let form = FormState::submitted(TICKET_FIELDS, &fields, errors);
            render_edit(
                &state,
                &frame,
                &caller,
                &id,
                Some((form, None)),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e @ (DomainError::Conflict(_) | DomainError::SoldOut)) => {
            let form = FormState::submitted(TICKET_FIELDS, &fields, Default::default());
            let words = refusal_words(&e);
            render_edit(
                &state,
                &frame,
                &caller,
                &id,
                Some((form, Some(words))),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => refusal(e),
    }
}

/// A form's checkboxes say yes by being sent and no by being absent: both
/// are said explicitly; an empty "hours" field is the default.
fn checkboxes_and_hours(json: &mut serde_json::Map<String, serde_json::Value>) {
    for name in ["waitlist", "hidden"] {
        let on = json.get(name).and_then(|v| v.as_str()) == Some("on");
        json.insert(name.into(), serde_json::Value::Bool(on));
    }
    if json
        .get("waitlist_offer_hours")
        .and_then(|v| v.as_str())
        .is_some_and(|v| v.trim().is_empty())
    {
        json.remove("waitlist_offer_hours");
    }
}
