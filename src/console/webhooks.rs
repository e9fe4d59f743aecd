//! Webhooks for people (`/console/webhooks/`): the caller's endpoints
//! (everyone's for admins), adding one (its secret shown once), an
//! endpoint's page with its delivery log, retry, test, rotation, enabling
//! and deleting. The same domain functions as `/api/webhooks/`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use uuid::Uuid;

use super::attendee::Confirm;
use super::format::{Pager, page_number, pager, short};
use super::{
    Frame, Visit, path_uuid, posted, redirect_with, refusal, refusal_words, render, visit,
};
use crate::domain::webhooks::{self as domain, NewWebhook, Webhook, WebhookChanges};
use crate::domain::{DomainError, FieldErrors, PageRequest};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/webhooks", get(list_page).post(add))
        .route("/console/webhooks/{id}", get(endpoint_page))
        .route("/console/webhooks/{id}/test", post(test))
        .route("/console/webhooks/{id}/rotate", post(rotate))
        .route("/console/webhooks/{id}/enabled", post(set_enabled))
        .route(
            "/console/webhooks/{id}/delete",
            get(delete_confirm).post(delete),
        )
        .route(
            "/console/webhooks/{id}/deliveries/{message}/retry",
            post(retry),
        )
}

/// An endpoint as a row reads.
struct EndpointRow {
    id: Uuid,
    url: String,
    scope: String,
    types: String,
    enabled: bool,
    disabled_reason: String,
    description: String,
    created: String,
}

fn row(state: &AppState, w: Webhook) -> EndpointRow {
    EndpointRow {
        id: w.endpoint.id,
        url: w.endpoint.url,
        scope: match (w.endpoint.event_id, w.endpoint.all_events) {
            (Some(event), _) => format!("event {event}"),
            (None, true) => "every event".into(),
            (None, false) => "all your events".into(),
        },
        types: w.types.join(", "),
        enabled: w.endpoint.enabled,
        disabled_reason: w.endpoint.disabled_reason.unwrap_or_default(),
        description: w.endpoint.description,
        created: short(state, &w.endpoint.created_at),
    }
}

/// The add form as sent, with its errors.
#[derive(Default)]
struct AddForm {
    url: String,
    event: String,
    types: String,
    description: String,
    errors: Vec<(String, String)>,
}

impl AddForm {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct ListPage<'a> {
    frame: &'a Frame,
    rows: Vec<EndpointRow>,
    pager: Pager,
    form: AddForm,
}

async fn show_list(state: &AppState, visit: Visit, form: AddForm, status: StatusCode) -> Response {
    let Visit {
        caller, mut frame, ..
    } = visit;
    frame.section = "webhooks";
    let request = PageRequest { page: 1, size: 100 };
    let page = match domain::list(state, &caller, request).await {
        Ok(page) => page,
        Err(e) => return refusal(e),
    };
    let pager = pager(&page, "/console/webhooks/", &[]);
    let html = ListPage {
        frame: &frame,
        rows: page.items.into_iter().map(|w| row(state, w)).collect(),
        pager,
        form,
    }
    .render();
    render(&frame, status, html)
}

async fn list_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match visit(&state, &headers, "/console/webhooks/", "webhooks").await {
        Ok(visit) => show_list(&state, visit, AddForm::default(), StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Template)]
#[template(path = "webhook_secret.html")]
struct SecretPage<'a> {
    frame: &'a Frame,
    id: Uuid,
    url: String,
    secret: String,
    rotated: bool,
}

fn secret_page(frame: &Frame, w: &Webhook, rotated: bool) -> Response {
    let html = SecretPage {
        frame,
        id: w.endpoint.id,
        url: w.endpoint.url.clone(),
        secret: w.endpoint.secret.clone(),
        rotated,
    }
    .render();
    render(
        frame,
        if rotated {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        html,
    )
}

async fn add(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (visit, fields) = match posted(&state, &headers, &body, "/console/webhooks/").await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut form = AddForm {
        url: fields.get("url").trim().to_owned(),
        event: fields.get("event").trim().to_owned(),
        types: fields.get("types").trim().to_owned(),
        description: fields.get("description").trim().to_owned(),
        errors: Vec::new(),
    };
    let mut errors = FieldErrors::default();
    let event_id = if form.event.is_empty() {
        None
    } else {
        match Uuid::parse_str(&form.event) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("event", "Enter an event's id, or leave it empty for all.");
                None
            }
        }
    };
    let types: Vec<String> = form
        .types
        .split([',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if form.url.is_empty() {
        errors.add("url", "Enter the URL that receives the messages.");
    }
    let new = NewWebhook {
        url: form.url.clone(),
        event_id,
        types,
        description: form.description.clone(),
        enabled: true,
    };
    match domain::create(&state, &visit.caller, new, errors).await {
        Ok(created) => {
            let mut frame = visit.frame;
            frame.section = "webhooks";
            secret_page(&frame, &created, false)
        }
        Err(DomainError::Invalid(errors)) => {
            form.errors = errors
                .0
                .into_iter()
                .map(|(field, messages)| (field, messages.join(" ")))
                .collect();
            show_list(&state, visit, form, StatusCode::BAD_REQUEST).await
        }
        Err(e) => refusal(e),
    }
}

