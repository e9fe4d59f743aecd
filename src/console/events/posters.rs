//! Posters on the event page: uploading one, deleting with a
//! confirmation.

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::console::attendee::Confirm;
use crate::console::{
    Visit, check_csrf, path_uuid, posted, redirect_with, refusal, refusal_words, visit,
};
use crate::domain::{Caller, DomainError, FieldErrors, posters};
use crate::state::AppState;

use super::managed;
use super::page::{Submitted, render_event};

pub(super) async fn upload_poster(
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
        Err(_) => return crate::console::forbidden_page(),
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

pub(super) async fn poster_delete_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/posters/{id}/delete");
    let Visit { caller, frame, .. } =
        page_or_return!(visit(&state, &headers, &here, "events").await);
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

pub(super) async fn poster_delete(
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
