//! The event's own forms: creating one, the details form, deleting with
//! a confirmation.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::console::attendee::Confirm;
use crate::console::{
    Fields, FormState, Frame, Visit, not_found_page, path_uuid, posted, redirect_with, refusal,
    refusal_words, render, visit,
};
use crate::domain::events::{EventChanges, STATUSES};
use crate::domain::{DomainError, FieldErrors, events};
use crate::input::Input;
use crate::input::events::EventPatch;
use crate::state::AppState;

use super::page::{Submitted, render_event};
use super::{EVENT_FIELDS, managed, plural, refuse_unless_manager};

#[derive(Template)]
#[template(path = "event_new.html")]
struct NewEventPage<'a> {
    frame: &'a Frame,
    form: FormState,
    statuses: &'static [&'static str],
}

pub(super) async fn new_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Visit { frame, .. } =
        page_or_return!(visit(&state, &headers, "/console/events/new", "events").await);
    if let Err(response) = refuse_unless_manager(&frame) {
        return response;
    }
    let form = FormState::new(
        EVENT_FIELDS,
        &[
            ("status", "draft".into()),
            ("description", String::new()),
            ("timezone", state.config.time_zone.name().to_owned()),
        ],
    );
    let html = NewEventPage {
        frame: &frame,
        form,
        statuses: STATUSES,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

/// The event form read by the API's rules (every field as on PUT). Its
/// times are read where the event happens: the zone chosen in the form,
/// else `zone` (the event's, or the server's for a new one).
pub(super) fn read_event_form(fields: &Fields, zone: chrono_tz::Tz) -> (EventPatch, FieldErrors) {
    let mut json = fields.to_json(EVENT_FIELDS);
    // An empty number field is a missing one ("This field is required.").
    json.retain(|name, value| {
        !(name == "quota" && value.as_str().is_some_and(|v| v.trim().is_empty()))
    });
    // An empty zone field: the server's time zone.
    if fields.get("timezone").trim().is_empty() {
        json.insert("timezone".into(), serde_json::Value::Null);
    }
    let zone = fields.get("timezone").trim().parse().unwrap_or(zone);
    let mut input = Input::new(json, false);
    let patch = EventPatch::read(&mut input, zone);
    (patch, input.errors)
}

pub(super) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Visit { caller, frame, .. }, fields) =
        page_or_return!(posted(&state, &headers, &body, "/console/events/new").await);
    if let Err(response) = refuse_unless_manager(&frame) {
        return response;
    }
    let (patch, errors) = read_event_form(&fields, state.config.time_zone);
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

/// The details form: every field as on PUT.
pub(super) async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let here = format!("/console/events/{id}/");
    let (visit, fields) = page_or_return!(posted(&state, &headers, &body, &here).await);
    let id = page_or_return!(path_uuid(&id));
    let zone = match events::get_managed(&state, &visit.caller, id).await {
        Ok(event) => events::zone_of(&state, &event),
        Err(_) => state.config.time_zone,
    };
    let (patch, errors) = read_event_form(&fields, zone);
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

pub(super) async fn delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/events/{id}/delete");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "events").await);
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
            crate::console::format::event_when(&state, &event)
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

pub(super) async fn delete(
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