/// One attempt as the log reads.
struct AttemptRow {
    message: Uuid,
    kind: String,
    attempt: i32,
    outcome: String,
    ok: bool,
    duration: String,
    answer: String,
    next: String,
    at: String,
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct EndpointPage<'a> {
    frame: &'a Frame,
    endpoint: EndpointRow,
    attempts: Vec<AttemptRow>,
    pager: Pager,
}

async fn endpoint_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let here = format!("/console/webhooks/{id}/");
    let Visit {
        caller, mut frame, ..
    } = match visit(&state, &headers, &here, "webhooks").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let id = match path_uuid(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let found = match domain::get(&state, &caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    let request = PageRequest {
        page: page_number(query.as_deref()),
        size: 50,
    };
    let log = match domain::deliveries(&state, &caller, id, request).await {
        Ok(log) => log,
        Err(e) => return refusal(e),
    };
    frame.section = "webhooks";
    let pager = pager(&log, &here, &[]);
    let attempts = log
        .items
        .into_iter()
        .map(|a| AttemptRow {
            message: a.message_id,
            kind: a.message_type,
            attempt: a.attempt,
            ok: a.status_code.is_some_and(|c| (200..300).contains(&c)),
            outcome: match (a.status_code, &a.error) {
                (Some(code), _) => code.to_string(),
                (None, Some(error)) => error.clone(),
                (None, None) => "—".into(),
            },
            duration: format!("{} ms", a.duration_ms),
            answer: a.response_body.chars().take(120).collect(),
            next: a
                .next_attempt_at
                .map(|at| short(&state, &at))
                .unwrap_or_default(),
            at: short(&state, &a.attempted_at),
        })
        .collect();
    let html = EndpointPage {
        frame: &frame,
        endpoint: row(&state, found),
        attempts,
        pager,
    }
    .render();
    render(&frame, StatusCode::OK, html)
}

/// The endpoint named in a posted form's path, its visitor, or the answer.
async fn posted_for(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    id: &str,
) -> Result<(Visit, Uuid, String), Response> {
    let back = format!("/console/webhooks/{id}/");
    let (visit, _) = posted(state, headers, body, &back).await?;
    let id = path_uuid(id)?;
    Ok((visit, id, back))
}

fn done(state: &AppState, back: &str, result: Result<String, DomainError>) -> Response {
    match result {
        Ok(message) => redirect_with(state, back, "ok", &message),
        Err(e @ (DomainError::Forbidden | DomainError::NotFound)) => refusal(e),
        Err(e) => redirect_with(state, back, "error", &refusal_words(&e)),
    }
}

async fn test(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, id, back) = match posted_for(&state, &headers, &body, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let result = domain::test(&state, &visit.caller, id)
        .await
        .map(|_| "A test message is queued; it shows in the log once sent.".to_owned());
    done(&state, &back, result)
}

async fn rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let (visit, id, _) = match posted_for(&state, &headers, &body, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match domain::rotate_secret(&state, &visit.caller, id).await {
        Ok(rotated) => secret_page(&visit.frame, &rotated, true),
        Err(e) => refusal(e),
    }
}

async fn set_enabled(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let back = format!("/console/webhooks/{id}/");
    let (visit, fields) = match posted(&state, &headers, &body, &back).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let id = match path_uuid(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let enabled = fields.get("enabled") == "true";
    let changes = WebhookChanges {
        enabled: Some(enabled),
        ..WebhookChanges::default()
    };
    let result = domain::update(&state, &visit.caller, id, changes, FieldErrors::default())
        .await
        .map(|_| {
            if enabled {
                "The endpoint is enabled: new messages go to it again.".to_owned()
            } else {
                "The endpoint is disabled: no messages are queued for it.".to_owned()
            }
        });
    done(&state, &back, result)
}

async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, message)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (visit, id, back) = match posted_for(&state, &headers, &body, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let message = match path_uuid(&message) {
        Ok(message) => message,
        Err(response) => return response,
    };
    let result = domain::retry(&state, &visit.caller, id, message)
        .await
        .map(|()| "The message is queued again; the worker sends it shortly.".to_owned());
    done(&state, &back, result)
}

async fn delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/webhooks/{id}/delete");
    let Visit { caller, frame, .. } = match visit(&state, &headers, &here, "webhooks").await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let id = match path_uuid(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let found = match domain::get(&state, &caller, id).await {
        Ok(found) => found,
        Err(e) => return refusal(e),
    };
    Confirm {
        frame: &frame,
        title: "Delete this webhook endpoint?".into(),
        question: format!("Messages will no longer go to {}.", found.endpoint.url),
        consequences: vec![
            "Messages queued for it are dropped.".into(),
            "Its delivery log goes with it; the audit log keeps the rest.".into(),
        ],
        action: here,
        button: "Delete the endpoint",
        back: format!("/console/webhooks/{id}/"),
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
    let (visit, id, back) = match posted_for(&state, &headers, &body, &id).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match domain::delete(&state, &visit.caller, id).await {
        Ok(()) => redirect_with(
            &state,
            "/console/webhooks/",
            "ok",
            "The endpoint is deleted.",
        ),
        Err(e @ (DomainError::Forbidden | DomainError::NotFound)) => refusal(e),
        Err(e) => redirect_with(&state, &back, "error", &refusal_words(&e)),
    }
}
