//! The registrations of an event as CSV.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::console::format::{csv_text, rfc3339};
use crate::console::{Visit, not_found_page, path_uuid, refusal, visit};
use crate::domain::DomainError;
use crate::domain::registrations::{self, RosterRow};
use crate::state::AppState;

/// Rows read and written per chunk.
const CHUNK: u64 = 500;

/// API.md §8's header row.
const HEADER: [&str; 9] = [
    "registration_id",
    "username",
    "email",
    "first_name",
    "last_name",
    "ticket",
    "registered_at",
    "payment_status",
    "checked_in_at",
];

/// Every registration of an event as CSV (API.md §8's header), streamed
/// in chunks of 500 rows, each read after the last one's key (registration
/// time, id): memory and the cost of a chunk stay the same however long the
/// roster, and the first bytes leave after the first chunk.
pub(super) async fn registrations_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let here = format!("/console/events/{id}/");
    let Visit { caller, .. } = page_or_return!(visit(&state, &headers, &here, "events").await);
    let event_id = page_or_return!(path_uuid(&id));
    // The first chunk now: a refusal is still a page, not a broken download.
    let first = match registrations::roster_after(&state, &caller, event_id, None, CHUNK).await {
        Ok(rows) => rows,
        Err(DomainError::Forbidden) => return not_found_page(),
        Err(e) => return refusal(e),
    };
    // The file is named after the event, as people look for it later.
    let name = match crate::domain::events::get(&state, event_id).await {
        Ok(event) => event.name,
        Err(e) => return refusal(e),
    };
    let header = match csv_chunk(Some(&HEADER), &[]) {
        Ok(bytes) => bytes,
        Err(e) => return refusal(DomainError::Internal(e.into())),
    };
    let stream = futures::stream::unfold(
        (Some(first), state, caller, Some(header)),
        move |(rows, state, caller, header)| async move {
            if let Some(header) = header {
                return Some((Ok(header), (rows, state, caller, None)));
            }
            let rows = rows?;
            let chunk = csv_chunk(None, &rows).map_err(std::io::Error::other);
            let next = match rows.last() {
                Some(last) if rows.len() as u64 == CHUNK => {
                    let after = (last.registration.registered_at, last.registration.id);
                    match registrations::roster_after(&state, &caller, event_id, Some(after), CHUNK)
                        .await
                    {
                        Ok(next) => Some(next),
                        Err(e) => {
                            // The rows so far are sent; the file ends short.
                            tracing::error!("CSV export of event {event_id} stopped: {e}");
                            return Some((
                                Err(std::io::Error::other(e.to_string())),
                                (None, state, caller, None),
                            ));
                        }
                    }
                }
                _ => None,
            };
            Some((chunk, (next, state, caller, None)))
        },
    );
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        file_name(&name, event_id)
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `rust-night-jakarta-registrations.csv`: the event's name in lower-case
/// ASCII letters and digits joined by dashes (at most 60), else its id.
fn file_name(name: &str, event_id: uuid::Uuid) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 60 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        format!("registrations-{event_id}.csv")
    } else {
        format!("{slug}-registrations.csv")
    }
}

/// The CSV bytes of a header row (as API.md writes it, bare) and/or roster
/// rows (RFC 4180 by the `csv` crate, CRLF line ends, every field quoted —
/// a spreadsheet set to split on `;` or a tab still reads one cell — and
/// formulas neutralised).
fn csv_chunk(header: Option<&[&str]>, rows: &[RosterRow]) -> Result<Bytes, csv::Error> {
    let quote = if header.is_some() {
        csv::QuoteStyle::Necessary
    } else {
        csv::QuoteStyle::Always
    };
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(quote)
        .from_writer(Vec::with_capacity(64 + rows.len() * 160));
    if let Some(header) = header {
        out.write_record(header)?;
    }
    for r in rows {
        let registered_at = rfc3339(&r.registration.registered_at);
        let checked_in_at = r.checked_in_at.as_ref().map(rfc3339).unwrap_or_default();
        out.write_record([
            csv_text(&r.registration.id.to_string()).as_ref(),
            &csv_text(&r.user.username),
            &csv_text(&r.user.email),
            &csv_text(&r.user.first_name),
            &csv_text(&r.user.last_name),
            &csv_text(&r.ticket),
            &registered_at,
            &csv_text(r.payment_status.as_deref().unwrap_or_default()),
            &checked_in_at,
        ])?;
    }
    out.into_inner()
        .map(Bytes::from)
        .map_err(|e| csv::Error::from(e.into_error()))
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn files_are_named_after_their_event() {
        let id = uuid::Uuid::nil();
        assert_eq!(
            file_name("Rust Night: Jakarta #12!", id),
            "rust-night-jakarta-12-registrations.csv"
        );
        assert_eq!(file_name("Café — été", id), "caf-t-registrations.csv");
        assert_eq!(file_name("日本語", id), format!("registrations-{id}.csv"));
    }
}
