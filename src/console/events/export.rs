//! The registrations of an event as CSV.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::console::format::{csv_field, rfc3339};
use crate::console::{Visit, not_found_page, path_uuid, refusal, visit};
use crate::domain::{DomainError, PageRequest, registrations};
use crate::state::AppState;

/// Every registration of an event as CSV (API.md §8's header), streamed a
/// page of 500 rows at a time.
pub(super) async fn registrations_csv(
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
